//! Azure DevOps Services (`https://dev.azure.com/{organization}`).
//!
//! - [`webhook`]: authenticating service-hook deliveries (the Web Hooks consumer's Basic
//!   authentication, with a random password Picket generates per connection and keeps only the
//!   hash of) and parsing pull request and pull request comment events into provider-neutral
//!   events (no I/O).
//! - [`api`]: the REST client: a connection's [`SourceProvider`](crate::SourceProvider)
//!   (connection data, the project's Git repositories, refs, merge bases, pull requests and their
//!   iterations, pushes, service-hook subscriptions) and a pull request's
//!   [`FeedbackClient`](crate::FeedbackClient) (threads with a right-hand file position, the
//!   summary thread, commit statuses).
//!
//! A connection is one project of one organization: the organization is the last segment of the
//! connection's base URL (which must be given: there is no default), the project is in its
//! [`AzureCredentials`].
//!
//! Facts: `../shared/docs/providers.md` (Azure DevOps section) and Azure DevOps's REST API
//! reference; the Azure DevOps test server checks every request against the route templates,
//! methods and api-versions of the pinned npm `azure-devops-extension-api` (`tests/azure/`).

pub mod api;
pub mod webhook;

use crate::webhook::WebhookSecrets;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// Personal access token scopes Picket needs (Azure DevOps docs, "Scopes"): `vso.code` to read
/// repositories, pull requests and pushes and to clone; `vso.code_status` for commit statuses;
/// `vso.threads_full` for pull request threads; `vso.hooks_write` to create the service-hook
/// subscriptions ([`api::Azure::ensure_subscriptions`]).
pub const NEEDED_SCOPES: &[&str] = &[
    "vso.code",
    "vso.code_status",
    "vso.threads_full",
    "vso.hooks_write",
];

/// An Azure DevOps connection's credentials, as it stores them (sealed at rest by picket-db) and
/// as the API accepts them. `Debug` redacts the token and the password hashes.
#[derive(Clone, Serialize, Deserialize)]
pub struct AzureCredentials {
    /// A personal access token with [`NEEDED_SCOPES`], sent as the password of HTTP Basic
    /// authentication (REST and git alike).
    #[serde(serialize_with = "crate::registry::expose")]
    pub pat: SecretString,
    /// The lowercase hex SHA-256 of the service hooks' Basic authentication password
    /// ([`webhook::password_hash`]): what [`webhook::verify`] checks deliveries against. The
    /// password itself is shown once and never stored.
    #[serde(serialize_with = "crate::registry::expose")]
    pub webhook_password_hash: SecretString,
    /// The hash before the last rotation, accepted until `previous_valid_until`.
    #[serde(
        default,
        serialize_with = "crate::registry::expose_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_webhook_password_hash: Option<SecretString>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_valid_until: Option<OffsetDateTime>,
    /// The project (name or id) whose Git repositories the connection lists.
    pub project: String,
}

impl AzureCredentials {
    /// The password hashes this connection accepts on deliveries (each
    /// [`WebhookSecrets`] secret holds a hash, as [`webhook::verify`] expects).
    pub fn webhook_secrets(&self) -> WebhookSecrets {
        WebhookSecrets::stored(
            &self.webhook_password_hash,
            self.previous_webhook_password_hash.as_ref(),
            self.previous_valid_until,
        )
    }

    /// Replaces the password hash with `new_hash` (of a password from
    /// [`webhook::generate_password`]), keeping the current one valid until `now + overlap`
    /// while the subscriptions learn the new password
    /// ([`api::Azure::ensure_subscriptions`]).
    pub fn rotate_webhook_password(
        &mut self,
        new_hash: SecretString,
        now: OffsetDateTime,
        overlap: time::Duration,
    ) {
        WebhookSecrets::rotate_stored(
            &mut self.webhook_password_hash,
            &mut self.previous_webhook_password_hash,
            &mut self.previous_valid_until,
            new_hash,
            now,
            overlap,
        )
    }
}

impl fmt::Debug for AzureCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureCredentials")
            .field("pat", &"[redacted]")
            .field("webhook_password_hash", &"[redacted]")
            .field("previous_valid_until", &self.previous_valid_until)
            .field("project", &self.project)
            .finish()
    }
}
