//! pnpm-lock.yaml 5.4 (pnpm 7), 6.0 (pnpm 8), 9.0 (pnpm 9 and 10).

use crate::support::{at_commit, fixture, flags, ids, non_registry, package};
use picket_lockfile::Source;

/// The project every single-project fixture locks (see their COMMAND files).
fn same_project(rel: &str) -> picket_lockfile::Lockfile {
    let lock = fixture(rel);
    assert_eq!(lock.packages.len(), 15, "{rel}");
    let chalk = package(&lock, "chalk", "4.1.2");
    assert_eq!(
        (chalk.direct, chalk.dev, chalk.optional),
        (Some(true), Some(false), Some(false))
    );
    let nested = package(&lock, "ms", "2.0.0");
    assert_eq!((nested.direct, nested.dev), (Some(false), Some(true)));
    let dev = package(&lock, "ms", "2.1.3");
    assert_eq!((dev.direct, dev.dev), (Some(true), Some(true)));
    let optional = package(&lock, "is-number", "7.0.0");
    assert_eq!(
        (optional.direct, optional.optional),
        (Some(true), Some(true))
    );
    assert_eq!(package(&lock, "strip-ansi", "6.0.1").direct, Some(true));
    assert_eq!(package(&lock, "ansi-regex", "5.0.1").direct, Some(false));
    let mut local = non_registry(&lock);
    local.sort();
    assert_eq!(local, vec!["local-pkg", "tiny-lib"]);
    lock
}

#[test]
fn v5_4_keys_by_slash() {
    let lock = same_project("pnpm-lock/pnpm7-v5.4/pnpm-lock.yaml");
    assert_eq!(package(&lock, "@sindresorhus/is", "4.6.0").line, Some(29));
    // A git dependency's key is a path with the commit; its name comes from the importer.
    let git = package(
        &lock,
        "tiny-lib",
        "c4bd0898b9e6d9650a8a05e85289376be7fb7596",
    );
    assert_eq!(
        git.source,
        at_commit(
            "file:///tmp/lockgen/git/tiny-lib",
            "c4bd0898b9e6d9650a8a05e85289376be7fb7596"
        )
    );
    assert_eq!(
        flags(git),
        (Some(110), Some(true), Some(false), Some(false))
    );
    let local = package(&lock, "local-pkg", "0.1.0");
    assert_eq!(
        local.source,
        Source::Path {
            path: Some("local-pkg".into())
        }
    );
}

#[test]
fn v6_0_keys_by_at() {
    let lock = same_project("pnpm-lock/pnpm8-v6.0/pnpm-lock.yaml");
    assert_eq!(package(&lock, "ms", "2.0.0").line, Some(98));
    assert_eq!(package(&lock, "tiny-lib", "1.0.0").line, Some(120));
    assert_eq!(
        package(&lock, "local-pkg", "file:local-pkg").line,
        Some(126)
    );
}

#[test]
fn v9_0_derives_dev_and_optional_from_the_graph() {
    let pnpm9 = same_project("pnpm-lock/pnpm9-v9.0/pnpm-lock.yaml");
    let pnpm10 = same_project("pnpm-lock/pnpm10-v9.0/pnpm-lock.yaml");
    assert_eq!(ids(&pnpm9), ids(&pnpm10));
    assert_eq!(
        flags(package(&pnpm10, "debug", "2.6.9")),
        (Some(63), Some(true), Some(true), Some(false))
    );
    let local = package(&pnpm10, "local-pkg", "file:local-pkg");
    assert_eq!(local.line, Some(79));
    let git = package(&pnpm10, "tiny-lib", "1.0.0");
    assert_eq!(git.line, Some(96));
}

#[test]
fn workspaces_merge_peer_variants_and_skip_links() {
    for rel in [
        "pnpm-lock/pnpm7-workspace-v5.4/pnpm-lock.yaml",
        "pnpm-lock/pnpm10-workspace-v9.0/pnpm-lock.yaml",
    ] {
        let lock = fixture(rel);
        // `@fixture/a` is a `link:` of packages/b: no package entry.
        assert_eq!(
            ids(&lock),
            vec![
                "is-number@7.0.0",
                "js-tokens@4.0.0",
                "loose-envify@1.4.0",
                "ms@2.0.0",
                "ms@2.1.3",
                "react@18.2.0",
                "use-sync-external-store@1.2.0",
            ],
            "{rel}"
        );
        // use-sync-external-store has a peer-suffixed key (`_react@18.2.0` / `(react@18.2.0)`).
        let peer = package(&lock, "use-sync-external-store", "1.2.0");
        assert_eq!((peer.direct, peer.dev), (Some(true), Some(false)), "{rel}");
        let dev = package(&lock, "is-number", "7.0.0");
        assert_eq!((dev.direct, dev.dev), (Some(true), Some(true)), "{rel}");
        assert_eq!(package(&lock, "js-tokens", "4.0.0").direct, Some(false));
    }
    let v5 = fixture("pnpm-lock/pnpm7-workspace-v5.4/pnpm-lock.yaml");
    assert_eq!(
        package(&v5, "use-sync-external-store", "1.2.0").line,
        Some(63)
    );
    let v9 = fixture("pnpm-lock/pnpm10-workspace-v9.0/pnpm-lock.yaml");
    assert_eq!(
        package(&v9, "use-sync-external-store", "1.2.0").line,
        Some(60)
    );
}

#[test]
fn v9_0_tarballs_and_other_registries() {
    let lock = fixture("pnpm-lock/handwritten-v9.0/pnpm-lock.yaml");
    assert_eq!(
        ids(&lock),
        vec!["left-pad@1.3.0", "my-tarball@2.0.0", "private-pkg@3.1.0"]
    );
    // A GitHub dependency is a codeload tarball: not the registry.
    assert_eq!(
        package(&lock, "left-pad", "1.3.0").source,
        Source::Url {
            url: "https://codeload.github.com/stevemao/left-pad/tar.gz/5b2b3c7f3e7a8c5b7e3e8c5d7f6a3b2c1d0e9f8a"
                .into()
        }
    );
    assert!(!package(&lock, "my-tarball", "2.0.0").is_registry());
    // A second registry writes its tarball beside the integrity: still a registry package.
    let private = package(&lock, "private-pkg", "3.1.0");
    assert_eq!(
        private.source,
        Source::Registry {
            url: Some("https://npm.example.com/private-pkg/-/private-pkg-3.1.0.tgz".into())
        }
    );
    assert_eq!(
        flags(private),
        (Some(34), Some(true), Some(false), Some(false))
    );
}
