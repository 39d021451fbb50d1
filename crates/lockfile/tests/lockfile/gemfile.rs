//! Gemfile.lock.

use crate::support::{at_commit, fixture, flags, ids, non_registry, package};
use picket_lockfile::Source;

#[test]
fn bundler_sections_and_dependencies() {
    let lock = fixture("gemfile-lock/bundler2.3/Gemfile.lock");
    assert_eq!(lock.packages.len(), 9);
    let rack = package(&lock, "rack", "2.2.22");
    assert_eq!(flags(rack), (Some(17), Some(true), None, None));
    assert_eq!(
        rack.source,
        Source::Registry {
            url: Some("https://rubygems.org/".into())
        }
    );
    // rspec (a development group gem) is direct; rspec-core comes through it.
    assert_eq!(package(&lock, "rspec", "3.12.0").direct, Some(true));
    assert_eq!(
        flags(package(&lock, "rspec-core", "3.12.0")),
        (Some(22), Some(false), None, None)
    );
    assert_eq!(non_registry(&lock), vec!["tiny_gem", "local_gem"]);
    assert_eq!(
        package(&lock, "tiny_gem", "0.4.0").source,
        at_commit(
            "git://127.0.0.1/tiny-gem",
            "c43fbb6067161af56bd2583f556e3763e4ed1330"
        )
    );
}

#[test]
fn platform_variants_merge_and_checksums_are_skipped() {
    let lock = fixture("gemfile-lock/handwritten/Gemfile.lock");
    assert_eq!(
        ids(&lock),
        vec![
            "actionpack@7.2.0.alpha",
            "billing@0.1.0",
            "nokogiri@1.15.4",
            "racc@1.7.1",
            "rack@2.2.8"
        ]
    );
    assert_eq!(
        flags(package(&lock, "nokogiri", "1.15.4")),
        (Some(17), Some(true), None, None)
    );
    assert_eq!(
        package(&lock, "billing", "0.1.0").source,
        Source::Path {
            path: Some("engines/billing".into())
        }
    );
    assert_eq!(
        package(&lock, "actionpack", "7.2.0.alpha").direct,
        Some(true)
    );
}
