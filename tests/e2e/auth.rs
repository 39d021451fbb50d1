//! Authentication (401) and roles (403): members read and run scans, admins do everything.

use picket_tests::{id_of, TestApp};
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn requests_without_a_valid_token_are_401(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let fake = format!("pkt_{}", "A".repeat(43));
    let admin_token = app.admin().token().unwrap().to_owned();
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "missing header"),
        (Some(format!("Basic {admin_token}")), "wrong scheme"),
        (Some("Bearer".to_owned()), "no token"),
        (Some("Bearer not-a-token".to_owned()), "malformed"),
        (Some(format!("Bearer {fake}")), "unknown token"),
    ];
    let http = reqwest::Client::new();
    for (header, why) in cases {
        let mut req = http.get(format!("{}/api/v1/projects", app.base));
        if let Some(h) = &header {
            req = req.header("authorization", h);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{why}");
        assert_eq!(
            resp.headers()["www-authenticate"],
            r#"Bearer realm="picket""#,
            "{why}"
        );
        assert_eq!(
            resp.headers()["content-type"],
            "application/problem+json",
            "{why}"
        );
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized", "{why}");
    }
    // The scheme is case-insensitive.
    let resp = http
        .get(format!("{}/api/v1/org", app.base))
        .header("authorization", format!("bearer {admin_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn members_cannot_administer(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let (conn, project) = admin.seed_project("acme/api").await;
    let project = id_of(&project);
    admin
        .put(
            "/api/v1/policies/default",
            json!({"rules": {"r1": "block"}}),
        )
        .await
        .expect(201);
    let token_id = admin.get("/api/v1/tokens").await.expect(200)["tokens"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let member = app.member().await;
    let before = app.counts().await;

    let admin_only: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, "/api/v1/tokens".into(), None),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            Some(json!({"name": "x", "role": "admin"})),
        ),
        (Method::DELETE, format!("/api/v1/tokens/{token_id}"), None),
        (
            Method::PATCH,
            "/api/v1/org".into(),
            Some(json!({"name": "taken over"})),
        ),
        (
            Method::POST,
            "/api/v1/connections".into(),
            Some(json!({"provider": "git", "name": "x"})),
        ),
        (Method::DELETE, format!("/api/v1/connections/{conn}"), None),
        (
            Method::POST,
            "/api/v1/projects".into(),
            Some(
                json!({"projects": [{"connection_id": conn, "provider_repo_id": "x",
                "full_name": "x/y", "clone_url": "https://x/y.git", "default_branch": "main"}]}),
            ),
        ),
        (
            Method::PATCH,
            format!("/api/v1/projects/{project}"),
            Some(json!({"full_scans_enabled": false})),
        ),
        (
            Method::PUT,
            "/api/v1/policies/default".into(),
            Some(json!({"rules": {}})),
        ),
        (Method::DELETE, "/api/v1/policies/default".into(), None),
    ];
    for (method, path, body) in admin_only {
        member
            .send(method, &path, body)
            .await
            .problem(403, "forbidden");
    }
    assert_eq!(
        app.counts().await,
        before,
        "a refused request wrote something"
    );
    // A member's malformed admin request is still 403: rights are checked before content.
    member
        .raw(
            Method::POST,
            "/api/v1/tokens",
            Some("application/json"),
            Some(b"{".to_vec()),
        )
        .await
        .problem(403, "forbidden");

    // Members read, and run scans.
    member.get("/api/v1/org").await.expect(200);
    member.get("/api/v1/projects").await.expect(200);
    member
        .get(&format!("/api/v1/projects/{project}"))
        .await
        .expect(200);
    member.get("/api/v1/connections").await.expect(200);
    member.get("/api/v1/org/effective-policy").await.expect(200);
    let queued = member
        .post("/api/v1/scans", json!({"project_ids": [project]}))
        .await
        .expect(200);
    let scan = queued["scans"][0]["id"].as_str().unwrap().to_owned();
    member
        .post(&format!("/api/v1/scans/{scan}/cancel"), json!({}))
        .await
        .expect(200);
    member
        .post(&format!("/api/v1/scans/{scan}/retry"), json!({}))
        .await
        .expect(201);
}
