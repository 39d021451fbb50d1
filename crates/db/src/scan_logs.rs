//! Each scan's worker log: appended by the worker routes, read by the API and the web UI, pruned
//! by the reaper (migration `scan_logs`).

use crate::Result;
use picket_core::protocol::{LogLevel, LogLine};
use picket_core::{OrgId, ScanId};
use sqlx::PgExecutor;
use std::time::Duration;
use time::OffsetDateTime;

/// Most lines kept per scan; later ones are counted in `scans.log_lines_dropped`.
pub const MAX_LINES_PER_SCAN: i64 = 10_000;

/// A stored line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLine {
    /// Increasing within a scan: read on after it.
    pub seq: i64,
    pub attempt: i32,
    pub at: OffsetDateTime,
    pub level: LogLevel,
    pub message: String,
}

/// What [`append`] kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub stored: i64,
    pub dropped: i64,
}

/// Appends `lines` of `attempt` to the scan's log, up to [`MAX_LINES_PER_SCAN`] for the scan;
/// the rest are counted as dropped. One statement.
pub async fn append(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    scan: ScanId,
    attempt: i32,
    lines: &[LogLine],
) -> Result<Appended> {
    let at: Vec<OffsetDateTime> = lines.iter().map(|l| l.at).collect();
    let level: Vec<&str> = lines.iter().map(|l| l.level.as_str()).collect();
    let message: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
    let row = sqlx::query!(
        r#"
        WITH room AS (
            SELECT greatest(0, $6 - (SELECT count(*) FROM scan_log_lines WHERE scan_id = $2)) AS n
        ), kept AS (
            INSERT INTO scan_log_lines (scan_id, org_id, attempt, at, level, message)
            SELECT $2, $1, $3, l.at, l.level, l.message
            FROM unnest($4::timestamptz[], $5::text[], $7::text[]) WITH ORDINALITY
                 AS l(at, level, message, n)
            WHERE l.n <= (SELECT n FROM room)
            RETURNING 1
        ), counted AS (
            UPDATE scans SET log_lines_dropped = log_lines_dropped
                + (cardinality($5::text[]) - (SELECT count(*) FROM kept))::integer
            WHERE id = $2 AND org_id = $1
              AND cardinality($5::text[]) > (SELECT count(*) FROM kept)
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM kept) AS "stored!",
               cardinality($5::text[]) - (SELECT count(*) FROM kept) AS "dropped!"
        "#,
        org.0,
        scan.0,
        attempt,
        &at,
        &level as &[&str],
        MAX_LINES_PER_SCAN,
        &message as &[&str]
    )
    .fetch_one(ex)
    .await?;
    Ok(Appended {
        stored: row.stored,
        dropped: row.dropped,
    })
}

/// Up to `limit` lines of the org's scan after `after` (a [`StoredLine::seq`]; 0 from the
/// start), oldest first.
pub async fn list(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    scan: ScanId,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredLine>> {
    let rows = sqlx::query!(
        r#"
        SELECT id, attempt, at, level, message FROM scan_log_lines
        WHERE scan_id = $1 AND org_id = $2 AND id > $3
        ORDER BY id
        LIMIT $4
        "#,
        scan.0,
        org.0,
        after,
        limit
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| StoredLine {
            seq: r.id,
            attempt: r.attempt,
            at: r.at,
            level: LogLevel::ALL
                .into_iter()
                .find(|l| l.as_str() == r.level)
                .unwrap_or(LogLevel::Info),
            message: r.message,
        })
        .collect())
}

/// How many lines of the org's scan were dropped past the cap.
pub async fn dropped(ex: impl PgExecutor<'_>, org: OrgId, scan: ScanId) -> Result<i64> {
    let n = sqlx::query_scalar!(
        "SELECT log_lines_dropped FROM scans WHERE id = $1 AND org_id = $2",
        scan.0,
        org.0
    )
    .fetch_optional(ex)
    .await?;
    Ok(n.map_or(0, i64::from))
}

/// Deletes the logs of scans that ended more than `retention` ago. Returns the lines deleted.
pub async fn prune(ex: impl PgExecutor<'_>, retention: Duration) -> Result<u64> {
    let done = sqlx::query!(
        r#"
        DELETE FROM scan_log_lines l USING scans s
        WHERE s.id = l.scan_id AND s.finished_at < now() - make_interval(secs => $1)
        "#,
        retention.as_secs_f64()
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}
