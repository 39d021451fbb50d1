//! The scheduler: claims scans from the queue and runs each attempt in a fresh environment
//! through one [`Executor`] interface, with three implementations:
//!
//! - [`kube`]: one Kubernetes Pod per scan, with its Secret and a NetworkPolicy allowing only
//!   the configured egress (production);
//! - [`sandbox`]: a fresh network namespace with an egress allowlist and a bubblewrap sandbox
//!   per scan on this machine (the embedded default of `picket run`);
//! - [`process`]: a plain child process, NOT isolated, only when the operator asks for it.
//!
//! [`run`] drives the [`dispatch`] loop (claim, token, launch, lease, deadline, retry-once,
//! teardown) beside the [`periodic`] jobs (weekly schedule, lease rescue) and the [`reaper`],
//! which deletes every environment carrying Picket's marks that nothing uses any more, on start
//! and periodically. With providers' clients configured, it also runs the control plane's side
//! of pull requests: the [`pr_checks`] loop, the [`reconcile`] sweep (open pull requests whose
//! webhook never came), the [`triage`] loop (triage by PR reply) and the [`inventory`] refresh
//! (what each connection can see, for the Projects page's "Not scanning" tab).

pub mod advisories;
pub mod dispatch;
pub mod executor;
pub mod inventory;
pub mod kube;
pub mod metrics;
pub mod periodic;
pub mod pr_checks;
pub mod process;
pub mod reaper;
pub mod reconcile;
pub mod sandbox;
pub mod triage;

pub use executor::{EnvRef, Environment, ExecError, Executor, Exit, Launch};

use picket_db::Db;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Names this scheduler's leases (host and process), for the scan's events.
    pub owner: String,
    /// Scans run at once by this scheduler (the global cap; each org's cap is the queue's).
    pub slots: usize,
    /// Lease length; renewed every third of it while the worker runs.
    pub lease: Duration,
    /// Longest one scan may run before it is stopped as `timed_out`.
    pub scan_timeout: Duration,
    /// Longest an idle claimer sleeps when no NOTIFY arrives.
    pub poll: Duration,
    /// How often the weekly schedule is checked.
    pub schedule_every: Duration,
    /// How often expired leases are rescued.
    pub rescue_every: Duration,
    /// How often leftover environments are reaped (and once at start).
    pub reap_every: Duration,
    /// How long a failed attempt's scan waits before it may be claimed again.
    pub retry_backoff: Duration,
    /// How long webhook deliveries' bodies are kept in the delivery log before they are pruned
    /// (the log's other columns stay). Default 7 days.
    pub webhook_body_retention: Duration,
    /// How long a scan's worker log is kept after the scan ends. Default 30 days.
    pub scan_log_retention: Duration,
    /// Where the dispatch loop and the reaper count what they do.
    pub metrics: Arc<metrics::SchedulerMetrics>,
    /// Providers' clients by connection, for the control plane's side of PR feedback (the
    /// [`pr_checks`] and [`triage`] loops). `None`: no PR checks are moved and no triage reply
    /// is handled (tests of the queue alone).
    pub providers: Option<Arc<picket_vcs::Registry>>,
    /// How the PR check loop runs.
    pub pr_checks: pr_checks::PrCheckConfig,
    /// How the [`reconcile`] sweep runs (with `providers` only).
    pub reconcile: reconcile::ReconcileConfig,
    /// How the triage-by-reply loop runs ([`triage`]; it runs when `providers` is set).
    pub triage: triage::TriageConfig,
    /// How the connections' repository inventories are refreshed ([`inventory`]; with
    /// `providers` only).
    pub inventory: inventory::InventoryConfig,
    /// Where Supply Chain's advisories are synced from ([`advisories::sync`]); none by default.
    pub advisories: advisories::SyncConfig,
}

impl SchedulerConfig {
    /// Defaults: one slot per CPU, 60 s leases, 1 h scans.
    pub fn new(owner: impl Into<String>) -> Self {
        SchedulerConfig {
            owner: owner.into(),
            slots: std::thread::available_parallelism().map_or(1, |n| n.get()),
            lease: Duration::from_secs(60),
            scan_timeout: Duration::from_secs(3600),
            poll: Duration::from_secs(5),
            schedule_every: Duration::from_secs(60),
            rescue_every: Duration::from_secs(30),
            reap_every: Duration::from_secs(60),
            retry_backoff: Duration::from_secs(30),
            webhook_body_retention: Duration::from_secs(7 * 24 * 3600),
            scan_log_retention: Duration::from_secs(30 * 24 * 3600),
            metrics: Arc::default(),
            providers: None,
            pr_checks: pr_checks::PrCheckConfig::default(),
            reconcile: reconcile::ReconcileConfig::default(),
            triage: triage::TriageConfig::default(),
            inventory: inventory::InventoryConfig::default(),
            advisories: advisories::SyncConfig::default(),
        }
    }

    /// How old an environment may grow before the reaper deletes it whatever its scan says.
    pub fn max_env_age(&self) -> Duration {
        self.scan_timeout + self.lease * 2
    }
}

/// The worker as the executors start it: `program args...` with `env`, plus the attempt's
/// token (`PICKET_SCAN_TOKEN`), which each executor passes its own safe way.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Runs the scheduler until `stop`: reaps once, then dispatches, schedules, rescues and reaps
/// until stopped, and returns when its environments are torn down.
pub async fn run<E: Executor>(db: Db, executor: E, cfg: SchedulerConfig, stop: CancellationToken) {
    let executor = Arc::new(executor);
    let cfg = Arc::new(cfg);
    let reaped = reaper::reap(&db, &*executor, cfg.max_env_age()).await;
    cfg.metrics.reaped(reaped.destroyed);
    if reaped.destroyed > 0 {
        tracing::warn!(
            destroyed = reaped.destroyed,
            "leftover environments reaped at start"
        );
    }
    tokio::join!(
        dispatch::run(
            db.clone(),
            Arc::clone(&executor),
            Arc::clone(&cfg),
            stop.clone()
        ),
        periodic::weekly_schedule(&db, cfg.schedule_every, &stop),
        periodic::rescue(&db, cfg.rescue_every, &stop),
        periodic::prune_webhook_bodies(&db, cfg.webhook_body_retention, &stop),
        periodic::prune_scan_logs(&db, cfg.scan_log_retention, &stop),
        periodic::every(cfg.reap_every, &stop, || async {
            let reaped = reaper::reap(&db, &*executor, cfg.max_env_age()).await;
            cfg.metrics.reaped(reaped.destroyed);
        }),
        async {
            if let Some(providers) = &cfg.providers {
                pr_checks::run(
                    db.clone(),
                    Arc::clone(providers),
                    cfg.pr_checks.clone(),
                    stop.clone(),
                )
                .await;
            }
        },
        async {
            if let Some(providers) = &cfg.providers {
                // Boxed: its sweep is a large future, and this join is held by every caller.
                Box::pin(reconcile::run(
                    db.clone(),
                    Arc::clone(providers),
                    cfg.reconcile.clone(),
                    Arc::clone(&cfg.metrics),
                    stop.clone(),
                ))
                .await;
            }
        },
        async {
            if let Some(providers) = &cfg.providers {
                Box::pin(inventory::run(
                    db.clone(),
                    Arc::clone(providers),
                    cfg.inventory.clone(),
                    stop.clone(),
                ))
                .await;
            }
        },
        Box::pin(advisories::sync(
            db.clone(),
            cfg.advisories.clone(),
            stop.clone()
        )),
        async {
            if let Some(providers) = &cfg.providers {
                // Boxed: the loops' futures together would make `run`'s too large to move.
                Box::pin(triage::run(
                    db.clone(),
                    Arc::clone(providers),
                    cfg.triage.clone(),
                    stop.clone(),
                ))
                .await;
            }
        },
    );
}

/// Runs `step` (one unit of a control-plane loop's work; `Ok(false)` when nothing was due) again
/// and again until `stop`, pausing whenever nothing was due or the pass failed (logged as
/// `<what> pass failed`): `pause` returns when the loop should look again.
pub(crate) async fn until_stopped<F, Fut, P, PFut>(
    what: &str,
    stop: &CancellationToken,
    mut step: F,
    mut pause: P,
) where
    P: FnMut() -> PFut,
    PFut: std::future::Future<Output = ()>,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, picket_db::DbError>>,
{
    loop {
        let worked = match step().await {
            Ok(worked) => worked,
            Err(e) => {
                tracing::error!(error = %e, "{what} pass failed");
                false
            }
        };
        if !worked {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = pause() => {}
            }
        } else if stop.is_cancelled() {
            return;
        }
    }
}
