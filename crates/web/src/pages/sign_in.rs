//! Sign-in with an API token or a one-time link, and sign-out.

use super::{render, Layout};
use crate::session::{self, safe_next, Session};
use crate::WebState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use picket_db::{sessions, tokens};
use secrecy::ExposeSecret;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    layout: Layout,
    next: String,
    message: Option<String>,
    error: bool,
}

#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    ended: Option<String>,
}

/// `GET /sign-in`.
pub async fn form(Query(q): Query<SignInQuery>) -> Response {
    let message = q.ended.is_some().then(|| {
        "Your session has ended (signed out, expired, or its token was revoked). Sign in again."
            .to_owned()
    });
    render(
        StatusCode::OK,
        &SignInPage {
            layout: Layout::new("Sign in", "", None),
            next: safe_next(q.next.as_deref()),
            message,
            error: false,
        },
    )
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

impl std::fmt::Debug for TokenForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenForm")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// `POST /sign-in`: a live API token opens a session acting as it.
pub async fn with_token(State(state): State<WebState>, Form(form): Form<TokenForm>) -> Response {
    let next = safe_next(form.next.as_deref());
    let token = form.token.trim();
    let record = if tokens::looks_like_token(token) {
        match tokens::authenticate(state.db().pool(), &tokens::hash(token)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "sign-in: looking up a token");
                return super::error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Picket's database did not answer",
                    "Try again in a moment.",
                    None,
                );
            }
        }
    } else {
        None
    };
    let Some(record) = record else {
        return render(
            StatusCode::UNAUTHORIZED,
            &SignInPage {
                layout: Layout::new("Sign in", "", None),
                next,
                message: Some("That token is unknown, revoked or expired.".to_owned()),
                error: true,
            },
        );
    };
    open_session(&state, record.org_id, record.id, &next).await
}

async fn open_session(
    state: &WebState,
    org: picket_core::OrgId,
    token: picket_core::TokenId,
    next: &str,
) -> Response {
    let lifetime = state.cfg.session_lifetime;
    match sessions::create(state.db().pool(), org, token, lifetime).await {
        Ok(id) => {
            tracing::info!(%org, token_id = %token, "signed in");
            let mut resp = Redirect::to(next).into_response();
            resp.headers_mut().insert(
                header::SET_COOKIE,
                session::set_cookie(id.expose_secret(), lifetime),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in: opening a session");
            super::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Picket's database did not answer",
                "Try again in a moment.",
                None,
            )
        }
    }
}

#[derive(Template)]
#[template(path = "sign_in_link.html")]
struct LinkPage {
    layout: Layout,
    code: String,
}

#[derive(Deserialize)]
pub struct LinkQuery {
    code: Option<String>,
}

impl std::fmt::Debug for LinkQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkQuery")
    }
}

/// `GET /sign-in/link?code=…`: a page with one button, so that a link preview or prefetch cannot
/// use the code up.
pub async fn link_form(Query(q): Query<LinkQuery>) -> Response {
    match q.code {
        Some(code) if sessions::looks_like(sessions::SIGN_IN_PREFIX, &code) => render(
            StatusCode::OK,
            &LinkPage {
                layout: Layout::new("Sign in", "", None),
                code,
            },
        ),
        _ => link_refused(),
    }
}

fn link_refused() -> Response {
    render(
        StatusCode::UNAUTHORIZED,
        &SignInPage {
            layout: Layout::new("Sign in", "", None),
            next: "/".to_owned(),
            message: Some(
                "That sign-in link is not valid: it was used already, it expired, or its token was revoked. Sign in with a token, or restart `picket run` for a new link."
                    .to_owned(),
            ),
            error: true,
        },
    )
}

/// `POST /sign-in/link`: uses the code up and opens a session for its token.
pub async fn with_link(State(state): State<WebState>, Form(q): Form<LinkQuery>) -> Response {
    let Some(code) = q
        .code
        .filter(|c| sessions::looks_like(sessions::SIGN_IN_PREFIX, c))
    else {
        return link_refused();
    };
    match sessions::use_sign_in_link(state.db().pool(), &sessions::hash(&code)).await {
        Ok(Some((org, token))) => open_session(&state, org, token, "/projects").await,
        Ok(None) => link_refused(),
        Err(e) => {
            tracing::error!(error = %e, "sign-in link");
            super::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Picket's database did not answer",
                "Try again in a moment.",
                None,
            )
        }
    }
}

/// `POST /sign-out`: deletes the session and its cookie.
pub async fn sign_out(State(state): State<WebState>, _: Session, headers: HeaderMap) -> Response {
    if let Some(id) = session::cookie_session_id(&headers) {
        if let Err(e) = sessions::delete(state.db().pool(), &sessions::hash(id)).await {
            tracing::error!(error = %e, "sign-out");
        }
    }
    let mut resp = Redirect::to("/sign-in").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    resp
}
