//! [`GitHubFeedback`]: what one scan posts on its pull request, with the installation token
//! minted for that scan.

use super::policy::{self, MAX_OUTPUT_CHARS};
use super::transport::{Cred, Http};
use super::ClientOptions;
use crate::error::{ErrorCode, VcsError};
use crate::provider::{
    Annotation, AnnotationLevel, CheckConclusion, CheckOutput, CheckStatus, CheckUpdate,
    FeedbackClient, InlineComment, PostedComment, RepoLocator, ScopedCredential,
};
use crate::Result;
use async_trait::async_trait;
use http::Method;
use octocrab::AuthState;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;

/// Annotation `title` limit (`checks/create`: "maximum of 255 characters").
const MAX_ANNOTATION_TITLE: usize = 255;
/// Annotation `message` limit (`checks/create`: "maximum size of 64 KB"); characters here, so
/// kept well below.
const MAX_ANNOTATION_MESSAGE: usize = 16_000;

/// What [`GitHubFeedback::post_inline_comments_reporting`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineOutcome {
    /// The comments posted, in the order they were given.
    pub posted: Vec<PostedComment>,
    /// The comments GitHub refused (a line outside the diff), by index in the input.
    pub refused: Vec<RefusedComment>,
}

/// One inline comment GitHub would not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedComment {
    /// Its index in the comments given.
    pub index: usize,
    /// GitHub's message.
    pub message: String,
}

/// One scan's feedback client. `Debug` shows no credential.
pub struct GitHubFeedback {
    http: Http,
    api_url: String,
}

impl fmt::Debug for GitHubFeedback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubFeedback")
            .field("api_url", &self.api_url)
            .field("api_calls", &self.http.calls())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct IdJson {
    id: u64,
}

#[derive(Deserialize)]
struct IssueCommentJson {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    user: Option<UserJson>,
}

#[derive(Deserialize)]
struct UserJson {
    login: String,
}

fn login(user: Option<UserJson>) -> String {
    user.map(|u| u.login).unwrap_or_default()
}

#[derive(Deserialize)]
struct ReviewCommentJson {
    id: u64,
    #[serde(default)]
    body: String,
    path: String,
    line: Option<u32>,
    original_line: Option<u32>,
    pull_request_review_id: Option<u64>,
    user: Option<UserJson>,
}

/// A review comment's thread, from GraphQL.
#[derive(Debug, Clone)]
struct Thread {
    id: String,
    resolved: bool,
}

const THREADS_QUERY: &str =
    "query($owner: String!, $name: String!, $number: Int!, $cursor: String) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviewThreads(first: 100, after: $cursor) {
        pageInfo { hasNextPage endCursor }
        nodes { id isResolved comments(first: 100) { nodes { databaseId } } }
      }
    }
  }
}";

const RESOLVE_MUTATION: &str = "mutation($threadId: ID!) {
  resolveReviewThread(input: { threadId: $threadId }) { thread { id isResolved } }
}";

#[derive(Deserialize)]
struct ThreadsData {
    repository: Option<ThreadsRepo>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadsRepo {
    pull_request: Option<ThreadsPull>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadsPull {
    review_threads: ThreadConnection,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadConnection {
    page_info: PageInfo,
    nodes: Vec<ThreadNode>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadNode {
    id: String,
    is_resolved: bool,
    comments: CommentConnection,
}
#[derive(Deserialize)]
struct CommentConnection {
    nodes: Vec<CommentNode>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentNode {
    database_id: Option<u64>,
}

fn status_str(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Queued => "queued",
        CheckStatus::InProgress => "in_progress",
        CheckStatus::Completed => "completed",
    }
}

fn conclusion_str(c: CheckConclusion) -> &'static str {
    match c {
        CheckConclusion::Success => "success",
        CheckConclusion::Failure => "failure",
        CheckConclusion::Neutral => "neutral",
        CheckConclusion::Cancelled => "cancelled",
    }
}

fn annotation_json(a: &Annotation) -> Value {
    let level = match a.level {
        AnnotationLevel::Notice => "notice",
        AnnotationLevel::Warning => "warning",
        AnnotationLevel::Failure => "failure",
    };
    let mut v = json!({
        "path": a.path,
        "start_line": a.start_line.max(1),
        "end_line": a.end_line.max(a.start_line).max(1),
        "annotation_level": level,
        "message": policy::truncate_chars(&a.message, MAX_ANNOTATION_MESSAGE),
    });
    if !a.title.is_empty() {
        v["title"] = json!(a
            .title
            .chars()
            .take(MAX_ANNOTATION_TITLE)
            .collect::<String>());
    }
    v
}

/// A check run's `output` with one chunk of annotations; summary and text cut to 65,535
/// characters.
fn output_json(output: &CheckOutput, annotations: &[Annotation]) -> Value {
    let mut v = json!({
        "title": output.title,
        "summary": policy::truncate_chars(&output.summary, MAX_OUTPUT_CHARS),
    });
    if let Some(text) = &output.text {
        v["text"] = json!(policy::truncate_chars(text, MAX_OUTPUT_CHARS));
    }
    if !annotations.is_empty() {
        v["annotations"] = annotations.iter().map(annotation_json).collect();
    }
    v
}

/// The request bodies that bring a check to `update`: the first carries status, conclusion,
/// details URL and the first 50 annotations; each further one carries the output with the next
/// 50 (GitHub appends annotations).
pub(crate) fn check_bodies(first: Value, update: &CheckUpdate) -> Vec<Value> {
    let mut head = first;
    head["status"] = json!(status_str(update.status));
    if let Some(c) = update.conclusion {
        head["conclusion"] = json!(conclusion_str(c));
    }
    if let Some(url) = &update.details_url {
        head["details_url"] = json!(url);
    }
    let Some(output) = &update.output else {
        return vec![head];
    };
    let chunks = policy::annotation_chunks(&output.annotations);
    let mut bodies = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        if i == 0 {
            head["output"] = output_json(output, chunk);
            bodies.push(head.clone());
        } else {
            bodies.push(json!({ "output": output_json(output, chunk) }));
        }
    }
    bodies
}

fn split_name(full_name: &str) -> Result<(&str, &str)> {
    full_name.split_once('/').ok_or_else(|| {
        VcsError::new(
            ErrorCode::BadConfig,
            format!("repository name {full_name:?} is not owner/name"),
        )
    })
}

impl GitHubFeedback {
    /// A client posting with `credential` (an installation token minted for this scan) at
    /// `options.api_url`. Errors: [`ErrorCode::BadConfig`] for an unusable URL or CA certificate.
    pub fn new(credential: &ScopedCredential, options: &ClientOptions) -> Result<GitHubFeedback> {
        Ok(GitHubFeedback {
            http: Http::new(
                options,
                AuthState::AccessToken {
                    token: credential.secret.clone(),
                },
            )?,
            api_url: options.api_url.clone(),
        })
    }

    /// Every page of a listing (`per_page=100`).
    async fn all_pages<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        self.http.all_pages(&Cred::Own, path).await
    }

    /// Review comment database id → its thread (GraphQL `pullRequest.reviewThreads`).
    async fn threads(&self, repo: &RepoLocator, number: u64) -> Result<HashMap<u64, Thread>> {
        let (owner, name) = split_name(&repo.full_name)?;
        let mut map = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let data: ThreadsData = self
                .http
                .graphql(
                    &Cred::Own,
                    THREADS_QUERY,
                    json!({ "owner": owner, "name": name, "number": number, "cursor": cursor }),
                )
                .await?;
            let Some(threads) = data
                .repository
                .and_then(|r| r.pull_request)
                .map(|p| p.review_threads)
            else {
                return Err(VcsError::new(
                    ErrorCode::NotFound,
                    format!("pull request #{number} not found in GraphQL"),
                ));
            };
            for node in threads.nodes {
                let thread = Thread {
                    id: node.id,
                    resolved: node.is_resolved,
                };
                for c in node.comments.nodes {
                    if let Some(id) = c.database_id {
                        map.insert(id, thread.clone());
                    }
                }
            }
            match (
                threads.page_info.has_next_page,
                threads.page_info.end_cursor,
            ) {
                (true, Some(next)) => cursor = Some(next),
                _ => return Ok(map),
            }
        }
    }

    fn review_posted(c: ReviewCommentJson, threads: &HashMap<u64, Thread>) -> PostedComment {
        let thread = threads.get(&c.id);
        PostedComment {
            id: c.id.to_string(),
            author: login(c.user),
            thread_id: thread.map(|t| t.id.clone()),
            body: c.body,
            path: Some(c.path),
            line: c.line.or(c.original_line),
            resolved: thread.is_some_and(|t| t.resolved),
        }
    }

    async fn create_issue_comment(
        &self,
        repo: &RepoLocator,
        number: u64,
        body: &str,
    ) -> Result<PostedComment> {
        let path = format!(
            "/repos/{}/issues/{number}/comments",
            policy::repo_path(&repo.full_name)?
        );
        let created: IssueCommentJson = self
            .http
            .json(
                &Cred::Own,
                Method::POST,
                &path,
                Some(&json!({ "body": body })),
            )
            .await?;
        Ok(conversation(created, body))
    }

    /// One review (`POST /repos/{o}/{r}/pulls/{n}/reviews`, event `COMMENT`) with all the
    /// comments. If GitHub refuses it (422: a line outside the diff), each comment is posted on
    /// its own (`POST .../pulls/{n}/comments`) and the ones refused are left out of the answer
    /// and reported in [`InlineOutcome::refused`]. `posted` follows `comments`' order, with thread ids.
    pub async fn post_inline_comments_reporting(
        &self,
        repo: &RepoLocator,
        number: u64,
        commit_sha: &str,
        comments: &[InlineComment],
    ) -> Result<InlineOutcome> {
        let mut refused = Vec::new();
        if comments.is_empty() {
            return Ok(InlineOutcome {
                posted: Vec::new(),
                refused,
            });
        }
        let repo_path = policy::repo_path(&repo.full_name)?;
        let review_body = json!({
            "commit_id": commit_sha,
            "event": "COMMENT",
            "comments": comments.iter().map(|c| json!({
                "path": c.path,
                "line": c.line,
                "side": "RIGHT",
                "body": c.body,
            })).collect::<Vec<_>>(),
        });
        let posted: Vec<ReviewCommentJson> = match self
            .http
            .json::<IdJson>(
                &Cred::Own,
                Method::POST,
                &format!("/repos/{repo_path}/pulls/{number}/reviews"),
                Some(&review_body),
            )
            .await
        {
            Ok(review) => {
                let mut listed: Vec<Option<ReviewCommentJson>> = self
                    .all_pages::<ReviewCommentJson>(&format!(
                        "/repos/{repo_path}/pulls/{number}/comments"
                    ))
                    .await?
                    .into_iter()
                    .filter(|c| c.pull_request_review_id.is_none_or(|r| r == review.id))
                    .map(Some)
                    .collect();
                // Match each comment sent with one listed (same path, line and body), in order.
                let mut out = Vec::with_capacity(comments.len());
                for sent in comments {
                    let slot = listed.iter_mut().find(|l| {
                        l.as_ref().is_some_and(|l| {
                            l.path == sent.path
                                && l.line.or(l.original_line) == Some(sent.line)
                                && l.body == sent.body
                        })
                    });
                    if let Some(c) = slot.and_then(Option::take) {
                        out.push(c);
                    }
                }
                out
            }
            Err(e) if e.code == ErrorCode::Rejected => {
                tracing::info!(
                    message = %e.message,
                    "GitHub refused the review; posting its comments one by one"
                );
                let mut out = Vec::new();
                for (index, c) in comments.iter().enumerate() {
                    let body = json!({
                        "commit_id": commit_sha,
                        "path": c.path,
                        "line": c.line,
                        "side": "RIGHT",
                        "body": c.body,
                    });
                    match self
                        .http
                        .json::<ReviewCommentJson>(
                            &Cred::Own,
                            Method::POST,
                            &format!("/repos/{repo_path}/pulls/{number}/comments"),
                            Some(&body),
                        )
                        .await
                    {
                        Ok(posted) => out.push(posted),
                        Err(e) if e.code == ErrorCode::Rejected => {
                            tracing::warn!(
                                path = %c.path,
                                line = c.line,
                                message = %e.message,
                                "GitHub refused an inline comment; it is left out"
                            );
                            refused.push(RefusedComment {
                                index,
                                message: e.message,
                            });
                        }
                        Err(e) => return Err(e),
                    }
                }
                out
            }
            Err(e) => return Err(e),
        };
        let threads = if posted.is_empty() {
            HashMap::new()
        } else {
            self.threads(repo, number).await?
        };
        Ok(InlineOutcome {
            posted: posted
                .into_iter()
                .map(|c| Self::review_posted(c, &threads))
                .collect(),
            refused,
        })
    }

    /// Sends the check bodies after the first (annotations beyond 50) as PATCHes.
    async fn append(&self, repo: &RepoLocator, check_id: &str, rest: &[Value]) -> Result<()> {
        let path = format!(
            "/repos/{}/check-runs/{}",
            policy::repo_path(&repo.full_name)?,
            policy::segment(check_id)
        );
        for body in rest {
            self.http
                .send(&Cred::Own, Method::PATCH, &path, Some(body))
                .await?;
        }
        Ok(())
    }
}

/// A conversation comment as GitHub answered it; `sent` is the body when the answer has none.
fn conversation(c: IssueCommentJson, sent: &str) -> PostedComment {
    PostedComment {
        id: c.id.to_string(),
        author: login(c.user),
        thread_id: None,
        body: c.body.unwrap_or_else(|| sent.to_owned()),
        path: None,
        line: None,
        resolved: false,
    }
}

#[async_trait]
impl FeedbackClient for GitHubFeedback {
    /// `POST /repos/{o}/{r}/check-runs`, then `PATCH .../check-runs/{id}` per further 50
    /// annotations.
    async fn create_check(
        &self,
        repo: &RepoLocator,
        _number: u64,
        name: &str,
        head_sha: &str,
        update: &CheckUpdate,
    ) -> Result<String> {
        let bodies = check_bodies(json!({ "name": name, "head_sha": head_sha }), update);
        let path = format!("/repos/{}/check-runs", policy::repo_path(&repo.full_name)?);
        let created: IdJson = self
            .http
            .json(&Cred::Own, Method::POST, &path, Some(&bodies[0]))
            .await?;
        let id = created.id.to_string();
        self.append(repo, &id, &bodies[1..]).await?;
        Ok(id)
    }

    /// `PATCH /repos/{o}/{r}/check-runs/{id}`, once per 50 annotations.
    async fn update_check(
        &self,
        repo: &RepoLocator,
        check_id: &str,
        update: &CheckUpdate,
    ) -> Result<()> {
        let bodies = check_bodies(json!({}), update);
        self.append(repo, check_id, &bodies).await
    }

    /// Issue comments and review comments containing `marker`; review comments carry their
    /// GraphQL thread id and resolved state.
    async fn find_comments(
        &self,
        repo: &RepoLocator,
        number: u64,
        marker: &str,
    ) -> Result<Vec<PostedComment>> {
        let repo_path = policy::repo_path(&repo.full_name)?;
        let issue: Vec<IssueCommentJson> = self
            .all_pages(&format!("/repos/{repo_path}/issues/{number}/comments"))
            .await?;
        let mut found: Vec<PostedComment> = issue
            .into_iter()
            .filter(|c| c.body.as_deref().is_some_and(|b| b.contains(marker)))
            .map(|c| conversation(c, ""))
            .collect();
        let review: Vec<ReviewCommentJson> = self
            .all_pages(&format!("/repos/{repo_path}/pulls/{number}/comments"))
            .await?;
        let review: Vec<ReviewCommentJson> = review
            .into_iter()
            .filter(|c| c.body.contains(marker))
            .collect();
        if !review.is_empty() {
            let threads = self.threads(repo, number).await?;
            found.extend(review.into_iter().map(|c| Self::review_posted(c, &threads)));
        }
        Ok(found)
    }

    /// `PATCH /repos/{o}/{r}/issues/comments/{id}`, or (no `existing`, or it was deleted)
    /// `POST /repos/{o}/{r}/issues/{n}/comments`.
    async fn upsert_conversation_comment(
        &self,
        repo: &RepoLocator,
        number: u64,
        existing: Option<&str>,
        body: &str,
    ) -> Result<PostedComment> {
        if let Some(id) = existing {
            let path = format!(
                "/repos/{}/issues/comments/{}",
                policy::repo_path(&repo.full_name)?,
                policy::segment(id)
            );
            match self
                .http
                .json::<IssueCommentJson>(
                    &Cred::Own,
                    Method::PATCH,
                    &path,
                    Some(&json!({ "body": body })),
                )
                .await
            {
                Ok(edited) => return Ok(conversation(edited, body)),
                Err(e) if e.code == ErrorCode::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        self.create_issue_comment(repo, number, body).await
    }

    /// One review with all the comments; see [`GitHubFeedback::post_inline_comments_reporting`].
    /// Comments GitHub refused are left out of the answer (and logged).
    async fn post_inline_comments(
        &self,
        repo: &RepoLocator,
        number: u64,
        commit_sha: &str,
        comments: &[InlineComment],
    ) -> Result<Vec<PostedComment>> {
        let outcome = self
            .post_inline_comments_reporting(repo, number, commit_sha, comments)
            .await?;
        Ok(outcome.posted)
    }

    /// `GET /repos/{o}/{r}/pulls/comments/{id}`; 404 is `None`, and so is a comment whose
    /// `pull_request_url` names another pull request.
    async fn review_comment(
        &self,
        repo: &RepoLocator,
        number: u64,
        comment_id: &str,
    ) -> Result<Option<PostedComment>> {
        #[derive(Deserialize)]
        struct WithPull {
            #[serde(flatten)]
            comment: ReviewCommentJson,
            pull_request_url: String,
        }
        let path = format!(
            "/repos/{}/pulls/comments/{}",
            policy::repo_path(&repo.full_name)?,
            policy::segment(comment_id)
        );
        match self
            .http
            .json::<WithPull>(&Cred::Own, Method::GET, &path, None)
            .await
        {
            Ok(c) => {
                let of_pull = c
                    .pull_request_url
                    .rsplit('/')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok());
                if of_pull != Some(number) {
                    return Ok(None);
                }
                Ok(Some(Self::review_posted(c.comment, &HashMap::new())))
            }
            Err(e) if e.code == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GraphQL `resolveReviewThread`.
    async fn resolve_thread(
        &self,
        _repo: &RepoLocator,
        _number: u64,
        thread_id: &str,
    ) -> Result<()> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Resolved {
            resolve_review_thread: Option<Value>,
        }
        let data: Resolved = self
            .http
            .graphql(
                &Cred::Own,
                RESOLVE_MUTATION,
                json!({ "threadId": thread_id }),
            )
            .await?;
        match data.resolve_review_thread {
            Some(_) => Ok(()),
            None => Err(VcsError::new(
                ErrorCode::BadResponse,
                "resolveReviewThread answered null",
            )),
        }
    }

    /// A review comment (`GET /repos/{o}/{r}/pulls/comments/{id}` finds it) is answered in its
    /// thread: `POST /repos/{o}/{r}/pulls/{n}/comments` with `in_reply_to` (and the parent's
    /// `commit_id` and `path`, which the schema requires). The dedicated
    /// `pulls/create-reply-for-review-comment` operation is not available to GitHub Apps
    /// (`x-github.enabledForGitHubApps: false` in `@octokit/openapi` 23.0.2). Anything else (404)
    /// is a conversation comment: the answer is a new issue comment.
    async fn reply(
        &self,
        repo: &RepoLocator,
        number: u64,
        comment_id: &str,
        body: &str,
    ) -> Result<PostedComment> {
        #[derive(Deserialize)]
        struct Parent {
            id: u64,
            path: String,
            commit_id: String,
        }
        let repo_path = policy::repo_path(&repo.full_name)?;
        let parent = format!(
            "/repos/{repo_path}/pulls/comments/{}",
            policy::segment(comment_id)
        );
        match self
            .http
            .json::<Parent>(&Cred::Own, Method::GET, &parent, None)
            .await
        {
            Ok(parent) => {
                let reply = json!({
                    "body": body,
                    "in_reply_to": parent.id,
                    "commit_id": parent.commit_id,
                    "path": parent.path,
                });
                let c: ReviewCommentJson = self
                    .http
                    .json(
                        &Cred::Own,
                        Method::POST,
                        &format!("/repos/{repo_path}/pulls/{number}/comments"),
                        Some(&reply),
                    )
                    .await?;
                Ok(Self::review_posted(c, &HashMap::new()))
            }
            Err(e) if e.code == ErrorCode::NotFound => {
                self.create_issue_comment(repo, number, body).await
            }
            Err(e) => Err(e),
        }
    }

    fn api_calls(&self) -> u64 {
        self.http.calls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotation(i: u32) -> Annotation {
        Annotation {
            path: format!("src/{i}.rs"),
            start_line: i + 1,
            end_line: i + 1,
            level: AnnotationLevel::Warning,
            title: "t".repeat(300),
            message: format!("finding {i}"),
        }
    }

    #[test]
    fn check_bodies_chunk_annotations_and_truncate() {
        let update = CheckUpdate {
            status: CheckStatus::Completed,
            conclusion: Some(CheckConclusion::Failure),
            output: Some(CheckOutput {
                title: "3 findings".into(),
                summary: "s".repeat(70_000),
                text: None,
                annotations: (0..120).map(annotation).collect(),
            }),
            details_url: Some("https://picket.example/scans/1".into()),
        };
        let bodies = check_bodies(json!({ "name": "picket", "head_sha": "abc" }), &update);
        assert_eq!(bodies.len(), 3);
        assert_eq!(bodies[0]["status"], "completed");
        assert_eq!(bodies[0]["conclusion"], "failure");
        assert_eq!(bodies[0]["name"], "picket");
        assert!(bodies[1].get("status").is_none());
        let counts: Vec<usize> = bodies
            .iter()
            .map(|b| b["output"]["annotations"].as_array().unwrap().len())
            .collect();
        assert_eq!(counts, [50, 50, 20]);
        let paths: Vec<String> = bodies
            .iter()
            .flat_map(|b| b["output"]["annotations"].as_array().unwrap().clone())
            .map(|a| a["path"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            paths,
            (0..120).map(|i| format!("src/{i}.rs")).collect::<Vec<_>>()
        );
        let summary = bodies[0]["output"]["summary"].as_str().unwrap();
        assert!(summary.chars().count() <= MAX_OUTPUT_CHARS);
        assert_eq!(
            bodies[0]["output"]["annotations"][0]["title"]
                .as_str()
                .unwrap()
                .len(),
            MAX_ANNOTATION_TITLE
        );
    }

    #[test]
    fn a_status_change_alone_is_one_body() {
        let update = CheckUpdate {
            status: CheckStatus::InProgress,
            conclusion: None,
            output: None,
            details_url: None,
        };
        let bodies = check_bodies(json!({}), &update);
        assert_eq!(bodies, [json!({ "status": "in_progress" })]);
    }
}
