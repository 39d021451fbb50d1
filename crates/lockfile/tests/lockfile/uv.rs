//! uv.lock.

use crate::support::{at_commit, fixture, flags, non_registry, package};
use picket_lockfile::Source;

#[test]
fn members_dependencies_are_direct_and_groups_follow_the_graph() {
    let lock = fixture("uv-lock/uv0.13/uv.lock");
    assert_eq!(lock.packages.len(), 24);
    let root = package(&lock, "fixture-app", "0.1.0");
    assert_eq!(
        root.source,
        Source::Workspace {
            path: Some(".".into())
        }
    );
    // Resolution forked on the Python version: both requests are direct.
    for v in ["2.32.5", "2.34.2"] {
        let requests = package(&lock, "requests", v);
        assert_eq!((requests.direct, requests.dev), (Some(true), Some(false)));
    }
    assert_eq!(
        flags(package(&lock, "requests", "2.34.2")),
        (Some(465), Some(true), Some(false), Some(false))
    );
    assert_eq!(
        flags(package(&lock, "pyyaml", "6.0.2")),
        (Some(394), Some(true), Some(false), Some(false))
    );
    // The `dev` dependency group.
    assert_eq!(
        flags(package(&lock, "pytest", "9.2.0")),
        (Some(373), Some(true), Some(true), Some(false))
    );
    assert_eq!(
        flags(package(&lock, "pluggy", "1.7.0")),
        (Some(322), Some(false), Some(true), Some(false))
    );
    // The `socks` extra.
    assert_eq!(
        flags(package(&lock, "pysocks", "1.7.1")),
        (Some(343), Some(true), Some(false), Some(true))
    );
    // idna comes through requests and the git package.
    assert_eq!(
        flags(package(&lock, "idna", "3.20")),
        (Some(253), Some(false), Some(false), Some(false))
    );
    assert_eq!(
        package(&lock, "urllib3", "2.8.0").source,
        Source::Registry {
            url: Some("https://pypi.org/simple".into())
        }
    );
    assert_eq!(non_registry(&lock), vec!["fixture-app", "tiny-py"]);
    assert_eq!(
        package(&lock, "tiny-py", "0.3.0").source,
        at_commit(
            "file:///tmp/lockgen/git/tiny-py",
            "c0a402f022afa3dd8a70cc1752ca7a32e90b6d4a"
        )
    );
}
