//! Onboarding through a GitHub connection, over real HTTP, against a real database and the GitHub
//! test server (which checks every request Picket sends against GitHub's OpenAPI description):
//! checking a connection, listing what its installations see, adding repositories in bulk, and
//! creating the connection in one click through GitHub's App manifest flow.

use crate::webhooks::{example, sign};
use picket_api::ApiConfig;
use picket_test_support::github::{Fault, FaultKind, GitHubServer, TestApp as GitHubApp};
use picket_tests::{id_of, Resp, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};

/// Picket's public URL in these tests (only named in what Picket answers; nothing calls it).
const PUBLIC_URL: &str = "https://picket.example.test";

/// A connection to the App `gh` on the test server; returns its id.
async fn connect(app: &TestApp, server: &GitHubServer, gh: &GitHubApp, name: &str) -> String {
    let conn = app
        .github_connection(name, server, gh, &gh.webhook_secret)
        .await;
    id_of(&conn)
}

/// Adds `n` repositories `<owner>/<prefix>-<i>` to the installation; returns their ids.
fn repos(
    server: &GitHubServer,
    installation: u64,
    owner: &str,
    prefix: &str,
    n: usize,
) -> Vec<u64> {
    (0..n)
        .map(|i| {
            let name = format!("{owner}/{prefix}-{i:03}");
            server.add_repo(
                installation,
                &name,
                "main",
                &format!("https://github.invalid/{name}.git"),
            )
        })
        .collect()
}

#[track_caller]
fn no_violations(server: &GitHubServer) {
    let v = server.violations();
    assert!(v.is_empty(), "requests GitHub would refuse: {v:#?}");
}

/// Delivers a signed `installation_repositories` event to the connection's webhook.
async fn deliver_installation_repositories(
    app: &TestApp,
    conn: &str,
    gh: &GitHubApp,
    delivery: &str,
    event: &Value,
) -> reqwest::Response {
    let body = serde_json::to_vec(event).unwrap();
    reqwest::Client::new()
        .post(format!("{}/webhooks/github/{conn}", app.base))
        .header("content-type", "application/json")
        .header("x-github-event", "installation_repositories")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sign(&gh.webhook_secret, &body))
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Row count of `table` matching `filter` (an SQL condition).
async fn count(app: &TestApp, table: &str, filter: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table} WHERE {filter}"))
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_check_names_what_the_app_and_its_installations_lack(pool: PgPool) {
    let server = GitHubServer::start().await;
    let gh = server.add_app("picket-check");
    // The App lacks checks: write and issue_comment.
    server.set_app_permissions(
        gh.id,
        &[
            ("metadata", "read"),
            ("contents", "read"),
            ("pull_requests", "write"),
        ],
        &["pull_request", "pull_request_review_comment"],
    );
    let acme = server.add_installation(gh.id, "acme");
    server.set_repository_selection(acme, "selected");
    let beta = server.add_installation(gh.id, "beta");
    server.suspend_installation(beta, true);
    // Gamma's owner has not accepted pull_requests: write.
    let gamma = server.add_installation(gh.id, "gamma");
    server.set_installation_permissions(
        gamma,
        &[
            ("metadata", "read"),
            ("contents", "read"),
            ("pull_requests", "read"),
            ("checks", "write"),
        ],
    );
    let app = TestApp::start(pool).await;
    let conn = connect(&app, &server, &gh, "acme").await;
    let path = format!("/api/v1/connections/{conn}/check");

    // A member may check too.
    let check = app.member().await.get(&path).await.expect(200);
    assert_eq!(check["identity"], "picket-check");
    assert_eq!(check["missing_permissions"], json!(["checks: write"]));
    assert_eq!(check["missing_events"], json!(["issue_comment"]));
    assert_eq!(check["ready"], false);
    let installations = check["installations"].as_array().unwrap();
    let summary: Vec<(String, String, Value, bool, Value)> = installations
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["account"].as_str().unwrap().to_owned(),
                i["repository_selection"].clone(),
                i["suspended"].as_bool().unwrap(),
                i["missing_permissions"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                acme.to_string(),
                "acme".to_owned(),
                json!("selected"),
                false,
                json!(["checks: write"])
            ),
            (
                beta.to_string(),
                "beta".to_owned(),
                json!("all"),
                true,
                json!(["checks: write"])
            ),
            (
                gamma.to_string(),
                "gamma".to_owned(),
                json!("all"),
                false,
                json!(["pull_requests: write"])
            ),
        ]
    );

    // Once the App asks for everything and subscribes to everything, acme is ready.
    server.set_app_permissions(
        gh.id,
        picket_test_support::github::PICKET_PERMISSIONS,
        picket_test_support::github::PICKET_EVENTS,
    );
    let check = app.admin().get(&path).await.expect(200);
    assert_eq!(check["missing_permissions"], json!([]));
    assert_eq!(check["missing_events"], json!([]));
    assert_eq!(check["installations"][0]["missing_permissions"], json!([]));
    assert_eq!(
        check["installations"][2]["missing_permissions"],
        json!(["pull_requests: write"])
    );
    assert_eq!(check["ready"], true);

    // A key GitHub does not know for this App id: GitHub's 401, as a provider problem (502).
    let stranger = server.add_app("stranger");
    let wrong = app
        .admin()
        .post(
            "/api/v1/connections",
            json!({
                "provider": "github", "name": "wrong-key", "base_url": server.api_url(),
                "credentials": {"app_id": gh.id, "private_key": stranger.private_key_pem,
                                "webhook_secret": gh.webhook_secret},
            }),
        )
        .await
        .expect(201);
    app.admin()
        .get(&format!("/api/v1/connections/{}/check", id_of(&wrong)))
        .await
        .problem(502, "provider_unauthorized");
    // Nothing to reach a provider with; not the org's; not a connection.
    let plain = app
        .admin()
        .post(
            "/api/v1/connections",
            json!({"provider": "git", "name": "plain"}),
        )
        .await
        .expect(201);
    app.admin()
        .get(&format!("/api/v1/connections/{}/check", id_of(&plain)))
        .await
        .problem(409, "no_provider_client");
    app.org("b")
        .await
        .admin
        .get(&path)
        .await
        .problem(404, "not_found");
    app.admin()
        .get(&format!(
            "/api/v1/connections/{}/check",
            uuid::Uuid::new_v4()
        ))
        .await
        .problem(404, "not_found");
    no_violations(&server);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn repositories_are_listed_across_installations_page_by_page(pool: PgPool) {
    let server = GitHubServer::start().await;
    let gh = server.add_app("picket-list");
    let acme = server.add_installation(gh.id, "acme");
    let beta = server.add_installation(gh.id, "beta");
    let a = repos(&server, acme, "acme", "svc", 3);
    let b = repos(&server, beta, "beta", "lib", 2);
    // A suspended installation gives no access: its repositories are not listed.
    let gone = server.add_installation(gh.id, "gone");
    repos(&server, gone, "gone", "old", 2);
    server.suspend_installation(gone, true);
    let app = TestApp::start(pool).await;
    let conn = connect(&app, &server, &gh, "acme").await;
    let added = app
        .admin()
        .post(
            &format!("/api/v1/connections/{conn}/repositories"),
            json!({"select": "chosen", "repository_ids": [b[1].to_string()]}),
        )
        .await
        .expect(201);
    let project = added["added"][0]["project_id"].clone();

    let member = app.member().await;
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    let mut seen: BTreeMap<String, (String, Value, Value)> = BTreeMap::new();
    loop {
        let query = match &cursor {
            Some(c) => format!("per_page=2&cursor={c}"),
            None => "per_page=2".to_owned(),
        };
        let page = member
            .get(&format!("/api/v1/connections/{conn}/repositories?{query}"))
            .await
            .expect(200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{page}");
        pages.push(items.len());
        for r in items {
            let id = r["provider_repo_id"].as_str().unwrap().to_owned();
            assert!(r["clone_url"].as_str().unwrap().ends_with(".git"));
            assert_eq!(r["default_branch"], "main");
            assert_eq!(r["private"], true);
            let previous = seen.insert(
                id,
                (
                    r["full_name"].as_str().unwrap().to_owned(),
                    r["installation_id"].clone(),
                    r["project_id"].clone(),
                ),
            );
            assert!(previous.is_none(), "listed twice: {r}");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    // acme's three on two pages, then beta's two.
    assert_eq!(pages, [2, 1, 2]);
    let expected: BTreeMap<String, (String, Value, Value)> = a
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, format!("acme/svc-{i:03}"), acme, None))
        .chain(b.iter().enumerate().map(|(i, id)| {
            let p = (i == 1).then(|| project.clone());
            (*id, format!("beta/lib-{i:03}"), beta, p)
        }))
        .map(|(id, name, inst, p)| {
            (
                id.to_string(),
                (name, json!(inst.to_string()), p.unwrap_or(Value::Null)),
            )
        })
        .collect();
    assert_eq!(seen, expected);

    // Cursors are the listing's own; per_page is 1-100.
    let base = format!("/api/v1/connections/{conn}/repositories");
    for query in ["cursor=r9.x.1", "cursor=p1.2", "cursor=nope"] {
        let resp = member.get(&format!("{base}?{query}")).await;
        resp.problem(400, "invalid_query");
        assert_eq!(resp.error_fields(), ["cursor"]);
    }
    for query in ["per_page=0", "per_page=101", "per_page=x", "limit=2"] {
        member
            .get(&format!("{base}?{query}"))
            .await
            .problem(400, "invalid_query");
    }
    no_violations(&server);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn chosen_repositories_become_projects_once_from_what_github_says(pool: PgPool) {
    let server = GitHubServer::start().await;
    let gh = server.add_app("picket-chosen");
    let acme = server.add_installation(gh.id, "acme");
    let beta = server.add_installation(gh.id, "beta");
    let a = repos(&server, acme, "acme", "svc", 3);
    let b = repos(&server, beta, "beta", "lib", 2);
    server.update_repo(b[0], true, false, "trunk");
    let app = TestApp::start(pool).await;
    let conn = connect(&app, &server, &gh, "acme").await;
    let path = format!("/api/v1/connections/{conn}/repositories");
    let admin = app.admin();

    // Only ids are taken from the client, and they must be visible to the App.
    for (body, field) in [
        (json!({"select": "chosen"}), "repository_ids"),
        (
            json!({"select": "chosen", "repository_ids": []}),
            "repository_ids",
        ),
        (
            json!({"select": "all", "repository_ids": ["1"]}),
            "repository_ids",
        ),
        (
            json!({"select": "chosen", "repository_ids": [a[0].to_string()], "full_name": "x/y"}),
            "full_name",
        ),
        (json!({"select": "some"}), "select"),
    ] {
        let resp = admin.post(&path, body.clone()).await;
        resp.problem(422, "invalid_body");
        assert_eq!(resp.error_fields(), [field], "{body}");
    }
    let hidden = admin
        .post(
            &path,
            json!({"select": "chosen", "repository_ids": [a[0].to_string(), "999999", a[1].to_string()]}),
        )
        .await;
    hidden.problem(422, "repository_not_visible");
    assert_eq!(hidden.error_fields(), ["repository_ids[1]"]);
    app.member()
        .await
        .post(&path, json!({"select": "all"}))
        .await
        .problem(403, "forbidden");
    assert_eq!(app.count("projects").await, 0);
    assert_eq!(app.count("scans").await, 0);

    // Two repositories of two installations, in the order asked (a repeat counts once).
    let chosen = admin
        .post(
            &path,
            json!({"select": "chosen",
                   "repository_ids": [b[0].to_string(), a[2].to_string(), b[0].to_string()]}),
        )
        .await
        .expect(201);
    let added = chosen["added"].as_array().unwrap();
    assert_eq!(added.len(), 2, "{chosen}");
    assert_eq!(added[0]["full_name"], "beta/lib-000");
    assert_eq!(added[0]["installation_id"], beta.to_string());
    assert_eq!(added[1]["full_name"], "acme/svc-002");
    assert_eq!(added[1]["installation_id"], acme.to_string());
    assert_eq!(chosen["already_present"], json!([]));
    assert_eq!(chosen["follow_installations"], false);
    for item in added {
        let project = admin
            .get(&format!(
                "/api/v1/projects/{}",
                item["project_id"].as_str().unwrap()
            ))
            .await
            .expect(200);
        assert_eq!(project["provider_repo_id"], item["provider_repo_id"]);
        assert_eq!(project["provider_installation_id"], item["installation_id"]);
        assert_eq!(project["connection_id"], conn.as_str());
        // The initial full scan, queued, is the project's latest.
        assert_eq!(project["last_scan"]["id"], item["initial_scan_id"]);
        assert_eq!(project["last_scan"]["kind"], "full");
        assert_eq!(project["last_scan"]["state"], "queued");
        assert!(project["weekly_scan"]["weekday"].is_string());
    }
    // What GitHub said, not what a client could have: branch and clone URL.
    let lib = admin
        .get(&format!(
            "/api/v1/projects/{}",
            added[0]["project_id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_eq!(lib["default_branch"], "trunk");
    assert_eq!(lib["clone_url"], "https://github.invalid/beta/lib-000.git");
    assert_eq!(count(&app, "scans", "trigger = 'initial'").await, 2);

    // Again with one more: only the new one is added.
    let again = admin
        .post(
            &path,
            json!({"select": "chosen", "repository_ids": [a[2].to_string(), a[0].to_string()]}),
        )
        .await
        .expect(201);
    assert_eq!(again["added"].as_array().unwrap().len(), 1);
    assert_eq!(again["added"][0]["full_name"], "acme/svc-000");
    assert_eq!(again["already_present"][0]["full_name"], "acme/svc-002");
    assert_eq!(
        again["already_present"][0]["project_id"],
        added[1]["project_id"]
    );
    assert_eq!(again["already_present"][0]["initial_scan_id"], Value::Null);
    let nothing = admin
        .post(
            &path,
            json!({"select": "chosen", "repository_ids": [a[0].to_string()]}),
        )
        .await
        .expect(200);
    assert_eq!(nothing["added"], json!([]));
    assert_eq!(app.count("projects").await, 3);
    assert_eq!(app.count("scans").await, 3);
    no_violations(&server);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn all_repositories_are_added_in_one_call_once_and_not_at_all_on_a_provider_error(
    pool: PgPool,
) {
    let server = GitHubServer::start().await;
    let gh = server.add_app("picket-all");
    let acme = server.add_installation(gh.id, "acme");
    let beta = server.add_installation(gh.id, "beta");
    let a = repos(&server, acme, "acme", "svc", 200);
    let b = repos(&server, beta, "beta", "lib", 50);
    let app = TestApp::start(pool).await;
    let conn = connect(&app, &server, &gh, "acme").await;
    let path = format!("/api/v1/connections/{conn}/repositories");

    // GitHub stops answering after acme's two pages (beta's token cannot be minted): nothing is
    // written.
    server.inject(Fault {
        path_contains: format!("/app/installations/{beta}/access_tokens"),
        kind: FaultKind::PrimaryExhausted {
            reset_in_secs: 3600,
        },
        times: 1,
    });
    app.admin()
        .post(&path, json!({"select": "all"}))
        .await
        .problem(503, "provider_rate_limited");
    let listed_before_the_fault = server
        .requests()
        .iter()
        .filter(|r| r.path == "/installation/repositories" && r.status == 200)
        .count();
    assert_eq!(listed_before_the_fault, 2, "acme's two pages were read");
    assert_eq!(app.count("projects").await, 0);
    assert_eq!(app.count("scans").await, 0);

    let calls_before = server.requests().len();
    let all = app
        .admin()
        .post(&path, json!({"select": "all"}))
        .await
        .expect(201);
    // The installations once, then 100 repositories a page: acme's two, beta's one (and beta's
    // token, which the fault kept from being minted before).
    let calls: Vec<String> = server.requests()[calls_before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        calls,
        [
            "/app/installations".to_owned(),
            "/installation/repositories".to_owned(),
            "/installation/repositories".to_owned(),
            format!("/app/installations/{beta}/access_tokens"),
            "/installation/repositories".to_owned(),
        ]
    );
    let added = all["added"].as_array().unwrap();
    assert_eq!(added.len(), 250);
    let ids: BTreeSet<String> = added
        .iter()
        .map(|r| r["provider_repo_id"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = a.iter().chain(&b).map(u64::to_string).collect();
    assert_eq!(ids, expected);
    assert!(added.iter().all(|r| r["initial_scan_id"].is_string()));
    assert_eq!(all["already_present"], json!([]));
    assert_eq!(all["follow_installations"], false);
    assert_eq!(app.count("projects").await, 250);
    assert_eq!(
        count(
            &app,
            "scans",
            "trigger = 'initial' AND kind = 'full' AND state = 'queued'"
        )
        .await,
        250
    );
    assert_eq!(
        count(
            &app,
            "projects",
            &format!("provider_installation_id = '{beta}' AND full_name LIKE 'beta/%'")
        )
        .await,
        50
    );

    // Again: nothing new.
    let again = app
        .admin()
        .post(&path, json!({"select": "all"}))
        .await
        .expect(200);
    assert_eq!(again["added"], json!([]));
    assert_eq!(again["already_present"].as_array().unwrap().len(), 250);
    assert_eq!(app.count("projects").await, 250);
    assert_eq!(app.count("scans").await, 250);
    no_violations(&server);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn all_and_future_adds_what_an_installation_gains_later(pool: PgPool) {
    let server = GitHubServer::start().await;
    let gh = server.add_app("picket-follow");
    let acme = server.add_installation(gh.id, "acme");
    repos(&server, acme, "acme", "svc", 3);
    let app = TestApp::start(pool).await;
    let conn = connect(&app, &server, &gh, "acme").await;
    // A project the installation had lost (a missed webhook) is enabled again: the listing shows
    // the installation sees it.
    let first = app
        .admin()
        .post(
            &format!("/api/v1/connections/{conn}/repositories"),
            json!({"select": "all"}),
        )
        .await
        .expect(201);
    let lost = first["added"][0]["project_id"].as_str().unwrap().to_owned();
    sqlx::query(
        "UPDATE projects SET disabled_reason = 'repository_removed', disabled_at = now() WHERE id = $1",
    )
    .bind(lost.parse::<uuid::Uuid>().unwrap())
    .execute(&app.pool)
    .await
    .unwrap();

    let follow = app
        .admin()
        .post(
            &format!("/api/v1/connections/{conn}/repositories"),
            json!({"select": "all_and_future"}),
        )
        .await
        .expect(200);
    assert_eq!(follow["follow_installations"], true);
    assert_eq!(follow["enabled_again"], json!([lost]));
    assert_eq!(follow["already_present"].as_array().unwrap().len(), 3);
    let connection = app
        .admin()
        .get(&format!("/api/v1/connections/{conn}"))
        .await
        .expect(200);
    assert_eq!(connection["follow_installations"], true);

    // GitHub adds a repository to the installation and says so.
    let new_repo = server.add_repo(
        acme,
        "acme/fresh",
        "main",
        "https://github.invalid/acme/fresh.git",
    );
    let mut added = example("installation_repositories", Some("added"));
    added["installation"]["id"] = json!(acme);
    added["repository_selection"] = json!("selected");
    added["repositories_added"] = json!([{"id": new_repo, "node_id": "R_x", "name": "fresh",
        "full_name": "acme/fresh", "private": true}]);
    added["repositories_removed"] = json!([]);
    let resp = deliver_installation_repositories(&app, &conn, &gh, "onboarding-1", &added).await;
    assert_eq!(resp.status().as_u16(), 202);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["outcome"], "projects_added", "{answer}");
    let project = answer["project_ids"][0].as_str().unwrap();
    let project = app
        .admin()
        .get(&format!("/api/v1/projects/{project}"))
        .await
        .expect(200);
    assert_eq!(project["full_name"], "acme/fresh");
    assert_eq!(project["provider_repo_id"], new_repo.to_string());
    assert_eq!(project["provider_installation_id"], acme.to_string());
    assert_eq!(project["last_scan"]["kind"], "full");
    assert_eq!(app.count("projects").await, 4);
    // And the listing shows it as a project.
    let page = app
        .admin()
        .get(&format!(
            "/api/v1/connections/{conn}/repositories?per_page=100"
        ))
        .await
        .expect(200);
    let fresh = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["full_name"] == "acme/fresh")
        .unwrap();
    assert_eq!(fresh["project_id"], project["id"]);
    no_violations(&server);
}

/// A callback as GitHub's redirect makes the browser load it: no token.
async fn callback(app: &TestApp, code: &str, state: &str) -> Resp {
    app.anonymous()
        .get(&format!(
            "/api/v1/connections/github/manifest/callback?code={code}&state={state}"
        ))
        .await
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_manifest_flow_makes_a_working_connection_once(pool: PgPool) {
    let server = GitHubServer::start().await;
    let app = TestApp::start_with(
        pool,
        ApiConfig {
            public_url: Some(format!("{PUBLIC_URL}/")),
            ..ApiConfig::default()
        },
    )
    .await;
    let mut answers: Vec<String> = Vec::new();
    let start = |body: Value| {
        let admin = app.admin();
        async move {
            admin
                .post("/api/v1/connections/github/manifest", body)
                .await
        }
    };

    let resp =
        start(json!({"name": "picket-acme", "organization": "acme", "base_url": server.api_url()}))
            .await;
    let started = resp.expect(201);
    answers.push(resp.text.clone());
    let state = started["state"].as_str().unwrap().to_owned();
    let connection_id = started["connection_id"].as_str().unwrap().to_owned();
    assert!(state.len() == 64 && state.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        started["post_url"],
        format!(
            "{}/organizations/acme/settings/apps/new?state={state}",
            server.api_url()
        )
    );
    let manifest = &started["manifest"];
    assert_eq!(manifest["name"], "picket-acme");
    assert_eq!(manifest["url"], PUBLIC_URL);
    assert_eq!(manifest["public"], false);
    assert_eq!(
        manifest["hook_attributes"],
        json!({"url": format!("{PUBLIC_URL}/webhooks/github/{connection_id}"), "active": true})
    );
    assert_eq!(
        manifest["redirect_url"],
        format!("{PUBLIC_URL}/api/v1/connections/github/manifest/callback")
    );
    assert_eq!(
        manifest["default_permissions"],
        json!({"metadata": "read", "contents": "read", "pull_requests": "write", "checks": "write"})
    );
    assert_eq!(
        manifest["default_events"],
        json!([
            "pull_request",
            "issue_comment",
            "pull_request_review_comment"
        ])
    );
    // Stored hashed, with the org.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT state_sha256 FROM github_manifest_states")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, picket_db::manifests::hash(&state));
    // A personal account's page; the default name.
    let personal = start(json!({})).await.expect(201);
    assert_eq!(
        personal["post_url"],
        format!(
            "https://github.com/settings/apps/new?state={}",
            personal["state"].as_str().unwrap()
        )
    );
    assert!(personal["manifest"]["name"]
        .as_str()
        .unwrap()
        .starts_with("picket-"));
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(35)}), "name"),
        (json!({"organization": "-acme"}), "organization"),
        (json!({"base_url": "ftp://ghe.example"}), "base_url"),
        (json!({"base_url": "http://"}), "base_url"),
        (json!({"secret": "x"}), "secret"),
    ] {
        let resp = start(body.clone()).await;
        resp.problem(422, "invalid_body");
        assert_eq!(resp.error_fields(), [field], "{body}");
    }
    app.member()
        .await
        .post("/api/v1/connections/github/manifest", json!({}))
        .await
        .problem(403, "forbidden");

    // GitHub created the App and sends the browser back, twice at once (a double click).
    server.add_manifest_code("code-acme-1", "picket-acme");
    let connections_before = app.count("vcs_connections").await;
    let (one, two) = tokio::join!(
        callback(&app, "code-acme-1", &state),
        callback(&app, "code-acme-1", &state)
    );
    let (done, refused) = if one.status == 201 {
        (one, two)
    } else {
        (two, one)
    };
    refused.problem(409, "manifest_state_used");
    let done_json = done.expect(201);
    answers.push(done.text.clone());
    answers.push(refused.text.clone());
    assert_eq!(app.count("vcs_connections").await, connections_before + 1);
    let connection = &done_json["connection"];
    assert_eq!(connection["id"], connection_id.as_str());
    assert_eq!(connection["name"], "picket-acme");
    assert_eq!(connection["provider"], "github");
    assert_eq!(connection["base_url"], server.api_url());
    assert_eq!(connection["has_credentials"], true);
    assert_eq!(connection["follow_installations"], false);
    assert_eq!(
        connection["webhook_url"],
        format!("{PUBLIC_URL}/webhooks/github/{connection_id}")
    );
    assert_eq!(done_json["app_slug"], "picket-acme");
    assert_eq!(
        done_json["install_url"],
        "https://github.com/apps/picket-acme/installations/new"
    );
    let app_id = done_json["app_id"].as_u64().unwrap();

    // The connection works: the check authenticates as the new App.
    let resp = app
        .admin()
        .get(&format!("/api/v1/connections/{connection_id}/check"))
        .await;
    let check = resp.expect(200);
    answers.push(resp.text.clone());
    assert_eq!(check["identity"], "picket-acme");
    assert_eq!(check["missing_permissions"], json!([]));
    assert_eq!(check["ready"], false, "not installed yet");
    server.add_installation(app_id, "acme");
    let check = app
        .admin()
        .get(&format!("/api/v1/connections/{connection_id}/check"))
        .await
        .expect(200);
    assert_eq!(check["ready"], true);

    // Its webhook secret is the one GitHub made: a ping signed with it is taken.
    let conversion = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/app-manifests/code-acme-1/conversions" && r.status == 201)
        .expect("the code was converted");
    let created = conversion.response.expect("the conversion's answer");
    let pem = created["pem"].as_str().unwrap().to_owned();
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    let client_secret = created["client_secret"].as_str().unwrap().to_owned();
    let ping =
        serde_json::to_vec(&json!({"zen": "Keep it logically awesome.", "hook_id": 1})).unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/webhooks/github/{connection_id}", app.base))
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "manifest-ping")
        .header("x-hub-signature-256", sign(&secret, &ping))
        .body(ping)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // Used, unknown, malformed: refused, nothing written.
    let before = app.counts().await;
    for (resp, status, code) in [
        (
            callback(&app, "code-acme-1", &state).await,
            409,
            "manifest_state_used",
        ),
        (
            callback(&app, "code-acme-1", &"ab".repeat(32)).await,
            404,
            "manifest_state_unknown",
        ),
        (
            callback(&app, "code-acme-1", "not-a-state").await,
            400,
            "invalid_query",
        ),
        (
            app.anonymous()
                .get(&format!(
                    "/api/v1/connections/github/manifest/callback?state={state}"
                ))
                .await,
            400,
            "invalid_query",
        ),
    ] {
        resp.problem(status, code);
        answers.push(resp.text.clone());
    }
    // Expired (they last an hour).
    let old = start(json!({"name": "picket-old", "base_url": server.api_url()}))
        .await
        .expect(201);
    let old_state = old["state"].as_str().unwrap();
    sqlx::query(
        "UPDATE github_manifest_states SET created_at = now() - interval '2 hours', \
         expires_at = now() - interval '1 hour' WHERE state_sha256 = $1",
    )
    .bind(&picket_db::manifests::hash(old_state)[..])
    .execute(&app.pool)
    .await
    .unwrap();
    server.add_manifest_code("code-old", "picket-old");
    callback(&app, "code-old", old_state)
        .await
        .problem(410, "manifest_state_expired");
    // A code GitHub does not know uses the state up.
    let stale = start(json!({"name": "picket-stale", "base_url": server.api_url()}))
        .await
        .expect(201);
    let stale_state = stale["state"].as_str().unwrap();
    callback(&app, "code-never-issued", stale_state)
        .await
        .problem(422, "manifest_code_refused");
    server.add_manifest_code("code-late", "picket-stale");
    callback(&app, "code-late", stale_state)
        .await
        .problem(409, "manifest_state_used");
    let mut after = app.counts().await;
    after.retain(|(t, _)| *t != "vcs_connections");
    let mut before_no_conn = before.clone();
    before_no_conn.retain(|(t, _)| *t != "vcs_connections");
    assert_eq!(after, before_no_conn);
    assert_eq!(app.count("vcs_connections").await, connections_before + 1);

    // The App's secrets are in no answer and no log line.
    let listed = app.admin().get("/api/v1/connections").await;
    answers.push(listed.text.clone());
    let logs = app.logs();
    for secret in [
        pem.as_str(),
        secret.as_str(),
        client_secret.as_str(),
        "PRIVATE KEY",
    ] {
        for text in answers.iter().chain([&logs]) {
            assert!(!text.contains(secret), "a secret was shown: {text}");
        }
    }
    // The state itself is not logged either.
    assert!(!logs.contains(&state));
    no_violations(&server);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_manifest_flow_needs_a_public_url(pool: PgPool) {
    let app = TestApp::start(pool).await;
    app.admin()
        .post(
            "/api/v1/connections/github/manifest",
            json!({"organization": "acme"}),
        )
        .await
        .problem(409, "public_url_missing");
    assert_eq!(app.count("github_manifest_states").await, 0);
}

/// The inventory's repositories, as (provider id, full name), sorted.
async fn inventory(app: &TestApp, conn: &str) -> Vec<(String, String)> {
    sqlx::query_as::<_, (String, String)>(
        "SELECT provider_repo_id, full_name FROM connection_repositories
         WHERE connection_id = $1 ORDER BY provider_repo_id",
    )
    .bind(conn.parse::<uuid::Uuid>().unwrap())
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn what_a_connection_sees_is_kept_and_follows_the_provider(pool: PgPool) {
    let server = GitHubServer::start().await;
    let gh = server.add_app("picket-inventory");
    let acme = server.add_installation(gh.id, "acme");
    let ids = repos(&server, acme, "acme", "svc", 3);
    let app = TestApp::start(pool).await;
    let conn = connect(&app, &server, &gh, "acme").await;
    let refresh = format!("/api/v1/connections/{conn}/repositories/refresh");
    assert!(inventory(&app, &conn).await.is_empty());

    // A member may list it; the answer counts what is not a project yet.
    let member = app.member().await;
    let listed = member.post(&refresh, json!(null)).await.expect(200);
    assert_eq!(
        (listed["listed"].clone(), listed["not_added"].clone()),
        (json!(3), json!(3))
    );
    let expected: Vec<(String, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.to_string(), format!("acme/svc-{i:03}")))
        .collect();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(inventory(&app, &conn).await, sorted);
    app.admin()
        .post(
            &format!("/api/v1/connections/{conn}/repositories"),
            json!({"select": "chosen", "repository_ids": [ids[0].to_string()]}),
        )
        .await
        .expect(201);
    let listed = member.post(&refresh, json!(null)).await.expect(200);
    assert_eq!(listed["not_added"], 2);

    // GitHub says an installation lost one: it leaves the inventory at once.
    let mut removed = example("installation_repositories", Some("removed"));
    removed["installation"]["id"] = json!(acme);
    removed["repository_selection"] = json!("selected");
    removed["repositories_added"] = json!([]);
    removed["repositories_removed"] = json!([{"id": ids[2], "node_id": "R_y", "name": "svc-002",
        "full_name": "acme/svc-002", "private": true}]);
    let resp = deliver_installation_repositories(&app, &conn, &gh, "inventory-1", &removed).await;
    assert_eq!(resp.status().as_u16(), 202);
    let left: Vec<String> = inventory(&app, &conn)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(!left.contains(&ids[2].to_string()), "{left:?}");
    assert_eq!(left.len(), 2);

    // A provider error leaves the inventory as it was.
    let before = inventory(&app, &conn).await;
    server.rename_repo(ids[1], "acme/renamed");
    server.inject(Fault {
        path_contains: "/installation/repositories".into(),
        kind: FaultKind::ServerError { status: 502 },
        times: 100,
    });
    let resp = member.post(&refresh, json!(null)).await;
    assert!(resp.status == 502 || resp.status == 503, "{}", resp.text);
    assert_eq!(inventory(&app, &conn).await, before);
    no_violations(&server);
}
