//! End-to-end tests of the API: real HTTP against a real PostgreSQL database per test.
//!
//! One binary, one module per concern. `cross_org` walks the OpenAPI document and fails when a
//! route is added without an isolation check; `contract` runs schemathesis against a real
//! `picket run` and fails when a route does not do what the document says. `deploy` checks the Kubernetes manifests under
//! deploy/ offline (no database).

mod advisories;
mod auth;
mod azure;
mod azure_feedback;
mod bad_input;
mod bitbucket;
mod bitbucket_feedback;
mod browser;
mod ca_bundle;
mod connections;
mod contract;
mod cross_org;
mod deploy;
mod engine_reach;
mod feedback;
mod findings;
mod gitlab;
mod gitlab_feedback;
mod installations;
mod kubernetes;
mod onboarding;
mod ops;
mod org;
mod policies;
mod pr_feedback;
mod projects;
mod rule_packs;
mod running;
mod sarif;
mod scans;
mod tokens;
mod triage;
mod web;
mod webhooks;
mod worker;
