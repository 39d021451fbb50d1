//! A record's severity on Picket's scale ([`picket_core::Severity`]).
//!
//! From the scores the record carries (`affected[].severity` for the package when set, the
//! top-level `severity` otherwise): the newest CVSS version the [`cvss`] crate reads (v4.0,
//! then v3.1/v3.0, then v2), rated by the CVSS qualitative scale (<https://www.first.org/cvss/v3.1/specification-document#Qualitative-Severity-Rating-Scale>,
//! the same in v4.0): 0.0 none, 0.1–3.9 low, 4.0–6.9 medium, 7.0–8.9 high, 9.0–10.0 critical.
//! Without a readable vector, the database's own rating (`database_specific.severity`, as
//! GitHub's advisory database writes it: `LOW`, `MODERATE`, `HIGH`, `CRITICAL`). Without
//! either, no severity: golang/vulndb and a third of RustSec's records carry none.

use crate::osv::{Affected, Record, SeverityScore, SeverityType};
use picket_core::Severity;
use std::str::FromStr;

/// Where a severity came from.
#[derive(Debug, Clone, PartialEq)]
pub enum SeveritySource {
    /// A CVSS vector and its base score (0.0 to 10.0).
    Cvss {
        /// The vector as the record writes it.
        vector: String,
        /// Its base score, as the [`cvss`] crate computes it.
        score: f64,
    },
    /// The database's own word (`database_specific.severity`).
    Database(String),
}

/// A severity and its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Rating {
    /// On Picket's scale.
    pub severity: Severity,
    /// Where it came from.
    pub source: SeveritySource,
}

/// The severity of `record` for the package of `entry` (or for the record as a whole when
/// `entry` is `None`); `None` when the record rates nothing Picket can read.
pub fn rate(record: &Record, entry: Option<&Affected>) -> Option<Rating> {
    let scores = match entry {
        Some(e) if !e.severity.is_empty() => &e.severity,
        _ => &record.severity,
    };
    from_cvss(scores).or_else(|| {
        let word = record
            .database_specific
            .as_ref()?
            .get("severity")?
            .as_str()?;
        Some(Rating {
            severity: from_word(word)?,
            source: SeveritySource::Database(word.to_owned()),
        })
    })
}

fn from_cvss(scores: &[SeverityScore]) -> Option<Rating> {
    let rank = |kind: &SeverityType| match kind {
        SeverityType::CvssV4 => Some(0),
        SeverityType::CvssV3 => Some(1),
        SeverityType::CvssV2 => Some(2),
        _ => None,
    };
    let mut candidates: Vec<(u8, &SeverityScore)> = scores
        .iter()
        .filter_map(|s| rank(&s.kind).map(|r| (r, s)))
        .collect();
    candidates.sort_by_key(|(r, _)| *r);
    candidates.into_iter().find_map(|(_, s)| {
        let cvss = cvss::Cvss::from_str(s.score.trim()).ok()?;
        let severity = match cvss.severity() {
            cvss::Severity::None => Severity::Info,
            cvss::Severity::Low => Severity::Low,
            cvss::Severity::Medium => Severity::Medium,
            cvss::Severity::High => Severity::High,
            cvss::Severity::Critical => Severity::Critical,
        };
        Some(Rating {
            severity,
            source: SeveritySource::Cvss {
                vector: s.score.clone(),
                score: cvss.score(),
            },
        })
    })
}

/// GitHub's words (and the CVSS scale's, which OSV databases also write).
fn from_word(word: &str) -> Option<Severity> {
    match word.to_ascii_uppercase().as_str() {
        "NONE" => Some(Severity::Info),
        "LOW" => Some(Severity::Low),
        "MODERATE" | "MEDIUM" => Some(Severity::Medium),
        "HIGH" => Some(Severity::High),
        "CRITICAL" => Some(Severity::Critical),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: serde_json::Value) -> Record {
        let mut base = serde_json::json!({"id": "X-1", "modified": "2024-01-01T00:00:00Z"});
        base.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn the_newest_readable_cvss_wins_then_the_databases_word() {
        let r = record(serde_json::json!({
            "severity": [
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
                {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N"}
            ],
            "database_specific": {"severity": "CRITICAL"}
        }));
        let rating = rate(&r, None).unwrap();
        assert_eq!(rating.severity, Severity::Medium, "{rating:?}");
        let r = record(serde_json::json!({
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
        }));
        let rating = rate(&r, None).unwrap();
        assert_eq!(rating.severity, Severity::Critical);
        assert_eq!(
            rating.source,
            SeveritySource::Cvss {
                vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into(),
                score: 9.8
            }
        );
        let r = record(serde_json::json!({
            "severity": [{"type": "CVSS_V3", "score": "garbage"}],
            "database_specific": {"severity": "MODERATE"}
        }));
        assert_eq!(rate(&r, None).unwrap().severity, Severity::Medium);
        assert_eq!(rate(&record(serde_json::json!({})), None), None);
    }
}
