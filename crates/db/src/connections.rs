//! Connections to source providers, with their credentials sealed at rest.
//!
//! [`create`] draws the connection id first, seals the credentials with
//! [`CredentialCipher::seal`] using that id as associated data (so a ciphertext copied onto another
//! row does not open), and stores only the ciphertext. No function here returns credentials: a
//! [`ConnectionRecord`] says only whether there are any. [`delete`] refuses while projects use the
//! connection.

use crate::crypto::CredentialCipher;
use crate::types::Pg;
use crate::{DbError, Result};
use picket_core::{ConnectionId, OrgId, Provider};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgExecutor;
use time::OffsetDateTime;

/// A connection as the API may show it: no credentials, only whether there are any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub id: ConnectionId,
    pub org_id: OrgId,
    pub provider: Provider,
    pub name: String,
    pub base_url: String,
    pub has_credentials: bool,
    /// Add every repository an installation gains as a project, automatically (webhooks).
    pub follow_installations: bool,
    pub created_at: OffsetDateTime,
    /// When its whole list of repositories was last stored (`picket_db::inventory`); `None`:
    /// never.
    pub repositories_listed_at: Option<OffsetDateTime>,
}

struct ConnectionRow {
    id: uuid::Uuid,
    org_id: uuid::Uuid,
    provider: Pg<Provider>,
    name: String,
    base_url: String,
    has_credentials: bool,
    follow_installations: bool,
    created_at: OffsetDateTime,
    repositories_listed_at: Option<OffsetDateTime>,
}

impl From<ConnectionRow> for ConnectionRecord {
    fn from(r: ConnectionRow) -> Self {
        ConnectionRecord {
            id: r.id.into(),
            org_id: r.org_id.into(),
            provider: r.provider.0,
            name: r.name,
            base_url: r.base_url,
            has_credentials: r.has_credentials,
            follow_installations: r.follow_installations,
            created_at: r.created_at,
            repositories_listed_at: r.repositories_listed_at,
        }
    }
}

/// A connection to add. `credentials` is the plaintext to seal (JSON text); it is only ever held
/// as a [`SecretString`], so `Debug` cannot print it.
#[derive(Debug)]
pub struct NewConnection {
    pub org_id: OrgId,
    pub provider: Provider,
    pub name: String,
    pub base_url: String,
    pub credentials: Option<SecretString>,
    pub follow_installations: bool,
}

/// Seals the credentials under the new row's id and stores the connection. A name already used in
/// the org is a [`DbError::Conflict`] on `vcs_connections_org_id_name_key`.
pub async fn create(
    ex: impl PgExecutor<'_>,
    cipher: &CredentialCipher,
    new: &NewConnection,
) -> Result<ConnectionRecord> {
    create_with_id(ex, cipher, ConnectionId::new(), new).await
}

/// [`create`] with an id drawn beforehand (the App manifest flow names the connection in the
/// App's webhook URL before the connection exists). An id already used is a
/// [`DbError::Conflict`] on `vcs_connections_pkey`.
pub async fn create_with_id(
    ex: impl PgExecutor<'_>,
    cipher: &CredentialCipher,
    id: ConnectionId,
    new: &NewConnection,
) -> Result<ConnectionRecord> {
    let sealed = new
        .credentials
        .as_ref()
        .map(|c| cipher.seal(c.expose_secret().as_bytes(), id.0.as_bytes()));
    let row = sqlx::query_as!(
        ConnectionRow,
        r#"
        INSERT INTO vcs_connections (id, org_id, provider, name, base_url, credentials,
                                     follow_installations)
        VALUES ($1, $2, $3::text::vcs_provider, $4, $5, $6, $7)
        RETURNING id, org_id, provider AS "provider: Pg<Provider>", name, base_url,
                  credentials IS NOT NULL AS "has_credentials!", follow_installations, created_at,
               repositories_listed_at
        "#,
        id.0,
        new.org_id.0,
        new.provider.as_str(),
        new.name,
        new.base_url,
        sealed,
        new.follow_installations
    )
    .fetch_one(ex)
    .await?;
    Ok(row.into())
}

/// The org's connections by name. Orgs have a handful, so there is no pagination.
pub async fn list(ex: impl PgExecutor<'_>, org: OrgId) -> Result<Vec<ConnectionRecord>> {
    let rows = sqlx::query_as!(
        ConnectionRow,
        r#"
        SELECT id, org_id, provider AS "provider: Pg<Provider>", name, base_url,
               credentials IS NOT NULL AS "has_credentials!", follow_installations, created_at,
               repositories_listed_at
        FROM vcs_connections WHERE org_id = $1
        ORDER BY name, id
        "#,
        org.0
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// One connection of the org.
pub async fn get(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    id: ConnectionId,
) -> Result<ConnectionRecord> {
    let row = sqlx::query_as!(
        ConnectionRow,
        r#"
        SELECT id, org_id, provider AS "provider: Pg<Provider>", name, base_url,
               credentials IS NOT NULL AS "has_credentials!", follow_installations, created_at,
               repositories_listed_at
        FROM vcs_connections WHERE id = $1 AND org_id = $2
        "#,
        id.0,
        org.0
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    Ok(row.into())
}

/// Whether the org has a connection named `name`.
pub async fn name_in_use(ex: impl PgExecutor<'_>, org: OrgId, name: &str) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM vcs_connections WHERE org_id = $1 AND name = $2) AS "taken!""#,
        org.0,
        name
    )
    .fetch_one(ex)
    .await?)
}

/// The constraint named by [`delete`] when projects still use the connection.
pub const IN_USE: &str = "projects_connection_id_fkey";

/// Deletes a connection of the org. While projects use it: [`DbError::Conflict`] naming
/// [`IN_USE`] (checked up front; the foreign key is the backstop against a project added
/// concurrently, and is reported the same way).
pub async fn delete(ex: impl PgExecutor<'_>, org: OrgId, id: ConnectionId) -> Result<()> {
    let outcome = sqlx::query!(
        r#"
        WITH target AS (
            SELECT c.id, EXISTS (SELECT 1 FROM projects p WHERE p.connection_id = c.id) AS in_use
            FROM vcs_connections c WHERE c.id = $1 AND c.org_id = $2
        ), deleted AS (
            DELETE FROM vcs_connections c USING target
            WHERE c.id = target.id AND NOT target.in_use
            RETURNING c.id
        )
        SELECT target.in_use AS "in_use!", (SELECT count(*) FROM deleted) AS "deleted!"
        FROM target
        "#,
        id.0,
        org.0
    )
    .fetch_optional(ex)
    .await
    .map_err(|e| match DbError::from(e) {
        DbError::Invalid { constraint } if constraint == IN_USE => DbError::Conflict { constraint },
        other => other,
    })?
    .ok_or(DbError::NotFound)?;
    if outcome.in_use {
        return Err(DbError::Conflict {
            constraint: IN_USE.to_owned(),
        });
    }
    Ok(())
}

/// Changes a connection's settings (`None` leaves one as it is) and returns it.
pub async fn update_settings(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    id: ConnectionId,
    follow_installations: Option<bool>,
) -> Result<ConnectionRecord> {
    let row = sqlx::query_as!(
        ConnectionRow,
        r#"
        UPDATE vcs_connections
        SET follow_installations = COALESCE($3, follow_installations)
        WHERE id = $1 AND org_id = $2
        RETURNING id, org_id, provider AS "provider: Pg<Provider>", name, base_url,
                  credentials IS NOT NULL AS "has_credentials!", follow_installations, created_at,
               repositories_listed_at
        "#,
        id.0,
        org.0,
        follow_installations
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    Ok(row.into())
}

/// What the webhook receiver needs of a connection, looked up by id alone (a delivery carries no
/// token: its signature, checked with these credentials, is what authenticates it).
#[derive(Debug)]
pub struct WebhookTarget {
    pub id: ConnectionId,
    pub org_id: OrgId,
    pub provider: Provider,
    pub base_url: String,
    pub follow_installations: bool,
    /// The credentials (JSON text), opened.
    pub credentials: Option<SecretString>,
}

/// The connection a webhook delivery names, with its credentials opened. [`DbError::NotFound`]
/// for an unknown id; [`DbError::Crypto`] when the credentials do not open under this key.
pub async fn webhook_target(
    ex: impl PgExecutor<'_>,
    cipher: &CredentialCipher,
    id: ConnectionId,
) -> Result<WebhookTarget> {
    let row = sqlx::query!(
        r#"
        SELECT id, org_id, provider AS "provider: Pg<Provider>", base_url, follow_installations,
               credentials
        FROM vcs_connections WHERE id = $1
        "#,
        id.0
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    let credentials = row
        .credentials
        .map(|sealed| open_text(cipher, row.id, &sealed))
        .transpose()?;
    Ok(WebhookTarget {
        id: row.id.into(),
        org_id: row.org_id.into(),
        provider: row.provider.0,
        base_url: row.base_url,
        follow_installations: row.follow_installations,
        credentials,
    })
}

fn open_text(cipher: &CredentialCipher, id: uuid::Uuid, sealed: &[u8]) -> Result<SecretString> {
    let plain = cipher.open(sealed, id.as_bytes())?;
    let text = std::str::from_utf8(plain.expose_secret())
        .map_err(|_| DbError::Corrupt(format!("connection {id} holds non-UTF-8 credentials")))?;
    Ok(SecretString::from(text.to_owned()))
}

/// The connection's provider and credentials (JSON text, opened), locked until the caller's
/// transaction ends, for a change of credentials such as a webhook secret rotation.
/// [`DbError::NotFound`] when the connection is not the org's.
pub async fn credentials_for_update(
    conn: &mut sqlx::PgConnection,
    cipher: &CredentialCipher,
    org: OrgId,
    id: ConnectionId,
) -> Result<(Provider, Option<SecretString>)> {
    let row = sqlx::query!(
        r#"
        SELECT id, provider AS "provider: Pg<Provider>", credentials
        FROM vcs_connections WHERE id = $1 AND org_id = $2
        FOR UPDATE
        "#,
        id.0,
        org.0
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DbError::NotFound)?;
    let credentials = row
        .credentials
        .map(|sealed| open_text(cipher, row.id, &sealed))
        .transpose()?;
    Ok((row.provider.0, credentials))
}

/// Replaces the connection's credentials, sealed under its id as [`create`] does.
pub async fn replace_credentials(
    ex: impl PgExecutor<'_>,
    cipher: &CredentialCipher,
    org: OrgId,
    id: ConnectionId,
    credentials: &SecretString,
) -> Result<()> {
    let sealed = cipher.seal(credentials.expose_secret().as_bytes(), id.0.as_bytes());
    let done = sqlx::query!(
        "UPDATE vcs_connections SET credentials = $3 WHERE id = $1 AND org_id = $2",
        id.0,
        org.0,
        sealed
    )
    .execute(ex)
    .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Where picket-vcs's [`Registry`](picket_vcs::Registry) reads connections' credentials: this
/// database, opened with the cipher. The version it reports is a SHA-256 of the sealed bytes, so
/// a rotation rebuilds the client without the secret ever being compared or kept elsewhere.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    pool: sqlx::PgPool,
    cipher: std::sync::Arc<CredentialCipher>,
}

impl CredentialStore {
    pub fn new(pool: sqlx::PgPool, cipher: std::sync::Arc<CredentialCipher>) -> CredentialStore {
        CredentialStore { pool, cipher }
    }
}

#[async_trait::async_trait]
impl picket_vcs::CredentialStore for CredentialStore {
    async fn load(
        &self,
        connection: ConnectionId,
    ) -> picket_vcs::Result<picket_vcs::StoredConnection> {
        use picket_vcs::{ErrorCode, VcsError};
        use sha2::Digest;
        let row = sqlx::query!(
            r#"
            SELECT id, provider AS "provider: Pg<Provider>", base_url, credentials
            FROM vcs_connections WHERE id = $1
            "#,
            connection.0
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| VcsError::new(ErrorCode::Unavailable, format!("database: {e}")))?
        .ok_or_else(|| VcsError::new(ErrorCode::NotFound, "no such connection"))?;
        let sealed = row.credentials.ok_or_else(|| {
            VcsError::new(ErrorCode::BadConfig, "the connection holds no credentials")
        })?;
        let credentials = open_text(&self.cipher, row.id, &sealed)
            .map_err(|e| VcsError::new(ErrorCode::BadConfig, e.to_string()))?;
        Ok(picket_vcs::StoredConnection {
            provider: row.provider.0,
            base_url: row.base_url,
            credentials,
            version: sha2::Sha256::digest(&sealed).to_vec(),
        })
    }
}
