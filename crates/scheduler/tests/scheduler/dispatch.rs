//! The dispatch loop on real PostgreSQL, with plain-process workers standing in for the real
//! one: a bash script chosen per test that records its pid, then dies, sleeps or exits.

use picket_core::{OrgId, ProjectId, ScanId, ScanState, ScanTrigger};
use picket_db::scans::{self, NewScan};
use picket_db::Db;
use picket_scheduler::process::ProcessExecutor;
use picket_scheduler::{SchedulerConfig, WorkerCommand};
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

async fn full_scan(pool: &PgPool) -> (OrgId, ScanId) {
    let org = OrgId::new();
    sqlx::query("INSERT INTO orgs (id, slug, name) VALUES ($1, 'o', 'O')")
        .bind(org.0)
        .execute(pool)
        .await
        .unwrap();
    let conn = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO vcs_connections (id, org_id, provider, name) VALUES ($1, $2, 'git', 'c')",
    )
    .bind(conn)
    .bind(org.0)
    .execute(pool)
    .await
    .unwrap();
    let project = ProjectId::new();
    sqlx::query(
        "INSERT INTO projects (id, org_id, connection_id, provider_repo_id, full_name, clone_url,
                               default_branch, weekly_weekday, weekly_time)
         VALUES ($1, $2, $3, 'r', 'o/r', 'https://git.invalid/o/r', 'main', 0, '00:00')",
    )
    .bind(project.0)
    .bind(org.0)
    .bind(conn)
    .execute(pool)
    .await
    .unwrap();
    let new = NewScan::full(org, project, ScanTrigger::Manual, "main");
    (org, scans::enqueue(pool, &new).await.unwrap().scan.id)
}

/// A worker that writes its pid to `<dir>/pid-<n>` and then runs `then`.
fn worker(dir: &Path, then: &str) -> WorkerCommand {
    WorkerCommand {
        program: "/usr/bin/bash".into(),
        args: vec![
            "-c".into(),
            format!("echo $$ > '{}'/pid-$(date +%s%N); {then}", dir.display()),
        ],
        env: vec![],
    }
}

fn config() -> SchedulerConfig {
    let mut cfg = SchedulerConfig::new("test");
    cfg.slots = 1;
    cfg.lease = Duration::from_secs(3);
    cfg.poll = Duration::from_millis(50);
    cfg.retry_backoff = Duration::ZERO;
    cfg
}

async fn state(pool: &PgPool, scan: ScanId) -> (ScanState, i32, Option<String>) {
    let (state, attempt, code): (String, i32, Option<String>) =
        sqlx::query_as("SELECT state::text, attempt, error_code FROM scans WHERE id = $1")
            .bind(scan.0)
            .fetch_one(pool)
            .await
            .unwrap();
    (state.parse().unwrap(), attempt, code)
}

async fn until(pool: &PgPool, scan: ScanId, want: ScanState, within: Duration) {
    let start = Instant::now();
    loop {
        let now = state(pool, scan).await;
        if now.0 == want {
            return;
        }
        assert!(start.elapsed() < within, "still {now:?} after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The pids the workers recorded.
fn pids(dir: &Path) -> Vec<i32> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("pid-"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap().trim().parse().unwrap())
        .collect()
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// The scheduler on `pool`'s installation, with plain-process workers.
async fn start(
    pool: &PgPool,
    cfg: SchedulerConfig,
    worker: WorkerCommand,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let installation = picket_db::installation::id(pool).await.unwrap();
    let run = tokio::spawn(picket_scheduler::run(
        Db::from_pool(pool.clone()),
        ProcessExecutor::new(installation, worker),
        cfg,
        stop.clone(),
    ));
    (stop, run)
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_worker_that_dies_fails_the_attempt_and_a_full_scan_runs_once_more(pool: PgPool) {
    let (org, scan) = full_scan(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let (stop, run) = start(&pool, config(), worker(dir.path(), "exit 3")).await;
    until(&pool, scan, ScanState::Failed, Duration::from_secs(20)).await;
    stop.cancel();
    run.await.unwrap();
    let (_, attempt, code) = state(&pool, scan).await;
    assert_eq!(attempt, 2, "a full scan gets exactly one retry");
    assert_eq!(code.as_deref(), Some("worker_exited"));
    assert_eq!(pids(dir.path()).len(), 2, "one worker per attempt");
    // Each attempt's record says where it ran.
    let installation = picket_db::installation::id(&pool).await.unwrap();
    let attempts = picket_db::attempts::list(&pool, org, scan).await.unwrap();
    let ran: Vec<(i32, Option<&str>, Option<String>)> = attempts
        .iter()
        .map(|a| (a.attempt, a.executor.as_deref(), a.environment.clone()))
        .collect();
    assert_eq!(
        ran,
        [1, 2].map(|n| (
            n,
            Some("process"),
            Some(picket_scheduler::executor::env_name(&installation, scan, n))
        ))
    );
    assert!(attempts.iter().all(|a| a.launched_at.is_some()));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_deadline_times_the_scan_out_and_stops_its_worker(pool: PgPool) {
    let (_, scan) = full_scan(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.scan_timeout = Duration::from_secs(1);
    let (stop, run) = start(&pool, cfg, worker(dir.path(), "exec sleep 60")).await;
    until(&pool, scan, ScanState::TimedOut, Duration::from_secs(20)).await;
    let (_, attempt, code) = state(&pool, scan).await;
    assert_eq!((attempt, code.as_deref()), (1, Some("scan_timeout")));
    let pid = pids(dir.path())[0];
    let start_wait = Instant::now();
    while alive(pid) && start_wait.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(pid), "the worker outlived its scan's deadline");
    stop.cancel();
    run.await.unwrap();
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn cancelling_a_running_scan_stops_its_worker(pool: PgPool) {
    let (org, scan) = full_scan(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let (stop, run) = start(&pool, config(), worker(dir.path(), "exec sleep 60")).await;
    until(&pool, scan, ScanState::Claimed, Duration::from_secs(20)).await;
    while pids(dir.path()).is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = pids(dir.path())[0];
    assert!(alive(pid));
    let mut conn = pool.acquire().await.unwrap();
    scans::cancel(&mut conn, org, scan, "test").await.unwrap();
    // The next heartbeat (a third of the 3 s lease) finds the lease gone.
    let start_wait = Instant::now();
    while alive(pid) && start_wait.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(pid), "the worker of a cancelled scan still runs");
    assert_eq!(state(&pool, scan).await.0, ScanState::Cancelled);
    stop.cancel();
    run.await.unwrap();
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn stopping_the_scheduler_hands_back_a_scan_that_has_not_started(pool: PgPool) {
    let (_, scan) = full_scan(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let (stop, run) = start(&pool, config(), worker(dir.path(), "exec sleep 60")).await;
    until(&pool, scan, ScanState::Claimed, Duration::from_secs(20)).await;
    while pids(dir.path()).is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the scheduler stops")
        .unwrap();
    let pid = pids(dir.path())[0];
    assert!(!alive(pid), "a worker outlived its scheduler");
    // Its worker never reported running: the scan is queued again, attempt not used up.
    let (now, attempt, _) = state(&pool, scan).await;
    assert_eq!(now, ScanState::Queued);
    assert_eq!(attempt, 1);
}
