//! The Scan page (`/scans/{id}`, a permalink): what was scanned and why, the timeline of state
//! changes, each attempt's environment and the worker's steps with durations, what Supply Chain
//! read (every lockfile, those it could not read named with the reason, or plainly that the
//! repository has none), the findings it found (new / no longer present for diff scans), and
//! cancel / retry through the API. While the
//! scan is active, its live part updates over server-sent events.

use super::async_stream;
use super::{render, Layout};
use crate::api::Refusal;
use crate::format::{self, When};
use crate::session::Session;
use crate::WebState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures::Stream;
use picket_core::{ScanId, ScanKind, ScanState};
use picket_db::attempts;
use picket_db::findings::{self, ScanFindingChange};
use picket_db::{projects, scans, DbError};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use time::OffsetDateTime;

/// Most findings the page lists (the API pages through all of them).
const FINDINGS_SHOWN: i64 = 200;

#[derive(Debug, Clone)]
pub struct EventView {
    pub when: When,
    pub from: Option<&'static str>,
    pub to: &'static str,
    pub to_label: &'static str,
    pub attempt: i32,
    pub actor: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StepView {
    pub step: String,
    pub took: String,
    pub figures: String,
}

#[derive(Debug, Clone)]
pub struct AttemptView {
    pub attempt: i32,
    pub executor: String,
    pub environment: String,
    pub launched: Option<When>,
    pub engine: Option<String>,
    pub steps: Vec<StepView>,
    pub failed_step: Option<String>,
    pub skipped_files: usize,
}

#[derive(Debug, Clone)]
pub struct FindingView {
    pub change: &'static str,
    pub severity: &'static str,
    pub product: &'static str,
    pub rule_id: String,
    pub location: String,
    pub message: String,
    pub status: Option<&'static str>,
}

/// The part of the page that changes while the scan runs.
#[derive(Debug, Clone)]
pub struct ScanLive {
    pub id: String,
    pub csrf: String,
    pub state: &'static str,
    pub state_label: &'static str,
    pub active: bool,
    /// Succeeded, failed, cancelled or timed out: nothing more will be reported.
    pub ended: bool,
    pub can_retry: bool,
    pub why: Option<String>,
    pub queued: When,
    pub started: Option<When>,
    pub finished: Option<When>,
    pub took: Option<String>,
    pub attempt: i32,
    pub max_attempts: i32,
    pub events: Vec<EventView>,
    pub attempts: Vec<AttemptView>,
    pub findings: Vec<FindingView>,
    pub findings_total_note: Option<String>,
    pub diff: bool,
    /// What Supply Chain read, as the latest attempt that reported its trail tells it; `None`
    /// before any did.
    pub supply_chain: Option<crate::supply_chain::TrailView>,
}

/// [`ScanLive`] alone, as a live update sends it.
#[derive(Template)]
#[template(path = "scan_live.html")]
struct ScanLiveFragment<'a> {
    live: &'a ScanLive,
}

#[derive(Template)]
#[template(path = "scan.html")]
struct ScanPage {
    layout: Layout,
    project_id: String,
    project_name: String,
    kind: &'static str,
    trigger: &'static str,
    git_ref: Option<String>,
    commit: Option<String>,
    base: Option<String>,
    merge_base: Option<String>,
    pr_number: Option<i32>,
    rerun_of: Option<String>,
    error: Option<String>,
    live: ScanLive,
}

/// Why a scan ended the way it did, in words (a scan is never left as "never finished" unsaid).
fn why(s: &scans::ScanRecord) -> Option<String> {
    let code = s.error_code.as_deref();
    let message = s.error_message.as_deref().unwrap_or("");
    let text = match (s.state, code) {
        (ScanState::Queued, _) if s.attempt > 1 => {
            "Waiting for a retry: the previous attempt failed.".to_owned()
        }
        (ScanState::Queued, _) => {
            "Waiting for a free scan slot (the org's concurrent-scan limit) or a scheduler."
                .to_owned()
        }
        (ScanState::Claimed, _) => "A scheduler is starting its environment.".to_owned(),
        (ScanState::Running, _) => "The worker is cloning and scanning.".to_owned(),
        (ScanState::Reporting, _) => "The worker's results are being stored.".to_owned(),
        (ScanState::Succeeded, _) => return None,
        (ScanState::Cancelled, Some("superseded")) => {
            "Superseded: a newer commit of the pull request was pushed, and its scan replaced this one.".to_owned()
        }
        (ScanState::Cancelled, _) => format!("Cancelled. {message}"),
        (ScanState::TimedOut, _) => format!("Timed out: it ran past its deadline. {message}"),
        (ScanState::Failed, Some("lease_expired")) => {
            "Failed: its scheduler stopped answering (lease expired) and no attempt was left."
                .to_owned()
        }
        (ScanState::Failed, Some(c)) => format!("Failed ({c}): {message}"),
        (ScanState::Failed, None) => format!("Failed. {message}"),
    };
    Some(text.trim().to_owned())
}

async fn live(
    state: &WebState,
    session: &Session,
    id: ScanId,
) -> Result<(scans::ScanRecord, ScanLive), DbError> {
    let pool = state.db().pool();
    let org = session.caller.org_id;
    let s = scans::get(pool, org, id).await?;
    let events = scans::events(pool, org, id).await?;
    let tries = attempts::list(pool, org, id).await?;
    let found = findings::of_scan(pool, org, id, None, None, FINDINGS_SHOWN + 1).await?;
    let now = OffsetDateTime::now_utc();
    let more = found.len() as i64 > FINDINGS_SHOWN;
    let view = ScanLive {
        id: s.id.to_string(),
        csrf: session.csrf.clone(),
        state: s.state.as_str(),
        state_label: format::state_label(s.state),
        active: s.state.is_active(),
        ended: s.state.is_terminal(),
        can_retry: !s.state.is_active(),
        why: why(&s),
        queued: format::when(s.queued_at, now),
        started: s.started_at.map(|t| format::when(t, now)),
        finished: s.finished_at.map(|t| format::when(t, now)),
        took: s.started_at.map(|t| format::elapsed(t, s.finished_at, now)),
        attempt: s.attempt,
        max_attempts: s.max_attempts,
        events: events
            .iter()
            .map(|e| EventView {
                when: format::when(e.at, now),
                from: e.from_state.map(ScanState::as_str),
                to: e.to_state.as_str(),
                to_label: format::state_label(e.to_state),
                attempt: e.attempt,
                actor: e.actor.clone(),
                detail: e.detail.clone(),
            })
            .collect(),
        attempts: tries
            .iter()
            .map(|a| AttemptView {
                attempt: a.attempt,
                executor: a.executor.clone().unwrap_or_else(|| "—".to_owned()),
                environment: a.environment.clone().unwrap_or_else(|| "—".to_owned()),
                launched: a.launched_at.map(|t| format::when(t, now)),
                engine: a.trail.as_ref().and_then(|t| t.engine.clone()),
                steps: a
                    .trail
                    .as_ref()
                    .map(|t| {
                        t.steps
                            .iter()
                            .map(|st| StepView {
                                step: st.step.clone(),
                                took: format::duration(st.millis as f64 / 1000.0),
                                figures: st
                                    .figures
                                    .iter()
                                    .map(|(k, v)| format!("{}: {v}", k.replace('_', " ")))
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                failed_step: a.failed_step.clone(),
                skipped_files: a.trail.as_ref().map_or(0, |t| t.skipped_files.len()),
            })
            .collect(),
        findings: found
            .iter()
            .take(FINDINGS_SHOWN as usize)
            .map(|f| FindingView {
                change: match f.change {
                    ScanFindingChange::Found => "found",
                    ScanFindingChange::New => "new",
                    ScanFindingChange::Fixed => "no longer present",
                },
                severity: f.severity.as_str(),
                product: f.product.as_str(),
                rule_id: f.rule_id.clone(),
                location: format!("{}:{}", f.path, f.start_line),
                message: f.message.clone(),
                status: f.status.map(|s| s.as_str()),
            })
            .collect(),
        findings_total_note: more.then(|| {
            format!(
                "Showing the first {FINDINGS_SHOWN}; the API lists all (GET /api/v1/scans/{id}/findings)."
            )
        }),
        diff: s.kind == ScanKind::Diff,
        supply_chain: tries.iter().rev().find_map(|a| {
            let trail = a.trail.as_ref()?;
            Some(crate::supply_chain::trail_view(
                a.attempt,
                trail.supply_chain.as_ref(),
            ))
        }),
    };
    Ok((s, view))
}

async fn show(
    state: &WebState,
    session: &Session,
    id: ScanId,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let (s, live) = match live(state, session, id).await {
        Ok(found) => found,
        Err(DbError::NotFound) => return not_found(session),
        Err(e) => return super::db_unavailable(&e, session),
    };
    let project = match projects::get(state.db().pool(), session.caller.org_id, s.project_id).await
    {
        Ok(p) => p,
        Err(DbError::NotFound) => return not_found(session),
        Err(e) => return super::db_unavailable(&e, session),
    };
    render(
        status,
        &ScanPage {
            layout: Layout::new(
                format!("{} scan of {}", s.kind.as_str(), project.full_name),
                "projects",
                Some(session),
            ),
            project_id: project.id.to_string(),
            project_name: project.full_name,
            kind: match s.kind {
                ScanKind::Full => "Full scan",
                ScanKind::Diff => "Diff-aware scan",
            },
            trigger: s.trigger.as_str(),
            git_ref: s.git_ref.clone(),
            commit: s.commit_sha.clone(),
            base: s.base_ref.clone().or(s.base_sha.clone()),
            merge_base: s.merge_base_sha.clone(),
            pr_number: s.pr_number,
            rerun_of: s.rerun_of.map(|r| r.to_string()),
            error,
            live,
        },
    )
}

fn not_found(session: &Session) -> Response {
    super::error_page(
        StatusCode::NOT_FOUND,
        "No such scan",
        "This scan does not exist in your org, or it was deleted with its project.",
        Some(session),
    )
}

fn parse_id(raw: &str) -> Option<ScanId> {
    raw.parse().ok()
}

/// `GET /scans/{id}`.
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    match parse_id(&id) {
        Some(id) => show(&state, &session, id, StatusCode::OK, None).await,
        None => not_found(&session),
    }
}

async fn act(state: &WebState, session: &Session, raw: &str, verb: &str) -> Response {
    let Some(id) = parse_id(raw) else {
        return not_found(session);
    };
    let answer: Result<serde_json::Value, Refusal> = state
        .api
        .call(
            session.caller,
            Method::POST,
            &format!("/api/v1/scans/{id}/{verb}"),
            None,
        )
        .await;
    match answer {
        // A retry is a new scan: go to it.
        Ok(v) => match v.get("id").and_then(|i| i.as_str()) {
            Some(new) if verb == "retry" => Redirect::to(&format!("/scans/{new}")).into_response(),
            _ => Redirect::to(&format!("/scans/{id}")).into_response(),
        },
        Err(r) => {
            let status = r.status();
            show(state, session, id, status, Some(r.message())).await
        }
    }
}

/// `POST /scans/{id}/cancel`.
pub async fn cancel(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    act(&state, &session, &id, "cancel").await
}

/// `POST /scans/{id}/retry`.
pub async fn retry(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    act(&state, &session, &id, "retry").await
}

/// `GET /events/scans/{id}`: event `scan` with the page's live part whenever it changes; the
/// stream ends after the scan has ended and that was sent.
pub async fn events(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = parse_id(&id);
    let org = session.caller.org_id;
    let mut ticks = state.feed.subscribe();
    let stream = async_stream(move |tx| async move {
        let Some(id) = id else { return };
        let mut shown: Option<String> = None;
        loop {
            if shown.is_some() {
                match ticks.recv().await {
                    Ok(t) if !t.concerns(org) => continue,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
            let (record, view) = match live(&state, &session, id).await {
                Ok(v) => v,
                Err(DbError::NotFound) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "live scan");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Ok(html) = (ScanLiveFragment { live: &view }).render() else {
                return;
            };
            if shown.is_some() && shown.as_ref() != Some(&html) {
                let event = Event::default().event("scan").data(html.replace('\n', ""));
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            shown = Some(html);
            tokio::time::sleep(Duration::from_millis(300)).await;
            if !record.state.is_active() && shown.is_some() {
                // Ended: one more look after the results settle, then stop.
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok((_, last)) = live(&state, &session, id).await {
                    if let Ok(html) = (ScanLiveFragment { live: &last }).render() {
                        if Some(&html) != shown.as_ref() {
                            let _ = tx
                                .send(Ok(Event::default()
                                    .event("scan")
                                    .data(html.replace('\n', ""))))
                                .await;
                        }
                    }
                }
                return;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Most lines the Logs tab shows (a scan keeps at most 10,000).
const LOG_LINES_SHOWN: i64 = 10_000;

#[derive(Debug, Clone)]
pub struct LogLineView {
    pub seq: i64,
    pub time: String,
    pub iso: String,
    pub level: &'static str,
    pub attempt: i32,
    pub message: String,
}

fn log_view(l: &picket_db::scan_logs::StoredLine) -> LogLineView {
    let utc = l.at.to_offset(time::UtcOffset::UTC);
    LogLineView {
        seq: l.seq,
        time: format!("{:02}:{:02}:{:02}", utc.hour(), utc.minute(), utc.second()),
        iso: utc
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        level: l.level.as_str(),
        attempt: l.attempt,
        message: l.message.clone(),
    }
}

#[derive(Template)]
#[template(path = "scan_logs.html")]
struct LogsPage {
    layout: Layout,
    id: String,
    project_id: String,
    project_name: String,
    kind: &'static str,
    state: &'static str,
    state_label: &'static str,
    active: bool,
    lines: Vec<LogLineView>,
    last_seq: i64,
    dropped: i64,
    retention_note: &'static str,
}

#[derive(Template)]
#[template(path = "scan_log_lines.html")]
struct LogLinesFragment<'a> {
    lines: &'a [LogLineView],
}

/// `GET /scans/{id}/logs`: the Logs tab; while the scan runs, new lines arrive over SSE.
pub async fn logs(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return not_found(&session);
    };
    let pool = state.db().pool();
    let org = session.caller.org_id;
    let s = match scans::get(pool, org, id).await {
        Ok(s) => s,
        Err(DbError::NotFound) => return not_found(&session),
        Err(e) => return super::db_unavailable(&e, &session),
    };
    let project = match projects::get(pool, org, s.project_id).await {
        Ok(p) => p,
        Err(DbError::NotFound) => return not_found(&session),
        Err(e) => return super::db_unavailable(&e, &session),
    };
    let (lines, dropped) = match (
        picket_db::scan_logs::list(pool, org, id, 0, LOG_LINES_SHOWN).await,
        picket_db::scan_logs::dropped(pool, org, id).await,
    ) {
        (Ok(l), Ok(d)) => (l, d),
        (Err(e), _) | (_, Err(e)) => return super::db_unavailable(&e, &session),
    };
    let lines: Vec<LogLineView> = lines.iter().map(log_view).collect();
    render(
        StatusCode::OK,
        &LogsPage {
            layout: Layout::new(format!("Logs of a scan of {}", project.full_name), "projects", Some(&session)),
            id: id.to_string(),
            project_id: project.id.to_string(),
            project_name: project.full_name,
            kind: match s.kind {
                ScanKind::Full => "Full scan",
                ScanKind::Diff => "Diff-aware scan",
            },
            state: s.state.as_str(),
            state_label: format::state_label(s.state),
            active: s.state.is_active(),
            last_seq: lines.last().map_or(0, |l| l.seq),
            lines,
            dropped,
            retention_note: "Logs are kept for a while after the scan ends (PICKET_SCAN_LOG_RETENTION, 30 days by default).",
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct LogEventsQuery {
    #[serde(default, deserialize_with = "super::lenient")]
    after: Option<i64>,
}

/// `GET /events/scans/{id}/logs?after=N`: event `lines` with the `<li>`s of new lines, every
/// second while the scan runs; ends a moment after it ended.
pub async fn log_events(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<LogEventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = parse_id(&id);
    let org = session.caller.org_id;
    let stream = async_stream(move |tx| async move {
        let Some(id) = id else { return };
        let mut after = q.after.unwrap_or(0).max(0);
        let mut ended_passes = 0;
        loop {
            let pool = state.db().pool();
            let Ok(lines) = picket_db::scan_logs::list(pool, org, id, after, 500).await else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            if let Some(last) = lines.last() {
                after = last.seq;
                let views: Vec<LogLineView> = lines.iter().map(log_view).collect();
                if let Ok(html) = (LogLinesFragment { lines: &views }).render() {
                    let event = Event::default().event("lines").data(html.replace('\n', ""));
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            match scans::get(pool, org, id).await {
                Ok(s) if !s.state.is_active() => {
                    ended_passes += 1;
                    if ended_passes > 2 {
                        let _ = tx
                            .send(Ok(Event::default().event("ended").data("ended")))
                            .await;
                        return;
                    }
                }
                Err(DbError::NotFound) => return,
                _ => {}
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
