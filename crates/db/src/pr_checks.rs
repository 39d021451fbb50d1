//! The check Picket shows on each PR scan's head (table `pr_checks`).
//!
//! [`want`] registers a PR scan's check when the scan is queued (in the queueing transaction);
//! the control plane's loop walks [`open`] checks, asks picket-core's
//! [`check::wanted`](picket_core::check::wanted) what each should show, moves the provider's
//! check, and records it with [`record_shown`] (forward only). A worker about to post its result
//! calls [`begin_feedback`] (through the API, fenced by its lease), which stores what it plans
//! from and tells it whether it is late (after fail-open it may add comments, the check stays);
//! once its comments are posted it calls [`comments_done`], and the loop completes the check
//! from the stored input (or posts the comments itself if the worker never said they were done).
//!
//! Each row is handled under its row lock (`FOR UPDATE`), so the loop and a worker's
//! `begin_report` never create two checks for one scan.

use crate::types::Pg;
use crate::{DbError, Result};
use picket_core::check::CheckPhase;
use picket_core::feedback::{DraftFeedback, FeedbackInput};
use picket_core::{ConnectionId, OrgId, ProjectId, Provider, ScanId, ScanState};
use sqlx::{PgConnection, PgExecutor};
use std::time::Duration;
use time::OffsetDateTime;

/// The channel that wakes the control plane's check loop: raised when a PR scan changes state
/// (trigger `pr_scans_notify_state`, the payload the scan's id: see [`due_now`]), when a
/// worker's comments are done ([`comments_done`]) and when a draft is marked ready for review
/// ([`ready_for_review`]). A new PR scan raises the queue's channel ([`crate::queue::CHANNEL`]),
/// which the loop also listens to. When each is sent: [`crate::wake`].
pub const CHANNEL: &str = "picket_pr_check";

/// The channels the check loop listens to.
pub const WAKE_ON: &[&str] = &[CHANNEL, crate::queue::CHANNEL];

/// Registers the check of a PR scan just queued, when its project's provider takes feedback
/// (GitHub); its fail-open deadline is the scan's queue time plus the org's
/// `pr_scan_timeout_secs` (both decided by the SQL function `pr_check_fail_open_at`, which the
/// webhook route's queueing uses too). Registering twice, or a scan without a PR, is a no-op.
pub async fn want(ex: impl PgExecutor<'_>, scan: ScanId) -> Result<()> {
    sqlx::query!(
        r#"
        INSERT INTO pr_checks (scan_id, org_id, fail_open_at)
        SELECT s.id, s.org_id, f.at
        FROM scans s JOIN projects p ON p.id = s.project_id,
             LATERAL pr_check_fail_open_at(s.org_id, p.connection_id, s.queued_at) AS f(at)
        WHERE s.id = $1 AND s.kind = 'diff' AND s.pr_number IS NOT NULL AND f.at IS NOT NULL
        ON CONFLICT (scan_id) DO NOTHING
        "#,
        scan.0
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// A check that may still move, with what the loop needs to decide and to reach the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCheck {
    pub scan_id: ScanId,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub connection_id: ConnectionId,
    pub provider: Provider,
    /// The repository: provider id, `owner/name`, installation.
    pub provider_repo_id: String,
    pub full_name: String,
    pub installation_id: Option<String>,
    pub pr_number: i32,
    /// The PR head the scan is of (the check's commit).
    pub head_sha: Option<String>,
    pub scan_state: ScanState,
    pub error_code: Option<String>,
    pub check_run_id: Option<String>,
    pub shown: Option<CheckPhase>,
    /// The fail-open deadline has passed (database clock).
    pub past_deadline: bool,
    pub reported: bool,
    pub failures: i32,
    /// The worker's feedback input, once it began its feedback.
    pub feedback: Option<FeedbackInput>,
    /// The result came after the fail-open deadline.
    pub late: bool,
    /// The feedback's comments are on the PR.
    pub comments_done: bool,
    /// The PR is a draft (as last known), and what the org gives drafts.
    pub pr_is_draft: bool,
    pub draft_feedback: DraftFeedback,
}

/// Locks one open check, due now, that no one else holds (`FOR UPDATE SKIP LOCKED`), in the
/// caller's transaction. `None` when none is due.
pub async fn lock_next_due(conn: &mut PgConnection) -> Result<Option<OpenCheck>> {
    let row = sqlx::query!(
        r#"
        WITH due AS (
            SELECT scan_id FROM pr_checks
            WHERE (shown IS NULL OR shown IN ('queued', 'in_progress')
                   OR (feedback IS NOT NULL AND comments_done_at IS NULL))
              AND next_attempt_at <= now()
            ORDER BY next_attempt_at
            LIMIT 1
            FOR UPDATE SKIP LOCKED
        )
        SELECT c.scan_id, c.org_id, s.project_id, p.connection_id,
               v.provider AS "provider: Pg<Provider>", p.provider_repo_id, p.full_name,
               p.provider_installation_id, s.pr_number AS "pr_number!", s.commit_sha,
               s.state AS "state: Pg<ScanState>", s.error_code, c.check_run_id, c.shown,
               c.fail_open_at <= now() AS "past_deadline!", c.reported_at IS NOT NULL AS "reported!",
               c.failures, c.feedback, c.late, c.comments_done_at IS NOT NULL AS "comments_done!",
               s.pr_draft IS TRUE AS "pr_is_draft!", o.draft_feedback
        FROM due JOIN pr_checks c USING (scan_id)
        JOIN scans s ON s.id = c.scan_id
        JOIN orgs o ON o.id = s.org_id
        JOIN projects p ON p.id = s.project_id
        JOIN vcs_connections v ON v.id = p.connection_id
        "#
    )
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(OpenCheck {
            scan_id: r.scan_id.into(),
            org_id: r.org_id.into(),
            project_id: r.project_id.into(),
            connection_id: r.connection_id.into(),
            provider: r.provider.0,
            provider_repo_id: r.provider_repo_id,
            full_name: r.full_name,
            installation_id: r.provider_installation_id,
            pr_number: r.pr_number,
            head_sha: r.commit_sha,
            scan_state: r.state.0,
            error_code: r.error_code,
            check_run_id: r.check_run_id,
            shown: r.shown.as_deref().map(parse_phase).transpose()?,
            past_deadline: r.past_deadline,
            reported: r.reported,
            failures: r.failures,
            feedback: r
                .feedback
                .map(|v| serde_json::from_value(v).map_err(|e| DbError::Corrupt(e.to_string())))
                .transpose()?,
            late: r.late,
            comments_done: r.comments_done,
            pr_is_draft: r.pr_is_draft,
            draft_feedback: parse_draft_feedback(&r.draft_feedback)?,
        })
    })
    .transpose()
}

fn parse_draft_feedback(s: &str) -> Result<DraftFeedback> {
    s.parse()
        .map_err(|e: picket_core::ParseError| DbError::Corrupt(e.to_string()))
}

fn parse_phase(s: &str) -> Result<CheckPhase> {
    s.parse()
        .map_err(|e: picket_core::ParseError| DbError::Corrupt(e.to_string()))
}

// `clock_timestamp()`, not `now()`, for the next look: these run at the end of a transaction
// that waited on the provider, and `now()` is when it began.

/// Records what the provider now shows (never moving a check back: a lower or equal rank than
/// what is recorded changes nothing) and clears the failure count. The next look is at the
/// fail-open deadline or after `recheck`, whichever is sooner (after `recheck` once the deadline
/// has passed).
pub async fn record_shown(
    ex: impl PgExecutor<'_>,
    scan: ScanId,
    check_run_id: &str,
    phase: CheckPhase,
    recheck: Duration,
) -> Result<()> {
    sqlx::query!(
        r#"
        UPDATE pr_checks
        SET check_run_id = $2, shown = $3, failures = 0, last_error = NULL, updated_at = now(),
            next_attempt_at = LEAST(CASE WHEN fail_open_at > clock_timestamp() THEN fail_open_at END, clock_timestamp() + make_interval(secs => $5))
        WHERE scan_id = $1
          AND (shown IS NULL
               OR (CASE shown WHEN 'queued' THEN 0 WHEN 'in_progress' THEN 1 ELSE 2 END) < $4)
        "#,
        scan.0,
        check_run_id,
        phase.as_str(),
        i32::from(phase.rank()),
        recheck.as_secs_f64(),
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Makes the checks of `scans` due now (their scans moved: a check may have to follow). Checks
/// already due, completed, or held by another loop's transaction are left as they are (`SKIP
/// LOCKED`: that loop is looking at them already).
pub async fn due_now(ex: impl PgExecutor<'_>, scans: &[ScanId]) -> Result<()> {
    let ids: Vec<uuid::Uuid> = scans.iter().map(|s| s.0).collect();
    sqlx::query!(
        r#"
        WITH due AS (
            SELECT scan_id FROM pr_checks
            WHERE scan_id = ANY($1) AND next_attempt_at > now()
              AND (shown IS NULL OR shown IN ('queued', 'in_progress')
                   OR (feedback IS NOT NULL AND comments_done_at IS NULL))
            FOR UPDATE SKIP LOCKED
        )
        UPDATE pr_checks c SET next_attempt_at = now() FROM due WHERE c.scan_id = due.scan_id
        "#,
        &ids,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Puts the next look at the check off by `after` (nothing to do now).
pub async fn defer(ex: impl PgExecutor<'_>, scan: ScanId, after: Duration) -> Result<()> {
    sqlx::query!(
        r#"
        UPDATE pr_checks
        SET next_attempt_at = LEAST(CASE WHEN fail_open_at > clock_timestamp() THEN fail_open_at END, clock_timestamp() + make_interval(secs => $2))
        WHERE scan_id = $1
        "#,
        scan.0,
        after.as_secs_f64(),
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Records a failed provider call (its stable code, never a credential) and when to try again.
pub async fn record_failure(
    ex: impl PgExecutor<'_>,
    scan: ScanId,
    code: &str,
    retry_in: Duration,
) -> Result<()> {
    sqlx::query!(
        r#"
        UPDATE pr_checks
        SET failures = failures + 1, last_error = $2, updated_at = now(),
            next_attempt_at = clock_timestamp() + make_interval(secs => $3)
        WHERE scan_id = $1
        "#,
        scan.0,
        code,
        retry_in.as_secs_f64(),
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// What a worker beginning its feedback learns.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackContext {
    /// The check to complete; `None` when none was created yet.
    pub check_run_id: Option<String>,
    /// The check was completed without this result, or the fail-open deadline passed: comments
    /// may be added, the check is left as it is.
    pub late: bool,
    /// The input of this PR's previous scan that had feedback (queued before this one), to tell
    /// a finding that came back from one a person resolved.
    pub previous: Option<FeedbackInput>,
    /// The PR is a draft (as last known), and what the org gives drafts: with
    /// [`DraftFeedback::CheckOnly`] no new comment is posted now (picket-core `plan_feedback`),
    /// and the comments follow when the PR is marked ready for review ([`ready_for_review`]).
    pub pr_is_draft: bool,
    pub draft_feedback: DraftFeedback,
}

/// Begins the feedback of a scan whose worker holds its result (the caller has checked the
/// worker's lease, in the same transaction): stores `input` (what the control plane plans from
/// should it have to finish), marks the result as reported, and tells whether it is late, under
/// the row's lock so the loop never completes the check at the same time. Beginning again (a
/// retry of the call, or a later attempt) replaces the input and clears a finished mark.
/// `NotFound` when the scan has no PR check.
pub async fn begin_feedback(
    conn: &mut PgConnection,
    scan: ScanId,
    input: &FeedbackInput,
) -> Result<FeedbackContext> {
    let row = sqlx::query!(
        r#"
        SELECT c.check_run_id, c.shown, c.fail_open_at <= now() AS "past_deadline!",
               s.project_id, s.pr_number, s.queued_at,
               s.pr_draft IS TRUE AS "pr_is_draft!", o.draft_feedback
        FROM pr_checks c JOIN scans s ON s.id = c.scan_id JOIN orgs o ON o.id = s.org_id
        WHERE c.scan_id = $1 FOR UPDATE OF c
        "#,
        scan.0
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DbError::NotFound)?;
    let shown = row.shown.as_deref().map(parse_phase).transpose()?;
    let late = shown.is_some_and(CheckPhase::is_final) || row.past_deadline;
    let json = serde_json::to_value(input).map_err(|e| DbError::Corrupt(e.to_string()))?;
    sqlx::query!(
        r#"
        UPDATE pr_checks
        SET feedback = $2, late = $3, reported_at = now(), comments_done_at = NULL,
            quiet_draft = false, feedback_outcome = NULL, updated_at = now()
        WHERE scan_id = $1
        "#,
        scan.0,
        json,
        late,
    )
    .execute(&mut *conn)
    .await?;
    let previous = sqlx::query_scalar!(
        r#"
        SELECT c.feedback AS "feedback!"
        FROM pr_checks c JOIN scans s ON s.id = c.scan_id
        WHERE s.project_id = $1 AND s.pr_number = $2 AND s.id <> $3 AND s.queued_at <= $4
          AND c.feedback IS NOT NULL
        ORDER BY s.queued_at DESC
        LIMIT 1
        "#,
        row.project_id,
        row.pr_number,
        scan.0,
        row.queued_at,
    )
    .fetch_optional(&mut *conn)
    .await?
    .map(|v| serde_json::from_value(v).map_err(|e| DbError::Corrupt(e.to_string())))
    .transpose()?;
    Ok(FeedbackContext {
        check_run_id: row.check_run_id,
        late,
        previous,
        pr_is_draft: row.pr_is_draft,
        draft_feedback: parse_draft_feedback(&row.draft_feedback)?,
    })
}

/// Records that the feedback's comments are on the PR (`outcome`: what was posted) and asks the
/// loop to complete the check now. Changes nothing unless the feedback was begun.
///
/// `quiet_draft`: the comments were planned for a quiet draft (no new comment). If the PR was
/// marked ready for review meanwhile, the feedback stays unfinished and the loop posts the
/// comments the draft did not get.
pub async fn comments_done(
    ex: impl PgExecutor<'_>,
    scan: ScanId,
    outcome: &serde_json::Value,
    quiet_draft: bool,
) -> Result<()> {
    sqlx::query!(
        r#"
        WITH still AS (
            SELECT $3 AND s.pr_draft IS TRUE AS quiet FROM scans s WHERE s.id = $1
        )
        UPDATE pr_checks
        SET comments_done_at = CASE WHEN $3 AND NOT still.quiet THEN NULL ELSE now() END,
            quiet_draft = still.quiet, feedback_outcome = $2, updated_at = now(),
            next_attempt_at = now(), failures = 0, last_error = NULL
        FROM still
        WHERE scan_id = $1 AND feedback IS NOT NULL
        RETURNING picket_wake('picket_pr_check', scan_id::text)::text
        "#,
        scan.0,
        outcome,
        quiet_draft,
    )
    .fetch_optional(ex)
    .await?;
    Ok(())
}

/// The PR of `scan` (the scan of its head) was marked ready for review: the scan is no longer a
/// draft's, and the comments a quiet draft did not get are due (the loop posts them). In the
/// caller's transaction; a no-op for a scan that was no draft's. `true` when held-back comments
/// became due (the check loop is woken: [`crate::wake`]).
pub async fn ready_for_review(conn: &mut PgConnection, scan: ScanId) -> Result<bool> {
    let reopened = sqlx::query!(
        r#"
        WITH ready AS (
            UPDATE scans SET pr_draft = false WHERE id = $1 AND pr_draft RETURNING id
        )
        UPDATE pr_checks
        SET comments_done_at = NULL, quiet_draft = false, next_attempt_at = now(),
            updated_at = now()
        WHERE scan_id IN (SELECT id FROM ready) AND quiet_draft
        RETURNING picket_wake('picket_pr_check', scan_id::text)::text
        "#,
        scan.0,
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(reopened.is_some())
}

/// The check of a scan, for the scan's detail and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    pub check_run_id: Option<String>,
    pub shown: Option<CheckPhase>,
    pub fail_open_at: OffsetDateTime,
    pub reported_at: Option<OffsetDateTime>,
    pub failures: i32,
    pub last_error: Option<String>,
}

/// The scan's check, if it has one (org-scoped).
pub async fn get(ex: impl PgExecutor<'_>, org: OrgId, scan: ScanId) -> Result<Option<CheckRecord>> {
    let row = sqlx::query!(
        r#"
        SELECT check_run_id, shown, fail_open_at, reported_at, failures, last_error
        FROM pr_checks WHERE scan_id = $1 AND org_id = $2
        "#,
        scan.0,
        org.0
    )
    .fetch_optional(ex)
    .await?;
    row.map(|r| {
        Ok(CheckRecord {
            check_run_id: r.check_run_id,
            shown: r.shown.as_deref().map(parse_phase).transpose()?,
            fail_open_at: r.fail_open_at,
            reported_at: r.reported_at,
            failures: r.failures,
            last_error: r.last_error,
        })
    })
    .transpose()
}
