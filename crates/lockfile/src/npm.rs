//! npm's `package-lock.json` and `npm-shrinkwrap.json`
//! (<https://docs.npmjs.com/cli/v11/configuring-npm/package-lock-json>), and what the npm-family
//! lockfiles share: `name@reference` descriptors and telling a registry reference from a git,
//! URL or path one.
//!
//! - lockfileVersion 2 and 3: `packages` maps each install location (`node_modules/a`,
//!   `node_modules/a/node_modules/b`, a workspace folder) to its metadata. `packages[""]` is
//!   the root project; its `dependencies` / `devDependencies` / `optionalDependencies` /
//!   `peerDependencies`, and those of the workspace folders its `workspaces` globs name, are
//!   the direct dependencies, found where Node's resolution would find them. `dev`,
//!   `optional` and `devOptional` are npm's own flags ("devOptional: part of the dev tree and
//!   an optional dependency of a non-dev package", so installed in production as optional).
//!   A `link: true` entry points to a folder: a workspace member or a `file:` dependency.
//! - lockfileVersion 1: `dependencies` nests by install location; `version` holds the alias
//!   (`npm:real@1.0.0`), git URL or `file:` path for non-registry entries. It records no root
//!   dependency list, so only a top-level entry that no entry `requires` is known to be direct.

use crate::error::ErrorKind;
use crate::json::{self, Dialect, Node};
use crate::model::{Package, Parsed, Source};
use picket_core::Ecosystem;
use std::collections::{HashMap, HashSet};

pub(crate) fn parse(text: &str) -> Result<Parsed, ErrorKind> {
    let doc = json::parse(text, Dialect::Strict)?;
    if !doc.is_object() {
        return Err(ErrorKind::invalid(Some(doc.line), "not a JSON object"));
    }
    let version = doc.scalar_text("lockfileVersion");
    match (version.as_deref(), doc.get("packages")) {
        (Some("2" | "3"), Some(packages)) => from_packages(packages).map(Parsed::from),
        (Some("2" | "3"), None) => Err(ErrorKind::invalid(None, "no \"packages\"")),
        (Some("1") | None, _) => from_v1(&doc).map(Parsed::from),
        (Some(v), _) => Err(ErrorKind::UnsupportedVersion {
            version: v.to_owned(),
        }),
    }
}

/// lockfileVersion 2 and 3: the `packages` object.
fn from_packages(packages: &Node) -> Result<Vec<Package>, ErrorKind> {
    let entries: HashMap<&str, &Node> = packages
        .members()
        .iter()
        .map(|(k, _, v)| (k.as_str(), v))
        .collect();
    let root = entries
        .get("")
        .ok_or_else(|| ErrorKind::invalid(Some(packages.line), "no root entry \"\""))?;
    let globs = workspace_globs(root);
    let is_member = |folder: &str| globs.iter().any(|g| glob_match(g, folder));

    // The project folders (root and workspace members) and where Node finds what they declare.
    let mut direct: HashSet<&str> = HashSet::new();
    for (folder, node) in &entries {
        if !folder.is_empty() && (folder.contains("node_modules/") || !is_member(folder)) {
            continue;
        }
        for name in declared(node) {
            let mut prefix: &str = folder;
            loop {
                let key = if prefix.is_empty() {
                    format!("node_modules/{name}")
                } else {
                    format!("{prefix}/node_modules/{name}")
                };
                if let Some((k, _)) = entries.get_key_value(key.as_str()) {
                    direct.insert(k);
                    break;
                }
                if prefix.is_empty() {
                    break;
                }
                prefix = prefix.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            }
        }
    }

    let mut out = Vec::new();
    for (key, line, node) in packages.members() {
        let Some((_, installed_as)) = key.rsplit_once("node_modules/") else {
            continue; // the root, or a folder that a `link` entry points to
        };
        let mut p = if node.flag("link") {
            let target = node.str("resolved").unwrap_or_default();
            let folder = entries.get(target);
            let raw_name = folder
                .and_then(|f| f.str("name"))
                .or(node.str("name"))
                .unwrap_or(installed_as);
            let version = folder.and_then(|f| f.str("version")).unwrap_or(target);
            let mut p = Package::new(Ecosystem::Npm, raw_name, version);
            let path = Some(target.to_owned());
            p.source = if is_member(target) {
                Source::Workspace { path }
            } else {
                Source::Path { path }
            };
            p
        } else {
            let raw_name = node.str("name").unwrap_or(installed_as);
            let version = node.str("version").ok_or_else(|| {
                ErrorKind::invalid(Some(*line), format!("\"{key}\" has no version"))
            })?;
            let mut p = Package::new(Ecosystem::Npm, raw_name, version);
            p.source = source_of_resolved(node.str("resolved"));
            p
        };
        // The line that pins it: its `version`, or the entry's key for a link.
        p.line = Some(node.get("version").map_or(*line, |v| v.line));
        p.direct = Some(direct.contains(key.as_str()));
        let dev_optional = node.flag("devOptional");
        p.dev = Some(node.flag("dev") && !dev_optional);
        p.optional = Some(node.flag("optional") || dev_optional);
        out.push(p);
    }
    Ok(out)
}

/// The names a project folder's entry declares in any of its dependency lists.
fn declared(node: &Node) -> impl Iterator<Item = &str> {
    [
        "dependencies",
        "devDependencies",
        "optionalDependencies",
        "peerDependencies",
    ]
    .into_iter()
    .flat_map(move |k| node.keys_of(k))
}

/// The root's `workspaces`: an array of globs, or `{ "packages": [...] }`.
fn workspace_globs(root: &Node) -> Vec<String> {
    let Some(ws) = root.get("workspaces") else {
        return Vec::new();
    };
    let list = ws.get("packages").unwrap_or(ws);
    list.elements()
        .iter()
        .filter_map(Node::as_str)
        .map(|g| g.trim_start_matches("./").trim_end_matches('/').to_owned())
        .collect()
}

/// A workspace glob against a folder: `*` matches within one path segment, `**` any number of
/// segments.
fn glob_match(pattern: &str, path: &str) -> bool {
    fn segments(p: &[&str], s: &[&str]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(&"**"), _) => segments(&p[1..], s) || (!s.is_empty() && segments(p, &s[1..])),
            (Some(pat), Some(seg)) => segment(pat, seg) && segments(&p[1..], &s[1..]),
            _ => false,
        }
    }
    fn segment(pat: &str, seg: &str) -> bool {
        match pat.split_once('*') {
            None => pat == seg,
            Some((head, tail)) => {
                seg.len() >= head.len()
                    && seg.starts_with(head)
                    && (0..=seg.len() - head.len())
                        .filter(|&i| seg.is_char_boundary(head.len() + i))
                        .any(|i| segment(tail, &seg[head.len() + i..]))
            }
        }
    }
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    segments(&p, &s)
}

/// lockfileVersion 1: `dependencies`, nested.
fn from_v1(doc: &Node) -> Result<Vec<Package>, ErrorKind> {
    let Some(deps) = doc.get("dependencies") else {
        return Ok(Vec::new()); // a project with no dependencies
    };
    let mut required: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    walk_v1(deps, &mut required, &mut out)?;
    // Top-level entries come first, in `deps` order.
    for ((name, _, _), p) in deps.members().iter().zip(&mut out) {
        if !required.contains(name.as_str()) {
            p.direct = Some(true);
        }
    }
    Ok(out)
}

/// Reads one `dependencies` level breadth-first (its entries, then what each nests), so the
/// top level comes out first.
fn walk_v1<'a>(
    deps: &'a Node,
    required: &mut HashSet<&'a str>,
    out: &mut Vec<Package>,
) -> Result<(), ErrorKind> {
    for (name, line, node) in deps.members() {
        let version = node
            .str("version")
            .ok_or_else(|| ErrorKind::invalid(Some(*line), format!("\"{name}\" has no version")))?;
        let mut p = match version.strip_prefix("npm:").and_then(split_descriptor) {
            Some((real, v)) => {
                let mut p = Package::new(Ecosystem::Npm, real, v);
                p.source = source_of_resolved(node.str("resolved"));
                p
            }
            None => {
                let source = match reference_kind(version) {
                    Reference::Version => source_of_resolved(node.str("resolved")),
                    _ => source_of_reference(version),
                };
                let version = match &source {
                    Source::Git { rev: Some(rev), .. } => rev.as_str(),
                    _ => version,
                };
                let mut p = Package::new(Ecosystem::Npm, name, version);
                p.source = source;
                p
            }
        };
        p.line = Some(node.get("version").map_or(*line, |v| v.line));
        p.dev = Some(node.flag("dev"));
        p.optional = Some(node.flag("optional"));
        required.extend(node.keys_of("requires"));
        out.push(p);
    }
    for (_, _, node) in deps.members() {
        if let Some(nested) = node.get("dependencies") {
            walk_v1(nested, required, out)?;
        }
    }
    Ok(())
}

/// `name@reference` (`@scope/name@^1.0.0`, `name@npm:real@1`, `name@git+https://…`) split at the
/// `@` after the name.
pub(crate) fn split_descriptor(s: &str) -> Option<(&str, &str)> {
    let at = s.get(1..)?.find('@')? + 1;
    Some((&s[..at], &s[at + 1..]))
}

/// What a reference (a dependency's spec, or a lockfile's resolved form) points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reference {
    /// A version, range or tag: the registry.
    Version,
    /// `npm:real@range`.
    Alias,
    Git,
    Url,
    Path,
    Workspace,
}

/// Classifies a reference as the npm-family tools write them
/// (<https://docs.npmjs.com/cli/v11/configuring-npm/package-json#dependencies>,
/// <https://yarnpkg.com/protocols>, <https://pnpm.io/package_json>).
pub(crate) fn reference_kind(r: &str) -> Reference {
    const GIT: [&str; 8] = [
        "git+",
        "git:",
        "git@",
        "github:",
        "gitlab:",
        "bitbucket:",
        "gist:",
        "ssh:",
    ];
    const PATH: [&str; 6] = ["file:", "link:", "portal:", "./", "../", "/"];
    if r.starts_with("npm:") {
        Reference::Alias
    } else if r.starts_with("workspace:") {
        Reference::Workspace
    } else if GIT.iter().any(|p| r.starts_with(p)) || r.contains("#commit=") {
        Reference::Git
    } else if PATH.iter().any(|p| r.starts_with(p)) || r.starts_with("~/") {
        Reference::Path
    } else if r.starts_with("http://") || r.starts_with("https://") {
        let before_hash = r.split('#').next().unwrap_or(r);
        if before_hash.ends_with(".git") {
            Reference::Git
        } else {
            Reference::Url
        }
    } else if is_github_shorthand(r) {
        Reference::Git
    } else {
        Reference::Version
    }
}

/// `owner/repo` or `owner/repo#ref`: npm's and Yarn's GitHub shorthand.
fn is_github_shorthand(r: &str) -> bool {
    let path = r.split('#').next().unwrap_or(r);
    let mut parts = path.split('/');
    let ok = |s: Option<&str>| {
        s.is_some_and(|s| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// The source a non-version reference names: git (`url#rev`), URL or path.
pub(crate) fn source_of_reference(r: &str) -> Source {
    match reference_kind(r) {
        Reference::Git => git_source(r),
        // The registry's own tarball URL (`…/name/-/name-1.0.0.tgz`) is the registry package.
        Reference::Url if r.contains("/-/") => Source::Registry {
            url: Some(r.to_owned()),
        },
        Reference::Url => Source::Url { url: r.to_owned() },
        Reference::Workspace => Source::Workspace {
            path: Some(r.trim_start_matches("workspace:").to_owned()),
        },
        Reference::Path => Source::Path {
            path: Some(
                r.trim_start_matches("file:")
                    .trim_start_matches("link:")
                    .trim_start_matches("portal:")
                    .to_owned(),
            ),
        },
        Reference::Version | Reference::Alias => Source::Registry { url: None },
    }
}

/// `url#rev` (or Yarn's `url#commit=rev`) as a git source.
pub(crate) fn git_source(r: &str) -> Source {
    let (url, rev) = match r.split_once('#') {
        Some((url, rev)) => {
            let rev = rev
                .split('&')
                .find_map(|kv| kv.strip_prefix("commit="))
                .unwrap_or(rev);
            (url, Some(rev.to_owned()))
        }
        None => (r, None),
    };
    Source::Git {
        url: url.to_owned(),
        rev,
    }
}

/// The source a lockfile's `resolved` field names: absent or a registry tarball
/// (`…/name/-/name-1.0.0.tgz`) is the registry; anything else is what it says.
pub(crate) fn source_of_resolved(resolved: Option<&str>) -> Source {
    let Some(r) = resolved else {
        return Source::Registry { url: None };
    };
    match reference_kind(r) {
        Reference::Version => Source::Path {
            path: Some(r.to_owned()), // v3 writes a link target as a bare relative folder
        },
        _ => source_of_reference(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_split_after_the_scope() {
        assert_eq!(split_descriptor("@a/b@^1"), Some(("@a/b", "^1")));
        assert_eq!(split_descriptor("b@npm:c@1"), Some(("b", "npm:c@1")));
        assert_eq!(split_descriptor("b"), None);
        assert_eq!(split_descriptor("@a/b"), None);
        assert_eq!(split_descriptor(""), None);
    }

    #[test]
    fn references_are_classified() {
        use Reference::*;
        for (r, want) in [
            ("^1.2.3", Version),
            ("latest", Version),
            ("npm:strip-ansi@6.0.1", Alias),
            ("git+ssh://git@github.com/a/b.git#abc", Git),
            ("github:a/b", Git),
            ("a/b#v1", Git),
            ("https://github.com/a/b.git", Git),
            ("https://example.com/b-1.0.0.tgz", Url),
            ("file:../x", Path),
            ("link:../x", Path),
            ("workspace:*", Workspace),
        ] {
            assert_eq!(reference_kind(r), want, "{r}");
        }
        assert_eq!(
            git_source("git://h/r#commit=abc"),
            Source::Git {
                url: "git://h/r".into(),
                rev: Some("abc".into())
            }
        );
        assert!(matches!(
            source_of_resolved(Some("https://registry.npmjs.org/ms/-/ms-2.1.3.tgz")),
            Source::Registry { url: Some(_) }
        ));
    }

    #[test]
    fn workspace_globs_match_folders() {
        assert!(glob_match("packages/*", "packages/a"));
        assert!(!glob_match("packages/*", "packages/a/b"));
        assert!(glob_match("packages/**", "packages/a/b"));
        assert!(glob_match("apps/web-*", "apps/web-admin"));
        assert!(!glob_match("apps/web-*", "apps/api"));
        assert!(glob_match("tools", "tools"));
    }
}
