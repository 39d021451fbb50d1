//! Scans as records: enqueueing (one, or one per project in bulk), reading, history, cancel, re-run.
//!
//! The queue mechanics (claim, lease, fenced moves, rescue) are in [`crate::queue`]; this module is
//! what the API and the schedule use to put scans in and look at them.

use crate::types::Pg;
use crate::{DbError, Result};
use picket_core::{OrgId, ProjectId, ScanId, ScanKind, ScanState, ScanTrigger, TokenId};
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

/// A scan as stored, without its lease token (which only the lease holder ever sees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRecord {
    pub id: ScanId,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub kind: ScanKind,
    pub trigger: ScanTrigger,
    pub state: ScanState,
    pub priority: i16,
    pub attempt: i32,
    pub max_attempts: i32,
    pub git_ref: Option<String>,
    pub commit_sha: Option<String>,
    pub base_ref: Option<String>,
    pub base_sha: Option<String>,
    /// Diff scans: the merge base of head and target, when the caller gave it.
    pub merge_base_sha: Option<String>,
    pub pr_number: Option<i32>,
    pub weekly_slot_at: Option<OffsetDateTime>,
    pub rerun_of: Option<ScanId>,
    pub requested_by: Option<TokenId>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<OffsetDateTime>,
    pub queued_at: OffsetDateTime,
    pub claimed_at: Option<OffsetDateTime>,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// Row shape shared by the compile-checked queries here and in [`crate::queue`]. It carries the
/// lease token so that `claim` can hand it to the new holder; [`ScanRecord`] drops it.
pub(crate) struct ScanRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub kind: Pg<ScanKind>,
    pub trigger: Pg<ScanTrigger>,
    pub state: Pg<ScanState>,
    pub priority: i16,
    pub attempt: i32,
    pub max_attempts: i32,
    pub git_ref: Option<String>,
    pub commit_sha: Option<String>,
    pub base_ref: Option<String>,
    pub base_sha: Option<String>,
    /// Diff scans: the merge base of head and target, when the caller gave it.
    pub merge_base_sha: Option<String>,
    pub pr_number: Option<i32>,
    pub weekly_slot_at: Option<OffsetDateTime>,
    pub rerun_of: Option<Uuid>,
    pub requested_by: Option<Uuid>,
    pub lease_owner: Option<String>,
    pub lease_token: Option<Uuid>,
    pub lease_expires_at: Option<OffsetDateTime>,
    pub queued_at: OffsetDateTime,
    pub claimed_at: Option<OffsetDateTime>,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl From<ScanRow> for ScanRecord {
    fn from(r: ScanRow) -> Self {
        ScanRecord {
            id: r.id.into(),
            org_id: r.org_id.into(),
            project_id: r.project_id.into(),
            kind: r.kind.0,
            trigger: r.trigger.0,
            state: r.state.0,
            priority: r.priority,
            attempt: r.attempt,
            max_attempts: r.max_attempts,
            git_ref: r.git_ref,
            commit_sha: r.commit_sha,
            base_ref: r.base_ref,
            base_sha: r.base_sha,
            merge_base_sha: r.merge_base_sha,
            pr_number: r.pr_number,
            weekly_slot_at: r.weekly_slot_at,
            rerun_of: r.rerun_of.map(Into::into),
            requested_by: r.requested_by.map(Into::into),
            lease_owner: r.lease_owner,
            lease_expires_at: r.lease_expires_at,
            queued_at: r.queued_at,
            claimed_at: r.claimed_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            error_code: r.error_code,
            error_message: r.error_message,
        }
    }
}

/// What to scan and why; the org and project must exist and match.
#[derive(Debug, Clone)]
pub struct NewScan {
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub kind: ScanKind,
    pub trigger: ScanTrigger,
    pub git_ref: Option<String>,
    pub commit_sha: Option<String>,
    pub base_ref: Option<String>,
    pub base_sha: Option<String>,
    /// Diff scans: the merge base of head and target, when the caller knows it (a provider's
    /// compare API); the worker then fetches no history to find it.
    pub merge_base_sha: Option<String>,
    pub pr_number: Option<i32>,
    pub rerun_of: Option<ScanId>,
    pub requested_by: Option<TokenId>,
}

impl NewScan {
    /// A full scan of a branch.
    pub fn full(org_id: OrgId, project_id: ProjectId, trigger: ScanTrigger, git_ref: &str) -> Self {
        NewScan {
            org_id,
            project_id,
            kind: ScanKind::Full,
            trigger,
            git_ref: Some(git_ref.to_owned()),
            commit_sha: None,
            base_ref: None,
            base_sha: None,
            merge_base_sha: None,
            pr_number: None,
            rerun_of: None,
            requested_by: None,
        }
    }
}

/// The result of asking for a scan: a new one, or the full scan already waiting for that project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub scan: ScanRecord,
    pub created: bool,
}

/// Queues one scan. A full scan joins the project's already-queued full scan if there is one
/// (taking the higher of the two priorities) instead of queueing a second.
pub async fn enqueue(ex: impl PgExecutor<'_>, new: &NewScan) -> Result<Enqueued> {
    let id = ScanId::new();
    let row = sqlx::query_as!(
        ScanRow,
        r#"
        INSERT INTO scans (id, org_id, project_id, kind, trigger, priority, max_attempts,
                           git_ref, commit_sha, base_ref, base_sha, pr_number, rerun_of, requested_by,
                           merge_base_sha)
        SELECT $1, p.org_id, p.id, $4::text::scan_kind, $5::text::scan_trigger, $6, $7,
               $8, $9, $10, $11, $12, $13, $14, $15
        FROM projects p WHERE p.id = $3 AND p.org_id = $2
        ON CONFLICT (project_id) WHERE state = 'queued' AND kind = 'full'
        DO UPDATE SET priority = LEAST(scans.priority, EXCLUDED.priority)
        RETURNING id, org_id, project_id, kind AS "kind: Pg<ScanKind>",
                  trigger AS "trigger: Pg<ScanTrigger>", state AS "state: Pg<ScanState>",
                  priority, attempt, max_attempts, git_ref, commit_sha, base_ref, base_sha, merge_base_sha,
                  pr_number, weekly_slot_at, rerun_of, requested_by, lease_owner, lease_token, lease_expires_at,
                  queued_at, claimed_at, started_at, finished_at, error_code, error_message
        "#,
        id.0,
        new.org_id.0,
        new.project_id.0,
        new.kind.as_str(),
        new.trigger.as_str(),
        new.trigger.priority(),
        new.kind.max_attempts(),
        new.git_ref,
        new.commit_sha,
        new.base_ref,
        new.base_sha,
        new.pr_number,
        new.rerun_of.map(|s| s.0),
        new.requested_by.map(|t| t.0),
        new.merge_base_sha,
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    // On conflict the row returned is the scan already waiting, whose id is not the one we drew.
    let scan = ScanRecord::from(row);
    Ok(Enqueued {
        created: scan.id == id,
        scan,
    })
}

/// Projects named in a bulk request that are not the caller's (or do not exist).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} project(s) not found", .0.len())]
pub struct UnknownProjects(pub Vec<ProjectId>);

/// Bulk scan: one full scan of its default branch per project, all in the caller's transaction.
/// Fails with [`UnknownProjects`] (writing nothing) when any id is not one of the org's projects.
/// Projects that already have a full scan waiting keep that one (its priority raised).
pub async fn enqueue_bulk(
    conn: &mut PgConnection,
    org: OrgId,
    projects: &[ProjectId],
    trigger: ScanTrigger,
    requested_by: Option<TokenId>,
) -> Result<std::result::Result<Vec<Enqueued>, UnknownProjects>> {
    let mut ids: Vec<Uuid> = projects.iter().map(|p| p.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let found: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT id FROM projects WHERE org_id = $1 AND id = ANY($2) ORDER BY id",
        org.0,
        &ids
    )
    .fetch_all(&mut *conn)
    .await?;
    if found.len() != ids.len() {
        let missing = ids
            .into_iter()
            .filter(|id| found.binary_search(id).is_err())
            .map(ProjectId)
            .collect();
        return Ok(Err(UnknownProjects(missing)));
    }
    let scan_ids: Vec<Uuid> = ids.iter().map(|_| ScanId::new().0).collect();
    let rows = sqlx::query_as!(
        ScanRow,
        r#"
        INSERT INTO scans (id, org_id, project_id, kind, trigger, priority, max_attempts, git_ref,
                           requested_by)
        SELECT n.scan_id, p.org_id, p.id, 'full', $3::text::scan_trigger, $4, $5, p.default_branch, $6
        FROM unnest($1::uuid[], $2::uuid[]) AS n(scan_id, project_id)
        JOIN projects p ON p.id = n.project_id
        ORDER BY p.id
        ON CONFLICT (project_id) WHERE state = 'queued' AND kind = 'full'
        DO UPDATE SET priority = LEAST(scans.priority, EXCLUDED.priority)
        RETURNING id, org_id, project_id, kind AS "kind: Pg<ScanKind>",
                  trigger AS "trigger: Pg<ScanTrigger>", state AS "state: Pg<ScanState>",
                  priority, attempt, max_attempts, git_ref, commit_sha, base_ref, base_sha, merge_base_sha,
                  pr_number, weekly_slot_at, rerun_of, requested_by, lease_owner, lease_token, lease_expires_at,
                  queued_at, claimed_at, started_at, finished_at, error_code, error_message
        "#,
        &scan_ids,
        &ids,
        trigger.as_str(),
        trigger.priority(),
        ScanKind::Full.max_attempts(),
        requested_by.map(|t| t.0),
    )
    .fetch_all(&mut *conn)
    .await?;
    let drawn: std::collections::HashSet<Uuid> = scan_ids.into_iter().collect();
    Ok(Ok(rows
        .into_iter()
        .map(|row| {
            let created = drawn.contains(&row.id);
            Enqueued {
                scan: row.into(),
                created,
            }
        })
        .collect()))
}

/// One scan of the org, or `NotFound` (also when it belongs to another org).
pub async fn get(ex: impl PgExecutor<'_>, org: OrgId, id: ScanId) -> Result<ScanRecord> {
    let row = sqlx::query_as!(
        ScanRow,
        r#"
        SELECT id, org_id, project_id, kind AS "kind: Pg<ScanKind>",
               trigger AS "trigger: Pg<ScanTrigger>", state AS "state: Pg<ScanState>",
               priority, attempt, max_attempts, git_ref, commit_sha, base_ref, base_sha, merge_base_sha,
               pr_number, weekly_slot_at, rerun_of, requested_by, lease_owner, lease_token, lease_expires_at,
               queued_at, claimed_at, started_at, finished_at, error_code, error_message
        FROM scans WHERE id = $1 AND org_id = $2
        "#,
        id.0,
        org.0
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    Ok(row.into())
}

/// Filters of [`list_for_project`]; `None` does not filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanFilter {
    pub kind: Option<ScanKind>,
    pub state: Option<ScanState>,
    /// Queued at or after this.
    pub since: Option<OffsetDateTime>,
}

/// A page of a project's scan history, newest first. `before` is the cursor: the last scan of the
/// previous page.
pub async fn list_for_project(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    project: ProjectId,
    filter: &ScanFilter,
    before: Option<ScanId>,
    limit: i64,
) -> Result<Vec<ScanRecord>> {
    let rows = sqlx::query_as!(
        ScanRow,
        r#"
        SELECT s.id, s.org_id, s.project_id, s.kind AS "kind: Pg<ScanKind>",
               s.trigger AS "trigger: Pg<ScanTrigger>", s.state AS "state: Pg<ScanState>",
               s.priority, s.attempt, s.max_attempts, s.git_ref, s.commit_sha, s.base_ref,
               s.base_sha, s.merge_base_sha, s.pr_number, s.weekly_slot_at, s.rerun_of, s.requested_by,
               s.lease_owner, s.lease_token, s.lease_expires_at, s.queued_at, s.claimed_at, s.started_at,
               s.finished_at, s.error_code, s.error_message
        FROM scans s
        WHERE s.org_id = $1 AND s.project_id = $2
          AND ($3::uuid IS NULL OR (s.queued_at, s.id) <
               (SELECT c.queued_at, c.id FROM scans c WHERE c.id = $3 AND c.org_id = $1))
          AND ($5::text IS NULL OR s.kind = $5::text::scan_kind)
          AND ($6::text IS NULL OR s.state = $6::text::scan_state)
          AND ($7::timestamptz IS NULL OR s.queued_at >= $7)
        ORDER BY s.queued_at DESC, s.id DESC
        LIMIT $4
        "#,
        org.0,
        project.0,
        before.map(|s| s.0),
        limit,
        filter.kind.map(ScanKind::as_str),
        filter.state.map(ScanState::as_str),
        filter.since
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// One entry of a scan's audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEvent {
    pub at: OffsetDateTime,
    pub from_state: Option<ScanState>,
    pub to_state: ScanState,
    pub attempt: i32,
    pub actor: String,
    pub detail: Option<String>,
}

/// The audit trail of a scan, oldest first.
pub async fn events(ex: impl PgExecutor<'_>, org: OrgId, id: ScanId) -> Result<Vec<ScanEvent>> {
    let rows = sqlx::query!(
        r#"
        SELECT at, from_state AS "from_state: Pg<ScanState>", to_state AS "to_state: Pg<ScanState>",
               attempt, actor, detail
        FROM scan_events WHERE scan_id = $1 AND org_id = $2 ORDER BY id
        "#,
        id.0,
        org.0
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ScanEvent {
            at: r.at,
            from_state: r.from_state.map(|s| s.0),
            to_state: r.to_state.0,
            attempt: r.attempt,
            actor: r.actor,
            detail: r.detail,
        })
        .collect())
}

/// Why a cancel was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled,
    /// The scan had already finished, in this state.
    AlreadyFinished(ScanState),
}

/// Cancels a scan on a person's request. A queued scan never runs; a running one loses its lease,
/// so its holder's next heartbeat or fenced update fails and it stops the environment.
pub async fn cancel(
    conn: &mut PgConnection,
    org: OrgId,
    id: ScanId,
    actor: &str,
) -> Result<CancelOutcome> {
    let current = sqlx::query_scalar!(
        r#"SELECT state AS "state: Pg<ScanState>" FROM scans WHERE id = $1 AND org_id = $2 FOR UPDATE"#,
        id.0,
        org.0
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DbError::NotFound)?
    .0;
    if current.move_to(ScanState::Cancelled).is_err() {
        return Ok(CancelOutcome::AlreadyFinished(current));
    }
    sqlx::query!(
        r#"
        WITH moved AS (
            UPDATE scans
            SET state = 'cancelled', finished_at = now(), lease_owner = NULL, lease_token = NULL,
                lease_expires_at = NULL, error_code = 'cancelled',
                error_message = 'cancelled on request'
            WHERE id = $1 AND org_id = $2
            RETURNING id, org_id, attempt
        )
        INSERT INTO scan_events (scan_id, org_id, from_state, to_state, attempt, actor)
        SELECT id, org_id, $3::text::scan_state, 'cancelled', attempt, $4 FROM moved
        "#,
        id.0,
        org.0,
        current.as_str(),
        actor
    )
    .execute(&mut *conn)
    .await?;
    Ok(CancelOutcome::Cancelled)
}

// ---------------------------------------------------------------------------------------------
// Added for the API's /metrics (issue #2 §5). Kept apart from the queue functions above.
// ---------------------------------------------------------------------------------------------

/// How many scans are in each of `states`, by kind, across all orgs: the queue-depth gauge,
/// computed at scrape time with one `GROUP BY`. Pass unfinished states only: they are the ones the
/// partial indexes cover, while finished scans accumulate for ever. Combinations with no scans
/// are absent.
pub async fn count_by_state(
    ex: impl PgExecutor<'_>,
    states: &[ScanState],
) -> Result<Vec<(ScanState, ScanKind, i64)>> {
    let rows = sqlx::query!(
        r#"
        SELECT state AS "state: Pg<ScanState>", kind AS "kind: Pg<ScanKind>", count(*) AS "n!"
        FROM scans
        WHERE state = ANY($1::text[]::scan_state[])
        GROUP BY state, kind
        "#,
        &crate::types::state_names(states)
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.state.0, r.kind.0, r.n))
        .collect())
}

/// What a scan's log line says: its project, kind, state, error code and how many findings its
/// results hold (those it saw last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSummary {
    pub project: String,
    pub kind: ScanKind,
    pub state: ScanState,
    pub error_code: Option<String>,
    pub findings: i64,
}

/// The [`ScanSummary`] of a scan (any org's: for the scheduler's log).
pub async fn summary(ex: impl PgExecutor<'_>, id: ScanId) -> Result<ScanSummary> {
    let row = sqlx::query!(
        r#"
        SELECT p.full_name, s.kind AS "kind: Pg<ScanKind>", s.state AS "state: Pg<ScanState>",
               s.error_code,
               (SELECT count(*) FROM findings f
                WHERE f.project_id = s.project_id AND f.last_seen_scan_id = s.id) AS "findings!"
        FROM scans s JOIN projects p ON p.id = s.project_id
        WHERE s.id = $1
        "#,
        id.0
    )
    .fetch_one(ex)
    .await?;
    Ok(ScanSummary {
        project: row.full_name,
        kind: row.kind.0,
        state: row.state.0,
        error_code: row.error_code,
        findings: row.findings,
    })
}
