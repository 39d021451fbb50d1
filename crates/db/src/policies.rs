//! Policies: named sets of rule → mode (domain.md §2), addressed by name within an org.
//!
//! [`put`] creates or replaces a policy's whole rule map in the caller's transaction (upsert the
//! policy row, delete its rules, insert the new ones with one `UNNEST`), so readers see the old
//! map or the new one, never a mix. Reads load policies with their rules in one query and group
//! them here. Merging several policies into effective modes is picket-core's job
//! (`policy::effective_modes`).

use crate::types::Pg;
use crate::{DbError, Result};
use picket_core::{OrgId, PolicyId, RuleId, RuleMode};
use sqlx::{PgConnection, PgExecutor};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// A policy with its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    pub id: PolicyId,
    pub name: String,
    pub rules: BTreeMap<RuleId, RuleMode>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Whether a name is a valid policy name: 1-100 characters of `A-Z a-z 0-9 space . _ -`, starting
/// with a letter or digit, and not the reserved `effective`. Mirrors the table's CHECK so callers
/// can refuse bad names before touching the database.
pub fn valid_name(name: &str) -> bool {
    crate::types::valid_object_name(name) && name != "effective"
}

struct PolicyRuleRow {
    id: Uuid,
    name: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    rule_id: Option<String>,
    mode: Option<Pg<RuleMode>>,
}

/// Groups rows (ordered by policy) into policies.
fn group(rows: Vec<PolicyRuleRow>) -> Result<Vec<PolicyRecord>> {
    let mut out: Vec<PolicyRecord> = Vec::new();
    for r in rows {
        if out.last().is_none_or(|p| p.id.0 != r.id) {
            out.push(PolicyRecord {
                id: r.id.into(),
                name: r.name,
                rules: BTreeMap::new(),
                created_at: r.created_at,
                updated_at: r.updated_at,
            });
        }
        if let (Some(rule), Some(mode), Some(policy)) = (r.rule_id, r.mode, out.last_mut()) {
            let rule: RuleId = rule
                .parse()
                .map_err(|e: picket_core::ParseError| DbError::Corrupt(e.to_string()))?;
            policy.rules.insert(rule, mode.0);
        }
    }
    Ok(out)
}

/// The org's policies by name, each with its rules.
pub async fn list(ex: impl PgExecutor<'_>, org: OrgId) -> Result<Vec<PolicyRecord>> {
    let rows = sqlx::query_as!(
        PolicyRuleRow,
        r#"
        SELECT p.id, p.name, p.created_at, p.updated_at,
               r.rule_id AS "rule_id?", r.mode AS "mode?: Pg<RuleMode>"
        FROM policies p
        LEFT JOIN policy_rules r ON r.policy_id = p.id
        WHERE p.org_id = $1
        ORDER BY p.name, p.id, r.rule_id
        "#,
        org.0
    )
    .fetch_all(ex)
    .await?;
    group(rows)
}

/// One policy of the org by name.
pub async fn get(ex: impl PgExecutor<'_>, org: OrgId, name: &str) -> Result<PolicyRecord> {
    let rows = sqlx::query_as!(
        PolicyRuleRow,
        r#"
        SELECT p.id, p.name, p.created_at, p.updated_at,
               r.rule_id AS "rule_id?", r.mode AS "mode?: Pg<RuleMode>"
        FROM policies p
        LEFT JOIN policy_rules r ON r.policy_id = p.id
        WHERE p.org_id = $1 AND p.name = $2
        ORDER BY r.rule_id
        "#,
        org.0,
        name
    )
    .fetch_all(ex)
    .await?;
    group(rows)?.pop().ok_or(DbError::NotFound)
}

/// Creates the policy `name` or replaces its whole rule map, in the caller's transaction.
/// Returns the policy as stored and whether it was created. The policy row is locked by the
/// upsert, so two concurrent replacements apply one after the other.
pub async fn put(
    conn: &mut PgConnection,
    org: OrgId,
    name: &str,
    rules: &BTreeMap<RuleId, RuleMode>,
) -> Result<(PolicyRecord, bool)> {
    let policy = sqlx::query!(
        r#"
        INSERT INTO policies (id, org_id, name) VALUES ($1, $2, $3)
        ON CONFLICT (org_id, name) DO UPDATE SET updated_at = now()
        RETURNING id, (xmax = 0) AS "created!"
        "#,
        PolicyId::new().0,
        org.0,
        name
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM policy_rules WHERE policy_id = $1", policy.id)
        .execute(&mut *conn)
        .await?;
    let rule_ids: Vec<&str> = rules.keys().map(RuleId::as_str).collect();
    let modes: Vec<&str> = rules.values().map(|m| m.as_str()).collect();
    sqlx::query!(
        r#"
        INSERT INTO policy_rules (policy_id, rule_id, mode)
        SELECT $1, n.rule_id, n.mode::rule_mode
        FROM unnest($2::text[], $3::text[]) AS n(rule_id, mode)
        "#,
        policy.id,
        &rule_ids as &[&str],
        &modes as &[&str]
    )
    .execute(&mut *conn)
    .await?;
    let stored = get(&mut *conn, org, name).await?;
    Ok((stored, policy.created))
}

/// Changes some rules of the org's policy `name`, in the caller's transaction: a rule mapped to a
/// mode gets that mode, a rule mapped to `None` leaves the policy; rules not named keep theirs.
/// Returns the policy as stored; [`DbError::NotFound`] when the org has no such policy (nothing
/// is written).
pub async fn patch(
    conn: &mut PgConnection,
    org: OrgId,
    name: &str,
    changes: &BTreeMap<RuleId, Option<RuleMode>>,
) -> Result<PolicyRecord> {
    let policy_id = sqlx::query_scalar!(
        "UPDATE policies SET updated_at = now() WHERE org_id = $1 AND name = $2 RETURNING id",
        org.0,
        name
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DbError::NotFound)?;
    let removed: Vec<&str> = changes
        .iter()
        .filter(|(_, m)| m.is_none())
        .map(|(r, _)| r.as_str())
        .collect();
    sqlx::query!(
        "DELETE FROM policy_rules WHERE policy_id = $1 AND rule_id = ANY($2)",
        policy_id,
        &removed as &[&str]
    )
    .execute(&mut *conn)
    .await?;
    let (rule_ids, modes): (Vec<&str>, Vec<&str>) = changes
        .iter()
        .filter_map(|(r, m)| m.map(|m| (r.as_str(), m.as_str())))
        .unzip();
    sqlx::query!(
        r#"
        INSERT INTO policy_rules (policy_id, rule_id, mode)
        SELECT $1, n.rule_id, n.mode::rule_mode
        FROM unnest($2::text[], $3::text[]) AS n(rule_id, mode)
        ON CONFLICT (policy_id, rule_id) DO UPDATE SET mode = EXCLUDED.mode
        "#,
        policy_id,
        &rule_ids as &[&str],
        &modes as &[&str]
    )
    .execute(&mut *conn)
    .await?;
    let stored = get(&mut *conn, org, name).await?;
    Ok(stored)
}

/// Deletes a policy of the org with its rules.
pub async fn delete(ex: impl PgExecutor<'_>, org: OrgId, name: &str) -> Result<()> {
    let deleted = sqlx::query!(
        "DELETE FROM policies WHERE org_id = $1 AND name = $2",
        org.0,
        name
    )
    .execute(ex)
    .await?
    .rows_affected();
    if deleted == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_follow_the_table_check() {
        assert!(valid_name("Default"));
        assert!(valid_name("team a.b_c-d"));
        assert!(!valid_name(""));
        assert!(!valid_name(" leading"));
        assert!(!valid_name("effective"));
        assert!(!valid_name("slash/no"));
        assert!(!valid_name(&"a".repeat(101)));
        assert!(valid_name(&"a".repeat(100)));
    }
}
