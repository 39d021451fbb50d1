//! What Picket posts on a pull request after a diff-aware scan (domain.md §2), decided as a pure
//! function: [`plan_feedback`] takes the scan's new findings, the lines of the PR's diff that can
//! carry a comment, and the comments Picket already posted (read back through their hidden
//! markers), and returns a [`FeedbackPlan`]: inline comments to post, comments to keep, review
//! threads to resolve, the summary comment and the check. The worker computes the diff's lines
//! (`picket_worker::diff_lines`) and a provider client (`picket-vcs`) carries the plan out; the
//! types here are core's own so that this crate stays free of I/O and of provider crates.
//!
//! # Rules
//!
//! **Which findings.** Only the scan's *new* findings (absent at the merge base) are input; a
//! finding is commented on when its rule's effective mode (strongest over the org's policies) is
//! Comment or Block. Monitor findings are stored in Picket and never shown on the PR: no comment,
//! no summary row and no check annotation (an annotation is shown in the PR's "Files changed" tab,
//! which is a comment in all but name); only their *count* appears in the summary and the check,
//! so a reviewer knows Picket recorded more. Findings are identified by fingerprint; a duplicate
//! fingerprint in the input is dropped (the first one is kept).
//!
//! **Where each commented finding goes** (exactly one place, [`Placement`]):
//! 1. *Grouped*: when one rule has more than [`GROUP_ABOVE`] (5) new commented findings in the PR,
//!    the rule gets one entry in the summary comment listing all its locations, and none of its
//!    findings gets a new inline comment.
//! 2. *Already commented*: an earlier run posted its comment and the thread is still open; the
//!    comment is kept as it is (never duplicated, never edited: the finding's identity, and so its
//!    comment's subject, did not change). A thread a *person* resolved while the finding stayed is
//!    respected the same way when the finding would otherwise get a new inline comment: kept,
//!    not re-posted on every push (a finding that cannot go inline anyway is listed in the
//!    summary).
//! 3. *Inline*: on the finding's start line if that line is commentable (inside a hunk of the
//!    diff, head side); else on the nearest commentable line within the finding's own range
//!    (`start_line..=end_line`, so the first line of the first hunk that overlaps it). Never on a
//!    line outside the finding's range: a comment there would point at the wrong code.
//! 4. *Summary*: otherwise (the file is not in the diff, or no line of the finding is), a row in
//!    the summary comment's table. A draft PR of an org that keeps drafts quiet
//!    ([`DraftFeedback::CheckOnly`]) gets no new inline comments: those findings are listed in the
//!    summary (reason [`SummaryReason::Draft`]) until the PR is marked ready for review, when
//!    the control plane plans the same head's feedback again as a non-draft's.
//!
//! **Re-runs.** Every inline comment starts with `<!-- picket:finding <fingerprint> -->` and the
//! summary with `<!-- picket:summary -->`; [`parse_marker`] reads them back (first line only, so
//! text further down a body can never pass for a marker). Then:
//! - a finding still new with an open comment: kept (a duplicate open comment for the same
//!   fingerprint, left by a race, is resolved);
//! - a comment whose finding is no longer new and commented (fixed, moved out of the PR, or its
//!   rule now Monitor): its thread is resolved;
//! - a new finding without a comment: a new comment;
//! - a finding that *came back* (its only comments are resolved, and it was not a commented new
//!   finding of the PR's previous scan, so it was gone in between and Picket resolved it): a *new*
//!   comment, below the old resolved thread. Reopening is not used: it needs a call GitHub has
//!   only in GraphQL (`unresolveReviewThread`) and other providers lack, and a fresh comment on
//!   the current line reads better than a reopened thread on an outdated one. Without a previous
//!   scan to compare with, a resolved thread is treated as resolved by a person (never re-posted).
//!   "Came back" is seen only at the scan where it happens: if the finding could not get an inline
//!   comment then (a quiet draft, no line of it in the diff), a later scan reads its old thread as
//!   resolved by a person. Knowing for sure needs a record of the threads Picket resolved, which
//!   the planner does not have.
//! - the summary comment is created once (when there is a commented finding) and edited in
//!   place afterwards, including to say that nothing is left; when its body is unchanged the plan
//!   says so and nothing is sent.
//!
//! Planning the same scan again with the first plan's comments as "already posted" yields no new
//! comment, no thread to resolve and an unchanged summary (tested with proptest).
//!
//! **The check** fails only when a new Block finding exists and the result is not late. A result
//! that arrives after the org's fail-open timeout ([`FeedbackInput::late`]) never fails the
//! check (it already passed without it); its title and summary say so. Annotations: one per new
//! Comment (`warning`) or Block (`failure`) finding, Block first, at most [`MAX_ANNOTATIONS`].
//!
//! **Text from code.** Paths, messages and redacted secrets are escaped (see [`markdown`]) so
//! nothing in them can forge a marker, break the layout or mention anyone. A Secrets finding
//! carries only its redacted form ([`FindingText::Secret`]); its message is never used, so a
//! secret value cannot reach a comment even if a message interpolated it.
//!
//! **Limits.** Comment bodies stay within [`MAX_COMMENT_CHARS`] (GitHub: 65,536), the check's
//! summary and text within [`MAX_CHECK_CHARS`] (65,535, `@octokit/openapi` op
//! `checks/create`): tables stop with "…and N more" when the next row would not fit, and any
//! overrun is cut on a char boundary with a note. Limits count Unicode scalar values.

pub mod markdown;
#[cfg(test)]
mod tests;

use crate::finding::{Fingerprint, Product, Severity};
use crate::policy::{RuleId, RuleMode};
use crate::protocol::ReportedFinding;
use crate::scan::str_enum;
use crate::ParseError;
use markdown::{clip, escape, escape_line, fit, Doc};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::str::FromStr;

/// Longest comment body GitHub accepts, in characters.
pub const MAX_COMMENT_CHARS: usize = 65_536;
/// Longest check run `output.summary` / `output.text`, in characters (`@octokit/openapi` 23.0.2,
/// `checks/create`, `maxLength`).
pub const MAX_CHECK_CHARS: usize = 65_535;
/// A rule with more new commented findings than this in one PR is grouped in the summary.
pub const GROUP_ABOVE: usize = 5;
/// At most this many annotations per check (the client sends them 50 per request).
pub const MAX_ANNOTATIONS: usize = 1_000;
/// Longest annotation title GitHub accepts, in characters (`checks/create`: "255 characters").
pub const MAX_ANNOTATION_TITLE: usize = 255;
/// Messages are cut to this many characters in an inline comment or an annotation.
pub const MAX_MESSAGE_CHARS: usize = 2_000;
/// Messages are cut to this many characters in a table row.
pub const MAX_ROW_MESSAGE_CHARS: usize = 200;
/// The summary comment's marker, its first line.
pub const SUMMARY_MARKER: &str = "<!-- picket:summary -->";
/// What every Picket marker starts with: the string to search a PR's comments for.
pub const MARKER_PREFIX: &str = "<!-- picket:";

/// Appended to a body that had to be cut.
const CUT_NOTE: &str = "\n\n… (cut to fit the provider's size limit; the full list is in Picket)";
/// Characters kept free for what closes a document after its tables.
const RESERVE: usize = 4_096;

/// The hidden marker that identifies a comment Picket posted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Marker {
    /// The PR's summary comment.
    Summary,
    /// The inline comment of one finding.
    Finding(Fingerprint),
}

impl Marker {
    /// The marker as the first line of a body: `<!-- picket:summary -->` or
    /// `<!-- picket:finding <64 hex> -->`.
    pub fn render(&self) -> String {
        match self {
            Marker::Summary => SUMMARY_MARKER.to_owned(),
            Marker::Finding(fp) => format!("{MARKER_PREFIX}finding {fp} -->"),
        }
    }
}

/// Reads the marker on the first line of a comment body (leading whitespace and a trailing `\r`
/// allowed); `None` when the first line is not exactly a marker. Text further down never counts.
pub fn parse_marker(body: &str) -> Option<Marker> {
    let first = body.trim_start().lines().next()?.trim_end();
    if first == SUMMARY_MARKER {
        return Some(Marker::Summary);
    }
    let fp = first
        .strip_prefix(MARKER_PREFIX)?
        .strip_prefix("finding ")?
        .strip_suffix(" -->")?;
    fp.parse().ok().map(Marker::Finding)
}

/// What a finding says, as it may be shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingText {
    /// The rule's message (Code, Supply Chain).
    Message(String),
    /// A Secrets finding: only the redacted form of the value (first and last characters).
    Secret { redacted: String },
}

/// One new finding of the PR's scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewFinding {
    pub fingerprint: Fingerprint,
    pub rule: RuleId,
    /// The rule's effective mode.
    pub mode: RuleMode,
    pub severity: Severity,
    pub product: Product,
    /// Head path, `/`-separated.
    pub path: String,
    /// 1-based, inclusive; an `end_line` before `start_line` is read as `start_line`.
    pub start_line: u32,
    pub end_line: u32,
    pub text: FindingText,
}

impl NewFinding {
    /// The feedback view of a reported finding: `None` unless it is new in the PR and not
    /// suppressed by a `nosemgrep` comment. The mode is [`crate::policy::mode_of`] under `modes`
    /// (the scan spec's effective policy; rules not listed are Monitor). A Secrets finding keeps only its redacted
    /// form (`[redacted]` if the worker sent none); its message is dropped.
    pub fn from_reported(
        f: &ReportedFinding,
        modes: &BTreeMap<RuleId, RuleMode>,
    ) -> Option<NewFinding> {
        if !f.new_in_pr || f.suppressed.is_some() {
            return None;
        }
        let text = match f.product {
            Product::Secrets => FindingText::Secret {
                redacted: f
                    .secret
                    .as_ref()
                    .map_or_else(|| "[redacted]".to_owned(), |s| s.redacted.clone()),
            },
            Product::Code | Product::SupplyChain => FindingText::Message(f.message.clone()),
        };
        Some(NewFinding {
            fingerprint: f.fingerprint.clone(),
            rule: f.rule_id.clone(),
            mode: crate::policy::mode_of(f, modes),
            severity: f.severity,
            product: f.product,
            path: f.path.clone(),
            start_line: f.start_line,
            end_line: f.end_line,
            text,
        })
    }

    fn lines(&self) -> (u32, u32) {
        let start = self.start_line.max(1);
        (start, self.end_line.max(start))
    }
}

/// One hunk of the diff on the head side: lines `start..=end` (1-based) can carry a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hunk {
    pub start: u32,
    pub end: u32,
}

/// The lines of a PR's diff that can carry a review comment, by head path: every line of a hunk
/// on the RIGHT side (added and context lines), hunk by hunk in file order. A file in the diff
/// with no such line (binary, renamed unchanged, emptied) is present with no hunks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffLines {
    files: BTreeMap<String, Vec<Hunk>>,
}

impl DiffLines {
    pub fn new() -> DiffLines {
        DiffLines::default()
    }

    /// Records that `path` is in the diff (with no lines unless hunks are added).
    pub fn add_file(&mut self, path: &str) {
        self.files.entry(path.to_owned()).or_default();
    }

    /// Adds the head-side lines `start..=end` of `path`; an empty or 0-based range only records
    /// the file. Hunks stay sorted by start.
    pub fn add_hunk(&mut self, path: &str, start: u32, end: u32) {
        let hunks = self.files.entry(path.to_owned()).or_default();
        if start == 0 || end < start {
            return;
        }
        let hunk = Hunk { start, end };
        let at = hunks.partition_point(|h| *h < hunk);
        hunks.insert(at, hunk);
    }

    pub fn contains_file(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// The hunks of `path`, sorted; `None` when the file is not in the diff.
    pub fn hunks(&self, path: &str) -> Option<&[Hunk]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// The hunk of `path` that `line` belongs to, if any.
    pub fn hunk_of(&self, path: &str, line: u32) -> Option<Hunk> {
        self.hunks(path)?
            .iter()
            .find(|h| (h.start..=h.end).contains(&line))
            .copied()
    }

    /// Whether `line` of `path` can carry a comment.
    pub fn is_commentable(&self, path: &str, line: u32) -> bool {
        self.hunk_of(path, line).is_some()
    }

    /// Every commentable line of `path`, ascending.
    pub fn lines(&self, path: &str) -> BTreeSet<u32> {
        self.hunks(path)
            .unwrap_or_default()
            .iter()
            .flat_map(|h| h.start..=h.end)
            .collect()
    }

    /// The paths in the diff with their hunks.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[Hunk])> {
        self.files.iter().map(|(p, h)| (p.as_str(), h.as_slice()))
    }

    /// The line a finding's comment goes on: `start` if commentable, else the first commentable
    /// line in `start..=end`.
    fn place(&self, path: &str, start: u32, end: u32) -> Result<u32, SummaryReason> {
        let hunks = self.hunks(path).ok_or(SummaryReason::FileNotInDiff)?;
        hunks
            .iter()
            .filter(|h| h.end >= start && h.start <= end)
            .map(|h| h.start.max(start))
            .min()
            .ok_or(SummaryReason::NotOnADiffLine)
    }
}

/// A comment Picket posted earlier, as the provider returns it. Pass only comments authored by
/// Picket's own identity (the App's bot user): a marker in someone else's comment means nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistingComment {
    pub comment_id: String,
    /// The review thread (GitHub: GraphQL node id); `None` for a conversation comment.
    pub thread_id: Option<String>,
    pub body: String,
    pub resolved: bool,
}

/// Whether draft PRs get comments (an org setting): `full` | `check_only`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftFeedback {
    /// Drafts get the same feedback as any PR.
    #[default]
    Full,
    /// Drafts get the check (and updates of an existing summary comment, and resolved threads),
    /// but no new comment until they are ready for review.
    CheckOnly,
}

impl DraftFeedback {
    pub const ALL: [DraftFeedback; 2] = [DraftFeedback::Full, DraftFeedback::CheckOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            DraftFeedback::Full => "full",
            DraftFeedback::CheckOnly => "check_only",
        }
    }
}

str_enum!(DraftFeedback, "draft feedback", "full | check_only");

/// Everything [`plan_feedback`] decides from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackInput {
    /// The scan's new findings, every mode.
    pub findings: Vec<NewFinding>,
    /// Fingerprints of the commented (Comment/Block) new findings of this PR's previous scan;
    /// `None` when there was none or it is unknown. Only used to tell a finding that came back
    /// (→ a new comment) from one whose thread a person resolved (→ left alone).
    pub previous_commented: Option<BTreeSet<Fingerprint>>,
    /// How many findings of the merge base this PR fixes (`ScanResults::fixed_in_pr`).
    pub fixed_in_pr: usize,
    /// The diff's commentable lines.
    pub diff: DiffLines,
    /// Picket's comments already on the PR (others are ignored by marker).
    pub existing: Vec<ExistingComment>,
    pub draft_feedback: DraftFeedback,
    pub pr_is_draft: bool,
    /// The result arrived after the org's fail-open timeout: the check must not fail.
    pub late: bool,
    /// Lockfiles of the head that Supply Chain could not read: their packages were checked
    /// against nothing. The check's title and notes (and the summary's) name them, so a broken
    /// lockfile never passes unseen.
    #[serde(default)]
    pub unreadable_lockfiles: Vec<UnreadableLockfile>,
}

/// A lockfile a scan could not read, and why (from the scan's trail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableLockfile {
    pub path: String,
    pub reason: String,
}

/// Why a finding is listed in the summary comment instead of having an inline comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryReason {
    /// Its file is not part of the PR's diff.
    FileNotInDiff,
    /// No line of its range is a line of the diff.
    NotOnADiffLine,
    /// The PR is a draft and the org keeps drafts quiet.
    Draft,
}

/// Where one commented finding is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Placement {
    /// A new inline comment on `line` (see [`FeedbackPlan::post`]).
    Inline { line: u32 },
    /// An earlier run's comment, kept (see [`FeedbackPlan::keep`]).
    Commented { comment_id: String },
    /// A row of the summary comment.
    Summary { reason: SummaryReason },
    /// Inside its rule's group in the summary comment.
    Grouped,
}

/// An inline comment to post on the PR's head commit, side RIGHT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedComment {
    pub fingerprint: Fingerprint,
    pub path: String,
    pub line: u32,
    /// Starts with the finding's marker.
    pub body: String,
}

/// An earlier comment that stays as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptComment {
    pub fingerprint: Fingerprint,
    pub comment_id: String,
    /// Resolved by a person while the finding stayed.
    pub resolved: bool,
}

/// Why a thread is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolveReason {
    /// The finding is no longer a new finding of the PR.
    Gone,
    /// Still new, but its rule is Monitor now.
    NotCommented,
    /// Another open comment for the same finding is kept.
    Duplicate,
}

/// A review thread to resolve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadToResolve {
    pub fingerprint: Fingerprint,
    pub comment_id: String,
    /// `None` when the provider gave no thread (the client resolves by comment, if it can).
    pub thread_id: Option<String>,
    pub reason: ResolveReason,
}

/// One rule grouped in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleGroup {
    pub rule: RuleId,
    pub mode: RuleMode,
    /// Its findings, in display order.
    pub fingerprints: Vec<Fingerprint>,
}

impl FeedbackInput {
    /// A draft PR of an org that keeps drafts quiet: no new comment.
    pub fn quiet_draft(&self) -> bool {
        self.pr_is_draft && self.draft_feedback == DraftFeedback::CheckOnly
    }
}

/// What to do with the summary comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum SummaryAction {
    /// Post it (there is no summary comment yet).
    Create,
    /// Edit the existing one in place.
    Update { comment_id: String },
    /// The existing one already says this.
    Unchanged { comment_id: String },
    /// Nothing to say and no summary comment yet, or a quiet draft.
    None,
}

/// The summary comment: its action and its body (always computed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryComment {
    pub action: SummaryAction,
    /// Starts with [`SUMMARY_MARKER`]; at most [`MAX_COMMENT_CHARS`].
    pub body: String,
}

/// How the check ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckConclusion {
    Success,
    Failure,
}

/// An annotation's level: `failure` for a Block finding, `warning` for a Comment one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationLevel {
    Warning,
    Failure,
}

/// One check annotation (plain text, not Markdown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedAnnotation {
    pub fingerprint: Fingerprint,
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub level: AnnotationLevel,
    /// At most [`MAX_ANNOTATION_TITLE`] characters.
    pub title: String,
    /// At most [`MAX_MESSAGE_CHARS`] characters; a Secrets finding's is built from its redacted
    /// form only.
    pub message: String,
}

/// The completed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckPlan {
    pub conclusion: CheckConclusion,
    pub title: String,
    /// Markdown, at most [`MAX_CHECK_CHARS`].
    pub summary: String,
    /// Markdown: every commented new finding; at most [`MAX_CHECK_CHARS`].
    pub text: Option<String>,
    pub annotations: Vec<PlannedAnnotation>,
}

/// What to post on the PR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackPlan {
    /// Where each commented (Comment/Block) new finding is shown; Monitor findings are absent.
    pub placements: BTreeMap<Fingerprint, Placement>,
    /// New inline comments, in file order.
    pub post: Vec<PlannedComment>,
    /// Earlier comments that stay.
    pub keep: Vec<KeptComment>,
    /// Threads to resolve.
    pub resolve: Vec<ThreadToResolve>,
    /// Rules grouped in the summary.
    pub groups: Vec<RuleGroup>,
    pub summary: SummaryComment,
    pub check: CheckPlan,
}

/// Decides what Picket posts on a PR. Pure and deterministic; see the module docs for the rules.
pub fn plan_feedback(input: &FeedbackInput) -> FeedbackPlan {
    // Unique by fingerprint, in display order: Block first, then severity, then location.
    let mut seen = BTreeSet::new();
    let mut findings: Vec<&NewFinding> = input
        .findings
        .iter()
        .filter(|f| seen.insert(&f.fingerprint))
        .collect();
    findings.sort_by(|a, b| {
        (
            Reverse(a.mode),
            Reverse(a.severity),
            &a.path,
            a.start_line,
            &a.rule,
            &a.fingerprint,
        )
            .cmp(&(
                Reverse(b.mode),
                Reverse(b.severity),
                &b.path,
                b.start_line,
                &b.rule,
                &b.fingerprint,
            ))
    });
    let commented: Vec<&NewFinding> = findings
        .iter()
        .copied()
        .filter(|f| f.mode.comments())
        .collect();
    let monitored = findings.len() - commented.len();

    let mut per_rule: BTreeMap<&RuleId, usize> = BTreeMap::new();
    for f in &commented {
        *per_rule.entry(&f.rule).or_default() += 1;
    }
    let grouped_rules: BTreeSet<&RuleId> = per_rule
        .into_iter()
        .filter(|&(_, n)| n > GROUP_ABOVE)
        .map(|(r, _)| r)
        .collect();

    // Earlier comments by fingerprint, in the order the provider listed them.
    let mut earlier: BTreeMap<Fingerprint, Vec<&ExistingComment>> = BTreeMap::new();
    let mut summary_comment: Option<&ExistingComment> = None;
    for c in &input.existing {
        match parse_marker(&c.body) {
            Some(Marker::Finding(fp)) => earlier.entry(fp).or_default().push(c),
            Some(Marker::Summary) => {
                summary_comment.get_or_insert(c);
            }
            None => {}
        }
    }

    let quiet = input.quiet_draft();
    let mut placements = BTreeMap::new();
    let mut post = Vec::new();
    let mut keep = Vec::new();
    let mut resolve = Vec::new();
    for f in &commented {
        let comments = earlier.remove(&f.fingerprint).unwrap_or_default();
        let mut open_ones = comments.iter().copied().filter(|c| !c.resolved);
        let open = open_ones.next();
        for dup in open_ones {
            resolve.push(ThreadToResolve {
                fingerprint: f.fingerprint.clone(),
                comment_id: dup.comment_id.clone(),
                thread_id: dup.thread_id.clone(),
                reason: ResolveReason::Duplicate,
            });
        }
        let came_back = input
            .previous_commented
            .as_ref()
            .is_some_and(|prev| !prev.contains(&f.fingerprint));
        let (start, end) = f.lines();
        let placed = input.diff.place(&f.path, start, end);
        // The comment that stands for this finding: the open one; else, when the finding would
        // get a new inline comment, a resolved one, unless the finding came back since.
        let standing = open.or_else(|| {
            comments.first().copied().filter(|_| {
                !came_back && !quiet && placed.is_ok() && !grouped_rules.contains(&f.rule)
            })
        });
        if let Some(c) = standing {
            keep.push(KeptComment {
                fingerprint: f.fingerprint.clone(),
                comment_id: c.comment_id.clone(),
                resolved: c.resolved,
            });
        }
        let placement = if grouped_rules.contains(&f.rule) {
            Placement::Grouped
        } else if let Some(c) = standing {
            Placement::Commented {
                comment_id: c.comment_id.clone(),
            }
        } else {
            match placed {
                Ok(_) if quiet => Placement::Summary {
                    reason: SummaryReason::Draft,
                },
                Ok(line) => {
                    post.push(PlannedComment {
                        fingerprint: f.fingerprint.clone(),
                        path: f.path.clone(),
                        line,
                        body: inline_body(f, line),
                    });
                    Placement::Inline { line }
                }
                Err(reason) => Placement::Summary { reason },
            }
        };
        placements.insert(f.fingerprint.clone(), placement);
    }
    // Comments whose finding is no longer a commented new finding.
    let still_new: BTreeSet<&Fingerprint> = findings.iter().map(|f| &f.fingerprint).collect();
    for (fp, comments) in earlier {
        let reason = if still_new.contains(&fp) {
            ResolveReason::NotCommented
        } else {
            ResolveReason::Gone
        };
        for c in comments.into_iter().filter(|c| !c.resolved) {
            resolve.push(ThreadToResolve {
                fingerprint: fp.clone(),
                comment_id: c.comment_id.clone(),
                thread_id: c.thread_id.clone(),
                reason,
            });
        }
    }

    let groups: Vec<RuleGroup> = grouped_rules
        .iter()
        .map(|&rule| {
            let members: Vec<&&NewFinding> = commented.iter().filter(|f| &f.rule == rule).collect();
            RuleGroup {
                rule: rule.clone(),
                mode: members.iter().map(|f| f.mode).max().unwrap_or_default(),
                fingerprints: members.iter().map(|f| f.fingerprint.clone()).collect(),
            }
        })
        .collect();

    let facts = Facts {
        commented: &commented,
        monitored,
        placements: &placements,
        groups: &groups,
        input,
        quiet,
    };
    let body = summary_body(&facts);
    let action = match summary_comment {
        Some(c) if c.body == body => SummaryAction::Unchanged {
            comment_id: c.comment_id.clone(),
        },
        Some(c) => SummaryAction::Update {
            comment_id: c.comment_id.clone(),
        },
        None if !commented.is_empty() && !quiet => SummaryAction::Create,
        None => SummaryAction::None,
    };

    FeedbackPlan {
        check: check_plan(&facts),
        placements,
        post,
        keep,
        resolve,
        groups,
        summary: SummaryComment { action, body },
    }
}

/// What the summary and the check are written from.
struct Facts<'a> {
    /// Commented new findings, in display order.
    commented: &'a [&'a NewFinding],
    monitored: usize,
    placements: &'a BTreeMap<Fingerprint, Placement>,
    groups: &'a [RuleGroup],
    input: &'a FeedbackInput,
    quiet: bool,
}

impl Facts<'_> {
    fn count(&self, mode: RuleMode) -> usize {
        self.commented.iter().filter(|f| f.mode == mode).count()
    }

    fn blocking(&self) -> usize {
        self.count(RuleMode::Block)
    }

    fn inline(&self) -> usize {
        self.placements
            .values()
            .filter(|p| matches!(p, Placement::Inline { .. } | Placement::Commented { .. }))
            .count()
    }

    fn in_summary(&self) -> Vec<(&NewFinding, SummaryReason)> {
        self.commented
            .iter()
            .filter_map(|f| match self.placements.get(&f.fingerprint) {
                Some(Placement::Summary { reason }) => Some((*f, *reason)),
                _ => None,
            })
            .collect()
    }

    fn finding(&self, fp: &Fingerprint) -> Option<&NewFinding> {
        self.commented
            .iter()
            .copied()
            .find(|f| &f.fingerprint == fp)
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn mode_label(mode: RuleMode) -> &'static str {
    match mode {
        RuleMode::Block => "Block",
        RuleMode::Comment => "Comment",
        RuleMode::Monitor => "Monitor",
    }
}

/// `path:start` or `path:start-end`, escaped for one line.
fn location(f: &NewFinding) -> String {
    let (start, end) = f.lines();
    let path = escape_line(&clip(&f.path, 300));
    if end > start {
        format!("{path}:{start}\\-{end}")
    } else {
        format!("{path}:{start}")
    }
}

/// The finding's text as plain text, secrets redacted.
fn plain_text(f: &NewFinding) -> String {
    match &f.text {
        FindingText::Message(m) => m.clone(),
        FindingText::Secret { redacted } => {
            format!("A secret was committed here: {redacted} (redacted). Revoke it and remove it from the history.")
        }
    }
}

fn inline_body(f: &NewFinding, line: u32) -> String {
    let mut b = Marker::Finding(f.fingerprint.clone()).render();
    let (start, end) = f.lines();
    let consequence = match f.mode {
        RuleMode::Block => "this rule blocks merging",
        _ => "this rule comments",
    };
    let _ = write!(
        b,
        "\n**Picket · {}** ({consequence}) · severity {} · rule `{}`\n\n",
        mode_label(f.mode),
        f.severity,
        f.rule
    );
    b.push_str(&escape(&clip(&plain_text(f), MAX_MESSAGE_CHARS)));
    if line != start {
        let _ = write!(
            b,
            "\n\n<sub>Reported at lines {start}\\-{end}; this is its first line in the diff.</sub>"
        );
    } else if end > start {
        let _ = write!(b, "\n\n<sub>Lines {start}\\-{end}.</sub>");
    }
    fit(b, MAX_COMMENT_CHARS, CUT_NOTE)
}

/// The counts by mode, as a table.
fn counts_table(doc: &mut Doc, facts: &Facts<'_>) {
    doc.push("| mode | new findings |\n|---|---|\n");
    doc.push(&format!(
        "| Block: fails the check | {} |\n",
        facts.count(RuleMode::Block)
    ));
    doc.push(&format!(
        "| Comment | {} |\n",
        facts.count(RuleMode::Comment)
    ));
    doc.push(&format!(
        "| Monitor: recorded in Picket, not shown here | {} |\n",
        facts.monitored
    ));
}

fn notes(doc: &mut Doc, facts: &Facts<'_>) {
    if facts.input.late {
        doc.push(
            "\n> **Note:** this result arrived after the fail-open timeout. The check had already \
             passed without it, and blocking findings do not fail it now.\n",
        );
    }
    if facts.quiet {
        doc.push(
            "\n> **Note:** this pull request is a draft: inline comments wait until it is ready \
             for review.\n",
        );
    }
    for l in &facts.input.unreadable_lockfiles {
        doc.push(&format!(
            "\n> **Supply Chain could not read `{}`:** {}. None of its packages were checked \
             against advisories.\n",
            escape_line(&clip(&l.path, 300)).replace('`', "'"),
            escape_line(&clip(&l.reason, MAX_ROW_MESSAGE_CHARS)),
        ));
    }
}

/// Appends `rows` under `header` while they fit, then "…and N more".
fn table(doc: &mut Doc, header: &str, rows: impl ExactSizeIterator<Item = String>) {
    let total = rows.len();
    doc.push(header);
    for (i, row) in rows.enumerate() {
        if !doc.try_push(&row) {
            doc.push(&format!(
                "\n…and {} not listed here (see the scan in Picket).\n",
                plural(total - i, "more finding", "more findings")
            ));
            return;
        }
    }
}

fn summary_body(facts: &Facts<'_>) -> String {
    let mut doc = Doc::new(MAX_COMMENT_CHARS, RESERVE);
    doc.push(SUMMARY_MARKER);
    let n = facts.commented.len();
    if n == 0 {
        doc.push("\n### Picket: no new findings to comment on\n\n");
    } else {
        doc.push(&format!(
            "\n### Picket: {} in this pull request\n\n",
            plural(n, "new finding", "new findings")
        ));
    }
    counts_table(&mut doc, facts);
    notes(&mut doc, facts);
    let inline = facts.inline();
    if inline > 0 {
        doc.push(&format!(
            "\n{} on the lines of the diff.\n",
            plural(
                inline,
                "finding has an inline comment",
                "findings have inline comments"
            )
        ));
    }

    let listed = facts.in_summary();
    if !listed.is_empty() {
        doc.push("\n#### Findings not shown inline\n\n");
        table(
            &mut doc,
            "| severity | mode | rule | location | why here | message |\n|---|---|---|---|---|---|\n",
            listed.into_iter().map(|(f, reason)| {
                let why = match reason {
                    SummaryReason::FileNotInDiff => "file not in the diff",
                    SummaryReason::NotOnADiffLine => "lines not in the diff",
                    SummaryReason::Draft => "draft",
                };
                format!(
                    "| {} | {} | `{}` | {} | {why} | {} |\n",
                    f.severity,
                    mode_label(f.mode),
                    f.rule,
                    location(f),
                    escape_line(&clip(&plain_text(f), MAX_ROW_MESSAGE_CHARS)),
                )
            }),
        );
    }

    if !facts.groups.is_empty() {
        doc.push(&format!(
            "\n#### Rules with more than {GROUP_ABOVE} new findings\n"
        ));
        for g in facts.groups {
            doc.push(&format!(
                "\n<details>\n<summary>{} · rule <code>{}</code> · {}</summary>\n\n",
                mode_label(g.mode),
                g.rule,
                plural(g.fingerprints.len(), "finding", "findings")
            ));
            let members: Vec<&NewFinding> = g
                .fingerprints
                .iter()
                .filter_map(|fp| facts.finding(fp))
                .collect();
            table(
                &mut doc,
                "| severity | location | message |\n|---|---|---|\n",
                members.into_iter().map(|f| {
                    format!(
                        "| {} | {} | {} |\n",
                        f.severity,
                        location(f),
                        escape_line(&clip(&plain_text(f), MAX_ROW_MESSAGE_CHARS)),
                    )
                }),
            );
            doc.push("\n</details>\n");
        }
    }
    if facts.input.fixed_in_pr > 0 {
        doc.push(&format!(
            "\nThis pull request also fixes {} that existed before it.\n",
            plural(facts.input.fixed_in_pr, "finding", "findings")
        ));
    }
    doc.finish(CUT_NOTE)
}

fn check_plan(facts: &Facts<'_>) -> CheckPlan {
    let blocking = facts.blocking();
    let n = facts.commented.len();
    let late = facts.input.late;
    let conclusion = if blocking > 0 && !late {
        CheckConclusion::Failure
    } else {
        CheckConclusion::Success
    };
    let title = match (late, blocking, n) {
        (true, b, _) if b > 0 => format!(
            "Passed after the fail-open timeout: {} not enforced",
            plural(b, "blocking finding", "blocking findings")
        ),
        (true, _, 0) => "Passed after the fail-open timeout: no new findings".to_owned(),
        (true, _, n) => format!(
            "Passed after the fail-open timeout: {}",
            plural(n, "new finding", "new findings")
        ),
        (false, b, _) if b > 0 => plural(b, "blocking finding", "blocking findings"),
        (false, _, 0) => "No new findings".to_owned(),
        (false, _, n) => format!(
            "{}, none blocking",
            plural(n, "new finding", "new findings")
        ),
    };
    let unreadable = facts.input.unreadable_lockfiles.len();
    let title = match unreadable {
        0 => title,
        n => format!(
            "{title}; {} could not be read",
            plural(n, "lockfile", "lockfiles")
        ),
    };

    let mut summary = Doc::new(MAX_CHECK_CHARS, RESERVE);
    counts_table(&mut summary, facts);
    notes(&mut summary, facts);
    if facts.commented.len() > MAX_ANNOTATIONS {
        summary.push(&format!(
            "\nThe first {MAX_ANNOTATIONS} findings are annotated, blocking ones first.\n"
        ));
    }
    if facts.input.fixed_in_pr > 0 {
        summary.push(&format!(
            "\nThis pull request also fixes {} that existed before it.\n",
            plural(facts.input.fixed_in_pr, "finding", "findings")
        ));
    }

    let text = (!facts.commented.is_empty()).then(|| {
        let mut doc = Doc::new(MAX_CHECK_CHARS, RESERVE);
        table(
            &mut doc,
            "| severity | mode | rule | location | shown | message |\n|---|---|---|---|---|---|\n",
            facts.commented.iter().map(|f| {
                let shown = match facts.placements.get(&f.fingerprint) {
                    Some(Placement::Inline { .. } | Placement::Commented { .. }) => "inline",
                    Some(Placement::Summary { .. }) => "summary",
                    Some(Placement::Grouped) | None => "grouped",
                };
                format!(
                    "| {} | {} | `{}` | {} | {shown} | {} |\n",
                    f.severity,
                    mode_label(f.mode),
                    f.rule,
                    location(f),
                    escape_line(&clip(&plain_text(f), MAX_ROW_MESSAGE_CHARS)),
                )
            }),
        );
        doc.finish(CUT_NOTE)
    });

    let annotations = facts
        .commented
        .iter()
        .take(MAX_ANNOTATIONS)
        .map(|f| {
            let (start_line, end_line) = f.lines();
            PlannedAnnotation {
                fingerprint: f.fingerprint.clone(),
                path: f.path.clone(),
                start_line,
                end_line,
                level: if f.mode.blocks() {
                    AnnotationLevel::Failure
                } else {
                    AnnotationLevel::Warning
                },
                title: clip(
                    &format!("{} ({}, {})", f.rule, f.severity, mode_label(f.mode)),
                    MAX_ANNOTATION_TITLE,
                ),
                message: clip(&plain_text(f), MAX_MESSAGE_CHARS),
            }
        })
        .collect();

    CheckPlan {
        conclusion,
        title,
        summary: summary.finish(CUT_NOTE),
        text,
        annotations,
    }
}
