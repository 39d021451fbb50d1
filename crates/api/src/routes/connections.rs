//! `/api/v1/connections`: source-provider connections and their credentials.
//!
//! Credentials arrive in the create request as a JSON object or string, are held only in a
//! [`Credentials`] wrapper whose `Debug` redacts them, are serialized to JSON text inside a
//! `SecretString` and sealed by picket-db under the new row's id. No response carries them: a
//! connection shows `has_credentials` and nothing more.
//!
//! A GitHub connection's credentials are a GitHub App's: `{app_id, private_key, webhook_secret}`
//! (the App's id, its RSA private key as PEM, and its webhook secret), checked here and stored as
//! [`AppCredentials`]. Its webhook secret can be rotated
//! (`POST /api/v1/connections/{id}/webhook-secret/rotate`): the previous one stays valid for the
//! configured overlap. Its deliveries are logged (`GET /api/v1/connections/{id}/deliveries`).

use crate::constraints;
use crate::error::{ApiError, Problem};
use crate::extract::{Admin, ApiJson, ApiPath, ApiQuery, Caller};
use crate::pagination::{self, DeliveryPosition, Position};
use crate::routes::not_found_as;
use crate::AppState;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use picket_core::ConnectionId;
use picket_core::Provider;
use picket_db::connections::{self, ConnectionRecord, NewConnection};
use picket_db::webhooks::{self, DeliveryRecord};
use picket_vcs::github::AppCredentials;
use picket_vcs::gitlab::{self, GitLabCredentials};
use secrecy::{ExposeSecret, SecretString};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::IntoParams;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Longest credential string, alone or as an object's field, in characters (a 4096-bit PEM key
/// is about 3,300).
pub const MAX_CREDENTIAL_CHARS: usize = 16_384;
/// Most fields a credentials object may have.
pub const MAX_CREDENTIAL_FIELDS: usize = 16;
/// Longest field name in a credentials object, in characters.
pub const MAX_CREDENTIAL_FIELD_NAME: usize = 64;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_connections, create_connection))
        .routes(routes!(
            get_connection,
            update_connection,
            delete_connection
        ))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Connection {
    pub id: Uuid,
    #[schema(schema_with = crate::schema::provider)]
    pub provider: Provider,
    pub name: String,
    /// The provider's API base URL; empty for the provider's public cloud or plain git.
    pub base_url: String,
    /// Whether credentials are stored. They are never returned.
    pub has_credentials: bool,
    /// Add every repository an installation gains as a project, with its initial scan.
    pub follow_installations: bool,
    /// Where the provider delivers this connection's webhooks (GitHub and GitLab connections):
    /// under the server's public URL (`PICKET_PUBLIC_URL`), or a path alone when none is
    /// configured.
    pub webhook_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Connection {
    pub(crate) fn new(c: ConnectionRecord, state: &AppState) -> Self {
        let webhook_url = matches!(c.provider, Provider::Github | Provider::Gitlab).then(|| {
            format!(
                "{}/webhooks/{}/{}",
                state.webhooks().public_url.as_deref().unwrap_or_default(),
                c.provider.as_str(),
                c.id
            )
        });
        Connection {
            id: c.id.0,
            provider: c.provider,
            name: c.name,
            base_url: c.base_url,
            has_credentials: c.has_credentials,
            follow_installations: c.follow_installations,
            webhook_url,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    pub connections: Vec<Connection>,
}

/// Provider credentials as received: a JSON object or a string. `Debug` never shows them.
pub struct Credentials(serde_json::Value);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials([REDACTED])")
    }
}

/// Whether `value` has the shape [`crate::schema::credentials`] describes: a token string of
/// 1-16,384 characters, or an object of 1-16 fields (names of 1-64 characters) whose values are
/// strings of at most 16,384 characters, integers or booleans.
fn credentials_shape_ok(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    let text_ok = |s: &str, min: usize, max: usize| (min..=max).contains(&s.chars().count());
    match value {
        Value::String(s) => text_ok(s, 1, MAX_CREDENTIAL_CHARS),
        Value::Object(fields) => {
            (1..=MAX_CREDENTIAL_FIELDS).contains(&fields.len())
                && fields.iter().all(|(name, v)| {
                    text_ok(name, 1, MAX_CREDENTIAL_FIELD_NAME)
                        && match v {
                            Value::String(s) => text_ok(s, 0, MAX_CREDENTIAL_CHARS),
                            Value::Bool(_) => true,
                            // JSON Schema's integer: any number without a fractional part, here
                            // within i64.
                            Value::Number(n) => {
                                n.is_i64()
                                    || n.as_f64().is_some_and(|f| {
                                        f.fract() == 0.0
                                            && (i64::MIN as f64..=i64::MAX as f64).contains(&f)
                                    })
                            }
                            _ => false,
                        }
                })
        }
        _ => false,
    }
}

impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The error names the shape only, never the value.
        let value = serde_json::Value::deserialize(d)?;
        if credentials_shape_ok(&value) {
            Ok(Credentials(value))
        } else {
            Err(D::Error::custom(
                "must be a token string of 1-16384 characters, or an object of 1-16 fields \
                 (names of 1-64 characters) whose values are strings of at most 16384 \
                 characters, integers or booleans",
            ))
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    #[schema(schema_with = crate::schema::provider)]
    pub provider: Provider,
    /// 1-200 characters, unique in the org.
    #[schema(schema_with = constraints::name)]
    pub name: String,
    /// `https://` or `http://` URL of the provider's API, for self-hosted instances (GitLab: the
    /// instance's address, to which `/api/v4` is added when missing).
    #[serde(default)]
    #[schema(schema_with = constraints::base_url)]
    pub base_url: String,
    /// A GitHub connection's: `{app_id, private_key, webhook_secret}` (the App's id, a positive
    /// integer; its RSA private key, PEM; its webhook secret, 16-256 characters) and nothing else.
    /// A GitLab connection's: `{token, webhook_secret, group}`: an access token with the `api`
    /// and `read_repository` scopes (8-1024 visible characters); the hook's secret token or a
    /// signing token (`whsec_...`), 16-256 characters; optionally the group whose projects
    /// (subgroups included) are listed, by full path or id (else the token's memberships).
    #[serde(default)]
    #[schema(schema_with = crate::schema::credentials)]
    pub credentials: Option<Credentials>,
    /// Add every repository an installation gains as a project, automatically. Default false.
    #[serde(default)]
    pub follow_installations: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnection {
    pub follow_installations: Option<bool>,
}

/// A GitHub App's credentials as a request sends them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GithubAppInput {
    app_id: serde_json::Value,
    private_key: serde_json::Value,
    webhook_secret: serde_json::Value,
}

/// Checks a GitHub App's credentials (422 naming `credentials.<field>`) and returns them as
/// stored. The messages never quote a value.
fn github_app(value: serde_json::Value) -> Result<AppCredentials, ApiError> {
    let input: GithubAppInput = serde_json::from_value(value).map_err(|_| {
        ApiError::invalid_body(
            "credentials",
            "a GitHub connection's credentials are an object of exactly app_id, private_key \
             and webhook_secret",
        )
    })?;
    let app_id = input.app_id.as_u64().filter(|&n| n > 0).ok_or_else(|| {
        ApiError::invalid_body("credentials.app_id", "must be a positive integer")
    })?;
    let private_key = match input.private_key {
        serde_json::Value::String(pem) if rsa_private_key(&pem) => SecretString::from(pem),
        _ => {
            return Err(ApiError::invalid_body(
                "credentials.private_key",
                "must be the App's RSA private key, PEM (PKCS#1 `BEGIN RSA PRIVATE KEY` as \
                 GitHub issues it, or PKCS#8 `BEGIN PRIVATE KEY`)",
            ))
        }
    };
    let webhook_secret = match input.webhook_secret {
        serde_json::Value::String(s) => {
            constraints::WEBHOOK_SECRET.check("credentials.webhook_secret", &s)?;
            SecretString::from(s)
        }
        _ => {
            return Err(ApiError::invalid_body(
                "credentials.webhook_secret",
                format!("must be {}", constraints::WEBHOOK_SECRET.expected),
            ))
        }
    };
    Ok(AppCredentials {
        app_id,
        private_key,
        webhook_secret,
        previous_webhook_secret: None,
        previous_valid_until: None,
    })
}

/// Whether `pem` holds an RSA private key, PKCS#1 or PKCS#8.
fn rsa_private_key(pem: &str) -> bool {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let pem = pem.trim();
    rsa::RsaPrivateKey::from_pkcs1_pem(pem).is_ok()
        || rsa::RsaPrivateKey::from_pkcs8_pem(pem).is_ok()
}

/// A GitLab connection's credentials as a request sends them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GitlabInput {
    token: serde_json::Value,
    webhook_secret: serde_json::Value,
    #[serde(default)]
    group: Option<serde_json::Value>,
}

/// Checks a GitLab connection's credentials (422 naming `credentials.<field>`) and returns them
/// as stored. The messages never quote a value.
fn gitlab_token(value: serde_json::Value) -> Result<GitLabCredentials, ApiError> {
    let input: GitlabInput = serde_json::from_value(value).map_err(|_| {
        ApiError::invalid_body(
            "credentials",
            "a GitLab connection's credentials are an object of token, webhook_secret and \
             optionally group",
        )
    })?;
    let token = match input.token {
        serde_json::Value::String(t)
            if (8..=1024).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            SecretString::from(t)
        }
        _ => {
            return Err(ApiError::invalid_body(
                "credentials.token",
                "must be a GitLab access token: 8-1024 visible ASCII characters",
            ))
        }
    };
    let webhook_secret = match input.webhook_secret {
        serde_json::Value::String(s) => {
            constraints::WEBHOOK_SECRET.check("credentials.webhook_secret", &s)?;
            if s.starts_with(gitlab::webhook::SIGNING_SECRET_PREFIX)
                && !gitlab::webhook::signing_token_ok(&s)
            {
                return Err(ApiError::invalid_body(
                    "credentials.webhook_secret",
                    "starts with `whsec_` but is not a signing token (`whsec_` and base64)",
                ));
            }
            SecretString::from(s)
        }
        _ => {
            return Err(ApiError::invalid_body(
                "credentials.webhook_secret",
                format!("must be {}", constraints::WEBHOOK_SECRET.expected),
            ))
        }
    };
    let group = match input.group {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(g)) if gitlab_group_ok(&g) => {
            Some(g.trim_matches('/').to_owned())
        }
        Some(serde_json::Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {
            Some(n.to_string())
        }
        Some(_) => {
            return Err(ApiError::invalid_body(
                "credentials.group",
                "must be a group's full path (`acme/platform`, 1-255 characters of letters, \
                 digits, `_`, `-`, `.` and `/`) or its numeric id",
            ))
        }
    };
    Ok(GitLabCredentials {
        token,
        webhook_secret,
        previous_webhook_secret: None,
        previous_valid_until: None,
        group,
    })
}

/// A GitLab group's full path: 1-255 characters of letters, digits, `_`, `-`, `.` and `/`,
/// without empty segments.
fn gitlab_group_ok(group: &str) -> bool {
    let g = group.trim_matches('/');
    (1..=255).contains(&g.len())
        && g.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        })
}

/// A GitLab connection's API root: empty stays empty (gitlab.com); an instance's web address
/// (`https://gitlab.example.com`) gets GitLab's `/api/v4`.
fn gitlab_api_url(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    if base.is_empty() || base.ends_with("/api/v4") {
        base.to_owned()
    } else {
        format!("{base}/api/v4")
    }
}

pub(crate) fn sealable(credentials: &impl Serialize) -> Result<SecretString, ApiError> {
    serde_json::to_string(credentials)
        .map(SecretString::from)
        .map_err(|e| ApiError::internal(&e))
}

/// List the org's connections.
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections",
    responses((status = 200, body = ConnectionList)))]
async fn list_connections(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<ConnectionList>, ApiError> {
    let list = connections::list(state.db().pool(), caller.org_id).await?;
    Ok(Json(ConnectionList {
        connections: list
            .into_iter()
            .map(|c| Connection::new(c, &state))
            .collect(),
    }))
}

/// Add a connection (admin). Credentials are encrypted at rest and never returned.
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections",
    request_body = CreateConnection,
    responses(
        (status = 201, body = Connection),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`connection_exists`: the org has a connection of that name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_body`, naming the field; for a GitHub connection also `credentials.private_key` when the key is not an RSA private key", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_connection(
    Admin(caller): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateConnection>,
) -> Result<(StatusCode, Json<Connection>), ApiError> {
    constraints::NAME.check("name", &body.name)?;
    constraints::BASE_URL.check("base_url", &body.base_url)?;
    let base_url = match body.provider {
        Provider::Gitlab => gitlab_api_url(&body.base_url),
        _ => body.base_url,
    };
    let credentials = match body.credentials {
        None => None,
        Some(Credentials(value)) if body.provider == Provider::Github => {
            Some(sealable(&github_app(value)?)?)
        }
        Some(Credentials(value)) if body.provider == Provider::Gitlab => {
            Some(sealable(&gitlab_token(value)?)?)
        }
        Some(Credentials(value)) => {
            let text = serde_json::to_string(&value).map_err(|e| ApiError::internal(&e))?;
            Some(SecretString::from(text))
        }
    };
    let new = NewConnection {
        org_id: caller.org_id,
        provider: body.provider,
        name: body.name,
        base_url,
        credentials,
        follow_installations: body.follow_installations,
    };
    let created = connections::create(state.db().pool(), state.cipher(), &new).await?;
    tracing::info!(connection_id = %created.id, provider = %created.provider, "connection created");
    Ok((StatusCode::CREATED, Json(Connection::new(created, &state))))
}

/// One connection.
#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections",
    params(ApiPath<ConnectionId>),
    responses(
        (status = 200, body = Connection),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_connection(
    caller: Caller,
    ApiPath(id): ApiPath<ConnectionId>,
    State(state): State<AppState>,
) -> Result<Json<Connection>, ApiError> {
    let c = connections::get(state.db().pool(), caller.org_id, id)
        .await
        .map_err(|e| not_found_as(e, "connection"))?;
    Ok(Json(Connection::new(c, &state)))
}

/// Change a connection's settings (admin).
#[utoipa::path(patch, path = "/api/v1/connections/{id}", tag = "connections",
    params(ApiPath<ConnectionId>),
    request_body = UpdateConnection,
    responses(
        (status = 200, body = Connection),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_connection(
    Admin(caller): Admin,
    ApiPath(id): ApiPath<ConnectionId>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<UpdateConnection>,
) -> Result<Json<Connection>, ApiError> {
    let c = connections::update_settings(
        state.db().pool(),
        caller.org_id,
        id,
        body.follow_installations,
    )
    .await
    .map_err(|e| not_found_as(e, "connection"))?;
    state.webhook_targets().forget(id);
    tracing::info!(connection_id = %id, follow_installations = c.follow_installations, "connection settings changed");
    Ok(Json(Connection::new(c, &state)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateWebhookSecret {
    /// The new secret, 16-256 characters. Absent: the server draws one (256 bits, hex).
    #[serde(default)]
    #[schema(schema_with = constraints::webhook_secret_opt)]
    pub webhook_secret: Option<String>,
}

/// The new webhook secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct RotatedWebhookSecret {
    /// Give this to the provider (the App's webhook settings). Never shown again.
    pub webhook_secret: String,
    /// Until when deliveries signed with the previous secret are still taken.
    #[serde(with = "time::serde::rfc3339")]
    pub previous_valid_until: OffsetDateTime,
}

impl std::fmt::Debug for RotatedWebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedWebhookSecret")
            .field("previous_valid_until", &self.previous_valid_until)
            .finish_non_exhaustive()
    }
}

/// Rotate a GitHub or GitLab connection's webhook secret (admin): the new one (given, or drawn by the
/// server) is returned once; the previous one stays valid for the configured overlap (default
/// 24 h), so deliveries signed before the provider learns the new one still pass.
#[utoipa::path(post, path = "/api/v1/connections/{id}/webhook-secret/rotate", tag = "connections",
    params(ApiPath<ConnectionId>),
    request_body = RotateWebhookSecret,
    responses(
        (status = 200, body = RotatedWebhookSecret),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_webhook_secret`: not a GitHub connection with an App's credentials, nor a GitLab connection with a token", body = Problem, content_type = "application/problem+json"),
    ))]
async fn rotate_webhook_secret(
    Admin(caller): Admin,
    ApiPath(id): ApiPath<ConnectionId>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RotateWebhookSecret>,
) -> Result<Json<RotatedWebhookSecret>, ApiError> {
    let new = match body.webhook_secret {
        Some(s) => {
            constraints::WEBHOOK_SECRET.check("webhook_secret", &s)?;
            s
        }
        None => {
            use rand::RngCore;
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            hex::encode(bytes)
        }
    };
    let mut tx = state.db().pool().begin().await?;
    let (provider, stored) =
        connections::credentials_for_update(&mut tx, state.cipher(), caller.org_id, id)
            .await
            .map_err(|e| not_found_as(e, "connection"))?;
    let refused = || {
        ApiError::conflict(
            "no_webhook_secret",
            "only a GitHub connection holding a GitHub App's credentials, or a GitLab connection \
             holding a token, has a webhook secret",
        )
    };
    let now = OffsetDateTime::now_utc();
    let overlap = time::Duration::try_from(state.webhooks().secret_overlap)
        .map_err(|e| ApiError::internal(&e))?;
    let new_secret = SecretString::from(new.clone());
    let stored = stored.ok_or_else(refused)?;
    let (sealed, until) = match provider {
        Provider::Github => {
            let mut c: AppCredentials =
                serde_json::from_str(stored.expose_secret()).map_err(|_| refused())?;
            c.rotate_webhook_secret(new_secret, now, overlap);
            (sealable(&c)?, c.previous_valid_until.unwrap_or(now))
        }
        Provider::Gitlab => {
            let mut c: GitLabCredentials =
                serde_json::from_str(stored.expose_secret()).map_err(|_| refused())?;
            c.rotate_webhook_secret(new_secret, now, overlap);
            (sealable(&c)?, c.previous_valid_until.unwrap_or(now))
        }
        _ => return Err(refused()),
    };
    connections::replace_credentials(&mut *tx, state.cipher(), caller.org_id, id, &sealed).await?;
    tx.commit().await?;
    state.webhook_targets().forget(id);
    tracing::info!(connection_id = %id, previous_valid_until = %until, "webhook secret rotated");
    Ok(Json(RotatedWebhookSecret {
        webhook_secret: new,
        previous_valid_until: until,
    }))
}

/// One delivery of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDelivery {
    /// The provider's delivery id (GitHub `X-GitHub-Delivery`); null when it sent none.
    pub delivery_id: Option<String>,
    /// The provider's event name (`pull_request`, ...), as received.
    pub event: Option<String>,
    /// The payload's `action`.
    pub action: Option<String>,
    /// What Picket made of it (the codes of the webhook route's answer, or why it could not be
    /// read: `header_missing`, `body_not_json`, `payload_invalid`, ...).
    pub outcome: String,
    /// The scan it queued.
    pub scan_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Whether its body is still kept (for `PICKET_WEBHOOK_BODY_RETENTION`, default 7 days).
    pub has_body: bool,
}

impl From<DeliveryRecord> for WebhookDelivery {
    fn from(d: DeliveryRecord) -> Self {
        WebhookDelivery {
            delivery_id: d.delivery_id,
            event: d.event,
            action: d.action,
            outcome: d.outcome,
            scan_id: d.scan_id.map(|s| s.0),
            received_at: d.received_at,
            has_body: d.has_body,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryPage {
    pub items: Vec<WebhookDelivery>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryDetail {
    #[serde(flatten)]
    pub delivery: WebhookDelivery,
    /// The body as received, while kept: its text when it is UTF-8 (`body_encoding` `utf-8`),
    /// else base64 (`base64`).
    pub body: Option<String>,
    #[schema(schema_with = body_encoding)]
    pub body_encoding: Option<&'static str>,
}

fn body_encoding() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::String,
            utoipa::openapi::schema::Type::Null,
        ]))
        .enum_values(Some([
            serde_json::json!("utf-8"),
            serde_json::json!("base64"),
            serde_json::Value::Null,
        ]))
        .build()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// From the previous page's `next_cursor`.
    #[param(schema_with = DeliveryPosition::schema)]
    pub cursor: Option<String>,
    /// 1-500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A connection's webhook deliveries, newest first, without their bodies (admin): to trace a
/// delivery by its id, and see what Picket made of it.
#[utoipa::path(get, path = "/api/v1/connections/{id}/deliveries", tag = "connections",
    params(ApiPath<ConnectionId>, DeliveryQuery),
    responses(
        (status = 200, body = WebhookDeliveryPage),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_deliveries(
    Admin(caller): Admin,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
    State(state): State<AppState>,
) -> Result<Json<WebhookDeliveryPage>, ApiError> {
    let limit = pagination::limit(q.limit)?;
    let before = match &q.cursor {
        Some(c) => Some(pagination::decode::<DeliveryPosition>(c)?.0),
        None => None,
    };
    let mut conn = state.db().pool().acquire().await?;
    let rows = webhooks::list(&mut conn, caller.org_id, id, before, limit + 1)
        .await
        .map_err(|e| not_found_as(e, "connection"))?;
    let (rows, next_cursor) = pagination::page(rows, limit, |d| DeliveryPosition(d.id));
    Ok(Json(WebhookDeliveryPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// `/connections/{id}/deliveries/{delivery_id}`: the connection and the provider's delivery id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPath {
    pub connection: ConnectionId,
    pub delivery_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for DeliveryPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((id, delivery_id)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid_path("id", e.body_text()))?;
        let connection = constraints::UUID
            .verdict(&id)
            .and_then(|()| id.parse().map_err(|_| format!("{id:?} is not a UUID")))
            .map_err(|m| ApiError::invalid_path("id", m))?;
        constraints::DELIVERY_ID
            .verdict(&delivery_id)
            .map_err(|m| ApiError::invalid_path("delivery_id", format!("must be {m}")))?;
        Ok(DeliveryPath {
            connection: ConnectionId(connection),
            delivery_id,
        })
    }
}

impl IntoParams for DeliveryPath {
    fn into_params(
        _parameter_in: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        let param = |name: &str, description: &str, rule: constraints::Text| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(utoipa::openapi::Required::True)
                .description(Some(description))
                .schema(Some(rule.schema()))
                .build()
        };
        vec![
            param("id", "Connection id", constraints::UUID),
            param(
                "delivery_id",
                "The provider's delivery id (GitHub `X-GitHub-Delivery`)",
                constraints::DELIVERY_ID,
            ),
        ]
    }
}

/// One delivery with its body while kept (admin).
#[utoipa::path(get, path = "/api/v1/connections/{id}/deliveries/{delivery_id}", tag = "connections",
    params(DeliveryPath),
    responses(
        (status = 200, body = WebhookDeliveryDetail),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_delivery(
    Admin(caller): Admin,
    path: DeliveryPath,
    State(state): State<AppState>,
) -> Result<Json<WebhookDeliveryDetail>, ApiError> {
    let (record, body) = webhooks::get(
        state.db().pool(),
        caller.org_id,
        path.connection,
        &path.delivery_id,
    )
    .await
    .map_err(|e| not_found_as(e, "delivery"))?;
    let (body, body_encoding) = match body {
        None => (None, None),
        Some(bytes) => match String::from_utf8(bytes) {
            Ok(text) => (Some(text), Some("utf-8")),
            Err(e) => {
                use base64::Engine;
                (
                    Some(base64::engine::general_purpose::STANDARD.encode(e.as_bytes())),
                    Some("base64"),
                )
            }
        },
    };
    Ok(Json(WebhookDeliveryDetail {
        delivery: record.into(),
        body,
        body_encoding,
    }))
}

/// Delete a connection (admin). Refused with 409 `connection_in_use` while projects use it.
#[utoipa::path(delete, path = "/api/v1/connections/{id}", tag = "connections",
    params(ApiPath<ConnectionId>),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`connection_in_use`: projects use it", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_connection(
    Admin(caller): Admin,
    ApiPath(id): ApiPath<ConnectionId>,
    State(state): State<AppState>,
) -> Result<StatusCode, ApiError> {
    connections::delete(state.db().pool(), caller.org_id, id)
        .await
        .map_err(|e| not_found_as(e, "connection"))?;
    state.webhook_targets().forget(id);
    tracing::info!(connection_id = %id, "connection deleted");
    Ok(StatusCode::NO_CONTENT)
}
