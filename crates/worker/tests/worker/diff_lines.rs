//! The diff's commentable lines, on repositories built here, each case written down and every
//! result checked against the real `git diff -U3 <merge base> <head>` (the diff GitHub shows a
//! PR), including on randomized histories.

use picket_core::feedback::DiffLines;
use picket_test_support::{bare_repo, delete, file, git, link, run, Change, History};
use picket_worker::clone::{self, CloneLimits, Target};
use picket_worker::diff_lines::diff_lines;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A bare repository made from `history`, with its commits by mark.
struct Fixture {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    marks: HashMap<u32, String>,
}

impl Fixture {
    fn new(history: History) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let repo = bare_repo(dir.path(), "r.git", true);
        let marks = history.import(&repo);
        Fixture {
            _dir: dir,
            repo,
            marks,
        }
    }

    /// Picket's lines from `base` to `head` (marks).
    fn lines(&self, base: u32, head: u32) -> DiffLines {
        let repo = git2::Repository::open(&self.repo).unwrap();
        let oid = |m: u32| git2::Oid::from_str(&self.marks[&m]).unwrap();
        diff_lines(&repo, oid(base), oid(head)).unwrap()
    }

    /// Picket's lines, checked equal to git's.
    fn checked(&self, base: u32, head: u32) -> DiffLines {
        let mine = self.lines(base, head);
        let gits = git_lines(&self.repo, &self.marks[&base], &self.marks[&head]);
        assert_eq!(mine, gits, "libgit2 and git disagree");
        mine
    }
}

/// The commentable lines as the git CLI shows them: the changed head paths from
/// `--name-status` (deletions left out), each with the `+start,count` ranges of its hunks.
fn git_lines(repo: &Path, base: &str, head: &str) -> DiffLines {
    let mut lines = DiffLines::new();
    let status = run(git(repo).args([
        "-c",
        "core.quotePath=false",
        "diff",
        "--name-status",
        "-z",
        base,
        head,
    ]));
    let mut fields = status.split('\0').filter(|f| !f.is_empty());
    while let Some(code) = fields.next() {
        let first = fields.next().unwrap();
        let path = match code.chars().next().unwrap() {
            'R' | 'C' => fields.next().unwrap(),
            'D' => continue,
            _ => first,
        };
        lines.add_file(path);
    }

    let patch = run(git(repo).args([
        "-c",
        "core.quotePath=false",
        "diff",
        "-U3",
        "--no-color",
        "--no-ext-diff",
        base,
        head,
    ]));
    let mut current: Option<String> = None;
    for line in patch.lines() {
        if line.starts_with("diff --git ") {
            current = None;
        } else if let Some(path) = line.strip_prefix("+++ ") {
            // git appends a tab to names with a space in them.
            let path = path.trim_end_matches('\t');
            current = path.strip_prefix("b/").map(str::to_owned);
        } else if let (Some(path), Some(header)) = (&current, line.strip_prefix("@@ -")) {
            let new = header.split(' ').nth(1).unwrap().strip_prefix('+').unwrap();
            let (start, count) = match new.split_once(',') {
                Some((s, c)) => (s.parse::<u32>().unwrap(), c.parse::<u32>().unwrap()),
                None => (new.parse().unwrap(), 1),
            };
            if count > 0 {
                lines.add_hunk(path, start, start + count - 1);
            }
        }
    }
    lines
}

fn numbered(n: u32, tag: &str) -> String {
    (1..=n).map(|i| format!("{tag} line {i}\n")).collect()
}

fn hunks(lines: &DiffLines, path: &str) -> Vec<(u32, u32)> {
    lines
        .hunks(path)
        .unwrap_or_else(|| panic!("{path} is not in the diff"))
        .iter()
        .map(|h| (h.start, h.end))
        .collect()
}

#[test]
fn added_lines_come_with_three_lines_of_context() {
    let mut h = History::default();
    let base = h.commit("main", &[], &[file("a.txt", numbered(20, "a"))]);
    let mut lines: Vec<String> = numbered(20, "a").lines().map(str::to_owned).collect();
    lines.insert(10, "new one".into());
    lines.insert(11, "new two".into());
    let head = h.commit(
        "feature",
        &[base],
        &[file("a.txt", lines.join("\n") + "\n")],
    );
    let f = Fixture::new(h);
    let got = f.checked(base, head);
    // Context 8-10, added 11-12, context 13-15.
    assert_eq!(hunks(&got, "a.txt"), [(8, 15)]);
    assert!(got.is_commentable("a.txt", 11) && !got.is_commentable("a.txt", 16));
}

#[test]
fn a_deletion_leaves_only_context_lines_on_the_head_side() {
    let mut h = History::default();
    let base = h.commit("main", &[], &[file("a.txt", numbered(30, "a"))]);
    let kept: String = numbered(30, "a")
        .lines()
        .enumerate()
        .filter(|(i, _)| !(9..11).contains(i) && *i != 25)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let head = h.commit("feature", &[base], &[file("a.txt", kept)]);
    let f = Fixture::new(h);
    let got = f.checked(base, head);
    // Lines 10-11 gone: context 7-9 before and the old 12-14 (now 10-12) after; line 26 gone
    // (now between 23 and 24): context 21-23 and 24-26.
    assert_eq!(hunks(&got, "a.txt"), [(7, 12), (21, 26)]);
}

#[test]
fn renamed_files_are_keyed_by_their_head_path() {
    let mut h = History::default();
    let body = numbered(40, "r");
    let base = h.commit(
        "main",
        &[],
        &[
            file("old/name.py", &body),
            file("old/same.py", numbered(10, "s")),
        ],
    );
    let edited = body.replace("r line 20\n", "r line twenty\n");
    let head = h.commit(
        "feature",
        &[base],
        &[
            delete("old/name.py"),
            file("new/name.py", edited),
            delete("old/same.py"),
            file("new/same.py", numbered(10, "s")),
        ],
    );
    let f = Fixture::new(h);
    let got = f.checked(base, head);
    assert_eq!(hunks(&got, "new/name.py"), [(17, 23)]);
    // Renamed without an edit: in the diff, nothing to comment on.
    assert_eq!(hunks(&got, "new/same.py"), []);
    assert!(!got.contains_file("old/name.py") && !got.contains_file("old/same.py"));
}

#[test]
fn new_files_are_all_commentable_and_deleted_ones_are_absent() {
    let mut h = History::default();
    let base = h.commit("main", &[], &[file("gone.txt", numbered(5, "g"))]);
    let head = h.commit(
        "feature",
        &[base],
        &[
            delete("gone.txt"),
            file("dir with space/new é.txt", numbered(7, "n")),
            file("empty.txt", ""),
        ],
    );
    let f = Fixture::new(h);
    let got = f.checked(base, head);
    assert_eq!(hunks(&got, "dir with space/new é.txt"), [(1, 7)]);
    assert_eq!(hunks(&got, "empty.txt"), []);
    assert!(!got.contains_file("gone.txt"));
    assert_eq!(got.files().count(), 2);
}

#[test]
fn binary_files_have_no_lines() {
    let mut h = History::default();
    let base = h.commit(
        "main",
        &[],
        &[file("img.bin", b"\x89PNG\0\0\x01\nrest\n".as_slice())],
    );
    let head = h.commit(
        "feature",
        &[base],
        &[
            file("img.bin", b"\x89PNG\0\0\x02\nrest\nmore\n".as_slice()),
            file("new.bin", b"\0\0\0\n".as_slice()),
        ],
    );
    let f = Fixture::new(h);
    let got = f.checked(base, head);
    assert_eq!(hunks(&got, "img.bin"), []);
    assert_eq!(hunks(&got, "new.bin"), []);
}

#[test]
fn crlf_files_count_lines_like_git() {
    let crlf = |n: u32, changed: Option<u32>| -> String {
        (1..=n)
            .map(|i| {
                if Some(i) == changed {
                    format!("changed {i}\r\n")
                } else {
                    format!("line {i}\r\n")
                }
            })
            .collect()
    };
    let mut h = History::default();
    let base = h.commit(
        "main",
        &[],
        &[
            file("win.txt", crlf(20, None)),
            file("mixed.txt", "a\r\nb\nc\rd\n"),
        ],
    );
    let head = h.commit(
        "feature",
        &[base],
        &[
            file("win.txt", crlf(20, Some(12))),
            file("mixed.txt", "a\r\nb\nc\rD\nE\r\n"),
        ],
    );
    let f = Fixture::new(h);
    let got = f.checked(base, head);
    assert_eq!(hunks(&got, "win.txt"), [(9, 15)]);
    // A lone CR is not a line break: three lines, the third edited, one added.
    assert_eq!(hunks(&got, "mixed.txt"), [(1, 4)]);
}

#[test]
fn a_file_with_thousands_of_changed_lines_is_complete() {
    let mut h = History::default();
    let base = h.commit("main", &[], &[file("big.txt", numbered(3000, "old"))]);
    // Lines 501-2000 rewritten, and every 100th line after that.
    let new: String = (1..=3000)
        .map(|i| {
            if (501..=2000).contains(&i) || (i > 2000 && i % 100 == 0) {
                format!("new line {i}\n")
            } else {
                format!("old line {i}\n")
            }
        })
        .collect();
    let head = h.commit("feature", &[base], &[file("big.txt", new)]);
    let f = Fixture::new(h);
    let got = f.checked(base, head);
    let h = hunks(&got, "big.txt");
    assert_eq!(h[0], (498, 2003));
    assert_eq!(h.len(), 1 + 10);
    assert_eq!(h[1], (2097, 2103));
    assert!(got.lines("big.txt").len() > 1500);
}

#[test]
fn a_file_that_became_a_symlink_is_a_new_one_line_file() {
    let mut h = History::default();
    let base = h.commit(
        "main",
        &[],
        &[file("a", numbered(4, "a")), file("b", "x\n")],
    );
    let head = h.commit(
        "feature",
        &[base],
        &[link("a", "target/path"), file("b", "y\n")],
    );
    let f = Fixture::new(h);
    let got = f.checked(base, head);
    assert_eq!(hunks(&got, "a"), [(1, 1)]);
    assert_eq!(hunks(&got, "b"), [(1, 1)]);
}

#[tokio::test]
async fn the_checkout_of_a_diff_scan_gives_the_same_lines() {
    let mut h = History::default();
    let base = h.commit("main", &[], &[file("a.txt", numbered(20, "a"))]);
    h.commit("main", &[base], &[file("m.txt", "main moved on\n")]);
    let head = h.commit(
        "feature",
        &[base],
        &[file(
            "a.txt",
            numbered(20, "a").replace("a line 5\n", "five\n"),
        )],
    );
    let f = Fixture::new(h);
    let target = Target::Diff {
        head_ref: "feature".into(),
        head: None,
        base_ref: "main".into(),
        merge_base: None,
    };
    let limits = CloneLimits {
        max_bytes: 1 << 26,
        timeout: Duration::from_secs(60),
        allow_local: true,
    };
    let url = format!("file://{}", f.repo.display());
    let checkout = clone::clone(&url, None, &target, &limits).await.unwrap();
    assert_eq!(checkout.merge_base(), Some(f.marks[&base].as_str()));
    let got = checkout.diff_lines().unwrap();
    assert_eq!(got, f.checked(base, head));
    assert_eq!(hunks(&got, "a.txt"), [(2, 8)]);
    assert!(
        !got.contains_file("m.txt"),
        "the target's own changes are not the PR's"
    );
}

// ---- randomized histories ----

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Lines that repeat within and across files (blank lines, braces) so that diffs have the
/// ambiguous hunk boundaries git's indent heuristic decides; the rest are unique to their file,
/// so no two different files look alike to rename detection.
const COMMON: [&str; 6] = ["", "{", "}", "    return x;", "", "// --"];

fn random_line(rng: &mut Rng, tag: &str, n: &mut u32) -> String {
    if rng.chance(40) {
        COMMON[rng.below(COMMON.len())].to_owned()
    } else {
        *n += 1;
        let indent = "    ".repeat(rng.below(3));
        format!("{indent}{tag}_{n}();")
    }
}

struct RandomFile {
    lines: Vec<String>,
    crlf: bool,
    final_newline: bool,
}

impl RandomFile {
    fn content(&self) -> String {
        let eol = if self.crlf { "\r\n" } else { "\n" };
        let mut s = self.lines.join(eol);
        if self.final_newline && !self.lines.is_empty() {
            s.push_str(eol);
        }
        s
    }

    fn edit(&mut self, rng: &mut Rng, tag: &str, n: &mut u32) {
        for _ in 0..1 + rng.below(5) {
            let at = rng.below(self.lines.len() + 1);
            let del = rng.below(4).min(self.lines.len() - at);
            self.lines.drain(at..at + del);
            for k in 0..rng.below(5) {
                let line = random_line(rng, tag, n);
                self.lines.insert(at + k, line);
            }
        }
        if rng.chance(10) {
            self.final_newline = !self.final_newline;
        }
    }
}

fn random_history(seed: u64) -> (History, u32, u32) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut counter = 0;
    let mut files: Vec<(String, RandomFile)> = (0..12)
        .map(|i| {
            let tag = format!("f{i}");
            let len = rng.below(if i % 4 == 0 { 150 } else { 40 });
            let lines = (0..len)
                .map(|_| random_line(&mut rng, &tag, &mut counter))
                .collect();
            let crlf = rng.chance(20);
            let name = if i == 3 {
                format!("dir {i}/ü{i}.txt")
            } else {
                format!("src/f{i}.txt")
            };
            (
                name,
                RandomFile {
                    lines,
                    crlf,
                    final_newline: !rng.chance(10),
                },
            )
        })
        .collect();
    let mut h = History::default();
    let base_changes: Vec<Change> = files.iter().map(|(p, f)| file(p, f.content())).collect();
    let base = h.commit("main", &[], &base_changes);

    let mut changes = Vec::new();
    for (i, (path, f)) in files.iter_mut().enumerate() {
        let tag = format!("f{i}");
        match rng.below(10) {
            // Untouched.
            0 | 1 => {}
            // Deleted.
            2 => changes.push(delete(path)),
            // Renamed, with at most two edits to a long file.
            3 if f.lines.len() >= 40 => {
                for _ in 0..rng.below(3) {
                    let at = rng.below(f.lines.len());
                    f.lines[at] = format!("{tag}_renamed_{at}();");
                }
                changes.push(delete(path));
                changes.push(file(&format!("moved/{i}.txt"), f.content()));
            }
            // Edited.
            _ => {
                f.edit(&mut rng, &tag, &mut counter);
                changes.push(file(path, f.content()));
            }
        }
    }
    for i in 0..rng.below(3) {
        let tag = format!("new{i}");
        let lines = (0..rng.below(30))
            .map(|_| random_line(&mut rng, &tag, &mut counter))
            .collect();
        let f = RandomFile {
            lines,
            crlf: false,
            final_newline: true,
        };
        changes.push(file(&format!("added/{i}.txt"), f.content()));
    }
    // The target branch moves on too: its changes must not appear.
    h.commit(
        "main",
        &[base],
        &[file("src/f1.txt", "main's own change\n")],
    );
    let head = h.commit("feature", &[base], &changes);
    (h, base, head)
}

#[test]
fn randomized_histories_agree_with_git_diff() {
    let mut total_hunks = 0;
    for seed in 1..=40 {
        let (h, base, head) = random_history(seed);
        let f = Fixture::new(h);
        let got = f.checked(base, head);
        total_hunks += got.files().map(|(_, h)| h.len()).sum::<usize>();
    }
    // The histories are not trivial.
    assert!(total_hunks > 200, "{total_hunks}");
}
