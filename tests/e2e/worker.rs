//! The worker protocol over real HTTP: a scan claimed with `queue::claim` and given its token
//! with `queue::mint_scan_token` (as the scheduler will), then driven through
//! `/api/v1/worker/…` exactly as a worker would: spec, credential, progress, results, failure.

use picket_core::protocol::SCAN_TOKEN_PREFIX;
use picket_core::{Fingerprint, RuleId};
use picket_db::queue::{self, Claimed};
use picket_tests::{id_of, Client, TestApp};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(300);
const SPEC: &str = "/api/v1/worker/scan";
const CREDENTIAL: &str = "/api/v1/worker/scan/credential";
const PROGRESS: &str = "/api/v1/worker/scan/progress";
const RESULTS: &str = "/api/v1/worker/scan/results";
const FAILURE: &str = "/api/v1/worker/scan/failure";

/// Claims the next scan the way the scheduler does and mints its token; returns the claim and a
/// client presenting the token.
async fn claim(app: &TestApp) -> (Claimed, Client) {
    let claimed = queue::claim(&app.pool, "e2e", LEASE)
        .await
        .unwrap()
        .expect("a claimable scan");
    let token = queue::mint_scan_token(&app.pool, &claimed.lease)
        .await
        .unwrap();
    assert!(token.expose_secret().starts_with(SCAN_TOKEN_PREFIX));
    (claimed, app.client(token.expose_secret()))
}

fn fingerprint(rule: &str, path: &str, anchor: &str) -> String {
    let rule: RuleId = rule.parse().unwrap();
    Fingerprint::compute(&rule, path, anchor, 0).to_string()
}

fn finding(rule: &str, path: &str, anchor: &str) -> Value {
    json!({
        "product": "code", "rule_id": rule, "path": path, "start_line": 3, "end_line": 4,
        "severity": "high", "message": format!("{rule} at {path}"),
        "fingerprint": fingerprint(rule, path, anchor), "new_in_pr": false, "secret": null,
    })
}

fn results(attempt: i32, findings: Vec<Value>, rules: &[&str], deleted: &[&str]) -> Value {
    json!({
        "attempt": attempt, "commit_sha": "c0ffee".repeat(6) + "c0ff", "merge_base_sha": null,
        "rules_run": rules, "deleted_paths": deleted, "files_scanned": 12, "findings": findings,
        "trail": {"steps": [
            {"step": "clone", "started_at": "2026-11-30T10:00:00Z", "millis": 5,
             "figures": {"bytes_received": 1234}},
            {"step": "engine", "started_at": "2026-11-30T10:00:01Z", "millis": 40, "figures": {}},
        ], "engine": "semgrep 1.185.0 (native)"},
    })
}

/// Every row the protocol writes, as text, to search for what must never be stored.
async fn stored_text(app: &TestApp) -> String {
    sqlx::query_scalar::<_, String>(
        "SELECT concat_ws(' ',
            (SELECT string_agg(row_to_json(f)::text, ' ') FROM findings f),
            (SELECT string_agg(row_to_json(r)::text, ' ') FROM scan_results r),
            (SELECT string_agg(row_to_json(e)::text, ' ') FROM scan_events e),
            (SELECT string_agg(row_to_json(s)::text, ' ') FROM scans s))",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_worker_runs_full_scans_over_http(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    // The clone credential (what the connection stores) and a secret the worker found in the
    // code: the worker sends only the secret's redacted form and hash, never the value.
    const CLONE_TOKEN: &str = "glpat-clone-credential-canary";
    const SECRET_VALUE: &str = "AKIAQWERTYCANARY0123";
    let secret_sha = hex_sha256(SECRET_VALUE);
    let conn = id_of(
        &admin
            .connection("gl")
            .provider("gitlab")
            .credentials(json!({"token": CLONE_TOKEN, "webhook_secret": "gitlab-hook-secret-0123"}))
            .create()
            .await,
    );
    let project = admin.projects(&conn).repo("acme/api").add().await.remove(0);
    let pid = id_of(&project);
    for (name, rules) in [
        ("strict", json!({"r.sqli": "block", "r.eval": "monitor"})),
        ("team", json!({"r.eval": "comment"})),
    ] {
        admin
            .put(
                &format!("/api/v1/policies/{name}"),
                json!({ "rules": rules }),
            )
            .await
            .expect(201);
    }
    let pack = "rules:\n- id: acme.no-eval\n  languages: [python]\n  severity: ERROR\n  message: no eval\n  pattern: eval(...)\n";
    let stored = admin
        .put("/api/v1/rule-packs/acme", json!({ "content": pack }))
        .await
        .expect(201);
    let mut answers = Vec::new();

    let (claimed, worker) = claim(&app).await;
    let scan_id = claimed.scan.id.to_string();
    assert_eq!(project["last_scan"]["id"], scan_id.as_str());
    let spec = worker.get(SPEC).await;
    assert_eq!(
        spec.expect(200),
        json!({
            "scan_id": scan_id, "attempt": 1, "project_id": pid, "kind": "full",
            "full_name": "acme/api", "clone_url": "https://github.com/acme/api.git",
            "git_ref": "main", "commit_sha": null, "base_ref": null, "base_sha": null,
            "merge_base_sha": null, "pr_number": null, "products": ["code", "supply_chain", "secrets"],
            "policy": {"r.eval": "comment", "r.sqli": "block"}, "open_finding_paths": [],
            "rule_packs": [{"name": "acme", "sha256": stored["sha256"], "content": pack}],
            "path_ignores": [], "inline_suppression": true, "store_matched_lines": true,
        })
    );
    let credential = worker.get(CREDENTIAL).await.expect(200);
    assert_eq!(
        credential,
        json!({"username": "oauth2", "token": CLONE_TOKEN})
    );

    for _ in 0..2 {
        // Repeating a report is harmless.
        let resp = worker.post(PROGRESS, json!({"state": "running"})).await;
        assert_eq!(
            resp.expect(200),
            json!({"scan_id": scan_id, "attempt": 1, "state": "running"})
        );
        answers.push(resp.text);
    }
    let secret = json!({
        "product": "secrets", "rule_id": "secrets.aws-key", "path": "conf.py", "start_line": 1,
        "end_line": 1, "severity": "critical", "message": "an AWS access key is committed",
        "fingerprint": fingerprint("secrets.aws-key", "conf.py", "key = ..."), "new_in_pr": false,
        "secret": {"redacted": "AKIA…0123", "sha256": secret_sha},
    });
    let upload = results(
        1,
        vec![
            finding("r.sqli", "src/db.py", "cursor.execute(q)"),
            finding("r.eval", "tools/x.py", "eval(x)"),
            secret,
        ],
        &["r.sqli", "r.eval", "secrets.aws-key"],
        &[],
    );
    let summary = json!({
        "scan_id": scan_id, "attempt": 1, "state": "succeeded", "findings_reported": 3,
        "findings_stored": 3, "findings_new": 3, "findings_fixed": 0, "findings_removed": 0,
    });
    let resp = worker.post(RESULTS, upload.clone()).await;
    assert_eq!(resp.expect(200), summary);
    answers.push(resp.text);
    // The same upload again (its answer was lost): the same answer, nothing written.
    let before = (app.counts().await, app.count("scan_results").await);
    let resp = worker.post(RESULTS, upload.clone()).await;
    assert_eq!(resp.expect(200), summary);
    assert_eq!(
        (app.counts().await, app.count("scan_results").await),
        before
    );
    assert_eq!(before.1, 1);

    let detail = admin
        .get(&format!("/api/v1/scans/{scan_id}"))
        .await
        .expect(200);
    assert_eq!(detail["state"], "succeeded");
    assert_eq!(detail["commit_sha"], upload["commit_sha"]);
    let trail: Vec<(String, String)> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["to_state"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("claimed", "scheduler:e2e"),
        ("running", "worker"),
        ("reporting", "worker"),
        ("succeeded", "worker"),
    ]
    .iter()
    .map(|(s, a)| (s.to_string(), a.to_string()))
    .collect();
    assert_eq!(trail, expected);

    // The scan ended: its token opens nothing any more, and says no more than any bad token.
    for (method, path, body) in [
        (Method::GET, SPEC, None),
        (Method::GET, CREDENTIAL, None),
        (Method::POST, PROGRESS, Some(json!({"state": "reporting"}))),
        (
            Method::POST,
            FAILURE,
            Some(json!({"attempt": 1, "code": "x", "message": "y"})),
        ),
        (
            Method::POST,
            RESULTS,
            Some(results(1, vec![], &["r.sqli"], &[])),
        ),
    ] {
        let body = worker
            .send(method, path, body)
            .await
            .problem(401, "unauthorized");
        assert_eq!(
            body["detail"],
            "the scan token is not valid for this request"
        );
    }

    // The findings as people see them: statuses, first and last scan, the redacted secret only.
    let list_path = format!("/api/v1/projects/{pid}/findings");
    let list = admin.get(&list_path).await;
    answers.push(list.text.clone());
    let list = list.expect(200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let by_path = |list: &Value, path: &str| -> Value {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("no finding at {path}: {list}"))
            .clone()
    };
    let secret_row = by_path(&list, "conf.py");
    assert_eq!(secret_row["secret_redacted"], "AKIA…0123");
    assert_eq!(secret_row["status"], "open");
    assert_eq!(secret_row["first_seen_scan_id"], scan_id.as_str());
    assert!(by_path(&list, "src/db.py")["secret_redacted"].is_null());
    assert!(
        !list.to_string().contains(&secret_sha),
        "the hash is never shown"
    );

    // Triage: a member ignores the eval finding; a reason is required.
    let member = app.member().await;
    let eval_id = id_of(&by_path(&list, "tools/x.py"));
    let triage = format!("/api/v1/findings/{eval_id}/triage");
    let resp = member.post(&triage, json!({"status": "ignored"})).await;
    resp.problem(422, "invalid_body");
    assert_eq!(resp.error_fields(), ["reason"]);
    member
        .post(&triage, json!({"status": "open", "reason": "no"}))
        .await
        .problem(422, "invalid_body");
    member
        .post(&triage, json!({"status": "fixed"}))
        .await
        .problem(422, "invalid_body");
    let ignored = member
        .post(
            &triage,
            json!({"status": "ignored", "reason": "test helper"}),
        )
        .await
        .expect(200);
    assert_eq!(
        (&ignored["status"], &ignored["triage_reason"]),
        (&json!("ignored"), &json!("test helper"))
    );
    assert!(ignored["triaged_by"].as_str().unwrap().starts_with("api:"));
    assert!(ignored["triaged_at"].is_string());

    // The next full scan: its spec lists the open paths; db.py is fixed, conf.py was deleted,
    // the ignored eval finding stays ignored although it is reported again.
    let next = admin
        .post("/api/v1/scans", json!({"project_ids": [pid]}))
        .await
        .expect(200);
    let next_id = next["scans"][0]["id"].as_str().unwrap().to_owned();
    let (_, worker2) = claim(&app).await;
    let spec = worker2.get(SPEC).await.expect(200);
    assert_eq!(spec["scan_id"], next_id.as_str());
    assert_eq!(spec["open_finding_paths"], json!(["conf.py", "src/db.py"]));
    worker2
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);
    let resp = worker2
        .post(
            RESULTS,
            results(
                1,
                vec![finding("r.eval", "tools/x.py", "eval(x)")],
                &["r.sqli", "r.eval", "secrets.aws-key"],
                &["conf.py"],
            ),
        )
        .await;
    assert_eq!(
        resp.expect(200),
        json!({
            "scan_id": next_id, "attempt": 1, "state": "succeeded", "findings_reported": 1,
            "findings_stored": 1, "findings_new": 0, "findings_fixed": 1, "findings_removed": 1,
        })
    );
    answers.push(resp.text);
    let list = admin.get(&list_path).await.expect(200);
    let statuses: Vec<(String, String)> = ["conf.py", "src/db.py", "tools/x.py"]
        .iter()
        .map(|p| {
            let f = by_path(&list, p);
            (
                f["status"].as_str().unwrap().to_owned(),
                f["last_seen_scan_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("removed".to_owned(), scan_id.clone()),
            ("fixed".to_owned(), scan_id.clone()),
            ("ignored".to_owned(), next_id.clone()),
        ]
    );
    assert_eq!(by_path(&list, "tools/x.py")["triage_reason"], "test helper");

    // No secret value anywhere: not stored, not answered, not logged; the clone credential only
    // in its own answer, never logged or stored in the clear.
    let stored = stored_text(&app).await;
    assert!(stored.contains("AKIA…0123"));
    for text in answers.iter().chain([&stored, &app.logs()]) {
        assert!(!text.contains(SECRET_VALUE));
        assert!(!text.contains(CLONE_TOKEN));
    }
}

fn hex_sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_diff_scans_given_merge_base_reaches_the_worker_and_survives_a_rerun(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let (_, project) = admin.seed_project("acme/api").await;
    let pid = id_of(&project);
    let (head, base, merge_base) = ("a1".repeat(20), "b2".repeat(20), "c3".repeat(20));
    let asked = admin
        .post(
            &format!("/api/v1/projects/{pid}/scans"),
            json!({"kind": "diff", "git_ref": "refs/pull/7/head", "commit_sha": head,
                   "base_ref": "main", "base_sha": base, "merge_base_sha": merge_base,
                   "pr_number": 7}),
        )
        .await
        .expect(201);
    assert_eq!(asked["merge_base_sha"], merge_base.as_str());

    // The diff scan (manual) goes before the project's initial full scan.
    let (claimed, worker) = claim(&app).await;
    assert_eq!(claimed.scan.id.to_string(), id_of(&asked));
    let spec = worker.get(SPEC).await.expect(200);
    assert_eq!(spec["kind"], "diff");
    assert_eq!(spec["commit_sha"], head.as_str());
    assert_eq!(spec["base_sha"], base.as_str());
    assert_eq!(spec["merge_base_sha"], merge_base.as_str());

    // A re-run asks the same question, merge base included.
    worker
        .post(
            FAILURE,
            json!({"attempt": 1, "code": "clone_failed", "message": "gone"}),
        )
        .await
        .expect(200);
    let rerun = admin
        .post(&format!("/api/v1/scans/{}/retry", id_of(&asked)), json!({}))
        .await
        .expect(201);
    assert_eq!(rerun["merge_base_sha"], merge_base.as_str());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_failed_attempt_is_retried_and_its_token_dies(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    // No credentials on the connection: the worker clones anonymously.
    admin.seed_project("acme/api").await;
    let (claimed, first) = claim(&app).await;
    let scan_id = claimed.scan.id.to_string();
    first.get(CREDENTIAL).await.problem(404, "no_credential");
    first
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);
    // Another attempt's number is refused like a bad token.
    first
        .post(
            FAILURE,
            json!({"attempt": 2, "code": "clone_failed", "message": "x"}),
        )
        .await
        .problem(401, "unauthorized");
    first
        .post(
            FAILURE,
            json!({"attempt": 1, "code": "Clone Failed", "message": "x"}),
        )
        .await
        .problem(422, "invalid_body");
    let answer = first
        .post(
            FAILURE,
            json!({"attempt": 1, "code": "clone_failed", "message": "remote hung up\n\u{0}"}),
        )
        .await
        .expect(200);
    assert_eq!(
        answer,
        json!({"scan_id": scan_id, "attempt": 1, "state": "queued", "next_attempt": 2})
    );
    first.get(SPEC).await.problem(401, "unauthorized");
    // The message is kept, cleaned of the NUL PostgreSQL cannot store.
    let message: String = sqlx::query_scalar("SELECT error_message FROM scans WHERE id = $1")
        .bind(claimed.scan.id.0)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(message, "remote hung up\n\u{fffd}");

    // The retry waits out its backoff; skip it, then the scheduler claims attempt 2.
    sqlx::query("UPDATE scans SET run_after = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    let (claimed2, second) = claim(&app).await;
    assert_eq!(
        (claimed2.scan.id, claimed2.scan.attempt),
        (claimed.scan.id, 2)
    );
    // Attempt 1's token stays dead; attempt 2's works, for attempt 2 only.
    for resp in [
        first.get(SPEC).await,
        first.post(RESULTS, results(1, vec![], &[], &[])).await,
        second.post(RESULTS, results(1, vec![], &[], &[])).await,
    ] {
        resp.problem(401, "unauthorized");
    }
    assert_eq!(second.get(SPEC).await.expect(200)["attempt"], 2);
    second
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);
    let answer = second
        .post(
            FAILURE,
            json!({"attempt": 2, "code": "engine_crashed", "message": "semgrep exited 2"}),
        )
        .await
        .expect(200);
    assert_eq!(
        answer,
        json!({"scan_id": scan_id, "attempt": 2, "state": "failed", "next_attempt": null})
    );
    let detail = admin
        .get(&format!("/api/v1/scans/{scan_id}"))
        .await
        .expect(200);
    assert_eq!(
        (
            &detail["state"],
            &detail["error_code"],
            &detail["error_message"]
        ),
        (
            &json!("failed"),
            &json!("engine_crashed"),
            &json!("semgrep exited 2")
        )
    );
    let moves: Vec<String> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["to_state"].as_str().unwrap(),
                e["actor"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            "claimed:scheduler:e2e",
            "running:worker",
            "queued:worker",
            "claimed:scheduler:e2e",
            "running:worker",
            "failed:worker"
        ]
    );
    second.get(SPEC).await.problem(401, "unauthorized");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn only_a_live_scan_token_opens_the_worker_routes(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    admin.seed_project("acme/api").await;
    let (_, worker) = claim(&app).await;
    let unknown = app.client(&format!("{SCAN_TOKEN_PREFIX}{}", "A".repeat(43)));
    let api_token = admin.token().unwrap().to_owned();
    let routes = [
        (Method::GET, SPEC, None),
        (Method::GET, CREDENTIAL, None),
        (Method::POST, PROGRESS, Some(json!({"state": "running"}))),
        (Method::POST, RESULTS, Some(results(1, vec![], &[], &[]))),
        (
            Method::POST,
            FAILURE,
            Some(json!({"attempt": 1, "code": "x", "message": "y"})),
        ),
    ];
    let before = app.counts().await;
    for (method, path, body) in &routes {
        for client in [
            admin.clone(),
            app.member().await,
            unknown.clone(),
            app.anonymous(),
            app.client("pks_short"),
        ] {
            client
                .send(method.clone(), path, body.clone())
                .await
                .problem(401, "unauthorized");
        }
        // The API token's role is no key either, in any scheme.
        let resp = reqwest::Client::new()
            .request(method.clone(), format!("{}{path}", app.base))
            .header("authorization", format!("bearer {api_token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{method} {path}");
    }
    // The scan token opens no other route.
    for path in ["/api/v1/org", "/api/v1/projects", "/api/v1/policies"] {
        worker.get(path).await.problem(401, "unauthorized");
    }
    // Members' counts include one token each; nothing else was written.
    let after: Vec<_> = app
        .counts()
        .await
        .into_iter()
        .filter(|(t, _)| *t != "api_tokens")
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(t, _)| *t != "api_tokens")
        .collect();
    assert_eq!(after, before);
    worker.get(SPEC).await.expect(200);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn moves_follow_the_state_machine_and_a_lost_lease_is_409(pool: PgPool) {
    let app = TestApp::start(pool).await;
    app.admin().seed_project("acme/api").await;
    let (claimed, worker) = claim(&app).await;
    worker
        .post(PROGRESS, json!({"state": "reporting"}))
        .await
        .problem(409, "invalid_transition");
    worker
        .post(RESULTS, results(1, vec![], &[], &[]))
        .await
        .problem(409, "invalid_transition");
    worker
        .post(PROGRESS, json!({"state": "paused"}))
        .await
        .problem(422, "invalid_body");
    worker
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);
    worker
        .post(PROGRESS, json!({"state": "reporting"}))
        .await
        .expect(200);
    // A late `running` changes nothing.
    assert_eq!(
        worker
            .post(PROGRESS, json!({"state": "running"}))
            .await
            .expect(200)["state"],
        "reporting"
    );

    // The lease is lost between the token check and the fenced update: a competing transaction
    // holds the scan row, the request authenticates and waits on it, and the competitor takes
    // the lease and commits.
    let mut competitor = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM scans WHERE id = $1 FOR UPDATE")
        .bind(claimed.scan.id.0)
        .execute(&mut *competitor)
        .await
        .unwrap();
    let request = {
        let worker = worker.clone();
        tokio::spawn(async move {
            worker
                .post(
                    FAILURE,
                    json!({"attempt": 1, "code": "engine_crashed", "message": "x"}),
                )
                .await
        })
    };
    // Wait until the request is blocked on the row lock.
    for tries in 0.. {
        assert!(tries < 500, "the request never waited on the row lock");
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query("UPDATE scans SET lease_token = gen_random_uuid() WHERE id = $1")
        .bind(claimed.scan.id.0)
        .execute(&mut *competitor)
        .await
        .unwrap();
    competitor.commit().await.unwrap();
    request.await.unwrap().problem(409, "lease_lost");
    // With the lease gone the token is dead too.
    worker.get(SPEC).await.problem(401, "unauthorized");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn uploads_are_validated_and_may_be_large(pool: PgPool) {
    let app = TestApp::start(pool).await;
    app.admin().seed_project("acme/api").await;
    let (_, worker) = claim(&app).await;
    worker
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = finding("r.a", "a.py", "x");
        f(&mut v);
        results(1, vec![v], &["r.a"], &[])
    };
    let secret = json!({"redacted": "ab…yz", "sha256": "0".repeat(64)});
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut r = results(1, vec![], &[], &[]);
                r["commit_sha"] = json!("main");
                r
            },
            "commit_sha",
        ),
        (
            with(&|f| f["fingerprint"] = json!("not-a-fingerprint")),
            "findings[0].fingerprint",
        ),
        (
            with(&|f| f["start_line"] = json!(0)),
            "findings[0].start_line",
        ),
        (with(&|f| f["end_line"] = json!(2)), "findings[0].end_line"),
        (with(&|f| f["path"] = json!("")), "findings[0].path"),
        (
            with(&|f| f["secret"] = secret.clone()),
            "findings[0].secret",
        ),
        (
            with(&|f| f["product"] = json!("secrets")),
            "findings[0].secret",
        ),
        (
            with(&|f| {
                f["product"] = json!("secrets");
                f["secret"] = json!({"redacted": "ab…yz", "sha256": "XYZ"});
            }),
            "findings[0].secret.sha256",
        ),
        (
            with(&|f| f["secret_value"] = json!("hunter2")),
            "findings[0]",
        ),
        (
            {
                let f = finding("r.a", "a.py", "x");
                results(1, vec![f.clone(), f], &["r.a"], &[])
            },
            "findings",
        ),
    ];
    let before = app.counts().await;
    for (body, field) in cases {
        let resp = worker.post(RESULTS, body).await;
        resp.problem(422, "invalid_body");
        let fields = resp.error_fields();
        assert!(
            fields.iter().any(|f| f.starts_with(field)),
            "{field}: {fields:?}"
        );
    }
    assert_eq!(app.counts().await, before);

    // Other routes keep the general 2 MiB limit; the results upload takes much more.
    let big = "x".repeat(3 * 1024 * 1024);
    worker
        .post(PROGRESS, json!({"state": "running", "pad": big}))
        .await
        .problem(413, "body_too_large");
    let many: Vec<Value> = (0..15_000)
        .map(|i| finding("r.a", &format!("src/file_{i:05}.py"), "x"))
        .collect();
    let upload = results(1, many, &["r.a"], &[]);
    assert!(upload.to_string().len() > 5 * 1024 * 1024 / 2);
    let answer = worker.post(RESULTS, upload).await.expect(200);
    assert_eq!(answer["findings_new"], 15_000);
    let too_big = vec![b' '; picket_api::RESULTS_BODY_LIMIT_BYTES + 1];
    worker
        .raw(
            Method::POST,
            RESULTS,
            Some("application/json"),
            Some(too_big),
        )
        .await
        .problem(413, "body_too_large");
}

/// A finding as the worker reports it, with a `nosemgrep` comment covering it.
fn suppressed(rule: &str, path: &str, anchor: &str) -> Value {
    let mut f = finding(rule, path, anchor);
    f["suppressed"] = json!({"line": 3, "rules": []});
    f
}

fn scan_findings(list: &Value) -> Vec<(String, String, bool, Value)> {
    let mut v: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["change"].as_str().unwrap().to_owned(),
                f["path"].as_str().unwrap().to_owned(),
                f["suppressed"].as_bool().unwrap(),
                f["status"].clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    v
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_scans_record_holds_its_steps_findings_and_suppressions(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let (_, project) = admin.seed_project("acme/api").await;
    let pid = id_of(&project);
    let project_path = format!("/api/v1/projects/{pid}");

    // The project's path ignores and the org's suppression switch reach the worker's spec.
    let resp = admin
        .patch(&project_path, json!({"path_ignores": ["docs/", "[z-a]"]}))
        .await;
    resp.problem(422, "invalid_body");
    assert_eq!(resp.error_fields(), ["path_ignores[1]"]);
    for bad in [json!([""]), json!(["# comment"]), json!([":include x"])] {
        admin
            .patch(&project_path, json!({ "path_ignores": bad }))
            .await
            .problem(422, "invalid_body");
    }
    let updated = admin
        .patch(
            &project_path,
            json!({"path_ignores": ["docs/", "*.gen.py"]}),
        )
        .await
        .expect(200);
    assert_eq!(updated["path_ignores"], json!(["docs/", "*.gen.py"]));
    let (_, worker) = claim(&app).await;
    let spec = worker.get(SPEC).await.expect(200);
    assert_eq!(spec["path_ignores"], json!(["docs/", "*.gen.py"]));
    assert_eq!(spec["inline_suppression"], true);

    // A full scan: one finding, one a comment suppressed, a skipped file, an ignore rule.
    worker
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);
    let mut upload = results(
        1,
        vec![
            finding("r.sqli", "src/db.py", "cursor.execute(q)"),
            suppressed("r.eval", "tools/x.py", "eval(x)"),
        ],
        &["r.sqli", "r.eval"],
        &[],
    );
    upload["trail"]["skipped_files"] = json!([{"path": "bad.py", "kind": "unparsable", "reason": "Syntax error at line bad.py:1"}]);
    upload["trail"]["ignores"] = json!([{"pattern": "docs/", "source": "project", "files": 4}]);
    let scan_id = spec["scan_id"].as_str().unwrap().to_owned();
    worker.post(RESULTS, upload).await.expect(200);

    let detail = admin
        .get(&format!("/api/v1/scans/{scan_id}"))
        .await
        .expect(200);
    let attempt = &detail["attempts"][0];
    assert_eq!(attempt["attempt"], 1);
    let trail = &attempt["trail"];
    let steps: Vec<&str> = trail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    // The worker's steps, then the upload as the control plane received it.
    assert_eq!(steps, ["clone", "engine", "upload"]);
    assert_eq!(trail["steps"][0]["figures"]["bytes_received"], 1234);
    assert_eq!(trail["steps"][2]["figures"]["findings"], 2);
    assert_eq!(trail["engine"], "semgrep 1.185.0 (native)");
    assert_eq!(trail["skipped_files"][0]["path"], "bad.py");
    assert_eq!(trail["ignores"][0]["source"], "project");

    let findings_path = format!("/api/v1/scans/{scan_id}/findings");
    let list = admin.get(&findings_path).await.expect(200);
    assert_eq!(
        scan_findings(&list),
        [
            ("found".into(), "src/db.py".into(), false, json!("open")),
            ("found".into(), "tools/x.py".into(), true, json!("ignored")),
        ]
    );
    // Stored as ignored with the reason `nosemgrep`: visible, auditable.
    let stored = admin
        .get(&format!("/api/v1/projects/{pid}/findings?status=ignored"))
        .await
        .expect(200);
    assert_eq!(stored["items"][0]["triage_reason"], "nosemgrep");
    assert_eq!(stored["items"][0]["path"], "tools/x.py");
    // Pages, and refused filters.
    let page = admin
        .get(&format!("{findings_path}?limit=1"))
        .await
        .expect(200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let rest = admin
        .get(&format!(
            "{findings_path}?limit=1&cursor={}",
            page["next_cursor"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_ne!(rest["items"][0]["path"], page["items"][0]["path"]);
    admin
        .get(&format!("{findings_path}?change=gone"))
        .await
        .problem(400, "invalid_query");

    // The org turns inline suppression off: the next scan's spec says so, and the finding the
    // comment had suppressed, reported plainly, is open again.
    let org = admin
        .patch("/api/v1/org", json!({"inline_suppression": false}))
        .await
        .expect(200);
    assert_eq!(org["inline_suppression"], false);
    admin
        .post("/api/v1/scans", json!({"project_ids": [pid]}))
        .await
        .expect(200);
    let (_, worker) = claim(&app).await;
    let spec = worker.get(SPEC).await.expect(200);
    assert_eq!(spec["inline_suppression"], false);
    let second = spec["scan_id"].as_str().unwrap().to_owned();
    worker
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);
    worker
        .post(
            RESULTS,
            results(
                1,
                vec![finding("r.eval", "tools/x.py", "eval(x)")],
                &["r.sqli", "r.eval"],
                &[],
            ),
        )
        .await
        .expect(200);
    let list = admin
        .get(&format!("/api/v1/scans/{second}/findings"))
        .await
        .expect(200);
    assert_eq!(
        scan_findings(&list),
        [("found".into(), "tools/x.py".into(), false, json!("open"))]
    );
    // The first scan's record is unchanged, its finding's status is today's.
    let first = admin.get(&findings_path).await.expect(200);
    assert_eq!(scan_findings(&first).len(), 2);

    // A diff scan: what it found new, and what its head no longer has.
    let diff = admin
        .post(
            &format!("/api/v1/projects/{pid}/scans"),
            json!({"kind": "diff", "git_ref": "feature", "base_ref": "main", "pr_number": 3}),
        )
        .await
        .expect(201);
    let (_, worker) = claim(&app).await;
    worker
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);
    let mut new_one = finding("r.sqli", "src/new.py", "cursor.execute(p)");
    new_one["new_in_pr"] = json!(true);
    let mut upload = results(1, vec![new_one], &["r.sqli", "r.eval"], &[]);
    upload["fixed_in_pr"] = json!([finding("r.eval", "tools/x.py", "eval(x)")]);
    worker.post(RESULTS, upload).await.expect(200);
    let diff_path = format!("/api/v1/scans/{}/findings", id_of(&diff));
    let list = admin.get(&diff_path).await.expect(200);
    assert_eq!(
        scan_findings(&list),
        [
            ("fixed".into(), "tools/x.py".into(), false, Value::Null),
            ("new".into(), "src/new.py".into(), false, json!("open")),
        ]
    );
    let fixed_only = admin
        .get(&format!("{diff_path}?change=fixed"))
        .await
        .expect(200);
    assert_eq!(fixed_only["items"].as_array().unwrap().len(), 1);
    assert!(fixed_only["items"][0]["finding_id"].is_null());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_failed_attempt_records_the_step_it_failed_in(pool: PgPool) {
    let app = TestApp::start(pool).await;
    app.admin().seed_project("acme/api").await;
    let (claimed, worker) = claim(&app).await;
    worker
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);
    worker
        .post(
            FAILURE,
            json!({
                "attempt": 1, "code": "clone_failed", "message": "remote hung up", "step": "clone",
                "trail": {"steps": [{"step": "clone", "started_at": "2026-11-30T10:00:00Z",
                                     "millis": 812, "figures": {}}]},
            }),
        )
        .await
        .expect(200);
    let detail = app
        .admin()
        .get(&format!("/api/v1/scans/{}", claimed.scan.id))
        .await
        .expect(200);
    let attempt = &detail["attempts"][0];
    assert_eq!(attempt["failed_step"], "clone");
    assert_eq!(attempt["trail"]["steps"][0]["millis"], 812);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn matched_lines_are_stored_for_code_findings_until_the_org_turns_them_off(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let (_, project) = admin.seed_project("acme/api").await;
    let pid = id_of(&project);
    let (_, worker) = claim(&app).await;
    assert_eq!(
        worker.get(SPEC).await.expect(200)["store_matched_lines"],
        true
    );
    worker
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);
    let lines = json!(["    cursor.execute(", "        q)"]);
    let mut code = finding("r.sqli", "src/db.py", "cursor.execute(q)");
    code["matched_lines"] = lines.clone();

    // Refused: lines on a secrets finding, too many lines, a line with a break or too long.
    let mut secret = json!({
        "product": "secrets", "rule_id": "secrets.aws-key", "path": "conf.py", "start_line": 1,
        "end_line": 1, "severity": "critical", "message": "an AWS access key is committed",
        "fingerprint": fingerprint("secrets.aws-key", "conf.py", "key = ..."), "new_in_pr": false,
        "secret": {"redacted": "AKIA…0123", "sha256": "ab".repeat(32)},
        "matched_lines": ["key = 'AKIA…'"],
    });
    let bad_lines = [
        json!(["a", "b", "c", "d", "e", "f"]),
        json!(["a\nb"]),
        json!(["x".repeat(401)]),
    ];
    let resp = worker
        .post(
            RESULTS,
            results(1, vec![code.clone(), secret.clone()], &["r.sqli"], &[]),
        )
        .await;
    resp.problem(422, "invalid_body");
    assert_eq!(resp.error_fields(), ["findings[1].matched_lines"]);
    for bad in bad_lines {
        let mut f = code.clone();
        f["matched_lines"] = bad;
        worker
            .post(RESULTS, results(1, vec![f], &["r.sqli"], &[]))
            .await
            .problem(422, "invalid_body");
    }
    secret.as_object_mut().unwrap().remove("matched_lines");
    worker
        .post(
            RESULTS,
            results(1, vec![code.clone(), secret], &["r.sqli"], &[]),
        )
        .await
        .expect(200);
    let stored = admin
        .get(&format!("/api/v1/projects/{pid}/findings"))
        .await
        .expect(200);
    let by_product = |product: &str| {
        stored["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["product"] == product)
            .unwrap()
            .clone()
    };
    assert_eq!(by_product("code")["matched_lines"], lines);
    assert_eq!(by_product("secrets")["matched_lines"], json!([]));

    // Turned off: the stored lines go at once, the next spec says so, and lines a worker sends
    // anyway (served before the change) are not stored.
    let org = admin
        .patch("/api/v1/org", json!({"store_matched_lines": false}))
        .await
        .expect(200);
    assert_eq!(org["store_matched_lines"], false);
    let finding_path = format!(
        "/api/v1/findings/{}",
        by_product("code")["id"].as_str().unwrap()
    );
    assert_eq!(
        admin.get(&finding_path).await.expect(200)["matched_lines"],
        json!([])
    );
    admin
        .post("/api/v1/scans", json!({"project_ids": [pid]}))
        .await
        .expect(200);
    let (_, worker) = claim(&app).await;
    assert_eq!(
        worker.get(SPEC).await.expect(200)["store_matched_lines"],
        false
    );
    worker
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);
    worker
        .post(RESULTS, results(1, vec![code], &["r.sqli"], &[]))
        .await
        .expect(200);
    assert_eq!(
        admin.get(&finding_path).await.expect(200)["matched_lines"],
        json!([])
    );
    assert!(!stored_text(&app).await.contains("cursor.execute("));
    // A member may not change it.
    app.member()
        .await
        .patch("/api/v1/org", json!({"store_matched_lines": true}))
        .await
        .problem(403, "forbidden");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_workers_log_lines_are_kept_bounded_and_read_back_in_order(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    admin.seed_project("acme/api").await;
    let (claimed, worker) = claim(&app).await;
    let scan = claimed.scan.id;
    const LOGS: &str = "/api/v1/worker/scan/logs";
    let line = |i: usize| json!({"at": "2026-12-01T10:00:00Z", "level": "info", "message": format!("line {i}")});

    let res = worker
        .post(
            LOGS,
            json!({"attempt": 1, "lines": (0..3).map(line).collect::<Vec<_>>()}),
        )
        .await
        .expect(200);
    assert_eq!(
        (res["stored"].as_i64(), res["dropped"].as_i64()),
        (Some(3), Some(0))
    );
    // Refused: another attempt, no lines, too many, an empty or overlong line, a bad level.
    worker
        .post(LOGS, json!({"attempt": 2, "lines": [line(9)]}))
        .await
        .problem(401, "unauthorized");
    for (body, field) in [
        (json!({"attempt": 1, "lines": []}), "lines"),
        (
            json!({"attempt": 1, "lines": (0..501).map(line).collect::<Vec<_>>()}),
            "lines",
        ),
        (
            json!({"attempt": 1, "lines": [{"at": "2026-12-01T10:00:00Z", "level": "info", "message": ""}]}),
            "lines[0].message",
        ),
        (
            json!({"attempt": 1, "lines": [{"at": "2026-12-01T10:00:00Z", "level": "info", "message": "x".repeat(2001)}]}),
            "lines[0].message",
        ),
    ] {
        let resp = worker.post(LOGS, body).await;
        resp.problem(422, "invalid_body");
        assert_eq!(resp.error_fields(), [field]);
    }
    worker
        .post(LOGS, json!({"attempt": 1, "lines": [{"at": "2026-12-01T10:00:00Z", "level": "loud", "message": "x"}]}))
        .await
        .problem(422, "invalid_body");

    // The cap: past 10,000 lines a scan counts and keeps no more.
    for start in (3..10_100).step_by(500) {
        let lines: Vec<Value> = (start..(start + 500).min(10_100)).map(line).collect();
        worker
            .post(LOGS, json!({"attempt": 1, "lines": lines}))
            .await
            .expect(200);
    }
    let page = admin
        .get(&format!("/api/v1/scans/{scan}/logs?limit=1000"))
        .await
        .expect(200);
    assert_eq!(page["dropped"], 100);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1000);
    assert_eq!(items[0]["message"], "line 0");
    assert_eq!(items[999]["message"], "line 999");
    let last = items[999]["seq"].as_i64().unwrap();
    let next = admin
        .get(&format!("/api/v1/scans/{scan}/logs?after={last}&limit=1"))
        .await
        .expect(200);
    assert_eq!(next["items"][0]["message"], "line 1000");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM scan_log_lines")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(total, 10_000);

    // Another org sees none of it; a bad query is refused.
    let other = app.org("b").await;
    other
        .admin
        .get(&format!("/api/v1/scans/{scan}/logs"))
        .await
        .problem(404, "not_found");
    admin
        .get(&format!("/api/v1/scans/{scan}/logs?limit=0"))
        .await
        .problem(400, "invalid_query");

    // Pruned once the scan has ended longer ago than the retention.
    sqlx::query("UPDATE scans SET state = 'cancelled', lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, slot = NULL, finished_at = now() - interval '2 days' WHERE id = $1")
        .bind(scan.0)
        .execute(&app.pool)
        .await
        .unwrap();
    let pruned = picket_db::scan_logs::prune(&app.pool, std::time::Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(pruned, 10_000);
}

const ADVISORIES: &str = "/api/v1/worker/scan/advisories";

/// Stores an OSV record affecting `packages` (ecosystem, name) as the importer would.
async fn store_advisory(
    app: &TestApp,
    id: &str,
    aliases: &[&str],
    packages: &[(&str, &str)],
    withdrawn: bool,
) {
    let affected: Vec<Value> = packages
        .iter()
        .map(|(e, n)| json!({"package": {"ecosystem": e, "name": n},
                             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]}))
        .collect();
    let mut record = json!({"id": id, "modified": "2024-01-01T00:00:00Z", "aliases": aliases,
                            "affected": affected});
    if withdrawn {
        record["withdrawn"] = json!("2024-02-01T00:00:00Z");
    }
    let mut conn = app.pool.acquire().await.unwrap();
    picket_db::advisories::upsert(
        &mut conn,
        &[picket_db::advisories::NewAdvisory {
            id: id.into(),
            modified: None,
            published: None,
            withdrawn: withdrawn.then(time::OffsetDateTime::now_utc),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            packages: packages
                .iter()
                .map(|(e, n)| {
                    let e: picket_core::Ecosystem = serde_json::from_value(json!(e)).unwrap();
                    (e, e.normalize(n))
                })
                .collect(),
            record: record.to_string(),
            source: "e2e".into(),
        }],
    )
    .await
    .unwrap();
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_worker_asks_for_the_advisories_of_its_packages(pool: PgPool) {
    let app = TestApp::start(pool).await;
    app.admin().seed_project("acme/api").await;
    store_advisory(
        &app,
        "PYSEC-2",
        &["CVE-2"],
        &[("PyPI", "Zope.Interface")],
        false,
    )
    .await;
    store_advisory(&app, "PYSEC-1", &["CVE-1"], &[("PyPI", "urllib3")], false).await;
    store_advisory(
        &app,
        "GHSA-both",
        &[],
        &[("PyPI", "urllib3"), ("npm", "lodash")],
        false,
    )
    .await;
    store_advisory(&app, "PYSEC-gone", &[], &[("PyPI", "urllib3")], true).await;
    store_advisory(&app, "RUSTSEC-1", &[], &[("crates.io", "smallvec")], false).await;
    let (_, worker) = claim(&app).await;
    worker
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);

    let ids = |v: &Value| -> Vec<String> {
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Names are looked up as their ecosystem normalises them; a record naming two of the
    // packages comes once; a withdrawn one never; the records come whole, sorted by id.
    let answer = worker
        .post(
            ADVISORIES,
            json!({"attempt": 1, "packages": [
                {"ecosystem": "PyPI", "names": ["URLLib3", "zope-interface", "requests"]},
                {"ecosystem": "npm", "names": ["lodash"]},
            ]}),
        )
        .await
        .expect(200);
    assert_eq!(ids(&answer), ["GHSA-both", "PYSEC-1", "PYSEC-2"]);
    assert_eq!(answer["empty_ecosystems"], json!([]));
    let go = worker
        .post(
            ADVISORIES,
            json!({"attempt": 1, "packages": [{"ecosystem": "Go", "names": ["golang.org/x/net"]},
                                              {"ecosystem": "crates.io", "names": ["smallvec"]}]}),
        )
        .await
        .expect(200);
    assert_eq!(ids(&go), ["RUSTSEC-1"]);
    assert_eq!(
        go["empty_ecosystems"],
        json!(["Go"]),
        "nothing of Go is imported"
    );
    assert_eq!(answer["records"][1]["aliases"], json!(["CVE-1"]));
    assert_eq!(
        answer["records"][1]["affected"][0]["ranges"][0]["events"][1]["fixed"],
        "2.0"
    );
    let none = worker
        .post(ADVISORIES, json!({"attempt": 1, "packages": []}))
        .await
        .expect(200);
    assert_eq!(none, json!({"records": [], "empty_ecosystems": []}));

    // Bad queries are refused with the field named.
    for (body, field) in [
        (
            json!({"attempt": 1, "packages": [{"ecosystem": "PyPI", "names": ["a"]},
                                              {"ecosystem": "PyPI", "names": ["b"]}]}),
            "packages[1].ecosystem",
        ),
        (
            json!({"attempt": 1, "packages": [{"ecosystem": "npm", "names": ["x".repeat(501)]}]}),
            "packages[0].names[0]",
        ),
        (
            json!({"attempt": 1, "packages": [{"ecosystem": "npm", "names": [""]}]}),
            "packages[0].names[0]",
        ),
    ] {
        let resp = worker.post(ADVISORIES, body).await;
        let problem = resp.problem(422, "invalid_body");
        assert!(problem.to_string().contains(field), "{field}: {problem}");
    }
    let too_many: Vec<String> = (0..100_001).map(|i| format!("p{i}")).collect();
    worker
        .post(
            ADVISORIES,
            json!({"attempt": 1, "packages": [{"ecosystem": "npm", "names": too_many}]}),
        )
        .await
        .problem(422, "invalid_body");
    worker
        .post(
            ADVISORIES,
            json!({"attempt": 1, "packages": [{"ecosystem": "Hex", "names": ["x"]}]}),
        )
        .await
        .expect(422);
    // Another attempt's query is refused like a bad token.
    worker
        .post(ADVISORIES, json!({"attempt": 2, "packages": []}))
        .await
        .problem(401, "unauthorized");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_supply_chain_finding_must_carry_its_dependency_and_only_it(pool: PgPool) {
    let app = TestApp::start(pool).await;
    app.admin().seed_project("acme/api").await;
    let (_, worker) = claim(&app).await;
    worker
        .post(PROGRESS, json!({"state": "running"}))
        .await
        .expect(200);
    let dependency = json!({
        "ecosystem": "PyPI", "package": "urllib3", "versions": ["1.24.1"],
        "advisories": ["PYSEC-2019-132"], "aliases": ["CVE-2019-11236", "PYSEC-2019-132"],
        "fixed": ["1.24.3"], "direct": true, "dev": null, "severity_source": null,
        "summary": "CRLF injection",
    });
    let mut bare = finding("CVE-2019-11236", "requirements.txt", "PyPI urllib3");
    bare["product"] = json!("supply_chain");
    let mut with_dep = bare.clone();
    with_dep["dependency"] = dependency.clone();
    let mut code_with_dep = finding("r.eval", "app.py", "eval(x)");
    code_with_dep["dependency"] = dependency.clone();
    let mut no_advisory = with_dep.clone();
    no_advisory["dependency"]["advisories"] = json!([]);
    let mut bad_source = with_dep.clone();
    bad_source["dependency"]["severity_source"] = json!("guess");
    for (f, field) in [
        (bare, "findings[0].dependency"),
        (code_with_dep, "findings[0].dependency"),
        (no_advisory, "findings[0].dependency.advisories"),
        (bad_source, "findings[0].dependency.severity_source"),
    ] {
        let problem = worker
            .post(RESULTS, results(1, vec![f], &[], &[]))
            .await
            .problem(422, "invalid_body");
        assert!(problem.to_string().contains(field), "{field}: {problem}");
    }
    // A trail's lockfile entry with a control character in its error is refused too.
    let mut r = results(1, vec![with_dep], &[], &[]);
    r["trail"]["supply_chain"] = json!({"advisories": 1, "lockfiles": [{
        "path": "package-lock.json", "format": "package-lock", "ecosystem": "npm",
        "packages": 0, "not_registry": 0, "error": "bad\nline"}]});
    worker
        .post(RESULTS, r.clone())
        .await
        .problem(422, "invalid_body");
    r["trail"]["supply_chain"]["lockfiles"][0]["error"] = json!("syntax error at line 3");
    worker.post(RESULTS, r).await.expect(200);
    let stored: Value = sqlx::query_scalar("SELECT dependency FROM findings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, dependency);
}
