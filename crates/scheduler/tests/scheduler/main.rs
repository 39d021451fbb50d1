//! picket-scheduler's integration tests, one binary: the dispatch loop on real PostgreSQL with
//! plain-process workers, and the local sandbox for real (root).

mod advisories;
mod dispatch;
mod github;
mod pr_checks;
mod reconcile;
mod sandbox;
