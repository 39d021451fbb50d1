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

pub use crate::client::{ClientOptions, RetryPolicy};
pub use feedback::{GitHubFeedback, InlineOutcome, RefusedComment};
pub use source::GitHubApp;

/// `POST path` without credentials (the manifest conversion), decoded as JSON.
pub(crate) async fn unauthenticated_post<T: serde::de::DeserializeOwned>(
    options: &ClientOptions,
    path: &str,
) -> crate::Result<T> {
    let http = transport::Http::new(options, octocrab::AuthState::None)?;
    http.json(&transport::Cred::Own, http::Method::POST, path, None)
        .await
}
