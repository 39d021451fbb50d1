//! The Project page: the project's settings (scan switches, through `PATCH /api/v1/projects/{id}`),
//! its open findings on the default branch, and its scan history, newest first.

use super::{render, Layout};
use crate::api::Refusal;
use crate::format::{self, When};
use crate::pages::projects::{row_view, RowView};
use crate::session::Session;
use crate::WebState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use picket_core::{ProjectId, ScanId};
use picket_db::{overview, scans, DbError};
use serde::Deserialize;
use time::OffsetDateTime;

/// Scans per page of the history.
const HISTORY_PAGE: i64 = 50;

#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub id: String,
    pub kind: &'static str,
    pub trigger: &'static str,
    pub commit: Option<String>,
    pub pr_number: Option<i32>,
    pub state: &'static str,
    pub state_label: &'static str,
    pub queued: When,
    pub took: Option<String>,
    pub error_code: Option<String>,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    layout: Layout,
    csrf: String,
    row: RowView,
    clone_url: String,
    history: Vec<HistoryRow>,
    older_href: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// The last scan of the previous page.
    before: Option<String>,
    saved: Option<String>,
}

async fn show(
    state: &WebState,
    session: &Session,
    id: ProjectId,
    before: Option<ScanId>,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let pool = state.db().pool();
    let org = session.caller.org_id;
    let row = match overview::project_rows(pool, org, &[id]).await {
        Ok(mut rows) if !rows.is_empty() => rows.remove(0),
        Ok(_) => return not_found(session),
        Err(e) => return super::db_unavailable(&e, session),
    };
    let history = match scans::list_for_project(pool, org, id, before, HISTORY_PAGE + 1).await {
        Ok(h) => h,
        Err(DbError::NotFound) => return not_found(session),
        Err(e) => return super::db_unavailable(&e, session),
    };
    let now = OffsetDateTime::now_utc();
    let more = history.len() as i64 > HISTORY_PAGE;
    let history: Vec<HistoryRow> = history
        .iter()
        .take(HISTORY_PAGE as usize)
        .map(|s| HistoryRow {
            id: s.id.to_string(),
            kind: s.kind.as_str(),
            trigger: s.trigger.as_str(),
            commit: s.commit_sha.as_ref().map(|c| c.chars().take(12).collect()),
            pr_number: s.pr_number,
            state: s.state.as_str(),
            state_label: format::state_label(s.state),
            queued: format::when(s.queued_at, now),
            took: s.started_at.map(|t| format::elapsed(t, s.finished_at, now)),
            error_code: s.error_code.clone(),
        })
        .collect();
    let older_href = more
        .then(|| {
            history
                .last()
                .map(|h| format!("/projects/{id}?before={}", h.id))
        })
        .flatten();
    render(
        status,
        &ProjectPage {
            layout: Layout::new(row.full_name.clone(), "projects", Some(session)),
            csrf: session.csrf.clone(),
            clone_url: row.clone_url.clone(),
            row: row_view(&row, now),
            history,
            older_href,
            notice,
            error,
        },
    )
}

fn not_found(session: &Session) -> Response {
    super::error_page(
        StatusCode::NOT_FOUND,
        "No such project",
        "This project does not exist in your org, or it was removed.",
        Some(session),
    )
}

/// `GET /projects/{id}`.
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let Ok(id) = id.parse::<ProjectId>() else {
        return not_found(&session);
    };
    let before = q.before.as_deref().and_then(|b| b.parse().ok());
    let notice = q.saved.map(|_| "Settings saved.".to_owned());
    show(&state, &session, id, before, StatusCode::OK, notice, None).await
}

#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    full_scans: Option<String>,
    diff_scans: Option<String>,
}

/// `POST /projects/{id}/settings`: the scan switches (an unchecked box is absent from the form).
pub async fn settings(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<SettingsForm>,
) -> Response {
    let Ok(id) = id.parse::<ProjectId>() else {
        return not_found(&session);
    };
    let body = serde_json::json!({
        "full_scans_enabled": form.full_scans.is_some(),
        "diff_scans_enabled": form.diff_scans.is_some(),
    });
    let answer: Result<serde_json::Value, Refusal> = state
        .api
        .call(
            session.caller,
            Method::PATCH,
            &format!("/api/v1/projects/{id}"),
            Some(body),
        )
        .await;
    match answer {
        Ok(_) => Redirect::to(&format!("/projects/{id}?saved=1")).into_response(),
        Err(r) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
            let message = if r.code == "forbidden" {
                "Your token's role may not change project settings; ask an admin.".to_owned()
            } else {
                r.message()
            };
            show(&state, &session, id, None, status, None, Some(message)).await
        }
    }
}
