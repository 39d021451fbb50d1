//! `/api/v1/rule-packs`: an org's own Semgrep rules, loaded by every scan of the org next to
//! Picket's pack.
//!
//! `PUT /rule-packs/{name}` creates a pack or replaces it whole, and only after the pack passed
//! Picket's checks and the Semgrep engine loaded it with the worker's own flags
//! (picket-engine's `rulepack::check` and `rulepack::engine_loads`); a refused pack answers 422 `invalid_rule_pack` with
//! the engine's message, and nothing is stored. Rule ids are unique within the org (409
//! `rule_id_taken`) and outside Picket's `picket.` namespace, so policies can name them.

use crate::error::{ApiError, Problem};
use crate::extract::{Admin, ApiJson, ApiPath, Caller, RulePackName};
use crate::routes::not_found_as;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use picket_db::rule_packs::{self, NewRulePack, PutRefused, RulePackRecord};
use picket_engine::rulepack::{self, PackError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rule_packs))
        .routes(routes!(get_rule_pack, put_rule_pack, delete_rule_pack))
}

/// A rule pack, without its rules' text.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulePack {
    pub name: String,
    /// SHA-256 (hex) of the YAML as uploaded.
    pub sha256: String,
    pub size_bytes: i64,
    /// The pack's rule ids, in file order: what policies name.
    pub rules: Vec<String>,
    /// Every language the rules name; a scan loads the pack only when one of them occurs.
    pub languages: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<RulePackRecord> for RulePack {
    fn from(p: RulePackRecord) -> Self {
        RulePack {
            name: p.name,
            sha256: p.sha256,
            size_bytes: p.size_bytes,
            rules: p.rules.into_iter().map(String::from).collect(),
            languages: p.languages,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A rule pack with its YAML.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulePackWithContent {
    #[serde(flatten)]
    pub pack: RulePack,
    /// The YAML as uploaded.
    pub content: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RulePackList {
    pub rule_packs: Vec<RulePack>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRulePack {
    /// Semgrep rules as YAML: `rules: [{id, languages, severity, message, pattern...}]`, at
    /// most 512 KiB and 1,000 rules; ids must not start with `picket.`. The Semgrep engine must
    /// load it (422 `invalid_rule_pack` with its message otherwise), which no schema can state.
    #[schema(min_length = 1, max_length = 524288)]
    pub content: String,
}

/// List the org's rule packs.
#[utoipa::path(get, path = "/api/v1/rule-packs", tag = "rule-packs",
    responses((status = 200, body = RulePackList)))]
async fn list_rule_packs(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<RulePackList>, ApiError> {
    let list = rule_packs::list(state.db().pool(), caller.org_id).await?;
    Ok(Json(RulePackList {
        rule_packs: list.into_iter().map(Into::into).collect(),
    }))
}

/// One rule pack, with its YAML.
#[utoipa::path(get, path = "/api/v1/rule-packs/{name}", tag = "rule-packs",
    params(ApiPath<RulePackName>),
    responses(
        (status = 200, body = RulePackWithContent),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_rule_pack(
    caller: Caller,
    ApiPath(RulePackName(name)): ApiPath<RulePackName>,
    State(state): State<AppState>,
) -> Result<Json<RulePackWithContent>, ApiError> {
    let (pack, content) = rule_packs::get(state.db().pool(), caller.org_id, &name)
        .await
        .map_err(|e| not_found_as(e, "rule pack"))?;
    Ok(Json(RulePackWithContent {
        pack: pack.into(),
        content,
    }))
}

/// Create a rule pack or replace it whole (admin), once the Semgrep engine has loaded it. 201
/// when created, 200 when replaced.
#[utoipa::path(put, path = "/api/v1/rule-packs/{name}", tag = "rule-packs",
    params(ApiPath<RulePackName>),
    request_body = PutRulePack,
    responses(
        (status = 201, body = RulePack),
        (status = 200, body = RulePack),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A rule id belongs to another pack (`rule_id_taken`), or the org's packs are full (`rule_packs_full`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The pack is refused (`invalid_rule_pack`), with the engine's message", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No engine to check packs with (`rule_validation_unavailable`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_rule_pack(
    Admin(caller): Admin,
    ApiPath(RulePackName(name)): ApiPath<RulePackName>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PutRulePack>,
) -> Result<(StatusCode, Json<RulePack>), ApiError> {
    // Picket's own checks first: they are cheap and need no engine.
    let rules = rulepack::check(&body.content).map_err(refused)?;
    let engine = state.rule_engine().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "rule_validation_unavailable",
            "this API server has no Semgrep engine configured to check rule packs with",
        )
    })?;
    {
        let _permit = engine
            .permits
            .acquire()
            .await
            .map_err(|e| ApiError::internal(&e))?;
        rulepack::engine_loads(&engine.config, &body.content)
            .await
            .map_err(refused)?;
    }
    let sha256 = hex::encode(Sha256::digest(body.content.as_bytes()));
    let languages: Vec<String> = rules.languages.into_iter().collect();
    let mut tx = state.db().pool().begin().await?;
    let stored = rule_packs::put(
        &mut tx,
        caller.org_id,
        &NewRulePack {
            name: &name,
            content: &body.content,
            sha256: &sha256,
            rules: &rules.rules,
            languages: &languages,
        },
    )
    .await;
    let (pack, created) = match stored {
        Ok(Ok(done)) => done,
        Ok(Err(refusal)) => return Err(full_or_taken(refusal)),
        // Two uploads racing for one rule id: the key decides, the loser hears why.
        Err(picket_db::DbError::Conflict { constraint })
            if constraint == "rule_pack_rules_pkey" =>
        {
            return Err(ApiError::conflict(
                "rule_id_taken",
                "a rule id of this pack was just taken by another pack of the org",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    tracing::info!(rule_pack = %name, rules = pack.rules.len(), created, sha256 = %pack.sha256, "rule pack stored");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(pack.into())))
}

/// Delete a rule pack (admin). The next full scan of each project marks its rules' open
/// findings `removed`.
#[utoipa::path(delete, path = "/api/v1/rule-packs/{name}", tag = "rule-packs",
    params(ApiPath<RulePackName>),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_rule_pack(
    Admin(caller): Admin,
    ApiPath(RulePackName(name)): ApiPath<RulePackName>,
    State(state): State<AppState>,
) -> Result<StatusCode, ApiError> {
    rule_packs::delete(state.db().pool(), caller.org_id, &name)
        .await
        .map_err(|e| not_found_as(e, "rule pack"))?;
    tracing::info!(rule_pack = %name, "rule pack deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A pack the checks or the engine refused: 422 with the reason, or 503 without an engine.
fn refused(e: PackError) -> ApiError {
    match e {
        PackError::Unavailable(_) => {
            tracing::error!(error = %e, "rule pack check could not run");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                e.code(),
                "the Semgrep engine could not be run to check the pack; try again later",
            )
        }
        e => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
            .with_field("content", e.to_string()),
    }
}

fn full_or_taken(refusal: PutRefused) -> ApiError {
    match refusal {
        PutRefused::RuleTaken { rule_id, pack } => ApiError::conflict(
            "rule_id_taken",
            format!("rule id {rule_id:?} belongs to the org's rule pack {pack:?}"),
        ),
        PutRefused::TooManyPacks => ApiError::conflict(
            "rule_packs_full",
            format!(
                "an org keeps at most {} rule packs",
                rule_packs::MAX_PACKS_PER_ORG
            ),
        ),
        PutRefused::TooLarge { total_bytes } => ApiError::conflict(
            "rule_packs_full",
            format!(
                "the org's rule packs would total {total_bytes} bytes; the limit is {}",
                rule_packs::MAX_ORG_BYTES
            ),
        ),
    }
}
