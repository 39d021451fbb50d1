//! `poetry.lock` (<https://python-poetry.org/docs/basic-usage/#committing-your-poetrylock-file-to-version-control>).
//!
//! Each `[[package]]` has `name`, `version`, `optional` (installed only for an extra) and, by
//! lock-version: `category = "main" | "dev"` (1.x, Poetry < 1.2), nothing (2.0, Poetry
//! 1.2–1.8), or `groups = [...]` (2.1, Poetry ≥ 2). Poetry's docs: groups other than the
//! implicit `main` "must only contain dependencies you need in your development process"
//! (<https://python-poetry.org/docs/managing-dependencies/>), so a package outside `main` is
//! dev. `[package.source]` marks non-PyPI packages: `git` (with `resolved_reference`),
//! `directory`, `file`, `url`, or `legacy` (another index: still a registry). The lockfile does
//! not record which packages `pyproject.toml` declares.

use crate::error::ErrorKind;
use crate::model::{check_version, Package, Parsed, Source};
use crate::text::{from_toml, package_table_lines};
use picket_core::Ecosystem;
use serde::Deserialize;

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<Entry>,
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(rename = "lock-version")]
    lock_version: Option<String>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    version: String,
    #[serde(default)]
    optional: bool,
    category: Option<String>,
    groups: Option<Vec<String>>,
    source: Option<EntrySource>,
}

#[derive(Deserialize)]
struct EntrySource {
    #[serde(rename = "type")]
    kind: String,
    url: Option<String>,
    reference: Option<String>,
    resolved_reference: Option<String>,
}

pub(crate) fn parse(text: &str) -> Result<Parsed, ErrorKind> {
    let lock: Lock = from_toml(text)?;
    check_version(lock.metadata.and_then(|m| m.lock_version), &["1.", "2."])?;
    let lines = package_table_lines(text);
    let mut out = Vec::with_capacity(lock.package.len());
    for (i, e) in lock.package.into_iter().enumerate() {
        let mut p = Package::new(Ecosystem::PyPi, &e.name, &e.version);
        p.line = lines.get(i).copied();
        p.optional = Some(e.optional);
        p.dev = match (&e.groups, e.category.as_deref()) {
            (Some(groups), _) => Some(!groups.iter().any(|g| g == "main")),
            (None, Some(category)) => Some(category == "dev"),
            (None, None) => None,
        };
        p.groups = e.groups.unwrap_or_default();
        p.groups.sort();
        p.source = match e.source {
            None => Source::Registry { url: None },
            Some(s) => match s.kind.as_str() {
                "legacy" | "pypi" => Source::Registry { url: s.url },
                "git" => Source::Git {
                    url: s.url.unwrap_or_default(),
                    rev: s.resolved_reference.or(s.reference),
                },
                "directory" | "file" => Source::Path { path: s.url },
                "url" => Source::Url {
                    url: s.url.unwrap_or_default(),
                },
                other => {
                    return Err(ErrorKind::invalid(
                        p.line,
                        format!("{}: unknown source type {other:?}", e.name),
                    ))
                }
            },
        };
        out.push(p);
    }
    Ok(out.into())
}
