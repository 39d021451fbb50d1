//! An Azure DevOps pull request from service hook to feedback, every part real but Azure
//! DevOps: `git.pullrequest.*` events with the connection's Basic-auth password to the API, the
//! scheduler starting this build's `picket worker` (which fetches `refs/pull/<id>/merge` of a
//! real git repository, whose second parent is the head, runs the pinned Semgrep with Picket's
//! pack and posts threads with the connection's PAT), the PR check loop posting the pull
//! request status, and the triage loop answering a reply. Azure DevOps is
//! picket-test-support's server, which checks every request against
//! `azure-devops-extension-api`'s routes. The scenarios are `feedback`'s, shared by every
//! provider.

use crate::feedback::{self, git, Check, LineThread, PrWorld, Rig, Verdict};
use crate::webhooks::Hook;
use base64::Engine;
use picket_test_support::azure::{AzureServer, TestPullRequest, TestStatus};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;

const PROJECT: &str = "Platform";
const PR: u64 = 7;
/// The PAT's user: the author of everything Picket posts.
const BOT: &str = "picket@acme.example";
const ALICE: &str = "alice@acme.example";

struct World {
    rig: Rig,
    server: AzureServer,
    hook: Hook,
    password: String,
    repo_id: String,
}

crate::feedback::world_derefs_to_rig!(World);

impl World {
    async fn new(pool: PgPool) -> World {
        let mut rig = Rig::new(pool, "azure-feedback-e2e").await;
        let server = AzureServer::start("acme", PROJECT).await;
        let pat = server.add_pat(BOT);
        let repo_id = server.add_repo("app", Some("main"));
        let main = git(&rig.repo(), &["rev-parse", "main"]);
        server.set_ref(&repo_id, "refs/heads/main", &main);
        // Alice pushed last week: evidence of her write access.
        server.add_push(&repo_id, ALICE, Duration::from_secs(7 * 86_400));
        let conn = rig
            .app
            .admin()
            .post(
                "/api/v1/connections",
                json!({
                    "provider": "azure_devops", "name": "azure", "base_url": server.api_url(),
                    "credentials": {"pat": pat, "project": PROJECT},
                }),
            )
            .await
            .expect(201);
        let password = conn["webhook_password"].as_str().unwrap().to_owned();
        rig.add_project(&conn, &repo_id, &format!("{PROJECT}/app"))
            .await;
        rig.block_and_comment().await;
        let hook = Hook {
            http: reqwest::Client::new(),
            url: format!("{}{}", rig.app.base, conn["webhook_url"].as_str().unwrap()),
            secret: String::new(),
        };
        rig.start_scheduler().await;
        World {
            rig,
            server,
            hook,
            password,
            repo_id,
        }
    }

    /// Points the pull request at `head`: `refs/pull/7/merge` at a merge of `head` into `main`
    /// (as Azure keeps it), the server's record with a new iteration, then the event.
    async fn deliver_head(&self, event: &str, delivery: &str, head: &str, files: &[(&str, &str)]) {
        let repo = self.repo();
        let base = git(&repo, &["rev-parse", "main"]);
        let merge = git(
            &repo,
            &[
                "commit-tree",
                &format!("{head}^{{tree}}"),
                "-p",
                &base,
                "-p",
                head,
                "-m",
                &format!("Merge pull request {PR} from feature into main"),
            ],
        );
        git(
            &repo,
            &["update-ref", &format!("refs/pull/{PR}/merge"), &merge],
        );
        let paths: Vec<&str> = files.iter().map(|(p, _)| *p).collect();
        if event == "git.pullrequest.created" {
            self.server.add_pull(
                &self.repo_id,
                TestPullRequest {
                    id: PR,
                    title: "Add app".into(),
                    source_branch: "feature".into(),
                    target_branch: "main".into(),
                    head: head.into(),
                    base: base.clone(),
                    merge_base: base.clone(),
                    changed_paths: paths.iter().map(|p| p.to_string()).collect(),
                    author: ALICE.into(),
                    ..TestPullRequest::default()
                },
            );
        } else {
            self.server
                .push_iteration(&self.repo_id, PR, head, &base, &base, &paths);
        }
        let fixture_name = if event == "git.pullrequest.created" {
            "pullrequest_created.json"
        } else {
            "pullrequest_updated.json"
        };
        let payload = self.event(fixture_name, delivery, head, &base);
        self.deliver(&payload).await.outcome(202, "scan_queued");
    }

    /// picket-vcs's fixture `name` for this repository's pull request at `head` over `base`,
    /// raised now, with event id `id`.
    fn event(&self, name: &str, id: &str, head: &str, base: &str) -> Value {
        let mut p = fixture(name);
        p["id"] = json!(id);
        p["createdDate"] = json!(now());
        let r = &mut p["resource"];
        r["repository"]["id"] = json!(self.repo_id);
        r["repository"]["name"] = json!("app");
        r["pullRequestId"] = json!(PR);
        r["sourceRefName"] = json!("refs/heads/feature");
        r["targetRefName"] = json!("refs/heads/main");
        r["createdBy"]["uniqueName"] = json!(ALICE);
        r["lastMergeSourceCommit"]["commitId"] = json!(head);
        r["lastMergeTargetCommit"]["commitId"] = json!(base);
        p
    }

    async fn deliver(&self, payload: &Value) -> crate::webhooks::Answer {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("picket:{}", self.password));
        self.hook
            .raw(
                &[("authorization", format!("Basic {basic}"))],
                serde_json::to_vec(payload).unwrap(),
            )
            .await
    }

    /// Picket's pull request statuses, oldest first.
    fn statuses(&self) -> Vec<TestStatus> {
        self.server
            .pull_request_statuses(&self.repo_id, PR)
            .into_iter()
            .filter(|s| s.name == "Picket")
            .collect()
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../crates/vcs/tests/vcs/fixtures/azure/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

impl PrWorld for World {
    async fn open(&self, delivery: &str, head: &str, files: &[(&str, &str)]) {
        self.deliver_head("git.pullrequest.created", delivery, head, files)
            .await
    }

    async fn push(&self, delivery: &str, head: &str, files: &[(&str, &str)]) {
        self.deliver_head("git.pullrequest.updated", delivery, head, files)
            .await
    }

    /// `git.pullrequest.updated` for a reviewer added: the same source commit.
    async fn edit_metadata(&self, delivery: &str) -> String {
        let head = git(&self.repo(), &["rev-parse", "feature"]);
        let base = git(&self.repo(), &["rev-parse", "main"]);
        let mut payload = self.event("pullrequest_updated.json", delivery, &head, &base);
        payload["resource"]["reviewers"] = json!([{"displayName": "Omar", "vote": 10}]);
        self.deliver(&payload).await.outcome(200, "duplicate_head");
        "duplicate_head".into()
    }

    /// The newest pull request status posted while `head` was the pull request's head.
    fn check(&self, head: &str) -> Option<Check> {
        self.statuses()
            .into_iter()
            .rfind(|s| s.commit == head)
            .map(|s| Check {
                verdict: match s.state.as_str() {
                    "pending" => Verdict::Pending,
                    "succeeded" => Verdict::Passed,
                    "failed" => Verdict::Failed,
                    other => Verdict::Other(other.into()),
                },
                text: s.description.unwrap_or_default(),
            })
    }

    /// Picket's threads on lines of the right-hand file.
    fn threads(&self) -> Vec<LineThread> {
        self.server
            .threads(&self.repo_id, PR)
            .into_iter()
            .filter(|t| t.comments[0].author == BOT && t.file_path.is_some())
            .map(|t| LineThread {
                id: t.id.to_string(),
                path: t.file_path.unwrap().trim_start_matches('/').to_owned(),
                line: t.line,
                body: t.comments[0].content.clone(),
                resolved: matches!(t.status.as_str(), "fixed" | "closed"),
            })
            .collect()
    }

    fn summaries(&self) -> Vec<String> {
        self.server
            .threads(&self.repo_id, PR)
            .into_iter()
            .filter(|t| t.file_path.is_none())
            .map(|t| t.comments[0].content.clone())
            .filter(|c| c.starts_with("<!-- picket:summary -->"))
            .collect()
    }

    /// Alice (a recent pusher) answers in the thread; the comment event follows.
    async fn reply(&self, delivery: &str, thread: &LineThread, text: &str) {
        let thread_id: u64 = thread.id.parse().unwrap();
        let id = self
            .server
            .add_comment(&self.repo_id, PR, thread_id, ALICE, text, false);
        let head = git(&self.repo(), &["rev-parse", "feature"]);
        let base = git(&self.repo(), &["rev-parse", "main"]);
        let pr = self.event("pullrequest_updated.json", delivery, &head, &base);
        let mut payload = fixture("pullrequest_comment.json");
        payload["id"] = json!(delivery);
        payload["createdDate"] = json!(now());
        payload["resource"]["pullRequest"] = pr["resource"].clone();
        let threads = format!(
            "{}/acme/_apis/git/repositories/{}/pullRequests/{PR}/threads/{thread_id}",
            self.server.api_url(),
            self.repo_id
        );
        let c = &mut payload["resource"]["comment"];
        c["id"] = json!(id);
        c["parentCommentId"] = json!(1);
        c["content"] = json!(text);
        c["author"]["uniqueName"] = json!(ALICE);
        c["author"]["displayName"] = json!("Alice");
        c["_links"]["threads"]["href"] = json!(threads);
        c["_links"]["self"]["href"] = json!(format!("{threads}/comments/{id}"));
        self.deliver(&payload).await.outcome(202, "triage_queued");
    }

    fn answers(&self, thread: &LineThread) -> Vec<String> {
        self.server
            .threads(&self.repo_id, PR)
            .into_iter()
            .find(|t| t.id.to_string() == thread.id)
            .map(|t| {
                t.comments
                    .into_iter()
                    .skip(2)
                    .filter(|c| c.author == BOT && c.comment_type == "text")
                    .map(|c| c.content)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn violations(&self) -> Vec<String> {
        self.server.violations()
    }

    fn request_log(&self) -> Vec<String> {
        self.server
            .requests()
            .iter()
            .map(|r| format!("{} {} {}", r.method, r.path, r.status))
            .collect()
    }
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_pull_request_gets_threads_a_summary_and_a_status_and_a_reply_triages(pool: PgPool) {
    feedback::opened_pushed_and_triaged(&mut World::new(pool).await).await
}

/// Every status names the iteration of the push it is for, so a superseded push's status can
/// never stand for the newer one's.
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_superseded_pull_request_scan_never_posts_nor_hides_the_new_status(pool: PgPool) {
    let mut w = World::new(pool).await;
    feedback::a_superseded_scan_never_posts_and_comment_findings_pass(&mut w).await;
    let statuses = w.statuses();
    assert!(
        statuses.iter().all(|s| s.iteration.is_some()),
        "{statuses:#?}"
    );
    let latest = statuses.iter().rfind(|s| s.iteration == Some(2)).unwrap();
    assert_eq!(latest.state, "succeeded", "{statuses:#?}");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn past_the_deadline_the_status_passes_and_late_results_only_comment(pool: PgPool) {
    feedback::past_the_deadline_the_check_passes_and_late_results_only_comment(
        &mut World::new(pool).await,
    )
    .await
}
