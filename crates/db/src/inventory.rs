//! What each connection can see: the repositories of its last full listing
//! (`connection_repositories`), so the Projects page's "Not scanning" tab can list the ones Picket
//! does not scan without calling the provider on every page view.
//!
//! [`replace`] stores a whole listing (and when it was read): after adding repositories (which
//! reads the whole listing first), on the tab's Refresh, and on the scheduler's periodic refresh.
//! [`record_seen`] adds or updates the repositories one page of the live listing showed, without
//! dropping the others. [`unadded`] reads the inventory minus the org's projects.

use crate::types::Pg;
use crate::Result;
use picket_core::{ConnectionId, OrgId, Provider};
use picket_vcs::provider::Repository;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

/// Column arrays for `UNNEST`.
struct Columns<'a> {
    ids: Vec<&'a str>,
    names: Vec<&'a str>,
    urls: Vec<&'a str>,
    branches: Vec<&'a str>,
    private: Vec<bool>,
    archived: Vec<bool>,
    installations: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn of(repos: &[&'a Repository]) -> Self {
        Columns {
            ids: repos.iter().map(|r| r.id.as_str()).collect(),
            names: repos.iter().map(|r| r.full_name.as_str()).collect(),
            urls: repos.iter().map(|r| r.clone_url.as_str()).collect(),
            // An empty repository has no default branch yet: the remote's HEAD, as projects do.
            branches: repos
                .iter()
                .map(|r| match r.default_branch.as_str() {
                    "" => "HEAD",
                    b => b,
                })
                .collect(),
            private: repos.iter().map(|r| r.private).collect(),
            archived: repos.iter().map(|r| r.archived).collect(),
            installations: repos.iter().map(|r| r.installation_id.as_deref()).collect(),
        }
    }
}

/// Adds or updates `repos` (as the provider lists them) in the connection's inventory (the org's connection only: another
/// org's connection id writes nothing). A repository listed twice keeps its last row.
pub async fn record_seen(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    connection: ConnectionId,
    repos: &[Repository],
) -> Result<()> {
    let mut last: std::collections::HashMap<&str, &Repository> =
        std::collections::HashMap::with_capacity(repos.len());
    for r in repos {
        last.insert(r.id.as_str(), r);
    }
    let unique: Vec<&Repository> = last.into_values().collect();
    let c = Columns::of(&unique);
    sqlx::query!(
        r#"
        INSERT INTO connection_repositories (connection_id, org_id, provider_repo_id, full_name,
                                             clone_url, default_branch, private, archived,
                                             installation_id, seen_at)
        SELECT c.id, c.org_id, r.id, r.full_name, r.clone_url, r.default_branch, r.private,
               r.archived, r.installation_id, now()
        FROM vcs_connections c,
             unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::bool[],
                    $9::text[])
                 AS r(id, full_name, clone_url, default_branch, private, archived, installation_id)
        WHERE c.id = $1 AND c.org_id = $2
        ON CONFLICT (connection_id, provider_repo_id) DO UPDATE
        SET full_name = EXCLUDED.full_name, clone_url = EXCLUDED.clone_url,
            default_branch = EXCLUDED.default_branch, private = EXCLUDED.private,
            archived = EXCLUDED.archived, installation_id = EXCLUDED.installation_id,
            seen_at = EXCLUDED.seen_at
        "#,
        connection.0,
        org.0,
        &c.ids as &[&str],
        &c.names as &[&str],
        &c.urls as &[&str],
        &c.branches as &[&str],
        &c.private,
        &c.archived,
        &c.installations as &[Option<&str>],
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Replaces the connection's inventory with a whole listing and records when it was read, in the
/// caller's transaction: repositories not in `repos` are dropped from it.
/// [`crate::DbError::NotFound`] when the connection is not the org's (nothing is written).
pub async fn replace(
    conn: &mut PgConnection,
    org: OrgId,
    connection: ConnectionId,
    repos: &[Repository],
) -> Result<()> {
    let listed = sqlx::query_scalar!(
        r#"
        UPDATE vcs_connections SET repositories_listed_at = now()
        WHERE id = $1 AND org_id = $2
        RETURNING id
        "#,
        connection.0,
        org.0
    )
    .fetch_optional(&mut *conn)
    .await?;
    if listed.is_none() {
        return Err(crate::DbError::NotFound);
    }
    let ids: Vec<&str> = repos.iter().map(|r| r.id.as_str()).collect();
    sqlx::query!(
        r#"
        DELETE FROM connection_repositories
        WHERE connection_id = $1 AND provider_repo_id <> ALL($2::text[])
        "#,
        connection.0,
        &ids as &[&str],
    )
    .execute(&mut *conn)
    .await?;
    record_seen(&mut *conn, org, connection, repos).await
}

/// Drops repositories from the connection's inventory (an installation lost them).
pub async fn forget(
    ex: impl PgExecutor<'_>,
    connection: ConnectionId,
    provider_repo_ids: &[String],
) -> Result<u64> {
    let done = sqlx::query!(
        r#"
        DELETE FROM connection_repositories
        WHERE connection_id = $1 AND provider_repo_id = ANY($2)
        "#,
        connection.0,
        provider_repo_ids,
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Which not-added repositories to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnaddedMatch {
    /// Case-insensitive substring of the full name.
    pub name: Option<String>,
    pub provider: Option<Provider>,
}

/// A repository a connection sees that is not a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnaddedRepository {
    pub connection_id: ConnectionId,
    pub connection_name: String,
    pub provider: Provider,
    pub provider_repo_id: String,
    pub full_name: String,
    pub default_branch: String,
    pub private: bool,
    pub archived: bool,
    pub seen_at: OffsetDateTime,
}

/// A page of [`unadded`], with the count of every match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnaddedPage {
    pub rows: Vec<UnaddedRepository>,
    pub total: i64,
}

/// The org's inventoried repositories that are not projects of their connection, by full name,
/// `limit` (1-1000) from `offset`.
pub async fn unadded(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    filter: &UnaddedMatch,
    offset: i64,
    limit: i64,
) -> Result<UnaddedPage> {
    let rows = sqlx::query!(
        r#"
        SELECT r.connection_id, c.name AS connection_name,
               c.provider AS "provider: Pg<Provider>", r.provider_repo_id, r.full_name,
               r.default_branch, r.private, r.archived, r.seen_at,
               count(*) OVER () AS "total!"
        FROM connection_repositories r
        JOIN vcs_connections c ON c.id = r.connection_id
        WHERE r.org_id = $1
          AND NOT EXISTS (SELECT 1 FROM projects p
                          WHERE p.connection_id = r.connection_id
                            AND p.provider_repo_id = r.provider_repo_id)
          AND ($2::text IS NULL OR strpos(lower(r.full_name), lower($2)) > 0)
          AND ($3::text IS NULL OR c.provider = $3::text::vcs_provider)
        ORDER BY lower(r.full_name), r.connection_id, r.provider_repo_id
        OFFSET $4 LIMIT $5
        "#,
        org.0,
        filter.name,
        filter.provider.map(Provider::as_str),
        offset.max(0),
        limit.clamp(1, 1000),
    )
    .fetch_all(ex)
    .await?;
    let total = rows.first().map_or(0, |r| r.total);
    Ok(UnaddedPage {
        total,
        rows: rows
            .into_iter()
            .map(|r| UnaddedRepository {
                connection_id: r.connection_id.into(),
                connection_name: r.connection_name,
                provider: r.provider.0,
                provider_repo_id: r.provider_repo_id,
                full_name: r.full_name,
                default_branch: r.default_branch,
                private: r.private,
                archived: r.archived,
                seen_at: r.seen_at,
            })
            .collect(),
    })
}

/// Connections whose whole listing is older than `age` (or was never read), oldest first, at
/// most `limit`: what the scheduler's periodic refresh reads next. Only connections holding
/// credentials, and not plain git (the others cannot be listed).
pub async fn stale(
    ex: impl PgExecutor<'_>,
    age: std::time::Duration,
    limit: i64,
) -> Result<Vec<(OrgId, ConnectionId)>> {
    let secs = age.as_secs_f64();
    let rows = sqlx::query!(
        r#"
        SELECT org_id, id FROM vcs_connections
        WHERE credentials IS NOT NULL AND provider <> 'git'
          AND (repositories_listed_at IS NULL
               OR repositories_listed_at < now() - make_interval(secs => $1))
        ORDER BY repositories_listed_at NULLS FIRST, id
        LIMIT $2
        "#,
        secs,
        limit
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.org_id.into(), r.id.into()))
        .collect())
}
