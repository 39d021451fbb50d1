//! The Projects page's "Not scanning" tab, second part: repositories the org's connections can
//! see that are not projects (from each connection's stored listing, `picket_db::inventory`),
//! with when each connection was last listed; add the selected ones (through
//! `POST /api/v1/connections/{id}/repositories`, one call per connection), or read every
//! listing again now (`POST /api/v1/connections/{id}/repositories/refresh`).

use super::projects::{show, AddForm, ProjectsQuery, PAGE_SIZE};
use crate::api::Refusal;
use crate::format::{self, When};
use crate::session::Session;
use crate::WebState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use picket_core::{OrgId, Provider};
use picket_db::connections::ConnectionRecord;
use picket_db::inventory::{self, UnaddedMatch};
use picket_db::DbError;
use serde::Deserialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Whether Picket can list a connection's repositories (a GitHub App's credentials, a GitLab or
/// Bitbucket token, an Azure DevOps PAT).
pub fn lists_repositories(provider: Provider, has_credentials: bool) -> bool {
    matches!(
        provider,
        Provider::Github | Provider::Gitlab | Provider::Bitbucket | Provider::AzureDevops
    ) && has_credentials
}

/// One repository not added.
#[derive(Debug, Clone)]
pub struct RepoView {
    /// `<connection id>:<provider repo id>`: what the add form posts.
    pub value: String,
    pub full_name: String,
    pub provider: &'static str,
    pub connection_id: String,
    pub connection_name: String,
    pub default_branch: String,
    pub private: bool,
    pub archived: bool,
}

/// A connection whose repositories are listed, and when it last was.
#[derive(Debug, Clone)]
pub struct ListingView {
    pub id: String,
    pub name: String,
    pub listed: Option<When>,
}

/// The tab's second part.
#[derive(Debug, Clone)]
pub struct NotAdded {
    pub rows: Vec<RepoView>,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    pub listings: Vec<ListingView>,
}

/// Reads the part for the org: `filter` from the page's search and provider filter, `page` of
/// [`PAGE_SIZE`] rows, `href(page)` the link to another page of it.
pub async fn read(
    pool: &sqlx::PgPool,
    org: OrgId,
    connections: &[ConnectionRecord],
    filter: UnaddedMatch,
    page: i64,
    href: impl Fn(i64) -> String,
) -> Result<NotAdded, DbError> {
    let now = OffsetDateTime::now_utc();
    let found = inventory::unadded(pool, org, &filter, (page - 1) * PAGE_SIZE, PAGE_SIZE).await?;
    let pages = ((found.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    Ok(NotAdded {
        rows: found
            .rows
            .into_iter()
            .map(|r| RepoView {
                value: format!("{}:{}", r.connection_id, r.provider_repo_id),
                full_name: r.full_name,
                provider: super::projects::provider_label(r.provider),
                connection_id: r.connection_id.to_string(),
                connection_name: r.connection_name,
                default_branch: r.default_branch,
                private: r.private,
                archived: r.archived,
            })
            .collect(),
        total: found.total,
        page,
        pages,
        prev_href: (page > 1).then(|| href(page - 1)),
        next_href: (page < pages).then(|| href(page + 1)),
        listings: connections
            .iter()
            .filter(|c| lists_repositories(c.provider, c.has_credentials))
            .map(|c| ListingView {
                id: c.id.to_string(),
                name: c.name.clone(),
                listed: c.repositories_listed_at.map(|at| format::when(at, now)),
            })
            .collect(),
    })
}

/// The tab to come back to, from a form's hidden fields.
fn back(pairs: &[(String, String)]) -> ProjectsQuery {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    ProjectsQuery {
        tab: Some("not_scanning".to_owned()),
        q: get("q"),
        provider: get("provider"),
        ..ProjectsQuery::default()
    }
}

#[derive(Debug, Deserialize)]
struct Onboarded {
    added: Vec<serde_json::Value>,
}

/// `POST /projects/repositories/add`: the selected repositories (`repository`, repeated, each
/// `<connection id>:<provider repo id>`), one API call per connection. A refusal stops there and
/// says how many were added before it.
pub async fn add(State(state): State<WebState>, session: Session, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let q = back(&pairs);
    let mut by_connection: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in &pairs {
        if k != "repository" {
            continue;
        }
        match v.split_once(':') {
            // A connection id is a UUID (so it is safe in the path as it is).
            Some((c, r)) if uuid::Uuid::parse_str(c).is_ok() && !r.is_empty() => {
                by_connection.entry(c).or_default().push(r)
            }
            _ => {}
        }
    }
    if by_connection.is_empty() {
        let message = "Select at least one repository to add.".to_owned();
        return refused(
            &state,
            &session,
            &q,
            StatusCode::UNPROCESSABLE_ENTITY,
            message,
        )
        .await;
    }
    let mut added = 0;
    for (connection, ids) in by_connection {
        let answer: Result<Onboarded, Refusal> = state
            .api
            .call(
                session.caller,
                Method::POST,
                &format!("/api/v1/connections/{connection}/repositories"),
                Some(serde_json::json!({ "select": "chosen", "repository_ids": ids })),
            )
            .await;
        match answer {
            Ok(o) => added += o.added.len(),
            Err(r) => {
                let mut message = r.say("add repositories");
                if added > 0 {
                    message.push_str(&format!(" {added} were added before this."));
                }
                return refused(&state, &session, &q, r.status(), message).await;
            }
        }
    }
    Redirect::to(&format!("/projects?tab=not_scanning&repos_added={added}")).into_response()
}

#[derive(Debug, Deserialize)]
struct Refreshed {
    listed: u64,
}

/// `POST /projects/repositories/refresh`: reads every listable connection's repositories now.
/// Each connection's failure is reported by name; the others are still read.
pub async fn refresh(State(state): State<WebState>, session: Session, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let q = back(&pairs);
    let connections =
        match picket_db::connections::list(state.db().pool(), session.caller.org_id).await {
            Ok(c) => c,
            Err(e) => return super::db_unavailable(&e, &session),
        };
    let (mut listed, mut failures) = (0u64, Vec::new());
    let mut status = StatusCode::OK;
    for c in connections
        .iter()
        .filter(|c| lists_repositories(c.provider, c.has_credentials))
    {
        let answer: Result<Refreshed, Refusal> = state
            .api
            .call(
                session.caller,
                Method::POST,
                &format!("/api/v1/connections/{}/repositories/refresh", c.id),
                None,
            )
            .await;
        match answer {
            Ok(r) => listed += r.listed,
            Err(r) => {
                status = r.status();
                failures.push(format!("{}: {}", c.name, r.message()));
            }
        }
    }
    if failures.is_empty() {
        return Redirect::to(&format!("/projects?tab=not_scanning&refreshed={listed}"))
            .into_response();
    }
    let message = format!(
        "Some connections could not be listed. {}",
        failures.join(" · ")
    );
    refused(&state, &session, &q, status, message).await
}

async fn refused(
    state: &WebState,
    session: &Session,
    q: &ProjectsQuery,
    status: StatusCode,
    message: String,
) -> Response {
    show(state, session, q, status, Some(message), AddForm::default()).await
}
