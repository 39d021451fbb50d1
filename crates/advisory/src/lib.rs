//! OSV advisories (<https://ossf.github.io/osv-schema/>), free of I/O: the record model, the
//! version order of each [`picket_core::Ecosystem`], and whether an installed version of a
//! package is affected by a record (`versions[]`, and `SEMVER` / `ECOSYSTEM` ranges with
//! `introduced`, `fixed`, `last_affected` and `limit`; `GIT` ranges are skipped without
//! abandoning the entry).
//!
//! The control plane stores and syncs records (picket-db, picket-cli); the worker reads
//! lockfiles (picket-lockfile); this crate decides what matches:
//!
//! ```text
//! JSON ──Record::from_json──► Record ──record_affects(record, name, &Version)──► bool
//!                               │            ▲
//!                               │            └── Version::parse(ecosystem, "1.2.3")
//!                               ├── group_aliases(records) ──► one group per vulnerability
//!                               ├── severity::rate(record, entry) ──► picket_core::Severity
//!                               └── PreparedRecord::new ──► match_packages(lockfile's packages)
//!                                      ──► one Match per (package, vulnerability group)
//! ```
//!
//! docs/supply-chain.md describes the rules and where each ecosystem's order comes from.

pub mod alias;
pub mod matcher;
pub mod matching;
pub mod osv;
pub mod severity;
pub mod version;

pub use alias::{group_aliases, VulnerabilityGroup};
pub use matcher::{
    finding_identity, match_packages, Installed, Match, MatcherError, Outcome, PackageError,
    PreparedRecord,
};
pub use matching::{affected, record_affects, MatchError};
pub use osv::{Affected, Event, Package, Range, RangeType, Record, RecordError};
pub use version::{compare, Version, VersionError};
