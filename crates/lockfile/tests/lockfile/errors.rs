//! A lockfile that cannot be read fails with its name and the reason, never as "no packages".

use crate::support::bytes;
use picket_lockfile::{parse, ErrorKind, Format};

fn kind(path: &str, text: &[u8]) -> ErrorKind {
    match parse(path, text) {
        Ok(l) => panic!("{path} parsed: {l:?}"),
        Err(e) => {
            assert_eq!(e.path, path);
            e.kind
        }
    }
}

fn unsupported(path: &str, text: &str, version: &str) {
    assert_eq!(
        kind(path, text.as_bytes()),
        ErrorKind::UnsupportedVersion {
            version: version.into()
        },
        "{path}"
    );
}

#[test]
fn unknown_names_and_bad_encodings() {
    assert_eq!(kind("README.md", b""), ErrorKind::UnknownFormat);
    assert_eq!(
        kind("yarn.lock", b"a:\n  version \"1\"\n\xff"),
        ErrorKind::NotUtf8 { line: 3 }
    );
    // A byte-order mark is not an error.
    let lock = parse("go.mod", b"\xEF\xBB\xBFmodule example.com/x\n").unwrap();
    assert!(lock.packages.is_empty());
}

#[test]
fn a_truncated_lockfile_fails_at_its_line() {
    let mut text = bytes("package-lock/npm11-v3/package-lock.json");
    text.truncate(2000);
    let lines = text.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
    let err = parse("web/package-lock.json", &text).unwrap_err();
    assert_eq!(err.format, Some(Format::PackageLock));
    assert!(
        matches!(err.kind, ErrorKind::Syntax { line: Some(l), .. } if l == lines),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("web/package-lock.json: line "),
        "{err}"
    );

    let mut yaml = bytes("pnpm-lock/pnpm10-v9.0/pnpm-lock.yaml");
    yaml.extend_from_slice(b"\n  bad: [unclosed\n");
    assert!(matches!(
        kind("pnpm-lock.yaml", &yaml),
        ErrorKind::Syntax { line: Some(_), .. }
    ));

    let toml = b"[[package]]\nname = \"a\"\nversion = \n";
    assert!(matches!(
        kind("uv.lock", toml),
        ErrorKind::Syntax { line: Some(3), .. }
    ));
    assert!(matches!(
        kind("Cargo.lock", b"[[package]\n"),
        ErrorKind::Syntax { .. }
    ));
}

#[test]
fn versions_this_crate_does_not_know_are_refused() {
    unsupported(
        "package-lock.json",
        r#"{"lockfileVersion": 4, "packages": {}}"#,
        "4",
    );
    unsupported("pnpm-lock.yaml", "lockfileVersion: '10.0'\n", "10.0");
    unsupported(
        "bun.lock",
        r#"{"lockfileVersion": 3, "packages": {},}"#,
        "3",
    );
    unsupported("uv.lock", "version = 2\n", "2");
    unsupported("poetry.lock", "[metadata]\nlock-version = \"3.0\"\n", "3.0");
    unsupported("pdm.lock", "[metadata]\nlock_version = \"5.0\"\n", "5.0");
    unsupported("Pipfile.lock", r#"{"_meta": {"pipfile-spec": 7}}"#, "7");
}

#[test]
fn well_formed_text_of_the_wrong_shape_is_invalid() {
    let invalid = |path: &str, text: &str| {
        assert!(
            matches!(
                kind(path, text.as_bytes()),
                ErrorKind::Invalid { .. } | ErrorKind::Syntax { .. }
            ),
            "{path}"
        )
    };
    invalid("go.mod", "require golang.org/x/net v0.23.0\n");
    invalid("go.mod", "module x\nrequire golang.org/x/net\n");
    invalid("gradle.lockfile", "junit:junit=testCompileClasspath\n");
    invalid("Gemfile.lock", "just some text\n");
    invalid("yarn.lock", "not a lockfile at all\n");
    invalid("yarn.lock", "a@^1:\n  resolved \"https://r/a-1.tgz\"\n");
    invalid(
        "package-lock.json",
        r#"{"lockfileVersion": 3, "packages": {"": {}, "node_modules/a": {}}}"#,
    );
    invalid("package-lock.json", "[]");
    invalid("composer.lock", r#"{"packages": [{"version": "1.0.0"}]}"#);
    invalid("pnpm-lock.yaml", "packages: {}\n");
    invalid("Pipfile.lock", r#"{"default": {}}"#);
    invalid(
        "bun.lock",
        r#"{"lockfileVersion": 1, "packages": {"a": []}}"#,
    );
    invalid("requirements.txt", "flask ~~ 2\n");
}

#[test]
fn deep_nesting_fails_without_exhausting_the_stack() {
    let deep = "[".repeat(100_000);
    for path in [
        "package-lock.json",
        "bun.lock",
        "Pipfile.lock",
        "composer.lock",
    ] {
        assert!(
            matches!(kind(path, deep.as_bytes()), ErrorKind::Syntax { .. }),
            "{path}"
        );
    }
    let yaml = format!("lockfileVersion: '9.0'\nimporters: {deep}\n");
    assert!(matches!(
        kind("pnpm-lock.yaml", yaml.as_bytes()),
        ErrorKind::Syntax { .. }
    ));
    for path in ["uv.lock", "poetry.lock", "pdm.lock", "Cargo.lock"] {
        let toml = format!("version = {deep}\n");
        assert!(
            matches!(kind(path, toml.as_bytes()), ErrorKind::Syntax { .. }),
            "{path}"
        );
    }
}
