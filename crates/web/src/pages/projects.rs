//! The Projects page: the org's projects with their latest scans and open findings, search,
//! filters, sort and pages; select rows or "all N matching" and Scan (one full scan each through
//! `POST /api/v1/scans`); rows update live while their scans run.

use super::not_added::{self, NotAdded};
use super::{render, Layout};
use crate::api::Refusal;
use crate::format::{self, When};
use crate::session::Session;
use crate::WebState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures::Stream;
use picket_core::schedule::WeeklySlot;
use picket_core::{ProjectId, Provider, ScanState};
use picket_db::connections;
use picket_db::inventory::UnaddedMatch;
use picket_db::overview::{self, ProjectMatch, ProjectRow, ProjectSort, ScanBrief};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use time::OffsetDateTime;

/// Rows per page.
pub const PAGE_SIZE: i64 = 50;

/// The page's query: filters, sort, page, and what the last action reported.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProjectsQuery {
    /// `scanning` (default) or `not_scanning`.
    pub tab: Option<String>,
    pub q: Option<String>,
    pub provider: Option<String>,
    pub state: Option<String>,
    /// `yes` or `no`.
    pub findings: Option<String>,
    pub sort: Option<String>,
    #[serde(default, deserialize_with = "super::lenient")]
    pub page: Option<i64>,
    /// Set after a bulk scan: how many scans it queued, and how many matching projects it skipped.
    #[serde(default, deserialize_with = "super::lenient")]
    pub queued: Option<i64>,
    #[serde(default, deserialize_with = "super::lenient")]
    pub skipped: Option<i64>,
    /// Set after a project was added.
    pub added: Option<String>,
    /// Set after a project was removed.
    pub removed: Option<String>,
    /// Page of the "Not scanning" tab's repositories not added.
    #[serde(default, deserialize_with = "super::lenient")]
    pub rpage: Option<i64>,
    /// Set after repositories were added from the "Not scanning" tab: how many.
    #[serde(default, deserialize_with = "super::lenient")]
    pub repos_added: Option<i64>,
    /// Set after the connections' repositories were listed again: how many they see.
    #[serde(default, deserialize_with = "super::lenient")]
    pub refreshed: Option<i64>,
}

/// The query's filter, sort and page, checked: unknown values are ignored (shown unfiltered).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listing {
    filter: ProjectMatch,
    sort: ProjectSort,
    page: i64,
}

impl ProjectsQuery {
    fn listing(&self) -> Listing {
        let filter = ProjectMatch {
            scanning: Some(self.tab.as_deref() != Some("not_scanning")),
            name: self
                .q
                .as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(|q| q.chars().take(200).collect()),
            provider: self.provider.as_deref().and_then(|p| p.parse().ok()),
            last_scan_state: self.state.as_deref().and_then(|s| s.parse().ok()),
            has_findings: match self.findings.as_deref() {
                Some("yes") => Some(true),
                Some("no") => Some(false),
                _ => None,
            },
        };
        let sort = ProjectSort::ALL
            .into_iter()
            .find(|s| Some(s.as_str()) == self.sort.as_deref())
            .unwrap_or_default();
        Listing {
            filter,
            sort,
            page: self.page.unwrap_or(1).clamp(1, 100_000),
        }
    }
}

impl Listing {
    /// The query string that shows this listing (without the page when `page` is false).
    fn query(&self, page: bool) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if self.filter.scanning == Some(false) {
            pairs.push(("tab", "not_scanning".to_owned()));
        }
        if let Some(q) = &self.filter.name {
            pairs.push(("q", q.clone()));
        }
        if let Some(p) = self.filter.provider {
            pairs.push(("provider", p.as_str().to_owned()));
        }
        if let Some(s) = self.filter.last_scan_state {
            pairs.push(("state", s.as_str().to_owned()));
        }
        if let Some(f) = self.filter.has_findings {
            pairs.push(("findings", if f { "yes" } else { "no" }.to_owned()));
        }
        if self.sort != ProjectSort::Name {
            pairs.push(("sort", self.sort.as_str().to_owned()));
        }
        if page && self.page > 1 {
            pairs.push(("page", self.page.to_string()));
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
}

/// One scan cell of a row.
#[derive(Debug, Clone)]
pub struct ScanCell {
    pub id: String,
    pub state: &'static str,
    pub label: &'static str,
    pub when: When,
    /// How long it took, or has run so far.
    pub took: Option<String>,
    pub pr_number: Option<i32>,
    pub error_code: Option<String>,
}

fn cell(b: &ScanBrief, now: OffsetDateTime) -> ScanCell {
    ScanCell {
        id: b.id.to_string(),
        state: b.state.as_str(),
        label: format::state_label(b.state),
        when: format::when(b.finished_at.or(b.started_at).unwrap_or(b.queued_at), now),
        took: b.started_at.map(|s| format::elapsed(s, b.finished_at, now)),
        pr_number: b.pr_number,
        error_code: b.error_code.clone(),
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct RowView {
    pub id: String,
    pub full_name: String,
    pub provider: &'static str,
    pub connection: String,
    pub default_branch: String,
    pub full: Option<ScanCell>,
    pub pr: Option<ScanCell>,
    /// (severity, count) of open findings on the default branch, most severe first, zeros left out.
    pub open: Vec<(&'static str, i64)>,
    pub open_total: i64,
    pub next_weekly: Option<When>,
    pub full_on: bool,
    pub diff_on: bool,
    pub disabled_reason: Option<String>,
}

pub fn row_view(r: &ProjectRow, now: OffsetDateTime) -> RowView {
    let next_weekly = (r.full_scans_enabled && r.disabled_reason.is_none())
        .then(|| WeeklySlot::from_parts(r.weekly_weekday, r.weekly_time))
        .flatten()
        .map(|slot| format::when(slot.next_after(now), now));
    RowView {
        id: r.id.to_string(),
        full_name: r.full_name.clone(),
        provider: provider_label(r.provider),
        connection: r.connection_name.clone(),
        default_branch: r.default_branch.clone(),
        full: r.last_full.as_ref().map(|b| cell(b, now)),
        pr: r.last_pr.as_ref().map(|b| cell(b, now)),
        open: r
            .open
            .by_severity()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| (s.as_str(), n))
            .collect(),
        open_total: r.open.total(),
        next_weekly,
        full_on: r.full_scans_enabled,
        diff_on: r.diff_scans_enabled,
        disabled_reason: r.disabled_reason.clone(),
    }
}

pub fn provider_label(p: Provider) -> &'static str {
    match p {
        Provider::Github => "GitHub",
        Provider::Gitlab => "GitLab",
        Provider::Bitbucket => "Bitbucket",
        Provider::AzureDevops => "Azure DevOps",
        Provider::Git => "Git",
    }
}

/// A choice of a filter's `<select>`.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// A connection new projects can be added to by clone URL (plain git).
#[derive(Debug, Clone)]
pub struct GitConnection {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    layout: Layout,
    csrf: String,
    scanning_tab: bool,
    scanning_href: String,
    not_scanning_href: String,
    q: String,
    providers: Vec<Choice>,
    states: Vec<Choice>,
    findings: Vec<Choice>,
    sorts: Vec<Choice>,
    rows: Vec<RowView>,
    total: i64,
    page: i64,
    pages: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
    /// The listing's query without its page, for the forms' hidden fields.
    hidden: Vec<(&'static str, String)>,
    ids: String,
    notice: Option<String>,
    error: Option<String>,
    filtered: bool,
    git_connections: Vec<GitConnection>,
    add_form: AddForm,
    /// The "Not scanning" tab's repositories not added.
    not_added: Option<NotAdded>,
}

/// The add-a-repository form's values (kept when it is refused).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    pub connection_id: String,
    #[serde(default)]
    pub clone_url: String,
    #[serde(default)]
    pub full_name: String,
    #[serde(default)]
    pub default_branch: String,
}

fn choices<T: Copy + PartialEq>(
    all: &[(T, &'static str, &'static str)],
    current: Option<T>,
) -> Vec<Choice> {
    all.iter()
        .map(|(v, value, label)| Choice {
            value,
            label,
            selected: current == Some(*v),
        })
        .collect()
}

fn hidden_fields(listing: &Listing) -> Vec<(&'static str, String)> {
    let mut out = vec![(
        "tab",
        if listing.filter.scanning == Some(false) {
            "not_scanning"
        } else {
            "scanning"
        }
        .to_owned(),
    )];
    if let Some(q) = &listing.filter.name {
        out.push(("q", q.clone()));
    }
    if let Some(p) = listing.filter.provider {
        out.push(("provider", p.as_str().to_owned()));
    }
    if let Some(s) = listing.filter.last_scan_state {
        out.push(("state", s.as_str().to_owned()));
    }
    if let Some(f) = listing.filter.has_findings {
        out.push(("findings", if f { "yes" } else { "no" }.to_owned()));
    }
    out.push(("sort", listing.sort.as_str().to_owned()));
    out.push(("page", listing.page.to_string()));
    out
}

pub(crate) async fn show(
    state: &WebState,
    session: &Session,
    q: &ProjectsQuery,
    status: StatusCode,
    error: Option<String>,
    add_form: AddForm,
) -> Response {
    let listing = q.listing();
    let now = OffsetDateTime::now_utc();
    let pool = state.db().pool();
    let page = match overview::projects(
        pool,
        session.caller.org_id,
        &listing.filter,
        listing.sort,
        (listing.page - 1) * PAGE_SIZE,
        PAGE_SIZE,
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return super::db_unavailable(&e, session),
    };
    let conns = match connections::list(pool, session.caller.org_id).await {
        Ok(c) => c,
        Err(e) => return super::db_unavailable(&e, session),
    };
    let pages = ((page.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let href = |l: &Listing| {
        let qs = l.query(true);
        if qs.is_empty() {
            "/projects".to_owned()
        } else {
            format!("/projects?{qs}")
        }
    };
    let at_page = |p: i64| Listing {
        page: p,
        ..listing.clone()
    };
    let scanning = Listing {
        filter: ProjectMatch {
            scanning: Some(true),
            ..listing.filter.clone()
        },
        page: 1,
        ..listing.clone()
    };
    let not_scanning = Listing {
        filter: ProjectMatch {
            scanning: Some(false),
            ..listing.filter.clone()
        },
        page: 1,
        ..listing.clone()
    };
    let notice = match (q.queued, q.skipped) {
        (Some(n), skipped) => Some(format!(
            "Queued {n} full scan{}.{}",
            if n == 1 { "" } else { "s" },
            match skipped.unwrap_or(0) {
                0 => String::new(),
                s => format!(
                    " {s} matching project{} skipped: full scans off or disabled.",
                    if s == 1 { " was" } else { "s were" }
                ),
            }
        )),
        _ => match (&q.added, &q.removed, q.repos_added, q.refreshed) {
            (Some(_), ..) => Some("Project added; its first full scan is queued.".to_owned()),
            (_, Some(_), ..) => Some("Project removed, with its scans and findings.".to_owned()),
            (_, _, Some(n), _) => Some(format!(
                "Added {n} repositor{} as projects; their first full scans are queued.",
                if n == 1 { "y" } else { "ies" }
            )),
            (.., Some(n)) => Some(format!(
                "Listed the connections' repositories again: they see {n}."
            )),
            _ => None,
        },
    };
    let not_added = if listing.filter.scanning == Some(false) {
        let rpage = q.rpage.unwrap_or(1).clamp(1, 100_000);
        let base = listing.query(true);
        let filter = UnaddedMatch {
            name: listing.filter.name.clone(),
            provider: listing.filter.provider,
        };
        let href = |p: i64| format!("/projects?{base}&rpage={p}#not-added-heading");
        match not_added::read(pool, session.caller.org_id, &conns, filter, rpage, href).await {
            Ok(n) => Some(n),
            Err(e) => return super::db_unavailable(&e, session),
        }
    } else {
        None
    };
    let rows: Vec<RowView> = page.rows.iter().map(|r| row_view(r, now)).collect();
    let ids = page
        .rows
        .iter()
        .map(|r| r.id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let f = &listing.filter;
    render(
        status,
        &ProjectsPage {
            layout: Layout::new("Projects", "projects", Some(session)),
            csrf: session.csrf.clone(),
            scanning_tab: f.scanning != Some(false),
            scanning_href: href(&scanning),
            not_scanning_href: href(&not_scanning),
            q: f.name.clone().unwrap_or_default(),
            providers: choices(
                &Provider::ALL.map(|p| (p, p.as_str(), provider_label(p))),
                f.provider,
            ),
            states: choices(
                &ScanState::ALL.map(|s| (s, s.as_str(), format::state_label(s))),
                f.last_scan_state,
            ),
            findings: choices(
                &[
                    (true, "yes", "Has open findings"),
                    (false, "no", "No open findings"),
                ],
                f.has_findings,
            ),
            sorts: choices(
                &[
                    (ProjectSort::Name, "name", "Name"),
                    (ProjectSort::LastScan, "last_scan", "Latest scan"),
                    (ProjectSort::Findings, "findings", "Open findings"),
                ],
                Some(listing.sort),
            ),
            total: page.total,
            page: listing.page,
            pages,
            prev_href: (listing.page > 1).then(|| href(&at_page(listing.page - 1))),
            next_href: (listing.page < pages).then(|| href(&at_page(listing.page + 1))),
            hidden: hidden_fields(&listing),
            rows,
            ids,
            notice,
            error,
            filtered: f.name.is_some()
                || f.provider.is_some()
                || f.last_scan_state.is_some()
                || f.has_findings.is_some(),
            git_connections: conns
                .into_iter()
                .filter(|c| c.provider == Provider::Git)
                .map(|c| GitConnection {
                    id: c.id.to_string(),
                    name: c.name,
                })
                .collect(),
            add_form,
            not_added,
        },
    )
}

/// `GET /projects`.
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<ProjectsQuery>,
) -> Response {
    show(
        &state,
        &session,
        &q,
        StatusCode::OK,
        None,
        AddForm::default(),
    )
    .await
}

/// The Scan form: selected rows (`project`, repeated) or `all` (every project the listing's
/// filter matches, resolved by the API), plus the listing to come back to.
fn scan_form(body: &[u8]) -> (Vec<String>, bool, ProjectsQuery) {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let ids = pairs
        .iter()
        .filter(|(k, _)| k == "project")
        .map(|(_, v)| v.clone())
        .collect();
    let q = ProjectsQuery {
        tab: get("tab"),
        q: get("q"),
        provider: get("provider"),
        state: get("state"),
        findings: get("findings"),
        sort: get("sort"),
        page: get("page").and_then(|p| p.parse().ok()),
        ..ProjectsQuery::default()
    };
    (ids, get("all").is_some(), q)
}

#[derive(Debug, Deserialize)]
struct BulkScanAnswer {
    scans: Vec<serde_json::Value>,
    skipped: i64,
}

/// `POST /projects/scan`: one full scan per selected project, through the bulk endpoint.
pub async fn scan(State(state): State<WebState>, session: Session, body: Bytes) -> Response {
    let (ids, all, q) = scan_form(&body);
    let listing = q.listing();
    let request = if all {
        let f = &listing.filter;
        serde_json::json!({ "matching": {
            "scanning": f.scanning,
            "name": f.name,
            "provider": f.provider.map(|p| p.as_str()),
            "last_scan_state": f.last_scan_state.map(|s| s.as_str()),
            "has_findings": f.has_findings,
        }})
    } else if ids.is_empty() {
        return show(
            &state,
            &session,
            &q,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Select at least one project to scan, or all matching projects.".to_owned()),
            AddForm::default(),
        )
        .await;
    } else {
        serde_json::json!({ "project_ids": ids })
    };
    let answer: Result<BulkScanAnswer, Refusal> = state
        .api
        .call(session.caller, Method::POST, "/api/v1/scans", Some(request))
        .await;
    match answer {
        Ok(a) => {
            let mut qs = listing.query(true);
            if !qs.is_empty() {
                qs.push('&');
            }
            qs.push_str(&format!("queued={}&skipped={}", a.scans.len(), a.skipped));
            Redirect::to(&format!("/projects?{qs}")).into_response()
        }
        Err(r) => refused(&state, &session, &q, r, AddForm::default()).await,
    }
}

async fn refused(
    state: &WebState,
    session: &Session,
    q: &ProjectsQuery,
    r: Refusal,
    form: AddForm,
) -> Response {
    let status = r.status();
    let message = match r.code.as_str() {
        "forbidden" => "Your token's role may not do this; ask an admin.".to_owned(),
        _ => r.message(),
    };
    show(state, session, q, status, Some(message), form).await
}

/// `POST /projects`: adds one repository of a plain git connection by clone URL.
pub async fn add(
    State(state): State<WebState>,
    session: Session,
    axum::Form(form): axum::Form<AddForm>,
) -> Response {
    let full_name = form.full_name.trim().to_owned();
    let request = serde_json::json!({ "projects": [{
        "connection_id": form.connection_id.trim(),
        "provider_repo_id": full_name,
        "full_name": full_name,
        "clone_url": form.clone_url.trim(),
        "default_branch": match form.default_branch.trim() { "" => "main", b => b },
    }]});
    let q = ProjectsQuery::default();
    if uuid::Uuid::parse_str(form.connection_id.trim()).is_err() {
        return show(
            &state,
            &session,
            &q,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Choose a connection.".to_owned()),
            form,
        )
        .await;
    }
    let answer: Result<serde_json::Value, Refusal> = state
        .api
        .call(
            session.caller,
            Method::POST,
            "/api/v1/projects",
            Some(request),
        )
        .await;
    match answer {
        Ok(_) => Redirect::to("/projects?added=1").into_response(),
        Err(r) => refused(&state, &session, &q, r, form).await,
    }
}

#[derive(Template)]
#[template(path = "project_row_fragment.html")]
struct RowFragment<'a> {
    row: &'a RowView,
}

/// `?ids=` of an event stream: the rows a page shows.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    ids: Option<String>,
}

/// Most rows one stream follows (a page shows [`PAGE_SIZE`]).
const MAX_LIVE_ROWS: usize = 500;

/// `GET /events/projects?ids=…`: the rows of these projects, each sent as event
/// `project-<id>` (its `<tr>`) whenever it changes. A tick is at most every
/// 300 ms per stream.
pub async fn events(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ids: Vec<ProjectId> = q
        .ids
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.parse().ok())
        .take(MAX_LIVE_ROWS)
        .collect();
    let org = session.caller.org_id;
    let mut ticks = state.feed.subscribe();
    let stream = super::async_stream(move |tx| async move {
        let mut shown: std::collections::HashMap<ProjectId, String> = Default::default();
        let mut first = true;
        loop {
            if !first {
                match ticks.recv().await {
                    Ok(t) if !t.concerns(org) => continue,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
            let rows = match overview::project_rows(state.db().pool(), org, &ids).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "live rows");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let now = OffsetDateTime::now_utc();
            for r in &rows {
                let view = row_view(r, now);
                let Ok(html) = (RowFragment { row: &view }).render() else {
                    continue;
                };
                // The first pass only remembers: the page was rendered from the same data.
                let changed = shown.get(&r.id) != Some(&html);
                if changed && !first {
                    let event = Event::default()
                        .event(format!("project-{}", r.id))
                        .data(html.replace('\n', ""));
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                shown.insert(r.id, html);
            }
            first = false;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_filter_values_are_ignored_and_the_query_round_trips() {
        let q = ProjectsQuery {
            tab: Some("not_scanning".into()),
            q: Some("  api ".into()),
            provider: Some("github".into()),
            state: Some("nonsense".into()),
            findings: Some("yes".into()),
            sort: Some("findings".into()),
            page: Some(3),
            ..Default::default()
        };
        let l = q.listing();
        assert_eq!(l.filter.scanning, Some(false));
        assert_eq!(l.filter.name.as_deref(), Some("api"));
        assert_eq!(l.filter.provider, Some(Provider::Github));
        assert_eq!(l.filter.last_scan_state, None);
        assert_eq!(l.filter.has_findings, Some(true));
        assert_eq!(l.sort, ProjectSort::Findings);
        let again: ProjectsQuery = serde_urlencoded::from_str(&l.query(true)).unwrap();
        assert_eq!(again.listing(), l);
    }

    #[test]
    fn the_scan_form_reads_repeated_rows_and_the_listing() {
        let (ids, all, q) =
            scan_form(b"_csrf=x&project=a&project=b&tab=scanning&q=web&sort=name&page=2");
        assert_eq!(ids, ["a", "b"]);
        assert!(!all);
        assert_eq!(q.q.as_deref(), Some("web"));
        assert_eq!(q.page, Some(2));
        let (_, all, _) = scan_form(b"all=1&project=a");
        assert!(all);
    }
}
