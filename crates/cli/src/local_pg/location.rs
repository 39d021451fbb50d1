//! Where the cluster lives and who runs it: the server user (ourselves, or `postgres` when we
//! are root), the cluster's paths, and the fallback outside a state directory that user cannot
//! reach.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{getegid, geteuid, User};
use sha2::{Digest, Sha256};

use super::binaries::parse_cluster_major;
use super::{io_err, utf8_path, LocalPgError, FALLBACK_BASE, MAX_SOCKET_PATH, PORT, SERVER_USER};
/// The server's identity: ourselves, or the `postgres` user when we are root.
#[derive(Debug, Clone)]
pub(super) struct ServerUser {
    pub(super) name: String,
    pub(super) uid: u32,
    pub(super) gid: u32,
    /// True when we are root and must drop to `uid`/`gid` for every PostgreSQL tool.
    pub(super) switch: bool,
}

impl ServerUser {
    pub(super) fn detect() -> Result<Self, LocalPgError> {
        let euid = geteuid();
        if !euid.is_root() {
            let name = User::from_uid(euid)
                .ok()
                .flatten()
                .map_or_else(|| format!("uid {euid}"), |u| u.name);
            return Ok(Self {
                name,
                uid: euid.as_raw(),
                gid: getegid().as_raw(),
                switch: false,
            });
        }
        match User::from_name(SERVER_USER) {
            Ok(Some(u)) => Ok(Self {
                name: u.name,
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
                switch: true,
            }),
            Ok(None) => Err(LocalPgError::NoServerUser),
            Err(e) => Err(LocalPgError::UserLookup(e)),
        }
    }

    pub(super) fn chown(&self, path: &Path) -> Result<(), LocalPgError> {
        if !self.switch {
            return Ok(());
        }
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .map_err(io_err("changing the owner of", path))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClusterPaths {
    /// Holds the three below. Owned by us; the server user only needs to traverse it.
    pub(super) dir: PathBuf,
    pub(super) data: PathBuf,
    pub(super) socket_dir: PathBuf,
    pub(super) log: PathBuf,
}

impl ClusterPaths {
    fn under(dir: PathBuf) -> Self {
        Self {
            data: dir.join("data"),
            socket_dir: dir.join("run"),
            log: dir.join("postgres.log"),
            dir,
        }
    }

    pub(super) fn socket_file(&self) -> PathBuf {
        self.socket_dir.join(format!(".s.PGSQL.{PORT}"))
    }

    fn version_file(&self) -> PathBuf {
        self.data.join("PG_VERSION")
    }

    fn is_initialised(&self) -> bool {
        self.version_file().is_file()
    }

    /// A data directory owned by anyone but the server user would fail later, on reading
    /// `PG_VERSION` or inside `pg_ctl`, with a less helpful message.
    pub(super) fn check_owner(&self, user: &ServerUser) -> Result<(), LocalPgError> {
        let meta = match fs::metadata(&self.data) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("inspecting", &self.data)(e)),
        };
        if meta.uid() != user.uid {
            return Err(LocalPgError::WrongOwner {
                data_dir: self.data.clone(),
                owner: meta.uid(),
                user: user.name.clone(),
                uid: user.uid,
            });
        }
        Ok(())
    }

    /// Major version of the existing cluster, `None` if there is none yet.
    pub(super) fn cluster_major(&self) -> Result<Option<u32>, LocalPgError> {
        let path = self.version_file();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        match parse_cluster_major(&text) {
            Some(major) => Ok(Some(major)),
            None => Err(LocalPgError::UnsupportedCluster {
                path,
                found: text.trim().to_owned(),
            }),
        }
    }
}

/// Chooses the cluster directory and creates it. See the module docs for the fallback.
pub(super) fn locate(root: &Path, user: &ServerUser) -> Result<ClusterPaths, LocalPgError> {
    fs::create_dir_all(root).map_err(io_err("creating", root))?;
    // Canonical, so the same checkout always hashes to the same fallback directory, and
    // the traversal check walks the real directories, not symlinks.
    let root = fs::canonicalize(root).map_err(io_err("resolving", root))?;
    let primary = ClusterPaths::under(root.join("pg"));

    let chosen = if user.switch {
        let probe = if primary.dir.exists() {
            &primary.dir
        } else {
            &root
        };
        let blocker = first_untraversable(probe, user)?;
        let fallback = ClusterPaths::under(fallback_dir(&primary.dir));
        match choose_location(primary.is_initialised(), blocker, fallback.is_initialised()) {
            Ok(Location::Primary) => primary,
            Ok(Location::Fallback) if fallback.is_initialised() => {
                tracing::info!(
                    using = %fallback.dir.display(),
                    "the local cluster lives outside the state directory"
                );
                fallback
            }
            Ok(Location::Fallback) => {
                // Said once, when the cluster is created: this is where the data will live.
                tracing::warn!(
                    wanted = %primary.dir.display(),
                    using = %fallback.dir.display(),
                    user = %user.name,
                    "the PostgreSQL server user cannot reach the state directory; \
                     creating the local cluster in a system directory instead"
                );
                ensure_dir(Path::new(FALLBACK_BASE))?;
                fallback
            }
            Err(path) => {
                return Err(LocalPgError::NotTraversable {
                    user: user.name.clone(),
                    path,
                })
            }
        }
    } else {
        primary
    };
    ensure_dir(&chosen.dir)?;
    if user.switch {
        if let Some(path) = first_untraversable(&chosen.dir, user)? {
            return Err(LocalPgError::NotTraversable {
                user: user.name.clone(),
                path,
            });
        }
    }

    for p in [&chosen.dir, &chosen.socket_dir] {
        utf8_path(p)?;
    }
    let socket = chosen.socket_file();
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(LocalPgError::SocketPathTooLong { path: socket, len });
    }
    Ok(chosen)
}

/// Creates `dir` with mode 0755 if missing. The mode is set explicitly, because a umask such
/// as 077 would otherwise shut out the server user.
fn ensure_dir(dir: &Path) -> Result<(), LocalPgError> {
    if dir.exists() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(io_err("setting the mode of", dir))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Primary,
    Fallback,
}

/// Root only. An existing cluster stays where it is, so that data is never silently swapped
/// for an empty cluster. If the primary one exists but cannot be reached, that is an error
/// naming the blocking directory. A new cluster goes to the primary place when reachable.
fn choose_location(
    primary_initialised: bool,
    primary_blocker: Option<PathBuf>,
    fallback_initialised: bool,
) -> Result<Location, PathBuf> {
    match (primary_initialised, primary_blocker) {
        (true, None) => Ok(Location::Primary),
        (true, Some(blocker)) => Err(blocker),
        (false, _) if fallback_initialised => Ok(Location::Fallback),
        (false, None) => Ok(Location::Primary),
        (false, Some(_)) => Ok(Location::Fallback),
    }
}

/// `/var/lib/picket/pg-<first 16 hex digits of SHA-256 of the primary cluster path>`: one per
/// checkout, and stable across runs and builds.
fn fallback_dir(primary_dir: &Path) -> PathBuf {
    let digest = Sha256::digest(primary_dir.as_os_str().as_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Path::new(FALLBACK_BASE).join(format!("pg-{hash}"))
}

/// The outermost directory from `/` down to `path` (inclusive) that `user` may not search.
/// Only mode bits are checked. ACLs are not.
fn first_untraversable(path: &Path, user: &ServerUser) -> Result<Option<PathBuf>, LocalPgError> {
    let chain: Vec<&Path> = path.ancestors().collect();
    for dir in chain.into_iter().rev() {
        let meta = fs::metadata(dir).map_err(io_err("inspecting", dir))?;
        if !may_search(meta.mode(), meta.uid(), meta.gid(), user.uid, user.gid) {
            return Ok(Some(dir.to_path_buf()));
        }
    }
    Ok(None)
}

/// POSIX permission check for the search (x) bit, for a non-root process whose only group is
/// `gid` (std drops supplementary groups when root switches uid). The owner class is decided
/// first: an owner without u+x is refused even when g+x or o+x is set.
fn may_search(mode: u32, owner: u32, group: u32, uid: u32, gid: u32) -> bool {
    let bit = if owner == uid {
        0o100
    } else if group == gid {
        0o010
    } else {
        0o001
    };
    mode & bit != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_permission_follows_the_owner_group_other_classes() {
        let (pg_uid, pg_gid) = (101, 104);
        // root-owned 0755 and 0711: others may search.
        assert!(may_search(0o40755, 0, 0, pg_uid, pg_gid));
        assert!(may_search(0o40711, 0, 0, pg_uid, pg_gid));
        // /root with 0700: nobody but root.
        assert!(!may_search(0o40700, 0, 0, pg_uid, pg_gid));
        // Group class applies when the group matches.
        assert!(may_search(0o40710, 0, pg_gid, pg_uid, pg_gid));
        assert!(!may_search(0o40701, 0, pg_gid, pg_uid, pg_gid));
        // The owner class is decided first, even if others may search.
        assert!(!may_search(0o40011, pg_uid, 0, pg_uid, pg_gid));
        assert!(may_search(0o40700, pg_uid, 0, pg_uid, pg_gid));
    }

    #[test]
    fn existing_clusters_stay_put_new_ones_fall_back_only_when_blocked() {
        let blocker = || Some(PathBuf::from("/root"));
        assert_eq!(choose_location(false, None, false), Ok(Location::Primary));
        assert_eq!(
            choose_location(false, blocker(), false),
            Ok(Location::Fallback)
        );
        assert_eq!(choose_location(true, None, true), Ok(Location::Primary));
        assert_eq!(
            choose_location(true, blocker(), false),
            Err(PathBuf::from("/root"))
        );
        // Made reachable after the fallback was created: keep using the fallback's data.
        assert_eq!(choose_location(false, None, true), Ok(Location::Fallback));
    }

    #[test]
    fn fallback_dir_is_stable_and_per_checkout() {
        let a = fallback_dir(Path::new("/root/repo/.picket/pg"));
        assert_eq!(a, fallback_dir(Path::new("/root/repo/.picket/pg")));
        assert_ne!(a, fallback_dir(Path::new("/root/other/.picket/pg")));
        // Pinned, so a refactor cannot silently move existing clusters. Checked with
        // `printf /root/repo/.picket/pg | sha256sum | cut -c1-16`.
        assert_eq!(a, PathBuf::from("/var/lib/picket/pg-8f26a7ced6bc9391"));
    }

    #[test]
    fn cluster_layout_and_socket_name() {
        let p = ClusterPaths::under(PathBuf::from("/w/.picket/pg"));
        assert_eq!(p.data, PathBuf::from("/w/.picket/pg/data"));
        assert_eq!(p.socket_dir, PathBuf::from("/w/.picket/pg/run"));
        assert_eq!(p.log, PathBuf::from("/w/.picket/pg/postgres.log"));
        assert_eq!(
            p.socket_file(),
            PathBuf::from("/w/.picket/pg/run/.s.PGSQL.5432")
        );
    }
}
