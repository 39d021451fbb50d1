//! yarn.lock of Yarn 1 and Yarn 4 (berry).

use crate::support::{at_commit, fixture, flags, ids, non_registry, package};
use picket_lockfile::Source;

#[test]
fn yarn1_reads_every_entry_without_direct_or_dev() {
    let lock = fixture("yarn-lock/yarn1/yarn.lock");
    assert_eq!(lock.packages.len(), 15);
    let scoped = package(&lock, "@sindresorhus/is", "4.6.0");
    assert_eq!(flags(scoped), (Some(6), None, None, None));
    assert_eq!(
        scoped.source,
        Source::Registry {
            url: Some("https://registry.yarnpkg.com/@sindresorhus/is/-/is-4.6.0.tgz".into())
        }
    );
    // `"strip@npm:strip-ansi@6.0.1":` is strip-ansi.
    assert_eq!(package(&lock, "strip-ansi", "6.0.1").line, Some(75));
    assert_eq!(package(&lock, "ms", "2.0.0").line, Some(65));
    assert_eq!(package(&lock, "ms", "2.1.3").line, Some(70));
    assert_eq!(non_registry(&lock), vec!["local-pkg", "tiny-lib"]);
    assert_eq!(
        package(&lock, "tiny-lib", "1.0.0").source,
        at_commit(
            "git+file:///tmp/lockgen/git/tiny-lib",
            "c4bd0898b9e6d9650a8a05e85289376be7fb7596"
        )
    );
    assert_eq!(
        package(&lock, "local-pkg", "0.1.0").source,
        Source::Path {
            path: Some("./local-pkg".into())
        }
    );
}

#[test]
fn berry_reads_resolutions_and_the_workspace_dependencies() {
    let lock = fixture("yarn-lock/yarn4/yarn.lock");
    // 15 packages and the project itself.
    assert_eq!(lock.packages.len(), 16);
    let root = package(&lock, "fixture-app", "0.0.0-use.local");
    assert_eq!(
        root.source,
        Source::Workspace {
            path: Some(".".into())
        }
    );
    assert_eq!(
        flags(package(&lock, "@sindresorhus/is", "4.6.0")),
        (Some(9), Some(true), None, Some(false))
    );
    // `dependenciesMeta: is-number: optional: true` on the workspace.
    assert_eq!(
        flags(package(&lock, "is-number", "7.0.0")),
        (Some(92), Some(true), None, Some(true))
    );
    assert_eq!(package(&lock, "ansi-styles", "4.3.0").direct, Some(false));
    // The dev dependency is a dependency of the workspace like any other.
    assert_eq!(package(&lock, "ms", "2.1.3").direct, Some(true));
    assert_eq!(package(&lock, "ms", "2.0.0").direct, Some(false));
    assert_eq!(package(&lock, "strip-ansi", "6.0.1").line, Some(122));
    assert_eq!(
        package(&lock, "tiny-lib", "1.0.0").source,
        at_commit(
            "git://127.0.0.1/tiny-lib",
            "c4bd0898b9e6d9650a8a05e85289376be7fb7596"
        )
    );
    let local = package(&lock, "local-pkg", "0.1.0");
    assert_eq!(
        local.source,
        Source::Path {
            path: Some("./local-pkg".into())
        }
    );
    assert_eq!(local.direct, Some(true));
}

#[test]
fn berry_workspaces_and_a_patched_package() {
    let lock = fixture("yarn-lock/yarn4-workspaces/yarn.lock");
    let workspaces: Vec<&str> = lock
        .packages
        .iter()
        .filter(|p| matches!(p.source, Source::Workspace { .. }))
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        workspaces,
        vec!["@fixture/a", "@fixture/b", "fixture-monorepo"]
    );
    // `resolve@npm:1.22.8` and Yarn's own `resolve@patch:…` are one package.
    let resolve = package(&lock, "resolve", "1.22.8");
    assert_eq!(flags(resolve), (Some(117), Some(true), None, Some(false)));
    assert!(resolve.is_registry());
    assert_eq!(
        package(&lock, "is-core-module", "2.18.0").direct,
        Some(false)
    );
    assert_eq!(ids(&lock).len(), 16);
}

#[test]
fn yarn1_descriptors_aliases_and_urls() {
    let lock = fixture("yarn-lock/handwritten-v1/yarn.lock");
    assert_eq!(
        ids(&lock),
        vec![
            "@babel/code-frame@7.12.13",
            "@babel/highlight@7.13.10",
            "left-pad@1.3.0",
            "lodash@4.17.21",
            "my-tarball@2.0.0",
            "shared-lib@0.0.0",
            "string-width@4.2.3",
        ]
    );
    // Two ranges, one entry; the line is its `version`.
    assert_eq!(package(&lock, "@babel/code-frame", "7.12.13").line, Some(6));
    // `owner/repo#tag` is GitHub, resolved to a codeload tarball of the commit.
    assert_eq!(
        package(&lock, "left-pad", "1.3.0").source,
        at_commit(
            "stevemao/left-pad",
            "5b2b3c7f3e7a8c5b7e3e8c5d7f6a3b2c1d0e9f8a"
        )
    );
    // A URL that is the registry's own tarball is the registry package; another host's is not.
    assert!(package(&lock, "lodash", "4.17.21").is_registry());
    assert_eq!(
        package(&lock, "my-tarball", "2.0.0").source,
        Source::Url {
            url: "https://example.com/packages/my-tarball-2.0.0.tgz".into()
        }
    );
    assert_eq!(
        package(&lock, "shared-lib", "0.0.0").source,
        Source::Path {
            path: Some("../shared".into())
        }
    );
    // `string-width-cjs@npm:string-width@^4.2.0` shares string-width's entry.
    assert!(package(&lock, "string-width", "4.2.3").is_registry());
}
