//! The cross-org walker: every route of the OpenAPI document, called by another org's admin.
//!
//! Routes that address an object of org `a` (by id or name, in the path or in the body) must
//! answer 404 exactly like a missing object. Routes that address the caller's own org or
//! collections must answer without a trace of org `a`. The worker routes refuse the API token
//! (401). Then a per-scan token of one of org `b`'s scans walks the same table: every route but
//! the worker routes answers 401, and the worker routes answer about that scan only. Afterwards
//! org `a` must be exactly as it was. The test fails when the document holds a route this table
//! does not cover, so a new route cannot ship without its isolation check.

use picket_core::{ProjectId, ScanId, ScanKind, ScanTrigger};
use picket_db::findings::{self, Reported, ScanTarget};
use picket_db::queue;
use picket_db::scans::{self, NewScan};
use picket_tests::{id_of, TestApp};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::BTreeSet;

const A_PACK: &str = "rules:\n- id: acme.no-eval\n  languages: [python]\n  severity: ERROR\n  message: no eval\n  pattern: eval(...)\n";

/// What org `b`'s admin must get back.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// 404 problem `not_found`: the object is org `a`'s.
    NotFound,
    /// Success, in the caller's own org, showing nothing of org `a`.
    OwnOrg(u16),
    /// 401 problem `unauthorized`: the worker routes take only a per-scan token.
    Unauthorized,
    /// This problem: a route that takes no token and addresses nothing of org `a` by id.
    Problem(u16, &'static str),
}

struct Probe {
    method: Method,
    /// The route as the OpenAPI document names it.
    template: &'static str,
    path: String,
    body: Option<Value>,
    expect: Expect,
}

fn probe(
    method: Method,
    template: &'static str,
    path: String,
    body: Option<Value>,
    expect: Expect,
) -> Probe {
    Probe {
        method,
        template,
        path,
        body,
        expect,
    }
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn another_org_cannot_reach_any_object(pool: PgPool) {
    // A public URL, so the App manifest flow can start.
    let app = TestApp::start_with(
        pool,
        picket_api::ApiConfig {
            public_url: Some("https://picket.example.test".into()),
            ..Default::default()
        },
    )
    .await;
    let a = app.admin();
    // Org a: a member token, a used and an unused connection, two projects (one with a finished
    // scan, one with a queued scan), a policy.
    let member = a
        .post(
            "/api/v1/tokens",
            json!({"name": "a-member", "role": "member"}),
        )
        .await
        .expect(201);
    let token_id = id_of(&member);
    let (conn, p1) = a.seed_project("a/secret-one").await;
    let p2 = a.projects(&conn).repo("a/secret-two").add().await.remove(0);
    let unused_conn = id_of(&a.connection("a-unused").create().await);
    let finished_scan = p1["last_scan"]["id"].as_str().unwrap().to_owned();
    a.post(&format!("/api/v1/scans/{finished_scan}/cancel"), json!({}))
        .await
        .expect(200);
    let queued_scan = p2["last_scan"]["id"].as_str().unwrap().to_owned();
    let (p1, p2) = (id_of(&p1), id_of(&p2));
    // A finding of p1, written as a scan's results upload writes it.
    let mut finding: picket_core::protocol::ReportedFinding = serde_json::from_value(json!({
        "product": "code", "rule_id": "a.only.rule", "path": "a/secret.py", "start_line": 1,
        "end_line": 1, "severity": "high", "message": "a/secret", "new_in_pr": false,
        "fingerprint": "0".repeat(64), "secret": null,
    }))
    .unwrap();
    finding.fingerprint =
        picket_core::Fingerprint::compute(&finding.rule_id, "a/secret.py", "x", 0);
    let target = ScanTarget {
        org_id: app.org_id,
        project_id: ProjectId(p1.parse().unwrap()),
        scan_id: ScanId(finished_scan.parse().unwrap()),
        kind: ScanKind::Full,
        git_ref: "main".into(),
    };
    let reported = Reported {
        findings: std::slice::from_ref(&finding),
        fixed_in_pr: &[],
        rules_run: &[],
        deleted_paths: &[],
        unread_paths: &[],
    };
    findings::ingest(&mut app.pool.acquire().await.unwrap(), &target, reported)
        .await
        .unwrap();
    let finding_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM findings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    a.put(
        "/api/v1/policies/a-policy",
        json!({"rules": {"a.only.rule": "block"}}),
    )
    .await
    .expect(201);
    a.put("/api/v1/rule-packs/a-pack", json!({"content": A_PACK}))
        .await
        .expect(201);

    let snapshot = |app: &TestApp| {
        let pool = app.pool.clone();
        let org = app.org_id;
        async move {
            sqlx::query_scalar::<_, String>(
                r#"
                SELECT json_build_object(
                  'org', (SELECT row_to_json(o) FROM orgs o WHERE id = $1),
                  'tokens', (SELECT json_agg(t ORDER BY id) FROM (SELECT id, name, role, revoked_at FROM api_tokens WHERE org_id = $1) t),
                  'connections', (SELECT json_agg(c ORDER BY id) FROM (SELECT id, name FROM vcs_connections WHERE org_id = $1) c),
                  'projects', (SELECT json_agg(p ORDER BY id) FROM (SELECT id, full_scans_enabled, diff_scans_enabled FROM projects WHERE org_id = $1) p),
                  'scans', (SELECT json_agg(s ORDER BY id) FROM (SELECT id, state, priority FROM scans WHERE org_id = $1) s),
                  'policies', (SELECT json_agg(r ORDER BY rule_id) FROM policy_rules r JOIN policies p ON p.id = r.policy_id WHERE p.org_id = $1),
                  'rule_packs', (SELECT json_agg(r ORDER BY id) FROM (SELECT id, name, sha256, updated_at FROM rule_packs WHERE org_id = $1) r),
                  'findings', (SELECT json_agg(f ORDER BY id) FROM (SELECT id, status, triage_reason, last_seen_scan_id FROM findings WHERE org_id = $1) f)
                )::text
                "#,
            )
            .bind(org.0)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let before = snapshot(&app).await;

    let b = app.org("b").await;
    // Org b's own scan, claimed and given its per-scan token as the scheduler does. It is a PR
    // scan, so it is claimed before org a's queued initial scan.
    let (_, b_project) = b.admin.seed_project("b/own").await;
    let mut pr = NewScan::full(
        b.id,
        ProjectId(id_of(&b_project).parse().unwrap()),
        ScanTrigger::PullRequest,
        "feature",
    );
    pr.kind = ScanKind::Diff;
    pr.base_ref = Some("main".into());
    pr.pr_number = Some(7);
    let b_scan = scans::enqueue(&app.pool, &pr).await.unwrap().scan.id;
    let claimed = queue::claim(&app.pool, "cross-org", std::time::Duration::from_secs(300))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.scan.id, b_scan);
    let b_worker = app.client(
        queue::mint_scan_token(&app.pool, &claimed.lease)
            .await
            .unwrap()
            .expose_secret(),
    );
    let b = b.admin;
    use Expect::*;
    let table = vec![
        probe(
            Method::GET,
            "/api/v1/org",
            "/api/v1/org".into(),
            None,
            OwnOrg(200),
        ),
        probe(
            Method::PATCH,
            "/api/v1/org",
            "/api/v1/org".into(),
            Some(json!({"name": "B renamed"})),
            OwnOrg(200),
        ),
        probe(
            Method::GET,
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            None,
            OwnOrg(200),
        ),
        probe(
            Method::POST,
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            Some(json!({"name": "b2", "role": "member"})),
            OwnOrg(201),
        ),
        probe(
            Method::DELETE,
            "/api/v1/tokens/{id}",
            format!("/api/v1/tokens/{token_id}"),
            None,
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/connections",
            "/api/v1/connections".into(),
            None,
            OwnOrg(200),
        ),
        probe(
            Method::POST,
            "/api/v1/connections",
            "/api/v1/connections".into(),
            Some(json!({"provider": "git", "name": "b-conn"})),
            OwnOrg(201),
        ),
        probe(
            Method::GET,
            "/api/v1/connections/{id}",
            format!("/api/v1/connections/{conn}"),
            None,
            NotFound,
        ),
        probe(
            Method::DELETE,
            "/api/v1/connections/{id}",
            format!("/api/v1/connections/{unused_conn}"),
            None,
            NotFound,
        ),
        probe(
            Method::PATCH,
            "/api/v1/connections/{id}",
            format!("/api/v1/connections/{conn}"),
            Some(json!({"follow_installations": true})),
            NotFound,
        ),
        probe(
            Method::POST,
            "/api/v1/connections/{id}/webhook-secret/rotate",
            format!("/api/v1/connections/{conn}/webhook-secret/rotate"),
            Some(json!({})),
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/connections/{id}/deliveries",
            format!("/api/v1/connections/{conn}/deliveries"),
            None,
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/connections/{id}/deliveries/{delivery_id}",
            format!("/api/v1/connections/{conn}/deliveries/a-delivery"),
            None,
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/connections/{id}/check",
            format!("/api/v1/connections/{conn}/check"),
            None,
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/connections/{id}/repositories",
            format!("/api/v1/connections/{conn}/repositories"),
            None,
            NotFound,
        ),
        probe(
            Method::POST,
            "/api/v1/connections/{id}/repositories",
            format!("/api/v1/connections/{conn}/repositories"),
            Some(json!({"select": "all"})),
            NotFound,
        ),
        probe(
            Method::POST,
            "/api/v1/connections/{id}/repositories/refresh",
            format!("/api/v1/connections/{conn}/repositories/refresh"),
            None,
            NotFound,
        ),
        probe(
            Method::POST,
            "/api/v1/connections/github/manifest",
            "/api/v1/connections/github/manifest".into(),
            Some(json!({"name": "b-app"})),
            OwnOrg(201),
        ),
        // No token is taken here: the manifest's state authenticates the callback, and org b
        // holds none of org a's (each is 256 random bits, stored hashed).
        probe(
            Method::GET,
            "/api/v1/connections/github/manifest/callback",
            format!(
                "/api/v1/connections/github/manifest/callback?code=x&state={}",
                "0".repeat(64)
            ),
            None,
            Problem(404, "manifest_state_unknown"),
        ),
        // No token is taken here: a delivery is authenticated by its signature under the
        // connection's secret, and org a's connection has none.
        probe(
            Method::POST,
            "/webhooks/github/{connection}",
            format!("/webhooks/github/{conn}"),
            Some(json!({"zen": "x"})),
            NotFound,
        ),
        probe(
            Method::POST,
            "/webhooks/gitlab/{connection}",
            format!("/webhooks/gitlab/{conn}"),
            Some(json!({"object_kind": "merge_request"})),
            NotFound,
        ),
        probe(
            Method::POST,
            "/webhooks/bitbucket/{connection}",
            format!("/webhooks/bitbucket/{conn}"),
            Some(json!({"pullrequest": {}})),
            NotFound,
        ),
        probe(
            Method::POST,
            "/webhooks/azure_devops/{connection}",
            format!("/webhooks/azure_devops/{conn}"),
            Some(json!({"eventType": "git.pullrequest.created"})),
            NotFound,
        ),
        probe(
            Method::POST,
            "/api/v1/connections/{id}/webhooks",
            format!("/api/v1/connections/{conn}/webhooks"),
            None,
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/projects",
            "/api/v1/projects".into(),
            None,
            OwnOrg(200),
        ),
        probe(
            Method::POST,
            "/api/v1/projects",
            "/api/v1/projects".into(),
            Some(
                json!({"projects": [{"connection_id": conn, "provider_repo_id": "9", "full_name": "b/x",
                "clone_url": "https://x/b.git", "default_branch": "main"}]}),
            ),
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/projects/{id}",
            format!("/api/v1/projects/{p1}"),
            None,
            NotFound,
        ),
        probe(
            Method::PATCH,
            "/api/v1/projects/{id}",
            format!("/api/v1/projects/{p1}"),
            Some(json!({"full_scans_enabled": false})),
            NotFound,
        ),
        probe(
            Method::DELETE,
            "/api/v1/projects/{id}",
            format!("/api/v1/projects/{p1}"),
            None,
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/projects/{id}/scans",
            format!("/api/v1/projects/{p1}/scans"),
            None,
            NotFound,
        ),
        probe(
            Method::POST,
            "/api/v1/projects/{id}/scans",
            format!("/api/v1/projects/{p1}/scans"),
            Some(json!({"kind": "full"})),
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/projects/{id}/findings",
            format!("/api/v1/projects/{p1}/findings"),
            None,
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/findings/{id}",
            format!("/api/v1/findings/{finding_id}"),
            None,
            NotFound,
        ),
        probe(
            Method::POST,
            "/api/v1/findings/{id}/triage",
            format!("/api/v1/findings/{finding_id}/triage"),
            Some(json!({"status": "ignored", "reason": "not ours"})),
            NotFound,
        ),
        // Another org's finding ids change nothing (the data check below holds org a's
        // findings unchanged), nor does a filter matching everything of the caller's org.
        probe(
            Method::POST,
            "/api/v1/findings/triage",
            "/api/v1/findings/triage".into(),
            Some(json!({"findings": {"ids": [finding_id]},
                        "decision": {"status": "ignored", "ignore_reason": "false_positive"}})),
            OwnOrg(200),
        ),
        probe(
            Method::GET,
            "/api/v1/worker/scan",
            "/api/v1/worker/scan".into(),
            None,
            Unauthorized,
        ),
        probe(
            Method::GET,
            "/api/v1/worker/scan/credential",
            "/api/v1/worker/scan/credential".into(),
            None,
            Unauthorized,
        ),
        probe(
            Method::POST,
            "/api/v1/worker/scan/progress",
            "/api/v1/worker/scan/progress".into(),
            Some(json!({"state": "running"})),
            Unauthorized,
        ),
        probe(
            Method::POST,
            "/api/v1/worker/scan/results",
            "/api/v1/worker/scan/results".into(),
            Some(worker_results()),
            Unauthorized,
        ),
        probe(
            Method::POST,
            "/api/v1/worker/scan/failure",
            "/api/v1/worker/scan/failure".into(),
            Some(json!({"attempt": 1, "code": "x", "message": "y"})),
            Unauthorized,
        ),
        probe(
            Method::POST,
            "/api/v1/worker/scan/logs",
            "/api/v1/worker/scan/logs".into(),
            Some(
                json!({"attempt": 1, "lines": [{"at": "2026-12-01T00:00:00Z", "level": "info", "message": "x"}]}),
            ),
            Unauthorized,
        ),
        probe(
            Method::POST,
            "/api/v1/worker/scan/feedback/begin",
            "/api/v1/worker/scan/feedback/begin".into(),
            Some(json!({"attempt": 1, "input": picket_core::feedback::FeedbackInput::default()})),
            Unauthorized,
        ),
        probe(
            Method::POST,
            "/api/v1/worker/scan/feedback/done",
            "/api/v1/worker/scan/feedback/done".into(),
            Some(
                json!({"attempt": 1, "comments_posted": 0, "threads_resolved": 0,
                        "summary": "none", "api_calls": 0}),
            ),
            Unauthorized,
        ),
        probe(
            Method::POST,
            "/api/v1/worker/scan/advisories",
            "/api/v1/worker/scan/advisories".into(),
            Some(json!({"attempt": 1, "packages": [{"ecosystem": "PyPI", "names": ["urllib3"]}]})),
            Unauthorized,
        ),
        probe(
            Method::POST,
            "/api/v1/scans",
            "/api/v1/scans".into(),
            Some(json!({"project_ids": [p1, p2]})),
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/scans/{id}",
            format!("/api/v1/scans/{finished_scan}"),
            None,
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/scans/{id}/findings",
            format!("/api/v1/scans/{finished_scan}/findings"),
            None,
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/scans/{id}/logs",
            format!("/api/v1/scans/{finished_scan}/logs"),
            None,
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/scans/{id}/sarif",
            format!("/api/v1/scans/{finished_scan}/sarif"),
            None,
            NotFound,
        ),
        probe(
            Method::POST,
            "/api/v1/scans/{id}/cancel",
            format!("/api/v1/scans/{queued_scan}/cancel"),
            Some(json!({})),
            NotFound,
        ),
        probe(
            Method::POST,
            "/api/v1/scans/{id}/retry",
            format!("/api/v1/scans/{finished_scan}/retry"),
            Some(json!({})),
            NotFound,
        ),
        probe(
            Method::GET,
            "/api/v1/policies",
            "/api/v1/policies".into(),
            None,
            OwnOrg(200),
        ),
        probe(
            Method::GET,
            "/api/v1/org/effective-policy",
            "/api/v1/org/effective-policy".into(),
            None,
            OwnOrg(200),
        ),
        probe(
            Method::GET,
            "/api/v1/policies/{name}",
            "/api/v1/policies/a-policy".into(),
            None,
            NotFound,
        ),
        // Before the PUT below, which gives org b a policy of the same name.
        probe(
            Method::DELETE,
            "/api/v1/policies/{name}",
            "/api/v1/policies/a-policy".into(),
            None,
            NotFound,
        ),
        // Names are per org: this creates org b's own policy (201), it does not replace a's.
        probe(
            Method::PUT,
            "/api/v1/policies/{name}",
            "/api/v1/policies/a-policy".into(),
            Some(json!({"rules": {"b.rule": "monitor"}})),
            OwnOrg(201),
        ),
        // Changes org b's own policy of that name.
        probe(
            Method::PATCH,
            "/api/v1/policies/{name}",
            "/api/v1/policies/a-policy".into(),
            Some(json!({"rules": {"b.rule": "block"}})),
            OwnOrg(200),
        ),
        probe(
            Method::GET,
            "/api/v1/rule-packs",
            "/api/v1/rule-packs".into(),
            None,
            OwnOrg(200),
        ),
        probe(
            Method::GET,
            "/api/v1/rule-packs/{name}",
            "/api/v1/rule-packs/a-pack".into(),
            None,
            NotFound,
        ),
        probe(
            Method::DELETE,
            "/api/v1/rule-packs/{name}",
            "/api/v1/rule-packs/a-pack".into(),
            None,
            NotFound,
        ),
        // Names and rule ids are per org: org b gets its own pack with the same rule id.
        probe(
            Method::PUT,
            "/api/v1/rule-packs/{name}",
            "/api/v1/rule-packs/a-pack".into(),
            Some(json!({"content": A_PACK})),
            OwnOrg(201),
        ),
        // Advisories belong to no org: the state shows nothing of org a, and a record is the
        // same for every org (none is imported here).
        probe(
            Method::GET,
            "/api/v1/advisories",
            "/api/v1/advisories".into(),
            None,
            OwnOrg(200),
        ),
        probe(
            Method::GET,
            "/api/v1/advisories/{id}",
            "/api/v1/advisories/GHSA-aaaa-bbbb-cccc".into(),
            None,
            Problem(404, "advisory_not_found"),
        ),
    ];

    // The table covers exactly the documented routes.
    let doc = app
        .anonymous()
        .get("/api/v1/openapi.json")
        .await
        .expect(200);
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| {
                    [
                        "get", "post", "put", "patch", "delete", "head", "options", "trace",
                    ]
                    .contains(&k.as_str())
                })
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let covered: BTreeSet<(String, String)> = table
        .iter()
        .map(|p| (p.method.to_string(), p.template.to_owned()))
        .collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without a cross-org check: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "checks for routes that no longer exist: {stale:?}"
    );
    assert_eq!(covered.len(), table.len(), "a route is listed twice");

    // Nothing of org a may show in org b's answers.
    let traces = [
        token_id.clone(),
        conn.clone(),
        unused_conn.clone(),
        p1.clone(),
        p2.clone(),
        finished_scan.clone(),
        queued_scan.clone(),
        "a/secret".to_owned(),
        "a-unused".to_owned(),
        "a.only.rule".to_owned(),
        "a-member".to_owned(),
        finding_id.to_string(),
        "a/secret.py".to_owned(),
    ];
    for p in &table {
        let resp = b.send(p.method.clone(), &p.path, p.body.clone()).await;
        match p.expect {
            NotFound => {
                resp.problem(404, "not_found");
            }
            OwnOrg(status) => {
                resp.expect(status);
            }
            Unauthorized => {
                resp.problem(401, "unauthorized");
            }
            Problem(status, code) => {
                resp.problem(status, code);
            }
        }
        // An id org b sent itself may be echoed back (e.g. "project <id> not found").
        let sent = format!(
            "{} {}",
            p.path,
            p.body.as_ref().map(Value::to_string).unwrap_or_default()
        );
        for t in traces.iter().filter(|t| !sent.contains(t.as_str())) {
            assert!(
                !resp.text.contains(t.as_str()),
                "{} {} shows {t}: {}",
                p.method,
                p.path,
                resp.text
            );
        }
    }

    // Org b's bulk triage of org a's finding id changed nothing of org a's.
    let (status, history): (String, i64) = sqlx::query_as(
        "SELECT status::text, (SELECT count(*) FROM finding_triage_events) FROM findings WHERE id = $1",
    )
    .bind(finding_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), history), ("open", 0));

    // Org b's per-scan token: no route outside the worker routes opens to it.
    let no_trace = |resp: &picket_tests::Resp| {
        for t in &traces {
            assert!(
                !resp.text.contains(t.as_str()),
                "{} {} shows {t}: {}",
                resp.method,
                resp.path,
                resp.text
            );
        }
    };
    let worker_routes: Vec<&Probe> = table
        .iter()
        .filter(|p| p.template.starts_with("/api/v1/worker/"))
        .collect();
    // (Routes that take no token at all, the webhooks and the manifest callback, are left out.)
    for p in table.iter().filter(|p| {
        !p.template.starts_with("/api/v1/worker/")
            && !p.template.starts_with("/webhooks/")
            && !matches!(p.expect, Problem(..))
    }) {
        let resp = b_worker
            .send(p.method.clone(), &p.path, p.body.clone())
            .await;
        resp.problem(401, "unauthorized");
        no_trace(&resp);
    }
    // The worker routes answer about org b's scan only, in a worker's order; once its results
    // are in, the scan has ended and its token opens nothing.
    let walk: Vec<(Method, &str, Option<Value>, u16)> = vec![
        (Method::GET, "/api/v1/worker/scan", None, 200),
        (Method::GET, "/api/v1/worker/scan/credential", None, 404),
        (
            Method::POST,
            "/api/v1/worker/scan/progress",
            Some(json!({"state": "running"})),
            200,
        ),
        // Org b's scan is a full scan: no PR feedback to begin, and none begun to be done.
        (
            Method::POST,
            "/api/v1/worker/scan/feedback/begin",
            Some(json!({"attempt": 1, "input": picket_core::feedback::FeedbackInput::default()})),
            404,
        ),
        (
            Method::POST,
            "/api/v1/worker/scan/feedback/done",
            Some(
                json!({"attempt": 1, "comments_posted": 0, "threads_resolved": 0,
                        "summary": "none", "api_calls": 0}),
            ),
            409,
        ),
        (
            Method::POST,
            "/api/v1/worker/scan/logs",
            Some(
                json!({"attempt": 1, "lines": [{"at": "2026-12-01T00:00:00Z", "level": "info", "message": "b's line"}]}),
            ),
            200,
        ),
        // Advisories are the installation's, not an org's: a live token may ask.
        (
            Method::POST,
            "/api/v1/worker/scan/advisories",
            Some(json!({"attempt": 1, "packages": [{"ecosystem": "PyPI", "names": ["urllib3"]}]})),
            200,
        ),
        (
            Method::POST,
            "/api/v1/worker/scan/results",
            Some(worker_results()),
            200,
        ),
        (
            Method::POST,
            "/api/v1/worker/scan/failure",
            Some(json!({"attempt": 1, "code": "x", "message": "y"})),
            401,
        ),
    ];
    let walked: BTreeSet<&str> = walk.iter().map(|w| w.1).collect();
    let templates: BTreeSet<&str> = worker_routes.iter().map(|p| p.template).collect();
    assert_eq!(
        walked, templates,
        "every worker route is walked with a scan token"
    );
    for (method, path, body, status) in walk {
        let resp = b_worker.send(method, path, body).await;
        resp.expect(status);
        no_trace(&resp);
        if path == "/api/v1/worker/scan" {
            assert_eq!(resp.json()["scan_id"], b_scan.to_string());
        }
    }

    assert_eq!(snapshot(&app).await, before, "org b changed org a");
    assert_eq!(b.get("/api/v1/org").await.expect(200)["name"], "B renamed");
}

/// An empty results upload of attempt 1.
fn worker_results() -> Value {
    json!({
        "attempt": 1, "commit_sha": "b".repeat(40), "merge_base_sha": null, "rules_run": [],
        "deleted_paths": [], "files_scanned": 0, "findings": [], "trail": {},
    })
}
