//! `/api/v1/org`: the caller's own org. There is no route to any other org: the org is always
//! the token's.

use crate::constraints;
use crate::error::{ApiError, Problem};
use crate::extract::{Admin, ApiJson, Caller};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use picket_core::feedback::DraftFeedback;
use picket_db::orgs::{self, OrgRecord, OrgUpdate};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_org, update_org))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Org {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    /// How many of the org's scans may run at once.
    pub max_concurrent_scans: i32,
    /// After this many seconds a PR scan that has not finished lets the PR check pass.
    pub pr_scan_timeout_secs: i32,
    /// Whether `nosemgrep` comments suppress findings (stored `ignored`, reason `nosemgrep`).
    pub inline_suppression: bool,
    /// Whether the matched lines of Code findings (at most 5) are sent by workers and stored,
    /// for the Finding page. Secrets findings never carry theirs.
    pub store_matched_lines: bool,
    /// What draft PRs get: `full` (the same feedback as any PR) or `check_only` (the check, and
    /// no new comment until the PR is marked ready for review).
    #[schema(schema_with = crate::schema::draft_feedback)]
    pub draft_feedback: DraftFeedback,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<OrgRecord> for Org {
    fn from(o: OrgRecord) -> Self {
        Org {
            id: o.id.0,
            slug: o.slug,
            name: o.name,
            max_concurrent_scans: o.max_concurrent_scans,
            pr_scan_timeout_secs: o.pr_scan_timeout_secs,
            inline_suppression: o.inline_suppression,
            store_matched_lines: o.store_matched_lines,
            draft_feedback: o.draft_feedback,
            created_at: o.created_at,
        }
    }
}

/// Settings to change; omitted fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    /// 1-200 characters.
    #[schema(schema_with = constraints::name_opt)]
    pub name: Option<String>,
    /// 1-1000.
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    pub max_concurrent_scans: Option<i32>,
    /// 60-3600 seconds.
    #[schema(minimum = 60, maximum = 3600)]
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    pub pr_scan_timeout_secs: Option<i32>,
    /// `false`: `nosemgrep` comments no longer suppress findings in later scans.
    pub inline_suppression: Option<bool>,
    /// `false`: workers stop sending matched lines and the ones already stored are deleted.
    pub store_matched_lines: Option<bool>,
    /// `full` or `check_only`.
    #[schema(schema_with = crate::schema::draft_feedback_opt)]
    pub draft_feedback: Option<String>,
}

/// The caller's org.
#[utoipa::path(get, path = "/api/v1/org", tag = "org",
    responses((status = 200, body = Org)))]
async fn get_org(caller: Caller, State(state): State<AppState>) -> Result<Json<Org>, ApiError> {
    Ok(Json(
        orgs::get(state.db().pool(), caller.org_id).await?.into(),
    ))
}

/// Change the org's settings (admin).
#[utoipa::path(patch, path = "/api/v1/org", tag = "org",
    request_body = UpdateOrg,
    responses(
        (status = 200, body = Org),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_org(
    Admin(caller): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<UpdateOrg>,
) -> Result<Json<Org>, ApiError> {
    if let Some(name) = &body.name {
        constraints::NAME.check("name", name)?;
    }
    if let Some(n) = body.max_concurrent_scans {
        if !(1..=1000).contains(&n) {
            return Err(ApiError::invalid_body(
                "max_concurrent_scans",
                "must be 1-1000",
            ));
        }
    }
    if let Some(n) = body.pr_scan_timeout_secs {
        if !(60..=3600).contains(&n) {
            return Err(ApiError::invalid_body(
                "pr_scan_timeout_secs",
                "must be 60-3600 seconds",
            ));
        }
    }
    let draft_feedback = body
        .draft_feedback
        .as_deref()
        .map(|v| {
            v.parse::<DraftFeedback>()
                .map_err(|_| ApiError::invalid_body("draft_feedback", "must be full or check_only"))
        })
        .transpose()?;
    let changes = OrgUpdate {
        name: body.name,
        max_concurrent_scans: body.max_concurrent_scans,
        pr_scan_timeout_secs: body.pr_scan_timeout_secs,
        inline_suppression: body.inline_suppression,
        store_matched_lines: body.store_matched_lines,
        draft_feedback,
    };
    let org = orgs::update(state.db().pool(), caller.org_id, &changes).await?;
    tracing::info!("org settings changed");
    Ok(Json(org.into()))
}
