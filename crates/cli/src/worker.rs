//! `picket worker`: one scan attempt, as run inside a scan's environment.

use anyhow::Context;
use clap::Args;
use picket_worker::clone::CloneLimits;
use picket_worker::scan::WorkerConfig;
use picket_worker::semgrep::SemgrepConfig;
use picket_worker::tls::{self, CaBundle};
use secrecy::SecretString;
use std::path::PathBuf;
use std::time::Duration;

/// Where `make` installs the pinned Semgrep, relative to the workspace.
const DEV_SEMGREP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/semgrep");
/// Picket's rule pack in the source tree.
const DEV_RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../worker/rules");

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Root URL of the control plane, e.g. http://127.0.0.1:7300.
    #[arg(long, env = "PICKET_API_URL")]
    pub api_url: String,
    /// This scan attempt's token (pks_…), minted when the scan was claimed. Also read from the
    /// file PICKET_SCAN_TOKEN_FILE names (Kubernetes mounts it so).
    #[arg(long, env = "PICKET_SCAN_TOKEN", hide_env_values = true)]
    pub scan_token: SecretString,
    /// PEM file of CA certificates trusted besides the system's roots, by clones and by the
    /// control plane's client (a git host behind a private CA). Default: none.
    #[arg(long, env = "PICKET_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The Semgrep engine: shared by the worker (which scans with it) and the API (which checks
/// uploaded rule packs with it, with the same flags).
#[derive(Debug, Clone, Args)]
pub struct SemgrepArgs {
    /// The semgrep executable. Default: the project's .venv/bin/semgrep if present, else
    /// `semgrep` on PATH.
    #[arg(long, env = "PICKET_SEMGREP")]
    pub semgrep: Option<PathBuf>,
    /// Use Semgrep's native CLI (--experimental). Default true.
    #[arg(long, env = "PICKET_SEMGREP_NATIVE", default_value_t = true, action = clap::ArgAction::Set)]
    pub semgrep_native: bool,
    /// Directory of the rule pack. Default: the pack in the source tree (crates/worker/rules).
    #[arg(long, env = "PICKET_RULES_DIR")]
    pub rules_dir: Option<PathBuf>,
}

impl SemgrepArgs {
    pub fn config(&self) -> SemgrepConfig {
        let binary = self.semgrep.clone().unwrap_or_else(|| {
            let dev = PathBuf::from(DEV_SEMGREP);
            if dev.exists() {
                dev
            } else {
                PathBuf::from("semgrep")
            }
        });
        let rules = self
            .rules_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEV_RULES));
        let mut semgrep = SemgrepConfig::new(binary, rules);
        semgrep.native = self.semgrep_native;
        semgrep
    }
}

#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    #[command(flatten)]
    pub semgrep: SemgrepArgs,
    /// Largest clone, in bytes received. Default 2 GiB.
    #[arg(long, env = "PICKET_CLONE_MAX_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub clone_max_bytes: u64,
    /// Longest a clone may take, in seconds. Default 600.
    #[arg(long, env = "PICKET_CLONE_TIMEOUT_SECS", default_value_t = 600)]
    pub clone_timeout_secs: u64,
    /// Also clone file:// URLs (repositories on this host). For single-machine use only: `picket
    /// run` turns it on for its local workers. Default false.
    #[arg(long, env = "PICKET_ALLOW_LOCAL_REPOS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_local_repos: bool,
}

impl EngineArgs {
    pub fn config(&self) -> WorkerConfig {
        WorkerConfig {
            semgrep: self.semgrep.config(),
            clone_limits: CloneLimits {
                max_bytes: self.clone_max_bytes,
                timeout: Duration::from_secs(self.clone_timeout_secs),
                allow_local: self.allow_local_repos,
            },
        }
    }
}

/// Runs the attempt. On SIGTERM or Ctrl-C the scan is abandoned: dropping it drops the checkout,
/// whose temporary directory is deleted, before the process exits (the executor then records the
/// outcome from the lease).
pub async fn execute(
    args: WorkerArgs,
    scan_log: Option<picket_worker::scanlog::ScanLog>,
) -> anyhow::Result<()> {
    // The token has left the environment (`crate::parse`), but the environment this process
    // started with stays readable in /proc/<pid>/environ, and its memory holds the token: a
    // process that is not dumpable has those owned by root, out of reach of the engine, which
    // runs as the same user.
    nix::sys::prctl::set_dumpable(false).context("making the worker non-dumpable")?;
    // First, before any TLS client exists: they read their roots once (see tls::trust). The
    // trust file lives in the attempt's temporary directory until the process ends.
    let _trust = match &args.ca_bundle {
        Some(path) => {
            let bundle = CaBundle::read(path).context("PICKET_CA_BUNDLE")?;
            Some(tls::trust(&bundle, &std::env::temp_dir()).context("PICKET_CA_BUNDLE")?)
        }
        None => None,
    };
    let cfg = args.engine.config();
    let scan = picket_worker::run::run(&args.api_url, args.scan_token, &cfg, scan_log);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        outcome = scan => Ok(outcome?),
        _ = term.recv() => anyhow::bail!("stopped by SIGTERM; the scan was abandoned"),
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; the scan was abandoned"),
    }
}
