//! Azure DevOps connections and service hooks: `POST /api/v1/connections` with a personal access
//! token (the server draws the service hooks' password and shows it once), and
//! `POST /webhooks/azure_devops/{connection}` over real HTTP against a real database, with
//! deliveries built from the payloads written from Azure DevOps's documentation (picket-vcs's
//! fixtures) and authenticated as a Web Hooks subscription does (Basic authentication).

use crate::webhooks::Hook;
use base64::Engine;
use picket_test_support::azure::AzureServer;
use picket_tests::{id_of, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

const PAT: &str = "azdopat0123456789abcdefghijklmnopqrstuvwxyz0123";
const ORG_URL: &str = "https://dev.azure.com/acme";
const PROJECT: &str = "Platform";
/// The fixtures' repository and pull request.
const REPO_ID: &str = "7c4d2e91-3b6a-4f58-9e0d-1a2b3c4d5e6f";
const PR: u64 = 42;

fn fixture(name: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/vcs/tests/vcs/fixtures/azure/"
    );
    let text = std::fs::read_to_string(format!("{path}{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl Hook {
    /// Delivers `payload` as a Web Hooks subscription does, with Basic authentication as user
    /// `picket` and `password` (none: without authentication).
    async fn azure(&self, payload: &Value, password: Option<&str>) -> crate::webhooks::Answer {
        let headers: Vec<(&str, String)> = password
            .map(|p| ("authorization", basic("picket", p)))
            .into_iter()
            .collect();
        self.raw(&headers, serde_json::to_vec(payload).unwrap())
            .await
    }
}

/// An Azure DevOps connection at `base_url` holding `pat`, with the fixtures' repository (or
/// `repo_id`) added as a project; its service hooks' password.
async fn connection(
    app: &TestApp,
    base_url: &str,
    pat: &str,
    repo_id: &str,
) -> (Value, Hook, String) {
    let conn = app
        .admin()
        .post(
            "/api/v1/connections",
            json!({
                "provider": "azure_devops", "name": "azure", "base_url": base_url,
                "credentials": {"pat": pat, "project": PROJECT},
            }),
        )
        .await
        .expect(201);
    let password = conn["webhook_password"].as_str().unwrap().to_owned();
    app.admin()
        .post(
            "/api/v1/projects",
            json!({"projects": [{
                "connection_id": id_of(&conn), "provider_repo_id": repo_id,
                "full_name": format!("{PROJECT}/web"),
                "clone_url": "https://dev.azure.com/acme/Platform/_git/web",
                "default_branch": "main",
            }]}),
        )
        .await
        .expect(201);
    let hook = Hook {
        http: reqwest::Client::new(),
        url: format!("{}/webhooks/azure_devops/{}", app.base, id_of(&conn)),
        secret: String::new(),
    };
    (conn, hook, password)
}

/// A pull request event: the fixture `name` with `id`, head `head`, raised at second `at`.
fn event(name: &str, id: &str, head: &str, at: u32) -> Value {
    let mut p = fixture(name);
    p["id"] = json!(id);
    p["resource"]["lastMergeSourceCommit"]["commitId"] = json!(head);
    p["createdDate"] = json!(format!("2026-11-30T09:40:{at:02}Z"));
    p
}

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(20)
}

async fn diff_scans(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM scans WHERE kind = 'diff'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn an_azure_connection_is_checked_and_its_password_shown_once(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let create = |base_url: &str, credentials: Value| {
        let admin = app.admin();
        let body = json!({"provider": "azure_devops", "name": "az", "base_url": base_url,
                          "credentials": credentials});
        async move { admin.post("/api/v1/connections", body).await }
    };
    let good = json!({"pat": PAT, "project": PROJECT});
    for (base_url, credentials, field) in [
        ("", good.clone(), "base_url"),
        ("https://dev.azure.com", good.clone(), "base_url"),
        (
            "https://dev.azure.com/acme/Platform",
            good.clone(),
            "base_url",
        ),
        ("http://dev.azure.com/acme", good.clone(), "base_url"),
        ("https://dev.azure.com/-acme", good.clone(), "base_url"),
        (
            "https://acme.visualstudio.com/Platform",
            good.clone(),
            "base_url",
        ),
        (
            ORG_URL,
            json!({"pat": "short", "project": PROJECT}),
            "credentials.pat",
        ),
        (
            ORG_URL,
            json!({"pat": "has a space in it", "project": PROJECT}),
            "credentials.pat",
        ),
        (
            ORG_URL,
            json!({"pat": PAT, "project": "Plat/form"}),
            "credentials.project",
        ),
        (
            ORG_URL,
            json!({"pat": PAT, "project": "_hidden"}),
            "credentials.project",
        ),
        (
            ORG_URL,
            json!({"pat": PAT, "project": ""}),
            "credentials.project",
        ),
        // The password is the server's to draw.
        (
            ORG_URL,
            json!({"pat": PAT, "project": PROJECT, "webhook_secret": "0123456789abcdef"}),
            "credentials",
        ),
        (ORG_URL, json!({"pat": PAT}), "credentials"),
    ] {
        let refused = create(base_url, credentials.clone()).await.expect(422);
        assert_eq!(
            refused["errors"][0]["field"], field,
            "{base_url} {credentials}: {refused}"
        );
        assert!(!refused.to_string().contains(PAT), "{refused}");
    }
    assert_eq!(app.count("vcs_connections").await, 0);

    let created = create(&format!("{ORG_URL}/"), good.clone())
        .await
        .expect(201);
    assert_eq!(created["base_url"], ORG_URL);
    assert_eq!(
        created["webhook_url"],
        format!("/webhooks/azure_devops/{}", id_of(&created))
    );
    assert_eq!(created["webhook_username"], "picket");
    let password = created["webhook_password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 43, "256 bits, URL-safe base64");
    // Shown once: never again, nor the token.
    let one = app
        .admin()
        .get(&format!("/api/v1/connections/{}", id_of(&created)))
        .await
        .expect(200);
    assert!(one.get("webhook_password").is_none(), "{one}");
    assert_eq!(one["webhook_username"], "picket");
    let listed = app.admin().get("/api/v1/connections").await.expect(200);
    for text in [one.to_string(), listed.to_string(), app.logs()] {
        assert!(!text.contains(PAT) && !text.contains(&password), "{text}");
    }
    assert!(!created.to_string().contains(PAT));
    // Only the password's hash is stored.
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT credentials FROM vcs_connections WHERE id = $1")
            .bind(id_of(&created).parse::<uuid::Uuid>().unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let opened = app
        .cipher()
        .open(
            &sealed,
            id_of(&created).parse::<uuid::Uuid>().unwrap().as_bytes(),
        )
        .unwrap();
    let stored: Value =
        serde_json::from_slice(secrecy::ExposeSecret::expose_secret(&opened)).unwrap();
    assert_eq!(
        stored["webhook_password_hash"],
        picket_vcs::azure::webhook::password_hash(&password)
    );
    assert!(!stored.to_string().contains(&password));
    // The organization's other address.
    let old_style = app
        .admin()
        .post(
            "/api/v1/connections",
            json!({"provider": "azure_devops", "name": "az-vs",
                   "base_url": "https://acme.visualstudio.com", "credentials": good}),
        )
        .await
        .expect(201);
    assert_ne!(old_style["webhook_password"].as_str().unwrap(), password);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn pull_request_events_queue_scans_of_the_merge_ref(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (_conn, hook, password) = connection(&app, ORG_URL, PAT, REPO_ID).await;

    let opened = hook
        .azure(
            &event("pullrequest_created.json", "e-open", &sha(1), 10),
            Some(&password),
        )
        .await;
    let first = opened.outcome(202, "scan_queued").clone();
    let (git_ref, commit): (String, String) =
        sqlx::query_as("SELECT git_ref, commit_sha FROM scans WHERE id = $1")
            .bind(
                first["scan_id"]
                    .as_str()
                    .unwrap()
                    .parse::<uuid::Uuid>()
                    .unwrap(),
            )
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(git_ref, format!("refs/pull/{PR}/merge"));
    assert_eq!(commit, sha(1));
    // A retry carries the same event id.
    hook.azure(
        &event("pullrequest_created.json", "e-open", &sha(1), 10),
        Some(&password),
    )
    .await
    .outcome(200, "duplicate");
    // A reviewer added: `git.pullrequest.updated` with the same source commit.
    let mut reviewed = event("pullrequest_updated.json", "e-review", &sha(1), 20);
    reviewed["resource"]["reviewers"] = json!([{"displayName": "Omar", "vote": 10}]);
    let same = hook.azure(&reviewed, Some(&password)).await;
    assert_eq!(
        same.outcome(200, "duplicate_head")["scan_id"],
        first["scan_id"]
    );
    assert_eq!(
        diff_scans(&app).await,
        1,
        "a reviewer change queues nothing"
    );
    // A push: the first head's scan is superseded.
    let pushed = hook
        .azure(
            &event("pullrequest_updated.json", "e-push", &sha(2), 30),
            Some(&password),
        )
        .await;
    assert_eq!(
        pushed.outcome(202, "scan_queued")["superseded_scan_ids"],
        json!([first["scan_id"]])
    );
    // Completed: not acted on; another event: ignored; both 200.
    let mut completed = event("pullrequest_updated.json", "e-done", &sha(2), 40);
    completed["resource"]["status"] = json!("completed");
    hook.azure(&completed, Some(&password))
        .await
        .outcome(200, "closed_pull_request");
    hook.azure(
        &json!({"id": "e-build", "eventType": "build.complete", "resource": {}}),
        Some(&password),
    )
    .await
    .outcome(200, "event_not_handled");
    let logged: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT delivery_id, event, outcome FROM webhook_deliveries
         ORDER BY received_at, delivery_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        logged,
        [
            ("e-open", "git.pullrequest.created", "scan_queued"),
            ("e-review", "git.pullrequest.updated", "duplicate_head"),
            ("e-push", "git.pullrequest.updated", "scan_queued"),
            ("e-done", "git.pullrequest.updated", "closed_pull_request"),
            ("e-build", "build.complete", "event_not_handled"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_wrong_password_is_401_and_an_unreadable_authentic_delivery_is_still_200(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (conn, hook, password) = connection(&app, ORG_URL, PAT, REPO_ID).await;
    let payload = event("pullrequest_created.json", "u1", &sha(1), 10);
    let before = app.counts().await;
    hook.azure(&payload, None)
        .await
        .problem(401, "signature_missing");
    hook.azure(&payload, Some("not-the-password-0123456789abcdefghijklmno"))
        .await
        .problem(401, "signature_mismatch");
    hook.raw(
        &[("authorization", basic("someone", &password))],
        serde_json::to_vec(&payload).unwrap(),
    )
    .await
    .problem(401, "signature_mismatch");
    hook.raw(
        &[("authorization", format!("Bearer {password}"))],
        serde_json::to_vec(&payload).unwrap(),
    )
    .await
    .problem(401, "signature_malformed");
    // The Bitbucket route does not take an Azure DevOps connection.
    let bitbucket = Hook {
        url: format!("{}/webhooks/bitbucket/{}", app.base, id_of(&conn)),
        ..hook.clone()
    };
    bitbucket
        .raw(
            &[
                ("x-event-key", "pullrequest:created".to_owned()),
                ("x-request-uuid", "u".to_owned()),
                ("x-hub-signature", crate::webhooks::sign(&password, b"{}")),
            ],
            b"{}".to_vec(),
        )
        .await
        .problem(404, "not_found");
    assert_eq!(
        app.counts().await,
        before,
        "a refused delivery writes nothing"
    );

    // Authentic, but unreadable: logged (without an id: it is in the body) and answered 200,
    // so that Azure neither disables the subscription nor puts it on probation.
    hook.raw(
        &[("authorization", basic("picket", &password))],
        b"not json".to_vec(),
    )
    .await
    .outcome(200, "body_not_json");
    let mut broken = payload.clone();
    broken["resource"]
        .as_object_mut()
        .unwrap()
        .remove("pullRequestId");
    hook.azure(&broken, Some(&password))
        .await
        .outcome(200, "payload_invalid");
    let logged: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT delivery_id, outcome FROM webhook_deliveries ORDER BY outcome")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        logged,
        [(None, "body_not_json"), (None, "payload_invalid")]
            .map(|(a, b): (Option<String>, &str)| (a, b.to_owned()))
    );
    assert_eq!(diff_scans(&app).await, 0);
    assert!(!app.logs().contains(&password) && !app.logs().contains(PAT));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_reply_is_queued_for_triage_and_a_rotated_password_overlaps(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (conn, hook, password) = connection(&app, ORG_URL, PAT, REPO_ID).await;

    let mut comment = fixture("pullrequest_comment.json");
    comment["resource"]["comment"]["content"] = json!("/fp the input is a constant");
    hook.azure(&comment, Some(&password))
        .await
        .outcome(202, "triage_queued");
    let (comment_id, parent, author): (String, String, String) =
        sqlx::query_as("SELECT comment_id, parent_comment_id, author_login FROM triage_requests")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (comment_id.as_str(), parent.as_str(), author.as_str()),
        ("7/2", "7", "jane@acme.example")
    );
    let mut chatter = comment.clone();
    chatter["id"] = json!("chatter");
    chatter["resource"]["comment"]["content"] = json!("looks good");
    hook.azure(&chatter, Some(&password))
        .await
        .outcome(200, "not_a_command");

    // A given password is refused: the server draws it.
    let rotate = format!("/api/v1/connections/{}/webhook-secret/rotate", id_of(&conn));
    let refused = app
        .admin()
        .post(
            &rotate,
            json!({"webhook_secret": "a-password-of-my-own-choosing-0123"}),
        )
        .await
        .expect(422);
    assert_eq!(refused["errors"][0]["field"], "webhook_secret", "{refused}");
    let rotated = app.admin().post(&rotate, json!({})).await.expect(200);
    let new = rotated["webhook_secret"].as_str().unwrap().to_owned();
    assert_eq!(new.len(), 43);
    assert_ne!(new, password);
    assert!(rotated["previous_valid_until"].is_string());
    // The new password works at once, the old one during the overlap.
    hook.azure(
        &event("pullrequest_created.json", "r1", &sha(1), 10),
        Some(&new),
    )
    .await
    .outcome(202, "scan_queued");
    hook.azure(
        &event("pullrequest_updated.json", "r2", &sha(2), 20),
        Some(&password),
    )
    .await
    .outcome(202, "scan_queued");
    assert!(!app.logs().contains(&new));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn subscriptions_are_installed_with_a_new_password(pool: PgPool) {
    let server = AzureServer::start("acme", PROJECT).await;
    let pat = server.add_pat("picket@acme.example");
    let repo = server.add_repo("web", Some("main"));
    let app = TestApp::start_with(
        pool,
        picket_api::ApiConfig {
            public_url: Some("https://picket.example.test".into()),
            ..Default::default()
        },
    )
    .await;
    let (conn, hook, first) = connection(&app, &server.api_url(), &pat, &repo).await;
    let path = format!("/api/v1/connections/{}/webhooks", id_of(&conn));
    let installed = app.admin().post(&path, json!({})).await.expect(200);
    let url = format!(
        "https://picket.example.test/webhooks/azure_devops/{}",
        id_of(&conn)
    );
    assert_eq!(installed["webhook_url"], url);
    assert_eq!(installed["hook_ids"].as_array().unwrap().len(), 3);
    let password = installed["webhook_password"].as_str().unwrap().to_owned();
    assert_ne!(password, first);
    let subscriptions = server.subscriptions();
    assert_eq!(subscriptions.len(), 3);
    for s in &subscriptions {
        assert_eq!(s.consumer_inputs["url"], url);
        assert_eq!(s.consumer_inputs["basicAuthUsername"], "picket");
        assert_eq!(s.consumer_inputs["basicAuthPassword"], password);
        assert_eq!(s.publisher_inputs["repository"], repo);
    }
    // The subscriptions' password works; the one shown at creation still does, for the overlap.
    let mut created = event("pullrequest_created.json", "i1", &sha(1), 10);
    created["resource"]["repository"]["id"] = json!(repo);
    hook.azure(&created, Some(&password))
        .await
        .outcome(202, "scan_queued");
    let mut pushed = event("pullrequest_updated.json", "i2", &sha(2), 20);
    pushed["resource"]["repository"]["id"] = json!(repo);
    hook.azure(&pushed, Some(&first))
        .await
        .outcome(202, "scan_queued");
    // Again: the same subscriptions, replaced in place with another password.
    let again = app.admin().post(&path, json!({})).await.expect(200);
    assert_eq!(again["hook_ids"], installed["hook_ids"]);
    let newer = again["webhook_password"].as_str().unwrap();
    assert!(server
        .subscriptions()
        .iter()
        .all(|s| s.consumer_inputs["basicAuthPassword"] == newer && s.replaced == 1));
    assert!(!app.logs().contains(&password) && !app.logs().contains(&pat));
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}
