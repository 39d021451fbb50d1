//! Matching, severity and alias grouping on real records (tests/fixtures/osv, see its README).

use picket_advisory::severity::{rate, SeveritySource};
use picket_advisory::{group_aliases, record_affects, Record, Version};
use picket_core::{Ecosystem, Severity};

fn record(id: &str) -> Record {
    let path = crate::crate_dir().join(format!("tests/fixtures/osv/{id}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Record::from_json(&text).unwrap_or_else(|e| panic!("{id}: {e}"))
}

fn affects(record: &Record, ecosystem: Ecosystem, name: &str, version: &str) -> bool {
    let v = Version::parse(ecosystem, version).unwrap_or_else(|e| panic!("{e}"));
    record_affects(record, name, &v).unwrap_or_else(|e| panic!("{}: {e}", record.id))
}

#[test]
fn rustsec_windows_from_0_0_0_0() {
    // hyper: [0.0.0-0, 0.9.18) and [0.10.0, 0.10.2).
    let r = record("RUSTSEC-2017-0002");
    for (v, want) in [
        ("0.1.0", true),
        ("0.9.17", true),
        ("0.9.18", false),
        ("0.10.0-rc.1", false),
        ("0.10.1", true),
        ("0.10.2", false),
        ("0.11.0", false),
    ] {
        assert_eq!(
            affects(&r, Ecosystem::CratesIo, "hyper", v),
            want,
            "hyper {v}"
        );
    }
    assert!(
        !affects(&r, Ecosystem::CratesIo, "hyper-tls", "0.1.0"),
        "another package"
    );
}

#[test]
fn pypi_entry_whose_first_range_is_git() {
    // gdal: GIT [0, 148115f) then ECOSYSTEM [0, 3.0.2); osv-scanner stops at the GIT range.
    let r = record("PYSEC-2019-241");
    assert_eq!(
        r.affected[0].ranges[0].kind,
        picket_advisory::RangeType::Git
    );
    assert!(
        affects(&r, Ecosystem::PyPi, "GDAL", "3.0.1"),
        "name normalised, range read"
    );
    assert!(affects(&r, Ecosystem::PyPi, "gdal", "2.4.3rc1"));
    assert!(!affects(&r, Ecosystem::PyPi, "gdal", "3.0.2"));
    assert!(!affects(&r, Ecosystem::PyPi, "gdal", "3.0.2.post1"));
    let rating = rate(&r, None).unwrap();
    assert_eq!(
        rating.severity,
        Severity::Critical,
        "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H is 9.8"
    );
}

#[test]
fn last_affected_is_inclusive() {
    // py: [0, last_affected 1.11.0].
    let r = record("PYSEC-2022-42969");
    assert!(affects(&r, Ecosystem::PyPi, "py", "1.11.0"));
    assert!(
        affects(&r, Ecosystem::PyPi, "py", "1.11"),
        "PEP 440 equality"
    );
    assert!(!affects(&r, Ecosystem::PyPi, "py", "1.11.0.post1"));
    assert!(!affects(&r, Ecosystem::PyPi, "py", "1.12.0"));
}

#[test]
fn go_ranges_are_module_versions_and_custom_ranges_are_not_read() {
    // mongo-tools: SEMVER [0, 0.0.0-20200819165540-8c1800b51550) in module versions; its
    // custom_ranges (3.6.5…100.2.0) are the tools' release numbers, not go.mod versions.
    let r = record("GO-2024-2550");
    let name = "github.com/mongodb/mongo-tools";
    assert!(affects(
        &r,
        Ecosystem::Go,
        name,
        "v0.0.0-20200101000000-aaaaaaaaaaaa"
    ));
    assert!(!affects(
        &r,
        Ecosystem::Go,
        name,
        "v0.0.0-20200819165540-8c1800b51550"
    ));
    assert!(!affects(
        &r,
        Ecosystem::Go,
        name,
        "v0.0.0-20210101000000-bbbbbbbbbbbb"
    ));
    // pubnub: `introduced: "0"` and nothing else for the old major versions, every version of
    // which is affected (the fix is in /v7 only; the /v5 custom range ends at a pseudo-version
    // of a commit where the module is no longer /v5), as govulncheck says.
    let r = record("GO-2023-2385");
    let pubnub = |module: &str, v: &str| affects(&r, Ecosystem::Go, module, v);
    assert!(pubnub("github.com/pubnub/go", "v4.10.0+incompatible"));
    assert!(pubnub("github.com/pubnub/go/v5", "v5.0.3"));
    assert!(pubnub("github.com/pubnub/go/v7", "v7.1.2"));
    assert!(!pubnub("github.com/pubnub/go/v7", "v7.2.0"));
}

#[test]
fn withdrawn_records_match_nothing() {
    let r = record("RUSTSEC-2019-0031");
    assert!(r.is_withdrawn());
    assert!(!affects(&r, Ecosystem::CratesIo, "spin", "0.0.0"));
    assert!(!affects(&r, Ecosystem::CratesIo, "spin", "0.0.0-alpha"));
}

#[test]
fn brotli_is_one_vulnerability_in_four_databases_records() {
    let records: Vec<Record> = [
        "PYSEC-2020-29",
        "RUSTSEC-2021-0131",
        "GO-2025-3726",
        "RUSTSEC-2021-0132",
        "RUSTSEC-2017-0002",
        "RUSTSEC-2019-0031",
    ]
    .map(record)
    .into();
    let groups = group_aliases(&records);
    let brotli = groups
        .iter()
        .find(|g| g.records.contains(&"GO-2025-3726".to_owned()))
        .unwrap();
    // GO-2025-3726 names only CVE-2020-36846, which RUSTSEC-2021-0132 also names, with
    // CVE-2020-8927, which the other two name.
    assert_eq!(
        brotli.records,
        [
            "GO-2025-3726",
            "PYSEC-2020-29",
            "RUSTSEC-2021-0131",
            "RUSTSEC-2021-0132"
        ]
    );
    assert_eq!(brotli.key, "CVE-2020-8927", "the group's earliest CVE id");
    let hyper = groups
        .iter()
        .find(|g| g.records.contains(&"RUSTSEC-2017-0002".to_owned()))
        .unwrap();
    assert_eq!(hyper.records, ["RUSTSEC-2017-0002"]);
    assert!(
        groups
            .iter()
            .all(|g| !g.records.contains(&"RUSTSEC-2019-0031".to_owned())),
        "withdrawn records are in no group"
    );
}

#[test]
fn cvss_v4_rating_is_the_bucket_of_its_score() {
    let r = record("RUSTSEC-2024-0445");
    let rating = rate(&r, Some(&r.affected[0])).unwrap();
    let SeveritySource::Cvss { vector, score } = &rating.source else {
        panic!("{rating:?}")
    };
    assert!(vector.starts_with("CVSS:4.0/"));
    // CVSS v4.0 §"Qualitative Severity Rating Scale".
    let bucket = match *score {
        s if s <= 0.0 => Severity::Info,
        s if s < 4.0 => Severity::Low,
        s if s < 7.0 => Severity::Medium,
        s if s < 9.0 => Severity::High,
        _ => Severity::Critical,
    };
    assert!((0.0..=10.0).contains(score));
    assert_eq!(rating.severity, bucket, "{score}");
    // Go records carry no score at all.
    assert_eq!(rate(&record("GO-2024-2550"), None), None);
}
