//! The dispatch loop: claim, launch, keep the lease, end the attempt, tear down.
//!
//! A scan is claimed when a slot is free (woken by NOTIFY, polling as a fallback), its per-scan
//! token is minted, and the executor starts its environment. While the worker runs the lease is
//! renewed every third of its length. The environment is stopped when the lease is lost (the scan
//! was cancelled or rescued elsewhere), when the scan's deadline passes (the scan becomes
//! `timed_out`) or when the scheduler stops. A worker that exits without having reported leaves
//! the scan active under our lease: the attempt is failed for it, and a full scan is retried once
//! (`queue::fail` applies the rule). Every environment is torn down, whatever happened.

use crate::executor::{Environment, Executor, Launch};
use crate::SchedulerConfig;
use picket_core::ScanState;
use picket_db::queue::{self, Claimed, Lease, Waker};
use picket_db::{attempts, Db, DbError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The target of the one line logged when a scan starts and the one when it ends (project,
/// kind, outcome, duration, findings): what `picket run` shows by default.
pub const SCAN_LOG_TARGET: &str = "picket::scans";

/// Claims and runs scans until `stop`; then stops claiming, stops its environments and waits
/// for their teardown. Scans not yet started are handed back; running ones keep their lease
/// until it lapses and the rescuer requeues them.
pub async fn run<E: Executor>(
    db: Db,
    executor: Arc<E>,
    cfg: Arc<SchedulerConfig>,
    stop: CancellationToken,
) {
    let free = Arc::new(Semaphore::new(cfg.slots.max(1)));
    let tasks = TaskTracker::new();
    let mut waker = Waker::new(db.pool()).await;
    tracing::info!(
        executor = executor.kind(),
        installation = %executor.installation(),
        slots = cfg.slots,
        owner = %cfg.owner,
        "scheduler started"
    );
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = Arc::clone(&free).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        match queue::claim(db.pool(), &cfg.owner, cfg.lease).await {
            Ok(Some(claimed)) => {
                let (db, executor, cfg, stop) = (
                    db.clone(),
                    Arc::clone(&executor),
                    Arc::clone(&cfg),
                    stop.clone(),
                );
                tasks.spawn(async move {
                    let scan = claimed.scan.id;
                    if let Err(e) = run_one(&db, &*executor, &cfg, claimed, &stop).await {
                        tracing::error!(%scan, error = %e, "dispatching the scan failed");
                    }
                    drop(permit);
                });
            }
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = waker.wait(cfg.poll) => {}
                }
            }
            Err(e) => {
                drop(permit);
                tracing::error!(error = %e, "claiming a scan failed");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(cfg.poll) => {}
                }
            }
        }
    }
    tasks.close();
    tasks.wait().await;
    tracing::info!("scheduler stopped");
}

/// One attempt, from claim to teardown.
async fn run_one<E: Executor>(
    db: &Db,
    executor: &E,
    cfg: &SchedulerConfig,
    claimed: Claimed,
    stop: &CancellationToken,
) -> Result<(), DbError> {
    let Claimed { scan, lease: held } = claimed;
    let claimed_at = Instant::now();
    let token = queue::mint_scan_token(db.pool(), &held).await?;
    let launch = Launch {
        installation: executor.installation().clone(),
        scan_id: scan.id,
        attempt: scan.attempt,
        org_id: scan.org_id,
        token,
        deadline: cfg.scan_timeout,
    };
    // Where the attempt runs, for its record; written before the launch so that a launch that
    // fails is recorded too.
    attempts::record_launch(
        db.pool(),
        scan.id,
        scan.attempt,
        scan.org_id,
        executor.kind(),
        &launch.env_name(),
    )
    .await?;
    let mut env = match executor.launch(&launch).await {
        Ok(env) => env,
        Err(e) => {
            cfg.metrics.ended("launch_failed");
            tracing::error!(scan = %scan.id, error = %e, "the executor could not start the scan");
            return end(queue::fail(
                db.pool(),
                &held,
                e.code(),
                &e.to_string(),
                cfg.retry_backoff,
            )
            .await);
        }
    };
    cfg.metrics.launched(claimed_at.elapsed().as_secs_f64());
    let project = match picket_db::scans::summary(db.pool(), scan.id).await {
        Ok(s) => s.project,
        Err(e) => {
            tracing::warn!(scan = %scan.id, error = %e, "reading the scan's project failed");
            scan.project_id.to_string()
        }
    };
    let retry = match scan.attempt {
        1 => String::new(),
        n => format!(", attempt {n}"),
    };
    tracing::info!(
        target: SCAN_LOG_TARGET,
        scan = %scan.id,
        attempt = scan.attempt,
        executor = executor.kind(),
        launch_ms = claimed_at.elapsed().as_millis() as u64,
        "scan of {project} ({}{retry}) started",
        scan.kind
    );
    let outcome = watch(db, cfg, &held, &mut env, stop).await;
    env.teardown().await;
    let ended = end_outcome(db, cfg, &held, &scan, claimed_at, outcome).await;
    log_end(db, &scan, &project, claimed_at.elapsed()).await;
    ended
}

/// Logs the scan's end line: its state now, how long it took, its findings or its error.
async fn log_end(db: &Db, scan: &picket_db::scans::ScanRecord, project: &str, took: Duration) {
    let secs = took.as_secs_f64();
    match picket_db::scans::summary(db.pool(), scan.id).await {
        Ok(s) if s.state == ScanState::Succeeded => tracing::info!(
            target: SCAN_LOG_TARGET,
            scan = %scan.id,
            state = %s.state,
            secs,
            findings = s.findings,
            "scan of {project} ({}) succeeded in {secs:.1} s, {} findings",
            s.kind,
            s.findings
        ),
        Ok(s) => tracing::info!(
            target: SCAN_LOG_TARGET,
            scan = %scan.id,
            state = %s.state,
            secs,
            error_code = s.error_code.as_deref().unwrap_or_default(),
            "scan of {project} ({}) {} after {secs:.1} s{}",
            s.kind,
            match s.state {
                ScanState::Queued => "queued again",
                other => other.as_str(),
            },
            s.error_code
                .as_deref()
                .map(|c| format!(": {c}"))
                .unwrap_or_default()
        ),
        Err(e) => tracing::warn!(scan = %scan.id, error = %e, "reading the scan's outcome failed"),
    }
}

/// Records how the attempt ended, once its environment is torn down.
async fn end_outcome(
    db: &Db,
    cfg: &SchedulerConfig,
    held: &Lease,
    scan: &picket_db::scans::ScanRecord,
    claimed_at: Instant,
    outcome: Watched,
) -> Result<(), DbError> {
    cfg.metrics.torn_down();
    cfg.metrics.ended(match &outcome {
        Watched::Exited(_) => "exited",
        Watched::LeaseLost => "lease_lost",
        Watched::TimedOut => "timed_out",
        Watched::Stopped => "stopped",
        Watched::Lost(_) => "lost",
    });
    match outcome {
        Watched::Exited(detail) => {
            // A worker that reported its outcome ended the scan, and our lease with it. One
            // that died first leaves the scan active under our lease: fail the attempt for it.
            let msg = format!("the worker exited ({detail}) without reporting a result");
            match queue::fail(db.pool(), held, "worker_exited", &msg, cfg.retry_backoff).await {
                Ok(outcome) => tracing::warn!(scan = %scan.id, ?outcome, "{msg}"),
                Err(DbError::LeaseLost) => tracing::debug!(
                    scan = %scan.id,
                    secs = claimed_at.elapsed().as_secs_f64(),
                    "scan finished"
                ),
                Err(e) => return Err(e),
            }
            Ok(())
        }
        Watched::LeaseLost => {
            tracing::warn!(scan = %scan.id, "lease lost (cancelled or rescued): environment stopped");
            Ok(())
        }
        Watched::TimedOut => {
            let msg = format!("the scan ran longer than {} s", cfg.scan_timeout.as_secs());
            tracing::warn!(scan = %scan.id, "{msg}");
            end(queue::advance(
                db.pool(),
                held,
                ScanState::TimedOut,
                Some(("scan_timeout", &msg)),
            )
            .await)
        }
        Watched::Stopped => {
            // Hand back a scan whose worker had not started yet; a running one keeps its
            // lease until it lapses and the rescuer requeues it.
            end(queue::release(db.pool(), held, "scheduler stopping").await)
        }
        Watched::Lost(e) => {
            let msg = format!("the executor lost the worker: {e}");
            end(
                queue::fail(db.pool(), held, e.code(), &msg, cfg.retry_backoff)
                    .await
                    .map(|_| ()),
            )
        }
    }
}

enum Watched {
    Exited(String),
    LeaseLost,
    TimedOut,
    Stopped,
    Lost(crate::executor::ExecError),
}

async fn watch<En: Environment>(
    db: &Db,
    cfg: &SchedulerConfig,
    held: &Lease,
    env: &mut En,
    stop: &CancellationToken,
) -> Watched {
    let deadline = tokio::time::sleep(cfg.scan_timeout);
    tokio::pin!(deadline);
    let mut beat = tokio::time::interval(cfg.lease / 3);
    beat.tick().await;
    loop {
        tokio::select! {
            exit = env.wait() => return match exit {
                Ok(exit) => Watched::Exited(exit.detail),
                Err(e) => Watched::Lost(e),
            },
            _ = beat.tick() => match queue::heartbeat(db.pool(), held, cfg.lease).await {
                Ok(_) => {}
                Err(DbError::LeaseLost) => return Watched::LeaseLost,
                Err(e) => tracing::warn!(scan = %held.scan_id, error = %e, "heartbeat failed; retrying"),
            },
            _ = &mut deadline => return Watched::TimedOut,
            _ = stop.cancelled() => return Watched::Stopped,
        }
    }
}

/// A move that found the lease gone needs no more work: someone else ended the scan.
fn end<T>(r: Result<T, DbError>) -> Result<(), DbError> {
    match r {
        Ok(_) | Err(DbError::LeaseLost) => Ok(()),
        Err(e) => Err(e),
    }
}
