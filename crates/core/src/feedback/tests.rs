use super::markdown::{escape, escape_line, fit};
use super::*;
use crate::protocol::{InlineSuppression, RedactedSecret};
use proptest::prelude::*;

fn rule(s: &str) -> RuleId {
    s.parse().unwrap()
}

fn fp(tag: &str) -> Fingerprint {
    Fingerprint::compute(&rule("t"), "p", tag, 0)
}

fn finding(
    tag: &str,
    rule_id: &str,
    mode: RuleMode,
    path: &str,
    start: u32,
    end: u32,
) -> NewFinding {
    NewFinding {
        fingerprint: fp(tag),
        rule: rule(rule_id),
        mode,
        severity: Severity::High,
        product: Product::Code,
        path: path.into(),
        start_line: start,
        end_line: end,
        text: FindingText::Message(format!("message {tag}")),
    }
}

fn diff(files: &[(&str, &[(u32, u32)])]) -> DiffLines {
    let mut d = DiffLines::new();
    for (path, hunks) in files {
        d.add_file(path);
        for &(s, e) in *hunks {
            d.add_hunk(path, s, e);
        }
    }
    d
}

fn input(findings: Vec<NewFinding>, diff: DiffLines) -> FeedbackInput {
    FeedbackInput {
        findings,
        diff,
        ..FeedbackInput::default()
    }
}

fn comment(id: &str, marker: Marker, resolved: bool) -> ExistingComment {
    ExistingComment {
        comment_id: id.into(),
        thread_id: Some(format!("thread-{id}")),
        body: format!("{}\nearlier body", marker.render()),
        resolved,
    }
}

fn posted_lines(plan: &FeedbackPlan) -> Vec<(String, u32)> {
    plan.post.iter().map(|c| (c.path.clone(), c.line)).collect()
}

/// What a provider would hold after carrying `plan` out on top of `existing`.
fn apply(existing: &[ExistingComment], plan: &FeedbackPlan) -> Vec<ExistingComment> {
    let mut after: Vec<ExistingComment> = existing.to_vec();
    for r in &plan.resolve {
        for c in after.iter_mut().filter(|c| c.comment_id == r.comment_id) {
            c.resolved = true;
        }
    }
    for (i, p) in plan.post.iter().enumerate() {
        after.push(ExistingComment {
            comment_id: format!("posted-{i}-{}", after.len()),
            thread_id: Some(format!("thread-posted-{i}")),
            body: p.body.clone(),
            resolved: false,
        });
    }
    match &plan.summary.action {
        SummaryAction::Create => after.push(ExistingComment {
            comment_id: "summary".into(),
            thread_id: None,
            body: plan.summary.body.clone(),
            resolved: false,
        }),
        SummaryAction::Update { comment_id } => {
            for c in after.iter_mut().filter(|c| &c.comment_id == comment_id) {
                c.body = plan.summary.body.clone();
            }
        }
        SummaryAction::Unchanged { .. } | SummaryAction::None => {}
    }
    after
}

#[test]
fn a_finding_on_a_diff_line_is_commented_on_that_line() {
    let f = finding("a", "r", RuleMode::Comment, "src/a.py", 12, 14);
    let plan = plan_feedback(&input(vec![f], diff(&[("src/a.py", &[(8, 20)])])));
    assert_eq!(posted_lines(&plan), vec![("src/a.py".to_owned(), 12)]);
    assert_eq!(plan.placements[&fp("a")], Placement::Inline { line: 12 });
    let body = &plan.post[0].body;
    assert_eq!(parse_marker(body), Some(Marker::Finding(fp("a"))));
    assert!(body.contains("message a"), "{body}");
    assert!(body.contains("`r`"));
}

#[test]
fn a_finding_starting_outside_the_diff_goes_to_the_first_diff_line_of_its_range() {
    // Starts on line 5 (unchanged), spans into the hunk 8-12 and the hunk 30-33.
    let f = finding("a", "r", RuleMode::Comment, "a.py", 5, 31);
    let plan = plan_feedback(&input(vec![f], diff(&[("a.py", &[(30, 33), (8, 12)])])));
    assert_eq!(posted_lines(&plan), vec![("a.py".to_owned(), 8)]);
    assert!(plan.post[0].body.contains("Reported at lines 5\\-31"));
}

#[test]
fn a_finding_whose_lines_are_all_outside_the_diff_goes_to_the_summary() {
    // The hunk is near but not inside the finding's range: never comment on the wrong code.
    let f = finding("a", "r", RuleMode::Block, "a.py", 3, 5);
    let plan = plan_feedback(&input(vec![f], diff(&[("a.py", &[(6, 12)])])));
    assert!(plan.post.is_empty());
    assert_eq!(
        plan.placements[&fp("a")],
        Placement::Summary {
            reason: SummaryReason::NotOnADiffLine
        }
    );
    assert!(
        plan.summary.body.contains("a\\.py:3\\-5"),
        "{}",
        plan.summary.body
    );
    assert!(plan.summary.body.contains("lines not in the diff"));
    assert_eq!(plan.summary.action, SummaryAction::Create);
}

#[test]
fn a_file_outside_the_diff_goes_to_the_summary() {
    let f = finding("a", "r", RuleMode::Comment, "lib/other.py", 7, 7);
    let plan = plan_feedback(&input(vec![f], diff(&[("a.py", &[(1, 40)])])));
    assert!(plan.post.is_empty());
    assert_eq!(
        plan.placements[&fp("a")],
        Placement::Summary {
            reason: SummaryReason::FileNotInDiff
        }
    );
    assert!(plan.summary.body.contains("lib/other\\.py:7"));
    assert!(plan.summary.body.contains("file not in the diff"));
    // A file in the diff without lines (binary, pure rename) is "not on a diff line".
    let g = finding("b", "r", RuleMode::Comment, "img.png", 1, 1);
    let plan = plan_feedback(&input(vec![g], diff(&[("img.png", &[])])));
    assert_eq!(
        plan.placements[&fp("b")],
        Placement::Summary {
            reason: SummaryReason::NotOnADiffLine
        }
    );
}

fn many(rule_id: &str, n: u32) -> Vec<NewFinding> {
    (0..n)
        .map(|i| {
            finding(
                &format!("{rule_id}{i}"),
                rule_id,
                RuleMode::Comment,
                "a.py",
                10 + i,
                10 + i,
            )
        })
        .collect()
}

#[test]
fn a_rule_firing_six_times_is_grouped_and_five_times_is_not() {
    let d = diff(&[("a.py", &[(1, 100)])]);
    let mut findings = many("six", 6);
    findings.extend(many("five", 5));
    let plan = plan_feedback(&input(findings, d));
    assert_eq!(plan.post.len(), 5);
    assert!(plan.post.iter().all(|c| c.body.contains("`five`")));
    assert_eq!(plan.groups.len(), 1);
    assert_eq!(plan.groups[0].rule, rule("six"));
    assert_eq!(plan.groups[0].fingerprints.len(), 6);
    for i in 0..6 {
        assert_eq!(plan.placements[&fp(&format!("six{i}"))], Placement::Grouped);
        assert!(plan.summary.body.contains(&format!("message six{i}")));
        assert!(plan.summary.body.contains(&format!("a\\.py:{}", 10 + i)));
    }
    assert_eq!(plan.summary.body.matches("<details>").count(), 1);
    assert_eq!(plan.summary.body.matches("</details>").count(), 1);
    // Monitor findings of a rule do not count towards its group.
    let mut findings = many("r", 5);
    findings.push(finding("m", "r", RuleMode::Monitor, "a.py", 50, 50));
    let plan = plan_feedback(&input(findings, diff(&[("a.py", &[(1, 100)])])));
    assert!(plan.groups.is_empty());
    assert_eq!(plan.post.len(), 5);
}

#[test]
fn modes_decide_comments_annotations_and_the_check() {
    let d = diff(&[("a.py", &[(1, 100)])]);
    let monitor = finding("m", "mon", RuleMode::Monitor, "a.py", 1, 1);
    let comment_f = finding("c", "com", RuleMode::Comment, "a.py", 2, 2);
    let block = finding("b", "blo", RuleMode::Block, "a.py", 3, 3);

    let plan = plan_feedback(&input(vec![monitor.clone()], d.clone()));
    assert!(plan.post.is_empty() && plan.placements.is_empty());
    assert!(plan.check.annotations.is_empty());
    assert_eq!(plan.check.conclusion, CheckConclusion::Success);
    assert_eq!(plan.summary.action, SummaryAction::None);
    assert!(!plan.summary.body.contains("message m"));
    assert!(
        plan.check.summary.contains("not shown here | 1 |"),
        "{}",
        plan.check.summary
    );
    assert_eq!(plan.check.title, "No new findings");

    let plan = plan_feedback(&input(vec![monitor.clone(), comment_f.clone()], d.clone()));
    assert_eq!(plan.post.len(), 1);
    assert_eq!(plan.check.conclusion, CheckConclusion::Success);
    assert_eq!(plan.check.annotations.len(), 1);
    assert_eq!(plan.check.annotations[0].level, AnnotationLevel::Warning);
    assert_eq!(plan.check.title, "1 new finding, none blocking");
    assert!(plan.post[0].body.contains("Picket · Comment"));

    let plan = plan_feedback(&input(vec![monitor, comment_f, block], d));
    assert_eq!(plan.post.len(), 2);
    assert_eq!(plan.check.conclusion, CheckConclusion::Failure);
    assert_eq!(plan.check.title, "1 blocking finding");
    let levels: Vec<_> = plan
        .check
        .annotations
        .iter()
        .map(|a| (a.level, a.start_line))
        .collect();
    assert_eq!(
        levels,
        vec![(AnnotationLevel::Failure, 3), (AnnotationLevel::Warning, 2)]
    );
    assert!(plan.post.iter().any(|c| c
        .body
        .contains("Picket · Block** (this rule blocks merging)")));
    assert!(plan.summary.body.contains("| Block: fails the check | 1 |"));
    assert!(plan.summary.body.contains("| Comment | 1 |"));
    assert!(plan.summary.body.contains("not shown here | 1 |"));
    let text = plan.check.text.unwrap();
    assert!(
        text.contains("message b") && text.contains("message c") && !text.contains("message m")
    );
}

#[test]
fn a_late_result_never_fails_the_check_and_says_so() {
    let block = finding("b", "blo", RuleMode::Block, "a.py", 3, 3);
    let mut inp = input(vec![block], diff(&[("a.py", &[(1, 10)])]));
    inp.late = true;
    let plan = plan_feedback(&inp);
    assert_eq!(plan.check.conclusion, CheckConclusion::Success);
    assert!(
        plan.check.title.contains("fail-open"),
        "{}",
        plan.check.title
    );
    assert!(plan.check.title.contains("1 blocking finding not enforced"));
    assert!(plan.check.summary.contains("after the fail-open timeout"));
    assert!(plan.summary.body.contains("after the fail-open timeout"));
    // Comments are still posted: the finding is still new.
    assert_eq!(plan.post.len(), 1);
    inp.late = false;
    assert!(!plan_feedback(&inp).summary.body.contains("fail-open"));
}

#[test]
fn a_rerun_keeps_present_comments_resolves_gone_ones_and_comments_new_ones() {
    let d = diff(&[("a.py", &[(1, 100)])]);
    let present = finding("present", "r", RuleMode::Comment, "a.py", 10, 10);
    let new = finding("new", "r", RuleMode::Block, "a.py", 20, 20);
    let monitor_now = finding("quiet", "q", RuleMode::Monitor, "a.py", 30, 30);
    let mut inp = input(vec![present, new, monitor_now], d);
    inp.previous_commented = Some(BTreeSet::from([fp("present"), fp("gone"), fp("quiet")]));
    inp.existing = vec![
        comment("1", Marker::Finding(fp("present")), false),
        comment("2", Marker::Finding(fp("gone")), false),
        comment("3", Marker::Finding(fp("quiet")), false),
        comment("4", Marker::Finding(fp("long-gone")), true),
        // Not Picket's: no marker on the first line.
        ExistingComment {
            comment_id: "5".into(),
            thread_id: None,
            body: format!("quoting\n{}", Marker::Finding(fp("present")).render()),
            resolved: false,
        },
    ];
    let plan = plan_feedback(&inp);
    assert_eq!(posted_lines(&plan), vec![("a.py".to_owned(), 20)]);
    assert_eq!(
        plan.keep,
        vec![KeptComment {
            fingerprint: fp("present"),
            comment_id: "1".into(),
            resolved: false
        }]
    );
    assert_eq!(
        plan.placements[&fp("present")],
        Placement::Commented {
            comment_id: "1".into()
        }
    );
    let resolved: Vec<_> = plan
        .resolve
        .iter()
        .map(|r| (r.comment_id.as_str(), r.thread_id.as_deref(), r.reason))
        .collect();
    let mut ids: Vec<_> = resolved.iter().map(|r| r.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec!["2", "3"]);
    assert!(resolved.contains(&("2", Some("thread-2"), ResolveReason::Gone)));
    assert!(resolved.contains(&("3", Some("thread-3"), ResolveReason::NotCommented)));
}

#[test]
fn a_finding_that_came_back_gets_a_new_comment_but_a_thread_a_person_resolved_is_left_alone() {
    let d = diff(&[("a.py", &[(1, 100)])]);
    let f = finding("f", "r", RuleMode::Comment, "a.py", 10, 10);
    let mut inp = input(vec![f], d);
    inp.existing = vec![comment("old", Marker::Finding(fp("f")), true)];

    // Gone at the previous scan (Picket resolved its thread), back now: a new comment.
    inp.previous_commented = Some(BTreeSet::from([fp("other")]));
    let plan = plan_feedback(&inp);
    assert_eq!(posted_lines(&plan), vec![("a.py".to_owned(), 10)]);
    assert!(plan.keep.is_empty() && plan.resolve.is_empty());

    // Present at the previous scan too: a person resolved the thread; no new comment.
    inp.previous_commented = Some(BTreeSet::from([fp("f")]));
    let plan = plan_feedback(&inp);
    assert!(plan.post.is_empty());
    assert_eq!(
        plan.keep,
        vec![KeptComment {
            fingerprint: fp("f"),
            comment_id: "old".into(),
            resolved: true
        }]
    );

    // No previous scan known: treated as resolved by a person.
    inp.previous_commented = None;
    assert!(plan_feedback(&inp).post.is_empty());
}

#[test]
fn duplicate_open_comments_are_resolved_down_to_one() {
    let f = finding("f", "r", RuleMode::Comment, "a.py", 10, 10);
    let mut inp = input(vec![f], diff(&[("a.py", &[(1, 100)])]));
    inp.existing = vec![
        comment("x", Marker::Finding(fp("f")), true),
        comment("y", Marker::Finding(fp("f")), false),
        comment("z", Marker::Finding(fp("f")), false),
    ];
    let plan = plan_feedback(&inp);
    assert!(plan.post.is_empty());
    assert_eq!(plan.keep.len(), 1);
    assert_eq!(plan.keep[0].comment_id, "y");
    assert_eq!(plan.resolve.len(), 1);
    assert_eq!(plan.resolve[0].comment_id, "z");
    assert_eq!(plan.resolve[0].reason, ResolveReason::Duplicate);
}

#[test]
fn redelivering_a_result_posts_nothing_new() {
    let d = diff(&[("a.py", &[(1, 30)]), ("b.py", &[(5, 9)])]);
    let mut findings = many("grp", 7);
    findings.push(finding("x", "r", RuleMode::Block, "a.py", 3, 3));
    findings.push(finding("y", "r", RuleMode::Comment, "b.py", 1, 2));
    findings.push(finding("z", "r", RuleMode::Comment, "c.py", 1, 2));
    let mut inp = input(findings, d);
    inp.existing = vec![comment("g", Marker::Finding(fp("gone")), false)];
    let first = plan_feedback(&inp);
    assert_eq!(first.post.len(), 1);
    assert_eq!(first.resolve.len(), 1);
    assert_eq!(first.summary.action, SummaryAction::Create);

    inp.existing = apply(&inp.existing, &first);
    let second = plan_feedback(&inp);
    assert!(second.post.is_empty(), "{:?}", second.post);
    assert!(second.resolve.is_empty());
    assert_eq!(
        second.summary.action,
        SummaryAction::Unchanged {
            comment_id: "summary".into()
        }
    );
    assert_eq!(second.check, first.check);
}

#[test]
fn the_summary_comment_is_created_once_then_edited_in_place() {
    let f = finding("f", "r", RuleMode::Comment, "a.py", 1, 1);
    let mut inp = input(vec![f], diff(&[("a.py", &[(1, 3)])]));
    inp.existing = vec![comment("s", Marker::Summary, false)];
    let plan = plan_feedback(&inp);
    assert_eq!(
        plan.summary.action,
        SummaryAction::Update {
            comment_id: "s".into()
        }
    );
    // Nothing left to report: the existing comment is edited to say so.
    inp.findings.clear();
    let plan = plan_feedback(&inp);
    assert_eq!(
        plan.summary.action,
        SummaryAction::Update {
            comment_id: "s".into()
        }
    );
    assert!(plan.summary.body.contains("no new findings"));
    // Nothing to report and no comment yet: nothing is created.
    inp.existing.clear();
    assert_eq!(plan_feedback(&inp).summary.action, SummaryAction::None);
}

#[test]
fn quiet_drafts_get_the_check_but_no_new_comments() {
    let f = finding("f", "r", RuleMode::Block, "a.py", 1, 1);
    let mut inp = input(vec![f], diff(&[("a.py", &[(1, 3)])]));
    inp.pr_is_draft = true;
    inp.draft_feedback = DraftFeedback::CheckOnly;
    inp.existing = vec![comment("gone", Marker::Finding(fp("gone")), false)];
    let plan = plan_feedback(&inp);
    assert!(plan.post.is_empty());
    assert_eq!(plan.summary.action, SummaryAction::None);
    assert_eq!(
        plan.placements[&fp("f")],
        Placement::Summary {
            reason: SummaryReason::Draft
        }
    );
    assert_eq!(plan.resolve.len(), 1, "stale threads are still resolved");
    assert_eq!(plan.check.conclusion, CheckConclusion::Failure);
    assert!(plan.summary.body.contains("is a draft"));
    // An existing summary comment is kept up to date.
    inp.existing.push(comment("s", Marker::Summary, false));
    assert!(matches!(
        plan_feedback(&inp).summary.action,
        SummaryAction::Update { .. }
    ));
    // Drafts of an org with full feedback, and quiet orgs' ready PRs, get comments.
    inp.draft_feedback = DraftFeedback::Full;
    assert_eq!(plan_feedback(&inp).post.len(), 1);
    inp.draft_feedback = DraftFeedback::CheckOnly;
    inp.pr_is_draft = false;
    assert_eq!(plan_feedback(&inp).post.len(), 1);
}

const SECRET: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";

fn reported_secret(message: &str, new_in_pr: bool) -> ReportedFinding {
    ReportedFinding {
        product: Product::Secrets,
        rule_id: rule("picket.secrets.github-token"),
        path: "config/settings.py".into(),
        start_line: 4,
        end_line: 4,
        severity: Severity::Critical,
        message: message.into(),
        fingerprint: fp("secret"),
        new_in_pr,
        secret: Some(RedactedSecret {
            redacted: "ghp_…89".into(),
            sha256: "0".repeat(64),
        }),
        suppressed: None,
        matched_lines: Vec::new(),
        dependency: None,
    }
}

fn everything_posted(plan: &FeedbackPlan) -> String {
    let mut all = plan.summary.body.clone();
    for c in &plan.post {
        all.push_str(&c.body);
    }
    all.push_str(&plan.check.title);
    all.push_str(&plan.check.summary);
    all.push_str(plan.check.text.as_deref().unwrap_or_default());
    for a in &plan.check.annotations {
        all.push_str(&a.title);
        all.push_str(&a.message);
    }
    all
}

#[test]
fn secrets_are_shown_only_in_their_redacted_form() {
    let modes = BTreeMap::from([(rule("picket.secrets.github-token"), RuleMode::Block)]);
    // Even a message that (wrongly) carries the value never reaches the PR.
    let reported = reported_secret(&format!("GitHub token {SECRET} committed"), true);
    let f = NewFinding::from_reported(&reported, &modes).unwrap();
    assert_eq!(
        f.text,
        FindingText::Secret {
            redacted: "ghp_…89".into()
        }
    );
    assert_eq!(f.mode, RuleMode::Block);
    for d in [diff(&[("config/settings.py", &[(1, 9)])]), DiffLines::new()] {
        let plan = plan_feedback(&input(vec![f.clone()], d));
        let all = everything_posted(&plan);
        assert!(!all.contains(SECRET) && !all.contains("abcdefgh"), "{all}");
        assert!(all.contains("ghp\\_…89"), "{all}");
        assert!(plan.check.annotations[0].message.contains("ghp_…89"));
    }
    // Only new, unsuppressed findings are fed back; unknown rules are Monitor.
    assert!(NewFinding::from_reported(&reported_secret("x", false), &modes).is_none());
    let mut suppressed = reported_secret("x", true);
    suppressed.suppressed = Some(InlineSuppression {
        line: 4,
        rules: vec![],
    });
    assert!(NewFinding::from_reported(&suppressed, &modes).is_none());
    let code = ReportedFinding {
        product: Product::Code,
        ..reported_secret("eval of user input", true)
    };
    let f = NewFinding::from_reported(&code, &BTreeMap::new()).unwrap();
    assert_eq!(f.mode, RuleMode::Monitor);
    assert_eq!(f.text, FindingText::Message("eval of user input".into()));
}

#[test]
fn text_from_code_cannot_forge_markers_break_the_layout_or_mention_anyone() {
    let evil_path = "<!-- picket:summary -->|x|</details>";
    let forged = Marker::Finding(fp("victim")).render();
    let evil_message =
        format!("</details>\n{forged}\n<img src=x> @octocat `code` [l](http://e) | cell");
    let mut findings = Vec::new();
    // In a group (7 of a rule), in the summary table (file not in the diff) and inline.
    for i in 0..7 {
        let mut f = finding(&format!("g{i}"), "grp", RuleMode::Comment, evil_path, 1, 1);
        f.text = FindingText::Message(evil_message.clone());
        findings.push(f);
    }
    let mut listed = finding("s", "r", RuleMode::Comment, evil_path, 1, 1);
    listed.text = FindingText::Message(evil_message.clone());
    let mut inline = finding("i", "r", RuleMode::Comment, "a.py", 2, 2);
    inline.text = FindingText::Message(evil_message.clone());
    findings.extend([listed, inline]);
    let plan = plan_feedback(&input(findings, diff(&[("a.py", &[(1, 5)])])));

    let summary = &plan.summary.body;
    assert_eq!(parse_marker(summary), Some(Marker::Summary));
    assert_eq!(summary.matches("<!--").count(), 1, "{summary}");
    assert_eq!(summary.matches("</details>").count(), plan.groups.len());
    assert!(!summary.contains("<img") && !summary.contains("@octocat"));
    assert!(summary.contains("@\u{2060}octocat"));
    // Every table row keeps its number of cells: user text cannot add a `|`.
    for line in summary.lines().filter(|l| l.starts_with("| ")) {
        let cells = line.replace("\\|", "").matches('|').count();
        assert!(cells == 7 || cells == 4 || cells == 3, "{line}");
    }
    let body = &plan.post[0].body;
    assert_eq!(parse_marker(body), Some(Marker::Finding(fp("i"))));
    assert_eq!(body.matches("<!--").count(), 1, "{body}");
    assert!(!body.contains("</details>") && !body.contains("<img"));
    let text = plan.check.text.as_deref().unwrap();
    assert!(!text.contains('<') || !text.contains("<!--"));
    // A forged marker further down a body never counts.
    assert_eq!(parse_marker(&format!("hello\n{forged}")), None);
}

#[test]
fn markers_round_trip_and_parse_strictly() {
    let m = Marker::Finding(fp("a"));
    assert_eq!(parse_marker(&m.render()), Some(m.clone()));
    assert_eq!(parse_marker(&format!("  {}\r\nbody", m.render())), Some(m));
    assert_eq!(parse_marker(SUMMARY_MARKER), Some(Marker::Summary));
    assert!(Marker::Summary.render().starts_with(MARKER_PREFIX));
    for bad in [
        "",
        "<!-- picket:finding abc -->",
        "<!-- picket:finding  -->",
        "<!-- picket:summary --> trailing",
        "x <!-- picket:summary -->",
        &format!("<!-- picket:finding {} -->", "A".repeat(64)),
        &format!("<!-- picket:other {} -->", fp("a")),
    ] {
        assert_eq!(parse_marker(bad), None, "{bad:?}");
    }
}

#[test]
fn escaping_renders_text_as_itself() {
    assert_eq!(escape_line("a_b*c|d\ne"), "a\\_b\\*c\\|d e");
    assert_eq!(escape_line("<!-- x -->"), "&lt;\\!\\-\\- x \\-\\-&gt;");
    assert_eq!(escape_line("a & b"), "a &amp; b");
    assert_eq!(escape_line("@types/node"), "@\u{2060}types/node");
    assert_eq!(escape_line("x\u{202E}y\u{7}z"), "x\u{FFFD}y\u{FFFD}z");
    assert_eq!(escape("one\r\ntwo\rthree"), "one\ntwo\nthree");
    assert_eq!(escape("a:\n    x_y\n\tz"), "a\\:\nx\\_y\nz");
}

#[test]
fn bodies_and_check_texts_stay_within_the_limits() {
    // 3,000 findings in the summary with long paths and messages of multi-byte characters.
    let findings: Vec<NewFinding> = (0..3000)
        .map(|i| {
            let mut f = finding(
                &format!("f{i}"),
                &format!("r{i}"),
                RuleMode::Block,
                &format!("{}/{i}.py", "dir".repeat(60)),
                1,
                1,
            );
            f.text = FindingText::Message("é<".repeat(5000));
            f
        })
        .collect();
    let plan = plan_feedback(&input(findings, DiffLines::new()));
    let body = &plan.summary.body;
    assert!(body.chars().count() <= MAX_COMMENT_CHARS);
    assert!(body.chars().count() > MAX_COMMENT_CHARS - RESERVE - 1_000);
    assert_eq!(parse_marker(body), Some(Marker::Summary));
    assert!(
        body.contains("more findings not listed here"),
        "{}",
        &body[body.len() - 300..]
    );
    assert!(plan.check.summary.chars().count() <= MAX_CHECK_CHARS);
    let text = plan.check.text.as_deref().unwrap();
    assert!(text.chars().count() <= MAX_CHECK_CHARS);
    assert!(text.contains("more findings not listed here"));
    assert_eq!(plan.check.annotations.len(), MAX_ANNOTATIONS);
    assert!(plan
        .check
        .summary
        .contains("The first 1000 findings are annotated"));
    assert!(plan
        .check
        .annotations
        .iter()
        .all(|a| a.title.chars().count() <= MAX_ANNOTATION_TITLE
            && a.message.chars().count() <= MAX_MESSAGE_CHARS));

    // One finding with a huge message: the inline body is cut, on a char boundary.
    let mut f = finding("big", "r", RuleMode::Comment, "a.py", 1, 1);
    f.text = FindingText::Message("€".repeat(200_000));
    let plan = plan_feedback(&input(vec![f], diff(&[("a.py", &[(1, 1)])])));
    assert!(plan.post[0].body.chars().count() <= MAX_COMMENT_CHARS);
    assert!(plan.post[0].body.ends_with('…'));

    // The last-resort cut keeps char boundaries and appends its note.
    let cut = fit("ab€€€€".into(), 5, "!");
    assert_eq!(cut, "ab€€!");
    assert_eq!(fit("short".into(), 5, "!"), "short");
}

#[test]
fn diff_lines_keep_hunks_sorted_and_answer_per_line() {
    let mut d = DiffLines::new();
    d.add_hunk("a", 20, 25);
    d.add_hunk("a", 1, 4);
    d.add_hunk("a", 0, 3); // not a range: records the file only
    d.add_hunk("a", 9, 8);
    d.add_file("b");
    assert_eq!(
        d.hunks("a").unwrap(),
        &[Hunk { start: 1, end: 4 }, Hunk { start: 20, end: 25 }]
    );
    assert!(d.is_commentable("a", 4) && !d.is_commentable("a", 5) && d.is_commentable("a", 20));
    assert_eq!(d.lines("a").len(), 10);
    assert_eq!(d.hunk_of("a", 22), Some(Hunk { start: 20, end: 25 }));
    assert_eq!(d.hunk_of("a", 10), None);
    assert!(d.contains_file("b") && d.hunks("b").unwrap().is_empty());
    assert!(!d.contains_file("c") && !d.is_commentable("c", 1));
}

/// The limits above are GitHub's: checked against its OpenAPI description (`make
/// github-fixtures` installs it).
#[test]
fn limits_match_githubs_openapi_description() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/github/node_modules/@octokit/openapi/generated/api.github.com.json"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run `make github-fixtures`)"));
    let api: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (route, method) in [
        ("/repos/{owner}/{repo}/check-runs", "post"),
        ("/repos/{owner}/{repo}/check-runs/{check_run_id}", "patch"),
    ] {
        let output = &api["paths"][route][method]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"]["output"]["properties"];
        assert_eq!(output["summary"]["maxLength"], MAX_CHECK_CHARS, "{route}");
        assert_eq!(output["text"]["maxLength"], MAX_CHECK_CHARS, "{route}");
        let item = &output["annotations"]["items"]["properties"];
        assert!(item["title"]["description"]
            .as_str()
            .unwrap()
            .contains(&format!("{MAX_ANNOTATION_TITLE} characters")));
        let levels = item["annotation_level"]["enum"].as_array().unwrap();
        for level in ["warning", "failure"] {
            assert!(levels.iter().any(|l| l == level));
        }
    }
}

// ---- properties ----

const RULES: [&str; 3] = ["ra", "rb", "rc"];
const PATHS: [&str; 3] = ["a.py", "b.py", "c.py"];

fn arb_mode() -> impl Strategy<Value = RuleMode> {
    prop_oneof![
        Just(RuleMode::Monitor),
        Just(RuleMode::Comment),
        Just(RuleMode::Block)
    ]
}

prop_compose! {
    fn arb_finding(i: usize)(
        rule in 0..RULES.len(),
        mode in arb_mode(),
        path in 0..PATHS.len(),
        start in 1u32..40,
        len in 0u32..6,
        secret in any::<bool>(),
    ) -> NewFinding {
        let mut f = finding(&format!("f{i}"), RULES[rule], mode, PATHS[path], start, start + len);
        // Tokens that tell, in any body, which finding's text it is.
        f.text = if secret {
            f.product = Product::Secrets;
            FindingText::Secret { redacted: format!("red{i}z") }
        } else {
            FindingText::Message(format!("msg{i}z"))
        };
        f
    }
}

fn arb_findings() -> impl Strategy<Value = Vec<NewFinding>> {
    (0usize..25).prop_flat_map(|n| (0..n).map(arb_finding).collect::<Vec<_>>())
}

fn arb_diff() -> impl Strategy<Value = DiffLines> {
    // a.py and b.py are in the diff with random hunks; c.py is not.
    proptest::collection::vec(proptest::collection::btree_set(1u32..50, 0..8), 2).prop_map(|cuts| {
        let mut d = DiffLines::new();
        for (path, cuts) in PATHS.iter().zip(cuts) {
            d.add_file(path);
            let cuts: Vec<u32> = cuts.into_iter().collect();
            for pair in cuts.chunks(2) {
                if let [s, e] = pair {
                    d.add_hunk(path, *s, *e);
                }
            }
        }
        d
    })
}

fn arb_input() -> impl Strategy<Value = FeedbackInput> {
    (
        arb_findings(),
        arb_diff(),
        proptest::collection::vec((0usize..30, any::<bool>()), 0..10),
        proptest::option::of(proptest::collection::btree_set(0usize..30, 0..30)),
        any::<(bool, bool, bool, bool)>(),
    )
        .prop_map(
            |(findings, diff, comments, previous, (draft, quiet, late, summary))| {
                // Earlier comments on findings of this scan (f<i>) and on gone ones (f<i> beyond n).
                let mut existing: Vec<ExistingComment> = comments
                    .into_iter()
                    .enumerate()
                    .map(|(k, (i, resolved))| {
                        comment(
                            &format!("e{k}"),
                            Marker::Finding(fp(&format!("f{i}"))),
                            resolved,
                        )
                    })
                    .collect();
                if summary {
                    existing.push(comment("sum", Marker::Summary, false));
                }
                FeedbackInput {
                    findings,
                    previous_commented: previous
                        .map(|s| s.into_iter().map(|i| fp(&format!("f{i}"))).collect()),
                    fixed_in_pr: 0,
                    diff,
                    existing,
                    draft_feedback: if quiet {
                        DraftFeedback::CheckOnly
                    } else {
                        DraftFeedback::Full
                    },
                    pr_is_draft: draft,
                    late,
                    unreadable_lockfiles: Vec::new(),
                }
            },
        )
}

fn token(f: &NewFinding) -> String {
    match &f.text {
        FindingText::Message(m) => m.clone(),
        FindingText::Secret { redacted } => redacted.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_commented_finding_appears_exactly_once(inp in arb_input()) {
        let plan = plan_feedback(&inp);
        let posted: Vec<&Fingerprint> = plan.post.iter().map(|c| &c.fingerprint).collect();
        let grouped: Vec<&Fingerprint> = plan.groups.iter().flat_map(|g| &g.fingerprints).collect();
        for f in &inp.findings {
            let fpr = &f.fingerprint;
            let placement = plan.placements.get(fpr);
            let in_post = posted.iter().filter(|p| **p == fpr).count();
            let kept = plan.keep.iter().filter(|k| &k.fingerprint == fpr).count();
            let in_group = grouped.iter().filter(|g| **g == fpr).count();
            let in_summary = usize::from(matches!(placement, Some(Placement::Summary { .. })));
            let commented_inline = usize::from(matches!(placement, Some(Placement::Commented { .. })));
            let annotated = plan.check.annotations.iter().filter(|a| &a.fingerprint == fpr).count();
            let shown = everything_posted(&plan).contains(&token(f));
            if f.mode.comments() {
                prop_assert_eq!(in_post + commented_inline + in_summary + in_group, 1, "{:?}", placement);
                prop_assert!(kept <= 1);
                prop_assert_eq!(commented_inline, usize::from(kept == 1 && in_group == 0));
                prop_assert_eq!(annotated, 1);
                if in_post == 1 {
                    let c = plan.post.iter().find(|c| &c.fingerprint == fpr).unwrap();
                    prop_assert!(inp.diff.is_commentable(&c.path, c.line));
                    prop_assert!(c.line >= f.start_line && c.line <= f.end_line);
                    prop_assert_eq!(parse_marker(&c.body), Some(Marker::Finding(fpr.clone())));
                }
                if in_summary + in_group == 1 {
                    prop_assert!(plan.summary.body.contains(&token(f)));
                }
            } else {
                prop_assert!(placement.is_none() && in_post + kept + in_group + annotated == 0);
                prop_assert!(!shown, "a Monitor finding's text was shown");
            }
        }
        let blocking = inp.findings.iter().any(|f| f.mode.blocks());
        prop_assert_eq!(
            plan.check.conclusion == CheckConclusion::Failure,
            blocking && !inp.late
        );
        // Only threads that are open are resolved, each once.
        let mut ids = BTreeSet::new();
        for r in &plan.resolve {
            prop_assert!(ids.insert(r.comment_id.clone()));
            let c = inp.existing.iter().find(|c| c.comment_id == r.comment_id).unwrap();
            prop_assert!(!c.resolved);
        }
    }

    #[test]
    fn replanning_with_the_plan_carried_out_posts_nothing_new(
        inp in arb_input(),
        previous_is_this_scan in any::<bool>(),
    ) {
        let first = plan_feedback(&inp);
        let mut again = inp.clone();
        again.existing = apply(&inp.existing, &first);
        if previous_is_this_scan {
            again.previous_commented = Some(
                inp.findings.iter().filter(|f| f.mode.comments()).map(|f| f.fingerprint.clone()).collect(),
            );
        }
        let second = plan_feedback(&again);
        prop_assert!(second.post.is_empty(), "{:?}", second.post);
        prop_assert!(second.resolve.is_empty(), "{:?}", second.resolve);
        prop_assert!(matches!(
            second.summary.action,
            SummaryAction::Unchanged { .. } | SummaryAction::None
        ), "{:?}", second.summary.action);
        prop_assert_eq!(&second.summary.body, &first.summary.body);
        prop_assert_eq!(&second.check, &first.check);
        // Same places, with the first run's new comments now standing.
        for (fpr, p) in &first.placements {
            let q = &second.placements[fpr];
            match p {
                Placement::Inline { .. } => prop_assert!(matches!(q, Placement::Commented { .. }), "{:?}", q),
                other => prop_assert_eq!(other, q),
            }
        }
    }
}

/// The generator above reaches every case the properties are about.
#[test]
fn the_generated_inputs_cover_every_placement_and_resolution() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    for _ in 0..512 {
        let inp = arb_input().new_tree(&mut runner).unwrap().current();
        let plan = plan_feedback(&inp);
        for p in plan.placements.values() {
            seen.insert(match p {
                Placement::Inline { .. } => "inline",
                Placement::Commented { .. } => "commented",
                Placement::Summary { reason } => match reason {
                    SummaryReason::FileNotInDiff => "summary: file",
                    SummaryReason::NotOnADiffLine => "summary: lines",
                    SummaryReason::Draft => "summary: draft",
                },
                Placement::Grouped => "grouped",
            });
        }
        for r in &plan.resolve {
            seen.insert(match r.reason {
                ResolveReason::Gone => "resolve: gone",
                ResolveReason::NotCommented => "resolve: not commented",
                ResolveReason::Duplicate => "resolve: duplicate",
            });
        }
        if plan.keep.iter().any(|k| k.resolved) {
            seen.insert("kept resolved");
        }
        let came_back = plan.post.iter().any(|p| {
            inp.existing
                .iter()
                .any(|c| parse_marker(&c.body) == Some(Marker::Finding(p.fingerprint.clone())))
        });
        if came_back {
            seen.insert("came back");
        }
        if plan.check.conclusion == CheckConclusion::Failure {
            seen.insert("failure");
        }
    }
    assert_eq!(seen.len(), 12, "{seen:?}");
}

#[test]
fn the_draft_setting_parses() {
    for d in DraftFeedback::ALL {
        assert_eq!(d.as_str().parse::<DraftFeedback>().unwrap(), d);
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{d}\""));
    }
    assert!("drafts".parse::<DraftFeedback>().is_err());
}

#[test]
fn an_unreadable_lockfile_is_named_in_the_checks_title_and_notes() {
    let mut i = input(vec![], DiffLines::new());
    i.unreadable_lockfiles = vec![UnreadableLockfile {
        path: "web/package-lock.json".into(),
        reason: "line 3: expected `,` or `}` | @admin".into(),
    }];
    let plan = plan_feedback(&i);
    assert_eq!(plan.check.conclusion, CheckConclusion::Success);
    assert_eq!(
        plan.check.title,
        "No new findings; 1 lockfile could not be read"
    );
    assert!(
        plan.check
            .summary
            .contains(r"Supply Chain could not read `web/package\-lock\.json`:"),
        "{}",
        plan.check.summary
    );
    // Text from the repository is escaped: no table break, no mention.
    assert!(
        plan.check.summary.contains("\\| @\u{2060}admin"),
        "{}",
        plan.check.summary
    );
    let plain = plan_feedback(&input(vec![], DiffLines::new()));
    assert_eq!(plain.check.title, "No new findings");
    assert!(!plain.check.summary.contains("could not read"));
}
