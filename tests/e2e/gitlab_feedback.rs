//! A GitLab merge request from webhook to feedback, every part real but GitLab: a `Merge Request
//! Hook` delivery with the hook's token to the API, the scheduler's dispatch loop starting this
//! build's `picket worker` as a plain process (which clones a real git repository at
//! `refs/merge-requests/<iid>/head`, runs the pinned Semgrep with Picket's pack, begins its
//! feedback through the API and posts with the connection's token), the PR check loop moving the
//! commit status, and the triage loop answering a reply. GitLab is picket-test-support's server,
//! which checks every request against `@gitbeaker/core`'s endpoints.

use crate::pr_feedback::{
    commit, git, lines, APP_V1, APP_V2, BLOCK_RULE, COMMENT_RULE, MONITOR_RULE, MORE,
};
use crate::webhooks::Hook;
use picket_db::Db;
use picket_scheduler::pr_checks::PrCheckConfig;
use picket_scheduler::process::ProcessExecutor;
use picket_scheduler::{SchedulerConfig, WorkerCommand};
use picket_test_support::gitlab::{access, GitLabServer, TestDiscussion, TestMergeRequest};
use picket_tests::{id_of, picket_binary, semgrep_binary, TestApp, RULES_DIR};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "gitlab-hook-secret-0123456789";
const IID: u64 = 7;

struct World {
    app: TestApp,
    server: GitLabServer,
    hook: Hook,
    project: u64,
    dir: tempfile::TempDir,
    stop: CancellationToken,
    scheduler: Option<tokio::task::JoinHandle<()>>,
}

impl World {
    async fn new(pool: PgPool) -> World {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("app");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        commit(&repo, &[("README.md", "# app\n")], "base");
        let clone_url = reqwest::Url::from_file_path(&repo).unwrap().to_string();

        let server = GitLabServer::start().await;
        let bot = server.add_bot("picket-bot");
        let token = server.add_token(bot, &["api", "read_repository"]);
        let group = server.add_group("acme");
        server.add_group_member(group, bot, access::DEVELOPER);
        let project = server.add_project("acme", "app");
        server.update_project(project, |p| p.http_url_to_repo = clone_url.clone());
        let alice = server.add_user("alice");
        server.add_project_member(project, alice, access::MAINTAINER);

        let app = TestApp::start(pool).await;
        let conn = app
            .admin()
            .post(
                "/api/v1/connections",
                json!({
                    "provider": "gitlab", "name": "gitlab", "base_url": server.api_url(),
                    "credentials": {"token": token, "webhook_secret": SECRET, "group": "acme"},
                }),
            )
            .await
            .expect(201);
        // Added from the connection's listing, as the Projects page adds it (its clone URL is
        // the file:// repository the test server lists).
        app.admin()
            .post(
                &format!("/api/v1/connections/{}/repositories", id_of(&conn)),
                json!({"select": "all"}),
            )
            .await
            .expect(201);
        app.admin()
            .put(
                "/api/v1/policies/team",
                json!({"rules": {BLOCK_RULE: "block", COMMENT_RULE: "comment"}}),
            )
            .await
            .expect(201);
        let hook = Hook {
            http: reqwest::Client::new(),
            url: format!("{}{}", app.base, conn["webhook_url"].as_str().unwrap()),
            secret: SECRET.to_owned(),
        };
        let mut world = World {
            app,
            server,
            hook,
            project,
            dir,
            stop: CancellationToken::new(),
            scheduler: None,
        };
        world.start_scheduler().await;
        world
    }

    fn repo(&self) -> std::path::PathBuf {
        self.dir.path().join("app")
    }

    async fn start_scheduler(&mut self) {
        let installation = picket_db::installation::id(&self.app.pool).await.unwrap();
        let semgrep = std::fs::canonicalize(semgrep_binary()).unwrap();
        let worker = WorkerCommand {
            program: picket_binary(),
            args: vec!["worker".into()],
            env: vec![
                ("PICKET_API_URL".into(), self.app.base.clone()),
                ("PICKET_SEMGREP".into(), semgrep.display().to_string()),
                ("PICKET_RULES_DIR".into(), RULES_DIR.into()),
                ("PICKET_ALLOW_LOCAL_REPOS".into(), "true".into()),
            ],
        };
        let mut cfg = SchedulerConfig::new("gitlab-feedback-e2e");
        cfg.slots = 2;
        cfg.poll = Duration::from_millis(100);
        cfg.providers = Some(Arc::new(picket_vcs::Registry::new(
            Arc::new(picket_db::connections::CredentialStore::new(
                self.app.pool.clone(),
                Arc::new(self.app.cipher()),
            )),
            picket_vcs::client::ClientOptions::new(picket_vcs::gitlab::DEFAULT_API_URL),
        )));
        cfg.reconcile.every = Duration::ZERO;
        cfg.pr_checks = PrCheckConfig {
            idle: Duration::from_millis(100),
            recheck: Duration::from_millis(300),
            public_url: Some("https://picket.example".into()),
        };
        self.scheduler = Some(tokio::spawn(picket_scheduler::run(
            Db::from_pool(self.app.pool.clone()),
            ProcessExecutor::new(installation, worker),
            cfg,
            self.stop.clone(),
        )));
    }

    /// Points the merge request at `head` (its ref, a new diff version, the diff's lines) and
    /// delivers `Merge Request Hook` `action` (`update` carries `oldrev`).
    async fn push(&self, action: &str, delivery: &str, head: &str, files: &[(&str, &str)]) {
        git(
            &self.repo(),
            &[
                "update-ref",
                &format!("refs/merge-requests/{IID}/head"),
                head,
            ],
        );
        let base = git(&self.repo(), &["rev-parse", "main"]);
        let previous = (action != "open").then(|| self.server.merge_request(self.project, IID).sha);
        if action == "open" {
            self.server.add_merge_request(
                self.project,
                TestMergeRequest::new(IID, "feature", head, "alice"),
            );
        }
        self.server
            .push_version(self.project, IID, &base, &base, head);
        self.server
            .set_merge_base(self.project, "main", head, &base);
        for (path, text) in files {
            self.server
                .set_diff_lines(self.project, IID, head, path, &lines(text));
        }
        let mut payload = merge_request_payload(self.project, head);
        payload["object_attributes"]["action"] = json!(action);
        payload["object_attributes"]["updated_at"] = json!(time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap());
        if let Some(old) = previous {
            payload["object_attributes"]["oldrev"] = json!(old);
        }
        self.deliver("Merge Request Hook", delivery, &payload)
            .await
            .outcome(202, "scan_queued");
    }

    async fn deliver(&self, event: &str, id: &str, payload: &Value) -> crate::webhooks::Answer {
        self.hook
            .raw(
                &[
                    ("x-gitlab-event", event.to_owned()),
                    ("idempotency-key", id.to_owned()),
                    ("x-gitlab-token", SECRET.to_owned()),
                ],
                serde_json::to_vec(payload).unwrap(),
            )
            .await
    }

    /// The finished commit status `Picket` of `head`, waiting for it.
    async fn finished_status(&self, head: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            if let Some(s) = self.server.latest_status(self.project, head, "Picket") {
                if matches!(s.status.as_str(), "success" | "failed" | "canceled") {
                    return s.status;
                }
            }
            if Instant::now() > deadline {
                let scans: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT kind::text, state::text, error_code, error_message FROM scans",
                )
                .fetch_all(&self.app.pool)
                .await
                .unwrap();
                panic!(
                    "no finished status for {head}\nscans: {scans:#?}\nstatuses: {:#?}\n\
                     requests: {:#?}",
                    self.server.statuses(self.project),
                    self.server
                        .requests()
                        .iter()
                        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Picket's discussions on lines, oldest first.
    fn threads(&self) -> Vec<TestDiscussion> {
        self.server
            .discussions(self.project, IID)
            .into_iter()
            .filter(|d| {
                d.notes[0].author == "picket-bot"
                    && d.notes[0].body.starts_with("<!-- picket:finding ")
            })
            .collect()
    }

    fn summaries(&self) -> Vec<String> {
        self.server
            .notes(self.project, IID)
            .into_iter()
            .filter(|n| n.body.starts_with("<!-- picket:summary -->"))
            .map(|n| n.body)
            .collect()
    }

    async fn stop(mut self) -> GitLabServer {
        self.stop.cancel();
        if let Some(s) = self.scheduler.take() {
            s.await.unwrap();
        }
        self.server
    }
}

/// picket-vcs's merge request fixture, for `project` at `head`.
fn merge_request_payload(project: u64, head: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/vcs/tests/vcs/fixtures/gitlab/merge_request_open.json"
    );
    let mut p: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    p["project"]["id"] = json!(project);
    p["project"]["path_with_namespace"] = json!("acme/app");
    p["object_attributes"]["iid"] = json!(IID);
    p["object_attributes"]["source_project_id"] = json!(project);
    p["object_attributes"]["target_project_id"] = json!(project);
    p["object_attributes"]["source_branch"] = json!("feature");
    p["object_attributes"]["target_branch"] = json!("main");
    p["object_attributes"]["last_commit"]["id"] = json!(head);
    p
}

fn rule_of(body: &str) -> &'static str {
    [BLOCK_RULE, COMMENT_RULE, MONITOR_RULE]
        .into_iter()
        .find(|r| body.contains(r))
        .unwrap_or_else(|| panic!("no known rule in {body}"))
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_merge_request_gets_discussions_a_summary_and_a_status_and_a_reply_triages(pool: PgPool) {
    let w = World::new(pool).await;
    let repo = w.repo();
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    let head1 = commit(&repo, &[("app.py", APP_V1)], "add app");
    w.push("open", "k-open", &head1, &[("app.py", APP_V1)])
        .await;

    // A new Block finding fails the status; one discussion per commented finding, on its line
    // of the new file; none for Monitor; one summary note.
    assert_eq!(w.finished_status(&head1).await, "failed");
    let first = w.threads();
    let placed: Vec<(Option<u64>, &str)> = first
        .iter()
        .map(|d| {
            let n = &d.notes[0];
            (
                n.position.as_ref().and_then(|p| p.new_line),
                rule_of(&n.body),
            )
        })
        .collect();
    assert_eq!(placed, [(Some(10), BLOCK_RULE), (Some(6), COMMENT_RULE)]);
    assert!(first.iter().all(|d| d.notes[0]
        .position
        .as_ref()
        .is_some_and(|p| p.head_sha == head1 && p.new_path.as_deref() == Some("app.py"))));
    let summaries = w.summaries();
    assert_eq!(summaries.len(), 1, "{summaries:#?}");
    let first_summary = summaries[0].clone();

    // A push fixes the Block finding and adds two in more.py.
    let head2 = commit(
        &repo,
        &[("app.py", APP_V2), ("more.py", MORE)],
        "fix run, add load",
    );
    w.push(
        "update",
        "k-push",
        &head2,
        &[("app.py", APP_V2), ("more.py", MORE)],
    )
    .await;
    assert_eq!(w.finished_status(&head2).await, "failed");
    let after = w.threads();
    assert_eq!(after.len(), 4, "two added, none duplicated: {after:#?}");
    let fixed = after.iter().find(|d| d.id == first[0].id).unwrap();
    assert!(fixed.resolved(), "the fixed finding's thread is resolved");
    let kept = after.iter().find(|d| d.id == first[1].id).unwrap();
    assert!(
        !kept.resolved(),
        "the remaining finding's thread stays open"
    );
    let added: Vec<(Option<String>, Option<u64>)> = after[2..]
        .iter()
        .map(|d| {
            let p = d.notes[0].position.clone().unwrap();
            (p.new_path, p.new_line)
        })
        .collect();
    assert_eq!(
        added,
        [
            (Some("more.py".into()), Some(2)),
            (Some("more.py".into()), Some(6))
        ]
    );
    let summaries = w.summaries();
    assert_eq!(summaries.len(), 1, "the summary is edited in place");
    assert_ne!(summaries[0], first_summary);
    // The first head's status was finished before the second's began; nothing is pending.
    assert!(w
        .server
        .statuses(w.project)
        .iter()
        .all(|s| s.name == "Picket"));

    // Alice (a maintainer) answers the Comment finding's thread with a triage command.
    let thread = &after[1];
    let reply = w.server.add_reply(
        w.project,
        IID,
        &thread.id,
        "alice",
        "/fp the input is a constant",
    );
    let mut note = serde_json::from_str::<Value>(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../crates/vcs/tests/vcs/fixtures/gitlab/note_diff.json"
        ))
        .unwrap(),
    )
    .unwrap();
    note["project_id"] = json!(w.project);
    note["project"]["id"] = json!(w.project);
    note["merge_request"]["iid"] = json!(IID);
    note["user"]["username"] = json!("alice");
    note["user"]["id"] = json!(w.server.user_id("alice").unwrap());
    note["object_attributes"]["id"] = json!(reply);
    note["object_attributes"]["discussion_id"] = json!(thread.id);
    note["object_attributes"]["note"] = json!("/fp the input is a constant");
    w.deliver("Note Hook", "k-note", &note)
        .await
        .outcome(202, "triage_queued");
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let d = w
            .server
            .discussions(w.project, IID)
            .into_iter()
            .find(|d| d.id == thread.id)
            .unwrap();
        if let Some(n) = d.notes.iter().skip(2).find(|n| n.author == "picket-bot") {
            break n.body.clone();
        }
        assert!(Instant::now() < deadline, "no answer in the thread: {d:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(answer.to_lowercase().contains("false positive"), "{answer}");
    let (status, reason): (String, Option<String>) = sqlx::query_as(
        "SELECT status::text, triage_reason FROM findings WHERE rule_id = $1 AND path = 'app.py'",
    )
    .bind(COMMENT_RULE)
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(status, "ignored");
    assert!(reason.unwrap_or_default().contains("constant"));

    let server = w.stop().await;
    assert!(server.violations().is_empty(), "{:#?}", server.violations());
}
