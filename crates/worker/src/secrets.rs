//! Secret values never leave the worker: a secrets finding carries a redacted form (first and
//! last characters) and a SHA-256 of the value, and its message is scrubbed of the value.

use picket_core::protocol::RedactedSecret;
use sha2::{Digest, Sha256};

/// The secret value inside a match: the content of the last quoted string if the match has one
/// (an assignment such as `token = "…"`), else the match itself, trimmed.
pub fn value_of(matched: &str) -> &str {
    let trimmed = matched.trim();
    for quote in ['"', '\''] {
        if let Some(end) = trimmed.rfind(quote) {
            if let Some(start) = trimmed[..end].rfind(quote) {
                let inner = &trimmed[start + 1..end];
                if !inner.is_empty() {
                    return inner;
                }
            }
        }
    }
    trimmed
}

/// First 4 and last 2 characters of long values, fewer of short ones, never more than a third.
pub fn redact(value: &str) -> RedactedSecret {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let (head, tail) = if n >= 18 {
        (4, 2)
    } else if n >= 9 {
        (2, 1)
    } else {
        (0, 0)
    };
    let redacted = format!(
        "{}…{}",
        chars[..head].iter().collect::<String>(),
        chars[n - tail..].iter().collect::<String>()
    );
    RedactedSecret {
        redacted,
        sha256: hex::encode(Sha256::digest(value.as_bytes())),
    }
}

/// `text` with every occurrence of `value` replaced by its redacted form.
pub fn scrub(text: &str, value: &str, redacted: &str) -> String {
    if value.is_empty() {
        text.to_owned()
    } else {
        text.replace(value, redacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_is_found_inside_assignments() {
        assert_eq!(value_of(r#"api_token = "s3cr3tvalue""#), "s3cr3tvalue");
        assert_eq!(value_of("ghp_abc123"), "ghp_abc123");
        assert_eq!(value_of("  'x' "), "x");
    }

    #[test]
    fn redaction_keeps_little_and_hashes_the_value() {
        let v = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
        let r = redact(v);
        assert_eq!(r.redacted, "ghp_…89");
        assert_eq!(r.sha256.len(), 64);
        assert!(!r.redacted.contains("abcdefgh"));
        assert_eq!(redact("short").redacted, "…");
        assert_eq!(redact("medium-len").redacted, "me…n");
    }

    #[test]
    fn scrub_replaces_every_occurrence() {
        assert_eq!(scrub("a SECRET b SECRET", "SECRET", "S…T"), "a S…T b S…T");
    }
}
