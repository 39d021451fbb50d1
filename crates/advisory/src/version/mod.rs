//! Version order per ecosystem.
//!
//! [`Version::parse`] reads a version string with the rules of one [`Ecosystem`]; two versions
//! of the same ecosystem compare with that ecosystem's order, and are equal when the ecosystem
//! says so (PyPI `1.0 == 1.0.0`, npm `1.0.0+a == 1.0.0+b`), not when their strings are. Each
//! order is tested against the ecosystem's reference implementation (tests/advisory/differential.rs):
//!
//! | ecosystem | order | implemented by | reference |
//! |---|---|---|---|
//! | npm | node-semver's `compare` | [`semver`] crate + node-semver's syntax ([`npm`]) | npm `semver` |
//! | crates.io | SemVer 2.0 precedence (<https://semver.org/#spec-item-11>), build ignored | [`semver`] crate | node-semver's `compare` (the same precedence) |
//! | Go | SemVer 2.0 precedence, `v` optional, `+incompatible` ignored (`golang.org/x/mod/semver`) | [`semver`] crate ([`go`]) | node-semver's `compare` |
//! | PyPI | PEP 440 | [`pep440_rs`] | Python `packaging` |
//! | RubyGems | `Gem::Version#<=>` | [`rubygems`] | Ruby's `Gem::Version` |
//! | Maven | `ComparableVersion` (Maven 3.8) | [`maven`] | Debian's `maven-artifact` |
//! | Packagist | Composer's normalisation, then `version_compare` | [`packagist`] | Debian's `php` + `composer/semver` |
//!
//! A version an ecosystem does not accept is a [`VersionError`], never a panic.

/// Implements `PartialEq`, `Eq`, `PartialOrd` and `Ord` for a version type from its
/// `fn order(&self, other: &Self) -> Ordering`, so that equality is the ecosystem's (equal when
/// the order says so), not structural.
macro_rules! order_from {
    ($t:ty) => {
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.order(other) == std::cmp::Ordering::Equal
            }
        }
        impl Eq for $t {}
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $t {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.order(other)
            }
        }
    };
}

pub mod go;
pub mod maven;
pub mod npm;
pub mod packagist;
pub mod rubygems;

use picket_core::Ecosystem;
use std::cmp::Ordering;
use std::fmt;

/// A version string the ecosystem does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ecosystem} version {version:?}: {reason}")]
pub struct VersionError {
    /// The ecosystem whose rules refused it.
    pub ecosystem: Ecosystem,
    /// The string as given.
    pub version: String,
    /// Why, in the words of the ecosystem's grammar.
    pub reason: String,
}

/// A parsed version of one ecosystem.
#[derive(Debug, Clone)]
pub struct Version {
    raw: String,
    key: Key,
}

/// The comparable form of each ecosystem's version.
#[derive(Debug, Clone)]
enum Key {
    Npm(npm::NpmVersion),
    CratesIo(SemverKey),
    Go(go::GoVersion),
    PyPi(pep440_rs::Version),
    RubyGems(rubygems::GemVersion),
    Maven(maven::MavenVersion),
    Packagist(packagist::PackagistVersion),
}

impl Version {
    /// Reads `version` with the rules of `ecosystem`.
    ///
    /// # Errors
    /// [`VersionError`] when the ecosystem does not accept the string (for PyPI, a string
    /// `packaging.version.Version` refuses; for npm, one `semver.parse` returns `null` for; …).
    pub fn parse(ecosystem: Ecosystem, version: &str) -> Result<Version, VersionError> {
        let key = match ecosystem {
            Ecosystem::Npm => npm::NpmVersion::parse(version).map(Key::Npm),
            Ecosystem::CratesIo => SemverKey::parse_strict(version).map(Key::CratesIo),
            Ecosystem::Go => go::GoVersion::parse(version).map(Key::Go),
            Ecosystem::PyPi => version
                .parse::<pep440_rs::Version>()
                .map(Key::PyPi)
                .map_err(|e| e.to_string()),
            Ecosystem::RubyGems => rubygems::GemVersion::parse(version).map(Key::RubyGems),
            Ecosystem::Maven => Ok(Key::Maven(maven::MavenVersion::parse(version))),
            Ecosystem::Packagist => packagist::PackagistVersion::parse(version).map(Key::Packagist),
        }
        .map_err(|reason| VersionError {
            ecosystem,
            version: version.to_owned(),
            reason,
        })?;
        Ok(Version {
            raw: version.to_owned(),
            key,
        })
    }

    /// The ecosystem whose rules read this version.
    pub fn ecosystem(&self) -> Ecosystem {
        match self.key {
            Key::Npm(_) => Ecosystem::Npm,
            Key::CratesIo(_) => Ecosystem::CratesIo,
            Key::Go(_) => Ecosystem::Go,
            Key::PyPi(_) => Ecosystem::PyPi,
            Key::RubyGems(_) => Ecosystem::RubyGems,
            Key::Maven(_) => Ecosystem::Maven,
            Key::Packagist(_) => Ecosystem::Packagist,
        }
    }

    /// The string as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Equal when the ecosystem says so; versions of different ecosystems are never equal.
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.partial_cmp(other) == Some(Ordering::Equal)
    }
}

/// The ecosystem's order; `None` between versions of different ecosystems.
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(match (&self.key, &other.key) {
            (Key::Npm(a), Key::Npm(b)) => a.cmp(b),
            (Key::CratesIo(a), Key::CratesIo(b)) => a.cmp(b),
            (Key::Go(a), Key::Go(b)) => a.cmp(b),
            (Key::PyPi(a), Key::PyPi(b)) => a.cmp(b),
            (Key::RubyGems(a), Key::RubyGems(b)) => a.cmp(b),
            (Key::Maven(a), Key::Maven(b)) => a.cmp(b),
            (Key::Packagist(a), Key::Packagist(b)) => a.cmp(b),
            _ => return None,
        })
    }
}

/// Compares two version strings of one ecosystem.
///
/// # Errors
/// The first of the two that the ecosystem does not accept.
pub fn compare(ecosystem: Ecosystem, a: &str, b: &str) -> Result<Ordering, VersionError> {
    let a = Version::parse(ecosystem, a)?;
    let b = Version::parse(ecosystem, b)?;
    // Same ecosystem on both sides, so the order is total.
    Ok(a.partial_cmp(&b).unwrap_or(Ordering::Equal))
}

/// A SemVer 2.0 version ordered by precedence (<https://semver.org/#spec-item-11>): build
/// metadata is dropped, so `1.0.0+a == 1.0.0+b`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SemverKey(semver::Version);

impl SemverKey {
    /// Strict SemVer 2.0 (crates.io, Cargo.lock): no `v`, no spaces, three numbers.
    ///
    /// # Errors
    /// The [`semver`] crate's reason.
    pub fn parse_strict(version: &str) -> Result<SemverKey, String> {
        semver::Version::parse(version)
            .map(SemverKey::from)
            .map_err(|e| e.to_string())
    }

    /// The version without its build metadata.
    pub fn as_semver(&self) -> &semver::Version {
        &self.0
    }
}

impl From<semver::Version> for SemverKey {
    fn from(mut v: semver::Version) -> Self {
        v.build = semver::BuildMetadata::EMPTY;
        SemverKey(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Ecosystem::*;

    /// Mostly version-shaped strings (so that most read in some ecosystem), some noise.
    fn version_like() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => "v?[0-9]{1,3}(\\.[0-9a-z]{1,3}){0,3}([-+._][0-9a-zA-Z]{1,5}){0,2}",
            1 => "[0-9a-zA-Z.+~_ *#-]{0,16}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any string: a version or an error, never a panic; and where both read, the order is
        /// reflexive and antisymmetric.
        #[test]
        fn any_string_parses_or_errs_and_orders_consistently(
            a in version_like(),
            b in version_like(),
        ) {
            for e in Ecosystem::ALL {
                let (va, vb) = (Version::parse(e, &a), Version::parse(e, &b));
                if let (Ok(va), Ok(vb)) = (va, vb) {
                    prop_assert_eq!(va.partial_cmp(&va), Some(Ordering::Equal), "{} {:?}", e, a);
                    let ab = va.partial_cmp(&vb).unwrap();
                    prop_assert_eq!(vb.partial_cmp(&va), Some(ab.reverse()), "{} {:?} {:?}", e, a, b);
                }
            }
        }
    }

    fn cmp(e: Ecosystem, a: &str, b: &str) -> Ordering {
        compare(e, a, b).unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn equality_is_the_ecosystems_not_the_strings() {
        assert_eq!(cmp(PyPi, "1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(cmp(PyPi, "1!0.5", "2.0"), Ordering::Greater, "epoch first");
        assert_eq!(cmp(PyPi, "1.0+local.7", "1.0"), Ordering::Greater);
        assert_eq!(cmp(CratesIo, "1.0.0+a", "1.0.0+b"), Ordering::Equal);
        assert_eq!(
            cmp(CratesIo, "1.0.0-alpha.2", "1.0.0-alpha.10"),
            Ordering::Less
        );
        assert_eq!(cmp(RubyGems, "1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(cmp(Maven, "1.0", "1.0.0-ga"), Ordering::Equal);
    }

    #[test]
    fn versions_of_different_ecosystems_do_not_compare() {
        let a = Version::parse(Npm, "1.0.0").unwrap();
        let b = Version::parse(CratesIo, "1.0.0").unwrap();
        assert_eq!(a.partial_cmp(&b), None);
        assert_ne!(a, b);
        assert_eq!(a.ecosystem(), Npm);
        assert_eq!(a.to_string(), "1.0.0");
    }

    #[test]
    fn refused_versions_are_errors_naming_the_ecosystem() {
        let err = compare(CratesIo, "1.0", "1.0.0").unwrap_err();
        assert_eq!((err.ecosystem, err.version.as_str()), (CratesIo, "1.0"));
        assert!(compare(PyPi, "1.0", "not a version").is_err());
        assert!(compare(Npm, "1.0.0", "01.0.0").is_err());
    }
}
