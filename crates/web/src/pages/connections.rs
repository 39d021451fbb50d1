//! The Connections pages: the org's provider connections; adding one (plain git; a GitHub App
//! by its credentials, or in one click through GitHub's App manifest flow; GitLab and Bitbucket
//! Cloud by a token; Azure DevOps by a personal access token, whose service-hook password the
//! server draws and this page shows once); testing one; a
//! connection's repositories, added as projects in bulk (the chosen ones, all, or all and every
//! future one). Every action goes through `/api/v1/connections...`.

use super::{render, render_with_csp, Layout};
use crate::api::Refusal;
use crate::format::{self, When};
use crate::session::Session;
use crate::WebState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Debug, Deserialize)]
struct ConnectionList {
    connections: Vec<Connection>,
}

#[derive(Debug, Clone, Deserialize)]
struct Connection {
    id: String,
    provider: String,
    name: String,
    base_url: String,
    has_credentials: bool,
    follow_installations: bool,
    webhook_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct ConnectionView {
    pub id: String,
    pub provider: String,
    pub name: String,
    pub base_url: String,
    pub has_credentials: bool,
    pub follow_installations: bool,
    pub webhook_url: Option<String>,
    pub created: When,
    /// Whether Picket can list its repositories (a GitHub App's, a GitLab token's).
    pub lists_repositories: bool,
    /// The provider's name as people write it (`GitLab`).
    pub provider_label: &'static str,
}

fn view(c: Connection, now: OffsetDateTime) -> ConnectionView {
    let provider: Option<picket_core::Provider> = c.provider.parse().ok();
    ConnectionView {
        lists_repositories: provider
            .is_some_and(|p| super::not_added::lists_repositories(p, c.has_credentials)),
        provider_label: provider.map_or("the provider", super::projects::provider_label),
        id: c.id,
        provider: c.provider,
        name: c.name,
        base_url: c.base_url,
        has_credentials: c.has_credentials,
        follow_installations: c.follow_installations,
        webhook_url: c.webhook_url,
        created: format::when(c.created_at, now),
    }
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ConnectionsPage {
    layout: Layout,
    csrf: String,
    admin: bool,
    connections: Vec<ConnectionView>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    added: Option<String>,
    deleted: Option<String>,
}

async fn show_list(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let list: ConnectionList = match state
        .api
        .call(session.caller, Method::GET, "/api/v1/connections", None)
        .await
    {
        Ok(l) => l,
        Err(r) => return refused_page(session, &r),
    };
    let now = OffsetDateTime::now_utc();
    render(
        status,
        &ConnectionsPage {
            layout: Layout::new("Connections", "connections", Some(session)),
            csrf: session.csrf.clone(),
            admin: session.is_admin(),
            connections: list.connections.into_iter().map(|c| view(c, now)).collect(),
            notice,
            error,
        },
    )
}

fn refused_page(session: &Session, r: &Refusal) -> Response {
    super::error_page(
        r.status(),
        "The request was refused",
        &r.message(),
        Some(session),
    )
}

fn say(r: &Refusal) -> String {
    r.say("manage connections")
}

/// `GET /connections`.
pub async fn list(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> Response {
    let notice = match (q.added, q.deleted) {
        (Some(_), _) => Some("Connection added.".to_owned()),
        (_, Some(_)) => Some("Connection deleted.".to_owned()),
        _ => None,
    };
    show_list(&state, &session, StatusCode::OK, notice, None).await
}

/// The add-a-connection form (one form, its `kind` picks the fields used).
#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    private_key: String,
    #[serde(default)]
    webhook_secret: String,
    #[serde(default)]
    organization: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    workspace: String,
    #[serde(default)]
    pat: String,
    #[serde(default)]
    project: String,
}

impl std::fmt::Debug for AddForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddForm")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Created {
    id: String,
    name: String,
    webhook_url: Option<String>,
    webhook_username: Option<String>,
    /// An Azure DevOps connection's service-hook password: in the create response only.
    webhook_password: Option<String>,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The page an Azure DevOps connection's creation lands on: the service-hook password, shown
/// this once (a redirect's page could not see it: the API shows it in the create response only).
#[derive(Template)]
#[template(path = "connection_password.html")]
struct PasswordPage {
    layout: Layout,
    id: String,
    name: String,
    webhook_url: String,
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct ManifestStarted {
    post_url: String,
    manifest: serde_json::Value,
}

#[derive(Template)]
#[template(path = "manifest.html")]
struct ManifestPage {
    layout: Layout,
    post_url: String,
    manifest: String,
}

/// `POST /connections`: a plain git connection, a GitHub App by its credentials, or the start
/// of GitHub's manifest flow (a page whose button posts the manifest to GitHub).
pub async fn add(
    State(state): State<WebState>,
    session: Session,
    axum::Form(form): axum::Form<AddForm>,
) -> Response {
    let name = form.name.trim();
    let base_url = form.base_url.trim();
    if form.kind == "github_manifest" {
        let body = serde_json::json!({
            "name": (!name.is_empty()).then_some(name),
            "organization": Some(form.organization.trim()).filter(|o| !o.is_empty()),
            "base_url": (!base_url.is_empty()).then_some(base_url),
        });
        return match state
            .api
            .call::<ManifestStarted>(
                session.caller,
                Method::POST,
                "/api/v1/connections/github/manifest",
                Some(body),
            )
            .await
        {
            Ok(m) => {
                // The page's one form posts to GitHub: the CSP allows that origin for forms.
                let origin = url_origin(&m.post_url);
                render_with_csp(
                    StatusCode::OK,
                    &ManifestPage {
                        layout: Layout::new("Create the GitHub App", "connections", Some(&session)),
                        post_url: m.post_url,
                        manifest: m.manifest.to_string(),
                    },
                    &format!("form-action 'self' {origin}"),
                )
            }
            Err(r) => show_list(&state, &session, r.status(), None, Some(say(&r))).await,
        };
    }
    let body = match form.kind.as_str() {
        "git" => serde_json::json!({ "provider": "git", "name": name }),
        "github" => {
            let Ok(app_id) = form.app_id.trim().parse::<u64>() else {
                return show_list(
                    &state,
                    &session,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    Some("The App ID is a number (GitHub shows it on the App's page).".to_owned()),
                )
                .await;
            };
            serde_json::json!({
                "provider": "github",
                "name": name,
                "base_url": base_url,
                "credentials": {
                    "app_id": app_id,
                    "private_key": form.private_key.trim(),
                    "webhook_secret": form.webhook_secret.trim(),
                },
            })
        }
        "bitbucket" => serde_json::json!({
            "provider": "bitbucket",
            "name": name,
            "base_url": base_url,
            "credentials": {
                "token": form.token.trim(),
                "webhook_secret": form.webhook_secret.trim(),
                "workspace": form.workspace.trim(),
            },
        }),
        "azure_devops" => serde_json::json!({
            "provider": "azure_devops",
            "name": name,
            "base_url": base_url,
            "credentials": {
                "pat": form.pat.trim(),
                "project": form.project.trim(),
            },
        }),
        "gitlab" => {
            let group = form.group.trim();
            serde_json::json!({
                "provider": "gitlab",
                "name": name,
                "base_url": base_url,
                "credentials": {
                    "token": form.token.trim(),
                    "webhook_secret": form.webhook_secret.trim(),
                    "group": (!group.is_empty()).then_some(group),
                },
            })
        }
        _ => {
            return show_list(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some("Choose what to connect.".to_owned()),
            )
            .await
        }
    };
    match state
        .api
        .call::<Created>(
            session.caller,
            Method::POST,
            "/api/v1/connections",
            Some(body),
        )
        .await
    {
        Ok(Created {
            id,
            name,
            webhook_url,
            webhook_username,
            webhook_password: Some(password),
        }) => render(
            StatusCode::CREATED,
            &PasswordPage {
                layout: Layout::new("Connection added", "connections", Some(&session)),
                id,
                name,
                webhook_url: webhook_url.unwrap_or_default(),
                username: webhook_username.unwrap_or_default(),
                password,
            },
        ),
        Ok(c) => Redirect::to(&format!("/connections/{}?created=1", c.id)).into_response(),
        Err(r) => show_list(&state, &session, r.status(), None, Some(say(&r))).await,
    }
}

/// `scheme://host[:port]` of a URL, for a CSP source; `'none'`-safe when it does not parse.
fn url_origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            format!("{scheme}://{host}")
        }
        None => "'none'".to_owned(),
    }
}

#[derive(Debug, Deserialize)]
struct Check {
    identity: String,
    installations: Vec<Installation>,
    missing_permissions: Vec<String>,
    missing_events: Vec<String>,
    ready: bool,
}

#[derive(Debug, Deserialize)]
struct Installation {
    account: String,
    suspended: bool,
    #[serde(default)]
    missing_permissions: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct CheckView {
    pub identity: String,
    pub ready: bool,
    pub installations: Vec<String>,
    pub problems: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RepositoryPage {
    items: Vec<Repository>,
    next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub provider_repo_id: String,
    pub full_name: String,
    pub default_branch: String,
    pub private: bool,
    pub archived: bool,
    pub project_id: Option<String>,
}

#[derive(Template)]
#[template(path = "connection.html")]
struct ConnectionPage {
    layout: Layout,
    csrf: String,
    admin: bool,
    connection: ConnectionView,
    check: Option<CheckView>,
    repositories: Vec<Repository>,
    next_href: Option<String>,
    listing_error: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ConnectionQuery {
    cursor: Option<String>,
    check: Option<String>,
    created: Option<String>,
    #[serde(default, deserialize_with = "super::lenient")]
    added: Option<usize>,
    #[serde(default, deserialize_with = "super::lenient")]
    already: Option<usize>,
}

async fn show_one(
    state: &WebState,
    session: &Session,
    id: uuid::Uuid,
    q: &ConnectionQuery,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let list: ConnectionList = match state
        .api
        .call(session.caller, Method::GET, "/api/v1/connections", None)
        .await
    {
        Ok(l) => l,
        Err(r) => return refused_page(session, &r),
    };
    let now = OffsetDateTime::now_utc();
    let Some(connection) = list
        .connections
        .into_iter()
        .find(|c| c.id == id.to_string())
        .map(|c| view(c, now))
    else {
        return super::error_page(
            StatusCode::NOT_FOUND,
            "No such connection",
            "This connection does not exist in your org, or it was deleted.",
            Some(session),
        );
    };
    let mut check = None;
    let mut page_error = error;
    if q.check.is_some() {
        match state
            .api
            .call::<Check>(
                session.caller,
                Method::GET,
                &format!("/api/v1/connections/{id}/check"),
                None,
            )
            .await
        {
            Ok(c) => {
                let mut problems: Vec<String> = Vec::new();
                if !c.missing_permissions.is_empty() {
                    problems.push(format!(
                        "The App lacks permissions: {}.",
                        c.missing_permissions.join(", ")
                    ));
                }
                if !c.missing_events.is_empty() {
                    problems.push(format!(
                        "The App does not subscribe to: {}.",
                        c.missing_events.join(", ")
                    ));
                }
                if c.installations.is_empty() {
                    problems.push(
                        "The App is installed nowhere yet: install it on an account or organization."
                            .to_owned(),
                    );
                }
                check = Some(CheckView {
                    identity: c.identity,
                    ready: c.ready,
                    installations: c
                        .installations
                        .iter()
                        .map(|i| {
                            let mut s = i.account.clone();
                            if i.suspended {
                                s.push_str(" (suspended)");
                            }
                            if !i.missing_permissions.is_empty() {
                                s.push_str(&format!(
                                    " (lacks {})",
                                    i.missing_permissions.join(", ")
                                ));
                            }
                            s
                        })
                        .collect(),
                    problems,
                });
            }
            Err(r) => page_error = Some(format!("The check failed: {}", r.message())),
        }
    }
    let (mut repositories, mut next_href, mut listing_error) = (Vec::new(), None, None);
    if connection.lists_repositories {
        let mut path = format!("/api/v1/connections/{id}/repositories?per_page=100");
        if let Some(c) = &q.cursor {
            path.push_str("&cursor=");
            path.push_str(
                &percent_encoding::utf8_percent_encode(c, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
        }
        match state
            .api
            .call::<RepositoryPage>(session.caller, Method::GET, &path, None)
            .await
        {
            Ok(p) => {
                repositories = p.items;
                next_href = p.next_cursor.map(|c| {
                    format!(
                        "/connections/{id}?cursor={}",
                        percent_encoding::utf8_percent_encode(
                            &c,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    )
                });
            }
            Err(r) => listing_error = Some(r.message()),
        }
    }
    let notice = match (q.created.as_ref(), q.added, q.already) {
        (Some(_), _, _) => Some("Connection added.".to_owned()),
        (_, Some(a), already) => Some(format!(
            "Added {a} repositor{} as projects; their first scans are queued.{}",
            if a == 1 { "y" } else { "ies" },
            match already.unwrap_or(0) {
                0 => String::new(),
                n => format!(" {n} already were projects."),
            }
        )),
        _ => None,
    };
    render(
        status,
        &ConnectionPage {
            layout: Layout::new(connection.name.clone(), "connections", Some(session)),
            csrf: session.csrf.clone(),
            admin: session.is_admin(),
            connection,
            check,
            repositories,
            next_href,
            listing_error,
            notice,
            error: page_error,
        },
    )
}

/// `GET /connections/{id}` (`?check=1` also tests it).
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<ConnectionQuery>,
) -> Response {
    let Ok(id) = id.parse() else {
        return super::error_page(
            StatusCode::NOT_FOUND,
            "No such connection",
            "This connection does not exist in your org.",
            Some(&session),
        );
    };
    show_one(&state, &session, id, &q, StatusCode::OK, None).await
}

#[derive(Debug, Deserialize)]
struct Onboarded {
    added: Vec<serde_json::Value>,
    already_present: Vec<serde_json::Value>,
}

/// `POST /connections/{id}/repositories`: `select` = `chosen` (with `repository`, repeated),
/// `all` or `all_and_future`.
pub async fn add_repositories(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return Redirect::to("/connections").into_response();
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let select = pairs
        .iter()
        .find(|(k, _)| k == "select")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "chosen".to_owned());
    let chosen: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "repository")
        .map(|(_, v)| v.clone())
        .collect();
    let body = match select.as_str() {
        "all" | "all_and_future" => serde_json::json!({ "select": select }),
        _ if chosen.is_empty() => {
            return show_one(
                &state,
                &session,
                id,
                &ConnectionQuery::default(),
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("Select at least one repository, or add all.".to_owned()),
            )
            .await
        }
        _ => serde_json::json!({ "select": "chosen", "repository_ids": chosen }),
    };
    match state
        .api
        .call::<Onboarded>(
            session.caller,
            Method::POST,
            &format!("/api/v1/connections/{id}/repositories"),
            Some(body),
        )
        .await
    {
        Ok(o) => Redirect::to(&format!(
            "/connections/{id}?added={}&already={}",
            o.added.len(),
            o.already_present.len()
        ))
        .into_response(),
        Err(r) => {
            show_one(
                &state,
                &session,
                id,
                &ConnectionQuery::default(),
                r.status(),
                Some(say(&r)),
            )
            .await
        }
    }
}

/// `POST /connections/{id}/delete`.
pub async fn delete(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return Redirect::to("/connections").into_response();
    };
    match state
        .api
        .call::<serde_json::Value>(
            session.caller,
            Method::DELETE,
            &format!("/api/v1/connections/{id}"),
            None,
        )
        .await
    {
        Ok(_) => Redirect::to("/connections?deleted=1").into_response(),
        Err(r) => {
            let message = if r.code == "connection_in_use" {
                "Projects use this connection: remove them first.".to_owned()
            } else {
                say(&r)
            };
            show_list(&state, &session, r.status(), None, Some(message)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_form_may_post_to_githubs_origin_only() {
        assert_eq!(
            url_origin("https://github.com/organizations/acme/settings/apps/new?state=x"),
            "https://github.com"
        );
        assert_eq!(
            url_origin("https://ghe.example:8443/settings/apps/new?state=x"),
            "https://ghe.example:8443"
        );
        assert_eq!(url_origin("nonsense"), "'none'");
    }
}
