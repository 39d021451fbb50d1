//! The one interface every way of running a scan implements.
//!
//! An executor creates one fresh environment per scan attempt, named after the scan and attempt
//! and marked as Picket's, so that after a crash the reaper can find every environment and ask
//! the database whether it still has a use. An environment is destroyed with everything in it by
//! [`Environment::teardown`], which the dispatcher always calls, and by [`Executor::destroy`],
//! which the reaper calls for leftovers.

use picket_core::{OrgId, ScanId};
use secrecy::SecretString;
use std::future::Future;
use std::time::{Duration, SystemTime};

/// One scan attempt to start.
#[derive(Debug, Clone)]
pub struct Launch {
    pub scan_id: ScanId,
    pub attempt: i32,
    pub org_id: OrgId,
    /// The attempt's per-scan token. Executors hand it to the worker as a secret (environment
    /// of the worker only, or a Kubernetes Secret), never in arguments, labels or logs.
    pub token: SecretString,
    /// How long the environment may live. It must end by then even if the scheduler is gone.
    pub deadline: Duration,
}

impl Launch {
    /// The environment's name: stable for a scan attempt, so creating it twice finds the first.
    pub fn env_name(&self) -> String {
        env_name(self.scan_id, self.attempt)
    }
}

/// `picket-<scan id>-<attempt>`: lowercase, at most 48 characters, valid as a Kubernetes object
/// name and as a file name.
pub fn env_name(scan: ScanId, attempt: i32) -> String {
    format!("picket-{}-{attempt}", scan.0)
}

/// Reads a scan id and attempt back from an environment name, if it is one of Picket's.
pub fn parse_env_name(name: &str) -> Option<(ScanId, i32)> {
    let rest = name.strip_prefix("picket-")?;
    let (scan, attempt) = rest.rsplit_once('-')?;
    Some((scan.parse().ok()?, attempt.parse().ok()?))
}

/// An environment that exists, as the executor lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRef {
    pub name: String,
    /// The scan attempt it was made for, when its marks say.
    pub scan: Option<(ScanId, i32)>,
    /// When it was created, when known.
    pub created: Option<SystemTime>,
}

/// How a worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// Whether the worker reported success by its exit status.
    pub success: bool,
    /// What happened, for the scan's record (e.g. `exit status: 1`, `OOMKilled`).
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The environment could not be created; the scan attempt fails with this code.
    #[error("{code}: {message}")]
    Launch { code: &'static str, message: String },
    /// The executor lost track of the environment or its backend failed.
    #[error("{0}")]
    Backend(String),
}

impl ExecError {
    pub fn code(&self) -> &'static str {
        match self {
            ExecError::Launch { code, .. } => code,
            ExecError::Backend(_) => "executor_failed",
        }
    }
}

/// A way of running scans: one fresh environment per attempt.
pub trait Executor: Send + Sync + 'static {
    type Env: Environment;

    /// A short name for logs and metrics (`kubernetes`, `sandbox`, `process`).
    fn kind(&self) -> &'static str;

    /// Creates the attempt's environment and starts its worker.
    fn launch(&self, launch: &Launch) -> impl Future<Output = Result<Self::Env, ExecError>> + Send;

    /// Every environment carrying Picket's marks, whoever created it.
    fn list(&self) -> impl Future<Output = Result<Vec<EnvRef>, ExecError>> + Send;

    /// Deletes an environment and everything in it; an environment already gone is not an error.
    fn destroy(&self, env: &EnvRef) -> impl Future<Output = Result<(), ExecError>> + Send;
}

/// One running environment.
pub trait Environment: Send + 'static {
    /// Waits for the worker to end. Cancel-safe: it may be dropped and called again.
    fn wait(&mut self) -> impl Future<Output = Result<Exit, ExecError>> + Send;

    /// Stops the worker if it still runs (asks, then forces) and deletes the environment with
    /// everything in it. Always called once, whatever happened before.
    fn teardown(self) -> impl Future<Output = ()> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_round_trip_and_fit_kubernetes() {
        let scan = ScanId::new();
        let name = env_name(scan, 2);
        assert!(name.len() <= 48, "{name}");
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        assert_eq!(parse_env_name(&name), Some((scan, 2)));
        assert_eq!(parse_env_name("picket-nope-1"), None);
        assert_eq!(parse_env_name("other-x"), None);
    }
}
