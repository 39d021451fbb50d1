//! Whether an installed version is affected: the OSV schema's evaluation algorithm
//! (<https://ossf.github.io/osv-schema/#evaluation>), with each ecosystem's version order.
//!
//! A version is affected by an `affected[]` entry when it equals one of `versions[]` (with the
//! ecosystem's equality) or lies in one of its `SEMVER` / `ECOSYSTEM` ranges. A range is walked
//! over its events sorted by version (`introduced: "0"` first): `introduced` at or below the
//! version opens the range, `fixed` at or below it closes it, `last_affected` below it closes
//! it; and when the range has `limit` events, the version must be below one of them (`"*"` is
//! infinity). `GIT` ranges (and types this crate does not know) need a repository's history and
//! are skipped, the entry's other ranges still count. A withdrawn record matches nothing.
//!
//! Both range types are read with the package's ecosystem order: for npm, crates.io and Go that
//! order is SemVer precedence, which is what `SEMVER` means; other ecosystems' records use
//! `ECOSYSTEM` ranges.
//!
//! Go: golang/vulndb writes a `SEMVER` range in module versions and, for some modules, an
//! `ecosystem_specific.custom_ranges` of the project's own release tags (`introduced: 100.0.0`
//! for a module whose go.mod versions are pseudo-versions `v0.0.0-2020…`). Those tags are not
//! the versions a go.mod pins, so comparing them would be comparing two different version
//! spaces; like govulncheck, Picket evaluates the `SEMVER` range only, which for 468 of the 589
//! such entries in the shared data is `introduced: "0"` (every version affected).

use crate::osv::{Affected, Event, RangeType, Record};
use crate::version::{Version, VersionError};
use picket_core::Ecosystem;
use std::cmp::Ordering;

/// Why an entry could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// The entry has no `package` (a bare Git range).
    #[error("the affected entry names no package")]
    NoPackage,
    /// The entry's ecosystem is not one Picket matches (`Debian:11`, `Hex`, …).
    #[error("ecosystem {0:?} is not one Picket matches")]
    UnsupportedEcosystem(String),
    /// The version was parsed in another ecosystem than the entry's.
    #[error("a {version} version matched against a {entry} entry")]
    EcosystemMismatch {
        /// The entry's ecosystem.
        entry: Ecosystem,
        /// The version's.
        version: Ecosystem,
    },
    /// An event's version is not a version of the ecosystem.
    #[error("range event: {0}")]
    Event(#[from] VersionError),
}

/// Whether `version` is affected by `entry` (one element of a record's `affected[]`). The
/// package name is not looked at: see [`record_affects`] for that.
///
/// # Errors
/// [`MatchError`] when the entry cannot be evaluated for this version: its ecosystem is not
/// `version`'s or not one Picket matches, or an event of a `SEMVER`/`ECOSYSTEM` range is not a
/// version of the ecosystem. An unparsable string in `versions[]` is not an error: it can only
/// equal the installed version's own string, and is compared so.
pub fn affected(entry: &Affected, version: &Version) -> Result<bool, MatchError> {
    let package = entry.package.as_ref().ok_or(MatchError::NoPackage)?;
    let ecosystem = package
        .ecosystem()
        .ok_or_else(|| MatchError::UnsupportedEcosystem(package.ecosystem.clone()))?;
    if ecosystem != version.ecosystem() {
        return Err(MatchError::EcosystemMismatch {
            entry: ecosystem,
            version: version.ecosystem(),
        });
    }
    let listed = entry
        .versions
        .iter()
        .any(|listed| match Version::parse(ecosystem, listed) {
            Ok(listed) => listed == *version,
            Err(_) => listed.trim() == version.as_str().trim(),
        });
    if listed {
        return Ok(true);
    }
    for range in &entry.ranges {
        if matches!(range.kind, RangeType::Semver | RangeType::Ecosystem)
            && in_range(ecosystem, &range.events, version)?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A bound of the timeline: `introduced: "0"` is below every version.
#[derive(Debug)]
enum Bound {
    Zero,
    At(Version),
}

impl Bound {
    fn cmp_version(&self, v: &Version) -> Ordering {
        match self {
            Bound::Zero => Ordering::Less,
            // Same ecosystem on both sides (checked by the caller), so the order is total.
            Bound::At(b) => b.partial_cmp(v).unwrap_or(Ordering::Equal),
        }
    }
}

/// `IncludedInRanges` for one range: `BeforeLimits`, then the sorted timeline.
fn in_range(ecosystem: Ecosystem, events: &[Event], v: &Version) -> Result<bool, MatchError> {
    let mut limits = events
        .iter()
        .filter_map(|e| match e {
            Event::Limit(l) => Some(l),
            _ => None,
        })
        .peekable();
    if limits.peek().is_some() {
        let mut before_any = false;
        for limit in limits {
            if limit.contains('*') || v < &Version::parse(ecosystem, limit)? {
                before_any = true;
                break;
            }
        }
        if !before_any {
            return Ok(false);
        }
    }
    let mut timeline = Vec::with_capacity(events.len());
    for event in events {
        let bound = match event {
            Event::Limit(_) => continue,
            Event::Introduced(s) if s == "0" => Bound::Zero,
            other => Bound::At(Version::parse(ecosystem, other.version())?),
        };
        timeline.push((bound, event));
    }
    // Stable: events at equal versions keep the record's order.
    timeline.sort_by(|(a, _), (b, _)| match (a, b) {
        (Bound::Zero, Bound::Zero) => Ordering::Equal,
        (Bound::Zero, _) => Ordering::Less,
        (_, Bound::Zero) => Ordering::Greater,
        (Bound::At(a), Bound::At(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    });
    let mut vulnerable = false;
    for (bound, event) in &timeline {
        // `bound` vs the installed version: Less means the event is below it.
        let at_or_below = bound.cmp_version(v) != Ordering::Greater;
        match event {
            Event::Introduced(_) if at_or_below => vulnerable = true,
            Event::Fixed(_) if at_or_below => vulnerable = false,
            Event::LastAffected(_) if bound.cmp_version(v) == Ordering::Less => vulnerable = false,
            _ => {}
        }
    }
    Ok(vulnerable)
}

/// Whether `record` affects version `version` of the package `name` (spelled any way the
/// ecosystem treats as the same package: names are compared after [`Ecosystem::normalize`]).
/// A withdrawn record affects nothing.
///
/// # Errors
/// The first [`MatchError`] of an entry for this package that could not be evaluated; entries
/// for other packages are not looked at.
pub fn record_affects(record: &Record, name: &str, version: &Version) -> Result<bool, MatchError> {
    if record.is_withdrawn() {
        return Ok(false);
    }
    let ecosystem = version.ecosystem();
    let wanted = ecosystem.normalize(name);
    for entry in &record.affected {
        let Some(package) = &entry.package else {
            continue;
        };
        if package.ecosystem() == Some(ecosystem)
            && ecosystem.normalize(&package.name) == wanted
            && affected(entry, version)?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::{Package, Range};

    fn entry(ecosystem: &str, ranges: Vec<(RangeType, Vec<Event>)>, versions: &[&str]) -> Affected {
        Affected {
            package: Some(Package {
                ecosystem: ecosystem.to_owned(),
                name: "p".to_owned(),
                purl: None,
            }),
            severity: vec![],
            ranges: ranges
                .into_iter()
                .map(|(kind, events)| Range {
                    kind,
                    repo: None,
                    events,
                    database_specific: None,
                })
                .collect(),
            versions: versions.iter().map(|s| s.to_string()).collect(),
            ecosystem_specific: None,
            database_specific: None,
        }
    }

    fn i(s: &str) -> Event {
        Event::Introduced(s.into())
    }
    fn f(s: &str) -> Event {
        Event::Fixed(s.into())
    }
    fn la(s: &str) -> Event {
        Event::LastAffected(s.into())
    }
    fn lim(s: &str) -> Event {
        Event::Limit(s.into())
    }

    fn check(e: &Affected, eco: Ecosystem, version: &str) -> bool {
        affected(e, &Version::parse(eco, version).unwrap()).unwrap()
    }

    #[test]
    fn fixed_is_exclusive_last_affected_inclusive() {
        let e = entry(
            "crates.io",
            vec![(RangeType::Semver, vec![i("0.0.0-0"), f("1.2.0")])],
            &[],
        );
        for (v, want) in [
            ("0.0.0", true),
            ("1.1.9", true),
            ("1.2.0-rc.1", true),
            ("1.2.0", false),
        ] {
            assert_eq!(check(&e, Ecosystem::CratesIo, v), want, "{v}");
        }
        let e = entry(
            "PyPI",
            vec![(RangeType::Ecosystem, vec![i("0"), la("2.1")])],
            &[],
        );
        for (v, want) in [
            ("0.1", true),
            ("2.1.0", true),
            ("2.1.post1", false),
            ("2.2", false),
        ] {
            assert_eq!(check(&e, Ecosystem::PyPi, v), want, "{v}");
        }
    }

    #[test]
    fn events_are_sorted_before_walking() {
        // Two windows written out of order: [1.0, 1.2) and [2.0, 2.3).
        let e = entry(
            "npm",
            vec![(
                RangeType::Ecosystem,
                vec![f("2.3.0"), i("2.0.0"), f("1.2.0"), i("1.0.0")],
            )],
            &[],
        );
        for (v, want) in [
            ("0.9.0", false),
            ("1.0.0", true),
            ("1.2.0", false),
            ("2.2.9", true),
            ("2.3.0", false),
        ] {
            assert_eq!(check(&e, Ecosystem::Npm, v), want, "{v}");
        }
    }

    #[test]
    fn limit_bounds_the_whole_range() {
        let e = entry(
            "Go",
            vec![(RangeType::Semver, vec![i("1.0.0"), lim("1.5.0")])],
            &[],
        );
        assert!(check(&e, Ecosystem::Go, "v1.4.9"));
        assert!(
            !check(&e, Ecosystem::Go, "v1.5.0"),
            "osv-scanner ignores limit: Picket does not"
        );
        let e = entry(
            "Go",
            vec![(RangeType::Semver, vec![i("1.0.0"), lim("*")])],
            &[],
        );
        assert!(check(&e, Ecosystem::Go, "v9.0.0"));
    }

    #[test]
    fn git_ranges_are_skipped_not_fatal() {
        let e = entry(
            "PyPI",
            vec![
                (
                    RangeType::Git,
                    vec![i("0"), f("a3f1c2d0e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4")],
                ),
                (RangeType::Ecosystem, vec![i("1.0"), f("1.4")]),
            ],
            &[],
        );
        assert!(check(&e, Ecosystem::PyPi, "1.3"));
        assert!(!check(&e, Ecosystem::PyPi, "1.4"));
    }

    #[test]
    fn listed_versions_use_the_ecosystems_equality() {
        let e = entry("PyPI", vec![], &["1.0", "not/a version"]);
        assert!(check(&e, Ecosystem::PyPi, "1.0.0"));
        assert!(!check(&e, Ecosystem::PyPi, "1.0.1"));
    }

    #[test]
    fn errors_name_the_cause() {
        let e = entry(
            "npm",
            vec![(RangeType::Ecosystem, vec![i("0"), f("1.x")])],
            &[],
        );
        let v = Version::parse(Ecosystem::Npm, "1.0.0").unwrap();
        assert!(matches!(affected(&e, &v), Err(MatchError::Event(_))));
        let v = Version::parse(Ecosystem::PyPi, "1.0").unwrap();
        assert!(matches!(
            affected(&e, &v),
            Err(MatchError::EcosystemMismatch { .. })
        ));
        let e = entry("Hex", vec![], &[]);
        assert!(matches!(
            affected(&e, &v),
            Err(MatchError::UnsupportedEcosystem(_))
        ));
    }
}
