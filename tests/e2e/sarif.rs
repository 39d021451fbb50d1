//! `GET /api/v1/scans/{id}/sarif` on a real scan: `picket run`'s demo project (a small sample
//! repository with real Code and Secrets findings, scanned by the real worker and Semgrep). The
//! log must pass the official SARIF validator (`@microsoft/sarif-multitool`, pinned in
//! tests/sarif/package-lock.json, `make sarif-tools`) with zero errors, and the rules GitHub code
//! scanning applies to an upload: as many results as the scan's findings, every rule id
//! described, every location a path relative to the repository root that exists in it, limits
//! per run, and no secret value anywhere. Each check is also shown to catch a broken log.

use crate::running::{http, scratch, Netns, Server, REPO};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The sample repository the demo project scans.
const SAMPLE: &str = "crates/cli/demo/sample-app";
/// The fake credentials planted in the sample (crates/cli/demo/sample-app/app/settings.py).
const SAMPLE_SECRETS: [&str; 3] = [
    "AKIAQX3NPL7RZ4TWYB2M",
    "ghp_R8fLq2Zt6VwXc9NbH3mKj5PdY7sGa1Ue4Ti0",
    "Pq7vX2mZ9tLw",
];

/// The validator's native executable for this platform, as its npm package resolves it. Run
/// directly: the package's `bin` wrapper passes it through a shell unquoted, which breaks on a
/// checkout path holding a space.
fn validator_binary() -> std::path::PathBuf {
    let dir = Path::new(REPO).join("tests/sarif");
    let out = Command::new("node")
        .args(["-p", "require('@microsoft/sarif-multitool')"])
        .current_dir(&dir)
        .output()
        .expect("running node");
    let path = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        out.status.success() && path.is_file(),
        "the SARIF validator is not installed in {}: run `make sarif-tools` first (`make test` \
         does): {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// The validator's errors on `log` (its results of level `error`), as `rule: message` lines.
fn validator_errors(log: &Value, dir: &Path) -> Vec<String> {
    let tool = validator_binary();
    let input = dir.join("scan.sarif");
    let output = dir.join("validation.sarif");
    std::fs::write(&input, serde_json::to_vec_pretty(log).unwrap()).unwrap();
    let _ = std::fs::remove_file(&output);
    let run = Command::new(&tool)
        .arg("validate")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--log", "ForceOverwrite"])
        .output()
        .expect("running the SARIF validator");
    let report: Value = serde_json::from_slice(&std::fs::read(&output).unwrap_or_else(|e| {
        panic!(
            "the validator wrote no report ({e}): {}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        )
    }))
    .expect("the validator's report is JSON");
    let mut errors = Vec::new();
    for run in report["runs"].as_array().into_iter().flatten() {
        for r in run["results"].as_array().into_iter().flatten() {
            if r["level"] == "error" {
                errors.push(format!("{}: {}", r["ruleId"], r["message"]));
            }
        }
        // A rule that could not run is a tool failure, not a pass.
        for n in run["invocations"][0]["toolExecutionNotifications"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if n["level"] == "error" {
                errors.push(format!("tool: {}", n["message"]));
            }
        }
    }
    errors
}

/// What GitHub code scanning refuses or misplaces in an upload (its documented limits and the
/// location rules: a path relative to the repository root, present in it).
fn github_problems(log: &Value, repo: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    if log["version"] != "2.1.0" {
        problems.push(format!("version {}", log["version"]));
    }
    let runs = log["runs"].as_array().cloned().unwrap_or_default();
    if runs.is_empty() || runs.len() > 20 {
        problems.push(format!("{} runs (1-20)", runs.len()));
    }
    for run in &runs {
        let driver = &run["tool"]["driver"];
        if driver["name"].as_str().is_none_or(str::is_empty) {
            problems.push("tool.driver.name missing".into());
        }
        let rules = driver["rules"].as_array().cloned().unwrap_or_default();
        let results = run["results"].as_array().cloned().unwrap_or_default();
        if rules.len() > 25_000 || results.len() > 25_000 {
            problems.push("more than 25,000 rules or results in a run".into());
        }
        let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
        for r in &rules {
            if r["properties"]["tags"]
                .as_array()
                .is_some_and(|t| t.len() > 20)
            {
                problems.push(format!("rule {} has more than 20 tags", r["id"]));
            }
        }
        for (i, res) in results.iter().enumerate() {
            let id = res["ruleId"].as_str().unwrap_or_default();
            let index = res["ruleIndex"].as_u64().map(|i| i as usize);
            if !ids.contains(&id) || index.is_some_and(|i| ids.get(i) != Some(&id)) {
                problems.push(format!("result {i}: rule {id:?} is not described"));
            }
            if res["message"]["text"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("result {i}: no message"));
            }
            let locations = res["locations"].as_array().cloned().unwrap_or_default();
            if locations.is_empty() || locations.len() > 1000 {
                problems.push(format!("result {i}: {} locations", locations.len()));
            }
            for loc in &locations {
                let phys = &loc["physicalLocation"];
                let uri = phys["artifactLocation"]["uri"].as_str().unwrap_or_default();
                let path = percent_decode(uri);
                let relative = !uri.is_empty()
                    && !uri.contains("://")
                    && !uri.starts_with('/')
                    && !uri.contains('\\')
                    && !path.split('/').any(|seg| seg == ".." || seg == ".");
                if !relative {
                    problems.push(format!("result {i}: {uri:?} is not relative to the root"));
                } else if !repo.join(&path).is_file() {
                    problems.push(format!("result {i}: {path:?} is not in the repository"));
                }
                if phys["region"]["startLine"].as_u64().is_none_or(|l| l < 1) {
                    problems.push(format!("result {i}: no start line"));
                }
            }
        }
    }
    problems
}

fn percent_decode(uri: &str) -> String {
    let bytes = uri.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Ok(b) = u8::from_str_radix(&uri[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn get_json(ns: &Netns, path: &str, token: &str) -> Value {
    let (status, _, body) = http(ns, "GET", path, token, None);
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
}

#[test]
fn a_scans_sarif_log_validates_and_meets_githubs_upload_rules() {
    let dir = scratch("sarif");
    let ns = Netns::create("sarif");
    let (server, token) = Server::start(&ns, &dir.path().join("data"));
    let projects = get_json(&ns, "/api/v1/projects", &token);
    let scan = projects["items"][0]["last_scan"]["id"]
        .as_str()
        .expect("the demo scan")
        .to_owned();
    let detail = get_json(&ns, &format!("/api/v1/scans/{scan}"), &token);
    let findings = get_json(
        &ns,
        &format!("/api/v1/scans/{scan}/findings?limit=500"),
        &token,
    );
    let findings = findings["items"].as_array().cloned().unwrap_or_default();
    assert!(findings.len() >= 5, "the demo has findings: {findings:?}");

    let (status, content_type, body) = http(
        &ns,
        "GET",
        &format!("/api/v1/scans/{scan}/sarif"),
        &token,
        None,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/sarif+json");
    let text = String::from_utf8(body).expect("UTF-8");
    for secret in SAMPLE_SECRETS {
        assert!(!text.contains(secret), "a secret value is in the log");
    }
    let log: Value = serde_json::from_str(&text).expect("JSON");

    // The official validator: zero errors.
    let errors = validator_errors(&log, dir.path());
    assert!(errors.is_empty(), "{errors:#?}");
    // GitHub code scanning's rules, against the repository the scan read.
    let repo = Path::new(REPO).join(SAMPLE);
    let problems = github_problems(&log, &repo);
    assert!(problems.is_empty(), "{problems:#?}");

    // As many results as the scan's findings, the same rules, the scanned commit.
    let run = &log["runs"][0];
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), findings.len());
    let rule_ids = |items: &[Value], key: &str| -> BTreeSet<String> {
        items
            .iter()
            .map(|v| v[key].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(rule_ids(results, "ruleId"), rule_ids(&findings, "rule_id"));
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rule_ids(rules, "id"), rule_ids(&findings, "rule_id"));
    let sqli = rules
        .iter()
        .find(|r| r["id"] == "picket.python.sql-injection")
        .expect("the SQL injection rule");
    assert!(
        sqli["fullDescription"]["text"]
            .as_str()
            .unwrap()
            .contains("parameters"),
        "the rule's own message: {sqli}"
    );
    assert!(sqli["properties"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t.as_str().is_some_and(|t| t.starts_with("CWE-89"))));
    let provenance = &run["versionControlProvenance"][0];
    assert_eq!(provenance["revisionId"], detail["commit_sha"]);
    assert_eq!(provenance["branch"], "main");
    let secret = results
        .iter()
        .find(|r| r["properties"]["product"] == "secrets")
        .expect("a secrets result");
    assert!(secret["properties"]["secretRedacted"].is_string());
    let fingerprints: BTreeSet<&str> = results
        .iter()
        .map(|r| {
            r["partialFingerprints"]["picketFingerprint/v1"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        fingerprints.len(),
        results.len(),
        "one fingerprint per result"
    );

    // A scan that has not succeeded has no log.
    let body = json!({"kind": "full"});
    let pid = projects["items"][0]["id"].as_str().unwrap();
    let (status, _, queued) = http(
        &ns,
        "POST",
        &format!("/api/v1/projects/{pid}/scans"),
        &token,
        Some(&body),
    );
    assert!(
        status == 201 || status == 200,
        "{}",
        String::from_utf8_lossy(&queued)
    );
    let queued: Value = serde_json::from_slice(&queued).unwrap();
    let queued = queued["id"].as_str().unwrap();
    let cancel = http(
        &ns,
        "POST",
        &format!("/api/v1/scans/{queued}/cancel"),
        &token,
        Some(&json!({})),
    );
    if cancel.0 == 200 {
        let (status, _, body) = http(
            &ns,
            "GET",
            &format!("/api/v1/scans/{queued}/sarif"),
            &token,
            None,
        );
        assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    }

    // Each check catches a broken log.
    let mut broken = log.clone();
    let region = &mut broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"];
    region["startLine"] = json!(5);
    region["endLine"] = json!(2);
    broken["runs"][0]["results"][1]["ruleId"] = json!("");
    assert!(
        !validator_errors(&broken, dir.path()).is_empty(),
        "the validator passed an end line before the start line"
    );
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"] = json!("file:///work/app/db.py");
    broken["runs"][0]["results"][1]["ruleId"] = json!("not.a.rule");
    broken["runs"][0]["results"][2]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"] = json!("app/missing.py");
    assert_eq!(github_problems(&broken, &repo).len(), 3, "{broken}");
    drop(server);
}
