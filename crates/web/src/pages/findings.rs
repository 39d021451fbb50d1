//! The Findings page (across projects, or one project's with `?project=`), its CSV export, and
//! the Finding page. Filters live in the URL and survive bulk actions; bulk triage acts on the
//! selected rows or on "all N matching" (the filter, resolved by the API), through
//! `POST /api/v1/findings/triage`; one finding's triage through
//! `POST /api/v1/findings/{id}/triage`.

use super::{render, Layout};
use crate::api::Refusal;
use crate::format::{self, When};
use crate::pages::projects::Choice;
use crate::session::Session;
use crate::WebState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use picket_core::triage::IgnoreReason;
use picket_core::{FindingId, FindingStatus, Product, ProjectId, Provider, Severity};
use picket_db::overview::{self, FindingMatch, FindingRow};
use picket_db::{connections, findings, orgs, projects, scans, DbError};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

/// Rows per page.
pub const PAGE_SIZE: i64 = 50;
/// Rules shown when grouped by rule.
const GROUPS_SHOWN: i64 = 500;
/// Rows the CSV export reads per query.
const CSV_CHUNK: i64 = 5_000;

/// The first-seen windows the page offers.
const WINDOWS: [(&str, &str, i64); 4] = [
    ("24h", "last 24 hours", 1),
    ("7d", "last 7 days", 7),
    ("30d", "last 30 days", 30),
    ("90d", "last 90 days", 90),
];

/// The page's query. Unknown values are ignored (shown unfiltered).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FindingsQuery {
    /// Default `open`; `any` for every status.
    pub status: Option<String>,
    pub severity: Option<String>,
    pub product: Option<String>,
    pub rule: Option<String>,
    pub project: Option<String>,
    pub path: Option<String>,
    /// `default` (the project's default branch) or `other` (pull requests' heads, other refs).
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// `24h`, `7d`, `30d`, `90d`.
    pub since: Option<String>,
    pub reason: Option<String>,
    /// `rule` to group by rule.
    pub group: Option<String>,
    #[serde(default, deserialize_with = "super::lenient")]
    pub page: Option<i64>,
    /// Set after a bulk triage: finding rows changed.
    #[serde(default, deserialize_with = "super::lenient")]
    pub triaged: Option<i64>,
}

/// The checked listing: what the query asks for, re-serializable.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listing {
    status: Option<FindingStatus>,
    severity: Option<Severity>,
    product: Option<Product>,
    rule: Option<String>,
    project: Option<ProjectId>,
    path: Option<String>,
    on_default: Option<bool>,
    since: Option<&'static str>,
    reason: Option<IgnoreReason>,
    grouped: bool,
    page: i64,
}

fn text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(1000).collect())
}

impl FindingsQuery {
    fn listing(&self) -> Listing {
        Listing {
            status: match self.status.as_deref() {
                Some("any") => None,
                Some(s) => s.parse().ok().or(Some(FindingStatus::Open)),
                None => Some(FindingStatus::Open),
            },
            severity: self.severity.as_deref().and_then(|s| s.parse().ok()),
            product: self.product.as_deref().and_then(|s| s.parse().ok()),
            rule: text(&self.rule),
            project: self.project.as_deref().and_then(|s| s.parse().ok()),
            path: text(&self.path),
            on_default: match self.git_ref.as_deref() {
                Some("default") => Some(true),
                Some("other") => Some(false),
                _ => None,
            },
            since: WINDOWS
                .iter()
                .find(|(k, _, _)| Some(*k) == self.since.as_deref())
                .map(|(k, _, _)| *k),
            reason: self.reason.as_deref().and_then(|s| s.parse().ok()),
            grouped: self.group.as_deref() == Some("rule"),
            page: self.page.unwrap_or(1).clamp(1, 100_000),
        }
    }
}

impl Listing {
    fn filter(&self, now: OffsetDateTime) -> FindingMatch {
        FindingMatch {
            status: self.status,
            min_severity: self.severity,
            product: self.product,
            rule_id: self.rule.clone(),
            project: self.project,
            path_prefix: self.path.clone(),
            on_default_branch: self.on_default,
            since: self.since.and_then(|k| {
                WINDOWS
                    .iter()
                    .find(|(w, _, _)| *w == k)
                    .map(|(_, _, days)| now - Duration::days(*days))
            }),
            ignore_reason: self.reason,
        }
    }

    /// The filter's query pairs (no page, no grouping).
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        p.push((
            "status",
            self.status.map_or("any", FindingStatus::as_str).to_owned(),
        ));
        if let Some(s) = self.severity {
            p.push(("severity", s.as_str().to_owned()));
        }
        if let Some(s) = self.product {
            p.push(("product", s.as_str().to_owned()));
        }
        if let Some(s) = &self.rule {
            p.push(("rule", s.clone()));
        }
        if let Some(s) = self.project {
            p.push(("project", s.to_string()));
        }
        if let Some(s) = &self.path {
            p.push(("path", s.clone()));
        }
        if let Some(d) = self.on_default {
            p.push(("ref", if d { "default" } else { "other" }.to_owned()));
        }
        if let Some(s) = self.since {
            p.push(("since", s.to_owned()));
        }
        if let Some(r) = self.reason {
            p.push(("reason", r.as_str().to_owned()));
        }
        p
    }

    fn href(&self, grouped: bool, page: i64) -> String {
        let mut p = self.pairs();
        if grouped {
            p.push(("group", "rule".to_owned()));
        }
        if page > 1 {
            p.push(("page", page.to_string()));
        }
        format!(
            "/findings?{}",
            serde_urlencoded::to_string(&p).unwrap_or_default()
        )
    }

    /// The API's `matching` object for this filter.
    fn matching(&self, now: OffsetDateTime) -> serde_json::Value {
        let f = self.filter(now);
        serde_json::json!({
            "status": f.status.map(FindingStatus::as_str),
            "severity": f.min_severity.map(Severity::as_str),
            "product": f.product.map(Product::as_str),
            "rule_id": f.rule_id,
            "project_id": f.project.map(|p| p.to_string()),
            "path": f.path_prefix,
            "on_default_branch": f.on_default_branch,
            "since": f.since.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
            "ignore_reason": f.ignore_reason.map(IgnoreReason::as_str),
        })
    }
}

#[derive(Debug, Clone)]
pub struct FindingView {
    pub id: String,
    pub severity: &'static str,
    pub product: &'static str,
    pub rule_id: String,
    pub project_id: String,
    pub project_name: String,
    pub location: String,
    pub git_ref: String,
    pub on_default: bool,
    pub status: &'static str,
    pub reason: Option<&'static str>,
    pub comment: Option<String>,
    pub first_seen: When,
}

fn view(r: &FindingRow, now: OffsetDateTime) -> FindingView {
    FindingView {
        id: r.id.to_string(),
        severity: r.severity.as_str(),
        product: r.product.as_str(),
        rule_id: r.rule_id.clone(),
        project_id: r.project_id.to_string(),
        project_name: r.project_name.clone(),
        location: format!("{}:{}", r.path, r.start_line),
        git_ref: r.git_ref.clone(),
        on_default: r.on_default_branch,
        status: r.status.as_str(),
        reason: r.ignore_reason.map(IgnoreReason::label),
        comment: r.triage_reason.clone(),
        first_seen: format::when(r.created_at, now),
    }
}

#[derive(Debug, Clone)]
pub struct GroupView {
    pub rule_id: String,
    pub severity: &'static str,
    pub product: &'static str,
    pub findings: i64,
    pub projects: i64,
    pub href: String,
}

#[derive(Template)]
#[template(path = "findings.html")]
struct FindingsPage {
    layout: Layout,
    csrf: String,
    project_name: Option<String>,
    statuses: Vec<Choice>,
    severities: Vec<Choice>,
    products: Vec<Choice>,
    refs: Vec<Choice>,
    windows: Vec<Choice>,
    reasons: Vec<Choice>,
    ignore_reasons: Vec<Choice>,
    rule: String,
    path: String,
    project: String,
    grouped: bool,
    flat_href: String,
    grouped_href: String,
    csv_href: String,
    rows: Vec<FindingView>,
    groups: Vec<GroupView>,
    total: i64,
    page: i64,
    pages: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
    hidden: Vec<(&'static str, String)>,
    notice: Option<String>,
    error: Option<String>,
}

fn choice_list<T: Copy + PartialEq>(
    all: impl IntoIterator<Item = (T, &'static str, &'static str)>,
    current: Option<T>,
) -> Vec<Choice> {
    all.into_iter()
        .map(|(v, value, label)| Choice {
            value,
            label,
            selected: current == Some(v),
        })
        .collect()
}

fn reasons(current: Option<IgnoreReason>) -> Vec<Choice> {
    choice_list(
        IgnoreReason::ALL.map(|r| (r, r.as_str(), r.label())),
        current,
    )
}

async fn show(
    state: &WebState,
    session: &Session,
    q: &FindingsQuery,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let l = q.listing();
    let now = OffsetDateTime::now_utc();
    let filter = l.filter(now);
    let pool = state.db().pool();
    let org = session.caller.org_id;
    let project_name = match l.project {
        Some(p) => match projects::get(pool, org, p).await {
            Ok(p) => Some(p.full_name),
            Err(DbError::NotFound) => None,
            Err(e) => return super::db_unavailable(&e, session),
        },
        None => None,
    };
    let total = match overview::count_findings(pool, org, &filter).await {
        Ok(n) => n,
        Err(e) => return super::db_unavailable(&e, session),
    };
    let (rows, groups) = if l.grouped {
        match overview::findings_by_rule(pool, org, &filter, GROUPS_SHOWN).await {
            Ok(g) => (Vec::new(), g),
            Err(e) => return super::db_unavailable(&e, session),
        }
    } else {
        match overview::findings(pool, org, &filter, (l.page - 1) * PAGE_SIZE, PAGE_SIZE).await {
            Ok(r) => (r, Vec::new()),
            Err(e) => return super::db_unavailable(&e, session),
        }
    };
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let mut hidden = l.pairs();
    hidden.push(("page", l.page.to_string()));
    let title = match &project_name {
        Some(p) => format!("Findings of {p}"),
        None => "Findings".to_owned(),
    };
    render(
        status,
        &FindingsPage {
            layout: Layout::new(title, "findings", Some(session)),
            csrf: session.csrf.clone(),
            project_name,
            statuses: choice_list(
                FindingStatus::ALL.map(|s| (s, s.as_str(), s.as_str())),
                l.status,
            ),
            severities: choice_list(
                Severity::ALL.map(|s| (s, s.as_str(), s.as_str())),
                l.severity,
            ),
            products: choice_list(Product::ALL.map(|p| (p, p.as_str(), p.as_str())), l.product),
            refs: choice_list(
                [
                    (true, "default", "Default branch"),
                    (false, "other", "Pull requests and other branches"),
                ],
                l.on_default,
            ),
            windows: choice_list(WINDOWS.map(|(k, label, _)| (k, k, label)), l.since),
            reasons: reasons(l.reason),
            ignore_reasons: reasons(None),
            rule: l.rule.clone().unwrap_or_default(),
            path: l.path.clone().unwrap_or_default(),
            project: l.project.map(|p| p.to_string()).unwrap_or_default(),
            grouped: l.grouped,
            flat_href: l.href(false, 1),
            grouped_href: l.href(true, 1),
            csv_href: format!(
                "/findings.csv?{}",
                serde_urlencoded::to_string(l.pairs()).unwrap_or_default()
            ),
            rows: rows.iter().map(|r| view(r, now)).collect(),
            groups: groups
                .into_iter()
                .map(|g| GroupView {
                    href: Listing {
                        rule: Some(g.rule_id.clone()),
                        ..l.clone()
                    }
                    .href(false, 1),
                    rule_id: g.rule_id,
                    severity: g.severity.as_str(),
                    product: g.product.as_str(),
                    findings: g.findings,
                    projects: g.projects,
                })
                .collect(),
            total,
            page: l.page,
            pages,
            prev_href: (l.page > 1).then(|| l.href(false, l.page - 1)),
            next_href: (l.page < pages).then(|| l.href(false, l.page + 1)),
            hidden,
            notice: q.triaged.map(|n| {
                format!(
                    "Triaged: {n} finding{} changed.",
                    if n == 1 { "" } else { "s" }
                )
            }),
            error,
        },
    )
}

/// `GET /findings`.
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<FindingsQuery>,
) -> Response {
    show(&state, &session, &q, StatusCode::OK, None).await
}

/// The triage form: the decision, the rows or `all`, and the listing to come back to.
struct TriageForm {
    ids: Vec<String>,
    all: bool,
    action: Option<String>,
    reason: Option<String>,
    comment: Option<String>,
    query: FindingsQuery,
}

fn triage_form(body: &[u8]) -> TriageForm {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    TriageForm {
        ids: pairs
            .iter()
            .filter(|(k, _)| k == "finding")
            .map(|(_, v)| v.clone())
            .collect(),
        all: get("all").is_some(),
        action: get("action"),
        reason: get("ignore_reason"),
        comment: get("comment"),
        query: FindingsQuery {
            status: get("status"),
            severity: get("severity"),
            product: get("product"),
            rule: get("rule"),
            project: get("project"),
            path: get("path"),
            git_ref: get("ref"),
            since: get("since"),
            reason: get("reason"),
            page: get("page").and_then(|p| p.parse().ok()),
            ..FindingsQuery::default()
        },
    }
}

/// The API's decision object for a form's action, or what is missing.
fn decision(
    action: Option<&str>,
    reason: Option<&str>,
    comment: Option<&str>,
) -> Result<serde_json::Value, &'static str> {
    match action {
        Some("ignore") => match reason {
            Some(r) if r.parse::<IgnoreReason>().is_ok() => Ok(serde_json::json!({
                "status": "ignored", "ignore_reason": r, "reason": comment,
            })),
            _ => Err("Choose why these findings are ignored."),
        },
        Some("reopen") => Ok(serde_json::json!({ "status": "open" })),
        _ => Err("Choose Ignore or Reopen."),
    }
}

#[derive(Debug, Deserialize)]
struct BulkTriageAnswer {
    changed: i64,
}

/// `POST /findings/triage`: bulk triage of the selected findings or all matching.
pub async fn triage(State(state): State<WebState>, session: Session, body: Bytes) -> Response {
    let form = triage_form(&body);
    let l = form.query.listing();
    let decision = match decision(
        form.action.as_deref(),
        form.reason.as_deref(),
        form.comment.as_deref(),
    ) {
        Ok(d) => d,
        Err(why) => {
            return show(
                &state,
                &session,
                &form.query,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(why.to_owned()),
            )
            .await
        }
    };
    let findings = if form.all {
        serde_json::json!({ "matching": l.matching(OffsetDateTime::now_utc()) })
    } else if form.ids.is_empty() {
        return show(
            &state,
            &session,
            &form.query,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Select at least one finding, or all matching findings.".to_owned()),
        )
        .await;
    } else {
        serde_json::json!({ "ids": form.ids })
    };
    let answer: Result<BulkTriageAnswer, Refusal> = state
        .api
        .call(
            session.caller,
            Method::POST,
            "/api/v1/findings/triage",
            Some(serde_json::json!({ "findings": findings, "decision": decision })),
        )
        .await;
    match answer {
        Ok(a) => {
            let mut target = l.href(false, l.page);
            target.push_str(&format!("&triaged={}", a.changed));
            Redirect::to(&target).into_response()
        }
        Err(r) => {
            let status = r.status();
            show(&state, &session, &form.query, status, Some(r.message())).await
        }
    }
}

/// `GET /findings.csv`: every finding the filter matches, as CSV (RFC 4180, UTF-8, a header
/// row).
pub async fn csv(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<FindingsQuery>,
) -> Response {
    let l = q.listing();
    let filter = l.filter(OffsetDateTime::now_utc());
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "id",
        "project",
        "ref",
        "default_branch",
        "product",
        "severity",
        "rule_id",
        "path",
        "line",
        "status",
        "ignore_reason",
        "comment",
        "first_seen",
        "message",
    ];
    if out.write_record(header).is_err() {
        return super::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Export failed",
            "The CSV could not be written.",
            Some(&session),
        );
    }
    let mut offset = 0;
    loop {
        let rows = match overview::findings(
            state.db().pool(),
            session.caller.org_id,
            &filter,
            offset,
            CSV_CHUNK,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => return super::db_unavailable(&e, &session),
        };
        for r in &rows {
            let first_seen = r
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let line = r.start_line.to_string();
            let written = out.write_record([
                r.id.to_string().as_str(),
                &r.project_name,
                &r.git_ref,
                if r.on_default_branch { "yes" } else { "no" },
                r.product.as_str(),
                r.severity.as_str(),
                &r.rule_id,
                &r.path,
                &line,
                r.status.as_str(),
                r.ignore_reason.map_or("", IgnoreReason::as_str),
                r.triage_reason.as_deref().unwrap_or(""),
                &first_seen,
                &r.message,
            ]);
            if written.is_err() {
                return super::error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Export failed",
                    "The CSV could not be written.",
                    Some(&session),
                );
            }
        }
        if (rows.len() as i64) < CSV_CHUNK {
            break;
        }
        offset += CSV_CHUNK;
    }
    let body = out.into_inner().unwrap_or_default();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"picket-findings.csv\""),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

#[derive(Debug, Clone)]
pub struct HistoryView {
    pub when: When,
    pub actor: String,
    pub from: &'static str,
    pub to: &'static str,
    pub reason: Option<&'static str>,
    pub comment: Option<String>,
}

#[derive(Template)]
#[template(path = "finding.html")]
struct FindingPage {
    layout: Layout,
    csrf: String,
    id: String,
    project_id: String,
    project_name: String,
    severity: &'static str,
    product: &'static str,
    rule_id: String,
    message: String,
    path: String,
    lines: String,
    git_ref: String,
    status: &'static str,
    reason: Option<&'static str>,
    comment: Option<String>,
    secret: Option<String>,
    first_seen_scan: String,
    first_seen: When,
    first_seen_pr: Option<i32>,
    /// The commit the first scan saw (12 characters), with its page at the provider when known.
    first_seen_commit: Option<(String, Option<String>)>,
    last_seen_scan: String,
    /// The matched line at the provider, for the commit last scanned (GitHub projects).
    source_link: Option<String>,
    /// The rule's own words: its pack, message and metadata (CWE, confidence, ...).
    rule_pack: Option<String>,
    rule_message: Option<String>,
    rule_metadata: Vec<(String, String)>,
    /// The matched lines with their numbers, as the latest scan saw them.
    code: Vec<(i32, String)>,
    /// Lines of the match past those stored.
    code_more: i32,
    /// Why no lines are shown, when none are.
    code_absent: &'static str,
    history: Vec<HistoryView>,
    ignore_reasons: Vec<Choice>,
    error: Option<String>,
    /// Supply Chain findings: the vulnerable dependency, its advisories and its mode.
    dependency: Option<crate::supply_chain::DependencyView>,
}

fn finding_not_found(session: &Session) -> Response {
    super::error_page(
        StatusCode::NOT_FOUND,
        "No such finding",
        "This finding does not exist in your org, or it was deleted with its project.",
        Some(session),
    )
}

async fn show_finding(
    state: &WebState,
    session: &Session,
    id: FindingId,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let pool = state.db().pool();
    let org = session.caller.org_id;
    let f = match findings::get(pool, org, id).await {
        Ok(f) => f,
        Err(DbError::NotFound) => return finding_not_found(session),
        Err(e) => return super::db_unavailable(&e, session),
    };
    let project = match projects::get(pool, org, f.project_id).await {
        Ok(p) => p,
        Err(DbError::NotFound) => return finding_not_found(session),
        Err(e) => return super::db_unavailable(&e, session),
    };
    let first = match scans::get(pool, org, f.first_seen_scan_id).await {
        Ok(s) => Some(s),
        Err(DbError::NotFound) => None,
        Err(e) => return super::db_unavailable(&e, session),
    };
    let last = match scans::get(pool, org, f.last_seen_scan_id).await {
        Ok(s) => Some(s),
        Err(DbError::NotFound) => None,
        Err(e) => return super::db_unavailable(&e, session),
    };
    let provider = match connections::get(pool, org, project.connection_id).await {
        Ok(c) => c.provider,
        Err(DbError::NotFound) => return finding_not_found(session),
        Err(e) => return super::db_unavailable(&e, session),
    };
    // Links only where the provider's page paths are known (GitHub's `/blob/` and `/commit/`).
    let on_github = provider == Provider::Github;
    let source_link = last
        .as_ref()
        .and_then(|s| s.commit_sha.as_deref())
        .filter(|_| on_github)
        .and_then(|sha| blob_url(&project.clone_url, sha, &f.path, f.start_line, f.end_line));
    let first_seen_commit = first
        .as_ref()
        .and_then(|s| s.commit_sha.as_deref())
        .map(|sha| {
            let link = on_github
                .then(|| commit_url(&project.clone_url, sha))
                .flatten();
            (sha.chars().take(12).collect::<String>(), link)
        });
    let rule = match crate::pages::policies::rule(state, session, &f.rule_id).await {
        Ok(rule) => rule,
        Err(e) => return super::db_unavailable(&e, session),
    };
    let history = match findings::history(pool, org, id).await {
        Ok(h) => h,
        Err(e) => return super::db_unavailable(&e, session),
    };
    let stores_lines = match orgs::get(pool, org).await {
        Ok(o) => o.store_matched_lines,
        Err(e) => return super::db_unavailable(&e, session),
    };
    let dependency = match &f.dependency {
        Some(dep) => {
            let policies = match picket_db::policies::list(pool, org).await {
                Ok(p) => p,
                Err(e) => return super::db_unavailable(&e, session),
            };
            let modes = picket_core::policy::effective_modes(policies.iter().map(|p| &p.rules));
            Some(crate::supply_chain::dependency_view(
                dep,
                &f.rule_id,
                &f.path,
                f.start_line,
                f.end_line,
                f.severity,
                &f.message,
                &f.fingerprint,
                &modes,
            ))
        }
        None => None,
    };
    let code: Vec<(i32, String)> = (f.start_line..)
        .zip(f.matched_lines.iter().cloned())
        .collect();
    let code_absent = match (f.product, stores_lines) {
        (Product::Secrets, _) => "Secrets findings never keep their lines.",
        (Product::SupplyChain, _) => "Supply Chain findings point at a lockfile entry.",
        (Product::Code, false) => "This org does not store matched lines (Settings).",
        (Product::Code, true) => {
            "No lines are stored for this finding yet: the next scan that sees it sends them."
        }
    };
    let now = OffsetDateTime::now_utc();
    render(
        status,
        &FindingPage {
            layout: Layout::new(
                format!("{} in {}", f.rule_id, project.full_name),
                "findings",
                Some(session),
            ),
            csrf: session.csrf.clone(),
            id: f.id.to_string(),
            project_id: project.id.to_string(),
            project_name: project.full_name,
            severity: f.severity.as_str(),
            product: f.product.as_str(),
            rule_id: f.rule_id.clone(),
            message: f.message.clone(),
            path: f.path.clone(),
            lines: if f.end_line > f.start_line {
                format!("lines {}-{}", f.start_line, f.end_line)
            } else if f.dependency.is_some() {
                format!(
                    "line {} (where the lockfile pins the package)",
                    f.start_line
                )
            } else {
                format!("line {}", f.start_line)
            },
            git_ref: f.git_ref.clone(),
            status: f.status.as_str(),
            reason: f.ignore_reason.map(IgnoreReason::label),
            comment: f.triage_reason.clone(),
            secret: f.secret_redacted.clone(),
            first_seen_scan: f.first_seen_scan_id.to_string(),
            first_seen: format::when(f.created_at, now),
            first_seen_pr: first.and_then(|s| s.pr_number),
            first_seen_commit,
            last_seen_scan: f.last_seen_scan_id.to_string(),
            source_link,
            rule_pack: rule.as_ref().map(|(p, _)| p.clone()),
            rule_message: rule.as_ref().map(|(_, d)| d.message.clone()),
            rule_metadata: rule
                .as_ref()
                .map(|(_, d)| metadata_rows(&d.metadata))
                .unwrap_or_default(),
            code_more: (f.end_line - f.start_line + 1 - code.len() as i32).max(0),
            code,
            code_absent,
            history: history
                .iter()
                .map(|h| HistoryView {
                    when: format::when(h.at, now),
                    actor: h.actor.clone(),
                    from: h.from_status.as_str(),
                    to: h.to_status.as_str(),
                    reason: h.ignore_reason.map(IgnoreReason::label),
                    comment: h.comment.clone(),
                })
                .collect(),
            ignore_reasons: reasons(f.ignore_reason),
            error,
            dependency,
        },
    )
}

/// `GET /findings/{id}`.
pub async fn finding(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    match id.parse() {
        Ok(id) => show_finding(&state, &session, id, StatusCode::OK, None).await,
        Err(_) => finding_not_found(&session),
    }
}

#[derive(Debug, Deserialize)]
pub struct OneTriage {
    action: Option<String>,
    ignore_reason: Option<String>,
    comment: Option<String>,
}

/// `POST /findings/{id}/triage`.
pub async fn triage_one(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<OneTriage>,
) -> Response {
    let Ok(id) = id.parse::<FindingId>() else {
        return finding_not_found(&session);
    };
    let comment = form
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let body = match decision(
        form.action.as_deref(),
        form.ignore_reason.as_deref(),
        comment,
    ) {
        Ok(d) => d,
        Err(why) => {
            return show_finding(
                &state,
                &session,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(why.to_owned()),
            )
            .await
        }
    };
    let answer: Result<serde_json::Value, Refusal> = state
        .api
        .call(
            session.caller,
            Method::POST,
            &format!("/api/v1/findings/{id}/triage"),
            Some(body),
        )
        .await;
    match answer {
        Ok(_) => Redirect::to(&format!("/findings/{id}")).into_response(),
        Err(r) => {
            let status = r.status();
            show_finding(&state, &session, id, status, Some(r.message())).await
        }
    }
}

/// The rule metadata a reader wants first (`cwe`, `owasp`, `confidence`, `likelihood`, `impact`,
/// `category`, `references`), as (key, text) rows; lists joined with commas.
fn metadata_rows(metadata: &serde_json::Value) -> Vec<(String, String)> {
    const KEYS: [&str; 7] = [
        "cwe",
        "owasp",
        "confidence",
        "likelihood",
        "impact",
        "category",
        "references",
    ];
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    KEYS.iter()
        .filter_map(|k| metadata.get(*k).map(|v| ((*k).to_owned(), text(v))))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// What a URL path segment must escape (RFC 3986: controls, space, and `"#%<>?\`{}`).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// `https://<host>/<owner>/<repo>` of a GitHub clone URL (github.com, or an Enterprise
/// Server's host), when it is one.
fn github_repo_url(clone_url: &str) -> Option<String> {
    let rest = clone_url.strip_prefix("https://")?;
    let (host, repo) = rest.split_once('/')?;
    let repo = repo.trim_end_matches('/').trim_end_matches(".git");
    (!host.is_empty() && repo.split('/').count() == 2).then(|| format!("https://{host}/{repo}"))
}

/// GitHub's page of `commit` (hex) in the repository of `clone_url`.
fn commit_url(clone_url: &str, commit: &str) -> Option<String> {
    let repo = github_repo_url(clone_url)?;
    commit
        .bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| format!("{repo}/commit/{commit}"))
}

/// The provider's page of the matched lines at `commit`, when the clone URL is a GitHub
/// repository's (`https://<host>/<owner>/<repo>(.git)`: github.com, or an Enterprise Server's
/// host, which serves the same `/blob/` paths).
fn blob_url(clone_url: &str, commit: &str, path: &str, start: i32, end: i32) -> Option<String> {
    let repo = github_repo_url(clone_url)?;
    if !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let path: String = path
        .split('/')
        .map(|seg| percent_encoding::utf8_percent_encode(seg, PATH_SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/");
    let lines = if end > start {
        format!("#L{start}-L{end}")
    } else {
        format!("#L{start}")
    };
    Some(format!("{repo}/blob/{commit}/{path}{lines}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_github_clone_url_links_to_the_lines_at_the_commit() {
        assert_eq!(
            blob_url(
                "https://github.com/acme/api.git",
                "abc123",
                "src/a b.py",
                3,
                5
            )
            .as_deref(),
            Some("https://github.com/acme/api/blob/abc123/src/a%20b.py#L3-L5")
        );
        assert_eq!(
            blob_url("https://github.com/acme/api", "abc123", "x.py", 7, 7).as_deref(),
            Some("https://github.com/acme/api/blob/abc123/x.py#L7")
        );
        assert_eq!(blob_url("file:///tmp/repo", "abc", "x.py", 1, 1), None);
        assert_eq!(
            blob_url("https://github.com/acme/api.git", "main; rm", "x", 1, 1),
            None
        );
    }

    #[test]
    fn a_github_clone_url_links_to_a_commit() {
        assert_eq!(
            commit_url("https://github.com/acme/api.git", "abc123").as_deref(),
            Some("https://github.com/acme/api/commit/abc123")
        );
        assert_eq!(commit_url("https://github.com/acme", "abc123"), None);
        assert_eq!(commit_url("https://github.com/acme/api", "abc/../x"), None);
    }

    #[test]
    fn metadata_shows_the_keys_a_reader_wants() {
        let m = serde_json::json!({"cwe": ["CWE-89: SQL Injection"], "confidence": "HIGH", "x": 1});
        assert_eq!(
            metadata_rows(&m),
            [
                ("cwe".to_owned(), "CWE-89: SQL Injection".to_owned()),
                ("confidence".to_owned(), "HIGH".to_owned())
            ]
        );
    }

    #[test]
    fn the_listing_defaults_to_open_and_round_trips() {
        let l = FindingsQuery::default().listing();
        assert_eq!(l.status, Some(FindingStatus::Open));
        let q = FindingsQuery {
            status: Some("any".into()),
            severity: Some("high".into()),
            rule: Some(" r.one ".into()),
            git_ref: Some("other".into()),
            since: Some("7d".into()),
            reason: Some("used_in_tests".into()),
            ..Default::default()
        };
        let l = q.listing();
        assert_eq!(l.status, None);
        assert_eq!(l.rule.as_deref(), Some("r.one"));
        assert_eq!(l.on_default, Some(false));
        let href = l.href(false, 1);
        let again: FindingsQuery =
            serde_urlencoded::from_str(href.trim_start_matches("/findings?")).unwrap();
        assert_eq!(again.listing(), l);
    }

    #[test]
    fn an_ignore_needs_a_reason_from_the_list() {
        assert!(decision(Some("ignore"), None, Some("x")).is_err());
        assert!(decision(Some("ignore"), Some("because"), None).is_err());
        let d = decision(Some("ignore"), Some("used_in_tests"), Some("fixture")).unwrap();
        assert_eq!(d["ignore_reason"], "used_in_tests");
        assert_eq!(d["reason"], "fixture");
        assert_eq!(
            decision(Some("reopen"), None, None).unwrap()["status"],
            "open"
        );
        assert!(decision(None, None, None).is_err());
    }
}
