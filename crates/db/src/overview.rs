//! The web UI's page queries: rows shaped for a page, read in one round trip each.
//!
//! [`ProjectMatch`] is the one definition of which projects a Projects-page filter matches (SQL
//! `project_overview`): the page lists them, and a bulk scan "of all matching"
//! ([`matching_projects`]) acts on exactly that set, resolved on the server.

use crate::findings::Triage;
use crate::types::Pg;
use crate::Result;
use picket_core::triage::IgnoreReason;
use picket_core::{
    FindingId, FindingStatus, OrgId, Product, ProjectId, Provider, ScanId, ScanState, Severity,
};
use sqlx::PgExecutor;
use time::{OffsetDateTime, Time};

/// Which projects a Projects-page filter matches. `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectMatch {
    /// `Some(true)`: projects Picket scans (enabled, full or diff scans on); `Some(false)`: the
    /// rest.
    pub scanning: Option<bool>,
    /// Case-insensitive substring of the full name.
    pub name: Option<String>,
    pub provider: Option<Provider>,
    /// The state of the latest full or the latest pull-request scan.
    pub last_scan_state: Option<ScanState>,
    /// Whether the default branch has open findings.
    pub has_findings: Option<bool>,
}

/// The order of the Projects page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProjectSort {
    /// By full name, A to Z.
    #[default]
    Name,
    /// Most recent scan activity first (projects never scanned last).
    LastScan,
    /// Most open findings first, weighted by severity (critical, then high, ...).
    Findings,
}

impl ProjectSort {
    pub const ALL: [ProjectSort; 3] = [
        ProjectSort::Name,
        ProjectSort::LastScan,
        ProjectSort::Findings,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProjectSort::Name => "name",
            ProjectSort::LastScan => "last_scan",
            ProjectSort::Findings => "findings",
        }
    }
}

/// One scan as a Projects row shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanBrief {
    pub id: ScanId,
    pub state: ScanState,
    pub pr_number: Option<i32>,
    pub queued_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub error_code: Option<String>,
}

/// Open findings on a default branch, by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeverityCounts {
    pub critical: i64,
    pub high: i64,
    pub medium: i64,
    pub low: i64,
    pub info: i64,
}

impl SeverityCounts {
    pub fn total(&self) -> i64 {
        self.critical + self.high + self.medium + self.low + self.info
    }

    /// The counts from most to least severe, with their severity.
    pub fn by_severity(&self) -> [(Severity, i64); 5] {
        [
            (Severity::Critical, self.critical),
            (Severity::High, self.high),
            (Severity::Medium, self.medium),
            (Severity::Low, self.low),
            (Severity::Info, self.info),
        ]
    }
}

/// A row of the Projects page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    pub id: ProjectId,
    pub full_name: String,
    pub connection_name: String,
    pub provider: Provider,
    pub default_branch: String,
    pub clone_url: String,
    pub full_scans_enabled: bool,
    pub diff_scans_enabled: bool,
    /// 0 = Monday … 6 = Sunday, and the time of day, UTC.
    pub weekly_weekday: i16,
    pub weekly_time: Time,
    pub disabled_reason: Option<String>,
    pub last_full: Option<ScanBrief>,
    pub last_pr: Option<ScanBrief>,
    /// On the default branch.
    pub open: SeverityCounts,
}

/// One page of the Projects page and how many projects match in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectPage {
    pub rows: Vec<ProjectRow>,
    /// Every project the filter matches, not only this page's.
    pub total: i64,
}

/// The projects of `org` matching `filter`, in `sort` order, `limit` rows after skipping
/// `offset`. Ties break by full name, then id, so pages never overlap.
pub async fn projects(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    filter: &ProjectMatch,
    sort: ProjectSort,
    offset: i64,
    limit: i64,
) -> Result<ProjectPage> {
    let rows = sqlx::query_as!(
        OverviewRow,
        r#"
        SELECT o.id AS "id!", o.full_name AS "full_name!", o.connection_name AS "connection_name!",
               o.provider AS "provider!: Pg<Provider>", o.default_branch AS "default_branch!",
               o.clone_url AS "clone_url!",
               o.full_scans_enabled AS "full_scans_enabled!",
               o.diff_scans_enabled AS "diff_scans_enabled!",
               o.weekly_weekday AS "weekly_weekday!", o.weekly_time AS "weekly_time!",
               o.disabled_reason,
               o.full_id, o.full_state AS "full_state: Pg<ScanState>", o.full_queued_at,
               o.full_started_at, o.full_finished_at, o.full_error_code,
               o.pr_id, o.pr_state AS "pr_state: Pg<ScanState>", o.pr_number, o.pr_queued_at,
               o.pr_started_at, o.pr_finished_at, o.pr_error_code,
               o.open_critical AS "open_critical!", o.open_high AS "open_high!",
               o.open_medium AS "open_medium!", o.open_low AS "open_low!",
               o.open_info AS "open_info!",
               count(*) OVER () AS "total!"
        FROM project_overview($1, $2, $3, $4::text::vcs_provider, $5::text::scan_state, $6) o
        ORDER BY
            CASE WHEN $7 = 'last_scan' THEN o.last_activity END DESC NULLS LAST,
            CASE WHEN $7 = 'findings'
                 THEN (o.open_critical, o.open_high, o.open_medium, o.open_low, o.open_info) END
                 DESC,
            o.full_name, o.id
        OFFSET $8 LIMIT $9
        "#,
        org.0,
        filter.scanning,
        filter.name.as_deref(),
        filter.provider.map(|p| p.as_str()),
        filter.last_scan_state.map(|s| s.as_str()),
        filter.has_findings,
        sort.as_str(),
        offset,
        limit
    )
    .fetch_all(ex)
    .await?;
    let total = rows.first().map_or(0, |r| r.total);
    let rows = rows.into_iter().map(Into::into).collect();
    Ok(ProjectPage { rows, total })
}

fn brief(
    id: Option<uuid::Uuid>,
    state: Option<Pg<ScanState>>,
    pr_number: Option<i32>,
    queued_at: Option<OffsetDateTime>,
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
    error_code: Option<String>,
) -> Option<ScanBrief> {
    Some(ScanBrief {
        id: id?.into(),
        state: state?.0,
        pr_number,
        queued_at: queued_at?,
        started_at,
        finished_at,
        error_code,
    })
}

/// The rows of these projects of `org`, by full name (a Projects page's live updates re-render
/// its rows). Unknown ids are left out.
pub async fn project_rows(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    ids: &[ProjectId],
) -> Result<Vec<ProjectRow>> {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
    let rows = sqlx::query_as!(
        OverviewRow,
        r#"
        SELECT o.id AS "id!", o.full_name AS "full_name!", o.connection_name AS "connection_name!",
               o.provider AS "provider!: Pg<Provider>", o.default_branch AS "default_branch!",
               o.clone_url AS "clone_url!",
               o.full_scans_enabled AS "full_scans_enabled!",
               o.diff_scans_enabled AS "diff_scans_enabled!",
               o.weekly_weekday AS "weekly_weekday!", o.weekly_time AS "weekly_time!",
               o.disabled_reason,
               o.full_id, o.full_state AS "full_state: Pg<ScanState>", o.full_queued_at,
               o.full_started_at, o.full_finished_at, o.full_error_code,
               o.pr_id, o.pr_state AS "pr_state: Pg<ScanState>", o.pr_number, o.pr_queued_at,
               o.pr_started_at, o.pr_finished_at, o.pr_error_code,
               o.open_critical AS "open_critical!", o.open_high AS "open_high!",
               o.open_medium AS "open_medium!", o.open_low AS "open_low!",
               o.open_info AS "open_info!",
               0::bigint AS "total!"
        FROM project_overview($1, NULL, NULL, NULL, NULL, NULL) o
        WHERE o.id = ANY($2)
        ORDER BY o.full_name, o.id
        "#,
        org.0,
        &ids
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// `project_overview`'s columns, as both page queries read them.
struct OverviewRow {
    id: uuid::Uuid,
    full_name: String,
    connection_name: String,
    provider: Pg<Provider>,
    default_branch: String,
    clone_url: String,
    full_scans_enabled: bool,
    diff_scans_enabled: bool,
    weekly_weekday: i16,
    weekly_time: Time,
    disabled_reason: Option<String>,
    full_id: Option<uuid::Uuid>,
    full_state: Option<Pg<ScanState>>,
    full_queued_at: Option<OffsetDateTime>,
    full_started_at: Option<OffsetDateTime>,
    full_finished_at: Option<OffsetDateTime>,
    full_error_code: Option<String>,
    pr_id: Option<uuid::Uuid>,
    pr_state: Option<Pg<ScanState>>,
    pr_number: Option<i32>,
    pr_queued_at: Option<OffsetDateTime>,
    pr_started_at: Option<OffsetDateTime>,
    pr_finished_at: Option<OffsetDateTime>,
    pr_error_code: Option<String>,
    open_critical: i64,
    open_high: i64,
    open_medium: i64,
    open_low: i64,
    open_info: i64,
    total: i64,
}

impl From<OverviewRow> for ProjectRow {
    fn from(r: OverviewRow) -> Self {
        ProjectRow {
            id: r.id.into(),
            full_name: r.full_name,
            connection_name: r.connection_name,
            provider: r.provider.0,
            default_branch: r.default_branch,
            clone_url: r.clone_url,
            full_scans_enabled: r.full_scans_enabled,
            diff_scans_enabled: r.diff_scans_enabled,
            weekly_weekday: r.weekly_weekday,
            weekly_time: r.weekly_time,
            disabled_reason: r.disabled_reason,
            last_full: brief(
                r.full_id,
                r.full_state,
                None,
                r.full_queued_at,
                r.full_started_at,
                r.full_finished_at,
                r.full_error_code,
            ),
            last_pr: brief(
                r.pr_id,
                r.pr_state,
                r.pr_number,
                r.pr_queued_at,
                r.pr_started_at,
                r.pr_finished_at,
                r.pr_error_code,
            ),
            open: SeverityCounts {
                critical: r.open_critical,
                high: r.open_high,
                medium: r.open_medium,
                low: r.open_low,
                info: r.open_info,
            },
        }
    }
}

/// Every project of `org` that `filter` matches and whose full scans are on and which is not
/// disabled: the set a bulk scan "of all matching" queues, by full name. Also returns how many
/// matching projects were left out (full scans off or disabled).
pub async fn matching_projects(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    filter: &ProjectMatch,
) -> Result<(Vec<ProjectId>, i64)> {
    let rows = sqlx::query!(
        r#"
        SELECT o.id AS "id!",
               (o.full_scans_enabled AND o.disabled_reason IS NULL) AS "scannable!"
        FROM project_overview($1, $2, $3, $4::text::vcs_provider, $5::text::scan_state, $6) o
        ORDER BY o.full_name, o.id
        "#,
        org.0,
        filter.scanning,
        filter.name.as_deref(),
        filter.provider.map(|p| p.as_str()),
        filter.last_scan_state.map(|s| s.as_str()),
        filter.has_findings,
    )
    .fetch_all(ex)
    .await?;
    let skipped = rows.iter().filter(|r| !r.scannable).count() as i64;
    let ids = rows
        .into_iter()
        .filter(|r| r.scannable)
        .map(|r| r.id.into())
        .collect();
    Ok((ids, skipped))
}

/// The channel a scan queued or moved is announced on (SQL `scans_notify_changed_*`); the
/// payload is the scan's org id. Listen with [`crate::queue::Waker::on`].
pub const SCAN_CHANGED_CHANNEL: &str = "picket_scan_changed";

/// Which findings a Findings-page filter matches (SQL `finding_matches`). `None` fields do not
/// filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingMatch {
    pub status: Option<FindingStatus>,
    /// This severity or worse.
    pub min_severity: Option<Severity>,
    pub product: Option<Product>,
    pub rule_id: Option<String>,
    pub project: Option<ProjectId>,
    /// Paths starting with this.
    pub path_prefix: Option<String>,
    /// `Some(true)`: on the project's default branch; `Some(false)`: on other refs.
    pub on_default_branch: Option<bool>,
    /// First seen at or after this.
    pub since: Option<OffsetDateTime>,
    pub ignore_reason: Option<IgnoreReason>,
}

/// A row of the Findings page (and of its CSV export).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRow {
    pub id: FindingId,
    pub project_id: ProjectId,
    pub project_name: String,
    pub git_ref: String,
    pub on_default_branch: bool,
    pub product: Product,
    pub rule_id: String,
    pub path: String,
    pub start_line: i32,
    pub severity: Severity,
    pub message: String,
    pub status: FindingStatus,
    pub ignore_reason: Option<IgnoreReason>,
    pub triage_reason: Option<String>,
    pub created_at: OffsetDateTime,
}

/// A page of the org's findings matching `filter`, most severe first, then newest.
pub async fn findings(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    filter: &FindingMatch,
    offset: i64,
    limit: i64,
) -> Result<Vec<FindingRow>> {
    let rows = sqlx::query!(
        r#"
        SELECT f.id AS "id!", f.project_id AS "project_id!", p.full_name,
               f.git_ref AS "git_ref!", (f.git_ref = p.default_branch) AS "on_default!",
               f.product AS "product!: Pg<Product>", f.rule_id AS "rule_id!", f.path AS "path!",
               f.start_line AS "start_line!", f.severity AS "severity!: Pg<Severity>",
               f.message AS "message!", f.status AS "status!: Pg<FindingStatus>",
               f.ignore_reason, f.triage_reason, f.created_at AS "created_at!"
        FROM finding_matches($1, $2::text::finding_status, $3::text::severity,
                             $4::text::product, $5, $6, $7, $8, $9, $10) f
        JOIN projects p ON p.id = f.project_id
        ORDER BY f.severity DESC, f.created_at DESC, f.id
        OFFSET $11 LIMIT $12
        "#,
        org.0,
        filter.status.map(FindingStatus::as_str),
        filter.min_severity.map(Severity::as_str),
        filter.product.map(Product::as_str),
        filter.rule_id.as_deref(),
        filter.project.map(|p| p.0),
        filter.path_prefix.as_deref(),
        filter.on_default_branch,
        filter.since,
        filter.ignore_reason.map(IgnoreReason::as_str),
        offset,
        limit
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| FindingRow {
            id: r.id.into(),
            project_id: r.project_id.into(),
            project_name: r.full_name,
            git_ref: r.git_ref,
            on_default_branch: r.on_default,
            product: r.product.0,
            rule_id: r.rule_id,
            path: r.path,
            start_line: r.start_line,
            severity: r.severity.0,
            message: r.message,
            status: r.status.0,
            ignore_reason: r.ignore_reason.and_then(|s| s.parse().ok()),
            triage_reason: r.triage_reason,
            created_at: r.created_at,
        })
        .collect())
}

/// How many of the org's findings match `filter`.
pub async fn count_findings(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    filter: &FindingMatch,
) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"
        SELECT count(*) AS "n!"
        FROM finding_matches($1, $2::text::finding_status, $3::text::severity,
                             $4::text::product, $5, $6, $7, $8, $9, $10)
        "#,
        org.0,
        filter.status.map(FindingStatus::as_str),
        filter.min_severity.map(Severity::as_str),
        filter.product.map(Product::as_str),
        filter.rule_id.as_deref(),
        filter.project.map(|p| p.0),
        filter.path_prefix.as_deref(),
        filter.on_default_branch,
        filter.since,
        filter.ignore_reason.map(IgnoreReason::as_str),
    )
    .fetch_one(ex)
    .await?)
}

/// One rule's share of the matching findings (the Findings page grouped by rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleGroup {
    pub rule_id: String,
    /// The most severe of its findings.
    pub severity: Severity,
    pub product: Product,
    pub findings: i64,
    pub projects: i64,
}

/// The matching findings grouped by rule: most severe, then most findings, first.
pub async fn findings_by_rule(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    filter: &FindingMatch,
    limit: i64,
) -> Result<Vec<RuleGroup>> {
    let rows = sqlx::query!(
        r#"
        SELECT f.rule_id AS "rule_id!", max(f.severity) AS "severity!: Pg<Severity>",
               min(f.product) AS "product!: Pg<Product>", count(*) AS "findings!",
               count(DISTINCT f.project_id) AS "projects!"
        FROM finding_matches($1, $2::text::finding_status, $3::text::severity,
                             $4::text::product, $5, $6, $7, $8, $9, $10) f
        GROUP BY f.rule_id
        ORDER BY 2 DESC, 4 DESC, 1
        LIMIT $11
        "#,
        org.0,
        filter.status.map(FindingStatus::as_str),
        filter.min_severity.map(Severity::as_str),
        filter.product.map(Product::as_str),
        filter.rule_id.as_deref(),
        filter.project.map(|p| p.0),
        filter.path_prefix.as_deref(),
        filter.on_default_branch,
        filter.since,
        filter.ignore_reason.map(IgnoreReason::as_str),
        limit
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RuleGroup {
            rule_id: r.rule_id,
            severity: r.severity.0,
            product: r.product.0,
            findings: r.findings,
            projects: r.projects,
        })
        .collect())
}

/// A triage decision on every finding of the org `filter` matches (and, as for one finding,
/// every row of their fingerprints): one statement, so the set is the one the filter matches at
/// that moment. Returns how many finding rows changed.
pub async fn triage_matching(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    filter: &FindingMatch,
    decision: &Triage,
    actor: &str,
) -> Result<i64> {
    let (ignore, reason, comment) = decision.sql_arguments();
    Ok(sqlx::query_scalar!(
        r#"
        SELECT apply_triage($1, ARRAY(
                   SELECT id FROM finding_matches($1, $2::text::finding_status,
                       $3::text::severity, $4::text::product, $5, $6, $7, $8, $9, $10)),
               $11, $12, $13, $14) AS "changed!"
        "#,
        org.0,
        filter.status.map(FindingStatus::as_str),
        filter.min_severity.map(Severity::as_str),
        filter.product.map(Product::as_str),
        filter.rule_id.as_deref(),
        filter.project.map(|p| p.0),
        filter.path_prefix.as_deref(),
        filter.on_default_branch,
        filter.since,
        filter.ignore_reason.map(IgnoreReason::as_str),
        ignore,
        reason,
        comment,
        actor
    )
    .fetch_one(ex)
    .await?)
}

/// Open findings of the org by rule (the Policies page's counts), in any order.
pub async fn open_findings_by_rule(
    ex: impl PgExecutor<'_>,
    org: OrgId,
) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        r#"
        SELECT rule_id, count(*) AS "n!" FROM findings
        WHERE org_id = $1 AND status = 'open'
        GROUP BY rule_id
        "#,
        org.0
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| (r.rule_id, r.n)).collect())
}
