//! Supply Chain: the advisory import and the matching of one lockfile against everything
//! imported (issue 12 §5).
//!
//! - **Import**: `picket_scheduler::advisories::import_path` of each data folder (what
//!   `picket advisories import <dir>` runs) into an emptied store, `runs` times ("cold"), and
//!   then the same folders again into the filled store ("unchanged": content hashes equal,
//!   nothing written but the source's state).
//! - **Matching**: a lockfile of `packages` packages built from the imported data itself: real
//!   package names of the records' ecosystems, each at a version the records name (or `0.0.1`),
//!   every other package at a version at least one of its records affects and the rest at one
//!   none does (where the records leave one); when the data names fewer packages than asked
//!   for, names come again at their other version. Timed end to end, `runs` times: `picket_db::advisories::records_for` (one query
//!   per ecosystem), parsing and preparing the candidate records
//!   (`picket_advisory::PreparedRecord::new`), and `picket_advisory::match_packages`.

use crate::{bench_db, median, with_bench_db};
use anyhow::{ensure, Context};
use picket_advisory::{match_packages, record_affects, Installed, PreparedRecord, Record, Version};
use picket_core::Ecosystem;
use picket_db::Db;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

/// The repository's root, against which relative `--data` folders are read.
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared OSV snapshot (see its README): the default data.
pub fn shared_data() -> PathBuf {
    repo_root().join("../shared/data/osv")
}

pub async fn advisories_bench(
    admin_url: &str,
    data: &[PathBuf],
    packages: usize,
    runs: usize,
) -> anyhow::Result<()> {
    let runs = runs.max(1);
    let data = data_folders(data)?;
    with_bench_db(admin_url, "advisories", |url| async move {
        let db = bench_db(&url, 4).await?;
        println!("## Supply Chain: advisory import and matching\n");
        println!("Started {} UTC, load {}.\n", now_utc(), load());
        import(&db, &data, runs).await?;
        matching(&db, packages, runs).await?;
        println!("\nEnded {} UTC, load {}.", now_utc(), load());
        Ok(())
    })
    .await
}

/// The OSV folders to import: `data` (relative ones read from the repository's root), or the
/// shared snapshot when it is empty; each must exist.
pub(crate) fn data_folders(data: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let data = if data.is_empty() {
        vec![shared_data()]
    } else {
        data.to_vec()
    };
    let data: Vec<PathBuf> = data
        .iter()
        .map(|d| {
            if d.is_absolute() {
                d.clone()
            } else {
                repo_root().join(d)
            }
        })
        .collect();
    for d in &data {
        ensure!(d.is_dir(), "no OSV data folder at {}", d.display());
    }
    Ok(data)
}

/// Cold imports into an emptied store, then re-imports of the same data.
async fn import(db: &Db, data: &[PathBuf], runs: usize) -> anyhow::Result<()> {
    println!(
        "### Import ({} folder(s), `import_path` each)\n",
        data.len()
    );
    println!("| run | records read | inserted | updated | unchanged | seconds | records/s |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut cold = Vec::new();
    for run in 1..=runs {
        crate::empty(db, "advisories, advisory_sources").await?;
        let (records, written, secs) = import_all(db, data).await?;
        ensure!(written.inserted > 0, "a cold import inserted nothing");
        cold.push(records as f64 / secs);
        row(&format!("cold {run}"), records, written, secs);
    }
    let mut again = Vec::new();
    for run in 1..=runs {
        let (records, written, secs) = import_all(db, data).await?;
        ensure!(
            written.inserted == 0 && written.updated == 0,
            "re-importing unchanged data wrote records: {written:?}"
        );
        again.push(records as f64 / secs);
        row(&format!("unchanged {run}"), records, written, secs);
    }
    println!(
        "\nMedian: cold {:.0} records/s, unchanged {:.0} records/s.\n",
        median(cold),
        median(again)
    );
    Ok(())
}

pub(crate) async fn import_all(
    db: &Db,
    data: &[PathBuf],
) -> anyhow::Result<(u32, picket_db::advisories::Upserted, f64)> {
    let started = Instant::now();
    let mut records = 0;
    let mut written = picket_db::advisories::Upserted::default();
    for d in data {
        let report = picket_scheduler::advisories::import_path(db, d)
            .await
            .with_context(|| format!("importing {}", d.display()))?;
        records += report.records;
        written += report.written;
    }
    Ok((records, written, started.elapsed().as_secs_f64()))
}

fn row(label: &str, records: u32, w: picket_db::advisories::Upserted, secs: f64) {
    println!(
        "| {label} | {records} | {} | {} | {} | {secs:.2} | {:.0} |",
        w.inserted,
        w.updated,
        w.unchanged,
        records as f64 / secs
    );
}

/// A package the stored records name: its name as the first record writes it, the records that
/// name it, and every version they name (plus `0.0.1`) its ecosystem accepts, sorted.
pub(crate) struct Named {
    pub raw: String,
    pub records: Vec<Record>,
    pub versions: Vec<Version>,
}

impl Named {
    /// Whether one of the package's records affects `version` (`name` normalised).
    pub fn affects(&self, name: &str, version: &Version) -> bool {
        self.records
            .iter()
            .any(|r| record_affects(r, name, version).unwrap_or(false))
    }

    /// The newest version that is affected (`true`) or not (`false`); the newest of all when
    /// none qualifies.
    pub fn newest(&self, name: &str, affected: bool) -> Option<&Version> {
        self.versions
            .iter()
            .rev()
            .find(|v| self.affects(name, v) == affected)
            .or(self.versions.last())
    }
}

/// Every package the stored records (not withdrawn) name, by (ecosystem, normalised name).
pub(crate) async fn named_packages(
    db: &Db,
) -> anyhow::Result<BTreeMap<(Ecosystem, String), Named>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT record::text FROM advisories WHERE withdrawn IS NULL ORDER BY id")
            .fetch_all(db.pool())
            .await?;
    // (ecosystem, normalised name) → the name as first written, the records naming it and the
    // versions they name.
    type Gathered = (String, Vec<Record>, BTreeSet<String>);
    let mut by_name: BTreeMap<(Ecosystem, String), Gathered> = BTreeMap::new();
    for (text,) in rows {
        let record = Record::from_json(&text)?;
        for entry in &record.affected {
            let Some(package) = &entry.package else {
                continue;
            };
            let Some(ecosystem) = package.ecosystem() else {
                continue;
            };
            let slot = by_name
                .entry((ecosystem, ecosystem.normalize(&package.name)))
                .or_insert_with(|| (package.name.clone(), Vec::new(), BTreeSet::new()));
            if slot.1.last().is_none_or(|r| r.id != record.id) {
                slot.1.push(record.clone());
            }
            let named = entry
                .ranges
                .iter()
                .flat_map(|r| r.events.iter().map(|e| e.version().to_owned()))
                .chain(entry.versions.iter().cloned());
            slot.2
                .extend(named.filter(|v| v != "0" && !v.contains('*')));
        }
    }
    Ok(by_name
        .into_iter()
        .map(|((ecosystem, name), (raw, records, named))| {
            let mut versions: Vec<Version> = named
                .iter()
                .chain(std::iter::once(&"0.0.1".to_owned()))
                .filter_map(|v| Version::parse(ecosystem, v).ok())
                .collect();
            versions.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            (
                (ecosystem, name),
                Named {
                    raw,
                    records,
                    versions,
                },
            )
        })
        .collect())
}

/// The lockfile: `packages` packages drawn from the stored records, half at an affected
/// version. Returns them and how many were meant to be affected.
async fn lockfile(db: &Db, packages: usize) -> anyhow::Result<(Vec<Installed>, usize)> {
    let by_name = named_packages(db).await?;
    // Spread the picks over every name: a stride through the sorted names, so each ecosystem
    // comes in by its share of the data.
    let stride = (by_name.len() as f64 / packages as f64).max(1.0);
    let names: Vec<_> = by_name.into_iter().collect();
    ensure!(!names.is_empty(), "the imported data names no package");
    let mut out = Vec::with_capacity(packages);
    let mut meant_affected = 0;
    for k in 0..packages {
        // Past the last name (the data names fewer packages than asked for), names come again
        // at their other version, as Cargo.lock and package-lock.json list a package once per
        // incompatible version in use.
        let at = (k as f64 * stride) as usize;
        let ((ecosystem, name), named) = &names[at % names.len()];
        let second_round = at >= names.len();
        let want_affected = (k % 2 == 0) != second_round;
        // The newest version that is (or is not) affected; any version when none qualifies.
        let pick = named.newest(name, want_affected);
        let Some(pick) = pick else { continue };
        if named.affects(name, pick) {
            meant_affected += 1;
        }
        // go.mod writes the `v`.
        let version = match ecosystem {
            Ecosystem::Go if !pick.as_str().starts_with('v') => format!("v{}", pick.as_str()),
            _ => pick.as_str().to_owned(),
        };
        out.push(Installed {
            ecosystem: *ecosystem,
            name: name.clone(),
            version,
            index: out.len(),
        });
    }
    Ok((out, meant_affected))
}

/// One end-to-end match of `lockfile`: seconds of (lookup, prepare, match), records, outcome.
async fn match_once(
    db: &Db,
    lockfile: &[Installed],
) -> anyhow::Result<([f64; 3], usize, picket_advisory::Outcome)> {
    let started = Instant::now();
    let mut by_ecosystem: BTreeMap<Ecosystem, Vec<String>> = BTreeMap::new();
    for p in lockfile {
        by_ecosystem
            .entry(p.ecosystem)
            .or_default()
            .push(p.name.clone());
    }
    let mut texts = Vec::new();
    for (ecosystem, mut names) in by_ecosystem {
        names.sort();
        names.dedup();
        texts.extend(picket_db::advisories::records_for(db.pool(), ecosystem, &names).await?);
    }
    let looked_up = Instant::now();
    let prepared = texts
        .iter()
        .map(|c| Record::from_json(&c.record).map(PreparedRecord::new))
        .collect::<Result<Vec<_>, _>>()?;
    let ready = Instant::now();
    let outcome = match_packages(lockfile, &prepared);
    let done = Instant::now();
    Ok((
        [
            (looked_up - started).as_secs_f64(),
            (ready - looked_up).as_secs_f64(),
            (done - ready).as_secs_f64(),
        ],
        prepared.len(),
        outcome,
    ))
}

async fn matching(db: &Db, packages: usize, runs: usize) -> anyhow::Result<()> {
    let (lockfile, meant) = lockfile(db, packages).await?;
    ensure!(!lockfile.is_empty(), "no package to match in the data");
    let mut per_ecosystem: BTreeMap<Ecosystem, usize> = BTreeMap::new();
    for p in &lockfile {
        *per_ecosystem.entry(p.ecosystem).or_default() += 1;
    }
    let distinct: BTreeSet<(Ecosystem, &str)> = lockfile
        .iter()
        .map(|p| (p.ecosystem, p.name.as_str()))
        .collect();
    let mix: Vec<String> = per_ecosystem
        .iter()
        .map(|(e, n)| format!("{n} {e}"))
        .collect();
    println!(
        "### Matching one lockfile of {} packages ({} distinct names; {}), {meant} at an affected version\n",
        lockfile.len(),
        distinct.len(),
        mix.join(", ")
    );
    println!(
        "| run | records_for (ms) | parse + prepare (ms) | match (ms) | total (ms) | packages/s | candidate records | matches | packages matched | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut totals = Vec::new();
    let mut parts: [Vec<f64>; 3] = Default::default();
    for run in 1..=runs {
        let (secs, records, outcome) = match_once(db, &lockfile).await?;
        let total: f64 = secs.iter().sum();
        let matched: BTreeSet<usize> = outcome.matches.iter().map(|m| m.package).collect();
        // Every package built at an affected version must be found (errors aside).
        ensure!(
            matched.len() + outcome.errors.len() >= meant,
            "{} packages matched, {meant} built at an affected version",
            matched.len()
        );
        println!(
            "| {run} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {records} | {} | {} | {} |",
            secs[0] * 1e3,
            secs[1] * 1e3,
            secs[2] * 1e3,
            total * 1e3,
            lockfile.len() as f64 / total,
            outcome.matches.len(),
            matched.len(),
            outcome.errors.len()
        );
        for (i, s) in secs.iter().enumerate() {
            parts[i].push(*s);
        }
        totals.push(total);
    }
    let total = median(totals);
    let [q, p, m] = parts.map(median);
    println!(
        "\nMedian: {:.1} ms, {:.0} packages/s; records_for {:.0}%, parse + prepare {:.0}%, match {:.0}%.",
        total * 1e3,
        lockfile.len() as f64 / total,
        100.0 * q / (q + p + m),
        100.0 * p / (q + p + m),
        100.0 * m / (q + p + m)
    );
    Ok(())
}

pub(crate) fn now_utc() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute()
    )
}

/// The 1-minute load average (`/proc/loadavg`), or `?` where there is none.
pub(crate) fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
