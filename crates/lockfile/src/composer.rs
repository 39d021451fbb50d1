//! `composer.lock` (<https://getcomposer.org/doc/01-basic-usage.md#commit-your-composer-lock-file-to-version-control>),
//! JSON: `packages` are installed everywhere, `packages-dev` only with dev requirements.
//!
//! Each package has `name`, `version` (as tagged: `v1.2.3` stays so), `source` (a VCS
//! checkout) and `dist` (an archive). The lockfile does not record which repository a package
//! came from: a `path` dist is local, a branch version (`dev-main`, `1.x-dev`) or a package with
//! only a VCS `source` is a repository checkout (git), and anything else is taken as a
//! registry release. Nor does it record which packages `composer.json` requires.

use crate::error::ErrorKind;
use crate::json::{self, Dialect};
use crate::model::{Package, Parsed, Source};
use picket_core::Ecosystem;

pub(crate) fn parse(text: &str) -> Result<Parsed, ErrorKind> {
    let doc = json::parse(text, Dialect::Strict)?;
    if !doc.is_object() {
        return Err(ErrorKind::invalid(Some(doc.line), "not a JSON object"));
    }
    let mut out = Vec::new();
    for (section, dev) in [("packages", false), ("packages-dev", true)] {
        for e in doc.get(section).map(|n| n.elements()).unwrap_or_default() {
            let name = e.str("name").ok_or_else(|| {
                ErrorKind::invalid(Some(e.line), format!("a package in {section} has no name"))
            })?;
            let version_node = e.get("version");
            let version = version_node.and_then(|v| v.as_str()).ok_or_else(|| {
                ErrorKind::invalid(Some(e.line), format!("{name} has no version"))
            })?;
            let mut p = Package::new(Ecosystem::Packagist, name, version);
            p.line = version_node.map(|v| v.line);
            p.dev = Some(dev);
            let dist = e.get("dist");
            let vcs = e.get("source");
            let field =
                |n: Option<&json::Node>, k: &str| n.and_then(|n| n.str(k)).map(str::to_owned);
            let branch = version.starts_with("dev-") || version.ends_with("-dev");
            p.source = if field(dist, "type").as_deref() == Some("path") {
                Source::Path {
                    path: field(dist, "url"),
                }
            } else if branch || (dist.is_none() && vcs.is_some()) {
                Source::Git {
                    url: field(vcs, "url").or(field(dist, "url")).unwrap_or_default(),
                    rev: field(vcs, "reference").or(field(dist, "reference")),
                }
            } else {
                Source::Registry { url: None }
            };
            out.push(p);
        }
    }
    Ok(out.into())
}
