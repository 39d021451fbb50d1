//! Request handling: one axum fallback handler that records the request, serves injected
//! faults, authenticates, routes by path segments and adds GitHub's response headers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};

use super::{
    graphql, random_string, Auth, CheckRun, FaultKind, Inner, IssueComment, MintedToken, PullRec,
    RecordedRequest, Repo, Review, ReviewComment, State, TestCheckOutput, TestCheckRun,
    TestComment, TestReview, TestReviewComment, Thread, Token,
};

const DOCS: &str = "https://docs.github.com/rest";

pub(super) fn router(inner: Arc<Inner>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(inner)
}

/// An error answer: GitHub's `{"message", "documentation_url", "status"}` (+ `errors`).
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    message: String,
    errors: Option<Value>,
}

pub(super) fn err(status: u16, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::from_u16(status).expect("status"),
        message: message.into(),
        errors: None,
    }
}

fn not_found() -> ApiError {
    err(404, "Not Found")
}

fn forbidden_integration() -> ApiError {
    err(403, "Resource not accessible by integration")
}

fn validation(errors: Value) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: "Validation Failed".into(),
        errors: Some(errors),
    }
}

fn unprocessable(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: "Unprocessable Entity".into(),
        errors: Some(json!([message])),
    }
}

/// A successful answer.
pub(super) struct Reply {
    status: u16,
    body: Value,
    link: Option<String>,
}

impl Reply {
    pub(super) fn new(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            link: None,
        }
    }
}

fn ok(body: Value) -> Result<Reply, ApiError> {
    Ok(Reply {
        status: 200,
        body,
        link: None,
    })
}

fn created(body: Value) -> Result<Reply, ApiError> {
    Ok(Reply {
        status: 201,
        body,
        link: None,
    })
}

/// The credential, as resolved.
#[derive(Clone)]
pub(super) enum Cred {
    None,
    Jwt(u64),
    Token(String, Token),
    Invalid(u16, String),
}

impl Cred {
    fn auth(&self) -> Auth {
        match self {
            Cred::None => Auth::None,
            Cred::Jwt(app_id) => Auth::Jwt { app_id: *app_id },
            Cred::Token(_, t) => Auth::InstallationToken {
                installation_id: t.installation_id,
                repository_ids: t.repository_ids.clone(),
                permissions: t.permissions.clone(),
            },
            Cred::Invalid(..) => Auth::Invalid,
        }
    }

    fn rate_key(&self) -> String {
        match self {
            Cred::None | Cred::Invalid(..) => "anonymous".into(),
            Cred::Jwt(app) => format!("app:{app}"),
            Cred::Token(token, _) => token.clone(),
        }
    }
}

pub(super) fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// ISO 8601 in seconds, UTC, like GitHub: `2011-01-26T19:01:12Z`.
pub(super) fn iso(t: SystemTime) -> String {
    let secs = epoch(t) as i64;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// A GraphQL-style global node id: `<prefix>kwDO<base64 of the id>`.
pub(crate) fn node_id(prefix: &str, id: u64) -> String {
    format!(
        "{prefix}kwDO{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.to_be_bytes())
    )
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| {
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (
                    percent_decode(&k.replace('+', " ")),
                    percent_decode(&v.replace('+', " ")),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Verifies an App JWT as GitHub does: RS256 signed with the App's key, `iss` the App id
/// (number or string) or client id, `iat`/`exp` integers, `exp` in the future and at most
/// 10 minutes after `iat` (and from now).
fn verify_jwt(st: &State, jwt: &str) -> Result<u64, String> {
    const UNDECODABLE: &str = "A JSON web token could not be decoded";
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| UNDECODABLE.to_string())?;
    if header.alg != jsonwebtoken::Algorithm::RS256 {
        return Err(UNDECODABLE.into());
    }
    let payload = jwt.split('.').nth(1).ok_or(UNDECODABLE)?;
    let claims: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(UNDECODABLE)?;
    let app = match &claims["iss"] {
        Value::Number(n) => n.as_u64().and_then(|id| st.apps.get(&id)),
        Value::String(s) => st
            .apps
            .values()
            .find(|a| s.parse::<u64>().ok() == Some(a.id) || *s == a.client_id),
        _ => None,
    }
    .ok_or("'Issuer' claim ('iss') must be an Integer")?;
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(app.public_key_pem.as_bytes())
        .map_err(|_| UNDECODABLE.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(jwt, &key, &validation).map_err(|_| UNDECODABLE.to_string())?;
    let now = epoch(SystemTime::now());
    let iat = claims["iat"].as_u64().ok_or(
        "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
    )?;
    let exp = claims["exp"].as_u64().ok_or(
        "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
    )?;
    if exp <= now {
        return Err("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires".into());
    }
    if iat > now + 60 {
        return Err("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued".into());
    }
    if exp.saturating_sub(iat) > 600 || exp > now + 600 + 5 {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    Ok(app.id)
}

fn resolve_cred(st: &State, headers: &HeaderMap) -> Cred {
    let Some(value) = headers.get("authorization") else {
        return Cred::None;
    };
    let Ok(value) = value.to_str() else {
        return Cred::Invalid(401, "Bad credentials".into());
    };
    let (scheme, credential) = value.trim().split_once(' ').unwrap_or(("", value));
    let scheme = scheme.to_ascii_lowercase();
    let credential = credential.trim();
    if scheme != "bearer" && scheme != "token" {
        return Cred::Invalid(401, "Bad credentials".into());
    }
    if let Some(token) = st.tokens.get(credential) {
        if token.expires_at <= SystemTime::now() {
            return Cred::Invalid(401, "Bad credentials".into());
        }
        return Cred::Token(credential.to_string(), token.clone());
    }
    if credential.split('.').count() == 3 && !credential.starts_with("ghs_") {
        if scheme != "bearer" {
            return Cred::Invalid(401, "Bad credentials".into());
        }
        return match verify_jwt(st, credential) {
            Ok(app_id) => Cred::Jwt(app_id),
            Err(message) => Cred::Invalid(401, message),
        };
    }
    Cred::Invalid(401, "Bad credentials".into())
}

/// One parsed request.
pub(super) struct Req {
    pub method: Method,
    pub segs: Vec<String>,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    pub cred: Cred,
    pub path: String,
}

impl Req {
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn body(&self) -> &Value {
        static NULL: Value = Value::Null;
        self.body.as_ref().unwrap_or(&NULL)
    }

    fn is_graphql(&self) -> bool {
        self.segs.len() == 1 && self.segs[0] == "graphql"
    }
}

async fn handle(
    AxState(inner): AxState<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let raw_query = uri.query().map(str::to_string);
    let body_json = if body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice::<Value>(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
        )
    };
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();

    // Record, pick a fault, resolve the credential.
    let (index, cred, fault) = {
        let mut st = inner.lock();
        let cred = resolve_cred(&st, &headers);
        st.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: raw_query.clone(),
            auth: cred.auth(),
            body: body_json.clone(),
            at: Instant::now(),
            status: 0,
            response: None,
            headers: headers
                .iter()
                .map(|(name, value)| {
                    let value = value.to_str().unwrap_or("<binary>");
                    let value = if name.as_str() == "authorization" {
                        // The scheme only: credentials never leave the server.
                        value.split(' ').next().unwrap_or("").to_string()
                    } else {
                        value.to_string()
                    };
                    (name.as_str().to_string(), value)
                })
                .collect(),
        });
        let index = st.requests.len() - 1;
        let fault = st
            .faults
            .iter()
            .position(|f| f.times > 0 && path.contains(&f.path_contains))
            .map(|i| {
                let kind = st.faults[i].kind.clone();
                st.faults[i].times -= 1;
                if st.faults[i].times == 0 {
                    st.faults.remove(i);
                }
                kind
            });
        (index, cred, fault)
    };
    let req = Req {
        method,
        segs,
        query: parse_query(raw_query.as_deref()),
        body: body_json,
        cred,
        path,
    };
    let resource = if req.is_graphql() { "graphql" } else { "core" };
    let user_agent = headers.get("user-agent").is_some_and(|v| !v.is_empty());

    // Rate limit accounting (per credential and resource).
    // Counted before routing: an exhausted limit answers 403 and changes nothing.
    let (limit, mut remaining, mut reset, mut used, exhausted) = {
        let mut st = inner.lock();
        let limit = match req.cred {
            Cred::None | Cred::Invalid(..) => 60,
            _ => st.rate_limit,
        };
        let now = epoch(SystemTime::now());
        let counter = st.rate.entry((req.cred.rate_key(), resource)).or_default();
        if counter.reset <= now {
            counter.used = 0;
            counter.reset = now + 3600;
        }
        let exhausted = counter.used >= limit;
        if !exhausted && !matches!(req.cred, Cred::Invalid(..)) {
            counter.used += 1;
        }
        let (used, reset) = (counter.used, counter.reset);
        (limit, limit.saturating_sub(used), reset, used, exhausted)
    };

    let mut extra: Vec<(&'static str, String)> = Vec::new();
    let mut rate_override: Option<(u64, u64)> = None; // (remaining, reset)
    let outcome: Result<Reply, ApiError> = match fault {
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(d).await;
            if exhausted {
                Err(err(403, rate_limit_message(&req.cred)))
            } else {
                route_locked(&inner, &req)
            }
        }
        Some(FaultKind::SecondaryRateLimit { retry_after_secs }) => {
            extra.push(("retry-after", retry_after_secs.to_string()));
            Err(err(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
            ))
        }
        Some(FaultKind::TooManyRequests { retry_after_secs }) => {
            extra.push(("retry-after", retry_after_secs.to_string()));
            Err(err(
                429,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            ))
        }
        Some(FaultKind::PrimaryExhausted { reset_in_secs }) => {
            let reset = epoch(SystemTime::now()) + reset_in_secs;
            rate_override = Some((0, reset));
            Err(err(403, rate_limit_message(&req.cred)))
        }
        Some(FaultKind::ServerError { status }) => {
            let response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                [("content-type", "text/html")],
                "<html><body><h1>Server Error</h1><p>We couldn't respond to your request in time.</p></body></html>",
            )
                .into_response();
            inner.lock().requests[index].status = status;
            return response;
        }
        None if !user_agent => Err(err(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.",
        )),
        None if exhausted => Err(err(403, rate_limit_message(&req.cred))),
        None => route_locked(&inner, &req),
    };
    if let Some((r, at)) = rate_override {
        (remaining, reset, used) = (r, at, limit);
    }

    let (status, body, link) = match outcome {
        Ok(reply) => (
            StatusCode::from_u16(reply.status).expect("status"),
            reply.body,
            reply.link,
        ),
        Err(e) => {
            let mut body = json!({
                "message": e.message,
                "documentation_url": DOCS,
                "status": e.status.as_u16().to_string(),
            });
            if let Some(errors) = e.errors {
                body["errors"] = errors;
            }
            (e.status, body, None)
        }
    };
    {
        let mut st = inner.lock();
        st.requests[index].status = status.as_u16();
        st.requests[index].response = (status != StatusCode::NO_CONTENT).then(|| body.clone());
    }

    let mut response = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        (
            status,
            [("content-type", "application/json; charset=utf-8")],
            serde_json::to_string(&body).expect("json"),
        )
            .into_response()
    };
    let h = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("header"),
        );
    };
    set("x-github-media-type", "github.v3; format=json".into());
    set("x-github-api-version-selected", "2022-11-28".into());
    set(
        "x-github-request-id",
        format!("{:X}:{index}", index + 0xC0DE),
    );
    set("x-ratelimit-limit", limit.to_string());
    set("x-ratelimit-remaining", remaining.to_string());
    set("x-ratelimit-reset", reset.to_string());
    set("x-ratelimit-used", used.to_string());
    set("x-ratelimit-resource", resource.to_string());
    if let Some(link) = link {
        set("link", link);
    }
    for (name, value) in extra {
        set(name, value);
    }
    response
}

fn rate_limit_message(cred: &Cred) -> String {
    match cred {
        Cred::Token(_, t) => format!(
            "API rate limit exceeded for installation ID {}. If you reach out to GitHub Support for help, please include the request ID.",
            t.installation_id
        ),
        _ => "API rate limit exceeded. If you reach out to GitHub Support for help, please include the request ID.".into(),
    }
}

fn route_locked(inner: &Inner, req: &Req) -> Result<Reply, ApiError> {
    let mut st = inner.lock();
    route(&mut st, req)
}

fn route(st: &mut State, req: &Req) -> Result<Reply, ApiError> {
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    let m = &req.method;
    let get = *m == Method::GET;
    let post = *m == Method::POST;
    let patch = *m == Method::PATCH;
    let delete = *m == Method::DELETE;
    match segs.as_slice() {
        ["graphql"] if post => graphql::handle(st, req),
        ["app"] if get => get_app(st, req),
        ["app", "installations"] if get => list_installations(st, req),
        ["app", "installations", id] if get => get_installation(st, req, id),
        ["app", "installations", id, "access_tokens"] if post => mint_token(st, req, id),
        ["app-manifests", code, "conversions"] if post => manifest_conversion(st, req, code),
        ["repos", o, r, "installation"] if get => repo_installation(st, req, o, r),
        ["installation", "repositories"] if get => installation_repos(st, req),
        ["repositories", id] if get => {
            let id: u64 = id.parse().map_err(|_| not_found())?;
            let (owner, name) = {
                let repo = st.repos.get(&id).ok_or_else(not_found)?;
                (repo.owner.clone(), repo.name.clone())
            };
            let repo_id = repo_access(st, req, &owner, &name, &[("metadata", "read")])?;
            ok(full_repo_json(st, repo_id))
        }
        ["repos", o, r] if get => {
            let repo_id = repo_access(st, req, o, r, &[("metadata", "read")])?;
            ok(full_repo_json(st, repo_id))
        }
        ["repos", o, r, "compare", rest @ ..] if get && !rest.is_empty() => {
            compare(st, req, o, r, &rest.join("/"))
        }
        ["repos", o, r, "pulls"] if get => list_pulls(st, req, o, r),
        ["repos", o, r, "pulls", n] if get && n.parse::<u64>().is_ok() => {
            let repo_id = repo_access(st, req, o, r, &[("pull_requests", "read")])?;
            let n: u64 = n.parse().expect("number");
            let repo = &st.repos[&repo_id];
            let pull = repo.pulls.get(&n).ok_or_else(not_found)?;
            ok(pull_json(st, repo, pull, true))
        }
        ["repos", o, r, "collaborators", user, "permission"] if get => {
            collaborator_permission(st, req, o, r, user)
        }
        ["repos", o, r, "check-runs"] if post => create_check_run(st, req, o, r),
        ["repos", o, r, "check-runs", id] if patch || get => check_run(st, req, o, r, id),
        ["repos", o, r, "issues", n, "comments"] if get || post => issue_comments(st, req, o, r, n),
        ["repos", o, r, "issues", "comments", id] if get || patch || delete => {
            issue_comment(st, req, o, r, id)
        }
        ["repos", o, r, "pulls", n, "comments"] if get || post => review_comments(st, req, o, r, n),
        ["repos", o, r, "pulls", n, "comments", id, "replies"] if post => {
            reply(st, req, o, r, n, id)
        }
        ["repos", o, r, "pulls", n, "reviews"] if get || post => reviews(st, req, o, r, n),
        ["repos", o, r, "pulls", "comments", id] if get || patch || delete => {
            review_comment(st, req, o, r, id)
        }
        _ => Err(not_found()),
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials and access

fn refuse(cred: &Cred) -> ApiError {
    match cred {
        Cred::Invalid(status, message) => err(*status, message.clone()),
        _ => err(401, "Bad credentials"),
    }
}

/// The App a request's JWT authenticates, or the error GitHub answers.
fn require_jwt(req: &Req) -> Result<u64, ApiError> {
    match &req.cred {
        Cred::Jwt(app) => Ok(*app),
        Cred::Token(..) => Err(err(401, "A JSON web token could not be decoded")),
        Cred::None => Err(err(
            401,
            "You must authenticate with a JSON web token to access this endpoint.",
        )),
        other => Err(refuse(other)),
    }
}

fn level(l: &str) -> u8 {
    match l {
        "read" => 1,
        "write" => 2,
        "admin" => 3,
        _ => 0,
    }
}

fn token_allows(token: &Token, needs: &[(&str, &str)]) -> bool {
    needs.is_empty()
        || needs.iter().any(|(perm, lvl)| {
            (*perm == "metadata" && *lvl == "read")
                || token
                    .permissions
                    .get(*perm)
                    .is_some_and(|have| level(have) >= level(lvl))
        })
}

/// The repository `owner/name` if the request's credential may do what `needs` says
/// (any one of the (permission, level) pairs); errors as GitHub answers them.
pub(super) fn repo_access(
    st: &State,
    req: &Req,
    owner: &str,
    name: &str,
    needs: &[(&str, &str)],
) -> Result<u64, ApiError> {
    let write = needs.iter().any(|(_, l)| *l != "read");
    match &req.cred {
        Cred::Token(_, token) => {
            let repo = st.repo_by_name(owner, name).ok_or_else(not_found)?;
            if repo.installation_id != token.installation_id
                || token
                    .repository_ids
                    .as_ref()
                    .is_some_and(|ids| !ids.contains(&repo.id))
            {
                return Err(not_found());
            }
            if st
                .installations
                .get(&token.installation_id)
                .is_some_and(|i| i.suspended_at.is_some())
            {
                return Err(err(403, "This installation has been suspended"));
            }
            if !token_allows(token, needs) {
                return Err(forbidden_integration());
            }
            if write && repo.archived {
                return Err(err(403, "Repository was archived so is read-only."));
            }
            Ok(repo.id)
        }
        Cred::Jwt(_) => Err(forbidden_integration()),
        Cred::None => {
            let repo = st.repo_by_name(owner, name).ok_or_else(not_found)?;
            if repo.private {
                Err(not_found())
            } else if write {
                Err(err(401, "Requires authentication"))
            } else {
                Ok(repo.id)
            }
        }
        other => Err(refuse(other)),
    }
}

fn token_of(req: &Req) -> Option<&Token> {
    match &req.cred {
        Cred::Token(_, t) => Some(t),
        _ => None,
    }
}

/// The `<slug>[bot]` login of the App behind the request's token.
fn bot_login(st: &State, req: &Req) -> String {
    token_of(req)
        .and_then(|t| st.app_of_installation(t.installation_id))
        .map(|a| format!("{}[bot]", a.slug))
        .unwrap_or_else(|| "ghost".into())
}

// ---------------------------------------------------------------------------------------------
// Pagination

fn paginate(
    st: &State,
    req: &Req,
    items: Vec<Value>,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let per_page = req
        .q("per_page")
        .map(|v| v.parse::<usize>().map_err(|_| err(422, "Invalid per_page")))
        .transpose()?
        .unwrap_or(30)
        .clamp(1, 100);
    let page = req
        .q("page")
        .map(|v| v.parse::<usize>().map_err(|_| err(422, "Invalid page")))
        .transpose()?
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let url = |p: usize| {
        let mut params: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        params.push(format!("per_page={per_page}"));
        params.push(format!("page={p}"));
        format!("<{}{}?{}>", st.base_url, req.path, params.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", url(page - 1)));
    }
    if page < last {
        links.push(format!("{}; rel=\"next\"", url(page + 1)));
        links.push(format!("{}; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", url(1)));
    }
    Ok((slice, (!links.is_empty()).then(|| links.join(", "))))
}

fn paged(st: &State, req: &Req, items: Vec<Value>) -> Result<Reply, ApiError> {
    let (page, link) = paginate(st, req, items)?;
    Ok(Reply {
        status: 200,
        body: Value::Array(page),
        link,
    })
}

// ---------------------------------------------------------------------------------------------
// JSON shapes

pub(super) fn user_json(st: &State, login: &str, kind: &str) -> Value {
    let id = st
        .users
        .get(&login.to_ascii_lowercase())
        .copied()
        .unwrap_or(0);
    let mut user = json!({
        "login": login,
        "id": id,
        "node_id": node_id("U_", id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "html_url": format!("https://github.com/{login}"),
        "type": kind,
        "site_admin": false,
    });
    add_user_urls(st, &mut user, login);
    user
}

/// The API URLs every user object carries (GitHub's `simple-user`).
fn add_user_urls(st: &State, user: &mut Value, login: &str) {
    let url = format!(
        "{}/users/{}",
        st.base_url,
        login.replace('[', "%5B").replace(']', "%5D")
    );
    let fields = [
        ("followers_url", format!("{url}/followers")),
        ("following_url", format!("{url}/following{{/other_user}}")),
        ("gists_url", format!("{url}/gists{{/gist_id}}")),
        ("starred_url", format!("{url}/starred{{/owner}}{{/repo}}")),
        ("subscriptions_url", format!("{url}/subscriptions")),
        ("organizations_url", format!("{url}/orgs")),
        ("repos_url", format!("{url}/repos")),
        ("events_url", format!("{url}/events{{/privacy}}")),
        ("received_events_url", format!("{url}/received_events")),
        ("url", url.clone()),
    ];
    for (k, v) in fields {
        user[k] = json!(v);
    }
}

fn bot_json(st: &State, app_id: u64) -> Value {
    let slug = st
        .apps
        .get(&app_id)
        .map(|a| a.slug.clone())
        .unwrap_or_default();
    let login = format!("{slug}[bot]");
    let id = app_id + 1_000_000;
    let mut bot = json!({
        "login": login,
        "id": id,
        "node_id": node_id("BOT_", app_id),
        "avatar_url": format!("https://avatars.githubusercontent.com/in/{app_id}?v=4"),
        "gravatar_id": "",
        "html_url": format!("https://github.com/apps/{slug}"),
        "type": "Bot",
        "site_admin": false,
    });
    add_user_urls(st, &mut bot, &login);
    bot
}

fn author_json(st: &State, login: &str) -> Value {
    if let Some(slug) = login.strip_suffix("[bot]") {
        if let Some(app) = st.apps.values().find(|a| a.slug == slug) {
            return bot_json(st, app.id);
        }
    }
    user_json(st, login, "User")
}

fn app_json(st: &State, app_id: u64) -> Value {
    let app = &st.apps[&app_id];
    json!({
        "id": app.id,
        "slug": app.slug,
        "node_id": node_id("A_", app.id),
        "client_id": app.client_id,
        "owner": user_json(st, &app.owner, "Organization"),
        "name": app.slug,
        "description": "",
        "external_url": "https://picket.example",
        "html_url": format!("https://github.com/apps/{}", app.slug),
        "created_at": iso(app.created_at),
        "updated_at": iso(app.created_at),
        "permissions": app.permissions,
        "events": app.events,
        "installations_count": st.installations.values().filter(|i| i.app_id == app.id).count(),
    })
}

fn installation_json(st: &State, id: u64) -> Value {
    let inst = &st.installations[&id];
    let app = &st.apps[&inst.app_id];
    json!({
        "id": inst.id,
        "account": user_json(st, &inst.account, "Organization"),
        "repository_selection": inst.repository_selection,
        "access_tokens_url": format!("{}/app/installations/{}/access_tokens", st.base_url, inst.id),
        "repositories_url": format!("{}/installation/repositories", st.base_url),
        "html_url": format!("https://github.com/organizations/{}/settings/installations/{}", inst.account, inst.id),
        "app_id": app.id,
        "app_slug": app.slug,
        "target_id": inst.account_id,
        "target_type": "Organization",
        "permissions": st.installation_permissions(id),
        "events": app.events,
        "created_at": iso(inst.created_at),
        "updated_at": iso(inst.created_at),
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "suspended_by": inst.suspended_at.map(|_| user_json(st, &inst.account, "User")),
        "suspended_at": inst.suspended_at.map(iso),
    })
}

/// What a repository object shows.
struct RepoView<'a> {
    id: u64,
    owner: &'a str,
    owner_type: &'a str,
    name: &'a str,
    private: bool,
    fork: bool,
    archived: bool,
    clone_url: String,
    default_branch: &'a str,
    created: SystemTime,
    push: bool,
}

/// A repository object (GitHub's `repository` / `full-repository` fields).
fn repo_object(st: &State, r: RepoView<'_>) -> Value {
    let full_name = format!("{}/{}", r.owner, r.name);
    let url = format!("{}/repos/{full_name}", st.base_url);
    let mut out = json!({
        "id": r.id,
        "node_id": node_id("R_", r.id),
        "name": r.name,
        "full_name": full_name,
        "private": r.private,
        "owner": user_json(st, r.owner, r.owner_type),
        "html_url": format!("https://github.com/{full_name}"),
        "description": null,
        "fork": r.fork,
        "url": url,
        "clone_url": r.clone_url,
        "git_url": format!("git://github.com/{full_name}.git"),
        "ssh_url": format!("git@github.com:{full_name}.git"),
        "svn_url": format!("https://github.com/{full_name}"),
        "default_branch": r.default_branch,
        "archived": r.archived,
        "disabled": false,
        "visibility": if r.private { "private" } else { "public" },
        "topics": [],
        "has_issues": true,
        "has_projects": false,
        "has_wiki": false,
        "has_pages": false,
        "has_downloads": false,
        "has_discussions": false,
        "allow_forking": false,
        "is_template": false,
        "web_commit_signoff_required": false,
        "permissions": {"admin": false, "maintain": false, "push": r.push, "triage": false, "pull": true},
        "pushed_at": iso(r.created),
        "created_at": iso(r.created),
        "updated_at": iso(r.created),
    });
    for k in ["mirror_url", "homepage", "language", "license"] {
        out[k] = Value::Null;
    }
    for k in [
        "size",
        "forks",
        "forks_count",
        "stargazers_count",
        "watchers",
        "watchers_count",
        "open_issues",
        "open_issues_count",
    ] {
        out[k] = json!(0);
    }
    let urls = [
        ("archive_url", "/{archive_format}{/ref}"),
        ("assignees_url", "/assignees{/user}"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("branches_url", "/branches{/branch}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("comments_url", "/comments{/number}"),
        ("commits_url", "/commits{/sha}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("contents_url", "/contents/{+path}"),
        ("contributors_url", "/contributors"),
        ("deployments_url", "/deployments"),
        ("downloads_url", "/downloads"),
        ("events_url", "/events"),
        ("forks_url", "/forks"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("hooks_url", "/hooks"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("issue_events_url", "/issues/events{/number}"),
        ("issues_url", "/issues{/number}"),
        ("keys_url", "/keys{/key_id}"),
        ("labels_url", "/labels{/name}"),
        ("languages_url", "/languages"),
        ("merges_url", "/merges"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("pulls_url", "/pulls{/number}"),
        ("releases_url", "/releases{/id}"),
        ("stargazers_url", "/stargazers"),
        ("statuses_url", "/statuses/{sha}"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("tags_url", "/tags"),
        ("teams_url", "/teams"),
        ("trees_url", "/git/trees{/sha}"),
    ];
    for (k, suffix) in urls {
        out[k] = json!(format!("{url}{suffix}"));
    }
    out
}

fn repo_value(st: &State, repo: &Repo, token: Option<&Token>) -> Value {
    let push = token.is_some_and(|t| t.permissions.get("contents").is_some_and(|l| level(l) >= 2));
    repo_object(
        st,
        RepoView {
            id: repo.id,
            owner: &repo.owner,
            owner_type: "Organization",
            name: &repo.name,
            private: repo.private,
            fork: false,
            archived: repo.archived,
            clone_url: repo.clone_url.clone(),
            default_branch: &repo.default_branch,
            created: repo.created_at,
            push,
        },
    )
}

pub(super) fn repo_json(st: &State, repo_id: u64) -> Value {
    repo_value(st, &st.repos[&repo_id], None)
}

/// The `repository` of a webhook payload.
pub(super) fn webhook_repo_json(st: &State, repo_id: u64) -> Value {
    let mut out = repo_json(st, repo_id);
    if let Some(map) = out.as_object_mut() {
        map.remove("permissions");
    }
    out
}

/// A pull request as an issue (the `issue` of `issue_comment` events on pull requests).
pub(super) fn issue_of_pull_json(st: &State, repo: &Repo, rec: &PullRec) -> Value {
    let full_name = repo.full_name();
    let p = &rec.pull;
    let url = format!("{}/repos/{full_name}/issues/{}", st.base_url, p.number);
    let comments = st
        .issue_comments
        .iter()
        .filter(|c| c.repo_id == repo.id && c.number == p.number)
        .count();
    json!({
        "url": url,
        "repository_url": format!("{}/repos/{full_name}", st.base_url),
        "labels_url": format!("{url}/labels{{/name}}"),
        "comments_url": format!("{url}/comments"),
        "events_url": format!("{url}/events"),
        "html_url": format!("https://github.com/{full_name}/pull/{}", p.number),
        "id": rec.id + 1,
        "node_id": node_id("PR_", rec.id),
        "number": p.number,
        "title": p.title,
        "user": user_json(st, &p.author, "User"),
        "labels": [],
        "state": rec.state,
        "locked": false,
        "assignee": null,
        "assignees": [],
        "milestone": null,
        "comments": comments,
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.created_at),
        "closed_at": null,
        "author_association": if p.from_fork { "CONTRIBUTOR" } else { "MEMBER" },
        "active_lock_reason": null,
        "draft": p.draft,
        "body": null,
        "pull_request": {
            "url": format!("{}/repos/{full_name}/pulls/{}", st.base_url, p.number),
            "html_url": format!("https://github.com/{full_name}/pull/{}", p.number),
            "diff_url": format!("https://github.com/{full_name}/pull/{}.diff", p.number),
            "patch_url": format!("https://github.com/{full_name}/pull/{}.patch", p.number),
            "merged_at": null,
        },
        "reactions": {
            "url": format!("{url}/reactions"),
            "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
        },
        "timeline_url": format!("{url}/timeline"),
        "performed_via_github_app": null,
        "state_reason": null,
    })
}

/// GET /repos/{o}/{r} and /repositories/{id} answer a `full-repository`.
fn full_repo_json(st: &State, repo_id: u64) -> Value {
    let mut out = repo_json(st, repo_id);
    out["subscribers_count"] = json!(0);
    out["network_count"] = json!(0);
    out
}

fn fork_json(st: &State, repo: &Repo, author: &str) -> Value {
    repo_object(
        st,
        RepoView {
            id: repo.id + 500_000_000,
            owner: author,
            owner_type: "User",
            name: &repo.name,
            private: repo.private,
            fork: true,
            archived: false,
            clone_url: format!("https://github.com/{author}/{}.git", repo.name),
            default_branch: &repo.default_branch,
            created: repo.created_at,
            push: false,
        },
    )
}

/// A pull request: `full` for GET /pulls/{n} (`pull-request`), else the list shape
/// (`pull-request-simple`, without `merged`/`mergeable`).
pub(super) fn pull_json(st: &State, repo: &Repo, rec: &PullRec, full: bool) -> Value {
    let p = &rec.pull;
    let full_name = repo.full_name();
    let url = format!("{}/repos/{full_name}/pulls/{}", st.base_url, p.number);
    let base_repo = repo_value(st, repo, None);
    let head_repo = if p.from_fork {
        fork_json(st, repo, &p.author)
    } else {
        base_repo.clone()
    };
    let head_owner = if p.from_fork {
        p.author.as_str()
    } else {
        repo.owner.as_str()
    };
    let mut out = json!({
        "url": url,
        "id": rec.id,
        "node_id": node_id("PR_", rec.id),
        "html_url": format!("https://github.com/{full_name}/pull/{}", p.number),
        "diff_url": format!("https://github.com/{full_name}/pull/{}.diff", p.number),
        "issue_url": format!("{}/repos/{full_name}/issues/{}", st.base_url, p.number),
        "comments_url": format!("{}/repos/{full_name}/issues/{}/comments", st.base_url, p.number),
        "review_comments_url": format!("{url}/comments"),
        "number": p.number,
        "state": rec.state,
        "locked": false,
        "title": p.title,
        "user": user_json(st, &p.author, "User"),
        "body": null,
        "labels": [],
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.created_at),
        "closed_at": null,
        "merged_at": null,
        "merge_commit_sha": null,
        "draft": p.draft,
        "head": {
            "label": format!("{head_owner}:{}", p.head_ref),
            "ref": p.head_ref,
            "sha": p.head_sha,
            "user": user_json(st, head_owner, "User"),
            "repo": head_repo,
        },
        "base": {
            "label": format!("{}:{}", repo.owner, p.base_ref),
            "ref": p.base_ref,
            "sha": p.base_sha,
            "user": user_json(st, &repo.owner, "Organization"),
            "repo": base_repo,
        },
        "author_association": if p.from_fork { "CONTRIBUTOR" } else { "MEMBER" },
        "patch_url": format!("https://github.com/{full_name}/pull/{}.patch", p.number),
        "commits_url": format!("{url}/commits"),
        "review_comment_url": format!("{}/repos/{full_name}/pulls/comments{{/number}}", st.base_url),
        "statuses_url": format!("{}/repos/{full_name}/statuses/{}", st.base_url, p.head_sha),
        "milestone": null,
        "assignee": null,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "auto_merge": null,
        "active_lock_reason": null,
        "_links": {
            "self": {"href": url},
            "html": {"href": format!("https://github.com/{full_name}/pull/{}", p.number)},
            "issue": {"href": format!("{}/repos/{full_name}/issues/{}", st.base_url, p.number)},
            "comments": {"href": format!("{}/repos/{full_name}/issues/{}/comments", st.base_url, p.number)},
            "review_comments": {"href": format!("{url}/comments")},
            "review_comment": {"href": format!("{}/repos/{full_name}/pulls/comments{{/number}}", st.base_url)},
            "commits": {"href": format!("{url}/commits")},
            "statuses": {"href": format!("{}/repos/{full_name}/statuses/{}", st.base_url, p.head_sha)},
        },
    });
    if full {
        let comments = st
            .issue_comments
            .iter()
            .filter(|c| c.repo_id == repo.id && c.number == p.number)
            .count();
        let review_comments = st
            .review_comments
            .iter()
            .filter(|c| c.repo_id == repo.id && c.number == p.number)
            .count();
        for (k, v) in [
            ("merged", json!(false)),
            ("mergeable", Value::Null),
            ("rebaseable", Value::Null),
            ("mergeable_state", json!("unknown")),
            ("merged_by", Value::Null),
            ("comments", json!(comments)),
            ("review_comments", json!(review_comments)),
            ("maintainer_can_modify", json!(false)),
            ("commits", json!(1)),
            ("additions", json!(0)),
            ("deletions", json!(0)),
            ("changed_files", json!(0)),
        ] {
            out[k] = v;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// App endpoints

fn get_app(st: &State, req: &Req) -> Result<Reply, ApiError> {
    let app = require_jwt(req)?;
    ok(app_json(st, app))
}

fn list_installations(st: &State, req: &Req) -> Result<Reply, ApiError> {
    let app = require_jwt(req)?;
    let items = st
        .installations
        .values()
        .filter(|i| i.app_id == app)
        .map(|i| installation_json(st, i.id))
        .collect();
    paged(st, req, items)
}

fn installation_of(st: &State, app: u64, id: &str) -> Result<u64, ApiError> {
    let id: u64 = id.parse().map_err(|_| not_found())?;
    match st.installations.get(&id) {
        Some(i) if i.app_id == app => Ok(id),
        _ => Err(not_found()),
    }
}

fn get_installation(st: &State, req: &Req, id: &str) -> Result<Reply, ApiError> {
    let app = require_jwt(req)?;
    let id = installation_of(st, app, id)?;
    ok(installation_json(st, id))
}

fn repo_installation(st: &State, req: &Req, owner: &str, name: &str) -> Result<Reply, ApiError> {
    let app = require_jwt(req)?;
    let repo = st.repo_by_name(owner, name).ok_or_else(not_found)?;
    match st.installations.get(&repo.installation_id) {
        Some(i) if i.app_id == app => ok(installation_json(st, i.id)),
        _ => Err(not_found()),
    }
}

fn mint_token(st: &mut State, req: &Req, id: &str) -> Result<Reply, ApiError> {
    let app = require_jwt(req)?;
    let id = installation_of(st, app, id)?;
    if st.installations[&id].suspended_at.is_some() {
        return Err(err(403, "This installation has been suspended"));
    }
    let body = req.body();
    let installation_repos: Vec<&Repo> = st
        .repos
        .values()
        .filter(|r| r.installation_id == id)
        .collect();
    let mut repository_ids: Option<Vec<u64>> = None;
    let inaccessible = || {
        err(
            422,
            "There is at least one repository that does not exist or is not accessible to the parent installation.",
        )
    };
    // Empty lists restrict nothing (clients such as octocrab send them by default).
    if let Some(names) = body
        .get("repositories")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        let ids = repository_ids.get_or_insert_with(Vec::new);
        for name in names {
            let name = name.as_str().ok_or_else(inaccessible)?;
            let name = name.rsplit('/').next().unwrap_or(name);
            let repo = installation_repos
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(name))
                .ok_or_else(inaccessible)?;
            ids.push(repo.id);
        }
    }
    if let Some(list) = body
        .get("repository_ids")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        let ids = repository_ids.get_or_insert_with(Vec::new);
        for rid in list {
            let rid = rid.as_u64().ok_or_else(inaccessible)?;
            if !installation_repos.iter().any(|r| r.id == rid) {
                return Err(inaccessible());
            }
            ids.push(rid);
        }
    }
    if let Some(ids) = repository_ids.as_mut() {
        ids.sort_unstable();
        ids.dedup();
    }
    let granted = st.installation_permissions(id);
    let permissions: BTreeMap<String, String> =
        match body.get("permissions").and_then(Value::as_object) {
            Some(requested) => {
                let mut out = BTreeMap::new();
                for (perm, lvl) in requested {
                    let lvl = lvl.as_str().unwrap_or("");
                    let ok =
                        granted.get(perm).is_some_and(|g| level(g) >= level(lvl)) && level(lvl) > 0;
                    if !ok {
                        return Err(err(
                            422,
                            "The permissions requested are not granted to this installation.",
                        ));
                    }
                    out.insert(perm.clone(), lvl.to_string());
                }
                out
            }
            None => granted,
        };
    let token = format!("ghs_{}", random_string(36));
    let expires_at = SystemTime::now() + st.token_ttl;
    st.tokens.insert(
        token.clone(),
        Token {
            installation_id: id,
            repository_ids: repository_ids.clone(),
            permissions: permissions.clone(),
            expires_at,
        },
    );
    st.minted.push(MintedToken {
        installation_id: id,
        repository_ids: repository_ids.clone(),
        permissions: permissions.clone(),
        expires_at,
        token: token.clone(),
    });
    let mut out = json!({
        "token": token,
        "expires_at": iso(expires_at),
        "permissions": permissions,
        "repository_selection": if repository_ids.is_some() { "selected" } else { "all" },
    });
    if let Some(ids) = &repository_ids {
        out["repositories"] = ids.iter().map(|rid| repo_json(st, *rid)).collect();
    }
    created(out)
}

fn manifest_conversion(st: &mut State, req: &Req, code: &str) -> Result<Reply, ApiError> {
    let _ = req;
    let Some(index) = st.manifests.iter().position(|m| m.code == code && !m.used) else {
        return Err(not_found());
    };
    st.manifests[index].used = true;
    let slug = st.manifests[index].slug.clone();
    let (private_pem, public_pem) = super::rsa_key_pair();
    let id = st.id();
    let client_id = format!("Iv23li{}", random_string(14));
    st.apps.insert(
        id,
        super::App {
            id,
            slug: slug.clone(),
            client_id,
            public_key_pem: public_pem,
            owner: "picket-owner".into(),
            permissions: super::perms(super::PICKET_PERMISSIONS),
            events: super::PICKET_EVENTS.iter().map(|e| e.to_string()).collect(),
            created_at: SystemTime::now(),
        },
    );
    st.user_id("picket-owner");
    let mut out = app_json(st, id);
    out["client_secret"] = json!(random_string(40));
    out["webhook_secret"] = json!(random_string(32));
    out["pem"] = json!(private_pem);
    created(out)
}

// ---------------------------------------------------------------------------------------------
// Installation endpoints

fn installation_repos(st: &State, req: &Req) -> Result<Reply, ApiError> {
    let token = match &req.cred {
        Cred::Token(_, t) => t,
        Cred::Jwt(_) => return Err(forbidden_integration()),
        Cred::None => return Err(err(401, "Requires authentication")),
        other => return Err(refuse(other)),
    };
    if st
        .installations
        .get(&token.installation_id)
        .is_some_and(|i| i.suspended_at.is_some())
    {
        return Err(err(403, "This installation has been suspended"));
    }
    let items: Vec<Value> = st
        .repos
        .values()
        .filter(|r| {
            r.installation_id == token.installation_id
                && token
                    .repository_ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&r.id))
        })
        .map(|r| repo_value(st, r, Some(token)))
        .collect();
    let total = items.len();
    let (page, link) = paginate(st, req, items)?;
    let selection = if token.repository_ids.is_some() {
        "selected".to_string()
    } else {
        st.installations[&token.installation_id]
            .repository_selection
            .clone()
    };
    Ok(Reply {
        status: 200,
        body: json!({
            "total_count": total,
            "repository_selection": selection,
            "repositories": page,
        }),
        link,
    })
}

fn compare(st: &State, req: &Req, o: &str, r: &str, basehead: &str) -> Result<Reply, ApiError> {
    let repo_id = repo_access(st, req, o, r, &[("contents", "read")])?;
    let repo = &st.repos[&repo_id];
    let (base, head) = basehead.split_once("...").ok_or_else(not_found)?;
    let strip = |s: &str| {
        s.rsplit_once(':')
            .map(|(_, b)| b.to_string())
            .unwrap_or_else(|| s.to_string())
    };
    let (base, head) = (strip(base), strip(head));
    let from_pulls = repo.pulls.values().find_map(|p| {
        let p = &p.pull;
        let base_ok = base == p.base_sha || base == p.base_ref;
        let head_ok = head == p.head_sha || head == p.head_ref;
        (base_ok && head_ok).then(|| (p.merge_base.clone(), p.base_sha.clone(), p.head_sha.clone()))
    });
    let (merge_base, base_sha, head_sha) = match repo.compares.get(&(base.clone(), head.clone())) {
        Some(mb) => (mb.clone(), base.clone(), head.clone()),
        None => from_pulls.ok_or_else(not_found)?,
    };
    let full_name = repo.full_name();
    let commit = |sha: &str| {
        json!({
            "sha": sha,
            "node_id": format!("C_{sha}"),
            "url": format!("{}/repos/{full_name}/commits/{sha}", st.base_url),
            "html_url": format!("https://github.com/{full_name}/commit/{sha}"),
            "comments_url": format!("{}/repos/{full_name}/commits/{sha}/comments", st.base_url),
            "author": null,
            "committer": null,
            "commit": {
                "author": null,
                "committer": null,
                "url": format!("{}/repos/{full_name}/git/commits/{sha}", st.base_url),
                "message": "",
                "comment_count": 0,
                "tree": {"sha": sha, "url": format!("{}/repos/{full_name}/git/trees/{sha}", st.base_url)},
            },
            "parents": [],
        })
    };
    let ahead = if head_sha == merge_base { 0 } else { 1 };
    let behind = if base_sha == merge_base { 0 } else { 1 };
    let status = match (ahead, behind) {
        (0, 0) => "identical",
        (_, 0) => "ahead",
        (0, _) => "behind",
        _ => "diverged",
    };
    ok(json!({
        "url": format!("{}/repos/{full_name}/compare/{basehead}", st.base_url),
        "html_url": format!("https://github.com/{full_name}/compare/{basehead}"),
        "permalink_url": format!("https://github.com/{full_name}/compare/{basehead}"),
        "diff_url": format!("https://github.com/{full_name}/compare/{basehead}.diff"),
        "patch_url": format!("https://github.com/{full_name}/compare/{basehead}.patch"),
        "base_commit": commit(&base_sha),
        "merge_base_commit": commit(&merge_base),
        "status": status,
        "ahead_by": ahead,
        "behind_by": behind,
        "total_commits": ahead,
        "commits": if ahead > 0 { vec![commit(&head_sha)] } else { vec![] },
        "files": [],
    }))
}

fn list_pulls(st: &State, req: &Req, o: &str, r: &str) -> Result<Reply, ApiError> {
    let repo_id = repo_access(st, req, o, r, &[("pull_requests", "read")])?;
    let repo = &st.repos[&repo_id];
    let state = req.q("state").unwrap_or("open");
    if !["open", "closed", "all"].contains(&state) {
        return Err(validation(
            json!([{"resource": "PullRequest", "field": "state", "code": "invalid"}]),
        ));
    }
    let items: Vec<Value> = repo
        .pulls
        .values()
        .rev() // newest first, GitHub's default sort (created desc)
        .filter(|p| state == "all" || p.state == state)
        .filter(|p| {
            // `head` is `user:ref-name` (GitHub's format): the head's owner and branch.
            req.q("head").is_none_or(|h| {
                let owner = if p.pull.from_fork {
                    &p.pull.author
                } else {
                    &repo.owner
                };
                match h.split_once(':') {
                    Some((user, name)) => {
                        user.eq_ignore_ascii_case(owner) && name == p.pull.head_ref
                    }
                    None => h == p.pull.head_ref,
                }
            })
        })
        .filter(|p| req.q("base").is_none_or(|b| b == p.pull.base_ref))
        .map(|p| pull_json(st, repo, p, false))
        .collect();
    paged(st, req, items)
}

fn collaborator_permission(
    st: &State,
    req: &Req,
    o: &str,
    r: &str,
    user: &str,
) -> Result<Reply, ApiError> {
    let repo_id = repo_access(st, req, o, r, &[("metadata", "read")])?;
    let repo = &st.repos[&repo_id];
    if !st.users.contains_key(&user.to_ascii_lowercase()) {
        return Err(validation(
            json!([{"resource": "Repository", "field": "user", "code": "invalid", "message": format!("{user} is not a user")}]),
        ));
    }
    let role = repo
        .collaborators
        .get(&user.to_ascii_lowercase())
        .cloned()
        .unwrap_or_else(|| "none".into());
    let permission = match role.as_str() {
        "admin" => "admin",
        "maintain" | "write" => "write",
        "triage" | "read" => "read",
        _ => "none",
    };
    let mut u = user_json(st, user, "User");
    let rank = ["none", "read", "triage", "write", "maintain", "admin"]
        .iter()
        .position(|r| *r == role)
        .unwrap_or(0);
    u["permissions"] = json!({
        "admin": rank >= 5,
        "maintain": rank >= 4,
        "push": rank >= 3,
        "triage": rank >= 2,
        "pull": rank >= 1,
    });
    u["role_name"] = json!(role);
    ok(json!({"permission": permission, "role_name": role, "user": u}))
}

// ---------------------------------------------------------------------------------------------
// Check runs

fn check_run_json(st: &State, c: &CheckRun) -> Value {
    let repo = &st.repos[&c.repo_id];
    let full_name = repo.full_name();
    let url = format!("{}/repos/{full_name}/check-runs/{}", st.base_url, c.run.id);
    json!({
        "id": c.run.id,
        "head_sha": c.run.head_sha,
        "node_id": node_id("CR_", c.run.id),
        "external_id": c.run.external_id,
        "url": url,
        "html_url": format!("https://github.com/{full_name}/runs/{}", c.run.id),
        "details_url": c.run.details_url,
        "status": c.run.status,
        "conclusion": c.run.conclusion,
        "started_at": c.started_at,
        "completed_at": c.completed_at,
        "output": {
            "title": c.run.output.title,
            "summary": c.run.output.summary,
            "text": c.run.output.text,
            "annotations_count": c.run.annotations.len(),
            "annotations_url": format!("{url}/annotations"),
        },
        "name": c.run.name,
        "check_suite": {"id": c.run.id + 7},
        "app": st.apps.get(&c.run.app_id).map(|_| app_json(st, c.run.app_id)),
        "pull_requests": [],
    })
}

const CONCLUSIONS: &[&str] = &[
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
];

/// Applies a create/update body to a check run (GitHub's rules: a conclusion completes the
/// run; `completed` needs a conclusion; at most 50 annotations per request, appended).
fn apply_check_body(run: &mut CheckRun, body: &Value) -> Result<(), ApiError> {
    if let Some(name) = body.get("name").and_then(Value::as_str) {
        run.run.name = name.into();
    }
    if let Some(v) = body.get("external_id").and_then(Value::as_str) {
        run.run.external_id = Some(v.into());
    }
    if let Some(v) = body.get("details_url").and_then(Value::as_str) {
        run.run.details_url = Some(v.into());
    }
    if let Some(v) = body.get("started_at").and_then(Value::as_str) {
        run.started_at = Some(v.into());
    }
    if let Some(status) = body.get("status").and_then(Value::as_str) {
        if ![
            "queued",
            "in_progress",
            "completed",
            "waiting",
            "requested",
            "pending",
        ]
        .contains(&status)
        {
            return Err(validation(
                json!([{"resource": "CheckRun", "field": "status", "code": "invalid"}]),
            ));
        }
        run.run.status = status.into();
    }
    if let Some(conclusion) = body.get("conclusion").and_then(Value::as_str) {
        if !CONCLUSIONS.contains(&conclusion) {
            return Err(validation(
                json!([{"resource": "CheckRun", "field": "conclusion", "code": "invalid"}]),
            ));
        }
        run.run.conclusion = Some(conclusion.into());
        run.run.status = "completed".into();
    }
    if run.run.status == "completed" {
        if run.run.conclusion.is_none() {
            return Err(validation(
                json!([{"resource": "CheckRun", "field": "conclusion", "code": "missing_field"}]),
            ));
        }
        let completed = body
            .get("completed_at")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| iso(SystemTime::now()));
        run.completed_at.get_or_insert(completed);
    }
    if let Some(output) = body.get("output") {
        let title = output.get("title").and_then(Value::as_str);
        let summary = output.get("summary").and_then(Value::as_str);
        if title.is_none() || summary.is_none() {
            return Err(validation(
                json!([{"resource": "CheckRun", "field": "output", "code": "missing_field"}]),
            ));
        }
        if summary.is_some_and(|s| s.chars().count() > 65535) {
            return Err(validation(
                json!([{"resource": "CheckRun", "field": "output.summary", "code": "custom", "message": "Only 65535 characters are allowed"}]),
            ));
        }
        let annotations = output
            .get("annotations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if annotations.len() > 50 {
            return Err(validation(
                json!([{"resource": "CheckRun", "field": "output.annotations", "code": "custom", "message": "Only 50 annotations are allowed per request"}]),
            ));
        }
        run.run.output = TestCheckOutput {
            title: title.map(str::to_string),
            summary: summary.map(str::to_string),
            text: output
                .get("text")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        run.run.annotations.extend(annotations);
    }
    Ok(())
}

fn create_check_run(st: &mut State, req: &Req, o: &str, r: &str) -> Result<Reply, ApiError> {
    let repo_id = repo_access(st, req, o, r, &[("checks", "write")])?;
    let body = req.body();
    let (Some(name), Some(head_sha)) = (
        body.get("name").and_then(Value::as_str),
        body.get("head_sha").and_then(Value::as_str),
    ) else {
        return Err(validation(
            json!([{"resource": "CheckRun", "field": "name/head_sha", "code": "missing_field"}]),
        ));
    };
    let app_id = token_of(req)
        .and_then(|t| st.installations.get(&t.installation_id))
        .map(|i| i.app_id)
        .unwrap_or(0);
    let id = st.id();
    let mut run = CheckRun {
        repo_id,
        run: TestCheckRun {
            id,
            name: name.into(),
            head_sha: head_sha.into(),
            status: "queued".into(),
            conclusion: None,
            external_id: None,
            details_url: None,
            output: TestCheckOutput::default(),
            annotations: Vec::new(),
            app_id,
        },
        started_at: Some(iso(SystemTime::now())),
        completed_at: None,
    };
    apply_check_body(&mut run, body)?;
    let out = check_run_json(st, &run);
    st.check_runs.insert(id, run);
    created(out)
}

fn check_run(st: &mut State, req: &Req, o: &str, r: &str, id: &str) -> Result<Reply, ApiError> {
    let write = req.method == Method::PATCH;
    let need = if write {
        ("checks", "write")
    } else {
        ("checks", "read")
    };
    let repo_id = repo_access(st, req, o, r, &[need])?;
    let id: u64 = id.parse().map_err(|_| not_found())?;
    let app_id = token_of(req)
        .and_then(|t| st.installations.get(&t.installation_id))
        .map(|i| i.app_id);
    let mut run = match st.check_runs.remove(&id) {
        Some(run) if run.repo_id == repo_id => run,
        Some(run) => {
            st.check_runs.insert(id, run);
            return Err(not_found());
        }
        None => return Err(not_found()),
    };
    if write && Some(run.run.app_id) != app_id {
        st.check_runs.insert(id, run);
        return Err(forbidden_integration());
    }
    let result = if write {
        apply_check_body(&mut run, req.body())
    } else {
        Ok(())
    };
    let out = check_run_json(st, &run);
    st.check_runs.insert(id, run);
    result?;
    ok(out)
}

// ---------------------------------------------------------------------------------------------
// Issue comments

pub(super) fn issue_comment_json(st: &State, c: &IssueComment) -> Value {
    let full_name = st.repos[&c.repo_id].full_name();
    json!({
        "id": c.comment.id,
        "node_id": c.comment.node_id,
        "url": format!("{}/repos/{full_name}/issues/comments/{}", st.base_url, c.comment.id),
        "html_url": format!("https://github.com/{full_name}/pull/{}#issuecomment-{}", c.number, c.comment.id),
        "issue_url": format!("{}/repos/{full_name}/issues/{}", st.base_url, c.number),
        "body": c.comment.body,
        "user": author_json(st, &c.comment.author),
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "author_association": "NONE",
        "performed_via_github_app": null,
        "reactions": {
            "url": format!("{}/repos/{full_name}/issues/comments/{}/reactions", st.base_url, c.comment.id),
            "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
        },
    })
}

fn body_text(req: &Req, resource: &str) -> Result<String, ApiError> {
    req.body()
        .get("body")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            validation(json!([{"resource": resource, "field": "body", "code": "missing_field"}]))
        })
}

fn check_body_len(body: &str, resource: &str) -> Result<(), ApiError> {
    if body.chars().count() > 65536 {
        return Err(validation(
            json!([{"resource": resource, "field": "body", "code": "custom", "message": "body is too long (maximum is 65536 characters)"}]),
        ));
    }
    Ok(())
}

fn issue_comments(st: &mut State, req: &Req, o: &str, r: &str, n: &str) -> Result<Reply, ApiError> {
    let write = req.method == Method::POST;
    let lvl = if write { "write" } else { "read" };
    let repo_id = repo_access(st, req, o, r, &[("issues", lvl), ("pull_requests", lvl)])?;
    let n: u64 = n.parse().map_err(|_| not_found())?;
    if !st.repos[&repo_id].pulls.contains_key(&n) {
        return Err(not_found());
    }
    if write {
        let body = body_text(req, "IssueComment")?;
        check_body_len(&body, "IssueComment")?;
        let id = st.id();
        let author = bot_login(st, req);
        let now = SystemTime::now();
        let c = IssueComment {
            repo_id,
            number: n,
            comment: TestComment {
                id,
                node_id: node_id("IC_", id),
                body,
                author,
            },
            created_at: now,
            updated_at: now,
        };
        let out = issue_comment_json(st, &c);
        st.issue_comments.push(c);
        return created(out);
    }
    let items = st
        .issue_comments
        .iter()
        .filter(|c| c.repo_id == repo_id && c.number == n)
        .map(|c| issue_comment_json(st, c))
        .collect();
    paged(st, req, items)
}

fn issue_comment(st: &mut State, req: &Req, o: &str, r: &str, id: &str) -> Result<Reply, ApiError> {
    let write = req.method != Method::GET;
    let lvl = if write { "write" } else { "read" };
    let repo_id = repo_access(st, req, o, r, &[("issues", lvl), ("pull_requests", lvl)])?;
    let id: u64 = id.parse().map_err(|_| not_found())?;
    let index = st
        .issue_comments
        .iter()
        .position(|c| c.repo_id == repo_id && c.comment.id == id)
        .ok_or_else(not_found)?;
    if write && st.issue_comments[index].comment.author != bot_login(st, req) {
        return Err(forbidden_integration());
    }
    if req.method == Method::DELETE {
        st.issue_comments.remove(index);
        return Ok(Reply {
            status: 204,
            body: Value::Null,
            link: None,
        });
    }
    if req.method == Method::PATCH {
        let body = body_text(req, "IssueComment")?;
        check_body_len(&body, "IssueComment")?;
        let c = &mut st.issue_comments[index];
        c.comment.body = body;
        c.updated_at = SystemTime::now();
    }
    ok(issue_comment_json(st, &st.issue_comments[index]))
}

// ---------------------------------------------------------------------------------------------
// Review comments, replies, reviews

pub(super) fn review_comment_json(st: &State, c: &ReviewComment) -> Value {
    let mut out = review_comment_fields(st, c);
    if let Some(to) = c.comment.in_reply_to {
        // GitHub leaves the field out of top-level comments.
        out["in_reply_to_id"] = json!(to);
    }
    out
}

fn review_comment_fields(st: &State, c: &ReviewComment) -> Value {
    let repo = &st.repos[&c.repo_id];
    let full_name = repo.full_name();
    let rc = &c.comment;
    let pull_url = format!("{}/repos/{full_name}/pulls/{}", st.base_url, c.number);
    let url = format!("{}/repos/{full_name}/pulls/comments/{}", st.base_url, rc.id);
    let html = format!(
        "https://github.com/{full_name}/pull/{}#discussion_r{}",
        c.number, rc.id
    );
    json!({
        "url": url,
        "pull_request_review_id": rc.review_id,
        "id": rc.id,
        "node_id": rc.node_id,
        "diff_hunk": "@@ -1 +1 @@",
        "path": rc.path,
        "position": rc.line,
        "original_position": rc.line,
        "commit_id": rc.commit_id,
        "original_commit_id": rc.commit_id,
        "user": author_json(st, &rc.author),
        "body": rc.body,
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "html_url": html,
        "pull_request_url": pull_url,
        "author_association": "NONE",
        "_links": {
            "self": {"href": url},
            "html": {"href": html},
            "pull_request": {"href": pull_url},
        },
        "start_line": rc.start_line,
        "original_start_line": rc.start_line,
        "start_side": rc.start_line.and(rc.side.clone()),
        "line": rc.line,
        "original_line": rc.line,
        "side": rc.side,
        "subject_type": if rc.line.is_some() { "line" } else { "file" },
    })
}

/// One inline comment to create: validated against the registered diff lines.
pub(super) struct NewInline {
    pub(super) path: String,
    pub(super) line: Option<u64>,
    pub(super) start_line: Option<u64>,
    pub(super) side: String,
    pub(super) body: String,
}

/// Parses and checks an inline comment (`path`, `line`, `side`, `start_line`, `body`);
/// `Err(message)` is GitHub's `pull_request_review_thread.*` message.
fn parse_inline(repo: &Repo, number: u64, c: &Value) -> Result<NewInline, String> {
    let path = c
        .get("path")
        .and_then(Value::as_str)
        .ok_or("pull_request_review_thread.path is missing")?
        .to_string();
    let body = c
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let side = c
        .get("side")
        .and_then(Value::as_str)
        .unwrap_or("RIGHT")
        .to_string();
    if side != "LEFT" && side != "RIGHT" {
        return Err("pull_request_review_thread.side is invalid".into());
    }
    let line = c
        .get("line")
        .and_then(Value::as_u64)
        .or_else(|| c.get("position").and_then(Value::as_u64));
    let start_line = c.get("start_line").and_then(Value::as_u64);
    let subject_file = c.get("subject_type").and_then(Value::as_str) == Some("file");
    if line.is_none() && !subject_file {
        return Err("pull_request_review_thread.line must be part of the diff".into());
    }
    if let (Some(start), Some(line)) = (start_line, line) {
        if start >= line {
            return Err("pull_request_review_thread.start_line must precede the end line.".into());
        }
    }
    let registered = repo.diff_lines.keys().any(|(n, _, _)| *n == number);
    if registered {
        let in_diff = |l: u64| {
            repo.diff_lines
                .get(&(number, path.clone(), side.clone()))
                .is_some_and(|lines| lines.contains(&l))
        };
        let path_in_diff = repo
            .diff_lines
            .keys()
            .any(|(n, p, _)| *n == number && *p == path);
        if !path_in_diff {
            return Err("pull_request_review_thread.path is invalid".into());
        }
        if let Some(l) = line {
            if !in_diff(l) {
                return Err("pull_request_review_thread.line must be part of the diff".into());
            }
        }
        if let Some(s) = start_line {
            if !in_diff(s) {
                return Err(
                    "pull_request_review_thread.start_line must be part of the diff".into(),
                );
            }
        }
    }
    Ok(NewInline {
        path,
        line: if subject_file { None } else { line },
        start_line,
        side,
        body,
    })
}

fn thread_node_id(id: u64) -> String {
    node_id("PRRT_", id)
}

/// Stores a top-level inline comment, opening its thread; returns its index.
pub(super) fn add_inline(
    st: &mut State,
    repo_id: u64,
    number: u64,
    c: NewInline,
    commit_id: &str,
    review_id: Option<u64>,
    author: &str,
) -> usize {
    let id = st.id();
    let thread_id = thread_node_id(id);
    st.threads.insert(
        thread_id.clone(),
        Thread {
            repo_id,
            number,
            resolved: false,
            comment_ids: vec![id],
        },
    );
    let now = SystemTime::now();
    st.review_comments.push(ReviewComment {
        repo_id,
        number,
        comment: TestReviewComment {
            id,
            node_id: node_id("PRRC_", id),
            path: c.path,
            line: c.line,
            start_line: c.start_line,
            side: c.line.map(|_| c.side),
            commit_id: commit_id.to_string(),
            body: c.body,
            in_reply_to: None,
            review_id,
            thread_id,
            thread_resolved: false,
            author: author.to_string(),
        },
        created_at: now,
        updated_at: now,
    });
    st.review_comments.len() - 1
}

/// Stores a reply to comment `to` (joining its thread); returns its index.
pub(super) fn add_reply(
    st: &mut State,
    repo_id: u64,
    number: u64,
    to: u64,
    body: String,
    author: &str,
) -> Result<usize, ApiError> {
    let parent = st
        .review_comments
        .iter()
        .find(|c| c.repo_id == repo_id && c.number == number && c.comment.id == to)
        .ok_or_else(not_found)?
        .comment
        .clone();
    let root = parent.in_reply_to.unwrap_or(parent.id);
    let id = st.id();
    if let Some(thread) = st.threads.get_mut(&parent.thread_id) {
        thread.comment_ids.push(id);
    }
    let now = SystemTime::now();
    st.review_comments.push(ReviewComment {
        repo_id,
        number,
        comment: TestReviewComment {
            id,
            node_id: node_id("PRRC_", id),
            path: parent.path,
            line: parent.line,
            start_line: parent.start_line,
            side: parent.side,
            commit_id: parent.commit_id,
            body,
            in_reply_to: Some(root),
            review_id: None,
            thread_id: parent.thread_id,
            thread_resolved: false,
            author: author.to_string(),
        },
        created_at: now,
        updated_at: now,
    });
    Ok(st.review_comments.len() - 1)
}

fn review_comments(
    st: &mut State,
    req: &Req,
    o: &str,
    r: &str,
    n: &str,
) -> Result<Reply, ApiError> {
    let write = req.method == Method::POST;
    let lvl = if write { "write" } else { "read" };
    let repo_id = repo_access(st, req, o, r, &[("pull_requests", lvl)])?;
    let n: u64 = n.parse().map_err(|_| not_found())?;
    if !st.repos[&repo_id].pulls.contains_key(&n) {
        return Err(not_found());
    }
    if !write {
        let items = st
            .review_comments
            .iter()
            .filter(|c| c.repo_id == repo_id && c.number == n)
            .map(|c| review_comment_json(st, c))
            .collect();
        return paged(st, req, items);
    }
    let body = req.body();
    let author = bot_login(st, req);
    let text = body_text(req, "PullRequestReviewComment")?;
    check_body_len(&text, "PullRequestReviewComment")?;
    if let Some(to) = body.get("in_reply_to").and_then(Value::as_u64) {
        let index = add_reply(st, repo_id, n, to, text, &author)?;
        return created(review_comment_json(st, &st.review_comments[index]));
    }
    let Some(commit_id) = body.get("commit_id").and_then(Value::as_str) else {
        return Err(validation(
            json!([{"resource": "PullRequestReviewComment", "field": "commit_id", "code": "missing_field"}]),
        ));
    };
    let inline = parse_inline(&st.repos[&repo_id], n, body).map_err(|message| {
        let field = message.split(' ').next().unwrap_or("").to_string();
        validation(json!([{"resource": "PullRequestReviewComment", "code": "custom", "field": field, "message": message}]))
    })?;
    let index = add_inline(st, repo_id, n, inline, commit_id, None, &author);
    created(review_comment_json(st, &st.review_comments[index]))
}

fn reply(
    st: &mut State,
    req: &Req,
    o: &str,
    r: &str,
    n: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let repo_id = repo_access(st, req, o, r, &[("pull_requests", "write")])?;
    let n: u64 = n.parse().map_err(|_| not_found())?;
    let id: u64 = id.parse().map_err(|_| not_found())?;
    let text = body_text(req, "PullRequestReviewComment")?;
    check_body_len(&text, "PullRequestReviewComment")?;
    let author = bot_login(st, req);
    let index = add_reply(st, repo_id, n, id, text, &author)?;
    created(review_comment_json(st, &st.review_comments[index]))
}

fn review_json(st: &State, r: &Review) -> Value {
    let full_name = st.repos[&r.repo_id].full_name();
    let pull_url = format!("{}/repos/{full_name}/pulls/{}", st.base_url, r.number);
    let html = format!(
        "https://github.com/{full_name}/pull/{}#pullrequestreview-{}",
        r.number, r.review.id
    );
    json!({
        "id": r.review.id,
        "node_id": node_id("PRR_", r.review.id),
        "user": author_json(st, &r.review.author),
        "body": r.review.body,
        "state": r.review.state,
        "html_url": html,
        "pull_request_url": pull_url,
        "_links": {"html": {"href": html}, "pull_request": {"href": pull_url}},
        "submitted_at": (r.review.state != "PENDING").then(|| iso(r.submitted_at)),
        "commit_id": r.review.commit_id,
        "author_association": "NONE",
    })
}

fn reviews(st: &mut State, req: &Req, o: &str, r: &str, n: &str) -> Result<Reply, ApiError> {
    let write = req.method == Method::POST;
    let lvl = if write { "write" } else { "read" };
    let repo_id = repo_access(st, req, o, r, &[("pull_requests", lvl)])?;
    let n: u64 = n.parse().map_err(|_| not_found())?;
    let head_sha = st.repos[&repo_id]
        .pulls
        .get(&n)
        .ok_or_else(not_found)?
        .pull
        .head_sha
        .clone();
    if !write {
        let items = st
            .reviews
            .iter()
            .filter(|x| x.repo_id == repo_id && x.number == n)
            .map(|x| review_json(st, x))
            .collect();
        return paged(st, req, items);
    }
    let body = req.body();
    let state = match body.get("event").and_then(Value::as_str) {
        None => "PENDING",
        Some("COMMENT") => "COMMENTED",
        Some("APPROVE") => "APPROVED",
        Some("REQUEST_CHANGES") => "CHANGES_REQUESTED",
        Some(_) => return Err(unprocessable("Unprocessable Entity")),
    };
    let text = body
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    check_body_len(&text, "PullRequestReview")?;
    if (state == "COMMENTED" || state == "CHANGES_REQUESTED")
        && text.is_empty()
        && body
            .get("comments")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    {
        return Err(unprocessable(&format!(
            "Review Can not {} without a body.",
            if state == "COMMENTED" {
                "comment"
            } else {
                "request changes"
            }
        )));
    }
    let commit_id = body
        .get("commit_id")
        .and_then(Value::as_str)
        .unwrap_or(&head_sha)
        .to_string();
    // All or nothing: check every comment before creating any.
    let mut inlines = Vec::new();
    for c in body
        .get("comments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        inlines.push(parse_inline(&st.repos[&repo_id], n, c).map_err(|message| {
            let mut m = message.replacen(
                "pull_request_review_thread.",
                "Pull request review thread ",
                1,
            );
            m = m.replacen("start_line", "start line", 1);
            unprocessable(&m)
        })?);
    }
    let author = bot_login(st, req);
    let review_id = st.id();
    let mut comment_ids = Vec::new();
    for inline in inlines {
        let index = add_inline(st, repo_id, n, inline, &commit_id, Some(review_id), &author);
        comment_ids.push(st.review_comments[index].comment.id);
    }
    let rev = Review {
        repo_id,
        number: n,
        review: TestReview {
            id: review_id,
            body: text,
            state: state.into(),
            commit_id,
            comment_ids,
            author,
        },
        submitted_at: SystemTime::now(),
    };
    let out = review_json(st, &rev);
    st.reviews.push(rev);
    ok(out)
}

fn review_comment(
    st: &mut State,
    req: &Req,
    o: &str,
    r: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let write = req.method != Method::GET;
    let lvl = if write { "write" } else { "read" };
    let repo_id = repo_access(st, req, o, r, &[("pull_requests", lvl)])?;
    let id: u64 = id.parse().map_err(|_| not_found())?;
    let index = st
        .review_comments
        .iter()
        .position(|c| c.repo_id == repo_id && c.comment.id == id)
        .ok_or_else(not_found)?;
    if write && st.review_comments[index].comment.author != bot_login(st, req) {
        return Err(forbidden_integration());
    }
    if req.method == Method::DELETE {
        let c = st.review_comments.remove(index);
        if let Some(t) = st.threads.get_mut(&c.comment.thread_id) {
            t.comment_ids.retain(|x| *x != id);
        }
        return Ok(Reply {
            status: 204,
            body: Value::Null,
            link: None,
        });
    }
    if req.method == Method::PATCH {
        let body = body_text(req, "PullRequestReviewComment")?;
        check_body_len(&body, "PullRequestReviewComment")?;
        let c = &mut st.review_comments[index];
        c.comment.body = body;
        c.updated_at = SystemTime::now();
    }
    ok(review_comment_json(st, &st.review_comments[index]))
}
