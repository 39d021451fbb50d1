//! The GitHub App's REST and GraphQL client.
//!
//! - [`GitHubApp`] is a connection's [`SourceProvider`](crate::SourceProvider): it holds the App's
//!   id and private key, authenticates to `/app/...` with an RS256 JWT (octocrab signs it: `iss` =
//!   App id, `iat` 60 s in the past, `exp` 9 minutes ahead), and everywhere else with installation
//!   tokens it mints and caches per installation until 5 minutes before they expire. Credentials
//!   it mints for a scan ([`mint_credential`](crate::SourceProvider::mint_credential)) are never
//!   cached.
//! - [`GitHubFeedback`] is one scan's [`FeedbackClient`](crate::FeedbackClient), built from the
//!   installation token minted for that scan and repository.
//!
//! Both talk to the connection's API root (`https://api.github.com`, or a GitHub Enterprise
//! Server's `https://<host>/api/v3`, whose GraphQL endpoint is `https://<host>/api/graphql`),
//! trust the platform's roots plus the operator's extra CA certificates (`PICKET_CA_BUNDLE`), wait
//! out rate limits within [`ClientOptions::retry`]'s budget, retry 5xx twice, and count every HTTP
//! request they send ([`api_calls`](crate::SourceProvider::api_calls)).

mod feedback;
pub mod policy;
mod source;
mod transport;

pub use feedback::{GitHubFeedback, InlineOutcome, RefusedComment};
pub use policy::RetryPolicy;
pub use source::GitHubApp;

use rustls::pki_types::CertificateDer;
use std::time::Duration;

/// How a GitHub client reaches GitHub and how patient it is.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// REST root: [`DEFAULT_API_URL`](super::DEFAULT_API_URL) or `https://<host>/api/v3` (GitHub
    /// Enterprise Server). A path prefix is kept. Not a URL → [`ErrorCode::BadConfig`](crate::ErrorCode::BadConfig).
    pub api_url: String,
    /// CA certificates trusted besides the platform's (the operator's `PICKET_CA_BUNDLE`, DER).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Rate-limit waits and 5xx retries.
    pub retry: RetryPolicy,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Longest one request (sending it and reading its whole answer) may take; past it the
    /// attempt fails with [`ErrorCode::Unavailable`](crate::ErrorCode::Unavailable).
    pub request_timeout: Duration,
}

impl ClientOptions {
    /// Defaults for `api_url`: no extra roots; rate-limit waits up to 2 minutes per call,
    /// secondary limits backed off from 60 s (GitHub: "wait for at least one minute"), 5xx
    /// retried twice after 1 s and 2 s; 10 s to connect, 30 s per request.
    pub fn new(api_url: impl Into<String>) -> ClientOptions {
        ClientOptions {
            api_url: api_url.into(),
            extra_roots: Vec::new(),
            retry: RetryPolicy {
                max_wait: Duration::from_secs(120),
                secondary_backoff: Duration::from_secs(60),
                server_error_backoff: Duration::from_secs(1),
                server_error_retries: 2,
            },
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions::new(super::DEFAULT_API_URL)
    }
}
