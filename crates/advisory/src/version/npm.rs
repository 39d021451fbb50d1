//! npm versions, as node-semver reads them (`new SemVer(v)`, not loose) and orders them
//! (`semver.compare`): <https://github.com/npm/node-semver> (`classes/semver.js`,
//! `internal/re.js`, `internal/constants.js`).
//!
//! node-semver's strict grammar is SemVer 2.0 plus two allowances: surrounding white space is
//! trimmed and one leading `v` is dropped. It also refuses strings longer than 256 characters and
//! numbers above `Number.MAX_SAFE_INTEGER`. Its order is SemVer precedence: build metadata is
//! ignored by `compare` (only `compareBuild` looks at it).

use super::SemverKey;

/// node-semver's `MAX_LENGTH`: longer strings are refused before parsing.
const MAX_LENGTH: usize = 256;
/// `Number.MAX_SAFE_INTEGER` (2^53 − 1): node-semver refuses a larger major, minor or patch.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// An npm version ordered like node-semver's `compare`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NpmVersion(SemverKey);

impl NpmVersion {
    /// Parses like `new SemVer(version)` in node-semver 7.
    ///
    /// # Errors
    /// Why node-semver would throw `Invalid Version` (or `Invalid major version`, …).
    pub fn parse(version: &str) -> Result<NpmVersion, String> {
        if version.len() > MAX_LENGTH {
            return Err(format!("longer than {MAX_LENGTH} characters"));
        }
        let trimmed = version.trim();
        let body = trimmed.strip_prefix('v').unwrap_or(trimmed);
        let parsed = semver::Version::parse(body).map_err(|e| e.to_string())?;
        for (what, n) in [
            ("major", parsed.major),
            ("minor", parsed.minor),
            ("patch", parsed.patch),
        ] {
            if n > MAX_SAFE_INTEGER {
                return Err(format!("{what} version above Number.MAX_SAFE_INTEGER"));
            }
        }
        Ok(NpmVersion(SemverKey::from(parsed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_semver_allowances_and_limits() {
        let v = |s: &str| NpmVersion::parse(s);
        assert_eq!(v(" v1.2.3 ").unwrap(), v("1.2.3").unwrap());
        assert_eq!(v("1.2.3+build.1").unwrap(), v("1.2.3").unwrap());
        assert!(v("=1.2.3").is_err(), "`=` is loose-mode only");
        assert!(v("V1.2.3").is_err());
        assert!(v("1.2").is_err());
        assert!(v("9007199254740991.0.0").is_ok());
        assert!(v("9007199254740992.0.0").is_err());
        assert!(v(&format!("1.0.0-{}", "a".repeat(300))).is_err());
        assert!(v("1.0.0-alpha.1").unwrap() < v("1.0.0-alpha.beta").unwrap());
    }
}
