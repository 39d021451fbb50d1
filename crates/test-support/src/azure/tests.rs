//! The server against a real HTTP client (reqwest), and its route table against the package.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::routes::{match_path, parse_template, Seg};
use super::*;

const BOT: &str = "picket-bot@contoso.com";

struct Fixture {
    server: AzureServer,
    pat: String,
    repo: String,
    http: reqwest::Client,
}

impl Fixture {
    async fn new() -> Fixture {
        let server = AzureServer::start("fabrikam", "Fiber").await;
        let pat = server.add_pat(BOT);
        let repo = server.add_repo("web", Some("main"));
        server.add_pull(
            &repo,
            TestPullRequest {
                id: 7,
                title: "Add a feature".into(),
                source_branch: "feature".into(),
                target_branch: "main".into(),
                head: "a".repeat(40),
                base: "b".repeat(40),
                merge_base: "c".repeat(40),
                changed_paths: vec!["src/app.rs".into()],
                draft: false,
                from_fork: false,
                author: "alice@contoso.com".into(),
            },
        );
        Fixture {
            server,
            pat,
            repo,
            http: reqwest::Client::new(),
        }
    }

    /// `path` below the organization, with `query` (api-version included by the caller).
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.call_as(Some(&self.pat), method, path, query, body)
            .await
    }

    async fn call_as(
        &self,
        pat: Option<&str>,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.server.api_url()))
            .query(query);
        if let Some(pat) = pat {
            request = request.basic_auth("anyone", Some(pat));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn repo_path(&self) -> String {
        format!("/Fiber/_apis/git/repositories/{}", self.repo)
    }
}

#[test]
fn the_route_table_is_read_from_the_package() {
    let sizes = AzureServer::route_table_size().expect("run `make azure-fixtures`");
    assert_eq!(sizes["Git/GitClient.js"], 156);
    assert_eq!(sizes["Locations/LocationsClient.js"], 10);
    assert_eq!(sizes["ServiceHooks/ServiceHooksClient.js"], 23);
    let table = routes::TABLE.as_ref().unwrap();
    let threads = table
        .iter()
        .find(|r| {
            r.method == "POST"
                && r.template
                    == "{project}/_apis/git/repositories/{repositoryId}/pullRequests/{pullRequestId}/threads/{threadId}"
        })
        .expect("createThread");
    assert_eq!(threads.api_version, "7.2-preview.1");
    assert!(threads.body);
    let pulls = table
        .iter()
        .find(|r| {
            r.method == "GET"
                && r.template.ends_with("/pullRequests/{pullRequestId}")
                && r.query.contains("searchCriteria")
        })
        .expect("getPullRequests");
    assert!(pulls.query.contains("$top") && pulls.query.contains("$skip"));
    assert!(!pulls.body);
}

#[test]
fn templates_have_required_and_trailing_optional_parameters() {
    let segs = parse_template("{project}/_apis/git/repositories/{repositoryId}/refs/{*filter}");
    assert_eq!(
        segs[0],
        Seg::Param {
            name: "project".into(),
            required: true
        }
    );
    assert_eq!(
        segs[6],
        Seg::Wild {
            name: "filter".into(),
            required: false
        }
    );
    let path = |p: &str| -> Vec<String> { p.split('/').map(str::to_string).collect() };
    assert_eq!(
        match_path(&segs, &path("P/_apis/git/Repositories/R/refs")),
        Some(vec!["filter".to_string()])
    );
    assert_eq!(
        match_path(&segs, &path("P/_apis/git/repositories/R/refs/heads/main")),
        Some(vec![])
    );
    assert_eq!(match_path(&segs, &path("P/_apis/git/repositories")), None);
    assert_eq!(match_path(&segs, &path("P/_apis/git/repos/R/refs")), None);
}

#[tokio::test]
async fn valid_requests_leave_no_violation() {
    let f = Fixture::new().await;
    let (status, _, body) = f
        .call(
            Method::GET,
            "/_apis/connectionData",
            &[("api-version", "7.2-preview.1")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["authenticatedUser"]["properties"]["Account"]["$value"],
        BOT
    );
    let (status, _, body) = f
        .call(
            Method::GET,
            "/Fiber/_apis/git/repositories",
            &[("api-version", "7.2-preview.2")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["count"], 1);
    assert_eq!(body["value"][0]["defaultBranch"], "refs/heads/main");
    let (status, _, body) = f
        .call(
            Method::GET,
            &format!("{}/pullRequests", f.repo_path()),
            &[
                ("api-version", "7.2-preview.2"),
                ("searchCriteria.status", "active"),
                ("$top", "10"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"][0]["pullRequestId"], 7);
    assert_eq!(f.server.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn requests_off_the_table_are_violations() {
    let f = Fixture::new().await;
    let v = "7.2-preview.2";
    // Wrong api-version.
    f.call(
        Method::GET,
        "/Fiber/_apis/git/repositories",
        &[("api-version", "7.1")],
        None,
    )
    .await;
    // No api-version.
    f.call(Method::GET, "/Fiber/_apis/git/repositories", &[], None)
        .await;
    // A path no route has.
    f.call(
        Method::GET,
        "/Fiber/_apis/git/repositories/x/nothing",
        &[("api-version", v)],
        None,
    )
    .await;
    // A method the route does not have.
    f.call(
        Method::DELETE,
        &format!("{}/pullRequests/7", f.repo_path()),
        &[("api-version", v)],
        None,
    )
    .await;
    // An unknown query parameter.
    f.call(
        Method::GET,
        &format!("{}/pullRequests", f.repo_path()),
        &[("api-version", v), ("state", "open")],
        None,
    )
    .await;
    // A body where the route takes none, and none where it takes one.
    f.call(
        Method::GET,
        "/Fiber/_apis/git/repositories",
        &[("api-version", v)],
        Some(json!({})),
    )
    .await;
    f.call(
        Method::POST,
        &format!("{}/pullRequests/7/threads", f.repo_path()),
        &[("api-version", "7.2-preview.1")],
        None,
    )
    .await;
    // Without a credential.
    f.call_as(
        None,
        Method::GET,
        "/Fiber/_apis/git/repositories",
        &[("api-version", v)],
        None,
    )
    .await;
    let violations = f.server.violations();
    let expect = [
        "api-version 7.1 is not the table's",
        "no api-version",
        "no route of the table matches",
        "DELETE is not a method",
        "query parameter \"state\"",
        "takes no body",
        "takes a JSON body",
        "sent no credential",
    ];
    assert_eq!(violations.len(), expect.len(), "{violations:#?}");
    for (v, e) in violations.iter().zip(expect) {
        assert!(v.contains(e), "{v} should say {e}");
    }
}

#[tokio::test]
async fn credentials_are_checked() {
    let f = Fixture::new().await;
    let q = [("api-version", "7.2-preview.2")];
    let path = "/Fiber/_apis/git/repositories";
    let (status, headers, _) = f.call_as(None, Method::GET, path, &q, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key("www-authenticate"));
    let (status, _, _) = f
        .call_as(Some("not-a-token"), Method::GET, path, &q, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    f.server.revoke_pat(&f.pat);
    let (status, _, body) = f.call(Method::GET, path, &q, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].as_str().unwrap().starts_with("TF400813"));
    let auths: Vec<Auth> = f.server.requests().into_iter().map(|r| r.auth).collect();
    assert_eq!(auths, vec![Auth::None, Auth::Invalid, Auth::Invalid]);
}

#[tokio::test]
async fn faults_are_served_then_consumed() {
    let f = Fixture::new().await;
    let q = [("api-version", "7.2-preview.2")];
    let path = "/Fiber/_apis/git/repositories";
    f.server.inject(Fault {
        path_contains: "/repositories".into(),
        kind: FaultKind::TooManyRequests {
            retry_after_secs: 3,
        },
        times: 1,
    });
    f.server.inject(Fault {
        path_contains: "/repositories".into(),
        kind: FaultKind::ServerError { status: 503 },
        times: 1,
    });
    f.server.inject(Fault {
        path_contains: "/repositories".into(),
        kind: FaultKind::SignInPage,
        times: 1,
    });
    let (status, headers, _) = f.call(Method::GET, path, &q, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "3");
    assert!(headers.contains_key("x-ratelimit-reset"));
    let (status, _, _) = f.call(Method::GET, path, &q, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, body) = f.call(Method::GET, path, &q, None).await;
    assert_eq!(status, StatusCode::NON_AUTHORITATIVE_INFORMATION);
    assert!(body.as_str().unwrap().contains("Sign In"));
    let (status, _, _) = f.call(Method::GET, path, &q, None).await;
    assert_eq!(status, StatusCode::OK);
    f.server.inject(Fault {
        path_contains: "/repositories".into(),
        kind: FaultKind::Delay(Duration::from_millis(50)),
        times: 1,
    });
    let started = std::time::Instant::now();
    let (status, _, _) = f.call(Method::GET, path, &q, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[tokio::test]
async fn pull_requests_page_with_top_and_skip_newest_first() {
    let f = Fixture::new().await;
    for id in 8..=12 {
        f.server.add_pull(
            &f.repo,
            TestPullRequest {
                id,
                title: format!("PR {id}"),
                source_branch: format!("b{id}"),
                target_branch: "main".into(),
                head: "a".repeat(40),
                base: "b".repeat(40),
                merge_base: "c".repeat(40),
                author: "alice@contoso.com".into(),
                ..Default::default()
            },
        );
    }
    f.server.set_pull_status(&f.repo, 10, "abandoned");
    let page = |skip: &'static str| {
        let f = &f;
        async move {
            let (_, _, body) = f
                .call(
                    Method::GET,
                    &format!("{}/pullRequests", f.repo_path()),
                    &[
                        ("api-version", "7.2-preview.2"),
                        ("searchCriteria.status", "active"),
                        ("$top", "2"),
                        ("$skip", skip),
                    ],
                    None,
                )
                .await;
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["pullRequestId"].as_u64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page("0").await, vec![12, 11]);
    assert_eq!(page("2").await, vec![9, 8]);
    assert_eq!(page("4").await, vec![7]);
    assert_eq!(f.server.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn threads_are_created_resolved_answered_and_edited_by_their_author_only() {
    let f = Fixture::new().await;
    let threads = format!("{}/pullRequests/7/threads", f.repo_path());
    let v = [("api-version", "7.2-preview.1")];
    let (status, _, thread) = f
        .call(
            Method::POST,
            &threads,
            &v,
            Some(json!({
                "comments": [{"parentCommentId": 0, "content": "hello", "commentType": "text"}],
                "status": "active",
                "threadContext": {
                    "filePath": "/src/app.rs",
                    "rightFileStart": {"line": 3, "offset": 1},
                    "rightFileEnd": {"line": 3, "offset": 1},
                },
                "pullRequestThreadContext": {
                    "changeTrackingId": 1,
                    "iterationContext": {"firstComparingIteration": 1, "secondComparingIteration": 1},
                },
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{thread}");
    let id = thread["id"].as_u64().unwrap();
    assert_eq!(thread["comments"][0]["id"], 1);
    assert_eq!(thread["comments"][0]["author"]["uniqueName"], BOT);
    // An iteration the pull request does not have.
    let (status, _, _) = f
        .call(
            Method::POST,
            &threads,
            &v,
            Some(json!({
                "comments": [{"content": "x"}],
                "threadContext": {"filePath": "/src/app.rs", "rightFileStart": {"line": 1, "offset": 1}},
                "pullRequestThreadContext": {"iterationContext": {"firstComparingIteration": 1, "secondComparingIteration": 9}},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = f
        .call(
            Method::PATCH,
            &format!("{threads}/{id}"),
            &v,
            Some(json!({"status": "fixed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, reply) = f
        .call(
            Method::POST,
            &format!("{threads}/{id}/comments"),
            &v,
            Some(json!({"content": "answer", "parentCommentId": 1, "commentType": "text"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["id"], 2);
    let other = f
        .server
        .add_thread(&f.repo, 7, "alice@contoso.com", "hi", None, "active");
    let (status, _, _) = f
        .call(
            Method::PATCH,
            &format!("{threads}/{other}/comments/1"),
            &v,
            Some(json!({"content": "edited"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = f
        .call(Method::GET, &format!("{threads}/999999"), &v, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let held = f.server.threads(&f.repo, 7);
    assert_eq!(held[0].status, "fixed");
    assert_eq!(held[0].file_path.as_deref(), Some("/src/app.rs"));
    assert_eq!(held[0].line, Some(3));
    assert_eq!(held[0].comments.len(), 2);
    assert_eq!(f.server.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn subscriptions_hide_the_password_they_were_given() {
    let f = Fixture::new().await;
    let project = f.server.project_id();
    let (status, _, sub) = f
        .call(
            Method::POST,
            "/_apis/hooks/subscriptions",
            &[("api-version", "7.2-preview.1")],
            Some(json!({
                "publisherId": "tfs",
                "eventType": "git.pullrequest.created",
                "resourceVersion": "1.0",
                "consumerId": "webHooks",
                "consumerActionId": "httpRequest",
                "publisherInputs": {"projectId": project, "repository": f.repo},
                "consumerInputs": {"url": "https://picket.example/hooks", "basicAuthUsername": "picket", "basicAuthPassword": "s3cret"},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sub}");
    assert_eq!(sub["consumerInputs"]["basicAuthPassword"], "********");
    let held = f.server.subscriptions();
    assert_eq!(held[0].consumer_inputs["basicAuthPassword"], "s3cret");
    let (_, _, listed) = f
        .call(
            Method::GET,
            "/_apis/hooks/subscriptions",
            &[
                ("api-version", "7.2-preview.1"),
                ("publisherId", "tfs"),
                ("eventType", "git.pullrequest.updated"),
            ],
            None,
        )
        .await;
    assert_eq!(listed["count"], 0);
    assert_eq!(f.server.violations(), Vec::<String>::new());
}
