//! `PICKET_CA_BUNDLE` end to end: a git host whose certificate a private CA signed, cloned by the
//! real worker (`target/debug/picket`, real Semgrep, real API and PostgreSQL) in a local
//! sandbox, the host in a network namespace of the test's own (root needed), and in a Pod of the
//! Kubernetes API test server. Without the bundle the scan fails with a `clone_failed` that says
//! why; with it the scan succeeds.
//!
//! The scheduler here is its dispatch loop alone: the reaper, which would look at every sandbox
//! on the machine, is not started.

use picket_core::{InstallationId, Provider, ScanId, ScanState};
use picket_db::connections::{self, NewConnection};
use picket_db::projects::{self, NewProject};
use picket_db::scans::{self, ScanRecord};
use picket_db::Db;
use picket_scheduler::kube::{ensure_ca_bundle, parse_egress, KubeConfig, KubeExecutor};
use picket_scheduler::sandbox::{self, SandboxConfig, SandboxExecutor};
use picket_scheduler::{Executor, SchedulerConfig, WorkerCommand};
use picket_test_support::{bare_repo, file, GitServer, History, ServerConfig, TestCa};
use picket_tests::kube_api::{Kind, KubeApi, KubeApiOptions};
use picket_tests::picket_binary;
use picket_tests::{semgrep_binary, TestApp, RULES_DIR};
use sqlx::PgPool;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The test git host's network: the host side and the namespace side of its veth.
const HOST_SIDE: Ipv4Addr = Ipv4Addr::new(10, 238, 0, 1);
const GIT_HOST: Ipv4Addr = Ipv4Addr::new(10, 238, 0, 2);
const GIT_PORT: u16 = 8443;
/// The scans' sandboxes take their /30s from here.
const SANDBOX_SUBNET: Ipv4Addr = Ipv4Addr::new(10, 239, 0, 0);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository with one Python file the rule pack has a finding in.
fn repository(root: &Path, name: &str) {
    let mut h = History::default();
    h.commit(
        "main",
        &[],
        &[file(
            "app/run.py",
            "import subprocess\n\n\ndef run(cmd):\n    return eval(cmd)\n",
        )],
    );
    h.import(&bare_repo(root, name, true));
}

/// An HTTPS git server in a network namespace of its own, routed through this machine, with a
/// certificate for its address that `ca` signed. Deleted with the namespace when dropped.
struct PrivateGitHost {
    ns: String,
    veth: String,
    server: Option<GitServer>,
}

impl PrivateGitHost {
    fn start(ns: &str, veth: &str, repos: &Path, ca: &TestCa) -> PrivateGitHost {
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
        let _ = Command::new("ip").args(["link", "del", veth]).output();
        ip(&["netns", "add", ns]);
        let mut host = PrivateGitHost {
            ns: ns.to_owned(),
            veth: veth.to_owned(),
            server: None,
        };
        ip(&[
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ]);
        ip(&["addr", "add", &format!("{HOST_SIDE}/30"), "dev", veth]);
        ip(&["link", "set", veth, "up"]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{GIT_HOST}/30"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", ns, "link", "set", "eth0", "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            ns,
            "route",
            "add",
            "default",
            "via",
            &HOST_SIDE.to_string(),
        ]);
        // The listening socket is made inside the namespace by a thread that enters it; the
        // server's threads then serve it from here.
        let path = format!("/run/netns/{ns}");
        let listener = std::thread::spawn(move || {
            let netns = std::fs::File::open(&path).expect("the namespace");
            nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("enter the namespace");
            TcpListener::bind((GIT_HOST, GIT_PORT)).expect("bind in the namespace")
        })
        .join()
        .expect("the listening thread");
        let server = GitServer::serve_on(
            listener,
            repos,
            ServerConfig {
                tls: Some(ca.server_config(&[&GIT_HOST.to_string()])),
                ..ServerConfig::default()
            },
        );
        host.server = Some(server);
        host
    }

    fn server(&self) -> &GitServer {
        self.server.as_ref().expect("started")
    }
}

impl Drop for PrivateGitHost {
    fn drop(&mut self) {
        drop(self.server.take());
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .output();
    }
}

/// A project of org `a` on `clone_url`, without credentials; returns its queued initial scan.
async fn project(app: &TestApp, name: &str, clone_url: &str) -> ScanId {
    let conn = connections::create(
        &app.pool,
        &app.cipher(),
        &NewConnection {
            org_id: app.org_id,
            provider: Provider::Git,
            name: name.into(),
            base_url: String::new(),
            credentials: None,
            follow_installations: false,
        },
    )
    .await
    .unwrap();
    let mut tx = app.pool.begin().await.unwrap();
    let added = projects::add_many(
        &mut tx,
        app.org_id,
        &[NewProject {
            connection_id: conn.id,
            provider_repo_id: name.into(),
            full_name: format!("company/{name}"),
            clone_url: clone_url.into(),
            default_branch: "main".into(),
        }],
        None,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap()
    .expect("the project is added");
    tx.commit().await.unwrap();
    added[0].initial_scan.id
}

/// Runs the dispatch loop with `executor` until `scan` has ended (a failed full scan is retried
/// once first), then stops it.
/// The test database's installation identity (drawn by its migration).
async fn installation(app: &TestApp) -> InstallationId {
    picket_db::installation::id(&app.pool).await.unwrap()
}

async fn run_until_done<E: Executor>(app: &TestApp, executor: E, scan: ScanId) -> ScanRecord {
    let mut cfg = SchedulerConfig::new("ca-bundle-e2e");
    cfg.slots = 1;
    cfg.poll = Duration::from_millis(200);
    cfg.retry_backoff = Duration::from_millis(100);
    cfg.scan_timeout = Duration::from_secs(300);
    let stop = CancellationToken::new();
    let db = Db::from_pool(app.pool.clone());
    let (_, record) = tokio::join!(
        picket_scheduler::dispatch::run(db, Arc::new(executor), Arc::new(cfg), stop.clone()),
        async {
            let deadline = Instant::now() + Duration::from_secs(240);
            let record = loop {
                let s = scans::get(&app.pool, app.org_id, scan).await.unwrap();
                if s.state.is_terminal() || Instant::now() > deadline {
                    break s;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            stop.cancel();
            record
        }
    );
    record
}

/// The worker as `picket run` starts it in a sandbox: this build's binary with the pinned
/// engine and the rule pack, each lent read-only at its real path.
fn sandbox_executor(
    installation: InstallationId,
    root: &Path,
    api: SocketAddr,
    ca_bundle: Option<&str>,
) -> impl std::future::Future<Output = SandboxExecutor> {
    let exe = picket_binary();
    let semgrep = std::fs::canonicalize(semgrep_binary()).unwrap();
    let rules = std::fs::canonicalize(RULES_DIR).unwrap();
    let mut cfg = SandboxConfig::new(installation, root.to_path_buf(), api);
    cfg.subnet = SANDBOX_SUBNET;
    cfg.egress = vec![format!("{GIT_HOST}/32:{GIT_PORT}").parse().unwrap()];
    cfg.readonly = vec![exe.clone(), rules.clone()];
    cfg.readonly.extend(sandbox::engine_paths(&semgrep));
    cfg.ca_bundle = ca_bundle.map(|pem| pem.as_bytes().to_vec());
    let worker = WorkerCommand {
        program: exe,
        args: vec!["worker".into()],
        env: vec![
            ("PICKET_SEMGREP".into(), semgrep.display().to_string()),
            ("PICKET_RULES_DIR".into(), rules.display().to_string()),
        ],
    };
    async move {
        SandboxExecutor::new(cfg, worker)
            .await
            .expect("this machine can sandbox (root, ip, nft, bwrap)")
    }
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_sandboxed_scan_clones_from_a_private_ca_host_only_with_the_bundle(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let api: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let repos = tempfile::tempdir().unwrap();
    repository(repos.path(), "app");
    let ca = TestCa::new("Company Issuing CA");
    let host = PrivateGitHost::start("pkt-ca-git", "pktcag", repos.path(), &ca);
    let url = host.server().url("app");
    assert_eq!(url, format!("https://{GIT_HOST}:{GIT_PORT}/app"));
    let root = tempfile::tempdir().unwrap();

    // Without the bundle: both attempts fail at the TLS handshake, and the scan says why.
    let refused = project(&app, "without-bundle", &url).await;
    let scan = run_until_done(
        &app,
        sandbox_executor(installation(&app).await, root.path(), api, None).await,
        refused,
    )
    .await;
    assert_eq!(scan.state, ScanState::Failed, "{scan:?}");
    assert_eq!(scan.error_code.as_deref(), Some("clone_failed"), "{scan:?}");
    let message = scan.error_message.unwrap_or_default();
    assert!(
        message.contains("TLS")
            && message.contains("certificate")
            && message.contains("PICKET_CA_BUNDLE"),
        "{message}"
    );
    assert_eq!(host.server().stats.requests.load(Ordering::Relaxed), 0);

    // With it: cloned and scanned.
    let trusted = project(&app, "with-bundle", &url).await;
    let executor = sandbox_executor(
        installation(&app).await,
        root.path(),
        api,
        Some(&ca.cert_pem()),
    )
    .await;
    let scan = run_until_done(&app, executor, trusted).await;
    assert_eq!(scan.state, ScanState::Succeeded, "{scan:?}");
    assert!(host.server().stats.requests.load(Ordering::Relaxed) >= 2);
    let findings = app
        .admin()
        .get(&format!("/api/v1/projects/{}/findings", scan.project_id.0))
        .await
        .expect(200);
    assert!(
        findings["items"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["path"] == "app/run.py")),
        "{findings}"
    );
    // Every sandbox is gone; the bundle's copy stays in the root for the next scan.
    let left: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["ca-bundle.pem"]);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_scan_pod_trusts_the_bundle_through_one_config_map_made_at_start(pool: PgPool) {
    const NS: &str = "picket-scans";
    const IMAGE: &str =
        "registry.test/picket@sha256:5f2d0c2d8b8e4c1f9e0a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e";
    let app = TestApp::start(pool).await;
    let repos = tempfile::tempdir().unwrap();
    repository(repos.path(), "app");
    let ca = TestCa::new("Company Issuing CA");
    // The test kubelet runs Pods as local processes: the host is on this machine's loopback.
    let server = GitServer::start(
        repos.path(),
        ServerConfig {
            tls: Some(ca.server_config(&["127.0.0.1"])),
            ..ServerConfig::default()
        },
    );
    let scan_id = project(&app, "app", &server.url("app")).await;
    let kube = KubeApi::start(KubeApiOptions::new(NS).image(IMAGE, picket_binary())).await;

    // At start: the ConfigMap, once; a second start (or a replica) finds it.
    let pem = ca.cert_pem();
    let name = ensure_ca_bundle(kube.client(), NS, pem.as_bytes())
        .await
        .unwrap();
    assert_eq!(
        ensure_ca_bundle(kube.client(), NS, pem.as_bytes())
            .await
            .unwrap(),
        name
    );
    assert_eq!(kube.objects(Kind::ConfigMap).len(), 1);
    kube.clear_requests();

    let api_port = app.base.rsplit(':').next().unwrap();
    let mut cfg = KubeConfig::new(NS, IMAGE, "picket-worker", &app.base);
    cfg.egress = parse_egress(&format!("127.0.0.1/32:{api_port}")).unwrap();
    cfg.env = vec![
        (
            "PICKET_SEMGREP".into(),
            semgrep_binary().display().to_string(),
        ),
        ("PICKET_RULES_DIR".into(), RULES_DIR.into()),
    ];
    cfg.ca_bundle = Some(name);
    let installation = installation(&app).await;
    let executor = KubeExecutor::new(kube.client(), installation.clone(), cfg).unwrap();
    let scan = run_until_done(&app, executor, scan_id).await;
    let env = picket_scheduler::executor::env_name(&installation, scan_id, 1);
    assert_eq!(
        scan.state,
        ScanState::Succeeded,
        "{scan:?}\nworker output:\n{}",
        kube.pod_logs(&env)
    );
    assert!(server.stats.requests.load(Ordering::Relaxed) >= 2);
    // Per scan, still the four writes: nothing for the bundle.
    let deadline = Instant::now() + Duration::from_secs(30);
    while kube.writes().len() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let writes: Vec<String> = kube.writes().iter().map(|r| r.short()).collect();
    assert_eq!(
        writes,
        [
            "POST secrets".to_owned(),
            "POST networkpolicies".to_owned(),
            "POST pods".to_owned(),
            format!("DELETE secrets/{env}"),
        ]
    );
}
