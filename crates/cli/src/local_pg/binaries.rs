//! Finding PostgreSQL's server binaries and their major version.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use super::{MIN_MAJOR, VERSIONED_BIN_ROOT};
/// A directory holding a complete set of server tools, with its major version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PgBin {
    pub(super) dir: PathBuf,
    pub(super) major: u32,
}

/// Every usable bin directory, in order of preference (see [`order_candidates`]).
pub(super) async fn discover_bins() -> Vec<PgBin> {
    let mut versioned = Vec::new();
    if let Ok(entries) = fs::read_dir(VERSIONED_BIN_ROOT) {
        for entry in entries.flatten() {
            let dir = entry.path().join("bin");
            if has_server_tools(&dir) {
                if let Some(bin) = probe(dir).await {
                    versioned.push(bin);
                }
            }
        }
    }
    let from_path = match initdb_dir_on_path() {
        Some(dir) => probe(dir).await,
        None => None,
    };
    order_candidates(from_path, versioned)
}

/// The directory of the first `initdb` on `PATH`, with symlinks resolved. A
/// `/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb` link then yields the
/// directory that also holds the matching `pg_ctl` and `postgres`.
fn initdb_dir_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("initdb"))
        .find(|initdb| is_executable(initdb))
        .and_then(|initdb| fs::canonicalize(initdb).ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .filter(|dir| has_server_tools(dir))
}

fn has_server_tools(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|tool| is_executable(&dir.join(tool)))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

/// Asks `pg_ctl --version` (allowed as root) for the major version. If the directory is
/// unusable, it is skipped with a debug log, and another one may do.
async fn probe(dir: PathBuf) -> Option<PgBin> {
    let pg_ctl = dir.join("pg_ctl");
    let out = match Command::new(&pg_ctl)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            tracing::debug!(
                path = %pg_ctl.display(),
                status = %out.status,
                "pg_ctl --version failed"
            );
            return None;
        }
        Err(e) => {
            tracing::debug!(path = %pg_ctl.display(), error = %e, "could not run pg_ctl");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    match parse_version_output(&text) {
        Some(major) if major >= MIN_MAJOR => Some(PgBin { dir, major }),
        _ => {
            tracing::debug!(
                path = %pg_ctl.display(),
                version = %text.trim(),
                "unsupported PostgreSQL version"
            );
            None
        }
    }
}

/// The `PATH` choice first, then the versioned directories from highest to lowest major.
/// Duplicates are dropped (a `PATH` link usually points into one of them).
fn order_candidates(from_path: Option<PgBin>, mut versioned: Vec<PgBin>) -> Vec<PgBin> {
    versioned.sort_by(|a, b| b.major.cmp(&a.major).then_with(|| a.dir.cmp(&b.dir)));
    let mut out: Vec<PgBin> = from_path.into_iter().collect();
    for bin in versioned {
        if !out.iter().any(|b| b.dir == bin.dir) {
            out.push(bin);
        }
    }
    out
}

/// An existing cluster can only be run by its own major version. A new one takes the
/// first candidate.
pub(super) fn choose_bin(candidates: &[PgBin], cluster_major: Option<u32>) -> Option<&PgBin> {
    match cluster_major {
        Some(major) => candidates.iter().find(|b| b.major == major),
        None => candidates.first(),
    }
}

/// `pg_ctl (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)` -> 15; `... 17devel` -> 17.
fn parse_version_output(text: &str) -> Option<u32> {
    let rest = text.split_once("(PostgreSQL) ")?.1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `PG_VERSION` holds the major version, e.g. `15\n`. Pre-10 clusters (`9.6`) do not parse.
pub(super) fn parse_cluster_major(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|major| *major >= MIN_MAJOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(dir: &str, major: u32) -> PgBin {
        PgBin {
            dir: PathBuf::from(dir),
            major,
        }
    }

    #[test]
    fn parses_pg_ctl_version_output() {
        let debian = "pg_ctl (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n";
        assert_eq!(parse_version_output(debian), Some(15));
        assert_eq!(
            parse_version_output("pg_ctl (PostgreSQL) 17devel\n"),
            Some(17)
        );
        assert_eq!(
            parse_version_output("pg_ctl (PostgreSQL) 16beta2"),
            Some(16)
        );
        assert_eq!(parse_version_output("pg_ctl (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(parse_version_output("pg_ctl 15.2"), None);
        assert_eq!(parse_version_output(""), None);
    }

    #[test]
    fn parses_pg_version_file() {
        assert_eq!(parse_cluster_major("15\n"), Some(15));
        assert_eq!(parse_cluster_major("10"), Some(10));
        assert_eq!(parse_cluster_major("9.6\n"), None);
        assert_eq!(parse_cluster_major("9\n"), None);
        assert_eq!(parse_cluster_major(""), None);
    }

    #[test]
    fn path_choice_first_then_highest_major_without_duplicates() {
        let versioned = vec![
            bin("/usr/lib/postgresql/14/bin", 14),
            bin("/usr/lib/postgresql/16/bin", 16),
            bin("/usr/lib/postgresql/15/bin", 15),
        ];
        let ordered = order_candidates(
            Some(bin("/usr/lib/postgresql/15/bin", 15)),
            versioned.clone(),
        );
        let majors: Vec<u32> = ordered.iter().map(|b| b.major).collect();
        assert_eq!(majors, [15, 16, 14]);

        let ordered = order_candidates(None, versioned);
        let majors: Vec<u32> = ordered.iter().map(|b| b.major).collect();
        assert_eq!(majors, [16, 15, 14]);

        let ordered = order_candidates(Some(bin("/opt/pg/bin", 13)), vec![]);
        assert_eq!(ordered, [bin("/opt/pg/bin", 13)]);
    }

    #[test]
    fn new_cluster_takes_first_candidate_existing_one_its_own_major() {
        let candidates = [
            bin("/usr/lib/postgresql/16/bin", 16),
            bin("/usr/lib/postgresql/14/bin", 14),
        ];
        assert_eq!(choose_bin(&candidates, None), Some(&candidates[0]));
        assert_eq!(choose_bin(&candidates, Some(14)), Some(&candidates[1]));
        assert_eq!(choose_bin(&candidates, Some(15)), None);
        assert_eq!(choose_bin(&[], None), None);
    }
}
