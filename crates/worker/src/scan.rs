//! One scan attempt, end to end inside the worker: clone → targets → engine → suppressions →
//! identities → results, each step recorded in the attempt's trail.
//!
//! Full scan: clone the commit at depth 1, select the files to scan (the repository's
//! `.semgrepignore` or Semgrep's defaults, plus the project's path ignores, applied by
//! [`picket_engine::targets`]; files over the engine's size limit are skipped and reported),
//! remove everything else from the checkout so the engine sees exactly the selection, scan,
//! fingerprint every finding, and report which of the branch's open-finding paths are no longer
//! scanned (deleted, or ignored now).
//!
//! Diff scan: clone head and target with enough history for their merge base; take the files the
//! PR changed (with git's rename detection); pass head paths and base paths through the same
//! filter; write the base files as they were at the merge base into a second directory; scan
//! head's and base's copies in ONE engine invocation; fingerprint both sides with base paths
//! renamed to their head names; report the head findings whose fingerprint is absent at the base
//! as new, and the base findings absent at the head as fixed in the PR. So moved code is not new,
//! an edited body under an unchanged anchor is not new, a genuinely new match is new, a file
//! leaving an ignored path brings its findings in as new, and a file inside one never yields any
//! (domain.md §3).
//!
//! The engine runs with its own `nosemgrep` handling off; [`picket_engine::nosem`] marks the
//! findings a comment covers (when the org allows inline suppression), and they are reported
//! like the others, flagged, so the control plane keeps them as `ignored`.
//!
//! A file the engine cannot read or parse is skipped and reported with the engine's reason; the
//! scan goes on with everything else.

use crate::clone::{self, ChangedFile, Checkout, CloneLimits, Credentials, Target};
use crate::identity::{identify, Files};
use crate::rulepack::{self, PackError};
use crate::secrets;
use crate::semgrep::{self, EngineFinding, EngineRun, PackFile, Root, SemgrepConfig};
use crate::supply_chain::{self, AdvisorySource};
use picket_core::feedback::DiffLines;
use picket_core::protocol::{
    InlineSuppression, ReportedFinding, RulePackSpec, RulePackUse, ScanResults, ScanSpec,
    ScanTrail, SkipKind, SkippedFile, Step, MAX_MATCHED_LINES, MAX_MATCHED_LINE_CHARS,
};
use picket_core::{Fingerprint, Product, ScanKind};
use picket_engine::nosem;
use picket_engine::targets::{self, IgnoreTally, PathFilter};
use std::collections::{BTreeMap, HashMap, HashSet};
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
    #[error("supply chain: {0}")]
    SupplyChain(#[from] supply_chain::Error),
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
            ScanError::SupplyChain(supply_chain::Error::Advisories(_)) => "advisories_unavailable",
            ScanError::SupplyChain(supply_chain::Error::Clone(e)) => e.code(),
        }
    }
}

/// A failed attempt: the error, the step it failed in, and the trail up to it.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Failed {
    #[source]
    pub error: ScanError,
    pub step: Option<String>,
    pub trail: ScanTrail,
}

/// The attempt's trail as it is written: each step with its start, duration and figures.
#[derive(Debug, Default)]
pub struct Trail {
    trail: ScanTrail,
    failed_step: Option<String>,
}

impl Trail {
    /// Runs one step, recording it whether it succeeds or fails; `figures` reads what it counted
    /// from its output.
    pub async fn step<T, E, F>(
        &mut self,
        step: &str,
        f: F,
        figures: impl FnOnce(&T) -> Vec<(&'static str, u64)>,
    ) -> Result<T, E>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        let started_at = time::OffsetDateTime::now_utc();
        let started = Instant::now();
        tracing::info!("{step}: started");
        let out = f.await;
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let figures: BTreeMap<String, u64> = match &out {
            Ok(v) => figures(v)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            Err(_) => {
                self.failed_step = Some(step.to_owned());
                BTreeMap::new()
            }
        };
        let counted = figures
            .iter()
            .map(|(k, v)| format!("{}: {v}", k.replace('_', " ")))
            .collect::<Vec<_>>()
            .join(", ");
        match &out {
            Ok(_) => tracing::info!(
                "{step}: done in {millis} ms{}{counted}",
                if counted.is_empty() { "" } else { "; " }
            ),
            Err(_) => tracing::warn!("{step}: failed after {millis} ms"),
        }
        self.trail.steps.push(Step {
            step: step.to_owned(),
            started_at,
            millis,
            figures,
        });
        out
    }

    /// The trail so far.
    pub fn into_trail(self) -> ScanTrail {
        self.trail
    }
}

/// Runs one attempt of the scan described by `spec`, without an advisory store: a spec that
/// asks for Supply Chain fails with `advisories_unavailable` (see [`run_with`]).
pub async fn run(
    spec: &ScanSpec,
    credentials: Option<&Credentials>,
    cfg: &WorkerConfig,
) -> Result<ScanResults, Failed> {
    run_with(spec, credentials, cfg, &NoAdvisories).await
}

/// Runs one attempt of the scan described by `spec`, Supply Chain asking `advisories`.
pub async fn run_with(
    spec: &ScanSpec,
    credentials: Option<&Credentials>,
    cfg: &WorkerConfig,
    advisories: &dyn AdvisorySource,
) -> Result<ScanResults, Failed> {
    run_for_feedback(spec, credentials, cfg, advisories)
        .await
        .map(|(results, _)| results)
}

/// The advisory source of [`run`]: there is none.
struct NoAdvisories;

#[async_trait::async_trait]
impl AdvisorySource for NoAdvisories {
    async fn advisories(
        &self,
        _: &picket_core::protocol::AdvisoryQuery,
    ) -> Result<supply_chain::Advisories, String> {
        Err("this worker was started without an advisory store".to_owned())
    }
}

/// [`run`], and for a pull request's diff scan the lines of the PR's diff that can carry an
/// inline comment (see [`crate::diff_lines`]); `None` for other scans, or when git could not
/// tell them (the feedback then lists every finding in its summary).
pub async fn run_for_feedback(
    spec: &ScanSpec,
    credentials: Option<&Credentials>,
    cfg: &WorkerConfig,
    advisories: &dyn AdvisorySource,
) -> Result<(ScanResults, Option<DiffLines>), Failed> {
    let mut trail = Trail::default();
    match attempt(spec, credentials, cfg, advisories, &mut trail).await {
        Ok((mut results, diff_lines)) => {
            results.trail = trail.into_trail();
            Ok((results, diff_lines))
        }
        Err(error) => Err(Failed {
            error,
            step: trail.failed_step.clone(),
            trail: trail.into_trail(),
        }),
    }
}

async fn attempt(
    spec: &ScanSpec,
    credentials: Option<&Credentials>,
    cfg: &WorkerConfig,
    advisories: &dyn AdvisorySource,
    trail: &mut Trail,
) -> Result<(ScanResults, Option<DiffLines>), ScanError> {
    let target = target_of(spec)?;
    // The org's packs go in a directory of their own, outside the checkout, gone with the scan.
    let packs_dir = tempfile::Builder::new().prefix("picket-rules-").tempdir()?;
    let (engine, packs_used) = with_packs(&cfg.semgrep, &spec.rule_packs, packs_dir.path())?;
    trail.trail.rule_packs = packs_used;
    let cfg = &WorkerConfig {
        semgrep: engine,
        clone_limits: cfg.clone_limits.clone(),
    };
    let checkout = trail
        .step(
            "clone",
            clone::clone(&spec.clone_url, credentials, &target, &cfg.clone_limits),
            |c: &Checkout| {
                let s = c.stats();
                vec![
                    ("bytes_received", s.bytes_received),
                    ("objects_received", s.objects_received),
                    ("fetches", u64::from(s.fetches)),
                    ("depth", s.depth.map_or(0, u64::from)),
                ]
            },
        )
        .await?;
    match spec.kind {
        ScanKind::Full => Ok((full(spec, &checkout, cfg, advisories, trail).await?, None)),
        ScanKind::Diff => {
            let results = diff(spec, &checkout, cfg, advisories, trail).await?;
            let lines = match spec.pr_number {
                Some(_) => match checkout.diff_lines() {
                    Ok(lines) => Some(lines),
                    Err(e) => {
                        tracing::warn!(error = %e, "the PR diff's lines could not be read; feedback goes in the summary");
                        None
                    }
                },
                None => None,
            };
            Ok((results, lines))
        }
    }
}

/// The engine configuration plus the org's packs, each checked against its hash and written to
/// `dir` under a name of Picket's choosing (never the org's pack name); and what was loaded.
fn with_packs(
    engine: &SemgrepConfig,
    packs: &[RulePackSpec],
    dir: &Path,
) -> Result<(SemgrepConfig, Vec<RulePackUse>), ScanError> {
    use sha2::{Digest, Sha256};
    let mut engine = engine.clone();
    let mut used = vec![own_pack(&engine.rules_dir)?];
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
        used.push(RulePackUse {
            name: pack.name.clone(),
            sha256: digest,
            rules: rules.rules.len() as u64,
        });
        engine.packs.push(PackFile { path, rules });
    }
    Ok((engine, used))
}

/// Picket's own pack as loaded: a SHA-256 over its rule files (relative path and content, in
/// path order) and the number of rules.
fn own_pack(rules_dir: &Path) -> Result<RulePackUse, ScanError> {
    use sha2::{Digest, Sha256};
    let (files, _) = targets::tree_files(rules_dir)?;
    let mut hasher = Sha256::new();
    for f in files
        .iter()
        .filter(|f| f.ends_with(".yaml") || f.ends_with(".yml"))
    {
        hasher.update(f.as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(rules_dir.join(f))?);
        hasher.update([0]);
    }
    let rules = semgrep::rules_in_dir(rules_dir)?.len() as u64;
    Ok(RulePackUse {
        name: "picket".to_owned(),
        sha256: hex::encode(hasher.finalize()),
        rules,
    })
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
            merge_base: spec.merge_base_sha.clone(),
        },
    })
}

/// The files of a full scan: the checkout's files minus ignored ones and those over the engine's
/// size limit.
struct Selection {
    scanned: Vec<String>,
    too_large: Vec<SkippedFile>,
    ignored: IgnoreTally,
    removed: u64,
}

async fn full(
    spec: &ScanSpec,
    checkout: &Checkout,
    cfg: &WorkerConfig,
    advisories: &dyn AdvisorySource,
    trail: &mut Trail,
) -> Result<ScanResults, ScanError> {
    let root = checkout.path();
    // Supply Chain reads the lockfiles first: selecting Code's files removes the others (and
    // empties the `.semgrepignore` files) from the checkout.
    let supply = match spec.products.contains(&Product::SupplyChain) {
        true => {
            let (files, _) = targets::tree_files(root)?;
            let filter = PathFilter::new(root, &files, &spec.path_ignores);
            let run = supply_chain::scan(spec, checkout, &files, &filter, None, advisories);
            Some(supply_chain_step(trail, run).await?)
        }
        false => None,
    };
    let selection = trail
        .step(
            "targets",
            async { select_full(root, &spec.path_ignores, cfg.semgrep.max_target_bytes) },
            |s: &Selection| {
                vec![
                    ("files", s.scanned.len() as u64),
                    ("files_ignored", s.ignored.total()),
                    ("files_too_large", s.too_large.len() as u64),
                    ("files_removed", s.removed),
                ]
            },
        )
        .await?;
    let roots = [Root {
        dir: root.to_path_buf(),
        files: None,
    }];
    let run = engine_step(trail, &cfg.semgrep, &roots).await?;
    let findings: Vec<&EngineFinding> = run.findings.iter().collect();
    let mut files = Files::default();
    let suppressed = suppress_step(trail, spec, &findings, &[root], &mut files).await?;
    let fps = trail
        .step(
            "identities",
            async {
                Ok::<_, ScanError>(identify(&findings, &[root], &mut files, |f| f.path.clone()))
            },
            |fps: &Vec<Fingerprint>| vec![("findings", fps.len() as u64)],
        )
        .await?;
    let mut reported: Vec<ReportedFinding> = findings
        .iter()
        .zip(fps)
        .zip(suppressed)
        .map(|((f, fp), s)| report(f, fp, false, s, root, &mut files, spec.store_matched_lines))
        .collect();
    let mut scanned: HashSet<&str> = selection.scanned.iter().map(String::as_str).collect();
    let mut unread_paths = Vec::new();
    if let Some(supply) = &supply {
        unread_paths = supply
            .trail
            .lockfiles
            .iter()
            // Unreadable, or with packages that could not be checked: what the scan does not
            // report of it may still be there.
            .filter(|l| l.error.is_some() || !l.unchecked.is_empty())
            .map(|l| l.path.clone())
            .collect();
        reported.extend(supply.findings.iter().cloned());
        // A lockfile Code does not scan (too large, say) is still in the tree.
        scanned.extend(supply.lockfile_paths.iter().map(String::as_str));
        trail.trail.supply_chain = Some(supply.trail.clone());
    }
    // A path no longer scanned (deleted, or ignored now): its open findings are `removed`.
    let deleted_paths = spec
        .open_finding_paths
        .iter()
        .filter(|p| !scanned.contains(p.as_str()))
        .cloned()
        .collect();
    trail.trail.skipped_files = selection.too_large;
    trail.trail.skipped_files.extend(skips(&run, &[""]));
    trail.trail.ignores = selection.ignored.into_uses();
    trail.trail.engine = engine_name(&run, &cfg.semgrep);
    Ok(ScanResults {
        attempt: spec.attempt,
        commit_sha: checkout.head().to_owned(),
        merge_base_sha: None,
        rules_run: run.rules_run.into_iter().collect(),
        deleted_paths,
        unread_paths,
        files_scanned: run.files_scanned,
        findings: reported,
        fixed_in_pr: Vec::new(),
        trail: ScanTrail::default(),
    })
}

/// Selects a full scan's files and removes every other file from the checkout, so that the
/// engine, walking the directory, sees exactly the selection. The checkout's `.semgrepignore`
/// files are applied here and then emptied or removed: the engine must not apply them again (nor
/// its defaults: an empty root file replaces them).
fn select_full(root: &Path, project: &[String], max_bytes: u64) -> Result<Selection, ScanError> {
    let (files, not_utf8) = targets::tree_files(root)?;
    let filter = PathFilter::new(root, &files, project);
    let mut ignored = IgnoreTally::default();
    let selected = filter.select(&files, &mut ignored);
    let keep: HashSet<&str> = selected.iter().map(String::as_str).collect();
    let mut removed = 0u64;
    for f in files.iter().filter(|f| !keep.contains(f.as_str())) {
        std::fs::remove_file(root.join(f))?;
        removed += 1;
    }
    let mut too_large = Vec::new();
    for path in not_utf8 {
        std::fs::remove_file(root.join(&path))?;
        removed += 1;
        too_large.push(SkippedFile {
            path: path.to_string_lossy().into_owned(),
            kind: SkipKind::EngineError,
            reason: "the file name is not valid UTF-8".to_owned(),
        });
    }
    let mut scanned = Vec::with_capacity(selected.len());
    for f in selected {
        let len = std::fs::symlink_metadata(root.join(&f))?.len();
        if len > max_bytes {
            std::fs::remove_file(root.join(&f))?;
            removed += 1;
            too_large.push(too_large_file(f, len, max_bytes));
        } else if targets::is_ignore_file(&f) {
            std::fs::remove_file(root.join(&f))?;
        } else {
            scanned.push(f);
        }
    }
    std::fs::write(root.join(targets::SEMGREPIGNORE), "")?;
    Ok(Selection {
        scanned,
        too_large,
        ignored,
        removed,
    })
}

fn too_large_file(path: String, len: u64, max: u64) -> SkippedFile {
    SkippedFile {
        path,
        kind: SkipKind::TooLarge,
        reason: format!("{len} bytes, over the engine's limit of {max} bytes"),
    }
}

async fn engine_step(
    trail: &mut Trail,
    cfg: &SemgrepConfig,
    roots: &[Root],
) -> Result<EngineRun, ScanError> {
    Ok(trail
        .step("engine", semgrep::scan(cfg, roots), |r: &EngineRun| {
            vec![
                ("files_scanned", r.files_scanned),
                ("files_skipped", r.skipped.len() as u64),
                ("rules_run", r.rules_run.len() as u64),
                ("findings", r.findings.len() as u64),
            ]
        })
        .await?)
}

/// Runs Supply Chain as the trail's `supply_chain` step.
async fn supply_chain_step(
    trail: &mut Trail,
    run: impl std::future::Future<Output = Result<supply_chain::Outcome, supply_chain::Error>>,
) -> Result<supply_chain::Outcome, ScanError> {
    Ok(trail
        .step("supply_chain", run, |o: &supply_chain::Outcome| {
            let lockfiles = &o.trail.lockfiles;
            vec![
                ("lockfiles", lockfiles.len() as u64),
                (
                    "lockfiles_unreadable",
                    lockfiles.iter().filter(|l| l.error.is_some()).count() as u64,
                ),
                ("packages", lockfiles.iter().map(|l| l.packages).sum()),
                ("advisories", o.trail.advisories),
                ("findings", o.findings.len() as u64),
                (
                    "findings_new",
                    o.findings.iter().filter(|f| f.new_in_pr).count() as u64,
                ),
            ]
        })
        .await?)
}

/// Which findings a `nosemgrep` comment covers (all `None` when the org turned inline
/// suppression off); `dirs[f.root]` holds each finding's file.
async fn suppress_step(
    trail: &mut Trail,
    spec: &ScanSpec,
    findings: &[&EngineFinding],
    dirs: &[&Path],
    files: &mut Files,
) -> Result<Vec<Option<InlineSuppression>>, ScanError> {
    if !spec.inline_suppression {
        return Ok(vec![None; findings.len()]);
    }
    trail
        .step(
            "suppressions",
            async {
                Ok(findings
                    .iter()
                    .map(|f| {
                        let source = files.read(&dirs[f.root].join(&f.path));
                        nosem::suppression(source, f.start_line, f.rule.as_str())
                    })
                    .collect::<Vec<_>>())
            },
            |s: &Vec<_>| {
                vec![(
                    "suppressed",
                    s.iter().filter(|s| s.is_some()).count() as u64,
                )]
            },
        )
        .await
}

/// The engine's skips as the trail reports them; `labels[root]` prefixes each root's reasons.
fn skips(run: &EngineRun, labels: &[&str]) -> Vec<SkippedFile> {
    run.skipped
        .iter()
        .map(|s| SkippedFile {
            path: s.path.clone(),
            kind: s.kind,
            reason: format!("{}{}", labels.get(s.root).copied().unwrap_or(""), s.reason),
        })
        .collect()
}

fn engine_name(run: &EngineRun, cfg: &SemgrepConfig) -> Option<String> {
    let mode = if cfg.native { "native" } else { "python" };
    Some(match &run.version {
        Some(v) => format!("semgrep {v} ({mode})"),
        None => format!("semgrep ({mode})"),
    })
}

async fn diff(
    spec: &ScanSpec,
    checkout: &Checkout,
    cfg: &WorkerConfig,
    advisories: &dyn AdvisorySource,
    trail: &mut Trail,
) -> Result<ScanResults, ScanError> {
    let changed = checkout.changed_files()?;
    let base_dir = tempfile::tempdir()?;
    // Files that exist at head, each with its name at the base when it had one.
    let at_head: Vec<&ChangedFile> = changed
        .iter()
        .filter(|c| c.path_at_head.is_some())
        .collect();
    let (tree, _) = targets::tree_files(checkout.path())?;
    let filter = PathFilter::new(checkout.path(), &tree, &spec.path_ignores);
    let mut ignored = IgnoreTally::default();
    let head_all: Vec<String> = at_head
        .iter()
        .filter_map(|c| c.path_at_head.clone())
        .filter(|p| !targets::is_ignore_file(p))
        .collect();
    let base_all: Vec<String> = at_head
        .iter()
        .filter_map(|c| c.path_at_base.clone())
        .filter(|p| !targets::is_ignore_file(p))
        .collect();
    let mut too_large = Vec::new();
    let head_files = trail
        .step(
            "targets",
            async {
                let selected = filter.select(&head_all, &mut ignored);
                let mut kept = Vec::with_capacity(selected.len());
                for f in selected {
                    let len = std::fs::symlink_metadata(checkout.path().join(&f))?.len();
                    if len > cfg.semgrep.max_target_bytes {
                        too_large.push(too_large_file(f, len, cfg.semgrep.max_target_bytes));
                    } else {
                        kept.push(f);
                    }
                }
                Ok::<_, ScanError>(kept)
            },
            |kept: &Vec<String>| vec![("files", kept.len() as u64)],
        )
        .await?;
    // The base side goes through the same filter, with the head's ignore files: a file that
    // leaves an ignored path has no findings at the base, so its findings are new.
    let base_selected = filter.select(&base_all, &mut ignored);
    let base_files = trail
        .step(
            "materialize_base",
            async {
                checkout.materialize_base(&base_selected, base_dir.path())?;
                let mut kept = Vec::with_capacity(base_selected.len());
                for f in &base_selected {
                    let len = std::fs::symlink_metadata(base_dir.path().join(f))?.len();
                    if len <= cfg.semgrep.max_target_bytes {
                        kept.push(f.clone());
                    }
                }
                Ok::<_, ScanError>(kept)
            },
            |kept: &Vec<String>| vec![("files", kept.len() as u64)],
        )
        .await?;
    let head_name_of: HashMap<&str, &str> = at_head
        .iter()
        .filter_map(|c| Some((c.path_at_base.as_deref()?, c.path_at_head.as_deref()?)))
        .collect();
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
    let run = engine_step(trail, &cfg.semgrep, &roots).await?;
    let (head, base): (Vec<&EngineFinding>, Vec<&EngineFinding>) =
        run.findings.iter().partition(|f| f.root == 0);
    let dirs = [checkout.path(), base_dir.path()];
    let mut files = Files::default();
    let head_suppressed = suppress_step(trail, spec, &head, &dirs, &mut files).await?;
    let base_suppressed: Vec<_> = base
        .iter()
        .map(|f| {
            spec.inline_suppression
                .then(|| {
                    let source = files.read(&dirs[1].join(&f.path));
                    nosem::suppression(source, f.start_line, f.rule.as_str())
                })
                .flatten()
        })
        .collect();
    let base_name = |f: &EngineFinding| {
        head_name_of
            .get(f.path.as_str())
            .map_or_else(|| f.path.clone(), |h| (*h).to_owned())
    };
    let (head_fps, base_fps) = trail
        .step(
            "identities",
            async {
                let h = identify(&head, &dirs, &mut files, |f| f.path.clone());
                let b = identify(&base, &dirs, &mut files, base_name);
                Ok::<_, ScanError>((h, b))
            },
            |(h, b): &(Vec<Fingerprint>, Vec<Fingerprint>)| {
                vec![
                    ("findings_head", h.len() as u64),
                    ("findings_base", b.len() as u64),
                ]
            },
        )
        .await?;
    let at_base: HashSet<&Fingerprint> = base_fps.iter().collect();
    let at_head_fps: HashSet<&Fingerprint> = head_fps.iter().collect();
    let mut reported: Vec<ReportedFinding> = head
        .iter()
        .zip(head_fps.iter())
        .zip(head_suppressed)
        .filter(|((_, fp), _)| !at_base.contains(fp))
        .map(|((f, fp), s)| {
            let lines = spec.store_matched_lines;
            report(f, fp.clone(), true, s, checkout.path(), &mut files, lines)
        })
        .collect();
    let mut fixed_in_pr: Vec<ReportedFinding> = base
        .iter()
        .zip(base_fps.iter())
        .zip(base_suppressed)
        .filter(|((_, fp), _)| !at_head_fps.contains(fp))
        .map(|((f, fp), s)| {
            // Not stored as findings of a branch: no lines.
            let mut r = report(f, fp.clone(), false, s, base_dir.path(), &mut files, false);
            r.path = base_name(f);
            r
        })
        .collect();
    if spec.products.contains(&Product::SupplyChain) {
        let run = supply_chain::scan(spec, checkout, &tree, &filter, Some(&changed), advisories);
        let supply = supply_chain_step(trail, run).await?;
        reported.extend(supply.findings.into_iter().filter(|f| f.new_in_pr));
        fixed_in_pr.extend(supply.fixed_in_pr);
        trail.trail.supply_chain = Some(supply.trail);
    }
    trail.trail.skipped_files = too_large;
    trail
        .trail
        .skipped_files
        .extend(skips(&run, &["", "at the merge base: "]));
    trail.trail.ignores = ignored.into_uses();
    trail.trail.engine = engine_name(&run, &cfg.semgrep);
    Ok(ScanResults {
        attempt: spec.attempt,
        commit_sha: checkout.head().to_owned(),
        merge_base_sha: checkout.merge_base().map(str::to_owned),
        rules_run: run.rules_run.into_iter().collect(),
        deleted_paths: Vec::new(),
        unread_paths: Vec::new(),
        files_scanned: run.files_scanned,
        findings: reported,
        fixed_in_pr,
        trail: ScanTrail::default(),
    })
}

/// The finding as it leaves the worker. For secrets, the value is replaced by a redacted form
/// and a hash, and scrubbed from the message. With `with_lines`, a Code finding carries its
/// matched lines (never a Secrets finding).
fn report(
    f: &EngineFinding,
    fingerprint: Fingerprint,
    new_in_pr: bool,
    suppressed: Option<InlineSuppression>,
    root: &Path,
    files: &mut Files,
    with_lines: bool,
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
        suppressed,
        matched_lines: if with_lines && f.product == Product::Code {
            matched_lines(files.read(&root.join(&f.path)), f.start_line, f.end_line)
        } else {
            Vec::new()
        },
        dependency: None,
    }
}

/// Lines `start..=end` (1-based) of `content`, at most [`MAX_MATCHED_LINES`] of them, each cut
/// to [`MAX_MATCHED_LINE_CHARS`] characters (ending in `…` when cut), without line terminators;
/// invalid UTF-8 and NUL become U+FFFD. Empty when `start` is past the end of the file.
pub fn matched_lines(content: &[u8], start: u32, end: u32) -> Vec<String> {
    let skip = (start.max(1) - 1) as usize;
    let take = (end.saturating_sub(start) as usize + 1).min(MAX_MATCHED_LINES);
    content
        .split(|&b| b == b'\n')
        .skip(skip)
        .take(take)
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let text = String::from_utf8_lossy(line).replace('\0', "\u{fffd}");
            if text.chars().count() <= MAX_MATCHED_LINE_CHARS {
                text
            } else {
                let mut cut: String = text.chars().take(MAX_MATCHED_LINE_CHARS - 1).collect();
                cut.push('…');
                cut
            }
        })
        .collect()
}
