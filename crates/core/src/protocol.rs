//! The worker protocol: what the control plane hands a scan's worker, and what the worker sends
//! back. Plain data, shared by the API (which serves and accepts it) and the worker (which
//! consumes and produces it), so the two cannot drift.
//!
//! The worker authenticates every call with its per-scan token (`pks_…`), minted when the scan
//! is claimed and valid only for that scan's attempt and only while the scan is active.

use crate::ecosystem::Ecosystem;
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
    /// The target tip the requester saw (a webhook's `pull_request.base.sha`), for display only:
    /// the baseline is always the merge base with `base_ref`'s tip when the scan runs.
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
    /// The project's own path ignores (gitignore syntax, anchored at the repository root),
    /// applied on top of the repository's `.semgrepignore` (or Semgrep's defaults without one).
    #[serde(default)]
    pub path_ignores: Vec<String>,
    /// Whether `nosemgrep` comments suppress findings (the org's setting; default on). Off, a
    /// commented finding is reported like any other.
    #[serde(default = "default_true")]
    pub inline_suppression: bool,
    /// Whether the org stores the matched lines of Code findings (its setting; default on). Off,
    /// the worker sends none, so the code never leaves the scan's environment.
    #[serde(default = "default_true")]
    pub store_matched_lines: bool,
}

fn default_true() -> bool {
    true
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
    /// Set when a `nosemgrep` comment covers the finding: it is stored `ignored` with the reason
    /// `nosemgrep`, so it stays visible.
    #[serde(default)]
    pub suppressed: Option<InlineSuppression>,
    /// Code findings only, and only when the org stores them ([`ScanSpec::store_matched_lines`]):
    /// the matched source lines from `start_line` on, at most [`MAX_MATCHED_LINES`] of them, each
    /// at most [`MAX_MATCHED_LINE_CHARS`] characters (longer ones cut, ending in `…`), without
    /// line terminators or NUL. Empty when not sent. Never for Secrets or Supply Chain findings.
    #[serde(default)]
    pub matched_lines: Vec<String>,
    /// Supply Chain findings only, and required for them: the vulnerable dependency. Its path
    /// is the lockfile's, its line the one that pins the package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency: Option<VulnerableDependency>,
}

/// What a Supply Chain finding is about: one package of one lockfile, affected by one
/// vulnerability (a group of advisories that are aliases of each other). The finding's rule id
/// is the group's key ([`VulnerableDependency::aliases`]' earliest CVE, else its least GHSA id,
/// else its least id), and its identity leaves the installed version out, so moving to another
/// affected version keeps the finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VulnerableDependency {
    pub ecosystem: Ecosystem,
    /// The package's name as the ecosystem normalises it ([`Ecosystem::normalize`]).
    pub package: String,
    /// The affected versions the lockfile installs, in the lockfile's order: one, except where a
    /// lockfile installs several copies (npm's nested `node_modules`). At most 100.
    pub versions: Vec<String>,
    /// The ids of the advisories that affect the installed versions, sorted. Never empty.
    pub advisories: Vec<String>,
    /// Every id of the vulnerability group (its advisories' ids and aliases), sorted.
    pub aliases: Vec<String>,
    /// The versions that fix it, in the ecosystem's order; empty when no fix is known.
    pub fixed: Vec<String>,
    /// Whether the project declares it itself (`true`) or another package pulls it in
    /// (`false`); `None` where the lockfile does not say.
    pub direct: Option<bool>,
    /// Whether only development installs get it; `None` where the lockfile does not say.
    pub dev: Option<bool>,
    /// Where the finding's severity comes from (`cvss_v4`, `cvss_v3`, `cvss_v2`, `database`);
    /// `None` when no advisory of the group rates it: the finding is then `medium`, and policies
    /// reach it through `supply-chain:unrated`, not `supply-chain:medium`.
    pub severity_source: Option<String>,
    /// The first affecting advisory's summary, at most 500 characters.
    pub summary: Option<String>,
}

impl VulnerableDependency {
    /// The page of the first affecting advisory on osv.dev.
    pub fn url(&self) -> String {
        format!(
            "https://osv.dev/vulnerability/{}",
            self.advisories.first().map_or("", String::as_str)
        )
    }
}

/// Most matched lines a finding carries ([`ReportedFinding::matched_lines`]).
pub const MAX_MATCHED_LINES: usize = 5;
/// Most characters of one matched line; longer lines are cut and end in `…`.
pub const MAX_MATCHED_LINE_CHARS: usize = 400;

/// A `nosemgrep` comment that covers a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineSuppression {
    /// 1-based line of the comment (the finding's first line, or the line above it).
    pub line: u32,
    /// The rule ids the comment names; empty for a bare `nosemgrep` (every rule on the line).
    pub rules: Vec<String>,
}

/// A secret as it may be stored and shown: first and last characters, and a SHA-256 (hex) of
/// the value, so the same leaked value can be recognised across findings without keeping it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactedSecret {
    pub redacted: String,
    pub sha256: String,
}

/// One step the worker ran (clone, an engine, identities, upload, ...), with its figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// `clone`, `ignore`, `engine`, `suppression`, `identities`, `materialize_base`, `upload`.
    pub step: String,
    /// When it started, RFC 3339 (the worker's clock).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: time::OffsetDateTime,
    /// How long it took, milliseconds.
    pub millis: u64,
    /// What it counted: `bytes_received`, `objects`, `depth`, `files_scanned`, `files_ignored`,
    /// `files_skipped`, `rules_run`, `findings`, `suppressed`, ... (names are snake_case).
    #[serde(default)]
    pub figures: BTreeMap<String, u64>,
}

/// What ran in a scan attempt and what it decided about files: the worker's audit trail, kept
/// with the attempt and shown by `GET /api/v1/scans/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanTrail {
    /// Every step the worker ran, in order; on failure, the failed step is the last.
    pub steps: Vec<Step>,
    /// The engine and its version, e.g. `semgrep 1.185.0 (native)`; absent before it ran.
    pub engine: Option<String>,
    /// The rule packs loaded: Picket's own (`picket`) and the org's, with content hashes.
    pub rule_packs: Vec<RulePackUse>,
    /// Files the engine could not read or parse (wholly or in part), with the reason; the scan
    /// goes on with everything else.
    pub skipped_files: Vec<SkippedFile>,
    /// The ignore rules that excluded at least one file, and where they came from.
    pub ignores: Vec<IgnoreRuleUse>,
    /// What Supply Chain read, when it ran: every lockfile, with what could not be read or
    /// checked. An empty list says plainly that the repository has no lockfile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supply_chain: Option<SupplyChainTrail>,
}

/// Supply Chain's part of a scan's trail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyChainTrail {
    /// Every lockfile of the repository (a diff scan: of the head, and any the merge base could
    /// not be read from), sorted by path; empty when there is none.
    pub lockfiles: Vec<LockfileRead>,
    /// Advisories the lockfiles' packages were checked against.
    pub advisories: u64,
    /// Ecosystems of the lockfiles of which the control plane holds no advisory at all (none
    /// imported yet): their packages were checked against nothing.
    #[serde(default)]
    pub empty_ecosystems: Vec<Ecosystem>,
}

/// One lockfile as a scan read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockfileRead {
    /// Relative to the repository root.
    pub path: String,
    /// The format, e.g. `package-lock`, `poetry-lock`, `go-mod` (picket-lockfile's names).
    pub format: String,
    pub ecosystem: Ecosystem,
    /// Registry packages checked against advisories.
    pub packages: u64,
    /// Entries not from the registry (git, path, URL), not checked.
    pub not_registry: u64,
    /// Entries that pin no exact version (a requirements file's `>=`), never guessed; at most
    /// [`MAX_TRAIL_ENTRIES`].
    #[serde(default)]
    pub unresolved: Vec<TrailEntry>,
    /// Packages that could not be checked, with the reason (a version the ecosystem does not
    /// accept, an advisory range that cannot be read); at most [`MAX_TRAIL_ENTRIES`].
    #[serde(default)]
    pub unchecked: Vec<TrailEntry>,
    /// Set when the lockfile could not be read: nothing of it was checked. Names the reason
    /// (and the line where the parser knows it).
    pub error: Option<String>,
    /// Diff scans: this is the merge base's copy (listed only when it could not be read; the
    /// head's findings of it then all count as new).
    #[serde(default)]
    pub merge_base: bool,
}

/// An entry of a lockfile that was not checked, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailEntry {
    /// 1-based, where known.
    pub line: Option<u32>,
    /// The entry as written, or `name version`; at most 500 characters.
    pub text: String,
    pub reason: String,
}

/// Most [`LockfileRead::unresolved`] and [`LockfileRead::unchecked`] entries kept per lockfile.
pub const MAX_TRAIL_ENTRIES: usize = 100;
/// Most lockfiles one [`SupplyChainTrail`] lists.
pub const MAX_TRAIL_LOCKFILES: usize = 10_000;
/// Most [`VulnerableDependency::versions`].
pub const MAX_DEPENDENCY_VERSIONS: usize = 100;
/// Most entries of [`VulnerableDependency::advisories`], `aliases` and `fixed` each.
pub const MAX_DEPENDENCY_LIST: usize = 1_000;
/// Longest version or advisory id in a [`VulnerableDependency`], in characters.
pub const MAX_DEPENDENCY_ENTRY_CHARS: usize = 200;
/// Longest package name a [`VulnerableDependency`] or an [`AdvisoryQuery`] carries, in
/// characters (the advisory store's own limit).
pub const MAX_PACKAGE_NAME_CHARS: usize = 500;

/// A rule pack as loaded by one scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulePackUse {
    pub name: String,
    /// SHA-256 (hex) over the pack's rule files.
    pub sha256: String,
    /// Rules loaded from it.
    pub rules: u64,
}

/// Why a file was not (fully) scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipKind {
    /// The engine could not parse the file at all: no rule ran on it.
    Unparsable,
    /// The engine parsed only part of the file: rules ran on the rest.
    PartlyParsed,
    /// Larger than the engine's per-file limit.
    TooLarge,
    /// The engine gave up on it (time or memory limit, an internal error).
    EngineError,
}

/// A file the engine could not scan, or scanned only in part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedFile {
    /// Relative to the repository root (for a diff scan's base copy: its path at the base).
    pub path: String,
    pub kind: SkipKind,
    /// The engine's message, cut to a few hundred characters.
    pub reason: String,
}

/// An ignore rule that excluded files from the scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreRuleUse {
    /// The pattern as written.
    pub pattern: String,
    /// `.semgrepignore`, `sub/dir/.semgrepignore`, `project` (the API's path ignores) or
    /// `default` (Semgrep's defaults, used when the repository has no root `.semgrepignore`).
    pub source: String,
    /// Files it excluded.
    pub files: u64,
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
    /// Full scans: paths in the tree the scan could not fully read (a lockfile that does not
    /// parse, or with packages that could not be checked): their open findings stay open,
    /// neither fixed nor removed.
    #[serde(default)]
    pub unread_paths: Vec<String>,
    pub files_scanned: u64,
    pub findings: Vec<ReportedFinding>,
    /// Diff scans: findings at the merge base that the head no longer has (the PR fixes them or
    /// removes their file), with base paths renamed to their head names. Never stored as open.
    #[serde(default)]
    pub fixed_in_pr: Vec<ReportedFinding>,
    pub trail: ScanTrail,
}

/// A worker's report that its attempt failed, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanFailure {
    pub attempt: i32,
    pub code: String,
    pub message: String,
    /// The step that failed (`clone`, `engine`, ...), when the worker knows it.
    #[serde(default)]
    pub step: Option<String>,
    /// What ran until the failure.
    #[serde(default)]
    pub trail: ScanTrail,
}

/// Most characters of one log line a worker sends; longer lines are cut.
pub const MAX_LOG_LINE_CHARS: usize = 2_000;
/// Most lines in one [`LogBatch`].
pub const MAX_LOG_BATCH: usize = 500;

/// How much a log line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub const ALL: [LogLevel; 4] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One line of a worker's log, as the scan's Logs tab shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLine {
    /// The worker's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    pub level: LogLevel,
    /// 1 to [`MAX_LOG_LINE_CHARS`] characters: the event's message and fields.
    pub message: String,
}

/// Log lines a worker sends while it runs (`POST /api/v1/worker/scan/logs`), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogBatch {
    pub attempt: i32,
    /// 1 to [`MAX_LOG_BATCH`] lines.
    pub lines: Vec<LogLine>,
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
        let err = serde_json::from_str::<SkippedFile>(
            r#"{"path":"a.py","kind":"too_large","reason":"big","x":1}"#,
        );
        assert!(err.is_err());
    }
}

/// What a pull request scan's worker sends to begin its feedback
/// (`POST /api/v1/worker/scan/feedback/begin`, fenced by its lease): what it will plan from, so
/// that the control plane can finish the feedback if the worker cannot. `existing` is left empty
/// (comments are read back from the provider when posting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBegin {
    pub attempt: i32,
    pub input: crate::feedback::FeedbackInput,
}

/// What the worker learns when it begins its feedback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackStart {
    pub provider: crate::Provider,
    /// The provider's API root for the feedback client (GitHub: `https://api.github.com`, or a
    /// GitHub Enterprise Server's `https://<host>/api/v3`).
    pub api_url: String,
    /// The repository: the provider's id, `owner/name`, and (GitHub) the App installation.
    pub repo_id: String,
    pub full_name: String,
    pub installation_id: Option<String>,
    /// The login Picket's comments carry (GitHub: `<app slug>[bot]`): only its comments count.
    pub bot_login: String,
    /// The result comes after the org's fail-open deadline: comments may be added, the check is
    /// not failed.
    pub late: bool,
    /// The commented new findings of this PR's previous scan, when there was one with feedback.
    pub previous_commented: Option<Vec<Fingerprint>>,
    /// The PR is a draft (as the control plane last heard), and what the org gives drafts: the
    /// planner's [`FeedbackInput`](crate::feedback::FeedbackInput) fields of the same names.
    pub pr_is_draft: bool,
    pub draft_feedback: crate::feedback::DraftFeedback,
}

/// What the worker posted (`POST /api/v1/worker/scan/feedback/done`): its comments are on the
/// PR, so the control plane only completes the check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackDone {
    pub attempt: i32,
    /// New inline comments posted.
    pub comments_posted: u32,
    /// Review threads resolved.
    pub threads_resolved: u32,
    /// The summary comment: `created`, `updated`, `unchanged` or `none`.
    pub summary: String,
    /// Provider API calls the worker made for its feedback.
    pub api_calls: u64,
    /// The comments were planned for a quiet draft (a draft, with
    /// [`DraftFeedback::CheckOnly`](crate::feedback::DraftFeedback::CheckOnly)): no new comment
    /// was posted, and the control plane posts them if the PR is marked ready for review.
    #[serde(default)]
    pub quiet_draft: bool,
}

/// Most package names one [`AdvisoryQuery`] may ask about, over all ecosystems.
pub const MAX_ADVISORY_QUERY_NAMES: usize = 100_000;

/// A worker's question to the control plane's advisory store
/// (`POST /api/v1/worker/scan/advisories`): every advisory, not withdrawn, that names one of
/// these packages. The answer is `{"records": [...]}`, each an OSV record as imported
/// (<https://ossf.github.io/osv-schema/>), sorted by id; the worker decides which versions they
/// affect. The worker holds no advisory data of its own: the control plane keeps it current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvisoryQuery {
    pub attempt: i32,
    /// At most one entry per ecosystem; names as [`Ecosystem::normalize`] gives them, 1-500
    /// characters, at most [`MAX_ADVISORY_QUERY_NAMES`] in all.
    pub packages: Vec<PackageNames>,
}

/// The package names of one ecosystem in an [`AdvisoryQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageNames {
    pub ecosystem: Ecosystem,
    pub names: Vec<String>,
}
