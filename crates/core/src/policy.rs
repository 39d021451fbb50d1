//! Rules and the modes policies put them in (domain.md §2).
//!
//! | mode    | stored | PR comment | PR check |
//! |---------|--------|------------|----------|
//! | monitor | yes    | no         | passes   |
//! | comment | yes    | yes        | passes   |
//! | block   | yes    | yes        | fails    |
//!
//! A rule named by several policies takes the strongest mode: block > comment > monitor.
//!
//! **Supply Chain.** A supply-chain finding's rule is its vulnerability (the group key of its
//! advisories, e.g. `CVE-2021-23337`). Policies reach it two ways, the more specific first:
//! 1. *Per advisory*: a policy rule named after any id of the vulnerability group (the key, an
//!    advisory's id or one of its aliases: `GHSA-35jh-r3h4-6jhm`, `PYSEC-2020-29`). When any is
//!    named, the strongest of those modes is the finding's, whatever its severity: an admin can
//!    quiet one advisory that does not apply to them, or block one that does.
//! 2. *By severity*: otherwise the mode of [`supply_chain_selector`] for the finding's severity:
//!    `supply-chain:critical`, `supply-chain:high`, `supply-chain:medium`, `supply-chain:low`,
//!    `supply-chain:info`, or `supply-chain:unrated` when no advisory rates it.
//!
//! Neither named: Monitor, as for every rule.

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

/// A rule id compares, hashes and orders as its text, so maps keyed by rule id can be read with
/// a `&str`.
impl std::borrow::Borrow<str> for RuleId {
    fn borrow(&self) -> &str {
        &self.0
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

/// The policy rule that gives every supply-chain finding of a severity its mode;
/// `None` (no advisory rates the vulnerability) is `supply-chain:unrated`.
pub fn supply_chain_selector(severity: Option<crate::Severity>) -> RuleId {
    RuleId(format!(
        "supply-chain:{}",
        severity.map_or("unrated", crate::Severity::as_str)
    ))
}

/// The effective mode of a reported finding under `modes` (the org's policies merged with
/// [`effective_modes`]): the mode of its rule, except for Supply Chain findings, whose mode is
/// per advisory, else by severity (see the module's documentation). Rules not named are Monitor.
pub fn mode_of(
    finding: &crate::protocol::ReportedFinding,
    modes: &BTreeMap<RuleId, RuleMode>,
) -> RuleMode {
    let Some(dep) = finding
        .dependency
        .as_ref()
        .filter(|_| finding.product == crate::Product::SupplyChain)
    else {
        return modes.get(&finding.rule_id).copied().unwrap_or_default();
    };
    let named = std::iter::once(finding.rule_id.as_str())
        .chain(dep.aliases.iter().map(String::as_str))
        .chain(dep.advisories.iter().map(String::as_str))
        .filter_map(|id| modes.get(id))
        .copied()
        .max();
    named.unwrap_or_else(|| {
        let severity = dep.severity_source.is_some().then_some(finding.severity);
        modes
            .get(&supply_chain_selector(severity))
            .copied()
            .unwrap_or_default()
    })
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
    use crate::protocol::{ReportedFinding, VulnerableDependency};
    use crate::{Fingerprint, Product, Severity};

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

    fn supply_chain(rule: &str, severity: Severity, rated: bool) -> ReportedFinding {
        let rule = rule.parse::<RuleId>().unwrap();
        ReportedFinding {
            product: Product::SupplyChain,
            rule_id: rule.clone(),
            path: "package-lock.json".into(),
            start_line: 3,
            end_line: 3,
            severity,
            message: "m".into(),
            fingerprint: Fingerprint::compute(&rule, "package-lock.json", "npm lodash", 0),
            new_in_pr: true,
            secret: None,
            suppressed: None,
            matched_lines: vec![],
            dependency: Some(VulnerableDependency {
                ecosystem: crate::Ecosystem::Npm,
                package: "lodash".into(),
                versions: vec!["4.17.20".into()],
                advisories: vec!["GHSA-35jh-r3h4-6jhm".into()],
                aliases: vec!["CVE-2021-23337".into(), "GHSA-35jh-r3h4-6jhm".into()],
                fixed: vec!["4.17.21".into()],
                direct: Some(true),
                dev: Some(false),
                severity_source: rated.then(|| "cvss_v3".to_owned()),
                summary: None,
            }),
        }
    }

    #[test]
    fn supply_chain_modes_go_per_advisory_then_by_severity() {
        let high = supply_chain("CVE-2021-23337", Severity::High, true);
        let by_severity = BTreeMap::from([
            (rule("supply-chain:high"), RuleMode::Block),
            (rule("supply-chain:medium"), RuleMode::Comment),
        ]);
        assert_eq!(mode_of(&high, &by_severity), RuleMode::Block);
        // An unrated finding is medium on display, but only `supply-chain:unrated` reaches it.
        let unrated = supply_chain("CVE-2021-23337", Severity::Medium, false);
        assert_eq!(mode_of(&unrated, &by_severity), RuleMode::Monitor);
        let with_unrated = BTreeMap::from([(rule("supply-chain:unrated"), RuleMode::Comment)]);
        assert_eq!(mode_of(&unrated, &with_unrated), RuleMode::Comment);
        // Any id of the group names it, and the advisory's own mode wins over severity, even
        // when it is weaker.
        let quiet = BTreeMap::from([
            (rule("supply-chain:high"), RuleMode::Block),
            (rule("GHSA-35jh-r3h4-6jhm"), RuleMode::Monitor),
        ]);
        assert_eq!(mode_of(&high, &quiet), RuleMode::Monitor);
        let two_named = BTreeMap::from([
            (rule("GHSA-35jh-r3h4-6jhm"), RuleMode::Monitor),
            (rule("CVE-2021-23337"), RuleMode::Comment),
        ]);
        assert_eq!(mode_of(&high, &two_named), RuleMode::Comment);
        assert_eq!(mode_of(&high, &BTreeMap::new()), RuleMode::Monitor);
    }

    #[test]
    fn other_products_take_their_rules_mode_only() {
        let mut code = supply_chain("picket.python.sqli", Severity::High, true);
        code.product = Product::Code;
        code.dependency = None;
        let modes = BTreeMap::from([(rule("supply-chain:high"), RuleMode::Block)]);
        assert_eq!(mode_of(&code, &modes), RuleMode::Monitor);
        let modes = BTreeMap::from([(rule("picket.python.sqli"), RuleMode::Comment)]);
        assert_eq!(mode_of(&code, &modes), RuleMode::Comment);
    }

    #[test]
    fn modes_parse() {
        assert_eq!("block".parse::<RuleMode>().unwrap(), RuleMode::Block);
        assert!("warn".parse::<RuleMode>().is_err());
    }
}
