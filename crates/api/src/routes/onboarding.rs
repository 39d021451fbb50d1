//! Onboarding through a connection: check it, list what it can see, add repositories in bulk.
//!
//! - `GET /api/v1/connections/{id}/check`: the credential's identity (a GitHub App's slug), its
//!   installations (account, repository selection, suspended, permissions not granted) and the
//!   permissions and events Picket needs that the App lacks, by name.
//! - `GET /api/v1/connections/{id}/repositories`: the repositories the connection's installations
//!   can see, a page at a time (the provider's opaque cursor), each with its project when it is
//!   already one.
//! - `POST /api/v1/connections/{id}/webhooks`: makes the provider deliver to Picket (GitLab: a
//!   hook on the connection's group, or on each of its projects; Bitbucket: a hook on each
//!   repository; Azure DevOps: a service-hook subscription per repository and event), with the
//!   connection's secret (Azure DevOps: a new password, drawn for it and returned once).
//! - `POST /api/v1/connections/{id}/repositories`: adds the chosen repositories (by provider id),
//!   or all of them, or all of them and every repository an installation gains later (the
//!   connection's `follow_installations`, which the installation webhooks read).
//!
//! Adding lists first, then writes: every repository comes from the provider's listing (the
//! client sends ids only), the whole listing is read before anything is written
//! ([`SourceProvider::all_repositories`]: GitHub lists the installations once, then each one's
//! repositories 100 a page), so a provider error midway writes nothing. Then one transaction: repositories already projects are left as
//! they are (reported `already_present`; their installation is recorded and a project disabled
//! because the installation had lost it is enabled again, since the listing shows it can see it
//! now), the others become projects by the project rules (weekly slot, initial full scan), in
//! batches of [`ADD_BATCH`] rows per statement.
//!
//! Provider errors are problems with picket-vcs's codes: 503 when trying again later may work
//! (`provider_rate_limited`, `provider_unavailable`, `provider_unreachable`), 502 otherwise.

use crate::constraints::{self, Text};
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{Admin, ApiJson, ApiPath, ApiQuery, Caller};
use crate::routes::not_found_as;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use picket_core::{ConnectionId, OrgId, ProjectId};
use picket_db::projects::{self, AddRefused, NewProject};
use picket_db::{connections, inventory, webhooks};
use picket_vcs::event::RepositorySelection;
use picket_vcs::provider::Repository;
use picket_vcs::{ErrorCode, SourceProvider};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Most repository ids one `chosen` request may name (as many as `POST /api/v1/projects` adds).
pub const MAX_CHOSEN: usize = crate::routes::projects::MAX_PROJECTS_PER_REQUEST;
/// Projects written per statement when adding (each batch inserts its projects and queues their
/// initial scans in two statements).
pub const ADD_BATCH: usize = 1000;
/// Repositories per page of the listing route when `per_page` is not given (GitHub's default).
pub const DEFAULT_PER_PAGE: i64 = 30;
/// Most repositories per page of the listing route (GitHub's largest page).
pub const MAX_PER_PAGE: i64 = 100;

/// A provider's listing cursor as the API passes it through: opaque, URL-safe.
pub const PROVIDER_CURSOR: Text = Text {
    min: 1,
    max: 200,
    pattern: "^[A-Za-z0-9._~-]*$",
    forbidden: &[],
    reserved: &[],
    expected: "a `next_cursor` this listing returned (1-200 characters of A-Z a-z 0-9 . _ ~ -)",
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(check_connection))
        .routes(routes!(install_webhooks))
        .routes(routes!(list_repositories, add_repositories))
        .routes(routes!(refresh_repositories))
}

/// Stores a whole listing as the connection's inventory (what the Projects page's "Not
/// scanning" tab lists).
async fn store_listing(
    state: &AppState,
    org: OrgId,
    id: ConnectionId,
    listed: &[Repository],
) -> Result<(), ApiError> {
    let mut tx = state.db().pool().begin().await?;
    inventory::replace(&mut tx, org, id, listed)
        .await
        .map_err(|e| not_found_as(e, "connection"))?;
    tx.commit().await?;
    Ok(())
}

/// The live provider of one of the org's connections. 404 when the connection is not the org's;
/// 409 `no_provider_client` when it has nothing to reach a provider with (no credentials, a
/// provider Picket has no client for yet, or a GitHub connection holding a token instead of an
/// App's credentials).
pub(crate) async fn provider_of(
    state: &AppState,
    org: OrgId,
    id: ConnectionId,
) -> Result<Arc<dyn SourceProvider>, ApiError> {
    let connection = connections::get(state.db().pool(), org, id)
        .await
        .map_err(|e| not_found_as(e, "connection"))?;
    let no_client = |why: &str| {
        ApiError::conflict(
            "no_provider_client",
            format!("this connection cannot be used to reach its provider: {why}"),
        )
    };
    if !connection.has_credentials {
        return Err(no_client("it holds no credentials"));
    }
    let registry = state.require_providers()?;
    registry.source(id).await.map_err(|e| match e.code {
        ErrorCode::BadConfig => no_client(&e.message),
        _ => e.into(),
    })
}

/// The hooks a connection's provider now delivers to Picket through.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstalledWebhooks {
    /// Where they deliver (the connection's `webhook_url`).
    pub webhook_url: String,
    /// The provider's ids of the hooks created or updated.
    pub hook_ids: Vec<String>,
    /// Azure DevOps connections: the new Basic authentication password (user `picket`) the
    /// subscriptions now send, drawn for this call and shown this once (only its hash is
    /// stored; the previous password stays valid for the rotation overlap). Absent when no
    /// subscription was written, and for other providers.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub webhook_password: Option<crate::routes::connections::ShownOnce>,
}

/// Make the provider deliver this connection's webhooks to Picket (admin): GitLab gets a hook
/// on the connection's group (subgroups' projects included), or on each of its enabled
/// projects, for merge request and note events, with the connection's webhook secret as the
/// hook's secret token; Bitbucket a hook on each enabled project's repository (pull request
/// created, updated and commented on), signed with the connection's webhook secret; Azure
/// DevOps a Web Hooks subscription per enabled project's repository and event (pull request
/// created, updated and commented on) with Basic authentication, whose password is drawn anew
/// by this call, returned once (`webhook_password`) and stored as a hash once the provider took
/// it, the previous one valid for the rotation overlap (a provider failure midway may leave
/// some subscriptions with a password Picket did not keep: call again). A hook Picket made
/// before is updated in place, so calling again (after adding projects, or rotating the secret)
/// is safe. Needs `PICKET_PUBLIC_URL`.
#[utoipa::path(post, path = "/api/v1/connections/{id}/webhooks", tag = "connections",
    params(ApiPath<ConnectionId>),
    responses(
        (status = 200, body = InstalledWebhooks),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_public_url`: the server has no `PICKET_PUBLIC_URL` for providers to deliver to; `no_provider_client`: the connection holds nothing to reach its provider with; `webhooks_not_per_connection`: the provider's webhooks are not set per connection (a GitHub App's are set on the App, a plain git connection has none), or the secret is a signing token the provider's API cannot set", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider refused: `provider_unauthorized`, `provider_forbidden` (the token may not manage hooks), `provider_not_found`, `provider_rejected`, `provider_bad_response`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`provider_rate_limited`, `provider_unavailable`, `provider_unreachable`: try again later; `providers_unavailable`; `timeout`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn install_webhooks(
    Admin(caller): Admin,
    ApiPath(id): ApiPath<ConnectionId>,
    State(state): State<AppState>,
) -> Result<Json<InstalledWebhooks>, ApiError> {
    let source = provider_of(&state, caller.org_id, id).await?;
    let Some(public) = state.webhooks().public_url.clone() else {
        return Err(ApiError::conflict(
            "no_public_url",
            "the server has no public URL (PICKET_PUBLIC_URL) for the provider to deliver to",
        ));
    };
    let target = connections::webhook_target(state.db().pool(), state.cipher(), id).await?;
    if target.org_id != caller.org_id {
        return Err(not_found_as(picket_db::DbError::NotFound, "connection"));
    }
    let not_per_connection = |why: String| ApiError::conflict("webhooks_not_per_connection", why);
    let no_secret = || not_per_connection("the connection holds no webhook secret".into());
    // Azure DevOps: the password drawn for this call (the stored hash cannot be sent).
    let mut drawn: Option<(secrecy::SecretString, String)> = None;
    let secret =
        match (target.provider, target.credentials.as_ref()) {
            (picket_core::Provider::Gitlab, Some(text)) => {
                serde_json::from_str::<picket_vcs::gitlab::GitLabCredentials>(
                    secrecy::ExposeSecret::expose_secret(text),
                )
                .map_err(|_| no_secret())?
                .webhook_secret
            }
            (picket_core::Provider::Bitbucket, Some(text)) => {
                serde_json::from_str::<picket_vcs::bitbucket::BitbucketCredentials>(
                    secrecy::ExposeSecret::expose_secret(text),
                )
                .map_err(|_| no_secret())?
                .webhook_secret
            }
            (picket_core::Provider::AzureDevops, Some(text)) => {
                serde_json::from_str::<picket_vcs::azure::AzureCredentials>(
                    secrecy::ExposeSecret::expose_secret(text),
                )
                .map_err(|_| no_secret())?;
                let (password, hash) = picket_vcs::azure::webhook::generate_password();
                drawn = Some((password.clone(), hash));
                password
            }
            _ => return Err(not_per_connection(
                "this provider's webhooks are not set per connection (a GitHub App's are set on \
                 the App)"
                    .into(),
            )),
        };
    let repos: Vec<picket_vcs::provider::RepoLocator> =
        webhooks::hooked_repos(state.db().pool(), caller.org_id, id)
            .await?
            .into_iter()
            .map(
                |(id, full_name, installation_id)| picket_vcs::provider::RepoLocator {
                    id,
                    full_name,
                    installation_id,
                },
            )
            .collect();
    let url = format!(
        "{}/webhooks/{}/{}",
        public.trim_end_matches('/'),
        target.provider.as_str(),
        id
    );
    let hook_ids = source
        .ensure_webhooks(&url, &secret, &repos)
        .await
        .map_err(|e| match e.code {
            ErrorCode::BadConfig => not_per_connection(e.message),
            _ => e.into(),
        })?;
    let mut webhook_password = None;
    if let Some((password, hash)) = drawn.filter(|_| !hook_ids.is_empty()) {
        store_password_hash(&state, caller.org_id, id, hash).await?;
        webhook_password = Some(crate::routes::connections::ShownOnce::new(password));
    }
    tracing::info!(connection_id = %id, hooks = hook_ids.len(), "webhooks installed");
    Ok(Json(InstalledWebhooks {
        webhook_url: url,
        hook_ids,
        webhook_password,
    }))
}

/// Makes `hash` an Azure DevOps connection's service-hook password hash, the current one valid
/// for the rotation overlap, as `POST .../webhook-secret/rotate` does: read again under a row
/// lock, so a change made while the provider was being called is kept.
async fn store_password_hash(
    state: &AppState,
    org: OrgId,
    id: ConnectionId,
    hash: String,
) -> Result<(), ApiError> {
    use secrecy::ExposeSecret;
    let overlap = time::Duration::try_from(state.webhooks().secret_overlap)
        .map_err(|e| ApiError::internal(&e))?;
    let mut tx = state.db().pool().begin().await?;
    let (_, stored) = connections::credentials_for_update(&mut tx, state.cipher(), org, id)
        .await
        .map_err(|e| not_found_as(e, "connection"))?;
    let gone = || {
        ApiError::conflict(
            "webhooks_not_per_connection",
            "the connection's credentials changed while its subscriptions were being written: \
             call again",
        )
    };
    let mut credentials: picket_vcs::azure::AzureCredentials = stored
        .as_ref()
        .and_then(|text| serde_json::from_str(text.expose_secret()).ok())
        .ok_or_else(gone)?;
    credentials.rotate_webhook_password(
        secrecy::SecretString::from(hash),
        OffsetDateTime::now_utc(),
        overlap,
    );
    let sealed = crate::routes::connections::sealable(&credentials)?;
    connections::replace_credentials(&mut *tx, state.cipher(), org, id, &sealed).await?;
    tx.commit().await?;
    state.webhook_targets().forget(id);
    Ok(())
}

/// One installation of the connection's App.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckedInstallation {
    /// The provider's installation id (GitHub App installation id).
    #[schema(schema_with = constraints::repo_text)]
    pub id: String,
    /// The account (organization or user) it is installed on.
    pub account: String,
    /// `all`: every repository of the account; `selected`: the ones its owner picked.
    #[schema(schema_with = selection_schema)]
    pub repository_selection: Option<&'static str>,
    /// Suspended installations give no access: their projects are disabled.
    pub suspended: bool,
    /// Permissions Picket needs that this installation has not granted yet (its owner has not
    /// accepted the App's updated permissions), as `name: level`.
    pub missing_permissions: Vec<String>,
}

fn selection_schema() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([
            serde_json::json!("all"),
            serde_json::json!("selected"),
            serde_json::Value::Null,
        ]))
        .build()
}

/// What a connection is and what it may do.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionCheck {
    /// Who the credential stands for: a GitHub App's slug.
    pub identity: String,
    /// The App's installations, by id.
    pub installations: Vec<CheckedInstallation>,
    /// Permissions Picket needs that the App does not request, as `name: level` (GitHub's
    /// names: `metadata: read`, `contents: read`, `pull_requests: write`, `checks: write`).
    pub missing_permissions: Vec<String>,
    /// Webhook events Picket needs that the App does not subscribe to (`pull_request`,
    /// `issue_comment`, `pull_request_review_comment`).
    pub missing_events: Vec<String>,
    /// Nothing is missing, and at least one installation is active with every permission
    /// granted.
    pub ready: bool,
}

/// Check a connection (admin or member): the App's identity, its installations and what it
/// lacks. Calls the provider (GitHub: `GET /app`, `GET /app/installations`).
#[utoipa::path(get, path = "/api/v1/connections/{id}/check", tag = "connections",
    params(ApiPath<ConnectionId>),
    responses(
        (status = 200, body = ConnectionCheck),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_provider_client`: the connection holds nothing to reach its provider with (no credentials, or not a GitHub App's)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider refused or answered wrongly: `provider_unauthorized` (wrong App id or key), `provider_forbidden`, `provider_not_found`, `provider_rejected`, `provider_bad_response`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`provider_rate_limited`, `provider_unavailable`, `provider_unreachable`: try again later; `providers_unavailable`; `timeout`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn check_connection(
    caller: Caller,
    ApiPath(id): ApiPath<ConnectionId>,
    State(state): State<AppState>,
) -> Result<Json<ConnectionCheck>, ApiError> {
    let source = provider_of(&state, caller.org_id, id).await?;
    let check = source.check().await?;
    let installations: Vec<CheckedInstallation> = check
        .installations
        .into_iter()
        .map(|i| CheckedInstallation {
            id: i.id,
            account: i.account,
            repository_selection: i.repository_selection.map(|s| match s {
                RepositorySelection::All => "all",
                RepositorySelection::Selected => "selected",
            }),
            suspended: i.suspended,
            missing_permissions: i.missing_permissions,
        })
        .collect();
    let ready = check.missing_permissions.is_empty()
        && check.missing_events.is_empty()
        && installations
            .iter()
            .any(|i| !i.suspended && i.missing_permissions.is_empty());
    Ok(Json(ConnectionCheck {
        identity: check.identity,
        installations,
        missing_permissions: check.missing_permissions,
        missing_events: check.missing_events,
        ready,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RepositoryQuery {
    /// From the previous page's `next_cursor` (opaque: the provider's).
    #[param(schema_with = cursor_schema)]
    pub cursor: Option<String>,
    /// 1-100, default 30.
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

fn cursor_schema() -> utoipa::openapi::schema::Object {
    PROVIDER_CURSOR.schema()
}

/// A repository the connection can see.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisibleRepository {
    /// The provider's id of the repository (stable across renames): what
    /// `POST /api/v1/connections/{id}/repositories` takes.
    pub provider_repo_id: String,
    /// `owner/name`.
    pub full_name: String,
    pub clone_url: String,
    pub default_branch: String,
    pub private: bool,
    pub archived: bool,
    /// The installation (GitHub App installation id) through which the connection sees it.
    pub installation_id: Option<String>,
    /// The Picket project of this repository on this connection, when it is already one.
    pub project_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VisibleRepositoryPage {
    pub items: Vec<VisibleRepository>,
    /// Pass as `cursor` to get the next page; absent on the last page. A page may hold fewer
    /// than `per_page` repositories (GitHub: the last page of one installation) and still have a
    /// next one.
    pub next_cursor: Option<String>,
}

/// A provider error on a call made with the client's cursor: a cursor the provider did not make
/// is the client's mistake (400 naming `cursor`), anything else the provider's.
fn listing_error(e: picket_vcs::VcsError, had_cursor: bool) -> ApiError {
    if had_cursor && e.code == ErrorCode::Rejected && e.status.is_none() {
        ApiError::invalid_query(
            "cursor",
            "not a cursor of this listing (pass a `next_cursor` it returned)",
        )
    } else {
        e.into()
    }
}

/// The repositories the connection's installations can see (admin or member), a page at a time,
/// installation after installation (suspended installations are skipped), each with its project
/// when it is already one. Calls the provider (GitHub: `GET /app/installations`, then
/// `GET /installation/repositories` with each installation's token).
#[utoipa::path(get, path = "/api/v1/connections/{id}/repositories", tag = "connections",
    params(ApiPath<ConnectionId>, RepositoryQuery),
    responses(
        (status = 200, body = VisibleRepositoryPage),
        (status = 400, description = "`invalid_query`: `cursor` is not one this listing returned, or `per_page` is out of range; `invalid_path`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_provider_client`: the connection holds nothing to reach its provider with", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider refused or answered wrongly (`provider_unauthorized`, `provider_forbidden`, ...)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`provider_rate_limited`, `provider_unavailable`, `provider_unreachable`: try again later; `providers_unavailable`; `timeout`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_repositories(
    caller: Caller,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(q): ApiQuery<RepositoryQuery>,
    State(state): State<AppState>,
) -> Result<Json<VisibleRepositoryPage>, ApiError> {
    let per_page = match q.per_page {
        None => DEFAULT_PER_PAGE,
        Some(n) if (1..=MAX_PER_PAGE).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::invalid_query(
                "per_page",
                format!("{n} is out of range 1-{MAX_PER_PAGE}"),
            ))
        }
    };
    if let Some(cursor) = &q.cursor {
        PROVIDER_CURSOR.check_query("cursor", cursor)?;
    }
    let source = provider_of(&state, caller.org_id, id).await?;
    let page = source
        .list_repositories(q.cursor.as_deref(), u32::try_from(per_page).unwrap_or(30))
        .await
        .map_err(|e| listing_error(e, q.cursor.is_some()))?;
    let ids: Vec<String> = page.items.iter().map(|r| r.id.clone()).collect();
    inventory::record_seen(state.db().pool(), caller.org_id, id, &page.items).await?;
    let known: HashMap<String, ProjectId> = webhooks::known_repos(state.db().pool(), id, &ids)
        .await?
        .into_iter()
        .map(|k| (k.provider_repo_id, k.project_id))
        .collect();
    Ok(Json(VisibleRepositoryPage {
        items: page
            .items
            .into_iter()
            .map(|r| VisibleRepository {
                project_id: known.get(&r.id).map(|p| p.0),
                provider_repo_id: r.id,
                full_name: r.full_name,
                clone_url: r.clone_url,
                default_branch: r.default_branch,
                private: r.private,
                archived: r.archived,
                installation_id: r.installation_id,
            })
            .collect(),
        next_cursor: page.next,
    }))
}

/// What a refresh of the connection's inventory read.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepositoryInventory {
    /// Repositories the connection can see now.
    pub listed: u64,
    /// Of those, the ones that are not projects of this connection.
    pub not_added: u64,
    /// When the listing was read (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub listed_at: OffsetDateTime,
}

/// Read the connection's whole listing now and keep it as its inventory (admin or member): what
/// the Projects page's "Not scanning" tab lists as repositories not added yet. Picket also keeps
/// it when repositories are added and refreshes it periodically (the scheduler's
/// `PICKET_INVENTORY_REFRESH`). Calls the provider (GitHub: `GET /app/installations`, then
/// `GET /installation/repositories`, 100 a page, with each installation's token).
#[utoipa::path(post, path = "/api/v1/connections/{id}/repositories/refresh", tag = "connections",
    params(ApiPath<ConnectionId>),
    responses(
        (status = 200, body = RepositoryInventory),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_provider_client`: the connection holds nothing to reach its provider with", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider refused or answered wrongly (`provider_unauthorized`, `provider_forbidden`, ...); the inventory is left as it was", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`provider_rate_limited`, `provider_unavailable`, `provider_unreachable`: try again later, the inventory is left as it was; `providers_unavailable`; `timeout`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn refresh_repositories(
    caller: Caller,
    ApiPath(id): ApiPath<ConnectionId>,
    State(state): State<AppState>,
) -> Result<Json<RepositoryInventory>, ApiError> {
    let source = provider_of(&state, caller.org_id, id).await?;
    let listed = source.all_repositories().await?;
    store_listing(&state, caller.org_id, id, &listed).await?;
    let ids: Vec<String> = listed.iter().map(|r| r.id.clone()).collect();
    let known = webhooks::known_repos(state.db().pool(), id, &ids).await?;
    Ok(Json(RepositoryInventory {
        listed: listed.len() as u64,
        not_added: (listed.len() - known.len().min(listed.len())) as u64,
        listed_at: OffsetDateTime::now_utc(),
    }))
}

/// Which repositories to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// The ones named in `repository_ids`.
    Chosen,
    /// Every repository the connection's installations can see now.
    All,
    /// Every one now, and every one an installation gains later (sets the connection's
    /// `follow_installations`).
    AllAndFuture,
}

/// What to add: `{"select": "chosen", "repository_ids": [...]}`, `{"select": "all"}` or
/// `{"select": "all_and_future"}`. Its schema is [`AddRepositories::schema`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRepositories {
    pub select: Selection,
    /// `chosen`: 1-1000 provider ids of repositories the connection can see (repeats count once).
    #[serde(default)]
    pub repository_ids: Option<Vec<String>>,
}

impl utoipa::PartialSchema for AddRepositories {
    fn schema() -> RefOr<Schema> {
        use constraints::{closed_object, literal, null_only};
        let ids = ArrayBuilder::new()
            .items(constraints::repo_text())
            .min_items(Some(1))
            .max_items(Some(MAX_CHOSEN))
            .description(Some(
                "Provider ids of repositories the connection can see (`provider_repo_id` of the \
                 listing); repeats count once.",
            ))
            .build();
        let chosen = closed_object(
            vec![
                ("select", literal("chosen")),
                ("repository_ids", Schema::Array(ids)),
            ],
            &["select", "repository_ids"],
            "Add these repositories, 1-1000 of them.",
        );
        let all = closed_object(
            vec![
                (
                    "select",
                    Schema::Object(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["all", "all_and_future"]))
                            .build(),
                    ),
                ),
                ("repository_ids", null_only()),
            ],
            &["select"],
            "`all`: every repository the connection's installations can see now; \
             `all_and_future`: those, and every repository an installation gains later (sets \
             the connection's `follow_installations`).",
        );
        Schema::OneOf(
            utoipa::openapi::schema::OneOfBuilder::new()
                .item(chosen)
                .item(all)
                .build(),
        )
        .into()
    }
}

impl ToSchema for AddRepositories {}

/// A repository of the call, as a project.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnboardedRepository {
    pub provider_repo_id: String,
    pub full_name: String,
    /// The installation (GitHub App installation id) it is reached through.
    pub installation_id: Option<String>,
    pub project_id: Uuid,
    /// The initial full scan queued for it; null for a repository that was already a project.
    pub initial_scan_id: Option<Uuid>,
}

/// What a call added.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnboardingResult {
    /// New projects, each with its weekly slot and its initial full scan queued.
    pub added: Vec<OnboardedRepository>,
    /// Repositories that were already projects of this connection: left as they were, but for
    /// their installation being recorded.
    pub already_present: Vec<OnboardedRepository>,
    /// Projects among `already_present` that were disabled (their installation had lost them)
    /// and are enabled again, since the installation can see them now.
    pub enabled_again: Vec<Uuid>,
    /// The connection's setting after the call: whether repositories an installation gains
    /// later are added too.
    pub follow_installations: bool,
}

/// The chosen ids, checked (422 naming `repository_ids[i]`), in order, repeats dropped.
fn chosen_ids(body: &AddRepositories) -> Result<Vec<String>, ApiError> {
    match (body.select, &body.repository_ids) {
        (Selection::Chosen, None) => Err(ApiError::invalid_body(
            "repository_ids",
            "`chosen` needs 1-1000 repository ids",
        )),
        (Selection::Chosen, Some(ids)) => {
            if ids.is_empty() || ids.len() > MAX_CHOSEN {
                return Err(ApiError::invalid_body(
                    "repository_ids",
                    format!("must hold 1-{MAX_CHOSEN} repository ids"),
                ));
            }
            let errors: Vec<FieldError> = ids
                .iter()
                .enumerate()
                .filter_map(|(i, id)| {
                    constraints::REPO_TEXT
                        .verdict(id)
                        .err()
                        .map(|expected| FieldError {
                            field: format!("repository_ids[{i}]"),
                            message: format!("must be {expected}"),
                        })
                })
                .collect();
            if let Some(first) = errors.first() {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    format!("{}: {}", first.field, first.message),
                )
                .with_fields(errors));
            }
            let mut seen = HashSet::new();
            Ok(ids.iter().filter(|id| seen.insert(*id)).cloned().collect())
        }
        (_, Some(_)) => Err(ApiError::invalid_body(
            "repository_ids",
            "only `chosen` names repositories",
        )),
        (_, None) => Ok(Vec::new()),
    }
}

/// The project a listed repository becomes.
fn new_project(connection: ConnectionId, r: &Repository) -> NewProject {
    NewProject {
        connection_id: connection,
        provider_repo_id: r.id.clone(),
        full_name: r.full_name.clone(),
        clone_url: r.clone_url.clone(),
        // An empty repository has no default branch yet: the remote's HEAD, as webhooks do.
        default_branch: if r.default_branch.is_empty() {
            "HEAD".to_owned()
        } else {
            r.default_branch.clone()
        },
    }
}

/// Add repositories the connection can see (admin): the chosen ones, all of them, or all of them
/// and every one an installation gains later. Each new one becomes a project with its weekly
/// slot and its initial full scan; ones already added are reported `already_present`. Reads the
/// provider's whole listing first, then writes everything in one transaction: a provider error
/// writes nothing.
#[utoipa::path(post, path = "/api/v1/connections/{id}/repositories", tag = "connections",
    params(ApiPath<ConnectionId>),
    request_body = AddRepositories,
    responses(
        (status = 200, description = "Nothing new: every repository was already a project", body = OnboardingResult),
        (status = 201, description = "Projects added", body = OnboardingResult),
        (status = 403, description = "`forbidden`: the token has the member role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_provider_client`: the connection holds nothing to reach its provider with; `project_exists`: another request added one of the repositories meanwhile (nothing was written; send it again)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_body`; `repository_not_visible`: a chosen id is not among the repositories the connection can see (`errors` names each; nothing was written)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider refused or answered wrongly (`provider_unauthorized`, `provider_forbidden`, ...); nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`provider_rate_limited`, `provider_unavailable`, `provider_unreachable`: try again later, nothing was written; `providers_unavailable`; `timeout`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn add_repositories(
    Admin(caller): Admin,
    ApiPath(id): ApiPath<ConnectionId>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AddRepositories>,
) -> Result<(StatusCode, Json<OnboardingResult>), ApiError> {
    let chosen = chosen_ids(&body)?;
    let source = provider_of(&state, caller.org_id, id).await?;

    // 1. The listing, whole, before anything is written.
    let wanted: Option<HashSet<&str>> =
        (body.select == Selection::Chosen).then(|| chosen.iter().map(String::as_str).collect());
    let mut listed = source.all_repositories().await?;
    store_listing(&state, caller.org_id, id, &listed).await?;
    if let Some(wanted) = &wanted {
        listed.retain(|r| wanted.contains(r.id.as_str()));
        let visible: HashSet<&str> = listed.iter().map(|r| r.id.as_str()).collect();
        let hidden: Vec<FieldError> = body
            .repository_ids
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, id)| wanted.contains(id.as_str()) && !visible.contains(id.as_str()))
            .map(|(i, id)| FieldError {
                field: format!("repository_ids[{i}]"),
                message: format!(
                    "repository {id} is not among the repositories the connection can see"
                ),
            })
            .collect();
        if let Some(first) = hidden.first() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "repository_not_visible",
                format!("{}: {}", first.field, first.message),
            )
            .with_fields(hidden));
        }
        // In the order asked.
        let order: HashMap<&str, usize> = chosen
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        listed.sort_by_key(|r| order.get(r.id.as_str()).copied().unwrap_or(usize::MAX));
    }
    write(&state, caller, id, body.select, listed).await
}

/// Writes the listed repositories as projects, in one transaction.
async fn write(
    state: &AppState,
    caller: Caller,
    id: ConnectionId,
    select: Selection,
    listed: Vec<Repository>,
) -> Result<(StatusCode, Json<OnboardingResult>), ApiError> {
    let ids: Vec<String> = listed.iter().map(|r| r.id.clone()).collect();
    let mut tx = state.db().pool().begin().await?;
    let known: HashMap<String, ProjectId> = webhooks::known_repos(&mut *tx, id, &ids)
        .await?
        .into_iter()
        .map(|k| (k.provider_repo_id, k.project_id))
        .collect();
    let new: Vec<NewProject> = listed
        .iter()
        .filter(|r| !known.contains_key(&r.id))
        .map(|r| new_project(id, r))
        .collect();
    let now = OffsetDateTime::now_utc();
    let mut initial: HashMap<String, (ProjectId, Uuid)> = HashMap::with_capacity(new.len());
    for batch in new.chunks(ADD_BATCH) {
        match projects::add_many(&mut tx, caller.org_id, batch, Some(caller.token_id), now).await? {
            Ok(added) => initial.extend(added.into_iter().map(|a| {
                (
                    a.project.provider_repo_id,
                    (a.project.id, a.initial_scan.id.0),
                )
            })),
            // Returning drops `tx`, which rolls back: nothing was written.
            Err(AddRefused::UnknownConnections(_)) => {
                return Err(ApiError::not_found("connection"))
            }
            Err(AddRefused::AlreadyAdded(existing)) => {
                let names: Vec<&str> = existing.iter().map(|e| e.full_name.as_str()).collect();
                return Err(ApiError::conflict(
                    "project_exists",
                    format!(
                        "added meanwhile by another request: {}; nothing was written, send the \
                         request again",
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    // Every repository of the call is reached through the installation the listing named.
    let mut by_installation: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in &listed {
        if let Some(installation) = r.installation_id.as_deref() {
            by_installation
                .entry(installation)
                .or_default()
                .push(r.id.clone());
        }
    }
    let mut enabled_again = Vec::new();
    for (installation, repo_ids) in by_installation {
        enabled_again.extend(
            webhooks::attach_installation(&mut *tx, id, installation, &repo_ids)
                .await?
                .into_iter()
                .map(|p| p.0),
        );
    }
    let follow = if select == Selection::AllAndFuture {
        Some(true)
    } else {
        None
    };
    let connection = connections::update_settings(&mut *tx, caller.org_id, id, follow)
        .await
        .map_err(|e| not_found_as(e, "connection"))?;
    tx.commit().await?;

    let (mut added, mut already_present) = (Vec::new(), Vec::new());
    for r in listed {
        let item = |project_id: ProjectId, initial_scan_id| OnboardedRepository {
            provider_repo_id: r.id.clone(),
            full_name: r.full_name.clone(),
            installation_id: r.installation_id.clone(),
            project_id: project_id.0,
            initial_scan_id,
        };
        if let Some((project, scan)) = initial.get(&r.id) {
            added.push(item(*project, Some(*scan)));
        } else if let Some(project) = known.get(&r.id) {
            already_present.push(item(*project, None));
        }
    }
    tracing::info!(
        connection_id = %id,
        added = added.len(),
        already_present = already_present.len(),
        enabled_again = enabled_again.len(),
        follow_installations = connection.follow_installations,
        "repositories added through the connection"
    );
    let status = if added.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(OnboardingResult {
            added,
            already_present,
            enabled_again,
            follow_installations: connection.follow_installations,
        }),
    ))
}
