use crate::fixtures;
use picket_core::{ScanKind, ScanState, ScanTrigger};
use picket_db::queue::{self, FailOutcome, Waker};
use picket_db::scans;
use picket_db::DbError;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(60);

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn eight_concurrent_claimers_take_each_of_2000_scans_exactly_once(pool: PgPool) {
    // Two orgs, each capped at 8, so the cap never idles a claimer but the cap path still runs.
    let mut projects = Vec::new();
    for slug in ["a", "b"] {
        let org = fixtures::org(&pool, slug, 8).await;
        let project = fixtures::project(&pool, org).await;
        fixtures::many_diff_scans(&pool, org, project, 1000).await;
        projects.push(project);
    }
    let mut tasks = Vec::new();
    for c in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("claimer-{c}");
            let mut mine = Vec::new();
            while let Some(claimed) = queue::claim(&pool, &owner, LEASE).await.unwrap() {
                let lease = &claimed.lease;
                queue::advance(&pool, lease, ScanState::Running, None)
                    .await
                    .unwrap();
                queue::advance(&pool, lease, ScanState::Reporting, None)
                    .await
                    .unwrap();
                queue::advance(&pool, lease, ScanState::Succeeded, None)
                    .await
                    .unwrap();
                mine.push(claimed.scan.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 2000, "every scan claimed");
    assert_eq!(unique.len(), 2000, "no scan claimed twice");
    assert_eq!(
        fixtures::state_counts(&pool).await,
        vec![("succeeded".into(), 2000)]
    );
    // Each scan's audit trail is exactly queued→claimed→running→reporting→succeeded.
    let bad: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT scan_id, string_agg(to_state::text, ',' ORDER BY id) AS t
                               FROM scan_events GROUP BY scan_id) e
         WHERE t <> 'claimed,running,reporting,succeeded'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(bad, 0);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_per_org_cap_holds_under_concurrent_claimers(pool: PgPool) {
    let capped = fixtures::org(&pool, "capped", 3).await;
    let project = fixtures::project(&pool, capped).await;
    fixtures::many_diff_scans(&pool, capped, project, 100).await;
    // Eight claimers race; nobody finishes a scan, so exactly three claims can succeed.
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for c in 0..8 {
        let (pool, barrier) = (pool.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut n = 0;
            while queue::claim(&pool, &format!("c{c}"), LEASE)
                .await
                .unwrap()
                .is_some()
            {
                n += 1;
            }
            n
        }));
    }
    let mut claimed = 0;
    for t in tasks {
        claimed += t.await.unwrap();
    }
    assert_eq!(claimed, 3);
    let mut slots: Vec<i16> =
        sqlx::query_scalar("SELECT slot FROM scans WHERE state = 'claimed' ORDER BY slot")
            .fetch_all(&pool)
            .await
            .unwrap();
    slots.dedup();
    assert_eq!(slots, vec![0, 1, 2], "three distinct slots below the cap");

    // Finishing one frees its slot for the next claim; the cap still holds.
    let one: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM scans WHERE state = 'claimed' LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    scans::cancel(&mut conn, capped, one.into(), "test")
        .await
        .unwrap();
    assert!(queue::claim(&pool, "next", LEASE).await.unwrap().is_some());
    assert!(queue::claim(&pool, "next", LEASE).await.unwrap().is_none());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_lowered_cap_applies_to_new_claims(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let project = fixtures::project(&pool, org).await;
    fixtures::many_diff_scans(&pool, org, project, 10).await;
    for _ in 0..4 {
        queue::claim(&pool, "w", LEASE).await.unwrap().unwrap();
    }
    sqlx::query("UPDATE orgs SET max_concurrent_scans = 2")
        .execute(&pool)
        .await
        .unwrap();
    // Four still run; no new claim until fewer than two are active.
    assert!(queue::claim(&pool, "w", LEASE).await.unwrap().is_none());
    sqlx::query(
        "UPDATE scans SET state = 'succeeded', lease_owner = NULL, lease_token = NULL,
                lease_expires_at = NULL
         WHERE id IN (SELECT id FROM scans WHERE state = 'claimed' ORDER BY slot LIMIT 3)",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(queue::claim(&pool, "w", LEASE).await.unwrap().is_some());
    assert!(queue::claim(&pool, "w", LEASE).await.unwrap().is_none());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn claims_follow_priority_then_fairness_across_orgs(pool: PgPool) {
    let a = fixtures::org(&pool, "a", 10).await;
    let b = fixtures::org(&pool, "b", 10).await;
    let pa: Vec<_> = fixtures::projects(
        &pool,
        a,
        4,
        0,
        time::Time::MIDNIGHT,
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let pb = fixtures::project(&pool, b).await;
    let weekly = fixtures::scan(&pool, a, pa[0], ScanKind::Full, ScanTrigger::Weekly).await;
    let initial = fixtures::scan(&pool, a, pa[1], ScanKind::Full, ScanTrigger::Initial).await;
    let bulk_a = fixtures::scan(&pool, a, pa[2], ScanKind::Full, ScanTrigger::Bulk).await;
    let bulk_a2 = fixtures::scan(&pool, a, pa[3], ScanKind::Full, ScanTrigger::Manual).await;
    let bulk_b = fixtures::scan(&pool, b, pb, ScanKind::Full, ScanTrigger::Bulk).await;
    let pr = fixtures::scan(&pool, a, pa[0], ScanKind::Diff, ScanTrigger::PullRequest).await;

    let mut order = Vec::new();
    while let Some(c) = queue::claim(&pool, "t", LEASE).await.unwrap() {
        order.push(c.scan.id);
    }
    // PR first; then the manual-priority scans, alternating orgs (a has one active after its
    // first, so b's goes next although it is younger); then initial; then weekly.
    assert_eq!(order, vec![pr, bulk_b, bulk_a, bulk_a2, initial, weekly]);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn an_expired_lease_is_reclaimed_and_the_old_holder_is_fenced_out(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let project = fixtures::project(&pool, org).await;
    let id = fixtures::scan(&pool, org, project, ScanKind::Full, ScanTrigger::Manual).await;

    let old = queue::claim(&pool, "old", LEASE).await.unwrap().unwrap();
    queue::advance(&pool, &old.lease, ScanState::Running, None)
        .await
        .unwrap();
    // The holder stalls: its lease runs out.
    sqlx::query("UPDATE scans SET lease_expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(id.0)
        .execute(&pool)
        .await
        .unwrap();
    let rescued = queue::rescue_expired(&pool).await.unwrap();
    assert_eq!((rescued.requeued, rescued.failed), (1, 0));

    let new = queue::claim(&pool, "new", LEASE).await.unwrap().unwrap();
    assert_eq!(new.scan.id, id);
    assert_eq!(new.scan.attempt, 2);
    assert_ne!(new.lease.token, old.lease.token);

    // Everything the old holder tries now affects zero rows.
    let before = scans::get(&pool, org, id).await.unwrap();
    assert!(matches!(
        queue::heartbeat(&pool, &old.lease, LEASE).await,
        Err(DbError::LeaseLost)
    ));
    assert!(matches!(
        queue::advance(&pool, &old.lease, ScanState::Reporting, None).await,
        Err(DbError::LeaseLost)
    ));
    assert!(matches!(
        queue::advance(&pool, &old.lease, ScanState::Failed, Some(("x", "y"))).await,
        Err(DbError::LeaseLost)
    ));
    assert!(matches!(
        queue::fail(&pool, &old.lease, "x", "y", Duration::ZERO).await,
        Err(DbError::LeaseLost)
    ));
    assert!(matches!(
        queue::release(&pool, &old.lease, "bye").await,
        Err(DbError::LeaseLost)
    ));
    assert_eq!(scans::get(&pool, org, id).await.unwrap(), before);

    // The new holder is unaffected.
    queue::heartbeat(&pool, &new.lease, LEASE).await.unwrap();
    queue::advance(&pool, &new.lease, ScanState::Running, None)
        .await
        .unwrap();
    queue::advance(&pool, &new.lease, ScanState::Reporting, None)
        .await
        .unwrap();
    queue::advance(&pool, &new.lease, ScanState::Succeeded, None)
        .await
        .unwrap();
    let done = scans::get(&pool, org, id).await.unwrap();
    assert_eq!(done.state, ScanState::Succeeded);
    assert!(done.lease_owner.is_none() && done.finished_at.is_some());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_rescuer_requeues_fails_or_leaves_alone_by_lease_and_attempts(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 10).await;
    let p = fixtures::projects(
        &pool,
        org,
        4,
        0,
        time::Time::MIDNIGHT,
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let stale = fixtures::scan(&pool, org, p[0], ScanKind::Full, ScanTrigger::Manual).await;
    let exhausted = fixtures::scan(&pool, org, p[1], ScanKind::Full, ScanTrigger::Manual).await;
    let fresh = fixtures::scan(&pool, org, p[2], ScanKind::Full, ScanTrigger::Manual).await;
    let diff = fixtures::scan(&pool, org, p[3], ScanKind::Diff, ScanTrigger::PullRequest).await;
    // Inject rows as a crashed scheduler would leave them.
    sqlx::query(
        "UPDATE scans SET state = 'running', lease_owner = 'dead', lease_token = gen_random_uuid(),
                slot = (SELECT count(*) FROM scans o WHERE o.id < scans.id),
                heartbeat_at = now() - interval '10 minutes',
                lease_expires_at = CASE WHEN id = $3 THEN now() + interval '1 minute'
                                        ELSE now() - interval '5 minutes' END,
                attempt = CASE WHEN id = $2 THEN 2 ELSE 1 END
         WHERE id = ANY($1)",
    )
    .bind(vec![stale.0, exhausted.0, fresh.0, diff.0])
    .bind(exhausted.0)
    .bind(fresh.0)
    .execute(&pool)
    .await
    .unwrap();

    let r = queue::rescue_expired(&pool).await.unwrap();
    assert_eq!((r.requeued, r.failed), (1, 2));
    let get = |id| {
        let pool = pool.clone();
        async move { scans::get(&pool, org, id).await.unwrap() }
    };
    let s = get(stale).await;
    assert_eq!((s.state, s.attempt), (ScanState::Queued, 2));
    assert_eq!(s.error_code.as_deref(), Some("lease_expired"));
    let e = get(exhausted).await;
    assert_eq!((e.state, e.attempt), (ScanState::Failed, 2));
    let d = get(diff).await;
    assert_eq!(d.state, ScanState::Failed, "diff scans are not retried");
    let f = get(fresh).await;
    assert_eq!(
        f.state,
        ScanState::Running,
        "a lease inside its horizon is left alone"
    );
    // A second pass finds nothing more.
    assert_eq!(
        queue::rescue_expired(&pool).await.unwrap(),
        Default::default()
    );
    let events = scans::events(&pool, org, stale).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.from_state, last.to_state),
        (Some(ScanState::Running), ScanState::Queued)
    );
    assert_eq!(last.actor, "rescuer");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_failed_full_scan_is_retried_exactly_once(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let p = fixtures::project(&pool, org).await;
    let full = fixtures::scan(&pool, org, p, ScanKind::Full, ScanTrigger::Weekly).await;

    let first = queue::claim(&pool, "w", LEASE).await.unwrap().unwrap();
    queue::advance(&pool, &first.lease, ScanState::Running, None)
        .await
        .unwrap();
    let outcome = queue::fail(
        &pool,
        &first.lease,
        "clone_failed",
        "timeout",
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(outcome, FailOutcome::Retrying { next_attempt: 2 });

    let second = queue::claim(&pool, "w", LEASE).await.unwrap().unwrap();
    assert_eq!((second.scan.id, second.scan.attempt), (full, 2));
    let outcome = queue::fail(
        &pool,
        &second.lease,
        "clone_failed",
        "again",
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(outcome, FailOutcome::Failed);
    assert!(queue::claim(&pool, "w", LEASE).await.unwrap().is_none());
    let s = scans::get(&pool, org, full).await.unwrap();
    assert_eq!(
        (s.state, s.error_code.as_deref()),
        (ScanState::Failed, Some("clone_failed"))
    );

    // A diff scan fails for good at once.
    fixtures::scan(&pool, org, p, ScanKind::Diff, ScanTrigger::PullRequest).await;
    let d = queue::claim(&pool, "w", LEASE).await.unwrap().unwrap();
    assert_eq!(
        queue::fail(&pool, &d.lease, "engine", "boom", Duration::ZERO)
            .await
            .unwrap(),
        FailOutcome::Failed
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_retry_waits_out_its_backoff(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let p = fixtures::project(&pool, org).await;
    fixtures::scan(&pool, org, p, ScanKind::Full, ScanTrigger::Manual).await;
    let c = queue::claim(&pool, "w", LEASE).await.unwrap().unwrap();
    queue::fail(&pool, &c.lease, "x", "y", Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(queue::claim(&pool, "w", LEASE).await.unwrap().is_none());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn illegal_moves_are_refused(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let p = fixtures::project(&pool, org).await;
    let id = fixtures::scan(&pool, org, p, ScanKind::Full, ScanTrigger::Manual).await;
    let c = queue::claim(&pool, "w", LEASE).await.unwrap().unwrap();
    // claimed -> succeeded skips running and reporting: no row matches the allowed sources.
    assert!(queue::advance(&pool, &c.lease, ScanState::Succeeded, None)
        .await
        .is_err());
    assert!(queue::advance(&pool, &c.lease, ScanState::Queued, None)
        .await
        .is_err());
    assert_eq!(
        scans::get(&pool, org, id).await.unwrap().state,
        ScanState::Claimed
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn release_hands_a_scan_back_without_using_an_attempt(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let p = fixtures::project(&pool, org).await;
    let id = fixtures::scan(&pool, org, p, ScanKind::Full, ScanTrigger::Manual).await;
    let c = queue::claim(&pool, "w", LEASE).await.unwrap().unwrap();
    queue::release(&pool, &c.lease, "shutting down")
        .await
        .unwrap();
    let again = queue::claim(&pool, "w2", LEASE).await.unwrap().unwrap();
    assert_eq!((again.scan.id, again.scan.attempt), (id, 1));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn cancelling_a_running_scan_takes_its_lease(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let p = fixtures::project(&pool, org).await;
    let id = fixtures::scan(&pool, org, p, ScanKind::Full, ScanTrigger::Manual).await;
    let c = queue::claim(&pool, "w", LEASE).await.unwrap().unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let out = scans::cancel(&mut conn, org, id, "api:test").await.unwrap();
    assert_eq!(out, scans::CancelOutcome::Cancelled);
    assert!(matches!(
        queue::heartbeat(&pool, &c.lease, LEASE).await,
        Err(DbError::LeaseLost)
    ));
    let again = scans::cancel(&mut conn, org, id, "api:test").await.unwrap();
    assert_eq!(
        again,
        scans::CancelOutcome::AlreadyFinished(ScanState::Cancelled)
    );
    // Another org cannot see it.
    let other = fixtures::org(&pool, "other", 4).await;
    assert!(matches!(
        scans::cancel(&mut conn, other, id, "x").await,
        Err(DbError::NotFound)
    ));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn asking_again_for_a_full_scan_joins_the_queued_one(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let p = fixtures::project(&pool, org).await;
    let weekly = fixtures::scan(&pool, org, p, ScanKind::Full, ScanTrigger::Weekly).await;
    let new = scans::NewScan::full(org, p, ScanTrigger::Manual, "main");
    let joined = scans::enqueue(&pool, &new).await.unwrap();
    assert!(!joined.created);
    assert_eq!(joined.scan.id, weekly);
    assert_eq!(
        joined.scan.priority,
        ScanTrigger::Manual.priority(),
        "priority raised"
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn bulk_enqueue_is_all_or_nothing(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let other = fixtures::org(&pool, "x", 4).await;
    let mine = fixtures::projects(
        &pool,
        org,
        50,
        0,
        time::Time::MIDNIGHT,
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let theirs = fixtures::project(&pool, other).await;
    let mut tx = pool.begin().await.unwrap();
    let mut ids = mine.clone();
    ids.push(theirs);
    let err = scans::enqueue_bulk(&mut tx, org, &ids, ScanTrigger::Bulk, None)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.0, vec![theirs]);
    let ok = scans::enqueue_bulk(&mut tx, org, &mine, ScanTrigger::Bulk, None)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(ok.len(), 50);
    assert!(ok
        .iter()
        .all(|e| e.created && e.scan.state == ScanState::Queued));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM scans")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 50);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_notification_wakes_an_idle_claimer(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let p = fixtures::project(&pool, org).await;
    let mut waker = Waker::new(&pool).await;
    let waiting = tokio::spawn(async move { waker.wait(Duration::from_secs(30)).await });
    // Give the waiter a moment to block; it would otherwise still see the notification.
    tokio::time::sleep(Duration::from_millis(50)).await;
    fixtures::scan(&pool, org, p, ScanKind::Full, ScanTrigger::Manual).await;
    let woken = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(woken, "woken by NOTIFY, not by the 30 s poll");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn drain_handles_every_claimable_scan(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 2).await;
    let p = fixtures::project(&pool, org).await;
    fixtures::many_diff_scans(&pool, org, p, 5).await;
    let handled = queue::drain(&pool, "t", LEASE, |c| {
        let pool = pool.clone();
        async move {
            queue::advance(&pool, &c.lease, ScanState::Running, None).await?;
            queue::advance(&pool, &c.lease, ScanState::Reporting, None).await?;
            queue::advance(&pool, &c.lease, ScanState::Succeeded, None).await
        }
    })
    .await
    .unwrap();
    assert_eq!(handled, 5);
    assert_eq!(
        fixtures::state_counts(&pool).await,
        vec![("succeeded".into(), 5)]
    );
}
