//! Benchmarks, each on a fresh database it creates and drops.
//!
//! - `queue`: 8 concurrent claimers take N scans through claim → running → reporting →
//!   succeeded, against pgbench running a bare `FOR UPDATE SKIP LOCKED` claim + update with 8
//!   clients over the same number of rows, in the same database, in the same run.
//! - `bulk`: one `POST /api/v1/scans` with 10,000 project ids over real HTTP: latency and rows.
//! - `api`: `wrk` against `GET /api/v1/projects` with 2 connections per core.

// The report is printed to stdout as Markdown: printing is this crate's output.
#![allow(clippy::print_stdout)]

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use picket_core::ScanState;
use picket_db::crypto::CredentialCipher;
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

#[derive(Debug, Clone, Copy, Subcommand)]
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
    /// All of the above with their defaults.
    All,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Queue { scans } => queue_bench(&args.database_url, scans).await,
        Which::Bulk { projects } => bulk_bench(&args.database_url, projects).await,
        Which::Api { seconds } => api_bench(&args.database_url, seconds).await,
        Which::All => {
            queue_bench(&args.database_url, 20_000).await?;
            bulk_bench(&args.database_url, 10_000).await?;
            api_bench(&args.database_url, 15).await
        }
    }
}

/// A database created for one benchmark and dropped afterwards.
struct BenchDb {
    admin_url: String,
    name: String,
    url: String,
}

impl BenchDb {
    async fn create(admin_url: &str, label: &str) -> anyhow::Result<BenchDb> {
        let name = format!("picket_bench_{label}_{}", std::process::id());
        let mut conn = PgConnection::connect(admin_url)
            .await
            .context("connecting to DATABASE_URL")?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut conn)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let url = replace_db(admin_url, &name)?;
        Ok(BenchDb {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    async fn db(&self, max_connections: u32) -> anyhow::Result<Db> {
        let mut cfg = DbConfig::new(&self.url);
        cfg.max_connections = max_connections;
        let db = Db::connect(&cfg).await?;
        db.migrate().await?;
        Ok(db)
    }

    async fn drop(self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await?;
        Ok(())
    }
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

async fn queue_bench(admin_url: &str, n: u32) -> anyhow::Result<()> {
    let bench = BenchDb::create(admin_url, "queue").await?;
    let db = bench.db(10).await?;
    let (org, project) = org_and_project(&db).await?;
    sqlx::query(
        "INSERT INTO scans (id, org_id, project_id, kind, trigger, priority, git_ref, base_ref, pr_number)
         SELECT gen_random_uuid(), $1, $2, 'diff', 'pull_request', 0, 'f', 'main', i
         FROM generate_series(1, $3) i",
    )
    .bind(org)
    .bind(project)
    .bind(n as i32)
    .execute(db.pool())
    .await?;
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
    sqlx::query("VACUUM ANALYZE").execute(db.pool()).await?;

    // Picket: claim, then the three fenced moves to `succeeded`, each with its audit event.
    let lease = Duration::from_secs(300);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..8 {
        let pool = db.pool().clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("bench-{c}");
            let mut done = 0u32;
            while let Some(claimed) = queue::claim(&pool, &owner, lease).await? {
                for to in [
                    ScanState::Running,
                    ScanState::Reporting,
                    ScanState::Succeeded,
                ] {
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
    let picket_secs = started.elapsed().as_secs_f64();
    if total != n {
        bail!("picket completed {total} of {n} scans");
    }

    // The bare baseline: pgbench, 8 clients, each transaction claims one row and completes it.
    let script = std::env::temp_dir().join(format!("picket-bench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "UPDATE bench_jobs SET state = 'claimed', owner = 'pgbench' WHERE id = (\n  SELECT id FROM bench_jobs WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED\n) RETURNING id AS job \\gset\nUPDATE bench_jobs SET state = 'done' WHERE id = :job;\n",
    )?;
    let per_client = n / 8;
    let started = Instant::now();
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            "8",
            "-j",
            "2",
            "-t",
            &per_client.to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(&bench.url)
        .output()
        .context("running pgbench (apt-get install postgresql-client)")?;
    let pgbench_secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&script);
    if !out.status.success() {
        bail!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pgbench_tps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .context("pgbench printed no tps line")?;
    let picket_rate = f64::from(n) / picket_secs;
    println!("### Queue: claim + complete, 8 concurrent claimers, {n} scans\n");
    println!("| runner | wall time (s) | scans/s |");
    println!("|---|---:|---:|");
    println!("| Picket (claim_scan + running + reporting + succeeded, 4 commits, 4 audit rows) | {picket_secs:.2} | {picket_rate:.0} |");
    println!("| pgbench bare SKIP LOCKED claim + update (2 commits) | {pgbench_secs:.2} | {pgbench_tps:.0} |");
    println!(
        "\nRatio Picket / bare: **{:.2}x** (goal >= 0.5x)\n",
        picket_rate / pgbench_tps
    );
    drop(db);
    bench.drop().await
}

/// Starts the API in-process on 127.0.0.1:0 with a fresh admin token.
async fn start_api(db: &Db) -> anyhow::Result<(String, String, tokio::task::JoinHandle<()>)> {
    let org = match picket_db::orgs::get_by_slug(db.pool(), "bench").await {
        Ok(o) => o,
        Err(_) => picket_db::orgs::create(db.pool(), "bench", "Bench").await?,
    };
    let (_, token) =
        picket_db::tokens::create(db.pool(), org.id, "bench", picket_core::Role::Admin, None)
            .await?;
    let cipher = CredentialCipher::from_hex(&CredentialCipher::generate_hex())?;
    let state = picket_api::AppState::new(db.clone(), cipher);
    let router = picket_api::router(state, &picket_api::ApiConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let _ = picket_api::serve(listener, router, std::future::pending()).await;
    });
    Ok((base, token.expose_secret().to_owned(), server))
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
    let bench = BenchDb::create(admin_url, "bulk").await?;
    let db = bench.db(16).await?;
    let ids = many_projects(&db, n).await?;
    let (base, token, server) = start_api(&db).await?;
    let client = reqwest::Client::new();
    let body = serde_json::json!({ "project_ids": ids });
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..5 {
        sqlx::query("DELETE FROM scans").execute(db.pool()).await?;
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
    drop(db);
    bench.drop().await
}

async fn api_bench(admin_url: &str, seconds: u32) -> anyhow::Result<()> {
    let bench = BenchDb::create(admin_url, "api").await?;
    let db = bench.db(16).await?;
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
    drop(db);
    bench.drop().await
}
