//! `picket run`, `picket api` and `picket migrate`.
//!
//! `run` resolves a database (DATABASE_URL, or a private cluster under the data directory),
//! migrates it, creates the first org and admin token (and the demo project) on first start,
//! then serves the API and runs the scheduler in-process (each scan in a local sandbox by
//! default) until Ctrl-C or SIGTERM, and finally stops the private cluster.

use crate::local_pg::{LocalPg, LocalPgConfig};
use crate::scheduler::Placement;
use crate::{admin, demo, scheduler, ApiArgs, ApiTuning, DatabaseArgs, RunArgs, SchedulerCmdArgs};
use anyhow::Context;
use picket_db::crypto::CredentialCipher;
use picket_db::{orgs, Db, DbConfig};
use picket_scheduler::metrics::SchedulerMetrics;
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Database created in the embedded cluster.
const EMBEDDED_DB: &str = "picket";
const SECRET_KEY_FILE: &str = "secret.key";
const ADMIN_TOKEN_FILE: &str = "admin-token";

pub async fn run(args: RunArgs, worker_log: Vec<(String, String)>) -> anyhow::Result<()> {
    // Before anything starts: a scheduler that cannot run here stops `run` at once.
    let scans_run = scheduler::preflight(&args.scheduler).await?;
    let stop = shutdown_signal();
    create_private_dir(&args.data_dir)?;
    let (url, local) = match &args.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let pg = LocalPg::start(&LocalPgConfig {
                root: args.data_dir.clone(),
            })
            .await
            .context(
                "no DATABASE_URL is set, so Picket tried to start its own PostgreSQL, which failed. \
                 Either set DATABASE_URL to a PostgreSQL server, or fix the problem above",
            )?;
            pg.ensure_database(EMBEDDED_DB).await?;
            (SecretString::from(pg.database_url(EMBEDDED_DB)), Some(pg))
        }
    };
    let result = run_platform(&args, &url, local.as_ref(), scans_run, worker_log, stop).await;
    if let Some(pg) = local {
        if let Err(e) = pg.stop().await {
            tracing::error!(error = %e, "stopping the embedded PostgreSQL failed");
        }
    }
    result
}

async fn run_platform(
    args: &RunArgs,
    url: &SecretString,
    local: Option<&LocalPg>,
    scans_run: &str,
    worker_log: Vec<(String, String)>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let db = connect(url, 16).await?;
    db.migrate().await.context("applying migrations")?;
    let key = match &args.secret_key {
        Some(k) => k.clone(),
        None => load_or_create_key(&args.data_dir.join(SECRET_KEY_FILE))?,
    };
    let cipher = Arc::new(CredentialCipher::from_hex(&key).context("PICKET_SECRET_KEY")?);
    let providers = scheduler::registry(&db, cipher.clone(), args.scheduler.ca_bundle()?.as_ref());
    let token_file = args.data_dir.join(ADMIN_TOKEN_FILE);
    let first_token = admin::bootstrap(&db, &token_file).await?;
    let org = orgs::get_by_slug(db.pool(), admin::DEFAULT_ORG)
        .await
        .context("looking up the default org")?;
    let demo = match args.demo {
        true => demo::ensure(&db, &cipher, org.id, &args.data_dir).await?,
        false => None,
    };
    // The repositories scans may read: the configured directories and the demo's. The API
    // refuses a file:// project elsewhere; the sandboxes see these and nothing else.
    let data_dir = std::path::absolute(&args.data_dir).context("locating the data directory")?;
    let demo_repo = Some(data_dir.join(demo::REPO_DIR)).filter(|r| args.demo && r.exists());
    let local_repos = args.api.local_repos.resolve(demo_repo)?;

    let listener = bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let sign_in = admin::sign_in_link(&db, &token_file).await?;
    announce(
        addr,
        local,
        first_token.as_ref(),
        &token_file,
        sign_in.as_ref(),
        scans_run,
    )?;

    let place = Placement {
        api: worker_addr(addr),
        api_url: api_url(addr),
        sandbox_dir: data_dir.join("sandboxes"),
        local_repos: local_repos.dirs().to_vec(),
        // Single-machine use: projects may live in local repositories (the demo does).
        allow_local_repos: true,
        worker_log,
        providers: Some(providers.clone()),
        public_url: Some(args.api.public_url.clone().unwrap_or_else(|| api_url(addr))),
    };
    let scheduler = {
        let (db, args, stop) = (db.clone(), args.clone(), stop.clone());
        tokio::spawn(async move {
            let done =
                scheduler::run(db, &args.scheduler, &args.api.engine, place, stop.clone()).await;
            if done.is_err() {
                // Without a scheduler no scan would ever run: stop the platform and say why.
                stop.cancel();
            }
            done
        })
    };
    if let Some(project) = demo {
        tokio::spawn(demo::report_when_done(
            db.clone(),
            org.id,
            project,
            Duration::from_secs(600),
        ));
    }
    let web_origin = web_origin(args.api.public_url.as_deref())?;
    // Single-machine use: webhooks reach this address unless told otherwise.
    let mut tuning = args.api.clone();
    tuning.public_url.get_or_insert_with(|| api_url(addr));
    let served = serve(
        listener,
        db,
        cipher,
        providers,
        &tuning,
        Sites {
            local_repos,
            web_origin,
        },
        stop.clone(),
    )
    .await;
    stop.cancel();
    let scheduled = scheduler.await.context("the scheduler panicked")?;
    served?;
    scheduled
}

/// The address workers on this machine reach the API at: loopback when it listens on all
/// addresses.
fn worker_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        ip if ip.is_unspecified() => {
            SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

pub async fn scheduler(
    args: SchedulerCmdArgs,
    worker_log: Vec<(String, String)>,
) -> anyhow::Result<()> {
    args.scheduler.check()?;
    let stop = shutdown_signal();
    let db = connect(&args.db.database_url, args.db.db_max_connections).await?;
    let api: SocketAddr = args
        .worker_api_url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|hostport| hostport.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    if args.scheduler.executor != scheduler::ExecutorKind::Kubernetes
        && !args.worker_api_url.starts_with(&format!("http://{api}"))
    {
        anyhow::bail!(
            "PICKET_WORKER_API_URL must be http://<IP address>:<port> for local executors, not {}",
            args.worker_api_url
        );
    }
    let local_repos = args.local_repos.resolve([])?;
    let place = Placement {
        api,
        api_url: args.worker_api_url.clone(),
        sandbox_dir: "/var/lib/picket/sandboxes".into(),
        local_repos: local_repos.dirs().to_vec(),
        // Only where an operator named directories (single-machine use).
        allow_local_repos: !local_repos.dirs().is_empty(),
        worker_log,
        providers: match &args.secret_key {
            Some(key) => Some(scheduler::registry(
                &db,
                Arc::new(CredentialCipher::from_hex(key).context("PICKET_SECRET_KEY")?),
                args.scheduler.ca_bundle()?.as_ref(),
            )),
            None => None,
        },
        public_url: args.public_url.clone(),
    };
    let metrics = Arc::new(SchedulerMetrics::default());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (PICKET_SCHEDULER_LISTEN)", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "scheduler endpoints listening");
    let ops = {
        let (router, stop) = (
            scheduler::ops_router(db.clone(), Arc::clone(&metrics)),
            stop.clone(),
        );
        tokio::spawn(async move {
            picket_api::serve(listener, router, async move { stop.cancelled().await }).await
        })
    };
    let done = scheduler::run_with(
        db,
        &args.scheduler,
        &args.engine,
        place,
        metrics,
        stop.clone(),
    )
    .await;
    stop.cancel();
    ops.await
        .context("the scheduler endpoints panicked")?
        .context("serving the scheduler endpoints")?;
    done
}

/// How workers on this machine reach the API: over loopback when it listens on all addresses.
fn api_url(addr: SocketAddr) -> String {
    format!("http://{}", worker_addr(addr))
}

pub async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    let cipher =
        Arc::new(CredentialCipher::from_hex(&args.secret_key).context("PICKET_SECRET_KEY")?);
    let ca_bundle = match &args.ca_bundle {
        Some(path) => Some(
            picket_worker::tls::CaBundle::read(path)
                .map_err(|e| anyhow::anyhow!("PICKET_CA_BUNDLE: {e}"))?,
        ),
        None => None,
    };
    let db = connect(&args.db.database_url, args.db.db_max_connections).await?;
    let providers = scheduler::registry(&db, cipher.clone(), ca_bundle.as_ref());
    let listener = bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "API listening");
    let local_repos = args.api.local_repos.resolve([])?;
    let web_origin = web_origin(args.api.public_url.as_deref())?;
    serve(
        listener,
        db,
        cipher,
        providers,
        &args.api,
        Sites {
            local_repos,
            web_origin,
        },
        stop,
    )
    .await
}

/// The web UI's origin (`scheme://host[:port]`) from `PICKET_PUBLIC_URL`, when set: the UI's
/// forms must come from it.
fn web_origin(public_url: Option<&str>) -> anyhow::Result<Option<String>> {
    public_url
        .map(|u| {
            url::Url::parse(u)
                .map(|u| u.origin().ascii_serialization())
                .with_context(|| format!("PICKET_PUBLIC_URL {u:?} is not a URL"))
        })
        .transpose()
}

pub async fn migrate(args: DatabaseArgs) -> anyhow::Result<()> {
    let db = connect(&args.database_url, 2).await?;
    db.migrate().await.context("applying migrations")?;
    tracing::info!("migrations applied");
    Ok(())
}

/// Where the server's requests may come from and reach: the local repositories `file://`
/// projects may name, and the web UI's origin (`PICKET_PUBLIC_URL`'s, when set).
struct Sites {
    local_repos: picket_api::local_repos::LocalRepoDirs,
    web_origin: Option<String>,
}

async fn serve(
    listener: tokio::net::TcpListener,
    db: Db,
    cipher: Arc<CredentialCipher>,
    providers: Arc<picket_vcs::Registry>,
    tuning: &ApiTuning,
    sites: Sites,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let Sites {
        local_repos,
        web_origin,
    } = sites;
    let cfg = picket_api::ApiConfig {
        body_limit_bytes: tuning.body_limit_bytes,
        public_url: tuning.public_url.clone(),
        webhook_secret_overlap: tuning.webhook_secret_overlap,
        ..Default::default()
    };
    let state = picket_api::AppState::new(db, cipher)
        .with_rule_engine(tuning.engine.config())
        .with_local_repo_dirs(local_repos)
        .with_providers(providers);
    let api = picket_api::router(state.clone(), &cfg);
    let web = picket_web::WebConfig {
        public_origin: web_origin,
        rules_dir: Some(tuning.engine.config().rules_dir),
        ..Default::default()
    };
    let router = picket_web::router(api, state.db().clone(), web);
    picket_api::serve(listener, router, async move { stop.cancelled().await })
        .await
        .context("serving the API")
}

pub(crate) async fn connect(url: &SecretString, max_connections: u32) -> anyhow::Result<Db> {
    let mut cfg = DbConfig::new(url.expose_secret());
    cfg.max_connections = max_connections;
    let db = Db::connect(&cfg)
        .await
        // The URL may carry a password: name the server's answer, never the URL.
        .context("connecting to PostgreSQL (check DATABASE_URL)")?;
    db.ping().await.context("PostgreSQL does not answer")?;
    Ok(db)
}

async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (set PICKET_LISTEN to another address)"))
}

/// Cancelled on Ctrl-C or SIGTERM.
fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch SIGTERM; Ctrl-C still stops");
                        let _ = ctrl_c.await;
                        t.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        t.cancel();
    });
    token
}

/// Creates the data directory with mode 0711: others may pass through it (the `postgres` user
/// must reach the embedded cluster inside) but not list it; the key and token files inside are
/// 0600 themselves.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))
}

/// Reads the credentials key, or generates one on first start (mode 0600, never overwritten).
fn load_or_create_key(path: &Path) -> anyhow::Result<SecretString> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(s) => return Ok(SecretString::from(s.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let key = CredentialCipher::generate_hex();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(key.expose_secret().as_bytes())?;
    f.sync_all()?;
    tracing::info!(path = %path.display(), "generated the credentials key");
    Ok(key)
}

fn announce(
    addr: SocketAddr,
    local: Option<&LocalPg>,
    first_token: Option<&SecretString>,
    token_file: &Path,
    sign_in: Option<&SecretString>,
    scans_run: &str,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "Picket is running.")?;
    match sign_in {
        Some(code) => writeln!(
            out,
            "  Web UI:   http://{}/sign-in/link?code={}   (one-time sign-in link, valid 15 min)",
            worker_addr(addr),
            code.expose_secret()
        )?,
        None => writeln!(
            out,
            "  Web UI:   http://{}/   (sign in with an API token)",
            worker_addr(addr)
        )?,
    }
    writeln!(
        out,
        "  API:      http://{addr}/api/v1   (OpenAPI at /api/v1/openapi.json)"
    )?;
    writeln!(out, "  Scans:    {scans_run}")?;
    match local {
        Some(pg) => writeln!(
            out,
            "  Database: embedded PostgreSQL in {}",
            pg.data_dir().display()
        )?,
        None => writeln!(out, "  Database: DATABASE_URL")?,
    }
    match first_token {
        Some(token) => {
            writeln!(
                out,
                "  Admin token for org \"default\" (shown once, also saved to {}):",
                token_file.display()
            )?;
            writeln!(out, "    {}", token.expose_secret())?;
        }
        None if token_file.exists() => {
            writeln!(out, "  Admin token: in {}", token_file.display())?;
        }
        None => {}
    }
    writeln!(
        out,
        "  Try:      curl -H \"Authorization: Bearer $(cat {})\" http://{addr}/api/v1/projects",
        token_file.display()
    )?;
    writeln!(out, "Press Ctrl-C to stop.")?;
    out.flush()?;
    Ok(())
}
