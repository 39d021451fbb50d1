//! Webhook deliveries: the delivery log, and what a delivery changes (pull-request scans,
//! projects of an installation).
//!
//! The receiving route runs one transaction per delivery: [`record`] inserts the delivery
//! (`ON CONFLICT (connection_id, delivery_id) DO NOTHING`: a redelivery, or the same delivery
//! arriving twice at once, finds the first one's row and changes nothing), then one of the
//! actions below, then [`set_outcome`]. When the transaction fails nothing of the delivery is left,
//! so the provider's redelivery is taken as new.
//!
//! - [`queue_pull_request`]: one diff scan per pull-request head (unique index
//!   `scans_pr_head_once`); a new head supersedes the PR's older active scans, in the same
//!   transaction, under a per-PR advisory lock so two heads arriving at once cannot both stay.
//!   A running scan superseded loses its lease: its holder's next fenced update or heartbeat is
//!   [`DbError::LeaseLost`] and it stops.
//! - [`sweep_pull_request`]: the same for a head the reconcile sweep found (trigger `reconcile`),
//!   unless the pull request got a scan since the provider's listing was asked for.
//! - [`attach_installation`], [`disable`], [`enable`]: an installation's projects.
//!
//! Deliveries' bodies are kept for troubleshooting until [`prune_bodies`] clears them.

use crate::projects::DisabledReason;
use crate::wake::WakeUps;
use crate::{DbError, Result};
use picket_core::{ConnectionId, OrgId, ProjectId, ScanId, ScanKind, ScanState, ScanTrigger};
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

/// A delivery as received, for the log.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    pub org_id: OrgId,
    pub connection_id: ConnectionId,
    /// The provider's delivery id, when the delivery carried one.
    pub delivery_id: Option<&'a str>,
    pub event: Option<&'a str>,
    pub action: Option<&'a str>,
    pub body: &'a [u8],
}

/// The delivery log's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRow(pub i64);

/// Inserts a delivery with outcome `outcome` (set the final one with [`set_outcome`]). `None`
/// when the connection already has a delivery of this id: a redelivery, to be answered
/// `duplicate` and otherwise ignored. A delivery without an id is always inserted.
pub async fn record(
    ex: impl PgExecutor<'_>,
    new: &NewDelivery<'_>,
    outcome: &str,
) -> Result<Option<DeliveryRow>> {
    let id = sqlx::query_scalar!(
        r#"
        INSERT INTO webhook_deliveries (org_id, connection_id, delivery_id, event, action, outcome,
                                        body)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (connection_id, delivery_id) DO NOTHING
        RETURNING id
        "#,
        new.org_id.0,
        new.connection_id.0,
        new.delivery_id,
        new.event,
        new.action,
        outcome,
        new.body,
    )
    .fetch_optional(ex)
    .await?;
    Ok(id.map(DeliveryRow))
}

/// Sets a recorded delivery's outcome and the scan it queued.
pub async fn set_outcome(
    ex: impl PgExecutor<'_>,
    row: DeliveryRow,
    outcome: &str,
    scan: Option<ScanId>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE webhook_deliveries SET outcome = $2, scan_id = $3 WHERE id = $1",
        row.0,
        outcome,
        scan.map(|s| s.0)
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// A pull request's head to scan.
#[derive(Debug, Clone)]
pub struct PullRequestHead<'a> {
    pub connection_id: ConnectionId,
    /// The provider's id of the base repository (the project).
    pub repo_id: &'a str,
    pub installation_id: Option<&'a str>,
    pub number: i32,
    /// The ref the head is fetched by (`refs/pull/<n>/head` on GitHub,
    /// `refs/merge-requests/<iid>/head` on GitLab: picket-vcs `pull_request_ref`).
    pub git_ref: &'a str,
    /// The head commit, 40 (or 64) hex digits.
    pub head_sha: &'a str,
    /// The target branch's name.
    pub base_ref: &'a str,
    /// The target branch's tip as the provider saw it: information, and where the worker looks
    /// for the merge base; never the baseline itself.
    pub base_sha: Option<&'a str>,
    /// The PR is a draft (the org decides whether drafts get comments). `false` on a head that
    /// already has its scan marks that scan's PR ready for review: comments held back from the
    /// draft are posted.
    pub draft: bool,
    /// When the provider last updated the PR, as this delivery (or listing) says. A head whose
    /// PR has a scan queued from a later update is stale ([`PullRequestOutcome::StaleHead`]).
    pub updated_at: Option<OffsetDateTime>,
}

/// What became of a pull request's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullRequestOutcome {
    /// No project of this connection has this repository.
    ProjectUnknown,
    /// The project is disabled ([`DisabledReason`]).
    ProjectDisabled(ProjectId),
    /// The project's diff scans are switched off.
    DiffScansDisabled(ProjectId),
    /// This head already has its scan. `ready_for_review`: the delivery marked the PR ready for
    /// review, and the comments held back from its draft are due.
    DuplicateHead {
        project: ProjectId,
        scan: ScanId,
        ready_for_review: bool,
    },
    /// The PR has a scan queued from a later update of it (`newer`): this delivery arrived late
    /// or was redelivered, and its head must not supersede a newer one. Nothing queued.
    StaleHead { project: ProjectId, newer: ScanId },
    /// A diff scan was queued; the PR's older active scans were cancelled as `superseded`.
    Queued {
        project: ProjectId,
        scan: ScanId,
        superseded: Vec<ScanId>,
    },
}

impl PullRequestOutcome {
    /// What the transaction that produced this outcome owes once committed, if it began with
    /// [`crate::wake::BEGIN_AFTER_COMMIT`]: the new scan is claimable, the superseded scans'
    /// checks and a draft's held-back comments are due.
    pub fn wake_ups(&self) -> WakeUps {
        match self {
            PullRequestOutcome::Queued { superseded, .. } => WakeUps {
                scan_queued: true,
                pr_checks: superseded.clone(),
            },
            PullRequestOutcome::DuplicateHead {
                scan,
                ready_for_review: true,
                ..
            } => WakeUps {
                scan_queued: false,
                pr_checks: vec![*scan],
            },
            _ => WakeUps::default(),
        }
    }
}

/// The error code (and `scan_events` detail) of a scan cancelled because its PR moved on.
pub const SUPERSEDED: &str = "superseded";
/// The error code of a scan cancelled because its project was disabled.
pub const PROJECT_DISABLED: &str = "project_disabled";

/// Queues the diff scan of a pull request's head (`git_ref` = the provider's ref of it, `commit_sha`
/// = head, `base_ref` = the target branch), in the caller's transaction, and cancels the PR's
/// other active diff scans as superseded (audited as `actor`). See the module documentation.
pub async fn queue_pull_request(
    conn: &mut PgConnection,
    pr: &PullRequestHead<'_>,
    actor: &str,
) -> Result<PullRequestOutcome> {
    match queue_head(conn, pr, ScanTrigger::PullRequest, None, actor).await? {
        SweptHead::Outcome(outcome) => Ok(outcome),
        // Only a sweep's call has a listing time.
        SweptHead::Stale { project, newer } => Ok(PullRequestOutcome::StaleHead { project, newer }),
    }
}

/// What the reconcile sweep made of one open pull request's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweptHead {
    /// What a webhook about this head would have done (queued with trigger `reconcile`).
    Outcome(PullRequestOutcome),
    /// The pull request got a scan (of any head) at or after the listing was taken: the listing
    /// may show a head the PR has already left, so nothing is queued and nothing superseded.
    Stale { project: ProjectId, newer: ScanId },
}

/// The reconcile sweep's [`queue_pull_request`]: the same, in the caller's transaction, with
/// trigger `reconcile`, except when the pull request got a scan queued at or after `listed_at`
/// (the database's clock when the provider's listing was asked for): a push that a webhook
/// reported meanwhile must never be superseded by the head an older listing showed.
pub async fn sweep_pull_request(
    conn: &mut PgConnection,
    pr: &PullRequestHead<'_>,
    listed_at: OffsetDateTime,
    actor: &str,
) -> Result<SweptHead> {
    queue_head(conn, pr, ScanTrigger::Reconcile, Some(listed_at), actor).await
}

/// [`queue_pull_request`] and [`sweep_pull_request`].
async fn queue_head(
    conn: &mut PgConnection,
    pr: &PullRequestHead<'_>,
    trigger: ScanTrigger,
    listed_at: Option<OffsetDateTime>,
    actor: &str,
) -> Result<SweptHead> {
    if let Some(inst) = pr.installation_id {
        // The first delivery names the project's installation. Written before the row is
        // share-locked below: two first deliveries that both share-locked it and then both
        // updated it would deadlock; this way the second waits here and writes nothing.
        sqlx::query!(
            r#"
            UPDATE projects SET provider_installation_id = $3
            WHERE connection_id = $1 AND provider_repo_id = $2
              AND provider_installation_id IS NULL AND disabled_reason IS NULL
            "#,
            pr.connection_id.0,
            pr.repo_id,
            inst
        )
        .execute(&mut *conn)
        .await?;
    }
    // The project, share-locked so that disabling it waits for this transaction (and then
    // cancels what it queued); and the PR's advisory lock, so one PR's heads are queued one at a
    // time and the last one queued supersedes every other.
    let Some(project) = sqlx::query!(
        r#"
        SELECT p.id, p.org_id, p.diff_scans_enabled, p.disabled_reason
        FROM projects p,
             LATERAL pg_advisory_xact_lock(
                 hashtextextended('picket.pr:' || p.id::text || ':' || $3::int4::text, 0)) AS pr_lock
        WHERE p.connection_id = $1 AND p.provider_repo_id = $2
        FOR SHARE OF p
        "#,
        pr.connection_id.0,
        pr.repo_id,
        pr.number,
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(SweptHead::Outcome(PullRequestOutcome::ProjectUnknown));
    };
    let project_id = ProjectId(project.id);
    if project.disabled_reason.is_some() {
        return Ok(SweptHead::Outcome(PullRequestOutcome::ProjectDisabled(
            project_id,
        )));
    }
    if !project.diff_scans_enabled {
        return Ok(SweptHead::Outcome(PullRequestOutcome::DiffScansDisabled(
            project_id,
        )));
    }
    let id = ScanId::new();
    // Under the PR's lock (taken above), in one statement:
    // - the head's scan is inserted unless the head has one (`scans_pr_head_once`) or the PR has
    //   a newer scan: one queued from a later update of the PR, or (a sweep) queued at or after
    //   the listing was asked for, whose transaction has committed since it held the same lock;
    // - if it was, its check is registered as `pr_checks::want` does (SQL function
    //   `pr_check_fail_open_at`), and the PR's other active diff scans are cancelled as
    //   superseded, one `scan_events` row each; a leased one loses its lease (token cleared),
    //   so its holder's next fenced update fails. The statement's snapshot predates the new
    //   row, so it is not among them. The active states are named literally, as the partial
    //   index `scans_pr_active` names them: with a parameter the planner cannot use the index
    //   and reads the project's whole history (37 ms against 0.07 ms at 100,000 scans).
    //   `active_states_are_the_index_s` checks both.
    let queued = sqlx::query!(
        r#"
        WITH ins AS (
            INSERT INTO scans (id, org_id, project_id, kind, trigger, priority, max_attempts,
                               git_ref, commit_sha, base_ref, base_sha, pr_number, pr_draft,
                               pr_updated_at)
            SELECT $1, $2, $3, 'diff', $4::text::scan_trigger, $5, $6, $7, $8, $9, $10, $11, $12,
                   $13
            WHERE NOT EXISTS (
                SELECT 1 FROM scans
                WHERE project_id = $3 AND pr_number = $11 AND kind = 'diff'
                  AND (pr_updated_at > $13 OR queued_at >= $14)
            )
            ON CONFLICT (project_id, pr_number, commit_sha)
                WHERE trigger IN ('pull_request', 'reconcile') AND kind = 'diff'
                  AND error_code IS DISTINCT FROM 'superseded'
            DO NOTHING
            RETURNING id, org_id, queued_at
        ), check_wanted AS (
            INSERT INTO pr_checks (scan_id, org_id, fail_open_at)
            SELECT ins.id, ins.org_id, f.at
            FROM ins, LATERAL pr_check_fail_open_at(ins.org_id, $15, ins.queued_at) AS f(at)
            WHERE f.at IS NOT NULL
        ), cur AS (
            SELECT id, state FROM scans
            WHERE project_id = $3 AND pr_number = $11 AND kind = 'diff'
              AND state IN ('queued', 'claimed', 'running', 'reporting')
              AND EXISTS (SELECT 1 FROM ins)
            FOR UPDATE
        ), moved AS (
            UPDATE scans s
            SET state = 'cancelled', finished_at = now(), lease_owner = NULL, lease_token = NULL,
                lease_expires_at = NULL, error_code = 'superseded', error_message = $16
            FROM cur WHERE s.id = cur.id
            RETURNING s.id, s.org_id, s.attempt, cur.state AS from_state
        ), superseded AS (
            INSERT INTO scan_events (scan_id, org_id, from_state, to_state, attempt, actor, detail)
            SELECT id, org_id, from_state, 'cancelled', attempt, $17, 'superseded' FROM moved
            RETURNING scan_id
        )
        SELECT ins.id, ARRAY(SELECT scan_id FROM superseded) AS "superseded!"
        FROM ins
        "#,
        id.0,
        project.org_id,
        project.id,
        trigger.as_str(),
        trigger.priority(),
        ScanKind::Diff.max_attempts(),
        pr.git_ref,
        pr.head_sha,
        pr.base_ref,
        pr.base_sha,
        pr.number,
        pr.draft,
        pr.updated_at,
        listed_at,
        pr.connection_id.0,
        format!("superseded by scan {id} of the pull request's new head"),
        actor,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(queued) = queued else {
        return not_queued(conn, project_id, pr, listed_at).await;
    };
    let superseded: Vec<ScanId> = queued.superseded.into_iter().map(ScanId).collect();
    Ok(SweptHead::Outcome(PullRequestOutcome::Queued {
        project: project_id,
        scan: id,
        superseded,
    }))
}

/// Why [`queue_head`] inserted nothing: the head has its scan (a PR marked ready for review
/// then releases the comments held back from its draft), or the PR has a newer one.
async fn not_queued(
    conn: &mut PgConnection,
    project: ProjectId,
    pr: &PullRequestHead<'_>,
    listed_at: Option<OffsetDateTime>,
) -> Result<SweptHead> {
    let found = sqlx::query!(
        r#"
        SELECT id, (commit_sha = $3 AND trigger IN ('pull_request', 'reconcile')
                    AND error_code IS DISTINCT FROM 'superseded') AS "same_head!"
        FROM scans
        WHERE project_id = $1 AND pr_number = $2 AND kind = 'diff'
          AND ((commit_sha = $3 AND trigger IN ('pull_request', 'reconcile')
                AND error_code IS DISTINCT FROM 'superseded')
               OR pr_updated_at > $4 OR queued_at >= $5)
        ORDER BY 2 DESC, queued_at DESC
        LIMIT 1
        "#,
        project.0,
        pr.number,
        pr.head_sha,
        pr.updated_at,
        listed_at,
    )
    .fetch_one(&mut *conn)
    .await?;
    let scan = ScanId(found.id);
    if !found.same_head {
        return Ok(SweptHead::Stale {
            project,
            newer: scan,
        });
    }
    let ready_for_review =
        !pr.draft && crate::pr_checks::ready_for_review(&mut *conn, scan).await?;
    Ok(SweptHead::Outcome(PullRequestOutcome::DuplicateHead {
        project,
        scan,
        ready_for_review,
    }))
}

/// Cancels every active scan (queued, claimed, running, reporting) of `projects` with `code`,
/// one `scan_events` row each. A leased scan loses its lease (token cleared), so its holder's
/// next fenced update fails.
async fn cancel_active(
    conn: &mut PgConnection,
    projects: &[Uuid],
    code: &str,
    message: &str,
    actor: &str,
) -> Result<Vec<ScanId>> {
    let sources = crate::types::state_names(&ScanState::sources(ScanState::Cancelled));
    let ids = sqlx::query_scalar!(
        r#"
        WITH cur AS (
            SELECT id, state FROM scans
            WHERE project_id = ANY($1) AND state = ANY($2::text[]::scan_state[])
            FOR UPDATE
        ), moved AS (
            UPDATE scans s
            SET state = 'cancelled', finished_at = now(), lease_owner = NULL, lease_token = NULL,
                lease_expires_at = NULL, error_code = $3, error_message = $4
            FROM cur WHERE s.id = cur.id
            RETURNING s.id, s.org_id, s.attempt, cur.state AS from_state
        )
        INSERT INTO scan_events (scan_id, org_id, from_state, to_state, attempt, actor, detail)
        SELECT id, org_id, from_state, 'cancelled', attempt, $5, $3 FROM moved
        RETURNING scan_id
        "#,
        projects,
        &sources,
        code,
        message,
        actor,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids.into_iter().map(ScanId).collect())
}

/// A project of the connection's repositories, by the provider's repository id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownRepo {
    pub project_id: ProjectId,
    pub provider_repo_id: String,
}

/// The projects of `connection` whose repository is one of `repo_ids`.
pub async fn known_repos(
    ex: impl PgExecutor<'_>,
    connection: ConnectionId,
    repo_ids: &[String],
) -> Result<Vec<KnownRepo>> {
    let rows = sqlx::query!(
        r#"
        SELECT id, provider_repo_id FROM projects
        WHERE connection_id = $1 AND provider_repo_id = ANY($2)
        "#,
        connection.0,
        repo_ids
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| KnownRepo {
            project_id: ProjectId(r.id),
            provider_repo_id: r.provider_repo_id,
        })
        .collect())
}

/// A connection's enabled projects' repositories, for hooks set per repository: `(provider id,
/// full name, installation)`, ordered by full name.
pub async fn hooked_repos(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    connection: ConnectionId,
) -> Result<Vec<(String, String, Option<String>)>> {
    let rows = sqlx::query!(
        r#"
        SELECT provider_repo_id, full_name, provider_installation_id FROM projects
        WHERE org_id = $1 AND connection_id = $2 AND disabled_reason IS NULL
        ORDER BY full_name
        "#,
        org.0,
        connection.0
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.provider_repo_id, r.full_name, r.provider_installation_id))
        .collect())
}

/// Records that these repositories of `connection` are reached through `installation` and
/// enables their projects again, whatever disabled them (the installation can see them now).
/// Returns the projects re-enabled.
pub async fn attach_installation(
    ex: impl PgExecutor<'_>,
    connection: ConnectionId,
    installation: &str,
    repo_ids: &[String],
) -> Result<Vec<ProjectId>> {
    let rows = sqlx::query!(
        r#"
        WITH cur AS (
            SELECT id, disabled_reason FROM projects
            WHERE connection_id = $1 AND provider_repo_id = ANY($3)
            FOR UPDATE
        )
        UPDATE projects p
        SET provider_installation_id = $2, disabled_reason = NULL, disabled_at = NULL
        FROM cur WHERE p.id = cur.id
        RETURNING p.id, cur.disabled_reason IS NOT NULL AS "was_disabled!"
        "#,
        connection.0,
        installation,
        repo_ids
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| r.was_disabled)
        .map(|r| ProjectId(r.id))
        .collect())
}

/// Which projects an installation event addresses.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub connection: ConnectionId,
    /// Every project reached through this installation...
    pub installation: Option<&'a str>,
    /// ...and these repositories of the connection.
    pub repo_ids: &'a [String],
}

/// Disables the scope's projects with `reason` and cancels their active scans (audited as
/// `actor`). A project already disabled keeps its reason unless `reason` is
/// [`DisabledReason::InstallationRemoved`], which outranks the others. Returns the projects
/// disabled now.
pub async fn disable(
    conn: &mut PgConnection,
    scope: Scope<'_>,
    reason: DisabledReason,
    actor: &str,
) -> Result<Vec<ProjectId>> {
    let ids = sqlx::query_scalar!(
        r#"
        UPDATE projects
        SET disabled_reason = $4, disabled_at = COALESCE(disabled_at, now())
        WHERE connection_id = $1
          AND (provider_installation_id = $2 OR provider_repo_id = ANY($3))
          AND (disabled_reason IS NULL
               OR ($4 = 'installation_removed' AND disabled_reason <> 'installation_removed'))
        RETURNING id
        "#,
        scope.connection.0,
        scope.installation,
        scope.repo_ids,
        reason.as_str()
    )
    .fetch_all(&mut *conn)
    .await?;
    if !ids.is_empty() {
        cancel_active(
            &mut *conn,
            &ids,
            PROJECT_DISABLED,
            &format!("the project was disabled: {}", reason.as_str()),
            actor,
        )
        .await?;
    }
    Ok(ids.into_iter().map(ProjectId).collect())
}

/// Enables again the scope's projects that were disabled for `reason` (and only those). Returns
/// them.
pub async fn enable(
    ex: impl PgExecutor<'_>,
    scope: Scope<'_>,
    reason: DisabledReason,
) -> Result<Vec<ProjectId>> {
    let ids = sqlx::query_scalar!(
        r#"
        UPDATE projects
        SET disabled_reason = NULL, disabled_at = NULL
        WHERE connection_id = $1
          AND (provider_installation_id = $2 OR provider_repo_id = ANY($3))
          AND disabled_reason = $4
        RETURNING id
        "#,
        scope.connection.0,
        scope.installation,
        scope.repo_ids,
        reason.as_str()
    )
    .fetch_all(ex)
    .await?;
    Ok(ids.into_iter().map(ProjectId).collect())
}

/// One delivery of the log, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub delivery_id: Option<String>,
    pub event: Option<String>,
    pub action: Option<String>,
    pub outcome: String,
    pub scan_id: Option<ScanId>,
    pub received_at: OffsetDateTime,
    /// Whether the body is still held.
    pub has_body: bool,
}

/// A page of a connection's deliveries, newest first, after the row `before` (the previous
/// page's last). The connection must be the org's, else [`DbError::NotFound`].
pub async fn list(
    ex: &mut PgConnection,
    org: OrgId,
    connection: ConnectionId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeliveryRecord>> {
    crate::connections::get(&mut *ex, org, connection).await?;
    let rows = sqlx::query!(
        r#"
        SELECT d.id, d.delivery_id, d.event, d.action, d.outcome, d.scan_id, d.received_at,
               d.body IS NOT NULL AS "has_body!"
        FROM webhook_deliveries d
        WHERE d.connection_id = $1 AND d.org_id = $2
          AND ($3::int8 IS NULL OR (d.received_at, d.id) <
               (SELECT c.received_at, c.id FROM webhook_deliveries c
                WHERE c.id = $3 AND c.connection_id = $1))
        ORDER BY d.received_at DESC, d.id DESC
        LIMIT $4
        "#,
        connection.0,
        org.0,
        before,
        limit
    )
    .fetch_all(&mut *ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DeliveryRecord {
            id: r.id,
            delivery_id: r.delivery_id,
            event: r.event,
            action: r.action,
            outcome: r.outcome,
            scan_id: r.scan_id.map(ScanId),
            received_at: r.received_at,
            has_body: r.has_body,
        })
        .collect())
}

/// One delivery of the org's connection by the provider's delivery id, with its body while
/// retained. [`DbError::NotFound`] otherwise.
pub async fn get(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    connection: ConnectionId,
    delivery_id: &str,
) -> Result<(DeliveryRecord, Option<Vec<u8>>)> {
    let r = sqlx::query!(
        r#"
        SELECT id, delivery_id, event, action, outcome, scan_id, received_at, body
        FROM webhook_deliveries
        WHERE connection_id = $1 AND org_id = $2 AND delivery_id = $3
        "#,
        connection.0,
        org.0,
        delivery_id
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    Ok((
        DeliveryRecord {
            id: r.id,
            delivery_id: r.delivery_id,
            event: r.event,
            action: r.action,
            outcome: r.outcome,
            scan_id: r.scan_id.map(ScanId),
            received_at: r.received_at,
            has_body: r.body.is_some(),
        },
        r.body,
    ))
}

/// Clears the bodies of deliveries received before `before`. Returns how many.
pub async fn prune_bodies(ex: impl PgExecutor<'_>, before: OffsetDateTime) -> Result<u64> {
    let done = sqlx::query!(
        "UPDATE webhook_deliveries SET body = NULL WHERE body IS NOT NULL AND received_at < $1",
        before
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pull request's `cancel_active` and the partial index `scans_pr_active` name the
    /// active states literally; both must be the states a scan can be cancelled from.
    #[test]
    fn active_states_are_the_index_s() {
        let names = crate::types::state_names(&ScanState::sources(ScanState::Cancelled));
        let literal = names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let index = include_str!("../../../migrations/20261130170000_github_webhooks.sql");
        assert!(
            index.contains(&format!("state IN ({literal})")),
            "scans_pr_active"
        );
        let query = include_str!("webhooks.rs");
        assert!(
            query.contains(&format!("AND state IN ({literal})\n")),
            "cancel_active"
        );
    }
}
