//! One error type for every failure a request can meet, rendered as RFC 9457
//! `application/problem+json`.
//!
//! Handlers and extractors return [`ApiError`]; its `IntoResponse` writes `{type, title, status,
//! detail, code, errors?}` where `code` is a stable snake_case string clients can match on and
//! `errors` names the offending fields. Database errors convert with `?`: not found → 404,
//! unique violations → 409 with a code naming what already exists, check violations → 422.
//! Anything unexpected is logged here with its cause and shown only as a generic 500 `internal`,
//! so no internal detail (and no secret that might ride in one) reaches a client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use picket_db::DbError;
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field that was refused, by its path in the request (`projects[2].clone_url`, `limit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where: a JSON path into the body, a query parameter or a path parameter.
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:picket:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the problem type (the HTTP reason phrase).
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, for a person.
    pub detail: String,
    /// Stable snake_case code, for programs.
    pub code: String,
    /// The fields that were refused, when the problem is about the request's content.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// A failed request.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    /// Answer with a bearer challenge (`WWW-Authenticate`): a refused token ([`Self::unauthorized`]).
    bearer_challenge: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            bearer_challenge: false,
        }
    }

    /// Adds a refused field.
    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self
    }

    pub fn with_fields(mut self, fields: impl IntoIterator<Item = FieldError>) -> Self {
        self.errors.extend(fields);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 401 for a missing or refused bearer token, with the bearer challenge.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError {
            bearer_challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
        }
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this needs an admin token; the caller's token has the member role",
        )
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// The body parsed but a value in it is refused.
    pub fn invalid_body(field: impl Into<String>, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("{field}: {message}"),
        )
        .with_field(field, message)
    }

    pub fn invalid_query(field: impl Into<String>, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("query parameter {field}: {message}"),
        )
        .with_field(field, message)
    }

    pub fn invalid_path(field: impl Into<String>, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            format!("path parameter {field}: {message}"),
        )
        .with_field(field, message)
    }

    /// Something failed that the client cannot fix. The cause is logged, never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }

    /// The body of this error.
    pub fn problem(&self) -> Problem {
        Problem {
            type_: format!("urn:picket:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            errors: self.errors.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match serde_json::to_vec(&self.problem()) {
            Ok(body) => body,
            // Serializing strings and numbers cannot fail; keep a valid body regardless.
            Err(_) => br#"{"type":"urn:picket:problem:internal","title":"Internal Server Error","status":500,"detail":"internal error","code":"internal"}"#.to_vec(),
        };
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.bearer_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="picket""#),
            );
        }
        response
    }
}

/// What an existing row that blocks a write is, by the constraint that caught it.
fn conflict_of(constraint: &str) -> (&'static str, &'static str) {
    match constraint {
        "orgs_slug_key" => ("org_exists", "an org with this slug already exists"),
        "vcs_connections_org_id_name_key" => (
            "connection_exists",
            "the org already has a connection with this name",
        ),
        "projects_connection_id_provider_repo_id_key" => (
            "project_exists",
            "this repository was already added on this connection",
        ),
        "policies_org_id_name_key" => (
            "policy_exists",
            "the org already has a policy with this name",
        ),
        picket_db::connections::IN_USE => (
            "connection_in_use",
            "projects still use this connection; remove them first",
        ),
        _ => ("conflict", "conflicts with an existing object"),
    }
}

/// The request field a check constraint guards, for naming it in the response.
fn field_of(constraint: &str) -> &str {
    match constraint {
        "api_tokens_expires_at_future" => "expires_at",
        picket_db::findings::DUPLICATE_IN_BATCH => "findings",
        // Request fields are validated before any write, so a table CHECK firing is a backstop:
        // name the constraint itself.
        _ => constraint,
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => ApiError::not_found("object"),
            DbError::Conflict { constraint } => {
                let (code, detail) = conflict_of(&constraint);
                ApiError::conflict(code, detail)
            }
            DbError::Invalid { constraint } => {
                ApiError::invalid_body(field_of(&constraint), format!("violates {constraint}"))
            }
            other => ApiError::internal(&other),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        DbError::from(e).into()
    }
}

/// A provider call that failed on the provider's side: 503 when trying again later may work
/// (rate limited, unavailable, unreachable), else 502; the code is picket-vcs's stable one and
/// the detail the provider's message (never a credential). Logged too, in the request's span
/// (method, path, request id), so the operator sees the cause the client was given.
impl From<picket_vcs::VcsError> for ApiError {
    fn from(e: picket_vcs::VcsError) -> Self {
        let status = if e.code.is_transient() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_GATEWAY
        };
        tracing::warn!(code = e.code.as_str(), error = %e, status = status.as_u16(), "provider call failed");
        ApiError::new(status, e.code.as_str(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_names_map_to_fields_and_codes() {
        assert_eq!(field_of("orgs_name_check"), "orgs_name_check");
        assert_eq!(field_of("api_tokens_expires_at_future"), "expires_at");
        assert_eq!(
            conflict_of("vcs_connections_org_id_name_key").0,
            "connection_exists"
        );
        assert_eq!(
            conflict_of(picket_db::connections::IN_USE).0,
            "connection_in_use"
        );
        assert_eq!(conflict_of("whatever").0, "conflict");
    }

    #[test]
    fn problems_carry_type_title_and_code() {
        let p = ApiError::invalid_query("limit", "must be 1-500").problem();
        assert_eq!(p.type_, "urn:picket:problem:invalid_query");
        assert_eq!(p.title, "Bad Request");
        assert_eq!(p.status, 400);
        assert_eq!(p.errors[0].field, "limit");
    }
}
