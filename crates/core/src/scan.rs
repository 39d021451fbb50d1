//! Scans: what kind, why, and the state machine every scan moves along.
//!
//! ```text
//!            claim            start            report
//! queued ─────────► claimed ────────► running ────────► reporting ──► succeeded
//!   │  ▲               │                 │                  │
//!   │  └─── requeue ───┴─────────────────┴──────────────────┤   (lease lost or failed
//!   │                                                       │    with attempts left)
//!   └── cancel ──► cancelled ◄── cancel / failed / timed_out ┘
//! ```
//!
//! `succeeded`, `failed`, `cancelled` and `timed_out` are terminal: a finished scan is never
//! reopened; a re-run is a new scan. The database applies a move only when the row is in one of
//! [`ScanState::sources`] of the target, so the table below is the single source of truth.

use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Full scan of a branch, or diff-aware scan of a pull/merge request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanKind {
    Full,
    Diff,
}

impl ScanKind {
    pub const ALL: [ScanKind; 2] = [ScanKind::Full, ScanKind::Diff];

    pub fn as_str(self) -> &'static str {
        match self {
            ScanKind::Full => "full",
            ScanKind::Diff => "diff",
        }
    }

    /// How many times a scan of this kind may run before it stays failed. A full scan that fails is
    /// retried once (domain.md §1). A diff scan is not: the next push to the PR triggers a new one,
    /// and the PR check fails open after the org's timeout.
    pub fn max_attempts(self) -> i32 {
        match self {
            ScanKind::Full => 2,
            ScanKind::Diff => 1,
        }
    }
}

/// Why a scan was queued. Decides its priority in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanTrigger {
    Initial,
    Weekly,
    PullRequest,
    Bulk,
    Manual,
    Rerun,
    /// A pull request's head the reconcile sweep found unscanned (its webhook never arrived or
    /// was refused): scanned like a webhook's, told apart only by this trigger.
    Reconcile,
}

impl ScanTrigger {
    pub const ALL: [ScanTrigger; 7] = [
        ScanTrigger::Initial,
        ScanTrigger::Weekly,
        ScanTrigger::PullRequest,
        ScanTrigger::Bulk,
        ScanTrigger::Manual,
        ScanTrigger::Rerun,
        ScanTrigger::Reconcile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScanTrigger::Initial => "initial",
            ScanTrigger::Weekly => "weekly",
            ScanTrigger::PullRequest => "pull_request",
            ScanTrigger::Bulk => "bulk",
            ScanTrigger::Manual => "manual",
            ScanTrigger::Rerun => "rerun",
            ScanTrigger::Reconcile => "reconcile",
        }
    }

    /// Queue priority, lower runs first: a developer waiting on a PR comes before anything a
    /// person asked for by hand, which comes before the initial scan of a new project, which comes
    /// before the weekly background scans.
    pub fn priority(self) -> i16 {
        match self {
            ScanTrigger::PullRequest | ScanTrigger::Reconcile => 0,
            ScanTrigger::Manual | ScanTrigger::Bulk | ScanTrigger::Rerun => 1,
            ScanTrigger::Initial => 2,
            ScanTrigger::Weekly => 3,
        }
    }
}

/// Where a scan is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanState {
    Queued,
    Claimed,
    Running,
    Reporting,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
}

/// A move the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a scan cannot move from {from} to {to}")]
pub struct TransitionError {
    pub from: ScanState,
    pub to: ScanState,
}

impl ScanState {
    pub const ALL: [ScanState; 8] = [
        ScanState::Queued,
        ScanState::Claimed,
        ScanState::Running,
        ScanState::Reporting,
        ScanState::Succeeded,
        ScanState::Failed,
        ScanState::Cancelled,
        ScanState::TimedOut,
    ];

    /// States in which a scan holds a lease and counts against its org's concurrency cap.
    pub const ACTIVE: [ScanState; 3] =
        [ScanState::Claimed, ScanState::Running, ScanState::Reporting];

    pub fn as_str(self) -> &'static str {
        match self {
            ScanState::Queued => "queued",
            ScanState::Claimed => "claimed",
            ScanState::Running => "running",
            ScanState::Reporting => "reporting",
            ScanState::Succeeded => "succeeded",
            ScanState::Failed => "failed",
            ScanState::Cancelled => "cancelled",
            ScanState::TimedOut => "timed_out",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ScanState::Succeeded | ScanState::Failed | ScanState::Cancelled | ScanState::TimedOut
        )
    }

    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }

    /// The legal transitions. Every other pair is refused.
    pub fn can_move_to(self, to: ScanState) -> bool {
        use ScanState::*;
        match (self, to) {
            (Queued, Claimed | Cancelled) => true,
            // Back to the queue: the lease was lost, or the attempt failed with attempts left.
            (Claimed | Running | Reporting, Queued) => true,
            (Claimed, Running) => true,
            (Running, Reporting) => true,
            (Reporting, Succeeded) => true,
            (Claimed | Running | Reporting, Failed | Cancelled | TimedOut) => true,
            _ => false,
        }
    }

    /// Checks one move.
    pub fn move_to(self, to: ScanState) -> Result<ScanState, TransitionError> {
        if self.can_move_to(to) {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }

    /// Every state from which `to` may be entered: what a fenced `UPDATE ... WHERE state = ANY(..)`
    /// must match.
    pub fn sources(to: ScanState) -> Vec<ScanState> {
        Self::ALL
            .into_iter()
            .filter(|from| from.can_move_to(to))
            .collect()
    }
}

macro_rules! str_enum {
    ($ty:ty, $what:literal, $expected:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad` honours width and alignment, so tables can align these.
                f.pad(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| ParseError {
                        what: $what,
                        value: s.to_owned(),
                        expected: $expected,
                    })
            }
        }
    };
}
pub(crate) use str_enum;

str_enum!(ScanKind, "scan kind", "full | diff");
str_enum!(
    ScanTrigger,
    "scan trigger",
    "initial | weekly | pull_request | bulk | manual | rerun"
);
str_enum!(
    ScanState,
    "scan state",
    "queued | claimed | running | reporting | succeeded | failed | cancelled | timed_out"
);

#[cfg(test)]
mod tests {
    use super::ScanState::*;
    use super::*;

    /// The full table, written out by hand so that a change to `can_move_to` must change this too.
    const LEGAL: &[(ScanState, ScanState)] = &[
        (Queued, Claimed),
        (Queued, Cancelled),
        (Claimed, Running),
        (Claimed, Queued),
        (Claimed, Failed),
        (Claimed, Cancelled),
        (Claimed, TimedOut),
        (Running, Reporting),
        (Running, Queued),
        (Running, Failed),
        (Running, Cancelled),
        (Running, TimedOut),
        (Reporting, Succeeded),
        (Reporting, Queued),
        (Reporting, Failed),
        (Reporting, Cancelled),
        (Reporting, TimedOut),
    ];

    #[test]
    fn transition_table_is_exactly_the_legal_moves() {
        for from in ScanState::ALL {
            for to in ScanState::ALL {
                let expected = LEGAL.contains(&(from, to));
                assert_eq!(from.can_move_to(to), expected, "{from} -> {to}");
                assert_eq!(from.move_to(to).is_ok(), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn terminal_states_have_no_way_out() {
        for from in ScanState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in ScanState::ALL {
                assert!(!from.can_move_to(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn sources_agree_with_the_table() {
        assert_eq!(ScanState::sources(Claimed), vec![Queued]);
        assert_eq!(ScanState::sources(Succeeded), vec![Reporting]);
        assert_eq!(
            ScanState::sources(Queued),
            vec![Claimed, Running, Reporting]
        );
        assert_eq!(
            ScanState::sources(Cancelled),
            vec![Queued, Claimed, Running, Reporting]
        );
    }

    #[test]
    fn a_scan_cannot_skip_ahead() {
        let err = Queued.move_to(Running).unwrap_err();
        assert_eq!(err.to_string(), "a scan cannot move from queued to running");
    }

    #[test]
    fn priorities_follow_the_product_order() {
        use ScanTrigger as T;
        assert!(T::PullRequest.priority() < T::Manual.priority());
        assert_eq!(T::Manual.priority(), T::Bulk.priority());
        assert_eq!(T::Manual.priority(), T::Rerun.priority());
        assert!(T::Rerun.priority() < T::Initial.priority());
        assert!(T::Initial.priority() < T::Weekly.priority());
    }

    #[test]
    fn names_round_trip() {
        for s in ScanState::ALL {
            assert_eq!(s.as_str().parse::<ScanState>().unwrap(), s);
        }
        for t in ScanTrigger::ALL {
            assert_eq!(t.as_str().parse::<ScanTrigger>().unwrap(), t);
        }
        for k in ScanKind::ALL {
            assert_eq!(k.as_str().parse::<ScanKind>().unwrap(), k);
        }
        let err = "paused".parse::<ScanState>().unwrap_err();
        assert_eq!(err.what, "scan state");
    }

    #[test]
    fn only_full_scans_are_retried() {
        assert_eq!(ScanKind::Full.max_attempts(), 2);
        assert_eq!(ScanKind::Diff.max_attempts(), 1);
    }
}
