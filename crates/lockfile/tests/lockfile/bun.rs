//! bun.lock (text).

use crate::support::{at_commit, fixture, flags, non_registry, package};
use picket_lockfile::Source;

#[test]
fn reads_packages_and_the_graph() {
    let lock = fixture("bun-lock/bun1.4/bun.lock");
    assert_eq!(lock.packages.len(), 15);
    assert_eq!(
        flags(package(&lock, "@sindresorhus/is", "4.6.0")),
        (Some(24), Some(true), Some(false), Some(false))
    );
    // Installed as `strip`, the ident names strip-ansi.
    assert_eq!(package(&lock, "strip-ansi", "6.0.1").direct, Some(true));
    // `debug/ms`: debug's own copy, dev through debug.
    assert_eq!(
        flags(package(&lock, "ms", "2.0.0")),
        (Some(52), Some(false), Some(true), Some(false))
    );
    assert_eq!(
        flags(package(&lock, "is-number", "7.0.0")),
        (Some(40), Some(true), Some(false), Some(true))
    );
    assert_eq!(package(&lock, "has-flag", "4.0.0").dev, Some(false));
    assert_eq!(non_registry(&lock), vec!["local-pkg", "tiny-lib"]);
    assert_eq!(
        package(
            &lock,
            "tiny-lib",
            "c4bd0898b9e6d9650a8a05e85289376be7fb7596"
        )
        .source,
        at_commit(
            "git+file:///tmp/lockgen/git/tiny-lib",
            "c4bd0898b9e6d9650a8a05e85289376be7fb7596"
        )
    );
}

#[test]
fn workspace_members_and_their_own_copies() {
    let lock = fixture("bun-lock/bun1.4-workspaces/bun.lock");
    assert_eq!(lock.packages.len(), 9);
    let a = package(&lock, "@fixture/a", "0.2.0");
    assert_eq!(
        a.source,
        Source::Workspace {
            path: Some("packages/a".into())
        }
    );
    // `@fixture/a/ms` is packages/a's ms 2.0.0.
    assert_eq!(
        flags(package(&lock, "ms", "2.0.0")),
        (Some(48), Some(true), Some(false), Some(false))
    );
    assert_eq!(package(&lock, "ms", "2.1.3").dev, Some(true));
    assert_eq!(package(&lock, "is-number", "7.0.0").dev, Some(true));
    assert_eq!(package(&lock, "loose-envify", "1.4.0").direct, Some(false));
}
