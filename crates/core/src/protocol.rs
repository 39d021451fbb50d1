//! The worker protocol: what the control plane hands a scan's worker, and what the worker sends
//! back. Plain data, shared by the API (which serves and accepts it) and the worker (which
//! consumes and produces it), so the two cannot drift.
//!
//! The worker authenticates every call with its per-scan token (`pks_…`), minted when the scan
//! is claimed and valid only for that scan's attempt and only while the scan is active.

use crate::finding::{Fingerprint, Product, Severity};
use crate::ids::{ProjectId, ScanId};
use crate::policy::{RuleId, RuleMode};
use crate::scan::ScanKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Prefix of per-scan tokens, so secret scanners can recognise a leaked one.
pub const SCAN_TOKEN_PREFIX: &str = "pks_";

/// Everything a worker needs to run one scan attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanSpec {
    pub scan_id: ScanId,
    pub attempt: i32,
    pub project_id: ProjectId,
    pub kind: ScanKind,
    /// The repository's full name, for logs and feedback.
    pub full_name: String,
    /// From the stored project, never from a webhook.
    pub clone_url: String,
    /// Branch of a full scan, or the PR head ref of a diff scan.
    pub git_ref: String,
    /// Exact commit to scan, when known.
    pub commit_sha: Option<String>,
    /// Target branch of a diff scan.
    pub base_ref: Option<String>,
    /// Target tip of a diff scan, when known.
    pub base_sha: Option<String>,
    /// Merge base, when the provider told us.
    pub merge_base_sha: Option<String>,
    pub pr_number: Option<i32>,
    pub products: Vec<Product>,
    /// Effective rule modes (strongest over the org's policies); rules not listed are Monitor.
    pub policy: BTreeMap<RuleId, RuleMode>,
    /// Paths of the branch's open findings: the worker reports which of them no longer exist,
    /// so the control plane can mark their findings removed.
    pub open_finding_paths: Vec<String>,
    /// The org's own rule packs, loaded next to Picket's pack.
    #[serde(default)]
    pub rule_packs: Vec<RulePackSpec>,
}

/// One of the org's rule packs as the worker loads it (validated when it was uploaded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulePackSpec {
    pub name: String,
    /// SHA-256 (hex) of `content`, for logs and for checking what was loaded.
    pub sha256: String,
    /// The YAML rules.
    pub content: String,
}

/// Clone credential for the one repository of the scan; `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloneCredential {
    pub username: String,
    pub token: String,
}

impl std::fmt::Debug for CloneCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloneCredential")
            .field("username", &self.username)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// A progress report: the worker started (`running`) or began uploading (`reporting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerProgress {
    Running,
    Reporting,
}

/// One finding as the worker reports it. Secret values never appear: for secrets findings the
/// message is written without the value and `secret` carries only a redacted form and a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportedFinding {
    pub product: Product,
    pub rule_id: RuleId,
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub severity: Severity,
    pub message: String,
    pub fingerprint: Fingerprint,
    /// Diff scans: true when the finding is not present at the merge base.
    pub new_in_pr: bool,
    pub secret: Option<RedactedSecret>,
}

/// A secret as it may be stored and shown: first and last characters, and a SHA-256 (hex) of
/// the value, so the same leaked value can be recognised across findings without keeping it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactedSecret {
    pub redacted: String,
    pub sha256: String,
}

/// How long one step of the worker took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTiming {
    pub step: String,
    pub millis: u64,
}

/// The results of one attempt, uploaded once (idempotent per scan and attempt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanResults {
    pub attempt: i32,
    /// The commit actually scanned.
    pub commit_sha: String,
    /// Diff scans: the merge base compared against.
    pub merge_base_sha: Option<String>,
    /// Every rule that ran: an open finding of a rule not in this list is `removed`.
    pub rules_run: Vec<RuleId>,
    /// Of the spec's `open_finding_paths`, those no longer in the tree: their findings are
    /// `removed`.
    pub deleted_paths: Vec<String>,
    pub files_scanned: u64,
    pub findings: Vec<ReportedFinding>,
    pub steps: Vec<StepTiming>,
}

/// A worker's report that its attempt failed, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanFailure {
    pub attempt: i32,
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_print() {
        let c = CloneCredential {
            username: "x-access-token".into(),
            token: "ghs_supersecret".into(),
        };
        assert!(!format!("{c:?}").contains("supersecret"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<StepTiming>(r#"{"step":"clone","millis":3,"x":1}"#);
        assert!(err.is_err());
    }
}
