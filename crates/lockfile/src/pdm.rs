//! `pdm.lock` (<https://pdm-project.org/en/latest/usage/lockfile/>).
//!
//! Each `[[package]]` has `name`, `version` and `groups`: `default` is the project's own
//! dependencies; every other group is a development group or an optional-dependency group,
//! which the lockfile does not tell apart, so only membership of `default` is reported as
//! "not dev". A package installed from git has `git` and `revision`, a local one `path`, a
//! direct URL `url`. The lockfile does not record which packages the project declares. PDM
//! writes a package again, with `extras`, for each set of extras used: those merge into one.

use crate::error::ErrorKind;
use crate::model::{check_version, version_or_reference, Package, Parsed, Source};
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
    lock_version: Option<String>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    version: Option<String>,
    groups: Option<Vec<String>>,
    git: Option<String>,
    revision: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    path: Option<String>,
    url: Option<String>,
}

pub(crate) fn parse(text: &str) -> Result<Parsed, ErrorKind> {
    let lock: Lock = from_toml(text)?;
    check_version(lock.metadata.and_then(|m| m.lock_version), &["3.", "4."])?;
    let lines = package_table_lines(text);
    let mut out = Vec::with_capacity(lock.package.len());
    for (i, e) in lock.package.into_iter().enumerate() {
        let line = lines.get(i).copied();
        let source = if let Some(url) = e.git {
            Source::Git {
                url,
                rev: e.revision.or(e.git_ref),
            }
        } else if let Some(path) = e.path {
            Source::Path { path: Some(path) }
        } else if let Some(url) = e.url {
            Source::Url { url }
        } else {
            Source::Registry { url: None }
        };
        let version = version_or_reference(&e.name, e.version, &source, line)?;
        let mut p = Package::new(Ecosystem::PyPi, &e.name, &version);
        p.line = line;
        p.source = source;
        if let Some(mut groups) = e.groups {
            groups.sort();
            if groups.iter().any(|g| g == "default") {
                p.dev = Some(false);
            }
            p.groups = groups;
        }
        out.push(p);
    }
    Ok(out.into())
}
