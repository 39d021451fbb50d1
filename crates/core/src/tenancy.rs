//! Who may do what in an org, and where its code lives.

use crate::scan::str_enum;
use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What an API token may do. Admins manage the org; members read and run scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Admin, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

/// Which kind of source provider a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Github,
    Gitlab,
    Bitbucket,
    AzureDevops,
    /// Plain git over HTTPS or SSH: clone only, no PR feedback.
    Git,
}

impl Provider {
    pub const ALL: [Provider; 5] = [
        Provider::Github,
        Provider::Gitlab,
        Provider::Bitbucket,
        Provider::AzureDevops,
        Provider::Git,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Bitbucket => "bitbucket",
            Provider::AzureDevops => "azure_devops",
            Provider::Git => "git",
        }
    }
}

str_enum!(Role, "role", "admin | member");
str_enum!(
    Provider,
    "provider",
    "github | gitlab | bitbucket | azure_devops | git"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
        }
        assert_eq!("root".parse::<Role>().unwrap_err().what, "role");
        assert!("svn".parse::<Provider>().is_err());
    }
}
