//! The control plane's side of a pull request's check (docs/architecture.md, "Pull requests").
//!
//! One loop, [`run`], walks the PR checks that may still move: it creates each scan's check
//! `queued`, moves it `in_progress` once a worker runs the scan, and completes it when no worker
//! result will come: `success` with a note when the scan failed or the org's fail-open deadline
//! passed (domain.md §1), `neutral` when a newer push superseded it or it was cancelled. What a
//! check should show is [`picket_core::check::wanted`]; the worker completes the check with its
//! result, and a check never moves back.
//!
//! Every row is handled in its own transaction under its row lock, so replicas share the work and
//! a worker beginning its report waits for an in-flight provider call instead of racing it. A
//! failed provider call is recorded (its stable code) and retried with backoff.

use picket_core::check::{self, CheckPhase};
use picket_core::feedback::plan_feedback;
use picket_core::{ScanId, ScanState};
use picket_db::{pr_checks, Db, DbError};
use picket_vcs::feedback::{self, post_comments, PullRequestTarget};
use picket_vcs::provider::{
    CheckConclusion, CheckOutput, CheckStatus, CheckUpdate, FeedbackClient, RepoLocator,
};
use picket_vcs::{Registry, VcsError};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The check's name on the provider.
pub const CHECK_NAME: &str = "Picket";

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct PrCheckConfig {
    /// Pause when no check is due.
    pub idle: Duration,
    /// How soon an open check is looked at again when nothing changed.
    pub recheck: Duration,
    /// Where a check's "Details" link points: `<public_url>/scans/<id>`, when known.
    pub public_url: Option<String>,
}

impl Default for PrCheckConfig {
    fn default() -> Self {
        PrCheckConfig {
            idle: Duration::from_secs(1),
            recheck: Duration::from_secs(2),
            public_url: None,
        }
    }
}

/// Runs until `stop`.
pub async fn run(db: Db, providers: Arc<Registry>, cfg: PrCheckConfig, stop: CancellationToken) {
    // Woken by notifications, not only by the clock: a new PR scan, and a PR scan that moved
    // (its id the payload: its check is made due now, as it may have to follow).
    let waker =
        tokio::sync::Mutex::new(picket_db::queue::Waker::on(db.pool(), pr_checks::WAKE_ON).await);
    let moved = |payloads: Vec<String>| {
        let scans: Vec<ScanId> = payloads.iter().filter_map(|p| p.parse().ok()).collect();
        let db = &db;
        async move {
            if scans.is_empty() {
                return;
            }
            if let Err(e) = pr_checks::due_now(db.pool(), &scans).await {
                tracing::warn!(error = %e, "PR checks not made due; they are looked at later");
            }
        }
    };
    crate::until_stopped(
        "PR check",
        &stop,
        || async {
            // Moves heard while busy count too.
            let heard = waker.lock().await.take_buffered();
            moved(heard).await;
            step(&db, &providers, &cfg).await
        },
        || async {
            let heard = waker.lock().await.wait_payloads(cfg.idle).await;
            moved(heard).await;
        },
    )
    .await;
}

/// Handles one due check, if any. `Ok(false)` when none was due.
pub async fn step(db: &Db, providers: &Registry, cfg: &PrCheckConfig) -> Result<bool, DbError> {
    let mut tx = db.pool().begin().await?;
    let Some(open) = pr_checks::lock_next_due(&mut tx).await? else {
        return Ok(false);
    };
    // The worker's result is in hand once it began its feedback: once the scan has succeeded
    // the check is completed from it (and the comments posted, if the worker did not finish
    // them); while the worker still runs, it is the worker's turn. A scan that failed after
    // beginning (its results never landed) is treated as having no result.
    let reported = open.reported && open.feedback.is_some();
    if reported && open.scan_state == ScanState::Succeeded {
        finish(&mut tx, providers, cfg, &open).await?;
        tx.commit().await?;
        return Ok(true);
    }
    let wanted = check::wanted(
        open.scan_state,
        open.error_code.as_deref(),
        open.past_deadline,
        reported && !open.scan_state.is_terminal(),
    );
    let next = match wanted {
        // The worker is posting; look again later in case its report never comes.
        CheckPhase::Reported => None,
        _ => check::next(open.shown, wanted),
    };
    let (Some(phase), Some(head_sha)) = (next, open.head_sha.as_deref()) else {
        pr_checks::defer(&mut *tx, open.scan_id, cfg.recheck).await?;
        tx.commit().await?;
        return Ok(true);
    };
    let repo = locator(&open);
    let update = check_update(phase, &open, cfg);
    let result = async {
        let feedback = providers.feedback(open.connection_id, &repo).await?;
        move_check(&*feedback, &repo, &open, head_sha, &update).await
    }
    .await;
    match result {
        Ok(id) => {
            pr_checks::record_shown(&mut *tx, open.scan_id, &id, phase, cfg.recheck).await?;
            tracing::info!(scan = %open.scan_id, check = %id, phase = phase.as_str(), "PR check moved");
        }
        Err(e) => failed(&mut tx, &open, &e).await?,
    }
    tx.commit().await?;
    Ok(true)
}

fn locator(open: &pr_checks::OpenCheck) -> RepoLocator {
    RepoLocator {
        id: open.provider_repo_id.clone(),
        full_name: open.full_name.clone(),
        installation_id: open.installation_id.clone(),
    }
}

/// Creates the check with `update`, or moves the existing one; its id.
async fn move_check(
    feedback: &dyn FeedbackClient,
    repo: &RepoLocator,
    open: &pr_checks::OpenCheck,
    head_sha: &str,
    update: &CheckUpdate,
) -> Result<String, VcsError> {
    match &open.check_run_id {
        None => {
            feedback
                .create_check(
                    repo,
                    u64::try_from(open.pr_number).unwrap_or_default(),
                    CHECK_NAME,
                    head_sha,
                    update,
                )
                .await
        }
        Some(id) => feedback
            .update_check(repo, id, update)
            .await
            .map(|()| id.clone()),
    }
}

async fn failed(
    tx: &mut picket_db::PgConnection,
    open: &pr_checks::OpenCheck,
    e: &VcsError,
) -> Result<(), DbError> {
    let wait = backoff(open.failures, e.retry_after);
    tracing::warn!(scan = %open.scan_id, code = e.code.as_str(), retry_in = ?wait, "PR check update failed");
    pr_checks::record_failure(&mut *tx, open.scan_id, e.code.as_str(), wait).await
}

/// A succeeded scan's feedback: its comments, when the worker did not say they are posted
/// (`picket_vcs::feedback::post_comments` with a credential minted for the repository: it reads
/// back what is there and posts only what is missing), then the check completed from the same
/// input, unless it was completed already (a late result never changes it).
async fn finish(
    tx: &mut picket_db::PgConnection,
    providers: &Registry,
    cfg: &PrCheckConfig,
    open: &pr_checks::OpenCheck,
) -> Result<(), DbError> {
    let Some(mut input) = open.feedback.clone() else {
        return Ok(());
    };
    input.late = open.late;
    // As the PR is now: a draft marked ready for review gets the comments it did not get.
    input.pr_is_draft = open.pr_is_draft;
    input.draft_feedback = open.draft_feedback;
    let quiet_draft = input.quiet_draft();
    let Some(head_sha) = open.head_sha.as_deref() else {
        return Ok(());
    };
    let repo = locator(open);
    let complete_check = !open.shown.is_some_and(CheckPhase::is_final);
    let result = async {
        let feedback = providers.feedback(open.connection_id, &repo).await?;
        let mut outcome = None;
        if !open.comments_done {
            let target = PullRequestTarget {
                repo: repo.clone(),
                number: u64::try_from(open.pr_number).unwrap_or_default(),
                head_sha: head_sha.to_owned(),
                bot_login: providers
                    .source(open.connection_id)
                    .await?
                    .bot_login()
                    .await?,
            };
            let posted = post_comments(&*feedback, &target, input.clone()).await?;
            tracing::info!(
                scan = %open.scan_id,
                comments = posted.comments_posted,
                resolved = posted.threads_resolved,
                summary = posted.summary,
                "PR comments posted by the control plane"
            );
            outcome = Some(serde_json::json!({
                "comments_posted": posted.comments_posted,
                "threads_resolved": posted.threads_resolved,
                "summary": posted.summary,
                "api_calls": feedback.api_calls(),
                "posted_by": "control_plane",
                "quiet_draft": quiet_draft,
            }));
        }
        let check = if complete_check {
            let plan = plan_feedback(&input);
            let update = feedback::check_update(&plan.check, details_url(cfg, open));
            Some(move_check(&*feedback, &repo, open, head_sha, &update).await?)
        } else {
            None
        };
        Ok::<_, VcsError>((outcome, check))
    }
    .await;
    match result {
        Ok((outcome, check)) => {
            if let Some(outcome) = outcome {
                pr_checks::comments_done(&mut *tx, open.scan_id, &outcome, quiet_draft).await?;
            }
            if let Some(id) = check {
                pr_checks::record_shown(
                    &mut *tx,
                    open.scan_id,
                    &id,
                    CheckPhase::Reported,
                    cfg.recheck,
                )
                .await?;
                tracing::info!(scan = %open.scan_id, check = %id, late = open.late, "PR check completed with the scan's result");
            }
            Ok(())
        }
        Err(e) => failed(tx, open, &e).await,
    }
}

fn details_url(cfg: &PrCheckConfig, open: &pr_checks::OpenCheck) -> Option<String> {
    cfg.public_url
        .as_ref()
        .map(|u| format!("{}/scans/{}", u.trim_end_matches('/'), open.scan_id))
}

/// 2 s doubling to 5 min, or what the provider asked for when longer.
fn backoff(failures: i32, asked: Option<Duration>) -> Duration {
    let doubling = Duration::from_secs(2) * 2u32.saturating_pow(failures.clamp(0, 8) as u32);
    doubling
        .min(Duration::from_secs(300))
        .max(asked.unwrap_or_default())
}

/// What the check says in each phase the control plane owns.
fn check_update(
    phase: CheckPhase,
    open: &pr_checks::OpenCheck,
    cfg: &PrCheckConfig,
) -> CheckUpdate {
    let output = |title: &str, summary: String| {
        Some(CheckOutput {
            title: title.to_owned(),
            summary,
            text: None,
            annotations: vec![],
        })
    };
    let (status, conclusion, output) = match phase {
        CheckPhase::Queued => (
            CheckStatus::Queued,
            None,
            output(
                "Queued",
                "Picket will scan the changes of this pull request.".into(),
            ),
        ),
        CheckPhase::InProgress => (
            CheckStatus::InProgress,
            None,
            output(
                "Scanning",
                "Picket is scanning the changes of this pull request.".into(),
            ),
        ),
        CheckPhase::FailedOpen => {
            let why = match open.error_code.as_deref() {
                Some(code) if open.scan_state.is_terminal() => {
                    format!("the scan failed (`{code}`)")
                }
                _ => "the scan did not finish within the organization's time limit".to_owned(),
            };
            (
                CheckStatus::Completed,
                Some(CheckConclusion::Success),
                output(
                    "Picket did not finish",
                    format!(
                        "Picket could not report on this commit: {why}. The check passes so that \
                         Picket never blocks a merge; findings of a scan that finishes later are \
                         still commented, but never fail this check."
                    ),
                ),
            )
        }
        CheckPhase::Superseded => (
            CheckStatus::Completed,
            Some(CheckConclusion::Neutral),
            output(
                "Superseded",
                "A newer commit of this pull request is scanned instead.".into(),
            ),
        ),
        CheckPhase::Cancelled => (
            CheckStatus::Completed,
            Some(CheckConclusion::Neutral),
            output("Cancelled", "The scan of this commit was cancelled.".into()),
        ),
        CheckPhase::Reported => (CheckStatus::Completed, None, None),
    };
    CheckUpdate {
        status,
        conclusion,
        output,
        details_url: details_url(cfg, open),
    }
}
