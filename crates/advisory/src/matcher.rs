//! The packages of one lockfile against the advisories that name them: one [`Match`] per
//! (package, vulnerability group).
//!
//! ```text
//! records ──prepare──► PreparedRecord (event versions parsed once, severity rated once)
//!                              │
//! Installed packages ──match_packages(packages, prepared)──► Outcome { matches, errors }
//! ```
//!
//! The same record is checked against many packages (and, on the control plane, many
//! lockfiles), so [`PreparedRecord::new`] does the work that does not depend on the installed
//! version: it reads every `SEMVER`/`ECOSYSTEM` range's events in the package's ecosystem, sorts
//! each range's timeline, normalises the package names and rates the severity of each entry.
//! Matching then only compares versions. The rules are [`crate::matching`]'s: a package is
//! affected by a record exactly when [`crate::record_affects`] says so, with one difference that
//! only adds answers: a record that affects the version through a range it can read is a match
//! even when another of its ranges cannot be read (`record_affects` stops at the first error).
//!
//! **Registry packages only.** Advisories describe registry releases; the caller passes only
//! packages installed from the ecosystem's registry (picket-lockfile's `Package::source`), never
//! git, path or URL dependencies, whose version strings name something else.
//!
//! **Errors are per package.** An installed version the ecosystem does not accept, or an event
//! version of a candidate record it does not accept, becomes a [`PackageError`] naming the
//! package, the record and the string: never a panic, never a silent "not affected".

use crate::alias::group_aliases;
use crate::osv::{Event, RangeType, Record};
use crate::severity::{rate, Rating};
use crate::version::{Version, VersionError};
use picket_core::{Ecosystem, Fingerprint, ParseError, RuleId};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

/// One installed package of a lockfile, as the matcher needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The package's ecosystem.
    pub ecosystem: Ecosystem,
    /// The package name as [`Ecosystem::normalize`] gives it (normalised again here, so another
    /// spelling still finds its records).
    pub name: String,
    /// The installed version as the lockfile writes it.
    pub version: String,
    /// The caller's handle on the package (its index in the caller's list), given back in each
    /// [`Match`] and [`PackageError`].
    pub index: usize,
}

/// A record made ready to be checked against many packages. Build it once per record.
#[derive(Debug, Clone)]
pub struct PreparedRecord {
    record: Record,
    entries: Vec<PreparedEntry>,
}

/// One `affected[]` entry of an ecosystem Picket matches.
#[derive(Debug, Clone)]
struct PreparedEntry {
    ecosystem: Ecosystem,
    /// The package name, normalised.
    name: String,
    /// `versions[]`: parsed, or (a string the ecosystem refuses) kept to compare as written.
    listed: Vec<Result<Version, String>>,
    /// The `SEMVER` and `ECOSYSTEM` ranges, in the record's order (`GIT` and unknown types are
    /// left out: they need a repository's history).
    ranges: Vec<PreparedRange>,
    /// [`rate`] of the record for this entry.
    rating: Option<Rating>,
}

/// A range's events, read in the entry's ecosystem.
#[derive(Debug, Clone)]
struct PreparedRange {
    /// `limit` events in the record's order; `None` is `"*"` (infinity). An unreadable limit is
    /// an error only when reached, as in [`crate::matching`].
    limits: Vec<Result<Option<Version>, VersionError>>,
    /// The other events, sorted by version (stable), or the first one the ecosystem refuses.
    timeline: Result<Vec<(Bound, Kind)>, VersionError>,
}

/// A bound of the timeline: `introduced: "0"` is below every version.
#[derive(Debug, Clone)]
enum Bound {
    Zero,
    At(Version),
}

impl Bound {
    /// The bound against the installed version (`Less`: the bound is below it).
    fn cmp_version(&self, v: &Version) -> Ordering {
        match self {
            Bound::Zero => Ordering::Less,
            // Same ecosystem on both sides (entries are looked up by the package's ecosystem).
            Bound::At(b) => b.partial_cmp(v).unwrap_or(Ordering::Equal),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Introduced,
    Fixed,
    LastAffected,
}

impl PreparedRecord {
    /// Reads `record`'s entries for the ecosystems Picket matches (entries without a package,
    /// or of other ecosystems, are dropped: nothing installed can match them).
    pub fn new(record: Record) -> PreparedRecord {
        let entries = record
            .affected
            .iter()
            .filter_map(|entry| {
                let package = entry.package.as_ref()?;
                let ecosystem = package.ecosystem()?;
                let listed = entry
                    .versions
                    .iter()
                    .map(|s| Version::parse(ecosystem, s).map_err(|_| s.trim().to_owned()))
                    .collect();
                let ranges = entry
                    .ranges
                    .iter()
                    .filter(|r| matches!(r.kind, RangeType::Semver | RangeType::Ecosystem))
                    .map(|r| PreparedRange::new(ecosystem, &r.events))
                    .collect();
                Some(PreparedEntry {
                    ecosystem,
                    name: ecosystem.normalize(&package.name),
                    listed,
                    ranges,
                    rating: rate(&record, Some(entry)),
                })
            })
            .collect();
        PreparedRecord { record, entries }
    }

    /// The record as parsed.
    pub fn record(&self) -> &Record {
        &self.record
    }
}

impl PreparedRange {
    fn new(ecosystem: Ecosystem, events: &[Event]) -> PreparedRange {
        let limits = events
            .iter()
            .filter_map(|e| match e {
                Event::Limit(l) if l.contains('*') => Some(Ok(None)),
                Event::Limit(l) => Some(Version::parse(ecosystem, l).map(Some)),
                _ => None,
            })
            .collect();
        let timeline = events
            .iter()
            .filter_map(|event| {
                let kind = match event {
                    Event::Limit(_) => return None,
                    Event::Introduced(s) if s == "0" => {
                        return Some(Ok((Bound::Zero, Kind::Introduced)))
                    }
                    Event::Introduced(_) => Kind::Introduced,
                    Event::Fixed(_) => Kind::Fixed,
                    Event::LastAffected(_) => Kind::LastAffected,
                };
                Some(Version::parse(ecosystem, event.version()).map(|v| (Bound::At(v), kind)))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|mut timeline| {
                // Stable: events at equal versions keep the record's order.
                timeline.sort_by(|(a, _), (b, _)| match (a, b) {
                    (Bound::Zero, Bound::Zero) => Ordering::Equal,
                    (Bound::Zero, _) => Ordering::Less,
                    (_, Bound::Zero) => Ordering::Greater,
                    (Bound::At(a), Bound::At(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
                });
                timeline
            });
        PreparedRange { limits, timeline }
    }

    /// Whether `v` lies in the range (`limit`, then the sorted timeline walked as
    /// [`crate::matching`] does).
    fn contains(&self, v: &Version) -> Result<bool, VersionError> {
        if !self.limits.is_empty() {
            let mut before_any = false;
            for limit in &self.limits {
                match limit {
                    Ok(None) => before_any = true,
                    Ok(Some(l)) => before_any = v < l,
                    Err(e) => return Err(e.clone()),
                }
                if before_any {
                    break;
                }
            }
            if !before_any {
                return Ok(false);
            }
        }
        let timeline = self.timeline.as_ref().map_err(Clone::clone)?;
        let mut vulnerable = false;
        for (bound, kind) in timeline {
            let order = bound.cmp_version(v);
            match kind {
                Kind::Introduced if order != Ordering::Greater => vulnerable = true,
                Kind::Fixed if order != Ordering::Greater => vulnerable = false,
                Kind::LastAffected if order == Ordering::Less => vulnerable = false,
                _ => {}
            }
        }
        Ok(vulnerable)
    }

    /// Adds to `out` the range's `fixed` versions above `v`: the release that leaves the window
    /// `v` is in, and later branches' fixes (each a version the range no longer affects).
    fn fixes_above<'a>(&'a self, v: &Version, out: &mut Vec<&'a Version>) {
        for (bound, kind) in self.timeline.iter().flatten() {
            if let Bound::At(f) = bound {
                if *kind == Kind::Fixed && f > v {
                    out.push(f);
                }
            }
        }
    }
}

/// What one record says about one installed version.
struct Verdict<'a> {
    /// The entry it matched through (for its severity).
    entry: &'a PreparedEntry,
    /// `fixed` events above the installed version, of the ranges that contain it.
    fixes: Vec<&'a Version>,
}

impl PreparedEntry {
    /// `Ok(Some(fixes))` when `v` is affected, `Ok(None)` when not; the first unreadable event
    /// of a range that had to be read, when no readable range or listed version matched.
    fn evaluate<'a>(&'a self, v: &Version) -> Result<Option<Vec<&'a Version>>, VersionError> {
        let listed = self.listed.iter().any(|l| match l {
            Ok(l) => l == v,
            Err(raw) => raw == v.as_str().trim(),
        });
        let mut first_error = None;
        let mut affected = listed;
        let mut fixes = Vec::new();
        for range in &self.ranges {
            match range.contains(v) {
                Ok(true) => {
                    affected = true;
                    range.fixes_above(v, &mut fixes);
                }
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (affected, first_error) {
            (true, _) => Ok(Some(fixes)),
            (false, Some(e)) => Err(e),
            (false, None) => Ok(None),
        }
    }
}

/// One package affected by one vulnerability (a group of aliased records).
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// [`Installed::index`] of the package.
    pub package: usize,
    /// The group's key ([`crate::VulnerabilityGroup::key`]: its earliest CVE, else its least
    /// GHSA id, else its least id), computed over every candidate record that names this
    /// package, whatever the installed version: the same package meets the same key at any
    /// version.
    pub group: String,
    /// The installed version as given.
    pub installed: String,
    /// The ids of the group's records that affect the installed version, sorted.
    pub advisories: Vec<String>,
    /// Every id of the group (records' and aliases'), sorted.
    pub aliases: Vec<String>,
    /// The versions that fix it: the `fixed` events above the installed version of every range
    /// that contains it, across the group's records, in the ecosystem's order, equal versions
    /// once (as the first of the records by id writes them). Empty when no fix is known (a `last_affected`
    /// range, a listed version only, or an open range).
    pub fixed: Vec<String>,
    /// The highest [`rate`] among the matching records (for the package's entry); `None` when
    /// none of them rates it.
    pub severity: Option<Rating>,
}

/// Why a package could not be checked (in part or at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// The installed version is not a version of the ecosystem: no record was checked.
    #[error("installed version: {0}")]
    Installed(VersionError),
    /// A range of the record that had to be read to decide has an event version the ecosystem
    /// refuses, and nothing else of the record matched.
    #[error("advisory {record}: range event {error}")]
    Event {
        /// The record's id.
        record: String,
        /// The event's version and why the ecosystem refuses it.
        error: VersionError,
    },
}

/// A package that could not be checked against a record (or at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageError {
    /// [`Installed::index`] of the package.
    pub package: usize,
    /// What went wrong.
    pub error: MatcherError,
}

/// The answer for one lockfile's packages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Sorted by package index, then group key.
    pub matches: Vec<Match>,
    /// Sorted by package index, then record id.
    pub errors: Vec<PackageError>,
}

/// Matches `packages` against `records` (the candidates for their names: any superset is fine,
/// records of other packages are simply not looked at). Withdrawn records match nothing.
pub fn match_packages(packages: &[Installed], records: &[PreparedRecord]) -> Outcome {
    // (ecosystem, normalised name) → (record, entry) pairs naming it.
    let mut by_name: HashMap<(Ecosystem, &str), Vec<(usize, usize)>> = HashMap::new();
    for (r, record) in records.iter().enumerate() {
        if record.record.is_withdrawn() {
            continue;
        }
        for (e, entry) in record.entries.iter().enumerate() {
            by_name
                .entry((entry.ecosystem, entry.name.as_str()))
                .or_default()
                .push((r, e));
        }
    }
    let mut outcome = Outcome::default();
    for package in packages {
        let name = package.ecosystem.normalize(&package.name);
        let Some(candidates) = by_name.get(&(package.ecosystem, name.as_str())) else {
            continue;
        };
        let installed = match Version::parse(package.ecosystem, &package.version) {
            Ok(v) => v,
            Err(e) => {
                outcome.errors.push(PackageError {
                    package: package.index,
                    error: MatcherError::Installed(e),
                });
                continue;
            }
        };
        // Per record: its verdict (entries of one record for one package are rare, but
        // allowed: the first matching entry rates it, every matching entry adds its fixes).
        let mut verdicts: BTreeMap<usize, Verdict> = BTreeMap::new();
        let mut errors: BTreeMap<usize, VersionError> = BTreeMap::new();
        for &(r, e) in candidates {
            let entry = &records[r].entries[e];
            match entry.evaluate(&installed) {
                Ok(Some(fixes)) => {
                    errors.remove(&r);
                    verdicts
                        .entry(r)
                        .or_insert(Verdict {
                            entry,
                            fixes: Vec::new(),
                        })
                        .fixes
                        .extend(fixes);
                }
                Ok(None) => {}
                Err(err) => {
                    if !verdicts.contains_key(&r) {
                        errors.entry(r).or_insert(err);
                    }
                }
            }
        }
        let mut record_errors: Vec<PackageError> = errors
            .into_iter()
            .map(|(r, error)| PackageError {
                package: package.index,
                error: MatcherError::Event {
                    record: records[r].record.id.clone(),
                    error,
                },
            })
            .collect();
        record_errors.sort_by(|a, b| event_record(&a.error).cmp(event_record(&b.error)));
        outcome.errors.extend(record_errors);
        if verdicts.is_empty() {
            continue;
        }
        // Groups over every candidate naming the package, so the key does not depend on the
        // installed version.
        let mut named: Vec<usize> = candidates.iter().map(|&(r, _)| r).collect();
        named.dedup();
        let groups = group_aliases(named.iter().map(|&r| &records[r].record));
        let by_id: HashMap<&str, usize> = verdicts
            .keys()
            .map(|&r| (records[r].record.id.as_str(), r))
            .collect();
        for group in groups {
            let matching: Vec<usize> = group
                .records
                .iter()
                .filter_map(|id| by_id.get(id.as_str()).copied())
                .collect();
            if matching.is_empty() {
                continue;
            }
            let mut fixed: Vec<&Version> = Vec::new();
            for r in &matching {
                for f in &verdicts[r].fixes {
                    if !fixed.iter().any(|g| g == f) {
                        fixed.push(f);
                    }
                }
            }
            fixed.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
            let severity = matching
                .iter()
                .filter_map(|r| verdicts[r].entry.rating.as_ref())
                .max_by_key(|rating| rating.severity)
                .cloned();
            let mut advisories: Vec<String> = matching
                .iter()
                .map(|&r| records[r].record.id.clone())
                .collect();
            advisories.sort();
            outcome.matches.push(Match {
                package: package.index,
                group: group.key,
                installed: package.version.clone(),
                advisories,
                aliases: group.ids,
                fixed: fixed.into_iter().map(|v| v.as_str().to_owned()).collect(),
                severity,
            });
        }
    }
    outcome
        .matches
        .sort_by(|a, b| (a.package, a.group.as_str()).cmp(&(b.package, b.group.as_str())));
    outcome.errors.sort_by_key(|e| e.package);
    outcome
}

fn event_record(error: &MatcherError) -> &str {
    match error {
        MatcherError::Event { record, .. } => record,
        MatcherError::Installed(_) => "",
    }
}

/// The identity of a supply-chain finding: (lockfile path, ecosystem, normalised package name,
/// vulnerability group key), never the installed version, so a bump to another still-affected
/// version keeps the finding and a move into a vulnerable version makes a new one.
///
/// It is picket-core's [`Fingerprint::compute`] (SHA-256, 64 hex characters, length-prefixed
/// fields) with the group key as the rule, the lockfile's path (repository-relative, `/`
/// separators) as the path, and `"<ecosystem> <name>"` as the anchor (an OSV ecosystem name has
/// no space, so the two cannot run into each other; the name is normalised here), occurrence 0.
///
/// # Errors
/// The group key is not a [`RuleId`] (1-200 characters of `A-Z a-z 0-9 . _ - / :`): every id
/// the advisory store accepts is one, an alias from elsewhere may not be.
pub fn finding_identity(
    lockfile: &str,
    ecosystem: Ecosystem,
    name: &str,
    group: &str,
) -> Result<Fingerprint, ParseError> {
    let rule: RuleId = group.parse()?;
    let anchor = format!("{} {}", ecosystem.as_str(), ecosystem.normalize(name));
    Ok(Fingerprint::compute(&rule, lockfile, &anchor, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_core::Severity;

    fn record(json: serde_json::Value) -> PreparedRecord {
        let mut base = serde_json::json!({"modified": "2024-01-01T00:00:00Z"});
        base.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        PreparedRecord::new(serde_json::from_value(base).unwrap())
    }

    fn pypi(name: &str, version: &str, index: usize) -> Installed {
        Installed {
            ecosystem: Ecosystem::PyPi,
            name: name.into(),
            version: version.into(),
            index,
        }
    }

    /// Two databases' records of one vulnerability of `demo`, and one unrelated record.
    fn demo_records() -> Vec<PreparedRecord> {
        vec![
            record(serde_json::json!({
                "id": "PYSEC-2024-1", "aliases": ["CVE-2024-7", "GHSA-aaaa-bbbb-cccc"],
                "affected": [{"package": {"ecosystem": "PyPI", "name": "Demo_Pkg"},
                  "ranges": [
                    {"type": "GIT", "events": [{"introduced": "0"}, {"fixed": "abc123"}]},
                    {"type": "ECOSYSTEM", "events": [
                      {"introduced": "0"}, {"fixed": "1.2"}, {"introduced": "2.0"}, {"fixed": "2.3.1"}]}]}]
            })),
            record(serde_json::json!({
                "id": "GHSA-aaaa-bbbb-cccc", "aliases": ["CVE-2024-7"],
                "database_specific": {"severity": "HIGH"},
                "affected": [{"package": {"ecosystem": "PyPI", "name": "demo-pkg"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [
                      {"introduced": "2.0"}, {"fixed": "2.3.1.0"}, {"fixed": "2.4"}]}]}]
            })),
            record(serde_json::json!({
                "id": "PYSEC-2024-2",
                "database_specific": {"severity": "LOW"},
                "affected": [{"package": {"ecosystem": "PyPI", "name": "demo-pkg"},
                  "versions": ["1.0"]}]
            })),
        ]
    }

    #[test]
    fn one_match_per_group_with_fixes_in_order_and_the_highest_severity() {
        let records = demo_records();
        let out = match_packages(
            &[pypi("demo.pkg", "2.1", 0), pypi("demo-pkg", "1.0.0", 1)],
            &records,
        );
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        let summary: Vec<_> = out
            .matches
            .iter()
            .map(|m| {
                (
                    m.package,
                    m.group.as_str(),
                    m.advisories.join(","),
                    m.fixed.join(","),
                    m.severity.as_ref().map(|r| r.severity),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                // 2.1: both records of CVE-2024-7; 2.3.1 and 2.3.1.0 are one PEP 440 version,
                // spelled as GHSA-… (the first by id) writes it.
                (
                    0,
                    "CVE-2024-7",
                    "GHSA-aaaa-bbbb-cccc,PYSEC-2024-1".into(),
                    "2.3.1.0,2.4".into(),
                    Some(Severity::High)
                ),
                // 1.0.0: PYSEC-2024-1 below 1.2 (1.2 and the later branch's 2.3.1 fix it), and
                // PYSEC-2024-2, which lists 1.0: its own group, no known fix.
                (
                    1,
                    "CVE-2024-7",
                    "PYSEC-2024-1".into(),
                    "1.2,2.3.1".into(),
                    None
                ),
                (
                    1,
                    "PYSEC-2024-2",
                    "PYSEC-2024-2".into(),
                    "".into(),
                    Some(Severity::Low)
                ),
            ]
        );
        assert_eq!(out.matches[0].installed, "2.1");
        assert_eq!(
            out.matches[0].aliases,
            ["CVE-2024-7", "GHSA-aaaa-bbbb-cccc", "PYSEC-2024-1"]
        );
        // Unaffected versions, and packages no record names, match nothing.
        let out = match_packages(
            &[pypi("demo-pkg", "1.5", 0), pypi("other", "1.0", 1)],
            &records,
        );
        assert_eq!(out, Outcome::default());
    }

    #[test]
    fn withdrawn_records_never_match() {
        let mut records = demo_records();
        records.push(record(serde_json::json!({
            "id": "PYSEC-2024-3", "withdrawn": "2024-02-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "demo-pkg"}, "versions": ["1.5"]}]
        })));
        let out = match_packages(&[pypi("demo-pkg", "1.5", 0)], &records);
        assert_eq!(out, Outcome::default());
    }

    #[test]
    fn unreadable_versions_are_errors_per_package_not_misses() {
        let records = vec![record(serde_json::json!({
            "id": "PYSEC-2019-125",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "p"}, "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2019-09-12"}]},
                {"type": "ECOSYSTEM", "events": [{"introduced": "5.0"}, {"fixed": "5.1"}]}]}]
        }))];
        let out = match_packages(
            &[
                pypi("p", "1.0", 0),
                pypi("p", "5.0.1", 1),
                pypi("p", "not a version", 2),
            ],
            &records,
        );
        // 5.0.1 lies in the readable range: a match, whatever the other range says.
        assert_eq!(out.matches.len(), 1);
        assert_eq!(out.matches[0].package, 1);
        assert_eq!(out.matches[0].fixed, ["5.1"]);
        assert_eq!(out.errors.len(), 2, "{:?}", out.errors);
        match &out.errors[0] {
            PackageError {
                package: 0,
                error: MatcherError::Event { record, error },
            } => {
                assert_eq!(record, "PYSEC-2019-125");
                assert_eq!(error.version, "2019-09-12");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &out.errors[1],
            PackageError { package: 2, error: MatcherError::Installed(e) } if e.version == "not a version"
        ));
    }

    #[test]
    fn the_group_key_does_not_depend_on_the_installed_version() {
        // At 2.1 both records match, at 0.5 only PYSEC-2024-1: the key is CVE-2024-7 either way.
        let records = demo_records();
        for version in ["2.1", "0.5"] {
            let out = match_packages(&[pypi("demo-pkg", version, 0)], &records);
            assert_eq!(out.matches.len(), 1, "{version}");
            assert_eq!(out.matches[0].group, "CVE-2024-7", "{version}");
        }
    }

    #[test]
    fn limit_and_last_affected_as_the_schema_says() {
        let records = vec![record(serde_json::json!({
            "id": "GO-2024-1",
            "affected": [{"package": {"ecosystem": "Go", "name": "example.com/m"}, "ranges": [
                {"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"limit": "1.5.0"}]},
                {"type": "SEMVER", "events": [{"introduced": "2.0.0"}, {"last_affected": "2.1.0"}]}]}]
        }))];
        let go = |version: &str, index| Installed {
            ecosystem: Ecosystem::Go,
            name: "example.com/m".into(),
            version: version.into(),
            index,
        };
        let packages = [
            go("v1.4.9", 0),
            go("v1.5.0", 1),
            go("v2.1.0", 2),
            go("v2.1.1", 3),
        ];
        let hit: Vec<usize> = match_packages(&packages, &records)
            .matches
            .iter()
            .map(|m| m.package)
            .collect();
        assert_eq!(hit, [0, 2]);
    }

    #[test]
    fn the_identity_ignores_the_version_and_separates_everything_else() {
        let id = |path, eco, name, group| finding_identity(path, eco, name, group).unwrap();
        let base = id("poetry.lock", Ecosystem::PyPi, "Demo_Pkg", "CVE-2024-7");
        assert_eq!(base.as_str().len(), 64);
        assert_eq!(
            base,
            id("poetry.lock", Ecosystem::PyPi, "demo-pkg", "CVE-2024-7"),
            "the name is normalised"
        );
        for other in [
            id("sub/poetry.lock", Ecosystem::PyPi, "demo-pkg", "CVE-2024-7"),
            id("poetry.lock", Ecosystem::Npm, "demo-pkg", "CVE-2024-7"),
            id("poetry.lock", Ecosystem::PyPi, "demo-pkg2", "CVE-2024-7"),
            id("poetry.lock", Ecosystem::PyPi, "demo-pkg", "CVE-2024-8"),
        ] {
            assert_ne!(base, other);
        }
        assert!(finding_identity("poetry.lock", Ecosystem::PyPi, "p", "CVE 1").is_err());
    }
}
