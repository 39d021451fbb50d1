//! Rule packs an org uploaded: YAML Semgrep rules, addressed by name within the org.
//!
//! The API validates a pack (picket-engine) before [`put`] stores it; this module keeps the
//! invariants the database can: a rule id names one rule in the org (`rule_pack_rules`' key),
//! a pack is replaced whole in one transaction, and an org's packs stay within
//! [`MAX_PACKS_PER_ORG`] and [`MAX_ORG_BYTES`].

use crate::{DbError, Result};
use picket_core::{OrgId, RuleId, RulePackId};
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

/// Most packs one org may keep.
pub const MAX_PACKS_PER_ORG: i64 = 100;
/// Largest total size of one org's packs, in bytes: every scan of the org carries them all.
pub const MAX_ORG_BYTES: i64 = 8 * 1024 * 1024;

/// Whether a name is a valid pack name: 1-100 characters of `A-Z a-z 0-9 space . _ -`, starting
/// with a letter or digit. Mirrors the table's CHECK.
pub fn valid_name(name: &str) -> bool {
    crate::types::valid_object_name(name)
}

/// A stored pack, without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulePackRecord {
    pub id: RulePackId,
    pub name: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub rules: Vec<RuleId>,
    pub languages: Vec<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A pack to store: its YAML and what validation read from it.
#[derive(Debug, Clone)]
pub struct NewRulePack<'a> {
    pub name: &'a str,
    pub content: &'a str,
    pub sha256: &'a str,
    pub rules: &'a [RuleId],
    pub languages: &'a [String],
}

/// Why [`put`] refused a pack that is valid on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutRefused {
    /// A rule id of the pack belongs to another of the org's packs.
    RuleTaken { rule_id: String, pack: String },
    /// The org would keep more than [`MAX_PACKS_PER_ORG`] packs.
    TooManyPacks,
    /// The org's packs would exceed [`MAX_ORG_BYTES`].
    TooLarge { total_bytes: i64 },
}

struct Row {
    id: uuid::Uuid,
    name: String,
    sha256: String,
    size_bytes: i64,
    rules: Vec<String>,
    languages: Vec<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<Row> for RulePackRecord {
    type Error = DbError;
    fn try_from(r: Row) -> Result<Self> {
        let rules = r
            .rules
            .into_iter()
            .map(|id| {
                id.parse()
                    .map_err(|e: picket_core::ParseError| DbError::Corrupt(e.to_string()))
            })
            .collect::<Result<_>>()?;
        Ok(RulePackRecord {
            id: r.id.into(),
            name: r.name,
            sha256: r.sha256,
            size_bytes: r.size_bytes,
            rules,
            languages: r.languages,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// The org's packs by name.
pub async fn list(ex: impl PgExecutor<'_>, org: OrgId) -> Result<Vec<RulePackRecord>> {
    let rows = sqlx::query_as!(
        Row,
        r#"
        SELECT p.id, p.name, p.sha256, octet_length(p.content)::bigint AS "size_bytes!",
               ARRAY(SELECT r.rule_id FROM rule_pack_rules r WHERE r.pack_id = p.id
                     ORDER BY r.ordinal) AS "rules!",
               p.languages, p.created_at, p.updated_at
        FROM rule_packs p
        WHERE p.org_id = $1
        ORDER BY p.name
        "#,
        org.0
    )
    .fetch_all(ex)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// One pack of the org by name, with its content.
pub async fn get(
    ex: impl PgExecutor<'_>,
    org: OrgId,
    name: &str,
) -> Result<(RulePackRecord, String)> {
    let row = sqlx::query!(
        r#"
        SELECT p.id, p.name, p.sha256, octet_length(p.content)::bigint AS "size_bytes!",
               ARRAY(SELECT r.rule_id FROM rule_pack_rules r WHERE r.pack_id = p.id
                     ORDER BY r.ordinal) AS "rules!",
               p.languages, p.created_at, p.updated_at, p.content
        FROM rule_packs p
        WHERE p.org_id = $1 AND p.name = $2
        "#,
        org.0,
        name
    )
    .fetch_optional(ex)
    .await?
    .ok_or(DbError::NotFound)?;
    let record = Row {
        id: row.id,
        name: row.name,
        sha256: row.sha256,
        size_bytes: row.size_bytes,
        rules: row.rules,
        languages: row.languages,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
    .try_into()?;
    Ok((record, row.content))
}

/// Creates the pack `name` or replaces it whole, in the caller's transaction. Returns the pack
/// as stored and whether it was created, or why the org cannot take it. The org's row is
/// locked first, so concurrent uploads to one org apply one after the other and the limits and
/// the rule-id check see each other's results.
pub async fn put(
    conn: &mut PgConnection,
    org: OrgId,
    pack: &NewRulePack<'_>,
) -> Result<Result<(RulePackRecord, bool), PutRefused>> {
    sqlx::query!("SELECT id FROM orgs WHERE id = $1 FOR UPDATE", org.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(DbError::NotFound)?;
    let rule_ids: Vec<&str> = pack.rules.iter().map(RuleId::as_str).collect();
    let taken = sqlx::query!(
        r#"
        SELECT r.rule_id, p.name
        FROM rule_pack_rules r JOIN rule_packs p ON p.id = r.pack_id
        WHERE r.org_id = $1 AND r.rule_id = ANY($2::text[]) AND p.name <> $3
        ORDER BY r.rule_id
        LIMIT 1
        "#,
        org.0,
        &rule_ids as &[&str],
        pack.name
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(t) = taken {
        return Ok(Err(PutRefused::RuleTaken {
            rule_id: t.rule_id,
            pack: t.name,
        }));
    }
    let others = sqlx::query!(
        r#"
        SELECT count(*) AS "packs!", COALESCE(sum(octet_length(content)), 0)::bigint AS "bytes!"
        FROM rule_packs WHERE org_id = $1 AND name <> $2
        "#,
        org.0,
        pack.name
    )
    .fetch_one(&mut *conn)
    .await?;
    if others.packs + 1 > MAX_PACKS_PER_ORG {
        return Ok(Err(PutRefused::TooManyPacks));
    }
    let total_bytes = others.bytes + pack.content.len() as i64;
    if total_bytes > MAX_ORG_BYTES {
        return Ok(Err(PutRefused::TooLarge { total_bytes }));
    }
    let stored = sqlx::query!(
        r#"
        INSERT INTO rule_packs (id, org_id, name, content, sha256, languages)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (org_id, name) DO UPDATE
            SET content = EXCLUDED.content, sha256 = EXCLUDED.sha256,
                languages = EXCLUDED.languages, updated_at = now()
        RETURNING id, (xmax = 0) AS "created!"
        "#,
        RulePackId::new().0,
        org.0,
        pack.name,
        pack.content,
        pack.sha256,
        pack.languages
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM rule_pack_rules WHERE pack_id = $1", stored.id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        r#"
        INSERT INTO rule_pack_rules (org_id, rule_id, pack_id, ordinal)
        SELECT $1, n.rule_id, $2, n.ordinal::int
        FROM unnest($3::text[]) WITH ORDINALITY AS n(rule_id, ordinal)
        "#,
        org.0,
        stored.id,
        &rule_ids as &[&str]
    )
    .execute(&mut *conn)
    .await?;
    let (record, _) = get(&mut *conn, org, pack.name).await?;
    Ok(Ok((record, stored.created)))
}

/// Deletes the pack; [`DbError::NotFound`] when the org has none by that name.
pub async fn delete(ex: impl PgExecutor<'_>, org: OrgId, name: &str) -> Result<()> {
    let done = sqlx::query!(
        "DELETE FROM rule_packs WHERE org_id = $1 AND name = $2",
        org.0,
        name
    )
    .execute(ex)
    .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Every pack of the org as (name, sha256, content), by name: what a scan's worker loads.
pub async fn contents(
    ex: impl PgExecutor<'_>,
    org: OrgId,
) -> Result<Vec<(String, String, String)>> {
    let rows = sqlx::query!(
        "SELECT name, sha256, content FROM rule_packs WHERE org_id = $1 ORDER BY name",
        org.0
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.name, r.sha256, r.content))
        .collect())
}
