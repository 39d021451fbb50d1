//! The prepared matcher against `record_affects`, record by record, at every version each record
//! names: the fixtures always, the shared snapshot (`../shared/data/osv`, or `PICKET_OSV_DATA`)
//! where it is present.

use picket_advisory::{
    match_packages, record_affects, Event, Installed, MatcherError, PreparedRecord, Record, Version,
};
use std::path::{Path, PathBuf};

/// Every `*.json` under `dir`, one level of folders deep at most, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && d == dir {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Checks every (package, version) a record names, returns how many were compared.
fn agree_on(dir: &Path) -> usize {
    let mut compared = 0;
    for path in json_files(dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        let record = Record::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let prepared = [PreparedRecord::new(record.clone())];
        for entry in &record.affected {
            let Some(package) = &entry.package else {
                continue;
            };
            let Some(ecosystem) = package.ecosystem() else {
                continue;
            };
            let versions = entry
                .ranges
                .iter()
                .flat_map(|r| r.events.iter().map(Event::version))
                .chain(entry.versions.iter().map(String::as_str))
                .filter(|v| Version::parse(ecosystem, v).is_ok());
            for version in versions {
                let installed = Version::parse(ecosystem, version).unwrap();
                let want = record_affects(&record, &package.name, &installed);
                let out = match_packages(
                    &[Installed {
                        ecosystem,
                        name: ecosystem.normalize(&package.name),
                        version: version.to_owned(),
                        index: 7,
                    }],
                    &prepared,
                );
                let matched = !out.matches.is_empty();
                let at = format!("{} {} {version}", record.id, package.name);
                match want {
                    Ok(want) => {
                        assert_eq!(matched, want, "{at}");
                        assert!(out.errors.is_empty(), "{at}: {:?}", out.errors);
                    }
                    // record_affects stops at the first unreadable range; the matcher answers a
                    // match when a readable one contains the version, an error otherwise.
                    Err(_) => assert!(
                        matched
                            || matches!(
                                &out.errors[..],
                                [e] if e.package == 7
                                    && matches!(&e.error, MatcherError::Event { record: r, .. } if *r == record.id)
                            ),
                        "{at}: {out:?}"
                    ),
                }
                if matched {
                    let m = &out.matches[0];
                    assert_eq!(m.advisories, std::slice::from_ref(&record.id), "{at}");
                    assert_eq!(m.installed, version);
                    // Every fix reported is above the installed version, and sorted.
                    let fixes: Vec<Version> = m
                        .fixed
                        .iter()
                        .map(|f| Version::parse(ecosystem, f).unwrap())
                        .collect();
                    assert!(fixes.iter().all(|f| f > &installed), "{at}: {:?}", m.fixed);
                    assert!(fixes.windows(2).all(|w| w[0] < w[1]), "{at}: {:?}", m.fixed);
                }
                compared += 1;
            }
        }
    }
    compared
}

#[test]
fn the_fixtures_agree_with_record_affects() {
    let compared = agree_on(&crate::crate_dir().join("tests/fixtures/osv"));
    assert!(compared > 50, "{compared} versions compared");
}

#[test]
fn the_shared_snapshot_agrees_with_record_affects() {
    let dir = std::env::var_os("PICKET_OSV_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("../shared/data/osv"));
    if !dir.is_dir() {
        eprintln!("skipped: no OSV snapshot at {}", dir.display());
        return;
    }
    let compared = agree_on(&dir);
    assert!(compared > 100_000, "{compared} versions compared");
}
