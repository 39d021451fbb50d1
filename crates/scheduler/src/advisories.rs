//! Supply Chain's advisories in: importing OSV records from a folder of JSON files or from the
//! per-ecosystem `all.zip` osv.dev exports (`picket advisories import`), and the sync loop that
//! keeps them current from those exports' URLs.
//!
//! An import streams its source: a blocking thread reads and parses the records a chunk at a
//! time ([`CHUNK_RECORDS`] records or [`CHUNK_BYTES`] of JSON, whichever comes first) and hands
//! each chunk over a bounded channel to the writer, which upserts it
//! ([`picket_db::advisories::Tally`], which writes only what changed) in the one transaction of
//! the source, committed once every record was read. Memory holds a few chunks, the ids seen and
//! a zip's directory (a few hundred bytes a record), never the source's text.
//!
//! A source with one unreadable record is refused whole, naming the record and the reason, and
//! nothing of it is written (the transaction is rolled back). An id a source holds twice ends as
//! its last copy, counted once. The source's state (last attempt, last success, counts, HTTP
//! validators) is kept in `advisory_sources` and shown by the API.

use picket_advisory::osv::Record;
use picket_core::Ecosystem;
use picket_db::advisories::{self, NewAdvisory, Tally, Upserted};
use picket_db::Db;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where osv.dev publishes each ecosystem's records, one zip of JSON files
/// (<https://google.github.io/osv.dev/data/#data-dumps>: `gs://osv-vulnerabilities/<ecosystem>/all.zip`,
/// served over HTTPS from `osv-vulnerabilities.storage.googleapis.com`).
pub const OSV_EXPORTS: &str = "https://osv-vulnerabilities.storage.googleapis.com";

/// The largest record (one zip member or file) an import reads, in bytes: 16 MiB, far above
/// any real OSV record (the largest of the shared snapshot is well under 1 MiB).
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// The largest export the sync loop takes, in bytes. It is spooled to a temporary file (in
/// `TMPDIR`, `/tmp` by default), not held in memory.
pub const MAX_EXPORT_BYTES: u64 = 1 << 30;

/// The most records of one chunk: what is parsed ahead of the writes and written in one
/// statement.
pub const CHUNK_RECORDS: usize = 1_000;

/// The most JSON text of one chunk, in bytes: a chunk is handed over once it holds this much,
/// however few its records (a single larger record makes a chunk of its own).
pub const CHUNK_BYTES: usize = 4 << 20;

/// Chunks parsed and waiting for the writer: at most this many, plus the one being read and the
/// one being written, are in memory at once.
const CHUNKS_AHEAD: usize = 2;

/// Why a source could not be imported. Nothing of the source was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{source_name}: {message}")]
    Read {
        source_name: String,
        message: String,
    },
    #[error("{member}: not an OSV record: {message}")]
    Record { member: String, message: String },
    #[error("{source_name}: no OSV records (no .json file)")]
    Empty { source_name: String },
    #[error("storing advisories: {0}")]
    Db(#[from] picket_db::DbError),
}

/// What one import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub source: String,
    /// Records read.
    pub records: u32,
    /// What was written, each id counted once (an id a source holds twice, its last copy).
    pub written: Upserted,
    /// Records of none of the ecosystems Picket matches (kept, never matched).
    pub other_ecosystems: u32,
}

/// One record's JSON and where it was read from (`<zip>!<member>` or a file's path).
struct Member {
    name: String,
    text: String,
}

/// Imports `path`: a folder (every `*.json` below it, recursively, in the order of their
/// paths) or a zip (every `*.json` member, in the zip's order). Reading and parsing run on a
/// blocking thread, a chunk at a time.
///
/// # Errors
/// [`ImportError`]: the path cannot be read, holds no record, or one record is not valid OSV
/// (the error names it); nothing of the source is written then, and the failure is recorded in
/// the source's state.
pub async fn import_path(db: &Db, path: &Path) -> Result<ImportReport, ImportError> {
    let source = path.display().to_string();
    let owned: PathBuf = path.to_owned();
    import(db, &source, (None, None), move |chunks| {
        read_path(&owned, chunks)
    })
    .await
}

/// Imports a zip's bytes as source `source` (an export's URL), keeping its HTTP validators.
///
/// # Errors
/// As [`import_path`].
pub async fn import_zip_bytes(
    db: &Db,
    source: &str,
    bytes: Vec<u8>,
    validators: (Option<&str>, Option<&str>),
) -> Result<ImportReport, ImportError> {
    let name = source.to_owned();
    import(db, source, validators, move |chunks| {
        read_zip(&name, std::io::Cursor::new(bytes), chunks)
    })
    .await
}

/// Imports a zip file as source `source` (an export's URL, spooled to `file`), keeping its HTTP
/// validators.
async fn import_zip_file(
    db: &Db,
    source: &str,
    file: std::fs::File,
    validators: (Option<&str>, Option<&str>),
) -> Result<ImportReport, ImportError> {
    let name = source.to_owned();
    import(db, source, validators, move |chunks| {
        read_zip(&name, std::io::BufReader::new(file), chunks)
    })
    .await
}

/// Runs `read` on a blocking thread, writes the chunks it hands over in one transaction,
/// committed with the source's state once `read` succeeded; on any failure, rolls back and
/// records the failure in the source's state.
async fn import<F>(
    db: &Db,
    source: &str,
    validators: (Option<&str>, Option<&str>),
    read: F,
) -> Result<ImportReport, ImportError>
where
    F: FnOnce(&mut Chunks) -> Result<(), ImportError> + Send + 'static,
{
    let now = time::OffsetDateTime::now_utc();
    let (sender, mut receiver) = mpsc::channel(CHUNKS_AHEAD);
    let reader = tokio::task::spawn_blocking(move || {
        let mut chunks = Chunks::new(sender);
        read(&mut chunks)?;
        chunks.hand_over()
    });
    let result = write(db, source, now, validators, &mut receiver, reader).await;
    // The reader stops at its next chunk once nobody takes them.
    drop(receiver);
    if let Err(e) = &result {
        advisories::source_failed(db.pool(), source, now, &e.to_string()).await?;
    }
    result
}

/// The writer's side of [`import`]: every chunk into one transaction, committed only when the
/// reader read the whole source. Returning early drops the transaction, which rolls it back.
async fn write(
    db: &Db,
    source: &str,
    now: time::OffsetDateTime,
    validators: (Option<&str>, Option<&str>),
    receiver: &mut mpsc::Receiver<Vec<NewAdvisory>>,
    reader: tokio::task::JoinHandle<Result<(), ImportError>>,
) -> Result<ImportReport, ImportError> {
    let mut tx = db.pool().begin().await.map_err(picket_db::DbError::from)?;
    let mut tally = Tally::default();
    let (mut records, mut other_ecosystems) = (0u32, 0u32);
    while let Some(chunk) = receiver.recv().await {
        records += chunk.len() as u32;
        other_ecosystems += chunk.iter().filter(|a| a.packages.is_empty()).count() as u32;
        tally.upsert(&mut tx, &chunk).await?;
    }
    // The channel closed: the reader is done, with the whole source or with an error.
    reader
        .await
        .map_err(|e| ImportError::Read {
            source_name: source.to_owned(),
            message: e.to_string(),
        })
        .and_then(|r| r)?;
    if records == 0 {
        return Err(ImportError::Empty {
            source_name: source.to_owned(),
        });
    }
    let written = tally.done();
    advisories::source_succeeded(&mut *tx, source, now, records, written, validators).await?;
    tx.commit().await.map_err(picket_db::DbError::from)?;
    tracing::info!(
        source,
        records,
        inserted = written.inserted,
        updated = written.updated,
        unchanged = written.unchanged,
        "advisories imported"
    );
    Ok(ImportReport {
        source: source.to_owned(),
        records,
        written,
        other_ecosystems,
    })
}

/// The reader's side of [`import`]: parses members into the chunk being filled and hands it
/// over to the writer when it is full.
struct Chunks {
    sender: mpsc::Sender<Vec<NewAdvisory>>,
    chunk: Vec<NewAdvisory>,
    bytes: usize,
}

impl Chunks {
    fn new(sender: mpsc::Sender<Vec<NewAdvisory>>) -> Chunks {
        Chunks {
            sender,
            chunk: Vec::with_capacity(CHUNK_RECORDS),
            bytes: 0,
        }
    }

    /// Parses one member into the chunk.
    ///
    /// # Errors
    /// The member is not a record Picket stores (named), or the writer stopped.
    fn push(&mut self, member: Member) -> Result<(), ImportError> {
        let bytes = member.text.len();
        self.chunk.push(to_new(member)?);
        self.bytes += bytes;
        if self.chunk.len() >= CHUNK_RECORDS || self.bytes >= CHUNK_BYTES {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Hands the chunk (if any) to the writer, waiting while [`CHUNKS_AHEAD`] are waiting.
    ///
    /// # Errors
    /// The writer stopped (on an error of its own, which is the one reported).
    fn hand_over(&mut self) -> Result<(), ImportError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_RECORDS));
        self.bytes = 0;
        self.sender
            .blocking_send(chunk)
            .map_err(|_| ImportError::Read {
                source_name: "advisory import".into(),
                message: "the writer stopped".into(),
            })
    }
}

/// A member's record, for the database: its packages of the ecosystems Picket matches, their
/// names normalised.
fn to_new(m: Member) -> Result<NewAdvisory, ImportError> {
    let record = Record::from_json(&m.text).map_err(|e| ImportError::Record {
        member: m.name.clone(),
        message: e.to_string(),
    })?;
    let mut packages: Vec<(Ecosystem, String)> = record
        .affected
        .iter()
        .filter_map(|a| {
            let package = a.package.as_ref()?;
            let ecosystem = package.ecosystem()?;
            Some((ecosystem, ecosystem.normalize(&package.name)))
        })
        .collect();
    packages.sort();
    packages.dedup();
    let new = NewAdvisory {
        id: record.id,
        modified: Some(record.modified),
        published: record.published,
        withdrawn: record.withdrawn,
        aliases: record.aliases,
        packages,
        record: m.text,
        source: m.name,
    };
    match new.refused() {
        Some(message) => Err(ImportError::Record {
            member: new.source,
            message,
        }),
        None => Ok(new),
    }
}

fn read_error(source: &Path, e: impl std::fmt::Display) -> ImportError {
    ImportError::Read {
        source_name: source.display().to_string(),
        message: e.to_string(),
    }
}

/// Every record below a folder, in the order of their paths, or in a zip file.
fn read_path(path: &Path, chunks: &mut Chunks) -> Result<(), ImportError> {
    let meta = std::fs::metadata(path).map_err(|e| read_error(path, e))?;
    if !meta.is_dir() {
        let file = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
        return read_zip(
            &path.display().to_string(),
            std::io::BufReader::new(file),
            chunks,
        );
    }
    // The paths first, sorted (an id held twice: the last path's copy wins, whatever the walk's
    // order), then one file at a time.
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![path.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| read_error(&dir, e))? {
            let entry = entry.map_err(|e| read_error(&dir, e))?;
            let p = entry.path();
            let kind = entry.file_type().map_err(|e| read_error(&p, e))?;
            if kind.is_dir() {
                dirs.push(p);
            } else if kind.is_file() && p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    // By the names records are known by (`Path::display`'s text).
    files.sort_unstable_by(|a, b| a.to_string_lossy().cmp(&b.to_string_lossy()));
    for p in files {
        let text = std::fs::read_to_string(&p).map_err(|e| read_error(&p, e))?;
        chunks.push(Member {
            name: p.display().to_string(),
            text,
        })?;
    }
    Ok(())
}

/// Every `*.json` member of a zip, named `<source>!<member>`, in the zip's order.
fn read_zip(
    source: &str,
    reader: impl Read + Seek,
    chunks: &mut Chunks,
) -> Result<(), ImportError> {
    let err = |e: &dyn std::fmt::Display| ImportError::Read {
        source_name: source.to_owned(),
        message: format!("not a readable zip: {e}"),
    };
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| err(&e))?;
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(|e| err(&e))?;
        if !f.is_file() || !f.name().ends_with(".json") {
            continue;
        }
        let name = format!("{source}!{}", f.name());
        // The declared size is only a hint: never reserve more than a chunk's worth for it,
        // and never read more than a record may hold (a zip bomb stops here).
        let mut text = String::with_capacity((f.size() as usize).min(CHUNK_BYTES));
        (&mut f)
            .take(MAX_RECORD_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| ImportError::Read {
                source_name: name.clone(),
                message: e.to_string(),
            })?;
        if text.len() as u64 > MAX_RECORD_BYTES {
            return Err(ImportError::Record {
                member: name,
                message: format!("over {MAX_RECORD_BYTES} bytes: no OSV record is that large"),
            });
        }
        drop(f);
        chunks.push(Member { name, text })?;
    }
    Ok(())
}

/// How the sync loop runs.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// The exports to fetch (each a zip of OSV JSON files). Empty (the default): the loop does
    /// not run.
    pub urls: Vec<String>,
    /// Pause between two rounds.
    pub every: Duration,
    /// Limit on one fetch.
    pub timeout: Duration,
    /// The HTTP client (its trust: the system's roots and any CA bundle). `None`: reqwest's
    /// default client.
    pub http: Option<reqwest::Client>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            urls: Vec::new(),
            every: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(600),
            http: None,
        }
    }
}

impl SyncConfig {
    /// The sources an operator names: `osv.dev` ([`SyncConfig::osv_dev_urls`]), `none` (or
    /// nothing), or comma-separated http(s) URLs of zips of OSV records.
    ///
    /// # Errors
    /// A URL that is not http(s) with a host, named in the message.
    pub fn parse_sources(spec: &str) -> Result<Vec<String>, String> {
        match spec.trim() {
            "osv.dev" => Ok(SyncConfig::osv_dev_urls()),
            "none" | "" => Ok(Vec::new()),
            list => list
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| {
                    let url = reqwest::Url::parse(u)
                        .ok()
                        .filter(|p| matches!(p.scheme(), "https" | "http") && p.has_host())
                        .ok_or_else(|| {
                            format!(
                                "{u:?} is not an http(s) URL (use osv.dev, none, or \
                                 comma-separated URLs of zips of OSV records)"
                            )
                        })?;
                    // A source's URL is its name: it is stored with every record and shown by
                    // the API to every org. Credentials must not be in it.
                    if !url.username().is_empty() || url.password().is_some() {
                        return Err(format!(
                            "an advisory source URL must not hold credentials (user:password@): \
                             {}://{}/…",
                            url.scheme(),
                            url.host_str().unwrap_or_default()
                        ));
                    }
                    Ok(u.to_owned())
                })
                .collect(),
        }
    }

    /// An HTTP client trusting the system's roots and, when given, the certificates of a PEM
    /// bundle (a mirror behind a private CA).
    ///
    /// # Errors
    /// The bundle holds no readable certificate, or the TLS setup fails.
    pub fn client(extra_roots_pem: Option<&[u8]>) -> Result<reqwest::Client, reqwest::Error> {
        let mut builder = reqwest::Client::builder().use_rustls_tls();
        if let Some(pem) = extra_roots_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder.build()
    }

    /// osv.dev's export of each ecosystem Picket matches ([`OSV_EXPORTS`]).
    pub fn osv_dev_urls() -> Vec<String> {
        Ecosystem::ALL
            .iter()
            .map(|e| format!("{OSV_EXPORTS}/{}/all.zip", e.as_str()))
            .collect()
    }
}

/// Fetches every export of `cfg` now and then every `cfg.every`, until `stop`; an export that
/// did not change since the last success (its ETag or Last-Modified, sent back as
/// `If-None-Match` / `If-Modified-Since`, answered 304) is not read again. A failure is logged
/// and recorded in the source's state; the next round tries again.
pub async fn sync(db: Db, cfg: SyncConfig, stop: CancellationToken) {
    if cfg.urls.is_empty() {
        return;
    }
    let http = cfg.http.clone().unwrap_or_default();
    crate::periodic::every(cfg.every, &stop, || async {
        for url in &cfg.urls {
            if stop.is_cancelled() {
                return;
            }
            if let Err(e) = sync_one(&db, &http, url, cfg.timeout).await {
                tracing::warn!(source = %url, error = %e, "advisory sync failed");
            }
        }
    })
    .await
}

/// Fetches one export and imports it if it changed; `Ok(None)` when it did not.
///
/// # Errors
/// The fetch failed (network, TLS, a status other than 200 or 304, larger than
/// [`MAX_EXPORT_BYTES`]) or the import did; the failure is recorded in the source's state, whose
/// last success stays.
pub async fn sync_one(
    db: &Db,
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<Option<ImportReport>, ImportError> {
    let result = fetch_and_import(db, http, url, timeout).await;
    if let Err(e) = &result {
        let now = time::OffsetDateTime::now_utc();
        advisories::source_failed(db.pool(), url, now, &e.to_string()).await?;
    }
    result
}

async fn fetch_and_import(
    db: &Db,
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<Option<ImportReport>, ImportError> {
    let fetch_err = |message: String| ImportError::Read {
        source_name: url.to_owned(),
        message,
    };
    let known = advisories::source(db.pool(), url).await?;
    let mut req = http.get(url).timeout(timeout);
    if let Some(k) = known.as_ref().filter(|k| k.last_success_at.is_some()) {
        if let Some(etag) = &k.etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &k.last_modified {
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
        }
    }
    use tokio::io::AsyncWriteExt;
    let mut resp = req.send().await.map_err(|e| fetch_err(e.to_string()))?;
    if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
        tracing::debug!(source = url, "advisory export unchanged");
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(fetch_err(format!("answered {}", resp.status())));
    }
    let header = |name: reqwest::header::HeaderName| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header(reqwest::header::ETAG);
    let last_modified = header(reqwest::header::LAST_MODIFIED);
    // Spooled to an unnamed temporary file (gone when closed), so that memory never holds the
    // export.
    let spool = tempfile::tempfile().map_err(|e| fetch_err(format!("spooling the export: {e}")))?;
    let mut file = tokio::fs::File::from_std(spool);
    let mut size = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| fetch_err(e.to_string()))? {
        size += chunk.len() as u64;
        if size > MAX_EXPORT_BYTES {
            return Err(fetch_err(format!(
                "larger than {MAX_EXPORT_BYTES} bytes; not read"
            )));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| fetch_err(format!("spooling the export: {e}")))?;
    }
    file.flush()
        .await
        .map_err(|e| fetch_err(format!("spooling the export: {e}")))?;
    let mut file = file.into_std().await;
    file.rewind()
        .map_err(|e| fetch_err(format!("spooling the export: {e}")))?;
    import_zip_file(db, url, file, (etag.as_deref(), last_modified.as_deref()))
        .await
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_osv_dev_none_or_http_urls() {
        let osv = SyncConfig::parse_sources("osv.dev").unwrap();
        assert_eq!(osv.len(), Ecosystem::ALL.len());
        assert!(osv.contains(&format!("{OSV_EXPORTS}/PyPI/all.zip")));
        assert!(osv.contains(&format!("{OSV_EXPORTS}/crates.io/all.zip")));
        assert_eq!(
            SyncConfig::parse_sources(" none ").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(SyncConfig::parse_sources("").unwrap(), Vec::<String>::new());
        assert_eq!(
            SyncConfig::parse_sources("https://m.example/a.zip, http://10.0.0.1/b.zip,").unwrap(),
            ["https://m.example/a.zip", "http://10.0.0.1/b.zip"]
        );
        for bad in [
            "ftp://m.example/a.zip",
            "osv",
            "https://",
            "file:///tmp/a.zip",
        ] {
            let err = SyncConfig::parse_sources(bad).unwrap_err();
            assert!(err.contains(bad.trim_end_matches('/')), "{err}");
        }
        // Credentials in a source's URL would be stored and shown: refused, without echoing them.
        for bad in [
            "https://user:s3cret@m.example/a.zip",
            "https://tok3n@m.example/a.zip",
        ] {
            let err = SyncConfig::parse_sources(bad).unwrap_err();
            assert!(err.contains("must not hold credentials"), "{err}");
            assert!(!err.contains("s3cret") && !err.contains("tok3n"), "{err}");
        }
    }
}
