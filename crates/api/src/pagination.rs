//! Keyset pagination with opaque cursors.
//!
//! A list handler fetches `limit + 1` rows after the position its cursor names; if the extra row
//! exists it is dropped and the last row shown becomes the next cursor. A cursor is the listing's
//! kind and its keyset position, as JSON, base64url-encoded: opaque to clients, and a cursor from
//! one listing is refused by another (400 naming `cursor`) instead of silently misplacing a page.

use crate::error::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    k: String,
    p: T,
}

/// Encodes a keyset position of the listing `kind`.
pub fn encode<T: Serialize>(kind: &str, position: &T) -> Result<String, ApiError> {
    let json = serde_json::to_vec(&Envelope {
        k: kind.to_owned(),
        p: position,
    })
    .map_err(|e| ApiError::internal(&e))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// Decodes a cursor of the listing `kind`; anything else is a 400 naming `cursor`.
pub fn decode<T: DeserializeOwned>(kind: &str, cursor: &str) -> Result<T, ApiError> {
    let bad = || ApiError::invalid_query("cursor", "not a cursor of this listing");
    let json = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let envelope: Envelope<T> = serde_json::from_slice(&json).map_err(|_| bad())?;
    if envelope.k != kind {
        return Err(bad());
    }
    Ok(envelope.p)
}

/// Splits a fetched `limit + 1` rows into the page and, when more follow, the next cursor.
pub fn page<T, P: Serialize>(
    kind: &str,
    mut rows: Vec<T>,
    limit: i64,
    position: impl Fn(&T) -> P,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return Ok((rows, None));
    }
    rows.truncate(limit);
    let next = match rows.last() {
        Some(last) => Some(encode(kind, &position(last))?),
        None => None,
    };
    Ok((rows, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_listing() {
        let c = encode("projects", &("acme/api", 7)).unwrap();
        let back: (String, i32) = decode("projects", &c).unwrap();
        assert_eq!(back, ("acme/api".to_owned(), 7));
        assert_eq!(
            decode::<(String, i32)>("scans", &c).unwrap_err().code(),
            "invalid_query"
        );
        assert!(decode::<(String, i32)>("projects", "!!").is_err());
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
        let (rows, next) = page("n", vec![1, 2, 3], 2, |n| *n).unwrap();
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(decode::<i32>("n", &next.unwrap()).unwrap(), 2);
        let (rows, next) = page("n", vec![1, 2], 2, |n| *n).unwrap();
        assert_eq!((rows.len(), next), (2, None));
    }
}
