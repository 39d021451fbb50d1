//! A GitHub API stand-in for tests: an axum server on 127.0.0.1 with in-memory state that
//! answers the REST and GraphQL calls a GitHub App integration makes, authenticates them like
//! GitHub (App JWTs signed RS256 with the App's key; installation tokens it minted, with their
//! repositories and permissions), counts rate limits, injects faults, records every request and
//! checks the recorded requests against GitHub's published OpenAPI description
//! ([`GitHubServer::violations`]).
//!
//! Shapes follow GitHub's REST API (npm `@octokit/openapi` 23.0.2,
//! `tests/github/node_modules/@octokit/openapi/generated/api.github.com.json`) and the GraphQL
//! schema for the few review-thread queries served. Error bodies are GitHub's
//! `{"message", "documentation_url", "status"}`.
//!
//! Semantics worth knowing (as on github.com):
//! - a repository the credential cannot see answers 404 (not 403);
//! - a token without the needed permission answers 403 "Resource not accessible by integration";
//! - an installation token on an `/app` endpoint answers 401 "A JSON web token could not be
//!   decoded"; an App JWT on a repository endpoint answers 403 "Resource not accessible by
//!   integration";
//! - a request without a `User-Agent` header answers 403 (GitHub requires one);
//! - inline review comments are checked against the diff lines registered with
//!   [`GitHubServer::set_diff_lines`] (422 "pull_request_review_thread.line must be part of the
//!   diff"); with no lines registered for a pull request, any line is accepted.

mod graphql;
mod http;
mod openapi;
#[cfg(test)]
mod tests;
mod webhook;

pub use webhook::{signature_256, WebhookDelivery};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng as _;

/// Picket's App permissions: the default for [`GitHubServer::add_app`].
pub const PICKET_PERMISSIONS: &[(&str, &str)] = &[
    ("metadata", "read"),
    ("contents", "read"),
    ("pull_requests", "write"),
    ("checks", "write"),
];

/// Picket's App events: the default for [`GitHubServer::add_app`].
pub const PICKET_EVENTS: &[&str] = &[
    "pull_request",
    "issue_comment",
    "pull_request_review_comment",
];

/// A registered GitHub App, as [`GitHubServer::add_app`] made it.
#[derive(Clone)]
pub struct TestApp {
    pub id: u64,
    pub slug: String,
    /// `Iv23…`: GitHub also accepts the client id as a JWT's `iss`.
    pub client_id: String,
    /// PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), as GitHub issues App keys.
    pub private_key_pem: String,
    pub webhook_secret: String,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("id", &self.id)
            .field("slug", &self.slug)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// An open pull request registered with [`GitHubServer::add_pull`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestPull {
    pub number: u64,
    pub head_sha: String,
    pub head_ref: String,
    pub base_ref: String,
    pub base_sha: String,
    /// What compare answers as `merge_base_commit.sha` for this PR's base...head.
    pub merge_base: String,
    pub draft: bool,
    /// The head lives in a fork `<author>/<repo name>` (another repository id).
    pub from_fork: bool,
    pub title: String,
    /// The login that opened the PR.
    pub author: String,
}

/// A check run as created/updated by the client.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCheckRun {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    /// `queued`, `in_progress`, `completed`, …
    pub status: String,
    pub conclusion: Option<String>,
    pub external_id: Option<String>,
    pub details_url: Option<String>,
    pub output: TestCheckOutput,
    /// Every annotation sent, across create and updates (GitHub appends them).
    pub annotations: Vec<serde_json::Value>,
    /// The App that created it.
    pub app_id: u64,
}

/// A check run's `output` (the last values sent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestCheckOutput {
    pub title: Option<String>,
    pub summary: Option<String>,
    pub text: Option<String>,
}

/// An issue (conversation) comment on a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestComment {
    pub id: u64,
    pub node_id: String,
    pub body: String,
    /// `<app slug>[bot]` for comments the App wrote, else the login given by the test.
    pub author: String,
}

/// A pull request review comment (inline, or a reply in a thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReviewComment {
    pub id: u64,
    pub node_id: String,
    pub path: String,
    pub line: Option<u64>,
    pub start_line: Option<u64>,
    /// `LEFT` or `RIGHT`.
    pub side: Option<String>,
    pub commit_id: String,
    pub body: String,
    /// The top-level comment this replies to.
    pub in_reply_to: Option<u64>,
    /// The review it was posted with, if any.
    pub review_id: Option<u64>,
    /// GraphQL node id of the review thread (`PRRT_…`).
    pub thread_id: String,
    pub thread_resolved: bool,
    pub author: String,
}

/// A pull request review (POST /repos/{o}/{r}/pulls/{n}/reviews).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReview {
    pub id: u64,
    pub body: String,
    /// `COMMENTED`, `APPROVED`, `CHANGES_REQUESTED` or `PENDING`.
    pub state: String,
    pub commit_id: String,
    pub comment_ids: Vec<u64>,
    pub author: String,
}

/// An installation access token the server minted.
#[derive(Clone, PartialEq, Eq)]
pub struct MintedToken {
    pub installation_id: u64,
    /// `None`: every repository of the installation.
    pub repository_ids: Option<Vec<u64>>,
    pub permissions: BTreeMap<String, String>,
    pub expires_at: SystemTime,
    /// The token itself (`ghs_…`), for tests that use it directly.
    pub token: String,
}

impl std::fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedToken")
            .field("installation_id", &self.installation_id)
            .field("repository_ids", &self.repository_ids)
            .field("permissions", &self.permissions)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The credential a request carried, as the server judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// A valid App JWT.
    Jwt { app_id: u64 },
    /// A valid (issued, unexpired) installation token.
    InstallationToken {
        installation_id: u64,
        repository_ids: Option<Vec<u64>>,
        permissions: BTreeMap<String, String>,
    },
    /// A credential the server refused (bad signature, expired, unknown token, malformed).
    Invalid,
}

/// One request the server received. Its `Debug` output hides secrets in the answer
/// (`token`, `pem`, `webhook_secret`, `client_secret`).
#[derive(Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, percent-encoded as sent (e.g. `/repos/acme/app/pulls/7`).
    pub path: String,
    pub query: Option<String>,
    pub auth: Auth,
    /// The JSON body, when there was one (`Some(Value::Null)` never; invalid JSON is
    /// `Some(Value::String(raw))`).
    pub body: Option<serde_json::Value>,
    pub at: Instant,
    /// The status the server answered (0 while the request is in flight).
    pub status: u16,
    /// The JSON the server answered (`None` for 204 and bare 5xx faults).
    pub response: Option<serde_json::Value>,
    /// Request headers, names lower-case; `authorization` holds the scheme only
    /// (`Bearer`/`token`), never the credential.
    pub headers: BTreeMap<String, String>,
}

impl std::fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("auth", &self.auth)
            .field("body", &self.body)
            .field("at", &self.at)
            .field("status", &self.status)
            .field("response", &self.response.as_ref().map(redacted))
            .field("headers", &self.headers)
            .finish()
    }
}

/// `v` with the values of secret-bearing fields replaced by `"<redacted>"`.
fn redacted(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match k.as_str() {
                    "token" | "pem" | "webhook_secret" | "client_secret" if v.is_string() => {
                        (k.clone(), Value::String("<redacted>".into()))
                    }
                    _ => (k.clone(), redacted(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

/// A fault served to the next `times` requests whose path contains `path_contains`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub path_contains: String,
    pub kind: FaultKind,
    pub times: u32,
}

/// What a [`Fault`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// 403 `{"message": "You have exceeded a secondary rate limit…"}` with `retry-after`.
    SecondaryRateLimit { retry_after_secs: u64 },
    /// 429 with `retry-after`.
    TooManyRequests { retry_after_secs: u64 },
    /// 403 "API rate limit exceeded…" with `x-ratelimit-remaining: 0` and `x-ratelimit-reset`
    /// `reset_in_secs` ahead.
    PrimaryExhausted { reset_in_secs: u64 },
    /// A bare 5xx (e.g. 502, 503) with GitHub's unicorn-ish text body.
    ServerError { status: u16 },
    /// Waits this long, then answers normally (for client timeouts).
    Delay(Duration),
}

struct App {
    id: u64,
    slug: String,
    client_id: String,
    public_key_pem: String,
    owner: String,
    permissions: BTreeMap<String, String>,
    events: Vec<String>,
    created_at: SystemTime,
}

struct Installation {
    id: u64,
    app_id: u64,
    account: String,
    account_id: u64,
    suspended_at: Option<SystemTime>,
    repository_selection: String,
    /// Permissions the installation accepted; `None`: follows the App's.
    permissions: Option<BTreeMap<String, String>>,
    created_at: SystemTime,
}

struct PullRec {
    id: u64,
    pull: TestPull,
    state: String,
    created_at: SystemTime,
}

struct Repo {
    id: u64,
    installation_id: u64,
    owner: String,
    name: String,
    default_branch: String,
    clone_url: String,
    private: bool,
    archived: bool,
    pulls: BTreeMap<u64, PullRec>,
    collaborators: HashMap<String, String>,
    /// (pull number, path, side) → lines of the diff.
    diff_lines: HashMap<(u64, String, String), BTreeSet<u64>>,
    /// (base, head) → merge base, registered beyond the pulls'.
    compares: HashMap<(String, String), String>,
    created_at: SystemTime,
}

impl Repo {
    fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

#[derive(Clone)]
struct Token {
    installation_id: u64,
    repository_ids: Option<Vec<u64>>,
    permissions: BTreeMap<String, String>,
    expires_at: SystemTime,
}

struct CheckRun {
    repo_id: u64,
    run: TestCheckRun,
    started_at: Option<String>,
    completed_at: Option<String>,
}

struct IssueComment {
    repo_id: u64,
    number: u64,
    comment: TestComment,
    created_at: SystemTime,
    updated_at: SystemTime,
}

struct ReviewComment {
    repo_id: u64,
    number: u64,
    comment: TestReviewComment,
    created_at: SystemTime,
    updated_at: SystemTime,
}

struct Review {
    repo_id: u64,
    number: u64,
    review: TestReview,
    submitted_at: SystemTime,
}

struct Thread {
    repo_id: u64,
    number: u64,
    resolved: bool,
    /// The top-level comment, then replies, in order.
    comment_ids: Vec<u64>,
}

#[derive(Default)]
struct RateCounter {
    used: u64,
    reset: u64,
}

struct Manifest {
    code: String,
    slug: String,
    used: bool,
}

struct State {
    base_url: String,
    next_id: u64,
    apps: BTreeMap<u64, App>,
    installations: BTreeMap<u64, Installation>,
    repos: BTreeMap<u64, Repo>,
    users: HashMap<String, u64>,
    tokens: HashMap<String, Token>,
    minted: Vec<MintedToken>,
    token_ttl: Duration,
    rate_limit: u64,
    rate: HashMap<(String, &'static str), RateCounter>,
    faults: Vec<Fault>,
    requests: Vec<RecordedRequest>,
    check_runs: BTreeMap<u64, CheckRun>,
    issue_comments: Vec<IssueComment>,
    review_comments: Vec<ReviewComment>,
    reviews: Vec<Review>,
    threads: BTreeMap<String, Thread>,
    manifests: Vec<Manifest>,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn user_id(&mut self, login: &str) -> u64 {
        if let Some(id) = self.users.get(&login.to_ascii_lowercase()) {
            return *id;
        }
        let id = self.id();
        self.users.insert(login.to_ascii_lowercase(), id);
        id
    }

    fn repo_by_name(&self, owner: &str, name: &str) -> Option<&Repo> {
        self.repos
            .values()
            .find(|r| r.owner.eq_ignore_ascii_case(owner) && r.name.eq_ignore_ascii_case(name))
    }

    fn installation_permissions(&self, installation_id: u64) -> BTreeMap<String, String> {
        let Some(inst) = self.installations.get(&installation_id) else {
            return BTreeMap::new();
        };
        inst.permissions.clone().unwrap_or_else(|| {
            self.apps
                .get(&inst.app_id)
                .map(|a| a.permissions.clone())
                .unwrap_or_default()
        })
    }

    fn app_of_installation(&self, installation_id: u64) -> Option<&App> {
        self.installations
            .get(&installation_id)
            .and_then(|i| self.apps.get(&i.app_id))
    }
}

pub(crate) struct Inner {
    state: Mutex<State>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The server: in-memory state, serving until dropped.
pub struct GitHubServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for GitHubServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for GitHubServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn perms(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn random_string(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// A fresh 2048-bit RSA key pair: (PKCS#1 private PEM, PKCS#1 public PEM).
fn rsa_key_pair() -> (String, String) {
    use rsa::pkcs1::{EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
    let private = key.to_pkcs1_pem(LineEnding::LF).expect("PEM").to_string();
    let public = key
        .to_public_key()
        .to_pkcs1_pem(LineEnding::LF)
        .expect("PEM");
    (private, public)
}

impl GitHubServer {
    /// Starts serving on 127.0.0.1 on a port of the system's choosing, on the current tokio
    /// runtime.
    pub async fn start() -> GitHubServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                base_url: format!("http://{addr}"),
                next_id: 1000,
                apps: BTreeMap::new(),
                installations: BTreeMap::new(),
                repos: BTreeMap::new(),
                users: HashMap::new(),
                tokens: HashMap::new(),
                minted: Vec::new(),
                token_ttl: Duration::from_secs(3600),
                rate_limit: 5000,
                rate: HashMap::new(),
                faults: Vec::new(),
                requests: Vec::new(),
                check_runs: BTreeMap::new(),
                issue_comments: Vec::new(),
                review_comments: Vec::new(),
                reviews: Vec::new(),
                threads: BTreeMap::new(),
                manifests: Vec::new(),
            }),
        });
        let router = http::router(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        GitHubServer { addr, inner, task }
    }

    /// The REST root, e.g. `http://127.0.0.1:41234` (GraphQL at `<root>/graphql`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }

    /// Registers an App with Picket's permissions and events ([`PICKET_PERMISSIONS`],
    /// [`PICKET_EVENTS`]) and a fresh 2048-bit RSA key.
    pub fn add_app(&self, slug: &str) -> TestApp {
        let (private_key_pem, public_key_pem) = rsa_key_pair();
        let mut st = self.lock();
        let id = st.id();
        let client_id = format!("Iv23li{}", random_string(14));
        st.apps.insert(
            id,
            App {
                id,
                slug: slug.to_string(),
                client_id: client_id.clone(),
                public_key_pem,
                owner: "picket-owner".to_string(),
                permissions: perms(PICKET_PERMISSIONS),
                events: PICKET_EVENTS.iter().map(|e| e.to_string()).collect(),
                created_at: SystemTime::now(),
            },
        );
        TestApp {
            id,
            slug: slug.to_string(),
            client_id,
            private_key_pem,
            webhook_secret: random_string(32),
        }
    }

    /// Sets the App's permissions (`("contents", "read")`, …) and subscribed events.
    /// Installations follow the App's permissions unless given their own
    /// ([`GitHubServer::set_installation_permissions`]).
    pub fn set_app_permissions(&self, app_id: u64, permissions: &[(&str, &str)], events: &[&str]) {
        let mut st = self.lock();
        let app = st.apps.get_mut(&app_id).expect("unknown app");
        app.permissions = perms(permissions);
        app.events = events.iter().map(|e| e.to_string()).collect();
    }

    /// Installs the App on `account` (an organization login); returns the installation id.
    /// The installation's repository selection is `all` until
    /// [`GitHubServer::set_repository_selection`].
    pub fn add_installation(&self, app_id: u64, account: &str) -> u64 {
        let mut st = self.lock();
        assert!(st.apps.contains_key(&app_id), "unknown app {app_id}");
        let id = st.id();
        let account_id = st.user_id(account);
        st.installations.insert(
            id,
            Installation {
                id,
                app_id,
                account: account.to_string(),
                account_id,
                suspended_at: None,
                repository_selection: "all".to_string(),
                permissions: None,
                created_at: SystemTime::now(),
            },
        );
        id
    }

    /// Suspends (token minting answers 403, its tokens stop working) or unsuspends.
    pub fn suspend_installation(&self, installation_id: u64, suspended: bool) {
        let mut st = self.lock();
        let inst = st
            .installations
            .get_mut(&installation_id)
            .expect("unknown installation");
        inst.suspended_at = suspended.then(SystemTime::now);
    }

    /// Pins the installation's granted permissions (e.g. the owner has not accepted an App
    /// permission update yet).
    pub fn set_installation_permissions(&self, installation_id: u64, permissions: &[(&str, &str)]) {
        let mut st = self.lock();
        st.installations
            .get_mut(&installation_id)
            .expect("unknown installation")
            .permissions = Some(perms(permissions));
    }

    /// `all` or `selected` (what GitHub reports as `repository_selection`).
    pub fn set_repository_selection(&self, installation_id: u64, selection: &str) {
        let mut st = self.lock();
        st.installations
            .get_mut(&installation_id)
            .expect("unknown installation")
            .repository_selection = selection.to_string();
    }

    /// A private repository `owner/name` visible to the installation; returns its id.
    pub fn add_repo(
        &self,
        installation_id: u64,
        full_name: &str,
        default_branch: &str,
        clone_url: &str,
    ) -> u64 {
        let (owner, name) = full_name.split_once('/').expect("owner/name");
        let mut st = self.lock();
        assert!(st.installations.contains_key(&installation_id));
        let id = st.id();
        st.user_id(owner);
        st.repos.insert(
            id,
            Repo {
                id,
                installation_id,
                owner: owner.to_string(),
                name: name.to_string(),
                default_branch: default_branch.to_string(),
                clone_url: clone_url.to_string(),
                private: true,
                archived: false,
                pulls: BTreeMap::new(),
                collaborators: HashMap::new(),
                diff_lines: HashMap::new(),
                compares: HashMap::new(),
                created_at: SystemTime::now(),
            },
        );
        id
    }

    /// Changes a repository's visibility, archived flag or default branch.
    pub fn update_repo(&self, repo_id: u64, private: bool, archived: bool, default_branch: &str) {
        let mut st = self.lock();
        let repo = st.repos.get_mut(&repo_id).expect("unknown repo");
        repo.private = private;
        repo.archived = archived;
        repo.default_branch = default_branch.to_string();
    }

    /// Renames (or transfers) a repository: the old name answers 404 afterwards.
    pub fn rename_repo(&self, repo_id: u64, full_name: &str) {
        let (owner, name) = full_name.split_once('/').expect("owner/name");
        let mut st = self.lock();
        let repo = st.repos.get_mut(&repo_id).expect("unknown repo");
        repo.owner = owner.to_string();
        repo.name = name.to_string();
    }

    /// Registers an open pull request.
    pub fn add_pull(&self, repo_id: u64, pull: TestPull) {
        let mut st = self.lock();
        let id = st.id();
        st.user_id(&pull.author);
        let repo = st.repos.get_mut(&repo_id).expect("unknown repo");
        repo.pulls.insert(
            pull.number,
            PullRec {
                id,
                pull,
                state: "open".to_string(),
                created_at: SystemTime::now(),
            },
        );
    }

    /// Edits a registered pull request (a push moves `head_sha`, …).
    pub fn update_pull(&self, repo_id: u64, number: u64, f: impl FnOnce(&mut TestPull)) {
        let mut st = self.lock();
        let repo = st.repos.get_mut(&repo_id).expect("unknown repo");
        f(&mut repo.pulls.get_mut(&number).expect("unknown pull").pull);
    }

    /// `open` or `closed`.
    pub fn set_pull_state(&self, repo_id: u64, number: u64, state: &str) {
        let mut st = self.lock();
        let repo = st.repos.get_mut(&repo_id).expect("unknown repo");
        repo.pulls.get_mut(&number).expect("unknown pull").state = state.to_string();
    }

    /// The collaborator permission GET /repos/{o}/{r}/collaborators/{u}/permission reports:
    /// `admin`, `maintain`, `write`, `triage`, `read` or `none` (reported as GitHub does:
    /// `permission` is admin/write/read/none, `role_name` the exact role).
    pub fn set_permission(&self, repo_id: u64, login: &str, permission: &str) {
        let mut st = self.lock();
        st.user_id(login);
        let repo = st.repos.get_mut(&repo_id).expect("unknown repo");
        repo.collaborators
            .insert(login.to_ascii_lowercase(), permission.to_string());
    }

    /// Registers the RIGHT-side (new file) lines of `path` that are part of pull `number`'s diff.
    pub fn set_diff_lines(&self, repo_id: u64, number: u64, path: &str, lines: &[u64]) {
        self.set_diff_lines_on_side(repo_id, number, path, "RIGHT", lines);
    }

    /// Registers diff lines of one side (`LEFT`: old file, `RIGHT`: new file).
    pub fn set_diff_lines_on_side(
        &self,
        repo_id: u64,
        number: u64,
        path: &str,
        side: &str,
        lines: &[u64],
    ) {
        let mut st = self.lock();
        let repo = st.repos.get_mut(&repo_id).expect("unknown repo");
        repo.diff_lines
            .entry((number, path.to_string(), side.to_string()))
            .or_default()
            .extend(lines.iter().copied());
    }

    /// What compare `base...head` answers as the merge base, besides the pulls' own.
    pub fn set_compare(&self, repo_id: u64, base: &str, head: &str, merge_base: &str) {
        let mut st = self.lock();
        let repo = st.repos.get_mut(&repo_id).expect("unknown repo");
        repo.compares
            .insert((base.to_string(), head.to_string()), merge_base.to_string());
    }

    /// Lifetime of tokens minted from now on (GitHub: one hour).
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.lock().token_ttl = ttl;
    }

    /// The primary rate limit per credential and hour (GitHub: 5000 for installations).
    pub fn set_rate_limit(&self, limit: u64) {
        self.lock().rate_limit = limit;
    }

    /// A one-time code for POST /app-manifests/{code}/conversions, which creates an App named
    /// `slug` and answers its id, PEM, webhook secret and client credentials.
    pub fn add_manifest_code(&self, code: &str, slug: &str) {
        self.lock().manifests.push(Manifest {
            code: code.to_string(),
            slug: slug.to_string(),
            used: false,
        });
    }

    /// Queues a fault; faults are consumed in the order injected by matching requests.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Checks every recorded request against GitHub's REST OpenAPI description (see the module
    /// docs): an operation for the method and path, known query parameters of the right type,
    /// a JSON body valid against the operation's `requestBody` schema, and the credential kind
    /// the operation takes. GraphQL requests are checked for their credential only.
    /// Returns one line per violation, naming the request.
    pub fn violations(&self) -> Vec<String> {
        let requests = self.requests();
        openapi::violations(&requests)
    }

    /// A self-check of this server: every successful REST answer recorded so far, checked
    /// against the operation's response schema for its status, strictly: every field GitHub
    /// requires is there, and every field sent is one GitHub documents, of its type.
    pub fn response_violations(&self) -> Vec<String> {
        let requests = self.requests();
        openapi::response_violations(&requests)
    }

    /// Checks a webhook payload against the description's `x-webhooks` schema named `hook`
    /// (e.g. `pull-request-opened`, `issue-comment-created`), strictly like
    /// [`GitHubServer::response_violations`].
    pub fn webhook_violations(&self, hook: &str, payload: &serde_json::Value) -> Vec<String> {
        openapi::webhook_violations(hook, payload)
    }

    /// Check runs of the repository, in creation order.
    pub fn check_runs(&self, repo_id: u64) -> Vec<TestCheckRun> {
        self.lock()
            .check_runs
            .values()
            .filter(|c| c.repo_id == repo_id)
            .map(|c| c.run.clone())
            .collect()
    }

    /// Issue comments of pull request `number`, oldest first.
    pub fn issue_comments(&self, repo_id: u64, number: u64) -> Vec<TestComment> {
        self.lock()
            .issue_comments
            .iter()
            .filter(|c| c.repo_id == repo_id && c.number == number)
            .map(|c| c.comment.clone())
            .collect()
    }

    /// Adds an issue comment written by a user (as if posted on github.com).
    pub fn add_issue_comment(&self, repo_id: u64, number: u64, author: &str, body: &str) -> u64 {
        let mut st = self.lock();
        let id = st.id();
        st.user_id(author);
        let now = SystemTime::now();
        st.issue_comments.push(IssueComment {
            repo_id,
            number,
            comment: TestComment {
                id,
                node_id: http::node_id("IC_", id),
                body: body.to_string(),
                author: author.to_string(),
            },
            created_at: now,
            updated_at: now,
        });
        id
    }

    /// Adds a top-level review comment on `line` (RIGHT side) of `path` at the pull request's
    /// head, written by `author` (as if posted on github.com; `<app slug>[bot]` makes it the
    /// App's own), opening its thread; returns its id. Diff lines are not checked.
    pub fn add_review_comment(
        &self,
        repo_id: u64,
        number: u64,
        author: &str,
        path: &str,
        line: u64,
        body: &str,
    ) -> u64 {
        let mut st = self.lock();
        st.user_id(author);
        let head = st.repos[&repo_id]
            .pulls
            .get(&number)
            .expect("unknown pull")
            .pull
            .head_sha
            .clone();
        let inline = http::NewInline {
            path: path.to_string(),
            line: Some(line),
            start_line: None,
            side: "RIGHT".to_string(),
            body: body.to_string(),
        };
        let index = http::add_inline(&mut st, repo_id, number, inline, &head, None, author);
        st.review_comments[index].comment.id
    }

    /// Adds a reply written by `author` in the thread of review comment `to`; returns its id.
    pub fn add_review_reply(
        &self,
        repo_id: u64,
        number: u64,
        to: u64,
        author: &str,
        body: &str,
    ) -> u64 {
        let mut st = self.lock();
        st.user_id(author);
        let index = http::add_reply(&mut st, repo_id, number, to, body.to_string(), author)
            .unwrap_or_else(|_| panic!("no review comment {to} on pull {number}"));
        st.review_comments[index].comment.id
    }

    /// Review comments of pull request `number`, oldest first, with their thread state.
    pub fn review_comments(&self, repo_id: u64, number: u64) -> Vec<TestReviewComment> {
        let st = self.lock();
        st.review_comments
            .iter()
            .filter(|c| c.repo_id == repo_id && c.number == number)
            .map(|c| {
                let mut comment = c.comment.clone();
                comment.thread_resolved = st
                    .threads
                    .get(&comment.thread_id)
                    .is_some_and(|t| t.resolved);
                comment
            })
            .collect()
    }

    /// Reviews of pull request `number`, oldest first.
    pub fn reviews(&self, repo_id: u64, number: u64) -> Vec<TestReview> {
        self.lock()
            .reviews
            .iter()
            .filter(|r| r.repo_id == repo_id && r.number == number)
            .map(|r| r.review.clone())
            .collect()
    }

    /// Marks a review thread resolved or not (as a user would on github.com).
    pub fn set_thread_resolved(&self, thread_id: &str, resolved: bool) {
        let mut st = self.lock();
        st.threads
            .get_mut(thread_id)
            .expect("unknown thread")
            .resolved = resolved;
    }

    /// Every installation token minted so far.
    pub fn minted_tokens(&self) -> Vec<MintedToken> {
        self.lock().minted.clone()
    }
}
