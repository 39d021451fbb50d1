//! Triage by reply: the control plane's side (docs/github.md, "Triage from a pull request";
//! docs/architecture.md, "Pull requests").
//!
//! The webhook route records each reply that reads as a triage command and answers a review
//! thread (picket-db `triage::queue`), without calling the provider. One loop, [`run`], takes the
//! requests one at a time, each under its row lock (`FOR UPDATE SKIP LOCKED`, so replicas share
//! the work), and for a **pending** request:
//!
//! 1. reads the comment replied to (`FeedbackClient::review_comment`, with a credential minted
//!    for the repository): it must be written by the connection's own bot login
//!    (`SourceProvider::bot_login`) and start with a finding marker
//!    (`picket_core::feedback::parse_marker`); anything else is dropped without an answer (a
//!    marker in someone else's comment means nothing);
//! 2. asks the provider whether the reply's author may write to the repository
//!    (`SourceProvider::has_write_access`); if not, the answer is a polite refusal;
//! 3. checks the command (`picket_core::triage::Command::check`) and triages the project's
//!    findings of that fingerprint through picket-db `findings::triage`, the API's own statement
//!    (every branch, and later scans, keep it), as `reply:<provider>:<login>`;
//! 4. records the decision and the answer to post **in the same transaction** as the triage.
//!
//! Then it posts the answer in the thread (`FeedbackClient::reply`) and records it. The order
//! makes it idempotent: a retry after the commit finds the request `answering` and only posts;
//! a retry of the answer (its attempt number above 1: an earlier attempt may have posted before
//! dying) first looks for the answer's hidden marker in the PR's comments
//! (`FeedbackClient::find_comments`) and records the one found instead of posting another.
//!
//! A provider failure that may pass (`ErrorCode::is_transient`: rate limited, unavailable,
//! unreachable) is retried with backoff (at least what the provider asked for); any other gives
//! the request up (`failed`, its stable code kept), as do [`TriageConfig::max_failures`]
//! transient ones in a row.

use picket_core::feedback::{parse_marker, Marker};
use picket_core::triage::{answer_body, reply_marker, Answer, Command, Decision};
use picket_db::findings::{self, FingerprintTriage, Triage};
use picket_db::triage::{self, Request, RequestState};
use picket_db::{Db, DbError};
use picket_vcs::provider::RepoLocator;
use picket_vcs::{FeedbackClient, Registry, VcsError};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct TriageConfig {
    /// Pause when no request is due.
    pub idle: Duration,
    /// How long one attempt at posting an answer holds its request before another replica may
    /// try again (it should outlast the provider calls of one attempt).
    pub reply_claim: Duration,
    /// Transient failures in a row after which a request is given up.
    pub max_failures: i32,
}

impl Default for TriageConfig {
    fn default() -> Self {
        TriageConfig {
            idle: Duration::from_secs(1),
            reply_claim: Duration::from_secs(120),
            max_failures: 10,
        }
    }
}

/// Runs until `stop`.
pub async fn run(db: Db, providers: Arc<Registry>, cfg: TriageConfig, stop: CancellationToken) {
    crate::until_stopped(
        "triage",
        &stop,
        || step(&db, &providers, &cfg),
        || tokio::time::sleep(cfg.idle),
    )
    .await;
}

/// Handles one due request, if any. `Ok(false)` when none was due.
pub async fn step(db: &Db, providers: &Registry, cfg: &TriageConfig) -> Result<bool, DbError> {
    let mut tx = db.pool().begin().await?;
    let Some(req) = triage::lock_next_due(&mut tx).await? else {
        return Ok(false);
    };
    let repo = RepoLocator {
        id: req.provider_repo_id.clone(),
        full_name: req.repo_full_name.clone(),
        installation_id: req.installation_id.clone(),
    };
    match req.state {
        RequestState::Pending => {
            let (verdict, feedback) = match check(providers, &req, &repo).await {
                Ok(v) => v,
                Err(e) => {
                    let code = e.code.as_str();
                    match retry_after(&req, &e, cfg) {
                        Some(wait) => {
                            triage::record_failure(&mut *tx, req.id, None, code, wait).await?
                        }
                        None => triage::fail(&mut *tx, req.id, None, code).await?,
                    }
                    tx.commit().await?;
                    return Ok(true);
                }
            };
            let Some(checked) = verdict else {
                triage::decide(
                    &mut *tx,
                    req.id,
                    "not_picket_comment",
                    None,
                    None,
                    cfg.reply_claim,
                )
                .await?;
                tx.commit().await?;
                tracing::info!(
                    request = req.id,
                    "triage reply not to a Picket finding comment: dropped"
                );
                return Ok(true);
            };
            let answer = match judge(&req, &checked) {
                Err(answer) => answer,
                Ok((decision, actor)) => {
                    let triage = match &decision {
                        Decision::Ignore { verb, .. } => Triage::Ignore {
                            reason: verb.ignore_reason(),
                            comment: decision.stored_reason(),
                        },
                        Decision::Reopen => Triage::Reopen,
                    };
                    let done = findings::triage_fingerprint(
                        &mut tx,
                        req.org_id,
                        req.project_id,
                        &checked.fingerprint,
                        &triage,
                        &actor,
                    )
                    .await?;
                    answer_of(&decision, &done)
                }
            };
            let body = answer_body(answer, &req.comment_id);
            let attempt = triage::decide(
                &mut *tx,
                req.id,
                answer.code(),
                Some(&checked.fingerprint),
                Some(&body),
                cfg.reply_claim,
            )
            .await?
            .unwrap_or(1);
            tx.commit().await?;
            tracing::info!(
                request = req.id,
                outcome = answer.code(),
                "triage reply decided"
            );
            post(
                db,
                providers,
                &req,
                &repo,
                feedback.as_ref(),
                attempt,
                &body,
                cfg,
            )
            .await?;
        }
        RequestState::Answering => {
            let attempt = triage::begin_reply(&mut *tx, req.id, cfg.reply_claim).await?;
            tx.commit().await?;
            let body = req.reply_body.clone().unwrap_or_default();
            match providers.feedback(req.connection_id, &repo).await {
                Ok(feedback) => {
                    post(
                        db,
                        providers,
                        &req,
                        &repo,
                        feedback.as_ref(),
                        attempt,
                        &body,
                        cfg,
                    )
                    .await?
                }
                Err(e) => reply_failed(db, &req, attempt, &e, cfg).await?,
            }
        }
        RequestState::Done | RequestState::Failed => tx.commit().await?,
    }
    Ok(true)
}

/// What the provider says about a pending request: `None` when the comment replied to is not
/// Picket's finding comment, else its fingerprint and whether the author may write; with the
/// feedback client minted for it.
type Verdict = (Option<Checked>, Arc<dyn FeedbackClient>);

/// A reply to Picket's finding comment, as the provider confirmed it.
struct Checked {
    fingerprint: String,
    /// The author may write to the repository.
    writer: bool,
    provider: picket_core::Provider,
}

async fn check(
    providers: &Registry,
    req: &Request,
    repo: &RepoLocator,
) -> Result<Verdict, VcsError> {
    let source = providers.source(req.connection_id).await?;
    let bot = source.bot_login().await?;
    let feedback = providers.feedback(req.connection_id, repo).await?;
    let number = u64::try_from(req.pr_number).unwrap_or_default();
    let parent = feedback
        .review_comment(repo, number, &req.parent_comment_id)
        .await?;
    let fingerprint = match parent {
        Some(c) if c.author.eq_ignore_ascii_case(&bot) => match parse_marker(&c.body) {
            Some(Marker::Finding(fp)) => fp,
            _ => return Ok((None, feedback)),
        },
        _ => return Ok((None, feedback)),
    };
    let writer = source.has_write_access(repo, &req.author_login).await?;
    Ok((
        Some(Checked {
            fingerprint: fingerprint.as_str().to_owned(),
            writer,
            provider: source.provider(),
        }),
        feedback,
    ))
}

/// What a checked request comes to, before the findings are looked at: a refusal, a usage
/// answer, or a decision to apply with its author (`reply:<provider>:<login>`).
fn judge(req: &Request, checked: &Checked) -> Result<(Decision, String), Answer> {
    if !checked.writer {
        return Err(Answer::Refused);
    }
    let command = Command {
        verb: req.verb,
        reason: req.reason.clone(),
    };
    let decision = command.check().map_err(Answer::Usage)?;
    Ok((
        decision,
        format!("reply:{}:{}", checked.provider.as_str(), req.author_login),
    ))
}

/// The answer to a decision applied to the findings.
fn answer_of(decision: &Decision, done: &FingerprintTriage) -> Answer {
    match (decision, done) {
        (_, FingerprintTriage::Unknown) => Answer::FindingUnknown,
        (Decision::Ignore { verb, .. }, _) => Answer::Ignored(*verb),
        (Decision::Reopen, FingerprintTriage::Unchanged(_)) => Answer::NotIgnored,
        (Decision::Reopen, FingerprintTriage::Applied(_)) => Answer::Reopened,
    }
}

/// Posts attempt `attempt` of a decided request's answer and records it. An attempt after the
/// first looks for the answer's marker first: an earlier attempt may have posted it.
#[allow(clippy::too_many_arguments)]
async fn post(
    db: &Db,
    providers: &Registry,
    req: &Request,
    repo: &RepoLocator,
    feedback: &dyn FeedbackClient,
    attempt: i32,
    body: &str,
    cfg: &TriageConfig,
) -> Result<(), DbError> {
    let number = u64::try_from(req.pr_number).unwrap_or_default();
    let result = async {
        if attempt > 1 {
            let bot = providers
                .source(req.connection_id)
                .await?
                .bot_login()
                .await?;
            let marker = reply_marker(&req.comment_id);
            if let Some(id) = existing_answer(feedback, repo, number, &marker, &bot).await? {
                return Ok((id, false));
            }
        }
        feedback
            .reply(repo, number, &req.parent_comment_id, body)
            .await
            .map(|c| (c.id, true))
    }
    .await;
    match result {
        Ok((id, posted)) => {
            if triage::record_reply(db.pool(), req.id, attempt, &id).await? {
                tracing::info!(request = req.id, reply = %id, posted, "triage answer in the thread");
            }
            Ok(())
        }
        Err(e) => reply_failed(db, req, attempt, &e, cfg).await,
    }
}

/// The id of the answer an earlier attempt posted: a comment by Picket's `bot` login starting
/// with `marker` (a person quoting or copying it does not count).
async fn existing_answer(
    feedback: &dyn FeedbackClient,
    repo: &RepoLocator,
    number: u64,
    marker: &str,
    bot: &str,
) -> Result<Option<String>, VcsError> {
    let found = feedback.find_comments(repo, number, marker).await?;
    Ok(found
        .into_iter()
        .find(|c| c.author.eq_ignore_ascii_case(bot) && c.body.trim_start().starts_with(marker))
        .map(|c| c.id))
}

/// What to do about a failed provider call: `Some(wait)` to retry after `wait` (it may pass),
/// `None` to give the request up. Logged here.
fn retry_after(req: &Request, e: &VcsError, cfg: &TriageConfig) -> Option<Duration> {
    let code = e.code.as_str();
    if e.code.is_transient() && req.failures + 1 < cfg.max_failures {
        let wait = backoff(req.failures, e.retry_after);
        tracing::warn!(request = req.id, code, retry_in = ?wait, "triage request: provider call failed");
        Some(wait)
    } else {
        tracing::warn!(request = req.id, code, "triage request given up");
        None
    }
}

/// Records a failed provider call of reply attempt `attempt` (outside the request's lock: the
/// attempt number fences it).
async fn reply_failed(
    db: &Db,
    req: &Request,
    attempt: i32,
    e: &VcsError,
    cfg: &TriageConfig,
) -> Result<(), DbError> {
    let code = e.code.as_str();
    match retry_after(req, e, cfg) {
        Some(wait) => triage::record_failure(db.pool(), req.id, Some(attempt), code, wait).await,
        None => triage::fail(db.pool(), req.id, Some(attempt), code).await,
    }
}

/// 2 s doubling to 5 min, or what the provider asked for when longer.
fn backoff(failures: i32, asked: Option<Duration>) -> Duration {
    let doubling = Duration::from_secs(2) * 2u32.saturating_pow(failures.clamp(0, 8) as u32);
    doubling
        .min(Duration::from_secs(300))
        .max(asked.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes_and_honours_the_provider() {
        assert_eq!(backoff(0, None), Duration::from_secs(2));
        assert_eq!(backoff(3, None), Duration::from_secs(16));
        assert_eq!(backoff(20, None), Duration::from_secs(300));
        assert_eq!(
            backoff(0, Some(Duration::from_secs(60))),
            Duration::from_secs(60)
        );
    }
}
