//! picket-vcs integration tests: one binary, a module per area.

mod api;
mod azure_api;
mod azure_webhook;
mod bitbucket_api;
mod bitbucket_webhook;
mod gitlab_api;
mod gitlab_webhook;
mod manifest;
mod webhook;

use picket_vcs::client::{ClientOptions, RetryPolicy};
use std::time::Duration;

/// Client options for a test against a local server: rate-limit waits budgeted at 10 s,
/// backoffs in milliseconds.
pub(crate) fn options(api_url: &str) -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            max_wait: Duration::from_secs(10),
            secondary_backoff: Duration::from_millis(50),
            server_error_backoff: Duration::from_millis(20),
            server_error_retries: 2,
        },
        request_timeout: Duration::from_secs(10),
        ..ClientOptions::new(api_url)
    }
}
