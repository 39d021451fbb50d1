//! The periodic refresh of what each connection can see (`picket_db::inventory`), which the
//! Projects page's "Not scanning" tab lists as repositories not added yet.
//!
//! Every [`CHECK_EVERY`], the connections whose whole listing is older than
//! [`InventoryConfig::every`] (or was never read), oldest first and at most [`PER_PASS`] of them,
//! are listed through their provider ([`SourceProvider::all_repositories`]: GitHub lists the
//! installations, then each one's repositories 100 a page) and their inventory replaced. Plain
//! git connections are never listed. A connection Picket cannot list (a GitHub token instead of
//! an App) or whose listing fails is logged with the error's stable code and left alone for one
//! whole `every`, so a broken connection costs one attempt per period.

use picket_core::ConnectionId;
use picket_db::{inventory, Db, DbError};
use picket_vcs::provider::{Repository, SourceProvider};
use picket_vcs::Registry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the refresh looks for stale connections.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);
/// Most connections listed in one pass.
pub const PER_PASS: i64 = 10;

/// How the refresh runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryConfig {
    /// Age at which a connection's listing is read again; zero: never (the inventory then changes
    /// only when repositories are added, on the tab's Refresh, and through installation
    /// webhooks). Default 6 hours.
    pub every: Duration,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            every: Duration::from_secs(6 * 3600),
        }
    }
}

/// Refreshes stale inventories every [`CHECK_EVERY`] until `stop`; the first pass waits one
/// [`CHECK_EVERY`] so a starting Picket first serves its requests.
pub async fn run(db: Db, providers: Arc<Registry>, cfg: InventoryConfig, stop: CancellationToken) {
    if cfg.every.is_zero() {
        tracing::info!("repository inventory refresh off (PICKET_INVENTORY_REFRESH=0)");
        return;
    }
    let mut failed: HashMap<ConnectionId, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            done = refresh(&db, &providers, &cfg, &mut failed) => if let Err(e) = done {
                tracing::error!(error = %e, "repository inventory refresh failed");
            },
        }
    }
}

/// One pass: lists the stale connections not failed within `cfg.every`. Returns how many
/// inventories were replaced; fails only on a database error.
pub async fn refresh(
    db: &Db,
    providers: &Registry,
    cfg: &InventoryConfig,
    failed: &mut HashMap<ConnectionId, Instant>,
) -> Result<usize, DbError> {
    failed.retain(|_, at| at.elapsed() < cfg.every);
    let stale = inventory::stale(db.pool(), cfg.every, PER_PASS + failed.len() as i64).await?;
    let due: Vec<_> = stale
        .into_iter()
        .filter(|(_, c)| !failed.contains_key(c))
        .take(PER_PASS as usize)
        .collect();
    let mut replaced = 0;
    for (org, connection) in due {
        let listed = match list(providers, connection).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(connection = %connection, code = e.code.as_str(), error = %e,
                    "a connection's repositories could not be listed");
                failed.insert(connection, Instant::now());
                continue;
            }
        };
        let mut tx = db.pool().begin().await?;
        match inventory::replace(&mut tx, org, connection, &listed).await {
            Ok(()) => {
                tx.commit().await?;
                replaced += 1;
                tracing::info!(connection = %connection, repositories = listed.len(),
                    "a connection's repositories were listed");
            }
            // Deleted meanwhile.
            Err(DbError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(replaced)
}

async fn list(
    providers: &Registry,
    connection: ConnectionId,
) -> Result<Vec<Repository>, picket_vcs::VcsError> {
    let source: Arc<dyn SourceProvider> = providers.source(connection).await?;
    source.all_repositories().await
}
