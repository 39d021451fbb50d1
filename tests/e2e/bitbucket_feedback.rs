//! A Bitbucket Cloud pull request from webhook to feedback, every part real but Bitbucket: signed
//! `pullrequest:*` deliveries (abbreviated hashes, as Bitbucket sends them) to the API, the
//! scheduler starting this build's `picket worker` (which clones the source branch of a real
//! git repository, runs the pinned Semgrep with Picket's pack and posts with the connection's
//! access token), the PR check loop writing the Code Insights report, or the build status where
//! Code Insights is unavailable, and the triage loop answering a reply. Bitbucket is
//! picket-test-support's server, which checks every request against npm `bitbucket`'s routes.
//! The scenarios are `feedback`'s, shared by every provider.

use crate::feedback::{self, git, lines, Check, LineThread, PrWorld, Rig, Verdict};
use crate::webhooks::{sign, Hook};
use picket_test_support::bitbucket::{BitbucketServer, TestPull, PICKET_SCOPES};
use serde_json::{json, Value};
use sqlx::PgPool;

const SECRET: &str = "bitbucket-hook-secret-0123456789";
const WORKSPACE: &str = "acme";
const SLUG: &str = "app";
const PR: u64 = 7;
/// The access token's user: the author of everything Picket posts.
const BOT: &str = "picket-bot";

struct World {
    rig: Rig,
    server: BitbucketServer,
    hook: Hook,
    repo_uuid: String,
}

crate::feedback::world_derefs_to_rig!(World);

impl World {
    async fn new(pool: PgPool) -> World {
        let mut rig = Rig::new(pool, "bitbucket-feedback-e2e").await;
        let server = BitbucketServer::start(WORKSPACE).await;
        let token = server.add_token(BOT, PICKET_SCOPES);
        let repo_uuid = server.add_repo(SLUG, "main", &rig.clone_url());
        let main = git(&rig.repo(), &["rev-parse", "main"]);
        server.set_branch(SLUG, "main", &main);
        server.set_permission(SLUG, "alice", "write", true);
        let conn = rig
            .app
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
        rig.add_project(&conn, &repo_uuid, &format!("{WORKSPACE}/{SLUG}"))
            .await;
        rig.block_and_comment().await;
        let hook = Hook {
            http: reqwest::Client::new(),
            url: format!("{}{}", rig.app.base, conn["webhook_url"].as_str().unwrap()),
            secret: SECRET.to_owned(),
        };
        rig.start_scheduler().await;
        World {
            rig,
            server,
            hook,
            repo_uuid,
        }
    }

    /// Points the pull request at `head` (the source branch is the repository's `feature`; the
    /// server's record, the merge base, the diff's lines) and delivers `event`.
    async fn deliver_head(&self, event: &str, delivery: &str, head: &str, files: &[(&str, &str)]) {
        let base = git(&self.repo(), &["rev-parse", "main"]);
        if event == "pullrequest:created" {
            self.server
                .add_pull(SLUG, TestPull::open(PR, "feature", head, &base, "alice"));
        } else {
            self.server.update_pull(SLUG, PR, |p| p.head = head.into());
        }
        self.server.set_merge_base(SLUG, &base, head, &base);
        for (path, text) in files {
            self.server.set_diff_lines(SLUG, PR, path, &lines(text));
        }
        let fixture = if event == "pullrequest:created" {
            "pullrequest_created.json"
        } else {
            "pullrequest_updated.json"
        };
        self.deliver(event, delivery, &self.payload(fixture, head, &base))
            .await
            .outcome(202, "scan_queued");
    }

    /// picket-vcs's fixture `name` for this repository's pull request, at `head` over `base`,
    /// hashes abbreviated to 12 digits as Bitbucket sends them.
    fn payload(&self, name: &str, head: &str, base: &str) -> Value {
        let mut p = fixture(name);
        let repository = json!({
            "type": "repository", "full_name": format!("{WORKSPACE}/{SLUG}"), "name": SLUG,
            "uuid": self.repo_uuid,
        });
        let pr = &mut p["pullrequest"];
        pr["id"] = json!(PR);
        pr["author"]["nickname"] = json!("alice");
        pr["source"]["branch"]["name"] = json!("feature");
        pr["source"]["commit"]["hash"] = json!(&head[..12]);
        pr["source"]["repository"] = repository.clone();
        pr["destination"]["branch"]["name"] = json!("main");
        pr["destination"]["commit"]["hash"] = json!(&base[..12]);
        pr["destination"]["repository"] = repository;
        pr["updated_on"] = json!(time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap());
        p["repository"]["uuid"] = json!(self.repo_uuid);
        p["repository"]["full_name"] = json!(format!("{WORKSPACE}/{SLUG}"));
        p["repository"]["name"] = json!(SLUG);
        p
    }

    async fn deliver(&self, event: &str, id: &str, payload: &Value) -> crate::webhooks::Answer {
        let body = serde_json::to_vec(payload).unwrap();
        self.hook
            .raw(
                &[
                    ("x-event-key", event.to_owned()),
                    ("x-request-uuid", id.to_owned()),
                    ("x-attempt-number", "1".to_owned()),
                    ("x-hub-signature", sign(SECRET, &body)),
                ],
                body,
            )
            .await
    }
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../crates/vcs/tests/vcs/fixtures/bitbucket/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

impl PrWorld for World {
    async fn open(&self, delivery: &str, head: &str, files: &[(&str, &str)]) {
        self.deliver_head("pullrequest:created", delivery, head, files)
            .await
    }

    async fn push(&self, delivery: &str, head: &str, files: &[(&str, &str)]) {
        self.deliver_head("pullrequest:updated", delivery, head, files)
            .await
    }

    /// `pullrequest:updated` for a title edit: the same source commit.
    async fn edit_metadata(&self, delivery: &str) -> String {
        let head = git(&self.repo(), &["rev-parse", "feature"]);
        let base = git(&self.repo(), &["rev-parse", "main"]);
        let mut payload = self.payload("pullrequest_updated.json", &head, &base);
        payload["pullrequest"]["title"] = json!("A better title");
        self.deliver("pullrequest:updated", delivery, &payload)
            .await
            .outcome(200, "duplicate_head");
        "duplicate_head".into()
    }

    /// The Code Insights report on `head`, or else its build status.
    fn check(&self, head: &str) -> Option<Check> {
        let report = self
            .server
            .reports(SLUG)
            .into_iter()
            .find(|r| r.commit == head)
            .map(|r| {
                let verdict = match r.body["result"].as_str() {
                    Some("PASSED") => Verdict::Passed,
                    Some("FAILED") => Verdict::Failed,
                    Some("PENDING") | None => Verdict::Pending,
                    Some(other) => Verdict::Other(other.into()),
                };
                Check {
                    verdict,
                    text: format!("{} {:?}", r.body, r.annotations),
                }
            });
        report.or_else(|| {
            self.server
                .statuses(SLUG)
                .into_iter()
                .find(|s| s.commit == head)
                .map(|s| Check {
                    verdict: match s.body["state"].as_str() {
                        Some("SUCCESSFUL") => Verdict::Passed,
                        Some("FAILED") => Verdict::Failed,
                        Some("INPROGRESS") | None => Verdict::Pending,
                        Some(other) => Verdict::Other(other.into()),
                    },
                    text: s.body.to_string(),
                })
        })
    }

    /// Picket's top-level inline comments.
    fn threads(&self) -> Vec<LineThread> {
        self.server
            .comments(SLUG, PR)
            .into_iter()
            .filter(|c| c.author == BOT && c.parent.is_none() && !c.deleted)
            .filter_map(|c| {
                let (path, line) = c.inline?;
                Some(LineThread {
                    id: c.id.to_string(),
                    path,
                    line,
                    body: c.raw,
                    resolved: c.resolved_by.is_some(),
                })
            })
            .collect()
    }

    fn summaries(&self) -> Vec<String> {
        self.server
            .comments(SLUG, PR)
            .into_iter()
            .filter(|c| c.author == BOT && c.raw.starts_with("<!-- picket:summary -->"))
            .map(|c| c.raw)
            .collect()
    }

    /// Alice (write access) answers the inline comment; `pullrequest:comment_created` follows.
    async fn reply(&self, delivery: &str, thread: &LineThread, text: &str) {
        let parent: u64 = thread.id.parse().unwrap();
        let line = thread.line.unwrap();
        let id = self.server.add_comment(
            SLUG,
            PR,
            "alice",
            text,
            Some((&thread.path, line)),
            Some(parent),
        );
        let head = git(&self.repo(), &["rev-parse", "feature"]);
        let base = git(&self.repo(), &["rev-parse", "main"]);
        let mut payload = fixture("pullrequest_comment_created_inline.json");
        let pr = self.payload("pullrequest_updated.json", &head, &base);
        payload["pullrequest"] = pr["pullrequest"].clone();
        payload["repository"] = pr["repository"].clone();
        let alice = json!({"type": "user", "nickname": "alice", "display_name": "alice",
                           "uuid": self.server.add_user("alice")});
        payload["actor"] = alice.clone();
        let c = &mut payload["comment"];
        c["id"] = json!(id);
        c["parent"]["id"] = json!(parent);
        c["content"]["raw"] = json!(text);
        c["inline"] = json!({"path": thread.path, "from": null, "to": line});
        c["user"] = alice;
        self.deliver("pullrequest:comment_created", delivery, &payload)
            .await
            .outcome(202, "triage_queued");
    }

    fn answers(&self, thread: &LineThread) -> Vec<String> {
        self.server
            .comments(SLUG, PR)
            .into_iter()
            .filter(|c| {
                c.author == BOT && c.parent.map(|p| p.to_string()) == Some(thread.id.clone())
            })
            .map(|c| c.raw)
            .collect()
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
async fn a_pull_request_gets_comments_a_summary_and_a_report_and_a_reply_triages(pool: PgPool) {
    feedback::opened_pushed_and_triaged(&mut World::new(pool).await).await
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_superseded_pull_request_scan_never_posts(pool: PgPool) {
    feedback::a_superseded_scan_never_posts_and_comment_findings_pass(&mut World::new(pool).await)
        .await
}

/// Code Insights is unavailable (a plan or permission without it: 403): the check is a build
/// status, and past the deadline it passes.
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn without_code_insights_the_build_status_is_the_check_and_fails_open(pool: PgPool) {
    let mut w = World::new(pool).await;
    w.server.refuse_code_insights(Some(403));
    feedback::past_the_deadline_the_check_passes_and_late_results_only_comment(&mut w).await;
    let statuses = w.server.statuses(SLUG);
    assert_eq!(statuses.len(), 1, "{statuses:#?}");
    assert_eq!(statuses[0].body["state"], "SUCCESSFUL");
    assert!(w.server.reports(SLUG).is_empty());
}
