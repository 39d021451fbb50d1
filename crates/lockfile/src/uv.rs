//! `uv.lock` (<https://docs.astral.sh/uv/concepts/projects/layout/#the-lockfile>; the format is
//! uv's own, `version = 1`).
//!
//! Every package, the project's own included, is a `[[package]]` with `name`, `version` and
//! `source`: `{ registry = url }`, `{ git = "url?rev#commit" }`, `{ url }`, `{ path }`,
//! `{ directory }`, or `{ editable }` / `{ virtual }` for the workspace's members. A member's
//! `dependencies`, `optional-dependencies` (extras) and `dev-dependencies` (dependency groups)
//! are the direct dependencies; dev and optional follow the graph (a dependency naming
//! `extra = [...]` also pulls in that package's `optional-dependencies` of those extras).
//! When resolution forks by marker, the same name appears at several versions, and a
//! dependency names the one it means with `version`.

use crate::error::ErrorKind;
use crate::graph::{Graph, Kind};
use crate::model::{version_or_reference, Package, Parsed, Source};
use crate::text::{from_toml, package_table_lines};
use picket_core::Ecosystem;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Deserialize)]
struct Lock {
    version: i64,
    #[serde(default)]
    package: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    version: Option<String>,
    source: EntrySource,
    #[serde(default)]
    dependencies: Vec<Dependency>,
    #[serde(default, rename = "optional-dependencies")]
    optional_dependencies: BTreeMap<String, Vec<Dependency>>,
    #[serde(default, rename = "dev-dependencies")]
    dev_dependencies: BTreeMap<String, Vec<Dependency>>,
}

#[derive(Deserialize)]
struct EntrySource {
    registry: Option<String>,
    git: Option<String>,
    url: Option<String>,
    path: Option<String>,
    directory: Option<String>,
    editable: Option<String>,
    #[serde(rename = "virtual")]
    virtual_: Option<String>,
}

#[derive(Deserialize)]
struct Dependency {
    name: String,
    version: Option<String>,
    #[serde(default)]
    extra: Vec<String>,
}

pub(crate) fn parse(text: &str) -> Result<Parsed, ErrorKind> {
    let lock: Lock = from_toml(text)?;
    if lock.version != 1 {
        return Err(ErrorKind::UnsupportedVersion {
            version: lock.version.to_string(),
        });
    }
    let entries = &lock.package;
    let lines = package_table_lines(text);
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        by_name.entry(e.name.as_str()).or_default().push(i);
    }
    // The entries a dependency names: every version of the name, or the one it gives.
    let resolve = |d: &Dependency| -> Vec<usize> {
        by_name
            .get(d.name.as_str())
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| {
                d.version
                    .as_ref()
                    .is_none_or(|v| entries[i].version.as_ref() == Some(v))
            })
            .collect()
    };
    // The packages a dependency installs: its target, and the target's extras it asks for.
    let installs = |d: &Dependency| -> Vec<usize> {
        let targets = resolve(d);
        let mut out = targets.clone();
        for &t in &targets {
            for extra in &d.extra {
                for inner in entries[t]
                    .optional_dependencies
                    .get(extra)
                    .into_iter()
                    .flatten()
                {
                    out.extend(resolve(inner));
                }
            }
        }
        out
    };

    let members: Vec<bool> = entries
        .iter()
        .map(|e| e.source.editable.is_some() || e.source.virtual_.is_some())
        .collect();
    let mut graph = Graph::new(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let groups = std::iter::once((Kind::Required, &e.dependencies))
            .chain(
                e.optional_dependencies
                    .values()
                    .map(|d| (Kind::Optional, d)),
            )
            .chain(e.dev_dependencies.values().map(|d| (Kind::Dev, d)));
        for (kind, deps) in groups {
            // A non-member's extras are edges only when a dependent asks for them (`installs`).
            if !members[i] && kind != Kind::Required {
                continue;
            }
            for d in deps {
                for j in installs(d) {
                    if members[i] {
                        graph.root(j, kind);
                    } else {
                        graph.edge(i, j, kind);
                    }
                }
            }
        }
    }
    let flags = graph.classify();

    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let line = lines.get(i).copied();
        let s = &e.source;
        let source = if let Some(url) = &s.registry {
            Source::Registry {
                url: Some(url.clone()),
            }
        } else if let Some(git) = &s.git {
            let (url, commit) = git.split_once('#').unwrap_or((git, ""));
            let (url, rev) = url.split_once('?').unwrap_or((url, ""));
            let rev = [commit, rev.trim_start_matches("rev=")]
                .into_iter()
                .find(|r| !r.is_empty());
            Source::Git {
                url: url.to_owned(),
                rev: rev.map(str::to_owned),
            }
        } else if let Some(url) = &s.url {
            Source::Url { url: url.clone() }
        } else if let Some(path) = s.path.as_ref().or(s.directory.as_ref()) {
            Source::Path {
                path: Some(path.clone()),
            }
        } else if let Some(path) = s.editable.as_ref().or(s.virtual_.as_ref()) {
            Source::Workspace {
                path: Some(path.clone()),
            }
        } else {
            return Err(ErrorKind::invalid(
                line,
                format!("{}: unknown source", e.name),
            ));
        };
        // A member with a dynamic version records none.
        let version = version_or_reference(&e.name, e.version.clone(), &source, line)?;
        let mut p = Package::new(Ecosystem::PyPi, &e.name, &version);
        p.line = line;
        p.source = source;
        if !members[i] {
            p.direct = Some(graph.is_root(i));
            (p.dev, p.optional) = flags[i];
        }
        out.push(p);
    }
    Ok(out.into())
}
