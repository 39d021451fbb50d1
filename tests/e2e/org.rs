//! The caller's org: read it, change its settings within bounds.

use picket_tests::TestApp;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn org_settings_read_and_change(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let org = admin.get("/api/v1/org").await.expect(200);
    assert_eq!(org["slug"], "a");
    assert_eq!(org["max_concurrent_scans"], 4);
    assert_eq!(org["pr_scan_timeout_secs"], 600);
    assert_eq!(org["draft_feedback"], "full");

    let changed = admin
        .patch(
            "/api/v1/org",
            json!({"name": "Acme", "max_concurrent_scans": 1000, "pr_scan_timeout_secs": 60}),
        )
        .await
        .expect(200);
    assert_eq!(changed["name"], "Acme");
    assert_eq!(changed["max_concurrent_scans"], 1000);
    assert_eq!(changed["pr_scan_timeout_secs"], 60);
    // Omitted fields stay.
    let again = admin
        .patch("/api/v1/org", json!({"pr_scan_timeout_secs": 3600}))
        .await
        .expect(200);
    assert_eq!(again["name"], "Acme");
    assert_eq!(again["pr_scan_timeout_secs"], 3600);
    let quiet = admin
        .patch("/api/v1/org", json!({"draft_feedback": "check_only"}))
        .await
        .expect(200);
    assert_eq!(quiet["draft_feedback"], "check_only");
    let again = admin
        .patch("/api/v1/org", json!({"draft_feedback": "full"}))
        .await
        .expect(200);
    assert_eq!(again["draft_feedback"], "full");

    for (body, field) in [
        (json!({"max_concurrent_scans": 0}), "max_concurrent_scans"),
        (
            json!({"max_concurrent_scans": 1001}),
            "max_concurrent_scans",
        ),
        (json!({"pr_scan_timeout_secs": 59}), "pr_scan_timeout_secs"),
        (
            json!({"pr_scan_timeout_secs": 3601}),
            "pr_scan_timeout_secs",
        ),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"slug": "b"}), "slug"),
        (json!({"draft_feedback": "quiet"}), "draft_feedback"),
        (json!({"draft_feedback": true}), "draft_feedback"),
        (
            json!({"max_concurrent_scans": "many"}),
            "max_concurrent_scans",
        ),
    ] {
        let resp = admin.patch("/api/v1/org", body.clone()).await;
        resp.problem(422, "invalid_body");
        assert_eq!(resp.error_fields(), [field], "{body}");
    }
    let unchanged = admin.get("/api/v1/org").await.expect(200);
    assert_eq!(unchanged, again);
}
