//! Webhook deliveries as provider-neutral events.
//!
//! Each provider's parser turns a verified delivery into one [`WebhookEvent`]; the receiving route
//! acts on these alone. Ids are the provider's own, as text (GitHub's numeric ids, GitLab's
//! project ids, Bitbucket's UUIDs and Azure's GUIDs all fit). Commit SHAs are full 40- (or 64-)
//! hex-digit object names for every provider but one: Bitbucket Cloud's webhooks carry abbreviated
//! hashes (12 hex digits), which its parser passes on as they are (lowercased; no I/O there) and
//! its receiver resolves to the full SHA through the API before anything is queued.

use serde::Serialize;

/// One delivery, as received: its id and the provider's event name and action, kept for the
/// delivery log whatever Picket makes of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The provider's delivery id (`X-GitHub-Delivery`), the same on a redelivery.
    pub id: String,
    /// The provider's event name (`X-GitHub-Event`: `pull_request`, `installation`, ...).
    pub event: String,
    /// The payload's `action`, when it has one.
    pub action: Option<String>,
    /// What Picket makes of it.
    pub payload: WebhookEvent,
}

/// A repository as an event names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoRef {
    /// The provider's id of the repository, stable across renames.
    pub id: String,
    /// `owner/name` (GitHub), the path with namespace (GitLab), `workspace/slug` (Bitbucket),
    /// `project/repo` (Azure DevOps).
    pub full_name: String,
    /// The HTTPS clone URL, when the payload carries it (GitHub's installation events do not:
    /// the connection derives it).
    pub clone_url: Option<String>,
    /// The default branch, when the payload carries it.
    pub default_branch: Option<String>,
    /// Whether the repository is private, when the payload says.
    pub private: Option<bool>,
}

/// What Picket acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WebhookEvent {
    /// New code (or a state change that asks for a scan) on a pull request.
    PullRequest(PullRequestEvent),
    /// The App was installed, removed, suspended, unsuspended, or given new permissions.
    Installation(InstallationEvent),
    /// Repositories were added to or removed from an installation.
    InstallationRepositories(InstallationRepositoriesEvent),
    /// A comment that may be a triage command replying to one of Picket's comments.
    Reply(ReplyEvent),
    /// The provider testing the hook (GitHub's `ping`).
    Ping,
    /// A delivery Picket does not act on; answered 2xx and logged with the reason.
    Ignored(Ignored),
}

/// Why a delivery was ignored: a stable code for the delivery log and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ignored {
    /// `event_not_handled`, `action_not_handled`, `not_a_reply`, `closed_pull_request`, ...
    pub reason: &'static str,
}

/// Why a pull request event asks for a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PullRequestAction {
    Opened,
    /// New commits on the head branch (GitHub `synchronize`, GitLab `update` with `oldrev`).
    Pushed,
    Reopened,
    ReadyForReview,
}

/// A pull (merge) request that should be scanned at its head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequestEvent {
    pub action: PullRequestAction,
    /// The base (target) repository: the project.
    pub repository: RepoRef,
    /// The provider's installation the delivery came through (GitHub App installation id).
    pub installation_id: Option<String>,
    /// The PR's number (GitHub, Bitbucket, Azure) or iid (GitLab).
    pub number: u64,
    /// The PR's head commit, lowercase hex: the full SHA for every provider except Bitbucket
    /// Cloud, whose parser passes on the webhook's abbreviation (7 to 64 hex digits; 12 as
    /// Bitbucket sends it) and whose receiver resolves it through the API before queueing
    /// ([`crate::webhook::is_full_sha`] tells them apart).
    pub head_sha: String,
    /// The head branch's name (in the fork, for a fork PR).
    pub head_ref: String,
    /// The target branch's name.
    pub base_ref: String,
    /// The target branch's tip as the provider last saw it. Not the merge base, and not the
    /// baseline a scan compares against (the merge base is computed when the scan runs).
    /// Empty when the delivery does not carry it (GitLab's merge request events); abbreviated,
    /// like `head_sha`, from Bitbucket Cloud.
    pub base_sha: String,
    /// Whether the head lives in another repository (a fork), or its repository is gone.
    pub from_fork: bool,
    pub draft: bool,
    /// When the provider last updated the PR, as the delivery says (GitHub
    /// `pull_request.updated_at`): orders deliveries of one PR, which may arrive late or be
    /// redelivered. `None` when the payload has none.
    pub updated_at: Option<time::OffsetDateTime>,
    /// The PR's title, for display.
    pub title: String,
    /// The author's login, for display.
    pub author: Option<String>,
}

/// What happened to an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallationAction {
    Created,
    Deleted,
    Suspended,
    Unsuspended,
    NewPermissionsAccepted,
}

/// Whether an installation sees all the account's repositories or a chosen few.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepositorySelection {
    All,
    Selected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallationEvent {
    pub action: InstallationAction,
    pub installation_id: String,
    /// The account (organization or user) the App is installed on.
    pub account: String,
    pub repository_selection: Option<RepositorySelection>,
    /// The repositories the payload lists (on `created`: those the installation can see).
    pub repositories: Vec<RepoRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallationRepositoriesEvent {
    pub installation_id: String,
    pub account: String,
    pub repository_selection: Option<RepositorySelection>,
    pub added: Vec<RepoRef>,
    pub removed: Vec<RepoRef>,
}

/// Where a comment was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentKind {
    /// A comment on the PR's conversation (GitHub `issue_comment` on a pull request).
    Conversation,
    /// A comment in a review thread on a line (GitHub `pull_request_review_comment`).
    ReviewThread,
}

/// A new comment on a pull request, which may be a triage command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyEvent {
    pub kind: CommentKind,
    pub repository: RepoRef,
    pub installation_id: Option<String>,
    pub number: u64,
    /// The new comment's id.
    pub comment_id: String,
    /// The comment it replies to (review threads: `in_reply_to_id`), when there is one.
    pub in_reply_to: Option<String>,
    /// The comment's text, as written.
    pub body: String,
    /// Who wrote it: login and the provider's user id.
    pub author: String,
    pub author_id: String,
    /// Whether the author is a bot (Picket's own comments come back as events too).
    pub author_is_bot: bool,
}
