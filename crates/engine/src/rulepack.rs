//! Rule packs: YAML files of Semgrep rules (`rules: [{id, languages, ...}]`).
//!
//! Picket's own pack is `crates/worker/rules/`, one directory per language. Orgs upload their
//! own packs through the API; a pack is accepted only when Picket's checks pass (ids usable
//! as Picket rule ids, unique, not in Picket's `picket.` namespace, every rule naming its
//! languages, sizes within limits) and the engine itself loads it without error, with the same
//! flags the worker scans with. `semgrep --validate` is not used: besides parsing, it downloads
//! the registry's rule lints from semgrep.dev, which a self-hosted control plane must not need.

use crate::semgrep::{self, SemgrepConfig};
use picket_core::RuleId;
use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// Largest pack accepted, in bytes of YAML.
pub const MAX_PACK_BYTES: usize = 512 * 1024;
/// Most rules one pack may hold.
pub const MAX_RULES: usize = 1_000;
/// Rule ids with this prefix belong to Picket's own pack.
pub const RESERVED_PREFIX: &str = "picket.";
/// Rule ids with this prefix are the policies' Supply Chain selectors
/// (`picket_core::policy::supply_chain_selector`): a rule of that name would share their mode.
pub const SELECTOR_PREFIX: &str = "supply-chain:";
/// Longest the engine may take to load a pack (well inside the API's request timeout).
pub const VALIDATE_TIMEOUT: Duration = Duration::from_secs(20);

/// What a pack holds: its rule ids (in file order) and every language they name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackRules {
    pub rules: Vec<RuleId>,
    pub languages: BTreeSet<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("the pack is {0} bytes; the limit is {MAX_PACK_BYTES}")]
    TooLarge(usize),
    #[error("the pack is not valid YAML: {0}")]
    Yaml(String),
    #[error("the pack must be a mapping with a non-empty `rules` list")]
    NoRules,
    #[error("the pack holds {0} rules; the limit is {MAX_RULES}")]
    TooManyRules(usize),
    #[error("rule #{0} (counting from 1) has no string `id`")]
    MissingId(usize),
    #[error("rule id {id:?} cannot be used: expected {expected}")]
    BadId { id: String, expected: &'static str },
    #[error(
        "rule id {0:?} starts with `picket.` (Picket's own rules) or `supply-chain:` (the \
         policies' Supply Chain selectors): both are reserved"
    )]
    Reserved(String),
    #[error("rule id {0:?} appears more than once")]
    Duplicate(String),
    #[error("rule {0:?} has no `languages` list of names")]
    NoLanguages(String),
    #[error("the Semgrep engine rejected the pack: {0}")]
    Engine(String),
    #[error("the Semgrep engine could not be run to check the pack: {0}")]
    Unavailable(String),
}

impl PackError {
    /// Stable error code: the pack's fault, or the engine's absence.
    pub fn code(&self) -> &'static str {
        match self {
            PackError::Unavailable(_) => "rule_validation_unavailable",
            _ => "invalid_rule_pack",
        }
    }
}

/// The rule ids and languages of a YAML rule file, with no other checks: used to read the
/// rules a scan loads (Picket's pack and stored org packs).
pub fn parse(content: &str) -> Result<PackRules, PackError> {
    let doc: Value =
        serde_yaml_ng::from_str(content).map_err(|e| PackError::Yaml(e.to_string()))?;
    let Some(rules) = doc.get("rules").and_then(Value::as_sequence) else {
        return Err(PackError::NoRules);
    };
    let mut out = PackRules::default();
    let mut seen = BTreeSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let Some(id) = rule.get("id").and_then(Value::as_str) else {
            return Err(PackError::MissingId(i + 1));
        };
        let id: RuleId = id
            .parse()
            .map_err(|e: picket_core::ParseError| PackError::BadId {
                id: id.to_owned(),
                expected: e.expected,
            })?;
        if !seen.insert(id.clone()) {
            return Err(PackError::Duplicate(id.into()));
        }
        let languages = rule
            .get("languages")
            .and_then(Value::as_sequence)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| PackError::NoLanguages(id.to_string()))?;
        for lang in languages {
            let lang = lang
                .as_str()
                .ok_or_else(|| PackError::NoLanguages(id.to_string()))?;
            out.languages.insert(lang.to_ascii_lowercase());
        }
        out.rules.push(id);
    }
    Ok(out)
}

/// What a rule says about itself, for reports such as SARIF: its id, `message`, `severity` as
/// written (Semgrep's `ERROR`, `WARNING`, `INFO`, …), `languages` and `metadata` (as JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDoc {
    pub id: String,
    pub message: String,
    pub severity: String,
    pub languages: Vec<String>,
    /// The rule's `metadata` mapping (`cwe`, `category`, `confidence`, …); `null` without one.
    pub metadata: serde_json::Value,
}

/// The documentation of every rule of one pack's YAML, in file order. A rule without a string
/// `id` is left out; an unreadable document is [`PackError::Yaml`] or [`PackError::NoRules`].
pub fn rule_docs(content: &str) -> Result<Vec<RuleDoc>, PackError> {
    let doc: Value =
        serde_yaml_ng::from_str(content).map_err(|e| PackError::Yaml(e.to_string()))?;
    let Some(rules) = doc.get("rules").and_then(Value::as_sequence) else {
        return Err(PackError::NoRules);
    };
    let text = |rule: &Value, key: &str| {
        rule.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    Ok(rules
        .iter()
        .filter_map(|rule| {
            Some(RuleDoc {
                id: rule.get("id")?.as_str()?.to_owned(),
                message: text(rule, "message"),
                severity: text(rule, "severity"),
                languages: rule
                    .get("languages")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect(),
                // Metadata whose keys are not strings has no JSON form; it is left out.
                metadata: rule
                    .get("metadata")
                    .and_then(|m| serde_json::to_value(m).ok())
                    .unwrap_or_default(),
            })
        })
        .collect())
}

/// The documentation of every rule in a pack directory laid out as Picket's own
/// (`<dir>/<language>/<rule>.yaml`), sorted by id. Files that do not parse are skipped: the pack
/// is tested (`make rules-test`), and a report must not fail over one file.
pub fn dir_rule_docs(dir: &Path) -> std::io::Result<Vec<RuleDoc>> {
    let mut docs = Vec::new();
    for lang in std::fs::read_dir(dir)? {
        let lang = lang?.path();
        if !lang.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&lang)? {
            let file = file?.path();
            if file.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let content = std::fs::read_to_string(&file)?;
                docs.extend(rule_docs(&content).unwrap_or_default());
            }
        }
    }
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(docs)
}

/// Picket's checks on a pack an org uploads: [`parse`], plus limits and the reserved namespace.
pub fn check(content: &str) -> Result<PackRules, PackError> {
    if content.len() > MAX_PACK_BYTES {
        return Err(PackError::TooLarge(content.len()));
    }
    let rules = parse(content)?;
    if rules.rules.is_empty() {
        return Err(PackError::NoRules);
    }
    if rules.rules.len() > MAX_RULES {
        return Err(PackError::TooManyRules(rules.rules.len()));
    }
    if let Some(id) = rules.rules.iter().find(|id| {
        id.as_str().starts_with(RESERVED_PREFIX) || id.as_str().starts_with(SELECTOR_PREFIX)
    }) {
        return Err(PackError::Reserved(id.to_string()));
    }
    Ok(rules)
}

/// Whether the engine loads every rule of a pack, with the flags the worker scans with; the
/// engine's own message when it does not. A pack is accepted when [`check`] and this pass.
pub async fn engine_loads(cfg: &SemgrepConfig, content: &str) -> Result<(), PackError> {
    let unavailable = |e: std::io::Error| PackError::Unavailable(e.to_string());
    let dir = tempfile::tempdir().map_err(unavailable)?;
    let pack = dir.path().join("pack.yaml");
    let empty = dir.path().join("empty");
    std::fs::write(&pack, content).map_err(unavailable)?;
    std::fs::create_dir(&empty).map_err(unavailable)?;
    let mut cmd = semgrep::command(cfg);
    cmd.arg("--config").arg(&pack).arg("--").arg(&empty);
    let out = match tokio::time::timeout(VALIDATE_TIMEOUT, cmd.output()).await {
        Err(_) => {
            return Err(PackError::Engine(format!(
                "loading the rules took longer than {VALIDATE_TIMEOUT:?}"
            )))
        }
        Ok(Err(e)) => {
            return Err(PackError::Unavailable(format!(
                "cannot start {}: {e}",
                cfg.binary.display()
            )))
        }
        Ok(Ok(out)) => out,
    };
    if out.status.code() == Some(0) {
        return Ok(());
    }
    Err(PackError::Engine(engine_message(
        &out.stdout,
        &out.stderr,
        dir.path(),
    )))
}

/// The engine's own words on why it refused a pack, without the temporary paths.
fn engine_message(stdout: &[u8], stderr: &[u8], dir: &Path) -> String {
    #[derive(serde::Deserialize)]
    struct Out {
        #[serde(default)]
        errors: Vec<Err>,
    }
    #[derive(serde::Deserialize)]
    struct Err {
        message: String,
    }
    let from_json = serde_json::from_slice::<Out>(stdout)
        .map(|o| {
            o.errors
                .into_iter()
                .map(|e| e.message.trim().to_owned())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let message = if from_json.is_empty() {
        semgrep::tail(&String::from_utf8_lossy(stderr), 10)
    } else {
        from_json
    };
    let prefix = format!("{}/", dir.display());
    let message = message.replace(&prefix, "");
    if message.trim().is_empty() {
        "the engine failed without saying why".to_owned()
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_and_languages() {
        let rules = parse(
            "rules:\n- id: acme.a\n  languages: [Python, js]\n- id: acme/b\n  languages: [go]\n",
        )
        .unwrap();
        assert_eq!(
            rules.rules.iter().map(RuleId::as_str).collect::<Vec<_>>(),
            ["acme.a", "acme/b"]
        );
        assert_eq!(
            rules.languages.into_iter().collect::<Vec<_>>(),
            ["go", "js", "python"]
        );
    }

    #[test]
    fn refuses_what_picket_cannot_use() {
        let cases = [
            ("rules: [", "invalid_yaml"),
            ("- id: x", "no_rules"),
            ("rules: []", "no_rules"),
            ("rules:\n- languages: [go]\n", "missing_id"),
            ("rules:\n- id: 'a b'\n  languages: [go]\n", "bad_id"),
            ("rules:\n- id: picket.go.x\n  languages: [go]\n", "reserved"),
            (
                "rules:\n- id: 'supply-chain:high'\n  languages: [go]\n",
                "reserved",
            ),
            (
                "rules:\n- id: a\n  languages: [go]\n- id: a\n  languages: [go]\n",
                "duplicate",
            ),
            ("rules:\n- id: a\n", "no_languages"),
            ("rules:\n- id: a\n  languages: []\n", "no_languages"),
        ];
        for (yaml, want) in cases {
            let got = match check(yaml) {
                Ok(_) => "accepted",
                Err(PackError::Yaml(_)) => "invalid_yaml",
                Err(PackError::NoRules) => "no_rules",
                Err(PackError::MissingId(_)) => "missing_id",
                Err(PackError::BadId { .. }) => "bad_id",
                Err(PackError::Reserved(_)) => "reserved",
                Err(PackError::Duplicate(_)) => "duplicate",
                Err(PackError::NoLanguages(_)) => "no_languages",
                Err(e) => panic!("{yaml:?}: unexpected {e}"),
            };
            assert_eq!(got, want, "{yaml:?}");
        }
        let big = format!("rules: []\n#{}", "x".repeat(MAX_PACK_BYTES));
        assert!(matches!(check(&big), Err(PackError::TooLarge(_))));
    }

    #[test]
    fn engine_message_drops_temporary_paths() {
        let dir = Path::new("/tmp/.tmpXYZ");
        let msg = engine_message(
            br#"{"errors":[{"message":"bad pattern in /tmp/.tmpXYZ/pack.yaml:3 "}]}"#,
            b"",
            dir,
        );
        assert_eq!(msg, "bad pattern in pack.yaml:3");
        assert_eq!(
            engine_message(b"not json", b"line1\nfatal: boom\n", dir),
            "line1\nfatal: boom"
        );
    }

    #[test]
    fn rule_docs_read_message_severity_and_metadata() {
        let docs = rule_docs(
            "rules:\n- id: acme.no-eval\n  languages: [python]\n  severity: ERROR\n  message: >-\n    Do not\n    eval.\n  metadata:\n    cwe: 'CWE-95'\n    tags: [a]\n  pattern: eval(...)\n- languages: [go]\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].id, "acme.no-eval");
        assert_eq!(docs[0].message, "Do not eval.");
        assert_eq!(docs[0].severity, "ERROR");
        assert_eq!(docs[0].languages, ["python"]);
        assert_eq!(docs[0].metadata["cwe"], "CWE-95");
    }

    #[test]
    fn picket_pack_is_documented() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../worker/rules");
        let docs = dir_rule_docs(&dir).unwrap();
        assert!(docs.len() > 50, "{}", docs.len());
        assert!(docs
            .iter()
            .all(|d| d.id.starts_with("picket.") && !d.message.is_empty()));
    }
}
