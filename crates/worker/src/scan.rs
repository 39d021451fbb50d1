//! One scan attempt, end to end inside the worker: clone → engines → identities → results.
//!
//! Full scan: clone the commit at depth 1, scan the whole tree, fingerprint every finding, and
//! report which of the branch's open-finding paths no longer exist.
//!
//! Diff scan: clone head and target with enough history for their merge base; take the files the
//! PR changed (with git's rename detection); write those files as they were at the merge base
//! into a second directory; scan head's and base's copies in ONE engine invocation; fingerprint
//! both sides with base paths renamed to their head names; report the head findings whose
//! fingerprint is absent at the base. So moved code is not new, an edited body under an
//! unchanged anchor is not new, and a genuinely new match is new (domain.md §3).

use crate::clone::{self, ChangedFile, Checkout, CloneLimits, Credentials, Target};
use crate::identity::{identify, Files};
use crate::rulepack::{self, PackError};
use crate::secrets;
use crate::semgrep::{self, EngineFinding, PackFile, Root, SemgrepConfig};
use picket_core::protocol::{ReportedFinding, RulePackSpec, ScanResults, ScanSpec, StepTiming};
use picket_core::{Fingerprint, Product, ScanKind};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

/// What the worker needs besides the spec.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub semgrep: SemgrepConfig,
    pub clone_limits: CloneLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Clone(#[from] clone::CloneError),
    #[error(transparent)]
    Engine(#[from] semgrep::SemgrepError),
    #[error("the scan spec is incomplete: {0}")]
    Spec(&'static str),
    #[error("the org's rule pack {name:?} cannot be loaded: {source}")]
    RulePack { name: String, source: PackError },
    #[error("cannot prepare the scan's files: {0}")]
    Io(#[from] std::io::Error),
}

impl ScanError {
    /// Stable error code recorded with the failed scan.
    pub fn code(&self) -> &'static str {
        match self {
            ScanError::Clone(e) => e.code(),
            ScanError::Engine(e) => e.code(),
            ScanError::Spec(_) => "bad_spec",
            ScanError::RulePack { .. } => "bad_rule_pack",
            ScanError::Io(_) => "worker_io",
        }
    }
}

/// Times the steps of one attempt; the timings go into the results and the worker's log.
#[derive(Debug, Default)]
pub struct Steps {
    done: Vec<StepTiming>,
}

impl Steps {
    pub async fn time<T, F: std::future::Future<Output = T>>(&mut self, step: &str, f: F) -> T {
        let started = Instant::now();
        let out = f.await;
        let millis = started.elapsed().as_millis() as u64;
        tracing::info!(step, millis, "step finished");
        self.done.push(StepTiming {
            step: step.to_owned(),
            millis,
        });
        out
    }

    pub fn into_vec(self) -> Vec<StepTiming> {
        self.done
    }
}

/// Runs one attempt of the scan described by `spec`.
pub async fn run(
    spec: &ScanSpec,
    credentials: Option<&Credentials>,
    cfg: &WorkerConfig,
) -> Result<ScanResults, ScanError> {
    let mut steps = Steps::default();
    let target = target_of(spec)?;
    // The org's packs go in a directory of their own, outside the checkout, gone with the scan.
    let packs_dir = tempfile::Builder::new().prefix("picket-rules-").tempdir()?;
    let cfg = &WorkerConfig {
        semgrep: with_packs(&cfg.semgrep, &spec.rule_packs, packs_dir.path())?,
        clone_limits: cfg.clone_limits.clone(),
    };
    let checkout = steps
        .time(
            "clone",
            clone::clone(&spec.clone_url, credentials, &target, &cfg.clone_limits),
        )
        .await?;
    let mut results = match spec.kind {
        ScanKind::Full => full(spec, &checkout, cfg, &mut steps).await?,
        ScanKind::Diff => diff(spec, &checkout, cfg, &mut steps).await?,
    };
    results.steps = steps.into_vec();
    Ok(results)
}

/// The engine configuration plus the org's packs, each checked against its hash and written to
/// `dir` under a name of Picket's choosing (never the org's pack name).
fn with_packs(
    engine: &SemgrepConfig,
    packs: &[RulePackSpec],
    dir: &Path,
) -> Result<SemgrepConfig, ScanError> {
    use sha2::{Digest, Sha256};
    let mut engine = engine.clone();
    for (i, pack) in packs.iter().enumerate() {
        let bad = |source| ScanError::RulePack {
            name: pack.name.clone(),
            source,
        };
        let digest = hex::encode(Sha256::digest(pack.content.as_bytes()));
        if digest != pack.sha256 {
            return Err(bad(PackError::Engine(
                "its content does not match its sha256".into(),
            )));
        }
        let rules = rulepack::parse(&pack.content).map_err(bad)?;
        let path = dir.join(format!("pack-{i}.yaml"));
        std::fs::write(&path, &pack.content)?;
        engine.packs.push(PackFile { path, rules });
    }
    Ok(engine)
}

fn target_of(spec: &ScanSpec) -> Result<Target, ScanError> {
    Ok(match spec.kind {
        ScanKind::Full => Target::Full {
            git_ref: spec.git_ref.clone(),
            commit: spec.commit_sha.clone(),
        },
        ScanKind::Diff => Target::Diff {
            head_ref: spec.git_ref.clone(),
            head: spec.commit_sha.clone(),
            base_ref: spec
                .base_ref
                .clone()
                .ok_or(ScanError::Spec("a diff scan needs base_ref"))?,
            base: spec.base_sha.clone(),
            merge_base: spec.merge_base_sha.clone(),
        },
    })
}

async fn full(
    spec: &ScanSpec,
    checkout: &Checkout,
    cfg: &WorkerConfig,
    steps: &mut Steps,
) -> Result<ScanResults, ScanError> {
    // Without a .semgrepignore, Semgrep skips its default list (tests/, vendor/, node_modules/,
    // ...) when it walks a directory, but not in files named explicitly, as a diff scan names
    // them. An empty one makes full and diff scans see the same files; a repository's own
    // .semgrepignore is left as it is.
    let ignore = checkout.path().join(".semgrepignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "")?;
    }
    let roots = [Root {
        dir: checkout.path().to_path_buf(),
        files: None,
    }];
    let run = steps
        .time("engine", semgrep::scan(&cfg.semgrep, &roots))
        .await?;
    let findings: Vec<&EngineFinding> = run.findings.iter().collect();
    let mut files = Files::default();
    let fps = identify(&findings, &[checkout.path()], &mut files, |f| {
        f.path.clone()
    });
    let reported = findings
        .iter()
        .zip(fps)
        .map(|(f, fp)| report(f, fp, false, &roots[0].dir, &mut files))
        .collect();
    let deleted_paths = spec
        .open_finding_paths
        .iter()
        .filter(|p| !checkout.path().join(p).exists())
        .cloned()
        .collect();
    Ok(ScanResults {
        attempt: spec.attempt,
        commit_sha: checkout.head().to_owned(),
        merge_base_sha: None,
        rules_run: run.rules_run.into_iter().collect(),
        deleted_paths,
        files_scanned: run.files_scanned,
        findings: reported,
        steps: Vec::new(),
    })
}

async fn diff(
    spec: &ScanSpec,
    checkout: &Checkout,
    cfg: &WorkerConfig,
    steps: &mut Steps,
) -> Result<ScanResults, ScanError> {
    let changed = checkout.changed_files()?;
    // Files that exist at head, and for each its name at the base when it had one.
    let at_head: Vec<&ChangedFile> = changed
        .iter()
        .filter(|c| c.path_at_head.is_some())
        .collect();
    let head_files: Vec<String> = at_head
        .iter()
        .filter_map(|c| c.path_at_head.clone())
        .collect();
    let base_files: Vec<String> = at_head
        .iter()
        .filter_map(|c| c.path_at_base.clone())
        .collect();
    let head_name_of: HashMap<&str, &str> = at_head
        .iter()
        .filter_map(|c| Some((c.path_at_base.as_deref()?, c.path_at_head.as_deref()?)))
        .collect();

    let base_dir = tempfile::tempdir()?;
    steps
        .time("materialize_base", async {
            checkout.materialize_base(&base_files, base_dir.path())
        })
        .await?;
    let roots = [
        Root {
            dir: checkout.path().to_path_buf(),
            files: Some(head_files),
        },
        Root {
            dir: base_dir.path().to_path_buf(),
            files: Some(base_files),
        },
    ];
    let run = steps
        .time("engine", semgrep::scan(&cfg.semgrep, &roots))
        .await?;
    let (head, base): (Vec<&EngineFinding>, Vec<&EngineFinding>) =
        run.findings.iter().partition(|f| f.root == 0);
    let dirs = [checkout.path(), base_dir.path()];
    let mut files = Files::default();
    let head_fps = identify(&head, &dirs, &mut files, |f| f.path.clone());
    let base_fps: HashSet<Fingerprint> = identify(&base, &dirs, &mut files, |f| {
        head_name_of
            .get(f.path.as_str())
            .map_or_else(|| f.path.clone(), |h| (*h).to_owned())
    })
    .into_iter()
    .collect();
    let reported = head
        .iter()
        .zip(head_fps)
        .filter(|(_, fp)| !base_fps.contains(fp))
        .map(|(f, fp)| report(f, fp, true, checkout.path(), &mut files))
        .collect();
    Ok(ScanResults {
        attempt: spec.attempt,
        commit_sha: checkout.head().to_owned(),
        merge_base_sha: checkout.merge_base().map(str::to_owned),
        rules_run: run.rules_run.into_iter().collect(),
        deleted_paths: Vec::new(),
        files_scanned: run.files_scanned,
        findings: reported,
        steps: Vec::new(),
    })
}

/// The finding as it leaves the worker. For secrets, the value is replaced by a redacted form
/// and a hash, and scrubbed from the message.
fn report(
    f: &EngineFinding,
    fingerprint: Fingerprint,
    new_in_pr: bool,
    root: &Path,
    files: &mut Files,
) -> ReportedFinding {
    let mut message = f.message.clone();
    let secret = (f.product == Product::Secrets).then(|| {
        let content = files.read(&root.join(&f.path));
        let end = f.end_offset.min(content.len());
        let start = f.start_offset.min(end);
        let matched = String::from_utf8_lossy(&content[start..end]).into_owned();
        let value = secrets::value_of(&matched);
        let redacted = secrets::redact(value);
        message = secrets::scrub(&message, value, &redacted.redacted);
        redacted
    });
    ReportedFinding {
        product: f.product,
        rule_id: f.rule.clone(),
        path: f.path.clone(),
        start_line: f.start_line,
        end_line: f.end_line,
        severity: f.severity,
        message,
        fingerprint,
        new_in_pr,
        secret,
    }
}
