//! Findings: written with `findings::ingest` (the worker's results upload does the same), read
//! through the API with every filter and the cursor.

use picket_core::protocol::{RedactedSecret, ReportedFinding, VulnerableDependency};
use picket_core::{Fingerprint, OrgId, Product, ProjectId, RuleId, ScanId, ScanKind, Severity};
use picket_db::findings::{self, IngestSummary, Reported, ScanTarget};
use picket_db::DbError;
use picket_tests::{id_of, TestApp};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

fn finding(
    rule: &str,
    path: &str,
    line: u32,
    severity: Severity,
    product: Product,
) -> ReportedFinding {
    let rule: RuleId = rule.parse().unwrap();
    ReportedFinding {
        product,
        fingerprint: Fingerprint::compute(&rule, path, &format!("line {line}"), 0),
        rule_id: rule,
        path: path.to_owned(),
        start_line: line,
        end_line: line + 1,
        severity,
        message: format!("{path}:{line}"),
        new_in_pr: false,
        secret: (product == Product::Secrets).then(|| RedactedSecret {
            redacted: "AKIA…XY".to_owned(),
            sha256: "ab".repeat(32),
        }),
        suppressed: None,
        matched_lines: Vec::new(),
        dependency: (product == Product::SupplyChain).then(|| VulnerableDependency {
            ecosystem: picket_core::Ecosystem::Npm,
            package: "lodash".into(),
            versions: vec!["4.17.20".into()],
            advisories: vec!["GHSA-35jh-r3h4-6jhm".into()],
            aliases: vec!["CVE-2021-23337".into(), "GHSA-35jh-r3h4-6jhm".into()],
            fixed: vec!["4.17.21".into()],
            direct: Some(false),
            dev: Some(false),
            severity_source: Some("cvss_v3".into()),
            summary: Some("Command Injection in lodash".into()),
        }),
    }
}

/// Records `batch` as full-scan findings of `git_ref` reported by `scan`.
async fn ingest(
    app: &TestApp,
    org: OrgId,
    project: ProjectId,
    scan: ScanId,
    git_ref: &str,
    batch: &[ReportedFinding],
) -> Result<IngestSummary, DbError> {
    let mut conn = app.pool.acquire().await.unwrap();
    let target = ScanTarget {
        org_id: org,
        project_id: project,
        scan_id: scan,
        kind: ScanKind::Full,
        git_ref: git_ref.to_owned(),
    };
    let reported = Reported {
        findings: batch,
        fixed_in_pr: &[],
        rules_run: &[],
        deleted_paths: &[],
        unread_paths: &[],
    };
    findings::ingest(&mut conn, &target, reported).await
}

fn paths(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn findings_filter_and_page(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let (_, project) = admin.seed_project("acme/api").await;
    let pid = ProjectId(id_of(&project).parse().unwrap());
    let scan = ScanId(
        project["last_scan"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    use Product::*;
    use Severity::*;
    let main = vec![
        finding("py.sqli", "src/db.py", 10, Critical, Code),
        finding("py.sqli", "src/api.py", 20, High, Code),
        finding("py.eval", "tools/x.py", 5, Medium, Code),
        finding("secret.aws", "src/conf.py", 1, High, Secrets),
        finding("dep.lodash", "package-lock.json", 3, Low, SupplyChain),
    ];
    let release = vec![finding("py.eval", "src/old.py", 7, Info, Code)];
    let written = ingest(&app, app.org_id, pid, scan, "main", &main)
        .await
        .unwrap();
    assert_eq!((written.stored, written.new), (5, 5));
    let written = ingest(&app, app.org_id, pid, scan, "release", &release)
        .await
        .unwrap();
    assert_eq!((written.stored, written.new), (1, 1));
    sqlx::query(
        "UPDATE findings SET status = 'ignored', triage_reason = 'fp' WHERE path = 'tools/x.py'",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    let base = format!("/api/v1/projects/{pid}/findings");
    let all = admin.get(&base).await.expect(200);
    // Most severe first; ties newest first.
    assert_eq!(
        paths(&all),
        [
            "src/db.py:10",
            "src/conf.py:1",
            "src/api.py:20",
            "tools/x.py:5",
            "package-lock.json:3",
            "src/old.py:7"
        ]
    );
    let f = &all["items"][0];
    assert_eq!(
        (
            f["rule_id"].as_str(),
            f["severity"].as_str(),
            f["status"].as_str()
        ),
        (Some("py.sqli"), Some("critical"), Some("open"))
    );
    assert_eq!(f["first_seen_scan_id"], scan.0.to_string());
    assert_eq!(f["fingerprint"].as_str().unwrap().len(), 64);
    // A secrets finding shows its redacted form, never a hash; others show no secret.
    let secret = &all["items"][1];
    assert_eq!(secret["secret_redacted"], "AKIA…XY");
    assert!(!all.to_string().contains(&"ab".repeat(32)));
    assert!(f["secret_redacted"].is_null());

    for (query, expected) in [
        (
            "severity=high",
            vec!["src/db.py:10", "src/conf.py:1", "src/api.py:20"],
        ),
        ("status=ignored", vec!["tools/x.py:5"]),
        ("product=supply_chain", vec!["package-lock.json:3"]),
        ("rule_id=py.eval", vec!["tools/x.py:5", "src/old.py:7"]),
        (
            "path=src/",
            vec![
                "src/db.py:10",
                "src/conf.py:1",
                "src/api.py:20",
                "src/old.py:7",
            ],
        ),
        ("git_ref=release", vec!["src/old.py:7"]),
        (
            "path=src/&severity=high&product=code&status=open&git_ref=main",
            vec!["src/db.py:10", "src/api.py:20"],
        ),
        ("path=%25", vec![]),
    ] {
        let page = admin.get(&format!("{base}?{query}")).await.expect(200);
        assert_eq!(paths(&page), expected, "{query}");
    }

    // A supply-chain finding shows its dependency and its advisory's page; others show none.
    let page = admin
        .get(&format!("{base}?product=supply_chain"))
        .await
        .expect(200);
    let dep = &page["items"][0];
    assert_eq!(dep["dependency"]["package"], "lodash");
    assert_eq!(dep["dependency"]["fixed"][0], "4.17.21");
    assert_eq!(dep["dependency"]["direct"], false);
    assert_eq!(
        dep["advisory_url"],
        "https://osv.dev/vulnerability/GHSA-35jh-r3h4-6jhm"
    );
    let page = admin.get(&format!("{base}?product=code")).await.expect(200);
    assert!(page["items"][0]["dependency"].is_null());

    // Cursor pagination walks the same order.
    let mut seen = Vec::new();
    let mut path = format!("{base}?limit=4");
    loop {
        let page = admin.get(&path).await.expect(200);
        seen.extend(paths(&page));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("{base}?limit=4&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, paths(&all));

    for (query, field) in [
        ("severity=urgent", "severity"),
        ("status=closed", "status"),
        ("product=sast", "product"),
        ("limit=-1", "limit"),
    ] {
        let resp = admin.get(&format!("{base}?{query}")).await;
        resp.problem(400, "invalid_query");
        assert_eq!(resp.error_fields(), [field], "{query}");
    }
    admin
        .get(&format!("/api/v1/projects/{}/findings", Uuid::new_v4()))
        .await
        .problem(404, "not_found");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn ingest_upserts_by_fingerprint(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let (_, project) = admin.seed_project("acme/api").await;
    let pid = ProjectId(id_of(&project).parse().unwrap());
    let first = ScanId(
        project["last_scan"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    let a = finding("r.a", "a.py", 1, Severity::Low, Product::Code);
    let b = finding("r.b", "b.py", 2, Severity::Low, Product::Code);
    ingest(
        &app,
        app.org_id,
        pid,
        first,
        "main",
        &[a.clone(), b.clone()],
    )
    .await
    .unwrap();
    sqlx::query("UPDATE findings SET status = 'ignored', triage_reason = 'fp' WHERE path = 'a.py'")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE findings SET status = 'fixed' WHERE path = 'b.py'")
        .execute(&app.pool)
        .await
        .unwrap();

    // A later scan sees both again, one moved and re-rated.
    sqlx::query("UPDATE scans SET state = 'cancelled', finished_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    let second = admin
        .post("/api/v1/scans", serde_json::json!({"project_ids": [pid.0]}))
        .await
        .expect(200);
    let second = ScanId(second["scans"][0]["id"].as_str().unwrap().parse().unwrap());
    let mut moved = a.clone();
    moved.start_line = 40;
    moved.end_line = 41;
    moved.severity = Severity::High;
    ingest(&app, app.org_id, pid, second, "main", &[moved, b.clone()])
        .await
        .unwrap();

    let rows: Vec<(String, i32, String, String, Uuid, Uuid)> = sqlx::query_as(
        "SELECT path, start_line, severity::text, status::text, first_seen_scan_id, last_seen_scan_id FROM findings ORDER BY path",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "same fingerprints, same rows");
    assert_eq!(
        (rows[0].1, rows[0].2.as_str(), rows[0].3.as_str()),
        (40, "high", "ignored"),
        "triage sticks"
    );
    assert_eq!(rows[1].3, "open", "seen again: open again");
    assert_eq!((rows[0].4, rows[0].5), (first.0, second.0));

    // Refused: a scan of another project, another org, or a fingerprint twice in one batch.
    let (_, other_project) = admin.seed_project("acme/other").await;
    let other_pid = ProjectId(id_of(&other_project).parse().unwrap());
    let err = ingest(
        &app,
        app.org_id,
        other_pid,
        second,
        "main",
        std::slice::from_ref(&a),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::NotFound), "{err:?}");
    let b_org = app.org("b").await;
    let err = ingest(
        &app,
        b_org.id,
        pid,
        second,
        "main",
        std::slice::from_ref(&a),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::NotFound), "{err:?}");
    let err = ingest(&app, app.org_id, pid, second, "main", &[a.clone(), a])
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Invalid { .. }), "{err:?}");
    assert_eq!(app.count("findings").await, 2);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn bulk_triage_by_ids_or_filter_keeps_a_history_and_survives_a_new_scan(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let (_, project) = admin.seed_project("acme/api").await;
    let pid = ProjectId(id_of(&project).parse().unwrap());
    let scan = ScanId(
        project["last_scan"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    use Product::*;
    use Severity::*;
    let main = vec![
        finding("py.sqli", "src/db.py", 10, Critical, Code),
        finding("py.sqli", "tests/db_test.py", 20, High, Code),
        finding("py.sqli", "tests/api_test.py", 30, High, Code),
        finding("py.eval", "src/x.py", 5, Medium, Code),
    ];
    ingest(&app, app.org_id, pid, scan, "main", &main)
        .await
        .unwrap();
    // The same finding on a pull request's head: one decision covers both rows.
    ingest(
        &app,
        app.org_id,
        pid,
        another_scan(&app, pid).await,
        "refs/pull/3/head",
        &main[1..2],
    )
    .await
    .unwrap();

    // By filter: every open py.sqli under tests/.
    let res = admin
        .post(
            "/api/v1/findings/triage",
            serde_json::json!({
                "findings": {"matching": {"status": "open", "rule_id": "py.sqli", "path": "tests/"}},
                "decision": {"status": "ignored", "ignore_reason": "used_in_tests"},
            }),
        )
        .await
        .expect(200);
    assert_eq!(res["changed"], 3, "two findings, one of them on two refs");
    let ignored: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT path, git_ref, triage_reason FROM findings \
         WHERE status = 'ignored' AND ignore_reason = 'used_in_tests' ORDER BY 1, 2",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        ignored
            .iter()
            .map(|r| (r.0.as_str(), r.1.as_str()))
            .collect::<Vec<_>>(),
        [
            ("tests/api_test.py", "main"),
            ("tests/db_test.py", "main"),
            ("tests/db_test.py", "refs/pull/3/head")
        ]
    );
    assert!(
        ignored.iter().all(|r| r.2.is_none()),
        "no comment was given"
    );

    // By id, with a comment; an unknown id changes nothing.
    let db_py: Uuid = sqlx::query_scalar("SELECT id FROM findings WHERE path = 'src/db.py'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let res = admin
        .post(
            "/api/v1/findings/triage",
            serde_json::json!({
                "findings": {"ids": [db_py, Uuid::now_v7()]},
                "decision": {"status": "ignored", "ignore_reason": "mitigated", "reason": "WAF rule 12"},
            }),
        )
        .await
        .expect(200);
    assert_eq!(res["changed"], 1);
    let one = admin
        .post(
            &format!("/api/v1/findings/{db_py}/triage"),
            serde_json::json!({"status": "open"}),
        )
        .await
        .expect(200);
    assert_eq!(
        (one["status"].as_str(), &one["ignore_reason"]),
        (Some("open"), &Value::Null)
    );
    let history: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT from_status::text, to_status::text, ignore_reason, comment \
         FROM finding_triage_events WHERE finding_id = $1 ORDER BY id",
    )
    .bind(db_py)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        history,
        [
            (
                "open".into(),
                "ignored".into(),
                Some("mitigated".into()),
                Some("WAF rule 12".into())
            ),
            ("ignored".into(), "open".into(), None, None),
        ]
    );

    // Refusals: an ignore without any reason, a reopen with one, both targets, no target.
    for (body, field) in [
        (
            serde_json::json!({"findings": {"ids": [db_py]}, "decision": {"status": "ignored"}}),
            "decision.reason",
        ),
        (
            serde_json::json!({"findings": {"ids": [db_py]}, "decision": {"status": "open", "ignore_reason": "no_time"}}),
            "decision.ignore_reason",
        ),
        (
            serde_json::json!({"findings": {"ids": [db_py], "matching": {}}, "decision": {"status": "open"}}),
            "findings",
        ),
        (
            serde_json::json!({"findings": {}, "decision": {"status": "open"}}),
            "findings",
        ),
        (
            serde_json::json!({"findings": {"ids": []}, "decision": {"status": "open"}}),
            "findings.ids",
        ),
    ] {
        let resp = admin.post("/api/v1/findings/triage", body).await;
        resp.problem(422, "invalid_body");
        assert_eq!(resp.error_fields(), [field]);
    }

    // A new full scan that reports them again leaves the ignored ones ignored.
    ingest(
        &app,
        app.org_id,
        pid,
        another_scan(&app, pid).await,
        "main",
        &main,
    )
    .await
    .unwrap();
    let still: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM findings WHERE status = 'ignored' AND ignore_reason = 'used_in_tests'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(still, 3);
}

/// A finished full scan of `project`, to report findings under.
async fn another_scan(app: &TestApp, project: ProjectId) -> ScanId {
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO scans (id, org_id, project_id, kind, trigger, priority, state, git_ref, \
                            finished_at) \
         VALUES (gen_random_uuid(), $1, $2, 'full', 'manual', 1, 'succeeded', 'main', now()) \
         RETURNING id",
    )
    .bind(app.org_id.0)
    .bind(project.0)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    ScanId(id)
}
