//! The OSV record, as the schema defines it (<https://ossf.github.io/osv-schema/>, schema 1.x).
//!
//! Only the fields Picket reads are typed; anything else a database adds (`credits`,
//! `schema_version` extensions, new top-level keys) is ignored on parsing, and the free-form
//! objects (`ecosystem_specific`, `database_specific`) are kept as raw JSON. The control plane
//! stores each record's raw JSON beside this model, so nothing is lost by typing only part of it.

use picket_core::Ecosystem;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One OSV record (a vulnerability as one database reports it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The database's id: `GHSA-…`, `PYSEC-…`, `RUSTSEC-…`, `GO-…`, `CVE-…`.
    pub id: String,
    /// The schema version the record declares (`"1.3.1"`), absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    /// When the record last changed (RFC 3339). golang/vulndb's export writes
    /// `0001-01-01T00:00:00Z` for every record, so change detection must not rely on it.
    #[serde(with = "time::serde::rfc3339")]
    pub modified: OffsetDateTime,
    /// When the record was first published (RFC 3339).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub published: Option<OffsetDateTime>,
    /// Set when the record was withdrawn: a withdrawn record never matches.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub withdrawn: Option<OffsetDateTime>,
    /// Ids of other databases' records about the same vulnerability.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Ids of records about related but different vulnerabilities (never grouped with this one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// One-line summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Longer description, CommonMark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Scores of the whole record; when any `affected[].severity` is set this is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<SeverityScore>,
    /// The packages (and their versions) the vulnerability affects.
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// Links about the vulnerability.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// Free-form data of the database that published the record (GHSA writes its own rating in
    /// `severity` here: `LOW`, `MODERATE`, `HIGH`, `CRITICAL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

impl Record {
    /// Parses one record from its JSON text.
    ///
    /// # Errors
    /// The text is not JSON, or a typed field has the wrong shape (a timestamp that is not
    /// RFC 3339, an event with no known key, …); the error names the path of the bad field.
    pub fn from_json(text: &str) -> Result<Record, RecordError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| RecordError {
            path: e.path().to_string(),
            message: e.into_inner().to_string(),
        })
    }

    /// Whether the record was withdrawn (it then never matches).
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_some()
    }
}

/// A record that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OSV record at `{path}`: {message}")]
pub struct RecordError {
    /// JSON path of the offending field (`affected[0].ranges[1].events[2]`), `.` for the root.
    pub path: String,
    /// What was wrong there.
    pub message: String,
}

/// `severity[]`: one score in one scoring system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityScore {
    /// The scoring system.
    #[serde(rename = "type")]
    pub kind: SeverityType,
    /// For CVSS, the vector string (`CVSS:3.1/AV:N/…`); for `Ubuntu`, a word.
    pub score: String,
}

/// `severity[].type` (<https://ossf.github.io/osv-schema/#severitytype-field>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeverityType {
    /// A CVSS v2 vector.
    #[serde(rename = "CVSS_V2")]
    CvssV2,
    /// A CVSS v3.0 or v3.1 vector.
    #[serde(rename = "CVSS_V3")]
    CvssV3,
    /// A CVSS v4.0 vector.
    #[serde(rename = "CVSS_V4")]
    CvssV4,
    /// Ubuntu's priority words.
    #[serde(rename = "Ubuntu")]
    Ubuntu,
    /// A type this version of Picket does not know; kept so the record still parses.
    #[serde(untagged)]
    Other(String),
}

/// `affected[]`: one package and the versions of it the vulnerability affects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// The package. Absent only in records that describe bare Git commit ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
    /// Per-package scores (then the top-level `severity` is empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<SeverityScore>,
    /// Version ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Affected versions, enumerated, in the ecosystem's syntax.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Free-form data of the ecosystem (Go: `imports`, `custom_ranges`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem_specific: Option<serde_json::Value>,
    /// Free-form data of the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

/// `affected[].package`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The OSV ecosystem string, possibly with a `:suffix` (`Maven:https://maven.google.com`,
    /// `Debian:11`).
    pub ecosystem: String,
    /// The package name as the ecosystem spells it.
    pub name: String,
    /// The package URL (<https://github.com/package-url/purl-spec>), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
}

impl Package {
    /// The ecosystem, when it is one Picket matches; `None` for others (Debian, Hex, …). A
    /// `:suffix` naming a release or a mirror (`Maven:https://…`) is ignored: the version order
    /// is the base ecosystem's.
    pub fn ecosystem(&self) -> Option<Ecosystem> {
        let base = self.ecosystem.split(':').next().unwrap_or_default();
        base.parse().ok()
    }
}

/// `affected[].ranges[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// How to read the events' versions.
    #[serde(rename = "type")]
    pub kind: RangeType,
    /// The repository of a `GIT` range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The timeline of the range.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Free-form data of the database; no effect on evaluation (schema §affected[].ranges[].database_specific).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

/// `affected[].ranges[].type` (<https://ossf.github.io/osv-schema/#affectedrangestype-field>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeType {
    /// SemVer 2.0 precedence, no leading `v`.
    #[serde(rename = "SEMVER")]
    Semver,
    /// The ecosystem's own version order.
    #[serde(rename = "ECOSYSTEM")]
    Ecosystem,
    /// Git commits: needs the repository's history; Picket skips these ranges.
    #[serde(rename = "GIT")]
    Git,
    /// A type this version of Picket does not know: skipped like `GIT`.
    #[serde(untagged)]
    Other(String),
}

/// One event of a range's timeline. The schema allows exactly one key per event object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The vulnerability starts at this version (inclusive); `"0"` is before every version.
    Introduced(String),
    /// This version has the fix (exclusive upper bound).
    Fixed(String),
    /// The last affected version (inclusive upper bound).
    LastAffected(String),
    /// An upper limit on the whole range (exclusive); `"*"` is infinity.
    Limit(String),
}

impl Event {
    /// The event's version string.
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// `references[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// `ADVISORY`, `ARTICLE`, `FIX`, `PACKAGE`, `REPORT`, `WEB`, … (kept as written).
    #[serde(rename = "type")]
    pub kind: String,
    /// The link.
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_take_exactly_one_known_key() {
        let ok: Vec<Event> =
            serde_json::from_str(r#"[{"introduced":"0"},{"last_affected":"1.2"},{"limit":"*"}]"#)
                .unwrap();
        assert_eq!(
            ok,
            [
                Event::Introduced("0".into()),
                Event::LastAffected("1.2".into()),
                Event::Limit("*".into())
            ]
        );
        for bad in [
            r#"{}"#,
            r#"{"introduced":"1","fixed":"2"}"#,
            r#"{"patched":"1"}"#,
        ] {
            assert!(
                serde_json::from_str::<Event>(bad).is_err(),
                "{bad} must not parse"
            );
        }
    }

    #[test]
    fn unknown_types_and_fields_do_not_stop_a_record() {
        let record = Record::from_json(
            r#"{"id":"X-1","modified":"2024-01-02T03:04:05.123456Z","credits":[{"name":"a"}],
                "severity":[{"type":"NEW_SCORE","score":"9"}],
                "affected":[{"package":{"ecosystem":"Maven:https://maven.google.com","name":"g:a"},
                  "ranges":[{"type":"FUTURE","events":[{"introduced":"0"}]}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            record.severity[0].kind,
            SeverityType::Other("NEW_SCORE".into())
        );
        assert_eq!(
            record.affected[0].ranges[0].kind,
            RangeType::Other("FUTURE".into())
        );
        let package = record.affected[0].package.as_ref().unwrap();
        assert_eq!(package.ecosystem(), Some(Ecosystem::Maven));
        assert!(!record.is_withdrawn());
    }

    #[test]
    fn a_bad_field_is_named_by_its_path() {
        let err = Record::from_json(
            r#"{"id":"X","modified":"2024-01-01T00:00:00Z","affected":[{"ranges":[{"type":"SEMVER","events":[{"fixd":"1"}]}]}]}"#,
        )
        .unwrap_err();
        assert!(
            err.path.starts_with("affected[0].ranges[0].events[0]"),
            "{err}"
        );
        let err = Record::from_json(r#"{"id":"X","modified":"yesterday"}"#).unwrap_err();
        assert_eq!(err.path, "modified");
    }
}
