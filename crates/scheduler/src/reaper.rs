//! The reaper: deletes every environment carrying Picket's marks that has no use any more.
//!
//! An environment is kept only while its scan exists, is active, is on the environment's
//! attempt, and the environment is younger than the scan deadline plus a grace period. Anything
//! else (a finished scan, an unknown one, an attempt that was retried, an environment without
//! readable marks, one past its deadline) is destroyed. It runs on start and periodically, so
//! after a crash of the scheduler nothing is left behind.

use crate::executor::{EnvRef, Executor};
use picket_db::{queue, Db};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reaped {
    pub kept: usize,
    pub destroyed: usize,
    pub failed: usize,
}

/// One pass: list, decide, destroy.
pub async fn reap<E: Executor>(db: &Db, executor: &E, max_age: Duration) -> Reaped {
    let envs = match executor.list().await {
        Ok(envs) => envs,
        Err(e) => {
            tracing::error!(error = %e, executor = executor.kind(), "listing environments failed");
            return Reaped::default();
        }
    };
    let ids: Vec<_> = envs.iter().filter_map(|e| e.scan.map(|(s, _)| s)).collect();
    let states = match queue::attempt_states(db.pool(), &ids).await {
        Ok(rows) => rows
            .into_iter()
            .map(|r| (r.scan_id, (r.attempt, r.state)))
            .collect::<HashMap<_, _>>(),
        Err(e) => {
            tracing::error!(error = %e, "reading scan states for the reaper failed");
            return Reaped::default();
        }
    };
    let now = SystemTime::now();
    let mut done = Reaped::default();
    for env in envs {
        let keep = keep(&env, &states, now, max_age);
        if keep {
            done.kept += 1;
            continue;
        }
        match executor.destroy(&env).await {
            Ok(()) => {
                tracing::info!(env = %env.name, "reaped a leftover environment");
                done.destroyed += 1;
            }
            Err(e) => {
                tracing::warn!(env = %env.name, error = %e, "reaping an environment failed");
                done.failed += 1;
            }
        }
    }
    done
}

fn keep(
    env: &EnvRef,
    states: &HashMap<picket_core::ScanId, (i32, picket_core::ScanState)>,
    now: SystemTime,
    max_age: Duration,
) -> bool {
    let Some((scan, attempt)) = env.scan else {
        return false;
    };
    let young = env
        .created
        .is_none_or(|c| now.duration_since(c).unwrap_or_default() <= max_age);
    matches!(states.get(&scan), Some((a, s)) if *a == attempt && s.is_active()) && young
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_core::{ScanId, ScanState};

    #[test]
    fn keeps_only_live_attempts_within_their_deadline() {
        let (live, done, retried) = (ScanId::new(), ScanId::new(), ScanId::new());
        let states = HashMap::from([
            (live, (1, ScanState::Running)),
            (done, (1, ScanState::Succeeded)),
            (retried, (2, ScanState::Claimed)),
        ]);
        let now = SystemTime::now();
        let env = |scan: Option<(ScanId, i32)>, age_secs: u64| EnvRef {
            name: "x".into(),
            scan,
            created: Some(now - Duration::from_secs(age_secs)),
        };
        let max = Duration::from_secs(100);
        assert!(keep(&env(Some((live, 1)), 10), &states, now, max));
        assert!(!keep(&env(Some((live, 1)), 101), &states, now, max));
        assert!(!keep(&env(Some((done, 1)), 10), &states, now, max));
        assert!(!keep(&env(Some((retried, 1)), 10), &states, now, max));
        assert!(keep(&env(Some((retried, 2)), 10), &states, now, max));
        assert!(!keep(&env(Some((ScanId::new(), 1)), 10), &states, now, max));
        assert!(!keep(&env(None, 10), &states, now, max));
    }
}
