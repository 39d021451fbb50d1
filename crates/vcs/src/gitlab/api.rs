//! GitLab's REST v4 client: [`GitLab`], a connection's [`SourceProvider`], and
//! [`GitLabFeedback`], a merge request's [`FeedbackClient`].
//!
//! Every request carries the connection's token (`Authorization: Bearer`, which GitLab accepts
//! for personal, group and project access tokens). GitLab has no way to mint a narrower
//! credential for one repository from such a token, so the clone credential of a scan is the
//! connection's token itself (domain.md §5: "clone credential: the token"); its scopes are the
//! limit.
//!
//! What maps to what (GitLab REST API docs, <https://docs.gitlab.com/api/>):
//!
//! | Picket | GitLab |
//! |---|---|
//! | repository | project (`id`; `path_with_namespace`) |
//! | pull request number | merge request `iid` |
//! | check | commit status (`POST /projects/:id/statuses/:sha`, `name` = the check's name) |
//! | inline comment | discussion with a `text` position on the new line |
//! | review thread | discussion (`id`), resolved with `PUT ...?resolved=true` |
//! | conversation comment | merge request note |
//! | write access | project membership at Developer (30) or above |
//!
//! Listings use offset pagination (`page`, `per_page` ≤ 100, the `X-Next-Page` header), ordered by
//! id so that pages are stable.

use crate::client::ClientOptions;
use crate::error::{ErrorCode, VcsError};
use crate::gitlab::{GitLabCredentials, NEEDED_SCOPES};
use crate::provider::{
    CheckConclusion, CheckStatus, CheckUpdate, ConnectionCheck, CredentialScope, FeedbackClient,
    InlineComment, Page, PostedComment, PullRequestState, RepoLocator, Repository,
    ScopedCredential, SourceProvider,
};
use crate::rest::{segment, Auth, Reply, Rest};
use crate::Result;
use async_trait::async_trait;
use http::Method;
use picket_core::Provider;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::fmt;
use time::OffsetDateTime;

/// The provider's name in messages.
const NAME: &str = "GitLab";

/// Developer: the lowest access level that may push (GitLab docs, "Roles and permissions").
pub const WRITE_ACCESS_LEVEL: u32 = 30;

/// A commit status's `description` is kept to this many characters.
pub const MAX_STATUS_DESCRIPTION: usize = 255;

/// A GitLab connection.
pub struct GitLab {
    rest: Rest,
    token: SecretString,
    group: Option<String>,
    options: ClientOptions,
    /// The token's user name, once `GET /user` told it.
    user: tokio::sync::OnceCell<String>,
}

impl fmt::Debug for GitLab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitLab")
            .field("api_url", &self.options.api_url)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct UserJson {
    id: u64,
    username: String,
}

#[derive(Deserialize)]
struct TokenJson {
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    active: Option<bool>,
}

#[derive(Deserialize)]
struct ProjectJson {
    id: u64,
    path_with_namespace: String,
    http_url_to_repo: String,
    /// `null` for a project without commits.
    #[serde(default)]
    default_branch: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    archived: bool,
}

#[derive(Deserialize)]
struct AuthorJson {
    username: String,
}

#[derive(Deserialize)]
struct DiffRefsJson {
    #[serde(default)]
    start_sha: Option<String>,
}

#[derive(Deserialize)]
struct MergeRequestJson {
    iid: u64,
    title: String,
    state: String,
    #[serde(default)]
    draft: bool,
    /// The head commit; `null` while GitLab is still preparing a new merge request.
    #[serde(default)]
    sha: Option<String>,
    source_branch: String,
    target_branch: String,
    source_project_id: Option<u64>,
    target_project_id: u64,
    #[serde(default)]
    author: Option<AuthorJson>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    diff_refs: Option<DiffRefsJson>,
}

#[derive(Deserialize)]
struct VersionJson {
    head_commit_sha: String,
    base_commit_sha: String,
    start_commit_sha: String,
}

#[derive(Deserialize)]
struct PositionJson {
    #[serde(default)]
    new_path: Option<String>,
    #[serde(default)]
    new_line: Option<u32>,
}

#[derive(Deserialize)]
struct NoteJson {
    id: u64,
    body: String,
    author: AuthorJson,
    #[serde(default)]
    system: bool,
    #[serde(default)]
    resolvable: bool,
    #[serde(default)]
    resolved: Option<bool>,
    #[serde(default)]
    position: Option<PositionJson>,
}

#[derive(Deserialize)]
struct DiscussionJson {
    id: String,
    #[serde(default)]
    notes: Vec<NoteJson>,
}

#[derive(Deserialize)]
struct MemberJson {
    access_level: u32,
}

#[derive(Deserialize)]
struct CommitJson {
    id: String,
}

fn parse_time(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| {
        VcsError::new(
            ErrorCode::BadResponse,
            "GitLab sent a time that is not RFC 3339",
        )
    })
}

fn repository(p: ProjectJson) -> Repository {
    Repository {
        id: p.id.to_string(),
        full_name: p.path_with_namespace,
        clone_url: p.http_url_to_repo,
        default_branch: p.default_branch.unwrap_or_else(|| "main".to_owned()),
        private: p.visibility.as_deref() != Some("public"),
        archived: p.archived,
        installation_id: None,
    }
}

fn merge_request_state(mr: MergeRequestJson) -> Result<PullRequestState> {
    Ok(PullRequestState {
        number: mr.iid,
        open: mr.state == "opened",
        draft: mr.draft,
        head_sha: mr.sha.unwrap_or_default(),
        head_ref: mr.source_branch,
        base_ref: mr.target_branch,
        base_sha: mr.diff_refs.and_then(|d| d.start_sha).unwrap_or_default(),
        from_fork: mr.source_project_id != Some(mr.target_project_id),
        title: mr.title,
        author: mr.author.map(|a| a.username),
        updated_at: mr.updated_at.as_deref().map(parse_time).transpose()?,
    })
}

/// `/projects/:id` of a repository: its numeric project id.
fn project_path(repo: &RepoLocator) -> Result<String> {
    if repo.id.is_empty() || !repo.id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VcsError::new(
            ErrorCode::BadConfig,
            format!("{:?} is not a GitLab project id", repo.id),
        ));
    }
    Ok(format!("/projects/{}", repo.id))
}

/// The page behind a listing cursor (`gl1.<page>`); anything else is refused.
fn decode_cursor(cursor: &str) -> Result<u32> {
    cursor
        .strip_prefix("gl1.")
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| VcsError::new(ErrorCode::Rejected, "not a GitLab listing cursor"))
}

fn encode_cursor(page: u32) -> String {
    format!("gl1.{page}")
}

/// The next page GitLab announces (`X-Next-Page`, empty on the last page).
fn next_page(reply: &Reply) -> Option<u32> {
    reply
        .header("x-next-page")
        .and_then(|v| v.trim().parse::<u32>().ok())
}

/// One page of a listing: the items and the next page's cursor.
async fn page_of<T: DeserializeOwned>(
    rest: &Rest,
    path: &str,
    mut query: Vec<(&str, String)>,
    page: u32,
    per_page: u32,
) -> Result<(Vec<T>, Option<u32>)> {
    query.push(("per_page", per_page.clamp(1, 100).to_string()));
    query.push(("page", page.to_string()));
    let reply = rest.send(Method::GET, path, &query, None).await?;
    let next = next_page(&reply).filter(|n| *n > page);
    Ok((reply.json()?, next))
}

/// Every page of a listing, 100 at a time.
async fn all_pages<T: DeserializeOwned>(
    rest: &Rest,
    path: &str,
    query: Vec<(&str, String)>,
) -> Result<Vec<T>> {
    let mut all = Vec::new();
    let mut page = 1;
    loop {
        let (items, next) = page_of::<T>(rest, path, query.clone(), page, 100).await?;
        all.extend(items);
        match next {
            Some(next) => page = next,
            None => return Ok(all),
        }
    }
}

impl GitLab {
    /// A connection at `options.api_url` (gitlab.com: [`DEFAULT_API_URL`](super::DEFAULT_API_URL))
    /// with `credentials`. Errors: [`ErrorCode::BadConfig`] for an unusable API URL or CA.
    pub fn new(credentials: &GitLabCredentials, options: &ClientOptions) -> Result<GitLab> {
        let rest = Rest::new(NAME, options, Auth::Bearer(credentials.token.clone()))?;
        Ok(GitLab {
            rest,
            token: credentials.token.clone(),
            group: credentials
                .group
                .clone()
                .filter(|g| !g.trim().is_empty())
                .map(|g| g.trim().trim_matches('/').to_owned()),
            options: options.clone(),
            user: tokio::sync::OnceCell::new(),
        })
    }

    /// The listing's path and filters: the group's projects with its subgroups', or the token's
    /// memberships.
    fn listing(&self) -> (String, Vec<(&'static str, String)>) {
        let mut query = vec![("order_by", "id".to_owned()), ("sort", "asc".to_owned())];
        match &self.group {
            Some(group) => {
                query.push(("include_subgroups", "true".to_owned()));
                (format!("/groups/{}/projects", segment(group)), query)
            }
            None => {
                query.push(("membership", "true".to_owned()));
                ("/projects".to_owned(), query)
            }
        }
    }

    /// The hook URL Picket's receiver listens on, registered on the connection's group (when it
    /// has one) or on each project: `POST /groups/:id/hooks` or `POST /projects/:id/hooks` with
    /// merge request and note events, SSL verification on, and `token` = the webhook secret. A
    /// hook already there for `url` is updated in place (`PUT .../hooks/:hook_id`), so calling
    /// this again is safe. Returns the hooks' ids.
    ///
    /// A signing token (`whsec_...`) is not among the hook attributes GitLab's API documents
    /// ("Project webhooks": `token` only): a connection holding one is refused with
    /// [`ErrorCode::BadConfig`] and its admin sets the hook's signing token in GitLab's UI.
    pub async fn ensure_hooks(
        &self,
        url: &str,
        secret: &SecretString,
        projects: &[RepoLocator],
    ) -> Result<Vec<String>> {
        if secrecy::ExposeSecret::expose_secret(secret)
            .starts_with(crate::gitlab::webhook::SIGNING_SECRET_PREFIX)
        {
            return Err(VcsError::new(
                ErrorCode::BadConfig,
                "the connection's webhook secret is a signing token, which GitLab's API cannot \
                 set: add the hook's signing token in GitLab's webhook settings",
            ));
        }
        let targets: Vec<String> = match &self.group {
            Some(group) => vec![format!("/groups/{}", segment(group))],
            None => projects
                .iter()
                .map(project_path)
                .collect::<Result<Vec<_>>>()?,
        };
        let body = json!({
            "url": url,
            "token": secrecy::ExposeSecret::expose_secret(secret),
            "merge_requests_events": true,
            "note_events": true,
            "push_events": false,
            "enable_ssl_verification": true,
        });
        #[derive(Deserialize)]
        struct HookJson {
            id: u64,
            url: String,
        }
        let mut ids = Vec::with_capacity(targets.len());
        for target in targets {
            let hooks: Vec<HookJson> =
                all_pages(&self.rest, &format!("{target}/hooks"), Vec::new()).await?;
            let hook: HookJson = match hooks.into_iter().find(|h| h.url == url) {
                Some(existing) => {
                    self.rest
                        .json(
                            Method::PUT,
                            &format!("{target}/hooks/{}", existing.id),
                            &[],
                            Some(&body),
                        )
                        .await?
                }
                None => {
                    self.rest
                        .json(Method::POST, &format!("{target}/hooks"), &[], Some(&body))
                        .await?
                }
            };
            ids.push(hook.id.to_string());
        }
        Ok(ids)
    }

    async fn username(&self) -> Result<String> {
        self.user
            .get_or_try_init(|| async {
                let me: UserJson = self.rest.json(Method::GET, "/user", &[], None).await?;
                Ok::<_, VcsError>(me.username)
            })
            .await
            .cloned()
    }
}

#[async_trait]
impl SourceProvider for GitLab {
    fn provider(&self) -> Provider {
        Provider::Gitlab
    }

    /// `GET /user` (the identity) and `GET /personal_access_tokens/self` (its scopes; personal,
    /// group and project access tokens all answer it). An instance too old for the latter (404)
    /// is not held against the token: the scopes are then unknown, not missing.
    async fn check(&self) -> Result<ConnectionCheck> {
        let me: UserJson = self.rest.json(Method::GET, "/user", &[], None).await?;
        let _ = self.user.set(me.username.clone());
        let mut missing = Vec::new();
        match self
            .rest
            .json::<TokenJson>(Method::GET, "/personal_access_tokens/self", &[], None)
            .await
        {
            Ok(token) => {
                if token.active == Some(false) {
                    return Err(VcsError::new(
                        ErrorCode::Unauthorized,
                        "GitLab: the token is not active",
                    ));
                }
                for scope in NEEDED_SCOPES {
                    // `api` grants everything `read_repository` does.
                    let has = token.scopes.iter().any(|s| s == scope)
                        || (*scope == "read_repository" && token.scopes.iter().any(|s| s == "api"));
                    if !has {
                        missing.push((*scope).to_owned());
                    }
                }
            }
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return Err(e),
        }
        let _ = me.id;
        Ok(ConnectionCheck {
            identity: me.username,
            installations: Vec::new(),
            missing_permissions: missing,
            missing_events: Vec::new(),
        })
    }

    async fn list_repositories(
        &self,
        cursor: Option<&str>,
        per_page: u32,
    ) -> Result<Page<Repository>> {
        let page = cursor.map(decode_cursor).transpose()?.unwrap_or(1);
        let (path, query) = self.listing();
        let (items, next) =
            page_of::<ProjectJson>(&self.rest, &path, query, page, per_page).await?;
        Ok(Page {
            items: items.into_iter().map(repository).collect(),
            next: next.map(encode_cursor),
        })
    }

    /// `GET /projects/:id`.
    async fn repository(&self, repo: &RepoLocator) -> Result<Repository> {
        let project: ProjectJson = self
            .rest
            .json(Method::GET, &project_path(repo)?, &[], None)
            .await?;
        Ok(repository(project))
    }

    /// The connection's token (GitLab cannot mint a narrower one): clone over HTTPS as user
    /// `oauth2`, which GitLab accepts for every kind of token. No expiry is known here.
    async fn mint_credential(
        &self,
        _repo: &RepoLocator,
        _scope: CredentialScope,
    ) -> Result<ScopedCredential> {
        Ok(ScopedCredential {
            username: "oauth2".to_owned(),
            secret: self.token.clone(),
            expires_at: None,
        })
    }

    async fn feedback_client(&self, _repo: &RepoLocator) -> Result<Box<dyn FeedbackClient>> {
        Ok(Box::new(GitLabFeedback {
            rest: self.rest.clone(),
        }))
    }

    /// `GET /projects/:id/repository/merge_base?refs[]=<base_ref>&refs[]=<head_sha>`.
    async fn merge_base(
        &self,
        repo: &RepoLocator,
        base_ref: &str,
        head_sha: &str,
    ) -> Result<String> {
        let commit: CommitJson = self
            .rest
            .json(
                Method::GET,
                &format!("{}/repository/merge_base", project_path(repo)?),
                &[
                    ("refs[]", base_ref.to_owned()),
                    ("refs[]", head_sha.to_owned()),
                ],
                None,
            )
            .await?;
        Ok(commit.id)
    }

    /// `GET /projects/:id/merge_requests/:iid`. The base SHA is the version's `start_sha` (the
    /// target branch's tip when the version was made).
    async fn pull_request(&self, repo: &RepoLocator, number: u64) -> Result<PullRequestState> {
        let mr: MergeRequestJson = self
            .rest
            .json(
                Method::GET,
                &format!("{}/merge_requests/{number}", project_path(repo)?),
                &[],
                None,
            )
            .await?;
        merge_request_state(mr)
    }

    /// `GET /projects/:id/merge_requests?state=opened`, 100 per page.
    async fn open_pull_requests(
        &self,
        repo: &RepoLocator,
        cursor: Option<&str>,
    ) -> Result<Page<PullRequestState>> {
        let page = cursor.map(decode_cursor).transpose()?.unwrap_or(1);
        let (items, next) = page_of::<MergeRequestJson>(
            &self.rest,
            &format!("{}/merge_requests", project_path(repo)?),
            vec![
                ("state", "opened".to_owned()),
                ("order_by", "created_at".to_owned()),
                ("sort", "asc".to_owned()),
            ],
            page,
            100,
        )
        .await?;
        Ok(Page {
            items: items
                .into_iter()
                .map(merge_request_state)
                .collect::<Result<_>>()?,
            next: next.map(encode_cursor),
        })
    }

    /// `GET /users?username=<login>`, then `GET /projects/:id/members/all/:user_id` (inherited
    /// memberships count): Developer or above. No such user, or not a member: `false`.
    async fn has_write_access(&self, repo: &RepoLocator, login: &str) -> Result<bool> {
        let users: Vec<UserJson> = self
            .rest
            .json(
                Method::GET,
                "/users",
                &[("username", login.to_owned())],
                None,
            )
            .await?;
        let Some(user) = users
            .into_iter()
            .find(|u| u.username.eq_ignore_ascii_case(login))
        else {
            return Ok(false);
        };
        match self
            .rest
            .json::<MemberJson>(
                Method::GET,
                &format!("{}/members/all/{}", project_path(repo)?, user.id),
                &[],
                None,
            )
            .await
        {
            Ok(member) => Ok(member.access_level >= WRITE_ACCESS_LEVEL),
            Err(e) if e.code == ErrorCode::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The token's user name (`GET /user`, asked once): a group or project access token posts as
    /// its bot user.
    async fn bot_login(&self) -> Result<String> {
        self.username().await
    }

    /// [`GitLab::ensure_hooks`].
    async fn ensure_webhooks(
        &self,
        url: &str,
        secret: &SecretString,
        repos: &[RepoLocator],
    ) -> Result<Vec<String>> {
        self.ensure_hooks(url, secret, repos).await
    }

    fn api_calls(&self) -> u64 {
        self.rest.calls()
    }
}

/// One merge request's feedback client. It carries the connection's token (GitLab has no
/// narrower one to mint).
#[derive(Debug)]
pub struct GitLabFeedback {
    rest: Rest,
}

impl GitLabFeedback {
    /// A client sending `credential` (the connection's token) to `options.api_url`.
    pub fn new(credential: &ScopedCredential, options: &ClientOptions) -> Result<GitLabFeedback> {
        Ok(GitLabFeedback {
            rest: Rest::new(NAME, options, Auth::Bearer(credential.secret.clone()))?,
        })
    }

    fn merge_request(repo: &RepoLocator, number: u64) -> Result<String> {
        Ok(format!("{}/merge_requests/{number}", project_path(repo)?))
    }

    /// `POST /projects/:id/statuses/:sha`. GitLab refuses to move a status to the state it is
    /// already in ("Cannot transition status via :run from :running"): that answer is success.
    async fn set_status(
        &self,
        repo: &RepoLocator,
        sha: &str,
        name: &str,
        update: &CheckUpdate,
    ) -> Result<()> {
        let state = match (update.status, update.conclusion) {
            (CheckStatus::Queued, _) => "pending",
            (CheckStatus::InProgress, _) => "running",
            (CheckStatus::Completed, Some(CheckConclusion::Failure)) => "failed",
            (
                CheckStatus::Completed,
                Some(CheckConclusion::Neutral | CheckConclusion::Cancelled),
            ) => "canceled",
            (CheckStatus::Completed, Some(CheckConclusion::Success) | None) => "success",
        };
        let mut body = json!({ "state": state, "name": name });
        if let Some(output) = &update.output {
            let description: String = output.title.chars().take(MAX_STATUS_DESCRIPTION).collect();
            body["description"] = Value::String(description);
        }
        if let Some(url) = &update.details_url {
            body["target_url"] = Value::String(url.clone());
        }
        match self
            .rest
            .send(
                Method::POST,
                &format!("{}/statuses/{}", project_path(repo)?, segment(sha)),
                &[],
                Some(&body),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::Rejected && e.message.contains("Cannot transition") => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn discussions(&self, repo: &RepoLocator, number: u64) -> Result<Vec<DiscussionJson>> {
        all_pages(
            &self.rest,
            &format!("{}/discussions", Self::merge_request(repo, number)?),
            Vec::new(),
        )
        .await
    }
}

/// A note as Picket sees it: its discussion is its thread when it can be resolved.
fn posted(note: NoteJson, discussion: &str) -> PostedComment {
    let (path, line) = match note.position {
        Some(p) => (p.new_path, p.new_line),
        None => (None, None),
    };
    PostedComment {
        id: note.id.to_string(),
        author: note.author.username,
        thread_id: note.resolvable.then(|| discussion.to_owned()),
        body: note.body,
        path,
        line,
        resolved: note.resolved.unwrap_or(false),
    }
}

/// The check id Picket keeps for a commit status: `<sha>:<name>` (a status is named by both).
fn check_id(sha: &str, name: &str) -> String {
    format!("{sha}:{name}")
}

#[async_trait]
impl FeedbackClient for GitLabFeedback {
    /// A commit status named `name` on `head_sha`; its id is `<sha>:<name>`.
    async fn create_check(
        &self,
        repo: &RepoLocator,
        _number: u64,
        name: &str,
        head_sha: &str,
        update: &CheckUpdate,
    ) -> Result<String> {
        self.set_status(repo, head_sha, name, update).await?;
        Ok(check_id(head_sha, name))
    }

    /// Sets the status again (GitLab keeps the newest per commit and name). Annotations have no
    /// place on a commit status: the discussions carry the lines.
    async fn update_check(
        &self,
        repo: &RepoLocator,
        check_id: &str,
        update: &CheckUpdate,
    ) -> Result<()> {
        let (sha, name) = check_id.split_once(':').ok_or_else(|| {
            VcsError::new(
                ErrorCode::BadConfig,
                "not a GitLab commit status id (`<sha>:<name>`)",
            )
        })?;
        self.set_status(repo, sha, name, update).await
    }

    /// Every note of the merge request's discussions (`GET .../discussions`, all pages) whose
    /// body contains `marker`; system notes are skipped.
    async fn find_comments(
        &self,
        repo: &RepoLocator,
        number: u64,
        marker: &str,
    ) -> Result<Vec<PostedComment>> {
        let mut found = Vec::new();
        for discussion in self.discussions(repo, number).await? {
            for note in discussion.notes {
                if !note.system && note.body.contains(marker) {
                    found.push(posted(note, &discussion.id));
                }
            }
        }
        Ok(found)
    }

    /// `PUT .../merge_requests/:iid/notes/:note_id`, or (no `existing`, or it was deleted)
    /// `POST .../merge_requests/:iid/notes`.
    async fn upsert_conversation_comment(
        &self,
        repo: &RepoLocator,
        number: u64,
        existing: Option<&str>,
        body: &str,
    ) -> Result<PostedComment> {
        let notes = format!("{}/notes", Self::merge_request(repo, number)?);
        if let Some(id) = existing {
            match self
                .rest
                .json::<NoteJson>(
                    Method::PUT,
                    &format!("{notes}/{}", segment(id)),
                    &[],
                    Some(&json!({ "body": body })),
                )
                .await
            {
                Ok(note) => return Ok(posted(note, "")),
                Err(e) if e.code == ErrorCode::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let note: NoteJson = self
            .rest
            .json(Method::POST, &notes, &[], Some(&json!({ "body": body })))
            .await?;
        Ok(posted(note, ""))
    }

    /// One discussion per comment (`POST .../discussions`) with a `text` position on the new
    /// line, against the merge request version whose head is `commit_sha` (its base, start and
    /// head SHAs, `GET .../versions`). A comment GitLab refuses (400: a line outside the diff)
    /// is left out and logged. No version of that head yet (GitLab prepares the diff
    /// asynchronously): [`ErrorCode::Unavailable`], to try again later.
    async fn post_inline_comments(
        &self,
        repo: &RepoLocator,
        number: u64,
        commit_sha: &str,
        comments: &[InlineComment],
    ) -> Result<Vec<PostedComment>> {
        if comments.is_empty() {
            return Ok(Vec::new());
        }
        let mr = Self::merge_request(repo, number)?;
        let versions: Vec<VersionJson> =
            all_pages(&self.rest, &format!("{mr}/versions"), Vec::new()).await?;
        let version = versions
            .into_iter()
            .find(|v| v.head_commit_sha.eq_ignore_ascii_case(commit_sha))
            .ok_or_else(|| {
                VcsError::new(
                    ErrorCode::Unavailable,
                    "GitLab: the merge request has no diff version of this commit yet",
                )
            })?;
        let discussions = format!("{mr}/discussions");
        crate::feedback::post_each(NAME, comments, |c| {
            let body = json!({
                "body": c.body,
                "position": {
                    "position_type": "text",
                    "base_sha": version.base_commit_sha,
                    "start_sha": version.start_commit_sha,
                    "head_sha": version.head_commit_sha,
                    "old_path": c.path,
                    "new_path": c.path,
                    "new_line": c.line,
                },
            });
            let discussions = &discussions;
            async move {
                let mut discussion: DiscussionJson = self
                    .rest
                    .json(Method::POST, discussions, &[], Some(&body))
                    .await?;
                if discussion.notes.is_empty() {
                    return Err(VcsError::new(
                        ErrorCode::BadResponse,
                        "GitLab answered a new discussion without its note",
                    ));
                }
                let note = discussion.notes.remove(0);
                Ok(Some(posted(note, &discussion.id)))
            }
        })
        .await
    }

    /// The first note of discussion `comment_id` (a reply's `in_reply_to` is its discussion):
    /// `GET .../merge_requests/:iid/discussions/:id`; `None` when it does not exist on this
    /// merge request.
    async fn review_comment(
        &self,
        repo: &RepoLocator,
        number: u64,
        comment_id: &str,
    ) -> Result<Option<PostedComment>> {
        match self
            .rest
            .json::<DiscussionJson>(
                Method::GET,
                &format!(
                    "{}/discussions/{}",
                    Self::merge_request(repo, number)?,
                    segment(comment_id)
                ),
                &[],
                None,
            )
            .await
        {
            Ok(d) => {
                let id = d.id;
                Ok(d.notes.into_iter().next().map(|n| {
                    let mut c = posted(n, &id);
                    c.thread_id = None;
                    c.resolved = false;
                    c
                }))
            }
            Err(e) if e.code == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT .../merge_requests/:iid/discussions/:discussion_id?resolved=true`.
    async fn resolve_thread(&self, repo: &RepoLocator, number: u64, thread_id: &str) -> Result<()> {
        self.rest
            .send(
                Method::PUT,
                &format!(
                    "{}/discussions/{}",
                    Self::merge_request(repo, number)?,
                    segment(thread_id)
                ),
                &[("resolved", "true".to_owned())],
                None,
            )
            .await
            .map(|_| ())
    }

    /// A note in discussion `comment_id` (`POST .../discussions/:id/notes`).
    async fn reply(
        &self,
        repo: &RepoLocator,
        number: u64,
        comment_id: &str,
        body: &str,
    ) -> Result<PostedComment> {
        let note: NoteJson = self
            .rest
            .json(
                Method::POST,
                &format!(
                    "{}/discussions/{}/notes",
                    Self::merge_request(repo, number)?,
                    segment(comment_id)
                ),
                &[],
                Some(&json!({ "body": body })),
            )
            .await?;
        Ok(posted(note, comment_id))
    }

    fn api_calls(&self) -> u64 {
        self.rest.calls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_checked() {
        assert_eq!(decode_cursor(&encode_cursor(7)).unwrap(), 7);
        for bad in ["", "7", "gl1.", "gl1.0", "gl1.x", "r1.0.1"] {
            assert_eq!(decode_cursor(bad).unwrap_err().code, ErrorCode::Rejected);
        }
    }

    #[test]
    fn a_project_id_is_numeric() {
        let repo = |id: &str| RepoLocator {
            id: id.into(),
            full_name: "acme/web".into(),
            installation_id: None,
        };
        assert_eq!(project_path(&repo("14")).unwrap(), "/projects/14");
        for bad in ["", "acme/web", "14/../1"] {
            assert_eq!(
                project_path(&repo(bad)).unwrap_err().code,
                ErrorCode::BadConfig
            );
        }
    }
}
