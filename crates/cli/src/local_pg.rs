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

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{getegid, geteuid, User};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::process::Command;

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

/// Chosen binaries, server user and paths: everything needed to drive `initdb` and `pg_ctl`.
#[derive(Debug)]
struct Cluster {
    bin: PgBin,
    user: ServerUser,
    paths: ClusterPaths,
}

impl Cluster {
    async fn bring_up(&self, needs_initdb: bool) -> Result<Startup, LocalPgError> {
        let startup = if needs_initdb {
            self.initdb().await?;
            Startup::Initialised
        } else {
            Startup::Started
        };
        self.configure()?;
        if startup == Startup::Started && self.is_running().await? {
            tracing::warn!(
                data_dir = %self.paths.data.display(),
                "a PostgreSQL server from an earlier run is still running; reusing it"
            );
            return Ok(Startup::Adopted);
        }
        self.fresh_log()?;
        self.pg_ctl_start().await?;
        Ok(startup)
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin.dir.join(tool));
        // The cluster directory is a cwd the server user can always enter. Our own cwd may
        // be under /root.
        cmd.current_dir(&self.paths.dir).stdin(Stdio::null());
        if self.user.switch {
            // std calls setgroups(0) before setuid when root drops privileges, so no
            // supplementary group of ours leaks to the server.
            cmd.uid(self.user.uid).gid(self.user.gid);
        }
        cmd
    }

    async fn initdb(&self) -> Result<(), LocalPgError> {
        let staging = self.paths.dir.join("data.initdb");
        if staging.exists() {
            // Left by an interrupted initdb; it never became `data/`, so nothing is lost.
            fs::remove_dir_all(&staging).map_err(io_err("removing", &staging))?;
        }
        // The server user cannot create entries in a root-owned cluster directory, so we
        // create the directory and hand it over. initdb accepts an empty one.
        DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .map_err(io_err("creating", &staging))?;
        self.user.chown(&staging)?;

        let mut cmd = self.command("initdb");
        cmd.arg("--pgdata")
            .arg(&staging)
            .arg(format!("--username={SUPERUSER}"))
            .arg("--encoding=UTF8")
            // C collation: byte order, the same on every machine, and no dependency on
            // installed locales or glibc collation changes (which silently break indexes).
            .arg("--no-locale")
            .arg("--auth-local=trust")
            // No TCP listener exists; if one is ever configured by hand, it must not be trust.
            .arg("--auth-host=reject");
        if self.bin.major >= NO_INSTRUCTIONS_SINCE {
            cmd.arg("--no-instructions");
        }
        tracing::info!(
            data_dir = %self.paths.data.display(),
            "initialising local PostgreSQL cluster"
        );
        let out = output(&mut cmd).await?;
        if !out.status.success() {
            return Err(LocalPgError::Initdb {
                data_dir: staging,
                status: out.status,
                output: output_tail(&out),
            });
        }
        fs::rename(&staging, &self.paths.data).map_err(io_err("renaming to data/", &staging))
    }

    /// Writes `picket.conf` and makes sure that `postgresql.conf` includes it. This runs on
    /// every start, so the settings follow the current code and location, and a cluster whose
    /// include line went missing is repaired.
    fn configure(&self) -> Result<(), LocalPgError> {
        let socket_dir = &self.paths.socket_dir;
        if !socket_dir.exists() {
            DirBuilder::new()
                .mode(0o700)
                .create(socket_dir)
                .map_err(io_err("creating", socket_dir))?;
        }
        // Trust auth makes this directory's mode the only access control: keep it 0700.
        fs::set_permissions(socket_dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err("setting the mode of", socket_dir))?;
        self.user.chown(socket_dir)?;

        let conf = self.paths.data.join(CONF_FILE);
        let socket_str = utf8_path(socket_dir)?;
        fs::write(&conf, picket_conf(socket_str)).map_err(io_err("writing", &conf))?;
        self.user.chown(&conf)?;

        let main_conf = self.paths.data.join("postgresql.conf");
        let text = fs::read_to_string(&main_conf).map_err(io_err("reading", &main_conf))?;
        if !text.lines().any(|l| l.trim() == INCLUDE_LINE) {
            let mut f = OpenOptions::new()
                .append(true)
                .open(&main_conf)
                .map_err(io_err("opening", &main_conf))?;
            io::Write::write_all(
                &mut f,
                format!("\n# Settings managed by picket; last, so they win.\n{INCLUDE_LINE}\n")
                    .as_bytes(),
            )
            .map_err(io_err("appending to", &main_conf))?;
        }
        Ok(())
    }

    /// Keeps the previous log as `postgres.previous.log`, so that an error quotes only this
    /// start and the log cannot grow without bound. The file is created by us and handed to
    /// the server user, because pg_ctl opens it as that user, in a directory it cannot
    /// write to when we are root.
    fn fresh_log(&self) -> Result<(), LocalPgError> {
        let log = &self.paths.log;
        if log.exists() {
            let previous = self.paths.dir.join("postgres.previous.log");
            fs::rename(log, &previous).map_err(io_err("rotating", log))?;
        }
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(log)
            .map_err(io_err("creating", log))?;
        self.user.chown(log)
    }

    async fn pg_ctl_start(&self) -> Result<(), LocalPgError> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("start")
            .arg("--pgdata")
            .arg(&self.paths.data)
            .arg("--log")
            .arg(&self.paths.log)
            .arg("--wait")
            .arg(format!("--timeout={START_TIMEOUT_SECS}"));
        let out = output(&mut cmd).await?;
        if out.status.success() {
            return Ok(());
        }
        let log_tail = match fs::read(&self.paths.log) {
            Ok(bytes) => tail_lines(&String::from_utf8_lossy(&bytes), TAIL_LINES),
            Err(e) => format!("(could not read it: {e})"),
        };
        Err(LocalPgError::Start {
            data_dir: self.paths.data.clone(),
            status: out.status,
            ctl_output: output_tail(&out),
            log: self.paths.log.clone(),
            log_tail,
        })
    }

    async fn pg_ctl_stop(&self, mode: &str) -> Result<Output, LocalPgError> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("stop")
            .arg("--pgdata")
            .arg(&self.paths.data)
            .arg(format!("--mode={mode}"))
            .arg("--wait")
            .arg(format!("--timeout={STOP_TIMEOUT_SECS}"));
        output(&mut cmd).await
    }

    /// `pg_ctl status`: exit 0 when a live postmaster owns `postmaster.pid`, 3 when there is
    /// none or the pid file is stale.
    async fn is_running(&self) -> Result<bool, LocalPgError> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("status").arg("--pgdata").arg(&self.paths.data);
        let out = output(&mut cmd).await?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => Err(LocalPgError::Ctl {
                action: "status",
                data_dir: self.paths.data.clone(),
                status: out.status,
                output: output_tail(&out),
            }),
        }
    }

    /// `pg_ctl start -w` already waited for the server. An adopted one may still be in crash
    /// recovery. Either way, one successful connection through the URL we hand out is proof.
    async fn wait_ready(&self) -> Result<(), LocalPgError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.connect("postgres").await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Err(_) if Instant::now() < deadline => tokio::time::sleep(READY_POLL).await,
                Err(LocalPgError::Connect { socket, source }) => {
                    return Err(LocalPgError::NotReady {
                        data_dir: self.paths.data.clone(),
                        socket,
                        source,
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn connect(&self, db: &str) -> Result<PgConnection, LocalPgError> {
        let connect_err = |source| LocalPgError::Connect {
            socket: self.paths.socket_file(),
            source,
        };
        let opts: PgConnectOptions = database_url(&self.paths.socket_dir, db)
            .parse()
            .map_err(connect_err)?;
        PgConnection::connect_with(&opts).await.map_err(connect_err)
    }
}

/// The server's identity: ourselves, or the `postgres` user when we are root.
#[derive(Debug, Clone)]
struct ServerUser {
    name: String,
    uid: u32,
    gid: u32,
    /// True when we are root and must drop to `uid`/`gid` for every PostgreSQL tool.
    switch: bool,
}

impl ServerUser {
    fn detect() -> Result<Self, LocalPgError> {
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

    fn chown(&self, path: &Path) -> Result<(), LocalPgError> {
        if !self.switch {
            return Ok(());
        }
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .map_err(io_err("changing the owner of", path))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ClusterPaths {
    /// Holds the three below. Owned by us; the server user only needs to traverse it.
    dir: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
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

    fn socket_file(&self) -> PathBuf {
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
    fn check_owner(&self, user: &ServerUser) -> Result<(), LocalPgError> {
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
    fn cluster_major(&self) -> Result<Option<u32>, LocalPgError> {
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
fn locate(root: &Path, user: &ServerUser) -> Result<ClusterPaths, LocalPgError> {
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

/// A directory holding a complete set of server tools, with its major version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PgBin {
    dir: PathBuf,
    major: u32,
}

/// Every usable bin directory, in order of preference (see [`order_candidates`]).
async fn discover_bins() -> Vec<PgBin> {
    let mut versioned = Vec::new();
    if let Ok(entries) = fs::read_dir(VERSIONED_BIN_ROOT) {
        for entry in entries.flatten() {
            let dir = entry.path().join("bin");
            if has_server_tools(&dir) {
                if let Some(bin) = probe(dir).await {
                    versioned.push(bin);
                }
            }
        }
    }
    let from_path = match initdb_dir_on_path() {
        Some(dir) => probe(dir).await,
        None => None,
    };
    order_candidates(from_path, versioned)
}

/// The directory of the first `initdb` on `PATH`, with symlinks resolved. A
/// `/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb` link then yields the
/// directory that also holds the matching `pg_ctl` and `postgres`.
fn initdb_dir_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("initdb"))
        .find(|initdb| is_executable(initdb))
        .and_then(|initdb| fs::canonicalize(initdb).ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .filter(|dir| has_server_tools(dir))
}

fn has_server_tools(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|tool| is_executable(&dir.join(tool)))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

/// Asks `pg_ctl --version` (allowed as root) for the major version. If the directory is
/// unusable, it is skipped with a debug log, and another one may do.
async fn probe(dir: PathBuf) -> Option<PgBin> {
    let pg_ctl = dir.join("pg_ctl");
    let out = match Command::new(&pg_ctl)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            tracing::debug!(
                path = %pg_ctl.display(),
                status = %out.status,
                "pg_ctl --version failed"
            );
            return None;
        }
        Err(e) => {
            tracing::debug!(path = %pg_ctl.display(), error = %e, "could not run pg_ctl");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    match parse_version_output(&text) {
        Some(major) if major >= MIN_MAJOR => Some(PgBin { dir, major }),
        _ => {
            tracing::debug!(
                path = %pg_ctl.display(),
                version = %text.trim(),
                "unsupported PostgreSQL version"
            );
            None
        }
    }
}

/// The `PATH` choice first, then the versioned directories from highest to lowest major.
/// Duplicates are dropped (a `PATH` link usually points into one of them).
fn order_candidates(from_path: Option<PgBin>, mut versioned: Vec<PgBin>) -> Vec<PgBin> {
    versioned.sort_by(|a, b| b.major.cmp(&a.major).then_with(|| a.dir.cmp(&b.dir)));
    let mut out: Vec<PgBin> = from_path.into_iter().collect();
    for bin in versioned {
        if !out.iter().any(|b| b.dir == bin.dir) {
            out.push(bin);
        }
    }
    out
}

/// An existing cluster can only be run by its own major version. A new one takes the
/// first candidate.
fn choose_bin(candidates: &[PgBin], cluster_major: Option<u32>) -> Option<&PgBin> {
    match cluster_major {
        Some(major) => candidates.iter().find(|b| b.major == major),
        None => candidates.first(),
    }
}

/// `pg_ctl (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)` -> 15; `... 17devel` -> 17.
fn parse_version_output(text: &str) -> Option<u32> {
    let rest = text.split_once("(PostgreSQL) ")?.1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `PG_VERSION` holds the major version, e.g. `15\n`. Pre-10 clusters (`9.6`) do not parse.
fn parse_cluster_major(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|major| *major >= MIN_MAJOR)
}

fn database_url(socket_dir: &Path, db: &str) -> String {
    // Socket paths are checked to be UTF-8 in `locate`, and lossy conversion cannot happen
    // here for them.
    let host = socket_dir.to_string_lossy();
    format!(
        "postgres://{SUPERUSER}@localhost:{PORT}/{}?host={}&sslmode=disable",
        percent_encode(db, false),
        percent_encode(&host, true)
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/` when
/// `keep_slash`). `+` is encoded too, because URL query parsers read it as a space.
fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The settings we own. `unix_socket_directories` is a list: the element is double-quoted
/// so that commas in the path survive, then the whole value is a single-quoted conf literal.
fn picket_conf(socket_dir: &str) -> String {
    let element = format!("\"{}\"", socket_dir.replace('"', "\"\""));
    let literal = format!("'{}'", element.replace('\\', "\\\\").replace('\'', "''"));
    format!(
        "# Written by picket on every start; edits are overwritten.\n\
         # Unix socket only: no TCP listener at all.\n\
         listen_addresses = ''\n\
         port = {PORT}\n\
         unix_socket_directories = {literal}\n\
         unix_socket_permissions = 0700\n"
    )
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

    fn bin(dir: &str, major: u32) -> PgBin {
        PgBin {
            dir: PathBuf::from(dir),
            major,
        }
    }

    #[test]
    fn parses_pg_ctl_version_output() {
        let debian = "pg_ctl (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n";
        assert_eq!(parse_version_output(debian), Some(15));
        assert_eq!(
            parse_version_output("pg_ctl (PostgreSQL) 17devel\n"),
            Some(17)
        );
        assert_eq!(
            parse_version_output("pg_ctl (PostgreSQL) 16beta2"),
            Some(16)
        );
        assert_eq!(parse_version_output("pg_ctl (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(parse_version_output("pg_ctl 15.2"), None);
        assert_eq!(parse_version_output(""), None);
    }

    #[test]
    fn parses_pg_version_file() {
        assert_eq!(parse_cluster_major("15\n"), Some(15));
        assert_eq!(parse_cluster_major("10"), Some(10));
        assert_eq!(parse_cluster_major("9.6\n"), None);
        assert_eq!(parse_cluster_major("9\n"), None);
        assert_eq!(parse_cluster_major(""), None);
    }

    #[test]
    fn path_choice_first_then_highest_major_without_duplicates() {
        let versioned = vec![
            bin("/usr/lib/postgresql/14/bin", 14),
            bin("/usr/lib/postgresql/16/bin", 16),
            bin("/usr/lib/postgresql/15/bin", 15),
        ];
        let ordered = order_candidates(
            Some(bin("/usr/lib/postgresql/15/bin", 15)),
            versioned.clone(),
        );
        let majors: Vec<u32> = ordered.iter().map(|b| b.major).collect();
        assert_eq!(majors, [15, 16, 14]);

        let ordered = order_candidates(None, versioned);
        let majors: Vec<u32> = ordered.iter().map(|b| b.major).collect();
        assert_eq!(majors, [16, 15, 14]);

        let ordered = order_candidates(Some(bin("/opt/pg/bin", 13)), vec![]);
        assert_eq!(ordered, [bin("/opt/pg/bin", 13)]);
    }

    #[test]
    fn new_cluster_takes_first_candidate_existing_one_its_own_major() {
        let candidates = [
            bin("/usr/lib/postgresql/16/bin", 16),
            bin("/usr/lib/postgresql/14/bin", 14),
        ];
        assert_eq!(choose_bin(&candidates, None), Some(&candidates[0]));
        assert_eq!(choose_bin(&candidates, Some(14)), Some(&candidates[1]));
        assert_eq!(choose_bin(&candidates, Some(15)), None);
        assert_eq!(choose_bin(&[], None), None);
    }

    #[test]
    fn database_url_points_sqlx_at_the_socket() {
        let url = database_url(Path::new("/var/tmp/picket/pg/run"), "picket");
        assert_eq!(
            url,
            "postgres://postgres@localhost:5432/picket?host=/var/tmp/picket/pg/run&sslmode=disable"
        );
        let opts: PgConnectOptions = url.parse().expect("sqlx parses the URL");
        assert_eq!(
            opts.get_socket(),
            Some(&PathBuf::from("/var/tmp/picket/pg/run"))
        );
        assert_eq!(opts.get_port(), PORT);
        assert_eq!(opts.get_username(), "postgres");
        assert_eq!(opts.get_database(), Some("picket"));
        assert!(matches!(
            opts.get_ssl_mode(),
            sqlx::postgres::PgSslMode::Disable
        ));
    }

    #[test]
    fn database_url_survives_awkward_paths_and_names() {
        let dir = "/srv/my repo+x&y=z#frag%20/.picket/pg/run";
        let url = database_url(Path::new(dir), "odd db/name");
        let opts: PgConnectOptions = url.parse().expect("sqlx parses the URL");
        assert_eq!(opts.get_socket(), Some(&PathBuf::from(dir)));
        assert_eq!(opts.get_database(), Some("odd db/name"));
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved() {
        assert_eq!(percent_encode("a-b_c.d~e/f", true), "a-b_c.d~e/f");
        assert_eq!(percent_encode("a/b", false), "a%2Fb");
        assert_eq!(percent_encode("a b+c&é", true), "a%20b%2Bc%26%C3%A9");
    }

    #[test]
    fn conf_turns_tcp_off_and_quotes_the_socket_dir() {
        let conf = picket_conf("/srv/pg/run");
        assert!(conf.contains("listen_addresses = ''\n"), "{conf}");
        assert!(conf.contains("port = 5432\n"), "{conf}");
        assert!(
            conf.contains("unix_socket_directories = '\"/srv/pg/run\"'\n"),
            "{conf}"
        );

        // A comma would split the list, a quote would end the literal, a backslash escapes.
        let conf = picket_conf(r#"/srv/a,b'c"d\e/run"#);
        assert!(
            conf.contains(r#"unix_socket_directories = '"/srv/a,b''c""d\\e/run"'"#),
            "{conf}"
        );
    }

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
