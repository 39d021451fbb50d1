//! `/api/v1/policies`: named sets of rule → mode, and the effective modes of the org.
//!
//! `PUT /policies/{name}` creates a policy or replaces its whole rule map in one transaction.
//! `GET /org/effective-policy` merges every policy of the org with picket-core's
//! `effective_modes` (block > comment > monitor). It is not under `/policies/`, where it would
//! overlap `/policies/{name}`; `effective` stays reserved as a policy name (the table's CHECK).

use crate::error::{ApiError, Problem};
use crate::extract::{Admin, ApiJson, ApiPath, Caller, PolicyName};
use crate::routes::not_found_as;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use picket_core::policy::effective_modes;
use picket_core::{RuleId, RuleMode};
use picket_db::policies::{self, PolicyRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most rules one policy may hold.
pub const MAX_RULES: usize = 10_000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_policies))
        .routes(routes!(effective_policy))
        .routes(routes!(get_policy, put_policy, patch_policy, delete_policy))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Policy {
    pub name: String,
    #[schema(schema_with = crate::schema::rule_modes)]
    pub rules: BTreeMap<RuleId, RuleMode>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<PolicyRecord> for Policy {
    fn from(p: PolicyRecord) -> Self {
        Policy {
            name: p.name,
            rules: p.rules,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyList {
    pub policies: Vec<Policy>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicy {
    /// The complete rule map (at most 10,000 rules); rules not named here are removed from the
    /// policy.
    #[schema(schema_with = crate::schema::rule_modes_input)]
    pub rules: BTreeMap<RuleId, RuleMode>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EffectivePolicy {
    /// Each rule named by any policy, with the strongest mode any policy gives it.
    #[schema(schema_with = crate::schema::rule_modes)]
    pub rules: BTreeMap<RuleId, RuleMode>,
    /// The policies merged, by name.
    pub policies: Vec<String>,
}

/// List the org's policies with their rules.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies",
    responses((status = 200, body = PolicyList)))]
async fn list_policies(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<PolicyList>, ApiError> {
    let list = policies::list(state.db().pool(), caller.org_id).await?;
    Ok(Json(PolicyList {
        policies: list.into_iter().map(Into::into).collect(),
    }))
}

/// The org's effective rule modes: every policy merged, strongest mode winning.
#[utoipa::path(get, path = "/api/v1/org/effective-policy", tag = "policies",
    responses((status = 200, body = EffectivePolicy)))]
async fn effective_policy(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<EffectivePolicy>, ApiError> {
    let list = policies::list(state.db().pool(), caller.org_id).await?;
    Ok(Json(EffectivePolicy {
        rules: effective_modes(list.iter().map(|p| &p.rules)),
        policies: list.into_iter().map(|p| p.name).collect(),
    }))
}

/// One policy.
#[utoipa::path(get, path = "/api/v1/policies/{name}", tag = "policies",
    params(ApiPath<PolicyName>),
    responses(
        (status = 200, body = Policy),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_policy(
    caller: Caller,
    ApiPath(PolicyName(name)): ApiPath<PolicyName>,
    State(state): State<AppState>,
) -> Result<Json<Policy>, ApiError> {
    let p = policies::get(state.db().pool(), caller.org_id, &name)
        .await
        .map_err(|e| not_found_as(e, "policy"))?;
    Ok(Json(p.into()))
}

/// Create a policy or replace its whole rule map (admin). 201 when created, 200 when replaced.
#[utoipa::path(put, path = "/api/v1/policies/{name}", tag = "policies",
    params(ApiPath<PolicyName>),
    request_body = PutPolicy,
    responses(
        (status = 201, body = Policy),
        (status = 200, body = Policy),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_policy(
    Admin(caller): Admin,
    ApiPath(PolicyName(name)): ApiPath<PolicyName>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PutPolicy>,
) -> Result<(StatusCode, Json<Policy>), ApiError> {
    if body.rules.len() > MAX_RULES {
        return Err(ApiError::invalid_body(
            "rules",
            format!("at most {MAX_RULES} rules per policy"),
        ));
    }
    let mut tx = state.db().pool().begin().await?;
    let (policy, created) = policies::put(&mut tx, caller.org_id, &name, &body.rules).await?;
    tx.commit().await?;
    tracing::info!(policy = %name, rules = policy.rules.len(), created, "policy stored");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(policy.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPolicy {
    /// Rules to change (at most 10,000): a mode sets the rule's mode in this policy, `null`
    /// takes the rule out of it; rules not named keep theirs.
    #[schema(schema_with = crate::schema::rule_mode_changes)]
    pub rules: BTreeMap<RuleId, Option<RuleMode>>,
}

/// Change some rules of an existing policy (admin), in one transaction, so concurrent changes to
/// different rules do not undo each other. A policy that does not exist is 404 and is not
/// created (`PUT` creates one): a mistyped name must not add a policy whose modes would apply.
#[utoipa::path(patch, path = "/api/v1/policies/{name}", tag = "policies",
    params(ApiPath<PolicyName>),
    request_body = PatchPolicy,
    responses(
        (status = 200, body = Policy),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: the org has no policy of that name", body = Problem, content_type = "application/problem+json"),
    ))]
async fn patch_policy(
    Admin(caller): Admin,
    ApiPath(PolicyName(name)): ApiPath<PolicyName>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PatchPolicy>,
) -> Result<Json<Policy>, ApiError> {
    if body.rules.len() > MAX_RULES {
        return Err(ApiError::invalid_body(
            "rules",
            format!("at most {MAX_RULES} rules per request"),
        ));
    }
    let mut tx = state.db().pool().begin().await?;
    let policy = policies::patch(&mut tx, caller.org_id, &name, &body.rules)
        .await
        .map_err(|e| not_found_as(e, "policy"))?;
    if policy.rules.len() > MAX_RULES {
        return Err(ApiError::invalid_body(
            "rules",
            format!("the policy would hold more than {MAX_RULES} rules"),
        ));
    }
    tx.commit().await?;
    tracing::info!(policy = %name, changed = body.rules.len(), "policy changed");
    Ok(Json(policy.into()))
}

/// Delete a policy (admin).
#[utoipa::path(delete, path = "/api/v1/policies/{name}", tag = "policies",
    params(ApiPath<PolicyName>),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_policy(
    Admin(caller): Admin,
    ApiPath(PolicyName(name)): ApiPath<PolicyName>,
    State(state): State<AppState>,
) -> Result<StatusCode, ApiError> {
    policies::delete(state.db().pool(), caller.org_id, &name)
        .await
        .map_err(|e| not_found_as(e, "policy"))?;
    tracing::info!(policy = %name, "policy deleted");
    Ok(StatusCode::NO_CONTENT)
}
