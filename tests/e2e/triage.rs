//! Triage by reply, end to end: signed `pull_request_review_comment` deliveries from the GitHub
//! test server to the real API (`POST /webhooks/github/{connection}`), the real triage loop of
//! the scheduler (picket-scheduler `triage`) against the GitHub test server, findings read back
//! through the API. Every request Picket sent to GitHub must be valid against GitHub's OpenAPI
//! description.

use picket_core::feedback::Marker;
use picket_core::protocol::ReportedFinding;
use picket_core::{Fingerprint, Product, ProjectId, RuleId, ScanId, ScanKind, Severity};
use picket_db::findings::{self, Reported, ScanTarget};
use picket_db::triage::{self, RequestState};
use picket_db::Db;
use picket_scheduler::triage::TriageConfig;
use picket_test_support::github::{
    Fault, FaultKind, GitHubServer, TestApp as GitHubApp, TestPull, WebhookDelivery,
};
use picket_tests::{id_of, TestApp};
use picket_vcs::github::api::{ClientOptions, RetryPolicy};
use picket_vcs::Registry;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const PR: u64 = 7;

/// GitHub (test server) with Picket's App on `acme/app` and PR #7; Picket's API with a
/// connection to it and the project; one open finding of fingerprint `fp` on `main` and on the
/// PR's head ref; Picket's inline comment on it (`bot_comment`).
struct World {
    server: GitHubServer,
    gh_app: GitHubApp,
    repo_id: u64,
    app: TestApp,
    connection: String,
    project: ProjectId,
    fp: Fingerprint,
    bot_comment: u64,
    registry: Registry,
    cfg: TriageConfig,
}

fn finding(fp: &Fingerprint) -> ReportedFinding {
    ReportedFinding {
        product: Product::Code,
        fingerprint: fp.clone(),
        rule_id: "py.sqli".parse().unwrap(),
        path: "src/db.py".into(),
        start_line: 10,
        end_line: 10,
        severity: Severity::High,
        message: "SQL built from user input".into(),
        new_in_pr: true,
        secret: None,
        suppressed: None,
        matched_lines: Vec::new(),
        dependency: None,
    }
}

/// Connections' clients as the scheduler builds them (credentials read from the database),
/// with short backoffs on GitHub's 5xx.
fn registry(app: &TestApp, server: &GitHubServer) -> Registry {
    Registry::new(
        Arc::new(picket_db::connections::CredentialStore::new(
            app.pool.clone(),
            Arc::new(app.cipher()),
        )),
        ClientOptions {
            retry: RetryPolicy {
                max_wait: Duration::from_secs(5),
                secondary_backoff: Duration::from_millis(50),
                server_error_backoff: Duration::from_millis(20),
                server_error_retries: 2,
            },
            ..ClientOptions::new(server.api_url())
        },
    )
}

/// Records `fp` as reported by `scan` on `git_ref` (as the worker's upload does).
async fn ingest(
    app: &TestApp,
    project_id: ProjectId,
    scan: ScanId,
    kind: ScanKind,
    git_ref: &str,
    fp: &Fingerprint,
) {
    let mut c = app.pool.acquire().await.unwrap();
    findings::ingest(
        &mut c,
        &ScanTarget {
            org_id: app.org_id,
            project_id,
            scan_id: scan,
            kind,
            git_ref: git_ref.into(),
        },
        Reported {
            findings: &[finding(fp)],
            fixed_in_pr: &[],
            rules_run: &[],
            deleted_paths: &[],
            unread_paths: &[],
        },
    )
    .await
    .unwrap();
}

/// A diff scan of PR #7 at `head`, queued through the API.
async fn diff_scan(app: &TestApp, project: ProjectId, head: &str) -> ScanId {
    let queued = app
        .admin()
        .post(
            &format!("/api/v1/projects/{}/scans", project.0),
            json!({"kind": "diff", "git_ref": "refs/pull/7/head", "commit_sha": head,
                   "base_ref": "main", "pr_number": PR}),
        )
        .await
        .expect(201);
    ScanId(id_of(&queued).parse().unwrap())
}

impl World {
    async fn new(pool: PgPool) -> World {
        let server = GitHubServer::start().await;
        let gh_app = server.add_app("picket");
        let installation = server.add_installation(gh_app.id, "acme");
        let repo_id = server.add_repo(
            installation,
            "acme/app",
            "main",
            "http://127.0.0.1:1/acme/app.git",
        );
        server.add_pull(
            repo_id,
            TestPull {
                number: PR,
                head_sha: "a".repeat(40),
                head_ref: "feature/x".into(),
                base_ref: "main".into(),
                base_sha: "b".repeat(40),
                merge_base: "b".repeat(40),
                title: "Add x".into(),
                author: "alice".into(),
                ..TestPull::default()
            },
        );
        let app = TestApp::start(pool).await;
        let conn = app
            .github_connection("acme", &server, &gh_app, &gh_app.webhook_secret)
            .await;
        let project = app
            .admin()
            .post(
                "/api/v1/projects",
                json!({"projects": [{
                    "connection_id": id_of(&conn), "provider_repo_id": repo_id.to_string(),
                    "full_name": "acme/app", "clone_url": "http://127.0.0.1:1/acme/app.git",
                    "default_branch": "main",
                }]}),
            )
            .await
            .expect(201)["projects"][0]
            .clone();
        let project_id = ProjectId(id_of(&project).parse().unwrap());
        let scan = ScanId(
            project["last_scan"]["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        );
        let rule: RuleId = "py.sqli".parse().unwrap();
        let fp = Fingerprint::compute(&rule, "src/db.py", "cursor.execute(q)", 0);
        ingest(&app, project_id, scan, ScanKind::Full, "main", &fp).await;
        let pr_scan = diff_scan(&app, project_id, &"a".repeat(40)).await;
        ingest(
            &app,
            project_id,
            pr_scan,
            ScanKind::Diff,
            "refs/pull/7/head",
            &fp,
        )
        .await;
        let bot_comment = server.add_review_comment(
            repo_id,
            PR,
            "picket[bot]",
            "src/db.py",
            10,
            &format!(
                "{}\n**py.sqli** SQL built from user input",
                Marker::Finding(fp.clone()).render()
            ),
        );
        let registry = registry(&app, &server);
        let cfg = TriageConfig {
            idle: Duration::from_millis(20),
            reply_claim: Duration::from_secs(60),
            max_failures: 5,
        };
        World {
            connection: id_of(&conn),
            server,
            gh_app,
            repo_id,
            app,
            project: project_id,
            fp,
            bot_comment,
            registry,
            cfg,
        }
    }

    fn db(&self) -> Db {
        Db::from_pool(self.app.pool.clone())
    }

    /// `author` replies `body` in the thread of comment `to`; returns the reply's delivery.
    fn reply(&self, to: u64, author: &str, body: &str) -> WebhookDelivery {
        let id = self
            .server
            .add_review_reply(self.repo_id, PR, to, author, body);
        let payload = self
            .server
            .review_comment_payload(self.repo_id, id, "created");
        self.server
            .webhook(&self.gh_app, "pull_request_review_comment", &payload)
    }

    /// Delivers to the API; returns (status, outcome).
    async fn deliver(&self, d: &WebhookDelivery) -> (u16, String) {
        let mut req = reqwest::Client::new().post(format!(
            "{}/webhooks/github/{}",
            self.app.base, self.connection
        ));
        for (k, v) in &d.headers {
            req = req.header(k, v);
        }
        let resp = req.body(d.body.clone()).send().await.unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        (
            status,
            body["outcome"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// Runs the triage loop's steps until nothing is due.
    async fn drain(&self) {
        let db = self.db();
        for _ in 0..50 {
            if !picket_scheduler::triage::step(&db, &self.registry, &self.cfg)
                .await
                .unwrap()
            {
                return;
            }
        }
        panic!("the triage loop never ran out of due requests");
    }

    /// The project's findings of `fp`, one per branch, from the API.
    async fn findings(&self) -> Vec<Value> {
        let page = self
            .app
            .admin()
            .get(&format!("/api/v1/projects/{}/findings", self.project.0))
            .await
            .expect(200);
        let mut items: Vec<Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["fingerprint"] == self.fp.as_str())
            .cloned()
            .collect();
        items.sort_by_key(|f| f["git_ref"].as_str().unwrap().to_owned());
        assert_eq!(items.len(), 2, "{page}");
        items
    }

    /// Picket's answers in the thread of `to`: (in reply to, body).
    fn answers(&self) -> Vec<String> {
        self.server
            .review_comments(self.repo_id, PR)
            .into_iter()
            .filter(|c| c.author == "picket[bot]" && c.in_reply_to.is_some())
            .map(|c| {
                assert_eq!(c.in_reply_to, Some(self.bot_comment), "{c:?}");
                c.body
            })
            .collect()
    }

    async fn requests(&self) -> Vec<triage::Request> {
        let mut out = Vec::new();
        for id in triage::of_project(&self.app.pool, self.project)
            .await
            .unwrap()
        {
            out.push(triage::get(&self.app.pool, id).await.unwrap());
        }
        out
    }

    #[track_caller]
    fn assert_valid(&self) {
        let v = self.server.violations();
        assert!(v.is_empty(), "OpenAPI violations: {v:#?}");
    }
}

/// Waits until every triage request of the project is done (or failed), up to 20 s.
async fn settled(w: &World) -> Vec<triage::Request> {
    let start = Instant::now();
    loop {
        let requests = w.requests().await;
        if requests
            .iter()
            .all(|r| matches!(r.state, RequestState::Done | RequestState::Failed))
        {
            return requests;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "triage requests never settled: {requests:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A writer's `/fp` ignores the finding on every branch (reason and who recorded), Picket
/// answers once in the thread; a redelivery changes nothing; a later scan keeps the ignore;
/// `/open` reopens it, and `/open` again says there was nothing to reopen. The real loop runs
/// beside the API, as `picket scheduler` runs it.
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_writer_triages_by_reply_and_picket_answers_once(pool: PgPool) {
    let w = World::new(pool).await;
    w.server.set_permission(w.repo_id, "carol", "write");
    let stop = CancellationToken::new();
    let providers = Arc::new(registry(&w.app, &w.server));
    let looping = tokio::spawn(picket_scheduler::triage::run(
        w.db(),
        providers,
        w.cfg.clone(),
        stop.clone(),
    ));
    for f in w.findings().await {
        assert_eq!(f["status"], "open");
    }

    let fp = w.reply(w.bot_comment, "carol", "/FP  only in\ntests");
    assert_eq!(w.deliver(&fp).await, (202, "triage_queued".to_owned()));
    let done = settled(&w).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].outcome.as_deref(), Some("triaged"));
    assert_eq!(done[0].fingerprint.as_deref(), Some(w.fp.as_str()));
    assert!(done[0].reply_comment_id.is_some());
    let ignored = w.findings().await;
    for f in &ignored {
        assert_eq!(f["status"], "ignored", "{f}");
        assert_eq!(f["triage_reason"], "false positive: only in tests", "{f}");
        assert_eq!(f["triaged_by"], "reply:github:carol", "{f}");
    }
    let answers = w.answers();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert!(
        answers[0].starts_with(&format!(
            "<!-- picket:triage-reply {} -->\n",
            done[0].comment_id
        )),
        "{}",
        answers[0]
    );
    assert!(answers[0].contains("as a false positive"), "{}", answers[0]);
    assert!(!answers[0].contains('@') && !answers[0].contains("tests"));

    // The same delivery again, and the same reply under another delivery id: nothing more.
    assert_eq!(w.deliver(&fp).await, (200, "duplicate".to_owned()));
    let again = w.server.webhook(
        &w.gh_app,
        "pull_request_review_comment",
        &serde_json::from_slice(&fp.body).unwrap(),
    );
    assert_eq!(w.deliver(&again).await, (200, "duplicate_reply".to_owned()));
    // Picket's own answer comes back as an event too, and is ignored.
    let own = w
        .server
        .review_comments(w.repo_id, PR)
        .into_iter()
        .find(|c| c.author == "picket[bot]" && c.in_reply_to.is_some())
        .unwrap();
    let own = w.server.webhook(
        &w.gh_app,
        "pull_request_review_comment",
        &w.server
            .review_comment_payload(w.repo_id, own.id, "created"),
    );
    assert_eq!(w.deliver(&own).await, (200, "reply_from_bot".to_owned()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(settled(&w).await.len(), 1);
    assert_eq!(w.answers().len(), 1);

    // The PR's next push is scanned and still has it: the ignore sticks to the fingerprint.
    let next = diff_scan(&w.app, w.project, &"c".repeat(40)).await;
    ingest(
        &w.app,
        w.project,
        next,
        ScanKind::Diff,
        "refs/pull/7/head",
        &w.fp,
    )
    .await;
    assert!(w.findings().await.iter().all(|f| f["status"] == "ignored"));

    // /open reopens it everywhere; /open again has nothing to reopen.
    let open = w.reply(w.bot_comment, "carol", "/open");
    assert_eq!(w.deliver(&open).await, (202, "triage_queued".to_owned()));
    settled(&w).await;
    for f in w.findings().await {
        assert_eq!(f["status"], "open", "{f}");
        assert_eq!(f["triaged_by"], "reply:github:carol", "{f}");
        assert!(f["triage_reason"].is_null(), "{f}");
    }
    let open = w.reply(w.bot_comment, "carol", "/open");
    assert_eq!(w.deliver(&open).await, (202, "triage_queued".to_owned()));
    let done = settled(&w).await;
    let outcomes: Vec<_> = done.iter().map(|r| r.outcome.clone().unwrap()).collect();
    assert_eq!(outcomes, ["triaged", "reopened", "not_ignored"]);
    let answers = w.answers();
    assert_eq!(answers.len(), 3, "{answers:#?}");
    assert!(answers[1].contains("reopened"), "{}", answers[1]);
    assert!(answers[2].contains("nothing to reopen"), "{}", answers[2]);

    stop.cancel();
    looping.await.unwrap();
    w.assert_valid();
    let logs = w.app.logs();
    assert!(
        !logs.contains("PRIVATE KEY") && !logs.contains("ghs_"),
        "a secret was logged"
    );
}

/// Someone without write access (a reader, or no collaborator at all) gets a polite refusal
/// and the finding does not change; the author's permission is asked of GitHub.
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn others_are_refused_politely(pool: PgPool) {
    let w = World::new(pool).await;
    w.server.set_permission(w.repo_id, "dave", "read");
    for (who, body) in [("dave", "/fp only in tests"), ("eve", "/ar who cares")] {
        let d = w.reply(w.bot_comment, who, body);
        assert_eq!(w.deliver(&d).await, (202, "triage_queued".to_owned()));
    }
    w.drain().await;
    let done = w.requests().await;
    assert!(done
        .iter()
        .all(|r| r.state == RequestState::Done && r.outcome.as_deref() == Some("refused")));
    for f in w.findings().await {
        assert_eq!(f["status"], "open", "{f}");
        assert!(f["triaged_by"].is_null(), "{f}");
    }
    let answers = w.answers();
    assert_eq!(answers.len(), 2);
    assert!(answers
        .iter()
        .all(|a| a.contains("only people with write access")));
    let asked: Vec<String> = w
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/collaborators/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(
        asked,
        [
            "/repos/acme/app/collaborators/dave/permission",
            "/repos/acme/app/collaborators/eve/permission"
        ]
    );
    w.assert_valid();
}

/// Not triage: an unknown command, prose, a command on the PR's conversation, a reply to a
/// comment that is not Picket's (even with a finding's marker in it) — nothing changes and
/// nothing is answered. A known command without its reason gets told how to write it.
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn what_is_not_a_triage_reply_changes_nothing(pool: PgPool) {
    let w = World::new(pool).await;
    w.server.set_permission(w.repo_id, "carol", "admin");
    for body in ["/rescan", "Thanks!\n/fp later", "/fpx x"] {
        let d = w.reply(w.bot_comment, "carol", body);
        assert_eq!(
            w.deliver(&d).await,
            (200, "not_a_command".to_owned()),
            "{body}"
        );
    }
    // The PR's conversation: no thread to answer in.
    let c = w
        .server
        .add_issue_comment(w.repo_id, PR, "carol", "/fp only in tests");
    let d = w.server.webhook(
        &w.gh_app,
        "issue_comment",
        &w.server.issue_comment_payload(w.repo_id, c, "created"),
    );
    assert_eq!(w.deliver(&d).await, (200, "not_a_thread_reply".to_owned()));
    // A thread's first comment is no reply either.
    let top =
        w.server
            .add_review_comment(w.repo_id, PR, "carol", "src/db.py", 11, "/fp only in tests");
    let d = w.server.webhook(
        &w.gh_app,
        "pull_request_review_comment",
        &w.server.review_comment_payload(w.repo_id, top, "created"),
    );
    assert_eq!(w.deliver(&d).await, (200, "not_a_thread_reply".to_owned()));
    assert!(w.requests().await.is_empty());

    // A forged marker in a person's comment: recorded, checked with GitHub, dropped.
    let forged = w.server.add_review_comment(
        w.repo_id,
        PR,
        "mallory",
        "src/db.py",
        10,
        &Marker::Finding(w.fp.clone()).render(),
    );
    let d = w.reply(forged, "carol", "/fp only in tests");
    assert_eq!(w.deliver(&d).await, (202, "triage_queued".to_owned()));
    // A known command without its reason.
    let d = w.reply(w.bot_comment, "carol", "/other");
    assert_eq!(w.deliver(&d).await, (202, "triage_queued".to_owned()));
    w.drain().await;
    let outcomes: Vec<_> = w
        .requests()
        .await
        .into_iter()
        .map(|r| (r.state, r.outcome.unwrap(), r.reply_comment_id.is_some()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (RequestState::Done, "not_picket_comment".to_owned(), false),
            (RequestState::Done, "usage".to_owned(), true),
        ]
    );
    for f in w.findings().await {
        assert_eq!(f["status"], "open", "{f}");
    }
    let answers = w.answers();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert!(
        answers[0].contains("`/other` needs a reason"),
        "{}",
        answers[0]
    );
    // Nothing was posted in mallory's thread.
    assert!(w
        .server
        .review_comments(w.repo_id, PR)
        .iter()
        .all(|c| c.author != "picket[bot]" || c.in_reply_to != Some(forged)));
    w.assert_valid();
}

/// The triage commits with the decision; the answer is posted after. A failed answer is
/// retried without triaging again, and an answer posted by an attempt that died before
/// recording it is found by its marker, not posted twice.
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn retries_never_triage_or_answer_twice(pool: PgPool) {
    let w = World::new(pool).await;
    w.server.set_permission(w.repo_id, "carol", "maintain");
    // GitHub fails the answer's POST, retries included.
    w.server.inject(Fault {
        path_contains: "/pulls/7/comments".into(),
        kind: FaultKind::ServerError { status: 502 },
        times: 3,
    });
    let d = w.reply(w.bot_comment, "carol", "/ar behind the VPN");
    assert_eq!(w.deliver(&d).await, (202, "triage_queued".to_owned()));
    let db = w.db();
    assert!(picket_scheduler::triage::step(&db, &w.registry, &w.cfg)
        .await
        .unwrap());
    let req = w.requests().await.remove(0);
    assert_eq!(req.state, RequestState::Answering);
    assert_eq!(req.outcome.as_deref(), Some("triaged"));
    assert_eq!((req.reply_attempts, req.failures), (1, 1));
    assert_eq!(req.last_error.as_deref(), Some("provider_unavailable"));
    assert!(w.answers().is_empty());
    let first = w.findings().await;
    assert!(first.iter().all(
        |f| f["status"] == "ignored" && f["triage_reason"] == "acceptable risk: behind the VPN"
    ));
    // Not due before its backoff.
    assert!(!picket_scheduler::triage::step(&db, &w.registry, &w.cfg)
        .await
        .unwrap());
    // Someone copies the answer's marker into the thread meanwhile: it does not pass for it.
    w.server.add_review_reply(
        w.repo_id,
        PR,
        w.bot_comment,
        "mallory",
        &format!("<!-- picket:triage-reply {} -->\nok", req.comment_id),
    );
    let due_now = "UPDATE triage_requests SET next_attempt_at = now() WHERE id = $1";
    sqlx::query(due_now)
        .bind(req.id)
        .execute(&w.app.pool)
        .await
        .unwrap();
    w.drain().await;
    let req = w.requests().await.remove(0);
    assert_eq!((req.state, req.reply_attempts), (RequestState::Done, 2));
    assert_eq!(w.answers().len(), 1);
    // The findings were not triaged again: same time, same author.
    assert_eq!(w.findings().await, first);

    // An attempt that posted and died before recording it: the next finds the answer.
    sqlx::query(
        "UPDATE triage_requests SET state = 'answering', reply_comment_id = NULL,
                next_attempt_at = now() WHERE id = $1",
    )
    .bind(req.id)
    .execute(&w.app.pool)
    .await
    .unwrap();
    w.drain().await;
    let again = w.requests().await.remove(0);
    assert_eq!((again.state, again.reply_attempts), (RequestState::Done, 3));
    assert_eq!(again.reply_comment_id, req.reply_comment_id);
    assert_eq!(w.answers().len(), 1);
    assert_eq!(w.findings().await, first);
    w.assert_valid();
}
