//! Bitbucket Cloud's REST 2.0 client: [`Bitbucket`], a connection's [`SourceProvider`], and
//! [`BitbucketFeedback`], a pull request's [`FeedbackClient`].
//!
//! Every request carries the connection's access token (`Authorization: Bearer`: repository,
//! project and workspace access tokens, Bitbucket Cloud docs, "Access Tokens"). Bitbucket cannot
//! mint a narrower credential from such a token, so the clone credential of a scan is the token
//! itself, presented as user `x-token-auth` (domain.md §5: "clone credential: the token"); its
//! scopes are the limit. An access token acts as a user of its own, named after the token
//! ("the Bitbucket UI and API responses will show the Access Token as a user"): that user is the
//! author of everything Picket posts, and what [`SourceProvider::bot_login`] answers.
//!
//! What maps to what (Bitbucket Cloud REST API docs,
//! <https://developer.atlassian.com/cloud/bitbucket/rest/>; the routes are those of the route
//! table of npm `bitbucket` 2.12.0, which the test server checks requests against):
//!
//! | Picket | Bitbucket Cloud |
//! |---|---|
//! | repository | repository (`uuid`, braces included; `full_name` = `workspace/slug`, used in URLs) |
//! | pull request number | pull request `id` |
//! | check | Code Insights report of type `SECURITY` on the head commit (`PUT .../commit/{sha}/reports/{id}`), its annotations (`POST .../annotations`, ≤ 100 a request, ≤ 1,000 a report); a build status (`POST .../statuses/build`) where Code Insights is not available |
//! | check id | `<sha>:<report id>` |
//! | inline comment | pull request comment with `inline: {path, to}` (the new side's line) |
//! | review thread | a top-level inline comment (its `id`), resolved with `POST .../comments/{id}/resolve` |
//! | conversation comment | pull request comment without `inline` |
//! | reply | pull request comment with `parent: {id}` |
//! | write access | effective repository permission `write` or `admin` |
//!
//! Listings use Bitbucket's page numbers (`page`, `pagelen`: ≤ 100, ≤ 50 for pull requests);
//! a page's `next` URL names the following page, which the cursors (`bb1.<page>`) carry.
//!
//! Commit hashes in pull request answers are abbreviated like the webhooks' (12 hex digits in
//! the docs' examples): the client resolves them to full SHAs (`GET .../commit/{hash}`, kept per
//! connection: a hash names one commit for good) before handing them out.

use crate::bitbucket::webhook::WEB_BASE;
use crate::bitbucket::{BitbucketCredentials, NEEDED_SCOPES};
use crate::client::ClientOptions;
use crate::error::{ErrorCode, VcsError};
use crate::provider::{
    Annotation, AnnotationLevel, CheckConclusion, CheckStatus, CheckUpdate, ConnectionCheck,
    CredentialScope, FeedbackClient, InlineComment, Page, PostedComment, PullRequestState,
    RepoLocator, Repository, ScopedCredential, SourceProvider,
};
use crate::rest::{segment, Auth, Rest};
use crate::Result;
use async_trait::async_trait;
use http::Method;
use picket_core::Provider;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use time::OffsetDateTime;

/// The provider's name in messages.
const NAME: &str = "Bitbucket";

/// The user name an access token is presented with over HTTPS (Bitbucket Cloud docs, "Using
/// Access Tokens": `git clone https://x-token-auth:{token}@bitbucket.org/...`).
pub const TOKEN_USERNAME: &str = "x-token-auth";

/// Annotations a request may carry ("You can upload up to 100 annotations per POST request").
pub const MAX_ANNOTATIONS_PER_REQUEST: usize = 100;
/// Annotations a report may hold ("a report can contain up to 1000 annotations").
pub const MAX_ANNOTATIONS_PER_REPORT: usize = 1000;
/// An annotation's `summary` is refused past this many characters ("The summary field cannot
/// contain more than 450 characters").
pub const MAX_ANNOTATION_SUMMARY: usize = 450;
/// A report's `title` is kept to this many characters (not documented for Bitbucket Cloud:
/// Bitbucket Data Center's Code Insights limit).
pub const MAX_REPORT_TITLE: usize = 450;
/// A report's and an annotation's `details` are kept to this many characters (not documented
/// for Bitbucket Cloud: Bitbucket Data Center's Code Insights limit).
pub const MAX_REPORT_DETAILS: usize = 2000;
/// A build status `key` is refused past 40 characters ("key: Ensure this value has at most 40
/// characters"); report ids are kept as short, so one id serves both.
pub const MAX_STATUS_KEY: usize = 40;
/// A build status's `description` is kept to this many characters.
pub const MAX_STATUS_DESCRIPTION: usize = 255;
/// The events Picket's hooks subscribe to.
pub const HOOK_EVENTS: &[&str] = &[
    "pullrequest:created",
    "pullrequest:updated",
    "pullrequest:comment_created",
];

/// `pagelen` of listings (Bitbucket's most), and of pull request listings (their most).
const PAGE_LEN: u32 = 100;
const PULL_REQUEST_PAGE_LEN: u32 = 50;
/// Resolved hashes kept per connection before the cache starts over.
const MAX_CACHED_HASHES: usize = 10_000;

/// A Bitbucket Cloud connection: one workspace, one access token.
pub struct Bitbucket {
    rest: Rest,
    token: SecretString,
    workspace: String,
    options: ClientOptions,
    /// The token's user name, once `GET /user` told it.
    user: tokio::sync::OnceCell<String>,
    /// `<repository path>@<abbreviated hash>` → full hash.
    hashes: Mutex<HashMap<String, String>>,
}

impl fmt::Debug for Bitbucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bitbucket")
            .field("api_url", &self.options.api_url)
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

/// The Account entity (`user`, `author`): an access token's user, a person, an app.
#[derive(Deserialize)]
struct AccountJson {
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    nickname: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

impl AccountJson {
    /// The login Picket knows an account by: `nickname`, else `display_name` (as the webhook
    /// parser names a comment's author), else the `uuid`.
    fn login(&self) -> String {
        [&self.nickname, &self.display_name, &self.uuid]
            .into_iter()
            .flatten()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_default()
    }
}

/// One page of a listing: `values` and, but on the last page, the `next` page's URL.
#[derive(Deserialize)]
struct PageJson<T> {
    #[serde(default = "Vec::new")]
    values: Vec<T>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct LinkJson {
    href: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct RepositoryLinksJson {
    #[serde(default)]
    clone: Vec<LinkJson>,
}

#[derive(Deserialize)]
struct BranchJson {
    name: String,
}

#[derive(Deserialize)]
struct RepositoryJson {
    uuid: String,
    full_name: String,
    #[serde(default)]
    is_private: Option<bool>,
    /// `null` for a repository without commits.
    #[serde(default)]
    mainbranch: Option<BranchJson>,
    #[serde(default)]
    links: Option<RepositoryLinksJson>,
}

#[derive(Deserialize)]
struct CommitJson {
    hash: String,
}

#[derive(Deserialize)]
struct EndpointRepositoryJson {
    #[serde(default)]
    uuid: Option<String>,
}

/// A pull request's `source` or `destination`.
#[derive(Deserialize)]
struct EndpointJson {
    #[serde(default)]
    branch: Option<BranchJson>,
    #[serde(default)]
    commit: Option<CommitJson>,
    #[serde(default)]
    repository: Option<EndpointRepositoryJson>,
}

#[derive(Deserialize)]
struct PullRequestJson {
    id: u64,
    title: String,
    /// `OPEN`, `MERGED`, `DECLINED` or `SUPERSEDED`.
    state: String,
    #[serde(default)]
    draft: bool,
    source: EndpointJson,
    destination: EndpointJson,
    #[serde(default)]
    author: Option<AccountJson>,
    #[serde(default)]
    updated_on: Option<String>,
}

#[derive(Deserialize)]
struct ContentJson {
    #[serde(default)]
    raw: Option<String>,
}

#[derive(Deserialize)]
struct InlineJson {
    path: String,
    /// The new side's line; absent for a comment on an old line or on the whole file.
    #[serde(default)]
    to: Option<u32>,
}

#[derive(Deserialize)]
struct IdJson {
    id: u64,
}

#[derive(Deserialize)]
struct CommentJson {
    id: u64,
    #[serde(default)]
    content: Option<ContentJson>,
    #[serde(default)]
    user: Option<AccountJson>,
    #[serde(default)]
    inline: Option<InlineJson>,
    #[serde(default)]
    parent: Option<IdJson>,
    #[serde(default)]
    deleted: bool,
    /// Present (a `comment_resolution`) while the comment's thread is resolved.
    #[serde(default)]
    resolution: Option<Value>,
    #[serde(default)]
    pullrequest: Option<IdJson>,
}

#[derive(Deserialize)]
struct PermissionJson {
    /// `read`, `write`, `admin` (or `none`).
    #[serde(default)]
    permission: Option<String>,
    #[serde(default)]
    user: Option<AccountJson>,
}

#[derive(Deserialize)]
struct HookJson {
    uuid: String,
    url: String,
}

fn parse_time(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| {
        VcsError::new(
            ErrorCode::BadResponse,
            "Bitbucket sent a time that is not RFC 3339",
        )
    })
}

/// The repository's `workspace` and `slug`, from its `full_name`.
fn split_full_name(repo: &RepoLocator) -> Result<(&str, &str)> {
    match repo.full_name.split_once('/') {
        Some((ws, slug)) if !ws.is_empty() && !slug.is_empty() && !slug.contains('/') => {
            Ok((ws, slug))
        }
        _ => Err(VcsError::new(
            ErrorCode::BadConfig,
            format!(
                "{:?} is not a Bitbucket repository's full name (`workspace/slug`)",
                repo.full_name
            ),
        )),
    }
}

/// `/repositories/{workspace}/{repo_slug}` of a repository, its segments encoded.
fn repo_path(repo: &RepoLocator) -> Result<String> {
    let (ws, slug) = split_full_name(repo)?;
    Ok(format!("/repositories/{}/{}", segment(ws), segment(slug)))
}

/// The page behind a listing cursor (`bb1.<page>`); anything else is refused.
fn decode_cursor(cursor: &str) -> Result<u32> {
    cursor
        .strip_prefix("bb1.")
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| VcsError::new(ErrorCode::Rejected, "not a Bitbucket listing cursor"))
}

fn encode_cursor(page: u32) -> String {
    format!("bb1.{page}")
}

/// The page number of a `next` URL (its `page` query parameter).
fn next_page(next: Option<&str>) -> Option<u32> {
    let url = url::Url::parse(next?).ok()?;
    let page = url
        .query_pairs()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse::<u32>().ok());
    page
}

/// One page of a listing: the items and the next page's number.
async fn page_of<T: DeserializeOwned>(
    rest: &Rest,
    path: &str,
    mut query: Vec<(&str, String)>,
    page: u32,
    pagelen: u32,
) -> Result<(Vec<T>, Option<u32>)> {
    query.push(("pagelen", pagelen.to_string()));
    query.push(("page", page.to_string()));
    let answer: PageJson<T> = rest.json(Method::GET, path, &query, None).await?;
    let next = next_page(answer.next.as_deref()).filter(|n| *n > page);
    Ok((answer.values, next))
}

/// Every page of a listing.
async fn all_pages<T: DeserializeOwned>(
    rest: &Rest,
    path: &str,
    query: Vec<(&str, String)>,
    pagelen: u32,
) -> Result<Vec<T>> {
    let mut all = Vec::new();
    let mut page = 1;
    loop {
        let (items, next) = page_of::<T>(rest, path, query.clone(), page, pagelen).await?;
        all.extend(items);
        match next {
            Some(next) => page = next,
            None => return Ok(all),
        }
    }
}

/// The HTTPS clone URL: the repository's `https` clone link without the user name Bitbucket
/// puts in it, else `https://bitbucket.org/{full_name}.git` (what the webhook parser derives).
fn clone_url(r: &RepositoryJson) -> String {
    r.links
        .iter()
        .flat_map(|l| &l.clone)
        .find(|l| l.name.as_deref() == Some("https"))
        .and_then(|l| url::Url::parse(&l.href).ok())
        .map(|mut u| {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        })
        .unwrap_or_else(|| format!("{WEB_BASE}/{}.git", r.full_name))
}

fn repository(r: RepositoryJson) -> Repository {
    Repository {
        clone_url: clone_url(&r),
        id: r.uuid,
        full_name: r.full_name,
        default_branch: r
            .mainbranch
            .map(|b| b.name)
            .unwrap_or_else(|| "main".to_owned()),
        private: r.is_private.unwrap_or(true),
        // Bitbucket Cloud has no archived repositories.
        archived: false,
        installation_id: None,
    }
}

/// The scopes a token holds, with those each implies (Bitbucket Cloud docs, "Scopes for the
/// Bitbucket Cloud REST API": `repository:write` implies `repository`, `pullrequest` implies
/// `repository`, `pullrequest:write` implies `pullrequest` and `repository:write`; `project`
/// gives read access to the project's repositories).
fn implied_scopes(granted: &[String]) -> HashSet<String> {
    let mut all: HashSet<String> = granted.iter().map(|s| s.trim().to_owned()).collect();
    loop {
        let before = all.len();
        let mut add = Vec::new();
        for s in &all {
            match s.as_str() {
                "repository:write" | "pullrequest" | "project" => add.push("repository"),
                "pullrequest:write" => {
                    add.push("pullrequest");
                    add.push("repository:write");
                }
                _ => {}
            }
        }
        all.extend(add.into_iter().map(str::to_owned));
        if all.len() == before {
            return all;
        }
    }
}

/// [`NEEDED_SCOPES`] that `granted` (an `X-OAuth-Scopes` header) lacks.
fn missing_scopes(header: &str) -> Vec<String> {
    let granted: Vec<String> = header
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let all = implied_scopes(&granted);
    NEEDED_SCOPES
        .iter()
        .filter(|s| !all.contains(**s))
        .map(|s| (*s).to_owned())
        .collect()
}

/// Whether `hash` is a hex commit hash of 4 to 40 digits.
fn is_hash(hash: &str) -> bool {
    (4..=40).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Bitbucket {
    /// A connection at `options.api_url` ([`DEFAULT_API_URL`](super::DEFAULT_API_URL)) with
    /// `credentials`. Errors: [`ErrorCode::BadConfig`] for an unusable API URL or CA, or no
    /// workspace.
    pub fn new(credentials: &BitbucketCredentials, options: &ClientOptions) -> Result<Bitbucket> {
        let workspace = credentials.workspace.trim().trim_matches('/').to_owned();
        if workspace.is_empty() || workspace.contains('/') {
            return Err(VcsError::new(
                ErrorCode::BadConfig,
                format!(
                    "{:?} is not a Bitbucket workspace slug",
                    credentials.workspace
                ),
            ));
        }
        let rest = Rest::new(NAME, options, Auth::Bearer(credentials.token.clone()))?;
        Ok(Bitbucket {
            rest,
            token: credentials.token.clone(),
            workspace,
            options: options.clone(),
            user: tokio::sync::OnceCell::new(),
            hashes: Mutex::new(HashMap::new()),
        })
    }

    /// The full SHA of commit `hash` (a webhook's abbreviated one, or a full one):
    /// `GET /repositories/{workspace}/{repo_slug}/commit/{commit}`. Kept once known. Errors:
    /// [`ErrorCode::Rejected`] (nothing sent) when `hash` is not 4 to 40 hex digits;
    /// [`ErrorCode::NotFound`] when the repository has no such commit.
    pub async fn resolve_commit(&self, repo: &RepoLocator, hash: &str) -> Result<String> {
        let path = repo_path(repo)?;
        self.full_hash(&path, hash).await
    }

    async fn full_hash(&self, repo_path: &str, hash: &str) -> Result<String> {
        if !is_hash(hash) {
            return Err(VcsError::new(
                ErrorCode::Rejected,
                format!("{hash:?} is not a commit hash"),
            ));
        }
        let hash = hash.to_ascii_lowercase();
        if hash.len() == 40 {
            return Ok(hash);
        }
        let key = format!("{repo_path}@{hash}");
        if let Some(full) = self.hashes.lock().expect("hash cache").get(&key) {
            return Ok(full.clone());
        }
        let commit: CommitJson = self
            .rest
            .json(
                Method::GET,
                &format!("{repo_path}/commit/{}", segment(&hash)),
                &[],
                None,
            )
            .await?;
        let full = commit.hash.to_ascii_lowercase();
        if full.len() != 40 || !full.starts_with(&hash) || !is_hash(&full) {
            return Err(VcsError::new(
                ErrorCode::BadResponse,
                "Bitbucket answered a commit whose hash is not the one asked for",
            ));
        }
        let mut cache = self.hashes.lock().expect("hash cache");
        if cache.len() >= MAX_CACHED_HASHES {
            cache.clear();
        }
        cache.insert(key, full.clone());
        Ok(full)
    }

    /// A pull request as Picket sees it, its hashes resolved.
    async fn pull_request_state(
        &self,
        repo_path: &str,
        pr: PullRequestJson,
    ) -> Result<PullRequestState> {
        let head_sha = match &pr.source.commit {
            Some(c) => self.full_hash(repo_path, &c.hash).await?,
            None => String::new(),
        };
        let base_sha = match &pr.destination.commit {
            Some(c) => self.full_hash(repo_path, &c.hash).await?,
            None => String::new(),
        };
        let source_repo = pr
            .source
            .repository
            .as_ref()
            .and_then(|r| r.uuid.as_deref());
        let destination_repo = pr
            .destination
            .repository
            .as_ref()
            .and_then(|r| r.uuid.as_deref());
        Ok(PullRequestState {
            number: pr.id,
            open: pr.state == "OPEN",
            draft: pr.draft,
            head_sha,
            head_ref: pr.source.branch.map(|b| b.name).unwrap_or_default(),
            base_ref: pr.destination.branch.map(|b| b.name).unwrap_or_default(),
            base_sha,
            from_fork: source_repo.is_none() || source_repo != destination_repo,
            title: pr.title,
            author: pr.author.map(|a| a.login()).filter(|a| !a.is_empty()),
            updated_at: pr.updated_on.as_deref().map(parse_time).transpose()?,
        })
    }

    /// The hook URL Picket's receiver listens on, registered on each repository:
    /// `POST /repositories/{workspace}/{repo_slug}/hooks` with [`HOOK_EVENTS`], active, and
    /// `secret` (Bitbucket then signs each delivery, `X-Hub-Signature`). A hook already there
    /// for `url` is updated in place (`PUT .../hooks/{uid}`: events, secret, active), so
    /// calling this again is safe, and is how a rotated secret reaches Bitbucket. Returns the
    /// hooks' uuids. Needs the `webhook` scope.
    pub async fn ensure_webhook(
        &self,
        url: &str,
        secret: &SecretString,
        repos: &[RepoLocator],
    ) -> Result<Vec<String>> {
        let paths = repos.iter().map(repo_path).collect::<Result<Vec<_>>>()?;
        let body = json!({
            "description": "Picket",
            "url": url,
            "active": true,
            "secret": secrecy::ExposeSecret::expose_secret(secret),
            "events": HOOK_EVENTS,
        });
        let mut uuids = Vec::with_capacity(paths.len());
        for path in paths {
            let hooks: Vec<HookJson> =
                all_pages(&self.rest, &format!("{path}/hooks"), Vec::new(), PAGE_LEN).await?;
            let hook: HookJson = match hooks.into_iter().find(|h| h.url == url) {
                Some(existing) => {
                    self.rest
                        .json(
                            Method::PUT,
                            &format!("{path}/hooks/{}", segment(&existing.uuid)),
                            &[],
                            Some(&body),
                        )
                        .await?
                }
                None => {
                    self.rest
                        .json(Method::POST, &format!("{path}/hooks"), &[], Some(&body))
                        .await?
                }
            };
            uuids.push(hook.uuid);
        }
        Ok(uuids)
    }

    async fn username(&self) -> Result<String> {
        self.user
            .get_or_try_init(|| async {
                let me: AccountJson = self.rest.json(Method::GET, "/user", &[], None).await?;
                let login = me.login();
                if login.is_empty() {
                    return Err(VcsError::new(
                        ErrorCode::BadResponse,
                        "Bitbucket answered GET /user without a name",
                    ));
                }
                Ok::<_, VcsError>(login)
            })
            .await
            .cloned()
    }

    /// Every user with `write` or `admin` on the repository, as far as the token may see.
    async fn writers(&self, repo: &RepoLocator) -> Result<Vec<PermissionJson>> {
        let (ws, slug) = split_full_name(repo)?;
        match all_pages::<PermissionJson>(
            &self.rest,
            &format!(
                "/workspaces/{}/permissions/repositories/{}",
                segment(ws),
                segment(slug)
            ),
            vec![("q", r#"permission>"read""#.to_owned())],
            PAGE_LEN,
        )
        .await
        {
            Ok(all) => Ok(all),
            // A repository or project access token cannot reach workspace resources: the
            // repository's own explicit user permissions are what it can read.
            Err(e) if e.code == ErrorCode::Forbidden => {
                all_pages::<PermissionJson>(
                    &self.rest,
                    &format!("{}/permissions-config/users", repo_path(repo)?),
                    Vec::new(),
                    PAGE_LEN,
                )
                .await
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl SourceProvider for Bitbucket {
    fn provider(&self) -> Provider {
        Provider::Bitbucket
    }

    /// `GET /repositories/{workspace}?pagelen=1` (the token reaches the workspace; its scopes
    /// come back in `X-OAuth-Scopes`, Atlassian KB "How to fetch the scope of a token via
    /// command line"), then `GET /user` (the identity). Without the header the scopes are
    /// unknown, not missing.
    async fn check(&self) -> Result<ConnectionCheck> {
        let reply = self
            .rest
            .send(
                Method::GET,
                &format!("/repositories/{}", segment(&self.workspace)),
                &[("pagelen", "1".to_owned())],
                None,
            )
            .await?;
        let missing = reply
            .header("x-oauth-scopes")
            .map(missing_scopes)
            .unwrap_or_default();
        let identity = self.username().await?;
        Ok(ConnectionCheck {
            identity,
            installations: Vec::new(),
            missing_permissions: missing,
            missing_events: Vec::new(),
        })
    }

    /// `GET /repositories/{workspace}?pagelen=&page=` (a repository access token sees its one
    /// repository).
    async fn list_repositories(
        &self,
        cursor: Option<&str>,
        per_page: u32,
    ) -> Result<Page<Repository>> {
        let page = cursor.map(decode_cursor).transpose()?.unwrap_or(1);
        let (items, next) = page_of::<RepositoryJson>(
            &self.rest,
            &format!("/repositories/{}", segment(&self.workspace)),
            Vec::new(),
            page,
            per_page.clamp(1, PAGE_LEN),
        )
        .await?;
        Ok(Page {
            items: items.into_iter().map(repository).collect(),
            next: next.map(encode_cursor),
        })
    }

    /// `GET /repositories/{workspace}/{repo_slug}` by the full name; a repository there under
    /// another uuid than `repo.id` (deleted, and another made under its name) is
    /// [`ErrorCode::NotFound`].
    async fn repository(&self, repo: &RepoLocator) -> Result<Repository> {
        let found: RepositoryJson = self
            .rest
            .json(Method::GET, &repo_path(repo)?, &[], None)
            .await?;
        if !repo.id.is_empty() && !found.uuid.eq_ignore_ascii_case(&repo.id) {
            return Err(VcsError::new(
                ErrorCode::NotFound,
                format!("Bitbucket: {} is now another repository", repo.full_name),
            ));
        }
        Ok(repository(found))
    }

    /// The connection's token (Bitbucket cannot mint a narrower one), presented as
    /// [`TOKEN_USERNAME`]. No expiry is known here.
    async fn mint_credential(
        &self,
        repo: &RepoLocator,
        _scope: CredentialScope,
    ) -> Result<ScopedCredential> {
        repo_path(repo)?;
        Ok(ScopedCredential {
            username: TOKEN_USERNAME.to_owned(),
            secret: self.token.clone(),
            expires_at: None,
        })
    }

    async fn feedback_client(&self, repo: &RepoLocator) -> Result<Box<dyn FeedbackClient>> {
        repo_path(repo)?;
        Ok(Box::new(BitbucketFeedback {
            rest: self.rest.clone(),
        }))
    }

    /// `GET /repositories/{workspace}/{repo_slug}/merge-base/{base_ref}..{head_sha}`: the
    /// answer's `hash`.
    async fn merge_base(
        &self,
        repo: &RepoLocator,
        base_ref: &str,
        head_sha: &str,
    ) -> Result<String> {
        let path = repo_path(repo)?;
        let commit: CommitJson = self
            .rest
            .json(
                Method::GET,
                &format!(
                    "{path}/merge-base/{}",
                    segment(&format!("{base_ref}..{head_sha}"))
                ),
                &[],
                None,
            )
            .await?;
        self.full_hash(&path, &commit.hash).await
    }

    /// `GET /repositories/{workspace}/{repo_slug}/pullrequests/{id}`, its hashes resolved.
    async fn pull_request(&self, repo: &RepoLocator, number: u64) -> Result<PullRequestState> {
        let path = repo_path(repo)?;
        let pr: PullRequestJson = self
            .rest
            .json(
                Method::GET,
                &format!("{path}/pullrequests/{number}"),
                &[],
                None,
            )
            .await?;
        self.pull_request_state(&path, pr).await
    }

    /// `GET /repositories/{workspace}/{repo_slug}/pullrequests?state=OPEN`, 50 per page (the
    /// most Bitbucket gives), their hashes resolved.
    async fn open_pull_requests(
        &self,
        repo: &RepoLocator,
        cursor: Option<&str>,
    ) -> Result<Page<PullRequestState>> {
        let page = cursor.map(decode_cursor).transpose()?.unwrap_or(1);
        let path = repo_path(repo)?;
        let (items, next) = page_of::<PullRequestJson>(
            &self.rest,
            &format!("{path}/pullrequests"),
            vec![("state", "OPEN".to_owned())],
            page,
            PULL_REQUEST_PAGE_LEN,
        )
        .await?;
        let mut states = Vec::with_capacity(items.len());
        for pr in items {
            states.push(self.pull_request_state(&path, pr).await?);
        }
        Ok(Page {
            items: states,
            next: next.map(encode_cursor),
        })
    }

    /// Whether `login` (a `nickname`, else a `display_name`, as the webhook parser names a
    /// comment's author; or a `uuid`) holds `write` or `admin` on the repository:
    /// `GET /workspaces/{workspace}/permissions/repositories/{repo_slug}?q=permission>"read"`
    /// (effective permissions, group grants included; Bitbucket shows it to repository
    /// admins: the token needs `repository:admin`). A token refused there (403: a repository or
    /// project access token cannot reach workspace resources) reads
    /// `GET /repositories/{workspace}/{repo_slug}/permissions-config/users` instead, the
    /// repository's explicit user permissions: access granted only through a group is not seen
    /// there, and answers `false`.
    async fn has_write_access(&self, repo: &RepoLocator, login: &str) -> Result<bool> {
        let writers = self.writers(repo).await?;
        Ok(writers.iter().any(|p| {
            matches!(p.permission.as_deref(), Some("write" | "admin"))
                && p.user.as_ref().is_some_and(|u| {
                    u.login().eq_ignore_ascii_case(login)
                        || u.uuid
                            .as_deref()
                            .is_some_and(|id| id.eq_ignore_ascii_case(login))
                })
        }))
    }

    /// The token's user (`GET /user`, asked once: an access token acts as a user named after
    /// it): its `nickname`, else `display_name`, the login its comments carry.
    async fn bot_login(&self) -> Result<String> {
        self.username().await
    }

    /// [`Bitbucket::ensure_webhook`]: one hook per repository.
    async fn ensure_webhooks(
        &self,
        url: &str,
        secret: &SecretString,
        repos: &[RepoLocator],
    ) -> Result<Vec<String>> {
        self.ensure_webhook(url, secret, repos).await
    }

    /// [`Bitbucket::resolve_commit`]: a webhook's abbreviated hash to the full SHA.
    async fn full_commit_sha(&self, repo: &RepoLocator, hash: &str) -> Result<String> {
        self.resolve_commit(repo, hash).await
    }

    fn api_calls(&self) -> u64 {
        self.rest.calls()
    }
}

/// One pull request's feedback client. It carries the connection's token (Bitbucket has no
/// narrower one to mint).
#[derive(Debug)]
pub struct BitbucketFeedback {
    rest: Rest,
}

/// The report id (and build status key) of a check named `name`: its lowercase letters and
/// digits, other runs turned into `-`, prefixed `picket-` unless it starts so, at most
/// [`MAX_STATUS_KEY`] characters.
pub fn report_id(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let mut id = if slug.starts_with("picket") {
        slug.to_owned()
    } else if slug.is_empty() {
        "picket".to_owned()
    } else {
        format!("picket-{slug}")
    };
    id.truncate(MAX_STATUS_KEY);
    id.trim_end_matches('-').to_owned()
}

/// The title a report (and a build status's `name`) shows: its id in words (`picket-security` →
/// `Picket security`), so that an update, which knows only the id, writes the same one.
fn report_title(report: &str) -> String {
    let words = report.replace('-', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The check id Picket keeps for a report: `<sha>:<report id>`.
fn check_id(sha: &str, report: &str) -> String {
    format!("{sha}:{report}")
}

/// `s` cut to `max` characters, an ellipsis marking the cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A report's `result`.
fn report_result(update: &CheckUpdate) -> &'static str {
    match (update.status, update.conclusion) {
        (CheckStatus::Queued | CheckStatus::InProgress, _) => "PENDING",
        (CheckStatus::Completed, Some(CheckConclusion::Failure)) => "FAILED",
        (CheckStatus::Completed, _) => "PASSED",
    }
}

/// A build status's `state`.
fn status_state(update: &CheckUpdate) -> &'static str {
    match (update.status, update.conclusion) {
        (CheckStatus::Queued | CheckStatus::InProgress, _) => "INPROGRESS",
        (CheckStatus::Completed, Some(CheckConclusion::Failure)) => "FAILED",
        (CheckStatus::Completed, Some(CheckConclusion::Cancelled)) => "STOPPED",
        (CheckStatus::Completed, _) => "SUCCESSFUL",
    }
}

/// A report's `details`: the output's title and summary (plain text: Bitbucket does not render
/// Markdown there), and what was left out.
fn report_details(update: &CheckUpdate, left_out: usize) -> String {
    let mut details = match &update.output {
        Some(o) if o.summary.trim().is_empty() => o.title.clone(),
        Some(o) => format!("{}\n\n{}", o.title, o.summary),
        None => match update.status {
            CheckStatus::Queued => "Queued".to_owned(),
            CheckStatus::InProgress => "In progress".to_owned(),
            CheckStatus::Completed => "Completed".to_owned(),
        },
    };
    if left_out > 0 {
        // Said first, so that the cut to the length limit cannot drop it.
        details = format!(
            "{left_out} annotations were left out: Bitbucket keeps at most \
             {MAX_ANNOTATIONS_PER_REPORT} per report.\n\n{details}"
        );
    }
    cut(&details, MAX_REPORT_DETAILS)
}

/// An annotation's `external_id`: `picket-` and a digest of what it says and where, so that
/// sending a report's annotations again updates them rather than adding more.
fn external_id(a: &Annotation) -> String {
    let mut h = Sha256::new();
    for part in [
        a.path.as_str(),
        &a.start_line.to_string(),
        &a.end_line.to_string(),
        &a.title,
        &a.message,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("picket-{}", &hex::encode(h.finalize())[..24])
}

/// The annotations of a report: at most [`MAX_ANNOTATIONS_PER_REPORT`], their ids unique.
fn annotations_json(annotations: &[Annotation], link: Option<&str>) -> Vec<Value> {
    let mut seen = HashSet::new();
    annotations
        .iter()
        .take(MAX_ANNOTATIONS_PER_REPORT)
        .map(|a| {
            let base = external_id(a);
            let mut id = base.clone();
            let mut n = 1;
            while !seen.insert(id.clone()) {
                n += 1;
                id = format!("{base}-{n}");
            }
            let summary = if a.title.trim().is_empty() {
                &a.message
            } else {
                &a.title
            };
            let mut v = json!({
                "external_id": id,
                "annotation_type": "VULNERABILITY",
                "summary": cut(summary, MAX_ANNOTATION_SUMMARY),
                "details": cut(&a.message, MAX_REPORT_DETAILS),
                "severity": match a.level {
                    AnnotationLevel::Failure => "HIGH",
                    AnnotationLevel::Warning => "MEDIUM",
                    AnnotationLevel::Notice => "LOW",
                },
                "path": a.path,
            });
            if a.start_line > 0 {
                v["line"] = json!(a.start_line);
            }
            if let Some(link) = link {
                v["link"] = json!(link);
            }
            v
        })
        .collect()
}

impl BitbucketFeedback {
    /// A client sending `credential` (the connection's token) to `options.api_url`.
    pub fn new(
        credential: &ScopedCredential,
        options: &ClientOptions,
    ) -> Result<BitbucketFeedback> {
        Ok(BitbucketFeedback {
            rest: Rest::new(NAME, options, Auth::Bearer(credential.secret.clone()))?,
        })
    }

    fn pull_request(repo: &RepoLocator, number: u64) -> Result<String> {
        Ok(format!("{}/pullrequests/{number}", repo_path(repo)?))
    }

    /// The report `report` on `sha` as `update` says, then its annotations, 100 a request; where
    /// the report cannot be written (403 or 404: Code Insights is not available to the token
    /// or the repository), a build status instead, keyed by the report id.
    async fn set_check(
        &self,
        repo: &RepoLocator,
        sha: &str,
        report: &str,
        update: &CheckUpdate,
    ) -> Result<()> {
        let name = report_title(report);
        let path = repo_path(repo)?;
        let commit = format!("{path}/commit/{}", segment(sha));
        let annotations = update
            .output
            .as_ref()
            .map(|o| o.annotations.as_slice())
            .unwrap_or_default();
        let left_out = annotations.len().saturating_sub(MAX_ANNOTATIONS_PER_REPORT);
        let mut body = json!({
            "title": cut(&name, MAX_REPORT_TITLE),
            "details": report_details(update, left_out),
            "report_type": "SECURITY",
            "reporter": "Picket",
            "result": report_result(update),
        });
        if let Some(url) = &update.details_url {
            body["link"] = Value::String(url.clone());
        }
        let report_path = format!("{commit}/reports/{}", segment(report));
        match self
            .rest
            .send(Method::PUT, &report_path, &[], Some(&body))
            .await
        {
            Ok(_) => {}
            Err(e) if matches!(e.code, ErrorCode::Forbidden | ErrorCode::NotFound) => {
                tracing::warn!(
                    status = e.status,
                    message = %e.message,
                    "Bitbucket refused the Code Insights report; setting a build status instead"
                );
                return self
                    .set_status(repo, &commit, sha, report, &name, update)
                    .await;
            }
            Err(e) => return Err(e),
        }
        if left_out > 0 {
            tracing::warn!(
                left_out,
                "Bitbucket keeps at most {MAX_ANNOTATIONS_PER_REPORT} annotations per report; \
                 the rest are left out"
            );
        }
        let annotations = annotations_json(annotations, update.details_url.as_deref());
        for batch in annotations.chunks(MAX_ANNOTATIONS_PER_REQUEST) {
            self.rest
                .send(
                    Method::POST,
                    &format!("{report_path}/annotations"),
                    &[],
                    Some(&Value::Array(batch.to_vec())),
                )
                .await?;
        }
        Ok(())
    }

    /// `POST .../commit/{sha}/statuses/build`: `key` the report id, `url` the details URL (else
    /// the commit's page: Bitbucket wants one).
    async fn set_status(
        &self,
        repo: &RepoLocator,
        commit: &str,
        sha: &str,
        key: &str,
        name: &str,
        update: &CheckUpdate,
    ) -> Result<()> {
        let url = update
            .details_url
            .clone()
            .unwrap_or_else(|| format!("{WEB_BASE}/{}/commits/{sha}", repo.full_name));
        let mut body = json!({
            "key": key,
            "state": status_state(update),
            "name": name,
            "url": url,
        });
        if let Some(output) = &update.output {
            body["description"] = Value::String(cut(&output.title, MAX_STATUS_DESCRIPTION));
        }
        self.rest
            .send(
                Method::POST,
                &format!("{commit}/statuses/build"),
                &[],
                Some(&body),
            )
            .await
            .map(|_| ())
    }
}

/// A pull request comment as Picket sees it: a top-level inline comment is its thread.
fn posted(c: CommentJson) -> PostedComment {
    let thread = c.inline.is_some() && c.parent.is_none();
    let (path, line) = match c.inline {
        Some(i) => (Some(i.path), i.to),
        None => (None, None),
    };
    PostedComment {
        id: c.id.to_string(),
        author: c.user.map(|u| u.login()).unwrap_or_default(),
        thread_id: thread.then(|| c.id.to_string()),
        body: c.content.and_then(|b| b.raw).unwrap_or_default(),
        path,
        line,
        resolved: c.resolution.is_some(),
    }
}

/// A comment id as Bitbucket's URLs and `parent` take it: a number.
fn comment_number(id: &str) -> Result<u64> {
    id.parse::<u64>().map_err(|_| {
        VcsError::new(
            ErrorCode::BadConfig,
            format!("{id:?} is not a Bitbucket comment id"),
        )
    })
}

#[async_trait]
impl FeedbackClient for BitbucketFeedback {
    /// A Code Insights report ([`report_id`] of `name`, titled with that id in words) on
    /// `head_sha`, or its build status; its id is `<sha>:<report id>`.
    async fn create_check(
        &self,
        repo: &RepoLocator,
        _number: u64,
        name: &str,
        head_sha: &str,
        update: &CheckUpdate,
    ) -> Result<String> {
        let report = report_id(name);
        self.set_check(repo, head_sha, &report, update).await?;
        Ok(check_id(head_sha, &report))
    }

    /// Writes the report again (`PUT` replaces its fields) and sends its annotations
    /// (Bitbucket creates or updates them by `external_id`), or the build status.
    async fn update_check(
        &self,
        repo: &RepoLocator,
        check_id: &str,
        update: &CheckUpdate,
    ) -> Result<()> {
        let (sha, report) = check_id.split_once(':').ok_or_else(|| {
            VcsError::new(
                ErrorCode::BadConfig,
                "not a Bitbucket check id (`<sha>:<report id>`)",
            )
        })?;
        self.set_check(repo, sha, report, update).await
    }

    /// Every comment of the pull request (`GET .../comments`, all pages) whose body contains
    /// `marker`; deleted comments are skipped.
    async fn find_comments(
        &self,
        repo: &RepoLocator,
        number: u64,
        marker: &str,
    ) -> Result<Vec<PostedComment>> {
        let comments: Vec<CommentJson> = all_pages(
            &self.rest,
            &format!("{}/comments", Self::pull_request(repo, number)?),
            Vec::new(),
            PAGE_LEN,
        )
        .await?;
        Ok(comments
            .into_iter()
            .filter(|c| !c.deleted)
            .map(posted)
            .filter(|c| c.body.contains(marker))
            .collect())
    }

    /// `PUT .../comments/{id}`, or (no `existing`, or it was deleted) `POST .../comments`,
    /// with `content.raw` (Markdown).
    async fn upsert_conversation_comment(
        &self,
        repo: &RepoLocator,
        number: u64,
        existing: Option<&str>,
        body: &str,
    ) -> Result<PostedComment> {
        let comments = format!("{}/comments", Self::pull_request(repo, number)?);
        let content = json!({ "content": { "raw": body } });
        if let Some(id) = existing {
            match self
                .rest
                .json::<CommentJson>(
                    Method::PUT,
                    &format!("{comments}/{}", comment_number(id)?),
                    &[],
                    Some(&content),
                )
                .await
            {
                Ok(c) if !c.deleted => return Ok(posted(c)),
                Ok(_) => {}
                Err(e) if e.code == ErrorCode::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let c: CommentJson = self
            .rest
            .json(Method::POST, &comments, &[], Some(&content))
            .await?;
        Ok(posted(c))
    }

    /// One comment per finding (`POST .../comments`) with `inline: {path, to: line}`, on the
    /// pull request's diff as Bitbucket has it (a comment names no commit: `commit_sha` is not
    /// sent). A comment Bitbucket refuses (400: a line outside the diff) is left out and
    /// logged.
    async fn post_inline_comments(
        &self,
        repo: &RepoLocator,
        number: u64,
        _commit_sha: &str,
        comments: &[InlineComment],
    ) -> Result<Vec<PostedComment>> {
        let path = format!("{}/comments", Self::pull_request(repo, number)?);
        crate::feedback::post_each(NAME, comments, |c| {
            let body = json!({
                "content": { "raw": c.body },
                "inline": { "path": c.path, "to": c.line },
            });
            let path = &path;
            async move {
                let comment: CommentJson =
                    self.rest.json(Method::POST, path, &[], Some(&body)).await?;
                Ok(Some(posted(comment)))
            }
        })
        .await
    }

    /// `GET .../pullrequests/{id}/comments/{comment_id}`; `None` when it does not exist, was
    /// deleted, or belongs to another pull request.
    async fn review_comment(
        &self,
        repo: &RepoLocator,
        number: u64,
        comment_id: &str,
    ) -> Result<Option<PostedComment>> {
        let Ok(id) = comment_id.parse::<u64>() else {
            return Ok(None);
        };
        match self
            .rest
            .json::<CommentJson>(
                Method::GET,
                &format!("{}/comments/{id}", Self::pull_request(repo, number)?),
                &[],
                None,
            )
            .await
        {
            Ok(c) if c.deleted || c.pullrequest.as_ref().is_some_and(|p| p.id != number) => {
                Ok(None)
            }
            Ok(c) => {
                let mut c = posted(c);
                c.thread_id = None;
                c.resolved = false;
                Ok(Some(c))
            }
            Err(e) if e.code == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST .../comments/{id}/resolve`; a thread already resolved (409) is success.
    async fn resolve_thread(&self, repo: &RepoLocator, number: u64, thread_id: &str) -> Result<()> {
        match self
            .rest
            .send(
                Method::POST,
                &format!(
                    "{}/comments/{}/resolve",
                    Self::pull_request(repo, number)?,
                    comment_number(thread_id)?
                ),
                &[],
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status == Some(409) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A comment with `parent: {id: comment_id}` (`POST .../comments`).
    async fn reply(
        &self,
        repo: &RepoLocator,
        number: u64,
        comment_id: &str,
        body: &str,
    ) -> Result<PostedComment> {
        let parent = comment_number(comment_id)?;
        let c: CommentJson = self
            .rest
            .json(
                Method::POST,
                &format!("{}/comments", Self::pull_request(repo, number)?),
                &[],
                Some(&json!({ "content": { "raw": body }, "parent": { "id": parent } })),
            )
            .await?;
        Ok(posted(c))
    }

    fn api_calls(&self) -> u64 {
        self.rest.calls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(full_name: &str) -> RepoLocator {
        RepoLocator {
            id: "{1}".into(),
            full_name: full_name.into(),
            installation_id: None,
        }
    }

    #[test]
    fn cursors_are_checked() {
        assert_eq!(decode_cursor(&encode_cursor(7)).unwrap(), 7);
        for bad in ["", "7", "bb1.", "bb1.0", "bb1.x", "gl1.2"] {
            assert_eq!(decode_cursor(bad).unwrap_err().code, ErrorCode::Rejected);
        }
    }

    #[test]
    fn next_urls_name_their_page() {
        assert_eq!(
            next_page(Some(
                "https://api.bitbucket.org/2.0/repositories/acme?pagelen=10&page=3"
            )),
            Some(3)
        );
        assert_eq!(next_page(Some("not a url")), None);
        assert_eq!(next_page(None), None);
    }

    #[test]
    fn a_repository_is_addressed_by_its_full_name() {
        assert_eq!(
            repo_path(&repo("acme/web app")).unwrap(),
            "/repositories/acme/web%20app"
        );
        for bad in ["", "acme", "acme/", "/web", "acme/web/x"] {
            assert_eq!(
                repo_path(&repo(bad)).unwrap_err().code,
                ErrorCode::BadConfig
            );
        }
    }

    #[test]
    fn report_ids_are_short_and_prefixed() {
        assert_eq!(report_id("Picket"), "picket");
        assert_eq!(report_id("Security scan"), "picket-security-scan");
        assert_eq!(report_id("picket / PR"), "picket-pr");
        assert_eq!(report_id("!!!"), "picket");
        let long = report_id(&"x".repeat(100));
        assert!(long.len() <= MAX_STATUS_KEY && long.starts_with("picket-"));
        assert_eq!(report_title("picket"), "Picket");
        assert_eq!(report_title("picket-security-scan"), "Picket security scan");
    }

    #[test]
    fn scopes_imply_others() {
        assert!(missing_scopes("pullrequest:write, webhook").is_empty());
        assert_eq!(
            missing_scopes("repository"),
            ["pullrequest:write", "webhook"]
        );
        assert_eq!(
            missing_scopes("repository:admin, pullrequest"),
            ["pullrequest:write", "webhook"]
        );
    }

    #[test]
    fn cut_marks_what_it_drops() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "ab…");
        assert_eq!(cut(&"é".repeat(500), 450).chars().count(), 450);
    }
}
