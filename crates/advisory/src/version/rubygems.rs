//! RubyGems versions, as `Gem::Version` reads and orders them (rubygems 3.3, the one Ruby 3.1
//! ships: `lib/rubygems/version.rb`, <https://github.com/rubygems/rubygems>).
//!
//! - Accepted: `ANCHORED_VERSION_PATTERN`,
//!   `\A\s*([0-9]+(?>\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?)?\s*\z`; a blank string
//!   is version `0`.
//! - Read: stripped, every `-` replaced by `.pre.`, then split into segments by
//!   `/[0-9]+|[a-z]+/i` (digits become integers, of any size).
//! - Canonical segments: the leading numeric segments and the rest (from the first letter
//!   segment on) each lose their trailing zeros, then are joined: `1.0.0` is `[1]`, `1.0.a.0` is
//!   `[1, "a"]`.
//! - `<=>`: equal when the canonical segments are; otherwise segment by segment, a missing one
//!   reading as `0`, a string before a number, numbers by value and strings bytewise.

use std::cmp::Ordering;

/// A gem version.
#[derive(Debug, Clone)]
pub struct GemVersion {
    canonical: Vec<Segment>,
}

/// One segment: a number (decimal digits, no leading zeros, so comparing by length then bytes
/// is comparing by value) or a run of ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Number(String),
    Letters(String),
}

impl Segment {
    fn is_zero(&self) -> bool {
        matches!(self, Segment::Number(n) if n == "0")
    }
}

/// Ruby's `\s`: space, \t, \n, \v, \f, \r.
fn is_ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

impl GemVersion {
    /// Parses like `Gem::Version.new(version)`.
    ///
    /// # Errors
    /// `Malformed version number string`: the string does not match `ANCHORED_VERSION_PATTERN`.
    pub fn parse(version: &str) -> Result<GemVersion, String> {
        let body = version.trim_matches(is_ruby_space);
        if !body.is_empty() && !matches_version_pattern(body) {
            return Err("malformed version number string (Gem::Version)".to_owned());
        }
        let segments = segments(&body.replace('-', ".pre."));
        let first_letters = segments
            .iter()
            .position(|s| matches!(s, Segment::Letters(_)))
            .unwrap_or(segments.len());
        let (numeric, rest) = segments.split_at(first_letters);
        let mut canonical = without_trailing_zeros(numeric);
        canonical.extend(without_trailing_zeros(rest));
        Ok(GemVersion { canonical })
    }
}

/// `[0-9]+(?>\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?`, matched whole.
fn matches_version_pattern(s: &str) -> bool {
    let (main, pre) = match s.find('-') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = main.split('.');
    let first_ok = parts
        .next()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let rest_ok = parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    let pre_ok = pre.is_none_or(|pre| {
        pre.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    });
    first_ok && rest_ok && pre_ok
}

/// `scan(/[0-9]+|[a-z]+/i)`, digits read as integers.
fn segments(s: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i].is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let digits = s[start..i].trim_start_matches('0');
            out.push(Segment::Number(if digits.is_empty() {
                "0".to_owned()
            } else {
                digits.to_owned()
            }));
        } else if bytes[i].is_ascii_alphabetic() {
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            out.push(Segment::Letters(s[start..i].to_owned()));
        } else {
            i += 1;
        }
    }
    out
}

fn without_trailing_zeros(segments: &[Segment]) -> Vec<Segment> {
    let keep = segments
        .iter()
        .rposition(|s| !s.is_zero())
        .map_or(0, |i| i + 1);
    segments[..keep].to_vec()
}

impl GemVersion {
    /// The ecosystem's order (see the module's header).
    fn order(&self, other: &Self) -> Ordering {
        if self.canonical == other.canonical {
            return Ordering::Equal;
        }
        let zero = Segment::Number("0".to_owned());
        let len = self.canonical.len().max(other.canonical.len());
        for i in 0..len {
            let l = self.canonical.get(i).unwrap_or(&zero);
            let r = other.canonical.get(i).unwrap_or(&zero);
            let ord = match (l, r) {
                (Segment::Number(a), Segment::Number(b)) => {
                    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
                }
                (Segment::Letters(a), Segment::Letters(b)) => a.as_bytes().cmp(b.as_bytes()),
                (Segment::Letters(_), Segment::Number(_)) => Ordering::Less,
                (Segment::Number(_), Segment::Letters(_)) => Ordering::Greater,
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }
}

order_from!(GemVersion);

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> GemVersion {
        GemVersion::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn prereleases_sort_before_their_release() {
        assert!(v("1.0.0.rc1") < v("1.0.0"));
        assert!(v("1.0.0-rc1") < v("1.0.0"));
        assert!(v("1.0.a") < v("1.0.b"));
        assert!(v("1.0.a10") > v("1.0.a9"));
        assert!(v("2.0.0.pre") > v("1.9.99"));
        assert_eq!(v("1.0"), v("1.0.0.0"));
        assert_eq!(v(" 1 "), v("1"));
        assert_eq!(v(""), v("0"));
    }

    #[test]
    fn malformed_strings_are_refused() {
        for bad in ["a1", "1..2", "1.0-", "1_0", "junk", "1.0 beta", "1.", ".1"] {
            assert!(GemVersion::parse(bad).is_err(), "{bad}");
        }
    }
}
