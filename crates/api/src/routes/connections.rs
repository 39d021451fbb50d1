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
//!
//! GitLab and Bitbucket Cloud connections hold a token and the hooks' secret, given by the admin
//! (rotated the same way). An Azure DevOps connection holds a personal access token and a
//! project; its service hooks authenticate with a Basic authentication password that the server
//! draws ([`picket_vcs::azure::webhook::generate_password`]): only its hash is stored, and the
//! password is returned once, in the create response's `webhook_password` (and again, a new
//! one, on each rotation and webhook installation). It is never logged.

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
use picket_vcs::azure::{self, AzureCredentials};
use picket_vcs::bitbucket::BitbucketCredentials;
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
    /// Where the provider delivers this connection's webhooks (GitHub, GitLab, Bitbucket and
    /// Azure DevOps connections): under the server's public URL (`PICKET_PUBLIC_URL`), or a path
    /// alone when none is configured.
    pub webhook_url: Option<String>,
    /// The Basic authentication user name the service hooks must send (Azure DevOps
    /// connections: `picket`).
    pub webhook_username: Option<&'static str>,
    /// Azure DevOps connections, in the create response only: the service hooks' Basic
    /// authentication password, drawn by the server (256 random bits). Shown this once: only its
    /// hash is stored. Absent from every other response.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub webhook_password: Option<ShownOnce>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A secret a response shows once (an Azure DevOps connection's webhook password). Serialized
/// as its text; `Debug` never shows it.
pub struct ShownOnce(SecretString);

impl ShownOnce {
    pub(crate) fn new(secret: SecretString) -> Self {
        ShownOnce(secret)
    }
}

impl Serialize for ShownOnce {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose_secret())
    }
}

impl std::fmt::Debug for ShownOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Connection {
    pub(crate) fn new(c: ConnectionRecord, state: &AppState) -> Self {
        let webhook_url = (c.provider != Provider::Git).then(|| {
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
            webhook_username: (c.provider == Provider::AzureDevops)
                .then_some(azure::webhook::USERNAME),
            webhook_password: None,
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
    /// instance's address, to which `/api/v4` is added when missing; Bitbucket: empty for
    /// Bitbucket Cloud). Azure DevOps: required, the organization's URL,
    /// `https://dev.azure.com/{organization}` (or `https://{organization}.visualstudio.com`).
    #[serde(default)]
    #[schema(schema_with = constraints::base_url)]
    pub base_url: String,
    /// A GitHub connection's: `{app_id, private_key, webhook_secret}` (the App's id, a positive
    /// integer; its RSA private key, PEM; its webhook secret, 16-256 characters) and nothing else.
    /// A GitLab connection's: `{token, webhook_secret, group}`: an access token with the `api`
    /// and `read_repository` scopes (8-1024 visible characters); the hook's secret token or a
    /// signing token (`whsec_...`), 16-256 characters; optionally the group whose projects
    /// (subgroups included) are listed, by full path or id (else the token's memberships).
    /// A Bitbucket Cloud connection's: `{token, webhook_secret, workspace}`: an access token
    /// with the `repository`, `pullrequest:write` and `webhook` scopes (8-4096 visible
    /// characters); the hooks' secret, 16-256 characters; the workspace's id (its slug in
    /// Bitbucket's URLs: 1-62 lowercase letters, digits, `-`, `_`, `.`).
    /// An Azure DevOps connection's: `{pat, project}`: a personal access token with the Code
    /// (read, status), Pull request threads and Service hooks scopes (8-1024 visible characters)
    /// and the project (name or id) whose Git repositories are listed. No webhook secret: the
    /// server draws the service hooks' password and returns it once (`webhook_password`).
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

/// A Bitbucket Cloud connection's credentials as a request sends them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BitbucketInput {
    token: serde_json::Value,
    webhook_secret: serde_json::Value,
    workspace: serde_json::Value,
}

/// Checks a Bitbucket Cloud connection's credentials (422 naming `credentials.<field>`) and
/// returns them as stored. The messages never quote a value.
fn bitbucket_token(value: serde_json::Value) -> Result<BitbucketCredentials, ApiError> {
    let input: BitbucketInput = serde_json::from_value(value).map_err(|_| {
        ApiError::invalid_body(
            "credentials",
            "a Bitbucket connection's credentials are an object of exactly token, \
             webhook_secret and workspace",
        )
    })?;
    let token = match input.token {
        serde_json::Value::String(t)
            if (8..=4096).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            SecretString::from(t)
        }
        _ => {
            return Err(ApiError::invalid_body(
                "credentials.token",
                "must be a Bitbucket access token: 8-4096 visible ASCII characters",
            ))
        }
    };
    let webhook_secret = webhook_secret(input.webhook_secret)?;
    let workspace =
        match input.workspace {
            serde_json::Value::String(w) if bitbucket_workspace_ok(w.trim()) => {
                w.trim().to_ascii_lowercase()
            }
            _ => return Err(ApiError::invalid_body(
                "credentials.workspace",
                "must be the workspace's id as in its URLs (`bitbucket.org/<workspace>`): 1-62 \
                 lowercase letters, digits, `-`, `_` and `.`",
            )),
        };
    Ok(BitbucketCredentials {
        token,
        webhook_secret,
        previous_webhook_secret: None,
        previous_valid_until: None,
        workspace,
    })
}

/// A webhook secret as a request sends it: [`constraints::WEBHOOK_SECRET`], naming
/// `credentials.webhook_secret`.
fn webhook_secret(value: serde_json::Value) -> Result<SecretString, ApiError> {
    match value {
        serde_json::Value::String(s) => {
            constraints::WEBHOOK_SECRET.check("credentials.webhook_secret", &s)?;
            Ok(SecretString::from(s))
        }
        _ => Err(ApiError::invalid_body(
            "credentials.webhook_secret",
            format!("must be {}", constraints::WEBHOOK_SECRET.expected),
        )),
    }
}

/// A Bitbucket workspace id (its slug): 1-62 letters, digits, `-`, `_` and `.` (Bitbucket
/// Cloud's repository slugs' rule; workspace ids are lowercase, and any case is taken here and
/// lowercased, as Bitbucket's URLs are not case-sensitive).
fn bitbucket_workspace_ok(workspace: &str) -> bool {
    (1..=62).contains(&workspace.len())
        && workspace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !matches!(workspace, "." | "..")
}

/// An Azure DevOps connection's credentials as a request sends them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AzureInput {
    pat: serde_json::Value,
    project: serde_json::Value,
}

/// Checks an Azure DevOps connection's credentials (422 naming `credentials.<field>`) and returns
/// them as stored, with a new service-hook password's hash, and the password (to show once).
/// The messages never quote a value.
fn azure_pat(value: serde_json::Value) -> Result<(AzureCredentials, SecretString), ApiError> {
    let input: AzureInput = serde_json::from_value(value).map_err(|_| {
        ApiError::invalid_body(
            "credentials",
            "an Azure DevOps connection's credentials are an object of exactly pat and project \
             (the server draws the service hooks' password: send none)",
        )
    })?;
    let pat =
        match input.pat {
            serde_json::Value::String(t)
                if (8..=1024).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                SecretString::from(t)
            }
            _ => return Err(ApiError::invalid_body(
                "credentials.pat",
                "must be an Azure DevOps personal access token: 8-1024 visible ASCII characters",
            )),
        };
    let project = match input.project {
        serde_json::Value::String(p) if azure_project_ok(p.trim()) => p.trim().to_owned(),
        _ => {
            return Err(ApiError::invalid_body(
                "credentials.project",
                "must be an Azure DevOps project's name or id: 1-64 characters, none of \
                 `\\ / : * ? \" < > | ; # $ { } , + = [ ]` nor control characters, not starting \
                 with `_` or `.` nor ending with `.`",
            ))
        }
    };
    let (password, hash) = azure::webhook::generate_password();
    Ok((
        AzureCredentials {
            pat,
            webhook_password_hash: SecretString::from(hash),
            previous_webhook_password_hash: None,
            previous_valid_until: None,
            project,
        },
        password,
    ))
}

/// An Azure DevOps project name (Azure DevOps docs, "Naming restrictions": at most 64
/// characters, none of `\ / : * ? " < > | ; # $ * { } , + = [ ]`, not starting with `_` or `.`,
/// not ending with `.`), or a project id (a GUID passes the same rule).
fn azure_project_ok(project: &str) -> bool {
    (1..=64).contains(&project.chars().count())
        && !project.chars().any(|c| {
            c.is_control()
                || matches!(
                    c,
                    '\\' | '/'
                        | ':'
                        | '*'
                        | '?'
                        | '"'
                        | '<'
                        | '>'
                        | '|'
                        | ';'
                        | '#'
                        | '$'
                        | '{'
                        | '}'
                        | ','
                        | '+'
                        | '='
                        | '['
                        | ']'
                )
        })
        && !project.starts_with(['_', '.'])
        && !project.ends_with('.')
}

/// An Azure DevOps connection's base URL, the organization's: `https://dev.azure.com/{org}`,
/// `https://{org}.visualstudio.com`, or (a server standing in for Azure DevOps, a proxy)
/// `http(s)://{host}/{org}`; without a trailing slash. 422 naming `base_url` otherwise, empty
/// included: Azure DevOps has no default organization.
fn azure_org_url(base_url: &str) -> Result<String, ApiError> {
    let refused = || {
        ApiError::invalid_body(
            "base_url",
            "an Azure DevOps connection needs its organization's URL: \
             `https://dev.azure.com/<organization>` (or `https://<organization>.visualstudio.com`)",
        )
    };
    let base = base_url.trim().trim_end_matches('/');
    let url = url::Url::parse(base).map_err(|_| refused())?;
    if !matches!(url.scheme(), "https" | "http")
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(refused());
    }
    let host = url.host_str().ok_or_else(refused)?.to_ascii_lowercase();
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let organization = match host.strip_suffix(".visualstudio.com") {
        Some(org) if segments.is_empty() && url.scheme() == "https" => org.to_owned(),
        Some(_) => return Err(refused()),
        None if host == "dev.azure.com" && url.scheme() != "https" => return Err(refused()),
        None => match segments.as_slice() {
            [org] => (*org).to_owned(),
            _ => return Err(refused()),
        },
    };
    if !azure_organization_ok(&organization) {
        return Err(refused());
    }
    Ok(base.to_owned())
}

/// An Azure DevOps organization name: 1-50 letters, digits and `-`, starting and ending with a
/// letter or digit.
fn azure_organization_ok(org: &str) -> bool {
    (1..=50).contains(&org.len())
        && org.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !org.starts_with('-')
        && !org.ends_with('-')
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
        (status = 422, description = "`invalid_body`, naming the field; for a GitHub connection also `credentials.private_key` when the key is not an RSA private key; for an Azure DevOps connection `base_url` when it is not an organization's URL", body = Problem, content_type = "application/problem+json"),
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
        Provider::AzureDevops => azure_org_url(&body.base_url)?,
        _ => body.base_url,
    };
    let mut password = None;
    let credentials = match body.credentials {
        None => None,
        Some(Credentials(value)) if body.provider == Provider::Github => {
            Some(sealable(&github_app(value)?)?)
        }
        Some(Credentials(value)) if body.provider == Provider::Gitlab => {
            Some(sealable(&gitlab_token(value)?)?)
        }
        Some(Credentials(value)) if body.provider == Provider::Bitbucket => {
            Some(sealable(&bitbucket_token(value)?)?)
        }
        Some(Credentials(value)) if body.provider == Provider::AzureDevops => {
            let (credentials, drawn) = azure_pat(value)?;
            password = Some(drawn);
            Some(sealable(&credentials)?)
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
    let mut shown = Connection::new(created, &state);
    shown.webhook_password = password.map(ShownOnce::new);
    Ok((StatusCode::CREATED, Json(shown)))
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
    /// The new secret, 16-256 characters. Absent: the server draws one (256 bits, hex). Refused
    /// for an Azure DevOps connection, whose service-hook password the server always draws.
    #[serde(default)]
    #[schema(schema_with = constraints::webhook_secret_opt)]
    pub webhook_secret: Option<String>,
}

/// The new webhook secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct RotatedWebhookSecret {
    /// Give this to the provider (the App's webhook settings; GitLab's and Bitbucket's hooks;
    /// for Azure DevOps, the subscriptions' Basic authentication password, with the user name
    /// `picket`), or let `POST /api/v1/connections/{id}/webhooks` update the hooks. Never shown
    /// again.
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

/// Rotate a connection's webhook secret (admin): a GitHub App's, a GitLab or Bitbucket
/// connection's hooks' secret, or an Azure DevOps connection's service-hook password. The new
/// one (given, or drawn by the server; always drawn for Azure DevOps, where a given one is
/// refused with 422: only a 256-bit random password makes its stored unsalted hash safe) is
/// returned once; the previous one stays valid for the configured overlap (default 24 h), so
/// deliveries signed before the provider learns the new one still pass.
#[utoipa::path(post, path = "/api/v1/connections/{id}/webhook-secret/rotate", tag = "connections",
    params(ApiPath<ConnectionId>),
    request_body = RotateWebhookSecret,
    responses(
        (status = 200, body = RotatedWebhookSecret),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_webhook_secret`: the connection holds no credentials with a webhook secret (a plain git connection, or one without credentials)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_body`: `webhook_secret` out of bounds, or given for an Azure DevOps connection", body = Problem, content_type = "application/problem+json"),
    ))]
async fn rotate_webhook_secret(
    Admin(caller): Admin,
    ApiPath(id): ApiPath<ConnectionId>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RotateWebhookSecret>,
) -> Result<Json<RotatedWebhookSecret>, ApiError> {
    let given = match body.webhook_secret {
        Some(s) => {
            constraints::WEBHOOK_SECRET.check("webhook_secret", &s)?;
            Some(s)
        }
        None => None,
    };
    let mut tx = state.db().pool().begin().await?;
    let (provider, stored) =
        connections::credentials_for_update(&mut tx, state.cipher(), caller.org_id, id)
            .await
            .map_err(|e| not_found_as(e, "connection"))?;
    let refused = || {
        ApiError::conflict(
            "no_webhook_secret",
            "only a connection holding its provider's credentials (a GitHub App's; a GitLab, \
             Bitbucket or Azure DevOps token) has a webhook secret",
        )
    };
    let now = OffsetDateTime::now_utc();
    let overlap = time::Duration::try_from(state.webhooks().secret_overlap)
        .map_err(|e| ApiError::internal(&e))?;
    if provider == Provider::AzureDevops && given.is_some() {
        return Err(ApiError::invalid_body(
            "webhook_secret",
            "an Azure DevOps connection's service-hook password is drawn by the server: send \
             no webhook_secret",
        ));
    }
    let new = given.unwrap_or_else(|| {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        hex::encode(bytes)
    });
    let new_secret = SecretString::from(new.clone());
    let stored = stored.ok_or_else(refused)?;
    let (new, sealed, until) = match provider {
        Provider::AzureDevops => {
            let mut c: AzureCredentials =
                serde_json::from_str(stored.expose_secret()).map_err(|_| refused())?;
            let (password, hash) = azure::webhook::generate_password();
            c.rotate_webhook_password(SecretString::from(hash), now, overlap);
            (
                password.expose_secret().to_owned(),
                sealable(&c)?,
                c.previous_valid_until.unwrap_or(now),
            )
        }
        _ => {
            let (sealed, until) =
                rotated_secret(provider, &stored, new_secret, now, overlap)?.ok_or_else(refused)?;
            (new, sealed, until)
        }
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

/// The stored credentials of a GitHub, GitLab or Bitbucket connection with `new` as their
/// webhook secret and the current one kept until `now + overlap`, sealable, and that instant;
/// `None` for other providers and credentials that are not their provider's.
fn rotated_secret(
    provider: Provider,
    stored: &SecretString,
    new: SecretString,
    now: OffsetDateTime,
    overlap: time::Duration,
) -> Result<Option<(SecretString, OffsetDateTime)>, ApiError> {
    let text = stored.expose_secret();
    Ok(Some(match provider {
        Provider::Github => {
            let Ok(mut c) = serde_json::from_str::<AppCredentials>(text) else {
                return Ok(None);
            };
            c.rotate_webhook_secret(new, now, overlap);
            (sealable(&c)?, c.previous_valid_until.unwrap_or(now))
        }
        Provider::Gitlab => {
            let Ok(mut c) = serde_json::from_str::<GitLabCredentials>(text) else {
                return Ok(None);
            };
            c.rotate_webhook_secret(new, now, overlap);
            (sealable(&c)?, c.previous_valid_until.unwrap_or(now))
        }
        Provider::Bitbucket => {
            let Ok(mut c) = serde_json::from_str::<BitbucketCredentials>(text) else {
                return Ok(None);
            };
            c.rotate_webhook_secret(new, now, overlap);
            (sealable(&c)?, c.previous_valid_until.unwrap_or(now))
        }
        _ => return Ok(None),
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
