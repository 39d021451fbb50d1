//! Kubernetes objects under test, checked offline with the tools pinned in the Makefile
//! (`make k8s-tools` installs them into `.venv/`):
//!
//! - [`render`] builds a kustomization (`deploy/overlays/…`) with the pinned `kubectl kustomize`
//!   and returns its objects as JSON values.
//! - [`validate`] checks objects against the API schemas of the Kubernetes version Picket targets
//!   (`KUBERNETES_VERSION` in the Makefile) with `kubernetes-validate --strict`: a wrong type, a
//!   missing required field, an unknown field or a kind the schemas do not know fails.
//!
//! Both panic with "run `make k8s-tools`" when the tools are missing or not the pinned versions;
//! they never skip.

use serde::Deserialize;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .canonicalize()
        .expect("the repository root exists")
}

/// The value of `NAME := value` in the repository's Makefile (the one place tool versions are
/// pinned). Panics when the Makefile has no such line.
pub fn makefile_var(name: &str) -> String {
    let path = repo_root().join("Makefile");
    let makefile = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    makefile
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(":=")?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| panic!("the Makefile pins no `{name} := …`"))
}

/// The Kubernetes version Picket targets (`KUBERNETES_VERSION` in the Makefile), e.g. `1.35.0`.
pub fn kubernetes_version() -> String {
    makefile_var("KUBERNETES_VERSION")
}

/// Renders the kustomization in `dir` (absolute, or relative to the repository root) with the
/// pinned `kubectl kustomize`. Panics with kubectl's message when it does not build.
pub fn render(dir: impl AsRef<Path>) -> Vec<Value> {
    let dir = repo_root().join(dir);
    let out = Command::new(tool("kubectl"))
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed ({}):\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).expect("kubectl prints UTF-8");
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&yaml) {
        let object = Value::deserialize(document).unwrap_or_else(|e| {
            panic!("kubectl kustomize {} printed bad YAML: {e}", dir.display())
        });
        if !object.is_null() {
            objects.push(object);
        }
    }
    assert!(
        !objects.is_empty(),
        "kubectl kustomize {} rendered no object",
        dir.display()
    );
    objects
}

/// Validates every object against the API schemas of [`kubernetes_version`] with
/// `kubernetes-validate --strict`. `Err` carries the tool's report when any object fails, or when
/// any object was not positively validated (e.g. a kind without a schema, which the tool itself
/// only warns about).
pub fn validate(objects: &[Value]) -> Result<(), String> {
    if objects.is_empty() {
        return Err("no object to validate".to_owned());
    }
    // JSON is YAML: one document per object, read from stdin.
    let mut input = String::new();
    for object in objects {
        input.push_str("---\n");
        input.push_str(&serde_json::to_string(object).expect("a JSON value serializes"));
        input.push('\n');
    }
    let version = kubernetes_version();
    let mut child = Command::new(tool("kubernetes-validate"))
        .args(["--kubernetes-version", &version, "--strict", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kubernetes-validate: {e}"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("writing to kubernetes-validate");
    let out = child
        .wait_with_output()
        .expect("waiting for kubernetes-validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let passed = stdout
        .lines()
        .filter(|line| line.starts_with("INFO ") && line.contains(" passed for resource "))
        .count();
    let other = stdout
        .lines()
        .any(|line| !(line.starts_with("INFO ") && line.contains(" passed for resource ")));
    if out.status.success() && passed == objects.len() && !other {
        return Ok(());
    }
    Err(format!(
        "kubernetes-validate --kubernetes-version {version} --strict: {} ({passed} of {} objects \
         passed)\n{stdout}{}",
        out.status,
        objects.len(),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// `.venv/bin/<name>`, once checked to be the version the Makefile pins.
fn tool(name: &str) -> PathBuf {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        check_version(
            "kubectl",
            &["version", "--client"],
            &format!("Client Version: v{}", makefile_var("KUBECTL_VERSION")),
        );
        check_version(
            "kubernetes-validate",
            &["--version"],
            &makefile_var("KUBERNETES_VALIDATE_VERSION"),
        );
    });
    repo_root().join(".venv/bin").join(name)
}

fn check_version(name: &str, args: &[&str], expected_line: &str) {
    let path = repo_root().join(".venv/bin").join(name);
    let out = Command::new(&path).args(args).output().unwrap_or_else(|e| {
        panic!(
            "{} cannot run ({e}): run `make k8s-tools` to install the pinned Kubernetes tools",
            path.display()
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().any(|line| line.trim() == expected_line),
        "{} is not the pinned version (want `{expected_line}`, got `{}`): run `make k8s-tools`",
        path.display(),
        stdout.trim()
    );
}
