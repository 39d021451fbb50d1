//! Bundler's `Gemfile.lock` / `gems.locked` (<https://bundler.io/guides/gemfile_lock.html>;
//! the grammar is Bundler's `lib/bundler/lockfile_parser.rb`).
//!
//! Source sections (`GEM`, `GIT`, `PATH`, `PLUGIN SOURCE`) have `remote:` (and `revision:` for
//! git), then `specs:` with one gem per line at four spaces, `name (version)` or
//! `name (version-platform)` (the version ends at the first `-`), and its dependencies at six.
//! `DEPENDENCIES` lists what the Gemfile declares: the direct gems. The Gemfile's groups
//! (development, test) are not in the lockfile.

use crate::error::ErrorKind;
use crate::model::{Package, Parsed, Source};
use crate::text::numbered_lines;
use picket_core::Ecosystem;
use std::collections::HashSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Gem,
    Git,
    Path,
    Plugin,
    Dependencies,
    /// PLATFORMS, RUBY VERSION, BUNDLED WITH, CHECKSUMS, and sections Bundler may add.
    Other,
}

pub(crate) fn parse(text: &str) -> Result<Parsed, ErrorKind> {
    let mut section: Option<Section> = None;
    let mut known_section = false;
    let (mut remote, mut revision) = (None::<String>, None::<String>);
    let mut specs: Vec<Package> = Vec::new();
    let mut direct: HashSet<String> = HashSet::new();
    for (n, line) in numbered_lines(text) {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            let s = match line.trim_end() {
                "GEM" => Section::Gem,
                "GIT" => Section::Git,
                "PATH" => Section::Path,
                "PLUGIN SOURCE" => Section::Plugin,
                "DEPENDENCIES" => Section::Dependencies,
                _ => Section::Other,
            };
            known_section |= s != Section::Other;
            section = Some(s);
            (remote, revision) = (None, None);
            continue;
        }
        let Some(current) = section else {
            return Err(ErrorKind::syntax(
                Some(n),
                "indented line before any section",
            ));
        };
        match current {
            Section::Gem | Section::Git | Section::Path | Section::Plugin => {
                if let Some(kv) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) {
                    if let Some(v) = kv.strip_prefix("remote: ") {
                        remote.get_or_insert_with(|| v.trim().to_owned());
                    } else if let Some(v) = kv.strip_prefix("revision: ") {
                        revision = Some(v.trim().to_owned());
                    }
                } else if let Some(spec) = line.strip_prefix("    ").filter(|l| !l.starts_with(' '))
                {
                    let (name, version) = spec_line(spec).ok_or_else(|| {
                        ErrorKind::syntax(Some(n), format!("unreadable spec {spec:?}"))
                    })?;
                    let mut p = Package::new(Ecosystem::RubyGems, name, version);
                    p.line = Some(n);
                    p.source = match current {
                        Section::Gem => Source::Registry {
                            url: remote.clone(),
                        },
                        Section::Git => Source::Git {
                            url: remote.clone().unwrap_or_default(),
                            rev: revision.clone(),
                        },
                        Section::Path => Source::Path {
                            path: remote.clone(),
                        },
                        _ => Source::Url {
                            url: remote.clone().unwrap_or_default(),
                        },
                    };
                    specs.push(p);
                }
            }
            Section::Dependencies => {
                let dep = line.trim();
                let name = dep.split([' ', '!']).next().unwrap_or(dep);
                direct.insert(name.to_owned());
            }
            Section::Other => {}
        }
    }
    if !known_section {
        return Err(ErrorKind::invalid(
            None,
            "no GEM, GIT, PATH or DEPENDENCIES section",
        ));
    }
    for p in &mut specs {
        p.direct = Some(direct.contains(&p.raw_name));
    }
    Ok(specs.into())
}

/// `name (version[-platform])` → (name, version), as Bundler's `NAME_VERSION` pattern reads it.
fn spec_line(spec: &str) -> Option<(&str, &str)> {
    let (name, rest) = spec.trim_end().split_once(' ')?;
    let inner = rest
        .strip_prefix('(')?
        .trim_end_matches('!')
        .strip_suffix(')')?;
    let version = inner.split('-').next()?;
    (!name.is_empty() && !version.is_empty()).then_some((name, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_lines_drop_the_platform() {
        assert_eq!(spec_line("rack (2.2.22)"), Some(("rack", "2.2.22")));
        assert_eq!(
            spec_line("nokogiri (1.13.10-x86_64-linux)"),
            Some(("nokogiri", "1.13.10"))
        );
        assert_eq!(
            spec_line("rails (7.1.0.beta1)"),
            Some(("rails", "7.1.0.beta1"))
        );
        assert_eq!(spec_line("rack"), None);
    }
}
