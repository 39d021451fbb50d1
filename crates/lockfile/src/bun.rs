//! Bun's text lockfile `bun.lock` (<https://bun.sh/docs/install/lockfile>; Bun ≥ 1.1.39 writes
//! it, ≥ 1.2 by default), JSON with trailing commas. The binary `bun.lockb` is not read.
//!
//! `workspaces` maps each workspace folder (`""` is the root) to its `dependencies`,
//! `devDependencies`, `optionalDependencies` and `peerDependencies`: the direct dependencies.
//! `packages` maps an install path (`debug`, `debug/ms` for a copy nested under `debug`) to an
//! array whose first element is the resolved `name@reference`: a registry package is
//! `[ident, registry, info, integrity]` (registry `""` for the default); git, `github:`,
//! `file:`, `link:`, `workspace:` and tarball entries carry their reference in the ident. The
//! info object lists the package's own dependencies; dev and optional come from that graph
//! (what only `devDependencies` lead to is dev).
//!
//! The format's source of truth is Bun's `src/install/lockfile/bun.lock.zig`; lockfileVersion
//! 0, 1 and 2 are read (2 adds `configVersion` and changes nothing read here).

use crate::error::ErrorKind;
use crate::graph::{Graph, Kind};
use crate::json::{self, Dialect, Node, Value};
use crate::model::{Package, Parsed, Source};
use crate::npm::{reference_kind, source_of_reference, split_descriptor, Reference};
use picket_core::Ecosystem;
use std::collections::HashMap;

pub(crate) fn parse(text: &str) -> Result<Parsed, ErrorKind> {
    let doc = json::parse(text, Dialect::Jsonc)?;
    match doc.scalar_text("lockfileVersion").as_deref() {
        Some("0" | "1" | "2") => {}
        Some(v) => {
            return Err(ErrorKind::UnsupportedVersion {
                version: v.to_owned(),
            })
        }
        None => return Err(ErrorKind::invalid(Some(doc.line), "no lockfileVersion")),
    }
    let empty = Node {
        line: 0,
        value: Value::Object(Vec::new()),
    };
    let packages = doc.get("packages").unwrap_or(&empty);
    let entries = packages.members();
    let index: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, _, _))| (k.as_str(), i))
        .collect();
    // Node's resolution over install paths: `a/b` then `a`'s parents, then the top level.
    let resolve = |from: &[&str], name: &str| -> Option<usize> {
        (0..=from.len()).rev().find_map(|depth| {
            let mut path = from[..depth].join("/");
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(name);
            index.get(path.as_str()).copied()
        })
    };

    let workspaces = doc.get("workspaces").unwrap_or(&empty);
    let mut graph = Graph::new(entries.len());
    for (folder, _, ws) in workspaces.members() {
        // A member's own copies are installed under its package name.
        let from: Vec<&str> = match ws.str("name") {
            Some(name) if !folder.is_empty() => vec![name],
            _ => Vec::new(),
        };
        for (section, kind) in [
            ("dependencies", Kind::Required),
            ("peerDependencies", Kind::Required),
            ("optionalDependencies", Kind::Optional),
            ("devDependencies", Kind::Dev),
        ] {
            for name in ws.keys_of(section) {
                if let Some(i) = resolve(&from, name) {
                    graph.root(i, kind);
                }
            }
        }
    }
    for (i, (key, _, entry)) in entries.iter().enumerate() {
        let Some(info) = entry.elements().iter().find(|e| e.is_object()) else {
            continue;
        };
        let path = install_path(key);
        let optional_peers: Vec<&str> = info
            .get("optionalPeers")
            .map(Node::elements)
            .unwrap_or_default()
            .iter()
            .filter_map(Node::as_str)
            .collect();
        for (section, kind) in [
            ("dependencies", Kind::Required),
            ("optionalDependencies", Kind::Optional),
            ("peerDependencies", Kind::Required),
        ] {
            for name in info.keys_of(section) {
                let kind = if optional_peers.contains(&name) {
                    Kind::Optional
                } else {
                    kind
                };
                if let Some(j) = resolve(&path, name) {
                    graph.edge(i, j, kind);
                }
            }
        }
    }
    let flags = graph.classify();

    let mut out = Vec::with_capacity(entries.len());
    for (i, (key, line, entry)) in entries.iter().enumerate() {
        let items = entry.elements();
        let ident = items.first().and_then(Node::as_str).ok_or_else(|| {
            ErrorKind::invalid(Some(*line), format!("{key:?} has no name@version"))
        })?;
        let (name, reference) = split_descriptor(ident).ok_or_else(|| {
            ErrorKind::invalid(Some(*line), format!("unreadable package {ident:?}"))
        })?;
        if reference.starts_with("root:") {
            continue; // the root project itself
        }
        let (version, source) = match reference_kind(reference) {
            Reference::Version => {
                let registry = items
                    .get(1)
                    .and_then(Node::as_str)
                    .filter(|r| !r.is_empty());
                (
                    reference.to_owned(),
                    Source::Registry {
                        url: registry.map(str::to_owned),
                    },
                )
            }
            _ => {
                let source = source_of_reference(reference);
                let version = match &source {
                    Source::Git { rev: Some(rev), .. } => rev.clone(),
                    Source::Workspace { path: Some(folder) } => workspaces
                        .get(folder.as_str())
                        .and_then(|w| w.str("version"))
                        .unwrap_or_default()
                        .to_owned(),
                    _ => reference.to_owned(),
                };
                (version, source)
            }
        };
        let mut p = Package::new(Ecosystem::Npm, name, &version);
        p.source = source;
        p.line = Some(*line);
        p.direct = Some(graph.is_root(i));
        (p.dev, p.optional) = flags[i];
        out.push(p);
    }
    Ok(out.into())
}

/// `@a/b/c/@d/e` → `["@a/b", "c", "@d/e"]`: the package names along an install path.
fn install_path(key: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = key;
    while !rest.is_empty() {
        let end = if rest.starts_with('@') {
            rest.match_indices('/').nth(1).map(|(i, _)| i)
        } else {
            rest.find('/')
        };
        match end {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + 1..];
            }
            None => {
                out.push(rest);
                rest = "";
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_paths_keep_scoped_names_whole() {
        assert_eq!(install_path("debug/ms"), vec!["debug", "ms"]);
        assert_eq!(install_path("@a/b/c/@d/e"), vec!["@a/b", "c", "@d/e"]);
        assert_eq!(install_path("@a/b"), vec!["@a/b"]);
    }
}
