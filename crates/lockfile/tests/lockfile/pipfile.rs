//! Pipfile.lock.

use crate::support::{at_commit, fixture, flags, ids, non_registry, package};
use picket_lockfile::Source;

#[test]
fn default_and_develop_sections() {
    let lock = fixture("pipfile-lock/pipenv2026.10/Pipfile.lock");
    assert_eq!(lock.packages.len(), 12);
    let requests = package(&lock, "requests", "2.34.2");
    assert_eq!(flags(requests), (Some(279), None, Some(false), None));
    assert_eq!(requests.groups, vec!["default"]);
    let pytest = package(&lock, "pytest", "9.2.0");
    assert_eq!(flags(pytest), (Some(334), None, Some(true), None));
    // A git package has a ref and no version.
    let git = package(&lock, "tiny-py", "c0a402f022afa3dd8a70cc1752ca7a32e90b6d4a");
    assert_eq!(
        git.source,
        at_commit(
            "git://127.0.0.1/tiny-py",
            "c0a402f022afa3dd8a70cc1752ca7a32e90b6d4a"
        )
    );
    assert_eq!(non_registry(&lock), vec!["tiny-py"]);
}

#[test]
fn custom_categories_paths_and_files() {
    let lock = fixture("pipfile-lock/handwritten/Pipfile.lock");
    assert_eq!(
        ids(&lock),
        vec![
            "django@4.2.11",
            "local-app@",
            "vendored@",
            "pytest@8.0.0",
            "sphinx@7.2.6"
        ]
    );
    let sphinx = package(&lock, "sphinx", "7.2.6");
    assert_eq!(
        (sphinx.dev, sphinx.groups.clone()),
        (None, vec!["docs".to_owned()])
    );
    assert_eq!(
        package(&lock, "local-app", "").source,
        Source::Path {
            path: Some(".".into())
        }
    );
    assert_eq!(
        package(&lock, "vendored", "").source,
        Source::Url {
            url: "https://example.com/vendored-1.0.tar.gz".into()
        }
    );
}
