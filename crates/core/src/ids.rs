//! Typed identifiers. Every row id is a UUID; the newtypes keep a `ScanId` from being passed where a
//! `ProjectId` is meant. The database crate maps them with `sqlx(transparent)`-style conversions.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7), so that ids sort roughly by creation.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| crate::ParseError {
                    what: stringify!($name),
                    value: s.to_owned(),
                    expected: "a UUID",
                })
            }
        }
    };
}

id_type!(
    /// An organization: the tenant every other row belongs to.
    OrgId
);
id_type!(
    /// An API token.
    TokenId
);
id_type!(
    /// A connection to a source provider (GitHub, GitLab, ...), holding encrypted credentials.
    ConnectionId
);
id_type!(
    /// A repository added to Picket.
    ProjectId
);
id_type!(
    /// One scan of one project (full or diff-aware).
    ScanId
);
id_type!(
    /// A finding, tracked across scans by its fingerprint.
    FindingId
);
id_type!(
    /// A named set of rule modes.
    PolicyId
);
id_type!(
    /// A rule pack an org uploaded.
    RulePackId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_display_round_trip() {
        let id = ScanId::new();
        let parsed: ScanId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
    }

    #[test]
    fn bad_id_names_the_type() {
        let err = "nope".parse::<ProjectId>().unwrap_err();
        assert_eq!(err.what, "ProjectId");
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn new_ids_are_time_ordered() {
        let a = ScanId::new();
        let b = ScanId::new();
        assert!(a < b);
    }
}
