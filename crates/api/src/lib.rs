//! Picket's HTTP API.
//!
//! A request passes, outside in: a request id is assigned (`x-request-id`, echoed back), a
//! tracing span opens with method, path and request id (never headers: they carry the bearer
//! token), panics become a 500 problem, the route's metrics are recorded, and the handler runs.
//! Handlers authenticate with the [`extract::Caller`] / [`extract::Admin`] extractors, parse input
//! with extractors whose every rejection is an RFC 9457 problem ([`error::ApiError`]), call
//! picket-db with the caller's org, and answer JSON.
//!
//! Routes: `/api/v1/...` (documented in the OpenAPI 3.1 document served at
//! `/api/v1/openapi.json` and returned by [`openapi`]), `/webhooks/github/{connection}` (provider
//! deliveries, authenticated by their signature; documented there too), `/healthz` (the process
//! is up), `/readyz` (the database answers) and `/metrics` (Prometheus).

pub mod constraints;
pub mod error;
pub mod extract;
pub mod local_repos;
mod metrics;
mod pagination;
mod routes;
pub mod sarif;
mod schema;

use crate::error::ApiError;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use picket_db::crypto::CredentialCipher;
use picket_db::Db;
use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use routes::{MAX_BULK_SCAN, RESULTS_BODY_LIMIT_BYTES, WEBHOOK_BODY_LIMIT_BYTES};

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes; larger bodies get 413 `body_too_large`.
    /// Default 2 MiB: room for a bulk scan of 10,000 ids (~400 KB) or 1,000 new projects.
    /// The worker's results upload has its own limit, [`RESULTS_BODY_LIMIT_BYTES`].
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is abandoned (its transaction rolled back) with a
    /// 503 `timeout` problem, so a stuck database cannot pile up requests. Default 30 s.
    pub request_timeout: Duration,
    /// The server's public base URL (`PICKET_PUBLIC_URL`, e.g. `https://picket.example.com`),
    /// under which providers reach the webhook routes; connections show their webhook URL under
    /// it. `None`: the URL is shown as a path alone.
    pub public_url: Option<String>,
    /// How long a webhook secret stays valid after it is rotated, so deliveries signed before the
    /// provider learned the new one still pass. Default 24 h.
    pub webhook_secret_overlap: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_limit_bytes: 2 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            public_url: None,
            webhook_secret_overlap: Duration::from_secs(24 * 3600),
        }
    }
}

/// The webhook settings handlers read, copied from [`ApiConfig`] by [`router`].
#[derive(Debug, Clone, Default)]
pub(crate) struct WebhookSettings {
    /// Without a trailing slash.
    pub(crate) public_url: Option<String>,
    pub(crate) secret_overlap: Duration,
}

/// What every handler shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    db: Db,
    cipher: Arc<CredentialCipher>,
    metrics: Arc<metrics::Metrics>,
    rule_engine: Option<Arc<RuleEngine>>,
    local_repos: Arc<local_repos::LocalRepoDirs>,
    webhooks: Arc<WebhookSettings>,
    webhook_targets: Arc<routes::webhooks::TargetCache>,
    providers: Option<Arc<picket_vcs::Registry>>,
}

/// The Semgrep engine the API checks uploaded rule packs with, and a bound on how many checks
/// run at once (each is a Semgrep process).
#[derive(Debug)]
pub(crate) struct RuleEngine {
    pub(crate) config: picket_engine::semgrep::SemgrepConfig,
    pub(crate) permits: tokio::sync::Semaphore,
}

/// Most rule-pack checks one API process runs at once.
pub const RULE_CHECKS_AT_ONCE: usize = 2;

impl AppState {
    /// `cipher` may be given owned or already shared (`Arc`).
    pub fn new(db: Db, cipher: impl Into<Arc<CredentialCipher>>) -> Self {
        AppState {
            db,
            cipher: cipher.into(),
            metrics: Arc::new(metrics::Metrics::default()),
            rule_engine: None,
            local_repos: Arc::default(),
            webhooks: Arc::default(),
            webhook_targets: Arc::default(),
            providers: None,
        }
    }

    /// Providers' clients by connection: the worker's clone credential for a GitHub project is
    /// an installation token minted per scan through them. Without, such scans get none.
    pub fn with_providers(mut self, providers: Arc<picket_vcs::Registry>) -> Self {
        self.providers = Some(providers);
        self
    }

    pub(crate) fn providers(&self) -> Option<&picket_vcs::Registry> {
        self.providers.as_deref()
    }

    /// The providers' registry, or 503 `providers_unavailable` when this API has none.
    pub(crate) fn require_providers(&self) -> Result<&picket_vcs::Registry, error::ApiError> {
        self.providers().ok_or_else(|| {
            error::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "providers_unavailable",
                "this API cannot reach providers (no registry configured)",
            )
        })
    }

    pub(crate) fn webhooks(&self) -> &WebhookSettings {
        &self.webhooks
    }

    pub(crate) fn webhook_targets(&self) -> &routes::webhooks::TargetCache {
        &self.webhook_targets
    }

    /// Accept `file://` projects in these directories (the ones the scheduler lends to its
    /// sandboxes); without, every `file://` project is refused.
    pub fn with_local_repo_dirs(mut self, dirs: local_repos::LocalRepoDirs) -> Self {
        self.local_repos = Arc::new(dirs);
        self
    }

    pub(crate) fn local_repos(&self) -> &local_repos::LocalRepoDirs {
        &self.local_repos
    }

    /// Accept rule-pack uploads, checking each with this engine (the worker's binary and
    /// flags). Without it, uploads answer 503 `rule_validation_unavailable`.
    pub fn with_rule_engine(mut self, config: picket_engine::semgrep::SemgrepConfig) -> Self {
        self.rule_engine = Some(Arc::new(RuleEngine {
            config,
            permits: tokio::sync::Semaphore::new(RULE_CHECKS_AT_ONCE),
        }));
        self
    }

    pub(crate) fn rule_engine(&self) -> Option<&RuleEngine> {
        self.rule_engine.as_deref()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn cipher(&self) -> &CredentialCipher {
        &self.cipher
    }

    pub(crate) fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }
}

/// The OpenAPI 3.1 document of `/api/v1`, generated from the route definitions.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::api().into_openapi()
}

/// The whole HTTP surface, ready to serve.
pub fn router(mut state: AppState, cfg: &ApiConfig) -> Router {
    state.webhooks = Arc::new(WebhookSettings {
        public_url: cfg
            .public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_owned()),
        secret_overlap: cfg.webhook_secret_overlap,
    });
    let (api, doc) = routes::api().split_for_parts();
    let doc = Arc::new(doc);
    let ops = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::scrape))
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = Arc::clone(&doc);
                async move { Json(doc) }
            }),
        );
    api.merge(ops)
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Inside the metrics layer, so a panic or a timeout is counted as the problem it becomes.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn_with_state(
            cfg.request_timeout,
            enforce_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(cfg.body_limit_bytes))
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(make_span)
                        .on_request(DefaultOnRequest::new().level(Level::DEBUG))
                        .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

/// The request's span: method, path and request id; org and token ids (or, for a worker, org and
/// scan ids) are filled in once the token is checked. Headers and query strings are left out on purpose.
fn make_span<B>(req: &Request<B>) -> tracing::Span {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id,
        org_id = tracing::field::Empty,
        token_id = tracing::field::Empty,
        scan_id = tracing::field::Empty,
    )
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    ApiError::internal(&format_args!("handler panicked: {message}")).into_response()
}

/// Abandons a request that runs past the configured timeout. Dropping the handler's future drops
/// any open transaction, which rolls it back.
async fn enforce_timeout(
    State(limit): State<Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout = ?limit, "request timed out");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the request took too long and was abandoned; its uncommitted changes were rolled back",
            )
            .into_response()
        }
    }
}

async fn route_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not support this method",
    )
}

/// Liveness: the process answers.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the database answers.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unreachable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the database is unreachable",
            )
            .into_response()
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_generic_problems() {
        let resp = panic_response(Box::new("secret detail in a panic"));
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()["content-type"], error::PROBLEM_JSON);
    }

    #[test]
    fn the_document_is_openapi_3_1_with_bearer_auth() {
        let doc = serde_json::to_value(openapi()).expect("serializes");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["security"][0]["bearer"], serde_json::json!([]));
        assert!(doc["paths"]["/api/v1/scans"]["post"].is_object());
    }
}
