//! Organizations: the tenants every other row belongs to.
//!
//! `picket admin` creates the first org with [`create`]; the API reads the caller's org with
//! [`get`] and its admins change its settings with [`update`]. Nothing here is reachable across
//! orgs: the API only ever passes the org of the authenticated token.

use crate::{DbError, Result};
use picket_core::feedback::DraftFeedback;
use picket_core::OrgId;
use sqlx::PgExecutor;
use time::OffsetDateTime;

/// Default cap on an org's scans holding a lease at once (matches the column default).
pub const DEFAULT_MAX_CONCURRENT_SCANS: i32 = 4;
/// Default fail-open timeout of PR checks, seconds (domain.md §1: 10 minutes).
pub const DEFAULT_PR_SCAN_TIMEOUT_SECS: i32 = 600;

/// An organization as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRecord {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub max_concurrent_scans: i32,
    pub pr_scan_timeout_secs: i32,
    /// Whether `nosemgrep` comments suppress findings in the org's scans.
    pub inline_suppression: bool,
    /// Whether the matched lines of Code findings are stored (and sent by workers).
    pub store_matched_lines: bool,
    /// Whether draft PRs get comments (`full`) or only the check (`check_only`).
    pub draft_feedback: DraftFeedback,
    pub created_at: OffsetDateTime,
}

struct OrgRow {
    id: uuid::Uuid,
    slug: String,
    name: String,
    max_concurrent_scans: i32,
    pr_scan_timeout_secs: i32,
    inline_suppression: bool,
    store_matched_lines: bool,
    draft_feedback: String,
    created_at: OffsetDateTime,
}

impl TryFrom<OrgRow> for OrgRecord {
    type Error = DbError;
    fn try_from(r: OrgRow) -> Result<Self> {
        Ok(OrgRecord {
            id: r.id.into(),
            slug: r.slug,
            name: r.name,
            max_concurrent_scans: r.max_concurrent_scans,
            pr_scan_timeout_secs: r.pr_scan_timeout_secs,
            inline_suppression: r.inline_suppression,
            store_matched_lines: r.store_matched_lines,
            draft_feedback: r
                .draft_feedback
                .parse()
                .map_err(|e: picket_core::ParseError| DbError::Corrupt(e.to_string()))?,
            created_at: r.created_at,
        })
    }
}

/// Creates an org with default settings. The slug must match `^[a-z0-9][a-z0-9-]{0,62}$`
/// ([`DbError::Invalid`] otherwise) and be unused ([`DbError::Conflict`] on `orgs_slug_key`).
pub async fn create(ex: impl PgExecutor<'_>, slug: &str, name: &str) -> Result<OrgRecord> {
    let row = sqlx::query_as!(
        OrgRow,
        r#"
        INSERT INTO orgs (id, slug, name) VALUES ($1, $2, $3)
        RETURNING id, slug, name, max_concurrent_scans, pr_scan_timeout_secs, inline_suppression,
               store_matched_lines, draft_feedback, created_at
        "#,
        OrgId::new().0,
        slug,
        name
    )
    .fetch_one(ex)
    .await?;
    row.try_into()
}

/// One org by id.
pub async fn get(ex: impl PgExecutor<'_>, id: OrgId) -> Result<OrgRecord> {
    let row = sqlx::query_as!(
        OrgRow,
        r#"
        SELECT id, slug, name, max_concurrent_scans, pr_scan_timeout_secs, inline_suppression,
               store_matched_lines, draft_feedback, created_at
        FROM orgs WHERE id = $1
        "#,
        id.0
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    row.try_into()
}

/// One org by slug (for the CLI, which names orgs by slug).
pub async fn get_by_slug(ex: impl PgExecutor<'_>, slug: &str) -> Result<OrgRecord> {
    let row = sqlx::query_as!(
        OrgRow,
        r#"
        SELECT id, slug, name, max_concurrent_scans, pr_scan_timeout_secs, inline_suppression,
               store_matched_lines, draft_feedback, created_at
        FROM orgs WHERE slug = $1
        "#,
        slug
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    row.try_into()
}

/// The settings an admin may change; `None` leaves a field as it is. The table's CHECKs bound
/// them (name 1-200 characters, 1-1000 concurrent scans, 60-3600 s) and answer
/// [`DbError::Invalid`] outside those bounds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgUpdate {
    pub name: Option<String>,
    pub max_concurrent_scans: Option<i32>,
    pub pr_scan_timeout_secs: Option<i32>,
    pub inline_suppression: Option<bool>,
    /// Turning it off also clears the matched lines already stored for the org's findings.
    pub store_matched_lines: Option<bool>,
    pub draft_feedback: Option<DraftFeedback>,
}

/// Applies `changes` to the org and returns it as updated, in one statement.
pub async fn update(ex: impl PgExecutor<'_>, id: OrgId, changes: &OrgUpdate) -> Result<OrgRecord> {
    let row = sqlx::query_as!(
        OrgRow,
        r#"
        WITH cleared AS (
            UPDATE findings SET matched_lines = NULL
            -- Only when the setting turns off: while it is off, no lines are stored.
            WHERE org_id = $1 AND $7::bool IS FALSE AND matched_lines IS NOT NULL
              AND EXISTS (SELECT 1 FROM orgs WHERE id = $1 AND store_matched_lines)
        )
        UPDATE orgs
        SET name = COALESCE($2, name),
            max_concurrent_scans = COALESCE($3, max_concurrent_scans),
            pr_scan_timeout_secs = COALESCE($4, pr_scan_timeout_secs),
            inline_suppression = COALESCE($5, inline_suppression),
            draft_feedback = COALESCE($6, draft_feedback),
            store_matched_lines = COALESCE($7, store_matched_lines)
        WHERE id = $1
        RETURNING id, slug, name, max_concurrent_scans, pr_scan_timeout_secs, inline_suppression,
               store_matched_lines, draft_feedback, created_at
        "#,
        id.0,
        changes.name,
        changes.max_concurrent_scans,
        changes.pr_scan_timeout_secs,
        changes.inline_suppression,
        changes.draft_feedback.map(DraftFeedback::as_str),
        changes.store_matched_lines,
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    row.try_into()
}
