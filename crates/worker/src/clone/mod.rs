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
//!    in doubling steps (1 → 2 → 4 → … → 2048 → full history) until `merge_base(head, target)` exists *and* no
//!    history between the tips and that merge base is cut off by the shallow boundary; only then is
//!    it the same merge base a full clone would give. A merge base the provider gave is trusted
//!    only once the head, deepened the same way (alone), reaches it; one that is not an ancestor
//!    of the head, or that the server will not send, is logged and computed as above instead.
//!    Every fetch is re-verified against the pins.
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
//!
//! Modules: `url` (which URLs, which host gets the token), `plan` (the target validated and its
//! commits pinned), `fetch` (fetching and deepening, caps in callbacks), `checkout` (the
//! repository on disk and what the diff logic reads from it).

mod checkout;
pub use checkout::BaseFile;
mod fetch;
mod plan;
#[cfg(test)]
mod tests;
mod url;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::Oid;
use secrecy::SecretString;
use tempfile::TempDir;

use checkout::{check_out, init_repo};
use fetch::Fetcher;
use plan::Plan;
use url::{check_url, UrlPolicy};

/// How long the async side waits past the deadline for the blocking work to abort by itself
/// (from a callback) before it gives up on it and reports the timeout anyway. Only a server that
/// sends nothing, or a checkout already writing files (libgit2 cannot interrupt it), needs it.
const ABORT_GRACE: Duration = Duration::from_secs(5);

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
    /// A diff-aware scan of `head` against its merge base with the target branch `base_ref` as
    /// the branch is when the clone runs: never an older target commit, which would blame the PR
    /// for everything the target gained since (and that the PR merged in). When the provider
    /// knows the merge base, passing it skips both the target tip and the deepening.
    Diff {
        head_ref: String,
        head: Option<String>,
        base_ref: String,
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

/// Clones over plain HTTP, from picket-test-support's server on the loopback interface, into a
/// temporary directory under `scratch`: for picket-bench's clone benchmark only (feature
/// `bench-support`). The worker itself never clones over plain HTTP.
#[cfg(feature = "bench-support")]
pub async fn clone_over_plain_http(
    url: &str,
    target: &Target,
    limits: &CloneLimits,
    scratch: &std::path::Path,
) -> Result<Checkout, CloneError> {
    let options = Options {
        url_policy: UrlPolicy::AllowPlainHttp,
        scratch: Some(scratch.to_path_buf()),
    };
    clone_with(url, None, target, limits, options).await
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
