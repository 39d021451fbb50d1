//! The periodic jobs `picket run` keeps going beside the API: queueing weekly full scans at each
//! project's slot, and rescuing scans whose lease expired. Both are idempotent and safe to run in
//! several replicas; a failed pass is logged and retried on the next tick.

use clap::Args;
use picket_db::{queue, schedule, Db};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Args)]
pub struct BackgroundArgs {
    /// How often the weekly schedule is checked, in seconds. Default 60.
    #[arg(long, env = "PICKET_SCHEDULE_INTERVAL_SECS", default_value_t = 60)]
    pub schedule_interval_secs: u64,
    /// How often expired scan leases are rescued, in seconds. Default 30.
    #[arg(long, env = "PICKET_RESCUE_INTERVAL_SECS", default_value_t = 30)]
    pub rescue_interval_secs: u64,
}

/// Runs both loops until `stop` is cancelled.
pub async fn run(db: Db, args: BackgroundArgs, stop: CancellationToken) {
    let schedule_every = Duration::from_secs(args.schedule_interval_secs.max(1));
    let rescue_every = Duration::from_secs(args.rescue_interval_secs.max(1));
    tokio::join!(
        every(schedule_every, &stop, || async {
            match schedule::enqueue_due_weekly(db.pool(), time::OffsetDateTime::now_utc()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(queued = n, "weekly scans queued"),
                Err(e) => tracing::error!(error = %e, "weekly schedule pass failed"),
            }
        }),
        every(rescue_every, &stop, || async {
            match queue::rescue_expired(db.pool()).await {
                Ok(r) if r.requeued + r.failed == 0 => {}
                Ok(r) => tracing::warn!(
                    requeued = r.requeued,
                    failed = r.failed,
                    "expired leases rescued"
                ),
                Err(e) => tracing::error!(error = %e, "lease rescue pass failed"),
            }
        }),
    );
}

async fn every<F, Fut>(period: Duration, stop: &CancellationToken, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => pass().await,
        }
    }
}
