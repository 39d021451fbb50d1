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

use crate::clone::{BaseFile, ChangedFile, Checkout};
use async_trait::async_trait;
use picket_advisory::matcher::{finding_identity, match_packages, Installed, PreparedRecord};
use picket_advisory::severity::SeveritySource;
use picket_advisory::Record;
use picket_core::protocol::{
    AdvisoryQuery, LockfileRead, PackageNames, ReportedFinding, ScanSpec, SupplyChainTrail,
    TrailEntry, VulnerableDependency, MAX_DEPENDENCY_ENTRY_CHARS, MAX_DEPENDENCY_LIST,
    MAX_DEPENDENCY_VERSIONS, MAX_PACKAGE_NAME_CHARS, MAX_TRAIL_ENTRIES, MAX_TRAIL_LOCKFILES,
};
use picket_core::{Ecosystem, Fingerprint, Product, RuleId, Severity};
use picket_engine::targets::{IgnoreTally, PathFilter};
use picket_lockfile::{Lockfile, LockfileError, Source};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

/// Largest lockfile read, in bytes (64 MiB; the largest real `package-lock.json` files are a
/// few tens of MiB).
pub const MAX_LOCKFILE_BYTES: u64 = 64 * 1024 * 1024;
/// Longest finding message, in characters (the API takes up to 20,000).
const MAX_MESSAGE: usize = 4_000;
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
    let kept = reportable(filter.select(files, &mut IgnoreTally::default()));
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

/// The paths a scan can report: one with a control character cannot reach the results (the
/// API refuses it), so such a file is left out, with a warning, rather than fail the upload.
fn reportable(paths: Vec<String>) -> Vec<String> {
    paths
        .into_iter()
        .filter(|p| {
            let ok = !p.chars().any(char::is_control);
            if !ok && picket_lockfile::select([p.as_str()]).len() == 1 {
                tracing::warn!(path = ?p, "a lockfile whose path holds a control character is not read");
            }
            ok
        })
        .collect()
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
    let kept = reportable(filter.select(&files, &mut IgnoreTally::default()));
    let mut results = picket_lockfile::read_repository(&kept, |path| {
        match checkout.read_base(path, MAX_LOCKFILE_BYTES) {
            Ok(BaseFile::Content(bytes)) => Ok(bytes),
            Ok(BaseFile::TooLarge(len)) => Err(too_large(len).to_string()),
            Ok(BaseFile::Missing) => Err("not a file at the merge base".to_owned()),
            Err(e) => Err(e.to_string()),
        }
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
        lockfiles: head
            .iter()
            .take(MAX_TRAIL_LOCKFILES)
            .map(|r| read_of(r, None))
            .collect(),
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
    // A base lockfile whose head copy cannot be read says nothing of what the PR fixes: its
    // findings are not "fixed in the PR". Nor does one the head has with the same packages.
    let head_unreadable: HashSet<&str> = head
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.path.as_str()))
        .collect();
    let base_check: Vec<&Lockfile> = base
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|b| !head_unreadable.contains(b.path.as_str()))
        .filter(|b| {
            !head
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .any(|h| h.path == b.path && h.packages == b.packages)
        })
        .collect();
    for r in &base {
        if let Err(e) = r {
            if trail.lockfiles.len() < MAX_TRAIL_LOCKFILES {
                trail.lockfiles.push(read_of(r, Some(e)));
            }
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

/// `s` on one line (control characters as spaces), any URL's user info (`user:token@`) replaced
/// by `***`, cut to `max` characters ending in `…`. Every text a lockfile gives the trail or a
/// finding goes through it: a requirements line can hold a credential in its URL.
fn clip(s: &str, max: usize) -> String {
    let s: String = redact_userinfo(s)
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

/// `s` with the user info of every `scheme://user:password@host` replaced by `***`.
fn redact_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace())
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// The ids (or versions) of `list` the results can carry: each 1 to
/// [`MAX_DEPENDENCY_ENTRY_CHARS`] characters without control characters, at most
/// [`MAX_DEPENDENCY_LIST`] of them.
fn carried(list: &[String]) -> Vec<String> {
    list.iter()
        .filter(|v| {
            let n = v.chars().count();
            (1..=MAX_DEPENDENCY_ENTRY_CHARS).contains(&n) && !v.chars().any(char::is_control)
        })
        .take(MAX_DEPENDENCY_LIST)
        .cloned()
        .collect()
}

/// Whether a package name can be asked about: 1 to [`MAX_PACKAGE_NAME_CHARS`] characters, none
/// of them a control character (what the advisory store holds). Another name is listed as not
/// checked, never sent: one odd entry must not fail the query, and so the scan.
fn can_look_up(name: &str) -> bool {
    let n = name.chars().count();
    (1..=MAX_PACKAGE_NAME_CHARS).contains(&n) && !name.chars().any(char::is_control)
}

/// Most names one advisory query asks about: queries stay far below the API's limits (100,000
/// names, 16 MiB) whatever the names' lengths.
const NAMES_PER_QUERY: usize = 10_000;

/// Asks the control plane for the records naming the lockfiles' registry packages (in queries
/// of at most [`NAMES_PER_QUERY`] names), and notes in `trail` how many came and which
/// ecosystems the store has nothing of.
async fn fetch(
    source: &dyn AdvisorySource,
    spec: &ScanSpec,
    lockfiles: &[&Lockfile],
    trail: &mut SupplyChainTrail,
) -> Result<Vec<PreparedRecord>, Error> {
    let mut names: Vec<(Ecosystem, &str)> = lockfiles
        .iter()
        .flat_map(|l| &l.packages)
        .filter(|p| is_registry(&p.source) && can_look_up(&p.name))
        .map(|p| (p.ecosystem, p.name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut records: BTreeMap<String, Record> = BTreeMap::new();
    let mut empty: BTreeSet<Ecosystem> = BTreeSet::new();
    for chunk in names.chunks(NAMES_PER_QUERY) {
        let mut packages: Vec<PackageNames> = Vec::new();
        for (ecosystem, name) in chunk {
            match packages.last_mut() {
                Some(p) if p.ecosystem == *ecosystem => p.names.push((*name).to_owned()),
                _ => packages.push(PackageNames {
                    ecosystem: *ecosystem,
                    names: vec![(*name).to_owned()],
                }),
            }
        }
        let query = AdvisoryQuery {
            attempt: spec.attempt,
            packages,
        };
        let answer = source.advisories(&query).await.map_err(Error::Advisories)?;
        empty.extend(answer.empty_ecosystems);
        for r in answer.records {
            records.entry(r.id.clone()).or_insert(r);
        }
    }
    trail.advisories = records.len() as u64;
    if !empty.is_empty() {
        tracing::warn!(
            ecosystems = ?empty,
            "no advisory of these ecosystems is imported: their packages were checked against nothing"
        );
    }
    trail.empty_ecosystems = empty.into_iter().collect();
    Ok(records.into_values().map(PreparedRecord::new).collect())
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
        for p in lockfile
            .packages
            .iter()
            .filter(|p| is_registry(&p.source) && !can_look_up(&p.name))
        {
            out.unchecked.push((
                lockfile.path.clone(),
                TrailEntry {
                    line: p.line,
                    text: clip(&format!("{} {}", p.raw_name, p.version), 500),
                    reason: format!(
                        "the package name is empty, over {MAX_PACKAGE_NAME_CHARS} characters or \
                         holds a control character: no advisory can name it"
                    ),
                },
            ));
        }
        let installed: Vec<Installed> = lockfile
            .packages
            .iter()
            .enumerate()
            .filter(|(_, p)| is_registry(&p.source) && can_look_up(&p.name))
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
                versions: vec![clip(&m.installed, MAX_DEPENDENCY_ENTRY_CHARS)],
                advisories: carried(&m.advisories),
                aliases: carried(&m.aliases),
                fixed: carried(&m.fixed),
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
    let installed = clip(&m.installed, MAX_DEPENDENCY_ENTRY_CHARS);
    if dep.versions.len() < MAX_DEPENDENCY_VERSIONS && !dep.versions.contains(&installed) {
        dep.versions.push(installed);
    }
    for id in carried(&m.advisories) {
        if !dep.advisories.contains(&id) && dep.advisories.len() < MAX_DEPENDENCY_LIST {
            dep.advisories.push(id);
        }
    }
    dep.advisories.sort();
    for v in carried(&m.fixed) {
        if !dep.fixed.contains(&v) && dep.fixed.len() < MAX_DEPENDENCY_LIST {
            dep.fixed.push(v);
        }
    }
    // Still in the ecosystem's order (a version it cannot read goes last).
    let ecosystem = p.ecosystem;
    dep.fixed.sort_by(|a, b| {
        match (
            picket_advisory::Version::parse(ecosystem, a),
            picket_advisory::Version::parse(ecosystem, b),
        ) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            (Err(_), Err(_)) => a.cmp(b),
        }
    });
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
    clip(&text, MAX_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_in_urls_is_replaced() {
        assert_eq!(
            redact_userinfo("x @ git+https://oauth2:glpat-abc@host/r.git and https://tok@h2"),
            "x @ git+https://***@host/r.git and https://***@h2"
        );
        assert_eq!(redact_userinfo("https://host/a@b"), "https://host/a@b");
        assert_eq!(redact_userinfo("no url"), "no url");
        assert_eq!(clip("a\tb://u:p@h", 100), "a b://***@h");
    }

    #[test]
    fn only_what_the_results_can_carry_is_carried() {
        let list: Vec<String> = vec![
            "GHSA-1".into(),
            String::new(),
            "x".repeat(201),
            "bad\nid".into(),
            "CVE-2".into(),
        ];
        assert_eq!(carried(&list), ["GHSA-1", "CVE-2"]);
        let many: Vec<String> = (0..1_500).map(|i| format!("V{i}")).collect();
        assert_eq!(carried(&many).len(), MAX_DEPENDENCY_LIST);
        assert!(can_look_up("lodash"));
        assert!(!can_look_up(""));
        assert!(!can_look_up(&"x".repeat(501)));
        assert!(!can_look_up("a\u{1}b"));
    }
}
