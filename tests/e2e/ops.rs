//! Health, readiness, metrics, the OpenAPI document, and the problems of unknown routes.

use picket_api::ApiConfig;
use picket_tests::TestApp;
use reqwest::Method;
use sqlx::PgPool;
use std::time::Duration;

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn health_readiness_and_openapi(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let anon = app.anonymous();
    assert_eq!(anon.get("/healthz").await.expect(200)["status"], "ok");
    assert_eq!(anon.get("/readyz").await.expect(200)["status"], "ready");

    let doc = anon.get("/api/v1/openapi.json").await.expect(200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["paths"]["/api/v1/projects/{id}"]["patch"].is_object());
    // The served document is the one the library builds.
    let built = serde_json::to_value(picket_api::openapi()).unwrap();
    assert_eq!(doc["paths"], built["paths"]);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn readiness_fails_when_the_database_is_gone(pool: PgPool) {
    let app = TestApp::start(pool.clone()).await;
    pool.close().await;
    app.anonymous()
        .get("/readyz")
        .await
        .problem(503, "not_ready");
    assert_eq!(app.anonymous().get("/healthz").await.status, 200);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn metrics_count_requests_by_route_and_queue_depth(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let (_, p1) = admin.seed_project("acme/one").await;
    admin.seed_project("acme/two").await;
    let id = p1["id"].as_str().unwrap();
    admin
        .get(&format!("/api/v1/projects/{id}"))
        .await
        .expect(200);
    admin.get("/api/v1/nope").await.problem(404, "not_found");

    let resp = app.anonymous().get("/metrics").await;
    assert_eq!(resp.status, 200);
    let ct = resp.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = &resp.text;
    // Route templates, not raw paths: one series however many projects are read.
    assert!(
        text.contains(r#"picket_http_requests_total{method="GET",route="/api/v1/projects/{id}",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("picket_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    // Two initial full scans wait in the queue; every other combination reads 0.
    assert!(
        text.contains(r#"picket_scans{state="queued",kind="full"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"picket_scans{state="running",kind="diff"} 0"#),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn unknown_routes_and_methods_are_problems(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    admin
        .get("/api/v1/does-not-exist")
        .await
        .problem(404, "not_found");
    admin
        .send(Method::PUT, "/api/v1/org", None)
        .await
        .problem(405, "method_not_allowed");
    // `effective` stays reserved (the table's CHECK), and the merged view cannot be written.
    admin
        .put(
            "/api/v1/policies/effective",
            serde_json::json!({"rules": {}}),
        )
        .await
        .problem(400, "invalid_path");
    admin
        .send(Method::PUT, "/api/v1/org/effective-policy", None)
        .await
        .problem(405, "method_not_allowed");
    let resp = admin.get("/healthz").await;
    assert!(resp.headers.contains_key("x-request-id"));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn slow_requests_time_out_as_problems(pool: PgPool) {
    let cfg = ApiConfig {
        request_timeout: Duration::from_millis(300),
        ..ApiConfig::default()
    };
    let app = TestApp::start_with(pool, cfg).await;
    let before = app.counts().await;
    // The insert waits on a lock another transaction holds, so the request is still in the
    // database when its time is up (a zero timeout raced a fast local database).
    let mut locker = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE vcs_connections IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    app.admin()
        .post(
            "/api/v1/connections",
            serde_json::json!({"provider": "git", "name": "x"}),
        )
        .await
        .problem(503, "timeout");
    locker.rollback().await.unwrap();
    // The abandoned transaction never committed.
    assert_eq!(app.counts().await, before);
}
