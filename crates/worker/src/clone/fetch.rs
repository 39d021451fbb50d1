//! The fetches: one connection that lists the refs, pins and fetches at depth 1, then deepening
//! until the merge base is settled; caps and credentials in libgit2's callbacks.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs;
use std::io;

use git2::{
    AutotagOption, Cred, CredentialType, Direction, ErrorClass, ErrorCode, FetchOptions, Oid,
    ProxyOptions, RemoteCallbacks, RemoteRedirect, Repository,
};
use secrecy::ExposeSecret;

use super::plan::{pin_ref, refspecs, Pin, Plan, Role};
use super::url::authority_of;
use super::{Clock, CloneError, CloneStats, Credentials};

/// Fetch depths tried in turn for a diff scan: the first fetch is at depth 1, later ones deepen
/// until the merge base is settled; the last step asks for the full history.
///
/// Each step doubles the depth, so a clone never takes more than twice the history its merge
/// base needs (plus the tips' trees). Every commit of history can cost a lot (a repository whose
/// large files are rewritten now and then sends them once per version): a PR one commit above
/// its merge base must stop at depth 2, not fetch 32 commits of the target's history. The price
/// is one more round trip per doubling, 12 at most before the full history.
const DEPTHS: [i32; 13] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, UNSHALLOW];

/// libgit2's `GIT_FETCH_DEPTH_UNSHALLOW`. Depth 0 means "full" only for a first fetch; on a
/// shallow repository it leaves the shallow boundary where it is, so unshallowing needs this.
const UNSHALLOW: i32 = i32::MAX;

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
            // libgit2 (OpenSSL) says no more than "the SSL certificate is invalid".
            None if e.code() == ErrorCode::Certificate => CloneError::Fetch(format!(
                "TLS: the git host's certificate was refused ({}); if a private CA signed it, \
                 give that CA to the workers in PICKET_CA_BUNDLE",
                e.message()
            )),
            None if e.class() == ErrorClass::Ssl => {
                CloneError::Fetch(format!("TLS: {}", e.message()))
            }
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

pub(super) struct Fetcher<'a> {
    pub(super) repo: &'a Repository,
    /// A `file://` repository: fetched whole, since the local transport cannot fetch shallow.
    pub(super) local: bool,
    pub(super) url: &'a str,
    pub(super) authority: &'a str,
    pub(super) creds: Option<&'a Credentials>,
    pub(super) max_bytes: u64,
    pub(super) clock: &'a Clock<'a>,
    pub(super) stats: CloneStats,
}

impl Fetcher<'_> {
    /// Fetches what the plan needs; returns the head and, for a diff, the merge base.
    pub(super) fn fetch_target(&mut self, plan: &Plan) -> Result<(Oid, Option<Oid>), CloneError> {
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
                merge_base,
            } => {
                let tips = |advertised: &[(String, Oid)]| {
                    Ok(vec![
                        pin_ref(Role::Head, head_ref, *head, advertised)?,
                        pin_ref(Role::Base, base_ref, None, advertised)?,
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
                        // Trusted only once the head's own history reaches it.
                        Ok(pins) => match self.deepen_head_to(&pins, merge_base)? {
                            true => return Ok((pins[0].oid, Some(merge_base))),
                            false => tracing::warn!(
                                %merge_base,
                                head = %pins[0].oid,
                                "the given merge base is not an ancestor of the head; \
                                 computing it from history"
                            ),
                        },
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

    /// Deepens the head alone (`pins[0]`; the given merge base, `pins[1]`, stays at depth 1)
    /// until its fetched history shows whether `merge_base` is one of its ancestors: a PR k
    /// commits above its merge base costs about log2(k) + 1 more fetches of the PR's own commits.
    fn deepen_head_to(&mut self, pins: &[Pin], merge_base: Oid) -> Result<bool, CloneError> {
        let head = pins[0].oid;
        for &depth in &DEPTHS[1..] {
            if let Some(answer) = reaches(self.repo, head, merge_base)? {
                return Ok(answer);
            }
            tracing::debug!(depth, "deepening the head to check the given merge base");
            self.fetch(&pins[..1], depth)?;
        }
        // After the last step the head's history is whole.
        Ok(reaches(self.repo, head, merge_base)?.unwrap_or(false))
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

/// Whether `ancestor` is `head` or one of its ancestors, when the fetched history proves it
/// either way: `None` while the walk from `head` runs into the shallow boundary without meeting
/// `ancestor`.
fn reaches(repo: &Repository, head: Oid, ancestor: Oid) -> Result<Option<bool>, CloneError> {
    let boundary = shallow_boundary(repo)?;
    let mut walk = repo.revwalk().map_err(CloneError::git)?;
    walk.push(head).map_err(CloneError::git)?;
    let mut cut = false;
    for oid in walk {
        let oid = oid.map_err(CloneError::git)?;
        if oid == ancestor {
            return Ok(Some(true));
        }
        cut |= boundary.contains(&oid);
    }
    Ok(if cut { None } else { Some(false) })
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
