//! Cargo.lock, through the cargo-lock crate.

use crate::support::{at_commit, fixture, flags, non_registry, package};
use picket_lockfile::Source;

#[test]
fn current_format() {
    let lock = fixture("cargo-lock/cargo1.95/Cargo.lock");
    assert_eq!(lock.packages.len(), 15);
    // Normalised as crates.io compares names; written as the lockfile has it.
    let json = package(&lock, "serde-json", "1.0.154");
    assert_eq!(json.raw_name, "serde_json");
    assert_eq!(flags(json), (Some(80), Some(true), None, None));
    assert_eq!(json.source, Source::Registry { url: None });
    // smallvec is a dev-dependency: direct, but Cargo.lock does not mark dev.
    assert_eq!(
        flags(package(&lock, "smallvec", "1.16.6")),
        (Some(93), Some(true), None, None)
    );
    assert_eq!(package(&lock, "syn", "3.0.10").direct, Some(false));
    assert_eq!(
        non_registry(&lock),
        vec!["fixture-app", "local-crate", "tiny-crate"]
    );
    assert_eq!(
        package(&lock, "local-crate", "0.1.0").source,
        Source::Path { path: None }
    );
    assert_eq!(
        package(&lock, "tiny-crate", "0.2.0").source,
        at_commit(
            "file:///tmp/lockgen/git/tiny-crate",
            "deb01cbc13b39c5db612b35e47ffbc9da9f85e00"
        )
    );
}

#[test]
fn first_format_and_another_registry() {
    let lock = fixture("cargo-lock/handwritten-v1/Cargo.lock");
    assert_eq!(lock.packages.len(), 3);
    assert_eq!(
        flags(package(&lock, "serde", "1.0.100")),
        (Some(18), Some(true), None, None)
    );
    let private = package(&lock, "private-crate", "0.3.0");
    assert_eq!(
        private.source,
        Source::Registry {
            url: Some("https://my-registry.example.com/index".into())
        }
    );
}
