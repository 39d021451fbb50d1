//! `picket run` in a network namespace of its own, for the tests that drive a real platform with
//! tools of their own (the contract test, the SARIF test): the namespace has only loopback, so
//! nothing the platform does (clones of fuzzed URLs included) reaches beyond it; its data
//! directory is the caller's temporary directory. Both go on drop, pass or fail. Needs root.

use picket_tests::picket_binary;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
pub const LISTEN: &str = "127.0.0.1:7300";

pub fn schemathesis_binary() -> PathBuf {
    let path = Path::new(REPO).join(".venv-schemathesis/bin/schemathesis");
    assert!(
        path.exists(),
        "{} is missing: run `make schemathesis` first (`make test` does)",
        path.display()
    );
    path
}

/// A network namespace with only loopback, deleted on drop.
pub struct Netns(String);

impl Netns {
    /// `label` tells apart the namespaces of tests running at once.
    pub fn create(label: &str) -> Netns {
        let name = format!("pkt-{label}-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns(name);
        run(ns.exec("ip").args(["link", "set", "lo", "up"]));
        ns
    }

    /// `program` to be run inside the namespace.
    pub fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0]).arg(program);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("running a command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `picket run` inside the namespace, on its own data directory; stopped (and its embedded
/// PostgreSQL with it) on drop.
pub struct Server {
    child: Child,
    data: PathBuf,
    /// The one-time sign-in link `picket run` printed.
    pub sign_in_link: Option<String>,
}

impl Server {
    pub fn start(ns: &Netns, data: &Path) -> (Server, String) {
        Server::start_with(ns, data, &[])
    }

    /// [`Server::start`] with more environment for `picket run`.
    pub fn start_with(ns: &Netns, data: &Path, env: &[(&str, &str)]) -> (Server, String) {
        let mut child = ns
            .exec(picket_binary())
            .arg("run")
            .env_remove("DATABASE_URL")
            .env_remove("PICKET_SECRET_KEY")
            .env("PICKET_DATA_DIR", data)
            .env("PICKET_LISTEN", LISTEN)
            // The namespace is the isolation here; scans run as plain processes inside it.
            .env("PICKET_EXECUTOR", "process")
            .env("PICKET_ALLOW_UNISOLATED", "true")
            // The demo project gives the fuzzer a scan, findings and a project to work on.
            .env("PICKET_DEMO", "true")
            .env("PICKET_LOG", "warn")
            // Nothing outside the namespace is reachable anyway; no advisory sync is tried.
            .env("PICKET_ADVISORY_SOURCES", "none")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting picket run");
        let stdout = child.stdout.take().expect("stdout");
        let mut server = Server {
            child,
            data: data.to_path_buf(),
            sign_in_link: None,
        };
        // Wait for the demo scan's findings: the platform is up and has data.
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.starts_with("Demo scan of");
            seen.push(line);
            if done || Instant::now() > deadline {
                break;
            }
        }
        assert!(
            seen.iter()
                .any(|l| l.starts_with("Demo scan of") && l.contains("succeeded")),
            "picket run did not come up with its demo scan: {seen:#?}"
        );
        server.sign_in_link = seen.iter().find_map(|l| {
            let at = l.find("http://")?;
            let link = l[at..].split_whitespace().next()?;
            link.contains("/sign-in/link?code=")
                .then(|| link.to_owned())
        });
        let token = std::fs::read_to_string(data.join("admin-token"))
            .expect("the admin token file")
            .trim()
            .to_owned();
        (server, token)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The embedded cluster outlives a killed `picket run`: stop it before its files go.
        let pg = self.data.join("pg/data");
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "pg_ctl",
                "stop",
                "-m",
                "immediate",
                "-D",
            ])
            .arg(&pg)
            .status();
    }
}

/// A temporary directory the embedded cluster's `postgres` user can reach.
pub fn scratch(label: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("picket-{label}-"))
        .tempdir()
        .expect("a temporary directory");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    dir
}

/// One HTTP request inside the namespace (with the schemathesis venv's Python, which is there
/// whenever schemathesis is): status, content type and body.
pub fn http(
    ns: &Netns,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&serde_json::Value>,
) -> (u16, String, Vec<u8>) {
    let python = schemathesis_binary().with_file_name("python");
    let script = r#"
import json, sys, urllib.error, urllib.request
method, url, token, body = sys.argv[1:5]
req = urllib.request.Request(url, method=method, data=body.encode() if body else None,
    headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
try:
    resp = urllib.request.urlopen(req)
except urllib.error.HTTPError as e:
    resp = e
sys.stdout.write(json.dumps({"status": resp.status, "type": resp.headers.get("content-type")}) + "\n")
sys.stdout.flush()
sys.stdout.buffer.write(resp.read())
"#;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let out = ns
        .exec(python)
        .args([
            "-c",
            script,
            method,
            &format!("http://{LISTEN}{path}"),
            token,
            &body,
        ])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{method} {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let split = out
        .stdout
        .iter()
        .position(|b| *b == b'\n')
        .expect("a status line");
    let head: serde_json::Value = serde_json::from_slice(&out.stdout[..split]).expect("JSON");
    (
        head["status"].as_u64().unwrap_or_default() as u16,
        head["type"].as_str().unwrap_or_default().to_owned(),
        out.stdout[split + 1..].to_vec(),
    )
}
