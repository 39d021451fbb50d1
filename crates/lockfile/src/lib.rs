//! Lockfiles read into the packages they pin, for Supply Chain (domain.md §1, §6): which
//! [`picket_core::Ecosystem`], the name as the ecosystem normalises it, the exact version, the
//! lockfile and line, direct or transitive and the dev/optional group where the format says so,
//! and whether the entry comes from the registry at all (git, path and URL entries are not
//! matched against registry advisories). Picket never generates a lockfile; one it cannot parse
//! is an error naming the file and the reason, never an empty result.
//!
//! Data flow: a repository's file list → [`select`] (by file name, skipping vendored trees) →
//! [`parse`] for each file (one module per format; `docs/lockfiles.md` says what each reads) →
//! [`read_repository`] also follows `requirements*.txt` includes (`-r`, `-c`) inside the
//! repository. Nothing here touches the network or the file system: the caller hands in bytes.

mod bun;
mod cargo;
mod composer;
mod error;
mod gemfile;
mod gomod;
mod gradle;
mod graph;
mod json;
mod model;
mod npm;
mod pdm;
mod pipfile;
mod pnpm;
mod poetry;
mod repository;
mod requirements;
mod text;
mod uv;
mod yarn;

pub use error::{ErrorKind, LockfileError};
pub use model::{
    Format, Include, IncludeKind, Lockfile, Package, Source, Unresolved, UnresolvedReason,
};
pub use repository::{read_repository, select};

/// Reads one lockfile: `path` is its path relative to the repository root (`/`-separated; the
/// file name decides the format, see [`Format::for_path`]) and `bytes` its content (UTF-8; a
/// leading byte-order mark is ignored).
///
/// The packages come out in the order the file lists them, one per (name, version, source):
/// an entry the file repeats (npm's nested copies, pnpm's peer variants, Bundler's platform
/// variants) is merged into its first occurrence, direct if any copy is, dev only if every copy
/// is. A `requirements*.txt` file's includes are listed in [`Lockfile::includes`] for
/// [`read_repository`] to follow; `parse` reads only the one file.
///
/// # Errors
/// [`LockfileError`] names the file and the reason: a file name that is no lockfile format
/// ([`ErrorKind::UnknownFormat`]), bytes that are not UTF-8, a syntax error (with its line where
/// the parser knows it), a format version this crate does not know, or an entry the format
/// requires that is missing or of the wrong shape. A lockfile is never half-read: any error
/// fails the whole file.
pub fn parse(path: &str, bytes: &[u8]) -> Result<Lockfile, LockfileError> {
    let format = Format::for_path(path)
        .ok_or_else(|| LockfileError::new(path, None, ErrorKind::UnknownFormat))?;
    parse_as(path, format, bytes)
}

/// [`parse`] with the format given instead of read from the file name: what
/// [`read_repository`] uses for a requirements file reached through `-r` whose name is not
/// `requirements*.txt` (`base.in`, `reqs/common.txt`).
///
/// # Errors
/// As [`parse`], except [`ErrorKind::UnknownFormat`].
pub fn parse_as(path: &str, format: Format, bytes: &[u8]) -> Result<Lockfile, LockfileError> {
    let err = |kind| LockfileError::new(path, Some(format), kind);
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        err(ErrorKind::NotUtf8 {
            line: text::line_of_offset(bytes, e.valid_up_to()),
        })
    })?;
    let parsed = match format {
        Format::PackageLock | Format::NpmShrinkwrap => npm::parse(text),
        Format::YarnLock => yarn::parse(text),
        Format::PnpmLock => pnpm::parse(text),
        Format::BunLock => bun::parse(text),
        Format::Requirements => requirements::parse(text, path),
        Format::PoetryLock => poetry::parse(text),
        Format::PipfileLock => pipfile::parse(text),
        Format::UvLock => uv::parse(text),
        Format::PdmLock => pdm::parse(text),
        Format::CargoLock => cargo::parse(text),
        Format::GoMod => gomod::parse(text),
        Format::GemfileLock => gemfile::parse(text),
        Format::ComposerLock => composer::parse(text),
        Format::GradleLockfile => gradle::parse(text, path),
    }
    .map_err(err)?;
    let mut packages = model::merge_duplicates(parsed.packages);
    for p in &mut packages {
        if matches!(p.source, Source::Workspace { .. }) {
            // The project's own members: not a dependency of it, in no group.
            (p.direct, p.dev, p.optional) = (None, None, None);
        }
    }
    Ok(Lockfile {
        path: path.to_owned(),
        format,
        packages,
        unresolved: parsed.unresolved,
        includes: parsed.includes,
    })
}
