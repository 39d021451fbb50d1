//! GitHub webhooks: `POST /webhooks/github/{connection}` over real HTTP against a real database,
//! with deliveries built from GitHub's own examples (`@octokit/webhooks-examples`, under
//! tests/github) and signed here with the connection's secret.

use hmac::{Hmac, Mac};
use picket_api::ApiConfig;
use picket_core::{ScanId, ScanState};
use picket_db::{pr_checks, queue, DbError};
use picket_test_support::github::GitHubServer;
use picket_tests::{id_of, TestApp};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;
use std::sync::OnceLock;
use std::time::Duration;
use uuid::Uuid;

pub(crate) const SECRET: &str = "it-is-a-webhook-secret-0123";
/// The repository of the examples' pull requests.
const REPO_ID: i64 = 186853002;
/// The installation of the examples' `installation` created event.
const INSTALLATION: i64 = 957387;

/// An RSA private key (PKCS#1 PEM, as GitHub issues them), drawn once per test run.
fn private_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        // 1024 bits: only parsed here, never used to sign, and drawn quickly in a debug build.
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).expect("RSA key");
        key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .expect("PEM")
            .to_string()
    })
}

/// GitHub's example payloads, by event.
fn examples() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/github/node_modules/@octokit/webhooks-examples/api.github.com/index.json"
        );
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e} (run `make github-fixtures`)"));
        serde_json::from_str(&text).expect("index.json")
    })
}

/// The first example of `event` with `action` (any, when `None`).
pub(crate) fn example(event: &str, action: Option<&str>) -> Value {
    examples()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == event)
        .flat_map(|e| e["examples"].as_array().unwrap().iter())
        .find(|x| action.is_none_or(|a| x["action"] == a))
        .unwrap_or_else(|| panic!("no {event} {action:?} example"))
        .clone()
}

/// A pull request event on the example repository (its id replaced by `repo_id`), PR `number`,
/// head `head`.
pub(crate) fn pull_request(action: &str, repo_id: i64, number: u64, head: &str) -> Value {
    let mut p = example("pull_request", Some("opened"));
    p["action"] = json!(action);
    p["number"] = json!(number);
    p["repository"]["id"] = json!(repo_id);
    p["pull_request"]["number"] = json!(number);
    p["pull_request"]["head"]["sha"] = json!(head);
    p["pull_request"]["base"]["repo"]["id"] = json!(repo_id);
    p["pull_request"]["head"]["repo"]["id"] = json!(repo_id);
    p
}

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(20)
}

pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A connection's webhook, as GitHub reaches it.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    pub(crate) secret: String,
}

#[derive(Debug)]
pub(crate) struct Answer {
    status: u16,
    body: Value,
    /// The `WWW-Authenticate` header, if any.
    challenge: Option<String>,
}

impl Answer {
    #[track_caller]
    pub(crate) fn outcome(&self, status: u16, outcome: &str) -> &Value {
        assert_eq!(
            (self.status, self.body["outcome"].as_str()),
            (status, Some(outcome)),
            "{}",
            self.body
        );
        &self.body
    }

    #[track_caller]
    pub(crate) fn problem(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (status, Some(code)),
            "{}",
            self.body
        );
        // Deliveries are signed, not bearer-authenticated: no refusal is a bearer challenge.
        assert_eq!(self.challenge, None, "{}", self.body);
    }

    pub(crate) fn scan(&self) -> ScanId {
        ScanId(self.body["scan_id"].as_str().unwrap().parse().unwrap())
    }
}

impl Hook {
    pub(crate) async fn raw(&self, headers: &[(&str, String)], body: Vec<u8>) -> Answer {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.body(body).send().await.expect("deliver");
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            challenge,
        }
    }

    /// Delivers `payload` as event `event` with delivery id `id`, signed with the secret.
    pub(crate) async fn deliver(&self, event: &str, id: &str, payload: &Value) -> Answer {
        self.deliver_signed(event, id, payload, &self.secret).await
    }

    async fn deliver_signed(&self, event: &str, id: &str, payload: &Value, secret: &str) -> Answer {
        let body = serde_json::to_vec(payload).unwrap();
        let headers = [
            ("x-github-event", event.to_owned()),
            ("x-github-delivery", id.to_owned()),
            ("x-hub-signature-256", sign(secret, &body)),
        ];
        self.raw(&headers, body).await
    }
}

/// A GitHub connection with an App's credentials; returns it and its hook.
async fn github_connection(app: &TestApp, name: &str, follow: bool) -> (Value, Hook) {
    let conn = app
        .admin()
        .post(
            "/api/v1/connections",
            json!({
                "provider": "github", "name": name, "base_url": "https://api.github.com",
                "follow_installations": follow,
                "credentials": {"app_id": 42, "private_key": private_key(), "webhook_secret": SECRET},
            }),
        )
        .await
        .expect(201);
    let url = conn["webhook_url"].as_str().unwrap();
    assert_eq!(url, format!("/webhooks/github/{}", id_of(&conn)));
    let hook = Hook {
        http: reqwest::Client::new(),
        url: format!("{}{url}", app.base),
        secret: SECRET.to_owned(),
    };
    (conn, hook)
}

/// A project of repository `repo_id` on the connection.
async fn project(app: &TestApp, conn: &Value, repo_id: i64) -> Value {
    app.admin()
        .post(
            "/api/v1/projects",
            json!({"projects": [{
                "connection_id": id_of(conn), "provider_repo_id": repo_id.to_string(),
                "full_name": format!("acme/repo-{repo_id}"),
                "clone_url": format!("https://github.com/acme/repo-{repo_id}.git"),
                "default_branch": "main",
            }]}),
        )
        .await
        .expect(201)["projects"][0]
        .clone()
}

/// A GitHub App on the GitHub test server, installed on `acme`, with repository `acme/app` as a
/// project of Picket's connection for it (added through the API).
struct AppWorld {
    server: GitHubServer,
    app: TestApp,
    hook: Hook,
    installation: u64,
    repo_id: u64,
}

impl AppWorld {
    /// `others`: more repositories the installation sees (not projects).
    async fn start(pool: PgPool, others: &[&str]) -> AppWorld {
        let server = GitHubServer::start().await;
        let gh_app = server.add_app("picket");
        let installation = server.add_installation(gh_app.id, "acme");
        let clone_url = |name: &str| format!("https://github.invalid/{name}.git");
        let repo_id = server.add_repo(installation, "acme/app", "main", &clone_url("acme/app"));
        for name in others {
            server.add_repo(installation, name, "main", &clone_url(name));
        }
        let app = TestApp::start(pool).await;
        let conn = app
            .github_connection("acme", &server, &gh_app, SECRET)
            .await;
        let hook = Hook {
            http: reqwest::Client::new(),
            url: format!("{}/webhooks/github/{}", app.base, id_of(&conn)),
            secret: SECRET.to_owned(),
        };
        app.admin()
            .post(
                "/api/v1/projects",
                json!({"projects": [{
                    "connection_id": id_of(&conn), "provider_repo_id": repo_id.to_string(),
                    "full_name": "acme/app", "clone_url": clone_url("acme/app"),
                    "default_branch": "main",
                }]}),
            )
            .await
            .expect(201);
        AppWorld {
            server,
            app,
            hook,
            installation,
            repo_id,
        }
    }
}

async fn pr_scans(pool: &PgPool) -> Vec<(Uuid, String, Option<String>, String)> {
    sqlx::query_as(
        "SELECT id, state::text, error_code, commit_sha FROM scans WHERE trigger = 'pull_request' ORDER BY queued_at, id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn signatures_are_checked_over_the_raw_bytes_before_anything(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (conn, hook) = github_connection(&app, "gh", false).await;
    project(&app, &conn, REPO_ID).await;
    let payload = pull_request("opened", REPO_ID, 2, &sha(1));
    let body = serde_json::to_vec(&payload).unwrap();
    let base = [
        ("x-github-event", "pull_request".to_owned()),
        ("x-github-delivery", "d-1".to_owned()),
    ];
    let with = |extra: Vec<(&'static str, String)>| {
        let mut h = base.to_vec();
        h.extend(extra);
        h
    };
    let scans_before = app.count("scans").await;
    for (headers, code) in [
        (with(vec![]), "signature_missing"),
        (
            with(vec![(
                "x-hub-signature",
                "sha1=0123456789abcdef0123456789abcdef01234567".into(),
            )]),
            "signature_sha1_only",
        ),
        (
            with(vec![("x-hub-signature-256", "sha256=xyz".into())]),
            "signature_malformed",
        ),
        (
            with(vec![(
                "x-hub-signature-256",
                sign("another-secret-entirely", &body),
            )]),
            "signature_mismatch",
        ),
    ] {
        hook.raw(&headers, body.clone()).await.problem(401, code);
    }
    // Signed over other bytes (the same JSON, spaced differently): refused.
    let mut spaced = body.clone();
    spaced.push(b' ');
    hook.raw(
        &with(vec![("x-hub-signature-256", sign(SECRET, &body))]),
        spaced,
    )
    .await
    .problem(401, "signature_mismatch");
    assert_eq!(app.count("webhook_deliveries").await, 0);
    assert_eq!(app.count("scans").await, scans_before);

    // Unknown connections, and connections without a webhook secret: 404.
    let other = Hook {
        url: format!("{}/webhooks/github/{}", app.base, Uuid::new_v4()),
        ..hook.clone()
    };
    other
        .deliver("ping", "d-2", &example("ping", None))
        .await
        .problem(404, "not_found");
    let bare = app.admin().connection("bare").create().await;
    let bare = Hook {
        url: format!("{}/webhooks/github/{}", app.base, id_of(&bare)),
        ..hook.clone()
    };
    bare.deliver("ping", "d-3", &example("ping", None))
        .await
        .problem(404, "not_found");

    // A verified ping is answered and logged; a verified delivery that cannot be read is 400,
    // and logged with why.
    hook.deliver("ping", "d-4", &example("ping", None))
        .await
        .outcome(200, "pong");
    let bad = hook
        .raw(
            &with(vec![("x-hub-signature-256", sign(SECRET, b"not json"))]),
            b"not json".to_vec(),
        )
        .await;
    bad.problem(400, "body_not_json");
    let log = app
        .admin()
        .get(&format!("/api/v1/connections/{}/deliveries", id_of(&conn)))
        .await
        .expect(200);
    let outcomes: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["body_not_json", "pong"], "{log}");
    let metrics = app.anonymous().get("/metrics").await.text;
    for line in [
        r#"picket_webhook_deliveries_total{provider="github",outcome="pong"} 1"#,
        r#"picket_webhook_deliveries_total{provider="github",outcome="signature_mismatch"} 2"#,
        r#"picket_webhook_deliveries_total{provider="github",outcome="signature_missing"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    assert!(!app.logs().contains(SECRET), "the secret was logged");
}

/// A listener on the wake-up channels of the claimers and the check loop.
struct Wakes(sqlx::postgres::PgListener);

impl Wakes {
    async fn listen(pool: &PgPool) -> Wakes {
        let mut l = sqlx::postgres::PgListener::connect_with(pool)
            .await
            .unwrap();
        l.listen_all([queue::CHANNEL, pr_checks::CHANNEL])
            .await
            .unwrap();
        Wakes(l)
    }

    async fn next(&mut self) -> (String, String) {
        let n = tokio::time::timeout(Duration::from_secs(10), self.0.recv())
            .await
            .expect("a wake-up within 10 s")
            .unwrap();
        (n.channel().to_owned(), n.payload().to_owned())
    }

    /// Nothing was raised before now: notifications arrive in commit order, so a marker sent
    /// now comes next exactly when nothing committed earlier raised one.
    async fn nothing_more(&mut self, pool: &PgPool) {
        sqlx::query("SELECT pg_notify($1, 'marker')")
            .bind(queue::CHANNEL)
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(self.next().await, (queue::CHANNEL.into(), "marker".into()));
    }
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_pull_request_head_is_scanned_once_and_a_new_head_supersedes_the_old(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (conn, hook) = github_connection(&app, "gh", false).await;
    let project = project(&app, &conn, REPO_ID).await;
    let conn_id = id_of(&conn);
    let mut wakes = Wakes::listen(&app.pool).await;

    let opened = pull_request("opened", REPO_ID, 2, &sha(1));
    let first = hook.deliver("pull_request", "d-1", &opened).await;
    first.outcome(202, "scan_queued");
    // The claimers are woken, after the commit (picket-db `wake`).
    assert_eq!(wakes.next().await, (queue::CHANNEL.into(), String::new()));
    wakes.nothing_more(&app.pool).await;
    let scan = app
        .admin()
        .get(&format!("/api/v1/scans/{}", first.scan().0))
        .await
        .expect(200);
    assert_eq!(scan["kind"], "diff");
    assert_eq!(scan["trigger"], "pull_request");
    assert_eq!(scan["state"], "queued");
    assert_eq!(scan["project_id"], project["id"]);
    assert_eq!(scan["git_ref"], "refs/pull/2/head");
    assert_eq!(scan["commit_sha"], sha(1));
    assert_eq!(scan["base_ref"], "master");
    assert_eq!(scan["pr_number"], 2);
    assert!(scan["merge_base_sha"].is_null(), "{scan}");

    // The same delivery again: a duplicate, nothing queued.
    hook.deliver("pull_request", "d-1", &opened)
        .await
        .outcome(200, "duplicate");
    // Another delivery of the same head: that head's scan.
    let again = hook
        .deliver(
            "pull_request",
            "d-2",
            &pull_request("reopened", REPO_ID, 2, &sha(1)),
        )
        .await;
    again.outcome(200, "duplicate_head");
    assert_eq!(again.scan(), first.scan());
    assert_eq!(pr_scans(&app.pool).await.len(), 1);
    wakes.nothing_more(&app.pool).await;

    // A new head: the queued scan is superseded.
    let second = hook
        .deliver(
            "pull_request",
            "d-3",
            &pull_request("synchronize", REPO_ID, 2, &sha(2)),
        )
        .await;
    second.outcome(202, "scan_queued");
    assert_eq!(second.body["superseded_scan_ids"], json!([first.scan().0]));
    // The claimers, and the check loop for the superseded scan's check.
    assert_eq!(wakes.next().await, (queue::CHANNEL.into(), String::new()));
    assert_eq!(
        wakes.next().await,
        (pr_checks::CHANNEL.into(), first.scan().to_string())
    );
    wakes.nothing_more(&app.pool).await;
    let scans = pr_scans(&app.pool).await;
    assert_eq!(
        scans,
        vec![
            (
                first.scan().0,
                "cancelled".into(),
                Some("superseded".into()),
                sha(1)
            ),
            (second.scan().0, "queued".into(), None, sha(2)),
        ]
    );
    let events = app
        .admin()
        .get(&format!("/api/v1/scans/{}", first.scan().0))
        .await
        .expect(200);
    let last = events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["to_state"], "cancelled", "{events}");
    assert_eq!(last["detail"], "superseded", "{events}");

    // Running: claimed (a PR scan goes before the project's initial scan) and started, then
    // superseded: its lease is gone, so its holder's next heartbeat and move fail.
    let claimed = queue::claim(&app.pool, "test", Duration::from_secs(300))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.scan.id, second.scan());
    queue::advance(&app.pool, &claimed.lease, ScanState::Running, None)
        .await
        .unwrap();
    let third = hook
        .deliver(
            "pull_request",
            "d-4",
            &pull_request("synchronize", REPO_ID, 2, &sha(3)),
        )
        .await;
    third.outcome(202, "scan_queued");
    assert!(matches!(
        queue::heartbeat(&app.pool, &claimed.lease, Duration::from_secs(60)).await,
        Err(DbError::LeaseLost)
    ));
    assert!(matches!(
        queue::advance(&app.pool, &claimed.lease, ScanState::Reporting, None).await,
        Err(DbError::LeaseLost)
    ));
    let scans = pr_scans(&app.pool).await;
    assert_eq!(scans[1].1, "cancelled");
    assert_eq!(scans[1].2.as_deref(), Some("superseded"));
    assert_eq!(scans[2].1, "queued");

    // Another PR of the same project is its own: nothing superseded.
    hook.deliver(
        "pull_request",
        "d-5",
        &pull_request("opened", REPO_ID, 3, &sha(4)),
    )
    .await
    .outcome(202, "scan_queued");
    assert_eq!(
        pr_scans(&app.pool)
            .await
            .iter()
            .filter(|s| s.1 == "queued")
            .count(),
        2
    );
    // A repository that is no project, and a PR action that asks for nothing.
    hook.deliver(
        "pull_request",
        "d-6",
        &pull_request("opened", 77, 1, &sha(5)),
    )
    .await
    .outcome(200, "project_unknown");
    hook.deliver(
        "pull_request",
        "d-7",
        &pull_request("closed", REPO_ID, 2, &sha(3)),
    )
    .await
    .outcome(200, "action_not_handled");

    // The log, newest first, with the scans queued; one delivery with its body.
    let log = app
        .admin()
        .get(&format!("/api/v1/connections/{conn_id}/deliveries?limit=3"))
        .await
        .expect(200);
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["delivery_id"], "d-7");
    assert_eq!(items[2]["outcome"], "scan_queued");
    let rest = app
        .admin()
        .get(&format!(
            "/api/v1/connections/{conn_id}/deliveries?cursor={}",
            log["next_cursor"].as_str().unwrap()
        ))
        .await
        .expect(200);
    let ids: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["delivery_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d-4", "d-3", "d-2", "d-1"]);
    let one = app
        .admin()
        .get(&format!("/api/v1/connections/{conn_id}/deliveries/d-1"))
        .await
        .expect(200);
    assert_eq!(one["outcome"], "scan_queued");
    assert_eq!(one["scan_id"], first.scan().0.to_string());
    assert_eq!(one["body_encoding"], "utf-8");
    let body: Value = serde_json::from_str(one["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, opened);
    app.admin()
        .get(&format!("/api/v1/connections/{conn_id}/deliveries/nope"))
        .await
        .problem(404, "not_found");
    app.member()
        .await
        .get(&format!("/api/v1/connections/{conn_id}/deliveries"))
        .await
        .problem(403, "forbidden");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_thousand_copies_of_one_delivery_at_once_queue_one_scan(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (conn, hook) = github_connection(&app, "gh", false).await;
    project(&app, &conn, REPO_ID).await;
    let payload = pull_request("opened", REPO_ID, 9, &sha(9));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let (hook, payload) = (hook.clone(), payload.clone());
        set.spawn(async move { hook.deliver("pull_request", "same", &payload).await });
    }
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    while let Some(answer) = set.join_next().await {
        let answer = answer.unwrap();
        assert!(
            (200..300).contains(&answer.status),
            "{} {}",
            answer.status,
            answer.body
        );
        *outcomes
            .entry(answer.body["outcome"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(outcomes.get("scan_queued"), Some(&1), "{outcomes:?}");
    assert_eq!(outcomes.get("duplicate"), Some(&999), "{outcomes:?}");
    assert_eq!(pr_scans(&app.pool).await.len(), 1);
    assert_eq!(app.count("webhook_deliveries").await, 1);
}

/// A connection is kept open for a few seconds between deliveries; a deleted one is refused at
/// once all the same: deleted through this API (which forgets it), or by another API process
/// (the delivery's log row then finds no connection).
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_deleted_connection_is_refused_at_once(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let ping = example("ping", None);
    let (conn, hook) = github_connection(&app, "gh", false).await;
    hook.deliver("ping", "p-1", &ping)
        .await
        .outcome(200, "pong");
    app.admin()
        .delete(&format!("/api/v1/connections/{}", id_of(&conn)))
        .await
        .expect(204);
    hook.deliver("ping", "p-2", &ping)
        .await
        .problem(404, "not_found");

    let (other, hook) = github_connection(&app, "other", false).await;
    hook.deliver("ping", "p-3", &ping)
        .await
        .outcome(200, "pong");
    sqlx::query("DELETE FROM vcs_connections WHERE id = $1")
        .bind(Uuid::parse_str(&id_of(&other)).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    hook.deliver("ping", "p-4", &ping)
        .await
        .problem(404, "not_found");
    assert_eq!(app.count("webhook_deliveries").await, 0);
}

/// Deliveries of one PR can arrive late or twice (a redelivery from the App's settings page): a
/// head whose delivery says the PR was last updated before the update that queued the PR's
/// newest scan is stale. It is answered `stale_head` with that newer scan, and queues and
/// supersedes nothing; an update at the same time or later is taken.
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_late_delivery_of_an_older_head_never_supersedes_a_newer_one(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (conn, hook) = github_connection(&app, "gh", false).await;
    project(&app, &conn, REPO_ID).await;
    let push = |head: u8, updated_at: &str| {
        let mut p = pull_request("synchronize", REPO_ID, 5, &sha(head));
        p["pull_request"]["updated_at"] = json!(updated_at);
        p
    };
    let newer = hook
        .deliver("pull_request", "d-new", &push(2, "2026-11-30T10:00:05Z"))
        .await;
    newer.outcome(202, "scan_queued");
    let older = hook
        .deliver("pull_request", "d-old", &push(1, "2026-11-30T10:00:01Z"))
        .await;
    older.outcome(200, "stale_head");
    assert_eq!(older.scan(), newer.scan());
    assert_eq!(
        pr_scans(&app.pool).await,
        vec![(newer.scan().0, "queued".into(), None, sha(2))]
    );
    // The newer head's own delivery again, under another id: its scan.
    hook.deliver("pull_request", "d-new-2", &push(2, "2026-11-30T10:00:05Z"))
        .await
        .outcome(200, "duplicate_head");
    // Same second, another head: not older, so it is taken and supersedes.
    let same = hook
        .deliver("pull_request", "d-same", &push(3, "2026-11-30T10:00:05Z"))
        .await;
    same.outcome(202, "scan_queued");
    assert_eq!(same.body["superseded_scan_ids"], json!([newer.scan().0]));
    // A force-push back to the first head, later: taken again.
    let back = hook
        .deliver("pull_request", "d-back", &push(1, "2026-11-30T10:00:09Z"))
        .await;
    back.outcome(202, "scan_queued");
    let heads: Vec<(String, Option<String>)> = pr_scans(&app.pool)
        .await
        .into_iter()
        .map(|(_, state, code, head)| (format!("{head}:{state}"), code))
        .collect();
    assert_eq!(
        heads,
        vec![
            (format!("{}:cancelled", sha(2)), Some("superseded".into())),
            (format!("{}:cancelled", sha(3)), Some("superseded".into())),
            (format!("{}:queued", sha(1)), None),
        ]
    );
}

/// A project's first deliveries, for many pull requests at once, each name the installation the
/// project does not know yet: every one is taken, and the installation is attached once. (Two of
/// them used to share-lock the project and then both update it: a deadlock, answered 503.)
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_projects_first_deliveries_at_once_are_all_taken(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (conn, hook) = github_connection(&app, "gh", false).await;
    let project = project(&app, &conn, REPO_ID).await;
    assert_eq!(project["provider_installation_id"], Value::Null);
    const PRS: u64 = 48;
    let mut set = tokio::task::JoinSet::new();
    for n in 1..=PRS {
        let hook = hook.clone();
        let mut payload = pull_request("opened", REPO_ID, n, &sha(n as u8));
        payload["installation"]["id"] = json!(INSTALLATION);
        set.spawn(async move {
            hook.deliver("pull_request", &format!("first-{n}"), &payload)
                .await
        });
    }
    while let Some(answer) = set.join_next().await {
        answer.unwrap().outcome(202, "scan_queued");
    }
    assert_eq!(pr_scans(&app.pool).await.len() as u64, PRS);
    let attached: Option<String> =
        sqlx::query_scalar("SELECT provider_installation_id FROM projects WHERE id = $1")
            .bind(Uuid::parse_str(&id_of(&project)).unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(attached, Some(INSTALLATION.to_string()));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn installations_add_disable_and_enable_projects(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (conn, hook) = github_connection(&app, "gh", true).await;
    let created = example("installation", Some("created"));
    assert_eq!(created["installation"]["id"], INSTALLATION);
    let added = hook.deliver("installation", "i-1", &created).await;
    added.outcome(202, "projects_added");
    let projects = app.admin().get("/api/v1/projects").await.expect(200);
    let items = projects["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{projects}");
    let p = &items[0];
    assert_eq!(p["provider_repo_id"], REPO_ID.to_string());
    assert_eq!(p["connection_id"], conn["id"]);
    assert_eq!(
        p["clone_url"],
        format!(
            "https://github.com/{}.git",
            p["full_name"].as_str().unwrap()
        )
    );
    assert_eq!(p["last_scan"]["kind"], "full");
    assert_eq!(p["last_scan"]["state"], "queued");
    assert!(p["disabled_reason"].is_null(), "{p}");
    let initial = p["last_scan"]["id"].as_str().unwrap().to_owned();
    let state_of = |id: String| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_as::<_, (String, Option<String>)>(
                "SELECT state::text, error_code FROM scans WHERE id = $1::uuid",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let project_reason = || {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>("SELECT disabled_reason FROM projects")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };

    // A PR on it is scanned.
    let pr = hook
        .deliver(
            "pull_request",
            "p-1",
            &pull_request("opened", REPO_ID, 1, &sha(1)),
        )
        .await;
    pr.outcome(202, "scan_queued");

    // Suspended: disabled, its scans cancelled, its PRs not scanned.
    let mut suspend = example("installation", Some("suspend"));
    suspend["installation"]["id"] = json!(INSTALLATION);
    hook.deliver("installation", "i-2", &suspend)
        .await
        .outcome(202, "projects_disabled");
    assert_eq!(
        project_reason().await.as_deref(),
        Some("installation_suspended")
    );
    assert_eq!(
        state_of(initial.clone()).await,
        ("cancelled".into(), Some("project_disabled".into()))
    );
    assert_eq!(state_of(pr.scan().0.to_string()).await.0, "cancelled");
    hook.deliver(
        "pull_request",
        "p-2",
        &pull_request("synchronize", REPO_ID, 1, &sha(2)),
    )
    .await
    .outcome(200, "project_disabled");
    // Nor may anyone queue a scan of it by hand.
    let pid = id_of(p);
    app.admin()
        .post(
            &format!("/api/v1/projects/{pid}/scans"),
            json!({"kind": "full"}),
        )
        .await
        .problem(409, "project_disabled");

    // Unsuspended: enabled, and PRs are scanned again.
    let mut unsuspend = example("installation", Some("unsuspend"));
    unsuspend["installation"]["id"] = json!(INSTALLATION);
    hook.deliver("installation", "i-3", &unsuspend)
        .await
        .outcome(202, "projects_enabled");
    assert_eq!(project_reason().await, None);
    hook.deliver(
        "pull_request",
        "p-3",
        &pull_request("synchronize", REPO_ID, 1, &sha(3)),
    )
    .await
    .outcome(202, "scan_queued");

    // Removed from the installation, then the App uninstalled.
    let mut removed = example("installation_repositories", Some("removed"));
    removed["installation"]["id"] = json!(INSTALLATION);
    removed["repositories_removed"] = json!([{"id": REPO_ID, "node_id": "x", "name": "r",
        "full_name": p["full_name"], "private": false}]);
    removed["repositories_added"] = json!([]);
    hook.deliver("installation_repositories", "i-4", &removed)
        .await
        .outcome(202, "projects_disabled");
    assert_eq!(
        project_reason().await.as_deref(),
        Some("repository_removed")
    );
    let mut deleted = example("installation", Some("deleted"));
    deleted["installation"]["id"] = json!(INSTALLATION);
    hook.deliver("installation", "i-5", &deleted)
        .await
        .outcome(202, "projects_disabled");
    assert_eq!(
        project_reason().await.as_deref(),
        Some("installation_removed")
    );
    hook.deliver(
        "pull_request",
        "p-4",
        &pull_request("synchronize", REPO_ID, 1, &sha(4)),
    )
    .await
    .outcome(200, "project_disabled");
    // Installed again: the same project, enabled, no second one.
    hook.deliver("installation", "i-6", &created)
        .await
        .outcome(202, "projects_enabled");
    assert_eq!(project_reason().await, None);
    assert_eq!(app.count("projects").await, 1);

    // A connection that does not follow installations adds nothing.
    let (_, quiet) = github_connection(&app, "quiet", false).await;
    quiet
        .deliver("installation", "i-1", &created)
        .await
        .outcome(200, "installation_recorded");
    assert_eq!(app.count("projects").await, 1);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_delivery_whose_transaction_failed_leaves_nothing_and_its_redelivery_is_taken(
    pool: PgPool,
) {
    let app = TestApp::start(pool).await;
    let (conn, hook) = github_connection(&app, "gh", false).await;
    project(&app, &conn, REPO_ID).await;
    // A fault of Picket's own, once: the first scan insert fails as a serialization failure.
    sqlx::raw_sql(
        r#"
        CREATE TABLE fault_once (fired boolean NOT NULL);
        INSERT INTO fault_once VALUES (false);
        CREATE FUNCTION fault_once() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.trigger = 'pull_request' AND NOT (SELECT fired FROM fault_once) THEN
                UPDATE fault_once SET fired = true;
                RAISE EXCEPTION 'injected' USING ERRCODE = 'serialization_failure';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER fault_once BEFORE INSERT ON scans FOR EACH ROW EXECUTE FUNCTION fault_once();
        "#,
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let payload = pull_request("opened", REPO_ID, 2, &sha(1));
    let failed = hook.deliver("pull_request", "d-1", &payload).await;
    failed.problem(503, "webhook_unavailable");
    assert_eq!(app.count("webhook_deliveries").await, 0);
    assert!(pr_scans(&app.pool).await.is_empty());
    // The trigger's own update rolled back with the rest: fire it for real this time.
    sqlx::query("UPDATE fault_once SET fired = true")
        .execute(&app.pool)
        .await
        .unwrap();
    hook.deliver("pull_request", "d-1", &payload)
        .await
        .outcome(202, "scan_queued");
    assert_eq!(pr_scans(&app.pool).await.len(), 1);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn deliveries_may_be_large_on_their_route_alone(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (_, hook) = github_connection(&app, "gh", false).await;
    // 3 MB: over the API's 2 MiB, under the webhook route's 25 MiB.
    let mut ping = example("ping", None);
    ping["padding"] = json!("x".repeat(3_000_000));
    hook.deliver("ping", "big", &ping)
        .await
        .outcome(200, "pong");
    let huge = vec![b' '; picket_api::WEBHOOK_BODY_LIMIT_BYTES + 1];
    let headers = [
        ("x-github-event", "ping".to_owned()),
        ("x-github-delivery", "huge".to_owned()),
        ("x-hub-signature-256", sign(SECRET, &huge)),
    ];
    hook.raw(&headers, huge)
        .await
        .problem(413, "body_too_large");
    let resp = app
        .admin()
        .post(
            "/api/v1/connections",
            json!({"provider": "git", "name": "x".repeat(10), "base_url": "x".repeat(3_000_000)}),
        )
        .await;
    resp.problem(413, "body_too_large");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_rotated_secret_is_taken_only_within_its_overlap(pool: PgPool) {
    let cfg = ApiConfig {
        webhook_secret_overlap: Duration::from_secs(2),
        ..ApiConfig::default()
    };
    let app = TestApp::start_with(pool, cfg).await;
    let (conn, hook) = github_connection(&app, "gh", false).await;
    let path = format!("/api/v1/connections/{}/webhook-secret/rotate", id_of(&conn));
    let rotated = app
        .admin()
        .post(
            &path,
            json!({"webhook_secret": "the-new-secret-0123456789"}),
        )
        .await
        .expect(200);
    assert_eq!(rotated["webhook_secret"], "the-new-secret-0123456789");
    let ping = example("ping", None);
    hook.deliver_signed("ping", "r-1", &ping, "the-new-secret-0123456789")
        .await
        .outcome(200, "pong");
    hook.deliver_signed("ping", "r-2", &ping, SECRET)
        .await
        .outcome(200, "pong");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    hook.deliver_signed("ping", "r-3", &ping, SECRET)
        .await
        .problem(401, "signature_mismatch");
    hook.deliver_signed("ping", "r-4", &ping, "the-new-secret-0123456789")
        .await
        .outcome(200, "pong");

    // Drawn by the server when not given; shown once, never in the connection or the log.
    let drawn = app.admin().post(&path, json!({})).await.expect(200);
    let drawn = drawn["webhook_secret"].as_str().unwrap().to_owned();
    assert_eq!(drawn.len(), 64);
    assert!(drawn.bytes().all(|b| b.is_ascii_hexdigit()));
    hook.deliver_signed("ping", "r-5", &ping, &drawn)
        .await
        .outcome(200, "pong");
    let shown = app
        .admin()
        .get(&format!("/api/v1/connections/{}", id_of(&conn)))
        .await
        .text;
    for secret in [drawn.as_str(), SECRET, "the-new-secret-0123456789"] {
        assert!(!shown.contains(secret));
        assert!(!app.logs().contains(secret), "{secret} was logged");
    }
    // Only GitHub connections with an App's credentials have a secret to rotate.
    let bare = app.admin().connection("bare").create().await;
    app.admin()
        .post(
            &format!("/api/v1/connections/{}/webhook-secret/rotate", id_of(&bare)),
            json!({}),
        )
        .await
        .problem(409, "no_webhook_secret");
    app.admin()
        .post(&path, json!({"webhook_secret": "short"}))
        .await
        .problem(422, "invalid_body");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn github_credentials_are_an_apps_and_checked(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let ok = json!({"app_id": 42, "private_key": private_key(), "webhook_secret": SECRET});
    let mut cases = Vec::new();
    for (field, value, refused) in [
        ("app_id", json!(0), "credentials.app_id"),
        ("app_id", json!("42"), "credentials.app_id"),
        (
            "private_key",
            json!("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"),
            "credentials.private_key",
        ),
        (
            "webhook_secret",
            json!("too-short"),
            "credentials.webhook_secret",
        ),
        ("extra", json!(1), "credentials"),
    ] {
        let mut creds = ok.clone();
        creds[field] = value;
        cases.push((creds, refused));
    }
    cases.push((json!("a-token"), "credentials"));
    for (i, (creds, field)) in cases.into_iter().enumerate() {
        let resp = admin
            .post(
                "/api/v1/connections",
                json!({"provider": "github", "name": format!("c{i}"), "credentials": creds}),
            )
            .await;
        resp.problem(422, "invalid_body");
        assert_eq!(resp.error_fields(), [field], "{}", resp.text);
        let key_body = private_key().lines().nth(1).unwrap();
        assert!(!resp.text.contains(key_body) && !resp.text.contains(SECRET));
    }
    assert_eq!(app.count("vcs_connections").await, 0);

    // A PKCS#8 key is taken too; follow_installations can be changed.
    let pkcs8 = {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::EncodePrivateKey;
        rsa::RsaPrivateKey::from_pkcs1_pem(private_key())
            .unwrap()
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    };
    let conn = admin
        .post(
            "/api/v1/connections",
            json!({"provider": "github", "name": "gh", "credentials":
                {"app_id": 7, "private_key": pkcs8, "webhook_secret": SECRET}}),
        )
        .await
        .expect(201);
    assert_eq!(conn["follow_installations"], false);
    let changed = admin
        .patch(
            &format!("/api/v1/connections/{}", id_of(&conn)),
            json!({"follow_installations": true}),
        )
        .await
        .expect(200);
    assert_eq!(changed["follow_installations"], true);
    assert!(!changed.to_string().contains("PRIVATE"));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn bodies_are_pruned_after_their_retention_and_the_log_stays(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (conn, hook) = github_connection(&app, "gh", false).await;
    hook.deliver("ping", "old", &example("ping", None))
        .await
        .outcome(200, "pong");
    hook.deliver("ping", "new", &example("ping", None))
        .await
        .outcome(200, "pong");
    sqlx::query(
        "UPDATE webhook_deliveries SET received_at = now() - interval '8 days' WHERE delivery_id = 'old'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let week = time::OffsetDateTime::now_utc() - time::Duration::days(7);
    assert_eq!(
        picket_db::webhooks::prune_bodies(&app.pool, week)
            .await
            .unwrap(),
        1
    );
    let path = format!("/api/v1/connections/{}/deliveries", id_of(&conn));
    let old = app.admin().get(&format!("{path}/old")).await.expect(200);
    assert_eq!(old["outcome"], "pong");
    assert_eq!(old["has_body"], false);
    assert!(
        old["body"].is_null() && old["body_encoding"].is_null(),
        "{old}"
    );
    let new = app.admin().get(&format!("{path}/new")).await.expect(200);
    assert_eq!(new["has_body"], true);
    assert!(new["body"].is_string());
}

/// A PR scan of a GitHub project clones with a token minted for it alone: the one repository,
/// contents read plus pull requests and checks write (its feedback), through the installation
/// the webhook named; a full scan's token may only read. The App's key never leaves the API.
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_github_scan_clones_with_a_token_minted_for_it_alone(pool: PgPool) {
    let AppWorld {
        server,
        app,
        hook,
        installation,
        repo_id,
    } = AppWorld::start(pool, &["acme/other"]).await;
    // The project's initial full scan goes first: its token may only read.
    let mut payload = pull_request("opened", repo_id as i64, 7, &sha(7));
    payload["installation"]["id"] = json!(installation);
    let answer = hook.deliver("pull_request", "d-1", &payload).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);

    let mut seen = Vec::new();
    while let Some(claimed) = queue::claim(&app.pool, "e2e", Duration::from_secs(300))
        .await
        .unwrap()
    {
        let token = queue::mint_scan_token(&app.pool, &claimed.lease)
            .await
            .unwrap();
        let cred = app
            .client(secrecy::ExposeSecret::expose_secret(&token))
            .get("/api/v1/worker/scan/credential")
            .await
            .expect(200);
        assert!(!cred.to_string().contains("PRIVATE KEY"));
        assert_eq!(cred["username"], "x-access-token");
        let minted = server
            .minted_tokens()
            .into_iter()
            .find(|m| m.token == cred["token"].as_str().unwrap())
            .expect("the token the worker got is one GitHub minted");
        assert_eq!(minted.installation_id, installation);
        assert_eq!(minted.repository_ids, Some(vec![repo_id]));
        let perms: Vec<(String, String)> = minted.permissions.into_iter().collect();
        seen.push((claimed.scan.kind, claimed.scan.pr_number, perms));
    }
    let read = |p: &str| (p.to_owned(), "read".to_owned());
    let write = |p: &str| (p.to_owned(), "write".to_owned());
    seen.sort_by_key(|(_, pr, _)| *pr);
    assert_eq!(
        seen,
        [
            (picket_core::ScanKind::Full, None, vec![read("contents")]),
            (
                picket_core::ScanKind::Diff,
                Some(7),
                vec![read("contents"), read("metadata"), write("pull_requests")]
            ),
        ]
    );
    assert!(server.violations().is_empty(), "{:#?}", server.violations());
}

/// A PR scan's spec carries the merge base GitHub's compare API gives for the head against the
/// target branch as it is when the spec is served (the scan's start), not when the scan was
/// queued; when GitHub fails, the spec goes without it (the worker computes it from its clone)
/// and the fallback is logged with the error's code.
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_pr_scans_spec_carries_the_merge_base_from_githubs_compare_api(pool: PgPool) {
    use picket_test_support::github::{Auth, Fault, FaultKind, TestPull};
    let AppWorld {
        server,
        app,
        hook,
        installation,
        repo_id,
    } = AppWorld::start(pool, &[]).await;
    let mut payload = pull_request("opened", repo_id as i64, 7, &sha(7));
    payload["installation"]["id"] = json!(installation);
    let base_ref = payload["pull_request"]["base"]["ref"]
        .as_str()
        .unwrap()
        .to_owned();
    // The target branch at queue time, as the webhook says.
    let queued_base = sha(0xb0);
    payload["pull_request"]["base"]["sha"] = json!(queued_base);
    hook.deliver("pull_request", "d-1", &payload)
        .await
        .outcome(202, "scan_queued");
    // The target moved on before the scan started; GitHub's compare answers for it as it is now.
    let merge_base = sha(0x4d);
    server.add_pull(
        repo_id,
        TestPull {
            number: 7,
            head_sha: sha(7),
            head_ref: "feature".into(),
            base_ref: base_ref.clone(),
            base_sha: sha(0xb1),
            merge_base: merge_base.clone(),
            title: "PR 7".into(),
            author: "octocat".into(),
            ..TestPull::default()
        },
    );

    let claimed = loop {
        let claimed = queue::claim(&app.pool, "e2e", Duration::from_secs(300))
            .await
            .unwrap()
            .expect("the PR scan is queued");
        if claimed.scan.pr_number == Some(7) {
            break claimed;
        }
    };
    let token = queue::mint_scan_token(&app.pool, &claimed.lease)
        .await
        .unwrap();
    let worker = app.client(secrecy::ExposeSecret::expose_secret(&token));
    let spec = worker.get("/api/v1/worker/scan").await.expect(200);
    assert_eq!(spec["kind"], "diff");
    assert_eq!(spec["base_sha"], json!(queued_base));
    assert_eq!(spec["merge_base_sha"], json!(merge_base), "{spec}");
    let compares: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/compare/"))
        .collect();
    assert_eq!(compares.len(), 1, "{compares:#?}");
    assert_eq!(
        compares[0].path,
        format!("/repos/acme/app/compare/{base_ref}...{}", sha(7))
    );
    assert!(
        matches!(&compares[0].auth, Auth::InstallationToken { installation_id, .. } if *installation_id == installation),
        "{:?}",
        compares[0].auth
    );

    // GitHub fails (every retry too): the spec is served without a merge base, and the worker
    // falls back to its clone.
    server.inject(Fault {
        path_contains: "/compare/".into(),
        kind: FaultKind::ServerError { status: 500 },
        times: 10,
    });
    let spec = worker.get("/api/v1/worker/scan").await.expect(200);
    assert_eq!(spec["kind"], "diff");
    assert!(spec["merge_base_sha"].is_null(), "{spec}");
    let logs = app.logs();
    assert!(
        logs.lines().any(|l| l.contains("computes it from its clone")
            && l.contains("provider_unavailable")),
        "{logs}"
    );
    assert!(server.violations().is_empty(), "{:#?}", server.violations());
}

/// A provider that gives up waiting (GitHub: after 10 s) closes its connection; the delivery is
/// still carried out whole, since GitHub never sends it again. Here the delivery log is locked
/// while the delivery arrives, so the request outlives the client's patience.
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_delivery_whose_sender_hung_up_is_still_carried_out(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (conn, hook) = github_connection(&app, "gh", false).await;
    project(&app, &conn, 4242).await;
    let body = serde_json::to_vec(&pull_request("opened", 4242, 3, &"ab".repeat(20))).unwrap();

    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE webhook_deliveries IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let sent = impatient
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", "hung-up-1")
        .header("x-hub-signature-256", sign(SECRET, &body))
        .body(body)
        .send()
        .await;
    assert!(sent.is_err_and(|e| e.is_timeout()), "the sender gave up");
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.commit().await.unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let logged: Option<String> = sqlx::query_scalar(
            "SELECT outcome FROM webhook_deliveries WHERE delivery_id = 'hung-up-1'",
        )
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        if let Some(outcome) = logged {
            assert_eq!(outcome, "scan_queued");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the delivery was dropped with its connection"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pr_scans(&app.pool).await.len(), 1);
}
