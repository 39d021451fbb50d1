//! Markdown for GitHub-flavoured comments: escaping user-controlled text, and writing documents
//! that stay under a size limit.
//!
//! Escaping rules ([`escape`], [`escape_line`]), applied to every piece of text that comes from a
//! repository or a rule (paths, messages, redacted secrets); rule ids and fingerprints are checked
//! at parse time to a charset that needs none:
//! - `<`, `>` and `&` become the entities `&lt;`, `&gt;`, `&amp;`: the raw body never contains a
//!   `<` that Picket did not write, so no text can open an HTML comment (a forged
//!   `<!-- picket:… -->` marker), close a `<details>`, or add any HTML;
//! - every other ASCII punctuation character that can start Markdown syntax gets a backslash
//!   (CommonMark allows escaping any of them), so no emphasis, link, heading, list, table cell
//!   separator (`|`), code span, fence, emoji shortcode or `$` math can start inside the text
//!   (`/ , ; ? " ' %` cannot, and are left alone so paths stay readable in the raw body);
//! - `@` is followed by U+2060 WORD JOINER, invisible when rendered, so a path such as
//!   `node_modules/@types/x` or a message quoting a decorator `@app.route` does not mention (and
//!   notify) a GitHub user or team. (GitHub finds mentions in the rendered text, so an entity or
//!   a backslash would not stop it.) `#123` issue references are not neutralised;
//! - control characters (other than the newlines [`escape`] keeps) and the bidirectional
//!   overrides and isolates (U+202A–U+202E, U+2066–U+2069, the "Trojan Source" characters) become
//!   U+FFFD, so text cannot reorder what a reviewer sees.

/// Replaces `c` when it must not reach a comment as is; `None` keeps it.
fn replacement(c: char) -> Option<&'static str> {
    Some(match c {
        '<' => "&lt;",
        '>' => "&gt;",
        '&' => "&amp;",
        '@' => "@\u{2060}",
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => "\u{FFFD}",
        c if c.is_control() => "\u{FFFD}",
        _ => return None,
    })
}

fn push_escaped(out: &mut String, c: char) {
    if let Some(r) = replacement(c) {
        out.push_str(r);
    } else if c.is_ascii_punctuation() && !matches!(c, '/' | ',' | ';' | '?' | '"' | '\'' | '%') {
        out.push('\\');
        out.push(c);
    } else {
        out.push(c);
    }
}

/// `text` escaped to render as itself on one line (a table cell, a heading): line breaks and
/// tabs become spaces.
pub fn escape_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for c in text.chars() {
        match c {
            '\r' | '\n' | '\t' => out.push(' '),
            c => push_escaped(&mut out, c),
        }
    }
    out
}

/// `text` escaped to render as itself in a paragraph; line breaks are kept (`\r\n` and a lone
/// `\r` become `\n`), tabs become spaces, and each line's leading whitespace is dropped (an
/// indented line would start a code block, which shows escapes literally).
pub fn escape(text: &str) -> String {
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(normalised.len() + normalised.len() / 4);
    for (i, line) in normalised.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for c in line.trim_start().chars() {
            match c {
                '\t' => out.push(' '),
                c => push_escaped(&mut out, c),
            }
        }
    }
    out
}

/// At most `max` characters of `text`, ending in `…` when it was cut. Cuts on a char boundary.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` cut to at most `max` characters (Unicode scalar values, on a char boundary), with
/// `note` (which must be shorter than `max`) appended when it was cut.
pub fn fit(text: String, max: usize, note: &str) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let keep = max.saturating_sub(note.chars().count());
    let cut = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    let mut out = text;
    out.truncate(cut);
    out.push_str(note);
    out
}

/// A document written under a limit of `limit` characters, of which the last `reserve` are kept
/// for what closes it (notes, closing tags): rows that do not fit are counted, not written.
#[derive(Debug)]
pub struct Doc {
    out: String,
    chars: usize,
    limit: usize,
    reserve: usize,
}

impl Doc {
    pub fn new(limit: usize, reserve: usize) -> Doc {
        Doc {
            out: String::new(),
            chars: 0,
            limit,
            reserve,
        }
    }

    /// Appends `s` unconditionally (headings, fixed text, closing tags).
    pub fn push(&mut self, s: &str) {
        self.chars += s.chars().count();
        self.out.push_str(s);
    }

    /// Appends `row` if it leaves the reserve untouched; false when it did not fit.
    pub fn try_push(&mut self, row: &str) -> bool {
        let n = row.chars().count();
        if self.chars + n + self.reserve > self.limit {
            return false;
        }
        self.push(row);
        true
    }

    /// The document, cut to the limit with `note` if the unconditional parts overran it.
    pub fn finish(self, note: &str) -> String {
        fit(self.out, self.limit, note)
    }
}
