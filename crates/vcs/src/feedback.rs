//! Carrying out a feedback plan on a pull request: the one sequence of provider calls that both
//! the worker (with the credential minted for its scan) and the control plane (finishing what a
//! worker could not) use, so the two post exactly the same things.
//!
//! [`post_comments`] reads back the comments Picket already posted (by hidden marker, and only
//! those whose author is the connection's own bot login: a marker in anyone else's comment
//! means nothing), plans with [`picket_core::feedback::plan_feedback`], posts the new inline
//! comments in one review, resolves the threads of findings gone, and creates or edits the
//! summary comment. Each step is idempotent through the markers, so running it again after a
//! partial run posts only what is missing. [`check_update`] turns the plan's check into the
//! provider's completed check.

use crate::error::ErrorCode;
use crate::provider::{
    Annotation, AnnotationLevel, CheckConclusion, CheckOutput, CheckStatus, CheckUpdate,
    FeedbackClient, InlineComment, PostedComment, RepoLocator,
};
use crate::Result;
use picket_core::feedback::{
    self as plan, plan_feedback, ExistingComment, FeedbackInput, FeedbackPlan, SummaryAction,
    MARKER_PREFIX,
};

/// Posts inline comments one request each, for providers without a batch call (GitLab,
/// Bitbucket Cloud, Azure DevOps): `post` makes one comment's request and answers what was
/// posted, or `None` for a comment it left out itself (and logged). A comment the provider
/// refuses ([`ErrorCode::Rejected`]: a line outside the diff) is logged and left out too, so the
/// others still go; any other error stops at once and is returned (the caller runs again later,
/// and the markers keep it from posting twice). `provider` names the provider in the log.
pub(crate) async fn post_each<'a, F, Fut>(
    provider: &str,
    comments: &'a [InlineComment],
    mut post: F,
) -> Result<Vec<PostedComment>>
where
    F: FnMut(&'a InlineComment) -> Fut,
    Fut: std::future::Future<Output = Result<Option<PostedComment>>>,
{
    let mut out = Vec::with_capacity(comments.len());
    for c in comments {
        match post(c).await {
            Ok(posted) => out.extend(posted),
            Err(e) if e.code == ErrorCode::Rejected => {
                tracing::warn!(
                    path = %c.path,
                    line = c.line,
                    message = %e.message,
                    "{provider} refused an inline comment; it is left out"
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The pull request feedback goes to.
#[derive(Debug, Clone)]
pub struct PullRequestTarget {
    pub repo: RepoLocator,
    pub number: u64,
    /// The head commit the scan is of: inline comments are posted on its lines.
    pub head_sha: String,
    /// The login Picket's own comments carry (GitHub: `<app slug>[bot]`).
    pub bot_login: String,
}

/// What [`post_comments`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentsPosted {
    pub plan: FeedbackPlan,
    /// New inline comments the provider took (a refused line is left out).
    pub comments_posted: u32,
    pub threads_resolved: u32,
    /// `created`, `updated`, `unchanged` or `none`.
    pub summary: &'static str,
}

/// Reads Picket's comments on the PR, plans from `input` (its `existing` is replaced by what the
/// provider has now) and posts what the plan says, except the check. Errors: the first provider
/// error; what was posted before it stays, and running again completes the rest.
pub async fn post_comments(
    client: &dyn FeedbackClient,
    target: &PullRequestTarget,
    mut input: FeedbackInput,
) -> Result<CommentsPosted> {
    let repo = &target.repo;
    input.existing = client
        .find_comments(repo, target.number, MARKER_PREFIX)
        .await?
        .into_iter()
        .filter(|c| c.author == target.bot_login)
        .map(|c| ExistingComment {
            comment_id: c.id,
            thread_id: c.thread_id,
            body: c.body,
            resolved: c.resolved,
        })
        .collect();
    let planned = plan_feedback(&input);

    let inline: Vec<InlineComment> = planned
        .post
        .iter()
        .map(|c| InlineComment {
            path: c.path.clone(),
            line: c.line,
            body: c.body.clone(),
        })
        .collect();
    let posted = client
        .post_inline_comments(repo, target.number, &target.head_sha, &inline)
        .await?;

    let mut resolved = 0;
    for t in &planned.resolve {
        // A conversation comment has no thread: nothing to resolve.
        if let Some(thread) = &t.thread_id {
            client.resolve_thread(repo, target.number, thread).await?;
            resolved += 1;
        }
    }

    let summary = match &planned.summary.action {
        SummaryAction::Create => {
            client
                .upsert_conversation_comment(repo, target.number, None, &planned.summary.body)
                .await?;
            "created"
        }
        SummaryAction::Update { comment_id } => {
            client
                .upsert_conversation_comment(
                    repo,
                    target.number,
                    Some(comment_id),
                    &planned.summary.body,
                )
                .await?;
            "updated"
        }
        SummaryAction::Unchanged { .. } => "unchanged",
        SummaryAction::None => "none",
    };
    Ok(CommentsPosted {
        comments_posted: u32::try_from(posted.len()).unwrap_or(u32::MAX),
        threads_resolved: resolved,
        summary,
        plan: planned,
    })
}

/// The completed check of a plan: `failure` only for a new Block finding of a result that is not
/// late, with the plan's title, Markdown summary and text, and its annotations (the client sends
/// them 50 per request). `details_url`: where "Details" points (the scan in Picket).
pub fn check_update(check: &plan::CheckPlan, details_url: Option<String>) -> CheckUpdate {
    CheckUpdate {
        status: CheckStatus::Completed,
        conclusion: Some(match check.conclusion {
            plan::CheckConclusion::Success => CheckConclusion::Success,
            plan::CheckConclusion::Failure => CheckConclusion::Failure,
        }),
        output: Some(CheckOutput {
            title: check.title.clone(),
            summary: check.summary.clone(),
            text: check.text.clone(),
            annotations: check
                .annotations
                .iter()
                .map(|a| Annotation {
                    path: a.path.clone(),
                    start_line: a.start_line,
                    end_line: a.end_line,
                    level: match a.level {
                        plan::AnnotationLevel::Warning => AnnotationLevel::Warning,
                        plan::AnnotationLevel::Failure => AnnotationLevel::Failure,
                    },
                    title: a.title.clone(),
                    message: a.message.clone(),
                })
                .collect(),
        }),
        details_url,
    }
}
