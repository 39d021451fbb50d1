//! Driving the cluster: `initdb`, our settings file, `pg_ctl` start/stop/status, and the URL
//! that reaches the server over its socket.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Instant;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::process::Command;

use super::binaries::PgBin;
use super::location::{ClusterPaths, ServerUser};
use super::{
    io_err, output, output_tail, tail_lines, utf8_path, LocalPgError, Startup, CONF_FILE,
    INCLUDE_LINE, NO_INSTRUCTIONS_SINCE, PORT, READY_POLL, READY_TIMEOUT, START_TIMEOUT_SECS,
    STOP_TIMEOUT_SECS, SUPERUSER, TAIL_LINES,
};
/// Chosen binaries, server user and paths: everything needed to drive `initdb` and `pg_ctl`.
#[derive(Debug)]
pub(super) struct Cluster {
    pub(super) bin: PgBin,
    pub(super) user: ServerUser,
    pub(super) paths: ClusterPaths,
}

impl Cluster {
    pub(super) async fn bring_up(&self, needs_initdb: bool) -> Result<Startup, LocalPgError> {
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

    pub(super) async fn pg_ctl_stop(&self, mode: &str) -> Result<Output, LocalPgError> {
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
    pub(super) async fn is_running(&self) -> Result<bool, LocalPgError> {
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
    pub(super) async fn wait_ready(&self) -> Result<(), LocalPgError> {
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

    pub(super) async fn connect(&self, db: &str) -> Result<PgConnection, LocalPgError> {
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

pub(super) fn database_url(socket_dir: &Path, db: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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
}
