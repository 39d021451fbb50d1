//! `/api/v1/connections`: source-provider connections and their credentials.
//!
//! Credentials arrive in the create request as a JSON object or string, are held only in a
//! [`Credentials`] wrapper whose `Debug` redacts them, are serialized to JSON text inside a
//! `SecretString` and sealed by picket-db under the new row's id. No response carries them: a
//! connection shows `has_credentials` and nothing more.

use crate::constraints;
use crate::error::{ApiError, Problem};
use crate::extract::{Admin, ApiJson, ApiPath, Caller};
use crate::routes::not_found_as;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use picket_core::ConnectionId;
use picket_core::Provider;
use picket_db::connections::{self, ConnectionRecord, NewConnection};
use secrecy::SecretString;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
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
        .routes(routes!(get_connection, delete_connection))
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
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<ConnectionRecord> for Connection {
    fn from(c: ConnectionRecord) -> Self {
        Connection {
            id: c.id.0,
            provider: c.provider,
            name: c.name,
            base_url: c.base_url,
            has_credentials: c.has_credentials,
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
    /// `https://` or `http://` URL of the provider's API, for self-hosted instances.
    #[serde(default)]
    #[schema(schema_with = constraints::base_url)]
    pub base_url: String,
    #[serde(default)]
    #[schema(schema_with = crate::schema::credentials)]
    pub credentials: Option<Credentials>,
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
        connections: list.into_iter().map(Into::into).collect(),
    }))
}

/// Add a connection (admin). Credentials are encrypted at rest and never returned.
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections",
    request_body = CreateConnection,
    responses(
        (status = 201, body = Connection),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`connection_exists`: the org has a connection of that name", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_connection(
    Admin(caller): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateConnection>,
) -> Result<(StatusCode, Json<Connection>), ApiError> {
    constraints::NAME.check("name", &body.name)?;
    constraints::BASE_URL.check("base_url", &body.base_url)?;
    let credentials = match body.credentials {
        None => None,
        Some(Credentials(value)) => {
            let text = serde_json::to_string(&value).map_err(|e| ApiError::internal(&e))?;
            Some(SecretString::from(text))
        }
    };
    let new = NewConnection {
        org_id: caller.org_id,
        provider: body.provider,
        name: body.name,
        base_url: body.base_url,
        credentials,
    };
    let created = connections::create(state.db().pool(), state.cipher(), &new).await?;
    tracing::info!(connection_id = %created.id, provider = %created.provider, "connection created");
    Ok((StatusCode::CREATED, Json(created.into())))
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
    Ok(Json(c.into()))
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
    tracing::info!(connection_id = %id, "connection deleted");
    Ok(StatusCode::NO_CONTENT)
}
