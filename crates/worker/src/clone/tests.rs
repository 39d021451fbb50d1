//! The clone end to end against picket-test-support's smart-HTTP server on loopback: shallow fetches,
//! deepening to the merge base, caps, credentials, and the safety of the checkout.

use super::checkout::check_out;
use super::*;

use git2::{ConfigLevel, FetchOptions, ObjectType, Repository};
use picket_test_support::{
    bare_repo, delete, file, git, link, noise, run, GitServer, History, ServerConfig, TestCa,
};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;

const TOKEN: &str = "ghs_s3cretT0kenValue";

fn limits() -> CloneLimits {
    CloneLimits {
        max_bytes: 64 << 20,
        timeout: Duration::from_secs(60),
        allow_local: false,
    }
}

/// Server repositories, their server, and an (initially empty) scratch directory for clones.
struct Fixture {
    root: TempDir,
    scratch: TempDir,
    server: GitServer,
}

impl Fixture {
    fn new() -> Self {
        Self::with(ServerConfig::default())
    }

    fn with(config: ServerConfig) -> Self {
        let root = TempDir::new().unwrap();
        let server = GitServer::start(root.path(), config);
        Self {
            root,
            scratch: TempDir::new().unwrap(),
            server,
        }
    }

    fn repo(&self, name: &str, allow_sha: bool, history: History) -> HashMap<u32, String> {
        history.import(&bare_repo(self.root.path(), name, allow_sha))
    }

    async fn clone(
        &self,
        repo: &str,
        creds: Option<&Credentials>,
        target: &Target,
        limits: &CloneLimits,
    ) -> Result<Checkout, CloneError> {
        let options = Options {
            url_policy: UrlPolicy::AllowPlainHttp,
            scratch: Some(self.scratch.path().to_path_buf()),
        };
        clone_with(&self.server.url(repo), creds, target, limits, options).await
    }

    fn scratch_is_empty(&self) -> bool {
        fs::read_dir(self.scratch.path()).unwrap().next().is_none()
    }
}

fn full(git_ref: &str, commit: Option<&str>) -> Target {
    Target::Full {
        git_ref: git_ref.into(),
        commit: commit.map(Into::into),
    }
}

fn diff(head_ref: &str, base_ref: &str, merge_base: Option<&str>) -> Target {
    Target::Diff {
        head_ref: head_ref.into(),
        head: None,
        base_ref: base_ref.into(),
        merge_base: merge_base.map(Into::into),
    }
}

fn commits_in_odb(path: &Path) -> usize {
    let repo = Repository::open(path).unwrap();
    let odb = repo.odb().unwrap();
    let mut n = 0;
    odb.foreach(|oid| {
        if matches!(odb.read_header(*oid), Ok((_, ObjectType::Commit))) {
            n += 1;
        }
        true
    })
    .unwrap();
    n
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn full_scan_fetches_only_the_tip_at_depth_1() {
    let f = Fixture::new();
    let mut h = History::default();
    let marks = h.linear("main", None, 40);
    let shas = f.repo("r", true, h);
    let tip = &shas[marks.last().unwrap()];

    let checkout = f
        .clone("r", None, &full("main", None), &limits())
        .await
        .unwrap();

    assert_eq!(checkout.head(), tip);
    assert_eq!(checkout.merge_base(), None);
    assert_eq!(checkout.stats().fetches, 1);
    assert_eq!(checkout.stats().depth, Some(1));
    assert!(checkout.stats().bytes_received > 0);
    let repo = Repository::open(checkout.path()).unwrap();
    assert!(repo.is_shallow());
    assert_eq!(commits_in_odb(checkout.path()), 1);
    assert_eq!(repo.head().unwrap().target().unwrap().to_string(), *tip);
    // The working tree is the tip's tree.
    assert!(read(&checkout.path().join("src/main/f19.txt")).starts_with("line 40 "));
    assert!(repo.statuses(None).unwrap().is_empty());
}

#[tokio::test]
async fn full_scan_of_head_and_of_an_annotated_tag() {
    let f = Fixture::new();
    let mut h = History::default();
    let marks = h.linear("main", None, 5);
    h.tag("v1", marks[2]);
    let shas = f.repo("r", true, h);

    let head = f
        .clone("r", None, &full("HEAD", None), &limits())
        .await
        .unwrap();
    let tag = f
        .clone(
            "r",
            None,
            &full("refs/tags/v1", Some(&shas[&marks[2]])),
            &limits(),
        )
        .await
        .unwrap();

    assert_eq!(head.head(), shas[&marks[4]]);
    assert_eq!(tag.head(), shas[&marks[2]]);
    assert_eq!(commits_in_odb(tag.path()), 1);
}

#[tokio::test]
async fn full_scan_of_an_older_commit_fetches_it_by_sha() {
    let f = Fixture::new();
    let mut h = History::default();
    let marks = h.linear("main", None, 10);
    let shas = f.repo("r", true, h);
    let older = &shas[&marks[4]];

    let checkout = f
        .clone("r", None, &full("refs/heads/main", Some(older)), &limits())
        .await
        .unwrap();

    assert_eq!(checkout.head(), older);
    assert_eq!(commits_in_odb(checkout.path()), 1);
}

#[tokio::test]
async fn wrong_commit_sha_is_a_commit_mismatch() {
    let f = Fixture::new();
    let mut h = History::default();
    let marks = h.linear("main", None, 3);
    let shas = f.repo("r", true, h);
    let bogus = "0123456789abcdef0123456789abcdef01234567";

    let err = f
        .clone("r", None, &full("main", Some(bogus)), &limits())
        .await
        .unwrap_err();

    assert_eq!(err.code(), "commit_mismatch", "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(bogus) && msg.contains(&shas[&marks[2]]),
        "{msg}"
    );
    assert!(f.scratch_is_empty());
}

#[tokio::test]
async fn older_commit_on_a_server_without_sha_fetch_is_a_commit_mismatch() {
    let f = Fixture::new();
    let mut h = History::default();
    let marks = h.linear("main", None, 3);
    let shas = f.repo("r", false, h);

    let err = f
        .clone("r", None, &full("main", Some(&shas[&marks[0]])), &limits())
        .await
        .unwrap_err();

    assert_eq!(err.code(), "commit_mismatch", "{err}");
}

#[tokio::test]
async fn missing_ref_is_ref_not_found() {
    let f = Fixture::new();
    let mut h = History::default();
    h.linear("main", None, 2);
    f.repo("r", true, h);

    let err = f
        .clone("r", None, &full("no-such-branch", None), &limits())
        .await
        .unwrap_err();

    assert_eq!(err.code(), "ref_not_found");
    assert!(err.to_string().contains("refs/heads/no-such-branch"));
}

#[tokio::test]
async fn diff_scan_deepens_until_the_merge_base_without_fetching_everything() {
    let f = Fixture::new();
    let mut h = History::default();
    let main = h.linear("main", None, 500);
    // The PR branched 50 commits before the target's tip, which moved on since.
    let branch_point = main[449];
    let pr = h.linear("feature", Some(branch_point), 3);
    let shas = f.repo("r", true, h);

    let checkout = f
        .clone("r", None, &diff("feature", "main", None), &limits())
        .await
        .unwrap();

    assert_eq!(checkout.head(), shas[pr.last().unwrap()]);
    assert_eq!(checkout.merge_base(), Some(shas[&branch_point].as_str()));
    // 1, 2, …, 32 were too shallow (the merge base is 51 commits deep on the target side); the
    // doubling steps stop at 64, the first depth that reaches it.
    assert_eq!(checkout.stats().depth, Some(64));
    assert_eq!(checkout.stats().fetches, 7);
    let commits = commits_in_odb(checkout.path());
    // Depth 64 from both tips: main[436..500] plus main[389..450] under the PR's 3 commits.
    assert_eq!(commits, 114, "fetched {commits} of 503 commits");
    assert!(Repository::open(checkout.path()).unwrap().is_shallow());
    // Only the PR's own changes, although the target changed many files since.
    let changed = checkout.changed_files().unwrap();
    let mut paths: Vec<_> = changed
        .iter()
        .filter_map(|c| c.path_at_head.clone())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "src/feature/f0.txt",
            "src/feature/f1.txt",
            "src/feature/f2.txt"
        ]
    );
}

/// The commits and the blobs in the clone's object database.
fn commits_and_blobs(path: &Path) -> (HashSet<Oid>, HashSet<Oid>) {
    let repo = Repository::open(path).unwrap();
    let odb = repo.odb().unwrap();
    let (mut commits, mut blobs) = (HashSet::new(), HashSet::new());
    odb.foreach(|oid| {
        match odb.read_header(*oid).unwrap().1 {
            ObjectType::Commit => commits.insert(*oid),
            ObjectType::Blob => blobs.insert(*oid),
            _ => false,
        };
        true
    })
    .unwrap();
    (commits, blobs)
}

#[tokio::test]
async fn a_one_commit_pr_on_a_heavy_history_fetches_only_the_commits_around_its_merge_base() {
    // Every commit of the target rewrites a 32 KiB incompressible asset: each commit of history
    // the clone takes costs 32 KiB. The PR is one commit on main[98]; the target moved on to
    // main[99]. Two commits deep from both tips settle the merge base; anything deeper is waste.
    let f = Fixture::new();
    let mut h = History::default();
    let mut main = Vec::new();
    for i in 0..100u64 {
        let parents: Vec<u32> = main.last().copied().into_iter().collect();
        main.push(h.commit(
            "main",
            &parents,
            &[
                file("assets/model.bin", noise(32 << 10, i + 1)),
                file("src/app.py", format!("VERSION = {i}\n")),
            ],
        ));
    }
    let pr = h.commit("feature", &[main[98]], &[file("src/pr.py", "x = 1\n")]);
    let shas = f.repo("r", true, h);

    let checkout = f
        .clone("r", None, &diff("feature", "main", None), &limits())
        .await
        .unwrap();

    assert_eq!(checkout.merge_base(), Some(shas[&main[98]].as_str()));
    assert_eq!(checkout.head(), shas[&pr]);
    assert_eq!(checkout.stats().depth, Some(2));
    let oid = |mark: &u32| Oid::from_str(&shas[mark]).unwrap();
    let (commits, blobs) = commits_and_blobs(checkout.path());
    // The head, the target tip and the merge base they share: nothing older.
    assert_eq!(
        commits,
        HashSet::from([oid(&pr), oid(&main[99]), oid(&main[98])])
    );
    // One asset version per commit fetched (the PR's commit shares main[98]'s).
    let repo = Repository::open(checkout.path()).unwrap();
    let assets: HashSet<Oid> = blobs
        .iter()
        .filter(|b| repo.find_blob(**b).unwrap().size() == 32 << 10)
        .copied()
        .collect();
    assert_eq!(assets.len(), 2, "{assets:?}");
    assert!(
        checkout.stats().bytes_received < 4 * (32 << 10),
        "{:?}",
        checkout.stats()
    );
}

#[tokio::test]
async fn diff_scan_uses_the_merge_base_not_the_moved_target_tip() {
    let f = Fixture::new();
    let mut h = History::default();
    let base = h.commit(
        "main",
        &[],
        &[file("app.py", "x = 1\n"), file("lib.py", "y = 1\n")],
    );
    let pr = h.commit("feature", &[base], &[file("app.py", "x = 2\n")]);
    // The target moves on after the branch point, touching another file.
    let moved = h.commit("main", &[base], &[file("lib.py", "y = 2\n")]);
    let shas = f.repo("r", true, h);

    let checkout = f
        .clone("r", None, &diff("feature", "main", None), &limits())
        .await
        .unwrap();

    assert_eq!(checkout.merge_base(), Some(shas[&base].as_str()));
    assert_ne!(checkout.merge_base(), Some(shas[&moved].as_str()));
    assert_eq!(checkout.head(), shas[&pr]);
    assert_eq!(
        checkout.changed_files().unwrap(),
        [ChangedFile {
            path_at_head: Some("app.py".into()),
            path_at_base: Some("app.py".into()),
            status: ChangeStatus::Modified,
        }]
    );
}

#[tokio::test]
async fn provided_merge_base_is_fetched_with_the_prs_own_commits_only() {
    let f = Fixture::new();
    let mut h = History::default();
    let main = h.linear("main", None, 300);
    let pr = h.linear("feature", Some(main[99]), 2);
    let shas = f.repo("r", true, h);

    let checkout = f
        .clone(
            "r",
            None,
            &diff("feature", "main", Some(&shas[&main[99]])),
            &limits(),
        )
        .await
        .unwrap();

    assert_eq!(checkout.merge_base(), Some(shas[&main[99]].as_str()));
    assert_eq!(checkout.head(), shas[&pr[1]]);
    // The head and the merge base at depth 1, then the head deepened (2, 4) until it reaches
    // the merge base: its two commits, the merge base and at most the one below it; not the
    // target's tip, not the target's history.
    assert_eq!(checkout.stats().fetches, 3);
    assert_eq!(checkout.stats().depth, Some(4));
    let commits = commits_in_odb(checkout.path());
    assert!((3..=4).contains(&commits), "{commits} commits");
    assert_eq!(checkout.changed_files().unwrap().len(), 2);
}

#[tokio::test]
async fn a_provided_merge_base_that_is_not_an_ancestor_of_the_head_is_computed_instead() {
    // The provider names main[15], which the PR (branched at main[9]) does not contain: a scan
    // against it would report as the PR's whatever main[10..=15] removed.
    let f = Fixture::new();
    let mut h = History::default();
    let main = h.linear("main", None, 20);
    let pr = h.linear("feature", Some(main[9]), 2);
    let shas = f.repo("r", true, h);

    let checkout = f
        .clone(
            "r",
            None,
            &diff("feature", "main", Some(&shas[&main[15]])),
            &limits(),
        )
        .await
        .unwrap();

    assert_eq!(checkout.head(), shas[&pr[1]]);
    assert_eq!(checkout.merge_base(), Some(shas[&main[9]].as_str()));
}

#[tokio::test]
async fn a_provided_merge_base_the_server_does_not_have_is_computed_instead() {
    let f = Fixture::new();
    let mut h = History::default();
    let main = h.linear("main", None, 20);
    let pr = h.linear("feature", Some(main[9]), 2);
    let shas = f.repo("r", true, h);

    let checkout = f
        .clone(
            "r",
            None,
            &diff("feature", "main", Some(&"5".repeat(40))),
            &limits(),
        )
        .await
        .unwrap();

    assert_eq!(checkout.head(), shas[&pr[1]]);
    assert_eq!(checkout.merge_base(), Some(shas[&main[9]].as_str()));
}

#[tokio::test]
async fn provided_merge_base_falls_back_to_deepening_when_the_server_refuses_shas() {
    let f = Fixture::new();
    let mut h = History::default();
    let main = h.linear("main", None, 60);
    let pr = h.linear("feature", Some(main[49]), 2);
    let shas = f.repo("r", false, h);

    let checkout = f
        .clone(
            "r",
            None,
            &diff("feature", "main", Some(&shas[&main[49]])),
            &limits(),
        )
        .await
        .unwrap();

    assert_eq!(checkout.merge_base(), Some(shas[&main[49]].as_str()));
    assert_eq!(checkout.head(), shas[&pr[1]]);
    // The merge base is 11 commits below the target's tip.
    assert_eq!(checkout.stats().depth, Some(16));
}

#[tokio::test]
async fn merge_base_is_not_fooled_by_a_shortcut_to_an_older_commit() {
    // Both sides reach m10 in two steps through side branches forked there, while the real
    // merge base m60 is 41 commits down the target's first-parent chain. At depths 4 to 32
    // `merge_base` alone answers m10; the boundary check makes the clone deepen instead.
    let f = Fixture::new();
    let mut h = History::default();
    let main = h.linear("main", None, 100);
    let (m10, m60, m99) = (main[10], main[60], main[99]);
    let s1 = h.commit("side", &[m10], &[file("side.txt", "s")]);
    let t1 = h.commit("other", &[m10], &[file("other.txt", "t")]);
    let target = h.commit("main", &[m99, s1], &[]);
    let h1 = h.commit("feature", &[m60], &[file("pr.txt", "1")]);
    let h2 = h.commit("feature", &[h1], &[file("pr.txt", "2")]);
    let head = h.commit("feature", &[h2, t1], &[]);
    let shas = f.repo("r", true, h);

    let checkout = f
        .clone("r", None, &diff("feature", "main", None), &limits())
        .await
        .unwrap();

    assert_eq!(checkout.head(), shas[&head]);
    let repo = Repository::open(checkout.path()).unwrap();
    let full_answer = repo
        .merge_base(
            Oid::from_str(&shas[&head]).unwrap(),
            Oid::from_str(&shas[&target]).unwrap(),
        )
        .unwrap();
    assert_eq!(checkout.merge_base(), Some(shas[&m60].as_str()));
    assert_eq!(full_answer.to_string(), shas[&m60]);
    // m60 is 42 commits below the target's tip: 64 is the first step past it.
    assert_eq!(checkout.stats().depth, Some(64));
}

#[tokio::test]
async fn unrelated_histories_have_no_merge_base() {
    let f = Fixture::new();
    let mut h = History::default();
    h.linear("main", None, 3);
    h.linear("orphan", None, 3);
    f.repo("r", true, h);

    let err = f
        .clone("r", None, &diff("orphan", "main", None), &limits())
        .await
        .unwrap_err();

    assert_eq!(err.code(), "merge_base_not_found", "{err}");
    assert!(f.scratch_is_empty());
}

#[tokio::test]
async fn byte_cap_aborts_with_clone_too_large() {
    let f = Fixture::new();
    let mut h = History::default();
    h.commit("main", &[], &[file("blob.bin", noise(1 << 20, 7))]);
    f.repo("r", true, h);
    let small = CloneLimits {
        max_bytes: 64 << 10,
        ..limits()
    };

    let err = f
        .clone("r", None, &full("main", None), &small)
        .await
        .unwrap_err();

    assert_eq!(err.code(), "clone_too_large", "{err}");
    assert!(f.scratch_is_empty());
    // Under the cap the same repository clones.
    f.clone("r", None, &full("main", None), &limits())
        .await
        .unwrap();
}

#[tokio::test]
async fn zero_timeout_is_clone_timeout() {
    let f = Fixture::new();
    let mut h = History::default();
    h.linear("main", None, 2);
    f.repo("r", true, h);
    let none = CloneLimits {
        timeout: Duration::ZERO,
        ..limits()
    };

    let err = f
        .clone("r", None, &full("main", None), &none)
        .await
        .unwrap_err();

    assert_eq!(err.code(), "clone_timeout");
    assert!(f.scratch_is_empty());
}

#[tokio::test]
async fn slow_server_is_cut_off_at_the_deadline_by_the_callbacks() {
    let f = Fixture::with(ServerConfig {
        throttle: Some(Duration::from_millis(20)),
        ..ServerConfig::default()
    });
    let mut h = History::default();
    // 256 KiB at 4 KiB per 20 ms: over a second to send.
    h.commit("main", &[], &[file("blob.bin", noise(256 << 10, 3))]);
    f.repo("r", true, h);
    let short = CloneLimits {
        timeout: Duration::from_millis(300),
        ..limits()
    };

    let started = Instant::now();
    let err = f
        .clone("r", None, &full("main", None), &short)
        .await
        .unwrap_err();

    assert_eq!(err.code(), "clone_timeout");
    // Well before the async backstop (timeout + ABORT_GRACE): a callback stopped it.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(f.scratch_is_empty());
}

#[tokio::test]
async fn symlinks_are_checked_out_and_materialized_as_plain_files() {
    let f = Fixture::new();
    let mut h = History::default();
    let base = h.commit(
        "main",
        &[],
        &[
            link("passwd", "/etc/passwd"),
            link("up", "../../x"),
            link("dir/deep", "../../../../etc"),
            file("ok.txt", "ok"),
        ],
    );
    h.commit(
        "feature",
        &[base],
        &[
            link("passwd", "/etc/shadow"),
            link("up", "../../y"),
            link("dir/deep", "/"),
        ],
    );
    f.repo("r", true, h);

    let checkout = f
        .clone("r", None, &diff("feature", "main", None), &limits())
        .await
        .unwrap();

    for (path, text) in [
        ("passwd", "/etc/shadow"),
        ("up", "../../y"),
        ("dir/deep", "/"),
    ] {
        let p = checkout.path().join(path);
        let meta = fs::symlink_metadata(&p).unwrap();
        assert!(meta.file_type().is_file(), "{path} is not a plain file");
        assert_eq!(read(&p), text);
    }
    let into = TempDir::new().unwrap();
    let paths: Vec<String> = checkout
        .changed_files()
        .unwrap()
        .into_iter()
        .filter_map(|c| c.path_at_base)
        .collect();
    assert_eq!(paths.len(), 3);
    checkout.materialize_base(&paths, into.path()).unwrap();
    for (path, text) in [
        ("passwd", "/etc/passwd"),
        ("up", "../../x"),
        ("dir/deep", "../../../../etc"),
    ] {
        let p = into.path().join(path);
        assert!(fs::symlink_metadata(&p).unwrap().file_type().is_file());
        assert_eq!(read(&p), text);
    }
}

#[tokio::test]
async fn dot_git_and_dot_dot_paths_fail_the_checkout() {
    let f = Fixture::new();
    for (name, path) in [
        ("hooks", ".git/hooks/post-checkout"),
        ("hooks-upper", ".GIT/hooks/post-checkout"),
        ("ntfs-alias", "GIT~1/hooks/post-checkout"),
        ("dotdot", "a/../../escaped"),
    ] {
        let mut h = History::default();
        h.commit(
            "main",
            &[],
            &[
                file(path, "#!/bin/sh\ntouch /tmp/pwned\n"),
                file("ok", "ok"),
            ],
        );
        f.repo(name, true, h);

        let err = f
            .clone(name, None, &full("main", None), &limits())
            .await
            .unwrap_err();

        assert_eq!(err.code(), "checkout_failed", "{name}: {err}");
        assert!(f.scratch_is_empty(), "{name}");
        assert!(!f.scratch.path().parent().unwrap().join("escaped").exists());
    }
}

#[tokio::test]
async fn lfs_filter_attributes_run_nothing() {
    let f = Fixture::new();
    let pointer = "version https://git-lfs.github.com/spec/v1\n\
                   oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n\
                   size 12345\n";
    let mut h = History::default();
    let base = h.commit(
        "main",
        &[],
        &[
            file(
                ".gitattributes",
                "*.bin filter=lfs diff=lfs merge=lfs -text\n",
            ),
            file("model.bin", pointer),
        ],
    );
    h.commit(
        "feature",
        &[base],
        &[file("model.bin", format!("{pointer}\n"))],
    );
    f.repo("r", true, h);

    let checkout = f
        .clone("r", None, &diff("feature", "main", None), &limits())
        .await
        .unwrap();
    assert_eq!(
        read(&checkout.path().join("model.bin")),
        format!("{pointer}\n")
    );

    // Configure a smudge "filter" that leaves a marker, as a hostile global config could.
    let marker = checkout
        .path()
        .parent()
        .unwrap()
        .join(format!("lfs-marker-{}", checkout.head()));
    let repo = Repository::open(checkout.path()).unwrap();
    let mut config = repo
        .config()
        .unwrap()
        .open_level(ConfigLevel::Local)
        .unwrap();
    let command = format!("sh -c 'touch {}; cat'", marker.display());
    config.set_str("filter.lfs.smudge", &command).unwrap();
    config.set_bool("filter.lfs.required", true).unwrap();

    // Control: the git CLI does run it.
    fs::remove_file(checkout.path().join("model.bin")).unwrap();
    run(git(checkout.path()).args(["checkout", "--", "model.bin"]));
    assert!(marker.exists(), "the control filter did not run");
    fs::remove_file(&marker).unwrap();

    // Our checkout and materialize_base do not.
    fs::remove_file(checkout.path().join("model.bin")).unwrap();
    check_out(&repo, repo.head().unwrap().target().unwrap()).unwrap();
    assert_eq!(
        read(&checkout.path().join("model.bin")),
        format!("{pointer}\n")
    );
    let into = TempDir::new().unwrap();
    checkout
        .materialize_base(&["model.bin".into()], into.path())
        .unwrap();
    assert_eq!(read(&into.path().join("model.bin")), pointer);
    assert!(!marker.exists(), "a filter ran");
}

#[tokio::test]
async fn temp_dir_is_removed_on_drop() {
    let f = Fixture::new();
    let mut h = History::default();
    h.linear("main", None, 2);
    f.repo("r", true, h);

    let checkout = f
        .clone("r", None, &full("main", None), &limits())
        .await
        .unwrap();
    let path = checkout.path().to_path_buf();
    assert!(path.join(".git").is_dir());
    assert!(path.starts_with(f.scratch.path()));
    drop(checkout);

    assert!(!path.exists());
    assert!(f.scratch_is_empty());
}

#[tokio::test]
async fn changed_files_follow_renames_adds_deletes_and_modifications() {
    let f = Fixture::new();
    let body: String = (0..40)
        .map(|i| format!("def f{i}():\n    return {i}\n"))
        .collect();
    let mut h = History::default();
    let base = h.commit(
        "main",
        &[],
        &[
            file("old/name.py", &body),
            file("gone.py", "print('bye')\n"),
            file("edit.py", "a = 1\n"),
            file("same.py", "same\n"),
        ],
    );
    h.commit(
        "feature",
        &[base],
        &[
            delete("old/name.py"),
            file("new/name.py", format!("{body}def extra():\n    pass\n")),
            delete("gone.py"),
            file("edit.py", "a = 2\n"),
            file("added.py", "b = 1\n"),
        ],
    );
    f.repo("r", true, h);

    let checkout = f
        .clone("r", None, &diff("feature", "main", None), &limits())
        .await
        .unwrap();
    let mut changed = checkout.changed_files().unwrap();
    changed.sort_by(|a, b| {
        (&a.path_at_head, &a.path_at_base).cmp(&(&b.path_at_head, &b.path_at_base))
    });

    let c = |head: Option<&str>, base: Option<&str>, status| ChangedFile {
        path_at_head: head.map(Into::into),
        path_at_base: base.map(Into::into),
        status,
    };
    assert_eq!(
        changed,
        [
            c(None, Some("gone.py"), ChangeStatus::Deleted),
            c(Some("added.py"), None, ChangeStatus::Added),
            c(Some("edit.py"), Some("edit.py"), ChangeStatus::Modified),
            c(
                Some("new/name.py"),
                Some("old/name.py"),
                ChangeStatus::Renamed
            ),
        ]
    );
}

#[tokio::test]
async fn materialize_base_writes_only_the_requested_base_versions() {
    let f = Fixture::new();
    let mut h = History::default();
    let base = h.commit(
        "main",
        &[],
        &[
            file("a/one.py", "one@base"),
            file("two.py", "two@base"),
            file("three.py", "3"),
        ],
    );
    h.commit(
        "feature",
        &[base],
        &[
            file("a/one.py", "one@head"),
            file("new.py", "new"),
            delete("two.py"),
        ],
    );
    // The target moves on: its version must not leak into the base files.
    h.commit("main", &[base], &[file("a/one.py", "one@target")]);
    f.repo("r", true, h);
    let checkout = f
        .clone("r", None, &diff("feature", "main", None), &limits())
        .await
        .unwrap();
    let into = TempDir::new().unwrap();
    let out = into.path().join("base");

    checkout
        .materialize_base(
            &[
                "a/one.py".into(),
                "two.py".into(),
                "new.py".into(),
                "a/one.py".into(),
            ],
            &out,
        )
        .unwrap();

    assert_eq!(read(&out.join("a/one.py")), "one@base");
    assert_eq!(read(&out.join("two.py")), "two@base");
    // Added by the PR: nothing at the base. Not asked for: not written.
    assert!(!out.join("new.py").exists());
    assert!(!out.join("three.py").exists());
    assert_eq!(read(&checkout.path().join("a/one.py")), "one@head");

    for bad in ["../x", "/etc/passwd", ".git/config", "a//b", "a/./b", ""] {
        let err = checkout
            .materialize_base(&[bad.to_owned()], &into.path().join("other"))
            .unwrap_err();
        assert_eq!(err.code(), "invalid_path", "{bad:?}");
    }
    // An existing symlink under the target directory is not followed.
    let trap = into.path().join("trap");
    fs::create_dir(&trap).unwrap();
    std::os::unix::fs::symlink(into.path().join("elsewhere"), trap.join("a")).unwrap();
    let err = checkout
        .materialize_base(&["a/one.py".into()], &trap)
        .unwrap_err();
    assert_eq!(err.code(), "invalid_path");
    assert!(!into.path().join("elsewhere").exists());
}

#[tokio::test]
async fn full_checkout_has_no_changed_files() {
    let f = Fixture::new();
    let mut h = History::default();
    h.linear("main", None, 1);
    f.repo("r", true, h);
    let checkout = f
        .clone("r", None, &full("main", None), &limits())
        .await
        .unwrap();

    assert_eq!(
        checkout.changed_files().unwrap_err().code(),
        "invalid_target"
    );
}

#[tokio::test]
async fn credentials_are_sent_to_the_server_and_shown_nowhere() {
    let f = Fixture::with(ServerConfig {
        basic_auth: Some(("x-access-token".into(), TOKEN.into())),
        ..ServerConfig::default()
    });
    let mut h = History::default();
    h.linear("main", None, 3);
    f.repo("r", true, h);
    let good = Credentials::access_token(SecretString::from(TOKEN));
    let bad = Credentials::access_token(SecretString::from("ghs_wrongtoken"));

    let checkout = f
        .clone("r", Some(&good), &full("main", None), &limits())
        .await
        .unwrap();
    assert!(f.server.stats.unauthorized.load(Ordering::Relaxed) >= 1);
    assert!(!format!("{good:?} {checkout:?}").contains(TOKEN));
    // The token is not in the repository's config either (no URL with credentials).
    let config = read(&checkout.path().join(".git/config"));
    assert!(!config.contains(TOKEN));

    for creds in [None, Some(&bad)] {
        let err = f
            .clone("r", creds, &full("main", None), &limits())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "auth_failed", "{err}");
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains(TOKEN) && !shown.contains("wrongtoken"),
            "{shown}"
        );
    }
    drop(checkout);
    assert!(f.scratch_is_empty());
}

#[tokio::test]
async fn a_host_whose_certificate_no_trusted_ca_signed_is_a_clear_tls_failure() {
    // The host's CA is not among the roots of this test process: the clone must fail at the
    // TLS handshake, say so, and say what the operator can do about it.
    let ca = TestCa::new("Company CA");
    let f = Fixture::with(ServerConfig {
        tls: Some(ca.server_config(&["127.0.0.1"])),
        ..ServerConfig::default()
    });
    let mut h = History::default();
    h.linear("main", None, 2);
    f.repo("r", true, h);
    assert!(f.server.url("r").starts_with("https://127.0.0.1:"));

    let err = f
        .clone("r", None, &full("main", None), &limits())
        .await
        .unwrap_err();

    assert_eq!(err.code(), "clone_failed", "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("TLS") && msg.contains("certificate") && msg.contains("PICKET_CA_BUNDLE"),
        "{msg}"
    );
    assert!(f.scratch_is_empty());
    // Nothing was served: the handshake failed before the first request.
    assert_eq!(f.server.stats.requests.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn credentials_do_not_follow_a_redirect_to_another_host() {
    let auth = Some(("x-access-token".to_owned(), TOKEN.to_owned()));
    // `other` holds the repository and would accept the token; `moved` redirects to it.
    let other = Fixture::with(ServerConfig {
        basic_auth: auth.clone(),
        ..ServerConfig::default()
    });
    let mut h = History::default();
    h.linear("main", None, 2);
    other.repo("r", true, h);
    let base = other.server.url("");
    let moved = Fixture::with(ServerConfig {
        basic_auth: auth,
        redirect_to: Some(base.trim_end_matches('/').to_owned()),
        ..ServerConfig::default()
    });
    let creds = Credentials::access_token(SecretString::from(TOKEN));

    let err = moved
        .clone("r", Some(&creds), &full("main", None), &limits())
        .await
        .unwrap_err();

    assert_eq!(err.code(), "auth_failed", "{err}");
    assert!(err.to_string().contains("another host"), "{err}");
    assert!(
        moved
            .server
            .stats
            .authorization_headers
            .load(Ordering::Relaxed)
            >= 1
    );
    assert_eq!(
        other
            .server
            .stats
            .authorization_headers
            .load(Ordering::Relaxed),
        0
    );
    assert!(other.server.stats.requests.load(Ordering::Relaxed) >= 1);

    // Without credentials, a redirect of the first request is followed.
    let public = Fixture::new();
    let mut h = History::default();
    h.linear("main", None, 2);
    public.repo("r", true, h);
    let hop = Fixture::with(ServerConfig {
        redirect_to: Some(public.server.url("").trim_end_matches('/').to_owned()),
        ..ServerConfig::default()
    });
    hop.clone("r", None, &full("main", None), &limits())
        .await
        .unwrap();
}

#[tokio::test]
async fn only_https_urls_without_credentials_are_accepted() {
    let target = full("main", None);
    for (url, reason) in [
        ("http://example.com/r.git", "https"),
        ("file:///etc", "https"),
        ("ssh://git@example.com/r.git", "https"),
        ("/srv/repo", "absolute"),
        ("https://user:pw@example.com/r.git", "embedded"),
        ("https://example.com/r.git\nx", "whitespace"),
    ] {
        let err = clone(url, None, &target, &limits()).await.unwrap_err();
        assert_eq!(err.code(), "invalid_url", "{url}");
        assert!(err.to_string().contains(reason), "{url}: {err}");
        assert!(!err.to_string().contains("pw@"));
    }
    for (url, authority) in [
        ("HTTPS://Example.com:8443/a/b.git", "example.com:8443"),
        ("https://example.com:443/a", "example.com"),
        ("https://example.com", "example.com"),
        ("https://[::1]:443/a", "[::1]"),
    ] {
        assert_eq!(check_url(url, UrlPolicy::HttpsOnly).unwrap(), authority);
    }
}

#[tokio::test]
async fn invalid_targets_are_refused_before_any_network() {
    for target in [
        full("main", Some("abc123")),
        full("main:refs/heads/x", None),
        full("refs/heads/*", None),
        full("main", Some(&"g".repeat(40))),
    ] {
        let err = clone("https://example.invalid/r.git", None, &target, &limits())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_target", "{target:?}");
    }
}

#[test]
fn credentials_debug_redacts_the_token() {
    let creds = Credentials {
        username: "bot".into(),
        token: SecretString::from(TOKEN),
    };
    let shown = format!("{creds:?}");
    assert!(shown.contains("bot") && shown.contains("redacted"));
    assert!(!shown.contains(TOKEN));
}

/// Pins the libgit2 fact that shapes the tests: `file://` cannot be fetched shallow.
#[test]
fn libgit2_file_transport_refuses_shallow_fetches() {
    let root = TempDir::new().unwrap();
    let mut h = History::default();
    h.linear("main", None, 2);
    let server = bare_repo(root.path(), "r", true);
    h.import(&server);
    let local = Repository::init(root.path().join("local")).unwrap();
    let mut remote = local
        .remote_anonymous(&format!("file://{}", server.display()))
        .unwrap();
    let mut opts = FetchOptions::new();
    opts.depth(1);

    let err = remote
        .fetch(&["+refs/heads/main:refs/x"], Some(&mut opts), None)
        .unwrap_err();

    assert!(
        err.message().contains("shallow fetch is not supported"),
        "{err}"
    );
}
