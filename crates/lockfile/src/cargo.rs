//! `Cargo.lock` (<https://doc.rust-lang.org/cargo/guide/cargo-toml-vs-cargo-lock.html>), read
//! with the `cargo-lock` crate (RustSec's parser, every lockfile version Cargo has written).
//!
//! A package without `source` is a workspace member or a path dependency (Cargo.lock does not
//! tell them apart); what those depend on is direct. Dev-dependencies are not marked in the
//! lockfile. `registry+` and `sparse+` sources are registries (crates.io or another); `git+`
//! sources carry the commit after `#`.

use crate::error::ErrorKind;
use crate::model::{Package, Parsed, Source};
use crate::text::package_table_lines;
use cargo_lock::package::SourceKind;
use picket_core::Ecosystem;
use std::collections::HashSet;
use std::str::FromStr;

pub(crate) fn parse(text: &str) -> Result<Parsed, ErrorKind> {
    let lock = cargo_lock::Lockfile::from_str(text).map_err(|e| {
        // cargo-lock's message carries toml's, with the line and column.
        ErrorKind::syntax(None, e)
    })?;
    let mut direct: HashSet<(&str, String)> = HashSet::new();
    for p in lock.packages.iter().filter(|p| p.source.is_none()) {
        for d in &p.dependencies {
            direct.insert((d.name.as_str(), d.version.to_string()));
        }
    }
    let lines = package_table_lines(text);
    let mut out = Vec::with_capacity(lock.packages.len());
    for (i, p) in lock.packages.iter().enumerate() {
        let version = p.version.to_string();
        let mut pkg = Package::new(Ecosystem::CratesIo, p.name.as_str(), &version);
        pkg.source = match &p.source {
            None => Source::Path { path: None },
            Some(s) => match s.kind() {
                SourceKind::Git(reference) => Source::Git {
                    url: s.url().to_string(),
                    rev: s
                        .precise()
                        .map(str::to_owned)
                        .or_else(|| reference.pretty_ref(false).map(|r| r.to_string())),
                },
                SourceKind::Path => Source::Path {
                    path: Some(s.url().to_string()),
                },
                _ if s.is_default_registry() => Source::Registry { url: None },
                _ => Source::Registry {
                    url: Some(s.url().to_string()),
                },
            },
        };
        pkg.line = lines.get(i).copied();
        if p.source.is_some() {
            pkg.direct = Some(direct.contains(&(p.name.as_str(), version)));
        }
        out.push(pkg);
    }
    Ok(out.into())
}
