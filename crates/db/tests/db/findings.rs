//! The findings lifecycle (domain.md §2, §3) through the worker's results upload:
//! `worker::record_results` on a claimed and running scan, exactly as the API calls it.

use crate::fixtures;
use picket_core::protocol::{InlineSuppression, RedactedSecret, ReportedFinding, ScanResults};
use picket_core::{
    FindingId, FindingStatus, Fingerprint, OrgId, Product, ProjectId, RuleId, ScanId, ScanKind,
    ScanState, ScanTrigger, Severity,
};
use picket_db::findings::{self, FindingFilter, FindingRecord, IngestSummary, Triage};
use picket_db::queue::{self, Lease};
use picket_db::scans::{self, NewScan};
use picket_db::worker::{self, Recorded, WORKER_ACTOR};
use picket_db::DbError;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(60);

fn rule(s: &str) -> RuleId {
    s.parse().unwrap()
}

/// A code finding of `rule` in `path` anchored on `anchor`.
fn found(rule_id: &str, path: &str, anchor: &str) -> ReportedFinding {
    let r = rule(rule_id);
    ReportedFinding {
        product: Product::Code,
        fingerprint: Fingerprint::compute(&r, path, anchor, 0),
        rule_id: r,
        path: path.to_owned(),
        start_line: 3,
        end_line: 4,
        severity: Severity::High,
        message: format!("{rule_id} in {path}"),
        new_in_pr: false,
        secret: None,
        suppressed: None,
        matched_lines: Vec::new(),
        dependency: None,
    }
}

fn results(attempt: i32, findings: Vec<ReportedFinding>, rules: &[&str]) -> ScanResults {
    ScanResults {
        attempt,
        commit_sha: "a".repeat(40),
        merge_base_sha: None,
        rules_run: rules.iter().map(|r| rule(r)).collect(),
        deleted_paths: Vec::new(),
        unread_paths: Vec::new(),
        files_scanned: 10,
        findings,
        fixed_in_pr: Vec::new(),
        trail: Default::default(),
    }
}

/// One project of a fresh org.
async fn setup(pool: &PgPool) -> (OrgId, ProjectId) {
    let org = fixtures::org(pool, "acme", 4).await;
    (org, fixtures::project(pool, org).await)
}

/// Claims the one queued scan and reports it running; returns its lease.
async fn claim_running(pool: &PgPool, expected: ScanId) -> Lease {
    let claimed = queue::claim(pool, "scheduler", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.scan.id, expected);
    queue::advance_as(pool, &claimed.lease, ScanState::Running, None, WORKER_ACTOR)
        .await
        .unwrap();
    claimed.lease
}

async fn record(pool: &PgPool, lease: &Lease, r: &ScanResults) -> Result<Recorded, DbError> {
    let digest = worker::results_digest(r).unwrap();
    let mut tx = pool.begin().await.unwrap();
    let out = worker::record_results(&mut tx, lease, r, &digest).await;
    if matches!(out, Ok(Recorded::Stored(_))) {
        tx.commit().await.unwrap();
    }
    out
}

/// Queues, claims and completes a full scan of `branch` reporting `r`; returns the scan and what
/// the upload did.
async fn full_scan(
    pool: &PgPool,
    org: OrgId,
    project: ProjectId,
    branch: &str,
    r: ScanResults,
) -> (ScanId, IngestSummary) {
    let scan = scans::enqueue(
        pool,
        &NewScan::full(org, project, ScanTrigger::Manual, branch),
    )
    .await
    .unwrap()
    .scan
    .id;
    let lease = claim_running(pool, scan).await;
    match record(pool, &lease, &r).await.unwrap() {
        Recorded::Stored(s) => (scan, s.findings),
        other => panic!("not stored: {other:?}"),
    }
}

/// Every finding of the project, by branch then path.
async fn all(pool: &PgPool, org: OrgId, project: ProjectId) -> Vec<FindingRecord> {
    let mut rows = findings::list(pool, org, project, &FindingFilter::default(), None, 500)
        .await
        .unwrap();
    rows.sort_by(|a, b| (&a.git_ref, &a.path).cmp(&(&b.git_ref, &b.path)));
    rows
}

fn status_of<'a>(rows: &'a [FindingRecord], git_ref: &str, path: &str) -> &'a FindingRecord {
    rows.iter()
        .find(|f| f.git_ref == git_ref && f.path == path)
        .unwrap_or_else(|| panic!("no finding {git_ref}:{path} in {rows:#?}"))
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn new_findings_open_and_seen_again_moves_last_seen(pool: PgPool) {
    let (org, project) = setup(&pool).await;
    let (s1, sum) = full_scan(
        &pool,
        org,
        project,
        "main",
        results(1, vec![found("r1", "a.py", "x")], &["r1"]),
    )
    .await;
    assert_eq!(
        sum,
        IngestSummary {
            reported: 1,
            stored: 1,
            new: 1,
            fixed: 0,
            removed: 0
        }
    );
    let rows = all(&pool, org, project).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, picket_core::FindingStatus::Open);
    assert_eq!(
        (rows[0].first_seen_scan_id, rows[0].last_seen_scan_id),
        (s1, s1)
    );

    let mut moved = found("r1", "a.py", "x");
    moved.start_line = 30;
    moved.end_line = 31;
    let (s2, sum) = full_scan(
        &pool,
        org,
        project,
        "main",
        results(1, vec![moved], &["r1"]),
    )
    .await;
    assert_eq!(
        sum,
        IngestSummary {
            reported: 1,
            stored: 1,
            new: 0,
            fixed: 0,
            removed: 0
        }
    );
    let rows = all(&pool, org, project).await;
    assert_eq!(rows.len(), 1, "same fingerprint, same row");
    assert_eq!(
        (rows[0].first_seen_scan_id, rows[0].last_seen_scan_id),
        (s1, s2)
    );
    assert_eq!(rows[0].start_line, 30);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn unreported_findings_are_fixed_or_removed_and_reopen_when_seen_again(pool: PgPool) {
    use picket_core::FindingStatus::*;
    let (org, project) = setup(&pool).await;
    let first = vec![
        found("r1", "stays.py", "x"),
        found("r1", "fixed.py", "x"),
        found("r2", "rule-gone.py", "x"),
        found("r1", "deleted.py", "x"),
    ];
    full_scan(
        &pool,
        org,
        project,
        "main",
        results(1, first, &["r1", "r2"]),
    )
    .await;

    let spec = {
        let claimed_scan = scans::enqueue(
            &pool,
            &NewScan::full(org, project, ScanTrigger::Manual, "main"),
        )
        .await
        .unwrap()
        .scan
        .id;
        let mut conn = pool.acquire().await.unwrap();
        let spec = worker::scan_spec(&mut conn, org, claimed_scan)
            .await
            .unwrap();
        scans::cancel(&mut conn, org, claimed_scan, "test")
            .await
            .unwrap();
        spec
    };
    assert_eq!(
        spec.open_finding_paths,
        ["deleted.py", "fixed.py", "rule-gone.py", "stays.py"],
        "the spec lists the branch's open paths"
    );

    // r2 no longer runs; deleted.py is gone; fixed.py no longer matches.
    let mut second = results(1, vec![found("r1", "stays.py", "x")], &["r1"]);
    second.deleted_paths = vec!["deleted.py".into()];
    let (_, sum) = full_scan(&pool, org, project, "main", second).await;
    assert_eq!((sum.new, sum.fixed, sum.removed), (0, 1, 2));
    let rows = all(&pool, org, project).await;
    assert_eq!(status_of(&rows, "main", "stays.py").status, Open);
    assert_eq!(status_of(&rows, "main", "fixed.py").status, Fixed);
    assert_eq!(status_of(&rows, "main", "rule-gone.py").status, Removed);
    assert_eq!(status_of(&rows, "main", "deleted.py").status, Removed);

    // A later scan that stops reporting a fixed or removed finding changes nothing for it; one
    // that reports it again opens it again, on the same row.
    let third = results(
        1,
        vec![
            found("r1", "stays.py", "x"),
            found("r1", "fixed.py", "x"),
            found("r2", "rule-gone.py", "x"),
        ],
        &["r1", "r2"],
    );
    let (s3, sum) = full_scan(&pool, org, project, "main", third).await;
    assert_eq!((sum.new, sum.fixed, sum.removed), (0, 0, 0));
    let rows = all(&pool, org, project).await;
    assert_eq!(rows.len(), 4);
    for path in ["stays.py", "fixed.py", "rule-gone.py"] {
        let f = status_of(&rows, "main", path);
        assert_eq!((f.status, f.last_seen_scan_id), (Open, s3), "{path}");
    }
    assert_eq!(status_of(&rows, "main", "deleted.py").status, Removed);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn triage_sticks_across_scans_and_branches(pool: PgPool) {
    use picket_core::FindingStatus::*;
    let (org, project) = setup(&pool).await;
    let finding = found("r1", "a.py", "eval(x)");
    full_scan(
        &pool,
        org,
        project,
        "main",
        results(1, vec![finding.clone()], &["r1"]),
    )
    .await;
    full_scan(
        &pool,
        org,
        project,
        "release",
        results(1, vec![finding.clone()], &["r1"]),
    )
    .await;
    let main_id: FindingId = status_of(&all(&pool, org, project).await, "main", "a.py").id;

    let mut conn = pool.acquire().await.unwrap();
    let ignored = findings::triage(
        &mut conn,
        org,
        main_id,
        &Triage::Ignore {
            reason: None,
            comment: Some("test fixture".into()),
        },
        "api:someone",
    )
    .await
    .unwrap();
    assert_eq!(
        (ignored.status, ignored.triage_reason.as_deref()),
        (Ignored, Some("test fixture"))
    );
    assert_eq!(ignored.triaged_by.as_deref(), Some("api:someone"));
    // The same fingerprint on the other branch is ignored too.
    let rows = all(&pool, org, project).await;
    assert_eq!(status_of(&rows, "release", "a.py").status, Ignored);

    // Reported again: still ignored, with its reason. Not reported: still ignored, not fixed.
    full_scan(
        &pool,
        org,
        project,
        "main",
        results(1, vec![finding.clone()], &["r1"]),
    )
    .await;
    let (_, sum) = full_scan(&pool, org, project, "main", results(1, vec![], &["r1"])).await;
    assert_eq!(sum.fixed, 0);
    let f = status_of(&all(&pool, org, project).await, "main", "a.py").clone();
    assert_eq!(
        (f.status, f.triage_reason.as_deref()),
        (Ignored, Some("test fixture"))
    );

    // A branch that never saw the fingerprint inherits its triage when it first reports it.
    full_scan(
        &pool,
        org,
        project,
        "feature-x",
        results(1, vec![finding.clone()], &["r1"]),
    )
    .await;
    let f = status_of(&all(&pool, org, project).await, "feature-x", "a.py").clone();
    assert_eq!(
        (f.status, f.triage_reason.as_deref()),
        (Ignored, Some("test fixture"))
    );

    // Lifting the ignore from any branch lifts it everywhere.
    let reopened = findings::triage(&mut conn, org, f.id, &Triage::Reopen, "api:other")
        .await
        .unwrap();
    assert_eq!((reopened.status, reopened.triage_reason), (Open, None));
    assert!(all(&pool, org, project)
        .await
        .iter()
        .all(|f| f.status == Open));

    // Another org cannot triage it.
    let other = fixtures::org(&pool, "other", 4).await;
    let err = findings::triage(&mut conn, other, main_id, &Triage::Reopen, "api:x")
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::NotFound), "{err:?}");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn diff_scans_store_new_findings_under_the_head_ref_and_never_touch_the_branch(pool: PgPool) {
    use picket_core::FindingStatus::*;
    let (org, project) = setup(&pool).await;
    full_scan(
        &pool,
        org,
        project,
        "main",
        results(1, vec![found("r1", "old.py", "x")], &["r1"]),
    )
    .await;

    let diff = fixtures::scan(
        &pool,
        org,
        project,
        ScanKind::Diff,
        ScanTrigger::PullRequest,
    )
    .await;
    let lease = claim_running(&pool, diff).await;
    let mut new = found("r1", "new.py", "y");
    new.new_in_pr = true;
    // The PR also reports the pre-existing finding (not new in the PR) and nothing of old.py's
    // branch state may change, although old.py is not reported.
    let pre_existing = found("r1", "moved.py", "z");
    let r = results(1, vec![new, pre_existing], &["r1"]);
    let summary = match record(&pool, &lease, &r).await.unwrap() {
        Recorded::Stored(s) => s.findings,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        summary,
        IngestSummary {
            reported: 2,
            stored: 1,
            new: 1,
            fixed: 0,
            removed: 0
        }
    );
    let rows = all(&pool, org, project).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(status_of(&rows, "main", "old.py").status, Open);
    let pr = status_of(&rows, "feature", "new.py");
    assert_eq!((pr.status, pr.first_seen_scan_id), (Open, diff));
    assert!(!rows.iter().any(|f| f.path == "moved.py"));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_repeated_upload_is_a_no_op_and_a_stale_attempt_is_refused(pool: PgPool) {
    let (org, project) = setup(&pool).await;
    let scan = fixtures::scan(&pool, org, project, ScanKind::Full, ScanTrigger::Manual).await;

    // Attempt 1 fails and is retried; attempt 2 is claimed by another holder.
    let first = claim_running(&pool, scan).await;
    let outcome = queue::fail_as(
        &pool,
        &first,
        "clone_failed",
        "boom",
        Duration::ZERO,
        WORKER_ACTOR,
    )
    .await
    .unwrap();
    assert_eq!(outcome, queue::FailOutcome::Retrying { next_attempt: 2 });
    let second = claim_running(&pool, scan).await;

    let stale = results(1, vec![found("r1", "a.py", "x")], &["r1"]);
    let err = record(&pool, &first, &stale).await.unwrap_err();
    assert!(matches!(err, DbError::LeaseLost), "{err:?}");
    // The current holder naming the old attempt is refused too.
    let err = record(&pool, &second, &stale).await.unwrap_err();
    assert!(matches!(err, DbError::LeaseLost), "{err:?}");
    let count = |table: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        (count("findings").await, count("scan_results").await),
        (0, 0)
    );

    let good = results(2, vec![found("r1", "a.py", "x")], &["r1"]);
    let stored = match record(&pool, &second, &good).await.unwrap() {
        Recorded::Stored(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(stored.attempt, 2);
    let events = count("scan_events").await;
    // The same upload again, after the scan ended: the same summary, nothing written.
    assert_eq!(
        record(&pool, &second, &good).await.unwrap(),
        Recorded::Repeated(stored)
    );
    let digest = worker::results_digest(&good).unwrap();
    assert_eq!(
        worker::recorded_results(&pool, scan, 2, &digest)
            .await
            .unwrap(),
        Some(stored)
    );
    // A different upload of the same attempt is not a repeat: the scan has ended.
    let other = results(2, vec![], &["r1"]);
    let err = record(&pool, &second, &other).await.unwrap_err();
    assert!(matches!(err, DbError::LeaseLost), "{err:?}");
    assert_eq!(
        (
            count("findings").await,
            count("scan_results").await,
            count("scan_events").await
        ),
        (1, 1, events)
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn results_end_the_scan_through_reporting_audited_as_the_worker(pool: PgPool) {
    let (org, project) = setup(&pool).await;
    let scan = fixtures::scan(&pool, org, project, ScanKind::Full, ScanTrigger::Manual).await;
    let claimed = queue::claim(&pool, "scheduler", LEASE)
        .await
        .unwrap()
        .unwrap();
    // Not started yet: the worker must report running first.
    let r = results(1, vec![], &["r1"]);
    assert_eq!(
        record(&pool, &claimed.lease, &r).await.unwrap(),
        Recorded::NotStarted
    );
    queue::advance_as(
        &pool,
        &claimed.lease,
        ScanState::Running,
        None,
        WORKER_ACTOR,
    )
    .await
    .unwrap();
    assert!(matches!(
        record(&pool, &claimed.lease, &r).await.unwrap(),
        Recorded::Stored(_)
    ));
    let s = scans::get(&pool, org, scan).await.unwrap();
    assert_eq!(s.state, ScanState::Succeeded);
    assert_eq!(s.commit_sha.as_deref(), Some("a".repeat(40).as_str()));
    let trail: Vec<(String, String)> = scans::events(&pool, org, scan)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.to_state.as_str().to_owned(), e.actor))
        .collect();
    assert_eq!(
        trail,
        [
            ("claimed".to_owned(), "scheduler:scheduler".to_owned()),
            ("running".to_owned(), "worker".to_owned()),
            ("reporting".to_owned(), "worker".to_owned()),
            ("succeeded".to_owned(), "worker".to_owned()),
        ]
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn scan_tokens_live_only_with_their_lease(pool: PgPool) {
    let (org, project) = setup(&pool).await;
    let scan = fixtures::scan(&pool, org, project, ScanKind::Full, ScanTrigger::Manual).await;
    let first = queue::claim(&pool, "scheduler", LEASE)
        .await
        .unwrap()
        .unwrap();
    let token1 = queue::mint_scan_token(&pool, &first.lease).await.unwrap();
    let hash1 = worker::hash_scan_token(token1.expose_secret());
    let auth = worker::authenticate(&pool, &hash1).await.unwrap().unwrap();
    assert_eq!((auth.scan_id, auth.org_id, auth.attempt), (scan, org, 1));
    assert_eq!(
        auth.lease.as_ref().map(|l| l.token),
        Some(first.lease.token)
    );
    // Only the hash is stored.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT scan_token_hash FROM scans WHERE id = $1")
        .bind(scan.0)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, hash1);

    // Requeued: the token is dead at once, before any new token replaces it.
    queue::fail(&pool, &first.lease, "x", "y", Duration::ZERO)
        .await
        .unwrap();
    assert!(worker::authenticate(&pool, &hash1)
        .await
        .unwrap()
        .unwrap()
        .lease
        .is_none());
    let second = queue::claim(&pool, "scheduler", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert!(worker::authenticate(&pool, &hash1)
        .await
        .unwrap()
        .unwrap()
        .lease
        .is_none());
    let token2 = queue::mint_scan_token(&pool, &second.lease).await.unwrap();
    assert!(
        worker::authenticate(&pool, &hash1).await.unwrap().is_none(),
        "replaced"
    );
    let hash2 = worker::hash_scan_token(token2.expose_secret());
    let auth = worker::authenticate(&pool, &hash2).await.unwrap().unwrap();
    assert_eq!((auth.attempt, auth.lease.is_some()), (2, true));

    // An old lease cannot mint; the end of the scan retires the token.
    let err = queue::mint_scan_token(&pool, &first.lease)
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::LeaseLost), "{err:?}");
    queue::advance(&pool, &second.lease, ScanState::Cancelled, None)
        .await
        .unwrap();
    let auth = worker::authenticate(&pool, &hash2).await.unwrap().unwrap();
    assert_eq!((auth.state, auth.lease), (ScanState::Cancelled, None));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn secrets_are_stored_redacted_and_hashed_or_refused(pool: PgPool) {
    let (org, project) = setup(&pool).await;
    let mut secret = found("secrets.aws", "conf.py", "key = ...");
    secret.product = Product::Secrets;
    secret.secret = Some(RedactedSecret {
        redacted: "AKIA…MPLE".into(),
        sha256: "0f".repeat(32),
    });
    full_scan(
        &pool,
        org,
        project,
        "main",
        results(1, vec![secret.clone()], &["secrets.aws"]),
    )
    .await;
    let (redacted, hash): (Option<String>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT secret_redacted, secret_hash FROM findings")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(redacted.as_deref(), Some("AKIA…MPLE"));
    assert_eq!(hash, Some(vec![0x0f; 32]));

    // Without its redacted form (or with one on a code finding) the table refuses it.
    let scan = fixtures::scan(&pool, org, project, ScanKind::Full, ScanTrigger::Manual).await;
    let lease = claim_running(&pool, scan).await;
    let elsewhere = |f: ReportedFinding| ReportedFinding {
        path: "other.py".into(),
        fingerprint: Fingerprint::compute(&f.rule_id, "other.py", "key = ...", 0),
        ..f
    };
    for bad in [
        elsewhere(ReportedFinding {
            secret: None,
            ..secret.clone()
        }),
        elsewhere(ReportedFinding {
            product: Product::Code,
            ..secret.clone()
        }),
    ] {
        let err = record(&pool, &lease, &results(1, vec![bad], &["secrets.aws"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DbError::Invalid { constraint } if constraint == "findings_secret_redacted"),
            "{err:?}"
        );
    }
    let mut bad_hash = secret.clone();
    bad_hash.secret.as_mut().unwrap().sha256 = "zz".into();
    let err = record(&pool, &lease, &results(1, vec![bad_hash], &["secrets.aws"]))
        .await
        .unwrap_err();
    assert!(matches!(&err, DbError::Invalid { constraint } if constraint == findings::SECRET_HASH));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_fingerprint_twice_in_one_upload_is_refused(pool: PgPool) {
    let (org, project) = setup(&pool).await;
    let scan = fixtures::scan(&pool, org, project, ScanKind::Full, ScanTrigger::Manual).await;
    let lease = claim_running(&pool, scan).await;
    let f = found("r1", "a.py", "x");
    let err = record(&pool, &lease, &results(1, vec![f.clone(), f], &["r1"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DbError::Invalid { constraint } if constraint == findings::DUPLICATE_IN_BATCH),
        "{err:?}"
    );
}

/// `found`, covered by a `nosemgrep` comment on its line.
fn suppressed(rule_id: &str, path: &str, anchor: &str) -> ReportedFinding {
    ReportedFinding {
        suppressed: Some(InlineSuppression {
            line: 3,
            rules: vec![],
        }),
        ..found(rule_id, path, anchor)
    }
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_nosemgrep_comment_ignores_a_finding_for_as_long_as_it_is_there(pool: PgPool) {
    let (org, project) = setup(&pool).await;
    let rules = &["r1"];
    // Suppressed: stored, ignored, with the reason and actor `nosemgrep`.
    let (s1, sum) = full_scan(
        &pool,
        org,
        project,
        "main",
        results(
            1,
            vec![suppressed("r1", "a.py", "x"), found("r1", "b.py", "y")],
            rules,
        ),
    )
    .await;
    assert_eq!((sum.stored, sum.new), (2, 2));
    let rows = all(&pool, org, project).await;
    let a = status_of(&rows, "main", "a.py");
    assert_eq!(a.status, FindingStatus::Ignored);
    assert_eq!(a.triage_reason.as_deref(), Some("nosemgrep"));
    assert_eq!(a.triaged_by.as_deref(), Some("nosemgrep"));
    assert_eq!(status_of(&rows, "main", "b.py").status, FindingStatus::Open);
    // The scan's own record says which one was suppressed.
    let listed = findings::of_scan(&pool, org, s1, None, None, 10)
        .await
        .unwrap();
    let flags: BTreeSet<(String, bool)> = listed
        .iter()
        .map(|f| (f.path.clone(), f.suppressed))
        .collect();
    assert_eq!(
        flags,
        BTreeSet::from([("a.py".to_owned(), true), ("b.py".to_owned(), false)])
    );

    // The comment goes: the finding is open again. It comes back: ignored again.
    full_scan(
        &pool,
        org,
        project,
        "main",
        results(
            1,
            vec![found("r1", "a.py", "x"), found("r1", "b.py", "y")],
            rules,
        ),
    )
    .await;
    let rows = all(&pool, org, project).await;
    let a = status_of(&rows, "main", "a.py");
    assert_eq!(
        (a.status, a.triage_reason.as_deref()),
        (FindingStatus::Open, None)
    );

    // A person's triage is not the comment's: it sticks whatever the comment says, and a
    // comment's ignore never travels to another branch as a person's does.
    let b_id = status_of(&rows, "main", "b.py").id;
    let mut conn = pool.acquire().await.unwrap();
    findings::triage(
        &mut conn,
        org,
        b_id,
        &Triage::Ignore {
            reason: None,
            comment: Some("test helper".into()),
        },
        "api:someone",
    )
    .await
    .unwrap();
    drop(conn);
    full_scan(
        &pool,
        org,
        project,
        "main",
        results(
            1,
            vec![suppressed("r1", "a.py", "x"), suppressed("r1", "b.py", "y")],
            rules,
        ),
    )
    .await;
    full_scan(
        &pool,
        org,
        project,
        "release",
        results(
            1,
            vec![found("r1", "a.py", "x"), found("r1", "b.py", "y")],
            rules,
        ),
    )
    .await;
    let rows = all(&pool, org, project).await;
    let main_b = status_of(&rows, "main", "b.py");
    assert_eq!(main_b.triage_reason.as_deref(), Some("test helper"));
    let release_a = status_of(&rows, "release", "a.py");
    assert_eq!(release_a.status, FindingStatus::Open);
    let release_b = status_of(&rows, "release", "b.py");
    assert_eq!(release_b.triage_reason.as_deref(), Some("test helper"));

    // Gone from the code: a suppressed finding is fixed like any other, its mark cleared.
    full_scan(&pool, org, project, "main", results(1, vec![], rules)).await;
    let rows = all(&pool, org, project).await;
    let a = status_of(&rows, "main", "a.py");
    assert_eq!(
        (a.status, a.triaged_by.as_deref()),
        (FindingStatus::Fixed, None)
    );
    // A person's ignore stays.
    assert_eq!(
        status_of(&rows, "main", "b.py").status,
        FindingStatus::Ignored
    );
}

/// A supply-chain finding of `package` in `lockfile`, of the vulnerability `group` reported by
/// the advisory `advisory`.
fn vulnerable(lockfile: &str, package: &str, group: &str, advisory: &str) -> ReportedFinding {
    let r = rule(group);
    ReportedFinding {
        product: Product::SupplyChain,
        fingerprint: Fingerprint::compute(&r, lockfile, &format!("PyPI {package}"), 0),
        rule_id: r,
        path: lockfile.to_owned(),
        start_line: 2,
        end_line: 2,
        severity: Severity::Medium,
        message: format!("{package} 1.0 is affected by {group}"),
        new_in_pr: false,
        secret: None,
        suppressed: None,
        matched_lines: Vec::new(),
        dependency: Some(picket_core::protocol::VulnerableDependency {
            ecosystem: picket_core::Ecosystem::PyPi,
            package: package.to_owned(),
            versions: vec!["1.0".into()],
            advisories: vec![advisory.to_owned()],
            aliases: vec![group.to_owned(), advisory.to_owned()],
            fixed: vec!["1.1".into()],
            direct: Some(true),
            dev: None,
            severity_source: None,
            summary: Some("a summary".into()),
        }),
    }
}

async fn store_advisory(pool: &PgPool, id: &str, withdrawn: bool) {
    let mut conn = pool.acquire().await.unwrap();
    let record = serde_json::json!({"id": id, "modified": "2024-01-01T00:00:00Z"}).to_string();
    picket_db::advisories::upsert(
        &mut conn,
        &[picket_db::advisories::NewAdvisory {
            id: id.into(),
            modified: None,
            published: None,
            withdrawn: withdrawn.then(time::OffsetDateTime::now_utc),
            aliases: vec![],
            packages: vec![],
            record,
            source: "test".into(),
        }],
    )
    .await
    .unwrap();
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn supply_chain_findings_keep_their_dependency_and_close_by_what_their_advisories_say(
    pool: PgPool,
) {
    let (org, project) = setup(&pool).await;
    store_advisory(&pool, "PYSEC-1", false).await;
    store_advisory(&pool, "PYSEC-2", true).await;
    let fixed = vulnerable("requirements.txt", "urllib3", "CVE-2020-1", "PYSEC-1");
    let withdrawn = vulnerable("requirements.txt", "jinja2", "CVE-2020-2", "PYSEC-2");
    let unread = vulnerable("web/poetry.lock", "django", "CVE-2020-3", "PYSEC-1");
    let (_, first) = full_scan(
        &pool,
        org,
        project,
        "main",
        results(
            1,
            vec![fixed.clone(), withdrawn.clone(), unread.clone()],
            &[],
        ),
    )
    .await;
    assert_eq!(first.new, 3);
    let stored = all(&pool, org, project).await;
    let urllib3 = stored.iter().find(|f| f.rule_id == "CVE-2020-1").unwrap();
    assert_eq!(
        urllib3.dependency, fixed.dependency,
        "the dependency is kept as sent"
    );

    // The next scan reports none of them, and could not read web/poetry.lock. No Code rule
    // ran either: that does not make a supply-chain finding `removed`.
    let mut next = results(1, vec![], &[]);
    next.unread_paths = vec!["web/poetry.lock".into()];
    let (_, second) = full_scan(&pool, org, project, "main", next).await;
    assert_eq!((second.fixed, second.removed), (1, 1));
    let status = |rule: &str, rows: &[FindingRecord]| {
        rows.iter().find(|f| f.rule_id == rule).unwrap().status
    };
    let after = all(&pool, org, project).await;
    // An advisory still stands: the package moved off it (or left the lockfile).
    assert_eq!(status("CVE-2020-1", &after), FindingStatus::Fixed);
    // Its only advisory was withdrawn: it was never a vulnerability.
    assert_eq!(status("CVE-2020-2", &after), FindingStatus::Removed);
    // A lockfile that could not be read says nothing about its findings.
    assert_eq!(status("CVE-2020-3", &after), FindingStatus::Open);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_table_refuses_a_supply_chain_finding_without_its_dependency(pool: PgPool) {
    let (org, project) = setup(&pool).await;
    let mut bare = vulnerable("requirements.txt", "urllib3", "CVE-2020-1", "PYSEC-1");
    bare.dependency = None;
    let scan = scans::enqueue(
        &pool,
        &NewScan::full(org, project, ScanTrigger::Manual, "main"),
    )
    .await
    .unwrap()
    .scan
    .id;
    let lease = claim_running(&pool, scan).await;
    let err = record(&pool, &lease, &results(1, vec![bare], &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DbError::Invalid { constraint } if constraint == "findings_dependency_product"),
        "{err:?}"
    );
}
