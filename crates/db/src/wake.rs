//! Wake-ups: the NOTIFY channels that wake idle loops (claimers on [`crate::queue::CHANNEL`],
//! the check loop on [`crate::pr_checks::CHANNEL`]), and when they are raised.
//!
//! Triggers and queries raise them inside the transaction that queues or moves a scan (SQL
//! function `picket_wake`), so a wake-up goes out exactly when its change commits. The cost: a
//! NOTIFY makes its transaction take PostgreSQL's database-wide notification lock before it
//! commits and hold it until the commit is flushed, so notifying transactions commit one at a
//! time (2,455 INSERT commits/s fell to 714 with a NOTIFY in each, and were 1,999 with the
//! NOTIFY sent after the commit: pgbench, 16 clients, migration `20261201030000`). The webhook
//! route takes bursts, so it begins a pull request's transaction with [`BEGIN_AFTER_COMMIT`]:
//! nothing is raised inside it, and the route sends its outcome's [`WakeUps`] with [`send`]
//! once it has committed. A wake-up lost in between (the process died) only delays: every
//! listener also polls.

use crate::Result;
use picket_core::ScanId;
use sqlx::PgExecutor;

/// The statement that begins a transaction whose wake-ups wait for its commit (pass it to
/// sqlx's `begin_with`): one round trip, as a plain `BEGIN` is. The caller sends what the
/// transaction owes with [`send`] once it has committed, best on the same connection (no second
/// checkout from the pool).
pub const BEGIN_AFTER_COMMIT: &str = "BEGIN; SET LOCAL picket.wake = 'after_commit'";

/// The wake-ups a committed change owes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WakeUps {
    /// A scan became claimable ([`crate::queue::CHANNEL`]).
    pub scan_queued: bool,
    /// PR scans whose check has something to show ([`crate::pr_checks::CHANNEL`], the payload
    /// the scan's id): a new state, or comments held back from a draft.
    pub pr_checks: Vec<ScanId>,
}

impl WakeUps {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        !self.scan_queued && self.pr_checks.is_empty()
    }
}

/// Sends `wake` in one statement, outside any transaction of the caller's (`ex` the pool).
pub async fn send(ex: impl PgExecutor<'_>, wake: &WakeUps) -> Result<()> {
    if wake.is_empty() {
        return Ok(());
    }
    let mut channels = Vec::with_capacity(wake.pr_checks.len() + 1);
    let mut payloads = Vec::with_capacity(wake.pr_checks.len() + 1);
    if wake.scan_queued {
        channels.push(crate::queue::CHANNEL);
        payloads.push(String::new());
    }
    for scan in &wake.pr_checks {
        channels.push(crate::pr_checks::CHANNEL);
        payloads.push(scan.to_string());
    }
    sqlx::query!(
        r#"SELECT pg_notify(c, p)::text AS "sent" FROM unnest($1::text[], $2::text[]) AS t(c, p)"#,
        &channels as &[&str],
        &payloads,
    )
    .fetch_all(ex)
    .await?;
    Ok(())
}
