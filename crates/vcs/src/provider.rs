//! The interface every provider implements.
//!
//! [`SourceProvider`] is what the control plane asks of a connection (it holds the connection's
//! long-lived credential: a GitHub App's key, a GitLab or Azure token). [`FeedbackClient`] is what a
//! scan posts on its pull request; it is built from a [`ScopedCredential`] minted for that one scan
//! and repository, so the worker never holds the connection's credential.
//!
//! Both are object-safe (`dyn`) so the API, scheduler and worker hold any provider behind one type.

use crate::error::VcsError;
use crate::event::RepoRef;
use crate::Result;
use async_trait::async_trait;
use picket_core::Provider;
use secrecy::SecretString;
use serde::Serialize;
use std::fmt;
use time::OffsetDateTime;

/// One repository of a connection, as the provider lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repository {
    /// The provider's id, stable across renames.
    pub id: String,
    pub full_name: String,
    /// HTTPS clone URL.
    pub clone_url: String,
    pub default_branch: String,
    pub private: bool,
    pub archived: bool,
    /// The installation (GitHub) through which the connection sees it.
    pub installation_id: Option<String>,
}

/// Where one repository lives, as Picket stores it on a project: enough for any call about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoLocator {
    pub id: String,
    pub full_name: String,
    /// GitHub: the App installation that can see the repository.
    pub installation_id: Option<String>,
}

/// A page of a listing. `next` is an opaque cursor for the following page, `None` on the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// What a connection is and what it may do: the answer to "check this connection".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionCheck {
    /// The identity the credential stands for (GitHub: the App's slug; GitLab: the token's user).
    pub identity: String,
    /// Installations (GitHub) the App has, with their accounts; empty for token-based providers.
    pub installations: Vec<InstallationInfo>,
    /// Permissions Picket needs that the credential lacks, by the provider's names
    /// (`pull_requests: write`, `checks: write`, ...). Empty when all is well.
    pub missing_permissions: Vec<String>,
    /// Events Picket needs that are not subscribed (GitHub App `events`).
    pub missing_events: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallationInfo {
    pub id: String,
    /// The account (organization or user) it is installed on.
    pub account: String,
    pub repository_selection: Option<crate::event::RepositorySelection>,
    pub suspended: bool,
    /// Permissions Picket needs that this installation has not granted (GitHub: the account's
    /// owner has not accepted the App's updated permissions yet), named like
    /// [`ConnectionCheck::missing_permissions`].
    pub missing_permissions: Vec<String>,
}

/// What a minted credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialScope {
    /// Clone only: contents read.
    Clone,
    /// One scan of a pull request: contents read, pull requests write (its comments). Not
    /// checks: the control plane completes the check (docs/architecture.md, "Pull requests").
    PullRequestScan,
}

/// A short-lived credential for one repository. `Debug` never shows the secret.
#[derive(Clone)]
pub struct ScopedCredential {
    /// The user name to present with it over HTTPS (GitHub: `x-access-token`).
    pub username: String,
    pub secret: SecretString,
    /// When the provider will stop accepting it.
    pub expires_at: Option<OffsetDateTime>,
}

impl fmt::Debug for ScopedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedCredential")
            .field("username", &self.username)
            .field("secret", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A pull request's state as the provider has it now (the reconcile sweep, a scan's start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequestState {
    pub number: u64,
    pub open: bool,
    pub draft: bool,
    pub head_sha: String,
    pub head_ref: String,
    pub base_ref: String,
    pub base_sha: String,
    pub from_fork: bool,
    pub title: String,
    pub author: Option<String>,
    /// When the provider last updated the PR (GitHub `updated_at`).
    pub updated_at: Option<time::OffsetDateTime>,
}

/// The ref a pull request's head is fetched by from the base repository: `refs/pull/<n>/head`
/// (GitHub), `refs/merge-requests/<iid>/head` (GitLab, "Merge requests" docs: "Check out merge
/// requests locally through the head ref"), `refs/pull/<id>/merge` (Azure DevOps: the only ref it
/// keeps; the head is its second parent, so fetching it brings the head), and the source branch
/// (`refs/heads/<branch>`, Bitbucket Cloud, which keeps no pull request refs).
pub fn pull_request_ref(provider: Provider, number: u64, head_ref: &str) -> String {
    match provider {
        Provider::Gitlab => format!("refs/merge-requests/{number}/head"),
        Provider::AzureDevops => format!("refs/pull/{number}/merge"),
        Provider::Bitbucket => format!("refs/heads/{head_ref}"),
        _ => format!("refs/pull/{number}/head"),
    }
}

/// What the control plane asks of one connection.
#[async_trait]
pub trait SourceProvider: Send + Sync + fmt::Debug {
    fn provider(&self) -> Provider;

    /// The credential's identity, installations and missing permissions.
    async fn check(&self) -> Result<ConnectionCheck>;

    /// The repositories the connection can see, a page at a time (`per_page` 1-100), from the
    /// start (`cursor` `None`) or from a [`Page::next`] this provider returned. A cursor it did
    /// not make is refused before anything is sent: [`ErrorCode::Rejected`](crate::ErrorCode::Rejected)
    /// without a `status`.
    async fn list_repositories(
        &self,
        cursor: Option<&str>,
        per_page: u32,
    ) -> Result<Page<Repository>>;

    /// Every repository the connection can see: the whole listing, for adding them all at once.
    /// The default pages through [`list_repositories`](Self::list_repositories) 100 at a time;
    /// a provider may do it in fewer calls. Repositories come in listing order; one seen twice
    /// (a listing that moved between pages) is kept once.
    async fn all_repositories(&self) -> Result<Vec<Repository>> {
        let mut all: Vec<Repository> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.list_repositories(cursor.as_deref(), 100).await?;
            all.extend(page.items.into_iter().filter(|r| seen.insert(r.id.clone())));
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// One repository by its provider id, through the given installation.
    async fn repository(&self, repo: &RepoLocator) -> Result<Repository>;

    /// The narrowest credential for one repository: GitHub mints an installation token limited to
    /// that repository and the scope's permissions (1 hour).
    async fn mint_credential(
        &self,
        repo: &RepoLocator,
        scope: CredentialScope,
    ) -> Result<ScopedCredential>;

    /// A feedback client for the control plane's own calls on one repository (moving a PR's
    /// check, finishing comments a worker could not): GitHub uses the installation's cached
    /// token, so nothing is minted per call.
    async fn feedback_client(&self, repo: &RepoLocator) -> Result<Box<dyn FeedbackClient>>;

    /// The merge base of `head_sha` and the tip of `base_ref` as it is now (GitHub's compare API).
    async fn merge_base(
        &self,
        repo: &RepoLocator,
        base_ref: &str,
        head_sha: &str,
    ) -> Result<String>;

    /// One pull request as it is now.
    async fn pull_request(&self, repo: &RepoLocator, number: u64) -> Result<PullRequestState>;

    /// The repository's open pull requests, a page at a time.
    async fn open_pull_requests(
        &self,
        repo: &RepoLocator,
        cursor: Option<&str>,
    ) -> Result<Page<PullRequestState>>;

    /// Whether `login` may write to the repository (triage by reply is theirs only).
    async fn has_write_access(&self, repo: &RepoLocator, login: &str) -> Result<bool>;

    /// The login the provider shows on what Picket posts through this connection (GitHub:
    /// `<app slug>[bot]`, from `GET /app`, asked once and then kept).
    async fn bot_login(&self) -> Result<String>;

    /// Makes the provider deliver the events Picket acts on to `url`, authenticated by `secret`
    /// (the connection's webhook secret): on the connection's group, or on each of `repos`,
    /// creating hooks or updating Picket's own in place, so calling it again is safe. Returns
    /// the hooks' ids.
    ///
    /// The default refuses with [`ErrorCode::BadConfig`](crate::ErrorCode::BadConfig): a GitHub
    /// App's webhook is set on the App itself (the manifest flow sets it).
    async fn ensure_webhooks(
        &self,
        url: &str,
        secret: &SecretString,
        repos: &[RepoLocator],
    ) -> Result<Vec<String>> {
        let _ = (url, secret, repos);
        Err(VcsError::new(
            crate::ErrorCode::BadConfig,
            "this provider's webhooks are not set per connection (a GitHub App's are set on the App)",
        ))
    }

    /// The full SHA of commit `hash` of the repository, for a provider whose webhooks abbreviate
    /// commit hashes (Bitbucket Cloud sends 12 hex digits). The default answers a full hash
    /// (40 or 64 hex digits) lowercased, without a call, and refuses an abbreviated one with
    /// [`ErrorCode::Rejected`](crate::ErrorCode::Rejected): only a provider that sends them
    /// resolves them.
    async fn full_commit_sha(&self, repo: &RepoLocator, hash: &str) -> Result<String> {
        let _ = repo;
        if crate::webhook::is_full_sha(hash) {
            Ok(hash.to_ascii_lowercase())
        } else {
            Err(VcsError::new(
                crate::ErrorCode::Rejected,
                "this provider does not resolve abbreviated commit hashes",
            ))
        }
    }

    /// How many API calls this connection has made since it was built (the reconcile sweep's and
    /// a PR scan's budgets count them).
    fn api_calls(&self) -> u64;
}

/// The pass/fail signal's state (GitHub check run `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Queued,
    InProgress,
    Completed,
}

/// How a completed check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckConclusion {
    Success,
    Failure,
    Neutral,
    Cancelled,
}

/// One line-level annotation on a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Annotation {
    pub path: String,
    /// 1-based lines, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    /// `failure` (a Block finding), `warning` (Comment), `notice` (Monitor).
    pub level: AnnotationLevel,
    pub title: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationLevel {
    Notice,
    Warning,
    Failure,
}

/// The check's text: a title, a Markdown summary and details (each ≤ 65,535 characters on
/// GitHub), and annotations (any number: the client sends them 50 per request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOutput {
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
    pub annotations: Vec<Annotation>,
}

/// A check as it should be: created with `create_check`, then moved with `update_check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckUpdate {
    pub status: CheckStatus,
    pub conclusion: Option<CheckConclusion>,
    pub output: Option<CheckOutput>,
    /// Where the check's "Details" link points (the scan in Picket's UI).
    pub details_url: Option<String>,
}

/// A comment Picket posted, as the provider knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostedComment {
    pub id: String,
    /// Who wrote it (the provider's login; a GitHub App posts as `<slug>[bot]`). Only comments
    /// by the connection's own [`SourceProvider::bot_login`] are Picket's: a marker in anyone
    /// else's comment means nothing.
    pub author: String,
    /// The review thread the comment opened (GitHub GraphQL node id), for resolving it.
    pub thread_id: Option<String>,
    pub body: String,
    /// Where it sits: `None` for a conversation comment.
    pub path: Option<String>,
    pub line: Option<u32>,
    /// Whether its thread is resolved.
    pub resolved: bool,
}

/// A review comment to post on one line of the PR's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineComment {
    pub path: String,
    /// 1-based line on the head side (RIGHT); must be a line of the diff.
    pub line: u32,
    pub body: String,
}

/// What a pull request scan posts.
#[async_trait]
pub trait FeedbackClient: Send + Sync + fmt::Debug {
    /// Creates the check named `name` on `head_sha` of pull request `number`; returns its id.
    /// GitHub, GitLab and Bitbucket put it on the commit (check run, commit status, Code
    /// Insights report); Azure DevOps on the pull request (a PR status, which its "require a
    /// status" branch policy reads).
    async fn create_check(
        &self,
        repo: &RepoLocator,
        number: u64,
        name: &str,
        head_sha: &str,
        update: &CheckUpdate,
    ) -> Result<String>;

    /// Moves a check (annotations beyond 50 go in further requests, which append).
    async fn update_check(
        &self,
        repo: &RepoLocator,
        check_id: &str,
        update: &CheckUpdate,
    ) -> Result<()>;

    /// The PR's comments whose body contains `marker` (Picket's hidden markers), conversation and
    /// review comments alike, with their threads.
    async fn find_comments(
        &self,
        repo: &RepoLocator,
        number: u64,
        marker: &str,
    ) -> Result<Vec<PostedComment>>;

    /// Creates the PR's conversation comment, or edits `existing` in place.
    async fn upsert_conversation_comment(
        &self,
        repo: &RepoLocator,
        number: u64,
        existing: Option<&str>,
        body: &str,
    ) -> Result<PostedComment>;

    /// Posts review comments on lines of `commit_sha`, in order.
    async fn post_inline_comments(
        &self,
        repo: &RepoLocator,
        number: u64,
        commit_sha: &str,
        comments: &[InlineComment],
    ) -> Result<Vec<PostedComment>>;

    /// One review comment of pull request `number` (GitHub: `GET
    /// /repos/{o}/{r}/pulls/comments/{id}`), with its author and body; `None` when it does not
    /// exist (deleted), or belongs to another pull request. Its thread is not looked up:
    /// `thread_id` is `None` and `resolved` false.
    async fn review_comment(
        &self,
        repo: &RepoLocator,
        number: u64,
        comment_id: &str,
    ) -> Result<Option<PostedComment>>;

    /// Marks a review thread of pull request `number` resolved (`thread_id`:
    /// [`PostedComment::thread_id`]).
    async fn resolve_thread(&self, repo: &RepoLocator, number: u64, thread_id: &str) -> Result<()>;

    /// Answers in the thread of review comment `comment_id` (or on the conversation for a
    /// conversation comment).
    async fn reply(
        &self,
        repo: &RepoLocator,
        number: u64,
        comment_id: &str,
        body: &str,
    ) -> Result<PostedComment>;

    /// API calls made so far.
    fn api_calls(&self) -> u64;
}

/// A repository as an event names it, completed from a listing.
impl From<Repository> for RepoRef {
    fn from(r: Repository) -> RepoRef {
        RepoRef {
            id: r.id,
            full_name: r.full_name,
            clone_url: Some(r.clone_url),
            default_branch: Some(r.default_branch),
            private: Some(r.private),
        }
    }
}

#[allow(dead_code)]
fn _object_safe(_: &dyn SourceProvider, _: &dyn FeedbackClient, _: VcsError) {}
