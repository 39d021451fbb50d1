//! Small builders for rows the tests need, written with plain SQL so these tests depend only on
//! the schema and the functions under test.

use picket_core::{OrgId, ProjectId, ScanKind, ScanTrigger};
use picket_db::scans::{self, NewScan};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

pub async fn org(pool: &PgPool, slug: &str, max_concurrent: i32) -> OrgId {
    let id = OrgId::new();
    sqlx::query("INSERT INTO orgs (id, slug, name, max_concurrent_scans) VALUES ($1, $2, $2, $3)")
        .bind(id.0)
        .bind(slug)
        .bind(max_concurrent)
        .execute(pool)
        .await
        .unwrap();
    id
}

/// A connection for `org` (credentials are opaque bytes here).
pub async fn connection(pool: &PgPool, org: OrgId) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO vcs_connections (id, org_id, provider, name, credentials)
         VALUES ($1, $2, 'git', $3, '\\x00')",
    )
    .bind(id)
    .bind(org.0)
    .bind(format!("conn-{id}"))
    .execute(pool)
    .await
    .unwrap();
    id
}

/// `n` projects of `org`, with the given weekly slot and creation time.
pub async fn projects(
    pool: &PgPool,
    org: OrgId,
    n: i32,
    weekday: i16,
    time_of_day: time::Time,
    created_at: OffsetDateTime,
) -> Vec<ProjectId> {
    let conn = connection(pool, org).await;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO projects (id, org_id, connection_id, provider_repo_id, full_name, clone_url,
                               default_branch, weekly_weekday, weekly_time, created_at)
         SELECT gen_random_uuid(), $1, $2, 'repo-' || i, 'org/repo-' || i,
                'https://git.invalid/org/repo-' || i, 'main', $4, $5, $6
         FROM generate_series(1, $3) AS i
         RETURNING id",
    )
    .bind(org.0)
    .bind(conn)
    .bind(n)
    .bind(weekday)
    .bind(time_of_day)
    .bind(created_at)
    .fetch_all(pool)
    .await
    .unwrap();
    ids.into_iter().map(ProjectId).collect()
}

pub async fn project(pool: &PgPool, org: OrgId) -> ProjectId {
    projects(
        pool,
        org,
        1,
        0,
        time::Time::MIDNIGHT,
        OffsetDateTime::now_utc(),
    )
    .await[0]
}

/// Queues a scan; diff scans get a distinct PR number each so none coalesce.
pub async fn scan(
    pool: &PgPool,
    org: OrgId,
    project: ProjectId,
    kind: ScanKind,
    trigger: ScanTrigger,
) -> picket_core::ScanId {
    let mut new = NewScan::full(org, project, trigger, "main");
    if kind == ScanKind::Diff {
        new.kind = ScanKind::Diff;
        new.base_ref = Some("main".into());
        new.git_ref = Some("feature".into());
        new.pr_number = Some(rand_pr());
    }
    scans::enqueue(pool, &new).await.unwrap().scan.id
}

fn rand_pr() -> i32 {
    use std::sync::atomic::{AtomicI32, Ordering};
    static NEXT: AtomicI32 = AtomicI32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `n` queued diff scans of `project`, inserted in one statement.
pub async fn many_diff_scans(pool: &PgPool, org: OrgId, project: ProjectId, n: i32) {
    sqlx::query(
        "INSERT INTO scans (id, org_id, project_id, kind, trigger, priority, max_attempts, git_ref,
                            base_ref, pr_number, queued_at)
         SELECT gen_random_uuid(), $1, $2, 'diff', 'pull_request', 0, 1, 'feature', 'main', i,
                now() + i * interval '1 microsecond'
         FROM generate_series(1, $3) AS i",
    )
    .bind(org.0)
    .bind(project.0)
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
}

pub async fn state_counts(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT state::text, count(*) FROM scans GROUP BY 1 ORDER BY 1")
        .fetch_all(pool)
        .await
        .unwrap()
}
