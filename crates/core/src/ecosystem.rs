//! Package ecosystems, as the OSV schema names them, and the package names each one treats as
//! the same package.
//!
//! Supply Chain (domain.md §1, §6) reads lockfiles into packages of an ecosystem and matches them
//! against OSV advisories of that ecosystem; both sides compare names after [`Ecosystem::normalize`].

use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An ecosystem Picket reads lockfiles of and matches advisories for. The names are the OSV
/// schema's `affected[].package.ecosystem` values (<https://ossf.github.io/osv-schema/#defined-ecosystems>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Ecosystem {
    /// `npm`: package-lock.json, npm-shrinkwrap.json, yarn.lock, pnpm-lock.yaml, bun.lock.
    #[serde(rename = "npm")]
    Npm,
    /// `PyPI`: requirements*.txt, poetry.lock, Pipfile.lock, uv.lock, pdm.lock.
    #[serde(rename = "PyPI")]
    PyPi,
    /// `crates.io`: Cargo.lock.
    #[serde(rename = "crates.io")]
    CratesIo,
    /// `Go`: go.mod (module paths).
    #[serde(rename = "Go")]
    Go,
    /// `RubyGems`: Gemfile.lock.
    #[serde(rename = "RubyGems")]
    RubyGems,
    /// `Maven`: gradle.lockfile (`group:artifact`).
    #[serde(rename = "Maven")]
    Maven,
    /// `Packagist`: composer.lock (`vendor/package`).
    #[serde(rename = "Packagist")]
    Packagist,
}

impl Ecosystem {
    /// Every ecosystem, in a fixed order.
    pub const ALL: [Ecosystem; 7] = [
        Ecosystem::Npm,
        Ecosystem::PyPi,
        Ecosystem::CratesIo,
        Ecosystem::Go,
        Ecosystem::RubyGems,
        Ecosystem::Maven,
        Ecosystem::Packagist,
    ];

    /// The OSV name (`PyPI`, `crates.io`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::PyPi => "PyPI",
            Ecosystem::CratesIo => "crates.io",
            Ecosystem::Go => "Go",
            Ecosystem::RubyGems => "RubyGems",
            Ecosystem::Maven => "Maven",
            Ecosystem::Packagist => "Packagist",
        }
    }

    /// `name` as the ecosystem's registry identifies the package, so that two spellings of one
    /// package compare equal:
    /// - PyPI: PEP 503 (lowercase, every run of `-`, `_`, `.` one `-`);
    /// - crates.io: lowercase, `_` as `-` (crates.io refuses a new crate whose name differs
    ///   from an existing one only so);
    /// - Packagist: lowercase (Composer package names are case-insensitive);
    /// - npm, Go, RubyGems, Maven: unchanged (their names are case-sensitive).
    pub fn normalize(self, name: &str) -> String {
        match self {
            Ecosystem::PyPi => {
                let mut out = String::with_capacity(name.len());
                let mut in_run = false;
                for c in name.trim().chars() {
                    if matches!(c, '-' | '_' | '.') {
                        if !in_run {
                            out.push('-');
                        }
                        in_run = true;
                    } else {
                        out.extend(c.to_lowercase());
                        in_run = false;
                    }
                }
                out
            }
            Ecosystem::CratesIo => name.trim().to_ascii_lowercase().replace('_', "-"),
            Ecosystem::Packagist => name.trim().to_ascii_lowercase(),
            Ecosystem::Npm | Ecosystem::Go | Ecosystem::RubyGems | Ecosystem::Maven => {
                name.trim().to_owned()
            }
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Ecosystem {
    type Err = ParseError;

    /// The OSV name, exactly (`PyPI`, not `pypi`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ecosystem::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| ParseError {
                what: "ecosystem",
                value: s.to_owned(),
                expected: "npm, PyPI, crates.io, Go, RubyGems, Maven or Packagist",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for e in Ecosystem::ALL {
            assert_eq!(e.as_str().parse::<Ecosystem>(), Ok(e));
            assert_eq!(serde_json::to_string(&e).unwrap(), format!("\"{e}\""));
        }
        assert!("pypi".parse::<Ecosystem>().is_err());
        assert!("Debian".parse::<Ecosystem>().is_err());
    }

    #[test]
    fn spellings_of_one_package_normalize_alike() {
        let py = Ecosystem::PyPi;
        assert_eq!(py.normalize("Friendly-Bard"), "friendly-bard");
        assert_eq!(py.normalize("friendly.bard"), "friendly-bard");
        assert_eq!(py.normalize("FRIENDLY__.-bard"), "friendly-bard");
        assert_eq!(Ecosystem::CratesIo.normalize("Serde_JSON"), "serde-json");
        assert_eq!(
            Ecosystem::Packagist.normalize("Symfony/HTTP-Kernel"),
            "symfony/http-kernel"
        );
        assert_eq!(Ecosystem::Npm.normalize("@Scope/Pkg"), "@Scope/Pkg");
        assert_eq!(
            Ecosystem::Go.normalize("github.com/BurntSushi/toml"),
            "github.com/BurntSushi/toml"
        );
    }
}
