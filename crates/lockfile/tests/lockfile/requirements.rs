//! requirements*.txt: pip-compile's output and pip's format edge cases.

use crate::support::{fixture, flags, ids, package};
use picket_lockfile::{Include, IncludeKind, UnresolvedReason};

#[test]
fn pip_compile_annotations_tell_direct_from_transitive() {
    let lock = fixture("requirements/pip-compile7.6/requirements.txt");
    assert_eq!(
        ids(&lock),
        vec![
            "certifi@2026.10.19.post1",
            "charset-normalizer@3.5.3",
            "idna@3.20",
            "pyyaml@6.0.2",
            "requests@2.34.2",
            "urllib3@2.8.0",
        ]
    );
    assert_eq!(
        flags(package(&lock, "requests", "2.34.2")),
        (Some(19), Some(true), None, None)
    );
    assert_eq!(
        flags(package(&lock, "urllib3", "2.8.0")),
        (Some(23), Some(false), None, None)
    );
    // `# via` followed by `#   requests` / `#   tiny-py` lines.
    assert_eq!(package(&lock, "idna", "3.20").direct, Some(false));
    // The git requirement between them pins nothing, and takes no annotation of another.
    assert_eq!(lock.unresolved.len(), 1);
    assert_eq!(lock.unresolved[0].line, Some(21));
    assert_eq!(lock.unresolved[0].reason, UnresolvedReason::Vcs);
    assert_eq!(
        lock.unresolved[0].text,
        "tiny-py @ git+git://127.0.0.1/tiny-py"
    );
}

#[test]
fn hashes_on_continuation_lines_and_constraint_annotations() {
    let lock = fixture("requirements/pip-compile7.6/requirements-dev.txt");
    assert_eq!(lock.packages.len(), 10);
    assert!(lock.unresolved.is_empty());
    // `# via -c requirements.txt` and `requests`: transitive.
    assert_eq!(
        flags(package(&lock, "certifi", "2026.10.19.post1")),
        (Some(9), Some(false), None, None)
    );
    assert_eq!(
        flags(package(&lock, "pytest", "9.2.0")),
        (Some(212), Some(true), None, None)
    );
    // `# via -c requirements.txt` and `-r requirements-dev.in`: direct.
    assert_eq!(package(&lock, "requests", "2.34.2").direct, Some(true));
}

#[test]
fn only_exact_pins_are_packages_and_everything_else_says_why() {
    let lock = fixture("requirements/handwritten/requirements.txt");
    assert_eq!(
        ids(&lock),
        vec![
            "django@4.2.11",
            "requests@2.31.0",
            "pyyaml@6.0.1",
            "urllib3@1.26.18",
            "attrs@23.1.0",
            "jinja2@3.1.3",
        ]
    );
    let yaml = package(&lock, "pyyaml", "6.0.1");
    assert_eq!(
        (yaml.raw_name.as_str(), yaml.line, yaml.direct),
        ("PyYAML", Some(10), None)
    );
    // The pin before a `\` continuation keeps its first line.
    assert_eq!(package(&lock, "attrs", "23.1.0").line, Some(16));
    use UnresolvedReason::*;
    let unresolved: Vec<(u32, &str, UnresolvedReason)> = lock
        .unresolved
        .iter()
        .map(|u| (u.line.unwrap(), u.text.as_str(), u.reason.clone()))
        .collect();
    assert_eq!(
        unresolved,
        vec![
            (7, "-r ../../../outside.txt", IncludeOutsideRepository),
            (12, "flask>=2.0", NotPinned),
            (13, "celery", NotPinned),
            (14, "numpy==1.*", NotPinned),
            (15, "simplejson~=3.19", NotPinned),
            (18, "-e ./local-package", Editable),
            (
                19,
                "-e git+https://github.com/example/lib.git#egg=lib",
                Editable
            ),
            (20, "mylib @ https://example.com/mylib-1.0.tar.gz", Url),
            (
                21,
                "otherlib @ git+https://github.com/example/other.git@v1.0",
                Vcs
            ),
            (22, "./vendored/pkg", LocalPath),
            (23, "dist/wheel_pkg-1.0-py3-none-any.whl", LocalPath),
        ]
    );
    let include = |path: &str, kind, line| Include {
        path: path.into(),
        kind,
        line,
    };
    assert_eq!(
        lock.includes,
        vec![
            include(
                "requirements/handwritten/base.txt",
                IncludeKind::Requirements,
                3
            ),
            include(
                "requirements/handwritten/reqs/extra.txt",
                IncludeKind::Requirements,
                4
            ),
            include(
                "requirements/handwritten/constraints.txt",
                IncludeKind::Constraints,
                5
            ),
            include(
                "requirements/handwritten/missing.txt",
                IncludeKind::Requirements,
                6
            ),
        ]
    );
}
