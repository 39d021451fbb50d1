//! A private PostgreSQL cluster for `picket run` when no `DATABASE_URL` is given.
//!
//! [`LocalPg::start`] works in this order:
//! 1. Binaries: the directory `initdb` resolves to on `PATH` (the operator's choice), then
//!    `/usr/lib/postgresql/<major>/bin`, highest major first. An existing cluster needs the
//!    major version that created it.
//! 2. Server user: PostgreSQL refuses to run as root. If we are root, `initdb` and `pg_ctl`
//!    run as the `postgres` system user (`CommandExt::uid`/`gid`). Otherwise they run as us.
//! 3. Location: `<root>/pg/` holds `data/`, `run/` (the socket directory) and
//!    `postgres.log`. As root, if `postgres` cannot traverse `<root>` (a checkout under
//!    `/root`, mode 700), the cluster goes to `/var/lib/picket/pg-<hash of <root>/pg>`
//!    and a warning names both paths. This is `/var/lib` rather than `/var/tmp` because
//!    systemd-tmpfiles deletes files in `/var/tmp` that are older than 30 days, and that would
//!    corrupt a cluster that sits unused for a month.
//! 4. `initdb`, only when `data/PG_VERSION` is missing. It writes into `data.initdb/`, which is
//!    renamed to `data/` only on success. So an interrupted `initdb` never leaves a
//!    half-built cluster that looks initialised.
//! 5. `data/picket.conf`, included from `postgresql.conf`, is rewritten on every start:
//!    no TCP listener, socket `run/.s.PGSQL.5432`.
//! 6. `pg_ctl start -w`. A stale `postmaster.pid` left by a crash is detected and replaced
//!    by the server itself. A server still running from an earlier run that never stopped
//!    it (for example after `kill -9`) is adopted as it is.
//! 7. One connection over the socket proves that the server is ready and that the URL works.
//!
//! [`LocalPg::stop`] runs `pg_ctl stop -m fast`. Dropping a [`LocalPg`] does not stop the
//! server; the next start adopts it.
//!
//! Security: local connections use `trust` authentication, so whoever can open the socket is
//! a superuser. The socket directory has mode 0700, so only the server user and root can
//! open it. TCP is off (`listen_addresses = ''`).

mod binaries;
mod cluster;
mod location;

use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::time::Duration;

use sqlx::Connection;
use tokio::process::Command;

use binaries::{choose_bin, discover_bins};
use cluster::{database_url, Cluster};
use location::{locate, ServerUser};

/// Port number in the socket name `.s.PGSQL.<port>`. There is no TCP listener and the socket
/// sits in our own directory, so this cannot clash with a system server on 5432.
const PORT: u16 = 5432;

/// Superuser role that `initdb -U` creates. Every URL connects as this role.
const SUPERUSER: &str = "postgres";
/// System account that runs the server when we are root.
const SERVER_USER: &str = "postgres";
/// Debian/Ubuntu layout: one `<major>/bin` per installed server version.
const VERSIONED_BIN_ROOT: &str = "/usr/lib/postgresql";
/// Cluster location for root when `postgres` cannot reach the state directory.
const FALLBACK_BASE: &str = "/var/lib/picket";
/// Oldest supported major. From 10 on, a major version is a single number, so
/// `PG_VERSION` and `pg_ctl --version` can be compared directly.
const MIN_MAJOR: u32 = 10;
/// `initdb --no-instructions` exists from PostgreSQL 14 on.
const NO_INSTRUCTIONS_SINCE: u32 = 14;
/// `pg_ctl start -t`, in seconds. Longer than pg_ctl's default of 60 because crash recovery
/// after a long session may replay a lot of WAL.
const START_TIMEOUT_SECS: u32 = 120;
/// `pg_ctl stop -t`, in seconds.
const STOP_TIMEOUT_SECS: u32 = 60;
/// How long an adopted or freshly started server has to accept a connection.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const READY_POLL: Duration = Duration::from_millis(100);
/// Number of lines of tool output or server log to quote in an error.
const TAIL_LINES: usize = 30;
/// Longest unix socket path, in bytes (`sizeof(sun_path)` is 108 on Linux, including the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// Our settings file in the data directory, and the line that pulls it into `postgresql.conf`.
/// `include` (not `include_if_exists`) fails closed: a missing `picket.conf` stops the server
/// from starting, instead of letting it start with the defaults (TCP on localhost:5432).
const CONF_FILE: &str = "picket.conf";
const INCLUDE_LINE: &str = "include = 'picket.conf'";

/// Where the cluster lives.
#[derive(Debug, Clone)]
pub struct LocalPgConfig {
    /// Picket's state directory (`.picket` by default). The cluster goes in `<root>/pg/`, or, see
    /// the module docs, in `/var/lib/picket/pg-<hash>/`.
    pub root: PathBuf,
}

/// How [`LocalPg::start`] got the server running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// `initdb` created a new cluster, which was then started.
    Initialised,
    /// An existing cluster was started.
    Started,
    /// A server left running by an earlier run was already up. It was reused as it was.
    Adopted,
}

/// A running private cluster. Call [`LocalPg::stop`] to stop it; `Drop` does not.
#[derive(Debug)]
pub struct LocalPg {
    cluster: Cluster,
    startup: Startup,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalPgError {
    #[error(
        "no PostgreSQL server binaries found: need `initdb`, `pg_ctl` and `postgres` \
         ({MIN_MAJOR} or later) next to the `initdb` on PATH or in \
         {VERSIONED_BIN_ROOT}/<version>/bin; install the PostgreSQL server \
         (e.g. `apt-get install postgresql`) or set DATABASE_URL to use an existing server"
    )]
    BinariesNotFound,
    #[error(
        "the cluster in {data_dir} was created by PostgreSQL {cluster_major}, but the \
         installed server binaries are version {available}; install PostgreSQL \
         {cluster_major}, upgrade the cluster with pg_upgrade, or set DATABASE_URL"
    )]
    VersionMismatch {
        data_dir: PathBuf,
        cluster_major: u32,
        available: String,
    },
    #[error("{path} holds {found:?}, not a PostgreSQL major version {MIN_MAJOR} or later")]
    UnsupportedCluster { path: PathBuf, found: String },
    #[error(
        "PostgreSQL refuses to run as root, and there is no `{SERVER_USER}` system user to run \
         it as; create one (e.g. `useradd --system --user-group --home-dir /var/lib/postgresql \
         --shell /usr/sbin/nologin {SERVER_USER}`) or set DATABASE_URL to use an existing server"
    )]
    NoServerUser,
    #[error("looking up the `{SERVER_USER}` user")]
    UserLookup(#[source] nix::Error),
    #[error(
        "PostgreSQL runs as `{user}` because picket runs as root, but `{user}` cannot enter \
         {path}; allow it (e.g. `chmod o+x {path}`), use another state directory, or set \
         DATABASE_URL"
    )]
    NotTraversable { user: String, path: PathBuf },
    #[error(
        "{path} is not valid UTF-8 or contains control characters, so it cannot go into the \
         PostgreSQL configuration or the database URL; use a plainer state directory path"
    )]
    UnsupportedPath { path: PathBuf },
    #[error(
        "the socket path {path} is {len} bytes, over the {MAX_SOCKET_PATH}-byte limit for \
         unix sockets; use a shorter state directory path or set DATABASE_URL"
    )]
    SocketPathTooLong { path: PathBuf, len: usize },
    #[error(
        "{data_dir} belongs to uid {owner}, but PostgreSQL would run as `{user}` (uid {uid}); \
         run picket as the owner, chown the directory, or set DATABASE_URL"
    )]
    WrongOwner {
        data_dir: PathBuf,
        owner: u32,
        user: String,
        uid: u32,
    },
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not run {program}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("initdb failed ({status}) for {data_dir}; its output ends with:\n{output}")]
    Initdb {
        data_dir: PathBuf,
        status: ExitStatus,
        output: String,
    },
    #[error(
        "PostgreSQL in {data_dir} did not start ({status}): {ctl_output}\n\
         last lines of {log}:\n{log_tail}"
    )]
    Start {
        data_dir: PathBuf,
        status: ExitStatus,
        ctl_output: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error("`pg_ctl {action}` failed ({status}) for {data_dir}: {output}")]
    Ctl {
        action: &'static str,
        data_dir: PathBuf,
        status: ExitStatus,
        output: String,
    },
    #[error(
        "PostgreSQL in {data_dir} is running but did not accept a connection on {socket} \
         within {} s", READY_TIMEOUT.as_secs()
    )]
    NotReady {
        data_dir: PathBuf,
        socket: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("connecting to the local cluster on {socket}")]
    Connect {
        socket: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("creating database {name:?} in the local cluster")]
    CreateDatabase {
        name: String,
        #[source]
        source: sqlx::Error,
    },
}

impl LocalPg {
    /// Finds the binaries, initialises the cluster if needed, starts it (or adopts a server
    /// that is already running) and waits until it accepts connections.
    pub async fn start(cfg: &LocalPgConfig) -> Result<Self, LocalPgError> {
        // Binaries first: a machine without PostgreSQL usually has no `postgres` user either,
        // and "install PostgreSQL" is the more useful message.
        let candidates = discover_bins().await;
        if candidates.is_empty() {
            return Err(LocalPgError::BinariesNotFound);
        }
        let user = ServerUser::detect()?;
        let paths = locate(&cfg.root, &user)?;
        paths.check_owner(&user)?;
        let cluster_major = paths.cluster_major()?;
        let bin = choose_bin(&candidates, cluster_major)
            .cloned()
            .ok_or_else(|| LocalPgError::VersionMismatch {
                data_dir: paths.data.clone(),
                cluster_major: cluster_major.unwrap_or_default(),
                available: candidates
                    .iter()
                    .map(|b| b.major.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let cluster = Cluster { bin, user, paths };
        let startup = cluster.bring_up(cluster_major.is_none()).await?;
        cluster.wait_ready().await?;
        tracing::info!(
            data_dir = %cluster.paths.data.display(),
            socket_dir = %cluster.paths.socket_dir.display(),
            version = cluster.bin.major,
            ?startup,
            "local PostgreSQL is ready"
        );
        Ok(Self { cluster, startup })
    }

    /// Whether this start ran `initdb`, started an existing cluster or adopted a running one.
    pub fn startup(&self) -> Startup {
        self.startup
    }

    /// The cluster's data directory (`<root>/pg/data`, or under the fallback location).
    pub fn data_dir(&self) -> &Path {
        &self.cluster.paths.data
    }

    /// The directory holding the server's socket, `.s.PGSQL.5432`.
    pub fn socket_dir(&self) -> &Path {
        &self.cluster.paths.socket_dir
    }

    /// The server log of this start. The one before is kept as `postgres.previous.log`.
    pub fn log_file(&self) -> &Path {
        &self.cluster.paths.log
    }

    /// A URL for database `db` over the unix socket, accepted by sqlx and libpq:
    /// `postgres://postgres@localhost:5432/<db>?host=<socket dir>&sslmode=disable`.
    /// `sslmode=disable` is set because TLS over a local socket gains nothing, and sqlx would
    /// otherwise obey a `PGSSLMODE=require` left in the environment.
    pub fn database_url(&self, db: &str) -> String {
        database_url(&self.cluster.paths.socket_dir, db)
    }

    /// Creates database `name` unless it exists.
    pub async fn ensure_database(&self, name: &str) -> Result<(), LocalPgError> {
        let mut conn = self.cluster.connect("postgres").await?;
        let create_err = |source| LocalPgError::CreateDatabase {
            name: name.to_owned(),
            source,
        };
        // Catalog queries at runtime rather than `query!`: this runs before any migration and
        // has nothing to check against our schema.
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&mut conn)
                .await
                .map_err(create_err)?;
        if !exists {
            // CREATE DATABASE takes no bind parameters, hence the quoted identifier. It also
            // refuses to run in a transaction block, and `raw_sql` uses the simple protocol.
            let sql = format!("CREATE DATABASE {}", quote_ident(name));
            match sqlx::raw_sql(&sql).execute(&mut conn).await {
                Ok(_) => tracing::info!(database = name, "created database in local PostgreSQL"),
                // 42P04 duplicate_database: another process created it between our check and
                // our CREATE.
                Err(e) if has_sqlstate(&e, "42P04") => {}
                Err(e) => return Err(create_err(e)),
            }
        }
        // The work is done; a failed goodbye on a local socket is not worth reporting.
        let _ = conn.close().await;
        Ok(())
    }

    /// Stops the server with `pg_ctl stop -m fast` (disconnects clients, then writes a
    /// checkpoint). If that fails while the server is still up, it uses `-m immediate`, which
    /// skips the checkpoint and leaves WAL for the next start to replay, and is safe.
    pub async fn stop(self) -> Result<(), LocalPgError> {
        let c = &self.cluster;
        let fast = c.pg_ctl_stop("fast").await?;
        if fast.status.success() {
            tracing::info!(data_dir = %c.paths.data.display(), "local PostgreSQL stopped");
            return Ok(());
        }
        if !c.is_running().await? {
            tracing::warn!(
                data_dir = %c.paths.data.display(),
                "local PostgreSQL was already stopped"
            );
            return Ok(());
        }
        tracing::warn!(
            data_dir = %c.paths.data.display(),
            output = %output_tail(&fast),
            "fast shutdown failed; trying immediate shutdown"
        );
        let immediate = c.pg_ctl_stop("immediate").await?;
        if immediate.status.success() {
            return Ok(());
        }
        Err(LocalPgError::Ctl {
            action: "stop",
            data_dir: c.paths.data.clone(),
            status: immediate.status,
            output: output_tail(&immediate),
        })
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn has_sqlstate(e: &sqlx::Error, code: &str) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == code)
}

fn utf8_path(path: &Path) -> Result<&str, LocalPgError> {
    path.to_str()
        .filter(|s| !s.chars().any(char::is_control))
        .ok_or_else(|| LocalPgError::UnsupportedPath {
            path: path.to_path_buf(),
        })
}

async fn output(cmd: &mut Command) -> Result<Output, LocalPgError> {
    cmd.output().await.map_err(|source| LocalPgError::Spawn {
        program: PathBuf::from(cmd.as_std().get_program()),
        source,
    })
}

/// Stdout then stderr of a finished tool, cut to the last [`TAIL_LINES`] lines.
fn output_tail(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    tail_lines(&text, TAIL_LINES)
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LocalPgError {
    let path = path.to_path_buf();
    move |source| LocalPgError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::PgConnection;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::Instant;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n\n", 2), "b\nc");
        assert_eq!(tail_lines("a\nb", 5), "a\nb");
        assert_eq!(tail_lines("", 3), "");
    }

    #[test]
    fn identifiers_and_paths_are_guarded() {
        assert_eq!(quote_ident("picket"), "\"picket\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert!(utf8_path(Path::new("/srv/ok dir")).is_ok());
        assert!(matches!(
            utf8_path(Path::new("/srv/bad\ndir")),
            Err(LocalPgError::UnsupportedPath { .. })
        ));
    }

    /// A scratch state directory under /var/tmp, which the `postgres` user can traverse when
    /// the tests run as root. On drop, even after a failed assertion, it stops any server
    /// left in it and deletes it.
    struct Scratch {
        root: PathBuf,
    }

    impl Scratch {
        fn new() -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .subsec_nanos();
            let root = PathBuf::from(format!(
                "/var/tmp/picket-local-pg-test-{}-{nanos}",
                std::process::id()
            ));
            fs::create_dir(&root).expect("create scratch dir");
            fs::set_permissions(&root, fs::Permissions::from_mode(0o755))
                .expect("chmod scratch dir");
            Self { root }
        }

        fn postmaster_pid(&self) -> Option<nix::unistd::Pid> {
            let text = fs::read_to_string(self.root.join("pg/data/postmaster.pid")).ok()?;
            text.lines()
                .next()?
                .trim()
                .parse()
                .ok()
                .map(nix::unistd::Pid::from_raw)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            if let Some(pid) = self.postmaster_pid() {
                // SIGQUIT is PostgreSQL's immediate shutdown, which also releases its
                // shared memory, unlike SIGKILL.
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT);
                wait_until_gone(pid);
            }
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    /// Waits, for up to 10 s, until no process is left in the group led by `pid`. pg_ctl
    /// starts the postmaster with setsid, so the group is the whole server.
    fn wait_until_gone(pid: nix::unistd::Pid) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while nix::sys::signal::killpg(pid, None).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    async fn select_one(url: &str) -> (i32, String) {
        let mut conn = PgConnection::connect(url)
            .await
            .expect("connect over the socket");
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut conn)
            .await
            .expect("SELECT 1");
        let listen: String = sqlx::query_scalar("SHOW listen_addresses")
            .fetch_one(&mut conn)
            .await
            .expect("SHOW listen_addresses");
        conn.close().await.expect("close");
        (one, listen)
    }

    /// Real cluster, unix socket only: init, create a database, query, stop, restart without
    /// initdb, adopt a server left running, recover from a crash (stale postmaster.pid), stop.
    #[tokio::test]
    async fn real_cluster_lifecycle() {
        let scratch = Scratch::new();
        let cfg = LocalPgConfig {
            root: scratch.root.clone(),
        };

        let t = Instant::now();
        // PostgreSQL's server binaries are part of this project's test requirements (README).
        let pg = LocalPg::start(&cfg).await.expect("first start");
        eprintln!("first start (initdb + start): {:?}", t.elapsed());
        assert_eq!(pg.startup(), Startup::Initialised);
        assert!(pg.data_dir().starts_with(&scratch.root));
        assert!(!scratch.root.join("pg/data.initdb").exists());
        let socket_mode = fs::metadata(pg.socket_dir()).expect("socket dir").mode() & 0o777;
        assert_eq!(socket_mode, 0o700);

        pg.ensure_database("picket_test")
            .await
            .expect("create database");
        pg.ensure_database("picket_test")
            .await
            .expect("existing database is fine");
        let url = pg.database_url("picket_test");
        assert_eq!(select_one(&url).await, (1, String::new()));
        let t = Instant::now();
        pg.stop().await.expect("stop");
        eprintln!("stop: {:?}", t.elapsed());
        assert!(
            scratch.postmaster_pid().is_none(),
            "clean stop removes postmaster.pid"
        );

        let t = Instant::now();
        let pg = LocalPg::start(&cfg).await.expect("restart");
        eprintln!("restart (no initdb): {:?}", t.elapsed());
        assert_eq!(
            pg.startup(),
            Startup::Started,
            "the second start must not run initdb"
        );
        assert_eq!(select_one(&url).await.0, 1, "database survives a restart");

        // Dropped without stop(), as after a crash of picket itself: the server keeps running
        // and the next start reuses it.
        drop(pg);
        let pg = LocalPg::start(&cfg)
            .await
            .expect("start with a server still running");
        assert_eq!(pg.startup(), Startup::Adopted);
        drop(pg);

        // Crash of the server: kill -9 the whole process group, leaving postmaster.pid behind.
        let pid = scratch.postmaster_pid().expect("server is running");
        nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL).expect("kill server");
        wait_until_gone(pid);
        assert!(
            scratch.postmaster_pid().is_some(),
            "stale postmaster.pid left behind"
        );
        let t = Instant::now();
        let pg = LocalPg::start(&cfg)
            .await
            .expect("start over a stale postmaster.pid");
        eprintln!("start after crash (recovery): {:?}", t.elapsed());
        assert_eq!(pg.startup(), Startup::Started);
        assert_eq!(select_one(&url).await.0, 1, "database survives a crash");
        pg.stop().await.expect("final stop");
    }
}
