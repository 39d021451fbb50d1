//! Why a lockfile could not be read.

use crate::Format;
use std::fmt;

/// A lockfile that could not be read: which file, and why. The scan reports it as that
/// lockfile's failure; it never passes as "no packages".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct LockfileError {
    /// The path given to [`crate::parse`].
    pub path: String,
    /// Its format, when the file name is one.
    pub format: Option<Format>,
    /// The reason.
    pub kind: ErrorKind,
}

impl LockfileError {
    pub(crate) fn new(path: &str, format: Option<Format>, kind: ErrorKind) -> LockfileError {
        LockfileError {
            path: path.to_owned(),
            format,
            kind,
        }
    }
}

/// The reason a lockfile could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file name is none of the formats ([`Format::for_path`]).
    UnknownFormat,
    /// The file could not be read (the caller's reader failed).
    Unreadable {
        /// The reader's message.
        message: String,
    },
    /// The bytes are not UTF-8 (every format is); `line` is where the first bad byte is.
    NotUtf8 {
        /// 1-based line.
        line: u32,
    },
    /// The text is not valid JSON / YAML / TOML / the format's own syntax.
    Syntax {
        /// 1-based line, when the parser says.
        line: Option<u32>,
        /// The parser's message.
        message: String,
    },
    /// A format version this crate does not read (a newer lockfileVersion, say): reading it
    /// as an older one could miss packages.
    UnsupportedVersion {
        /// The version as written.
        version: String,
    },
    /// Valid syntax, but an entry the format requires is missing or of the wrong shape.
    Invalid {
        /// 1-based line, when known.
        line: Option<u32>,
        /// What is wrong.
        message: String,
    },
}

impl ErrorKind {
    pub(crate) fn invalid(line: Option<u32>, message: impl Into<String>) -> ErrorKind {
        ErrorKind::Invalid {
            line,
            message: message.into(),
        }
    }

    pub(crate) fn syntax(line: Option<u32>, message: impl fmt::Display) -> ErrorKind {
        ErrorKind::Syntax {
            line,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |line: &Option<u32>| line.map(|l| format!("line {l}: ")).unwrap_or_default();
        match self {
            ErrorKind::UnknownFormat => f.write_str("not a lockfile format Picket reads"),
            ErrorKind::Unreadable { message } => write!(f, "could not be read: {message}"),
            ErrorKind::NotUtf8 { line } => write!(f, "line {line}: not UTF-8 text"),
            ErrorKind::Syntax { line, message } => write!(f, "{}syntax error: {message}", at(line)),
            ErrorKind::UnsupportedVersion { version } => {
                write!(f, "unsupported lockfile version {version}")
            }
            ErrorKind::Invalid { line, message } => write!(f, "{}{message}", at(line)),
        }
    }
}
