//! composer.lock.

use crate::support::{at_commit, fixture, flags, package};
use picket_lockfile::Source;

#[test]
fn packages_and_packages_dev() {
    let lock = fixture("composer-lock/composer2.5/composer.lock");
    assert_eq!(lock.packages.len(), 6);
    assert_eq!(
        flags(package(&lock, "monolog/monolog", "2.9.1")),
        (Some(45), None, Some(false), None)
    );
    assert_eq!(
        flags(package(&lock, "phpunit/php-timer", "5.0.3")),
        (Some(84), None, Some(true), None)
    );
    assert!(package(&lock, "symfony/polyfill-ctype", "v1.27.0").is_registry());
    assert_eq!(
        package(&lock, "fixture/local-php", "0.1.0").source,
        Source::Path {
            path: Some("packages/local-php".into())
        }
    );
    // From a VCS repository: a checkout, no dist.
    assert_eq!(
        package(&lock, "fixture/tiny-php", "v0.5.0").source,
        at_commit(
            "/tmp/lockgen/git/tiny-php",
            "e6c32ef0d35ff30c88132126bb8aea49c9028925"
        )
    );
}

#[test]
fn branch_versions_are_checkouts_and_names_are_lowercased() {
    let lock = fixture("composer-lock/handwritten/composer.lock");
    let branch = package(&lock, "acme/branch-dep", "dev-main");
    assert!(matches!(branch.source, Source::Git { .. }));
    assert!(!package(&lock, "acme/alias-dep", "2.x-dev").is_registry());
    let guzzle = package(&lock, "guzzlehttp/guzzle", "7.8.1");
    assert_eq!(guzzle.raw_name, "Guzzlehttp/Guzzle");
    assert!(guzzle.is_registry());
    assert_eq!(guzzle.line, Some(34));
}
