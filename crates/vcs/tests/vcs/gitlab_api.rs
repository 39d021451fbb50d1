//! The GitLab client against the GitLab test server (real HTTP on 127.0.0.1): every operation,
//! rate limits, retries and error mapping. After each test every request the server received
//! must be one of GitLab's endpoints as `@gitbeaker/core` knows them, with the parameters
//! GitLab's documentation requires (`server.violations()` empty).

use crate::options;
use picket_test_support::gitlab::{access, Fault, FaultKind, GitLabServer, TestMergeRequest};
use picket_vcs::gitlab::api::{GitLab, GitLabFeedback};
use picket_vcs::gitlab::GitLabCredentials;
use picket_vcs::provider::{
    CheckConclusion, CheckOutput, CheckStatus, CheckUpdate, CredentialScope, InlineComment,
    RepoLocator,
};
use picket_vcs::{ErrorCode, FeedbackClient, SourceProvider};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

fn credentials(token: &str, group: Option<&str>) -> GitLabCredentials {
    GitLabCredentials {
        token: SecretString::from(token.to_owned()),
        webhook_secret: SecretString::from("gitlab-hook-secret-0123".to_owned()),
        previous_webhook_secret: None,
        previous_valid_until: None,
        group: group.map(str::to_owned),
    }
}

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(20)
}

/// A GitLab with group `acme/platform` (projects `web`, `api`, archived `old`), a subgroup
/// project `acme/platform/tools/cli`, a project outside the group, the bot `picket-bot` with a
/// token, and merge request !7 of `web` with one version.
struct World {
    server: GitLabServer,
    token: String,
    web: u64,
    outside: u64,
    repo: RepoLocator,
}

impl World {
    async fn new() -> World {
        let server = GitLabServer::start().await;
        let bot = server.add_bot("picket-bot");
        let token = server.add_token(bot, &["api", "read_repository"]);
        let group = server.add_group("acme/platform");
        server.add_group("acme/platform/tools");
        let web = server.add_project("acme/platform", "web");
        server.add_project("acme/platform", "api");
        let old = server.add_project("acme/platform", "old");
        server.update_project(old, |p| p.archived = true);
        server.add_project("acme/platform/tools", "cli");
        let outside = server.add_project("other", "lib");
        server.add_group_member(group, bot, access::DEVELOPER);
        server.add_project_member(outside, bot, access::REPORTER);
        server.add_merge_request(web, TestMergeRequest::new(7, "feature", &sha(2), "alice"));
        server.push_version(web, 7, &sha(1), &sha(1), &sha(2));
        let repo = RepoLocator {
            id: web.to_string(),
            full_name: "acme/platform/web".into(),
            installation_id: None,
        };
        World {
            server,
            token,
            web,
            outside,
            repo,
        }
    }

    fn connection(&self, group: Option<&str>) -> GitLab {
        GitLab::new(
            &credentials(&self.token, group),
            &options(&self.server.api_url()),
        )
        .unwrap()
    }

    fn feedback(&self) -> GitLabFeedback {
        let credential = picket_vcs::provider::ScopedCredential {
            username: "oauth2".into(),
            secret: SecretString::from(self.token.clone()),
            expires_at: None,
        };
        GitLabFeedback::new(&credential, &options(&self.server.api_url())).unwrap()
    }

    #[track_caller]
    fn no_violations(&self) {
        assert_eq!(self.server.violations(), Vec::<String>::new());
    }
}

#[tokio::test]
async fn a_connection_lists_its_groups_projects_and_reads_merge_requests() {
    let w = World::new().await;
    let gl = w.connection(Some("acme/platform"));
    let check = gl.check().await.unwrap();
    assert_eq!(check.identity, "picket-bot");
    assert!(check.missing_permissions.is_empty(), "{check:?}");
    assert_eq!(gl.bot_login().await.unwrap(), "picket-bot");

    // Two a page, subgroups included, archived ones flagged.
    let first = gl.list_repositories(None, 2).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let next = first.next.clone().expect("a second page");
    let second = gl.list_repositories(Some(&next), 2).await.unwrap();
    let all = gl.all_repositories().await.unwrap();
    let names: Vec<&str> = all.iter().map(|r| r.full_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "acme/platform/web",
            "acme/platform/api",
            "acme/platform/old",
            "acme/platform/tools/cli"
        ]
    );
    assert_eq!(
        first
            .items
            .iter()
            .chain(&second.items)
            .map(|r| r.full_name.as_str())
            .collect::<Vec<_>>(),
        names
    );
    let old = all.iter().find(|r| r.full_name.ends_with("/old")).unwrap();
    assert!(old.archived && old.private);
    assert_eq!(all[0].id, w.web.to_string());
    assert_eq!(all[0].default_branch, "main");
    assert!(all[0].clone_url.ends_with("/acme/platform/web.git"));
    assert_eq!(
        gl.list_repositories(Some("r1.0.1"), 2)
            .await
            .unwrap_err()
            .code,
        ErrorCode::Rejected
    );

    // Without a group: the token's memberships (the group's projects and the outside one).
    let mine = w.connection(None).all_repositories().await.unwrap();
    assert!(
        mine.iter().any(|r| r.id == w.outside.to_string()),
        "{mine:?}"
    );
    assert_eq!(mine.len(), 5);

    assert_eq!(
        gl.repository(&w.repo).await.unwrap().full_name,
        "acme/platform/web"
    );
    let mr = gl.pull_request(&w.repo, 7).await.unwrap();
    assert_eq!(
        (
            mr.number,
            mr.open,
            mr.head_sha.as_str(),
            mr.head_ref.as_str()
        ),
        (7, true, sha(2).as_str(), "feature")
    );
    assert_eq!(mr.base_sha, sha(1));
    assert!(!mr.from_fork);
    let open = gl.open_pull_requests(&w.repo, None).await.unwrap();
    assert_eq!(open.items.len(), 1);
    assert_eq!(open.next, None);

    w.server.set_merge_base(w.web, "main", &sha(2), &sha(1));
    assert_eq!(
        gl.merge_base(&w.repo, "main", &sha(2)).await.unwrap(),
        sha(1)
    );

    // Developer or above may triage; a reporter, a stranger and an unknown login may not.
    let dev = w.server.add_user("dev");
    let reporter = w.server.add_user("reporter");
    w.server.add_project_member(w.web, dev, access::DEVELOPER);
    w.server
        .add_project_member(w.web, reporter, access::REPORTER);
    w.server.add_user("stranger");
    assert!(gl.has_write_access(&w.repo, "dev").await.unwrap());
    assert!(!gl.has_write_access(&w.repo, "reporter").await.unwrap());
    assert!(!gl.has_write_access(&w.repo, "stranger").await.unwrap());
    assert!(!gl.has_write_access(&w.repo, "nobody").await.unwrap());

    // The clone credential is the connection's token.
    let minted = gl
        .mint_credential(&w.repo, CredentialScope::Clone)
        .await
        .unwrap();
    assert_eq!(minted.username, "oauth2");
    assert_eq!(minted.secret.expose_secret(), w.token);
    assert!(!format!("{minted:?}").contains(&w.token));
    assert!(gl.api_calls() > 10);
    w.no_violations();
}

#[tokio::test]
async fn a_token_without_the_scopes_or_refused_says_so() {
    let w = World::new().await;
    let reader = w.server.add_user("reader");
    let read_only = w.server.add_token(reader, &["read_api"]);
    let gl = GitLab::new(
        &credentials(&read_only, None),
        &options(&w.server.api_url()),
    )
    .unwrap();
    let check = gl.check().await.unwrap();
    assert_eq!(check.missing_permissions, ["api", "read_repository"]);

    let wrong = GitLab::new(
        &credentials("glpat-not-a-token-at-all", None),
        &options(&w.server.api_url()),
    )
    .unwrap();
    let e = wrong.check().await.unwrap_err();
    assert_eq!((e.code, e.status), (ErrorCode::Unauthorized, Some(401)));
    assert!(!e.to_string().contains("glpat"), "{e}");
    let missing = w
        .connection(None)
        .repository(&RepoLocator {
            id: "999999".into(),
            full_name: "acme/none".into(),
            installation_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);
    w.no_violations();
}

#[tokio::test]
async fn rate_limits_are_waited_out_and_server_errors_retried() {
    let w = World::new().await;
    let gl = w.connection(Some("acme/platform"));
    w.server.inject(Fault::new(
        "/projects",
        FaultKind::TooManyRequests {
            retry_after_secs: 1,
        },
        1,
    ));
    w.server.inject(Fault::new(
        "/projects",
        FaultKind::ServerError { status: 502 },
        2,
    ));
    let started = std::time::Instant::now();
    assert_eq!(gl.all_repositories().await.unwrap().len(), 4);
    assert!(started.elapsed() >= Duration::from_secs(1));
    // Past the budget: the caller learns how long GitLab asked to wait.
    w.server.inject(Fault::new(
        "/projects",
        FaultKind::TooManyRequests {
            retry_after_secs: 60,
        },
        1,
    ));
    let e = gl.all_repositories().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(60)));
    w.server.inject(Fault::new(
        "/projects",
        FaultKind::ServerError { status: 500 },
        3,
    ));
    assert_eq!(
        gl.all_repositories().await.unwrap_err().code,
        ErrorCode::Unavailable
    );
    w.no_violations();
}

fn update(status: CheckStatus, conclusion: Option<CheckConclusion>, title: &str) -> CheckUpdate {
    CheckUpdate {
        status,
        conclusion,
        output: Some(CheckOutput {
            title: title.into(),
            summary: "summary".into(),
            text: None,
            annotations: Vec::new(),
        }),
        details_url: Some("https://picket.example/scans/1".into()),
    }
}

#[tokio::test]
async fn feedback_posts_discussions_a_summary_and_a_commit_status() {
    let w = World::new().await;
    let fb = w.feedback();
    let (repo, head) = (&w.repo, sha(2));
    w.server
        .set_diff_lines(w.web, 7, &head, "app.py", &[3, 4, 5]);

    // The status: pending, running (twice: GitLab refuses a repeated transition), failed.
    let id = fb
        .create_check(
            repo,
            7,
            "Picket",
            &head,
            &update(CheckStatus::Queued, None, "Queued"),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        fb.update_check(
            repo,
            &id,
            &update(CheckStatus::InProgress, None, "Scanning"),
        )
        .await
        .unwrap();
    }
    fb.update_check(
        repo,
        &id,
        &update(
            CheckStatus::Completed,
            Some(CheckConclusion::Failure),
            &"x".repeat(400),
        ),
    )
    .await
    .unwrap();
    let status = w.server.latest_status(w.web, &head, "Picket").unwrap();
    assert_eq!(status.status, "failed");
    assert_eq!(status.description.as_deref().map(str::len), Some(255));
    assert_eq!(
        status.target_url.as_deref(),
        Some("https://picket.example/scans/1")
    );

    // Two inline comments on lines of the diff, one off it (left out).
    let marker = "<!-- picket:finding abc -->";
    let posted = fb
        .post_inline_comments(
            repo,
            7,
            &head,
            &[
                InlineComment {
                    path: "app.py".into(),
                    line: 4,
                    body: format!("{marker}\nBlock: eval"),
                },
                InlineComment {
                    path: "app.py".into(),
                    line: 40,
                    body: "<!-- picket:finding off -->".into(),
                },
                InlineComment {
                    path: "app.py".into(),
                    line: 5,
                    body: "<!-- picket:finding def -->\nComment: md5".into(),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(posted.len(), 2, "{posted:?}");
    assert_eq!(
        posted.iter().map(|c| c.line).collect::<Vec<_>>(),
        [Some(4), Some(5)]
    );
    assert!(posted
        .iter()
        .all(|c| c.author == "picket-bot" && c.thread_id.is_some()));
    let discussions = w.server.discussions(w.web, 7);
    let position = discussions[0].notes[0].position.clone().unwrap();
    assert_eq!(
        (
            position.base_sha.as_str(),
            position.start_sha.as_str(),
            position.head_sha.as_str()
        ),
        (sha(1).as_str(), sha(1).as_str(), head.as_str())
    );
    assert_eq!(position.new_path.as_deref(), Some("app.py"));
    assert_eq!(position.old_path.as_deref(), Some("app.py"));

    // A person's note containing the marker is found too (the caller filters by author).
    w.server
        .add_note(w.web, 7, "mallory", &format!("quoting {marker}"));
    let found = fb.find_comments(repo, 7, marker).await.unwrap();
    assert_eq!(
        found.iter().map(|c| c.author.as_str()).collect::<Vec<_>>(),
        ["picket-bot", "mallory"]
    );

    // Resolving the first thread.
    let thread = posted[0].thread_id.clone().unwrap();
    fb.resolve_thread(repo, 7, &thread).await.unwrap();
    let again = fb.find_comments(repo, 7, marker).await.unwrap();
    assert!(again[0].resolved);
    assert!(w
        .server
        .discussions(w.web, 7)
        .iter()
        .any(|d| d.id == thread && d.resolved()));

    // The summary: created, then edited in place; a deleted one is created again.
    let summary = fb
        .upsert_conversation_comment(repo, 7, None, "<!-- picket:summary -->\none")
        .await
        .unwrap();
    let edited = fb
        .upsert_conversation_comment(repo, 7, Some(&summary.id), "<!-- picket:summary -->\ntwo")
        .await
        .unwrap();
    assert_eq!(edited.id, summary.id);
    let summaries: Vec<_> = w
        .server
        .notes(w.web, 7)
        .into_iter()
        .filter(|n| n.body.starts_with("<!-- picket:summary -->"))
        .collect();
    assert_eq!(summaries.len(), 1);
    assert!(summaries[0].body.ends_with("two"));
    let recreated = fb
        .upsert_conversation_comment(repo, 7, Some("999999"), "<!-- picket:summary -->\nthree")
        .await
        .unwrap();
    assert_ne!(recreated.id, summary.id);

    // Triage: the thread's first note, and an answer in the thread.
    let parent = fb.review_comment(repo, 7, &thread).await.unwrap().unwrap();
    assert_eq!(parent.author, "picket-bot");
    assert!(parent.body.starts_with(marker));
    assert_eq!(fb.review_comment(repo, 7, "f00d").await.unwrap(), None);
    let answer = fb
        .reply(repo, 7, &thread, "Ignored: false positive")
        .await
        .unwrap();
    let d = w
        .server
        .discussions(w.web, 7)
        .into_iter()
        .find(|d| d.id == thread)
        .unwrap();
    assert_eq!(d.notes.last().unwrap().id.to_string(), answer.id);
    assert!(fb.api_calls() > 10);
    w.no_violations();
}

#[tokio::test]
async fn inline_comments_wait_for_gitlab_to_prepare_the_diff_and_survive_the_note_limit() {
    let w = World::new().await;
    let fb = w.feedback();
    let comment = InlineComment {
        path: "app.py".into(),
        line: 3,
        body: "<!-- picket:finding a -->".into(),
    };
    // A head GitLab has no version of yet.
    let e = fb
        .post_inline_comments(&w.repo, 7, &sha(9), std::slice::from_ref(&comment))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
    // Note creation's application limit answers 429 while the headers still show quota.
    w.server.inject(
        Fault::new(
            "/discussions",
            FaultKind::ApplicationLimit {
                retry_after_secs: None,
            },
            1,
        )
        .method("POST"),
    );
    let posted = fb
        .post_inline_comments(&w.repo, 7, &sha(2), &[comment])
        .await
        .unwrap();
    assert_eq!(posted.len(), 1);
    w.no_violations();
}

#[tokio::test]
async fn hooks_are_made_on_the_group_or_each_project_and_updated_in_place() {
    let w = World::new().await;
    let url = "https://picket.example/webhooks/gitlab/c1";
    let secret = SecretString::from("gitlab-hook-secret-0123".to_owned());
    let grouped = w.connection(Some("acme/platform"));
    // A group hook needs the Owner role, a project hook Maintainer (GitLab docs, "Group
    // webhooks", "Project webhooks"): the developer bot is refused, and says so.
    let refused = grouped
        .ensure_webhooks(url, &secret, std::slice::from_ref(&w.repo))
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    let group = w.server.add_group("acme/platform");
    let bot = w.server.user_id("picket-bot").unwrap();
    w.server.add_group_member(group, bot, access::OWNER);
    let first = grouped
        .ensure_webhooks(url, &secret, std::slice::from_ref(&w.repo))
        .await
        .unwrap();
    let again = grouped
        .ensure_webhooks(url, &secret, std::slice::from_ref(&w.repo))
        .await
        .unwrap();
    assert_eq!(first, again, "the hook is updated in place");
    let hooks = w.server.group_hooks(group);
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(hook.url, url);
    assert_eq!(hook.token.as_deref(), Some("gitlab-hook-secret-0123"));
    assert!(hook.merge_requests_events && hook.note_events && !hook.push_events);
    assert!(hook.enable_ssl_verification);

    let per_project = w.connection(None);
    per_project
        .ensure_webhooks(url, &secret, std::slice::from_ref(&w.repo))
        .await
        .unwrap();
    assert_eq!(w.server.project_hooks(w.web).len(), 1);

    let signing = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
    let e = per_project
        .ensure_webhooks(url, &signing, std::slice::from_ref(&w.repo))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadConfig);
    assert!(!e.message.contains("whsec_M"), "{e}");
    w.no_violations();
}
