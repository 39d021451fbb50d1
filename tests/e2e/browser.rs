//! The web UI in a real browser: `tests/browser/browser.mjs` (Debian's Chromium through the
//! pinned playwright-core, axe-core for accessibility; `make browser-tools` installs them) drives
//! a real `picket run` in a network namespace of this test's own, with three local git
//! repositories this test creates. The script walks the UI as a user would (sign in, add
//! projects, bulk scan and watch it live, a scan's steps, a rule to Block, triage that survives a
//! new scan, bulk ignore by filter, CSV export, token revocation, the keyboard-only bulk scan,
//! CSRF) and checks every page state for console errors, failed requests, responses >= 400,
//! WCAG 2.2 AA violations (serious or critical), unnamed controls and horizontal scrolling at
//! 1280 and 390 px. Screenshots of every page at both widths go to
//! `target/tmp/browser/` (the test prints where). Needs root (the namespace).

use crate::running::{scratch, Netns, Server, LISTEN, REPO};
use std::path::{Path, PathBuf};
use std::process::Command;

fn node_modules() -> PathBuf {
    let dir = Path::new(REPO).join("tests/browser/node_modules");
    assert!(
        dir.join("playwright-core").exists() && dir.join("axe-core").exists(),
        "{} is incomplete: run `make browser-tools` first (`make test` does)",
        dir.display()
    );
    dir
}

fn chromium() -> &'static str {
    let path = "/usr/bin/chromium";
    assert!(
        Path::new(path).exists(),
        "{path} is missing: run `make browser-tools` first (`make test` does)"
    );
    path
}

/// A git repository with one commit on `main` holding code Picket's rules flag.
fn repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("app.py"),
        "import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n\n\
         def ev(x):\n    return eval(x)\n",
    )
    .unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "init",
        ],
    ] {
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }
}

#[test]
fn a_user_runs_picket_from_the_browser() {
    let modules = node_modules();
    let chromium = chromium();
    let dir = scratch("browser");
    let repos = dir.path().join("repos");
    let names = ["local/one", "local/two", "local/three"];
    let mut listed = Vec::new();
    for name in names {
        let path = repos.join(name.replace('/', "-"));
        repo(&path);
        listed.push(serde_json::json!({"name": name, "url": format!("file://{}", path.display())}));
    }
    let ns = Netns::create("browser");
    let (server, admin) = Server::start_with(
        &ns,
        &dir.path().join("data"),
        &[("PICKET_LOCAL_REPO_DIRS", repos.to_str().unwrap())],
    );
    let link = server
        .sign_in_link
        .clone()
        .expect("picket run prints a sign-in link");
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let _ = std::fs::remove_dir_all(&artifacts);

    let out = ns
        .exec("node")
        .arg(Path::new(REPO).join("tests/browser/browser.mjs"))
        .current_dir(modules.parent().unwrap())
        .env("PICKET_URL", format!("http://{LISTEN}"))
        .env("SIGN_IN_LINK", &link)
        .env("ADMIN_TOKEN", &admin)
        .env("REPOS", serde_json::Value::from(listed).to_string())
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", chromium)
        .output()
        .expect("running node");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server);
    eprintln!("{report}\nscreenshots: {}", artifacts.display());
    assert!(out.status.success(), "the browser test failed:\n{report}");
    // Every page, at both widths.
    for page in [
        "sign-in",
        "projects",
        "projects-not-scanning-empty",
        "scan",
        "scan-logs",
        "project",
        "connections",
        "connection",
        "policies",
        "findings",
        "findings-empty",
        "finding",
        "settings",
    ] {
        for width in [1280, 390] {
            let shot = artifacts.join(format!("{page}-{width}.png"));
            assert!(shot.exists(), "no screenshot {}", shot.display());
        }
    }
}
