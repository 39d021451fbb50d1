//! The reconcile sweep (docs/architecture.md, "Pull requests"; issue 9 §3).
//!
//! GitHub delivers each webhook once and never retries a failed delivery, so a pull request whose
//! `pull_request` event was lost (Picket down, a 503, a laptop asleep) would never be scanned.
//! Every [`ReconcileConfig::every`], [`sweep`] lists the open pull requests (drafts included;
//! closed ones are not listed) of every project that is enabled, has diff-aware scans on and sits
//! on a GitHub connection (or a GitLab, Bitbucket Cloud or Azure DevOps one, whose hooks can also
//! drop events: GitLab and Azure disable or suspend failing ones), through [`SourceProvider::open_pull_requests`] (paged), and queues a
//! diff-aware scan of each head never scanned through the webhook's own path
//! ([`webhooks::sweep_pull_request`]: one scan per head whoever comes first, older scans of the
//! PR superseded, its check wanted), with the trigger `reconcile`.
//!
//! **Budget.** Each installation (connection + GitHub App installation) may cost at most
//! [`ReconcileConfig::budget`] API calls per sweep, counted as the deltas of
//! [`SourceProvider::api_calls`] around the sweep's own calls (installation-token mints included;
//! a call another task makes on the same connection's client at the same moment is counted too).
//! A project is started, and each further page asked for, only while the installation's count is
//! below the budget, so a sweep may pass it by the calls of one page (a listing plus, at most, a
//! token mint). Projects are walked oldest turn first (`projects.reconciled_at`), so when the
//! budget runs out the next sweep begins with the projects this one did not reach; a project whose
//! listing the budget cut short gets its turn back.
//!
//! **Faults.** A provider error (with its stable code, e.g. `provider_forbidden` for a suspended
//! installation whose webhook never came, `provider_rate_limited`) is logged, counted, ends that
//! installation's part of the sweep and the sweep goes on with the next installation; the project
//! that failed has had its turn, so one broken repository cannot starve the others. Disabled
//! projects (installation removed or suspended, repository removed) are not listed at all.
//!
//! **What is counted.** Each sweep ends with one log line (`reconcile sweep finished`: its
//! installations, projects listed and left, pull requests seen, scans queued and superseded, API
//! calls, budgets spent, errors) and feeds the scheduler's metrics
//! (`picket_scheduler_reconcile_*`, see [`crate::metrics`]); [`sweep`] returns the same figures as
//! a [`SweepReport`].

use crate::metrics::SchedulerMetrics;
use picket_core::ConnectionId;
use picket_db::reconcile::{self, SweepProject};
use picket_db::webhooks::{self, PullRequestHead, PullRequestOutcome, SweptHead};
use picket_db::{Db, DbError};
use picket_vcs::provider::{PullRequestState, RepoLocator, SourceProvider};
use picket_vcs::Registry;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Who the sweep's scan events are audited as.
pub const ACTOR: &str = "reconcile";

/// How the sweep runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// Time between two sweeps (the first runs when the scheduler starts); zero: no sweep.
    /// Default 5 minutes.
    pub every: Duration,
    /// API calls one installation may cost per sweep. Default 100: at the default interval at
    /// most 1,200 of an installation's 5,000 (or more) requests an hour.
    pub budget: u64,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            every: Duration::from_secs(300),
            budget: 100,
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Installations (connection + installation) with projects to sweep.
    pub installations: usize,
    /// Projects whose open pull requests were listed to the end.
    pub projects_swept: usize,
    /// Projects not reached (budget spent, or a provider error ended their installation's part);
    /// the next sweep begins with them.
    pub projects_left: usize,
    /// Open pull requests seen.
    pub pull_requests: usize,
    /// Heads queued for a scan (never scanned before).
    pub scans_queued: usize,
    /// Older scans of those pull requests cancelled as `superseded`.
    pub scans_superseded: usize,
    /// API calls made, over all installations.
    pub api_calls: u64,
    /// Installations whose budget ran out before all their projects were listed.
    pub budgets_exhausted: usize,
    /// Provider errors, by stable code (`provider_forbidden`, ...).
    pub errors: BTreeMap<&'static str, u64>,
}

/// Runs a sweep now and then every `cfg.every` until `stop` (a sweep in progress is dropped:
/// what it queued stays, what it did not reach waits for the next one).
pub async fn run(
    db: Db,
    providers: Arc<Registry>,
    cfg: ReconcileConfig,
    metrics: Arc<SchedulerMetrics>,
    stop: CancellationToken,
) {
    if cfg.every.is_zero() {
        tracing::info!("reconcile sweep off (PICKET_RECONCILE_INTERVAL=0)");
        return;
    }
    let mut tick = tokio::time::interval(cfg.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            swept = sweep(&db, &providers, &cfg) => match swept {
                Ok(report) => metrics.swept(&report),
                Err(e) => tracing::error!(error = %e, "reconcile sweep failed"),
            },
        }
    }
}

/// One sweep over every installation; see the module documentation. Fails only on a database
/// error (provider errors are in the report).
pub async fn sweep(
    db: &Db,
    providers: &Registry,
    cfg: &ReconcileConfig,
) -> Result<SweepReport, DbError> {
    let started = std::time::Instant::now();
    let mut report = SweepReport::default();
    for ((connection, installation), projects) in
        by_installation(reconcile::projects(db.pool()).await?)
    {
        report.installations += 1;
        sweep_installation(
            db,
            providers,
            cfg,
            connection,
            installation.as_deref(),
            &projects,
            &mut report,
        )
        .await?;
    }
    let errors: u64 = report.errors.values().sum();
    tracing::info!(
        installations = report.installations,
        projects_swept = report.projects_swept,
        projects_left = report.projects_left,
        pull_requests = report.pull_requests,
        scans_queued = report.scans_queued,
        scans_superseded = report.scans_superseded,
        api_calls = report.api_calls,
        budgets_exhausted = report.budgets_exhausted,
        errors,
        millis = started.elapsed().as_millis() as u64,
        "reconcile sweep finished"
    );
    Ok(report)
}

/// How projects are reached: their connection and, on GitHub, the installation.
type Reach = (ConnectionId, Option<String>);

/// The projects grouped by installation, each group in the order given (oldest turn first), the
/// groups in the order of their oldest turn.
fn by_installation(projects: Vec<SweepProject>) -> Vec<(Reach, Vec<SweepProject>)> {
    let mut groups: Vec<(Reach, Vec<SweepProject>)> = Vec::new();
    for p in projects {
        let key = (p.connection_id, p.installation_id.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, group)) => group.push(p),
            None => groups.push((key, vec![p])),
        }
    }
    groups
}

/// Why an installation's part of a sweep ended early.
enum Stop {
    Budget,
    Error,
}

async fn sweep_installation(
    db: &Db,
    providers: &Registry,
    cfg: &ReconcileConfig,
    connection: ConnectionId,
    installation: Option<&str>,
    projects: &[SweepProject],
    report: &mut SweepReport,
) -> Result<(), DbError> {
    let source = match providers.source(connection).await {
        Ok(source) => source,
        Err(e) => {
            // A GitHub connection lending a plain token (no App) cannot list pull requests.
            if e.code == picket_vcs::ErrorCode::BadConfig {
                tracing::debug!(%connection, code = e.code.as_str(), "reconcile: connection skipped");
            } else {
                tracing::warn!(%connection, installation = installation.unwrap_or_default(), code = e.code.as_str(), error = %e, "reconcile: connection unusable");
            }
            *report.errors.entry(e.code.as_str()).or_default() += 1;
            report.projects_left += projects.len();
            return Ok(());
        }
    };
    let start = source.api_calls();
    let used = |source: &dyn SourceProvider| source.api_calls().saturating_sub(start);
    let mut stopped = None;
    let mut done = 0;
    'projects: for project in projects {
        if used(&*source) >= cfg.budget {
            stopped = Some(Stop::Budget);
            break;
        }
        let Some(turn) =
            reconcile::take_turn(db.pool(), project.project_id, project.reconciled_at).await?
        else {
            // Another scheduler took it since the list was read, or it was disabled meanwhile.
            done += 1;
            continue;
        };
        let locator = RepoLocator {
            id: project.provider_repo_id.clone(),
            full_name: project.full_name.clone(),
            installation_id: installation.map(str::to_owned),
        };
        let mut cursor: Option<String> = None;
        loop {
            let page = match source.open_pull_requests(&locator, cursor.as_deref()).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(
                        %connection, installation = installation.unwrap_or_default(), repository = %project.full_name,
                        code = e.code.as_str(), error = %e,
                        "reconcile: listing open pull requests failed; next installation"
                    );
                    *report.errors.entry(e.code.as_str()).or_default() += 1;
                    // The project had its turn: the next sweep starts with the others.
                    done += 1;
                    stopped = Some(Stop::Error);
                    break 'projects;
                }
            };
            let mut disabled = false;
            for pr in &page.items {
                report.pull_requests += 1;
                if !queue_head(
                    db,
                    &*source,
                    connection,
                    installation,
                    project,
                    pr,
                    turn,
                    report,
                )
                .await?
                {
                    disabled = true;
                    break;
                }
            }
            if disabled {
                // Disabled meanwhile: its other pull requests are not scanned either.
                done += 1;
                break;
            }
            cursor = page.next;
            if cursor.is_none() {
                report.projects_swept += 1;
                done += 1;
                break;
            }
            if used(&*source) >= cfg.budget {
                // Cut short: the project is listed again from its first page next time.
                reconcile::give_back_turn(
                    db.pool(),
                    project.project_id,
                    turn,
                    project.reconciled_at,
                )
                .await?;
                stopped = Some(Stop::Budget);
                break 'projects;
            }
        }
    }
    let calls = used(&*source);
    report.api_calls += calls;
    report.projects_left += projects.len() - done;
    match stopped {
        Some(Stop::Budget) => {
            report.budgets_exhausted += 1;
            tracing::info!(
                %connection, installation = installation.unwrap_or_default(), api_calls = calls, budget = cfg.budget,
                projects_left = projects.len() - done,
                "reconcile: installation's budget spent; the next sweep resumes with the projects left"
            );
        }
        Some(Stop::Error) | None => tracing::debug!(
            %connection, installation = installation.unwrap_or_default(), api_calls = calls, projects = projects.len(),
            "reconcile: installation swept"
        ),
    }
    Ok(())
}

/// Queues one open pull request's head unless it was scanned. `Ok(false)` when the project turned
/// out disabled (or its PR scans off) meanwhile.
#[allow(clippy::too_many_arguments)]
async fn queue_head(
    db: &Db,
    source: &dyn SourceProvider,
    connection: ConnectionId,
    installation: Option<&str>,
    project: &SweepProject,
    pr: &PullRequestState,
    listed_at: time::OffsetDateTime,
    report: &mut SweepReport,
) -> Result<bool, DbError> {
    let Ok(number) = i32::try_from(pr.number) else {
        tracing::warn!(repository = %project.full_name, number = pr.number, "reconcile: pull request number out of range");
        return Ok(true);
    };
    // Azure DevOps names no head while it computes a pull request's merge: a later sweep (or
    // the update that follows) queues it.
    if !pr.open || pr.head_sha.is_empty() {
        return Ok(true);
    }
    let git_ref =
        picket_vcs::provider::pull_request_ref(source.provider(), pr.number, &pr.head_ref);
    let head = PullRequestHead {
        connection_id: connection,
        repo_id: &project.provider_repo_id,
        installation_id: installation,
        number,
        git_ref: &git_ref,
        head_sha: &pr.head_sha,
        base_ref: &pr.base_ref,
        base_sha: Some(&pr.base_sha)
            .filter(|s| !s.is_empty())
            .map(String::as_str),
        draft: pr.draft,
        updated_at: pr.updated_at,
    };
    let mut tx = db.pool().begin().await?;
    let outcome = webhooks::sweep_pull_request(&mut tx, &head, listed_at, ACTOR).await?;
    tx.commit().await?;
    match outcome {
        SweptHead::Outcome(PullRequestOutcome::Queued {
            scan, superseded, ..
        }) => {
            report.scans_queued += 1;
            report.scans_superseded += superseded.len();
            tracing::info!(
                repository = %project.full_name, number, head = %pr.head_sha, %scan,
                superseded = superseded.len(), draft = pr.draft,
                "reconcile: unscanned pull request head queued"
            );
            Ok(true)
        }
        SweptHead::Outcome(
            PullRequestOutcome::DuplicateHead { .. } | PullRequestOutcome::StaleHead { .. },
        ) => Ok(true),
        SweptHead::Stale { newer, .. } => {
            tracing::debug!(repository = %project.full_name, number, %newer, "reconcile: the pull request was scanned since the listing");
            Ok(true)
        }
        SweptHead::Outcome(
            PullRequestOutcome::ProjectDisabled(_)
            | PullRequestOutcome::DiffScansDisabled(_)
            | PullRequestOutcome::ProjectUnknown,
        ) => Ok(false),
    }
}
