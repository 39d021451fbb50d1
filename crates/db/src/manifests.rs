//! The states of GitHub's App manifest flow: one per manifest an admin asked for.
//!
//! [`create`] draws the state (256 bits from the OS RNG, as 64 hex digits), stores only its
//! SHA-256 with the org, the connection id to be, the App's name and where it is registered, and
//! hands the state back once. GitHub echoes it to the callback, which calls [`lock`] in a
//! transaction: the row is locked (`FOR UPDATE`) so two callbacks with one state queue up, and
//! the second finds it [`StateLookup::Used`]. [`consume`] marks it used in the same transaction
//! as the new connection. A state is usable for [`STATE_TTL`]; expired ones are deleted a day
//! later (by [`create`]), until when they answer [`StateLookup::Expired`] rather than
//! [`StateLookup::Unknown`].

use crate::Result;
use picket_core::{ConnectionId, OrgId, TokenId};
use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

/// How long a manifest's state is usable: GitHub's manifest flow must be completed within one
/// hour (GitHub Docs, "Registering a GitHub App from a manifest").
pub const STATE_TTL: time::Duration = time::Duration::hours(1);

/// SHA-256 of a presented state: what is stored and looked up (the state carries 256 random
/// bits, so a plain hash is enough).
pub fn hash(state: &str) -> [u8; 32] {
    Sha256::digest(state.as_bytes()).into()
}

/// Whether a string has the shape of a state [`create`] draws (64 lower-case hex digits).
pub fn looks_like_state(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A manifest an admin asked for.
#[derive(Debug, Clone)]
pub struct NewManifestState<'a> {
    pub org_id: OrgId,
    /// The id the connection will get (the manifest's webhook URL names it).
    pub connection_id: ConnectionId,
    /// The App's name, 1-34 characters.
    pub name: &'a str,
    /// The GitHub organization's login; `None`: the admin's personal account.
    pub organization: Option<&'a str>,
    /// The GitHub API root; empty for github.com.
    pub base_url: &'a str,
    pub requested_by: Option<TokenId>,
}

/// Stores a new state and returns it (shown once) with its expiry (from the database clock).
/// Deletes states that expired more than a day ago on the way.
pub async fn create(
    conn: &mut PgConnection,
    new: &NewManifestState<'_>,
) -> Result<(SecretString, OffsetDateTime)> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let state = hex::encode(bytes);
    sqlx::query!("DELETE FROM github_manifest_states WHERE expires_at < now() - interval '1 day'")
        .execute(&mut *conn)
        .await?;
    let expires_at = sqlx::query_scalar!(
        r#"
        INSERT INTO github_manifest_states (state_sha256, org_id, connection_id, name,
                                            organization, base_url, requested_by, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
        RETURNING expires_at
        "#,
        &hash(&state)[..],
        new.org_id.0,
        new.connection_id.0,
        new.name,
        new.organization,
        new.base_url,
        new.requested_by.map(|t| t.0),
        STATE_TTL.as_seconds_f64(),
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((SecretString::from(state), expires_at))
}

/// A usable state, as [`create`] stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestState {
    pub org_id: OrgId,
    pub connection_id: ConnectionId,
    pub name: String,
    pub organization: Option<String>,
    pub base_url: String,
    pub requested_by: Option<TokenId>,
    pub expires_at: OffsetDateTime,
}

/// What a presented state is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLookup {
    /// No such state (never made, or deleted a day after it expired).
    Unknown,
    /// A callback already used it.
    Used,
    /// Past its expiry.
    Expired,
    /// Usable; its row is locked until the caller's transaction ends.
    Usable(ManifestState),
}

/// Looks a state up by its hash and locks its row for the caller's transaction.
pub async fn lock(conn: &mut PgConnection, state_sha256: &[u8; 32]) -> Result<StateLookup> {
    let Some(row) = sqlx::query!(
        r#"
        SELECT org_id, connection_id, name, organization, base_url, requested_by, expires_at,
               consumed_at IS NOT NULL AS "used!", expires_at <= now() AS "expired!"
        FROM github_manifest_states WHERE state_sha256 = $1
        FOR UPDATE
        "#,
        &state_sha256[..]
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(StateLookup::Unknown);
    };
    Ok(if row.used {
        StateLookup::Used
    } else if row.expired {
        StateLookup::Expired
    } else {
        StateLookup::Usable(ManifestState {
            org_id: row.org_id.into(),
            connection_id: row.connection_id.into(),
            name: row.name,
            organization: row.organization,
            base_url: row.base_url,
            requested_by: row.requested_by.map(Into::into),
            expires_at: row.expires_at,
        })
    })
}

/// Marks a state used.
pub async fn consume(ex: impl PgExecutor<'_>, state_sha256: &[u8; 32]) -> Result<()> {
    sqlx::query!(
        "UPDATE github_manifest_states SET consumed_at = now() WHERE state_sha256 = $1",
        &state_sha256[..]
    )
    .execute(ex)
    .await?;
    Ok(())
}
