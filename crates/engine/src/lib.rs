//! The Semgrep engine, shared by the worker (which scans with it) and the API (which validates
//! the rule packs orgs upload with it, so that a pack accepted is a pack the worker can load).
//!
//! - [`semgrep`]: one invocation of the pinned `semgrep` CLI over local rules, parsed into
//!   engine findings;
//! - [`rulepack`]: what a rule pack holds (rule ids, languages), and its validation;
//! - [`targets`]: which files a scan looks at (`.semgrepignore` semantics, applied by Picket);
//! - [`nosem`]: which findings a `nosemgrep` comment suppresses (applied by Picket).

pub mod nosem;
pub mod rulepack;
pub mod semgrep;
pub mod targets;
