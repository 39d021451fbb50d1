//! Wake-ups: the triggers raise them when a transaction that queues or moves a scan commits,
//! unless the transaction left them to its code (`wake::BEGIN_AFTER_COMMIT`), which then sends what
//! the outcome owes.

use crate::reconcile::{connection_of, head, HEAD_1, HEAD_2};
use picket_db::webhooks::{self, PullRequestOutcome};
use picket_db::{pr_checks, queue, wake};
use sqlx::postgres::{PgListener, PgNotification};
use sqlx::PgPool;
use std::time::Duration;

async fn next(listener: &mut PgListener) -> (String, String) {
    let n: PgNotification = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("a notification within 10 s")
        .unwrap();
    (n.channel().to_owned(), n.payload().to_owned())
}

/// Notifications reach a listener in the order their transactions committed: a marker sent
/// after a commit comes next exactly when that commit raised nothing.
async fn nothing_before_marker(pool: &PgPool, listener: &mut PgListener) {
    sqlx::query("SELECT pg_notify($1, 'marker')")
        .bind(queue::CHANNEL)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        next(listener).await,
        (queue::CHANNEL.to_owned(), "marker".to_owned())
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_transaction_that_defers_its_wake_ups_raises_none_until_they_are_sent(pool: PgPool) {
    let connection = connection_of(&pool).await;
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener
        .listen_all([queue::CHANNEL, pr_checks::CHANNEL])
        .await
        .unwrap();

    // Not deferred: the insert's trigger raises the queue's channel at commit.
    let mut tx = pool.begin().await.unwrap();
    let first = webhooks::queue_pull_request(&mut tx, &head(connection, HEAD_1), "test")
        .await
        .unwrap();
    let PullRequestOutcome::Queued { scan: first, .. } = first else {
        panic!("{first:?}")
    };
    tx.commit().await.unwrap();
    assert_eq!(
        next(&mut listener).await,
        (queue::CHANNEL.to_owned(), String::new())
    );
    nothing_before_marker(&pool, &mut listener).await;

    // Deferred: the new head is queued and supersedes the first, and nothing is raised...
    let mut tx = pool.begin_with(wake::BEGIN_AFTER_COMMIT).await.unwrap();
    let second = webhooks::queue_pull_request(&mut tx, &head(connection, HEAD_2), "test")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    nothing_before_marker(&pool, &mut listener).await;
    let owed = second.wake_ups();
    let PullRequestOutcome::Queued { scan: second, .. } = second else {
        panic!("{second:?}")
    };
    assert_eq!(
        owed,
        wake::WakeUps {
            scan_queued: true,
            pr_checks: vec![first],
        }
    );
    // ...until the outcome's wake-ups are sent.
    wake::send(&pool, &owed).await.unwrap();
    assert_eq!(
        next(&mut listener).await,
        (queue::CHANNEL.to_owned(), String::new())
    );
    assert_eq!(
        next(&mut listener).await,
        (pr_checks::CHANNEL.to_owned(), first.to_string())
    );
    nothing_before_marker(&pool, &mut listener).await;

    // The setting ends with its transaction: the pooled connection notifies again.
    let mut conn = pool.acquire().await.unwrap();
    let tx = sqlx::Connection::begin_with(&mut *conn, wake::BEGIN_AFTER_COMMIT)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("UPDATE scans SET state = 'cancelled', finished_at = now() WHERE state = 'queued'")
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        next(&mut listener).await,
        (pr_checks::CHANNEL.to_owned(), second.to_string())
    );
}
