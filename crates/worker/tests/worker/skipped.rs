//! Files the engine cannot read or parse are skipped and reported; the scan goes on with the
//! rest, in full and diff scans (issue 8 §1: one such file used to fail every scan of a branch,
//! because the engine copies the file's raw bytes into its JSON).

use crate::full::full_spec;
use crate::support::{self, diff_spec, found, Repo};
use picket_core::protocol::{ScanResults, SkipKind};
use picket_worker::scan;

const CLEAN: &str = "def ok(x):\n    return eval(x)\n";

/// Real repositories' unreadable files: invalid UTF-8 inside code, Latin-1, NUL bytes, a PNG
/// named `.py`, a syntax error. Each holds `eval`: the engine parses a file only when a rule's
/// prefilter matches its text.
fn add_bad_files(repo: &Repo) {
    repo.write_bytes("bad.py", b"x = (\xff\ny = eval(x)\n");
    repo.write_bytes(
        "latin1.py",
        b"# -*- coding: latin-1 -*-\ns = 'caf\xe9'\nt = eval(s)\n",
    );
    repo.write_bytes("nul.py", b"a = 1\x00\x00\nb = eval(a)\n");
    repo.write_bytes(
        "logo.py",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x08\x06\x00\x00\x00\xff\xfetEXteval(x)\x00\xff",
    );
    repo.write("broken.py", "def f(:\n    return eval(y)\n");
}

fn skipped(results: &ScanResults) -> Vec<(&str, SkipKind)> {
    let mut s: Vec<_> = results
        .trail
        .skipped_files
        .iter()
        .map(|f| (f.path.as_str(), f.kind))
        .collect();
    s.sort_by_key(|(p, _)| *p);
    s
}

fn assert_reasons_are_clean(results: &ScanResults, checkout_hint: &str) {
    for f in &results.trail.skipped_files {
        assert!(!f.reason.is_empty(), "{f:?}");
        // No temporary paths, and no quoted source text (it could hold a secret).
        assert!(!f.reason.contains("/tmp"), "{f:?}");
        assert!(!f.reason.contains(checkout_hint), "{f:?}");
        assert!(!f.reason.contains("x = ("), "{f:?}");
    }
}

#[tokio::test]
async fn a_full_scan_skips_and_reports_files_the_engine_cannot_parse() {
    let repo = Repo::new();
    repo.write("clean.py", CLEAN);
    add_bad_files(&repo);
    repo.commit("base");
    let results = scan::run(&full_spec(&repo, vec![]), None, &support::config(true))
        .await
        .expect("one unparsable file must not fail the scan");
    // Everything readable is scanned, the files with invalid bytes included.
    let f = found(&results);
    assert!(f.contains(&("clean.py", 2)), "{f:?}");
    assert!(f.contains(&("latin1.py", 3)), "{f:?}");
    assert!(f.contains(&("nul.py", 2)), "{f:?}");
    let s = skipped(&results);
    let paths: Vec<&str> = s.iter().map(|(p, _)| *p).collect();
    assert!(paths.contains(&"bad.py"), "{s:?}");
    assert!(paths.contains(&"logo.py"), "{s:?}");
    assert!(!paths.contains(&"clean.py"), "{s:?}");
    assert!(s
        .iter()
        .all(|(_, k)| matches!(k, SkipKind::Unparsable | SkipKind::PartlyParsed)));
    assert_reasons_are_clean(&results, "ca\u{fffd}");
    let engine = results
        .trail
        .steps
        .iter()
        .find(|s| s.step == "engine")
        .unwrap();
    assert_eq!(engine.figures["files_skipped"], s.len() as u64);
}

#[tokio::test]
async fn a_diff_scan_skips_and_reports_them_too() {
    let repo = Repo::new();
    repo.write("README.md", "base\n");
    repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("clean.py", CLEAN);
    add_bad_files(&repo);
    repo.commit("add files");
    repo.git(&["checkout", "-q", "main"]);
    let results = scan::run(
        &diff_spec(&repo, "feature", "main"),
        None,
        &support::config(true),
    )
    .await
    .expect("one unparsable file must not fail the scan");
    let f = found(&results);
    assert!(f.contains(&("clean.py", 2)), "{f:?}");
    assert!(results.findings.iter().all(|f| f.new_in_pr));
    let s = skipped(&results);
    let paths: Vec<&str> = s.iter().map(|(p, _)| *p).collect();
    assert!(paths.contains(&"bad.py"), "{s:?}");
    assert!(paths.contains(&"logo.py"), "{s:?}");
    assert_reasons_are_clean(&results, "ca\u{fffd}");
}

#[tokio::test]
async fn files_over_the_engines_limit_are_reported_not_silently_dropped() {
    let repo = Repo::new();
    repo.write("clean.py", CLEAN);
    repo.write("big.py", &"x = 1\n".repeat(200));
    repo.commit("base");
    let mut cfg = support::config(true);
    cfg.semgrep.max_target_bytes = 1_000;
    let results = scan::run(&full_spec(&repo, vec![]), None, &cfg)
        .await
        .unwrap();
    assert_eq!(skipped(&results), [("big.py", SkipKind::TooLarge)]);
    assert!(results.trail.skipped_files[0].reason.contains("1200 bytes"));
    assert_eq!(found(&results), [("clean.py", 2)]);
}
