//! Yarn's `yarn.lock`, both dialects, read by one line parser:
//!
//! - Yarn 1 (<https://classic.yarnpkg.com/en/docs/yarn-lock>): its own syntax. Each entry starts
//!   at column 0 with the descriptors it satisfies (`"a@^1.0.0", a@^1.1.0:`), then indented
//!   `version "1.2.0"`, `resolved "<url>#<sha1>"`, `dependencies:` with `name "range"` lines.
//!   It records neither the project's own dependencies nor dev/optional flags.
//! - Yarn 2+ ("berry", a YAML subset with `__metadata`, <https://yarnpkg.com/advanced/lexicon#lockfile>):
//!   entries `"a@npm:^1.0.0, a@npm:^1.1.0":` with `version: 1.2.0`, `resolution: "a@npm:1.2.0"`
//!   (the real name and the protocol: `npm:`, `workspace:`, `patch:`, `file:`, `portal:`,
//!   `link:`, git URLs with `#commit=`, tarball URLs; <https://yarnpkg.com/protocols>). The
//!   workspaces are entries too (`app@workspace:.`), and their `dependencies` (development
//!   ones included, not told apart) are the direct dependencies. `dependenciesMeta` marks a
//!   dependency `optional: true`: what production reaches only through those is optional.

use crate::error::ErrorKind;
use crate::graph::{Graph, Kind};
use crate::model::{Package, Parsed, Source};
use crate::npm::{git_source, reference_kind, source_of_reference, split_descriptor, Reference};
use crate::text::numbered_lines;
use picket_core::Ecosystem;
use std::collections::{HashMap, HashSet};

/// One entry: its header line, the line of its `version`, the descriptors it satisfies, its
/// scalar fields, and its `dependencies` (name, range).
#[derive(Debug, Default)]
struct Entry {
    line: u32,
    version_line: Option<u32>,
    descriptors: Vec<String>,
    fields: HashMap<String, String>,
    dependencies: Vec<(String, String)>,
    /// Dependencies `dependenciesMeta` marks `optional: true` (berry).
    optional: HashSet<String>,
}

pub(crate) fn parse(text: &str) -> Result<Parsed, ErrorKind> {
    let entries = read_entries(text)?;
    let berry = entries
        .iter()
        .any(|e| e.descriptors.iter().any(|d| d == "__metadata"));
    if berry {
        berry_packages(&entries).map(Parsed::from)
    } else {
        classic_packages(&entries).map(Parsed::from)
    }
}

fn read_entries(text: &str) -> Result<Vec<Entry>, ErrorKind> {
    let mut entries: Vec<Entry> = Vec::new();
    // The nested map being read (`dependencies`, `bin`, ...) of the current entry, and under
    // `dependenciesMeta` the dependency being described.
    let mut nested: Option<String> = None;
    let mut meta: Option<String> = None;
    for (n, raw) in numbered_lines(text) {
        let content = raw.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = raw.len() - content.len();
        let syntax = |m: &str| ErrorKind::syntax(Some(n), m);
        match indent {
            0 => {
                let header = content
                    .strip_suffix(':')
                    .ok_or_else(|| syntax("an entry's first line must end with ':'"))?;
                let descriptors = header
                    .split(',')
                    .map(|d| d.trim().trim_matches('"').to_owned())
                    .filter(|d| !d.is_empty())
                    .collect::<Vec<_>>();
                if descriptors.is_empty() {
                    return Err(syntax("an entry without descriptors"));
                }
                entries.push(Entry {
                    line: n,
                    descriptors,
                    ..Entry::default()
                });
                nested = None;
            }
            2 => {
                let entry = entries
                    .last_mut()
                    .ok_or_else(|| syntax("a field outside any entry"))?;
                let (key, value) = key_value(content).ok_or_else(|| syntax("unreadable field"))?;
                if value.is_empty() {
                    nested = Some(key);
                } else {
                    if key == "version" {
                        entry.version_line = Some(n);
                    }
                    entry.fields.insert(key, value);
                    nested = None;
                }
            }
            4 => {
                let entry = entries
                    .last_mut()
                    .ok_or_else(|| syntax("a field outside any entry"))?;
                let section = nested
                    .as_deref()
                    .ok_or_else(|| syntax("an indented line outside a section"))?;
                let (name, range) =
                    key_value(content).ok_or_else(|| syntax("unreadable dependency"))?;
                match section {
                    "dependencies" | "optionalDependencies" => {
                        entry.dependencies.push((name, range))
                    }
                    "dependenciesMeta" => meta = Some(name),
                    _ => {}
                }
            }
            6 if nested.as_deref() == Some("dependenciesMeta") => {
                let entry = entries
                    .last_mut()
                    .ok_or_else(|| syntax("a field outside any entry"))?;
                let (key, value) = key_value(content).ok_or_else(|| syntax("unreadable field"))?;
                if let (Some(name), "optional", "true") = (&meta, key.as_str(), value.as_str()) {
                    entry.optional.insert(name.clone());
                }
            }
            // Deeper levels of other maps say nothing read here.
            _ if indent > 4 && nested.is_some() => {}
            _ => return Err(syntax("unexpected indentation")),
        }
    }
    Ok(entries)
}

/// `key value` (Yarn 1) or `key: value` (berry), either side possibly double-quoted; an empty
/// value opens a nested map.
fn key_value(s: &str) -> Option<(String, String)> {
    let (key, rest) = if let Some(quoted) = s.strip_prefix('"') {
        let end = quoted.find('"')?;
        (quoted[..end].to_owned(), &quoted[end + 1..])
    } else {
        let end = s.find([' ', ':']).unwrap_or(s.len());
        (s[..end].to_owned(), &s[end..])
    };
    let rest = rest.strip_prefix(':').unwrap_or(rest).trim();
    let value = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(rest);
    Some((key, value.to_owned()))
}

/// Yarn 1: name and source from the first descriptor; the version is `version`.
fn classic_packages(entries: &[Entry]) -> Result<Vec<Package>, ErrorKind> {
    let mut out = Vec::new();
    for e in entries {
        let first = &e.descriptors[0];
        let (name, range) = split_descriptor(first).ok_or_else(|| {
            ErrorKind::invalid(Some(e.line), format!("descriptor {first:?} names no range"))
        })?;
        let version = e
            .fields
            .get("version")
            .ok_or_else(|| ErrorKind::invalid(Some(e.line), format!("{first:?} has no version")))?;
        let resolved = e.fields.get("resolved").map(String::as_str);
        let (name, source) = match reference_kind(range) {
            Reference::Alias => {
                let real = range
                    .strip_prefix("npm:")
                    .and_then(split_descriptor)
                    .map_or(name, |(real, _)| real);
                (real, registry(resolved))
            }
            Reference::Version => (name, registry(resolved)),
            Reference::Git => (
                name,
                match resolved {
                    Some(r) if r.contains('#') => git_source(r),
                    // GitHub dependencies resolve to `https://codeload.github.com/o/r/tar.gz/<commit>`.
                    Some(r) if r.starts_with("https://codeload.github.com/") => Source::Git {
                        url: range.split('#').next().unwrap_or(range).to_owned(),
                        rev: r.rsplit('/').next().map(str::to_owned),
                    },
                    other => Source::Git {
                        url: other.unwrap_or(range).to_owned(),
                        rev: None,
                    },
                },
            ),
            Reference::Url => (
                name,
                source_of_reference(resolved.unwrap_or(range).split('#').next().unwrap_or(range)),
            ),
            Reference::Path | Reference::Workspace => (name, source_of_reference(range)),
        };
        let mut p = Package::new(Ecosystem::Npm, name, version);
        p.source = source;
        p.line = Some(e.version_line.unwrap_or(e.line));
        out.push(p);
    }
    Ok(out)
}

fn registry(resolved: Option<&str>) -> Source {
    Source::Registry {
        url: resolved.map(|r| r.split('#').next().unwrap_or(r).to_owned()),
    }
}

/// Yarn 2+: name and source from `resolution`; the workspaces' dependencies are direct.
fn berry_packages(entries: &[Entry]) -> Result<Vec<Package>, ErrorKind> {
    // Which entry each descriptor resolves to (berry appends `::locator=…` to some).
    let mut by_descriptor: HashMap<&str, usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        for d in &e.descriptors {
            by_descriptor.insert(d.split("::").next().unwrap_or(d), i);
        }
    }
    // The graph: workspaces' dependencies are roots; `dependenciesMeta` marks optional edges.
    let mut graph = Graph::new(entries.len());
    let mut has_workspace = false;
    for (i, e) in entries.iter().enumerate() {
        let is_workspace = e
            .fields
            .get("resolution")
            .and_then(|r| split_descriptor(r))
            .is_some_and(|(_, r)| r.starts_with("workspace:"));
        has_workspace |= is_workspace;
        for (name, range) in &e.dependencies {
            let Some(&j) = by_descriptor.get(format!("{name}@{range}").as_str()) else {
                continue;
            };
            let kind = if e.optional.contains(name) {
                Kind::Optional
            } else {
                Kind::Required
            };
            if is_workspace {
                graph.root(j, kind);
            } else {
                graph.edge(i, j, kind);
            }
        }
    }
    let flags = graph.classify();

    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.descriptors.iter().any(|d| d == "__metadata") {
            continue;
        }
        let resolution = e.fields.get("resolution").ok_or_else(|| {
            ErrorKind::invalid(
                Some(e.line),
                format!("{:?} has no resolution", e.descriptors[0]),
            )
        })?;
        let version = e.fields.get("version").ok_or_else(|| {
            ErrorKind::invalid(Some(e.line), format!("{resolution:?} has no version"))
        })?;
        let (name, source) = berry_resolution(resolution).ok_or_else(|| {
            ErrorKind::invalid(
                Some(e.line),
                format!("unreadable resolution {resolution:?}"),
            )
        })?;
        let mut p = Package::new(Ecosystem::Npm, &name, version);
        p.source = source;
        p.line = Some(e.version_line.unwrap_or(e.line));
        if has_workspace {
            p.direct = Some(graph.is_root(i));
            // Development dependencies are not told apart: only `optional` is known.
            p.optional = flags[i].1;
        }
        out.push(p);
    }
    Ok(out)
}

/// A berry locator `name@protocol:…` → the real name and the source. A `patch:` locator is
/// the patched package: its source is the inner locator's.
fn berry_resolution(resolution: &str) -> Option<(String, Source)> {
    let (name, reference) = split_descriptor(resolution)?;
    if let Some(inner) = reference.strip_prefix("patch:") {
        let inner = inner.split('#').next().unwrap_or(inner);
        return berry_resolution(&percent_decode(inner));
    }
    let source = if reference.starts_with("npm:") {
        Source::Registry { url: None }
    } else if reference.starts_with("exec:") {
        Source::Path {
            path: Some(reference.trim_start_matches("exec:").to_owned()),
        }
    } else {
        match reference_kind(reference) {
            Reference::Git => git_source(reference),
            Reference::Path | Reference::Workspace => {
                // `file:./x#./x::hash=…&locator=…`: the path is before the `#` / `::`.
                let plain = reference.split("::").next().unwrap_or(reference);
                source_of_reference(plain.split('#').next().unwrap_or(plain))
            }
            Reference::Url => source_of_reference(reference),
            // A bare version: berry writes `npm:` for the registry, so this is a protocol of
            // a plugin Picket does not know; never matched as a registry package.
            Reference::Version | Reference::Alias => Source::Url {
                url: reference.to_owned(),
            },
        }
    };
    Some((name.to_owned(), source))
}

/// `%XX` escapes (berry encodes the inner locator of `patch:`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_locators_name_the_patched_registry_package() {
        let (name, source) = berry_resolution(
            "resolve@patch:resolve@npm%3A1.22.1#~builtin<compat/resolve>::version=1.22.1&hash=07638b",
        )
        .unwrap();
        assert_eq!(name, "resolve");
        assert_eq!(source, Source::Registry { url: None });
        let (_, source) = berry_resolution("x@https://h/x.git#commit=abc").unwrap();
        assert_eq!(
            source,
            Source::Git {
                url: "https://h/x.git".into(),
                rev: Some("abc".into())
            }
        );
    }

    #[test]
    fn fields_of_both_dialects() {
        assert_eq!(
            key_value("version \"1.0.0\""),
            Some(("version".into(), "1.0.0".into()))
        );
        assert_eq!(
            key_value("\"@a/b\": \"npm:^1\""),
            Some(("@a/b".into(), "npm:^1".into()))
        );
        assert_eq!(
            key_value("dependencies:"),
            Some(("dependencies".into(), String::new()))
        );
    }
}
