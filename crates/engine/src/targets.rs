//! Which files of a checkout a scan looks at: Semgrep's `.semgrepignore` semantics, applied by
//! Picket to every path it hands the engine, so full and diff scans (and a diff scan's head and
//! base alike) see exactly the same files.
//!
//! Semgrep itself filters only the files it finds by walking a directory; files named on its
//! command line are never filtered. A diff scan names its files, so leaving the filtering to the
//! engine made full and diff scans disagree. Here the filter is one value, [`PathFilter`], built
//! once from the head tree and asked about every path:
//!
//! 1. the project's own path ignores (set through the API), like Semgrep's `--exclude`: highest
//!    precedence, anchored at the repository root;
//! 2. every `.semgrepignore` in the tree, each applying under its own directory in gitignore
//!    syntax (the last matching line of a file wins, `!` re-includes what the same file
//!    excluded, nothing under an ignored directory can be re-included), with the legacy
//!    `:include <file>` directive expanded. A path is ignored when any of these files (or the
//!    project's patterns) ignores it: unlike git, a nested file's `!` cannot re-include what the
//!    root file excludes (the pinned engine's behaviour, checked by the parity test);
//! 3. without a root `.semgrepignore`, Semgrep's built-in default patterns in its place
//!    ([`DEFAULT_SEMGREPIGNORE`]).
//!
//! `.gitignore` files are not read: the checkout holds only tracked files, and Picket runs the
//! engine with `--no-git-ignore`. The filter's semantics are checked against the pinned engine's
//! own target selection (`semgrep --x-ls-long`) in picket-worker's tests.

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use picket_core::protocol::IgnoreRuleUse;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// The patterns Semgrep applies when a repository has no root `.semgrepignore`: the built-in
/// list of the pinned Semgrep (1.185.0; `Semgrepignore.ml`, `default_semgrepignore_for_semgrep_scan`),
/// checked against the engine's own target selection by picket-worker's tests.
pub const DEFAULT_SEMGREPIGNORE: &str = "\
.git
.svn
.hg
_darcs
CVS
build/
vendor/
dist/
*.min.js
.env/
.tox/
node_modules/
.npm/
.yarn/
.venv/
_opam/
_build/
_cargo/
test/
tests/
testsuite/
*_test.go
";

/// The file name Semgrep reads ignore patterns from.
pub const SEMGREPIGNORE: &str = ".semgrepignore";

/// Where an ignore pattern came from, as [`IgnoreRuleUse::source`] names it.
pub const SOURCE_PROJECT: &str = "project";
pub const SOURCE_DEFAULT: &str = "default";

/// A project path ignore the filter cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?} is not a usable ignore pattern: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

/// Checks one project path ignore (gitignore syntax, one line, no `:include`): what the API
/// accepts is what the worker can apply.
pub fn check_pattern(pattern: &str) -> Result<(), PatternError> {
    let bad = |reason: &str| PatternError {
        pattern: pattern.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = pattern.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Err(bad("it is empty or a comment"));
    }
    if pattern.chars().any(char::is_control) {
        return Err(bad("it holds control characters"));
    }
    if trimmed.starts_with(':') {
        return Err(bad("directives such as :include are not allowed here"));
    }
    GitignoreBuilder::new("/")
        .add_line(None, pattern)
        .map_err(|e| bad(&e.to_string()))?;
    Ok(())
}

/// One set of patterns and the directory (relative to the root, `""` for the root) it applies
/// under.
#[derive(Debug)]
struct Layer {
    dir: String,
    source: String,
    matcher: Gitignore,
}

/// The filter of one checkout (module docs).
#[derive(Debug)]
pub struct PathFilter {
    root: PathBuf,
    /// The project's patterns: checked first.
    project: Option<Layer>,
    /// `.semgrepignore` layers (or the defaults at the root), deepest directory first.
    files: Vec<Layer>,
}

/// The rule that excluded a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredBy {
    pub source: String,
    pub pattern: String,
}

impl PathFilter {
    /// Builds the filter of the checkout at `root`, whose files (relative paths, `/`-separated)
    /// are `tree_files`; `project` are the project's own patterns ([`check_pattern`] each; an
    /// unusable one is skipped with a warning). A `.semgrepignore` that cannot be read is
    /// treated as empty, and a line that is not a usable pattern is skipped, with a warning:
    /// a repository's typo must not stop its scans.
    pub fn new(root: &Path, tree_files: &[String], project: &[String]) -> PathFilter {
        let project = (!project.is_empty()).then(|| {
            let mut b = GitignoreBuilder::new(root);
            for p in project {
                if let Err(e) = b.add_line(None, p) {
                    tracing::warn!(pattern = %p, error = %e, "skipping an unusable project ignore");
                }
            }
            layer("", SOURCE_PROJECT.to_owned(), b)
        });
        let mut files: Vec<Layer> = Vec::new();
        let mut has_root_file = false;
        for f in tree_files {
            let Some(dir) = ignore_file_dir(f) else {
                continue;
            };
            has_root_file |= dir.is_empty();
            let text = std::fs::read(root.join(f))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| {
                    tracing::warn!(file = %f, error = %e, "cannot read an ignore file");
                    String::new()
                });
            let base = root.join(dir);
            let mut b = GitignoreBuilder::new(&base);
            for line in expand_includes(&text, root, &base) {
                if let Err(e) = b.add_line(None, &line) {
                    tracing::warn!(file = %f, line = %line, error = %e, "skipping an unusable ignore line");
                }
            }
            files.push(layer(dir, f.clone(), b));
        }
        if !has_root_file {
            let mut b = GitignoreBuilder::new(root);
            for line in DEFAULT_SEMGREPIGNORE.lines() {
                // The list is a constant: every line is a valid pattern (tested below).
                let _ = b.add_line(None, line);
            }
            files.push(layer("", SOURCE_DEFAULT.to_owned(), b));
        }
        // Deepest first (`decide` walks them from the root down, to name the shallowest rule).
        files.sort_by(|a, b| depth(&b.dir).cmp(&depth(&a.dir)).then(a.dir.cmp(&b.dir)));
        PathFilter {
            root: root.to_path_buf(),
            project,
            files,
        }
    }

    /// The rule that excludes `path` (relative, `/`-separated), if any: the path itself or any
    /// directory above it may be what is ignored.
    pub fn ignored(&self, path: &str) -> Option<IgnoredBy> {
        let mut dir_end = 0;
        // Each directory above the path, shallowest first: once one is ignored, nothing below it
        // can be re-included (gitignore semantics).
        while let Some(i) = path[dir_end..].find('/') {
            let dir = &path[..dir_end + i];
            if let Some(by) = self.decide(dir, true) {
                return Some(by);
            }
            dir_end += i + 1;
        }
        self.decide(path, false)
    }

    /// Whether any layer ignores `path`: each layer (the project's patterns, each
    /// `.semgrepignore`) decides on its own, its last matching pattern winning, and a path is
    /// ignored when one of them ignores it. A `!` pattern re-includes only what its own file
    /// excluded: a nested file cannot re-include what the root file excludes, nor the reverse
    /// (the pinned engine's behaviour, which differs from git's here).
    fn decide(&self, path: &str, is_dir: bool) -> Option<IgnoredBy> {
        let full = self.root.join(path);
        let layers = self
            .project
            .iter()
            .chain(self.files.iter().rev().filter(|l| {
                l.dir.is_empty()
                    || path
                        .strip_prefix(l.dir.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }));
        for l in layers {
            if let Match::Ignore(glob) = l.matcher.matched(&full, is_dir) {
                return Some(IgnoredBy {
                    source: l.source.clone(),
                    pattern: glob.original().to_owned(),
                });
            }
        }
        None
    }

    /// Splits `paths` into those to scan (returned, in order) and those ignored (counted into
    /// `tally` by the rule that excluded them).
    pub fn select<'a, I>(&self, paths: I, tally: &mut IgnoreTally) -> Vec<String>
    where
        I: IntoIterator<Item = &'a String>,
    {
        paths
            .into_iter()
            .filter(|p| match self.ignored(p) {
                Some(by) => {
                    tally.count(p, by);
                    false
                }
                None => true,
            })
            .cloned()
            .collect()
    }
}

/// How many files each ignore rule excluded, over one or more [`PathFilter::select`] calls; a
/// path is counted once however often it is seen (a diff scan filters head and base paths).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreTally {
    counts: BTreeMap<(String, String), u64>,
    seen: HashSet<String>,
}

impl IgnoreTally {
    fn count(&mut self, path: &str, by: IgnoredBy) {
        if self.seen.insert(path.to_owned()) {
            *self.counts.entry((by.source, by.pattern)).or_default() += 1;
        }
    }

    /// Files excluded in all.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The rules that excluded files, for the scan's trail.
    pub fn into_uses(self) -> Vec<IgnoreRuleUse> {
        self.counts
            .into_iter()
            .map(|((source, pattern), files)| IgnoreRuleUse {
                pattern,
                source,
                files,
            })
            .collect()
    }
}

fn layer(dir: &str, source: String, b: GitignoreBuilder) -> Layer {
    let matcher = b.build().unwrap_or_else(|e| {
        tracing::warn!(source = %source, error = %e, "ignore patterns unusable; none applied");
        Gitignore::empty()
    });
    Layer {
        dir: dir.to_owned(),
        source,
        matcher,
    }
}

/// Whether `path` (relative) is a `.semgrepignore` file.
pub fn is_ignore_file(path: &str) -> bool {
    ignore_file_dir(path).is_some()
}

/// The directory (relative, `""` for the root) of a `.semgrepignore`, or `None` for other files.
fn ignore_file_dir(path: &str) -> Option<&str> {
    match path.rsplit_once('/') {
        Some((dir, SEMGREPIGNORE)) => Some(dir),
        None if path == SEMGREPIGNORE => Some(""),
        _ => None,
    }
}

fn depth(dir: &str) -> usize {
    if dir.is_empty() {
        0
    } else {
        dir.matches('/').count() + 1
    }
}

/// The lines of an ignore file with `:include <file>` replaced by that file's lines (one level;
/// the path is relative to the ignore file's directory and must stay inside the checkout).
fn expand_includes(text: &str, root: &Path, base: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        match line.trim_end().strip_prefix(":include ") {
            Some(file) => {
                let path = base.join(file.trim());
                let inside = path
                    .canonicalize()
                    .ok()
                    .zip(root.canonicalize().ok())
                    .is_some_and(|(p, r)| p.starts_with(r));
                match std::fs::read(&path) {
                    Ok(bytes) if inside => out.extend(
                        String::from_utf8_lossy(&bytes)
                            .lines()
                            .filter(|l| !l.starts_with(":include"))
                            .map(str::to_owned),
                    ),
                    _ => tracing::warn!(include = %file, "cannot read an included ignore file"),
                }
            }
            None => out.push(line.to_owned()),
        }
    }
    out
}

/// Every file under `root` (relative, `/`-separated, sorted), without `.git`; paths that are not
/// UTF-8 are returned apart, as they cannot be named to the engine or reported.
pub fn tree_files(root: &Path) -> std::io::Result<(Vec<String>, Vec<PathBuf>)> {
    let mut files = Vec::new();
    let mut not_utf8 = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let ty = entry.file_type()?;
            let path = entry.path();
            if ty.is_dir() {
                if entry.file_name() != ".git" {
                    stack.push(path);
                }
            } else if ty.is_file() {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                match rel.to_str() {
                    Some(s) => files.push(s.to_owned()),
                    None => not_utf8.push(rel.to_path_buf()),
                }
            }
        }
    }
    files.sort();
    Ok((files, not_utf8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        let (files, _) = tree_files(dir.path()).unwrap();
        (dir, files)
    }

    fn kept(filter: &PathFilter, files: &[String]) -> Vec<String> {
        filter.select(files, &mut IgnoreTally::default())
    }

    #[test]
    fn the_defaults_apply_only_without_a_root_file() {
        let (dir, files) = tree(&[
            ("src/a.py", ""),
            ("vendor/lib.py", ""),
            ("tests/t.py", ""),
            ("web/app.min.js", ""),
            ("x_test.go", ""),
        ]);
        let f = PathFilter::new(dir.path(), &files, &[]);
        assert_eq!(kept(&f, &files), vec!["src/a.py"]);
        let by = f.ignored("vendor/lib.py").unwrap();
        assert_eq!(
            (by.source.as_str(), by.pattern.as_str()),
            ("default", "vendor/")
        );

        let (dir, files) = tree(&[
            (".semgrepignore", "legacy/\n"),
            ("vendor/lib.py", ""),
            ("legacy/tool.py", ""),
        ]);
        let f = PathFilter::new(dir.path(), &files, &[]);
        assert_eq!(kept(&f, &files), vec![".semgrepignore", "vendor/lib.py"]);
    }

    #[test]
    fn gitignore_semantics_hold_across_nested_files() {
        let (dir, files) = tree(&[
            (
                ".semgrepignore",
                "e/\nf/*\n!f/keep.py\n*.gen.py\nsub/x.js\n",
            ),
            ("e/y.py", ""),
            ("f/x.py", ""),
            ("f/keep.py", ""),
            ("sub/.semgrepignore", "*.js\n!a.gen.py\n!x.js\n"),
            ("sub/a.js", ""),
            ("sub/a.gen.py", ""),
            ("sub/b.gen.py", ""),
            ("sub/x.js", ""),
            ("top.js", ""),
        ]);
        let f = PathFilter::new(dir.path(), &files, &[]);
        assert_eq!(
            kept(&f, &files),
            // A nested `!` cannot re-include what the root file excludes (`*.gen.py`,
            // `sub/x.js`); within one file, `!` re-includes (`f/keep.py`).
            vec![
                ".semgrepignore",
                "f/keep.py",
                "sub/.semgrepignore",
                "top.js"
            ]
        );
        // The rule that excluded a path names its file.
        assert_eq!(f.ignored("sub/a.js").unwrap().source, "sub/.semgrepignore");
        assert_eq!(f.ignored("sub/x.js").unwrap().source, ".semgrepignore");
    }

    #[test]
    fn project_patterns_come_first_and_includes_expand() {
        let (dir, files) = tree(&[
            (".semgrepignore", ":include extra-ignore\n!gen/keep.py\n"),
            ("extra-ignore", "gen/*\n"),
            ("gen/x.py", ""),
            ("gen/keep.py", ""),
            ("docs/a.py", ""),
        ]);
        let f = PathFilter::new(dir.path(), &files, &["docs/".to_owned()]);
        assert_eq!(
            kept(&f, &files),
            vec![".semgrepignore", "extra-ignore", "gen/keep.py"]
        );
        let mut tally = IgnoreTally::default();
        f.select(&files, &mut tally);
        let uses = tally.into_uses();
        assert_eq!(uses.len(), 2);
        assert!(uses
            .iter()
            .any(|u| u.source == "project" && u.pattern == "docs/" && u.files == 1));
        assert!(uses
            .iter()
            .any(|u| u.source == ".semgrepignore" && u.pattern == "gen/*" && u.files == 1));
    }

    #[test]
    fn project_patterns_are_checked() {
        assert!(check_pattern("vendor/").is_ok());
        assert!(check_pattern("**/*.min.js").is_ok());
        assert!(check_pattern("").is_err());
        assert!(check_pattern("# comment").is_err());
        assert!(check_pattern(":include x").is_err());
        assert!(check_pattern("a\nb").is_err());
        assert!(check_pattern("[z-a]").is_err());
        for line in DEFAULT_SEMGREPIGNORE.lines() {
            check_pattern(line).unwrap();
        }
    }
}
