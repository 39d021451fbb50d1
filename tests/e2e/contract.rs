//! The API contract: schemathesis (the pinned PyPI package, `make schemathesis`) against a real
//! `picket run`, with every check, on every operation but the worker routes, must find nothing.
//! It generates requests from the OpenAPI description the server publishes, so a route that
//! refuses a request its description allows, accepts one it forbids, or answers a status it does
//! not document fails this test, including a route added later.
//!
//! Two passes: as the org's admin (everything), then as a member (the admin routes' 403 must be
//! documented). The server runs in a network namespace this test creates with only loopback in
//! it: projects the fuzzer adds get scans, and their fuzzed clone URLs must reach nothing beyond
//! it. Its data directory is a temporary directory; both go when the test ends, pass or fail.
//! Needs root (the namespace), as the sandbox tests do.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const LISTEN: &str = "127.0.0.1:7300";

/// `target/<profile>/picket`, next to this test's `deps/` directory.
fn picket_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .join("picket");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p picket-cli --bin picket` first (`make test` does)",
        path.display()
    );
    path
}

fn schemathesis_binary() -> PathBuf {
    let path = Path::new(REPO).join(".venv-schemathesis/bin/schemathesis");
    assert!(
        path.exists(),
        "{} is missing: run `make schemathesis` first (`make test` does)",
        path.display()
    );
    path
}

/// A network namespace with only loopback, deleted on drop.
struct Netns(String);

impl Netns {
    fn create() -> Netns {
        let name = format!("pkt-contract-{}", std::process::id());
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
    fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
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
struct Server {
    child: Child,
    data: PathBuf,
}

impl Server {
    fn start(ns: &Netns, data: &Path) -> (Server, String) {
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
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting picket run");
        let stdout = child.stdout.take().expect("stdout");
        let server = Server {
            child,
            data: data.to_path_buf(),
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

/// One schemathesis run with `token`; returns its exit status and output.
fn schemathesis(ns: &Netns, dir: &Path, token: &str, extra: &[&str]) -> (bool, String) {
    let out = ns
        .exec(schemathesis_binary())
        .arg("--config-file")
        .arg(Path::new(REPO).join("tests/contract/schemathesis.toml"))
        .args(["run", &format!("http://{LISTEN}/api/v1/openapi.json")])
        .args(["--checks", "all", "--exclude-tag", "worker"])
        // One worker: schemathesis' threads race in Python's `ast` on 3.11 (a runtime error,
        // not a finding).
        .args(["--workers", "1"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .args(extra)
        // Hypothesis keeps its example database in the working directory.
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("running schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn schemathesis_finds_the_server_doing_what_its_openapi_description_says() {
    let dir = tempfile::Builder::new()
        .prefix("picket-contract-")
        .tempdir()
        .expect("a temporary directory");
    // The embedded cluster runs as the `postgres` user, which must reach its data directory.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let ns = Netns::create();
    let (server, admin) = Server::start(&ns, &dir.path().join("data"));

    let (ok, report) = schemathesis(&ns, dir.path(), &admin, &[]);
    assert!(ok, "schemathesis (admin) found failures:\n{report}");
    assert!(
        report.contains("Tested: ") && !report.contains("Tested: 0"),
        "schemathesis tested nothing:\n{report}"
    );

    // A member's requests: the admin routes answer 403, which must be documented.
    let member = member_token(&ns, &admin);
    let (ok, report) = schemathesis(
        &ns,
        dir.path(),
        &member,
        &[
            "--max-examples",
            "20",
            "--phases",
            "examples,coverage,fuzzing",
        ],
    );
    assert!(ok, "schemathesis (member) found failures:\n{report}");
    drop(server);
}

/// A member token, made through the API inside the namespace (with the schemathesis venv's
/// Python, which is there whenever schemathesis is).
fn member_token(ns: &Netns, admin: &str) -> String {
    let python = schemathesis_binary().with_file_name("python");
    let script = r#"
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], method="POST",
    data=json.dumps({"name": "contract-member", "role": "member"}).encode(),
    headers={"Content-Type": "application/json", "Authorization": "Bearer " + sys.argv[2]})
print(json.load(urllib.request.urlopen(req))["token"])
"#;
    let out = ns
        .exec(python)
        .args([
            "-c",
            script,
            &format!("http://{LISTEN}/api/v1/tokens"),
            admin,
        ])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "creating a member token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
