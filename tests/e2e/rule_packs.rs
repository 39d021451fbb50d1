//! Rule packs: an org's own Semgrep rules, accepted only once the engine has loaded them.

use picket_tests::TestApp;
use serde_json::json;
use sqlx::PgPool;

const EVAL: &str = "rules:
- id: acme.no-eval
  languages: [python]
  severity: ERROR
  message: eval runs arbitrary code
  pattern: eval(...)
- id: acme.no-exec
  languages: [generic]
  severity: WARNING
  message: exec runs arbitrary code
  pattern: exec(...)
";

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn packs_are_stored_listed_replaced_and_deleted(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let created = admin
        .put("/api/v1/rule-packs/acme", json!({"content": EVAL}))
        .await
        .expect(201);
    assert_eq!(created["rules"], json!(["acme.no-eval", "acme.no-exec"]));
    assert_eq!(created["languages"], json!(["generic", "python"]));
    assert_eq!(created["size_bytes"], EVAL.len());
    let sha = created["sha256"].as_str().unwrap().to_owned();
    assert_eq!(sha.len(), 64);

    let one = admin.get("/api/v1/rule-packs/acme").await.expect(200);
    assert_eq!(one["content"], EVAL);
    assert_eq!(one["sha256"], sha.as_str());
    let list = admin.get("/api/v1/rule-packs").await.expect(200);
    assert_eq!(list["rule_packs"].as_array().unwrap().len(), 1);
    assert!(list["rule_packs"][0].get("content").is_none());

    // A replacement is whole: acme.no-exec is gone, and its id is free for another pack.
    let only_eval = EVAL.split("- id: acme.no-exec").next().unwrap();
    let replaced = admin
        .put("/api/v1/rule-packs/acme", json!({"content": only_eval}))
        .await
        .expect(200);
    assert_eq!(replaced["rules"], json!(["acme.no-eval"]));
    assert_ne!(replaced["sha256"], sha.as_str());
    admin
        .put(
            "/api/v1/rule-packs/second",
            json!({"content": EVAL.replace("acme.no-eval", "acme.other")}),
        )
        .await
        .expect(201);
    assert_eq!(app.count("rule_pack_rules").await, 3);

    // Members read, only admins write.
    let member = app.member().await;
    member.get("/api/v1/rule-packs/acme").await.expect(200);
    member
        .put("/api/v1/rule-packs/acme", json!({"content": EVAL}))
        .await
        .problem(403, "forbidden");
    member
        .delete("/api/v1/rule-packs/acme")
        .await
        .problem(403, "forbidden");

    admin.delete("/api/v1/rule-packs/acme").await.expect(204);
    admin
        .get("/api/v1/rule-packs/acme")
        .await
        .problem(404, "not_found");
    admin
        .delete("/api/v1/rule-packs/acme")
        .await
        .problem(404, "not_found");
    assert_eq!(app.count("rule_pack_rules").await, 2);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn refused_packs_change_nothing_and_say_why(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    admin
        .put("/api/v1/rule-packs/acme", json!({"content": EVAL}))
        .await
        .expect(201);
    let before = app.counts().await;

    // The engine's own message comes back: a pattern that does not parse.
    let broken = EVAL.replace("pattern: eval(...)", "pattern: eval(");
    let resp = admin
        .put("/api/v1/rule-packs/acme", json!({"content": broken}))
        .await;
    let problem = resp.problem(422, "invalid_rule_pack");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("acme.no-eval"), "{detail}");
    assert!(detail.contains("Invalid pattern for Python"), "{detail}");
    assert!(!detail.contains("/tmp"), "temporary paths leak: {detail}");
    assert_eq!(resp.error_fields(), ["content"]);

    // A rule the engine cannot run: no pattern at all.
    let no_pattern =
        "rules:\n- id: acme.empty\n  languages: [python]\n  severity: INFO\n  message: m\n";
    let problem = admin
        .put("/api/v1/rule-packs/other", json!({"content": no_pattern}))
        .await
        .problem(422, "invalid_rule_pack");
    assert!(
        problem["detail"].as_str().unwrap().contains("pattern"),
        "{problem}"
    );

    // Picket's own checks, before the engine runs.
    for (content, says) in [
        ("rules: [", "not valid YAML"),
        ("rules: []", "non-empty `rules`"),
        (
            "rules:\n- id: picket.python.mine\n  languages: [python]\n  severity: INFO\n  message: m\n  pattern: x\n",
            "reserved",
        ),
        (
            "rules:\n- id: acme.x\n  severity: INFO\n  message: m\n  pattern: x\n",
            "no `languages`",
        ),
    ] {
        let problem = admin
            .put("/api/v1/rule-packs/other", json!({"content": content}))
            .await
            .problem(422, "invalid_rule_pack");
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{content:?}: {problem}"
        );
    }
    let too_big = format!("{EVAL}#{}\n", "x".repeat(512 * 1024));
    admin
        .put("/api/v1/rule-packs/other", json!({"content": too_big}))
        .await
        .problem(422, "invalid_rule_pack");

    // A rule id names one rule in the org.
    let problem = admin
        .put("/api/v1/rule-packs/other", json!({"content": EVAL}))
        .await
        .problem(409, "rule_id_taken");
    assert!(
        problem["detail"].as_str().unwrap().contains("\"acme\""),
        "{problem}"
    );
    admin
        .put("/api/v1/rule-packs/bad%2Fname", json!({"content": EVAL}))
        .await
        .problem(400, "invalid_path");
    admin
        .put("/api/v1/rule-packs/acme", json!({"yaml": EVAL}))
        .await
        .problem(422, "invalid_body");

    assert_eq!(app.counts().await, before);
    let kept = admin.get("/api/v1/rule-packs/acme").await.expect(200);
    assert_eq!(kept["content"], EVAL);
}
