//! Choosing a repository's lockfiles and reading them all.

use picket_lockfile::{read_repository, select, ErrorKind, Format, Lockfile, UnresolvedReason};
use std::path::{Path, PathBuf};

fn fixtures_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every file under the fixtures folder, relative to it: a repository with many lockfiles.
fn fixture_files() -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_str().unwrap();
                out.push(rel.replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(&fixtures_root(), &fixtures_root(), &mut out);
    out.sort();
    out
}

#[test]
fn lockfiles_are_chosen_by_name_outside_vendored_folders() {
    let files = [
        "./Cargo.lock",
        "package-lock.json",
        "node_modules/left-pad/package-lock.json",
        "web/node_modules/.package-lock.json",
        "web/yarn.lock",
        "web/.yarn/cache/yarn.lock",
        "vendor/github.com/a/b/go.mod",
        "services/api/go.mod",
        ".venv/lib/python3.11/site-packages/pkg/requirements.txt",
        "requirements/dev.txt",
        "docs/README.md",
        "bun.lockb",
        "Cargo.lock",
    ];
    let chosen: Vec<(String, Format)> = select(files);
    let want = [
        ("Cargo.lock", Format::CargoLock),
        ("package-lock.json", Format::PackageLock),
        ("requirements/dev.txt", Format::Requirements),
        ("services/api/go.mod", Format::GoMod),
        ("web/yarn.lock", Format::YarnLock),
    ];
    assert_eq!(chosen, want.map(|(p, f)| (p.to_owned(), f)).to_vec());
}

#[test]
fn every_fixture_reads_and_requirements_follow_their_includes() {
    let files = fixture_files();
    let root = fixtures_root();
    let results = read_repository(&files, |p| std::fs::read(root.join(p)));
    let selected = select(files.iter().map(String::as_str)).len();
    // The two files only `-r` reaches come on top of the ones chosen by name.
    assert_eq!(results.len(), selected + 2);
    let locks: Vec<&Lockfile> = results
        .iter()
        .map(|r| r.as_ref().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let formats: std::collections::BTreeSet<Format> = locks.iter().map(|l| l.format).collect();
    assert_eq!(
        formats.len(),
        Format::ALL.len(),
        "a fixture of every format"
    );

    let get = |path: &str| *locks.iter().find(|l| l.path == path).unwrap();
    let main = get("requirements/handwritten/requirements.txt");
    // `-c constraints.txt` pins flask and celery at their own lines.
    let flask = main.packages.iter().find(|p| p.name == "flask").unwrap();
    assert_eq!((flask.version.as_str(), flask.line), ("3.0.2", Some(12)));
    let celery = main.packages.iter().find(|p| p.name == "celery").unwrap();
    assert_eq!((celery.version.as_str(), celery.line), ("5.3.6", Some(13)));
    // A constraint installs nothing by itself.
    assert!(main.packages.iter().all(|p| p.name != "not-required"));
    assert!(locks.iter().all(|l| !l.path.ends_with("constraints.txt")));
    let missing: Vec<_> = main
        .unresolved
        .iter()
        .filter(|u| u.reason == UnresolvedReason::IncludeNotFound)
        .map(|u| (u.line, u.text.as_str()))
        .collect();
    assert_eq!(
        missing,
        vec![(Some(6), "-r requirements/handwritten/missing.txt")]
    );
    // Still unresolved: no constraint names them.
    assert!(main.unresolved.iter().any(|u| u.text == "numpy==1.*"));
    // Reached through `-r`, read as requirements files of their own.
    let base = get("requirements/handwritten/base.txt");
    assert_eq!(base.format, Format::Requirements);
    assert_eq!(base.packages[0].name, "click");
    assert_eq!(base.unresolved[0].text, "itsdangerous>=2.1");
    let extra = get("requirements/handwritten/reqs/extra.txt");
    assert_eq!(extra.packages[0].name, "markupsafe");
}

#[test]
fn a_file_that_cannot_be_read_fails_alone() {
    let files = ["Cargo.lock", "go.mod"];
    let results = read_repository(&files, |p| match p {
        "go.mod" => Ok(b"module example.com/x\n\nrequire golang.org/x/net v0.23.0\n".to_vec()),
        _ => Err("permission denied"),
    });
    assert_eq!(results.len(), 2);
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(err.path, "Cargo.lock");
    assert_eq!(
        err.kind,
        ErrorKind::Unreadable {
            message: "permission denied".into()
        }
    );
    assert_eq!(results[1].as_ref().unwrap().packages.len(), 1);
}
