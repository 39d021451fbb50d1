//! GitHub webhook deliveries: signature and payload.
//!
//! GitHub POSTs each delivery with these headers (GitHub docs, "Webhook events and payloads",
//! <https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers>):
//!
//! - `X-GitHub-Delivery`: a GUID naming the delivery, the same on a redelivery;
//! - `X-GitHub-Event`: the event name (`pull_request`, `installation`, ...);
//! - `X-Hub-Signature-256`: `sha256=` and the lowercase hex HMAC-SHA256 of the raw body under the
//!   webhook secret, and `X-Hub-Signature` (`sha1=`...), the legacy SHA-1 one, when a secret is set
//!   (GitHub docs, "Validating webhook deliveries",
//!   <https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries>);
//! - `Content-Type`: `application/json` (the body is the payload), or
//!   `application/x-www-form-urlencoded` (the payload is the form's `payload` field), as the hook
//!   is configured. The signature covers the raw bytes either way.
//!
//! [`verify`] checks the signature over the bytes as received, before anything parses them;
//! [`parse`] then turns a verified delivery into a provider-neutral [`Delivery`]. Neither does I/O.
//! Payload shapes: GitHub docs (link above) and the npm package `@octokit/webhooks-examples`
//! (real payloads, which the tests run through [`parse`]).

use crate::event::{
    CommentKind, Delivery, Ignored, InstallationAction, InstallationEvent,
    InstallationRepositoriesEvent, PullRequestAction, PullRequestEvent, ReplyEvent, RepoRef,
    RepositorySelection, WebhookEvent,
};
use crate::webhook::{
    commit_sha, decode, header_text, single_header, verify_hmac_sha256, ParseError, SignatureError,
    WebhookSecrets,
};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

/// `X-Hub-Signature-256`: `sha256=<64 hex digits>`, HMAC-SHA256 of the raw body.
pub const SIGNATURE_256_HEADER: &str = "x-hub-signature-256";
/// `X-Hub-Signature`: `sha1=<40 hex digits>`, the legacy HMAC-SHA1, which Picket refuses.
pub const SIGNATURE_SHA1_HEADER: &str = "x-hub-signature";
/// `X-GitHub-Delivery`: the delivery's GUID.
pub const DELIVERY_HEADER: &str = "x-github-delivery";
/// `X-GitHub-Event`: the event name.
pub const EVENT_HEADER: &str = "x-github-event";

/// Checks a delivery's `X-Hub-Signature-256` against its raw `body` under each secret
/// `secrets` accepts at `now` (the current one, and the previous one during its rotation
/// overlap).
///
/// The header is `sha256=` followed by the hex HMAC-SHA256 of the body keyed with the webhook
/// secret (GitHub docs, "Validating webhook deliveries",
/// <https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries>). Header
/// names are matched case-insensitively (as [`http::HeaderMap`] does), the hex digits may be of
/// either case, and the comparison runs in constant time.
///
/// # Errors
///
/// - [`SignatureError::Missing`]: no `X-Hub-Signature-256` and no `X-Hub-Signature`;
/// - [`SignatureError::Sha1Only`]: only the legacy SHA-1 `X-Hub-Signature`;
/// - [`SignatureError::Malformed`]: not `sha256=` and 64 hex digits, or the header is repeated;
/// - [`SignatureError::Mismatch`]: no accepted secret produces it.
pub fn verify(
    headers: &http::HeaderMap,
    body: &[u8],
    secrets: &WebhookSecrets,
    now: OffsetDateTime,
) -> Result<(), SignatureError> {
    let Some(value) = single_header(headers, SIGNATURE_256_HEADER)? else {
        return Err(if headers.contains_key(SIGNATURE_SHA1_HEADER) {
            SignatureError::Sha1Only
        } else {
            SignatureError::Missing
        });
    };
    verify_hmac_sha256(value.as_bytes(), body, secrets, now)
}

/// Reads a delivery (whose signature [`verify`] accepted) into a [`Delivery`].
///
/// Needs `X-GitHub-Delivery` and `X-GitHub-Event`. The body is the JSON payload, or, with
/// `Content-Type: application/x-www-form-urlencoded`, a form whose `payload` field holds it.
/// What each event becomes (GitHub docs, "Webhook events and payloads",
/// <https://docs.github.com/en/webhooks/webhook-events-and-payloads>):
///
/// - `pull_request` with action `opened`, `synchronize` ([`PullRequestAction::Pushed`]),
///   `reopened` or `ready_for_review` → [`WebhookEvent::PullRequest`]: the repository is the base
///   repository (`repository`), the head from `pull_request.head`, the base branch and its tip
///   from `pull_request.base`; `from_fork` when `pull_request.head.repo` is null (the fork was
///   deleted) or is another repository than `pull_request.base.repo`. Other actions →
///   ignored, `action_not_handled`.
/// - `installation` (`created`, `deleted`, `suspend`, `unsuspend`, `new_permissions_accepted`) →
///   [`WebhookEvent::Installation`], with the payload's `repositories` (absent on some actions);
/// - `installation_repositories` (`added`, `removed`) → [`WebhookEvent::InstallationRepositories`];
/// - `issue_comment` `created` on a pull request (`issue.pull_request` present) →
///   [`WebhookEvent::Reply`] of kind [`CommentKind::Conversation`]; on a plain issue → ignored,
///   `not_a_pull_request`;
/// - `pull_request_review_comment` `created` → [`WebhookEvent::Reply`] of kind
///   [`CommentKind::ReviewThread`], `in_reply_to` from `comment.in_reply_to_id`;
/// - other actions of these events → ignored, `action_not_handled`; `ping` →
///   [`WebhookEvent::Ping`]; any other event → ignored, `event_not_handled`.
///
/// GitHub's numeric ids become decimal text. Only the fields named here are read; others are
/// ignored.
///
/// # Errors
///
/// A [`ParseError`] with code `header_missing` / `header_invalid` (a needed header is absent, or
/// empty or not visible ASCII), `body_not_json` (the body, or the form's `payload`, is not JSON;
/// a form without `payload`), or `payload_invalid` (a field an event needs is missing or of
/// another type; the message names its JSON path, e.g. `pull_request.head.sha`). Messages never
/// quote the payload.
pub fn parse(headers: &http::HeaderMap, body: &[u8]) -> Result<Delivery, ParseError> {
    let id = header_text(headers, DELIVERY_HEADER, "X-GitHub-Delivery")?;
    let event = header_text(headers, EVENT_HEADER, "X-GitHub-Event")?;
    let json = body_json(headers, body)?;
    let action = json
        .get("action")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let payload = match event.as_str() {
        "pull_request" => pull_request(&json)?,
        "installation" => installation(&json)?,
        "installation_repositories" => installation_repositories(&json)?,
        "issue_comment" => issue_comment(&json)?,
        "pull_request_review_comment" => review_comment(&json)?,
        "ping" => WebhookEvent::Ping,
        _ => ignored("event_not_handled"),
    };
    Ok(Delivery {
        id,
        event,
        action,
        payload,
    })
}

fn ignored(reason: &'static str) -> WebhookEvent {
    WebhookEvent::Ignored(Ignored { reason })
}

fn body_json(headers: &http::HeaderMap, body: &[u8]) -> Result<Value, ParseError> {
    let form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let not_json = |e: serde_json::Error, what: &str| ParseError {
        code: "body_not_json",
        // serde_json's syntax messages name only positions, but the position is all we keep.
        message: format!(
            "{what} is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ),
    };
    if form {
        let payload = form_urlencoded::parse(body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| value)
            .ok_or_else(|| ParseError {
                code: "body_not_json",
                message: "the form-encoded body has no `payload` field".to_owned(),
            })?;
        serde_json::from_str(&payload).map_err(|e| not_json(e, "the form's `payload` field"))
    } else {
        serde_json::from_slice(body).map_err(|e| not_json(e, "the body"))
    }
}

#[derive(Deserialize)]
struct Action {
    action: String,
}

#[derive(Deserialize)]
struct InstallationId {
    id: u64,
}

/// `repository` of pull request and comment events.
#[derive(Deserialize)]
struct Repository {
    id: u64,
    full_name: String,
    clone_url: Option<String>,
    default_branch: Option<String>,
    private: Option<bool>,
}

impl From<Repository> for RepoRef {
    fn from(r: Repository) -> Self {
        RepoRef {
            id: r.id.to_string(),
            full_name: r.full_name,
            clone_url: r.clone_url,
            default_branch: r.default_branch,
            private: r.private,
        }
    }
}

/// The short repository objects of installation events (`id`, `full_name`, `private`, ...).
#[derive(Deserialize)]
struct ListedRepository {
    id: u64,
    full_name: String,
    clone_url: Option<String>,
    private: Option<bool>,
}

impl From<ListedRepository> for RepoRef {
    fn from(r: ListedRepository) -> Self {
        RepoRef {
            id: r.id.to_string(),
            full_name: r.full_name,
            clone_url: r.clone_url,
            default_branch: None,
            private: r.private,
        }
    }
}

#[derive(Deserialize)]
struct PullRequestPayload {
    pull_request: PullRequest,
    repository: Repository,
    installation: Option<InstallationId>,
}

#[derive(Deserialize)]
struct PullRequest {
    number: u64,
    title: String,
    draft: bool,
    #[serde(default, with = "time::serde::rfc3339::option")]
    updated_at: Option<time::OffsetDateTime>,
    user: Option<Login>,
    head: Head,
    base: Base,
}

#[derive(Deserialize)]
struct Login {
    login: String,
}

#[derive(Deserialize)]
struct Head {
    sha: String,
    #[serde(rename = "ref")]
    git_ref: String,
    /// Null when the head repository (a fork) was deleted.
    repo: Option<RepoId>,
}

#[derive(Deserialize)]
struct Base {
    sha: String,
    #[serde(rename = "ref")]
    git_ref: String,
    repo: RepoId,
}

#[derive(Deserialize)]
struct RepoId {
    id: u64,
}

fn pull_request(json: &Value) -> Result<WebhookEvent, ParseError> {
    let Action { action } = decode(json)?;
    let action = match action.as_str() {
        "opened" => PullRequestAction::Opened,
        "synchronize" => PullRequestAction::Pushed,
        "reopened" => PullRequestAction::Reopened,
        "ready_for_review" => PullRequestAction::ReadyForReview,
        _ => return Ok(ignored("action_not_handled")),
    };
    let p: PullRequestPayload = decode(json)?;
    let pr = p.pull_request;
    let from_fork = pr
        .head
        .repo
        .as_ref()
        .is_none_or(|head| head.id != pr.base.repo.id);
    Ok(WebhookEvent::PullRequest(PullRequestEvent {
        action,
        repository: p.repository.into(),
        installation_id: p.installation.map(|i| i.id.to_string()),
        number: pr.number,
        head_sha: commit_sha(pr.head.sha, "pull_request.head.sha")?,
        head_ref: pr.head.git_ref,
        base_ref: pr.base.git_ref,
        base_sha: commit_sha(pr.base.sha, "pull_request.base.sha")?,
        from_fork,
        draft: pr.draft,
        updated_at: pr.updated_at,
        title: pr.title,
        author: pr.user.map(|u| u.login),
    }))
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
    account: Account,
    repository_selection: Option<String>,
}

/// A user or organization (`login`), or an enterprise (`slug`, no `login`).
#[derive(Deserialize)]
struct Account {
    login: Option<String>,
    slug: Option<String>,
}

impl Account {
    fn name(self) -> Result<String, ParseError> {
        self.login.or(self.slug).ok_or_else(|| ParseError {
            code: "payload_invalid",
            message: "`installation.account.login` is missing".to_owned(),
        })
    }
}

fn selection(value: Option<&str>) -> Option<RepositorySelection> {
    match value? {
        "all" => Some(RepositorySelection::All),
        "selected" => Some(RepositorySelection::Selected),
        _ => None,
    }
}

#[derive(Deserialize)]
struct InstallationPayload {
    installation: Installation,
    /// Absent (or null) on `suspend` and `unsuspend`.
    repositories: Option<Vec<ListedRepository>>,
}

fn installation(json: &Value) -> Result<WebhookEvent, ParseError> {
    let Action { action } = decode(json)?;
    let action = match action.as_str() {
        "created" => InstallationAction::Created,
        "deleted" => InstallationAction::Deleted,
        "suspend" => InstallationAction::Suspended,
        "unsuspend" => InstallationAction::Unsuspended,
        "new_permissions_accepted" => InstallationAction::NewPermissionsAccepted,
        _ => return Ok(ignored("action_not_handled")),
    };
    let p: InstallationPayload = decode(json)?;
    Ok(WebhookEvent::Installation(InstallationEvent {
        action,
        installation_id: p.installation.id.to_string(),
        repository_selection: selection(p.installation.repository_selection.as_deref()),
        account: p.installation.account.name()?,
        repositories: p
            .repositories
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

#[derive(Deserialize)]
struct InstallationRepositoriesPayload {
    installation: Installation,
    repository_selection: Option<String>,
    repositories_added: Vec<ListedRepository>,
    repositories_removed: Vec<ListedRepository>,
}

fn installation_repositories(json: &Value) -> Result<WebhookEvent, ParseError> {
    let Action { action } = decode(json)?;
    if !matches!(action.as_str(), "added" | "removed") {
        return Ok(ignored("action_not_handled"));
    }
    let p: InstallationRepositoriesPayload = decode(json)?;
    let repository_selection = selection(
        p.repository_selection
            .as_deref()
            .or(p.installation.repository_selection.as_deref()),
    );
    Ok(WebhookEvent::InstallationRepositories(
        InstallationRepositoriesEvent {
            installation_id: p.installation.id.to_string(),
            account: p.installation.account.name()?,
            repository_selection,
            added: p.repositories_added.into_iter().map(Into::into).collect(),
            removed: p.repositories_removed.into_iter().map(Into::into).collect(),
        },
    ))
}

#[derive(Deserialize)]
struct User {
    login: String,
    id: u64,
    /// `User`, `Bot` or `Organization`.
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct IssueKind {
    issue: IssuePullRequest,
}

#[derive(Deserialize)]
struct IssuePullRequest {
    /// Present only when the issue is a pull request.
    pull_request: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct IssueCommentPayload {
    issue: Issue,
    comment: Comment,
    repository: Repository,
    installation: Option<InstallationId>,
}

#[derive(Deserialize)]
struct Issue {
    number: u64,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    body: String,
    user: User,
    /// Review comments only: the comment this one answers.
    in_reply_to_id: Option<u64>,
}

fn issue_comment(json: &Value) -> Result<WebhookEvent, ParseError> {
    let Action { action } = decode(json)?;
    if action != "created" {
        return Ok(ignored("action_not_handled"));
    }
    let IssueKind { issue } = decode(json)?;
    if issue.pull_request.is_none() {
        return Ok(ignored("not_a_pull_request"));
    }
    let p: IssueCommentPayload = decode(json)?;
    Ok(reply(
        CommentKind::Conversation,
        p.comment,
        p.issue.number,
        p.repository,
        p.installation,
    ))
}

#[derive(Deserialize)]
struct ReviewCommentPayload {
    comment: Comment,
    pull_request: PullRequestNumber,
    repository: Repository,
    installation: Option<InstallationId>,
}

#[derive(Deserialize)]
struct PullRequestNumber {
    number: u64,
}

fn review_comment(json: &Value) -> Result<WebhookEvent, ParseError> {
    let Action { action } = decode(json)?;
    if action != "created" {
        return Ok(ignored("action_not_handled"));
    }
    let p: ReviewCommentPayload = decode(json)?;
    Ok(reply(
        CommentKind::ReviewThread,
        p.comment,
        p.pull_request.number,
        p.repository,
        p.installation,
    ))
}

fn reply(
    kind: CommentKind,
    comment: Comment,
    number: u64,
    repository: Repository,
    installation: Option<InstallationId>,
) -> WebhookEvent {
    WebhookEvent::Reply(ReplyEvent {
        kind,
        repository: repository.into(),
        installation_id: installation.map(|i| i.id.to_string()),
        number,
        comment_id: comment.id.to_string(),
        in_reply_to: match kind {
            CommentKind::ReviewThread => comment.in_reply_to_id.map(|id| id.to_string()),
            CommentKind::Conversation => None,
        },
        body: comment.body,
        author: comment.user.login,
        author_id: comment.user.id.to_string(),
        author_is_bot: comment.user.kind == "Bot",
    })
}
