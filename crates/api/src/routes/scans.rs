//! Scans: bulk scan, history, one scan with its audit trail, cancel and retry. Members may do all
//! of these: running and stopping scans is day-to-day work, not administration.
//!
//! A bulk scan is one transaction: the requested ids are checked against the org's projects
//! (unknown or foreign → 404 listing them; full scans switched off → 409 listing them; nothing
//! written in either case), then one statement queues a full scan of each default branch,
//! joining any full scan already waiting for that project.

use crate::constraints;
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::pagination::{self, Position, ScanFindingPosition, ScanPosition};
use crate::routes::not_found_as;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use picket_core::protocol::ScanTrail;
use picket_core::{
    FindingStatus, Product, ProjectId, Provider, ScanId, ScanKind, ScanState, ScanTrigger, Severity,
};
use picket_db::attempts::{self, AttemptRecord};
use picket_db::findings::{self, ScanFindingChange, ScanFindingCursor, ScanFindingRecord};
use picket_db::overview::{self, ProjectMatch};
use picket_db::scans::{self, CancelOutcome, Enqueued, NewScan, ScanEvent, ScanRecord};
use picket_db::{pr_checks, projects, DbError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use time::OffsetDateTime;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Most projects one bulk scan may name.
pub const MAX_BULK_SCAN: usize = 10_000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(bulk_scan))
        .routes(routes!(project_scans, scan_project))
        .routes(routes!(get_scan))
        .routes(routes!(scan_findings))
        .routes(routes!(scan_logs))
        .routes(routes!(scan_sarif))
        .routes(routes!(cancel_scan))
        .routes(routes!(retry_scan))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Scan {
    pub id: Uuid,
    pub project_id: Uuid,
    #[schema(schema_with = crate::schema::scan_kind)]
    pub kind: ScanKind,
    #[schema(schema_with = crate::schema::scan_trigger)]
    pub trigger: ScanTrigger,
    #[schema(schema_with = crate::schema::scan_state)]
    pub state: ScanState,
    /// Lower runs first.
    pub priority: i16,
    pub attempt: i32,
    pub max_attempts: i32,
    /// The branch (full scans) or PR head ref (diff scans).
    pub git_ref: Option<String>,
    pub commit_sha: Option<String>,
    pub base_ref: Option<String>,
    pub base_sha: Option<String>,
    /// Diff scans: the merge base of head and target, when the request gave it.
    pub merge_base_sha: Option<String>,
    pub pr_number: Option<i32>,
    /// The scan this one re-runs.
    pub rerun_of: Option<Uuid>,
    /// The token that asked for it.
    pub requested_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub claimed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl From<ScanRecord> for Scan {
    fn from(s: ScanRecord) -> Self {
        Scan {
            id: s.id.0,
            project_id: s.project_id.0,
            kind: s.kind,
            trigger: s.trigger,
            state: s.state,
            priority: s.priority,
            attempt: s.attempt,
            max_attempts: s.max_attempts,
            git_ref: s.git_ref,
            commit_sha: s.commit_sha,
            base_ref: s.base_ref,
            base_sha: s.base_sha,
            merge_base_sha: s.merge_base_sha,
            pr_number: s.pr_number,
            rerun_of: s.rerun_of.map(|r| r.0),
            requested_by: s.requested_by.map(|t| t.0),
            queued_at: s.queued_at,
            claimed_at: s.claimed_at,
            started_at: s.started_at,
            finished_at: s.finished_at,
            error_code: s.error_code,
            error_message: s.error_message,
        }
    }
}

/// A scan asked for, and whether it is new (`false`: it joined a full scan already queued).
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedScan {
    pub created: bool,
    #[serde(flatten)]
    pub scan: Scan,
}

impl From<Enqueued> for QueuedScan {
    fn from(e: Enqueued) -> Self {
        QueuedScan {
            created: e.created,
            scan: e.scan.into(),
        }
    }
}

/// One project's scan in a bulk scan's answer: the essentials only, since one answer may list
/// 10,000 scans; `GET /api/v1/scans/{id}` has the rest.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkScanItem {
    pub id: Uuid,
    pub project_id: Uuid,
    /// `false` when the project's already-queued full scan was joined instead of a new one.
    pub created: bool,
    #[schema(schema_with = crate::schema::scan_trigger)]
    pub trigger: ScanTrigger,
    #[schema(schema_with = crate::schema::scan_state)]
    pub state: ScanState,
    /// Lower runs first.
    pub priority: i16,
    pub git_ref: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
}

impl From<Enqueued> for BulkScanItem {
    fn from(e: Enqueued) -> Self {
        BulkScanItem {
            id: e.scan.id.0,
            project_id: e.scan.project_id.0,
            created: e.created,
            trigger: e.scan.trigger,
            state: e.scan.state,
            priority: e.scan.priority,
            git_ref: e.scan.git_ref,
            queued_at: e.scan.queued_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkScanResult {
    pub scans: Vec<BulkScanItem>,
    /// With `matching`: projects the filter matched that got no scan because their full scans
    /// are off or the project is disabled. With `project_ids`: always 0 (such a project refuses
    /// the whole request instead).
    pub skipped: i64,
}

/// Which projects to scan: `project_ids`, or every project `matching` a filter, resolved on the
/// server in the request's transaction (the web UI's "all N matching").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkScan {
    pub project_ids: Option<Vec<Uuid>>,
    pub matching: Option<ProjectMatching>,
}

/// A filter over the org's projects, as the Projects page applies it; absent or `null` fields
/// do not filter.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectMatching {
    /// `true`: projects Picket scans (enabled, full or diff scans on); `false`: the rest.
    pub scanning: Option<bool>,
    /// Case-insensitive substring of the full name.
    #[schema(schema_with = constraints::filter_opt)]
    pub name: Option<String>,
    #[schema(schema_with = crate::schema::provider_opt)]
    pub provider: Option<Provider>,
    /// The state of the project's latest full or latest pull-request scan.
    #[schema(schema_with = crate::schema::scan_state_opt)]
    pub last_scan_state: Option<ScanState>,
    /// Whether the default branch has open findings.
    pub has_findings: Option<bool>,
}

impl ProjectMatching {
    /// The filter as picket-db applies it, after checking its text.
    pub(crate) fn to_match(&self, field: &str) -> Result<ProjectMatch, ApiError> {
        if let Some(name) = &self.name {
            constraints::FILTER.check(&format!("{field}.name"), name)?;
        }
        Ok(ProjectMatch {
            scanning: self.scanning,
            name: self.name.clone().filter(|n| !n.is_empty()),
            provider: self.provider,
            last_scan_state: self.last_scan_state,
            has_findings: self.has_findings,
        })
    }
}

impl utoipa::PartialSchema for BulkScan {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use constraints::closed_object;
        use utoipa::openapi::schema::{ArrayBuilder, Schema};
        let ids = ArrayBuilder::new()
            .items(
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Uuid,
                    ))),
            )
            .min_items(Some(1))
            .max_items(Some(MAX_BULK_SCAN))
            .build();
        let by_id = closed_object(
            vec![("project_ids", Schema::Array(ids))],
            &["project_ids"],
            "1-10,000 of the org's projects; repeats count once. A project with full scans off \
             refuses the whole request (409).",
        );
        let matching = closed_object(
            vec![("matching", ProjectMatching::schema().into())],
            &["matching"],
            "Every project matching the filter whose full scans are on and which is not \
             disabled (the others are counted in `skipped`); at most 10,000.",
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

impl ToSchema for BulkScan {}

/// One entry of a scan's audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanEventOut {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[schema(schema_with = crate::schema::scan_state_opt)]
    pub from_state: Option<ScanState>,
    #[schema(schema_with = crate::schema::scan_state)]
    pub to_state: ScanState,
    pub attempt: i32,
    /// `api:<token id>`, `scheduler:<owner>`, `rescuer` or `schedule`.
    pub actor: String,
    pub detail: Option<String>,
}

impl From<ScanEvent> for ScanEventOut {
    fn from(e: ScanEvent) -> Self {
        ScanEventOut {
            at: e.at,
            from_state: e.from_state,
            to_state: e.to_state,
            attempt: e.attempt,
            actor: e.actor,
            detail: e.detail,
        }
    }
}

/// One attempt of a scan: where it ran and what its worker did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanAttempt {
    pub attempt: i32,
    /// `kubernetes`, `sandbox` or `process`.
    pub executor: Option<String>,
    /// The environment's name (Pod, sandbox).
    pub environment: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub launched_at: Option<OffsetDateTime>,
    /// The step a failed attempt failed in (`clone`, `engine`, ...).
    pub failed_step: Option<String>,
    /// What the worker did: steps with start, duration and figures; engine and rule-pack
    /// versions; skipped files; ignore rules. Absent until the worker reported.
    #[schema(value_type = Option<crate::routes::worker::doc::ScanTrail>)]
    pub trail: Option<ScanTrail>,
}

impl From<AttemptRecord> for ScanAttempt {
    fn from(a: AttemptRecord) -> Self {
        ScanAttempt {
            attempt: a.attempt,
            executor: a.executor,
            environment: a.environment,
            launched_at: a.launched_at,
            failed_step: a.failed_step,
            trail: a.trail,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScanDetail {
    #[serde(flatten)]
    pub scan: Scan,
    /// Every state change, oldest first.
    pub events: Vec<ScanEventOut>,
    /// Every attempt launched, first first.
    pub attempts: Vec<ScanAttempt>,
}

/// What a finding was to the scan that reported it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A full scan's finding.
    Found,
    /// A diff scan's finding not present at the merge base.
    New,
    /// A diff scan's finding present at the merge base that the head no longer has.
    Fixed,
}

impl From<Change> for ScanFindingChange {
    fn from(c: Change) -> Self {
        match c {
            Change::Found => ScanFindingChange::Found,
            Change::New => ScanFindingChange::New,
            Change::Fixed => ScanFindingChange::Fixed,
        }
    }
}

impl From<ScanFindingChange> for Change {
    fn from(c: ScanFindingChange) -> Self {
        match c {
            ScanFindingChange::Found => Change::Found,
            ScanFindingChange::New => Change::New,
            ScanFindingChange::Fixed => Change::Fixed,
        }
    }
}

/// One finding as one scan reported it (its location then, not now).
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanFinding {
    /// The stored finding (`GET /api/v1/findings/{id}`); absent for `fixed`.
    pub finding_id: Option<Uuid>,
    pub change: Change,
    /// 64 lowercase hex characters: the finding's identity across scans and branches.
    pub fingerprint: String,
    #[schema(schema_with = crate::schema::product)]
    pub product: Product,
    pub rule_id: String,
    pub path: String,
    pub start_line: i32,
    pub end_line: i32,
    #[schema(schema_with = crate::schema::severity)]
    pub severity: Severity,
    pub message: String,
    /// Secrets findings: the redacted form (never the value).
    pub secret_redacted: Option<String>,
    /// Covered by a `nosemgrep` comment (stored `ignored`, reason `nosemgrep`).
    pub suppressed: bool,
    /// The stored finding's status now.
    #[schema(schema_with = crate::schema::finding_status_opt)]
    pub status: Option<FindingStatus>,
}

impl From<ScanFindingRecord> for ScanFinding {
    fn from(f: ScanFindingRecord) -> Self {
        ScanFinding {
            finding_id: f.finding_id.map(|i| i.0),
            change: f.change.into(),
            fingerprint: f.fingerprint,
            product: f.product,
            rule_id: f.rule_id,
            path: f.path,
            start_line: f.start_line,
            end_line: f.end_line,
            severity: f.severity,
            message: f.message,
            secret_redacted: f.secret_redacted,
            suppressed: f.suppressed,
            status: f.status,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScanFindingPage {
    pub items: Vec<ScanFinding>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScanFindingQuery {
    /// Only findings of this kind: `found` (full scans), `new` or `fixed` (diff scans).
    pub change: Option<Change>,
    /// From the previous page's `next_cursor`.
    #[param(schema_with = ScanFindingPosition::schema)]
    pub cursor: Option<String>,
    /// 1-500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScanPage {
    pub items: Vec<Scan>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Queue a full scan of each named project's default branch, in one transaction.
#[utoipa::path(post, path = "/api/v1/scans", tag = "scans",
    request_body = BulkScan,
    responses(
        (status = 200, body = BulkScanResult),
        (status = 404, description = "Projects not found, listed in `errors`; nothing queued", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`full_scans_disabled`: projects listed in `errors`; nothing queued", body = Problem, content_type = "application/problem+json"),
    ))]
async fn bulk_scan(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BulkScan>,
) -> Result<Json<BulkScanResult>, ApiError> {
    let project_ids = match (body.project_ids, body.matching) {
        (Some(ids), None) => ids,
        (None, Some(matching)) => return bulk_scan_matching(caller, &state, &matching).await,
        _ => {
            return Err(ApiError::invalid_body(
                "",
                "give exactly one of project_ids and matching",
            ))
        }
    };
    if project_ids.is_empty() || project_ids.len() > MAX_BULK_SCAN {
        return Err(ApiError::invalid_body(
            "project_ids",
            format!("must hold 1-{MAX_BULK_SCAN} project ids"),
        ));
    }
    let ids: Vec<ProjectId> = project_ids.iter().copied().map(ProjectId).collect();
    let mut tx = state.db().pool().begin().await?;
    let switches = projects::scan_switches(&mut *tx, caller.org_id, &ids).await?;
    let found: HashSet<Uuid> = switches.iter().map(|s| s.id.0).collect();
    let missing = listed(&project_ids, |id| !found.contains(id), "project not found");
    if !missing.is_empty() {
        return Err(ApiError::not_found("project").with_fields(missing));
    }
    let disabled: HashSet<Uuid> = switches
        .iter()
        .filter(|s| !s.full_scans_enabled)
        .map(|s| s.id.0)
        .collect();
    if !disabled.is_empty() {
        let fields = listed(
            &project_ids,
            |id| disabled.contains(id),
            "full scans are disabled",
        );
        return Err(ApiError::conflict(
            "full_scans_disabled",
            format!("{} project(s) have full scans disabled", disabled.len()),
        )
        .with_fields(fields));
    }
    queue_bulk(tx, caller, &ids, "project_ids", 0).await
}

/// Queues a bulk full scan of `ids` in `tx` and commits it. A project deleted since it was
/// selected (checked or matched in `tx`) is 404, naming `field`; nothing is queued then.
async fn queue_bulk(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    caller: Caller,
    ids: &[ProjectId],
    field: &str,
    skipped: i64,
) -> Result<Json<BulkScanResult>, ApiError> {
    let queued = if ids.is_empty() {
        Vec::new()
    } else {
        scans::enqueue_bulk(
            &mut tx,
            caller.org_id,
            ids,
            ScanTrigger::Bulk,
            Some(caller.token_id),
        )
        .await?
        .map_err(|unknown| {
            ApiError::not_found("project").with_fields(unknown.0.iter().map(|id| FieldError {
                field: field.to_owned(),
                message: format!("project {id} not found"),
            }))
        })?
    };
    tx.commit().await?;
    let created = queued.iter().filter(|q| q.created).count();
    tracing::info!(
        projects = queued.len(),
        created,
        skipped,
        "bulk scan queued"
    );
    Ok(Json(BulkScanResult {
        scans: queued.into_iter().map(Into::into).collect(),
        skipped,
    }))
}

/// Queues a full scan of every project `matching` selects (full scans on, not disabled), in one
/// transaction with the selection, so the set is the one the filter matches at that moment.
async fn bulk_scan_matching(
    caller: Caller,
    state: &AppState,
    matching: &ProjectMatching,
) -> Result<Json<BulkScanResult>, ApiError> {
    let filter = matching.to_match("matching")?;
    let mut tx = state.db().pool().begin().await?;
    let (ids, skipped) = overview::matching_projects(&mut *tx, caller.org_id, &filter).await?;
    if ids.len() > MAX_BULK_SCAN {
        return Err(ApiError::invalid_body(
            "matching",
            format!(
                "matches {} projects; a bulk scan takes at most {MAX_BULK_SCAN}: narrow the filter",
                ids.len()
            ),
        ));
    }
    queue_bulk(tx, caller, &ids, "matching", skipped).await
}

/// `project_ids[i]` entries of the ids matching `pick`, each named once.
fn listed(ids: &[Uuid], pick: impl Fn(&Uuid) -> bool, message: &str) -> Vec<FieldError> {
    let mut seen = HashSet::new();
    ids.iter()
        .enumerate()
        .filter(|(_, id)| pick(id) && seen.insert(**id))
        .map(|(i, id)| FieldError {
            field: format!("project_ids[{i}]"),
            message: format!("{message}: {id}"),
        })
        .collect()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScanHistoryQuery {
    /// Only scans of this kind.
    #[param(schema_with = crate::schema::scan_kind)]
    pub kind: Option<ScanKind>,
    /// Only scans in this state.
    #[param(schema_with = crate::schema::scan_state)]
    pub state: Option<ScanState>,
    /// Only scans queued at or after this moment (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(schema_with = crate::schema::date_time)]
    pub since: Option<OffsetDateTime>,
    /// From the previous page's `next_cursor`.
    #[param(schema_with = ScanPosition::schema)]
    pub cursor: Option<String>,
    /// 1-500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A project's scans, newest first, by kind, state and time.
#[utoipa::path(get, path = "/api/v1/projects/{id}/scans", tag = "scans",
    params(ApiPath<ProjectId>, ScanHistoryQuery),
    responses(
        (status = 200, body = ScanPage),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn project_scans(
    caller: Caller,
    ApiPath(id): ApiPath<ProjectId>,
    ApiQuery(q): ApiQuery<ScanHistoryQuery>,
    State(state): State<AppState>,
) -> Result<Json<ScanPage>, ApiError> {
    let limit = pagination::limit(q.limit)?;
    let before = match &q.cursor {
        Some(c) => Some(ScanId(pagination::decode::<ScanPosition>(c)?.0)),
        None => None,
    };
    let pool = state.db().pool();
    if !projects::exists(pool, caller.org_id, id).await? {
        return Err(ApiError::not_found("project"));
    }
    let filter = scans::ScanFilter {
        kind: q.kind,
        state: q.state,
        since: q.since,
    };
    let rows = scans::list_for_project(pool, caller.org_id, id, &filter, before, limit + 1).await?;
    let (rows, next_cursor) = pagination::page(rows, limit, |s| ScanPosition(s.id.0));
    Ok(Json(ScanPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One line of a scan's worker log.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanLogLine {
    /// Increasing within the scan: pass the last one seen as `after`.
    pub seq: i64,
    pub attempt: i32,
    /// The worker's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[schema(schema_with = crate::schema::log_level)]
    pub level: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScanLogPage {
    pub items: Vec<ScanLogLine>,
    /// Lines the worker sent past the scan's cap (10,000 lines), not kept.
    pub dropped: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Lines after this `seq` (default 0: from the start).
    #[param(minimum = 0, maximum = 9007199254740991_i64)]
    pub after: Option<i64>,
    /// 1-1000, default 500.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A scan's worker log, oldest first: what its worker said while it ran (kept for the log
/// retention after the scan ends; at most 10,000 lines a scan).
#[utoipa::path(get, path = "/api/v1/scans/{id}/logs", tag = "scans",
    params(ApiPath<ScanId>, LogQuery),
    responses(
        (status = 200, body = ScanLogPage),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn scan_logs(
    caller: Caller,
    ApiPath(id): ApiPath<ScanId>,
    ApiQuery(q): ApiQuery<LogQuery>,
    State(state): State<AppState>,
) -> Result<Json<ScanLogPage>, ApiError> {
    let after = q.after.unwrap_or(0);
    if !(0..=9_007_199_254_740_991).contains(&after) {
        return Err(ApiError::invalid_query(
            "after",
            "must be 0 to 9007199254740991",
        ));
    }
    let limit = match q.limit {
        None => 500,
        Some(n @ 1..=1000) => n,
        Some(_) => return Err(ApiError::invalid_query("limit", "must be 1-1000")),
    };
    let pool = state.db().pool();
    scans::get(pool, caller.org_id, id)
        .await
        .map_err(|e| not_found_as(e, "scan"))?;
    let lines = picket_db::scan_logs::list(pool, caller.org_id, id, after, limit).await?;
    let dropped = picket_db::scan_logs::dropped(pool, caller.org_id, id).await?;
    Ok(Json(ScanLogPage {
        items: lines
            .into_iter()
            .map(|l| ScanLogLine {
                seq: l.seq,
                attempt: l.attempt,
                at: l.at,
                level: l.level.as_str(),
                message: l.message,
            })
            .collect(),
        dropped,
    }))
}

/// One scan with its audit trail.
#[utoipa::path(get, path = "/api/v1/scans/{id}", tag = "scans",
    params(ApiPath<ScanId>),
    responses(
        (status = 200, body = ScanDetail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_scan(
    caller: Caller,
    ApiPath(id): ApiPath<ScanId>,
    State(state): State<AppState>,
) -> Result<Json<ScanDetail>, ApiError> {
    let pool = state.db().pool();
    let scan = scans::get(pool, caller.org_id, id)
        .await
        .map_err(|e| not_found_as(e, "scan"))?;
    let events = scans::events(pool, caller.org_id, id).await?;
    let attempts = attempts::list(pool, caller.org_id, id).await?;
    Ok(Json(ScanDetail {
        scan: scan.into(),
        events: events.into_iter().map(Into::into).collect(),
        attempts: attempts.into_iter().map(Into::into).collect(),
    }))
}

/// The findings a scan reported, most severe first: a full scan's findings (`found`); a diff
/// scan's findings new in the PR (`new`) and those at the merge base its head no longer has
/// (`fixed`). Locations are as the scan saw them.
#[utoipa::path(get, path = "/api/v1/scans/{id}/findings", tag = "scans",
    params(ApiPath<ScanId>, ScanFindingQuery),
    responses(
        (status = 200, body = ScanFindingPage),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn scan_findings(
    caller: Caller,
    ApiPath(id): ApiPath<ScanId>,
    ApiQuery(q): ApiQuery<ScanFindingQuery>,
    State(state): State<AppState>,
) -> Result<Json<ScanFindingPage>, ApiError> {
    let limit = pagination::limit(q.limit)?;
    let after = match &q.cursor {
        Some(c) => {
            let ScanFindingPosition(severity, fingerprint) = pagination::decode(c)?;
            Some(ScanFindingCursor {
                severity,
                fingerprint,
            })
        }
        None => None,
    };
    let pool = state.db().pool();
    scans::get(pool, caller.org_id, id)
        .await
        .map_err(|e| not_found_as(e, "scan"))?;
    let rows = findings::of_scan(
        pool,
        caller.org_id,
        id,
        q.change.map(Into::into),
        after.as_ref(),
        limit + 1,
    )
    .await?;
    let (rows, next_cursor) = pagination::page(rows, limit, |f| {
        ScanFindingPosition(f.severity, f.fingerprint.clone())
    });
    Ok(Json(ScanFindingPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Findings read per query when a SARIF log gathers all of a scan's.
const SARIF_PAGE: i64 = 5_000;

/// A finished scan's findings as a SARIF 2.1.0 log (`application/sarif+json`), for GitHub code
/// scanning and other SARIF consumers: rules with their metadata, results with their locations
/// (paths relative to the repository root), Picket's fingerprints, the commit as the run's
/// `versionControlProvenance`, secrets only in redacted form. At most 25,000 results, most severe
/// first.
#[utoipa::path(get, path = "/api/v1/scans/{id}/sarif", tag = "scans",
    params(ApiPath<ScanId>),
    responses(
        (status = 200, description = "The SARIF 2.1.0 log", content_type = "application/sarif+json", body = Object),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`scan_not_succeeded`: only a succeeded scan has results", body = Problem, content_type = "application/problem+json"),
    ))]
async fn scan_sarif(
    caller: Caller,
    ApiPath(id): ApiPath<ScanId>,
    State(state): State<AppState>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let pool = state.db().pool();
    let scan = scans::get(pool, caller.org_id, id)
        .await
        .map_err(|e| not_found_as(e, "scan"))?;
    if scan.state != ScanState::Succeeded {
        return Err(ApiError::conflict(
            "scan_not_succeeded",
            format!(
                "only a succeeded scan has results; this one is {}",
                scan.state
            ),
        ));
    }
    let project = projects::get(pool, caller.org_id, scan.project_id).await?;
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page =
            findings::of_scan(pool, caller.org_id, id, None, after.as_ref(), SARIF_PAGE).await?;
        let full = page.len() as i64 == SARIF_PAGE;
        after = page.last().map(|f| f.cursor());
        found.extend(page);
        if !full || found.len() > crate::sarif::MAX_RESULTS * 2 {
            break;
        }
    }
    let mut rules = Vec::new();
    for pack in picket_db::rule_packs::list(pool, caller.org_id).await? {
        match picket_db::rule_packs::get(pool, caller.org_id, &pack.name).await {
            Ok((_, content)) => {
                rules.extend(picket_engine::rulepack::rule_docs(&content).unwrap_or_default())
            }
            // Deleted since it was listed: its rules are described from their findings.
            Err(picket_db::DbError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(engine) = state.rule_engine() {
        let dir = engine.config.rules_dir.clone();
        match tokio::task::spawn_blocking(move || picket_engine::rulepack::dir_rule_docs(&dir))
            .await
        {
            Ok(Ok(docs)) => rules.extend(docs),
            // Described from their findings instead; the log is still complete.
            Ok(Err(e)) => tracing::warn!(error = %e, "reading Picket's rule pack for SARIF failed"),
            Err(e) => return Err(ApiError::internal(&e)),
        }
    }
    let info = crate::sarif::ScanInfo {
        id: id.0,
        kind: scan.kind,
        git_ref: scan.git_ref,
        commit_sha: scan.commit_sha,
        clone_url: project.clone_url,
    };
    let log = crate::sarif::log(&info, &found, &rules);
    Ok((
        [(axum::http::header::CONTENT_TYPE, crate::sarif::MEDIA_TYPE)],
        Json(log),
    )
        .into_response())
}

/// Cancel a scan. A queued scan never runs; a running one loses its lease and is stopped.
#[utoipa::path(post, path = "/api/v1/scans/{id}/cancel", tag = "scans",
    params(ApiPath<ScanId>),
    responses(
        (status = 200, body = Scan),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`scan_finished`: the scan already ended", body = Problem, content_type = "application/problem+json"),
    ))]
async fn cancel_scan(
    caller: Caller,
    ApiPath(id): ApiPath<ScanId>,
    State(state): State<AppState>,
) -> Result<Json<Scan>, ApiError> {
    let mut tx = state.db().pool().begin().await?;
    let outcome = scans::cancel(&mut tx, caller.org_id, id, &caller.actor())
        .await
        .map_err(|e| not_found_as(e, "scan"))?;
    if let CancelOutcome::AlreadyFinished(s) = outcome {
        return Err(ApiError::conflict(
            "scan_finished",
            format!("the scan already ended ({s})"),
        ));
    }
    let scan = scans::get(&mut *tx, caller.org_id, id).await?;
    tx.commit().await?;
    tracing::info!(scan_id = %id, "scan cancelled");
    Ok(Json(scan.into()))
}

/// Re-run a finished scan: queues a new scan of the same kind and refs, pointing back at it.
/// 201 with the new scan, or 200 when a full scan of the project was already waiting and the
/// request joined it (`created: false`).
#[utoipa::path(post, path = "/api/v1/scans/{id}/retry", tag = "scans",
    params(ApiPath<ScanId>),
    responses(
        (status = 201, body = QueuedScan),
        (status = 200, description = "Joined the full scan already queued", body = QueuedScan),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`scan_not_finished`, or the project's scans of that kind are disabled", body = Problem, content_type = "application/problem+json"),
    ))]
async fn retry_scan(
    caller: Caller,
    ApiPath(id): ApiPath<ScanId>,
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<QueuedScan>), ApiError> {
    let mut tx = state.db().pool().begin().await?;
    let old = scans::get(&mut *tx, caller.org_id, id)
        .await
        .map_err(|e| not_found_as(e, "scan"))?;
    if !old.state.is_terminal() {
        return Err(ApiError::conflict(
            "scan_not_finished",
            format!(
                "only a finished scan can be re-run; this one is {}",
                old.state
            ),
        ));
    }
    let switches = projects::scan_switches(&mut *tx, caller.org_id, &[old.project_id])
        .await?
        .pop()
        .ok_or(DbError::NotFound)
        .map_err(|e| not_found_as(e, "project"))?;
    match old.kind {
        ScanKind::Full if !switches.full_scans_enabled => {
            return Err(ApiError::conflict(
                "full_scans_disabled",
                "the project's full scans are disabled",
            ))
        }
        ScanKind::Diff if !switches.diff_scans_enabled => {
            return Err(ApiError::conflict(
                "diff_scans_disabled",
                "the project's diff-aware scans are disabled",
            ))
        }
        _ => {}
    }
    let new = NewScan {
        org_id: caller.org_id,
        project_id: old.project_id,
        kind: old.kind,
        trigger: ScanTrigger::Rerun,
        git_ref: old.git_ref,
        commit_sha: old.commit_sha,
        base_ref: old.base_ref,
        base_sha: old.base_sha,
        merge_base_sha: old.merge_base_sha,
        pr_number: old.pr_number,
        rerun_of: Some(old.id),
        requested_by: Some(caller.token_id),
    };
    let queued = scans::enqueue(&mut *tx, &new).await?;
    // A PR scan on a provider that takes feedback gets its check, like a webhook's.
    pr_checks::want(&mut *tx, queued.scan.id).await?;
    tx.commit().await?;
    tracing::info!(scan_id = %id, new_scan_id = %queued.scan.id, created = queued.created, "scan re-run");
    let status = if queued.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(queued.into())))
}

/// What to scan, for one project: a full scan of a branch, or a diff-aware scan of a head ref
/// against a base ref (until the provider integrations bring pull requests, this is how a diff
/// scan of a plain git project is asked for). Its schema is [`scan_request_schema`]: the
/// fields a kind takes depend on the kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    pub kind: ScanKind,
    /// Full scans: the branch (default: the project's default branch). Diff scans: the head ref.
    pub git_ref: Option<String>,
    /// Exact head commit (40 hex digits), when known.
    pub commit_sha: Option<String>,
    /// Diff scans: the target branch the head is compared against (through their merge base).
    pub base_ref: Option<String>,
    /// Diff scans: exact target commit, when known.
    pub base_sha: Option<String>,
    /// Diff scans: the merge base of the head and the target (40 hex digits), when the caller
    /// knows it, e.g. from the provider's compare API (GitHub's `merge_base_commit.sha`). The
    /// worker then fetches only the head and this commit instead of deepening the history to
    /// find it, and compares the head against it as given.
    pub merge_base_sha: Option<String>,
    /// Diff scans: the pull/merge request number, when there is one.
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    pub pr_number: Option<i32>,
}

impl utoipa::PartialSchema for ScanRequest {
    fn schema() -> RefOr<Schema> {
        scan_request_schema().into()
    }
}

impl ToSchema for ScanRequest {}

/// One schema per kind: a full scan names a branch (and commit); a diff scan must name its head
/// and base refs and may name their commits and a PR number. Fields of the other kind may only be
/// `null`.
fn scan_request_schema() -> Schema {
    use crate::constraints::{closed_object, literal, null_only, COMMIT_SHA, GIT_REF};
    let int_or_null = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(1))
        .maximum(Some(i32::MAX))
        .description(Some("The pull/merge request number, when there is one."))
        .build();
    let full = closed_object(
        vec![
            ("kind", literal("full")),
            ("git_ref", Schema::Object(GIT_REF.nullable_schema())),
            ("commit_sha", Schema::Object(COMMIT_SHA.nullable_schema())),
            ("base_ref", null_only()),
            ("base_sha", null_only()),
            ("pr_number", null_only()),
        ],
        &["kind"],
        "A full scan of `git_ref` (default: the project's default branch), at `commit_sha` when \
         given.",
    );
    let diff = closed_object(
        vec![
            ("kind", literal("diff")),
            ("git_ref", Schema::Object(GIT_REF.schema())),
            ("commit_sha", Schema::Object(COMMIT_SHA.nullable_schema())),
            ("base_ref", Schema::Object(GIT_REF.schema())),
            ("base_sha", Schema::Object(COMMIT_SHA.nullable_schema())),
            ("pr_number", Schema::Object(int_or_null)),
        ],
        &["kind", "git_ref", "base_ref"],
        "A diff-aware scan of head `git_ref` against target `base_ref` (through their merge \
         base), at the given commits when known.",
    );
    Schema::OneOf(OneOfBuilder::new().item(full).item(diff).build())
}

/// Queue a full or diff-aware scan of one project.
#[utoipa::path(post, path = "/api/v1/projects/{id}/scans", tag = "scans",
    params(ApiPath<ProjectId>),
    request_body = ScanRequest,
    responses(
        (status = 201, body = QueuedScan, description = "A new scan was queued"),
        (status = 200, body = QueuedScan, description = "Joined the project's full scan already waiting"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`full_scans_disabled` or `diff_scans_disabled`: the project's scans of that kind are off; `project_disabled`: the project is out of reach (its installation was removed or suspended, or the repository taken out of it)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn scan_project(
    caller: Caller,
    ApiPath(id): ApiPath<ProjectId>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ScanRequest>,
) -> Result<(StatusCode, Json<QueuedScan>), ApiError> {
    for (field, value) in [("git_ref", &body.git_ref), ("base_ref", &body.base_ref)] {
        if let Some(v) = value {
            constraints::GIT_REF.check(field, v)?;
        }
    }
    for (field, value) in [
        ("commit_sha", &body.commit_sha),
        ("base_sha", &body.base_sha),
        ("merge_base_sha", &body.merge_base_sha),
    ] {
        if let Some(v) = value {
            constraints::COMMIT_SHA.check(field, v)?;
        }
    }
    if body.pr_number.is_some_and(|n| n < 1) {
        return Err(ApiError::invalid_body("pr_number", "must be 1 or more"));
    }
    let mut tx = state.db().pool().begin().await?;
    let project = projects::get(&mut *tx, caller.org_id, id)
        .await
        .map_err(|e| not_found_as(e, "project"))?;
    if let Some(reason) = project.disabled_reason {
        return Err(ApiError::conflict(
            "project_disabled",
            format!("the project is disabled ({})", reason.as_str()),
        ));
    }
    let new = match body.kind {
        ScanKind::Full => {
            for (field, given) in [
                ("base_ref", body.base_ref.is_some()),
                ("base_sha", body.base_sha.is_some()),
                ("merge_base_sha", body.merge_base_sha.is_some()),
                ("pr_number", body.pr_number.is_some()),
            ] {
                if given {
                    return Err(ApiError::invalid_body(field, "only a diff scan has a base"));
                }
            }
            if !project.full_scans_enabled {
                return Err(ApiError::conflict(
                    "full_scans_disabled",
                    "the project's full scans are disabled",
                ));
            }
            let mut new = NewScan::full(
                caller.org_id,
                id,
                ScanTrigger::Manual,
                body.git_ref.as_deref().unwrap_or(&project.default_branch),
            );
            new.commit_sha = body.commit_sha;
            new
        }
        ScanKind::Diff => {
            let head = body.git_ref.ok_or_else(|| {
                ApiError::invalid_body("git_ref", "a diff scan needs the head ref")
            })?;
            let base = body.base_ref.ok_or_else(|| {
                ApiError::invalid_body("base_ref", "a diff scan needs the base ref")
            })?;
            if !project.diff_scans_enabled {
                return Err(ApiError::conflict(
                    "diff_scans_disabled",
                    "the project's diff-aware scans are disabled",
                ));
            }
            NewScan {
                org_id: caller.org_id,
                project_id: id,
                kind: ScanKind::Diff,
                trigger: ScanTrigger::Manual,
                git_ref: Some(head),
                commit_sha: body.commit_sha,
                base_ref: Some(base),
                base_sha: body.base_sha,
                merge_base_sha: body.merge_base_sha,
                pr_number: body.pr_number,
                rerun_of: None,
                requested_by: Some(caller.token_id),
            }
        }
    };
    let new = NewScan {
        requested_by: Some(caller.token_id),
        ..new
    };
    let queued = scans::enqueue(&mut *tx, &new).await?;
    // A PR scan on a provider that takes feedback gets its check, like a webhook's.
    pr_checks::want(&mut *tx, queued.scan.id).await?;
    tx.commit().await?;
    tracing::info!(project_id = %id, scan_id = %queued.scan.id, kind = %new.kind, created = queued.created, "scan queued");
    let status = if queued.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(queued.into())))
}
