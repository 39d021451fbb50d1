//! Azure DevOps Services service-hook deliveries (the Web Hooks consumer): authentication and
//! payload.
//!
//! A service-hook subscription with the Web Hooks consumer (`webHooks`, action `httpRequest`)
//! POSTs each event as JSON to a URL (Azure DevOps docs, "Webhooks",
//! <https://learn.microsoft.com/azure/devops/service-hooks/services/webhooks>, and "Service hook
//! consumers", <https://learn.microsoft.com/azure/devops/service-hooks/consumers#webhooks>).
//! Azure signs nothing: the subscription can only carry a Basic authentication user name and
//! password (`basicAuthUsername`, `basicAuthPassword`; sent in plain text, so HTTPS is required)
//! and custom headers (`httpHeaders`). Picket uses Basic authentication:
//!
//! - [`generate_password`] makes a password per connection: 32 bytes from the operating
//!   system's random number generator, URL-safe base64. Picket shows it once, for the admin to
//!   paste into the subscription with the user name [`USERNAME`], and stores only its
//!   [`password_hash`]: the lowercase hex SHA-256. A fast, unsalted hash is right here because
//!   the password is 256 random bits: nothing can be guessed, so there is nothing for a slow
//!   password hash (Argon2, bcrypt) to slow down, and a per-delivery check stays microseconds.
//! - [`verify`] checks a delivery's `Authorization: Basic` header against the stored hashes
//!   (the current one, and the previous one during a rotation overlap).
//!
//! Azure sends no delivery or event header: the event's id (`id`, a GUID) and type
//! (`eventType`) are in the body (Azure DevOps docs, "Service hooks events",
//! <https://learn.microsoft.com/azure/devops/service-hooks/events>). [`parse`] turns an
//! authenticated delivery into a provider-neutral [`Delivery`]. Neither does I/O.
//!
//! The subscription must send all resource details (`resourceDetailsToSend`: All, the default)
//! and, for "Pull request commented on", resource version 2.0 (the comment and its pull request):
//! a payload missing what an event Picket acts on needs is refused as `payload_invalid`.
//!
//! Azure disables a subscription at once on a 410 and puts it on probation (dropping new events
//! meanwhile) on other failures, retrying only 408, 502, 503 and 504: the receiver must answer
//! 2xx to what Picket does not act on. [`parse`] turns that into [`WebhookEvent::Ignored`] and
//! reserves errors for a payload missing what an event Picket acts on needs.

use crate::event::{
    CommentKind, Delivery, Ignored, PullRequestAction, PullRequestEvent, ReplyEvent, RepoRef,
    WebhookEvent,
};
use crate::webhook::{commit_sha, decode, ParseError, SignatureError, WebhookSecrets};
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// `Authorization`: `Basic base64(user:password)`, as the subscription's Basic authentication
/// sends it.
pub const AUTHORIZATION_HEADER: &str = "authorization";
/// The Basic authentication user name Picket tells the admin to set on the subscription
/// (`basicAuthUsername`). Compared exactly.
pub const USERNAME: &str = "picket";
/// How many random bytes a generated password holds.
pub const PASSWORD_BYTES: usize = 32;
/// `eventType` of "Pull request created".
pub const PULL_REQUEST_CREATED: &str = "git.pullrequest.created";
/// `eventType` of "Pull request updated".
pub const PULL_REQUEST_UPDATED: &str = "git.pullrequest.updated";
/// `eventType` of "Pull request commented on".
pub const PULL_REQUEST_COMMENTED: &str = "ms.vss-code.git-pullrequest-comment-event";

/// A new webhook password for a connection, and its [`password_hash`].
///
/// The password is [`PASSWORD_BYTES`] bytes from the operating system's random number generator
/// in URL-safe base64 without padding (43 characters of `A-Z a-z 0-9 - _`: no `:`, which Basic
/// authentication could not carry). Show it once; store only the hash.
pub fn generate_password() -> (SecretString, String) {
    let mut bytes = [0u8; PASSWORD_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = password_hash(&password);
    (SecretString::from(password), hash)
}

/// The lowercase hex SHA-256 of `password`: what Picket stores, and what [`verify`] expects
/// each accepted secret of a [`WebhookSecrets`] to hold.
pub fn password_hash(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

/// Authenticates a delivery's `Authorization: Basic` header under each password hash `secrets`
/// accepts at `now` (the current one, and the previous one during its rotation overlap). Each
/// secret holds a [`password_hash`] (hex, either case), never a password.
///
/// The header must appear once, with the scheme `Basic` (any case) and the base64 (padded or
/// not) of `user:password` in UTF-8 (RFC 7617); the user must be [`USERNAME`]. The SHA-256 of
/// the password is compared with every accepted hash in constant time.
///
/// # Errors
///
/// - [`SignatureError::Missing`]: no `Authorization` header;
/// - [`SignatureError::Malformed`]: the header is repeated, not visible ASCII, of another scheme
///   (`Bearer`, ...), not base64, not UTF-8, or without a `:`;
/// - [`SignatureError::Mismatch`]: another user name, or a password no accepted hash matches.
pub fn verify(
    headers: &http::HeaderMap,
    secrets: &WebhookSecrets,
    now: OffsetDateTime,
) -> Result<(), SignatureError> {
    let mut values = headers.get_all(AUTHORIZATION_HEADER).iter();
    let Some(value) = values.next() else {
        return Err(SignatureError::Missing);
    };
    if values.next().is_some() {
        return Err(SignatureError::Malformed);
    }
    let (user, password) = basic_credentials(value).ok_or(SignatureError::Malformed)?;
    let hash = Sha256::digest(password.as_bytes());
    // Every accepted hash is compared, whatever the user name, so the time taken says nothing.
    let matched = secrets
        .accepted_at(now)
        .fold(subtle::Choice::from(0), |any, secret| {
            let mut stored = [0u8; 32];
            // A secret that is not 64 hex digits can match nothing.
            if hex::decode_to_slice(secret.expose_secret().trim(), &mut stored).is_err() {
                return any;
            }
            any | stored.ct_eq(hash.as_slice())
        });
    if bool::from(matched) && user == USERNAME {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `Basic <base64(user:password)>` to its user and password; `None` for anything else.
fn basic_credentials(value: &http::HeaderValue) -> Option<(String, String)> {
    use base64::engine::{general_purpose::GeneralPurposeConfig, DecodePaddingMode};
    let value = value.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let decoded = lenient.decode(token.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    // The user name cannot hold a colon (RFC 7617): the password is everything after the first.
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Reads an authenticated delivery into a [`Delivery`].
///
/// `headers` are not read (Azure sends no delivery or event header); the parameter keeps every
/// provider's `parse` alike. The delivery id is the body's `id` (the event's GUID), the event
/// its `eventType`; Azure has no action (`action` is `None`). What each event becomes (Azure
/// DevOps docs, "Service hooks events", link above):
///
/// - `git.pullrequest.created` → [`PullRequestAction::Opened`];
/// - `git.pullrequest.updated` → [`PullRequestAction::Pushed`]. The payload does not say what
///   changed (a push, a vote, a reviewer, the status, the title): whether the head really moved
///   is decided by the receiver against the database, where a head already seen queues nothing.
///
///   Either one, for a pull request whose `resource.status` is `abandoned` or `completed`, is
///   ignored, `closed_pull_request`. Azure computes a pull request's merge asynchronously: right
///   after creation (or a push) `resource.lastMergeSourceCommit` can be missing, and then the
///   delivery is ignored, `merge_not_computed`, rather than refused; the reconcile sweep picks
///   the pull request up once the merge is there.
///
///   From `resource`: the repository is `repository` (`id`, a GUID; `{project.name}/{name}`;
///   `remoteUrl`; `defaultBranch` without `refs/heads/`; private from `project.visibility` when
///   it says `private`, `organization` or `public`, else unknown); the number is
///   `pullRequestId`; the head is `lastMergeSourceCommit.commitId` on `sourceRefName`, the base
///   `targetRefName` and its tip `lastMergeTargetCommit.commitId` (empty when absent) — branch
///   names without `refs/heads/`; `from_fork` when `forkSource` is there; `draft` is `isDraft`;
///   the author is `createdBy.uniqueName`, else `createdBy.displayName`. A pull request carries
///   no last-update time: `updated_at` is the event's own `createdDate` (top level, present in
///   every documented sample), when the event was raised.
/// - other `git.pullrequest.*` events (`git.pullrequest.merged`, ...) → ignored,
///   `action_not_handled`;
/// - `ms.vss-code.git-pullrequest-comment-event` → [`WebhookEvent::Reply`], from
///   `resource.comment` and `resource.pullRequest` (resource version 2.0). Azure raises it for
///   a new comment and for an edited or deleted one (the documented sample is an edit); a
///   comment with `isDeleted` is ignored, `comment_deleted`, and an edit is passed on like a
///   new comment (the receiver keeps one triage request per comment id, so a command edited
///   again is a duplicate). The payload carries no thread and no file position, only the
///   comment's `parentCommentId`: a reply (`parentCommentId` > 0) is a
///   [`CommentKind::ReviewThread`], a thread's first comment a [`CommentKind::Conversation`].
///   Comment ids count within a thread, so `comment_id` is `{threadId}/{id}`, the thread id read
///   from `comment._links.threads.href` (`…/threads/{threadId}`) or `comment._links.self.href`
///   (`…/threads/{threadId}/comments/{id}`), and `in_reply_to` is the thread id; without those
///   links `comment_id` is the bare `id` and `in_reply_to` is `None`. The author is
///   `author.uniqueName` (else `displayName`), `author_id` is `author.id`; `author_is_bot` when
///   `commentType` is `system` (or its number, 3) or the author's `descriptor` starts with
///   `svc.` (a service identity: the project's build service, an installed app).
/// - any other event → ignored, `event_not_handled`.
///
/// # Errors
///
/// `body_not_json`, or `payload_invalid` when `id` or `eventType` is missing, empty or not
/// visible ASCII, or a field a handled event needs is missing or of another type (the message
/// names its JSON path, e.g. `resource.pullRequestId`). Messages never quote the payload.
pub fn parse(headers: &http::HeaderMap, body: &[u8]) -> Result<Delivery, ParseError> {
    let _ = headers;
    let json: Value = serde_json::from_slice(body).map_err(|e| ParseError {
        code: "body_not_json",
        message: format!(
            "the body is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ),
    })?;
    let id = body_text(&json, "id")?;
    let event = body_text(&json, "eventType")?;
    let payload = match event.as_str() {
        PULL_REQUEST_CREATED => pull_request(&json, PullRequestAction::Opened)?,
        PULL_REQUEST_UPDATED => pull_request(&json, PullRequestAction::Pushed)?,
        PULL_REQUEST_COMMENTED => comment(&json)?,
        e if e.starts_with("git.pullrequest.") => ignored("action_not_handled"),
        _ => ignored("event_not_handled"),
    };
    Ok(Delivery {
        id,
        event,
        action: None,
        payload,
    })
}

/// A top-level string field, trimmed: `payload_invalid` when missing, empty or not visible ASCII.
fn body_text(json: &Value, field: &'static str) -> Result<String, ParseError> {
    let text = json.get(field).ok_or_else(|| ParseError {
        code: "payload_invalid",
        message: format!("`{field}` is missing"),
    })?;
    match text.as_str().map(str::trim) {
        Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()) => Ok(t.to_owned()),
        _ => Err(ParseError {
            code: "payload_invalid",
            message: format!("`{field}` is empty or not visible ASCII"),
        }),
    }
}

fn ignored(reason: &'static str) -> WebhookEvent {
    WebhookEvent::Ignored(Ignored { reason })
}

/// `refs/heads/main` → `main`; anything else as it is.
fn branch(name: String) -> String {
    match name.strip_prefix("refs/heads/") {
        Some(short) => short.to_owned(),
        None => name,
    }
}

/// `resource.repository` of pull request events, `resource.pullRequest.repository` of comment
/// events: the pull request's target repository.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Repository {
    id: String,
    name: String,
    project: Project,
    remote_url: Option<String>,
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct Project {
    name: String,
    /// `private`, `organization`, `public`, or `unchanged` (as the comment event's sample
    /// sends); absent in the pull request events' samples.
    visibility: Option<Value>,
}

impl From<Repository> for RepoRef {
    fn from(r: Repository) -> Self {
        let visibility = r.project.visibility.as_ref().and_then(Value::as_str);
        let private = match visibility {
            Some(v) if v.eq_ignore_ascii_case("public") => Some(false),
            Some(v)
                if v.eq_ignore_ascii_case("private") || v.eq_ignore_ascii_case("organization") =>
            {
                Some(true)
            }
            _ => None,
        };
        RepoRef {
            full_name: format!("{}/{}", r.project.name, r.name),
            id: r.id,
            clone_url: r.remote_url,
            default_branch: r.default_branch.map(branch),
            private,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullRequestPayload {
    resource: PullRequest,
    created_date: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullRequest {
    repository: Repository,
    pull_request_id: u64,
    title: String,
    source_ref_name: String,
    target_ref_name: String,
    is_draft: Option<bool>,
    last_merge_source_commit: Commit,
    last_merge_target_commit: Option<Commit>,
    /// Present only when the source branch lives in a fork.
    fork_source: Option<IgnoredAny>,
    created_by: Option<Identity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Commit {
    commit_id: String,
}

/// An `IdentityRef`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    id: Option<String>,
    display_name: Option<String>,
    unique_name: Option<String>,
    descriptor: Option<String>,
}

impl Identity {
    /// `uniqueName` (the sign-in name), else `displayName`; service identities have an empty
    /// or null `uniqueName`.
    fn name(&self) -> Option<String> {
        [&self.unique_name, &self.display_name]
            .into_iter()
            .flatten()
            .find(|n| !n.trim().is_empty())
            .cloned()
    }
}

/// Whether a pull request's `status` (`active`, `abandoned`, `completed`, `notSet`, or the enum's
/// number) says it is closed.
fn closed(status: Option<&Value>) -> bool {
    match status {
        Some(Value::String(s)) => {
            s.eq_ignore_ascii_case("abandoned") || s.eq_ignore_ascii_case("completed")
        }
        Some(Value::Number(n)) => matches!(n.as_u64(), Some(2 | 3)),
        _ => false,
    }
}

fn pull_request(json: &Value, action: PullRequestAction) -> Result<WebhookEvent, ParseError> {
    if closed(json.pointer("/resource/status")) {
        return Ok(ignored("closed_pull_request"));
    }
    if json
        .pointer("/resource/lastMergeSourceCommit")
        .is_none_or(Value::is_null)
    {
        return Ok(ignored("merge_not_computed"));
    }
    let p: PullRequestPayload = decode(json)?;
    let pr = p.resource;
    let base_sha = match pr.last_merge_target_commit {
        Some(c) => commit_sha(c.commit_id, "resource.lastMergeTargetCommit.commitId")?,
        None => String::new(),
    };
    Ok(WebhookEvent::PullRequest(PullRequestEvent {
        action,
        repository: pr.repository.into(),
        installation_id: None,
        number: pr.pull_request_id,
        head_sha: commit_sha(
            pr.last_merge_source_commit.commit_id,
            "resource.lastMergeSourceCommit.commitId",
        )?,
        head_ref: branch(pr.source_ref_name),
        base_ref: branch(pr.target_ref_name),
        base_sha,
        from_fork: pr.fork_source.is_some(),
        draft: pr.is_draft.unwrap_or(false),
        updated_at: p.created_date.as_deref().and_then(azure_time),
        title: pr.title,
        author: pr.created_by.as_ref().and_then(Identity::name),
    }))
}

/// Azure's timestamps: RFC 3339 with up to seven fractional digits
/// (`2024-07-17T21:34:22.338Z`). `None` for anything else.
fn azure_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentPayload {
    resource: CommentResource,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentResource {
    comment: Comment,
    pull_request: CommentedPullRequest,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Comment {
    id: u64,
    parent_comment_id: Option<u64>,
    author: Identity,
    content: String,
    /// `text`, `codeChange`, `system` (or the enum's number).
    comment_type: Option<Value>,
    #[serde(rename = "_links")]
    links: Option<CommentLinks>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentLinks {
    #[serde(rename = "self")]
    this: Option<Link>,
    threads: Option<Link>,
}

#[derive(Deserialize)]
struct Link {
    href: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentedPullRequest {
    repository: Repository,
    pull_request_id: u64,
}

/// The thread id in a comment link: the segment after `threads`
/// (`…/pullRequests/1/threads/5`, `…/threads/5/comments/2`).
fn thread_id(href: &str) -> Option<u64> {
    let path = href.split(['?', '#']).next()?;
    let mut segments = path.split('/');
    segments.find(|s| s.eq_ignore_ascii_case("threads"))?;
    segments.next()?.parse().ok()
}

fn system_comment(kind: Option<&Value>) -> bool {
    match kind {
        Some(Value::String(s)) => s.eq_ignore_ascii_case("system"),
        Some(Value::Number(n)) => n.as_u64() == Some(3),
        _ => false,
    }
}

fn comment(json: &Value) -> Result<WebhookEvent, ParseError> {
    if json.pointer("/resource/comment/isDeleted") == Some(&Value::Bool(true)) {
        return Ok(ignored("comment_deleted"));
    }
    let p: CommentPayload = decode(json)?;
    let CommentResource {
        comment: c,
        pull_request: pr,
    } = p.resource;
    let thread = c.links.as_ref().and_then(|l| {
        [&l.threads, &l.this]
            .into_iter()
            .flatten()
            .find_map(|link| link.href.as_deref().and_then(thread_id))
    });
    let author = c.author.name().ok_or_else(|| ParseError {
        code: "payload_invalid",
        message: "`resource.comment.author.uniqueName` is missing".to_owned(),
    })?;
    let author_id = c.author.id.clone().ok_or_else(|| ParseError {
        code: "payload_invalid",
        message: "`resource.comment.author.id` is missing".to_owned(),
    })?;
    let service_identity = c
        .author
        .descriptor
        .as_deref()
        .is_some_and(|d| d.starts_with("svc."));
    Ok(WebhookEvent::Reply(ReplyEvent {
        kind: if c.parent_comment_id.unwrap_or(0) > 0 {
            CommentKind::ReviewThread
        } else {
            CommentKind::Conversation
        },
        repository: pr.repository.into(),
        installation_id: None,
        number: pr.pull_request_id,
        comment_id: match thread {
            Some(t) => format!("{t}/{}", c.id),
            None => c.id.to_string(),
        },
        in_reply_to: thread.map(|t| t.to_string()),
        body: c.content,
        author,
        author_id,
        author_is_bot: system_comment(c.comment_type.as_ref()) || service_identity,
    }))
}
