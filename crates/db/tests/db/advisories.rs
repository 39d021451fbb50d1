//! The advisory store's lookup for matching: `records_for`.

use picket_core::Ecosystem;
use picket_db::advisories::{self, CandidateRecord, NewAdvisory};
use sqlx::PgPool;
use time::OffsetDateTime;

fn advisory(id: &str, packages: &[(Ecosystem, &str)], withdrawn: bool) -> NewAdvisory {
    let withdrawn = withdrawn.then_some(OffsetDateTime::UNIX_EPOCH);
    NewAdvisory {
        id: id.to_owned(),
        modified: None,
        published: None,
        withdrawn,
        aliases: vec![],
        packages: packages
            .iter()
            .map(|(e, n)| (*e, (*n).to_owned()))
            .collect(),
        record: format!(r#"{{"id": "{id}", "modified": "2024-01-01T00:00:00Z"}}"#),
        source: "test".to_owned(),
    }
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn records_for_returns_each_record_once_with_the_names_it_affects(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    advisories::upsert(
        &mut conn,
        &[
            advisory(
                "PYSEC-2",
                &[(Ecosystem::PyPi, "django"), (Ecosystem::PyPi, "jinja2")],
                false,
            ),
            advisory("PYSEC-1", &[(Ecosystem::PyPi, "django")], false),
            advisory("PYSEC-3", &[(Ecosystem::PyPi, "django")], true),
            advisory("PYSEC-4", &[(Ecosystem::PyPi, "flask")], false),
            advisory("RUSTSEC-1", &[(Ecosystem::CratesIo, "django")], false),
        ],
    )
    .await
    .unwrap();
    let names = ["jinja2", "django", "absent"].map(String::from);
    let found = advisories::records_for(&pool, Ecosystem::PyPi, &names)
        .await
        .unwrap();
    let summary: Vec<(&str, Vec<&str>)> = found
        .iter()
        .map(|r| (r.id.as_str(), r.names.iter().map(String::as_str).collect()))
        .collect();
    // Withdrawn PYSEC-3, PYSEC-4 (another name) and RUSTSEC-1 (another ecosystem) are left out.
    assert_eq!(
        summary,
        [
            ("PYSEC-1", vec!["django"]),
            ("PYSEC-2", vec!["django", "jinja2"])
        ]
    );
    let record: serde_json::Value = serde_json::from_str(&found[0].record).unwrap();
    assert_eq!(record["id"], "PYSEC-1");
    assert_eq!(
        advisories::records_for(&pool, Ecosystem::PyPi, &[])
            .await
            .unwrap(),
        Vec::<CandidateRecord>::new()
    );
}
