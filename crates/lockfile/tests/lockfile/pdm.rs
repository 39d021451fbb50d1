//! pdm.lock.

use crate::support::{at_commit, fixture, flags, non_registry, package};

#[test]
fn groups_and_git_packages() {
    let lock = fixture("pdm-lock/pdm2.29/pdm.lock");
    assert_eq!(lock.packages.len(), 17);
    let requests = package(&lock, "requests", "2.32.5");
    assert_eq!(flags(requests), (Some(374), None, Some(false), None));
    assert_eq!(requests.groups, vec!["default"]);
    // `dev` is a dependency group and `socks` an extra: pdm.lock does not say which is which.
    let pytest = package(&lock, "pytest", "8.4.2");
    assert_eq!(
        (pytest.dev, pytest.groups.clone()),
        (None, vec!["dev".to_owned()])
    );
    let socks = package(&lock, "pysocks", "1.7.1");
    assert_eq!(
        (socks.dev, socks.groups.clone()),
        (None, vec!["socks".to_owned()])
    );
    assert_eq!(non_registry(&lock), vec!["tiny-py"]);
    let git = package(&lock, "tiny-py", "0.3.0");
    assert_eq!(
        git.source,
        at_commit(
            "git://127.0.0.1/tiny-py",
            "c0a402f022afa3dd8a70cc1752ca7a32e90b6d4a"
        )
    );
    assert_eq!(git.line, Some(391));
}
