//! Projects: repositories added to Picket, each with its weekly full-scan slot and its last scan.
//!
//! [`add_many`] adds one or many repositories in the caller's transaction: it checks the
//! connections are the org's and the repositories are new, draws each project's weekly slot
//! (domain.md §1), inserts all rows with one `UNNEST` statement and queues every initial full scan
//! with one more ([`scans::enqueue_bulk`] with trigger `initial`). Reads join each project to its
//! latest scan through a `LATERAL` lookup on the `scans_project` index, so a page costs one index
//! probe per project shown, however long the scan history.

use crate::scans::{self, ScanRecord};
use crate::types::Pg;
use crate::{DbError, Result};
use picket_core::{
    ConnectionId, OrgId, ProjectId, ScanId, ScanKind, ScanState, ScanTrigger, TokenId, WeeklySlot,
};
use sqlx::{PgConnection, PgExecutor};
use time::{OffsetDateTime, Time};
use uuid::Uuid;

/// The latest scan of a project (by queue time), as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastScan {
    pub id: ScanId,
    pub state: ScanState,
    pub kind: ScanKind,
    pub queued_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

/// A project as stored, with its latest scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    pub id: ProjectId,
    pub org_id: OrgId,
    pub connection_id: ConnectionId,
    pub provider_repo_id: String,
    pub full_name: String,
    pub clone_url: String,
    pub default_branch: String,
    pub full_scans_enabled: bool,
    pub diff_scans_enabled: bool,
    pub weekly_slot: WeeklySlot,
    /// The project's own path ignores (gitignore syntax, anchored at the repository root).
    pub path_ignores: Vec<String>,
    /// The provider's installation the repository is reached through (GitHub App installation
    /// id), once a webhook named it.
    pub provider_installation_id: Option<String>,
    /// Why the project is disabled (no scan of any kind is queued for it); `None`: enabled.
    pub disabled_reason: Option<DisabledReason>,
    pub created_at: OffsetDateTime,
    pub last_scan: Option<LastScan>,
}

/// Why a project is disabled: its repository is out of Picket's reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisabledReason {
    /// The App was uninstalled (GitHub `installation` deleted).
    InstallationRemoved,
    /// The installation was suspended (GitHub `installation` suspend); undone by unsuspend.
    InstallationSuspended,
    /// The repository was taken out of the installation (`installation_repositories` removed).
    RepositoryRemoved,
}

impl DisabledReason {
    pub const ALL: [DisabledReason; 3] = [
        DisabledReason::InstallationRemoved,
        DisabledReason::InstallationSuspended,
        DisabledReason::RepositoryRemoved,
    ];

    /// The stored (and shown) code.
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::InstallationRemoved => "installation_removed",
            DisabledReason::InstallationSuspended => "installation_suspended",
            DisabledReason::RepositoryRemoved => "repository_removed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| DbError::Corrupt(format!("unknown disabled_reason {s:?}")))
    }
}

struct ProjectRow {
    id: Uuid,
    org_id: Uuid,
    connection_id: Uuid,
    provider_repo_id: String,
    full_name: String,
    clone_url: String,
    default_branch: String,
    full_scans_enabled: bool,
    diff_scans_enabled: bool,
    weekly_weekday: i16,
    weekly_time: Time,
    path_ignores: Vec<String>,
    provider_installation_id: Option<String>,
    disabled_reason: Option<String>,
    created_at: OffsetDateTime,
    last_scan_id: Option<Uuid>,
    last_scan_state: Option<Pg<ScanState>>,
    last_scan_kind: Option<Pg<ScanKind>>,
    last_scan_queued_at: Option<OffsetDateTime>,
    last_scan_finished_at: Option<OffsetDateTime>,
}

impl TryFrom<ProjectRow> for ProjectRecord {
    type Error = DbError;
    fn try_from(r: ProjectRow) -> Result<Self> {
        let weekly_slot =
            WeeklySlot::from_parts(r.weekly_weekday, r.weekly_time).ok_or_else(|| {
                DbError::Corrupt(format!("project {} has weekday {}", r.id, r.weekly_weekday))
            })?;
        let last_scan = match (
            r.last_scan_id,
            r.last_scan_state,
            r.last_scan_kind,
            r.last_scan_queued_at,
        ) {
            (Some(id), Some(state), Some(kind), Some(queued_at)) => Some(LastScan {
                id: id.into(),
                state: state.0,
                kind: kind.0,
                queued_at,
                finished_at: r.last_scan_finished_at,
            }),
            _ => None,
        };
        Ok(ProjectRecord {
            id: r.id.into(),
            org_id: r.org_id.into(),
            connection_id: r.connection_id.into(),
            provider_repo_id: r.provider_repo_id,
            full_name: r.full_name,
            clone_url: r.clone_url,
            default_branch: r.default_branch,
            full_scans_enabled: r.full_scans_enabled,
            diff_scans_enabled: r.diff_scans_enabled,
            weekly_slot,
            path_ignores: r.path_ignores,
            provider_installation_id: r.provider_installation_id,
            disabled_reason: r
                .disabled_reason
                .as_deref()
                .map(DisabledReason::parse)
                .transpose()?,
            created_at: r.created_at,
            last_scan,
        })
    }
}

fn records(rows: Vec<ProjectRow>) -> Result<Vec<ProjectRecord>> {
    rows.into_iter().map(ProjectRecord::try_from).collect()
}

/// A repository to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProject {
    pub connection_id: ConnectionId,
    pub provider_repo_id: String,
    pub full_name: String,
    pub clone_url: String,
    pub default_branch: String,
}

/// A repository that is already a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRepo {
    pub connection_id: ConnectionId,
    pub provider_repo_id: String,
    pub project_id: ProjectId,
    pub full_name: String,
}

/// Why [`add_many`] added nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddRefused {
    /// Connections that are not the org's (or do not exist).
    #[error("{} connection(s) not found", .0.len())]
    UnknownConnections(Vec<ConnectionId>),
    /// Repositories already added on the same connection.
    #[error("{} repository(ies) already added", .0.len())]
    AlreadyAdded(Vec<ExistingRepo>),
}

/// A project just added, with its initial scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub project: ProjectRecord,
    pub initial_scan: ScanRecord,
}

/// Adds projects to the org, all or none, in the caller's transaction: each draws its weekly slot
/// from `now` and gets its initial full scan of the default branch queued. Returns them in input
/// order. The caller must roll back on any error, including [`AddRefused`]; a duplicate within
/// `new` itself is a [`DbError::Conflict`] on `projects_connection_id_provider_repo_id_key`.
pub async fn add_many(
    conn: &mut PgConnection,
    org: OrgId,
    new: &[NewProject],
    requested_by: Option<TokenId>,
    now: OffsetDateTime,
) -> Result<std::result::Result<Vec<Added>, AddRefused>> {
    if new.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    // Postgres keeps microseconds; truncating here makes the returned records equal the rows.
    let now = now
        .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .map_err(|e| DbError::Corrupt(e.to_string()))?;
    let connection_ids: Vec<Uuid> = new.iter().map(|p| p.connection_id.0).collect();
    let repo_ids: Vec<String> = new.iter().map(|p| p.provider_repo_id.clone()).collect();

    let mut wanted = connection_ids.clone();
    wanted.sort_unstable();
    wanted.dedup();
    let found: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT id FROM vcs_connections WHERE org_id = $1 AND id = ANY($2) ORDER BY id",
        org.0,
        &wanted
    )
    .fetch_all(&mut *conn)
    .await?;
    if found.len() != wanted.len() {
        let missing = wanted
            .into_iter()
            .filter(|id| found.binary_search(id).is_err())
            .map(ConnectionId)
            .collect();
        return Ok(Err(AddRefused::UnknownConnections(missing)));
    }

    let existing = sqlx::query!(
        r#"
        SELECT p.id, p.connection_id, p.provider_repo_id, p.full_name
        FROM unnest($2::uuid[], $3::text[]) AS n(connection_id, provider_repo_id)
        JOIN projects p ON p.connection_id = n.connection_id
                       AND p.provider_repo_id = n.provider_repo_id
        WHERE p.org_id = $1
        "#,
        org.0,
        &connection_ids,
        &repo_ids
    )
    .fetch_all(&mut *conn)
    .await?;
    if !existing.is_empty() {
        return Ok(Err(AddRefused::AlreadyAdded(
            existing
                .into_iter()
                .map(|r| ExistingRepo {
                    connection_id: r.connection_id.into(),
                    provider_repo_id: r.provider_repo_id,
                    project_id: r.id.into(),
                    full_name: r.full_name,
                })
                .collect(),
        )));
    }

    let ids: Vec<Uuid> = new.iter().map(|_| ProjectId::new().0).collect();
    // Drawn before any await: the thread-local RNG must not be held across one.
    let slots: Vec<WeeklySlot> = {
        let mut rng = rand::thread_rng();
        new.iter()
            .map(|_| WeeklySlot::draw(now, &mut rng).0)
            .collect()
    };
    let weekdays: Vec<i16> = slots.iter().map(|s| s.weekday_index()).collect();
    let times: Vec<Time> = slots.iter().map(|s| s.time).collect();
    let full_names: Vec<String> = new.iter().map(|p| p.full_name.clone()).collect();
    let clone_urls: Vec<String> = new.iter().map(|p| p.clone_url.clone()).collect();
    let branches: Vec<String> = new.iter().map(|p| p.default_branch.clone()).collect();
    sqlx::query!(
        r#"
        INSERT INTO projects (id, org_id, connection_id, provider_repo_id, full_name, clone_url,
                              default_branch, weekly_weekday, weekly_time, created_at)
        SELECT n.id, $1, n.connection_id, n.provider_repo_id, n.full_name, n.clone_url,
               n.default_branch, n.weekday, n.slot_time, $10
        FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                    $8::int2[], $9::time[])
             AS n(id, connection_id, provider_repo_id, full_name, clone_url, default_branch,
                  weekday, slot_time)
        "#,
        org.0,
        &ids,
        &connection_ids,
        &repo_ids,
        &full_names,
        &clone_urls,
        &branches,
        &weekdays,
        &times,
        now
    )
    .execute(&mut *conn)
    .await?;

    let project_ids: Vec<ProjectId> = ids.iter().copied().map(ProjectId).collect();
    let queued = scans::enqueue_bulk(
        &mut *conn,
        org,
        &project_ids,
        ScanTrigger::Initial,
        requested_by,
    )
    .await?
    // The projects were inserted above in this transaction, so they cannot be unknown.
    .map_err(|unknown| DbError::Corrupt(unknown.to_string()))?;
    let mut scans_by_project: std::collections::HashMap<ProjectId, ScanRecord> = queued
        .into_iter()
        .map(|e| (e.scan.project_id, e.scan))
        .collect();

    let mut added = Vec::with_capacity(new.len());
    for (i, p) in new.iter().enumerate() {
        let id = project_ids[i];
        let scan = scans_by_project
            .remove(&id)
            .ok_or_else(|| DbError::Corrupt(format!("no initial scan queued for project {id}")))?;
        added.push(Added {
            project: ProjectRecord {
                id,
                org_id: org,
                connection_id: p.connection_id,
                provider_repo_id: p.provider_repo_id.clone(),
                full_name: p.full_name.clone(),
                clone_url: p.clone_url.clone(),
                default_branch: p.default_branch.clone(),
                full_scans_enabled: true,
                diff_scans_enabled: true,
                weekly_slot: slots[i],
                path_ignores: Vec::new(),
                provider_installation_id: None,
                disabled_reason: None,
                created_at: now,
                last_scan: Some(LastScan {
                    id: scan.id,
                    state: scan.state,
                    kind: scan.kind,
                    queued_at: scan.queued_at,
                    finished_at: scan.finished_at,
                }),
            },
            initial_scan: scan,
        });
    }
    Ok(Ok(added))
}

/// One project of the org, with its latest scan.
pub async fn get(ex: impl PgExecutor<'_>, org: OrgId, id: ProjectId) -> Result<ProjectRecord> {
    let row = sqlx::query_as!(
        ProjectRow,
        r#"
        SELECT p.id, p.org_id, p.connection_id, p.provider_repo_id, p.full_name, p.clone_url,
               p.default_branch, p.full_scans_enabled, p.diff_scans_enabled, p.weekly_weekday,
               p.weekly_time, p.path_ignores, p.provider_installation_id, p.disabled_reason,
               p.created_at,
               ls.id AS "last_scan_id?", ls.state AS "last_scan_state?: Pg<ScanState>",
               ls.kind AS "last_scan_kind?: Pg<ScanKind>", ls.queued_at AS "last_scan_queued_at?",
               ls.finished_at AS "last_scan_finished_at?"
        FROM projects p
        LEFT JOIN LATERAL (
            SELECT s.id, s.state, s.kind, s.queued_at, s.finished_at
            FROM scans s WHERE s.project_id = p.id
            ORDER BY s.queued_at DESC, s.id DESC LIMIT 1
        ) ls ON true
        WHERE p.id = $1 AND p.org_id = $2
        "#,
        id.0,
        org.0
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    row.try_into()
}

/// Filters of [`list`]; `None` does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectFilter {
    /// Case-insensitive substring of the full name.
    pub name: Option<String>,
    pub full_scans_enabled: Option<bool>,
    pub diff_scans_enabled: Option<bool>,
    /// State of the latest scan.
    pub last_scan_state: Option<ScanState>,
}

/// Where a page of [`list`] starts: after this (full name, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectCursor {
    pub full_name: String,
    pub id: ProjectId,
}

impl ProjectRecord {
    /// The cursor that continues a listing after this project.
    pub fn cursor(&self) -> ProjectCursor {
        ProjectCursor {
            full_name: self.full_name.clone(),
            id: self.id,
        }
    }
}

/// A page of the org's projects by full name. Walks the `projects_org_name` index in order, so
/// without a `last_scan_state` filter a page reads only the rows it returns.
pub async fn list(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    filter: &ProjectFilter,
    after: Option<&ProjectCursor>,
    limit: i64,
) -> Result<Vec<ProjectRecord>> {
    let rows = sqlx::query_as!(
        ProjectRow,
        r#"
        SELECT p.id, p.org_id, p.connection_id, p.provider_repo_id, p.full_name, p.clone_url,
               p.default_branch, p.full_scans_enabled, p.diff_scans_enabled, p.weekly_weekday,
               p.weekly_time, p.path_ignores, p.provider_installation_id, p.disabled_reason,
               p.created_at,
               ls.id AS "last_scan_id?", ls.state AS "last_scan_state?: Pg<ScanState>",
               ls.kind AS "last_scan_kind?: Pg<ScanKind>", ls.queued_at AS "last_scan_queued_at?",
               ls.finished_at AS "last_scan_finished_at?"
        FROM projects p
        LEFT JOIN LATERAL (
            SELECT s.id, s.state, s.kind, s.queued_at, s.finished_at
            FROM scans s WHERE s.project_id = p.id
            ORDER BY s.queued_at DESC, s.id DESC LIMIT 1
        ) ls ON true
        WHERE p.org_id = $1
          AND ($2::text IS NULL OR strpos(lower(p.full_name), lower($2)) > 0)
          AND ($3::bool IS NULL OR p.full_scans_enabled = $3)
          AND ($4::bool IS NULL OR p.diff_scans_enabled = $4)
          AND ($5::text IS NULL OR ls.state = $5::text::scan_state)
          AND ($6::text IS NULL OR (p.full_name, p.id) > ($6, $7::uuid))
        ORDER BY p.full_name, p.id
        LIMIT $8
        "#,
        org.0,
        filter.name,
        filter.full_scans_enabled,
        filter.diff_scans_enabled,
        filter.last_scan_state.map(|s| s.as_str()),
        after.map(|c| c.full_name.as_str()),
        after.map(|c| c.id.0),
        limit
    )
    .fetch_all(ex)
    .await?;
    records(rows)
}

/// What to change of a project; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectUpdate {
    /// A new display name (`owner/name`, 1-300 characters).
    pub full_name: Option<String>,
    pub full_scans_enabled: Option<bool>,
    pub diff_scans_enabled: Option<bool>,
    /// Replaces the project's path ignores (at most 100; the caller checks each pattern).
    pub path_ignores: Option<Vec<String>>,
    /// Moves the weekly full scan. A slot that changes records when (`weekly_slot_set_at`): its
    /// occurrences before that are not due.
    pub weekly_slot: Option<WeeklySlot>,
}

/// Changes a project's name, scan switches, path ignores or weekly slot and returns it as
/// updated.
pub async fn update(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    id: ProjectId,
    changes: &ProjectUpdate,
) -> Result<ProjectRecord> {
    let row = sqlx::query_as!(
        ProjectRow,
        r#"
        WITH p AS (
            UPDATE projects
            SET full_scans_enabled = COALESCE($3, full_scans_enabled),
                diff_scans_enabled = COALESCE($4, diff_scans_enabled),
                path_ignores = COALESCE($5, path_ignores),
                full_name = COALESCE($6, full_name),
                weekly_weekday = COALESCE($7, weekly_weekday),
                weekly_time = COALESCE($8, weekly_time),
                weekly_slot_set_at = CASE
                    WHEN $7::smallint IS NOT NULL
                         AND ($7, $8::time) IS DISTINCT FROM (weekly_weekday, weekly_time)
                    THEN now() ELSE weekly_slot_set_at END
            WHERE id = $1 AND org_id = $2
            RETURNING *
        )
        SELECT p.id, p.org_id, p.connection_id, p.provider_repo_id, p.full_name, p.clone_url,
               p.default_branch, p.full_scans_enabled, p.diff_scans_enabled, p.weekly_weekday,
               p.weekly_time, p.path_ignores, p.provider_installation_id, p.disabled_reason,
               p.created_at,
               ls.id AS "last_scan_id?", ls.state AS "last_scan_state?: Pg<ScanState>",
               ls.kind AS "last_scan_kind?: Pg<ScanKind>", ls.queued_at AS "last_scan_queued_at?",
               ls.finished_at AS "last_scan_finished_at?"
        FROM p
        LEFT JOIN LATERAL (
            SELECT s.id, s.state, s.kind, s.queued_at, s.finished_at
            FROM scans s WHERE s.project_id = p.id
            ORDER BY s.queued_at DESC, s.id DESC LIMIT 1
        ) ls ON true
        "#,
        id.0,
        org.0,
        changes.full_scans_enabled,
        changes.diff_scans_enabled,
        changes.path_ignores.as_deref(),
        changes.full_name.as_deref(),
        changes.weekly_slot.map(WeeklySlot::weekday_index),
        changes.weekly_slot.map(|s| s.time),
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    row.try_into()
}

/// Removes the org's project with its scans, findings and logs (their rows go with it). An
/// active scan loses its row, so its scheduler's next heartbeat finds the lease gone and stops
/// the environment. [`DbError::NotFound`] when it is not the org's.
pub async fn delete(ex: impl PgExecutor<'_>, org: OrgId, id: ProjectId) -> Result<()> {
    let deleted = sqlx::query!(
        "DELETE FROM projects WHERE id = $1 AND org_id = $2",
        id.0,
        org.0
    )
    .execute(ex)
    .await?
    .rows_affected();
    if deleted == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// A project's scan switches, for deciding whether a requested scan may be queued. A disabled
/// project (see [`DisabledReason`]) has both off, whatever its own switches say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanSwitches {
    pub id: ProjectId,
    pub full_scans_enabled: bool,
    pub diff_scans_enabled: bool,
}

/// The switches of those of `ids` that are the org's projects; ids not returned are unknown.
pub async fn scan_switches(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    ids: &[ProjectId],
) -> Result<Vec<ScanSwitches>> {
    let ids: Vec<Uuid> = ids.iter().map(|p| p.0).collect();
    let rows = sqlx::query!(
        r#"
        SELECT id,
               full_scans_enabled AND disabled_reason IS NULL AS "full_scans_enabled!",
               diff_scans_enabled AND disabled_reason IS NULL AS "diff_scans_enabled!"
        FROM projects WHERE org_id = $1 AND id = ANY($2)
        "#,
        org.0,
        &ids
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ScanSwitches {
            id: r.id.into(),
            full_scans_enabled: r.full_scans_enabled,
            diff_scans_enabled: r.diff_scans_enabled,
        })
        .collect())
}

/// Whether the project exists and is the org's (for routes that list things under a project).
pub async fn exists(ex: impl PgExecutor<'_>, org: OrgId, id: ProjectId) -> Result<bool> {
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1 AND org_id = $2) AS "found!""#,
        id.0,
        org.0
    )
    .fetch_one(ex)
    .await?;
    Ok(found)
}

/// Whether the org has a project named `full_name` (`owner/repo`), whatever its connection.
pub async fn exists_by_name(ex: impl PgExecutor<'_>, org: OrgId, full_name: &str) -> Result<bool> {
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM projects WHERE org_id = $1 AND full_name = $2) AS "found!""#,
        org.0,
        full_name
    )
    .fetch_one(ex)
    .await?;
    Ok(found)
}
