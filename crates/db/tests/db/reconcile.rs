//! The reconcile sweep's side of the database: one scan per pull-request head whichever of a
//! webhook and the sweep comes first, a stale listing never supersedes a newer head, and turns
//! taken once, oldest first, and given back.

use crate::fixtures;
use picket_core::{ConnectionId, ScanId};
use picket_db::reconcile;
use picket_db::webhooks::{self, PullRequestHead, PullRequestOutcome, SweptHead};
use sqlx::PgPool;
use uuid::Uuid;

pub(crate) const HEAD_1: &str = "1111111111111111111111111111111111111111";
pub(crate) const HEAD_2: &str = "2222222222222222222222222222222222222222";

pub(crate) fn head(connection: ConnectionId, sha: &str) -> PullRequestHead<'_> {
    PullRequestHead {
        connection_id: connection,
        repo_id: "repo-1",
        installation_id: Some("42"),
        number: 7,
        git_ref: "refs/pull/7/head",
        head_sha: sha,
        base_ref: "main",
        base_sha: None,
        draft: false,
        updated_at: None,
    }
}

pub(crate) async fn connection_of(pool: &PgPool) -> ConnectionId {
    let org = fixtures::org(pool, "acme", 4).await;
    let project = fixtures::project(pool, org).await;
    let id: Uuid = sqlx::query_scalar("SELECT connection_id FROM projects WHERE id = $1")
        .bind(project.0)
        .fetch_one(pool)
        .await
        .unwrap();
    ConnectionId(id)
}

async fn webhook(pool: &PgPool, connection: ConnectionId, sha: &str) -> PullRequestOutcome {
    let mut tx = pool.begin().await.unwrap();
    let out = webhooks::queue_pull_request(&mut tx, &head(connection, sha), "test")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    out
}

async fn sweep(
    pool: &PgPool,
    connection: ConnectionId,
    sha: &str,
    listed_at: time::OffsetDateTime,
) -> SweptHead {
    let mut tx = pool.begin().await.unwrap();
    let out = webhooks::sweep_pull_request(&mut tx, &head(connection, sha), listed_at, "reconcile")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    out
}

async fn trigger_and_state(pool: &PgPool, scan: ScanId) -> (String, String) {
    sqlx::query_as("SELECT trigger::text, state::text FROM scans WHERE id = $1")
        .bind(scan.0)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn db_now(pool: &PgPool) -> time::OffsetDateTime {
    sqlx::query_scalar("SELECT now()")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_head_is_scanned_once_whether_the_webhook_or_the_sweep_came_first(pool: PgPool) {
    let connection = connection_of(&pool).await;
    // The sweep first: queued with its own trigger; the late webhook finds it.
    let listed_at = db_now(&pool).await;
    let SweptHead::Outcome(PullRequestOutcome::Queued { scan, .. }) =
        sweep(&pool, connection, HEAD_1, listed_at).await
    else {
        panic!("the sweep should queue the head")
    };
    assert_eq!(
        trigger_and_state(&pool, scan).await,
        ("reconcile".into(), "queued".into())
    );
    assert!(matches!(
        webhook(&pool, connection, HEAD_1).await,
        PullRequestOutcome::DuplicateHead { scan: s, .. } if s == scan
    ));
    // The webhook first: a later sweep finds its scan.
    let PullRequestOutcome::Queued {
        scan: second,
        superseded,
        ..
    } = webhook(&pool, connection, HEAD_2).await
    else {
        panic!("a new head should be queued")
    };
    assert_eq!(superseded, [scan]);
    let listed_at = db_now(&pool).await;
    assert!(matches!(
        sweep(&pool, connection, HEAD_2, listed_at).await,
        SweptHead::Outcome(PullRequestOutcome::DuplicateHead { scan: s, .. }) if s == second
    ));
    let scans: i64 = sqlx::query_scalar("SELECT count(*) FROM scans WHERE kind = 'diff'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(scans, 2);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_listing_older_than_the_prs_last_scan_supersedes_nothing(pool: PgPool) {
    let connection = connection_of(&pool).await;
    // The sweep asked GitHub for the PRs (seeing HEAD_1, never scanned); meanwhile a push of
    // HEAD_2 arrived by webhook.
    let listed_at = db_now(&pool).await;
    let PullRequestOutcome::Queued { scan: newer, .. } = webhook(&pool, connection, HEAD_2).await
    else {
        panic!("queued")
    };
    assert!(matches!(
        sweep(&pool, connection, HEAD_1, listed_at).await,
        SweptHead::Stale { newer: n, .. } if n == newer
    ));
    assert_eq!(
        trigger_and_state(&pool, newer).await,
        ("pull_request".into(), "queued".into())
    );
    let scans: i64 = sqlx::query_scalar("SELECT count(*) FROM scans WHERE kind = 'diff'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(scans, 1);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn turns_are_taken_once_oldest_first_and_given_back(pool: PgPool) {
    let org = fixtures::org(&pool, "acme", 4).await;
    let projects = fixtures::projects(
        &pool,
        org,
        3,
        0,
        time::Time::MIDNIGHT,
        time::OffsetDateTime::now_utc(),
    )
    .await;
    // The sweep covers GitHub projects reached through an installation, enabled, PR scans on.
    sqlx::query("UPDATE vcs_connections SET provider = 'github'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE projects SET provider_installation_id = '42'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE projects SET diff_scans_enabled = false WHERE id = $1")
        .bind(projects[2].0)
        .execute(&pool)
        .await
        .unwrap();
    let listed = reconcile::projects(&pool).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|p| p.reconciled_at.is_none()));
    let (first, second) = (&listed[0], &listed[1]);

    let taken = reconcile::take_turn(&pool, first.project_id, None)
        .await
        .unwrap()
        .expect("the first turn is ours");
    // Another sweep that saw the same turn does not take it again.
    assert_eq!(
        reconcile::take_turn(&pool, first.project_id, None)
            .await
            .unwrap(),
        None
    );
    // The project swept goes last.
    let order: Vec<_> = reconcile::projects(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.project_id)
        .collect();
    assert_eq!(order, [second.project_id, first.project_id]);
    // Given back (its listing did not finish): first again.
    reconcile::give_back_turn(&pool, first.project_id, taken, None)
        .await
        .unwrap();
    let order: Vec<_> = reconcile::projects(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.project_id)
        .collect();
    assert_eq!(order[0], first.project_id);
    // A disabled project has no turn.
    sqlx::query(
        "UPDATE projects SET disabled_reason = 'installation_suspended', disabled_at = now()
         WHERE id = $1",
    )
    .bind(second.project_id.0)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        reconcile::take_turn(&pool, second.project_id, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(reconcile::projects(&pool).await.unwrap().len(), 1);
}
