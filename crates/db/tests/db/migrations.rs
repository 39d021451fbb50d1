use picket_core::{
    FindingStatus, Product, Provider, Role, RuleMode, ScanKind, ScanState, ScanTrigger, Severity,
};
use picket_db::types::PgEnum;
use picket_db::MIGRATOR;
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn migrations_apply_to_an_empty_database_and_reapply_cleanly(pool: PgPool) {
    MIGRATOR.run(&pool).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, MIGRATOR.iter().count());
    // A second run (a restart, another replica) finds nothing to do and changes nothing.
    MIGRATOR.run(&pool).await.unwrap();
    let again: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(again, applied);
}

async fn pg_enum_labels(pool: &PgPool, name: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT e.enumlabel::text FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
         WHERE t.typname = $1 ORDER BY e.enumsortorder",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn assert_enum<T: PgEnum>(pool: &PgPool) {
    let db = pg_enum_labels(pool, T::TYPE_NAME).await;
    let core: Vec<String> = T::VARIANTS.iter().map(|v| v.as_str().to_owned()).collect();
    assert_eq!(
        db,
        core,
        "Postgres enum {} and picket-core disagree",
        T::TYPE_NAME
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn postgres_enums_match_core(pool: PgPool) {
    assert_enum::<ScanKind>(&pool).await;
    assert_enum::<ScanTrigger>(&pool).await;
    assert_enum::<ScanState>(&pool).await;
    assert_enum::<Product>(&pool).await;
    assert_enum::<Severity>(&pool).await;
    assert_enum::<FindingStatus>(&pool).await;
    assert_enum::<RuleMode>(&pool).await;
    assert_enum::<Role>(&pool).await;
    assert_enum::<Provider>(&pool).await;
}

/// Statements of a migration that add a `NOT NULL` column without a default: they would fail on
/// a table that already has rows.
fn not_null_columns_without_default(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .flat_map(|stmt| {
            let upper = stmt.to_uppercase();
            if !upper.contains("ALTER TABLE") {
                return Vec::new();
            }
            upper
                .split("ADD COLUMN")
                .skip(1)
                .map(|clause| clause.split(',').next().unwrap_or("").trim().to_owned())
                .filter(|col| col.contains("NOT NULL") && !col.contains("DEFAULT"))
                .collect()
        })
        .collect()
}

#[test]
fn the_not_null_check_catches_a_bad_migration() {
    let bad =
        "ALTER TABLE projects ADD COLUMN x integer NOT NULL, ADD COLUMN y int NOT NULL DEFAULT 0;";
    assert_eq!(
        not_null_columns_without_default(bad),
        vec!["X INTEGER NOT NULL"]
    );
    let good =
        "-- ADD COLUMN z int NOT NULL\nALTER TABLE scans ADD COLUMN z int NOT NULL DEFAULT 1;";
    assert!(not_null_columns_without_default(good).is_empty());
}

#[test]
fn every_not_null_column_added_later_has_a_default() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    // The first migration creates the tables; every later one alters tables that may hold rows.
    for file in files.iter().skip(1) {
        let sql = std::fs::read_to_string(file).unwrap();
        let bad = not_null_columns_without_default(&sql);
        assert!(
            bad.is_empty(),
            "{}: NOT NULL without DEFAULT: {bad:?}",
            file.display()
        );
    }
}

/// Each database draws its own installation id once, at its first migration; migrating again
/// (a restart, another replica) keeps it.
#[sqlx::test(migrations = false)]
async fn the_installation_id_is_drawn_once_per_database(pool: PgPool) {
    MIGRATOR.run(&pool).await.unwrap();
    let first = picket_db::installation::id(&pool).await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    assert_eq!(picket_db::installation::id(&pool).await.unwrap(), first);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM installation")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    // The table holds one row at most.
    assert!(
        sqlx::query("INSERT INTO installation (only_row, id) VALUES (false, '0123456789ab')")
            .execute(&pool)
            .await
            .is_err()
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn two_databases_are_two_installations(a: PgPool) {
    // A second database on the same server, like a second installation on one machine.
    let name = format!("picket_inst_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&a)
        .await
        .unwrap();
    let opts = (*a.connect_options()).clone().database(&name);
    let b = sqlx::PgPool::connect_with(opts).await.unwrap();
    MIGRATOR.run(&b).await.unwrap();
    let (ida, idb) = (
        picket_db::installation::id(&a).await.unwrap(),
        picket_db::installation::id(&b).await.unwrap(),
    );
    b.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&a)
        .await
        .unwrap();
    assert_ne!(ida, idb);
}
