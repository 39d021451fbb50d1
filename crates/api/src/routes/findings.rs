//! `/api/v1/projects/{id}/findings`: a project's findings, most severe first, filtered and paged;
//! `/api/v1/findings/{id}/triage`: ignore a finding with a reason, or lift the ignore.
//!
//! Findings are written by scans (the worker's results upload, picket-db `findings::ingest`).
//! People only triage them, and triage sticks to the fingerprint: it applies to the finding on
//! every branch of its project, and to the same fingerprint found later. A secrets finding shows
//! its redacted form only: neither the value (never stored) nor its hash is ever returned.

use crate::constraints;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::pagination::{self, FindingPosition, Position};
use crate::routes::not_found_as;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use picket_core::triage::IgnoreReason;
use picket_core::{FindingId, FindingStatus, Product, ProjectId, Severity};
use picket_db::findings::{self, FindingCursor, FindingFilter, FindingRecord, Triage};
use picket_db::overview::{self, FindingMatch};
use picket_db::projects;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_findings))
        .routes(routes!(get_finding))
        .routes(routes!(triage_finding))
        .routes(routes!(bulk_triage))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Finding {
    pub id: Uuid,
    /// The branch it was seen on.
    pub git_ref: String,
    #[schema(schema_with = crate::schema::product)]
    pub product: Product,
    pub rule_id: String,
    pub path: String,
    pub start_line: i32,
    pub end_line: i32,
    #[schema(schema_with = crate::schema::severity)]
    pub severity: Severity,
    pub message: String,
    /// Stable identity across scans (64 hex characters).
    pub fingerprint: String,
    #[schema(schema_with = crate::schema::finding_status)]
    pub status: FindingStatus,
    /// Why it is ignored, from the list; null when open or ignored with words only.
    #[schema(schema_with = crate::schema::ignore_reason_opt)]
    pub ignore_reason: Option<IgnoreReason>,
    /// Why it is ignored, in words (status `ignored`; `nosemgrep` for an inline suppression).
    pub triage_reason: Option<String>,
    /// Who last triaged it (`api:<token id>`, or `reply:github:<login>` for a reply on a pull
    /// request), and when.
    pub triaged_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub triaged_at: Option<OffsetDateTime>,
    /// Secrets findings: the secret's redacted form. The value is never stored.
    pub secret_redacted: Option<String>,
    /// Code findings: the matched source lines from `start_line` on, at most 5, each at most 400
    /// characters (a cut line ends in `…`), as of the latest scan that saw it. Empty when not
    /// stored: never for Secrets, nor when the org turned `store_matched_lines` off.
    pub matched_lines: Vec<String>,
    /// Supply Chain findings: the vulnerable dependency (package, installed versions, the
    /// advisories and their aliases, fixed versions, direct or transitive); null otherwise.
    #[schema(value_type = Option<crate::routes::worker::doc::VulnerableDependency>)]
    pub dependency: Option<picket_core::protocol::VulnerableDependency>,
    /// Supply Chain findings: the first affecting advisory's page on osv.dev.
    pub advisory_url: Option<String>,
    /// The scan that first reported it on this branch, and the latest that did.
    pub first_seen_scan_id: Uuid,
    pub last_seen_scan_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<FindingRecord> for Finding {
    fn from(f: FindingRecord) -> Self {
        Finding {
            id: f.id.0,
            git_ref: f.git_ref,
            product: f.product,
            rule_id: f.rule_id,
            path: f.path,
            start_line: f.start_line,
            end_line: f.end_line,
            severity: f.severity,
            message: f.message,
            fingerprint: f.fingerprint,
            status: f.status,
            ignore_reason: f.ignore_reason,
            triage_reason: f.triage_reason,
            triaged_by: f.triaged_by,
            triaged_at: f.triaged_at,
            secret_redacted: f.secret_redacted,
            matched_lines: f.matched_lines,
            advisory_url: f.dependency.as_ref().map(|d| d.url()),
            dependency: f.dependency,
            first_seen_scan_id: f.first_seen_scan_id.0,
            last_seen_scan_id: f.last_seen_scan_id.0,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FindingPage {
    pub items: Vec<Finding>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FindingQuery {
    #[param(schema_with = crate::schema::finding_status_opt)]
    pub status: Option<FindingStatus>,
    /// This severity or worse.
    #[param(schema_with = crate::schema::severity_opt)]
    pub severity: Option<Severity>,
    #[param(schema_with = crate::schema::product_opt)]
    pub product: Option<Product>,
    /// Exact rule id.
    #[param(schema_with = constraints::filter)]
    pub rule_id: Option<String>,
    /// Paths starting with this.
    #[param(schema_with = constraints::filter)]
    pub path: Option<String>,
    /// Exact branch.
    #[param(schema_with = constraints::filter)]
    pub git_ref: Option<String>,
    /// From the previous page's `next_cursor`.
    #[param(schema_with = FindingPosition::schema)]
    pub cursor: Option<String>,
    /// 1-500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A project's findings, most severe first, then newest first.
#[utoipa::path(get, path = "/api/v1/projects/{id}/findings", tag = "findings",
    params(ApiPath<ProjectId>, FindingQuery),
    responses(
        (status = 200, body = FindingPage),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_findings(
    caller: Caller,
    ApiPath(id): ApiPath<ProjectId>,
    ApiQuery(q): ApiQuery<FindingQuery>,
    State(state): State<AppState>,
) -> Result<Json<FindingPage>, ApiError> {
    let limit = pagination::limit(q.limit)?;
    for (field, value) in [
        ("rule_id", &q.rule_id),
        ("path", &q.path),
        ("git_ref", &q.git_ref),
    ] {
        if let Some(v) = value {
            constraints::FILTER.check_query(field, v)?;
        }
    }
    let after = match &q.cursor {
        Some(c) => {
            let FindingPosition(severity, id) = pagination::decode(c)?;
            Some(FindingCursor {
                severity,
                id: FindingId(id),
            })
        }
        None => None,
    };
    let pool = state.db().pool();
    if !projects::exists(pool, caller.org_id, id).await? {
        return Err(ApiError::not_found("project"));
    }
    let filter = FindingFilter {
        status: q.status,
        min_severity: q.severity,
        product: q.product,
        rule_id: q.rule_id,
        path_prefix: q.path,
        git_ref: q.git_ref,
    };
    let rows = findings::list(pool, caller.org_id, id, &filter, after, limit + 1).await?;
    let (rows, next_cursor) =
        pagination::page(rows, limit, |f| FindingPosition(f.severity, f.id.0));
    Ok(Json(FindingPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// A triage decision: `ignored` with an `ignore_reason` from the list and/or a free-text
/// `reason` (the comment), or `open` (lifts an ignore) with neither.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageRequest {
    pub status: TriageStatus,
    pub ignore_reason: Option<IgnoreReason>,
    pub reason: Option<String>,
}

impl utoipa::PartialSchema for TriageRequest {
    fn schema() -> RefOr<Schema> {
        use constraints::{closed_object, literal, null_only, REASON};
        let with_reason = closed_object(
            vec![
                ("status", literal("ignored")),
                (
                    "ignore_reason",
                    Schema::Object(crate::schema::ignore_reason()),
                ),
                ("reason", Schema::Object(REASON.nullable_schema())),
            ],
            &["status", "ignore_reason"],
            "Ignore the finding for a reason from the list, with an optional comment \
             (`reason`, 1-1000 characters).",
        );
        let with_text = closed_object(
            vec![
                ("status", literal("ignored")),
                ("ignore_reason", null_only()),
                ("reason", Schema::Object(REASON.schema())),
            ],
            &["status", "reason"],
            "Ignore the finding, saying why in words (1-1000 characters).",
        );
        let open = closed_object(
            vec![
                ("status", literal("open")),
                ("ignore_reason", null_only()),
                ("reason", null_only()),
            ],
            &["status"],
            "Lift an ignore; no reason.",
        );
        Schema::OneOf(
            utoipa::openapi::schema::OneOfBuilder::new()
                .item(with_reason)
                .item(with_text)
                .item(open)
                .build(),
        )
        .into()
    }
}

impl ToSchema for TriageRequest {}

impl TriageRequest {
    /// The decision, after checking the body's combination of fields (422 naming the field).
    fn decision(self, at: &str) -> Result<Triage, ApiError> {
        let field = |f: &str| {
            if at.is_empty() {
                f.to_owned()
            } else {
                format!("{at}.{f}")
            }
        };
        if let Some(r) = &self.reason {
            constraints::REASON.check(&field("reason"), r)?;
        }
        match (self.status, self.ignore_reason, self.reason) {
            (TriageStatus::Ignored, None, None) => Err(ApiError::invalid_body(
                field("reason"),
                "an ignored finding needs a reason: ignore_reason, reason, or both",
            )),
            (TriageStatus::Ignored, reason, comment) => Ok(Triage::Ignore { reason, comment }),
            (TriageStatus::Open, None, None) => Ok(Triage::Reopen),
            (TriageStatus::Open, Some(_), _) => Err(ApiError::invalid_body(
                field("ignore_reason"),
                "only an ignored finding carries a reason",
            )),
            (TriageStatus::Open, None, Some(_)) => Err(ApiError::invalid_body(
                field("reason"),
                "only an ignored finding carries a reason",
            )),
        }
    }
}

/// One finding of the org (admin or member), with its matched lines when they are stored.
#[utoipa::path(get, path = "/api/v1/findings/{id}", tag = "findings",
    params(ApiPath<FindingId>),
    responses(
        (status = 200, body = Finding),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_finding(
    caller: Caller,
    ApiPath(id): ApiPath<FindingId>,
    State(state): State<AppState>,
) -> Result<Json<Finding>, ApiError> {
    let finding = findings::get(state.db().pool(), caller.org_id, id)
        .await
        .map_err(|e| not_found_as(e, "finding"))?;
    Ok(Json(finding.into()))
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageStatus {
    Ignored,
    Open,
}

/// Triage a finding (admin or member): `ignored` with a reason, or `open` to lift an ignore. The
/// decision applies to the finding's fingerprint on every branch of the project and sticks across
/// later scans. `open` on a finding that is not ignored changes nothing. Every change is kept in
/// the finding's triage history.
#[utoipa::path(post, path = "/api/v1/findings/{id}/triage", tag = "findings",
    params(ApiPath<FindingId>),
    request_body = TriageRequest,
    responses(
        (status = 200, body = Finding),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn triage_finding(
    caller: Caller,
    ApiPath(id): ApiPath<FindingId>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TriageRequest>,
) -> Result<Json<Finding>, ApiError> {
    let decision = body.decision("")?;
    let mut tx = state.db().pool().begin().await?;
    let finding = findings::triage(&mut tx, caller.org_id, id, &decision, &caller.actor())
        .await
        .map_err(|e| not_found_as(e, "finding"))?;
    tx.commit().await?;
    tracing::info!(finding_id = %id, status = %finding.status, "finding triaged");
    Ok(Json(finding.into()))
}

/// Most findings one bulk triage names by id.
pub const MAX_BULK_TRIAGE: usize = 10_000;

/// Which findings a bulk triage acts on: `ids`, or every finding `matching` a filter, resolved
/// on the server in the request's transaction (the web UI's "all matching").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkTriageTarget {
    pub ids: Option<Vec<Uuid>>,
    pub matching: Option<FindingMatching>,
}

impl utoipa::PartialSchema for BulkTriageTarget {
    fn schema() -> RefOr<Schema> {
        use constraints::closed_object;
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
        let ids = ArrayBuilder::new()
            .items(ObjectBuilder::new().schema_type(Type::String).format(Some(
                utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid),
            )))
            .min_items(Some(1))
            .max_items(Some(MAX_BULK_TRIAGE))
            .build();
        let by_id = closed_object(
            vec![("ids", Schema::Array(ids))],
            &["ids"],
            "1-10,000 of the org's findings (unknown ids change nothing).",
        );
        let matching = closed_object(
            vec![("matching", FindingMatching::schema().into())],
            &["matching"],
            "Every finding of the org matching the filter.",
        );
        Schema::OneOf(
            utoipa::openapi::schema::OneOfBuilder::new()
                .item(by_id)
                .item(matching)
                .build(),
        )
        .into()
    }
}

impl ToSchema for BulkTriageTarget {}

/// A filter over the org's findings, as the Findings page applies it; absent or `null` fields
/// do not filter.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingMatching {
    #[schema(schema_with = crate::schema::finding_status_opt)]
    pub status: Option<FindingStatus>,
    /// This severity or worse.
    #[schema(schema_with = crate::schema::severity_opt)]
    pub severity: Option<Severity>,
    #[schema(schema_with = crate::schema::product_opt)]
    pub product: Option<Product>,
    #[schema(schema_with = constraints::filter_opt)]
    pub rule_id: Option<String>,
    pub project_id: Option<Uuid>,
    /// Paths starting with this.
    #[schema(schema_with = constraints::filter_opt)]
    pub path: Option<String>,
    /// `true`: findings on their project's default branch; `false`: on other refs (pull
    /// requests' heads, other branches).
    pub on_default_branch: Option<bool>,
    /// First seen at or after this moment (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(schema_with = crate::schema::date_time_opt)]
    pub since: Option<OffsetDateTime>,
    #[schema(schema_with = crate::schema::ignore_reason_opt)]
    pub ignore_reason: Option<IgnoreReason>,
}

impl FindingMatching {
    pub(crate) fn to_match(&self, at: &str) -> Result<FindingMatch, ApiError> {
        for (f, v) in [("rule_id", &self.rule_id), ("path", &self.path)] {
            if let Some(v) = v {
                constraints::FILTER.check(&format!("{at}.{f}"), v)?;
            }
        }
        Ok(FindingMatch {
            status: self.status,
            min_severity: self.severity,
            product: self.product,
            rule_id: self.rule_id.clone().filter(|r| !r.is_empty()),
            project: self.project_id.map(ProjectId),
            path_prefix: self.path.clone().filter(|p| !p.is_empty()),
            on_default_branch: self.on_default_branch,
            since: self.since,
            ignore_reason: self.ignore_reason,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkTriage {
    pub findings: BulkTriageTarget,
    pub decision: TriageRequest,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkTriageResult {
    /// Finding rows changed (a decision covers a finding's fingerprint on every ref of its
    /// project, so this may exceed the findings named).
    pub changed: i64,
}

/// Triage many findings at once (admin or member), by id or by filter, in one transaction: the
/// same decision and rules as triaging each one.
#[utoipa::path(post, path = "/api/v1/findings/triage", tag = "findings",
    request_body = BulkTriage,
    responses((status = 200, body = BulkTriageResult)))]
async fn bulk_triage(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BulkTriage>,
) -> Result<Json<BulkTriageResult>, ApiError> {
    let decision = body.decision.decision("decision")?;
    let changed = match (body.findings.ids, body.findings.matching) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_BULK_TRIAGE {
                return Err(ApiError::invalid_body(
                    "findings.ids",
                    format!("must hold 1-{MAX_BULK_TRIAGE} finding ids"),
                ));
            }
            let ids: Vec<FindingId> = ids.into_iter().map(FindingId).collect();
            findings::triage_many(
                state.db().pool(),
                caller.org_id,
                &ids,
                &decision,
                &caller.actor(),
            )
            .await?
        }
        (None, Some(matching)) => {
            let filter = matching.to_match("findings.matching")?;
            overview::triage_matching(
                state.db().pool(),
                caller.org_id,
                &filter,
                &decision,
                &caller.actor(),
            )
            .await?
        }
        _ => {
            return Err(ApiError::invalid_body(
                "findings",
                "give exactly one of ids and matching",
            ))
        }
    };
    tracing::info!(changed, "findings triaged in bulk");
    Ok(Json(BulkTriageResult { changed }))
}
