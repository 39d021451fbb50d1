//! The scheduler's executors on this machine (root needed for the sandbox):
//!
//! - **dispatch latency**: from `Executor::launch` to the worker talking to the control plane
//!   (a TCP connection to `PICKET_API_URL`, through the sandbox's forwarder or straight to
//!   loopback), for the local sandbox and for the same worker as a plain process, and the
//!   teardown that follows; the sandbox's overhead as a ratio;
//! - **throughput**: scans per minute the scheduler sustains with 2 concurrent environments:
//!   real API, real PostgreSQL, the real `picket worker` and Semgrep on a small repository, one
//!   full scan per project, from queued to succeeded.

use crate::{bench_db, many_projects, start_api, with_bench_db};
use anyhow::{bail, Context};
use picket_core::{InstallationId, OrgId, ProjectId, ScanId, ScanTrigger};
use picket_db::scans;
use picket_scheduler::process::ProcessExecutor;
use picket_scheduler::sandbox::{self, SandboxConfig, SandboxExecutor};
use picket_scheduler::{Environment, Executor, Launch, SchedulerConfig, WorkerCommand};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A worker that connects to the control plane and exits: what "started" means here.
fn probe_worker() -> WorkerCommand {
    WorkerCommand {
        program: "/usr/bin/bash".into(),
        args: vec![
            "-c".into(),
            r#"a=${PICKET_API_URL#http://}; exec 3<>/dev/tcp/${a%:*}/${a##*:}; printf x >&3"#
                .into(),
        ],
        env: vec![],
    }
}

fn launch(installation: &InstallationId) -> Launch {
    Launch {
        installation: installation.clone(),
        scan_id: ScanId::new(),
        attempt: 1,
        org_id: OrgId::new(),
        token: SecretString::from("pks_bench".to_owned()),
        deadline: Duration::from_secs(60),
    }
}

/// Launches `runs` probes one after the other: (launch → connected, teardown) per run.
async fn time_launches<E: Executor>(
    exec: &E,
    api: &tokio::net::TcpListener,
    runs: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut started, mut torn) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut env = exec.launch(&launch(exec.installation())).await?;
        let launched = t0.elapsed();
        let (_conn, _) = tokio::time::timeout(Duration::from_secs(20), api.accept())
            .await
            .context("the worker never reached the API")??;
        started.push(t0.elapsed());
        if std::env::var_os("PICKET_BENCH_TRACE").is_some() {
            eprintln!("launch {launched:?} connected {:?}", t0.elapsed());
        }
        env.wait().await?;
        let t1 = Instant::now();
        env.teardown().await;
        torn.push(t1.elapsed());
    }
    Ok((started, torn))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p90(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 9 / 10).min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

pub async fn latency_bench(runs: usize) -> anyhow::Result<()> {
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = api.local_addr()?;
    let root = tempfile::tempdir()?;
    let mut process_worker = probe_worker();
    process_worker
        .env
        .push(("PICKET_API_URL".into(), format!("http://{addr}")));
    // No database: an installation of the benchmark's own.
    let installation = InstallationId::random();
    let process = ProcessExecutor::new(installation.clone(), process_worker);
    let sandbox = SandboxExecutor::new(
        SandboxConfig::new(installation, root.path().join("sandboxes"), addr),
        probe_worker(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("the sandbox is unavailable: {e}"))?;
    // Warm-up (page cache, first namespace).
    time_launches(&process, &api, 3).await?;
    time_launches(&sandbox, &api, 3).await?;
    let (p_start, p_down) = time_launches(&process, &api, runs).await?;
    let (s_start, s_down) = time_launches(&sandbox, &api, runs).await?;
    let ratio = median(s_start.clone()).as_secs_f64() / median(p_start.clone()).as_secs_f64();
    println!("### Dispatch latency: launch → worker connected to the API ({runs} runs each)\n");
    println!("| executor | start p50 | start p90 | teardown p50 | teardown p90 |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| plain process | {} | {} | {} | {} |",
        ms(median(p_start.clone())),
        ms(p90(p_start)),
        ms(median(p_down.clone())),
        ms(p90(p_down))
    );
    println!(
        "| local sandbox (netns + nftables + bwrap) | {} | {} | {} | {} |",
        ms(median(s_start.clone())),
        ms(p90(s_start)),
        ms(median(s_down.clone())),
        ms(p90(s_down))
    );
    println!("\nSandbox start overhead: {ratio:.1}× the plain process (medians).\n");
    Ok(())
}

/// `target/<profile>/picket`, next to this benchmark's binary.
pub(crate) fn picket_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .context("the benchmark's directory")?
        .join("picket");
    if !path.exists() {
        bail!(
            "{} is missing: build it first (cargo build --release -p picket-cli)",
            path.display()
        );
    }
    Ok(path)
}

/// A git repository made from the demo sample app.
fn sample_repo(dir: &Path) -> anyhow::Result<PathBuf> {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/demo/sample-app");
    let repo = dir.join("sample");
    let status = Command::new("cp")
        .arg("-r")
        .arg(&sample)
        .arg(&repo)
        .status()?;
    if !status.success() {
        bail!("copying {}", sample.display());
    }
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
            "commit",
            "-qm",
            "sample",
        ],
    ] {
        let ok = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .status()?
            .success();
        if !ok {
            bail!("git {args:?} failed");
        }
    }
    Ok(std::fs::canonicalize(repo)?)
}

pub async fn throughput_bench(admin_url: &str, scans: u32) -> anyhow::Result<()> {
    let exe = picket_binary()?;
    let root = tempfile::tempdir()?;
    let repo = sample_repo(root.path())?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let semgrep = std::fs::canonicalize(manifest.join("../../.venv/bin/semgrep"))
        .context("the pinned semgrep (make semgrep)")?;
    let rules = std::fs::canonicalize(manifest.join("../worker/rules"))?;
    let worker = |api: SocketAddr, direct: bool| {
        let mut env = vec![
            ("PICKET_SEMGREP".to_owned(), semgrep.display().to_string()),
            ("PICKET_RULES_DIR".to_owned(), rules.display().to_string()),
            ("PICKET_ALLOW_LOCAL_REPOS".to_owned(), "true".to_owned()),
            ("PICKET_LOG".to_owned(), "warn".to_owned()),
        ];
        if direct {
            env.push(("PICKET_API_URL".to_owned(), format!("http://{api}")));
        }
        WorkerCommand {
            program: exe.clone(),
            args: vec!["worker".into()],
            env,
        }
    };
    println!("### Scheduler throughput: {scans} full scans of the demo repository, 2 at a time\n");
    println!("| executor | wall time | scans/minute | succeeded |");
    println!("|---|---:|---:|---:|");
    let (worker, exe, root, repo, rules, semgrep) = (&worker, &exe, &root, &repo, &rules, &semgrep);
    for kind in ["plain process", "local sandbox"] {
        with_bench_db(admin_url, "dispatch", |url| async move {
            let db = bench_db(&url, 16).await?;
            let projects = many_projects(&db, scans).await?;
            sqlx::query("UPDATE projects SET clone_url = $1")
                .bind(format!("file://{}", repo.display()))
                .execute(db.pool())
                .await?;
            // A local repository needs no clone credential.
            sqlx::query("UPDATE vcs_connections SET credentials = NULL")
                .execute(db.pool())
                .await?;
            let (base, _token, server) = start_api(&db).await?;
            let api: SocketAddr = base.trim_start_matches("http://").parse()?;
            let org: uuid::Uuid = sqlx::query_scalar("SELECT id FROM orgs WHERE slug = 'bench'")
                .fetch_one(db.pool())
                .await?;
            let ids: Vec<ProjectId> = projects.iter().map(|p| ProjectId(*p)).collect();
            let mut conn = db.pool().acquire().await?;
            scans::enqueue_bulk(&mut conn, OrgId(org), &ids, ScanTrigger::Manual, None)
                .await?
                .map_err(|_| anyhow::anyhow!("the bench's projects are unknown"))?;
            drop(conn);
            let mut cfg = SchedulerConfig::new("bench");
            cfg.slots = 2;
            cfg.poll = Duration::from_millis(200);
            let stop = CancellationToken::new();
            let started = Instant::now();
            let installation = picket_db::installation::id(db.pool()).await?;
            let run = match kind {
                "plain process" => tokio::spawn(picket_scheduler::run(
                    db.clone(),
                    ProcessExecutor::new(installation, worker(api, true)),
                    cfg,
                    stop.clone(),
                )),
                _ => {
                    let mut sb =
                        SandboxConfig::new(installation, root.path().join("sandboxes"), api);
                    sb.readonly = vec![exe.clone(), rules.clone()];
                    sb.readonly.extend(sandbox::engine_paths(semgrep));
                    sb.local_repos = vec![repo.clone()];
                    let exec = SandboxExecutor::new(sb, worker(api, false))
                        .await
                        .map_err(|e| anyhow::anyhow!("the sandbox is unavailable: {e}"))?;
                    tokio::spawn(picket_scheduler::run(db.clone(), exec, cfg, stop.clone()))
                }
            };
            let done = loop {
                let done: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM scans WHERE state::text NOT IN ('queued', 'claimed', 'running', 'reporting')",
                )
                .fetch_one(db.pool())
                .await?;
                if done >= i64::from(scans) || started.elapsed() > Duration::from_secs(900) {
                    break started.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            stop.cancel();
            run.await?;
            server.abort();
            let succeeded: i64 =
                sqlx::query_scalar("SELECT count(*) FROM scans WHERE state = 'succeeded'")
                    .fetch_one(db.pool())
                    .await?;
            println!(
                "| {kind} | {:.1} s | {:.1} | {succeeded}/{scans} |",
                done.as_secs_f64(),
                f64::from(scans) / done.as_secs_f64() * 60.0
            );
            // A throughput of failed scans measures nothing.
            if succeeded != i64::from(scans) {
                bail!("{kind}: {succeeded} of {scans} scans succeeded");
            }
            Ok(())
        })
        .await?;
    }
    println!();
    Ok(())
}
