//! The control plane's side of the worker protocol (`picket_core::protocol`).
//!
//! 1. When a scan is claimed, [`crate::queue::mint_scan_token`] mints its per-scan token
//!    (`pks_…`); only the SHA-256 is stored, bound to the claim's lease.
//! 2. Each worker request is authenticated by [`authenticate`]: the hash finds the scan, and the
//!    token is *live* only while its lease is the scan's current one and the scan is active.
//! 3. The worker reads its [`scan_spec`] and, separately, its [`clone_credential`] (decrypted
//!    from the project's connection; kept apart so the spec can be logged and the credential
//!    never is), reports progress through the fenced moves of [`crate::queue`], and uploads its
//!    results with [`record_results`]: in the caller's transaction, findings ingest and
//!    lifecycle ([`crate::findings::ingest`]), the attempt's `scan_results` row, and the move to
//!    `succeeded`. A repeated upload of the same attempt finds its row and changes nothing.
//!
//! Every move made on the worker's behalf is audited with the actor [`WORKER_ACTOR`].

use crate::crypto::CredentialCipher;
use crate::findings::{self, IngestSummary, Reported, ScanTarget};
use crate::queue::{self, Lease};
use crate::types::Pg;
use crate::{attempts, policies, rule_packs, DbError, Result};
use picket_core::policy::effective_modes;
use picket_core::protocol::{
    CloneCredential, RulePackSpec, ScanResults, ScanSpec, SCAN_TOKEN_PREFIX,
};
use picket_core::{ConnectionId, OrgId, Product, ProjectId, Provider, ScanId, ScanKind, ScanState};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgExecutor};

/// `scan_events.actor` of every move made on a worker's report.
pub const WORKER_ACTOR: &str = "worker";
/// Random characters after the prefix: 43 base62 characters carry 256 bits.
pub const SCAN_TOKEN_RANDOM_LEN: usize = 43;
/// What a scan runs: Code, Supply Chain and Secrets.
pub const PRODUCTS: [Product; 3] = [Product::Code, Product::SupplyChain, Product::Secrets];
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub(crate) fn generate_scan_token() -> SecretString {
    let mut rng = rand::rngs::OsRng;
    let mut token = String::with_capacity(SCAN_TOKEN_PREFIX.len() + SCAN_TOKEN_RANDOM_LEN);
    token.push_str(SCAN_TOKEN_PREFIX);
    for _ in 0..SCAN_TOKEN_RANDOM_LEN {
        // gen_range is unbiased (rejection sampling), so each character is uniform over 62.
        token.push(char::from(BASE62[rng.gen_range(0..BASE62.len())]));
    }
    SecretString::from(token)
}

/// SHA-256 of a presented per-scan token: what is stored and looked up. Unsalted and fast on
/// purpose: the token carries 256 random bits.
pub fn hash_scan_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a string has the shape of a per-scan token, so garbage is refused without a query.
pub fn looks_like_scan_token(s: &str) -> bool {
    s.strip_prefix(SCAN_TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == SCAN_TOKEN_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The scan a per-scan token was minted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScan {
    pub scan_id: ScanId,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub kind: ScanKind,
    pub state: ScanState,
    pub attempt: i32,
    /// The scan's current lease, when the token was minted under it and the scan is active:
    /// the token is live. `None` once the scan ended, was requeued or was claimed again.
    pub lease: Option<Lease>,
}

/// The scan whose token hashes to `token_hash`, live or not; `None` when no scan has it.
pub async fn authenticate(
    ex: impl PgExecutor<'_>,
    token_hash: &[u8; 32],
) -> Result<Option<TokenScan>> {
    let row = sqlx::query!(
        r#"
        SELECT id, org_id, project_id, kind AS "kind: Pg<ScanKind>",
               state AS "state: Pg<ScanState>", attempt, lease_owner, lease_token,
               lease_expires_at,
               COALESCE(scan_token_lease = lease_token
                        AND state IN ('claimed', 'running', 'reporting'), false) AS "live!"
        FROM scans WHERE scan_token_hash = $1
        "#,
        &token_hash[..]
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| {
        let lease = match (r.live, r.lease_owner, r.lease_token, r.lease_expires_at) {
            (true, Some(owner), Some(token), Some(expires_at)) => Some(Lease {
                scan_id: r.id.into(),
                owner,
                token,
                expires_at,
            }),
            _ => None,
        };
        TokenScan {
            scan_id: r.id.into(),
            org_id: r.org_id.into(),
            project_id: r.project_id.into(),
            kind: r.kind.0,
            state: r.state.0,
            attempt: r.attempt,
            lease,
        }
    }))
}

/// The ref whose findings a scan reports on: a full scan's branch (the project's default branch
/// when the scan names none), or a diff scan's head ref.
fn scanned_ref(kind: ScanKind, git_ref: Option<String>, default_branch: String) -> Result<String> {
    match (kind, git_ref) {
        (_, Some(r)) => Ok(r),
        (ScanKind::Full, None) => Ok(default_branch),
        (ScanKind::Diff, None) => Err(DbError::Corrupt(
            "a diff scan without a head ref cannot be scanned".into(),
        )),
    }
}

/// Everything the worker needs for the scan's current attempt: the project's stored clone URL
/// (never one from a webhook), the scan's refs, the products, the org's effective rule modes and,
/// for a full scan, the distinct paths of the branch's open findings (so the worker can report
/// which were deleted). [`DbError::NotFound`] when the scan is not the org's.
pub async fn scan_spec(conn: &mut PgConnection, org: OrgId, scan: ScanId) -> Result<ScanSpec> {
    let row = sqlx::query!(
        r#"
        SELECT s.id, s.attempt, s.project_id, s.kind AS "kind: Pg<ScanKind>", s.git_ref,
               s.commit_sha, s.base_ref, s.base_sha, s.merge_base_sha, s.pr_number,
               p.full_name, p.clone_url, p.default_branch, p.path_ignores, o.inline_suppression,
               o.store_matched_lines
        FROM scans s JOIN projects p ON p.id = s.project_id JOIN orgs o ON o.id = s.org_id
        WHERE s.id = $1 AND s.org_id = $2
        "#,
        scan.0,
        org.0
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DbError::NotFound)?;
    let kind = row.kind.0;
    let git_ref = scanned_ref(kind, row.git_ref, row.default_branch)?;
    let open_finding_paths = match kind {
        // Diff scans never close findings, so they need no deleted paths.
        ScanKind::Diff => Vec::new(),
        ScanKind::Full => {
            sqlx::query_scalar!(
                r#"
                SELECT DISTINCT path FROM findings
                WHERE project_id = $1 AND git_ref = $2 AND status = 'open'
                ORDER BY path
                "#,
                row.project_id,
                git_ref
            )
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let policies = policies::list(&mut *conn, org).await?;
    Ok(ScanSpec {
        scan_id: row.id.into(),
        attempt: row.attempt,
        project_id: row.project_id.into(),
        kind,
        full_name: row.full_name,
        clone_url: row.clone_url,
        git_ref,
        commit_sha: row.commit_sha,
        base_ref: row.base_ref,
        base_sha: row.base_sha,
        // Given by the caller (a provider's compare API), or computed by the worker from the
        // clone when `None`.
        merge_base_sha: row.merge_base_sha,
        pr_number: row.pr_number,
        products: PRODUCTS.to_vec(),
        policy: effective_modes(policies.iter().map(|p| &p.rules)),
        open_finding_paths,
        rule_packs: rule_packs::contents(&mut *conn, org)
            .await?
            .into_iter()
            .map(|(name, sha256, content)| RulePackSpec {
                name,
                sha256,
                content,
            })
            .collect(),
        path_ignores: row.path_ignores,
        inline_suppression: row.inline_suppression,
        store_matched_lines: row.store_matched_lines,
    })
}

/// Connection credentials as stored (JSON text): a token string, or an object from which only
/// `token` and `username` are read (a GitHub App's key is not a clone credential).
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredCredentials {
    Token(String),
    Fields {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        username: Option<String>,
    },
}

/// The user name a provider expects beside a token in an HTTPS clone.
pub fn clone_username(provider: Provider) -> &'static str {
    match provider {
        Provider::Github => "x-access-token",
        Provider::Gitlab => "oauth2",
        Provider::Bitbucket => "x-token-auth",
        // Azure DevOps ignores the user name of a PAT; it must not be empty.
        Provider::AzureDevops => "pat",
        Provider::Git => "git",
    }
}

/// The clone credential a connection lends its scans, decrypted: `None` when the connection
/// stores no credentials or none usable for cloning (an object without a `token`, such as a
/// GitHub App's key, whose installation tokens are minted through the provider).
/// [`DbError::NotFound`] when the connection is not the org's. The scan's connection is
/// [`repository_of`]'s.
pub async fn clone_credential(
    ex: impl PgExecutor<'_>,
    cipher: &CredentialCipher,
    org: OrgId,
    connection: ConnectionId,
) -> Result<Option<CloneCredential>> {
    let row = sqlx::query!(
        r#"
        SELECT id, provider AS "provider: Pg<Provider>", credentials
        FROM vcs_connections
        WHERE id = $1 AND org_id = $2
        "#,
        connection.0,
        org.0
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    let Some(sealed) = row.credentials else {
        return Ok(None);
    };
    let plain = cipher.open(&sealed, row.id.as_bytes())?;
    // The error names the connection only, never the content.
    let stored: StoredCredentials =
        serde_json::from_slice(plain.expose_secret()).map_err(|_| {
            DbError::Corrupt(format!(
                "connection {} holds unreadable credentials",
                row.id
            ))
        })?;
    let default_user = clone_username(row.provider.0);
    Ok(match stored {
        StoredCredentials::Token(token) => Some(CloneCredential {
            username: default_user.to_owned(),
            token,
        }),
        StoredCredentials::Fields {
            token: Some(token),
            username,
        } => Some(CloneCredential {
            username: username.unwrap_or_else(|| default_user.to_owned()),
            token,
        }),
        StoredCredentials::Fields { token: None, .. } => None,
    })
}

/// The repository a scan is of, as its provider knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRepository {
    pub connection_id: ConnectionId,
    pub provider: Provider,
    pub provider_repo_id: String,
    pub full_name: String,
    /// GitHub: the App installation that sees the repository, once known.
    pub installation_id: Option<String>,
    /// Set for a pull request's scan.
    pub pr_number: Option<i32>,
    /// The connection holds credentials of any kind.
    pub has_credentials: bool,
    /// The connection's API root; empty for the provider's public service.
    pub base_url: String,
}

/// The repository of one of the org's scans.
pub async fn repository_of(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    scan: ScanId,
) -> Result<ScanRepository> {
    let row = sqlx::query!(
        r#"
        SELECT p.connection_id, c.provider AS "provider: Pg<Provider>", p.provider_repo_id,
               p.full_name, p.provider_installation_id, s.pr_number,
               c.credentials IS NOT NULL AS "has_credentials!", c.base_url
        FROM scans s
        JOIN projects p ON p.id = s.project_id
        JOIN vcs_connections c ON c.id = p.connection_id
        WHERE s.id = $1 AND s.org_id = $2
        "#,
        scan.0,
        org.0
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    Ok(ScanRepository {
        connection_id: row.connection_id.into(),
        provider: row.provider.0,
        provider_repo_id: row.provider_repo_id,
        full_name: row.full_name,
        installation_id: row.provider_installation_id,
        pr_number: row.pr_number,
        has_credentials: row.has_credentials,
        base_url: row.base_url,
    })
}

/// SHA-256 of an upload's canonical JSON: two uploads are the same upload when this agrees.
pub fn results_digest(results: &ScanResults) -> Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    serde_json::to_writer(&mut hasher, results)
        .map_err(|e| DbError::Corrupt(format!("results do not serialize: {e}")))?;
    Ok(hasher.finalize().into())
}

/// What an attempt's upload did, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultsSummary {
    pub scan_id: ScanId,
    pub attempt: i32,
    pub findings: IngestSummary,
}

/// The outcome of [`record_results`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Ingested now; the scan succeeded.
    Stored(ResultsSummary),
    /// The same upload of this attempt was recorded before: nothing changed.
    Repeated(ResultsSummary),
    /// The scan has not started (`claimed`): the worker must report `running` first.
    NotStarted,
}

/// The summary recorded for this very upload (same scan, attempt and digest), if any.
pub async fn recorded_results(
    ex: impl PgExecutor<'_>,
    scan: ScanId,
    attempt: i32,
    digest: &[u8; 32],
) -> Result<Option<ResultsSummary>> {
    let row = sqlx::query!(
        r#"
        SELECT findings_reported, findings_stored, findings_new, findings_fixed, findings_removed
        FROM scan_results WHERE scan_id = $1 AND attempt = $2 AND upload_sha256 = $3
        "#,
        scan.0,
        attempt,
        &digest[..]
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| ResultsSummary {
        scan_id: scan,
        attempt,
        findings: IngestSummary {
            reported: r.findings_reported,
            stored: r.findings_stored,
            new: r.findings_new,
            fixed: r.findings_fixed,
            removed: r.findings_removed,
        },
    }))
}

/// Records an attempt's results in the caller's transaction: findings ingest and lifecycle, the
/// `scan_results` row of (scan, attempt), the scanned commit when the scan named none, and the
/// move to `succeeded` (through `reporting` when the worker did not report it). The scan row is
/// locked first, so concurrent uploads apply one after the other.
///
/// A repeat of an upload already recorded (same attempt, same `digest`) returns
/// [`Recorded::Repeated`] whatever the lease. Otherwise the lease must still hold the scan and
/// `results.attempt` must be its attempt, else [`DbError::LeaseLost`] and nothing is written.
pub async fn record_results(
    conn: &mut PgConnection,
    lease: &Lease,
    results: &ScanResults,
    digest: &[u8; 32],
) -> Result<Recorded> {
    let scan = sqlx::query!(
        r#"
        SELECT s.org_id, s.project_id, s.kind AS "kind: Pg<ScanKind>",
               s.state AS "state: Pg<ScanState>", s.attempt, s.lease_token, s.git_ref,
               p.default_branch
        FROM scans s JOIN projects p ON p.id = s.project_id
        WHERE s.id = $1
        FOR UPDATE OF s
        "#,
        lease.scan_id.0
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DbError::LeaseLost)?;
    if let Some(summary) =
        recorded_results(&mut *conn, lease.scan_id, results.attempt, digest).await?
    {
        return Ok(Recorded::Repeated(summary));
    }
    if scan.lease_token != Some(lease.token) || scan.attempt != results.attempt {
        return Err(DbError::LeaseLost);
    }
    let state = scan.state.0;
    match state {
        ScanState::Running | ScanState::Reporting => {}
        ScanState::Claimed => return Ok(Recorded::NotStarted),
        // An active state is the only one carrying a lease token.
        other => {
            return Err(DbError::Corrupt(format!(
                "scan {} holds a lease in state {other}",
                lease.scan_id
            )))
        }
    }
    let target = ScanTarget {
        org_id: scan.org_id.into(),
        project_id: scan.project_id.into(),
        scan_id: lease.scan_id,
        kind: scan.kind.0,
        git_ref: scanned_ref(scan.kind.0, scan.git_ref, scan.default_branch)?,
    };
    let summary = findings::ingest(
        &mut *conn,
        &target,
        Reported {
            findings: &results.findings,
            fixed_in_pr: &results.fixed_in_pr,
            rules_run: &results.rules_run,
            deleted_paths: &results.deleted_paths,
            unread_paths: &results.unread_paths,
        },
    )
    .await?;
    let steps = serde_json::to_value(&results.trail.steps)
        .map_err(|e| DbError::Corrupt(format!("step timings do not serialize: {e}")))?;
    attempts::record_trail(
        &mut *conn,
        lease.scan_id,
        results.attempt,
        scan.org_id.into(),
        &results.trail,
        None,
    )
    .await?;
    sqlx::query!(
        r#"
        INSERT INTO scan_results (scan_id, attempt, org_id, upload_sha256, commit_sha,
                                  merge_base_sha, files_scanned, rules_run, findings_reported,
                                  findings_stored, findings_new, findings_fixed, findings_removed,
                                  steps)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        "#,
        lease.scan_id.0,
        results.attempt,
        scan.org_id,
        &digest[..],
        results.commit_sha,
        results.merge_base_sha,
        i64::try_from(results.files_scanned).unwrap_or(i64::MAX),
        results.rules_run.len() as i64,
        summary.reported,
        summary.stored,
        summary.new,
        summary.fixed,
        summary.removed,
        steps
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE scans SET commit_sha = COALESCE(commit_sha, $2) WHERE id = $1",
        lease.scan_id.0,
        results.commit_sha
    )
    .execute(&mut *conn)
    .await?;
    if state == ScanState::Running {
        queue::advance_as(&mut *conn, lease, ScanState::Reporting, None, WORKER_ACTOR).await?;
    }
    queue::advance_as(&mut *conn, lease, ScanState::Succeeded, None, WORKER_ACTOR).await?;
    Ok(Recorded::Stored(ResultsSummary {
        scan_id: lease.scan_id,
        attempt: results.attempt,
        findings: summary,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_tokens_have_the_documented_shape() {
        let a = generate_scan_token();
        let b = generate_scan_token();
        assert!(looks_like_scan_token(a.expose_secret()));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), 4 + 43);
        assert!(a.expose_secret().starts_with("pks_"));
        assert!(!looks_like_scan_token(&format!("pkt_{}", "a".repeat(43))));
        assert!(!looks_like_scan_token("pks_short"));
    }

    #[test]
    fn stored_credentials_read_only_token_and_username() {
        let s: StoredCredentials = serde_json::from_str(r#""glpat-x""#).unwrap();
        assert!(matches!(s, StoredCredentials::Token(t) if t == "glpat-x"));
        let s: StoredCredentials =
            serde_json::from_str(r#"{"token":"t","username":"u","other":1}"#).unwrap();
        assert!(matches!(
            s,
            StoredCredentials::Fields { token: Some(t), username: Some(u) } if t == "t" && u == "u"
        ));
        let s: StoredCredentials =
            serde_json::from_str(r#"{"app_id":1,"private_key":"-----BEGIN"}"#).unwrap();
        assert!(matches!(s, StoredCredentials::Fields { token: None, .. }));
    }

    #[test]
    fn the_digest_is_the_uploads_canonical_json() {
        let r = ScanResults {
            attempt: 1,
            commit_sha: "a".repeat(40),
            merge_base_sha: None,
            rules_run: vec![],
            deleted_paths: vec![],
            unread_paths: Vec::new(),
            files_scanned: 3,
            findings: vec![],
            fixed_in_pr: vec![],
            trail: Default::default(),
        };
        let mut other = r.clone();
        assert_eq!(results_digest(&r).unwrap(), results_digest(&other).unwrap());
        other.files_scanned = 4;
        assert_ne!(results_digest(&r).unwrap(), results_digest(&other).unwrap());
    }
}
