//! Inline suppressions: `nosemgrep` comments, applied by Picket rather than by the engine.
//!
//! The engine runs with its own suppression off (`--disable-nosem`) and every finding comes
//! back; [`suppression`] then says whether a comment covers it, so a suppressed finding is kept
//! (stored `ignored`, reason `nosemgrep`) instead of vanishing. Semgrep's own parser (1.185.0)
//! reads `nosemgrep : rule` (a space before the colon) as a bare `nosemgrep` that silences
//! every rule on the line; Picket tolerates spaces around the colon and the separators.
//!
//! What counts, following Semgrep (`Nosem.ml`, `nosemgrep.py`):
//! - a comment on the finding's first line: `nosem` or `nosemgrep` (any case) after a space or
//!   at the line's start, optionally followed by `:` or `=` and rule ids separated by commas
//!   and/or spaces;
//! - or such a comment alone on the line above (nothing but punctuation before it);
//! - without ids, every rule on that line is suppressed; with ids, only a rule whose id equals a
//!   listed id or ends with `.` + the id (the engine accepts any dotted suffix of the rule id it
//!   reports). Ids are matched against the rule's own id, never against the path prefix the
//!   engine adds, so the result does not depend on where the rules are stored;
//! - listed words that are not ids (`-->`, `*/`, quotes) are dropped.

use picket_core::protocol::InlineSuppression;
use std::sync::OnceLock;

fn inline_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(?i)(?:^|\s)nosem(?:grep)?\b(?:\s*[:=]\s*(?P<ids>.*))?")
            .expect("the nosemgrep pattern is valid")
    })
}

fn previous_line_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(?i)^[^\p{L}\p{N}]*nosem(?:grep)?\b(?:\s*[:=]\s*(?P<ids>.*))?")
            .expect("the nosemgrep pattern is valid")
    })
}

/// The comment on `line` (if any) and the ids it lists: `Some(vec![])` for a bare one.
fn comment(re: &regex::Regex, line: &str) -> Option<Vec<String>> {
    let caps = re.captures(line)?;
    let ids = caps.name("ids").map_or(Vec::new(), |m| {
        m.as_str()
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
            .filter(|w| {
                !w.is_empty()
                    && w.chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            })
            .map(str::to_owned)
            .collect()
    });
    Some(ids)
}

fn names(rule_id: &str, id: &str) -> bool {
    rule_id == id
        || rule_id
            .strip_suffix(id)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// Whether a `nosemgrep` comment on line `start_line` (1-based) of `source`, or alone on the
/// line above, suppresses the finding of `rule_id` there; the comment that does, if any.
pub fn suppression(source: &[u8], start_line: u32, rule_id: &str) -> Option<InlineSuppression> {
    let index = usize::try_from(start_line).ok()?.checked_sub(1)?;
    let mut lines = source.split(|b| *b == b'\n');
    let previous = match index.checked_sub(1) {
        Some(p) => lines.nth(p),
        None => None,
    };
    let current = lines.next();
    let check = |re: &regex::Regex, line: Option<&[u8]>, at: u32| {
        let text = String::from_utf8_lossy(line?);
        let ids = comment(re, &text)?;
        (ids.is_empty() || ids.iter().any(|id| names(rule_id, id))).then_some(InlineSuppression {
            line: at,
            rules: ids,
        })
    };
    check(inline_re(), current, start_line)
        .or_else(|| check(previous_line_re(), previous, start_line - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: &str, rule: &str) -> Option<Vec<String>> {
        suppression(line.as_bytes(), 1, rule).map(|s| s.rules)
    }

    #[test]
    fn bare_comments_suppress_every_rule() {
        assert_eq!(at("eval(x)  # nosemgrep", "a.b"), Some(vec![]));
        assert_eq!(at("eval(x)  // NOSEM", "a.b"), Some(vec![]));
        assert_eq!(
            at("eval(x)  # nosemgrep because reasons", "a.b"),
            Some(vec![])
        );
        assert_eq!(at("eval(x)  # semgrep is fine", "a.b"), None);
        assert_eq!(at("eval(x)  # nosemgrepper", "a.b"), None);
        assert_eq!(at("eval(x)", "a.b"), None);
    }

    #[test]
    fn listed_ids_suppress_only_their_rules() {
        let line = "eval(user_input)  # nosemgrep : py-exec";
        assert_eq!(at(line, "py-eval"), None);
        assert_eq!(at(line, "py-exec"), Some(vec!["py-exec".to_owned()]));
        assert!(at("eval(x)  # nosemgrep:py-exec", "py-exec").is_some());
        assert!(at("eval(x)  # nosemgrep=py-exec", "py-exec").is_some());
        let both = "x  # NOSEMGREP: py-eval , py-exec";
        assert!(at(both, "py-exec").is_some());
        assert!(at(both, "py-eval").is_some());
        assert!(at(both, "py-other").is_none());
        assert!(at("x # nosemgrep: a b", "b").is_some());
        assert!(at("<!-- nosemgrep: html.rule -->", "html.rule").is_some());
    }

    #[test]
    fn dotted_suffixes_match_and_nothing_else() {
        let line = "x  # nosemgrep: code-injection";
        assert!(at(line, "picket.python.code-injection").is_some());
        assert!(at(line, "code-injection").is_some());
        assert!(at(line, "picket.python.xcode-injection").is_none());
        assert!(at(
            "x # nosemgrep: python.code-injection",
            "picket.python.code-injection"
        )
        .is_some());
        assert!(at("x # nosemgrep: injection", "picket.python.code-injection").is_none());
    }

    #[test]
    fn a_comment_alone_on_the_line_above_counts() {
        let src = b"a = 1\n# nosemgrep: r1\neval(x)\nfoo()  # nosemgrep\neval(y)\n";
        let s = suppression(src, 3, "r1").unwrap();
        assert_eq!((s.line, s.rules), (2, vec!["r1".to_owned()]));
        assert!(suppression(src, 3, "r2").is_none());
        // The line above holds code: its comment covers that line only.
        assert!(suppression(src, 5, "r1").is_none());
        assert!(suppression(src, 4, "r1").is_some());
        // Line 1 has no line above.
        assert!(suppression(b"eval(x)\n", 1, "r").is_none());
        assert!(suppression(src, 0, "r1").is_none());
        assert!(suppression(src, 99, "r1").is_none());
    }

    #[test]
    fn invalid_utf8_is_read_lossily() {
        assert!(suppression(b"s = '\xff'; eval(x)  # nosemgrep\n", 1, "r").is_some());
    }
}
