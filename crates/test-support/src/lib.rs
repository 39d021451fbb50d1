//! Fixtures for Picket's tests and benchmarks: bare git repositories built with
//! `git fast-import` ([`History`], [`bare_repo`]); a small smart-HTTP server that serves them with
//! `git upload-pack --stateless-rpc` ([`GitServer`]), over plain HTTP on the loopback interface
//! or over HTTPS on any listener; and a certificate authority made fresh by each test
//! ([`TestCa`]) for the HTTPS servers.
//!
//! Why not `file://`: libgit2's local transport refuses shallow fetches ("shallow fetch is not
//! supported by the local transport", pinned in picket-worker's clone tests), and registering a
//! custom transport for `file://` needs `unsafe`, which the workspace forbids. Over HTTP the
//! tests run the same smart protocol, shallow negotiation and credentials flow as production.
//!
//! [`github::GitHubServer`] stands in for GitHub's REST and GraphQL APIs (a GitHub App's view:
//! App JWTs, installation tokens, repositories, pull requests, checks, comments, reviews), with
//! fault injection and a validator of the requests it saw against GitHub's OpenAPI description.
//! [`gitlab::GitLabServer`] does the same for GitLab's REST API (v4) as an access token sees it
//! (projects, webhooks, merge requests, discussions, notes, statuses), checking requests against
//! the endpoints `@gitbeaker/core` calls.
//!
//! [`azure::AzureServer`] stands in for Azure DevOps Services' REST API (one organization and
//! project: connection data, Git repositories, pull requests with iterations, threads, commit
//! statuses, pushes, service-hook subscriptions), with fault injection and a validator of the
//! requests it saw against the route table of Azure's own REST clients.
//!
//! [`bitbucket::BitbucketServer`] does the same for Bitbucket Cloud's REST API (a workspace
//! access token's view: repositories, pull requests, comments, Code Insights reports, build
//! statuses, hooks, permissions), checking requests against npm `bitbucket`'s route table.
//!
//! Used by picket-worker's tests (a dev-dependency) and picket-bench's clone benchmark; the
//! `picket` binary never links it.

// The GitHub test server builds GitHub's large JSON objects with `serde_json::json!`.
#![recursion_limit = "256"]

pub mod azure;
pub mod bitbucket;
pub mod github;
pub mod gitlab;
mod history;
mod server;
pub mod tls;

pub use history::{bare_repo, delete, file, git, link, noise, run, Change, History};
pub use server::{GitServer, ServerConfig, ServerStats};
pub use tls::TestCa;
