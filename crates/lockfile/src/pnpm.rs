//! pnpm's `pnpm-lock.yaml` (<https://github.com/pnpm/spec/tree/master/lockfile>), every
//! lockfileVersion pnpm has written to that file name:
//!
//! - 5.x (pnpm 3 to 7): `packages` keyed `/name/1.0.0` (peers after `_`); a single project
//!   lists `dependencies` / `devDependencies` / `optionalDependencies` at the top level, a
//!   workspace under `importers`, each name mapped to a version or a key.
//! - 6.0 (pnpm 8): keys `/name@1.0.0(peer@2.0.0)`; importers map names to
//!   `{specifier, version}`.
//! - 9.0 (pnpm 9, 10): keys without the leading `/`; `packages` holds each package's
//!   resolution, `snapshots` each peer variant's dependencies.
//!
//! In 5.x and 6.0 each package says `dev: true` (development only), `dev: false` (production
//! only) or nothing (both), and `optional: true`. 9.0 dropped those flags, so dev and optional
//! come from the graph: what only the importers' `devDependencies` lead to is dev. The
//! importers' dependencies are the direct ones. A `resolution` with `type: git`, `type:
//! directory` or a `tarball` outside the registry marks a non-registry package; `link:`
//! dependencies are folders of the workspace and have no package entry.

use crate::error::ErrorKind;
use crate::graph::{Graph, Kind};
use crate::model::{Package, Parsed, Source};
use crate::text::numbered_lines;
use picket_core::Ecosystem;
use serde_yaml_ng::{Mapping, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    V5,
    V6,
    V9,
}

const SECTIONS: [(&str, Kind); 3] = [
    ("dependencies", Kind::Required),
    ("optionalDependencies", Kind::Optional),
    ("devDependencies", Kind::Dev),
];

/// Flow collections (`{…}`, `[…]`) nested deeper than pnpm ever writes (two levels) are
/// refused before the YAML parser sees them: its scanner takes time quadratic in the nesting
/// (30 s for 100,000 `[`), and a repository's lockfile is untrusted input.
const MAX_FLOW_DEPTH: usize = 64;

pub(crate) fn parse(text: &str) -> Result<Parsed, ErrorKind> {
    check_flow_depth(text)?;
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let line = e
            .location()
            .map(|l| u32::try_from(l.line()).unwrap_or(u32::MAX));
        ErrorKind::syntax(line, e)
    })?;
    let version = match doc.get("lockfileVersion") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(ErrorKind::invalid(None, "no lockfileVersion")),
    };
    let dialect = match version.split('.').next() {
        Some("5") => Dialect::V5,
        Some("6") => Dialect::V6,
        Some("9") => Dialect::V9,
        _ => return Err(ErrorKind::UnsupportedVersion { version }),
    };
    let empty = Mapping::new();
    let packages = mapping(&doc, "packages").unwrap_or(&empty);
    // The graph's nodes: snapshots in 9.0, packages before.
    let nodes = match dialect {
        Dialect::V9 => mapping(&doc, "snapshots").unwrap_or(&empty),
        _ => packages,
    };
    let keys: Vec<&str> = nodes.keys().filter_map(Value::as_str).collect();
    let index: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let resolve = |name: &str, reference: &str| -> Option<usize> {
        if reference.starts_with("link:") {
            return None;
        }
        let candidate = match dialect {
            _ if reference.starts_with('/') => reference.to_owned(),
            Dialect::V5 => format!("/{name}/{reference}"),
            Dialect::V6 => format!("/{name}@{reference}"),
            Dialect::V9 => format!("{name}@{reference}"),
        };
        index
            .get(candidate.as_str())
            .or_else(|| index.get(reference))
            .copied()
    };

    // Edges, and the name each node is depended on by (git entries of 5.x/6.0 carry none).
    let mut graph = Graph::new(keys.len());
    let mut alias: HashMap<usize, &str> = HashMap::new();
    let importers: Vec<&Value> = match mapping(&doc, "importers") {
        Some(m) => m.values().collect(),
        None => vec![&doc],
    };
    for importer in importers {
        for (section, kind) in SECTIONS {
            for (name, reference) in dependencies(importer, section) {
                if let Some(i) = resolve(name, &reference) {
                    graph.root(i, kind);
                    alias.entry(i).or_insert(name);
                }
            }
        }
    }
    for (i, key) in keys.iter().enumerate() {
        let node = &nodes[*key];
        for (section, kind) in SECTIONS.into_iter().take(2) {
            for (name, reference) in dependencies(node, section) {
                if let Some(j) = resolve(name, &reference) {
                    graph.edge(i, j, kind);
                    alias.entry(j).or_insert(name);
                }
            }
        }
    }
    let flags = graph.classify();

    let lines = package_lines(text);
    let mut out = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let package_key = match dialect {
            Dialect::V9 => strip_peers(key),
            _ => key,
        };
        let entry = packages.get(package_key).ok_or_else(|| {
            ErrorKind::invalid(None, format!("snapshot {key:?} has no package entry"))
        })?;
        let mut p = package(dialect, package_key, entry, alias.get(&i).copied())?;
        p.line = lines.get(package_key).copied();
        p.direct = Some(graph.is_root(i));
        match dialect {
            Dialect::V9 => (p.dev, p.optional) = flags[i],
            _ => {
                p.dev = Some(entry.get("dev").and_then(Value::as_bool) == Some(true));
                p.optional = Some(entry.get("optional").and_then(Value::as_bool) == Some(true));
            }
        }
        out.push(p);
    }
    Ok(out.into())
}

/// Fails when brackets outside quoted scalars nest deeper than [`MAX_FLOW_DEPTH`].
fn check_flow_depth(text: &str) -> Result<(), ErrorKind> {
    let mut depth = 0usize;
    for (n, line) in numbered_lines(text) {
        let mut quote: Option<char> = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Err(ErrorKind::syntax(
                            Some(n),
                            format!("flow collections nested deeper than {MAX_FLOW_DEPTH}"),
                        ));
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

fn mapping<'a>(v: &'a Value, key: &str) -> Option<&'a Mapping> {
    v.get(key).and_then(Value::as_mapping)
}

/// A section's `name → reference`: the reference is a string (5.x, snapshots) or the
/// `version` of `{specifier, version}` (6.0 and 9.0 importers).
fn dependencies<'a>(v: &'a Value, section: &str) -> Vec<(&'a str, String)> {
    let Some(m) = mapping(v, section) else {
        return Vec::new();
    };
    m.iter()
        .filter_map(|(k, v)| {
            let reference = match v {
                Value::Mapping(_) => v.get("version").and_then(scalar)?,
                other => scalar(other)?,
            };
            Some((k.as_str()?, reference))
        })
        .collect()
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `name@1.0.0(peer@1)(other@2)` → `name@1.0.0` (9.0 snapshot keys).
fn strip_peers(key: &str) -> &str {
    // The name itself may be scoped (`@a/b@1.0.0(...)`): peers start at the first `(`.
    key.split_once('(').map_or(key, |(k, _)| k)
}

/// One package entry: name and version from its key (or its `name` / `version` fields, which
/// non-registry entries carry), source from its `resolution`.
fn package(
    dialect: Dialect,
    key: &str,
    entry: &Value,
    alias: Option<&str>,
) -> Result<Package, ErrorKind> {
    let from_key = split_key(dialect, key);
    let resolution = entry.get("resolution");
    let field = |k: &str| resolution.and_then(|r| r.get(k)).and_then(Value::as_str);
    let plain_version = from_key.is_some_and(|(_, v)| is_plain_version(v));
    let source = match (field("type"), field("tarball")) {
        (Some("git"), _) => Source::Git {
            url: field("repo").unwrap_or_default().to_owned(),
            rev: field("commit").map(str::to_owned),
        },
        (Some("directory"), _) => Source::Path {
            path: field("directory").map(str::to_owned),
        },
        (_, Some(tarball)) if plain_version => Source::Registry {
            url: Some(tarball.to_owned()),
        },
        (_, Some(tarball)) => crate::npm::source_of_reference(tarball),
        _ if plain_version => Source::Registry { url: None },
        _ => {
            return Err(ErrorKind::invalid(
                None,
                format!("{key:?} has neither a version nor a non-registry resolution"),
            ))
        }
    };
    let registry = matches!(source, Source::Registry { .. });
    let reference = from_key.map(|(_, r)| r.to_owned());
    let from_key = from_key.filter(|_| registry);
    let name = entry
        .get("name")
        .and_then(Value::as_str)
        .or(from_key.map(|(n, _)| n))
        .or(alias)
        .unwrap_or(key);
    let version = entry
        .get("version")
        .and_then(scalar)
        .or_else(|| from_key.map(|(_, v)| v.to_owned()))
        .or_else(|| field("commit").map(str::to_owned))
        .or(reference)
        .unwrap_or_else(|| key.to_owned());
    let mut p = Package::new(Ecosystem::Npm, name, &version);
    p.source = source;
    Ok(p)
}

/// A registry key's (name, version), peers removed; `None` when the key is no `name@version`
/// / `/name/version` (a git or `file:` key).
fn split_key(dialect: Dialect, key: &str) -> Option<(&str, &str)> {
    match dialect {
        Dialect::V5 => {
            let (name, version) = key.strip_prefix('/')?.rsplit_once('/')?;
            Some((name, version.split('_').next().unwrap_or(version)))
        }
        Dialect::V6 => {
            let bare = strip_peers(key.strip_prefix('/')?);
            let at = bare.rfind('@').filter(|&i| i > 0)?;
            Some((&bare[..at], &bare[at + 1..]))
        }
        Dialect::V9 => {
            let (name, reference) = crate::npm::split_descriptor(key)?;
            Some((name, strip_peers(reference)))
        }
    }
}

/// `1.2.3`, `1.2.3-rc.1+build`: what the registry's packages are keyed by.
fn is_plain_version(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
}

/// The 1-based line of each key of the top-level `packages:` mapping, as pnpm writes it (two
/// spaces of indentation, single-quoted when YAML needs it).
fn package_lines(text: &str) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    let mut inside = false;
    for (n, line) in numbered_lines(text) {
        if !line.starts_with(' ') && !line.is_empty() {
            inside = line.trim_end() == "packages:";
            continue;
        }
        let Some(key) = line.strip_prefix("  ").filter(|k| !k.starts_with(' ')) else {
            continue;
        };
        let key = key.trim_end();
        let key = key.strip_suffix(" {}").unwrap_or(key);
        if let (true, Some(key)) = (inside, key.strip_suffix(':')) {
            let key = if let Some(q) = key.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')) {
                q.replace("''", "'")
            } else {
                key.trim_matches('"').to_owned()
            };
            out.entry(key).or_insert(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_each_dialect() {
        assert_eq!(
            split_key(Dialect::V5, "/@a/b/1.0.0_react@17.0.2+@types+x@1"),
            Some(("@a/b", "1.0.0"))
        );
        assert_eq!(
            split_key(Dialect::V6, "/@a/b@1.0.0(react@17.0.2)"),
            Some(("@a/b", "1.0.0"))
        );
        assert_eq!(
            split_key(Dialect::V9, "@a/b@1.0.0(react@17.0.2)"),
            Some(("@a/b", "1.0.0"))
        );
        assert_eq!(split_key(Dialect::V6, "file:local"), None);
        assert!(is_plain_version("1.0.0-rc.1+b"));
        assert!(!is_plain_version("file:x"));
        assert!(!is_plain_version("git+https://h/r#abc"));
    }

    #[test]
    fn package_keys_are_found_with_their_lines() {
        let text = "lockfileVersion: '9.0'\n\npackages:\n\n  '@a/b@1.0.0':\n    resolution: {integrity: x}\n\n  c@2.0.0:\n    resolution: {integrity: y}\n\nsnapshots:\n\n  c@2.0.0: {}\n";
        let lines = package_lines(text);
        assert_eq!(lines.get("@a/b@1.0.0"), Some(&5));
        assert_eq!(lines.get("c@2.0.0"), Some(&8));
        assert_eq!(lines.len(), 2);
    }
}
