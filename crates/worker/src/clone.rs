//! Cloning one repository for one scan.
//!
//! [`clone`] takes the project's stored clone URL, an optional short-lived token and a [`Target`],
//! and returns a [`Checkout`]: the head commit's tree written into a fresh temporary directory that
//! is deleted when the `Checkout` is dropped (on success, on error, and during a panic unwind).
//!
//! The flow, all of it blocking libgit2 work run on tokio's blocking pool:
//!
//! 1. `git init` an empty repository in the temporary directory, configured so that nothing in the
//!    fetched tree can reach outside it (see "Safety" below).
//! 2. List the remote's refs (one connection) and pin every commit the scan needs: the head (and,
//!    for a diff scan, the target tip, or the merge base when the provider already knows it). A
//!    commit is fetched by ref name when the ref still points at the expected SHA, and by SHA
//!    otherwise: that needs the server to advertise `allow-reachable-sha1-in-want` (git's
//!    `uploadpack.allowReachableSHA1InWant`), since libgit2 speaks protocol v0/v1 only.
//! 3. Fetch those commits at depth 1. A diff scan without a known merge base then deepens stepwise
//!    (1 → 32 → 256 → 2048 → full history) until `merge_base(head, target)` exists *and* no
//!    history between the tips and that merge base is cut off by the shallow boundary; only then is
//!    it the same merge base a full clone would give. Every fetch is re-verified against the pins.
//! 4. Check the head tree out, with filters disabled and symlinks written as plain files.
//!
//! [`Checkout::changed_files`] and [`Checkout::materialize_base`] give the diff logic what it needs
//! from git: the changed paths with git's rename detection, and the merge-base versions of chosen
//! files read straight from the object database.
//!
//! Caps: bytes received (checked in the transfer-progress callback, summed over all fetches) and
//! wall time (checked in every callback and between steps, with a tokio timeout as the backstop
//! for a server that sends nothing at all). Both abort with stable error codes, see
//! [`CloneError::code`].
//!
//! Safety of the checkout:
//! - hooks: libgit2 never runs hooks; the repository is also created without the template's sample
//!   hooks and with `core.hooksPath=/dev/null`, in case a scanner later runs the git CLI in it;
//! - submodules: never initialised or fetched (a gitlink is checked out as an empty directory);
//! - filters: libgit2 cannot run external filter drivers (`filter=lfs` in `.gitattributes` has no
//!   effect, not even with a `filter.lfs.smudge` command configured); the checkout also disables
//!   the built-in CRLF/ident filters, so files are byte-identical to the blobs;
//! - symlinks: `core.symlinks=false`, so a link is written as a regular file holding its target
//!   text, and no path in the checkout resolves outside it;
//! - paths: libgit2 refuses `.git`, `..` and their NTFS/HFS aliases in trees at checkout
//!   (`core.protectNTFS`/`core.protectHFS` are set explicitly); such a tree fails the clone.
//!
//! The token only ever goes to the credentials callback, and only for the URL's own host; URLs
//! with embedded credentials are refused, and [`Credentials`]' `Debug` redacts the token.

use std::cell::Cell;
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::{
    build::CheckoutBuilder, AutotagOption, ConfigLevel, Cred, CredentialType, Delta,
    DiffFindOptions, DiffOptions, Direction, ErrorClass, ErrorCode, FetchOptions, FileMode,
    ObjectType, Oid, ProxyOptions, RemoteCallbacks, RemoteRedirect, Repository,
    RepositoryInitOptions,
};
use secrecy::{ExposeSecret, SecretString};
use tempfile::TempDir;

/// Fetch depths tried in turn for a diff scan: the first fetch is at depth 1, later ones deepen
/// until the merge base is settled. The last step asks for the full history.
const DEPTHS: [i32; 5] = [1, 32, 256, 2048, UNSHALLOW];

/// libgit2's `GIT_FETCH_DEPTH_UNSHALLOW`. Depth 0 means "full" only for a first fetch; on a
/// shallow repository it leaves the shallow boundary where it is, so unshallowing needs this.
const UNSHALLOW: i32 = i32::MAX;

/// How long the async side waits past the deadline for the blocking work to abort by itself
/// (from a callback) before it gives up on it and reports the timeout anyway. Only a server that
/// sends nothing, or a checkout already writing files (libgit2 cannot interrupt it), needs it.
const ABORT_GRACE: Duration = Duration::from_secs(5);

/// git's own default for `diff.renameLimit`: above this many candidate pairs rename detection is
/// skipped and renames show up as a delete plus an add.
const RENAME_LIMIT: usize = 1000;

/// Limits for one clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneLimits {
    /// Cap on pack bytes received, in bytes, summed over every fetch of this clone.
    pub max_bytes: u64,
    /// Wall-time budget for the whole clone, fetches and checkout included.
    pub timeout: Duration,
    /// Also accept `file://` URLs: repositories on the worker's own host, for single-machine
    /// use (`picket run`). Off in production, where a `file://` URL would read the worker's own
    /// disk. libgit2's local transport cannot fetch shallow, so a local repository is fetched
    /// whole, which costs no network.
    pub allow_local: bool,
}

/// HTTPS credentials: `username` and the token as the password. `Debug` never shows the token.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub token: SecretString,
}

impl Credentials {
    /// The username GitHub expects with an installation access token; other providers accept
    /// any username with a token.
    pub const ACCESS_TOKEN_USERNAME: &'static str = "x-access-token";

    /// A token used with the [`Self::ACCESS_TOKEN_USERNAME`] username.
    pub fn access_token(token: SecretString) -> Self {
        Self {
            username: Self::ACCESS_TOKEN_USERNAME.to_owned(),
            token,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// What to fetch. Ref names are full (`refs/heads/main`, `refs/pull/7/head`), `HEAD`, or a bare
/// branch name (`main`, taken as `refs/heads/main`). SHAs are full 40-hex-digit commit ids: when
/// one is given the checkout is exactly that commit or the clone fails with `commit_mismatch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A full scan of one commit, or of the branch tip when `commit` is `None`.
    Full {
        git_ref: String,
        commit: Option<String>,
    },
    /// A diff-aware scan of `head` against its merge base with the target branch `base`. When
    /// the provider knows the merge base, passing it skips both the target tip and the deepening.
    Diff {
        head_ref: String,
        head: Option<String>,
        base_ref: String,
        base: Option<String>,
        merge_base: Option<String>,
    },
}

/// What one clone cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloneStats {
    /// Pack bytes received over all fetches (ref advertisements are not included).
    pub bytes_received: u64,
    /// Objects received over all fetches.
    pub objects_received: u64,
    /// Number of fetches (1 unless a diff scan had to deepen).
    pub fetches: u32,
    /// The last depth fetched; `None` when the full history was needed.
    pub depth: Option<u32>,
    /// Wall time from the call to the finished checkout.
    pub duration: Duration,
}

/// A checked-out commit in a temporary directory, deleted on drop.
#[derive(Debug)]
pub struct Checkout {
    dir: TempDir,
    head: Oid,
    head_hex: String,
    merge_base: Option<(Oid, String)>,
    stats: CloneStats,
}

/// How a file differs between the merge base and the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
}

/// One changed file between the merge base and the head. Paths are relative, `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChangedFile {
    /// `None` when the file was deleted.
    pub path_at_head: Option<String>,
    /// `None` when the file was added.
    pub path_at_base: Option<String>,
    pub status: ChangeStatus,
}

/// Why a clone (or a read from its repository) failed. [`CloneError::code`] is stable; messages
/// are for humans and never contain the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloneError {
    #[error("clone URL rejected: {0}")]
    InvalidUrl(&'static str),
    #[error("invalid scan target: {0}")]
    InvalidTarget(String),
    #[error("the git server rejected the credentials: {0}")]
    AuthFailed(String),
    #[error("the fetch exceeded the cap of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the clone did not finish within {0:?}")]
    Timeout(Duration),
    #[error("{0} does not exist on the remote")]
    RefNotFound(String),
    #[error("{what} {git_ref} is at {actual}, not at the expected {expected}: {detail}")]
    CommitMismatch {
        what: &'static str,
        git_ref: String,
        expected: String,
        actual: String,
        detail: String,
    },
    #[error("head {head} and target {base} have no common history")]
    MergeBaseNotFound { head: String, base: String },
    #[error("not a diff checkout: it has no merge base")]
    NotADiff,
    #[error("refused path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("fetch failed: {0}")]
    Fetch(String),
    #[error("checkout failed: {0}")]
    Checkout(String),
    #[error("git: {0}")]
    Git(String),
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

impl CloneError {
    /// A stable, machine-readable code for the scan's failure reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidUrl(_) => "invalid_url",
            Self::InvalidTarget(_) | Self::NotADiff => "invalid_target",
            Self::AuthFailed(_) => "auth_failed",
            Self::TooLarge { .. } => "clone_too_large",
            Self::Timeout(_) => "clone_timeout",
            Self::RefNotFound(_) => "ref_not_found",
            Self::CommitMismatch { .. } => "commit_mismatch",
            Self::MergeBaseNotFound { .. } => "merge_base_not_found",
            Self::InvalidPath { .. } => "invalid_path",
            Self::Fetch(_) => "clone_failed",
            Self::Checkout(_) => "checkout_failed",
            Self::Git(_) => "git_failed",
            Self::Io(_) => "io_failed",
        }
    }

    fn git(e: git2::Error) -> Self {
        Self::Git(e.message().to_owned())
    }
}

/// Clones `url` for one scan. `url` is the project's stored `https://` clone URL, without
/// credentials in it; `creds`, when given, are offered to that URL's host only.
///
/// Cancel-safe: dropping the future makes the blocking work abort at its next callback, and its
/// temporary directory is deleted when it does.
pub async fn clone(
    url: &str,
    creds: Option<&Credentials>,
    target: &Target,
    limits: &CloneLimits,
) -> Result<Checkout, CloneError> {
    let options = Options {
        url_policy: if limits.allow_local {
            UrlPolicy::HttpsOrLocal
        } else {
            UrlPolicy::HttpsOnly
        },
        ..Options::default()
    };
    clone_with(url, creds, target, limits, options).await
}

impl Checkout {
    /// The root of the head's working tree (its `.git` directory is inside).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The checked-out commit, 40 hex digits.
    pub fn head(&self) -> &str {
        &self.head_hex
    }

    /// The merge base of a diff checkout, 40 hex digits.
    pub fn merge_base(&self) -> Option<&str> {
        self.merge_base.as_ref().map(|(_, hex)| hex.as_str())
    }

    pub fn stats(&self) -> &CloneStats {
        &self.stats
    }

    /// Files that differ between the merge base and the head, with git's rename detection
    /// (50% similarity, up to [`RENAME_LIMIT`] candidates). Submodule pointer changes are left
    /// out: there is nothing to scan in them.
    pub fn changed_files(&self) -> Result<Vec<ChangedFile>, CloneError> {
        let (merge_base, _) = self.merge_base.as_ref().ok_or(CloneError::NotADiff)?;
        let repo = self.open()?;
        let base_tree = repo
            .find_commit(*merge_base)
            .and_then(|c| c.tree())
            .map_err(CloneError::git)?;
        let head_tree = repo
            .find_commit(self.head)
            .and_then(|c| c.tree())
            .map_err(CloneError::git)?;
        let mut opts = DiffOptions::new();
        // Without this a file that became a symlink (or back) is split into a delete and an add.
        opts.include_typechange(true);
        let mut diff = repo
            .diff_tree_to_tree(Some(&base_tree), Some(&head_tree), Some(&mut opts))
            .map_err(CloneError::git)?;
        let mut find = DiffFindOptions::new();
        find.renames(true).rename_limit(RENAME_LIMIT);
        diff.find_similar(Some(&mut find))
            .map_err(CloneError::git)?;

        let mut changed = Vec::new();
        for delta in diff.deltas() {
            let status = match delta.status() {
                // Copy detection is off, but a copy is a new file at head if it ever shows up.
                Delta::Added | Delta::Copied => ChangeStatus::Added,
                Delta::Deleted => ChangeStatus::Deleted,
                Delta::Modified | Delta::Typechange => ChangeStatus::Modified,
                Delta::Renamed => ChangeStatus::Renamed,
                Delta::Unmodified
                | Delta::Ignored
                | Delta::Untracked
                | Delta::Unreadable
                | Delta::Conflicted => continue,
            };
            let not_a_file =
                |mode: FileMode| matches!(mode, FileMode::Commit | FileMode::Unreadable);
            if not_a_file(delta.old_file().mode()) && not_a_file(delta.new_file().mode()) {
                continue;
            }
            let path_at_head = match status {
                ChangeStatus::Deleted => None,
                _ => Some(utf8_path(delta.new_file().path_bytes())?),
            };
            let path_at_base = match status {
                ChangeStatus::Added => None,
                _ => Some(utf8_path(delta.old_file().path_bytes())?),
            };
            changed.push(ChangedFile {
                path_at_head,
                path_at_base,
                status,
            });
        }
        Ok(changed)
    }

    /// Writes `paths` as they are at the merge base into `into` (created if missing), read from
    /// the object database without checking the base tree out. Paths that are not files at the
    /// merge base (added later, directories, submodules) are skipped. Symlinks are written as
    /// plain files holding their target, like the head checkout; no existing file is overwritten
    /// and no existing symlink under `into` is followed.
    pub fn materialize_base(&self, paths: &[String], into: &Path) -> Result<(), CloneError> {
        let (merge_base, _) = self.merge_base.as_ref().ok_or(CloneError::NotADiff)?;
        let wanted = paths
            .iter()
            .map(|p| safe_components(p).map(|parts| (p, parts)))
            .collect::<Result<Vec<_>, _>>()?;
        let repo = self.open()?;
        let tree = repo
            .find_commit(*merge_base)
            .and_then(|c| c.tree())
            .map_err(CloneError::git)?;
        fs::create_dir_all(into)?;
        let mut done = BTreeSet::new();
        for (path, parts) in wanted {
            if !done.insert(path.as_str()) {
                continue;
            }
            let entry = match tree.get_path(Path::new(path)) {
                Ok(entry) => entry,
                Err(e) if e.code() == ErrorCode::NotFound => {
                    tracing::debug!(path, "not present at the merge base");
                    continue;
                }
                Err(e) => return Err(CloneError::git(e)),
            };
            if entry.kind() != Some(ObjectType::Blob) {
                tracing::debug!(path, "not a file at the merge base");
                continue;
            }
            // A symlink's blob is its target text: writing the blob is writing it as a file.
            let blob = repo.find_blob(entry.id()).map_err(CloneError::git)?;
            write_new_file(into, path, &parts, blob.content())?;
        }
        Ok(())
    }

    fn open(&self) -> Result<Repository, CloneError> {
        Repository::open(self.dir.path()).map_err(CloneError::git)
    }
}

/// Which URLs [`clone_with`] accepts. Production takes `https://` only: the token must never
/// cross the network in clear, and `file://` would read the worker's own disk.
#[derive(Debug, Clone, Copy, Default)]
enum UrlPolicy {
    #[default]
    HttpsOnly,
    /// `https://`, and `file://` for repositories on this host (see [`CloneLimits::allow_local`]).
    HttpsOrLocal,
    /// Tests and benchmarks serve repositories over plain HTTP on the loopback interface.
    #[cfg(any(test, feature = "bench-support"))]
    AllowPlainHttp,
}

#[derive(Debug, Default)]
struct Options {
    url_policy: UrlPolicy,
    /// Where the temporary directory is created; the system temp dir when `None`.
    scratch: Option<PathBuf>,
}

async fn clone_with(
    url: &str,
    creds: Option<&Credentials>,
    target: &Target,
    limits: &CloneLimits,
    options: Options,
) -> Result<Checkout, CloneError> {
    let started = Instant::now();
    let authority = check_url(url, options.url_policy)?;
    let plan = Plan::new(target)?;
    let cancel = Arc::new(AtomicBool::new(false));
    // Whatever happens to this future (timeout here, or the caller dropping it), the blocking
    // work sees the flag at its next callback and stops; its TempDir is deleted when it does.
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    let job = Job {
        url: url.to_owned(),
        authority,
        creds: creds.cloned(),
        plan,
        limits: limits.clone(),
        scratch: options.scratch,
        cancel,
        started,
    };
    let span = tracing::Span::current();
    let work = tokio::task::spawn_blocking(move || span.in_scope(|| job.run()));
    match tokio::time::timeout(limits.timeout.saturating_add(ABORT_GRACE), work).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(CloneError::Fetch(format!("clone task failed: {join}"))),
        Err(_elapsed) => Err(CloneError::Timeout(limits.timeout)),
    }
}

struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Checks the URL and returns its authority (`host[:port]`, lowercased), the only host the
/// credentials are ever offered to.
fn check_url(url: &str, policy: UrlPolicy) -> Result<String, CloneError> {
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(CloneError::InvalidUrl(
            "contains whitespace or control characters",
        ));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or(CloneError::InvalidUrl("not an absolute URL"))?;
    if matches!(policy, UrlPolicy::HttpsOrLocal) && scheme.eq_ignore_ascii_case("file") {
        // No host, so no credentials are ever offered.
        return if rest.starts_with('/') {
            Ok(String::new())
        } else {
            Err(CloneError::InvalidUrl(
                "a file:// URL needs an absolute path",
            ))
        };
    }
    let scheme_ok = match policy {
        UrlPolicy::HttpsOnly | UrlPolicy::HttpsOrLocal => scheme.eq_ignore_ascii_case("https"),
        #[cfg(any(test, feature = "bench-support"))]
        UrlPolicy::AllowPlainHttp => {
            scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")
        }
    };
    if !scheme_ok {
        return Err(CloneError::InvalidUrl("only https:// URLs are cloned"));
    }
    if authority_of(scheme, rest).contains('@') {
        // The URL is not echoed: it would carry whatever secret was embedded in it.
        return Err(CloneError::InvalidUrl(
            "credentials must not be embedded in the URL",
        ));
    }
    let authority = authority_of(scheme, rest);
    if authority.is_empty() {
        return Err(CloneError::InvalidUrl("no host"));
    }
    Ok(authority)
}

/// The `host[:port]` part of a URL, lowercased and without the scheme's default port: the form
/// libgit2 uses when it names the URL that asks for credentials.
fn authority_of(scheme: &str, after_scheme: &str) -> String {
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return authority,
    };
    match authority.strip_suffix(default_port) {
        Some(host) => host.to_owned(),
        None => authority,
    }
}

/// The target, validated once: full ref names, parsed SHAs.
#[derive(Debug, Clone)]
enum Plan {
    Full {
        git_ref: String,
        commit: Option<Oid>,
    },
    Diff {
        head_ref: String,
        head: Option<Oid>,
        base_ref: String,
        base: Option<Oid>,
        merge_base: Option<Oid>,
    },
}

impl Plan {
    fn new(target: &Target) -> Result<Self, CloneError> {
        let sha = |what: &str, sha: &Option<String>| {
            sha.as_deref().map(|s| parse_sha(what, s)).transpose()
        };
        Ok(match target {
            Target::Full { git_ref, commit } => Plan::Full {
                git_ref: full_ref(git_ref)?,
                commit: sha("commit", commit)?,
            },
            Target::Diff {
                head_ref,
                head,
                base_ref,
                base,
                merge_base,
            } => Plan::Diff {
                head_ref: full_ref(head_ref)?,
                head: sha("head", head)?,
                base_ref: full_ref(base_ref)?,
                base: sha("base", base)?,
                merge_base: sha("merge base", merge_base)?,
            },
        })
    }
}

fn full_ref(name: &str) -> Result<String, CloneError> {
    let full = if name == "HEAD" || name.starts_with("refs/") {
        name.to_owned()
    } else {
        format!("refs/heads/{name}")
    };
    // git's ref-name rules exclude ':', '*', '^', whitespace and friends, so a valid name cannot
    // smuggle a second refspec or a glob into the fetch.
    if git2::Reference::is_valid_name(&full) {
        Ok(full)
    } else {
        Err(CloneError::InvalidTarget(format!(
            "{name:?} is not a valid ref name"
        )))
    }
}

fn parse_sha(what: &str, sha: &str) -> Result<Oid, CloneError> {
    // Oid::from_str pads short hex with zeros; an abbreviated SHA must not silently become a
    // different object id.
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CloneError::InvalidTarget(format!(
            "{what} {sha:?} is not a full 40-hex-digit SHA"
        )));
    }
    Oid::from_str(sha).map_err(|e| CloneError::InvalidTarget(format!("{what}: {}", e.message())))
}

/// Everything the blocking side needs, owned.
struct Job {
    url: String,
    authority: String,
    creds: Option<Credentials>,
    plan: Plan,
    limits: CloneLimits,
    scratch: Option<PathBuf>,
    cancel: Arc<AtomicBool>,
    started: Instant,
}

impl Job {
    fn run(self) -> Result<Checkout, CloneError> {
        let clock = Clock {
            // None when the budget is too large to represent: no deadline.
            deadline: self.started.checked_add(self.limits.timeout),
            timeout: self.limits.timeout,
            cancel: &self.cancel,
        };
        clock.check()?;
        let builder = {
            let mut b = tempfile::Builder::new();
            b.prefix("picket-clone-");
            b
        };
        let dir = match &self.scratch {
            Some(parent) => builder.tempdir_in(parent)?,
            None => builder.tempdir()?,
        };
        let repo = init_repo(dir.path())?;
        let mut fetcher = Fetcher {
            repo: &repo,
            local: self
                .url
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("file://")),
            url: &self.url,
            authority: &self.authority,
            creds: self.creds.as_ref(),
            max_bytes: self.limits.max_bytes,
            clock: &clock,
            stats: CloneStats::default(),
        };
        let (head, merge_base) = fetcher.fetch_target(&self.plan)?;
        let mut stats = fetcher.stats;
        clock.check()?;
        check_out(&repo, head)?;
        stats.duration = self.started.elapsed();
        tracing::info!(
            head = %head,
            merge_base = ?merge_base,
            bytes = stats.bytes_received,
            objects = stats.objects_received,
            fetches = stats.fetches,
            depth = ?stats.depth,
            millis = stats.duration.as_millis() as u64,
            "clone finished"
        );
        drop(repo);
        Ok(Checkout {
            dir,
            head,
            head_hex: head.to_string(),
            merge_base: merge_base.map(|oid| (oid, oid.to_string())),
            stats,
        })
    }
}

/// The wall-time budget, plus the async side's "give up" flag.
struct Clock<'a> {
    deadline: Option<Instant>,
    timeout: Duration,
    cancel: &'a AtomicBool,
}

impl Clock<'_> {
    fn expired(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn check(&self) -> Result<(), CloneError> {
        if self.expired() {
            Err(CloneError::Timeout(self.timeout))
        } else {
            Ok(())
        }
    }
}

fn init_repo(path: &Path) -> Result<Repository, CloneError> {
    let mut opts = RepositoryInitOptions::new();
    // No template: no sample hooks, no info/exclude from the system's template directory.
    opts.external_template(false).no_reinit(true);
    let repo = Repository::init_opts(path, &opts).map_err(CloneError::git)?;
    let mut config = repo
        .config()
        .and_then(|c| c.open_level(ConfigLevel::Local))
        .map_err(CloneError::git)?;
    // Local settings win over any global/system git config on the worker image.
    for (key, value) in [
        // A symlink becomes a file holding its target: nothing in the tree can point outside it.
        ("core.symlinks", false),
        ("core.autocrlf", false),
        // Refuse `.git` aliases such as `GIT~1` and `.git\u{200c}` in trees, whatever the defaults.
        ("core.protectNTFS", true),
        ("core.protectHFS", true),
    ] {
        config.set_bool(key, value).map_err(CloneError::git)?;
    }
    // libgit2 never runs hooks; this is for a scanner that runs the git CLI in the checkout.
    config
        .set_str("core.hooksPath", "/dev/null")
        .map_err(CloneError::git)?;
    drop(config);
    Ok(repo)
}

fn check_out(repo: &Repository, head: Oid) -> Result<(), CloneError> {
    let commit = repo.find_commit(head).map_err(CloneError::git)?;
    let mut checkout = CheckoutBuilder::new();
    // Filters off: files are byte-identical to their blobs (finding offsets match the objects),
    // and no attribute can select a filter.
    checkout.force().disable_filters(true);
    repo.checkout_tree(commit.as_object(), Some(&mut checkout))
        .map_err(|e| CloneError::Checkout(e.message().to_owned()))?;
    repo.set_head_detached(head).map_err(CloneError::git)
}

/// Which commit of the target a pin stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Head,
    Base,
    MergeBase,
}

impl Role {
    fn local_ref(self) -> &'static str {
        match self {
            Role::Head => "refs/picket/head",
            Role::Base => "refs/picket/base",
            Role::MergeBase => "refs/picket/merge-base",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Role::Head => "head",
            Role::Base => "target",
            Role::MergeBase => "merge base",
        }
    }
}

/// One commit the scan needs, pinned to an id before anything is fetched.
#[derive(Debug, Clone)]
struct Pin {
    role: Role,
    /// The remote ref it was asked by; `None` for a merge base given by SHA only.
    git_ref: Option<String>,
    oid: Oid,
    /// What the remote advertised for `git_ref`, peeled to a commit.
    advertised: Option<Oid>,
}

impl Pin {
    /// Fetching by name works on every server; by SHA only where the server allows it, so a
    /// SHA is only asked for when the ref no longer points at it.
    fn by_sha(&self) -> bool {
        self.advertised != Some(self.oid)
    }

    fn refspec(&self) -> String {
        match (&self.git_ref, self.by_sha()) {
            (Some(name), false) => format!("+{name}:{}", self.role.local_ref()),
            _ => format!("+{}:{}", self.oid, self.role.local_ref()),
        }
    }

    fn mismatch(&self, actual: Oid, detail: String) -> CloneError {
        CloneError::CommitMismatch {
            what: self.role.label(),
            git_ref: self.git_ref.clone().unwrap_or_default(),
            expected: self.oid.to_string(),
            actual: actual.to_string(),
            detail,
        }
    }
}

fn pin_ref(
    role: Role,
    git_ref: &str,
    expected: Option<Oid>,
    advertised: &[(String, Oid)],
) -> Result<Pin, CloneError> {
    // An annotated tag is advertised twice: the tag object, then `name^{}` with its commit.
    let peeled = format!("{git_ref}^{{}}");
    let tip = advertised
        .iter()
        .find(|(name, _)| *name == peeled)
        .or_else(|| advertised.iter().find(|(name, _)| name == git_ref))
        .map(|(_, oid)| *oid)
        .ok_or_else(|| CloneError::RefNotFound(git_ref.to_owned()))?;
    Ok(Pin {
        role,
        git_ref: Some(git_ref.to_owned()),
        oid: expected.unwrap_or(tip),
        advertised: Some(tip),
    })
}

fn refspecs(pins: &[Pin]) -> Vec<String> {
    pins.iter().map(Pin::refspec).collect()
}

/// Why a callback stopped a transfer.
#[derive(Debug, Clone, Copy)]
enum Abort {
    TooLarge,
    Timeout,
}

/// Per-fetch progress, shared by the callbacks (which run on this thread, inside libgit2).
struct Progress<'a> {
    clock: &'a Clock<'a>,
    /// Bytes received by earlier fetches of this clone: the cap is for the clone, not per fetch.
    prior_bytes: u64,
    max_bytes: u64,
    bytes: Cell<u64>,
    objects: Cell<u64>,
    abort: Cell<Option<Abort>>,
}

impl<'a> Progress<'a> {
    fn new(clock: &'a Clock<'a>, prior_bytes: u64, max_bytes: u64) -> Self {
        Self {
            clock,
            prior_bytes,
            max_bytes,
            bytes: Cell::new(0),
            objects: Cell::new(0),
            abort: Cell::new(None),
        }
    }

    fn on_transfer(&self, bytes: usize, objects: usize) -> bool {
        self.bytes.set(bytes as u64);
        self.objects.set(objects as u64);
        if self.prior_bytes.saturating_add(bytes as u64) > self.max_bytes {
            self.abort.set(Some(Abort::TooLarge));
            return false;
        }
        self.keep_going()
    }

    fn keep_going(&self) -> bool {
        if self.clock.expired() {
            self.abort.set(Some(Abort::Timeout));
            return false;
        }
        true
    }

    /// The error to report for a failed transfer: the callback's reason when one aborted it.
    fn error(&self, e: git2::Error) -> CloneError {
        match self.abort.get() {
            Some(Abort::TooLarge) => CloneError::TooLarge {
                limit: self.max_bytes,
            },
            Some(Abort::Timeout) => CloneError::Timeout(self.clock.timeout),
            None if e.code() == ErrorCode::Auth => CloneError::AuthFailed(e.message().to_owned()),
            None => CloneError::Fetch(e.message().to_owned()),
        }
    }
}

fn callbacks<'a>(
    progress: &'a Progress<'a>,
    creds: Option<&'a Credentials>,
    authority: &'a str,
) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    cb.transfer_progress(|p| progress.on_transfer(p.received_bytes(), p.received_objects()));
    // The server's "Counting objects" messages come before the pack: checking the clock here
    // too cuts off a server that is slow to start sending.
    cb.sideband_progress(|_| progress.keep_going());
    if let Some(creds) = creds {
        let mut offered = false;
        cb.credentials(move |url, _username_in_url, allowed| {
            let refuse = |msg: &str| Err(git2::Error::new(ErrorCode::Auth, ErrorClass::Http, msg));
            if !progress.keep_going() {
                return Err(git2::Error::from_str("clone deadline passed"));
            }
            // After a redirect to another host, the token stays home. (libgit2 drops the auth
            // state when the host changes, so the new host only gets a token through here.)
            let asking = url
                .split_once("://")
                .map(|(scheme, rest)| authority_of(scheme, rest));
            if asking.as_deref() != Some(authority) {
                return refuse("credentials requested by another host; not sent");
            }
            // libgit2 asks again when the server rejects what we gave: answering twice would
            // only replay the same token.
            if offered {
                return refuse("the server rejected the token");
            }
            if !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                return refuse("the server asked for an unsupported kind of credentials");
            }
            offered = true;
            Cred::userpass_plaintext(&creds.username, creds.token.expose_secret())
        });
    }
    cb
}

fn proxy_options<'a>() -> ProxyOptions<'a> {
    // `http.proxy` or the usual https_proxy/no_proxy environment, like the git CLI.
    let mut proxy = ProxyOptions::new();
    proxy.auto();
    proxy
}

fn fetch_options<'a>(callbacks: RemoteCallbacks<'a>, depth: i32) -> FetchOptions<'a> {
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(callbacks)
        .proxy_options(proxy_options())
        .depth(depth)
        // Tags pointing into the fetched history would otherwise be followed and downloaded.
        .download_tags(AutotagOption::None)
        .update_fetchhead(false)
        // A moved repository redirects its first request; the credentials callback still only
        // answers for the original host.
        .follow_redirects(RemoteRedirect::Initial);
    opts
}

struct Fetcher<'a> {
    repo: &'a Repository,
    /// A `file://` repository: fetched whole, since the local transport cannot fetch shallow.
    local: bool,
    url: &'a str,
    authority: &'a str,
    creds: Option<&'a Credentials>,
    max_bytes: u64,
    clock: &'a Clock<'a>,
    stats: CloneStats,
}

impl Fetcher<'_> {
    /// Fetches what the plan needs; returns the head and, for a diff, the merge base.
    fn fetch_target(&mut self, plan: &Plan) -> Result<(Oid, Option<Oid>), CloneError> {
        match plan {
            Plan::Full { git_ref, commit } => {
                let pins = self.first_fetch(|advertised| {
                    Ok(vec![pin_ref(Role::Head, git_ref, *commit, advertised)?])
                })?;
                Ok((pins[0].oid, None))
            }
            Plan::Diff {
                head_ref,
                head,
                base_ref,
                base,
                merge_base,
            } => {
                let tips = |advertised: &[(String, Oid)]| {
                    Ok(vec![
                        pin_ref(Role::Head, head_ref, *head, advertised)?,
                        pin_ref(Role::Base, base_ref, *base, advertised)?,
                    ])
                };
                if let Some(merge_base) = *merge_base {
                    let given = |advertised: &[(String, Oid)]| {
                        let head = pin_ref(Role::Head, head_ref, *head, advertised)?;
                        let merge_base = Pin {
                            role: Role::MergeBase,
                            git_ref: None,
                            oid: merge_base,
                            advertised: None,
                        };
                        Ok(vec![head, merge_base])
                    };
                    match self.first_fetch(given) {
                        Ok(pins) => return Ok((pins[0].oid, Some(merge_base))),
                        // The server would not send a commit by SHA (or it is not there):
                        // compute the merge base from history instead.
                        Err(CloneError::Fetch(message)) => tracing::warn!(
                            %merge_base,
                            error = %message,
                            "fetching the given merge base failed; computing it from history"
                        ),
                        Err(e) => return Err(e),
                    }
                }
                let pins = self.first_fetch(tips)?;
                let merge_base = self.deepen_to_merge_base(&pins)?;
                Ok((pins[0].oid, Some(merge_base)))
            }
        }
    }

    /// Lists the remote's refs, pins the commits with `plan`, and fetches them at depth 1, all
    /// on one connection (one ref advertisement).
    fn first_fetch(
        &mut self,
        plan: impl FnOnce(&[(String, Oid)]) -> Result<Vec<Pin>, CloneError>,
    ) -> Result<Vec<Pin>, CloneError> {
        self.clock.check()?;
        let progress = Progress::new(self.clock, self.stats.bytes_received, self.max_bytes);
        let mut remote = self
            .repo
            .remote_anonymous(self.url)
            .map_err(CloneError::git)?;
        let mut connection = remote
            .connect_auth(
                Direction::Fetch,
                Some(callbacks(&progress, self.creds, self.authority)),
                Some(proxy_options()),
            )
            .map_err(|e| progress.error(e))?;
        let advertised: Vec<(String, Oid)> = connection
            .list()
            .map_err(|e| progress.error(e))?
            .iter()
            .map(|head| (head.name().to_owned(), head.oid()))
            .collect();
        let pins = plan(&advertised)?;
        let mut opts = fetch_options(
            callbacks(&progress, self.creds, self.authority),
            self.depth(DEPTHS[0]),
        );
        let fetched = connection
            .remote()
            .fetch(&refspecs(&pins), Some(&mut opts), None);
        drop(opts);
        drop(connection);
        self.record(&progress, DEPTHS[0]);
        if let Err(e) = fetched {
            let error = progress.error(e);
            // A server that refuses a SHA for a ref that points elsewhere means the expected
            // commit cannot be had: that is a mismatch, with the server's reason attached.
            if let (CloneError::Fetch(detail), Some(pin)) = (
                &error,
                pins.iter().find(|p| p.by_sha() && p.advertised.is_some()),
            ) {
                let actual = pin.advertised.unwrap_or(pin.oid);
                return Err(pin.mismatch(actual, format!("fetching it by SHA failed: {detail}")));
            }
            return Err(error);
        }
        self.verify(&pins)?;
        Ok(pins)
    }

    /// One more fetch of the same pins, on a new connection.
    fn fetch(&mut self, pins: &[Pin], depth: i32) -> Result<(), CloneError> {
        self.clock.check()?;
        let progress = Progress::new(self.clock, self.stats.bytes_received, self.max_bytes);
        let mut remote = self
            .repo
            .remote_anonymous(self.url)
            .map_err(CloneError::git)?;
        let mut opts = fetch_options(
            callbacks(&progress, self.creds, self.authority),
            self.depth(depth),
        );
        let fetched = remote.fetch(&refspecs(pins), Some(&mut opts), None);
        drop(opts);
        self.record(&progress, depth);
        fetched.map_err(|e| progress.error(e))?;
        self.verify(pins)
    }

    /// The depth to ask for: 0 (everything) from a local repository.
    fn depth(&self, depth: i32) -> i32 {
        if self.local {
            0
        } else {
            depth
        }
    }

    fn record(&mut self, progress: &Progress<'_>, depth: i32) {
        self.stats.bytes_received += progress.bytes.get();
        self.stats.objects_received += progress.objects.get();
        self.stats.fetches += 1;
        self.stats.depth = u32::try_from(depth)
            .ok()
            .filter(|_| depth != UNSHALLOW && !self.local);
    }

    /// Checks that every pinned commit arrived, and that refs fetched by name still point at
    /// their pins (a push between two fetches moves them).
    fn verify(&self, pins: &[Pin]) -> Result<(), CloneError> {
        for pin in pins {
            if pin.by_sha() {
                if self.repo.find_commit(pin.oid).is_err() {
                    return Err(CloneError::Fetch(format!(
                        "the server did not send {} {}",
                        pin.role.label(),
                        pin.oid
                    )));
                }
                continue;
            }
            let fetched = self
                .repo
                .find_reference(pin.role.local_ref())
                .and_then(|r| r.peel_to_commit())
                .map(|c| c.id());
            match fetched {
                Ok(oid) if oid == pin.oid => {}
                Ok(oid) => {
                    return Err(pin.mismatch(oid, "the ref moved during the clone".to_owned()))
                }
                Err(_) => {
                    return Err(CloneError::RefNotFound(
                        pin.git_ref.clone().unwrap_or_default(),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Deepens the head and target fetches until their merge base is settled.
    fn deepen_to_merge_base(&mut self, pins: &[Pin]) -> Result<Oid, CloneError> {
        let (head, base) = (pins[0].oid, pins[1].oid);
        for &depth in &DEPTHS[1..] {
            if let Some(merge_base) = settled_merge_base(self.repo, head, base)? {
                return Ok(merge_base);
            }
            if !self.repo.is_shallow() {
                break;
            }
            tracing::debug!(depth, "deepening to find the merge base");
            self.fetch(pins, depth)?;
        }
        match settled_merge_base(self.repo, head, base)? {
            Some(merge_base) => Ok(merge_base),
            None => Err(CloneError::MergeBaseNotFound {
                head: head.to_string(),
                base: base.to_string(),
            }),
        }
    }
}

/// The merge base of `head` and `base`, if the fetched history proves it.
///
/// In a shallow repository `merge_base` can find a common ancestor through a short path (say a
/// side branch both sides merged) while a better one, further down one side's first-parent
/// chain, is still behind the shallow boundary. It is the same answer a full clone gives only if
/// every commit reachable from the tips and not from the candidate was fetched with its parents:
/// no shallow boundary commit among them.
fn settled_merge_base(repo: &Repository, head: Oid, base: Oid) -> Result<Option<Oid>, CloneError> {
    let candidate = match repo.merge_base(head, base) {
        Ok(oid) => oid,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(CloneError::git(e)),
    };
    let boundary = shallow_boundary(repo)?;
    if boundary.is_empty() {
        return Ok(Some(candidate));
    }
    let mut walk = repo.revwalk().map_err(CloneError::git)?;
    walk.push(head).map_err(CloneError::git)?;
    walk.push(base).map_err(CloneError::git)?;
    walk.hide(candidate).map_err(CloneError::git)?;
    for oid in walk {
        if boundary.contains(&oid.map_err(CloneError::git)?) {
            return Ok(None);
        }
    }
    Ok(Some(candidate))
}

/// The commits whose parents were cut off by shallow fetches (`.git/shallow`; libgit2 has no
/// public API for the list).
fn shallow_boundary(repo: &Repository) -> Result<HashSet<Oid>, CloneError> {
    let text = match fs::read_to_string(repo.path().join("shallow")) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(e.into()),
    };
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| Oid::from_str(line.trim()).map_err(CloneError::git))
        .collect()
}

fn utf8_path(bytes: Option<&[u8]>) -> Result<String, CloneError> {
    let bytes = bytes.unwrap_or_default();
    String::from_utf8(bytes.to_vec()).map_err(|_| CloneError::InvalidPath {
        path: String::from_utf8_lossy(bytes).into_owned(),
        reason: "not UTF-8",
    })
}

/// Splits a repository-relative path, refusing anything that could leave the target directory
/// or write into a `.git` directory.
fn safe_components(path: &str) -> Result<Vec<&str>, CloneError> {
    let refuse = |reason| CloneError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    if path.is_empty() || path.contains('\0') {
        return Err(refuse("empty or contains NUL"));
    }
    if path.starts_with('/') {
        return Err(refuse("absolute"));
    }
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts {
        if part.is_empty() || *part == "." || *part == ".." {
            return Err(refuse("empty, `.` or `..` component"));
        }
        if part.eq_ignore_ascii_case(".git") {
            return Err(refuse("inside a .git directory"));
        }
    }
    Ok(parts)
}

/// Creates `root/parts...` as a new regular file, creating missing parent directories and
/// refusing to go through anything under `root` that is not a real directory.
fn write_new_file(
    root: &Path,
    path: &str,
    parts: &[&str],
    content: &[u8],
) -> Result<(), CloneError> {
    let Some((file_name, parents)) = parts.split_last() else {
        return Err(CloneError::InvalidPath {
            path: path.to_owned(),
            reason: "empty",
        });
    };
    let mut dir = root.to_path_buf();
    for part in parents {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            // symlink_metadata does not follow links: a symlink is never `is_dir`.
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(CloneError::InvalidPath {
                    path: path.to_owned(),
                    reason: "a parent exists and is not a directory",
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&dir)?,
            Err(e) => return Err(e.into()),
        }
    }
    // create_new is O_CREAT|O_EXCL: it fails on any existing entry, a dangling symlink included.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(file_name))?;
    file.write_all(content)?;
    Ok(())
}

#[cfg(any(test, feature = "bench-support"))]
pub mod test_support {
    //! Test fixtures: bare repositories built with `git fast-import`, served by a small smart-HTTP
    //! server on the loopback interface that runs `git upload-pack --stateless-rpc`.
    //!
    //! Why not `file://`: libgit2's local transport refuses shallow fetches ("shallow fetch is not
    //! supported by the local transport", pinned in a test below), and registering a custom
    //! transport for `file://` needs `unsafe`, which the workspace forbids. Over HTTP the tests run
    //! the same smart protocol, shallow negotiation and credentials flow as production.
    //!
    //! Outside this crate's tests only with the `bench-support` feature (picket-bench's clone
    //! benchmark); the `picket` binary is built without it.

    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use base64::Engine as _;

    /// A `git` command isolated from the user's and the system's configuration.
    pub fn git(dir: &Path) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE");
        cmd
    }

    pub fn run(cmd: &mut Command) -> String {
        let out = cmd.output().expect("spawn git");
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A change inside one fast-import commit.
    #[derive(Debug, Clone)]
    pub enum Change {
        File(String, Vec<u8>),
        Link(String, String),
        Delete(String),
    }

    pub fn file(path: &str, content: impl AsRef<[u8]>) -> Change {
        Change::File(path.to_owned(), content.as_ref().to_vec())
    }

    pub fn link(path: &str, target: &str) -> Change {
        Change::Link(path.to_owned(), target.to_owned())
    }

    pub fn delete(path: &str) -> Change {
        Change::Delete(path.to_owned())
    }

    /// A fast-import stream under construction; each commit gets a mark and a distinct time.
    #[derive(Debug, Default)]
    pub struct History {
        stream: Vec<u8>,
        next_mark: u32,
    }

    impl History {
        pub fn commit(&mut self, branch: &str, parents: &[u32], changes: &[Change]) -> u32 {
            self.next_mark += 1;
            let mark = self.next_mark;
            let time = 1_700_000_000 + u64::from(mark) * 60;
            let msg = format!("commit {mark}");
            let s = &mut self.stream;
            writeln!(s, "commit refs/heads/{branch}").unwrap();
            writeln!(s, "mark :{mark}").unwrap();
            writeln!(s, "committer Test <test@example.com> {time} +0000").unwrap();
            writeln!(s, "data {}\n{msg}", msg.len()).unwrap();
            if let Some((first, rest)) = parents.split_first() {
                writeln!(s, "from :{first}").unwrap();
                for p in rest {
                    writeln!(s, "merge :{p}").unwrap();
                }
            }
            for change in changes {
                match change {
                    Change::File(path, content) => {
                        writeln!(s, "M 100644 inline {path}\ndata {}", content.len()).unwrap();
                        s.extend_from_slice(content);
                        s.push(b'\n');
                    }
                    Change::Link(path, target) => {
                        writeln!(s, "M 120000 inline {path}\ndata {}\n{target}", target.len())
                            .unwrap();
                    }
                    Change::Delete(path) => writeln!(s, "D {path}").unwrap(),
                }
            }
            s.push(b'\n');
            mark
        }

        /// An annotated tag `refs/tags/{name}` on the commit `mark`.
        pub fn tag(&mut self, name: &str, mark: u32) {
            let s = &mut self.stream;
            writeln!(s, "tag {name}\nfrom :{mark}").unwrap();
            writeln!(
                s,
                "tagger Test <test@example.com> 1700000000 +0000\ndata 7\nrelease"
            )
            .unwrap();
        }

        /// `n` commits in a row on `branch`, each changing one line of one of 20 files.
        pub fn linear(&mut self, branch: &str, parent: Option<u32>, n: usize) -> Vec<u32> {
            let mut marks = Vec::with_capacity(n);
            let mut last = parent;
            for i in 0..n {
                let mark_guess = self.next_mark + 1;
                let path = format!("src/{branch}/f{}.txt", i % 20);
                let content = format!("line {mark_guess} of {path}\n").repeat(4);
                let parents: Vec<u32> = last.into_iter().collect();
                let m = self.commit(branch, &parents, &[file(&path, content)]);
                marks.push(m);
                last = Some(m);
            }
            marks
        }

        /// Imports into the bare repository `repo`; returns mark → SHA.
        pub fn import(self, repo: &Path) -> HashMap<u32, String> {
            let marks_file = repo.join("picket-test-marks");
            let mut child = git(repo)
                .args(["fast-import", "--quiet"])
                .arg(format!("--export-marks={}", marks_file.display()))
                .stdin(Stdio::piped())
                .spawn()
                .expect("spawn fast-import");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(&self.stream)
                .expect("write stream");
            assert!(child.wait().expect("fast-import").success());
            let text = std::fs::read_to_string(&marks_file).expect("marks");
            std::fs::remove_file(&marks_file).expect("remove marks");
            text.lines()
                .map(|line| {
                    let (mark, sha) = line.split_once(' ').expect("mark line");
                    (
                        mark.trim_start_matches(':').parse().expect("mark"),
                        sha.to_owned(),
                    )
                })
                .collect()
        }
    }

    /// Creates a bare repository `name` under `root`. `allow_sha`: whether upload-pack serves
    /// reachable commits asked for by SHA (`uploadpack.allowReachableSHA1InWant`).
    pub fn bare_repo(root: &Path, name: &str, allow_sha: bool) -> PathBuf {
        let path = root.join(name);
        run(git(root).args(["init", "--quiet", "--bare", "--initial-branch=main", name]));
        run(git(&path).args([
            "config",
            "uploadpack.allowReachableSHA1InWant",
            if allow_sha { "true" } else { "false" },
        ]));
        path
    }

    /// What the server saw.
    #[derive(Debug, Default)]
    pub struct ServerStats {
        pub requests: AtomicU64,
        pub bytes_sent: AtomicU64,
        pub unauthorized: AtomicU64,
        pub authorization_headers: AtomicU64,
    }

    #[derive(Debug, Clone, Default)]
    pub struct ServerConfig {
        /// `(username, password)` required as HTTP Basic auth.
        pub basic_auth: Option<(String, String)>,
        /// Pause after each 4 KiB of a response body.
        pub throttle: Option<Duration>,
        /// Answer every (authorized) request with a redirect to this base URL.
        pub redirect_to: Option<String>,
    }

    /// A smart-HTTP git server on 127.0.0.1 serving the bare repositories under `root`.
    #[derive(Debug)]
    pub struct GitServer {
        addr: SocketAddr,
        stop: Arc<AtomicBool>,
        pub stats: Arc<ServerStats>,
    }

    impl GitServer {
        pub fn start(root: &Path, config: ServerConfig) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            let addr = listener.local_addr().expect("addr");
            let stop = Arc::new(AtomicBool::new(false));
            let stats = Arc::new(ServerStats::default());
            let (root, config) = (root.to_path_buf(), Arc::new(config));
            let (stop2, stats2) = (stop.clone(), stats.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (root, config, stats) = (root.clone(), config.clone(), stats2.clone());
                    thread::spawn(move || {
                        // A client that goes away mid-response is not a test failure.
                        let _ = serve(stream, &root, &config, &stats);
                    });
                }
            });
            Self { addr, stop, stats }
        }

        pub fn url(&self, repo: &str) -> String {
            format!("http://{}/{repo}", self.addr)
        }
    }

    impl Drop for GitServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            // Wake the accept loop so it sees the flag.
            let _ = TcpStream::connect(self.addr);
        }
    }

    fn serve(
        stream: TcpStream,
        root: &Path,
        config: &ServerConfig,
        stats: &ServerStats,
    ) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line)? == 0 {
                return Ok(());
            }
            let mut parts = request_line.split_whitespace();
            let (method, target) = (
                parts.next().unwrap_or_default().to_owned(),
                parts.next().unwrap_or_default().to_owned(),
            );
            let mut headers = HashMap::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line)?;
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let body = read_body(&mut reader, &headers)?;
            stats.requests.fetch_add(1, Ordering::Relaxed);
            if headers.contains_key("authorization") {
                stats.authorization_headers.fetch_add(1, Ordering::Relaxed);
            }
            assert!(
                !headers.contains_key("content-encoding"),
                "compressed request bodies are not handled"
            );

            if let Some((user, pass)) = &config.basic_auth {
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
                );
                if headers.get("authorization") != Some(&expected) {
                    stats.unauthorized.fetch_add(1, Ordering::Relaxed);
                    writer.write_all(
                        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\n\
                          Content-Length: 0\r\n\r\n",
                    )?;
                    continue;
                }
            }

            if let Some(base) = &config.redirect_to {
                write!(
                    writer,
                    "HTTP/1.1 302 Found\r\nLocation: {base}{target}\r\nContent-Length: 0\r\n\r\n"
                )?;
                continue;
            }

            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let (repo, action) = path
                .trim_start_matches('/')
                .split_once('/')
                .unwrap_or_default();
            let repo_dir = root.join(repo);
            let response = match (method.as_str(), action, query) {
                ("GET", "info/refs", "service=git-upload-pack") if repo_dir.is_dir() => {
                    let mut body = b"001e# service=git-upload-pack\n0000".to_vec();
                    body.extend(upload_pack(&repo_dir, true, &[]));
                    Some(("application/x-git-upload-pack-advertisement", body))
                }
                ("POST", "git-upload-pack", _) if repo_dir.is_dir() => Some((
                    "application/x-git-upload-pack-result",
                    upload_pack(&repo_dir, false, &body),
                )),
                _ => None,
            };
            let Some((content_type, body)) = response else {
                writer.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
                continue;
            };
            write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            )?;
            for chunk in body.chunks(4096) {
                writer.write_all(chunk)?;
                stats
                    .bytes_sent
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if let Some(pause) = config.throttle {
                    writer.flush()?;
                    thread::sleep(pause);
                }
            }
            writer.flush()?;
        }
    }

    fn read_body(
        reader: &mut impl BufRead,
        headers: &HashMap<String, String>,
    ) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        if let Some(len) = headers.get("content-length") {
            body.resize(len.parse().unwrap_or(0), 0);
            reader.read_exact(&mut body)?;
        } else if headers
            .get("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let mut size_line = String::new();
                reader.read_line(&mut size_line)?;
                let size_hex = size_line.trim().split(';').next().unwrap_or("0");
                let size = usize::from_str_radix(size_hex, 16).unwrap_or(0);
                if size == 0 {
                    // Trailers (none expected), then the final empty line.
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line)?;
                        if line.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                reader.read_exact(&mut body[start..])?;
                let mut crlf = [0u8; 2];
                reader.read_exact(&mut crlf)?;
            }
        }
        Ok(body)
    }

    fn upload_pack(repo: &Path, advertise: bool, input: &[u8]) -> Vec<u8> {
        let mut cmd = git(repo);
        cmd.args(["upload-pack", "--stateless-rpc"]);
        if advertise {
            cmd.arg("--advertise-refs");
        }
        let mut child = cmd
            .arg(".")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn upload-pack");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        // Written from another thread: upload-pack may answer before it has read everything.
        let writer = thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("upload-pack");
        let _ = writer.join();
        out.stdout
    }

    /// `n` pseudo-random (incompressible) bytes.
    pub fn noise(n: usize, mut seed: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    /// Clones over plain HTTP from a [`GitServer`] (loopback only), into `scratch`.
    pub async fn clone_from_server(
        url: &str,
        target: &super::Target,
        limits: &super::CloneLimits,
        scratch: &Path,
    ) -> Result<super::Checkout, super::CloneError> {
        let options = super::Options {
            url_policy: super::UrlPolicy::AllowPlainHttp,
            scratch: Some(scratch.to_path_buf()),
        };
        super::clone_with(url, None, target, limits, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    use std::collections::HashMap;
    use std::sync::atomic::Ordering;

    const TOKEN: &str = "ghs_s3cretT0kenValue";

    fn limits() -> CloneLimits {
        CloneLimits {
            max_bytes: 64 << 20,
            timeout: Duration::from_secs(60),
            allow_local: false,
        }
    }

    /// Server repositories, their server, and an (initially empty) scratch directory for clones.
    struct Fixture {
        root: TempDir,
        scratch: TempDir,
        server: GitServer,
    }

    impl Fixture {
        fn new() -> Self {
            Self::with(ServerConfig::default())
        }

        fn with(config: ServerConfig) -> Self {
            let root = TempDir::new().unwrap();
            let server = GitServer::start(root.path(), config);
            Self {
                root,
                scratch: TempDir::new().unwrap(),
                server,
            }
        }

        fn repo(&self, name: &str, allow_sha: bool, history: History) -> HashMap<u32, String> {
            history.import(&bare_repo(self.root.path(), name, allow_sha))
        }

        async fn clone(
            &self,
            repo: &str,
            creds: Option<&Credentials>,
            target: &Target,
            limits: &CloneLimits,
        ) -> Result<Checkout, CloneError> {
            let options = Options {
                url_policy: UrlPolicy::AllowPlainHttp,
                scratch: Some(self.scratch.path().to_path_buf()),
            };
            clone_with(&self.server.url(repo), creds, target, limits, options).await
        }

        fn scratch_is_empty(&self) -> bool {
            fs::read_dir(self.scratch.path()).unwrap().next().is_none()
        }
    }

    fn full(git_ref: &str, commit: Option<&str>) -> Target {
        Target::Full {
            git_ref: git_ref.into(),
            commit: commit.map(Into::into),
        }
    }

    fn diff(head_ref: &str, base_ref: &str, merge_base: Option<&str>) -> Target {
        Target::Diff {
            head_ref: head_ref.into(),
            head: None,
            base_ref: base_ref.into(),
            base: None,
            merge_base: merge_base.map(Into::into),
        }
    }

    fn commits_in_odb(path: &Path) -> usize {
        let repo = Repository::open(path).unwrap();
        let odb = repo.odb().unwrap();
        let mut n = 0;
        odb.foreach(|oid| {
            if matches!(odb.read_header(*oid), Ok((_, ObjectType::Commit))) {
                n += 1;
            }
            true
        })
        .unwrap();
        n
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[tokio::test]
    async fn full_scan_fetches_only_the_tip_at_depth_1() {
        let f = Fixture::new();
        let mut h = History::default();
        let marks = h.linear("main", None, 40);
        let shas = f.repo("r", true, h);
        let tip = &shas[marks.last().unwrap()];

        let checkout = f
            .clone("r", None, &full("main", None), &limits())
            .await
            .unwrap();

        assert_eq!(checkout.head(), tip);
        assert_eq!(checkout.merge_base(), None);
        assert_eq!(checkout.stats().fetches, 1);
        assert_eq!(checkout.stats().depth, Some(1));
        assert!(checkout.stats().bytes_received > 0);
        let repo = Repository::open(checkout.path()).unwrap();
        assert!(repo.is_shallow());
        assert_eq!(commits_in_odb(checkout.path()), 1);
        assert_eq!(repo.head().unwrap().target().unwrap().to_string(), *tip);
        // The working tree is the tip's tree.
        assert!(read(&checkout.path().join("src/main/f19.txt")).starts_with("line 40 "));
        assert!(repo.statuses(None).unwrap().is_empty());
    }

    #[tokio::test]
    async fn full_scan_of_head_and_of_an_annotated_tag() {
        let f = Fixture::new();
        let mut h = History::default();
        let marks = h.linear("main", None, 5);
        h.tag("v1", marks[2]);
        let shas = f.repo("r", true, h);

        let head = f
            .clone("r", None, &full("HEAD", None), &limits())
            .await
            .unwrap();
        let tag = f
            .clone(
                "r",
                None,
                &full("refs/tags/v1", Some(&shas[&marks[2]])),
                &limits(),
            )
            .await
            .unwrap();

        assert_eq!(head.head(), shas[&marks[4]]);
        assert_eq!(tag.head(), shas[&marks[2]]);
        assert_eq!(commits_in_odb(tag.path()), 1);
    }

    #[tokio::test]
    async fn full_scan_of_an_older_commit_fetches_it_by_sha() {
        let f = Fixture::new();
        let mut h = History::default();
        let marks = h.linear("main", None, 10);
        let shas = f.repo("r", true, h);
        let older = &shas[&marks[4]];

        let checkout = f
            .clone("r", None, &full("refs/heads/main", Some(older)), &limits())
            .await
            .unwrap();

        assert_eq!(checkout.head(), older);
        assert_eq!(commits_in_odb(checkout.path()), 1);
    }

    #[tokio::test]
    async fn wrong_commit_sha_is_a_commit_mismatch() {
        let f = Fixture::new();
        let mut h = History::default();
        let marks = h.linear("main", None, 3);
        let shas = f.repo("r", true, h);
        let bogus = "0123456789abcdef0123456789abcdef01234567";

        let err = f
            .clone("r", None, &full("main", Some(bogus)), &limits())
            .await
            .unwrap_err();

        assert_eq!(err.code(), "commit_mismatch", "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(bogus) && msg.contains(&shas[&marks[2]]),
            "{msg}"
        );
        assert!(f.scratch_is_empty());
    }

    #[tokio::test]
    async fn older_commit_on_a_server_without_sha_fetch_is_a_commit_mismatch() {
        let f = Fixture::new();
        let mut h = History::default();
        let marks = h.linear("main", None, 3);
        let shas = f.repo("r", false, h);

        let err = f
            .clone("r", None, &full("main", Some(&shas[&marks[0]])), &limits())
            .await
            .unwrap_err();

        assert_eq!(err.code(), "commit_mismatch", "{err}");
    }

    #[tokio::test]
    async fn missing_ref_is_ref_not_found() {
        let f = Fixture::new();
        let mut h = History::default();
        h.linear("main", None, 2);
        f.repo("r", true, h);

        let err = f
            .clone("r", None, &full("no-such-branch", None), &limits())
            .await
            .unwrap_err();

        assert_eq!(err.code(), "ref_not_found");
        assert!(err.to_string().contains("refs/heads/no-such-branch"));
    }

    #[tokio::test]
    async fn diff_scan_deepens_until_the_merge_base_without_fetching_everything() {
        let f = Fixture::new();
        let mut h = History::default();
        let main = h.linear("main", None, 500);
        // The PR branched 50 commits before the target's tip, which moved on since.
        let branch_point = main[449];
        let pr = h.linear("feature", Some(branch_point), 3);
        let shas = f.repo("r", true, h);

        let checkout = f
            .clone("r", None, &diff("feature", "main", None), &limits())
            .await
            .unwrap();

        assert_eq!(checkout.head(), shas[pr.last().unwrap()]);
        assert_eq!(checkout.merge_base(), Some(shas[&branch_point].as_str()));
        // 1 and 32 were too shallow (the merge base is 51 commits deep on the target side).
        assert_eq!(checkout.stats().depth, Some(256));
        assert_eq!(checkout.stats().fetches, 3);
        let commits = commits_in_odb(checkout.path());
        // Depth 256 from both tips: main[244..500] plus main[197..450] under the PR's 3 commits.
        assert_eq!(commits, 306, "fetched {commits} of 503 commits");
        assert!(Repository::open(checkout.path()).unwrap().is_shallow());
        // Only the PR's own changes, although the target changed many files since.
        let changed = checkout.changed_files().unwrap();
        let mut paths: Vec<_> = changed
            .iter()
            .filter_map(|c| c.path_at_head.clone())
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                "src/feature/f0.txt",
                "src/feature/f1.txt",
                "src/feature/f2.txt"
            ]
        );
    }

    #[tokio::test]
    async fn diff_scan_uses_the_merge_base_not_the_moved_target_tip() {
        let f = Fixture::new();
        let mut h = History::default();
        let base = h.commit(
            "main",
            &[],
            &[file("app.py", "x = 1\n"), file("lib.py", "y = 1\n")],
        );
        let pr = h.commit("feature", &[base], &[file("app.py", "x = 2\n")]);
        // The target moves on after the branch point, touching another file.
        let moved = h.commit("main", &[base], &[file("lib.py", "y = 2\n")]);
        let shas = f.repo("r", true, h);

        let checkout = f
            .clone("r", None, &diff("feature", "main", None), &limits())
            .await
            .unwrap();

        assert_eq!(checkout.merge_base(), Some(shas[&base].as_str()));
        assert_ne!(checkout.merge_base(), Some(shas[&moved].as_str()));
        assert_eq!(checkout.head(), shas[&pr]);
        assert_eq!(
            checkout.changed_files().unwrap(),
            [ChangedFile {
                path_at_head: Some("app.py".into()),
                path_at_base: Some("app.py".into()),
                status: ChangeStatus::Modified,
            }]
        );
    }

    #[tokio::test]
    async fn provided_merge_base_is_fetched_alone_at_depth_1() {
        let f = Fixture::new();
        let mut h = History::default();
        let main = h.linear("main", None, 300);
        let pr = h.linear("feature", Some(main[99]), 2);
        let shas = f.repo("r", true, h);

        let checkout = f
            .clone(
                "r",
                None,
                &diff("feature", "main", Some(&shas[&main[99]])),
                &limits(),
            )
            .await
            .unwrap();

        assert_eq!(checkout.merge_base(), Some(shas[&main[99]].as_str()));
        assert_eq!(checkout.head(), shas[&pr[1]]);
        assert_eq!(checkout.stats().fetches, 1);
        assert_eq!(checkout.stats().depth, Some(1));
        // The head and the merge base; not the target tip, not the history.
        assert_eq!(commits_in_odb(checkout.path()), 2);
        assert_eq!(checkout.changed_files().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn provided_merge_base_falls_back_to_deepening_when_the_server_refuses_shas() {
        let f = Fixture::new();
        let mut h = History::default();
        let main = h.linear("main", None, 60);
        let pr = h.linear("feature", Some(main[49]), 2);
        let shas = f.repo("r", false, h);

        let checkout = f
            .clone(
                "r",
                None,
                &diff("feature", "main", Some(&shas[&main[49]])),
                &limits(),
            )
            .await
            .unwrap();

        assert_eq!(checkout.merge_base(), Some(shas[&main[49]].as_str()));
        assert_eq!(checkout.head(), shas[&pr[1]]);
        assert_eq!(checkout.stats().depth, Some(32));
    }

    #[tokio::test]
    async fn merge_base_is_not_fooled_by_a_shortcut_to_an_older_commit() {
        // Both sides reach m10 in two steps through side branches forked there, while the real
        // merge base m60 is 41 commits down the target's first-parent chain. At depth 32
        // `merge_base` alone answers m10; the boundary check makes the clone deepen instead.
        let f = Fixture::new();
        let mut h = History::default();
        let main = h.linear("main", None, 100);
        let (m10, m60, m99) = (main[10], main[60], main[99]);
        let s1 = h.commit("side", &[m10], &[file("side.txt", "s")]);
        let t1 = h.commit("other", &[m10], &[file("other.txt", "t")]);
        let target = h.commit("main", &[m99, s1], &[]);
        let h1 = h.commit("feature", &[m60], &[file("pr.txt", "1")]);
        let h2 = h.commit("feature", &[h1], &[file("pr.txt", "2")]);
        let head = h.commit("feature", &[h2, t1], &[]);
        let shas = f.repo("r", true, h);

        let checkout = f
            .clone("r", None, &diff("feature", "main", None), &limits())
            .await
            .unwrap();

        assert_eq!(checkout.head(), shas[&head]);
        let repo = Repository::open(checkout.path()).unwrap();
        let full_answer = repo
            .merge_base(
                Oid::from_str(&shas[&head]).unwrap(),
                Oid::from_str(&shas[&target]).unwrap(),
            )
            .unwrap();
        assert_eq!(checkout.merge_base(), Some(shas[&m60].as_str()));
        assert_eq!(full_answer.to_string(), shas[&m60]);
        assert_eq!(checkout.stats().depth, Some(256));
    }

    #[tokio::test]
    async fn unrelated_histories_have_no_merge_base() {
        let f = Fixture::new();
        let mut h = History::default();
        h.linear("main", None, 3);
        h.linear("orphan", None, 3);
        f.repo("r", true, h);

        let err = f
            .clone("r", None, &diff("orphan", "main", None), &limits())
            .await
            .unwrap_err();

        assert_eq!(err.code(), "merge_base_not_found", "{err}");
        assert!(f.scratch_is_empty());
    }

    #[tokio::test]
    async fn byte_cap_aborts_with_clone_too_large() {
        let f = Fixture::new();
        let mut h = History::default();
        h.commit("main", &[], &[file("blob.bin", noise(1 << 20, 7))]);
        f.repo("r", true, h);
        let small = CloneLimits {
            max_bytes: 64 << 10,
            ..limits()
        };

        let err = f
            .clone("r", None, &full("main", None), &small)
            .await
            .unwrap_err();

        assert_eq!(err.code(), "clone_too_large", "{err}");
        assert!(f.scratch_is_empty());
        // Under the cap the same repository clones.
        f.clone("r", None, &full("main", None), &limits())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn zero_timeout_is_clone_timeout() {
        let f = Fixture::new();
        let mut h = History::default();
        h.linear("main", None, 2);
        f.repo("r", true, h);
        let none = CloneLimits {
            timeout: Duration::ZERO,
            ..limits()
        };

        let err = f
            .clone("r", None, &full("main", None), &none)
            .await
            .unwrap_err();

        assert_eq!(err.code(), "clone_timeout");
        assert!(f.scratch_is_empty());
    }

    #[tokio::test]
    async fn slow_server_is_cut_off_at_the_deadline_by_the_callbacks() {
        let f = Fixture::with(ServerConfig {
            throttle: Some(Duration::from_millis(20)),
            ..ServerConfig::default()
        });
        let mut h = History::default();
        // 256 KiB at 4 KiB per 20 ms: over a second to send.
        h.commit("main", &[], &[file("blob.bin", noise(256 << 10, 3))]);
        f.repo("r", true, h);
        let short = CloneLimits {
            timeout: Duration::from_millis(300),
            ..limits()
        };

        let started = Instant::now();
        let err = f
            .clone("r", None, &full("main", None), &short)
            .await
            .unwrap_err();

        assert_eq!(err.code(), "clone_timeout");
        // Well before the async backstop (timeout + ABORT_GRACE): a callback stopped it.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(f.scratch_is_empty());
    }

    #[tokio::test]
    async fn symlinks_are_checked_out_and_materialized_as_plain_files() {
        let f = Fixture::new();
        let mut h = History::default();
        let base = h.commit(
            "main",
            &[],
            &[
                link("passwd", "/etc/passwd"),
                link("up", "../../x"),
                link("dir/deep", "../../../../etc"),
                file("ok.txt", "ok"),
            ],
        );
        h.commit(
            "feature",
            &[base],
            &[
                link("passwd", "/etc/shadow"),
                link("up", "../../y"),
                link("dir/deep", "/"),
            ],
        );
        f.repo("r", true, h);

        let checkout = f
            .clone("r", None, &diff("feature", "main", None), &limits())
            .await
            .unwrap();

        for (path, text) in [
            ("passwd", "/etc/shadow"),
            ("up", "../../y"),
            ("dir/deep", "/"),
        ] {
            let p = checkout.path().join(path);
            let meta = fs::symlink_metadata(&p).unwrap();
            assert!(meta.file_type().is_file(), "{path} is not a plain file");
            assert_eq!(read(&p), text);
        }
        let into = TempDir::new().unwrap();
        let paths: Vec<String> = checkout
            .changed_files()
            .unwrap()
            .into_iter()
            .filter_map(|c| c.path_at_base)
            .collect();
        assert_eq!(paths.len(), 3);
        checkout.materialize_base(&paths, into.path()).unwrap();
        for (path, text) in [
            ("passwd", "/etc/passwd"),
            ("up", "../../x"),
            ("dir/deep", "../../../../etc"),
        ] {
            let p = into.path().join(path);
            assert!(fs::symlink_metadata(&p).unwrap().file_type().is_file());
            assert_eq!(read(&p), text);
        }
    }

    #[tokio::test]
    async fn dot_git_and_dot_dot_paths_fail_the_checkout() {
        let f = Fixture::new();
        for (name, path) in [
            ("hooks", ".git/hooks/post-checkout"),
            ("hooks-upper", ".GIT/hooks/post-checkout"),
            ("ntfs-alias", "GIT~1/hooks/post-checkout"),
            ("dotdot", "a/../../escaped"),
        ] {
            let mut h = History::default();
            h.commit(
                "main",
                &[],
                &[
                    file(path, "#!/bin/sh\ntouch /tmp/pwned\n"),
                    file("ok", "ok"),
                ],
            );
            f.repo(name, true, h);

            let err = f
                .clone(name, None, &full("main", None), &limits())
                .await
                .unwrap_err();

            assert_eq!(err.code(), "checkout_failed", "{name}: {err}");
            assert!(f.scratch_is_empty(), "{name}");
            assert!(!f.scratch.path().parent().unwrap().join("escaped").exists());
        }
    }

    #[tokio::test]
    async fn lfs_filter_attributes_run_nothing() {
        let f = Fixture::new();
        let pointer = "version https://git-lfs.github.com/spec/v1\n\
                       oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n\
                       size 12345\n";
        let mut h = History::default();
        let base = h.commit(
            "main",
            &[],
            &[
                file(
                    ".gitattributes",
                    "*.bin filter=lfs diff=lfs merge=lfs -text\n",
                ),
                file("model.bin", pointer),
            ],
        );
        h.commit(
            "feature",
            &[base],
            &[file("model.bin", format!("{pointer}\n"))],
        );
        f.repo("r", true, h);

        let checkout = f
            .clone("r", None, &diff("feature", "main", None), &limits())
            .await
            .unwrap();
        assert_eq!(
            read(&checkout.path().join("model.bin")),
            format!("{pointer}\n")
        );

        // Configure a smudge "filter" that leaves a marker, as a hostile global config could.
        let marker = checkout
            .path()
            .parent()
            .unwrap()
            .join(format!("lfs-marker-{}", checkout.head()));
        let repo = Repository::open(checkout.path()).unwrap();
        let mut config = repo
            .config()
            .unwrap()
            .open_level(ConfigLevel::Local)
            .unwrap();
        let command = format!("sh -c 'touch {}; cat'", marker.display());
        config.set_str("filter.lfs.smudge", &command).unwrap();
        config.set_bool("filter.lfs.required", true).unwrap();

        // Control: the git CLI does run it.
        fs::remove_file(checkout.path().join("model.bin")).unwrap();
        run(git(checkout.path()).args(["checkout", "--", "model.bin"]));
        assert!(marker.exists(), "the control filter did not run");
        fs::remove_file(&marker).unwrap();

        // Our checkout and materialize_base do not.
        fs::remove_file(checkout.path().join("model.bin")).unwrap();
        check_out(&repo, repo.head().unwrap().target().unwrap()).unwrap();
        assert_eq!(
            read(&checkout.path().join("model.bin")),
            format!("{pointer}\n")
        );
        let into = TempDir::new().unwrap();
        checkout
            .materialize_base(&["model.bin".into()], into.path())
            .unwrap();
        assert_eq!(read(&into.path().join("model.bin")), pointer);
        assert!(!marker.exists(), "a filter ran");
    }

    #[tokio::test]
    async fn temp_dir_is_removed_on_drop() {
        let f = Fixture::new();
        let mut h = History::default();
        h.linear("main", None, 2);
        f.repo("r", true, h);

        let checkout = f
            .clone("r", None, &full("main", None), &limits())
            .await
            .unwrap();
        let path = checkout.path().to_path_buf();
        assert!(path.join(".git").is_dir());
        assert!(path.starts_with(f.scratch.path()));
        drop(checkout);

        assert!(!path.exists());
        assert!(f.scratch_is_empty());
    }

    #[tokio::test]
    async fn changed_files_follow_renames_adds_deletes_and_modifications() {
        let f = Fixture::new();
        let body: String = (0..40)
            .map(|i| format!("def f{i}():\n    return {i}\n"))
            .collect();
        let mut h = History::default();
        let base = h.commit(
            "main",
            &[],
            &[
                file("old/name.py", &body),
                file("gone.py", "print('bye')\n"),
                file("edit.py", "a = 1\n"),
                file("same.py", "same\n"),
            ],
        );
        h.commit(
            "feature",
            &[base],
            &[
                delete("old/name.py"),
                file("new/name.py", format!("{body}def extra():\n    pass\n")),
                delete("gone.py"),
                file("edit.py", "a = 2\n"),
                file("added.py", "b = 1\n"),
            ],
        );
        f.repo("r", true, h);

        let checkout = f
            .clone("r", None, &diff("feature", "main", None), &limits())
            .await
            .unwrap();
        let mut changed = checkout.changed_files().unwrap();
        changed.sort_by(|a, b| {
            (&a.path_at_head, &a.path_at_base).cmp(&(&b.path_at_head, &b.path_at_base))
        });

        let c = |head: Option<&str>, base: Option<&str>, status| ChangedFile {
            path_at_head: head.map(Into::into),
            path_at_base: base.map(Into::into),
            status,
        };
        assert_eq!(
            changed,
            [
                c(None, Some("gone.py"), ChangeStatus::Deleted),
                c(Some("added.py"), None, ChangeStatus::Added),
                c(Some("edit.py"), Some("edit.py"), ChangeStatus::Modified),
                c(
                    Some("new/name.py"),
                    Some("old/name.py"),
                    ChangeStatus::Renamed
                ),
            ]
        );
    }

    #[tokio::test]
    async fn materialize_base_writes_only_the_requested_base_versions() {
        let f = Fixture::new();
        let mut h = History::default();
        let base = h.commit(
            "main",
            &[],
            &[
                file("a/one.py", "one@base"),
                file("two.py", "two@base"),
                file("three.py", "3"),
            ],
        );
        h.commit(
            "feature",
            &[base],
            &[
                file("a/one.py", "one@head"),
                file("new.py", "new"),
                delete("two.py"),
            ],
        );
        // The target moves on: its version must not leak into the base files.
        h.commit("main", &[base], &[file("a/one.py", "one@target")]);
        f.repo("r", true, h);
        let checkout = f
            .clone("r", None, &diff("feature", "main", None), &limits())
            .await
            .unwrap();
        let into = TempDir::new().unwrap();
        let out = into.path().join("base");

        checkout
            .materialize_base(
                &[
                    "a/one.py".into(),
                    "two.py".into(),
                    "new.py".into(),
                    "a/one.py".into(),
                ],
                &out,
            )
            .unwrap();

        assert_eq!(read(&out.join("a/one.py")), "one@base");
        assert_eq!(read(&out.join("two.py")), "two@base");
        // Added by the PR: nothing at the base. Not asked for: not written.
        assert!(!out.join("new.py").exists());
        assert!(!out.join("three.py").exists());
        assert_eq!(read(&checkout.path().join("a/one.py")), "one@head");

        for bad in ["../x", "/etc/passwd", ".git/config", "a//b", "a/./b", ""] {
            let err = checkout
                .materialize_base(&[bad.to_owned()], &into.path().join("other"))
                .unwrap_err();
            assert_eq!(err.code(), "invalid_path", "{bad:?}");
        }
        // An existing symlink under the target directory is not followed.
        let trap = into.path().join("trap");
        fs::create_dir(&trap).unwrap();
        std::os::unix::fs::symlink(into.path().join("elsewhere"), trap.join("a")).unwrap();
        let err = checkout
            .materialize_base(&["a/one.py".into()], &trap)
            .unwrap_err();
        assert_eq!(err.code(), "invalid_path");
        assert!(!into.path().join("elsewhere").exists());
    }

    #[tokio::test]
    async fn full_checkout_has_no_changed_files() {
        let f = Fixture::new();
        let mut h = History::default();
        h.linear("main", None, 1);
        f.repo("r", true, h);
        let checkout = f
            .clone("r", None, &full("main", None), &limits())
            .await
            .unwrap();

        assert_eq!(
            checkout.changed_files().unwrap_err().code(),
            "invalid_target"
        );
    }

    #[tokio::test]
    async fn credentials_are_sent_to_the_server_and_shown_nowhere() {
        let f = Fixture::with(ServerConfig {
            basic_auth: Some(("x-access-token".into(), TOKEN.into())),
            ..ServerConfig::default()
        });
        let mut h = History::default();
        h.linear("main", None, 3);
        f.repo("r", true, h);
        let good = Credentials::access_token(SecretString::from(TOKEN));
        let bad = Credentials::access_token(SecretString::from("ghs_wrongtoken"));

        let checkout = f
            .clone("r", Some(&good), &full("main", None), &limits())
            .await
            .unwrap();
        assert!(f.server.stats.unauthorized.load(Ordering::Relaxed) >= 1);
        assert!(!format!("{good:?} {checkout:?}").contains(TOKEN));
        // The token is not in the repository's config either (no URL with credentials).
        let config = read(&checkout.path().join(".git/config"));
        assert!(!config.contains(TOKEN));

        for creds in [None, Some(&bad)] {
            let err = f
                .clone("r", creds, &full("main", None), &limits())
                .await
                .unwrap_err();
            assert_eq!(err.code(), "auth_failed", "{err}");
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains(TOKEN) && !shown.contains("wrongtoken"),
                "{shown}"
            );
        }
        drop(checkout);
        assert!(f.scratch_is_empty());
    }

    #[tokio::test]
    async fn credentials_do_not_follow_a_redirect_to_another_host() {
        let auth = Some(("x-access-token".to_owned(), TOKEN.to_owned()));
        // `other` holds the repository and would accept the token; `moved` redirects to it.
        let other = Fixture::with(ServerConfig {
            basic_auth: auth.clone(),
            ..ServerConfig::default()
        });
        let mut h = History::default();
        h.linear("main", None, 2);
        other.repo("r", true, h);
        let base = other.server.url("");
        let moved = Fixture::with(ServerConfig {
            basic_auth: auth,
            redirect_to: Some(base.trim_end_matches('/').to_owned()),
            ..ServerConfig::default()
        });
        let creds = Credentials::access_token(SecretString::from(TOKEN));

        let err = moved
            .clone("r", Some(&creds), &full("main", None), &limits())
            .await
            .unwrap_err();

        assert_eq!(err.code(), "auth_failed", "{err}");
        assert!(err.to_string().contains("another host"), "{err}");
        assert!(
            moved
                .server
                .stats
                .authorization_headers
                .load(Ordering::Relaxed)
                >= 1
        );
        assert_eq!(
            other
                .server
                .stats
                .authorization_headers
                .load(Ordering::Relaxed),
            0
        );
        assert!(other.server.stats.requests.load(Ordering::Relaxed) >= 1);

        // Without credentials, a redirect of the first request is followed.
        let public = Fixture::new();
        let mut h = History::default();
        h.linear("main", None, 2);
        public.repo("r", true, h);
        let hop = Fixture::with(ServerConfig {
            redirect_to: Some(public.server.url("").trim_end_matches('/').to_owned()),
            ..ServerConfig::default()
        });
        hop.clone("r", None, &full("main", None), &limits())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn only_https_urls_without_credentials_are_accepted() {
        let target = full("main", None);
        for (url, reason) in [
            ("http://example.com/r.git", "https"),
            ("file:///etc", "https"),
            ("ssh://git@example.com/r.git", "https"),
            ("/srv/repo", "absolute"),
            ("https://user:pw@example.com/r.git", "embedded"),
            ("https://example.com/r.git\nx", "whitespace"),
        ] {
            let err = clone(url, None, &target, &limits()).await.unwrap_err();
            assert_eq!(err.code(), "invalid_url", "{url}");
            assert!(err.to_string().contains(reason), "{url}: {err}");
            assert!(!err.to_string().contains("pw@"));
        }
        for (url, authority) in [
            ("HTTPS://Example.com:8443/a/b.git", "example.com:8443"),
            ("https://example.com:443/a", "example.com"),
            ("https://example.com", "example.com"),
            ("https://[::1]:443/a", "[::1]"),
        ] {
            assert_eq!(check_url(url, UrlPolicy::HttpsOnly).unwrap(), authority);
        }
    }

    #[tokio::test]
    async fn invalid_targets_are_refused_before_any_network() {
        for target in [
            full("main", Some("abc123")),
            full("main:refs/heads/x", None),
            full("refs/heads/*", None),
            full("main", Some(&"g".repeat(40))),
        ] {
            let err = clone("https://example.invalid/r.git", None, &target, &limits())
                .await
                .unwrap_err();
            assert_eq!(err.code(), "invalid_target", "{target:?}");
        }
    }

    #[test]
    fn credentials_debug_redacts_the_token() {
        let creds = Credentials {
            username: "bot".into(),
            token: SecretString::from(TOKEN),
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("bot") && shown.contains("redacted"));
        assert!(!shown.contains(TOKEN));
    }

    /// Pins the libgit2 fact that shapes the tests: `file://` cannot be fetched shallow.
    #[test]
    fn libgit2_file_transport_refuses_shallow_fetches() {
        let root = TempDir::new().unwrap();
        let mut h = History::default();
        h.linear("main", None, 2);
        let server = bare_repo(root.path(), "r", true);
        h.import(&server);
        let local = Repository::init(root.path().join("local")).unwrap();
        let mut remote = local
            .remote_anonymous(&format!("file://{}", server.display()))
            .unwrap();
        let mut opts = FetchOptions::new();
        opts.depth(1);

        let err = remote
            .fetch(&["+refs/heads/main:refs/x"], Some(&mut opts), None)
            .unwrap_err();

        assert!(
            err.message().contains("shallow fetch is not supported"),
            "{err}"
        );
    }
}
