//! The `picket` binary, run as a user would: `picket run` on its embedded defaults, the admin
//! commands, and clear failures on bad configuration.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PICKET: &str = env!("CARGO_BIN_EXE_picket");

/// The fake credentials planted in the demo sample (crates/cli/demo/sample-app/app/settings.py).
const SAMPLE_SECRETS: [&str; 3] = [
    "AKIAQX3NPL7RZ4TWYB2M",
    "ghp_R8fLq2Zt6VwXc9NbH3mKj5PdY7sGa1Ue4Ti0",
    "Pq7vX2mZ9tLw",
];

/// A scratch data directory under /var/tmp (the `postgres` user must be able to reach it when
/// the tests run as root), removed at the end even when a test fails.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let dir = PathBuf::from(format!(
            "/var/tmp/picket-cli-test-{label}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // A server left running by a failed test is stopped before its files are removed.
        let data = self.0.join("data/pg/data");
        if data.join("postmaster.pid").exists() {
            let _ = Command::new("pg_ctl")
                .args(["stop", "-m", "immediate", "-D"])
                .arg(&data)
                .status();
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
                .arg(&data)
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `picket run` as a child process, with what it printed.
struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    fn start_with(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Running {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .unwrap();
        let mut child = Command::new(PICKET)
            .arg("run")
            .env_remove("DATABASE_URL")
            .env_remove("PICKET_SECRET_KEY")
            .env("PICKET_DATA_DIR", data_dir)
            .env("PICKET_LISTEN", "127.0.0.1:0")
            // Tests reach no address but their own: no advisory sync from osv.dev.
            .env("PICKET_ADVISORY_SOURCES", "none")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            // Logs (the server's and its workers') go to <data dir>.log, for the leak check.
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running { child, lines }
    }

    /// Lines printed until "Press Ctrl-C to stop.".
    fn banner(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut out = Vec::new();
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_secs(1)) {
                Ok(line) => {
                    let done = line.contains("Press Ctrl-C to stop.");
                    out.push(line);
                    if done {
                        return out;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(_) => break,
            }
        }
        panic!("picket run printed no banner: {out:?}");
    }

    /// Lines printed until one containing `needle` (included).
    fn until(&self, needle: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_secs(1)) {
                Ok(line) => {
                    let done = line.contains(needle);
                    out.push(line);
                    if done {
                        return out;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(_) => break,
            }
        }
        panic!("picket run never printed {needle:?}: {out:?}");
    }

    /// Sends SIGTERM and waits for the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "picket run did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn api_base(banner: &[String]) -> String {
    banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("API:"))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|url| url.trim_end_matches("/api/v1").to_owned())
        .expect("banner names the API address")
}

async fn post(url: &str, token: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// A git repository at `dir`, holding the demo's sample application.
fn sample_repo(dir: &std::path::Path) {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/sample-app");
    assert!(Command::new("cp")
        .arg("-r")
        .arg(src)
        .arg(dir)
        .status()
        .unwrap()
        .success());
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=Picket test",
            "-c",
            "user.email=test@picket.invalid",
            "commit",
            "-qm",
            "sample",
        ],
    ] {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }
}

async fn get(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn picket_run_starts_the_platform_on_embedded_defaults_and_restarts_cleanly() {
    let scratch = Scratch::new("run");
    let data = scratch.0.join("data");
    // Repositories of this machine that scans may read, one of them a git repository; and one
    // elsewhere. A space in the path, as a user's folder may have.
    let repos = scratch.0.join("my repos");
    std::fs::create_dir_all(&repos).unwrap();
    sample_repo(&repos.join("mine"));
    let elsewhere = scratch.0.join("elsewhere");
    sample_repo(&elsewhere);
    let local_repos = [("PICKET_LOCAL_REPO_DIRS", repos.to_str().unwrap())];

    // First start: private cluster, migrations, default org and a first admin token.
    let run = Running::start_with(&data, &local_repos);
    let banner = run.banner();
    let base = api_base(&banner);
    let token_line = banner
        .iter()
        .position(|l| l.contains("Admin token for org"))
        .expect("token shown");
    let token = banner[token_line + 1].trim().to_owned();
    assert!(token.starts_with("pkt_"), "{token}");
    let saved = std::fs::read_to_string(data.join("admin-token")).unwrap();
    assert_eq!(saved.trim(), token);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("admin-token"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    assert_eq!(get(&format!("{base}/healthz"), None).await.0, 200);
    assert_eq!(get(&format!("{base}/readyz"), None).await.0, 200);
    let (status, org) = get(&format!("{base}/api/v1/org"), Some(&token)).await;
    assert_eq!(status, 200, "{org}");
    assert_eq!(org["slug"], "default");
    assert_eq!(get(&format!("{base}/api/v1/org"), None).await.0, 401);

    // The demo project's initial scan runs through the queue and a local worker, and its
    // findings are printed: the shipped sample has Code and Secrets findings.
    let demo = run.until("(GET /api/v1/projects/", Duration::from_secs(300));
    let summary = demo
        .iter()
        .find(|l| l.starts_with("Demo scan of demo/sample-app"))
        .expect("summary");
    assert!(summary.contains("succeeded"), "{demo:?}");
    assert!(
        demo.iter()
            .any(|l| l.contains(" code ") && l.contains("app/db.py")),
        "{demo:?}"
    );
    assert!(
        demo.iter()
            .any(|l| l.contains(" secrets ") && l.contains("app/settings.py")),
        "{demo:?}"
    );
    // urllib3 1.24.1, against the demo's imported advisories: CVE-2019-11236, CVE-2020-26137.
    let supply: Vec<&String> = demo
        .iter()
        .filter(|l| l.contains(" supply_chain ") && l.contains("requirements.txt:3"))
        .collect();
    assert_eq!(supply.len(), 2, "{demo:?}");
    assert!(
        supply.iter().any(|l| l.contains("CVE-2019-11236")),
        "{demo:?}"
    );
    let (status, projects) = get(&format!("{base}/api/v1/projects"), Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(projects["items"][0]["full_name"], "demo/sample-app");
    assert_eq!(projects["items"][0]["last_scan"]["state"], "succeeded");

    // It ran in a local sandbox, which is gone with everything in it.
    assert!(
        banner
            .iter()
            .any(|l| l.starts_with("  Scans:") && l.contains("local sandbox")),
        "{banner:?}"
    );
    let scan_id = projects["items"][0]["last_scan"]["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let dirs = std::fs::read_dir(data.join("sandboxes")).unwrap().count();
        let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
        let ns_left = String::from_utf8_lossy(&netns.stdout).contains(scan_id);
        if dirs == 0 && !ns_left {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scan's sandbox is left: {dirs} directories, namespace left: {ns_left}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The sample's (fake) secrets never leave the worker: not in any API answer, log line or
    // database row; only their redacted forms do.
    let project = projects["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, findings) = get(
        &format!("{base}/api/v1/projects/{project}/findings"),
        Some(&token),
    )
    .await;
    let findings = findings.to_string();
    assert!(findings.contains("ghp_…"), "{findings}");
    let dump = Command::new("pg_dump")
        .args(["-h"])
        .arg(data.join("pg/run"))
        .args(["-U", "postgres", "--data-only", "picket"])
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let logs = std::fs::read_to_string(data.with_extension("log")).unwrap();
    for canary in SAMPLE_SECRETS {
        assert!(!findings.contains(canary), "API answer leaks {canary}");
        assert!(!logs.contains(canary), "logs leak {canary}");
        assert!(
            !String::from_utf8_lossy(&dump.stdout).contains(canary),
            "database leaks {canary}"
        );
    }

    // A repository in a directory of PICKET_LOCAL_REPO_DIRS is added and scanned in a sandbox;
    // one elsewhere is refused when it is added, naming the setting, not when it is scanned.
    let (status, conn) = post(
        &format!("{base}/api/v1/connections"),
        &token,
        serde_json::json!({"provider": "git", "name": "this machine"}),
    )
    .await;
    assert_eq!(status, 201, "{conn}");
    let project = |path: &std::path::Path| {
        serde_json::json!({"projects": [{
            "connection_id": conn["id"], "provider_repo_id": path.display().to_string(),
            "full_name": format!("local/{}", path.file_name().unwrap().to_string_lossy()),
            "clone_url": reqwest::Url::from_file_path(path).unwrap().to_string(),
            "default_branch": "main",
        }]})
    };
    let (status, refused) = post(
        &format!("{base}/api/v1/projects"),
        &token,
        project(&elsewhere),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["code"], "local_repository_refused", "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("PICKET_LOCAL_REPO_DIRS"),
        "{refused}"
    );
    let (status, added) = post(
        &format!("{base}/api/v1/projects"),
        &token,
        project(&repos.join("mine")),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    let mine = added["projects"][0]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(300);
    let scan = loop {
        let (_, scans) = get(
            &format!("{base}/api/v1/projects/{mine}/scans"),
            Some(&token),
        )
        .await;
        let scan = scans["items"][0].clone();
        let state = scan["state"].as_str().unwrap_or_default().to_owned();
        if ["succeeded", "failed", "cancelled", "timed_out"].contains(&state.as_str())
            || Instant::now() > deadline
        {
            break scan;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(scan["state"], "succeeded", "{scan}");

    // What the terminal showed besides the banner, in text: one line per scan start and end
    // (project, kind, duration, findings), warnings and errors; no request log, no JSON from
    // the workers, no colours when it is no terminal.
    // The end line follows the teardown, which follows the API's answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    let logs = loop {
        let logs = std::fs::read_to_string(data.with_extension("log")).unwrap();
        if logs.contains("local/mine (full) succeeded") || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("scan of ") || line.contains(" WARN ") || line.contains(" ERROR "),
            "unexpected line: {line}
{logs}"
        );
        assert!(!line.starts_with('{') && !line.contains('\x1b'), "{line}");
    }
    for project in ["demo/sample-app", "local/mine"] {
        let lines: Vec<&str> = logs.lines().filter(|l| l.contains(project)).collect();
        assert_eq!(lines.len(), 2, "{project}: {logs}");
        assert!(
            lines[0].contains(&format!("scan of {project} (full) started")),
            "{logs}"
        );
        let end = lines[1];
        assert!(
            end.contains(&format!("scan of {project} (full) succeeded in "))
                && end.contains(" s, ")
                && end.contains(" findings"),
            "{end}"
        );
    }

    assert!(run.stop().success(), "clean exit on SIGTERM");
    assert!(
        !data.join("pg/data/postmaster.pid").exists(),
        "the embedded cluster was stopped"
    );

    // Second start reuses the cluster, the org and the token; no new token is printed. It logs
    // JSON, every process of it, workers included.
    let logged_before = std::fs::metadata(data.with_extension("log")).unwrap().len() as usize;
    let run = Running::start_with(
        &data,
        &[
            local_repos[0],
            ("PICKET_LOG_FORMAT", "json"),
            ("PICKET_LOG", "info,sqlx=warn"),
        ],
    );
    let banner = run.banner();
    assert!(!banner.iter().any(|l| l.contains("pkt_")), "{banner:?}");
    assert!(
        data.join("demo-repo").is_dir(),
        "the demo repository stays in the data directory"
    );
    let base = api_base(&banner);
    let (status, _) = get(&format!("{base}/api/v1/org"), Some(&token)).await;
    assert_eq!(status, 200);
    // The demo project is added once: a restart queues no second demo scan.
    let (_, projects) = get(&format!("{base}/api/v1/projects"), Some(&token)).await;
    let demos: Vec<&serde_json::Value> = projects["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["full_name"] == "demo/sample-app")
        .collect();
    assert_eq!(demos.len(), 1, "{projects}");
    let id = demos[0]["id"].as_str().unwrap().to_owned();
    let (_, history) = get(&format!("{base}/api/v1/projects/{id}/scans"), Some(&token)).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "{history}");
    let (status, conn) = post(
        &format!("{base}/api/v1/connections"),
        &token,
        serde_json::json!({"provider": "git", "name": "this machine, again"}),
    )
    .await;
    assert_eq!(status, 201, "{conn}");
    sample_repo(&repos.join("mine-too"));
    let (status, added) = post(
        &format!("{base}/api/v1/projects"),
        &token,
        serde_json::json!({"projects": [{
            "connection_id": conn["id"], "provider_repo_id": "mine-too",
            "full_name": "local/mine-too",
            "clone_url": reqwest::Url::from_file_path(repos.join("mine-too")).unwrap().to_string(),
            "default_branch": "main",
        }]}),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    let deadline = Instant::now() + Duration::from_secs(300);
    let json_lines = loop {
        let logs = std::fs::read_to_string(data.with_extension("log")).unwrap();
        let new = logs[logged_before..].to_owned();
        if new.contains("local/mine-too (full) succeeded") || Instant::now() > deadline {
            break new;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut targets = std::collections::BTreeSet::new();
    for line in json_lines.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        targets.insert(v["target"].as_str().unwrap_or_default().to_owned());
    }
    for target in [
        "picket::scans",
        "picket_worker::run",
        "picket_cli::local_pg",
    ] {
        assert!(targets.contains(target), "no {target} line: {json_lines}");
    }
    assert!(run.stop().success());
}

/// A database of the test's own on the machine's PostgreSQL (`DATABASE_URL`'s server), made
/// fresh and dropped when the test ends, passed or not, so nothing is left in the shared server.
struct OwnDatabase {
    server: String,
    name: String,
    url: String,
}

impl OwnDatabase {
    /// `picket_cli_<label>_<pid>`: another checkout's tests on the same server use other names.
    fn create(label: &str) -> OwnDatabase {
        let server = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("picket_cli_{label}_{}", std::process::id());
        let url = server
            .rsplit_once('/')
            .map(|(base, _)| format!("{base}/{name}"))
            .unwrap();
        let own = OwnDatabase { server, name, url };
        own.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            own.name
        ));
        assert!(own.psql(&format!("CREATE DATABASE {}", own.name)));
        own
    }

    fn psql(&self, sql: &str) -> bool {
        Command::new("psql")
            .args([self.server.as_str(), "-qc", sql])
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        self.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

fn picket(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(PICKET);
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PICKET_SECRET_KEY")
        .env("PICKET_ADVISORY_SOURCES", "none");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn api_without_a_secret_key_fails_with_a_clear_message() {
    let out = picket(
        &["api"],
        &[(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        )],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--secret-key") || err.contains("PICKET_SECRET_KEY"),
        "{err}"
    );
}

#[test]
fn a_bad_secret_key_is_refused_without_echoing_it() {
    let out = picket(
        &["api", "--listen", "127.0.0.1:0"],
        &[
            (
                "DATABASE_URL",
                &std::env::var("DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            ),
            ("PICKET_SECRET_KEY", "not-hex-supersecret"),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("64 hex characters"), "{err}");
    assert!(!err.contains("supersecret"), "{err}");
}

#[test]
fn an_unreachable_database_is_a_clear_error_without_the_password() {
    let out = picket(
        &["migrate"],
        &[(
            "DATABASE_URL",
            "postgres://picket:hunter2@127.0.0.1:1/picket",
        )],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn unisolated_scans_and_an_unpinned_worker_image_must_be_asked_for() {
    let env = [
        (
            "DATABASE_URL",
            "postgres://picket:hunter2@127.0.0.1:1/picket",
        ),
        ("PICKET_WORKER_API_URL", "http://127.0.0.1:1"),
    ];
    let out = picket(&["scheduler", "--executor", "process"], &env);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without isolation"), "{err}");
    assert!(err.contains("PICKET_ALLOW_UNISOLATED=true"), "{err}");
    let out = picket(&["run", "--executor", "process"], &env);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without isolation"));
    let out = picket(&["scheduler", "--executor", "kubernetes"], &env);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PICKET_WORKER_IMAGE"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // An advisory source that is not an http(s) URL is refused before anything starts.
    let out = picket(
        &[
            "scheduler",
            "--advisory-sources",
            "https://mirror.example/PyPI/all.zip,file:///srv/osv.zip",
        ],
        &env,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PICKET_ADVISORY_SOURCES") && err.contains("file:///srv/osv.zip"),
        "{err}"
    );
}

#[test]
fn a_ca_bundle_that_is_not_only_ca_certificates_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let with_key = dir.path().join("with-key.pem");
    let ca = picket_test_support::TestCa::new("Company CA");
    std::fs::write(
        &with_key,
        format!(
            "{}-----BEGIN PRIVATE KEY-----\nS2VlcE91dA==\n-----END PRIVATE KEY-----\n",
            ca.cert_pem()
        ),
    )
    .unwrap();
    let missing = dir.path().join("missing.pem");
    for (bundle, why) in [
        (&with_key, "PrivateKey section"),
        (&missing, "cannot read the CA bundle"),
    ] {
        let bundle = bundle.display().to_string();
        let env = [
            (
                "DATABASE_URL",
                "postgres://picket:hunter2@127.0.0.1:1/picket",
            ),
            ("PICKET_WORKER_API_URL", "http://127.0.0.1:1"),
            ("PICKET_API_URL", "http://127.0.0.1:1"),
            ("PICKET_SCAN_TOKEN", "pks_not-a-token"),
            ("PICKET_CA_BUNDLE", bundle.as_str()),
        ];
        for command in ["scheduler", "run", "worker"] {
            let out = picket(&[command], &env);
            assert!(!out.status.success(), "{command} {bundle}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("PICKET_CA_BUNDLE"), "{command}: {err}");
            assert!(
                err.contains(&bundle) && err.contains(why),
                "{command}: {err}"
            );
            // Nothing of the file's content is echoed.
            assert!(!err.contains("S2VlcE91dA"), "{command}: {err}");
        }
    }
}

/// An HTTPS server on 127.0.0.1 with a certificate `ca` signed, answering every request with 401
/// (as the API answers a token it does not know). Returns its URL and how many requests it read.
fn https_refusing_every_token(
    ca: &picket_test_support::TestCa,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let config = ca.server_config(&["127.0.0.1"]);
    let requests = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            // Read the request head; a client that refuses the certificate ends the handshake.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match tls.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            if !head.ends_with(b"\r\n\r\n") {
                continue;
            }
            counter.fetch_add(1, Ordering::Relaxed);
            let _ = tls.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/problem+json\r\n\
                  Content-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (url, requests)
}

#[test]
fn the_worker_reaches_a_control_plane_behind_a_private_ca_only_with_the_bundle() {
    use std::sync::atomic::Ordering;
    let ca = picket_test_support::TestCa::new("Company CA");
    let (url, requests) = https_refusing_every_token(&ca);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("company-ca.pem");
    std::fs::write(&bundle, ca.cert_pem()).unwrap();
    let env = |with_bundle: bool| {
        let mut env = vec![
            ("PICKET_API_URL", url.clone()),
            ("PICKET_SCAN_TOKEN", "pks_not-a-token".to_owned()),
            ("TMPDIR", dir.path().display().to_string()),
        ];
        if with_bundle {
            env.push(("PICKET_CA_BUNDLE", bundle.display().to_string()));
        }
        env
    };
    let run = |with_bundle: bool| {
        let env = env(with_bundle);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = picket(&["worker"], &env);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // Without the bundle the TLS handshake fails: no request is ever made.
    let err = run(false);
    assert!(err.contains("cannot reach the control plane"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert_eq!(requests.load(Ordering::Relaxed), 0);

    // With it, the worker's request reaches the server, which refuses the token.
    let err = run(true);
    assert!(err.contains("answered 401"), "{err}");
    assert!(requests.load(Ordering::Relaxed) >= 1);
    // The trust file the worker wrote went with it.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("company-ca.pem")]);
}

#[test]
fn admin_creates_orgs_and_tokens_and_refuses_duplicates() {
    let own = OwnDatabase::create("admin");
    let admin_db = own.url.clone();
    let env = [("DATABASE_URL", admin_db.as_str())];

    assert!(picket(&["migrate"], &env).status.success());
    let out = picket(&["admin", "create-org", "--slug", "acme"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dup = picket(&["admin", "create-org", "--slug", "acme"], &env);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let bad = picket(&["admin", "create-org", "--slug", "Not Valid"], &env);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not valid"));

    let out = picket(
        &[
            "admin",
            "create-token",
            "--org",
            "acme",
            "--name",
            "ci",
            "--role",
            "member",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("pkt_")), "{stdout}");
    let missing = picket(
        &["admin", "create-token", "--org", "nope", "--name", "x"],
        &env,
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
    let role = picket(
        &[
            "admin",
            "create-token",
            "--org",
            "acme",
            "--name",
            "x",
            "--role",
            "root",
        ],
        &env,
    );
    assert!(!role.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn picket_scheduler_serves_health_and_metrics_and_stops_on_sigterm() {
    let own = OwnDatabase::create("scheduler");
    let db_url = own.url.clone();
    assert!(picket(&["migrate"], &[("DATABASE_URL", &db_url)])
        .status
        .success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(PICKET)
        .args([
            "scheduler",
            "--executor",
            "process",
            "--allow-unisolated",
            "true",
        ])
        .env("DATABASE_URL", &db_url)
        .env("PICKET_ADVISORY_SOURCES", "none")
        .env("PICKET_SCHEDULER_LISTEN", format!("127.0.0.1:{port}"))
        .env("PICKET_WORKER_API_URL", "http://127.0.0.1:1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            assert_eq!(r.status().as_u16(), 200);
            break;
        }
        assert!(Instant::now() < deadline, "picket scheduler never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("picket_scheduler_environments_launched_total 0"),
        "{text}"
    );
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "picket scheduler ignored SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

#[test]
fn secrets_may_be_files_and_are_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("database-url");
    std::fs::write(&file, "postgres://picket:hunter2@127.0.0.1:1/picket\n").unwrap();
    let path = file.to_str().unwrap();
    // Read from the file: the server's answer is reported, the password is not.
    let out = picket(&["migrate"], &[("DATABASE_URL_FILE", path)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connecting to PostgreSQL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // Both ways at once, or a file that is not there: refused, naming the variable.
    let out = picket(
        &["migrate"],
        &[
            ("DATABASE_URL_FILE", path),
            (
                "DATABASE_URL",
                "postgres://picket:hunter2@127.0.0.1:1/picket",
            ),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("both DATABASE_URL and DATABASE_URL_FILE"),
        "{err}"
    );
    let out = picket(
        &["migrate"],
        &[("DATABASE_URL_FILE", "/nonexistent/database-url")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DATABASE_URL_FILE"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn advisories_import_reports_what_it_wrote_and_refuses_a_bad_record() {
    let own = OwnDatabase::create("advisories");
    let db_url = own.url.clone();
    let env = [("DATABASE_URL", db_url.as_str())];
    assert!(picket(&["migrate"], &env).status.success());
    let records = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scheduler/tests/scheduler/fixtures/osv"
    );

    let out = picket(&["advisories", "import", records], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("5 records: 5 new, 0 changed, 0 unchanged"),
        "{stdout}"
    );
    let again = picket(&["advisories", "import", records], &env);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("5 records: 0 new, 0 changed, 5 unchanged")
    );

    // A folder with a record that is not OSV: a non-zero exit naming it, nothing written.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("GHSA-0000-0000-0000.json"), "{\"id\": 7}").unwrap();
    let out = picket(
        &["advisories", "import", bad.path().to_str().unwrap()],
        &env,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("GHSA-0000-0000-0000.json"), "{stderr}");
    let none = picket(&["advisories", "import"], &env);
    assert!(!none.status.success(), "a path is required");
}
