//! `/api/v1/advisories` over real HTTP: the import state and one record, by id or by an alias,
//! after real OSV records (picket-scheduler's fixtures) were imported the way `picket
//! advisories import` imports them.

use picket_db::Db;
use picket_tests::TestApp;
use sqlx::PgPool;

const RECORDS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/scheduler/tests/scheduler/fixtures/osv"
);

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn advisories_are_read_by_id_or_alias_and_the_import_state_is_shown(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let member = app.member().await;
    let empty = member.get("/api/v1/advisories").await.expect(200);
    assert_eq!(empty["ecosystems"], serde_json::json!([]));
    assert!(empty["last_sync_at"].is_null());

    picket_scheduler::advisories::import_path(
        &Db::from_pool(app.pool.clone()),
        std::path::Path::new(RECORDS),
    )
    .await
    .unwrap();

    let state = member.get("/api/v1/advisories").await.expect(200);
    let counts: Vec<(String, i64, i64)> = state["ecosystems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["ecosystem"].as_str().unwrap().to_owned(),
                e["advisories"].as_i64().unwrap(),
                e["withdrawn"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("Go".to_owned(), 1, 0),
            ("PyPI".to_owned(), 3, 1),
            ("crates.io".to_owned(), 1, 0)
        ]
    );
    assert_eq!(state["sources"][0]["records"], 5);
    assert!(state["last_sync_at"].is_string());

    let record = member
        .get("/api/v1/advisories/PYSEC-2021-9")
        .await
        .expect(200);
    assert_eq!(
        record["aliases"],
        serde_json::json!(["CVE-2021-3281", "GHSA-fvgf-6h6h-3322"])
    );
    assert_eq!(
        record["packages"],
        serde_json::json!([{"ecosystem": "PyPI", "name": "django"}])
    );
    assert_eq!(record["record"]["id"], "PYSEC-2021-9");
    let by_alias = member
        .get("/api/v1/advisories/GHSA-fvgf-6h6h-3322")
        .await
        .expect(200);
    assert_eq!(by_alias["id"], "PYSEC-2021-9");
    let withdrawn = member
        .get("/api/v1/advisories/PYSEC-2019-144")
        .await
        .expect(200);
    assert!(withdrawn["withdrawn"].is_string());

    member
        .get("/api/v1/advisories/GHSA-none-none-none")
        .await
        .problem(404, "advisory_not_found");
    member
        .get("/api/v1/advisories/..%2Fetc")
        .await
        .problem(400, "invalid_path");
    app.anonymous()
        .get("/api/v1/advisories")
        .await
        .problem(401, "unauthorized");
}
