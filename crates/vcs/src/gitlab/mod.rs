//! GitLab (gitlab.com and self-managed, at their own base URL and, with `PICKET_CA_BUNDLE`, a
//! private CA).
//!
//! - [`webhook`]: authenticating deliveries (the hook's plain token, or a Standard Webhooks
//!   signing token) and parsing merge request and note events (no I/O).
//! - [`api`]: the REST v4 client: a connection's [`SourceProvider`](crate::SourceProvider)
//!   (projects of a group or of the token's memberships, merge requests, merge bases, members,
//!   hooks) and a merge request's [`FeedbackClient`](crate::FeedbackClient) (discussions with a
//!   text position, the summary note, commit statuses).
//!
//! Facts: `../shared/docs/providers.md` (GitLab section) and GitLab's REST API documentation,
//! whose endpoint templates (npm `@gitbeaker/core`) the GitLab test server checks every request
//! against.

pub mod api;
pub mod webhook;

use crate::webhook::WebhookSecrets;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// gitlab.com's REST root; a self-managed instance's is `https://<host>/api/v4`.
pub const DEFAULT_API_URL: &str = "https://gitlab.com/api/v4";

/// Token scopes Picket needs (GitLab docs, "Personal access token scopes"): `api` for statuses,
/// discussions, notes and hooks; `read_repository` to clone.
pub const NEEDED_SCOPES: &[&str] = &["api", "read_repository"];

/// A GitLab connection's credentials, as it stores them (sealed at rest by picket-db) and as the
/// API accepts them. `Debug` redacts the token and the secrets.
#[derive(Clone, Serialize, Deserialize)]
pub struct GitLabCredentials {
    /// A personal, group or project access token with [`NEEDED_SCOPES`].
    #[serde(serialize_with = "crate::registry::expose")]
    pub token: SecretString,
    /// The hook's secret token, or a signing token (`whsec_...`): see [`webhook::verify`].
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
    /// The group whose projects (subgroups included) the connection lists, by full path
    /// (`acme/platform`) or numeric id; `None`: every project the token is a member of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl GitLabCredentials {
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

impl fmt::Debug for GitLabCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitLabCredentials")
            .field("token", &"[redacted]")
            .field("webhook_secret", &"[redacted]")
            .field("previous_valid_until", &self.previous_valid_until)
            .field("group", &self.group)
            .finish()
    }
}
