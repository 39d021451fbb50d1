//! Pipenv's `Pipfile.lock` (<https://pipenv.pypa.io/en/latest/pipfile.html>), JSON.
//!
//! `_meta` holds the hash, spec version and package indexes; every other top-level key is a
//! category: `default` (production), `develop` (development) and, since Pipenv 2022.10,
//! custom categories (<https://pipenv.pypa.io/en/latest/pipfile.html#package-category-groups>).
//! Each maps a package name to `version: "==1.2.3"`, or, for a non-index package, `git` +
//! `ref`, `path`, or `file`. The lockfile does not record which packages the Pipfile declares.

use crate::error::ErrorKind;
use crate::json::{self, Dialect};
use crate::model::{Package, Parsed, Source, Unresolved, UnresolvedReason};
use picket_core::Ecosystem;

pub(crate) fn parse(text: &str) -> Result<Parsed, ErrorKind> {
    let doc = json::parse(text, Dialect::Strict)?;
    let meta = doc
        .get("_meta")
        .ok_or_else(|| ErrorKind::invalid(Some(doc.line), "no \"_meta\""))?;
    if let Some(spec) = meta.scalar_text("pipfile-spec") {
        if spec != "6" {
            return Err(ErrorKind::UnsupportedVersion { version: spec });
        }
    }
    let mut out = Parsed::default();
    for (category, _, entries) in doc.members() {
        if category == "_meta" {
            continue;
        }
        for (name, key_line, e) in entries.members() {
            let version_node = e.get("version");
            let line = Some(version_node.map_or(*key_line, |v| v.line));
            let source = if let Some(url) = e.str("git") {
                Source::Git {
                    url: url.to_owned(),
                    rev: e.str("ref").map(str::to_owned),
                }
            } else if let Some(path) = e.str("path") {
                Source::Path {
                    path: Some(path.to_owned()),
                }
            } else if let Some(url) = e.str("file") {
                Source::Url {
                    url: url.to_owned(),
                }
            } else {
                Source::Registry { url: None }
            };
            let version = version_node.and_then(|v| v.as_str());
            let exact = version.and_then(|v| v.strip_prefix("===").or(v.strip_prefix("==")));
            let version = match (exact, &source) {
                (Some(v), _) => v.to_owned(),
                (None, Source::Git { rev: Some(rev), .. }) => rev.clone(),
                (None, Source::Registry { .. }) => {
                    out.unresolved.push(Unresolved {
                        line,
                        text: format!("{name}{}", version.unwrap_or_default()),
                        reason: UnresolvedReason::NotPinned,
                    });
                    continue;
                }
                (None, _) => String::new(),
            };
            let mut p = Package::new(Ecosystem::PyPi, name, &version);
            p.line = line;
            p.source = source;
            p.dev = match category.as_str() {
                "default" => Some(false),
                "develop" => Some(true),
                _ => None,
            };
            p.groups = vec![category.clone()];
            out.packages.push(p);
        }
    }
    Ok(out)
}
