//! Bitbucket Cloud (bitbucket.org).
//!
//! - [`webhook`]: verifying deliveries (`X-Hub-Signature`, HMAC-SHA256 of the body under the
//!   hook's secret) and parsing pull request and pull request comment events into
//!   provider-neutral events (no I/O).
//! - [`api`]: the REST 2.0 client: a connection's [`SourceProvider`](crate::SourceProvider)
//!   (the workspace's repositories, pull requests, merge bases, repository permissions, hooks,
//!   and the full hash behind a webhook's abbreviated one) and a pull request's
//!   [`FeedbackClient`](crate::FeedbackClient) (pull request comments, a Code Insights report
//!   with annotations, a build status when Code Insights is not available).
//!
//! Facts: `../shared/docs/providers.md` (Bitbucket section) and Bitbucket Cloud's REST API
//! documentation, whose route table (npm `bitbucket` 2.12.0, `lib/index.js`) the Bitbucket test
//! server checks every request against.

pub mod api;
pub mod webhook;

use crate::webhook::WebhookSecrets;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// Bitbucket Cloud's REST root.
pub const DEFAULT_API_URL: &str = "https://api.bitbucket.org/2.0";

/// Access token scopes Picket needs (Bitbucket Cloud docs, "Workspace Access Token
/// permissions"; the names are those of the `X-OAuth-Scopes` header): `pullrequest:write` to
/// read pull requests and write their comments (it implies `pullrequest`, which implies
/// `repository`, the clone), and `webhook` to register the hook. Reports and build statuses are
/// covered by `repository`. [`api::Bitbucket`]'s `has_write_access` also needs
/// `repository:admin` (repository permissions); without it that one call answers `Forbidden`.
pub const NEEDED_SCOPES: &[&str] = &["repository", "pullrequest:write", "webhook"];

/// A Bitbucket Cloud connection's credentials, as it stores them (sealed at rest by picket-db)
/// and as the API accepts them. `Debug` redacts the token and the secrets.
#[derive(Clone, Serialize, Deserialize)]
pub struct BitbucketCredentials {
    /// A workspace (or project, or repository) access token with [`NEEDED_SCOPES`], sent as
    /// `Authorization: Bearer`.
    #[serde(serialize_with = "crate::registry::expose")]
    pub token: SecretString,
    /// The hooks' secret: Bitbucket signs each delivery with it ([`webhook::verify`]).
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
    /// The workspace whose repositories the connection lists, by its slug (the workspace ID in
    /// Bitbucket's URLs).
    pub workspace: String,
}

impl BitbucketCredentials {
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

impl fmt::Debug for BitbucketCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BitbucketCredentials")
            .field("token", &"[redacted]")
            .field("webhook_secret", &"[redacted]")
            .field("previous_valid_until", &self.previous_valid_until)
            .field("workspace", &self.workspace)
            .finish()
    }
}
