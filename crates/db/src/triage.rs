//! Triage requests from pull-request replies (table `triage_requests`).
//!
//! [`queue`] records a reply's command in the webhook delivery's transaction (one request per
//! reply: a second delivery of the same comment finds the first). The control plane's loop takes
//! one due request at a time under its row lock ([`lock_next_due`], `FOR UPDATE SKIP LOCKED`),
//! checks it with the provider and then, in **one transaction**, triages the finding (through
//! [`findings::triage`](crate::findings::triage), the API's own statement) and records the
//! decision and the answer to post ([`decide`]). The answer is posted after that commit and
//! recorded with [`record_reply`], fenced by the attempt number that [`decide`] or
//! [`begin_reply`] handed out, so a retry never triages again, and a retry of the answer can
//! tell (by its attempt number) that an earlier attempt may have posted it.

use crate::{DbError, Result};
use picket_core::triage::Verb;
use picket_core::{ConnectionId, OrgId, ProjectId};
use sqlx::{PgConnection, PgExecutor};
use std::time::Duration;

/// A reply's command as the webhook brought it.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    pub connection_id: ConnectionId,
    /// The provider's id of the repository (the project).
    pub repo_id: &'a str,
    /// `owner/name` as the event names it.
    pub repo_full_name: &'a str,
    pub installation_id: Option<&'a str>,
    pub pr_number: i32,
    /// The reply's id and the comment it answers.
    pub comment_id: &'a str,
    pub parent_comment_id: &'a str,
    pub author_login: &'a str,
    pub author_id: &'a str,
    pub verb: Verb,
    /// The reason text after the command word (normalized, unchecked).
    pub reason: Option<&'a str>,
    /// The delivery log's row.
    pub delivery_row: Option<crate::webhooks::DeliveryRow>,
}

/// What [`queue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOutcome {
    /// Recorded: the loop will handle it. The request's id.
    Queued(i64),
    /// This reply already has its request.
    Duplicate,
    /// No project of the connection has this repository.
    ProjectUnknown,
    /// The project is disabled.
    ProjectDisabled,
}

/// Records a triage request in the caller's transaction (see the module documentation).
pub async fn queue(conn: &mut PgConnection, new: &NewRequest<'_>) -> Result<QueueOutcome> {
    let Some(project) = sqlx::query!(
        r#"
        SELECT id, org_id, disabled_reason FROM projects
        WHERE connection_id = $1 AND provider_repo_id = $2
        "#,
        new.connection_id.0,
        new.repo_id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(QueueOutcome::ProjectUnknown);
    };
    if project.disabled_reason.is_some() {
        return Ok(QueueOutcome::ProjectDisabled);
    }
    let id = sqlx::query_scalar!(
        r#"
        INSERT INTO triage_requests (org_id, project_id, delivery_row, repo_full_name,
                                     installation_id, pr_number, comment_id, parent_comment_id,
                                     author_login, author_id, verb, reason)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (project_id, comment_id) DO NOTHING
        RETURNING id
        "#,
        project.org_id,
        project.id,
        new.delivery_row.map(|r| r.0),
        new.repo_full_name,
        new.installation_id,
        new.pr_number,
        new.comment_id,
        new.parent_comment_id,
        new.author_login,
        new.author_id,
        new.verb.as_str(),
        new.reason,
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match id {
        Some(id) => QueueOutcome::Queued(id),
        None => QueueOutcome::Duplicate,
    })
}

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// To be checked with the provider and decided.
    Pending,
    /// Decided (the finding triaged); the answer is to be posted.
    Answering,
    Done,
    Failed,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Answering => "answering",
            RequestState::Done => "done",
            RequestState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => RequestState::Pending,
            "answering" => RequestState::Answering,
            "done" => RequestState::Done,
            "failed" => RequestState::Failed,
            other => return Err(DbError::Corrupt(format!("triage request state {other}"))),
        })
    }
}

/// A request as the loop handles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: i64,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub connection_id: ConnectionId,
    /// The provider's id of the repository, `owner/name` (as the event named it) and the
    /// installation (the project's, else the event's).
    pub provider_repo_id: String,
    pub repo_full_name: String,
    pub installation_id: Option<String>,
    pub pr_number: i32,
    pub comment_id: String,
    pub parent_comment_id: String,
    pub author_login: String,
    pub verb: Verb,
    pub reason: Option<String>,
    pub state: RequestState,
    pub outcome: Option<String>,
    pub fingerprint: Option<String>,
    pub reply_body: Option<String>,
    pub reply_attempts: i32,
    pub reply_comment_id: Option<String>,
    pub failures: i32,
    pub last_error: Option<String>,
}

/// Locks one request that is due (pending or answering, its next attempt time passed) and that
/// no one else holds (`FOR UPDATE SKIP LOCKED`), in the caller's transaction.
pub async fn lock_next_due(conn: &mut PgConnection) -> Result<Option<Request>> {
    let id = sqlx::query_scalar!(
        r#"
        SELECT id FROM triage_requests
        WHERE state IN ('pending', 'answering') AND next_attempt_at <= now()
        ORDER BY next_attempt_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED
        "#
    )
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        Some(id) => get(&mut *conn, id).await.map(Some),
        None => Ok(None),
    }
}

/// One request.
pub async fn get(ex: impl PgExecutor<'_>, id: i64) -> Result<Request> {
    let r = sqlx::query!(
        r#"
        SELECT t.id, t.org_id, t.project_id, p.connection_id, p.provider_repo_id,
               t.repo_full_name, COALESCE(p.provider_installation_id, t.installation_id) AS installation_id,
               t.pr_number, t.comment_id, t.parent_comment_id, t.author_login, t.verb, t.reason,
               t.state, t.outcome, t.fingerprint, t.reply_body, t.reply_attempts,
               t.reply_comment_id, t.failures, t.last_error
        FROM triage_requests t JOIN projects p ON p.id = t.project_id
        WHERE t.id = $1
        "#,
        id
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    Ok(Request {
        id: r.id,
        org_id: r.org_id.into(),
        project_id: r.project_id.into(),
        connection_id: r.connection_id.into(),
        provider_repo_id: r.provider_repo_id,
        repo_full_name: r.repo_full_name,
        installation_id: r.installation_id,
        pr_number: r.pr_number,
        comment_id: r.comment_id,
        parent_comment_id: r.parent_comment_id,
        author_login: r.author_login,
        verb: r
            .verb
            .parse()
            .map_err(|e: picket_core::ParseError| DbError::Corrupt(e.to_string()))?,
        reason: r.reason,
        state: RequestState::parse(&r.state)?,
        outcome: r.outcome,
        fingerprint: r.fingerprint,
        reply_body: r.reply_body,
        reply_attempts: r.reply_attempts,
        reply_comment_id: r.reply_comment_id,
        failures: r.failures,
        last_error: r.last_error,
    })
}

/// The requests of a project, oldest first (for operators and tests).
pub async fn of_project(ex: impl PgExecutor<'_>, project: ProjectId) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM triage_requests WHERE project_id = $1 ORDER BY id",
        project.0
    )
    .fetch_all(ex)
    .await?)
}

// `clock_timestamp()`, not `now()`, for the next look: these run at the end of a transaction
// that waited on the provider, and `now()` is when it began.

/// Records a pending request's decision, in the transaction that triaged the finding (if it
/// did). With an answer to post: the request moves to `answering` and its first reply attempt
/// begins now (claimed for `claim`: no other replica takes it up before that); returns that
/// attempt's number (1). Without one (the reply was not to a Picket finding comment): `done`,
/// and `None`.
pub async fn decide(
    ex: impl PgExecutor<'_>,
    id: i64,
    outcome: &str,
    fingerprint: Option<&str>,
    answer: Option<&str>,
    claim: Duration,
) -> Result<Option<i32>> {
    let attempt = sqlx::query_scalar!(
        r#"
        UPDATE triage_requests
        SET state = CASE WHEN $4::text IS NULL THEN 'done' ELSE 'answering' END,
            outcome = $2, fingerprint = $3, reply_body = $4,
            reply_attempts = CASE WHEN $4::text IS NULL THEN 0 ELSE 1 END,
            failures = 0, last_error = NULL, updated_at = now(),
            next_attempt_at = clock_timestamp() + make_interval(secs => $5)
        WHERE id = $1 AND state = 'pending'
        RETURNING reply_attempts
        "#,
        id,
        outcome,
        fingerprint,
        answer,
        claim.as_secs_f64(),
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    Ok((answer.is_some()).then_some(attempt))
}

/// Begins another attempt at posting an answering request's answer, claimed for `claim`;
/// returns its number. Commit before posting: an attempt number above 1 tells the poster that
/// an earlier attempt may have posted the answer already.
pub async fn begin_reply(ex: impl PgExecutor<'_>, id: i64, claim: Duration) -> Result<i32> {
    sqlx::query_scalar!(
        r#"
        UPDATE triage_requests
        SET reply_attempts = reply_attempts + 1, updated_at = now(),
            next_attempt_at = clock_timestamp() + make_interval(secs => $2)
        WHERE id = $1 AND state = 'answering'
        RETURNING reply_attempts
        "#,
        id,
        claim.as_secs_f64(),
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)
}

/// Records the answer posted by attempt `attempt`: the request is `done`. `false` when the
/// request moved on meanwhile (another attempt began after this one's claim ran out).
pub async fn record_reply(
    ex: impl PgExecutor<'_>,
    id: i64,
    attempt: i32,
    reply_comment_id: &str,
) -> Result<bool> {
    let done = sqlx::query!(
        r#"
        UPDATE triage_requests
        SET state = 'done', reply_comment_id = $3, failures = 0, last_error = NULL,
            updated_at = now()
        WHERE id = $1 AND state = 'answering' AND reply_attempts = $2
        "#,
        id,
        attempt,
        reply_comment_id
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed provider call of a pending request, or of reply attempt `attempt` of an
/// answering one (`None` for a pending request): the next look is after `wait`.
pub async fn record_failure(
    ex: impl PgExecutor<'_>,
    id: i64,
    attempt: Option<i32>,
    code: &str,
    wait: Duration,
) -> Result<()> {
    sqlx::query!(
        r#"
        UPDATE triage_requests
        SET failures = failures + 1, last_error = $3, updated_at = now(),
            next_attempt_at = clock_timestamp() + make_interval(secs => $4)
        WHERE id = $1 AND state IN ('pending', 'answering')
          AND ($2::int4 IS NULL OR reply_attempts = $2)
        "#,
        id,
        attempt,
        code,
        wait.as_secs_f64(),
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Gives a request up after a failure that will not pass by itself (`code`): it becomes
/// `failed`. A pending request gets the outcome `failed`; an answering one keeps its decision
/// (the finding stays triaged) and only its answer is missing.
pub async fn fail(
    ex: impl PgExecutor<'_>,
    id: i64,
    attempt: Option<i32>,
    code: &str,
) -> Result<()> {
    sqlx::query!(
        r#"
        UPDATE triage_requests
        SET state = 'failed', outcome = COALESCE(outcome, 'failed'), last_error = $3,
            failures = failures + 1, updated_at = now()
        WHERE id = $1 AND state IN ('pending', 'answering')
          AND ($2::int4 IS NULL OR reply_attempts = $2)
        "#,
        id,
        attempt,
        code,
    )
    .execute(ex)
    .await?;
    Ok(())
}
