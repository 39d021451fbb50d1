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
    pub created_at: OffsetDateTime,
}

struct ConnectionRow {
    id: uuid::Uuid,
    org_id: uuid::Uuid,
    provider: Pg<Provider>,
    name: String,
    base_url: String,
    has_credentials: bool,
    created_at: OffsetDateTime,
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
            created_at: r.created_at,
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
}

/// Seals the credentials under the new row's id and stores the connection. A name already used in
/// the org is a [`DbError::Conflict`] on `vcs_connections_org_id_name_key`.
pub async fn create(
    ex: impl PgExecutor<'_>,
    cipher: &CredentialCipher,
    new: &NewConnection,
) -> Result<ConnectionRecord> {
    let id = ConnectionId::new();
    let sealed = new
        .credentials
        .as_ref()
        .map(|c| cipher.seal(c.expose_secret().as_bytes(), id.0.as_bytes()));
    let row = sqlx::query_as!(
        ConnectionRow,
        r#"
        INSERT INTO vcs_connections (id, org_id, provider, name, base_url, credentials)
        VALUES ($1, $2, $3::text::vcs_provider, $4, $5, $6)
        RETURNING id, org_id, provider AS "provider: Pg<Provider>", name, base_url,
                  credentials IS NOT NULL AS "has_credentials!", created_at
        "#,
        id.0,
        new.org_id.0,
        new.provider.as_str(),
        new.name,
        new.base_url,
        sealed
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
               credentials IS NOT NULL AS "has_credentials!", created_at
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
               credentials IS NOT NULL AS "has_credentials!", created_at
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
