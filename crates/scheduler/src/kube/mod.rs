//! The Kubernetes executor: one Pod per scan attempt, with its Secret and a NetworkPolicy.
//!
//! # Objects
//!
//! Each attempt gets three objects in the configured namespace, all named
//! [`Launch::env_name`](crate::Launch::env_name) (`picket-<installation>-<scan id>-<attempt>`)
//! and labelled with [`build::labels`] (Picket's marks, the installation, the scan id, the
//! attempt and the environment name;
//! nothing taken from the repository, whose names, branches and paths are attacker-controlled
//! and never reach an object):
//!
//! 1. a **Secret** (`Opaque`, immutable) holding the per-scan token, mounted read-only into the
//!    Pod as a file (`PICKET_SCAN_TOKEN_FILE`), never an environment variable, so nothing the
//!    worker starts inherits it. With the token, the worker fetches its spec
//!    (`GET /api/v1/worker/scan`) and clone credential (`…/credential`) over the API, so the
//!    token is the only secret the Pod needs, and it dies with the scan's lease;
//! 2. a **NetworkPolicy** selecting only this attempt's Pod (by its `picket.dev/env` label):
//!    no ingress at all, egress only to DNS and to the configured allowlist
//!    ([`KubeConfig::egress`]);
//! 3. the **Pod**: `picket worker` from an image pinned by digest, as a non-root user with every
//!    capability dropped, a read-only root filesystem, `RuntimeDefault` seccomp, no service
//!    account token, no service links, one size-limited `emptyDir` at `/work` for the clone,
//!    resource requests and limits, and `activeDeadlineSeconds` so that it ends by the scan's
//!    deadline even if the scheduler is gone. See [`build`] for every setting.
//!
//! # Ownership: why the Secret is the root
//!
//! Deleting one object deletes all three: the NetworkPolicy and the Pod carry an
//! `ownerReference` to the Secret, and the garbage collector removes them when the Secret is
//! deleted (with `propagationPolicy: Background`). A scan therefore costs **4 API writes**:
//! create Secret, create NetworkPolicy, create Pod, delete Secret.
//!
//! The Secret is the owner because it is the first object that must exist: the Pod mounts its
//! token from the Secret and must not run before its NetworkPolicy exists, so the Pod is
//! created last. An ownerReference needs the owner's `uid`, which only the create response
//! gives; making the Pod the owner would mean patching the Secret and the NetworkPolicy after
//! the Pod exists (2 more writes, and a window in which they are unowned).
//!
//! Creating is idempotent: an object that already exists (`409 AlreadyExists`, e.g. a retried
//! launch) counts as created; for the Secret its `uid` is then read back with a GET.
//!
//! Not per scan: the operator's CA bundle (`PICKET_CA_BUNDLE`) is one immutable ConfigMap named
//! after its content, created when the scheduler starts ([`ensure_ca_bundle`]) and mounted
//! read-only by every Pod; the Kubernetes client of the scheduler trusts it too
//! ([`trust_ca_bundle`]).
//!
//! # Completion
//!
//! [`KubeEnv::wait`](crate::Environment::wait) watches the Pod (a `kube-runtime` watcher with
//! `fieldSelector=metadata.name=<name>`, no polling) until its phase is `Succeeded` or `Failed`,
//! and reads the detail from the Pod's reason or the container's termination (`exit code 1`,
//! `OOMKilled (exit code 137)`, `DeadlineExceeded`). A Pod deleted before it finished is a
//! backend error.
//!
//! # Leftovers
//!
//! [`Executor::list`](crate::Executor::list) finds every object with Picket's marks and its
//! installation's label (`app.kubernetes.io/managed-by=picket,app.kubernetes.io/component=scan,
//! picket.dev/installation=<id>`: installations may share a namespace, and each lists and reaps
//! only its own) and groups them by environment name; [`Executor::destroy`](crate::Executor::destroy) deletes the Secret and
//! also the Pod and the NetworkPolicy by name, so that an orphan whose Secret is gone still
//! goes.

pub mod build;
mod executor;

pub use executor::{ensure_ca_bundle, trust_ca_bundle, KubeEnv, KubeExecutor};

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The worker's command inside the image.
pub const WORKER_COMMAND: [&str; 2] = ["/usr/local/bin/picket", "worker"];
/// Where the Pod's one writable volume (the clone, `TMPDIR` and `HOME`) is mounted.
pub const WORK_DIR: &str = "/work";
/// The numeric user, group and fsGroup the worker runs as.
pub const WORKER_UID: i64 = 10001;
/// Seconds between SIGTERM and SIGKILL when the Pod is deleted.
pub const TERMINATION_GRACE_SECS: i64 = 15;

/// How scans run on Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeConfig {
    /// The namespace of every scan's objects. It should enforce the `restricted` Pod Security
    /// Standard (`pod-security.kubernetes.io/enforce=restricted`); the Pod satisfies it.
    pub namespace: String,
    /// The worker image, pinned by digest (`registry/picket@sha256:<64 hex>`); anything else is
    /// refused by [`KubeConfig::check`].
    pub image: String,
    /// The Pod's service account. Its token is not mounted; it exists so that the namespace's
    /// defaults (image pull secrets, policies) apply to a dedicated identity.
    pub service_account: String,
    /// The control plane's URL as the worker reaches it (`PICKET_API_URL`).
    pub api_url: String,
    /// Where DNS queries may go.
    pub dns: DnsEgress,
    /// The control plane's API pods, allowed by selector: a NetworkPolicy `ipBlock` does not
    /// match a Service's ClusterIP, and CNIs differ on ipBlocks for pod-to-pod traffic, so the
    /// API is best reached this way. `None`: the API must be in [`KubeConfig::egress`].
    pub api_peer: Option<ApiPeer>,
    /// The only other destinations the worker may reach: the VCS providers' hosts and the
    /// control plane's API (each as a CIDR and a TCP port).
    pub egress: Vec<EgressRule>,
    pub resources: Resources,
    /// Extra plain environment for the worker (e.g. `PICKET_LOG_FORMAT=json`). It is visible in
    /// the Pod's spec: never put a secret here. `PICKET_SCAN_TOKEN(_FILE)`, `PICKET_API_URL`,
    /// `PICKET_CA_BUNDLE`, `TMPDIR` and `HOME` are set by the executor and refused here.
    pub env: Vec<(String, String)>,
    /// The ConfigMap in [`KubeConfig::namespace`] holding the operator's CA bundle (made by
    /// [`ensure_ca_bundle`]), mounted read-only into every scan Pod; `None`: no bundle.
    pub ca_bundle: Option<String>,
}

/// The API pods scan pods may connect to: a namespace, a pod label selector, a TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPeer {
    pub namespace: String,
    pub pod_labels: std::collections::BTreeMap<String, String>,
    pub port: u16,
}

impl ApiPeer {
    /// `namespace/key=value,key=value:port`, e.g.
    /// `picket/app.kubernetes.io/name=picket,app.kubernetes.io/component=api:8080`.
    pub fn parse(s: &str) -> Result<ApiPeer, ConfigError> {
        let bad = || {
            ConfigError(format!(
                "{s:?} is not an API selector: expected namespace/key=value[,key=value]:port"
            ))
        };
        let (rest, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
        let (namespace, labels) = rest.split_once('/').ok_or_else(bad)?;
        let mut pod_labels = std::collections::BTreeMap::new();
        for pair in labels.split(',') {
            let (k, v) = pair.split_once('=').ok_or_else(bad)?;
            if k.trim().is_empty() {
                return Err(bad());
            }
            pod_labels.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        if namespace.is_empty() || pod_labels.is_empty() {
            return Err(bad());
        }
        Ok(ApiPeer {
            namespace: namespace.to_owned(),
            pod_labels,
            port,
        })
    }
}

/// Resource requests and limits of the worker, as Kubernetes quantities (`500m`, `2Gi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
    pub ephemeral_storage_request: String,
    pub ephemeral_storage_limit: String,
    /// `sizeLimit` of the `/work` emptyDir (the clone and Semgrep's temporary files); the Pod
    /// is evicted when it grows past it.
    pub work_size_limit: String,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpu_request: "500m".into(),
            cpu_limit: "2".into(),
            memory_request: "1Gi".into(),
            memory_limit: "2Gi".into(),
            ephemeral_storage_request: "1Gi".into(),
            ephemeral_storage_limit: "4Gi".into(),
            work_size_limit: "3Gi".into(),
        }
    }
}

/// Where the worker's DNS queries (UDP and TCP port 53) may go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DnsEgress {
    /// The cluster DNS: Pods labelled `k8s-app=kube-dns` in namespace `kube-system` (CoreDNS on
    /// kind, k3d, GKE, EKS, AKS).
    #[default]
    KubeDns,
    /// These addresses only (e.g. NodeLocal DNSCache's `169.254.20.10/32`).
    Cidrs(Vec<Cidr>),
}

/// An IP network: an address and a prefix length, with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = ConfigError;

    /// `10.0.0.0/8`, `192.0.2.7/32`, `2001:db8::/32`. The prefix is required and host bits
    /// must be zero (the form Kubernetes keeps), so that what is allowed is what is written.
    fn from_str(s: &str) -> Result<Cidr, ConfigError> {
        let bad = |why: &str| ConfigError(format!("`{s}` is not a CIDR ({why})"));
        let (addr, prefix) = s.split_once('/').ok_or_else(|| bad("no /prefix"))?;
        let addr: IpAddr = addr.parse().map_err(|_| bad("bad address"))?;
        if !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.is_empty() || prefix.len() > 3 {
            return Err(bad("bad prefix length"));
        }
        let prefix: u8 = prefix.parse().map_err(|_| bad("bad prefix length"))?;
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > bits {
            return Err(bad("prefix length too long"));
        }
        let host_bits_set = match addr {
            IpAddr::V4(a) => {
                let v = u32::from(a);
                prefix < 32 && v & (u32::MAX >> prefix) != 0
            }
            IpAddr::V6(a) => {
                let v = u128::from(a);
                prefix < 128 && v & (u128::MAX >> prefix) != 0
            }
        };
        if host_bits_set {
            return Err(bad("host bits are set"));
        }
        Ok(Cidr { addr, prefix })
    }
}

/// One allowed egress destination: TCP to `port` of any address in `cidr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressRule {
    pub cidr: Cidr,
    pub port: u16,
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cidr.addr {
            IpAddr::V4(_) => write!(f, "{}:{}", self.cidr, self.port),
            IpAddr::V6(_) => write!(f, "[{}]:{}", self.cidr, self.port),
        }
    }
}

impl FromStr for EgressRule {
    type Err = ConfigError;

    /// `CIDR:port`, with IPv6 networks in brackets like socket addresses: `10.0.0.0/8:443`,
    /// `203.0.113.10/32:7300`, `[2001:db8::/32]:443`. Lists of rules are comma-separated
    /// (see [`parse_egress`]).
    fn from_str(s: &str) -> Result<EgressRule, ConfigError> {
        let bad = |why: &str| ConfigError(format!("`{s}` is not CIDR:port ({why})"));
        let (cidr, port) = if let Some(rest) = s.strip_prefix('[') {
            let (cidr, port) = rest
                .split_once("]:")
                .ok_or_else(|| bad("expected [v6/len]:port"))?;
            (cidr, port)
        } else {
            s.rsplit_once(':').ok_or_else(|| bad("no :port"))?
        };
        let cidr: Cidr = cidr.parse()?;
        if matches!(cidr.addr, IpAddr::V6(_)) && !s.starts_with('[') {
            return Err(bad("IPv6 networks are written in brackets"));
        }
        if !port.bytes().all(|b| b.is_ascii_digit()) || port.is_empty() {
            return Err(bad("bad port"));
        }
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(EgressRule { cidr, port })
    }
}

/// A comma-separated list of `CIDR:port` rules (spaces allowed around commas; empty = none).
pub fn parse_egress(list: &str) -> Result<Vec<EgressRule>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

/// A configuration Picket refuses, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Kubernetes executor configuration: {0}")]
pub struct ConfigError(pub String);

/// Names the executor sets in the worker's environment itself.
const RESERVED_ENV: [&str; 6] = [
    "PICKET_SCAN_TOKEN",
    "PICKET_SCAN_TOKEN_FILE",
    "PICKET_API_URL",
    "PICKET_CA_BUNDLE",
    "TMPDIR",
    "HOME",
];

impl KubeConfig {
    /// A configuration with default resources, cluster DNS and no egress besides it.
    pub fn new(
        namespace: impl Into<String>,
        image: impl Into<String>,
        service_account: impl Into<String>,
        api_url: impl Into<String>,
    ) -> KubeConfig {
        KubeConfig {
            namespace: namespace.into(),
            image: image.into(),
            service_account: service_account.into(),
            api_url: api_url.into(),
            dns: DnsEgress::default(),
            api_peer: None,
            egress: Vec::new(),
            resources: Resources::default(),
            env: Vec::new(),
            ca_bundle: None,
        }
    }

    /// Refuses what would make an unsafe or unusable Pod: an image not pinned by digest, names
    /// Kubernetes would reject, reserved or duplicate environment names.
    pub fn check(&self) -> Result<(), ConfigError> {
        check_image(&self.image)?;
        check_dns_label("namespace", &self.namespace)?;
        check_dns_subdomain("service account", &self.service_account)?;
        if self.api_url.is_empty() {
            return Err(ConfigError("the worker's API URL is empty".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (k, _) in &self.env {
            if RESERVED_ENV.contains(&k.as_str()) {
                return Err(ConfigError(format!(
                    "environment variable {k} is set by the executor"
                )));
            }
            let valid = !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
            if !valid {
                return Err(ConfigError(format!(
                    "`{k}` is not a valid environment variable name"
                )));
            }
            if !seen.insert(k.as_str()) {
                return Err(ConfigError(format!(
                    "environment variable {k} is set twice"
                )));
            }
        }
        let r = &self.resources;
        for (what, q) in [
            ("cpu request", &r.cpu_request),
            ("cpu limit", &r.cpu_limit),
            ("memory request", &r.memory_request),
            ("memory limit", &r.memory_limit),
            ("ephemeral-storage request", &r.ephemeral_storage_request),
            ("ephemeral-storage limit", &r.ephemeral_storage_limit),
            ("work dir size limit", &r.work_size_limit),
        ] {
            check_quantity(what, q)?;
        }
        Ok(())
    }
}

/// `name@sha256:<64 lowercase hex>`: a tag can be moved to other content, a digest cannot.
fn check_image(image: &str) -> Result<(), ConfigError> {
    let refuse = |why: &str| {
        ConfigError(format!(
            "the worker image `{image}` {why}: pin it by digest (name@sha256:<64 hex digits>)"
        ))
    };
    let (name, digest) = image
        .split_once("@sha256:")
        .ok_or_else(|| refuse("has no digest"))?;
    if name.is_empty() || name.contains('@') || name.chars().any(char::is_whitespace) {
        return Err(refuse("has no valid name"));
    }
    if digest.len() != 64
        || !digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(refuse("has a malformed digest"));
    }
    Ok(())
}

fn check_dns_label(what: &str, s: &str) -> Result<(), ConfigError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError(format!("`{s}` is not a valid {what} name")))
    }
}

fn check_dns_subdomain(what: &str, s: &str) -> Result<(), ConfigError> {
    let ok =
        !s.is_empty() && s.len() <= 253 && s.split('.').all(|l| check_dns_label(what, l).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ConfigError(format!("`{s}` is not a valid {what} name")))
    }
}

/// A plain Kubernetes quantity: digits (with an optional fraction) and an optional suffix.
fn check_quantity(what: &str, q: &str) -> Result<(), ConfigError> {
    let number_end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(number_end);
    let number_ok = !number.is_empty()
        && number.bytes().filter(|b| *b == b'.').count() <= 1
        && number.bytes().any(|b| b.is_ascii_digit());
    let suffix_ok = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ]
    .contains(&suffix);
    if number_ok && suffix_ok {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "{what} `{q}` is not a Kubernetes quantity"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn config(image: &str) -> KubeConfig {
        KubeConfig::new(
            "picket-scans",
            image,
            "picket-worker",
            "http://picket-api:8080",
        )
    }

    #[test]
    fn the_image_must_be_pinned_by_digest() {
        for image in [
            "ghcr.io/picket/picket:1.2.3",
            "ghcr.io/picket/picket",
            "ghcr.io/picket/picket:latest@sha256:abc",
            &format!("ghcr.io/picket/picket@sha256:{}", DIGEST.to_uppercase()),
            &format!("ghcr.io/picket/picket@sha512:{DIGEST}"),
            &format!("@sha256:{DIGEST}"),
        ] {
            let err = config(image).check().expect_err(image);
            assert!(err.0.contains("pin it by digest"), "{err}");
        }
        config(&format!("ghcr.io/picket/picket@sha256:{DIGEST}"))
            .check()
            .unwrap();
        config(&format!("ghcr.io/picket/picket:1.2.3@sha256:{DIGEST}"))
            .check()
            .unwrap();
    }

    #[test]
    fn reserved_and_malformed_settings_are_refused() {
        let good = config(&format!("r/p@sha256:{DIGEST}"));
        let mut c = good.clone();
        c.env.push(("PICKET_SCAN_TOKEN".into(), "x".into()));
        assert!(c.check().is_err());
        let mut c = good.clone();
        c.env = vec![("A".into(), "1".into()), ("A".into(), "2".into())];
        assert!(c.check().is_err());
        let mut c = good.clone();
        c.namespace = "Bad_NS".into();
        assert!(c.check().is_err());
        let mut c = good.clone();
        c.resources.memory_limit = "2 GB".into();
        assert!(c.check().is_err());
        let mut c = good.clone();
        c.resources.cpu_request = "250m".into();
        c.resources.work_size_limit = "1.5Gi".into();
        c.check().unwrap();
    }

    #[test]
    fn egress_rules_parse_and_print() {
        let rules =
            parse_egress("10.0.0.0/8:443, 203.0.113.10/32:7300,[2001:db8::/32]:443").unwrap();
        assert_eq!(
            rules.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "10.0.0.0/8:443",
                "203.0.113.10/32:7300",
                "[2001:db8::/32]:443"
            ]
        );
        assert_eq!(rules[0].port, 443);
        assert_eq!(rules[2].cidr.prefix, 32);
        assert_eq!(parse_egress("").unwrap(), vec![]);
        for bad in [
            "10.0.0.0:443",
            "10.0.0.1/8:443",
            "10.0.0.0/33:443",
            "10.0.0.0/8",
            "10.0.0.0/8:0",
            "10.0.0.0/8:65536",
            "10.0.0.0/8:+1",
            "2001:db8::/32:443",
            "[2001:db8::/32]443",
            "[10.0.0.0/8]:x",
            "example.com/32:443",
            "10.0.0.0/+8:443",
        ] {
            assert!(bad.parse::<EgressRule>().is_err(), "{bad} was accepted");
        }
        assert!("0.0.0.0/0:443".parse::<EgressRule>().is_ok());
        assert!("[::/0]:443".parse::<EgressRule>().is_ok());
    }
}

#[cfg(test)]
mod build_tests;
