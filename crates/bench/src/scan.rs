//! Scan benchmarks (issue 3 §8): Picket's worker against the `semgrep` CLI on the same checkout
//! with the same rules.
//!
//! The repository: the first `files` Python files of the installed Semgrep package's own
//! dependencies (real code, no network), committed to a local git repository; a small PR then
//! changes three files. The rules: Picket's pack copied `copies` times under distinct ids, the
//! few hundred rules real orgs run (rule loading is what dominates Semgrep's run time).

use anyhow::{bail, Context};
use picket_core::protocol::ScanSpec;
use picket_core::{ProjectId, ScanId, ScanKind};
use picket_worker::clone::CloneLimits;
use picket_worker::scan::{self, WorkerConfig};
use picket_worker::semgrep::SemgrepConfig;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) const PACK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../worker/rules");
pub(crate) const VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv");

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The pack (only its `languages` directories, unless that is empty), `copies` times, each
/// copy's ids suffixed so Semgrep loads them as distinct rules.
fn multiplied_rules(into: &Path, copies: usize, languages: &[String]) -> anyhow::Result<usize> {
    let mut n = 0;
    for lang in std::fs::read_dir(PACK)? {
        let lang = lang?;
        let wanted = languages.is_empty()
            || languages
                .iter()
                .any(|l| lang.file_name().to_str() == Some(l.as_str()));
        if !lang.file_type()?.is_dir() || !wanted {
            continue;
        }
        let dest = into.join(lang.file_name());
        std::fs::create_dir_all(&dest)?;
        for file in std::fs::read_dir(lang.path())? {
            let file = file?.path();
            if file.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&file)?;
            for copy in 0..copies {
                let renamed = text.replace("id: picket.", &format!("id: picket.c{copy}."));
                n += renamed.matches("id: picket.").count();
                let name = format!(
                    "{}-{copy}.yaml",
                    file.file_stem().unwrap_or_default().to_string_lossy()
                );
                std::fs::write(dest.join(name), renamed)?;
            }
        }
    }
    Ok(n)
}

/// A repository of `files` real Python files, with branch `feature` changing three of them.
fn repository(dir: &Path, files: usize) -> anyhow::Result<()> {
    let site = std::fs::read_dir(Path::new(VENV).join("lib"))?
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .context("no site-packages under .venv (run `make semgrep`)")?;
    let mut sources = Vec::new();
    collect_py(&site, &mut sources);
    sources.sort();
    if sources.len() < files {
        bail!("only {} Python files available", sources.len());
    }
    for src in &sources[..files] {
        let rel = src.strip_prefix(&site)?;
        let dest = dir.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap_or(dir))?;
        std::fs::copy(src, &dest)?;
    }
    // Committed, so the CLI runs scan the same files as Picket (which adds an empty one when a
    // repository has none) instead of skipping Semgrep's default ignore list.
    std::fs::write(dir.join(".semgrepignore"), "")?;
    git(dir, &["init", "-q", "-b", "main"])?;
    git(dir, &["config", "user.email", "bench@picket.invalid"])?;
    git(dir, &["config", "user.name", "bench"])?;
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "base"])?;
    git(dir, &["checkout", "-q", "-b", "feature"])?;
    for src in sources[..files].iter().step_by(files / 3).take(3) {
        let dest = dir.join(src.strip_prefix(&site)?);
        let mut text = std::fs::read_to_string(&dest).unwrap_or_default();
        text.push_str("\n\ndef picket_bench_added(expression):\n    return eval(expression)\n");
        std::fs::write(&dest, text)?;
    }
    git(dir, &["commit", "-q", "-am", "a small PR"])?;
    Ok(())
}

pub(crate) fn collect_py(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() && e.file_name() != "__pycache__" => collect_py(&p, out),
            Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == "py") => out.push(p),
            _ => {}
        }
    }
}

fn semgrep_cli(dir: &Path, rules: &Path, extra: &[&str]) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let out = Command::new(Path::new(VENV).join("bin/semgrep"))
        .args([
            "scan",
            "--json",
            "--metrics=off",
            "--disable-version-check",
            "--quiet",
        ])
        .arg(format!(
            "--jobs={}",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ))
        .arg("--config")
        .arg(rules)
        .args(extra)
        .current_dir(dir)
        .output()
        .context("running semgrep")?;
    let secs = started.elapsed().as_secs_f64();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("semgrep output: {}", String::from_utf8_lossy(&out.stderr)))?;
    Ok((secs, v["results"].as_array().map_or(0, Vec::len)))
}

fn spec(repo: &Path, kind: ScanKind) -> ScanSpec {
    ScanSpec {
        scan_id: ScanId::new(),
        attempt: 1,
        project_id: ProjectId::new(),
        kind,
        full_name: "bench/site-packages".into(),
        clone_url: format!("file://{}", repo.display()),
        git_ref: if kind == ScanKind::Full {
            "main".into()
        } else {
            "feature".into()
        },
        commit_sha: None,
        base_ref: (kind == ScanKind::Diff).then(|| "main".into()),
        base_sha: None,
        merge_base_sha: None,
        pr_number: (kind == ScanKind::Diff).then_some(1),
        products: vec![picket_core::Product::Code, picket_core::Product::Secrets],
        path_ignores: Vec::new(),
        inline_suppression: true,
        store_matched_lines: true,
        policy: Default::default(),
        open_finding_paths: vec![],
        rule_packs: vec![],
    }
}

pub async fn scan_bench(files: usize, copies: usize, languages: &[String]) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let rules = work.path().join("rules");
    let n_rules = multiplied_rules(&rules, copies, languages)?;
    if n_rules == 0 {
        bail!("no rules: the pack has no directory among {languages:?}");
    }
    let repo = work.path().join("repo");
    std::fs::create_dir_all(&repo)?;
    repository(&repo, files)?;
    let cfg = WorkerConfig {
        semgrep: SemgrepConfig::new(Path::new(VENV).join("bin/semgrep"), rules.clone()),
        clone_limits: CloneLimits {
            max_bytes: 1 << 32,
            timeout: Duration::from_secs(600),
            allow_local: true,
        },
    };

    // Full scan of main.
    git(&repo, &["checkout", "-q", "main"])?;
    let started = Instant::now();
    let full = scan::run(&spec(&repo, ScanKind::Full), None, &cfg).await?;
    let picket_full = started.elapsed().as_secs_f64();
    let (default_full, default_n) = semgrep_cli(&repo, &rules, &[])?;
    let (native_full, native_n) = semgrep_cli(&repo, &rules, &["--experimental"])?;

    // Diff scan of the PR against main.
    git(&repo, &["checkout", "-q", "feature"])?;
    let merge_base = git(&repo, &["merge-base", "feature", "main"])?;
    let started = Instant::now();
    let diff = scan::run(&spec(&repo, ScanKind::Diff), None, &cfg).await?;
    let picket_diff = started.elapsed().as_secs_f64();
    let (baseline_diff, baseline_n) =
        semgrep_cli(&repo, &rules, &["--baseline-commit", &merge_base])?;

    println!("### Scans: {files} real Python files, {n_rules} rules (Picket's pack × {copies})\n");
    println!("| scan | runner | seconds | findings | Picket / runner |");
    println!("|---|---|---:|---:|---:|");
    println!("| full | Picket end to end (clone + native engine + identities) | {picket_full:.2} | {} | |", full.findings.len());
    println!("| full | `semgrep scan` (default CLI) | {default_full:.2} | {default_n} | **{:.2}** (goal ≤ 0.25) |", picket_full / default_full);
    println!("| full | `semgrep scan --experimental` (bare native CLI) | {native_full:.2} | {native_n} | **{:.2}** (goal ≤ 1.1) |", picket_full / native_full);
    println!(
        "| diff (3 files changed) | Picket end to end | {picket_diff:.2} | {} new | |",
        diff.findings.len()
    );
    println!("| diff (3 files changed) | `semgrep scan --baseline-commit` | {baseline_diff:.2} | {baseline_n} | **{:.2}** (goal ≤ 0.2) |", picket_diff / baseline_diff);
    let steps: Vec<String> = full
        .trail
        .steps
        .iter()
        .chain(&diff.trail.steps)
        .map(|s| format!("{} {} ms", s.step, s.millis))
        .collect();
    println!("\nPicket's steps (full, then diff): {}\n", steps.join(", "));
    Ok(())
}
