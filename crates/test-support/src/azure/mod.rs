//! An Azure DevOps Services stand-in for tests: an axum server on 127.0.0.1 with in-memory state
//! for one organization and one project, answering the REST calls Picket's Azure DevOps client
//! makes (connection data, Git repositories, refs, merge bases, pull requests with their
//! iterations and changes, threads and comments, commit statuses, pushes, service-hook
//! subscriptions), authenticating them like Azure (HTTP Basic, any user name, a personal access
//! token it issued as the password), paging with `$top`/`$skip`, injecting faults, recording
//! every request and checking the recorded requests against the route table of the pinned npm
//! `azure-devops-extension-api` ([`AzureServer::violations`], see `routes.rs`).
//!
//! The API root is `http://127.0.0.1:<port>/<organization>` ([`AzureServer::api_url`]), as
//! `https://dev.azure.com/<organization>` is. Shapes follow Azure DevOps's REST reference
//! (Git 7.1: `GitRepository`, `GitPullRequest`, `GitPullRequestIteration`,
//! `GitPullRequestCommentThread`, `Comment`, `GitStatus`, `GitPush`; Service Hooks
//! `Subscription`; Location `ConnectionData`): collections as `{"count", "value"}`, enums as
//! their camelCase names, errors as `{"$id", "innerException", "message", "typeName",
//! "typeKey", "errorCode", "eventId"}`.
//!
//! Semantics worth knowing:
//! - a request without a credential, or with a token the server did not issue (or revoked),
//!   answers 401;
//! - a comment can be edited by its author only (403 otherwise);
//! - a thread on a file registered with [`AzureServer::refuse_inline`] answers 400, and one
//!   whose `pullRequestThreadContext` names an iteration the pull request does not have, too;
//! - comment ids count from 1 within each thread; thread ids are server-wide;
//! - subscriptions answer `basicAuthPassword` masked (`********`);
//!   [`AzureServer::subscriptions`] shows what was sent.

mod http;
mod routes;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng as _;

/// A pull request registered with [`AzureServer::add_pull`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestPullRequest {
    pub id: u64,
    pub title: String,
    /// Branch names without `refs/heads/`.
    pub source_branch: String,
    pub target_branch: String,
    /// `lastMergeSourceCommit`; empty: Azure has not computed the merge yet (the field is left
    /// out, and no iteration is made).
    pub head: String,
    /// `lastMergeTargetCommit`.
    pub base: String,
    /// The first iteration's `commonRefCommit`.
    pub merge_base: String,
    /// Paths (without a leading `/`) the first iteration changes.
    pub changed_paths: Vec<String>,
    pub draft: bool,
    /// `forkSource` is present.
    pub from_fork: bool,
    /// The creator's unique name.
    pub author: String,
}

/// A thread as the server holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestThread {
    pub id: u64,
    /// `active`, `fixed`, `closed`, ... (`unknown` when none was given).
    pub status: String,
    /// `threadContext.filePath` (with its leading `/`).
    pub file_path: Option<String>,
    /// `threadContext.rightFileStart.line`.
    pub line: Option<u64>,
    /// `pullRequestThreadContext` as sent.
    pub pull_request_context: Option<serde_json::Value>,
    pub comments: Vec<TestComment>,
}

/// A comment of a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestComment {
    pub id: u64,
    pub parent_comment_id: u64,
    /// The author's unique name.
    pub author: String,
    pub content: String,
    /// `text` or `system`.
    pub comment_type: String,
    pub deleted: bool,
}

/// A commit status as posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestStatus {
    pub id: u64,
    /// The commit it is on (a pull request status: the pull request's head when posted).
    pub commit: String,
    /// The pull request it was posted on (`POST .../pullRequests/{id}/statuses`); `None` for a
    /// commit status.
    pub pull_request: Option<u64>,
    pub state: String,
    pub name: String,
    pub genre: Option<String>,
    pub description: Option<String>,
    pub target_url: Option<String>,
    /// The poster's unique name.
    pub author: String,
    /// The pull request iteration it was posted for (`iterationId`), when given.
    pub iteration: Option<u64>,
}

/// A service-hook subscription as created or replaced, with the password as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSubscription {
    pub id: String,
    pub event_type: String,
    pub resource_version: String,
    pub publisher_inputs: BTreeMap<String, String>,
    pub consumer_inputs: BTreeMap<String, String>,
    /// How many times it was replaced (PUT).
    pub replaced: u32,
}

/// The credential a request carried, as the server judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// Basic authentication with a token the server issued to this user (unique name).
    Pat { user: String },
    /// A credential the server refused.
    Invalid,
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, percent-encoded as sent (`/acme/proj/_apis/git/repositories`).
    pub path: String,
    pub query: Option<String>,
    pub auth: Auth,
    /// The JSON body, when there was one (invalid JSON is `Some(Value::String(raw))`).
    pub body: Option<serde_json::Value>,
    pub at: Instant,
    /// The status the server answered (0 while in flight).
    pub status: u16,
    pub response: Option<serde_json::Value>,
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
    /// 429 with `Retry-After` and Azure's `X-RateLimit-*` headers.
    TooManyRequests { retry_after_secs: u64 },
    /// A bare 5xx (e.g. 503).
    ServerError { status: u16 },
    /// 203 with an HTML sign-in page, as Azure answers a credential it does not take.
    SignInPage,
    /// Waits this long, then answers normally.
    Delay(Duration),
}

struct Identity {
    id: String,
    unique_name: String,
    display_name: String,
}

struct Iteration {
    id: u64,
    source: String,
    target: String,
    common: String,
    /// (path with a leading `/`, changeTrackingId).
    changes: Vec<(String, u64)>,
}

struct Thread {
    id: u64,
    status: String,
    context: Option<serde_json::Value>,
    pr_context: Option<serde_json::Value>,
    comments: Vec<TestComment>,
    published: SystemTime,
}

struct Pull {
    pr: TestPullRequest,
    status: String,
    created: SystemTime,
    iterations: Vec<Iteration>,
    threads: BTreeMap<u64, Thread>,
}

struct Push {
    id: u64,
    pusher: String,
    date: SystemTime,
}

struct Repo {
    id: String,
    name: String,
    default_branch: Option<String>,
    disabled: bool,
    refs: BTreeMap<String, String>,
    merge_bases: HashMap<(String, String), String>,
    pulls: BTreeMap<u64, Pull>,
    pushes: Vec<Push>,
    statuses: Vec<TestStatus>,
    refused_paths: BTreeSet<String>,
}

#[derive(Clone)]
struct Subscription {
    sub: TestSubscription,
    publisher_id: String,
    consumer_id: String,
    consumer_action_id: String,
    created_by: String,
}

struct State {
    base_url: String,
    organization: String,
    project_id: String,
    project_name: String,
    next_id: u64,
    identities: Vec<Identity>,
    /// Token → unique name.
    pats: HashMap<String, String>,
    repos: BTreeMap<String, Repo>,
    subscriptions: Vec<Subscription>,
    faults: Vec<Fault>,
    requests: Vec<RecordedRequest>,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn identity(&mut self, unique_name: &str) -> &Identity {
        let index = match self
            .identities
            .iter()
            .position(|i| i.unique_name.eq_ignore_ascii_case(unique_name))
        {
            Some(i) => i,
            None => {
                let display = unique_name
                    .split('@')
                    .next()
                    .unwrap_or(unique_name)
                    .to_string();
                self.identities.push(Identity {
                    id: guid(),
                    unique_name: unique_name.to_string(),
                    display_name: display,
                });
                self.identities.len() - 1
            }
        };
        &self.identities[index]
    }

    fn repo_mut(&mut self, repo: &str) -> &mut Repo {
        self.repos.get_mut(repo).expect("unknown repository")
    }

    fn pull_mut(&mut self, repo: &str, pr: u64) -> &mut Pull {
        self.repo_mut(repo)
            .pulls
            .get_mut(&pr)
            .expect("unknown pull request")
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

/// A random GUID in Azure's lowercase `8-4-4-4-12` form.
pub(crate) fn guid() -> String {
    let b: [u8; 16] = rand::thread_rng().gen();
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        h(0..4),
        h(4..6),
        h(6..8),
        h(8..10),
        h(10..16)
    )
}

fn random_token() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..52)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// The server: in-memory state, serving until dropped.
pub struct AzureServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for AzureServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for AzureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AzureServer {
    /// Serves organization `organization` with one project, `project` (private), on 127.0.0.1
    /// on a port of the system's choosing, on the current tokio runtime.
    pub async fn start(organization: &str, project: &str) -> AzureServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                base_url: format!("http://{addr}/{organization}"),
                organization: organization.to_string(),
                project_id: guid(),
                project_name: project.to_string(),
                next_id: 0,
                identities: Vec::new(),
                pats: HashMap::new(),
                repos: BTreeMap::new(),
                subscriptions: Vec::new(),
                faults: Vec::new(),
                requests: Vec::new(),
            }),
        });
        let router = http::router(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        AzureServer { addr, inner, task }
    }

    /// The organization's root, `http://127.0.0.1:<port>/<organization>`.
    pub fn api_url(&self) -> String {
        self.lock().base_url.clone()
    }

    /// The project's id (a GUID).
    pub fn project_id(&self) -> String {
        self.lock().project_id.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }

    /// A new personal access token of `user` (a unique name, `someone@example.com`; the identity
    /// is made on first use, its display name the part before `@`).
    pub fn add_pat(&self, user: &str) -> String {
        let mut st = self.lock();
        st.identity(user);
        let token = random_token();
        st.pats.insert(token.clone(), user.to_string());
        token
    }

    /// Stops accepting `token`.
    pub fn revoke_pat(&self, token: &str) {
        self.lock().pats.remove(token);
    }

    /// A Git repository `name` of the project; `default_branch` `None` for one without commits.
    /// Returns its id.
    pub fn add_repo(&self, name: &str, default_branch: Option<&str>) -> String {
        let mut st = self.lock();
        let id = guid();
        st.repos.insert(
            id.clone(),
            Repo {
                id: id.clone(),
                name: name.to_string(),
                default_branch: default_branch.map(|b| format!("refs/heads/{b}")),
                disabled: false,
                refs: BTreeMap::new(),
                merge_bases: HashMap::new(),
                pulls: BTreeMap::new(),
                pushes: Vec::new(),
                statuses: Vec::new(),
                refused_paths: BTreeSet::new(),
            },
        );
        id
    }

    /// Disables a repository (`isDisabled`).
    pub fn set_repo_disabled(&self, repo: &str, disabled: bool) {
        self.lock().repo_mut(repo).disabled = disabled;
    }

    /// Sets ref `name` (`refs/heads/main`) to `sha`.
    pub fn set_ref(&self, repo: &str, name: &str, sha: &str) {
        self.lock()
            .repo_mut(repo)
            .refs
            .insert(name.to_string(), sha.to_string());
    }

    /// What `mergeBases` answers for `a` and `b` (either order).
    pub fn set_merge_base(&self, repo: &str, a: &str, b: &str, base: &str) {
        let mut st = self.lock();
        let r = st.repo_mut(repo);
        r.merge_bases
            .insert((a.to_string(), b.to_string()), base.to_string());
        r.merge_bases
            .insert((b.to_string(), a.to_string()), base.to_string());
    }

    /// Registers an active pull request, with its first iteration (unless `head` is empty).
    pub fn add_pull(&self, repo: &str, pr: TestPullRequest) {
        let mut st = self.lock();
        st.identity(&pr.author);
        let base = SystemTime::now();
        let mut pull = Pull {
            status: "active".to_string(),
            created: base,
            iterations: Vec::new(),
            threads: BTreeMap::new(),
            pr: pr.clone(),
        };
        if !pr.head.is_empty() {
            let changes = pr
                .changed_paths
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("/{}", p.trim_start_matches('/')), i as u64 + 1))
                .collect();
            pull.iterations.push(Iteration {
                id: 1,
                source: pr.head.clone(),
                target: pr.base.clone(),
                common: pr.merge_base.clone(),
                changes,
            });
        }
        st.repo_mut(repo).pulls.insert(pr.id, pull);
    }

    /// A push to the pull request's source branch: a new iteration with these commits and
    /// changed paths (tracking ids kept for paths seen before); `lastMergeSourceCommit` and
    /// `lastMergeTargetCommit` move. Returns the iteration's id.
    pub fn push_iteration(
        &self,
        repo: &str,
        pr: u64,
        head: &str,
        base: &str,
        merge_base: &str,
        changed_paths: &[&str],
    ) -> u64 {
        let mut st = self.lock();
        let pull = st.pull_mut(repo, pr);
        let mut known: HashMap<String, u64> = pull
            .iterations
            .iter()
            .flat_map(|i| i.changes.iter().cloned())
            .collect();
        let mut next = known.values().max().copied().unwrap_or(0);
        let changes = changed_paths
            .iter()
            .map(|p| {
                let path = format!("/{}", p.trim_start_matches('/'));
                let id = *known.entry(path.clone()).or_insert_with(|| {
                    next += 1;
                    next
                });
                (path, id)
            })
            .collect();
        let id = pull.iterations.len() as u64 + 1;
        pull.iterations.push(Iteration {
            id,
            source: head.to_string(),
            target: base.to_string(),
            common: merge_base.to_string(),
            changes,
        });
        pull.pr.head = head.to_string();
        pull.pr.base = base.to_string();
        id
    }

    /// `active`, `abandoned` or `completed`.
    pub fn set_pull_status(&self, repo: &str, pr: u64, status: &str) {
        self.lock().pull_mut(repo, pr).status = status.to_string();
    }

    /// A push to the repository by `pusher` (unique name), `age` ago.
    pub fn add_push(&self, repo: &str, pusher: &str, age: Duration) {
        let mut st = self.lock();
        st.identity(pusher);
        let id = st.id();
        st.repo_mut(repo).pushes.push(Push {
            id,
            pusher: pusher.to_string(),
            date: SystemTime::now() - age,
        });
    }

    /// Threads posted on `path` (without its leading `/`) answer 400.
    pub fn refuse_inline(&self, repo: &str, path: &str) {
        self.lock()
            .repo_mut(repo)
            .refused_paths
            .insert(format!("/{}", path.trim_start_matches('/')));
    }

    /// A thread written by `author` (as if in Azure's UI): on `(path, line)` of the right-hand
    /// file, or on the pull request; status `active`, `closed`, .... Returns its id.
    pub fn add_thread(
        &self,
        repo: &str,
        pr: u64,
        author: &str,
        content: &str,
        position: Option<(&str, u64)>,
        status: &str,
    ) -> u64 {
        let mut st = self.lock();
        st.identity(author);
        let id = st.id();
        let context = position.map(|(path, line)| {
            serde_json::json!({
                "filePath": format!("/{}", path.trim_start_matches('/')),
                "rightFileStart": {"line": line, "offset": 1},
                "rightFileEnd": {"line": line, "offset": 1},
            })
        });
        st.pull_mut(repo, pr).threads.insert(
            id,
            Thread {
                id,
                status: status.to_string(),
                context,
                pr_context: None,
                comments: vec![TestComment {
                    id: 1,
                    parent_comment_id: 0,
                    author: author.to_string(),
                    content: content.to_string(),
                    comment_type: "text".to_string(),
                    deleted: false,
                }],
                published: SystemTime::now(),
            },
        );
        id
    }

    /// A comment by `author` in thread `thread` under `parent`; `system` makes it a system
    /// comment. Returns its id.
    pub fn add_comment(
        &self,
        repo: &str,
        pr: u64,
        thread: u64,
        author: &str,
        content: &str,
        system: bool,
    ) -> u64 {
        let mut st = self.lock();
        st.identity(author);
        let t = st
            .pull_mut(repo, pr)
            .threads
            .get_mut(&thread)
            .expect("unknown thread");
        let id = t.comments.iter().map(|c| c.id).max().unwrap_or(0) + 1;
        t.comments.push(TestComment {
            id,
            parent_comment_id: 1,
            author: author.to_string(),
            content: content.to_string(),
            comment_type: if system { "system" } else { "text" }.to_string(),
            deleted: false,
        });
        id
    }

    /// Sets a thread's status (as a user would in Azure's UI).
    pub fn set_thread_status(&self, repo: &str, pr: u64, thread: u64, status: &str) {
        let mut st = self.lock();
        st.pull_mut(repo, pr)
            .threads
            .get_mut(&thread)
            .expect("unknown thread")
            .status = status.to_string();
    }

    /// Deletes a comment (it stays, with `isDeleted`).
    pub fn delete_comment(&self, repo: &str, pr: u64, thread: u64, comment: u64) {
        let mut st = self.lock();
        let t = st
            .pull_mut(repo, pr)
            .threads
            .get_mut(&thread)
            .expect("unknown thread");
        for c in t.comments.iter_mut().filter(|c| c.id == comment) {
            c.deleted = true;
        }
    }

    /// The pull request's threads, oldest first.
    pub fn threads(&self, repo: &str, pr: u64) -> Vec<TestThread> {
        let mut st = self.lock();
        st.pull_mut(repo, pr)
            .threads
            .values()
            .map(|t| TestThread {
                id: t.id,
                status: t.status.clone(),
                file_path: t
                    .context
                    .as_ref()
                    .and_then(|c| c["filePath"].as_str())
                    .map(str::to_string),
                line: t
                    .context
                    .as_ref()
                    .and_then(|c| c["rightFileStart"]["line"].as_u64()),
                pull_request_context: t.pr_context.clone(),
                comments: t.comments.clone(),
            })
            .collect()
    }

    /// The statuses posted on pull request `id`, oldest first.
    pub fn pull_request_statuses(&self, repo: &str, id: u64) -> Vec<TestStatus> {
        self.lock()
            .repos
            .get(repo)
            .map(|r| {
                r.statuses
                    .iter()
                    .filter(|s| s.pull_request == Some(id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The statuses posted on `commit`, oldest first.
    pub fn statuses(&self, repo: &str, commit: &str) -> Vec<TestStatus> {
        let mut st = self.lock();
        st.repo_mut(repo)
            .statuses
            .iter()
            .filter(|s| s.commit.eq_ignore_ascii_case(commit))
            .cloned()
            .collect()
    }

    /// Every subscription, in creation order.
    pub fn subscriptions(&self) -> Vec<TestSubscription> {
        self.lock()
            .subscriptions
            .iter()
            .map(|s| s.sub.clone())
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

    /// Checks every recorded request against the route table (see `routes.rs`): one line per
    /// violation, naming the request.
    pub fn violations(&self) -> Vec<String> {
        let (organization, requests) = {
            let st = self.lock();
            (st.organization.clone(), st.requests.clone())
        };
        routes::violations(&organization, &requests)
    }

    /// How many routes the table holds per client file (a self-check that it was read).
    pub fn route_table_size() -> Result<BTreeMap<&'static str, usize>, String> {
        let table = routes::TABLE.as_ref().map_err(Clone::clone)?;
        let mut sizes = BTreeMap::new();
        for r in table {
            *sizes.entry(r.file).or_insert(0) += 1;
        }
        Ok(sizes)
    }
}
