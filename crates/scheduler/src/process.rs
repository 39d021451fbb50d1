//! The plain-process executor: the worker as a child process of the scheduler, with a fresh
//! temporary directory of its own, and NO isolation from the host (same user, same network,
//! same filesystem view). Only for machines that cannot provide the sandbox, and only when the
//! operator asks for it explicitly; `picket run` says so at start.

use crate::executor::{EnvRef, Environment, ExecError, Executor, Exit, Launch};
use crate::WorkerCommand;
use picket_core::InstallationId;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How long a worker has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct ProcessExecutor {
    installation: InstallationId,
    worker: WorkerCommand,
    live: Arc<Mutex<HashMap<String, Live>>>,
}

#[derive(Debug)]
struct Live {
    pid: u32,
    created: SystemTime,
    scan: Option<(picket_core::ScanId, i32)>,
}

impl ProcessExecutor {
    pub fn new(installation: InstallationId, worker: WorkerCommand) -> Self {
        ProcessExecutor {
            installation,
            worker,
            live: Arc::default(),
        }
    }
}

/// A worker child process and its temporary directory.
#[derive(Debug)]
pub struct ProcessEnv {
    name: String,
    child: tokio::process::Child,
    dir: Option<tempfile::TempDir>,
    live: Arc<Mutex<HashMap<String, Live>>>,
}

impl Executor for ProcessExecutor {
    type Env = ProcessEnv;

    fn kind(&self) -> &'static str {
        "process"
    }

    fn installation(&self) -> &InstallationId {
        &self.installation
    }

    async fn launch(&self, launch: &Launch) -> Result<ProcessEnv, ExecError> {
        let name = launch.env_name();
        let failed = |message: String| ExecError::Launch {
            code: "worker_start_failed",
            message,
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir()
            .map_err(|e| failed(format!("cannot create the scan's directory: {e}")))?;
        let mut cmd = tokio::process::Command::new(&self.worker.program);
        cmd.args(&self.worker.args)
            .envs(self.worker.env.iter().map(|(k, v)| (k, v)))
            .env("PICKET_SCAN_TOKEN", launch.token.expose_secret())
            .env("TMPDIR", dir.path())
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| {
            failed(format!(
                "cannot start {}: {e}",
                self.worker.program.display()
            ))
        })?;
        self.live.lock().expect("registry").insert(
            name.clone(),
            Live {
                pid: child.id().unwrap_or_default(),
                created: SystemTime::now(),
                scan: Some((launch.scan_id, launch.attempt)),
            },
        );
        Ok(ProcessEnv {
            name,
            child,
            dir: Some(dir),
            live: Arc::clone(&self.live),
        })
    }

    async fn list(&self) -> Result<Vec<EnvRef>, ExecError> {
        Ok(self
            .live
            .lock()
            .expect("registry")
            .iter()
            .map(|(name, l)| EnvRef {
                name: name.clone(),
                scan: l.scan,
                created: Some(l.created),
            })
            .collect())
    }

    async fn destroy(&self, env: &EnvRef) -> Result<(), ExecError> {
        let pid = self
            .live
            .lock()
            .expect("registry")
            .get(&env.name)
            .map(|l| l.pid);
        if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        Ok(())
    }
}

impl Environment for ProcessEnv {
    async fn wait(&mut self) -> Result<Exit, ExecError> {
        wait_child(&mut self.child).await
    }

    async fn teardown(mut self) {
        stop_child(&mut self.child, STOP_GRACE).await;
        self.live.lock().expect("registry").remove(&self.name);
        if let Some(dir) = self.dir.take() {
            let path: PathBuf = dir.path().to_path_buf();
            if let Err(e) = dir.close() {
                tracing::warn!(dir = %path.display(), error = %e, "removing the scan's directory failed");
            }
        }
    }
}

/// Waits for a child process and reports how it ended. Cancel-safe.
pub async fn wait_child(child: &mut tokio::process::Child) -> Result<Exit, ExecError> {
    let status = child
        .wait()
        .await
        .map_err(|e| ExecError::Backend(format!("waiting for the worker's process: {e}")))?;
    Ok(Exit {
        success: status.success(),
        detail: status.to_string(),
    })
}

/// Asks a child to stop (SIGTERM: the worker abandons the scan and deletes its checkout), and
/// kills it if it has not exited within `grace`. A child that already exited is only reaped.
pub async fn stop_child(child: &mut tokio::process::Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}
