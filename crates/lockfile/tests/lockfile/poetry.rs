//! poetry.lock: Poetry 2.5 (lock-version 2.1, groups) and the 1.1 layout (category).

use crate::support::{at_commit, fixture, flags, non_registry, package};
use picket_lockfile::Source;

#[test]
fn poetry2_groups_make_dev_and_extras_optional() {
    let lock = fixture("poetry-lock/poetry2.5/poetry.lock");
    assert_eq!(lock.packages.len(), 17);
    let yaml = package(&lock, "pyyaml", "6.0.2");
    assert_eq!(flags(yaml), (Some(338), None, Some(false), Some(false)));
    assert_eq!(yaml.groups, vec!["main"]);
    let pytest = package(&lock, "pytest", "8.4.2");
    assert_eq!(flags(pytest), (Some(314), None, Some(true), Some(false)));
    assert_eq!(pytest.groups, vec!["dev"]);
    // PySocks is only for the `socks` extra.
    assert_eq!(package(&lock, "pysocks", "1.7.1").optional, Some(true));
    assert_eq!(non_registry(&lock), vec!["tiny-py"]);
    assert_eq!(
        package(&lock, "tiny-py", "0.3.0").source,
        at_commit(
            "git://127.0.0.1/tiny-py",
            "c0a402f022afa3dd8a70cc1752ca7a32e90b6d4a"
        )
    );
}

#[test]
fn poetry1_categories_and_sources() {
    let lock = fixture("poetry-lock/handwritten-1.1/poetry.lock");
    assert_eq!(lock.packages.len(), 5);
    assert_eq!(package(&lock, "pytest", "6.2.5").dev, Some(true));
    assert_eq!(package(&lock, "certifi", "2021.10.8").dev, Some(false));
    let private = package(&lock, "private-lib", "1.0.0");
    assert_eq!(
        private.source,
        Source::Registry {
            url: Some("https://pypi.example.com/simple".into())
        }
    );
    assert_eq!(private.line, Some(19));
    assert_eq!(
        package(&lock, "local-lib", "0.1.0").source,
        Source::Path {
            path: Some("../local-lib".into())
        }
    );
    let pillow = package(&lock, "pillow", "9.0.0");
    assert_eq!(
        (pillow.raw_name.as_str(), pillow.optional),
        ("Pillow", Some(true))
    );
}
