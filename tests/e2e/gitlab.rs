//! GitLab connections and webhooks: `POST /api/v1/connections` with a token, and
//! `POST /webhooks/gitlab/{connection}` over real HTTP against a real database, with deliveries
//! built from the payloads written from GitLab's documentation (picket-vcs's fixtures), the
//! plain token and the Standard Webhooks signing token.

use crate::webhooks::Hook;
use base64::Engine;
use hmac::{Hmac, Mac};
use picket_tests::{id_of, TestApp};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;

const TOKEN: &str = "glpat-abcdefghijklmnopqrst";
const SECRET: &str = "gitlab-hook-secret-0123456789";
/// A signing token: `whsec_` and a base64 key.
const SIGNING: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The fixtures' project and merge request.
const PROJECT: &str = "14";
const IID: u64 = 7;

fn fixture(name: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/vcs/tests/vcs/fixtures/gitlab/"
    );
    let text = std::fs::read_to_string(format!("{path}{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(20)
}

/// A merge request event: `action`, head `head`, updated at second `at` of a minute.
fn merge_request(action: &str, head: &str, at: u32) -> Value {
    let mut p = fixture("merge_request_open.json");
    p["object_attributes"]["action"] = json!(action);
    p["object_attributes"]["last_commit"]["id"] = json!(head);
    p["object_attributes"]["updated_at"] = json!(format!("2026-11-30T09:12:{at:02}Z"));
    p
}

impl Hook {
    /// Delivers `payload` as GitLab does with a plain secret token.
    async fn gitlab(
        &self,
        event: &str,
        id: &str,
        payload: &Value,
        token: Option<&str>,
    ) -> crate::webhooks::Answer {
        let mut headers = vec![
            ("x-gitlab-event", event.to_owned()),
            ("idempotency-key", id.to_owned()),
        ];
        if let Some(token) = token {
            headers.push(("x-gitlab-token", token.to_owned()));
        }
        self.raw(&headers, serde_json::to_vec(payload).unwrap())
            .await
    }

    /// Delivers `payload` signed with a signing token, with its timestamp `skew` seconds off.
    async fn gitlab_signed(
        &self,
        id: &str,
        payload: &Value,
        key: &str,
        skew: i64,
    ) -> crate::webhooks::Answer {
        let body = serde_json::to_vec(payload).unwrap();
        let ts = time::OffsetDateTime::now_utc().unix_timestamp() + skew;
        let key = base64::engine::general_purpose::STANDARD
            .decode(key.strip_prefix("whsec_").unwrap())
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(&body);
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let headers = [
            ("x-gitlab-event", "Merge Request Hook".to_owned()),
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", format!("v1,{signature}")),
        ];
        self.raw(&headers, body).await
    }
}

/// A GitLab connection holding `secret`, with the fixtures' project `acme/platform/web` added.
async fn connection(app: &TestApp, secret: &str) -> (Value, Hook) {
    let conn = app
        .admin()
        .post(
            "/api/v1/connections",
            json!({
                "provider": "gitlab", "name": "gitlab", "base_url": "https://gitlab.example.test",
                "credentials": {"token": TOKEN, "webhook_secret": secret, "group": "acme"},
            }),
        )
        .await
        .expect(201);
    app.admin()
        .post(
            "/api/v1/projects",
            json!({"projects": [{
                "connection_id": id_of(&conn), "provider_repo_id": PROJECT,
                "full_name": "acme/platform/web",
                "clone_url": "https://gitlab.example.test/acme/platform/web.git",
                "default_branch": "main",
            }]}),
        )
        .await
        .expect(201);
    let hook = Hook {
        http: reqwest::Client::new(),
        url: format!("{}{}", app.base, conn["webhook_url"].as_str().unwrap()),
        secret: secret.to_owned(),
    };
    (conn, hook)
}

/// Diff-aware scans (adding the project queued its initial full scan).
async fn diff_scans(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM scans WHERE kind = 'diff'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_gitlab_connection_is_checked_and_never_shows_its_token(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let create = |credentials: Value| {
        let admin = app.admin();
        async move {
            admin
                .post(
                    "/api/v1/connections",
                    json!({"provider": "gitlab", "name": "gl", "credentials": credentials}),
                )
                .await
        }
    };
    for (credentials, field) in [
        (
            json!({"token": "short", "webhook_secret": SECRET}),
            "credentials.token",
        ),
        (
            json!({"token": "has a space in it", "webhook_secret": SECRET}),
            "credentials.token",
        ),
        (
            json!({"token": TOKEN, "webhook_secret": "short"}),
            "credentials.webhook_secret",
        ),
        (
            json!({"token": TOKEN, "webhook_secret": "whsec_not*base64*at*all!"}),
            "credentials.webhook_secret",
        ),
        (
            json!({"token": TOKEN, "webhook_secret": SECRET, "group": "acme//web"}),
            "credentials.group",
        ),
        (
            json!({"token": TOKEN, "webhook_secret": SECRET, "group": "acme/we b"}),
            "credentials.group",
        ),
        (
            json!({"token": TOKEN, "webhook_secret": SECRET, "app_id": 4}),
            "credentials",
        ),
    ] {
        let refused = create(credentials.clone()).await.expect(422);
        assert_eq!(
            refused["errors"][0]["field"], field,
            "{credentials}: {refused}"
        );
        assert!(!refused.to_string().contains(TOKEN), "{refused}");
    }
    assert_eq!(app.count("vcs_connections").await, 0);

    let created = app
        .admin()
        .post(
            "/api/v1/connections",
            json!({"provider": "gitlab", "name": "self-managed",
                   "base_url": "https://gitlab.example.test/",
                   "credentials": {"token": TOKEN, "webhook_secret": SIGNING, "group": "/acme/platform/"}}),
        )
        .await
        .expect(201);
    assert_eq!(created["base_url"], "https://gitlab.example.test/api/v4");
    assert_eq!(
        created["webhook_url"],
        format!("/webhooks/gitlab/{}", id_of(&created))
    );
    assert_eq!(created["has_credentials"], true);
    let listed = app.admin().get("/api/v1/connections").await.expect(200);
    for text in [created.to_string(), listed.to_string()] {
        assert!(!text.contains(TOKEN) && !text.contains(SIGNING), "{text}");
    }
    // gitlab.com when no base URL is given.
    let cloud = create(json!({"token": TOKEN, "webhook_secret": SECRET}))
        .await
        .expect(201);
    assert_eq!(cloud["base_url"], "");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn merge_request_deliveries_queue_scans_of_new_code_only(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (_conn, hook) = connection(&app, SECRET).await;

    let opened = hook
        .gitlab(
            "Merge Request Hook",
            "k-open",
            &merge_request("open", &sha(1), 10),
            Some(SECRET),
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
    assert_eq!(git_ref, format!("refs/merge-requests/{IID}/head"));
    assert_eq!(commit, sha(1));
    // A retry carries the same Idempotency-Key.
    hook.gitlab(
        "Merge Request Hook",
        "k-open",
        &merge_request("open", &sha(1), 10),
        Some(SECRET),
    )
    .await
    .outcome(200, "duplicate");
    // A title edit: `update` without `oldrev`.
    let mut edited = merge_request("update", &sha(1), 20);
    edited["changes"] = json!({"title": {"previous": "Login", "current": "Login page"}});
    hook.gitlab("Merge Request Hook", "k-title", &edited, Some(SECRET))
        .await
        .outcome(200, "metadata_only");
    assert_eq!(
        diff_scans(&app).await,
        1,
        "a metadata-only update queues nothing"
    );
    // New commits: `update` with `oldrev`; the first head's scan is superseded.
    let mut pushed = merge_request("update", &sha(2), 30);
    pushed["object_attributes"]["oldrev"] = json!(sha(1));
    let second = hook
        .gitlab("Merge Request Hook", "k-push", &pushed, Some(SECRET))
        .await;
    let second = second.outcome(202, "scan_queued");
    assert_eq!(second["superseded_scan_ids"], json!([first["scan_id"]]));
    // Closing is not acted on.
    hook.gitlab(
        "Merge Request Hook",
        "k-close",
        &merge_request("close", &sha(2), 40),
        Some(SECRET),
    )
    .await
    .outcome(200, "action_not_handled");
    // A push event (not subscribed, but sent) is answered and ignored.
    hook.gitlab(
        "Push Hook",
        "k-pushhook",
        &json!({"object_kind": "push"}),
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
            ("k-open", "scan_queued"),
            ("k-title", "metadata_only"),
            ("k-push", "scan_queued"),
            ("k-close", "action_not_handled"),
            ("k-pushhook", "event_not_handled"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_wrong_token_writes_nothing_and_an_unreadable_authentic_delivery_is_still_2xx(
    pool: PgPool,
) {
    let app = TestApp::start(pool).await;
    let (conn, hook) = connection(&app, SECRET).await;
    let payload = merge_request("open", &sha(1), 10);
    let before = app.counts().await;
    hook.gitlab("Merge Request Hook", "k1", &payload, None)
        .await
        .problem(401, "signature_missing");
    hook.gitlab(
        "Merge Request Hook",
        "k1",
        &payload,
        Some("gitlab-hook-secret-0123456788"),
    )
    .await
    .problem(401, "signature_mismatch");
    // The GitHub route does not take a GitLab connection.
    let github = Hook {
        url: format!("{}/webhooks/github/{}", app.base, id_of(&conn)),
        ..hook.clone()
    };
    github
        .raw(
            &[
                ("x-github-event", "ping".to_owned()),
                ("x-github-delivery", "d".to_owned()),
                ("x-hub-signature-256", crate::webhooks::sign(SECRET, b"{}")),
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

    // Authentic, but missing what a merge request event needs: logged, answered 200, so that
    // GitLab does not count it towards disabling the hook.
    let mut broken = payload.clone();
    broken["object_attributes"]
        .as_object_mut()
        .unwrap()
        .remove("last_commit");
    hook.gitlab("Merge Request Hook", "k2", &broken, Some(SECRET))
        .await
        .outcome(200, "payload_invalid");
    hook.raw(
        &[
            ("x-gitlab-event", "Merge Request Hook".to_owned()),
            ("idempotency-key", "k3".to_owned()),
            ("x-gitlab-token", SECRET.to_owned()),
        ],
        b"not json".to_vec(),
    )
    .await
    .outcome(200, "body_not_json");
    let logged: Vec<(String, String)> =
        sqlx::query_as("SELECT delivery_id, outcome FROM webhook_deliveries ORDER BY delivery_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        logged,
        [("k2", "payload_invalid"), ("k3", "body_not_json")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(diff_scans(&app).await, 0);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_signing_token_needs_a_fresh_signature_and_a_rotated_secret_overlaps(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (conn, hook) = connection(&app, SIGNING).await;
    let payload = merge_request("open", &sha(1), 10);
    // The plain token header is not enough for a signing token.
    hook.gitlab("Merge Request Hook", "s0", &payload, Some(SIGNING))
        .await
        .problem(401, "signature_missing");
    hook.gitlab_signed("s1", &payload, SIGNING, -600)
        .await
        .problem(401, "signature_malformed");
    hook.gitlab_signed("s2", &payload, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 0)
        .await
        .problem(401, "signature_mismatch");
    hook.gitlab_signed("s3", &payload, SIGNING, -30)
        .await
        .outcome(202, "scan_queued");

    // Rotating to a plain token: the new one works at once, the signing token keeps working
    // during the overlap.
    let rotated = app
        .admin()
        .post(
            &format!("/api/v1/connections/{}/webhook-secret/rotate", id_of(&conn)),
            json!({"webhook_secret": SECRET}),
        )
        .await
        .expect(200);
    assert_eq!(rotated["webhook_secret"], SECRET);
    let mut pushed = merge_request("update", &sha(2), 20);
    pushed["object_attributes"]["oldrev"] = json!(sha(1));
    hook.gitlab("Merge Request Hook", "s4", &pushed, Some(SECRET))
        .await
        .outcome(202, "scan_queued");
    let mut again = merge_request("update", &sha(3), 30);
    again["object_attributes"]["oldrev"] = json!(sha(2));
    hook.gitlab_signed("s5", &again, SIGNING, 0)
        .await
        .outcome(202, "scan_queued");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_reply_in_a_discussion_is_queued_for_triage(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (_conn, hook) = connection(&app, SECRET).await;
    let mut note = fixture("note_diff.json");
    note["object_attributes"]["note"] = json!("/fp the input is a constant");
    hook.gitlab("Note Hook", "n1", &note, Some(SECRET))
        .await
        .outcome(202, "triage_queued");
    let (comment, parent, author): (String, String, String) =
        sqlx::query_as("SELECT comment_id, parent_comment_id, author_login FROM triage_requests")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (comment.as_str(), parent.as_str()),
        (
            note["object_attributes"]["id"].to_string().as_str(),
            note["object_attributes"]["discussion_id"].as_str().unwrap()
        )
    );
    assert_eq!(author, note["user"]["username"].as_str().unwrap());
    // A note that is no command is not acted on.
    let mut chatter = note.clone();
    chatter["object_attributes"]["note"] = json!("looks good to me");
    chatter["object_attributes"]["id"] = json!(1245);
    hook.gitlab("Note Hook", "n2", &chatter, Some(SECRET))
        .await
        .outcome(200, "not_a_command");
}
