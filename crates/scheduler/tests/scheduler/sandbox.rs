//! The local sandbox, for real: network namespaces, nftables and bubblewrap on this machine
//! (root needed). Test hosts are network namespaces these tests create; nothing else is
//! contacted.

use picket_core::{InstallationId, OrgId, ScanId};
use picket_scheduler::sandbox::{SandboxConfig, SandboxExecutor};
use picket_scheduler::{Environment, Executor, Launch, WorkerCommand};
use secrecy::SecretString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A host in a namespace of its own, routed through this machine, answering `hello` on a port.
struct TestHost {
    ns: String,
    server: std::process::Child,
}

impl TestHost {
    fn new(ns: &str, veth: &str, host_side: Ipv4Addr, addr: Ipv4Addr, port: u16) -> TestHost {
        Self::with_route(ns, veth, host_side, addr, port, true)
    }

    /// `route_back: false`: the host knows only its own /30, so it answers a sandbox only when
    /// the host masquerades the sandbox's traffic (as it must for destinations beyond it).
    fn with_route(
        ns: &str,
        veth: &str,
        host_side: Ipv4Addr,
        addr: Ipv4Addr,
        port: u16,
        route_back: bool,
    ) -> TestHost {
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
        let _ = Command::new("ip").args(["link", "del", veth]).output();
        ip(&["netns", "add", ns]);
        ip(&[
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ]);
        ip(&["addr", "add", &format!("{host_side}/30"), "dev", veth]);
        ip(&["link", "set", veth, "up"]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{addr}/30"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", ns, "link", "set", "eth0", "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        if route_back {
            ip(&[
                "-n",
                ns,
                "route",
                "add",
                "default",
                "via",
                &host_side.to_string(),
            ]);
        }
        let server = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c"])
            .arg(format!(
                "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
                 s.bind(('0.0.0.0',{port}))\ns.listen()\nwhile True:\n  c,_=s.accept()\n  c.sendall(b'hello')\n  c.close()\n"
            ))
            .spawn()
            .expect("start the test host's server");
        // Ready once it accepts (the host reaches it over the veth).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(
            &SocketAddr::new(addr.into(), port),
            Duration::from_millis(200),
        )
        .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the test host {ns} never listened"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TestHost {
            ns: ns.to_owned(),
            server,
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// A sandbox configuration of a fresh installation, its address claims in `root` (tests that
/// share a machine's claims between executors pass the same file).
fn executor_cfg(root: &Path, api: SocketAddr, subnet: Ipv4Addr) -> SandboxConfig {
    let mut cfg = SandboxConfig::new(InstallationId::random(), root.to_path_buf(), api);
    cfg.subnet = subnet;
    cfg.address_claims = root.join("addresses.lock");
    cfg
}

/// The worker stand-in: a bash script chosen by the launch's token.
fn bash_worker() -> WorkerCommand {
    WorkerCommand {
        program: "/usr/bin/bash".into(),
        args: vec!["-c".into(), "eval \"$PICKET_SCAN_TOKEN\"".into()],
        env: vec![("PICKET_TEST".into(), "1".into())],
    }
}

fn launch(exec: &SandboxExecutor, script: &str) -> Launch {
    Launch {
        installation: exec.installation().clone(),
        scan_id: ScanId::new(),
        attempt: 1,
        org_id: OrgId::new(),
        token: SecretString::from(script.to_owned()),
        deadline: Duration::from_secs(60),
    }
}

fn netns_exists(name: &str) -> bool {
    ip(&["netns", "list"])
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

#[tokio::test]
async fn egress_is_the_allowlist_and_nothing_connects_in() {
    let allowed = TestHost::new(
        "pkt-allow",
        "pkta",
        Ipv4Addr::new(10, 232, 0, 1),
        Ipv4Addr::new(10, 232, 0, 2),
        8081,
    );
    let denied = TestHost::new(
        "pkt-deny",
        "pktd",
        Ipv4Addr::new(10, 232, 0, 5),
        Ipv4Addr::new(10, 232, 0, 6),
        8081,
    );
    // Stands in for the control plane on loopback: answers `pong` once it has tried, and
    // failed, to connect into the sandbox.
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = api.local_addr().unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut cfg = executor_cfg(root.path(), api_addr, Ipv4Addr::new(10, 233, 0, 0));
    cfg.egress = vec!["10.232.0.2/32:8081".parse().unwrap()];
    let exec = SandboxExecutor::new(cfg, bash_worker())
        .await
        .expect("this machine can sandbox (root, ip, nft, bwrap)");
    let inbound = tokio::spawn(async move {
        let (mut conn, _) = api.accept().await.unwrap();
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ready");
        // The sandbox listens on 9000; from outside, nothing gets in.
        let into = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect("10.233.0.2:9000"),
        )
        .await;
        let got_in = matches!(into, Ok(Ok(_)));
        conn.write_all(if got_in { b"oops" } else { b"pong" })
            .await
            .unwrap();
        got_in
    });
    let script = r#"
set -u
python3 -c "import socket,time;s=socket.socket();s.bind(('0.0.0.0',9000));s.listen();time.sleep(30)" &
sleep 0.5
got=$(timeout 5 bash -c 'exec 3<>/dev/tcp/10.232.0.2/8081; head -c 5 <&3') || exit 10
[ "$got" = hello ] || exit 10
if timeout 5 bash -c 'exec 3<>/dev/tcp/10.232.0.6/8081' 2>/dev/null; then exit 11; fi
if timeout 5 bash -c 'exec 3<>/dev/tcp/10.232.0.2/22' 2>/dev/null; then exit 12; fi
if timeout 5 bash -c 'exec 3<>/dev/tcp/10.232.0.1/22' 2>/dev/null; then exit 13; fi
api=${PICKET_API_URL#http://}
answer=$(timeout 10 bash -c "exec 3<>/dev/tcp/${api%:*}/${api##*:}; printf ready >&3; head -c 4 <&3") || exit 14
[ "$answer" = pong ] || exit 15
[ "$(id -u)" = 65534 ] || exit 16
[ "$PICKET_TEST" = 1 ] || exit 17
exit 0
"#;
    let mut env = exec.launch(&launch(&exec, script)).await.unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(60), env.wait())
        .await
        .expect("the sandbox finished")
        .unwrap();
    env.teardown().await;
    assert!(
        !inbound.await.unwrap(),
        "a connection into the sandbox succeeded"
    );
    assert!(exit.success, "the probe failed: {}", exit.detail);
    drop((allowed, denied));
}

#[tokio::test]
async fn a_scan_sees_neither_other_scans_nor_the_hosts_files() {
    let root = tempfile::tempdir().unwrap();
    let cfg = executor_cfg(
        root.path(),
        "127.0.0.1:9".parse().unwrap(),
        Ipv4Addr::new(10, 234, 0, 0),
    );
    let exec = SandboxExecutor::new(cfg, bash_worker()).await.unwrap();
    let first = launch(&exec, "echo secret > /scan/mine; sleep 30");
    let sleeper = exec.launch(&first).await.unwrap();
    let first_dir = root.path().join(first.env_name());
    assert!(first_dir.join("scan").exists());
    let probe = format!(
        r#"
[ ! -e "{dir}" ] || exit 10
[ ! -e "{root}" ] || exit 11
[ ! -e /root ] && [ ! -e /home ] && [ ! -e /var ] || exit 12
cat /etc/shadow 2>/dev/null && exit 13
[ "$(ls -A /scan)" = tmp ] || exit 14
# Only this sandbox's processes are visible.
[ "$(ls /proc | grep -c '^[0-9]')" -lt 6 ] || exit 15
touch /usr/x 2>/dev/null && exit 16
touch /etc/x 2>/dev/null && exit 17
exit 0
"#,
        dir = first_dir.display(),
        root = root.path().display()
    );
    let mut prober = exec.launch(&launch(&exec, &probe)).await.unwrap();
    let exit = prober.wait().await.unwrap();
    prober.teardown().await;
    assert!(exit.success, "the probe failed: {}", exit.detail);
    sleeper.teardown().await;
    assert!(!first_dir.exists());
}

#[tokio::test]
async fn nothing_is_left_behind_when_the_worker_is_killed_or_the_scheduler_crashes() {
    let root = tempfile::tempdir().unwrap();
    let cfg = executor_cfg(
        root.path(),
        "127.0.0.1:9".parse().unwrap(),
        Ipv4Addr::new(10, 235, 0, 0),
    );
    let exec = SandboxExecutor::new(cfg, bash_worker()).await.unwrap();

    // Killed: every process of the sandbox gets SIGKILL.
    let killed = launch(&exec, "sleep 30");
    let name = killed.env_name();
    let mut env = exec.launch(&killed).await.unwrap();
    assert!(netns_exists(&name));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pids = ip(&["netns", "pids", &name]);
    assert!(!pids.trim().is_empty(), "nothing runs in the sandbox");
    for pid in pids.lines() {
        // Some are gone already: killing the sandbox's init takes its children with it.
        Command::new("kill")
            .args(["-9", pid.trim()])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
    }
    let exit = env.wait().await.unwrap();
    assert!(!exit.success);
    env.teardown().await;
    assert!(!netns_exists(&name), "the namespace is left");
    assert!(!root.path().join(&name).exists(), "the directory is left");
    let (veth, _) = picket_scheduler::sandbox::veth_names(&name);
    assert!(
        !Command::new("ip")
            .args(["link", "show", &veth])
            .output()
            .unwrap()
            .status
            .success(),
        "the veth {veth} is left"
    );

    // Crashed: the environment is dropped without teardown; the reaper's listing finds it and
    // destroy removes everything.
    let crashed = launch(&exec, "sleep 30");
    let name = crashed.env_name();
    let env = exec.launch(&crashed).await.unwrap();
    drop(env);
    let listed = exec.list().await.unwrap();
    let found = listed.iter().find(|e| e.name == name).expect("listed");
    assert_eq!(found.scan, Some((crashed.scan_id, 1)));
    exec.destroy(found).await.unwrap();
    assert!(!netns_exists(&name));
    assert!(!root.path().join(&name).exists());
    assert!(exec.list().await.unwrap().iter().all(|e| e.name != name));
}

/// A stand-in for the control plane on loopback: answers `pong` to every connection.
async fn pong_api() -> SocketAddr {
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = api.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = api.accept().await {
            let _ = conn.write_all(b"pong").await;
        }
    });
    addr
}

/// Reaches the API through the sandbox's forwarder, and `far` when given (a host that answers
/// only masqueraded traffic), then exits 0.
fn reach(far: Option<Ipv4Addr>) -> String {
    let mut script = String::from(
        r#"
api=${PICKET_API_URL#http://}
got=$(timeout 5 bash -c "exec 3<>/dev/tcp/${api%:*}/${api##*:}; head -c 4 <&3") || exit 10
[ "$got" = pong ] || exit 11
"#,
    );
    if let Some(far) = far {
        script.push_str(&format!(
            "got=$(timeout 5 bash -c 'exec 3<>/dev/tcp/{far}/8081; head -c 5 <&3') || exit 12\n\
             [ \"$got\" = hello ] || exit 13\n"
        ));
    }
    script.push_str("exit 0\n");
    script
}

/// The address inside a sandbox's namespace (`10.x.y.z/30`).
fn sandbox_address(name: &str) -> String {
    let out = ip(&["-n", name, "-4", "-o", "addr", "show", "dev", "eth0"]);
    out.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

async fn run_to_end(exec: &SandboxExecutor, script: &str) -> (String, picket_scheduler::Exit) {
    let l = launch(exec, script);
    let mut env = exec.launch(&l).await.unwrap();
    let address = sandbox_address(&l.env_name());
    let exit = tokio::time::timeout(Duration::from_secs(60), env.wait())
        .await
        .expect("the sandbox finished")
        .unwrap();
    env.teardown().await;
    (address, exit)
}

/// Two installations on one machine (different data directories and databases, the same
/// default subnet): they never hand out the same /30, each lists and destroys only its own
/// sandboxes, and neither one's start takes the other's masquerading away, even with another
/// subnet.
#[tokio::test]
async fn two_installations_on_one_machine_keep_to_their_own_sandboxes() {
    let tag = std::process::id() % 100_000;
    let far = TestHost::with_route(
        &format!("pkt-far-{tag}"),
        &format!("pktf{tag}"),
        Ipv4Addr::new(10, 239, 0, 1),
        Ipv4Addr::new(10, 239, 0, 2),
        8081,
        false,
    );
    let api = pong_api().await;
    let machine = tempfile::tempdir().unwrap();
    let (root_a, root_b, root_c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let subnet = Ipv4Addr::new(10, 236, 0, 0);
    let installation = |root: &Path, subnet: Ipv4Addr| {
        let mut cfg = executor_cfg(root, api, subnet);
        cfg.address_claims = machine.path().join("addresses.lock");
        cfg.egress = vec!["10.239.0.2/32:8081".parse().unwrap()];
        cfg
    };
    let a = SandboxExecutor::new(installation(root_a.path(), subnet), bash_worker())
        .await
        .unwrap();
    let running = launch(
        &a,
        &format!("{} sleep 30", reach(None).replace("exit 0\n", "")),
    );
    let mut a1 = a.launch(&running).await.unwrap();
    let a1_address = sandbox_address(&running.env_name());

    // The second installation starts on the same subnet while the first one's scan runs.
    let b = SandboxExecutor::new(installation(root_b.path(), subnet), bash_worker())
        .await
        .unwrap();
    let (b1_address, exit) = run_to_end(&b, &reach(Some(Ipv4Addr::new(10, 239, 0, 2)))).await;
    assert!(exit.success, "b's scan failed: {}", exit.detail);
    assert_ne!(a1_address, b1_address, "two installations took one /30");

    // Each lists only its own sandboxes; neither destroys the other's.
    let names = |envs: Vec<picket_scheduler::EnvRef>| -> Vec<String> {
        envs.into_iter().map(|e| e.name).collect()
    };
    assert_eq!(names(a.list().await.unwrap()), [running.env_name()]);
    assert!(names(b.list().await.unwrap()).is_empty());
    let foreign = a.list().await.unwrap().remove(0);
    assert!(b.destroy(&foreign).await.is_err());
    assert!(netns_exists(&running.env_name()));

    // A third installation on another subnet: the first one's scans still reach beyond the
    // machine.
    let _c = SandboxExecutor::new(
        installation(root_c.path(), Ipv4Addr::new(10, 237, 0, 0)),
        bash_worker(),
    )
    .await
    .unwrap();
    let (_, exit) = run_to_end(&a, &reach(Some(Ipv4Addr::new(10, 239, 0, 2)))).await;
    assert!(exit.success, "a's scan failed: {}", exit.detail);

    // The first scan ran through all of it undisturbed.
    assert!(
        !ip(&["netns", "pids", &running.env_name()])
            .trim()
            .is_empty(),
        "the first installation's running sandbox was killed"
    );
    let early = tokio::time::timeout(Duration::from_millis(100), a1.wait()).await;
    assert!(early.is_err(), "a's scan ended early: {early:?}");
    a1.teardown().await;
    assert!(!netns_exists(&running.env_name()));
    drop(far);
}

/// A scheduler that crashed left a sandbox behind (its scan may still be live, so the reaper
/// keeps it); once restarted, it never hands a new sandbox that sandbox's /30.
#[tokio::test]
async fn a_restarted_executor_never_reuses_a_leftover_sandboxs_address() {
    let api = pong_api().await;
    let root = tempfile::tempdir().unwrap();
    let cfg = executor_cfg(root.path(), api, Ipv4Addr::new(10, 238, 0, 0));
    let before = SandboxExecutor::new(cfg.clone(), bash_worker())
        .await
        .unwrap();
    let left = launch(&before, "sleep 30");
    let env = before.launch(&left).await.unwrap();
    let left_address = sandbox_address(&left.env_name());
    // The crash: nothing is torn down, and the process's claims end with it.
    drop(env);
    drop(before);
    assert!(netns_exists(&left.env_name()));

    let after = SandboxExecutor::new(cfg, bash_worker()).await.unwrap();
    let (address, exit) = run_to_end(&after, &reach(None)).await;
    assert!(exit.success, "the new scan failed: {}", exit.detail);
    assert_ne!(
        address, left_address,
        "the leftover's /30 was handed out again"
    );

    // The leftover is its installation's own: listed, and destroyed.
    let leftover = after
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.name == left.env_name())
        .expect("the leftover is listed");
    after.destroy(&leftover).await.unwrap();
    assert!(!netns_exists(&left.env_name()));
}
