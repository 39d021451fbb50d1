//! Bitbucket Cloud connections and webhooks: `POST /api/v1/connections` with an access token,
//! and `POST /webhooks/bitbucket/{connection}` over real HTTP against a real database, with
//! deliveries built from the payloads written from Bitbucket's documentation (picket-vcs's
//! fixtures) and signed as Bitbucket signs them (`X-Hub-Signature`, HMAC-SHA256 of the body).
//! Bitbucket abbreviates commit hashes: the receiver resolves a pull request's head through the
//! connection's token, here against picket-test-support's Bitbucket server.

use crate::webhooks::{sign, Hook};
use picket_test_support::bitbucket::BitbucketServer;
use picket_tests::{id_of, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

const SECRET: &str = "bitbucket-hook-secret-0123456789";
const WORKSPACE: &str = "acme";
const SLUG: &str = "web-shop";
/// The fixtures' repository (its uuid, braces included).
const REPO_UUID: &str = "{5d7c1e2a-9b3f-4c8e-a1d2-3f4e5a6b7c8d}";
const PR: u64 = 42;
/// The fixtures' abbreviated heads, and the full hashes behind them.
const HEAD_1: &str = "7f3a9c2e41b8";
const HEAD_2: &str = "e91a6d0c3f27";

fn full(abbreviated: &str) -> String {
    format!("{abbreviated}{}", "0123456789abcdef0123456789ab")
}

fn fixture(name: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/vcs/tests/vcs/fixtures/bitbucket/"
    );
    let text = std::fs::read_to_string(format!("{path}{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

impl Hook {
    /// Delivers `payload` as Bitbucket does, signed with `secret` (none: unsigned).
    async fn bitbucket(
        &self,
        event: &str,
        id: &str,
        payload: &Value,
        secret: Option<&str>,
    ) -> crate::webhooks::Answer {
        let body = serde_json::to_vec(payload).unwrap();
        let mut headers = vec![
            ("x-event-key", event.to_owned()),
            ("x-request-uuid", id.to_owned()),
            ("x-attempt-number", "1".to_owned()),
        ];
        if let Some(secret) = secret {
            headers.push(("x-hub-signature", sign(secret, &body)));
        }
        self.raw(&headers, body).await
    }
}

/// A Bitbucket server with the fixtures' repository and its two heads, and a token.
fn server_with_repo(server: &BitbucketServer) -> String {
    let token = server.add_token(
        "picket-bot",
        &["repository", "pullrequest:write", "webhook"],
    );
    server.add_repo(SLUG, "main", "https://bitbucket.invalid/acme/web-shop.git");
    for head in [HEAD_1, HEAD_2] {
        server.add_commit(SLUG, &full(head));
    }
    token
}

/// A Bitbucket connection to `server` holding `token` and `SECRET`, with the fixtures'
/// repository added as a project.
async fn connection(app: &TestApp, server: &BitbucketServer, token: &str) -> (Value, Hook) {
    let conn = app
        .admin()
        .post(
            "/api/v1/connections",
            json!({
                "provider": "bitbucket", "name": "bitbucket", "base_url": server.api_url(),
                "credentials": {"token": token, "webhook_secret": SECRET, "workspace": WORKSPACE},
            }),
        )
        .await
        .expect(201);
    app.admin()
        .post(
            "/api/v1/projects",
            json!({"projects": [{
                "connection_id": id_of(&conn), "provider_repo_id": REPO_UUID,
                "full_name": format!("{WORKSPACE}/{SLUG}"),
                "clone_url": "https://bitbucket.invalid/acme/web-shop.git",
                "default_branch": "main",
            }]}),
        )
        .await
        .expect(201);
    let hook = Hook {
        http: reqwest::Client::new(),
        url: format!("{}/webhooks/bitbucket/{}", app.base, id_of(&conn)),
        secret: SECRET.to_owned(),
    };
    (conn, hook)
}

async fn diff_scans(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM scans WHERE kind = 'diff'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn scan_of(app: &TestApp, answer: &Value) -> (String, String, Option<String>) {
    sqlx::query_as("SELECT git_ref, commit_sha, base_sha FROM scans WHERE id = $1")
        .bind(
            answer["scan_id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_bitbucket_connection_is_checked_and_never_shows_its_token(pool: PgPool) {
    let app = TestApp::start(pool).await;
    const TOKEN: &str = "ATCTT3xFfGN0abcdefghijklmnop";
    let create = |credentials: Value| {
        let admin = app.admin();
        async move {
            admin
                .post(
                    "/api/v1/connections",
                    json!({"provider": "bitbucket", "name": "bb", "credentials": credentials}),
                )
                .await
        }
    };
    for (credentials, field) in [
        (
            json!({"token": "short", "webhook_secret": SECRET, "workspace": WORKSPACE}),
            "credentials.token",
        ),
        (
            json!({"token": "has a space", "webhook_secret": SECRET, "workspace": WORKSPACE}),
            "credentials.token",
        ),
        (
            json!({"token": TOKEN, "webhook_secret": "short", "workspace": WORKSPACE}),
            "credentials.webhook_secret",
        ),
        (
            json!({"token": TOKEN, "webhook_secret": 12, "workspace": WORKSPACE}),
            "credentials.webhook_secret",
        ),
        (
            json!({"token": TOKEN, "webhook_secret": SECRET, "workspace": "acme/web"}),
            "credentials.workspace",
        ),
        (
            json!({"token": TOKEN, "webhook_secret": SECRET, "workspace": ""}),
            "credentials.workspace",
        ),
        (
            json!({"token": TOKEN, "webhook_secret": SECRET, "workspace": "a".repeat(63)}),
            "credentials.workspace",
        ),
        (
            json!({"token": TOKEN, "webhook_secret": SECRET}),
            "credentials",
        ),
        (
            json!({"token": TOKEN, "webhook_secret": SECRET, "workspace": WORKSPACE, "group": "x"}),
            "credentials",
        ),
    ] {
        let refused = create(credentials.clone()).await.expect(422);
        assert_eq!(
            refused["errors"][0]["field"], field,
            "{credentials}: {refused}"
        );
        assert!(
            !refused.to_string().contains(TOKEN) && !refused.to_string().contains(SECRET),
            "{refused}"
        );
    }
    assert_eq!(app.count("vcs_connections").await, 0);

    // Bitbucket Cloud when no base URL is given.
    let created = create(json!({"token": TOKEN, "webhook_secret": SECRET, "workspace": "Acme"}))
        .await
        .expect(201);
    assert_eq!(created["base_url"], "");
    assert_eq!(
        created["webhook_url"],
        format!("/webhooks/bitbucket/{}", id_of(&created))
    );
    assert_eq!(created["has_credentials"], true);
    assert!(created.get("webhook_password").is_none(), "{created}");
    let one = app
        .admin()
        .get(&format!("/api/v1/connections/{}", id_of(&created)))
        .await
        .expect(200);
    let listed = app.admin().get("/api/v1/connections").await.expect(200);
    for text in [
        created.to_string(),
        one.to_string(),
        listed.to_string(),
        app.logs(),
    ] {
        assert!(!text.contains(TOKEN) && !text.contains(SECRET), "{text}");
    }
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn pull_request_deliveries_queue_scans_of_the_resolved_head(pool: PgPool) {
    let server = BitbucketServer::start(WORKSPACE).await;
    let token = server_with_repo(&server);
    let app = TestApp::start(pool).await;
    let (_conn, hook) = connection(&app, &server, &token).await;

    let created = fixture("pullrequest_created.json");
    let first = hook
        .bitbucket("pullrequest:created", "r-open", &created, Some(SECRET))
        .await;
    let first = first.outcome(202, "scan_queued").clone();
    let (git_ref, commit, base) = scan_of(&app, &first).await;
    assert_eq!(git_ref, "refs/heads/feature/coupon-check");
    assert_eq!(commit, full(HEAD_1), "the abbreviated head is resolved");
    assert_eq!(base, None, "the abbreviated target tip is not kept");
    // A resend carries the same X-Request-UUID.
    hook.bitbucket("pullrequest:created", "r-open", &created, Some(SECRET))
        .await
        .outcome(200, "duplicate");
    // A title edit: `pullrequest:updated` with the same head.
    let mut edited = created.clone();
    edited["pullrequest"]["title"] = json!("Check coupons twice");
    edited["pullrequest"]["updated_on"] = json!("2026-11-30T09:20:00.000000+00:00");
    let same = hook
        .bitbucket("pullrequest:updated", "r-title", &edited, Some(SECRET))
        .await;
    assert_eq!(
        same.outcome(200, "duplicate_head")["scan_id"],
        first["scan_id"]
    );
    assert_eq!(diff_scans(&app).await, 1, "a title edit queues nothing");
    // New commits: the first head's scan is superseded.
    let pushed = fixture("pullrequest_updated.json");
    let second = hook
        .bitbucket("pullrequest:updated", "r-push", &pushed, Some(SECRET))
        .await;
    let second = second.outcome(202, "scan_queued").clone();
    assert_eq!(second["superseded_scan_ids"], json!([first["scan_id"]]));
    assert_eq!(scan_of(&app, &second).await.1, full(HEAD_2));
    // Merged: not acted on; a push event: ignored.
    hook.bitbucket("pullrequest:fulfilled", "r-merged", &pushed, Some(SECRET))
        .await
        .outcome(200, "action_not_handled");
    hook.bitbucket(
        "repo:push",
        "r-repo-push",
        &json!({"push": {}}),
        Some(SECRET),
    )
    .await
    .outcome(200, "event_not_handled");
    let logged: Vec<(String, String)> = sqlx::query_as(
        "SELECT delivery_id, outcome FROM webhook_deliveries ORDER BY received_at, delivery_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        logged,
        [
            ("r-open", "scan_queued"),
            ("r-title", "duplicate_head"),
            ("r-push", "scan_queued"),
            ("r-merged", "action_not_handled"),
            ("r-repo-push", "event_not_handled"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_wrong_signature_or_an_unresolvable_head_writes_nothing(pool: PgPool) {
    let server = BitbucketServer::start(WORKSPACE).await;
    let token = server_with_repo(&server);
    let app = TestApp::start(pool).await;
    let (conn, hook) = connection(&app, &server, &token).await;
    let created = fixture("pullrequest_created.json");
    let before = app.counts().await;
    hook.bitbucket("pullrequest:created", "w1", &created, None)
        .await
        .problem(401, "signature_missing");
    hook.bitbucket(
        "pullrequest:created",
        "w1",
        &created,
        Some("bitbucket-hook-secret-0123456788"),
    )
    .await
    .problem(401, "signature_mismatch");
    // The GitLab route does not take a Bitbucket connection.
    let gitlab = Hook {
        url: format!("{}/webhooks/gitlab/{}", app.base, id_of(&conn)),
        ..hook.clone()
    };
    gitlab
        .raw(
            &[
                ("x-gitlab-event", "Merge Request Hook".to_owned()),
                ("idempotency-key", "k".to_owned()),
                ("x-gitlab-token", SECRET.to_owned()),
            ],
            b"{}".to_vec(),
        )
        .await
        .problem(404, "not_found");
    // A head Bitbucket does not know: 503, which Bitbucket resends; nothing kept.
    let mut unknown = created.clone();
    unknown["pullrequest"]["source"]["commit"]["hash"] = json!("abcdef012345");
    hook.bitbucket("pullrequest:created", "w2", &unknown, Some(SECRET))
        .await
        .problem(503, "webhook_unavailable");
    assert_eq!(
        app.counts().await,
        before,
        "a refused delivery writes nothing"
    );
    // A repository that is no project: Bitbucket is not asked.
    let asked = server.requests().len();
    let mut elsewhere = created.clone();
    elsewhere["repository"]["uuid"] = json!("{00000000-0000-4000-8000-000000000000}");
    hook.bitbucket("pullrequest:created", "w3", &elsewhere, Some(SECRET))
        .await
        .outcome(200, "project_unknown");
    assert_eq!(server.requests().len(), asked);
    // Authentic but unreadable: logged, and 400 (Bitbucket disables no hook).
    hook.raw(
        &[
            ("x-event-key", "pullrequest:created".to_owned()),
            ("x-request-uuid", "w4".to_owned()),
            ("x-hub-signature", sign(SECRET, b"not json")),
        ],
        b"not json".to_vec(),
    )
    .await
    .problem(400, "body_not_json");
    let logged: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT delivery_id, outcome FROM webhook_deliveries ORDER BY delivery_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        logged,
        [("w3", "project_unknown"), ("w4", "body_not_json")]
            .map(|(a, b)| (Some(a.to_owned()), b.to_owned()))
    );
    assert_eq!(diff_scans(&app).await, 0);
    assert!(!app.logs().contains(&token) && !app.logs().contains(SECRET));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_reply_is_queued_for_triage_and_a_rotated_secret_overlaps(pool: PgPool) {
    let server = BitbucketServer::start(WORKSPACE).await;
    let token = server_with_repo(&server);
    let app = TestApp::start(pool).await;
    let (conn, hook) = connection(&app, &server, &token).await;

    let mut comment = fixture("pullrequest_comment_created_inline.json");
    comment["comment"]["content"]["raw"] = json!("/fp the coupon is checked again later");
    hook.bitbucket("pullrequest:comment_created", "c1", &comment, Some(SECRET))
        .await
        .outcome(202, "triage_queued");
    let (comment_id, parent, author): (String, String, String) =
        sqlx::query_as("SELECT comment_id, parent_comment_id, author_login FROM triage_requests")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(comment_id, comment["comment"]["id"].to_string());
    assert_eq!(parent, comment["comment"]["parent"]["id"].to_string());
    assert_eq!(author, comment["actor"]["nickname"].as_str().unwrap());
    let mut chatter = comment.clone();
    chatter["comment"]["content"]["raw"] = json!("looks good");
    chatter["comment"]["id"] = json!(517230999);
    hook.bitbucket("pullrequest:comment_created", "c2", &chatter, Some(SECRET))
        .await
        .outcome(200, "not_a_command");

    // Rotating: the new secret works at once, the old one during the overlap.
    const NEW: &str = "bitbucket-hook-secret-rotated-01";
    let rotated = app
        .admin()
        .post(
            &format!("/api/v1/connections/{}/webhook-secret/rotate", id_of(&conn)),
            json!({"webhook_secret": NEW}),
        )
        .await
        .expect(200);
    assert_eq!(rotated["webhook_secret"], NEW);
    let created = fixture("pullrequest_created.json");
    hook.bitbucket("pullrequest:created", "c3", &created, Some(NEW))
        .await
        .outcome(202, "scan_queued");
    hook.bitbucket(
        "pullrequest:updated",
        "c4",
        &fixture("pullrequest_updated.json"),
        Some(SECRET),
    )
    .await
    .outcome(202, "scan_queued");
    // Drawn by the server when none is given.
    let drawn = app
        .admin()
        .post(
            &format!("/api/v1/connections/{}/webhook-secret/rotate", id_of(&conn)),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(drawn["webhook_secret"].as_str().unwrap().len(), 64);
    assert!(!app.logs().contains(NEW));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_hook_is_installed_on_each_repository_and_updated_in_place(pool: PgPool) {
    let server = BitbucketServer::start(WORKSPACE).await;
    let token = server_with_repo(&server);
    let app = TestApp::start_with(
        pool,
        picket_api::ApiConfig {
            public_url: Some("https://picket.example.test".into()),
            ..Default::default()
        },
    )
    .await;
    let (conn, _hook) = connection(&app, &server, &token).await;
    let path = format!("/api/v1/connections/{}/webhooks", id_of(&conn));
    let installed = app.admin().post(&path, json!({})).await.expect(200);
    let url = format!(
        "https://picket.example.test/webhooks/bitbucket/{}",
        id_of(&conn)
    );
    assert_eq!(installed["webhook_url"], url);
    assert_eq!(installed["hook_ids"].as_array().unwrap().len(), 1);
    assert!(installed.get("webhook_password").is_none(), "{installed}");
    let hooks = server.hooks(SLUG);
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].url, url);
    assert_eq!(hooks[0].secret.as_deref(), Some(SECRET));
    assert!(hooks[0].active);
    assert!(hooks[0]
        .events
        .iter()
        .any(|e| e == "pullrequest:comment_created"));
    // Again after a rotation: the same hook, with the new secret.
    let rotated = app
        .admin()
        .post(
            &format!("/api/v1/connections/{}/webhook-secret/rotate", id_of(&conn)),
            json!({}),
        )
        .await
        .expect(200);
    let again = app.admin().post(&path, json!({})).await.expect(200);
    assert_eq!(again["hook_ids"], installed["hook_ids"]);
    let hooks = server.hooks(SLUG);
    assert_eq!(hooks.len(), 1);
    assert_eq!(
        hooks[0].secret.as_deref(),
        rotated["webhook_secret"].as_str()
    );
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_reconcile_sweep_finds_the_head_the_webhook_resolved(pool: PgPool) {
    use picket_scheduler::reconcile::{sweep, ReconcileConfig};
    use picket_test_support::bitbucket::TestPull;
    let server = BitbucketServer::start(WORKSPACE).await;
    let token = server_with_repo(&server);
    let base = "ba5e".repeat(10);
    server.add_commit(SLUG, &base);
    // PR 42, whose webhook comes; PR 43, whose webhook was lost.
    server.add_pull(
        SLUG,
        TestPull::open(PR, "feature/coupon-check", &full(HEAD_1), &base, "omar"),
    );
    server.add_pull(
        SLUG,
        TestPull::open(43, "feature/lost", &full(HEAD_2), &base, "omar"),
    );
    let app = TestApp::start(pool.clone()).await;
    let (_conn, hook) = connection(&app, &server, &token).await;
    hook.bitbucket(
        "pullrequest:created",
        "s1",
        &fixture("pullrequest_created.json"),
        Some(SECRET),
    )
    .await
    .outcome(202, "scan_queued");

    let registry = picket_vcs::Registry::new(
        std::sync::Arc::new(picket_db::connections::CredentialStore::new(
            pool.clone(),
            std::sync::Arc::new(app.cipher()),
        )),
        picket_vcs::github::api::ClientOptions::new(picket_vcs::github::DEFAULT_API_URL),
    );
    let cfg = ReconcileConfig {
        every: std::time::Duration::from_secs(300),
        budget: 100,
    };
    let report = sweep(&picket_db::Db::from_pool(pool.clone()), &registry, &cfg)
        .await
        .unwrap();
    assert_eq!(report.pull_requests, 2, "{report:?}");
    assert_eq!(report.scans_queued, 1, "only the lost one: {report:?}");
    let scans: Vec<(i32, String, String, String)> = sqlx::query_as(
        "SELECT pr_number, git_ref, commit_sha, trigger::text FROM scans
         WHERE kind = 'diff' ORDER BY pr_number",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        scans,
        [
            (
                PR as i32,
                "refs/heads/feature/coupon-check".to_owned(),
                full(HEAD_1),
                "pull_request".to_owned()
            ),
            (
                43,
                "refs/heads/feature/lost".to_owned(),
                full(HEAD_2),
                "reconcile".to_owned()
            ),
        ]
    );
    assert!(server.violations().is_empty(), "{:?}", server.violations());
}
