//! What a lockfile is read into: the formats, the packages they pin, the entries that pin
//! nothing exact, and a requirements file's includes.

use picket_core::Ecosystem;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// A lockfile format Picket reads, chosen by file name ([`Format::for_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// npm's `package-lock.json`, lockfileVersion 1, 2 or 3
    /// (<https://docs.npmjs.com/cli/v11/configuring-npm/package-lock-json>).
    PackageLock,
    /// npm's `npm-shrinkwrap.json`: the same format as `package-lock.json`
    /// (<https://docs.npmjs.com/cli/v11/configuring-npm/npm-shrinkwrap-json>).
    NpmShrinkwrap,
    /// `yarn.lock` of Yarn 1 (<https://classic.yarnpkg.com/en/docs/yarn-lock>) or Yarn 2+
    /// ("berry", YAML with `__metadata`, <https://yarnpkg.com/advanced/lexicon#lockfile>).
    YarnLock,
    /// `pnpm-lock.yaml`, lockfileVersion 5.x, 6.x and 9.0
    /// (<https://github.com/pnpm/spec/tree/master/lockfile>).
    PnpmLock,
    /// Bun's text lockfile `bun.lock` (JSON with trailing commas, <https://bun.sh/docs/install/lockfile>).
    BunLock,
    /// pip's requirements files `requirements*.txt`
    /// (<https://pip.pypa.io/en/stable/reference/requirements-file-format/>).
    Requirements,
    /// `poetry.lock` (<https://python-poetry.org/docs/basic-usage/#committing-your-poetrylock-file-to-version-control>).
    PoetryLock,
    /// Pipenv's `Pipfile.lock` (<https://pipenv.pypa.io/en/latest/pipfile.html>).
    PipfileLock,
    /// `uv.lock` (<https://docs.astral.sh/uv/concepts/projects/layout/#the-lockfile>).
    UvLock,
    /// `pdm.lock` (<https://pdm-project.org/en/latest/usage/lockfile/>).
    PdmLock,
    /// `Cargo.lock` (<https://doc.rust-lang.org/cargo/guide/cargo-toml-vs-cargo-lock.html>),
    /// read with the `cargo-lock` crate.
    CargoLock,
    /// `go.mod` (<https://go.dev/ref/mod#go-mod-file>): Go's minimal version selection makes its
    /// `require` versions the ones built (`go.sum` only holds hashes).
    GoMod,
    /// Bundler's `Gemfile.lock` or `gems.locked` (<https://bundler.io/guides/gemfile_lock.html>).
    GemfileLock,
    /// `composer.lock` (<https://getcomposer.org/doc/01-basic-usage.md#commit-your-composer-lock-file-to-version-control>).
    ComposerLock,
    /// Gradle's dependency locks: `gradle.lockfile`, `buildscript-gradle.lockfile`, and the
    /// per-configuration `gradle/dependency-locks/*.lockfile` of Gradle before 7
    /// (<https://docs.gradle.org/current/userguide/dependency_locking.html>).
    GradleLockfile,
}

impl Format {
    /// Every format, in a fixed order.
    pub const ALL: [Format; 15] = [
        Format::PackageLock,
        Format::NpmShrinkwrap,
        Format::YarnLock,
        Format::PnpmLock,
        Format::BunLock,
        Format::Requirements,
        Format::PoetryLock,
        Format::PipfileLock,
        Format::UvLock,
        Format::PdmLock,
        Format::CargoLock,
        Format::GoMod,
        Format::GemfileLock,
        Format::ComposerLock,
        Format::GradleLockfile,
    ];

    /// The ecosystem whose registry the format's packages come from.
    pub fn ecosystem(self) -> Ecosystem {
        match self {
            Format::PackageLock
            | Format::NpmShrinkwrap
            | Format::YarnLock
            | Format::PnpmLock
            | Format::BunLock => Ecosystem::Npm,
            Format::Requirements
            | Format::PoetryLock
            | Format::PipfileLock
            | Format::UvLock
            | Format::PdmLock => Ecosystem::PyPi,
            Format::CargoLock => Ecosystem::CratesIo,
            Format::GoMod => Ecosystem::Go,
            Format::GemfileLock => Ecosystem::RubyGems,
            Format::ComposerLock => Ecosystem::Packagist,
            Format::GradleLockfile => Ecosystem::Maven,
        }
    }

    /// A short stable name (`package-lock`, `pnpm-lock`, ...), as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::PackageLock => "package-lock",
            Format::NpmShrinkwrap => "npm-shrinkwrap",
            Format::YarnLock => "yarn-lock",
            Format::PnpmLock => "pnpm-lock",
            Format::BunLock => "bun-lock",
            Format::Requirements => "requirements",
            Format::PoetryLock => "poetry-lock",
            Format::PipfileLock => "pipfile-lock",
            Format::UvLock => "uv-lock",
            Format::PdmLock => "pdm-lock",
            Format::CargoLock => "cargo-lock",
            Format::GoMod => "go-mod",
            Format::GemfileLock => "gemfile-lock",
            Format::ComposerLock => "composer-lock",
            Format::GradleLockfile => "gradle-lockfile",
        }
    }

    /// The format of the file at `path` (relative, `/`-separated), by its name: `package-lock.json`,
    /// `npm-shrinkwrap.json`, `yarn.lock`, `pnpm-lock.yaml`, `bun.lock`, `requirements*.txt` and
    /// `*requirements.txt` (and any `.txt` directly in a folder named `requirements`),
    /// `poetry.lock`, `Pipfile.lock`, `uv.lock`, `pdm.lock`, `Cargo.lock`, `go.mod`,
    /// `Gemfile.lock` / `gems.locked`, `composer.lock`, `gradle.lockfile` /
    /// `buildscript-gradle.lockfile` / `gradle/dependency-locks/*.lockfile`. Names are matched
    /// exactly (case-sensitive, as the tools write them), except requirements files, whose names
    /// people choose. `None` for anything else, including Bun's binary `bun.lockb`.
    pub fn for_path(path: &str) -> Option<Format> {
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (dir, name),
            None => ("", path),
        };
        let parent = dir.rsplit('/').next().unwrap_or("");
        Some(match name {
            "package-lock.json" => Format::PackageLock,
            "npm-shrinkwrap.json" => Format::NpmShrinkwrap,
            "yarn.lock" => Format::YarnLock,
            "pnpm-lock.yaml" => Format::PnpmLock,
            "bun.lock" => Format::BunLock,
            "poetry.lock" => Format::PoetryLock,
            "Pipfile.lock" => Format::PipfileLock,
            "uv.lock" => Format::UvLock,
            "pdm.lock" => Format::PdmLock,
            "Cargo.lock" => Format::CargoLock,
            "go.mod" => Format::GoMod,
            "Gemfile.lock" | "gems.locked" => Format::GemfileLock,
            "composer.lock" => Format::ComposerLock,
            "gradle.lockfile" | "buildscript-gradle.lockfile" => Format::GradleLockfile,
            _ if name.ends_with(".lockfile") && dir.ends_with("gradle/dependency-locks") => {
                Format::GradleLockfile
            }
            _ => {
                let lower = name.to_ascii_lowercase();
                let stem = lower.strip_suffix(".txt")?;
                if stem.starts_with("requirements")
                    || stem.ends_with("requirements")
                    || parent.eq_ignore_ascii_case("requirements")
                {
                    Format::Requirements
                } else {
                    return None;
                }
            }
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One lockfile, read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockfile {
    /// The path given to [`crate::parse`] (relative to the repository root).
    pub path: String,
    /// Its format.
    pub format: Format,
    /// The packages it pins to an exact version, in file order, one per (name, version, source).
    pub packages: Vec<Package>,
    /// Entries that pin no exact version (only requirements files have them), in file order.
    pub unresolved: Vec<Unresolved>,
    /// The files a requirements file includes with `-r` / `-c`, resolved against the
    /// repository root; empty for every other format.
    pub includes: Vec<Include>,
}

/// A package a lockfile pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The ecosystem of the format ([`Format::ecosystem`]).
    pub ecosystem: Ecosystem,
    /// The name as the ecosystem normalises it ([`Ecosystem::normalize`]): what advisories are
    /// matched on. For an npm alias (`"strip": "npm:strip-ansi@6.0.1"`) the real package's name.
    pub name: String,
    /// The name as the lockfile writes it (`PyYAML`, `Symfony/Polyfill-Ctype`), for display.
    pub raw_name: String,
    /// The exact version, as written (`1.2.3`, Go's `v1.2.3`, Composer's `v1.27.0`). For an
    /// entry that is not from a registry and records no version, the reference the lockfile pins
    /// instead (a commit or a path).
    pub version: String,
    /// The 1-based line that pins the package, where the format allows finding it: the line
    /// holding its version (`"version": "1.2.3"`, `version = "1.2.3"`, `rack (2.2.22)`,
    /// `/ms@2.1.3:`), else the first line of its entry. PR comments go there.
    pub line: Option<u32>,
    /// Whether the project itself declares the package (`Some(true)`) or only another package
    /// pulls it in (`Some(false)`); `None` where the lockfile does not say.
    pub direct: Option<bool>,
    /// Whether only development installs get it (`Some(true)`) or production installs do too
    /// (`Some(false)`); `None` where the lockfile does not say.
    pub dev: Option<bool>,
    /// Whether it is installed only as an optional dependency or extra (`Some(true)`); `None`
    /// where the lockfile does not say.
    pub optional: Option<bool>,
    /// The lockfile's own group names for the entry, where it has them (Poetry and PDM groups,
    /// Pipfile.lock sections, Gradle configurations), sorted; empty otherwise.
    pub groups: Vec<String>,
    /// Where the package comes from. Only [`Source::Registry`] packages are matched against
    /// the ecosystem's advisories.
    pub source: Source,
}

impl Package {
    /// A registry package with nothing known beyond its name and version.
    pub(crate) fn new(ecosystem: Ecosystem, raw_name: &str, version: &str) -> Package {
        Package {
            ecosystem,
            name: ecosystem.normalize(raw_name),
            raw_name: raw_name.to_owned(),
            version: version.to_owned(),
            line: None,
            direct: None,
            dev: None,
            optional: None,
            groups: Vec::new(),
            source: Source::Registry { url: None },
        }
    }

    /// Whether advisories of [`Package::ecosystem`] apply: the package comes from a registry.
    pub fn is_registry(&self) -> bool {
        matches!(self.source, Source::Registry { .. })
    }
}

/// Where a locked package comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// The ecosystem's package registry; `url` is the registry or download URL when the
    /// lockfile names one (a private registry included: it serves the registry's names).
    Registry {
        /// The registry, index or tarball URL the lockfile records, if any.
        url: Option<String>,
    },
    /// A git repository.
    Git {
        /// The repository URL, without the revision.
        url: String,
        /// The commit (or the ref, when the lockfile records no commit).
        rev: Option<String>,
    },
    /// An archive downloaded from a URL that is not the registry's.
    Url {
        /// The URL.
        url: String,
    },
    /// A directory or archive in the repository or on disk (`file:`, `link:`, path
    /// dependencies; Cargo.lock's entries without a source, which are workspace members or
    /// path dependencies).
    Path {
        /// The path, when the lockfile records it.
        path: Option<String>,
    },
    /// A member of the repository's own workspace (its `direct`, `dev` and `optional` are
    /// always `None`: it is the project, not a dependency of it).
    Workspace {
        /// The member's folder, when the lockfile records it.
        path: Option<String>,
    },
}

/// An entry that pins no exact version, reported instead of guessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unresolved {
    /// The 1-based line of the entry.
    pub line: Option<u32>,
    /// The entry as written (continuation lines joined, comment removed).
    pub text: String,
    /// Why it pins nothing.
    pub reason: UnresolvedReason,
}

/// Why an entry pins no exact version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnresolvedReason {
    /// A version range, a wildcard (`==1.*`), or no version at all.
    NotPinned,
    /// A direct URL (`name @ https://…`, a bare archive URL).
    Url,
    /// A VCS URL (`git+https://…`).
    Vcs,
    /// A local path (`./pkg`, `file:…`).
    LocalPath,
    /// `-e` / `--editable`: installed from a source tree.
    Editable,
    /// `-r` / `-c` naming a file outside the repository or a URL.
    IncludeOutsideRepository,
    /// `-r` / `-c` naming a file the repository does not have.
    IncludeNotFound,
}

impl fmt::Display for UnresolvedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnresolvedReason::NotPinned => "not pinned to one version with ==",
            UnresolvedReason::Url => "installed from a URL",
            UnresolvedReason::Vcs => "installed from a version control repository",
            UnresolvedReason::LocalPath => "installed from a local path",
            UnresolvedReason::Editable => "editable install from a source tree",
            UnresolvedReason::IncludeOutsideRepository => "includes a file outside the repository",
            UnresolvedReason::IncludeNotFound => "includes a file the repository does not have",
        })
    }
}

/// A file a requirements file includes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Include {
    /// The included file, relative to the repository root (resolved against the including
    /// file's folder, as pip does).
    pub path: String,
    /// `-r` or `-c`.
    pub kind: IncludeKind,
    /// The 1-based line of the option in the including file.
    pub line: u32,
}

/// How a requirements file includes another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncludeKind {
    /// `-r` / `--requirement`: the file's requirements are installed too.
    Requirements,
    /// `-c` / `--constraint`: the file's pins bind the versions of requirements named
    /// elsewhere, and install nothing by themselves.
    Constraints,
}

/// The version to report for an entry of `name` that records `version` or not: a registry
/// package must have one; a git one without falls back to its commit, anything else to `""`.
pub(crate) fn version_or_reference(
    name: &str,
    version: Option<String>,
    source: &Source,
    line: Option<u32>,
) -> Result<String, crate::ErrorKind> {
    match (version, source) {
        (Some(v), _) => Ok(v),
        (None, Source::Git { rev: Some(rev), .. }) => Ok(rev.clone()),
        (None, Source::Registry { .. }) => Err(crate::ErrorKind::invalid(
            line,
            format!("{name} has no version"),
        )),
        (None, _) => Ok(String::new()),
    }
}

/// Refuses a format version whose major part is not one of `majors` (`"2."` accepts `2.1`).
pub(crate) fn check_version(
    version: Option<String>,
    majors: &[&str],
) -> Result<(), crate::ErrorKind> {
    match version {
        Some(v) if !majors.iter().any(|m| v.starts_with(m)) => {
            Err(crate::ErrorKind::UnsupportedVersion { version: v })
        }
        _ => Ok(()),
    }
}

/// What a format's parser returns before [`merge_duplicates`].
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub packages: Vec<Package>,
    pub unresolved: Vec<Unresolved>,
    pub includes: Vec<Include>,
}

impl From<Vec<Package>> for Parsed {
    fn from(packages: Vec<Package>) -> Parsed {
        Parsed {
            packages,
            ..Parsed::default()
        }
    }
}

/// Merges entries with the same (name, version, source) into the first: the first line, direct
/// if any copy is, dev or optional only if every copy is, the union of groups.
pub(crate) fn merge_duplicates(packages: Vec<Package>) -> Vec<Package> {
    let mut out: Vec<Package> = Vec::with_capacity(packages.len());
    let mut seen: HashMap<(String, String, Source), usize> = HashMap::new();
    for p in packages {
        let key = (p.name.clone(), p.version.clone(), p.source.clone());
        match seen.get(&key) {
            None => {
                seen.insert(key, out.len());
                out.push(p);
            }
            Some(&i) => {
                let first = &mut out[i];
                first.line = match (first.line, p.line) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                first.direct = any(first.direct, p.direct);
                first.dev = all(first.dev, p.dev);
                first.optional = all(first.optional, p.optional);
                for g in p.groups {
                    if !first.groups.contains(&g) {
                        first.groups.push(g);
                    }
                }
                first.groups.sort();
            }
        }
    }
    out
}

/// `Some(true)` if either is; `Some(false)` if both are known false; else unknown.
fn any(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// `Some(false)` if either is; `Some(true)` if both are known true; else unknown.
fn all(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_chosen_by_file_name() {
        let cases = [
            ("package-lock.json", Some(Format::PackageLock)),
            ("web/npm-shrinkwrap.json", Some(Format::NpmShrinkwrap)),
            ("a/b/yarn.lock", Some(Format::YarnLock)),
            ("pnpm-lock.yaml", Some(Format::PnpmLock)),
            ("bun.lock", Some(Format::BunLock)),
            ("bun.lockb", None),
            ("requirements.txt", Some(Format::Requirements)),
            ("requirements-dev.txt", Some(Format::Requirements)),
            ("Requirements_Test.TXT", Some(Format::Requirements)),
            ("dev-requirements.txt", Some(Format::Requirements)),
            ("requirements/base.txt", Some(Format::Requirements)),
            ("requirements.in", None),
            ("constraints.txt", None),
            ("notes.txt", None),
            ("poetry.lock", Some(Format::PoetryLock)),
            ("Pipfile.lock", Some(Format::PipfileLock)),
            ("pipfile.lock", None),
            ("uv.lock", Some(Format::UvLock)),
            ("pdm.lock", Some(Format::PdmLock)),
            ("Cargo.lock", Some(Format::CargoLock)),
            ("go.mod", Some(Format::GoMod)),
            ("go.sum", None),
            ("Gemfile.lock", Some(Format::GemfileLock)),
            ("gems.locked", Some(Format::GemfileLock)),
            ("composer.lock", Some(Format::ComposerLock)),
            ("app/gradle.lockfile", Some(Format::GradleLockfile)),
            ("buildscript-gradle.lockfile", Some(Format::GradleLockfile)),
            (
                "gradle/dependency-locks/compileClasspath.lockfile",
                Some(Format::GradleLockfile),
            ),
            ("other/compileClasspath.lockfile", None),
        ];
        for (path, want) in cases {
            assert_eq!(Format::for_path(path), want, "{path}");
        }
    }

    #[test]
    fn duplicates_merge_into_the_first_entry() {
        let mut a = Package::new(Ecosystem::Npm, "ms", "2.0.0");
        a.line = Some(10);
        a.direct = Some(false);
        a.dev = Some(true);
        let mut b = a.clone();
        b.line = Some(4);
        b.direct = Some(true);
        b.dev = Some(false);
        let mut other = a.clone();
        other.version = "2.1.3".into();
        let merged = merge_duplicates(vec![a, other, b]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].line, Some(4));
        assert_eq!(merged[0].direct, Some(true));
        assert_eq!(merged[0].dev, Some(false));
        assert_eq!(merged[1].version, "2.1.3");
    }
}
