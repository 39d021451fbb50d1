//! Sessions and CSRF.
//!
//! The session id lives in the cookie [`COOKIE`] (`__Host-` prefix: Secure, `Path=/`, no
//! `Domain`; also HttpOnly and SameSite=Lax). Browsers keep Secure cookies on `http://localhost`
//! and `http://127.0.0.1`, so `picket run`'s plain-HTTP UI works there; anywhere else the UI must
//! be served over HTTPS. The CSRF token is derived from the session id (SHA-256 of a fixed label
//! and the id), so it is bound to the session and stored nowhere.
//!
//! [`guard`] runs before every page route: it refuses a state-changing request from another
//! origin, looks the session up once, refuses a state-changing request of a signed-in browser
//! that lacks the session's CSRF token, and hands the [`Session`] to the handler.

use crate::WebState;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use http_body_util::BodyExt;
use picket_api::extract::Caller;
use picket_core::Role;
use picket_db::sessions;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "__Host-picket_session";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// The header that carries the CSRF token (htmx sends it on every request, from `hx-headers`).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Largest form body the guard reads to find the CSRF field, in bytes.
const FORM_LIMIT: usize = 2 * 1024 * 1024;

/// A signed-in browser: the token its session acts as, and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    /// The name of the token the session acts as (shown in the header).
    pub token_name: String,
    pub csrf: String,
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.caller.role == Role::Admin
    }
}

/// The CSRF token of the session with this id.
pub fn csrf_token(session_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"picket-web-csrf\0")
        .chain_update(session_id.as_bytes())
        .finalize();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// The `Set-Cookie` value that stores `session_id` for `max_age`.
pub fn set_cookie(session_id: &str, max_age: std::time::Duration) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={session_id}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        max_age.as_secs()
    ))
    .expect("a session id is a header-safe token")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
    ))
    .expect("static")
}

/// The session id the request's cookie carries, if it has the shape of one.
pub fn cookie_session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| sessions::looks_like(sessions::SESSION_PREFIX, v))
}

/// Whether a state-changing request comes from this server's own pages. Browsers send
/// `Sec-Fetch-Site` (then only `same-origin` passes) or, older ones, `Origin` on every
/// cross-origin POST; a request with neither is not a browser's cross-site request.
pub fn same_origin(headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    match public_origin {
        Some(expected) => origin.eq_ignore_ascii_case(expected.trim_end_matches('/')),
        None => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            match (origin.split_once("://"), host) {
                (Some(("http" | "https", authority)), Some(host)) => {
                    authority.eq_ignore_ascii_case(host)
                }
                _ => false,
            }
        }
    }
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A 403 page for a refused state-changing request.
fn forbidden(why: &str) -> Response {
    crate::pages::error_page(StatusCode::FORBIDDEN, "Request refused", why, None)
}

/// Runs before every page: see the module's description. Sign-in forms (no session yet) need
/// only the origin check.
pub async fn guard(
    axum::extract::State(state): axum::extract::State<WebState>,
    req: Request,
    next: Next,
) -> Response {
    let changing = is_state_changing(req.method());
    if changing && !same_origin(req.headers(), state.cfg.public_origin.as_deref()) {
        tracing::warn!("refused a state-changing request from another origin");
        return forbidden("This request did not come from Picket's own pages.");
    }
    let session_id = cookie_session_id(req.headers()).map(str::to_owned);
    let session = match &session_id {
        Some(id) => match sessions::authenticate(state.db().pool(), &sessions::hash(id)).await {
            Ok(found) => found.map(|s| Session {
                caller: Caller {
                    token_id: s.token_id,
                    org_id: s.org_id,
                    role: s.role,
                },
                token_name: s.token_name,
                csrf: csrf_token(id),
            }),
            Err(e) => {
                tracing::error!(error = %e, "looking up a session");
                return crate::pages::error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Picket's database is not answering",
                    "Try again in a moment.",
                    None,
                );
            }
        },
        None => None,
    };
    let mut req = req;
    if changing {
        if let Some(s) = &session {
            let (parts, body) = req.into_parts();
            let (presented, body) = match presented_csrf(&parts.headers, body).await {
                Ok(found) => found,
                Err(resp) => return resp,
            };
            let ok = presented.is_some_and(|p| p.as_bytes().ct_eq(s.csrf.as_bytes()).into());
            if !ok {
                tracing::warn!("refused a state-changing request without the session's CSRF token");
                return forbidden("This request did not carry this session's form token. Reload the page and try again.");
            }
            req = Request::from_parts(parts, body);
        }
    }
    if let Some(s) = session {
        tracing::Span::current().record("org_id", tracing::field::display(s.caller.org_id));
        req.extensions_mut().insert(s);
    } else if session_id.is_some() {
        req.extensions_mut().insert(SessionEnded);
    }
    next.run(req).await
}

/// The cookie named a session that no longer works (signed out, expired, or its token revoked).
#[derive(Debug, Clone, Copy)]
pub struct SessionEnded;

/// The CSRF token the request presents (header, or the form field of a url-encoded body) and the
/// body to hand on.
async fn presented_csrf(
    headers: &HeaderMap,
    body: Body,
) -> Result<(Option<String>, Body), Response> {
    if let Some(v) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return Ok((Some(v.to_owned()), body));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((None, body));
    }
    let bytes: Bytes = match http_body_util::Limited::new(body, FORM_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Err(crate::pages::error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                "The form sent more than 2 MiB.",
                None,
            ))
        }
    };
    let token = form_urlencoded_field(&bytes, CSRF_FIELD);
    Ok((token, Body::from(bytes)))
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Where a browser without a session goes: the sign-in page, then back to `path`.
pub fn to_sign_in(path_and_query: &str, ended: bool) -> Response {
    let mut target = format!("/sign-in?next={}", percent_encode_component(path_and_query));
    if ended {
        target.push_str("&ended=1");
    }
    let mut resp = Redirect::to(&target).into_response();
    // htmx follows redirects inside its request; this makes it load the sign-in page instead.
    if let Ok(v) = HeaderValue::from_str(&target) {
        resp.headers_mut().insert("hx-redirect", v);
    }
    resp
}

fn percent_encode_component(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl FromRequestParts<WebState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &WebState) -> Result<Self, Response> {
        if let Some(s) = parts.extensions.get::<Session>() {
            return Ok(s.clone());
        }
        let ended = parts.extensions.get::<SessionEnded>().is_some();
        let target = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        // An event stream or an action has no page to come back to: back to the page itself.
        let target = if target.starts_with("/events/") || parts.method != Method::GET {
            "/".to_owned()
        } else {
            target
        };
        Err(to_sign_in(&target, ended))
    }
}

/// Where to go after sign-in: a local path only (never `//host` or a URL), else `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn fetch_metadata_decides_when_the_browser_sends_it() {
        assert!(same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            None
        ));
        for site in ["cross-site", "same-site", "none"] {
            assert!(!same_origin(
                &headers(&[
                    ("sec-fetch-site", site),
                    ("origin", "http://127.0.0.1:7300"),
                    ("host", "127.0.0.1:7300")
                ]),
                None
            ));
        }
    }

    #[test]
    fn origin_must_match_the_host_or_the_public_origin() {
        let own = headers(&[
            ("origin", "http://127.0.0.1:7300"),
            ("host", "127.0.0.1:7300"),
        ]);
        assert!(same_origin(&own, None));
        let foreign = headers(&[("origin", "http://evil.test"), ("host", "127.0.0.1:7300")]);
        assert!(!same_origin(&foreign, None));
        let null = headers(&[("origin", "null"), ("host", "127.0.0.1:7300")]);
        assert!(!same_origin(&null, None));
        let behind_proxy = headers(&[("origin", "https://picket.example"), ("host", "10.0.0.5")]);
        assert!(same_origin(&behind_proxy, Some("https://picket.example/")));
        assert!(!same_origin(&own, Some("https://picket.example")));
        // Neither header: not a browser's cross-site request (the token still applies).
        assert!(same_origin(&headers(&[]), None));
    }

    #[test]
    fn the_csrf_token_is_bound_to_the_session() {
        let a = csrf_token("pkw_a");
        assert_eq!(a, csrf_token("pkw_a"));
        assert_ne!(a, csrf_token("pkw_b"));
        assert!(!a.contains("pkw_a"));
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/projects?q=a")), "/projects?q=a");
        for bad in [
            "//evil.test",
            "https://evil.test",
            "/\\evil.test",
            "projects",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_cookie_is_host_prefixed_secure_http_only_and_lax() {
        let v = set_cookie("pkw_x", std::time::Duration::from_secs(60));
        let v = v.to_str().unwrap();
        assert!(
            v.starts_with("__Host-picket_session=pkw_x; Path=/; Secure; HttpOnly; SameSite=Lax")
        );
        assert!(!v.contains("Domain"));
    }

    #[test]
    fn the_form_field_is_found_among_others() {
        assert_eq!(
            form_urlencoded_field(b"a=1&_csrf=t%2Bk&b=2", CSRF_FIELD).as_deref(),
            Some("t+k")
        );
        assert_eq!(form_urlencoded_field(b"a=1", CSRF_FIELD), None);
    }
}
