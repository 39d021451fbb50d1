//! One scan's findings as a SARIF 2.1.0 log (OASIS SARIF v2.1.0, errata 01:
//! <https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/sarif-v2.1.0-errata01-os.html>),
//! shaped for GitHub code scanning's upload
//! (<https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning>).
//!
//! One run, tool `Picket`. Its `rules` are every rule a result names, with the rule's message,
//! default level and metadata from its pack's YAML (Picket's pack or the org's) when the rule is
//! still known, else from its findings. Each result: the rule, the level its severity maps to,
//! the finding's message, one location (the path relative to the repository root, as a relative
//! URI reference, and the lines the scan saw), Picket's fingerprint as a partial fingerprint,
//! `baselineState: new` for a diff scan, an in-source suppression for a `nosemgrep` finding.
//! The scanned commit is the run's `versionControlProvenance`. Secrets findings carry only their
//! redacted form (`properties.secretRedacted`); the value never reaches Picket.
//!
//! At most [`MAX_RESULTS`] results (GitHub refuses more in one run), most severe first; a
//! notification says how many were left out.

use picket_core::{Product, ScanKind, Severity};
use picket_db::findings::{ScanFindingChange, ScanFindingRecord};
use picket_engine::rulepack::RuleDoc;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The schema URI SARIF 2.1.0 (errata 01) logs name.
pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
/// The media type of a SARIF log.
pub const MEDIA_TYPE: &str = "application/sarif+json";
/// Most results one run holds: GitHub code scanning's limit per run.
pub const MAX_RESULTS: usize = 25_000;

/// The scan a log describes.
#[derive(Debug, Clone)]
pub struct ScanInfo {
    pub id: uuid::Uuid,
    pub kind: ScanKind,
    /// The branch (full scans) or PR head ref (diff scans).
    pub git_ref: Option<String>,
    /// The commit scanned (40 hex digits), once the worker reported it.
    pub commit_sha: Option<String>,
    /// The project's clone URL; any user information in it is dropped.
    pub clone_url: String,
}

/// SARIF's `level` for a Picket severity.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` (a CVSS-like score, 0.0-10.0) for a Picket severity: critical
/// above 9.0, high 7.0-8.9, medium 4.0-6.9, low 0.1-3.9.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// A rule's default level from its YAML `severity` (Semgrep's names).
fn yaml_level(severity: &str) -> Option<&'static str> {
    match severity.to_ascii_uppercase().as_str() {
        "ERROR" | "CRITICAL" | "HIGH" => Some("error"),
        "WARNING" | "MEDIUM" => Some("warning"),
        "INFO" | "LOW" | "INVENTORY" | "EXPERIMENT" => Some("note"),
        _ => None,
    }
}

/// A relative URI reference for a repository path: `/` kept, everything but RFC 3986's
/// unreserved characters percent-encoded (UTF-8).
pub fn path_uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.trim_start_matches('/').bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `url` without user information (`https://user:token@host/…` → `https://host/…`).
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The first sentence of `text` (up to and including its first `. `), for a short description.
fn first_sentence(text: &str) -> &str {
    match text.find(". ") {
        Some(i) => &text[..=i],
        None => text,
    }
}

/// A message as SARIF tools like it: non-empty, ending with a period.
fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        "No message.".to_owned()
    } else if text.ends_with(['.', '!', '?']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

fn rule_entry(id: &str, doc: Option<&RuleDoc>, findings: &[&ScanFindingRecord]) -> Value {
    let worst = findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Info);
    let message = doc
        .map(|d| d.message.as_str())
        .filter(|m| !m.is_empty())
        .or_else(|| findings.first().map(|f| f.message.as_str()))
        .unwrap_or(id);
    let default_level = doc
        .and_then(|d| yaml_level(&d.severity))
        .unwrap_or(level(worst));
    let mut properties = Map::new();
    let mut tags = vec![Value::from("security")];
    if let Some(product) = findings.first().map(|f| f.product) {
        tags.push(Value::from(product.as_str()));
    }
    if let Some(doc) = doc {
        let meta = &doc.metadata;
        for key in ["category", "cwe", "owasp"] {
            match &meta[key] {
                Value::String(s) => tags.push(Value::from(s.as_str())),
                Value::Array(items) => tags.extend(items.iter().filter(|v| v.is_string()).cloned()),
                _ => {}
            }
        }
        if let Some(confidence) = meta["confidence"].as_str() {
            let precision = match confidence.to_ascii_uppercase().as_str() {
                "HIGH" => "high",
                "MEDIUM" => "medium",
                _ => "low",
            };
            properties.insert("precision".into(), precision.into());
        }
        if !meta.is_null() {
            properties.insert("picketMetadata".into(), meta.clone());
        }
    }
    // A property bag's `tags` are unique (the SARIF schema's uniqueItems).
    let mut seen = std::collections::BTreeSet::new();
    tags.retain(|t| seen.insert(t.to_string()));
    // GitHub reads at most 20 tags per rule.
    tags.truncate(20);
    properties.insert("tags".into(), Value::Array(tags));
    properties.insert("security-severity".into(), security_severity(worst).into());
    json!({
        "id": id,
        "shortDescription": { "text": sentence(first_sentence(message)) },
        "fullDescription": { "text": sentence(message) },
        "help": { "text": sentence(message) },
        "defaultConfiguration": { "level": default_level },
        "properties": properties,
    })
}

/// The SARIF log of one scan: `findings` as its scan reported them (`found` or `new`; a diff
/// scan's `fixed` entries are not at the scanned commit and are left out), `rules` the pack
/// documentation known for their rule ids.
pub fn log(scan: &ScanInfo, findings: &[ScanFindingRecord], rules: &[RuleDoc]) -> Value {
    let present: Vec<&ScanFindingRecord> = findings
        .iter()
        .filter(|f| f.change != ScanFindingChange::Fixed)
        .collect();
    let left_out = present.len().saturating_sub(MAX_RESULTS);
    let present = &present[..present.len().min(MAX_RESULTS)];
    let mut by_rule: BTreeMap<&str, Vec<&ScanFindingRecord>> = BTreeMap::new();
    for f in present {
        by_rule.entry(f.rule_id.as_str()).or_default().push(f);
    }
    let docs: BTreeMap<&str, &RuleDoc> = rules.iter().map(|d| (d.id.as_str(), d)).collect();
    let index: BTreeMap<&str, usize> = by_rule.keys().enumerate().map(|(i, id)| (*id, i)).collect();
    let rule_entries: Vec<Value> = by_rule
        .iter()
        .map(|(id, fs)| rule_entry(id, docs.get(id).copied(), fs))
        .collect();
    let results: Vec<Value> = present
        .iter()
        .map(|f| {
            let start = f.start_line.max(1);
            let mut result = json!({
                "ruleId": f.rule_id,
                "ruleIndex": index[f.rule_id.as_str()],
                "level": level(f.severity),
                "message": { "text": sentence(&f.message) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": path_uri(&f.path) },
                        "region": { "startLine": start, "endLine": f.end_line.max(start) },
                    },
                }],
                "partialFingerprints": { "picketFingerprint/v1": f.fingerprint },
            });
            if f.change == ScanFindingChange::New {
                result["baselineState"] = "new".into();
            }
            if f.suppressed {
                result["suppressions"] = json!([{ "kind": "inSource" }]);
            }
            let mut properties = json!({
                "severity": f.severity.as_str(),
                "product": f.product.as_str(),
            });
            if let (Product::Secrets, Some(redacted)) = (f.product, &f.secret_redacted) {
                properties["secretRedacted"] = redacted.as_str().into();
            }
            result["properties"] = properties;
            result
        })
        .collect();
    let mut invocation = json!({ "executionSuccessful": true });
    if left_out > 0 {
        invocation["toolExecutionNotifications"] = json!([{
            "level": "warning",
            "message": { "text": format!(
                "{left_out} more findings are not in this log: a run holds at most {MAX_RESULTS} \
                 results (GitHub code scanning's limit); the least severe were left out."
            ) },
        }]);
    }
    let mut run = json!({
        "tool": { "driver": {
            "name": "Picket",
            "semanticVersion": env!("CARGO_PKG_VERSION"),
            "rules": rule_entries,
        } },
        "automationDetails": { "id": format!("picket/{}/{}", scan.kind.as_str(), scan.id) },
        "invocations": [invocation],
        "results": results,
    });
    if let Some(sha) = &scan.commit_sha {
        let mut provenance = json!({
            "repositoryUri": without_userinfo(&scan.clone_url),
            "revisionId": sha,
        });
        if let Some(branch) = &scan.git_ref {
            provenance["branch"] = branch.as_str().into();
        }
        run["versionControlProvenance"] = json!([provenance]);
    }
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [run],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_core::FindingStatus;

    fn finding(rule: &str, path: &str, severity: Severity) -> ScanFindingRecord {
        ScanFindingRecord {
            fingerprint: "f".repeat(64),
            finding_id: None,
            change: ScanFindingChange::Found,
            product: Product::Code,
            rule_id: rule.to_owned(),
            path: path.to_owned(),
            start_line: 3,
            end_line: 2,
            severity,
            message: "Bad thing".to_owned(),
            secret_redacted: None,
            suppressed: false,
            status: Some(FindingStatus::Open),
        }
    }

    fn scan() -> ScanInfo {
        ScanInfo {
            id: uuid::Uuid::nil(),
            kind: ScanKind::Full,
            git_ref: Some("main".into()),
            commit_sha: Some("a".repeat(40)),
            clone_url: "https://x-access-token:ghs_secret@github.com/acme/api.git".into(),
        }
    }

    #[test]
    fn paths_are_relative_uri_references() {
        assert_eq!(path_uri("src/a b/ä.py"), "src/a%20b/%C3%A4.py");
        assert_eq!(path_uri("/abs/x#y?.py"), "abs/x%23y%3F.py");
    }

    #[test]
    fn the_log_names_rules_results_and_the_commit_without_credentials() {
        let docs = vec![RuleDoc {
            id: "acme.a".into(),
            message: "Do not. Ever".into(),
            severity: "WARNING".into(),
            languages: vec!["python".into()],
            metadata: json!({"cwe": ["CWE-1"], "confidence": "HIGH"}),
        }];
        let mut fixed = finding("acme.c", "gone.py", Severity::Critical);
        fixed.change = ScanFindingChange::Fixed;
        let mut secret = finding("acme.b", "k.py", Severity::High);
        secret.product = Product::Secrets;
        secret.secret_redacted = Some("AKIA…MPLE".into());
        secret.suppressed = true;
        let log = log(
            &scan(),
            &[
                finding("acme.a", "src/x.py", Severity::Medium),
                secret,
                fixed,
            ],
            &docs,
        );
        let run = &log["runs"][0];
        assert_eq!(log["version"], "2.1.0");
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["id"], "acme.a");
        assert_eq!(rules[0]["shortDescription"]["text"], "Do not.");
        assert_eq!(rules[0]["defaultConfiguration"]["level"], "warning");
        assert_eq!(rules[0]["properties"]["precision"], "high");
        assert_eq!(
            rules[0]["properties"]["tags"],
            json!(["security", "code", "CWE-1"]),
            "unique"
        );
        assert_eq!(rules[1]["fullDescription"]["text"], "Bad thing.");
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "fixed findings are not at the commit");
        assert_eq!(results[0]["ruleIndex"], 0);
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["region"]["endLine"],
            3
        );
        assert_eq!(results[1]["properties"]["secretRedacted"], "AKIA…MPLE");
        assert_eq!(results[1]["suppressions"][0]["kind"], "inSource");
        let provenance = &run["versionControlProvenance"][0];
        assert_eq!(
            provenance["repositoryUri"],
            "https://github.com/acme/api.git"
        );
        assert_eq!(provenance["revisionId"], "a".repeat(40));
        assert!(!log.to_string().contains("ghs_secret"));
    }

    #[test]
    fn a_run_stops_at_githubs_limit_and_says_so() {
        let many: Vec<_> = (0..MAX_RESULTS + 3)
            .map(|_| finding("acme.a", "x.py", Severity::Low))
            .collect();
        let log = log(&scan(), &many, &[]);
        let run = &log["runs"][0];
        assert_eq!(run["results"].as_array().unwrap().len(), MAX_RESULTS);
        let note = run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]
            .as_str()
            .unwrap();
        assert!(note.starts_with("3 more findings"), "{note}");
    }
}
