//! This installation's identity (one row, drawn by the migration that created it).

use crate::{DbError, Result};
use picket_core::InstallationId;
use sqlx::PgExecutor;

/// The installation this database belongs to.
pub async fn id(ex: impl PgExecutor<'_>) -> Result<InstallationId> {
    let id = sqlx::query_scalar!("SELECT id FROM installation WHERE only_row")
        .fetch_one(ex)
        .await?;
    id.parse()
        .map_err(|e: picket_core::ParseError| DbError::Corrupt(e.to_string()))
}
