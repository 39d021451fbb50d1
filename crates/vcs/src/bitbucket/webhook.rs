//! Bitbucket Cloud webhook deliveries: signature and payload.
//!
//! Bitbucket Cloud POSTs each delivery as JSON with these headers (Bitbucket Cloud docs, "Event
//! payloads", <https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/>):
//!
//! - `X-Event-Key`: the event (`pullrequest:created`, `repo:push`, ...); the body has no separate
//!   action;
//! - `X-Request-UUID`: the request's UUID; `X-Hook-UUID`: the webhook's; `X-Attempt-Number`: which
//!   attempt this is (Bitbucket tries twice more after a failure, and a "Resend request" counts
//!   too);
//! - `X-Hub-Signature`, only when the hook has a secret: `sha256=` and the hex HMAC-SHA256 of the
//!   raw body keyed with the secret. The scheme of GitHub's `X-Hub-Signature-256` under the header
//!   name GitHub uses for SHA-1 (Bitbucket's announcement, "Introducing enhanced webhook
//!   security", <https://bitbucket.org/blog/enhanced-webhook-security>; the header's format is the
//!   one Bitbucket Data Center documents, "Manage webhooks", and that third-party guides describe
//!   for Cloud: SHA-256 is the only algorithm Bitbucket uses).
//!
//! [`verify`] checks the signature over the bytes as received, before anything parses them;
//! [`parse`] then turns a verified delivery into a provider-neutral [`Delivery`]. Neither does I/O.
//!
//! Commit hashes in Bitbucket's payloads are abbreviated (12 hex digits in the docs' examples:
//! `"hash": "d3022fc0ca3d"`). [`parse`] cannot resolve them without I/O: it passes them on,
//! lowercased, and the receiver resolves the head to the full SHA through the API before it
//! queues anything (see [`PullRequestEvent::head_sha`]).
//!
//! Bitbucket does not send payloads over 256 KB at all, and resends only after a 5xx.

use crate::event::{
    CommentKind, Delivery, Ignored, PullRequestAction, PullRequestEvent, ReplyEvent, RepoRef,
    WebhookEvent,
};
use crate::webhook::{
    commit_hash, decode, header_text, single_header, verify_hmac_sha256, ParseError,
    SignatureError, WebhookSecrets,
};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

/// `X-Hub-Signature`: `sha256=<64 hex digits>`, HMAC-SHA256 of the raw body (not GitHub's SHA-1
/// header of the same name).
pub const SIGNATURE_HEADER: &str = "x-hub-signature";
/// `X-Event-Key`: the event, `pullrequest:created` and the like.
pub const EVENT_HEADER: &str = "x-event-key";
/// `X-Request-UUID`: the request's UUID, the delivery's id.
pub const REQUEST_UUID_HEADER: &str = "x-request-uuid";
/// `X-Hook-UUID`: the webhook's UUID.
pub const HOOK_UUID_HEADER: &str = "x-hook-uuid";
/// `X-Attempt-Number`: 1 for the first attempt, then 2 and 3 for Bitbucket's retries (and more
/// for resends by hand).
pub const ATTEMPT_HEADER: &str = "x-attempt-number";

/// Where Bitbucket Cloud serves repositories: clone URLs are `{WEB_BASE}/{full_name}.git`.
pub const WEB_BASE: &str = "https://bitbucket.org";

/// Checks a delivery's `X-Hub-Signature` against its raw `body` under each secret `secrets`
/// accepts at `now` (the current one, and the previous one during its rotation overlap).
///
/// The header is `sha256=` followed by the hex HMAC-SHA256 of the body keyed with the hook's
/// secret, the scheme of GitHub's `X-Hub-Signature-256` (and checked by the same code): header
/// names are matched case-insensitively, blanks around the value are ignored, the prefix and the
/// hex digits may be of either case (Bitbucket sends lowercase; case carries no meaning in hex,
/// and GitHub's check accepts both), and the comparison runs in constant time.
///
/// # Errors
///
/// - [`SignatureError::Missing`]: no `X-Hub-Signature` (a hook without a secret sends none, and
///   Picket does not take unsigned deliveries);
/// - [`SignatureError::Sha1Only`]: the header holds a `sha1=` signature (Bitbucket Cloud uses
///   SHA-256 only; refused like GitHub's legacy SHA-1 header);
/// - [`SignatureError::Malformed`]: not `sha256=` and 64 hex digits, or the header is repeated;
/// - [`SignatureError::Mismatch`]: no accepted secret produces it.
pub fn verify(
    headers: &http::HeaderMap,
    body: &[u8],
    secrets: &WebhookSecrets,
    now: OffsetDateTime,
) -> Result<(), SignatureError> {
    let value = single_header(headers, SIGNATURE_HEADER)?.ok_or(SignatureError::Missing)?;
    let scheme = value.as_bytes().trim_ascii_start();
    if scheme
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case(b"sha1="))
    {
        return Err(SignatureError::Sha1Only);
    }
    verify_hmac_sha256(value.as_bytes(), body, secrets, now)
}

/// Reads a delivery (whose signature [`verify`] accepted) into a [`Delivery`].
///
/// The delivery id is `X-Request-UUID`, the event `X-Event-Key`; Bitbucket's payloads carry no
/// action apart from the event key, so [`Delivery::action`] is `None`. What each event becomes
/// (Bitbucket Cloud docs, "Event payloads", link above; the event keys are those of Bitbucket's
/// OpenAPI description, `hook_event.event`):
///
/// - `pullrequest:created` → [`PullRequestAction::Opened`];
/// - `pullrequest:updated` (any change to the pull request, a title edit as well as new commits)
///   and `pullrequest:push` (listed among the hook events of Bitbucket's OpenAPI description,
///   but neither its meaning nor its payload is on the "Event payloads" page: taken as new commits
///   on the source branch, with the payload of the other pull request events) →
///   [`PullRequestAction::Pushed`]. Whether the head actually moved is the
///   receiver's call: it compares the head with the ones it already has, and a known head queues
///   nothing.
///
///   The repository is the payload's `repository` (the destination: `uuid`, braces included as
///   Bitbucket sends it; `full_name`, `workspace/slug`; `is_private`; `mainbranch.name` when
///   present). Its clone URL is derived, `https://bitbucket.org/{full_name}.git`: the payloads
///   carry no clone link, and the docs' `links.html.href` examples are not clone URLs. From
///   `pullrequest`: `id`, `title`, `draft` (false when absent), `updated_on`, `author.nickname`
///   (else `author.display_name`), the head `source.commit.hash` on `source.branch.name`, the
///   base `destination.branch.name` and its tip `destination.commit.hash` (empty when absent).
///   `from_fork` when `source.repository.uuid` differs from `destination.repository.uuid` (or
///   from `repository.uuid` when the destination names no repository), or the source repository
///   or its uuid is missing.
/// - `pullrequest:comment_created` → [`WebhookEvent::Reply`]: a comment with `inline` (anchored
///   to a file) is a [`CommentKind::ReviewThread`], others a [`CommentKind::Conversation`];
///   `comment_id` is `comment.id`, `in_reply_to` is `comment.parent.id` when there is one, the
///   body `comment.content.raw`; the author is the `actor` (`nickname`, else `display_name`; id
///   `uuid`), a bot unless its `type` is `user` (`app_user` for apps and integrations, `team`).
/// - `pullrequest:fulfilled` (merged) and `pullrequest:rejected` (declined) → ignored,
///   `action_not_handled`, the reason GitHub's parser gives a closed pull request; any other
///   `pullrequest:*` event → ignored, `action_not_handled`; any other event (`repo:push`,
///   `issue:*`, ...) → ignored, `event_not_handled`.
///
/// Only the fields named here are read; others are ignored.
///
/// # Errors
///
/// A [`ParseError`] with code `header_missing` / `header_invalid` (no `X-Request-UUID` or
/// `X-Event-Key`, or one that is empty or not visible ASCII), `body_not_json`, or
/// `payload_invalid` (a field a handled event needs is missing or of another type, or a commit
/// hash is not 7 to 64 hex digits; the message names its JSON path, e.g.
/// `pullrequest.source.commit.hash`). Ignored events are not read, so they cannot fail. Messages
/// never quote the payload.
pub fn parse(headers: &http::HeaderMap, body: &[u8]) -> Result<Delivery, ParseError> {
    let id = header_text(headers, REQUEST_UUID_HEADER, "X-Request-UUID")?;
    let event = header_text(headers, EVENT_HEADER, "X-Event-Key")?;
    let json: Value = serde_json::from_slice(body).map_err(|e| ParseError {
        code: "body_not_json",
        // serde_json's syntax messages name only positions, but the position is all we keep.
        message: format!(
            "the body is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ),
    })?;
    let payload = match event.as_str() {
        "pullrequest:created" => pull_request(&json, PullRequestAction::Opened)?,
        "pullrequest:updated" | "pullrequest:push" => {
            pull_request(&json, PullRequestAction::Pushed)?
        }
        "pullrequest:comment_created" => comment(&json)?,
        // Merged or declined: like GitHub's `closed`, nothing to scan.
        "pullrequest:fulfilled" | "pullrequest:rejected" => ignored("action_not_handled"),
        other if other.starts_with("pullrequest:") => ignored("action_not_handled"),
        _ => ignored("event_not_handled"),
    };
    Ok(Delivery {
        id,
        event,
        action: None,
        payload,
    })
}

fn ignored(reason: &'static str) -> WebhookEvent {
    WebhookEvent::Ignored(Ignored { reason })
}

/// The Repository entity (`repository`, and the endpoints' `repository`).
#[derive(Deserialize)]
struct Repository {
    uuid: String,
    full_name: String,
    is_private: Option<bool>,
    mainbranch: Option<Branch>,
}

impl From<Repository> for RepoRef {
    fn from(r: Repository) -> Self {
        RepoRef {
            id: r.uuid,
            clone_url: Some(format!("{WEB_BASE}/{}.git", r.full_name)),
            full_name: r.full_name,
            default_branch: r.mainbranch.map(|b| b.name),
            private: r.is_private,
        }
    }
}

#[derive(Deserialize)]
struct Branch {
    name: String,
}

/// An endpoint's repository, of which only the identity matters.
#[derive(Deserialize)]
struct RepositoryUuid {
    uuid: Option<String>,
}

/// The Account entity (`actor`, `pullrequest.author`): `user`, `app_user` or `team`.
#[derive(Deserialize)]
struct Account {
    nickname: Option<String>,
    display_name: Option<String>,
}

impl Account {
    fn name(self) -> Option<String> {
        display_name(self.nickname, self.display_name)
    }
}

/// An account's `nickname`, else its `display_name` (empty ones skipped).
fn display_name(nickname: Option<String>, display_name: Option<String>) -> Option<String> {
    nickname
        .filter(|n| !n.is_empty())
        .or(display_name.filter(|n| !n.is_empty()))
}

#[derive(Deserialize)]
struct PullRequestPayload {
    pullrequest: PullRequest,
    repository: Repository,
}

#[derive(Deserialize)]
struct PullRequest {
    id: u64,
    title: String,
    draft: Option<bool>,
    updated_on: Option<String>,
    author: Option<Account>,
    source: Source,
    destination: Destination,
}

#[derive(Deserialize)]
struct Source {
    branch: Branch,
    commit: Commit,
    /// Absent (or null) when the source repository (a fork) is gone.
    repository: Option<RepositoryUuid>,
}

#[derive(Deserialize)]
struct Commit {
    hash: String,
}

#[derive(Deserialize)]
struct Destination {
    branch: Branch,
    commit: Option<MaybeCommit>,
    repository: Option<RepositoryUuid>,
}

#[derive(Deserialize)]
struct MaybeCommit {
    hash: Option<String>,
}

fn pull_request(json: &Value, action: PullRequestAction) -> Result<WebhookEvent, ParseError> {
    let p: PullRequestPayload = decode(json)?;
    let pr = p.pullrequest;
    let head_sha = commit_hash(pr.source.commit.hash, "pullrequest.source.commit.hash")?;
    let base_sha = match pr.destination.commit.and_then(|c| c.hash) {
        Some(hash) => commit_hash(hash, "pullrequest.destination.commit.hash")?,
        None => String::new(),
    };
    let base_repo = pr
        .destination
        .repository
        .and_then(|r| r.uuid)
        .unwrap_or_else(|| p.repository.uuid.clone());
    let from_fork = pr
        .source
        .repository
        .and_then(|r| r.uuid)
        .is_none_or(|head| head != base_repo);
    Ok(WebhookEvent::PullRequest(PullRequestEvent {
        action,
        repository: p.repository.into(),
        installation_id: None,
        number: pr.id,
        head_sha,
        head_ref: pr.source.branch.name,
        base_ref: pr.destination.branch.name,
        base_sha,
        from_fork,
        draft: pr.draft.unwrap_or(false),
        updated_at: pr.updated_on.as_deref().and_then(bitbucket_time),
        title: pr.title,
        author: pr.author.and_then(Account::name),
    }))
}

/// Bitbucket's ISO 8601 timestamps (`2015-04-06T15:23:38.205705+00:00`); `None` for anything
/// that is not RFC 3339.
fn bitbucket_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

#[derive(Deserialize)]
struct CommentPayload {
    actor: Actor,
    comment: Comment,
    pullrequest: PullRequestId,
    repository: Repository,
}

/// The comment's author.
#[derive(Deserialize)]
struct Actor {
    /// `user`, `app_user` (apps and integrations) or `team`.
    #[serde(rename = "type")]
    kind: Option<String>,
    uuid: String,
    nickname: Option<String>,
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    content: Content,
    /// Present (`path`, `from`, `to`) on a comment anchored to a file.
    inline: Option<IgnoredAny>,
    parent: Option<CommentId>,
}

#[derive(Deserialize)]
struct Content {
    raw: String,
}

#[derive(Deserialize)]
struct CommentId {
    id: u64,
}

#[derive(Deserialize)]
struct PullRequestId {
    id: u64,
}

fn comment(json: &Value) -> Result<WebhookEvent, ParseError> {
    let p: CommentPayload = decode(json)?;
    let author_is_bot = p.actor.kind.as_deref() != Some("user");
    let author =
        display_name(p.actor.nickname, p.actor.display_name).ok_or_else(|| ParseError {
            code: "payload_invalid",
            message: "`actor.nickname` and `actor.display_name` are both missing".to_owned(),
        })?;
    Ok(WebhookEvent::Reply(ReplyEvent {
        kind: if p.comment.inline.is_some() {
            CommentKind::ReviewThread
        } else {
            CommentKind::Conversation
        },
        repository: p.repository.into(),
        installation_id: None,
        number: p.pullrequest.id,
        comment_id: p.comment.id.to_string(),
        in_reply_to: p.comment.parent.map(|c| c.id.to_string()),
        body: p.comment.content.raw,
        author,
        author_id: p.actor.uuid,
        author_is_bot,
    }))
}
