//! The server against a real HTTP client (reqwest).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::*;

const HEAD: &str = "1111111111111111111111111111111111111111";
const BASE: &str = "2222222222222222222222222222222222222222";
const MERGE_BASE: &str = "3333333333333333333333333333333333333333";

struct Fixture {
    server: BitbucketServer,
    token: String,
    http: reqwest::Client,
}

impl Fixture {
    async fn new() -> Fixture {
        let server = BitbucketServer::start("acme").await;
        let token = server.add_token("Picket", PICKET_SCOPES);
        server.add_repo("web", "main", "https://bitbucket.org/acme/web.git");
        server.add_pull("web", TestPull::open(7, "feature/x", HEAD, BASE, "alice"));
        server.set_merge_base("web", BASE, HEAD, MERGE_BASE);
        Fixture {
            server,
            token,
            http: reqwest::Client::new(),
        }
    }

    /// `method /2.0<path>` with the fixture's token (or `token`), answering status and JSON.
    async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.server.api_url()));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value, headers)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, value, _) = self
            .call_as(Some(&self.token.clone()), method, path, body)
            .await;
        (status, value)
    }

    fn assert_valid(&self) {
        let violations = self.server.violations();
        assert!(violations.is_empty(), "{violations:#?}");
    }
}

#[test]
fn the_route_table_is_read_from_the_pinned_package() {
    let ops = routes::table().expect("run `make bitbucket-fixtures`");
    assert!(ops.len() > 250, "{} operations", ops.len());
    let (op, params) = routes::find(
        ops,
        "GET",
        "repositories/acme/web/pullrequests/7/comments/9",
    )
    .unwrap();
    assert_eq!(op.name, "repositories.getPullRequestComment");
    assert_eq!(
        params,
        [
            ("workspace".to_string(), "acme".to_string()),
            ("repo_slug".to_string(), "web".to_string()),
            ("pull_request_id".to_string(), "7".to_string()),
            ("comment_id".to_string(), "9".to_string()),
        ]
    );
    // A literal segment wins over a parameter.
    let (op, _) = routes::find(ops, "GET", "repositories/acme/web/pullrequests/activity").unwrap();
    assert_eq!(op.name, "repositories.listPullRequestActivitiesForRepo");
    // An encoded slash stays in its segment.
    let (op, params) = routes::find(
        ops,
        "GET",
        "repositories/acme/web/merge-base/feature%2Fx..abc",
    )
    .unwrap();
    assert_eq!(
        op.template,
        "/repositories/{workspace}/{repo_slug}/merge-base/{revspec}"
    );
    assert_eq!(params[2].1, "feature/x..abc");
    assert!(routes::find(ops, "PATCH", "repositories/acme/web").is_err());
    assert!(routes::find(ops, "GET", "repositories/acme/web/nothing-here").is_err());
}

#[tokio::test]
async fn tokens_and_scopes_are_checked_like_bitbucket() {
    let f = Fixture::new().await;
    let (status, body, _) = f
        .call_as(None, Method::GET, "/repositories/acme/web", None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "error");
    let (status, _, _) = f
        .call_as(Some("nope"), Method::GET, "/repositories/acme/web", None)
        .await;
    assert_eq!(status, 401);

    let (status, body, headers) = f
        .call_as(Some(&f.token), Method::GET, "/repositories/acme/web", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers["x-oauth-scopes"],
        "pullrequest:write, webhook, repository:admin"
    );
    assert_eq!(headers["x-accepted-oauth-scopes"], "repository");
    assert_eq!(headers["x-credential-type"], "workspace_access_token");
    assert_eq!(body["full_name"], "acme/web");
    // The caller's name in the clone link, as Bitbucket writes it.
    assert_eq!(
        body["links"]["clone"][0]["href"],
        "https://Picket@bitbucket.org/acme/web.git"
    );

    let reader = f.server.add_token("Reader", &["repository"]);
    let (status, body, _) = f
        .call_as(
            Some(&reader),
            Method::GET,
            "/repositories/acme/web/pullrequests/7",
            None,
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["detail"]["required"], json!(["pullrequest"]));

    // A token acts as a user named after it.
    let (status, me) = f.call(Method::GET, "/user", None).await;
    assert_eq!(status, 200);
    assert_eq!(me["nickname"], "Picket");
    assert!(me["uuid"].as_str().unwrap().starts_with('{'));

    f.server.revoke_token(&reader);
    let (status, _, _) = f
        .call_as(Some(&reader), Method::GET, "/repositories/acme/web", None)
        .await;
    assert_eq!(status, 401);
    // The one request without a token is the one reported.
    assert_eq!(
        f.server.violations(),
        ["GET /2.0/repositories/acme/web: no `Authorization: Bearer` access token"]
    );
}

#[tokio::test]
async fn listings_are_paged_with_next_urls() {
    let f = Fixture::new().await;
    for i in 0..24 {
        f.server.add_repo(
            &format!("repo-{i:02}"),
            "main",
            "https://bitbucket.org/x.git",
        );
    }
    let (status, page) = f
        .call(Method::GET, "/repositories/acme?pagelen=10", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["size"], 25);
    assert_eq!(page["values"].as_array().unwrap().len(), 10);
    let next = page["next"].as_str().unwrap();
    assert!(next.starts_with(&f.server.api_url()), "{next}");
    assert!(next.ends_with("pagelen=10&page=2"), "{next}");
    let (_, last) = f
        .call(Method::GET, "/repositories/acme?pagelen=10&page=3", None)
        .await;
    assert_eq!(last["values"].as_array().unwrap().len(), 5);
    assert!(last.get("next").is_none());
    assert!(last["previous"].as_str().unwrap().ends_with("page=2"));

    let (status, _) = f
        .call(Method::GET, "/repositories/acme?pagelen=101", None)
        .await;
    assert_eq!(status, 400);
    let (status, _) = f
        .call(
            Method::GET,
            "/repositories/acme/web/pullrequests?pagelen=51",
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = f
        .call(
            Method::GET,
            "/repositories/acme/web/pullrequests?pagelen=50",
            None,
        )
        .await;
    assert_eq!(status, 200);
    f.assert_valid();
}

#[tokio::test]
async fn pull_requests_carry_abbreviated_hashes_that_resolve() {
    let f = Fixture::new().await;
    let (status, pr) = f
        .call(Method::GET, "/repositories/acme/web/pullrequests/7", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(pr["source"]["commit"]["hash"], &HEAD[..12]);
    assert_eq!(pr["destination"]["commit"]["hash"], &BASE[..12]);
    assert_eq!(pr["source"]["branch"]["name"], "feature/x");
    assert_eq!(pr["author"]["nickname"], "alice");
    let (_, commit) = f
        .call(
            Method::GET,
            &format!("/repositories/acme/web/commit/{}", &HEAD[..12]),
            None,
        )
        .await;
    assert_eq!(commit["hash"], HEAD);
    let (status, _) = f
        .call(
            Method::GET,
            "/repositories/acme/web/commit/abcdef123456",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (_, base) = f
        .call(
            Method::GET,
            &format!("/repositories/acme/web/merge-base/main..{HEAD}"),
            None,
        )
        .await;
    assert_eq!(base["hash"], MERGE_BASE);

    f.server
        .update_pull("web", 7, |p| p.state = "MERGED".into());
    let (_, open) = f
        .call(
            Method::GET,
            "/repositories/acme/web/pullrequests?state=OPEN",
            None,
        )
        .await;
    assert_eq!(open["size"], 0);
    let (_, merged) = f
        .call(
            Method::GET,
            "/repositories/acme/web/pullrequests?state=MERGED",
            None,
        )
        .await;
    assert_eq!(merged["size"], 1);
    f.assert_valid();
}

#[tokio::test]
async fn comments_threads_and_resolution() {
    let f = Fixture::new().await;
    f.server.set_diff_lines("web", 7, "src/app.py", &[10, 11]);
    let comments = "/repositories/acme/web/pullrequests/7/comments";
    let (status, body) = f
        .call(
            Method::POST,
            comments,
            Some(json!({"content": {"raw": "x"}, "inline": {"path": "src/app.py", "to": 99}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, inline) = f
        .call(
            Method::POST,
            comments,
            Some(
                json!({"content": {"raw": "finding"}, "inline": {"path": "src/app.py", "to": 10}}),
            ),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(inline["user"]["nickname"], "Picket");
    assert_eq!(inline["inline"]["to"], 10);
    let id = inline["id"].as_u64().unwrap();
    let (status, reply) = f
        .call(
            Method::POST,
            comments,
            Some(json!({"content": {"raw": "thanks"}, "parent": {"id": id}})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(reply["parent"]["id"], id);
    assert_eq!(reply["inline"]["path"], "src/app.py");
    let (status, _) = f
        .call(Method::POST, comments, Some(json!({"content": {}})))
        .await;
    assert_eq!(status, 400);

    let resolve = format!("{comments}/{id}/resolve");
    let (status, resolution) = f.call(Method::POST, &resolve, None).await;
    assert_eq!(status, 200);
    assert_eq!(resolution["type"], "comment_resolution");
    let (status, _) = f.call(Method::POST, &resolve, None).await;
    assert_eq!(status, 409);
    let (status, _) = f
        .call(
            Method::POST,
            &format!("{comments}/{}/resolve", reply["id"]),
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (_, got) = f.call(Method::GET, &format!("{comments}/{id}"), None).await;
    assert_eq!(got["resolution"]["user"]["nickname"], "Picket");

    // Only its author edits a comment.
    let theirs = f.server.add_comment("web", 7, "alice", "hi", None, None);
    let (status, _) = f
        .call(
            Method::PUT,
            &format!("{comments}/{theirs}"),
            Some(json!({"content": {"raw": "edited"}})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, edited) = f
        .call(
            Method::PUT,
            &format!("{comments}/{id}"),
            Some(json!({"content": {"raw": "edited"}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(edited["content"]["raw"], "edited");

    f.server.delete_comment(theirs);
    let (_, list) = f
        .call(Method::GET, &format!("{comments}?pagelen=100"), None)
        .await;
    let deleted: Vec<bool> = list["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["deleted"].as_bool().unwrap())
        .collect();
    assert_eq!(deleted, [false, false, true]);
    assert_eq!(f.server.comments("web", 7).len(), 3);
    f.assert_valid();
}

fn annotation(i: usize) -> Value {
    json!({
        "external_id": format!("a-{i}"),
        "annotation_type": "VULNERABILITY",
        "summary": "s",
        "severity": "HIGH",
        "path": "a.py",
        "line": 1,
    })
}

#[tokio::test]
async fn reports_annotations_and_their_limits() {
    let f = Fixture::new().await;
    let report = format!("/repositories/acme/web/commit/{HEAD}/reports/picket");
    let body = json!({
        "title": "Picket", "details": "d", "report_type": "SECURITY", "result": "PENDING",
    });
    let (status, _) = f
        .call(
            Method::PUT,
            &report,
            Some(json!({"title": "Picket", "details": "d"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, r) = f.call(Method::PUT, &report, Some(body.clone())).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["external_id"], "picket");
    let annotations = format!("{report}/annotations");
    let (status, e) = f
        .call(
            Method::POST,
            &annotations,
            Some(Value::Array((0..101).map(annotation).collect())),
        )
        .await;
    assert_eq!(status, 400);
    assert!(e["message"].as_str().unwrap().contains("100"), "{e}");
    let mut long = annotation(0);
    long["summary"] = json!("x".repeat(451));
    let (status, e) = f
        .call(Method::POST, &annotations, Some(json!([long])))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        e["message"],
        "The summary field cannot contain more than 450 characters."
    );
    for batch in 0..10 {
        let items: Vec<Value> = (batch * 100..batch * 100 + 100).map(annotation).collect();
        let (status, _) = f
            .call(Method::POST, &annotations, Some(Value::Array(items)))
            .await;
        assert_eq!(status, 200);
    }
    // The same ids update; one more is past the limit.
    let (status, _) = f
        .call(Method::POST, &annotations, Some(json!([annotation(5)])))
        .await;
    assert_eq!(status, 200);
    let (status, _) = f
        .call(Method::POST, &annotations, Some(json!([annotation(1000)])))
        .await;
    assert_eq!(status, 400);
    assert_eq!(f.server.reports("web")[0].annotations.len(), 1000);

    f.server.refuse_code_insights(Some(404));
    let (status, _) = f.call(Method::PUT, &report, Some(body)).await;
    assert_eq!(status, 404);
    let (status, e) = f
        .call(
            Method::PUT,
            &format!(
                "/repositories/acme/web/commit/{}/reports/picket",
                "9".repeat(40)
            ),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404, "{e}");
    f.assert_valid();
}

#[tokio::test]
async fn build_statuses_hooks_and_permissions() {
    let f = Fixture::new().await;
    let statuses = format!("/repositories/acme/web/commit/{HEAD}/statuses/build");
    let (status, e) = f
        .call(
            Method::POST,
            &statuses,
            Some(json!({"key": "k".repeat(41), "state": "FAILED", "url": "https://x.test"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 40"));
    let (status, _) = f
        .call(
            Method::POST,
            &statuses,
            Some(json!({"key": "picket", "state": "FAILED"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, s) = f
        .call(
            Method::POST,
            &statuses,
            Some(json!({"key": "picket", "state": "FAILED", "url": "https://x.test"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(s["state"], "FAILED");
    assert_eq!(f.server.statuses("web").len(), 1);

    let hooks = "/repositories/acme/web/hooks";
    let (status, _) = f
        .call(
            Method::POST,
            hooks,
            Some(json!({"url": "https://p.test/hook", "events": ["nope"]})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, hook) = f
        .call(
            Method::POST,
            hooks,
            Some(json!({
                "url": "https://p.test/hook", "events": ["pullrequest:created"],
                "active": true, "secret": "s3cret",
            })),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(hook["secret_set"], true);
    assert!(hook.get("secret").is_none());
    let uuid = hook["uuid"].as_str().unwrap();
    let (status, _) = f
        .call(
            Method::PUT,
            &format!("{hooks}/{}", urlencode(uuid)),
            Some(json!({"secret": "n3w"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(f.server.hooks("web")[0].secret.as_deref(), Some("n3w"));

    f.server.set_permission("web", "alice", "write", false);
    f.server.set_permission("web", "bob", "read", true);
    f.server.set_permission("web", "carol", "admin", true);
    let (status, perms) = f
        .call(
            Method::GET,
            "/workspaces/acme/permissions/repositories/web?q=permission%3E%22read%22",
            None,
        )
        .await;
    assert_eq!(status, 200, "{perms}");
    let users: Vec<&str> = perms["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user"]["nickname"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["alice", "carol"]);
    let (_, explicit) = f
        .call(
            Method::GET,
            "/repositories/acme/web/permissions-config/users",
            None,
        )
        .await;
    assert_eq!(explicit["size"], 2);
    let repo_token = f.server.add_repository_token(
        "Repo token",
        "web",
        &["pullrequest:write", "repository:admin"],
    );
    let (status, _, headers) = f
        .call_as(
            Some(&repo_token),
            Method::GET,
            "/workspaces/acme/permissions/repositories/web",
            None,
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(headers["x-credential-type"], "repo_access_token");
    f.server
        .add_repo("other", "main", "https://bitbucket.org/acme/other.git");
    let (_, listed, _) = f
        .call_as(Some(&repo_token), Method::GET, "/repositories/acme", None)
        .await;
    assert_eq!(listed["size"], 1);
    f.assert_valid();
}

fn urlencode(s: &str) -> String {
    s.replace('{', "%7B").replace('}', "%7D")
}

#[tokio::test]
async fn faults_are_served_in_order() {
    let f = Fixture::new().await;
    f.server.inject(Fault {
        path_contains: "/pullrequests".into(),
        kind: FaultKind::TooManyRequests {
            retry_after_secs: None,
        },
        times: 2,
    });
    f.server.inject(Fault {
        path_contains: "/pullrequests".into(),
        kind: FaultKind::ServerError { status: 503 },
        times: 1,
    });
    let path = "/repositories/acme/web/pullrequests/7";
    let (status, _, headers) = f.call_as(Some(&f.token), Method::GET, path, None).await;
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_none());
    assert_eq!(f.call(Method::GET, path, None).await.0, 429);
    assert_eq!(f.call(Method::GET, path, None).await.0, 503);
    assert_eq!(f.call(Method::GET, path, None).await.0, 200);
    let statuses: Vec<u16> = f.server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 503, 200]);
}

#[tokio::test]
async fn the_validator_reports_what_the_route_table_does_not_allow() {
    let f = Fixture::new().await;
    let cases: &[(Method, &str, Option<Value>, &str)] = &[
        (
            Method::GET,
            "/repositories/acme/web/nothing-here",
            None,
            "no operation",
        ),
        (
            Method::PATCH,
            "/repositories/acme/web",
            None,
            "no PATCH operation",
        ),
        (
            Method::GET,
            "/repositories/acme/web/pullrequests/seven",
            None,
            "is not a integer",
        ),
        (
            Method::GET,
            "/repositories/acme/web/pullrequests?state=open",
            None,
            "is not one of",
        ),
        (
            Method::GET,
            "/repositories/acme/web/pullrequests?per_page=5",
            None,
            "not declared",
        ),
        (
            Method::POST,
            "/repositories/acme/web/pullrequests/7/comments",
            None,
            "requires a body",
        ),
        (
            Method::GET,
            "/repositories/acme",
            Some(json!({})),
            "a body on a read",
        ),
    ];
    for (method, path, body, expected) in cases {
        let before = f.server.requests().len();
        f.call(method.clone(), path, body.clone()).await;
        let requests = f.server.requests();
        let violations = routes::violations(&requests[before..]);
        assert!(
            violations.iter().any(|v| v.contains(expected)),
            "{method} {path}: {violations:#?}"
        );
    }
    let before = f.server.requests().len();
    f.call_as(None, Method::GET, "/repositories/acme/web", None)
        .await;
    let violations = routes::violations(&f.server.requests()[before..]);
    assert!(
        violations[0].contains("no `Authorization: Bearer`"),
        "{violations:?}"
    );
    // The API root.
    let resp = f
        .http
        .get(f.server.api_url().replace("/2.0", "/1.0/user"))
        .bearer_auth(&f.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let violations = f.server.violations();
    assert!(
        violations
            .last()
            .unwrap()
            .contains("not under the API root"),
        "{violations:?}"
    );
}
