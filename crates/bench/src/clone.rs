//! Clone: what a PR scan fetches vs a full clone of a repository with a long history.
//!
//! A repository of 300 source-like files × 120 lines and 2,000 commits on `main` (each later
//! commit rewrites 6 lines in 2 files), and a PR branch of 3 commits that left `main` 20
//! commits ago, served by the smart-HTTP git server on loopback that the worker's tests use.
//! Picket's clone (git2, depth 1 for a full scan; head, target tip and just enough history for
//! the merge base for a PR) against one libgit2 fetch of the whole history and the same
//! checkout.

use git2::build::CheckoutBuilder;
use git2::{FetchOptions, RemoteCallbacks, Repository};
use picket_test_git::{bare_repo, file, GitServer, History};
use picket_worker::clone::clone_over_plain_http;
use picket_worker::clone::{CloneLimits, Target};
use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

const FILES: usize = 300;
const LINES: usize = 120;
const COMMITS: usize = 2000;

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

pub async fn clone_bench() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let scratch = tempfile::tempdir()?;
    // Source-like text: identifiers from a small vocabulary plus a pseudo-random constant per
    // line, so it compresses like code rather than like repeated text.
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
    let mut h = History::default();
    let mut main = Vec::new();
    let mut parent: Option<u32> = None;
    for n in 0..COMMITS {
        let touched: Vec<usize> = if n == 0 {
            (0..FILES).collect()
        } else {
            vec![(rand() as usize) % FILES, (rand() as usize) % FILES]
        };
        let mut changes = Vec::new();
        for fi in touched {
            if n > 0 {
                for _ in 0..3 {
                    let li = (rand() as usize) % LINES;
                    files[fi][li] = line(rand());
                }
            }
            changes.push(file(&format!("src/m{fi}.py"), files[fi].join("\n")));
        }
        let m = h.commit("main", &parent.into_iter().collect::<Vec<_>>(), &changes);
        main.push(m);
        parent = Some(m);
    }
    let branch_point = main[COMMITS - 21];
    h.linear("feature", Some(branch_point), 3);
    let shas = h.import(&bare_repo(root.path(), "big", true));
    let server = GitServer::start(root.path(), Default::default());
    let url = server.url("big");
    let limits = CloneLimits {
        max_bytes: 512 << 20,
        timeout: Duration::from_secs(300),
        allow_local: false,
    };
    let diff = |merge_base: Option<&str>| Target::Diff {
        head_ref: "feature".into(),
        head: None,
        base_ref: "main".into(),
        base: None,
        merge_base: merge_base.map(Into::into),
    };
    let mut rows = Vec::new();
    for (name, target) in [
        (
            "full scan, depth 1",
            Target::Full {
                git_ref: "main".into(),
                commit: None,
            },
        ),
        ("PR, merge base given", diff(Some(&shas[&branch_point]))),
        ("PR, merge base computed", diff(None)),
    ] {
        let started = Instant::now();
        let c = clone_over_plain_http(&url, &target, &limits, scratch.path()).await?;
        let elapsed = started.elapsed();
        let s = c.stats();
        rows.push((
            name,
            s.bytes_received,
            s.fetches,
            commits_in_odb(c.path())?,
            elapsed,
        ));
    }

    // The baseline: the whole history in one libgit2 fetch (depth 0) from the same server, then
    // the same checkout.
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
    let tree = repo.revparse_single("refs/remotes/origin/feature")?;
    repo.checkout_tree(&tree, Some(CheckoutBuilder::new().force()))?;
    rows.push((
        "full clone, all history",
        bytes.get(),
        1,
        commits_in_odb(dir.path())?,
        started.elapsed(),
    ));

    println!(
        "### Clone: {FILES} files × {LINES} lines, {COMMITS} commits on main, a PR of 3 commits \
         20 behind\n"
    );
    println!("| clone | received | fetches | commits | time |");
    println!("|---|---:|---:|---:|---:|");
    for (name, bytes, fetches, commits, time) in rows {
        println!(
            "| {name} | {:.1} KiB | {fetches} | {commits} | {:.0} ms |",
            bytes as f64 / 1024.0,
            time.as_secs_f64() * 1000.0
        );
    }
    println!();
    Ok(())
}
