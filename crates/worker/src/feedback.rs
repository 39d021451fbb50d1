//! A pull request scan's feedback, posted by its worker (docs/architecture.md, "Pull requests").
//!
//! After the scan, with the scan still `reporting` under this attempt's lease, the worker:
//! 1. begins its feedback with the control plane (`feedback/begin`, fenced: a scan cancelled or
//!    superseded first answers 409 and nothing is posted), handing over what it plans from (its
//!    new findings with their modes, the diff's commentable lines);
//! 2. posts the comments with the credential minted for this scan (an installation token for
//!    the one repository): Picket's earlier comments are read back, new inline comments posted
//!    in one review, threads of findings gone resolved, the summary comment created or edited
//!    (`picket_vcs::feedback::post_comments`);
//! 3. tells the control plane the comments are done (`feedback/done`); the control plane
//!    completes the check from the same input.
//!
//! Within [`FEEDBACK_DEADLINE`]: past it (a rate limit that would not lift), or on a provider
//! error, the worker leaves the rest to the control plane, which posts whatever is missing
//! (the markers make that safe) and completes the check. The scan's results are uploaded either
//! way.

use crate::client::{ApiClient, ClientError};
use crate::clone::Credentials;
use picket_core::feedback::{DiffLines, FeedbackInput, NewFinding};
use picket_core::protocol::{FeedbackBegin, FeedbackDone, ScanResults, ScanSpec};
use picket_vcs::feedback::{post_comments, PullRequestTarget};
use picket_vcs::github::api::{ClientOptions, RetryPolicy};
use picket_vcs::provider::{RepoLocator, ScopedCredential};
use std::time::Duration;

/// Longest the worker spends posting its feedback; the control plane finishes what is left.
pub const FEEDBACK_DEADLINE: Duration = Duration::from_secs(120);

/// What became of the feedback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The scan takes no PR feedback (not a PR, or a provider without feedback).
    NotWanted,
    /// The comments are posted and the control plane told.
    Posted {
        comments: u32,
        resolved: u32,
        summary: &'static str,
    },
    /// Begun, but left to the control plane: why (a stable code).
    LeftToControlPlane(String),
}

/// The planner's input from the scan's results: its new, unsuppressed findings with their
/// rule's mode in the spec's effective policy, and the diff's lines (none known: every finding
/// goes in the summary).
pub fn input_of(spec: &ScanSpec, results: &ScanResults, diff: Option<DiffLines>) -> FeedbackInput {
    FeedbackInput {
        findings: results
            .findings
            .iter()
            .filter_map(|f| NewFinding::from_reported(f, &spec.policy))
            .collect(),
        previous_commented: None,
        fixed_in_pr: results.fixed_in_pr.len(),
        diff: diff.unwrap_or_default(),
        existing: Vec::new(),
        draft_feedback: Default::default(),
        pr_is_draft: false,
        late: false,
        unreadable_lockfiles: results
            .trail
            .supply_chain
            .iter()
            .flat_map(|t| &t.lockfiles)
            .filter(|l| !l.merge_base)
            .filter_map(|l| {
                Some(picket_core::feedback::UnreadableLockfile {
                    path: l.path.clone(),
                    reason: l.error.clone()?,
                })
            })
            .collect(),
    }
}

/// Begins, posts and reports the feedback of a PR scan. Errors: only the control plane's
/// answers (a fenced 401/409 means this attempt is over: post nothing, upload nothing); provider
/// faults end in [`Outcome::LeftToControlPlane`].
pub async fn post(
    api: &ApiClient,
    spec: &ScanSpec,
    credentials: Option<&Credentials>,
    input: FeedbackInput,
) -> Result<Outcome, ClientError> {
    let Some(number) = spec.pr_number.and_then(|n| u64::try_from(n).ok()) else {
        return Ok(Outcome::NotWanted);
    };
    let Some(start) = api
        .begin_feedback(&FeedbackBegin {
            attempt: spec.attempt,
            input: input.clone(),
        })
        .await?
    else {
        return Ok(Outcome::NotWanted);
    };
    let Some(credentials) = credentials else {
        return Ok(Outcome::LeftToControlPlane("no_credential".into()));
    };
    let Some(head_sha) = spec.commit_sha.clone() else {
        return Ok(Outcome::LeftToControlPlane("no_head_commit".into()));
    };
    let mut input = input;
    input.late = start.late;
    input.pr_is_draft = start.pr_is_draft;
    input.draft_feedback = start.draft_feedback;
    input.previous_commented = start
        .previous_commented
        .map(|fps| fps.into_iter().collect());
    let mut options = ClientOptions::new(start.api_url.clone());
    // Waits for a rate limit stay within the feedback's own deadline. The operator's CA bundle
    // is trusted through SSL_CERT_FILE (crate::tls::trust), which the platform roots include.
    options.retry = RetryPolicy {
        max_wait: Duration::from_secs(60),
        ..options.retry
    };
    let credential = ScopedCredential {
        username: credentials.username.clone(),
        secret: credentials.token.clone(),
        expires_at: None,
    };
    let client = match picket_vcs::registry::feedback_client(start.provider, &options, &credential)
    {
        Ok(c) => c,
        Err(e) => return Ok(Outcome::LeftToControlPlane(e.code.as_str().to_owned())),
    };
    let target = PullRequestTarget {
        repo: RepoLocator {
            id: start.repo_id,
            full_name: start.full_name,
            installation_id: start.installation_id,
        },
        number,
        head_sha,
        bot_login: start.bot_login,
    };
    let input_quiet = input.quiet_draft();
    let posted = match tokio::time::timeout(
        FEEDBACK_DEADLINE,
        post_comments(&*client, &target, input),
    )
    .await
    {
        Ok(Ok(posted)) => posted,
        Ok(Err(e)) => {
            tracing::warn!(code = e.code.as_str(), error = %e, "PR feedback not finished; the control plane will");
            return Ok(Outcome::LeftToControlPlane(e.code.as_str().to_owned()));
        }
        Err(_) => {
            tracing::warn!(
                deadline = ?FEEDBACK_DEADLINE,
                "PR feedback past its deadline; the control plane will finish it"
            );
            return Ok(Outcome::LeftToControlPlane("deadline".into()));
        }
    };
    api.feedback_done(&FeedbackDone {
        attempt: spec.attempt,
        comments_posted: posted.comments_posted,
        threads_resolved: posted.threads_resolved,
        summary: posted.summary.to_owned(),
        api_calls: client.api_calls(),
        quiet_draft: input_quiet,
    })
    .await?;
    Ok(Outcome::Posted {
        comments: posted.comments_posted,
        resolved: posted.threads_resolved,
        summary: posted.summary,
    })
}
