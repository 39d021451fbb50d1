//! `file://` projects: repositories on the machine that runs the scans (single-machine use,
//! `picket run`). The scheduler lends the directories of [`SETTING`] read-only to its sandboxes
//! and nothing else of the machine, so a `file://` project elsewhere could never be cloned: it
//! is refused when it is added (422), not when its scans fail.

use std::path::PathBuf;

/// The setting both the API and the scheduler read.
pub const SETTING: &str = "PICKET_LOCAL_REPO_DIRS";

/// The directories `file://` projects may lie in, resolved (absolute, no symbolic links).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalRepoDirs(Vec<PathBuf>);

impl LocalRepoDirs {
    /// Resolves each directory; one that does not exist or is no directory is refused, naming
    /// it.
    pub fn new(dirs: impl IntoIterator<Item = PathBuf>) -> Result<LocalRepoDirs, String> {
        dirs.into_iter()
            .map(|d| {
                std::fs::canonicalize(&d)
                    .ok()
                    .filter(|c| c.is_dir())
                    .ok_or_else(|| format!("{SETTING}: {} is not a directory", d.display()))
            })
            .collect::<Result<_, _>>()
            .map(LocalRepoDirs)
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.0
    }

    /// Whether a project with this clone URL may be added: any URL but `file://`, and a
    /// `file://` URL whose path, resolved, lies in one of the directories. The error says why
    /// (for the problem's field message).
    pub fn check(&self, clone_url: &str) -> Result<(), String> {
        let is_file = clone_url
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("file://"));
        if !is_file {
            return Ok(());
        }
        let path = url::Url::parse(clone_url)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or("is not a file:// URL of an absolute path on this machine")?;
        let configured = || match self.0.is_empty() {
            true => format!("{SETTING} lists none"),
            false => format!(
                "{SETTING} lists {}",
                self.0
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let resolved = std::fs::canonicalize(&path).map_err(|_| {
            format!(
                "{} does not exist on this machine ({})",
                path.display(),
                configured()
            )
        })?;
        if self.0.iter().any(|d| resolved.starts_with(d)) {
            Ok(())
        } else {
            Err(format!(
                "{} is outside the directories scans may read ({})",
                path.display(),
                configured()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn file_urls_must_lie_in_a_listed_directory() {
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("repos/with space");
        let outside = root.path().join("elsewhere");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let dirs = LocalRepoDirs::new([root.path().join("repos")]).unwrap();
        let url = |p: &Path| url::Url::from_file_path(p).unwrap().to_string();
        dirs.check(&url(&inside)).unwrap();
        dirs.check("https://github.com/o/r.git").unwrap();
        let err = dirs.check(&url(&outside)).unwrap_err();
        assert!(err.contains(SETTING) && err.contains("outside"), "{err}");
        // `..` and symbolic links are resolved before the comparison.
        let sneaky = format!("{}/../elsewhere", url(&root.path().join("repos")));
        assert!(dirs.check(&sneaky).is_err());
        std::os::unix::fs::symlink(&outside, root.path().join("repos/link")).unwrap();
        assert!(dirs.check(&url(&root.path().join("repos/link"))).is_err());
        assert!(dirs.check("file://host/x").is_err());
        assert!(dirs
            .check("FILE:///nonexistent/x")
            .unwrap_err()
            .contains("does not exist"));
        let none = LocalRepoDirs::default();
        assert!(none
            .check(&url(&inside))
            .unwrap_err()
            .contains("lists none"));
        assert!(LocalRepoDirs::new([root.path().join("nope")]).is_err());
    }
}
