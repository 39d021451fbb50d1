//! Every record of the shared OSV snapshot (`../shared/data/osv`, or `PICKET_OSV_DATA`): parsed,
//! and evaluated at every version it names. Skipped, with a note, where the snapshot is absent
//! (a fresh clone): the fixtures under tests/fixtures/osv cover the same code there.

use picket_advisory::{affected, Affected, Event, MatchError, RangeType, Record, Version};
use std::path::PathBuf;

fn snapshot() -> Option<PathBuf> {
    let dir = std::env::var_os("PICKET_OSV_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("../shared/data/osv"));
    dir.is_dir().then_some(dir)
}

/// Every `*.json` one folder down, sorted, with its text.
fn records(dir: &PathBuf) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for folder in std::fs::read_dir(dir).unwrap() {
        let folder = folder.unwrap().path();
        if !folder.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&folder).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((path, text));
            }
        }
    }
    files.sort();
    files
}

/// Listed versions (`versions[]`) that the same entry's ranges, evaluated as the schema says,
/// leave out: inconsistencies of the records themselves. Picket reports such a version as
/// affected (it is listed); this list pins that the ranges are read right all the same.
const RECORDS_AT_ODDS_WITH_THEMSELVES: [(&str, &str); 9] = [
    // Events [2.11, 2.11.7) [0, 2.11.6) [2.12, 2.12.4) in one array: sorted, `fixed: 2.11.6`
    // closes the range before 2.11.7 reopens nothing; osv.dev enumerated each pair apart.
    ("PYSEC-2021-114", "2.11.6"),
    // `fixed: 23.9.0`, yet 23.9.0 and its post-release are listed.
    ("PYSEC-2023-177", "23.9.0"),
    ("PYSEC-2023-177", "23.9.0.post1"),
    // `introduced: 3.2` and `4.2`: PEP 440 puts 3.2a1 before 3.2; osv.dev listed the
    // pre-releases of the introducing release.
    ("PYSEC-2023-61", "3.2a1"),
    ("PYSEC-2023-61", "3.2b1"),
    ("PYSEC-2023-61", "3.2rc1"),
    ("PYSEC-2023-61", "4.2a1"),
    ("PYSEC-2023-61", "4.2b1"),
    ("PYSEC-2023-61", "4.2rc1"),
];

/// Range events whose version the ecosystem refuses (packaging refuses them too): these records
/// cannot be evaluated for a version their other events leave undecided, and `affected` says so
/// with an error naming the event, never a guess.
const UNEVALUABLE_EVENTS: [(&str, &str); 2] = [
    ("PYSEC-2019-125", "2019-09-12"),
    ("PYSEC-2021-371", "0.2.0-n653"),
];

#[test]
fn every_shared_record_parses_and_evaluates() {
    let Some(dir) = snapshot() else {
        eprintln!(
            "note: no OSV snapshot at ../shared/data/osv (nor PICKET_OSV_DATA): skipping the \
             whole-snapshot test; the fixtures cover the same code"
        );
        return;
    };
    let files = records(&dir);
    let mut unparsed = Vec::new();
    let mut records_parsed = 0usize;
    let (mut entries, mut evaluations) = (0usize, 0usize);
    let mut errors = Vec::new();
    let mut refused_events = Vec::new();
    // Listed versions the ecosystem refuses (old PyPI releases such as `0.1-bulbasaur`, which
    // predate PEP 440): they can still match by their exact string.
    let mut refused_listed = 0usize;
    // Listed versions outside every range of their entry: osv.dev fills `versions[]` from the
    // ranges, so the two should agree wherever an entry has both.
    let mut disagreements = Vec::new();
    let mut listed_checked = 0usize;
    for (path, text) in &files {
        let record = match Record::from_json(text) {
            Ok(r) => r,
            Err(e) => {
                unparsed.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        records_parsed += 1;
        if record.is_withdrawn() {
            continue;
        }
        for entry in &record.affected {
            let Some(ecosystem) = entry.package.as_ref().and_then(|p| p.ecosystem()) else {
                continue;
            };
            entries += 1;
            let version_ranges: Vec<_> = entry
                .ranges
                .iter()
                .filter(|r| matches!(r.kind, RangeType::Semver | RangeType::Ecosystem))
                .collect();
            // Evaluate the entry at each version it names; every event version must parse
            // (else `affected` errs).
            let event_versions = version_ranges
                .iter()
                .flat_map(|r| r.events.iter())
                .filter(|e| !matches!(e, Event::Introduced(v) if v == "0"))
                .filter(|e| !matches!(e, Event::Limit(v) if v.contains('*')))
                .map(Event::version);
            for named in event_versions.chain(entry.versions.iter().map(String::as_str)) {
                let v = match Version::parse(ecosystem, named) {
                    Ok(v) => v,
                    Err(_) if entry.versions.iter().any(|l| l == named) => {
                        refused_listed += 1;
                        continue;
                    }
                    Err(_) => {
                        refused_events.push(format!("{} {named}", record.id));
                        continue;
                    }
                };
                evaluations += 1;
                match affected(entry, &v) {
                    Err(MatchError::Event(e))
                        if UNEVALUABLE_EVENTS
                            .contains(&(record.id.as_str(), e.version.as_str())) => {}
                    Err(e) => errors.push(format!("{} at {named}: {e}", record.id)),
                    Ok(_) => {}
                }
            }
            if version_ranges.is_empty() {
                continue;
            }
            let ranges_only = Affected {
                versions: Vec::new(),
                ..entry.clone()
            };
            for listed in &entry.versions {
                if let Ok(v) = Version::parse(ecosystem, listed) {
                    listed_checked += 1;
                    if affected(&ranges_only, &v) == Ok(false) {
                        disagreements.push(format!("{} {listed}", record.id));
                    }
                }
            }
        }
    }
    eprintln!(
        "shared OSV snapshot: {records_parsed} of {} records parsed; {entries} entries of \
         Picket's ecosystems evaluated at every version they name ({evaluations} evaluations, \
         {} errors); {} range events and {refused_listed} listed versions the ecosystem \
         refuses; of {listed_checked} listed versions checked against their entry's ranges \
         alone, {} outside them",
        files.len(),
        errors.len(),
        refused_events.len(),
        disagreements.len()
    );
    assert!(files.len() > 8000, "the snapshot holds 8,158 records");
    let unparsed = unparsed.join("\n");
    assert!(
        unparsed.is_empty(),
        "records that do not parse:\n{unparsed}"
    );
    let errors = errors.join("\n");
    assert!(
        errors.is_empty(),
        "entries that cannot be evaluated:\n{errors}"
    );
    assert_same(
        refused_events,
        &UNEVALUABLE_EVENTS,
        "range events the ecosystem refuses",
    );
    assert_same(
        disagreements,
        &RECORDS_AT_ODDS_WITH_THEMSELVES,
        "listed versions outside their entry's ranges, other than the records known to be at \
         odds with themselves",
    );
}

/// Asserts that `found` (`"<id> <version>"` strings) is exactly `known`, in any order.
fn assert_same(mut found: Vec<String>, known: &[(&str, &str)], what: &str) {
    let mut known: Vec<String> = known.iter().map(|(id, v)| format!("{id} {v}")).collect();
    known.sort();
    found.sort();
    assert_eq!(found, known, "{what}");
}
