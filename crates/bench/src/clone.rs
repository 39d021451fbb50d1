//! Clone: what a PR scan fetches vs a full clone of a repository with large files in its history.
//!
//! The repository is shaped like a real one whose history outweighs its tree: source files
//! (identifiers and constants, so they compress like code) edited a few lines per commit, two
//! binary assets rewritten every 40 commits, a 2 MiB data dump committed and deleted again, and
//! a generated bundle (384 KiB, incompressible) committed 30 commits before the tip and rebuilt
//! in every commit since, so most of the history's bytes sit in its last commits. Two PRs: one
//! commit on top of `main`'s parent (the target moved on by one commit), and three commits
//! branched 20 commits back. Served by picket-test-support's smart-HTTP server on loopback.
//! Picket's clone (git2: depth 1 for a full scan; head, target tip and just enough history for
//! the merge base for a PR, or head and the merge base alone when the caller gives it) against
//! one libgit2 fetch of the whole history, and against the deepening Picket did before
//! (depth 1, then 32), reconstructed with the same libgit2 fetches.
//!
//! Goal (docs/benchmarks.md): a PR scan receives at most 0.1× the bytes of the full clone.

use git2::build::CheckoutBuilder;
use git2::{FetchOptions, RemoteCallbacks, Repository};
use picket_test_support::{bare_repo, delete, file, noise, GitServer, History};
use picket_worker::clone::{clone_over_plain_http, CloneLimits, Target};
use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Source files, and lines in each.
const FILES: usize = 240;
const LINES: usize = 80;
/// Binary assets and their sizes in KiB; one of them is rewritten every `ASSET_EVERY` commits.
const ASSET_KIB: [usize; 2] = [128, 96];
const ASSET_EVERY: usize = 40;
/// A data dump committed a quarter into the history and deleted again 60 commits later.
const DUMP_KIB: usize = 2048;
/// The generated bundle: committed this many commits before the tip, rebuilt in each since.
const BUNDLE_KIB: usize = 384;
const BUNDLE_SINCE: usize = 30;
/// The goal: a PR scan receives at most this share of a full clone's bytes.
const GOAL: f64 = 0.1;

fn commits_in_odb(path: &Path) -> anyhow::Result<usize> {
    let repo = Repository::open(path)?;
    let odb = repo.odb()?;
    let mut n = 0;
    odb.foreach(|oid| {
        if odb
            .read_header(*oid)
            .is_ok_and(|(_, kind)| kind == git2::ObjectType::Commit)
        {
            n += 1;
        }
        true
    })?;
    Ok(n)
}

/// The benchmark repository: `commits` on `main`, plus the branches `pr-1` (one commit on
/// main's parent) and `pr-20` (three commits on the commit 20 below main). Returns the merge
/// bases of the two PRs.
fn build(root: &Path, commits: usize) -> anyhow::Result<(String, String)> {
    anyhow::ensure!(commits >= 100, "the history needs at least 100 commits");
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let words = [
        "user", "order", "total", "count", "item", "cache", "result", "value",
    ];
    let line = |r: u64| {
        let w = |i: u64| words[(i % words.len() as u64) as usize];
        format!(
            "    {}_{} = compute_{}({}, 0x{:08x})  # {}",
            w(r),
            w(r >> 8),
            w(r >> 16),
            w(r >> 24),
            r >> 32,
            w(r >> 40)
        )
    };
    let mut files: Vec<Vec<String>> = (0..FILES)
        .map(|_| (0..LINES).map(|_| line(rand())).collect())
        .collect();
    let source =
        |files: &Vec<Vec<String>>, fi: usize| file(&format!("src/m{fi}.py"), files[fi].join("\n"));
    let asset = |a: usize, version: u64| {
        file(
            &format!("assets/a{a}.bin"),
            noise(ASSET_KIB[a] << 10, version * 31 + a as u64 + 1),
        )
    };
    let dump_at = commits / 4;
    let mut h = History::default();
    let mut main = Vec::with_capacity(commits);
    for n in 0..commits {
        let mut changes = Vec::new();
        if n == 0 {
            changes.extend((0..FILES).map(|fi| source(&files, fi)));
            changes.extend((0..ASSET_KIB.len()).map(|a| asset(a, 0)));
        } else {
            for _ in 0..2 {
                let fi = (rand() as usize) % FILES;
                for _ in 0..3 {
                    let li = (rand() as usize) % LINES;
                    files[fi][li] = line(rand());
                }
                changes.push(source(&files, fi));
            }
            if n % ASSET_EVERY == 0 {
                changes.push(asset((n / ASSET_EVERY) % ASSET_KIB.len(), n as u64));
            }
            if n + BUNDLE_SINCE >= commits {
                changes.push(file(
                    "dist/app.bundle.js",
                    noise(BUNDLE_KIB << 10, 1_000 + n as u64),
                ));
            }
        }
        if n == dump_at {
            changes.push(file("data/dump.bin", noise(DUMP_KIB << 10, 99)));
        }
        if n == dump_at + 60 {
            changes.push(delete("data/dump.bin"));
        }
        let parents: Vec<u32> = main.last().copied().into_iter().collect();
        main.push(h.commit("main", &parents, &changes));
    }
    let one_back = main[commits - 2];
    let pr_change = |h: &mut History, branch: &str, parent: u32, i: usize| {
        h.commit(
            branch,
            &[parent],
            &[file(
                &format!("src/pr_{branch}.py"),
                format!("def handler_{i}(x):\n    return x + {i}\n"),
            )],
        )
    };
    pr_change(&mut h, "pr-1", one_back, 0);
    let twenty_back = main[commits - 21];
    let mut tip = twenty_back;
    for i in 0..3 {
        tip = pr_change(&mut h, "pr-20", tip, i);
    }
    let shas: HashMap<u32, String> = h.import(&bare_repo(root, "big", true));
    Ok((shas[&one_back].clone(), shas[&twenty_back].clone()))
}

/// What Picket's clone received for a PR without a merge base before deepening went in doubling
/// steps: the head and the target tip at depth 1, then both at depth 32 (its first deepening
/// step), as the same two libgit2 fetches. Returns the bytes received and the commits held.
fn old_first_deepening(url: &str, head: &str) -> anyhow::Result<(u64, usize)> {
    let dir = tempfile::tempdir()?;
    let repo = Repository::init(dir.path())?;
    let mut total = 0;
    for depth in [1, 32] {
        let mut remote = repo.remote_anonymous(url)?;
        let bytes = Cell::new(0);
        let mut cb = RemoteCallbacks::new();
        cb.transfer_progress(|p| {
            bytes.set(p.received_bytes() as u64);
            true
        });
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(cb).depth(depth);
        remote.fetch(
            &[
                format!("+refs/heads/{head}:refs/picket/head"),
                "+refs/heads/main:refs/picket/base".to_owned(),
            ],
            Some(&mut opts),
            None,
        )?;
        drop(opts);
        total += bytes.get();
    }
    Ok((total, commits_in_odb(dir.path())?))
}

pub async fn clone_bench(commits: usize) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let scratch = tempfile::tempdir()?;
    let (one_back, twenty_back) = build(root.path(), commits)?;
    let server = GitServer::start(root.path(), Default::default());
    let url = server.url("big");
    let limits = CloneLimits {
        max_bytes: 512 << 20,
        timeout: Duration::from_secs(300),
        allow_local: false,
    };
    let diff = |head: &str, merge_base: Option<&str>| Target::Diff {
        head_ref: head.into(),
        head: None,
        base_ref: "main".into(),
        merge_base: merge_base.map(Into::into),
    };

    // The baseline first: the whole history in one libgit2 fetch (depth 0) from the same
    // server, then the same checkout as Picket's.
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let repo = Repository::init(dir.path())?;
    let mut remote = repo.remote_anonymous(&url)?;
    let bytes = Cell::new(0);
    let mut cb = RemoteCallbacks::new();
    cb.transfer_progress(|p| {
        bytes.set(p.received_bytes() as u64);
        true
    });
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(cb);
    remote.fetch(
        &["+refs/heads/*:refs/remotes/origin/*"],
        Some(&mut opts),
        None,
    )?;
    drop(opts);
    let tree = repo.revparse_single("refs/remotes/origin/pr-1")?;
    repo.checkout_tree(&tree, Some(CheckoutBuilder::new().force()))?;
    let full_clone = bytes.get();
    let baseline = (
        "full clone, all history",
        full_clone,
        1,
        "all".to_owned(),
        commits_in_odb(dir.path())?,
        started.elapsed(),
    );

    let mut rows = Vec::new();
    for (name, target) in [
        (
            "full scan, depth 1",
            Target::Full {
                git_ref: "main".into(),
                commit: None,
            },
        ),
        (
            "PR of 1 commit on main~1, merge base given",
            diff("pr-1", Some(&one_back)),
        ),
        (
            "PR of 1 commit on main~1, merge base computed",
            diff("pr-1", None),
        ),
        (
            "PR of 3 commits on main~20, merge base given",
            diff("pr-20", Some(&twenty_back)),
        ),
        (
            "PR of 3 commits on main~20, merge base computed",
            diff("pr-20", None),
        ),
    ] {
        let started = Instant::now();
        let c = clone_over_plain_http(&url, &target, &limits, scratch.path()).await?;
        let elapsed = started.elapsed();
        let s = c.stats();
        rows.push((
            name,
            s.bytes_received,
            s.fetches,
            s.depth.map_or("all".to_owned(), |d| d.to_string()),
            commits_in_odb(c.path())?,
            elapsed,
        ));
    }
    let started = Instant::now();
    let (old_bytes, old_commits) = old_first_deepening(&url, "pr-1")?;
    rows.insert(
        3,
        (
            "PR of 1 commit on main~1, computed the old way (depth 1, then 32)",
            old_bytes,
            2,
            "32".to_owned(),
            old_commits,
            started.elapsed(),
        ),
    );
    rows.push(baseline);

    println!(
        "### Clone: {commits} commits on main; {FILES} source files × {LINES} lines, {} binary \
         assets ({} KiB) rewritten every {ASSET_EVERY} commits, a {DUMP_KIB} KiB dump added \
         and deleted, a {BUNDLE_KIB} KiB bundle rebuilt in each of the last {BUNDLE_SINCE} \
         commits\n",
        ASSET_KIB.len(),
        ASSET_KIB.iter().sum::<usize>()
    );
    println!("| clone | received | × full clone | fetches | depth | commits | time |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, bytes, fetches, depth, commits, time) in &rows {
        println!(
            "| {name} | {:.1} KiB | {:.3} | {fetches} | {depth} | {commits} | {:.0} ms |",
            *bytes as f64 / 1024.0,
            *bytes as f64 / full_clone as f64,
            time.as_secs_f64() * 1000.0
        );
    }
    // The goal is for the case, a PR one commit above its merge base, and for every PR
    // whose merge base the caller gives. Without it, a PR far behind a busy target needs the
    // target's history since the branch point, whatever it weighs.
    let share = |name: &str| {
        rows.iter()
            .find(|r| r.0 == name)
            .map_or(f64::NAN, |r| r.1 as f64 / full_clone as f64)
    };
    let judged = [
        "PR of 1 commit on main~1, merge base computed",
        "PR of 1 commit on main~1, merge base given",
        "PR of 3 commits on main~20, merge base given",
    ];
    let worst = judged.iter().map(|n| share(n)).fold(0.0, f64::max);
    println!(
        "\nGoal: a one-commit PR, and any PR with its merge base given, ≤ {GOAL}× the full \
         clone's bytes: {} (worst {worst:.3}×)\n",
        if worst <= GOAL { "met" } else { "NOT met" }
    );
    Ok(())
}
