//! The cross-org walker: every route of the OpenAPI document, called by another org's admin.
//!
//! Routes that address an object of org `a` (by id or name, in the path or in the body) must
//! answer 404 exactly like a missing object. Routes that address the caller's own org or
//! collections must answer without a trace of org `a`. Afterwards org `a` must be exactly as it
//! was. The test fails when the document holds a route this table does not cover, so a new route
//! cannot ship without its isolation check.

use picket_tests::{id_of, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::BTreeSet;

/// What org `b`'s admin must get back.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// 404 problem `not_found`: the object is org `a`'s.
    NotFound,
    /// Success, in the caller's own org, showing nothing of org `a`.
    OwnOrg(u16),
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
    let app = TestApp::start(pool).await;
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
    a.put(
        "/api/v1/policies/a-policy",
        json!({"rules": {"a.only.rule": "block"}}),
    )
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
                  'policies', (SELECT json_agg(r ORDER BY rule_id) FROM policy_rules r JOIN policies p ON p.id = r.policy_id WHERE p.org_id = $1)
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

    let b = app.org("b").await.admin;
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
            Method::GET,
            "/api/v1/projects/{id}/scans",
            format!("/api/v1/projects/{p1}/scans"),
            None,
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
            "/api/v1/policies/effective",
            "/api/v1/policies/effective".into(),
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

    assert_eq!(snapshot(&app).await, before, "org b changed org a");
    assert_eq!(b.get("/api/v1/org").await.expect(200)["name"], "B renamed");
}
