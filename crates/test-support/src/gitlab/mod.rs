//! A GitLab REST API (v4) stand-in for tests: an axum server on 127.0.0.1 (plain HTTP, or HTTPS
//! with a certificate of a [`crate::TestCa`]) with in-memory state, serving the calls a GitLab
//! integration makes with a personal, project or group access token: the token's user and
//! scopes, projects and groups, webhooks, merge requests with their diff versions, merge bases,
//! discussions and notes, commit statuses and memberships. It records every request, counts
//! requests per route, enforces a per-token rate limit, injects faults, and checks every request
//! it saw against GitLab's endpoints as `@gitbeaker/core` 43.8.0 calls them
//! ([`GitLabServer::violations`], [`RouteTable`]).
//!
//! Behaviour follows GitLab's REST documentation (docs.gitlab.com/api), not any client:
//! - the API is served under a base path (default `/api/v4`; a self-managed instance at a
//!   sub-path is `/gitlab/api/v4`, see [`GitLabConfig`]);
//! - `PRIVATE-TOKEN: <token>` or `Authorization: Bearer <token>`; an unknown token answers 401
//!   `{"message":"401 Unauthorized"}`, an expired or revoked one 401 `invalid_token`; a token
//!   without the scope answers 403 `insufficient_scope` (`api` for writes; `api` or `read_api`
//!   for reads; `read_user` also reads `/user` and `/users`);
//! - a project or group the user cannot see answers 404 `{"message":"404 Project Not Found"}`
//!   (`Group`), a missing merge request or note `404 Not found`; too low an access level 403
//!   `{"message":"403 Forbidden"}` (statuses need Developer, project hooks Maintainer, group
//!   hooks Owner); a missing required parameter 400 `{"error":"<name> is missing"}` (Grape);
//! - parameters are read from the query string, a JSON body, a form body or a multipart body,
//!   merged as GitLab (Rack) does, `position[base_sha]=…` nesting included;
//! - offset pagination: `page`, `per_page` (default 20, at most 100), headers `X-Page`,
//!   `X-Per-Page`, `X-Next-Page`, `X-Prev-Page`, `X-Total`, `X-Total-Pages` and `Link`
//!   (`prev`, `next`, `first`, `last`); past 10,000 items `X-Total`, `X-Total-Pages` and the
//!   `last` link are left out, as GitLab does for performance;
//! - every answer carries `RateLimit-Name`, `RateLimit-Limit`, `RateLimit-Observed`,
//!   `RateLimit-Remaining`, `RateLimit-Reset` (epoch seconds) and `RateLimit-ResetTime`; past
//!   the per-minute limit (default 2,000, GitLab.com's authenticated API limit) the answer is
//!   429 `Retry later` with `Retry-After`. Application limits (note creation, 60 a minute on
//!   GitLab.com) answer 429 `{"message":{"error":"This endpoint has been requested too many
//!   times. Try again later."}}` while the headers still show quota
//!   ([`GitLabServer::set_note_creation_limit`], [`FaultKind::ApplicationLimit`]);
//! - a diff note (`POST …/discussions` with a `position`) must name the merge request's latest
//!   diff version (`base_sha`, `start_sha`, `head_sha`) and, when the test declared the diff's
//!   lines ([`GitLabServer::set_diff_lines`]), a line of the diff; otherwise GitLab cannot
//!   compute the note's line code and answers 400 `400 Bad request - Note {:line_code=>["can't
//!   be blank", "must be a valid line code"]}`;
//! - commit statuses follow GitLab's state machine: a `pending` or `running` status of the same
//!   name and sha is moved, and moving it to where it is (pending → pending, running → running,
//!   running → pending) answers 400 `Cannot transition status via :enqueue from :pending …`, as
//!   GitLab did before 18.3 (newer releases accept the repeat:
//!   [`GitLabServer::set_idempotent_statuses`]); a finished one is followed by a new status;
//! - webhook tokens are stored and never returned.

mod http;
mod routes;
#[cfg(test)]
mod tests;
mod validate;

pub use routes::{gitbeaker_path, Endpoint, RouteTable, Segment, GITBEAKER_CORE_VERSION};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng as _;

/// GitLab's access levels.
pub mod access {
    pub const NO_ACCESS: u32 = 0;
    pub const MINIMAL_ACCESS: u32 = 5;
    pub const GUEST: u32 = 10;
    pub const PLANNER: u32 = 15;
    pub const REPORTER: u32 = 20;
    pub const DEVELOPER: u32 = 30;
    pub const MAINTAINER: u32 = 40;
    pub const OWNER: u32 = 50;
}

/// How the server is served.
#[derive(Debug, Clone)]
pub struct GitLabConfig {
    /// Where the API lives, e.g. `/api/v4` (GitLab.com) or `/gitlab/api/v4` (a self-managed
    /// instance under a sub-path). Must end in `/api/v4`.
    pub base_path: String,
    /// Serve HTTPS with this configuration (e.g. [`crate::TestCa::server_config`] for
    /// `127.0.0.1`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for GitLabConfig {
    fn default() -> Self {
        GitLabConfig {
            base_path: "/api/v4".into(),
            tls: None,
        }
    }
}

/// A project as [`GitLabServer::add_project`] made it; change it with
/// [`GitLabServer::update_project`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestProject {
    pub id: u64,
    /// The namespace's full path (`acme/platform`, or a username).
    pub namespace: String,
    /// The project's path in its namespace.
    pub path: String,
    pub name: String,
    pub description: Option<String>,
    /// `None`: an empty repository (GitLab answers `null`).
    pub default_branch: Option<String>,
    /// `private`, `internal` or `public`.
    pub visibility: String,
    pub archived: bool,
    /// Defaults to `<instance root>/<path_with_namespace>.git`; point it at a
    /// [`crate::GitServer`] to clone for real.
    pub http_url_to_repo: String,
}

impl TestProject {
    pub fn path_with_namespace(&self) -> String {
        format!("{}/{}", self.namespace, self.path)
    }
}

/// A merge request registered with [`GitLabServer::add_merge_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestMergeRequest {
    pub iid: u64,
    pub title: String,
    pub description: String,
    /// `opened`, `closed`, `merged` or `locked`.
    pub state: String,
    pub draft: bool,
    pub source_branch: String,
    pub target_branch: String,
    /// The source branch's head (`sha`); [`GitLabServer::push_version`] moves it.
    pub sha: String,
    /// The username that opened it (created as a user when unknown).
    pub author: String,
    /// A fork's project id; `None`: the same project.
    pub source_project_id: Option<u64>,
}

impl TestMergeRequest {
    /// An open merge request `iid` from `source_branch` into `main` at `sha`, by `author`.
    pub fn new(iid: u64, source_branch: &str, sha: &str, author: &str) -> TestMergeRequest {
        TestMergeRequest {
            iid,
            title: format!("Merge request !{iid}"),
            description: String::new(),
            state: "opened".into(),
            draft: false,
            source_branch: source_branch.into(),
            target_branch: "main".into(),
            sha: sha.into(),
            author: author.into(),
            source_project_id: None,
        }
    }
}

/// One diff version of a merge request (`GET …/merge_requests/:iid/versions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestVersion {
    pub id: u64,
    pub base_commit_sha: String,
    pub start_commit_sha: String,
    pub head_commit_sha: String,
}

/// A diff note's position.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestPosition {
    pub base_sha: String,
    pub start_sha: String,
    pub head_sha: String,
    /// `text`, `image` or `file`.
    pub position_type: String,
    pub old_path: Option<String>,
    pub new_path: Option<String>,
    pub old_line: Option<u64>,
    pub new_line: Option<u64>,
}

/// A note (comment) on a merge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestNote {
    pub id: u64,
    /// The discussion it belongs to.
    pub discussion_id: String,
    pub author: String,
    pub author_id: u64,
    pub body: String,
    /// `DiffNote`, `DiscussionNote` or `None` (a plain note).
    pub note_type: Option<String>,
    pub system: bool,
    pub resolvable: bool,
    pub resolved: bool,
    pub position: Option<TestPosition>,
}

/// A discussion (thread) of a merge request, with its notes in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDiscussion {
    pub id: String,
    /// A plain note, not a thread.
    pub individual_note: bool,
    pub notes: Vec<TestNote>,
}

impl TestDiscussion {
    /// Every resolvable note is resolved (and there is one).
    pub fn resolved(&self) -> bool {
        let mut resolvable = self.notes.iter().filter(|n| n.resolvable).peekable();
        resolvable.peek().is_some() && resolvable.all(|n| n.resolved)
    }
}

/// A commit status as posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestStatus {
    pub id: u64,
    pub sha: String,
    pub name: String,
    /// `pending`, `running`, `success`, `failed`, `canceled` or `skipped`.
    pub status: String,
    pub target_url: Option<String>,
    pub description: Option<String>,
    pub ref_name: Option<String>,
    /// The username that posted it.
    pub author: String,
}

/// A project or group webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestHook {
    pub id: u64,
    pub url: String,
    /// The secret token (GitLab stores it; its API never returns it).
    pub token: Option<String>,
    pub name: Option<String>,
    pub push_events: bool,
    pub push_events_branch_filter: Option<String>,
    pub merge_requests_events: bool,
    pub note_events: bool,
    pub enable_ssl_verification: bool,
    /// Every other `*_events` flag sent.
    pub other_events: BTreeMap<String, bool>,
}

/// An access token's properties for [`GitLabServer::add_token_with`].
#[derive(Debug, Clone)]
pub struct TokenOptions {
    pub name: String,
    /// `api`, `read_api`, `read_user`, `read_repository`, `write_repository`, …
    pub scopes: Vec<String>,
    /// The last day the token works; `None`: never expires.
    pub expires_at: Option<time::Date>,
    pub revoked: bool,
}

impl TokenOptions {
    pub fn scopes(scopes: &[&str]) -> TokenOptions {
        TokenOptions {
            name: "picket".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_at: None,
            revoked: false,
        }
    }
}

/// The credential a request carried, as the server judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No token.
    None,
    /// A valid token of this user.
    Token {
        user_id: u64,
        username: String,
        scopes: Vec<String>,
        /// `private-token` or `bearer`.
        via: String,
    },
    /// A token the server refused (unknown, expired, revoked, malformed header).
    Invalid,
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, percent-encoded as sent, base path included.
    pub path: String,
    pub query: Option<String>,
    pub auth: Auth,
    /// The request's parameters as GitLab reads them: query string, then the body (JSON, form
    /// or multipart), merged, `a[b]=…` nested.
    pub params: serde_json::Value,
    /// The body's media type (`content-type` without parameters), when there was a body.
    pub content_type: Option<String>,
    pub at: Instant,
    /// The server's route that served it (`POST /projects/:id/statuses/:sha`), if any.
    pub route: Option<&'static str>,
    /// The status answered (0 while in flight).
    pub status: u16,
    /// The JSON answered (`None` for 204 and non-JSON answers).
    pub response: Option<serde_json::Value>,
    /// Request headers, names lower-case; the token headers' values are replaced by
    /// `<redacted>`.
    pub headers: BTreeMap<String, String>,
}

/// A fault served to the next `times` requests whose path contains `path_contains` (and whose
/// method is `method`, when given).
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<String>,
    pub path_contains: String,
    pub kind: FaultKind,
    pub times: u32,
}

impl Fault {
    /// `kind` for the next `times` requests of any method whose path contains `path_contains`.
    pub fn new(path_contains: &str, kind: FaultKind, times: u32) -> Fault {
        Fault {
            method: None,
            path_contains: path_contains.into(),
            kind,
            times,
        }
    }

    /// Only requests of this method (`POST`, …).
    pub fn method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_ascii_uppercase());
        self
    }
}

/// What a [`Fault`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// The request throttle: 429 `Retry later` with `Retry-After` and `RateLimit-Remaining: 0`.
    TooManyRequests { retry_after_secs: u64 },
    /// An application limit (e.g. note creation): 429 `{"message":{"error":"This endpoint has
    /// been requested too many times. Try again later."}}`, the `RateLimit-*` headers still
    /// showing quota, `Retry-After` only when given.
    ApplicationLimit { retry_after_secs: Option<u64> },
    /// 500 (`{"message":"500 Internal Server Error"}`), or 502/503/504 from the proxy (HTML).
    ServerError { status: u16 },
    /// Waits this long, then answers normally (for client timeouts).
    Delay(Duration),
}

struct User {
    id: u64,
    username: String,
    name: String,
    bot: bool,
    created_at: SystemTime,
}

#[derive(Clone)]
struct Token {
    id: u64,
    user_id: u64,
    options: TokenOptions,
    created_at: SystemTime,
    last_used_at: Option<SystemTime>,
}

struct Group {
    id: u64,
    /// Full path, e.g. `acme/platform`.
    full_path: String,
    name: String,
    parent_id: Option<u64>,
    visibility: String,
    members: HashMap<u64, u32>,
    hooks: BTreeMap<u64, HookRec>,
}

struct HookRec {
    hook: TestHook,
    created_at: SystemTime,
}

struct Project {
    project: TestProject,
    /// Namespace: a group id, or `None` for a user's namespace.
    group_id: Option<u64>,
    /// The owner, for a user's namespace.
    owner_id: Option<u64>,
    members: HashMap<u64, u32>,
    hooks: BTreeMap<u64, HookRec>,
    mrs: BTreeMap<u64, MergeRequest>,
    /// Unordered pair of refs → merge base.
    merge_bases: HashMap<(String, String), String>,
    /// Commits known beyond the merge requests' (for statuses).
    commits: BTreeSet<String>,
    statuses: Vec<StatusRec>,
    created_at: SystemTime,
    last_activity_at: SystemTime,
}

struct MergeRequest {
    id: u64,
    mr: TestMergeRequest,
    versions: Vec<VersionRec>,
    /// (head sha, path) → (new-side lines, old-side lines) in that version's diff.
    diff_lines: HashMap<(String, String), (BTreeSet<u64>, BTreeSet<u64>)>,
    discussions: Vec<Discussion>,
    created_at: SystemTime,
    updated_at: SystemTime,
}

struct VersionRec {
    version: TestVersion,
    created_at: SystemTime,
}

struct Discussion {
    id: String,
    individual_note: bool,
    notes: Vec<NoteRec>,
}

struct NoteRec {
    note: TestNote,
    created_at: SystemTime,
    updated_at: SystemTime,
    resolved_by: Option<u64>,
    resolved_at: Option<SystemTime>,
}

struct StatusRec {
    status: TestStatus,
    pipeline_id: u64,
    created_at: SystemTime,
    started_at: Option<SystemTime>,
    finished_at: Option<SystemTime>,
}

#[derive(Default)]
struct Window {
    used: u64,
    reset: u64,
}

struct State {
    /// `http(s)://127.0.0.1:<port>`.
    origin: String,
    /// `http(s)://127.0.0.1:<port>` plus the instance's sub-path (`/gitlab`), no trailing `/`.
    root_url: String,
    base_path: String,
    next_id: u64,
    users: BTreeMap<u64, User>,
    tokens: HashMap<String, Token>,
    groups: BTreeMap<u64, Group>,
    projects: BTreeMap<u64, Project>,
    rate_limit: u64,
    windows: HashMap<String, Window>,
    note_limit: Option<u64>,
    note_windows: HashMap<u64, Window>,
    idempotent_statuses: bool,
    faults: Vec<Fault>,
    requests: Vec<RecordedRequest>,
    counts: BTreeMap<String, u64>,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn user_by_name(&self, username: &str) -> Option<&User> {
        self.users
            .values()
            .find(|u| u.username.eq_ignore_ascii_case(username))
    }

    fn ensure_user(&mut self, username: &str) -> u64 {
        if let Some(u) = self.user_by_name(username) {
            return u.id;
        }
        let id = self.id();
        self.users.insert(
            id,
            User {
                id,
                username: username.to_string(),
                name: display_name(username),
                bot: false,
                created_at: SystemTime::now(),
            },
        );
        id
    }

    fn group_by_path(&self, full_path: &str) -> Option<&Group> {
        self.groups
            .values()
            .find(|g| g.full_path.eq_ignore_ascii_case(full_path))
    }

    fn project_mut(&mut self, id: u64) -> &mut Project {
        self.projects.get_mut(&id).expect("unknown project")
    }

    fn mr_mut(&mut self, project_id: u64, iid: u64) -> &mut MergeRequest {
        self.project_mut(project_id)
            .mrs
            .get_mut(&iid)
            .expect("unknown merge request")
    }

    /// Group ids from `group_id` up to its root.
    fn group_chain(&self, group_id: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut current = Some(group_id);
        while let Some(id) = current {
            if out.contains(&id) {
                break;
            }
            out.push(id);
            current = self.groups.get(&id).and_then(|g| g.parent_id);
        }
        out
    }

    /// The user's access level in a group (inherited from its ancestors).
    fn group_access(&self, group_id: u64, user_id: u64) -> u32 {
        self.group_chain(group_id)
            .iter()
            .filter_map(|g| self.groups.get(g)?.members.get(&user_id).copied())
            .max()
            .unwrap_or(access::NO_ACCESS)
    }

    /// The user's access level in a project: direct, or inherited from its groups; the owner of
    /// a personal project is its owner.
    fn project_access(&self, project_id: u64, user_id: u64) -> u32 {
        let Some(p) = self.projects.get(&project_id) else {
            return access::NO_ACCESS;
        };
        let direct = p
            .members
            .get(&user_id)
            .copied()
            .unwrap_or(access::NO_ACCESS);
        let inherited = p
            .group_id
            .map(|g| self.group_access(g, user_id))
            .unwrap_or(access::NO_ACCESS);
        let owner = if p.owner_id == Some(user_id) {
            access::OWNER
        } else {
            access::NO_ACCESS
        };
        direct.max(inherited).max(owner)
    }

    /// Every commit the project knows: merge request heads and versions, merge bases, added.
    fn knows_commit(&self, project_id: u64, sha: &str) -> bool {
        let Some(p) = self.projects.get(&project_id) else {
            return false;
        };
        p.commits.contains(sha)
            || p.merge_bases.values().any(|b| b == sha)
            || p.mrs.values().any(|m| {
                m.mr.sha == sha
                    || m.versions.iter().any(|v| {
                        v.version.head_commit_sha == sha
                            || v.version.base_commit_sha == sha
                            || v.version.start_commit_sha == sha
                    })
            })
    }
}

fn display_name(username: &str) -> String {
    let mut chars = username.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
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
pub struct GitLabServer {
    addr: SocketAddr,
    scheme: &'static str,
    base_path: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for GitLabServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitLabServer")
            .field("addr", &self.addr)
            .field("base_path", &self.base_path)
            .finish_non_exhaustive()
    }
}

impl Drop for GitLabServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn random_string(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

impl GitLabServer {
    /// Serves plain HTTP on 127.0.0.1, API under `/api/v4`, on the current tokio runtime.
    pub async fn start() -> GitLabServer {
        GitLabServer::start_with(GitLabConfig::default()).await
    }

    /// Serves on 127.0.0.1 (port of the system's choosing) as configured.
    pub async fn start_with(config: GitLabConfig) -> GitLabServer {
        let base_path = format!("/{}", config.base_path.trim_matches('/'));
        assert!(
            base_path.ends_with("/api/v4"),
            "GitLab's REST API lives at <instance>/api/v4, not {base_path}"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let instance_path = base_path.trim_end_matches("/api/v4");
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                origin: format!("{scheme}://{addr}"),
                root_url: format!("{scheme}://{addr}{instance_path}"),
                base_path: base_path.clone(),
                next_id: 100,
                users: BTreeMap::new(),
                tokens: HashMap::new(),
                groups: BTreeMap::new(),
                projects: BTreeMap::new(),
                rate_limit: 2000,
                windows: HashMap::new(),
                note_limit: None,
                note_windows: HashMap::new(),
                idempotent_statuses: false,
                faults: Vec::new(),
                requests: Vec::new(),
                counts: BTreeMap::new(),
            }),
        });
        let router = http::router(inner.clone());
        let task = crate::tls::serve(listener, router, config.tls);
        GitLabServer {
            addr,
            scheme,
            base_path,
            inner,
            task,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The instance's root, e.g. `http://127.0.0.1:41234` or `https://127.0.0.1:41234/gitlab`
    /// (what a user types as the GitLab URL; `web_url`s start with it).
    pub fn url(&self) -> String {
        self.lock().root_url.clone()
    }

    /// The REST root, e.g. `http://127.0.0.1:41234/api/v4`.
    pub fn api_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.addr, self.base_path)
    }

    // -- Users and tokens

    /// A user (`name` is the username, capitalised); returns its id.
    pub fn add_user(&self, username: &str) -> u64 {
        let mut st = self.lock();
        assert!(
            st.user_by_name(username).is_none(),
            "user {username} exists"
        );
        st.ensure_user(username)
    }

    /// A bot user, as GitLab makes one for each project or group access token
    /// (`project_<id>_bot_<hex>`); returns its id.
    pub fn add_bot(&self, username: &str) -> u64 {
        let id = self.add_user(username);
        self.lock().users.get_mut(&id).expect("user").bot = true;
        id
    }

    /// The id of a user, by username.
    pub fn user_id(&self, username: &str) -> Option<u64> {
        self.lock().user_by_name(username).map(|u| u.id)
    }

    /// A token of `user_id` with `scopes`, never expiring; returns the token (`glpat-…`).
    pub fn add_token(&self, user_id: u64, scopes: &[&str]) -> String {
        self.add_token_with(user_id, TokenOptions::scopes(scopes))
    }

    /// A token with its name, scopes, expiry and revocation set.
    pub fn add_token_with(&self, user_id: u64, options: TokenOptions) -> String {
        let mut st = self.lock();
        assert!(st.users.contains_key(&user_id), "unknown user {user_id}");
        let id = st.id();
        let token = format!("glpat-{}", random_string(20));
        st.tokens.insert(
            token.clone(),
            Token {
                id,
                user_id,
                options,
                created_at: SystemTime::now(),
                last_used_at: None,
            },
        );
        token
    }

    /// Revokes a token (it answers 401 `Token was revoked…` afterwards).
    pub fn revoke_token(&self, token: &str) {
        self.lock()
            .tokens
            .get_mut(token)
            .expect("unknown token")
            .options
            .revoked = true;
    }

    /// Sets a token's last valid day (a day before today: expired).
    pub fn set_token_expiry(&self, token: &str, expires_at: Option<time::Date>) {
        self.lock()
            .tokens
            .get_mut(token)
            .expect("unknown token")
            .options
            .expires_at = expires_at;
    }

    // -- Groups, projects, members

    /// A private group at `full_path` (`acme` or `acme/platform`; missing parents are made);
    /// returns its id.
    pub fn add_group(&self, full_path: &str) -> u64 {
        let mut st = self.lock();
        let mut parent: Option<u64> = None;
        let mut path = String::new();
        for part in full_path.split('/').filter(|p| !p.is_empty()) {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(part);
            if let Some(g) = st.group_by_path(&path) {
                parent = Some(g.id);
                continue;
            }
            let id = st.id();
            st.groups.insert(
                id,
                Group {
                    id,
                    full_path: path.clone(),
                    name: display_name(part),
                    parent_id: parent,
                    visibility: "private".into(),
                    members: HashMap::new(),
                    hooks: BTreeMap::new(),
                },
            );
            parent = Some(id);
        }
        parent.expect("a group path")
    }

    /// `private`, `internal` or `public`.
    pub fn set_group_visibility(&self, group_id: u64, visibility: &str) {
        self.lock()
            .groups
            .get_mut(&group_id)
            .expect("unknown group")
            .visibility = visibility.to_string();
    }

    /// A private project `path` in `namespace` (a group's full path, made when missing, or a
    /// username), default branch `main`, not archived; returns its id.
    pub fn add_project(&self, namespace: &str, path: &str) -> u64 {
        let user_namespace = self.lock().user_by_name(namespace).map(|u| u.id);
        let group_id = match user_namespace {
            Some(_) => None,
            None => Some(self.add_group(namespace)),
        };
        let mut st = self.lock();
        let id = st.id();
        let namespace = match group_id {
            Some(g) => st.groups[&g].full_path.clone(),
            None => namespace.to_string(),
        };
        let http_url_to_repo = format!("{}/{namespace}/{path}.git", st.root_url);
        let now = SystemTime::now();
        st.projects.insert(
            id,
            Project {
                project: TestProject {
                    id,
                    namespace,
                    path: path.to_string(),
                    name: path.to_string(),
                    description: None,
                    default_branch: Some("main".into()),
                    visibility: "private".into(),
                    archived: false,
                    http_url_to_repo,
                },
                group_id,
                owner_id: user_namespace,
                members: HashMap::new(),
                hooks: BTreeMap::new(),
                mrs: BTreeMap::new(),
                merge_bases: HashMap::new(),
                commits: BTreeSet::new(),
                statuses: Vec::new(),
                created_at: now,
                last_activity_at: now,
            },
        );
        id
    }

    /// The project as it is now.
    pub fn project(&self, project_id: u64) -> TestProject {
        self.lock().project_mut(project_id).project.clone()
    }

    /// Changes a project (visibility, archived, default branch, name, clone URL…). Changing
    /// `namespace` or `path` moves it: the old path answers 404 afterwards.
    pub fn update_project(&self, project_id: u64, f: impl FnOnce(&mut TestProject)) {
        let mut st = self.lock();
        let p = st.project_mut(project_id);
        f(&mut p.project);
        p.project.id = project_id;
        let namespace = p.project.namespace.clone();
        let group_id = st.group_by_path(&namespace).map(|g| g.id);
        let owner = st.user_by_name(&namespace).map(|u| u.id);
        let p = st.project_mut(project_id);
        p.group_id = group_id;
        p.owner_id = if group_id.is_some() { None } else { owner };
    }

    /// Makes `user_id` a direct member of a project (`access::DEVELOPER`, …; `NO_ACCESS`
    /// removes).
    pub fn add_project_member(&self, project_id: u64, user_id: u64, access_level: u32) {
        let mut st = self.lock();
        let members = &mut st.project_mut(project_id).members;
        if access_level == access::NO_ACCESS {
            members.remove(&user_id);
        } else {
            members.insert(user_id, access_level);
        }
    }

    /// Makes `user_id` a member of a group (inherited by its subgroups and projects).
    pub fn add_group_member(&self, group_id: u64, user_id: u64, access_level: u32) {
        let mut st = self.lock();
        let members = &mut st.groups.get_mut(&group_id).expect("unknown group").members;
        if access_level == access::NO_ACCESS {
            members.remove(&user_id);
        } else {
            members.insert(user_id, access_level);
        }
    }

    // -- Merge requests

    /// Registers a merge request, without diff versions yet (GitLab computes them a moment
    /// after creation: `diff_refs` is `null` until [`GitLabServer::push_version`]).
    pub fn add_merge_request(&self, project_id: u64, mr: TestMergeRequest) {
        let mut st = self.lock();
        st.ensure_user(&mr.author);
        let id = st.id();
        let now = SystemTime::now();
        let p = st.project_mut(project_id);
        assert!(
            !p.mrs.contains_key(&mr.iid),
            "merge request !{} exists",
            mr.iid
        );
        p.mrs.insert(
            mr.iid,
            MergeRequest {
                id,
                mr,
                versions: Vec::new(),
                diff_lines: HashMap::new(),
                discussions: Vec::new(),
                created_at: now,
                updated_at: now,
            },
        );
    }

    /// A push: a new diff version (base = merge base, start = target branch head, head =
    /// source branch head); the merge request's `sha` and `diff_refs` follow it. Returns the
    /// version id.
    pub fn push_version(
        &self,
        project_id: u64,
        iid: u64,
        base_sha: &str,
        start_sha: &str,
        head_sha: &str,
    ) -> u64 {
        let mut st = self.lock();
        let id = st.id();
        let now = SystemTime::now();
        let mr = st.mr_mut(project_id, iid);
        mr.versions.push(VersionRec {
            version: TestVersion {
                id,
                base_commit_sha: base_sha.into(),
                start_commit_sha: start_sha.into(),
                head_commit_sha: head_sha.into(),
            },
            created_at: now,
        });
        mr.mr.sha = head_sha.into();
        mr.updated_at = now;
        id
    }

    /// Changes a merge request (title, state, draft, branches…).
    pub fn update_merge_request(
        &self,
        project_id: u64,
        iid: u64,
        f: impl FnOnce(&mut TestMergeRequest),
    ) {
        let mut st = self.lock();
        let mr = st.mr_mut(project_id, iid);
        f(&mut mr.mr);
        mr.mr.iid = iid;
        mr.updated_at = SystemTime::now();
    }

    /// The merge request as it is now.
    pub fn merge_request(&self, project_id: u64, iid: u64) -> TestMergeRequest {
        self.lock().mr_mut(project_id, iid).mr.clone()
    }

    /// Its diff versions, oldest first.
    pub fn versions(&self, project_id: u64, iid: u64) -> Vec<TestVersion> {
        self.lock()
            .mr_mut(project_id, iid)
            .versions
            .iter()
            .map(|v| v.version.clone())
            .collect()
    }

    /// Declares new-side (`new_line`) lines of `path` that are in the diff of the version whose
    /// head is `head_sha`. Once any line is declared for a version, diff notes on that version
    /// must name one; with none declared, any line is accepted.
    pub fn set_diff_lines(
        &self,
        project_id: u64,
        iid: u64,
        head_sha: &str,
        path: &str,
        lines: &[u64],
    ) {
        let mut st = self.lock();
        st.mr_mut(project_id, iid)
            .diff_lines
            .entry((head_sha.to_string(), path.to_string()))
            .or_default()
            .0
            .extend(lines);
    }

    /// Declares old-side (`old_line`, removed) lines of `path` in a version's diff.
    pub fn set_old_diff_lines(
        &self,
        project_id: u64,
        iid: u64,
        head_sha: &str,
        path: &str,
        lines: &[u64],
    ) {
        let mut st = self.lock();
        st.mr_mut(project_id, iid)
            .diff_lines
            .entry((head_sha.to_string(), path.to_string()))
            .or_default()
            .1
            .extend(lines);
    }

    /// What `GET /projects/:id/repository/merge_base?refs[]=a&refs[]=b` answers (either order).
    pub fn set_merge_base(&self, project_id: u64, a: &str, b: &str, merge_base: &str) {
        let mut st = self.lock();
        st.project_mut(project_id)
            .merge_bases
            .insert(ref_pair(a, b), merge_base.to_string());
    }

    /// A commit the project has (statuses may be posted on it), beyond the merge requests'.
    pub fn add_commit(&self, project_id: u64, sha: &str) {
        self.lock()
            .project_mut(project_id)
            .commits
            .insert(sha.to_string());
    }

    // -- Notes and discussions written by people

    /// A plain note by `username` (as if written on GitLab); returns its id.
    pub fn add_note(&self, project_id: u64, iid: u64, username: &str, body: &str) -> u64 {
        let mut st = self.lock();
        let author = st.ensure_user(username);
        http::create_discussion(&mut st, project_id, iid, author, body, None, true).1
    }

    /// A thread by `username`, on the diff when `position` is given (not checked against the
    /// diff); returns the discussion id.
    pub fn add_discussion(
        &self,
        project_id: u64,
        iid: u64,
        username: &str,
        body: &str,
        position: Option<TestPosition>,
    ) -> String {
        let mut st = self.lock();
        let author = st.ensure_user(username);
        http::create_discussion(&mut st, project_id, iid, author, body, position, false).0
    }

    /// A reply by `username` in a discussion; returns the note id.
    pub fn add_reply(
        &self,
        project_id: u64,
        iid: u64,
        discussion_id: &str,
        username: &str,
        body: &str,
    ) -> u64 {
        let mut st = self.lock();
        let author = st.ensure_user(username);
        http::add_reply(&mut st, project_id, iid, discussion_id, author, body)
            .unwrap_or_else(|_| panic!("no discussion {discussion_id} on !{iid}"))
    }

    /// Resolves or unresolves a thread as `username` would on GitLab.
    pub fn set_discussion_resolved(
        &self,
        project_id: u64,
        iid: u64,
        discussion_id: &str,
        username: &str,
        resolved: bool,
    ) {
        let mut st = self.lock();
        let by = st.ensure_user(username);
        let mr = st.mr_mut(project_id, iid);
        let d = mr
            .discussions
            .iter_mut()
            .find(|d| d.id == discussion_id)
            .expect("unknown discussion");
        http::resolve(d, resolved, by);
    }

    /// The merge request's discussions, oldest first.
    pub fn discussions(&self, project_id: u64, iid: u64) -> Vec<TestDiscussion> {
        let mut st = self.lock();
        st.mr_mut(project_id, iid)
            .discussions
            .iter()
            .map(|d| TestDiscussion {
                id: d.id.clone(),
                individual_note: d.individual_note,
                notes: d.notes.iter().map(|n| n.note.clone()).collect(),
            })
            .collect()
    }

    /// Every note of the merge request (threads' replies included), oldest first.
    pub fn notes(&self, project_id: u64, iid: u64) -> Vec<TestNote> {
        let mut notes: Vec<TestNote> = self
            .discussions(project_id, iid)
            .into_iter()
            .flat_map(|d| d.notes)
            .collect();
        notes.sort_by_key(|n| n.id);
        notes
    }

    // -- Statuses and hooks

    /// Every commit status posted to the project, in order (a status moved from pending to
    /// running to success is one entry, its `status` the latest).
    pub fn statuses(&self, project_id: u64) -> Vec<TestStatus> {
        self.lock()
            .project_mut(project_id)
            .statuses
            .iter()
            .map(|s| s.status.clone())
            .collect()
    }

    /// The latest status named `name` on `sha`.
    pub fn latest_status(&self, project_id: u64, sha: &str, name: &str) -> Option<TestStatus> {
        self.statuses(project_id)
            .into_iter()
            .rev()
            .find(|s| s.sha == sha && s.name == name)
    }

    /// Newer GitLab (18.3+) accepts posting a status to the state it is in; older releases
    /// answer 400 (the default here).
    pub fn set_idempotent_statuses(&self, idempotent: bool) {
        self.lock().idempotent_statuses = idempotent;
    }

    /// The project's webhooks, tokens included.
    pub fn project_hooks(&self, project_id: u64) -> Vec<TestHook> {
        self.lock()
            .project_mut(project_id)
            .hooks
            .values()
            .map(|h| h.hook.clone())
            .collect()
    }

    /// The group's webhooks, tokens included.
    pub fn group_hooks(&self, group_id: u64) -> Vec<TestHook> {
        self.lock()
            .groups
            .get(&group_id)
            .expect("unknown group")
            .hooks
            .values()
            .map(|h| h.hook.clone())
            .collect()
    }

    // -- Limits, faults, observation

    /// API requests per token and minute before 429 (default 2,000, GitLab.com's).
    pub fn set_rate_limit(&self, per_minute: u64) {
        self.lock().rate_limit = per_minute;
    }

    /// The note creation application limit per user and minute (GitLab.com: 60; off by
    /// default; creations are counted either way): past it, note and discussion creation
    /// answer 429 while the `RateLimit-*` headers still show quota.
    pub fn set_note_creation_limit(&self, per_minute: Option<u64>) {
        self.lock().note_limit = per_minute;
    }

    /// Queues a fault; faults are consumed in the order injected by matching requests.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Requests served by each of the server's routes so far, keyed `METHOD /template`
    /// (`POST /projects/:id/merge_requests/:iid/discussions`); requests no route served are
    /// counted under `METHOD (unmatched)`.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.lock().counts.clone()
    }

    /// Requests served by one route, e.g. `request_count("GET", "/projects/:id")`.
    pub fn request_count(&self, method: &str, template: &str) -> u64 {
        self.lock()
            .counts
            .get(&format!("{} {template}", method.to_ascii_uppercase()))
            .copied()
            .unwrap_or(0)
    }

    /// Every recorded request checked against GitLab: a path under the API base path, an
    /// endpoint `@gitbeaker/core` 43.8.0 calls for that method and path ([`RouteTable`]), and,
    /// for the routes this server implements, the parameters GitLab documents as required
    /// (with their allowed values). One line per problem, naming the request.
    pub fn violations(&self) -> Vec<String> {
        let (requests, base_path) = {
            let st = self.lock();
            (st.requests.clone(), st.base_path.clone())
        };
        validate::violations(&requests, &base_path)
    }
}

/// The (sorted) pair of refs a merge base is registered under.
fn ref_pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// Every endpoint of `@gitbeaker/core` (read once from the installed package).
pub fn gitbeaker_routes() -> Result<&'static RouteTable, String> {
    RouteTable::load()
}
