//! The GitHub App client against the GitHub test server (real HTTP on 127.0.0.1): every
//! operation, rate limits, retries, error mapping, a GitHub Enterprise Server style root with a
//! path prefix, and TLS with an extra CA. After each test every request the server received must
//! be valid against GitHub's OpenAPI description (`server.violations()` empty).

use crate::options;
use picket_test_support::github::{Auth, Fault, FaultKind, GitHubServer, TestApp, TestPull};
use picket_test_support::TestCa;
use picket_vcs::github::api::{GitHubApp, GitHubFeedback};
use picket_vcs::github::AppCredentials;
use picket_vcs::provider::{
    Annotation, AnnotationLevel, CheckConclusion, CheckOutput, CheckStatus, CheckUpdate,
    CredentialScope, InlineComment, RepoLocator,
};
use picket_vcs::{ErrorCode, FeedbackClient, SourceProvider};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn credentials(app: &TestApp) -> AppCredentials {
    AppCredentials {
        app_id: app.id,
        private_key: SecretString::from(app.private_key_pem.clone()),
        webhook_secret: SecretString::from(app.webhook_secret.clone()),
        previous_webhook_secret: None,
        previous_valid_until: None,
    }
}

fn perms(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn scan_permissions() -> BTreeMap<String, String> {
    perms(&[
        ("contents", "read"),
        ("pull_requests", "write"),
        ("metadata", "read"),
    ])
}

/// A server with one App, one installation and one repository `acme/app` with PR #7.
struct World {
    server: GitHubServer,
    app: TestApp,
    installation: u64,
    repo_id: u64,
    repo: RepoLocator,
    provider: GitHubApp,
}

impl World {
    async fn new() -> World {
        let server = GitHubServer::start().await;
        let app = server.add_app("picket-test");
        let installation = server.add_installation(app.id, "acme");
        let repo_id = server.add_repo(
            installation,
            "acme/app",
            "main",
            "http://127.0.0.1:1/acme/app.git",
        );
        server.add_pull(
            repo_id,
            TestPull {
                number: 7,
                head_sha: "a".repeat(40),
                head_ref: "feature/x".into(),
                base_ref: "main".into(),
                base_sha: "b".repeat(40),
                merge_base: "c".repeat(40),
                draft: false,
                from_fork: false,
                title: "Add x".into(),
                author: "alice".into(),
            },
        );
        let provider = GitHubApp::new(&credentials(&app), &options(&server.api_url())).unwrap();
        World {
            repo: RepoLocator {
                id: repo_id.to_string(),
                full_name: "acme/app".into(),
                installation_id: Some(installation.to_string()),
            },
            server,
            app,
            installation,
            repo_id,
            provider,
        }
    }

    /// A feedback client for PR scans of `acme/app`, from a freshly minted credential.
    async fn feedback(&self) -> GitHubFeedback {
        let credential = self
            .provider
            .mint_credential(&self.repo, CredentialScope::PullRequestScan)
            .await
            .unwrap();
        GitHubFeedback::new(&credential, &options(&self.server.api_url())).unwrap()
    }

    fn assert_valid(&self) {
        let violations = self.server.violations();
        assert!(violations.is_empty(), "OpenAPI violations: {violations:#?}");
        for r in self.server.requests() {
            assert_ne!(
                r.auth,
                Auth::None,
                "{} {} sent no credential",
                r.method,
                r.path
            );
            assert_ne!(
                r.auth,
                Auth::Invalid,
                "{} {} sent a refused credential",
                r.method,
                r.path
            );
        }
    }

    fn requests_to(
        &self,
        path_contains: &str,
    ) -> Vec<picket_test_support::github::RecordedRequest> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path.contains(path_contains))
            .collect()
    }
}

#[tokio::test]
async fn check_reports_identity_installations_and_what_is_missing() {
    let w = World::new().await;
    let other = w.server.add_installation(w.app.id, "globex");
    w.server.suspend_installation(other, true);

    let check = w.provider.check().await.unwrap();
    assert_eq!(check.identity, "picket-test");
    // The bot login, asked once and kept.
    assert_eq!(w.provider.bot_login().await.unwrap(), "picket-test[bot]");
    let calls = w.provider.api_calls();
    assert_eq!(w.provider.bot_login().await.unwrap(), "picket-test[bot]");
    assert_eq!(w.provider.api_calls(), calls);
    assert!(check.missing_permissions.is_empty(), "{check:?}");
    assert!(check.missing_events.is_empty(), "{check:?}");
    let accounts: Vec<_> = check
        .installations
        .iter()
        .map(|i| (i.id.clone(), i.account.clone(), i.suspended))
        .collect();
    assert_eq!(
        accounts,
        vec![
            (w.installation.to_string(), "acme".to_string(), false),
            (other.to_string(), "globex".to_string(), true),
        ]
    );

    w.server.set_app_permissions(
        w.app.id,
        &[
            ("metadata", "read"),
            ("contents", "read"),
            ("pull_requests", "read"),
        ],
        &["pull_request", "push"],
    );
    let check = w.provider.check().await.unwrap();
    assert_eq!(
        check.missing_permissions,
        ["pull_requests: write", "checks: write"]
    );
    assert_eq!(
        check.missing_events,
        ["issue_comment", "pull_request_review_comment"]
    );

    // Only the App's JWT was used, and only on /app operations.
    for r in w.server.requests() {
        assert!(r.path.starts_with("/app"), "{}", r.path);
        assert_eq!(r.auth, Auth::Jwt { app_id: w.app.id });
    }
    assert_eq!(w.provider.api_calls(), w.server.requests().len() as u64);
    w.assert_valid();
}

#[tokio::test]
async fn repositories_are_listed_page_by_page_across_installations() {
    let w = World::new().await;
    let second = w.server.add_installation(w.app.id, "globex");
    let suspended = w.server.add_installation(w.app.id, "initech");
    w.server.suspend_installation(suspended, true);
    let mut expected = vec![(w.repo_id.to_string(), w.installation.to_string())];
    for name in ["acme/b", "acme/c"] {
        let id = w
            .server
            .add_repo(w.installation, name, "main", "http://x/y.git");
        expected.push((id.to_string(), w.installation.to_string()));
    }
    for name in ["globex/d", "globex/e"] {
        let id = w.server.add_repo(second, name, "trunk", "http://x/z.git");
        expected.push((id.to_string(), second.to_string()));
    }
    w.server
        .add_repo(suspended, "initech/hidden", "main", "http://x/h.git");

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = w
            .provider
            .list_repositories(cursor.as_deref(), 2)
            .await
            .unwrap();
        pages.push(page.items.len());
        for r in &page.items {
            seen.push((r.id.clone(), r.installation_id.clone().unwrap()));
            assert!(r.private);
            assert!(!r.default_branch.is_empty());
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages.len() < 10, "the listing does not end");
    }
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(pages, [2, 1, 2]);

    // One installation-wide token per (active) installation, reused across pages.
    let minted = w.server.minted_tokens();
    assert_eq!(minted.len(), 2, "{minted:?}");
    assert!(minted.iter().all(|t| t.repository_ids.is_none()));
    for r in w.requests_to("/installation/repositories") {
        assert!(
            matches!(r.auth, Auth::InstallationToken { .. }),
            "{:?}",
            r.auth
        );
    }

    let bad = w
        .provider
        .list_repositories(Some("garbage"), 2)
        .await
        .unwrap_err();
    assert_eq!(bad.code, ErrorCode::Rejected);
    assert_eq!(bad.status, None, "refused before anything was sent");

    // The whole listing at once: the same repositories, the installations listed once.
    let before = w.server.requests().len();
    let mut all: Vec<(String, String)> = w
        .provider
        .all_repositories()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.installation_id.unwrap()))
        .collect();
    all.sort();
    assert_eq!(all, expected);
    let paths: Vec<String> = w.server.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        [
            "/app/installations",
            "/installation/repositories",
            "/installation/repositories"
        ]
    );
    w.assert_valid();
}

#[tokio::test]
async fn one_repository_and_its_pull_requests() {
    let w = World::new().await;
    let repo = w.provider.repository(&w.repo).await.unwrap();
    assert_eq!(repo.id, w.repo_id.to_string());
    assert_eq!(repo.full_name, "acme/app");
    assert_eq!(repo.default_branch, "main");
    assert_eq!(repo.clone_url, "http://127.0.0.1:1/acme/app.git");
    assert_eq!(repo.installation_id, Some(w.installation.to_string()));

    // Renamed: the id still finds it, under its new name.
    w.server.rename_repo(w.repo_id, "acme/renamed");
    let renamed = w.provider.repository(&w.repo).await.unwrap();
    assert_eq!(renamed.id, w.repo_id.to_string());
    assert_eq!(renamed.full_name, "acme/renamed");
    w.server.rename_repo(w.repo_id, "acme/app");
    let gone = RepoLocator {
        id: "999999".into(),
        full_name: "acme/gone".into(),
        installation_id: Some(w.installation.to_string()),
    };
    assert_eq!(
        w.provider.repository(&gone).await.unwrap_err().code,
        ErrorCode::NotFound
    );

    let pr = w.provider.pull_request(&w.repo, 7).await.unwrap();
    assert_eq!(pr.number, 7);
    assert!(pr.open);
    assert!(!pr.draft);
    assert!(!pr.from_fork);
    assert_eq!(pr.head_sha, "a".repeat(40));
    assert_eq!(pr.head_ref, "feature/x");
    assert_eq!(pr.base_ref, "main");
    assert_eq!(pr.base_sha, "b".repeat(40));
    assert_eq!(pr.title, "Add x");
    assert_eq!(pr.author.as_deref(), Some("alice"));

    let base = w
        .provider
        .merge_base(&w.repo, "main", &"a".repeat(40))
        .await
        .unwrap();
    assert_eq!(base, "c".repeat(40));

    // 150 more open PRs, one fork draft, and a closed one: two pages.
    for n in 100..250u64 {
        w.server.add_pull(
            w.repo_id,
            TestPull {
                number: n,
                head_sha: format!("{n:040}"),
                head_ref: format!("b{n}"),
                base_ref: "main".into(),
                base_sha: "b".repeat(40),
                merge_base: "b".repeat(40),
                draft: n == 100,
                from_fork: n == 100,
                title: format!("PR {n}"),
                author: "bob".into(),
            },
        );
    }
    w.server.set_pull_state(w.repo_id, 249, "closed");
    let first = w.provider.open_pull_requests(&w.repo, None).await.unwrap();
    assert_eq!(first.items.len(), 100);
    let next = first.next.clone().expect("a second page");
    let second = w
        .provider
        .open_pull_requests(&w.repo, Some(&next))
        .await
        .unwrap();
    assert_eq!(second.next, None);
    let mut numbers: Vec<u64> = first
        .items
        .iter()
        .chain(second.items.iter())
        .map(|p| p.number)
        .collect();
    numbers.sort();
    let mut expected: Vec<u64> = (100..249).collect();
    expected.push(7);
    expected.sort();
    assert_eq!(numbers, expected);
    let fork = first
        .items
        .iter()
        .chain(second.items.iter())
        .find(|p| p.number == 100)
        .unwrap();
    assert!(fork.from_fork && fork.draft);

    for (login, permission, writes) in [
        ("ada", "admin", true),
        ("max", "maintain", true),
        ("wes", "write", true),
        ("tri", "triage", false),
        ("rea", "read", false),
    ] {
        w.server.set_permission(w.repo_id, login, permission);
        assert_eq!(
            w.provider.has_write_access(&w.repo, login).await.unwrap(),
            writes,
            "{login} ({permission})"
        );
    }
    assert!(!w
        .provider
        .has_write_access(&w.repo, "nobody-at-all")
        .await
        .unwrap());

    // Every repository call used the one cached installation-wide token.
    assert_eq!(w.server.minted_tokens().len(), 1);
    for r in w.requests_to("/repos/") {
        assert!(
            matches!(&r.auth, Auth::InstallationToken { installation_id, .. } if *installation_id == w.installation),
            "{:?}",
            r.auth
        );
    }
    assert_eq!(w.provider.api_calls(), w.server.requests().len() as u64);
    w.assert_valid();
}

#[tokio::test]
async fn minted_credentials_are_narrow_and_never_cached() {
    let w = World::new().await;
    let clone = w
        .provider
        .mint_credential(&w.repo, CredentialScope::Clone)
        .await
        .unwrap();
    let scan = w
        .provider
        .mint_credential(&w.repo, CredentialScope::PullRequestScan)
        .await
        .unwrap();
    let again = w
        .provider
        .mint_credential(&w.repo, CredentialScope::PullRequestScan)
        .await
        .unwrap();
    assert_eq!(clone.username, "x-access-token");
    assert_ne!(scan.secret.expose_secret(), again.secret.expose_secret());
    assert!(!format!("{scan:?}").contains(scan.secret.expose_secret()));

    let minted = w.server.minted_tokens();
    assert_eq!(minted.len(), 3);
    assert_eq!(minted[0].repository_ids, Some(vec![w.repo_id]));
    assert_eq!(minted[0].permissions, perms(&[("contents", "read")]));
    assert_eq!(minted[0].token, clone.secret.expose_secret());
    assert_eq!(minted[1].repository_ids, Some(vec![w.repo_id]));
    assert_eq!(minted[1].permissions, scan_permissions());
    // expires_at is GitHub's, not a guess.
    let expires = scan.expires_at.unwrap();
    let server_expires = time::OffsetDateTime::from(minted[1].expires_at);
    assert!((expires - server_expires).abs() <= time::Duration::seconds(1));
    for r in w.requests_to("/access_tokens") {
        assert_eq!(r.auth, Auth::Jwt { app_id: w.app.id });
    }

    // Beyond the App's grant: GitHub refuses with 422.
    w.server.set_app_permissions(
        w.app.id,
        &[("metadata", "read"), ("contents", "read")],
        &["pull_request"],
    );
    let refused = w
        .provider
        .mint_credential(&w.repo, CredentialScope::PullRequestScan)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Rejected);
    assert_eq!(refused.status, Some(422));
    assert!(!refused.message.is_empty());
    w.assert_valid();
}

#[tokio::test]
async fn control_plane_tokens_are_cached_until_five_minutes_before_expiry() {
    let w = World::new().await;
    for _ in 0..3 {
        w.provider.pull_request(&w.repo, 7).await.unwrap();
    }
    assert_eq!(w.server.minted_tokens().len(), 1);

    // Tokens living 4 minutes are always within the margin: each call mints a new one.
    w.server.set_token_ttl(Duration::from_secs(240));
    let w2 = GitHubApp::new(&credentials(&w.app), &options(&w.server.api_url())).unwrap();
    for _ in 0..3 {
        w2.pull_request(&w.repo, 7).await.unwrap();
    }
    assert_eq!(w.server.minted_tokens().len(), 4);
    // api_calls counts the mints too: 3 mints + 3 pulls.
    assert_eq!(w2.api_calls(), 6);

    // At the margin: a token living 5 min + 3 s is reused at once, and replaced 3.5 s later.
    w.server.set_token_ttl(Duration::from_secs(303));
    let w3 = GitHubApp::new(&credentials(&w.app), &options(&w.server.api_url())).unwrap();
    w3.pull_request(&w.repo, 7).await.unwrap();
    w3.pull_request(&w.repo, 7).await.unwrap();
    assert_eq!(w.server.minted_tokens().len(), 5);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    w3.pull_request(&w.repo, 7).await.unwrap();
    assert_eq!(w.server.minted_tokens().len(), 6);
    w.assert_valid();
}

/// The gap between the first two requests whose path contains `path`.
fn gap(w: &World, path: &str) -> Duration {
    let hits = w.requests_to(path);
    assert!(hits.len() >= 2, "{} requests to {path}", hits.len());
    hits[1].at - hits[0].at
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let w = World::new().await;
    // Mint the token first so the faults hit the call itself.
    w.provider.pull_request(&w.repo, 7).await.unwrap();

    for kind in [
        FaultKind::SecondaryRateLimit {
            retry_after_secs: 1,
        },
        FaultKind::TooManyRequests {
            retry_after_secs: 1,
        },
    ] {
        let before = w.provider.api_calls();
        let path = "/collaborators/";
        w.server.set_permission(w.repo_id, "wes", "write");
        let start = w.server.requests().len();
        w.server.inject(Fault {
            path_contains: path.into(),
            kind: kind.clone(),
            times: 1,
        });
        assert!(w.provider.has_write_access(&w.repo, "wes").await.unwrap());
        let hits: Vec<_> = w.server.requests()[start..]
            .iter()
            .filter(|r| r.path.contains(path))
            .cloned()
            .collect();
        assert_eq!(hits.len(), 2, "{kind:?}");
        assert!(matches!(hits[0].status, 403 | 429), "{}", hits[0].status);
        let waited = hits[1].at - hits[0].at;
        assert!(
            waited >= Duration::from_millis(950),
            "{kind:?}: waited {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(3),
            "{kind:?}: waited {waited:?}"
        );
        assert_eq!(w.provider.api_calls() - before, 2);
    }

    // An exhausted primary limit: wait until x-ratelimit-reset.
    w.server.inject(Fault {
        path_contains: "/compare/".into(),
        kind: FaultKind::PrimaryExhausted { reset_in_secs: 1 },
        times: 1,
    });
    w.provider
        .merge_base(&w.repo, "main", &"a".repeat(40))
        .await
        .unwrap();
    let waited = gap(&w, "/compare/");
    assert!(waited >= Duration::from_millis(950), "waited {waited:?}");
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    w.assert_valid();
}

#[tokio::test]
async fn a_wait_past_the_deadline_fails_rate_limited_at_once() {
    let w = World::new().await;
    let mut opts = options(&w.server.api_url());
    opts.retry.max_wait = Duration::from_millis(500);
    let provider = GitHubApp::new(&credentials(&w.app), &opts).unwrap();
    w.server.inject(Fault {
        path_contains: "/pulls/7".into(),
        kind: FaultKind::SecondaryRateLimit {
            retry_after_secs: 30,
        },
        times: 1,
    });
    let started = Instant::now();
    let e = provider.pull_request(&w.repo, 7).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert_eq!(e.status, Some(403));
    assert_eq!(e.retry_after, Some(Duration::from_secs(30)));
    assert!(e.message.contains("secondary rate limit"), "{}", e.message);
    w.assert_valid();
}

#[tokio::test]
async fn server_errors_are_retried_twice() {
    let w = World::new().await;
    w.provider.pull_request(&w.repo, 7).await.unwrap();
    w.server.inject(Fault {
        path_contains: "/pulls/7".into(),
        kind: FaultKind::ServerError { status: 502 },
        times: 2,
    });
    let before = w.provider.api_calls();
    w.provider.pull_request(&w.repo, 7).await.unwrap();
    assert_eq!(w.provider.api_calls() - before, 3);

    w.server.inject(Fault {
        path_contains: "/pulls/7".into(),
        kind: FaultKind::ServerError { status: 503 },
        times: 3,
    });
    let e = w.provider.pull_request(&w.repo, 7).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
    assert_eq!(e.status, Some(503));
    w.assert_valid();
}

#[tokio::test]
async fn a_slow_answer_times_out_as_unavailable() {
    let w = World::new().await;
    let mut opts = options(&w.server.api_url());
    opts.request_timeout = Duration::from_millis(300);
    let provider = GitHubApp::new(&credentials(&w.app), &opts).unwrap();
    w.server.inject(Fault {
        path_contains: "/app".into(),
        kind: FaultKind::Delay(Duration::from_secs(3)),
        times: 1,
    });
    let started = Instant::now();
    let e = provider.check().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(2));
    w.assert_valid();
}

#[tokio::test]
async fn errors_map_to_codes_without_secrets() {
    let w = World::new().await;
    // 404.
    let e = w.provider.pull_request(&w.repo, 999).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    assert_eq!(e.status, Some(404));
    assert_eq!(e.message, "Not Found");

    // 401: another App's key under this App's id.
    let impostor = w.server.add_app("impostor");
    let mut creds = credentials(&w.app);
    creds.private_key = SecretString::from(impostor.private_key_pem.clone());
    let wrong = GitHubApp::new(&creds, &options(&w.server.api_url())).unwrap();
    let e = wrong.check().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unauthorized);
    assert_eq!(e.status, Some(401));

    // A revoked/unknown scan token: 401 on feedback calls; the message never holds it.
    let fake = picket_vcs::provider::ScopedCredential {
        username: "x-access-token".into(),
        secret: SecretString::from("ghs_notarealtoken000000000000000000000".to_string()),
        expires_at: None,
    };
    let feedback = GitHubFeedback::new(&fake, &options(&w.server.api_url())).unwrap();
    let e = feedback
        .upsert_conversation_comment(&w.repo, 7, None, "hello")
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unauthorized);
    assert!(!e.message.contains("ghs_"), "{}", e.message);
    assert!(!format!("{e:?}").contains("ghs_"));
    assert!(!format!("{feedback:?}").contains("ghs_"));
    assert!(!format!("{:?}", w.provider).contains("PRIVATE KEY"));

    // Configuration: not a PEM key, not a URL; nothing listening.
    let mut creds = credentials(&w.app);
    creds.private_key = SecretString::from("not a key".to_string());
    let e = GitHubApp::new(&creds, &options(&w.server.api_url())).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadConfig);
    let e = GitHubApp::new(&credentials(&w.app), &options("not a url")).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadConfig);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let nowhere =
        GitHubApp::new(&credentials(&w.app), &options(&format!("http://{closed}"))).unwrap();
    let e = nowhere.check().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unreachable);
    assert_eq!(e.status, None);

    // The server saw refused credentials on purpose here: only check the schema.
    let violations = w.server.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

fn annotation(i: u32) -> Annotation {
    Annotation {
        path: format!("src/f{i}.rs"),
        start_line: i + 1,
        end_line: i + 2,
        level: match i % 3 {
            0 => AnnotationLevel::Failure,
            1 => AnnotationLevel::Warning,
            _ => AnnotationLevel::Notice,
        },
        title: format!("rule-{i}"),
        message: format!("finding {i}"),
    }
}

#[tokio::test]
async fn check_runs_carry_every_annotation_fifty_at_a_time() {
    let w = World::new().await;
    // The control plane's client (the installation's cached token): a scan's own token cannot
    // write checks.
    let scan_token = w.feedback().await;
    let refused = scan_token
        .create_check(
            &w.repo,
            7,
            "Picket",
            &"b".repeat(40),
            &CheckUpdate {
                status: CheckStatus::Queued,
                conclusion: None,
                output: None,
                details_url: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code, picket_vcs::ErrorCode::Forbidden);
    let feedback = w.provider.feedback_client(&w.repo).await.unwrap();
    let head = "a".repeat(40);
    let id = feedback
        .create_check(
            &w.repo,
            7,
            "Picket",
            &head,
            &CheckUpdate {
                status: CheckStatus::InProgress,
                conclusion: None,
                output: None,
                details_url: Some("https://picket.example/scans/1".into()),
            },
        )
        .await
        .unwrap();
    let before = w.requests_to("/check-runs").len();
    assert_eq!(before, 2, "the refused POST and the created one");
    feedback
        .update_check(
            &w.repo,
            &id,
            &CheckUpdate {
                status: CheckStatus::Completed,
                conclusion: Some(CheckConclusion::Failure),
                output: Some(CheckOutput {
                    title: "120 findings".into(),
                    summary: "x".repeat(70_000),
                    text: Some("details".into()),
                    annotations: (0..120).map(annotation).collect(),
                }),
                details_url: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(w.requests_to("/check-runs").len() - before, 3);

    let runs = w.server.check_runs(w.repo_id);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.id.to_string(), id);
    assert_eq!(run.name, "Picket");
    assert_eq!(run.head_sha, head);
    assert_eq!(run.status, "completed");
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert_eq!(
        run.details_url.as_deref(),
        Some("https://picket.example/scans/1")
    );
    let summary = run.output.summary.clone().unwrap();
    assert!(summary.chars().count() <= 65_535);
    assert!(summary.contains("truncated by Picket"));
    let paths: Vec<String> = run
        .annotations
        .iter()
        .map(|a| a["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        paths,
        (0..120).map(|i| format!("src/f{i}.rs")).collect::<Vec<_>>()
    );
    assert_eq!(run.annotations[0]["annotation_level"], "failure");

    // A check created with 120 annotations at once: POST + 2 PATCHes.
    let before = w.requests_to("/check-runs").len();
    feedback
        .create_check(
            &w.repo,
            7,
            "Picket 2",
            &head,
            &CheckUpdate {
                status: CheckStatus::Completed,
                conclusion: Some(CheckConclusion::Success),
                output: Some(CheckOutput {
                    title: "t".into(),
                    summary: "s".into(),
                    text: None,
                    annotations: (0..120).map(annotation).collect(),
                }),
                details_url: None,
            },
        )
        .await
        .unwrap();
    let sent = &w.requests_to("/check-runs")[before..];
    assert_eq!(
        sent.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["POST", "PATCH", "PATCH"]
    );
    assert_eq!(w.server.check_runs(w.repo_id)[1].annotations.len(), 120);

    // The refused request carried the scan's token; the others the installation-wide one.
    let sent = w.requests_to("/check-runs");
    assert_eq!(
        sent[0].auth,
        Auth::InstallationToken {
            installation_id: w.installation,
            repository_ids: Some(vec![w.repo_id]),
            permissions: scan_permissions(),
        }
    );
    for r in &sent[1..] {
        assert!(
            matches!(&r.auth, Auth::InstallationToken { installation_id, repository_ids: None, .. } if *installation_id == w.installation),
            "{:?}",
            r.auth
        );
    }
    // 1 POST, 3 PATCHes, 1 POST, 2 PATCHes.
    assert_eq!(feedback.api_calls(), 7);
    w.assert_valid();
}

#[tokio::test]
async fn comments_threads_and_replies() {
    let w = World::new().await;
    let feedback = w.feedback().await;
    let head = "a".repeat(40);
    let marker = "<!-- picket:finding -->";
    w.server
        .set_diff_lines(w.repo_id, 7, "src/a.rs", &[3, 4, 10]);
    w.server.set_diff_lines(w.repo_id, 7, "src/b.rs", &[1]);

    // The conversation comment: created, then edited in place.
    let summary = feedback
        .upsert_conversation_comment(&w.repo, 7, None, "<!-- picket:summary --> v1")
        .await
        .unwrap();
    let edited = feedback
        .upsert_conversation_comment(&w.repo, 7, Some(&summary.id), "<!-- picket:summary --> v2")
        .await
        .unwrap();
    assert_eq!(edited.id, summary.id);
    let conv = w.server.issue_comments(w.repo_id, 7);
    assert_eq!(conv.len(), 1);
    assert_eq!(conv[0].body, "<!-- picket:summary --> v2");
    assert_eq!(conv[0].author, "picket-test[bot]");

    // Inline comments in one review, mapped back with their threads.
    let wanted = vec![
        InlineComment {
            path: "src/a.rs".into(),
            line: 4,
            body: format!("{marker} first"),
        },
        InlineComment {
            path: "src/b.rs".into(),
            line: 1,
            body: format!("{marker} second"),
        },
        InlineComment {
            path: "src/a.rs".into(),
            line: 10,
            body: format!("{marker} third"),
        },
    ];
    let posted = feedback
        .post_inline_comments(&w.repo, 7, &head, &wanted)
        .await
        .unwrap();
    assert_eq!(w.server.reviews(w.repo_id, 7).len(), 1);
    assert_eq!(posted.len(), 3);
    let stored = w.server.review_comments(w.repo_id, 7);
    for (p, want) in posted.iter().zip(&wanted) {
        assert_eq!(p.body, want.body);
        assert_eq!(p.path.as_deref(), Some(want.path.as_str()));
        assert_eq!(p.line, Some(want.line));
        let s = stored.iter().find(|s| s.id.to_string() == p.id).unwrap();
        assert_eq!(s.commit_id, head);
        assert_eq!(s.side.as_deref(), Some("RIGHT"));
        assert_eq!(p.thread_id.as_deref(), Some(s.thread_id.as_str()));
        assert!(!p.resolved);
    }

    // find_comments: marker matches in both kinds, with threads.
    w.server
        .add_issue_comment(w.repo_id, 7, "alice", "unrelated");
    w.server
        .add_issue_comment(w.repo_id, 7, "mallory", &format!("{marker} forged"));
    let found = feedback.find_comments(&w.repo, 7, marker).await.unwrap();
    // The forged one is found too, by its author: callers keep only the App's own.
    let (own, others): (Vec<_>, Vec<_>) = found
        .into_iter()
        .partition(|c| c.author == "picket-test[bot]");
    assert_eq!(own.len(), 3);
    assert!(own.iter().all(|c| c.thread_id.is_some()));
    assert_eq!(
        others.iter().map(|c| c.author.as_str()).collect::<Vec<_>>(),
        ["mallory"]
    );
    let summary_found = feedback
        .find_comments(&w.repo, 7, "<!-- picket:summary -->")
        .await
        .unwrap();
    assert_eq!(summary_found.len(), 1);
    assert_eq!(summary_found[0].id, summary.id);
    assert_eq!(summary_found[0].author, "picket-test[bot]");
    assert_eq!(summary_found[0].path, None);

    // Resolve one thread.
    let thread = posted[1].thread_id.clone().unwrap();
    feedback.resolve_thread(&w.repo, 7, &thread).await.unwrap();
    let stored = w.server.review_comments(w.repo_id, 7);
    assert!(
        stored
            .iter()
            .find(|s| s.thread_id == thread)
            .unwrap()
            .thread_resolved
    );
    let found = feedback.find_comments(&w.repo, 7, marker).await.unwrap();
    let resolved: Vec<_> = found
        .iter()
        .filter(|c| c.resolved && c.author == "picket-test[bot]")
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(resolved, [posted[1].id.clone()]);

    // Replies: in the review thread, and on the conversation.
    let r = feedback
        .reply(&w.repo, 7, &posted[0].id, "triaged: accepted")
        .await
        .unwrap();
    let stored = w.server.review_comments(w.repo_id, 7);
    let reply = stored.iter().find(|s| s.id.to_string() == r.id).unwrap();
    assert_eq!(
        reply.in_reply_to.map(|i| i.to_string()),
        Some(posted[0].id.clone())
    );
    assert_eq!(reply.body, "triaged: accepted");
    let c = feedback
        .reply(&w.repo, 7, &summary.id, "noted")
        .await
        .unwrap();
    assert!(w
        .server
        .issue_comments(w.repo_id, 7)
        .iter()
        .any(|x| x.id.to_string() == c.id && x.body == "noted"));
    w.assert_valid();
}

/// A review comment read back by id, with its author (what triage by reply checks before it
/// trusts a marker): the App's own, a person's, a deleted one, one of another pull request.
#[tokio::test]
async fn a_review_comment_by_id_with_its_author() {
    let w = World::new().await;
    w.server.add_pull(
        w.repo_id,
        TestPull {
            number: 8,
            head_sha: "d".repeat(40),
            head_ref: "feature/y".into(),
            base_ref: "main".into(),
            base_sha: "b".repeat(40),
            merge_base: "c".repeat(40),
            draft: false,
            from_fork: false,
            title: "Add y".into(),
            author: "bob".into(),
        },
    );
    let feedback = w.feedback().await;
    let own = feedback
        .post_inline_comments(
            &w.repo,
            7,
            &"a".repeat(40),
            &[InlineComment {
                path: "src/a.rs".into(),
                line: 4,
                body: "<!-- picket:finding f --> own".into(),
            }],
        )
        .await
        .unwrap()
        .remove(0);
    let forged = w.server.add_review_comment(
        w.repo_id,
        7,
        "mallory",
        "src/a.rs",
        5,
        "<!-- picket:finding f --> forged",
    );
    let reply = w
        .server
        .add_review_reply(w.repo_id, 7, forged, "alice", "/fp nope");
    let elsewhere =
        w.server
            .add_review_comment(w.repo_id, 8, "picket-test[bot]", "src/b.rs", 1, "x");

    let got = feedback
        .review_comment(&w.repo, 7, &own.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, own.id);
    assert_eq!(got.author, "picket-test[bot]");
    assert_eq!(got.body, "<!-- picket:finding f --> own");
    assert_eq!(got.path.as_deref(), Some("src/a.rs"));
    assert_eq!(got.line, Some(4));
    let got = feedback
        .review_comment(&w.repo, 7, &forged.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.author, "mallory");
    let got = feedback
        .review_comment(&w.repo, 7, &reply.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.author.as_str(), got.body.as_str()),
        ("alice", "/fp nope")
    );
    // Another pull request's comment, and one that does not exist.
    assert_eq!(
        feedback
            .review_comment(&w.repo, 7, &elsewhere.to_string())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        feedback.review_comment(&w.repo, 7, "999999").await.unwrap(),
        None
    );
    let gets = w.requests_to("/pulls/comments/");
    assert_eq!(gets.len(), 5);
    assert!(gets.iter().all(|r| r.method == "GET"));
    w.assert_valid();
}

#[tokio::test]
async fn a_refused_line_falls_back_to_single_comments() {
    let w = World::new().await;
    let feedback = w.feedback().await;
    let head = "a".repeat(40);
    w.server.set_diff_lines(w.repo_id, 7, "src/a.rs", &[3, 4]);
    let wanted = vec![
        InlineComment {
            path: "src/a.rs".into(),
            line: 3,
            body: "one".into(),
        },
        InlineComment {
            path: "src/a.rs".into(),
            line: 99,
            body: "outside the diff".into(),
        },
        InlineComment {
            path: "src/a.rs".into(),
            line: 4,
            body: "two".into(),
        },
    ];
    let outcome = feedback
        .post_inline_comments_reporting(&w.repo, 7, &head, &wanted)
        .await
        .unwrap();
    let posted = outcome.posted;
    assert_eq!(
        posted.iter().map(|p| p.body.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert_eq!(outcome.refused.len(), 1);
    assert_eq!(outcome.refused[0].index, 1);
    assert!(!outcome.refused[0].message.is_empty());
    assert!(posted.iter().all(|p| p.thread_id.is_some()));
    let stored = w.server.review_comments(w.repo_id, 7);
    assert_eq!(stored.len(), 2);
    assert!(w.server.reviews(w.repo_id, 7).is_empty());
    let statuses: Vec<u16> = w
        .requests_to("/pulls/7/")
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [422, 201, 422, 201]);
    w.assert_valid();
}

/// A reverse proxy in front of the test server: optional TLS, a GitHub Enterprise Server style
/// layout (`/api/v3/...` → `/...`, `/api/graphql` → `/graphql`). Records the paths it served.
struct Proxy {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy(upstream: String, tls: Option<Arc<rustls::ServerConfig>>, prefix: &str) -> Proxy {
    use hyper::body::Incoming;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build_http();
    let prefix = prefix.to_owned();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{addr}{prefix}");
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (client, seen, upstream, prefix, tls) = (
                client.clone(),
                seen2.clone(),
                upstream.clone(),
                prefix.clone(),
                tls.clone(),
            );
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                    let (client, seen, upstream, prefix) = (
                        client.clone(),
                        seen.clone(),
                        upstream.clone(),
                        prefix.clone(),
                    );
                    async move {
                        let pq = req
                            .uri()
                            .path_and_query()
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_default();
                        seen.lock().unwrap().push(pq.clone());
                        let path = if pq == "/api/graphql" {
                            "/graphql".to_owned()
                        } else {
                            pq.strip_prefix(prefix.as_str()).unwrap_or(&pq).to_owned()
                        };
                        *req.uri_mut() = format!("{upstream}{path}").parse().unwrap();
                        req.headers_mut().remove(http::header::HOST);
                        client.request(req).await
                    }
                });
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    Some(cfg) => {
                        let Ok(stream) = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await
                        else {
                            return;
                        };
                        let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                    }
                    None => {
                        let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                }
            });
        }
    });
    Proxy { url, seen, task }
}

#[tokio::test]
async fn an_enterprise_server_root_with_a_path_prefix() {
    let w = World::new().await;
    let ghes = proxy(w.server.api_url(), None, "/api/v3").await;
    assert!(ghes.url.ends_with("/api/v3"));
    let provider = GitHubApp::new(&credentials(&w.app), &options(&ghes.url)).unwrap();
    assert_eq!(provider.check().await.unwrap().identity, "picket-test");
    let credential = provider
        .mint_credential(&w.repo, CredentialScope::PullRequestScan)
        .await
        .unwrap();
    let feedback = GitHubFeedback::new(&credential, &options(&ghes.url)).unwrap();
    w.server.set_diff_lines(w.repo_id, 7, "src/a.rs", &[1]);
    feedback
        .post_inline_comments(
            &w.repo,
            7,
            &"a".repeat(40),
            &[InlineComment {
                path: "src/a.rs".into(),
                line: 1,
                body: "via GHES".into(),
            }],
        )
        .await
        .unwrap();
    let seen = ghes.seen.lock().unwrap().clone();
    assert!(seen.iter().any(|p| p == "/api/v3/app"), "{seen:?}");
    assert!(
        seen.iter()
            .any(|p| p.starts_with("/api/v3/app/installations")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|p| p == "/api/v3/repos/acme/app/pulls/7/reviews"),
        "{seen:?}"
    );
    assert!(seen.iter().any(|p| p == "/api/graphql"), "{seen:?}");
    assert!(
        seen.iter()
            .all(|p| p.starts_with("/api/v3/") || p == "/api/graphql"),
        "{seen:?}"
    );
    w.assert_valid();
}

#[tokio::test]
async fn tls_with_an_extra_ca() {
    let w = World::new().await;
    let ca = TestCa::new("Picket test CA");
    let tls = proxy(
        w.server.api_url(),
        Some(ca.server_config(&["127.0.0.1"])),
        "",
    )
    .await;
    assert!(tls.url.starts_with("https://127.0.0.1:"));

    // Without the CA the server's certificate is not trusted.
    let untrusting = GitHubApp::new(&credentials(&w.app), &options(&tls.url)).unwrap();
    let e = untrusting.check().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unreachable, "{e:?}");
    assert!(w.server.requests().is_empty());

    let mut opts = options(&tls.url);
    opts.extra_roots = vec![ca.cert_der()];
    let provider = GitHubApp::new(&credentials(&w.app), &opts).unwrap();
    assert_eq!(provider.check().await.unwrap().identity, "picket-test");
    let credential = provider
        .mint_credential(&w.repo, CredentialScope::PullRequestScan)
        .await
        .unwrap();
    let feedback = GitHubFeedback::new(&credential, &opts).unwrap();
    feedback
        .upsert_conversation_comment(&w.repo, 7, None, "over TLS")
        .await
        .unwrap();
    assert_eq!(w.server.issue_comments(w.repo_id, 7)[0].body, "over TLS");
    assert!(!tls.seen.lock().unwrap().is_empty());
    w.assert_valid();
}
