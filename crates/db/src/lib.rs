//! All of Picket's SQL.
//!
//! Every query is a function taking an executor (`impl PgExecutor<'_>`), so callers choose between
//! the pool and a transaction; [`Db`] is the cloneable facade the API and the scheduler hold. The one
//! [`MIGRATOR`] embeds the top-level `migrations/` directory. Queries are compile-checked against
//! the schema (`query!`), with the offline data committed under `.sqlx/`.
//!
//! Module map: [`installation`] (this installation's identity), [`queue`] (claim, lease, fenced transitions, rescue, listening for wake-ups), [`wake`] (when wake-ups are sent), [`schedule`] (weekly
//! scans), [`crypto`] (credentials at rest), [`worker`] (the worker protocol: per-scan tokens,
//! spec, clone credential, results), [`webhooks`] (the delivery log and what deliveries change),
//! [`reconcile`] (the reconcile sweep's turns), [`triage`] (triage requests from pull-request
//! replies), [`manifests`] (states of GitHub's App manifest flow), [`sessions`] (the web UI's sessions and sign-in links), [`scan_logs`] (each scan's worker log), [`overview`] (the web UI's page queries), [`inventory`] (what each connection can see), [`advisories`] (Supply Chain's OSV records, shared by every org, and their import state), and one module per table family for the API.

pub mod advisories;
pub mod attempts;
pub mod connections;
pub mod crypto;
pub mod findings;
pub mod installation;
pub mod inventory;
pub mod manifests;
pub mod orgs;
pub mod overview;
pub mod policies;
pub mod pr_checks;
pub mod projects;
pub mod queue;
pub mod reconcile;
pub mod rule_packs;
pub mod scan_logs;
pub mod scans;
pub mod schedule;
pub mod sessions;
pub mod tokens;
pub mod triage;
pub mod types;
pub mod wake;
pub mod webhooks;
pub mod worker;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

/// The schema, embedded from the top-level `migrations/` directory.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Errors of the data layer. Constraint violations are surfaced by name so the API can map them to
/// 409/422 without string-matching messages.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("conflicts with an existing row ({constraint})")]
    Conflict { constraint: String },
    #[error("violates {constraint}")]
    Invalid { constraint: String },
    /// A fenced update matched no row: the caller's lease is gone and it must stop without effects.
    #[error("the lease on this scan was lost")]
    LeaseLost,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error("database error: {0}")]
    Sqlx(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => DbError::NotFound,
            sqlx::Error::Database(db) => {
                let constraint = db.constraint().unwrap_or_default().to_owned();
                match db.kind() {
                    sqlx::error::ErrorKind::UniqueViolation => DbError::Conflict { constraint },
                    sqlx::error::ErrorKind::ForeignKeyViolation
                    | sqlx::error::ErrorKind::CheckViolation
                    | sqlx::error::ErrorKind::NotNullViolation => DbError::Invalid { constraint },
                    _ => DbError::Sqlx(e),
                }
            }
            _ => DbError::Sqlx(e),
        }
    }
}

/// A connection (or a transaction, through `&mut *tx`) that picket-db's functions take.
pub use sqlx::PgConnection;

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// The cloneable handle to the database that services hold.
#[derive(Debug, Clone)]
pub struct Db {
    pool: PgPool,
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// A `postgres://` URL; for a unix socket use `?host=/path/to/dir`.
    pub url: String,
    pub max_connections: u32,
    /// How long to wait for a pooled connection before failing a request.
    pub acquire_timeout: Duration,
}

impl DbConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl Db {
    /// Connects a pool (lazily checked: the first query reports an unreachable server).
    pub async fn connect(cfg: &DbConfig) -> Result<Db> {
        let opts = PgConnectOptions::from_str(&cfg.url)?.application_name("picket");
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(cfg.acquire_timeout)
            .connect_with(opts)
            .await?;
        Ok(Db { pool })
    }

    pub fn from_pool(pool: PgPool) -> Db {
        Db { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies every pending migration. Safe to run concurrently: sqlx takes an advisory lock.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Readiness: a round trip to the server.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
