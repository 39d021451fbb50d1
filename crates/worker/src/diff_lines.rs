//! Which lines of a pull request's diff can carry an inline comment.
//!
//! GitHub accepts a review comment on a line of the PR's diff: `side: RIGHT` with `line` = a line
//! of the head file that the unified diff shows, added or context (`POST
//! /repos/{o}/{r}/pulls/{n}/comments`, `@octokit/openapi` op `pulls/create-review-comment`). The
//! PR's diff is the three-dot diff: merge base → head, with git's defaults. [`diff_lines`]
//! reproduces it with libgit2:
//! - 3 lines of context, no inter-hunk context (`diff.interHunkContext` = 0), the Myers
//!   algorithm with git's indent heuristic (on by default since git 2.14, off by default in
//!   libgit2), so hunks start and end on the same lines as `git diff`;
//! - rename detection as the worker's diff identity uses it (`detect_renames`: git's 50%
//!   similarity and its `diff.renameLimit` of 1000), so a renamed file's lines are keyed by its
//!   head path;
//! - a type change (a file that became a symlink or back) is a deletion plus an addition, as
//!   `git diff` shows it;
//! - binary files, files renamed without edits and files emptied are in the result with no
//!   lines; deleted files and submodule pointers are left out (nothing at head to comment on).
//!
//! Each hunk's head side is one contiguous range (`+start,count` in its header): every line in
//! it is commentable, and the ranges are what [`picket_core::feedback::DiffLines`] stores.

use git2::{Delta, Diff, DiffFindOptions, DiffOptions, FileMode, Oid, Repository};
use picket_core::feedback::DiffLines;

/// git's own default for `diff.renameLimit`: above this many candidate pairs rename detection is
/// skipped and renames show up as a delete plus an add.
pub(crate) const RENAME_LIMIT: usize = 1000;

/// Lines of context around each change: git's default (`-U3`).
const CONTEXT_LINES: u32 = 3;

/// Why the lines could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum DiffLinesError {
    #[error("git: {}", .0.message())]
    Git(#[from] git2::Error),
    #[error("path is not UTF-8: {0:?}")]
    NotUtf8(String),
}

/// Finds renames in a tree-to-tree diff the way the worker's diff identity does: 50% similarity
/// (git's default), up to [`RENAME_LIMIT`] candidates, no copies.
pub(crate) fn detect_renames(diff: &mut Diff<'_>) -> Result<(), git2::Error> {
    let mut find = DiffFindOptions::new();
    find.renames(true).rename_limit(RENAME_LIMIT);
    diff.find_similar(Some(&mut find))
}

/// The commentable lines of the diff from `merge_base` to `head` (both commits of `repo`), by
/// head path.
///
/// Errors: a commit or tree missing from `repo`, or a changed path that is not UTF-8.
pub fn diff_lines(
    repo: &Repository,
    merge_base: Oid,
    head: Oid,
) -> Result<DiffLines, DiffLinesError> {
    let base_tree = repo.find_commit(merge_base)?.tree()?;
    let head_tree = repo.find_commit(head)?.tree()?;
    let mut opts = DiffOptions::new();
    opts.context_lines(CONTEXT_LINES)
        .interhunk_lines(0)
        .indent_heuristic(true);
    let mut diff = repo.diff_tree_to_tree(Some(&base_tree), Some(&head_tree), Some(&mut opts))?;
    detect_renames(&mut diff)?;

    let mut lines = DiffLines::new();
    let mut bad_path: Option<String> = None;
    let head_path = |delta: &git2::DiffDelta<'_>| -> Option<Result<String, String>> {
        if matches!(delta.status(), Delta::Deleted)
            || matches!(
                delta.new_file().mode(),
                FileMode::Commit | FileMode::Unreadable
            )
        {
            return None;
        }
        let bytes = delta.new_file().path_bytes().unwrap_or_default();
        Some(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| String::from_utf8_lossy(bytes).into_owned()),
        )
    };
    // The callbacks cannot return our error: they record it and stop the walk.
    let mut files = |delta: git2::DiffDelta<'_>, _progress: f32| match head_path(&delta) {
        None => true,
        Some(Ok(path)) => {
            lines.add_file(&path);
            true
        }
        Some(Err(path)) => {
            bad_path.get_or_insert(path);
            false
        }
    };
    let mut hunks_seen: Vec<(String, u32, u32)> = Vec::new();
    let mut hunks = |delta: git2::DiffDelta<'_>, hunk: git2::DiffHunk<'_>| {
        if let Some(Ok(path)) = head_path(&delta) {
            if hunk.new_lines() > 0 {
                let start = hunk.new_start();
                hunks_seen.push((path, start, start + hunk.new_lines() - 1));
            }
        }
        true
    };
    let walked = diff.foreach(&mut files, None, Some(&mut hunks), None);
    if let Some(path) = bad_path {
        return Err(DiffLinesError::NotUtf8(path));
    }
    walked?;
    for (path, start, end) in hunks_seen {
        lines.add_hunk(&path, start, end);
    }
    Ok(lines)
}
