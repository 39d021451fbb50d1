//! The `picket` command line: one clap parser per subcommand, every option also read from a
//! `PICKET_*` environment variable (or `DATABASE_URL`), documented with its unit and default.
//!
//! - `picket run`: the whole platform in one process on this machine's defaults.
//! - `picket api`: the HTTP API alone, against an existing database.
//! - `picket scheduler`: claims scans and runs each in its own environment (Kubernetes Pod,
//!   local sandbox), with the weekly schedule, lease rescue and the reaper.
//! - `picket migrate`: apply the schema.
//! - `picket admin`: create orgs and tokens, revoke tokens.
//! - `picket worker`: one scan attempt, started by an executor.

pub mod admin;
pub mod advisories;
pub mod demo;
pub mod local_pg;
pub mod run;
pub mod scheduler;
pub mod secrets;
pub mod telemetry;
pub mod worker;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Picket: managed code scanning, self-hosted.
#[derive(Debug, Parser)]
#[command(name = "picket", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: telemetry::LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole platform in one process: database (embedded unless DATABASE_URL is set),
    /// migrations, API, and the scheduler with its local sandbox executor.
    Run(RunArgs),
    /// Serve the HTTP API against an existing, migrated database.
    Api(ApiArgs),
    /// Run the scheduler against an existing, migrated database.
    Scheduler(SchedulerCmdArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Administer orgs and API tokens.
    Admin(admin::AdminArgs),
    /// Run one scan attempt (started by an executor, with the attempt's token).
    Worker(worker::WorkerArgs),
    /// Supply Chain's advisories: import OSV records.
    Advisories(advisories::AdvisoriesArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL, e.g. postgres://user@host:5432/picket (unix socket: ?host=/dir).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: SecretString,
    /// Largest number of pooled database connections. Default 16.
    #[arg(long, env = "PICKET_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Address the API listens on. Default 127.0.0.1:7300.
    #[arg(long, env = "PICKET_LISTEN", default_value = "127.0.0.1:7300")]
    pub listen: SocketAddr,
    /// PostgreSQL URL. Unset: a private cluster is started under the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretString>,
    /// Directory for local state: the embedded cluster, the generated secret key and the first
    /// admin token. Default .picket (relative to the working directory).
    #[arg(long, env = "PICKET_DATA_DIR", default_value = ".picket")]
    pub data_dir: PathBuf,
    /// Key that encrypts provider credentials at rest: 64 hex characters (32 bytes). Unset: read
    /// from, or generated into, <data dir>/secret.key.
    #[arg(long, env = "PICKET_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<SecretString>,
    #[command(flatten)]
    pub api: ApiTuning,
    #[command(flatten)]
    pub scheduler: scheduler::SchedulerArgs,
    /// Add the demo project (a small sample repository shipped with Picket) on first start and
    /// print its findings when its scan is done. Default true.
    #[arg(long, env = "PICKET_DEMO", default_value_t = true, action = clap::ArgAction::Set)]
    pub demo: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Address the API listens on. Default 0.0.0.0:8080.
    #[arg(long, env = "PICKET_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Key that encrypts provider credentials at rest: 64 hex characters (32 bytes).
    #[arg(long, env = "PICKET_SECRET_KEY", hide_env_values = true)]
    pub secret_key: SecretString,
    #[command(flatten)]
    pub api: ApiTuning,
    /// CA certificates (PEM) trusted besides the system's when reaching providers (a GitHub
    /// Enterprise Server behind a private CA). Default: none.
    #[arg(long, env = "PICKET_CA_BUNDLE")]
    pub ca_bundle: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SchedulerCmdArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub scheduler: scheduler::SchedulerArgs,
    /// Address of the scheduler's own endpoints: /healthz, /readyz (database reachable) and
    /// /metrics (Prometheus). Default 0.0.0.0:9090.
    #[arg(long, env = "PICKET_SCHEDULER_LISTEN", default_value = "0.0.0.0:9090")]
    pub listen: SocketAddr,
    /// The API's URL as workers reach it, e.g. http://picket-api.picket.svc:8080 (Kubernetes)
    /// or http://127.0.0.1:8080 (sandbox and process executors, which need an IP address).
    #[arg(long, env = "PICKET_WORKER_API_URL")]
    pub worker_api_url: String,
    /// The engine sandboxed and plain-process workers use.
    #[command(flatten)]
    pub engine: worker::SemgrepArgs,
    #[command(flatten)]
    pub local_repos: LocalRepoArgs,
    /// The key that encrypts provider credentials at rest (as the API's): the scheduler opens a
    /// connection's credentials to move its pull requests' checks. Unset: PR checks are not
    /// created or moved.
    #[arg(long, env = "PICKET_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<SecretString>,
    /// Picket's public URL (as the API's), for the checks' "Details" links.
    #[arg(long, env = "PICKET_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// The directories of this machine whose git repositories may be scanned (`file://` projects):
/// the API refuses a `file://` project elsewhere when it is added, and the scheduler lends them
/// read-only to its sandboxes. One setting both read.
#[derive(Debug, Clone, Args)]
pub struct LocalRepoArgs {
    /// Comma-separated directories whose git repositories may be added as file:// projects and
    /// scanned (single-machine use; lent read-only to each sandbox). Default: none (`picket
    /// run` also allows its demo repository).
    #[arg(
        long = "local-repo-dirs",
        env = "PICKET_LOCAL_REPO_DIRS",
        value_delimiter = ','
    )]
    pub dirs: Vec<PathBuf>,
}

impl LocalRepoArgs {
    /// The directories resolved, `extra` included; a missing one is an error naming it.
    pub fn resolve(
        &self,
        extra: impl IntoIterator<Item = PathBuf>,
    ) -> anyhow::Result<picket_api::local_repos::LocalRepoDirs> {
        let dirs = self
            .dirs
            .iter()
            .filter(|d| !d.as_os_str().is_empty())
            .cloned()
            .chain(extra);
        picket_api::local_repos::LocalRepoDirs::new(dirs).map_err(anyhow::Error::msg)
    }
}

#[derive(Debug, Clone, Args)]
pub struct ApiTuning {
    /// Largest accepted request body, in bytes. Default 4 MiB. (Webhook deliveries take up to
    /// 25 MiB, GitHub's cap, on their route alone.)
    #[arg(long, env = "PICKET_BODY_LIMIT_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub body_limit_bytes: usize,
    /// The server's public base URL, e.g. https://picket.example.com: providers deliver webhooks
    /// under it, and connections show their webhook URL under it. Default: `picket run` uses its
    /// listen address; `picket api` shows webhook URLs as paths.
    #[arg(long, env = "PICKET_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How long a rotated webhook secret stays valid beside the new one: seconds, or a number
    /// with s, m, h or d. Default 24h.
    #[arg(long, env = "PICKET_WEBHOOK_SECRET_OVERLAP", default_value = "24h", value_parser = parse_duration)]
    pub webhook_secret_overlap: std::time::Duration,
    #[command(flatten)]
    pub local_repos: LocalRepoArgs,
    /// The engine uploaded rule packs are checked with (the workers' own).
    #[command(flatten)]
    pub engine: worker::SemgrepArgs,
}

/// A duration: seconds (`90`), or a number with a unit `s`, `m`, `h` or `d` (`24h`, `7d`).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 90, 30m, 24h, 7d)"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    n.checked_mul(unit)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// Parses the command line, secrets given as `<NAME>_FILE` included, and drops every secret
/// from the environment (see [`secrets`]). Call it before any thread starts: it changes this
/// process's environment. Exits like clap on a bad command line, and with status 2 when a
/// secret's file cannot be read.
pub fn parse() -> Cli {
    if let Err(e) = secrets::load_files() {
        eprintln!("picket: error: {e}");
        std::process::exit(2);
    }
    let cli = Cli::parse();
    secrets::scrub();
    cli
}

/// Runs one parsed command line. `scan_log`: the worker's scan log, from [`telemetry::init`].
pub async fn execute(
    cli: Cli,
    scan_log: Option<picket_worker::scanlog::ScanLog>,
) -> anyhow::Result<()> {
    // Local workers log like the command that starts them.
    let worker_log = cli.log.worker_env(&cli.command);
    match cli.command {
        Command::Run(args) => run::run(args, worker_log).await,
        Command::Api(args) => run::api(args).await,
        Command::Scheduler(args) => Box::pin(run::scheduler(args, worker_log)).await,
        Command::Migrate(args) => run::migrate(args).await,
        Command::Admin(args) => admin::execute(args).await,
        Command::Worker(args) => worker::execute(args, scan_log).await,
        Command::Advisories(args) => advisories::execute(args).await,
    }
}
