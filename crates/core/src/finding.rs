//! Findings and their identity (domain.md §3).
//!
//! A finding's identity is its rule id, its path, the whitespace-normalised text of the first line
//! of its match (the *anchor*) and an occurrence index among findings sharing those three. The
//! fingerprint hashes exactly that, so:
//! - code that moves up or down keeps its fingerprint (no line numbers in it);
//! - a match whose body changes under an unchanged first line keeps its fingerprint;
//! - a genuinely new match, or an edit to the anchor line itself, gets a new one.

use crate::policy::RuleId;
use crate::scan::str_enum;
use crate::ParseError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Which Picket product reported a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Product {
    Code,
    SupplyChain,
    Secrets,
}

impl Product {
    pub const ALL: [Product; 3] = [Product::Code, Product::SupplyChain, Product::Secrets];

    pub fn as_str(self) -> &'static str {
        match self {
            Product::Code => "code",
            Product::SupplyChain => "supply_chain",
            Product::Secrets => "secrets",
        }
    }
}

/// How bad a finding is, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Where a tracked finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    /// Reported by the latest scan of its branch.
    Open,
    /// No longer reported by a later full scan of the same branch.
    Fixed,
    /// Its rule was disabled or its file deleted.
    Removed,
    /// Triaged away by a person, with a reason; sticks to the fingerprint.
    Ignored,
}

impl FindingStatus {
    pub const ALL: [FindingStatus; 4] = [
        FindingStatus::Open,
        FindingStatus::Fixed,
        FindingStatus::Removed,
        FindingStatus::Ignored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Open => "open",
            FindingStatus::Fixed => "fixed",
            FindingStatus::Removed => "removed",
            FindingStatus::Ignored => "ignored",
        }
    }
}

str_enum!(Product, "product", "code | supply_chain | secrets");
str_enum!(
    Severity,
    "severity",
    "info | low | medium | high | critical"
);
str_enum!(
    FindingStatus,
    "finding status",
    "open | fixed | removed | ignored"
);

/// A finding's stable identity across scans and branches: 64 hex characters of SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Hashes the identity. Fields are length-prefixed so that no two different identities can
    /// produce the same byte string.
    pub fn compute(rule: &RuleId, path: &str, anchor: &str, occurrence: u32) -> Fingerprint {
        let mut h = Sha256::new();
        h.update(b"picket-finding-v1");
        for field in [
            rule.as_str().as_bytes(),
            path.as_bytes(),
            normalize_anchor(anchor).as_bytes(),
        ] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field);
        }
        h.update(occurrence.to_be_bytes());
        Fingerprint(hex::encode(h.finalize()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Fingerprint {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Fingerprint(s.to_owned()))
        } else {
            Err(ParseError {
                what: "fingerprint",
                value: s.to_owned(),
                expected: "64 lowercase hex characters",
            })
        }
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Collapses every run of whitespace to one space and trims both ends, so re-indentation and
/// trailing spaces do not change a finding's identity.
pub fn normalize_anchor(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where in a file a finding was reported, and the text of the match's first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingLocation {
    pub rule: RuleId,
    pub path: String,
    /// 1-based line of the match's start.
    pub start_line: u32,
    /// 1-based column of the match's start.
    pub start_col: u32,
    /// The full text of the line the match starts on.
    pub anchor: String,
}

/// Computes the fingerprints of one scan's findings, in input order. Findings sharing rule, path
/// and anchor are numbered by position (line, then column), so the first such match in a file is
/// occurrence 0 wherever it sits.
pub fn fingerprints(findings: &[FindingLocation]) -> Vec<Fingerprint> {
    let mut order: Vec<usize> = (0..findings.len()).collect();
    order.sort_by_key(|&i| (findings[i].start_line, findings[i].start_col, i));
    let mut seen: HashMap<(&str, &str, String), u32> = HashMap::new();
    let mut out = vec![None; findings.len()];
    for i in order {
        let f = &findings[i];
        let anchor = normalize_anchor(&f.anchor);
        let n = seen
            .entry((f.rule.as_str(), f.path.as_str(), anchor))
            .or_insert(0);
        out[i] = Some(Fingerprint::compute(&f.rule, &f.path, &f.anchor, *n));
        *n += 1;
    }
    out.into_iter()
        .map(|fp| fp.expect("every index visited once"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(rule: &str, path: &str, line: u32, anchor: &str) -> FindingLocation {
        FindingLocation {
            rule: rule.parse().unwrap(),
            path: path.into(),
            start_line: line,
            start_col: 1,
            anchor: anchor.into(),
        }
    }

    #[test]
    fn moved_code_keeps_its_fingerprint() {
        let before = fingerprints(&[loc("r", "a.py", 10, "eval(x)")]);
        let after = fingerprints(&[loc("r", "a.py", 42, "    eval(x)   ")]);
        assert_eq!(before, after);
    }

    #[test]
    fn anchor_edit_rule_and_path_change_identity() {
        let base = Fingerprint::compute(&"r".parse().unwrap(), "a.py", "eval(x)", 0);
        assert_ne!(
            base,
            Fingerprint::compute(&"r".parse().unwrap(), "a.py", "eval(y)", 0)
        );
        assert_ne!(
            base,
            Fingerprint::compute(&"r2".parse().unwrap(), "a.py", "eval(x)", 0)
        );
        assert_ne!(
            base,
            Fingerprint::compute(&"r".parse().unwrap(), "b.py", "eval(x)", 0)
        );
        assert_ne!(
            base,
            Fingerprint::compute(&"r".parse().unwrap(), "a.py", "eval(x)", 1)
        );
    }

    #[test]
    fn field_boundaries_cannot_be_confused() {
        let a = Fingerprint::compute(&"r".parse().unwrap(), "ab", "c", 0);
        let b = Fingerprint::compute(&"r".parse().unwrap(), "a", "bc", 0);
        assert_ne!(a, b);
    }

    #[test]
    fn repeated_matches_are_numbered_by_position() {
        // Same rule, path and anchor twice; input order reversed from file order.
        let fps = fingerprints(&[
            loc("r", "a.py", 20, "eval(x)"),
            loc("r", "a.py", 5, "eval(x)"),
        ]);
        let first = Fingerprint::compute(&"r".parse().unwrap(), "a.py", "eval(x)", 0);
        let second = Fingerprint::compute(&"r".parse().unwrap(), "a.py", "eval(x)", 1);
        assert_eq!(fps, vec![second, first]);
    }

    #[test]
    fn adding_an_unrelated_finding_does_not_renumber() {
        let before = fingerprints(&[loc("r", "a.py", 5, "eval(x)")]);
        let after = fingerprints(&[
            loc("r", "a.py", 1, "eval(z)"),
            loc("r", "a.py", 6, "eval(x)"),
        ]);
        assert_eq!(before[0], after[1]);
    }

    #[test]
    fn fingerprints_parse_strictly() {
        let fp = Fingerprint::compute(&"r".parse().unwrap(), "a", "b", 0);
        assert_eq!(fp.as_str().parse::<Fingerprint>().unwrap(), fp);
        assert!("ABC".parse::<Fingerprint>().is_err());
        assert_eq!(fp.as_str().len(), 64);
    }

    #[test]
    fn whitespace_is_normalised() {
        assert_eq!(normalize_anchor("  a \t b\n"), "a b");
    }
}
