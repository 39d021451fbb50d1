//! Picket's domain, free of I/O.
//!
//! Everything here is pure: identifiers, the scan state machine, rule modes and their precedence,
//! the weekly schedule arithmetic and the identity of a finding. The database, HTTP and executor
//! crates translate to and from these types at their edges, so every rule of the product is written
//! (and tested) exactly once, here.

pub mod check;
pub mod ecosystem;
pub mod feedback;
pub mod finding;
pub mod ids;
pub mod policy;
pub mod protocol;
pub mod scan;
pub mod schedule;
pub mod tenancy;
pub mod triage;

pub use ecosystem::Ecosystem;
pub use finding::{FindingLocation, FindingStatus, Fingerprint, Product, Severity};
pub use ids::{
    ConnectionId, FindingId, InstallationId, OrgId, PolicyId, ProjectId, RulePackId, ScanId,
    TokenId,
};
pub use policy::{RuleId, RuleMode};
pub use scan::{ScanKind, ScanState, ScanTrigger, TransitionError};
pub use schedule::WeeklySlot;
pub use tenancy::{Provider, Role};

/// A value that failed to parse at the edge of the system, with the name of what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {value:?} (expected {expected})")]
pub struct ParseError {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}
