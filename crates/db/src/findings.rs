//! Findings: what scans report, tracked per project and branch by fingerprint.
//!
//! [`insert_batch`] writes a scan's findings with one `UNNEST` upsert: a fingerprint seen before
//! on the same branch keeps its row (first sighting, triage) and is marked seen by this scan and
//! open again unless a person ignored it; a new one gets a row. [`list`] pages through a project's
//! findings, most severe first, with the filters the API exposes.

use crate::types::Pg;
use crate::{DbError, Result};
use picket_core::{
    FindingId, FindingStatus, Fingerprint, OrgId, Product, ProjectId, RuleId, ScanId, Severity,
};
use sqlx::PgExecutor;
use std::collections::HashSet;
use time::OffsetDateTime;
use uuid::Uuid;

/// A finding as one scan reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFinding {
    /// The branch scanned.
    pub git_ref: String,
    pub product: Product,
    pub rule_id: RuleId,
    pub path: String,
    /// 1-based, inclusive.
    pub start_line: i32,
    pub end_line: i32,
    pub severity: Severity,
    pub message: String,
    pub fingerprint: Fingerprint,
}

/// A finding as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRecord {
    pub id: FindingId,
    pub project_id: ProjectId,
    pub git_ref: String,
    pub product: Product,
    pub rule_id: String,
    pub path: String,
    pub start_line: i32,
    pub end_line: i32,
    pub severity: Severity,
    pub message: String,
    pub fingerprint: String,
    pub status: FindingStatus,
    pub triage_reason: Option<String>,
    pub first_seen_scan_id: ScanId,
    pub last_seen_scan_id: ScanId,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The constraint [`insert_batch`] names when one batch holds a fingerprint twice for a branch.
pub const DUPLICATE_IN_BATCH: &str = "findings_batch_unique_fingerprint";

/// Records the findings `scan` reported for `project`, all in one statement. Returns how many rows
/// were inserted or refreshed (= `findings.len()`). [`DbError::NotFound`] when the scan is not a
/// scan of that project of the org (nothing is written); [`DbError::Invalid`] naming
/// [`DUPLICATE_IN_BATCH`] when a (branch, fingerprint) pair repeats, which Postgres could not apply
/// in one upsert.
pub async fn insert_batch(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    project: ProjectId,
    scan: ScanId,
    findings: &[NewFinding],
) -> Result<u64> {
    if findings.is_empty() {
        return Ok(0);
    }
    let mut seen = HashSet::with_capacity(findings.len());
    if !findings
        .iter()
        .all(|f| seen.insert((f.git_ref.as_str(), f.fingerprint.as_str())))
    {
        return Err(DbError::Invalid {
            constraint: DUPLICATE_IN_BATCH.to_owned(),
        });
    }
    let ids: Vec<Uuid> = findings.iter().map(|_| FindingId::new().0).collect();
    let git_refs: Vec<&str> = findings.iter().map(|f| f.git_ref.as_str()).collect();
    let products: Vec<&str> = findings.iter().map(|f| f.product.as_str()).collect();
    let rules: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
    let paths: Vec<&str> = findings.iter().map(|f| f.path.as_str()).collect();
    let starts: Vec<i32> = findings.iter().map(|f| f.start_line).collect();
    let ends: Vec<i32> = findings.iter().map(|f| f.end_line).collect();
    let severities: Vec<&str> = findings.iter().map(|f| f.severity.as_str()).collect();
    let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    let fingerprints: Vec<&str> = findings.iter().map(|f| f.fingerprint.as_str()).collect();
    let written = sqlx::query!(
        r#"
        INSERT INTO findings (id, org_id, project_id, git_ref, product, rule_id, path, start_line,
                              end_line, severity, message, fingerprint, first_seen_scan_id,
                              last_seen_scan_id)
        SELECT n.id, s.org_id, s.project_id, n.git_ref, n.product::product, n.rule_id, n.path,
               n.start_line, n.end_line, n.severity::severity, n.message, n.fingerprint, s.id, s.id
        FROM scans s
        CROSS JOIN unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int4[],
                          $10::int4[], $11::text[], $12::text[], $13::text[])
             AS n(id, git_ref, product, rule_id, path, start_line, end_line, severity, message,
                  fingerprint)
        WHERE s.id = $3 AND s.project_id = $2 AND s.org_id = $1
        ON CONFLICT (project_id, git_ref, fingerprint) DO UPDATE
        SET last_seen_scan_id = EXCLUDED.last_seen_scan_id,
            start_line = EXCLUDED.start_line,
            end_line = EXCLUDED.end_line,
            severity = EXCLUDED.severity,
            message = EXCLUDED.message,
            -- A person's triage sticks to the fingerprint; anything else is open again.
            status = CASE WHEN findings.status = 'ignored' THEN findings.status
                          ELSE 'open'::finding_status END,
            updated_at = now()
        "#,
        org.0,
        project.0,
        scan.0,
        &ids,
        &git_refs as &[&str],
        &products as &[&str],
        &rules as &[&str],
        &paths as &[&str],
        &starts,
        &ends,
        &severities as &[&str],
        &messages as &[&str],
        &fingerprints as &[&str],
    )
    .execute(ex)
    .await?
    .rows_affected();
    if written == 0 {
        return Err(DbError::NotFound);
    }
    Ok(written)
}

/// Filters of [`list`]; `None` does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    pub status: Option<FindingStatus>,
    /// This severity or worse.
    pub min_severity: Option<Severity>,
    pub product: Option<Product>,
    pub rule_id: Option<String>,
    /// Paths starting with this.
    pub path_prefix: Option<String>,
    pub git_ref: Option<String>,
}

/// Where a page of [`list`] starts: after this (severity, id) in the listing's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindingCursor {
    pub severity: Severity,
    pub id: FindingId,
}

impl FindingRecord {
    /// The cursor that continues a listing after this finding.
    pub fn cursor(&self) -> FindingCursor {
        FindingCursor {
            severity: self.severity,
            id: self.id,
        }
    }
}

/// A page of a project's findings, most severe first, then newest first (ids are time-ordered).
/// The caller checks that the project is the org's; the query also filters by org.
pub async fn list(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    project: ProjectId,
    filter: &FindingFilter,
    after: Option<FindingCursor>,
    limit: i64,
) -> Result<Vec<FindingRecord>> {
    let rows = sqlx::query!(
        r#"
        SELECT id, project_id, git_ref, product AS "product: Pg<Product>", rule_id, path,
               start_line, end_line, severity AS "severity: Pg<Severity>", message, fingerprint,
               status AS "status: Pg<FindingStatus>", triage_reason, first_seen_scan_id,
               last_seen_scan_id, created_at, updated_at
        FROM findings
        WHERE org_id = $1 AND project_id = $2
          AND ($3::text IS NULL OR status = $3::text::finding_status)
          AND ($4::text IS NULL OR severity >= $4::text::severity)
          AND ($5::text IS NULL OR product = $5::text::product)
          AND ($6::text IS NULL OR rule_id = $6)
          AND ($7::text IS NULL OR starts_with(path, $7))
          AND ($8::text IS NULL OR git_ref = $8)
          AND ($9::text IS NULL OR (severity, id) < ($9::text::severity, $10::uuid))
        ORDER BY severity DESC, id DESC
        LIMIT $11
        "#,
        org.0,
        project.0,
        filter.status.map(|s| s.as_str()),
        filter.min_severity.map(|s| s.as_str()),
        filter.product.map(|p| p.as_str()),
        filter.rule_id,
        filter.path_prefix,
        filter.git_ref,
        after.map(|c| c.severity.as_str()),
        after.map(|c| c.id.0),
        limit
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| FindingRecord {
            id: r.id.into(),
            project_id: r.project_id.into(),
            git_ref: r.git_ref,
            product: r.product.0,
            rule_id: r.rule_id,
            path: r.path,
            start_line: r.start_line,
            end_line: r.end_line,
            severity: r.severity.0,
            message: r.message,
            fingerprint: r.fingerprint,
            status: r.status.0,
            triage_reason: r.triage_reason,
            first_seen_scan_id: r.first_seen_scan_id.into(),
            last_seen_scan_id: r.last_seen_scan_id.into(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}
