//! The Kubernetes executor against the test API server (`picket_tests::kube_api`), whose
//! kubelet runs Pods as local processes: a real scan end to end (real API, PostgreSQL, worker,
//! Semgrep), the exact API writes, idempotent launches, deadlines, the reaper after a crash,
//! and every built object against the official schemas.
//!
//! The worker is the `picket` binary of this build (`target/debug/picket`): build it first with
//! `cargo build -p picket-cli --bin picket` (`make test` does).
//!
//! `real_cluster_*` runs only with `PICKET_TEST_KUBECONFIG` set (see
//! docs/kubernetes-testing.md); with `PICKET_TEST_REQUIRE_K8S=1` a missing kubeconfig fails it.

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::ApiResource;
use picket_core::{InstallationId, OrgId, Provider, ScanId, ScanState};
use picket_db::connections::{self, NewConnection};
use picket_db::projects::{self, NewProject};
use picket_db::{queue, scans, Db};
use picket_scheduler::kube::{
    build, parse_egress, ApiPeer, Cidr, DnsEgress, KubeConfig, KubeExecutor,
};
use picket_scheduler::reaper::{self, Reaped};
use picket_scheduler::{Environment, ExecError, Executor, Launch, SchedulerConfig};
use picket_tests::kube_api::{Kind, KubeApi, KubeApiOptions};
use picket_tests::picket_binary;
use picket_tests::{semgrep_binary, TestApp, RULES_DIR};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub(crate) const NS: &str = "picket-scans";
pub(crate) const IMAGE: &str =
    "registry.test/picket@sha256:5f2d0c2d8b8e4c1f9e0a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e";

/// A script standing in for an image: `#!/bin/sh` + `body`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

pub(crate) fn config(api_url: &str) -> KubeConfig {
    let mut cfg = KubeConfig::new(NS, IMAGE, "picket-worker", api_url);
    cfg.egress = parse_egress("127.0.0.1/32:443").unwrap();
    cfg.api_peer = Some(
        ApiPeer::parse("picket/app.kubernetes.io/name=picket,app.kubernetes.io/component=api:8080")
            .unwrap(),
    );
    cfg
}

/// The installation of the tests' executors that run without a database.
fn installation() -> InstallationId {
    "7e5700000001".parse().unwrap()
}

fn launch(scan: ScanId, attempt: i32, deadline: Duration) -> Launch {
    Launch {
        installation: installation(),
        scan_id: scan,
        attempt,
        org_id: OrgId::new(),
        token: SecretString::from("pks_test-token-not-valid"),
        deadline,
    }
}

/// A git repository holding the demo's sample application (real Code and Secrets findings).
pub(crate) fn sample_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("sample-app");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/cli/demo/sample-app");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=Picket test",
                "-c",
                "user.email=test@picket.invalid",
            ])
            .args(args)
            .current_dir(&repo)
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let out = Command::new("cp")
        .arg("-r")
        .arg(src)
        .arg(&repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "Sample application"]);
    repo
}

/// A project on a local repository; returns its queued initial scan.
async fn local_project(app: &TestApp, repo: &Path) -> ScanId {
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
    let mut tx = app.pool.begin().await.unwrap();
    let added = projects::add_many(
        &mut tx,
        app.org_id,
        &[NewProject {
            connection_id: conn.id,
            provider_repo_id: "sample-app".into(),
            full_name: "local/sample-app".into(),
            clone_url: format!("file://{}", repo.display()),
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

fn shorts(kube: &KubeApi) -> Vec<String> {
    kube.writes().iter().map(|r| r.short()).collect()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_scan_runs_end_to_end_as_a_pod_in_four_writes(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = sample_repo(dir.path());
    let scan_id = local_project(&app, &repo).await;
    let kube = KubeApi::start(KubeApiOptions::new(NS).image(IMAGE, picket_binary())).await;
    let api_port = app.base.rsplit(':').next().unwrap();
    let mut cfg = config(&app.base);
    cfg.egress = parse_egress(&format!("127.0.0.1/32:{api_port}")).unwrap();
    cfg.env = vec![
        ("PICKET_LOG_FORMAT".into(), "json".into()),
        ("PICKET_ALLOW_LOCAL_REPOS".into(), "true".into()),
        (
            "PICKET_SEMGREP".into(),
            semgrep_binary().display().to_string(),
        ),
        ("PICKET_RULES_DIR".into(), RULES_DIR.into()),
    ];
    let installation = picket_db::installation::id(&app.pool).await.unwrap();
    let executor = KubeExecutor::new(kube.client(), installation.clone(), cfg).unwrap();
    let mut sched = SchedulerConfig::new("k8s-e2e");
    sched.slots = 2;
    sched.poll = Duration::from_millis(200);
    sched.scan_timeout = Duration::from_secs(300);
    let stop = CancellationToken::new();
    let db = Db::from_pool(app.pool.clone());

    let started = Instant::now();
    let (_, (scan, elapsed)) = tokio::join!(
        picket_scheduler::run(db, executor, sched, stop.clone()),
        async {
            let deadline = Instant::now() + Duration::from_secs(240);
            let scan = loop {
                let s = scans::get(&app.pool, app.org_id, scan_id).await.unwrap();
                if s.state.is_terminal() || Instant::now() > deadline {
                    break s;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let elapsed = started.elapsed();
            // The dispatcher tears the environment down once the Pod has ended.
            let teardown = Instant::now() + Duration::from_secs(30);
            while !shorts(&kube).iter().any(|w| w.starts_with("DELETE"))
                && Instant::now() < teardown
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stop.cancel();
            (scan, elapsed)
        }
    );
    let name = picket_scheduler::executor::env_name(&installation, scan_id, 1);
    assert_eq!(
        scan.state,
        ScanState::Succeeded,
        "{scan:?}\nworker output:\n{}",
        kube.pod_logs(&name)
    );
    let findings = app.count("findings").await;
    assert!(findings > 0, "no findings stored");
    eprintln!("kubernetes e2e: scan succeeded in {elapsed:?} with {findings} findings");

    // Exactly four writes: three creates in order, one delete that cascades.
    assert_eq!(
        shorts(&kube),
        [
            "POST secrets".to_owned(),
            "POST networkpolicies".to_owned(),
            "POST pods".to_owned(),
            format!("DELETE secrets/{name}"),
        ]
    );
    // Completion was watched, never polled: no GET of the Pod by name.
    let requests = kube.requests();
    assert!(
        requests.iter().any(|r| r.method == "GET"
            && r.path.ends_with("/pods")
            && r.query.contains("watch=true")
            && r.query
                .contains(&format!("fieldSelector=metadata.name%3D{name}"))),
        "{requests:#?}"
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with(&format!("/pods/{name}"))),
        "{requests:#?}"
    );
    // The garbage collector removes the Pod and the NetworkPolicy with their owner.
    kube.wait_empty(Duration::from_secs(20)).await;
}

/// Launching twice finds the first objects; the watch reports exit codes, deadlines and
/// deletions; the server refuses what the API server would.
#[tokio::test]
async fn launches_are_idempotent_and_endings_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    const FAILS: &str = "registry.test/fails@sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const SLEEPS: &str = "registry.test/sleeps@sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const CHECKS_ENV: &str =
        "registry.test/env@sha256:3333333333333333333333333333333333333333333333333333333333333333";
    let kube = KubeApi::start(
        KubeApiOptions::new(NS)
            .image(FAILS, script(dir.path(), "fails", "exit 3"))
            .image(SLEEPS, script(dir.path(), "sleeps", "exec sleep 600"))
            .image(
                CHECKS_ENV,
                script(
                    dir.path(),
                    "env",
                    r#"[ "$1" = worker ] && [ -z "${PICKET_SCAN_TOKEN+set}" ] \
                       && [ "$(cat "$PICKET_SCAN_TOKEN_FILE")" = pks_test-token-not-valid ] \
                       && [ "$PICKET_API_URL" = http://api.test ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ] \
                       && [ "$HOME" = "$TMPDIR" ] && [ "$(pwd)" = "$TMPDIR" ] && [ "$EXTRA" = yes ]"#,
                ),
            ),
    )
    .await;
    let with_image = |image: &str| {
        let mut cfg = config("http://api.test");
        cfg.image = image.into();
        cfg.env = vec![("EXTRA".into(), "yes".into())];
        KubeExecutor::new(kube.client(), installation(), cfg).unwrap()
    };

    // The worker's environment is the Pod's, paths on the emptyDir; the token is no variable
    // but a file of the mounted Secret.
    let exec = with_image(CHECKS_ENV);
    let l = launch(ScanId::new(), 1, Duration::from_secs(60));
    let mut env = exec.launch(&l).await.unwrap();
    let exit = env.wait().await.unwrap();
    assert!(exit.success, "{exit:?}: {}", kube.pod_logs(&l.env_name()));
    assert_eq!(exit.detail, "exit code 0");
    env.teardown().await;
    kube.wait_empty(Duration::from_secs(10)).await;
    kube.clear_requests();

    // A failing worker; launching the same attempt again creates nothing new.
    let exec = with_image(FAILS);
    let l = launch(ScanId::new(), 1, Duration::from_secs(60));
    let mut first = exec.launch(&l).await.unwrap();
    let mut again = exec.launch(&l).await.unwrap();
    let name = l.env_name();
    assert_eq!(
        shorts(&kube),
        [
            "POST secrets",
            "POST networkpolicies",
            "POST pods",
            "POST secrets",
            "POST networkpolicies",
            "POST pods"
        ]
    );
    assert_eq!(kube.objects(Kind::Pod).len(), 1);
    let exit = first.wait().await.unwrap();
    assert_eq!((exit.success, exit.detail.as_str()), (false, "exit code 3"));
    assert_eq!(again.wait().await.unwrap(), exit);
    // wait() is cancel-safe and keeps its answer.
    assert_eq!(first.wait().await.unwrap(), exit);
    drop(again);
    first.teardown().await;
    kube.wait_empty(Duration::from_secs(10)).await;

    // The Pod's own deadline stops it even without the scheduler.
    let exec = with_image(SLEEPS);
    let l = launch(ScanId::new(), 1, Duration::from_secs(1));
    let mut env = exec.launch(&l).await.unwrap();
    let t = Instant::now();
    let exit = tokio::time::timeout(Duration::from_secs(20), env.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (exit.success, exit.detail.as_str()),
        (false, "DeadlineExceeded (exit code 143)")
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    env.teardown().await;

    // A Pod deleted under a running scan is a lost worker.
    let l = launch(ScanId::new(), 1, Duration::from_secs(600));
    let mut env = exec.launch(&l).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(kube.client(), NS);
    pods.delete(&l.env_name(), &DeleteParams::default())
        .await
        .unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(20), env.wait())
        .await
        .unwrap();
    match &lost {
        Err(ExecError::Backend(_)) => {}
        Ok(exit) if !exit.success && exit.detail.starts_with("deleted") => {}
        _ => panic!("a deleted Pod was reported as {lost:?}"),
    }
    env.teardown().await;
    kube.wait_empty(Duration::from_secs(10)).await;

    // The server answers like the API server: 404 and 409 as Status objects, 422 for an
    // object the schemas refuse, 403 for a Pod the restricted profile refuses.
    let secrets: Api<Secret> = Api::namespaced(kube.client(), NS);
    let err = secrets.get("nope").await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"),
        "{err}"
    );
    let secret = build::secret(&config("http://x"), &l);
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let err = secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err}"
    );
    secrets
        .delete(&name, &DeleteParams::background())
        .await
        .unwrap_err();
    secrets
        .delete(&l.env_name(), &DeleteParams::background())
        .await
        .unwrap();
    let raw: Api<DynamicObject> =
        Api::namespaced_with(kube.client(), NS, &ApiResource::erase::<Pod>(&()));
    let mut bogus: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bogus"},
        "spec": {"containers": [{"name": "c", "image": "x", "bogusField": true}]},
    }))
    .unwrap();
    let err = raw
        .create(&PostParams::default(), &bogus)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422 && s.reason == "Invalid"),
        "{err}"
    );
    bogus.data = json!({"spec": {"containers": [{"name": "c", "image": "x"}]}});
    let err = raw
        .create(&PostParams::default(), &bogus)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403 && s.reason == "Forbidden"),
        "{err}"
    );
    kube.wait_empty(Duration::from_secs(10)).await;
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_reaper_deletes_what_a_crash_left_behind(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let db = Db::from_pool(app.pool.clone());
    let dir = tempfile::tempdir().unwrap();
    let kube = KubeApi::start(
        KubeApiOptions::new(NS).image(IMAGE, script(dir.path(), "sleeps", "exec sleep 600")),
    )
    .await;
    let exec = KubeExecutor::new(kube.client(), installation(), config("http://api.test")).unwrap();

    // A live scan (claimed, attempt 1), an unknown one, and an orphan whose Secret is gone.
    let repo = sample_repo(dir.path());
    let live = local_project(&app, &repo).await;
    let claimed = queue::claim(&app.pool, "crashed", Duration::from_secs(300))
        .await
        .unwrap()
        .expect("the scan is claimable");
    assert_eq!(claimed.scan.id, live);
    let live_launch = launch(live, 1, Duration::from_secs(600));
    let unknown = launch(ScanId::new(), 1, Duration::from_secs(600));
    let orphan = launch(ScanId::new(), 2, Duration::from_secs(600));
    for l in [&live_launch, &unknown, &orphan] {
        // The scheduler crashes: the environments are never torn down.
        drop(exec.launch(l).await.unwrap());
    }
    let secrets: Api<Secret> = Api::namespaced(kube.client(), NS);
    secrets
        .delete(
            &orphan.env_name(),
            &DeleteParams {
                propagation_policy: Some(kube::api::PropagationPolicy::Orphan),
                ..DeleteParams::default()
            },
        )
        .await
        .unwrap();
    let policies: Api<NetworkPolicy> = Api::namespaced(kube.client(), NS);
    assert!(policies
        .get(&orphan.env_name())
        .await
        .unwrap()
        .metadata
        .owner_references
        .is_none());

    let envs = exec.list().await.unwrap();
    let mut listed: Vec<_> = envs.iter().map(|e| (e.name.clone(), e.scan)).collect();
    listed.sort();
    let mut expected: Vec<_> = [&live_launch, &unknown, &orphan]
        .iter()
        .map(|l| (l.env_name(), Some((l.scan_id, l.attempt))))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert!(envs.iter().all(|e| e.created.is_some()));

    kube.clear_requests();
    let reaped = reaper::reap(&db, &exec, Duration::from_secs(3600)).await;
    assert_eq!(
        reaped,
        Reaped {
            kept: 1,
            destroyed: 2,
            failed: 0
        }
    );
    assert_eq!(kube.writes().len(), 6, "{:#?}", kube.writes());
    let live_objects = || {
        ["secrets", "networkpolicies", "pods"]
            .map(|k| format!("{k}/{}", live_launch.env_name()))
            .to_vec()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while kube.names() != live_objects() {
        assert!(Instant::now() < deadline, "left: {:?}", kube.names());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The live scan ends (here: cancelled): the next pass deletes its environment too.
    let mut conn = app.pool.acquire().await.unwrap();
    scans::cancel(&mut conn, app.org_id, live, "test")
        .await
        .unwrap();
    let reaped = reaper::reap(&db, &exec, Duration::from_secs(3600)).await;
    assert_eq!(
        reaped,
        Reaped {
            kept: 0,
            destroyed: 1,
            failed: 0
        }
    );
    kube.wait_empty(Duration::from_secs(20)).await;
    assert_eq!(
        reaper::reap(&db, &exec, Duration::from_secs(3600)).await,
        Reaped::default()
    );
}

/// Every object the executor builds passes the official schemas of the pinned Kubernetes
/// version and the restricted Pod Security Standard, in each configuration shape.
#[test]
fn built_objects_pass_the_kubernetes_schemas() {
    let l = launch(ScanId::new(), 3, Duration::from_secs(3600));
    let owner = build::owner_reference(&l.env_name(), "0b5a2a4e-8a0b-4f5e-9d35-2c4b9f1e7a10");
    let mut objects: Vec<Value> = Vec::new();
    let mut by_cidr = config("https://picket.example.com");
    by_cidr.dns = DnsEgress::Cidrs(vec!["169.254.20.10/32".parse::<Cidr>().unwrap()]);
    by_cidr.egress = parse_egress("10.0.0.0/8:443,[2001:db8::/32]:443,0.0.0.0/0:22").unwrap();
    by_cidr.env = vec![("PICKET_LOG_FORMAT".into(), "json".into())];
    let mut no_egress = config("http://picket-api:8080");
    no_egress.egress.clear();
    // The operator's CA bundle: its ConfigMap, and Pods mounting it.
    let bundle = build::ca_bundle_config_map(NS, b"-----BEGIN CERTIFICATE-----\n");
    objects.push(serde_json::to_value(&bundle).unwrap());
    let mut with_bundle = config("http://picket-api:8080");
    with_bundle.ca_bundle = bundle.metadata.name.clone();
    for cfg in [
        config("http://picket-api:8080"),
        by_cidr,
        no_egress,
        with_bundle,
    ] {
        objects.push(serde_json::to_value(build::secret(&cfg, &l)).unwrap());
        objects.push(serde_json::to_value(build::network_policy(&cfg, &l, &owner)).unwrap());
        let pod = serde_json::to_value(build::pod(&cfg, &l, &owner)).unwrap();
        assert_eq!(
            picket_tests::kube_api::pod_security_restricted(&pod),
            Vec::<String>::new()
        );
        objects.push(pod);
    }
    picket_tests::k8s::validate(&objects).unwrap_or_else(|report| panic!("{report}"));
}

// ---------------------------------------------------------------------------------------------
// Opt-in: a real cluster.

/// The real cluster of `PICKET_TEST_KUBECONFIG`, or `None` (skip) when it is unset; fails when
/// `PICKET_TEST_REQUIRE_K8S=1` and it is unset.
fn real_cluster() -> Option<PathBuf> {
    match std::env::var_os("PICKET_TEST_KUBECONFIG") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            assert!(
                std::env::var("PICKET_TEST_REQUIRE_K8S").as_deref() != Ok("1"),
                "PICKET_TEST_REQUIRE_K8S=1 but PICKET_TEST_KUBECONFIG is not set (see docs/kubernetes-testing.md)"
            );
            eprintln!(
                "skipped: PICKET_TEST_KUBECONFIG is not set (see docs/kubernetes-testing.md)"
            );
            None
        }
    }
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} must be set for the real-cluster suite (docs/kubernetes-testing.md)")
    })
}

/// On a real cluster with a NetworkPolicy-enforcing CNI, in a namespace enforcing the restricted
/// profile: Pods built by the executor are admitted; a scan Pod reaches an allowlisted address
/// and nothing else, not even another scan Pod allowlisted for it; teardown leaves nothing.
///
/// Probes run the built Pods with `PICKET_TEST_PROBE_IMAGE` (a busybox pinned by digest) and
/// a probe command in place of the worker; everything else is as built.
#[tokio::test]
async fn real_cluster_isolates_scan_pods() {
    let Some(kubeconfig) = real_cluster() else {
        return;
    };
    let ns = std::env::var("PICKET_TEST_NAMESPACE").unwrap_or_else(|_| "picket-test".into());
    let probe_image = required_env("PICKET_TEST_PROBE_IMAGE");
    let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).expect("read the kubeconfig");
    let kcfg = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("a usable kubeconfig");
    let client = kube::Client::try_from(kcfg).expect("a client");

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let labels = namespaces
        .get(&ns)
        .await
        .expect("the test namespace exists")
        .metadata
        .labels
        .unwrap_or_default();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted"),
        "namespace {ns} must enforce the restricted Pod Security Standard"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns);
    let mut cfg = KubeConfig::new(
        &ns,
        probe_image.clone(),
        std::env::var("PICKET_TEST_SERVICE_ACCOUNT").unwrap_or_else(|_| "default".into()),
        "http://picket-api.invalid:8080",
    );

    /// Creates the three objects of `l` as the executor does, with `command` in the Pod.
    async fn create_probe(
        (secrets, policies, pods): (&Api<Secret>, &Api<NetworkPolicy>, &Api<Pod>),
        cfg: &KubeConfig,
        l: &Launch,
        command: &str,
    ) -> String {
        let pp = PostParams::default();
        let secret = secrets
            .create(&pp, &build::secret(cfg, l))
            .await
            .expect("create the Secret");
        let owner = build::owner_reference(&l.env_name(), secret.metadata.uid.as_deref().unwrap());
        policies
            .create(&pp, &build::network_policy(cfg, l, &owner))
            .await
            .expect("create the NetworkPolicy");
        let mut pod = build::pod(cfg, l, &owner);
        let c = &mut pod.spec.as_mut().unwrap().containers[0];
        c.command = Some(vec!["sh".into(), "-c".into(), command.into()]);
        pods.create(&pp, &pod)
            .await
            .expect("the restricted namespace admits the Pod");
        l.env_name()
    }
    async fn wait_phase(pods: &Api<Pod>, name: &str, want: &[&str]) -> Pod {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let pod = pods.get(name).await.unwrap();
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            if want.contains(&phase.as_str())
                && (phase != "Running"
                    || pod.status.as_ref().and_then(|s| s.pod_ip.clone()).is_some())
            {
                return pod;
            }
            assert!(
                Instant::now() < deadline,
                "{name} stayed {phase}: {:?}",
                pod.status
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let apis = (&secrets, &policies, &pods);
    let serve =
        "mkdir -p /work/www && echo ok > /work/www/index.html && httpd -f -p 8080 -h /work/www";

    // A target outside the scans (not restricted by any scan policy), serving on 8080 and 8081.
    let target_launch = launch(ScanId::new(), 1, Duration::from_secs(600));
    let target_name = create_probe(
        apis,
        &cfg,
        &target_launch,
        &format!("{serve} & httpd -f -p 8081 -h /work/www & wait"),
    )
    .await;
    let target_ip = wait_phase(&pods, &target_name, &["Running"])
        .await
        .status
        .unwrap()
        .pod_ip
        .unwrap();
    // The target is no scan: its policy (which denies all ingress) goes.
    policies
        .delete(&target_name, &DeleteParams::background())
        .await
        .unwrap();
    // Another scan's Pod, serving on 8080 (its policy denies all ingress).
    let peer_launch = launch(ScanId::new(), 1, Duration::from_secs(600));
    let peer_name = create_probe(apis, &cfg, &peer_launch, serve).await;
    let peer_ip = wait_phase(&pods, &peer_name, &["Running"])
        .await
        .status
        .unwrap()
        .pod_ip
        .unwrap();
    // The scan under test: allowed to the target's 8080 and (by its own policy) to the peer.
    cfg.egress = parse_egress(&format!("{target_ip}/32:8080,{peer_ip}/32:8080")).unwrap();
    let probe = format!(
        "wget -q -T 5 -O - http://{target_ip}:8080/ | grep -qx ok || {{ echo allowed-unreachable; exit 1; }}; \
         if wget -q -T 5 -O - http://{target_ip}:8081/; then echo not-allowlisted-reachable; exit 2; fi; \
         if wget -q -T 5 -O - http://{peer_ip}:8080/; then echo peer-reachable; exit 3; fi; echo isolated"
    );
    let scan_launch = launch(ScanId::new(), 1, Duration::from_secs(600));
    let scan_name = create_probe(apis, &cfg, &scan_launch, &probe).await;
    let done = wait_phase(&pods, &scan_name, &["Succeeded", "Failed"]).await;
    let logs = pods
        .logs(&scan_name, &Default::default())
        .await
        .unwrap_or_default();
    assert_eq!(
        done.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded"),
        "probe said: {logs}"
    );

    // The executor itself: launch, end, teardown leaves nothing (the probe image has no
    // /usr/local/bin/picket, so the worker fails to start: the cycle is what is checked).
    let exec = KubeExecutor::new(client.clone(), installation(), cfg.clone()).unwrap();
    let l = launch(ScanId::new(), 1, Duration::from_secs(120));
    let mut env = exec
        .launch(&l)
        .await
        .expect("the restricted namespace admits the executor's Pod");
    let exit = tokio::time::timeout(Duration::from_secs(180), env.wait())
        .await
        .expect("the Pod ends")
        .expect("watched");
    assert!(!exit.success);
    env.teardown().await;
    for name in [target_name, peer_name, scan_name] {
        secrets
            .delete(&name, &DeleteParams::background())
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = exec.list().await.unwrap();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left after teardown: {left:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
