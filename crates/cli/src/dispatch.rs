//! Runs queued scans on this machine, each as a child process `picket worker`.
//!
//! This is `picket run`'s executor until the sandboxed and Kubernetes executors land (issue 4):
//! the worker is NOT isolated from the host here; docs/architecture.md says so. The loop claims
//! a scan when a slot is free (woken by NOTIFY, polling as a fallback), mints the attempt's
//! per-scan token, starts the worker with the token in its environment, keeps the lease alive
//! while the worker runs, kills the worker when the lease is lost, the scan's time is up or
//! Picket stops, and records a failure when the worker exits without having reported.

use clap::Args;
use picket_core::ScanState;
use picket_db::queue::{self, Claimed, Waker};
use picket_db::{Db, DbError};
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Args)]
pub struct DispatchArgs {
    /// Scans run at once on this machine. Default: the number of CPUs.
    #[arg(long, env = "PICKET_WORKER_SLOTS")]
    pub worker_slots: Option<usize>,
    /// Lease length, in seconds; renewed every third of it while the worker runs. Default 60.
    #[arg(long, env = "PICKET_LEASE_SECS", default_value_t = 60)]
    pub lease_secs: u64,
    /// Longest one scan may run before it is stopped as timed out, in seconds. Default 3600.
    #[arg(long, env = "PICKET_SCAN_TIMEOUT_SECS", default_value_t = 3600)]
    pub scan_timeout_secs: u64,
}

/// Where the workers find the control plane.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub api_url: String,
    pub args: DispatchArgs,
}

/// Claims and runs scans until `stop`. Running workers are killed on stop; their leases lapse
/// and the rescuer requeues them on the next start.
pub async fn run(db: Db, dispatch: Dispatch, stop: CancellationToken) {
    let slots = dispatch
        .args
        .worker_slots
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let owner = format!("local-{}", std::process::id());
    let lease = Duration::from_secs(dispatch.args.lease_secs.max(3));
    let free = Arc::new(Semaphore::new(slots));
    let mut waker = Waker::new(db.pool()).await;
    let dispatch = Arc::new(dispatch);
    tracing::info!(
        slots,
        "local dispatcher started (workers run as plain child processes)"
    );
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = Arc::clone(&free).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        match queue::claim(db.pool(), &owner, lease).await {
            Ok(Some(claimed)) => {
                let (db, dispatch, stop) = (db.clone(), Arc::clone(&dispatch), stop.clone());
                tokio::spawn(async move {
                    let scan = claimed.scan.id;
                    if let Err(e) = run_one(&db, &dispatch, claimed, lease, &stop).await {
                        tracing::error!(%scan, error = %e, "dispatching the scan failed");
                    }
                    drop(permit);
                });
            }
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = waker.wait(Duration::from_secs(5)) => {}
                }
            }
            Err(e) => {
                drop(permit);
                tracing::error!(error = %e, "claiming a scan failed");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        }
    }
}

async fn run_one(
    db: &Db,
    dispatch: &Dispatch,
    claimed: Claimed,
    lease: Duration,
    stop: &CancellationToken,
) -> Result<(), DbError> {
    let Claimed { scan, lease: held } = claimed;
    let token = queue::mint_scan_token(db.pool(), &held).await?;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            let msg = format!("cannot find the picket executable: {e}");
            queue::fail(
                db.pool(),
                &held,
                "worker_start_failed",
                &msg,
                Duration::from_secs(30),
            )
            .await?;
            return Ok(());
        }
    };
    let mut child = match tokio::process::Command::new(exe)
        .arg("worker")
        .env("PICKET_API_URL", &dispatch.api_url)
        .env("PICKET_SCAN_TOKEN", token.expose_secret())
        .env("PICKET_LOG_FORMAT", "json")
        // Single-machine use: projects may live in local repositories (the demo does).
        .env("PICKET_ALLOW_LOCAL_REPOS", "true")
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            let msg = format!("cannot start the worker: {e}");
            queue::fail(
                db.pool(),
                &held,
                "worker_start_failed",
                &msg,
                Duration::from_secs(30),
            )
            .await?;
            return Ok(());
        }
    };
    tracing::info!(scan = %scan.id, attempt = scan.attempt, "worker started");
    let deadline = tokio::time::sleep(Duration::from_secs(dispatch.args.scan_timeout_secs));
    tokio::pin!(deadline);
    let mut beat = tokio::time::interval(lease / 3);
    beat.tick().await;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = beat.tick() => match queue::heartbeat(db.pool(), &held, lease).await {
                Ok(_) => {}
                Err(DbError::LeaseLost) => {
                    tracing::warn!(scan = %scan.id, "lease lost (cancelled or rescued): stopping the worker");
                    stop_worker(&mut child).await;
                    return Ok(());
                }
                Err(e) => tracing::warn!(scan = %scan.id, error = %e, "heartbeat failed; retrying"),
            },
            _ = &mut deadline => {
                stop_worker(&mut child).await;
                let msg = format!("the scan ran longer than {} s", dispatch.args.scan_timeout_secs);
                return match queue::advance(db.pool(), &held, ScanState::TimedOut, Some(("scan_timeout", &msg))).await {
                    Ok(()) | Err(DbError::LeaseLost) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            _ = stop.cancelled() => {
                stop_worker(&mut child).await;
                return Ok(());
            }
        }
    };
    // A worker that reported its outcome has ended the scan, and our lease with it. One that
    // died first leaves the scan active under our lease: record the failure for it.
    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
    let msg = format!("the worker exited ({status}) without reporting a result");
    match queue::fail(
        db.pool(),
        &held,
        "worker_exited",
        &msg,
        Duration::from_secs(30),
    )
    .await
    {
        Ok(outcome) => tracing::warn!(scan = %scan.id, ?outcome, "{msg}"),
        Err(DbError::LeaseLost) => tracing::info!(scan = %scan.id, "worker finished"),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Asks the worker to stop (SIGTERM: it abandons the scan and deletes its checkout), and kills
/// it if it has not exited within 10 s.
async fn stop_worker(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}
