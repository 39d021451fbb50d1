//! Ignore files, the same in full and diff scans (issue 8 §2): the repository's
//! `.semgrepignore` with Semgrep's semantics (its defaults without one) plus the project's path
//! ignores, applied by Picket to head and base alike.

use crate::full::full_spec;
use crate::support::{self, diff_spec, found, Repo};
use picket_core::protocol::ScanResults;
use picket_engine::targets::{tree_files, IgnoreTally, PathFilter};
use picket_worker::scan;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const TOOL: &str = "def tool(x):\n    return eval(x)\n";

fn ignores(results: &ScanResults) -> Vec<(&str, &str, u64)> {
    results
        .trail
        .ignores
        .iter()
        .map(|i| (i.source.as_str(), i.pattern.as_str(), i.files))
        .collect()
}

/// main: `.semgrepignore` = legacy/ + vendor/, an eval in legacy/tool.py, a clean vendor/lib.py.
fn base_repo() -> Repo {
    let repo = Repo::new();
    repo.write(".semgrepignore", "legacy/\nvendor/\n");
    repo.write("vendor/lib.py", "x = 1\n");
    repo.write("legacy/tool.py", TOOL);
    repo.write("app.py", "y = 2\n");
    repo.commit("base");
    repo
}

#[tokio::test]
async fn an_edit_inside_an_ignored_path_yields_nothing() {
    let repo = base_repo();
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("vendor/lib.py", "x = 1\ny = eval(x)\n");
    repo.commit("edit vendored code");
    let results = scan::run(
        &diff_spec(&repo, "feature", "main"),
        None,
        &support::config(true),
    )
    .await
    .unwrap();
    assert_eq!(found(&results), []);
    assert_eq!(ignores(&results), [(".semgrepignore", "vendor/", 1)]);
}

#[tokio::test]
async fn a_file_leaving_an_ignored_path_brings_its_findings_in_as_new() {
    let repo = base_repo();
    repo.git(&["checkout", "-q", "-b", "feature"]);
    std::fs::create_dir_all(repo.path().join("src")).unwrap();
    repo.git(&["mv", "legacy/tool.py", "src/tool.py"]);
    repo.commit("move the tool out of legacy");
    let results = scan::run(
        &diff_spec(&repo, "feature", "main"),
        None,
        &support::config(true),
    )
    .await
    .unwrap();
    assert_eq!(found(&results), [("src/tool.py", 2)]);
    assert!(results.findings[0].new_in_pr);
    // The base copy was filtered out, by the rule the trail names.
    assert_eq!(ignores(&results), [(".semgrepignore", "legacy/", 1)]);

    // A full scan of either branch agrees with the diff scan.
    let main = scan::run(&full_spec(&repo, vec![]), None, &support::config(true))
        .await
        .unwrap();
    assert_eq!(found(&main), []);
    let mut spec = full_spec(&repo, vec!["legacy/tool.py".into()]);
    spec.git_ref = "feature".into();
    let feature = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap();
    assert_eq!(found(&feature), [("src/tool.py", 2)]);
    assert_eq!(feature.deleted_paths, ["legacy/tool.py"]);
}

#[tokio::test]
async fn a_file_entering_an_ignored_path_is_not_scanned_any_more() {
    let repo = Repo::new();
    repo.write("src/tool.py", TOOL);
    repo.write(".semgrepignore", "legacy/\n");
    repo.commit("base");
    std::fs::create_dir_all(repo.path().join("legacy")).unwrap();
    repo.git(&["mv", "src/tool.py", "legacy/tool.py"]);
    repo.commit("retire the tool");
    // The branch's open finding in src/tool.py: its path is no longer scanned.
    let results = scan::run(
        &full_spec(&repo, vec!["legacy/tool.py".into(), "src/tool.py".into()]),
        None,
        &support::config(true),
    )
    .await
    .unwrap();
    assert_eq!(found(&results), []);
    assert_eq!(results.deleted_paths, ["legacy/tool.py", "src/tool.py"]);
}

#[tokio::test]
async fn the_projects_path_ignores_apply_in_full_and_diff_scans() {
    let repo = Repo::new();
    repo.write("app.py", TOOL);
    repo.write("docs/example.py", TOOL);
    repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("docs/other.py", TOOL);
    repo.write("new.py", TOOL);
    repo.commit("more");
    let mut full = full_spec(&repo, vec![]);
    full.path_ignores = vec!["docs/".into()];
    let results = scan::run(&full, None, &support::config(true))
        .await
        .unwrap();
    assert_eq!(found(&results), [("app.py", 2)]);
    // The project's patterns come on top of Semgrep's defaults (no .semgrepignore here).
    assert_eq!(ignores(&results), [("project", "docs/", 1)]);
    let mut diff = diff_spec(&repo, "feature", "main");
    diff.path_ignores = vec!["docs/".into()];
    let results = scan::run(&diff, None, &support::config(true))
        .await
        .unwrap();
    assert_eq!(found(&results), [("new.py", 2)]);
    assert_eq!(ignores(&results), [("project", "docs/", 1)]);
}

/// The files the pinned engine selects when it walks `dir` itself (`--x-ls-long`, the engine's
/// own target listing), relative to `dir`.
fn engine_selection(dir: &Path) -> BTreeSet<String> {
    let out = Command::new(support::semgrep_binary())
        .args([
            "scan",
            "--experimental",
            "--x-ls-long",
            "--metrics=off",
            "--disable-version-check",
            "--no-git-ignore",
        ])
        .arg(".")
        .current_dir(dir)
        .output()
        .expect("semgrep runs (make semgrep installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("selected "))
        .map(|p| p.trim_start_matches("./").to_owned())
        .collect()
}

fn picket_selection(dir: &Path) -> BTreeSet<String> {
    let (files, _) = tree_files(dir).unwrap();
    PathFilter::new(dir, &files, &[])
        .select(&files, &mut IgnoreTally::default())
        .into_iter()
        .collect()
}

fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// Every path Semgrep's built-in list names, and near misses.
const DEFAULTS_TREE: &[&str] = &[
    "keep.py",
    "src/app.py",
    ".svn/x.py",
    ".hg/x.py",
    "_darcs/x.py",
    "CVS/x.py",
    "build/x.py",
    "src/build/x.py",
    "vendor/x.py",
    "dist/x.py",
    "a.min.js",
    "web/b.min.js",
    "c.js",
    ".env/x.py",
    ".tox/x.py",
    "node_modules/x.js",
    ".npm/x.js",
    ".yarn/x.js",
    ".venv/x.py",
    "_opam/x.ml",
    "_build/x.ml",
    "_cargo/x.rs",
    "test/x.py",
    "tests/x.py",
    "testsuite/x.py",
    "testing/x.py",
    "a_test.go",
    "a.go",
    "__pycache__/x.py",
    "target/x.rs",
    "coverage/x.js",
    "builds/x.py",
    "vendors/x.py",
    ".environment/x.py",
];

#[test]
fn picket_selects_what_the_engine_selects_with_its_defaults() {
    let files: Vec<(&str, &str)> = DEFAULTS_TREE.iter().map(|p| (*p, "x = 1\n")).collect();
    let dir = tree(&files);
    assert_eq!(picket_selection(dir.path()), engine_selection(dir.path()));
}

#[test]
fn picket_selects_what_the_engine_selects_with_ignore_files() {
    let dir = tree(&[
        (".semgrepignore", "# comment\n\nlegacy/\n/top-only.py\n*.gen.py\ne/\n!e/y.py\nf/*\n!f/keep.py\ndocs/**/*.py\n:include more-ignores\n"),
        ("more-ignores", "generated/\n"),
        ("generated/x.py", ""),
        ("legacy/a.py", ""),
        ("src/legacy/b.py", ""),
        ("top-only.py", ""),
        ("src/top-only.py", ""),
        ("a.gen.py", ""),
        ("src/b.gen.py", ""),
        ("e/x.py", ""),
        ("e/y.py", ""),
        ("f/x.py", ""),
        ("f/keep.py", ""),
        ("docs/a/b/c.py", ""),
        ("docs/readme.md", ""),
        ("sub/.semgrepignore", "*.js\n!keep.gen.py\n"),
        ("sub/a.js", ""),
        ("sub/keep.gen.py", ""),
        ("sub/other.gen.py", ""),
        ("sub/deeper/c.js", ""),
        // With a root .semgrepignore, the defaults no longer apply.
        ("vendor/v.py", ""),
        ("tests/t.py", ""),
        ("keep.py", ""),
    ]);
    assert_eq!(picket_selection(dir.path()), engine_selection(dir.path()));
}
