//! [`GitHubApp`]: a connection's [`SourceProvider`].

use super::policy::{self, RepoCursor};
use super::transport::{Cred, Http};
use super::ClientOptions;
use crate::error::{ErrorCode, VcsError};
use crate::event::RepositorySelection;
use crate::github::AppCredentials;
use crate::provider::{
    ConnectionCheck, CredentialScope, FeedbackClient, InstallationInfo, Page, PullRequestState,
    RepoLocator, Repository, ScopedCredential, SourceProvider,
};
use crate::Result;
use async_trait::async_trait;
use http::Method;
use octocrab::auth::AppAuth;
use octocrab::models::AppId;
use octocrab::AuthState;
use picket_core::Provider;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use time::OffsetDateTime;

/// An installation-wide token of the control plane's: a client carrying it, the token, expiry.
type CachedToken = (octocrab::Octocrab, SecretString, OffsetDateTime);

/// Installation tokens for the control plane's own calls are reused until this long before they
/// expire.
const TOKEN_REFRESH_MARGIN: time::Duration = time::Duration::minutes(5);

/// A GitHub App connection: the App's id and key, the API root and TLS trust.
///
/// `Debug` shows the App id and API root only.
pub struct GitHubApp {
    app_id: u64,
    api_url: String,
    http: Http,
    /// Installation id → (token client, the token, expiry).
    tokens: Mutex<HashMap<u64, CachedToken>>,
    /// What its clients are built with (the feedback clients of [`SourceProvider::feedback_client`]).
    options: ClientOptions,
    /// `<slug>[bot]`, once `GET /app` told it.
    bot_login: tokio::sync::OnceCell<String>,
}

impl fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubApp")
            .field("app_id", &self.app_id)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct AppJson {
    slug: Option<String>,
    name: Option<String>,
    #[serde(default)]
    permissions: Map<String, Value>,
    #[serde(default)]
    events: Vec<String>,
}

#[derive(Deserialize)]
struct InstallationJson {
    id: u64,
    account: Option<AccountJson>,
    repository_selection: Option<String>,
    suspended_at: Option<String>,
    /// What the installation granted (may lag behind the App's, until the owner accepts).
    #[serde(default)]
    permissions: Map<String, Value>,
}

#[derive(Deserialize)]
struct AccountJson {
    login: Option<String>,
    slug: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct RepoJson {
    id: u64,
    full_name: String,
    clone_url: String,
    default_branch: Option<String>,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    archived: bool,
}

#[derive(Deserialize)]
struct InstallationReposJson {
    repositories: Vec<RepoJson>,
}

#[derive(Deserialize)]
struct TokenJson {
    token: SecretString,
    expires_at: Option<String>,
}

#[derive(Deserialize)]
struct CompareJson {
    merge_base_commit: ShaJson,
}

#[derive(Deserialize)]
struct ShaJson {
    sha: String,
}

#[derive(Deserialize)]
struct PullJson {
    number: u64,
    state: String,
    #[serde(default)]
    draft: Option<bool>,
    #[serde(default)]
    title: String,
    user: Option<UserJson>,
    head: RefJson,
    base: RefJson,
    #[serde(default, with = "time::serde::rfc3339::option")]
    updated_at: Option<OffsetDateTime>,
}

#[derive(Deserialize)]
struct UserJson {
    login: String,
}

#[derive(Deserialize)]
struct RefJson {
    #[serde(rename = "ref")]
    name: String,
    sha: String,
    repo: Option<RepoIdJson>,
}

#[derive(Deserialize)]
struct RepoIdJson {
    id: u64,
}

#[derive(Deserialize)]
struct PermissionJson {
    permission: String,
    role_name: Option<String>,
}

fn repository(json: RepoJson, installation_id: u64) -> Repository {
    Repository {
        id: json.id.to_string(),
        full_name: json.full_name,
        clone_url: json.clone_url,
        default_branch: json.default_branch.unwrap_or_default(),
        private: json.private,
        archived: json.archived,
        installation_id: Some(installation_id.to_string()),
    }
}

fn pull_state(json: PullJson) -> PullRequestState {
    let from_fork = match (&json.head.repo, &json.base.repo) {
        (Some(head), Some(base)) => head.id != base.id,
        // A deleted fork leaves `head.repo` null.
        (None, _) => true,
        (Some(_), None) => false,
    };
    PullRequestState {
        number: json.number,
        open: json.state == "open",
        draft: json.draft.unwrap_or(false),
        head_sha: json.head.sha,
        head_ref: json.head.name,
        base_ref: json.base.name,
        base_sha: json.base.sha,
        from_fork,
        title: json.title,
        author: json.user.map(|u| u.login),
        updated_at: json.updated_at,
    }
}

fn parse_time(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| {
        VcsError::new(
            ErrorCode::BadResponse,
            "installation token answer has an unreadable expires_at",
        )
    })
}

fn installation_of(repo: &RepoLocator) -> Result<u64> {
    repo.installation_id
        .as_deref()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| {
            VcsError::new(
                ErrorCode::BadConfig,
                format!(
                    "repository {} has no GitHub App installation id",
                    repo.full_name
                ),
            )
        })
}

fn repo_id(repo: &RepoLocator) -> Result<u64> {
    repo.id.parse().map_err(|_| {
        VcsError::new(
            ErrorCode::BadConfig,
            format!("repository id {:?} is not a GitHub id", repo.id),
        )
    })
}

/// The permissions an installation token gets for a scope (`apps/create-installation-access-token`
/// `permissions`, names from `app-permissions`).
pub fn scope_permissions(scope: CredentialScope) -> Value {
    match scope {
        CredentialScope::Clone => json!({ "contents": "read" }),
        CredentialScope::PullRequestScan => json!({
            "contents": "read",
            "pull_requests": "write",
            "metadata": "read",
        }),
    }
}

impl GitHubApp {
    /// A connection for the App in `credentials`, at `options.api_url`.
    ///
    /// Errors: [`ErrorCode::BadConfig`] when the private key is not an RSA PEM key or the URL is
    /// not an http(s) URL (nothing is sent).
    pub fn new(credentials: &AppCredentials, options: &ClientOptions) -> Result<GitHubApp> {
        let key = octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(
            credentials.private_key.expose_secret().as_bytes(),
        )
        .map_err(|_| {
            VcsError::new(
                ErrorCode::BadConfig,
                "the App's private key is not an RSA PEM key",
            )
        })?;
        let auth = AppAuth {
            app_id: AppId(credentials.app_id),
            key,
        };
        // Sign once now so a key that parses but cannot sign fails here, not on first use.
        auth.generate_bearer_token().map_err(|_| {
            VcsError::new(
                ErrorCode::BadConfig,
                "the App's private key cannot sign a JWT",
            )
        })?;
        Ok(GitHubApp {
            app_id: credentials.app_id,
            api_url: options.api_url.clone(),
            http: Http::new(options, AuthState::App(auth))?,
            tokens: Mutex::new(HashMap::new()),
            options: options.clone(),
            bot_login: tokio::sync::OnceCell::new(),
        })
    }

    /// The App's id.
    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// Mints an installation token (`POST /app/installations/{id}/access_tokens`, App JWT);
    /// `body` narrows it.
    async fn mint(&self, installation_id: u64, body: Option<&Value>) -> Result<TokenJson> {
        self.http
            .json(
                &Cred::Own,
                Method::POST,
                &format!("/app/installations/{installation_id}/access_tokens"),
                body,
            )
            .await
    }

    /// The cached installation-wide token of `installation_id`, minted when missing or within 5
    /// minutes of expiry.
    async fn installation(&self, installation_id: u64) -> Result<Cred> {
        self.installation_token(installation_id)
            .await
            .map(|(crab, _, _)| Cred::Token(crab))
    }

    async fn installation_token(&self, installation_id: u64) -> Result<CachedToken> {
        let now = OffsetDateTime::now_utc();
        if let Some(cached) = self
            .tokens
            .lock()
            .expect("token cache")
            .get(&installation_id)
        {
            if cached.2 - TOKEN_REFRESH_MARGIN > now {
                return Ok(cached.clone());
            }
        }
        let minted = self.mint(installation_id, None).await?;
        let expires = match minted.expires_at.as_deref() {
            Some(s) => parse_time(s)?,
            // GitHub documents one hour.
            None => now + time::Duration::hours(1),
        };
        let crab = self.http.with_token(&minted.token)?;
        let cached = (crab, minted.token, expires);
        self.tokens
            .lock()
            .expect("token cache")
            .insert(installation_id, cached.clone());
        Ok(cached)
    }

    /// A request with the installation's token; a 401 (token revoked early) drops the cached
    /// token and tries once more with a fresh one.
    async fn send_as(
        &self,
        installation_id: u64,
        method: Method,
        path: &str,
    ) -> Result<super::transport::Reply> {
        let cred = self.installation(installation_id).await?;
        match self.http.send(&cred, method.clone(), path, None).await {
            Err(e) if e.code == ErrorCode::Unauthorized => {
                self.tokens
                    .lock()
                    .expect("token cache")
                    .remove(&installation_id);
                let cred = self.installation(installation_id).await?;
                self.http.send(&cred, method, path, None).await
            }
            other => other,
        }
    }

    /// All the App's installations, ordered by id (`GET /app/installations`, every page).
    async fn installations(&self) -> Result<Vec<InstallationJson>> {
        let mut all: Vec<InstallationJson> = self
            .http
            .all_pages(&Cred::Own, "/app/installations")
            .await?;
        all.sort_by_key(|i| i.id);
        Ok(all)
    }
}

#[async_trait]
impl SourceProvider for GitHubApp {
    fn provider(&self) -> Provider {
        Provider::Github
    }

    /// `GET /app` (slug, permissions, events) and `GET /app/installations` (each installation's
    /// account, selection, suspension and granted permissions).
    async fn check(&self) -> Result<ConnectionCheck> {
        let app: AppJson = self
            .http
            .json(&Cred::Own, Method::GET, "/app", None)
            .await?;
        let installations = self
            .installations()
            .await?
            .into_iter()
            .map(|i| InstallationInfo {
                id: i.id.to_string(),
                account: i
                    .account
                    .and_then(|a| a.login.or(a.slug).or(a.name))
                    .unwrap_or_default(),
                repository_selection: match i.repository_selection.as_deref() {
                    Some("all") => Some(RepositorySelection::All),
                    Some("selected") => Some(RepositorySelection::Selected),
                    _ => None,
                },
                suspended: i.suspended_at.is_some(),
                missing_permissions: policy::missing_permissions(&i.permissions),
            })
            .collect();
        Ok(ConnectionCheck {
            identity: app
                .slug
                .or(app.name)
                .unwrap_or_else(|| self.app_id.to_string()),
            installations,
            missing_permissions: policy::missing_permissions(&app.permissions),
            missing_events: policy::missing_events(&app.events),
        })
    }

    /// Every installation's repositories (`GET /installation/repositories` with each
    /// installation's token), installation after installation; suspended installations are
    /// skipped. The cursor holds the installation's index and the page.
    async fn list_repositories(
        &self,
        cursor: Option<&str>,
        per_page: u32,
    ) -> Result<Page<Repository>> {
        let per_page = per_page.clamp(1, 100);
        let mut at = match cursor {
            Some(c) => RepoCursor::decode(c)?,
            None => RepoCursor {
                installation_index: 0,
                page: 1,
            },
        };
        let installations = self.installations().await?;
        loop {
            let Some(installation) = installations.get(at.installation_index) else {
                return Ok(Page {
                    items: Vec::new(),
                    next: None,
                });
            };
            let following = (at.installation_index + 1..installations.len())
                .find(|i| installations[*i].suspended_at.is_none())
                .map(|i| RepoCursor {
                    installation_index: i,
                    page: 1,
                });
            if installation.suspended_at.is_some() {
                match following {
                    Some(next) => {
                        at = next;
                        continue;
                    }
                    None => {
                        return Ok(Page {
                            items: Vec::new(),
                            next: None,
                        })
                    }
                }
            }
            let reply = self
                .send_as(
                    installation.id,
                    Method::GET,
                    &format!(
                        "/installation/repositories?per_page={per_page}&page={}",
                        at.page
                    ),
                )
                .await?;
            let listed: InstallationReposJson = reply.json()?;
            let items: Vec<Repository> = listed
                .repositories
                .into_iter()
                .map(|r| repository(r, installation.id))
                .collect();
            let next = match reply.next_page() {
                Some(page) if page > at.page => Some(RepoCursor {
                    installation_index: at.installation_index,
                    page,
                }),
                _ => following,
            };
            if items.is_empty() {
                if let Some(n) = next {
                    at = n;
                    continue;
                }
            }
            return Ok(Page {
                items,
                next: next.map(RepoCursor::encode),
            });
        }
    }

    /// `GET /app/installations` once, then each active installation's repositories
    /// (`GET /installation/repositories`, 100 a page, following the `Link` header): half the
    /// calls of paging through [`list_repositories`](SourceProvider::list_repositories), which
    /// lists the installations again for every page.
    async fn all_repositories(&self) -> Result<Vec<Repository>> {
        let mut all: Vec<Repository> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for installation in self.installations().await? {
            if installation.suspended_at.is_some() {
                continue;
            }
            let mut page = 1;
            loop {
                let reply = self
                    .send_as(
                        installation.id,
                        Method::GET,
                        &format!("/installation/repositories?per_page=100&page={page}"),
                    )
                    .await?;
                let listed: InstallationReposJson = reply.json()?;
                all.extend(
                    listed
                        .repositories
                        .into_iter()
                        .filter(|r| seen.insert(r.id))
                        .map(|r| repository(r, installation.id)),
                );
                match reply.next_page() {
                    Some(next) if next > page => page = next,
                    _ => break,
                }
            }
        }
        Ok(all)
    }

    /// `GET /repos/{owner}/{repo}`; when that name is gone (404, or GitHub's 301 for a renamed or
    /// transferred repository, which the client does not follow) or now
    /// names another repository, the installation's repositories (`GET /installation/repositories`,
    /// 100 a page) are searched for the id. (GitHub also answers `GET /repositories/{id}`, but the
    /// OpenAPI description does not document it.) Not found there either: [`ErrorCode::NotFound`].
    async fn repository(&self, repo: &RepoLocator) -> Result<Repository> {
        let installation = installation_of(repo)?;
        let id = repo_id(repo)?;
        let by_name = self
            .send_as(
                installation,
                Method::GET,
                &format!("/repos/{}", policy::repo_path(&repo.full_name)?),
            )
            .await;
        match by_name {
            Ok(reply) => {
                let json: RepoJson = reply.json()?;
                if json.id == id {
                    return Ok(repository(json, installation));
                }
            }
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut page = 1;
        loop {
            let reply = self
                .send_as(
                    installation,
                    Method::GET,
                    &format!("/installation/repositories?per_page=100&page={page}"),
                )
                .await?;
            let listed: InstallationReposJson = reply.json()?;
            if let Some(found) = listed.repositories.into_iter().find(|r| r.id == id) {
                return Ok(repository(found, installation));
            }
            match reply.next_page() {
                Some(next) if next > page => page = next,
                _ => {
                    return Err(VcsError::new(
                        ErrorCode::NotFound,
                        format!(
                            "repository {} is not visible to installation {installation}",
                            repo.id
                        ),
                    ))
                }
            }
        }
    }

    /// `POST /app/installations/{id}/access_tokens` with `repository_ids: [id]` and the scope's
    /// `permissions` only. Never cached.
    async fn mint_credential(
        &self,
        repo: &RepoLocator,
        scope: CredentialScope,
    ) -> Result<ScopedCredential> {
        let installation = installation_of(repo)?;
        let body = json!({
            "repository_ids": [repo_id(repo)?],
            "permissions": scope_permissions(scope),
        });
        let minted = self.mint(installation, Some(&body)).await?;
        Ok(ScopedCredential {
            username: "x-access-token".into(),
            secret: minted.token,
            expires_at: minted.expires_at.as_deref().map(parse_time).transpose()?,
        })
    }

    /// `GET /repos/{o}/{r}/compare/{base}...{head}` → `merge_base_commit.sha`.
    async fn merge_base(
        &self,
        repo: &RepoLocator,
        base_ref: &str,
        head_sha: &str,
    ) -> Result<String> {
        let path = format!(
            "/repos/{}/compare/{}...{}?per_page=1",
            policy::repo_path(&repo.full_name)?,
            policy::segment(base_ref),
            policy::segment(head_sha)
        );
        let compare: CompareJson = self
            .send_as(installation_of(repo)?, Method::GET, &path)
            .await?
            .json()?;
        Ok(compare.merge_base_commit.sha)
    }

    /// `GET /repos/{o}/{r}/pulls/{n}`.
    async fn pull_request(&self, repo: &RepoLocator, number: u64) -> Result<PullRequestState> {
        let path = format!(
            "/repos/{}/pulls/{number}",
            policy::repo_path(&repo.full_name)?
        );
        let pull: PullJson = self
            .send_as(installation_of(repo)?, Method::GET, &path)
            .await?
            .json()?;
        Ok(pull_state(pull))
    }

    /// `GET /repos/{o}/{r}/pulls?state=open`, 100 a page, following the `Link` header.
    async fn open_pull_requests(
        &self,
        repo: &RepoLocator,
        cursor: Option<&str>,
    ) -> Result<Page<PullRequestState>> {
        let page = cursor
            .map(policy::decode_page_cursor)
            .transpose()?
            .unwrap_or(1);
        let path = format!(
            "/repos/{}/pulls?state=open&per_page=100&page={page}",
            policy::repo_path(&repo.full_name)?
        );
        let reply = self
            .send_as(installation_of(repo)?, Method::GET, &path)
            .await?;
        let pulls: Vec<PullJson> = reply.json()?;
        Ok(Page {
            items: pulls.into_iter().map(pull_state).collect(),
            next: reply
                .next_page()
                .filter(|p| *p > page)
                .map(policy::encode_page_cursor),
        })
    }

    /// `GET /repos/{o}/{r}/collaborators/{u}/permission`: admin, maintain and write may write.
    /// A login GitHub does not know (404, or 422 "is not a user") may not.
    async fn has_write_access(&self, repo: &RepoLocator, login: &str) -> Result<bool> {
        let path = format!(
            "/repos/{}/collaborators/{}/permission",
            policy::repo_path(&repo.full_name)?,
            policy::segment(login)
        );
        match self
            .send_as(installation_of(repo)?, Method::GET, &path)
            .await
        {
            Ok(reply) => {
                let p: PermissionJson = reply.json()?;
                Ok(policy::grants_write(&p.permission, p.role_name.as_deref()))
            }
            Err(e) if matches!(e.code, ErrorCode::NotFound | ErrorCode::Rejected) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A [`GitHubFeedback`](super::GitHubFeedback) on the installation's cached token: the
    /// control plane's check moves and comment completions mint nothing per call.
    async fn feedback_client(&self, repo: &RepoLocator) -> Result<Box<dyn FeedbackClient>> {
        let (_, token, expires) = self.installation_token(installation_of(repo)?).await?;
        let credential = ScopedCredential {
            username: "x-access-token".into(),
            secret: token,
            expires_at: Some(expires),
        };
        Ok(Box::new(super::GitHubFeedback::new(
            &credential,
            &self.options,
        )?))
    }

    /// `<slug>[bot]` from `GET /app` (App JWT), asked once per client.
    async fn bot_login(&self) -> Result<String> {
        self.bot_login
            .get_or_try_init(|| async {
                let app: AppJson = self
                    .http
                    .json(&Cred::Own, Method::GET, "/app", None)
                    .await?;
                let slug = app.slug.ok_or_else(|| {
                    VcsError::new(ErrorCode::BadResponse, "GET /app answered without a slug")
                })?;
                Ok(format!("{slug}[bot]"))
            })
            .await
            .cloned()
    }

    fn api_calls(&self) -> u64 {
        self.http.calls()
    }
}
