//! The reconcile sweep against the GitHub test server and a fresh database: it queues a scan of
//! exactly the open pull requests' heads never scanned (drafts included, closed ones not), once;
//! a new head supersedes the PR's older scan; a budget too small for every project is resumed
//! where it stopped; disabled projects and a suspended installation cost nothing or end only
//! their own installation's part. The API calls it counts are the requests the server recorded,
//! and every request is checked against GitHub's OpenAPI description.

use crate::github::{app_connection, queue_head, AppConnection};
use picket_core::{ConnectionId, OrgId, ScanId};
use picket_db::Db;
use picket_scheduler::reconcile::{sweep, ReconcileConfig, SweepReport};
use picket_test_support::github::{GitHubServer, TestApp, TestPull};
use picket_vcs::Registry;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

struct World {
    server: GitHubServer,
    app: TestApp,
    db: Db,
    org: OrgId,
    registry: Arc<Registry>,
    connection: ConnectionId,
}

/// One of the world's repositories, a project of its connection.
struct Repo {
    id: u64,
    installation: u64,
}

async fn world(pool: PgPool) -> World {
    let AppConnection {
        server,
        app,
        org,
        connection,
        registry,
    } = app_connection(&pool).await;
    World {
        server,
        app,
        db: Db::from_pool(pool),
        org,
        registry,
        connection,
    }
}

fn sha(n: u64) -> String {
    format!("{n:040x}")
}

fn pull(number: u64, head: u64) -> TestPull {
    TestPull {
        number,
        head_sha: sha(head),
        head_ref: format!("feature-{number}"),
        base_ref: "main".into(),
        base_sha: sha(0xba5e),
        merge_base: sha(0xba5e),
        title: format!("PR {number}"),
        author: "octocat".into(),
        ..TestPull::default()
    }
}

impl World {
    /// A repository of `installation` on the server and its project in Picket.
    async fn repo(&self, installation: u64, name: &str) -> Repo {
        let full_name = format!("acme/{name}");
        let clone_url = format!("https://github.invalid/{full_name}.git");
        let id = self
            .server
            .add_repo(installation, &full_name, "main", &clone_url);
        sqlx::query(
            "INSERT INTO projects (id, org_id, connection_id, provider_repo_id, full_name,
                                   clone_url, default_branch, weekly_weekday, weekly_time,
                                   provider_installation_id)
             VALUES ($1, $2, $3, $4, $5, $6, 'main', 0, '00:00', $7)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(self.org.0)
        .bind(self.connection.0)
        .bind(id.to_string())
        .bind(&full_name)
        .bind(&clone_url)
        .bind(installation.to_string())
        .execute(self.db.pool())
        .await
        .unwrap();
        Repo { id, installation }
    }

    /// What a webhook about this head would have queued.
    async fn webhook(&self, repo: &Repo, number: i32, head: &str) -> ScanId {
        queue_head(
            self.db.pool(),
            self.connection,
            repo.id,
            repo.installation,
            number,
            head,
        )
        .await
    }

    async fn sweep(&self, budget: u64) -> SweepReport {
        let cfg = ReconcileConfig {
            every: Duration::from_secs(300),
            budget,
        };
        sweep(&self.db, &self.registry, &cfg).await.unwrap()
    }

    /// Diff scans of a repository: (PR number, head, trigger, state, error code), by PR then
    /// queue order.
    async fn scans(&self, repo: &Repo) -> Vec<(i32, String, String, String, Option<String>)> {
        sqlx::query_as(
            "SELECT s.pr_number, s.commit_sha, s.trigger::text, s.state::text, s.error_code
             FROM scans s JOIN projects p ON p.id = s.project_id
             WHERE p.provider_repo_id = $1 AND s.kind = 'diff'
             ORDER BY s.pr_number, s.queued_at, s.id",
        )
        .bind(repo.id.to_string())
        .fetch_all(self.db.pool())
        .await
        .unwrap()
    }

    /// Requests the server received whose path contains `part`.
    fn requests_to(&self, part: &str) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path.contains(part))
            .count()
    }

    fn assert_valid_and_counted(&self, reports: &[&SweepReport]) {
        let calls: u64 = reports.iter().map(|r| r.api_calls).sum();
        assert_eq!(
            calls,
            self.server.requests().len() as u64,
            "the calls counted are the requests GitHub received: {:#?}",
            self.server.requests()
        );
        assert!(
            self.server.violations().is_empty(),
            "{:#?}",
            self.server.violations()
        );
    }

    /// The PR check each scan wants (the webhook's path registers one per queued scan).
    async fn checks_wanted(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM pr_checks")
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}

fn queued(number: i32, head: &str, trigger: &str) -> (i32, String, String, String, Option<String>) {
    (
        number,
        head.to_owned(),
        trigger.to_owned(),
        "queued".to_owned(),
        None,
    )
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn unscanned_open_heads_are_queued_once_drafts_too_closed_never(pool: PgPool) {
    let w = world(pool).await;
    let installation = w.server.add_installation(w.app.id, "acme");
    let repo = w.repo(installation, "app").await;
    // #1 was scanned at its head (its webhook came); #2's and #3's (a draft) never came; #4 is
    // closed.
    w.server.add_pull(repo.id, pull(1, 0x11));
    w.server.add_pull(repo.id, pull(2, 0x22));
    w.server.add_pull(
        repo.id,
        TestPull {
            draft: true,
            ..pull(3, 0x33)
        },
    );
    w.server.add_pull(repo.id, pull(4, 0x44));
    w.server.set_pull_state(repo.id, 4, "closed");
    w.webhook(&repo, 1, &sha(0x11)).await;

    let first = w.sweep(100).await;
    assert_eq!(
        w.scans(&repo).await,
        [
            queued(1, &sha(0x11), "pull_request"),
            queued(2, &sha(0x22), "reconcile"),
            queued(3, &sha(0x33), "reconcile"),
        ]
    );
    assert_eq!(
        (
            first.installations,
            first.projects_swept,
            first.projects_left,
            first.pull_requests,
            first.scans_queued,
            first.budgets_exhausted,
        ),
        (1, 1, 0, 3, 2, 0)
    );
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    // A token mint and one page of open pull requests.
    assert_eq!(first.api_calls, 2);
    // Each queued head wants its PR check, like a webhook's.
    assert_eq!(w.checks_wanted().await, 3);

    // Nothing changed on GitHub: the next sweep queues nothing.
    let second = w.sweep(100).await;
    assert_eq!(second.scans_queued, 0);
    assert_eq!(second.pull_requests, 3);
    assert_eq!(w.scans(&repo).await.len(), 3);
    w.assert_valid_and_counted(&[&first, &second]);
    // The listing asked for open pull requests only.
    assert!(w
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/pulls"))
        .all(|r| r.query.as_deref().unwrap_or("").contains("state=open")));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_new_head_is_queued_and_supersedes_the_older_scan(pool: PgPool) {
    let w = world(pool).await;
    let installation = w.server.add_installation(w.app.id, "acme");
    let repo = w.repo(installation, "app").await;
    w.server.add_pull(repo.id, pull(7, 0x71));
    w.webhook(&repo, 7, &sha(0x71)).await;
    let first = w.sweep(100).await;
    assert_eq!(first.scans_queued, 0);

    // A push whose `synchronize` delivery was lost.
    w.server.update_pull(repo.id, 7, |p| p.head_sha = sha(0x72));
    let second = w.sweep(100).await;
    assert_eq!((second.scans_queued, second.scans_superseded), (1, 1));
    assert_eq!(
        w.scans(&repo).await,
        [
            (
                7,
                sha(0x71),
                "pull_request".into(),
                "cancelled".into(),
                Some("superseded".into())
            ),
            queued(7, &sha(0x72), "reconcile"),
        ]
    );
    let third = w.sweep(100).await;
    assert_eq!(third.scans_queued, 0);
    w.assert_valid_and_counted(&[&first, &second, &third]);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_spent_budget_is_resumed_by_the_next_sweep_with_the_projects_left(pool: PgPool) {
    let w = world(pool).await;
    let installation = w.server.add_installation(w.app.id, "acme");
    let mut repos = Vec::new();
    for (i, name) in ["one", "two", "three"].into_iter().enumerate() {
        let repo = w.repo(installation, name).await;
        w.server.add_pull(repo.id, pull(1, 0x100 + i as u64));
        repos.push(repo);
    }
    // Two calls per sweep: the first spends one on the installation token and one on a project.
    let first = w.sweep(2).await;
    assert_eq!(
        (
            first.projects_swept,
            first.projects_left,
            first.scans_queued,
            first.budgets_exhausted,
            first.api_calls
        ),
        (1, 2, 1, 1, 2)
    );
    let mut scanned = Vec::new();
    for repo in &repos {
        scanned.push(w.scans(repo).await.len());
    }
    assert_eq!(scanned.iter().sum::<usize>(), 1, "{scanned:?}");
    let listed_first: Vec<String> = w
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/pulls"))
        .map(|r| r.path.clone())
        .collect();

    // The next sweep (the token is still good) lists the two projects left, not the first again;
    // its budget is spent before the first one's next turn.
    let second = w.sweep(2).await;
    assert_eq!(
        (
            second.projects_swept,
            second.projects_left,
            second.scans_queued,
            second.budgets_exhausted,
            second.api_calls
        ),
        (2, 1, 2, 1, 2)
    );
    for repo in &repos {
        assert_eq!(w.scans(repo).await.len(), 1);
    }
    let listed_second: Vec<String> = w
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/pulls"))
        .map(|r| r.path.clone())
        .skip(listed_first.len())
        .collect();
    assert_eq!(listed_second.len(), 2);
    assert!(
        listed_second.iter().all(|p| !listed_first.contains(p)),
        "{listed_first:?} then {listed_second:?}"
    );
    w.assert_valid_and_counted(&[&first, &second]);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_listing_cut_short_by_the_budget_is_listed_again_from_its_first_page(pool: PgPool) {
    let w = world(pool).await;
    let installation = w.server.add_installation(w.app.id, "acme");
    let repo = w.repo(installation, "busy").await;
    // 150 open pull requests: two pages of 100.
    for n in 1..=150 {
        w.server.add_pull(repo.id, pull(n, 0x1000 + n));
    }
    let first = w.sweep(2).await;
    // The token and the first page: the budget is spent with a page to go.
    assert_eq!(
        (
            first.projects_swept,
            first.projects_left,
            first.pull_requests,
            first.scans_queued,
            first.budgets_exhausted
        ),
        (0, 1, 100, 100, 1)
    );
    let second = w.sweep(2).await;
    assert_eq!(
        (
            second.projects_swept,
            second.projects_left,
            second.pull_requests,
            second.scans_queued
        ),
        (1, 0, 150, 50)
    );
    assert_eq!(w.scans(&repo).await.len(), 150);
    w.assert_valid_and_counted(&[&first, &second]);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn disabled_projects_cost_nothing_and_a_provider_error_ends_only_its_installation(
    pool: PgPool,
) {
    let w = world(pool).await;
    // Suspended on GitHub, but its `installation` delivery never reached Picket: the token
    // mint answers 403.
    let suspended = w.server.add_installation(w.app.id, "suspended-org");
    let broken = w.repo(suspended, "broken").await;
    w.server.add_pull(broken.id, pull(1, 0x51));
    w.server.suspend_installation(suspended, true);
    // Suspended, and Picket was told: its project is disabled.
    let told = w.server.add_installation(w.app.id, "told-org");
    let disabled = w.repo(told, "disabled").await;
    w.server.add_pull(disabled.id, pull(1, 0x61));
    sqlx::query(
        "UPDATE projects SET disabled_reason = 'installation_suspended', disabled_at = now()
         WHERE provider_repo_id = $1",
    )
    .bind(disabled.id.to_string())
    .execute(w.db.pool())
    .await
    .unwrap();
    // PR scans switched off.
    let healthy = w.server.add_installation(w.app.id, "healthy-org");
    let quiet = w.repo(healthy, "quiet").await;
    w.server.add_pull(quiet.id, pull(1, 0x81));
    sqlx::query("UPDATE projects SET diff_scans_enabled = false WHERE provider_repo_id = $1")
        .bind(quiet.id.to_string())
        .execute(w.db.pool())
        .await
        .unwrap();
    let fine = w.repo(healthy, "fine").await;
    w.server.add_pull(fine.id, pull(1, 0x71));

    let report = w.sweep(100).await;
    assert_eq!(report.installations, 2, "{report:?}");
    assert_eq!(
        report.errors.get("provider_forbidden"),
        Some(&1),
        "{report:?}"
    );
    assert_eq!((report.projects_swept, report.scans_queued), (1, 1));
    assert_eq!(w.scans(&fine).await, [queued(1, &sha(0x71), "reconcile")]);
    assert!(w.scans(&broken).await.is_empty());
    assert!(w.scans(&disabled).await.is_empty());
    assert!(w.scans(&quiet).await.is_empty());
    // Nothing was asked about the disabled projects; the suspended installation cost its
    // refused token mint only.
    assert_eq!(w.requests_to("/acme/disabled"), 0);
    assert_eq!(w.requests_to("/acme/quiet"), 0);
    assert_eq!(w.requests_to("/acme/broken"), 0);
    assert_eq!(
        w.requests_to(&format!("/app/installations/{suspended}/access_tokens")),
        1
    );
    w.assert_valid_and_counted(&[&report]);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_loop_sweeps_at_its_interval_counts_and_stops(pool: PgPool) {
    use picket_scheduler::metrics::SchedulerMetrics;
    use tokio_util::sync::CancellationToken;
    let w = world(pool).await;
    let installation = w.server.add_installation(w.app.id, "acme");
    let repo = w.repo(installation, "app").await;
    w.server.add_pull(repo.id, pull(1, 0x11));
    let metrics = Arc::new(SchedulerMetrics::default());
    let stop = CancellationToken::new();
    let looping = tokio::spawn(picket_scheduler::reconcile::run(
        w.db.clone(),
        Arc::clone(&w.registry),
        ReconcileConfig {
            every: Duration::from_millis(100),
            budget: 100,
        },
        Arc::clone(&metrics),
        stop.clone(),
    ));
    // The first sweep runs at once; a push whose webhook was lost is found by a later one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while w.scans(&repo).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sweep queued the head"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.server.update_pull(repo.id, 1, |p| p.head_sha = sha(0x12));
    while w.scans(&repo).await.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no later sweep queued the new head"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A sweep's counts are recorded when it ends, a moment after its last scan is queued; a
    // stop before then drops that sweep's report (the API-call bound below allows for it).
    while !metrics
        .encode()
        .contains("picket_scheduler_reconcile_scans_queued_total 2")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweep that queued the new head was never counted:\n{}",
            metrics.encode()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), looping)
        .await
        .expect("the loop stops when asked")
        .unwrap();
    let text = metrics.encode();
    assert!(
        text.contains("picket_scheduler_reconcile_scans_queued_total 2"),
        "a sweep started after the new head was queued it again: {text}"
    );
    let calls: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("picket_scheduler_reconcile_api_calls_total "))
        .expect("the API calls are counted")
        .parse()
        .unwrap();
    // Every sweep's calls are counted; a sweep cut off by the stop may have made calls that no
    // sweep report counted.
    assert!(
        calls >= 3 && calls <= w.server.requests().len() as u64,
        "{calls}"
    );
    assert!(
        w.server.violations().is_empty(),
        "{:#?}",
        w.server.violations()
    );
}
