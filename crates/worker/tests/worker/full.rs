//! Full scans on fixture repositories.

use crate::support::{self, Repo};
use picket_core::protocol::{RulePackSpec, ScanSpec, MAX_MATCHED_LINE_CHARS};
use picket_core::{Product, ScanKind};
use picket_worker::scan;

pub fn full_spec(repo: &Repo, open_finding_paths: Vec<String>) -> ScanSpec {
    ScanSpec {
        kind: ScanKind::Full,
        git_ref: "main".into(),
        base_ref: None,
        pr_number: None,
        open_finding_paths,
        ..support::diff_spec(repo, "main", "main")
    }
}

#[tokio::test]
async fn a_full_scan_reports_every_file_and_the_deleted_paths() {
    let repo = Repo::new();
    repo.write("app.py", "def f(x):\n    return eval(x)\n");
    repo.write("tests/test_app.py", "def test(y):\n    assert eval(y)\n");
    repo.commit("base");
    let spec = full_spec(&repo, vec!["app.py".into(), "gone.py".into()]);
    let results = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap();
    let mut found: Vec<(String, u32)> = results
        .findings
        .iter()
        .map(|f| (f.path.clone(), f.start_line))
        .collect();
    found.sort();
    // Without a .semgrepignore, Semgrep's defaults apply: tests/ is not scanned.
    assert_eq!(found, vec![("app.py".to_owned(), 2)]);
    let ignores: Vec<(&str, &str, u64)> = results
        .trail
        .ignores
        .iter()
        .map(|i| (i.source.as_str(), i.pattern.as_str(), i.files))
        .collect();
    assert_eq!(ignores, [("default", "tests/", 1)]);
    assert!(results
        .findings
        .iter()
        .all(|f| !f.new_in_pr && f.secret.is_none()));
    assert_eq!(results.deleted_paths, vec!["gone.py".to_owned()]);
    assert_eq!(results.commit_sha, repo.git(&["rev-parse", "HEAD"]));
    assert!(results
        .rules_run
        .iter()
        .any(|r| r.as_str() == "picket.test.eval"));
    let steps: Vec<&str> = results
        .trail
        .steps
        .iter()
        .map(|s| s.step.as_str())
        .collect();
    assert_eq!(
        steps,
        vec!["clone", "targets", "engine", "suppressions", "identities"]
    );
}

pub fn pack(name: &str, content: &str) -> RulePackSpec {
    RulePackSpec {
        name: name.into(),
        sha256: hex_sha256(content),
        content: content.into(),
    }
}

fn hex_sha256(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const ORG_PACK: &str = "rules:
- id: acme.no-pickle
  languages: [python]
  severity: ERROR
  message: unpickling untrusted data
  pattern: pickle.loads(...)
- id: acme.no-md5
  languages: [python]
  severity: WARNING
  message: md5 is broken
  pattern: hashlib.md5(...)
";

const GO_PACK: &str = "rules:
- id: acme.go-only
  languages: [go]
  severity: ERROR
  message: never loaded here
  pattern: os.Exit(...)
";

#[tokio::test]
async fn an_orgs_packs_run_beside_picket_pack_and_every_loaded_rule_counts_as_run() {
    let repo = Repo::new();
    repo.write(
        "app.py",
        "import pickle\ndef f(x):\n    eval(x)\n    return pickle.loads(x)\n",
    );
    repo.commit("base");
    let mut spec = full_spec(&repo, vec![]);
    spec.rule_packs = vec![pack("acme", ORG_PACK), pack("go", GO_PACK)];
    let results = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap();
    let mut found: Vec<(&str, u32)> = results
        .findings
        .iter()
        .map(|f| (f.rule_id.as_str(), f.start_line))
        .collect();
    found.sort();
    assert_eq!(found, [("acme.no-pickle", 4), ("picket.test.eval", 3)]);
    let run: Vec<&str> = results.rules_run.iter().map(|r| r.as_str()).collect();
    // acme.no-md5 matched nothing but ran: its open findings are fixed, not removed.
    assert!(run.contains(&"acme.no-md5"), "{run:?}");
    assert!(run.contains(&"acme.no-pickle"), "{run:?}");
    // A Go-only pack is not loaded for a Python repository.
    assert!(!run.contains(&"acme.go-only"), "{run:?}");
}

#[tokio::test]
async fn a_pack_that_does_not_match_its_hash_is_refused() {
    let repo = Repo::new();
    repo.write("app.py", "x = 1\n");
    repo.commit("base");
    let mut spec = full_spec(&repo, vec![]);
    let mut tampered = pack("acme", ORG_PACK);
    tampered.content = tampered.content.replace("pickle.loads", "pickle.dumps");
    spec.rule_packs = vec![tampered];
    let err = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap_err();
    assert_eq!(err.error.code(), "bad_rule_pack");
    assert!(err.to_string().contains("\"acme\""), "{err}");
}

const SECRETS_PACK: &str = "rules:
- id: acme.aws-key
  languages: [python]
  severity: ERROR
  message: AWS access key
  metadata: {product: secrets}
  pattern-regex: AKIA[0-9A-Z]{16}
";

#[tokio::test]
async fn code_findings_carry_their_matched_lines_and_secrets_findings_never_do() {
    let repo = Repo::new();
    let long = format!("    eval(x + \"{}\")\n", "a".repeat(500));
    let app = format!(
        "def f(x):\n    eval(\n        x,\n        1,\n        2,\n        3,\n        4,\n    )\n{long}KEY = \"AKIAQWERTYCANARY0123\"\n"
    );
    repo.write("app.py", &app);
    repo.commit("base");
    let mut spec = full_spec(&repo, vec![]);
    spec.products = vec![Product::Code, Product::Secrets];
    spec.rule_packs = vec![pack("acme", SECRETS_PACK)];
    let results = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap();
    let by_line = |line: u32| {
        results
            .findings
            .iter()
            .find(|f| f.start_line == line)
            .unwrap_or_else(|| panic!("no finding on line {line}: {:?}", results.findings))
    };
    // Seven matched lines: the first five are sent.
    let multi = by_line(2);
    assert_eq!(multi.end_line, 8);
    assert_eq!(
        multi.matched_lines,
        [
            "    eval(",
            "        x,",
            "        1,",
            "        2,",
            "        3,"
        ]
    );
    // A long line is cut to the limit and says so.
    let cut = &by_line(9).matched_lines;
    assert_eq!(cut.len(), 1);
    assert_eq!(cut[0].chars().count(), MAX_MATCHED_LINE_CHARS);
    assert!(cut[0].starts_with("    eval(x + \"aaa") && cut[0].ends_with('…'));
    let secret = by_line(10);
    assert_eq!(secret.product, Product::Secrets);
    assert!(secret.matched_lines.is_empty(), "{secret:?}");
    assert!(!serde_json::to_string(&results).unwrap().contains("CANARY"));

    // The org turned storing them off: nothing is sent.
    spec.store_matched_lines = false;
    let results = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap();
    assert_eq!(results.findings.len(), 3);
    assert!(results.findings.iter().all(|f| f.matched_lines.is_empty()));
}
