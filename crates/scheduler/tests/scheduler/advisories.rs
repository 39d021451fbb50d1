//! Importing OSV advisories on real PostgreSQL: folders and zips of real records (fixtures/osv,
//! copied from the shared snapshot), change detected by content, a bad record refusing its whole
//! source even after chunks of good ones were written, an id repeated across chunks, and the
//! sync loop's fetch of an export over HTTPS from a local server with the test
//! CA, asking again only when the export changed.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use picket_db::advisories;
use picket_db::Db;
use picket_scheduler::advisories::{import_path, sync_one, ImportError, CHUNK_RECORDS};
use picket_test_support::TestCa;
use sqlx::PgPool;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scheduler/fixtures/osv")
}

/// A copy of the fixtures in a folder of the test's own.
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    dir
}

/// A zip of `records` (member name, JSON text), as osv.dev's exports are laid out.
fn zip_of(records: &[(String, String)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in records {
        w.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(text.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn fixture_records() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn package_rows(pool: &PgPool) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT advisory_id, ecosystem, name FROM advisory_packages
         ORDER BY advisory_id, ecosystem, name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_folder_is_imported_once_and_a_changed_record_replaces_its_packages(pool: PgPool) {
    let db = Db::from_pool(pool.clone());
    let dir = folder();
    let first = import_path(&db, dir.path()).await.unwrap();
    assert_eq!(first.records, 5);
    assert_eq!(
        (
            first.written.inserted,
            first.written.updated,
            first.written.unchanged
        ),
        (5, 0, 0)
    );
    let packages = package_rows(&pool).await;
    assert_eq!(packages.len(), 4 + 1 + 1 + 1 + 1, "{packages:#?}");
    assert!(packages.contains(&("PYSEC-2021-9".into(), "PyPI".into(), "django".into())));
    assert!(packages.contains(&(
        "GO-2023-2385".into(),
        "Go".into(),
        "github.com/pubnub/go/v7".into()
    )));

    // The same content again, even reformatted: nothing is written.
    let path = dir.path().join("RUSTSEC-2016-0001.json");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_string(&value).unwrap()).unwrap();
    let again = import_path(&db, dir.path()).await.unwrap();
    assert_eq!(
        (
            again.written.inserted,
            again.written.updated,
            again.written.unchanged
        ),
        (0, 0, 5)
    );

    // A record whose content changed but whose `modified` did not (as Go's export does) is
    // updated, and its packages follow: PyPI names are stored as PEP 503 normalises them.
    let path = dir.path().join("PYSEC-2021-9.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    value["affected"][0]["package"]["name"] = serde_json::json!("Django_Extra.Tools");
    value["aliases"] = serde_json::json!(["CVE-2021-3281"]);
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    let changed = import_path(&db, dir.path()).await.unwrap();
    assert_eq!(
        (
            changed.written.inserted,
            changed.written.updated,
            changed.written.unchanged
        ),
        (0, 1, 4)
    );
    let stored = advisories::get(&pool, "PYSEC-2021-9")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.packages,
        [("PyPI".to_owned(), "django-extra-tools".to_owned())]
    );
    assert_eq!(stored.aliases, ["CVE-2021-3281"]);
    assert_eq!(
        stored.record["affected"][0]["package"]["name"],
        "Django_Extra.Tools"
    );
    // Found by an alias too, when one record has it.
    let by_alias = advisories::get(&pool, "CVE-2016-10931")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_alias.id, "RUSTSEC-2016-0001");
    assert!(advisories::get(&pool, "CVE-1999-0001")
        .await
        .unwrap()
        .is_none());

    // Withdrawn records stay, counted as such.
    let counts = advisories::counts(&pool).await.unwrap();
    let pypi = counts.iter().find(|c| c.ecosystem == "PyPI").unwrap();
    assert_eq!((pypi.advisories, pypi.withdrawn), (3, 1));
    let state = advisories::source(&pool, &dir.path().display().to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            state.records,
            state.inserted,
            state.updated,
            state.unchanged
        ),
        (5, 0, 1, 4)
    );
    assert!(state.last_error.is_none() && state.last_success_at.is_some());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_source_with_one_bad_record_writes_nothing_and_says_which(pool: PgPool) {
    let db = Db::from_pool(pool.clone());
    let dir = folder();
    std::fs::write(
        dir.path().join("PYSEC-2099-1.json"),
        r#"{"id": "PYSEC-2099-1", "modified": "yesterday", "affected": []}"#,
    )
    .unwrap();
    let err = import_path(&db, dir.path()).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, ImportError::Record { .. }) && message.contains("PYSEC-2099-1.json"),
        "{message}"
    );
    assert!(message.contains("modified"), "{message}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM advisories")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing of the source is written");
    let state = advisories::source(&pool, &dir.path().display().to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(state.last_success_at.is_none());
    assert!(state.last_error.unwrap().contains("PYSEC-2099-1.json"));

    // Not a folder, not a zip; a folder without records.
    let not_zip = dir.path().join("notes.txt");
    std::fs::write(&not_zip, "hello").unwrap();
    let err = import_path(&db, &not_zip).await.unwrap_err().to_string();
    assert!(err.contains("not a readable zip"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        import_path(&db, empty.path()).await.unwrap_err(),
        ImportError::Empty { .. }
    ));
    let missing = import_path(&db, &dir.path().join("nope"))
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("nope"), "{missing}");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_zip_imports_like_a_folder(pool: PgPool) {
    let db = Db::from_pool(pool.clone());
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("all.zip");
    std::fs::write(&zip, zip_of(&fixture_records())).unwrap();
    let report = import_path(&db, &zip).await.unwrap();
    assert_eq!((report.records, report.written.inserted), (5, 5));
    let stored = advisories::get(&pool, "GO-2023-2385")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.source,
        format!("{}!GO-2023-2385.json", zip.display())
    );
}

/// A small valid OSV record of PyPI's `package`, told apart by its summary.
fn synthetic(id: &str, package: &str, summary: &str) -> String {
    serde_json::json!({
        "id": id,
        "modified": "2024-01-01T00:00:00Z",
        "summary": summary,
        "affected": [{
            "package": {"ecosystem": "PyPI", "name": package},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]
        }]
    })
    .to_string()
}

/// `n` distinct records, `PYSEC-T-<i>`, as zip members `many/PYSEC-T-<i>.json`.
fn many(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let id = format!("PYSEC-T-{i}");
            (
                format!("many/{id}.json"),
                synthetic(&id, &format!("pkg-{i}"), "one of many"),
            )
        })
        .collect()
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_bad_record_after_chunks_of_good_ones_writes_nothing_and_is_named(pool: PgPool) {
    let db = Db::from_pool(pool.clone());
    let dir = folder();
    import_path(&db, dir.path()).await.unwrap();
    let before = advisories::get(&pool, "PYSEC-2021-9")
        .await
        .unwrap()
        .unwrap();
    let packages_before = package_rows(&pool).await;

    // A changed copy of a stored record first, then five chunks of new records: the reader
    // runs at most three chunks ahead of the writer, so at least two were written in the
    // import's transaction when the bad record is read.
    let mut changed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("PYSEC-2021-9.json")).unwrap(),
    )
    .unwrap();
    changed["affected"][0]["package"]["name"] = serde_json::json!("not-django");
    let mut records = vec![("PYSEC-2021-9.json".to_owned(), changed.to_string())];
    records.extend(many(5 * CHUNK_RECORDS));
    records.push((
        "bad/PYSEC-2099-1.json".to_owned(),
        r#"{"id": "PYSEC-2099-1", "modified": "yesterday", "affected": []}"#.to_owned(),
    ));
    records.extend(many(10).into_iter().map(|(n, t)| (format!("after/{n}"), t)));
    let zip = dir.path().join("all.zip");
    std::fs::write(&zip, zip_of(&records)).unwrap();

    let err = import_path(&db, &zip).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ImportError::Record { .. }), "{message}");
    assert!(
        message.contains(&format!("{}!bad/PYSEC-2099-1.json", zip.display())),
        "{message}"
    );
    assert!(message.contains("modified"), "{message}");

    // Nothing of the zip: no new record, no new package, the stored record as it was.
    assert_eq!(count(&pool, "advisories").await, 5);
    assert_eq!(package_rows(&pool).await, packages_before);
    let after = advisories::get(&pool, "PYSEC-2021-9")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, before);
    let state = advisories::source(&pool, &zip.display().to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(state.last_success_at.is_none());
    assert!(state.last_error.unwrap().contains("bad/PYSEC-2099-1.json"));
    assert_eq!(
        (
            state.records,
            state.inserted,
            state.updated,
            state.unchanged
        ),
        (0, 0, 0, 0)
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn an_id_repeated_across_chunks_ends_as_its_last_copy_and_is_counted_once(pool: PgPool) {
    let db = Db::from_pool(pool.clone());
    let dir = tempfile::tempdir().unwrap();
    let n = 2 * CHUNK_RECORDS + 10;
    let first = synthetic("PYSEC-T-DUP", "first-package", "first copy");
    let last = synthetic("PYSEC-T-DUP", "last-package", "last copy");
    // The first copy in the first chunk, the last one in the third.
    let mut records = vec![("dup/first.json".to_owned(), first.clone())];
    records.extend(many(n));
    records.push(("dup/last.json".to_owned(), last.clone()));
    let zip = dir.path().join("all.zip");
    std::fs::write(&zip, zip_of(&records)).unwrap();

    let report = import_path(&db, &zip).await.unwrap();
    let written = |r: &picket_scheduler::advisories::ImportReport| {
        (r.written.inserted, r.written.updated, r.written.unchanged)
    };
    assert_eq!(report.records as usize, n + 2, "records read");
    assert_eq!(written(&report), (n as u32 + 1, 0, 0), "each id once");
    let stored = advisories::get(&pool, "PYSEC-T-DUP")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.record["summary"], "last copy");
    assert_eq!(stored.source, format!("{}!dup/last.json", zip.display()));
    assert_eq!(
        stored.packages,
        [("PyPI".to_owned(), "last-package".to_owned())]
    );
    assert_eq!(count(&pool, "advisories").await as usize, n + 1);
    let state = advisories::source(&pool, &zip.display().to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            state.records,
            state.inserted,
            state.updated,
            state.unchanged
        ),
        (n as i32 + 2, n as i32 + 1, 0, 0)
    );

    // Again: the first copy replaces the stored one for a while, the last one puts it back, so
    // the record is as it was, counted unchanged.
    let again = import_path(&db, &zip).await.unwrap();
    assert_eq!(written(&again), (0, 0, n as u32 + 1));
    let stored = advisories::get(&pool, "PYSEC-T-DUP")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.record["summary"], "last copy");
    assert_eq!(
        stored.packages,
        [("PyPI".to_owned(), "last-package".to_owned())]
    );

    // A source whose copies both say the first: the stored record changes once, counted once.
    let mut records = vec![("dup/first.json".to_owned(), first.clone())];
    records.extend(many(n));
    records.push(("dup/again.json".to_owned(), first));
    std::fs::write(&zip, zip_of(&records)).unwrap();
    let changed = import_path(&db, &zip).await.unwrap();
    assert_eq!(written(&changed), (0, 1, n as u32));
    let stored = advisories::get(&pool, "PYSEC-T-DUP")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.record["summary"], "first copy");
    assert_eq!(
        stored.packages,
        [("PyPI".to_owned(), "first-package".to_owned())]
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_record_the_store_would_refuse_is_named(pool: PgPool) {
    let db = Db::from_pool(pool.clone());
    let dir = folder();
    std::fs::write(
        dir.path().join("weird.json"),
        synthetic("../../etc/passwd", "pkg", "an id no table stores"),
    )
    .unwrap();
    let err = import_path(&db, dir.path()).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, ImportError::Record { .. }) && message.contains("weird.json"),
        "{message}"
    );
    assert!(message.contains("../../etc/passwd"), "{message}");
    assert_eq!(count(&pool, "advisories").await, 0);
}

/// What the export server saw and serves.
#[derive(Default)]
struct Export {
    zip: Mutex<(Vec<u8>, String)>,
    requests: AtomicU32,
    conditional: AtomicU32,
}

async fn serve_export(
    axum::extract::State(export): axum::extract::State<Arc<Export>>,
    headers: HeaderMap,
) -> axum::response::Response {
    export.requests.fetch_add(1, Ordering::SeqCst);
    let (zip, etag) = export.zip.lock().unwrap().clone();
    if let Some(asked) = headers.get(header::IF_NONE_MATCH) {
        export.conditional.fetch_add(1, Ordering::SeqCst);
        if asked.to_str().unwrap() == etag {
            return StatusCode::NOT_MODIFIED.into_response();
        }
    }
    ([(header::ETAG, etag)], zip).into_response()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_sync_fetches_an_export_over_https_and_again_only_when_it_changed(pool: PgPool) {
    let db = Db::from_pool(pool.clone());
    let records = fixture_records();
    let export = Arc::new(Export::default());
    *export.zip.lock().unwrap() = (zip_of(&records[..3]), "\"v1\"".into());
    let router = axum::Router::new()
        .route("/PyPI/all.zip", axum::routing::get(serve_export))
        .with_state(export.clone());
    let ca = TestCa::new("picket advisory sync test CA");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/PyPI/all.zip", listener.local_addr().unwrap());
    let server =
        picket_test_support::tls::serve(listener, router, Some(ca.server_config(&["127.0.0.1"])));
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let timeout = Duration::from_secs(10);

    let first = sync_one(&db, &http, &url, timeout).await.unwrap().unwrap();
    assert_eq!((first.records, first.written.inserted), (3, 3));
    // Unchanged: asked with the ETag, answered 304, nothing read.
    assert!(sync_one(&db, &http, &url, timeout).await.unwrap().is_none());
    assert_eq!(export.conditional.load(Ordering::SeqCst), 1);
    // A new export: read, and only the new records written.
    *export.zip.lock().unwrap() = (zip_of(&records), "\"v2\"".into());
    let second = sync_one(&db, &http, &url, timeout).await.unwrap().unwrap();
    assert_eq!(
        (
            second.records,
            second.written.inserted,
            second.written.unchanged
        ),
        (5, 2, 3)
    );
    let state = advisories::source(&pool, &url).await.unwrap().unwrap();
    assert_eq!(state.etag.as_deref(), Some("\"v2\""));
    assert_eq!(export.requests.load(Ordering::SeqCst), 3);

    // A client that does not trust the test CA fails, and the failure is kept.
    let untrusting = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let err = sync_one(&db, &untrusting, &url, timeout).await.unwrap_err();
    assert!(matches!(err, ImportError::Read { .. }), "{err}");
    let state = advisories::source(&pool, &url).await.unwrap().unwrap();
    assert!(state.last_error.is_some() && state.last_success_at.is_some());
    assert_eq!(state.records, 5, "the last success's counts stay");
    server.abort();
}
