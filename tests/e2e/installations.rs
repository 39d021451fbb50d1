//! Two installations of Picket on one machine (two databases, two APIs, two schedulers), each
//! running real scans (the real worker binary, Semgrep, PostgreSQL) and reaping every 200 ms:
//! in local sandboxes on this machine (root), and as Pods in one namespace of the Kubernetes
//! API test server. Neither installation's reaper touches the other's environments, so neither
//! loses a scan.
//!
//! The worker is the `picket` binary of this build (`target/debug/picket`, built by `make test`).

use crate::kubernetes::{config, sample_repo, IMAGE, NS};
use picket_core::{Provider, ScanId, ScanState};
use picket_db::connections::{self, NewConnection};
use picket_db::projects::{self, NewProject};
use picket_db::{installation, Db};
use picket_scheduler::kube::{parse_egress, KubeExecutor};
use picket_scheduler::sandbox::{self, SandboxConfig, SandboxExecutor};
use picket_scheduler::{Executor, SchedulerConfig, WorkerCommand};
use picket_tests::kube_api::{KubeApi, KubeApiOptions};
use picket_tests::picket_binary;
use picket_tests::{semgrep_binary, TestApp, RULES_DIR};
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Scans each installation runs.
const SCANS: usize = 2;

/// A second, migrated database on the test server: another installation. Dropped by
/// [`OtherDb::drop_now`].
pub(crate) struct OtherDb {
    admin: PgPool,
    name: String,
    pool: PgPool,
}

impl OtherDb {
    async fn create(admin: &PgPool) -> OtherDb {
        let name = format!("picket_other_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin)
            .await
            .unwrap();
        let opts = (*admin.connect_options()).clone().database(&name);
        let pool = PgPool::connect_with(opts).await.unwrap();
        picket_db::MIGRATOR.run(&pool).await.unwrap();
        OtherDb {
            admin: admin.clone(),
            name,
            pool,
        }
    }

    async fn drop_now(self) {
        self.pool.close().await;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&self.admin)
        .await
        .unwrap();
    }
}

/// `n` projects of the org on a local repository; their queued initial scans.
pub(crate) async fn projects_on(app: &TestApp, repo: &Path, n: usize) -> Vec<ScanId> {
    let conn = connections::create(
        &app.pool,
        &app.cipher(),
        &NewConnection {
            org_id: app.org_id,
            provider: Provider::Git,
            name: "local".into(),
            base_url: String::new(),
            credentials: None,
            follow_installations: false,
        },
    )
    .await
    .unwrap();
    let new: Vec<NewProject> = (0..n)
        .map(|i| NewProject {
            connection_id: conn.id,
            provider_repo_id: format!("sample-{i}"),
            full_name: format!("local/sample-{i}"),
            clone_url: format!("file://{}", repo.display()),
            default_branch: "main".into(),
        })
        .collect();
    let mut tx = app.pool.begin().await.unwrap();
    let added = projects::add_many(
        &mut tx,
        app.org_id,
        &new,
        None,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap()
    .expect("the projects are added");
    tx.commit().await.unwrap();
    added.iter().map(|p| p.initial_scan.id).collect()
}

pub(crate) fn scheduler_config(owner: &str) -> SchedulerConfig {
    let mut cfg = SchedulerConfig::new(owner);
    cfg.slots = SCANS;
    cfg.poll = Duration::from_millis(200);
    cfg.scan_timeout = Duration::from_secs(300);
    // Reaping all the time: a reaper that took the other installation's environments for
    // leftovers would destroy them mid-scan.
    cfg.reap_every = Duration::from_millis(200);
    cfg
}

/// Runs both installations' schedulers until every scan of both has ended; returns each
/// installation's scans as (state, attempt, error).
async fn run_both<A: Executor, B: Executor>(
    (a, a_exec, a_scans): (&TestApp, A, &[ScanId]),
    (b, b_exec, b_scans): (&TestApp, B, &[ScanId]),
) -> Vec<(ScanState, i32, Option<String>)> {
    let stop = CancellationToken::new();
    let a_run = tokio::spawn(picket_scheduler::run(
        Db::from_pool(a.pool.clone()),
        a_exec,
        scheduler_config("installation-a"),
        stop.clone(),
    ));
    let b_run = tokio::spawn(picket_scheduler::run(
        Db::from_pool(b.pool.clone()),
        b_exec,
        scheduler_config("installation-b"),
        stop.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(400);
    let mut ended = Vec::new();
    for (app, scans) in [(a, a_scans), (b, b_scans)] {
        for scan in scans {
            loop {
                let (state, attempt, code): (String, i32, Option<String>) = sqlx::query_as(
                    "SELECT state::text, attempt, error_message FROM scans WHERE id = $1",
                )
                .bind(scan.0)
                .fetch_one(&app.pool)
                .await
                .unwrap();
                let state: ScanState = state.parse().unwrap();
                if state.is_terminal() || Instant::now() > deadline {
                    ended.push((state, attempt, code));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    stop.cancel();
    a_run.await.unwrap();
    b_run.await.unwrap();
    ended
}

fn all_succeeded_first_time(ended: &[(ScanState, i32, Option<String>)]) {
    assert_eq!(ended.len(), 2 * SCANS);
    for e in ended {
        assert_eq!(
            (e.0, e.1),
            (ScanState::Succeeded, 1),
            "a scan was lost or retried: {ended:?}"
        );
    }
}

/// The real worker in a sandbox: this build's binary, the pinned engine and the rule pack
/// lent read-only, local repositories allowed.
pub(crate) fn sandbox_executor_config(
    app: &TestApp,
    installation: picket_core::InstallationId,
    root: &Path,
    claims: &Path,
    repo: &Path,
) -> (SandboxConfig, WorkerCommand) {
    let exe = std::fs::canonicalize(picket_binary()).unwrap();
    let semgrep = std::fs::canonicalize(semgrep_binary()).unwrap();
    let rules = std::fs::canonicalize(RULES_DIR).unwrap();
    let api = app.base.trim_start_matches("http://").parse().unwrap();
    let mut cfg = SandboxConfig::new(installation, root.to_path_buf(), api);
    // Not the default subnet of `picket run`, which may be up on this machine.
    cfg.subnet = std::net::Ipv4Addr::new(10, 240, 0, 0);
    cfg.address_claims = claims.to_path_buf();
    cfg.readonly = vec![exe.clone(), rules.clone()];
    cfg.readonly.extend(sandbox::engine_paths(&semgrep));
    cfg.local_repos = vec![repo.to_path_buf()];
    let worker = WorkerCommand {
        program: exe,
        args: vec!["worker".into()],
        env: vec![
            ("PICKET_SEMGREP".into(), semgrep.display().to_string()),
            ("PICKET_RULES_DIR".into(), rules.display().to_string()),
            ("PICKET_ALLOW_LOCAL_REPOS".into(), "true".into()),
        ],
    };
    (cfg, worker)
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn two_installations_sandboxing_on_one_machine_lose_no_scan(pool: PgPool) {
    let other = OtherDb::create(&pool).await;
    let a = TestApp::start(pool).await;
    let b = TestApp::start(other.pool.clone()).await;
    let (ia, ib) = (
        installation::id(&a.pool).await.unwrap(),
        installation::id(&b.pool).await.unwrap(),
    );
    assert_ne!(ia, ib);
    let dir = tempfile::tempdir().unwrap();
    let repo = std::fs::canonicalize(sample_repo(dir.path())).unwrap();
    let (a_scans, b_scans) = (
        projects_on(&a, &repo, SCANS).await,
        projects_on(&b, &repo, SCANS).await,
    );
    // Two data directories; one machine, so one file of address claims.
    let (root_a, root_b, machine) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let claims = machine.path().join("addresses.lock");
    let (cfg_a, worker_a) = sandbox_executor_config(&a, ia, root_a.path(), &claims, &repo);
    let (cfg_b, worker_b) = sandbox_executor_config(&b, ib, root_b.path(), &claims, &repo);
    let exec_a = SandboxExecutor::new(cfg_a, worker_a)
        .await
        .expect("this machine can sandbox (root, ip, nft, bwrap)");
    let exec_b = SandboxExecutor::new(cfg_b, worker_b).await.unwrap();

    let ended = run_both((&a, exec_a, &a_scans), (&b, exec_b, &b_scans)).await;
    all_succeeded_first_time(&ended);
    for root in [root_a.path(), root_b.path()] {
        let left: Vec<PathBuf> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
    drop((a, b));
    other.drop_now().await;
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn two_installations_in_one_kubernetes_namespace_lose_no_scan(pool: PgPool) {
    let other = OtherDb::create(&pool).await;
    let a = TestApp::start(pool).await;
    let b = TestApp::start(other.pool.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = sample_repo(dir.path());
    let (a_scans, b_scans) = (
        projects_on(&a, &repo, SCANS).await,
        projects_on(&b, &repo, SCANS).await,
    );
    // One namespace, both installations' Pods in it.
    let kube = KubeApi::start(KubeApiOptions::new(NS).image(IMAGE, picket_binary())).await;
    let executor = |app: &TestApp, installation| {
        let port = app.base.rsplit(':').next().unwrap();
        let mut cfg = config(&app.base);
        cfg.egress = parse_egress(&format!("127.0.0.1/32:{port}")).unwrap();
        cfg.env = vec![
            ("PICKET_ALLOW_LOCAL_REPOS".into(), "true".into()),
            (
                "PICKET_SEMGREP".into(),
                semgrep_binary().display().to_string(),
            ),
            ("PICKET_RULES_DIR".into(), RULES_DIR.into()),
        ];
        KubeExecutor::new(kube.client(), installation, cfg).unwrap()
    };
    let exec_a = executor(&a, installation::id(&a.pool).await.unwrap());
    let exec_b = executor(&b, installation::id(&b.pool).await.unwrap());

    let ended = run_both((&a, exec_a, &a_scans), (&b, exec_b, &b_scans)).await;
    all_succeeded_first_time(&ended);
    // Both installations' objects were in the namespace together.
    let created = kube
        .writes()
        .iter()
        .filter(|w| w.short() == "POST pods")
        .count();
    assert_eq!(created, 2 * SCANS, "{:#?}", kube.writes());
    kube.wait_empty(Duration::from_secs(30)).await;
    drop((a, b));
    other.drop_now().await;
}
