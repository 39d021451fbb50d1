//! One module per page. Each page is an askama template (`templates/`) over a view struct built
//! here; [`render`] answers it with the headers every page carries.

pub mod connections;
pub mod findings;
pub mod not_added;
pub mod policies;
pub mod project;
pub mod projects;
pub mod scan;
pub mod settings;
pub mod sign_in;

use crate::assets;
use crate::session::Session;
use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

/// What the signed-in header shows.
#[derive(Debug, Clone)]
pub struct Who {
    pub token_name: String,
    pub role: &'static str,
    pub csrf: String,
}

/// What every page's frame needs.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    /// Which main navigation entry is current.
    pub nav: &'static str,
    pub session: Option<Who>,
    pub htmx: &'static str,
    pub htmx_integrity: &'static str,
    pub htmx_sse: &'static str,
    pub htmx_sse_integrity: &'static str,
    pub script: &'static str,
    pub script_integrity: &'static str,
    pub style: &'static str,
    pub favicon: &'static str,
}

impl Layout {
    pub fn new(title: impl Into<String>, nav: &'static str, session: Option<&Session>) -> Layout {
        Layout {
            title: title.into(),
            nav,
            session: session.map(|s| Who {
                token_name: s.token_name.clone(),
                role: s.caller.role.as_str(),
                csrf: s.csrf.clone(),
            }),
            htmx: assets::HTMX.path,
            htmx_integrity: assets::integrity(&assets::HTMX),
            htmx_sse: assets::HTMX_SSE.path,
            htmx_sse_integrity: assets::integrity(&assets::HTMX_SSE),
            script: assets::SCRIPT.path,
            script_integrity: assets::integrity(&assets::SCRIPT),
            style: assets::STYLE.path,
            favicon: assets::FAVICON.path,
        }
    }
}

/// The Content-Security-Policy of every page but its `form-action`: only this origin's scripts,
/// styles and connections; no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `template` as an HTML response with `status`; its forms post to this origin only.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    render_with_csp(status, template, "form-action 'self'")
}

/// [`render`] with another `form-action` directive (the manifest page posts to GitHub).
pub fn render_with_csp(
    status: StatusCode,
    template: &impl Template,
    form_action: &str,
) -> Response {
    let csp = HeaderValue::from_str(&format!("{CSP}; {form_action}"))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    match template.render() {
        Ok(html) => (
            status,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CONTENT_SECURITY_POLICY, csp),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("same-origin"),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    detail: String,
    back: String,
}

/// A page that says what went wrong, with `status`.
pub fn error_page(
    status: StatusCode,
    heading: &str,
    detail: &str,
    session: Option<&Session>,
) -> Response {
    render(
        status,
        &ErrorPage {
            layout: Layout::new(heading, "", session),
            heading: heading.to_owned(),
            detail: detail.to_owned(),
            back: "/".to_owned(),
        },
    )
}

/// A page's answer to a failure of the database: 503, said plainly.
pub fn db_unavailable(e: &picket_db::DbError, session: &Session) -> Response {
    tracing::error!(error = %e, "a page's query failed");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Picket's database did not answer",
        "Try again in a moment. If this persists, check the server's log.",
        Some(session),
    )
}

/// `/`: the Projects page.
pub async fn home() -> Redirect {
    Redirect::to("/projects")
}

/// A query or form number that is ignored (read as absent) when it does not parse, so a mangled
/// URL shows the page instead of a bare error.
pub fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
{
    let raw: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(raw.and_then(|r| r.trim().parse().ok()))
}

/// A stream fed by `produce` through a small channel: the producer ends when the client goes.
pub fn async_stream<T, F, Fut>(produce: F) -> impl futures::Stream<Item = T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(produce(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
