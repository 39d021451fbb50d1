//! Request handling: one axum fallback handler that records the request, serves injected
//! faults, counts the rate limit, authenticates, routes by the server's route table and adds
//! GitLab's response headers; the route handlers; GitLab's JSON shapes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use sha2::Digest as _;

use super::{
    access, ref_pair, Auth, Discussion, FaultKind, HookRec, Inner, MergeRequest, NoteRec,
    RecordedRequest, RouteTable, State, StatusRec, TestHook, TestNote, TestPosition, TestStatus,
    Window,
};

pub(super) fn router(inner: Arc<Inner>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(inner)
}

/// The routes this server implements (paths relative to the API base path).
pub(super) const ROUTES: &[(&str, &str)] = &[
    ("GET", "/user"),
    ("GET", "/personal_access_tokens/self"),
    ("GET", "/users"),
    ("GET", "/projects"),
    ("GET", "/projects/:id"),
    ("GET", "/groups/:id/projects"),
    ("GET", "/projects/:id/hooks"),
    ("POST", "/projects/:id/hooks"),
    ("GET", "/projects/:id/hooks/:hook_id"),
    ("PUT", "/projects/:id/hooks/:hook_id"),
    ("DELETE", "/projects/:id/hooks/:hook_id"),
    ("GET", "/groups/:id/hooks"),
    ("POST", "/groups/:id/hooks"),
    ("GET", "/groups/:id/hooks/:hook_id"),
    ("PUT", "/groups/:id/hooks/:hook_id"),
    ("DELETE", "/groups/:id/hooks/:hook_id"),
    ("GET", "/projects/:id/merge_requests"),
    ("GET", "/projects/:id/merge_requests/:iid"),
    ("GET", "/projects/:id/merge_requests/:iid/versions"),
    ("GET", "/projects/:id/repository/merge_base"),
    ("GET", "/projects/:id/merge_requests/:iid/discussions"),
    ("POST", "/projects/:id/merge_requests/:iid/discussions"),
    (
        "GET",
        "/projects/:id/merge_requests/:iid/discussions/:discussion_id",
    ),
    (
        "PUT",
        "/projects/:id/merge_requests/:iid/discussions/:discussion_id",
    ),
    (
        "POST",
        "/projects/:id/merge_requests/:iid/discussions/:discussion_id/notes",
    ),
    ("GET", "/projects/:id/merge_requests/:iid/notes"),
    ("POST", "/projects/:id/merge_requests/:iid/notes"),
    ("GET", "/projects/:id/merge_requests/:iid/notes/:note_id"),
    ("PUT", "/projects/:id/merge_requests/:iid/notes/:note_id"),
    ("POST", "/projects/:id/statuses/:sha"),
    ("GET", "/projects/:id/members/all/:user_id"),
];

/// The route serving `method` on `segments` (raw), with its route key and decoded parameters.
fn match_route(method: &str, segments: &[&str]) -> Option<(&'static str, Vec<String>)> {
    ROUTES.iter().find_map(|(m, template)| {
        if *m != method {
            return None;
        }
        let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() != segments.len() {
            return None;
        }
        let mut args = Vec::new();
        for (part, raw) in parts.iter().zip(segments) {
            if part.starts_with(':') {
                if raw.is_empty() {
                    return None;
                }
                args.push(percent_decode(raw));
            } else if part != raw {
                return None;
            }
        }
        Some((route_key(m, template), args))
    })
}

/// `METHOD /template` as a `'static` string, for the counters and records.
fn route_key(method: &str, template: &str) -> &'static str {
    static KEYS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| ROUTES.iter().map(|(m, t)| format!("{m} {t}")).collect());
    KEYS.iter()
        .find(|k| *k == &format!("{method} {template}"))
        .map(String::as_str)
        .expect("a route")
}

// ---------------------------------------------------------------------------------------------
// Answers

pub(super) enum Body {
    Json(Value),
    Text(&'static str, String),
    Empty,
}

pub(super) struct Answer {
    status: u16,
    body: Body,
    headers: Vec<(&'static str, String)>,
}

type Result<T> = std::result::Result<T, Answer>;

fn answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        body: Body::Json(body),
        headers: Vec::new(),
    }
}

fn ok(body: Value) -> Result<Answer> {
    Ok(answer(200, body))
}

fn created(body: Value) -> Result<Answer> {
    Ok(answer(201, body))
}

/// `{"message": "<message>"}`, GitLab's usual error body.
fn message(status: u16, msg: impl Into<String>) -> Answer {
    answer(status, json!({ "message": msg.into() }))
}

/// `{"error": "<message>"}`, Grape's parameter errors and unknown routes.
fn error(status: u16, msg: impl Into<String>) -> Answer {
    answer(status, json!({ "error": msg.into() }))
}

fn not_found(what: &str) -> Answer {
    message(404, format!("404 {what} Not Found"))
}

fn forbidden() -> Answer {
    message(403, "403 Forbidden")
}

fn unauthorized() -> Answer {
    message(401, "401 Unauthorized")
}

fn missing(param: &str) -> Answer {
    error(400, format!("{param} is missing"))
}

fn bad_note(errors: &str) -> Answer {
    message(400, format!("400 Bad request - Note {errors}"))
}

const LINE_CODE_ERROR: &str = r#"{:line_code=>["can't be blank", "must be a valid line code"]}"#;

// ---------------------------------------------------------------------------------------------
// Time and identifiers

pub(super) fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// ISO 8601 with milliseconds, UTC, like GitLab: `2016-07-26T14:44:48.926Z`.
pub(super) fn iso(t: SystemTime) -> String {
    let nanos = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(nanos as i128).expect("time");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// An HTTP date (`Wed, 17 Jul 2019 00:58:57 GMT`).
fn http_date(secs: u64) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp(secs as i64).expect("time");
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[dt.weekday().number_days_from_monday() as usize],
        dt.day(),
        MONTHS[u8::from(dt.month()) as usize - 1],
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

/// A discussion id: 40 hex digits, like GitLab's.
fn discussion_id(seed: u64) -> String {
    let digest = sha2::Sha256::digest(format!("picket-gitlab-discussion-{seed}"));
    digest.iter().take(20).map(|b| format!("{b:02x}")).collect()
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept; `[` and `]` too,
/// as GitLab's own links keep them).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'[' | b']' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Parameters: query string and body, merged as Rack and Grape do

fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.map(form_pairs).unwrap_or_default()
}

fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// Inserts `key=value` with Rack's nesting: `a[b][c]` → `{"a":{"b":{"c":…}}}`, `a[]` appends.
fn rack_insert(root: &mut Map<String, Value>, key: &str, value: Value) {
    let (head, rest) = match key.find('[') {
        Some(at) if at > 0 => (&key[..at], &key[at..]),
        _ => (key, ""),
    };
    let mut parts: Vec<String> = Vec::new();
    let mut rest = rest;
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(end) = inner.find(']') else { break };
        parts.push(inner[..end].to_string());
        rest = &inner[end + 1..];
    }
    let slot = root.entry(head.to_string()).or_insert(Value::Null);
    insert_at(slot, &parts, value);
}

fn insert_at(target: &mut Value, parts: &[String], value: Value) {
    let Some((first, rest)) = parts.split_first() else {
        *target = value;
        return;
    };
    if first.is_empty() {
        if !target.is_array() {
            *target = Value::Array(Vec::new());
        }
        let items = target.as_array_mut().expect("array");
        if rest.is_empty() {
            items.push(value);
        } else {
            let mut item = Value::Null;
            insert_at(&mut item, rest, value);
            items.push(item);
        }
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let slot = target
        .as_object_mut()
        .expect("object")
        .entry(first.clone())
        .or_insert(Value::Null);
    insert_at(slot, rest, value);
}

/// `name="…"` parts of a multipart body, as (name, value).
fn multipart_pairs(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut out = Vec::new();
    let mut chunks = split_bytes(body, &delimiter).into_iter().skip(1);
    for chunk in chunks.by_ref() {
        if chunk.starts_with(b"--") {
            break;
        }
        let chunk = chunk.strip_prefix(b"\r\n").unwrap_or(chunk);
        let Some(split) = find_bytes(chunk, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&chunk[..split]);
        let mut value = &chunk[split + 4..];
        value = value.strip_suffix(b"\r\n").unwrap_or(value);
        let name = head.lines().find_map(|line| {
            let lower = line.to_ascii_lowercase();
            if !lower.starts_with("content-disposition") {
                return None;
            }
            let at = lower
                .find(" name=\"")
                .map(|i| i + 7)
                .or_else(|| lower.find(";name=\"").map(|i| i + 7))?;
            let end = line[at..].find('"')?;
            Some(line[at..at + end].to_string())
        });
        if let Some(name) = name {
            out.push((name, String::from_utf8_lossy(value).into_owned()));
        }
    }
    out
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'b>(mut haystack: &'b [u8], needle: &[u8]) -> Vec<&'b [u8]> {
    let mut out = Vec::new();
    while let Some(at) = find_bytes(haystack, needle) {
        out.push(&haystack[..at]);
        haystack = &haystack[at + needle.len()..];
    }
    out.push(haystack);
    out
}

/// The request's parameters: the query string, then the body (JSON, form or multipart) over it.
fn parse_params(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Value {
    let mut root = Map::new();
    for (k, v) in query_pairs(query) {
        rack_insert(&mut root, &k, Value::String(v));
    }
    if body.is_empty() {
        return Value::Object(root);
    }
    let media = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let as_json = || {
        serde_json::from_slice::<Value>(body)
            .ok()
            .filter(Value::is_object)
    };
    let as_form = |root: &mut Map<String, Value>| {
        for (k, v) in form_pairs(&String::from_utf8_lossy(body)) {
            rack_insert(root, &k, Value::String(v));
        }
    };
    if media == "multipart/form-data" {
        let boundary = content_type
            .and_then(|c| {
                c.split(';')
                    .find_map(|p| p.trim().strip_prefix("boundary="))
                    .map(|b| b.trim_matches('"').to_string())
            })
            .unwrap_or_default();
        for (k, v) in multipart_pairs(body, &boundary) {
            rack_insert(&mut root, &k, Value::String(v));
        }
    } else if media == "application/x-www-form-urlencoded" {
        as_form(&mut root);
    } else if let Some(Value::Object(obj)) = as_json() {
        root.extend(obj);
    } else {
        as_form(&mut root);
    }
    Value::Object(root)
}

/// A parameter as text (strings as they are, numbers and booleans printed).
fn p_str(params: &Value, path: &[&str]) -> Option<String> {
    let mut v = params;
    for key in path {
        v = v.get(key)?;
    }
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn p_present(params: &Value, path: &[&str]) -> bool {
    let mut v = params;
    for key in path {
        match v.get(key) {
            Some(next) => v = next,
            None => return false,
        }
    }
    !v.is_null()
}

/// Grape's Boolean coercion.
fn as_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "t" | "yes" | "y" => Some(true),
        "false" | "0" | "f" | "no" | "n" => Some(false),
        _ => None,
    }
}

fn p_bool(params: &Value, key: &str) -> std::result::Result<Option<bool>, Answer> {
    match p_str(params, &[key]) {
        None => Ok(None),
        Some(s) => as_bool(&s)
            .map(Some)
            .ok_or_else(|| error(400, format!("{key} is invalid"))),
    }
}

fn p_u64(params: &Value, path: &[&str]) -> std::result::Result<Option<u64>, Answer> {
    match p_str(params, path) {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
            let name = match path {
                [one] => one.to_string(),
                [first, rest @ ..] => format!("{first}[{}]", rest.join("][")),
                [] => String::new(),
            };
            error(400, format!("{name} is invalid"))
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials

#[derive(Clone)]
enum Cred {
    None,
    User {
        token: String,
        user_id: u64,
        scopes: Vec<String>,
        via: &'static str,
    },
    Invalid(Box<AnswerSpec>),
}

/// An error answer kept in the credential (Answer is not Clone).
#[derive(Clone)]
struct AnswerSpec {
    body: Value,
    www_authenticate: Option<String>,
}

impl AnswerSpec {
    fn answer(&self) -> Answer {
        let mut a = answer(401, self.body.clone());
        if let Some(w) = &self.www_authenticate {
            a.headers.push(("www-authenticate", w.clone()));
        }
        a
    }
}

fn resolve_cred(st: &mut State, headers: &HeaderMap) -> Cred {
    let (token, via) = if let Some(v) = headers.get("private-token") {
        (v.to_str().unwrap_or("").trim().to_string(), "private-token")
    } else if let Some(v) = headers.get("authorization") {
        let v = v.to_str().unwrap_or("").trim();
        match v.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                (token.trim().to_string(), "bearer")
            }
            _ => {
                return Cred::Invalid(Box::new(AnswerSpec {
                    body: json!({"message": "401 Unauthorized"}),
                    www_authenticate: None,
                }))
            }
        }
    } else {
        return Cred::None;
    };
    let invalid_token = |description: &str| {
        Cred::Invalid(Box::new(AnswerSpec {
            body: json!({"error": "invalid_token", "error_description": description}),
            www_authenticate: Some(format!(
                "Bearer realm=\"Protected by OAuth 2.0\", error=\"invalid_token\", error_description=\"{description}\""
            )),
        }))
    };
    let Some(t) = st.tokens.get_mut(&token) else {
        return Cred::Invalid(Box::new(AnswerSpec {
            body: json!({"message": "401 Unauthorized"}),
            www_authenticate: None,
        }));
    };
    if t.options.revoked {
        return invalid_token("Token was revoked. You have to re-authorize from the user.");
    }
    if t.options.expires_at.is_some_and(|d| d < today()) {
        return invalid_token("Token has expired.");
    }
    t.last_used_at = Some(SystemTime::now());
    Cred::User {
        token,
        user_id: t.user_id,
        scopes: t.options.scopes.clone(),
        via,
    }
}

/// One parsed request, routed.
struct Req {
    method: String,
    route: &'static str,
    args: Vec<String>,
    params: Value,
    /// The requester, when authenticated, and the token used.
    user: Option<u64>,
    token: Option<String>,
    /// The raw path as sent and its query pairs (for pagination links).
    path: String,
    query: Vec<(String, String)>,
}

impl Req {
    fn arg(&self, i: usize) -> &str {
        &self.args[i]
    }

    fn str(&self, key: &str) -> Option<String> {
        p_str(&self.params, &[key])
    }

    fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// The scopes that grant a route.
fn scopes_for(method: &str, route: &str) -> &'static [&'static str] {
    if route.ends_with("/personal_access_tokens/self") {
        return &[];
    }
    if method != "GET" {
        return &["api"];
    }
    if route.ends_with(" /user") || route.ends_with(" /users") {
        return &["api", "read_api", "read_user"];
    }
    &["api", "read_api"]
}

// ---------------------------------------------------------------------------------------------
// The handler

async fn handle(
    AxState(inner): AxState<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method = method.as_str().to_ascii_uppercase();
    let path = uri.path().to_string();
    let raw_query = uri.query().map(str::to_string);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let params = parse_params(raw_query.as_deref(), content_type.as_deref(), &body);

    let (index, cred, fault, routed, base_path) = {
        let mut st = inner.lock();
        let cred = resolve_cred(&mut st, &headers);
        let base_path = st.base_path.clone();
        let relative = path
            .strip_prefix(&base_path)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'));
        let routed = relative.and_then(|rest| {
            let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
            match_route(&method, &segments)
        });
        let key = match &routed {
            Some((route, _)) => route.to_string(),
            None => format!("{method} (unmatched)"),
        };
        *st.counts.entry(key).or_default() += 1;
        let auth = match &cred {
            Cred::None => Auth::None,
            Cred::User {
                user_id,
                scopes,
                via,
                ..
            } => Auth::Token {
                user_id: *user_id,
                username: st
                    .users
                    .get(user_id)
                    .map(|u| u.username.clone())
                    .unwrap_or_default(),
                scopes: scopes.clone(),
                via: via.to_string(),
            },
            Cred::Invalid(_) => Auth::Invalid,
        };
        st.requests.push(RecordedRequest {
            method: method.clone(),
            path: path.clone(),
            query: raw_query.clone(),
            auth,
            params: params.clone(),
            content_type: (!body.is_empty()).then(|| {
                content_type
                    .as_deref()
                    .map(|c| {
                        c.split(';')
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_ascii_lowercase()
                    })
                    .unwrap_or_default()
            }),
            at: Instant::now(),
            route: routed.as_ref().map(|(r, _)| *r),
            status: 0,
            response: None,
            headers: headers
                .iter()
                .map(|(name, value)| {
                    let value = value.to_str().unwrap_or("<binary>");
                    let value = match name.as_str() {
                        "private-token" => "<redacted>".to_string(),
                        "authorization" => {
                            format!("{} <redacted>", value.split(' ').next().unwrap_or(""))
                        }
                        _ => value.to_string(),
                    };
                    (name.as_str().to_string(), value)
                })
                .collect(),
        });
        let index = st.requests.len() - 1;
        let fault = st
            .faults
            .iter()
            .position(|f| {
                f.times > 0
                    && path.contains(&f.path_contains)
                    && f.method.as_ref().is_none_or(|m| *m == method)
            })
            .map(|i| {
                let kind = st.faults[i].kind.clone();
                st.faults[i].times -= 1;
                if st.faults[i].times == 0 {
                    st.faults.remove(i);
                }
                kind
            });
        (index, cred, fault, routed, base_path)
    };

    if let Some(FaultKind::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }

    // The request throttle counts every request (Rack::Attack runs before the API).
    let (limit, remaining, reset, observed, throttled, throttle_name) = {
        let mut st = inner.lock();
        let (key, name) = match &cred {
            Cred::User { token, .. } => (token.clone(), "throttle_authenticated_api"),
            _ => ("ip:127.0.0.1".to_string(), "throttle_unauthenticated_api"),
        };
        let limit = st.rate_limit;
        let now = epoch(SystemTime::now());
        let window = st.windows.entry(key).or_default();
        if window.reset <= now {
            *window = Window {
                used: 0,
                reset: now + 60,
            };
        }
        window.used += 1;
        let throttled = window.used > limit;
        (
            limit,
            limit.saturating_sub(window.used),
            window.reset,
            window.used,
            throttled,
            name,
        )
    };

    let mut rate_remaining = remaining;
    let outcome: Answer = match fault {
        Some(FaultKind::TooManyRequests { retry_after_secs }) => {
            rate_remaining = 0;
            let mut a = Answer {
                status: 429,
                body: Body::Text("text/plain", "Retry later\n".into()),
                headers: Vec::new(),
            };
            a.headers.push(("retry-after", retry_after_secs.to_string()));
            a
        }
        Some(FaultKind::ApplicationLimit { retry_after_secs }) => {
            let mut a = app_limited();
            if let Some(secs) = retry_after_secs {
                a.headers.push(("retry-after", secs.to_string()));
            }
            a
        }
        Some(FaultKind::ServerError { status: 500 }) => {
            message(500, "500 Internal Server Error")
        }
        Some(FaultKind::ServerError { status }) => Answer {
            status,
            body: Body::Text(
                "text/html; charset=utf-8",
                format!(
                    "<!DOCTYPE html><html><head><title>GitLab is not responding ({status})</title></head><body><h1>{status}</h1><p>Whoops, GitLab is taking too much time to respond.</p></body></html>"
                ),
            ),
            headers: Vec::new(),
        },
        _ if throttled => {
            rate_remaining = 0;
            let wait = reset.saturating_sub(epoch(SystemTime::now())).max(1);
            Answer {
                status: 429,
                body: Body::Text("text/plain", "Retry later\n".into()),
                headers: vec![("retry-after", wait.to_string())],
            }
        }
        _ => {
            let mut st = inner.lock();
            serve(&mut st, &method, &path, &base_path, raw_query.as_deref(), params, cred, routed)
        }
    };

    // Record the answer, then build the response.
    {
        let mut st = inner.lock();
        st.requests[index].status = outcome.status;
        st.requests[index].response = match &outcome.body {
            Body::Json(v) => Some(v.clone()),
            _ => None,
        };
    }
    let status = StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match outcome.body {
        Body::Json(v) => (
            status,
            [("content-type", "application/json")],
            serde_json::to_string(&v).expect("json"),
        )
            .into_response(),
        Body::Text(content_type, text) => {
            (status, [("content-type", content_type)], text).into_response()
        }
        Body::Empty => status.into_response(),
    };
    let h = response.headers_mut();
    let mut set = |name: &str, value: String| {
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(&value).expect("header value"),
        );
    };
    set("ratelimit-name", throttle_name.into());
    set("ratelimit-limit", limit.to_string());
    set("ratelimit-observed", observed.to_string());
    set("ratelimit-remaining", rate_remaining.to_string());
    set("ratelimit-reset", reset.to_string());
    set("ratelimit-resettime", http_date(reset));
    set("x-request-id", format!("01TESTGITLAB{index:014}"));
    set(
        "cache-control",
        "max-age=0, private, must-revalidate".into(),
    );
    for (name, value) in outcome.headers {
        set(name, value);
    }
    response
}

fn app_limited() -> Answer {
    answer(
        429,
        json!({"message": {"error": "This endpoint has been requested too many times. Try again later."}}),
    )
}

#[allow(clippy::too_many_arguments)]
fn serve(
    st: &mut State,
    method: &str,
    path: &str,
    base_path: &str,
    raw_query: Option<&str>,
    params: Value,
    cred: Cred,
    routed: Option<(&'static str, Vec<String>)>,
) -> Answer {
    if let Cred::Invalid(spec) = &cred {
        return spec.answer();
    }
    let Some((route, args)) = routed else {
        // A GitLab endpoint this server does not serve answers loudly; anything else is
        // GitLab's unknown-route 404.
        let relative = path
            .strip_prefix(base_path)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'));
        let known = relative
            .and_then(|relative| RouteTable::load().ok()?.find(method, relative))
            .is_some();
        let relative = relative.unwrap_or(path);
        return if known {
            message(
                501,
                format!("501 Not Implemented: the GitLab test server does not serve {method} {relative}"),
            )
        } else {
            error(404, "404 Not Found")
        };
    };
    let (user, scopes, token) = match &cred {
        Cred::User {
            user_id,
            scopes,
            token,
            ..
        } => (Some(*user_id), Some(scopes.clone()), Some(token.clone())),
        _ => (None, None, None),
    };
    let needed = scopes_for(method, route);
    if let Some(scopes) = &scopes {
        if !needed.is_empty() && !needed.iter().any(|n| scopes.iter().any(|s| s == n)) {
            let scope = needed.join(" ");
            let mut a = answer(
                403,
                json!({
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided by the access token.",
                    "scope": scope,
                }),
            );
            a.headers.push((
                "www-authenticate",
                format!(
                    "Bearer realm=\"Protected by OAuth 2.0\", error=\"insufficient_scope\", error_description=\"The request requires higher privileges than provided by the access token.\", scope=\"{scope}\""
                ),
            ));
            return a;
        }
    }
    let req = Req {
        method: method.to_string(),
        route,
        args,
        params,
        user,
        token,
        path: path.to_string(),
        query: query_pairs(raw_query),
    };
    if req.is_write() && req.user.is_none() {
        return unauthorized();
    }
    match route_handler(st, &req) {
        Ok(a) | Err(a) => a,
    }
}

fn route_handler(st: &mut State, req: &Req) -> Result<Answer> {
    let route = req
        .route
        .split_once(' ')
        .map(|(_, t)| t)
        .unwrap_or(req.route);
    match (req.method.as_str(), route) {
        ("GET", "/user") => {
            let user = req.user.ok_or_else(unauthorized)?;
            ok(user_full_json(st, user))
        }
        ("GET", "/personal_access_tokens/self") => token_self(st, req),
        ("GET", "/users") => list_users(st, req),
        ("GET", "/projects") => list_projects(st, req),
        ("GET", "/projects/:id") => {
            let pid = project_for(st, req, req.arg(0), access::NO_ACCESS)?;
            ok(project_json(st, pid, req.user))
        }
        ("GET", "/groups/:id/projects") => group_projects(st, req),
        ("GET", "/projects/:id/hooks") | ("POST", "/projects/:id/hooks") => {
            let pid = project_for(st, req, req.arg(0), access::MAINTAINER)?;
            hooks(st, req, Owner::Project(pid))
        }
        (_, "/projects/:id/hooks/:hook_id") => {
            let pid = project_for(st, req, req.arg(0), access::MAINTAINER)?;
            hook(st, req, Owner::Project(pid), req.arg(1))
        }
        ("GET", "/groups/:id/hooks") | ("POST", "/groups/:id/hooks") => {
            let gid = group_for(st, req, req.arg(0), access::OWNER)?;
            hooks(st, req, Owner::Group(gid))
        }
        (_, "/groups/:id/hooks/:hook_id") => {
            let gid = group_for(st, req, req.arg(0), access::OWNER)?;
            hook(st, req, Owner::Group(gid), req.arg(1))
        }
        ("GET", "/projects/:id/merge_requests") => list_mrs(st, req),
        ("GET", "/projects/:id/merge_requests/:iid") => {
            let (pid, iid) = mr_for(st, req)?;
            ok(mr_json(st, pid, &st.projects[&pid].mrs[&iid], true))
        }
        ("GET", "/projects/:id/merge_requests/:iid/versions") => {
            let (pid, iid) = mr_for(st, req)?;
            let mr = &st.projects[&pid].mrs[&iid];
            let items: Vec<Value> = mr
                .versions
                .iter()
                .rev()
                .map(|v| version_json(mr, v))
                .collect();
            paginate(st, req, items.len(), |range| items[range].to_vec())
        }
        ("GET", "/projects/:id/repository/merge_base") => merge_base(st, req),
        ("GET", "/projects/:id/merge_requests/:iid/discussions") => {
            let (pid, iid) = mr_for(st, req)?;
            let mr = &st.projects[&pid].mrs[&iid];
            let count = mr.discussions.len();
            paginate(st, req, count, |range| {
                mr.discussions[range]
                    .iter()
                    .map(|d| discussion_json(st, pid, mr, d))
                    .collect()
            })
        }
        ("POST", "/projects/:id/merge_requests/:iid/discussions") => post_discussion(st, req),
        ("GET", "/projects/:id/merge_requests/:iid/discussions/:discussion_id") => {
            let (pid, iid) = mr_for(st, req)?;
            let mr = &st.projects[&pid].mrs[&iid];
            let d = mr
                .discussions
                .iter()
                .find(|d| d.id == req.arg(2))
                .ok_or_else(|| not_found("Discussion"))?;
            ok(discussion_json(st, pid, mr, d))
        }
        ("PUT", "/projects/:id/merge_requests/:iid/discussions/:discussion_id") => {
            resolve_discussion(st, req)
        }
        ("POST", "/projects/:id/merge_requests/:iid/discussions/:discussion_id/notes") => {
            post_reply(st, req)
        }
        ("GET", "/projects/:id/merge_requests/:iid/notes") => list_notes(st, req),
        ("POST", "/projects/:id/merge_requests/:iid/notes") => post_note(st, req),
        ("GET", "/projects/:id/merge_requests/:iid/notes/:note_id") => {
            let (pid, iid) = mr_for(st, req)?;
            let mr = &st.projects[&pid].mrs[&iid];
            let (d, n) = find_note(mr, req.arg(2)).ok_or_else(|| not_found("Note"))?;
            ok(note_json(st, pid, mr, &mr.discussions[d].notes[n]))
        }
        ("PUT", "/projects/:id/merge_requests/:iid/notes/:note_id") => put_note(st, req),
        ("POST", "/projects/:id/statuses/:sha") => post_status(st, req),
        ("GET", "/projects/:id/members/all/:user_id") => {
            let pid = project_for(st, req, req.arg(0), access::NO_ACCESS)?;
            let user_id: u64 = req
                .arg(1)
                .parse()
                .map_err(|_| error(400, "user_id is invalid"))?;
            let level = st.project_access(pid, user_id);
            if level == access::NO_ACCESS || !st.users.contains_key(&user_id) {
                return Err(message(404, "404 Not found"));
            }
            ok(member_json(st, user_id, level))
        }
        _ => Err(error(404, "404 Not Found")),
    }
}

// ---------------------------------------------------------------------------------------------
// Access

/// Whether the requester may see a project.
fn can_see_project(st: &State, pid: u64, user: Option<u64>) -> bool {
    let Some(p) = st.projects.get(&pid) else {
        return false;
    };
    match p.project.visibility.as_str() {
        "public" => true,
        "internal" => user.is_some(),
        _ => user.is_some_and(|u| st.project_access(pid, u) >= access::GUEST),
    }
}

/// The project `raw` names (numeric id or full path), visible to the requester, where the
/// requester has at least `level`.
fn project_for(st: &State, req: &Req, raw: &str, level: u32) -> Result<u64> {
    let pid = match raw.parse::<u64>() {
        Ok(id) => st.projects.contains_key(&id).then_some(id),
        Err(_) => st
            .projects
            .values()
            .find(|p| p.project.path_with_namespace().eq_ignore_ascii_case(raw))
            .map(|p| p.project.id),
    }
    .filter(|pid| can_see_project(st, *pid, req.user))
    .ok_or_else(|| not_found("Project"))?;
    if level > access::NO_ACCESS {
        let user = req.user.ok_or_else(unauthorized)?;
        if st.project_access(pid, user) < level {
            return Err(forbidden());
        }
    }
    Ok(pid)
}

/// Whether the requester may see a group: public, internal when signed in, or a member of it,
/// of an ancestor, or of anything inside it.
fn can_see_group(st: &State, gid: u64, user: Option<u64>) -> bool {
    let Some(g) = st.groups.get(&gid) else {
        return false;
    };
    match g.visibility.as_str() {
        "public" => return true,
        "internal" if user.is_some() => return true,
        _ => {}
    }
    let Some(user) = user else { return false };
    if st.group_access(gid, user) > access::NO_ACCESS {
        return true;
    }
    st.groups
        .values()
        .any(|sub| st.group_chain(sub.id).contains(&gid) && sub.members.contains_key(&user))
        || st.projects.values().any(|p| {
            p.group_id.is_some_and(|g| st.group_chain(g).contains(&gid))
                && p.members.contains_key(&user)
        })
}

fn group_for(st: &State, req: &Req, raw: &str, level: u32) -> Result<u64> {
    let gid = match raw.parse::<u64>() {
        Ok(id) => st.groups.contains_key(&id).then_some(id),
        Err(_) => st.group_by_path(raw).map(|g| g.id),
    }
    .filter(|gid| can_see_group(st, *gid, req.user))
    .ok_or_else(|| not_found("Group"))?;
    if level > access::NO_ACCESS {
        let user = req.user.ok_or_else(unauthorized)?;
        if st.group_access(gid, user) < level {
            return Err(forbidden());
        }
    }
    Ok(gid)
}

/// The merge request of a `/projects/:id/merge_requests/:iid…` route.
fn mr_for(st: &State, req: &Req) -> Result<(u64, u64)> {
    let pid = project_for(st, req, req.arg(0), access::NO_ACCESS)?;
    let iid: u64 = req
        .arg(1)
        .parse()
        .map_err(|_| error(400, "merge_request_iid is invalid"))?;
    if !st.projects[&pid].mrs.contains_key(&iid) {
        return Err(message(404, "404 Not found"));
    }
    Ok((pid, iid))
}

/// Writes to an archived project are refused.
fn writable(st: &State, pid: u64) -> Result<()> {
    if st.projects[&pid].project.archived {
        return Err(forbidden());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Pagination

/// An offset-paginated answer of `total` items, `page_of` giving the JSON of an index range.
fn paginate(
    st: &State,
    req: &Req,
    total: usize,
    page_of: impl FnOnce(std::ops::Range<usize>) -> Vec<Value>,
) -> Result<Answer> {
    let per_page = p_u64(&req.params, &["per_page"])?
        .unwrap_or(20)
        .clamp(1, 100) as usize;
    let page = p_u64(&req.params, &["page"])?.unwrap_or(1).max(1) as usize;
    let pages = total.div_ceil(per_page).max(1);
    let start = ((page - 1) * per_page).min(total);
    let end = (start + per_page).min(total);
    let items = page_of(start..end);
    let counted = total <= 10_000;
    // Rails' `to_query`: the request's parameters, page replaced, keys sorted.
    let link = |p: usize| {
        let mut params: Vec<(String, String)> = req
            .query
            .iter()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .cloned()
            .collect();
        params.push(("page".into(), p.to_string()));
        params.push(("per_page".into(), per_page.to_string()));
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("<{}{}?{}>", st.origin, req.path, query.join("&"))
    };
    let has_next = end < total;
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", link(page - 1)));
    }
    if has_next {
        links.push(format!("{}; rel=\"next\"", link(page + 1)));
    }
    links.push(format!("{}; rel=\"first\"", link(1)));
    if counted {
        links.push(format!("{}; rel=\"last\"", link(pages)));
    }
    let mut a = answer(200, Value::Array(items));
    a.headers.push(("link", links.join(", ")));
    a.headers.push(("x-page", page.to_string()));
    a.headers.push(("x-per-page", per_page.to_string()));
    a.headers.push((
        "x-next-page",
        if has_next {
            (page + 1).to_string()
        } else {
            String::new()
        },
    ));
    a.headers.push((
        "x-prev-page",
        if page > 1 {
            (page - 1).to_string()
        } else {
            String::new()
        },
    ));
    if counted {
        a.headers.push(("x-total", total.to_string()));
        a.headers.push(("x-total-pages", pages.to_string()));
    }
    Ok(a)
}

/// `sort=asc|desc` (default `default`), refusing anything else as Grape does.
fn sort_order(req: &Req, default: &str) -> Result<bool> {
    let sort = req.str("sort").unwrap_or_else(|| default.to_string());
    match sort.as_str() {
        "asc" => Ok(true),
        "desc" => Ok(false),
        _ => Err(error(400, "sort does not have a valid value")),
    }
}

// ---------------------------------------------------------------------------------------------
// Users and tokens

fn avatar(id: u64) -> String {
    format!("https://www.gravatar.com/avatar/{id:032x}?s=80&d=identicon")
}

pub(super) fn user_basic_json(st: &State, user_id: u64) -> Value {
    match st.users.get(&user_id) {
        Some(u) => json!({
            "id": u.id,
            "username": u.username,
            "name": u.name,
            "state": "active",
            "locked": false,
            "avatar_url": avatar(u.id),
            "web_url": format!("{}/{}", st.root_url, u.username),
        }),
        None => Value::Null,
    }
}

fn user_full_json(st: &State, user_id: u64) -> Value {
    let mut v = user_basic_json(st, user_id);
    let u = &st.users[&user_id];
    let extra = json!({
        "created_at": iso(u.created_at),
        "bio": "",
        "location": "",
        "public_email": null,
        "linkedin": "",
        "twitter": "",
        "discord": "",
        "website_url": "",
        "organization": "",
        "job_title": "",
        "pronouns": null,
        "bot": u.bot,
        "work_information": null,
        "local_time": null,
        "last_sign_in_at": null,
        "confirmed_at": iso(u.created_at),
        "last_activity_on": today().to_string(),
        "email": format!("{}@example.com", u.username),
        "theme_id": 1,
        "color_scheme_id": 1,
        "projects_limit": 100000,
        "current_sign_in_at": null,
        "identities": [],
        "can_create_group": !u.bot,
        "can_create_project": !u.bot,
        "two_factor_enabled": false,
        "external": false,
        "private_profile": false,
        "commit_email": format!("{}@example.com", u.username),
    });
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

fn token_self(st: &State, req: &Req) -> Result<Answer> {
    let token = req
        .token
        .as_ref()
        .and_then(|t| st.tokens.get(t))
        .ok_or_else(unauthorized)?;
    let expires_at = token.options.expires_at.map(|d| d.to_string());
    ok(json!({
        "id": token.id,
        "name": token.options.name,
        "revoked": token.options.revoked,
        "created_at": iso(token.created_at),
        "description": null,
        "scopes": token.options.scopes,
        "user_id": token.user_id,
        "last_used_at": token.last_used_at.map(iso),
        "active": !token.options.revoked && token.options.expires_at.is_none_or(|d| d >= today()),
        "expires_at": expires_at,
    }))
}

fn list_users(st: &State, req: &Req) -> Result<Answer> {
    let username = req.str("username");
    let ids: Vec<u64> = st
        .users
        .values()
        .filter(|u| {
            username
                .as_ref()
                .is_none_or(|name| u.username.eq_ignore_ascii_case(name))
        })
        .map(|u| u.id)
        .rev()
        .collect();
    paginate(st, req, ids.len(), |range| {
        ids[range]
            .iter()
            .map(|id| user_basic_json(st, *id))
            .collect()
    })
}

fn member_json(st: &State, user_id: u64, level: u32) -> Value {
    let mut v = user_basic_json(st, user_id);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("access_level".into(), json!(level));
        obj.insert(
            "created_at".into(),
            json!(iso(st.users[&user_id].created_at)),
        );
        obj.insert("created_by".into(), Value::Null);
        obj.insert("expires_at".into(), Value::Null);
        obj.insert("membership_state".into(), json!("active"));
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Projects and groups

fn namespace_json(st: &State, pid: u64) -> Value {
    let p = &st.projects[&pid];
    match p.group_id.and_then(|g| st.groups.get(&g)) {
        Some(g) => json!({
            "id": g.id,
            "name": g.name,
            "path": g.full_path.rsplit('/').next().unwrap_or(&g.full_path),
            "kind": "group",
            "full_path": g.full_path,
            "parent_id": g.parent_id,
            "avatar_url": null,
            "web_url": format!("{}/groups/{}", st.root_url, g.full_path),
        }),
        None => {
            let owner = p.owner_id.and_then(|u| st.users.get(&u));
            json!({
                "id": owner.map(|u| u.id + 1_000_000),
                "name": owner.map(|u| u.name.clone()),
                "path": p.project.namespace,
                "kind": "user",
                "full_path": p.project.namespace,
                "parent_id": null,
                "avatar_url": owner.map(|u| avatar(u.id)),
                "web_url": format!("{}/{}", st.root_url, p.project.namespace),
            })
        }
    }
}

fn project_json(st: &State, pid: u64, user: Option<u64>) -> Value {
    let rec = &st.projects[&pid];
    let p = &rec.project;
    let full = p.path_with_namespace();
    let namespace_name = match rec.group_id.and_then(|g| st.groups.get(&g)) {
        Some(g) => g
            .full_path
            .split('/')
            .map(super::display_name)
            .collect::<Vec<_>>()
            .join(" / "),
        None => rec
            .owner_id
            .and_then(|u| st.users.get(&u))
            .map(|u| u.name.clone())
            .unwrap_or_default(),
    };
    let host = st
        .origin
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("");
    let mut v = json!({
        "id": p.id,
        "description": p.description,
        "name": p.name,
        "name_with_namespace": format!("{namespace_name} / {}", p.name),
        "path": p.path,
        "path_with_namespace": full,
        "created_at": iso(rec.created_at),
        "default_branch": p.default_branch,
        "tag_list": [],
        "topics": [],
        "ssh_url_to_repo": format!("git@{host}:{full}.git"),
        "http_url_to_repo": p.http_url_to_repo,
        "web_url": format!("{}/{full}", st.root_url),
        "readme_url": p
            .default_branch
            .as_ref()
            .map(|b| format!("{}/{full}/-/blob/{b}/README.md", st.root_url)),
        "forks_count": 0,
        "avatar_url": null,
        "star_count": 0,
        "last_activity_at": iso(rec.last_activity_at),
        "namespace": namespace_json(st, pid),
        "visibility": p.visibility,
        "archived": p.archived,
        "empty_repo": p.default_branch.is_none(),
        "container_registry_image_prefix": format!("registry.{host}/{full}"),
        "_links": {
            "self": format!("{}/projects/{}", api_root(st), p.id),
            "merge_requests": format!("{}/projects/{}/merge_requests", api_root(st), p.id),
            "repo_branches": format!("{}/projects/{}/repository/branches", api_root(st), p.id),
            "members": format!("{}/projects/{}/members", api_root(st), p.id),
        },
        "merge_requests_enabled": true,
        "issues_enabled": true,
        "wiki_enabled": true,
        "jobs_enabled": true,
        "creator_id": rec.owner_id.unwrap_or(0),
        "open_issues_count": 0,
        "merge_method": "merge",
        "squash_option": "default_off",
        "only_allow_merge_if_pipeline_succeeds": false,
        "request_access_enabled": true,
    });
    if let (Some(obj), Some(owner)) = (v.as_object_mut(), rec.owner_id) {
        obj.insert("owner".into(), user_basic_json(st, owner));
    }
    // Signed-in users get `permissions` (GitLab's ProjectWithAccess), in lists too.
    if user.is_some() {
        let project_access = user
            .and_then(|u| rec.members.get(&u))
            .map(|l| json!({"access_level": l, "notification_level": 3}));
        let group_access = user
            .zip(rec.group_id)
            .map(|(u, g)| st.group_access(g, u))
            .filter(|l| *l > access::NO_ACCESS)
            .map(|l| json!({"access_level": l, "notification_level": 3}));
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "permissions".into(),
                json!({"project_access": project_access, "group_access": group_access}),
            );
        }
    }
    v
}

/// The `simple=true` projection.
fn project_simple_json(st: &State, pid: u64) -> Value {
    let full = project_json(st, pid, None);
    let keep = [
        "id",
        "description",
        "name",
        "name_with_namespace",
        "path",
        "path_with_namespace",
        "created_at",
        "default_branch",
        "tag_list",
        "topics",
        "ssh_url_to_repo",
        "http_url_to_repo",
        "web_url",
        "readme_url",
        "forks_count",
        "avatar_url",
        "star_count",
        "last_activity_at",
        "namespace",
    ];
    Value::Object(
        full.as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

fn api_root(st: &State) -> String {
    format!("{}{}", st.origin, st.base_path)
}

/// Orders and filters project ids as the projects list parameters ask, then paginates.
fn project_listing(st: &State, req: &Req, mut ids: Vec<u64>) -> Result<Answer> {
    if let Some(archived) = p_bool(&req.params, "archived")? {
        ids.retain(|id| st.projects[id].project.archived == archived);
    }
    if let Some(visibility) = req.str("visibility") {
        ids.retain(|id| st.projects[id].project.visibility == visibility);
    }
    if let Some(search) = req.str("search").map(|s| s.to_lowercase()) {
        ids.retain(|id| {
            let p = &st.projects[id].project;
            p.name.to_lowercase().contains(&search) || p.path.to_lowercase().contains(&search)
        });
    }
    let order_by = req.str("order_by").unwrap_or_else(|| "created_at".into());
    let asc = sort_order(req, "desc")?;
    match order_by.as_str() {
        "id" | "created_at" => ids.sort(),
        "name" => ids.sort_by_key(|id| (st.projects[id].project.name.to_lowercase(), *id)),
        "path" => ids.sort_by_key(|id| (st.projects[id].project.path.to_lowercase(), *id)),
        "updated_at" | "last_activity_at" => {
            ids.sort_by_key(|id| (st.projects[id].last_activity_at, *id))
        }
        _ => return Err(error(400, "order_by does not have a valid value")),
    }
    if !asc {
        ids.reverse();
    }
    let simple = p_bool(&req.params, "simple")?.unwrap_or(false);
    paginate(st, req, ids.len(), |range| {
        ids[range]
            .iter()
            .map(|id| {
                if simple {
                    project_simple_json(st, *id)
                } else {
                    project_json(st, *id, req.user)
                }
            })
            .collect()
    })
}

fn list_projects(st: &State, req: &Req) -> Result<Answer> {
    let membership = p_bool(&req.params, "membership")?.unwrap_or(false);
    let owned = p_bool(&req.params, "owned")?.unwrap_or(false);
    let min_access = p_u64(&req.params, &["min_access_level"])?;
    let ids: Vec<u64> = st
        .projects
        .keys()
        .copied()
        .filter(|pid| can_see_project(st, *pid, req.user))
        .filter(|pid| {
            let level = req.user.map(|u| st.project_access(*pid, u)).unwrap_or(0);
            (!membership || level >= access::GUEST)
                && (!owned
                    || st.projects[pid]
                        .owner_id
                        .is_some_and(|o| Some(o) == req.user))
                && min_access.is_none_or(|m| u64::from(level) >= m)
        })
        .collect();
    project_listing(st, req, ids)
}

fn group_projects(st: &State, req: &Req) -> Result<Answer> {
    let gid = group_for(st, req, req.arg(0), access::NO_ACCESS)?;
    let include_subgroups = p_bool(&req.params, "include_subgroups")?.unwrap_or(false);
    let ids: Vec<u64> = st
        .projects
        .values()
        .filter(|p| match p.group_id {
            Some(g) if include_subgroups => st.group_chain(g).contains(&gid),
            Some(g) => g == gid,
            None => false,
        })
        .map(|p| p.project.id)
        .filter(|pid| can_see_project(st, *pid, req.user))
        .collect();
    project_listing(st, req, ids)
}

// ---------------------------------------------------------------------------------------------
// Hooks

#[derive(Clone, Copy)]
enum Owner {
    Project(u64),
    Group(u64),
}

/// The event flags GitLab's hooks take besides push, merge request and note events.
const OTHER_EVENTS: &[&str] = &[
    "issues_events",
    "confidential_issues_events",
    "tag_push_events",
    "confidential_note_events",
    "job_events",
    "pipeline_events",
    "wiki_page_events",
    "deployment_events",
    "releases_events",
    "milestone_events",
    "feature_flag_events",
    "emoji_events",
    "resource_access_token_events",
    "repository_update_events",
    "subgroup_events",
    "member_events",
    "project_events",
    "vulnerability_events",
];

fn hook_map(st: &mut State, owner: Owner) -> &mut BTreeMap<u64, HookRec> {
    match owner {
        Owner::Project(pid) => &mut st.projects.get_mut(&pid).expect("project").hooks,
        Owner::Group(gid) => &mut st.groups.get_mut(&gid).expect("group").hooks,
    }
}

fn hook_json(owner: Owner, rec: &HookRec) -> Value {
    let h = &rec.hook;
    let mut v = json!({
        "id": h.id,
        "url": h.url,
        "name": h.name,
        "description": null,
        "push_events": h.push_events,
        "push_events_branch_filter": h.push_events_branch_filter,
        "branch_filter_strategy": "wildcard",
        "merge_requests_events": h.merge_requests_events,
        "note_events": h.note_events,
        "enable_ssl_verification": h.enable_ssl_verification,
        "alert_status": "executable",
        "disabled_until": null,
        "url_variables": [],
        "created_at": iso(rec.created_at),
        "custom_webhook_template": null,
        "custom_headers": [],
    });
    let obj = v.as_object_mut().expect("object");
    for name in OTHER_EVENTS {
        let relevant = match owner {
            Owner::Project(_) => !matches!(
                *name,
                "subgroup_events" | "member_events" | "project_events"
            ),
            Owner::Group(_) => true,
        };
        if relevant {
            obj.insert(
                name.to_string(),
                json!(h.other_events.get(*name).copied().unwrap_or(false)),
            );
        }
    }
    match owner {
        Owner::Project(pid) => obj.insert("project_id".into(), json!(pid)),
        Owner::Group(gid) => obj.insert("group_id".into(), json!(gid)),
    };
    v
}

/// Applies a hook's parameters (those sent) to `hook`.
fn apply_hook_params(hook: &mut TestHook, params: &Value) -> Result<()> {
    if let Some(url) = p_str(params, &["url"]) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(answer(
                422,
                json!({"message": {"url": ["is blocked: Only allowed schemes are http, https"]}}),
            ));
        }
        hook.url = url;
    }
    if let Some(token) = p_str(params, &["token"]) {
        hook.token = (!token.is_empty()).then_some(token);
    }
    if let Some(name) = p_str(params, &["name"]) {
        hook.name = Some(name);
    }
    if let Some(filter) = p_str(params, &["push_events_branch_filter"]) {
        hook.push_events_branch_filter = (!filter.is_empty()).then_some(filter);
    }
    for (key, slot) in [
        ("push_events", &mut hook.push_events),
        ("merge_requests_events", &mut hook.merge_requests_events),
        ("note_events", &mut hook.note_events),
        ("enable_ssl_verification", &mut hook.enable_ssl_verification),
    ] {
        if let Some(b) = p_bool(params, key)? {
            *slot = b;
        }
    }
    for name in OTHER_EVENTS {
        if let Some(b) = p_bool(params, name)? {
            hook.other_events.insert(name.to_string(), b);
        }
    }
    Ok(())
}

fn hooks(st: &mut State, req: &Req, owner: Owner) -> Result<Answer> {
    if req.method == "GET" {
        let items: Vec<Value> = hook_map(st, owner)
            .values()
            .map(|h| hook_json(owner, h))
            .collect();
        return paginate(st, req, items.len(), |range| items[range].to_vec());
    }
    if !p_present(&req.params, &["url"]) {
        return Err(missing("url"));
    }
    let id = st.id();
    let mut hook = TestHook {
        id,
        url: String::new(),
        token: None,
        name: None,
        push_events: true,
        push_events_branch_filter: None,
        merge_requests_events: false,
        note_events: false,
        enable_ssl_verification: true,
        other_events: BTreeMap::new(),
    };
    apply_hook_params(&mut hook, &req.params)?;
    let rec = HookRec {
        hook,
        created_at: SystemTime::now(),
    };
    let body = hook_json(owner, &rec);
    hook_map(st, owner).insert(id, rec);
    created(body)
}

fn hook(st: &mut State, req: &Req, owner: Owner, raw_id: &str) -> Result<Answer> {
    let id: u64 = raw_id
        .parse()
        .map_err(|_| error(400, "hook_id is invalid"))?;
    let map = hook_map(st, owner);
    match req.method.as_str() {
        "GET" => {
            let rec = map.get(&id).ok_or_else(|| not_found("Hook"))?;
            ok(hook_json(owner, rec))
        }
        "PUT" => {
            if !p_present(&req.params, &["url"]) {
                return Err(missing("url"));
            }
            let rec = map.get_mut(&id).ok_or_else(|| not_found("Hook"))?;
            apply_hook_params(&mut rec.hook, &req.params)?;
            ok(hook_json(owner, rec))
        }
        "DELETE" => {
            map.remove(&id).ok_or_else(|| not_found("Hook"))?;
            Ok(Answer {
                status: 204,
                body: Body::Empty,
                headers: Vec::new(),
            })
        }
        _ => Err(error(405, "405 Method Not Allowed")),
    }
}

// ---------------------------------------------------------------------------------------------
// Merge requests

fn mr_json(st: &State, pid: u64, m: &MergeRequest, single: bool) -> Value {
    let mr = &m.mr;
    let p = &st.projects[&pid];
    let full = p.project.path_with_namespace();
    let author = st.user_by_name(&mr.author).map(|u| u.id).unwrap_or(0);
    let user_notes = m
        .discussions
        .iter()
        .flat_map(|d| &d.notes)
        .filter(|n| !n.note.system)
        .count();
    let mut v = json!({
        "id": m.id,
        "iid": mr.iid,
        "project_id": pid,
        "title": mr.title,
        "description": mr.description,
        "state": mr.state,
        "created_at": iso(m.created_at),
        "updated_at": iso(m.updated_at),
        "merged_by": null,
        "merge_user": null,
        "merged_at": null,
        "closed_by": null,
        "closed_at": null,
        "target_branch": mr.target_branch,
        "source_branch": mr.source_branch,
        "user_notes_count": user_notes,
        "upvotes": 0,
        "downvotes": 0,
        "author": user_basic_json(st, author),
        "assignees": [],
        "assignee": null,
        "reviewers": [],
        "source_project_id": mr.source_project_id.unwrap_or(pid),
        "target_project_id": pid,
        "labels": [],
        "draft": mr.draft,
        "work_in_progress": mr.draft,
        "milestone": null,
        "merge_when_pipeline_succeeds": false,
        "merge_status": "can_be_merged",
        "detailed_merge_status": if mr.draft { "draft_status" } else { "mergeable" },
        "sha": mr.sha,
        "merge_commit_sha": null,
        "squash_commit_sha": null,
        "discussion_locked": null,
        "should_remove_source_branch": null,
        "force_remove_source_branch": false,
        "prepared_at": m.versions.first().map(|v| iso(v.created_at)),
        "reference": format!("!{}", mr.iid),
        "references": {
            "short": format!("!{}", mr.iid),
            "relative": format!("!{}", mr.iid),
            "full": format!("{full}!{}", mr.iid),
        },
        "web_url": format!("{}/{full}/-/merge_requests/{}", st.root_url, mr.iid),
        "time_stats": {
            "time_estimate": 0,
            "total_time_spent": 0,
            "human_time_estimate": null,
            "human_total_time_spent": null,
        },
        "squash": false,
        "squash_on_merge": false,
        "task_completion_status": {"count": 0, "completed_count": 0},
        "has_conflicts": false,
        "blocking_discussions_resolved": true,
    });
    if single {
        let latest = m.versions.last();
        let diff_refs = latest.map(|v| {
            json!({
                "base_sha": v.version.base_commit_sha,
                "head_sha": v.version.head_commit_sha,
                "start_sha": v.version.start_commit_sha,
            })
        });
        let extra = json!({
            "subscribed": false,
            "changes_count": latest.map(|_| "1"),
            "latest_build_started_at": null,
            "latest_build_finished_at": null,
            "first_deployed_to_production_at": null,
            "pipeline": null,
            "head_pipeline": null,
            "diff_refs": diff_refs,
            "merge_error": null,
            "first_contribution": false,
            "user": {"can_merge": true},
            "rebase_in_progress": false,
        });
        if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
            obj.extend(more);
        }
    }
    v
}

fn version_json(m: &MergeRequest, v: &super::VersionRec) -> Value {
    json!({
        "id": v.version.id,
        "head_commit_sha": v.version.head_commit_sha,
        "base_commit_sha": v.version.base_commit_sha,
        "start_commit_sha": v.version.start_commit_sha,
        "created_at": iso(v.created_at),
        "merge_request_id": m.id,
        "state": "collected",
        "real_size": "1",
        "patch_id_sha": null,
    })
}

fn list_mrs(st: &State, req: &Req) -> Result<Answer> {
    let pid = project_for(st, req, req.arg(0), access::NO_ACCESS)?;
    let state = req.str("state").unwrap_or_else(|| "all".into());
    if !["opened", "closed", "locked", "merged", "all"].contains(&state.as_str()) {
        return Err(error(400, "state does not have a valid value"));
    }
    let source = req.str("source_branch");
    let target = req.str("target_branch");
    let order_by = req.str("order_by").unwrap_or_else(|| "created_at".into());
    let asc = sort_order(req, "desc")?;
    let mut mrs: Vec<&MergeRequest> = st.projects[&pid]
        .mrs
        .values()
        .filter(|m| state == "all" || m.mr.state == state)
        .filter(|m| source.as_ref().is_none_or(|s| *s == m.mr.source_branch))
        .filter(|m| target.as_ref().is_none_or(|t| *t == m.mr.target_branch))
        .collect();
    match order_by.as_str() {
        "created_at" => mrs.sort_by_key(|m| (m.created_at, m.id)),
        "updated_at" => mrs.sort_by_key(|m| (m.updated_at, m.id)),
        "title" => mrs.sort_by_key(|m| (m.mr.title.to_lowercase(), m.id)),
        _ => return Err(error(400, "order_by does not have a valid value")),
    }
    if !asc {
        mrs.reverse();
    }
    paginate(st, req, mrs.len(), |range| {
        mrs[range]
            .iter()
            .map(|m| mr_json(st, pid, m, false))
            .collect()
    })
}

fn merge_base(st: &State, req: &Req) -> Result<Answer> {
    let pid = project_for(st, req, req.arg(0), access::NO_ACCESS)?;
    let refs: Vec<String> = match req.params.get("refs") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => return Err(missing("refs")),
    };
    if refs.len() < 2 {
        return Err(message(400, "Provide at least 2 refs"));
    }
    let base = st.projects[&pid]
        .merge_bases
        .get(&ref_pair(&refs[0], &refs[1]))
        .ok_or_else(|| not_found("Merge Base"))?;
    ok(commit_json(st, pid, base))
}

fn commit_json(st: &State, pid: u64, sha: &str) -> Value {
    let full = st.projects[&pid].project.path_with_namespace();
    let date = "2024-01-01T00:00:00.000+00:00";
    json!({
        "id": sha,
        "short_id": &sha[..sha.len().min(8)],
        "created_at": date,
        "parent_ids": [],
        "title": "Commit",
        "message": "Commit\n",
        "author_name": "Test Author",
        "author_email": "author@example.com",
        "authored_date": date,
        "committer_name": "Test Author",
        "committer_email": "author@example.com",
        "committed_date": date,
        "trailers": {},
        "extended_trailers": {},
        "web_url": format!("{}/{full}/-/commit/{sha}", st.root_url),
    })
}

// ---------------------------------------------------------------------------------------------
// Discussions and notes

fn position_json(p: &TestPosition) -> Value {
    json!({
        "base_sha": p.base_sha,
        "start_sha": p.start_sha,
        "head_sha": p.head_sha,
        "old_path": p.old_path,
        "new_path": p.new_path,
        "position_type": p.position_type,
        "old_line": p.old_line,
        "new_line": p.new_line,
        "line_range": null,
    })
}

fn note_json(st: &State, pid: u64, m: &MergeRequest, n: &NoteRec) -> Value {
    let note = &n.note;
    let mut v = json!({
        "id": note.id,
        "type": note.note_type,
        "body": note.body,
        "attachment": null,
        "author": user_basic_json(st, note.author_id),
        "created_at": iso(n.created_at),
        "updated_at": iso(n.updated_at),
        "system": note.system,
        "noteable_id": m.id,
        "noteable_type": "MergeRequest",
        "project_id": pid,
        "noteable_iid": m.mr.iid,
        "commands_changes": {},
        "resolvable": note.resolvable,
        "confidential": false,
        "internal": false,
        "imported": false,
        "imported_from": "none",
    });
    let obj = v.as_object_mut().expect("object");
    if let Some(p) = &note.position {
        obj.insert("commit_id".into(), Value::Null);
        obj.insert("position".into(), position_json(p));
    }
    if note.resolvable {
        obj.insert("resolved".into(), json!(note.resolved));
        obj.insert(
            "resolved_by".into(),
            n.resolved_by
                .map(|u| user_basic_json(st, u))
                .unwrap_or(Value::Null),
        );
        obj.insert("resolved_at".into(), json!(n.resolved_at.map(iso)));
    }
    v
}

fn discussion_json(st: &State, pid: u64, m: &MergeRequest, d: &Discussion) -> Value {
    json!({
        "id": d.id,
        "individual_note": d.individual_note,
        "notes": d.notes.iter().map(|n| note_json(st, pid, m, n)).collect::<Vec<_>>(),
    })
}

/// (discussion index, note index) of a note id.
fn find_note(m: &MergeRequest, raw_id: &str) -> Option<(usize, usize)> {
    let id: u64 = raw_id.parse().ok()?;
    m.discussions.iter().enumerate().find_map(|(d, disc)| {
        disc.notes
            .iter()
            .position(|n| n.note.id == id)
            .map(|n| (d, n))
    })
}

/// Adds a discussion (or, `individual`, a plain note) to a merge request; returns its id and
/// its note's id.
pub(super) fn create_discussion(
    st: &mut State,
    pid: u64,
    iid: u64,
    author: u64,
    body: &str,
    position: Option<TestPosition>,
    individual: bool,
) -> (String, u64) {
    let note_id = st.id();
    let did = discussion_id(note_id);
    let username = st.users[&author].username.clone();
    let now = SystemTime::now();
    let note_type = if individual {
        None
    } else if position.is_some() {
        Some("DiffNote".to_string())
    } else {
        Some("DiscussionNote".to_string())
    };
    let note = TestNote {
        id: note_id,
        discussion_id: did.clone(),
        author: username,
        author_id: author,
        body: body.to_string(),
        note_type,
        system: false,
        resolvable: !individual,
        resolved: false,
        position,
    };
    let project = st.project_mut(pid);
    project.last_activity_at = now;
    let mr = project.mrs.get_mut(&iid).expect("merge request");
    mr.updated_at = now;
    mr.discussions.push(Discussion {
        id: did.clone(),
        individual_note: individual,
        notes: vec![NoteRec {
            note,
            created_at: now,
            updated_at: now,
            resolved_by: None,
            resolved_at: None,
        }],
    });
    (did, note_id)
}

/// A reply in a discussion; replying to a plain note turns it into a thread, as GitLab does.
pub(super) fn add_reply(
    st: &mut State,
    pid: u64,
    iid: u64,
    discussion_id: &str,
    author: u64,
    body: &str,
) -> std::result::Result<u64, ()> {
    let note_id = st.id();
    let username = st.users[&author].username.clone();
    let now = SystemTime::now();
    let project = st.project_mut(pid);
    project.last_activity_at = now;
    let mr = project.mrs.get_mut(&iid).ok_or(())?;
    mr.updated_at = now;
    let d = mr
        .discussions
        .iter_mut()
        .find(|d| d.id == discussion_id)
        .ok_or(())?;
    if d.individual_note {
        d.individual_note = false;
        for n in &mut d.notes {
            n.note.note_type = Some("DiscussionNote".into());
            n.note.resolvable = !n.note.system;
        }
    }
    let first = &d.notes[0].note;
    let resolved = d
        .notes
        .iter()
        .filter(|n| n.note.resolvable)
        .all(|n| n.note.resolved);
    let note = TestNote {
        id: note_id,
        discussion_id: d.id.clone(),
        author: username,
        author_id: author,
        body: body.to_string(),
        note_type: first.note_type.clone(),
        system: false,
        resolvable: true,
        resolved,
        position: first.position.clone(),
    };
    let resolved_by = d.notes[0].resolved_by;
    d.notes.push(NoteRec {
        note,
        created_at: now,
        updated_at: now,
        resolved_by: resolved.then_some(resolved_by).flatten(),
        resolved_at: resolved.then_some(now),
    });
    Ok(note_id)
}

pub(super) fn resolve(d: &mut Discussion, resolved: bool, by: u64) {
    let now = SystemTime::now();
    for n in d.notes.iter_mut().filter(|n| n.note.resolvable) {
        n.note.resolved = resolved;
        n.resolved_by = resolved.then_some(by);
        n.resolved_at = resolved.then_some(now);
    }
}

/// Counts a note creation against the application limit; `Err` (429) past it.
fn note_creation_allowed(st: &mut State, user: u64) -> Result<()> {
    let limit = st.note_limit;
    let now = epoch(SystemTime::now());
    let window = st.note_windows.entry(user).or_default();
    if window.reset <= now {
        *window = Window {
            used: 0,
            reset: now + 60,
        };
    }
    window.used += 1;
    if limit.is_some_and(|limit| window.used > limit) {
        return Err(app_limited());
    }
    Ok(())
}

/// The note body: required, not blank, at most 1,000,000 characters.
fn note_body(req: &Req) -> Result<String> {
    let body = req.str("body").ok_or_else(|| missing("body"))?;
    if body.trim().is_empty() {
        return Err(bad_note(r#"{:note=>["can't be blank"]}"#));
    }
    if body.chars().count() > 1_000_000 {
        return Err(bad_note(
            r#"{:note=>["is too long (maximum is 1000000 characters)"]}"#,
        ));
    }
    Ok(body)
}

/// Reads and checks a diff note's position against the merge request's latest version and its
/// declared diff lines.
fn diff_position(m: &MergeRequest, params: &Value) -> Result<TestPosition> {
    let get = |key: &str| p_str(params, &["position", key]).filter(|s| !s.is_empty());
    let need = |key: &str| get(key).ok_or_else(|| missing(&format!("position[{key}]")));
    let position = TestPosition {
        base_sha: need("base_sha")?,
        start_sha: need("start_sha")?,
        head_sha: need("head_sha")?,
        position_type: need("position_type")?,
        old_path: get("old_path"),
        new_path: get("new_path"),
        old_line: p_u64(params, &["position", "old_line"])?,
        new_line: p_u64(params, &["position", "new_line"])?,
    };
    if !["text", "image", "file"].contains(&position.position_type.as_str()) {
        return Err(error(
            400,
            "position[position_type] does not have a valid value",
        ));
    }
    let Some(latest) = m.versions.last() else {
        return Err(bad_note(
            r#"{:noteable=>["doesn't support new-style diff notes"]}"#,
        ));
    };
    let v = &latest.version;
    if position.head_sha != v.head_commit_sha
        || position.start_sha != v.start_commit_sha
        || position.base_sha != v.base_commit_sha
    {
        return Err(bad_note(LINE_CODE_ERROR));
    }
    if position.position_type != "text" {
        return Ok(position);
    }
    let (Some(new_path), Some(old_path)) = (&position.new_path, &position.old_path) else {
        return Err(bad_note(LINE_CODE_ERROR));
    };
    if position.new_line.is_none() && position.old_line.is_none() {
        return Err(bad_note(LINE_CODE_ERROR));
    }
    let declared = m
        .diff_lines
        .keys()
        .any(|(head, _)| *head == v.head_commit_sha);
    if declared {
        let lines = m
            .diff_lines
            .get(&(v.head_commit_sha.clone(), new_path.clone()))
            .or_else(|| {
                m.diff_lines
                    .get(&(v.head_commit_sha.clone(), old_path.clone()))
            });
        let Some((new_lines, old_lines)) = lines else {
            return Err(bad_note(LINE_CODE_ERROR));
        };
        let in_diff = match (position.new_line, position.old_line) {
            (Some(n), _) => new_lines.contains(&n),
            (None, Some(o)) => old_lines.contains(&o),
            (None, None) => false,
        };
        if !in_diff {
            return Err(bad_note(LINE_CODE_ERROR));
        }
    }
    Ok(position)
}

fn post_discussion(st: &mut State, req: &Req) -> Result<Answer> {
    let (pid, iid) = mr_for(st, req)?;
    writable(st, pid)?;
    let user = req.user.ok_or_else(unauthorized)?;
    let body = note_body(req)?;
    let position = if p_present(&req.params, &["position"]) {
        Some(diff_position(&st.projects[&pid].mrs[&iid], &req.params)?)
    } else {
        None
    };
    note_creation_allowed(st, user)?;
    let (did, _) = create_discussion(st, pid, iid, user, &body, position, false);
    let mr = &st.projects[&pid].mrs[&iid];
    let d = mr
        .discussions
        .iter()
        .find(|d| d.id == did)
        .expect("discussion");
    created(discussion_json(st, pid, mr, d))
}

fn post_reply(st: &mut State, req: &Req) -> Result<Answer> {
    let (pid, iid) = mr_for(st, req)?;
    writable(st, pid)?;
    let user = req.user.ok_or_else(unauthorized)?;
    let body = note_body(req)?;
    if !st.projects[&pid].mrs[&iid]
        .discussions
        .iter()
        .any(|d| d.id == req.arg(2))
    {
        return Err(not_found("Discussion"));
    }
    note_creation_allowed(st, user)?;
    let note_id =
        add_reply(st, pid, iid, req.arg(2), user, &body).map_err(|_| not_found("Discussion"))?;
    let mr = &st.projects[&pid].mrs[&iid];
    let (d, n) = find_note(mr, &note_id.to_string()).expect("note");
    created(note_json(st, pid, mr, &mr.discussions[d].notes[n]))
}

fn resolve_discussion(st: &mut State, req: &Req) -> Result<Answer> {
    let (pid, iid) = mr_for(st, req)?;
    writable(st, pid)?;
    let user = req.user.ok_or_else(unauthorized)?;
    let resolved = p_bool(&req.params, "resolved")?.ok_or_else(|| missing("resolved"))?;
    let mr = st
        .projects
        .get_mut(&pid)
        .and_then(|p| p.mrs.get_mut(&iid))
        .expect("merge request");
    let d = mr
        .discussions
        .iter_mut()
        .find(|d| d.id == req.arg(2))
        .ok_or_else(|| not_found("Discussion"))?;
    if !d.notes.iter().any(|n| n.note.resolvable) {
        return Err(forbidden());
    }
    resolve(d, resolved, user);
    mr.updated_at = SystemTime::now();
    let mr = &st.projects[&pid].mrs[&iid];
    let d = mr
        .discussions
        .iter()
        .find(|d| d.id == req.arg(2))
        .expect("discussion");
    ok(discussion_json(st, pid, mr, d))
}

fn list_notes(st: &State, req: &Req) -> Result<Answer> {
    let (pid, iid) = mr_for(st, req)?;
    let mr = &st.projects[&pid].mrs[&iid];
    let order_by = req.str("order_by").unwrap_or_else(|| "created_at".into());
    let asc = sort_order(req, "desc")?;
    let mut notes: Vec<&NoteRec> = mr.discussions.iter().flat_map(|d| &d.notes).collect();
    match order_by.as_str() {
        "created_at" => notes.sort_by_key(|n| (n.created_at, n.note.id)),
        "updated_at" => notes.sort_by_key(|n| (n.updated_at, n.note.id)),
        _ => return Err(error(400, "order_by does not have a valid value")),
    }
    if !asc {
        notes.reverse();
    }
    paginate(st, req, notes.len(), |range| {
        notes[range]
            .iter()
            .map(|n| note_json(st, pid, mr, n))
            .collect()
    })
}

fn post_note(st: &mut State, req: &Req) -> Result<Answer> {
    let (pid, iid) = mr_for(st, req)?;
    writable(st, pid)?;
    let user = req.user.ok_or_else(unauthorized)?;
    let body = note_body(req)?;
    note_creation_allowed(st, user)?;
    let (_, note_id) = create_discussion(st, pid, iid, user, &body, None, true);
    let mr = &st.projects[&pid].mrs[&iid];
    let (d, n) = find_note(mr, &note_id.to_string()).expect("note");
    created(note_json(st, pid, mr, &mr.discussions[d].notes[n]))
}

fn put_note(st: &mut State, req: &Req) -> Result<Answer> {
    let (pid, iid) = mr_for(st, req)?;
    writable(st, pid)?;
    let user = req.user.ok_or_else(unauthorized)?;
    let body = note_body(req)?;
    let mr = st
        .projects
        .get_mut(&pid)
        .and_then(|p| p.mrs.get_mut(&iid))
        .expect("merge request");
    let (d, n) = find_note(mr, req.arg(2)).ok_or_else(|| not_found("Note"))?;
    let rec = &mut mr.discussions[d].notes[n];
    if rec.note.author_id != user || rec.note.system {
        return Err(forbidden());
    }
    rec.note.body = body;
    rec.updated_at = SystemTime::now();
    let mr = &st.projects[&pid].mrs[&iid];
    ok(note_json(st, pid, mr, &mr.discussions[d].notes[n]))
}

// ---------------------------------------------------------------------------------------------
// Commit statuses

const STATES: &[&str] = &[
    "pending", "running", "success", "failed", "canceled", "skipped",
];

fn status_json(st: &State, s: &StatusRec) -> Value {
    let author = st.user_by_name(&s.status.author).map(|u| u.id).unwrap_or(0);
    json!({
        "id": s.status.id,
        "sha": s.status.sha,
        "ref": s.status.ref_name,
        "status": s.status.status,
        "name": s.status.name,
        "target_url": s.status.target_url,
        "description": s.status.description,
        "created_at": iso(s.created_at),
        "started_at": s.started_at.map(iso),
        "finished_at": s.finished_at.map(iso),
        "allow_failure": false,
        "coverage": null,
        "pipeline_id": s.pipeline_id,
        "author": user_basic_json(st, author),
    })
}

fn post_status(st: &mut State, req: &Req) -> Result<Answer> {
    let pid = project_for(st, req, req.arg(0), access::DEVELOPER)?;
    writable(st, pid)?;
    let user = req.user.ok_or_else(unauthorized)?;
    let sha = req.arg(1).to_string();
    let state = req.str("state").ok_or_else(|| missing("state"))?;
    if !STATES.contains(&state.as_str()) {
        return Err(error(400, "state does not have a valid value"));
    }
    if !st.knows_commit(pid, &sha) {
        return Err(not_found("Commit"));
    }
    let name = req
        .str("name")
        .or_else(|| req.str("context"))
        .unwrap_or_else(|| "default".into());
    let ref_name = req.str("ref").or_else(|| {
        let p = &st.projects[&pid];
        p.mrs
            .values()
            .find(|m| m.mr.sha == sha)
            .map(|m| m.mr.source_branch.clone())
            .or_else(|| p.project.default_branch.clone())
    });
    let username = st.users[&user].username.clone();
    let idempotent = st.idempotent_statuses;
    let now = SystemTime::now();
    let existing = st.projects[&pid].statuses.iter().rposition(|s| {
        s.status.sha == sha
            && s.status.name == name
            && s.status.ref_name == ref_name
            && matches!(s.status.status.as_str(), "pending" | "running")
    });
    let index = match existing {
        Some(i) => {
            let from = st.projects[&pid].statuses[i].status.status.clone();
            let event = match state.as_str() {
                "pending" => "enqueue",
                "running" => "run",
                "success" => "succeed",
                "failed" => "drop",
                "canceled" => "cancel",
                _ => "skip",
            };
            let invalid = matches!(
                (from.as_str(), state.as_str()),
                ("pending", "pending") | ("running", "running") | ("running", "pending")
            );
            if invalid && !idempotent {
                return Err(message(
                    400,
                    format!(
                        "Cannot transition status via :{event} from :{from} (Reason(s): Status cannot transition via \"{event}\")"
                    ),
                ));
            }
            i
        }
        None => {
            let id = st.id();
            let pipeline_id = st.projects[&pid]
                .statuses
                .iter()
                .find(|s| s.status.sha == sha)
                .map(|s| s.pipeline_id)
                .unwrap_or(id + 500_000);
            let p = st.project_mut(pid);
            p.statuses.push(StatusRec {
                status: TestStatus {
                    id,
                    sha: sha.clone(),
                    name: name.clone(),
                    status: "created".into(),
                    target_url: None,
                    description: None,
                    ref_name: ref_name.clone(),
                    author: username.clone(),
                },
                pipeline_id,
                created_at: now,
                started_at: None,
                finished_at: None,
            });
            p.statuses.len() - 1
        }
    };
    let target_url = req.str("target_url");
    let description = req.str("description");
    let p = st.project_mut(pid);
    p.last_activity_at = now;
    let rec = &mut p.statuses[index];
    rec.status.status = state.clone();
    rec.status.author = username;
    if target_url.is_some() {
        rec.status.target_url = target_url;
    }
    if description.is_some() {
        rec.status.description = description;
    }
    match state.as_str() {
        "running" => rec.started_at = Some(now),
        "pending" => {}
        _ => {
            rec.finished_at = Some(now);
            if rec.started_at.is_none() && state != "skipped" {
                rec.started_at = Some(now);
            }
        }
    }
    let body = status_json(st, &st.projects[&pid].statuses[index]);
    created(body)
}
