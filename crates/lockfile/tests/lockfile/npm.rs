//! package-lock.json v1, v2, v3 and npm-shrinkwrap.json.

use crate::support::{at_commit, fixture, flags, ids, non_registry, package};
use picket_lockfile::{Format, Source};

/// What the three lockfile versions of the same manifest agree on.
fn same_project(rel: &str) -> picket_lockfile::Lockfile {
    let lock = fixture(rel);
    assert_eq!(lock.packages.len(), 15, "{}", lock.path);
    // The alias `strip: npm:strip-ansi@6.0.1` is the real package.
    let strip = package(&lock, "strip-ansi", "6.0.1");
    assert_eq!(strip.raw_name, "strip-ansi");
    assert!(strip.is_registry());
    // Two versions of ms: the dev dependency and debug's nested copy.
    assert_eq!(package(&lock, "ms", "2.0.0").dev, Some(true));
    assert_eq!(package(&lock, "ms", "2.1.3").dev, Some(true));
    assert_eq!(package(&lock, "is-number", "7.0.0").optional, Some(true));
    assert_eq!(package(&lock, "chalk", "4.1.2").dev, Some(false));
    assert_eq!(non_registry(&lock), vec!["local-pkg", "tiny-lib"]);
    assert!(lock.unresolved.is_empty() && lock.includes.is_empty());
    lock
}

#[test]
fn v3_marks_direct_dev_optional_and_the_version_line() {
    let lock = same_project("package-lock/npm11-v3/package-lock.json");
    assert_eq!(lock.format, Format::PackageLock);
    let scoped = package(&lock, "@sindresorhus/is", "4.6.0");
    assert_eq!(
        flags(scoped),
        (Some(32), Some(true), Some(false), Some(false))
    );
    assert_eq!(
        scoped.source,
        Source::Registry {
            url: Some("https://registry.npmjs.org/@sindresorhus/is/-/is-4.6.0.tgz".into())
        }
    );
    assert_eq!(
        flags(package(&lock, "supports-color", "7.2.0")),
        (Some(162), Some(false), Some(false), Some(false))
    );
    // debug is a dev dependency; its own copy of ms is dev and transitive.
    assert_eq!(
        flags(package(&lock, "debug", "2.6.9")),
        (Some(102), Some(true), Some(true), Some(false))
    );
    assert_eq!(
        flags(package(&lock, "ms", "2.0.0")),
        (Some(112), Some(false), Some(true), Some(false))
    );
    assert_eq!(
        flags(package(&lock, "is-number", "7.0.0")),
        (Some(128), Some(true), Some(false), Some(true))
    );
    let git = package(&lock, "tiny-lib", "1.0.0");
    assert_eq!(
        git.source,
        at_commit(
            "git+file:///tmp/lockgen/git/tiny-lib",
            "c4bd0898b9e6d9650a8a05e85289376be7fb7596"
        )
    );
    let link = package(&lock, "local-pkg", "0.1.0");
    assert_eq!(
        link.source,
        Source::Path {
            path: Some("local-pkg".into())
        }
    );
    assert_eq!(link.line, Some(137)); // a link has no version line: its key
}

#[test]
fn v2_reads_packages_like_v3() {
    let v2 = same_project("package-lock/npm8-v2/package-lock.json");
    let v3 = fixture("package-lock/npm11-v3/package-lock.json");
    assert_eq!(ids(&v2), ids(&v3));
    for (a, b) in v2.packages.iter().zip(&v3.packages) {
        assert_eq!(
            (a.direct, a.dev, a.optional),
            (b.direct, b.dev, b.optional),
            "{}",
            a.name
        );
    }
}

#[test]
fn v1_nests_and_knows_only_some_direct_dependencies() {
    let lock = same_project("package-lock/npm6-v1/package-lock.json");
    // Nothing requires chalk: direct. ansi-styles is required by chalk: unknown in v1.
    assert_eq!(
        flags(package(&lock, "chalk", "4.1.2")),
        (Some(26), Some(true), Some(false), Some(false))
    );
    assert_eq!(package(&lock, "ansi-styles", "4.3.0").direct, None);
    // The nested copy under debug comes after the top level.
    assert_eq!(
        lock.packages.last().map(|p| (p.name.as_str(), p.line)),
        Some(("ms", Some(57)))
    );
    // v1 writes the commit and the path in `version`.
    let git = package(
        &lock,
        "tiny-lib",
        "c4bd0898b9e6d9650a8a05e85289376be7fb7596",
    );
    assert!(matches!(git.source, Source::Git { .. }));
    let local = package(&lock, "local-pkg", "file:local-pkg");
    assert_eq!(
        local.source,
        Source::Path {
            path: Some("local-pkg".into())
        }
    );
}

#[test]
fn shrinkwrap_is_the_same_format_without_resolved_urls() {
    let lock = same_project("npm-shrinkwrap/npm11/npm-shrinkwrap.json");
    assert_eq!(lock.format, Format::NpmShrinkwrap);
    assert_eq!(
        package(&lock, "chalk", "4.1.2").source,
        Source::Registry { url: None }
    );
    assert_eq!(package(&lock, "chalk", "4.1.2").line, Some(65));
}

#[test]
fn workspaces_make_members_direct_where_node_finds_them() {
    let lock = fixture("package-lock/npm11-workspaces/package-lock.json");
    assert_eq!(lock.packages.len(), 9);
    let a = package(&lock, "@fixture/a", "0.2.0");
    assert_eq!(
        a.source,
        Source::Workspace {
            path: Some("packages/a".into())
        }
    );
    assert_eq!((a.direct, a.dev), (None, None));
    // packages/a's ms 2.0.0 is in packages/a/node_modules: direct (of a), not dev.
    assert_eq!(
        flags(package(&lock, "ms", "2.0.0")),
        (Some(91), Some(true), Some(false), Some(false))
    );
    // The root's dev dependency, hoisted.
    assert_eq!(
        flags(package(&lock, "ms", "2.1.3")),
        (Some(54), Some(true), Some(true), Some(false))
    );
    // packages/b's dev dependency is hoisted to the root's node_modules.
    assert_eq!(
        flags(package(&lock, "is-number", "7.0.0")),
        (Some(26), Some(true), Some(true), Some(false))
    );
    assert_eq!(package(&lock, "loose-envify", "1.4.0").direct, Some(false));
}

#[test]
fn v3_dev_optional_and_dev_optional() {
    let lock = fixture("package-lock/handwritten-v3/package-lock.json");
    assert_eq!(lock.packages.len(), 5);
    // `optional`: optional in production.
    assert_eq!(
        flags(package(&lock, "bufferutil", "4.0.8")),
        (Some(21), Some(true), Some(false), Some(true))
    );
    // `dev` and `optional`: an optional dependency of a dev dependency.
    assert_eq!(
        flags(package(&lock, "fsevents", "2.3.3")),
        (Some(38), Some(false), Some(true), Some(true))
    );
    // `devOptional`: installed in production as an optional dependency, so not dev.
    assert_eq!(
        flags(package(&lock, "node-gyp-build", "4.8.0")),
        (Some(53), Some(false), Some(false), Some(true))
    );
    assert_eq!(
        package(&lock, "left-pad", "1.3.0").source,
        at_commit(
            "git+ssh://git@github.com/stevemao/left-pad.git",
            "5b2b3c7f3e7a8c5b7e3e8c5d7f6a3b2c1d0e9f8a"
        )
    );
}

#[test]
fn v1_github_versions_and_required_names() {
    let lock = fixture("package-lock/handwritten-v1/package-lock.json");
    let git = package(
        &lock,
        "left-pad",
        "5b2b3c7f3e7a8c5b7e3e8c5d7f6a3b2c1d0e9f8a",
    );
    assert_eq!(
        git.source,
        at_commit(
            "github:stevemao/left-pad",
            "5b2b3c7f3e7a8c5b7e3e8c5d7f6a3b2c1d0e9f8a"
        )
    );
    assert_eq!(package(&lock, "request", "2.88.2").direct, Some(true));
    // request `requires` qs: the top-level qs may or may not be declared.
    assert_eq!(
        flags(package(&lock, "qs", "6.11.0")),
        (Some(27), None, Some(false), Some(false))
    );
    assert_eq!(package(&lock, "qs", "6.5.3").line, Some(20));
}
