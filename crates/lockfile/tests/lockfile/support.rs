//! Reading fixtures and finding packages in a parsed lockfile.

use picket_lockfile::{Lockfile, Package};
use std::path::PathBuf;

/// The bytes of `tests/fixtures/<rel>`.
pub fn bytes(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixture at `tests/fixtures/<rel>`, parsed under that path (so its file name picks the
/// format).
pub fn fixture(rel: &str) -> Lockfile {
    picket_lockfile::parse(rel, &bytes(rel)).unwrap_or_else(|e| panic!("{e}"))
}

/// The one package named `name` (normalised) at `version`.
pub fn package<'a>(lock: &'a Lockfile, name: &str, version: &str) -> &'a Package {
    let found: Vec<&Package> = lock
        .packages
        .iter()
        .filter(|p| p.name == name && p.version == version)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{name}@{version} in {}: {found:?}",
        lock.path
    );
    found[0]
}

/// (line, direct, dev, optional) of a package.
pub fn flags(p: &Package) -> (Option<u32>, Option<bool>, Option<bool>, Option<bool>) {
    (p.line, p.direct, p.dev, p.optional)
}

/// Every package as `name@version`, in order.
pub fn ids(lock: &Lockfile) -> Vec<String> {
    lock.packages
        .iter()
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect()
}

/// The names of the packages that are not from a registry.
pub fn non_registry(lock: &Lockfile) -> Vec<&str> {
    lock.packages
        .iter()
        .filter(|p| !p.is_registry())
        .map(|p| p.name.as_str())
        .collect()
}

/// A git source at a commit.
pub fn at_commit(url: &str, rev: &str) -> picket_lockfile::Source {
    picket_lockfile::Source::Git {
        url: url.into(),
        rev: Some(rev.into()),
    }
}
