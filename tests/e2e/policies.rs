//! Policies: create, replace atomically, read, delete, and the org's effective modes.

use picket_tests::TestApp;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn policies_replace_and_merge(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let created = admin
        .put(
            "/api/v1/policies/baseline",
            json!({"rules": {"py.sqli": "comment", "py.eval": "monitor", "js.xss": "block"}}),
        )
        .await
        .expect(201);
    assert_eq!(created["name"], "baseline");
    assert_eq!(created["rules"]["js.xss"], "block");

    // PUT replaces the whole map: js.xss is gone.
    let replaced = admin
        .put(
            "/api/v1/policies/baseline",
            json!({"rules": {"py.sqli": "comment", "py.eval": "monitor"}}),
        )
        .await
        .expect(200);
    assert_eq!(
        replaced["rules"],
        json!({"py.eval": "monitor", "py.sqli": "comment"})
    );
    assert_eq!(app.count("policy_rules").await, 2);

    admin
        .put(
            "/api/v1/policies/Strict%20team",
            json!({"rules": {"py.sqli": "block", "py.eval": "comment", "go.ssrf": "monitor"}}),
        )
        .await
        .expect(201);
    let one = admin
        .get("/api/v1/policies/Strict%20team")
        .await
        .expect(200);
    assert_eq!(one["name"], "Strict team");
    let list = admin.get("/api/v1/policies").await.expect(200);
    let names: Vec<&str> = list["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Strict team", "baseline"]);

    // Strongest mode wins.
    let eff = admin.get("/api/v1/org/effective-policy").await.expect(200);
    assert_eq!(
        eff["rules"],
        json!({"go.ssrf": "monitor", "py.eval": "comment", "py.sqli": "block"})
    );
    assert_eq!(eff["policies"], json!(["Strict team", "baseline"]));

    admin
        .delete("/api/v1/policies/Strict%20team")
        .await
        .expect(204);
    admin
        .get("/api/v1/policies/Strict%20team")
        .await
        .problem(404, "not_found");
    admin
        .delete("/api/v1/policies/Strict%20team")
        .await
        .problem(404, "not_found");
    let eff = admin.get("/api/v1/org/effective-policy").await.expect(200);
    assert_eq!(eff["rules"]["py.sqli"], "comment");
    // An empty map is a valid (empty) policy.
    let empty = admin
        .put("/api/v1/policies/baseline", json!({"rules": {}}))
        .await
        .expect(200);
    assert_eq!(empty["rules"], json!({}));
    assert_eq!(app.count("policy_rules").await, 0);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn policy_input_is_checked(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    admin
        .put("/api/v1/policies/p", json!({"rules": {"keep.me": "block"}}))
        .await
        .expect(201);
    let before = app.counts().await;
    let resp = admin
        .put("/api/v1/policies/p", json!({"rules": {"r": "warn"}}))
        .await;
    resp.problem(422, "invalid_body");
    assert_eq!(resp.error_fields(), ["rules.r"]);
    let resp = admin
        .put(
            "/api/v1/policies/p",
            json!({"rules": {"bad rule": "block"}}),
        )
        .await;
    resp.problem(422, "invalid_body");
    assert!(
        resp.error_fields()[0].starts_with("rules"),
        "{:?}",
        resp.error_fields()
    );
    let resp = admin.put("/api/v1/policies/p", json!({"rule": {}})).await;
    assert_eq!(resp.error_fields(), ["rule"]);
    for name in ["-leading", "has%2Fslash", &"x".repeat(101)] {
        let resp = admin
            .put(&format!("/api/v1/policies/{name}"), json!({"rules": {}}))
            .await;
        resp.problem(400, "invalid_path");
        assert_eq!(resp.error_fields(), ["name"]);
    }
    assert_eq!(app.counts().await, before);
    assert_eq!(
        admin.get("/api/v1/policies/p").await.expect(200)["rules"]["keep.me"],
        "block"
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_patch_changes_only_the_rules_it_names_of_a_policy_that_exists(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    // No such policy: 404, and none is created (a mistyped name must not add modes).
    admin
        .patch(
            "/api/v1/policies/defualt",
            json!({"rules": {"r.one": "block"}}),
        )
        .await
        .problem(404, "not_found");
    assert_eq!(app.count("policies").await, 0);
    admin
        .put(
            "/api/v1/policies/default",
            json!({"rules": {"r.one": "comment", "r.two": "block"}}),
        )
        .await
        .expect(201);
    let changed = admin
        .patch(
            "/api/v1/policies/default",
            json!({"rules": {"r.one": "block", "r.two": null, "r.three": "monitor"}}),
        )
        .await
        .expect(200);
    assert_eq!(
        changed["rules"],
        json!({"r.one": "block", "r.three": "monitor"})
    );
    // Deleted, it is gone for a patch too.
    admin.delete("/api/v1/policies/default").await.expect(204);
    admin
        .patch("/api/v1/policies/default", json!({"rules": {}}))
        .await
        .problem(404, "not_found");
    assert_eq!(app.count("policies").await, 0);
}
