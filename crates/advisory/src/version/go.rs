//! Go module versions (<https://go.dev/ref/mod#versions>, `golang.org/x/mod/semver`): SemVer 2.0
//! with a `v` prefix. OSV's Go records write them without the `v` (`"fixed": "1.2.3"`) while
//! go.mod has it (`v1.2.3`), so the prefix is optional here. As in `x/mod/semver`, the shorthands
//! `v1` and `v1.2` mean `v1.0.0` and `v1.2.0`, and build metadata (notably `+incompatible`, which
//! marks a v2+ module without a `/vN` path) is ignored by the order. Pseudo-versions
//! (`v0.0.0-20191109021931-daa7c04131f5`) are ordinary pre-releases and order as such.

use super::SemverKey;

/// A Go module version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoVersion(SemverKey);

impl GoVersion {
    /// Parses `v1.2.3`, `1.2.3`, `v1.2.3-pre+incompatible`, and the shorthands `v1`, `v1.2`.
    ///
    /// # Errors
    /// Not a Go module version (leading zeros, a fourth number, a shorthand with a suffix, …).
    pub fn parse(version: &str) -> Result<GoVersion, String> {
        let body = version.strip_prefix('v').unwrap_or(version);
        let dots = body.bytes().filter(|&b| b == b'.').count();
        let is_shorthand =
            !body.is_empty() && dots < 2 && body.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        let full = if is_shorthand {
            format!("{body}{}", ".0".repeat(2 - dots))
        } else {
            body.to_owned()
        };
        semver::Version::parse(&full)
            .map(|v| GoVersion(SemverKey::from(v)))
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_shorthand_incompatible_and_pseudo_versions() {
        let v = |s: &str| GoVersion::parse(s).unwrap();
        assert_eq!(v("v1.2.3"), v("1.2.3"));
        assert_eq!(v("v1"), v("1.0.0"));
        assert_eq!(v("v1.2"), v("1.2.0"));
        assert_eq!(v("v2.0.0+incompatible"), v("2.0.0"));
        assert!(v("v0.0.0-20191109021931-daa7c04131f5") < v("v0.0.1"));
        assert!(v("v1.2.4-0.20191109021931-daa7c04131f5") > v("v1.2.3"));
        for bad in ["v1.2-pre", "v01.2.3", "1.2.3.4", "", "v", "latest"] {
            assert!(GoVersion::parse(bad).is_err(), "{bad}");
        }
    }
}
