//! End-to-end tests of the API: real HTTP against a real PostgreSQL database per test.
//!
//! One binary, one module per concern. `cross_org` walks the OpenAPI document and fails when a
//! route is added without an isolation check. `deploy` checks the Kubernetes manifests under
//! deploy/ offline (no database).

mod auth;
mod bad_input;
mod connections;
mod cross_org;
mod deploy;
mod engine_reach;
mod findings;
mod installations;
mod kubernetes;
mod ops;
mod org;
mod policies;
mod projects;
mod rule_packs;
mod scans;
mod tokens;
mod worker;
