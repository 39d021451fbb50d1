//! All of Picket's source-provider I/O.
//!
//! One interface, [`SourceProvider`] (what the control plane asks of a connection) and
//! [`FeedbackClient`] (what a scan posts on its pull request), that the four providers implement;
//! GitHub (an App: JWT, installation tokens, REST and GraphQL, on octocrab) is the first. Webhooks
//! are verified over their raw bytes (or, for Azure DevOps, which signs nothing, by their Basic
//! authentication) and parsed into provider-neutral [`event`]s by each provider's module
//! ([`github::webhook`], [`gitlab::webhook`], [`bitbucket::webhook`], [`azure::webhook`]),
//! without I/O, so the receiving route can answer within milliseconds.
//!
//! Every call honours the provider's rate limits and maps its errors to the stable
//! [`ErrorCode`]s of [`VcsError`]; nothing here logs or returns a credential.

pub mod azure;
pub mod bitbucket;
pub mod client;
pub mod error;
pub mod event;
pub mod feedback;
pub mod github;
pub mod gitlab;
pub mod provider;
pub mod registry;
pub(crate) mod rest;
pub mod webhook;

pub use error::{ErrorCode, VcsError};
pub use event::WebhookEvent;
pub use provider::{FeedbackClient, SourceProvider};
pub use registry::{CredentialStore, Registry, StoredConnection};

/// Result of provider I/O.
pub type Result<T, E = VcsError> = std::result::Result<T, E>;
