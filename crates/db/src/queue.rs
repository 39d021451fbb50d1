//! The scan queue: the `scans` table is the queue.
//!
//! 1. [`claim`] takes the next scan (priority order, fair across orgs, within each org's concurrency
//!    cap) with `FOR UPDATE SKIP LOCKED` and gives it a lease: an owner, a random fencing token and
//!    an expiry from the database clock (the `claim_scan` function in migrations/).
//! 2. The holder keeps the lease alive with [`heartbeat`] and moves the scan along the state
//!    machine with [`advance`], [`fail`] and [`release`]. Every one of these is an `UPDATE ... WHERE
//!    lease_token = $token` plus a `scan_events` row in the same statement; when it matches no row
//!    the lease is lost ([`DbError::LeaseLost`]) and the holder must stop without side effects.
//! 3. [`rescue_expired`] requeues scans whose lease lapsed (their holder died), or fails them when
//!    they have used all their attempts.
//! 4. [`Waker`] wakes idle claimers on `NOTIFY picket_scan_queued`, with a polling fallback.
//!
//! [`drain`] claims and handles scans until none is left: the deterministic step tests call.

use crate::scans::{ScanRecord, ScanRow};
use crate::types::{state_names, Pg};
use crate::{DbError, Result};
use picket_core::{ScanId, ScanKind, ScanState, ScanTrigger};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgExecutor, PgPool};
use std::future::Future;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// The NOTIFY channel raised when a scan becomes claimable.
pub const CHANNEL: &str = "picket_scan_queued";

/// Proof of holding a scan: presented with every update of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Lease {
    pub scan_id: ScanId,
    pub owner: String,
    pub token: Uuid,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for Lease {
    // The fencing token is a bearer credential for this scan's row: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("scan_id", &self.scan_id)
            .field("owner", &self.owner)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A scan just claimed, with its lease.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub scan: ScanRecord,
    pub lease: Lease,
}

/// Claims the next scan for `owner`, leased for `lease`. `None` when nothing is claimable.
pub async fn claim(
    ex: impl PgExecutor<'_>,
    owner: &str,
    lease: Duration,
) -> Result<Option<Claimed>> {
    // A set-returning function's columns are all nullable to sqlx: the overrides restate the
    // table's NOT NULL columns.
    let row = sqlx::query_as!(
        ScanRow,
        r#"
        SELECT id AS "id!", org_id AS "org_id!", project_id AS "project_id!",
               kind AS "kind!: Pg<ScanKind>", trigger AS "trigger!: Pg<ScanTrigger>",
               state AS "state!: Pg<ScanState>", priority AS "priority!", attempt AS "attempt!",
               max_attempts AS "max_attempts!", git_ref, commit_sha, base_ref, base_sha, merge_base_sha, pr_number,
               weekly_slot_at, rerun_of, requested_by, lease_owner, lease_token,
               lease_expires_at, queued_at AS "queued_at!", claimed_at, started_at, finished_at,
               error_code, error_message
        FROM claim_scan($1, $2)
        "#,
        owner,
        lease.as_secs_f64()
    )
    .fetch_optional(ex)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (Some(token), Some(expires_at)) = (row.lease_token, row.lease_expires_at) else {
        return Err(DbError::Corrupt(
            "claim_scan returned a scan without a lease".into(),
        ));
    };
    let scan = ScanRecord::from(row);
    Ok(Some(Claimed {
        lease: Lease {
            scan_id: scan.id,
            owner: owner.to_owned(),
            token,
            expires_at,
        },
        scan,
    }))
}

/// Extends the lease by `extend` from now (database clock). Returns the new expiry.
pub async fn heartbeat(
    ex: impl PgExecutor<'_>,
    lease: &Lease,
    extend: Duration,
) -> Result<OffsetDateTime> {
    sqlx::query_scalar!(
        r#"
        UPDATE scans
        SET lease_expires_at = now() + make_interval(secs => $3), heartbeat_at = now()
        WHERE id = $1 AND lease_token = $2 AND state IN ('claimed', 'running', 'reporting')
        RETURNING lease_expires_at AS "lease_expires_at!"
        "#,
        lease.scan_id.0,
        lease.token,
        extend.as_secs_f64()
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::LeaseLost)
}

/// Holds the scan for the rest of the caller's transaction while `lease` is its current lease
/// and the scan is `reporting` (`FOR SHARE`: a cancel or a supersede waits for the transaction,
/// and a scan cancelled first is seen as such). [`DbError::LeaseLost`] otherwise.
pub async fn hold_reporting(conn: &mut PgConnection, lease: &Lease) -> Result<()> {
    sqlx::query_scalar!(
        r#"
        SELECT 1 AS "one!" FROM scans
        WHERE id = $1 AND lease_token = $2 AND state = 'reporting' AND lease_expires_at > now()
        FOR SHARE
        "#,
        lease.scan_id.0,
        lease.token,
    )
    .fetch_optional(&mut *conn)
    .await?
    .map(drop)
    .ok_or(DbError::LeaseLost)
}

/// Moves a leased scan forward: `Running` (the worker started), `Reporting` (results are being
/// uploaded), `Succeeded`, or one of the terminal failures `Failed`, `TimedOut`, `Cancelled`.
/// Requeueing goes through [`fail`] or [`release`]. The move is refused by the state machine
/// before any SQL runs; a fenced miss is [`DbError::LeaseLost`].
pub async fn advance(
    ex: impl PgExecutor<'_>,
    lease: &Lease,
    to: ScanState,
    error: Option<(&str, &str)>,
) -> Result<()> {
    advance_as(ex, lease, to, error, &format!("scheduler:{}", lease.owner)).await
}

/// What became of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Back in the queue as the next attempt, claimable after the backoff.
    Retrying { next_attempt: i32 },
    /// No attempts left (or another full scan of the project is already waiting): failed for good.
    Failed,
}

/// Records a failed attempt. A scan with attempts left goes back to the queue after `backoff`
/// (domain.md §1: a full scan is retried once); otherwise it ends `failed`. The error is kept
/// either way, so the history shows why the first attempt failed.
pub async fn fail(
    ex: impl PgExecutor<'_>,
    lease: &Lease,
    code: &str,
    message: &str,
    backoff: Duration,
) -> Result<FailOutcome> {
    fail_as(
        ex,
        lease,
        code,
        message,
        backoff,
        &format!("scheduler:{}", lease.owner),
    )
    .await
}

/// Hands a scan back to the queue without using up an attempt: for a graceful shutdown before
/// the worker started.
pub async fn release(ex: impl PgExecutor<'_>, lease: &Lease, reason: &str) -> Result<()> {
    sqlx::query_scalar!(
        r#"
        WITH cur AS (
            SELECT id, state FROM scans
            WHERE id = $1 AND lease_token = $2 AND state = 'claimed'
            FOR UPDATE
        ), moved AS (
            UPDATE scans s
            SET state = 'queued', lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                claimed_at = NULL
            FROM cur WHERE s.id = cur.id
            RETURNING s.id, s.org_id, s.attempt
        )
        INSERT INTO scan_events (scan_id, org_id, from_state, to_state, attempt, actor, detail)
        SELECT id, org_id, 'claimed', 'queued', attempt, 'scheduler:' || $3, $4 FROM moved
        RETURNING scan_id
        "#,
        lease.scan_id.0,
        lease.token,
        lease.owner,
        reason
    )
    .fetch_optional(ex)
    .await?
    .map(|_| ())
    .ok_or(DbError::LeaseLost)
}

/// What one rescue pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rescued {
    pub requeued: u64,
    pub failed: u64,
}

/// Requeues every scan whose lease has lapsed (its holder died or hung), as its next attempt; a
/// scan that has used all its attempts ends `failed` with `lease_expired`. Scans whose lease is
/// still within its horizon are left alone. Safe to run from several replicas at once.
pub async fn rescue_expired(ex: impl PgExecutor<'_>) -> Result<Rescued> {
    let rows = sqlx::query!(
        r#"
        WITH expired AS (
            SELECT s.id, s.state,
                   s.attempt < s.max_attempts AND NOT EXISTS (
                       SELECT 1 FROM scans q
                       WHERE q.project_id = s.project_id AND q.kind = 'full' AND s.kind = 'full'
                         AND q.state = 'queued'
                   ) AS retry
            FROM scans s
            WHERE s.state IN ('claimed', 'running', 'reporting') AND s.lease_expires_at < now()
            FOR UPDATE SKIP LOCKED
        ), moved AS (
            UPDATE scans s
            SET state = CASE WHEN e.retry THEN 'queued' ELSE 'failed' END::scan_state,
                attempt = CASE WHEN e.retry THEN s.attempt + 1 ELSE s.attempt END,
                run_after = now(),
                finished_at = CASE WHEN e.retry THEN NULL ELSE now() END,
                error_code = 'lease_expired',
                error_message = 'the scan''s lease expired: its runner stopped sending heartbeats',
                lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
            FROM expired e WHERE s.id = e.id
            RETURNING s.id, s.org_id, s.attempt, s.state, e.state AS from_state
        )
        INSERT INTO scan_events (scan_id, org_id, from_state, to_state, attempt, actor, detail)
        SELECT id, org_id, from_state, state, attempt, 'rescuer', 'lease_expired' FROM moved
        RETURNING to_state AS "to_state: Pg<ScanState>"
        "#
    )
    .fetch_all(ex)
    .await?;
    let requeued = rows
        .iter()
        .filter(|r| r.to_state.0 == ScanState::Queued)
        .count() as u64;
    Ok(Rescued {
        requeued,
        failed: rows.len() as u64 - requeued,
    })
}

/// Wakes an idle claimer when work may have arrived. Notifications are an optimisation only:
/// [`Waker::wait`] returns after `poll` at the latest, so a lost notification (or a dropped
/// listener connection) delays a claim by at most one poll interval.
#[derive(Debug)]
pub struct Waker {
    listener: Option<PgListener>,
    pool: PgPool,
    channels: &'static [&'static str],
    /// The payload of the notification [`Waker::wait`] woke on.
    last: Option<String>,
}

impl Waker {
    /// A claimer's waker: on [`CHANNEL`] (a scan was queued).
    pub async fn new(pool: &PgPool) -> Waker {
        Waker::on(pool, &[CHANNEL]).await
    }

    /// A waker on `channels`.
    pub async fn on(pool: &PgPool, channels: &'static [&'static str]) -> Waker {
        let mut w = Waker {
            listener: None,
            pool: pool.clone(),
            channels,
            last: None,
        };
        w.connect().await;
        w
    }

    async fn connect(&mut self) {
        match PgListener::connect_with(&self.pool).await {
            Ok(mut l) => match l.listen_all(self.channels.iter().copied()).await {
                Ok(()) => self.listener = Some(l),
                Err(e) => tracing::warn!(error = %e, "LISTEN failed; polling only"),
            },
            Err(e) => tracing::warn!(error = %e, "listener connection failed; polling only"),
        }
    }

    /// Waits for a notification or `poll`, whichever comes first; then takes every notification
    /// already received. Returns their payloads (empty when none came).
    pub async fn wait_payloads(&mut self, poll: Duration) -> Vec<String> {
        let mut payloads = Vec::new();
        if self.wait(poll).await {
            if let Some(first) = self.last.take() {
                payloads.push(first);
            }
            payloads.extend(self.take_buffered());
        }
        payloads
    }

    /// The payloads of notifications received and not yet taken, without waiting.
    pub fn take_buffered(&mut self) -> Vec<String> {
        let Some(listener) = self.listener.as_mut() else {
            return Vec::new();
        };
        std::iter::from_fn(|| listener.next_buffered())
            .map(|n| n.payload().to_owned())
            .collect()
    }

    /// Waits for a notification or `poll`, whichever comes first. Returns true when woken by a
    /// notification.
    pub async fn wait(&mut self, poll: Duration) -> bool {
        if self.listener.is_none() {
            self.connect().await;
        }
        let Some(listener) = self.listener.as_mut() else {
            tokio::time::sleep(poll).await;
            return false;
        };
        match tokio::time::timeout(poll, listener.try_recv()).await {
            Ok(Ok(Some(n))) => {
                self.last = Some(n.payload().to_owned());
                true
            }
            Ok(Ok(None)) | Err(_) => false,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "listener failed; reconnecting on next wait");
                self.listener = None;
                false
            }
        }
    }
}

/// Claims and handles scans one at a time until none is claimable; returns how many were
/// handled. The handler owns the lease and must move the scan to an end (or lose it trying).
pub async fn drain<F, Fut>(
    pool: &PgPool,
    owner: &str,
    lease: Duration,
    mut handle: F,
) -> Result<usize>
where
    F: FnMut(Claimed) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut n = 0;
    while let Some(claimed) = claim(pool, owner, lease).await? {
        handle(claimed).await?;
        n += 1;
    }
    Ok(n)
}

// ---------------------------------------------------------------------------------------------
// The worker protocol (issue #3): per-scan tokens, and fenced moves recorded under an explicit
// actor (the worker reports its own progress, so its moves are audited as `worker`).
// ---------------------------------------------------------------------------------------------

/// Mints the per-scan token for the lease's scan and attempt: `pks_` + 43 base62 characters
/// (256 bits from the OS RNG). Only its SHA-256 is stored, bound to this lease, so the token
/// authenticates only while this lease holds the scan; minting again (a later attempt) replaces
/// it. Fenced like every other update: [`DbError::LeaseLost`] when the lease is gone.
pub async fn mint_scan_token(
    ex: impl PgExecutor<'_>,
    lease: &Lease,
) -> Result<secrecy::SecretString> {
    use secrecy::ExposeSecret;
    let token = crate::worker::generate_scan_token();
    sqlx::query_scalar!(
        r#"
        UPDATE scans SET scan_token_hash = $3, scan_token_lease = lease_token
        WHERE id = $1 AND lease_token = $2 AND state IN ('claimed', 'running', 'reporting')
        RETURNING id
        "#,
        lease.scan_id.0,
        lease.token,
        &crate::worker::hash_scan_token(token.expose_secret())[..],
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::LeaseLost)?;
    Ok(token)
}

/// [`advance`], audited as `actor` instead of the lease owner.
pub async fn advance_as(
    ex: impl PgExecutor<'_>,
    lease: &Lease,
    to: ScanState,
    error: Option<(&str, &str)>,
    actor: &str,
) -> Result<()> {
    if to == ScanState::Queued || to == ScanState::Claimed {
        return Err(DbError::Corrupt(format!(
            "advance_as() cannot move a scan to {to}"
        )));
    }
    let sources = state_names(&ScanState::sources(to));
    let (code, message) = error.unzip();
    let moved = sqlx::query_scalar!(
        r#"
        WITH cur AS (
            -- The state before the move, for the audit row. No lock here: the fence below is
            -- re-checked by the UPDATE on the row's latest version, and only the lease holder
            -- changes the state of a row that still carries its token.
            SELECT id, state FROM scans WHERE id = $1
        ), moved AS (
            UPDATE scans s
            SET state = $4::text::scan_state,
                started_at = CASE WHEN $4 = 'running' THEN now() ELSE s.started_at END,
                finished_at = CASE WHEN $5 THEN now() ELSE s.finished_at END,
                lease_owner = CASE WHEN $5 THEN NULL ELSE s.lease_owner END,
                lease_token = CASE WHEN $5 THEN NULL ELSE s.lease_token END,
                lease_expires_at = CASE WHEN $5 THEN NULL ELSE s.lease_expires_at END,
                error_code = COALESCE($6, s.error_code),
                error_message = COALESCE($7, s.error_message)
            FROM cur
            WHERE s.id = cur.id AND s.lease_token = $2 AND s.state = ANY($3::text[]::scan_state[])
            RETURNING s.id, s.org_id, s.attempt, cur.state AS from_state
        )
        INSERT INTO scan_events (scan_id, org_id, from_state, to_state, attempt, actor, detail)
        SELECT id, org_id, from_state, $4::text::scan_state, attempt, $8, $6
        FROM moved
        RETURNING scan_id
        "#,
        lease.scan_id.0,
        lease.token,
        &sources,
        to.as_str(),
        to.is_terminal(),
        code,
        message,
        actor,
    )
    .fetch_optional(ex)
    .await?;
    moved.map(|_| ()).ok_or(DbError::LeaseLost)
}

/// [`fail`], audited as `actor` instead of the lease owner.
pub async fn fail_as(
    ex: impl PgExecutor<'_>,
    lease: &Lease,
    code: &str,
    message: &str,
    backoff: Duration,
    actor: &str,
) -> Result<FailOutcome> {
    let row = sqlx::query!(
        r#"
        WITH cur AS (
            SELECT s.id, s.state,
                   s.attempt < s.max_attempts AND NOT EXISTS (
                       SELECT 1 FROM scans q
                       WHERE q.project_id = s.project_id AND q.kind = 'full' AND s.kind = 'full'
                         AND q.state = 'queued'
                   ) AS retry
            FROM scans s
            WHERE s.id = $1 AND s.lease_token = $2 AND s.state IN ('claimed', 'running', 'reporting')
            FOR UPDATE
        ), moved AS (
            UPDATE scans s
            SET state = CASE WHEN cur.retry THEN 'queued' ELSE 'failed' END::scan_state,
                attempt = CASE WHEN cur.retry THEN s.attempt + 1 ELSE s.attempt END,
                run_after = CASE WHEN cur.retry THEN now() + make_interval(secs => $5)
                                 ELSE s.run_after END,
                finished_at = CASE WHEN cur.retry THEN NULL ELSE now() END,
                lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                error_code = $3, error_message = $4
            FROM cur WHERE s.id = cur.id
            RETURNING s.id, s.org_id, s.attempt, s.state, cur.state AS from_state
        )
        INSERT INTO scan_events (scan_id, org_id, from_state, to_state, attempt, actor, detail)
        SELECT id, org_id, from_state, state, attempt, $6, $3 FROM moved
        RETURNING to_state AS "to_state: Pg<ScanState>", attempt
        "#,
        lease.scan_id.0,
        lease.token,
        code,
        message,
        backoff.as_secs_f64(),
        actor,
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::LeaseLost)?;
    Ok(match row.to_state.0 {
        ScanState::Queued => FailOutcome::Retrying {
            next_attempt: row.attempt,
        },
        _ => FailOutcome::Failed,
    })
}

/// Where a scan stands, for reapers deciding whether an environment still has a use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptState {
    pub scan_id: ScanId,
    pub attempt: i32,
    pub state: ScanState,
}

/// The current attempt and state of each of these scans that exists (unknown ids are left out).
pub async fn attempt_states(
    ex: impl PgExecutor<'_>,
    scans: &[ScanId],
) -> Result<Vec<AttemptState>> {
    let ids: Vec<Uuid> = scans.iter().map(|s| s.0).collect();
    let rows = sqlx::query!(
        r#"
        SELECT id, attempt, state AS "state: Pg<ScanState>"
        FROM scans WHERE id = ANY($1::uuid[])
        "#,
        &ids
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AttemptState {
            scan_id: r.id.into(),
            attempt: r.attempt,
            state: r.state.0,
        })
        .collect())
}
