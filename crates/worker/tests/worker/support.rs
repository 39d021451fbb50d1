//! Fixture repositories and the engine configuration for the tests.

use picket_core::protocol::{ScanResults, ScanSpec};
use picket_core::{ProjectId, ScanId, ScanKind};
use picket_worker::clone::CloneLimits;
use picket_worker::scan::WorkerConfig;
use picket_worker::semgrep::SemgrepConfig;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub fn semgrep_binary() -> PathBuf {
    std::env::var_os("PICKET_SEMGREP")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../.venv/bin/semgrep"
            ))
        })
}

pub fn fixture_rules() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/worker/rules"))
}

pub fn config(native: bool) -> WorkerConfig {
    let mut semgrep = SemgrepConfig::new(semgrep_binary(), fixture_rules());
    semgrep.native = native;
    semgrep.jobs = 1;
    WorkerConfig {
        semgrep,
        clone_limits: CloneLimits {
            max_bytes: 64 * 1024 * 1024,
            timeout: Duration::from_secs(60),
            allow_local: true,
        },
    }
}

/// A git repository in a temporary directory, driven with the git CLI.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.email", "test@picket.invalid"]);
        repo.git(&["config", "user.name", "Picket test"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn write(&self, path: &str, content: &str) -> &Repo {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
        self
    }

    pub fn write_bytes(&self, path: &str, content: &[u8]) -> &Repo {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
        self
    }

    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// A scan's findings as (path, first line), sorted.
pub fn found(results: &ScanResults) -> Vec<(&str, u32)> {
    let mut f: Vec<_> = results
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.start_line))
        .collect();
    f.sort();
    f
}

pub fn diff_spec(repo: &Repo, head_ref: &str, base_ref: &str) -> ScanSpec {
    ScanSpec {
        scan_id: ScanId::new(),
        attempt: 1,
        project_id: ProjectId::new(),
        kind: ScanKind::Diff,
        full_name: "fixture/repo".into(),
        clone_url: repo.url(),
        git_ref: head_ref.into(),
        commit_sha: None,
        base_ref: Some(base_ref.into()),
        base_sha: None,
        merge_base_sha: None,
        pr_number: Some(1),
        products: vec![picket_core::Product::Code],
        policy: Default::default(),
        open_finding_paths: vec![],
        rule_packs: vec![],
        path_ignores: vec![],
        inline_suppression: true,
        store_matched_lines: true,
    }
}
