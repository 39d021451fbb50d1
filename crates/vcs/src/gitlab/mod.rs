//! GitLab (gitlab.com and self-managed).
//!
//! So far: [`webhook`], authenticating deliveries (the hook's plain token, or a Standard Webhooks
//! signing token) and parsing merge request and note events into provider-neutral events. The
//! API client (projects, hooks, merge request versions, discussions, notes, commit statuses)
//! comes next (issue 11).

pub mod webhook;
