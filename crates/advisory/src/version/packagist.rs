//! Packagist versions, ordered as Composer orders them: each version is first normalised by
//! Composer's `VersionParser::normalize` (composer/semver 3.x, `src/VersionParser.php`,
//! <https://github.com/composer/semver>), then two normalised versions are compared with PHP's
//! `version_compare` (php-src `ext/standard/versioning.c`, <https://www.php.net/version_compare>),
//! which is what Composer's constraints do.
//!
//! Normalising pads the release to four numbers and spells the stability suffix one way
//! (`v1.2-beta.3` is `1.2.0.0-beta3`, `1.0.0-rc1` is `1.0.0.0-RC1`), so `1.2` and `1.2.0` are
//! equal here although raw `version_compare` orders them. A branch (`dev-main`, `master`) has
//! no place in the order (Composer never orders a branch against a release) and is refused, as
//! is anything Composer refuses.

use regex::Regex;
use std::cmp::Ordering;
use std::sync::LazyLock;

/// A Packagist version: Composer's normalised form.
#[derive(Debug, Clone)]
pub struct PackagistVersion {
    normalized: String,
}

impl PackagistVersion {
    /// Normalises like `VersionParser::normalize($version)`.
    ///
    /// # Errors
    /// Composer's `Invalid version string`, or the version names a branch.
    pub fn parse(version: &str) -> Result<PackagistVersion, String> {
        let normalized = normalize(version)?;
        if normalized.starts_with("dev-") {
            return Err(format!(
                "`{normalized}` is a branch, which has no place in the version order"
            ));
        }
        Ok(PackagistVersion { normalized })
    }

    /// The normalised form (`1.2.0.0-beta3`).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

impl PackagistVersion {
    /// The ecosystem's order (see the module's header).
    fn order(&self, other: &Self) -> Ordering {
        version_compare(&self.normalized, &other.normalized)
    }
}

order_from!(PackagistVersion);

// PCRE's `\s` without the `u` flag is `[ \t\n\x0B\x0C\r]`: spelled out below.
/// `VersionParser::$modifierRegex`, with the possessive quantifiers (which change nothing
/// here: no stability word can start with a digit) written greedy.
const MODIFIER: &str =
    r"[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?[0-9]+)*)?)?([.-]?dev)?";

fn regex(pattern: &str) -> Regex {
    // The patterns are constants of this file; the unit tests compile every one.
    Regex::new(pattern).unwrap_or_else(|e| panic!("pattern {pattern}: {e}"))
}

static ALIAS: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^([^,\t\n\x0B\x0C\r ]+) +as +[^,\t\n\x0B\x0C\r ]+$"));
static STABILITY_FLAG: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)@(?:stable|RC|beta|alpha|dev)$"));
static BUILD: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^([^,\t\n\x0B\x0C\r +]+)\+[^\t\n\x0B\x0C\r ]+$"));
static CLASSICAL: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)^v?([0-9]{{1,5}})(\.[0-9]+)?(\.[0-9]+)?(\.[0-9]+)?{MODIFIER}$"
    ))
});
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)^v?([0-9]{{4}}(?:[.:-]?[0-9]{{2}}){{1,6}}(?:[.:-]?[0-9]{{1,3}})?){MODIFIER}$"
    ))
});
static DEV_SUFFIX: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)^(.*?)[.-]?dev$"));
static BRANCH: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)^v?([0-9]+)(\.(?:[0-9]+|[x*]))?(\.(?:[0-9]+|[x*]))?(\.(?:[0-9]+|[x*]))?$")
});

/// PHP's `trim()` characters.
fn php_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r', '\0', '\u{b}'])
}

/// `VersionParser::normalize($version)` of composer/semver 3.3.
fn normalize(version: &str) -> Result<String, String> {
    let orig = php_trim(version);
    let mut version = orig.to_owned();
    if let Some(c) = ALIAS.captures(&version) {
        version = c[1].to_owned();
    }
    if let Some(m) = STABILITY_FLAG.find(&version) {
        version.truncate(m.start());
    }
    if matches!(version.as_str(), "master" | "trunk" | "default") {
        version = format!("dev-{version}");
    }
    if version.len() >= 4 && version[..4].eq_ignore_ascii_case("dev-") {
        return Ok(format!("dev-{}", &version[4..]));
    }
    if let Some(c) = BUILD.captures(&version) {
        version = c[1].to_owned();
    }
    let group = |c: &regex::Captures<'_>, i: usize| c.get(i).map_or("", |m| m.as_str()).to_owned();
    let matched = if let Some(c) = CLASSICAL.captures(&version) {
        let mut v = group(&c, 1);
        for i in 2..=4 {
            let part = group(&c, i);
            v.push_str(if part.is_empty() { ".0" } else { &part });
        }
        Some((v, group(&c, 5), group(&c, 6), group(&c, 7)))
    } else {
        DATE.captures(&version).map(|c| {
            let digits: String = group(&c, 1)
                .chars()
                .map(|ch| if ch.is_ascii_digit() { ch } else { '.' })
                .collect();
            (digits, group(&c, 2), group(&c, 3), group(&c, 4))
        })
    };
    if let Some((mut v, stability, number, dev)) = matched {
        if !stability.is_empty() {
            if stability == "stable" {
                return Ok(v);
            }
            v.push('-');
            v.push_str(&expand_stability(&stability));
            v.push_str(number.trim_start_matches(['.', '-']));
        }
        if !dev.is_empty() {
            v.push_str("-dev");
        }
        return Ok(v);
    }
    if let Some(c) = DEV_SUFFIX.captures(&version) {
        let branch = normalize_branch(&c[1]);
        if !branch.contains("dev-") {
            return Ok(branch);
        }
    }
    Err(format!("invalid version string {orig:?} (Composer)"))
}

/// `VersionParser::expandStability`.
fn expand_stability(stability: &str) -> String {
    match stability.to_ascii_lowercase().as_str() {
        "a" => "alpha".to_owned(),
        "b" => "beta".to_owned(),
        "p" | "pl" => "patch".to_owned(),
        "rc" => "RC".to_owned(),
        other => other.to_owned(),
    }
}

/// `VersionParser::normalizeBranch`: `1.x` is `1.9999999.9999999.9999999-dev`.
fn normalize_branch(name: &str) -> String {
    let name = php_trim(name);
    match BRANCH.captures(name) {
        Some(c) => {
            let mut v = String::new();
            for i in 1..5 {
                match c.get(i) {
                    Some(m) => v.push_str(&m.as_str().replace(['*', 'X'], "x")),
                    None => v.push_str(".x"),
                }
            }
            format!("{}-dev", v.replace('x', "9999999"))
        }
        None => format!("dev-{name}"),
    }
}

/// PHP's `version_compare($a, $b)` (php-src `ext/standard/versioning.c`, PHP 8.2), byte for
/// byte: both strings are canonicalised (`-`, `_`, `+` and other non-alphanumerics become
/// `.`, and a `.` goes between digits and non-digits), then compared part by part: numbers by
/// value, words by their special form (`dev < alpha = a < beta = b < RC = rc < number < pl =
/// p`, any other word below `dev`, matched by prefix and case-sensitively), a number above a
/// word except `pl`/`p`; when one side runs out, a remaining number makes its side greater and a
/// remaining word compares against a number.
pub fn version_compare(a: &str, b: &str) -> Ordering {
    compare_c(until_nul(a.as_bytes()), until_nul(b.as_bytes()))
}

/// PHP passes C strings: nothing after a NUL byte is seen.
fn until_nul(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |i| &s[..i])
}

fn compare_c(v1: &[u8], v2: &[u8]) -> Ordering {
    if v1.is_empty() || v2.is_empty() {
        return (!v1.is_empty()).cmp(&!v2.is_empty());
    }
    let c1 = if v1[0] == b'#' {
        v1.to_vec()
    } else {
        canonicalize(v1)
    };
    let c2 = if v2[0] == b'#' {
        v2.to_vec()
    } else {
        canonicalize(v2)
    };
    let at = |buf: &[u8], i: usize| buf.get(i).copied().unwrap_or(0);
    let (mut p1, mut p2) = (0usize, 0usize);
    // C's n1/n2: `Some` while the last part read ended at a `.` (more parts may follow).
    let (mut n1, mut n2) = (Some(0usize), Some(0usize));
    let mut compare = Ordering::Equal;
    while at(&c1, p1) != 0 && at(&c2, p2) != 0 && n1.is_some() && n2.is_some() {
        n1 = c1[p1..].iter().position(|&b| b == b'.').map(|i| p1 + i);
        n2 = c2[p2..].iter().position(|&b| b == b'.').map(|i| p2 + i);
        let e1 = &c1[p1..n1.unwrap_or(c1.len())];
        let e2 = &c2[p2..n2.unwrap_or(c2.len())];
        let d1 = e1.first().is_some_and(u8::is_ascii_digit);
        let d2 = e2.first().is_some_and(u8::is_ascii_digit);
        compare = match (d1, d2) {
            (true, true) => strtol(e1).cmp(&strtol(e2)),
            (false, false) => special_forms(e1, e2),
            (true, false) => special_forms(b"#N#", e2),
            (false, true) => special_forms(e1, b"#N#"),
        };
        if compare != Ordering::Equal {
            break;
        }
        if let Some(n) = n1 {
            p1 = n + 1;
        }
        if let Some(n) = n2 {
            p2 = n + 1;
        }
    }
    if compare == Ordering::Equal {
        if n1.is_some() {
            compare = if at(&c1, p1).is_ascii_digit() {
                Ordering::Greater
            } else {
                compare_c(&c1[p1.min(c1.len())..], b"#N#")
            };
        } else if n2.is_some() {
            compare = if at(&c2, p2).is_ascii_digit() {
                Ordering::Less
            } else {
                compare_c(b"#N#", &c2[p2.min(c2.len())..])
            };
        }
    }
    compare
}

/// C's `strtol(s, NULL, 10)` on a run of digits: saturates at `LONG_MAX` (64-bit).
fn strtol(digits: &[u8]) -> i64 {
    digits
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i64, |n, &d| {
            n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        })
}

/// `compare_special_version_forms`: the order of the first form each part starts with.
fn special_forms(a: &[u8], b: &[u8]) -> Ordering {
    const FORMS: [(&[u8], i8); 10] = [
        (b"dev", 0),
        (b"alpha", 1),
        (b"a", 1),
        (b"beta", 2),
        (b"b", 2),
        (b"RC", 3),
        (b"rc", 3),
        (b"#", 4),
        (b"pl", 5),
        (b"p", 5),
    ];
    let order = |form: &[u8]| {
        FORMS
            .iter()
            .find(|(name, _)| form.starts_with(name))
            .map_or(-1, |&(_, order)| order)
    };
    order(a).cmp(&order(b))
}

/// `php_canonicalize_version`.
fn canonicalize(version: &[u8]) -> Vec<u8> {
    let is_dig = |c: u8| c.is_ascii_digit();
    let is_ndig = |c: u8| !c.is_ascii_digit() && c != b'.';
    let mut out = Vec::with_capacity(version.len() * 2);
    let mut lp = version[0];
    out.push(lp);
    for &c in &version[1..] {
        let last_is_dot = out.last() == Some(&b'.');
        if matches!(c, b'-' | b'_' | b'+') {
            if !last_is_dot {
                out.push(b'.');
            }
        } else if (is_ndig(lp) && is_dig(c)) || (is_dig(lp) && is_ndig(c)) {
            if !last_is_dot {
                out.push(b'.');
            }
            out.push(c);
        } else if !c.is_ascii_alphanumeric() {
            if !last_is_dot {
                out.push(b'.');
            }
        } else {
            out.push(c);
        }
        lp = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_compare_follows_php() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0", "1.0.0", Less),
            ("1.0rc1", "1.0", Less),
            ("1.0", "1.0pl1", Less),
            ("1.0-dev", "1.0-alpha", Less),
            ("1.0.0-beta", "1.0.0-RC", Less),
            ("1.0.0-foo", "1.0.0-dev", Less),
            ("5.2", "5.10", Less),
            ("1", "", Greater),
            ("", "", Equal),
        ] {
            assert_eq!(version_compare(a, b), want, "{a} vs {b}");
            assert_eq!(version_compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn composer_normalises_before_comparing() {
        let n = |s: &str| normalize(s).unwrap();
        assert_eq!(n("v1.2"), "1.2.0.0");
        assert_eq!(n("1.0.0-rc.1"), "1.0.0.0-RC1");
        assert_eq!(n("1.0.0-beta.2+build"), "1.0.0.0-beta2");
        assert_eq!(n("2.0.0-p1"), "2.0.0.0-patch1");
        assert_eq!(n("1.x-dev"), "1.9999999.9999999.9999999-dev");
        assert_eq!(n("2010-01-02"), "2010.01.02");
        assert_eq!(n("dev-main"), "dev-main");
        assert!(normalize("not a version").is_err());
        let v = |s: &str| PackagistVersion::parse(s).unwrap();
        assert_eq!(v("1.2"), v("v1.2.0"));
        assert!(v("1.0.0-beta1") < v("1.0.0"));
        assert!(PackagistVersion::parse("dev-main").is_err());
    }
}
