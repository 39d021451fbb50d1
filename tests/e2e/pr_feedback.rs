//! A pull request from webhook to feedback, every part real but GitHub: a signed `pull_request`
//! webhook to the API, the scheduler's dispatch loop starting this build's `picket worker` as a
//! plain process (which clones a real git repository, runs the pinned Semgrep with Picket's
//! pack, begins its feedback through the API and posts with the installation token minted for
//! its scan), and the scheduler's PR check loop completing the check. GitHub is
//! picket-test-support's server, which checks every request against GitHub's OpenAPI
//! description.

use crate::feedback::{
    commit, git, lines, rule_in, until, Rig, APP_V1, APP_V2, BLOCK_RULE, COMMENT_RULE, MORE,
};
use crate::webhooks::{pull_request, Hook, SECRET};
use picket_test_support::github::{
    Fault, FaultKind, GitHubServer, TestCheckRun, TestPull, TestReviewComment,
};
use picket_tests::id_of;
use serde_json::json;
use sqlx::PgPool;
use std::time::{Duration, Instant};

struct World {
    rig: Rig,
    server: GitHubServer,
    hook: Hook,
    repo_id: u64,
    installation: u64,
}

crate::feedback::world_derefs_to_rig!(World);

impl World {
    async fn new(pool: PgPool) -> World {
        let mut rig = Rig::new(pool, "pr-feedback-e2e").await;
        let clone_url = rig.clone_url();
        let server = GitHubServer::start().await;
        let gh_app = server.add_app("picket");
        let installation = server.add_installation(gh_app.id, "acme");
        let repo_id = server.add_repo(installation, "acme/app", "main", &clone_url);
        let app = &rig.app;
        let conn = app
            .github_connection("acme", &server, &gh_app, SECRET)
            .await;
        // A file:// project (its repository is on this machine), attached to the App's
        // installation as the installation webhook does.
        let project = rig
            .add_project(&conn, &repo_id.to_string(), "acme/app")
            .await;
        let app = &rig.app;
        sqlx::query("UPDATE projects SET provider_installation_id = $2 WHERE id = $1")
            .bind(project.0)
            .bind(installation.to_string())
            .execute(&app.pool)
            .await
            .unwrap();
        rig.block_and_comment().await;
        let hook = Hook {
            http: reqwest::Client::new(),
            url: format!("{}/webhooks/github/{}", app.base, id_of(&conn)),
            secret: SECRET.to_owned(),
        };
        rig.start_scheduler().await;
        World {
            rig,
            server,
            hook,
            repo_id,
            installation,
        }
    }

    /// Points the PR at `head` (its ref, GitHub's record and its diff's lines) and delivers the
    /// webhook `action`.
    async fn push(&self, action: &str, delivery: &str, head: &str, files: &[(&str, &str)]) {
        self.push_with(action, delivery, head, files, |_| {}).await
    }

    /// [`World::push`], with the payload edited by `edit` before it is signed.
    async fn push_with(
        &self,
        action: &str,
        delivery: &str,
        head: &str,
        files: &[(&str, &str)],
        edit: impl FnOnce(&mut serde_json::Value),
    ) {
        git(&self.repo(), &["update-ref", "refs/pull/7/head", head]);
        let base = git(&self.repo(), &["rev-parse", "main"]);
        let pull = TestPull {
            number: 7,
            head_sha: head.into(),
            head_ref: "feature".into(),
            base_ref: "main".into(),
            base_sha: base.clone(),
            merge_base: base,
            title: "Add app".into(),
            author: "alice".into(),
            ..TestPull::default()
        };
        if action == "opened" {
            self.server.add_pull(self.repo_id, pull);
        } else {
            self.server
                .update_pull(self.repo_id, 7, |p| p.head_sha = head.into());
        }
        for (path, text) in files {
            self.server
                .set_diff_lines(self.repo_id, 7, path, &lines(text));
        }
        let mut payload = pull_request(action, self.repo_id as i64, 7, head);
        payload["installation"]["id"] = json!(self.installation);
        payload["pull_request"]["base"]["ref"] = json!("main");
        payload["pull_request"]["head"]["ref"] = json!("feature");
        edit(&mut payload);
        self.hook
            .deliver("pull_request", delivery, &payload)
            .await
            .outcome(202, "scan_queued");
    }

    /// The completed check of `head`, waiting for it.
    async fn completed_check(&self, head: &str) -> TestCheckRun {
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            let runs: Vec<TestCheckRun> = self
                .server
                .check_runs(self.repo_id)
                .into_iter()
                .filter(|c| c.head_sha == head)
                .collect();
            assert!(runs.len() <= 1, "one check per head: {runs:#?}");
            if let Some(run) = runs.into_iter().find(|c| c.status == "completed") {
                return run;
            }
            if Instant::now() > deadline {
                panic!(
                    "no completed check for {head}\n{}\nrequests: {:#?}",
                    self.diagnosis().await,
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

    /// Picket's inline comments (not replies), oldest first.
    fn inline(&self) -> Vec<TestReviewComment> {
        self.server
            .review_comments(self.repo_id, 7)
            .into_iter()
            .filter(|c| c.in_reply_to.is_none())
            .collect()
    }

    async fn stop(self) -> GitHubServer {
        self.rig.finish().await;
        self.server
    }
}

fn rule_of(c: &TestReviewComment) -> &'static str {
    rule_in(&c.body)
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_pull_request_gets_inline_comments_a_summary_and_a_check_and_a_push_updates_them(
    pool: PgPool,
) {
    let w = World::new(pool).await;
    let repo = w.repo();
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    let head1 = commit(&repo, &[("app.py", APP_V1)], "add app");
    w.push("opened", "d-open", &head1, &[("app.py", APP_V1)])
        .await;

    let check = w.completed_check(&head1).await;
    // A new Block finding fails the check; its annotations are the Block and Comment findings.
    assert_eq!(check.conclusion.as_deref(), Some("failure"), "{check:#?}");
    assert_eq!(check.name, "Picket");
    let levels: Vec<(&str, u64)> = check
        .annotations
        .iter()
        .map(|a| {
            (
                a["annotation_level"].as_str().unwrap(),
                a["start_line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(levels, [("failure", 10), ("warning", 6)]);
    // One inline comment per commented finding, on its line, by the App; none for Monitor.
    let first = w.inline();
    let placed: Vec<(&str, Option<u64>, &str)> = first
        .iter()
        .map(|c| (c.path.as_str(), c.line, rule_of(c)))
        .collect();
    assert_eq!(
        placed,
        [
            ("app.py", Some(10), BLOCK_RULE),
            ("app.py", Some(6), COMMENT_RULE)
        ]
    );
    assert!(first.iter().all(|c| c.author == "picket[bot]"
        && c.commit_id == head1
        && c.body.starts_with("<!-- picket:finding ")));
    let summaries = w.server.issue_comments(w.repo_id, 7);
    assert_eq!(summaries.len(), 1, "{summaries:#?}");
    assert!(summaries[0].body.starts_with("<!-- picket:summary -->"));
    assert_eq!(summaries[0].author, "picket[bot]");
    let first_summary = summaries[0].body.clone();
    // The worker posted the comments; the control plane completed the check.
    let posted_by: String = sqlx::query_scalar(
        "SELECT c.feedback_outcome->>'posted_by' FROM pr_checks c JOIN scans s ON s.id = c.scan_id
         WHERE s.commit_sha = $1",
    )
    .bind(&head1)
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(posted_by, "worker");

    // A push fixes the Block finding of app.py and adds one in more.py.
    let head2 = commit(
        &repo,
        &[("app.py", APP_V2), ("more.py", MORE)],
        "fix run, add load",
    );
    w.push(
        "synchronize",
        "d-sync",
        &head2,
        &[("app.py", APP_V2), ("more.py", MORE)],
    )
    .await;
    let check = w.completed_check(&head2).await;
    assert_eq!(check.conclusion.as_deref(), Some("failure"), "{check:#?}");
    let after = w.inline();
    assert_eq!(
        after.len(),
        4,
        "two comments added, none duplicated: {after:#?}"
    );
    let fixed = after.iter().find(|c| c.id == first[0].id).unwrap();
    assert!(
        fixed.thread_resolved,
        "the fixed finding's thread is resolved"
    );
    let kept = after.iter().find(|c| c.id == first[1].id).unwrap();
    assert!(
        !kept.thread_resolved,
        "the remaining finding keeps its comment"
    );
    let added: Vec<(&str, Option<u64>, &str, &str)> = after[2..]
        .iter()
        .map(|c| (c.path.as_str(), c.line, rule_of(c), c.commit_id.as_str()))
        .collect();
    assert_eq!(
        added,
        [
            ("more.py", Some(2), BLOCK_RULE, head2.as_str()),
            ("more.py", Some(6), BLOCK_RULE, head2.as_str())
        ]
    );
    let summaries = w.server.issue_comments(w.repo_id, 7);
    assert_eq!(summaries.len(), 1, "the summary is edited in place");
    assert_ne!(summaries[0].body, first_summary);
    assert!(
        summaries[0].body.contains("3 new findings"),
        "{}",
        summaries[0].body
    );

    // Redelivering the same push posts nothing new.
    let before = (
        w.server.review_comments(w.repo_id, 7).len(),
        w.server.issue_comments(w.repo_id, 7),
    );
    let mut payload = pull_request("synchronize", w.repo_id as i64, 7, &head2);
    payload["installation"]["id"] = json!(w.installation);
    w.hook
        .deliver("pull_request", "d-sync", &payload)
        .await
        .outcome(200, "duplicate");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        (
            w.server.review_comments(w.repo_id, 7).len(),
            w.server.issue_comments(w.repo_id, 7)
        ),
        before
    );

    // Tokens: one per scan, for that repository alone (the worker's), and one installation-wide
    // token per control-plane process, cached: the API's (it asks the compare API for a PR
    // scan's merge base) and the scheduler's (all its check moves).
    let minted = w.server.minted_tokens();
    let scoped = minted
        .iter()
        .filter(|m| m.repository_ids == Some(vec![w.repo_id]))
        .count();
    let scans: i64 = sqlx::query_scalar("SELECT count(*) FROM scans")
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
    assert_eq!(scoped as i64, scans, "{minted:#?}");
    assert_eq!(minted.len() - scoped, 2, "{minted:#?}");

    let server = w.stop().await;
    assert!(server.violations().is_empty(), "{:#?}", server.violations());
}

/// An org that keeps drafts quiet: a draft PR gets its check and no comment; marked ready for
/// review, the head already scanned gets its comments, posted by the control plane from the
/// stored result, without a second scan.
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_quiet_draft_gets_its_check_and_its_comments_once_ready_for_review(pool: PgPool) {
    let w = World::new(pool).await;
    let org = w
        .app
        .admin()
        .patch("/api/v1/org", json!({"draft_feedback": "check_only"}))
        .await
        .expect(200);
    assert_eq!(org["draft_feedback"], "check_only");
    let repo = w.repo();
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    let head = commit(&repo, &[("app.py", APP_V1)], "add app");
    w.push_with("opened", "d-draft", &head, &[("app.py", APP_V1)], |p| {
        p["pull_request"]["draft"] = json!(true);
    })
    .await;
    let check = w.completed_check(&head).await;
    assert_eq!(check.conclusion.as_deref(), Some("failure"), "{check:#?}");
    assert_eq!(check.annotations.len(), 2, "{check:#?}");
    // The feedback is finished, quietly: no inline comment, no summary comment.
    let quiet: bool = until(|| async {
        sqlx::query_scalar::<_, bool>(
            "SELECT quiet_draft FROM pr_checks WHERE comments_done_at IS NOT NULL",
        )
        .fetch_optional(&w.app.pool)
        .await
        .unwrap()
    })
    .await;
    assert!(quiet, "finished as a quiet draft's");
    assert!(w.inline().is_empty(), "{:#?}", w.inline());
    assert!(w.server.issue_comments(w.repo_id, 7).is_empty());

    // Ready for review, same head: nothing is queued, and the comments come.
    let mut payload = pull_request("ready_for_review", w.repo_id as i64, 7, &head);
    payload["installation"]["id"] = json!(w.installation);
    payload["pull_request"]["draft"] = json!(false);
    w.hook
        .deliver("pull_request", "d-ready", &payload)
        .await
        .outcome(200, "duplicate_head");
    let comments = until(|| async { Some(w.inline()).filter(|c| c.len() >= 2) }).await;
    let placed: Vec<(Option<u64>, &str)> = comments.iter().map(|c| (c.line, rule_of(c))).collect();
    assert_eq!(placed, [(Some(10), BLOCK_RULE), (Some(6), COMMENT_RULE)]);
    assert!(comments.iter().all(|c| c.commit_id == head));
    let summaries =
        until(|| async { Some(w.server.issue_comments(w.repo_id, 7)).filter(|c| !c.is_empty()) })
            .await;
    assert_eq!(summaries.len(), 1, "{summaries:#?}");
    let (scans, posted_by): (i64, Option<String>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM scans WHERE kind = 'diff'), \
                (SELECT feedback_outcome->>'posted_by' FROM pr_checks WHERE comments_done_at IS NOT NULL)",
    )
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert_eq!((scans, posted_by.as_deref()), (1, Some("control_plane")));
    // Still one check, completed once.
    assert_eq!(w.server.check_runs(w.repo_id).len(), 1);

    let server = w.stop().await;
    assert!(server.violations().is_empty(), "{:#?}", server.violations());
}

/// Every text Picket showed on the PR: comment bodies, the checks' outputs and annotations.
fn everything_shown(server: &GitHubServer, repo_id: u64) -> String {
    let mut all = String::new();
    for c in server.review_comments(repo_id, 7) {
        all.push_str(&c.body);
    }
    for c in server.issue_comments(repo_id, 7) {
        all.push_str(&c.body);
    }
    for run in server.check_runs(repo_id) {
        all.push_str(&format!("{:?}{:?}", run.output, run.annotations));
    }
    all
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn past_the_deadline_the_check_passes_and_the_late_result_only_comments(pool: PgPool) {
    const KEY: &str = "AKIAR23JLIV2UHUTCQXH";
    let mut w = World::new(pool).await;
    // The scans wait: only the PR check loop runs at first.
    w.rig.stop_scheduler().await;
    w.app
        .admin()
        .put(
            "/api/v1/policies/secrets",
            json!({"rules": {"picket.secrets.aws-access-key-id": "comment"}}),
        )
        .await
        .expect(201);
    let repo = w.repo();
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    let config = format!("AWS_ACCESS_KEY_ID = \"{KEY}\"\n");
    let head = commit(
        &repo,
        &[("app.py", APP_V1), ("config.py", &config)],
        "add app",
    );
    // A PR from a fork: its head is fetched from the base repository's refs/pull/7/head.
    w.server.add_pull(
        w.repo_id,
        TestPull {
            number: 7,
            head_sha: head.clone(),
            head_ref: "feature".into(),
            base_ref: "main".into(),
            from_fork: true,
            author: "mallory".into(),
            ..TestPull::default()
        },
    );
    git(&repo, &["update-ref", "refs/pull/7/head", &head]);
    git(&repo, &["checkout", "-q", "main"]);
    git(&repo, &["branch", "-D", "feature"]);
    w.server
        .set_diff_lines(w.repo_id, 7, "app.py", &lines(APP_V1));
    w.server
        .set_diff_lines(w.repo_id, 7, "config.py", &lines(&config));
    let mut payload = pull_request("opened", w.repo_id as i64, 7, &head);
    payload["installation"]["id"] = json!(w.installation);
    payload["pull_request"]["base"]["ref"] = json!("main");
    payload["pull_request"]["head"]["ref"] = json!("feature");
    payload["pull_request"]["head"]["repo"]["id"] = json!(999_999);
    payload["pull_request"]["head"]["repo"]["full_name"] = json!("mallory/app");
    w.hook
        .deliver("pull_request", "d-fork", &payload)
        .await
        .outcome(202, "scan_queued");
    // The org's deadline passes before any worker ran: the check passes, saying why.
    w.pass_fail_open_deadline().await;
    w.rig.start_check_loop();
    let check = w.completed_check(&head).await;
    assert_eq!(check.conclusion.as_deref(), Some("success"));
    assert_eq!(check.output.title.as_deref(), Some("Picket did not finish"));
    w.rig.stop_scheduler().await;

    // The scan runs late: its Block finding is commented, but the check stays green.
    w.rig.start_scheduler().await;
    w.until_scan(&head, "succeeded").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.inline().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "no late comments: {:#?}",
            w.inline()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let runs = w.server.check_runs(w.repo_id);
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (
            runs[0].conclusion.as_deref(),
            runs[0].output.title.as_deref()
        ),
        (Some("success"), Some("Picket did not finish"))
    );
    let mut placed: Vec<(String, Option<u64>)> = w
        .inline()
        .iter()
        .map(|c| (c.path.clone(), c.line))
        .collect();
    placed.sort();
    assert_eq!(
        placed,
        [
            ("app.py".to_owned(), Some(6)),
            ("app.py".to_owned(), Some(10)),
            ("config.py".to_owned(), Some(1))
        ]
    );
    // The secret is shown only in its redacted form, anywhere.
    let shown = everything_shown(&w.server, w.repo_id);
    assert!(!shown.contains(KEY), "the secret leaked: {shown}");
    assert!(!shown.contains(&KEY[4..16]), "part of the secret leaked");
    let secret_comment = w
        .inline()
        .into_iter()
        .find(|c| c.path == "config.py")
        .unwrap();
    assert!(
        secret_comment.body.contains("AKIA"),
        "{}",
        secret_comment.body
    );

    let server = w.stop().await;
    assert!(server.violations().is_empty(), "{:#?}", server.violations());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_push_during_a_running_scan_cancels_it_and_it_never_posts(pool: PgPool) {
    let w = World::new(pool).await;
    // The project's initial full scan first, so that the next token minted is the PR scan's.
    w.until_full_scan_done().await;
    let repo = w.repo();
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    let head1 = commit(&repo, &[("app.py", APP_V1)], "add app");
    // GitHub is slow to mint tokens for a while: the first scan stays running meanwhile.
    w.server.inject(Fault {
        path_contains: "/access_tokens".into(),
        kind: FaultKind::Delay(Duration::from_secs(4)),
        times: 3,
    });
    w.push("opened", "d-1", &head1, &[("app.py", APP_V1)]).await;
    w.until_scan(&head1, "running").await;
    let head2 = commit(&repo, &[("app.py", APP_V2)], "fix");
    w.push("synchronize", "d-2", &head2, &[("app.py", APP_V2)])
        .await;
    assert_eq!(
        w.scan_of(&head1).await,
        ("cancelled".to_owned(), Some("superseded".to_owned()))
    );
    let check = w.completed_check(&head2).await;
    assert_eq!(check.conclusion.as_deref(), Some("success"), "{check:#?}");
    let old = w.completed_check(&head1).await;
    assert_eq!(old.conclusion.as_deref(), Some("neutral"));
    // Give the cancelled scan's worker time to have posted, had it been allowed to.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let comments = w.server.review_comments(w.repo_id, 7);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert_eq!(
        comments[0].commit_id, head2,
        "only the new head is commented"
    );
    assert_eq!(rule_of(&comments[0]), COMMENT_RULE);
    assert_eq!(w.server.issue_comments(w.repo_id, 7).len(), 1);

    let server = w.stop().await;
    assert!(server.violations().is_empty(), "{:#?}", server.violations());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn feedback_the_worker_could_not_post_is_posted_by_the_control_plane(pool: PgPool) {
    let w = World::new(pool).await;
    let repo = w.repo();
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    let head = commit(&repo, &[("app.py", APP_V1)], "add app");
    // GitHub fails the worker's review three times (the client's two retries included).
    w.server.inject(Fault {
        path_contains: "/pulls/7/reviews".into(),
        kind: FaultKind::ServerError { status: 502 },
        times: 3,
    });
    w.push("opened", "d-1", &head, &[("app.py", APP_V1)]).await;
    let check = w.completed_check(&head).await;
    assert_eq!(check.conclusion.as_deref(), Some("failure"));
    let placed: Vec<(String, Option<u64>)> = w
        .inline()
        .iter()
        .map(|c| (c.path.clone(), c.line))
        .collect();
    assert_eq!(
        placed,
        [
            ("app.py".to_owned(), Some(10)),
            ("app.py".to_owned(), Some(6))
        ]
    );
    assert_eq!(w.server.issue_comments(w.repo_id, 7).len(), 1);
    // Recorded in the transaction that completed the check, which commits just after GitHub
    // answered.
    let posted_by = w.feedback_posted_by().await;
    assert_eq!(posted_by, "control_plane");
    let server = w.stop().await;
    assert!(server.violations().is_empty(), "{:#?}", server.violations());
}
