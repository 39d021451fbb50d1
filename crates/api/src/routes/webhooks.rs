//! `POST /webhooks/github/{connection}` (GitHub App deliveries),
//! `POST /webhooks/gitlab/{connection}` (GitLab project and group hooks),
//! `POST /webhooks/bitbucket/{connection}` (Bitbucket Cloud repository hooks) and
//! `POST /webhooks/azure_devops/{connection}` (Azure DevOps service-hook subscriptions).
//!
//! No bearer token: a delivery is authenticated by the provider's scheme (GitHub:
//! `X-Hub-Signature-256` over the raw body; GitLab: the hook's secret token, or a Standard
//! Webhooks signature; Bitbucket: `X-Hub-Signature`, HMAC-SHA256 of the raw body; Azure DevOps:
//! the subscription's Basic authentication, whose password Picket drew and keeps only the hash
//! of) under the connection's webhook secret (or, during a rotation's overlap, the previous
//! one). In order:
//!
//! 1. the body is read whole (at most [`WEBHOOK_BODY_LIMIT_BYTES`], GitHub's payload cap; more is
//!    413 `body_too_large`);
//! 2. the connection is looked up and its credentials opened: an unknown connection, one of
//!    another provider or one without its provider's credentials is 404;
//! 3. the signature is verified over the bytes as received, before anything parses them; a
//!    refusal is 401 with the [`SignatureError`] code and writes nothing;
//! 4. the delivery is parsed: an unreadable one is logged in the delivery log and answered 400
//!    with the [`ParseError`] code (GitLab and Azure DevOps: 200 with that code, since GitLab
//!    disables a hook after 4 failed deliveries, and Azure disables a subscription on a 410 and
//!    drops new events while one is on probation after other failures: an authentic delivery
//!    must never count as one);
//! 5. Bitbucket only: a pull request's head arrives abbreviated (12 hex digits); for a
//!    repository that is a project, it is resolved to the full SHA through the connection's
//!    token before anything is written (at most [`RESOLVE_WAIT`]; a failure is 503
//!    `webhook_unavailable`, which Bitbucket resends). Scans, their checks and the worker's
//!    checkout all need the full SHA. The abbreviated target tip is dropped (the merge base is
//!    computed when the scan runs);
//! 6. in one transaction: the delivery is logged (a delivery id already logged is a redelivery,
//!    answered 200 `duplicate`, nothing else done) and acted on: a pull request's head queues its
//!    diff scan (superseding the PR's older scans), an installation's events add, disable or
//!    enable projects, a triage reply is recorded for the control plane's triage loop, a ping is
//!    answered `pong`.
//!
//! Picket's own faults (the database unreachable, a pool timeout, a serialization failure) are
//! 503 `webhook_unavailable`, never 4xx or 500: the transaction rolled back, so the provider's
//! redelivery is taken as new. Nothing here calls the executor, and nothing calls the provider
//! but step 5 (one request, whose answer the connection's client keeps): a delivery is
//! answered within milliseconds, and the scheduler picks the scan up.

use crate::error::{ApiError, Problem};
use crate::extract::{ApiPath, PathParam};
use crate::{constraints, AppState};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use picket_core::{ConnectionId, Provider, ScanId};
use picket_db::connections::{self, WebhookTarget};
use picket_db::projects::{self, AddRefused, DisabledReason, NewProject};
use picket_db::triage::{self, NewRequest, QueueOutcome};
use picket_db::wake::{self, WakeUps};
use picket_db::webhooks::{
    self, DeliveryRow, NewDelivery, PullRequestHead, PullRequestOutcome, Scope,
};
use picket_db::{inventory, DbError};
use picket_vcs::event::{
    CommentKind, Delivery, InstallationAction, InstallationEvent, InstallationRepositoriesEvent,
    PullRequestEvent, ReplyEvent, RepoRef, WebhookEvent,
};
use picket_vcs::github::{self, AppCredentials};
use picket_vcs::provider::{RepoLocator, Repository};
use picket_vcs::webhook::{ParseError, SignatureError, WebhookSecrets};
use picket_vcs::{azure, bitbucket, gitlab};
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tracing::Instrument as _;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

/// Largest delivery accepted, in bytes: GitHub caps payloads at 25 MB (GitHub docs, "Webhook
/// events and payloads"); 25 MiB takes every one of them.
pub const WEBHOOK_BODY_LIMIT_BYTES: usize = 25 * 1024 * 1024;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(receive_github).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT_BYTES)))
        .routes(routes!(receive_gitlab).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT_BYTES)))
        .routes(routes!(receive_bitbucket).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT_BYTES)))
        .routes(routes!(receive_azure).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT_BYTES)))
}

/// How long a Bitbucket delivery waits for its abbreviated head to be resolved (Bitbucket gives
/// its receiver 10 s).
pub const RESOLVE_WAIT: Duration = Duration::from_secs(5);

/// The provider a webhook route receives for, and how it differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Github,
    Gitlab,
    Bitbucket,
    Azure,
}

impl Source {
    fn provider(self) -> Provider {
        match self {
            Source::Github => Provider::Github,
            Source::Gitlab => Provider::Gitlab,
            Source::Bitbucket => Provider::Bitbucket,
            Source::Azure => Provider::AzureDevops,
        }
    }

    /// The provider's name as people write it.
    fn label(self) -> &'static str {
        match self {
            Source::Github => "GitHub",
            Source::Gitlab => "GitLab",
            Source::Bitbucket => "Bitbucket",
            Source::Azure => "Azure DevOps",
        }
    }

    fn verify(
        self,
        headers: &HeaderMap,
        body: &[u8],
        secrets: &WebhookSecrets,
        now: OffsetDateTime,
    ) -> Result<(), SignatureError> {
        match self {
            Source::Github => github::webhook::verify(headers, body, secrets, now),
            Source::Gitlab => gitlab::webhook::verify(headers, body, secrets, now),
            Source::Bitbucket => bitbucket::webhook::verify(headers, body, secrets, now),
            // Basic authentication: the body carries no signature.
            Source::Azure => azure::webhook::verify(headers, secrets, now),
        }
    }

    fn parse(self, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, ParseError> {
        match self {
            Source::Github => github::webhook::parse(headers, body),
            Source::Gitlab => gitlab::webhook::parse(headers, body),
            Source::Bitbucket => bitbucket::webhook::parse(headers, body),
            Source::Azure => azure::webhook::parse(headers, body),
        }
    }

    /// The delivery id's and event name's headers, for logging a delivery that could not be
    /// read; `None` for a provider that sends them in the body only (Azure DevOps: `id`,
    /// `eventType`), whose unreadable deliveries are logged without them.
    fn id_and_event_headers(self) -> Option<(&'static str, &'static str)> {
        match self {
            Source::Github => Some((
                github::webhook::DELIVERY_HEADER,
                github::webhook::EVENT_HEADER,
            )),
            Source::Gitlab => Some((
                gitlab::webhook::IDEMPOTENCY_HEADER,
                gitlab::webhook::EVENT_HEADER,
            )),
            Source::Bitbucket => Some((
                bitbucket::webhook::REQUEST_UUID_HEADER,
                bitbucket::webhook::EVENT_HEADER,
            )),
            Source::Azure => None,
        }
    }

    /// Whether an authentic delivery that cannot be read is still answered 2xx: GitLab disables
    /// a hook after 4 consecutive failures, any 4xx included (GitLab 17.11+), and a payload it
    /// keeps sending would otherwise cut off every later delivery; Azure DevOps disables a
    /// subscription at once on a 410 and puts it on probation (dropping new events) after any
    /// other failure but 408, 502, 503 and 504. Bitbucket disables nothing and resends only
    /// after a 5xx: a 400 costs nothing there.
    fn accepts_unreadable(self) -> bool {
        matches!(self, Source::Gitlab | Source::Azure)
    }

    /// The webhook secrets of a connection's stored credentials, when it is this provider's and
    /// has them.
    fn secrets(self, target: &WebhookTarget) -> Option<WebhookSecrets> {
        if target.provider != self.provider() {
            return None;
        }
        let text = target.credentials.as_ref()?;
        // The error would quote nothing but its position; it is not logged either way.
        match self {
            Source::Github => serde_json::from_str::<AppCredentials>(text.expose_secret())
                .ok()
                .map(|c| c.webhook_secrets()),
            Source::Gitlab => {
                serde_json::from_str::<gitlab::GitLabCredentials>(text.expose_secret())
                    .ok()
                    .map(|c| c.webhook_secrets())
            }
            Source::Bitbucket => {
                serde_json::from_str::<bitbucket::BitbucketCredentials>(text.expose_secret())
                    .ok()
                    .map(|c| c.webhook_secrets())
            }
            // The password's hashes, which `azure::webhook::verify` compares against.
            Source::Azure => serde_json::from_str::<azure::AzureCredentials>(text.expose_secret())
                .ok()
                .map(|c| c.webhook_secrets()),
        }
    }
}

/// The connection named in a webhook route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookConnection(pub ConnectionId);

impl PathParam for WebhookConnection {
    const NAME: &'static str = "connection";
    const RULE: constraints::Text = constraints::UUID;
    const DESCRIPTION: &'static str = "The connection the delivery is for (its `webhook_url`)";
    fn parse(raw: &str) -> Result<Self, String> {
        raw.parse()
            .map(|id| WebhookConnection(ConnectionId(id)))
            .map_err(|_| format!("{raw:?} is not a UUID"))
    }
}

/// What Picket made of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAccepted {
    /// A stable code: `scan_queued`, `duplicate` (this delivery id was already received),
    /// `duplicate_head` (this head already has its scan), `stale_head` (the PR has a scan from a
    /// later update of it: this delivery came late or was redelivered), `project_unknown`,
    /// `project_disabled`,
    /// `diff_scans_disabled`, `projects_added`, `projects_disabled`, `projects_enabled`,
    /// `installation_recorded`, `triage_queued` (a triage reply recorded), `duplicate_reply`,
    /// `pong`, or why the delivery was ignored (`event_not_handled`, `action_not_handled`,
    /// `not_a_pull_request`, `not_a_command`, `not_a_thread_reply`, `reply_from_bot`, ...).
    pub outcome: &'static str,
    /// The scan queued (`scan_queued`), already there (`duplicate_head`), or newer (`stale_head`).
    pub scan_id: Option<Uuid>,
    /// Scans cancelled as `superseded` by this delivery's new head.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub superseded_scan_ids: Vec<Uuid>,
    /// Projects added, disabled or enabled by this delivery.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub project_ids: Vec<Uuid>,
}

impl DeliveryAccepted {
    fn outcome(outcome: &'static str) -> Self {
        DeliveryAccepted {
            outcome,
            scan_id: None,
            superseded_scan_ids: Vec::new(),
            project_ids: Vec::new(),
        }
    }

    /// 202 when the delivery changed something (a scan queued, projects changed, a triage reply
    /// recorded), 200 when there was nothing to do.
    fn status(&self) -> StatusCode {
        match self.outcome {
            "scan_queued" | "projects_added" | "projects_disabled" | "projects_enabled"
            | "triage_queued" => StatusCode::ACCEPTED,
            _ => StatusCode::OK,
        }
    }
}

/// Picket could not take the delivery now; the provider may deliver it again.
fn unavailable(cause: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %cause, "webhook delivery not taken");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "webhook_unavailable",
        "Picket cannot take this delivery right now; nothing of it was kept, deliver it again",
    )
}

fn body_refused(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("a delivery may be at most {WEBHOOK_BODY_LIMIT_BYTES} bytes"),
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            "the request body could not be read",
        )
    }
}

fn no_webhook(source: Source) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no {} connection with a webhook secret has this id",
            source.label()
        ),
    )
}

/// Receive a GitHub App webhook delivery. Authenticated by `X-Hub-Signature-256` (HMAC-SHA256 of
/// the raw body under the connection's webhook secret), not by a bearer token. Needs
/// `X-GitHub-Delivery` and `X-GitHub-Event`. At most 25 MiB.
#[utoipa::path(post, path = "/webhooks/github/{connection}", tag = "webhooks",
    security(()),
    params(
        ApiPath<WebhookConnection>,
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=` and the 64 hex digits of the body's HMAC-SHA256 under the webhook secret"),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery's id, the same on a redelivery"),
        ("X-GitHub-Event" = String, Header, description = "The event name"),
    ),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "The event's payload as GitHub sends it (or a form whose `payload` field holds it), at most 25 MiB"),
    responses(
        (status = 200, description = "Nothing to do: `duplicate`, `duplicate_head`, `stale_head`, `duplicate_reply`, `pong`, `project_unknown`, `project_disabled`, `not_a_command`, an ignored event, ...", body = DeliveryAccepted),
        (status = 202, description = "Acted on: `scan_queued`, `projects_added`, `projects_disabled`, `projects_enabled`, `triage_queued`", body = DeliveryAccepted),
        (status = 400, description = "`header_missing`, `header_invalid`, `body_not_json`, `payload_invalid`: the delivery could not be read (it is logged); `invalid_path`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`signature_missing`, `signature_sha1_only`, `signature_malformed`, `signature_mismatch`: nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no GitHub connection with a webhook secret has this id", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: over 25 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`webhook_unavailable`: Picket cannot take it now and kept nothing; deliver it again. `timeout`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn receive_github(
    State(state): State<AppState>,
    ApiPath(WebhookConnection(connection)): ApiPath<WebhookConnection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(state, Source::Github, connection, headers, body).await
}

/// Receive a GitLab webhook delivery (a project or group hook). Authenticated by the hook's
/// secret token (`X-Gitlab-Token`, compared in constant time) or, when the connection's secret is
/// a signing token (`whsec_...`), by the Standard Webhooks signature (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`). Needs `X-Gitlab-Event` and a delivery id
/// (`Idempotency-Key`, else `webhook-id`, else `X-Gitlab-Event-UUID`). An authentic delivery is
/// never answered 4xx (GitLab disables a hook after 4 failures): one that cannot be read is
/// logged and answered 200 with the reason. At most 25 MiB.
#[utoipa::path(post, path = "/webhooks/gitlab/{connection}", tag = "webhooks",
    security(()),
    params(
        ApiPath<WebhookConnection>,
        ("X-Gitlab-Token" = Option<String>, Header, description = "The hook's secret token (connections without a signing token)"),
        ("X-Gitlab-Event" = String, Header, description = "The event name (`Merge Request Hook`, `Note Hook`, ...)"),
        ("Idempotency-Key" = Option<String>, Header, description = "The delivery's id, the same on a retry (GitLab 17.4+)"),
        ("webhook-signature" = Option<String>, Header, description = "Standard Webhooks signature (`v1,<base64>`), with `webhook-id` and `webhook-timestamp`, for a signing token"),
    ),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "The event's payload as GitLab sends it, at most 25 MiB"),
    responses(
        (status = 200, description = "Nothing to do, or the delivery could not be read (`header_missing`, `header_invalid`, `body_not_json`, `payload_invalid`; logged): `duplicate`, `duplicate_head`, `stale_head`, `duplicate_reply`, `project_unknown`, `project_disabled`, `not_a_command`, `metadata_only`, an ignored event, ...", body = DeliveryAccepted),
        (status = 202, description = "Acted on: `scan_queued`, `triage_queued`", body = DeliveryAccepted),
        (status = 400, description = "`invalid_path`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`signature_missing`, `signature_malformed`, `signature_mismatch`: the token or signature is absent or wrong; nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no GitLab connection with a webhook secret has this id", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: over 25 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`webhook_unavailable`: Picket cannot take it now and kept nothing; deliver it again. `timeout`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn receive_gitlab(
    State(state): State<AppState>,
    ApiPath(WebhookConnection(connection)): ApiPath<WebhookConnection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(state, Source::Gitlab, connection, headers, body).await
}

/// Receive a Bitbucket Cloud webhook delivery (a repository hook). Authenticated by
/// `X-Hub-Signature` (`sha256=` and the hex HMAC-SHA256 of the raw body under the hook's secret,
/// the connection's webhook secret). Needs `X-Request-UUID` (the delivery's id) and
/// `X-Event-Key`. A pull request's abbreviated head is resolved to the full SHA through the
/// connection's token before the scan is queued (a repository that is no project is not asked
/// about); when Bitbucket cannot be asked, the answer is 503 and Bitbucket resends. At most
/// 25 MiB (Bitbucket sends at most 256 KB).
#[utoipa::path(post, path = "/webhooks/bitbucket/{connection}", tag = "webhooks",
    security(()),
    params(
        ApiPath<WebhookConnection>,
        ("X-Hub-Signature" = String, Header, description = "`sha256=` and the 64 hex digits of the body's HMAC-SHA256 under the hook's secret"),
        ("X-Request-UUID" = String, Header, description = "The delivery's id, the same on a resend"),
        ("X-Event-Key" = String, Header, description = "The event (`pullrequest:created`, `pullrequest:updated`, `pullrequest:comment_created`, ...)"),
    ),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "The event's payload as Bitbucket sends it, at most 25 MiB"),
    responses(
        (status = 200, description = "Nothing to do: `duplicate`, `duplicate_head` (a title edit: the head is the one already scanned), `stale_head`, `duplicate_reply`, `project_unknown`, `project_disabled`, `not_a_command`, an ignored event, ...", body = DeliveryAccepted),
        (status = 202, description = "Acted on: `scan_queued`, `triage_queued`", body = DeliveryAccepted),
        (status = 400, description = "`header_missing`, `header_invalid`, `body_not_json`, `payload_invalid`: the delivery could not be read (it is logged); `invalid_path`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`signature_missing`, `signature_sha1_only`, `signature_malformed`, `signature_mismatch`: nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no Bitbucket connection with a webhook secret has this id", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: over 25 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`webhook_unavailable`: Picket cannot take it now (its database, or Bitbucket when resolving the head) and kept nothing; Bitbucket resends it. `timeout`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn receive_bitbucket(
    State(state): State<AppState>,
    ApiPath(WebhookConnection(connection)): ApiPath<WebhookConnection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(state, Source::Bitbucket, connection, headers, body).await
}

/// Receive an Azure DevOps service-hook delivery (a Web Hooks subscription). Authenticated by
/// HTTP Basic authentication: user `picket` and the password Picket drew for the connection
/// (shown once when the connection was created, or its webhook secret rotated, or its webhooks
/// installed); only its hash is kept. The delivery's id and event are the body's `id` and
/// `eventType`. Every authentic delivery is answered 2xx (Azure disables a subscription on a 410
/// and drops new events while one is on probation after other failures): one that cannot be
/// read is logged and answered 200 with the reason. Only Picket's own faults are 503, which
/// Azure retries. At most 25 MiB (Azure sends at most 2 MB).
#[utoipa::path(post, path = "/webhooks/azure_devops/{connection}", tag = "webhooks",
    security(()),
    params(
        ApiPath<WebhookConnection>,
        ("Authorization" = String, Header, description = "`Basic` and the base64 of `picket:<password>`"),
    ),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "The event as Azure DevOps sends it (resource details: all; comment events: resource version 2.0), at most 25 MiB"),
    responses(
        (status = 200, description = "Nothing to do, or the delivery could not be read (`body_not_json`, `payload_invalid`; logged): `duplicate`, `duplicate_head` (a vote, a reviewer, a title: the head is the one already scanned), `stale_head`, `duplicate_reply`, `project_unknown`, `project_disabled`, `not_a_command`, `closed_pull_request`, `merge_not_computed`, `comment_deleted`, an ignored event, ...", body = DeliveryAccepted),
        (status = 202, description = "Acted on: `scan_queued`, `triage_queued`", body = DeliveryAccepted),
        (status = 400, description = "`invalid_path`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`signature_missing`, `signature_malformed`, `signature_mismatch`: no Basic authentication, or another user name or password; nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no Azure DevOps connection with a webhook password has this id", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: over 25 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`webhook_unavailable`: Picket cannot take it now and kept nothing; Azure retries it. `timeout`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn receive_azure(
    State(state): State<AppState>,
    ApiPath(WebhookConnection(connection)): ApiPath<WebhookConnection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(state, Source::Azure, connection, headers, body).await
}

/// Receives a delivery and answers it, counting the outcome by provider.
///
/// The work runs in a task of its own, so a delivery is carried out whole even when the
/// provider hangs up first (a timeout: GitHub gives 10 s): hyper drops a request's future when
/// its connection closes, which would roll the delivery's transaction back half-way, and a
/// provider that never redelivers (GitHub) would lose it.
async fn answer(
    state: AppState,
    source: Source,
    connection: ConnectionId,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let work = async move {
        let (outcome, response) = match receive(&state, source, connection, &headers, body).await {
            Ok(accepted) => {
                let status = accepted.status();
                (accepted.outcome, (status, Json(accepted)).into_response())
            }
            Err((outcome, e)) => (outcome, e.into_response()),
        };
        state
            .metrics()
            .webhook_delivery(source.provider().as_str(), outcome);
        response
    };
    match tokio::spawn(work.instrument(tracing::Span::current())).await {
        Ok(response) => response,
        Err(e) => {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            ApiError::internal(&e).into_response()
        }
    }
}

type Refusal = (&'static str, ApiError);

async fn receive(
    state: &AppState,
    source: Source,
    connection: ConnectionId,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<DeliveryAccepted, Refusal> {
    let body = body.map_err(|r| ("body_refused", body_refused(&r)))?;
    let now = OffsetDateTime::now_utc();
    let cache = state.webhook_targets();
    let mut opened = cache.get(state, source, connection, false).await?;
    let mut verified = source.verify(headers, &body, &opened.target.secrets, now);
    if verified == Err(SignatureError::Mismatch) && opened.cached {
        // The secret may have been changed since it was cached: read it again.
        opened = cache.get(state, source, connection, true).await?;
        verified = source.verify(headers, &body, &opened.target.secrets, now);
    }
    verified.map_err(|e: SignatureError| {
        tracing::warn!(connection_id = %connection, code = e.code(), "webhook signature refused");
        (
            e.code(),
            ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string()),
        )
    })?;
    let target = &opened.target.target;
    let mut delivery = match source.parse(headers, &body) {
        Ok(d) => d,
        Err(e) => return unreadable(state, source, target, headers, &body, e).await,
    };
    if source == Source::Bitbucket {
        resolve_head(state, target, &mut delivery).await?;
    }
    let span = tracing::Span::current();
    span.record("org_id", tracing::field::display(target.org_id));
    match act_in_transaction(state, target, &delivery, &body).await {
        Ok(accepted) => {
            tracing::info!(
                connection_id = %connection,
                delivery = %delivery.id,
                event = %delivery.event,
                outcome = accepted.outcome,
                "webhook delivery taken"
            );
            Ok(accepted)
        }
        // Deleted since it was kept (by another API process): as unknown.
        Err(DbError::Invalid { constraint }) if constraint == CONNECTION_FOREIGN_KEY => {
            cache.forget(connection);
            Err(("connection_unknown", no_webhook(source)))
        }
        Err(e) => Err(("unavailable", unavailable(&e))),
    }
}

/// The delivery log's foreign key to its connection.
const CONNECTION_FOREIGN_KEY: &str = "webhook_deliveries_connection_id_fkey";

/// How long an opened connection is used without reading it again, for deliveries signed with
/// its current secret. A delivery that does not verify under a cached secret reads the
/// connection again at once, so a changed secret is never refused; other changes (the
/// connection deleted, `follow_installations` switched) are seen within this time.
pub const TARGET_TTL: Duration = Duration::from_secs(5);

/// The connections deliveries were received for, opened (looked up and decrypted), for
/// [`TARGET_TTL`]: without it, every delivery read and decrypted its connection. Only
/// connections that exist and hold their provider's credentials are kept.
#[derive(Debug, Default)]
pub(crate) struct TargetCache {
    entries: std::sync::Mutex<HashMap<ConnectionId, (Instant, Arc<OpenedTarget>)>>,
}

/// A connection as the webhook route uses it.
#[derive(Debug)]
pub(crate) struct OpenedTarget {
    target: WebhookTarget,
    secrets: WebhookSecrets,
}

/// What [`TargetCache::get`] gives: the target, and whether it came from the cache.
struct Opened {
    target: Arc<OpenedTarget>,
    cached: bool,
}

impl TargetCache {
    /// The connection, from the cache unless `reload` or stale. 404 for an unknown connection,
    /// one of another provider or one without its provider's credentials, 503 when the database
    /// fails.
    async fn get(
        &self,
        state: &AppState,
        source: Source,
        connection: ConnectionId,
        reload: bool,
    ) -> Result<Opened, Refusal> {
        if !reload {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, target)) = entries.get(&connection) {
                if target.target.provider != source.provider() {
                    return Err(("connection_unknown", no_webhook(source)));
                }
                if at.elapsed() < TARGET_TTL {
                    return Ok(Opened {
                        target: Arc::clone(target),
                        cached: true,
                    });
                }
            }
        }
        let target = match connections::webhook_target(
            state.db().pool(),
            state.cipher(),
            connection,
        )
        .await
        {
            Ok(t) => t,
            Err(DbError::NotFound) => {
                self.forget(connection);
                return Err(("connection_unknown", no_webhook(source)));
            }
            Err(e) => return Err(("unavailable", unavailable(&e))),
        };
        let Some(secrets) = source.secrets(&target) else {
            self.forget(connection);
            return Err(("connection_unknown", no_webhook(source)));
        };
        let opened = Arc::new(OpenedTarget { target, secrets });
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Stale entries of other connections go when anything is written: the map stays as
        // small as the set of connections receiving deliveries.
        entries.retain(|_, (at, _)| at.elapsed() < TARGET_TTL);
        entries.insert(connection, (Instant::now(), Arc::clone(&opened)));
        Ok(Opened {
            target: opened,
            cached: false,
        })
    }

    /// Drops what is kept of `connection` (changed or deleted through this process's API; other
    /// API processes see the change within [`TARGET_TTL`]).
    pub(crate) fn forget(&self, connection: ConnectionId) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&connection);
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 100 && !v.chars().any(char::is_control))
}

/// Logs a verified delivery that could not be read and refuses it (400 with the parse code), or,
/// for a provider that [`Source::accepts_unreadable`], answers it 200 with the parse code.
async fn unreadable(
    state: &AppState,
    source: Source,
    target: &WebhookTarget,
    headers: &HeaderMap,
    body: &[u8],
    e: ParseError,
) -> Result<DeliveryAccepted, Refusal> {
    let (delivery_id, event) = match source.id_and_event_headers() {
        Some((id_header, event_header)) => {
            (header(headers, id_header), header(headers, event_header))
        }
        None => (None, None),
    };
    let new = NewDelivery {
        org_id: target.org_id,
        connection_id: target.id,
        delivery_id,
        event,
        action: None,
        body,
    };
    if let Err(db) = webhooks::record(state.db().pool(), &new, e.code).await {
        return Err(("unavailable", unavailable(&db)));
    }
    tracing::warn!(connection_id = %target.id, code = e.code, message = %e.message, "webhook delivery unreadable");
    if source.accepts_unreadable() {
        return Ok(DeliveryAccepted::outcome(e.code));
    }
    Err((
        e.code,
        ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message),
    ))
}

/// A Bitbucket pull request's head, which the delivery abbreviates, resolved to the full SHA
/// through the connection's token (kept by its client once known, so a resend or a title edit
/// asks nothing). Not asked for a repository that is no project of the connection (the
/// delivery is answered `project_unknown`). The target's tip, abbreviated too, is dropped: only
/// shown on the scan, and not what the scan compares against. 503 `webhook_unavailable` when
/// Bitbucket cannot answer within [`RESOLVE_WAIT`] or refuses; nothing was written, and
/// Bitbucket resends after a 5xx.
async fn resolve_head(
    state: &AppState,
    target: &WebhookTarget,
    delivery: &mut Delivery,
) -> Result<(), Refusal> {
    let WebhookEvent::PullRequest(pr) = &mut delivery.payload else {
        return Ok(());
    };
    if !picket_vcs::webhook::is_full_sha(&pr.base_sha) {
        pr.base_sha.clear();
    }
    if picket_vcs::webhook::is_full_sha(&pr.head_sha) {
        return Ok(());
    }
    let known = webhooks::known_repos(
        state.db().pool(),
        target.id,
        std::slice::from_ref(&pr.repository.id),
    )
    .await
    .map_err(|e| ("unavailable", unavailable(&e)))?;
    if known.is_empty() {
        return Ok(());
    }
    let Some(providers) = state.providers() else {
        return Err((
            "unavailable",
            unavailable(&"this API process cannot reach providers to resolve the head"),
        ));
    };
    let locator = RepoLocator {
        id: pr.repository.id.clone(),
        full_name: pr.repository.full_name.clone(),
        installation_id: None,
    };
    let asked = async {
        providers
            .source(target.id)
            .await?
            .full_commit_sha(&locator, &pr.head_sha)
            .await
    };
    let resolved = tokio::time::timeout(RESOLVE_WAIT, asked).await;
    match resolved {
        Ok(Ok(full)) if picket_vcs::webhook::is_full_sha(&full) => {
            pr.head_sha = full;
            Ok(())
        }
        Ok(Ok(_)) => Err((
            "unavailable",
            unavailable(&"Bitbucket answered a commit that is not a full SHA"),
        )),
        Ok(Err(e)) => {
            tracing::warn!(connection_id = %target.id, code = e.code.as_str(), "the pull request's head could not be resolved");
            Err(("unavailable", unavailable(&e)))
        }
        Err(_) => Err((
            "unavailable",
            unavailable(&"Bitbucket did not resolve the head in time"),
        )),
    }
}

/// Logs the delivery and acts on it, in one transaction.
async fn act_in_transaction(
    state: &AppState,
    target: &WebhookTarget,
    delivery: &Delivery,
    body: &[u8],
) -> Result<DeliveryAccepted, DbError> {
    let mut conn = state.db().pool().acquire().await?;
    let mut tx = if defers_wake_ups(&delivery.payload) {
        conn.begin_with(wake::BEGIN_AFTER_COMMIT).await?
    } else {
        conn.begin().await?
    };
    let new = NewDelivery {
        org_id: target.org_id,
        connection_id: target.id,
        delivery_id: Some(&delivery.id),
        event: Some(&delivery.event),
        action: delivery.action.as_deref(),
        body,
    };
    let Some(row) = webhooks::record(&mut *tx, &new, "received").await? else {
        // A redelivery (or the same delivery twice at once: the second waited for the first's
        // row): nothing more to do, and nothing written.
        tx.rollback().await?;
        return Ok(DeliveryAccepted::outcome("duplicate"));
    };
    let actor = format!("webhook:{}", delivery.id);
    let (accepted, wake) = act(&mut tx, target, delivery, row, &actor).await?;
    webhooks::set_outcome(
        &mut *tx,
        row,
        accepted.outcome,
        accepted.scan_id.map(ScanId),
    )
    .await?;
    tx.commit().await?;
    // Committed: a failure to wake only delays the loops, which also poll.
    if let Err(e) = wake::send(&mut *conn, &wake).await {
        tracing::warn!(error = %e, "webhook delivery: wake-ups not sent; the loops' polling takes over");
    }
    Ok(accepted)
}

/// Whether a delivery's transaction leaves its wake-ups to after its commit (picket-db `wake`):
/// a pull request's, the route's busiest path, where a NOTIFY inside the transaction would make
/// concurrent deliveries commit one at a time. [`act`] returns what such a transaction owes.
fn defers_wake_ups(event: &WebhookEvent) -> bool {
    matches!(event, WebhookEvent::PullRequest(_))
}

/// Acts on a logged delivery in its transaction; the wake-ups it owes once committed when
/// [`defers_wake_ups`], else none (its triggers raised them).
async fn act(
    conn: &mut PgConnection,
    target: &WebhookTarget,
    delivery: &Delivery,
    row: DeliveryRow,
    actor: &str,
) -> Result<(DeliveryAccepted, WakeUps), DbError> {
    let accepted = match &delivery.payload {
        WebhookEvent::PullRequest(pr) => return pull_request(conn, target, pr, actor).await,
        WebhookEvent::Installation(ev) => installation(conn, target, ev, actor).await?,
        WebhookEvent::InstallationRepositories(ev) => {
            installation_repositories(conn, target, ev, actor).await?
        }
        WebhookEvent::Reply(reply) => on_reply(conn, target, reply, row).await?,
        WebhookEvent::Ping => DeliveryAccepted::outcome("pong"),
        WebhookEvent::Ignored(why) => DeliveryAccepted::outcome(why.reason),
    };
    Ok((accepted, WakeUps::default()))
}

/// A pull request's new head: its scan queued, the PR's older scans superseded, in a
/// transaction that leaves its wake-ups to after the commit ([`defers_wake_ups`]).
async fn pull_request(
    conn: &mut PgConnection,
    target: &WebhookTarget,
    pr: &PullRequestEvent,
    actor: &str,
) -> Result<(DeliveryAccepted, WakeUps), DbError> {
    let Ok(number) = i32::try_from(pr.number) else {
        return Ok((
            DeliveryAccepted::outcome("project_unknown"),
            WakeUps::default(),
        ));
    };
    let git_ref = picket_vcs::provider::pull_request_ref(target.provider, pr.number, &pr.head_ref);
    let head = PullRequestHead {
        connection_id: target.id,
        repo_id: &pr.repository.id,
        installation_id: pr.installation_id.as_deref(),
        number,
        git_ref: &git_ref,
        head_sha: &pr.head_sha,
        base_ref: &pr.base_ref,
        base_sha: Some(pr.base_sha.as_str()).filter(|s| !s.is_empty()),
        draft: pr.draft,
        updated_at: pr.updated_at,
    };
    let outcome = webhooks::queue_pull_request(conn, &head, actor).await?;
    let wake = outcome.wake_ups();
    let accepted = match outcome {
        PullRequestOutcome::ProjectUnknown => DeliveryAccepted::outcome("project_unknown"),
        PullRequestOutcome::ProjectDisabled(_) => DeliveryAccepted::outcome("project_disabled"),
        PullRequestOutcome::DiffScansDisabled(_) => {
            DeliveryAccepted::outcome("diff_scans_disabled")
        }
        PullRequestOutcome::DuplicateHead { scan, .. } => DeliveryAccepted {
            scan_id: Some(scan.0),
            ..DeliveryAccepted::outcome("duplicate_head")
        },
        PullRequestOutcome::StaleHead { newer, .. } => DeliveryAccepted {
            scan_id: Some(newer.0),
            ..DeliveryAccepted::outcome("stale_head")
        },
        PullRequestOutcome::Queued {
            scan, superseded, ..
        } => DeliveryAccepted {
            scan_id: Some(scan.0),
            superseded_scan_ids: superseded.into_iter().map(|s| s.0).collect(),
            ..DeliveryAccepted::outcome("scan_queued")
        },
    };
    Ok((accepted, wake))
}

/// A comment on a pull request: a triage command replying in one of Picket's review threads is
/// recorded for the control plane's triage loop (`triage_queued`), which checks it with the
/// provider (the comment replied to is Picket's finding comment; the author may write to the
/// repository), triages the finding and answers in the thread. Nothing here calls the provider.
/// Not acted on: a bot's comment (Picket's own answers come back as events too:
/// `reply_from_bot`), a comment that is no command (`not_a_command`, picket-core
/// `triage::parse_command`), a command outside a review thread (the PR's conversation, or a
/// thread's first comment: `not_a_thread_reply`), a repository that is no enabled project
/// (`project_unknown`, `project_disabled`), and a reply already recorded (`duplicate_reply`).
async fn on_reply(
    conn: &mut PgConnection,
    target: &WebhookTarget,
    reply: &ReplyEvent,
    row: DeliveryRow,
) -> Result<DeliveryAccepted, DbError> {
    if reply.author_is_bot {
        return Ok(DeliveryAccepted::outcome("reply_from_bot"));
    }
    let Some(command) = picket_core::triage::parse_command(&reply.body) else {
        return Ok(DeliveryAccepted::outcome("not_a_command"));
    };
    let (CommentKind::ReviewThread, Some(parent)) = (reply.kind, reply.in_reply_to.as_deref())
    else {
        return Ok(DeliveryAccepted::outcome("not_a_thread_reply"));
    };
    let Ok(number) = i32::try_from(reply.number) else {
        return Ok(DeliveryAccepted::outcome("project_unknown"));
    };
    let new = NewRequest {
        connection_id: target.id,
        repo_id: &reply.repository.id,
        repo_full_name: &reply.repository.full_name,
        installation_id: reply.installation_id.as_deref(),
        pr_number: number,
        comment_id: &reply.comment_id,
        parent_comment_id: parent,
        author_login: &reply.author,
        author_id: &reply.author_id,
        verb: command.verb,
        reason: command.reason.as_deref(),
        delivery_row: Some(row),
    };
    Ok(DeliveryAccepted::outcome(
        match triage::queue(conn, &new).await? {
            QueueOutcome::Queued(_) => "triage_queued",
            QueueOutcome::Duplicate => "duplicate_reply",
            QueueOutcome::ProjectUnknown => "project_unknown",
            QueueOutcome::ProjectDisabled => "project_disabled",
        },
    ))
}

fn ids(repos: &[RepoRef]) -> Vec<String> {
    repos.iter().map(|r| r.id.clone()).collect()
}

fn project_ids(ids: Vec<picket_core::ProjectId>) -> Vec<Uuid> {
    ids.into_iter().map(|p| p.0).collect()
}

async fn installation(
    conn: &mut PgConnection,
    target: &WebhookTarget,
    ev: &InstallationEvent,
    actor: &str,
) -> Result<DeliveryAccepted, DbError> {
    let repo_ids = ids(&ev.repositories);
    let scope = Scope {
        connection: target.id,
        installation: Some(&ev.installation_id),
        repo_ids: &repo_ids,
    };
    Ok(match ev.action {
        InstallationAction::Created => {
            gained(conn, target, &ev.installation_id, &ev.repositories).await?
        }
        InstallationAction::Deleted => DeliveryAccepted {
            project_ids: project_ids(
                webhooks::disable(conn, scope, DisabledReason::InstallationRemoved, actor).await?,
            ),
            ..DeliveryAccepted::outcome("projects_disabled")
        },
        InstallationAction::Suspended => DeliveryAccepted {
            project_ids: project_ids(
                webhooks::disable(conn, scope, DisabledReason::InstallationSuspended, actor)
                    .await?,
            ),
            ..DeliveryAccepted::outcome("projects_disabled")
        },
        InstallationAction::Unsuspended => DeliveryAccepted {
            project_ids: project_ids(
                webhooks::enable(&mut *conn, scope, DisabledReason::InstallationSuspended).await?,
            ),
            ..DeliveryAccepted::outcome("projects_enabled")
        },
        InstallationAction::NewPermissionsAccepted => {
            DeliveryAccepted::outcome("installation_recorded")
        }
    })
}

async fn installation_repositories(
    conn: &mut PgConnection,
    target: &WebhookTarget,
    ev: &InstallationRepositoriesEvent,
    actor: &str,
) -> Result<DeliveryAccepted, DbError> {
    let mut accepted = DeliveryAccepted::outcome("installation_recorded");
    if !ev.added.is_empty() {
        accepted = gained(conn, target, &ev.installation_id, &ev.added).await?;
    }
    if !ev.removed.is_empty() {
        let removed = ids(&ev.removed);
        inventory::forget(&mut *conn, target.id, &removed).await?;
        let scope = Scope {
            connection: target.id,
            installation: None,
            repo_ids: &removed,
        };
        let disabled =
            webhooks::disable(conn, scope, DisabledReason::RepositoryRemoved, actor).await?;
        accepted.project_ids.extend(project_ids(disabled));
        if accepted.outcome == "installation_recorded" {
            accepted.outcome = "projects_disabled";
        }
    }
    Ok(accepted)
}

/// Repositories an installation can now see: they join the connection's inventory (the Projects
/// page's "Not scanning" tab); those already projects are attached to the installation and
/// enabled again; the others become projects with their initial scans when the connection
/// follows installations.
async fn gained(
    conn: &mut PgConnection,
    target: &WebhookTarget,
    installation: &str,
    repos: &[RepoRef],
) -> Result<DeliveryAccepted, DbError> {
    let repo_ids = ids(repos);
    let listed: Vec<Repository> = repos
        .iter()
        .map(|r| Repository {
            id: r.id.clone(),
            full_name: r.full_name.clone(),
            clone_url: r
                .clone_url
                .clone()
                .unwrap_or_else(|| clone_url(&target.base_url, &r.full_name)),
            // Installation payloads do not name it: the remote's HEAD is the default branch.
            default_branch: r
                .default_branch
                .clone()
                .unwrap_or_else(|| "HEAD".to_owned()),
            private: r.private.unwrap_or(true),
            archived: false,
            installation_id: Some(installation.to_owned()),
        })
        .collect();
    inventory::record_seen(&mut *conn, target.org_id, target.id, &listed).await?;
    let mut added = Vec::new();
    if target.follow_installations && !repos.is_empty() {
        let known = webhooks::known_repos(&mut *conn, target.id, &repo_ids).await?;
        let mut seen = std::collections::HashSet::new();
        let new: Vec<NewProject> = listed
            .iter()
            .filter(|r| !known.iter().any(|k| k.provider_repo_id == r.id))
            .filter(|r| seen.insert(r.id.clone()))
            .map(|r| NewProject {
                connection_id: target.id,
                provider_repo_id: r.id.clone(),
                full_name: r.full_name.clone(),
                clone_url: r.clone_url.clone(),
                default_branch: r.default_branch.clone(),
            })
            .collect();
        match projects::add_many(
            &mut *conn,
            target.org_id,
            &new,
            None,
            OffsetDateTime::now_utc(),
        )
        .await?
        {
            Ok(projects) => added = projects.into_iter().map(|a| a.project.id.0).collect(),
            // Added meanwhile by another request: this transaction rolls back and the delivery
            // is refused with 503, so its redelivery finds them.
            Err(AddRefused::AlreadyAdded(_)) | Err(AddRefused::UnknownConnections(_)) => {
                return Err(DbError::Conflict {
                    constraint: "projects_connection_id_provider_repo_id_key".into(),
                })
            }
        }
    }
    let enabled =
        webhooks::attach_installation(&mut *conn, target.id, installation, &repo_ids).await?;
    let outcome = if !added.is_empty() {
        "projects_added"
    } else if !enabled.is_empty() {
        "projects_enabled"
    } else {
        "installation_recorded"
    };
    added.extend(project_ids(enabled));
    Ok(DeliveryAccepted {
        project_ids: added,
        ..DeliveryAccepted::outcome(outcome)
    })
}

/// The HTTPS clone URL of `owner/name` on the connection's GitHub: github.com for the public
/// API (`https://api.github.com` or empty), else the Enterprise Server host (its API is
/// `https://<host>/api/v3`).
fn clone_url(base_url: &str, full_name: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let web = if base.is_empty() || base == github::DEFAULT_API_URL {
        "https://github.com"
    } else {
        base.strip_suffix("/api/v3").unwrap_or(base)
    };
    format!("{web}/{full_name}.git")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_urls_follow_the_connection() {
        assert_eq!(clone_url("", "acme/api"), "https://github.com/acme/api.git");
        assert_eq!(
            clone_url("https://api.github.com/", "acme/api"),
            "https://github.com/acme/api.git"
        );
        assert_eq!(
            clone_url("https://ghe.example.com/api/v3", "acme/api"),
            "https://ghe.example.com/acme/api.git"
        );
    }
}
