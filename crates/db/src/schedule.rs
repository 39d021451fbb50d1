//! The weekly full-scan schedule, set-based.
//!
//! Each project stores its slot as weekday (0 = Monday) + time of day, UTC. One statement finds
//! every project whose latest slot occurrence is due and queues its weekly scan, keyed by that
//! occurrence (`scans.weekly_slot_at`, unique per project among weekly scans). So two replicas, a
//! restart or a tick that runs twice never queue the same week twice: the second insert conflicts
//! and does nothing.
//!
//! A slot's occurrences before it was set (the project added, or an admin moving the slot) are not
//! due: moving a slot earlier in the week waits for its next occurrence.
//!
//! The slot arithmetic in SQL mirrors `picket_core::WeeklySlot::latest_at_or_before`; a test
//! checks the two agree. A week is skipped when a full scan of the project is already in flight or
//! succeeded after the slot instant: that scan is this week's scan.

use crate::Result;
use sqlx::PgExecutor;
use time::OffsetDateTime;

/// Queues the weekly scans due at `now` (the caller's clock, so tests can move time). Returns how
/// many were queued.
pub async fn enqueue_due_weekly(ex: impl PgExecutor<'_>, now: OffsetDateTime) -> Result<u64> {
    let done = sqlx::query!(
        r#"
        WITH slot AS (
            -- Occurrences before the slot was set (the project added, or the slot moved) are not due.
            SELECT p.id, p.org_id, p.default_branch,
                   COALESCE(p.weekly_slot_set_at, p.created_at) AS created_at,
                   (date_trunc('week', $1::timestamptz AT TIME ZONE 'UTC')
                    + p.weekly_weekday * interval '1 day' + p.weekly_time) AT TIME ZONE 'UTC' AS at
            FROM projects p
            WHERE p.full_scans_enabled AND p.disabled_reason IS NULL
        ), due AS (
            SELECT s.id, s.org_id, s.default_branch, s.created_at,
                   CASE WHEN s.at > $1 THEN s.at - interval '7 days' ELSE s.at END AS slot_at
            FROM slot s
        )
        INSERT INTO scans (id, org_id, project_id, kind, trigger, priority, max_attempts, git_ref,
                           weekly_slot_at)
        SELECT gen_random_uuid(), d.org_id, d.id, 'full', 'weekly', $2, $3, d.default_branch,
               d.slot_at
        FROM due d
        WHERE d.slot_at > d.created_at
          AND NOT EXISTS (
              SELECT 1 FROM scans c
              WHERE c.project_id = d.id AND c.kind = 'full'
                AND (c.state IN ('queued', 'claimed', 'running', 'reporting')
                     OR (c.state = 'succeeded' AND c.claimed_at >= d.slot_at)
                     OR c.weekly_slot_at = d.slot_at)
          )
        ON CONFLICT DO NOTHING
        "#,
        now,
        picket_core::ScanTrigger::Weekly.priority(),
        picket_core::ScanKind::Full.max_attempts(),
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}
