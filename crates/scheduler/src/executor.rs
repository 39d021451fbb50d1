//! The one interface every way of running a scan implements.
//!
//! An executor creates one fresh environment per scan attempt, named after its installation, the
//! scan and the attempt and marked as Picket's, so that after a crash the reaper can find every
//! environment of its own installation (and only those: other installations may share the
//! machine or the namespace) and ask the database whether it still has a use. An environment is destroyed with everything in it by
//! [`Environment::teardown`], which the dispatcher always calls, and by [`Executor::destroy`],
//! which the reaper calls for leftovers.

use picket_core::{InstallationId, OrgId, ScanId};
use secrecy::SecretString;
use std::future::Future;
use std::time::{Duration, SystemTime};

/// One scan attempt to start.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The installation whose scheduler launches it (the executor's own).
    pub installation: InstallationId,
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
        env_name(&self.installation, self.scan_id, self.attempt)
    }
}

/// `picket-<installation>-<scan id>-<attempt>`: lowercase, 58 characters for attempts below 10
/// (63 at most below 1,000,000), valid as a Kubernetes object name, a label value and a file
/// name.
pub fn env_name(installation: &InstallationId, scan: ScanId, attempt: i32) -> String {
    format!("picket-{installation}-{}-{attempt}", scan.0)
}

/// What every environment name of `installation` starts with.
pub fn env_prefix(installation: &InstallationId) -> String {
    format!("picket-{installation}-")
}

/// Reads the installation, scan id and attempt back from an environment name, if it is one of
/// Picket's.
pub fn parse_env_name(name: &str) -> Option<(InstallationId, ScanId, i32)> {
    let rest = name.strip_prefix("picket-")?;
    let (installation, rest) = rest.split_at_checked(InstallationId::LEN)?;
    let rest = rest.strip_prefix('-')?;
    let (scan, attempt) = rest.rsplit_once('-')?;
    if attempt.is_empty() || !attempt.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((
        installation.parse().ok()?,
        scan.parse().ok()?,
        attempt.parse().ok()?,
    ))
}

/// The scan attempt of an environment name of `installation`; `None` for another
/// installation's environment or a name that is not Picket's.
pub fn own_env(installation: &InstallationId, name: &str) -> Option<(ScanId, i32)> {
    parse_env_name(name)
        .filter(|(i, _, _)| i == installation)
        .map(|(_, scan, attempt)| (scan, attempt))
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

    /// The installation whose environments this executor creates, lists and destroys.
    fn installation(&self) -> &InstallationId;

    /// Creates the attempt's environment and starts its worker.
    fn launch(&self, launch: &Launch) -> impl Future<Output = Result<Self::Env, ExecError>> + Send;

    /// Every environment carrying Picket's marks and this executor's installation, whichever
    /// scheduler of the installation created it; never another installation's.
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
        let (ours, theirs): (InstallationId, InstallationId) = (
            "0123456789ab".parse().unwrap(),
            "ba9876543210".parse().unwrap(),
        );
        let scan = ScanId::new();
        let name = env_name(&ours, scan, 2);
        assert_eq!(name.len(), 58, "{name}");
        // A label value holds 63 characters.
        assert!(env_name(&ours, scan, 999_999).len() <= 63);
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        assert!(name.starts_with(&env_prefix(&ours)));
        assert_eq!(parse_env_name(&name), Some((ours.clone(), scan, 2)));
        assert_eq!(own_env(&ours, &name), Some((scan, 2)));
        assert_eq!(own_env(&theirs, &name), None);
        // The names of earlier versions (no installation) and foreign names are not Picket's.
        assert_eq!(parse_env_name(&format!("picket-{}-1", scan.0)), None);
        assert_eq!(parse_env_name("picket-0123456789ab-nope-1"), None);
        assert_eq!(
            parse_env_name(&format!("picket-0123456789ab-{}-+1", scan.0)),
            None
        );
        assert_eq!(parse_env_name("picket-probe-1234"), None);
        assert_eq!(parse_env_name("other-x"), None);
    }
}
