//! The periodic jobs beside the dispatch loop: queueing weekly full scans at each project's
//! slot, rescuing scans whose lease expired, reaping environments nothing uses any more, and
//! pruning webhook deliveries' bodies past their retention.
//! Each is idempotent and safe to run in several replicas; a failed pass is logged and retried
//! on the next tick.

use picket_db::{queue, schedule, webhooks, Db};
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Queues the weekly full scans that are due, every `period`.
pub async fn weekly_schedule(db: &Db, period: Duration, stop: &CancellationToken) {
    every(period, stop, || async {
        match schedule::enqueue_due_weekly(db.pool(), time::OffsetDateTime::now_utc()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(queued = n, "weekly scans queued"),
            Err(e) => tracing::error!(error = %e, "weekly schedule pass failed"),
        }
    })
    .await
}

/// Clears the bodies of webhook deliveries older than `retention`, once an hour (or every
/// `retention`, when shorter).
pub async fn prune_webhook_bodies(db: &Db, retention: Duration, stop: &CancellationToken) {
    let period = retention.min(Duration::from_secs(3600));
    every(period, stop, || async {
        let Ok(retention) = time::Duration::try_from(retention) else {
            return;
        };
        let before = time::OffsetDateTime::now_utc() - retention;
        match webhooks::prune_bodies(db.pool(), before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "webhook delivery bodies pruned"),
            Err(e) => tracing::error!(error = %e, "webhook body pruning pass failed"),
        }
    })
    .await
}

/// Deletes the worker logs of scans that ended more than `retention` ago, once an hour (or
/// every `retention`, when shorter).
pub async fn prune_scan_logs(db: &Db, retention: Duration, stop: &CancellationToken) {
    let period = retention
        .min(Duration::from_secs(3600))
        .max(Duration::from_secs(1));
    every(period, stop, || async {
        match picket_db::scan_logs::prune(db.pool(), retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "scan log lines pruned"),
            Err(e) => tracing::error!(error = %e, "scan log pruning pass failed"),
        }
    })
    .await
}

/// Requeues (or fails) scans whose lease expired, every `period`.
pub async fn rescue(db: &Db, period: Duration, stop: &CancellationToken) {
    every(period, stop, || async {
        match queue::rescue_expired(db.pool()).await {
            Ok(r) if r.requeued + r.failed == 0 => {}
            Ok(r) => tracing::warn!(
                requeued = r.requeued,
                failed = r.failed,
                "expired leases rescued"
            ),
            Err(e) => tracing::error!(error = %e, "lease rescue pass failed"),
        }
    })
    .await
}

/// Runs `pass` now and then every `period` until `stop`.
pub async fn every<F, Fut>(period: Duration, stop: &CancellationToken, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => pass().await,
        }
    }
}
