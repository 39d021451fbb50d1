//! Benchmarks, each on a fresh database it creates and drops.
//!
//! - `queue`: 8 concurrent claimers take N scans through claim → running → reporting →
//!   succeeded, against pgbench running a bare `FOR UPDATE SKIP LOCKED` claim + update with 8
//!   clients over the same number of rows, in the same database, in the same run.
//! - `bulk`: one `POST /api/v1/scans` with 10,000 project ids over real HTTP: latency and rows.
//! - `api`: `wrk` against `GET /api/v1/projects` with 2 connections per core.
//! - `ingest`: one full scan's results upload of 10,000 and 100,000 findings through
//!   `picket_db::worker::record_results` (what `POST /api/v1/worker/scan/results` runs: findings
//!   upsert, lifecycle, results row, state moves, one transaction), first sighting and seen
//!   again, against a bare `COPY` of the same rows into a table shaped like `findings` (same
//!   columns, checks and indexes; `LIKE` copies no foreign keys) and into `findings` itself
//!   (with its four foreign keys), in the same database, in the same run.
//! - `webhooks`: `wrk` against `POST /webhooks/{provider}/{connection}` for GitHub, GitLab,
//!   Bitbucket Cloud and Azure DevOps in turn, with each provider's pull request deliveries
//!   made (and signed) beforehand (each its own delivery id and head, so each queues a scan and
//!   supersedes the PR's last), against a bare axum handler doing one `INSERT` of the body,
//!   same database, same run; at peak and paced at half of Picket's peak.
//! - `advisories`: Supply Chain's OSV import through `picket_scheduler::advisories::import_path`
//!   (cold and unchanged), and one 3,000-package lockfile matched against everything imported
//!   (`records_for`, preparing, `picket_advisory::match_packages`).
//! - `supply-chain`: a full scan end to end on a repository with several lockfiles (Cargo.lock,
//!   two go.mod, poetry.lock, two requirements.txt; the shared OSV snapshot imported and served
//!   by the real API's advisory route), with and without Supply Chain, and diff scans of PRs
//!   that bump one package (into and out of an affected version) and of one that touches no
//!   lockfile.
//! - `pr-feedback`: a PR from webhook to feedback with the real API, scheduler and worker and
//!   each provider's test server in turn: phases from webhook receipt to the check and the
//!   comments, the provider's API calls per PR scan by operation and credential (and GitHub's
//!   installation-token mints).

// The report is printed to stdout as Markdown: printing is this crate's output.
#![allow(clippy::print_stdout)]

mod advisories;
mod clone;
mod dispatch;
mod forge;
mod pr_feedback;
mod scan;
mod supply_chain;
mod web;
mod webhooks;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use picket_core::protocol::{RedactedSecret, ReportedFinding, ScanResults};
use picket_core::{
    Fingerprint, OrgId, Product, ProjectId, RuleId, ScanState, ScanTrigger, Severity,
};
use picket_db::crypto::CredentialCipher;
use picket_db::scans::{self, NewScan};
use picket_db::worker::{self, Recorded, WORKER_ACTOR};
use picket_db::{queue, Db, DbConfig};
use secrecy::ExposeSecret;
use sqlx::{Connection, PgConnection};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "picket-bench")]
pub struct Args {
    /// Server to create the benchmark databases on.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
    #[command(subcommand)]
    pub which: Which,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Which {
    /// Queue claim+complete throughput vs pgbench.
    Queue {
        #[arg(long, default_value_t = 20_000)]
        scans: u32,
    },
    /// Bulk scan of 10,000 projects in one API call.
    Bulk {
        #[arg(long, default_value_t = 10_000)]
        projects: u32,
    },
    /// API read path under wrk.
    Api {
        #[arg(long, default_value_t = 15)]
        seconds: u32,
    },
    /// Findings ingest of one full scan (10,000 and 100,000 findings) vs a bare COPY.
    Ingest {
        /// Runs per size; the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Findings per scan, one table row each (comma-separated).
        #[arg(long, value_delimiter = ',', default_values_t = [10_000, 100_000])]
        findings: Vec<usize>,
    },
    /// Full and diff scans: Picket's worker vs the semgrep CLI (needs `make semgrep`).
    Scan {
        /// Python files in the benchmark repository.
        #[arg(long, default_value_t = 1_200)]
        files: usize,
        /// Copies of the rule pack (distinct ids), to load a few hundred rules.
        #[arg(long, default_value_t = 4)]
        copies: usize,
        /// Only these directories of the pack, e.g. `python,secrets` (comma-separated; default:
        /// all of them).
        #[arg(long, value_delimiter = ',')]
        languages: Vec<String>,
    },
    /// Clone: a PR's fetch vs a full clone of a history with large files in it.
    Clone {
        /// Commits on the benchmark repository's main branch (at least 100).
        #[arg(long, default_value_t = 800, value_parser = clap::value_parser!(u32).range(100..))]
        commits: u32,
    },
    /// The scheduler's executors: dispatch latency (sandbox vs plain process) and scans per
    /// minute with 2 concurrent environments (root; needs `cargo build --release -p
    /// picket-cli` and `make semgrep`).
    Dispatch {
        /// Launches per executor for the latency table.
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Scans for the throughput table.
        #[arg(long, default_value_t = 20)]
        scans: u32,
    },
    /// Webhook ingest under wrk: Picket's `POST /webhooks/{provider}/{connection}` with each
    /// provider's pull request deliveries vs a bare axum handler doing one INSERT, same
    /// database, same run (needs wrk: `make bench-tools`; GitHub's examples: `make
    /// github-fixtures`).
    Webhooks {
        /// Providers to measure, one after the other (comma-separated; default: all four).
        #[arg(long, value_delimiter = ',', default_values_t = Provider::ALL)]
        provider: Vec<Provider>,
        /// Seconds of each measured wrk run.
        #[arg(long, default_value_t = 15)]
        seconds: u32,
        /// wrk connections, one row per value (comma-separated); the half-rate runs use the
        /// count of Picket's peak.
        #[arg(long, value_delimiter = ',', default_values_t = [4, 16, 64])]
        connections: Vec<u32>,
        /// Projects (repositories) the deliveries are spread over.
        #[arg(long, default_value_t = 8)]
        projects: u32,
        /// Open PRs per project.
        #[arg(long, default_value_t = 25)]
        prs: u32,
    },
    /// A PR from webhook to feedback: phases from webhook receipt to the check in progress and
    /// to the final comments, and the provider's API calls (and GitHub's token mints) per PR
    /// scan (each provider served by its test server; needs `cargo build --release -p picket-cli`, `make semgrep` and
    /// `make github-fixtures`; the other providers' test servers need `make gitlab-fixtures
    /// bitbucket-fixtures azure-fixtures`).
    PrFeedback {
        /// Providers to measure, one after the other (comma-separated; default: all four).
        #[arg(long, value_delimiter = ',', default_values_t = Provider::ALL)]
        provider: Vec<Provider>,
        /// Pushes to the PR, one scan each; medians are over them.
        #[arg(long, default_value_t = 5)]
        pushes: usize,
        /// Commits of the repository's history.
        #[arg(long, default_value_t = 400)]
        commits: usize,
        /// Python modules in the repository (more than the 20 the PR touches).
        #[arg(long, default_value_t = 200)]
        files: usize,
    },
    /// The web UI's pages at size: server-side render times (p50, p95, max) of every page with
    /// thousands of projects and a hundred thousand findings.
    Web {
        #[arg(long, default_value_t = 5_000)]
        projects: u32,
        #[arg(long, default_value_t = 100_000)]
        findings: u32,
        /// Sequential requests per page (after 3 warm-ups).
        #[arg(long, default_value_t = 60)]
        requests: usize,
    },
    /// Supply Chain: OSV advisory import (cold and unchanged) and the matching of one lockfile
    /// against everything imported.
    Advisories {
        /// OSV folders to import (comma-separated; relative ones are read from the repository's
        /// root). Default: the shared snapshot, `../shared/data/osv`.
        #[arg(long, value_delimiter = ',')]
        data: Vec<std::path::PathBuf>,
        /// Packages in the lockfile matched.
        #[arg(long, default_value_t = 3_000)]
        packages: usize,
        /// Runs of each import and of the matching; medians are reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Supply Chain in a scan, end to end: a repository with several lockfiles (every package
    /// name the advisory data names, half at an affected version, plus real packages) scanned
    /// by the worker with the API serving the advisories; full scans with and without Supply
    /// Chain, and diff scans of PRs bumping one package (into and out of an affected version)
    /// and of one touching no lockfile (needs `make semgrep`).
    SupplyChain {
        /// OSV folders to import (comma-separated; relative ones are read from the repository's
        /// root). Default: the shared snapshot, `../shared/data/osv`.
        #[arg(long, value_delimiter = ',')]
        data: Vec<std::path::PathBuf>,
        /// Packages drawn from the advisory data, spread over the lockfiles (at most every
        /// name the data has); the real packages come on top.
        #[arg(long, default_value_t = 3_000)]
        packages: usize,
        /// Real Python files in the repository besides the lockfiles.
        #[arg(long, default_value_t = 300)]
        files: usize,
        /// Runs of each scan; medians are reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// All of the above with their defaults.
    All,
    /// Every benchmark above once, at a size that takes seconds (`make test` runs this so a
    /// benchmark that no longer runs fails CI). No figure is checked; a benchmark that fails,
    /// or one without a smoke size in [`SMOKE`], fails it.
    Smoke,
}

/// A source provider a benchmark drives, through its webhook route and its test server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    Github,
    Gitlab,
    Bitbucket,
    /// Azure DevOps.
    Azure,
}

impl Provider {
    /// Every provider, in the order the benchmarks run them.
    pub const ALL: [Provider; 4] = [
        Provider::Github,
        Provider::Gitlab,
        Provider::Bitbucket,
        Provider::Azure,
    ];

    /// The provider's name as its documentation writes it.
    pub fn title(self) -> &'static str {
        match self {
            Provider::Github => "GitHub",
            Provider::Gitlab => "GitLab",
            Provider::Bitbucket => "Bitbucket Cloud",
            Provider::Azure => "Azure DevOps",
        }
    }

    /// Its webhook route's segment: `POST /webhooks/{segment}/{connection}`.
    fn route(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Bitbucket => "bitbucket",
            Provider::Azure => "azure_devops",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum as _;
        let value = self.to_possible_value().expect("no provider is skipped");
        f.write_str(value.get_name())
    }
}

/// The arguments each benchmark runs with under `smoke`: small, but through the same code.
pub const SMOKE: &[(&str, &[&str])] = &[
    ("queue", &["--scans", "400"]),
    ("bulk", &["--projects", "50"]),
    (
        "advisories",
        &[
            "--data",
            "crates/scheduler/tests/scheduler/fixtures/osv,crates/advisory/tests/fixtures/osv",
            "--packages",
            "300",
            "--runs",
            "1",
        ],
    ),
    (
        "supply-chain",
        &[
            "--data",
            "crates/scheduler/tests/scheduler/fixtures/osv,crates/advisory/tests/fixtures/osv",
            "--packages",
            "300",
            "--files",
            "12",
            "--runs",
            "1",
        ],
    ),
    ("api", &["--seconds", "1"]),
    ("ingest", &["--runs", "1", "--findings", "500"]),
    (
        "scan",
        &["--files", "12", "--copies", "1", "--languages", "python"],
    ),
    ("clone", &["--commits", "100"]),
    ("dispatch", &["--runs", "2", "--scans", "2"]),
    (
        "pr-feedback",
        &["--pushes", "2", "--commits", "30", "--files", "24"],
    ),
    (
        "web",
        &["--projects", "60", "--findings", "600", "--requests", "2"],
    ),
    (
        "webhooks",
        &[
            "--seconds",
            "1",
            "--connections",
            "4",
            "--projects",
            "2",
            "--prs",
            "3",
        ],
    ),
];

/// Each benchmark subcommand of [`Which`] (not `all`, not `smoke`), parsed as the command line
/// `picket-bench <name> <extra(name)>` would be.
fn each_benchmark(
    extra: impl Fn(&str) -> anyhow::Result<&'static [&'static str]>,
) -> anyhow::Result<Vec<Which>> {
    use clap::CommandFactory;
    Args::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .filter(|name| name != "all" && name != "smoke")
        .map(|name| {
            let argv = ["picket-bench", name.as_str()]
                .into_iter()
                .chain(extra(&name)?.iter().copied());
            Ok(Args::try_parse_from(argv)
                .with_context(|| format!("arguments of `{name}`"))?
                .which)
        })
        .collect()
}

/// Each benchmark with its [`SMOKE`] arguments; an error names a benchmark without them.
pub fn smoke_runs() -> anyhow::Result<Vec<Which>> {
    each_benchmark(|name| {
        SMOKE
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, args)| *args)
            .with_context(|| format!("benchmark `{name}` has no smoke size in SMOKE"))
    })
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let url = &args.database_url;
    match args.which {
        Which::All => {
            for which in each_benchmark(|_| Ok(&[]))? {
                run_one(url, which).await?;
            }
            Ok(())
        }
        Which::Smoke => {
            for which in smoke_runs()? {
                let name = format!("{which:?}");
                let started = Instant::now();
                run_one(url, which)
                    .await
                    .with_context(|| format!("smoke run of {name}"))?;
                eprintln!(
                    "smoke: {name} ran in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
        which => run_one(url, which).await,
    }
}

/// One benchmark.
async fn run_one(url: &str, which: Which) -> anyhow::Result<()> {
    match which {
        Which::Queue { scans } => queue_bench(url, scans).await,
        Which::Bulk { projects } => bulk_bench(url, projects).await,
        Which::Api { seconds } => api_bench(url, seconds).await,
        Which::Ingest { runs, findings } => ingest_bench(url, runs, &findings).await,
        Which::Scan {
            files,
            copies,
            languages,
        } => scan::scan_bench(files, copies, &languages).await,
        Which::Clone { commits } => clone::clone_bench(commits as usize).await,
        Which::Dispatch { runs, scans } => {
            dispatch::latency_bench(runs).await?;
            dispatch::throughput_bench(url, scans).await
        }
        Which::Webhooks {
            provider,
            seconds,
            connections,
            projects,
            prs,
        } => {
            for p in provider {
                webhooks::webhooks_bench(url, p, seconds, &connections, projects, prs).await?;
            }
            Ok(())
        }
        Which::PrFeedback {
            provider,
            pushes,
            commits,
            files,
        } => {
            for p in provider {
                pr_feedback::pr_feedback_bench(url, p, pushes, commits, files).await?;
            }
            Ok(())
        }
        Which::Web {
            projects,
            findings,
            requests,
        } => web::web_bench(url, projects, findings, requests).await,
        Which::Advisories {
            data,
            packages,
            runs,
        } => advisories::advisories_bench(url, &data, packages, runs).await,
        Which::SupplyChain {
            data,
            packages,
            files,
            runs,
        } => supply_chain::supply_chain_bench(url, &data, packages, files, runs).await,
        Which::All | Which::Smoke => bail!("`all` and `smoke` run other benchmarks"),
    }
}

/// Runs `body` on a fresh, migrated database made for it (named after `label` and this
/// process) on the server of `admin_url`, and drops that database afterwards, also when `body`
/// fails. `body` gets the database's URL.
async fn with_bench_db<T, F>(
    admin_url: &str,
    label: &str,
    body: impl FnOnce(String) -> F,
) -> anyhow::Result<T>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let name = format!("picket_bench_{label}_{}", std::process::id());
    let url = replace_db(admin_url, &name)?;
    let mut conn = PgConnection::connect(admin_url)
        .await
        .context("connecting to DATABASE_URL")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let result = body(url).await;
    let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await;
    let value = result?;
    dropped.with_context(|| format!("dropping the benchmark database {name}"))?;
    Ok(value)
}

/// Connects to a benchmark database and migrates it.
async fn bench_db(url: &str, max_connections: u32) -> anyhow::Result<Db> {
    let mut cfg = DbConfig::new(url);
    cfg.max_connections = max_connections;
    let db = Db::connect(&cfg).await?;
    db.migrate().await?;
    Ok(db)
}

/// Empties `tables` between runs. `CASCADE` also empties every table that references them, so a
/// table added later with a foreign key to one of them (as `scan_results` was to `scans`) cannot
/// break the benchmark: everything that hangs off these rows was written by the previous run.
async fn empty(db: &Db, tables: &str) -> anyhow::Result<()> {
    sqlx::query(&format!("TRUNCATE {tables} CASCADE"))
        .execute(db.pool())
        .await
        .with_context(|| format!("emptying {tables}"))?;
    Ok(())
}

fn replace_db(url: &str, db: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let Some(slash) = base.rfind('/').filter(|&i| i > "postgres://".len()) else {
        bail!(
            "DATABASE_URL must name a database, e.g. postgres://postgres@127.0.0.1:5432/postgres"
        );
    };
    let mut out = format!("{}/{db}", &base[..slash]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// Inserts an org (cap 64, so the cap never throttles 8 claimers) and one project; returns ids.
async fn org_and_project(db: &Db) -> anyhow::Result<(uuid::Uuid, uuid::Uuid)> {
    let org = picket_db::orgs::create(db.pool(), "bench", "Bench").await?;
    sqlx::query("UPDATE orgs SET max_concurrent_scans = 64 WHERE id = $1")
        .bind(org.id.0)
        .execute(db.pool())
        .await?;
    let conn = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO vcs_connections (id, org_id, provider, name, credentials) VALUES ($1, $2, 'git', 'bench', '\\x00')")
        .bind(conn)
        .bind(org.id.0)
        .execute(db.pool())
        .await?;
    let project = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO projects (id, org_id, connection_id, provider_repo_id, full_name, clone_url,
                               default_branch, weekly_weekday, weekly_time)
         VALUES ($1, $2, $3, 'r', 'bench/r', 'https://git.invalid/r', 'main', 0, '00:00')",
    )
    .bind(project)
    .bind(org.id.0)
    .bind(conn)
    .execute(db.pool())
    .await?;
    Ok((org.id.0, project))
}

/// Queues `n` diff scans spread evenly over `orgs` orgs (each capped at 64, so the cap never
/// idles a claimer), on an emptied queue.
async fn fill_queue(db: &Db, orgs: u32, n: u32) -> anyhow::Result<()> {
    empty(db, "scans").await?;
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM orgs")
        .fetch_one(db.pool())
        .await?;
    for i in have as u32..orgs {
        let org = picket_db::orgs::create(db.pool(), &format!("bench-{i}"), "Bench").await?;
        let conn = uuid::Uuid::now_v7();
        sqlx::query("UPDATE orgs SET max_concurrent_scans = 64 WHERE id = $1")
            .bind(org.id.0)
            .execute(db.pool())
            .await?;
        sqlx::query("INSERT INTO vcs_connections (id, org_id, provider, name) VALUES ($1, $2, 'git', 'bench')")
            .bind(conn)
            .bind(org.id.0)
            .execute(db.pool())
            .await?;
        sqlx::query(
            "INSERT INTO projects (id, org_id, connection_id, provider_repo_id, full_name, clone_url,
                                   default_branch, weekly_weekday, weekly_time)
             VALUES (gen_random_uuid(), $1, $2, 'r', 'bench/r', 'https://git.invalid/r', 'main', 0, '00:00')",
        )
        .bind(org.id.0)
        .bind(conn)
        .execute(db.pool())
        .await?;
    }
    sqlx::query(
        "INSERT INTO scans (id, org_id, project_id, kind, trigger, priority, git_ref, base_ref, pr_number)
         SELECT gen_random_uuid(), p.org_id, p.id, 'diff', 'pull_request', 0, 'f', 'main', i
         FROM (SELECT p.*, row_number() OVER (ORDER BY p.id) - 1 AS k FROM projects p
               JOIN orgs o ON o.id = p.org_id WHERE o.slug LIKE 'bench-%') p
         CROSS JOIN generate_series(1, $2) i
         WHERE p.k < $1",
    )
    .bind(orgs as i64)
    .bind((n / orgs) as i32)
    .execute(db.pool())
    .await?;
    sqlx::query("VACUUM ANALYZE scans")
        .execute(db.pool())
        .await?;
    Ok(())
}

/// 8 concurrent claimers drain the queue, making `moves` after each claim. Returns scans/s.
async fn drain_with(db: &Db, n: u32, moves: &'static [ScanState]) -> anyhow::Result<f64> {
    let lease = Duration::from_secs(300);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..8 {
        let pool = db.pool().clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("bench-{c}");
            let mut done = 0u32;
            while let Some(claimed) = queue::claim(&pool, &owner, lease).await? {
                for &to in moves {
                    queue::advance(&pool, &claimed.lease, to, None).await?;
                }
                done += 1;
            }
            anyhow::Ok(done)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    if total != n {
        bail!("picket handled {total} of {n} scans");
    }
    Ok(f64::from(n) / secs)
}

/// The bare baseline: pgbench, 8 clients, each transaction pair claims one row with
/// `FOR UPDATE SKIP LOCKED` and completes it. Returns rows/s.
fn pgbench_baseline(url: &str, n: u32) -> anyhow::Result<f64> {
    let script = std::env::temp_dir().join(format!("picket-bench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "UPDATE bench_jobs SET state = 'claimed', owner = 'pgbench' WHERE id = (\n  SELECT id FROM bench_jobs WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED\n) RETURNING id AS job \\gset\nUPDATE bench_jobs SET state = 'done' WHERE id = :job;\n",
    )?;
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-M",
            "extended",
            "-c",
            "8",
            "-j",
            "2",
            "-t",
            &(n / 8).to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(url)
        .output()
        .context("running pgbench (apt-get install postgresql-client)")?;
    let _ = std::fs::remove_file(&script);
    if !out.status.success() {
        bail!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .context("pgbench printed no tps line")
}

async fn queue_bench(admin_url: &str, n: u32) -> anyhow::Result<()> {
    const LIFECYCLE: &[ScanState] = &[
        ScanState::Running,
        ScanState::Reporting,
        ScanState::Succeeded,
    ];
    // The shortest legal way from a claim to an end: one fenced move to a terminal state.
    const ONE_MOVE: &[ScanState] = &[ScanState::Failed];
    with_bench_db(admin_url, "queue", |url| async move {
        let db = bench_db(&url, 10).await?;
        sqlx::query("CREATE TABLE bench_jobs (id serial PRIMARY KEY, state text NOT NULL DEFAULT 'queued', owner text)")
            .execute(db.pool())
            .await?;
        sqlx::query("INSERT INTO bench_jobs (state) SELECT 'queued' FROM generate_series(1, $1)")
            .bind(n as i32)
            .execute(db.pool())
            .await?;
        sqlx::query("CREATE INDEX ON bench_jobs (id) WHERE state = 'queued'")
            .execute(db.pool())
            .await?;
        sqlx::query("VACUUM ANALYZE bench_jobs")
            .execute(db.pool())
            .await?;
        let bare = pgbench_baseline(&url, n)?;

        println!("### Queue: 8 concurrent claimers, {n} scans, same database, same run\n");
        println!("| runner | orgs | commits per scan | scans/s | ratio to bare |");
        println!("|---|---:|---:|---:|---:|");
        println!("| pgbench: bare SKIP LOCKED claim + update | - | 2 | {bare:.0} | 1.00 |");
        for (label, moves, commits) in [
            (
                "Picket: claim + one fenced terminal move (failed)",
                ONE_MOVE,
                2,
            ),
            (
                "Picket: claim + running + reporting + succeeded",
                LIFECYCLE,
                4,
            ),
        ] {
            for orgs in [1, 8] {
                fill_queue(&db, orgs, n).await?;
                let rate = drain_with(&db, n, moves).await?;
                println!(
                    "| {label} | {orgs} | {commits} | {rate:.0} | {:.2} |",
                    rate / bare
                );
            }
        }
        println!();
        Ok(())
    })
    .await
}

/// Starts the API in-process on 127.0.0.1:0 with a fresh admin token of org `bench`.
async fn start_api(db: &Db) -> anyhow::Result<(String, String, tokio::task::JoinHandle<()>)> {
    let cipher = CredentialCipher::from_hex(&CredentialCipher::generate_hex())?;
    start_api_with(db, picket_api::AppState::new(db.clone(), cipher), |r| r).await
}

/// [`start_api`] with a state of the caller's, and its router passed through `wrap` (a layer
/// of the benchmark's own around Picket's routes). Returns the base URL, the admin token and
/// the server's task.
async fn start_api_with(
    db: &Db,
    state: picket_api::AppState,
    wrap: impl FnOnce(axum::Router) -> axum::Router,
) -> anyhow::Result<(String, String, tokio::task::JoinHandle<()>)> {
    let org = match picket_db::orgs::get_by_slug(db.pool(), "bench").await {
        Ok(o) => o,
        Err(_) => picket_db::orgs::create(db.pool(), "bench", "Bench").await?,
    };
    let (_, token) =
        picket_db::tokens::create(db.pool(), org.id, "bench", picket_core::Role::Admin, None)
            .await?;
    let router = wrap(picket_api::router(state, &picket_api::ApiConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let _ = picket_api::serve(listener, router, std::future::pending()).await;
    });
    Ok((base, token.expose_secret().to_owned(), server))
}

/// `POST /api/v1/connections` with `body` at `api` as `token`'s admin; the connection as
/// answered (which shows a generated webhook password once).
async fn create_connection(
    api: &str,
    token: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let resp = reqwest::Client::new()
        .post(format!("{api}/api/v1/connections"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let answer: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        bail!(
            "creating the {} connection answered {status}: {answer}",
            body["provider"]
        );
    }
    Ok(answer)
}

/// A connection's id, from the API's answer.
fn connection_id(conn: &serde_json::Value) -> anyhow::Result<uuid::Uuid> {
    Ok(conn["id"].as_str().context("connection id")?.parse()?)
}

/// Inserts `n` projects of the bench org directly (no initial scans) and returns their ids.
async fn many_projects(db: &Db, n: u32) -> anyhow::Result<Vec<uuid::Uuid>> {
    let (org, _) = org_and_project(db).await?;
    let conn: uuid::Uuid = sqlx::query_scalar("SELECT id FROM vcs_connections WHERE org_id = $1")
        .bind(org)
        .fetch_one(db.pool())
        .await?;
    let ids = sqlx::query_scalar(
        "INSERT INTO projects (id, org_id, connection_id, provider_repo_id, full_name, clone_url,
                               default_branch, weekly_weekday, weekly_time)
         SELECT gen_random_uuid(), $1, $2, 'repo-' || i, 'bench/repo-' || i,
                'https://git.invalid/bench/repo-' || i, 'main', i % 7, '00:00'
         FROM generate_series(1, $3) i RETURNING id",
    )
    .bind(org)
    .bind(conn)
    .bind(n as i32)
    .fetch_all(db.pool())
    .await?;
    Ok(ids)
}

async fn bulk_bench(admin_url: &str, n: u32) -> anyhow::Result<()> {
    with_bench_db(admin_url, "bulk", |url| async move {
        let db = bench_db(&url, 16).await?;
        let ids = many_projects(&db, n).await?;
        let (base, token, server) = start_api(&db).await?;
        let client = reqwest::Client::new();
        let body = serde_json::json!({ "project_ids": ids });
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..5 {
            empty(&db, "scans").await?;
            let started = Instant::now();
            let resp = client
                .post(format!("{base}/api/v1/scans"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await?;
            let status = resp.status();
            let bytes = resp.bytes().await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            if !status.is_success() {
                bail!(
                    "bulk scan answered {status}: {}",
                    String::from_utf8_lossy(&bytes)
                );
            }
            rows = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM scans")
                .fetch_one(db.pool())
                .await?;
        }
        times.sort_by(f64::total_cmp);
        println!("### Bulk scan: {n} projects in one POST /api/v1/scans (5 runs)\n");
        println!("| median (ms) | min (ms) | max (ms) | scan rows written |");
        println!("|---:|---:|---:|---:|");
        println!(
            "| {:.0} | {:.0} | {:.0} | {rows} |\n",
            times[2], times[0], times[4]
        );
        server.abort();
        Ok(())
    })
    .await
}

async fn api_bench(admin_url: &str, seconds: u32) -> anyhow::Result<()> {
    with_bench_db(admin_url, "api", |url| async move {
        let db = bench_db(&url, 16).await?;
        many_projects(&db, 1_000).await?;
        let (base, token, server) = start_api(&db).await?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let conns = 2 * cores;
        let url = format!("{base}/api/v1/projects?limit=50");
        let out = tokio::process::Command::new("wrk")
            .args([
                "-t",
                &cores.to_string(),
                "-c",
                &conns.to_string(),
                "-d",
                &format!("{seconds}s"),
                "--latency",
            ])
            .arg("-H")
            .arg(format!("Authorization: Bearer {token}"))
            .arg(&url)
            .output()
            .await
            .context("running wrk (apt-get install wrk)")?;
        if !out.status.success() {
            bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let rps = text
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .map(str::trim)
            .unwrap_or("?");
        let p99 = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("99%"))
            .map(str::trim)
            .unwrap_or("?");
        let p50 = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("50%"))
            .map(str::trim)
            .unwrap_or("?");
        let non2xx = text
            .lines()
            .find(|l| l.contains("Non-2xx"))
            .unwrap_or("none");
        println!("### API read path: GET /api/v1/projects?limit=50 (1,000 projects), wrk {cores} threads, {conns} connections, {seconds} s\n");
        println!("| requests/s | p50 | p99 | non-2xx |");
        println!("|---:|---:|---:|---|");
        println!("| {rps} | {p50} | {p99} | {non2xx} |\n");
        server.abort();
        Ok(())
    })
    .await
}

/// Rules the synthetic scan runs; every finding belongs to one of them.
const INGEST_RULES: usize = 50;

/// `n` findings as a worker would report them for one full scan: 20 per file, one in a hundred
/// a secret (redacted and hashed), messages of typical length.
fn synthetic_findings(n: usize) -> Vec<ReportedFinding> {
    let severities = Severity::ALL;
    (0..n)
        .map(|i| {
            let rule: RuleId = format!("picket.bench.rule-{:02}", i % INGEST_RULES)
                .parse()
                .expect("valid rule id");
            let path = format!("src/module_{:05}/file_{:03}.py", i / 2_000, (i / 20) % 100);
            let anchor = format!("value = call_{i}(request.args['q'])");
            let secret = i % 100 == 99;
            ReportedFinding {
                product: if secret {
                    Product::Secrets
                } else {
                    Product::Code
                },
                fingerprint: Fingerprint::compute(&rule, &path, &anchor, 0),
                rule_id: rule,
                path,
                start_line: (i % 900 + 1) as u32,
                end_line: (i % 900 + 3) as u32,
                severity: severities[i % severities.len()],
                message: format!(
                    "User input flows into call_{i} without validation; this may allow injection."
                ),
                new_in_pr: false,
                secret: secret.then(|| RedactedSecret {
                    redacted: "AKIA…MPLE".to_owned(),
                    sha256: format!("{:064x}", i),
                }),
                suppressed: None,
                matched_lines: Vec::new(),
                dependency: None,
            }
        })
        .collect()
}

/// Escapes a value for COPY's text format.
fn copy_text(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// The baseline: the same rows, formatted and sent with one `COPY … FROM STDIN` into `table`
/// and committed. Returns rows/s.
async fn bare_copy(
    db: &Db,
    table: &str,
    org: uuid::Uuid,
    project: uuid::Uuid,
    scan: uuid::Uuid,
    findings: &[ReportedFinding],
) -> anyhow::Result<f64> {
    use std::fmt::Write as _;
    let started = Instant::now();
    let mut buf = String::with_capacity(findings.len() * 400);
    for f in findings {
        write!(
            buf,
            "{}\t{org}\t{project}\tmain\t{}\t",
            uuid::Uuid::now_v7(),
            f.product
        )?;
        copy_text(&mut buf, f.rule_id.as_str());
        buf.push('\t');
        copy_text(&mut buf, &f.path);
        write!(buf, "\t{}\t{}\t{}\t", f.start_line, f.end_line, f.severity)?;
        copy_text(&mut buf, &f.message);
        write!(buf, "\t{}\t{scan}\t{scan}\t", f.fingerprint)?;
        match &f.secret {
            Some(s) => {
                copy_text(&mut buf, &s.redacted);
                writeln!(buf, "\t\\\\x{}", s.sha256)?;
            }
            None => buf.push_str("\\N\t\\N\n"),
        }
    }
    let mut tx = db.pool().begin().await?;
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY {table} (id, org_id, project_id, git_ref, product, rule_id, path, start_line,
                           end_line, severity, message, fingerprint, first_seen_scan_id,
                           last_seen_scan_id, secret_redacted, secret_hash) FROM STDIN"
        ))
        .await?;
    copy.send(buf.as_bytes()).await?;
    let rows = copy.finish().await?;
    tx.commit().await?;
    let secs = started.elapsed().as_secs_f64();
    if rows != findings.len() as u64 {
        bail!("COPY wrote {rows} of {} rows", findings.len());
    }
    Ok(findings.len() as f64 / secs)
}

/// One full scan of `main` through the worker protocol's results upload: queued, claimed and
/// running (untimed), then `record_results` in its transaction, committed (timed, with the
/// upload digest the endpoint also computes). Returns rows/s and the number of new findings.
async fn picket_ingest(
    db: &Db,
    org: uuid::Uuid,
    project: uuid::Uuid,
    findings: &[ReportedFinding],
) -> anyhow::Result<(f64, i64)> {
    let scan = scans::enqueue(
        db.pool(),
        &NewScan::full(OrgId(org), ProjectId(project), ScanTrigger::Manual, "main"),
    )
    .await?
    .scan
    .id;
    let claimed = queue::claim(db.pool(), "bench", Duration::from_secs(600))
        .await?
        .context("the bench scan is not claimable")?;
    if claimed.scan.id != scan {
        bail!("claimed another scan than the bench's");
    }
    queue::advance_as(
        db.pool(),
        &claimed.lease,
        ScanState::Running,
        None,
        WORKER_ACTOR,
    )
    .await?;
    let results = ScanResults {
        attempt: claimed.scan.attempt,
        commit_sha: "a".repeat(40),
        merge_base_sha: None,
        rules_run: (0..INGEST_RULES)
            .map(|r| format!("picket.bench.rule-{r:02}").parse())
            .collect::<Result<_, _>>()?,
        deleted_paths: Vec::new(),
        unread_paths: Vec::new(),
        files_scanned: (findings.len() / 20) as u64,
        findings: findings.to_vec(),
        fixed_in_pr: Vec::new(),
        trail: Default::default(),
    };
    let started = Instant::now();
    let digest = worker::results_digest(&results)?;
    let mut tx = db.pool().begin().await?;
    let recorded = worker::record_results(&mut tx, &claimed.lease, &results, &digest).await?;
    tx.commit().await?;
    let secs = started.elapsed().as_secs_f64();
    let Recorded::Stored(summary) = recorded else {
        bail!("the upload was not stored: {recorded:?}");
    };
    if summary.findings.stored != findings.len() as i64 {
        bail!(
            "stored {} of {} findings",
            summary.findings.stored,
            findings.len()
        );
    }
    Ok((findings.len() as f64 / secs, summary.findings.new))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn ingest_bench(admin_url: &str, runs: usize, sizes: &[usize]) -> anyhow::Result<()> {
    let runs = runs.max(1);
    with_bench_db(admin_url, "ingest", |url| async move {
        let db = bench_db(&url, 4).await?;
        let (org, project) = org_and_project(&db).await?;
        // Same columns, defaults, checks and indexes as findings (LIKE copies no foreign keys).
        sqlx::query("CREATE TABLE bench_copy (LIKE findings INCLUDING ALL)")
            .execute(db.pool())
            .await?;
        let scan: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO scans (id, org_id, project_id, kind, trigger, priority, state, finished_at)
             VALUES (gen_random_uuid(), $1, $2, 'full', 'manual', 1, 'cancelled', now()) RETURNING id",
        )
        .bind(org)
        .bind(project)
        .fetch_one(db.pool())
        .await?;

        println!("### Findings ingest: one full scan's upload vs a bare COPY, same database, same run (median of {runs})\n");
        println!("| findings | bare COPY, no FKs (rows/s) | bare COPY into findings, with FKs (rows/s) | Picket, first sighting (rows/s) | ratio to bare | Picket, all seen again (rows/s) | ratio to bare |");
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        for &n in sizes {
            let findings = synthetic_findings(n);
            let (mut copy, mut copy_fk, mut first, mut again) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                empty(&db, "findings, scan_results, bench_copy").await?;
                sqlx::query("VACUUM ANALYZE findings, bench_copy")
                    .execute(db.pool())
                    .await?;
                copy.push(bare_copy(&db, "bench_copy", org, project, scan, &findings).await?);
                copy_fk.push(bare_copy(&db, "findings", org, project, scan, &findings).await?);
                empty(&db, "findings").await?;
                let (rate, new) = picket_ingest(&db, org, project, &findings).await?;
                if new != n as i64 {
                    bail!("first sighting: {new} of {n} findings new");
                }
                first.push(rate);
                let (rate, new) = picket_ingest(&db, org, project, &findings).await?;
                if new != 0 {
                    bail!("seen again: {new} findings new");
                }
                again.push(rate);
            }
            let (copy, copy_fk, first, again) =
                (median(copy), median(copy_fk), median(first), median(again));
            println!(
                "| {n} | {copy:.0} | {copy_fk:.0} | {first:.0} | {:.2} | {again:.0} | {:.2} |",
                first / copy,
                again / copy
            );
        }
        println!();
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    const DOCS: &str = include_str!("../../../docs/benchmarks.md");

    /// Every `picket-bench -- <arguments>` command docs/benchmarks.md gives, as arguments.
    fn documented_commands() -> Vec<Vec<&'static str>> {
        DOCS.lines()
            .filter_map(|line| line.split_once("-p picket-bench -- ").map(|(_, rest)| rest))
            .map(|rest| {
                let end = rest.find(['`', '#']).unwrap_or(rest.len());
                rest[..end].split_whitespace().collect()
            })
            .collect()
    }

    #[test]
    fn every_documented_command_parses_and_every_benchmark_is_documented() {
        let documented = documented_commands();
        assert!(documented.len() >= 7, "found only {documented:?}");
        for args in &documented {
            let argv = std::iter::once("picket-bench").chain(args.iter().copied());
            if let Err(e) = Args::try_parse_from(argv) {
                panic!(
                    "docs/benchmarks.md gives `picket-bench -- {}`: {e}",
                    args.join(" ")
                );
            }
        }
        for sub in Args::command().get_subcommands() {
            let name = sub.get_name();
            if name == "smoke" {
                continue;
            }
            assert!(
                documented.iter().any(|a| a.first() == Some(&name)),
                "benchmark `{name}` is not in docs/benchmarks.md"
            );
        }
    }

    #[test]
    fn smoke_runs_every_benchmark_but_all() {
        let runs = smoke_runs().expect("every benchmark has a smoke size");
        let names: Vec<String> = Args::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .filter(|n| n != "all" && n != "smoke")
            .collect();
        assert_eq!(runs.len(), names.len(), "{runs:?} vs {names:?}");
        assert!(runs.iter().all(|w| !matches!(w, Which::All | Which::Smoke)));
    }
}
