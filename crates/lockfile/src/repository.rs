//! Which files of a repository are lockfiles, and reading them all, following requirements
//! files' includes.

use crate::error::{ErrorKind, LockfileError};
use crate::model::{
    merge_duplicates, Format, IncludeKind, Lockfile, Package, Source, Unresolved, UnresolvedReason,
};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Display;

/// Folders whose contents are installed or vendored copies of packages (with their own
/// lockfiles, which the project does not use), or tool state: never read.
const SKIPPED_DIRS: [&str; 14] = [
    "node_modules",
    "bower_components",
    "jspm_packages",
    "vendor",
    ".yarn",
    ".pnpm-store",
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "__pypackages__",
    "site-packages",
    ".tox",
    ".nox",
];

/// The lockfiles among a repository's files (paths relative to its root, `/`-separated), with
/// their formats, sorted by path: every file [`Format::for_path`] names, except those under a
/// folder of installed or vendored packages (`node_modules`, `vendor`, `.yarn`, `.venv`,
/// `site-packages`, ...). A leading `./` is dropped.
pub fn select<'a>(files: impl IntoIterator<Item = &'a str>) -> Vec<(String, Format)> {
    let mut out: Vec<(String, Format)> = files
        .into_iter()
        .map(|f| f.trim_start_matches("./"))
        .filter(|f| {
            let dirs = f.rsplit_once('/').map_or("", |(d, _)| d);
            !dirs.split('/').any(|d| SKIPPED_DIRS.contains(&d))
        })
        .filter_map(|f| Some((f.to_owned(), Format::for_path(f)?)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Reads every lockfile of a repository: `files` is its file list (relative paths, as for
/// [`select`]) and `read` returns a file's bytes by that path. One result per lockfile, sorted
/// by path; a failure names the file and the reason, and does not stop the others.
///
/// A requirements file's `-r` includes are read too (whatever their names) as lockfiles of
/// their own, so each package keeps the file and line that pins it. A `-c` constraints file
/// installs nothing by itself, but its `==` pins bind the versions of the requirements that
/// name no exact version (pip installs that version or fails), so such an entry becomes a
/// package at its own line. An include the file list does not have is reported as an
/// unresolved entry of the including file.
pub fn read_repository<E: Display>(
    files: &[impl AsRef<str>],
    mut read: impl FnMut(&str) -> Result<Vec<u8>, E>,
) -> Vec<Result<Lockfile, LockfileError>> {
    let all: HashSet<&str> = files
        .iter()
        .map(|f| f.as_ref().trim_start_matches("./"))
        .collect();
    let mut load = |path: &str, format: Format| match read(path) {
        Ok(bytes) => crate::parse_as(path, format, &bytes),
        Err(e) => Err(LockfileError::new(
            path,
            Some(format),
            ErrorKind::Unreadable {
                message: e.to_string(),
            },
        )),
    };
    let mut results: BTreeMap<String, Result<Lockfile, LockfileError>> = BTreeMap::new();
    for (path, format) in select(all.iter().copied()) {
        let result = load(&path, format);
        results.insert(path, result);
    }

    let mut queue: Vec<String> = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(l) if l.format == Format::Requirements))
        .map(|(p, _)| p.clone())
        .collect();
    let mut constraints: BTreeMap<String, Result<Lockfile, LockfileError>> = BTreeMap::new();
    while let Some(path) = queue.pop() {
        let includes = match &results[&path] {
            Ok(l) => l.includes.clone(),
            Err(_) => continue,
        };
        let mut missing = Vec::new();
        let mut pins: Vec<Package> = Vec::new();
        for include in includes {
            if !all.contains(include.path.as_str()) {
                let option = match include.kind {
                    IncludeKind::Requirements => "-r",
                    IncludeKind::Constraints => "-c",
                };
                missing.push(Unresolved {
                    line: Some(include.line),
                    text: format!("{option} {}", include.path),
                    reason: UnresolvedReason::IncludeNotFound,
                });
                continue;
            }
            match include.kind {
                IncludeKind::Requirements => {
                    if !results.contains_key(&include.path) {
                        let result = load(&include.path, Format::Requirements);
                        results.insert(include.path.clone(), result);
                        queue.push(include.path);
                    }
                }
                IncludeKind::Constraints => {
                    let file = match results.get(&include.path) {
                        Some(read) => read,
                        None => constraints
                            .entry(include.path.clone())
                            .or_insert_with(|| load(&include.path, Format::Requirements)),
                    };
                    if let Ok(file) = file {
                        pins.extend(file.packages.iter().cloned());
                    }
                }
            }
        }
        if let Some(Ok(lockfile)) = results.get_mut(&path) {
            lockfile.unresolved.extend(missing);
            apply_constraints(lockfile, &pins);
        }
    }
    // A constraints file that cannot be read fails loudly too.
    for (path, result) in constraints {
        if result.is_err() {
            results.entry(path).or_insert(result);
        }
    }
    results.into_values().collect()
}

/// Entries of `lockfile` that name no exact version, pinned by a constraint of the same
/// (normalised) name, become packages.
fn apply_constraints(lockfile: &mut Lockfile, pins: &[Package]) {
    if pins.is_empty() {
        return;
    }
    let ecosystem = lockfile.format.ecosystem();
    let mut still = Vec::new();
    for entry in std::mem::take(&mut lockfile.unresolved) {
        let raw_name = entry
            .text
            .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .next()
            .unwrap_or_default();
        let name = ecosystem.normalize(raw_name);
        let pin = pins.iter().find(|p| p.name == name);
        match pin {
            Some(pin) if entry.reason == UnresolvedReason::NotPinned && !raw_name.is_empty() => {
                let mut p = Package::new(ecosystem, raw_name, &pin.version);
                p.line = entry.line;
                p.source = Source::Registry { url: None };
                lockfile.packages.push(p);
            }
            _ => still.push(entry),
        }
    }
    lockfile.unresolved = still;
    lockfile.packages = merge_duplicates(std::mem::take(&mut lockfile.packages));
}
