//! Repositories built by tests: a [`History`] is a `git fast-import` stream under construction
//! (commits with marks, files, symlinks, deletions, annotated tags), imported into a bare
//! repository made by [`bare_repo`]. Every `git` run here ignores the user's and the system's
//! configuration.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A `git` command isolated from the user's and the system's configuration.
pub fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE");
    cmd
}

/// Runs `cmd` to completion and returns its stdout; panics with its stderr when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn git");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A change inside one fast-import commit.
#[derive(Debug, Clone)]
pub enum Change {
    File(String, Vec<u8>),
    Link(String, String),
    Delete(String),
}

pub fn file(path: &str, content: impl AsRef<[u8]>) -> Change {
    Change::File(path.to_owned(), content.as_ref().to_vec())
}

pub fn link(path: &str, target: &str) -> Change {
    Change::Link(path.to_owned(), target.to_owned())
}

pub fn delete(path: &str) -> Change {
    Change::Delete(path.to_owned())
}

/// A fast-import stream under construction; each commit gets a mark and a distinct time.
#[derive(Debug, Default)]
pub struct History {
    stream: Vec<u8>,
    next_mark: u32,
}

impl History {
    pub fn commit(&mut self, branch: &str, parents: &[u32], changes: &[Change]) -> u32 {
        self.next_mark += 1;
        let mark = self.next_mark;
        let time = 1_700_000_000 + u64::from(mark) * 60;
        let msg = format!("commit {mark}");
        let s = &mut self.stream;
        writeln!(s, "commit refs/heads/{branch}").unwrap();
        writeln!(s, "mark :{mark}").unwrap();
        writeln!(s, "committer Test <test@example.com> {time} +0000").unwrap();
        writeln!(s, "data {}\n{msg}", msg.len()).unwrap();
        if let Some((first, rest)) = parents.split_first() {
            writeln!(s, "from :{first}").unwrap();
            for p in rest {
                writeln!(s, "merge :{p}").unwrap();
            }
        }
        for change in changes {
            match change {
                Change::File(path, content) => {
                    writeln!(s, "M 100644 inline {path}\ndata {}", content.len()).unwrap();
                    s.extend_from_slice(content);
                    s.push(b'\n');
                }
                Change::Link(path, target) => {
                    writeln!(s, "M 120000 inline {path}\ndata {}\n{target}", target.len()).unwrap();
                }
                Change::Delete(path) => writeln!(s, "D {path}").unwrap(),
            }
        }
        s.push(b'\n');
        mark
    }

    /// An annotated tag `refs/tags/{name}` on the commit `mark`.
    pub fn tag(&mut self, name: &str, mark: u32) {
        let s = &mut self.stream;
        writeln!(s, "tag {name}\nfrom :{mark}").unwrap();
        writeln!(
            s,
            "tagger Test <test@example.com> 1700000000 +0000\ndata 7\nrelease"
        )
        .unwrap();
    }

    /// `n` commits in a row on `branch`, each changing one line of one of 20 files.
    pub fn linear(&mut self, branch: &str, parent: Option<u32>, n: usize) -> Vec<u32> {
        let mut marks = Vec::with_capacity(n);
        let mut last = parent;
        for i in 0..n {
            let mark_guess = self.next_mark + 1;
            let path = format!("src/{branch}/f{}.txt", i % 20);
            let content = format!("line {mark_guess} of {path}\n").repeat(4);
            let parents: Vec<u32> = last.into_iter().collect();
            let m = self.commit(branch, &parents, &[file(&path, content)]);
            marks.push(m);
            last = Some(m);
        }
        marks
    }

    /// Imports into the bare repository `repo`; returns mark → SHA.
    pub fn import(self, repo: &Path) -> HashMap<u32, String> {
        let marks_file = repo.join("picket-test-marks");
        let mut child = git(repo)
            .args(["fast-import", "--quiet"])
            .arg(format!("--export-marks={}", marks_file.display()))
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn fast-import");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&self.stream)
            .expect("write stream");
        assert!(child.wait().expect("fast-import").success());
        let text = std::fs::read_to_string(&marks_file).expect("marks");
        std::fs::remove_file(&marks_file).expect("remove marks");
        text.lines()
            .map(|line| {
                let (mark, sha) = line.split_once(' ').expect("mark line");
                (
                    mark.trim_start_matches(':').parse().expect("mark"),
                    sha.to_owned(),
                )
            })
            .collect()
    }
}

/// Creates a bare repository `name` under `root`. `allow_sha`: whether upload-pack serves
/// reachable commits asked for by SHA (`uploadpack.allowReachableSHA1InWant`).
pub fn bare_repo(root: &Path, name: &str, allow_sha: bool) -> PathBuf {
    let path = root.join(name);
    run(git(root).args(["init", "--quiet", "--bare", "--initial-branch=main", name]));
    run(git(&path).args([
        "config",
        "uploadpack.allowReachableSHA1InWant",
        if allow_sha { "true" } else { "false" },
    ]));
    path
}

/// `n` pseudo-random (incompressible) bytes.
pub fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}
