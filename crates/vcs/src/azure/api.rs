//! Azure DevOps Services' REST client: [`Azure`], a connection's [`SourceProvider`], and
//! [`AzureFeedback`], a pull request's [`FeedbackClient`].
//!
//! Every request carries the connection's personal access token as the password of HTTP Basic
//! authentication (user [`CLONE_USERNAME`]; Azure ignores the user name). Azure DevOps cannot
//! mint a narrower credential from a PAT, so the clone credential of a scan is the PAT itself
//! (domain.md §5: "clone credential: the PAT"); its scopes are the limit.
//!
//! The API root is the connection's base URL, `https://dev.azure.com/{organization}`; paths
//! below it are the route templates of Azure's REST clients with the project (the first segment
//! of a repository's `full_name`, `project/repo`) and the repository GUID filled in. Every
//! request carries the `api-version` that the route table of the pinned npm
//! `azure-devops-extension-api` 5.276.0 declares for its route ([`api_version`]); the Azure
//! DevOps test server refuses any other.
//!
//! What maps to what (Azure DevOps REST API reference,
//! <https://learn.microsoft.com/rest/api/azure/devops/git/>):
//!
//! | Picket | Azure DevOps |
//! |---|---|
//! | repository | Git repository of the connection's project (`id`, a GUID; `{project}/{name}`) |
//! | pull request number | `pullRequestId` |
//! | head / base | `lastMergeSourceCommit` / `lastMergeTargetCommit` |
//! | check | pull request status (`POST .../pullRequests/{id}/statuses`, `context {name, genre: "picket"}`) |
//! | inline comment | thread with a `threadContext` on the right-hand file, anchored to the iteration of the head |
//! | review thread | that thread (`id`), resolved with `PATCH .../threads/{id} {status: fixed}` |
//! | conversation comment | thread without `threadContext`, status `closed` |
//! | comment id | `{threadId}` for a thread's first comment, `{threadId}/{commentId}` for a reply |
//! | write access | a push to the repository by that user in the last [`WRITE_EVIDENCE_DAYS`] days |
//! | bot login | the token owner's sign-in name (connection data) |
//!
//! Listings: repositories come all at once (Azure does not page them; the cursor `az1.<offset>`
//! pages the answer here), pull requests and pushes by `$top`/`$skip` (cursor `az1.<skip>`).

use crate::azure::AzureCredentials;
use crate::client::ClientOptions;
use crate::error::{ErrorCode, VcsError};
use crate::provider::{
    CheckConclusion, CheckStatus, CheckUpdate, ConnectionCheck, CredentialScope, FeedbackClient,
    InlineComment, Page, PostedComment, PullRequestState, RepoLocator, Repository,
    ScopedCredential, SourceProvider,
};
use crate::rest::{api_root, segment, Auth, Reply, Rest};
use crate::Result;
use async_trait::async_trait;
use http::Method;
use picket_core::Provider;
use secrecy::{ExposeSecret, SecretString};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;

/// The provider's name in messages.
const NAME: &str = "Azure DevOps";

/// The user name sent with the PAT (REST and git over HTTPS; Azure ignores it).
pub const CLONE_USERNAME: &str = "picket";

/// `context.genre` of the pull request statuses Picket posts (`context.name` is the check's name).
pub const STATUS_GENRE: &str = "picket";

/// A status's `description` is kept to this many characters.
pub const MAX_STATUS_DESCRIPTION: usize = 255;

/// How far back a push counts as evidence of write access ([`SourceProvider::has_write_access`]).
pub const WRITE_EVIDENCE_DAYS: i64 = 90;

/// At most this many pages of 100 pushes are read for [`SourceProvider::has_write_access`].
pub const MAX_PUSH_PAGES: u32 = 10;

/// Pull requests per page of [`SourceProvider::open_pull_requests`].
const PULL_REQUESTS_PER_PAGE: u32 = 100;

/// The `api-version` of each route Picket calls: what the pinned route table (npm
/// `azure-devops-extension-api` 5.276.0: `Git/GitClient.js`, `Locations/LocationsClient.js`,
/// `ServiceHooks/ServiceHooksClient.js`) declares for that method and template. They are the
/// `7.2` previews Azure DevOps Services serves today; Azure deactivates a preview version 12
/// weeks after its release version ships ("REST API versioning"), so these move with the pin.
pub mod api_version {
    /// `GET _apis/ConnectionData`.
    pub const CONNECTION_DATA: &str = "7.2-preview.1";
    /// `GET {project}/_apis/git/Repositories/{repositoryId}`.
    pub const REPOSITORIES: &str = "7.2-preview.2";
    /// `GET {project}/_apis/git/repositories/{repositoryId}/refs/{*filter}`.
    pub const REFS: &str = "7.2-preview.2";
    /// `GET {project}/_apis/git/repositories/{repositoryNameOrId}/commits/{commitId}/mergeBases`.
    pub const MERGE_BASES: &str = "7.2-preview.1";
    /// `GET {project}/_apis/git/repositories/{repositoryId}/pullRequests/{pullRequestId}`.
    pub const PULL_REQUESTS: &str = "7.2-preview.2";
    /// `GET .../pullRequests/{pullRequestId}/iterations/{iterationId}`.
    pub const ITERATIONS: &str = "7.2-preview.2";
    /// `GET .../pullRequests/{pullRequestId}/iterations/{iterationId}/changes`.
    pub const ITERATION_CHANGES: &str = "7.2-preview.1";
    /// `GET`/`POST`/`PATCH .../pullRequests/{pullRequestId}/threads/{threadId}`.
    pub const THREADS: &str = "7.2-preview.1";
    /// `POST`/`PATCH .../threads/{threadId}/comments/{commentId}`.
    pub const COMMENTS: &str = "7.2-preview.1";
    /// `POST {project}/_apis/git/repositories/{repositoryId}/pullRequests/{pullRequestId}/statuses/{statusId}`
    /// (`createPullRequestStatus`).
    pub const PULL_REQUEST_STATUSES: &str = "7.2-preview.2";
    /// `GET {project}/_apis/git/repositories/{repositoryId}/pushes/{pushId}`.
    pub const PUSHES: &str = "7.2-preview.3";
    /// `GET`/`POST`/`PUT _apis/hooks/Subscriptions/{subscriptionId}`.
    pub const SUBSCRIPTIONS: &str = "7.2-preview.1";
}

/// The service-hook events Picket subscribes to, with the resource version each is asked in
/// (the comment event needs 2.0: see [`super::webhook`]).
pub const SUBSCRIBED_EVENTS: &[(&str, &str)] = &[
    (super::webhook::PULL_REQUEST_CREATED, "1.0"),
    (super::webhook::PULL_REQUEST_UPDATED, "1.0"),
    (super::webhook::PULL_REQUEST_COMMENTED, "2.0"),
];

/// The transport with Azure's conventions: the api-version on every request, and the sign-in
/// page (203) Azure answers an unaccepted credential with taken for what it is.
#[derive(Debug, Clone)]
struct Api {
    rest: Rest,
}

impl Api {
    async fn send(
        &self,
        method: Method,
        path: &str,
        version: &str,
        mut query: Vec<(&str, String)>,
        body: Option<&Value>,
    ) -> Result<Reply> {
        query.push(("api-version", version.to_owned()));
        let reply = self.rest.send(method, path, &query, body).await?;
        if reply.status == 203 {
            return Err(VcsError {
                code: ErrorCode::Unauthorized,
                status: Some(203),
                message: format!(
                    "{NAME} answered with its sign-in page: the personal access token was not \
                     accepted"
                ),
                retry_after: None,
            });
        }
        Ok(reply)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        version: &str,
        query: Vec<(&str, String)>,
        body: Option<&Value>,
    ) -> Result<T> {
        self.send(method, path, version, query, body).await?.json()
    }

    /// A collection answer's `value`.
    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        version: &str,
        query: Vec<(&str, String)>,
    ) -> Result<Vec<T>> {
        let list: ListJson<T> = self.json(Method::GET, path, version, query, None).await?;
        Ok(list.value)
    }

    fn calls(&self) -> u64 {
        self.rest.calls()
    }
}

/// Azure's collection wrapper, `{"count": n, "value": [...]}`.
#[derive(Deserialize)]
struct ListJson<T> {
    value: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectJson {
    id: String,
    name: String,
    /// `private` or `public` (or the enum's number).
    #[serde(default)]
    visibility: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepositoryJson {
    id: String,
    name: String,
    project: ProjectJson,
    #[serde(default)]
    remote_url: Option<String>,
    /// Absent for a repository without commits.
    #[serde(default)]
    default_branch: Option<String>,
    #[serde(default)]
    is_disabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommitRefJson {
    commit_id: String,
}

/// An `IdentityRef`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityRefJson {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    unique_name: Option<String>,
}

impl IdentityRefJson {
    /// `uniqueName` (the sign-in name), else `displayName`; empty when neither is there.
    fn name(&self) -> String {
        [&self.unique_name, &self.display_name]
            .into_iter()
            .flatten()
            .find(|n| !n.trim().is_empty())
            .cloned()
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullRequestJson {
    pull_request_id: u64,
    /// `active`, `abandoned`, `completed` (or the enum's number).
    status: Value,
    title: String,
    #[serde(default)]
    is_draft: Option<bool>,
    source_ref_name: String,
    target_ref_name: String,
    /// Absent while Azure computes the merge of a new pull request or push.
    #[serde(default)]
    last_merge_source_commit: Option<CommitRefJson>,
    #[serde(default)]
    last_merge_target_commit: Option<CommitRefJson>,
    /// Present only when the source branch lives in a fork.
    #[serde(default)]
    fork_source: Option<IgnoredAny>,
    #[serde(default)]
    created_by: Option<IdentityRefJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IterationJson {
    id: u64,
    #[serde(default)]
    source_ref_commit: Option<CommitRefJson>,
    #[serde(default)]
    common_ref_commit: Option<CommitRefJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangesJson {
    #[serde(default)]
    change_entries: Vec<ChangeEntryJson>,
    #[serde(default)]
    next_skip: Option<u32>,
    #[serde(default)]
    next_top: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeEntryJson {
    change_tracking_id: u64,
    #[serde(default)]
    item: Option<ItemJson>,
}

#[derive(Deserialize)]
struct ItemJson {
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PositionJson {
    line: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadContextJson {
    #[serde(default)]
    file_path: Option<String>,
    #[serde(default)]
    right_file_start: Option<PositionJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadJson {
    id: u64,
    /// `active`, `fixed`, `wontFix`, `closed`, `byDesign`, `pending`, `unknown` (or the enum's
    /// number); absent on a thread without one.
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    thread_context: Option<ThreadContextJson>,
    #[serde(default)]
    comments: Vec<CommentJson>,
    #[serde(default)]
    is_deleted: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentJson {
    id: u64,
    author: IdentityRefJson,
    #[serde(default)]
    content: Option<String>,
    /// `text`, `codeChange`, `system`, `unknown` (or the enum's number).
    #[serde(default)]
    comment_type: Option<Value>,
    #[serde(default)]
    is_deleted: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionDataJson {
    authenticated_user: IdentityJson,
}

/// An `Identity`, as connection data carries the token's owner.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityJson {
    #[serde(default)]
    provider_display_name: Option<String>,
    /// `Account`: `{"$type": "System.String", "$value": <sign-in name>}`, among others.
    #[serde(default)]
    properties: Value,
}

impl IdentityJson {
    /// The sign-in name (`properties.Account.$value`): what `IdentityRef.uniqueName` shows on
    /// the comments this identity writes.
    fn account(&self) -> Option<String> {
        self.properties
            .pointer("/Account/$value")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefJson {
    name: String,
    object_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushJson {
    pushed_by: IdentityRefJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionJson {
    id: String,
    #[serde(default)]
    publisher_inputs: HashMap<String, Value>,
    #[serde(default)]
    consumer_inputs: HashMap<String, Value>,
}

fn bad_config(message: impl Into<String>) -> VcsError {
    VcsError::new(ErrorCode::BadConfig, message)
}

fn bad_response(message: impl Into<String>) -> VcsError {
    VcsError::new(ErrorCode::BadResponse, message)
}

/// Whether `s` is a GUID (`8-4-4-4-12` hex digits), as Azure names repositories.
fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `/{project}/_apis/git/repositories/{repositoryId}` of a repository: the project from its
/// `full_name` (`project/repo`), the repository by its GUID.
fn repo_path(repo: &RepoLocator) -> Result<String> {
    let project = repo
        .full_name
        .split_once('/')
        .map(|(p, _)| p)
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| {
            bad_config(format!(
                "{:?} is not an Azure DevOps repository name (`project/repo`)",
                repo.full_name
            ))
        })?;
    if !is_guid(&repo.id) {
        return Err(bad_config(format!(
            "{:?} is not an Azure DevOps repository id (a GUID)",
            repo.id
        )));
    }
    Ok(format!(
        "/{}/_apis/git/repositories/{}",
        segment(project),
        repo.id
    ))
}

/// `refs/heads/main` → `main`; anything else as it is.
fn branch(name: &str) -> String {
    name.strip_prefix("refs/heads/").unwrap_or(name).to_owned()
}

fn repository(r: RepositoryJson) -> Repository {
    let public = match &r.project.visibility {
        Some(Value::String(v)) => v.eq_ignore_ascii_case("public"),
        Some(Value::Number(n)) => n.as_u64() == Some(2),
        _ => false,
    };
    Repository {
        full_name: format!("{}/{}", r.project.name, r.name),
        clone_url: r.remote_url.unwrap_or_default(),
        default_branch: r
            .default_branch
            .as_deref()
            .map(branch)
            .unwrap_or_else(|| "main".to_owned()),
        private: !public,
        archived: r.is_disabled.unwrap_or(false),
        installation_id: None,
        id: r.id,
    }
}

fn pull_request_state(pr: PullRequestJson) -> PullRequestState {
    let open = match &pr.status {
        Value::String(s) => s.eq_ignore_ascii_case("active"),
        Value::Number(n) => n.as_u64() == Some(1),
        _ => false,
    };
    PullRequestState {
        number: pr.pull_request_id,
        open,
        draft: pr.is_draft.unwrap_or(false),
        head_sha: pr
            .last_merge_source_commit
            .map(|c| c.commit_id)
            .unwrap_or_default(),
        head_ref: branch(&pr.source_ref_name),
        base_ref: branch(&pr.target_ref_name),
        base_sha: pr
            .last_merge_target_commit
            .map(|c| c.commit_id)
            .unwrap_or_default(),
        from_fork: pr.fork_source.is_some(),
        title: pr.title,
        author: pr.created_by.map(|a| a.name()).filter(|a| !a.is_empty()),
        // A pull request carries no last-update time.
        updated_at: None,
    }
}

/// The offset behind a listing cursor (`az1.<n>`); anything else is refused.
fn decode_cursor(cursor: &str) -> Result<u32> {
    cursor
        .strip_prefix("az1.")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or_else(|| VcsError::new(ErrorCode::Rejected, "not an Azure DevOps listing cursor"))
}

fn encode_cursor(offset: u32) -> String {
    format!("az1.{offset}")
}

/// Whether a thread's `status` says someone settled it.
fn thread_resolved(status: Option<&Value>) -> bool {
    match status {
        Some(Value::String(s)) => ["fixed", "wontFix", "closed", "byDesign"]
            .iter()
            .any(|r| s.eq_ignore_ascii_case(r)),
        Some(Value::Number(n)) => matches!(n.as_u64(), Some(2..=5)),
        _ => false,
    }
}

fn system_comment(kind: Option<&Value>) -> bool {
    match kind {
        Some(Value::String(s)) => s.eq_ignore_ascii_case("system"),
        Some(Value::Number(n)) => n.as_u64() == Some(3),
        _ => false,
    }
}

/// A comment as Picket sees it. Its id is `{threadId}` for the thread's first comment (so that
/// a reply's `in_reply_to`, the thread id, names it) and `{threadId}/{commentId}` otherwise; an
/// inline thread (one with a file position) is its `thread_id`.
fn posted(thread: &ThreadJson, comment: &CommentJson) -> PostedComment {
    let first = thread.comments.iter().map(|c| c.id).min() == Some(comment.id);
    let context = thread
        .thread_context
        .as_ref()
        .filter(|c| c.file_path.is_some());
    PostedComment {
        id: if first {
            thread.id.to_string()
        } else {
            format!("{}/{}", thread.id, comment.id)
        },
        author: comment.author.name(),
        thread_id: context.map(|_| thread.id.to_string()),
        body: comment.content.clone().unwrap_or_default(),
        path: context
            .and_then(|c| c.file_path.as_deref())
            .map(|p| p.trim_start_matches('/').to_owned()),
        line: context
            .and_then(|c| c.right_file_start.as_ref())
            .map(|p| p.line),
        resolved: thread_resolved(thread.status.as_ref()),
    }
}

/// A comment id Picket gave out: `{threadId}` (the thread's first comment, id 1: Azure numbers
/// comments from 1 within each thread) or `{threadId}/{commentId}`. A reply event's
/// `in_reply_to` is the bare thread id.
fn parse_comment_id(id: &str) -> Result<(u64, Option<u64>)> {
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let parsed = match id.split_once('/') {
        Some((t, c)) => number(t).zip(number(c)).map(|(t, c)| (t, Some(c))),
        None => number(id).map(|t| (t, None)),
    };
    parsed.ok_or_else(|| {
        bad_config(format!(
            "{id:?} is not an Azure DevOps comment id (`<thread>` or `<thread>/<comment>`)"
        ))
    })
}

/// Where a pull request status goes: the pull request, the iteration it is for (when Azure had
/// made one for the head), and the status's name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatusTarget {
    number: u64,
    iteration: Option<u64>,
    name: String,
}

impl StatusTarget {
    /// The check id Picket keeps: `<pull request>/<iteration>:<name>`, or `<pull request>:<name>`
    /// for a status on the whole pull request (the form of ids kept before statuses named their
    /// iteration).
    fn check_id(&self) -> String {
        match self.iteration {
            Some(i) => format!("{}/{i}:{}", self.number, self.name),
            None => format!("{}:{}", self.number, self.name),
        }
    }

    fn parse(check_id: &str) -> Result<StatusTarget> {
        let number = |s: &str| s.parse::<u64>().ok().filter(|n| *n > 0);
        check_id
            .split_once(':')
            .filter(|(_, name)| !name.is_empty())
            .and_then(|(left, name)| {
                let (number, iteration) = match left.split_once('/') {
                    Some((n, i)) => (number(n)?, Some(number(i)?)),
                    None => (number(left)?, None),
                };
                Some(StatusTarget {
                    number,
                    iteration,
                    name: name.to_owned(),
                })
            })
            .ok_or_else(|| {
                bad_config(format!(
                    "{check_id:?} is not an Azure DevOps pull request status id \
                     (`<pull request>[/<iteration>]:<name>`)"
                ))
            })
    }
}

/// The organization of a base URL: the last path segment of `https://dev.azure.com/{org}`, or
/// the first label of a legacy `https://{org}.visualstudio.com`.
fn organization(root: &str) -> Result<String> {
    let url = url::Url::parse(root).map_err(|e| bad_config(format!("{root:?}: {e}")))?;
    if let Some(org) = url
        .path_segments()
        .and_then(|mut s| s.rfind(|p| !p.is_empty()))
    {
        return Ok(org.to_owned());
    }
    url.host_str()
        .and_then(|h| h.strip_suffix(".visualstudio.com"))
        .filter(|o| !o.is_empty() && !o.contains('.'))
        .map(str::to_owned)
        .ok_or_else(|| {
            bad_config(format!(
                "{root:?} names no Azure DevOps organization (`https://dev.azure.com/<organization>`)"
            ))
        })
}

/// An Azure DevOps connection: one project of one organization.
pub struct Azure {
    api: Api,
    pat: SecretString,
    organization: String,
    project: String,
    options: ClientOptions,
    /// The token owner's sign-in name, once connection data told it.
    account: tokio::sync::OnceCell<String>,
}

impl fmt::Debug for Azure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Azure")
            .field("api_url", &self.options.api_url)
            .field("organization", &self.organization)
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

impl Azure {
    /// A connection at `options.api_url` (`https://dev.azure.com/{organization}`) with
    /// `credentials`. Errors: [`ErrorCode::BadConfig`] for an unusable URL or CA, a URL that
    /// names no organization, or an empty project.
    pub fn new(credentials: &AzureCredentials, options: &ClientOptions) -> Result<Azure> {
        let organization = organization(&api_root(options)?)?;
        let project = credentials.project.trim().to_owned();
        if project.is_empty() || project.contains('/') {
            return Err(bad_config(format!(
                "{:?} is not an Azure DevOps project name",
                credentials.project
            )));
        }
        let rest = Rest::new(
            NAME,
            options,
            Auth::Basic {
                user: CLONE_USERNAME.to_owned(),
                password: credentials.pat.clone(),
            },
        )?;
        Ok(Azure {
            api: Api { rest },
            pat: credentials.pat.clone(),
            organization,
            project,
            options: options.clone(),
            account: tokio::sync::OnceCell::new(),
        })
    }

    /// The organization, from the base URL.
    pub fn organization(&self) -> &str {
        &self.organization
    }

    /// The project the connection lists.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// `GET {project}/_apis/git/repositories`: every repository of the project, at once.
    async fn repositories(&self) -> Result<Vec<RepositoryJson>> {
        self.api
            .list(
                &format!("/{}/_apis/git/repositories", segment(&self.project)),
                api_version::REPOSITORIES,
                Vec::new(),
            )
            .await
    }

    /// `GET _apis/ConnectionData` (asked once): the token owner's sign-in name and display name.
    async fn connection_data(&self) -> Result<IdentityJson> {
        let data: ConnectionDataJson = self
            .api
            .json(
                Method::GET,
                "/_apis/connectionData",
                api_version::CONNECTION_DATA,
                Vec::new(),
                None,
            )
            .await?;
        if let Some(account) = data.authenticated_user.account() {
            let _ = self.account.set(account);
        }
        Ok(data.authenticated_user)
    }

    async fn account(&self) -> Result<String> {
        self.account
            .get_or_try_init(|| async {
                self.connection_data().await?.account().ok_or_else(|| {
                    bad_response(
                        "Azure DevOps: connection data names no account for the token's owner",
                    )
                })
            })
            .await
            .cloned()
    }

    /// The merge base Azure recorded for pull request `number`'s last iteration: `GET
    /// .../pullRequests/{id}/iterations` → the last one's `commonRefCommit`. [`ErrorCode::NotFound`]
    /// when the pull request has no iteration with one yet.
    pub async fn iteration_merge_base(&self, repo: &RepoLocator, number: u64) -> Result<String> {
        let iterations = iterations(&self.api, repo, number).await?;
        iterations
            .into_iter()
            .max_by_key(|i| i.id)
            .and_then(|i| i.common_ref_commit)
            .map(|c| c.commit_id)
            .ok_or_else(|| {
                VcsError::new(
                    ErrorCode::NotFound,
                    "Azure DevOps: the pull request has no iteration with a merge base yet",
                )
            })
    }

    /// The service-hook subscriptions Picket's receiver needs, one per repository and event of
    /// [`SUBSCRIBED_EVENTS`]: publisher `tfs` filtered to the project and repository, consumer
    /// Web Hooks (`webHooks`, `httpRequest`) posting to `url` with Basic authentication (user
    /// [`webhook::USERNAME`](super::webhook::USERNAME), `password`) and all resource details.
    /// A subscription already there for the same event, repository and URL is replaced in place
    /// (`PUT _apis/hooks/subscriptions/{id}`: how a rotated password reaches Azure), else one is
    /// created (`POST _apis/hooks/subscriptions`), so calling this again is safe. Returns the
    /// subscriptions' ids, repository by repository in [`SUBSCRIBED_EVENTS`] order.
    ///
    /// The project's id (which the publisher filter takes) comes from the repository listing; a
    /// repository not in the connection's project is [`ErrorCode::NotFound`].
    pub async fn ensure_subscriptions(
        &self,
        url: &str,
        password: &SecretString,
        repos: &[RepoLocator],
    ) -> Result<Vec<String>> {
        if repos.is_empty() {
            return Ok(Vec::new());
        }
        let listed = self.repositories().await?;
        let mut existing: Vec<Vec<SubscriptionJson>> = Vec::new();
        for (event, _) in SUBSCRIBED_EVENTS {
            existing.push(
                self.api
                    .list(
                        "/_apis/hooks/subscriptions",
                        api_version::SUBSCRIPTIONS,
                        vec![
                            ("publisherId", "tfs".to_owned()),
                            ("eventType", (*event).to_owned()),
                            ("consumerId", "webHooks".to_owned()),
                            ("consumerActionId", "httpRequest".to_owned()),
                        ],
                    )
                    .await?,
            );
        }
        let input = |map: &HashMap<String, Value>, key: &str| {
            map.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_default()
        };
        let mut ids = Vec::with_capacity(repos.len() * SUBSCRIBED_EVENTS.len());
        for repo in repos {
            repo_path(repo)?;
            let project_id = listed
                .iter()
                .find(|r| r.id.eq_ignore_ascii_case(&repo.id))
                .map(|r| r.project.id.clone())
                .ok_or_else(|| {
                    VcsError::new(
                        ErrorCode::NotFound,
                        format!(
                            "Azure DevOps: repository {} is not in project {}",
                            repo.full_name, self.project
                        ),
                    )
                })?;
            for ((event, version), existing) in SUBSCRIBED_EVENTS.iter().zip(&existing) {
                let body = json!({
                    "publisherId": "tfs",
                    "eventType": event,
                    "resourceVersion": version,
                    "consumerId": "webHooks",
                    "consumerActionId": "httpRequest",
                    "publisherInputs": {
                        "projectId": project_id,
                        "repository": repo.id,
                    },
                    "consumerInputs": {
                        "url": url,
                        "basicAuthUsername": super::webhook::USERNAME,
                        "basicAuthPassword": password.expose_secret(),
                        "resourceDetailsToSend": "all",
                        "messagesToSend": "none",
                        "detailedMessagesToSend": "none",
                    },
                });
                let same = existing.iter().find(|s| {
                    input(&s.consumer_inputs, "url") == url
                        && input(&s.publisher_inputs, "repository").eq_ignore_ascii_case(&repo.id)
                });
                let saved: SubscriptionJson = match same {
                    Some(s) => {
                        self.api
                            .json(
                                Method::PUT,
                                &format!("/_apis/hooks/subscriptions/{}", segment(&s.id)),
                                api_version::SUBSCRIPTIONS,
                                Vec::new(),
                                Some(&body),
                            )
                            .await?
                    }
                    None => {
                        self.api
                            .json(
                                Method::POST,
                                "/_apis/hooks/subscriptions",
                                api_version::SUBSCRIPTIONS,
                                Vec::new(),
                                Some(&body),
                            )
                            .await?
                    }
                };
                ids.push(saved.id);
            }
        }
        Ok(ids)
    }

    /// The tip of branch `base_ref` (`main` or `refs/heads/main`): `GET .../refs?filter=heads/<branch>`
    /// (a prefix filter), the ref of exactly that name. A 40-hex `base_ref` is a commit already.
    async fn branch_tip(&self, repo: &RepoLocator, base_ref: &str) -> Result<String> {
        if is_sha(base_ref) {
            return Ok(base_ref.to_owned());
        }
        let name = format!("refs/heads/{}", branch(base_ref));
        let refs: Vec<RefJson> = self
            .api
            .list(
                &format!("{}/refs", repo_path(repo)?),
                api_version::REFS,
                vec![("filter", name["refs/".len()..].to_owned())],
            )
            .await?;
        refs.into_iter()
            .find(|r| r.name == name)
            .map(|r| r.object_id)
            .ok_or_else(|| {
                VcsError::new(
                    ErrorCode::NotFound,
                    format!("Azure DevOps: no branch {:?}", branch(base_ref)),
                )
            })
    }
}

async fn iterations(api: &Api, repo: &RepoLocator, number: u64) -> Result<Vec<IterationJson>> {
    api.list(
        &format!("{}/pullRequests/{number}/iterations", repo_path(repo)?),
        api_version::ITERATIONS,
        Vec::new(),
    )
    .await
}

/// The newest iteration of the pull request whose source commit is `commit_sha`, if any.
async fn iteration_of_commit(
    api: &Api,
    repo: &RepoLocator,
    number: u64,
    commit_sha: &str,
) -> Result<Option<IterationJson>> {
    Ok(iterations(api, repo, number)
        .await?
        .into_iter()
        .filter(|i| {
            i.source_ref_commit
                .as_ref()
                .is_some_and(|c| c.commit_id.eq_ignore_ascii_case(commit_sha))
        })
        .max_by_key(|i| i.id))
}

#[async_trait]
impl SourceProvider for Azure {
    fn provider(&self) -> Provider {
        Provider::AzureDevops
    }

    /// `GET _apis/connectionData` (the identity: the token owner's sign-in name, else its
    /// display name), then `GET {project}/_apis/git/repositories` as a probe: a PAT cannot read
    /// its own scopes, so one refused there (401/403) is reported missing `vso.code` (Code,
    /// Read). The other scopes show only when used.
    async fn check(&self) -> Result<ConnectionCheck> {
        let me = self.connection_data().await?;
        let identity = me
            .account()
            .or(me.provider_display_name.clone())
            .unwrap_or_default();
        let mut missing = Vec::new();
        match self.repositories().await {
            Ok(_) => {}
            Err(e) if matches!(e.code, ErrorCode::Unauthorized | ErrorCode::Forbidden) => {
                missing.push("vso.code".to_owned());
            }
            Err(e) => return Err(e),
        }
        Ok(ConnectionCheck {
            identity,
            installations: Vec::new(),
            missing_permissions: missing,
            missing_events: Vec::new(),
        })
    }

    /// `GET {project}/_apis/git/repositories` (all at once), a page of it from the cursor's
    /// offset.
    async fn list_repositories(
        &self,
        cursor: Option<&str>,
        per_page: u32,
    ) -> Result<Page<Repository>> {
        let offset = cursor.map(decode_cursor).transpose()?.unwrap_or(0) as usize;
        let per_page = per_page.clamp(1, 100) as usize;
        let all = self.repositories().await?;
        let total = all.len();
        let items: Vec<Repository> = all
            .into_iter()
            .skip(offset)
            .take(per_page)
            .map(repository)
            .collect();
        let end = offset + items.len();
        Ok(Page {
            items,
            next: (end < total && end > offset).then(|| encode_cursor(end as u32)),
        })
    }

    /// One call: Azure answers the whole listing at once.
    async fn all_repositories(&self) -> Result<Vec<Repository>> {
        Ok(self
            .repositories()
            .await?
            .into_iter()
            .map(repository)
            .collect())
    }

    /// `GET {project}/_apis/git/repositories/{repositoryId}`.
    async fn repository(&self, repo: &RepoLocator) -> Result<Repository> {
        let r: RepositoryJson = self
            .api
            .json(
                Method::GET,
                &repo_path(repo)?,
                api_version::REPOSITORIES,
                Vec::new(),
                None,
            )
            .await?;
        Ok(repository(r))
    }

    /// The connection's PAT (Azure cannot mint a narrower credential): git over HTTPS takes it as
    /// the password with any user name ([`CLONE_USERNAME`]). No expiry is known here.
    async fn mint_credential(
        &self,
        repo: &RepoLocator,
        _scope: CredentialScope,
    ) -> Result<ScopedCredential> {
        repo_path(repo)?;
        Ok(ScopedCredential {
            username: CLONE_USERNAME.to_owned(),
            secret: self.pat.clone(),
            expires_at: None,
        })
    }

    async fn feedback_client(&self, repo: &RepoLocator) -> Result<Box<dyn FeedbackClient>> {
        repo_path(repo)?;
        Ok(Box::new(AzureFeedback {
            api: self.api.clone(),
        }))
    }

    /// The tip of `base_ref` (`GET .../refs?filter=heads/<branch>`, skipped when `base_ref` is a
    /// commit), then `GET .../commits/{tip}/mergeBases?otherCommitId=<head_sha>`: the first merge
    /// base. None: [`ErrorCode::NotFound`]. (For a pull request's own merge base, see
    /// [`Azure::iteration_merge_base`].)
    async fn merge_base(
        &self,
        repo: &RepoLocator,
        base_ref: &str,
        head_sha: &str,
    ) -> Result<String> {
        let tip = self.branch_tip(repo, base_ref).await?;
        let bases: Vec<CommitRefJson> = self
            .api
            .list(
                &format!("{}/commits/{}/mergeBases", repo_path(repo)?, segment(&tip)),
                api_version::MERGE_BASES,
                vec![("otherCommitId", head_sha.to_owned())],
            )
            .await?;
        bases
            .into_iter()
            .next()
            .map(|c| c.commit_id)
            .ok_or_else(|| {
                VcsError::new(
                    ErrorCode::NotFound,
                    "Azure DevOps: the commits have no merge base",
                )
            })
    }

    /// `GET .../pullRequests/{id}`. The head is `lastMergeSourceCommit` (empty while Azure
    /// computes the merge), the base `lastMergeTargetCommit` (the target's tip at that merge);
    /// `updated_at` is `None`: a pull request carries no last-update time.
    async fn pull_request(&self, repo: &RepoLocator, number: u64) -> Result<PullRequestState> {
        let pr: PullRequestJson = self
            .api
            .json(
                Method::GET,
                &format!("{}/pullRequests/{number}", repo_path(repo)?),
                api_version::PULL_REQUESTS,
                Vec::new(),
                None,
            )
            .await?;
        Ok(pull_request_state(pr))
    }

    /// `GET .../pullRequests?searchCriteria.status=active&$top=100&$skip=<n>` (newest first); a
    /// full page means there may be another.
    async fn open_pull_requests(
        &self,
        repo: &RepoLocator,
        cursor: Option<&str>,
    ) -> Result<Page<PullRequestState>> {
        let skip = cursor.map(decode_cursor).transpose()?.unwrap_or(0);
        let items: Vec<PullRequestJson> = self
            .api
            .list(
                &format!("{}/pullRequests", repo_path(repo)?),
                api_version::PULL_REQUESTS,
                vec![
                    ("searchCriteria.status", "active".to_owned()),
                    ("$top", PULL_REQUESTS_PER_PAGE.to_string()),
                    ("$skip", skip.to_string()),
                ],
            )
            .await?;
        let full = items.len() as u32 >= PULL_REQUESTS_PER_PAGE;
        Ok(Page {
            next: full.then(|| encode_cursor(skip + PULL_REQUESTS_PER_PAGE)),
            items: items.into_iter().map(pull_request_state).collect(),
        })
    }

    /// Whether `login` (a sign-in name, as comments show it) pushed to the repository in the last
    /// [`WRITE_EVIDENCE_DAYS`] days: `GET .../pushes?searchCriteria.fromDate=...`, 100 a page,
    /// at most [`MAX_PUSH_PAGES`] pages, newest first.
    ///
    /// Why: a PAT can evaluate permissions only for its own owner (`_apis/permissions`), and
    /// reading another identity's effective Git permissions takes the Identities and Security
    /// APIs (another host, `vssps.dev.azure.com`, and the `vso.security_manage` scope, far more
    /// than Picket asks for). A push needs the repository's Contribute permission (completing a
    /// pull request pushes its merge as the one who completed it), so a recent push is evidence
    /// of write access from the Git API alone. It errs towards refusing: someone who may write
    /// but has not pushed lately is refused, and access revoked within the window still counts.
    /// An empty login is never a writer.
    async fn has_write_access(&self, repo: &RepoLocator, login: &str) -> Result<bool> {
        let login = login.trim();
        if login.is_empty() {
            return Ok(false);
        }
        let since = time::OffsetDateTime::now_utc() - time::Duration::days(WRITE_EVIDENCE_DAYS);
        let since = since
            .replace_nanosecond(0)
            .unwrap_or(since)
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|_| bad_config("the clock's time cannot be written as RFC 3339"))?;
        let path = format!("{}/pushes", repo_path(repo)?);
        for page in 0..MAX_PUSH_PAGES {
            let pushes: Vec<PushJson> = self
                .api
                .list(
                    &path,
                    api_version::PUSHES,
                    vec![
                        ("searchCriteria.fromDate", since.clone()),
                        ("$top", "100".to_owned()),
                        ("$skip", (page * 100).to_string()),
                    ],
                )
                .await?;
            if pushes
                .iter()
                .any(|p| p.pushed_by.name().eq_ignore_ascii_case(login))
            {
                return Ok(true);
            }
            if pushes.len() < 100 {
                break;
            }
        }
        Ok(false)
    }

    /// The token owner's sign-in name (`GET _apis/connectionData`,
    /// `authenticatedUser.properties.Account`, asked once): the `uniqueName` Azure shows on what
    /// Picket posts.
    async fn bot_login(&self) -> Result<String> {
        self.account().await
    }

    /// [`Azure::ensure_subscriptions`]: `secret` is the service hooks' Basic authentication
    /// password (never its hash).
    async fn ensure_webhooks(
        &self,
        url: &str,
        secret: &SecretString,
        repos: &[RepoLocator],
    ) -> Result<Vec<String>> {
        self.ensure_subscriptions(url, secret, repos).await
    }

    fn api_calls(&self) -> u64 {
        self.api.calls()
    }
}

/// One pull request's feedback client. It carries the connection's PAT (Azure has no narrower
/// credential to mint).
#[derive(Debug)]
pub struct AzureFeedback {
    api: Api,
}

impl AzureFeedback {
    /// A client sending `credential` (the connection's PAT, as HTTP Basic authentication) to
    /// `options.api_url` (`https://dev.azure.com/{organization}`).
    pub fn new(credential: &ScopedCredential, options: &ClientOptions) -> Result<AzureFeedback> {
        organization(&api_root(options)?)?;
        Ok(AzureFeedback {
            api: Api {
                rest: Rest::new(
                    NAME,
                    options,
                    Auth::Basic {
                        user: credential.username.clone(),
                        password: credential.secret.clone(),
                    },
                )?,
            },
        })
    }

    fn threads_path(repo: &RepoLocator, number: u64) -> Result<String> {
        Ok(format!(
            "{}/pullRequests/{number}/threads",
            repo_path(repo)?
        ))
    }

    /// `POST .../commits/{sha}/statuses`: Azure keeps every status and shows the newest per
    /// context (`genre` + `name`).
    async fn set_status(
        &self,
        repo: &RepoLocator,
        target: &StatusTarget,
        update: &CheckUpdate,
    ) -> Result<()> {
        let state = match (update.status, update.conclusion) {
            (CheckStatus::Queued | CheckStatus::InProgress, _) => "pending",
            (CheckStatus::Completed, Some(CheckConclusion::Failure)) => "failed",
            (
                CheckStatus::Completed,
                Some(CheckConclusion::Neutral | CheckConclusion::Cancelled),
            ) => "notApplicable",
            (CheckStatus::Completed, Some(CheckConclusion::Success) | None) => "succeeded",
        };
        let mut body = json!({
            "state": state,
            "context": { "name": target.name, "genre": STATUS_GENRE },
        });
        if let Some(iteration) = target.iteration {
            body["iterationId"] = json!(iteration);
        }
        if let Some(output) = &update.output {
            let description: String = output.title.chars().take(MAX_STATUS_DESCRIPTION).collect();
            body["description"] = Value::String(description);
        }
        if let Some(url) = &update.details_url {
            body["targetUrl"] = Value::String(url.clone());
        }
        self.api
            .send(
                Method::POST,
                &format!(
                    "{}/pullRequests/{}/statuses",
                    repo_path(repo)?,
                    target.number
                ),
                api_version::PULL_REQUEST_STATUSES,
                Vec::new(),
                Some(&body),
            )
            .await
            .map(|_| ())
    }

    async fn thread(&self, repo: &RepoLocator, number: u64, thread: u64) -> Result<ThreadJson> {
        self.api
            .json(
                Method::GET,
                &format!("{}/{thread}", Self::threads_path(repo, number)?),
                api_version::THREADS,
                Vec::new(),
                None,
            )
            .await
    }

    /// The iteration whose source commit is `commit_sha` and its changed files (path with a
    /// leading `/` → `changeTrackingId`), compared with the merge base (`$compareTo=0`).
    async fn iteration_of(
        &self,
        repo: &RepoLocator,
        number: u64,
        commit_sha: &str,
    ) -> Result<(u64, HashMap<String, u64>)> {
        let iteration = iteration_of_commit(&self.api, repo, number, commit_sha)
            .await?
            .ok_or_else(|| {
                VcsError::new(
                    ErrorCode::Unavailable,
                    "Azure DevOps: the pull request has no iteration of this commit yet",
                )
            })?;
        let path = format!(
            "{}/pullRequests/{number}/iterations/{}/changes",
            repo_path(repo)?,
            iteration.id
        );
        let mut changes = HashMap::new();
        let (mut skip, mut top) = (0u32, 2000u32);
        loop {
            let page: ChangesJson = self
                .api
                .json(
                    Method::GET,
                    &path,
                    api_version::ITERATION_CHANGES,
                    vec![
                        ("$top", top.to_string()),
                        ("$skip", skip.to_string()),
                        ("$compareTo", "0".to_owned()),
                    ],
                    None,
                )
                .await?;
            for entry in page.change_entries {
                if let Some(path) = entry.item.and_then(|i| i.path) {
                    changes.insert(path, entry.change_tracking_id);
                }
            }
            match (page.next_skip, page.next_top) {
                (Some(next_skip), Some(next_top)) if next_top > 0 && next_skip > skip => {
                    (skip, top) = (next_skip, next_top);
                }
                _ => break,
            }
        }
        Ok((iteration.id, changes))
    }
}

#[async_trait]
impl FeedbackClient for AzureFeedback {
    /// A pull request status named `name` (genre [`STATUS_GENRE`]) on pull request `number`
    /// (`POST .../pullRequests/{id}/statuses`): the kind of status Azure's "require a status"
    /// branch policy reads, so a Block finding can stop the merge. It names the iteration whose
    /// source commit is `head_sha` (`iterationId`, read from `GET .../iterations`), so that a
    /// status for a superseded push stays with that push's iteration and never replaces the
    /// newer push's; on the whole pull request when Azure has no iteration of that commit yet.
    /// Its id is `<number>/<iteration>:<name>` (or `<number>:<name>`).
    async fn create_check(
        &self,
        repo: &RepoLocator,
        number: u64,
        name: &str,
        head_sha: &str,
        update: &CheckUpdate,
    ) -> Result<String> {
        let iteration = iteration_of_commit(&self.api, repo, number, head_sha)
            .await?
            .map(|i| i.id);
        let target = StatusTarget {
            number,
            iteration,
            name: name.to_owned(),
        };
        self.set_status(repo, &target, update).await?;
        Ok(target.check_id())
    }

    /// Posts the status again, for the same iteration (Azure: "to update a status, create a new
    /// status with the same genre and name"). Annotations have no place on a status: the
    /// threads carry the lines.
    async fn update_check(
        &self,
        repo: &RepoLocator,
        check_id: &str,
        update: &CheckUpdate,
    ) -> Result<()> {
        self.set_status(repo, &StatusTarget::parse(check_id)?, update)
            .await
    }

    /// Every comment of the pull request's threads (`GET .../threads`) whose content contains
    /// `marker`; deleted threads, deleted comments and system comments are skipped.
    async fn find_comments(
        &self,
        repo: &RepoLocator,
        number: u64,
        marker: &str,
    ) -> Result<Vec<PostedComment>> {
        let threads: Vec<ThreadJson> = self
            .api
            .list(
                &Self::threads_path(repo, number)?,
                api_version::THREADS,
                Vec::new(),
            )
            .await?;
        let mut found = Vec::new();
        for thread in threads.iter().filter(|t| !t.is_deleted) {
            for comment in &thread.comments {
                if !comment.is_deleted
                    && !system_comment(comment.comment_type.as_ref())
                    && comment
                        .content
                        .as_deref()
                        .is_some_and(|c| c.contains(marker))
                {
                    found.push(posted(thread, comment));
                }
            }
        }
        Ok(found)
    }

    /// `PATCH .../threads/{threadId}/comments/{commentId}` (`existing`: `<thread>`, its first
    /// comment, or `<thread>/<comment>`), or (no `existing`, or it is gone) a new thread without
    /// a file position: `POST .../threads` with status `closed`. Closed, not active: an active
    /// thread would hold up a pull request under the "Check for comment resolution" branch
    /// policy, and the summary asks nothing of anyone (it stays visible, as a closed thread).
    async fn upsert_conversation_comment(
        &self,
        repo: &RepoLocator,
        number: u64,
        existing: Option<&str>,
        body: &str,
    ) -> Result<PostedComment> {
        let threads = Self::threads_path(repo, number)?;
        if let Some(id) = existing {
            let (thread, comment) = parse_comment_id(id)?;
            match self
                .api
                .send(
                    Method::PATCH,
                    &format!("{threads}/{thread}/comments/{}", comment.unwrap_or(1)),
                    api_version::COMMENTS,
                    Vec::new(),
                    Some(&json!({ "content": body })),
                )
                .await
            {
                Ok(reply) => {
                    let edited: CommentJson = reply.json()?;
                    return Ok(PostedComment {
                        id: id.to_owned(),
                        author: edited.author.name(),
                        thread_id: None,
                        body: edited.content.unwrap_or_default(),
                        path: None,
                        line: None,
                        resolved: false,
                    });
                }
                Err(e) if e.code == ErrorCode::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let created: ThreadJson = self
            .api
            .json(
                Method::POST,
                &threads,
                api_version::THREADS,
                Vec::new(),
                Some(&json!({
                    "comments": [{ "parentCommentId": 0, "content": body, "commentType": "text" }],
                    "status": "closed",
                })),
            )
            .await?;
        let first = created
            .comments
            .iter()
            .min_by_key(|c| c.id)
            .ok_or_else(|| {
                bad_response("Azure DevOps answered a new thread without its comment")
            })?;
        Ok(posted(&created, first))
    }

    /// One thread per comment (`POST .../threads`, status `active`) on the right-hand file:
    /// `threadContext {filePath: "/<path>", rightFileStart/End {line, offset: 1}}`, anchored to
    /// the iteration whose source commit is `commit_sha`
    /// (`pullRequestThreadContext {iterationContext {1, n}, changeTrackingId}`, from `GET
    /// .../iterations` and that iteration's `changes`). A comment on a file the iteration does
    /// not change, or one Azure refuses (400), is left out and logged. No iteration of that
    /// commit yet (Azure computes it asynchronously): [`ErrorCode::Unavailable`], to try again
    /// later.
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
        let (iteration, changes) = self.iteration_of(repo, number, commit_sha).await?;
        let threads = Self::threads_path(repo, number)?;
        let threads = &threads;
        let changes = &changes;
        crate::feedback::post_each(NAME, comments, |c| async move {
            let file_path = format!("/{}", c.path.trim_start_matches('/'));
            let Some(tracking) = changes.get(&file_path) else {
                tracing::warn!(
                    path = %c.path,
                    line = c.line,
                    "the pull request's iteration does not change this file; the inline \
                     comment is left out"
                );
                return Ok(None);
            };
            let body = json!({
                "comments": [{ "parentCommentId": 0, "content": c.body, "commentType": "text" }],
                "status": "active",
                "threadContext": {
                    "filePath": file_path,
                    "rightFileStart": { "line": c.line, "offset": 1 },
                    "rightFileEnd": { "line": c.line, "offset": 1 },
                },
                "pullRequestThreadContext": {
                    "changeTrackingId": tracking,
                    "iterationContext": {
                        "firstComparingIteration": 1,
                        "secondComparingIteration": iteration,
                    },
                },
            });
            let thread: ThreadJson = self
                .api
                .json(
                    Method::POST,
                    threads,
                    api_version::THREADS,
                    Vec::new(),
                    Some(&body),
                )
                .await?;
            let first = thread.comments.iter().min_by_key(|c| c.id).ok_or_else(|| {
                bad_response("Azure DevOps answered a new thread without its comment")
            })?;
            Ok(Some(posted(&thread, first)))
        })
        .await
    }

    /// The comment `comment_id` names (`<thread>`: the thread's first comment, as a reply's
    /// `in_reply_to`; `<thread>/<comment>`): `GET .../threads/{threadId}`. `None` when the thread
    /// or comment does not exist on this pull request, or was deleted.
    async fn review_comment(
        &self,
        repo: &RepoLocator,
        number: u64,
        comment_id: &str,
    ) -> Result<Option<PostedComment>> {
        let (thread_id, comment) = parse_comment_id(comment_id)?;
        let thread = match self.thread(repo, number, thread_id).await {
            Ok(t) => t,
            Err(e) if e.code == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if thread.is_deleted {
            return Ok(None);
        }
        let found = match comment {
            Some(id) => thread.comments.iter().find(|c| c.id == id),
            None => thread.comments.iter().min_by_key(|c| c.id),
        };
        Ok(found.filter(|c| !c.is_deleted).map(|c| {
            let mut posted = posted(&thread, c);
            posted.thread_id = None;
            posted.resolved = false;
            posted
        }))
    }

    /// `PATCH .../threads/{threadId}` with status `fixed`.
    async fn resolve_thread(&self, repo: &RepoLocator, number: u64, thread_id: &str) -> Result<()> {
        let (thread, _) = parse_comment_id(thread_id)?;
        self.api
            .send(
                Method::PATCH,
                &format!("{}/{thread}", Self::threads_path(repo, number)?),
                api_version::THREADS,
                Vec::new(),
                Some(&json!({ "status": "fixed" })),
            )
            .await
            .map(|_| ())
    }

    /// A comment in the thread of `comment_id` (`POST .../threads/{threadId}/comments`), under
    /// that comment (`parentCommentId`: the thread's first comment, 1, for a bare thread id).
    async fn reply(
        &self,
        repo: &RepoLocator,
        number: u64,
        comment_id: &str,
        body: &str,
    ) -> Result<PostedComment> {
        let (thread, parent) = parse_comment_id(comment_id)?;
        let comment: CommentJson = self
            .api
            .json(
                Method::POST,
                &format!("{}/{thread}/comments", Self::threads_path(repo, number)?),
                api_version::COMMENTS,
                Vec::new(),
                Some(&json!({
                    "content": body,
                    "parentCommentId": parent.unwrap_or(1),
                    "commentType": "text",
                })),
            )
            .await?;
        Ok(PostedComment {
            id: format!("{thread}/{}", comment.id),
            author: comment.author.name(),
            thread_id: Some(thread.to_string()),
            body: comment.content.unwrap_or_default(),
            path: None,
            line: None,
            resolved: false,
        })
    }

    fn api_calls(&self) -> u64 {
        self.api.calls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_checked() {
        assert_eq!(decode_cursor(&encode_cursor(7)).unwrap(), 7);
        assert_eq!(decode_cursor("az1.0").unwrap(), 0);
        for bad in ["", "7", "az1.", "az1.x", "az1.-1", "gl1.2"] {
            assert_eq!(decode_cursor(bad).unwrap_err().code, ErrorCode::Rejected);
        }
    }

    #[test]
    fn a_repository_is_a_project_and_a_guid() {
        let repo = |id: &str, name: &str| RepoLocator {
            id: id.into(),
            full_name: name.into(),
            installation_id: None,
        };
        let guid = "3411ebc1-d5aa-464f-9615-0b527bc66719";
        assert_eq!(
            repo_path(&repo(guid, "Fabrikam Fiber/web")).unwrap(),
            format!("/Fabrikam%20Fiber/_apis/git/repositories/{guid}")
        );
        for (id, name) in [
            ("14", "proj/web"),
            ("3411ebc1-d5aa-464f-9615-0b527bc6671", "proj/web"),
            ("3411ebc1-d5aa-464f-9615-0b527bc6671z", "proj/web"),
            (guid, "web"),
            (guid, "/web"),
        ] {
            assert_eq!(
                repo_path(&repo(id, name)).unwrap_err().code,
                ErrorCode::BadConfig,
                "{id} {name}"
            );
        }
    }

    #[test]
    fn comment_ids_name_a_thread_or_a_comment_in_it() {
        assert_eq!(parse_comment_id("12").unwrap(), (12, None));
        assert_eq!(parse_comment_id("12/3").unwrap(), (12, Some(3)));
        for bad in ["", "x", "12/", "/3", "12/3/4", "-1"] {
            assert!(parse_comment_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_organization_is_the_last_segment_of_the_base_url() {
        assert_eq!(
            organization("https://dev.azure.com/fabrikam").unwrap(),
            "fabrikam"
        );
        assert_eq!(
            organization("http://127.0.0.1:1234/fabrikam/").unwrap(),
            "fabrikam"
        );
        assert_eq!(
            organization("https://fabrikam.visualstudio.com").unwrap(),
            "fabrikam"
        );
        assert_eq!(
            organization("https://dev.azure.com").unwrap_err().code,
            ErrorCode::BadConfig
        );
    }

    #[test]
    fn thread_statuses_that_count_as_resolved() {
        for s in ["fixed", "wontFix", "closed", "byDesign"] {
            assert!(thread_resolved(Some(&json!(s))), "{s}");
        }
        for s in [
            json!("active"),
            json!("pending"),
            json!("unknown"),
            json!(1),
        ] {
            assert!(!thread_resolved(Some(&s)), "{s}");
        }
        assert!(thread_resolved(Some(&json!(4))));
        assert!(!thread_resolved(None));
    }
}
