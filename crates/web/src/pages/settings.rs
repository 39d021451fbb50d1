//! The Settings page: the org's scan settings (`PATCH /api/v1/org`) and API tokens (listed,
//! created and shown once, revoked, through `/api/v1/tokens`; an admin's). A revoked token's
//! sessions end at their next request.

use super::{render, Layout};
use crate::api::Refusal;
use crate::format::{self, When};
use crate::session::Session;
use crate::WebState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Debug, Deserialize)]
struct Org {
    name: String,
    max_concurrent_scans: i32,
    pr_scan_timeout_secs: i32,
    inline_suppression: bool,
    store_matched_lines: bool,
}

#[derive(Debug, Deserialize)]
struct TokenList {
    tokens: Vec<Token>,
}

#[derive(Debug, Deserialize)]
struct Token {
    id: String,
    name: String,
    role: String,
    prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    last_used_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub prefix: String,
    pub created: When,
    pub last_used: Option<When>,
    pub revoked: Option<When>,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    csrf: String,
    org_name: String,
    max_concurrent_scans: i32,
    pr_timeout_minutes: i32,
    inline_suppression: bool,
    store_matched_lines: bool,
    admin: bool,
    tokens: Vec<TokenView>,
    /// A token just created: shown once, here.
    created: Option<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SettingsQuery {
    saved: Option<String>,
    revoked: Option<String>,
}

async fn show(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    created: Option<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let org: Org = match state
        .api
        .call(session.caller, Method::GET, "/api/v1/org", None)
        .await
    {
        Ok(o) => o,
        Err(r) => return refused_page(session, &r),
    };
    let now = OffsetDateTime::now_utc();
    let tokens = if session.is_admin() {
        match state
            .api
            .call::<TokenList>(session.caller, Method::GET, "/api/v1/tokens", None)
            .await
        {
            Ok(list) => list
                .tokens
                .into_iter()
                .map(|t| TokenView {
                    current: t.id == session.caller.token_id.to_string(),
                    id: t.id,
                    name: t.name,
                    role: t.role,
                    prefix: t.prefix,
                    created: format::when(t.created_at, now),
                    last_used: t.last_used_at.map(|w| format::when(w, now)),
                    revoked: t.revoked_at.map(|w| format::when(w, now)),
                })
                .collect(),
            Err(r) => return refused_page(session, &r),
        }
    } else {
        Vec::new()
    };
    render(
        status,
        &SettingsPage {
            layout: Layout::new("Settings", "settings", Some(session)),
            csrf: session.csrf.clone(),
            org_name: org.name,
            max_concurrent_scans: org.max_concurrent_scans,
            pr_timeout_minutes: org.pr_scan_timeout_secs / 60,
            inline_suppression: org.inline_suppression,
            store_matched_lines: org.store_matched_lines,
            admin: session.is_admin(),
            tokens,
            created,
            notice,
            error,
        },
    )
}

fn refused_page(session: &Session, r: &Refusal) -> Response {
    super::error_page(
        r.status(),
        "Settings could not be read",
        &r.message(),
        Some(session),
    )
}

/// `GET /settings`.
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<SettingsQuery>,
) -> Response {
    let notice = match (q.saved, q.revoked) {
        (Some(_), _) => Some("Settings saved.".to_owned()),
        (_, Some(_)) => Some("Token revoked: its sessions have ended.".to_owned()),
        _ => None,
    };
    show(&state, &session, StatusCode::OK, None, notice, None).await
}

#[derive(Debug, Deserialize)]
pub struct OrgForm {
    #[serde(default)]
    max_concurrent_scans: String,
    #[serde(default)]
    pr_timeout_minutes: String,
    // Checkboxes: a browser sends a checked box only, so absent is off.
    #[serde(default)]
    inline_suppression: Option<String>,
    #[serde(default)]
    store_matched_lines: Option<String>,
}

/// `POST /settings/org`.
pub async fn save_org(
    State(state): State<WebState>,
    session: Session,
    axum::Form(form): axum::Form<OrgForm>,
) -> Response {
    let (Ok(max), Ok(minutes)) = (
        form.max_concurrent_scans.trim().parse::<i32>(),
        form.pr_timeout_minutes.trim().parse::<i32>(),
    ) else {
        return show(
            &state,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            None,
            Some("Both settings are whole numbers.".to_owned()),
        )
        .await;
    };
    let body = serde_json::json!({
        "max_concurrent_scans": max,
        "pr_scan_timeout_secs": minutes.saturating_mul(60),
        "inline_suppression": form.inline_suppression.is_some(),
        "store_matched_lines": form.store_matched_lines.is_some(),
    });
    match state
        .api
        .call::<serde_json::Value>(session.caller, Method::PATCH, "/api/v1/org", Some(body))
        .await
    {
        Ok(_) => Redirect::to("/settings?saved=1").into_response(),
        Err(r) => fail(&state, &session, r).await,
    }
}

async fn fail(state: &WebState, session: &Session, r: Refusal) -> Response {
    let status = r.status();
    let message = r.say("change settings or tokens");
    show(state, session, status, None, None, Some(message)).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

impl std::fmt::Debug for TokenForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenForm")
            .field("name", &self.name)
            .finish()
    }
}

#[derive(Deserialize)]
struct Created {
    token: String,
    name: String,
}

/// `POST /settings/tokens`: creates a token and shows it once on the page this answers.
pub async fn create_token(
    State(state): State<WebState>,
    session: Session,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    let body = serde_json::json!({ "name": form.name.trim(), "role": form.role });
    match state
        .api
        .call::<Created>(session.caller, Method::POST, "/api/v1/tokens", Some(body))
        .await
    {
        Ok(c) => {
            show(
                &state,
                &session,
                StatusCode::CREATED,
                Some((c.name, c.token)),
                None,
                None,
            )
            .await
        }
        Err(r) => fail(&state, &session, r).await,
    }
}

/// `POST /settings/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return show(
            &state,
            &session,
            StatusCode::NOT_FOUND,
            None,
            None,
            Some("No such token.".to_owned()),
        )
        .await;
    };
    match state
        .api
        .call::<serde_json::Value>(
            session.caller,
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            None,
        )
        .await
    {
        // Revoking the session's own token ends this session too.
        Ok(_) if id == session.caller.token_id.0 => {
            Redirect::to("/sign-in?ended=1").into_response()
        }
        Ok(_) => Redirect::to("/settings?revoked=1").into_response(),
        Err(r) => fail(&state, &session, r).await,
    }
}
