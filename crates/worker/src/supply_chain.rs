//! Supply Chain inside the worker (domain.md §1, §6; docs/supply-chain.md, "The scan pipeline"):
//! the repository's lockfiles are read ([`picket_lockfile`]), the advisories that name their
//! packages are asked of the control plane ([`AdvisorySource`]), and each package is checked
//! against them ([`picket_advisory::matcher`]): one finding per (lockfile, package,
//! vulnerability), on the line that pins the package, identified without the installed version.
//!
//! - **Which lockfiles.** Those [`picket_lockfile::select`] names among the files the scan's path
//!   filter keeps (the repository's `.semgrepignore` or Semgrep's defaults, and the project's
//!   path ignores), as for Code. The engine's size limit does not apply; a lockfile over
//!   [`MAX_LOCKFILE_BYTES`] is an error of that lockfile.
//! - **Failures are loud.** A lockfile that cannot be read is listed in the trail with the reason
//!   and nothing of it is checked; a package that cannot be checked (a version its ecosystem does
//!   not accept, an advisory range that cannot be read) is listed with the reason. A repository
//!   without a lockfile gets an empty list: the scan says so.
//! - **Diff scans** compare the head's findings with the merge base's, by identity, as Code does:
//!   new = at head and not at the base; fixed in the PR = at the base and not at head. A lockfile
//!   renamed by the PR keeps its findings (base paths are read under their head names). When no
//!   file the head's lockfiles were read from changed, and no lockfile of the base changed,
//!   nothing can be new: the lockfiles are listed and no advisory is fetched. Lockfiles whose
//!   packages are the same on both sides are not matched either: they cancel out.
//! - When the base's copy of a lockfile cannot be read, every finding of its head copy is new:
//!   the PR makes them visible, and the trail names the base's error.

use crate::clone::{ChangedFile, Checkout};
use async_trait::async_trait;
use picket_advisory::matcher::{finding_identity, match_packages, Installed, PreparedRecord};
use picket_advisory::severity::SeveritySource;
use picket_advisory::Record;
use picket_core::protocol::{
    AdvisoryQuery, LockfileRead, PackageNames, ReportedFinding, ScanSpec, SupplyChainTrail,
    TrailEntry, VulnerableDependency, MAX_TRAIL_ENTRIES,
};
use picket_core::{Ecosystem, Fingerprint, Product, RuleId, Severity};
use picket_engine::targets::{IgnoreTally, PathFilter};
use picket_lockfile::{Lockfile, LockfileError, Source};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

/// Largest lockfile read, in bytes (64 MiB; the largest real `package-lock.json` files are a
/// few tens of MiB).
pub const MAX_LOCKFILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most installed versions one finding lists.
const MAX_VERSIONS: usize = 100;
/// Longest summary kept, in characters.
const MAX_SUMMARY: usize = 500;

/// Where the worker gets the advisories that name a scan's packages: the control plane's
/// advisory store (`POST /api/v1/worker/scan/advisories`, [`crate::client::ApiClient`]).
#[async_trait]
pub trait AdvisorySource: Send + Sync {
    /// Every record, not withdrawn, that names one of the query's packages. Any error fails the
    /// scan (`advisories_unavailable`): a scan never passes for want of advisories.
    async fn advisories(&self, query: &AdvisoryQuery) -> Result<Advisories, String>;
}

/// An advisory store's answer to an [`AdvisoryQuery`].
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Advisories {
    /// The records naming the query's packages.
    pub records: Vec<Record>,
    /// The ecosystems asked about of which the store holds no advisory at all (nothing was
    /// imported): their packages were checked against nothing, and the trail says so.
    #[serde(default)]
    pub empty_ecosystems: Vec<Ecosystem>,
}

/// What Supply Chain adds to a scan's results.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Full scans: every finding. Diff scans: the head's, `new_in_pr` set on those not at the
    /// merge base (only those are kept by the caller).
    pub findings: Vec<ReportedFinding>,
    /// Diff scans: the base's findings the head no longer has, under their head paths.
    pub fixed_in_pr: Vec<ReportedFinding>,
    /// The lockfile paths read at head (present in the tree, whether or not they parsed).
    pub lockfile_paths: Vec<String>,
    pub trail: SupplyChainTrail,
}

/// Reads lockfiles at head from the checked-out tree; `files` is the tree's file list and
/// `filter` the scan's path filter. Returns the results and every path read.
fn read_head(
    root: &Path,
    files: &[String],
    filter: &PathFilter,
) -> (Vec<Result<Lockfile, LockfileError>>, BTreeSet<String>) {
    let kept = filter.select(files, &mut IgnoreTally::default());
    let mut read_paths = BTreeSet::new();
    let results = picket_lockfile::read_repository(&kept, |path| {
        read_paths.insert(path.to_owned());
        let full = root.join(path);
        let len = std::fs::symlink_metadata(&full)?.len();
        if len > MAX_LOCKFILE_BYTES {
            return Err(too_large(len));
        }
        std::fs::read(full)
    });
    (results, read_paths)
}

fn too_large(len: u64) -> std::io::Error {
    std::io::Error::other(format!(
        "{len} bytes, over the limit of {MAX_LOCKFILE_BYTES} bytes"
    ))
}

/// Reads lockfiles at the merge base from the object database, paths renamed to their head
/// names where the PR renamed them.
fn read_base(
    checkout: &Checkout,
    filter: &PathFilter,
    head_name_of: &HashMap<&str, &str>,
) -> Result<Vec<Result<Lockfile, LockfileError>>, crate::clone::CloneError> {
    let files = checkout.base_files()?;
    let kept = filter.select(&files, &mut IgnoreTally::default());
    let mut results =
        picket_lockfile::read_repository(&kept, |path| match checkout.read_base(path) {
            Ok(Some(bytes)) if bytes.len() as u64 > MAX_LOCKFILE_BYTES => {
                Err(too_large(bytes.len() as u64).to_string())
            }
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err("not a file at the merge base".to_owned()),
            Err(e) => Err(e.to_string()),
        });
    for result in &mut results {
        let path = match result {
            Ok(l) => &mut l.path,
            Err(e) => &mut e.path,
        };
        if let Some(head) = head_name_of.get(path.as_str()) {
            *path = (*head).to_owned();
        }
    }
    Ok(results)
}

/// Runs Supply Chain for one scan. `head_files` is the head tree's file list (read before
/// anything is removed from the checkout); `changed` is a diff scan's changed files (`None`
/// for a full scan).
pub async fn scan(
    spec: &ScanSpec,
    checkout: &Checkout,
    head_files: &[String],
    filter: &PathFilter,
    changed: Option<&[ChangedFile]>,
    source: &dyn AdvisorySource,
) -> Result<Outcome, Error> {
    let (head, read_paths) = read_head(checkout.path(), head_files, filter);
    let lockfile_paths = head
        .iter()
        .map(|r| match r {
            Ok(l) => l.path.clone(),
            Err(e) => e.path.clone(),
        })
        .collect();
    let mut trail = SupplyChainTrail {
        lockfiles: head.iter().map(|r| read_of(r, None)).collect(),
        advisories: 0,
        empty_ecosystems: Vec::new(),
    };
    let Some(changed) = changed else {
        let to_check: Vec<&Lockfile> = head.iter().filter_map(|r| r.as_ref().ok()).collect();
        let records = fetch(source, spec, &to_check, &mut trail).await?;
        let checked = check(&to_check, &records);
        checked.record_problems(&mut trail);
        return Ok(Outcome {
            findings: checked.findings,
            fixed_in_pr: Vec::new(),
            lockfile_paths,
            trail,
        });
    };

    let touched: HashSet<&str> = changed
        .iter()
        .flat_map(|c| [c.path_at_head.as_deref(), c.path_at_base.as_deref()])
        .flatten()
        .collect();
    let base_lockfile_changed =
        !picket_lockfile::select(changed.iter().filter_map(|c| c.path_at_base.as_deref()))
            .is_empty();
    if !base_lockfile_changed && !read_paths.iter().any(|p| touched.contains(p.as_str())) {
        tracing::info!("supply chain: the PR changes no lockfile; nothing can be new");
        return Ok(Outcome {
            lockfile_paths,
            trail,
            ..Outcome::default()
        });
    }
    let head_name_of: HashMap<&str, &str> = changed
        .iter()
        .filter_map(|c| Some((c.path_at_base.as_deref()?, c.path_at_head.as_deref()?)))
        .collect();
    let base = read_base(checkout, filter, &head_name_of)?;
    let base_by_path: HashMap<&str, &Result<Lockfile, LockfileError>> = base
        .iter()
        .map(|r| match r {
            Ok(l) => (l.path.as_str(), r),
            Err(e) => (e.path.as_str(), r),
        })
        .collect();
    // Lockfiles the same on both sides cancel out: only the others are matched.
    let head_check: Vec<&Lockfile> = head
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|l| {
            !matches!(base_by_path.get(l.path.as_str()),
                      Some(Ok(b)) if b.packages == l.packages)
        })
        .collect();
    let base_check: Vec<&Lockfile> = base
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|b| {
            !head
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .any(|h| h.path == b.path && h.packages == b.packages)
        })
        .collect();
    for r in &base {
        if let Err(e) = r {
            trail.lockfiles.push(read_of(r, Some(e)));
        }
    }
    trail.lockfiles.sort_by(|a, b| a.path.cmp(&b.path));
    let both: Vec<&Lockfile> = head_check.iter().chain(&base_check).copied().collect();
    let records = fetch(source, spec, &both, &mut trail).await?;
    let at_head = check(&head_check, &records);
    let at_base = check(&base_check, &records);
    at_head.record_problems(&mut trail);
    let base_fps: HashSet<&Fingerprint> = at_base.findings.iter().map(|f| &f.fingerprint).collect();
    let head_fps: HashSet<&Fingerprint> = at_head.findings.iter().map(|f| &f.fingerprint).collect();
    let fixed_in_pr = at_base
        .findings
        .iter()
        .filter(|f| !head_fps.contains(&f.fingerprint))
        .cloned()
        .collect();
    let findings = at_head
        .findings
        .iter()
        .cloned()
        .map(|mut f| {
            f.new_in_pr = !base_fps.contains(&f.fingerprint);
            f
        })
        .collect();
    Ok(Outcome {
        findings,
        fixed_in_pr,
        lockfile_paths,
        trail,
    })
}

/// Why Supply Chain could not run (the scan fails; a lockfile's own failure never gets here).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the advisories could not be fetched from the control plane: {0}")]
    Advisories(String),
    #[error(transparent)]
    Clone(#[from] crate::clone::CloneError),
}

/// The trail entry of a lockfile read; `base_error` when it is the merge base's copy that failed.
fn read_of(
    r: &Result<Lockfile, LockfileError>,
    base_error: Option<&LockfileError>,
) -> LockfileRead {
    match r {
        Ok(l) => LockfileRead {
            path: l.path.clone(),
            format: l.format.as_str().to_owned(),
            ecosystem: l.format.ecosystem(),
            packages: l.packages.iter().filter(|p| is_registry(&p.source)).count() as u64,
            not_registry: l
                .packages
                .iter()
                .filter(|p| !is_registry(&p.source))
                .count() as u64,
            unresolved: l
                .unresolved
                .iter()
                .take(MAX_TRAIL_ENTRIES)
                .map(|u| TrailEntry {
                    line: u.line,
                    text: clip(&u.text, 500),
                    reason: clip(&u.reason.to_string(), 1_000),
                })
                .collect(),
            unchecked: Vec::new(),
            error: None,
            merge_base: false,
        },
        // `read_repository` reads only files `select` named, so the format is known.
        Err(e) => LockfileRead {
            path: e.path.clone(),
            format: e.format.map_or("unknown", |f| f.as_str()).to_owned(),
            ecosystem: e.format.map_or(Ecosystem::Npm, |f| f.ecosystem()),
            packages: 0,
            not_registry: 0,
            unresolved: Vec::new(),
            unchecked: Vec::new(),
            error: Some(clip(
                &match base_error {
                    Some(_) => format!("at the merge base: {}", e.kind),
                    None => e.kind.to_string(),
                },
                4_000,
            )),
            merge_base: base_error.is_some(),
        },
    }
}

fn is_registry(source: &Source) -> bool {
    matches!(source, Source::Registry { .. })
}

/// `s` on one line (control characters as spaces), cut to `max` characters ending in `…`.
fn clip(s: &str, max: usize) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() <= max {
        s
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// Asks the control plane for the records naming the lockfiles' registry packages, and notes
/// in `trail` how many came and which ecosystems the store has nothing of.
async fn fetch(
    source: &dyn AdvisorySource,
    spec: &ScanSpec,
    lockfiles: &[&Lockfile],
    trail: &mut SupplyChainTrail,
) -> Result<Vec<PreparedRecord>, Error> {
    let mut names: BTreeMap<Ecosystem, BTreeSet<&str>> = BTreeMap::new();
    for p in lockfiles
        .iter()
        .flat_map(|l| &l.packages)
        .filter(|p| is_registry(&p.source))
    {
        names
            .entry(p.ecosystem)
            .or_default()
            .insert(p.name.as_str());
    }
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let query = AdvisoryQuery {
        attempt: spec.attempt,
        packages: names
            .into_iter()
            .map(|(ecosystem, names)| PackageNames {
                ecosystem,
                names: names.into_iter().map(str::to_owned).collect(),
            })
            .collect(),
    };
    let answer = source.advisories(&query).await.map_err(Error::Advisories)?;
    trail.advisories = answer.records.len() as u64;
    if !answer.empty_ecosystems.is_empty() {
        tracing::warn!(
            ecosystems = ?answer.empty_ecosystems,
            "no advisory of these ecosystems is imported: their packages were checked against nothing"
        );
    }
    trail.empty_ecosystems = answer.empty_ecosystems;
    Ok(answer
        .records
        .into_iter()
        .map(PreparedRecord::new)
        .collect())
}

/// What checking some lockfiles found.
struct Checked {
    findings: Vec<ReportedFinding>,
    /// (lockfile path, entry) for packages that could not be checked.
    unchecked: Vec<(String, TrailEntry)>,
}

impl Checked {
    fn record_problems(&self, trail: &mut SupplyChainTrail) {
        for (path, entry) in &self.unchecked {
            if let Some(read) = trail
                .lockfiles
                .iter_mut()
                .find(|r| &r.path == path && r.error.is_none())
            {
                if read.unchecked.len() < MAX_TRAIL_ENTRIES {
                    read.unchecked.push(entry.clone());
                }
            }
        }
    }
}

/// Checks each lockfile's registry packages against `records`: one finding per (lockfile,
/// package name, vulnerability), on the line of the first affected copy.
fn check(lockfiles: &[&Lockfile], records: &[PreparedRecord]) -> Checked {
    let by_id: HashMap<&str, &Record> = records
        .iter()
        .map(|r| (r.record().id.as_str(), r.record()))
        .collect();
    let mut out = Checked {
        findings: Vec::new(),
        unchecked: Vec::new(),
    };
    for lockfile in lockfiles {
        let installed: Vec<Installed> = lockfile
            .packages
            .iter()
            .enumerate()
            .filter(|(_, p)| is_registry(&p.source))
            .map(|(index, p)| Installed {
                ecosystem: p.ecosystem,
                name: p.name.clone(),
                version: p.version.clone(),
                index,
            })
            .collect();
        let outcome = match_packages(&installed, records);
        for e in &outcome.errors {
            let p = &lockfile.packages[e.package];
            out.unchecked.push((
                lockfile.path.clone(),
                TrailEntry {
                    line: p.line,
                    text: clip(&format!("{} {}", p.raw_name, p.version), 500),
                    reason: clip(&e.error.to_string(), 1_000),
                },
            ));
        }
        // One finding per (name, group): copies of a package at several versions merge.
        let mut merged: BTreeMap<(String, String), ReportedFinding> = BTreeMap::new();
        for m in outcome.matches {
            let p = &lockfile.packages[m.package];
            let key = (p.name.clone(), m.group.clone());
            if let Some(f) = merged.get_mut(&key) {
                let dep = f
                    .dependency
                    .as_mut()
                    .expect("supply-chain findings carry one");
                merge_into(dep, &mut f.severity, &m, p);
                f.message = message(p.raw_name.as_str(), &m.group, dep);
                continue;
            }
            let (rule, fingerprint) = match (
                m.group.parse::<RuleId>(),
                finding_identity(&lockfile.path, p.ecosystem, &p.name, &m.group),
            ) {
                (Ok(rule), Ok(fp)) => (rule, fp),
                (Err(e), _) | (_, Err(e)) => {
                    out.unchecked.push((
                        lockfile.path.clone(),
                        TrailEntry {
                            line: p.line,
                            text: clip(&format!("{} {}", p.raw_name, p.version), 500),
                            reason: clip(
                                &format!("advisory id {:?} is not usable: {e}", m.group),
                                1_000,
                            ),
                        },
                    ));
                    continue;
                }
            };
            let summary = m
                .advisories
                .iter()
                .filter_map(|id| by_id.get(id.as_str()))
                .find_map(|r| summary_of(r));
            let dep = VulnerableDependency {
                ecosystem: p.ecosystem,
                package: p.name.clone(),
                versions: vec![m.installed.clone()],
                advisories: m.advisories.clone(),
                aliases: m.aliases.clone(),
                fixed: m.fixed.clone(),
                direct: p.direct,
                dev: p.dev,
                severity_source: m
                    .severity
                    .as_ref()
                    .map(|r| source_name(&r.source).to_owned()),
                summary,
            };
            let line = p.line.unwrap_or(1).max(1);
            out.findings.push(ReportedFinding {
                product: Product::SupplyChain,
                rule_id: rule,
                path: lockfile.path.clone(),
                start_line: line,
                end_line: line,
                severity: m.severity.as_ref().map_or(Severity::Medium, |r| r.severity),
                message: message(&p.raw_name, &m.group, &dep),
                fingerprint,
                new_in_pr: false,
                secret: None,
                suppressed: None,
                matched_lines: Vec::new(),
                dependency: Some(dep),
            });
            merged.insert(key, out.findings.pop().expect("just pushed"));
        }
        out.findings.extend(merged.into_values());
    }
    out
}

/// Adds another affected copy of the package to its finding.
fn merge_into(
    dep: &mut VulnerableDependency,
    severity: &mut Severity,
    m: &picket_advisory::matcher::Match,
    p: &picket_lockfile::Package,
) {
    if dep.versions.len() < MAX_VERSIONS && !dep.versions.contains(&m.installed) {
        dep.versions.push(m.installed.clone());
    }
    for id in &m.advisories {
        if !dep.advisories.contains(id) {
            dep.advisories.push(id.clone());
        }
    }
    dep.advisories.sort();
    for v in &m.fixed {
        if !dep.fixed.contains(v) {
            dep.fixed.push(v.clone());
        }
    }
    // Any direct copy makes it direct; dev only if every copy is.
    dep.direct = match (dep.direct, p.direct) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (a, b) => a.or(b),
    };
    dep.dev = match (dep.dev, p.dev) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (a, b) => a.or(b),
    };
    if let Some(r) = &m.severity {
        if dep.severity_source.is_none() || r.severity > *severity {
            *severity = r.severity;
            dep.severity_source = Some(source_name(&r.source).to_owned());
        }
    }
}

fn source_name(source: &SeveritySource) -> &'static str {
    match source {
        SeveritySource::Cvss { vector, .. } if vector.starts_with("CVSS:4") => "cvss_v4",
        SeveritySource::Cvss { vector, .. } if vector.starts_with("CVSS:3") => "cvss_v3",
        SeveritySource::Cvss { .. } => "cvss_v2",
        SeveritySource::Database(_) => "database",
    }
}

/// The record's summary, else the first line of its details, cut to [`MAX_SUMMARY`].
fn summary_of(r: &Record) -> Option<String> {
    let text = r
        .summary
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| r.details.as_deref()?.lines().find(|l| !l.trim().is_empty()))?;
    Some(clip(text.trim(), MAX_SUMMARY))
}

/// The finding's message: what is installed, what affects it, and what fixes it.
fn message(raw_name: &str, group: &str, dep: &VulnerableDependency) -> String {
    let mut ids = vec![group.to_owned()];
    ids.extend(dep.advisories.iter().filter(|a| *a != group).cloned());
    let shown = match ids.split_first() {
        Some((first, rest)) if !rest.is_empty() => format!("{first} ({})", rest.join(", ")),
        _ => group.to_owned(),
    };
    let kind = match dep.direct {
        Some(true) => " (direct dependency)",
        Some(false) => " (transitive dependency)",
        None => "",
    };
    let mut text = format!(
        "{raw_name} {}{kind} is affected by {shown}",
        dep.versions.join(", ")
    );
    if let Some(s) = &dep.summary {
        text.push_str(": ");
        text.push_str(s);
    }
    if !text.ends_with('.') {
        text.push('.');
    }
    match dep.fixed.as_slice() {
        [] => text.push_str(" No fixed version is known."),
        fixed => {
            text.push_str(" Fixed in ");
            text.push_str(&fixed.join(", "));
            text.push('.');
        }
    }
    text
}
