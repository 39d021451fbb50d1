//! The control plane's side of a PR check, against the GitHub test server: created `queued` when
//! the scan is queued, `in_progress` when it runs, `neutral` when a newer push supersedes it,
//! `success` with a note at the fail-open deadline, and never touched again after that. Every
//! request is checked against GitHub's OpenAPI description.

use crate::github::{app_connection, queue_head, AppConnection};
use picket_core::check::CheckPhase;
use picket_core::{ScanId, ScanState};
use picket_db::{pr_checks, queue, Db};
use picket_scheduler::pr_checks::{step, PrCheckConfig};
use picket_test_support::github::{GitHubServer, TestCheckRun};
use picket_vcs::Registry;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

struct World {
    server: GitHubServer,
    db: Db,
    registry: Arc<Registry>,
    connection: picket_core::ConnectionId,
    repo_id: u64,
    installation: u64,
    cfg: PrCheckConfig,
}

async fn world(pool: PgPool) -> World {
    let AppConnection {
        server,
        app,
        org,
        connection,
        registry,
    } = app_connection(&pool).await;
    let installation = server.add_installation(app.id, "acme");
    let repo_id = server.add_repo(
        installation,
        "acme/app",
        "main",
        "http://127.0.0.1:1/acme/app.git",
    );
    sqlx::query(
        "INSERT INTO projects (id, org_id, connection_id, provider_repo_id, full_name, clone_url,
                               default_branch, weekly_weekday, weekly_time, provider_installation_id)
         VALUES ($1, $2, $3, $4, 'acme/app', 'http://127.0.0.1:1/acme/app.git', 'main', 0, '00:00', $5)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(org.0)
    .bind(connection.0)
    .bind(repo_id.to_string())
    .bind(installation.to_string())
    .execute(&pool)
    .await
    .unwrap();
    let cfg = PrCheckConfig {
        idle: Duration::from_millis(10),
        recheck: Duration::from_millis(300),
        public_url: Some("https://picket.example".into()),
    };
    World {
        server,
        db: Db::from_pool(pool),
        registry,
        connection,
        repo_id,
        installation,
        cfg,
    }
}

impl World {
    async fn push(&self, head: &str) -> ScanId {
        queue_head(
            self.db.pool(),
            self.connection,
            self.repo_id,
            self.installation,
            7,
            head,
        )
        .await
    }

    /// Runs the loop until nothing is due.
    async fn drain(&self) {
        for _ in 0..20 {
            if !step(&self.db, &self.registry, &self.cfg).await.unwrap() {
                return;
            }
        }
        panic!("the loop never ran out of due checks");
    }

    fn check_of(&self, head: &str) -> TestCheckRun {
        let runs: Vec<_> = self
            .server
            .check_runs(self.repo_id)
            .into_iter()
            .filter(|c| c.head_sha == head)
            .collect();
        assert_eq!(runs.len(), 1, "one check per head: {runs:#?}");
        runs.into_iter().next().unwrap()
    }

    async fn shown(&self, scan: ScanId) -> Option<CheckPhase> {
        let org: uuid::Uuid = sqlx::query_scalar("SELECT org_id FROM scans WHERE id = $1")
            .bind(scan.0)
            .fetch_one(self.db.pool())
            .await
            .unwrap();
        pr_checks::get(self.db.pool(), org.into(), scan)
            .await
            .unwrap()
            .unwrap()
            .shown
    }
}

const HEAD_1: &str = "1111111111111111111111111111111111111111";
const HEAD_2: &str = "2222222222222222222222222222222222222222";

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_check_follows_the_scan_and_fails_open_at_the_deadline(pool: PgPool) {
    let w = world(pool).await;
    let first = w.push(HEAD_1).await;
    w.drain().await;
    let check = w.check_of(HEAD_1);
    assert_eq!(
        (check.name.as_str(), check.status.as_str()),
        ("Picket", "queued")
    );
    assert_eq!(
        check.details_url.as_deref(),
        Some(format!("https://picket.example/scans/{first}").as_str())
    );
    assert_eq!(w.shown(first).await, Some(CheckPhase::Queued));

    // Nothing changed: looking again creates nothing and moves nothing.
    tokio::time::sleep(w.cfg.recheck).await;
    w.drain().await;
    assert_eq!(w.check_of(HEAD_1).status, "queued");

    // A worker runs the scan: in progress.
    let claimed = queue::claim(w.db.pool(), "test", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.scan.id, first);
    queue::advance(w.db.pool(), &claimed.lease, ScanState::Running, None)
        .await
        .unwrap();
    tokio::time::sleep(w.cfg.recheck).await;
    w.drain().await;
    assert_eq!(w.check_of(HEAD_1).status, "in_progress");

    // A newer push supersedes it: the old head's check completes neutral, the new one is queued.
    let second = w.push(HEAD_2).await;
    tokio::time::sleep(w.cfg.recheck).await;
    w.drain().await;
    let old = w.check_of(HEAD_1);
    assert_eq!(
        (old.status.as_str(), old.conclusion.as_deref()),
        ("completed", Some("neutral"))
    );
    assert_eq!(w.shown(first).await, Some(CheckPhase::Superseded));
    assert_eq!(w.check_of(HEAD_2).status, "queued");

    // The org's deadline passes with the scan still queued: success, with a note.
    sqlx::query(
        "UPDATE pr_checks SET fail_open_at = now(), next_attempt_at = now() WHERE scan_id = $1",
    )
    .bind(second.0)
    .execute(w.db.pool())
    .await
    .unwrap();
    w.drain().await;
    let failed_open = w.check_of(HEAD_2);
    assert_eq!(
        (
            failed_open.status.as_str(),
            failed_open.conclusion.as_deref()
        ),
        ("completed", Some("success"))
    );
    assert_eq!(
        failed_open.output.title.as_deref(),
        Some("Picket did not finish")
    );
    assert!(failed_open
        .output
        .summary
        .unwrap()
        .contains("never blocks a merge"));

    // A result that arrives now is late: the worker may comment but must leave the check.
    let mut conn = w.db.pool().acquire().await.unwrap();
    let start = pr_checks::begin_feedback(&mut conn, second, &Default::default())
        .await
        .unwrap();
    assert!(start.late);
    assert_eq!(start.check_run_id, Some(failed_open.id.to_string()));
    drop(conn);

    // Completed checks are left alone for good.
    let before = w.server.requests().len();
    tokio::time::sleep(w.cfg.recheck).await;
    w.drain().await;
    assert_eq!(w.server.requests().len(), before);
    assert!(
        w.server.violations().is_empty(),
        "{:#?}",
        w.server.violations()
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_provider_fault_is_recorded_and_retried(pool: PgPool) {
    use picket_test_support::github::{Fault, FaultKind};
    let w = world(pool).await;
    let scan = w.push(HEAD_1).await;
    w.server.inject(Fault {
        path_contains: "/check-runs".into(),
        kind: FaultKind::ServerError { status: 503 },
        times: 3,
    });
    w.drain().await;
    let org: uuid::Uuid = sqlx::query_scalar("SELECT org_id FROM scans WHERE id = $1")
        .bind(scan.0)
        .fetch_one(w.db.pool())
        .await
        .unwrap();
    let record = pr_checks::get(w.db.pool(), org.into(), scan)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.shown, None);
    assert_eq!(record.failures, 1);
    assert_eq!(record.last_error.as_deref(), Some("provider_unavailable"));
    // After the backoff the check is created.
    sqlx::query("UPDATE pr_checks SET next_attempt_at = now() WHERE scan_id = $1")
        .bind(scan.0)
        .execute(w.db.pool())
        .await
        .unwrap();
    w.drain().await;
    assert_eq!(w.check_of(HEAD_1).status, "queued");
    assert!(
        w.server.violations().is_empty(),
        "{:#?}",
        w.server.violations()
    );
}

/// The running loop follows a scan at once, woken by PostgreSQL's notifications, not by its
/// clock: with an idle poll and a recheck of a minute each, the check is created when the scan
/// is queued, goes in progress when it runs, and turns neutral when a push supersedes it.
#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_running_loop_is_woken_by_the_scans_moves(pool: PgPool) {
    let mut w = world(pool).await;
    w.cfg.idle = Duration::from_secs(60);
    w.cfg.recheck = Duration::from_secs(60);
    let stop = tokio_util::sync::CancellationToken::new();
    let loop_task = tokio::spawn(picket_scheduler::pr_checks::run(
        w.db.clone(),
        Arc::clone(&w.registry),
        w.cfg.clone(),
        stop.clone(),
    ));
    // The loop looks once at start, finds nothing, and waits its minute.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = |w: &World, head: &str| {
        w.server
            .check_runs(w.repo_id)
            .into_iter()
            .find(|c| c.head_sha == head)
            .map(|c| (c.status, c.conclusion))
    };
    let until =
        |what: &'static str, want: (&'static str, Option<&'static str>), head: &'static str| {
            let w = &w;
            async move {
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                loop {
                    let now = status(w, head);
                    if now.as_ref().map(|(s, c)| (s.as_str(), c.as_deref())) == Some(want) {
                        return;
                    }
                    assert!(std::time::Instant::now() < deadline, "{what}: {now:?}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
    w.push(HEAD_1).await;
    until("created when queued", ("queued", None), HEAD_1).await;
    let claimed = queue::claim(w.db.pool(), "test", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    queue::advance(w.db.pool(), &claimed.lease, ScanState::Running, None)
        .await
        .unwrap();
    until("in progress when running", ("in_progress", None), HEAD_1).await;
    w.push(HEAD_2).await;
    until(
        "neutral when superseded",
        ("completed", Some("neutral")),
        HEAD_1,
    )
    .await;
    until("the new head's, queued", ("queued", None), HEAD_2).await;
    stop.cancel();
    loop_task.await.unwrap();
    assert!(
        w.server.violations().is_empty(),
        "{:#?}",
        w.server.violations()
    );
}
