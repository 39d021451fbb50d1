//! OSV advisories (<https://ossf.github.io/osv-schema/>), free of I/O: the record model, the
//! version order of each [`picket_core::Ecosystem`], and whether an installed version of a
//! package is affected by a record (`versions[]`, and `SEMVER` / `ECOSYSTEM` ranges with
//! `introduced`, `fixed`, `last_affected` and `limit`; `GIT` ranges are skipped without
//! abandoning the entry).
//!
//! The control plane stores and syncs records (picket-db, picket-cli); the worker reads
//! lockfiles (picket-lockfile); this crate decides what matches.
