//! Each version order against its ecosystem's reference implementation, on the version pairs of
//! tests/fixtures/pairs (drawn from the shared OSV snapshot by make-pairs.py). Every reference
//! runs once over all its pairs (node-semver once for npm, crates.io and Go). The references
//! are installed by `make advisory-refs` (part of `make test`); a missing one fails the test,
//! loudly.

use picket_advisory::version::packagist;
use picket_advisory::{compare, VersionError};
use picket_core::Ecosystem;
use std::cmp::Ordering;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

fn pairs(name: &str) -> Vec<(String, String)> {
    let path = crate::crate_dir().join(format!("tests/fixtures/pairs/{name}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let (a, b) = line
                .split_once('\t')
                .unwrap_or_else(|| panic!("{name}: {line:?}"));
            (a.to_owned(), b.to_owned())
        })
        .collect()
}

/// Runs a reference once over all pairs (`a<TAB>b` lines on stdin), one output line a pair.
fn run_reference(mut command: Command, what: &str, pairs: &[(String, String)]) -> Vec<String> {
    let input: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{what}: cannot run `{program}` ({e}): run `make advisory-refs`")
        });
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({}): {} (run `make advisory-refs`)",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), pairs.len(), "{what}: one answer a pair");
    lines
}

/// Our answer in the references' tokens.
fn token(result: Result<Ordering, VersionError>, a: &str) -> String {
    match result {
        Ok(o) => (o as i8).to_string(),
        Err(e) if e.version == a => "invalid-a".to_owned(),
        Err(_) => "invalid-b".to_owned(),
    }
}

fn ours(ecosystem: Ecosystem, pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .map(|(a, b)| token(compare(ecosystem, a, b), a))
        .collect()
}

/// Asserts agreement; prints the count of pairs and of pairs both sides could order.
fn assert_agree(what: &str, pairs: &[(String, String)], ours: &[String], theirs: &[String]) {
    let mut disagreements = Vec::new();
    for ((pair, o), t) in pairs.iter().zip(ours).zip(theirs) {
        if o != t {
            disagreements.push(format!(
                "{:?} vs {:?}: ours {o}, reference {t}",
                pair.0, pair.1
            ));
        }
    }
    let ordered = theirs.iter().filter(|t| !t.starts_with("invalid")).count();
    eprintln!(
        "{what}: {} of {} pairs agree ({ordered} ordered by the reference, the rest refused)",
        pairs.len() - disagreements.len(),
        pairs.len()
    );
    assert!(
        disagreements.is_empty(),
        "{what}: {} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

fn reference_script(name: &str) -> String {
    crate::crate_dir()
        .join("tests/reference")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The pair files node-semver answers for: npm's own, and crates.io's and Go's, whose orders
/// are SemVer precedence too.
const NODE_SEMVER_FILES: [&str; 3] = ["npm", "crates-io", "go"];

/// Pairs, and a reference's answer for each.
type Answered = (Vec<(String, String)>, Vec<String>);

/// node-semver's answers for one of [`NODE_SEMVER_FILES`]: node runs once for all of them, on
/// the first call.
fn node_semver(file: &str) -> Answered {
    static ANSWERS: OnceLock<Vec<Answered>> = OnceLock::new();
    let answers = ANSWERS.get_or_init(|| {
        let modules = crate::repo_root().join("tests/advisory/node_modules");
        assert!(
            modules.join("semver/package.json").is_file(),
            "node-semver is not installed under {}: run `make advisory-refs`",
            modules.display()
        );
        let mut command = Command::new("node");
        command
            .arg(reference_script("compare.js"))
            .env("NODE_PATH", modules);
        let files: Vec<Vec<(String, String)>> =
            NODE_SEMVER_FILES.iter().map(|f| pairs(f)).collect();
        let all: Vec<(String, String)> = files.iter().flatten().cloned().collect();
        let mut answers = run_reference(command, "node-semver", &all).into_iter();
        files
            .into_iter()
            .map(|pairs| {
                let theirs = answers.by_ref().take(pairs.len()).collect();
                (pairs, theirs)
            })
            .collect()
    });
    let i = NODE_SEMVER_FILES
        .iter()
        .position(|f| *f == file)
        .unwrap_or_else(|| panic!("{file} is not answered by node-semver"));
    answers[i].clone()
}

#[test]
fn npm_against_node_semver() {
    let (pairs, theirs) = node_semver("npm");
    assert_agree(
        "npm vs node-semver",
        &pairs,
        &ours(Ecosystem::Npm, &pairs),
        &theirs,
    );
}

/// crates.io and Go orders are SemVer precedence, which is also node-semver's `compare`: where
/// node-semver orders both versions (it also takes a `v` and spaces) the orders must agree, and
/// every version strict SemVer accepts node-semver accepts too.
fn semver_family(file: &str, ecosystem: Ecosystem) {
    let (pairs, theirs) = node_semver(file);
    let ours = ours(ecosystem, &pairs);
    let mut disagreements = Vec::new();
    let mut compared = 0;
    for ((pair, o), t) in pairs.iter().zip(&ours).zip(&theirs) {
        let both_ordered = !o.starts_with("invalid") && !t.starts_with("invalid");
        if both_ordered {
            compared += 1;
        }
        let refused_only_by_node = !o.starts_with("invalid") && t.starts_with("invalid");
        // Go's shorthands (`v1.2`) are Go's own: node-semver refuses them.
        let shorthand = ecosystem == Ecosystem::Go
            && [&pair.0, &pair.1]
                .iter()
                .any(|v| v.trim_start_matches('v').split('.').count() < 3);
        if (both_ordered && o != t) || (refused_only_by_node && !shorthand) {
            disagreements.push(format!(
                "{:?} vs {:?}: ours {o}, node-semver {t}",
                pair.0, pair.1
            ));
        }
    }
    eprintln!(
        "{ecosystem} vs node-semver: {compared} of {} pairs ordered by both, {} disagreements",
        pairs.len(),
        disagreements.len()
    );
    assert!(compared > pairs.len() / 2, "too few pairs both sides read");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn crates_io_against_node_semver() {
    semver_family("crates-io", Ecosystem::CratesIo);
}

#[test]
fn go_against_node_semver() {
    // Every version golang/vulndb writes is a Go version.
    for (a, b) in pairs("go") {
        for v in [a, b] {
            assert!(compare(Ecosystem::Go, &v, &v).is_ok(), "Go refuses {v:?}");
        }
    }
    semver_family("go", Ecosystem::Go);
}

#[test]
fn pypi_against_packaging() {
    let python = crate::repo_root().join(".venv-advisory/bin/python3");
    assert!(
        Path::new(&python).is_file(),
        "no {}: run `make advisory-refs`",
        python.display()
    );
    let mut c = Command::new(python);
    c.arg(reference_script("compare.py"));
    let pairs = pairs("pypi");
    let theirs = run_reference(c, "packaging", &pairs);
    assert_agree(
        "PyPI vs packaging",
        &pairs,
        &ours(Ecosystem::PyPi, &pairs),
        &theirs,
    );
}

#[test]
fn rubygems_against_gem_version() {
    let mut c = Command::new("ruby");
    c.arg(reference_script("compare.rb"));
    let pairs = pairs("rubygems");
    let theirs = run_reference(c, "Gem::Version", &pairs);
    assert_agree(
        "RubyGems vs Gem::Version",
        &pairs,
        &ours(Ecosystem::RubyGems, &pairs),
        &theirs,
    );
}

#[test]
fn maven_against_comparable_version() {
    let jar = "/usr/share/java/maven-artifact-3.x.jar";
    assert!(
        Path::new(jar).is_file(),
        "no {jar}: run `make advisory-refs`"
    );
    let mut c = Command::new("java");
    c.args(["-cp", jar]).arg(reference_script("Compare.java"));
    let pairs = pairs("maven");
    let theirs = run_reference(c, "ComparableVersion", &pairs);
    assert_agree(
        "Maven vs ComparableVersion",
        &pairs,
        &ours(Ecosystem::Maven, &pairs),
        &theirs,
    );
}

#[test]
fn packagist_against_composer_and_version_compare() {
    let mut c = Command::new("php");
    c.arg(reference_script("compare.php"));
    let pairs = pairs("packagist");
    let answers = run_reference(c, "Composer + version_compare", &pairs);
    let (composer, raw): (Vec<String>, Vec<String>) = answers
        .iter()
        .map(|line| {
            let (c, r) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
            (c.to_owned(), r.to_owned())
        })
        .unzip();
    assert_agree(
        "Packagist vs Composer",
        &pairs,
        &ours(Ecosystem::Packagist, &pairs),
        &composer,
    );
    let ours_raw: Vec<String> = pairs
        .iter()
        .map(|(a, b)| (packagist::version_compare(a, b) as i8).to_string())
        .collect();
    assert_agree("version_compare vs PHP", &pairs, &ours_raw, &raw);
}
