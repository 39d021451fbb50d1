//! Integration tests of picket-db against real PostgreSQL: one fresh database per test.
//! Needs `DATABASE_URL` pointing at a server where the user may create databases.

mod advisories;
mod findings;
mod fixtures;
mod migrations;
mod queue;
mod reconcile;
mod schedule;
mod wake;
