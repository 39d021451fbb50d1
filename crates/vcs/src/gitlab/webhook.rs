//! GitLab webhook deliveries (gitlab.com and self-managed): authentication and payload.
//!
//! GitLab POSTs each delivery as JSON with these headers (GitLab docs, "Webhooks",
//! <https://docs.gitlab.com/user/project/integrations/webhooks/>, and "Webhook events",
//! <https://docs.gitlab.com/user/project/integrations/webhook_events/>):
//!
//! - `X-Gitlab-Event`: the event name (`Merge Request Hook`, `Note Hook`, ...);
//! - `X-Gitlab-Token`: the hook's secret token, in plain text, when one is set;
//! - `Idempotency-Key` (GitLab 17.4+): the same on every retry of one delivery;
//!   `X-Gitlab-Event-UUID` names the event on older versions;
//! - with a signing token (newer releases), the Standard Webhooks headers `webhook-id`,
//!   `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of
//!   `{id}.{timestamp}.{body}` under the `whsec_` key; <https://www.standardwebhooks.com/>).
//!
//! [`verify`] authenticates a delivery the way the connection is configured: a secret starting
//! `whsec_` is a signing token, anything else the plain token. [`parse`] then turns it into a
//! provider-neutral [`Delivery`]. Neither does I/O.
//!
//! GitLab disables a hook after 4 consecutive failures (any 4xx, 5xx or timeout; GitLab 17.11+),
//! so a delivery that is authentic but unreadable must still be answered 2xx by the receiver:
//! [`parse`] turns what Picket does not act on into [`WebhookEvent::Ignored`] and reserves
//! errors for a payload missing what an event Picket acts on needs.

use crate::event::{
    CommentKind, Delivery, Ignored, PullRequestAction, PullRequestEvent, ReplyEvent, RepoRef,
    WebhookEvent,
};
use crate::webhook::{commit_sha, decode, header_text, ParseError, SignatureError, WebhookSecrets};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// `X-Gitlab-Token`: the hook's secret token in plain text.
pub const TOKEN_HEADER: &str = "x-gitlab-token";
/// `X-Gitlab-Event`: the event name.
pub const EVENT_HEADER: &str = "x-gitlab-event";
/// `Idempotency-Key`: the delivery's id, stable across retries (GitLab 17.4+).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// `X-Gitlab-Event-UUID`: the event's id on versions without `Idempotency-Key`.
pub const EVENT_UUID_HEADER: &str = "x-gitlab-event-uuid";
/// Standard Webhooks headers of a signed delivery.
pub const SIGNATURE_HEADER: &str = standardwebhooks::HEADER_WEBHOOK_SIGNATURE;
pub const SIGNATURE_ID_HEADER: &str = standardwebhooks::HEADER_WEBHOOK_ID;
pub const SIGNATURE_TIMESTAMP_HEADER: &str = standardwebhooks::HEADER_WEBHOOK_TIMESTAMP;
/// How far a signed delivery's timestamp may be from now (Standard Webhooks: 5 minutes).
pub const SIGNATURE_TOLERANCE_SECS: i64 = 5 * 60;
/// The prefix of a Standard Webhooks signing secret.
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";

/// Whether `secret` is a usable signing token: `whsec_` followed by a base64 key (GitLab shows
/// it this way; <https://www.standardwebhooks.com/>).
pub fn signing_token_ok(secret: &str) -> bool {
    secret.starts_with(SIGNING_SECRET_PREFIX) && standardwebhooks::Webhook::new(secret).is_ok()
}

/// Authenticates a delivery under each secret `secrets` accepts at `now` (the current one, and
/// the previous one during its rotation overlap).
///
/// A secret starting `whsec_` is a signing token: the delivery must carry `webhook-id`,
/// `webhook-timestamp` (Unix seconds, within [`SIGNATURE_TOLERANCE_SECS`] of `now`) and a
/// `webhook-signature` holding one `v1,<base64>` signature (space-separated list) of
/// `{id}.{timestamp}.{body}`, computed with the `standardwebhooks` crate. Any other secret is
/// compared with `X-Gitlab-Token`. Comparisons run in constant time.
///
/// # Errors
///
/// - [`SignatureError::Missing`]: the header(s) the configured scheme needs are absent;
/// - [`SignatureError::Malformed`]: a header is repeated, not visible ASCII, or a timestamp is
///   not an integer or outside the tolerance;
/// - [`SignatureError::Mismatch`]: no accepted secret matches.
pub fn verify(
    headers: &http::HeaderMap,
    body: &[u8],
    secrets: &WebhookSecrets,
    now: OffsetDateTime,
) -> Result<(), SignatureError> {
    let mut outcome = Err(SignatureError::Missing);
    for secret in secrets.accepted_at(now) {
        let secret = secret.expose_secret();
        let this = if secret.starts_with(SIGNING_SECRET_PREFIX) {
            verify_signed(headers, body, secret, now)
        } else {
            verify_token(headers, secret)
        };
        match this {
            Ok(()) => return Ok(()),
            // Keep the most telling refusal: a mismatch over a missing header.
            Err(e) => {
                if outcome == Err(SignatureError::Missing) || e == SignatureError::Mismatch {
                    outcome = Err(e);
                }
            }
        }
    }
    outcome
}

/// The one value of a header, as visible ASCII; `Ok(None)` when absent.
fn single<'a>(headers: &'a http::HeaderMap, name: &str) -> Result<Option<&'a str>, SignatureError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(SignatureError::Malformed);
    }
    value
        .to_str()
        .map(|v| Some(v.trim()))
        .map_err(|_| SignatureError::Malformed)
}

fn verify_token(headers: &http::HeaderMap, secret: &str) -> Result<(), SignatureError> {
    let token = single(headers, TOKEN_HEADER)?.ok_or(SignatureError::Missing)?;
    if bool::from(token.as_bytes().ct_eq(secret.as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn verify_signed(
    headers: &http::HeaderMap,
    body: &[u8],
    secret: &str,
    now: OffsetDateTime,
) -> Result<(), SignatureError> {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        single(headers, SIGNATURE_ID_HEADER)?,
        single(headers, SIGNATURE_TIMESTAMP_HEADER)?,
        single(headers, SIGNATURE_HEADER)?,
    ) else {
        return Err(SignatureError::Missing);
    };
    let timestamp: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
    if (now.unix_timestamp() - timestamp).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::Malformed);
    }
    // A secret that is not `whsec_<base64>` can match nothing.
    let signer = standardwebhooks::Webhook::new(secret).map_err(|_| SignatureError::Mismatch)?;
    // The scheme signs the body as text: a body that is not UTF-8 cannot carry a signature.
    let expected = signer
        .sign(id, timestamp, body)
        .map_err(|_| SignatureError::Mismatch)?;
    let expected = expected.as_bytes();
    let matched = signatures
        .split(' ')
        .filter(|s| s.starts_with("v1,"))
        .fold(subtle::Choice::from(0), |any, s| {
            any | s.as_bytes().ct_eq(expected)
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Reads an authenticated delivery into a [`Delivery`].
///
/// The delivery id is `Idempotency-Key`, else `webhook-id`, else `X-Gitlab-Event-UUID`; the event
/// is `X-Gitlab-Event`. What each event becomes (GitLab docs, "Webhook events", link above):
///
/// - `Merge Request Hook` with `object_attributes.action`
///   - `open` → [`PullRequestAction::Opened`], `reopen` → [`PullRequestAction::Reopened`];
///   - `update` with `object_attributes.oldrev` (new commits: GitLab sends it only then) →
///     [`PullRequestAction::Pushed`];
///   - `update` without it, when `changes.draft` went from true to false →
///     [`PullRequestAction::ReadyForReview`];
///   - any other `update` → ignored, `metadata_only`; other actions → ignored,
///     `action_not_handled`.
///
///   The repository is the target project (`project`: `id`, `path_with_namespace`,
///   `git_http_url`, `default_branch`, `visibility_level` < 20 is private); the number is
///   `object_attributes.iid`; the head is `object_attributes.last_commit.id` on
///   `source_branch`; the base branch is `target_branch`. GitLab does not send the target's
///   tip: `base_sha` is empty (the merge base comes from the MR's versions when the scan runs).
///   `from_fork` when `source_project_id` differs from `target_project_id`.
/// - `Note Hook` on a merge request (`object_attributes.noteable_type` `MergeRequest`) →
///   [`WebhookEvent::Reply`]: a `DiffNote` (a note on a line) is a
///   [`CommentKind::ReviewThread`], others a [`CommentKind::Conversation`]; `in_reply_to` is the
///   note's `discussion_id`. Notes on issues, commits or snippets → ignored, `not_a_merge_request`.
/// - any other event → ignored, `event_not_handled`.
///
/// # Errors
///
/// `header_missing` / `header_invalid` (no delivery id, or no `X-Gitlab-Event`), `body_not_json`,
/// or `payload_invalid` naming the JSON path a handled event needs. Messages never quote the
/// payload.
pub fn parse(headers: &http::HeaderMap, body: &[u8]) -> Result<Delivery, ParseError> {
    let id = [IDEMPOTENCY_HEADER, SIGNATURE_ID_HEADER, EVENT_UUID_HEADER]
        .into_iter()
        .find(|h| headers.contains_key(*h))
        .map_or_else(
            || {
                Err(ParseError {
                    code: "header_missing",
                    message: "the delivery has no `Idempotency-Key`, `webhook-id` or \
                              `X-Gitlab-Event-UUID` header"
                        .to_owned(),
                })
            },
            |h| header_text(headers, h, h),
        )?;
    let event = header_text(headers, EVENT_HEADER, "X-Gitlab-Event")?;
    let json: Value = serde_json::from_slice(body).map_err(|e| ParseError {
        code: "body_not_json",
        message: format!(
            "the body is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ),
    })?;
    let action = json
        .pointer("/object_attributes/action")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let payload = match event.as_str() {
        "Merge Request Hook" => merge_request(&json)?,
        "Note Hook" => note(&json)?,
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

/// `project` of merge request and note events: the project the hook belongs to.
#[derive(Deserialize)]
struct Project {
    id: u64,
    path_with_namespace: String,
    git_http_url: Option<String>,
    default_branch: Option<String>,
    visibility_level: Option<u8>,
}

impl From<Project> for RepoRef {
    fn from(p: Project) -> Self {
        RepoRef {
            id: p.id.to_string(),
            full_name: p.path_with_namespace,
            clone_url: p.git_http_url,
            default_branch: p.default_branch,
            // 0 private, 10 internal, 20 public (GitLab's visibility levels).
            private: p.visibility_level.map(|v| v < 20),
        }
    }
}

#[derive(Deserialize)]
struct MergeRequestPayload {
    project: Project,
    object_attributes: MergeRequest,
    #[serde(default)]
    changes: Changes,
}

#[derive(Deserialize)]
struct MergeRequest {
    iid: u64,
    action: Option<String>,
    title: String,
    source_branch: String,
    target_branch: String,
    source_project_id: u64,
    target_project_id: u64,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    work_in_progress: bool,
    oldrev: Option<String>,
    last_commit: Commit,
    updated_at: Option<String>,
}

#[derive(Deserialize)]
struct Commit {
    id: String,
}

#[derive(Deserialize, Default)]
struct Changes {
    draft: Option<Change<bool>>,
}

#[derive(Deserialize)]
struct Change<T> {
    previous: Option<T>,
    current: Option<T>,
}

fn merge_request(json: &Value) -> Result<WebhookEvent, ParseError> {
    let action = json
        .pointer("/object_attributes/action")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !matches!(action, "open" | "reopen" | "update") {
        return Ok(ignored("action_not_handled"));
    }
    let p: MergeRequestPayload = decode(json)?;
    let mr = p.object_attributes;
    let ready = p
        .changes
        .draft
        .is_some_and(|c| c.previous == Some(true) && c.current == Some(false));
    let action = match (mr.action.as_deref(), &mr.oldrev, ready) {
        (Some("open"), ..) => PullRequestAction::Opened,
        (Some("reopen"), ..) => PullRequestAction::Reopened,
        (_, Some(_), _) => PullRequestAction::Pushed,
        (_, None, true) => PullRequestAction::ReadyForReview,
        (_, None, false) => return Ok(ignored("metadata_only")),
    };
    Ok(WebhookEvent::PullRequest(PullRequestEvent {
        action,
        repository: p.project.into(),
        installation_id: None,
        number: mr.iid,
        head_sha: commit_sha(mr.last_commit.id, "object_attributes.last_commit.id")?,
        head_ref: mr.source_branch,
        base_ref: mr.target_branch,
        base_sha: String::new(),
        from_fork: mr.source_project_id != mr.target_project_id,
        draft: mr.draft || mr.work_in_progress,
        updated_at: mr.updated_at.as_deref().and_then(gitlab_time),
        title: mr.title,
        author: None,
    }))
}

/// GitLab's timestamps: RFC 3339 (`2013-12-03T17:23:34Z`, `…34.558Z`), or, in older payloads,
/// `2013-12-03 17:23:34 UTC`. `None` for anything else.
fn gitlab_time(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let legacy =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::PrimitiveDateTime::parse(text, legacy)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

#[derive(Deserialize)]
struct NotePayload {
    user: User,
    project: Project,
    object_attributes: Note,
    merge_request: Option<NoteMergeRequest>,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    username: String,
}

#[derive(Deserialize)]
struct Note {
    id: u64,
    note: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    discussion_id: Option<String>,
}

#[derive(Deserialize)]
struct NoteMergeRequest {
    iid: u64,
}

fn note(json: &Value) -> Result<WebhookEvent, ParseError> {
    let on = json
        .pointer("/object_attributes/noteable_type")
        .and_then(Value::as_str);
    if on != Some("MergeRequest") {
        return Ok(ignored("not_a_merge_request"));
    }
    let p: NotePayload = decode(json)?;
    let number = p.merge_request.map(|m| m.iid).ok_or_else(|| ParseError {
        code: "payload_invalid",
        message: "`merge_request` is missing".to_owned(),
    })?;
    Ok(WebhookEvent::Reply(ReplyEvent {
        kind: if p.object_attributes.kind.as_deref() == Some("DiffNote") {
            CommentKind::ReviewThread
        } else {
            CommentKind::Conversation
        },
        repository: p.project.into(),
        installation_id: None,
        number,
        comment_id: p.object_attributes.id.to_string(),
        in_reply_to: p.object_attributes.discussion_id,
        body: p.object_attributes.note,
        author: p.user.username,
        author_id: p.user.id.to_string(),
        // The payload does not say; the receiver compares the author with the token's user.
        author_is_bot: false,
    }))
}
