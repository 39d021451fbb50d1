//! Inline suppressions that say what they suppressed (issue 8 §3): the engine runs with its own
//! `nosemgrep` handling off and Picket marks what a comment covers, so suppressed findings stay
//! visible; `nosemgrep : rule` with a space before the colon silences only that rule.

use crate::full::{full_spec, pack};
use crate::support::{self, diff_spec, Repo};
use picket_core::protocol::{InlineSuppression, ScanResults};
use picket_worker::scan;

const PACK: &str = "rules:
- id: py-exec
  languages: [python]
  severity: ERROR
  message: exec of a dynamic string
  pattern: exec(...)
- id: py-eval
  languages: [python]
  severity: ERROR
  message: eval of a dynamic string
  pattern: eval(...)
";

const SOURCE: &str = "\
eval(user_input)  # nosemgrep : py-exec
exec(user_input)  # nosemgrep : py-exec
eval(user_input)  # nosemgrep
# nosemgrep: py-eval, picket.test.eval
eval(user_input)
exec(user_input)  # NOSEMGREP:test.eval
eval(user_input)  # nosemgrep: eval
";

/// (rule, line, the rules the covering comment names, if one covers it)
type Row = (String, u32, Option<Vec<String>>);

fn rows(results: &ScanResults) -> Vec<Row> {
    let mut r: Vec<Row> = results
        .findings
        .iter()
        .map(|f| {
            (
                f.rule_id.to_string(),
                f.start_line,
                f.suppressed
                    .as_ref()
                    .map(|s: &InlineSuppression| s.rules.clone()),
            )
        })
        .collect();
    r.sort();
    r
}

fn row(rule: &str, line: u32, by: Option<&[&str]>) -> Row {
    (
        rule.to_owned(),
        line,
        by.map(|ids| ids.iter().map(|s| (*s).to_owned()).collect()),
    )
}

fn expected() -> Vec<Row> {
    let exec = Some(&["py-exec"][..]);
    let bare = Some(&[][..]);
    let listed = Some(&["py-eval", "picket.test.eval"][..]);
    let mut e = vec![
        // `nosemgrep : py-exec` names py-exec: the eval rules on that line are not silenced.
        row("py-eval", 1, None),
        row("picket.test.eval", 1, None),
        row("py-exec", 2, exec),
        row("py-eval", 3, bare),
        row("picket.test.eval", 3, bare),
        row("py-eval", 5, listed),
        row("picket.test.eval", 5, listed),
        // A dotted suffix names the rule; `test.eval` is not a rule on this line.
        row("py-exec", 6, None),
        // `eval` is a dotted suffix of `picket.test.eval`, not of `py-eval`.
        row("py-eval", 7, None),
        row("picket.test.eval", 7, Some(&["eval"][..])),
    ];
    e.sort();
    e
}

#[tokio::test]
async fn comments_suppress_what_they_name_and_suppressed_findings_are_kept() {
    let repo = Repo::new();
    repo.write("app.py", SOURCE);
    repo.commit("base");
    let mut spec = full_spec(&repo, vec![]);
    spec.rule_packs = vec![pack("acme", PACK)];
    let results = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap();
    assert_eq!(rows(&results), expected());
    let step = results
        .trail
        .steps
        .iter()
        .find(|s| s.step == "suppressions")
        .unwrap();
    assert_eq!(step.figures["suppressed"], 6);
}

#[tokio::test]
async fn an_org_can_turn_inline_suppression_off() {
    let repo = Repo::new();
    repo.write("app.py", SOURCE);
    repo.commit("base");
    let mut spec = full_spec(&repo, vec![]);
    spec.rule_packs = vec![pack("acme", PACK)];
    spec.inline_suppression = false;
    let results = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap();
    let all: Vec<Row> = expected()
        .into_iter()
        .map(|(rule, line, _)| (rule, line, None))
        .collect();
    assert_eq!(rows(&results), all);
}

#[tokio::test]
async fn a_diff_scan_marks_its_new_findings_the_same_way() {
    let repo = Repo::new();
    repo.write("README.md", "base\n");
    repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("app.py", SOURCE);
    repo.commit("add app");
    let mut spec = diff_spec(&repo, "feature", "main");
    spec.rule_packs = vec![pack("acme", PACK)];
    let results = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap();
    assert_eq!(rows(&results), expected());
    assert!(results.findings.iter().all(|f| f.new_in_pr));
}
