//! Git fixtures for Picket's tests and benchmarks: bare repositories built with
//! `git fast-import` ([`History`], [`bare_repo`]) and a small smart-HTTP server on the loopback
//! interface that serves them with `git upload-pack --stateless-rpc` ([`GitServer`]).
//!
//! Why not `file://`: libgit2's local transport refuses shallow fetches ("shallow fetch is not
//! supported by the local transport", pinned in picket-worker's clone tests), and registering a
//! custom transport for `file://` needs `unsafe`, which the workspace forbids. Over HTTP the
//! tests run the same smart protocol, shallow negotiation and credentials flow as production.
//!
//! Used by picket-worker's tests (a dev-dependency) and picket-bench's clone benchmark; the
//! `picket` binary never links it.

mod history;
mod server;

pub use history::{bare_repo, delete, file, git, link, noise, run, Change, History};
pub use server::{GitServer, ServerConfig, ServerStats};
