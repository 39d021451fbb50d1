//! [`KubeExecutor`]: the objects of [`build`](super::build) created, watched and deleted through
//! the Kubernetes API.

use super::build::{self, LABEL_ATTEMPT, LABEL_ENV, LABEL_INSTALLATION, LABEL_SCAN_ID};
use super::{ConfigError, KubeConfig};
use crate::executor::{own_env, EnvRef, Environment, ExecError, Executor, Exit, Launch};
use ::kube::api::{Api, DeleteParams, ListParams, PostParams};
use ::kube::runtime::watcher;
use ::kube::{Client, Resource, ResourceExt};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use picket_core::InstallationId;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// How long the watch on a Pod may keep failing before the executor gives the worker up.
const WATCH_GIVE_UP: Duration = Duration::from_secs(120);
/// Longest pause between two attempts to re-establish a failing watch.
const WATCH_MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Server-side timeout of one watch request; the watcher reconnects from its last version.
const WATCH_TIMEOUT_SECS: u32 = 240;

/// Runs each scan attempt as a Pod (see the [module docs](super)).
#[derive(Clone)]
pub struct KubeExecutor {
    installation: InstallationId,
    cfg: Arc<KubeConfig>,
    secrets: Api<Secret>,
    policies: Api<NetworkPolicy>,
    pods: Api<Pod>,
}

impl Debug for KubeExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeExecutor")
            .field("installation", &self.installation)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl KubeExecutor {
    /// An executor creating `installation`'s scan objects in `cfg.namespace` through
    /// `client`. Refuses a configuration that [`KubeConfig::check`] refuses (e.g. an image not
    /// pinned by digest).
    pub fn new(
        client: Client,
        installation: InstallationId,
        cfg: KubeConfig,
    ) -> Result<KubeExecutor, ConfigError> {
        cfg.check()?;
        let ns = cfg.namespace.clone();
        Ok(KubeExecutor {
            installation,
            secrets: Api::namespaced(client.clone(), &ns),
            policies: Api::namespaced(client.clone(), &ns),
            pods: Api::namespaced(client, &ns),
            cfg: Arc::new(cfg),
        })
    }

    pub fn config(&self) -> &KubeConfig {
        &self.cfg
    }

    /// Deletes what `launch` created when a later step failed (best effort: the reaper retries).
    async fn undo(&self, name: &str) {
        if let Err(e) = delete(&self.secrets, name).await {
            tracing::warn!(env = name, error = %e, "removing a half-created environment failed");
        }
    }
}

/// One attempt's Pod, watched until it ends.
pub struct KubeEnv {
    name: String,
    secrets: Api<Secret>,
    policies: Api<NetworkPolicy>,
    pods: Api<Pod>,
    events: Pin<Box<dyn Stream<Item = watcher::Result<watcher::Event<Pod>>> + Send>>,
    /// Whether the Pod was in the current (re)list of the watch.
    listed: bool,
    failing_since: Option<Instant>,
    retry_at: Option<Instant>,
    backoff: Duration,
    exit: Option<Exit>,
}

impl Debug for KubeEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeEnv")
            .field("name", &self.name)
            .field("exit", &self.exit)
            .finish_non_exhaustive()
    }
}

impl Executor for KubeExecutor {
    type Env = KubeEnv;

    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    fn installation(&self) -> &InstallationId {
        &self.installation
    }

    async fn launch(&self, launch: &Launch) -> Result<KubeEnv, ExecError> {
        let name = launch.env_name();
        // 1. The Secret; its uid makes the owner reference of the two others.
        let secret = create(&self.secrets, &build::secret(&self.cfg, launch))
            .await
            .map_err(|e| launch_error("the Secret", e))?;
        let Some(uid) = secret.uid() else {
            self.undo(&name).await;
            return Err(ExecError::Launch {
                code: "kubernetes_rejected",
                message: "the API returned the Secret without a uid".into(),
            });
        };
        let owner = build::owner_reference(&name, &uid);
        // 2. The NetworkPolicy, before the Pod exists: the worker never runs unfenced.
        if let Err(e) = create(
            &self.policies,
            &build::network_policy(&self.cfg, launch, &owner),
        )
        .await
        {
            self.undo(&name).await;
            return Err(launch_error("the NetworkPolicy", e));
        }
        // 3. The Pod.
        if let Err(e) = create(&self.pods, &build::pod(&self.cfg, launch, &owner)).await {
            self.undo(&name).await;
            return Err(launch_error("the Pod", e));
        }
        let watch = watcher::Config::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(WATCH_TIMEOUT_SECS);
        Ok(KubeEnv {
            events: Box::pin(watcher(self.pods.clone(), watch)),
            name,
            secrets: self.secrets.clone(),
            policies: self.policies.clone(),
            pods: self.pods.clone(),
            listed: false,
            failing_since: None,
            retry_at: None,
            backoff: Duration::from_millis(250),
            exit: None,
        })
    }

    async fn list(&self) -> Result<Vec<EnvRef>, ExecError> {
        // Only this installation's: another one may share the namespace.
        let lp = ListParams::default().labels(&build::installation_selector(&self.installation));
        let (secrets, policies, pods) = tokio::try_join!(
            self.secrets.list(&lp),
            self.policies.list(&lp),
            self.pods.list(&lp)
        )
        .map_err(|e| ExecError::Backend(format!("listing scan objects: {e}")))?;
        let mut envs: BTreeMap<String, EnvRef> = BTreeMap::new();
        let metas = secrets
            .items
            .iter()
            .map(|o| &o.metadata)
            .chain(policies.items.iter().map(|o| &o.metadata))
            .chain(pods.items.iter().map(|o| &o.metadata));
        for meta in metas {
            let Some(name) = env_of(&self.installation, meta) else {
                continue;
            };
            let created = created(meta);
            let env = envs.entry(name.clone()).or_insert_with(|| EnvRef {
                scan: scan_of(&self.installation, meta, &name),
                name,
                created,
            });
            env.created = match (env.created, created) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(envs.into_values().collect())
    }

    async fn destroy(&self, env: &EnvRef) -> Result<(), ExecError> {
        let name = &env.name;
        let (secret, pod, policy) = tokio::join!(
            delete(&self.secrets, name),
            delete(&self.pods, name),
            delete(&self.policies, name)
        );
        for (what, result) in [("Secret", secret), ("Pod", pod), ("NetworkPolicy", policy)] {
            result.map_err(|e| ExecError::Backend(format!("deleting the {what} {name}: {e}")))?;
        }
        Ok(())
    }
}

impl Environment for KubeEnv {
    async fn wait(&mut self) -> Result<Exit, ExecError> {
        loop {
            if let Some(exit) = &self.exit {
                return Ok(exit.clone());
            }
            if let Some(at) = self.retry_at {
                tokio::time::sleep_until(at).await;
                self.retry_at = None;
            }
            let event = match self.events.next().await {
                None => {
                    return Err(ExecError::Backend(
                        "the watch on the scan's Pod ended".into(),
                    ))
                }
                Some(Err(e)) => {
                    let since = *self.failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= WATCH_GIVE_UP {
                        return Err(ExecError::Backend(format!(
                            "watching the scan's Pod failed for {} s: {e}",
                            since.elapsed().as_secs()
                        )));
                    }
                    tracing::warn!(env = %self.name, error = %e, "watching the scan's Pod failed; retrying");
                    self.retry_at = Some(Instant::now() + self.backoff);
                    self.backoff = (self.backoff * 2).min(WATCH_MAX_BACKOFF);
                    continue;
                }
                Some(Ok(event)) => event,
            };
            self.failing_since = None;
            self.backoff = Duration::from_millis(250);
            match event {
                watcher::Event::Init => self.listed = false,
                watcher::Event::InitApply(pod) | watcher::Event::Apply(pod) => {
                    self.listed = true;
                    self.exit = exit_of(&pod);
                }
                watcher::Event::InitDone if !self.listed => {
                    return Err(ExecError::Backend("the scan's Pod is gone".into()))
                }
                watcher::Event::InitDone => {}
                watcher::Event::Delete(pod) => {
                    return match exit_of(&pod) {
                        Some(exit) => {
                            self.exit = Some(exit.clone());
                            Ok(exit)
                        }
                        None => Err(ExecError::Backend(
                            "the scan's Pod was deleted before it finished".into(),
                        )),
                    }
                }
            }
        }
    }

    async fn teardown(self) {
        // Deleting the Secret deletes the Pod (gracefully: SIGTERM, then SIGKILL after its grace
        // period) and the NetworkPolicy through the garbage collector: one write.
        match self
            .secrets
            .delete(&self.name, &DeleteParams::background())
            .await
        {
            Ok(_) => return,
            Err(e) if is_status(&e, 404) => {
                // No owner left to cascade from: delete the dependents themselves.
            }
            Err(e) => {
                tracing::warn!(env = %self.name, error = %e, "deleting the scan's Secret failed");
            }
        }
        let (pod, policy) = tokio::join!(
            delete(&self.pods, &self.name),
            delete(&self.policies, &self.name)
        );
        for (what, result) in [("Pod", pod), ("NetworkPolicy", policy)] {
            if let Err(e) = result {
                tracing::warn!(env = %self.name, error = %e, "deleting the scan's {what} failed; the reaper will retry");
            }
        }
    }
}

/// How a Pod ended, if it did: `Succeeded`/`Failed` with the Pod's reason (e.g.
/// `DeadlineExceeded`, `Evicted`) and the container's termination (`exit code 1`, `OOMKilled
/// (exit code 137)`); or a container that cannot ever start (`InvalidImageName`, …).
pub fn exit_of(pod: &Pod) -> Option<Exit> {
    let status = pod.status.as_ref()?;
    let container = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == build::CONTAINER);
    let state = container.and_then(|c| c.state.as_ref());
    let success = match status.phase.as_deref() {
        Some("Succeeded") => true,
        Some("Failed") => false,
        _ => {
            let waiting = state
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref());
            return match waiting {
                Some(
                    r @ ("InvalidImageName" | "ErrImageNeverPull" | "CreateContainerConfigError"),
                ) => Some(Exit {
                    success: false,
                    detail: r.to_owned(),
                }),
                _ => None,
            };
        }
    };
    let mut reasons: Vec<&str> = Vec::new();
    if pod.metadata.deletion_timestamp.is_some() {
        reasons.push("deleted");
    }
    reasons.extend(status.reason.as_deref());
    let terminated = state.and_then(|s| s.terminated.as_ref());
    if let Some(r) = terminated.and_then(|t| t.reason.as_deref()) {
        if r != "Completed" && r != "Error" && !reasons.contains(&r) {
            reasons.push(r);
        }
    }
    let code = terminated.map(|t| t.exit_code);
    let detail = match (reasons.is_empty(), code) {
        (true, Some(code)) => format!("exit code {code}"),
        (false, Some(code)) => format!("{} (exit code {code})", reasons.join(", ")),
        (false, None) => reasons.join(", "),
        (true, None) => status.phase.clone().unwrap_or_default(),
    };
    Some(Exit { success, detail })
}

/// Creates `obj`; one that already exists (a repeated launch) counts as created and is read back.
/// Makes sure the scan namespace holds the ConfigMap of the operator's CA bundle `pem` (see
/// [`build::ca_bundle_config_map`]) and returns its name, for [`KubeConfig::ca_bundle`]. Called
/// once, when the scheduler starts: one API write, or none beyond the attempt when a replica or
/// an earlier start made it already (409: the name is the content's hash, so the object there is
/// this bundle). Never a write per scan.
pub async fn ensure_ca_bundle(
    client: Client,
    namespace: &str,
    pem: &[u8],
) -> Result<String, ExecError> {
    let config_map = build::ca_bundle_config_map(namespace, pem);
    let name = config_map.name_any();
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    match api.create(&PostParams::default(), &config_map).await {
        Ok(_) => {
            tracing::info!(config_map = %name, %namespace, "created the CA bundle's ConfigMap")
        }
        Err(e) if is_status(&e, 409) => {}
        Err(e) => {
            return Err(ExecError::Backend(format!(
                "creating the CA bundle's ConfigMap {name} in {namespace}: {e}"
            )))
        }
    }
    Ok(name)
}

/// Adds the operator's CA certificates (`certs`, DER) to what the Kubernetes client trusts: to
/// the kubeconfig's own CA when it names one, else to the system's roots (which the client uses
/// when it has no CA, read here with `rustls-native-certs`). In a Pod (`root_cert_file` is the
/// service account's `ca.crt`, re-read when it rotates) the API server's certificate is the
/// cluster CA's own, and the configuration is left as it is.
pub fn trust_ca_bundle(mut config: ::kube::Config, certs: &[Vec<u8>]) -> ::kube::Config {
    if config.root_cert_file.is_some() || certs.is_empty() {
        return config;
    }
    let mut roots = match config.root_cert.take() {
        Some(own) => own,
        None => {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!(error = %e, "reading the system's CA certificates");
            }
            native.certs.into_iter().map(|c| c.to_vec()).collect()
        }
    };
    roots.extend(certs.iter().cloned());
    config.root_cert = Some(roots);
    config
}

async fn create<K>(api: &Api<K>, obj: &K) -> Result<K, ::kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Err(e) if is_status(&e, 409) => api.get(&obj.name_any()).await,
        other => other,
    }
}

/// Deletes `name` with background propagation; one already gone is deleted.
async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), ::kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(e),
    }
}

fn is_status(e: &::kube::Error, code: u16) -> bool {
    matches!(e, ::kube::Error::Api(s) if s.code == code)
}

fn launch_error(what: &str, e: ::kube::Error) -> ExecError {
    let code = match &e {
        ::kube::Error::Api(s) if (400..500).contains(&s.code) => "kubernetes_rejected",
        _ => "kubernetes_unavailable",
    };
    ExecError::Launch {
        code,
        message: format!("creating {what} failed: {e}"),
    }
}

/// The environment of `installation` an object belongs to: its `picket.dev/env` label, else
/// its own name when that is one of the installation's environment names. `None` for an object
/// labelled with another installation, whatever its name.
fn env_of(installation: &InstallationId, meta: &ObjectMeta) -> Option<String> {
    let labels = meta.labels.as_ref();
    if labels
        .and_then(|l| l.get(LABEL_INSTALLATION))
        .is_some_and(|i| i != installation.as_str())
    {
        return None;
    }
    labels.and_then(|l| l.get(LABEL_ENV).cloned()).or_else(|| {
        meta.name
            .clone()
            .filter(|n| own_env(installation, n).is_some())
    })
}

/// The scan attempt from the labels, or failing that from the environment's name.
fn scan_of(
    installation: &InstallationId,
    meta: &ObjectMeta,
    env: &str,
) -> Option<(picket_core::ScanId, i32)> {
    let labels = meta.labels.as_ref();
    let from_labels = (|| {
        let scan = labels?.get(LABEL_SCAN_ID)?.parse().ok()?;
        let attempt = labels?.get(LABEL_ATTEMPT)?.parse().ok()?;
        Some((scan, attempt))
    })();
    from_labels.or_else(|| own_env(installation, env))
}

fn created(meta: &ObjectMeta) -> Option<SystemTime> {
    let ts = &meta.creation_timestamp.as_ref()?.0;
    let secs = u64::try_from(ts.as_second()).ok()?;
    let nanos = u32::try_from(ts.subsec_nanosecond()).unwrap_or(0);
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ::kube::Config {
        ::kube::Config::new("https://kubernetes.example.com:6443".parse().unwrap())
    }

    #[test]
    fn the_bundle_joins_the_kubeconfig_ca_or_the_system_roots_but_not_the_cluster_ca_in_a_pod() {
        let bundle = vec![b"company-ca".to_vec()];

        let mut own = config();
        own.root_cert = Some(vec![b"cluster-ca".to_vec()]);
        let own = trust_ca_bundle(own, &bundle);
        assert_eq!(
            own.root_cert,
            Some(vec![b"cluster-ca".to_vec(), b"company-ca".to_vec()])
        );

        // No CA in the kubeconfig: the system's roots, which the client would use, plus the
        // bundle.
        let system = rustls_native_certs::load_native_certs().certs.len();
        let roots = trust_ca_bundle(config(), &bundle).root_cert.unwrap();
        assert_eq!(roots.len(), system + 1);
        assert_eq!(roots.last(), Some(&b"company-ca".to_vec()));

        // In a Pod: the service account's CA file, re-read on rotation, stays the trust.
        let mut in_cluster = config();
        in_cluster.root_cert = Some(vec![b"cluster-ca".to_vec()]);
        in_cluster.root_cert_file = Some("/var/run/secrets/kubernetes.io/ca.crt".into());
        let in_cluster = trust_ca_bundle(in_cluster, &bundle);
        assert_eq!(in_cluster.root_cert, Some(vec![b"cluster-ca".to_vec()]));

        // No bundle: nothing changes.
        assert_eq!(trust_ca_bundle(config(), &[]).root_cert, None);
    }
}
