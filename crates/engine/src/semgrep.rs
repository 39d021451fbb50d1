//! The Semgrep engine: runs the `semgrep` CLI on local rules and parses its JSON.
//!
//! Rule loading, not matching, dominates Semgrep's run time (domain.md §6), so:
//! - the native CLI path (`--experimental`) is used by default; a parity test on the project's
//!   fixtures checks it reports the same findings as the Python CLI;
//! - only the rule directories whose language occurs among the files to scan are loaded (the
//!   rule pack is laid out one directory per language; `secrets/` and unknown directories are
//!   always loaded);
//! - several roots (a diff scan's head files and base files) are scanned in one invocation;
//! - an org's own packs ([`PackFile`]) are loaded when a language they name occurs.
//!
//! Semgrep's OSS JSON hides the matched lines ("requires login"), so findings carry byte offsets
//! and the caller reads the text from the checkout.

use crate::rulepack::{self, PackRules};
use picket_core::protocol::SkipKind;
use picket_core::{Product, RuleId, Severity};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How to run Semgrep.
#[derive(Debug, Clone)]
pub struct SemgrepConfig {
    /// The `semgrep` executable.
    pub binary: PathBuf,
    /// The rule pack: one sub-directory per language (see crates/worker/rules/README.md).
    pub rules_dir: PathBuf,
    /// Parallel jobs; Semgrep does not read the container's CPU limit, so this is explicit.
    pub jobs: usize,
    /// Use the native CLI (`--experimental`).
    pub native: bool,
    /// Longest one invocation may run.
    pub timeout: Duration,
    /// The org's own rule packs for this scan, written out as files.
    pub packs: Vec<PackFile>,
    /// Largest file the engine scans, bytes (`--max-target-bytes`; Semgrep's default). The
    /// worker skips and reports larger files itself, so this is a backstop.
    pub max_target_bytes: u64,
}

/// Semgrep's default per-file limit, bytes (`semgrep scan --help`, `--max-target-bytes`).
pub const DEFAULT_MAX_TARGET_BYTES: u64 = 1_000_000;

/// One of an org's rule packs, written to a file, with the rules it holds.
#[derive(Debug, Clone)]
pub struct PackFile {
    pub path: PathBuf,
    pub rules: PackRules,
}

impl SemgrepConfig {
    /// `jobs` from the CPUs this process may use (std reads cgroup quotas).
    pub fn new(binary: PathBuf, rules_dir: PathBuf) -> Self {
        SemgrepConfig {
            binary,
            rules_dir,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            native: true,
            timeout: Duration::from_secs(30 * 60),
            packs: Vec::new(),
            max_target_bytes: DEFAULT_MAX_TARGET_BYTES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SemgrepError {
    #[error("cannot start semgrep ({binary}): {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("semgrep ran longer than {0:?}")]
    Timeout(Duration),
    #[error("semgrep failed with {status}: {stderr}")]
    Failed { status: String, stderr: String },
    #[error("semgrep printed output that is not its JSON format: {0}")]
    Output(String),
    #[error("semgrep reported a rule id Picket cannot use: {0}")]
    RuleId(String),
    #[error("cannot read the rule pack at {path}: {source}")]
    Rules {
        path: String,
        source: std::io::Error,
    },
    #[error("the rule file {path} is not a usable rule pack: {source}")]
    Pack {
        path: String,
        source: rulepack::PackError,
    },
}

impl SemgrepError {
    /// Stable error code for the scan's record.
    pub fn code(&self) -> &'static str {
        match self {
            SemgrepError::Timeout(_) => "engine_timeout",
            SemgrepError::Rules { .. } | SemgrepError::Pack { .. } => "rules_unreadable",
            _ => "engine_failed",
        }
    }
}

/// One match as Semgrep reports it, with its path relative to the root it was found under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineFinding {
    /// Index into the roots given to [`scan`].
    pub root: usize,
    pub rule: RuleId,
    pub path: String,
    pub start_line: u32,
    pub start_col: u32,
    pub start_offset: usize,
    pub end_line: u32,
    pub end_offset: usize,
    pub severity: Severity,
    pub product: Product,
    pub message: String,
}

/// A file the engine reported it could not read or parse, wholly or in part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSkip {
    /// Index into the roots given to [`scan`].
    pub root: usize,
    /// Relative to its root.
    pub path: String,
    pub kind: SkipKind,
    /// The engine's message, at most [`MAX_REASON`] characters.
    pub reason: String,
}

/// Longest skip reason kept, in characters.
pub const MAX_REASON: usize = 300;

/// What one invocation found, and which rules it ran.
#[derive(Debug, Clone, Default)]
pub struct EngineRun {
    pub findings: Vec<EngineFinding>,
    pub rules_run: BTreeSet<RuleId>,
    pub files_scanned: u64,
    /// Files the engine reported errors for; the rest of the scan is unaffected.
    pub skipped: Vec<EngineSkip>,
    /// The engine's version, as it reported it.
    pub version: Option<String>,
}

/// A directory to scan, and optionally which files in it (relative paths); `None` scans all.
#[derive(Debug, Clone)]
pub struct Root {
    pub dir: PathBuf,
    pub files: Option<Vec<String>>,
}

/// Rule directories for file extensions. A directory not named here is always loaded.
const LANGUAGE_DIRS: &[(&str, &[&str])] = &[
    ("python", &["py", "pyi"]),
    ("javascript", &["js", "jsx", "mjs", "cjs", "ts", "tsx"]),
    ("typescript", &["ts", "tsx"]),
    ("go", &["go"]),
    ("java", &["java"]),
    ("ruby", &["rb"]),
];

/// The rule directories to load for files with these extensions.
pub fn rule_dirs_for(
    rules_dir: &Path,
    extensions: &BTreeSet<String>,
) -> Result<Vec<PathBuf>, SemgrepError> {
    let unreadable = |source| SemgrepError::Rules {
        path: rules_dir.display().to_string(),
        source,
    };
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(rules_dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        if !entry.file_type().map_err(unreadable)?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted = match LANGUAGE_DIRS.iter().find(|(dir, _)| *dir == name) {
            Some((_, exts)) => exts.iter().any(|e| extensions.contains(*e)),
            None => true,
        };
        if wanted {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// File extensions (lowercase, without the dot) of the files under the roots.
pub fn extensions(roots: &[Root]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |p: &Path| {
        if let Some(ext) = p.extension() {
            out.insert(ext.to_string_lossy().to_lowercase());
        }
    };
    for root in roots {
        match &root.files {
            Some(files) => files.iter().for_each(|f| add(Path::new(f))),
            None => walk(&root.dir, &mut add),
        }
    }
    out
}

fn walk(dir: &Path, f: &mut impl FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() && entry.file_name() != ".git" => walk(&path, f),
            Ok(t) if t.is_file() => f(&path),
            _ => {}
        }
    }
}

#[derive(Deserialize)]
struct Output {
    results: Vec<RawResult>,
    #[serde(default)]
    paths: RawPaths,
    #[serde(default)]
    errors: Vec<RawError>,
    #[serde(default)]
    version: Option<String>,
}

/// One entry of the engine's `errors`: `type` is a string, or `[name, details]`.
#[derive(Deserialize)]
struct RawError {
    #[serde(rename = "type", default)]
    kind: serde_json::Value,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    level: Option<String>,
}

impl RawError {
    fn name(&self) -> &str {
        match &self.kind {
            serde_json::Value::String(s) => s,
            serde_json::Value::Array(a) => a.first().and_then(|v| v.as_str()).unwrap_or(""),
            _ => "",
        }
    }

    /// How the file fared, from the engine's error type (`semgrep_output_v1.atd`, `error_type`).
    fn skip_kind(&self) -> SkipKind {
        match self.name() {
            "PartialParsing" => SkipKind::PartlyParsed,
            "Syntax error"
            | "Lexical error"
            | "Parse error"
            | "Other syntax error"
            | "AST builder error"
            | "Invalid source code" => SkipKind::Unparsable,
            _ => SkipKind::EngineError,
        }
    }
}

#[derive(Deserialize, Default)]
struct RawPaths {
    #[serde(default)]
    scanned: Vec<String>,
}

#[derive(Deserialize)]
struct RawResult {
    check_id: String,
    path: String,
    start: RawPos,
    end: RawPos,
    extra: RawExtra,
}

#[derive(Deserialize)]
struct RawPos {
    line: u32,
    col: u32,
    offset: usize,
}

#[derive(Deserialize)]
struct RawExtra {
    message: String,
    severity: String,
    #[serde(default)]
    metadata: serde_json::Value,
}

fn severity_of(s: &str) -> Severity {
    match s {
        "ERROR" | "CRITICAL" | "HIGH" => Severity::High,
        "WARNING" | "MEDIUM" => Severity::Medium,
        "INFO" | "LOW" => Severity::Low,
        _ => Severity::Info,
    }
}

/// The only variables of this process's environment the engine inherits: where programs,
/// home and temporary files are, and the locale. Semgrep parses untrusted repository content,
/// so nothing else (a token, a database URL, a key) is ever in its reach.
pub const ENGINE_ENV: [&str; 7] = ["PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "LC_CTYPE", "TZ"];

/// The command every invocation shares: local rules only, no metrics, no version check, JSON,
/// and `--jobs` from the configuration, in an environment of its own ([`ENGINE_ENV`] and
/// Semgrep's own switches). Callers add `--config`s and targets.
pub(crate) fn command(cfg: &SemgrepConfig) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&cfg.binary);
    cmd.arg("scan");
    if cfg.native {
        cmd.arg("--experimental");
    }
    // Suppression comments are applied by Picket (`nosem`), which keeps suppressed findings.
    cmd.args([
        "--json",
        "--metrics=off",
        "--disable-version-check",
        "--quiet",
        "--no-git-ignore",
        "--disable-nosem",
    ])
    .arg(format!("--jobs={}", cfg.jobs.max(1)))
    .arg(format!("--max-target-bytes={}", cfg.max_target_bytes));
    cmd.env_clear()
        .envs(
            ENGINE_ENV
                .iter()
                .filter_map(|k| Some((*k, std::env::var_os(k)?))),
        )
        .env("SEMGREP_SEND_METRICS", "off")
        .env("SEMGREP_ENABLE_VERSION_CHECK", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Semgrep language names (and aliases) with the file extensions they scan. A pack naming a
/// language missing here (generic, regex, dockerfile, ...) is always loaded.
const LANGUAGE_EXTENSIONS: &[(&[&str], &[&str])] = &[
    (&["python", "py", "python3"], &["py", "pyi"]),
    (&["javascript", "js"], &["js", "jsx", "mjs", "cjs"]),
    (&["typescript", "ts"], &["ts", "tsx", "mts", "cts"]),
    (&["go", "golang"], &["go"]),
    (&["java"], &["java"]),
    (&["ruby", "rb"], &["rb"]),
    (&["kotlin", "kt"], &["kt", "kts"]),
    (&["scala"], &["scala"]),
    (&["csharp", "c#"], &["cs"]),
    (&["php"], &["php"]),
    (&["rust"], &["rs"]),
    (&["swift"], &["swift"]),
    (&["c"], &["c", "h"]),
    (&["cpp", "c++"], &["cpp", "cc", "cxx", "hpp", "hh", "h"]),
    (&["bash", "sh"], &["sh", "bash"]),
    (&["terraform", "hcl"], &["tf", "hcl"]),
    (&["yaml"], &["yaml", "yml"]),
    (&["json"], &["json"]),
];

/// Whether a pack naming these languages can match any file with these extensions.
pub fn pack_wanted(languages: &BTreeSet<String>, extensions: &BTreeSet<String>) -> bool {
    languages.iter().any(|lang| {
        match LANGUAGE_EXTENSIONS
            .iter()
            .find(|(names, _)| names.contains(&lang.as_str()))
        {
            Some((_, exts)) => exts.iter().any(|e| extensions.contains(*e)),
            None => true,
        }
    })
}

/// The rule ids in a rule directory's YAML files (Picket's pack: one directory per language).
pub fn rules_in_dir(dir: &Path) -> Result<BTreeSet<RuleId>, SemgrepError> {
    let unreadable = |source| SemgrepError::Rules {
        path: dir.display().to_string(),
        source,
    };
    let mut ids = BTreeSet::new();
    let mut files = Vec::new();
    walk(dir, &mut |p| {
        if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            files.push(p.to_path_buf());
        }
    });
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(unreadable)?;
        let rules = rulepack::parse(&text).map_err(|source| SemgrepError::Pack {
            path: file.display().to_string(),
            source,
        })?;
        ids.extend(rules.rules);
    }
    Ok(ids)
}

/// Runs Semgrep once over all `roots`, loading only the rules their files need.
pub async fn scan(cfg: &SemgrepConfig, roots: &[Root]) -> Result<EngineRun, SemgrepError> {
    let exts = extensions(roots);
    let dirs = rule_dirs_for(&cfg.rules_dir, &exts)?;
    let packs: Vec<&PackFile> = cfg
        .packs
        .iter()
        .filter(|p| pack_wanted(&p.rules.languages, &exts))
        .collect();
    let mut targets: Vec<PathBuf> = Vec::new();
    for root in roots {
        match &root.files {
            Some(files) => targets.extend(files.iter().map(|f| root.dir.join(f))),
            None => targets.push(root.dir.clone()),
        }
    }
    if (dirs.is_empty() && packs.is_empty()) || targets.is_empty() {
        return Ok(EngineRun::default());
    }
    // Every rule loaded ran, whether it matched or not: the control plane tells a fixed finding
    // (its rule ran) from a removed one (its rule did not) by this set.
    let mut rules_run = BTreeSet::new();
    for d in &dirs {
        rules_run.extend(rules_in_dir(d)?);
    }
    for p in &packs {
        rules_run.extend(p.rules.rules.iter().cloned());
    }
    let mut cmd = command(cfg);
    for d in &dirs {
        cmd.arg("--config").arg(d);
    }
    for p in &packs {
        cmd.arg("--config").arg(&p.path);
    }
    cmd.arg("--").args(&targets);
    let child = cmd.spawn().map_err(|source| SemgrepError::Spawn {
        binary: cfg.binary.display().to_string(),
        source,
    })?;
    let out = tokio::time::timeout(cfg.timeout, child.wait_with_output())
        .await
        .map_err(|_| SemgrepError::Timeout(cfg.timeout))?
        .map_err(|source| SemgrepError::Spawn {
            binary: cfg.binary.display().to_string(),
            source,
        })?;
    // Exit code 1 means "findings"; 0 none; anything else is a failure.
    if !matches!(out.status.code(), Some(0) | Some(1)) {
        return Err(SemgrepError::Failed {
            status: out.status.to_string(),
            stderr: tail(&String::from_utf8_lossy(&out.stderr), 20),
        });
    }
    let parsed = parse_output(&out.stdout)?;
    let mut run = EngineRun {
        files_scanned: parsed.paths.scanned.len() as u64,
        version: parsed.version.clone(),
        ..EngineRun::default()
    };
    for e in &parsed.errors {
        match e.path.as_deref().and_then(|p| locate(roots, p)) {
            Some((root, path)) => run.skipped.push(EngineSkip {
                root,
                path,
                kind: e.skip_kind(),
                reason: without_roots(&reason_of(e), roots),
            }),
            None => tracing::warn!(
                kind = e.name(),
                level = e.level.as_deref().unwrap_or(""),
                message = %reason_of(e),
                "the engine reported an error outside any file"
            ),
        }
    }
    let mut resolved: HashMap<String, RuleId> = HashMap::new();
    for r in parsed.results {
        let Some((root, rel)) = locate(roots, &r.path) else {
            return Err(SemgrepError::Output(format!(
                "result outside the scanned roots: {}",
                r.path
            )));
        };
        let rule = match resolved.get(&r.check_id) {
            Some(rule) => rule.clone(),
            None => {
                let rule = resolve_rule_id(&r.check_id, &rules_run)
                    .ok_or_else(|| SemgrepError::RuleId(r.check_id.clone()))?;
                resolved.insert(r.check_id.clone(), rule.clone());
                rule
            }
        };
        // Supply Chain findings come from lockfiles (picket-worker's supply_chain), never from
        // a rule: a rule's `product: supply_chain` is read as Code.
        let product = match r.extra.metadata.get("product").and_then(|p| p.as_str()) {
            Some("secrets") => Product::Secrets,
            _ => Product::Code,
        };
        run.findings.push(EngineFinding {
            root,
            rule,
            path: rel,
            start_line: r.start.line,
            start_col: r.start.col,
            start_offset: r.start.offset,
            end_line: r.end.line,
            end_offset: r.end.offset,
            severity: severity_of(&r.extra.severity),
            product,
            message: r.extra.message,
        });
    }
    run.rules_run = rules_run;
    Ok(run)
}

/// Parses the engine's JSON. The engine copies file content (a syntax error's offending text)
/// into its messages byte for byte, so the document may hold invalid UTF-8 inside strings: it is
/// decoded lossily (invalid bytes become U+FFFD), which cannot change the JSON's structure.
fn parse_output(stdout: &[u8]) -> Result<Output, SemgrepError> {
    let text = String::from_utf8_lossy(stdout);
    serde_json::from_str(&text).map_err(|e| SemgrepError::Output(e.to_string()))
}

/// The first line of an error's message, cut to [`MAX_REASON`] characters, without control
/// characters.
fn reason_of(e: &RawError) -> String {
    let msg = e.message.as_deref().unwrap_or(e.name());
    let mut out: String = msg
        .split('\n')
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON)
        .collect();
    if out.is_empty() {
        out = "the engine reported an error".to_owned();
    }
    out
}

/// `reason` without the roots' directories (temporary paths say nothing to a user) and
/// without the source text the engine quotes between backticks (it may hold a secret).
fn without_roots(reason: &str, roots: &[Root]) -> String {
    let mut out = reason.to_owned();
    for r in roots {
        out = out.replace(&format!("{}/", r.dir.display()), "");
    }
    let mut quoted = false;
    let mut cleaned = String::with_capacity(out.len());
    for c in out.chars() {
        if c == '`' {
            cleaned.push('`');
            if !quoted {
                cleaned.push('…');
            }
            quoted = !quoted;
        } else if !quoted {
            cleaned.push(c);
        }
    }
    cleaned
}

/// Semgrep prefixes rule ids with the path of the config they came from (e.g.
/// `rules.python.picket.python.sqli` for a rule in `rules/python/`), and that path may itself
/// hold anything, `picket` included. The rule is the longest loaded id that the reported id is,
/// or ends with after a `.`.
pub fn resolve_rule_id(check_id: &str, loaded: &BTreeSet<RuleId>) -> Option<RuleId> {
    loaded
        .iter()
        .filter(|id| {
            check_id == id.as_str()
                || check_id
                    .strip_suffix(id.as_str())
                    .is_some_and(|prefix| prefix.ends_with('.'))
        })
        .max_by_key(|id| id.as_str().len())
        .cloned()
}

/// Which root a reported path belongs to, and the path relative to it.
fn locate(roots: &[Root], reported: &str) -> Option<(usize, String)> {
    let p = Path::new(reported);
    roots.iter().enumerate().find_map(|(i, r)| {
        p.strip_prefix(&r.dir)
            .ok()
            .map(|rel| (i, rel.to_string_lossy().into_owned()))
    })
}

pub(crate) fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_ids_resolve_to_the_longest_loaded_id() {
        let loaded: BTreeSet<RuleId> = ["picket.python.sqli", "acme.rule", "rule", "x.acme.rule"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let resolve = |c: &str| resolve_rule_id(c, &loaded).map(|r| r.to_string());
        assert_eq!(
            resolve("rules.python.picket.python.sqli").as_deref(),
            Some("picket.python.sqli")
        );
        assert_eq!(
            resolve("picket.python.sqli").as_deref(),
            Some("picket.python.sqli")
        );
        assert_eq!(resolve("packs.acme.rule").as_deref(), Some("acme.rule"));
        assert_eq!(resolve("packs.x.acme.rule").as_deref(), Some("x.acme.rule"));
        assert_eq!(resolve("packs.rule").as_deref(), Some("rule"));
        assert_eq!(resolve("packs.notacme.rule").as_deref(), Some("rule"));
        assert_eq!(resolve("packs.other"), None);
        assert_eq!(resolve("xpicket.python.sqli"), None);
    }

    #[test]
    fn packs_load_only_for_their_languages() {
        let langs = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let exts = langs(&["py", "md"]);
        assert!(pack_wanted(&langs(&["python"]), &exts));
        assert!(pack_wanted(&langs(&["go", "py"]), &exts));
        assert!(!pack_wanted(&langs(&["go", "java"]), &exts));
        assert!(pack_wanted(&langs(&["generic"]), &exts));
        assert!(!pack_wanted(&langs(&["ts"]), &langs(&["js"])));
    }

    #[test]
    fn output_with_invalid_utf8_parses_and_errors_become_skips() {
        let mut doc =
            br#"{"version":"1.185.0","results":[],"paths":{"scanned":["/r/a.py"]},"errors":[
            {"code":3,"level":"warn","type":["PartialParsing",[]],"path":"/r/bad.py",
             "message":"Syntax error at line /r/bad.py:1:\n `x = (X` was unexpected"},
            {"code":3,"level":"warn","type":"Syntax error","path":"/r/s.py","message":"boom"},
            {"code":2,"level":"error","type":"Timeout","path":"/r/t.py"},
            {"code":2,"level":"error","type":"Rule parse error","message":"bad rule"}]}"#
                .to_vec();
        let x = doc.iter().position(|b| *b == b'X').unwrap();
        doc[x] = 0xff;
        let parsed = parse_output(&doc).unwrap();
        assert_eq!(parsed.version.as_deref(), Some("1.185.0"));
        let roots = [Root {
            dir: PathBuf::from("/r"),
            files: None,
        }];
        let kinds: Vec<_> = parsed.errors.iter().map(RawError::skip_kind).collect();
        assert_eq!(
            kinds,
            [
                SkipKind::PartlyParsed,
                SkipKind::Unparsable,
                SkipKind::EngineError,
                SkipKind::EngineError
            ]
        );
        let reason = without_roots(&reason_of(&parsed.errors[0]), &roots);
        assert_eq!(reason, "Syntax error at line bad.py:1:  `…` was unexpected");
        assert_eq!(reason_of(&parsed.errors[2]), "Timeout");
        assert!(parse_output(b"not json").is_err());
    }

    #[test]
    fn severities_map() {
        assert_eq!(severity_of("ERROR"), Severity::High);
        assert_eq!(severity_of("WARNING"), Severity::Medium);
        assert_eq!(severity_of("INFO"), Severity::Low);
        assert_eq!(severity_of("EXPERIMENT"), Severity::Info);
    }

    #[test]
    fn only_needed_language_dirs_are_loaded() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["python", "go", "secrets", "acme"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let exts: BTreeSet<String> = ["py".to_owned()].into();
        let dirs = rule_dirs_for(dir.path(), &exts).unwrap();
        let names: Vec<_> = dirs
            .iter()
            .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["acme", "python", "secrets"]);
    }
}
