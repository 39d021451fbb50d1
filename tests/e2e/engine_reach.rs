//! Nothing secret in the engine's reach: the Semgrep engine parses untrusted repository
//! content, so the process the worker starts it as must hold no secret in its environment
//! (`/proc/<pid>/environ`), and must not read the worker's either.
//!
//! The engine is the pinned Semgrep behind a wrapper that stands in for its first process: it
//! records or checks its own `/proc/self/environ` (and, where it runs unprivileged, its parent
//! the worker's), then execs the real engine. The worker is this build's `picket` binary, run
//! for real scans of a local repository: as a plain child process given every secret Picket
//! knows (the scan token, a database URL, a credentials key), and in a local sandbox.

use crate::installations::{projects_on, sandbox_executor_config, scheduler_config};
use crate::kubernetes::sample_repo;
use picket_core::ScanState;
use picket_db::{installation, queue, scans, Db};
use picket_scheduler::sandbox::SandboxExecutor;
use picket_tests::picket_binary;
use picket_tests::{semgrep_binary, TestApp, RULES_DIR};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const DB_CANARY: &str = "postgres://picket:CANARYdbpassword@127.0.0.1:1/picket";
const KEY_CANARY: &str = "CANARY0123456789abcdef0123456789abcdef0123456789abcdef0123456789";

/// A script standing in for the engine's first process (see the module docs): exits 97 when
/// its own environment holds a scan token or a canary, 98 when it can read its parent's, after
/// writing its environment to `record` when given; else execs the real engine.
fn engine_wrapper(dir: &Path, record: Option<&Path>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let semgrep = std::fs::canonicalize(semgrep_binary()).unwrap();
    let keep = record
        .map(|r| format!("cp /proc/$$/environ '{}'\n", r.display()))
        .unwrap_or_default();
    let path = dir.join("semgrep-wrapper");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n{keep}\
             if tr '\\0' '\\n' < /proc/$$/environ | grep -q -e pks_ -e CANARY; then\n\
             \x20 echo 'the engine holds a secret in its environment' >&2; exit 97\nfi\n\
             if [ \"$(id -u)\" != 0 ] && cat /proc/$PPID/environ >/dev/null 2>&1; then\n\
             \x20 echo \"the engine reads the worker's environment\" >&2; exit 98\nfi\n\
             exec '{}' \"$@\"\n",
            semgrep.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_engine_started_by_a_worker_process_holds_no_secret(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = sample_repo(dir.path());
    let scan = projects_on(&app, &repo, 1).await[0];
    let claimed = queue::claim(&app.pool, "e2e", Duration::from_secs(300))
        .await
        .unwrap()
        .expect("the scan is claimable");
    let token = queue::mint_scan_token(&app.pool, &claimed.lease)
        .await
        .unwrap();
    let record = dir.path().join("engine-environ");
    let wrapper = engine_wrapper(dir.path(), Some(&record));
    let out = tokio::process::Command::new(picket_binary())
        .arg("worker")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("PICKET_API_URL", &app.base)
        .env("PICKET_SCAN_TOKEN", token.expose_secret())
        // Secrets of the other commands: the worker drops every one it knows.
        .env("DATABASE_URL", DB_CANARY)
        .env("PICKET_SECRET_KEY", KEY_CANARY)
        .env("PICKET_SEMGREP", &wrapper)
        .env("PICKET_RULES_DIR", RULES_DIR)
        .env("PICKET_ALLOW_LOCAL_REPOS", "true")
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let environ = std::fs::read(&record).expect("the engine ran");
    let environ = String::from_utf8_lossy(&environ).replace('\0', "\n");
    for secret in [token.expose_secret(), "pks_", "CANARY", "PICKET_SCAN_TOKEN"] {
        assert!(
            !environ.contains(secret),
            "the engine's environment holds {secret}:\n{environ}"
        );
    }
    assert!(environ.contains("PATH="), "{environ}");
    assert!(out.status.success(), "the worker failed: {stderr}");
    let scan = scans::get(&app.pool, app.org_id, scan).await.unwrap();
    assert_eq!(scan.state, ScanState::Succeeded, "{scan:?}");
    assert!(app.count("findings").await > 0);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_engine_in_a_sandbox_holds_no_secret_and_cannot_read_the_workers(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = std::fs::canonicalize(sample_repo(dir.path())).unwrap();
    let scan = projects_on(&app, &repo, 1).await[0];
    let tools = tempfile::tempdir().unwrap();
    let tools_dir = std::fs::canonicalize(tools.path()).unwrap();
    std::fs::set_permissions(
        &tools_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let wrapper = engine_wrapper(&tools_dir, None);
    let (root, machine) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut cfg, mut worker) = sandbox_executor_config(
        &app,
        installation::id(&app.pool).await.unwrap(),
        root.path(),
        &machine.path().join("addresses.lock"),
        &repo,
    );
    cfg.readonly.push(wrapper.clone());
    for (k, v) in &mut worker.env {
        if k == "PICKET_SEMGREP" {
            *v = wrapper.display().to_string();
        }
    }
    let exec = SandboxExecutor::new(cfg, worker)
        .await
        .expect("this machine can sandbox (root, ip, nft, bwrap)");
    let stop = CancellationToken::new();
    let run = tokio::spawn(picket_scheduler::run(
        Db::from_pool(app.pool.clone()),
        exec,
        scheduler_config("engine-reach"),
        stop.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(300);
    let scan = loop {
        let s = scans::get(&app.pool, app.org_id, scan).await.unwrap();
        if s.state.is_terminal() || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    run.await.unwrap();
    // A secret in the engine's reach fails the engine (97, 98), and so the scan.
    assert_eq!(
        (scan.state, scan.attempt),
        (ScanState::Succeeded, 1),
        "{scan:?}"
    );
}
