//! Request handling: one axum fallback handler that records the request, serves injected
//! faults, authenticates the access token, routes by path segments under `/2.0` and adds
//! Bitbucket's scope headers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{
    CommentRec, FaultKind, Hook, Inner, RecordedRequest, Repo, Report, State, Status, TestComment,
    TestHook,
};

pub(super) fn router(inner: Arc<Inner>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(inner)
}

/// Webhook events a hook may subscribe to (npm `bitbucket` 2.12.0's `WebhookSubscription`
/// type, and `pullrequest:push` from Bitbucket's OpenAPI description).
const HOOK_EVENTS: &[&str] = &[
    "pullrequest:comment_resolved",
    "issue:created",
    "pullrequest:comment_deleted",
    "pullrequest:changes_request_created",
    "issue:comment_created",
    "pullrequest:updated",
    "issue:updated",
    "repo:commit_status_updated",
    "repo:updated",
    "pullrequest:comment_updated",
    "repo:commit_status_created",
    "pullrequest:unapproved",
    "pullrequest:rejected",
    "pullrequest:changes_request_removed",
    "pullrequest:created",
    "project:updated",
    "repo:deleted",
    "pullrequest:comment_reopened",
    "pullrequest:fulfilled",
    "repo:imported",
    "repo:push",
    "repo:fork",
    "repo:created",
    "repo:transfer",
    "pullrequest:approved",
    "repo:commit_comment_created",
    "pullrequest:comment_created",
    "pullrequest:push",
];

/// An error answer.
#[derive(Debug)]
pub(super) struct ApiError {
    status: u16,
    body: Value,
}

/// Bitbucket's error shape: `{"type": "error", "error": {"message"}}`.
fn err(status: u16, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        body: json!({"type": "error", "error": {"message": message.into()}}),
    }
}

/// A field error: `{"type": "error", "error": {"message", "fields": {field: [message]}}}`.
fn field_err(field: &str, message: &str) -> ApiError {
    ApiError {
        status: 400,
        body: json!({
            "type": "error",
            "error": {"message": format!("{field}: {message}"), "fields": {field: [message]}},
        }),
    }
}

/// Code Insights' error shape: `{"key", "message", "arguments"}`.
fn insights_err(status: u16, key: &str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        body: json!({"key": key, "message": message.into(), "arguments": {}}),
    }
}

fn not_found() -> ApiError {
    err(404, "Resource not found")
}

/// A successful answer.
pub(super) struct Reply {
    status: u16,
    body: Value,
}

fn ok(body: Value) -> Result<Reply, ApiError> {
    Ok(Reply { status: 200, body })
}

fn created(body: Value) -> Result<Reply, ApiError> {
    Ok(Reply { status: 201, body })
}

/// The access token, as the server knows it.
#[derive(Clone)]
struct Cred {
    name: String,
    scopes: Vec<String>,
    repository: Option<String>,
}

/// One parsed request.
pub(super) struct Req {
    method: Method,
    /// Segments after `/2.0`, percent-decoded.
    segs: Vec<String>,
    query: Vec<(String, String)>,
    body: Option<Value>,
    cred: Cred,
    path: String,
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
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-encodes a query component.
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

/// Bitbucket's timestamps: `2024-05-24T14:48:04.123456+00:00`.
pub(super) fn iso(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]"
    );
    format!("{}+00:00", dt.format(&fmt).expect("format"))
}

/// The scopes `granted` holds, with those each implies (`repository:write` and `pullrequest`
/// imply `repository`; `pullrequest:write` implies `pullrequest` and `repository:write`).
fn implied(granted: &[String]) -> HashSet<String> {
    let mut all: HashSet<String> = granted.iter().cloned().collect();
    loop {
        let before = all.len();
        let mut add = Vec::new();
        for s in &all {
            match s.as_str() {
                "repository:write" | "pullrequest" | "project" => add.push("repository"),
                "pullrequest:write" => add.extend(["pullrequest", "repository:write"]),
                "repository:admin" => {}
                _ => {}
            }
        }
        all.extend(add.into_iter().map(str::to_string));
        if all.len() == before {
            return all;
        }
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
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (scheme, credential) = match authorization.as_deref().and_then(|a| a.split_once(' ')) {
        Some((scheme, credential)) => (Some(scheme.to_string()), Some(credential.trim())),
        None => (authorization.clone(), None),
    };

    let (index, cred, fault) = {
        let mut st = inner.lock();
        let cred = match (scheme.as_deref(), credential) {
            (Some("Bearer"), Some(token)) => st.tokens.get(token).map(|t| Cred {
                name: t.name.clone(),
                scopes: t.scopes.clone(),
                repository: t.repository.clone(),
            }),
            _ => None,
        };
        st.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: raw_query.clone(),
            token: cred.as_ref().map(|c| c.name.clone()),
            auth_scheme: scheme.clone(),
            body: body_json.clone(),
            content_type: headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            status: 0,
            response: None,
            at: std::time::Instant::now(),
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

    let mut extra: Vec<(&'static str, String)> = Vec::new();
    let mut accepted_scope: Option<&'static str> = None;
    let outcome: Result<Reply, ApiError> = match (fault, cred.clone()) {
        (Some(FaultKind::ServerError { status }), _) => {
            inner.lock().requests[index].status = status;
            return (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                [("content-type", "text/html")],
                "<html><body><h1>Something went wrong</h1></body></html>",
            )
                .into_response();
        }
        (Some(FaultKind::TooManyRequests { retry_after_secs }), _) => {
            if let Some(secs) = retry_after_secs {
                extra.push(("retry-after", secs.to_string()));
            }
            Err(err(429, "Rate limit for this resource has been exceeded"))
        }
        (None, None) => Err(err(
            401,
            "Token is invalid, expired, or not supported for this endpoint.",
        )),
        (None, Some(cred)) => {
            let segs: Option<Vec<String>> = path.strip_prefix("/2.0/").map(|rest| {
                rest.split('/')
                    .filter(|s| !s.is_empty())
                    .map(percent_decode)
                    .collect()
            });
            match segs {
                None => Err(not_found()),
                Some(segs) => {
                    let req = Req {
                        method: method.clone(),
                        segs,
                        query: parse_query(raw_query.as_deref()),
                        body: body_json,
                        cred,
                        path: path.clone(),
                    };
                    let mut st = inner.lock();
                    route(&mut st, &req, &mut accepted_scope)
                }
            }
        }
    };

    let (status, body) = match outcome {
        Ok(reply) => (reply.status, Some(reply.body)),
        Err(e) => (e.status, Some(e.body)),
    };
    let body = body.filter(|_| status != 204);
    {
        let mut st = inner.lock();
        st.requests[index].status = status;
        st.requests[index].response = body.clone();
    }
    let status = StatusCode::from_u16(status).expect("status");
    let mut response = match body {
        None => status.into_response(),
        Some(body) => (
            status,
            [("content-type", "application/json; charset=utf-8")],
            serde_json::to_string(&body).expect("json"),
        )
            .into_response(),
    };
    let h = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("header"),
        );
    };
    if let Some(cred) = &cred {
        set("x-oauth-scopes", cred.scopes.join(", "));
        set(
            "x-credential-type",
            if cred.repository.is_some() {
                "repo_access_token"
            } else {
                "workspace_access_token"
            }
            .to_string(),
        );
    }
    if let Some(scope) = accepted_scope {
        set("x-accepted-oauth-scopes", scope.to_string());
    }
    for (name, value) in extra {
        set(name, value);
    }
    response
}

/// Refuses a token without `scope` (403, as Bitbucket answers it).
fn need(
    req: &Req,
    scope: &'static str,
    accepted: &mut Option<&'static str>,
) -> Result<(), ApiError> {
    *accepted = Some(scope);
    if implied(&req.cred.scopes).contains(scope) {
        return Ok(());
    }
    Err(ApiError {
        status: 403,
        body: json!({
            "type": "error",
            "error": {
                "message": "Your credentials lack one or more required privilege scopes.",
                "detail": {"granted": req.cred.scopes, "required": [scope]},
            },
        }),
    })
}

fn route(
    st: &mut State,
    req: &Req,
    accepted: &mut Option<&'static str>,
) -> Result<Reply, ApiError> {
    let s: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    let m = &req.method;
    match s.as_slice() {
        ["user"] if m == Method::GET => ok(account_json(st, &req.cred.name)),
        ["workspaces", ws] if m == Method::GET => {
            workspace_resource(st, req, ws)?;
            ok(workspace_json(st))
        }
        ["workspaces", ws, "permissions", "repositories", slug] if m == Method::GET => {
            workspace_resource(st, req, ws)?;
            need(req, "repository:admin", accepted)?;
            repository_permissions(st, req, slug)
        }
        ["repositories", ws] if m == Method::GET => {
            need(req, "repository", accepted)?;
            if !ws.eq_ignore_ascii_case(&st.workspace) && *ws != st.workspace_uuid {
                return Err(err(404, format!("No workspace with identifier '{ws}'.")));
            }
            let items: Vec<Value> = st
                .repos
                .values()
                .filter(|r| {
                    req.cred
                        .repository
                        .as_ref()
                        .is_none_or(|only| *only == r.slug)
                })
                .map(|r| repo_json(st, r, &req.cred.name))
                .collect();
            paged(st, req, items, 100)
        }
        ["repositories", ws, slug, rest @ ..] => {
            let slug = repo_of(st, req, ws, slug)?;
            repository_route(st, req, &slug, rest, accepted)
        }
        _ => Err(not_found()),
    }
}

/// A workspace resource: the workspace must be this one, and a repository access token may not
/// reach it.
fn workspace_resource(st: &State, req: &Req, ws: &str) -> Result<(), ApiError> {
    if !ws.eq_ignore_ascii_case(&st.workspace) && ws != st.workspace_uuid {
        return Err(err(404, format!("No workspace with identifier '{ws}'.")));
    }
    if req.cred.repository.is_some() {
        return Err(err(
            403,
            "Access tokens for a repository cannot access workspace resources.",
        ));
    }
    Ok(())
}

/// The repository's slug, by slug or `{uuid}`, if the token may see it.
fn repo_of(st: &State, req: &Req, ws: &str, slug: &str) -> Result<String, ApiError> {
    let missing = || err(404, format!("Repository {ws}/{slug} not found"));
    if !ws.eq_ignore_ascii_case(&st.workspace) && ws != st.workspace_uuid {
        return Err(missing());
    }
    let repo = st
        .repos
        .values()
        .find(|r| r.slug == slug || r.uuid == slug)
        .ok_or_else(missing)?;
    if req
        .cred
        .repository
        .as_ref()
        .is_some_and(|only| *only != repo.slug)
    {
        return Err(err(
            403,
            "Access tokens for a repository cannot access other repositories.",
        ));
    }
    Ok(repo.slug.clone())
}

fn id_of(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| not_found())
}

fn repository_route(
    st: &mut State,
    req: &Req,
    slug: &str,
    rest: &[&str],
    accepted: &mut Option<&'static str>,
) -> Result<Reply, ApiError> {
    let m = req.method.clone();
    match (m, rest) {
        (Method::GET, []) => {
            need(req, "repository", accepted)?;
            ok(repo_json(st, &st.repos[slug], &req.cred.name))
        }
        (Method::GET, ["commit", hash]) => {
            need(req, "repository", accepted)?;
            let full = resolve(&st.repos[slug], hash)
                .ok_or_else(|| err(404, format!("Commit not found: {hash}")))?;
            ok(commit_json(st, slug, &full))
        }
        (Method::GET, ["merge-base", revspec]) => {
            need(req, "repository", accepted)?;
            merge_base(st, slug, revspec)
        }
        (Method::GET, ["pullrequests"]) => {
            need(req, "pullrequest", accepted)?;
            let states: Vec<&str> = req
                .query
                .iter()
                .filter(|(k, _)| k == "state")
                .map(|(_, v)| v.as_str())
                .collect();
            for s in &states {
                if !["OPEN", "MERGED", "DECLINED", "SUPERSEDED"].contains(s) {
                    return Err(field_err("state", "Invalid state"));
                }
            }
            let states = if states.is_empty() {
                vec!["OPEN"]
            } else {
                states
            };
            let items: Vec<Value> = st.repos[slug]
                .pulls
                .values()
                .filter(|p| states.contains(&p.pull.state.as_str()))
                .map(|p| pull_json(st, &st.repos[slug], p.pull.id))
                .collect();
            paged(st, req, items, 50)
        }
        (Method::GET, ["pullrequests", id]) => {
            need(req, "pullrequest", accepted)?;
            let id = pull_of(st, slug, id)?;
            ok(pull_json(st, &st.repos[slug], id))
        }
        (Method::GET, ["pullrequests", id, "comments"]) => {
            need(req, "pullrequest", accepted)?;
            let id = pull_of(st, slug, id)?;
            let items: Vec<Value> = st
                .comments
                .iter()
                .filter(|c| c.repo == slug && c.comment.pull_request == id)
                .map(|c| comment_json(st, c))
                .collect();
            paged(st, req, items, 100)
        }
        (Method::POST, ["pullrequests", id, "comments"]) => {
            need(req, "pullrequest:write", accepted)?;
            let id = pull_of(st, slug, id)?;
            create_comment(st, req, slug, id)
        }
        (Method::GET, ["pullrequests", id, "comments", cid]) => {
            need(req, "pullrequest", accepted)?;
            let id = pull_of(st, slug, id)?;
            let index = comment_of(st, slug, id, cid)?;
            ok(comment_json(st, &st.comments[index]))
        }
        (Method::PUT, ["pullrequests", id, "comments", cid]) => {
            need(req, "pullrequest:write", accepted)?;
            let id = pull_of(st, slug, id)?;
            let index = comment_of(st, slug, id, cid)?;
            update_comment(st, req, index)
        }
        (Method::POST, ["pullrequests", id, "comments", cid, "resolve"]) => {
            need(req, "pullrequest:write", accepted)?;
            let id = pull_of(st, slug, id)?;
            let index = comment_of(st, slug, id, cid)?;
            resolve_comment(st, req, index)
        }
        (Method::GET, ["hooks"]) => {
            need(req, "webhook", accepted)?;
            let items: Vec<Value> = st.repos[slug]
                .hooks
                .iter()
                .map(|h| hook_json(st, slug, h))
                .collect();
            paged(st, req, items, 100)
        }
        (Method::POST, ["hooks"]) => {
            need(req, "webhook", accepted)?;
            create_hook(st, req, slug)
        }
        (Method::GET, ["hooks", uid]) => {
            need(req, "webhook", accepted)?;
            let hook = st.repos[slug]
                .hooks
                .iter()
                .find(|h| h.hook.uuid == *uid)
                .ok_or_else(not_found)?;
            ok(hook_json(st, slug, hook))
        }
        (Method::PUT, ["hooks", uid]) => {
            need(req, "webhook", accepted)?;
            update_hook(st, req, slug, uid)
        }
        (Method::PUT, ["commit", sha, "reports", id]) => {
            need(req, "repository", accepted)?;
            put_report(st, req, slug, sha, id)
        }
        (Method::GET, ["commit", sha, "reports", id]) => {
            need(req, "repository", accepted)?;
            let report = st.repos[slug]
                .reports
                .get(&(sha.to_string(), id.to_string()))
                .ok_or_else(|| {
                    insights_err(404, "report-service.report.not-found", "Report not found")
                })?;
            ok(report_json(report, id))
        }
        (Method::POST, ["commit", sha, "reports", id, "annotations"]) => {
            need(req, "repository", accepted)?;
            post_annotations(st, req, slug, sha, id)
        }
        (Method::GET, ["commit", sha, "reports", id, "annotations"]) => {
            need(req, "repository", accepted)?;
            let report = st.repos[slug]
                .reports
                .get(&(sha.to_string(), id.to_string()))
                .ok_or_else(|| {
                    insights_err(404, "report-service.report.not-found", "Report not found")
                })?;
            let items: Vec<Value> = report
                .annotations
                .iter()
                .map(|(_, uuid, a)| annotation_json(uuid, a))
                .collect();
            paged(st, req, items, 100)
        }
        (Method::POST, ["commit", sha, "statuses", "build"]) => {
            need(req, "repository", accepted)?;
            post_status(st, req, slug, sha)
        }
        (Method::GET, ["permissions-config", "users"]) => {
            need(req, "repository:admin", accepted)?;
            let repo = &st.repos[slug];
            let items: Vec<Value> = repo
                .permissions
                .iter()
                .filter(|(_, (_, explicit))| *explicit)
                .map(|(nick, (perm, _))| {
                    json!({
                        "type": "repository_user_permission",
                        "permission": perm,
                        "user": account_json(st, nick),
                        "links": {"self": {"href": format!(
                            "{}/2.0/repositories/{}/{}/permissions-config/users/{}",
                            st.base_url, st.workspace, repo.slug,
                            st.accounts[nick].account_id,
                        )}},
                    })
                })
                .collect();
            paged(st, req, items, 100)
        }
        _ => Err(not_found()),
    }
}

// ---------------------------------------------------------------------------------------------
// Pagination

fn paged(st: &State, req: &Req, items: Vec<Value>, max: usize) -> Result<Reply, ApiError> {
    let pagelen = match req.q("pagelen") {
        None => 10,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Err(field_err(
                    "pagelen",
                    &format!("Invalid pagelen (at most {max})"),
                ))
            }
        },
    };
    let page = match req.q("page") {
        None => 1,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(field_err("page", "Invalid page")),
        },
    };
    let size = items.len();
    let values: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * pagelen)
        .take(pagelen)
        .collect();
    let url = |p: usize| {
        let mut params: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "page" && k != "pagelen")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        params.push(format!("pagelen={pagelen}"));
        params.push(format!("page={p}"));
        format!("{}{}?{}", st.base_url, req.path, params.join("&"))
    };
    let mut body = json!({"size": size, "page": page, "pagelen": pagelen, "values": values});
    if page * pagelen < size {
        body["next"] = Value::String(url(page + 1));
    }
    if page > 1 {
        body["previous"] = Value::String(url(page - 1));
    }
    ok(body)
}

// ---------------------------------------------------------------------------------------------
// JSON shapes

fn account_json(st: &State, nickname: &str) -> Value {
    let Some(a) = st.accounts.get(nickname) else {
        return json!({"type": "user", "display_name": nickname, "nickname": nickname});
    };
    json!({
        "type": "user",
        "uuid": a.uuid,
        "account_id": a.account_id,
        "nickname": nickname,
        "display_name": a.display_name,
        "links": {
            "avatar": {"href": format!("https://avatar-management.example.test/{}", a.account_id)},
            "html": {"href": format!("https://bitbucket.org/{}/", a.uuid)},
        },
    })
}

fn workspace_json(st: &State) -> Value {
    json!({
        "type": "workspace",
        "uuid": st.workspace_uuid,
        "name": st.workspace,
        "slug": st.workspace,
        "is_private": true,
        "links": {"self": {"href": format!("{}/2.0/workspaces/{}", st.base_url, st.workspace)}},
    })
}

fn repo_json(st: &State, r: &Repo, caller: &str) -> Value {
    let full_name = format!("{}/{}", st.workspace, r.slug);
    // Bitbucket writes the caller's name into the HTTPS clone link.
    let https = match r.clone_url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{caller}@{rest}"),
        None => r.clone_url.clone(),
    };
    json!({
        "type": "repository",
        "uuid": r.uuid,
        "full_name": full_name,
        "name": r.slug,
        "slug": r.slug,
        "is_private": r.private,
        "scm": "git",
        "mainbranch": {"type": "branch", "name": r.main_branch},
        "workspace": {"type": "workspace", "uuid": st.workspace_uuid, "slug": st.workspace},
        "created_on": iso(r.created),
        "updated_on": iso(r.created),
        "links": {
            "self": {"href": format!("{}/2.0/repositories/{full_name}", st.base_url)},
            "html": {"href": format!("https://bitbucket.org/{full_name}")},
            "clone": [
                {"name": "https", "href": https},
                {"name": "ssh", "href": format!("git@bitbucket.org:{full_name}.git")},
            ],
        },
    })
}

/// The full hash of a known commit named by a unique prefix (4 hex digits or more).
fn resolve(repo: &Repo, hash: &str) -> Option<String> {
    let hash = hash.to_ascii_lowercase();
    if hash.len() < 4 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut found = repo.commits.iter().filter(|c| c.starts_with(&hash));
    let first = found.next()?;
    found.next().is_none().then(|| first.clone())
}

fn commit_json(st: &State, slug: &str, hash: &str) -> Value {
    json!({
        "type": "commit",
        "hash": hash,
        "date": iso(SystemTime::now()),
        "message": "A commit\n",
        "author": {"type": "author", "raw": "A. Developer <dev@example.test>"},
        "parents": [],
        "links": {"self": {"href": format!(
            "{}/2.0/repositories/{}/{slug}/commit/{hash}", st.base_url, st.workspace
        )}},
    })
}

fn merge_base(st: &State, slug: &str, revspec: &str) -> Result<Reply, ApiError> {
    let repo = &st.repos[slug];
    let Some((a, b)) = revspec.split_once("..") else {
        return Err(err(400, format!("Invalid revspec: {revspec}")));
    };
    let side = |s: &str| {
        repo.branches
            .get(s)
            .cloned()
            .or_else(|| resolve(repo, s))
            .ok_or_else(|| err(404, format!("Commit not found: {s}")))
    };
    let (a, b) = (side(a)?, side(b)?);
    let base = if a == b {
        a.clone()
    } else {
        repo.merge_bases
            .get(&(a.clone(), b.clone()))
            .cloned()
            .ok_or_else(|| err(404, "No merge base found"))?
    };
    ok(commit_json(st, slug, &base))
}

fn pull_of(st: &State, slug: &str, id: &str) -> Result<u64, ApiError> {
    let id = id_of(id)?;
    if st.repos[slug].pulls.contains_key(&id) {
        Ok(id)
    } else {
        Err(err(404, format!("Pull request {id} not found")))
    }
}

fn pull_json(st: &State, repo: &Repo, id: u64) -> Value {
    let rec = &repo.pulls[&id];
    let p = &rec.pull;
    let full_name = format!("{}/{}", st.workspace, repo.slug);
    let destination_repo = json!({
        "type": "repository", "uuid": repo.uuid, "full_name": full_name, "name": repo.slug,
    });
    let source_repo = if p.from_fork {
        json!({
            "type": "repository",
            // A fork is another repository: a uuid of its own.
            "uuid": format!("{{fork0000-0000-4000-8000-{:012}}}", p.id),
            "full_name": format!("{}/{}", p.author, repo.slug),
            "name": repo.slug,
        })
    } else {
        destination_repo.clone()
    };
    let comments = st
        .comments
        .iter()
        .filter(|c| c.repo == repo.slug && c.comment.pull_request == id && !c.comment.deleted)
        .count();
    json!({
        "type": "pullrequest",
        "id": p.id,
        "title": p.title,
        "description": "",
        "state": p.state,
        "draft": p.draft,
        "author": account_json(st, &p.author),
        "source": {
            "branch": {"name": p.source_branch},
            "commit": {"type": "commit", "hash": &p.head[..12]},
            "repository": source_repo,
        },
        "destination": {
            "branch": {"name": p.destination_branch},
            "commit": {"type": "commit", "hash": &p.base[..12]},
            "repository": destination_repo,
        },
        "close_source_branch": false,
        "comment_count": comments,
        "task_count": 0,
        "created_on": iso(rec.created),
        "updated_on": iso(rec.updated),
        "links": {
            "self": {"href": format!("{}/2.0/repositories/{full_name}/pullrequests/{id}", st.base_url)},
            "html": {"href": format!("https://bitbucket.org/{full_name}/pull-requests/{id}")},
        },
    })
}

fn comment_of(st: &State, slug: &str, pr: u64, cid: &str) -> Result<usize, ApiError> {
    let cid = id_of(cid)?;
    st.comments
        .iter()
        .position(|c| c.repo == slug && c.comment.pull_request == pr && c.comment.id == cid)
        .ok_or_else(|| err(404, format!("Comment {cid} not found")))
}

fn comment_json(st: &State, c: &CommentRec) -> Value {
    let t = &c.comment;
    let full_name = format!("{}/{}", st.workspace, c.repo);
    let self_href = format!(
        "{}/2.0/repositories/{full_name}/pullrequests/{}/comments/{}",
        st.base_url, t.pull_request, t.id
    );
    let mut v = json!({
        "type": "pullrequest_comment",
        "id": t.id,
        "created_on": iso(c.created),
        "updated_on": iso(c.updated),
        "content": {"type": "rendered", "raw": t.raw, "markup": "markdown", "html": format!("<p>{}</p>", t.raw)},
        "user": account_json(st, &t.author),
        "deleted": t.deleted,
        "pending": false,
        "pullrequest": {"type": "pullrequest", "id": t.pull_request},
        "links": {
            "self": {"href": self_href},
            "html": {"href": format!(
                "https://bitbucket.org/{full_name}/pull-requests/{}/_/diff#comment-{}",
                t.pull_request, t.id
            )},
        },
    });
    if let Some((path, to)) = &t.inline {
        v["inline"] = json!({"path": path, "to": to, "from": null});
    }
    if let Some(parent) = t.parent {
        v["parent"] = json!({"id": parent, "links": {"self": {"href": format!(
            "{}/2.0/repositories/{full_name}/pullrequests/{}/comments/{parent}",
            st.base_url, t.pull_request
        )}}});
    }
    if let Some(by) = &t.resolved_by {
        v["resolution"] = json!({
            "type": "comment_resolution",
            "user": account_json(st, by),
            "created_on": iso(c.updated),
        });
    }
    v
}

/// The `content.raw` of a comment body.
fn content_raw(req: &Req) -> Result<String, ApiError> {
    match req.body().pointer("/content/raw") {
        Some(Value::String(raw)) if !raw.trim().is_empty() => Ok(raw.clone()),
        _ => Err(field_err("content.raw", "This field is required.")),
    }
}

fn create_comment(st: &mut State, req: &Req, slug: &str, pr: u64) -> Result<Reply, ApiError> {
    let raw = content_raw(req)?;
    let body = req.body();
    let parent = match body.get("parent") {
        None | Some(Value::Null) => None,
        Some(p) => {
            let id = p
                .get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| field_err("parent", "An id is required."))?;
            let parent = st
                .comments
                .iter()
                .find(|c| c.repo == slug && c.comment.pull_request == pr && c.comment.id == id)
                .filter(|c| !c.comment.deleted)
                .ok_or_else(|| field_err("parent", "No such comment on this pull request."))?;
            Some((id, parent.comment.inline.clone()))
        }
    };
    let inline = match body.get("inline") {
        None | Some(Value::Null) => None,
        Some(i) => {
            let path = i
                .get("path")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| field_err("inline.path", "This field is required."))?;
            let to = match i.get("to") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().filter(|l| *l >= 1).ok_or_else(|| {
                    field_err("inline.to", "A positive line number is required.")
                })?),
            };
            let from = i.get("from").and_then(Value::as_u64);
            if to.is_none() && from.is_none() {
                return Err(field_err("inline", "Either `from` or `to` is required."));
            }
            let repo = &st.repos[slug];
            let registered = repo.diff_lines.keys().any(|(id, _)| *id == pr);
            if let (true, Some(line)) = (registered, to) {
                let in_diff = repo
                    .diff_lines
                    .get(&(pr, path.to_string()))
                    .is_some_and(|lines| lines.contains(&line));
                if !in_diff {
                    return Err(err(
                        400,
                        format!("Line {line} of {path} is not part of the pull request's diff."),
                    ));
                }
            }
            Some((path.to_string(), to))
        }
    };
    // A reply sits where its parent does.
    let (parent_id, inline) = match parent {
        Some((id, parent_inline)) => (Some(id), parent_inline.or(inline)),
        None => (None, inline),
    };
    let id = st.id();
    let now = SystemTime::now();
    st.comments.push(CommentRec {
        repo: slug.to_string(),
        comment: TestComment {
            id,
            pull_request: pr,
            author: req.cred.name.clone(),
            raw,
            inline,
            parent: parent_id,
            deleted: false,
            resolved_by: None,
        },
        created: now,
        updated: now,
    });
    created(comment_json(st, st.comments.last().expect("pushed")))
}

fn update_comment(st: &mut State, req: &Req, index: usize) -> Result<Reply, ApiError> {
    if st.comments[index].comment.deleted {
        return Err(err(404, "The comment was deleted"));
    }
    if st.comments[index].comment.author != req.cred.name {
        return Err(err(403, "You can only edit your own comments."));
    }
    let raw = content_raw(req)?;
    let c = &mut st.comments[index];
    c.comment.raw = raw;
    c.updated = SystemTime::now();
    ok(comment_json(st, &st.comments[index]))
}

fn resolve_comment(st: &mut State, req: &Req, index: usize) -> Result<Reply, ApiError> {
    let c = &st.comments[index].comment;
    if c.deleted {
        return Err(err(404, "The comment was deleted"));
    }
    if c.parent.is_some() {
        return Err(err(400, "Only top-level comments can be resolved."));
    }
    if c.resolved_by.is_some() {
        return Err(err(409, "The comment is already resolved."));
    }
    let c = &mut st.comments[index];
    c.comment.resolved_by = Some(req.cred.name.clone());
    c.updated = SystemTime::now();
    let at = c.updated;
    ok(json!({
        "type": "comment_resolution",
        "user": account_json(st, &req.cred.name),
        "created_on": iso(at),
    }))
}

fn hook_json(st: &State, slug: &str, h: &Hook) -> Value {
    json!({
        "type": "webhook_subscription",
        "uuid": h.hook.uuid,
        "url": h.hook.url,
        "description": h.hook.description,
        "subject_type": "repository",
        "subject": {"type": "repository", "full_name": format!("{}/{slug}", st.workspace)},
        "active": h.hook.active,
        "events": h.hook.events,
        "secret_set": h.hook.secret.is_some(),
        "created_at": iso(h.created),
    })
}

/// The fields of a hook body, checked; `partial` for an update (absent fields kept).
fn apply_hook(hook: &mut TestHook, body: &Value, partial: bool) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(err(400, "A JSON object is required."));
    }
    match body.get("url") {
        Some(Value::String(url)) if url.starts_with("https://") || url.starts_with("http://") => {
            hook.url = url.clone()
        }
        None if partial => {}
        _ => return Err(field_err("url", "Enter a valid URL.")),
    }
    match body.get("events") {
        Some(Value::Array(events)) if !events.is_empty() => {
            let mut list = Vec::new();
            for e in events {
                match e.as_str() {
                    Some(e) if HOOK_EVENTS.contains(&e) => list.push(e.to_string()),
                    _ => return Err(field_err("events", &format!("{e} is not a valid event"))),
                }
            }
            hook.events = list;
        }
        None if partial => {}
        _ => return Err(field_err("events", "At least one event is required.")),
    }
    if let Some(active) = body.get("active") {
        hook.active = active
            .as_bool()
            .ok_or_else(|| field_err("active", "Must be a boolean."))?;
    }
    if let Some(d) = body.get("description") {
        hook.description = d
            .as_str()
            .ok_or_else(|| field_err("description", "Must be a string."))?
            .to_string();
    }
    match body.get("secret") {
        Some(Value::String(s)) if !s.is_empty() => hook.secret = Some(s.clone()),
        Some(Value::Null) => hook.secret = None,
        None => {}
        Some(_) => return Err(field_err("secret", "Must be a string.")),
    }
    Ok(())
}

fn create_hook(st: &mut State, req: &Req, slug: &str) -> Result<Reply, ApiError> {
    let uuid = st.uuid();
    let mut hook = TestHook {
        uuid,
        url: String::new(),
        events: Vec::new(),
        active: true,
        description: String::new(),
        secret: None,
    };
    apply_hook(&mut hook, req.body(), false)?;
    let h = Hook {
        hook,
        created: SystemTime::now(),
    };
    let body = hook_json(st, slug, &h);
    st.repos.get_mut(slug).expect("repo").hooks.push(h);
    created(body)
}

fn update_hook(st: &mut State, req: &Req, slug: &str, uid: &str) -> Result<Reply, ApiError> {
    let repo = st.repos.get_mut(slug).expect("repo");
    let h = repo
        .hooks
        .iter_mut()
        .find(|h| h.hook.uuid == uid)
        .ok_or_else(not_found)?;
    let mut hook = h.hook.clone();
    apply_hook(&mut hook, req.body(), true)?;
    h.hook = hook;
    let repo = &st.repos[slug];
    let h = repo
        .hooks
        .iter()
        .find(|h| h.hook.uuid == uid)
        .expect("hook");
    ok(hook_json(st, slug, h))
}

fn report_json(r: &Report, id: &str) -> Value {
    let mut v = r.body.clone();
    v["type"] = json!("report");
    v["uuid"] = json!(r.uuid);
    v["external_id"] = json!(id);
    v["created_on"] = json!(iso(r.created));
    v["updated_on"] = json!(iso(r.updated));
    v
}

fn annotation_json(uuid: &str, a: &Value) -> Value {
    let mut v = a.clone();
    v["type"] = json!("report_annotation");
    v["uuid"] = json!(uuid);
    v
}

/// A string field of a Code Insights body: `required`, at most `max` characters, one of
/// `allowed`.
fn insights_field(
    body: &Value,
    field: &str,
    required: bool,
    max: Option<usize>,
    allowed: &[&str],
) -> Result<(), ApiError> {
    match body.get(field) {
        None | Some(Value::Null) if !required => Ok(()),
        Some(Value::String(s)) if !s.is_empty() => {
            if let Some(max) = max {
                if s.chars().count() > max {
                    return Err(insights_err(
                        400,
                        "report-service.general.bad-request",
                        format!("The {field} field cannot contain more than {max} characters."),
                    ));
                }
            }
            if !allowed.is_empty() && !allowed.contains(&s.as_str()) {
                return Err(insights_err(
                    400,
                    "report-service.general.bad-request",
                    format!("The {field} field must be one of {}.", allowed.join(", ")),
                ));
            }
            Ok(())
        }
        _ => Err(insights_err(
            400,
            "report-service.general.bad-request",
            format!("The {field} field is required."),
        )),
    }
}

fn known_commit(st: &State, slug: &str, sha: &str) -> Result<(), ApiError> {
    if st.repos[slug].commits.contains(sha) {
        Ok(())
    } else {
        Err(err(404, format!("Commit not found: {sha}")))
    }
}

fn put_report(
    st: &mut State,
    req: &Req,
    slug: &str,
    sha: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    if let Some(status) = st.code_insights_refusal {
        return Err(err(
            status,
            "Code Insights is not available for this repository.",
        ));
    }
    known_commit(st, slug, sha)?;
    let body = req.body();
    if !body.is_object() {
        return Err(insights_err(
            400,
            "report-service.general.bad-request",
            "A report object is required.",
        ));
    }
    insights_field(body, "title", true, Some(450), &[])?;
    insights_field(body, "details", true, Some(2000), &[])?;
    insights_field(
        body,
        "report_type",
        true,
        None,
        &["SECURITY", "COVERAGE", "TEST", "BUG"],
    )?;
    insights_field(
        body,
        "result",
        false,
        None,
        &["PASSED", "FAILED", "PENDING"],
    )?;
    insights_field(body, "reporter", false, Some(450), &[])?;
    if let Some(link) = body.get("link") {
        if !link
            .as_str()
            .is_some_and(|l| l.starts_with("https://") || l.starts_with("http://"))
        {
            return Err(insights_err(
                400,
                "report-service.general.bad-request",
                "The link field must be a URL.",
            ));
        }
    }
    let uuid = st.uuid();
    let now = SystemTime::now();
    let repo = st.repos.get_mut(slug).expect("repo");
    let report = repo
        .reports
        .entry((sha.to_string(), id.to_string()))
        .or_insert_with(|| Report {
            uuid,
            body: Value::Null,
            annotations: Vec::new(),
            created: now,
            updated: now,
        });
    report.body = body.clone();
    report.updated = now;
    ok(report_json(report, id))
}

fn post_annotations(
    st: &mut State,
    req: &Req,
    slug: &str,
    sha: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    if let Some(status) = st.code_insights_refusal {
        return Err(err(
            status,
            "Code Insights is not available for this repository.",
        ));
    }
    let Some(Value::Array(items)) = req.body.as_ref() else {
        return Err(insights_err(
            400,
            "report-service.general.bad-request",
            "An array of annotations is required.",
        ));
    };
    if items.is_empty() || items.len() > 100 {
        return Err(insights_err(
            400,
            "report-service.annotation.bulk-limit",
            "Between 1 and 100 annotations can be added in one request.",
        ));
    }
    let mut ids = Vec::with_capacity(items.len());
    for a in items {
        if !a.is_object() {
            return Err(insights_err(
                400,
                "report-service.general.bad-request",
                "An annotation must be an object.",
            ));
        }
        insights_field(a, "external_id", true, Some(450), &[])?;
        insights_field(a, "summary", true, Some(450), &[])?;
        insights_field(a, "details", false, Some(2000), &[])?;
        insights_field(
            a,
            "annotation_type",
            true,
            None,
            &["VULNERABILITY", "CODE_SMELL", "BUG"],
        )?;
        insights_field(
            a,
            "severity",
            false,
            None,
            &["CRITICAL", "HIGH", "MEDIUM", "LOW"],
        )?;
        insights_field(
            a,
            "result",
            false,
            None,
            &["PASSED", "FAILED", "SKIPPED", "IGNORED"],
        )?;
        insights_field(a, "path", false, None, &[])?;
        if let Some(line) = a.get("line") {
            if line.as_u64().is_none_or(|l| l < 1) {
                return Err(insights_err(
                    400,
                    "report-service.general.bad-request",
                    "The line field must be a positive number.",
                ));
            }
        }
        let external = a["external_id"].as_str().expect("checked").to_string();
        if ids.contains(&external) {
            return Err(insights_err(
                400,
                "report-service.annotation.duplicate",
                format!("The external id {external} appears twice."),
            ));
        }
        ids.push(external);
    }
    let mut uuids = Vec::with_capacity(ids.len());
    for _ in &ids {
        uuids.push(st.uuid());
    }
    let repo = st.repos.get_mut(slug).expect("repo");
    let report = repo
        .reports
        .get_mut(&(sha.to_string(), id.to_string()))
        .ok_or_else(|| insights_err(404, "report-service.report.not-found", "Report not found"))?;
    let new = ids
        .iter()
        .filter(|e| !report.annotations.iter().any(|(x, _, _)| x == *e))
        .count();
    if report.annotations.len() + new > 1000 {
        return Err(insights_err(
            400,
            "report-service.annotation.limit",
            "A report can contain at most 1000 annotations.",
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for ((external, a), fresh) in ids.into_iter().zip(items).zip(uuids) {
        match report
            .annotations
            .iter_mut()
            .find(|(x, _, _)| *x == external)
        {
            Some((_, uuid, body)) => {
                *body = a.clone();
                out.push(annotation_json(uuid, a));
            }
            None => {
                out.push(annotation_json(&fresh, a));
                report.annotations.push((external, fresh, a.clone()));
            }
        }
    }
    report.updated = SystemTime::now();
    ok(Value::Array(out))
}

fn post_status(st: &mut State, req: &Req, slug: &str, sha: &str) -> Result<Reply, ApiError> {
    known_commit(st, slug, sha)?;
    let body = req.body();
    let key = match body.get("key") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        _ => return Err(field_err("key", "This field is required.")),
    };
    if key.chars().count() > 40 {
        return Err(field_err(
            "key",
            &format!(
                "Ensure this value has at most 40 characters (it has {}).",
                key.chars().count()
            ),
        ));
    }
    match body.get("state").and_then(Value::as_str) {
        Some("SUCCESSFUL" | "FAILED" | "INPROGRESS" | "STOPPED") => {}
        _ => return Err(field_err("state", "Select a valid choice.")),
    }
    match body.get("url").and_then(Value::as_str) {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => {}
        _ => return Err(field_err("url", "This field is required.")),
    }
    let uuid = st.uuid();
    let now = SystemTime::now();
    let full_name = format!("{}/{slug}", st.workspace);
    let base_url = st.base_url.clone();
    let repo = st.repos.get_mut(slug).expect("repo");
    let status = repo
        .statuses
        .entry((sha.to_string(), key.clone()))
        .or_insert_with(|| Status {
            uuid,
            body: Value::Null,
            created: now,
            updated: now,
        });
    status.body = body.clone();
    status.updated = now;
    let mut v = body.clone();
    v["type"] = json!("build");
    v["uuid"] = json!(status.uuid);
    v["refname"] = Value::Null;
    v["created_on"] = json!(iso(status.created));
    v["updated_on"] = json!(iso(status.updated));
    v["links"] = json!({
        "commit": {"href": format!("{base_url}/2.0/repositories/{full_name}/commit/{sha}")},
        "self": {"href": format!("{base_url}/2.0/repositories/{full_name}/commit/{sha}/statuses/build/{key}")},
    });
    created(v)
}

/// `q` of the permission listing: `permission<op>"<level>"` (`=`, `!=`, `>`, `>=`, `<`, `<=`;
/// levels ordered read < write < admin), as Bitbucket's docs show it.
/// Whether a permission level passes a filter.
type PermissionFilter = Box<dyn Fn(&str) -> bool>;

fn permission_filter(q: &str) -> Result<PermissionFilter, ApiError> {
    let rank = |p: &str| match p {
        "read" => Some(1),
        "write" => Some(2),
        "admin" => Some(3),
        _ => None,
    };
    let invalid = || err(400, format!("Invalid query: {q}"));
    let rest = q
        .trim()
        .strip_prefix("permission")
        .ok_or_else(invalid)?
        .trim_start();
    let (op, value) = ["!=", ">=", "<=", "=", ">", "<"]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v.trim())))
        .ok_or_else(invalid)?;
    let level = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .and_then(rank)
        .ok_or_else(invalid)?;
    Ok(Box::new(move |p: &str| {
        let Some(r) = rank(p) else { return false };
        match op {
            "=" => r == level,
            "!=" => r != level,
            ">" => r > level,
            ">=" => r >= level,
            "<" => r < level,
            _ => r <= level,
        }
    }))
}

fn repository_permissions(st: &State, req: &Req, slug: &str) -> Result<Reply, ApiError> {
    let repo = st
        .repos
        .values()
        .find(|r| r.slug == slug || r.uuid == slug)
        .ok_or_else(|| err(404, format!("Repository {}/{slug} not found", st.workspace)))?;
    let filter = match req.q("q") {
        Some(q) => permission_filter(q)?,
        None => Box::new(|_: &str| true),
    };
    let items: Vec<Value> = repo
        .permissions
        .iter()
        .filter(|(_, (perm, _))| filter(perm))
        .map(|(nick, (perm, _))| {
            json!({
                "type": "repository_permission",
                "permission": perm,
                "user": account_json(st, nick),
                "repository": {
                    "type": "repository",
                    "uuid": repo.uuid,
                    "full_name": format!("{}/{}", st.workspace, repo.slug),
                    "name": repo.slug,
                },
            })
        })
        .collect();
    paged(st, req, items, 100)
}
