//! The scan worker: what runs inside each scan's isolated environment.
//!
//! [`scan::run`] takes a [`picket_core::protocol::ScanSpec`] through [`clone`] (git2, only the
//! history the scan needs, into a directory deleted on every exit path), the [`semgrep`] engine
//! (Code and Secrets rules from the pack in `rules/`), [`identity`] (anchors and fingerprints)
//! and, for diff scans, the comparison with the merge base and the diff's commentable lines
//! ([`diff_lines`]); [`secrets`] keeps secret values from
//! ever leaving the worker. A pull request scan then posts its [`feedback`] (inline comments,
//! resolved threads, the summary) with the credential minted for it.

pub mod client;
pub mod clone;
pub mod diff_lines;
pub mod feedback;
pub mod identity;
pub mod run;
pub mod scan;
pub mod scanlog;
pub mod secrets;
pub mod supply_chain;
pub mod tls;
pub use picket_engine::{rulepack, semgrep};
