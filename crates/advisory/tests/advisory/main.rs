//! picket-advisory's integration tests: real OSV records (fixtures copied from the shared
//! snapshot, and the whole snapshot when it is there) and each version order against its
//! ecosystem's reference implementation.

mod differential;
mod matcher;
mod records;
mod shared_data;

use std::path::PathBuf;

/// The crate's directory.
fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's root.
fn repo_root() -> PathBuf {
    crate_dir().join("../..")
}
