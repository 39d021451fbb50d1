//! GitHub's App manifest flow: a GitHub connection in one click.
//!
//! 1. `POST /api/v1/connections/github/manifest` (admin) draws the connection's id and a state
//!    (256 random bits; only its SHA-256 is stored, with the org, for one hour), and answers the
//!    manifest (exactly Picket's permissions and events, the webhook URL
//!    `<PICKET_PUBLIC_URL>/webhooks/github/<connection id>`, the redirect URL below) and the URL
//!    to post it to: the organization's new-App page, or the admin's own.
//! 2. The admin's browser posts the manifest there (form field `manifest`); GitHub shows the App,
//!    the admin creates it, and GitHub sends the browser to
//!    `GET <PICKET_PUBLIC_URL>/api/v1/connections/github/manifest/callback?code=…&state=…`.
//! 3. The callback takes no bearer token (a browser redirect carries none): the state is what
//!    authenticates it. In one transaction it locks the state's row (a second callback with the
//!    same state waits, then finds it used), converts the code (`POST
//!    /app-manifests/{code}/conversions`, unauthenticated, on the API root the admin named),
//!    stores the connection with the App's id, private key and webhook secret sealed like
//!    `POST /api/v1/connections` does, and marks the state used. It answers 201 with the
//!    connection (never its credentials) and where to install the App next, as JSON: Picket has
//!    no web UI to send the browser to.
//!
//! A state that is unknown, used or expired is refused (404, 409, 410) and nothing is written.
//! When GitHub refuses the code, the state is used up (the pair cannot succeed any more); when
//! GitHub cannot be reached or is rate limiting, nothing is written and the same callback URL may
//! be loaded again.

use crate::constraints::{self, Text};
use crate::error::{ApiError, Problem};
use crate::extract::{Admin, ApiJson, ApiQuery};
use crate::routes::connections::{sealable, Connection};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use picket_core::{ConnectionId, Provider};
use picket_db::connections::{self, NewConnection};
use picket_db::manifests::{self, NewManifestState, StateLookup};
use picket_vcs::github::manifest::{self as gh_manifest, ManifestRequest};
use picket_vcs::github::DEFAULT_API_URL;
use picket_vcs::ErrorCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The callback's path, under the public URL: the manifest's `redirect_url`.
pub const CALLBACK_PATH: &str = "/api/v1/connections/github/manifest/callback";

/// A GitHub App's name: GitHub takes at most 34 characters.
pub const APP_NAME: Text = Text::plain(1, 34, "1-34 characters, no control characters");
/// A GitHub organization's login: letters, digits and hyphens, not starting with a hyphen, at
/// most 39 characters.
pub const GITHUB_LOGIN: Text = Text {
    min: 1,
    max: 39,
    pattern: "^[A-Za-z0-9][A-Za-z0-9-]*$",
    forbidden: &[],
    reserved: &[],
    expected: "a GitHub organization login: 1-39 letters, digits and hyphens, not starting with \
               a hyphen",
};
/// The one-time code GitHub adds to the redirect.
pub const MANIFEST_CODE: Text = Text {
    min: 1,
    max: 200,
    pattern: "^[A-Za-z0-9._~-]*$",
    forbidden: &[],
    reserved: &[],
    expected: "the code GitHub added to the redirect (1-200 characters of A-Z a-z 0-9 . _ ~ -)",
};
/// A manifest's state as [`manifests::create`] draws it.
pub const MANIFEST_STATE: Text = Text {
    min: 64,
    max: 64,
    pattern: "^[0-9a-f]*$",
    forbidden: &[],
    reserved: &[],
    expected: "the state of a manifest Picket made (64 lower-case hex digits)",
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_manifest))
        .routes(routes!(manifest_callback))
}

fn app_name() -> utoipa::openapi::schema::Object {
    APP_NAME.nullable_schema()
}
fn github_login() -> utoipa::openapi::schema::Object {
    GITHUB_LOGIN.nullable_schema()
}

/// What to register.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartManifest {
    /// The App's name on GitHub (unique across GitHub; the admin may change it on GitHub's page)
    /// and the connection's: 1-34 characters. Absent or null: `picket-` and 8 random hex digits.
    #[serde(default)]
    #[schema(schema_with = app_name)]
    pub name: Option<String>,
    /// The GitHub organization to register the App under (its login); absent or null: the
    /// admin's own account.
    #[serde(default)]
    #[schema(schema_with = github_login)]
    pub organization: Option<String>,
    /// GitHub Enterprise Server's API root, `https://<host>/api/v3`; absent, null or empty:
    /// github.com.
    #[serde(default)]
    #[schema(schema_with = constraints::base_url_opt)]
    pub base_url: Option<String>,
}

/// A manifest to post to GitHub.
#[derive(Serialize, ToSchema)]
pub struct ManifestStarted {
    /// Where the admin's browser posts the manifest (an HTML form, field `manifest`, the JSON as
    /// text): `https://github.com/organizations/<org>/settings/apps/new?state=…`, or
    /// `…/settings/apps/new?state=…` for a personal account (on the Enterprise Server's host for
    /// one).
    pub post_url: String,
    /// The manifest: the App's name, Picket's URL, the webhook URL of the connection to be, the
    /// callback as `redirect_url`, private, with exactly the permissions and events Picket needs.
    #[schema(value_type = Object)]
    pub manifest: serde_json::Value,
    /// Single use, valid until `expires_at`; also in `post_url` (GitHub passes it back).
    pub state: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The connection the callback will create (named in the manifest's webhook URL).
    pub connection_id: Uuid,
}

impl std::fmt::Debug for ManifestStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestStarted")
            .field("connection_id", &self.connection_id)
            .finish_non_exhaustive()
    }
}

/// The API root a stored base URL stands for.
fn api_url_of(base_url: &str) -> &str {
    if base_url.is_empty() {
        DEFAULT_API_URL
    } else {
        base_url
    }
}

/// Start GitHub's App manifest flow (admin): the manifest, where to post it, and its state.
/// Needs the server's public URL (PICKET_PUBLIC_URL), under which GitHub delivers webhooks and
/// sends the browser back.
#[utoipa::path(post, path = "/api/v1/connections/github/manifest", tag = "connections",
    request_body = StartManifest,
    responses(
        (status = 201, body = ManifestStarted),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`public_url_missing`: the server has no public URL (PICKET_PUBLIC_URL) for GitHub to reach; `connection_exists`: the org has a connection of that name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_body`, naming the field; `base_url` also when it does not parse as a URL with a host", body = Problem, content_type = "application/problem+json"),
    ))]
async fn start_manifest(
    Admin(caller): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<StartManifest>,
) -> Result<(StatusCode, Json<ManifestStarted>), ApiError> {
    let name = match body.name {
        Some(name) => {
            APP_NAME.check("name", &name)?;
            name
        }
        None => {
            use rand::RngCore;
            let mut bytes = [0u8; 4];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            format!("picket-{}", hex::encode(bytes))
        }
    };
    if let Some(org) = &body.organization {
        GITHUB_LOGIN.check("organization", org)?;
    }
    let base_url = body.base_url.unwrap_or_default();
    constraints::BASE_URL.check("base_url", &base_url)?;
    let web_url = gh_manifest::web_url_of(api_url_of(&base_url));
    if url::Url::parse(&web_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_none()
    {
        return Err(ApiError::invalid_body(
            "base_url",
            "must be a URL with a host (GitHub Enterprise Server: https://<host>/api/v3)",
        ));
    }
    let public_url = state.webhooks().public_url.clone().ok_or_else(|| {
        ApiError::conflict(
            "public_url_missing",
            "the server has no public URL (PICKET_PUBLIC_URL): GitHub needs one to deliver \
             webhooks and to send the browser back; set it and restart",
        )
    })?;
    let mut tx = state.db().pool().begin().await?;
    if connections::name_in_use(&mut *tx, caller.org_id, &name).await? {
        return Err(ApiError::conflict(
            "connection_exists",
            "the org already has a connection with this name",
        ));
    }
    let connection_id = ConnectionId::new();
    let (secret, expires_at) = manifests::create(
        &mut tx,
        &NewManifestState {
            org_id: caller.org_id,
            connection_id,
            name: &name,
            organization: body.organization.as_deref(),
            base_url: &base_url,
            requested_by: Some(caller.token_id),
        },
    )
    .await?;
    let state_text = secret.expose_secret().to_owned();
    let manifest = gh_manifest::manifest(&ManifestRequest {
        name,
        homepage_url: public_url.clone(),
        webhook_url: format!("{public_url}/webhooks/github/{connection_id}"),
        redirect_url: format!("{public_url}{CALLBACK_PATH}"),
    });
    let post_url =
        gh_manifest::registration_url(&web_url, body.organization.as_deref(), &state_text)
            .map_err(|e| ApiError::invalid_body("base_url", e.message))?;
    tx.commit().await?;
    tracing::info!(connection_id = %connection_id, organization = ?body.organization, "GitHub App manifest made");
    Ok((
        StatusCode::CREATED,
        Json(ManifestStarted {
            post_url,
            manifest,
            state: state_text,
            expires_at,
            connection_id: connection_id.0,
        }),
    ))
}

/// The callback's query: `code` and `state`, both required (other parameters GitHub may add are
/// ignored).
#[derive(Debug, Deserialize)]
pub struct ManifestCallback {
    /// GitHub's one-time code for the App it created (valid for one hour).
    pub code: String,
    /// The state of the manifest, as GitHub passes it back.
    pub state: String,
}

// By hand: utoipa's derive leaves a parameter with `schema_with` optional.
impl IntoParams for ManifestCallback {
    fn into_params(
        _parameter_in: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        let param = |name: &str, description: &str, rule: Text| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(utoipa::openapi::Required::True)
                .description(Some(description))
                .schema(Some(rule.schema()))
                .build()
        };
        vec![
            param(
                "code",
                "GitHub's one-time code for the App it created (valid for one hour)",
                MANIFEST_CODE,
            ),
            param(
                "state",
                "The manifest's state, as GitHub passes it back",
                MANIFEST_STATE,
            ),
        ]
    }
}

/// The connection the manifest flow created.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManifestCompleted {
    pub connection: Connection,
    /// The App's id on GitHub.
    pub app_id: u64,
    /// The App's slug on GitHub (its bot posts as `<slug>[bot]`).
    pub app_slug: Option<String>,
    /// Next step: install the App on the organization's repositories, here.
    pub install_url: Option<String>,
}

/// Where GitHub sends the admin's browser after creating the App (the manifest's
/// `redirect_url`). No bearer token: the single-use `state` authenticates it. Converts the code
/// into the App's credentials and stores the connection (sealed; never shown), in one
/// transaction with using up the state.
#[utoipa::path(get, path = "/api/v1/connections/github/manifest/callback", tag = "connections",
    security(()),
    params(ManifestCallback),
    responses(
        (status = 201, description = "The connection is stored; install the App next (`install_url`)", body = ManifestCompleted),
        (status = 400, description = "`invalid_query`: `code` or `state` missing or malformed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`manifest_state_unknown`: no manifest has this state; nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`manifest_state_used`: the state was used already; nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`manifest_state_expired`: the state is older than an hour; nothing was written, start again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`manifest_code_refused`: GitHub does not know the code (used, or older than an hour); the state is used up, start again", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "GitHub refused the conversion otherwise, or answered wrongly (`provider_rejected`, `provider_bad_response`, ...); the state is used up", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`provider_unavailable`, `provider_unreachable`, `provider_rate_limited`: nothing was written, load the same URL again; `providers_unavailable`; `timeout`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn manifest_callback(
    ApiQuery(q): ApiQuery<ManifestCallback>,
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<ManifestCompleted>), ApiError> {
    MANIFEST_CODE.check_query("code", &q.code)?;
    MANIFEST_STATE.check_query("state", &q.state)?;
    let registry = state.require_providers()?;
    let hash = manifests::hash(&q.state);
    let mut tx = state.db().pool().begin().await?;
    let pending = match manifests::lock(&mut tx, &hash).await? {
        StateLookup::Usable(pending) => pending,
        StateLookup::Unknown => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "manifest_state_unknown",
                "no manifest has this state",
            ))
        }
        StateLookup::Used => {
            return Err(ApiError::conflict(
                "manifest_state_used",
                "this manifest's state was used already: each completes one App registration",
            ))
        }
        StateLookup::Expired => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "manifest_state_expired",
                "this manifest's state expired (it lasts one hour): start again",
            ))
        }
    };
    tracing::Span::current().record("org_id", tracing::field::display(pending.org_id));
    let mut options = registry.options().clone();
    options.api_url = api_url_of(&pending.base_url).to_owned();
    let created = match gh_manifest::convert(&q.code, &options).await {
        Ok(created) => created,
        // Dropping `tx` rolls back: the state stays usable for the same redirect, loaded again.
        Err(e) if e.code.is_transient() => return Err(e.into()),
        Err(e) => {
            manifests::consume(&mut *tx, &hash).await?;
            tx.commit().await?;
            tracing::warn!(connection_id = %pending.connection_id, code = e.code.as_str(), "GitHub refused the manifest's code");
            return Err(if e.code == ErrorCode::NotFound {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "manifest_code_refused",
                    "GitHub does not know this code (it is single-use and lasts one hour): \
                     start again",
                )
            } else {
                e.into()
            });
        }
    };
    let app_id = created.credentials.app_id;
    // A key that does not sign is useless: refuse it now rather than on the first call.
    if let Err(e) = picket_vcs::github::api::GitHubApp::new(&created.credentials, &options) {
        manifests::consume(&mut *tx, &hash).await?;
        tx.commit().await?;
        tracing::error!(
            app_id,
            "GitHub's conversion answered a key that cannot sign"
        );
        return Err(picket_vcs::VcsError::new(ErrorCode::BadResponse, e.message).into());
    }
    // The name GitHub has (the admin may have changed it there), unless the org already has a
    // connection of that name.
    let base = created.name.clone().unwrap_or(pending.name.clone());
    let mut name = base.clone();
    for candidate in [
        base.clone(),
        format!("{base} ({app_id})"),
        format!("{base} ({})", pending.connection_id),
    ] {
        name = candidate;
        if !connections::name_in_use(&mut *tx, pending.org_id, &name).await? {
            break;
        }
    }
    let new = NewConnection {
        org_id: pending.org_id,
        provider: Provider::Github,
        name,
        base_url: pending.base_url.clone(),
        credentials: Some(sealable(&created.credentials)?),
        follow_installations: false,
    };
    let stored = connections::create_with_id(
        &mut *tx,
        state.cipher(),
        pending.connection_id,
        &new,
    )
    .await
    .inspect_err(|e| {
        tracing::error!(app_id, error = %e, "GitHub created the App but Picket could not store it: generate a private key in the App's settings and connect it with POST /api/v1/connections");
    })?;
    manifests::consume(&mut *tx, &hash).await?;
    tx.commit().await?;
    tracing::info!(connection_id = %stored.id, app_id, "connection created from a GitHub App manifest");
    let install_url = created
        .html_url
        .as_deref()
        .map(|u| format!("{}/installations/new", u.trim_end_matches('/')));
    Ok((
        StatusCode::CREATED,
        Json(ManifestCompleted {
            connection: Connection::new(stored, &state),
            app_id,
            app_slug: created.slug,
            install_url,
        }),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_callback_takes_no_token_and_needs_its_code_and_state() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        let op = &doc["paths"]["/api/v1/connections/github/manifest/callback"]["get"];
        assert_eq!(op["security"], serde_json::json!([{}]), "{op}");
        assert!(op["responses"]["401"].is_null(), "{op}");
        let params = op["parameters"].as_array().unwrap();
        for name in ["code", "state"] {
            let p = params.iter().find(|p| p["name"] == name).unwrap();
            assert_eq!(p["required"], true, "{p}");
            assert_eq!(p["in"], "query", "{p}");
        }
    }
}
