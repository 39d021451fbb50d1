//! picket-vcs integration tests: one binary, a module per area.

mod api;
mod gitlab_webhook;
mod manifest;
mod webhook;
