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

/// One installation of Picket: its database, and everything its schedulers create. Drawn at
/// random when the database is first migrated and never changed, it is carried in the name and
/// marks of every scan environment, so that installations sharing a machine or a Kubernetes
/// namespace tell their environments apart. Twelve lowercase hex digits (48 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstallationId(String);

impl InstallationId {
    /// Its length in characters.
    pub const LEN: usize = 12;

    /// A fresh random id, held by no database: for executors run without one (benchmarks,
    /// tests). An installation's own id is drawn by its database's migration.
    pub fn random() -> Self {
        InstallationId(Uuid::new_v4().simple().to_string()[..Self::LEN].to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for InstallationId {
    type Err = crate::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = s.len() == Self::LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(InstallationId(s.to_owned()))
        } else {
            Err(crate::ParseError {
                what: "InstallationId",
                value: s.to_owned(),
                expected: "12 lowercase hex digits",
            })
        }
    }
}

impl TryFrom<String> for InstallationId {
    type Error = crate::ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<InstallationId> for String {
    fn from(id: InstallationId) -> String {
        id.0
    }
}

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
    fn installation_ids_are_twelve_lowercase_hex_digits() {
        let id: InstallationId = "0123456789ab".parse().unwrap();
        assert_eq!(id.as_str(), "0123456789ab");
        for bad in [
            "",
            "0123456789a",
            "0123456789abc",
            "0123456789AB",
            "0123456789ag",
        ] {
            assert!(bad.parse::<InstallationId>().is_err(), "{bad}");
        }
        let random = InstallationId::random();
        assert_eq!(random.as_str().parse::<InstallationId>().unwrap(), random);
        assert_ne!(random, InstallationId::random());
    }

    #[test]
    fn new_ids_are_time_ordered() {
        let a = ScanId::new();
        let b = ScanId::new();
        assert!(a < b);
    }
}
