//! A Bitbucket Cloud API stand-in for tests: an axum server on 127.0.0.1 serving the REST 2.0
//! calls Picket's Bitbucket client makes, under `/2.0` as `api.bitbucket.org` does, from
//! in-memory state (one workspace, its repositories, pull requests with their commits,
//! comments, Code Insights reports and annotations, build statuses, hooks, permissions), with
//! access tokens and their scopes, pagination, fault injection, a record of every request, and
//! a check of those requests against the route table of the pinned npm `bitbucket` 2.12.0
//! ([`BitbucketServer::violations`]).
//!
//! Shapes follow Bitbucket Cloud's REST API reference: listings are
//! `{"size", "page", "pagelen", "next", "previous", "values"}`; errors are
//! `{"type": "error", "error": {"message"}}`, except Code Insights', which are
//! `{"key", "message", "arguments"}`.
//!
//! Semantics worth knowing (as Bitbucket documents or answers them):
//! - every request needs `Authorization: Bearer <access token>`: none or an unknown token
//!   answers 401; a token without the scope an endpoint needs answers 403 with the granted and
//!   required scopes; every answer carries `X-OAuth-Scopes` (the token's scopes),
//!   `X-Accepted-OAuth-Scopes` and `X-Credential-Type`;
//! - an access token acts as a user named after it (`GET /user`), and is the author of what it
//!   posts; a repository access token sees its one repository and no workspace resource (403);
//! - pull request answers carry 12-digit abbreviated commit hashes; `GET .../commit/{hash}`
//!   answers the full one for any unique prefix;
//! - `pagelen` is at most 100 (50 for pull requests), more answers 400;
//! - an inline comment on a line outside the lines registered with
//!   [`BitbucketServer::set_diff_lines`] answers 400 (with none registered, any line is taken);
//! - annotations: at most 100 a request and 1,000 a report (400), `summary` at most 450
//!   characters (400), `external_id` required and unique per report (the same id updates);
//! - a build status `key` is at most 40 characters, `url` is required;
//! - resolving a comment already resolved answers 409, a reply 400.

mod http;
mod routes;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::Value;

/// The access token scopes of a workspace access token made for Picket.
pub const PICKET_SCOPES: &[&str] = &["pullrequest:write", "webhook", "repository:admin"];

/// A pull request registered with [`BitbucketServer::add_pull`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestPull {
    pub id: u64,
    pub title: String,
    /// The source branch and its head commit (full hash; answered abbreviated).
    pub source_branch: String,
    pub head: String,
    /// The destination branch and its tip (full hash; answered abbreviated).
    pub destination_branch: String,
    pub base: String,
    /// The author's nickname.
    pub author: String,
    pub draft: bool,
    /// The source branch lives in a fork `<author>/<slug>` (another repository uuid).
    pub from_fork: bool,
    /// `OPEN`, `MERGED`, `DECLINED` or `SUPERSEDED`.
    pub state: String,
}

impl TestPull {
    /// An open pull request `id` from `source_branch` at `head` into `main` at `base`.
    pub fn open(id: u64, source_branch: &str, head: &str, base: &str, author: &str) -> TestPull {
        TestPull {
            id,
            title: format!("Pull request {id}"),
            source_branch: source_branch.to_string(),
            head: head.to_string(),
            destination_branch: "main".to_string(),
            base: base.to_string(),
            author: author.to_string(),
            draft: false,
            from_fork: false,
            state: "OPEN".to_string(),
        }
    }
}

/// A pull request comment as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestComment {
    pub id: u64,
    pub pull_request: u64,
    /// The author's nickname (a token's name for what a token posted).
    pub author: String,
    pub raw: String,
    /// `(path, to)` of an inline comment (`to` absent for a comment on an old line).
    pub inline: Option<(String, Option<u64>)>,
    pub parent: Option<u64>,
    pub deleted: bool,
    /// Who resolved its thread, while it is resolved.
    pub resolved_by: Option<String>,
}

/// A Code Insights report and its annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct TestReport {
    pub commit: String,
    /// The report id in its URL (its `external_id`).
    pub id: String,
    /// The last body the client sent.
    pub body: Value,
    /// The annotations, in the order first sent, each the last body sent for its
    /// `external_id`.
    pub annotations: Vec<Value>,
}

/// A build status.
#[derive(Debug, Clone, PartialEq)]
pub struct TestBuildStatus {
    pub commit: String,
    pub key: String,
    /// The last body the client sent.
    pub body: Value,
}

/// A webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestHook {
    /// `{...}`, braces included.
    pub uuid: String,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
    pub description: String,
    /// The secret Bitbucket signs deliveries with (never answered back: `secret_set`).
    pub secret: Option<String>,
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, percent-encoded as sent (`/2.0/repositories/acme/web`).
    pub path: String,
    pub query: Option<String>,
    /// The name of the access token it carried, when the server knew the token.
    pub token: Option<String>,
    /// The `Authorization` scheme (`Bearer`), never the credential.
    pub auth_scheme: Option<String>,
    /// The JSON body (invalid JSON is kept as `Value::String(raw)`).
    pub body: Option<Value>,
    /// `content-type`, when sent.
    pub content_type: Option<String>,
    /// The status answered (0 while in flight).
    pub status: u16,
    pub response: Option<Value>,
    /// When the server received it.
    pub at: std::time::Instant,
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
    /// 429, with `Retry-After` when given (Bitbucket sometimes sends no header at all).
    TooManyRequests { retry_after_secs: Option<u64> },
    /// A bare 5xx (500, 502, 503, 504) with an HTML body.
    ServerError { status: u16 },
}

struct Token {
    name: String,
    scopes: Vec<String>,
    /// A repository access token's repository (slug); `None`: the workspace's.
    repository: Option<String>,
}

struct Account {
    uuid: String,
    account_id: String,
    display_name: String,
}

struct PullRec {
    pull: TestPull,
    created: SystemTime,
    updated: SystemTime,
}

struct Report {
    uuid: String,
    body: Value,
    /// external_id → (uuid, body), in first-sent order.
    annotations: Vec<(String, String, Value)>,
    created: SystemTime,
    updated: SystemTime,
}

struct Status {
    uuid: String,
    body: Value,
    created: SystemTime,
    updated: SystemTime,
}

struct Hook {
    hook: TestHook,
    created: SystemTime,
}

struct Repo {
    uuid: String,
    slug: String,
    main_branch: String,
    clone_url: String,
    private: bool,
    created: SystemTime,
    /// Full hashes of the commits the repository has.
    commits: BTreeSet<String>,
    /// Branch name → its tip.
    branches: HashMap<String, String>,
    /// (commit, commit) → merge base, registered either way round.
    merge_bases: HashMap<(String, String), String>,
    pulls: BTreeMap<u64, PullRec>,
    /// nickname → (permission, explicitly granted on the repository).
    permissions: BTreeMap<String, (String, bool)>,
    /// (pull request, path) → new-side lines of the diff.
    diff_lines: HashMap<(u64, String), BTreeSet<u64>>,
    /// (commit, report id) → report.
    reports: BTreeMap<(String, String), Report>,
    /// (commit, key) → build status.
    statuses: BTreeMap<(String, String), Status>,
    hooks: Vec<Hook>,
}

struct CommentRec {
    repo: String,
    comment: TestComment,
    created: SystemTime,
    updated: SystemTime,
}

struct State {
    base_url: String,
    workspace: String,
    workspace_uuid: String,
    next_id: u64,
    tokens: HashMap<String, Token>,
    accounts: BTreeMap<String, Account>,
    repos: BTreeMap<String, Repo>,
    comments: Vec<CommentRec>,
    /// The status a report write answers while Code Insights is unavailable.
    code_insights_refusal: Option<u16>,
    faults: Vec<Fault>,
    requests: Vec<RecordedRequest>,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn uuid(&mut self) -> String {
        let n = self.id();
        format!("{{{:08x}-0000-4000-8000-{:012x}}}", n, n * 7919)
    }

    fn account(&mut self, nickname: &str) -> &Account {
        if !self.accounts.contains_key(nickname) {
            let uuid = self.uuid();
            let n = self.id();
            self.accounts.insert(
                nickname.to_string(),
                Account {
                    uuid,
                    account_id: format!("557058:{n:08x}-0000-0000-0000-{n:012x}"),
                    display_name: nickname.to_string(),
                },
            );
        }
        &self.accounts[nickname]
    }

    fn repo_mut(&mut self, slug: &str) -> &mut Repo {
        self.repos
            .get_mut(slug)
            .unwrap_or_else(|| panic!("unknown repository {slug}"))
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
pub struct BitbucketServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for BitbucketServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitbucketServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for BitbucketServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn random_token() -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::thread_rng();
    let body: String = (0..64)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    format!("ATCTT3x{body}")
}

impl BitbucketServer {
    /// Starts serving workspace `workspace` on 127.0.0.1 on a port of the system's choosing, on
    /// the current tokio runtime.
    pub async fn start(workspace: &str) -> BitbucketServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let mut state = State {
            base_url: format!("http://{addr}"),
            workspace: workspace.to_string(),
            workspace_uuid: String::new(),
            next_id: 100,
            tokens: HashMap::new(),
            accounts: BTreeMap::new(),
            repos: BTreeMap::new(),
            comments: Vec::new(),
            code_insights_refusal: None,
            faults: Vec::new(),
            requests: Vec::new(),
        };
        state.workspace_uuid = state.uuid();
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
        });
        let router = http::router(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        BitbucketServer { addr, inner, task }
    }

    /// The REST root, `http://127.0.0.1:<port>/2.0`.
    pub fn api_url(&self) -> String {
        format!("http://{}/2.0", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }

    /// A workspace access token named `name` (its user's nickname and display name) with
    /// `scopes`; returns the token.
    pub fn add_token(&self, name: &str, scopes: &[&str]) -> String {
        self.add_token_for(name, scopes, None)
    }

    /// A repository access token of repository `slug`; returns the token.
    pub fn add_repository_token(&self, name: &str, slug: &str, scopes: &[&str]) -> String {
        self.add_token_for(name, scopes, Some(slug))
    }

    fn add_token_for(&self, name: &str, scopes: &[&str], repository: Option<&str>) -> String {
        let token = random_token();
        let mut st = self.lock();
        st.account(name);
        st.tokens.insert(
            token.clone(),
            Token {
                name: name.to_string(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                repository: repository.map(str::to_string),
            },
        );
        token
    }

    /// Revokes a token: it answers 401 from now on.
    pub fn revoke_token(&self, token: &str) {
        self.lock().tokens.remove(token);
    }

    /// A user of the workspace (created on first mention); returns its uuid.
    pub fn add_user(&self, nickname: &str) -> String {
        self.lock().account(nickname).uuid.clone()
    }

    /// A private repository `slug` of the workspace whose default branch is `main_branch`;
    /// returns its uuid (braces included). Its HTTPS clone link is `clone_url` with the
    /// caller's name as user, as Bitbucket writes it.
    pub fn add_repo(&self, slug: &str, main_branch: &str, clone_url: &str) -> String {
        let mut st = self.lock();
        let uuid = st.uuid();
        st.repos.insert(
            slug.to_string(),
            Repo {
                uuid: uuid.clone(),
                slug: slug.to_string(),
                main_branch: main_branch.to_string(),
                clone_url: clone_url.to_string(),
                private: true,
                created: SystemTime::now(),
                commits: BTreeSet::new(),
                branches: HashMap::new(),
                merge_bases: HashMap::new(),
                pulls: BTreeMap::new(),
                permissions: BTreeMap::new(),
                diff_lines: HashMap::new(),
                reports: BTreeMap::new(),
                statuses: BTreeMap::new(),
                hooks: Vec::new(),
            },
        );
        uuid
    }

    /// Registers a commit (full hash) of the repository.
    pub fn add_commit(&self, slug: &str, hash: &str) {
        assert_eq!(hash.len(), 40, "a full hash");
        self.lock()
            .repo_mut(slug)
            .commits
            .insert(hash.to_ascii_lowercase());
    }

    /// Points branch `name` at commit `hash` (registered as a commit too).
    pub fn set_branch(&self, slug: &str, name: &str, hash: &str) {
        self.add_commit(slug, hash);
        self.lock()
            .repo_mut(slug)
            .branches
            .insert(name.to_string(), hash.to_string());
    }

    /// What `GET .../merge-base/{a}..{b}` answers for those two commits (either way round).
    pub fn set_merge_base(&self, slug: &str, a: &str, b: &str, base: &str) {
        self.add_commit(slug, base);
        let mut st = self.lock();
        let repo = st.repo_mut(slug);
        repo.merge_bases
            .insert((a.to_string(), b.to_string()), base.to_string());
        repo.merge_bases
            .insert((b.to_string(), a.to_string()), base.to_string());
    }

    /// Registers a pull request; its commits become the repository's, its destination branch
    /// points at `base` unless set already, its source branch at `head`.
    pub fn add_pull(&self, slug: &str, pull: TestPull) {
        self.add_commit(slug, &pull.head);
        self.add_commit(slug, &pull.base);
        let mut st = self.lock();
        st.account(&pull.author);
        let repo = st.repo_mut(slug);
        repo.branches
            .entry(pull.destination_branch.clone())
            .or_insert_with(|| pull.base.clone());
        repo.branches
            .insert(pull.source_branch.clone(), pull.head.clone());
        let now = SystemTime::now();
        repo.pulls.insert(
            pull.id,
            PullRec {
                pull,
                created: now,
                updated: now,
            },
        );
    }

    /// Edits a registered pull request (a push moves `head`, ...).
    pub fn update_pull(&self, slug: &str, id: u64, f: impl FnOnce(&mut TestPull)) {
        let mut st = self.lock();
        let repo = st.repo_mut(slug);
        let rec = repo.pulls.get_mut(&id).expect("unknown pull request");
        f(&mut rec.pull);
        rec.updated = SystemTime::now();
        let head = rec.pull.head.clone();
        let branch = rec.pull.source_branch.clone();
        repo.commits.insert(head.clone());
        repo.branches.insert(branch, head);
    }

    /// `nickname`'s effective permission on the repository (`read`, `write`, `admin`), granted
    /// on the repository itself (`explicit`) or through a group.
    pub fn set_permission(&self, slug: &str, nickname: &str, permission: &str, explicit: bool) {
        let mut st = self.lock();
        st.account(nickname);
        st.repo_mut(slug)
            .permissions
            .insert(nickname.to_string(), (permission.to_string(), explicit));
    }

    /// Registers the new-side lines of `path` that are part of pull request `id`'s diff.
    pub fn set_diff_lines(&self, slug: &str, id: u64, path: &str, lines: &[u64]) {
        self.lock()
            .repo_mut(slug)
            .diff_lines
            .entry((id, path.to_string()))
            .or_default()
            .extend(lines.iter().copied());
    }

    /// Code Insights unavailable: report writes answer `status` (403 or 404); `None` makes it
    /// available again.
    pub fn refuse_code_insights(&self, status: Option<u16>) {
        self.lock().code_insights_refusal = status;
    }

    /// A comment written by `author` on pull request `id` (as if on bitbucket.org); returns its
    /// id. `inline`: `(path, line)`; `parent`: the comment it answers. Diff lines are not
    /// checked.
    pub fn add_comment(
        &self,
        slug: &str,
        id: u64,
        author: &str,
        raw: &str,
        inline: Option<(&str, u64)>,
        parent: Option<u64>,
    ) -> u64 {
        let mut st = self.lock();
        st.account(author);
        assert!(
            st.repos[slug].pulls.contains_key(&id),
            "unknown pull request"
        );
        let cid = st.id();
        let now = SystemTime::now();
        st.comments.push(CommentRec {
            repo: slug.to_string(),
            comment: TestComment {
                id: cid,
                pull_request: id,
                author: author.to_string(),
                raw: raw.to_string(),
                inline: inline.map(|(p, l)| (p.to_string(), Some(l))),
                parent,
                deleted: false,
                resolved_by: None,
            },
            created: now,
            updated: now,
        });
        cid
    }

    /// Deletes a comment (as its author would): it stays, `deleted`, its text gone.
    pub fn delete_comment(&self, comment: u64) {
        let mut st = self.lock();
        let c = st
            .comments
            .iter_mut()
            .find(|c| c.comment.id == comment)
            .expect("unknown comment");
        c.comment.deleted = true;
        c.comment.raw.clear();
    }

    /// Resolves (`Some(by)`) or reopens a comment's thread.
    pub fn set_resolved(&self, comment: u64, by: Option<&str>) {
        let mut st = self.lock();
        let c = st
            .comments
            .iter_mut()
            .find(|c| c.comment.id == comment)
            .expect("unknown comment");
        c.comment.resolved_by = by.map(str::to_string);
    }

    /// Comments of pull request `id`, oldest first.
    pub fn comments(&self, slug: &str, id: u64) -> Vec<TestComment> {
        self.lock()
            .comments
            .iter()
            .filter(|c| c.repo == slug && c.comment.pull_request == id)
            .map(|c| c.comment.clone())
            .collect()
    }

    /// Reports of the repository, by commit and id.
    pub fn reports(&self, slug: &str) -> Vec<TestReport> {
        self.lock().repos[slug]
            .reports
            .iter()
            .map(|((commit, id), r)| TestReport {
                commit: commit.clone(),
                id: id.clone(),
                body: r.body.clone(),
                annotations: r.annotations.iter().map(|(_, _, a)| a.clone()).collect(),
            })
            .collect()
    }

    /// Build statuses of the repository, by commit and key.
    pub fn statuses(&self, slug: &str) -> Vec<TestBuildStatus> {
        self.lock().repos[slug]
            .statuses
            .iter()
            .map(|((commit, key), s)| TestBuildStatus {
                commit: commit.clone(),
                key: key.clone(),
                body: s.body.clone(),
            })
            .collect()
    }

    /// Hooks of the repository, oldest first.
    pub fn hooks(&self, slug: &str) -> Vec<TestHook> {
        self.lock().repos[slug]
            .hooks
            .iter()
            .map(|h| h.hook.clone())
            .collect()
    }

    /// Queues a fault; faults are consumed in the order injected by matching requests.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Checks every recorded request against the route table of npm `bitbucket` 2.12.0
    /// (`tests/bitbucket/node_modules/bitbucket/lib/index.js`, installed by
    /// `make bitbucket-fixtures`): an operation for the method and the path under `/2.0`,
    /// path parameters of their declared type, declared query parameters of their type and
    /// enum (required ones present; besides those, only Bitbucket's generic `page`, `pagelen`,
    /// `q`, `sort` and `fields`), a body where the operation requires one, JSON bodies sent as
    /// `application/json`, and an access token on every request. One line per violation,
    /// naming the request.
    pub fn violations(&self) -> Vec<String> {
        routes::violations(&self.requests())
    }
}
