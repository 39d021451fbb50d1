//! The Bitbucket Cloud client against the Bitbucket test server (real HTTP on 127.0.0.1): every
//! operation, the Code Insights report with its annotations and the build-status fallback,
//! rate limits, retries, error mapping and cursors. After each test every request the server
//! received must match an operation of npm `bitbucket`'s route table (`server.violations()`
//! empty).

use crate::options;
use picket_core::Provider;
use picket_test_support::bitbucket::{BitbucketServer, Fault, FaultKind, TestPull, PICKET_SCOPES};
use picket_vcs::bitbucket::api::{
    report_id, Bitbucket, BitbucketFeedback, HOOK_EVENTS, MAX_ANNOTATIONS_PER_REPORT,
};
use picket_vcs::bitbucket::BitbucketCredentials;
use picket_vcs::provider::{
    Annotation, AnnotationLevel, CheckConclusion, CheckOutput, CheckStatus, CheckUpdate,
    CredentialScope, InlineComment, RepoLocator,
};
use picket_vcs::registry::{api_url, connect, feedback_client};
use picket_vcs::{ErrorCode, FeedbackClient, SourceProvider, StoredConnection};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

const HEAD: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
const BASE: &str = "b2c3d4e5f60718293a4b5c6d7e8f901234567890";
const MERGE_BASE: &str = "c3d4e5f60718293a4b5c6d7e8f90123456789012";

fn credentials(token: &str) -> BitbucketCredentials {
    BitbucketCredentials {
        token: SecretString::from(token.to_owned()),
        webhook_secret: SecretString::from("hook-secret".to_owned()),
        previous_webhook_secret: None,
        previous_valid_until: None,
        workspace: "acme".into(),
    }
}

/// A server with workspace `acme`, repository `acme/web` and its open PR #7, and a workspace
/// access token `Picket` with Picket's scopes.
struct World {
    server: BitbucketServer,
    token: String,
    repo: RepoLocator,
    provider: Bitbucket,
}

impl World {
    async fn new() -> World {
        let server = BitbucketServer::start("acme").await;
        let token = server.add_token("Picket", PICKET_SCOPES);
        let uuid = server.add_repo("web", "main", "https://bitbucket.org/acme/web.git");
        server.add_pull("web", TestPull::open(7, "feature/x", HEAD, BASE, "alice"));
        server.set_merge_base("web", BASE, HEAD, MERGE_BASE);
        let provider = Bitbucket::new(&credentials(&token), &options(&server.api_url())).unwrap();
        World {
            repo: RepoLocator {
                id: uuid,
                full_name: "acme/web".into(),
                installation_id: None,
            },
            server,
            token,
            provider,
        }
    }

    /// A feedback client for PR scans of `acme/web`, from the minted credential.
    async fn feedback(&self) -> BitbucketFeedback {
        let credential = self
            .provider
            .mint_credential(&self.repo, CredentialScope::PullRequestScan)
            .await
            .unwrap();
        BitbucketFeedback::new(&credential, &options(&self.server.api_url())).unwrap()
    }

    fn assert_valid(&self) {
        let violations = self.server.violations();
        assert!(
            violations.is_empty(),
            "route table violations: {violations:#?}"
        );
    }

    fn requests_to(&self, method: &str, path_contains: &str) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains(path_contains))
            .count()
    }
}

#[tokio::test]
async fn check_reports_the_identity_and_missing_scopes() {
    let w = World::new().await;
    let check = w.provider.check().await.unwrap();
    assert_eq!(check.identity, "Picket");
    assert!(check.missing_permissions.is_empty(), "{check:?}");
    assert!(check.installations.is_empty() && check.missing_events.is_empty());
    // The bot login was learnt by the check: no call more.
    let calls = w.provider.api_calls();
    assert_eq!(w.provider.bot_login().await.unwrap(), "Picket");
    assert_eq!(w.provider.api_calls(), calls);

    let narrow = w.server.add_token("Narrow", &["repository"]);
    let provider = Bitbucket::new(&credentials(&narrow), &options(&w.server.api_url())).unwrap();
    let check = provider.check().await.unwrap();
    assert_eq!(check.identity, "Narrow");
    assert_eq!(check.missing_permissions, ["pullrequest:write", "webhook"]);

    let mut creds = credentials(&w.token);
    creds.workspace = "globex".into();
    let elsewhere = Bitbucket::new(&creds, &options(&w.server.api_url())).unwrap();
    assert_eq!(
        elsewhere.check().await.unwrap_err().code,
        ErrorCode::NotFound
    );
    creds.workspace = " ".into();
    assert_eq!(
        Bitbucket::new(&creds, &options(&w.server.api_url()))
            .unwrap_err()
            .code,
        ErrorCode::BadConfig
    );
    w.assert_valid();
}

#[tokio::test]
async fn repositories_are_listed_page_by_page() {
    let w = World::new().await;
    for i in 0..24 {
        w.server.add_repo(
            &format!("repo-{i:02}"),
            "trunk",
            &format!("https://bitbucket.org/acme/repo-{i:02}.git"),
        );
    }
    let first = w.provider.list_repositories(None, 10).await.unwrap();
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.next.as_deref(), Some("bb1.2"));
    let second = w
        .provider
        .list_repositories(first.next.as_deref(), 10)
        .await
        .unwrap();
    assert_eq!(second.items.len(), 10);
    let third = w
        .provider
        .list_repositories(second.next.as_deref(), 10)
        .await
        .unwrap();
    assert_eq!(third.items.len(), 5);
    assert_eq!(third.next, None);
    let all = w.provider.all_repositories().await.unwrap();
    assert_eq!(all.len(), 25);

    // A cursor this provider did not make is refused before anything is sent.
    let before = w.server.requests().len();
    for bad in ["gl1.2", "r1.0.1", "bb1.0", "bb1.x"] {
        let e = w
            .provider
            .list_repositories(Some(bad), 10)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Rejected, "{bad}");
        assert_eq!(e.status, None);
    }
    assert_eq!(w.server.requests().len(), before);

    let web = w.provider.repository(&w.repo).await.unwrap();
    assert_eq!(web.id, w.repo.id);
    assert!(web.id.starts_with('{') && web.id.ends_with('}'));
    assert_eq!(web.full_name, "acme/web");
    // The user name Bitbucket writes into its clone link is dropped.
    assert_eq!(web.clone_url, "https://bitbucket.org/acme/web.git");
    assert_eq!(web.default_branch, "main");
    assert!(web.private && !web.archived);
    assert!(all.contains(&web));

    // Another repository under the stored name is not the stored one.
    let mut renamed = w.repo.clone();
    renamed.id = "{00000000-0000-0000-0000-000000000000}".into();
    let e = w.provider.repository(&renamed).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    let mut missing = w.repo.clone();
    missing.full_name = "acme/gone".into();
    assert_eq!(
        w.provider.repository(&missing).await.unwrap_err().code,
        ErrorCode::NotFound
    );
    missing.full_name = "acme".into();
    assert_eq!(
        w.provider.repository(&missing).await.unwrap_err().code,
        ErrorCode::BadConfig
    );
    w.assert_valid();
}

#[tokio::test]
async fn pull_requests_with_their_hashes_resolved() {
    let w = World::new().await;
    let pr = w.provider.pull_request(&w.repo, 7).await.unwrap();
    assert_eq!(pr.number, 7);
    assert!(pr.open && !pr.draft && !pr.from_fork);
    assert_eq!(pr.head_sha, HEAD);
    assert_eq!(pr.base_sha, BASE);
    assert_eq!(pr.head_ref, "feature/x");
    assert_eq!(pr.base_ref, "main");
    assert_eq!(pr.title, "Pull request 7");
    assert_eq!(pr.author.as_deref(), Some("alice"));
    assert!(pr.updated_at.is_some());
    // Asked again: the hashes are known, only the pull request is fetched.
    let calls = w.provider.api_calls();
    w.provider.pull_request(&w.repo, 7).await.unwrap();
    assert_eq!(w.provider.api_calls(), calls + 1);

    for id in 8..=67u64 {
        // Distinct in their first 12 digits, as Bitbucket's abbreviations need.
        let head = format!("{id:012x}{}", "e".repeat(28));
        let mut pull = TestPull::open(id, &format!("topic-{id}"), &head, BASE, "bob");
        pull.from_fork = id == 8;
        pull.draft = id == 9;
        w.server.add_pull("web", pull);
    }
    w.server
        .update_pull("web", 10, |p| p.state = "DECLINED".into());
    let first = w.provider.open_pull_requests(&w.repo, None).await.unwrap();
    assert_eq!(first.items.len(), 50);
    assert_eq!(first.next.as_deref(), Some("bb1.2"));
    let second = w
        .provider
        .open_pull_requests(&w.repo, first.next.as_deref())
        .await
        .unwrap();
    assert_eq!(second.items.len(), 10);
    assert_eq!(second.next, None);
    let all: Vec<_> = first.items.iter().chain(&second.items).collect();
    assert!(all.iter().all(|p| p.open && p.number != 10));
    let eight = all.iter().find(|p| p.number == 8).unwrap();
    assert!(eight.from_fork);
    assert_eq!(eight.head_sha, format!("{:012x}{}", 8, "e".repeat(28)));
    assert!(all.iter().find(|p| p.number == 9).unwrap().draft);
    // The shared base was resolved once.
    let base_lookups = w
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&format!("/commit/{}", &BASE[..12])))
        .count();
    assert_eq!(base_lookups, 1);

    assert_eq!(
        w.provider.merge_base(&w.repo, "main", HEAD).await.unwrap(),
        MERGE_BASE
    );
    // A branch name with a slash stays one path segment.
    w.server.set_branch("web", "release/1.0", BASE);
    assert_eq!(
        w.provider
            .merge_base(&w.repo, "release/1.0", HEAD)
            .await
            .unwrap(),
        MERGE_BASE
    );
    assert_eq!(
        w.provider
            .resolve_commit(&w.repo, &HEAD[..12])
            .await
            .unwrap(),
        HEAD
    );
    assert_eq!(
        w.provider
            .resolve_commit(&w.repo, &HEAD.to_uppercase())
            .await
            .unwrap(),
        HEAD
    );
    assert_eq!(
        w.provider
            .resolve_commit(&w.repo, "0123456789ab")
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    assert_eq!(
        w.provider
            .resolve_commit(&w.repo, "../x")
            .await
            .unwrap_err()
            .code,
        ErrorCode::Rejected
    );
    assert_eq!(
        w.provider
            .pull_request(&w.repo, 999)
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    assert_eq!(
        w.provider
            .open_pull_requests(&w.repo, Some("gl1.2"))
            .await
            .unwrap_err()
            .code,
        ErrorCode::Rejected
    );
    w.assert_valid();
}

#[tokio::test]
async fn the_clone_credential_is_the_token() {
    let w = World::new().await;
    let before = w.server.requests().len();
    let credential = w
        .provider
        .mint_credential(&w.repo, CredentialScope::Clone)
        .await
        .unwrap();
    assert_eq!(credential.username, "x-token-auth");
    assert_eq!(credential.secret.expose_secret(), w.token);
    assert_eq!(credential.expires_at, None);
    assert!(!format!("{credential:?}").contains(&w.token));
    assert_eq!(w.server.requests().len(), before, "nothing to mint");
}

#[tokio::test]
async fn write_access_from_effective_then_explicit_permissions() {
    let w = World::new().await;
    w.server.set_permission("web", "alice", "write", false);
    w.server.set_permission("web", "bob", "read", true);
    w.server.set_permission("web", "carol", "admin", true);
    let carol = w.server.add_user("carol");
    for (login, expected) in [
        ("alice", true),
        ("ALICE", true),
        ("bob", false),
        ("carol", true),
        (carol.as_str(), true),
        ("mallory", false),
    ] {
        assert_eq!(
            w.provider.has_write_access(&w.repo, login).await.unwrap(),
            expected,
            "{login}"
        );
    }
    // A repository access token cannot read workspace permissions: the explicit ones only.
    let token = w.server.add_repository_token(
        "Repo token",
        "web",
        &["pullrequest:write", "repository:admin"],
    );
    let provider = Bitbucket::new(&credentials(&token), &options(&w.server.api_url())).unwrap();
    assert!(!provider.has_write_access(&w.repo, "alice").await.unwrap());
    assert!(provider.has_write_access(&w.repo, "carol").await.unwrap());
    // Without repository:admin nothing can be read.
    let token = w.server.add_token("No admin", &["pullrequest:write"]);
    let provider = Bitbucket::new(&credentials(&token), &options(&w.server.api_url())).unwrap();
    assert_eq!(
        provider
            .has_write_access(&w.repo, "alice")
            .await
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
    w.assert_valid();
}

#[tokio::test]
async fn hooks_are_created_once_then_updated() {
    let w = World::new().await;
    w.server
        .add_repo("api", "main", "https://bitbucket.org/acme/api.git");
    let api = RepoLocator {
        id: String::new(),
        full_name: "acme/api".into(),
        installation_id: None,
    };
    let url = "https://picket.example.test/webhooks/bitbucket/c1";
    let repos = [w.repo.clone(), api];
    let first = w
        .provider
        .ensure_webhook(url, &SecretString::from("s1".to_owned()), &repos)
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let second = w
        .provider
        .ensure_webhook(url, &SecretString::from("s2".to_owned()), &repos)
        .await
        .unwrap();
    assert_eq!(first, second);
    for slug in ["web", "api"] {
        let hooks = w.server.hooks(slug);
        assert_eq!(hooks.len(), 1, "{slug}");
        assert_eq!(hooks[0].url, url);
        assert_eq!(hooks[0].events, HOOK_EVENTS);
        assert!(hooks[0].active);
        assert_eq!(hooks[0].secret.as_deref(), Some("s2"));
    }
    assert_eq!(w.requests_to("POST", "/hooks"), 2);
    assert_eq!(w.requests_to("PUT", "/hooks/"), 2);
    w.assert_valid();
}

fn annotations(n: usize) -> Vec<Annotation> {
    (0..n)
        .map(|i| Annotation {
            path: format!("src/f{}.py", i % 7),
            start_line: (i % 50) as u32 + 1,
            end_line: (i % 50) as u32 + 1,
            level: match i % 3 {
                0 => AnnotationLevel::Failure,
                1 => AnnotationLevel::Warning,
                _ => AnnotationLevel::Notice,
            },
            title: format!("finding {i}"),
            message: format!("what is wrong with line {}", i % 50 + 1),
        })
        .collect()
}

fn completed(conclusion: CheckConclusion, annotations: Vec<Annotation>) -> CheckUpdate {
    CheckUpdate {
        status: CheckStatus::Completed,
        conclusion: Some(conclusion),
        output: Some(CheckOutput {
            title: "2 new findings".into(),
            summary: "**Blocking**: 1".into(),
            text: None,
            annotations,
        }),
        details_url: Some("https://picket.example.test/scans/1".into()),
    }
}

fn queued() -> CheckUpdate {
    CheckUpdate {
        status: CheckStatus::Queued,
        conclusion: None,
        output: None,
        details_url: Some("https://picket.example.test/scans/1".into()),
    }
}

#[tokio::test]
async fn the_check_is_a_report_with_annotations_a_hundred_at_a_time() {
    let w = World::new().await;
    let feedback = w.feedback().await;
    let id = feedback
        .create_check(&w.repo, 7, "Picket", HEAD, &queued())
        .await
        .unwrap();
    assert_eq!(id, format!("{HEAD}:picket"));
    let reports = w.server.reports("web");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].commit, HEAD);
    assert_eq!(reports[0].body["result"], "PENDING");
    assert_eq!(reports[0].body["report_type"], "SECURITY");
    assert_eq!(reports[0].body["title"], "Picket");
    assert_eq!(
        reports[0].body["link"],
        "https://picket.example.test/scans/1"
    );

    feedback
        .update_check(
            &w.repo,
            &id,
            &completed(CheckConclusion::Failure, annotations(250)),
        )
        .await
        .unwrap();
    assert_eq!(w.requests_to("POST", "/annotations"), 3);
    let report = &w.server.reports("web")[0];
    assert_eq!(report.body["result"], "FAILED");
    assert_eq!(
        report.body["title"], "Picket",
        "the update writes the same title"
    );
    assert_eq!(report.body["details"], "2 new findings\n\n**Blocking**: 1");
    assert_eq!(report.annotations.len(), 250);
    let first = &report.annotations[0];
    assert_eq!(first["severity"], "HIGH");
    assert_eq!(first["annotation_type"], "VULNERABILITY");
    assert_eq!(first["path"], "src/f0.py");
    assert_eq!(first["line"], 1);
    assert_eq!(first["summary"], "finding 0");
    assert_eq!(report.annotations[1]["severity"], "MEDIUM");
    assert_eq!(report.annotations[2]["severity"], "LOW");

    // Sending them again updates them: still 250.
    feedback
        .update_check(
            &w.repo,
            &id,
            &completed(CheckConclusion::Success, annotations(250)),
        )
        .await
        .unwrap();
    let report = &w.server.reports("web")[0];
    assert_eq!(report.annotations.len(), 250);
    assert_eq!(report.body["result"], "PASSED");

    // A summary past 450 characters is cut to fit.
    let mut long = annotations(1);
    long[0].title = "é".repeat(1000);
    feedback
        .update_check(&w.repo, &id, &completed(CheckConclusion::Failure, long))
        .await
        .unwrap();
    let report = &w.server.reports("web")[0];
    let summary = report.annotations.last().unwrap()["summary"]
        .as_str()
        .unwrap();
    assert_eq!(summary.chars().count(), 450);
    assert!(summary.ends_with('…'));

    assert_eq!(
        feedback
            .update_check(&w.repo, "not-an-id", &queued())
            .await
            .unwrap_err()
            .code,
        ErrorCode::BadConfig
    );
    assert!(w.server.statuses("web").is_empty());
    w.assert_valid();
}

#[tokio::test]
async fn past_a_thousand_annotations_the_rest_is_left_out_and_said() {
    let w = World::new().await;
    let feedback = w.feedback().await;
    let id = feedback
        .create_check(
            &w.repo,
            7,
            "Picket",
            HEAD,
            &completed(CheckConclusion::Failure, annotations(1050)),
        )
        .await
        .unwrap();
    assert_eq!(id, format!("{HEAD}:picket"));
    assert_eq!(w.requests_to("POST", "/annotations"), 10);
    let report = &w.server.reports("web")[0];
    assert_eq!(report.annotations.len(), MAX_ANNOTATIONS_PER_REPORT);
    let details = report.body["details"].as_str().unwrap();
    assert!(
        details.starts_with("50 annotations were left out: Bitbucket keeps at most 1000"),
        "{details}"
    );
    w.assert_valid();
}

#[tokio::test]
async fn without_code_insights_the_check_is_a_build_status() {
    for refusal in [403, 404] {
        let w = World::new().await;
        w.server.refuse_code_insights(Some(refusal));
        let feedback = w.feedback().await;
        let id = feedback
            .create_check(&w.repo, 7, "Picket security", HEAD, &queued())
            .await
            .unwrap();
        assert_eq!(id, format!("{HEAD}:picket-security"));
        let statuses = w.server.statuses("web");
        assert_eq!(statuses.len(), 1);
        assert_eq!(statuses[0].key, "picket-security");
        assert_eq!(statuses[0].body["state"], "INPROGRESS");
        assert_eq!(
            statuses[0].body["url"],
            "https://picket.example.test/scans/1"
        );
        feedback
            .update_check(
                &w.repo,
                &id,
                &completed(CheckConclusion::Failure, annotations(3)),
            )
            .await
            .unwrap();
        let statuses = w.server.statuses("web");
        assert_eq!(statuses.len(), 1);
        assert_eq!(statuses[0].body["state"], "FAILED");
        assert_eq!(statuses[0].body["name"], "Picket security");
        assert_eq!(statuses[0].body["description"], "2 new findings");
        let mut cancelled = completed(CheckConclusion::Cancelled, Vec::new());
        cancelled.details_url = None;
        feedback
            .update_check(&w.repo, &id, &cancelled)
            .await
            .unwrap();
        let status = &w.server.statuses("web")[0];
        assert_eq!(status.body["state"], "STOPPED");
        // Without a details URL, the commit's page.
        assert_eq!(
            status.body["url"],
            format!("https://bitbucket.org/acme/web/commits/{HEAD}")
        );
        assert!(w.server.reports("web").is_empty());
        assert_eq!(w.requests_to("POST", "/annotations"), 0);
        w.assert_valid();
    }
    assert_eq!(report_id("Picket"), "picket");
}

#[tokio::test]
async fn comments_threads_and_replies() {
    let w = World::new().await;
    let feedback = w.feedback().await;
    let marker = "<!-- picket:finding -->";
    w.server.set_diff_lines("web", 7, "src/a.py", &[3, 4, 10]);

    let summary = feedback
        .upsert_conversation_comment(&w.repo, 7, None, "<!-- picket:summary --> v1")
        .await
        .unwrap();
    let edited = feedback
        .upsert_conversation_comment(&w.repo, 7, Some(&summary.id), "<!-- picket:summary --> v2")
        .await
        .unwrap();
    assert_eq!(edited.id, summary.id);
    assert_eq!(edited.author, "Picket");
    assert_eq!(edited.thread_id, None);
    assert_eq!(
        w.server.comments("web", 7)[0].raw,
        "<!-- picket:summary --> v2"
    );

    let wanted = vec![
        InlineComment {
            path: "src/a.py".into(),
            line: 4,
            body: format!("{marker} first"),
        },
        // Outside the diff: refused, left out.
        InlineComment {
            path: "src/a.py".into(),
            line: 99,
            body: format!("{marker} refused"),
        },
        InlineComment {
            path: "src/a.py".into(),
            line: 10,
            body: format!("{marker} third"),
        },
    ];
    let posted = feedback
        .post_inline_comments(&w.repo, 7, HEAD, &wanted)
        .await
        .unwrap();
    assert_eq!(posted.len(), 2);
    for (p, want) in posted.iter().zip([&wanted[0], &wanted[2]]) {
        assert_eq!(p.body, want.body);
        assert_eq!(p.path.as_deref(), Some("src/a.py"));
        assert_eq!(p.line, Some(want.line));
        assert_eq!(p.thread_id.as_deref(), Some(p.id.as_str()));
        assert_eq!(p.author, "Picket");
        assert!(!p.resolved);
    }

    // Someone else's comment with the marker is found too, with its author; deleted ones are
    // not.
    let theirs = w
        .server
        .add_comment("web", 7, "mallory", &format!("{marker} fake"), None, None);
    let gone = w
        .server
        .add_comment("web", 7, "Picket", &format!("{marker} gone"), None, None);
    w.server.delete_comment(gone);
    let found = feedback.find_comments(&w.repo, 7, marker).await.unwrap();
    let bodies: Vec<(&str, &str)> = found
        .iter()
        .map(|c| (c.author.as_str(), c.body.as_str()))
        .collect();
    assert_eq!(
        bodies,
        [
            ("Picket", "<!-- picket:finding --> first"),
            ("Picket", "<!-- picket:finding --> third"),
            ("mallory", "<!-- picket:finding --> fake"),
        ]
    );
    assert_eq!(found[2].id, theirs.to_string());

    // Resolving, twice: the second is a no-op.
    let thread = posted[0].thread_id.clone().unwrap();
    feedback.resolve_thread(&w.repo, 7, &thread).await.unwrap();
    feedback.resolve_thread(&w.repo, 7, &thread).await.unwrap();
    let found = feedback.find_comments(&w.repo, 7, marker).await.unwrap();
    assert!(found[0].resolved && !found[1].resolved);

    // A reply in the thread, by id.
    let reply = feedback
        .reply(&w.repo, 7, &posted[1].id, "Triaged as a false positive.")
        .await
        .unwrap();
    let stored = w.server.comments("web", 7);
    let stored_reply = stored
        .iter()
        .find(|c| c.id.to_string() == reply.id)
        .unwrap();
    assert_eq!(stored_reply.parent, Some(posted[1].id.parse().unwrap()));
    assert_eq!(reply.thread_id, None, "a reply is not a thread");

    // One comment by id: its author and text; none when gone or on another PR.
    let users = w.server.add_comment(
        "web",
        7,
        "alice",
        "@Picket ignore",
        Some(("src/a.py", 4)),
        None,
    );
    let got = feedback
        .review_comment(&w.repo, 7, &users.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.author, "alice");
    assert_eq!(got.body, "@Picket ignore");
    assert_eq!(got.thread_id, None);
    assert!(feedback
        .review_comment(&w.repo, 7, &gone.to_string())
        .await
        .unwrap()
        .is_none());
    assert!(feedback
        .review_comment(&w.repo, 7, "424242")
        .await
        .unwrap()
        .is_none());
    assert!(feedback
        .review_comment(&w.repo, 7, "not-a-number")
        .await
        .unwrap()
        .is_none());
    w.server
        .add_pull("web", TestPull::open(8, "other", BASE, MERGE_BASE, "bob"));
    assert!(feedback
        .review_comment(&w.repo, 8, &users.to_string())
        .await
        .unwrap()
        .is_none());

    // The summary, deleted by someone: a new one is made.
    w.server.delete_comment(summary.id.parse().unwrap());
    let again = feedback
        .upsert_conversation_comment(&w.repo, 7, Some(&summary.id), "<!-- picket:summary --> v3")
        .await
        .unwrap();
    assert_ne!(again.id, summary.id);
    w.assert_valid();
}

#[tokio::test]
async fn rate_limits_are_waited_out_and_server_errors_retried() {
    let w = World::new().await;
    w.server.inject(Fault {
        path_contains: "/pullrequests/7".into(),
        kind: FaultKind::TooManyRequests {
            retry_after_secs: None,
        },
        times: 2,
    });
    let calls = w.provider.api_calls();
    let pr = w.provider.pull_request(&w.repo, 7).await.unwrap();
    assert_eq!(pr.number, 7);
    // Two 429s, the answer, two hash lookups.
    assert_eq!(w.provider.api_calls(), calls + 5);

    w.server.inject(Fault {
        path_contains: "/pullrequests/7".into(),
        kind: FaultKind::ServerError { status: 503 },
        times: 2,
    });
    assert!(w.provider.pull_request(&w.repo, 7).await.is_ok());
    w.server.inject(Fault {
        path_contains: "/pullrequests/7".into(),
        kind: FaultKind::ServerError { status: 502 },
        times: 3,
    });
    assert_eq!(
        w.provider.pull_request(&w.repo, 7).await.unwrap_err().code,
        ErrorCode::Unavailable
    );

    // A wait past the budget fails at once.
    w.server.inject(Fault {
        path_contains: "/pullrequests/7".into(),
        kind: FaultKind::TooManyRequests {
            retry_after_secs: Some(3600),
        },
        times: 1,
    });
    let e = w.provider.pull_request(&w.repo, 7).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(3600)));
    w.assert_valid();
}

#[tokio::test]
async fn a_refused_token_is_unauthorized_and_never_shown() {
    let w = World::new().await;
    let bad = "ATCTT3xnot-a-token";
    let provider = Bitbucket::new(&credentials(bad), &options(&w.server.api_url())).unwrap();
    let e = provider.check().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unauthorized);
    assert_eq!(e.status, Some(401));
    assert!(!e.to_string().contains(bad), "{e}");
    let e = provider.list_repositories(None, 10).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unauthorized);
    w.server.revoke_token(&w.token);
    let feedback = w.feedback().await;
    let e = feedback.find_comments(&w.repo, 7, "x").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unauthorized);
    assert!(!e.message.contains(&w.token));
    // A token without the scope: forbidden, with Bitbucket's message.
    let reader = w.server.add_token("Reader", &["repository"]);
    let provider = Bitbucket::new(&credentials(&reader), &options(&w.server.api_url())).unwrap();
    let e = provider.pull_request(&w.repo, 7).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Forbidden);
    assert!(e.message.contains("privilege scopes"), "{e}");
}

#[tokio::test]
async fn the_registry_builds_bitbucket_connections() {
    assert_eq!(
        api_url(Provider::Bitbucket, ""),
        "https://api.bitbucket.org/2.0"
    );
    let w = World::new().await;
    let stored = StoredConnection {
        provider: Provider::Bitbucket,
        base_url: w.server.api_url(),
        credentials: SecretString::from(serde_json::to_string(&credentials(&w.token)).unwrap()),
        version: vec![1],
    };
    let source = connect(&stored, &options("https://unused.example.test")).unwrap();
    assert_eq!(source.provider(), Provider::Bitbucket);
    assert_eq!(source.bot_login().await.unwrap(), "Picket");
    let feedback = source.feedback_client(&w.repo).await.unwrap();
    assert_eq!(
        feedback.find_comments(&w.repo, 7, "x").await.unwrap(),
        Vec::new()
    );
    let credential = source
        .mint_credential(&w.repo, CredentialScope::PullRequestScan)
        .await
        .unwrap();
    let worker = feedback_client(
        Provider::Bitbucket,
        &options(&w.server.api_url()),
        &credential,
    )
    .unwrap();
    worker
        .upsert_conversation_comment(&w.repo, 7, None, "hello")
        .await
        .unwrap();
    assert_eq!(w.server.comments("web", 7).len(), 1);

    let wrong = StoredConnection {
        credentials: SecretString::from("{}".to_owned()),
        ..stored
    };
    assert_eq!(
        connect(&wrong, &options("https://unused.example.test"))
            .unwrap_err()
            .code,
        ErrorCode::BadConfig
    );
    w.assert_valid();
}

#[test]
fn credentials_redact_and_rotate() {
    let mut creds = credentials("tok-123");
    let shown = format!("{creds:?}");
    assert!(
        !shown.contains("tok-123") && !shown.contains("hook-secret"),
        "{shown}"
    );
    assert!(shown.contains("acme"));
    let now = time::OffsetDateTime::now_utc();
    creds.rotate_webhook_secret(
        SecretString::from("new-secret".to_owned()),
        now,
        time::Duration::hours(1),
    );
    let secrets = creds.webhook_secrets();
    assert_eq!(secrets.current.expose_secret(), "new-secret");
    let previous = secrets.previous.unwrap();
    assert_eq!(previous.secret.expose_secret(), "hook-secret");
    assert_eq!(previous.valid_until, now + time::Duration::hours(1));
    // The stored form round-trips.
    let json = serde_json::to_string(&creds).unwrap();
    let back: BitbucketCredentials = serde_json::from_str(&json).unwrap();
    assert_eq!(back.token.expose_secret(), "tok-123");
    assert_eq!(back.workspace, "acme");
    assert_eq!(
        back.previous_webhook_secret.unwrap().expose_secret(),
        "hook-secret"
    );
}
