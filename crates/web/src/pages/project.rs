//! The Project page: the project's settings (name, scan switches, weekly slot, path ignores,
//! through `PATCH /api/v1/projects/{id}`),
//! its open findings on the default branch, and its scan history, newest first.

use super::{render, Layout};
use crate::api::Refusal;
use crate::format::{self, When};
use crate::pages::projects::{row_view, Choice, RowView};
use crate::session::Session;
use crate::WebState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use picket_core::{ProjectId, ScanId};
use picket_db::{overview, projects, scans, DbError};
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
    /// The weekly slot as the settings form shows it: weekday choices and `HH:MM:SS` (UTC).
    weekdays: Vec<Choice>,
    weekly_time: String,
    /// The project's path ignores, one a line.
    path_ignores: String,
    history: Vec<HistoryRow>,
    older_href: Option<String>,
    kinds: Vec<Choice>,
    states: Vec<Choice>,
    windows: Vec<Choice>,
    filtered: bool,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct HistoryQuery {
    /// The last scan of the previous page.
    before: Option<String>,
    saved: Option<String>,
    /// `full` or `diff`.
    kind: Option<String>,
    state: Option<String>,
    /// `24h`, `7d`, `30d`.
    since: Option<String>,
}

/// The history's time windows.
const WINDOWS: [(&str, &str, i64); 3] = [
    ("24h", "last 24 hours", 1),
    ("7d", "last 7 days", 7),
    ("30d", "last 30 days", 30),
];

impl HistoryQuery {
    fn filter(&self, now: OffsetDateTime) -> scans::ScanFilter {
        scans::ScanFilter {
            kind: self.kind.as_deref().and_then(|k| k.parse().ok()),
            state: self.state.as_deref().and_then(|k| k.parse().ok()),
            since: WINDOWS
                .iter()
                .find(|(k, _, _)| Some(*k) == self.since.as_deref())
                .map(|(_, _, days)| now - time::Duration::days(*days)),
        }
    }

    /// The filter's query string (no cursor).
    fn query(&self) -> String {
        let mut p: Vec<(&str, &str)> = Vec::new();
        for (k, v) in [
            ("kind", &self.kind),
            ("state", &self.state),
            ("since", &self.since),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                p.push((k, v));
            }
        }
        serde_urlencoded::to_string(&p).unwrap_or_default()
    }
}

async fn show(
    state: &WebState,
    session: &Session,
    id: ProjectId,
    q: &HistoryQuery,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let before: Option<ScanId> = q.before.as_deref().and_then(|b| b.parse().ok());
    let pool = state.db().pool();
    let org = session.caller.org_id;
    let row = match overview::project_rows(pool, org, &[id]).await {
        Ok(mut rows) if !rows.is_empty() => rows.remove(0),
        Ok(_) => return not_found(session),
        Err(e) => return super::db_unavailable(&e, session),
    };
    let project = match projects::get(pool, org, id).await {
        Ok(p) => p,
        Err(DbError::NotFound) => return not_found(session),
        Err(e) => return super::db_unavailable(&e, session),
    };
    let weekdays = WEEKDAYS
        .iter()
        .enumerate()
        .map(|(i, (value, label))| Choice {
            value,
            label,
            selected: i as i16 == project.weekly_slot.weekday_index(),
        })
        .collect();
    let t = project.weekly_slot.time;
    let weekly_time = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    let filter = q.filter(OffsetDateTime::now_utc());
    let history =
        match scans::list_for_project(pool, org, id, &filter, before, HISTORY_PAGE + 1).await {
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
    let filters = q.query();
    let older_href = more
        .then(|| {
            history.last().map(|h| {
                let mut href = format!("/projects/{id}?before={}", h.id);
                if !filters.is_empty() {
                    href.push('&');
                    href.push_str(&filters);
                }
                href
            })
        })
        .flatten();
    let kinds = [("full", "full"), ("diff", "diff (pull request)")]
        .iter()
        .map(|(v, l)| Choice {
            value: v,
            label: l,
            selected: q.kind.as_deref() == Some(*v),
        })
        .collect();
    let states = picket_core::ScanState::ALL
        .iter()
        .map(|s| Choice {
            value: s.as_str(),
            label: format::state_label(*s),
            selected: q.state.as_deref() == Some(s.as_str()),
        })
        .collect();
    let windows = WINDOWS
        .iter()
        .map(|(v, l, _)| Choice {
            value: v,
            label: l,
            selected: q.since.as_deref() == Some(*v),
        })
        .collect();
    let filtered = !filters.is_empty();
    render(
        status,
        &ProjectPage {
            layout: Layout::new(row.full_name.clone(), "projects", Some(session)),
            csrf: session.csrf.clone(),
            clone_url: row.clone_url.clone(),
            row: row_view(&row, now),
            weekdays,
            weekly_time,
            path_ignores: project.path_ignores.join("\n"),
            history,
            older_href,
            kinds,
            states,
            windows,
            filtered,
            notice,
            error,
        },
    )
}

/// The project's page again, saying why the API refused `action`.
async fn refused(
    state: &WebState,
    session: &Session,
    id: ProjectId,
    r: &Refusal,
    action: &str,
) -> Response {
    let q = HistoryQuery::default();
    show(
        state,
        session,
        id,
        &q,
        r.status(),
        None,
        Some(r.say(action)),
    )
    .await
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
    let notice = q.saved.as_ref().map(|_| "Settings saved.".to_owned());
    show(&state, &session, id, &q, StatusCode::OK, notice, None).await
}

/// The weekly slot's days, as the API names them, Monday first (the stored index).
const WEEKDAYS: [(&str, &str); 7] = [
    ("monday", "Monday"),
    ("tuesday", "Tuesday"),
    ("wednesday", "Wednesday"),
    ("thursday", "Thursday"),
    ("friday", "Friday"),
    ("saturday", "Saturday"),
    ("sunday", "Sunday"),
];

#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    full_scans: Option<String>,
    diff_scans: Option<String>,
    /// A new name (empty: unchanged).
    full_name: Option<String>,
    /// The weekly slot (both, or neither: unchanged).
    weekly_weekday: Option<String>,
    weekly_time: Option<String>,
    /// Gitignore patterns, one a line (blank lines dropped); absent: unchanged.
    path_ignores: Option<String>,
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
    let mut body = serde_json::json!({
        "full_scans_enabled": form.full_scans.is_some(),
        "diff_scans_enabled": form.diff_scans.is_some(),
    });
    if let Some(name) = form
        .full_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        body["full_name"] = name.into();
    }
    if let (Some(day), Some(time)) = (&form.weekly_weekday, &form.weekly_time) {
        body["weekly_scan"] = serde_json::json!({ "weekday": day, "time": time.trim() });
    }
    if let Some(text) = &form.path_ignores {
        let patterns: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        body["path_ignores"] = patterns.into();
    }
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
        Err(r) => refused(&state, &session, id, &r, "change project settings").await,
    }
}

#[derive(Template)]
#[template(path = "project_remove.html")]
struct RemovePage {
    layout: Layout,
    csrf: String,
    id: String,
    name: String,
    scans: usize,
}

/// `GET /projects/{id}/remove`: asks before removing.
pub async fn confirm_remove(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<ProjectId>() else {
        return not_found(&session);
    };
    let pool = state.db().pool();
    let row = match overview::project_rows(pool, session.caller.org_id, &[id]).await {
        Ok(mut rows) if !rows.is_empty() => rows.remove(0),
        Ok(_) => return not_found(&session),
        Err(e) => return super::db_unavailable(&e, &session),
    };
    let scans = match scans::list_for_project(
        pool,
        session.caller.org_id,
        id,
        &Default::default(),
        None,
        1000,
    )
    .await
    {
        Ok(s) => s.len(),
        Err(e) => return super::db_unavailable(&e, &session),
    };
    render(
        StatusCode::OK,
        &RemovePage {
            layout: Layout::new(
                format!("Remove {}", row.full_name),
                "projects",
                Some(&session),
            ),
            csrf: session.csrf.clone(),
            id: id.to_string(),
            name: row.full_name,
            scans,
        },
    )
}

/// `POST /projects/{id}/remove`.
pub async fn remove(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<ProjectId>() else {
        return not_found(&session);
    };
    match state
        .api
        .call::<serde_json::Value>(
            session.caller,
            Method::DELETE,
            &format!("/api/v1/projects/{id}"),
            None,
        )
        .await
    {
        Ok(_) => Redirect::to("/projects?removed=1").into_response(),
        Err(r) => refused(&state, &session, id, &r, "remove projects").await,
    }
}
