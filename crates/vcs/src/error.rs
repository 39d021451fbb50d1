//! Provider errors, mapped to stable codes.
//!
//! A provider's own status and message are kept for operators (`message` never holds a
//! credential: request URLs and headers are not copied into it), and the [`ErrorCode`] is what
//! callers branch on and what the API's problem documents carry.

use serde::Serialize;
use std::time::Duration;

/// What went wrong talking to a provider, stable across providers and releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The credential was refused (HTTP 401): wrong App id or key, revoked or expired token.
    Unauthorized,
    /// The credential is valid but lacks a permission, or the resource is outside its grant
    /// (HTTP 403 without the signs of a rate limit).
    Forbidden,
    /// The resource does not exist or is not visible to the credential (HTTP 404).
    NotFound,
    /// Rate limited (primary or secondary limit) and the wait would pass the caller's deadline.
    RateLimited,
    /// The provider refused the request's content (HTTP 422, or 400).
    Rejected,
    /// The provider answered 5xx or did not answer in time: worth trying again later.
    Unavailable,
    /// The provider could not be reached (DNS, TCP, TLS).
    Unreachable,
    /// The provider's answer did not have the documented shape.
    BadResponse,
    /// The connection's own configuration is unusable (a private key that is not PEM, a base URL
    /// that is not a URL).
    BadConfig,
}

impl ErrorCode {
    /// The code as it appears in problem documents, prefixed so it reads as a provider fault:
    /// `provider_unauthorized`, `provider_rate_limited`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "provider_unauthorized",
            ErrorCode::Forbidden => "provider_forbidden",
            ErrorCode::NotFound => "provider_not_found",
            ErrorCode::RateLimited => "provider_rate_limited",
            ErrorCode::Rejected => "provider_rejected",
            ErrorCode::Unavailable => "provider_unavailable",
            ErrorCode::Unreachable => "provider_unreachable",
            ErrorCode::BadResponse => "provider_bad_response",
            ErrorCode::BadConfig => "provider_bad_config",
        }
    }

    /// Whether the same request may succeed later without anyone changing anything.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited | ErrorCode::Unavailable | ErrorCode::Unreachable
        )
    }
}

/// A failed provider call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct VcsError {
    pub code: ErrorCode,
    /// The provider's HTTP status, when it answered.
    pub status: Option<u16>,
    /// What the provider said (its `message`), or what Picket found wrong. Never a credential.
    pub message: String,
    /// How long the provider asked us to wait (`retry-after`, or until `x-ratelimit-reset`).
    pub retry_after: Option<Duration>,
}

impl VcsError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> VcsError {
        VcsError {
            code,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }
}
