//! `/api/v1/projects`: repositories added to Picket.
//!
//! Adding is one request for one or many repositories and one transaction for all of them: every
//! item is validated first (422 naming `projects[i].field`), then picket-db checks connections and
//! duplicates, inserts the projects with their weekly slots and queues their initial full scans.
//! Any refusal rolls the whole request back.

use crate::constraints;
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{Admin, ApiJson, ApiPath, ApiQuery, Caller};
use crate::pagination::{self, Position, ProjectPosition};
use crate::routes::not_found_as;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use picket_core::{ConnectionId, ProjectId, ScanKind, ScanState, WeeklySlot};
use picket_db::projects::{
    self, AddRefused, LastScan, NewProject, ProjectCursor, ProjectFilter, ProjectRecord,
    ProjectUpdate,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Most repositories one request may add.
pub const MAX_PROJECTS_PER_REQUEST: usize = 1000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, add_projects))
        .routes(routes!(get_project, update_project, delete_project))
}

/// When a project's weekly full scan runs, in UTC.
#[derive(Debug, Serialize, ToSchema)]
pub struct WeeklyScan {
    #[schema(schema_with = crate::schema::weekday)]
    pub weekday: String,
    /// `HH:MM:SS`, UTC.
    pub time: String,
}

impl From<WeeklySlot> for WeeklyScan {
    fn from(s: WeeklySlot) -> Self {
        WeeklyScan {
            weekday: s.weekday.to_string().to_lowercase(),
            time: format!(
                "{:02}:{:02}:{:02}",
                s.time.hour(),
                s.time.minute(),
                s.time.second()
            ),
        }
    }
}

/// A project's latest scan.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectLastScan {
    pub id: Uuid,
    #[schema(schema_with = crate::schema::scan_state)]
    pub state: ScanState,
    #[schema(schema_with = crate::schema::scan_kind)]
    pub kind: ScanKind,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl From<LastScan> for ProjectLastScan {
    fn from(s: LastScan) -> Self {
        ProjectLastScan {
            id: s.id.0,
            state: s.state,
            kind: s.kind,
            queued_at: s.queued_at,
            finished_at: s.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Project {
    pub id: Uuid,
    pub connection_id: Uuid,
    /// The provider's id of the repository.
    pub provider_repo_id: String,
    pub full_name: String,
    pub clone_url: String,
    pub default_branch: String,
    pub full_scans_enabled: bool,
    pub diff_scans_enabled: bool,
    pub weekly_scan: WeeklyScan,
    /// Paths the project's scans ignore (gitignore syntax, anchored at the repository root), on
    /// top of the repository's `.semgrepignore` (or Semgrep's defaults without one).
    pub path_ignores: Vec<String>,
    /// The provider's installation the repository is reached through (a GitHub App
    /// installation id), once a webhook named it.
    #[schema(schema_with = constraints::repo_text_opt)]
    pub provider_installation_id: Option<String>,
    /// Why the project is disabled (no scan of any kind is queued for it): the App was
    /// uninstalled, its installation suspended, or the repository taken out of it. Null: enabled.
    #[schema(schema_with = disabled_reason_schema)]
    pub disabled_reason: Option<&'static str>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub last_scan: Option<ProjectLastScan>,
}

fn disabled_reason_schema() -> utoipa::openapi::schema::Object {
    let mut values: Vec<serde_json::Value> = picket_db::projects::DisabledReason::ALL
        .iter()
        .map(|r| r.as_str().into())
        .collect();
    values.push(serde_json::Value::Null);
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::String,
            utoipa::openapi::schema::Type::Null,
        ]))
        .enum_values(Some(values))
        .build()
}

impl From<ProjectRecord> for Project {
    fn from(p: ProjectRecord) -> Self {
        Project {
            id: p.id.0,
            connection_id: p.connection_id.0,
            provider_repo_id: p.provider_repo_id,
            full_name: p.full_name,
            clone_url: p.clone_url,
            default_branch: p.default_branch,
            full_scans_enabled: p.full_scans_enabled,
            diff_scans_enabled: p.diff_scans_enabled,
            weekly_scan: p.weekly_slot.into(),
            path_ignores: p.path_ignores,
            provider_installation_id: p.provider_installation_id,
            disabled_reason: p.disabled_reason.map(|r| r.as_str()),
            created_at: p.created_at,
            last_scan: p.last_scan.map(Into::into),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectPage {
    pub items: Vec<Project>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectList {
    pub projects: Vec<Project>,
}

/// One repository to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProjectItem {
    /// One of the org's connections.
    pub connection_id: Uuid,
    /// The provider's id of the repository (stable across renames), 1-300 characters. One
    /// request names each (connection, repository) once.
    #[schema(schema_with = constraints::repo_text)]
    pub provider_repo_id: String,
    /// `owner/name`, 1-300 characters.
    #[schema(schema_with = constraints::repo_text)]
    pub full_name: String,
    /// 1-2000 characters.
    #[schema(schema_with = constraints::clone_url)]
    pub clone_url: String,
    /// 1-255 characters.
    #[schema(schema_with = constraints::branch)]
    pub default_branch: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddProjects {
    /// 1-1000 repositories, added all or none.
    #[schema(min_items = 1, max_items = 1000)]
    #[serde(deserialize_with = "crate::extract::objects")]
    pub projects: Vec<NewProjectItem>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    /// A new name to show (`owner/name`, 1-300 characters); the repository stays the same.
    #[schema(schema_with = constraints::repo_text_opt)]
    pub full_name: Option<String>,
    pub full_scans_enabled: Option<bool>,
    pub diff_scans_enabled: Option<bool>,
    /// Replaces the path ignores: at most 100 gitignore patterns (no comments, no
    /// `:include`), each 1-500 characters.
    #[schema(schema_with = path_ignores_schema)]
    pub path_ignores: Option<Vec<String>>,
    /// Moves the weekly full scan. Its occurrences before the move are not due: moving it earlier
    /// in the week does not start a scan at once.
    pub weekly_scan: Option<WeeklyScanChange>,
}

/// A new weekly slot, UTC.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyScanChange {
    #[schema(schema_with = crate::schema::weekday)]
    pub weekday: String,
    /// `HH:MM` or `HH:MM:SS`, UTC.
    #[schema(schema_with = weekly_time_schema)]
    pub time: String,
}

/// A weekly slot's time of day as a request sends it.
pub const WEEKLY_TIME: constraints::Text = constraints::Text {
    min: 5,
    max: 8,
    pattern: "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
    forbidden: &[],
    reserved: &[],
    expected: "a UTC time of day, `HH:MM` or `HH:MM:SS`",
};

fn weekly_time_schema() -> utoipa::openapi::schema::Object {
    WEEKLY_TIME.schema()
}

impl WeeklyScanChange {
    /// The slot, or 422 naming `weekly_scan.weekday` / `weekly_scan.time`.
    fn slot(&self) -> Result<WeeklySlot, ApiError> {
        let day = crate::schema::WEEKDAYS
            .iter()
            .position(|d| *d == self.weekday)
            .ok_or_else(|| {
                ApiError::invalid_body("weekly_scan.weekday", "must be monday ... sunday")
            })?;
        WEEKLY_TIME.check("weekly_scan.time", &self.time)?;
        let mut parts = self.time.split(':').map(|p| p.parse::<u8>().unwrap_or(0));
        let (h, m, s) = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        let time = time::Time::from_hms(h, m, s)
            .map_err(|_| ApiError::invalid_body("weekly_scan.time", WEEKLY_TIME.expected))?;
        WeeklySlot::from_parts(day as i16, time).ok_or_else(|| {
            ApiError::invalid_body("weekly_scan.weekday", "must be monday ... sunday")
        })
    }
}

/// Most path ignores one project holds (the table's check).
pub const MAX_PATH_IGNORES: usize = 100;

/// `path_ignores` as a request sends it: at most [`MAX_PATH_IGNORES`] of
/// [`constraints::PATH_IGNORE`], or `null` (no change).
fn path_ignores_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::Array,
            utoipa::openapi::schema::Type::Null,
        ]))
        .items(constraints::path_ignore())
        .max_items(Some(MAX_PATH_IGNORES))
        .description(Some(
            "Replaces the path ignores: at most 100 gitignore patterns (no comments, no \
             `:include`), each 1-500 characters; each must compile as a gitignore glob.",
        ))
        .build()
}

/// Refuses path ignores the worker could not apply, naming the first bad one.
fn check_path_ignores(patterns: &[String]) -> Result<(), ApiError> {
    if patterns.len() > MAX_PATH_IGNORES {
        return Err(ApiError::invalid_body(
            "path_ignores",
            format!("must hold at most {MAX_PATH_IGNORES} patterns"),
        ));
    }
    for (i, p) in patterns.iter().enumerate() {
        let field = format!("path_ignores[{i}]");
        constraints::PATH_IGNORE.check(&field, p)?;
        picket_engine::targets::check_pattern(p)
            .map_err(|e| ApiError::invalid_body(field, e.to_string()))?;
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProjectQuery {
    /// Case-insensitive substring of the full name.
    #[param(schema_with = constraints::filter)]
    pub name: Option<String>,
    pub full_scans_enabled: Option<bool>,
    pub diff_scans_enabled: Option<bool>,
    /// State of the project's latest scan.
    #[param(schema_with = crate::schema::scan_state)]
    pub last_scan_state: Option<ScanState>,
    /// From the previous page's `next_cursor`.
    #[param(schema_with = ProjectPosition::schema)]
    pub cursor: Option<String>,
    /// 1-500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// List the org's projects by full name, with filters.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    params(ProjectQuery),
    responses((status = 200, body = ProjectPage)))]
async fn list_projects(
    caller: Caller,
    ApiQuery(q): ApiQuery<ProjectQuery>,
    State(state): State<AppState>,
) -> Result<Json<ProjectPage>, ApiError> {
    let limit = pagination::limit(q.limit)?;
    if let Some(name) = &q.name {
        constraints::FILTER.check_query("name", name)?;
    }
    let after = match &q.cursor {
        Some(c) => {
            let ProjectPosition(full_name, id) = pagination::decode(c)?;
            Some(ProjectCursor {
                full_name,
                id: ProjectId(id),
            })
        }
        None => None,
    };
    let filter = ProjectFilter {
        name: q.name,
        full_scans_enabled: q.full_scans_enabled,
        diff_scans_enabled: q.diff_scans_enabled,
        last_scan_state: q.last_scan_state,
    };
    let rows = projects::list(
        state.db().pool(),
        caller.org_id,
        &filter,
        after.as_ref(),
        limit + 1,
    )
    .await?;
    let (rows, next_cursor) = pagination::page(rows, limit, |p| {
        ProjectPosition(p.full_name.clone(), p.id.0)
    });
    Ok(Json(ProjectPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Checks every item before anything is written; all refusals are reported at once: 422 for
/// values, then 409 `duplicate_project` when one (connection, repository) is named twice.
fn validate(items: &[NewProjectItem]) -> Result<(), ApiError> {
    if items.is_empty() || items.len() > MAX_PROJECTS_PER_REQUEST {
        return Err(ApiError::invalid_body(
            "projects",
            format!("must hold 1-{MAX_PROJECTS_PER_REQUEST} repositories"),
        ));
    }
    let (mut errors, mut repeated) = (Vec::new(), Vec::new());
    let mut seen: HashMap<(Uuid, &str), usize> = HashMap::new();
    for (i, p) in items.iter().enumerate() {
        let fields = [
            (
                "provider_repo_id",
                &p.provider_repo_id,
                constraints::REPO_TEXT,
            ),
            ("full_name", &p.full_name, constraints::REPO_TEXT),
            ("clone_url", &p.clone_url, constraints::CLONE_URL),
            ("default_branch", &p.default_branch, constraints::BRANCH),
        ];
        for (name, value, rule) in fields {
            if let Err(expected) = rule.verdict(value) {
                errors.push(FieldError {
                    field: format!("projects[{i}].{name}"),
                    message: format!("must be {expected}"),
                });
            }
        }
        if let Some(first) = seen.insert((p.connection_id, p.provider_repo_id.as_str()), i) {
            repeated.push(FieldError {
                field: format!("projects[{i}].provider_repo_id"),
                message: format!("repeats projects[{first}] (same connection and repository)"),
            });
        }
    }
    if let Some(first) = errors.first() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("{}: {}", first.field, first.message),
        )
        .with_fields(errors));
    }
    if let Some(first) = repeated.first() {
        // Each item is valid; together they would add one repository twice, as when it was
        // already added (409), which a schema cannot state about an array of objects.
        return Err(ApiError::conflict(
            "duplicate_project",
            format!("{}: {}", first.field, first.message),
        )
        .with_fields(repeated));
    }
    Ok(())
}

/// Refuses `file://` projects the scheduler could not clone: outside the directories of
/// `PICKET_LOCAL_REPO_DIRS` (see [`crate::local_repos`]).
fn check_local(
    dirs: &crate::local_repos::LocalRepoDirs,
    items: &[NewProjectItem],
) -> Result<(), ApiError> {
    let errors: Vec<FieldError> = items
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            dirs.check(&p.clone_url).err().map(|message| FieldError {
                field: format!("projects[{i}].clone_url"),
                message,
            })
        })
        .collect();
    match errors.first() {
        None => Ok(()),
        Some(first) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "local_repository_refused",
            format!("{}: {}", first.field, first.message),
        )
        .with_fields(errors)),
    }
}

/// Add one or many repositories (admin), all or none. Each gets a weekly full-scan slot and its
/// initial full scan queued.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects",
    request_body = AddProjects,
    responses(
        (status = 201, body = ProjectList),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A connection is not the org's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`project_exists`: a repository was already added; `duplicate_project`: the request names one twice", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_body`, or `local_repository_refused`: a `file://` repository outside the directories of PICKET_LOCAL_REPO_DIRS", body = Problem, content_type = "application/problem+json"),
    ))]
async fn add_projects(
    Admin(caller): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AddProjects>,
) -> Result<(StatusCode, Json<ProjectList>), ApiError> {
    validate(&body.projects)?;
    check_local(state.local_repos(), &body.projects)?;
    let new: Vec<NewProject> = body
        .projects
        .iter()
        .map(|p| NewProject {
            connection_id: ConnectionId(p.connection_id),
            provider_repo_id: p.provider_repo_id.clone(),
            full_name: p.full_name.clone(),
            clone_url: p.clone_url.clone(),
            default_branch: p.default_branch.clone(),
        })
        .collect();
    let mut tx = state.db().pool().begin().await?;
    let outcome = projects::add_many(
        &mut tx,
        caller.org_id,
        &new,
        Some(caller.token_id),
        OffsetDateTime::now_utc(),
    )
    .await?;
    let added = match outcome {
        Ok(added) => added,
        // Returning drops `tx`, which rolls back: nothing was written.
        Err(AddRefused::UnknownConnections(ids)) => {
            let fields = body
                .projects
                .iter()
                .enumerate()
                .filter(|(_, p)| ids.contains(&ConnectionId(p.connection_id)))
                .map(|(i, p)| FieldError {
                    field: format!("projects[{i}].connection_id"),
                    message: format!("connection {} not found", p.connection_id),
                });
            return Err(ApiError::not_found("connection").with_fields(fields));
        }
        Err(AddRefused::AlreadyAdded(existing)) => {
            let fields: Vec<FieldError> = body
                .projects
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    existing
                        .iter()
                        .find(|e| {
                            e.connection_id.0 == p.connection_id
                                && e.provider_repo_id == p.provider_repo_id
                        })
                        .map(|e| FieldError {
                            field: format!("projects[{i}].provider_repo_id"),
                            message: format!(
                                "repository {} is already project {}",
                                e.full_name, e.project_id
                            ),
                        })
                })
                .collect();
            let names: Vec<&str> = existing.iter().map(|e| e.full_name.as_str()).collect();
            return Err(ApiError::conflict(
                "project_exists",
                format!("already added: {}", names.join(", ")),
            )
            .with_fields(fields));
        }
    };
    tx.commit().await?;
    tracing::info!(count = added.len(), "projects added, initial scans queued");
    Ok((
        StatusCode::CREATED,
        Json(ProjectList {
            projects: added.into_iter().map(|a| a.project.into()).collect(),
        }),
    ))
}

/// One project with its latest scan.
#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "projects",
    params(ApiPath<ProjectId>),
    responses(
        (status = 200, body = Project),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_project(
    caller: Caller,
    ApiPath(id): ApiPath<ProjectId>,
    State(state): State<AppState>,
) -> Result<Json<Project>, ApiError> {
    let p = projects::get(state.db().pool(), caller.org_id, id)
        .await
        .map_err(|e| not_found_as(e, "project"))?;
    Ok(Json(p.into()))
}

/// Rename a project, turn its full or diff-aware scans on or off, set its path ignores or move
/// its weekly full scan (admin).
#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "projects",
    params(ApiPath<ProjectId>),
    request_body = UpdateProject,
    responses(
        (status = 200, body = Project),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_project(
    Admin(caller): Admin,
    ApiPath(id): ApiPath<ProjectId>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<UpdateProject>,
) -> Result<Json<Project>, ApiError> {
    if let Some(patterns) = &body.path_ignores {
        check_path_ignores(patterns)?;
    }
    if let Some(name) = &body.full_name {
        constraints::REPO_TEXT.check("full_name", name)?;
    }
    let weekly_slot = body
        .weekly_scan
        .as_ref()
        .map(WeeklyScanChange::slot)
        .transpose()?;
    let changes = ProjectUpdate {
        full_name: body.full_name,
        full_scans_enabled: body.full_scans_enabled,
        diff_scans_enabled: body.diff_scans_enabled,
        path_ignores: body.path_ignores,
        weekly_slot,
    };
    let p = projects::update(state.db().pool(), caller.org_id, id, &changes)
        .await
        .map_err(|e| not_found_as(e, "project"))?;
    tracing::info!(project_id = %id, ?changes, "project settings changed");
    Ok(Json(p.into()))
}

/// Remove a project (admin): its scans, findings and logs go with it; an active scan of it stops.
/// The repository itself is untouched, and adding it again starts afresh.
#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "projects",
    params(ApiPath<ProjectId>),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_project(
    Admin(caller): Admin,
    ApiPath(id): ApiPath<ProjectId>,
    State(state): State<AppState>,
) -> Result<StatusCode, ApiError> {
    projects::delete(state.db().pool(), caller.org_id, id)
        .await
        .map_err(|e| not_found_as(e, "project"))?;
    tracing::info!(project_id = %id, "project removed");
    Ok(StatusCode::NO_CONTENT)
}
