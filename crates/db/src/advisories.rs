//! Supply Chain's advisories: OSV records shared by every org, their affected packages, and the
//! import state of each source (`migrations/20261203100000_advisories.sql`).
//!
//! [`upsert`] takes a batch of records and writes only what changed: a record whose canonical
//! content (its jsonb text, hashed with SHA-256 by PostgreSQL) is what is stored already is left
//! alone, so importing the same data again writes nothing but the source's state. Change is
//! never judged by `modified`, which some databases do not maintain. A source too big for one
//! batch is written a batch at a time in one transaction through a [`Tally`], which counts what
//! the whole source did.

use crate::Result;
use picket_core::Ecosystem;
use sqlx::{PgConnection, PgExecutor};
use std::collections::{BTreeMap, HashMap, HashSet};
use time::OffsetDateTime;

/// A record to store, as the importer read it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAdvisory {
    pub id: String,
    pub modified: Option<OffsetDateTime>,
    pub published: Option<OffsetDateTime>,
    pub withdrawn: Option<OffsetDateTime>,
    pub aliases: Vec<String>,
    /// The affected packages: ecosystem and name as [`Ecosystem::normalize`] gives it (entries
    /// of ecosystems Picket does not match are left out by the importer).
    pub packages: Vec<(Ecosystem, String)>,
    /// The record's JSON text as read.
    pub record: String,
    /// Where it was read from (a file, a zip's member, an export's URL).
    pub source: String,
}

impl NewAdvisory {
    /// Why the tables would refuse this record, if they would: their checks, said of the
    /// record, so that an importer can name it (rather than fail a whole batch on a constraint).
    /// An id is a letter or digit then letters, digits, `.`, `_`, `:` or `-`, up to 200
    /// characters; a package name 1 to 500 characters; the source 1 to 2,000.
    pub fn refused(&self) -> Option<String> {
        let id_ok = self.id.len() <= 200
            && self.id.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_alphanumeric() || (i > 0 && matches!(b, b'.' | b'_' | b':' | b'-'))
            })
            && !self.id.is_empty();
        if !id_ok {
            return Some(format!(
                "id {:?} is not one Picket stores (a letter or digit, then letters, digits, \
                 `.`, `_`, `:` or `-`, up to 200 characters)",
                self.id.chars().take(240).collect::<String>()
            ));
        }
        if let Some((ecosystem, name)) = self
            .packages
            .iter()
            .find(|(_, n)| n.is_empty() || n.chars().count() > 500)
        {
            return Some(format!(
                "{ecosystem} package name of {} characters (1 to 500 are stored)",
                name.chars().count()
            ));
        }
        let source = self.source.chars().count();
        if !(1..=2000).contains(&source) {
            return Some(format!(
                "read from a name of {source} characters (1 to 2,000 are stored)"
            ));
        }
        None
    }
}

/// What [`upsert`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upserted {
    pub inserted: u32,
    pub updated: u32,
    pub unchanged: u32,
}

impl std::ops::AddAssign for Upserted {
    fn add_assign(&mut self, other: Upserted) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// Stores a batch in the caller's transaction: new records are inserted, records whose content
/// differs from the stored one replace it (with their packages), the others are counted
/// unchanged. Within a batch, the last record of an id wins. One batch is one statement: a
/// source of many records goes through a [`Tally`], a batch at a time.
///
/// Errors: a record the table's checks refuse (see [`NewAdvisory::refused`]; JSON that is not
/// an object) fails the whole batch with [`crate::DbError::Invalid`].
pub async fn upsert(conn: &mut PgConnection, batch: &[NewAdvisory]) -> Result<Upserted> {
    let mut tally = Tally::default();
    tally.upsert(conn, batch).await?;
    Ok(tally.done())
}

/// The batches of one source written in one transaction ([`Tally::upsert`] each), and what the
/// source as a whole did: each id is counted once, against what was stored before the first
/// batch, whatever number of batches held it. The last record of an id wins, as within a
/// batch: a later batch's copy replaces an earlier one's when their contents differ.
///
/// A record an earlier batch replaced and a later one put back as it was is counted unchanged,
/// though it was written twice (its `imported_at` and `changed_at` say so).
///
/// It keeps every id it wrote or found unchanged (tens of bytes each), and the stored content's
/// hash of those an earlier batch replaced. Meant for one transaction: what it says of rows
/// written by a transaction that was rolled back is meaningless.
#[derive(Debug, Default)]
pub struct Tally {
    seen: HashMap<Box<str>, Seen>,
}

/// An id's state in a [`Tally`].
#[derive(Debug)]
enum Seen {
    /// Not stored before the first batch.
    New,
    /// Stored before the first batch; `before` its content's hash once a batch replaced it
    /// (`None`: no batch did), `same` whether what is stored now has that content.
    Stored {
        before: Option<Box<[u8]>>,
        same: bool,
    },
}

impl Tally {
    /// Writes one batch as [`upsert`] does, in the caller's transaction (the one every batch of
    /// this tally goes to).
    ///
    /// # Errors
    /// As [`upsert`].
    pub async fn upsert(&mut self, conn: &mut PgConnection, batch: &[NewAdvisory]) -> Result<()> {
        let mut by_id: BTreeMap<&str, &NewAdvisory> = BTreeMap::new();
        for a in batch {
            by_id.insert(&a.id, a);
        }
        let records: Vec<&NewAdvisory> = by_id.into_values().collect();
        let ids: Vec<&str> = records.iter().map(|a| a.id.as_str()).collect();
        let modified: Vec<Option<OffsetDateTime>> = records.iter().map(|a| a.modified).collect();
        let published: Vec<Option<OffsetDateTime>> = records.iter().map(|a| a.published).collect();
        let withdrawn: Vec<Option<OffsetDateTime>> = records.iter().map(|a| a.withdrawn).collect();
        // PostgreSQL has no arrays of arrays of varying length: aliases go as JSON arrays.
        let aliases: Vec<String> = records
            .iter()
            .map(|a| serde_json::to_string(&a.aliases).unwrap_or_else(|_| "[]".into()))
            .collect();
        let json: Vec<&str> = records.iter().map(|a| a.record.as_str()).collect();
        let sources: Vec<&str> = records.iter().map(|a| a.source.as_str()).collect();
        // The outer SELECT reads the table as it was before the statement (a data-modifying
        // WITH's changes are not visible to the rest of the statement): `before` is the content
        // a written row had, none for a row inserted.
        let written = sqlx::query!(
            r#"
            WITH written AS (
                INSERT INTO advisories AS a
                    (id, modified, published, withdrawn, aliases, record, content_sha256, source)
                SELECT i.id, i.modified, i.published, i.withdrawn,
                       ARRAY(SELECT jsonb_array_elements_text(i.aliases::jsonb)),
                       i.record::jsonb, sha256(convert_to(i.record::jsonb::text, 'UTF8')), i.source
                FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[],
                            $5::text[], $6::text[], $7::text[])
                     AS i(id, modified, published, withdrawn, aliases, record, source)
                ON CONFLICT (id) DO UPDATE
                    SET modified = EXCLUDED.modified, published = EXCLUDED.published,
                        withdrawn = EXCLUDED.withdrawn, aliases = EXCLUDED.aliases,
                        record = EXCLUDED.record, content_sha256 = EXCLUDED.content_sha256,
                        source = EXCLUDED.source, imported_at = now(), changed_at = now()
                    WHERE a.content_sha256 <> EXCLUDED.content_sha256
                RETURNING a.id, a.content_sha256
            )
            SELECT w.id AS "id!", w.content_sha256 AS "after!", b.content_sha256 AS "before?"
            FROM written w LEFT JOIN advisories b ON b.id = w.id
            "#,
            &ids as &[&str],
            &modified as &[Option<OffsetDateTime>],
            &published as &[Option<OffsetDateTime>],
            &withdrawn as &[Option<OffsetDateTime>],
            &aliases,
            &json as &[&str],
            &sources as &[&str],
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut changed: HashMap<String, (Vec<u8>, Option<Vec<u8>>)> = written
            .into_iter()
            .map(|r| (r.id, (r.after, r.before)))
            .collect();
        for a in &records {
            self.saw(&a.id, changed.get_mut(a.id.as_str()));
        }
        if changed.is_empty() {
            return Ok(());
        }
        let changed_ids: Vec<&str> = changed.keys().map(String::as_str).collect();
        sqlx::query!(
            "DELETE FROM advisory_packages WHERE advisory_id = ANY($1)",
            &changed_ids as &[&str]
        )
        .execute(&mut *conn)
        .await?;
        let (mut p_ids, mut p_ecosystems, mut p_names) = (Vec::new(), Vec::new(), Vec::new());
        let changed_ids: HashSet<&str> = changed_ids.into_iter().collect();
        for a in records
            .iter()
            .filter(|a| changed_ids.contains(a.id.as_str()))
        {
            for (ecosystem, name) in &a.packages {
                p_ids.push(a.id.as_str());
                p_ecosystems.push(ecosystem.as_str());
                p_names.push(name.as_str());
            }
        }
        sqlx::query!(
            "INSERT INTO advisory_packages (advisory_id, ecosystem, name)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
             ON CONFLICT DO NOTHING",
            &p_ids as &[&str],
            &p_ecosystems as &[&str],
            &p_names as &[&str],
        )
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Takes in what one batch did with `id`: `written` its content hash now and before the
    /// statement (`None` before: inserted), `None` when the batch left it alone.
    fn saw(&mut self, id: &str, written: Option<&mut (Vec<u8>, Option<Vec<u8>>)>) {
        let written = written.map(|(after, before)| (&*after, before.take()));
        match (self.seen.get_mut(id), written) {
            (None, Some((_, None))) => {
                self.seen.insert(id.into(), Seen::New);
            }
            (None, Some((_, Some(before)))) => {
                // Written: its content differed from what was stored.
                self.seen.insert(
                    id.into(),
                    Seen::Stored {
                        before: Some(before.into()),
                        same: false,
                    },
                );
            }
            (None, None) => {
                self.seen.insert(
                    id.into(),
                    Seen::Stored {
                        before: None,
                        same: true,
                    },
                );
            }
            (Some(Seen::New), _) | (Some(Seen::Stored { .. }), None) => {}
            (Some(Seen::Stored { before, same }), Some((after, stored))) => {
                // The first write of a row stored before this tally says what it held then.
                if before.is_none() {
                    *before = stored.map(Into::into);
                }
                *same = before.as_deref() == Some(after);
            }
        }
    }

    /// What the batches did, each id counted once: inserted (not stored before the first
    /// batch), updated (stored, and now with other content), unchanged (stored with the content
    /// it has now, even when an earlier batch's copy replaced it in between).
    pub fn done(&self) -> Upserted {
        let mut done = Upserted::default();
        for seen in self.seen.values() {
            match seen {
                Seen::New => done.inserted += 1,
                Seen::Stored { same: true, .. } => done.unchanged += 1,
                Seen::Stored { same: false, .. } => done.updated += 1,
            }
        }
        done
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Advisory {
    pub id: String,
    pub modified: Option<OffsetDateTime>,
    pub published: Option<OffsetDateTime>,
    pub withdrawn: Option<OffsetDateTime>,
    pub aliases: Vec<String>,
    /// The record's JSON.
    pub record: serde_json::Value,
    pub source: String,
    pub imported_at: OffsetDateTime,
    pub changed_at: OffsetDateTime,
    /// Its affected packages, sorted.
    pub packages: Vec<(String, String)>,
}

/// The record `id`, or, when no record has that id, the one record that lists it among its
/// aliases (`CVE-…` for a `GHSA-…`); `None` when there is none, or when several alias it.
pub async fn get(ex: impl PgExecutor<'_>, id: &str) -> Result<Option<Advisory>> {
    let rows = sqlx::query!(
        r#"
        SELECT a.id, a.modified, a.published, a.withdrawn, a.aliases, a.record, a.source,
               a.imported_at, a.changed_at,
               coalesce((SELECT array_agg(p.ecosystem || ' ' || p.name ORDER BY p.ecosystem, p.name)
                         FROM advisory_packages p WHERE p.advisory_id = a.id), '{}') AS "packages!"
        FROM advisories a
        WHERE a.id = $1 OR (a.aliases @> ARRAY[$1]::text[] AND NOT EXISTS (SELECT 1 FROM advisories WHERE id = $1))
        ORDER BY a.id
        LIMIT 2
        "#,
        id
    )
    .fetch_all(ex)
    .await?;
    if rows.len() != 1 {
        return Ok(None);
    }
    let r = rows.into_iter().next().expect("one row");
    Ok(Some(Advisory {
        id: r.id,
        modified: r.modified,
        published: r.published,
        withdrawn: r.withdrawn,
        aliases: r.aliases,
        record: r.record,
        source: r.source,
        imported_at: r.imported_at,
        changed_at: r.changed_at,
        packages: r
            .packages
            .into_iter()
            .filter_map(|p| p.split_once(' ').map(|(e, n)| (e.to_owned(), n.to_owned())))
            .collect(),
    }))
}

/// A stored record that names some of the packages asked for ([`records_for`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateRecord {
    /// The record's id.
    pub id: String,
    /// The names asked for that the record affects (normalised as asked), sorted.
    pub names: Vec<String>,
    /// The record's JSON text (PostgreSQL's canonical jsonb text: keys sorted, no spaces), for
    /// `picket_advisory::Record::from_json`.
    pub record: String,
}

/// The records not withdrawn that affect one of `names` (each as [`Ecosystem::normalize`]
/// gives it) in `ecosystem`: one row per record, however many of the names it affects, so each
/// record is read once; sorted by id. One query, on `advisory_packages`' primary key.
pub async fn records_for(
    ex: impl PgExecutor<'_>,
    ecosystem: Ecosystem,
    names: &[String],
) -> Result<Vec<CandidateRecord>> {
    Ok(sqlx::query_as!(
        CandidateRecord,
        r#"
        SELECT a.id, array_agg(p.name ORDER BY p.name) AS "names!", a.record::text AS "record!"
        FROM advisory_packages p JOIN advisories a ON a.id = p.advisory_id
        WHERE p.ecosystem = $1 AND p.name = ANY($2) AND a.withdrawn IS NULL
        GROUP BY a.id
        ORDER BY a.id
        "#,
        ecosystem.as_str(),
        names,
    )
    .fetch_all(ex)
    .await?)
}

/// Of `ecosystems`, those the store holds no record for at all (withdrawn ones count): their
/// packages were checked against nothing, which a scan must say. One query on
/// `advisory_packages`' primary key.
pub async fn ecosystems_without_records(
    ex: impl PgExecutor<'_>,
    ecosystems: &[Ecosystem],
) -> Result<Vec<Ecosystem>> {
    let names: Vec<&str> = ecosystems.iter().map(|e| e.as_str()).collect();
    let empty: Vec<String> = sqlx::query_scalar!(
        r#"
        SELECT e AS "e!" FROM unnest($1::text[]) AS e
        WHERE NOT EXISTS (SELECT 1 FROM advisory_packages p WHERE p.ecosystem = e)
        ORDER BY e
        "#,
        &names as &[&str],
    )
    .fetch_all(ex)
    .await?;
    Ok(ecosystems
        .iter()
        .copied()
        .filter(|e| empty.iter().any(|n| n == e.as_str()))
        .collect())
}

/// How many records (and withdrawn ones) affect each ecosystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcosystemCount {
    pub ecosystem: String,
    pub advisories: i64,
    pub withdrawn: i64,
}

/// The records per ecosystem, by ecosystem.
pub async fn counts(ex: impl PgExecutor<'_>) -> Result<Vec<EcosystemCount>> {
    Ok(sqlx::query_as!(
        EcosystemCount,
        r#"
        SELECT p.ecosystem, count(DISTINCT a.id) AS "advisories!",
               count(DISTINCT a.id) FILTER (WHERE a.withdrawn IS NOT NULL) AS "withdrawn!"
        FROM advisory_packages p JOIN advisories a ON a.id = p.advisory_id
        GROUP BY p.ecosystem ORDER BY p.ecosystem
        "#
    )
    .fetch_all(ex)
    .await?)
}

/// A source's import state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceState {
    pub source: String,
    pub last_attempt_at: OffsetDateTime,
    pub last_success_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub records: i32,
    pub inserted: i32,
    pub updated: i32,
    pub unchanged: i32,
}

/// Every source, by name.
pub async fn sources(ex: impl PgExecutor<'_>) -> Result<Vec<SourceState>> {
    Ok(sqlx::query_as!(
        SourceState,
        "SELECT source, last_attempt_at, last_success_at, last_error, etag, last_modified,
                records, inserted, updated, unchanged
         FROM advisory_sources ORDER BY source"
    )
    .fetch_all(ex)
    .await?)
}

/// The state of `source`, if it was ever imported.
pub async fn source(ex: impl PgExecutor<'_>, source: &str) -> Result<Option<SourceState>> {
    Ok(sqlx::query_as!(
        SourceState,
        "SELECT source, last_attempt_at, last_success_at, last_error, etag, last_modified,
                records, inserted, updated, unchanged
         FROM advisory_sources WHERE source = $1",
        source
    )
    .fetch_optional(ex)
    .await?)
}

/// Records a successful import of `source` at `at`: `records` read, what [`upsert`] did, and
/// the validators of what was fetched (none for a file).
pub async fn source_succeeded(
    ex: impl PgExecutor<'_>,
    source: &str,
    at: OffsetDateTime,
    records: u32,
    done: Upserted,
    validators: (Option<&str>, Option<&str>),
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO advisory_sources
             (source, last_attempt_at, last_success_at, last_error, etag, last_modified,
              records, inserted, updated, unchanged)
         VALUES ($1, $2, $2, NULL, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (source) DO UPDATE
             SET last_attempt_at = $2, last_success_at = $2, last_error = NULL, etag = $3,
                 last_modified = $4, records = $5, inserted = $6, updated = $7, unchanged = $8",
        source,
        at,
        validators.0,
        validators.1,
        records as i32,
        done.inserted as i32,
        done.updated as i32,
        done.unchanged as i32,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Records a failed attempt at `source` (its counts and validators stay those of the last
/// success). `error` is cut to the column's 4,000 characters.
pub async fn source_failed(
    ex: impl PgExecutor<'_>,
    source: &str,
    at: OffsetDateTime,
    error: &str,
) -> Result<()> {
    let error: String = error.chars().take(4000).collect();
    sqlx::query!(
        "INSERT INTO advisory_sources (source, last_attempt_at, last_error)
         VALUES ($1, $2, $3)
         ON CONFLICT (source) DO UPDATE SET last_attempt_at = $2, last_error = $3",
        source,
        at,
        error,
    )
    .execute(ex)
    .await?;
    Ok(())
}
