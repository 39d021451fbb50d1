//! The pull request check's lifecycle: what the provider should show for one PR scan.
//!
//! The control plane owns every state of the check except the worker's final result
//! (docs/architecture.md, "Pull requests"): it creates the check `queued`, moves it
//! `in_progress` when the worker runs, and completes it when no worker result will come in time.
//! [`wanted`] is the one rule for what the check should show, from the scan's state, the org's
//! fail-open deadline and whether the worker reported; the control plane's loop compares it with
//! what the provider last confirmed and moves the check forward only ([`CheckPhase::rank`]).
//!
//! Fail open (domain.md §1): a PR scan that has not finished by the org's deadline (default
//! 10 min, 1-60), or that failed, never blocks a merge: its check completes `success` with a
//! note. A scan superseded by a newer push, or cancelled, completes `neutral` (both pass a
//! required check on GitHub, where `cancelled` would not).

use crate::scan::ScanState;
use serde::{Deserialize, Serialize};

/// What the check shows, in the order it may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckPhase {
    /// Created; the scan waits for a worker.
    Queued,
    /// A worker runs the scan.
    InProgress,
    /// Completed by the worker with the scan's result (success, or failure on a new Block
    /// finding). Final.
    Reported,
    /// Completed `success` by the control plane: the scan failed or passed the org's deadline.
    /// Final: a late result may add comments but never fails the check.
    FailedOpen,
    /// Completed `neutral`: a newer head of the PR replaced this scan. Final.
    Superseded,
    /// Completed `neutral`: the scan was cancelled on request. Final.
    Cancelled,
}

impl CheckPhase {
    pub const ALL: [CheckPhase; 6] = [
        CheckPhase::Queued,
        CheckPhase::InProgress,
        CheckPhase::Reported,
        CheckPhase::FailedOpen,
        CheckPhase::Superseded,
        CheckPhase::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckPhase::Queued => "queued",
            CheckPhase::InProgress => "in_progress",
            CheckPhase::Reported => "reported",
            CheckPhase::FailedOpen => "failed_open",
            CheckPhase::Superseded => "superseded",
            CheckPhase::Cancelled => "cancelled",
        }
    }

    /// Whether the check is completed: nothing moves it any more.
    pub fn is_final(self) -> bool {
        self.rank() == 2
    }

    /// 0 queued, 1 in progress, 2 completed. A check only moves to a higher rank.
    pub fn rank(self) -> u8 {
        match self {
            CheckPhase::Queued => 0,
            CheckPhase::InProgress => 1,
            _ => 2,
        }
    }
}

impl std::str::FromStr for CheckPhase {
    type Err = crate::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckPhase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| crate::ParseError {
                what: "check phase",
                value: s.to_owned(),
                expected: "queued | in_progress | reported | failed_open | superseded | cancelled",
            })
    }
}

/// Why a scan was cancelled, as `scans.error_code` records it.
pub const SUPERSEDED: &str = "superseded";

/// What the check of a PR scan should show now.
///
/// - `state`, `error_code`: the scan's state and, for a cancelled scan, why ([`SUPERSEDED`]).
/// - `past_deadline`: the org's fail-open deadline (scan queued + `pr_scan_timeout_secs`) has
///   passed.
/// - `reported`: the worker completed the check with its result.
pub fn wanted(
    state: ScanState,
    error_code: Option<&str>,
    past_deadline: bool,
    reported: bool,
) -> CheckPhase {
    if reported {
        return CheckPhase::Reported;
    }
    match state {
        ScanState::Cancelled if error_code == Some(SUPERSEDED) => CheckPhase::Superseded,
        ScanState::Cancelled => CheckPhase::Cancelled,
        ScanState::Failed | ScanState::TimedOut => CheckPhase::FailedOpen,
        // Succeeded without the worker's report: its feedback did not finish; until the
        // control plane finishes it from the stored results, the deadline rules.
        _ if past_deadline => CheckPhase::FailedOpen,
        ScanState::Queued | ScanState::Claimed => CheckPhase::Queued,
        ScanState::Running | ScanState::Reporting | ScanState::Succeeded => CheckPhase::InProgress,
    }
}

/// The next phase to show, given what the provider shows now (`None`: no check yet): the wanted
/// one when it is ahead, else nothing to do. A check never moves back, and a final one never
/// changes (so a result that arrives after fail-open cannot turn the check red).
pub fn next(shown: Option<CheckPhase>, wanted: CheckPhase) -> Option<CheckPhase> {
    match shown {
        None => Some(wanted),
        Some(s) if s.is_final() => None,
        Some(s) if wanted.rank() > s.rank() => Some(wanted),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_follows_the_scan_until_the_deadline() {
        use ScanState::*;
        assert_eq!(wanted(Queued, None, false, false), CheckPhase::Queued);
        assert_eq!(wanted(Claimed, None, false, false), CheckPhase::Queued);
        assert_eq!(wanted(Running, None, false, false), CheckPhase::InProgress);
        assert_eq!(
            wanted(Reporting, None, false, false),
            CheckPhase::InProgress
        );
        for s in [Queued, Claimed, Running, Reporting, Succeeded] {
            assert_eq!(
                wanted(s, None, true, false),
                CheckPhase::FailedOpen,
                "{s:?}"
            );
        }
        for s in [Failed, TimedOut] {
            assert_eq!(
                wanted(s, Some("engine_failed"), false, false),
                CheckPhase::FailedOpen
            );
        }
        assert_eq!(
            wanted(Cancelled, Some(SUPERSEDED), false, false),
            CheckPhase::Superseded
        );
        assert_eq!(
            wanted(Cancelled, Some("cancelled"), true, false),
            CheckPhase::Cancelled
        );
        for s in ScanState::ALL {
            assert_eq!(wanted(s, None, true, true), CheckPhase::Reported);
        }
    }

    #[test]
    fn a_check_only_moves_forward_and_a_final_one_never_changes() {
        for shown in CheckPhase::ALL {
            for want in CheckPhase::ALL {
                let n = next(Some(shown), want);
                if shown.is_final() {
                    assert_eq!(n, None, "{shown:?} → {want:?}");
                } else if let Some(n) = n {
                    assert!(n.rank() > shown.rank());
                    assert_eq!(n, want);
                } else {
                    assert!(want.rank() <= shown.rank());
                }
            }
            assert_eq!(next(None, shown), Some(shown));
            assert_eq!(shown.as_str().parse::<CheckPhase>(), Ok(shown));
        }
        // A late result after fail-open: nothing to do, the check stays green.
        assert_eq!(
            next(Some(CheckPhase::FailedOpen), CheckPhase::Reported),
            None
        );
    }
}
