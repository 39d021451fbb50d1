//! Bitbucket Cloud (bitbucket.org).
//!
//! So far: [`webhook`], verifying deliveries (`X-Hub-Signature`, HMAC-SHA256 of the body under
//! the hook's secret) and parsing pull request and pull request comment events into
//! provider-neutral events. The API client (repositories, hooks, commit resolution of the
//! webhooks' abbreviated hashes, pull request comments, Code Insights reports, build statuses)
//! comes next.

pub mod webhook;
