//! GitHub, through a GitHub App (github.com, or GitHub Enterprise Server at its own API URL).
//!
//! - [`webhook`]: `X-Hub-Signature-256` verification and payload parsing (no I/O).
//! - [`api`]: the App's REST and GraphQL client (JWT, installation tokens, rate limits), the
//!   [`SourceProvider`](crate::SourceProvider) and [`FeedbackClient`](crate::FeedbackClient)
//!   implementations.
//!
//! Facts: `../shared/docs/providers.md` (GitHub section) and GitHub's REST OpenAPI description
//! (npm `@octokit/openapi`), against which the test server checks every request.

pub mod api;
pub mod manifest;
pub mod webhook;

use crate::webhook::WebhookSecrets;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// GitHub.com's REST API root; a GitHub Enterprise Server connection uses
/// `https://<host>/api/v3` instead.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// A GitHub App's credentials, as a connection stores them (sealed at rest by picket-db) and as
/// the API accepts them. `Debug` redacts the key and the secrets.
#[derive(Clone, Serialize, Deserialize)]
pub struct AppCredentials {
    /// The App's id (GitHub: "App ID", a number).
    pub app_id: u64,
    /// The App's private key, PEM (`-----BEGIN RSA PRIVATE KEY-----` as GitHub issues it).
    #[serde(serialize_with = "crate::registry::expose")]
    pub private_key: SecretString,
    /// The App's webhook secret.
    #[serde(serialize_with = "crate::registry::expose")]
    pub webhook_secret: SecretString,
    /// The secret before the last rotation, accepted until `previous_valid_until`.
    #[serde(
        default,
        serialize_with = "crate::registry::expose_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_webhook_secret: Option<SecretString>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_valid_until: Option<OffsetDateTime>,
}

impl AppCredentials {
    /// The webhook secrets this connection accepts.
    pub fn webhook_secrets(&self) -> WebhookSecrets {
        WebhookSecrets::stored(
            &self.webhook_secret,
            self.previous_webhook_secret.as_ref(),
            self.previous_valid_until,
        )
    }

    /// Replaces the webhook secret, keeping the current one valid until `now + overlap`.
    pub fn rotate_webhook_secret(
        &mut self,
        new: SecretString,
        now: OffsetDateTime,
        overlap: time::Duration,
    ) {
        WebhookSecrets::rotate_stored(
            &mut self.webhook_secret,
            &mut self.previous_webhook_secret,
            &mut self.previous_valid_until,
            new,
            now,
            overlap,
        )
    }
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.app_id)
            .field("private_key", &"[redacted]")
            .field("webhook_secret", &"[redacted]")
            .field("previous_valid_until", &self.previous_valid_until)
            .finish()
    }
}
