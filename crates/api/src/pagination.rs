//! Keyset pagination with cursors that name a position.
//!
//! A list handler fetches `limit + 1` rows after the position its cursor names; if the extra row
//! exists it is dropped and the last row shown becomes the next cursor. A cursor is the listing's
//! letter and its keyset position, dot-separated (`s.<scan id>`, `f.<severity>.<finding id>`,
//! `p.<full name as hex>.<project id>`): every string that matches the listing's [`Position::PATTERN`]
//! (stated in the OpenAPI description) is a position the listing accepts, whoever wrote it, and
//! anything else, such as a cursor of another listing, is refused (400 naming `cursor`) instead
//! of silently misplacing a page.

use crate::error::ApiError;
use picket_core::Severity;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use uuid::Uuid;

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;
/// Most rows one page may hold.
pub const MAX_LIMIT: i64 = 500;

/// Checks the `limit` query parameter (1-500, default 50).
pub fn limit(requested: Option<i64>) -> Result<i64, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid_query(
            "limit",
            format!("{n} is out of range 1-{MAX_LIMIT}"),
        )),
    }
}

/// A listing's keyset position, as a cursor.
pub trait Position: Sized {
    /// The cursor's whole syntax, anchored.
    const PATTERN: &'static str;
    /// The longest cursor [`Self::PATTERN`] matches, in characters.
    const MAX_LEN: usize;
    fn encode(&self) -> String;
    /// `None` for anything [`Self::PATTERN`] does not match.
    fn decode(cursor: &str) -> Option<Self>;

    /// The `cursor` query parameter's schema.
    fn schema() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(Self::PATTERN))
            .max_length(Some(Self::MAX_LEN))
            .description(Some("From the previous page's `next_cursor`."))
            .build()
    }
}

fn uuid(s: &str) -> Option<Uuid> {
    (s.len() == 36).then(|| s.parse().ok()).flatten()
}

/// A scan listing's position: the last scan shown (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanPosition(pub Uuid);

impl Position for ScanPosition {
    const PATTERN: &'static str = concat!(
        r"^s\.",
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        "$"
    );
    const MAX_LEN: usize = 2 + 36;
    fn encode(&self) -> String {
        format!("s.{}", self.0)
    }
    fn decode(cursor: &str) -> Option<Self> {
        cursor.strip_prefix("s.").and_then(uuid).map(ScanPosition)
    }
}

/// A finding listing's position: the last finding's severity and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindingPosition(pub Severity, pub Uuid);

impl Position for FindingPosition {
    const PATTERN: &'static str = concat!(
        r"^f\.(critical|high|medium|low|info)\.",
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        "$"
    );
    const MAX_LEN: usize = "f.critical.".len() + 36;
    fn encode(&self) -> String {
        format!("f.{}.{}", self.0.as_str(), self.1)
    }
    fn decode(cursor: &str) -> Option<Self> {
        let (severity, id) = cursor.strip_prefix("f.")?.split_once('.')?;
        let severity = Severity::ALL.into_iter().find(|s| s.as_str() == severity)?;
        Some(FindingPosition(severity, uuid(id)?))
    }
}

/// A scan's findings listing's position: the last finding's severity and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanFindingPosition(pub Severity, pub String);

impl Position for ScanFindingPosition {
    const PATTERN: &'static str = r"^g\.(critical|high|medium|low|info)\.[0-9a-f]{64}$";
    const MAX_LEN: usize = "g.critical.".len() + 64;
    fn encode(&self) -> String {
        format!("g.{}.{}", self.0.as_str(), self.1)
    }
    fn decode(cursor: &str) -> Option<Self> {
        let (severity, fingerprint) = cursor.strip_prefix("g.")?.split_once('.')?;
        let severity = Severity::ALL.into_iter().find(|s| s.as_str() == severity)?;
        let hex = fingerprint.len() == 64
            && fingerprint
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        hex.then(|| ScanFindingPosition(severity, fingerprint.to_owned()))
    }
}

/// A delivery log's position: the last delivery shown (newest first), by its log row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPosition(pub i64);

impl Position for DeliveryPosition {
    const PATTERN: &'static str = r"^d\.[1-9][0-9]{0,17}$";
    const MAX_LEN: usize = 2 + 18;
    fn encode(&self) -> String {
        format!("d.{}", self.0)
    }
    fn decode(cursor: &str) -> Option<Self> {
        let digits = cursor.strip_prefix("d.")?;
        let ok = (1..=18).contains(&digits.len())
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| digits.parse().ok().map(DeliveryPosition))
            .flatten()
    }
}

/// A project listing's position: the last project's full name (UTF-8 as hex: any text, in
/// characters a URL carries as they are) and id. A position need not name a real project; bytes
/// that are not UTF-8 read as U+FFFD, and NUL, which no name holds, is not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectPosition(pub String, pub Uuid);

impl Position for ProjectPosition {
    const PATTERN: &'static str = concat!(
        r"^p\.([1-9a-fA-F][0-9a-fA-F]|0[1-9a-fA-F]){0,1200}\.",
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        "$"
    );
    const MAX_LEN: usize = 2 + 2 * 1200 + 1 + 36;
    fn encode(&self) -> String {
        format!("p.{}.{}", hex::encode(self.0.as_bytes()), self.1)
    }
    fn decode(cursor: &str) -> Option<Self> {
        let (name, id) = cursor.strip_prefix("p.")?.split_once('.')?;
        let bytes = hex::decode(name).ok()?;
        if bytes.len() > 1200 || bytes.contains(&0) {
            return None;
        }
        Some(ProjectPosition(
            String::from_utf8_lossy(&bytes).into_owned(),
            uuid(id)?,
        ))
    }
}

/// Decodes the `cursor` query parameter; anything but a position of this listing is a 400
/// naming `cursor`.
pub fn decode<P: Position>(cursor: &str) -> Result<P, ApiError> {
    P::decode(cursor).ok_or_else(|| {
        ApiError::invalid_query(
            "cursor",
            "not a cursor of this listing (pass a `next_cursor` it returned)",
        )
    })
}

/// Splits a fetched `limit + 1` rows into the page and, when more follow, the next cursor.
pub fn page<T, P: Position>(
    mut rows: Vec<T>,
    limit: i64,
    position: impl Fn(&T) -> P,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return (rows, None);
    }
    rows.truncate(limit);
    let next = rows.last().map(|last| position(last).encode());
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches<P: Position>(cursor: &str) -> bool {
        regex::Regex::new(P::PATTERN).unwrap().is_match(cursor)
    }

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_listing() {
        let id = Uuid::now_v7();
        let p = ProjectPosition("acme/äpi".to_owned(), id);
        let c = p.encode();
        assert!(matches::<ProjectPosition>(&c), "{c}");
        assert_eq!(decode::<ProjectPosition>(&c).unwrap(), p);
        assert_eq!(
            decode::<ScanPosition>(&c).unwrap_err().code(),
            "invalid_query"
        );
        let f = FindingPosition(Severity::High, id);
        assert!(matches::<FindingPosition>(&f.encode()));
        assert_eq!(decode::<FindingPosition>(&f.encode()).unwrap(), f);
        let s = ScanPosition(id);
        assert!(matches::<ScanPosition>(&s.encode()));
        assert!(decode::<FindingPosition>(&s.encode()).is_err());
    }

    #[test]
    fn the_pattern_and_the_decoder_agree() {
        let id = "0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b";
        let cases = [
            format!("s.{id}"),
            format!("s.{}", id.to_uppercase()),
            format!("s.{}", id.replace('-', "")),
            format!("s.{id} "),
            format!("f.high.{id}"),
            format!("f.severe.{id}"),
            format!("p..{id}"),
            format!("p.41.{id}"),
            format!("p.4.{id}"),
            format!("p.00.{id}"),
            format!("g.low.{}", "a".repeat(64)),
            format!("g.low.{}", "A".repeat(64)),
            format!("g.low.{}", "a".repeat(63)),
            format!("p.ff.{id}"),
            format!("p.4G.{id}"),
            format!("p.{}.{id}", "41".repeat(1200)),
            format!("p.{}.{id}", "41".repeat(1201)),
            "!!".to_owned(),
            String::new(),
            "d.1".to_owned(),
            "d.0".to_owned(),
            "d.01".to_owned(),
            "d.".to_owned(),
            format!("d.{}", "9".repeat(18)),
            format!("d.{}", "9".repeat(19)),
            "d.-1".to_owned(),
        ];
        for c in &cases {
            assert_eq!(
                matches::<ScanFindingPosition>(c),
                ScanFindingPosition::decode(c).is_some(),
                "{c}"
            );
            assert_eq!(
                matches::<DeliveryPosition>(c),
                DeliveryPosition::decode(c).is_some(),
                "{c}"
            );
            for (ok, max) in [
                (matches::<ScanPosition>(c), ScanPosition::MAX_LEN),
                (matches::<FindingPosition>(c), FindingPosition::MAX_LEN),
                (matches::<ProjectPosition>(c), ProjectPosition::MAX_LEN),
            ] {
                assert!(!ok || c.len() <= max, "{c}");
            }
            assert_eq!(
                matches::<ScanPosition>(c),
                ScanPosition::decode(c).is_some(),
                "{c}"
            );
            assert_eq!(
                matches::<FindingPosition>(c),
                FindingPosition::decode(c).is_some(),
                "{c}"
            );
            assert_eq!(
                matches::<ProjectPosition>(c),
                ProjectPosition::decode(c).is_some(),
                "{c}"
            );
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(500)).unwrap(), 500);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(501)).is_err());
    }

    #[test]
    fn pages_know_whether_more_follow() {
        let pos = |n: &u128| ScanPosition(Uuid::from_u128(*n));
        let (rows, next) = page(vec![1u128, 2, 3], 2, pos);
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(decode::<ScanPosition>(&next.unwrap()).unwrap(), pos(&2));
        let (rows, next) = page(vec![1u128, 2], 2, pos);
        assert_eq!((rows.len(), next), (2, None));
    }
}
