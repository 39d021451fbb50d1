//! Rules and the modes policies put them in (domain.md §2).
//!
//! | mode    | stored | PR comment | PR check |
//! |---------|--------|------------|----------|
//! | monitor | yes    | no         | passes   |
//! | comment | yes    | yes        | passes   |
//! | block   | yes    | yes        | fails    |
//!
//! A rule named by several policies takes the strongest mode: block > comment > monitor.

use crate::scan::str_enum;
use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// What a policy does with a rule's findings. The derived order is the precedence.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum RuleMode {
    #[default]
    Monitor,
    Comment,
    Block,
}

impl RuleMode {
    pub const ALL: [RuleMode; 3] = [RuleMode::Monitor, RuleMode::Comment, RuleMode::Block];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleMode::Monitor => "monitor",
            RuleMode::Comment => "comment",
            RuleMode::Block => "block",
        }
    }

    /// New findings of this rule get a PR/MR comment.
    pub fn comments(self) -> bool {
        self >= RuleMode::Comment
    }

    /// New findings of this rule fail the PR check.
    pub fn blocks(self) -> bool {
        self == RuleMode::Block
    }
}

str_enum!(RuleMode, "rule mode", "monitor | comment | block");

/// A rule id as the engine reports it, e.g. `picket.python.sql-injection`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RuleId(String);

impl RuleId {
    /// Longest accepted rule id, in bytes.
    pub const MAX_LEN: usize = 200;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RuleId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/:".contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError {
                what: "rule id",
                value: s.to_owned(),
                expected: "1-200 characters of A-Z a-z 0-9 . _ - / :",
            })
        }
    }
}

impl TryFrom<String> for RuleId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        s.parse()
    }
}

impl From<RuleId> for String {
    fn from(r: RuleId) -> String {
        r.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Merges the rule modes of several policies: each rule gets the strongest mode any policy gives it.
pub fn effective_modes<'a, I>(policies: I) -> BTreeMap<RuleId, RuleMode>
where
    I: IntoIterator<Item = &'a BTreeMap<RuleId, RuleMode>>,
{
    let mut merged: BTreeMap<RuleId, RuleMode> = BTreeMap::new();
    for policy in policies {
        for (rule, &mode) in policy {
            let slot = merged.entry(rule.clone()).or_insert(mode);
            *slot = (*slot).max(mode);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> RuleId {
        s.parse().unwrap()
    }

    #[test]
    fn precedence_is_block_comment_monitor() {
        assert!(RuleMode::Block > RuleMode::Comment);
        assert!(RuleMode::Comment > RuleMode::Monitor);
        assert!(!RuleMode::Monitor.comments() && !RuleMode::Monitor.blocks());
        assert!(RuleMode::Comment.comments() && !RuleMode::Comment.blocks());
        assert!(RuleMode::Block.comments() && RuleMode::Block.blocks());
    }

    #[test]
    fn strongest_mode_wins_across_policies() {
        let a = BTreeMap::from([
            (rule("r1"), RuleMode::Comment),
            (rule("r2"), RuleMode::Block),
        ]);
        let b = BTreeMap::from([
            (rule("r1"), RuleMode::Block),
            (rule("r2"), RuleMode::Monitor),
        ]);
        let c = BTreeMap::from([(rule("r3"), RuleMode::Monitor)]);
        let merged = effective_modes([&a, &b, &c]);
        assert_eq!(merged[&rule("r1")], RuleMode::Block);
        assert_eq!(merged[&rule("r2")], RuleMode::Block);
        assert_eq!(merged[&rule("r3")], RuleMode::Monitor);
        assert_eq!(merged.len(), 3);
    }

    #[test]
    fn rule_ids_are_checked() {
        assert!("picket.python.sqli".parse::<RuleId>().is_ok());
        assert!("".parse::<RuleId>().is_err());
        assert!("has space".parse::<RuleId>().is_err());
        assert!("x".repeat(201).parse::<RuleId>().is_err());
        assert!(RuleId::try_from("bad id".to_owned()).is_err());
    }

    #[test]
    fn modes_parse() {
        assert_eq!("block".parse::<RuleMode>().unwrap(), RuleMode::Block);
        assert!("warn".parse::<RuleMode>().is_err());
    }
}
