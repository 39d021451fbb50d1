//! Picket's web UI, served by the API server at `/`.
//!
//! Pages are HTML rendered on the server (askama templates, `templates/`); htmx (one pinned,
//! vendored file, served with its integrity hash) enhances them, and every form works without
//! JavaScript. Live pages take server-sent events (one stream per page), which only hasten what a
//! reload shows: the database is the source of truth.
//!
//! **Who may do what.** A browser signs in with an API token (or a one-time link `picket run`
//! prints) and gets a session acting as that token ([`session`]). Pages read through picket-db
//! scoped to the session's org; every action is sent to the REST API router in process
//! ([`api::Api`]) as the session's token, so it meets the same validation and authorization as a
//! bearer request: a member cannot do in the UI what the API refuses a member.
//!
//! **CSRF.** Every state-changing request must come from this origin (`Sec-Fetch-Site:
//! same-origin`, or an `Origin` equal to the server's) and, once signed in, carry the session's
//! CSRF token (form field `_csrf` or header `X-CSRF-Token`); otherwise it is refused with 403
//! before any handler runs ([`session::guard`]).

pub mod api;
mod assets;
mod feed;
mod format;
mod pages;
pub mod session;
mod supply_chain;

use axum::routing::{get, post};
use axum::Router;
use picket_db::Db;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the web UI.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// How long a session lasts after sign-in. Default 12 h.
    pub session_lifetime: Duration,
    /// The server's public origin (`scheme://host[:port]`, from `PICKET_PUBLIC_URL`): state-changing
    /// requests must come from it. `None`: from the origin the request's `Host` names.
    pub public_origin: Option<String>,
    /// Picket's own rule pack (the worker's rules directory), listed on the Policies page. `None`:
    /// the page lists the org's packs only.
    pub rules_dir: Option<std::path::PathBuf>,
    /// How often a live page re-reads its rows when no notification came (a notification lost to
    /// a pull request's after-commit transaction, or to a dropped listener). Default 5 s.
    pub live_fallback: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            session_lifetime: Duration::from_secs(12 * 3600),
            public_origin: None,
            rules_dir: None,
            live_fallback: Duration::from_secs(5),
        }
    }
}

/// What every page handler shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WebState {
    db: Db,
    api: api::Api,
    cfg: Arc<WebConfig>,
    feed: feed::Feed,
    /// Picket's own rule pack as read from `cfg.rules_dir`, once (it does not change while the
    /// server runs).
    picket_rules: Arc<tokio::sync::OnceCell<Vec<picket_engine::rulepack::RuleDoc>>>,
}

impl WebState {
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }
}

/// The UI's routes, with `api` (the REST router, [`picket_api::router`]) merged in and also
/// called in process for every action. Starts the live-update listener on `db`.
pub fn router(api: Router, db: Db, cfg: WebConfig) -> Router {
    let state = WebState {
        feed: feed::Feed::start(db.clone(), cfg.live_fallback),
        db,
        api: api::Api::new(api.clone()),
        cfg: Arc::new(cfg),
        picket_rules: Arc::default(),
    };
    let pages = Router::new()
        .route("/", get(pages::home))
        .route(
            "/sign-in",
            get(pages::sign_in::form).post(pages::sign_in::with_token),
        )
        .route(
            "/sign-in/link",
            get(pages::sign_in::link_form).post(pages::sign_in::with_link),
        )
        .route("/sign-out", post(pages::sign_in::sign_out))
        .route(
            "/projects",
            get(pages::projects::page).post(pages::projects::add),
        )
        .route("/projects/scan", post(pages::projects::scan))
        .route("/projects/repositories/add", post(pages::not_added::add))
        .route(
            "/projects/repositories/refresh",
            post(pages::not_added::refresh),
        )
        .route("/projects/{id}", get(pages::project::page))
        .route("/projects/{id}/settings", post(pages::project::settings))
        .route(
            "/projects/{id}/remove",
            get(pages::project::confirm_remove).post(pages::project::remove),
        )
        .route(
            "/connections",
            get(pages::connections::list).post(pages::connections::add),
        )
        .route("/connections/{id}", get(pages::connections::page))
        .route(
            "/connections/{id}/repositories",
            post(pages::connections::add_repositories),
        )
        .route("/connections/{id}/delete", post(pages::connections::delete))
        .route("/findings", get(pages::findings::page))
        .route("/findings.csv", get(pages::findings::csv))
        .route("/findings/triage", post(pages::findings::triage))
        .route("/findings/{id}", get(pages::findings::finding))
        .route("/findings/{id}/triage", post(pages::findings::triage_one))
        .route("/policies", get(pages::policies::page))
        .route("/policies/modes", post(pages::policies::set_modes))
        .route(
            "/policies/supply-chain",
            post(pages::policies::set_supply_chain),
        )
        .route("/policies/advisories", post(pages::policies::set_advisory))
        .route(
            "/policies/packs",
            get(pages::policies::packs).post(pages::policies::upload_pack),
        )
        .route("/policies/packs/{name}", get(pages::policies::pack))
        .route(
            "/policies/packs/{name}/delete",
            post(pages::policies::delete_pack),
        )
        .route("/settings", get(pages::settings::page))
        .route("/settings/org", post(pages::settings::save_org))
        .route("/settings/tokens", post(pages::settings::create_token))
        .route(
            "/settings/tokens/{id}/revoke",
            post(pages::settings::revoke_token),
        )
        .route("/scans/{id}", get(pages::scan::page))
        .route("/scans/{id}/logs", get(pages::scan::logs))
        .route("/scans/{id}/cancel", post(pages::scan::cancel))
        .route("/scans/{id}/retry", post(pages::scan::retry))
        .route("/events/projects", get(pages::projects::events))
        .route("/events/scans/{id}", get(pages::scan::events))
        .route("/events/scans/{id}/logs", get(pages::scan::log_events))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::guard,
        ))
        .with_state(state);
    assets::router().merge(pages).merge(api)
}
