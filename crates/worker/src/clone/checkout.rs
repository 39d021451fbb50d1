//! The repository on disk: created so nothing in it reaches outside, the head checked out, and
//! what the diff logic reads from it (changed files, merge-base versions of files).

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use git2::{
    build::CheckoutBuilder, ConfigLevel, Delta, DiffOptions, ErrorCode, FileMode, ObjectType, Oid,
    Repository, RepositoryInitOptions,
};
use picket_core::feedback::DiffLines;

use super::{ChangeStatus, ChangedFile, Checkout, CloneError, CloneStats};
use crate::diff_lines::{self, detect_renames, DiffLinesError};

impl Checkout {
    /// The root of the head's working tree (its `.git` directory is inside).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The checked-out commit, 40 hex digits.
    pub fn head(&self) -> &str {
        &self.head_hex
    }

    /// The merge base of a diff checkout, 40 hex digits.
    pub fn merge_base(&self) -> Option<&str> {
        self.merge_base.as_ref().map(|(_, hex)| hex.as_str())
    }

    pub fn stats(&self) -> &CloneStats {
        &self.stats
    }

    /// Files that differ between the merge base and the head, with git's rename detection
    /// (50% similarity, up to `diff_lines::RENAME_LIMIT` candidates). Submodule pointer changes are left
    /// out: there is nothing to scan in them.
    pub fn changed_files(&self) -> Result<Vec<ChangedFile>, CloneError> {
        let (merge_base, _) = self.merge_base.as_ref().ok_or(CloneError::NotADiff)?;
        let repo = self.open()?;
        let base_tree = tree_of(&repo, *merge_base)?;
        let head_tree = tree_of(&repo, self.head)?;
        let mut opts = DiffOptions::new();
        // Without this a file that became a symlink (or back) is split into a delete and an add.
        opts.include_typechange(true);
        let mut diff = repo
            .diff_tree_to_tree(Some(&base_tree), Some(&head_tree), Some(&mut opts))
            .map_err(CloneError::git)?;
        detect_renames(&mut diff).map_err(CloneError::git)?;

        let mut changed = Vec::new();
        for delta in diff.deltas() {
            let status = match delta.status() {
                // Copy detection is off, but a copy is a new file at head if it ever shows up.
                Delta::Added | Delta::Copied => ChangeStatus::Added,
                Delta::Deleted => ChangeStatus::Deleted,
                Delta::Modified | Delta::Typechange => ChangeStatus::Modified,
                Delta::Renamed => ChangeStatus::Renamed,
                Delta::Unmodified
                | Delta::Ignored
                | Delta::Untracked
                | Delta::Unreadable
                | Delta::Conflicted => continue,
            };
            let not_a_file =
                |mode: FileMode| matches!(mode, FileMode::Commit | FileMode::Unreadable);
            if not_a_file(delta.old_file().mode()) && not_a_file(delta.new_file().mode()) {
                continue;
            }
            let path_at_head = match status {
                ChangeStatus::Deleted => None,
                _ => Some(utf8_path(delta.new_file().path_bytes())?),
            };
            let path_at_base = match status {
                ChangeStatus::Added => None,
                _ => Some(utf8_path(delta.old_file().path_bytes())?),
            };
            changed.push(ChangedFile {
                path_at_head,
                path_at_base,
                status,
            });
        }
        Ok(changed)
    }

    /// The lines of the PR's diff (merge base → head) that can carry an inline comment, by head
    /// path; see [`crate::diff_lines`].
    pub fn diff_lines(&self) -> Result<DiffLines, CloneError> {
        let (merge_base, _) = self.merge_base.as_ref().ok_or(CloneError::NotADiff)?;
        let repo = self.open()?;
        diff_lines::diff_lines(&repo, *merge_base, self.head).map_err(|e| match e {
            DiffLinesError::Git(e) => CloneError::git(e),
            DiffLinesError::NotUtf8(path) => CloneError::InvalidPath {
                path,
                reason: "not UTF-8",
            },
        })
    }

    /// Writes `paths` as they are at the merge base into `into` (created if missing), read from
    /// the object database without checking the base tree out. Paths that are not files at the
    /// merge base (added later, directories, submodules) are skipped. Symlinks are written as
    /// plain files holding their target, like the head checkout; no existing file is overwritten
    /// and no existing symlink under `into` is followed.
    pub fn materialize_base(&self, paths: &[String], into: &Path) -> Result<(), CloneError> {
        let (merge_base, _) = self.merge_base.as_ref().ok_or(CloneError::NotADiff)?;
        let wanted = paths
            .iter()
            .map(|p| safe_components(p).map(|parts| (p, parts)))
            .collect::<Result<Vec<_>, _>>()?;
        let repo = self.open()?;
        let tree = tree_of(&repo, *merge_base)?;
        fs::create_dir_all(into)?;
        let mut done = BTreeSet::new();
        for (path, parts) in wanted {
            if !done.insert(path.as_str()) {
                continue;
            }
            let entry = match tree.get_path(Path::new(path)) {
                Ok(entry) => entry,
                Err(e) if e.code() == ErrorCode::NotFound => {
                    tracing::debug!(path, "not present at the merge base");
                    continue;
                }
                Err(e) => return Err(CloneError::git(e)),
            };
            if entry.kind() != Some(ObjectType::Blob) {
                tracing::debug!(path, "not a file at the merge base");
                continue;
            }
            // A symlink's blob is its target text: writing the blob is writing it as a file.
            let blob = repo.find_blob(entry.id()).map_err(CloneError::git)?;
            write_new_file(into, path, &parts, blob.content())?;
        }
        Ok(())
    }

    /// Every file of the merge base's tree (blobs, symlinks included; submodules left out), by
    /// repository-relative `/`-separated path, sorted; paths that are not UTF-8 are left out.
    pub fn base_files(&self) -> Result<Vec<String>, CloneError> {
        let (merge_base, _) = self.merge_base.as_ref().ok_or(CloneError::NotADiff)?;
        let repo = self.open()?;
        let tree = tree_of(&repo, *merge_base)?;
        let mut files = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(ObjectType::Blob) {
                if let Ok(name) = std::str::from_utf8(entry.name_bytes()) {
                    files.push(format!("{dir}{name}"));
                }
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(CloneError::git)?;
        files.sort();
        Ok(files)
    }

    /// The content of `path` at the merge base, read from the object database, when it is a
    /// file there of at most `max_bytes` (its size is read from the object's header first, so
    /// a larger one is never loaded).
    pub fn read_base(&self, path: &str, max_bytes: u64) -> Result<BaseFile, CloneError> {
        let (merge_base, _) = self.merge_base.as_ref().ok_or(CloneError::NotADiff)?;
        let repo = self.open()?;
        let tree = tree_of(&repo, *merge_base)?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(entry) if entry.kind() == Some(ObjectType::Blob) => entry,
            Ok(_) => return Ok(BaseFile::Missing),
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(BaseFile::Missing),
            Err(e) => return Err(CloneError::git(e)),
        };
        let (size, _) = repo
            .odb()
            .and_then(|odb| odb.read_header(entry.id()))
            .map_err(CloneError::git)?;
        if size as u64 > max_bytes {
            return Ok(BaseFile::TooLarge(size as u64));
        }
        let blob = repo.find_blob(entry.id()).map_err(CloneError::git)?;
        Ok(BaseFile::Content(blob.content().to_vec()))
    }

    fn open(&self) -> Result<Repository, CloneError> {
        Repository::open(self.dir.path()).map_err(CloneError::git)
    }
}

/// A file as [`Checkout::read_base`] finds it at the merge base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseFile {
    Content(Vec<u8>),
    /// Larger than asked for: its size in bytes.
    TooLarge(u64),
    /// Not a file there (absent, a directory, a submodule).
    Missing,
}

/// The tree of commit `oid`.
fn tree_of(repo: &Repository, oid: Oid) -> Result<git2::Tree<'_>, CloneError> {
    repo.find_commit(oid)
        .and_then(|c| c.tree())
        .map_err(CloneError::git)
}

pub(super) fn init_repo(path: &Path) -> Result<Repository, CloneError> {
    let mut opts = RepositoryInitOptions::new();
    // No template: no sample hooks, no info/exclude from the system's template directory.
    opts.external_template(false).no_reinit(true);
    let repo = Repository::init_opts(path, &opts).map_err(CloneError::git)?;
    let mut config = repo
        .config()
        .and_then(|c| c.open_level(ConfigLevel::Local))
        .map_err(CloneError::git)?;
    // Local settings win over any global/system git config on the worker image.
    for (key, value) in [
        // A symlink becomes a file holding its target: nothing in the tree can point outside it.
        ("core.symlinks", false),
        ("core.autocrlf", false),
        // Refuse `.git` aliases such as `GIT~1` and `.git\u{200c}` in trees, whatever the defaults.
        ("core.protectNTFS", true),
        ("core.protectHFS", true),
    ] {
        config.set_bool(key, value).map_err(CloneError::git)?;
    }
    // libgit2 never runs hooks; this is for a scanner that runs the git CLI in the checkout.
    config
        .set_str("core.hooksPath", "/dev/null")
        .map_err(CloneError::git)?;
    drop(config);
    Ok(repo)
}

pub(super) fn check_out(repo: &Repository, head: Oid) -> Result<(), CloneError> {
    let commit = repo.find_commit(head).map_err(CloneError::git)?;
    let mut checkout = CheckoutBuilder::new();
    // Filters off: files are byte-identical to their blobs (finding offsets match the objects),
    // and no attribute can select a filter.
    checkout.force().disable_filters(true);
    repo.checkout_tree(commit.as_object(), Some(&mut checkout))
        .map_err(|e| CloneError::Checkout(e.message().to_owned()))?;
    repo.set_head_detached(head).map_err(CloneError::git)
}

fn utf8_path(bytes: Option<&[u8]>) -> Result<String, CloneError> {
    let bytes = bytes.unwrap_or_default();
    String::from_utf8(bytes.to_vec()).map_err(|_| CloneError::InvalidPath {
        path: String::from_utf8_lossy(bytes).into_owned(),
        reason: "not UTF-8",
    })
}

/// Splits a repository-relative path, refusing anything that could leave the target directory
/// or write into a `.git` directory.
fn safe_components(path: &str) -> Result<Vec<&str>, CloneError> {
    let refuse = |reason| CloneError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    if path.is_empty() || path.contains('\0') {
        return Err(refuse("empty or contains NUL"));
    }
    if path.starts_with('/') {
        return Err(refuse("absolute"));
    }
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts {
        if part.is_empty() || *part == "." || *part == ".." {
            return Err(refuse("empty, `.` or `..` component"));
        }
        if part.eq_ignore_ascii_case(".git") {
            return Err(refuse("inside a .git directory"));
        }
    }
    Ok(parts)
}

/// Creates `root/parts...` as a new regular file, creating missing parent directories and
/// refusing to go through anything under `root` that is not a real directory.
fn write_new_file(
    root: &Path,
    path: &str,
    parts: &[&str],
    content: &[u8],
) -> Result<(), CloneError> {
    let Some((file_name, parents)) = parts.split_last() else {
        return Err(CloneError::InvalidPath {
            path: path.to_owned(),
            reason: "empty",
        });
    };
    let mut dir = root.to_path_buf();
    for part in parents {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            // symlink_metadata does not follow links: a symlink is never `is_dir`.
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(CloneError::InvalidPath {
                    path: path.to_owned(),
                    reason: "a parent exists and is not a directory",
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&dir)?,
            Err(e) => return Err(e.into()),
        }
    }
    // create_new is O_CREAT|O_EXCL: it fails on any existing entry, a dangling symlink included.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(file_name))?;
    file.write_all(content)?;
    Ok(())
}
