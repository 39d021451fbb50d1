use crate::fixtures;
use picket_core::{ScanState, WeeklySlot};
use picket_db::{queue, schedule};
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use std::time::Duration;
use time::macros::{datetime, time};
use time::OffsetDateTime;

async fn weekly_slots(pool: &PgPool) -> Vec<OffsetDateTime> {
    sqlx::query_scalar("SELECT weekly_slot_at FROM scans WHERE trigger = 'weekly' ORDER BY 1")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_weekly_scan_is_queued_once_per_week_at_the_slot(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    // Added Saturday 2026-11-28; slot Monday 09:30 UTC.
    let added = datetime!(2026-11-28 10:00 UTC);
    fixtures::projects(&pool, org, 1, 0, time!(09:30), added).await;

    assert_eq!(
        schedule::enqueue_due_weekly(&pool, datetime!(2026-11-30 09:29:59 UTC))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        schedule::enqueue_due_weekly(&pool, datetime!(2026-11-30 09:30 UTC))
            .await
            .unwrap(),
        1
    );
    // Ticks later that week, and a restart, queue nothing more.
    assert_eq!(
        schedule::enqueue_due_weekly(&pool, datetime!(2026-11-30 09:31 UTC))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        schedule::enqueue_due_weekly(&pool, datetime!(2026-12-06 23:59 UTC))
            .await
            .unwrap(),
        0
    );
    // The scan runs and fails twice (no retry left): that week is still done.
    for _ in 0..2 {
        let c = queue::claim(&pool, "w", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        queue::fail(&pool, &c.lease, "x", "y", Duration::ZERO)
            .await
            .unwrap();
    }
    assert_eq!(
        schedule::enqueue_due_weekly(&pool, datetime!(2026-12-03 00:00 UTC))
            .await
            .unwrap(),
        0
    );
    // Next week's slot gets its own scan.
    assert_eq!(
        schedule::enqueue_due_weekly(&pool, datetime!(2026-12-07 09:30 UTC))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        weekly_slots(&pool).await,
        vec![
            datetime!(2026-11-30 09:30 UTC),
            datetime!(2026-12-07 09:30 UTC)
        ]
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn concurrent_schedulers_never_queue_a_week_twice(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let added = datetime!(2026-11-01 00:00 UTC);
    fixtures::projects(&pool, org, 200, 2, time!(12:00), added).await;
    let now = datetime!(2026-11-25 12:00 UTC); // a Wednesday, exactly at the slot
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            schedule::enqueue_due_weekly(&pool, now).await.unwrap()
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 200);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM scans")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 200);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_full_scan_in_flight_is_that_weeks_scan(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let p = fixtures::projects(
        &pool,
        org,
        1,
        0,
        time!(09:30),
        datetime!(2026-11-01 00:00 UTC),
    )
    .await[0];
    let initial = fixtures::scan(
        &pool,
        org,
        p,
        picket_core::ScanKind::Full,
        picket_core::ScanTrigger::Initial,
    )
    .await;
    assert_eq!(
        schedule::enqueue_due_weekly(&pool, datetime!(2026-11-30 09:30 UTC))
            .await
            .unwrap(),
        0
    );
    // Let it run to success, then move the slot to an hour before it was claimed: a scan that
    // succeeded after the slot instant is that week's scan.
    let c = queue::claim(&pool, "w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.scan.id, initial);
    for s in [
        ScanState::Running,
        ScanState::Reporting,
        ScanState::Succeeded,
    ] {
        queue::advance(&pool, &c.lease, s, None).await.unwrap();
    }
    let claimed_at: OffsetDateTime =
        sqlx::query_scalar("SELECT claimed_at FROM scans WHERE id = $1")
            .bind(initial.0)
            .fetch_one(&pool)
            .await
            .unwrap();
    let slot = WeeklySlot::of(claimed_at - time::Duration::hours(1));
    sqlx::query("UPDATE projects SET weekly_weekday = $1, weekly_time = $2")
        .bind(slot.weekday_index())
        .bind(slot.time)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        schedule::enqueue_due_weekly(&pool, claimed_at)
            .await
            .unwrap(),
        0,
        "covered by the succeeded scan"
    );
    assert_eq!(
        schedule::enqueue_due_weekly(&pool, claimed_at + time::Duration::weeks(1))
            .await
            .unwrap(),
        1
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn sql_slot_arithmetic_agrees_with_core(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let added = datetime!(2020-01-01 00:00 UTC);
    for _ in 0..200 {
        let slot = WeeklySlot::from_parts(
            rng.gen_range(0..7),
            time::Time::from_hms(
                rng.gen_range(0..24),
                rng.gen_range(0..60),
                rng.gen_range(0..60),
            )
            .unwrap(),
        )
        .unwrap();
        let now =
            datetime!(2026-01-01 00:00 UTC) + time::Duration::seconds(rng.gen_range(0..31_536_000));
        sqlx::query("DELETE FROM scans")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM projects")
            .execute(&pool)
            .await
            .unwrap();
        fixtures::projects(&pool, org, 1, slot.weekday_index(), slot.time, added).await;
        assert_eq!(schedule::enqueue_due_weekly(&pool, now).await.unwrap(), 1);
        assert_eq!(
            weekly_slots(&pool).await,
            vec![slot.due(added, now).unwrap()],
            "slot {slot:?} at {now}"
        );
    }
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn disabled_full_scans_get_no_weekly_scan(pool: PgPool) {
    let org = fixtures::org(&pool, "o", 4).await;
    fixtures::projects(
        &pool,
        org,
        3,
        0,
        time!(00:00),
        datetime!(2026-01-01 00:00 UTC),
    )
    .await;
    sqlx::query("UPDATE projects SET full_scans_enabled = false")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        schedule::enqueue_due_weekly(&pool, datetime!(2026-11-30 00:00 UTC))
            .await
            .unwrap(),
        0
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_moved_slot_waits_for_its_next_occurrence(pool: PgPool) {
    use picket_db::projects::{self, ProjectUpdate};
    let org = fixtures::org(&pool, "o", 4).await;
    // The database's clock stamps the move, so this test runs on the real clock.
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let later = WeeklySlot::of(now + time::Duration::hours(3));
    let id = fixtures::projects(
        &pool,
        org,
        1,
        later.weekday_index(),
        later.time,
        now - time::Duration::days(2),
    )
    .await[0];
    assert_eq!(schedule::enqueue_due_weekly(&pool, now).await.unwrap(), 0);
    // Moved to an hour ago: that occurrence came before the move, so nothing starts now.
    let earlier = WeeklySlot::of(now - time::Duration::hours(1));
    let moved = projects::update(
        &pool,
        org,
        id,
        &ProjectUpdate {
            weekly_slot: Some(earlier),
            ..ProjectUpdate::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(moved.weekly_slot, earlier);
    assert_eq!(schedule::enqueue_due_weekly(&pool, now).await.unwrap(), 0);
    // Its next occurrence is due.
    let next = earlier.next_after(now);
    assert_eq!(schedule::enqueue_due_weekly(&pool, next).await.unwrap(), 1);
    assert_eq!(weekly_slots(&pool).await, vec![next]);
}
