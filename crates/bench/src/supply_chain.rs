//! Supply Chain in a scan, end to end (issue 12 §5): a repository with several lockfiles of
//! different formats, scanned by the worker (`picket_worker::scan::run_with`) with the real API
//! serving the advisories (`POST /api/v1/worker/scan/advisories`, per-scan token) from a
//! database the advisory data was imported into.
//!
//! - **Advisories**: each data folder imported with `picket_scheduler::advisories::import_path`
//!   (what `picket advisories import <dir>` runs) into a fresh database.
//! - **The repository** (built with `git fast-import`, cloned by the worker from `file://` as
//!   in the `scan` benchmark): a monorepo whose lockfiles hold every package name the imported
//!   records name (up to `packages`), each at a version the records name, alternately the
//!   newest one some record affects and the newest one none does, spread over the lockfiles of
//!   its ecosystem (crates in `Cargo.lock`, Go modules over two `go.mod`, PyPI projects over a
//!   `poetry.lock` and a pip-compile `requirements.txt`), plus real packages that no pick put
//!   there: the registry crates of this workspace's own `Cargo.lock` (its entries verbatim:
//!   versions, checksums, dependency lists) and the Python packages installed in `.venv`
//!   (another `requirements.txt`); and `files` real Python files (`.venv`'s site-packages, as
//!   the `scan` benchmark) beside small Go and Rust sources. Three PRs on `main`: `pr-vuln`
//!   upgrades one package of one lockfile from a version no record affects to the least
//!   release above it that a record does; `pr-fix` upgrades one package from a version a record
//!   affects to the least release above it that none does (a security update); `pr-code` edits
//!   three Python files and no lockfile.
//! - **Scans**, each a scan row claimed as the scheduler does, its per-scan token minted, the
//!   spec read from the API (`GET /api/v1/worker/scan`), `running` reported, `run_with` timed,
//!   `reporting` reported and the results uploaded (`POST /api/v1/worker/scan/results`, timed
//!   apart): a full scan of `main` with the spec's products (Code, Supply Chain, Secrets), the
//!   same with Code and Secrets only, and a diff scan of each PR; `runs` times each,
//!   interleaved. A layer around the API router times each advisory query on the server and
//!   counts its answer's bytes.
//!
//! The run fails if the full scan misses a package built at an affected version (packages the
//! trail lists as not checkable aside), if `pr-vuln` brings no new finding, if `pr-fix` brings
//! one or fixes none, or if the PR that touches no lockfile asks for advisories.

use crate::advisories::{self, Named};
use crate::scan::{collect_py, PACK, VENV};
use crate::{bench_db, median, org_and_project, start_api_with, with_bench_db};
use anyhow::{ensure, Context};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use picket_advisory::Version;
use picket_core::protocol::{ScanResults, WorkerProgress};
use picket_core::{Ecosystem, OrgId, Product, ProjectId, ScanKind, ScanTrigger};
use picket_db::crypto::CredentialCipher;
use picket_db::scans::{self, NewScan};
use picket_db::{queue, Db};
use picket_test_support::{bare_repo, file, Change, History};
use picket_worker::client::ApiClient;
use picket_worker::clone::CloneLimits;
use picket_worker::scan::{self as worker_scan, WorkerConfig};
use picket_worker::semgrep::SemgrepConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The advisory query's route, whose calls the API layer times.
const ADVISORY_ROUTE: &str = "/api/v1/worker/scan/advisories";

pub async fn supply_chain_bench(
    admin_url: &str,
    data: &[PathBuf],
    packages: usize,
    files: usize,
    runs: usize,
) -> anyhow::Result<()> {
    let runs = runs.max(1);
    let data = advisories::data_folders(data)?;
    with_bench_db(admin_url, "supply_chain", |url| async move {
        let db = bench_db(&url, 8).await?;
        println!("## Supply Chain: a full scan end to end, several lockfiles\n");
        println!(
            "Started {} UTC, load {}.\n",
            advisories::now_utc(),
            advisories::load()
        );
        let (records, written, secs) = advisories::import_all(&db, &data).await?;
        ensure!(written.inserted > 0, "the import inserted nothing");
        println!(
            "Advisories: {records} records from {} folder(s) imported in {secs:.2} s ({} inserted).\n",
            data.len(),
            written.inserted
        );
        let work = tempfile::tempdir()?;
        let repo = Monorepo::build(&db, packages, files).await?;
        let bare = repo.import(work.path())?;
        repo.describe();
        measure(&db, &repo, &bare, runs).await?;
        println!(
            "\nEnded {} UTC, load {}.",
            advisories::now_utc(),
            advisories::load()
        );
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// The repository
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Cargo,
    GoMod,
    Poetry,
    Requirements,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Cargo => "Cargo.lock",
            Format::GoMod => "go.mod",
            Format::Poetry => "poetry.lock",
            Format::Requirements => "requirements.txt (pip-compile)",
        }
    }
}

/// One package of a lockfile.
#[derive(Debug, Clone)]
struct Entry {
    /// The name as the lockfile writes it.
    raw: String,
    /// As the ecosystem normalises it.
    name: String,
    version: String,
    direct: bool,
    /// Built at a version a record affects.
    meant_affected: bool,
    /// A real `Cargo.lock` entry, written as it is.
    verbatim: Option<String>,
}

#[derive(Debug, Clone)]
struct Lockfile {
    path: String,
    format: Format,
    /// The project it locks (crate, Go module, Python project).
    project: String,
    entries: Vec<Entry>,
}

/// A PR that bumps one package of one lockfile.
#[derive(Debug, Clone)]
struct Bump {
    lockfile: usize,
    entry: usize,
    to: String,
}

/// Source files: (path, content).
type Sources = Vec<(String, Vec<u8>)>;

struct Monorepo {
    lockfiles: Vec<Lockfile>,
    sources: Sources,
    /// The three Python files the code PR edits.
    edited: Vec<String>,
    /// Into a version a record affects (`pr-vuln`), and out of one (`pr-fix`).
    vuln: Bump,
    fix: Bump,
}

/// FNV-1a of `s`.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A deterministic hex string of `len` digits, for checksums and hashes.
fn hex(seed: &str, len: usize) -> String {
    // FNV-1a, then xorshift for the digits.
    let mut h = fnv(seed);
    let mut out = String::with_capacity(len);
    while out.len() < len {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        let _ = write!(out, "{h:016x}");
    }
    out.truncate(len);
    out
}

/// A version as a go.mod writes it: `v`, and `+incompatible` for a major version above 1 of a
/// module whose path has no `/vN`.
fn go_version(path: &str, version: &str) -> String {
    let v = if version.starts_with('v') {
        version.to_owned()
    } else {
        format!("v{version}")
    };
    let major: u64 = v[1..]
        .split(['.', '-', '+'])
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let suffixed = path
        .rsplit('/')
        .next()
        .is_some_and(|last| last == format!("v{major}"))
        || path.starts_with("gopkg.in/");
    if major >= 2 && !suffixed && !v.contains('+') {
        format!("{v}+incompatible")
    } else {
        v
    }
}

/// The TOML basic string of `s`.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Lockfile {
    fn render(&self) -> String {
        match self.format {
            Format::Cargo => self.cargo(),
            Format::GoMod => self.go_mod(),
            Format::Poetry => self.poetry(),
            Format::Requirements => self.requirements(),
        }
    }

    /// Cargo 1.78+'s `Cargo.lock` (version 4): the workspace's members first in name order
    /// with everything else, each `[[package]]` sorted by name and version.
    fn cargo(&self) -> String {
        let mut blocks: Vec<(String, String, String)> = Vec::new();
        let direct: Vec<&str> = self
            .entries
            .iter()
            .filter(|e| e.direct)
            .map(|e| e.raw.as_str())
            .collect();
        let mut member = format!(
            "[[package]]\nname = {}\nversion = \"0.1.0\"\ndependencies = [\n",
            toml_str(&self.project)
        );
        for d in &direct {
            let _ = writeln!(member, " {},", toml_str(d));
        }
        member.push_str("]\n");
        blocks.push((self.project.clone(), "0.1.0".into(), member));
        for e in &self.entries {
            let text = match &e.verbatim {
                Some(v) => v.clone(),
                None => format!(
                    "[[package]]\nname = {}\nversion = {}\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{}\"\n",
                    toml_str(&e.raw),
                    toml_str(&e.version),
                    hex(&format!("crate {} {}", e.raw, e.version), 64)
                ),
            };
            blocks.push((e.raw.clone(), e.version.clone(), text));
        }
        blocks.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let mut out = String::from(
            "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n",
        );
        for (_, _, text) in blocks {
            out.push('\n');
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    /// A go.mod as `go mod tidy` leaves it since Go 1.17: the direct requirements, then the
    /// indirect ones marked `// indirect`.
    fn go_mod(&self) -> String {
        let mut out = format!(
            "module {}\n\ngo 1.22.1\n\ntoolchain go1.23.4\n",
            self.project
        );
        for direct in [true, false] {
            let mut entries: Vec<&Entry> =
                self.entries.iter().filter(|e| e.direct == direct).collect();
            entries.sort_by(|a, b| a.raw.cmp(&b.raw));
            out.push_str("\nrequire (\n");
            for e in entries {
                let _ = write!(out, "\t{} {}", e.raw, go_version(&e.raw, &e.version));
                out.push_str(if direct { "\n" } else { " // indirect\n" });
            }
            out.push_str(")\n");
        }
        out
    }

    /// Poetry 2's `poetry.lock` (lock-version 2.1): a wheel and an sdist per package, groups.
    fn poetry(&self) -> String {
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = String::from(
            "# This file is automatically @generated by Poetry 2.5.1 and should not be changed by hand.\n",
        );
        for (i, e) in entries.iter().enumerate() {
            let file_name = e.name.replace('-', "_");
            let group = if i % 5 == 4 { "dev" } else { "main" };
            let _ = write!(
                out,
                "\n[[package]]\nname = {}\nversion = {}\ndescription = {}\noptional = false\npython-versions = \">=3.8\"\ngroups = [\"{group}\"]\nfiles = [\n    {{file = \"{file_name}-{v}-py3-none-any.whl\", hash = \"sha256:{}\"}},\n    {{file = \"{file_name}-{v}.tar.gz\", hash = \"sha256:{}\"}},\n]\n",
                toml_str(&e.raw),
                toml_str(&e.version),
                toml_str(&format!("The {} package.", e.raw)),
                hex(&format!("whl {} {}", e.name, e.version), 64),
                hex(&format!("sdist {} {}", e.name, e.version), 64),
                v = e.version,
            );
            if let Some(dep) = entries.get(i + 1).filter(|_| i % 3 == 0) {
                let _ = write!(
                    out,
                    "\n[package.dependencies]\n{} = \">={}\"\n",
                    dep.name, dep.version
                );
            }
        }
        let _ = write!(
            out,
            "\n[metadata]\nlock-version = \"2.1\"\npython-versions = \">=3.11,<4.0\"\ncontent-hash = \"{}\"\n",
            hex(&self.path, 64)
        );
        out
    }

    /// `pip-compile --generate-hashes` output: two hashes per pin, `# via` annotations naming
    /// the input file for direct requirements.
    fn requirements(&self) -> String {
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = String::from(
            "#\n# This file is autogenerated by pip-compile with Python 3.11\n# by the following command:\n#\n#    pip-compile --generate-hashes requirements.in\n#\n",
        );
        let mut parent = "requests";
        for e in entries {
            let _ = write!(
                out,
                "{}=={} \\\n    --hash=sha256:{} \\\n    --hash=sha256:{}\n",
                e.raw,
                e.version,
                hex(&format!("a {} {}", e.name, e.version), 64),
                hex(&format!("b {} {}", e.name, e.version), 64),
            );
            if e.direct {
                out.push_str("    # via -r requirements.in\n");
            } else {
                let _ = writeln!(out, "    # via {parent}");
            }
            parent = &e.raw;
        }
        out
    }
}

/// The registry crates of this workspace's `Cargo.lock`: (name, version, entry text).
fn workspace_crates() -> anyhow::Result<Vec<(String, String, String)>> {
    let path = advisories::repo_root().join("Cargo.lock");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for block in text.split("\n[[package]]\n").skip(1) {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|r| r.strip_prefix(" = \""))
                    .and_then(|r| r.strip_suffix('"'))
                    .map(str::to_owned)
            })
        };
        let (Some(name), Some(version), Some(source)) =
            (field("name"), field("version"), field("source"))
        else {
            continue;
        };
        if !source.starts_with("registry+") {
            continue;
        }
        out.push((name, version, format!("[[package]]\n{}", block.trim_end())));
    }
    Ok(out)
}

/// The Python packages installed in `.venv`: (name, version) from each `*.dist-info`.
fn venv_packages() -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for lib in
        std::fs::read_dir(Path::new(VENV).join("lib")).context("no .venv (run `make semgrep`)")?
    {
        let site = lib?.path().join("site-packages");
        let Ok(entries) = std::fs::read_dir(&site) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some((n, v)) = name
                .strip_suffix(".dist-info")
                .and_then(|s| s.rsplit_once('-'))
            {
                out.push((n.to_owned(), v.to_owned()));
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Monorepo {
    async fn build(db: &Db, packages: usize, files: usize) -> anyhow::Result<Monorepo> {
        let named = advisories::named_packages(db).await?;
        // Go's own toolchain and standard library are named too; a go.mod never requires them.
        let names: Vec<(&(Ecosystem, String), &Named)> = named
            .iter()
            .filter(|((e, n), _)| *e != Ecosystem::Go || n.contains('/'))
            .collect();
        ensure!(!names.is_empty(), "the imported data names no package");
        let stride = (names.len() as f64 / packages.max(1) as f64).max(1.0);
        let mut lockfiles = vec![
            Lockfile {
                path: "Cargo.lock".into(),
                format: Format::Cargo,
                project: "shop-server".into(),
                entries: Vec::new(),
            },
            Lockfile {
                path: "services/gateway/go.mod".into(),
                format: Format::GoMod,
                project: "github.com/acme-shop/gateway".into(),
                entries: Vec::new(),
            },
            Lockfile {
                path: "services/ingest/go.mod".into(),
                format: Format::GoMod,
                project: "github.com/acme-shop/ingest".into(),
                entries: Vec::new(),
            },
            Lockfile {
                path: "ml/poetry.lock".into(),
                format: Format::Poetry,
                project: "shop-ml".into(),
                entries: Vec::new(),
            },
            Lockfile {
                path: "services/etl/requirements.txt".into(),
                format: Format::Requirements,
                project: "etl".into(),
                entries: Vec::new(),
            },
            Lockfile {
                path: "tools/requirements.txt".into(),
                format: Format::Requirements,
                project: "tools".into(),
                entries: Vec::new(),
            },
        ];
        let mut picked = 0usize;
        let mut k = 0usize;
        while picked < packages {
            let at = (k as f64 * stride) as usize;
            k += 1;
            let Some(((ecosystem, name), n)) = names.get(at) else {
                break;
            };
            let want_affected = picked.is_multiple_of(2);
            let Some(pick) = n.newest(name, want_affected) else {
                continue;
            };
            // Go modules and PyPI projects go to one of their two lockfiles by their name's hash.
            let other = (fnv(name) % 2) as usize;
            let slot = match ecosystem {
                Ecosystem::CratesIo => 0,
                Ecosystem::Go => 1 + other,
                Ecosystem::PyPi => 3 + other,
                _ => continue,
            };
            picked += 1;
            let lock = &mut lockfiles[slot];
            lock.entries.push(Entry {
                raw: n.raw.clone(),
                name: name.clone(),
                version: pick.as_str().to_owned(),
                direct: lock.entries.len() % 4 == 0,
                meant_affected: n.affects(name, pick),
                verbatim: None,
            });
        }
        // Real packages besides: this workspace's crates and `.venv`'s Python packages.
        let in_cargo: BTreeSet<String> = lockfiles[0]
            .entries
            .iter()
            .map(|e| e.name.clone())
            .collect();
        let real_crates = workspace_crates()?;
        // A name the picks hold is left out, so every dependency list names one version.
        let clash: BTreeSet<String> = real_crates
            .iter()
            .map(|(n, _, _)| Ecosystem::CratesIo.normalize(n))
            .filter(|n| in_cargo.contains(n))
            .collect();
        lockfiles[0].entries.retain(|e| !clash.contains(&e.name));
        for (i, (name, version, text)) in real_crates.into_iter().enumerate() {
            lockfiles[0].entries.push(Entry {
                name: Ecosystem::CratesIo.normalize(&name),
                raw: name,
                version,
                direct: i % 8 == 0,
                meant_affected: false,
                verbatim: Some(text),
            });
        }
        for (i, (name, version)) in venv_packages()?.into_iter().enumerate() {
            lockfiles[5].entries.push(Entry {
                name: Ecosystem::PyPi.normalize(&name),
                raw: name,
                version,
                direct: i % 3 == 0,
                meant_affected: false,
                verbatim: None,
            });
        }
        lockfiles.retain(|l| !l.entries.is_empty());
        let vuln = choose_bump(&lockfiles, &named, true)?;
        let fix = choose_bump(&lockfiles, &named, false)?;
        let (sources, edited) = sources(files)?;
        Ok(Monorepo {
            lockfiles,
            sources,
            edited,
            vuln,
            fix,
        })
    }

    /// `bump`'s lockfile, bumped.
    fn bumped(&self, bump: &Bump) -> Change {
        let mut l = self.lockfiles[bump.lockfile].clone();
        l.entries[bump.entry].version = bump.to.clone();
        l.entries[bump.entry].verbatim = None;
        file(&l.path, l.render())
    }

    /// Imports `main`, `pr-vuln`, `pr-fix` and `pr-code` into a bare repository under `root`.
    fn import(&self, root: &Path) -> anyhow::Result<PathBuf> {
        let started = Instant::now();
        let mut changes: Vec<Change> = self
            .lockfiles
            .iter()
            .map(|l| file(&l.path, l.render()))
            .collect();
        changes.extend(self.sources.iter().map(|(p, c)| file(p, c)));
        changes.extend(manifests());
        let mut h = History::default();
        let main = h.commit("main", &[], &changes);
        h.commit("pr-vuln", &[main], &[self.bumped(&self.vuln)]);
        h.commit("pr-fix", &[main], &[self.bumped(&self.fix)]);
        let edits: Vec<Change> = self
            .edited
            .iter()
            .map(|p| {
                let (_, c) = self
                    .sources
                    .iter()
                    .find(|(q, _)| q == p)
                    .expect("an edited file is a source");
                let mut text = c.clone();
                text.extend_from_slice(
                    b"\n\ndef picket_bench_added(expression):\n    return eval(expression)\n",
                );
                file(p, text)
            })
            .collect();
        h.commit("pr-code", &[main], &edits);
        let bare = bare_repo(root, "shop.git", true);
        h.import(&bare);
        println!(
            "Repository built with `git fast-import` in {:.1} s.\n",
            started.elapsed().as_secs_f64()
        );
        Ok(bare)
    }

    fn describe(&self) {
        println!("| lockfile | format | packages | at an affected version (meant) | bytes |");
        println!("|---|---|---:|---:|---:|");
        let mut total = (0, 0, 0);
        for l in &self.lockfiles {
            let affected = l.entries.iter().filter(|e| e.meant_affected).count();
            let bytes = l.render().len();
            println!(
                "| `{}` | {} | {} | {affected} | {bytes} |",
                l.path,
                l.format.name(),
                l.entries.len()
            );
            total.0 += l.entries.len();
            total.1 += affected;
            total.2 += bytes;
        }
        println!(
            "| **all** | | **{}** | {} | {} |\n",
            total.0, total.1, total.2
        );
        let bump = |b: &Bump| {
            let l = &self.lockfiles[b.lockfile];
            let e = &l.entries[b.entry];
            format!("`{}` {} → {} in `{}`", e.raw, e.version, b.to, l.path)
        };
        println!(
            "Sources: {} files ({} bytes). PR `pr-vuln`: {}. PR `pr-fix`: {}. PR `pr-code`: edits {} Python files, no lockfile.\n",
            self.sources.len(),
            self.sources.iter().map(|(_, c)| c.len()).sum::<usize>(),
            bump(&self.vuln),
            bump(&self.fix),
            self.edited.len()
        );
    }

    /// (lockfile path, normalised name) of every package built at an affected version.
    fn meant_affected(&self) -> BTreeSet<(String, String)> {
        self.lockfiles
            .iter()
            .flat_map(|l| {
                l.entries
                    .iter()
                    .filter(|e| e.meant_affected)
                    .map(|e| (l.path.clone(), e.name.clone()))
            })
            .collect()
    }
}

/// A bump of one picked package (Cargo.lock first): with `into_affected`, from a version no
/// record affects to the least release above it that one does; without, from a version a
/// record affects to the least release above it that none does. A package at a release
/// version (not the `0.0.1` the picks fall back to) is preferred; failing any upgrade (small
/// advisory data), another version of the kind wanted.
fn choose_bump(
    lockfiles: &[Lockfile],
    named: &BTreeMap<(Ecosystem, String), Named>,
    into_affected: bool,
) -> anyhow::Result<Bump> {
    let ecosystem_of = |f: Format| match f {
        Format::Cargo => Ecosystem::CratesIo,
        Format::GoMod => Ecosystem::Go,
        Format::Poetry | Format::Requirements => Ecosystem::PyPi,
    };
    let release = |v: &str| !v.contains(['-', '+']);
    // (rank, lockfile, entry, version): the least is taken.
    let mut fallback: Option<(u8, usize, usize, String)> = None;
    let keep = |kept: &mut Option<(u8, usize, usize, String)>, new: (u8, usize, usize, String)| {
        if kept.as_ref().is_none_or(|k| new < *k) {
            *kept = Some(new);
        }
    };
    for (li, l) in lockfiles.iter().enumerate() {
        let ecosystem = ecosystem_of(l.format);
        for (ei, e) in l.entries.iter().enumerate() {
            if e.meant_affected == into_affected || e.verbatim.is_some() {
                continue;
            }
            let Some(n) = named.get(&(ecosystem, e.name.clone())) else {
                continue;
            };
            let Ok(current) = Version::parse(ecosystem, &e.version) else {
                continue;
            };
            let fits =
                |v: &&Version| v.as_str() != e.version && n.affects(&e.name, v) == into_affected;
            let above = n.versions.iter().filter(fits).find(|v| {
                release(v.as_str())
                    && (*v).partial_cmp(&current) == Some(std::cmp::Ordering::Greater)
            });
            match above {
                Some(to) if release(&e.version) && e.version != "0.0.1" => {
                    return Ok(Bump {
                        lockfile: li,
                        entry: ei,
                        to: to.as_str().to_owned(),
                    })
                }
                // Failing a release-to-release upgrade: an upgrade from another version, then
                // any other version (small advisory data).
                Some(to) => keep(&mut fallback, (0, li, ei, to.as_str().to_owned())),
                None => {
                    if let Some(to) = n.versions.iter().find(fits) {
                        keep(&mut fallback, (1, li, ei, to.as_str().to_owned()));
                    }
                }
            }
        }
    }
    let fallback = fallback.map(|(_, lockfile, entry, to)| Bump {
        lockfile,
        entry,
        to,
    });
    fallback.with_context(|| {
        format!(
            "no package of the lockfiles can be bumped {} an affected version",
            if into_affected { "into" } else { "out of" }
        )
    })
}

/// `files` real Python files from `.venv`'s site-packages under `ml/src/`, with a small Go
/// program in each Go service and a Rust one for the crate; and three of the Python files the
/// code PR edits.
fn sources(files: usize) -> anyhow::Result<(Sources, Vec<String>)> {
    let site = std::fs::read_dir(Path::new(VENV).join("lib"))?
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .context("no site-packages under .venv (run `make semgrep`)")?;
    let mut found = Vec::new();
    collect_py(&site, &mut found);
    found.sort();
    ensure!(
        found.len() >= files,
        "only {} Python files available",
        found.len()
    );
    let mut out = Vec::with_capacity(files + 4);
    for src in &found[..files] {
        let rel = src.strip_prefix(&site)?.to_string_lossy().into_owned();
        out.push((format!("ml/src/{rel}"), std::fs::read(src)?));
    }
    let step = (files / 3).max(1);
    let edited: Vec<String> = out
        .iter()
        .step_by(step)
        .take(3)
        .map(|(p, _)| p.clone())
        .collect();
    for service in ["gateway", "ingest"] {
        out.push((
            format!("services/{service}/main.go"),
            format!(
                "package main\n\nimport (\n\t\"log\"\n\t\"net/http\"\n)\n\nfunc main() {{\n\thttp.HandleFunc(\"/healthz\", func(w http.ResponseWriter, r *http.Request) {{\n\t\tw.Write([]byte(\"ok\"))\n\t}})\n\tlog.Fatal(http.ListenAndServe(\":8080\", nil)) // {service}\n}}\n"
            )
            .into_bytes(),
        ));
    }
    out.push((
        "src/main.rs".into(),
        b"fn main() {\n    println!(\"shop-server\");\n}\n".to_vec(),
    ));
    Ok((out, edited))
}

/// The manifests beside the lockfiles.
fn manifests() -> Vec<Change> {
    vec![
        file(
            "Cargo.toml",
            "[package]\nname = \"shop-server\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        ),
        file(
            "ml/pyproject.toml",
            "[project]\nname = \"shop-ml\"\nversion = \"0.1.0\"\nrequires-python = \">=3.11\"\n\n[tool.poetry]\npackage-mode = false\n",
        ),
        file("services/etl/requirements.in", "requests\n"),
        file("tools/requirements.in", "semgrep\n"),
    ]
}

// ---------------------------------------------------------------------------------------------
// The scans
// ---------------------------------------------------------------------------------------------

/// The advisory queries the API answered: (server milliseconds, answer bytes) each.
#[derive(Debug, Clone, Default)]
struct AdvisoryCalls(Arc<Mutex<Vec<(f64, u64)>>>);

impl AdvisoryCalls {
    fn take(&self) -> Vec<(f64, u64)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

async fn time_advisory_calls(
    State(calls): State<AdvisoryCalls>,
    req: Request,
    next: Next,
) -> Response {
    use axum::body::HttpBody as _;
    let counted = req.uri().path() == ADVISORY_ROUTE;
    let started = Instant::now();
    let resp = next.run(req).await;
    if counted {
        let bytes = resp.body().size_hint().exact().unwrap_or(0);
        calls
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((started.elapsed().as_secs_f64() * 1e3, bytes));
    }
    resp
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Full scan of `main`, the spec's products (Code, Supply Chain, Secrets).
    Full,
    /// The same, Code and Secrets only.
    FullWithoutSupplyChain,
    /// Diff scan of `pr-vuln`.
    Vuln,
    /// Diff scan of `pr-fix`.
    Fix,
    /// Diff scan of `pr-code`.
    CodeOnly,
}

impl Variant {
    const ALL: [Variant; 5] = [
        Variant::Full,
        Variant::FullWithoutSupplyChain,
        Variant::Vuln,
        Variant::Fix,
        Variant::CodeOnly,
    ];
}

/// One scan's measurements.
#[derive(Debug, Default, Clone)]
struct Measured {
    products: Vec<Product>,
    /// `run_with`, seconds.
    scan: f64,
    /// The results upload, seconds.
    upload: f64,
    /// Step → milliseconds.
    steps: BTreeMap<String, u64>,
    /// The supply_chain step's figures.
    figures: BTreeMap<String, u64>,
    calls: Vec<(f64, u64)>,
    /// Reported findings by product (diff scans: the new ones).
    findings: BTreeMap<&'static str, usize>,
    /// Diff scans: findings fixed in the PR, by product.
    fixed: BTreeMap<&'static str, usize>,
    /// Full scans: (lockfile, package) of the Supply Chain findings.
    packages_found: BTreeSet<(String, String)>,
    /// Packages the trail lists as not checkable.
    unchecked: usize,
}

impl Measured {
    fn step(&self, name: &str) -> Option<u64> {
        self.steps.get(name).copied()
    }
    fn figure(&self, name: &str) -> u64 {
        self.figures.get(name).copied().unwrap_or(0)
    }
}

struct Bench<'a> {
    db: &'a Db,
    org: OrgId,
    project: ProjectId,
    api: String,
    calls: AdvisoryCalls,
    cfg: WorkerConfig,
}

impl Bench<'_> {
    /// Queues the variant's scan, claims it and mints its token as the scheduler does, then
    /// runs it as `picket worker` does (spec, running, scan, reporting, results).
    async fn scan(&self, variant: Variant, pr: i32) -> anyhow::Result<Measured> {
        let mut new = NewScan::full(self.org, self.project, ScanTrigger::Manual, "main");
        match variant {
            Variant::Full | Variant::FullWithoutSupplyChain => {}
            Variant::Vuln | Variant::Fix | Variant::CodeOnly => {
                new.kind = ScanKind::Diff;
                new.trigger = ScanTrigger::PullRequest;
                new.git_ref = Some(
                    match variant {
                        Variant::Vuln => "pr-vuln",
                        Variant::Fix => "pr-fix",
                        _ => "pr-code",
                    }
                    .into(),
                );
                new.base_ref = Some("main".into());
                new.pr_number = Some(pr);
            }
        }
        let queued = scans::enqueue(self.db.pool(), &new).await?.scan.id;
        let claimed = queue::claim(self.db.pool(), "bench", Duration::from_secs(900))
            .await?
            .context("the bench's scan is not claimable")?;
        ensure!(claimed.scan.id == queued, "claimed another scan");
        let token = queue::mint_scan_token(self.db.pool(), &claimed.lease).await?;
        let client = ApiClient::new(&self.api, token)?;
        let mut spec = client.spec().await?;
        if variant == Variant::FullWithoutSupplyChain {
            spec.products.retain(|p| *p != Product::SupplyChain);
        }
        client.progress(WorkerProgress::Running).await?;
        self.calls.take();
        let started = Instant::now();
        let results = worker_scan::run_with(&spec, None, &self.cfg, &client)
            .await
            .map_err(|f| {
                anyhow::anyhow!("the {variant:?} scan failed in {:?}: {}", f.step, f.error)
            })?;
        let scan = started.elapsed().as_secs_f64();
        let calls = self.calls.take();
        client.progress(WorkerProgress::Reporting).await?;
        let started = Instant::now();
        client.results(&results).await?;
        let upload = started.elapsed().as_secs_f64();
        Ok(measured(spec.products, scan, upload, calls, &results))
    }
}

fn measured(
    products: Vec<Product>,
    scan: f64,
    upload: f64,
    calls: Vec<(f64, u64)>,
    r: &ScanResults,
) -> Measured {
    let mut m = Measured {
        products,
        scan,
        upload,
        calls,
        ..Measured::default()
    };
    for s in &r.trail.steps {
        *m.steps.entry(s.step.clone()).or_default() += s.millis;
        if s.step == "supply_chain" {
            m.figures = s.figures.clone();
        }
    }
    for f in &r.findings {
        *m.findings.entry(f.product.as_str()).or_default() += 1;
        if let Some(d) = &f.dependency {
            m.packages_found.insert((f.path.clone(), d.package.clone()));
        }
    }
    for f in &r.fixed_in_pr {
        *m.fixed.entry(f.product.as_str()).or_default() += 1;
    }
    m.unchecked = r
        .trail
        .supply_chain
        .iter()
        .flat_map(|t| &t.lockfiles)
        .map(|l| l.unchecked.len())
        .sum();
    m
}

async fn measure(db: &Db, repo: &Monorepo, bare: &Path, runs: usize) -> anyhow::Result<()> {
    let (org, project) = org_and_project(db).await?;
    sqlx::query("UPDATE projects SET clone_url = $2, full_name = 'acme/shop' WHERE id = $1")
        .bind(project)
        .bind(format!("file://{}", bare.display()))
        .execute(db.pool())
        .await?;
    let calls = AdvisoryCalls::default();
    let layer = calls.clone();
    let cipher = CredentialCipher::from_hex(&CredentialCipher::generate_hex())?;
    let (api, _token, server) = start_api_with(
        db,
        picket_api::AppState::new(db.clone(), cipher),
        move |r| {
            r.layer(axum::middleware::from_fn_with_state(
                layer,
                time_advisory_calls,
            ))
        },
    )
    .await?;
    let semgrep = std::env::var_os("PICKET_SEMGREP")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(VENV).join("bin/semgrep"));
    ensure!(
        semgrep.exists(),
        "no semgrep at {} (run `make semgrep`)",
        semgrep.display()
    );
    let bench = Bench {
        db,
        org: OrgId(org),
        project: ProjectId(project),
        api,
        calls,
        cfg: WorkerConfig {
            semgrep: SemgrepConfig::new(semgrep, PathBuf::from(PACK)),
            clone_limits: CloneLimits {
                max_bytes: 1 << 32,
                timeout: Duration::from_secs(600),
                allow_local: true,
            },
        },
    };
    let mut all: BTreeMap<usize, Vec<Measured>> = BTreeMap::new();
    let mut pr = 0;
    let outcome: anyhow::Result<()> = async {
        for _ in 0..runs {
            for (i, v) in Variant::ALL.iter().enumerate() {
                pr += 1;
                let m = bench.scan(*v, pr).await?;
                check(repo, *v, &m)?;
                all.entry(i).or_default().push(m);
            }
        }
        Ok(())
    }
    .await;
    server.abort();
    outcome?;
    report(repo, &all, runs);
    Ok(())
}

/// Supply Chain's count in a findings tally.
fn sc(tally: &BTreeMap<&'static str, usize>) -> usize {
    tally
        .get(Product::SupplyChain.as_str())
        .copied()
        .unwrap_or(0)
}

/// What each scan must have done.
fn check(repo: &Monorepo, variant: Variant, m: &Measured) -> anyhow::Result<()> {
    match variant {
        Variant::Full => {
            let meant = repo.meant_affected();
            let found = meant.intersection(&m.packages_found).count();
            ensure!(
                found + m.unchecked >= meant.len(),
                "the full scan found {found} of the {} packages built at an affected version ({} not checkable)",
                meant.len(),
                m.unchecked
            );
            ensure!(m.calls.len() == 1, "{} advisory queries", m.calls.len());
        }
        Variant::FullWithoutSupplyChain => {
            ensure!(
                m.step("supply_chain").is_none() && m.calls.is_empty(),
                "a scan without Supply Chain ran it"
            );
        }
        Variant::Vuln => {
            ensure!(
                sc(&m.findings) > 0,
                "the bump into an affected version brought no new finding"
            );
        }
        Variant::Fix => {
            ensure!(
                sc(&m.findings) == 0 && sc(&m.fixed) > 0,
                "the bump out of an affected version: {} new, {} fixed",
                sc(&m.findings),
                sc(&m.fixed)
            );
        }
        Variant::CodeOnly => {
            ensure!(
                m.calls.is_empty() && m.figure("advisories") == 0,
                "the PR that touches no lockfile asked for advisories ({} queries)",
                m.calls.len()
            );
        }
    }
    if m.products.contains(&Product::SupplyChain) {
        ensure!(
            m.step("supply_chain").is_some(),
            "no supply_chain step in the trail"
        );
    }
    Ok(())
}

fn ms(v: f64) -> String {
    format!("{v:.0}")
}

fn report(repo: &Monorepo, all: &BTreeMap<usize, Vec<Measured>>, runs: usize) {
    let by = |v: Variant| {
        let i = Variant::ALL
            .iter()
            .position(|x| *x == v)
            .expect("a variant");
        all.get(&i).map(Vec::as_slice).unwrap_or(&[])
    };
    let med = |ms: &[Measured], f: &dyn Fn(&Measured) -> f64| median(ms.iter().map(f).collect());
    let step = |name: &'static str| move |m: &Measured| m.step(name).unwrap_or(0) as f64;
    let outside_engine = |m: &Measured| m.scan - m.step("engine").unwrap_or(0) as f64 / 1e3;
    let products = |m: &[Measured]| {
        m.first().map_or(String::new(), |m| {
            m.products
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
    };

    println!("### Full scans of `main` (median of {runs}; milliseconds unless stated)\n");
    println!("| products | whole scan (s) | whole scan but the engine step (s) | clone | supply_chain | targets | engine | suppressions + identities | findings (Supply Chain) | findings (Code + Secrets) | results upload (s) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for v in [Variant::Full, Variant::FullWithoutSupplyChain] {
        let m = by(v);
        let sc = med(m, &|m| {
            *m.findings.get(Product::SupplyChain.as_str()).unwrap_or(&0) as f64
        });
        let other = med(m, &|m| {
            (m.findings.get(Product::Code.as_str()).unwrap_or(&0)
                + m.findings.get(Product::Secrets.as_str()).unwrap_or(&0)) as f64
        });
        println!(
            "| {} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {:.0} | {other:.0} | {:.2} |",
            products(m),
            med(m, &|m| m.scan),
            med(m, &outside_engine),
            ms(med(m, &step("clone"))),
            if v == Variant::Full {
                ms(med(m, &step("supply_chain")))
            } else {
                "-".into()
            },
            ms(med(m, &step("targets"))),
            ms(med(m, &step("engine"))),
            ms(med(m, &|m| {
                (m.step("suppressions").unwrap_or(0) + m.step("identities").unwrap_or(0)) as f64
            })),
            sc,
            med(m, &|m| m.upload),
        );
    }
    let full = by(Variant::Full);
    let without = by(Variant::FullWithoutSupplyChain);
    let added = med(full, &|m| m.scan) - med(without, &|m| m.scan);
    let added_outside = med(full, &outside_engine) - med(without, &outside_engine);
    println!(
        "\nWith Supply Chain the full scan's median moves by {added:+.2} s ({:+.0}% of the scan without it); outside the engine step, whose time varies most between runs, by {added_outside:+.2} s.\n",
        100.0 * added / med(without, &|m| m.scan)
    );

    println!("#### The supply_chain step of each full scan\n");
    println!("| run | step (ms) | lockfiles | packages | advisories | findings | advisory query on the server (ms) | answer (bytes) | rest of the step: lockfiles read, answer decoded, records prepared, matched (ms) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, m) in full.iter().enumerate() {
        let server: f64 = m.calls.iter().map(|c| c.0).sum();
        let bytes: u64 = m.calls.iter().map(|c| c.1).sum();
        let step = m.step("supply_chain").unwrap_or(0);
        println!(
            "| {} | {step} | {} | {} | {} | {} | {server:.0} | {bytes} | {:.0} |",
            i + 1,
            m.figure("lockfiles"),
            m.figure("packages"),
            m.figure("advisories"),
            m.figure("findings"),
            step as f64 - server
        );
    }
    println!(
        "\nPackages built at an affected version: {}; found by every run.\n",
        repo.meant_affected().len()
    );

    println!("### Diff scans (median of {runs})\n");
    println!("| PR | whole scan (s) | supply_chain (ms) | engine (ms) | advisory queries | advisories | new Supply Chain findings | fixed in the PR (Supply Chain) | new Code + Secrets findings |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (v, label) in [
        (
            Variant::Vuln,
            "`pr-vuln`: one package upgraded into an affected version",
        ),
        (
            Variant::Fix,
            "`pr-fix`: one package upgraded out of an affected version",
        ),
        (
            Variant::CodeOnly,
            "`pr-code`: three Python files, no lockfile",
        ),
    ] {
        let m = by(v);
        println!(
            "| {label} | {:.2} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            med(m, &|m| m.scan),
            ms(med(m, &step("supply_chain"))),
            ms(med(m, &step("engine"))),
            med(m, &|m| m.calls.len() as f64),
            med(m, &|m| m.figure("advisories") as f64),
            med(
                m,
                &|m| *m.findings.get(Product::SupplyChain.as_str()).unwrap_or(&0) as f64
            ),
            med(
                m,
                &|m| *m.fixed.get(Product::SupplyChain.as_str()).unwrap_or(&0) as f64
            ),
            med(m, &|m| {
                (m.findings.get(Product::Code.as_str()).unwrap_or(&0)
                    + m.findings.get(Product::Secrets.as_str()).unwrap_or(&0))
                    as f64
            }),
        );
    }
    println!("\nEvery scan, in the order run (whole scan s / supply_chain ms):\n");
    for r in 0..runs {
        let row: Vec<String> = Variant::ALL
            .iter()
            .map(|v| {
                by(*v).get(r).map_or("-".into(), |m| {
                    format!(
                        "{v:?} {:.2} s / {}",
                        m.scan,
                        m.step("supply_chain")
                            .map_or("-".into(), |s| format!("{s} ms"))
                    )
                })
            })
            .collect();
        println!("- run {}: {}", r + 1, row.join("; "));
    }
}
