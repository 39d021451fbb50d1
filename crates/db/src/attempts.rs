//! Scan attempts: where each attempt ran and what its worker did (the audit trail beside the
//! state changes of `scan_events`).
//!
//! The scheduler calls [`record_launch`] before it starts an attempt's environment; the worker
//! API stores the worker's trail with its results or its failure ([`record_trail`]); the API
//! reads both with [`list`].

use crate::{DbError, Result};
use picket_core::protocol::ScanTrail;
use picket_core::{OrgId, ScanId};
use sqlx::PgExecutor;
use time::OffsetDateTime;

/// One attempt of a scan as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempt: i32,
    /// `kubernetes`, `sandbox` or `process`; absent when no scheduler launched it.
    pub executor: Option<String>,
    /// The environment's name (Pod, sandbox).
    pub environment: Option<String>,
    pub launched_at: Option<OffsetDateTime>,
    /// What the worker reported; absent until it reported results or a failure.
    pub trail: Option<ScanTrail>,
    /// The step a failed attempt failed in.
    pub failed_step: Option<String>,
}

/// Records that `attempt` of `scan` is being started by `executor` in `environment`.
pub async fn record_launch(
    ex: impl PgExecutor<'_>,
    scan: ScanId,
    attempt: i32,
    org: OrgId,
    executor: &str,
    environment: &str,
) -> Result<()> {
    sqlx::query!(
        r#"
        INSERT INTO scan_attempts (scan_id, attempt, org_id, executor, environment, launched_at)
        VALUES ($1, $2, $3, $4, $5, now())
        ON CONFLICT (scan_id, attempt) DO UPDATE
        SET executor = EXCLUDED.executor, environment = EXCLUDED.environment,
            launched_at = EXCLUDED.launched_at
        "#,
        scan.0,
        attempt,
        org.0,
        executor,
        environment
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Stores the worker's trail of an attempt (and the step a failed one failed in), creating the
/// attempt's row when no scheduler did (a worker started by hand).
pub async fn record_trail(
    ex: impl PgExecutor<'_>,
    scan: ScanId,
    attempt: i32,
    org: OrgId,
    trail: &ScanTrail,
    failed_step: Option<&str>,
) -> Result<()> {
    let trail = serde_json::to_value(trail)
        .map_err(|e| DbError::Corrupt(format!("the trail does not serialize: {e}")))?;
    sqlx::query!(
        r#"
        INSERT INTO scan_attempts (scan_id, attempt, org_id, trail, failed_step)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (scan_id, attempt) DO UPDATE
        SET trail = EXCLUDED.trail, failed_step = EXCLUDED.failed_step
        "#,
        scan.0,
        attempt,
        org.0,
        trail,
        failed_step
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// The attempts of one of the org's scans, first attempt first (none for a scan not yet
/// launched, or another org's).
pub async fn list(ex: impl PgExecutor<'_>, org: OrgId, scan: ScanId) -> Result<Vec<AttemptRecord>> {
    let rows = sqlx::query!(
        r#"
        SELECT attempt, executor, environment, launched_at, trail, failed_step
        FROM scan_attempts WHERE scan_id = $1 AND org_id = $2
        ORDER BY attempt
        "#,
        scan.0,
        org.0
    )
    .fetch_all(ex)
    .await?;
    rows.into_iter()
        .map(|r| {
            let trail = r
                .trail
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| DbError::Corrupt(format!("stored trail unreadable: {e}")))?;
            Ok(AttemptRecord {
                attempt: r.attempt,
                executor: r.executor,
                environment: r.environment,
                launched_at: r.launched_at,
                trail,
                failed_step: r.failed_step,
            })
        })
        .collect()
}
