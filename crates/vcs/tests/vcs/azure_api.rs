//! The Azure DevOps client against the Azure DevOps test server (real HTTP on 127.0.0.1): every
//! operation, statuses, threads, the summary, replies, rate limits, retries and error mapping.
//! After each test every request the server received must match the route table of the pinned
//! `azure-devops-extension-api` (route, method, api-version, query, body) and carry the PAT
//! (`World::assert_valid`).

use crate::options;
use picket_core::Provider;
use picket_test_support::azure::{Auth, AzureServer, Fault, FaultKind, TestPullRequest};
use picket_vcs::azure::api::{Azure, AzureFeedback, CLONE_USERNAME, STATUS_GENRE};
use picket_vcs::azure::webhook::{password_hash, USERNAME};
use picket_vcs::azure::AzureCredentials;
use picket_vcs::provider::{
    CheckConclusion, CheckOutput, CheckStatus, CheckUpdate, CredentialScope, InlineComment,
    RepoLocator,
};
use picket_vcs::registry::{connect, feedback_client, StoredConnection};
use picket_vcs::{ErrorCode, FeedbackClient, SourceProvider};
use secrecy::{ExposeSecret, SecretString};
use std::time::{Duration, Instant};

const BOT: &str = "picket-bot@contoso.com";
const ALICE: &str = "alice@contoso.com";
const MARKER: &str = "<!-- picket:";

fn credentials(pat: &str) -> AzureCredentials {
    AzureCredentials {
        pat: SecretString::from(pat.to_owned()),
        webhook_password_hash: SecretString::from(password_hash("hook-password")),
        previous_webhook_password_hash: None,
        previous_valid_until: None,
        project: "Fiber".into(),
    }
}

fn sha(c: char) -> String {
    c.to_string().repeat(40)
}

/// A server with organization `fabrikam`, project `Fiber`, repository `web` (default branch
/// `main`) and active pull request #7 (head `a…`, base `b…`, merge base `c…`, changing
/// `src/app.rs` and `src/lib.rs`), and a connection through the bot's PAT.
struct World {
    server: AzureServer,
    pat: String,
    repo_id: String,
    repo: RepoLocator,
    provider: Azure,
}

impl World {
    async fn new() -> World {
        let server = AzureServer::start("fabrikam", "Fiber").await;
        let pat = server.add_pat(BOT);
        let repo_id = server.add_repo("web", Some("main"));
        server.add_pull(&repo_id, pull(7));
        let provider = Azure::new(&credentials(&pat), &options(&server.api_url())).unwrap();
        World {
            repo: RepoLocator {
                id: repo_id.clone(),
                full_name: "Fiber/web".into(),
                installation_id: None,
            },
            server,
            pat,
            repo_id,
            provider,
        }
    }

    /// A feedback client for scans of `Fiber/web`, from the minted credential.
    async fn feedback(&self) -> AzureFeedback {
        let credential = self
            .provider
            .mint_credential(&self.repo, CredentialScope::PullRequestScan)
            .await
            .unwrap();
        AzureFeedback::new(&credential, &options(&self.server.api_url())).unwrap()
    }

    fn assert_valid(&self) {
        let violations = self.server.violations();
        assert!(
            violations.is_empty(),
            "route table violations: {violations:#?}"
        );
        for r in self.server.requests() {
            assert_eq!(
                r.auth,
                Auth::Pat { user: BOT.into() },
                "{} {} did not carry the PAT",
                r.method,
                r.path
            );
        }
    }

    fn requests_to(&self, needle: &str) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path.contains(needle))
            .count()
    }
}

fn pull(id: u64) -> TestPullRequest {
    TestPullRequest {
        id,
        title: format!("Change {id}"),
        source_branch: format!("feature/{id}"),
        target_branch: "main".into(),
        head: sha('a'),
        base: sha('b'),
        merge_base: sha('c'),
        changed_paths: vec!["src/app.rs".into(), "src/lib.rs".into()],
        draft: false,
        from_fork: false,
        author: ALICE.into(),
    }
}

fn comment(path: &str, line: u32, body: &str) -> InlineComment {
    InlineComment {
        path: path.into(),
        line,
        body: body.into(),
    }
}

#[tokio::test]
async fn check_names_the_tokens_owner_and_bot_login_is_asked_once() {
    let w = World::new().await;
    let check = w.provider.check().await.unwrap();
    assert_eq!(check.identity, BOT);
    assert!(check.missing_permissions.is_empty());
    assert!(check.installations.is_empty());
    assert_eq!(w.provider.bot_login().await.unwrap(), BOT);
    let fresh = Azure::new(&credentials(&w.pat), &options(&w.server.api_url())).unwrap();
    assert_eq!(fresh.bot_login().await.unwrap(), BOT);
    assert_eq!(fresh.bot_login().await.unwrap(), BOT);
    assert_eq!(fresh.api_calls(), 1);
    assert_eq!(w.provider.provider(), Provider::AzureDevops);
    assert_eq!(w.provider.organization(), "fabrikam");
    w.assert_valid();
}

#[tokio::test]
async fn repositories_are_listed_a_page_at_a_time() {
    let w = World::new().await;
    let empty = w.server.add_repo("empty", None);
    let old = w.server.add_repo("old", Some("trunk"));
    w.server.set_repo_disabled(&old, true);

    let first = w.provider.list_repositories(None, 2).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.next.as_deref(), Some("az1.2"));
    let second = w
        .provider
        .list_repositories(first.next.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.next, None);

    let before = w.provider.api_calls();
    let all = w.provider.all_repositories().await.unwrap();
    assert_eq!(w.provider.api_calls(), before + 1);
    assert_eq!(all.len(), 3);
    let by_id = |id: &str| all.iter().find(|r| r.id == id).unwrap().clone();
    let web = by_id(&w.repo_id);
    assert_eq!(web.full_name, "Fiber/web");
    assert_eq!(web.default_branch, "main");
    assert!(web.private);
    assert!(!web.archived);
    assert!(
        web.clone_url.ends_with("/fabrikam/Fiber/_git/web"),
        "{}",
        web.clone_url
    );
    assert_eq!(by_id(&empty).default_branch, "main");
    assert!(by_id(&old).archived);
    assert_eq!(by_id(&old).default_branch, "trunk");

    assert_eq!(w.provider.repository(&w.repo).await.unwrap(), web);

    // A cursor Azure's client did not make is refused before anything is sent.
    let sent = w.server.requests().len();
    let e = w
        .provider
        .list_repositories(Some("gl1.2"), 2)
        .await
        .unwrap_err();
    assert_eq!((e.code, e.status), (ErrorCode::Rejected, None));
    assert_eq!(w.server.requests().len(), sent);

    // Another project's repository, or one that is gone.
    let gone = RepoLocator {
        id: "00000000-0000-0000-0000-000000000000".into(),
        ..w.repo.clone()
    };
    assert_eq!(
        w.provider.repository(&gone).await.unwrap_err().code,
        ErrorCode::NotFound
    );
    w.assert_valid();
}

#[tokio::test]
async fn the_clone_credential_is_the_pat() {
    let w = World::new().await;
    let credential = w
        .provider
        .mint_credential(&w.repo, CredentialScope::Clone)
        .await
        .unwrap();
    assert_eq!(credential.username, CLONE_USERNAME);
    assert_eq!(credential.secret.expose_secret(), w.pat);
    assert_eq!(credential.expires_at, None);
    assert!(!format!("{credential:?}").contains(&w.pat));
    assert!(!format!("{:?}", credentials(&w.pat)).contains(&w.pat));
    // Not a repository GUID: refused before anything is sent.
    let bad = RepoLocator {
        id: "42".into(),
        ..w.repo.clone()
    };
    assert_eq!(
        w.provider
            .mint_credential(&bad, CredentialScope::Clone)
            .await
            .unwrap_err()
            .code,
        ErrorCode::BadConfig
    );
    assert!(w.server.requests().is_empty());
}

#[tokio::test]
async fn merge_bases_come_from_the_branch_tip_or_the_last_iteration() {
    let w = World::new().await;
    w.server.set_ref(&w.repo_id, "refs/heads/main", &sha('b'));
    w.server
        .set_ref(&w.repo_id, "refs/heads/main-old", &sha('9'));
    w.server
        .set_merge_base(&w.repo_id, &sha('b'), &sha('a'), &sha('c'));
    assert_eq!(
        w.provider
            .merge_base(&w.repo, "main", &sha('a'))
            .await
            .unwrap(),
        sha('c')
    );
    assert_eq!(
        w.provider
            .merge_base(&w.repo, "refs/heads/main", &sha('a'))
            .await
            .unwrap(),
        sha('c')
    );
    // A commit needs no lookup.
    let refs_before = w.requests_to("/refs");
    assert_eq!(
        w.provider
            .merge_base(&w.repo, &sha('b'), &sha('a'))
            .await
            .unwrap(),
        sha('c')
    );
    assert_eq!(w.requests_to("/refs"), refs_before);
    assert_eq!(
        w.provider
            .merge_base(&w.repo, "nope", &sha('a'))
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    assert_eq!(
        w.provider
            .merge_base(&w.repo, "main", &sha('d'))
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );

    assert_eq!(
        w.provider.iteration_merge_base(&w.repo, 7).await.unwrap(),
        sha('c')
    );
    w.server.push_iteration(
        &w.repo_id,
        7,
        &sha('d'),
        &sha('b'),
        &sha('e'),
        &["src/app.rs"],
    );
    assert_eq!(
        w.provider.iteration_merge_base(&w.repo, 7).await.unwrap(),
        sha('e')
    );
    w.assert_valid();
}

#[tokio::test]
async fn pull_requests_are_read_and_open_ones_paged() {
    let w = World::new().await;
    let pr = w.provider.pull_request(&w.repo, 7).await.unwrap();
    assert_eq!(pr.number, 7);
    assert!(pr.open);
    assert!(!pr.draft);
    assert_eq!(pr.head_sha, sha('a'));
    assert_eq!(pr.base_sha, sha('b'));
    assert_eq!(pr.head_ref, "feature/7");
    assert_eq!(pr.base_ref, "main");
    assert!(!pr.from_fork);
    assert_eq!(pr.title, "Change 7");
    assert_eq!(pr.author.as_deref(), Some(ALICE));
    assert_eq!(pr.updated_at, None);

    for id in 8..=108 {
        let mut p = pull(id);
        p.draft = id == 8;
        p.from_fork = id == 9;
        if id == 10 {
            p.head = String::new();
        }
        w.server.add_pull(&w.repo_id, p);
    }
    w.server.set_pull_status(&w.repo_id, 11, "abandoned");
    w.server.set_pull_status(&w.repo_id, 12, "completed");
    assert!(!w.provider.pull_request(&w.repo, 12).await.unwrap().open);
    let computing = w.provider.pull_request(&w.repo, 10).await.unwrap();
    assert_eq!(computing.head_sha, "");

    let first = w.provider.open_pull_requests(&w.repo, None).await.unwrap();
    assert_eq!(first.items.len(), 100);
    assert_eq!(first.next.as_deref(), Some("az1.100"));
    let second = w
        .provider
        .open_pull_requests(&w.repo, first.next.as_deref())
        .await
        .unwrap();
    assert_eq!(second.next, None);
    let mut numbers: Vec<u64> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|p| p.number)
        .collect();
    numbers.sort();
    let expected: Vec<u64> = (7..=108).filter(|n| *n != 11 && *n != 12).collect();
    assert_eq!(numbers, expected);
    let all: Vec<_> = first.items.iter().chain(&second.items).collect();
    assert!(all.iter().find(|p| p.number == 8).unwrap().draft);
    assert!(all.iter().find(|p| p.number == 9).unwrap().from_fork);

    assert_eq!(
        w.provider
            .pull_request(&w.repo, 999)
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    w.assert_valid();
}

#[tokio::test]
async fn write_access_is_a_recent_push() {
    let w = World::new().await;
    let day = Duration::from_secs(86_400);
    w.server.add_push(&w.repo_id, ALICE, day * 10);
    w.server.add_push(&w.repo_id, "bob@contoso.com", day * 200);
    for _ in 0..150 {
        w.server.add_push(&w.repo_id, "carol@contoso.com", day);
    }
    w.server.add_push(&w.repo_id, "dave@contoso.com", day * 20);
    assert!(w.provider.has_write_access(&w.repo, ALICE).await.unwrap());
    assert!(w
        .provider
        .has_write_access(&w.repo, "ALICE@contoso.com")
        .await
        .unwrap());
    assert!(w
        .provider
        .has_write_access(&w.repo, "carol@contoso.com")
        .await
        .unwrap());
    // Found on the second page.
    assert!(w
        .provider
        .has_write_access(&w.repo, "dave@contoso.com")
        .await
        .unwrap());
    // Pushed, but too long ago; never pushed; no name at all.
    assert!(!w
        .provider
        .has_write_access(&w.repo, "bob@contoso.com")
        .await
        .unwrap());
    assert!(!w
        .provider
        .has_write_access(&w.repo, "mallory@contoso.com")
        .await
        .unwrap());
    let sent = w.server.requests().len();
    assert!(!w.provider.has_write_access(&w.repo, " ").await.unwrap());
    assert_eq!(w.server.requests().len(), sent);
    w.assert_valid();
}

#[tokio::test]
async fn checks_are_pull_request_statuses() {
    let w = World::new().await;
    let feedback = w.feedback().await;
    let queued = CheckUpdate {
        status: CheckStatus::Queued,
        conclusion: None,
        output: None,
        details_url: Some("https://picket.example/scans/1".into()),
    };
    let id = feedback
        .create_check(&w.repo, 7, "Picket", &sha('a'), &queued)
        .await
        .unwrap();
    // The status names the iteration of its head.
    assert_eq!(id, "7/1:Picket");
    let done = CheckUpdate {
        status: CheckStatus::Completed,
        conclusion: Some(CheckConclusion::Failure),
        output: Some(CheckOutput {
            title: "2 new findings block this change".into(),
            summary: "…".into(),
            text: None,
            annotations: Vec::new(),
        }),
        details_url: None,
    };
    feedback.update_check(&w.repo, &id, &done).await.unwrap();
    let neutral = CheckUpdate {
        conclusion: Some(CheckConclusion::Neutral),
        output: None,
        ..done.clone()
    };
    feedback.update_check(&w.repo, &id, &neutral).await.unwrap();
    let statuses = w.server.pull_request_statuses(&w.repo_id, 7);
    let states: Vec<(&str, Option<u64>)> = statuses
        .iter()
        .map(|s| (s.state.as_str(), s.iteration))
        .collect();
    assert_eq!(
        states,
        [
            ("pending", Some(1)),
            ("failed", Some(1)),
            ("notApplicable", Some(1))
        ]
    );
    assert!(statuses.iter().all(|s| s.name == "Picket"
        && s.genre.as_deref() == Some(STATUS_GENRE)
        && s.author == BOT));
    assert_eq!(
        statuses[0].target_url.as_deref(),
        Some("https://picket.example/scans/1")
    );
    assert_eq!(
        statuses[1].description.as_deref(),
        Some("2 new findings block this change")
    );
    assert_eq!(
        feedback
            .update_check(&w.repo, "not-a-check", &done)
            .await
            .unwrap_err()
            .code,
        ErrorCode::BadConfig
    );
    w.assert_valid();
}

/// A push makes iteration 2: its status names it, and a late status of the superseded push
/// stays with iteration 1 (its source commit), never on the new one. A head Azure has no
/// iteration of yet gets a status on the whole pull request, as do ids kept in the older form.
#[tokio::test]
async fn a_status_stays_with_the_iteration_of_its_push() {
    let w = World::new().await;
    let feedback = w.feedback().await;
    let update = |status, conclusion| CheckUpdate {
        status,
        conclusion,
        output: None,
        details_url: None,
    };
    let first = feedback
        .create_check(
            &w.repo,
            7,
            "Picket",
            &sha('a'),
            &update(CheckStatus::Queued, None),
        )
        .await
        .unwrap();
    w.server.push_iteration(
        &w.repo_id,
        7,
        &sha('d'),
        &sha('b'),
        &sha('c'),
        &["src/app.rs"],
    );
    let second = feedback
        .create_check(
            &w.repo,
            7,
            "Picket",
            &sha('d'),
            &update(CheckStatus::Queued, None),
        )
        .await
        .unwrap();
    assert_eq!(
        (first.as_str(), second.as_str()),
        ("7/1:Picket", "7/2:Picket")
    );
    let success = update(CheckStatus::Completed, Some(CheckConclusion::Success));
    feedback
        .update_check(&w.repo, &second, &success)
        .await
        .unwrap();
    let superseded = update(CheckStatus::Completed, Some(CheckConclusion::Neutral));
    feedback
        .update_check(&w.repo, &first, &superseded)
        .await
        .unwrap();
    let unknown = feedback
        .create_check(
            &w.repo,
            7,
            "Picket",
            &sha('e'),
            &update(CheckStatus::Queued, None),
        )
        .await
        .unwrap();
    assert_eq!(unknown, "7:Picket");
    feedback
        .update_check(&w.repo, "7:Picket", &success)
        .await
        .unwrap();
    let seen: Vec<(String, Option<u64>, String)> = w
        .server
        .pull_request_statuses(&w.repo_id, 7)
        .into_iter()
        .map(|s| (s.state, s.iteration, s.commit))
        .collect();
    let own = |state: &str, iteration, commit| (state.to_owned(), iteration, commit);
    assert_eq!(
        seen,
        [
            own("pending", Some(1), sha('a')),
            own("pending", Some(2), sha('d')),
            own("succeeded", Some(2), sha('d')),
            own("notApplicable", Some(1), sha('a')),
            own("pending", None, sha('d')),
            own("succeeded", None, sha('d')),
        ]
    );
    for bad in ["7/0:Picket", "7/x:Picket", "7/1:", "0:Picket"] {
        assert_eq!(
            feedback
                .update_check(&w.repo, bad, &success)
                .await
                .unwrap_err()
                .code,
            ErrorCode::BadConfig,
            "{bad}"
        );
    }
    w.assert_valid();
}

#[tokio::test]
async fn inline_comments_are_threads_on_right_hand_lines_of_the_heads_iteration() {
    let w = World::new().await;
    let feedback = w.feedback().await;
    // A later push: the scan is of iteration 1's head still.
    w.server.push_iteration(
        &w.repo_id,
        7,
        &sha('d'),
        &sha('b'),
        &sha('c'),
        &["src/app.rs", "src/lib.rs", "src/new.rs"],
    );
    w.server.refuse_inline(&w.repo_id, "src/lib.rs");
    let posted = feedback
        .post_inline_comments(
            &w.repo,
            7,
            &sha('a'),
            &[
                comment("src/app.rs", 3, "<!-- picket:finding:f1 --> one"),
                comment("src/lib.rs", 5, "<!-- picket:finding:f2 --> refused"),
                comment("README.md", 1, "<!-- picket:finding:f3 --> not changed"),
                comment("src/app.rs", 9, "<!-- picket:finding:f4 --> two"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(posted.len(), 2);
    let threads = w.server.threads(&w.repo_id, 7);
    assert_eq!(threads.len(), 2);
    for (p, t) in posted.iter().zip(&threads) {
        assert_eq!(p.id, t.id.to_string());
        assert_eq!(p.thread_id.as_deref(), Some(t.id.to_string().as_str()));
        assert_eq!(p.author, BOT);
        assert_eq!(p.path.as_deref(), Some("src/app.rs"));
        assert!(!p.resolved);
        assert_eq!(t.status, "active");
        assert_eq!(t.file_path.as_deref(), Some("/src/app.rs"));
        let context = t.pull_request_context.as_ref().unwrap();
        assert_eq!(context["iterationContext"]["secondComparingIteration"], 1);
        assert_eq!(context["changeTrackingId"], 1);
    }
    assert_eq!(posted[0].line, Some(3));
    assert_eq!(threads[1].line, Some(9));

    // The new head's iteration anchors its comments there.
    let on_new = feedback
        .post_inline_comments(&w.repo, 7, &sha('d'), &[comment("src/new.rs", 2, "x")])
        .await
        .unwrap();
    assert_eq!(on_new.len(), 1);
    let t = w.server.threads(&w.repo_id, 7).pop().unwrap();
    let context = t.pull_request_context.unwrap();
    assert_eq!(context["iterationContext"]["secondComparingIteration"], 2);
    assert_eq!(context["changeTrackingId"], 3);

    // No iteration of that commit (yet).
    let e = feedback
        .post_inline_comments(&w.repo, 7, &sha('9'), &[comment("src/app.rs", 1, "x")])
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
    // Nothing to post: nothing sent.
    let sent = w.server.requests().len();
    assert!(feedback
        .post_inline_comments(&w.repo, 7, &sha('9'), &[])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(w.server.requests().len(), sent);
    w.assert_valid();
}

#[tokio::test]
async fn comments_are_found_by_marker_and_threads_resolved_as_fixed() {
    let w = World::new().await;
    let feedback = w.feedback().await;
    let posted = feedback
        .post_inline_comments(
            &w.repo,
            7,
            &sha('a'),
            &[
                comment("src/app.rs", 3, "<!-- picket:finding:f1 --> one"),
                comment("src/lib.rs", 4, "<!-- picket:finding:f2 --> two"),
            ],
        )
        .await
        .unwrap();
    let summary = feedback
        .upsert_conversation_comment(&w.repo, 7, None, "<!-- picket:summary --> all")
        .await
        .unwrap();
    // Someone else's comments, a system comment and a deleted one.
    let theirs = w.server.add_thread(
        &w.repo_id,
        7,
        ALICE,
        "<!-- picket:finding:f9 --> fake",
        None,
        "active",
    );
    let first = posted[0].thread_id.clone().unwrap();
    let first_thread: u64 = first.parse().unwrap();
    w.server.add_comment(
        &w.repo_id,
        7,
        first_thread,
        "system@contoso.com",
        "<!-- picket: system",
        true,
    );
    let deleted = w.server.add_comment(
        &w.repo_id,
        7,
        first_thread,
        ALICE,
        "<!-- picket: deleted",
        false,
    );
    w.server
        .delete_comment(&w.repo_id, 7, first_thread, deleted);

    let found = feedback.find_comments(&w.repo, 7, MARKER).await.unwrap();
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_eq!(found[0], posted[0]);
    assert_eq!(found[1], posted[1]);
    assert_eq!(found[2].id, summary.id);
    assert_eq!(found[2].thread_id, None);
    assert_eq!(found[2].path, None);
    assert!(found[2].resolved, "the summary thread is closed");
    assert_eq!(found[3].id, theirs.to_string());
    assert_eq!(found[3].author, ALICE);

    feedback.resolve_thread(&w.repo, 7, &first).await.unwrap();
    w.server.set_thread_status(
        &w.repo_id,
        7,
        posted[1].thread_id.as_ref().unwrap().parse().unwrap(),
        "wontFix",
    );
    let found = feedback
        .find_comments(&w.repo, 7, "finding:f")
        .await
        .unwrap();
    assert!(found[0].resolved && found[1].resolved && !found[2].resolved);
    let threads = w.server.threads(&w.repo_id, 7);
    assert_eq!(threads[0].status, "fixed");
    assert_eq!(
        feedback
            .resolve_thread(&w.repo, 7, "999999")
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    w.assert_valid();
}

#[tokio::test]
async fn the_summary_is_a_closed_thread_edited_in_place() {
    let w = World::new().await;
    let feedback = w.feedback().await;
    let created = feedback
        .upsert_conversation_comment(&w.repo, 7, None, "<!-- picket:summary --> v1")
        .await
        .unwrap();
    let threads = w.server.threads(&w.repo_id, 7);
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0].status, "closed");
    assert_eq!(threads[0].file_path, None);
    assert_eq!(created.id, threads[0].id.to_string());
    assert_eq!(created.author, BOT);

    let edited = feedback
        .upsert_conversation_comment(&w.repo, 7, Some(&created.id), "<!-- picket:summary --> v2")
        .await
        .unwrap();
    assert_eq!(edited.id, created.id);
    assert_eq!(edited.body, "<!-- picket:summary --> v2");
    let threads = w.server.threads(&w.repo_id, 7);
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0].comments.len(), 1);
    assert_eq!(threads[0].comments[0].content, "<!-- picket:summary --> v2");

    // A summary someone deleted: a new one.
    w.server.delete_comment(&w.repo_id, 7, threads[0].id, 1);
    let again = feedback
        .upsert_conversation_comment(&w.repo, 7, Some(&created.id), "<!-- picket:summary --> v3")
        .await
        .unwrap();
    assert_ne!(again.id, created.id);
    assert_eq!(w.server.threads(&w.repo_id, 7).len(), 2);
    w.assert_valid();
}

#[tokio::test]
async fn replies_go_into_the_thread_and_review_comments_are_read_back() {
    let w = World::new().await;
    let feedback = w.feedback().await;
    let posted = feedback
        .post_inline_comments(
            &w.repo,
            7,
            &sha('a'),
            &[comment("src/app.rs", 3, "<!-- picket:finding:f1 --> one")],
        )
        .await
        .unwrap();
    let thread = posted[0].thread_id.clone().unwrap();
    let t: u64 = thread.parse().unwrap();
    // Alice answers in the thread (the reply event's comment id is `<thread>/<comment>`, its
    // `in_reply_to` the thread).
    let hers = w.server.add_comment(
        &w.repo_id,
        7,
        t,
        ALICE,
        "/picket ignore false positive",
        false,
    );
    let parent = feedback
        .review_comment(&w.repo, 7, &thread)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parent.author, BOT);
    assert_eq!(parent.body, "<!-- picket:finding:f1 --> one");
    assert_eq!(parent.thread_id, None);
    assert!(!parent.resolved);
    let reply = feedback
        .review_comment(&w.repo, 7, &format!("{t}/{hers}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.author, ALICE);
    assert_eq!(reply.id, format!("{t}/{hers}"));

    let answer = feedback
        .reply(&w.repo, 7, &thread, "<!-- picket:reply --> Ignored.")
        .await
        .unwrap();
    assert_eq!(answer.id, format!("{t}/3"));
    assert_eq!(answer.author, BOT);
    let threads = w.server.threads(&w.repo_id, 7);
    let last = threads[0].comments.last().unwrap();
    assert_eq!(last.parent_comment_id, 1);
    assert_eq!(last.content, "<!-- picket:reply --> Ignored.");
    // Found again by its marker, as a retried answer looks for it.
    let found = feedback
        .find_comments(&w.repo, 7, "picket:reply")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, answer.id);

    // Gone, deleted, or on another pull request: None.
    assert_eq!(
        feedback.review_comment(&w.repo, 7, "999999").await.unwrap(),
        None
    );
    assert_eq!(
        feedback
            .review_comment(&w.repo, 7, &format!("{t}/99"))
            .await
            .unwrap(),
        None
    );
    w.server.add_pull(&w.repo_id, pull(8));
    assert_eq!(
        feedback.review_comment(&w.repo, 8, &thread).await.unwrap(),
        None
    );
    w.server.delete_comment(&w.repo_id, 7, t, 1);
    assert_eq!(
        feedback.review_comment(&w.repo, 7, &thread).await.unwrap(),
        None
    );
    assert_eq!(
        feedback
            .review_comment(&w.repo, 7, "not/an/id")
            .await
            .unwrap_err()
            .code,
        ErrorCode::BadConfig
    );
    w.assert_valid();
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_server_errors_retried() {
    let w = World::new().await;
    w.server.inject(Fault {
        path_contains: "/pullRequests/7".into(),
        kind: FaultKind::TooManyRequests {
            retry_after_secs: 1,
        },
        times: 1,
    });
    let started = Instant::now();
    let pr = w.provider.pull_request(&w.repo, 7).await.unwrap();
    assert_eq!(pr.number, 7);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(w.requests_to("/pullRequests/7"), 2);
    assert_eq!(w.provider.api_calls(), 2);

    w.server.inject(Fault {
        path_contains: "/pullRequests/7".into(),
        kind: FaultKind::ServerError { status: 503 },
        times: 2,
    });
    w.provider.pull_request(&w.repo, 7).await.unwrap();
    w.server.inject(Fault {
        path_contains: "/pullRequests/7".into(),
        kind: FaultKind::ServerError { status: 503 },
        times: 3,
    });
    let e = w.provider.pull_request(&w.repo, 7).await.unwrap_err();
    assert_eq!((e.code, e.status), (ErrorCode::Unavailable, Some(503)));

    // A limit longer than the budget fails at once, saying how long to wait.
    w.server.inject(Fault {
        path_contains: "/pullRequests/7".into(),
        kind: FaultKind::TooManyRequests {
            retry_after_secs: 60,
        },
        times: 1,
    });
    let e = w.provider.pull_request(&w.repo, 7).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(60)));
    w.assert_valid();
}

#[tokio::test]
async fn a_refused_token_is_unauthorized() {
    let w = World::new().await;
    w.server.revoke_pat(&w.pat);
    let e = w.provider.check().await.unwrap_err();
    assert_eq!((e.code, e.status), (ErrorCode::Unauthorized, Some(401)));
    assert!(!e.message.contains(&w.pat));
    let feedback = w.feedback().await;
    let e = feedback
        .find_comments(&w.repo, 7, MARKER)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unauthorized);

    // Azure's sign-in page (203) is a refusal too, not an answer.
    let w = World::new().await;
    w.server.inject(Fault {
        path_contains: "/pullRequests".into(),
        kind: FaultKind::SignInPage,
        times: 1,
    });
    let e = w.provider.pull_request(&w.repo, 7).await.unwrap_err();
    assert_eq!((e.code, e.status), (ErrorCode::Unauthorized, Some(203)));
    w.assert_valid();
}

#[tokio::test]
async fn subscriptions_are_created_once_and_replaced_with_a_new_password() {
    let w = World::new().await;
    let other = w.server.add_repo("api", Some("main"));
    let other = RepoLocator {
        id: other,
        full_name: "Fiber/api".into(),
        installation_id: None,
    };
    let url = "https://picket.example/webhooks/azure/1";
    let ids = w
        .provider
        .ensure_subscriptions(
            url,
            &SecretString::from("first".to_owned()),
            &[w.repo.clone(), other.clone()],
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 6);
    let subs = w.server.subscriptions();
    assert_eq!(subs.len(), 6);
    let events: Vec<(&str, &str)> = subs[..3]
        .iter()
        .map(|s| (s.event_type.as_str(), s.resource_version.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            ("git.pullrequest.created", "1.0"),
            ("git.pullrequest.updated", "1.0"),
            ("ms.vss-code.git-pullrequest-comment-event", "2.0"),
        ]
    );
    for s in &subs[..3] {
        assert_eq!(s.publisher_inputs["projectId"], w.server.project_id());
        assert_eq!(s.publisher_inputs["repository"], w.repo_id);
        assert_eq!(s.consumer_inputs["url"], url);
        assert_eq!(s.consumer_inputs["basicAuthUsername"], USERNAME);
        assert_eq!(s.consumer_inputs["basicAuthPassword"], "first");
        assert_eq!(s.consumer_inputs["resourceDetailsToSend"], "all");
    }
    assert_eq!(subs[3].publisher_inputs["repository"], other.id);

    // A rotation: the same subscriptions, replaced with the new password.
    let again = w
        .provider
        .ensure_subscriptions(
            url,
            &SecretString::from("second".to_owned()),
            std::slice::from_ref(&w.repo),
        )
        .await
        .unwrap();
    assert_eq!(again, ids[..3]);
    let subs = w.server.subscriptions();
    assert_eq!(subs.len(), 6);
    assert!(subs[..3]
        .iter()
        .all(|s| s.replaced == 1 && s.consumer_inputs["basicAuthPassword"] == "second"));
    assert!(subs[3..].iter().all(|s| s.replaced == 0));

    let stranger = RepoLocator {
        id: "00000000-0000-0000-0000-000000000001".into(),
        full_name: "Fiber/stranger".into(),
        installation_id: None,
    };
    assert_eq!(
        w.provider
            .ensure_subscriptions(url, &SecretString::from("x".to_owned()), &[stranger])
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    w.assert_valid();
}

#[tokio::test]
async fn the_registry_builds_azure_connections_from_their_stored_credentials() {
    let w = World::new().await;
    let stored = |base_url: &str| StoredConnection {
        provider: Provider::AzureDevops,
        base_url: base_url.into(),
        credentials: SecretString::from(serde_json::to_string(&credentials(&w.pat)).unwrap()),
        version: vec![1],
    };
    let source = connect(&stored(&w.server.api_url()), &options("")).unwrap();
    assert_eq!(source.provider(), Provider::AzureDevops);
    assert_eq!(source.bot_login().await.unwrap(), BOT);
    let e = connect(&stored(""), &options("")).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadConfig);
    assert_eq!(picket_vcs::registry::api_url(Provider::AzureDevops, ""), "");

    let credential = source
        .mint_credential(&w.repo, CredentialScope::PullRequestScan)
        .await
        .unwrap();
    let feedback = feedback_client(
        Provider::AzureDevops,
        &options(&w.server.api_url()),
        &credential,
    )
    .unwrap();
    assert!(feedback
        .find_comments(&w.repo, 7, MARKER)
        .await
        .unwrap()
        .is_empty());
    let via_source = source.feedback_client(&w.repo).await.unwrap();
    assert!(via_source
        .find_comments(&w.repo, 7, MARKER)
        .await
        .unwrap()
        .is_empty());
    w.assert_valid();
}

#[test]
fn credentials_rotate_their_webhook_password_hash() {
    let mut creds = credentials("pat-value");
    let now = time::OffsetDateTime::now_utc();
    let secrets = creds.webhook_secrets();
    assert_eq!(
        secrets.current.expose_secret(),
        password_hash("hook-password")
    );
    assert!(secrets.previous.is_none());
    creds.rotate_webhook_password(
        SecretString::from(password_hash("new-password")),
        now,
        time::Duration::hours(1),
    );
    let secrets = creds.webhook_secrets();
    assert_eq!(
        secrets.current.expose_secret(),
        password_hash("new-password")
    );
    let previous = secrets.previous.clone().unwrap();
    assert_eq!(
        previous.secret.expose_secret(),
        password_hash("hook-password")
    );
    assert_eq!(previous.valid_until, now + time::Duration::hours(1));
    assert_eq!(secrets.accepted_at(now).count(), 2);
    assert_eq!(
        secrets.accepted_at(now + time::Duration::hours(2)).count(),
        1
    );
    // Stored and read back.
    let json = serde_json::to_string(&creds).unwrap();
    let back: AzureCredentials = serde_json::from_str(&json).unwrap();
    assert_eq!(back.pat.expose_secret(), "pat-value");
    assert_eq!(back.project, "Fiber");
    assert!(back.previous_webhook_password_hash.is_some());
    assert_eq!(back.previous_valid_until, creds.previous_valid_until);
    let debug = format!("{creds:?}");
    assert!(!debug.contains("pat-value") && !debug.contains(&password_hash("new-password")));
}
