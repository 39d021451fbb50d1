//! Triage by reply (domain.md §2): the commands a person writes in reply to one of Picket's
//! inline PR comments, and what Picket answers in the thread.
//!
//! # Commands
//!
//! | command | effect |
//! |---|---|
//! | `/fp <reason>` | ignore the finding as a **false positive** |
//! | `/ar <reason>` | ignore it as an **acceptable risk** |
//! | `/other <reason>` | ignore it for **another** reason |
//! | `/open` | lift the ignore: the finding is open again |
//!
//! [`parse_command`] reads a comment body with these rules, decided here once:
//! - the command is the **first line that says something**: blank lines and Markdown quote lines
//!   (`>`, what GitHub's *Quote reply* puts first) before it are skipped; any other first line
//!   means the comment is not a command (a command further down is prose, e.g. "thanks, I'll
//!   write /fp later");
//! - the line starts with the command word (leading whitespace allowed), matched without regard
//!   to case (`/FP` is `/fp`), followed by whitespace or the end of the comment; `/fpx`, `/fp:`,
//!   `/rescan` and "please /fp" are not commands (unknown commands are ignored, without answer);
//! - the **reason** is everything after the command word, this line and the following ones, with
//!   every run of whitespace or control characters turned into one space and the ends trimmed;
//!   `/fp`, `/ar` and `/other` need one of 1 to [`MAX_REASON_CHARS`] characters, or the command is
//!   known but unusable ([`CommandError`]: Picket answers how to write it);
//! - `/open` takes no reason: text after it is allowed and not kept (like the API's reopen, which
//!   carries none).
//!
//! The reason is stored on the finding prefixed by its kind ([`Decision::stored_reason`]:
//! `false positive: only in tests`), within the API's 1,000-character limit on a triage reason.
//!
//! # Answers
//!
//! [`answer_body`] renders what Picket replies in the thread: short, plain, and quoting nothing
//! the person wrote (a reason may mention other people, and Picket must not notify them). Its
//! first line is a hidden marker naming the comment answered ([`reply_marker`]), so a retry can
//! see that the answer is already there and not post it twice.

use crate::scan::str_enum;
use crate::ParseError;
use std::fmt;
use std::str::FromStr;

/// Longest triage reason a reply may give, in characters (Unicode scalar values), so that the
/// stored `<kind>: <reason>` stays within the API's 1,000.
pub const MAX_REASON_CHARS: usize = 900;

/// A triage command's word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `/fp`: a false positive.
    FalsePositive,
    /// `/ar`: an acceptable risk.
    AcceptableRisk,
    /// `/other`: ignored for another reason.
    Other,
    /// `/open`: reopen.
    Open,
}

impl Verb {
    pub const ALL: [Verb; 4] = [
        Verb::FalsePositive,
        Verb::AcceptableRisk,
        Verb::Other,
        Verb::Open,
    ];

    /// The command word without its slash: `fp`, `ar`, `other`, `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::FalsePositive => "fp",
            Verb::AcceptableRisk => "ar",
            Verb::Other => "other",
            Verb::Open => "open",
        }
    }

    /// What an ignore of this kind is called (`false positive`, ...); `None` for `/open`.
    pub fn label(self) -> Option<&'static str> {
        match self {
            Verb::FalsePositive => Some("false positive"),
            Verb::AcceptableRisk => Some("acceptable risk"),
            Verb::Other => Some("other"),
            Verb::Open => None,
        }
    }
}

str_enum!(Verb, "triage command", "fp | ar | other | open");

/// Why an ignored finding is ignored: the fixed list a person picks from (the web UI, the API's
/// `ignore_reason`); the free-text comment goes beside it. Stored as [`IgnoreReason::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IgnoreReason {
    FalsePositive,
    AcceptableRisk,
    UsedInTests,
    Mitigated,
    Duplicate,
    NoTime,
    Other,
}

impl IgnoreReason {
    pub const ALL: [IgnoreReason; 7] = [
        IgnoreReason::FalsePositive,
        IgnoreReason::AcceptableRisk,
        IgnoreReason::UsedInTests,
        IgnoreReason::Mitigated,
        IgnoreReason::Duplicate,
        IgnoreReason::NoTime,
        IgnoreReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::FalsePositive => "false_positive",
            IgnoreReason::AcceptableRisk => "acceptable_risk",
            IgnoreReason::UsedInTests => "used_in_tests",
            IgnoreReason::Mitigated => "mitigated",
            IgnoreReason::Duplicate => "duplicate",
            IgnoreReason::NoTime => "no_time",
            IgnoreReason::Other => "other",
        }
    }

    /// For a person: `false positive`, `used in tests`, `no time to fix`, ...
    pub fn label(self) -> &'static str {
        match self {
            IgnoreReason::FalsePositive => "false positive",
            IgnoreReason::AcceptableRisk => "acceptable risk",
            IgnoreReason::UsedInTests => "used in tests",
            IgnoreReason::Mitigated => "mitigated",
            IgnoreReason::Duplicate => "duplicate",
            IgnoreReason::NoTime => "no time to fix",
            IgnoreReason::Other => "other",
        }
    }
}

str_enum!(
    IgnoreReason,
    "ignore reason",
    "false_positive | acceptable_risk | used_in_tests | mitigated | duplicate | no_time | other"
);

impl Verb {
    /// The ignore reason a PR reply's command gives; `None` for `/open`.
    pub fn ignore_reason(self) -> Option<IgnoreReason> {
        match self {
            Verb::FalsePositive => Some(IgnoreReason::FalsePositive),
            Verb::AcceptableRisk => Some(IgnoreReason::AcceptableRisk),
            Verb::Other => Some(IgnoreReason::Other),
            Verb::Open => None,
        }
    }
}

/// A command as written: its verb and the reason text after it (normalized, `None` when there
/// is none), not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub verb: Verb,
    pub reason: Option<String>,
}

/// What a usable command decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Ignore the finding: `verb` is `/fp`, `/ar` or `/other`, `reason` 1 to
    /// [`MAX_REASON_CHARS`] characters.
    Ignore { verb: Verb, reason: String },
    /// Lift an ignore.
    Reopen,
}

impl Decision {
    /// The reason as the finding stores it: `false positive: <reason>`, `acceptable risk:
    /// <reason>`, `other: <reason>`; `None` for a reopen.
    pub fn stored_reason(&self) -> Option<String> {
        match self {
            Decision::Ignore { verb, reason } => {
                Some(format!("{}: {reason}", verb.label().unwrap_or("other")))
            }
            Decision::Reopen => None,
        }
    }
}

/// Why a known command cannot be carried out as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// `/fp`, `/ar` or `/other` without a reason.
    MissingReason(Verb),
    /// A reason over [`MAX_REASON_CHARS`] characters.
    ReasonTooLong(Verb),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::MissingReason(v) => write!(f, "/{v} needs a reason"),
            CommandError::ReasonTooLong(v) => write!(
                f,
                "the reason of /{v} is longer than {MAX_REASON_CHARS} characters"
            ),
        }
    }
}

impl Command {
    /// Checks the command: an ignore needs a reason of 1 to [`MAX_REASON_CHARS`] characters; a
    /// reopen keeps none.
    pub fn check(&self) -> Result<Decision, CommandError> {
        match (self.verb, &self.reason) {
            (Verb::Open, _) => Ok(Decision::Reopen),
            (verb, None) => Err(CommandError::MissingReason(verb)),
            (verb, Some(r)) if r.is_empty() => Err(CommandError::MissingReason(verb)),
            (verb, Some(r)) if r.chars().count() > MAX_REASON_CHARS => {
                Err(CommandError::ReasonTooLong(verb))
            }
            (verb, Some(r)) => Ok(Decision::Ignore {
                verb,
                reason: r.clone(),
            }),
        }
    }
}

/// Reads the triage command of a comment body (see the module documentation for the rules);
/// `None` when the comment is not one.
pub fn parse_command(body: &str) -> Option<Command> {
    let mut lines = body.split_inclusive('\n');
    let mut rest_from = 0;
    let first = loop {
        let line = lines.next()?;
        let start = rest_from;
        rest_from += line.len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('>') {
            continue;
        }
        // The command's line and everything after it.
        break &body[start + (line.len() - line.trim_start().len())..];
    };
    let word_end = first
        .find(|c: char| c.is_whitespace() || c.is_control())
        .unwrap_or(first.len());
    let word = first[..word_end].strip_prefix('/')?;
    let verb = Verb::ALL
        .into_iter()
        .find(|v| v.as_str().eq_ignore_ascii_case(word))?;
    let reason = normalize(&first[word_end..]);
    Some(Command {
        verb,
        reason: (!reason.is_empty()).then_some(reason),
    })
}

/// Every run of whitespace or control characters as one space, ends trimmed.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// What Picket says in the thread about a triage reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The finding is ignored now, of this kind.
    Ignored(Verb),
    /// The ignore was lifted.
    Reopened,
    /// `/open` on a finding that is not ignored: nothing changed.
    NotIgnored,
    /// Picket has no finding with the comment's fingerprint in this project any more.
    FindingUnknown,
    /// The author may not write to the repository: nothing changed.
    Refused,
    /// A known command written so that it cannot be carried out.
    Usage(CommandError),
}

impl Answer {
    /// A stable code for logs and the request's record: `triaged`, `reopened`, `not_ignored`,
    /// `finding_unknown`, `refused`, `usage`.
    pub fn code(self) -> &'static str {
        match self {
            Answer::Ignored(_) => "triaged",
            Answer::Reopened => "reopened",
            Answer::NotIgnored => "not_ignored",
            Answer::FindingUnknown => "finding_unknown",
            Answer::Refused => "refused",
            Answer::Usage(_) => "usage",
        }
    }
}

/// The hidden first line of Picket's answer to the reply `comment_id` (only ASCII letters,
/// digits, `-` and `_` of the id are kept, so no id can close the HTML comment early).
pub fn reply_marker(comment_id: &str) -> String {
    let id: String = comment_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(100)
        .collect();
    format!("{}triage-reply {id} -->", crate::feedback::MARKER_PREFIX)
}

/// Picket's answer to the reply `comment_id`: [`reply_marker`], then one or two plain sentences.
/// Nothing of the reply's text is repeated and nobody is mentioned.
pub fn answer_body(answer: Answer, comment_id: &str) -> String {
    let text = match answer {
        Answer::Ignored(verb) => format!(
            "Picket now ignores this finding {}, on every branch of this repository; later \
             scans keep it ignored. Reply `/open` to reopen it.",
            match verb {
                Verb::FalsePositive => "as a false positive",
                Verb::AcceptableRisk => "as an acceptable risk",
                Verb::Other | Verb::Open => "for another reason",
            }
        ),
        Answer::Reopened => "Picket reopened this finding: later scans report it again.".to_owned(),
        Answer::NotIgnored => {
            "This finding is not ignored, so there was nothing to reopen.".to_owned()
        }
        Answer::FindingUnknown => {
            "Picket has no record of this finding any more, so nothing was changed.".to_owned()
        }
        Answer::Refused => "Sorry, only people with write access to this repository can triage \
                            Picket's findings. Nothing was changed."
            .to_owned(),
        Answer::Usage(CommandError::MissingReason(verb)) => format!(
            "`/{verb}` needs a reason, for example `/{verb} only reachable from tests`. Nothing \
             was changed."
        ),
        Answer::Usage(CommandError::ReasonTooLong(verb)) => format!(
            "The reason of `/{verb}` may be at most {MAX_REASON_CHARS} characters. Nothing was \
             changed."
        ),
    };
    format!("{}\n{text}", reply_marker(comment_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(verb: Verb, reason: Option<&str>) -> Option<Command> {
        Some(Command {
            verb,
            reason: reason.map(str::to_owned),
        })
    }

    #[test]
    fn the_four_commands() {
        assert_eq!(
            parse_command("/fp only in tests"),
            cmd(Verb::FalsePositive, Some("only in tests"))
        );
        assert_eq!(
            parse_command("/ar internal network only"),
            cmd(Verb::AcceptableRisk, Some("internal network only"))
        );
        assert_eq!(
            parse_command("/other vendored code"),
            cmd(Verb::Other, Some("vendored code"))
        );
        assert_eq!(parse_command("/open"), cmd(Verb::Open, None));
    }

    #[test]
    fn case_and_whitespace() {
        assert_eq!(
            parse_command("  /FP   only\tin\r\n  tests  \n"),
            cmd(Verb::FalsePositive, Some("only in tests"))
        );
        assert_eq!(parse_command("/Open\r\n"), cmd(Verb::Open, None));
        assert_eq!(
            parse_command("/aR\u{00a0}fine"),
            cmd(Verb::AcceptableRisk, Some("fine"))
        );
        // Control characters count as whitespace and never reach the reason.
        assert_eq!(
            parse_command("/other a\u{0}b\u{7f}c\u{9b}d"),
            cmd(Verb::Other, Some("a b c d"))
        );
    }

    #[test]
    fn the_reason_runs_over_the_following_lines() {
        assert_eq!(
            parse_command("/fp only in tests\n\nsee the fixture in tests/x.py"),
            cmd(
                Verb::FalsePositive,
                Some("only in tests see the fixture in tests/x.py")
            )
        );
        assert_eq!(
            parse_command("/fp\nonly in tests"),
            cmd(Verb::FalsePositive, Some("only in tests"))
        );
    }

    #[test]
    fn blank_and_quoted_lines_before_the_command_are_skipped() {
        assert_eq!(
            parse_command("\n\n> Picket found a SQL injection\n>\n/fp parameterized below"),
            cmd(Verb::FalsePositive, Some("parameterized below"))
        );
    }

    #[test]
    fn a_command_not_on_the_first_line_is_prose() {
        assert_eq!(parse_command("Thanks!\n/fp only in tests"), None);
        assert_eq!(parse_command("please /fp this"), None);
        assert_eq!(parse_command("```\n/fp x\n```"), None);
    }

    #[test]
    fn unknown_commands_and_near_misses_are_not_commands() {
        for body in [
            "",
            "   \n ",
            "/",
            "/fpx reason",
            "/fp:reason",
            "/rescan",
            "fp reason",
            "//fp reason",
            "/ open",
            "/ignore x",
            "/opened",
        ] {
            assert_eq!(parse_command(body), None, "{body:?}");
        }
    }

    #[test]
    fn ignores_need_a_reason_and_open_keeps_none() {
        for verb in [Verb::FalsePositive, Verb::AcceptableRisk, Verb::Other] {
            let c = parse_command(&format!("/{verb}")).unwrap();
            assert_eq!(c.check(), Err(CommandError::MissingReason(verb)));
            let c = parse_command(&format!("/{verb}   \n\t")).unwrap();
            assert_eq!(c.check(), Err(CommandError::MissingReason(verb)));
            let c = parse_command(&format!("/{verb} why")).unwrap();
            assert_eq!(
                c.check(),
                Ok(Decision::Ignore {
                    verb,
                    reason: "why".into()
                })
            );
        }
        assert_eq!(
            parse_command("/open").unwrap().check(),
            Ok(Decision::Reopen)
        );
        // Text after /open is allowed and dropped.
        assert_eq!(
            parse_command("/open the fix was reverted").unwrap().check(),
            Ok(Decision::Reopen)
        );
    }

    #[test]
    fn a_reason_is_at_most_900_characters() {
        let ok = "é".repeat(MAX_REASON_CHARS);
        let c = parse_command(&format!("/ar {ok}")).unwrap();
        let d = c.check().unwrap();
        assert!(d.stored_reason().unwrap().chars().count() <= 1000);
        let long = "é".repeat(MAX_REASON_CHARS + 1);
        assert_eq!(
            parse_command(&format!("/ar {long}")).unwrap().check(),
            Err(CommandError::ReasonTooLong(Verb::AcceptableRisk))
        );
    }

    #[test]
    fn stored_reasons_say_their_kind() {
        let d = |verb| Decision::Ignore {
            verb,
            reason: "x".into(),
        };
        assert_eq!(
            d(Verb::FalsePositive).stored_reason().as_deref(),
            Some("false positive: x")
        );
        assert_eq!(
            d(Verb::AcceptableRisk).stored_reason().as_deref(),
            Some("acceptable risk: x")
        );
        assert_eq!(d(Verb::Other).stored_reason().as_deref(), Some("other: x"));
        assert_eq!(Decision::Reopen.stored_reason(), None);
    }

    #[test]
    fn verbs_round_trip() {
        for v in Verb::ALL {
            assert_eq!(v.as_str().parse::<Verb>().unwrap(), v);
        }
        assert!("FP".parse::<Verb>().is_err());
    }

    #[test]
    fn answers_start_with_their_marker_and_quote_nothing() {
        let answers = [
            Answer::Ignored(Verb::FalsePositive),
            Answer::Ignored(Verb::AcceptableRisk),
            Answer::Ignored(Verb::Other),
            Answer::Reopened,
            Answer::NotIgnored,
            Answer::FindingUnknown,
            Answer::Refused,
            Answer::Usage(CommandError::MissingReason(Verb::Other)),
            Answer::Usage(CommandError::ReasonTooLong(Verb::FalsePositive)),
        ];
        for a in answers {
            let body = answer_body(a, "12345");
            let (first, text) = body.split_once('\n').unwrap();
            assert_eq!(first, "<!-- picket:triage-reply 12345 -->");
            assert!(!text.contains('@'), "{text}");
            assert!(!text.is_empty() && text.len() < 300, "{text}");
            // Never read back as a finding's or the summary's marker.
            assert_eq!(crate::feedback::parse_marker(&body), None);
        }
        assert!(
            answer_body(Answer::Ignored(Verb::FalsePositive), "1").contains("as a false positive")
        );
        assert!(answer_body(Answer::Ignored(Verb::AcceptableRisk), "1")
            .contains("as an acceptable risk"));
        assert!(answer_body(Answer::Ignored(Verb::Other), "1")
            .contains("ignores this finding for another reason"));
        assert!(
            answer_body(Answer::Usage(CommandError::MissingReason(Verb::Other)), "1")
                .contains("`/other` needs a reason")
        );
    }

    #[test]
    fn a_marker_cannot_be_closed_by_the_id() {
        assert_eq!(
            reply_marker("1 --><b>x"),
            "<!-- picket:triage-reply 1--bx -->"
        );
    }
}
