//! API tokens: bearer credentials scoped to one org with one role.
//!
//! [`create`] draws a token `pkt_` + 43 base62 characters (256 bits from the OS RNG; the fixed
//! prefix lets secret scanners spot a leaked token), stores only its SHA-256 and a short display
//! prefix, and hands the token back once as a [`SecretString`]. On each request the API hashes the
//! presented token with [`hash`] and calls [`authenticate`], which accepts only live tokens
//! (not revoked, not expired) and refreshes `last_used_at` at most once a minute, so steady
//! traffic does not turn every read into a write.

use crate::types::Pg;
use crate::{DbError, Result};
use picket_core::{OrgId, Role, TokenId};
use rand::Rng;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;
use time::OffsetDateTime;

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "pkt_";
/// Random characters after the prefix: 43 base62 characters carry 256 bits.
pub const TOKEN_RANDOM_LEN: usize = 43;
/// How many characters of the token are kept (and shown) to tell tokens apart: `pkt_` + 8.
const DISPLAY_PREFIX_LEN: usize = TOKEN_PREFIX.len() + 8;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: TokenId,
    pub org_id: OrgId,
    pub name: String,
    pub role: Role,
    /// `pkt_` and the next 8 characters: enough to recognise a token, useless to an attacker.
    pub prefix: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

struct TokenRow {
    id: uuid::Uuid,
    org_id: uuid::Uuid,
    name: String,
    role: Pg<Role>,
    prefix: String,
    created_at: OffsetDateTime,
    last_used_at: Option<OffsetDateTime>,
    expires_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

impl From<TokenRow> for TokenRecord {
    fn from(r: TokenRow) -> Self {
        TokenRecord {
            id: r.id.into(),
            org_id: r.org_id.into(),
            name: r.name,
            role: r.role.0,
            prefix: r.prefix,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// SHA-256 of a presented token: what is stored and looked up. A plain hash (no salt, no slow
/// KDF) is right here because the token carries 256 random bits: there is nothing to brute-force.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a string has the shape of a Picket token, so that garbage is refused without a query.
pub fn looks_like_token(s: &str) -> bool {
    s.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == TOKEN_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn generate() -> SecretString {
    random_secret(TOKEN_PREFIX)
}

/// `prefix` + [`TOKEN_RANDOM_LEN`] base62 characters from the OS RNG (256 bits): the shape of
/// every secret Picket mints (API tokens, web sessions, sign-in links).
pub(crate) fn random_secret(prefix: &str) -> SecretString {
    let mut rng = rand::rngs::OsRng;
    let mut token = String::with_capacity(prefix.len() + TOKEN_RANDOM_LEN);
    token.push_str(prefix);
    for _ in 0..TOKEN_RANDOM_LEN {
        // gen_range is unbiased (rejection sampling), so each character is uniform over 62.
        token.push(char::from(BASE62[rng.gen_range(0..BASE62.len())]));
    }
    SecretString::from(token)
}

/// Creates a token for `org` and returns its record and the token itself, which exists nowhere
/// else afterwards: show it once. `expires_at` in the past is refused with [`DbError::Invalid`].
pub async fn create(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    name: &str,
    role: Role,
    expires_at: Option<OffsetDateTime>,
) -> Result<(TokenRecord, SecretString)> {
    use secrecy::ExposeSecret;
    if expires_at.is_some_and(|at| at <= OffsetDateTime::now_utc()) {
        return Err(DbError::Invalid {
            constraint: "api_tokens_expires_at_future".to_owned(),
        });
    }
    let token = generate();
    let secret = token.expose_secret();
    let row = sqlx::query_as!(
        TokenRow,
        r#"
        INSERT INTO api_tokens (id, org_id, name, role, prefix, hash, expires_at)
        VALUES ($1, $2, $3, $4::text::token_role, $5, $6, $7)
        RETURNING id, org_id, name, role AS "role: Pg<Role>", prefix, created_at, last_used_at,
                  expires_at, revoked_at
        "#,
        TokenId::new().0,
        org.0,
        name,
        role.as_str(),
        &secret[..DISPLAY_PREFIX_LEN],
        &hash(secret)[..],
        expires_at
    )
    .fetch_one(ex)
    .await?;
    Ok((row.into(), token))
}

/// The live token with this hash, or `None` when there is none, or it is revoked or expired.
/// Marks it used, writing only when the last mark is more than a minute old.
pub async fn authenticate(
    ex: impl PgExecutor<'_>,
    token_hash: &[u8; 32],
) -> Result<Option<TokenRecord>> {
    let row = sqlx::query_as!(
        TokenRow,
        r#"
        WITH live AS (
            SELECT id, org_id, name, role, prefix, created_at, last_used_at, expires_at, revoked_at
            FROM api_tokens
            WHERE hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
        ), touched AS (
            UPDATE api_tokens t SET last_used_at = now()
            FROM live
            WHERE t.id = live.id
              AND (live.last_used_at IS NULL OR live.last_used_at < now() - interval '1 minute')
            RETURNING t.last_used_at
        )
        SELECT live.id AS "id!", live.org_id AS "org_id!", live.name AS "name!",
               live.role AS "role!: Pg<Role>", live.prefix AS "prefix!",
               live.created_at AS "created_at!",
               COALESCE((SELECT last_used_at FROM touched), live.last_used_at) AS last_used_at,
               live.expires_at, live.revoked_at
        FROM live
        "#,
        &token_hash[..]
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

/// The org's tokens, newest first, revoked ones included (they show when and that they were
/// revoked). Orgs hold few tokens, so there is no pagination.
pub async fn list(ex: impl PgExecutor<'_>, org: OrgId) -> Result<Vec<TokenRecord>> {
    let rows = sqlx::query_as!(
        TokenRow,
        r#"
        SELECT id, org_id, name, role AS "role: Pg<Role>", prefix, created_at, last_used_at,
               expires_at, revoked_at
        FROM api_tokens WHERE org_id = $1
        ORDER BY created_at DESC, id DESC
        "#,
        org.0
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Revokes a token of the org. Revoking a revoked token keeps its first revocation time.
pub async fn revoke(ex: impl PgExecutor<'_>, org: OrgId, id: TokenId) -> Result<TokenRecord> {
    let row = sqlx::query_as!(
        TokenRow,
        r#"
        UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now())
        WHERE id = $1 AND org_id = $2
        RETURNING id, org_id, name, role AS "role: Pg<Role>", prefix, created_at, last_used_at,
                  expires_at, revoked_at
        "#,
        id.0,
        org.0
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    Ok(row.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn tokens_have_the_documented_shape() {
        let a = generate();
        let b = generate();
        assert!(looks_like_token(a.expose_secret()));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), 4 + 43);
        assert!(!looks_like_token("pkt_short"));
        assert!(!looks_like_token(&format!("xyz_{}", "a".repeat(43))));
        assert!(!looks_like_token(&format!("pkt_{}!", "a".repeat(42))));
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("owner".parse::<Role>().is_err());
    }
}
