//! The local sandbox executor: per scan, a fresh directory, a fresh network namespace whose only
//! egress is an allowlist, and the worker inside a bubblewrap sandbox as an unprivileged user.
//!
//! Per attempt (`picket-<installation>-<scan>-<attempt>`):
//! - **Network**: `ip netns add`, a veth pair to the host with a /30 of its own, a default route
//!   to the host side, and an nftables table inside the namespace: nothing may connect in
//!   (input policy drop), and output is dropped except loopback, replies, the per-scan forwarder
//!   to the control plane, DNS to the configured resolvers, and the allowlisted `CIDR:port`s
//!   (TCP). Non-allowed TCP gets a reset, so a refused connection fails at once. The worker runs
//!   without any capability, so it cannot change the rules.
//! - **Control plane**: the worker reaches the API through a forwarder the executor runs on the
//!   host side of the veth (`http://<host side>:<port>` → the API's real address), so the API
//!   itself can stay on loopback.
//! - **Filesystem and processes**: `bwrap` with new PID, IPC, UTS and cgroup namespaces, a new
//!   `/proc`, `/dev` and `/tmp`, `/usr` and the named read-only paths (the worker binary, the
//!   engine, the rules, the operator's CA bundle when there is one) and nothing else of the host, the scan's own directory as the only
//!   writable path (`/scan`), `--die-with-parent`, and `setpriv` dropping to the unprivileged
//!   uid with no capabilities, an empty bounding set and `no_new_privs`. Other scans'
//!   directories and the host's secrets are simply not there.
//! - **Teardown**: the sandbox is stopped, the namespace deleted (its veth goes with it) and the
//!   directory removed. [`Executor::list`] finds leftovers of its own installation by name (`ip
//!   netns list` and the sandbox root), so the reaper removes what a crash left behind and
//!   never touches another installation's sandboxes.
//!
//! # State shared by every installation on the machine
//!
//! - **Addresses**: a /30 is claimed host-wide before it is used, with an open file description
//!   lock on one byte of [`SandboxConfig::address_claims`] (its offset: the /30's first
//!   address), so two installations never hand out the same one. The kernel drops a process's
//!   claims when it dies; a /30 whose address is still on one of the host's interfaces (a
//!   leftover sandbox of a crashed scheduler, reaped or not) is skipped too.
//! - **Masquerading**: the nftables table `ip picket_nat` masquerades what enters from any
//!   sandbox's veth (host side named `pk-…`) and leaves towards anything else. Its content
//!   depends on nothing of an installation, so each executor replaces it atomically at start
//!   without changing another's.
//!
//! Needs root (network namespaces, nftables), `ip` (iproute2), `nft`, `bwrap` and `setpriv`:
//! [`SandboxExecutor::check`] says which is missing.

use crate::executor::{
    env_prefix, own_env, EnvRef, Environment, ExecError, Executor, Exit, Launch,
};
use crate::process::{stop_child, wait_child};
use crate::WorkerCommand;
use picket_core::InstallationId;
use secrecy::ExposeSecret;
use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

/// How long a sandboxed worker has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Addresses for the per-scan /30s: 16,384 sandboxes at most.
const SLOTS: u32 = 16_384;
/// Where a sandboxed worker finds the operator's CA bundle ([`SandboxConfig::ca_bundle`]), and
/// the copy of it in the sandbox root that is bound there.
pub const CA_BUNDLE_PATH: &str = "/etc/picket/ca-bundle.pem";
const CA_BUNDLE_FILE: &str = "ca-bundle.pem";
/// Where every installation on this machine claims its sandboxes' /30s (see the module docs).
pub const ADDRESS_CLAIMS: &str = "/run/picket/sandbox-addresses.lock";
/// The nftables table masquerading the sandboxes' traffic, shared by every installation.
pub const NAT_TABLE: &str = "picket_nat";
/// What the host side of every sandbox's veth is named after (`pk-` + 12 hex digits).
const VETH_PREFIX: &str = "pk-";

/// One allowlisted destination: TCP to `addr/prefix` on `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub port: u16,
}

impl std::str::FromStr for Egress {
    type Err = String;
    /// `10.0.0.0/8:443`, or `192.0.2.7:22` for one address.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("{s:?} is not an egress rule: expected CIDR:port, e.g. 10.0.0.0/8:443");
        let (net, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let (addr, prefix) = net.split_once('/').unwrap_or((net, "32"));
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
        let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
        Ok(Egress { addr, prefix, port })
    }
}

impl std::fmt::Display for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.addr, self.prefix, self.port)
    }
}

/// The host tools the sandbox is built with.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ip: PathBuf,
    pub nft: PathBuf,
    pub bwrap: PathBuf,
    pub setpriv: PathBuf,
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            ip: "/usr/sbin/ip".into(),
            nft: "/usr/sbin/nft".into(),
            bwrap: "/usr/bin/bwrap".into(),
            setpriv: "/usr/bin/setpriv".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The installation whose sandboxes these are: in their names, and all that
    /// [`Executor::list`] and [`Executor::destroy`] touch.
    pub installation: InstallationId,
    /// Where each scan's directory is made (and removed).
    pub root: PathBuf,
    /// Host paths the worker may read, at the same path inside (binary, engine, rules, local
    /// repositories of single-machine use).
    pub readonly: Vec<PathBuf>,
    /// Local git repositories, or directories holding them, the worker may clone
    /// (single-machine use): readable like `readonly`, and trusted by the sandbox's git
    /// configuration (`safe.directory = *`: they belong to another user than the worker's,
    /// and the sandbox holds nothing else of the host to distrust).
    pub local_repos: Vec<PathBuf>,
    /// The only destinations the worker may connect to, besides the control plane and DNS.
    pub egress: Vec<Egress>,
    /// CA certificates (PEM) the worker trusts besides the system's roots: copied once into the
    /// sandbox root, bound read-only at [`CA_BUNDLE_PATH`] and named in `PICKET_CA_BUNDLE`.
    pub ca_bundle: Option<Vec<u8>>,
    /// DNS resolvers the worker may ask (UDP and TCP 53).
    pub dns: Vec<Ipv4Addr>,
    /// Where the control plane's API listens; the worker reaches it through a forwarder.
    pub api: SocketAddr,
    /// The unprivileged user and group the worker runs as.
    pub uid: u32,
    pub gid: u32,
    /// First address of the /16 the per-scan /30s are taken from.
    pub subnet: Ipv4Addr,
    /// The file in which the /30s are claimed, shared by every installation on this machine
    /// (default [`ADDRESS_CLAIMS`]).
    pub address_claims: PathBuf,
    pub tools: Tools,
}

impl SandboxConfig {
    pub fn new(installation: InstallationId, root: PathBuf, api: SocketAddr) -> Self {
        SandboxConfig {
            installation,
            root,
            readonly: Vec::new(),
            local_repos: Vec::new(),
            egress: Vec::new(),
            ca_bundle: None,
            dns: Vec::new(),
            api,
            uid: 65_534,
            gid: 65_534,
            subnet: Ipv4Addr::new(10, 231, 0, 0),
            address_claims: ADDRESS_CLAIMS.into(),
            tools: Tools::default(),
        }
    }
}

#[derive(Debug)]
pub struct SandboxExecutor {
    cfg: Arc<SandboxConfig>,
    worker: WorkerCommand,
    slots: Arc<Mutex<Slots>>,
}

/// The /30s this executor uses, where the next search starts, and the host-wide claims.
#[derive(Debug)]
struct Slots {
    used: BTreeSet<u32>,
    next: u32,
    claims: AddressClaims,
}

impl Slots {
    /// Gives a slot back: forgets it and ends its host-wide claim.
    fn release(&mut self, subnet: Ipv4Addr, slot: u32) {
        self.used.remove(&slot);
        if let Err(e) = self.claims.release(addresses(subnet, slot).0) {
            tracing::warn!(slot, error = %e, "releasing a sandbox address failed");
        }
    }
}

/// Host-wide claims on /30s: an open file description lock (`F_OFD_SETLK`, Linux 3.15+) on the
/// byte of one shared file whose offset is the /30's host address. Such a lock belongs to this
/// open file, not to the process, so two executors in one process exclude each other too, and
/// the kernel drops it when the file is closed, at the latest when the process dies.
#[derive(Debug)]
struct AddressClaims {
    file: std::fs::File,
}

impl AddressClaims {
    fn open(path: &Path) -> std::io::Result<AddressClaims> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        Ok(AddressClaims { file })
    }

    fn lock(&self, addr: Ipv4Addr, kind: i32) -> nix::Result<()> {
        use nix::libc;
        use std::os::fd::AsRawFd;
        let range = libc::flock {
            l_type: kind as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: libc::off_t::from(u32::from(addr)),
            l_len: 1,
            // Must be 0 for open file description locks.
            l_pid: 0,
        };
        nix::fcntl::fcntl(
            self.file.as_raw_fd(),
            nix::fcntl::FcntlArg::F_OFD_SETLK(&range),
        )
        .map(drop)
    }

    /// Claims the /30 of `host`; `false` when another executor holds it.
    fn try_claim(&self, host: Ipv4Addr) -> std::io::Result<bool> {
        match self.lock(host, nix::libc::F_WRLCK) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn release(&self, host: Ipv4Addr) -> std::io::Result<()> {
        self.lock(host, nix::libc::F_UNLCK).map_err(Into::into)
    }
}

/// The IPv4 addresses on this host's interfaces (in this network namespace).
fn local_addresses() -> std::io::Result<HashSet<Ipv4Addr>> {
    Ok(nix::ifaddrs::getifaddrs()?
        .filter_map(|a| a.address)
        .filter_map(|a| a.as_sockaddr_in().map(|s| s.ip()))
        .collect())
}

impl SandboxExecutor {
    /// Whether this machine can sandbox: root, the tools, network namespaces. The error says
    /// what is missing.
    pub async fn check(t: &Tools) -> Result<(), String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("the sandbox needs root (network namespaces, nftables)".into());
        }
        for (tool, path, package) in [
            ("ip", &t.ip, "iproute2"),
            ("nft", &t.nft, "nftables"),
            ("bwrap", &t.bwrap, "bubblewrap"),
            ("setpriv", &t.setpriv, "util-linux"),
        ] {
            if !path.exists() {
                return Err(format!(
                    "{tool} is missing at {} (Debian package {package})",
                    path.display()
                ));
            }
        }
        // Not an environment name: no reaper ever takes it for a sandbox. Unique per check, so
        // executors starting at once in one process do not collide.
        static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let probe = format!(
            "picket-probe-{}-{}",
            std::process::id(),
            PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        run(&t.ip, &["netns", "add", &probe], None)
            .await
            .map_err(|e| format!("cannot create a network namespace: {e}"))?;
        let _ = run(&t.ip, &["netns", "del", &probe], None).await;
        Ok(())
    }

    /// Prepares the host: the sandbox root, IPv4 forwarding (scan namespaces are routed through
    /// the host), masquerading of the sandboxes' traffic for destinations beyond this machine
    /// (the shared [`nat_rules`], replaced atomically), and the host-wide address claims.
    pub async fn new(cfg: SandboxConfig, worker: WorkerCommand) -> Result<Self, String> {
        Self::check(&cfg.tools).await?;
        std::fs::create_dir_all(&cfg.root)
            .map_err(|e| format!("cannot create {}: {e}", cfg.root.display()))?;
        set_mode(&cfg.root, 0o700).map_err(|e| format!("{}: {e}", cfg.root.display()))?;
        if let Some(pem) = &cfg.ca_bundle {
            // Certificates are public: readable by the sandbox's unprivileged user.
            let copy = cfg.root.join(CA_BUNDLE_FILE);
            std::fs::write(&copy, pem)
                .and_then(|()| set_mode(&copy, 0o644))
                .map_err(|e| format!("cannot write {}: {e}", copy.display()))?;
        }
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            .map_err(|e| format!("cannot enable IPv4 forwarding: {e}"))?;
        run(&cfg.tools.nft, &["-f", "-"], Some(&nat_rules())).await?;
        let claims = AddressClaims::open(&cfg.address_claims)
            .map_err(|e| format!("cannot open {}: {e}", cfg.address_claims.display()))?;
        Ok(SandboxExecutor {
            cfg: Arc::new(cfg),
            worker,
            slots: Arc::new(Mutex::new(Slots {
                used: BTreeSet::new(),
                next: 0,
                claims,
            })),
        })
    }

    /// The next free /30 after the last one handed out (so an address is not reused while the
    /// kernel may still be dismantling its previous sandbox), claimed host-wide, and whose
    /// addresses no interface of the host holds (a leftover sandbox's veth).
    fn take_slot(&self) -> Result<u32, ExecError> {
        let local = local_addresses()
            .map_err(|e| launch_failed(format!("cannot list the host's addresses: {e}")))?;
        let mut slots = self.slots.lock().expect("slots");
        let start = slots.next;
        for slot in (0..SLOTS).map(|i| (start + i) % SLOTS) {
            let (host, inside) = addresses(self.cfg.subnet, slot);
            if slots.used.contains(&slot) || local.contains(&host) || local.contains(&inside) {
                continue;
            }
            let claimed = slots.claims.try_claim(host).map_err(|e| {
                launch_failed(format!(
                    "cannot claim a sandbox address in {}: {e}",
                    self.cfg.address_claims.display()
                ))
            })?;
            if claimed {
                slots.used.insert(slot);
                slots.next = (slot + 1) % SLOTS;
                return Ok(slot);
            }
        }
        Err(launch_failed("every sandbox address is in use".into()))
    }
}

/// The host's masquerading of sandbox traffic: what enters from a sandbox's veth and leaves
/// towards anything but another sandbox. Identical for every installation (nothing of one is
/// in it), so replacing it, in one atomic nftables transaction, never changes another's.
pub fn nat_rules() -> String {
    format!(
        "table ip {NAT_TABLE} {{}}\nflush table ip {NAT_TABLE}\n\
         table ip {NAT_TABLE} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         iifname \"{VETH_PREFIX}*\" oifname != \"{VETH_PREFIX}*\" masquerade\n  }}\n}}\n"
    )
}

/// The host and namespace sides of a slot's /30.
fn addresses(subnet: Ipv4Addr, slot: u32) -> (Ipv4Addr, Ipv4Addr) {
    let base = u32::from(subnet) + slot * 4;
    (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
}

/// The veth pair's names: on the host `pk-` and 12 hex digits of a hash of the environment's
/// name (15 characters, the kernel's limit), so that executors on one machine, of any
/// installation, do not pick the same; inside the namespace, where no other interface can
/// clash, `eth0`.
pub fn veth_names(name: &str) -> (String, String) {
    // FNV-1a, 64 bits, of which 48 are kept.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (
        format!("{VETH_PREFIX}{:012x}", hash >> 16),
        "eth0".to_owned(),
    )
}

/// The nftables ruleset inside a scan's namespace.
pub fn namespace_rules(
    host: Ipv4Addr,
    api_port: u16,
    egress: &[Egress],
    dns: &[Ipv4Addr],
) -> String {
    let mut allow = format!("    ip daddr {host} tcp dport {api_port} accept\n");
    for e in egress {
        allow.push_str(&format!(
            "    ip daddr {}/{} tcp dport {} accept\n",
            e.addr, e.prefix, e.port
        ));
    }
    for d in dns {
        allow.push_str(&format!(
            "    ip daddr {d} udp dport 53 accept\n    ip daddr {d} tcp dport 53 accept\n"
        ));
    }
    format!(
        "table inet picket {{\n\
         \x20 chain input {{\n    type filter hook input priority filter; policy drop;\n    \
         iif \"lo\" accept\n    ct state established,related accept\n  }}\n\
         \x20 chain forward {{\n    type filter hook forward priority filter; policy drop;\n  }}\n\
         \x20 chain output {{\n    type filter hook output priority filter; policy drop;\n    \
         oif \"lo\" accept\n    ct state established,related accept\n{allow}    \
         meta l4proto tcp reject with tcp reset\n    reject with icmpx type admin-prohibited\n  }}\n}}\n"
    )
}

/// The bubblewrap arguments: what the worker sees, and the switch to the unprivileged user.
pub fn bwrap_args(cfg: &SandboxConfig, scan_dir: &Path, worker: &WorkerCommand) -> Vec<String> {
    let mut a: Vec<String> = [
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "picket-scan",
        "--cap-drop",
        "ALL",
        // Only to let setpriv switch to the unprivileged user; it drops them with the switch.
        "--cap-add",
        "CAP_SETUID",
        "--cap-add",
        "CAP_SETGID",
        "--cap-add",
        "CAP_SETPCAP",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Parents of bind targets are made world-readable (bwrap would make them 0700).
    let mut made: BTreeSet<PathBuf> = ["/", "/usr", "/tmp", "/proc", "/dev"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let mut dirs_for = |a: &mut Vec<String>, path: &Path| {
        let mut parents: Vec<&Path> = path.ancestors().skip(1).collect();
        parents.reverse();
        for p in parents {
            if made.insert(p.to_path_buf()) {
                a.extend([
                    "--perms".into(),
                    "0755".into(),
                    "--dir".into(),
                    p.display().to_string(),
                ]);
            }
        }
    };
    let etc = [
        "/etc/ssl",
        "/etc/ca-certificates",
        "/etc/resolv.conf",
        "/etc/hosts",
        "/etc/nsswitch.conf",
        "/etc/passwd",
        "/etc/group",
        "/etc/localtime",
    ];
    let lent = cfg
        .readonly
        .iter()
        .chain(&cfg.local_repos)
        .map(PathBuf::as_path);
    for p in etc.iter().map(Path::new).chain(lent) {
        dirs_for(&mut a, p);
        a.extend([
            "--ro-bind-try".into(),
            p.display().to_string(),
            p.display().to_string(),
        ]);
    }
    if cfg.ca_bundle.is_some() {
        dirs_for(&mut a, Path::new(CA_BUNDLE_PATH));
        a.extend([
            "--ro-bind".into(),
            cfg.root.join(CA_BUNDLE_FILE).display().to_string(),
            CA_BUNDLE_PATH.into(),
        ]);
    }
    a.extend([
        "--bind".into(),
        scan_dir.display().to_string(),
        "/scan".into(),
        "--chdir".into(),
        "/scan".into(),
        "--".into(),
        cfg.tools.setpriv.display().to_string(),
        format!("--reuid={}", cfg.uid),
        format!("--regid={}", cfg.gid),
        "--clear-groups".into(),
        "--no-new-privs".into(),
        "--inh-caps=-all".into(),
        "--bounding-set=-all".into(),
        "--".into(),
        worker.program.display().to_string(),
    ]);
    a.extend(worker.args.iter().cloned());
    a
}

/// A running sandbox.
#[derive(Debug)]
pub struct SandboxEnv {
    name: String,
    slot: u32,
    child: tokio::process::Child,
    forwarder: JoinHandle<()>,
    cfg: Arc<SandboxConfig>,
    slots: Arc<Mutex<Slots>>,
}

impl Executor for SandboxExecutor {
    type Env = SandboxEnv;

    fn kind(&self) -> &'static str {
        "sandbox"
    }

    fn installation(&self) -> &InstallationId {
        &self.cfg.installation
    }

    async fn launch(&self, launch: &Launch) -> Result<SandboxEnv, ExecError> {
        let name = launch.env_name();
        let slot = self.take_slot()?;
        match self.start(launch, &name, slot).await {
            Ok((child, forwarder)) => Ok(SandboxEnv {
                name,
                slot,
                child,
                forwarder,
                cfg: Arc::clone(&self.cfg),
                slots: Arc::clone(&self.slots),
            }),
            Err(e) => {
                remove(&self.cfg, &name).await;
                self.slots
                    .lock()
                    .expect("slots")
                    .release(self.cfg.subnet, slot);
                Err(e)
            }
        }
    }

    async fn list(&self) -> Result<Vec<EnvRef>, ExecError> {
        let mut names: BTreeSet<String> = BTreeSet::new();
        let out = run(&self.cfg.tools.ip, &["netns", "list"], None)
            .await
            .map_err(ExecError::Backend)?;
        let ours = |name: &str| own_env(&self.cfg.installation, name).is_some();
        for line in out.lines() {
            if let Some(name) = line.split_whitespace().next() {
                if ours(name) {
                    names.insert(name.to_owned());
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.cfg.root) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if ours(&name) {
                    names.insert(name);
                }
            }
        }
        Ok(names
            .into_iter()
            .map(|name| {
                let created = [
                    self.cfg.root.join(&name),
                    Path::new("/run/netns").join(&name),
                ]
                .iter()
                .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
                .min();
                EnvRef {
                    scan: own_env(&self.cfg.installation, &name),
                    name,
                    created,
                }
            })
            .collect())
    }

    async fn destroy(&self, env: &EnvRef) -> Result<(), ExecError> {
        if own_env(&self.cfg.installation, &env.name).is_none() {
            return Err(ExecError::Backend(format!(
                "{} is not a sandbox of this installation ({})",
                env.name,
                env_prefix(&self.cfg.installation)
            )));
        }
        // Kill whatever still runs in the namespace, then remove it all.
        if let Ok(pids) = run(&self.cfg.tools.ip, &["netns", "pids", &env.name], None).await {
            for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        remove(&self.cfg, &env.name).await;
        Ok(())
    }
}

impl SandboxExecutor {
    async fn start(
        &self,
        launch: &Launch,
        name: &str,
        slot: u32,
    ) -> Result<(tokio::process::Child, JoinHandle<()>), ExecError> {
        let cfg = &self.cfg;
        let ip = &cfg.tools.ip;
        let (host, inside) = addresses(cfg.subnet, slot);
        let (veth_host, veth_ns) = veth_names(name);
        // A leftover of a crashed run may hold the name.
        let _ = run(ip, &["link", "del", &veth_host], None).await;
        run(ip, &["netns", "add", name], None)
            .await
            .map_err(launch_failed)?;
        let host_side = format!(
            "link add {veth_host} type veth peer name {veth_ns} netns {name}\n\
             addr add {host}/30 dev {veth_host}\n\
             link set {veth_host} up\n"
        );
        run(ip, &["-batch", "-"], Some(&host_side))
            .await
            .map_err(launch_failed)?;
        let ns_side = format!(
            "addr add {inside}/30 dev {veth_ns}\n\
             link set {veth_ns} up\n\
             link set lo up\n\
             route add default via {host}\n"
        );
        run(ip, &["-n", name, "-batch", "-"], Some(&ns_side))
            .await
            .map_err(launch_failed)?;
        let rules = namespace_rules(host, cfg.api.port(), &cfg.egress, &cfg.dns);
        run(
            ip,
            &[
                "netns",
                "exec",
                name,
                &cfg.tools.nft.display().to_string(),
                "-f",
                "-",
            ],
            Some(&rules),
        )
        .await
        .map_err(launch_failed)?;

        let forwarder = forward(SocketAddr::new(IpAddr::V4(host), cfg.api.port()), cfg.api)
            .await
            .map_err(|e| launch_failed(format!("cannot start the API forwarder: {e}")))?;

        let dir = cfg.root.join(name);
        let scan_dir = dir.join("scan");
        let made = std::fs::create_dir(&dir)
            .and_then(|()| set_mode(&dir, 0o700))
            .and_then(|()| std::fs::create_dir(&scan_dir))
            .and_then(|()| std::fs::create_dir(scan_dir.join("tmp")))
            .and_then(|()| {
                nix::unistd::chown(&scan_dir, Some(cfg.uid.into()), Some(cfg.gid.into()))
                    .and_then(|()| {
                        nix::unistd::chown(
                            &scan_dir.join("tmp"),
                            Some(cfg.uid.into()),
                            Some(cfg.gid.into()),
                        )
                    })
                    .map_err(std::io::Error::from)
            })
            // bwrap enters it without capabilities: others may traverse, not list. Its parent
            // is root's alone, so no other user reaches it.
            .and_then(|()| set_mode(&scan_dir, 0o711))
            .and_then(|()| {
                if cfg.local_repos.is_empty() {
                    return Ok(());
                }
                std::fs::write(scan_dir.join(".gitconfig"), "[safe]\n\tdirectory = *\n")
            });
        if let Err(e) = made {
            forwarder.abort();
            return Err(launch_failed(format!(
                "cannot create the scan's directory: {e}"
            )));
        }

        // `ip netns exec` enters the namespace and execs bwrap (no fork in between), so bwrap's
        // parent, for --die-with-parent, is this process.
        let args = bwrap_args(cfg, &scan_dir, &self.worker);
        tracing::debug!(env = name, ?args, "starting the sandbox");
        let mut cmd = tokio::process::Command::new(ip);
        cmd.args(["netns", "exec", name])
            .arg(&cfg.tools.bwrap)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/scan")
            .env("TMPDIR", "/scan/tmp")
            .envs(self.worker.env.iter().map(|(k, v)| (k, v)))
            .env(
                "PICKET_API_URL",
                format!("http://{host}:{}", cfg.api.port()),
            )
            // In bwrap's environment (readable by root only), never in its arguments.
            .env("PICKET_SCAN_TOKEN", launch.token.expose_secret())
            .envs(
                cfg.ca_bundle
                    .iter()
                    .map(|_| ("PICKET_CA_BUNDLE", CA_BUNDLE_PATH)),
            )
            .stdin(Stdio::null())
            .kill_on_drop(true);
        match cmd.spawn() {
            Ok(child) => Ok((child, forwarder)),
            Err(e) => {
                forwarder.abort();
                Err(launch_failed(format!("cannot start bwrap: {e}")))
            }
        }
    }
}

impl Environment for SandboxEnv {
    async fn wait(&mut self) -> Result<Exit, ExecError> {
        wait_child(&mut self.child).await
    }

    async fn teardown(mut self) {
        stop_child(&mut self.child, STOP_GRACE).await;
        self.forwarder.abort();
        remove(&self.cfg, &self.name).await;
        self.slots
            .lock()
            .expect("slots")
            .release(self.cfg.subnet, self.slot);
    }
}

/// Deletes a sandbox's namespace (and with it its veth) and its directory.
async fn remove(cfg: &SandboxConfig, name: &str) {
    // The kernel dismantles a deleted namespace (and the veth pair in it) asynchronously, in
    // its own time; until then the host end would keep its address and route, and a new
    // sandbox on the same /30 could see its packets routed into the dying one. Deleting the
    // host end first takes the address and route away at once.
    let (veth_host, _) = veth_names(name);
    if Path::new("/sys/class/net").join(&veth_host).exists() {
        let _ = run(&cfg.tools.ip, &["link", "del", &veth_host], None).await;
    }
    if Path::new("/run/netns").join(name).exists() {
        if let Err(e) = run(&cfg.tools.ip, &["netns", "del", name], None).await {
            tracing::warn!(env = name, error = %e, "deleting the scan's network namespace failed");
        }
    }
    let dir = cfg.root.join(name);
    if dir.exists() {
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            tracing::warn!(dir = %dir.display(), error = %e, "removing the scan's directory failed");
        }
    }
}

/// Accepts on `listen` and pipes each connection to `upstream`, until aborted.
async fn forward(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    Ok(tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            conns.spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
            while conns.try_join_next().is_some() {}
        }
    }))
}

fn launch_failed(message: String) -> ExecError {
    ExecError::Launch {
        code: "sandbox_failed",
        message,
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Runs a host tool to completion; its stdout, or its stderr as the error.
async fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .await
            .map_err(|e| format!("{}: {e}", program.display()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} {} failed ({}): {}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// What running `semgrep` needs to read: its virtualenv (the directory above its `bin/`) and
/// the Python installation the venv points at (`home` in pyvenv.cfg), or the binary alone.
pub fn engine_paths(semgrep: &Path) -> Vec<PathBuf> {
    let Some(venv) = semgrep.parent().and_then(Path::parent) else {
        return vec![semgrep.to_path_buf()];
    };
    let Ok(cfg) = std::fs::read_to_string(venv.join("pyvenv.cfg")) else {
        return vec![semgrep.to_path_buf()];
    };
    let mut paths = vec![venv.to_path_buf()];
    for line in cfg.lines() {
        if let Some(home) = line
            .strip_prefix("home")
            .map(|r| r.trim_start_matches([' ', '=']))
        {
            // `home` is the interpreter's bin/ directory; its parent is the installation.
            if let Some(prefix) = Path::new(home.trim()).parent() {
                paths.push(prefix.to_path_buf());
            }
        }
    }
    paths
}

/// The nameservers of /etc/resolv.conf that a namespace can reach (not loopback).
pub fn host_resolvers() -> Vec<Ipv4Addr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<Ipv4Addr>().ok())
        .filter(|a| !a.is_loopback())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_needs_its_venv_and_its_python() {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join("venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            "home = /opt/python/3.11/bin\nversion = 3.11.7\n",
        )
        .unwrap();
        assert_eq!(
            engine_paths(&venv.join("bin/semgrep")),
            vec![venv.clone(), PathBuf::from("/opt/python/3.11")]
        );
        assert_eq!(
            engine_paths(Path::new("/usr/bin/semgrep")),
            vec![PathBuf::from("/usr/bin/semgrep")]
        );
    }

    #[test]
    fn egress_rules_parse() {
        assert_eq!(
            "10.0.0.0/8:443".parse::<Egress>().unwrap(),
            Egress {
                addr: Ipv4Addr::new(10, 0, 0, 0),
                prefix: 8,
                port: 443
            }
        );
        assert_eq!("192.0.2.7:22".parse::<Egress>().unwrap().prefix, 32);
        for bad in [
            "10.0.0.0/8",
            "10.0.0.0/33:1",
            "x:1",
            "10.0.0.1:0",
            "10.0.0.1:70000",
        ] {
            assert!(bad.parse::<Egress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn slots_get_disjoint_slash_30s() {
        let base = Ipv4Addr::new(10, 231, 0, 0);
        assert_eq!(
            addresses(base, 0),
            (Ipv4Addr::new(10, 231, 0, 1), Ipv4Addr::new(10, 231, 0, 2))
        );
        assert_eq!(
            addresses(base, 64),
            (Ipv4Addr::new(10, 231, 1, 1), Ipv4Addr::new(10, 231, 1, 2))
        );
        assert_eq!(
            addresses(base, SLOTS - 1).1,
            Ipv4Addr::new(10, 231, 255, 254)
        );
    }

    #[test]
    fn veth_names_fit_the_kernel_and_the_nat_rule_names_no_installation() {
        let (host, inside) =
            veth_names("picket-0123456789ab-0190f3c2-8d1e-7b3a-9c4d-5e6f7a8b9c0d-1");
        assert_eq!(host.len(), 15, "{host}");
        assert!(host.starts_with(VETH_PREFIX));
        assert_eq!(inside, "eth0");
        assert_ne!(
            host,
            veth_names("picket-ba9876543210-0190f3c2-8d1e-7b3a-9c4d-5e6f7a8b9c0d-1").0
        );
        let nat = nat_rules();
        assert!(
            nat.contains("iifname \"pk-*\" oifname != \"pk-*\" masquerade"),
            "{nat}"
        );
        assert!(!nat.contains("saddr"), "{nat}");
    }

    #[test]
    fn namespace_rules_allow_only_the_list() {
        let rules = namespace_rules(
            Ipv4Addr::new(10, 231, 0, 1),
            7300,
            &["192.0.2.0/24:443".parse().unwrap()],
            &[Ipv4Addr::new(192, 0, 2, 53)],
        );
        assert!(rules
            .contains("chain input {\n    type filter hook input priority filter; policy drop;"));
        assert!(rules.contains("policy drop;\n    oif \"lo\" accept"));
        assert!(rules.contains("ip daddr 10.231.0.1 tcp dport 7300 accept"));
        assert!(rules.contains("ip daddr 192.0.2.0/24 tcp dport 443 accept"));
        assert!(rules.contains("ip daddr 192.0.2.53 udp dport 53 accept"));
        assert_eq!(rules.matches(" accept").count(), 8, "{rules}");
    }

    #[test]
    fn the_worker_sees_only_what_is_named_and_runs_unprivileged() {
        let mut cfg = SandboxConfig::new(
            "0123456789ab".parse().unwrap(),
            "/var/lib/picket/sandboxes".into(),
            "127.0.0.1:7300".parse().unwrap(),
        );
        cfg.readonly = vec!["/opt/picket/bin/picket".into()];
        let worker = WorkerCommand {
            program: "/opt/picket/bin/picket".into(),
            args: vec!["worker".into()],
            env: vec![],
        };
        let args = bwrap_args(&cfg, Path::new("/var/lib/picket/sandboxes/x/scan"), &worker);
        let joined = args.join(" ");
        assert!(joined.contains("--perms 0755 --dir /opt --perms 0755 --dir /opt/picket --perms 0755 --dir /opt/picket/bin --ro-bind-try /opt/picket/bin/picket /opt/picket/bin/picket"), "{joined}");
        assert!(joined.contains("--bind /var/lib/picket/sandboxes/x/scan /scan"));
        assert!(joined.ends_with("--reuid=65534 --regid=65534 --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- /opt/picket/bin/picket worker"), "{joined}");
        // Writable: the scan's directory and nothing else of the host.
        assert_eq!(args.iter().filter(|a| *a == "--bind").count(), 1);
        assert!(!args
            .iter()
            .any(|a| a == "--share-net" || a == "/root" || a == "/home"));
        assert!(!joined.contains(CA_BUNDLE_PATH), "{joined}");

        // A CA bundle: its copy in the sandbox root, read-only at the one path the worker is told.
        cfg.ca_bundle = Some(b"-----BEGIN CERTIFICATE-----\n".to_vec());
        let args = bwrap_args(&cfg, Path::new("/var/lib/picket/sandboxes/x/scan"), &worker);
        let joined = args.join(" ");
        assert!(
            joined.contains("--perms 0755 --dir /etc/picket --ro-bind /var/lib/picket/sandboxes/ca-bundle.pem /etc/picket/ca-bundle.pem"),
            "{joined}"
        );
        assert_eq!(args.iter().filter(|a| *a == "--bind").count(), 1);
    }
}
