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
