//! The server against a real HTTP client (reqwest), with JWTs signed by `jsonwebtoken`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::*;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// An App JWT with the given claims, signed RS256 with `pem`.
fn jwt_with(pem: &str, claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("PEM key");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .expect("sign")
}

/// A JWT as GitHub recommends: iat 60 s in the past, exp 9 minutes ahead.
fn jwt(app: &TestApp) -> String {
    let t = now();
    jwt_with(
        &app.private_key_pem,
        json!({"iat": t - 60, "exp": t + 540, "iss": app.id}),
    )
}

struct Fixture {
    server: GitHubServer,
    app: TestApp,
    installation: u64,
    repo_a: u64,
    repo_b: u64,
    http: reqwest::Client,
}

impl Fixture {
    async fn new() -> Fixture {
        let server = GitHubServer::start().await;
        let app = server.add_app("picket-test");
        let installation = server.add_installation(app.id, "acme");
        let repo_a = server.add_repo(
            installation,
            "acme/app",
            "main",
            "http://127.0.0.1:1/app.git",
        );
        let repo_b = server.add_repo(
            installation,
            "acme/lib",
            "trunk",
            "http://127.0.0.1:1/lib.git",
        );
        server.add_pull(
            repo_a,
            TestPull {
                number: 7,
                head_sha: "a".repeat(40),
                head_ref: "feature".into(),
                base_ref: "main".into(),
                base_sha: "b".repeat(40),
                merge_base: "c".repeat(40),
                draft: false,
                from_fork: false,
                title: "Add a feature".into(),
                author: "octocat".into(),
            },
        );
        Fixture {
            server,
            app,
            installation,
            repo_a,
            repo_b,
            http: reqwest::Client::builder()
                .user_agent("picket-test-support")
                .build()
                .expect("client"),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.server.api_url()))
            .header("accept", "application/vnd.github+json");
        if let Some(auth) = auth {
            rb = rb.header("authorization", auth);
        }
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, value)
    }

    /// Every answer so far is shaped as GitHub documents it.
    fn assert_shapes(&self) {
        let v = self.server.response_violations();
        assert!(
            v.is_empty(),
            "{} answers differ from GitHub's description: {v:#?}",
            v.len()
        );
    }

    /// Mints a token through the API; returns "token <ghs_…>".
    async fn token(&self, body: Value) -> String {
        let (status, _, v) = self
            .call(
                Method::POST,
                &format!("/app/installations/{}/access_tokens", self.installation),
                Some(&format!("Bearer {}", jwt(&self.app))),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        format!("token {}", v["token"].as_str().expect("token"))
    }
}

#[tokio::test]
async fn app_jwt_is_verified_like_github() {
    let f = Fixture::new().await;
    let bearer = format!("Bearer {}", jwt(&f.app));
    let (status, headers, v) = f.call(Method::GET, "/app", Some(&bearer), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["id"], json!(f.app.id));
    assert_eq!(v["slug"], json!("picket-test"));
    assert_eq!(v["permissions"]["pull_requests"], json!("write"));
    assert_eq!(headers["x-ratelimit-resource"], "core");

    // iss as a string, and as the client id.
    let t = now();
    for iss in [json!(f.app.id.to_string()), json!(f.app.client_id)] {
        let token = jwt_with(
            &f.app.private_key_pem,
            json!({"iat": t - 30, "exp": t + 300, "iss": iss}),
        );
        let (status, _, v) = f
            .call(Method::GET, "/app", Some(&format!("Bearer {token}")), None)
            .await;
        assert_eq!(status, StatusCode::OK, "iss {iss}: {v}");
    }

    // Refused: another key, expired, too long-lived, token scheme, installation token, none.
    let other = f.server.add_app("other");
    let forged = jwt_with(
        &other.private_key_pem,
        json!({"iat": t - 30, "exp": t + 300, "iss": f.app.id}),
    );
    let expired = jwt_with(
        &f.app.private_key_pem,
        json!({"iat": t - 700, "exp": t - 100, "iss": f.app.id}),
    );
    let too_long = jwt_with(
        &f.app.private_key_pem,
        json!({"iat": t - 60, "exp": t + 600, "iss": f.app.id}),
    );
    let installation_token = f.token(json!({})).await;
    let cases = [
        (
            Some(format!("Bearer {forged}")),
            "A JSON web token could not be decoded",
        ),
        (
            Some(format!("Bearer {expired}")),
            "'Expiration time' claim ('exp') must be a numeric value",
        ),
        (Some(format!("Bearer {too_long}")), "too far in the future"),
        (Some(format!("token {}", jwt(&f.app))), "Bad credentials"),
        (
            Some(installation_token),
            "A JSON web token could not be decoded",
        ),
        (None, "You must authenticate with a JSON web token"),
    ];
    for (auth, message) in cases {
        let (status, _, v) = f
            .call(Method::GET, "/app/installations", auth.as_deref(), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}: {v}");
        assert!(
            v["message"].as_str().unwrap_or("").contains(message),
            "{auth:?}: {v}"
        );
        assert!(v["documentation_url"].is_string());
    }
    let requests = f.server.requests();
    assert_eq!(requests[0].auth, Auth::Jwt { app_id: f.app.id });
    assert!(requests
        .iter()
        .any(|r| r.auth == Auth::Invalid && r.status == 401));
    f.assert_shapes();
}

#[tokio::test]
async fn installations_list_and_lookup() {
    let f = Fixture::new().await;
    let bearer = format!("Bearer {}", jwt(&f.app));
    let (status, _, v) = f
        .call(Method::GET, "/app/installations", Some(&bearer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["id"], json!(f.installation));
    assert_eq!(v[0]["account"]["login"], json!("acme"));
    assert_eq!(v[0]["suspended_at"], Value::Null);

    f.server.suspend_installation(f.installation, true);
    let path = format!("/app/installations/{}", f.installation);
    let (_, _, v) = f.call(Method::GET, &path, Some(&bearer), None).await;
    assert!(v["suspended_at"].is_string(), "{v}");
    let (status, _, v) = f
        .call(
            Method::POST,
            &format!("{path}/access_tokens"),
            Some(&bearer),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");

    // Another App cannot see this installation.
    let other = f.server.add_app("other");
    let (status, _, _) = f
        .call(
            Method::GET,
            &path,
            Some(&format!("Bearer {}", jwt(&other))),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, v) = f
        .call(
            Method::GET,
            "/repos/acme/lib/installation",
            Some(&bearer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["id"], json!(f.installation));
    f.assert_shapes();
}

#[tokio::test]
async fn tokens_are_restricted_to_their_repositories_and_permissions() {
    let f = Fixture::new().await;
    let token = f
        .token(json!({"repository_ids": [f.repo_a], "permissions": {"contents": "read", "metadata": "read"}}))
        .await;
    let minted = f.server.minted_tokens();
    let secret = minted[0].token.clone();
    let debug = format!("{:?} {:?}", f.server.requests(), minted);
    assert!(
        debug.contains("<redacted>") && !debug.contains(&secret),
        "no token in Debug output"
    );
    assert_eq!(minted.len(), 1);
    assert_eq!(minted[0].repository_ids, Some(vec![f.repo_a]));
    assert_eq!(
        minted[0].permissions.get("contents").map(String::as_str),
        Some("read")
    );
    assert!(minted[0].expires_at > SystemTime::now() + Duration::from_secs(3500));

    let (status, _, v) = f
        .call(Method::GET, "/repos/acme/app", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["full_name"], json!("acme/app"));
    assert_eq!(v["default_branch"], json!("main"));
    assert_eq!(v["private"], json!(true));
    let (status, _, v) = f
        .call(
            Method::GET,
            &format!("/repositories/{}", f.repo_a),
            Some(&token),
            None,
        )
        .await;
    assert_eq!((status, v["id"].clone()), (StatusCode::OK, json!(f.repo_a)));

    // Compare answers the merge base the test registered.
    let basehead = format!(
        "/repos/acme/app/compare/{}...{}",
        "b".repeat(40),
        "a".repeat(40)
    );
    let (status, _, v) = f.call(Method::GET, &basehead, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["merge_base_commit"]["sha"], json!("c".repeat(40)));
    assert_eq!(v["status"], json!("diverged"));

    // The other repository is invisible; pull requests need their permission.
    let (status, _, _) = f
        .call(Method::GET, "/repos/acme/lib", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = f
        .call(
            Method::GET,
            &format!("/repositories/{}", f.repo_b),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, v) = f
        .call(Method::GET, "/repos/acme/app/pulls", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        v["message"],
        json!("Resource not accessible by integration")
    );

    // Only what the installation was granted can be asked for; repositories must be its own.
    let path = format!("/app/installations/{}/access_tokens", f.installation);
    let bearer = format!("Bearer {}", jwt(&f.app));
    for body in [
        json!({"permissions": {"administration": "write"}}),
        json!({"permissions": {"contents": "write"}}),
        json!({"repositories": ["nope"]}),
        json!({"repository_ids": [f.repo_a + 10_000]}),
    ] {
        let (status, _, v) = f
            .call(Method::POST, &path, Some(&bearer), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
    }

    // By name, and unrestricted.
    let by_name = f.token(json!({"repositories": ["lib"]})).await;
    let (status, _, _) = f
        .call(Method::GET, "/repos/acme/lib", Some(&by_name), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = f
        .call(Method::GET, "/repos/acme/app", Some(&by_name), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let all = f
        .token(json!({"repositories": [], "repository_ids": []}))
        .await;
    assert_eq!(
        f.server.minted_tokens().last().unwrap().repository_ids,
        None
    );
    let (status, _, v) = f
        .call(Method::GET, "/repos/acme/app/pulls", Some(&all), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v[0]["number"], json!(7));
    assert_eq!(v[0]["head"]["sha"], json!("a".repeat(40)));
    assert_eq!(v[0]["base"]["repo"]["full_name"], json!("acme/app"));
    assert_eq!(v[0]["user"]["login"], json!("octocat"));

    // A JWT on a repository endpoint; an expired token.
    let (status, _, _) = f
        .call(Method::GET, "/repos/acme/app", Some(&bearer), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    f.server.set_token_ttl(Duration::from_secs(0));
    let expired = f.token(json!({})).await;
    let (status, _, v) = f
        .call(Method::GET, "/repos/acme/app", Some(&expired), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["message"], json!("Bad credentials"));
    f.assert_shapes();
}

#[tokio::test]
async fn pagination_and_rate_limit_headers() {
    let f = Fixture::new().await;
    for i in 0..3 {
        f.server.add_repo(
            f.installation,
            &format!("acme/extra{i}"),
            "main",
            "http://x/",
        );
    }
    let token = f.token(json!({})).await;
    let (status, headers, v) = f
        .call(
            Method::GET,
            "/installation/repositories?per_page=2",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["total_count"], json!(5));
    assert_eq!(v["repositories"].as_array().map(Vec::len), Some(2));
    let link = headers["link"].to_str().expect("link");
    let base = f.server.api_url();
    assert!(
        link.contains(&format!(
            "<{base}/installation/repositories?per_page=2&page=2>; rel=\"next\""
        )),
        "{link}"
    );
    assert!(link.contains("page=3>; rel=\"last\""), "{link}");
    let remaining: u64 = headers["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();

    let (_, headers, v) = f
        .call(
            Method::GET,
            "/installation/repositories?per_page=2&page=3",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(v["repositories"].as_array().map(Vec::len), Some(1));
    let link = headers["link"].to_str().expect("link");
    assert!(
        link.contains("rel=\"prev\"") && !link.contains("rel=\"next\""),
        "{link}"
    );
    let after: u64 = headers["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(after, remaining - 1);
    assert_eq!(headers["x-ratelimit-limit"], "5000");
    assert_eq!(
        headers["x-ratelimit-used"].to_str().unwrap(),
        (5000 - after).to_string()
    );
    let reset: u64 = headers["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > now() && reset <= now() + 3600);

    // A real exhaustion of the primary limit.
    f.server.set_rate_limit(3);
    let fresh = f.token(json!({})).await;
    for _ in 0..3 {
        let (status, _, _) = f
            .call(Method::GET, "/repos/acme/app", Some(&fresh), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, v) = f
        .call(
            Method::POST,
            "/repos/acme/app/issues/7/comments",
            Some(&fresh),
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        f.server.issue_comments(f.repo_a, 7).is_empty(),
        "a refused request changes nothing"
    );
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("API rate limit exceeded"));
    f.assert_shapes();
}

#[tokio::test]
async fn faults_are_served_in_order() {
    let f = Fixture::new().await;
    let token = f.token(json!({})).await;
    let faults = [
        FaultKind::SecondaryRateLimit {
            retry_after_secs: 7,
        },
        FaultKind::TooManyRequests {
            retry_after_secs: 3,
        },
        FaultKind::PrimaryExhausted { reset_in_secs: 5 },
        FaultKind::ServerError { status: 502 },
        FaultKind::ServerError { status: 503 },
    ];
    for kind in faults.iter().cloned() {
        f.server.inject(Fault {
            path_contains: "/pulls".into(),
            kind,
            times: 1,
        });
    }
    // A non-matching path is unaffected.
    let (status, _, _) = f
        .call(Method::GET, "/repos/acme/app", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, h, v) = f
        .call(Method::GET, "/repos/acme/app/pulls", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(h["retry-after"], "7");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("You have exceeded a secondary rate limit"));

    let (status, h, _) = f
        .call(Method::GET, "/repos/acme/app/pulls", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "3");

    let (status, h, v) = f
        .call(Method::GET, "/repos/acme/app/pulls", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(h["x-ratelimit-remaining"], "0");
    let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!(reset >= now() + 3 && reset <= now() + 6, "{reset}");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("API rate limit exceeded"));

    let (status, _, _) = f
        .call(Method::GET, "/repos/acme/app/pulls", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let (status, _, _) = f
        .call(Method::GET, "/repos/acme/app/pulls", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, _) = f
        .call(Method::GET, "/repos/acme/app/pulls", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // A delay: a client with a shorter timeout gives up; the fault is then spent.
    f.server.inject(Fault {
        path_contains: "/repos/acme/app".into(),
        kind: FaultKind::Delay(Duration::from_millis(1500)),
        times: 1,
    });
    let client = reqwest::Client::builder()
        .user_agent("picket-test-support")
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = client
        .get(format!("{}/repos/acme/app", f.server.api_url()))
        .header("authorization", &token)
        .send()
        .await
        .expect_err("times out");
    assert!(err.is_timeout(), "{err}");
    let (status, _, _) = f
        .call(Method::GET, "/repos/acme/app", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    f.assert_shapes();
}

#[tokio::test]
async fn check_runs_collect_output_and_annotations() {
    let f = Fixture::new().await;
    let token = f.token(json!({})).await;
    let annotation = |line: u64| json!({"path": "src/a.rs", "start_line": line, "end_line": line, "annotation_level": "warning", "message": "m"});
    let (status, _, v) = f
        .call(
            Method::POST,
            "/repos/acme/app/check-runs",
            Some(&token),
            Some(
                json!({"name": "Picket", "head_sha": "a".repeat(40), "status": "in_progress",
                "output": {"title": "Scanning", "summary": "…", "annotations": [annotation(1)]}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_u64().unwrap();
    assert_eq!(v["app"]["id"], json!(f.app.id));
    let (status, _, v) = f
        .call(
            Method::PATCH,
            &format!("/repos/acme/app/check-runs/{id}"),
            Some(&token),
            Some(json!({"conclusion": "failure", "output": {"title": "2 findings", "summary": "s", "text": "t",
                "annotations": [annotation(2)]}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], json!("completed"));
    assert_eq!(v["output"]["annotations_count"], json!(2));
    let runs = f.server.check_runs(f.repo_a);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].conclusion.as_deref(), Some("failure"));
    assert_eq!(runs[0].output.title.as_deref(), Some("2 findings"));
    assert_eq!(runs[0].annotations.len(), 2);

    // More than 50 annotations at once: 422. Without checks permission: 403.
    let many: Vec<Value> = (1..=51).map(annotation).collect();
    let (status, _, _) = f
        .call(
            Method::PATCH,
            &format!("/repos/acme/app/check-runs/{id}"),
            Some(&token),
            Some(json!({"output": {"title": "t", "summary": "s", "annotations": many}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let read_only = f.token(json!({"permissions": {"contents": "read"}})).await;
    let (status, _, _) = f
        .call(
            Method::POST,
            "/repos/acme/app/check-runs",
            Some(&read_only),
            Some(json!({"name": "x", "head_sha": "a".repeat(40)})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    f.assert_shapes();
}

#[tokio::test]
async fn comments_reviews_and_line_validation() {
    let f = Fixture::new().await;
    let token = f.token(json!({})).await;
    f.server
        .set_diff_lines(f.repo_a, 7, "src/a.rs", &[10, 11, 12]);
    let head = "a".repeat(40);

    // Issue comment, then edit.
    let (status, _, v) = f
        .call(
            Method::POST,
            "/repos/acme/app/issues/7/comments",
            Some(&token),
            Some(json!({"body": "summary"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["user"]["login"], json!("picket-test[bot]"));
    assert_eq!(v["user"]["type"], json!("Bot"));
    let id = v["id"].as_u64().unwrap();
    let (status, _, _) = f
        .call(
            Method::PATCH,
            &format!("/repos/acme/app/issues/comments/{id}"),
            Some(&token),
            Some(json!({"body": "v2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A user's comment cannot be edited by the App.
    let theirs = f.server.add_issue_comment(f.repo_a, 7, "octocat", "hi");
    let (status, _, _) = f
        .call(
            Method::PATCH,
            &format!("/repos/acme/app/issues/comments/{theirs}"),
            Some(&token),
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let comments = f.server.issue_comments(f.repo_a, 7);
    assert_eq!(
        comments.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(),
        ["v2", "hi"]
    );

    // Inline comment on a diff line: accepted; off the diff: 422 like GitHub.
    let path = "/repos/acme/app/pulls/7/comments";
    let (status, _, v) = f
        .call(Method::POST, path, Some(&token),
            Some(json!({"body": "here", "commit_id": head, "path": "src/a.rs", "line": 11, "side": "RIGHT"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let top = v["id"].as_u64().unwrap();
    for (line, file) in [(13, "src/a.rs"), (11, "src/b.rs")] {
        let (status, _, v) = f
            .call(Method::POST, path, Some(&token),
                Some(json!({"body": "off", "commit_id": head, "path": file, "line": line, "side": "RIGHT"})))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    }
    let (_, _, v) = f
        .call(Method::POST, path, Some(&token),
            Some(json!({"body": "off", "commit_id": head, "path": "src/a.rs", "line": 11, "side": "LEFT"})))
        .await;
    assert_eq!(
        v["errors"][0]["message"],
        json!("pull_request_review_thread.line must be part of the diff")
    );

    // Reply joins the thread.
    let (status, _, v) = f
        .call(
            Method::POST,
            &format!("/repos/acme/app/pulls/7/comments/{top}/replies"),
            Some(&token),
            Some(json!({"body": "re"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["in_reply_to_id"], json!(top));

    // A review is all or nothing.
    let review = |line: u64| {
        json!({"commit_id": head, "event": "COMMENT", "body": "Picket found 2 issues",
            "comments": [{"path": "src/a.rs", "line": 10, "body": "one"}, {"path": "src/a.rs", "line": line, "body": "two"}]})
    };
    let (status, _, v) = f
        .call(
            Method::POST,
            "/repos/acme/app/pulls/7/reviews",
            Some(&token),
            Some(review(40)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v["errors"][0],
        json!("Pull request review thread line must be part of the diff")
    );
    assert_eq!(f.server.review_comments(f.repo_a, 7).len(), 2);
    let (status, _, v) = f
        .call(
            Method::POST,
            "/repos/acme/app/pulls/7/reviews",
            Some(&token),
            Some(review(12)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], json!("COMMENTED"));
    let comments = f.server.review_comments(f.repo_a, 7);
    assert_eq!(comments.len(), 4);
    assert_eq!(comments[1].in_reply_to, Some(top));
    assert_eq!(comments[1].thread_id, comments[0].thread_id);
    assert_ne!(comments[2].thread_id, comments[3].thread_id);
    assert_eq!(comments[3].review_id, Some(v["id"].as_u64().unwrap()));
    let (_, _, listed) = f.call(Method::GET, path, Some(&token), None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(4));
    f.assert_shapes();
}

#[tokio::test]
async fn graphql_review_threads_and_resolve() {
    let f = Fixture::new().await;
    let token = f.token(json!({})).await;
    let head = "a".repeat(40);
    let mut tops = Vec::new();
    for line in [1, 2, 3] {
        let (_, _, v) = f
            .call(Method::POST, "/repos/acme/app/pulls/7/comments", Some(&token),
                Some(json!({"body": format!("finding {line}"), "commit_id": head, "path": "a.rs", "line": line})))
            .await;
        tops.push(v["id"].as_u64().unwrap());
    }
    f.call(
        Method::POST,
        &format!("/repos/acme/app/pulls/7/comments/{}/replies", tops[0]),
        Some(&token),
        Some(json!({"body": "reply"})),
    )
    .await;

    let query = r#"query Threads($owner: String!, $name: String!, $number: Int!, $after: String) {
      repository(owner: $owner, name: $name) {
        pullRequest(number: $number) {
          reviewThreads(first: 2, after: $after) {
            nodes { id isResolved comments(first: 100) { nodes { databaseId body } } }
            pageInfo { hasNextPage endCursor }
          }
        }
      }
    }"#;
    let page = |after: Value| json!({"query": query, "variables": {"owner": "acme", "name": "app", "number": 7, "after": after}});
    let (status, headers, v) = f
        .call(
            Method::POST,
            "/graphql",
            Some(&token),
            Some(page(Value::Null)),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-ratelimit-resource"], "graphql");
    assert!(v.get("errors").is_none(), "{v}");
    let threads = &v["data"]["repository"]["pullRequest"]["reviewThreads"];
    assert_eq!(threads["nodes"].as_array().map(Vec::len), Some(2));
    assert_eq!(threads["pageInfo"]["hasNextPage"], json!(true));
    let first = &threads["nodes"][0];
    assert_eq!(first["comments"]["nodes"][0]["databaseId"], json!(tops[0]));
    assert_eq!(first["comments"]["nodes"][1]["body"], json!("reply"));
    assert_eq!(
        first.as_object().unwrap().len(),
        3,
        "only the requested fields: {first}"
    );
    let thread_id = first["id"].as_str().unwrap().to_string();

    let (_, _, v2) = f
        .call(
            Method::POST,
            "/graphql",
            Some(&token),
            Some(page(threads["pageInfo"]["endCursor"].clone())),
        )
        .await;
    let rest = &v2["data"]["repository"]["pullRequest"]["reviewThreads"];
    assert_eq!(rest["nodes"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        rest["nodes"][0]["comments"]["nodes"][0]["databaseId"],
        json!(tops[2])
    );
    assert_eq!(rest["pageInfo"]["hasNextPage"], json!(false));

    let mutation = "mutation Resolve($id: ID!) { resolveReviewThread(input: {threadId: $id}) { thread { id isResolved } } }";
    let (_, _, v) = f
        .call(
            Method::POST,
            "/graphql",
            Some(&token),
            Some(json!({"query": mutation, "variables": {"id": thread_id}})),
        )
        .await;
    assert_eq!(
        v["data"]["resolveReviewThread"]["thread"]["isResolved"],
        json!(true),
        "{v}"
    );
    let comments = f.server.review_comments(f.repo_a, 7);
    let resolved: Vec<(u64, bool)> = comments
        .iter()
        .map(|c| (c.in_reply_to.unwrap_or(c.id), c.thread_resolved))
        .collect();
    assert_eq!(
        resolved,
        [
            (tops[0], true),
            (tops[1], false),
            (tops[2], false),
            (tops[0], true)
        ]
    );

    // Errors as GitHub gives them.
    let (_, _, v) = f
        .call(
            Method::POST,
            "/graphql",
            Some(&token),
            Some(json!({"query": mutation, "variables": {"id": "PRRT_nope"}})),
        )
        .await;
    assert_eq!(v["errors"][0]["type"], json!("NOT_FOUND"), "{v}");
    let restricted = f.token(json!({"repository_ids": [f.repo_b]})).await;
    let (_, _, v) = f
        .call(
            Method::POST,
            "/graphql",
            Some(&restricted),
            Some(page(Value::Null)),
        )
        .await;
    assert_eq!(v["data"]["repository"], Value::Null);
    assert_eq!(v["errors"][0]["type"], json!("NOT_FOUND"));
    let (_, _, v) = f
        .call(
            Method::POST,
            "/graphql",
            Some(&token),
            Some(json!({"query": "{ repository(owner: \"acme\", name: \"app\") { bogus } }"})),
        )
        .await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("bogus"),
        "{v}"
    );
    let (status, _, _) = f
        .call(
            Method::POST,
            "/graphql",
            Some(&format!("Bearer {}", jwt(&f.app))),
            Some(page(Value::Null)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    f.assert_shapes();
}

#[tokio::test]
async fn validator_reports_what_github_would_refuse() {
    let f = Fixture::new().await;
    let token = f.token(json!({})).await;
    // Correct requests: no violation.
    f.call(
        Method::GET,
        "/repos/acme/app/pulls?state=open&per_page=100",
        Some(&token),
        None,
    )
    .await;
    f.call(
        Method::POST,
        "/repos/acme/app/issues/7/comments",
        Some(&token),
        Some(json!({"body": "hello"})),
    )
    .await;
    f.call(Method::POST, "/repos/acme/app/check-runs", Some(&token),
        Some(json!({"name": "Picket", "head_sha": "a".repeat(40), "status": "completed", "conclusion": "success",
            "completed_at": "2026-11-30T12:00:00Z", "output": {"title": "t", "summary": "s"}}))).await;
    f.call(
        Method::POST,
        "/graphql",
        Some(&token),
        Some(json!({"query": "{ rateLimit { remaining } }"})),
    )
    .await;
    assert_eq!(f.server.violations(), Vec::<String>::new());

    // A wrong field type.
    f.call(
        Method::POST,
        "/repos/acme/app/issues/7/comments",
        Some(&token),
        Some(json!({"body": 5})),
    )
    .await;
    let v = f.server.violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].starts_with("POST /repos/acme/app/issues/7/comments: body:"),
        "{v:#?}"
    );

    // An unknown path.
    f.call(
        Method::GET,
        "/repos/acme/app/no-such-thing",
        Some(&token),
        None,
    )
    .await;
    let v = f.server.violations();
    assert_eq!(v.len(), 2, "{v:#?}");
    assert!(
        v[1].contains("no-such-thing") && v[1].contains("no operation"),
        "{v:#?}"
    );

    // A JWT used on a repository endpoint; a token on an App endpoint.
    f.call(
        Method::GET,
        "/repos/acme/app/pulls/7",
        Some(&format!("Bearer {}", jwt(&f.app))),
        None,
    )
    .await;
    f.call(Method::GET, "/app", Some(&token), None).await;
    let v = f.server.violations();
    assert_eq!(v.len(), 4, "{v:#?}");
    assert!(
        v[2].contains("sent an App JWT where the operation takes an installation token"),
        "{v:#?}"
    );
    assert!(
        v[3].contains("sent an installation token where the operation takes an App JWT"),
        "{v:#?}"
    );
    // A credential the server refused is not reported for its kind.
    f.call(Method::GET, "/app", Some("Bearer not.a.jwt"), None)
        .await;
    assert_eq!(f.server.violations().len(), 4);

    // Unknown query parameter, bad enum, body where none is taken.
    f.call(
        Method::GET,
        "/repos/acme/app/pulls?state=merged&colour=red",
        Some(&token),
        None,
    )
    .await;
    let v = f.server.violations();
    assert_eq!(v.len(), 6, "{v:#?}");
    assert!(
        v[4].contains("state=\"merged\"") && v[5].contains("\"colour\""),
        "{v:#?}"
    );

    // The App-manifest conversion takes no credential.
    f.server.add_manifest_code("abc123", "picket-made");
    let (status, _, app) = f
        .call(
            Method::POST,
            "/app-manifests/abc123/conversions",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    assert!(app["pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let v = f.server.violations();
    assert_eq!(v.len(), 6, "{v:#?}");
    f.assert_shapes();
}

#[tokio::test]
async fn a_user_agent_is_required() {
    let f = Fixture::new().await;
    let bearer = format!("Bearer {}", jwt(&f.app));
    let resp = reqwest::Client::new()
        .get(format!("{}/app", f.server.api_url()))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let recorded = f.server.requests();
    assert!(!recorded[0].headers.contains_key("user-agent"));
    assert_eq!(
        recorded[0].headers["authorization"], "Bearer",
        "the credential is not recorded"
    );
}

#[tokio::test]
async fn every_endpoint_answers_in_githubs_shape() {
    let f = Fixture::new().await;
    f.server.add_pull(
        f.repo_a,
        TestPull {
            number: 8,
            head_sha: "d".repeat(40),
            head_ref: "patch-1".into(),
            base_ref: "main".into(),
            base_sha: "b".repeat(40),
            merge_base: "b".repeat(40),
            draft: true,
            from_fork: true,
            title: "From a fork".into(),
            author: "mallory".into(),
        },
    );
    f.server.set_pull_state(f.repo_a, 7, "closed");
    f.server.set_permission(f.repo_a, "octocat", "maintain");
    let bearer = format!("Bearer {}", jwt(&f.app));
    let token = f.token(json!({})).await;
    let get = |path: String, auth: String| {
        let f = &f;
        async move {
            let (status, _, v) = f.call(Method::GET, &path, Some(&auth), None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {v}");
            v
        }
    };
    get(
        format!("/app/installations/{}", f.installation),
        bearer.clone(),
    )
    .await;
    let v = get("/repos/acme/app/pulls/8".into(), token.clone()).await;
    assert_eq!(
        (v["draft"].clone(), v["head"]["repo"]["full_name"].clone()),
        (json!(true), json!("mallory/app"))
    );
    assert_ne!(v["head"]["repo"]["id"], v["base"]["repo"]["id"]);
    let open = get("/repos/acme/app/pulls".into(), token.clone()).await;
    assert_eq!(
        open.as_array()
            .map(|a| a.iter().map(|p| p["number"].clone()).collect::<Vec<_>>()),
        Some(vec![json!(8)])
    );
    let all = get("/repos/acme/app/pulls?state=all".into(), token.clone()).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    let by_head = get(
        "/repos/acme/app/pulls?state=all&head=mallory:patch-1".into(),
        token.clone(),
    )
    .await;
    assert_eq!(
        by_head
            .as_array()
            .map(|a| a.iter().map(|p| p["number"].clone()).collect::<Vec<_>>()),
        Some(vec![json!(8)])
    );
    let none = get(
        "/repos/acme/app/pulls?state=all&head=acme:patch-1".into(),
        token.clone(),
    )
    .await;
    assert_eq!(none, json!([]));
    let v = get(
        "/repos/acme/app/collaborators/octocat/permission".into(),
        token.clone(),
    )
    .await;
    assert_eq!(
        (v["permission"].clone(), v["role_name"].clone()),
        (json!("write"), json!("maintain"))
    );
    let v = get(
        "/repos/acme/app/collaborators/mallory/permission".into(),
        token.clone(),
    )
    .await;
    assert_eq!(v["permission"], json!("none"));

    let (_, _, run) = f
        .call(Method::POST, "/repos/acme/app/check-runs", Some(&token),
            Some(json!({"name": "Picket", "head_sha": "d".repeat(40), "external_id": "scan-1", "details_url": "https://picket.example/scans/1"})))
        .await;
    let v = get(
        format!("/repos/acme/app/check-runs/{}", run["id"]),
        token.clone(),
    )
    .await;
    assert_eq!(
        (v["status"].clone(), v["external_id"].clone()),
        (json!("queued"), json!("scan-1"))
    );

    let (_, _, c) = f
        .call(Method::POST, "/repos/acme/app/pulls/8/comments", Some(&token),
            Some(json!({"body": "b", "commit_id": "d".repeat(40), "path": "x.rs", "line": 3, "start_line": 1, "side": "RIGHT", "start_side": "RIGHT"})))
        .await;
    assert_eq!(
        (c["start_line"].clone(), c["line"].clone()),
        (json!(1), json!(3))
    );
    get(
        format!("/repos/acme/app/pulls/comments/{}", c["id"]),
        token.clone(),
    )
    .await;
    let (status, _, _) = f
        .call(
            Method::PATCH,
            &format!("/repos/acme/app/pulls/comments/{}", c["id"]),
            Some(&token),
            Some(json!({"body": "edited"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f.server.review_comments(f.repo_a, 8)[0].body, "edited");
    let (status, _, _) = f
        .call(
            Method::DELETE,
            &format!("/repos/acme/app/pulls/comments/{}", c["id"]),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(f.server.review_comments(f.repo_a, 8).is_empty());

    let (status, _, _) = f
        .call(
            Method::POST,
            "/repos/acme/app/pulls/8/reviews",
            Some(&token),
            Some(json!({"event": "COMMENT", "body": "looks fine"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let v = get("/repos/acme/app/pulls/8/reviews".into(), token.clone()).await;
    assert_eq!(v[0]["state"], json!("COMMENTED"));
    assert_eq!(
        v[0]["commit_id"],
        json!("d".repeat(40)),
        "defaults to the head"
    );
    get("/repos/acme/app/issues/8/comments".into(), token.clone()).await;

    // Renamed: the old name is gone, the id still answers.
    f.server.rename_repo(f.repo_b, "acme/lib2");
    let (status, _, _) = f
        .call(Method::GET, "/repos/acme/lib", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let v = get(format!("/repositories/{}", f.repo_b), token.clone()).await;
    assert_eq!(v["full_name"], json!("acme/lib2"));
    // Archived repositories are read-only.
    f.server.update_repo(f.repo_a, true, true, "main");
    let (status, _, v) = f
        .call(
            Method::POST,
            "/repos/acme/app/issues/8/comments",
            Some(&token),
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(f.server.violations(), Vec::<String>::new());
    f.assert_shapes();
}

#[tokio::test]
async fn webhook_deliveries_are_signed_and_shaped_like_githubs() {
    let f = Fixture::new().await;
    let mut hooks = Vec::new();
    for (hook, action) in [
        ("pull-request-opened", "opened"),
        ("pull-request-synchronize", "synchronize"),
        ("pull-request-reopened", "reopened"),
        ("pull-request-ready-for-review", "ready_for_review"),
    ] {
        hooks.push((
            hook,
            f.server
                .pull_request_payload(f.repo_a, 7, action, Some(&"e".repeat(40))),
        ));
    }
    let comment = f
        .server
        .add_issue_comment(f.repo_a, 7, "octocat", "/picket rescan");
    hooks.push((
        "issue-comment-created",
        f.server.issue_comment_payload(f.repo_a, comment, "created"),
    ));
    // A thread opened by the App, and a person's reply in it.
    let top = f.server.add_review_comment(
        f.repo_a,
        7,
        &format!("{}[bot]", f.app.slug),
        "src/a.rs",
        3,
        "<!-- picket:finding x -->",
    );
    let reply = f
        .server
        .add_review_reply(f.repo_a, 7, top, "octocat", "/fp only in tests");
    for id in [top, reply] {
        hooks.push((
            "pull-request-review-comment-created",
            f.server.review_comment_payload(f.repo_a, id, "created"),
        ));
    }
    let reply_payload = &hooks.last().unwrap().1;
    assert_eq!(reply_payload["comment"]["in_reply_to_id"], json!(top));
    assert_eq!(reply_payload["sender"]["login"], "octocat");
    assert_eq!(reply_payload["comment"]["user"]["type"], "User");
    let top_payload = &hooks[hooks.len() - 2].1;
    assert_eq!(top_payload["comment"]["user"]["type"], "Bot");
    assert!(top_payload["comment"].get("in_reply_to_id").is_none());
    for (hook, payload) in &hooks {
        let v = f.server.webhook_violations(hook, payload);
        assert!(v.is_empty(), "{hook}: {v:#?}");
    }
    let (_, synchronize) = &hooks[1];
    assert_eq!(synchronize["after"], json!("a".repeat(40)));
    assert_eq!(synchronize["installation"]["id"], json!(f.installation));
    assert_eq!(synchronize["repository"]["id"], json!(f.repo_a));
    // The validator is not vacuous.
    let mut broken = hooks[0].1.clone();
    broken["number"] = json!("seven");
    assert_eq!(
        f.server
            .webhook_violations("pull-request-opened", &broken)
            .len(),
        1
    );

    let d = f.server.webhook(&f.app, "pull_request", &hooks[0].1);
    let header = |name: &str| {
        d.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("X-GitHub-Event").as_deref(), Some("pull_request"));
    assert_eq!(
        header("X-GitHub-Hook-Installation-Target-ID"),
        Some(f.app.id.to_string())
    );
    let expected = signature_256(&f.app.webhook_secret, &d.body);
    assert_eq!(header("X-Hub-Signature-256"), Some(expected.clone()));
    assert!(expected.starts_with("sha256=") && expected.len() == 7 + 64);
    let forged =
        f.server
            .webhook_signed_with(&f.app, "pull_request", &hooks[0].1, "not-the-secret");
    assert_ne!(forged.headers, d.headers);
    // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
    assert_eq!(
        signature_256("Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}
