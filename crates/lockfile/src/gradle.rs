//! Gradle's dependency locks (<https://docs.gradle.org/current/userguide/dependency_locking.html>).
//!
//! `gradle.lockfile` (Gradle ≥ 6, one per project) has one line per module,
//! `group:artifact:version=configuration,configuration`, and `empty=...` for configurations
//! that resolve nothing; `#` starts a comment. The older per-configuration files
//! `gradle/dependency-locks/<configuration>.lockfile` list `group:artifact:version` alone. The
//! configurations are the groups; a module only in test configurations (`test…`, `…Test…`:
//! `testRuntimeClasspath`, `debugUnitTestRuntimeClasspath`) is dev. Gradle does not record
//! which modules the build declares.

use crate::error::ErrorKind;
use crate::model::{Package, Parsed};
use crate::text::numbered_lines;
use picket_core::Ecosystem;

pub(crate) fn parse(text: &str, path: &str) -> Result<Parsed, ErrorKind> {
    // A per-configuration file names its configuration in its file name.
    let file_configuration = path
        .rsplit('/')
        .next()
        .and_then(|n| n.strip_suffix(".lockfile"))
        .filter(|_| path.contains("gradle/dependency-locks/"));
    let mut out = Vec::new();
    for (n, raw) in numbered_lines(text) {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (module, configurations) = match line.split_once('=') {
            Some(("empty", _)) => continue,
            Some((m, c)) => (
                m,
                c.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect(),
            ),
            None => (line, file_configuration.into_iter().collect::<Vec<_>>()),
        };
        let parts: Vec<&str> = module.split(':').collect();
        let [group, artifact, version] = parts[..] else {
            return Err(ErrorKind::invalid(
                Some(n),
                format!("{module:?} is not group:artifact:version"),
            ));
        };
        if [group, artifact, version].iter().any(|s| s.is_empty()) {
            return Err(ErrorKind::invalid(
                Some(n),
                format!("{module:?} has an empty part"),
            ));
        }
        let mut p = Package::new(Ecosystem::Maven, &format!("{group}:{artifact}"), version);
        p.line = Some(n);
        if !configurations.is_empty() {
            p.dev = Some(
                configurations
                    .iter()
                    .all(|c| c.starts_with("test") || c.contains("Test")),
            );
        }
        p.groups = configurations.into_iter().map(str::to_owned).collect();
        p.groups.sort();
        out.push(p);
    }
    Ok(out.into())
}
