//! `picket scheduler`, and the scheduler `picket run` runs in-process: configuration of
//! picket-scheduler and of the executor it runs scans with.

use crate::worker::SemgrepArgs;
use anyhow::Context;
use clap::{Args, ValueEnum};
use picket_db::Db;
use picket_scheduler::kube::{KubeConfig, KubeExecutor};
use picket_scheduler::metrics::{self, SchedulerMetrics};
use picket_scheduler::process::ProcessExecutor;
use picket_scheduler::sandbox::{self, SandboxConfig, SandboxExecutor};
use picket_scheduler::{SchedulerConfig, WorkerCommand};
use picket_worker::tls::CaBundle;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where scans run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// A network namespace with an egress allowlist and a bubblewrap sandbox per scan, on this
    /// machine (needs root, bubblewrap, nftables, iproute2).
    Sandbox,
    /// One Pod per scan, with its Secret and NetworkPolicy, in the scan namespace.
    Kubernetes,
    /// A plain child process: NOT isolated from this machine. Needs --allow-unisolated.
    Process,
}

#[derive(Debug, Clone, Args)]
pub struct SchedulerArgs {
    /// Where scans run: sandbox, kubernetes or process. Default sandbox.
    #[arg(long, env = "PICKET_EXECUTOR", value_enum, default_value_t = ExecutorKind::Sandbox)]
    pub executor: ExecutorKind,
    /// Allow `--executor process`, which runs workers without any isolation from this machine.
    /// Default false.
    #[arg(long, env = "PICKET_ALLOW_UNISOLATED", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_unisolated: bool,
    /// Scans run at once by this scheduler. Default: the number of CPUs.
    #[arg(long, env = "PICKET_MAX_CONCURRENT_SCANS")]
    pub max_concurrent_scans: Option<usize>,
    /// Lease length, in seconds; renewed every third of it while the worker runs. Default 60.
    #[arg(long, env = "PICKET_LEASE_SECS", default_value_t = 60)]
    pub lease_secs: u64,
    /// Longest one scan may run before it is stopped as timed out, in seconds. Default 3600.
    #[arg(long, env = "PICKET_SCAN_TIMEOUT_SECS", default_value_t = 3600)]
    pub scan_timeout_secs: u64,
    /// How often the weekly schedule is checked, in seconds. Default 60.
    #[arg(long, env = "PICKET_SCHEDULE_INTERVAL_SECS", default_value_t = 60)]
    pub schedule_interval_secs: u64,
    /// How often expired scan leases are rescued, in seconds. Default 30.
    #[arg(long, env = "PICKET_RESCUE_INTERVAL_SECS", default_value_t = 30)]
    pub rescue_interval_secs: u64,
    /// How often leftover scan environments are reaped, in seconds (and once at start).
    /// Default 60.
    #[arg(long, env = "PICKET_REAP_INTERVAL_SECS", default_value_t = 60)]
    pub reap_interval_secs: u64,
    /// Where scans may connect besides the control plane and DNS: comma-separated CIDR:port
    /// (e.g. 140.82.112.0/20:443 for a git host). Default: nowhere.
    #[arg(long, env = "PICKET_EGRESS_ALLOW", default_value = "")]
    pub egress_allow: String,
    /// Sandbox: the directory scans' directories are made in. Default: <data dir>/sandboxes
    /// for `picket run`, /var/lib/picket/sandboxes for `picket scheduler`.
    #[arg(long, env = "PICKET_SANDBOX_DIR")]
    pub sandbox_dir: Option<PathBuf>,
    /// Kubernetes: the namespace scans run in. Default picket-scans.
    #[arg(long, env = "PICKET_SCAN_NAMESPACE", default_value = "picket-scans")]
    pub scan_namespace: String,
    /// Kubernetes: the worker image, pinned by digest (…@sha256:…).
    #[arg(long, env = "PICKET_WORKER_IMAGE")]
    pub worker_image: Option<String>,
    /// Kubernetes: the scan pods' service account (no RBAC). Default picket-scan.
    #[arg(
        long,
        env = "PICKET_WORKER_SERVICE_ACCOUNT",
        default_value = "picket-scan"
    )]
    pub worker_service_account: String,
    /// Kubernetes: the API pods scan pods may reach, by selector:
    /// namespace/key=value[,key=value]:port. Default: none (list the API in
    /// PICKET_EGRESS_ALLOW instead).
    #[arg(long, env = "PICKET_WORKER_API_SELECTOR")]
    pub worker_api_selector: Option<String>,
    /// PEM file of CA certificates every scan's worker trusts besides the system's roots (git
    /// hosts behind a private CA); the Kubernetes client trusts them too. Read once, at start.
    /// Default: none.
    #[arg(long, env = "PICKET_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    /// How long webhook deliveries' bodies are kept for troubleshooting: seconds, or a number
    /// with s, m, h or d. Default 7d.
    #[arg(long, env = "PICKET_WEBHOOK_BODY_RETENTION", default_value = "7d", value_parser = crate::parse_duration)]
    pub webhook_body_retention: Duration,
    /// How long each scan's worker log (the Scan page's Logs tab) is kept after the scan ends:
    /// seconds, or a number with s, m, h or d. Default 30d. A scan keeps at most 10,000 lines.
    #[arg(long, env = "PICKET_SCAN_LOG_RETENTION", default_value = "30d", value_parser = crate::parse_duration)]
    pub scan_log_retention: Duration,
    /// How often the reconcile sweep lists the open pull requests of enabled GitHub projects
    /// and queues a scan of every head never scanned (GitHub never retries a webhook): seconds,
    /// or a number with s, m, h or d; 0 turns it off. Needs PICKET_SECRET_KEY. Default 5m.
    #[arg(long, env = "PICKET_RECONCILE_INTERVAL", default_value = "5m", value_parser = crate::parse_duration)]
    pub reconcile_interval: Duration,
    /// Provider API calls one GitHub App installation may cost per reconcile sweep; the next
    /// sweep resumes with the projects a spent budget left. Default 100.
    #[arg(long, env = "PICKET_RECONCILE_BUDGET", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub reconcile_budget: u64,
    /// How old a connection's list of repositories (the Projects page's "Not scanning" tab) may
    /// grow before the scheduler reads it again from the provider: seconds, or a number with s,
    /// m, h or d; 0 turns the refresh off. Default 6h.
    #[arg(long, env = "PICKET_INVENTORY_REFRESH", default_value = "6h", value_parser = crate::parse_duration)]
    pub inventory_refresh: Duration,
    /// Where Supply Chain's OSV advisories are synced from: `osv.dev` (each ecosystem's
    /// all.zip export from osv.dev's public bucket), `none`, or comma-separated URLs of zips of
    /// OSV JSON files (a mirror). Default osv.dev. `picket advisories import` loads files
    /// instead, e.g. on an install without internet.
    #[arg(long, env = "PICKET_ADVISORY_SOURCES", default_value = "osv.dev")]
    pub advisory_sources: String,
    /// How often the advisory sources are fetched again (an unchanged export is not read
    /// twice): seconds, or a number with s, m, h or d. Default 24h.
    #[arg(long, env = "PICKET_ADVISORY_SYNC_INTERVAL", default_value = "24h", value_parser = crate::parse_duration)]
    pub advisory_sync_interval: Duration,
}

impl SchedulerArgs {
    /// The CA bundle, read and checked.
    pub fn ca_bundle(&self) -> anyhow::Result<Option<CaBundle>> {
        self.ca_bundle
            .as_deref()
            .map(CaBundle::read)
            .transpose()
            .context("PICKET_CA_BUNDLE")
    }

    /// Refuses, before anything starts, what the operator must decide explicitly, and a CA
    /// bundle that cannot be used.
    pub fn check(&self) -> anyhow::Result<()> {
        self.ca_bundle()?;
        self.advisory_urls()?;
        match self.executor {
            ExecutorKind::Process if !self.allow_unisolated => anyhow::bail!(
                "--executor process runs workers without isolation from this machine; set \
                 --allow-unisolated true (PICKET_ALLOW_UNISOLATED=true) to accept that"
            ),
            ExecutorKind::Kubernetes if self.worker_image.is_none() => anyhow::bail!(
                "--executor kubernetes needs PICKET_WORKER_IMAGE (the worker image, pinned by \
                 digest)"
            ),
            _ => Ok(()),
        }
    }

    pub fn config(&self, owner: String) -> SchedulerConfig {
        let mut cfg = SchedulerConfig::new(owner);
        if let Some(n) = self.max_concurrent_scans {
            cfg.slots = n.max(1);
        }
        cfg.lease = Duration::from_secs(self.lease_secs.max(3));
        cfg.scan_timeout = Duration::from_secs(self.scan_timeout_secs.max(1));
        cfg.schedule_every = Duration::from_secs(self.schedule_interval_secs.max(1));
        cfg.rescue_every = Duration::from_secs(self.rescue_interval_secs.max(1));
        cfg.reap_every = Duration::from_secs(self.reap_interval_secs.max(1));
        cfg.webhook_body_retention = self.webhook_body_retention;
        cfg.scan_log_retention = self.scan_log_retention;
        cfg.reconcile.every = self.reconcile_interval;
        cfg.reconcile.budget = self.reconcile_budget;
        cfg.inventory.every = self.inventory_refresh;
        // Checked by `check`, which every command runs first.
        cfg.advisories.urls = self.advisory_urls().unwrap_or_default();
        cfg.advisories.every = self.advisory_sync_interval.max(Duration::from_secs(60));
        cfg
    }

    /// The advisory exports `PICKET_ADVISORY_SOURCES` names.
    pub fn advisory_urls(&self) -> anyhow::Result<Vec<String>> {
        picket_scheduler::advisories::SyncConfig::parse_sources(&self.advisory_sources)
            .map_err(|e| anyhow::anyhow!("PICKET_ADVISORY_SOURCES: {e}"))
    }
}

/// Checks, before anything is announced, that the configured executor can run here, and says
/// in a few words where scans will run.
pub async fn preflight(args: &SchedulerArgs) -> anyhow::Result<&'static str> {
    args.check()?;
    Ok(match args.executor {
        ExecutorKind::Sandbox => {
            SandboxExecutor::check(&sandbox::Tools::default())
                .await
                .map_err(cannot_sandbox)?;
            "each in a local sandbox (network namespace with an egress allowlist + bubblewrap)"
        }
        ExecutorKind::Kubernetes => "each in its own Kubernetes Pod",
        ExecutorKind::Process => "as plain child processes, NOT isolated from this machine",
    })
}

/// Why the sandbox executor cannot run here, and what the operator can do about it.
fn cannot_sandbox(why: String) -> anyhow::Error {
    anyhow::anyhow!(
        "this machine cannot sandbox scans: {why}. Install the tools (`make sandbox-tools`) \
         and run as root, or run scans without isolation with --executor process \
         --allow-unisolated true"
    )
}

/// What the scheduler needs from its caller besides its arguments.
#[derive(Debug)]
pub struct Placement {
    /// The API as the workers reach it: its socket address (sandbox, process) and URL
    /// (Kubernetes: usually a Service's URL).
    pub api: SocketAddr,
    pub api_url: String,
    /// Default for --sandbox-dir.
    pub sandbox_dir: PathBuf,
    /// Directories of local repositories sandboxed workers may clone, lent read-only
    /// (`PICKET_LOCAL_REPO_DIRS`, and the demo's repository for `picket run`).
    pub local_repos: Vec<PathBuf>,
    /// Let workers clone file:// repositories (single-machine use).
    pub allow_local_repos: bool,
    /// `PICKET_LOG` and `PICKET_LOG_FORMAT` for the workers: they log like their scheduler.
    pub worker_log: Vec<(String, String)>,
    /// Providers' clients for the control plane's side of PR checks; `None` (no secret key
    /// given to a standalone scheduler): PR checks are not moved.
    pub providers: Option<Arc<picket_vcs::Registry>>,
    /// Picket's public URL, for the checks' "Details" links.
    pub public_url: Option<String>,
}

/// The registry of providers' clients: credentials from the database (opened with `cipher`),
/// TLS trusting the platform's roots plus the operator's CA bundle.
pub fn registry(
    db: &Db,
    cipher: Arc<picket_db::crypto::CredentialCipher>,
    ca_bundle: Option<&CaBundle>,
) -> Arc<picket_vcs::Registry> {
    let mut options =
        picket_vcs::github::api::ClientOptions::new(picket_vcs::github::DEFAULT_API_URL);
    if let Some(bundle) = ca_bundle {
        options.extra_roots = bundle.certificates().to_vec();
    }
    Arc::new(picket_vcs::Registry::new(
        Arc::new(picket_db::connections::CredentialStore::new(
            db.pool().clone(),
            cipher,
        )),
        options,
    ))
}

/// Runs the scheduler with the configured executor until `stop`.
/// The scheduler's own HTTP endpoints: liveness, readiness (the database answers) and its
/// Prometheus metrics.
pub fn ops_router(db: Db, metrics: Arc<SchedulerMetrics>) -> axum::Router {
    use axum::http::{header, StatusCode};
    use axum::routing::get;
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let db = db.clone();
                async move {
                    match db.ping().await {
                        Ok(()) => (StatusCode::OK, "ready\n"),
                        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n"),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let text = metrics.encode();
                async move { ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text) }
            }),
        )
}

pub async fn run(
    db: Db,
    args: &SchedulerArgs,
    engine: &SemgrepArgs,
    place: Placement,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    run_with(db, args, engine, place, Arc::default(), stop).await
}

/// [`run`], counting into `metrics`.
pub async fn run_with(
    db: Db,
    args: &SchedulerArgs,
    engine: &SemgrepArgs,
    place: Placement,
    metrics: Arc<SchedulerMetrics>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let owner = format!(
        "{}-{}",
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "picket".into()),
        std::process::id()
    );
    args.check()?;
    let ca_bundle = args.ca_bundle()?;
    let mut cfg = args.config(owner);
    cfg.metrics = metrics;
    cfg.providers = place.providers.clone();
    cfg.pr_checks.public_url = place.public_url.clone();
    cfg.advisories.http = Some(
        picket_scheduler::advisories::SyncConfig::client(ca_bundle.as_ref().map(|b| b.pem()))
            .context("PICKET_CA_BUNDLE for the advisory sync")?,
    );
    if cfg.providers.is_none() {
        tracing::warn!(
            "no PICKET_SECRET_KEY: pull request checks will not be created or moved, no \
             reconcile sweep will run, nor triage replies be answered"
        );
    }
    // Every environment is named and marked with it, and the reaper touches no other.
    let installation = picket_db::installation::id(db.pool())
        .await
        .context("reading this installation's id (is the database migrated?)")?;
    match args.executor {
        ExecutorKind::Sandbox => {
            let (worker, readonly) = local_worker(engine, &place)?;
            let mut sandbox = SandboxConfig::new(
                installation,
                args.sandbox_dir.clone().unwrap_or(place.sandbox_dir),
                place.api,
            );
            sandbox.readonly = readonly;
            sandbox.local_repos = place.local_repos.clone();
            sandbox.egress = parse_egress_v4(&args.egress_allow)?;
            sandbox.ca_bundle = ca_bundle.as_ref().map(|b| b.pem().to_vec());
            sandbox.dns = sandbox::host_resolvers();
            let executor = SandboxExecutor::new(sandbox, worker)
                .await
                .map_err(cannot_sandbox)?;
            tracing::debug!("scans run in local sandboxes (network namespace + bubblewrap)");
            picket_scheduler::run(db, executor, cfg, stop).await;
        }
        ExecutorKind::Process => {
            let (worker, _) = local_worker(engine, &place)?;
            let mut worker = worker;
            worker
                .env
                .push(("PICKET_API_URL".into(), place.api_url.clone()));
            if let Some(path) = &args.ca_bundle {
                // The worker runs in a directory of its own: a relative path would not resolve.
                let path = std::path::absolute(path).context("PICKET_CA_BUNDLE")?;
                worker
                    .env
                    .push(("PICKET_CA_BUNDLE".into(), path.display().to_string()));
            }
            tracing::warn!(
                "scans run as plain child processes, NOT isolated from this machine \
                 (--executor process)"
            );
            let executor = ProcessExecutor::new(installation, worker);
            picket_scheduler::run(db, executor, cfg, stop).await;
        }
        ExecutorKind::Kubernetes => {
            let image = args
                .worker_image
                .clone()
                .context("--executor kubernetes needs PICKET_WORKER_IMAGE (pinned by digest)")?;
            let mut kube = KubeConfig::new(
                args.scan_namespace.clone(),
                image,
                args.worker_service_account.clone(),
                place.api_url.clone(),
            );
            kube.egress = picket_scheduler::kube::parse_egress(&args.egress_allow)
                .map_err(|e| anyhow::anyhow!("PICKET_EGRESS_ALLOW: {e}"))?;
            kube.env = place.worker_log.clone();
            kube.api_peer = args
                .worker_api_selector
                .as_deref()
                .map(picket_scheduler::kube::ApiPeer::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("PICKET_WORKER_API_SELECTOR: {e}"))?;
            let mut client_cfg = kube::Config::infer()
                .await
                .context("configuring the Kubernetes client (in-cluster or KUBECONFIG)")?;
            if let Some(bundle) = &ca_bundle {
                let ders: Vec<Vec<u8>> = bundle.certificates().iter().map(|c| c.to_vec()).collect();
                client_cfg = picket_scheduler::kube::trust_ca_bundle(client_cfg, &ders);
            }
            let client = kube::Client::try_from(client_cfg)
                .context("connecting to the Kubernetes API (in-cluster or KUBECONFIG)")?;
            if let Some(bundle) = &ca_bundle {
                kube.ca_bundle = Some(
                    picket_scheduler::kube::ensure_ca_bundle(
                        client.clone(),
                        &args.scan_namespace,
                        bundle.pem(),
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("PICKET_CA_BUNDLE: {e}"))?,
                );
            }
            let executor = KubeExecutor::new(client, installation, kube)
                .map_err(|e| anyhow::anyhow!("Kubernetes executor: {e}"))?;
            tracing::info!(namespace = %args.scan_namespace, "scans run as Kubernetes Pods");
            picket_scheduler::run(db, executor, cfg, stop).await;
        }
    }
    Ok(())
}

/// `picket worker` on this machine: this executable, the engine, and what the sandbox must
/// let it read.
fn local_worker(
    engine: &SemgrepArgs,
    place: &Placement,
) -> anyhow::Result<(WorkerCommand, Vec<PathBuf>)> {
    let exe = std::env::current_exe().context("locating the picket executable")?;
    let engine = engine.config();
    // Real paths: the sandbox lends them at the same place, and `..` cannot be lent.
    let semgrep = real_path(&engine.binary);
    let rules = real_path(&engine.rules_dir);
    let mut env = place.worker_log.clone();
    env.extend([
        ("PICKET_SEMGREP".to_owned(), semgrep.display().to_string()),
        ("PICKET_RULES_DIR".to_owned(), rules.display().to_string()),
        (
            "PICKET_SEMGREP_NATIVE".to_owned(),
            engine.native.to_string(),
        ),
    ]);
    if place.allow_local_repos {
        env.push(("PICKET_ALLOW_LOCAL_REPOS".to_owned(), "true".to_owned()));
    }
    let mut readonly = vec![exe.clone(), rules];
    readonly.extend(sandbox::engine_paths(&semgrep));
    Ok((
        WorkerCommand {
            program: exe,
            args: vec!["worker".into()],
            env,
        },
        readonly,
    ))
}

/// The canonical path when the file exists (a bare name is looked up on PATH), else as given.
fn real_path(path: &Path) -> PathBuf {
    let found = if path.components().count() == 1 {
        std::env::var_os("PATH").and_then(|dirs| {
            std::env::split_paths(&dirs)
                .map(|d| d.join(path))
                .find(|p| p.is_file())
        })
    } else {
        Some(path.to_path_buf())
    };
    found
        .and_then(|p| std::fs::canonicalize(p).ok())
        .unwrap_or_else(|| path.to_path_buf())
}

fn parse_egress_v4(list: &str) -> anyhow::Result<Vec<sandbox::Egress>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|e: String| anyhow::anyhow!("PICKET_EGRESS_ALLOW: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_lists_parse_or_say_why() {
        assert_eq!(parse_egress_v4("").unwrap(), vec![]);
        assert_eq!(
            parse_egress_v4("10.0.0.0/8:443, 192.0.2.1:22")
                .unwrap()
                .len(),
            2
        );
        let err = parse_egress_v4("10.0.0.0/8").unwrap_err().to_string();
        assert!(err.contains("PICKET_EGRESS_ALLOW"), "{err}");
    }

    #[derive(Debug, clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        scheduler: SchedulerArgs,
    }

    fn reconcile(args: &[&str]) -> Result<picket_scheduler::reconcile::ReconcileConfig, String> {
        use clap::Parser;
        let wrap = Wrap::try_parse_from(std::iter::once("picket").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Ok(wrap.scheduler.config("test".into()).reconcile)
    }

    #[test]
    fn the_reconcile_sweep_is_configured_by_its_interval_and_budget() {
        let defaults = reconcile(&[]).unwrap();
        assert_eq!(
            (defaults.every, defaults.budget),
            (Duration::from_secs(300), 100)
        );
        let set = reconcile(&["--reconcile-interval", "90s", "--reconcile-budget", "7"]).unwrap();
        assert_eq!((set.every, set.budget), (Duration::from_secs(90), 7));
        assert!(reconcile(&["--reconcile-interval", "0"])
            .unwrap()
            .every
            .is_zero());
        assert!(reconcile(&["--reconcile-budget", "0"]).is_err());
    }
}
