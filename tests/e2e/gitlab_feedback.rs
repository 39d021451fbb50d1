//! A GitLab merge request from webhook to feedback, every part real but GitLab: a `Merge Request
//! Hook` delivery with the hook's token to the API, the scheduler's dispatch loop starting this
//! build's `picket worker` as a plain process (which clones a real git repository at
//! `refs/merge-requests/<iid>/head`, runs the pinned Semgrep with Picket's pack, begins its
//! feedback through the API and posts with the connection's token), the PR check loop moving the
//! commit status, and the triage loop answering a reply. GitLab is picket-test-support's server,
//! which checks every request against `@gitbeaker/core`'s endpoints.

use crate::feedback::{self, git, lines, Check, LineThread, PrWorld, Rig, Verdict};
use crate::webhooks::Hook;
use picket_test_support::gitlab::{access, GitLabServer, TestMergeRequest};
use picket_tests::id_of;
use serde_json::{json, Value};
use sqlx::PgPool;

const SECRET: &str = "gitlab-hook-secret-0123456789";
const IID: u64 = 7;

struct World {
    rig: Rig,
    server: GitLabServer,
    hook: Hook,
    project: u64,
}

crate::feedback::world_derefs_to_rig!(World);

impl World {
    async fn new(pool: PgPool) -> World {
        let mut rig = Rig::new(pool, "gitlab-feedback-e2e").await;
        let server = GitLabServer::start().await;
        let bot = server.add_bot("picket-bot");
        let token = server.add_token(bot, &["api", "read_repository"]);
        let group = server.add_group("acme");
        server.add_group_member(group, bot, access::DEVELOPER);
        let project = server.add_project("acme", "app");
        let clone_url = rig.clone_url();
        server.update_project(project, |p| p.http_url_to_repo = clone_url);
        let alice = server.add_user("alice");
        server.add_project_member(project, alice, access::MAINTAINER);

        let app = &rig.app;
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
        rig.block_and_comment().await;
        let hook = Hook {
            http: reqwest::Client::new(),
            url: format!("{}{}", app.base, conn["webhook_url"].as_str().unwrap()),
            secret: SECRET.to_owned(),
        };
        rig.start_scheduler().await;
        World {
            rig,
            server,
            hook,
            project,
        }
    }

    /// Points the merge request at `head` (its ref, a new diff version, the diff's lines) and
    /// delivers `Merge Request Hook` `action` (`update` carries `oldrev`).
    async fn deliver_head(&self, action: &str, delivery: &str, head: &str, files: &[(&str, &str)]) {
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
        let mut payload = self.payload(head);
        payload["object_attributes"]["action"] = json!(action);
        if let Some(old) = previous {
            payload["object_attributes"]["oldrev"] = json!(old);
        }
        self.deliver("Merge Request Hook", delivery, &payload)
            .await
            .outcome(202, "scan_queued");
    }

    /// picket-vcs's merge request fixture, for this project at `head`, updated now.
    fn payload(&self, head: &str) -> Value {
        let mut p = fixture("merge_request_open.json");
        p["project"]["id"] = json!(self.project);
        p["project"]["path_with_namespace"] = json!("acme/app");
        let mr = &mut p["object_attributes"];
        mr["iid"] = json!(IID);
        mr["source_project_id"] = json!(self.project);
        mr["target_project_id"] = json!(self.project);
        mr["source_branch"] = json!("feature");
        mr["target_branch"] = json!("main");
        mr["last_commit"]["id"] = json!(head);
        mr["updated_at"] = json!(time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap());
        p
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
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../crates/vcs/tests/vcs/fixtures/gitlab/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

impl PrWorld for World {
    async fn open(&self, delivery: &str, head: &str, files: &[(&str, &str)]) {
        self.deliver_head("open", delivery, head, files).await
    }

    async fn push(&self, delivery: &str, head: &str, files: &[(&str, &str)]) {
        self.deliver_head("update", delivery, head, files).await
    }

    /// An `update` without `oldrev` (a title edit).
    async fn edit_metadata(&self, delivery: &str) -> String {
        let head = self.server.merge_request(self.project, IID).sha;
        let mut payload = self.payload(&head);
        payload["object_attributes"]["action"] = json!("update");
        payload["object_attributes"]["title"] = json!("A better title");
        payload["changes"] = json!({"title": {"previous": "Add app", "current": "A better title"}});
        self.deliver("Merge Request Hook", delivery, &payload)
            .await
            .outcome(200, "metadata_only");
        "metadata_only".into()
    }

    /// The commit status `Picket` of `head`.
    fn check(&self, head: &str) -> Option<Check> {
        self.server
            .latest_status(self.project, head, "Picket")
            .map(|s| Check {
                verdict: match s.status.as_str() {
                    "pending" | "running" => Verdict::Pending,
                    "success" => Verdict::Passed,
                    "failed" => Verdict::Failed,
                    other => Verdict::Other(other.into()),
                },
                text: s.description.unwrap_or_default(),
            })
    }

    /// Picket's discussions on lines.
    fn threads(&self) -> Vec<LineThread> {
        self.server
            .discussions(self.project, IID)
            .into_iter()
            .filter(|d| {
                d.notes[0].author == "picket-bot"
                    && d.notes[0].body.starts_with("<!-- picket:finding ")
            })
            .map(|d| {
                let resolved = d.resolved();
                let note = &d.notes[0];
                let position = note.position.clone().unwrap();
                LineThread {
                    id: d.id.clone(),
                    path: position.new_path.unwrap_or_default(),
                    line: position.new_line,
                    body: note.body.clone(),
                    resolved,
                }
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

    /// Alice (a maintainer) answers in the discussion; the `Note Hook` follows.
    async fn reply(&self, delivery: &str, thread: &LineThread, text: &str) {
        let reply = self
            .server
            .add_reply(self.project, IID, &thread.id, "alice", text);
        let mut note = fixture("note_diff.json");
        note["project_id"] = json!(self.project);
        note["project"]["id"] = json!(self.project);
        note["merge_request"]["iid"] = json!(IID);
        note["user"]["username"] = json!("alice");
        note["user"]["id"] = json!(self.server.user_id("alice").unwrap());
        note["object_attributes"]["id"] = json!(reply);
        note["object_attributes"]["discussion_id"] = json!(thread.id);
        note["object_attributes"]["note"] = json!(text);
        self.deliver("Note Hook", delivery, &note)
            .await
            .outcome(202, "triage_queued");
    }

    fn answers(&self, thread: &LineThread) -> Vec<String> {
        self.server
            .discussions(self.project, IID)
            .into_iter()
            .find(|d| d.id == thread.id)
            .map(|d| {
                d.notes
                    .into_iter()
                    .skip(2)
                    .filter(|n| n.author == "picket-bot")
                    .map(|n| n.body)
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
async fn a_merge_request_gets_discussions_a_summary_and_a_status_and_a_reply_triages(pool: PgPool) {
    feedback::opened_pushed_and_triaged(&mut World::new(pool).await).await
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_superseded_merge_request_scan_never_posts(pool: PgPool) {
    feedback::a_superseded_scan_never_posts_and_comment_findings_pass(&mut World::new(pool).await)
        .await
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn past_the_deadline_the_status_passes_and_late_results_only_comment(pool: PgPool) {
    feedback::past_the_deadline_the_check_passes_and_late_results_only_comment(
        &mut World::new(pool).await,
    )
    .await
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_vulnerable_dependency_gets_a_discussion_on_its_lockfile_line_and_fails_the_status(
    pool: PgPool,
) {
    feedback::a_vulnerable_dependency_is_commented_on_its_lockfile_line_and_blocks(
        &mut World::new(pool).await,
    )
    .await
}
