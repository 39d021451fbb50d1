//! `/api/v1/tokens`: the org's API tokens. Admin only: a member could otherwise learn who holds
//! which tokens. A new token is in the create response and nowhere else, ever.

use crate::constraints;
use crate::error::{ApiError, Problem};
use crate::extract::{Admin, ApiJson, ApiPath};
use crate::routes::not_found_as;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use picket_core::Role;
use picket_core::TokenId;
use picket_db::tokens::{self, TokenRecord};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// A token's metadata. The token itself is never stored, so it cannot be shown again.
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    pub id: Uuid,
    pub name: String,
    #[schema(schema_with = crate::schema::role)]
    pub role: Role,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<TokenRecord> for Token {
    fn from(t: TokenRecord) -> Self {
        Token {
            id: t.id.0,
            name: t.name,
            role: t.role,
            prefix: t.prefix,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<Token>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// 1-200 characters, to tell tokens apart.
    #[schema(schema_with = constraints::name)]
    pub name: String,
    #[schema(schema_with = crate::schema::role)]
    pub role: Role,
    /// Days until the token stops working, 1-3650; omit (or `null`) for no expiry. The
    /// answer's `expires_at` says when, to the second.
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    pub expires_in_days: Option<u16>,
}

/// Longest expiry a token may be created with, in days (ten years).
pub const MAX_EXPIRY_DAYS: u16 = 3650;

/// A new token: `token` is shown here once and never again.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// The bearer token (`pkt_` + 43 characters). Store it now: only its hash is kept.
    pub token: String,
    #[serde(flatten)]
    pub meta: Token,
}

// The token must not reach a log through a stray `{:?}`.
impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("token", &"[REDACTED]")
            .field("meta", &self.meta)
            .finish()
    }
}

/// List the org's tokens (admin).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses(
        (status = 200, body = TokenList),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_tokens(
    Admin(caller): Admin,
    State(state): State<AppState>,
) -> Result<Json<TokenList>, ApiError> {
    let tokens = tokens::list(state.db().pool(), caller.org_id).await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(Into::into).collect(),
    }))
}

/// Create a token (admin). The response holds the token; it is never shown again.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body = CreateToken,
    responses(
        (status = 201, body = CreatedToken),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_token(
    Admin(caller): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    constraints::NAME.check("name", &body.name)?;
    let expires_at = match body.expires_in_days {
        None => None,
        Some(days @ 1..=MAX_EXPIRY_DAYS) => {
            Some(OffsetDateTime::now_utc() + time::Duration::days(i64::from(days)))
        }
        Some(_) => {
            return Err(ApiError::invalid_body(
                "expires_in_days",
                format!("must be 1-{MAX_EXPIRY_DAYS}"),
            ))
        }
    };
    let (record, token) = tokens::create(
        state.db().pool(),
        caller.org_id,
        &body.name,
        body.role,
        expires_at,
    )
    .await?;
    tracing::info!(token_id = %record.id, role = %record.role, "token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: token.expose_secret().to_owned(),
            meta: record.into(),
        }),
    ))
}

/// Revoke a token (admin). Requests with it fail with 401 from then on. A token cannot revoke
/// itself (409 `own_token`): an admin revokes it with another admin token (or `picket admin
/// revoke-token`), so one request can never lock the caller out.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(ApiPath<TokenId>),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`own_token`: the token making the request", body = Problem, content_type = "application/problem+json"),
    ))]
async fn revoke_token(
    Admin(caller): Admin,
    ApiPath(id): ApiPath<TokenId>,
    State(state): State<AppState>,
) -> Result<StatusCode, ApiError> {
    if id == caller.token_id {
        return Err(ApiError::conflict(
            "own_token",
            "a token cannot revoke itself; revoke it with another admin token",
        ));
    }
    tokens::revoke(state.db().pool(), caller.org_id, id)
        .await
        .map_err(|e| not_found_as(e, "token"))?;
    tracing::info!(token_id = %id, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}
