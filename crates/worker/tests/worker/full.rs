//! Full scans on fixture repositories.

use crate::support::{self, Repo};
use picket_core::protocol::ScanSpec;
use picket_core::ScanKind;
use picket_worker::scan;

fn full_spec(repo: &Repo, open_finding_paths: Vec<String>) -> ScanSpec {
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
    // Test directories are scanned like the rest, as diff scans (which name files) scan them.
    assert_eq!(
        found,
        vec![
            ("app.py".to_owned(), 2),
            ("tests/test_app.py".to_owned(), 2)
        ]
    );
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
    let steps: Vec<&str> = results.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps, vec!["clone", "engine"]);
}
