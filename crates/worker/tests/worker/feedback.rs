//! From a real diff scan to the PR feedback plan: the worker's findings and diff lines fed to
//! picket-core's planner, then a second push that fixes one finding.

use crate::support::{self, diff_spec, Repo};
use picket_core::feedback::{
    parse_marker, plan_feedback, CheckConclusion, ExistingComment, FeedbackInput, FeedbackPlan,
    Marker, NewFinding, Placement, ResolveReason, SummaryAction,
};
use picket_core::{RuleId, RuleMode};
use picket_worker::diff_lines::diff_lines;
use picket_worker::scan;
use std::collections::BTreeMap;

const EVAL: &str = "picket.test.eval";
const APP: &str = "import os\n\n\ndef handler(x):\n    return eval(x)\n";

/// Scans `feature` against `main` and plans its feedback on top of `existing`.
async fn scan_and_plan(repo: &Repo, existing: Vec<ExistingComment>) -> FeedbackPlan {
    let spec = diff_spec(repo, "feature", "main");
    let results = scan::run(&spec, None, &support::config(true))
        .await
        .unwrap();
    let modes = BTreeMap::from([(EVAL.parse::<RuleId>().unwrap(), RuleMode::Block)]);
    let findings: Vec<NewFinding> = results
        .findings
        .iter()
        .filter_map(|f| NewFinding::from_reported(f, &modes))
        .collect();

    let git = git2::Repository::open(repo.path()).unwrap();
    let oid = |rev: &str| git2::Oid::from_str(&repo.git(&["rev-parse", rev])).unwrap();
    let merge_base = git2::Oid::from_str(results.merge_base_sha.as_deref().unwrap()).unwrap();
    let diff = diff_lines(&git, merge_base, oid("feature")).unwrap();

    plan_feedback(&FeedbackInput {
        findings,
        fixed_in_pr: results.fixed_in_pr.len(),
        diff,
        existing,
        ..FeedbackInput::default()
    })
}

/// The comments a provider holds after `plan` was carried out.
fn carry_out(mut existing: Vec<ExistingComment>, plan: &FeedbackPlan) -> Vec<ExistingComment> {
    for r in &plan.resolve {
        for c in existing.iter_mut().filter(|c| c.comment_id == r.comment_id) {
            c.resolved = true;
        }
    }
    for p in &plan.post {
        existing.push(ExistingComment {
            comment_id: format!("{}:{}", p.path, p.line),
            thread_id: Some(format!("thread {}:{}", p.path, p.line)),
            body: p.body.clone(),
            resolved: false,
        });
    }
    if plan.summary.action == SummaryAction::Create {
        existing.push(ExistingComment {
            comment_id: "summary".into(),
            thread_id: None,
            body: plan.summary.body.clone(),
            resolved: false,
        });
    }
    existing
}

#[tokio::test]
async fn a_diff_scan_is_commented_on_its_lines_then_resolved_when_fixed() {
    let repo = Repo::new();
    repo.write("app.py", APP);
    repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write(
        "app.py",
        &format!("{APP}\n\ndef other(y):\n    return eval(y + 1)\n"),
    );
    repo.write("tools/run.py", "def go(z):\n    return eval(z)\n");
    repo.commit("two new evals");

    let plan = scan_and_plan(&repo, vec![]).await;
    let mut posted: Vec<(&str, u32)> = plan
        .post
        .iter()
        .map(|c| (c.path.as_str(), c.line))
        .collect();
    posted.sort_unstable();
    // The pre-existing eval on app.py:5 is not new: no comment.
    assert_eq!(posted, [("app.py", 9), ("tools/run.py", 2)]);
    for c in &plan.post {
        assert_eq!(
            parse_marker(&c.body),
            Some(Marker::Finding(c.fingerprint.clone()))
        );
    }
    assert_eq!(plan.check.conclusion, CheckConclusion::Failure);
    assert_eq!(plan.check.annotations.len(), 2);
    assert_eq!(plan.summary.action, SummaryAction::Create);

    // The same result again: nothing new.
    let existing = carry_out(vec![], &plan);
    let again = scan_and_plan(&repo, existing.clone()).await;
    assert!(again.post.is_empty() && again.resolve.is_empty());
    assert!(matches!(
        again.summary.action,
        SummaryAction::Unchanged { .. }
    ));

    // A push fixes app.py's new eval: its thread is resolved, the other comment stays.
    repo.write(
        "app.py",
        &format!("{APP}\n\ndef other(y):\n    return int(y)\n"),
    );
    repo.commit("fix one");
    let fixed = scan_and_plan(&repo, existing).await;
    assert!(fixed.post.is_empty());
    let resolved: Vec<(&str, ResolveReason)> = fixed
        .resolve
        .iter()
        .map(|r| (r.comment_id.as_str(), r.reason))
        .collect();
    assert_eq!(resolved, [("app.py:9", ResolveReason::Gone)]);
    assert_eq!(fixed.keep.len(), 1);
    assert_eq!(fixed.keep[0].comment_id, "tools/run.py:2");
    assert!(matches!(
        fixed.placements.values().next(),
        Some(Placement::Commented { .. })
    ));
    assert!(matches!(fixed.summary.action, SummaryAction::Update { .. }));
    assert_eq!(fixed.check.conclusion, CheckConclusion::Failure);
}
