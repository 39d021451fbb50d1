//! The reconcile sweep's turns (picket-scheduler `reconcile`).
//!
//! GitHub never retries a webhook delivery (and GitLab drops them while a hook is disabled), so
//! the scheduler periodically lists the open pull
//! requests of the projects below and queues, through [`webhooks::sweep_pull_request`], a scan
//! for every head never scanned. Each project has a turn, `projects.reconciled_at`: [`projects`]
//! lists them oldest turn first, a sweep [`take_turn`]s a project right before listing its pull
//! requests, and [`give_back_turn`]s it when its API budget ran out before the listing finished,
//! so the next sweep starts with the projects this one did not reach. Taking a turn is a
//! compare-and-set on the turn seen, so two scheduler replicas sweeping at once split the
//! projects instead of listing each twice.
//!
//! [`webhooks::sweep_pull_request`]: crate::webhooks::sweep_pull_request

use crate::Result;
use picket_core::{ConnectionId, ProjectId};
use sqlx::PgExecutor;
use time::OffsetDateTime;

/// A project the sweep lists the open pull requests of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepProject {
    pub project_id: ProjectId,
    pub connection_id: ConnectionId,
    /// The provider's id of the repository.
    pub provider_repo_id: String,
    pub full_name: String,
    /// The GitHub App installation the repository is reached through; `None` for providers
    /// without installations (GitLab).
    pub installation_id: Option<String>,
    /// The project's last turn; `None`: never swept.
    pub reconciled_at: Option<OffsetDateTime>,
}

/// Every project the sweep covers, oldest turn first (never swept first): enabled (not disabled
/// by an uninstalled or suspended installation, nor a removed repository), with diff-aware scans
/// on, on a GitHub connection that holds credentials and reached through a known installation
/// (a project added by hand before any webhook named its installation has none yet: it is not
/// swept until one does), or on a GitLab, Bitbucket Cloud or Azure DevOps connection that holds
/// a token.
pub async fn projects(ex: impl PgExecutor<'_>) -> Result<Vec<SweepProject>> {
    let rows = sqlx::query!(
        r#"
        SELECT p.id, p.connection_id, p.provider_repo_id, p.full_name,
               p.provider_installation_id AS installation_id, p.reconciled_at
        FROM projects p JOIN vcs_connections c ON c.id = p.connection_id
        WHERE p.disabled_reason IS NULL AND p.diff_scans_enabled
          AND c.credentials IS NOT NULL
          AND ((c.provider = 'github' AND p.provider_installation_id IS NOT NULL)
               OR c.provider IN ('gitlab', 'bitbucket', 'azure_devops'))
        ORDER BY p.reconciled_at NULLS FIRST, p.id
        "#
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SweepProject {
            project_id: ProjectId(r.id),
            connection_id: ConnectionId(r.connection_id),
            provider_repo_id: r.provider_repo_id,
            full_name: r.full_name,
            installation_id: r.installation_id,
            reconciled_at: r.reconciled_at,
        })
        .collect())
}

/// Takes `project`'s turn if it is still the one `seen` in [`projects`] (no other sweep took it
/// since) and the project is still enabled with diff scans on. Returns the turn's instant (the
/// database's clock), which is also when the listing that follows was asked for; `None` when the
/// turn is not this sweep's.
pub async fn take_turn(
    ex: impl PgExecutor<'_>,
    project: ProjectId,
    seen: Option<OffsetDateTime>,
) -> Result<Option<OffsetDateTime>> {
    let taken = sqlx::query_scalar!(
        r#"
        UPDATE projects SET reconciled_at = now()
        WHERE id = $1 AND reconciled_at IS NOT DISTINCT FROM $2
          AND disabled_reason IS NULL AND diff_scans_enabled
        RETURNING reconciled_at AS "reconciled_at!"
        "#,
        project.0,
        seen
    )
    .fetch_optional(ex)
    .await?;
    Ok(taken)
}

/// Gives back a turn taken at `taken` whose listing did not finish (the installation's budget ran
/// out): the project's turn goes back to `previous`, so the next sweep lists it first. Does
/// nothing when another sweep has taken the project's turn since.
pub async fn give_back_turn(
    ex: impl PgExecutor<'_>,
    project: ProjectId,
    taken: OffsetDateTime,
    previous: Option<OffsetDateTime>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE projects SET reconciled_at = $3 WHERE id = $1 AND reconciled_at = $2",
        project.0,
        taken,
        previous
    )
    .execute(ex)
    .await?;
    Ok(())
}
