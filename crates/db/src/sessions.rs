//! The web UI's sessions and one-time sign-in links (migration `web_sessions`).
//!
//! A session acts as one API token: [`authenticate`] returns it only while the session is
//! unexpired and its token is live (not revoked, not expired), so revoking a token ends every
//! session opened with it at the next request. Session ids (`pkw_` + 43 base62 characters) and
//! sign-in codes (`pkl_` + 43) carry 256 random bits; only their SHA-256 is stored.

use crate::tokens::{self, random_secret, TOKEN_RANDOM_LEN};
use crate::types::Pg;
use crate::Result;
use picket_core::{OrgId, Role, TokenId};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgExecutor;
use std::time::Duration;
use time::OffsetDateTime;

/// What every session id starts with.
pub const SESSION_PREFIX: &str = "pkw_";
/// What every sign-in code starts with.
pub const SIGN_IN_PREFIX: &str = "pkl_";

/// A live session: who it acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub org_id: OrgId,
    pub token_id: TokenId,
    /// The token's role.
    pub role: Role,
    /// The token's name, shown in the page header.
    pub token_name: String,
    pub expires_at: OffsetDateTime,
}

/// SHA-256 of a session id or sign-in code: what is stored and looked up.
pub fn hash(secret: &str) -> [u8; 32] {
    tokens::hash(secret)
}

/// Whether `s` has the shape of a value minted with `prefix`, so that garbage is refused without
/// a query.
pub fn looks_like(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == TOKEN_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// Opens a session acting as `token` for `lifetime` and returns its id, which exists nowhere else
/// afterwards (it goes into the cookie). Deletes expired sessions on the way.
pub async fn create(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    token: TokenId,
    lifetime: Duration,
) -> Result<SecretString> {
    let id = random_secret(SESSION_PREFIX);
    sqlx::query!(
        r#"
        WITH swept AS (DELETE FROM web_sessions WHERE expires_at < now())
        INSERT INTO web_sessions (id_sha256, org_id, token_id, expires_at)
        VALUES ($1, $2, $3, now() + make_interval(secs => $4))
        "#,
        &hash(id.expose_secret())[..],
        org.0,
        token.0,
        lifetime.as_secs_f64()
    )
    .execute(ex)
    .await?;
    Ok(id)
}

/// The live session with this id's hash: unexpired, and its token live. Refreshes
/// `last_seen_at` at most once a minute.
pub async fn authenticate(
    ex: impl PgExecutor<'_>,
    id_sha256: &[u8; 32],
) -> Result<Option<SessionRecord>> {
    let row = sqlx::query!(
        r#"
        WITH live AS (
            SELECT s.id_sha256, s.org_id, s.token_id, s.expires_at, s.last_seen_at,
                   t.role, t.name
            FROM web_sessions s
            JOIN api_tokens t ON t.id = s.token_id
            WHERE s.id_sha256 = $1 AND s.expires_at > now()
              AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
        ), touched AS (
            UPDATE web_sessions w SET last_seen_at = now()
            FROM live
            WHERE w.id_sha256 = live.id_sha256 AND live.last_seen_at < now() - interval '1 minute'
        )
        SELECT org_id, token_id, expires_at, role AS "role: Pg<Role>", name FROM live
        "#,
        &id_sha256[..]
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| SessionRecord {
        org_id: r.org_id.into(),
        token_id: r.token_id.into(),
        role: r.role.0,
        token_name: r.name,
        expires_at: r.expires_at,
    }))
}

/// Ends the session with this id's hash (sign-out). Ending one that does not exist is not an error.
pub async fn delete(ex: impl PgExecutor<'_>, id_sha256: &[u8; 32]) -> Result<()> {
    sqlx::query!(
        "DELETE FROM web_sessions WHERE id_sha256 = $1",
        &id_sha256[..]
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Mints a one-time sign-in code for `token`, valid for `ttl`, and returns it (shown once).
/// Deletes expired codes on the way.
pub async fn create_sign_in_link(
    ex: impl PgExecutor<'_>,
    token: TokenId,
    ttl: Duration,
) -> Result<SecretString> {
    let code = random_secret(SIGN_IN_PREFIX);
    sqlx::query!(
        r#"
        WITH swept AS (DELETE FROM web_sign_in_links WHERE expires_at < now())
        INSERT INTO web_sign_in_links (code_sha256, token_id, expires_at)
        VALUES ($1, $2, now() + make_interval(secs => $3))
        "#,
        &hash(code.expose_secret())[..],
        token.0,
        ttl.as_secs_f64()
    )
    .execute(ex)
    .await?;
    Ok(code)
}

/// Uses up the sign-in code with this hash: returns the (org, token) it opens a session for when
/// the code is unused, unexpired and its token live, and marks it used; `None` otherwise (and
/// a second use always gets `None`).
pub async fn use_sign_in_link(
    ex: impl PgExecutor<'_>,
    code_sha256: &[u8; 32],
) -> Result<Option<(OrgId, TokenId)>> {
    let row = sqlx::query!(
        r#"
        UPDATE web_sign_in_links l SET used_at = now()
        FROM api_tokens t
        WHERE l.code_sha256 = $1 AND l.used_at IS NULL AND l.expires_at > now()
          AND t.id = l.token_id
          AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
        RETURNING t.org_id, t.id
        "#,
        &code_sha256[..]
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| (r.org_id.into(), r.id.into())))
}
