//! How Supply Chain reads on the pages: a finding's vulnerable dependency (Finding page), what a
//! scan read of the repository's lockfiles (Scan page), and the policy selectors that give
//! supply-chain findings their modes (Policies page).

use picket_core::policy::supply_chain_selector;
use picket_core::protocol::{
    LockfileRead, ReportedFinding, SupplyChainTrail, TrailEntry, VulnerableDependency,
    MAX_TRAIL_ENTRIES,
};
use picket_core::{Fingerprint, Product, RuleId, RuleMode, Severity};
use std::collections::BTreeMap;

/// An advisory id and its page on osv.dev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryLink {
    pub id: String,
    pub url: String,
}

/// What a path segment of an osv.dev link escapes: everything but the characters advisory ids
/// are written with.
const ID_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b':');

/// The page of advisory `id` on osv.dev (which also resolves aliases such as CVE ids).
pub fn osv_url(id: &str) -> String {
    format!(
        "https://osv.dev/vulnerability/{}",
        percent_encoding::utf8_percent_encode(id, ID_SEGMENT)
    )
}

fn link(id: &str) -> AdvisoryLink {
    AdvisoryLink {
        id: id.to_owned(),
        url: osv_url(id),
    }
}

/// Where a finding's severity comes from, in words; `None`: no advisory rates it.
pub fn severity_source(source: Option<&str>) -> String {
    match source {
        Some("cvss_v4") => "the advisory's CVSS v4.0 vector".to_owned(),
        Some("cvss_v3") => "the advisory's CVSS v3 vector".to_owned(),
        Some("cvss_v2") => "the advisory's CVSS v2 vector".to_owned(),
        Some("database") => "the advisory database's own rating".to_owned(),
        Some(other) => other.to_owned(),
        None => "unrated: no advisory of this vulnerability gives a severity (shown as medium)"
            .to_owned(),
    }
}

fn yes_no_unsaid(v: Option<bool>, yes: &'static str, no: &'static str) -> &'static str {
    match v {
        Some(true) => yes,
        Some(false) => no,
        None => "the lockfile does not say",
    }
}

/// A supply-chain finding's dependency as the Finding page shows it.
#[derive(Debug, Clone)]
pub struct DependencyView {
    pub ecosystem: &'static str,
    pub package: String,
    pub versions: Vec<String>,
    /// `direct dependency`, `transitive dependency`, or that the lockfile does not say.
    pub direct: &'static str,
    pub dev: &'static str,
    /// Empty: no fixed version is known.
    pub fixed: Vec<String>,
    /// The advisories that affect the installed versions.
    pub advisories: Vec<AdvisoryLink>,
    /// The group's other ids (aliases of those advisories).
    pub aliases: Vec<AdvisoryLink>,
    pub summary: Option<String>,
    pub severity_source: String,
    /// The policy rule that gives it its mode when no policy names one of its ids.
    pub selector: String,
    /// Its mode under the org's policies, and why.
    pub mode: &'static str,
    pub mode_from: String,
}

/// The Finding page's view of `dep`, with its mode under `modes` (the org's policies merged).
#[allow(clippy::too_many_arguments)]
pub fn dependency_view(
    dep: &VulnerableDependency,
    rule_id: &str,
    path: &str,
    start_line: i32,
    end_line: i32,
    severity: Severity,
    message: &str,
    fingerprint: &str,
    modes: &BTreeMap<RuleId, RuleMode>,
) -> DependencyView {
    let selector = supply_chain_selector(dep.severity_source.is_some().then_some(severity));
    // The mode as the worker decides it (`mode_of`), from the finding as it reported it.
    let mode = match (
        rule_id.parse::<RuleId>(),
        fingerprint.parse::<Fingerprint>(),
    ) {
        (Ok(rule), Ok(fp)) => picket_core::policy::mode_of(
            &ReportedFinding {
                product: Product::SupplyChain,
                rule_id: rule,
                path: path.to_owned(),
                start_line: u32::try_from(start_line).unwrap_or(0),
                end_line: u32::try_from(end_line).unwrap_or(0),
                severity,
                message: message.to_owned(),
                fingerprint: fp,
                new_in_pr: false,
                secret: None,
                suppressed: None,
                matched_lines: Vec::new(),
                dependency: Some(dep.clone()),
            },
            modes,
        ),
        _ => RuleMode::default(),
    };
    let mut named: Vec<&str> = std::iter::once(rule_id)
        .chain(dep.advisories.iter().map(String::as_str))
        .chain(dep.aliases.iter().map(String::as_str))
        .filter(|id| modes.contains_key(*id))
        .collect();
    named.sort_unstable();
    named.dedup();
    let mode_from = if !named.is_empty() {
        format!("set per advisory ({})", named.join(", "))
    } else if modes.contains_key(&selector) {
        format!("set for its severity ({selector})")
    } else {
        format!("no policy names its advisories or {selector}")
    };
    DependencyView {
        ecosystem: dep.ecosystem.as_str(),
        package: dep.package.clone(),
        versions: dep.versions.clone(),
        direct: yes_no_unsaid(dep.direct, "direct dependency", "transitive dependency"),
        dev: yes_no_unsaid(
            dep.dev,
            "yes: only development installs get it",
            "no: production installs get it",
        ),
        fixed: dep.fixed.clone(),
        advisories: dep.advisories.iter().map(|a| link(a)).collect(),
        aliases: dep
            .aliases
            .iter()
            .filter(|a| !dep.advisories.contains(a))
            .map(|a| link(a))
            .collect(),
        summary: dep.summary.clone().filter(|s| !s.trim().is_empty()),
        severity_source: severity_source(dep.severity_source.as_deref()),
        selector: selector.to_string(),
        mode: mode.as_str(),
        mode_from,
    }
}

/// An entry of a lockfile that was not checked.
#[derive(Debug, Clone)]
pub struct EntryView {
    pub line: String,
    pub text: String,
    pub reason: String,
}

fn entry(e: &TrailEntry) -> EntryView {
    EntryView {
        line: e.line.map_or_else(|| "—".to_owned(), |l| l.to_string()),
        text: e.text.clone(),
        reason: e.reason.clone(),
    }
}

/// One lockfile as a scan read it.
#[derive(Debug, Clone)]
pub struct LockfileView {
    pub path: String,
    pub format: String,
    pub ecosystem: &'static str,
    pub packages: u64,
    pub not_registry: u64,
    pub unresolved: Vec<EntryView>,
    pub unchecked: Vec<EntryView>,
    /// The lists were cut at [`MAX_TRAIL_ENTRIES`].
    pub cut: bool,
    /// Why it could not be read: nothing of it was checked.
    pub error: Option<String>,
}

fn lockfile(l: &LockfileRead) -> LockfileView {
    LockfileView {
        path: l.path.clone(),
        format: l.format.clone(),
        ecosystem: l.ecosystem.as_str(),
        packages: l.packages,
        not_registry: l.not_registry,
        unresolved: l.unresolved.iter().map(entry).collect(),
        unchecked: l.unchecked.iter().map(entry).collect(),
        cut: l.unresolved.len() >= MAX_TRAIL_ENTRIES || l.unchecked.len() >= MAX_TRAIL_ENTRIES,
        error: l.error.clone(),
    }
}

/// What Supply Chain read in one scan attempt.
#[derive(Debug, Clone)]
pub struct TrailView {
    pub attempt: i32,
    /// Supply Chain ran in that attempt (its trail has a Supply Chain part).
    pub ran: bool,
    pub lockfiles: Vec<LockfileView>,
    /// Lockfiles that could not be read.
    pub unreadable: Vec<LockfileView>,
    pub packages: u64,
    pub advisories: u64,
    /// Ecosystems of the lockfiles of which no advisory is imported: checked against nothing.
    pub empty_ecosystems: Vec<String>,
}

/// The Scan page's view of `trail` (`None`: Supply Chain did not run in `attempt`).
pub fn trail_view(attempt: i32, trail: Option<&SupplyChainTrail>) -> TrailView {
    let lockfiles: Vec<LockfileView> = trail
        .map(|t| t.lockfiles.iter().map(lockfile).collect())
        .unwrap_or_default();
    TrailView {
        attempt,
        ran: trail.is_some(),
        unreadable: lockfiles
            .iter()
            .filter(|l| l.error.is_some())
            .cloned()
            .collect(),
        packages: lockfiles.iter().map(|l| l.packages).sum(),
        advisories: trail.map_or(0, |t| t.advisories),
        empty_ecosystems: trail
            .map(|t| t.empty_ecosystems.iter().map(|e| e.to_string()).collect())
            .unwrap_or_default(),
        lockfiles,
    }
}

/// The severities a policy can select supply-chain findings by, most severe first; `None` is
/// `supply-chain:unrated`.
pub const SELECTOR_SEVERITIES: [Option<Severity>; 6] = [
    Some(Severity::Critical),
    Some(Severity::High),
    Some(Severity::Medium),
    Some(Severity::Low),
    Some(Severity::Info),
    None,
];

/// The form field that carries a severity selector's mode on the Policies page.
pub fn selector_field(severity: Option<Severity>) -> String {
    format!("sc_{}", severity.map_or("unrated", Severity::as_str))
}

/// Whether a policy rule id reads as an advisory id (`GHSA-…`, `CVE-…`, `PYSEC-…`, `GO-…`,
/// `RUSTSEC-…`, any OSV prefix): an upper-case prefix, a dash, and no `.`, `/` or `:` (which
/// engine rule ids and the severity selectors have).
pub fn looks_like_advisory(id: &str) -> bool {
    let Some((prefix, rest)) = id.split_once('-') else {
        return false;
    };
    prefix.len() >= 2
        && prefix
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && prefix
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_uppercase())
        && !rest.is_empty()
        && !id.bytes().any(|b| matches!(b, b'.' | b'/' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_core::Ecosystem;

    fn lodash(rated: bool) -> VulnerableDependency {
        VulnerableDependency {
            ecosystem: Ecosystem::Npm,
            package: "lodash".into(),
            versions: vec!["4.17.20".into()],
            advisories: vec!["GHSA-35jh-r3h4-6jhm".into()],
            aliases: vec!["CVE-2021-23337".into(), "GHSA-35jh-r3h4-6jhm".into()],
            fixed: vec!["4.17.21".into()],
            direct: Some(false),
            dev: None,
            severity_source: rated.then(|| "cvss_v3".to_owned()),
            summary: Some("Command Injection in lodash".into()),
        }
    }

    fn view(dep: &VulnerableDependency, modes: &BTreeMap<RuleId, RuleMode>) -> DependencyView {
        dependency_view(
            dep,
            "CVE-2021-23337",
            "package-lock.json",
            12,
            12,
            Severity::High,
            "m",
            &"a".repeat(64),
            modes,
        )
    }

    #[test]
    fn a_dependency_reads_with_links_aliases_and_its_mode() {
        let modes = BTreeMap::from([("supply-chain:high".parse().unwrap(), RuleMode::Block)]);
        let v = view(&lodash(true), &modes);
        assert_eq!(v.advisories, [link("GHSA-35jh-r3h4-6jhm")]);
        assert_eq!(
            v.advisories[0].url,
            "https://osv.dev/vulnerability/GHSA-35jh-r3h4-6jhm"
        );
        assert_eq!(osv_url("a/b c"), "https://osv.dev/vulnerability/a%2Fb%20c");
        // The advisory itself is not repeated among the aliases.
        assert_eq!(v.aliases, [link("CVE-2021-23337")]);
        assert_eq!(v.direct, "transitive dependency");
        assert_eq!(v.dev, "the lockfile does not say");
        assert_eq!(v.selector, "supply-chain:high");
        assert_eq!(
            (v.mode, v.mode_from.as_str()),
            ("block", "set for its severity (supply-chain:high)")
        );
        // A per-advisory mode wins, even a weaker one.
        let modes = BTreeMap::from([
            ("supply-chain:high".parse().unwrap(), RuleMode::Block),
            ("CVE-2021-23337".parse().unwrap(), RuleMode::Monitor),
        ]);
        let v = view(&lodash(true), &modes);
        assert_eq!(v.mode, "monitor");
        assert_eq!(v.mode_from, "set per advisory (CVE-2021-23337)");
    }

    #[test]
    fn an_unrated_finding_is_reached_through_unrated_only() {
        let modes = BTreeMap::from([("supply-chain:medium".parse().unwrap(), RuleMode::Block)]);
        let v = dependency_view(
            &lodash(false),
            "CVE-2021-23337",
            "package-lock.json",
            12,
            12,
            Severity::Medium,
            "m",
            &"a".repeat(64),
            &modes,
        );
        assert!(v.severity_source.starts_with("unrated"));
        assert_eq!(v.selector, "supply-chain:unrated");
        assert_eq!(v.mode, "monitor");
    }

    #[test]
    fn advisory_ids_are_told_from_rule_ids() {
        for id in [
            "GHSA-35jh-r3h4-6jhm",
            "CVE-2021-23337",
            "PYSEC-2020-29",
            "GO-2024-2550",
            "RUSTSEC-2021-0131",
        ] {
            assert!(looks_like_advisory(id), "{id}");
        }
        for id in [
            "picket.python.sqli",
            "supply-chain:high",
            "my-rule",
            "X-1",
            "CVE-",
            "acme/CVE-1",
        ] {
            assert!(!looks_like_advisory(id), "{id}");
        }
    }

    #[test]
    fn a_trail_counts_and_names_unreadable_lockfiles() {
        let t = SupplyChainTrail {
            lockfiles: vec![
                LockfileRead {
                    path: "a/package-lock.json".into(),
                    format: "package-lock".into(),
                    ecosystem: Ecosystem::Npm,
                    packages: 3,
                    not_registry: 1,
                    unresolved: vec![],
                    unchecked: vec![],
                    error: None,
                    merge_base: false,
                },
                LockfileRead {
                    path: "poetry.lock".into(),
                    format: "poetry-lock".into(),
                    ecosystem: Ecosystem::PyPi,
                    packages: 0,
                    not_registry: 0,
                    unresolved: vec![],
                    unchecked: vec![],
                    error: Some("line 4: expected `=`".into()),
                    merge_base: false,
                },
            ],
            advisories: 7,
            empty_ecosystems: Vec::new(),
        };
        let v = trail_view(1, Some(&t));
        assert!(v.ran);
        assert_eq!(v.packages, 3);
        assert_eq!(v.unreadable.len(), 1);
        assert_eq!(v.unreadable[0].path, "poetry.lock");
        assert!(!trail_view(1, None).ran);
    }
}
