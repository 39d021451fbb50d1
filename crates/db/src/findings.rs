//! Findings: what scans report, tracked per project and branch by fingerprint (domain.md §2, §3).
//!
//! [`ingest`] records one scan's findings in the caller's transaction, in two statements
//! whatever their number:
//! 1. one `UNNEST` upsert keyed by (project, branch, fingerprint): a new fingerprint gets a row,
//!    `open`, first and last seen by this scan, unless a person ignored the same fingerprint on
//!    another branch of the project, whose triage it inherits; a fingerprint seen before is
//!    marked last seen by this scan and `open` again unless it is `ignored` (triage sticks).
//! 2. full scans only: the branch's `open` findings this scan did not report become `fixed`, or
//!    `removed` when their rule did not run or their file was deleted.
//!
//! Diff scans store only the findings new in the PR, under the PR's head ref, and never run step
//! 2: they see changed files only, so what they do not report says nothing about the branch.
//!
//! [`triage`] ignores a finding (with a reason) or lifts the ignore, on every branch of its
//! project at once: triage belongs to the fingerprint ([`triage_fingerprint`] does the same for
//! a fingerprint named by a pull-request reply). [`list`] pages through a project's
//! findings, most severe first. Secret values never reach this module: secrets findings carry a
//! redacted form and a SHA-256, and a table check refuses a secrets finding without them.

use crate::types::Pg;
use crate::{DbError, Result};
use picket_core::protocol::{ReportedFinding, VulnerableDependency};
use picket_core::triage::IgnoreReason;
use picket_core::{
    FindingId, FindingStatus, OrgId, Product, ProjectId, RuleId, ScanId, ScanKind, Severity,
};
use sqlx::{PgConnection, PgExecutor};
use std::collections::HashSet;
use time::OffsetDateTime;
use uuid::Uuid;

/// A finding as stored. The secret hash stays in the database: only the redacted form is shown.
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
    /// Why it is ignored, when it was ignored with a reason from the list.
    pub ignore_reason: Option<IgnoreReason>,
    /// The triage comment (free text; `nosemgrep` for an inline suppression).
    pub triage_reason: Option<String>,
    /// Who last triaged it (`api:<token id>`, or `reply:github:<login>` for a reply on a pull
    /// request), and when.
    pub triaged_by: Option<String>,
    pub triaged_at: Option<OffsetDateTime>,
    /// Secrets findings: the secret's redacted form.
    pub secret_redacted: Option<String>,
    /// Code findings: the matched lines from `start_line` on (at most
    /// [`picket_core::protocol::MAX_MATCHED_LINES`]), when the worker sent them and the org
    /// stores them; empty otherwise.
    pub matched_lines: Vec<String>,
    /// Supply Chain findings: the vulnerable dependency.
    pub dependency: Option<VulnerableDependency>,
    pub first_seen_scan_id: ScanId,
    pub last_seen_scan_id: ScanId,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

struct FindingRow {
    id: Uuid,
    project_id: Uuid,
    git_ref: String,
    product: Pg<Product>,
    rule_id: String,
    path: String,
    start_line: i32,
    end_line: i32,
    severity: Pg<Severity>,
    message: String,
    fingerprint: String,
    status: Pg<FindingStatus>,
    ignore_reason: Option<String>,
    triage_reason: Option<String>,
    triaged_by: Option<String>,
    triaged_at: Option<OffsetDateTime>,
    secret_redacted: Option<String>,
    matched_lines: Option<String>,
    dependency: Option<serde_json::Value>,
    first_seen_scan_id: Uuid,
    last_seen_scan_id: Uuid,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<FindingRow> for FindingRecord {
    fn from(r: FindingRow) -> Self {
        FindingRecord {
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
            ignore_reason: r.ignore_reason.and_then(|s| s.parse().ok()),
            triage_reason: r.triage_reason,
            triaged_by: r.triaged_by,
            triaged_at: r.triaged_at,
            secret_redacted: r.secret_redacted,
            matched_lines: r
                .matched_lines
                .map(|l| l.split('\n').map(str::to_owned).collect())
                .unwrap_or_default(),
            // Written from the same type by `ingest`.
            dependency: r.dependency.and_then(|d| serde_json::from_value(d).ok()),
            first_seen_scan_id: r.first_seen_scan_id.into(),
            last_seen_scan_id: r.last_seen_scan_id.into(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The constraint [`ingest`] names when one upload holds a fingerprint twice.
pub const DUPLICATE_IN_BATCH: &str = "findings_batch_unique_fingerprint";
/// The constraint [`ingest`] names when a line number does not fit the table.
pub const LINE_RANGE: &str = "findings_line_range";
/// The constraint [`ingest`] names when a secret's hash is not 64 hex characters.
pub const SECRET_HASH: &str = "findings_secret_hash_check";

/// Where one scan's findings go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanTarget {
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub scan_id: ScanId,
    pub kind: ScanKind,
    /// The branch of a full scan, or the head ref of a diff scan.
    pub git_ref: String,
}

/// What one scan reported, as [`ingest`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct Reported<'a> {
    pub findings: &'a [ReportedFinding],
    /// Diff scans: findings at the merge base the head no longer has (kept in the scan's
    /// record only).
    pub fixed_in_pr: &'a [ReportedFinding],
    /// Every rule that ran: an open finding of another rule is `removed`, not `fixed`.
    pub rules_run: &'a [RuleId],
    /// Paths no longer in the tree: their open findings are `removed`.
    pub deleted_paths: &'a [String],
    /// Paths in the tree the scan could not read (a lockfile that does not parse): their
    /// findings stay as they are.
    pub unread_paths: &'a [String],
}

/// What [`ingest`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestSummary {
    /// Findings in the upload.
    pub reported: i64,
    /// Findings written: all of them for a full scan, those new in the PR for a diff scan.
    pub stored: i64,
    /// Stored findings whose fingerprint the branch had not seen before.
    pub new: i64,
    /// Open findings of the branch the scan no longer reported.
    pub fixed: i64,
    /// Open findings of the branch whose rule did not run or whose file was deleted.
    pub removed: i64,
}

/// Records a scan's findings and applies the lifecycle (module docs), in the caller's
/// transaction. [`DbError::NotFound`] when the scan is not a scan of that project of the org
/// (nothing is written); [`DbError::Invalid`] naming [`DUPLICATE_IN_BATCH`] when a stored
/// fingerprint repeats, [`LINE_RANGE`] or [`SECRET_HASH`] for values the table cannot hold, or
/// the table's checks (a secrets finding without its redacted form and hash).
pub async fn ingest(
    conn: &mut PgConnection,
    target: &ScanTarget,
    reported: Reported<'_>,
) -> Result<IngestSummary> {
    let stored: Vec<&ReportedFinding> = reported
        .findings
        .iter()
        .filter(|f| target.kind == ScanKind::Full || f.new_in_pr)
        .collect();
    let mut summary = IngestSummary {
        reported: reported.findings.len() as i64,
        stored: stored.len() as i64,
        ..IngestSummary::default()
    };
    let found = sqlx::query_scalar!(
        "SELECT EXISTS (SELECT 1 FROM scans WHERE id = $1 AND project_id = $2 AND org_id = $3) AS \"found!\"",
        target.scan_id.0,
        target.project_id.0,
        target.org_id.0
    )
    .fetch_one(&mut *conn)
    .await?;
    if !found {
        return Err(DbError::NotFound);
    }
    if !stored.is_empty() {
        summary.new = upsert(&mut *conn, target, &stored).await?;
    }
    if !reported.fixed_in_pr.is_empty() {
        record_fixed_in_pr(&mut *conn, target, reported.fixed_in_pr).await?;
    }
    if target.kind == ScanKind::Full {
        let rules: Vec<&str> = reported.rules_run.iter().map(RuleId::as_str).collect();
        let closed = sqlx::query!(
            r#"
            WITH closed AS (
                UPDATE findings
                -- Supply Chain: gone while one of its advisories still stands is fixed (the
                -- package moved off the affected versions, or left the lockfile); gone because
                -- every advisory was withdrawn is removed.
                SET status = CASE WHEN path = ANY($5::text[]) THEN 'removed'
                                  WHEN product = 'supply_chain' THEN
                                      CASE WHEN EXISTS (
                                          SELECT 1 FROM advisories a
                                          WHERE a.id IN (SELECT jsonb_array_elements_text(
                                                             dependency -> 'advisories'))
                                            AND a.withdrawn IS NULL)
                                      THEN 'fixed' ELSE 'removed' END
                                  WHEN rule_id <> ALL($4::text[]) THEN 'removed'
                                  ELSE 'fixed' END::finding_status,
                    -- A finding only a nosemgrep comment ignored loses that mark when it goes.
                    triage_reason = CASE WHEN triaged_by = 'nosemgrep' THEN NULL
                                         ELSE triage_reason END,
                    triaged_at = CASE WHEN triaged_by = 'nosemgrep' THEN NULL ELSE triaged_at END,
                    triaged_by = NULLIF(triaged_by, 'nosemgrep'),
                    updated_at = now()
                WHERE project_id = $1 AND git_ref = $2
                  AND (status = 'open' OR (status = 'ignored' AND triaged_by = 'nosemgrep'))
                  AND last_seen_scan_id <> $3
                  -- A file the scan could not read says nothing about its findings.
                  AND path <> ALL($6::text[])
                RETURNING status
            )
            SELECT count(*) FILTER (WHERE status = 'fixed') AS "fixed!",
                   count(*) FILTER (WHERE status = 'removed') AS "removed!"
            FROM closed
            "#,
            target.project_id.0,
            target.git_ref,
            target.scan_id.0,
            &rules as &[&str],
            reported.deleted_paths,
            reported.unread_paths,
        )
        .fetch_one(&mut *conn)
        .await?;
        summary.fixed = closed.fixed;
        summary.removed = closed.removed;
    }
    Ok(summary)
}

/// Reported findings as the column arrays `UNNEST` takes (plain arrays bind faster than rows).
struct Columns<'a> {
    ids: Vec<Uuid>,
    products: Vec<&'a str>,
    rules: Vec<&'a str>,
    paths: Vec<&'a str>,
    starts: Vec<i32>,
    ends: Vec<i32>,
    severities: Vec<&'a str>,
    messages: Vec<&'a str>,
    fingerprints: Vec<&'a str>,
    // Empty strings stand for "no secret" (NULLIF in the queries): an empty redacted form is
    // refused by the table anyway.
    redacted: Vec<&'a str>,
    hashes: Vec<Vec<u8>>,
    suppressed: Vec<bool>,
    // Matched lines joined by '\n'; empty for none.
    lines: Vec<String>,
    // A supply-chain finding's dependency as JSON text; empty for none.
    dependencies: Vec<String>,
}

impl<'a> Columns<'a> {
    /// The columns of `findings`; [`DbError::Invalid`] naming [`DUPLICATE_IN_BATCH`],
    /// [`LINE_RANGE`] or [`SECRET_HASH`] for what the tables cannot hold.
    fn of(findings: &[&'a ReportedFinding]) -> Result<Self> {
        let mut seen = HashSet::with_capacity(findings.len());
        if !findings.iter().all(|f| seen.insert(f.fingerprint.as_str())) {
            return Err(DbError::Invalid {
                constraint: DUPLICATE_IN_BATCH.to_owned(),
            });
        }
        drop(seen);
        let line = |n: u32| {
            i32::try_from(n).map_err(|_| DbError::Invalid {
                constraint: LINE_RANGE.to_owned(),
            })
        };
        let n = findings.len();
        let mut c = Columns {
            ids: Vec::with_capacity(n),
            products: Vec::with_capacity(n),
            rules: Vec::with_capacity(n),
            paths: Vec::with_capacity(n),
            starts: Vec::with_capacity(n),
            ends: Vec::with_capacity(n),
            severities: Vec::with_capacity(n),
            messages: Vec::with_capacity(n),
            fingerprints: Vec::with_capacity(n),
            redacted: Vec::with_capacity(n),
            hashes: Vec::with_capacity(n),
            suppressed: Vec::with_capacity(n),
            lines: Vec::with_capacity(n),
            dependencies: Vec::with_capacity(n),
        };
        for f in findings {
            c.ids.push(FindingId::new().0);
            c.products.push(f.product.as_str());
            c.rules.push(f.rule_id.as_str());
            c.paths.push(f.path.as_str());
            c.starts.push(line(f.start_line)?);
            c.ends.push(line(f.end_line)?);
            c.severities.push(f.severity.as_str());
            c.messages.push(f.message.as_str());
            c.fingerprints.push(f.fingerprint.as_str());
            c.suppressed.push(f.suppressed.is_some());
            c.lines.push(f.matched_lines.join("\n"));
            c.dependencies.push(match &f.dependency {
                Some(d) => serde_json::to_string(d).map_err(|e| {
                    DbError::Corrupt(format!("a dependency does not serialize: {e}"))
                })?,
                None => String::new(),
            });
            match &f.secret {
                Some(s) => {
                    c.redacted.push(s.redacted.as_str());
                    let hash = hex::decode(&s.sha256)
                        .ok()
                        .filter(|h| h.len() == 32)
                        .ok_or_else(|| DbError::Invalid {
                            constraint: SECRET_HASH.to_owned(),
                        })?;
                    c.hashes.push(hash);
                }
                None => {
                    c.redacted.push("");
                    c.hashes.push(Vec::new());
                }
            }
        }
        Ok(c)
    }
}

/// Step 1 of [`ingest`]: one statement upserts every stored finding and records each in the
/// scan's own list (`scan_findings`). Returns how many findings rows were new.
async fn upsert(
    conn: &mut PgConnection,
    target: &ScanTarget,
    findings: &[&ReportedFinding],
) -> Result<i64> {
    let c = Columns::of(findings)?;
    let change = match target.kind {
        ScanKind::Full => "found",
        ScanKind::Diff => "new",
    };
    let new = sqlx::query_scalar!(
        r#"
        WITH n AS (
            SELECT * FROM unnest($5::uuid[], $6::text[], $7::text[], $8::text[], $9::int4[],
                                 $10::int4[], $11::text[], $12::text[], $13::text[], $14::text[],
                                 $15::bytea[], $16::bool[], $18::text[], $19::text[])
                AS n(id, product, rule_id, path, start_line, end_line, severity, message,
                     fingerprint, redacted, hash, suppressed, lines, dependency)
        ), org AS (
            -- The org may have turned storing matched lines off after the worker was served.
            SELECT store_matched_lines AS keep_lines FROM orgs WHERE id = $1
        ), ignored AS (
            -- The project's fingerprints a person ignored, on any branch: a fingerprint new to
            -- this branch inherits that triage (a nosemgrep comment's does not travel).
            SELECT DISTINCT ON (fingerprint) fingerprint, triage_reason, triaged_by, triaged_at
            FROM findings
            WHERE project_id = $2 AND status = 'ignored' AND triage_reason IS NOT NULL
              AND triaged_by IS DISTINCT FROM 'nosemgrep'
            ORDER BY fingerprint, triaged_at DESC NULLS LAST
        ), written AS (
            INSERT INTO findings (id, org_id, project_id, git_ref, product, rule_id, path,
                                  start_line, end_line, severity, message, fingerprint,
                                  first_seen_scan_id, last_seen_scan_id, status, triage_reason,
                                  triaged_by, triaged_at, secret_redacted, secret_hash,
                                  matched_lines, dependency)
            SELECT n.id, $1, $2, $4, n.product::product, n.rule_id, n.path, n.start_line,
                   n.end_line, n.severity::severity, n.message, n.fingerprint, $3, $3,
                   CASE WHEN i.fingerprint IS NOT NULL OR n.suppressed THEN 'ignored'
                        ELSE 'open' END::finding_status,
                   CASE WHEN i.fingerprint IS NOT NULL THEN i.triage_reason
                        WHEN n.suppressed THEN 'nosemgrep' END,
                   CASE WHEN i.fingerprint IS NOT NULL THEN i.triaged_by
                        WHEN n.suppressed THEN 'nosemgrep' END,
                   CASE WHEN i.fingerprint IS NOT NULL THEN i.triaged_at
                        WHEN n.suppressed THEN now() END,
                   NULLIF(n.redacted, ''), NULLIF(n.hash, ''::bytea),
                   CASE WHEN org.keep_lines THEN NULLIF(n.lines, '') END,
                   NULLIF(n.dependency, '')::jsonb
            FROM n CROSS JOIN org LEFT JOIN ignored i ON i.fingerprint = n.fingerprint
            ON CONFLICT (project_id, git_ref, fingerprint) DO UPDATE
            SET last_seen_scan_id = EXCLUDED.last_seen_scan_id,
                start_line = EXCLUDED.start_line,
                end_line = EXCLUDED.end_line,
                severity = EXCLUDED.severity,
                message = EXCLUDED.message,
                secret_redacted = EXCLUDED.secret_redacted,
                secret_hash = EXCLUDED.secret_hash,
                matched_lines = EXCLUDED.matched_lines,
                dependency = EXCLUDED.dependency,
                -- A person's triage sticks to the fingerprint; otherwise the scan decides (open,
                -- or ignored by a nosemgrep comment).
                status = CASE WHEN findings.status = 'ignored'
                                   AND findings.triaged_by IS DISTINCT FROM 'nosemgrep'
                              THEN findings.status ELSE EXCLUDED.status END,
                triage_reason = CASE WHEN findings.status = 'ignored'
                                          AND findings.triaged_by IS DISTINCT FROM 'nosemgrep'
                                     THEN findings.triage_reason ELSE EXCLUDED.triage_reason END,
                triaged_by = CASE WHEN findings.status = 'ignored'
                                       AND findings.triaged_by IS DISTINCT FROM 'nosemgrep'
                                  THEN findings.triaged_by ELSE EXCLUDED.triaged_by END,
                triaged_at = CASE WHEN findings.status = 'ignored'
                                       AND findings.triaged_by IS DISTINCT FROM 'nosemgrep'
                                  THEN findings.triaged_at
                                  WHEN findings.triaged_by = 'nosemgrep' AND EXCLUDED.triaged_by = 'nosemgrep'
                                  THEN findings.triaged_at
                                  ELSE EXCLUDED.triaged_at END,
                updated_at = now()
            -- xmax is 0 on a freshly inserted row version, set on an updated one.
            RETURNING id, fingerprint, (xmax = 0) AS inserted
        ), listed AS (
            INSERT INTO scan_findings (scan_id, org_id, fingerprint, finding_id, change, product,
                                       rule_id, path, start_line, end_line, severity, message,
                                       secret_redacted, suppressed, dependency)
            SELECT $3, $1, n.fingerprint, w.id, $17::text::scan_finding_change,
                   n.product::product, n.rule_id, n.path, n.start_line, n.end_line,
                   n.severity::severity, n.message, NULLIF(n.redacted, ''), n.suppressed,
                   NULLIF(n.dependency, '')::jsonb
            FROM n JOIN written w ON w.fingerprint = n.fingerprint
        )
        SELECT count(*) FILTER (WHERE inserted) AS "new!" FROM written
        "#,
        target.org_id.0,
        target.project_id.0,
        target.scan_id.0,
        target.git_ref,
        &c.ids,
        &c.products as &[&str],
        &c.rules as &[&str],
        &c.paths as &[&str],
        &c.starts,
        &c.ends,
        &c.severities as &[&str],
        &c.messages as &[&str],
        &c.fingerprints as &[&str],
        &c.redacted as &[&str],
        &c.hashes,
        &c.suppressed,
        change,
        &c.lines,
        &c.dependencies,
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(new)
}

/// A diff scan's findings at the merge base that its head no longer has: recorded in the scan's
/// list only, never as findings of a branch.
async fn record_fixed_in_pr(
    conn: &mut PgConnection,
    target: &ScanTarget,
    fixed: &[ReportedFinding],
) -> Result<()> {
    let refs: Vec<&ReportedFinding> = fixed.iter().collect();
    let c = Columns::of(&refs)?;
    sqlx::query!(
        r#"
        INSERT INTO scan_findings (scan_id, org_id, fingerprint, finding_id, change, product,
                                   rule_id, path, start_line, end_line, severity, message,
                                   secret_redacted, suppressed, dependency)
        SELECT $1, $2, n.fingerprint, NULL, 'fixed', n.product::product, n.rule_id, n.path,
               n.start_line, n.end_line, n.severity::severity, n.message,
               NULLIF(n.redacted, ''), n.suppressed, NULLIF(n.dependency, '')::jsonb
        FROM unnest($3::text[], $4::text[], $5::text[], $6::int4[], $7::int4[], $8::text[],
                    $9::text[], $10::text[], $11::text[], $12::bool[], $13::text[])
            AS n(product, rule_id, path, start_line, end_line, severity, message, fingerprint,
                 redacted, suppressed, dependency)
        "#,
        target.scan_id.0,
        target.org_id.0,
        &c.products as &[&str],
        &c.rules as &[&str],
        &c.paths as &[&str],
        &c.starts,
        &c.ends,
        &c.severities as &[&str],
        &c.messages as &[&str],
        &c.fingerprints as &[&str],
        &c.redacted as &[&str],
        &c.suppressed,
        &c.dependencies,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What a person decides about a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Triage {
    /// Not a problem: why, from the list, and a free-text comment (at least one of them).
    Ignore {
        reason: Option<IgnoreReason>,
        comment: Option<String>,
    },
    /// Lift an ignore: the finding is `open` until a scan says otherwise. Changes nothing on a
    /// finding that is not ignored.
    Reopen,
}

impl Triage {
    /// The arguments of SQL `apply_triage` after the ids: ignore?, reason, comment.
    pub(crate) fn sql_arguments(&self) -> (bool, Option<&'static str>, Option<&str>) {
        match self {
            Triage::Ignore { reason, comment } => {
                (true, reason.map(IgnoreReason::as_str), comment.as_deref())
            }
            Triage::Reopen => (false, None, None),
        }
    }
}

/// Applies a triage decision to the finding `id` of the org and to every other row of its
/// fingerprint in the same project (other branches, PR head refs), recording `actor`, the time
/// and a `finding_triage_events` row per row changed. Returns the finding as updated;
/// [`DbError::NotFound`] when it is not the org's.
pub async fn triage(
    conn: &mut PgConnection,
    org: OrgId,
    id: FindingId,
    decision: &Triage,
    actor: &str,
) -> Result<FindingRecord> {
    triage_many(&mut *conn, org, &[id], decision, actor).await?;
    get(&mut *conn, org, id).await
}

/// [`triage`] on each of `ids` of the org (ids of other orgs, or unknown, change nothing).
/// Returns how many finding rows changed.
pub async fn triage_many(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    ids: &[FindingId],
    decision: &Triage,
    actor: &str,
) -> Result<i64> {
    let ids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
    let (ignore, reason, comment) = decision.sql_arguments();
    let changed = sqlx::query_scalar!(
        r#"SELECT apply_triage($1, $2, $3, $4, $5, $6) AS "changed!""#,
        org.0,
        &ids,
        ignore,
        reason,
        comment,
        actor
    )
    .fetch_one(ex)
    .await?;
    Ok(changed)
}

/// One change of a finding's triage, as [`history`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriageEvent {
    pub at: OffsetDateTime,
    pub actor: String,
    pub from_status: FindingStatus,
    pub to_status: FindingStatus,
    pub ignore_reason: Option<IgnoreReason>,
    pub comment: Option<String>,
}

/// Every triage change of the org's finding `id`, oldest first.
pub async fn history(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    id: FindingId,
) -> Result<Vec<TriageEvent>> {
    let rows = sqlx::query!(
        r#"
        SELECT at, actor, from_status AS "from_status: Pg<FindingStatus>",
               to_status AS "to_status: Pg<FindingStatus>", ignore_reason, comment
        FROM finding_triage_events
        WHERE finding_id = $1 AND org_id = $2
        ORDER BY id
        "#,
        id.0,
        org.0
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TriageEvent {
            at: r.at,
            actor: r.actor,
            from_status: r.from_status.0,
            to_status: r.to_status.0,
            ignore_reason: r.ignore_reason.and_then(|s| s.parse().ok()),
            comment: r.comment,
        })
        .collect())
}

/// A finding of the org's project with this fingerprint (triage applies to all of them at once:
/// see [`triage`]): an ignored one if any is ignored, else the most recently updated. `None`
/// when the project has none.
pub async fn by_fingerprint(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    project: ProjectId,
    fingerprint: &str,
) -> Result<Option<FindingRecord>> {
    let row = sqlx::query_as!(
        FindingRow,
        r#"
        SELECT id, project_id, git_ref, product AS "product: Pg<Product>", rule_id, path,
               start_line, end_line, severity AS "severity: Pg<Severity>", message, fingerprint,
               status AS "status: Pg<FindingStatus>", ignore_reason, triage_reason, triaged_by,
               triaged_at,
               secret_redacted, matched_lines, dependency, first_seen_scan_id, last_seen_scan_id, created_at,
               updated_at
        FROM findings
        WHERE org_id = $1 AND project_id = $2 AND fingerprint = $3
        ORDER BY status = 'ignored' DESC, updated_at DESC, id DESC
        LIMIT 1
        "#,
        org.0,
        project.0,
        fingerprint
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

/// What [`triage_fingerprint`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FingerprintTriage {
    /// The project has no finding with this fingerprint.
    Unknown,
    /// A reopen of a fingerprint that is not ignored: nothing changed (the finding as it is).
    Unchanged(FindingRecord),
    /// Applied through [`triage`] (the finding as updated).
    Applied(FindingRecord),
}

/// Applies a triage decision to the org's project's findings of `fingerprint` (every branch):
/// [`triage`] on one of them ([`by_fingerprint`]), which covers the others. Triage by PR reply
/// names a finding by fingerprint (from Picket's comment), the API by id; both end in the same
/// statement.
pub async fn triage_fingerprint(
    conn: &mut PgConnection,
    org: OrgId,
    project: ProjectId,
    fingerprint: &str,
    decision: &Triage,
    actor: &str,
) -> Result<FingerprintTriage> {
    let Some(finding) = by_fingerprint(&mut *conn, org, project, fingerprint).await? else {
        return Ok(FingerprintTriage::Unknown);
    };
    if *decision == Triage::Reopen && finding.status != FindingStatus::Ignored {
        return Ok(FingerprintTriage::Unchanged(finding));
    }
    triage(conn, org, finding.id, decision, actor)
        .await
        .map(FingerprintTriage::Applied)
}

/// One finding of the org.
pub async fn get(ex: impl PgExecutor<'_>, org: OrgId, id: FindingId) -> Result<FindingRecord> {
    let row = sqlx::query_as!(
        FindingRow,
        r#"
        SELECT id, project_id, git_ref, product AS "product: Pg<Product>", rule_id, path,
               start_line, end_line, severity AS "severity: Pg<Severity>", message, fingerprint,
               status AS "status: Pg<FindingStatus>", ignore_reason, triage_reason, triaged_by,
               triaged_at,
               secret_redacted, matched_lines, dependency, first_seen_scan_id, last_seen_scan_id, created_at,
               updated_at
        FROM findings WHERE id = $1 AND org_id = $2
        "#,
        id.0,
        org.0
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    Ok(row.into())
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
    let rows = sqlx::query_as!(
        FindingRow,
        r#"
        SELECT id, project_id, git_ref, product AS "product: Pg<Product>", rule_id, path,
               start_line, end_line, severity AS "severity: Pg<Severity>", message, fingerprint,
               status AS "status: Pg<FindingStatus>", ignore_reason, triage_reason, triaged_by,
               triaged_at,
               secret_redacted, matched_lines, dependency, first_seen_scan_id, last_seen_scan_id, created_at,
               updated_at
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
    Ok(rows.into_iter().map(Into::into).collect())
}

/// What a finding was to the scan that reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanFindingChange {
    /// A full scan's finding.
    Found,
    /// A diff scan's finding not at the merge base.
    New,
    /// A diff scan's finding at the merge base that the head no longer has.
    Fixed,
}

impl ScanFindingChange {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanFindingChange::Found => "found",
            ScanFindingChange::New => "new",
            ScanFindingChange::Fixed => "fixed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "found" => ScanFindingChange::Found,
            "new" => ScanFindingChange::New,
            "fixed" => ScanFindingChange::Fixed,
            other => {
                return Err(DbError::Corrupt(format!(
                    "unknown scan_finding_change {other}"
                )))
            }
        })
    }
}

/// One finding as one scan reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanFindingRecord {
    pub fingerprint: String,
    /// The stored finding; `None` for [`ScanFindingChange::Fixed`].
    pub finding_id: Option<FindingId>,
    pub change: ScanFindingChange,
    pub product: Product,
    pub rule_id: String,
    pub path: String,
    pub start_line: i32,
    pub end_line: i32,
    pub severity: Severity,
    pub message: String,
    pub secret_redacted: Option<String>,
    /// Covered by a `nosemgrep` comment.
    pub suppressed: bool,
    /// The stored finding's status now (it may have moved on since the scan).
    pub status: Option<FindingStatus>,
}

/// Where a page of [`of_scan`] starts: after this (severity, fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanFindingCursor {
    pub severity: Severity,
    pub fingerprint: String,
}

impl ScanFindingRecord {
    /// The cursor that continues a listing after this entry.
    pub fn cursor(&self) -> ScanFindingCursor {
        ScanFindingCursor {
            severity: self.severity,
            fingerprint: self.fingerprint.clone(),
        }
    }
}

/// A page of the findings one of the org's scans reported, most severe first, optionally only
/// those of one `change`. The caller checks that the scan is the org's; the query also filters
/// by org.
pub async fn of_scan(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    scan: ScanId,
    change: Option<ScanFindingChange>,
    after: Option<&ScanFindingCursor>,
    limit: i64,
) -> Result<Vec<ScanFindingRecord>> {
    let rows = sqlx::query!(
        r#"
        SELECT sf.fingerprint, sf.finding_id, sf.change::text AS "change!",
               sf.product AS "product: Pg<Product>", sf.rule_id, sf.path, sf.start_line,
               sf.end_line, sf.severity AS "severity: Pg<Severity>", sf.message,
               sf.secret_redacted, sf.suppressed,
               f.status AS "status?: Pg<FindingStatus>"
        FROM scan_findings sf LEFT JOIN findings f ON f.id = sf.finding_id
        WHERE sf.scan_id = $1 AND sf.org_id = $2
          AND ($3::text IS NULL OR sf.change = $3::text::scan_finding_change)
          AND ($4::text IS NULL OR (sf.severity, sf.fingerprint) < ($4::text::severity, $5::text))
        ORDER BY sf.severity DESC, sf.fingerprint DESC
        LIMIT $6
        "#,
        scan.0,
        org.0,
        change.map(ScanFindingChange::as_str),
        after.map(|c| c.severity.as_str()),
        after.map(|c| c.fingerprint.as_str()),
        limit
    )
    .fetch_all(ex)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(ScanFindingRecord {
                fingerprint: r.fingerprint,
                finding_id: r.finding_id.map(Into::into),
                change: ScanFindingChange::parse(&r.change)?,
                product: r.product.0,
                rule_id: r.rule_id,
                path: r.path,
                start_line: r.start_line,
                end_line: r.end_line,
                severity: r.severity.0,
                message: r.message,
                secret_redacted: r.secret_redacted,
                suppressed: r.suppressed,
                status: r.status.map(|s| s.0),
            })
        })
        .collect()
}
