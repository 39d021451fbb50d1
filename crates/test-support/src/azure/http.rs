//! Request handling: one axum fallback handler that records the request, serves injected
//! faults, authenticates, routes by path segments (case-insensitively, as Azure does) and shapes
//! the answers like Azure DevOps.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};

use super::routes::query_pairs;
use super::{
    guid, Auth, FaultKind, Inner, Iteration, RecordedRequest, Repo, State, Subscription,
    TestComment, TestStatus, TestSubscription, Thread,
};

pub(super) fn router(inner: Arc<Inner>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(inner)
}

/// An error answer: Azure's `{"$id", "innerException", "message", "typeName", "typeKey",
/// "errorCode", "eventId"}`.
#[derive(Debug)]
struct ApiError {
    status: u16,
    type_key: &'static str,
    message: String,
}

fn err(status: u16, type_key: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        type_key,
        message: message.into(),
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    err(400, "InvalidArgumentValueException", message)
}

type Answer = Result<(u16, Value), ApiError>;

fn ok(body: Value) -> Answer {
    Ok((200, body))
}

fn list(items: Vec<Value>) -> Answer {
    ok(json!({ "count": items.len(), "value": items }))
}

/// RFC 3339 in seconds, UTC: `2026-11-30T12:00:00Z`.
fn iso(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// One parsed request. `segs` are the path's segments after the organization, decoded.
struct Req {
    method: Method,
    segs: Vec<String>,
    query: Vec<(String, String)>,
    body: Option<Value>,
    user: String,
}

impl Req {
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body(&self) -> &Value {
        static NULL: Value = Value::Null;
        self.body.as_ref().unwrap_or(&NULL)
    }

    /// `$top` and `$skip`, checked.
    fn paging(&self, default_top: usize) -> Result<(usize, usize), ApiError> {
        let number = |name: &str, default: usize| match self.q(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| bad_request(format!("{name} must be a non-negative integer"))),
        };
        Ok((number("$top", default_top)?, number("$skip", 0)?))
    }
}

fn resolve_auth(st: &State, headers: &HeaderMap) -> Auth {
    let Some(value) = headers.get("authorization") else {
        return Auth::None;
    };
    let decoded = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded.as_deref().and_then(|t| t.split_once(':')) {
        Some((_, pat)) => match st.pats.get(pat) {
            Some(user) => Auth::Pat { user: user.clone() },
            None => Auth::Invalid,
        },
        None => Auth::Invalid,
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
    let all: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();

    let (index, auth, fault, organization) = {
        let mut st = inner.lock();
        let auth = resolve_auth(&st, &headers);
        st.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: raw_query.clone(),
            auth: auth.clone(),
            body: body_json.clone(),
            at: Instant::now(),
            status: 0,
            response: None,
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
        (index, auth, fault, st.organization.clone())
    };

    let mut extra: Vec<(&'static str, String)> = Vec::new();
    match fault {
        Some(FaultKind::Delay(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::TooManyRequests { retry_after_secs }) => {
            let reset = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                + retry_after_secs;
            extra.extend([
                ("retry-after", retry_after_secs.to_string()),
                ("x-ratelimit-resource", "Core".to_string()),
                ("x-ratelimit-delay", "0.5".to_string()),
                ("x-ratelimit-limit", "200".to_string()),
                ("x-ratelimit-remaining", "0".to_string()),
                ("x-ratelimit-reset", reset.to_string()),
            ]);
            return respond(
                &inner,
                index,
                Err(err(
                    429,
                    "RequestBlockedException",
                    "TF400733: The request has been blocked: you have exceeded the usage limit.",
                )),
                extra,
            );
        }
        Some(FaultKind::ServerError { status }) => {
            inner.lock().requests[index].status = status;
            return (
                StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                [("content-type", "text/html")],
                "<html><body><h1>Service Unavailable</h1></body></html>",
            )
                .into_response();
        }
        Some(FaultKind::SignInPage) => {
            inner.lock().requests[index].status = 203;
            return (
                StatusCode::NON_AUTHORITATIVE_INFORMATION,
                [("content-type", "text/html; charset=utf-8")],
                "<html><head><title>Azure DevOps Services | Sign In</title></head></html>",
            )
                .into_response();
        }
        None => {}
    }

    let outcome = match (&auth, all.split_first()) {
        (Auth::None | Auth::Invalid, _) => {
            extra.push((
                "www-authenticate",
                "Basic realm=\"https://dev.azure.com/\"".to_string(),
            ));
            Err(err(
                401,
                "UnauthorizedRequestException",
                "TF400813: The user is not authorized to access this resource.",
            ))
        }
        (_, Some((org, _))) if *org != organization => Err(err(
            404,
            "AccountNotFoundException",
            format!("TF400898: The organization {org:?} does not exist."),
        )),
        (Auth::Pat { user }, Some((_, rest))) => {
            let req = Req {
                method,
                segs: rest.to_vec(),
                query: query_pairs(raw_query.as_deref()),
                body: body_json,
                user: user.clone(),
            };
            let mut st = inner.lock();
            route(&mut st, &req)
        }
        (_, None) => Err(err(404, "NotFoundException", "Page not found.")),
    };
    respond(&inner, index, outcome, extra)
}

fn respond(
    inner: &Inner,
    index: usize,
    outcome: Answer,
    extra: Vec<(&'static str, String)>,
) -> Response {
    let (status, body) = match outcome {
        Ok(answer) => answer,
        Err(e) => (
            e.status,
            json!({
                "$id": "1",
                "innerException": null,
                "message": e.message,
                "typeName": format!("Microsoft.TeamFoundation.{}, Microsoft.TeamFoundation", e.type_key),
                "typeKey": e.type_key,
                "errorCode": 0,
                "eventId": 3000,
            }),
        ),
    };
    {
        let mut st = inner.lock();
        st.requests[index].status = status;
        st.requests[index].response = Some(body.clone());
    }
    let mut response = (
        StatusCode::from_u16(status).expect("status"),
        [("content-type", "application/json; charset=utf-8")],
        serde_json::to_string(&body).expect("json"),
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(
        HeaderName::from_static("activityid"),
        HeaderValue::from_str(&guid()).expect("header"),
    );
    for (name, value) in extra {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("header"),
        );
    }
    response
}

fn not_allowed() -> ApiError {
    err(
        405,
        "MethodNotAllowedException",
        "The requested resource does not support http method.",
    )
}

fn route(st: &mut State, req: &Req) -> Answer {
    let lower: Vec<String> = req.segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    match l.as_slice() {
        ["_apis", "connectiondata"] => match req.method {
            Method::GET => connection_data(st, req),
            _ => Err(not_allowed()),
        },
        ["_apis", "hooks", "subscriptions"] => match req.method {
            Method::GET => list_subscriptions(st, req),
            Method::POST => save_subscription(st, req, None),
            _ => Err(not_allowed()),
        },
        ["_apis", "hooks", "subscriptions", _] => match req.method {
            Method::PUT => save_subscription(st, req, Some(req.segs[3].clone())),
            _ => Err(not_allowed()),
        },
        [_, "_apis", "git", "repositories", ..] => {
            let project = &req.segs[0];
            if !project.eq_ignore_ascii_case(&st.project_name)
                && !project.eq_ignore_ascii_case(&st.project_id)
            {
                return Err(err(
                    404,
                    "ProjectDoesNotExistWithNameException",
                    format!("TF200016: The following project does not exist: {project}."),
                ));
            }
            git(st, req, &l[4..])
        }
        _ => Err(err(404, "NotFoundException", "Page not found.")),
    }
}

fn identity_ref(st: &mut State, unique_name: &str) -> Value {
    let base = st.base_url.clone();
    let i = st.identity(unique_name);
    json!({
        "displayName": i.display_name,
        "url": format!("{base}/_apis/Identities/{}", i.id),
        "id": i.id,
        "uniqueName": i.unique_name,
        "imageUrl": format!("{base}/_api/_common/identityImage?id={}", i.id),
        "descriptor": format!("aad.{}", i.id.replace('-', "")),
    })
}

fn connection_data(st: &mut State, req: &Req) -> Answer {
    let i = st.identity(&req.user);
    let identity = json!({
        "id": i.id,
        "descriptor": format!("Microsoft.IdentityModel.Claims.ClaimsIdentity;{}\\{}", guid(), i.unique_name),
        "subjectDescriptor": format!("aad.{}", i.id.replace('-', "")),
        "providerDisplayName": i.display_name,
        "isActive": true,
        "properties": {
            "Account": { "$type": "System.String", "$value": i.unique_name },
        },
        "resourceVersion": 2,
        "metaTypeId": 0,
    });
    ok(json!({
        "authenticatedUser": identity,
        "authorizedUser": identity,
        "instanceId": guid(),
        "deploymentId": guid(),
        "deploymentType": "hosted",
        "locationServiceData": {
            "serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
            "defaultAccessMappingMoniker": "PublicAccessMapping",
            "lastChangeId": 1,
            "lastChangeId64": 1,
        },
    }))
}

fn project_json(st: &State) -> Value {
    json!({
        "id": st.project_id,
        "name": st.project_name,
        "url": format!("{}/_apis/projects/{}", st.base_url, st.project_id),
        "state": "wellFormed",
        "revision": 11,
        "visibility": "private",
        "lastUpdateTime": "2026-11-30T12:00:00Z",
    })
}

fn repo_json(st: &State, r: &Repo) -> Value {
    let mut v = json!({
        "id": r.id,
        "name": r.name,
        "url": format!("{}/{}/_apis/git/repositories/{}", st.base_url, st.project_id, r.id),
        "project": project_json(st),
        "size": 1024,
        "remoteUrl": format!("{}/{}/_git/{}", st.base_url, st.project_name, r.name),
        "sshUrl": format!("git@ssh.dev.azure.com:v3/{}/{}/{}", st.organization, st.project_name, r.name),
        "webUrl": format!("{}/{}/_git/{}", st.base_url, st.project_name, r.name),
        "isDisabled": r.disabled,
        "isInMaintenance": false,
    });
    if let Some(b) = &r.default_branch {
        v["defaultBranch"] = json!(b);
    }
    v
}

fn repo_not_found(id: &str) -> ApiError {
    err(
        404,
        "GitRepositoryNotFoundException",
        format!(
            "TF401019: The Git repository with name or identifier {id} does not exist or you do \
             not have permissions for the operation you are attempting."
        ),
    )
}

fn pull_not_found() -> ApiError {
    err(
        404,
        "GitPullRequestNotFoundException",
        "TF401180: The requested pull request was not found.",
    )
}

fn commit_ref(base: &str, repo: &str, sha: &str) -> Value {
    json!({
        "commitId": sha,
        "url": format!("{base}/_apis/git/repositories/{repo}/commits/{sha}"),
    })
}

fn git(st: &mut State, req: &Req, l: &[&str]) -> Answer {
    let method = req.method.clone();
    if l.is_empty() {
        if method != Method::GET {
            return Err(not_allowed());
        }
        let items = st.repos.values().map(|r| repo_json(st, r)).collect();
        return list(items);
    }
    let key = req.segs[4].clone();
    let repo_id = st
        .repos
        .values()
        .find(|r| r.id.eq_ignore_ascii_case(&key) || r.name.eq_ignore_ascii_case(&key))
        .map(|r| r.id.clone())
        .ok_or_else(|| repo_not_found(&key))?;
    let seg = |i: usize| req.segs[4 + i].clone();
    match (&l[1..], method) {
        ([], Method::GET) => ok(repo_json(st, &st.repos[&repo_id])),
        (["refs"], Method::GET) => {
            let filter = req.q("filter").unwrap_or("");
            let prefix = format!("refs/{}", filter.trim_start_matches("refs/"));
            let base = st.base_url.clone();
            let items = st.repos[&repo_id]
                .refs
                .iter()
                .filter(|(name, _)| filter.is_empty() || name.starts_with(&prefix))
                .map(|(name, sha)| {
                    json!({
                        "name": name,
                        "objectId": sha,
                        "url": format!("{base}/_apis/git/repositories/{repo_id}/refs?filter={}", name.trim_start_matches("refs/")),
                    })
                })
                .collect();
            list(items)
        }
        (["commits", _, "mergebases"], Method::GET) => {
            let commit = seg(2);
            let other = req
                .q("otherCommitId")
                .ok_or_else(|| bad_request("otherCommitId is required"))?
                .to_string();
            let base = st.base_url.clone();
            let items = st.repos[&repo_id]
                .merge_bases
                .get(&(commit, other))
                .map(|b| vec![commit_ref(&base, &repo_id, b)])
                .unwrap_or_default();
            list(items)
        }
        (["commits", _, "statuses"], Method::GET) => {
            let commit = seg(2);
            let statuses: Vec<TestStatus> = st.repos[&repo_id]
                .statuses
                .iter()
                .filter(|s| s.commit.eq_ignore_ascii_case(&commit))
                .cloned()
                .collect();
            let items = statuses.iter().map(|s| status_json(st, s)).collect();
            list(items)
        }
        (["commits", _, "statuses"], Method::POST) => {
            create_status(st, req, &repo_id, seg(2), None)
        }
        (["pushes"], Method::GET) => pushes(st, req, &repo_id),
        (["pullrequests"], Method::GET) => list_pulls(st, req, &repo_id),
        (["pullrequests", n, rest @ ..], m) => {
            let n: u64 = n.parse().map_err(|_| pull_not_found())?;
            if !st.repos[&repo_id].pulls.contains_key(&n) {
                return Err(pull_not_found());
            }
            pull_request(st, req, &repo_id, n, rest, m)
        }
        (
            ["refs"]
            | ["commits", _, "mergebases"]
            | ["commits", _, "statuses"]
            | ["pushes"]
            | ["pullrequests"]
            | [],
            _,
        ) => Err(not_allowed()),
        _ => Err(err(404, "NotFoundException", "Page not found.")),
    }
}

fn pull_json(st: &mut State, repo_id: &str, n: u64) -> Value {
    let base = st.base_url.clone();
    let repo = repo_json(st, &st.repos[repo_id]);
    let pull = &st.repos[repo_id].pulls[&n];
    let (pr, status, created) = (pull.pr.clone(), pull.status.clone(), pull.created);
    let author = identity_ref(st, &pr.author);
    let mut v = json!({
        "repository": repo,
        "pullRequestId": pr.id,
        "codeReviewId": pr.id,
        "status": status,
        "createdBy": author,
        "creationDate": iso(created),
        "title": pr.title,
        "description": "",
        "sourceRefName": format!("refs/heads/{}", pr.source_branch),
        "targetRefName": format!("refs/heads/{}", pr.target_branch),
        "mergeStatus": "succeeded",
        "isDraft": pr.draft,
        "mergeId": guid(),
        "reviewers": [],
        "url": format!("{base}/_apis/git/repositories/{repo_id}/pullRequests/{}", pr.id),
        "supportsIterations": true,
    });
    if !pr.head.is_empty() {
        v["lastMergeSourceCommit"] = commit_ref(&base, repo_id, &pr.head);
        v["lastMergeTargetCommit"] = commit_ref(&base, repo_id, &pr.base);
        v["lastMergeCommit"] = commit_ref(&base, repo_id, &"f".repeat(40));
    }
    if pr.from_fork {
        v["forkSource"] = json!({
            "name": format!("refs/heads/{}", pr.source_branch),
            "repository": { "id": guid(), "name": "fork" },
        });
    }
    v
}

fn list_pulls(st: &mut State, req: &Req, repo_id: &str) -> Answer {
    let wanted = req
        .q("searchCriteria.status")
        .unwrap_or("active")
        .to_string();
    if !["active", "abandoned", "completed", "all", "notSet"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&wanted))
    {
        return Err(bad_request(format!(
            "searchCriteria.status {wanted:?} is not a PullRequestStatus"
        )));
    }
    let (top, skip) = req.paging(101)?;
    // Newest first, as Azure lists them.
    let ids: Vec<u64> = st.repos[repo_id]
        .pulls
        .values()
        .rev()
        .filter(|p| wanted.eq_ignore_ascii_case("all") || p.status.eq_ignore_ascii_case(&wanted))
        .map(|p| p.pr.id)
        .skip(skip)
        .take(top)
        .collect();
    let items = ids.into_iter().map(|n| pull_json(st, repo_id, n)).collect();
    list(items)
}

fn iteration_json(st: &mut State, repo_id: &str, pull: (u64, String), i: &Iteration) -> Value {
    let base = st.base_url.clone();
    let author = identity_ref(st, &pull.1);
    json!({
        "id": i.id,
        "description": "",
        "author": author,
        "createdDate": "2026-11-30T12:00:00Z",
        "updatedDate": "2026-11-30T12:00:00Z",
        "sourceRefCommit": commit_ref(&base, repo_id, &i.source),
        "targetRefCommit": commit_ref(&base, repo_id, &i.target),
        "commonRefCommit": commit_ref(&base, repo_id, &i.common),
        "hasMoreCommits": false,
        "reason": if i.id == 1 { "create" } else { "push" },
        "push": { "pushId": i.id },
    })
}

fn pull_request(
    st: &mut State,
    req: &Req,
    repo_id: &str,
    n: u64,
    rest: &[&str],
    method: Method,
) -> Answer {
    let seg = |i: usize| req.segs[7 + i].clone();
    match (rest, method) {
        ([], Method::GET) => ok(pull_json(st, repo_id, n)),
        (["iterations"], Method::GET) => {
            let pull = &st.repos[repo_id].pulls[&n];
            let author = (n, pull.pr.author.clone());
            let iterations: Vec<(u64, String, String, String)> = pull
                .iterations
                .iter()
                .map(|i| (i.id, i.source.clone(), i.target.clone(), i.common.clone()))
                .collect();
            let items = iterations
                .into_iter()
                .map(|(id, source, target, common)| {
                    let i = Iteration {
                        id,
                        source,
                        target,
                        common,
                        changes: Vec::new(),
                    };
                    iteration_json(st, repo_id, author.clone(), &i)
                })
                .collect();
            list(items)
        }
        (["iterations", _, "changes"], Method::GET) => {
            let id: u64 = seg(1)
                .parse()
                .map_err(|_| bad_request("iterationId must be an integer"))?;
            let compare_to = req.q("$compareTo").unwrap_or("0");
            if compare_to != "0" {
                return Err(bad_request(
                    "this test server compares with the merge base only ($compareTo=0)",
                ));
            }
            let (top, skip) = req.paging(100)?;
            let iteration = st.repos[repo_id].pulls[&n]
                .iterations
                .iter()
                .find(|i| i.id == id)
                .ok_or_else(|| {
                    err(
                        404,
                        "GitPullRequestIterationNotFoundException",
                        format!("TF401176: Iteration {id} of the pull request was not found."),
                    )
                })?;
            let total = iteration.changes.len();
            let entries: Vec<Value> = iteration
                .changes
                .iter()
                .skip(skip)
                .take(top)
                .map(|(path, tracking)| {
                    json!({
                        "changeTrackingId": tracking,
                        "changeId": tracking,
                        "item": { "objectId": "e".repeat(40), "path": path },
                        "changeType": "edit",
                    })
                })
                .collect();
            let mut v = json!({ "changeEntries": entries });
            if skip + top < total {
                v["nextSkip"] = json!(skip + top);
                v["nextTop"] = json!(top);
            }
            ok(v)
        }
        (["statuses"], Method::POST) => {
            let head = st.repos[repo_id].pulls[&n].pr.head.clone();
            create_status(st, req, repo_id, head, Some(n))
        }
        (["statuses"], Method::GET) => {
            let statuses: Vec<TestStatus> = st.repos[repo_id]
                .statuses
                .iter()
                .filter(|s| s.pull_request == Some(n))
                .cloned()
                .collect();
            let items = statuses.iter().map(|s| status_json(st, s)).collect();
            list(items)
        }
        (["threads"], Method::GET) => {
            let ids: Vec<u64> = st.repos[repo_id].pulls[&n]
                .threads
                .keys()
                .copied()
                .collect();
            let items = ids
                .into_iter()
                .map(|t| thread_json(st, repo_id, n, t))
                .collect();
            list(items)
        }
        (["threads"], Method::POST) => create_thread(st, req, repo_id, n),
        (["threads", t, rest @ ..], m) => {
            let t: u64 = t.parse().map_err(|_| thread_not_found())?;
            if !st.repos[repo_id].pulls[&n].threads.contains_key(&t) {
                return Err(thread_not_found());
            }
            thread_request(st, req, repo_id, n, t, rest, m)
        }
        ([] | ["iterations"] | ["iterations", _, "changes"] | ["threads"], _) => Err(not_allowed()),
        _ => Err(err(404, "NotFoundException", "Page not found.")),
    }
}

fn thread_not_found() -> ApiError {
    err(
        404,
        "CommentThreadNotFoundException",
        "TF401181: The requested pull request comment thread was not found.",
    )
}

fn comment_json(st: &mut State, repo_id: &str, n: u64, t: u64, c: &TestComment) -> Value {
    let base = st.base_url.clone();
    let author = identity_ref(st, &c.author);
    let thread_url =
        format!("{base}/_apis/git/repositories/{repo_id}/pullRequests/{n}/threads/{t}");
    json!({
        "id": c.id,
        "parentCommentId": c.parent_comment_id,
        "author": author,
        "content": c.content,
        "publishedDate": "2026-11-30T12:00:00Z",
        "lastUpdatedDate": "2026-11-30T12:00:00Z",
        "lastContentUpdatedDate": "2026-11-30T12:00:00Z",
        "isDeleted": c.deleted,
        "commentType": c.comment_type,
        "usersLiked": [],
        "_links": {
            "self": { "href": format!("{thread_url}/comments/{}", c.id) },
            "repository": { "href": format!("{base}/_apis/git/repositories/{repo_id}") },
            "threads": { "href": thread_url },
            "pullRequests": { "href": format!("{base}/_apis/git/pullRequests/{n}") },
        },
    })
}

fn thread_json(st: &mut State, repo_id: &str, n: u64, t: u64) -> Value {
    let thread = &st.repos[repo_id].pulls[&n].threads[&t];
    let (status, context, pr_context, comments, published) = (
        thread.status.clone(),
        thread.context.clone(),
        thread.pr_context.clone(),
        thread.comments.clone(),
        thread.published,
    );
    let comments: Vec<Value> = comments
        .iter()
        .map(|c| comment_json(st, repo_id, n, t, c))
        .collect();
    let all_deleted = !comments.is_empty() && comments.iter().all(|c| c["isDeleted"] == true);
    let mut v = json!({
        "id": t,
        "publishedDate": iso(published),
        "lastUpdatedDate": iso(published),
        "comments": comments,
        "properties": {},
        "identities": null,
        "isDeleted": all_deleted,
        "_links": {
            "self": { "href": format!("{}/_apis/git/repositories/{repo_id}/pullRequests/{n}/threads/{t}", st.base_url) },
        },
    });
    if status != "unknown" {
        v["status"] = json!(status);
    }
    if let Some(c) = context {
        v["threadContext"] = c;
    }
    if let Some(c) = pr_context {
        v["pullRequestThreadContext"] = c;
    }
    v
}

const THREAD_STATUSES: &[&str] = &[
    "unknown", "active", "fixed", "wontFix", "closed", "byDesign", "pending",
];

/// A `CommentThreadStatus` as a name (the API takes the name or the number).
fn thread_status(v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => THREAD_STATUSES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(s))
            .map(|t| t.to_string()),
        Value::Number(n) => n
            .as_u64()
            .and_then(|i| THREAD_STATUSES.get(i as usize))
            .map(|t| t.to_string()),
        _ => None,
    }
    .ok_or_else(|| bad_request(format!("{v} is not a CommentThreadStatus")))
}

/// A `CommentType` as a name.
fn comment_type(v: Option<&Value>) -> Result<String, ApiError> {
    const TYPES: &[&str] = &["unknown", "text", "codeChange", "system"];
    match v {
        None | Some(Value::Null) => Ok("text".to_string()),
        Some(Value::String(s)) => TYPES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(s))
            .map(|t| t.to_string())
            .ok_or_else(|| bad_request(format!("{s:?} is not a CommentType"))),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|i| TYPES.get(i as usize))
            .map(|t| t.to_string())
            .ok_or_else(|| bad_request(format!("{n} is not a CommentType"))),
        Some(other) => Err(bad_request(format!("{other} is not a CommentType"))),
    }
}

fn position(v: &Value, name: &str) -> Result<(), ApiError> {
    let line = v["line"].as_u64().unwrap_or(0);
    let offset = v["offset"].as_u64().unwrap_or(0);
    if line == 0 || offset == 0 {
        return Err(bad_request(format!(
            "threadContext.{name} needs a line and an offset of at least 1"
        )));
    }
    Ok(())
}

fn create_thread(st: &mut State, req: &Req, repo_id: &str, n: u64) -> Answer {
    let body = req.body();
    let comments = body["comments"]
        .as_array()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad_request("a new thread needs its comments"))?;
    let mut made = Vec::new();
    for (i, c) in comments.iter().enumerate() {
        let content = c["content"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| bad_request("a comment needs its content"))?;
        made.push(TestComment {
            id: i as u64 + 1,
            parent_comment_id: c["parentCommentId"].as_u64().unwrap_or(0),
            author: req.user.clone(),
            content: content.to_string(),
            comment_type: comment_type(c.get("commentType"))?,
            deleted: false,
        });
    }
    let status = match body.get("status") {
        None | Some(Value::Null) => "unknown".to_string(),
        Some(s) => thread_status(s)?,
    };
    let context = match body.get("threadContext") {
        None | Some(Value::Null) => None,
        Some(c) => {
            let path = c["filePath"]
                .as_str()
                .filter(|p| p.starts_with('/'))
                .ok_or_else(|| bad_request("threadContext.filePath must start with /"))?;
            for side in [
                "rightFileStart",
                "rightFileEnd",
                "leftFileStart",
                "leftFileEnd",
            ] {
                if let Some(p) = c.get(side).filter(|p| !p.is_null()) {
                    position(p, side)?;
                }
            }
            if st.repos[repo_id].refused_paths.contains(path) {
                return Err(bad_request(format!(
                    "TF401227: the file {path} cannot take a comment in this pull request."
                )));
            }
            Some(c.clone())
        }
    };
    let pr_context = match body.get("pullRequestThreadContext") {
        None | Some(Value::Null) => None,
        Some(c) => {
            let second = c["iterationContext"]["secondComparingIteration"].as_u64();
            let first = c["iterationContext"]["firstComparingIteration"].as_u64();
            let pull = &st.repos[repo_id].pulls[&n];
            let known =
                |i: Option<u64>| i.is_some_and(|i| pull.iterations.iter().any(|it| it.id == i));
            if !known(first) || !known(second) {
                return Err(bad_request(
                    "pullRequestThreadContext.iterationContext names an iteration the pull request does not have",
                ));
            }
            Some(c.clone())
        }
    };
    let id = st.id();
    st.repos
        .get_mut(repo_id)
        .expect("repo")
        .pulls
        .get_mut(&n)
        .expect("pull")
        .threads
        .insert(
            id,
            Thread {
                id,
                status,
                context,
                pr_context,
                comments: made,
                published: SystemTime::now(),
            },
        );
    ok(thread_json(st, repo_id, n, id))
}

fn thread_request(
    st: &mut State,
    req: &Req,
    repo_id: &str,
    n: u64,
    t: u64,
    rest: &[&str],
    method: Method,
) -> Answer {
    match (rest, method) {
        ([], Method::GET) => ok(thread_json(st, repo_id, n, t)),
        ([], Method::PATCH) => {
            if let Some(s) = req.body().get("status").filter(|s| !s.is_null()) {
                let status = thread_status(s)?;
                thread_mut(st, repo_id, n, t).status = status;
            }
            ok(thread_json(st, repo_id, n, t))
        }
        (["comments"], Method::GET) => {
            let comments = thread_mut(st, repo_id, n, t).comments.clone();
            let items = comments
                .iter()
                .map(|c| comment_json(st, repo_id, n, t, c))
                .collect();
            list(items)
        }
        (["comments"], Method::POST) => {
            let body = req.body();
            let content = body["content"]
                .as_str()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| bad_request("a comment needs its content"))?
                .to_string();
            let parent = body["parentCommentId"].as_u64().unwrap_or(0);
            let kind = comment_type(body.get("commentType"))?;
            let user = req.user.clone();
            let th = thread_mut(st, repo_id, n, t);
            if parent != 0 && !th.comments.iter().any(|c| c.id == parent) {
                return Err(bad_request(format!(
                    "parentCommentId {parent} is not a comment of the thread"
                )));
            }
            let id = th.comments.iter().map(|c| c.id).max().unwrap_or(0) + 1;
            let comment = TestComment {
                id,
                parent_comment_id: parent,
                author: user,
                content,
                comment_type: kind,
                deleted: false,
            };
            th.comments.push(comment.clone());
            ok(comment_json(st, repo_id, n, t, &comment))
        }
        (["comments", c], Method::GET | Method::PATCH) => {
            let c: u64 = c.parse().map_err(|_| comment_not_found())?;
            let user = req.user.clone();
            let content = req.body()["content"].as_str().map(str::to_string);
            let patch = req.method == Method::PATCH;
            let th = thread_mut(st, repo_id, n, t);
            let comment = th
                .comments
                .iter_mut()
                .find(|x| x.id == c && !x.deleted)
                .ok_or_else(comment_not_found)?;
            if patch {
                if !comment.author.eq_ignore_ascii_case(&user) {
                    return Err(err(
                        403,
                        "UnauthorizedRequestException",
                        "TF401185: Only the author of a comment can edit it.",
                    ));
                }
                let content = content
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| bad_request("a comment needs its content"))?;
                comment.content = content;
            }
            let comment = comment.clone();
            ok(comment_json(st, repo_id, n, t, &comment))
        }
        ([] | ["comments"] | ["comments", _], _) => Err(not_allowed()),
        _ => Err(err(404, "NotFoundException", "Page not found.")),
    }
}

fn thread_mut<'a>(st: &'a mut State, repo_id: &str, n: u64, t: u64) -> &'a mut Thread {
    st.repos
        .get_mut(repo_id)
        .expect("repo")
        .pulls
        .get_mut(&n)
        .expect("pull")
        .threads
        .get_mut(&t)
        .expect("thread")
}

fn comment_not_found() -> ApiError {
    err(
        404,
        "CommentNotFoundException",
        "TF401182: The requested pull request comment was not found.",
    )
}

fn status_json(st: &mut State, s: &TestStatus) -> Value {
    let author = identity_ref(st, &s.author);
    let mut v = json!({
        "id": s.id,
        "state": s.state,
        "context": { "name": s.name },
        "creationDate": "2026-11-30T12:00:00Z",
        "updatedDate": "2026-11-30T12:00:00Z",
        "createdBy": author,
    });
    if let Some(g) = &s.genre {
        v["context"]["genre"] = json!(g);
    }
    if let Some(d) = &s.description {
        v["description"] = json!(d);
    }
    if let Some(u) = &s.target_url {
        v["targetUrl"] = json!(u);
    }
    if let Some(i) = s.iteration {
        v["iterationId"] = json!(i);
    }
    v
}

fn create_status(
    st: &mut State,
    req: &Req,
    repo_id: &str,
    commit: String,
    pull_request: Option<u64>,
) -> Answer {
    const STATES: &[&str] = &[
        "notSet",
        "pending",
        "succeeded",
        "failed",
        "error",
        "notApplicable",
    ];
    let body = req.body();
    let state = match &body["state"] {
        Value::Null => "notSet".to_string(),
        Value::String(s) => STATES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(s))
            .map(|t| t.to_string())
            .ok_or_else(|| bad_request(format!("{s:?} is not a GitStatusState")))?,
        other => return Err(bad_request(format!("{other} is not a GitStatusState"))),
    };
    let name = body["context"]["name"]
        .as_str()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| bad_request("context.name is required"))?
        .to_string();
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_request(format!("{commit:?} is not a commit id")));
    }
    // A pull request status may name the iteration it is for (GitPullRequestStatus
    // `iterationId`, at least 1); it is then shown with that iteration, and its commit is that
    // iteration's source commit.
    let (commit, iteration) = match (&body["iterationId"], pull_request) {
        (Value::Null, _) => (commit, None),
        (Value::Number(n), Some(pr)) => {
            let wanted = n.as_u64().filter(|i| *i >= 1).ok_or_else(|| {
                bad_request(format!("iterationId {n} is not a pull request iteration"))
            })?;
            let source = st.repos[repo_id].pulls[&pr]
                .iterations
                .iter()
                .find(|i| i.id == wanted)
                .map(|i| i.source.clone())
                .ok_or_else(|| {
                    err(
                        404,
                        "GitPullRequestIterationNotFoundException",
                        format!("The iteration {wanted} does not exist."),
                    )
                })?;
            (source, Some(wanted))
        }
        (other, _) => {
            return Err(bad_request(format!(
                "iterationId {other} is not allowed here"
            )))
        }
    };
    let id = st.id();
    let status = TestStatus {
        id,
        commit,
        pull_request,
        state,
        name,
        genre: body["context"]["genre"].as_str().map(str::to_string),
        description: body["description"].as_str().map(str::to_string),
        target_url: body["targetUrl"].as_str().map(str::to_string),
        author: req.user.clone(),
        iteration,
    };
    st.repos
        .get_mut(repo_id)
        .expect("repo")
        .statuses
        .push(status.clone());
    ok(status_json(st, &status))
}

fn pushes(st: &mut State, req: &Req, repo_id: &str) -> Answer {
    let from = match req.q("searchCriteria.fromDate") {
        None => None,
        Some(d) => Some(
            time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339)
                .map_err(|_| bad_request(format!("searchCriteria.fromDate {d:?} is not a date")))?,
        ),
    };
    let (top, skip) = req.paging(100)?;
    let mut found: Vec<(u64, String, SystemTime)> = st.repos[repo_id]
        .pushes
        .iter()
        .filter(|p| from.is_none_or(|f| time::OffsetDateTime::from(p.date) >= f))
        .map(|p| (p.id, p.pusher.clone(), p.date))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.2));
    let base = st.base_url.clone();
    let items = found
        .into_iter()
        .skip(skip)
        .take(top)
        .map(|(id, pusher, date)| {
            json!({
                "pushId": id,
                "date": iso(date),
                "pushedBy": identity_ref(st, &pusher),
                "url": format!("{base}/_apis/git/repositories/{repo_id}/pushes/{id}"),
            })
        })
        .collect();
    list(items)
}

fn subscription_json(st: &mut State, s: &Subscription) -> Value {
    let base = st.base_url.clone();
    let mut consumer = serde_json::Map::new();
    for (k, v) in &s.sub.consumer_inputs {
        let v = if k == "basicAuthPassword" {
            "********".to_string()
        } else {
            v.clone()
        };
        consumer.insert(k.clone(), json!(v));
    }
    let created_by = identity_ref(st, &s.created_by);
    json!({
        "id": s.sub.id,
        "url": format!("{base}/_apis/hooks/subscriptions/{}", s.sub.id),
        "status": "enabled",
        "publisherId": s.publisher_id,
        "eventType": s.sub.event_type,
        "resourceVersion": s.sub.resource_version,
        "eventDescription": "",
        "consumerId": s.consumer_id,
        "consumerActionId": s.consumer_action_id,
        "actionDescription": "",
        "createdBy": created_by,
        "createdDate": "2026-11-30T12:00:00Z",
        "modifiedBy": created_by,
        "modifiedDate": "2026-11-30T12:00:00Z",
        "publisherInputs": s.sub.publisher_inputs,
        "consumerInputs": consumer,
    })
}

fn list_subscriptions(st: &mut State, req: &Req) -> Answer {
    let filter =
        |name: &str, value: &str| req.q(name).is_none_or(|q| q.eq_ignore_ascii_case(value));
    let matching: Vec<usize> = st
        .subscriptions
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            filter("publisherId", &s.publisher_id)
                && filter("eventType", &s.sub.event_type)
                && filter("consumerId", &s.consumer_id)
                && filter("consumerActionId", &s.consumer_action_id)
        })
        .map(|(i, _)| i)
        .collect();
    let mut items = Vec::new();
    for i in matching {
        let s = st.subscriptions[i].clone();
        items.push(subscription_json(st, &s));
    }
    list(items)
}

fn string_map(
    v: &Value,
    name: &str,
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    match v {
        Value::Null => Ok(Default::default()),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(bad_request(format!(
                    "{name}.{k} must be a string, not {other}"
                ))),
            })
            .collect(),
        other => Err(bad_request(format!(
            "{name} must be an object, not {other}"
        ))),
    }
}

fn save_subscription(st: &mut State, req: &Req, id: Option<String>) -> Answer {
    let body = req.body();
    let text = |name: &str| {
        body[name]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
            .ok_or_else(|| bad_request(format!("{name} is required")))
    };
    let publisher_id = text("publisherId")?;
    let event_type = text("eventType")?;
    let consumer_id = text("consumerId")?;
    let consumer_action_id = text("consumerActionId")?;
    let publisher_inputs = string_map(&body["publisherInputs"], "publisherInputs")?;
    let consumer_inputs = string_map(&body["consumerInputs"], "consumerInputs")?;
    if publisher_id != "tfs" || consumer_id != "webHooks" || consumer_action_id != "httpRequest" {
        return Err(bad_request(
            "this test server knows the tfs publisher and the webHooks consumer's httpRequest only",
        ));
    }
    let url = consumer_inputs
        .get("url")
        .ok_or_else(|| bad_request("consumerInputs.url is required"))?;
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(bad_request("consumerInputs.url must be an http(s) URL"));
    }
    if let Some(project) = publisher_inputs.get("projectId") {
        if !project.eq_ignore_ascii_case(&st.project_id) {
            return Err(bad_request(format!(
                "publisherInputs.projectId {project} is not a project of the organization"
            )));
        }
    }
    if let Some(repo) = publisher_inputs.get("repository") {
        if !st.repos.keys().any(|r| r.eq_ignore_ascii_case(repo)) {
            return Err(repo_not_found(repo));
        }
    }
    let resource_version = body["resourceVersion"]
        .as_str()
        .unwrap_or("1.0")
        .to_string();
    let saved = match id {
        Some(id) => {
            let s = st
                .subscriptions
                .iter_mut()
                .find(|s| s.sub.id.eq_ignore_ascii_case(&id))
                .ok_or_else(|| {
                    err(
                        404,
                        "SubscriptionNotFoundException",
                        format!("Subscription {id} does not exist."),
                    )
                })?;
            s.sub.event_type = event_type;
            s.sub.resource_version = resource_version;
            s.sub.publisher_inputs = publisher_inputs;
            s.sub.consumer_inputs = consumer_inputs;
            s.sub.replaced += 1;
            s.publisher_id = publisher_id;
            s.consumer_id = consumer_id;
            s.consumer_action_id = consumer_action_id;
            s.clone()
        }
        None => {
            let s = Subscription {
                sub: TestSubscription {
                    id: guid(),
                    event_type,
                    resource_version,
                    publisher_inputs,
                    consumer_inputs,
                    replaced: 0,
                },
                publisher_id,
                consumer_id,
                consumer_action_id,
                created_by: req.user.clone(),
            };
            st.subscriptions.push(s.clone());
            s
        }
    };
    ok(subscription_json(st, &saved))
}
