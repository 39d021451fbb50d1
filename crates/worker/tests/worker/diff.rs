//! Diff-aware scans on fixture repositories, each with its expected new findings written down,
//! and checked against `semgrep scan --baseline-commit <merge base>`: Picket's new findings are a
//! subset of the CLI's, and every finding the CLI reports that Picket drops has a same-rule
//! finding with the same anchor at the merge base.

use crate::support::{self, diff_spec, Repo};
use picket_worker::identity::anchor_of;
use picket_worker::scan;
use picket_worker::semgrep::{resolve_rule_id, rules_in_dir};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const EVAL: &str = "picket.test.eval";
const ROUTE: &str = "picket.test.unauthenticated-route";

type Found = BTreeSet<(String, String, u32)>;

fn found(rule: &str, path: &str, line: u32) -> (String, String, u32) {
    (rule.to_owned(), path.to_owned(), line)
}

const APP: &str = "import os\n\n\ndef handler(x):\n    return eval(x)\n";
const ROUTES: &str = "\
@route(\"/a\")
def index(request):
    name = request.args[\"name\"]
    return render(name)
";

/// Runs Picket's diff scan of `feature` against `main`, checks it against the CLI's baseline
/// scan, and returns Picket's new findings.
async fn picket_new(repo: &Repo) -> Found {
    let spec = diff_spec(repo, "feature", "main");
    let results = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap();
    let merge_base = repo.git(&["merge-base", "feature", "main"]);
    assert_eq!(results.merge_base_sha.as_deref(), Some(merge_base.as_str()));
    let mine: Found = results
        .findings
        .iter()
        .map(|f| {
            assert!(f.new_in_pr);
            found(f.rule_id.as_str(), &f.path, f.start_line)
        })
        .collect();
    check_against_baseline_cli(repo, &merge_base, &mine);
    mine
}

/// Semgrep's JSON results as (rule, path, line, anchor), reading anchors from `dir`.
fn semgrep_json(dir: &Path, extra: &[&str]) -> Vec<(String, String, u32, String)> {
    let out = Command::new(support::semgrep_binary())
        .args([
            "scan",
            "--json",
            "--metrics=off",
            "--disable-version-check",
            "--quiet",
            "--config",
        ])
        .arg(support::fixture_rules())
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("semgrep runs (make semgrep installs it)");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "semgrep output: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut loaded = BTreeSet::new();
    for dir in std::fs::read_dir(support::fixture_rules()).unwrap() {
        loaded.extend(rules_in_dir(&dir.unwrap().path()).unwrap());
    }
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            // Semgrep prefixes the id with the rules' path, which may itself hold `picket.`
            // (a checkout in a folder named `picket`): resolve it as the engine does.
            let id = r["check_id"].as_str().unwrap();
            let rule = resolve_rule_id(id, &loaded)
                .unwrap_or_else(|| panic!("{id} names no fixture rule"))
                .to_string();
            let path = r["path"].as_str().unwrap().to_owned();
            let content = std::fs::read(dir.join(&path)).unwrap();
            let start = r["start"]["offset"].as_u64().unwrap() as usize;
            let end = r["end"]["offset"].as_u64().unwrap() as usize;
            let anchor = anchor_of(&content, start, end)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            (
                rule,
                path,
                r["start"]["line"].as_u64().unwrap() as u32,
                anchor,
            )
        })
        .collect()
}

fn check_against_baseline_cli(repo: &Repo, merge_base: &str, mine: &Found) {
    let head = tempfile::tempdir().unwrap();
    let clone = |dir: &Path, rev: &str| {
        let ok = Command::new("git")
            .args(["clone", "-q"])
            .arg(repo.path())
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let ok = Command::new("git")
            .args(["checkout", "-q", rev])
            .current_dir(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    clone(head.path(), "origin/feature");
    let cli = semgrep_json(head.path(), &["--baseline-commit", merge_base]);
    let cli_set: Found = cli
        .iter()
        .map(|(r, p, l, _)| (r.clone(), p.clone(), *l))
        .collect();
    assert!(
        mine.is_subset(&cli_set),
        "Picket {mine:?} not within the CLI's {cli_set:?}"
    );

    let base = tempfile::tempdir().unwrap();
    clone(base.path(), merge_base);
    let at_base = semgrep_json(base.path(), &[]);
    for (rule, path, line, anchor) in &cli {
        if mine.contains(&(rule.clone(), path.clone(), *line)) {
            continue;
        }
        assert!(
            at_base.iter().any(|(r, _, _, a)| r == rule && a == anchor),
            "the CLI's {rule} at {path}:{line} was dropped without a same-anchor finding at the base"
        );
    }
}

/// `main` with `files`, then branch `feature`.
fn repo_with(files: &[(&str, &str)]) -> Repo {
    let repo = Repo::new();
    for (p, c) in files {
        repo.write(p, c);
    }
    repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo
}

#[tokio::test]
async fn an_added_finding_is_new() {
    let repo = repo_with(&[("app.py", APP)]);
    repo.write(
        "app.py",
        &format!("{APP}\n\ndef other(y):\n    return eval(y + 1)\n"),
    );
    repo.commit("add a second eval");
    assert_eq!(
        picket_new(&repo).await,
        Found::from([found(EVAL, "app.py", 9)])
    );
}

#[tokio::test]
async fn moved_code_is_not_new() {
    let repo = repo_with(&[("app.py", APP)]);
    repo.write("app.py", &format!("# a comment\n# another\n\n{APP}"));
    repo.commit("push the eval down");
    assert_eq!(picket_new(&repo).await, Found::new());
}

#[tokio::test]
async fn a_fixed_finding_is_not_reported() {
    let repo = repo_with(&[("app.py", APP)]);
    repo.write(
        "app.py",
        "import os\n\n\ndef handler(x):\n    return int(x)\n",
    );
    repo.commit("fix");
    assert_eq!(picket_new(&repo).await, Found::new());
}

#[tokio::test]
async fn a_renamed_file_keeps_its_findings() {
    let repo = repo_with(&[("app.py", APP)]);
    repo.git(&["mv", "app.py", "handlers.py"]);
    repo.write("handlers.py", &format!("{APP}\n# renamed\n"));
    repo.commit("rename");
    assert_eq!(picket_new(&repo).await, Found::new());
}

#[tokio::test]
async fn a_deleted_file_reports_nothing() {
    let repo = repo_with(&[("app.py", APP), ("keep.py", "x = 1\n")]);
    repo.git(&["rm", "-q", "app.py"]);
    repo.commit("delete");
    assert_eq!(picket_new(&repo).await, Found::new());
}

#[tokio::test]
async fn findings_in_unchanged_files_are_not_reported() {
    let repo = repo_with(&[("app.py", APP), ("other.py", "y = 2\n")]);
    repo.write("other.py", "y = 3\n");
    repo.commit("touch another file");
    assert_eq!(picket_new(&repo).await, Found::new());
}

#[tokio::test]
async fn an_edited_body_under_an_unchanged_anchor_is_not_new() {
    let repo = repo_with(&[("routes.py", ROUTES)]);
    repo.write(
        "routes.py",
        &ROUTES.replace("return render(name)", "return render(name.strip())"),
    );
    repo.commit("edit the body");
    assert_eq!(picket_new(&repo).await, Found::new());
}

#[tokio::test]
async fn an_edit_inside_the_anchor_line_is_new() {
    let repo = repo_with(&[("app.py", APP)]);
    repo.write("app.py", &APP.replace("eval(x)", "eval(x.strip())"));
    repo.commit("edit the anchor line");
    assert_eq!(
        picket_new(&repo).await,
        Found::from([found(EVAL, "app.py", 5)])
    );
}

#[tokio::test]
async fn the_target_moving_on_after_the_branch_point_adds_nothing() {
    let repo = repo_with(&[("app.py", APP)]);
    repo.write("feature.py", "def f(v):\n    return v\n");
    repo.commit("feature work without findings");
    repo.git(&["checkout", "-q", "main"]);
    repo.write("later.py", "def g(z):\n    return eval(z)\n");
    repo.write(
        "app.py",
        "import os\n\n\ndef handler(x):\n    return int(x)\n",
    );
    repo.commit("main moves on: a new eval elsewhere, the old one fixed");
    assert_eq!(picket_new(&repo).await, Found::new());
}

#[tokio::test]
async fn the_native_engine_agrees_with_the_python_cli_on_the_fixtures() {
    let repo = repo_with(&[("app.py", APP), ("routes.py", ROUTES)]);
    repo.write(
        "app.py",
        &format!("{APP}\n\ndef other(y):\n    return eval(y + 1)\n"),
    );
    repo.commit("change");
    let spec = diff_spec(&repo, "feature", "main");
    let native = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap();
    let python = scan::run(&spec, None, &support::config(false))
        .await
        .unwrap();
    assert_eq!(native.findings, python.findings);
    assert_eq!(native.rules_run, python.rules_run);
}

#[tokio::test]
async fn a_new_function_wide_match_is_new() {
    let repo = repo_with(&[("routes.py", ROUTES)]);
    repo.write(
        "routes.py",
        &format!("{ROUTES}\n\n@route(\"/b\")\ndef other(request):\n    return render(\"b\")\n"),
    );
    repo.commit("add a route");
    assert_eq!(
        picket_new(&repo).await,
        Found::from([found(ROUTE, "routes.py", 7)])
    );
}

/// A PR opened when main was at `opened_at`; main then gained an `eval` of its own, and the PR
/// merged main in. The PR introduced nothing: the baseline is the merge base with main's tip
/// when the scan runs, even when the requester names the old target tip as `base_sha` (the
/// fault of issue 9 §4: baselining on that old tip blamed the PR for main's own finding).
#[tokio::test]
async fn a_pr_that_merged_the_moved_target_is_not_blamed_for_the_targets_findings() {
    let repo = Repo::new();
    repo.write("app.py", "x = 1\n");
    let opened_at = repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("feature.py", "y = 2\n");
    repo.commit("feature work");
    repo.git(&["checkout", "-q", "main"]);
    repo.write("app.py", APP);
    let main_tip = repo.commit("main gains an eval");
    repo.git(&["checkout", "-q", "feature"]);
    repo.git(&["merge", "-q", "--no-edit", "main"]);

    let mut spec = diff_spec(&repo, "feature", "main");
    spec.base_sha = Some(opened_at.clone());
    let results = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap();
    assert_eq!(results.merge_base_sha.as_deref(), Some(main_tip.as_str()));
    assert!(
        results.findings.iter().all(|f| !f.new_in_pr),
        "main's own eval blamed on the PR: {:?}",
        results.findings
    );
    // The same PR baselined on the old tip would have reported it: the test can fail.
    let old_baseline = semgrep_json(repo.path(), &["--baseline-commit", &opened_at]);
    assert!(old_baseline
        .iter()
        .any(|(rule, path, ..)| rule == EVAL && path == "app.py"));
}
