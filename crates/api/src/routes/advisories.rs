//! `/api/v1/advisories`: Supply Chain's advisory data, shared by every org of the installation
//! (read-only here; `picket advisories import` and the scheduler's sync loop write it).
//!
//! `GET /advisories` is the import state: records per ecosystem and each source's last import;
//! `GET /advisories/{id}` one OSV record as imported, found by its id or, failing that, by an
//! alias exactly one record lists.

use crate::error::{ApiError, Problem};
use crate::extract::{AdvisoryId, ApiPath, Caller};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use picket_db::advisories;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(advisory_state))
        .routes(routes!(get_advisory))
}

/// Records of one ecosystem.
#[derive(Debug, Serialize, ToSchema)]
pub struct EcosystemAdvisories {
    /// The OSV ecosystem name (`npm`, `PyPI`, `crates.io`, `Go`, `RubyGems`, `Maven`,
    /// `Packagist`).
    pub ecosystem: String,
    /// Records affecting a package of it (a record of several ecosystems counts in each).
    pub advisories: i64,
    /// Of those, withdrawn ones (kept, never matched).
    pub withdrawn: i64,
}

/// One source's import state.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdvisorySource {
    /// A folder, a zip file or an export's URL.
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub last_attempt_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    /// Why the last attempt failed, when it did.
    pub last_error: Option<String>,
    /// The last successful import: records read, new, changed, unchanged.
    pub records: i32,
    pub inserted: i32,
    pub updated: i32,
    pub unchanged: i32,
}

/// The import state.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdvisoryState {
    pub ecosystems: Vec<EcosystemAdvisories>,
    pub sources: Vec<AdvisorySource>,
    /// The newest successful import of any source; `null` before the first.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_sync_at: Option<OffsetDateTime>,
}

/// One OSV record.
#[derive(Debug, Serialize, ToSchema)]
pub struct Advisory {
    pub id: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub modified: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub published: Option<OffsetDateTime>,
    /// Set when the record was withdrawn: it then matches nothing.
    #[serde(with = "time::serde::rfc3339::option")]
    pub withdrawn: Option<OffsetDateTime>,
    pub aliases: Vec<String>,
    /// The affected packages Picket matches: ecosystem and normalised name.
    pub packages: Vec<AdvisoryPackage>,
    /// Where it was last imported from.
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub imported_at: OffsetDateTime,
    /// When its content last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
    /// The record as imported (OSV schema, <https://ossf.github.io/osv-schema/>).
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdvisoryPackage {
    pub ecosystem: String,
    pub name: String,
}

/// Supply Chain's advisory data: records per ecosystem and each source's last import.
#[utoipa::path(get, path = "/api/v1/advisories", tag = "advisories",
    responses((status = 200, body = AdvisoryState)))]
async fn advisory_state(
    _caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<AdvisoryState>, ApiError> {
    let pool = state.db().pool();
    let ecosystems = advisories::counts(pool).await?;
    let sources = advisories::sources(pool).await?;
    Ok(Json(AdvisoryState {
        last_sync_at: sources.iter().filter_map(|s| s.last_success_at).max(),
        ecosystems: ecosystems
            .into_iter()
            .map(|e| EcosystemAdvisories {
                ecosystem: e.ecosystem,
                advisories: e.advisories,
                withdrawn: e.withdrawn,
            })
            .collect(),
        sources: sources
            .into_iter()
            .map(|s| AdvisorySource {
                source: s.source,
                last_attempt_at: s.last_attempt_at,
                last_success_at: s.last_success_at,
                last_error: s.last_error,
                records: s.records,
                inserted: s.inserted,
                updated: s.updated,
                unchanged: s.unchanged,
            })
            .collect(),
    }))
}

/// One OSV record, by its id or by an alias exactly one record lists.
#[utoipa::path(get, path = "/api/v1/advisories/{id}", tag = "advisories",
    params(ApiPath<AdvisoryId>),
    responses(
        (status = 200, body = Advisory),
        (status = 404, description = "`advisory_not_found`: no record has this id, and no single record this alias", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_advisory(
    _caller: Caller,
    ApiPath(AdvisoryId(id)): ApiPath<AdvisoryId>,
    State(state): State<AppState>,
) -> Result<Json<Advisory>, ApiError> {
    let a = advisories::get(state.db().pool(), &id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "advisory_not_found",
                format!("no advisory {id:?}"),
            )
        })?;
    Ok(Json(Advisory {
        id: a.id,
        modified: a.modified,
        published: a.published,
        withdrawn: a.withdrawn,
        aliases: a.aliases,
        packages: a
            .packages
            .into_iter()
            .map(|(ecosystem, name)| AdvisoryPackage { ecosystem, name })
            .collect(),
        source: a.source,
        imported_at: a.imported_at,
        changed_at: a.changed_at,
        record: a.record,
    }))
}
