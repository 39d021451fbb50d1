//! `/api/v1/worker/…`: the worker protocol (`picket_core::protocol`), for the one worker of one
//! scan, authenticated by its per-scan token (`pks_…`, minted when the scan was claimed).
//!
//! A token reaches only its own scan, only while that scan is active and only for the attempt it
//! was minted for; anything else is 401 `unauthorized` without saying why. The routes move the
//! scan with picket-db's fenced updates under the scan's current lease (found from the token),
//! audited as `worker`; a lease lost meanwhile is 409 `lease_lost`.
//!
//! - `GET  /worker/scan`             the [`ScanSpec`] (safe to log)
//! - `GET  /worker/scan/credential`  the [`CloneCredential`] (never log it), kept apart from the spec
//! - `POST /worker/scan/progress`    `running` / `reporting`
//! - `POST /worker/scan/results`     findings + lifecycle + the attempt's record + `succeeded`, in
//!   one transaction; a repeat of the same upload answers the same summary and changes nothing.
//!   Its body may be up to [`RESULTS_BODY_LIMIT_BYTES`].
//! - `POST /worker/scan/failure`     the attempt failed: retried once for full scans
//! - `POST /worker/scan/feedback/begin`  a PR scan's worker, `reporting`, is about to post its
//!   feedback: hands over what it plans from, learns where to post and whether it is late
//! - `POST /worker/scan/feedback/done`   its comments are posted; the control plane completes
//!   the check (docs/architecture.md, "Pull requests")

use crate::error::{ApiError, Problem};
use crate::extract::{scan_token_refused, ApiJson, ScanToken, Worker};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::Json;
use picket_core::protocol::{
    CloneCredential, FeedbackBegin, FeedbackDone, FeedbackStart, ReportedFinding, ScanFailure,
    ScanResults, ScanSpec, ScanTrail, Step, WorkerProgress, MAX_DEPENDENCY_ENTRY_CHARS,
    MAX_DEPENDENCY_LIST, MAX_DEPENDENCY_VERSIONS, MAX_PACKAGE_NAME_CHARS, MAX_TRAIL_LOCKFILES,
};
use picket_core::{Fingerprint, Product, ScanKind, ScanState};
use picket_db::queue::{self, FailOutcome};
use picket_db::worker::{self, Recorded, ResultsSummary, WORKER_ACTOR};
use picket_db::DbError;
use picket_db::{attempts, pr_checks};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

/// Largest results upload accepted, in bytes: 64 MiB, room for about 200,000 findings. Every
/// other route keeps the server's general limit.
pub const RESULTS_BODY_LIMIT_BYTES: usize = 64 * 1024 * 1024;
/// How long a failed full scan waits before its retry may be claimed.
const RETRY_BACKOFF: Duration = Duration::from_secs(30);
/// Longest failure message kept, in characters; longer ones are cut.
const MAX_FAILURE_MESSAGE: usize = 4_000;
/// Longest finding message accepted, in characters.
const MAX_FINDING_MESSAGE: usize = 20_000;
/// Longest path accepted, in characters.
const MAX_PATH: usize = 4_096;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(scan_spec))
        .routes(routes!(scan_credential))
        .routes(routes!(report_progress))
        .routes(routes!(upload_results).layer(DefaultBodyLimit::max(RESULTS_BODY_LIMIT_BYTES)))
        .routes(routes!(report_failure))
        .routes(routes!(append_logs))
        .routes(routes!(begin_feedback))
        .routes(routes!(feedback_done))
        .routes(routes!(query_advisories).layer(DefaultBodyLimit::max(ADVISORY_QUERY_LIMIT_BYTES)))
}

/// Largest advisory query accepted, in bytes: 16 MiB, room for the 100,000 names a query may
/// hold at their usual lengths.
pub const ADVISORY_QUERY_LIMIT_BYTES: usize = 16 * 1024 * 1024;

/// The advisories, not withdrawn, that name any of the scan's packages: Supply Chain's
/// candidates, which the worker checks the installed versions against. Names are normalised as
/// their ecosystem does (PEP 503 for PyPI, ...) before the lookup; 1-500 characters each, at
/// most 100,000 in all, each ecosystem listed once. The answer's `records` are OSV records as
/// imported (<https://ossf.github.io/osv-schema/>), sorted by id, each once; its
/// `empty_ecosystems` are the ecosystems asked about of which the store holds no advisory at
/// all (nothing imported yet), so the scan can say its packages were checked against nothing.
#[utoipa::path(post, path = "/api/v1/worker/scan/advisories", tag = "worker",
    security(("scan_token" = [])),
    request_body = doc::AdvisoryQuery,
    responses(
        (status = 200, body = doc::AdvisoryRecords),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn query_advisories(
    worker: Worker,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<picket_core::protocol::AdvisoryQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    use picket_core::protocol::MAX_ADVISORY_QUERY_NAMES;
    worker.check_attempt(body.attempt)?;
    let total: usize = body.packages.iter().map(|p| p.names.len()).sum();
    if total > MAX_ADVISORY_QUERY_NAMES {
        return Err(ApiError::invalid_body(
            "packages",
            format!("must name at most {MAX_ADVISORY_QUERY_NAMES} packages in all"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, p) in body.packages.iter().enumerate() {
        if !seen.insert(p.ecosystem) {
            return Err(ApiError::invalid_body(
                format!("packages[{i}].ecosystem"),
                "each ecosystem may be listed once",
            ));
        }
        for (j, name) in p.names.iter().enumerate() {
            crate::routes::check_len(
                &format!("packages[{i}].names[{j}]"),
                name,
                1,
                MAX_PACKAGE_NAME_CHARS,
            )?;
        }
    }
    let mut conn = state.db().pool().acquire().await?;
    let asked: Vec<picket_core::Ecosystem> = body.packages.iter().map(|p| p.ecosystem).collect();
    let empty = picket_db::advisories::ecosystems_without_records(&mut *conn, &asked).await?;
    let mut records: BTreeMap<String, String> = BTreeMap::new();
    for p in &body.packages {
        let names: Vec<String> = p.names.iter().map(|n| p.ecosystem.normalize(n)).collect();
        for r in picket_db::advisories::records_for(&mut *conn, p.ecosystem, &names).await? {
            records.entry(r.id).or_insert(r.record);
        }
    }
    drop(conn);
    // Each record is PostgreSQL's own jsonb text, so the list is written as is.
    let mut out = String::with_capacity(records.values().map(|r| r.len() + 1).sum::<usize>() + 16);
    out.push_str("{\"records\":[");
    for (i, r) in records.values().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r);
    }
    out.push_str("],\"empty_ecosystems\":");
    out.push_str(
        &serde_json::to_string(&empty)
            .map_err(|e| DbError::Corrupt(format!("ecosystems do not serialize: {e}")))?,
    );
    out.push('}');
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response())
}

/// What [`append_logs`] kept.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogsAppended {
    pub stored: i64,
    /// Lines past the scan's cap (10,000 lines), counted and not kept.
    pub dropped: i64,
}

/// Append lines to the scan's log (its Logs tab): 1-500 lines, each 1-2,000 characters, of the
/// current attempt. Past 10,000 lines a scan keeps counting but stores no more.
#[utoipa::path(post, path = "/api/v1/worker/scan/logs", tag = "worker",
    security(("scan_token" = [])),
    request_body = doc::LogBatch,
    responses(
        (status = 200, body = LogsAppended),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn append_logs(
    worker: Worker,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<picket_core::protocol::LogBatch>,
) -> Result<Json<LogsAppended>, ApiError> {
    use picket_core::protocol::{MAX_LOG_BATCH, MAX_LOG_LINE_CHARS};
    worker.check_attempt(body.attempt)?;
    if body.lines.is_empty() || body.lines.len() > MAX_LOG_BATCH {
        return Err(ApiError::invalid_body(
            "lines",
            format!("must hold 1-{MAX_LOG_BATCH} lines"),
        ));
    }
    for (i, line) in body.lines.iter().enumerate() {
        let n = line.message.chars().count();
        if n == 0 || n > MAX_LOG_LINE_CHARS || line.message.contains('\0') {
            return Err(ApiError::invalid_body(
                format!("lines[{i}].message"),
                format!("must be 1-{MAX_LOG_LINE_CHARS} characters without NUL"),
            ));
        }
    }
    let done = picket_db::scan_logs::append(
        state.db().pool(),
        worker.scan.org_id,
        worker.scan.scan_id,
        body.attempt,
        &body.lines,
    )
    .await?;
    Ok(Json(LogsAppended {
        stored: done.stored,
        dropped: done.dropped,
    }))
}

/// A lost lease is 409 `lease_lost`: the worker must stop without further effects.
fn db_error(e: DbError) -> ApiError {
    match e {
        DbError::LeaseLost => ApiError::conflict(
            "lease_lost",
            "this attempt no longer holds the scan; stop without further effects",
        ),
        other => other.into(),
    }
}

/// The scan to run: refs, products, effective policy and the branch's open finding paths. For
/// a diff scan of a GitHub repository, `merge_base_sha` is the merge base of the head and the
/// target branch as it is now, asked of GitHub's compare API when the spec is served (the scan's
/// start, never when it was queued); when GitHub cannot tell within 10 s it is left out and the
/// worker computes it from its clone.
#[utoipa::path(get, path = "/api/v1/worker/scan", tag = "worker",
    security(("scan_token" = [])),
    responses(
        (status = 200, body = doc::ScanSpec),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
async fn scan_spec(
    worker: Worker,
    State(state): State<AppState>,
) -> Result<Json<ScanSpec>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    let mut spec = worker::scan_spec(&mut conn, worker.scan.org_id, worker.scan.scan_id).await?;
    drop(conn);
    if spec.kind == ScanKind::Diff && spec.merge_base_sha.is_none() {
        spec.merge_base_sha = provider_merge_base(&state, &worker, &spec).await;
    }
    Ok(Json(spec))
}

/// Longest the spec waits for the provider's merge base before it is served without one.
const MERGE_BASE_WAIT: Duration = Duration::from_secs(10);

/// The merge base of a GitHub diff scan's head and the tip of its target branch now, from
/// GitHub's compare API (`merge_base_commit.sha`). `None` for other scans, and when GitHub does
/// not answer with one (logged with the error's stable code): the worker then computes it from
/// its clone, which is just as correct, only slower.
async fn provider_merge_base(state: &AppState, worker: &Worker, spec: &ScanSpec) -> Option<String> {
    let (Some(head), Some(base_ref)) = (spec.commit_sha.as_deref(), spec.base_ref.as_deref())
    else {
        return None;
    };
    let providers = state.providers()?;
    let repo = match worker::repository_of(
        state.db().pool(),
        worker.scan.org_id,
        worker.scan.scan_id,
    )
    .await
    {
        Ok(repo) => repo,
        Err(e) => {
            tracing::warn!(error = %e, "merge base not asked: the scan's repository could not be read");
            return None;
        }
    };
    // GitHub answers through the installation the repository is reached by; GitLab, Bitbucket
    // and Azure DevOps through the connection's token.
    let askable = match repo.provider {
        picket_core::Provider::Github => repo.installation_id.is_some(),
        picket_core::Provider::Gitlab
        | picket_core::Provider::Bitbucket
        | picket_core::Provider::AzureDevops => true,
        picket_core::Provider::Git => false,
    };
    if !repo.has_credentials || !askable {
        return None;
    }
    let locator = picket_vcs::provider::RepoLocator {
        id: repo.provider_repo_id,
        full_name: repo.full_name,
        installation_id: repo.installation_id,
    };
    let base_ref = base_ref.strip_prefix("refs/heads/").unwrap_or(base_ref);
    let asked = async {
        providers
            .source(repo.connection_id)
            .await?
            .merge_base(&locator, base_ref, head)
            .await
    };
    let fallback =
        "merge base not available from the provider; the worker computes it from its clone";
    match tokio::time::timeout(MERGE_BASE_WAIT, asked).await {
        Ok(Ok(sha)) if is_commit_sha(&sha) => {
            tracing::debug!(merge_base = %sha, base_ref, head, "merge base from the provider's compare API");
            Some(sha)
        }
        Ok(Ok(_)) => {
            let code = picket_vcs::ErrorCode::BadResponse.as_str();
            tracing::warn!(
                code,
                base_ref,
                head,
                "{fallback}: the answer is not a commit sha"
            );
            None
        }
        // A GitHub connection lending a plain token has no App to ask.
        Ok(Err(e)) if e.code == picket_vcs::ErrorCode::BadConfig => None,
        Ok(Err(e)) => {
            tracing::warn!(code = e.code.as_str(), error = %e, base_ref, head, "{fallback}");
            None
        }
        Err(_) => {
            let code = picket_vcs::ErrorCode::Unavailable.as_str();
            tracing::warn!(code, wait = ?MERGE_BASE_WAIT, base_ref, head, "{fallback}: no answer in time");
            None
        }
    }
}

/// Whether a provider's connections are reached through a client (picket-vcs's registry): a
/// credential minted per scan (GitHub's installation token; the others lend the connection's
/// token or PAT through their client, which knows its field), and pull request feedback.
fn takes_pr_feedback(provider: picket_core::Provider) -> bool {
    matches!(
        provider,
        picket_core::Provider::Github
            | picket_core::Provider::Gitlab
            | picket_core::Provider::Bitbucket
            | picket_core::Provider::AzureDevops
    )
}

/// The clone credential of the scan's repository. Never log it.
#[utoipa::path(get, path = "/api/v1/worker/scan/credential", tag = "worker",
    security(("scan_token" = [])),
    responses(
        (status = 200, body = doc::CloneCredential),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`no_credential`: the project's connection holds no clone credential (clone anonymously)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "the provider refused to mint the scan's token (`provider_*` codes)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "the provider is unavailable or rate limited, or this API cannot reach providers", body = Problem, content_type = "application/problem+json"),
    ))]
async fn scan_credential(
    worker: Worker,
    State(state): State<AppState>,
) -> Result<Json<CloneCredential>, ApiError> {
    let repo =
        worker::repository_of(state.db().pool(), worker.scan.org_id, worker.scan.scan_id).await?;
    if takes_pr_feedback(repo.provider) && repo.has_credentials {
        // A token for this one repository, minted for this scan: clone, and for a PR scan its
        // comments (pull requests write), for one hour. The App's key stays here.
        // A GitHub connection holding a plain token instead of an App's credentials lends that
        // token, as other providers' connections do.
        let providers = state.require_providers()?;
        let scope = match repo.pr_number {
            Some(_) => picket_vcs::provider::CredentialScope::PullRequestScan,
            None => picket_vcs::provider::CredentialScope::Clone,
        };
        let locator = picket_vcs::provider::RepoLocator {
            id: repo.provider_repo_id,
            full_name: repo.full_name,
            installation_id: repo.installation_id,
        };
        match providers.source(repo.connection_id).await {
            Ok(source) => {
                let minted = source.mint_credential(&locator, scope).await?;
                return Ok(Json(CloneCredential {
                    username: minted.username,
                    token: secrecy::ExposeSecret::expose_secret(&minted.secret).to_owned(),
                }));
            }
            // Not an App's credentials (a plain token; the API refuses a bad key when it is
            // stored): lend the stored token below.
            Err(e) if e.code == picket_vcs::ErrorCode::BadConfig => {}
            Err(e) => return Err(e.into()),
        }
    }
    worker::clone_credential(
        state.db().pool(),
        state.cipher(),
        worker.scan.org_id,
        repo.connection_id,
    )
    .await?
    .map(Json)
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_credential",
            "the project's connection holds no clone credential",
        )
    })
}

/// Begin a pull request scan's feedback. The worker, `reporting`, hands over what it plans its
/// feedback from (`picket_core::feedback::FeedbackInput`: its new findings with their modes and
/// the diff's commentable lines), so that the control plane can finish the feedback should the
/// worker not; it learns where to post (the provider, its API root, the repository, the login
/// Picket's comments carry) and whether its result is late (after the org's fail-open deadline:
/// comments may be added, the check stays as it is). Fenced: the scan is held under this
/// attempt's lease for the call, so a scan cancelled or superseded first answers 409
/// `lease_lost` and its worker posts nothing.
#[utoipa::path(post, path = "/api/v1/worker/scan/feedback/begin", tag = "worker",
    security(("scan_token" = [])),
    request_body = doc::FeedbackBegin,
    responses(
        (status = 200, body = doc::FeedbackStart),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`no_pr_check`: the scan takes no PR feedback (not a PR scan, its provider has none, or its connection holds no App credentials)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`lease_lost`: the scan is not this attempt's `reporting` scan any more", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "the provider refused (`provider_*` codes)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "the provider is unavailable or rate limited, or this API cannot reach providers", body = Problem, content_type = "application/problem+json"),
    ))]
async fn begin_feedback(
    worker: Worker,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<FeedbackBegin>,
) -> Result<Json<FeedbackStart>, ApiError> {
    worker.check_attempt(body.attempt)?;
    let no_pr_check = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_pr_check",
            "this scan takes no pull request feedback",
        )
    };
    let pool = state.db().pool();
    let repo = worker::repository_of(pool, worker.scan.org_id, worker.scan.scan_id).await?;
    if repo.pr_number.is_none() || !takes_pr_feedback(repo.provider) {
        return Err(no_pr_check());
    }
    let providers = state.require_providers()?;
    if pr_checks::get(pool, worker.scan.org_id, worker.scan.scan_id)
        .await?
        .is_none()
    {
        return Err(no_pr_check());
    }
    // Asked before the transaction: no provider call while the scan is held. A connection
    // without an App's credentials (a plain token) cannot post feedback: none is taken.
    let source = match providers.source(repo.connection_id).await {
        Err(e) if e.code == picket_vcs::ErrorCode::BadConfig => return Err(no_pr_check()),
        other => other?,
    };
    let bot_login = source.bot_login().await?;
    let mut tx = pool.begin().await?;
    queue::hold_reporting(&mut tx, &worker.lease)
        .await
        .map_err(db_error)?;
    let context = match pr_checks::begin_feedback(&mut tx, worker.scan.scan_id, &body.input).await {
        Err(DbError::NotFound) => return Err(no_pr_check()),
        other => other?,
    };
    tx.commit().await?;
    let previous_commented = context.previous.map(|p| {
        p.findings
            .iter()
            .filter(|f| f.mode.comments())
            .map(|f| f.fingerprint.clone())
            .collect()
    });
    tracing::debug!(late = context.late, "PR feedback begun");
    Ok(Json(FeedbackStart {
        provider: repo.provider,
        api_url: picket_vcs::registry::api_url(repo.provider, &repo.base_url),
        repo_id: repo.provider_repo_id,
        full_name: repo.full_name,
        installation_id: repo.installation_id,
        bot_login,
        late: context.late,
        previous_commented,
        pr_is_draft: context.pr_is_draft,
        draft_feedback: context.draft_feedback,
    }))
}

/// The PR feedback's comments are posted: the control plane completes the check from the input
/// given at `feedback/begin` and posts nothing more. Fenced like `feedback/begin`; repeating it
/// changes nothing.
#[utoipa::path(post, path = "/api/v1/worker/scan/feedback/done", tag = "worker",
    security(("scan_token" = [])),
    request_body = doc::FeedbackDone,
    responses(
        (status = 204, description = "recorded"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`lease_lost`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn feedback_done(
    worker: Worker,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<FeedbackDone>,
) -> Result<StatusCode, ApiError> {
    worker.check_attempt(body.attempt)?;
    let outcome = serde_json::json!({
        "comments_posted": body.comments_posted,
        "threads_resolved": body.threads_resolved,
        "summary": body.summary,
        "api_calls": body.api_calls,
        "posted_by": "worker",
        "quiet_draft": body.quiet_draft,
    });
    let mut tx = state.db().pool().begin().await?;
    queue::hold_reporting(&mut tx, &worker.lease)
        .await
        .map_err(db_error)?;
    pr_checks::comments_done(&mut *tx, worker.scan.scan_id, &outcome, body.quiet_draft).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgressReport {
    #[schema(schema_with = progress_schema)]
    pub state: WorkerProgress,
}

fn progress_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["running", "reporting"]))
        .description(Some(
            "`running`: the worker started; `reporting`: it is uploading results",
        ))
        .build()
}

/// Where the scan stands after a worker's report.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerScanState {
    pub scan_id: Uuid,
    pub attempt: i32,
    #[schema(schema_with = crate::schema::scan_state)]
    pub state: ScanState,
}

/// Report progress: `running` (from claimed), then `reporting`. Repeating a report, or reporting
/// `running` once `reporting`, changes nothing.
#[utoipa::path(post, path = "/api/v1/worker/scan/progress", tag = "worker",
    security(("scan_token" = [])),
    request_body = ProgressReport,
    responses(
        (status = 200, body = WorkerScanState),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_transition` (e.g. `reporting` before `running`) or `lease_lost`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn report_progress(
    worker: Worker,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ProgressReport>,
) -> Result<Json<WorkerScanState>, ApiError> {
    let to = match body.state {
        WorkerProgress::Running => ScanState::Running,
        WorkerProgress::Reporting => ScanState::Reporting,
    };
    let current = worker.scan.state;
    let answer = |state| WorkerScanState {
        scan_id: worker.scan.scan_id.0,
        attempt: worker.scan.attempt,
        state,
    };
    // A repeated report (its first answer was lost) or a late `running` is already satisfied.
    if current == to || (current == ScanState::Reporting && to == ScanState::Running) {
        return Ok(Json(answer(current)));
    }
    if !current.can_move_to(to) {
        return Err(ApiError::conflict(
            "invalid_transition",
            format!("a scan cannot move from {current} to {to}"),
        ));
    }
    queue::advance_as(state.db().pool(), &worker.lease, to, None, WORKER_ACTOR)
        .await
        .map_err(db_error)?;
    tracing::debug!(%to, "worker progress");
    Ok(Json(answer(to)))
}

/// What an upload did; a repeat of the same upload answers the same.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultsAnswer {
    pub scan_id: Uuid,
    pub attempt: i32,
    /// Always `succeeded`: recording results ends the scan.
    #[schema(schema_with = crate::schema::scan_state)]
    pub state: ScanState,
    /// Findings in the upload.
    pub findings_reported: i64,
    /// Findings written: all for a full scan, those new in the PR for a diff scan.
    pub findings_stored: i64,
    /// Stored findings the branch had not seen before.
    pub findings_new: i64,
    /// Open findings of the branch no longer reported (full scans).
    pub findings_fixed: i64,
    /// Open findings whose rule did not run or whose file was deleted (full scans).
    pub findings_removed: i64,
}

impl From<ResultsSummary> for ResultsAnswer {
    fn from(s: ResultsSummary) -> Self {
        ResultsAnswer {
            scan_id: s.scan_id.0,
            attempt: s.attempt,
            state: ScanState::Succeeded,
            findings_reported: s.findings.reported,
            findings_stored: s.findings.stored,
            findings_new: s.findings.new,
            findings_fixed: s.findings.fixed,
            findings_removed: s.findings.removed,
        }
    }
}

/// Upload the attempt's results. In one transaction: the findings are stored (diff scans: only
/// those new in the PR, under the PR's head ref), the branch's lifecycle applied (full scans:
/// open findings not reported become `fixed`, or `removed` when their rule did not run or their
/// file was deleted; triage sticks to the fingerprint), the attempt's results recorded, and the
/// scan moved to `succeeded` (through `reporting` if need be). The same upload repeated answers
/// the same summary and changes nothing, even after the scan ended. Secrets findings carry only
/// `secret.redacted` and `secret.sha256`, never the value. Body limit: 64 MiB.
#[utoipa::path(post, path = "/api/v1/worker/scan/results", tag = "worker",
    security(("scan_token" = [])),
    request_body = doc::ScanResults,
    responses(
        (status = 200, body = ResultsAnswer),
        (status = 401, description = "Unknown token, or another attempt's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_transition` (the scan is not running yet) or `lease_lost`", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn upload_results(
    ScanToken(scan): ScanToken,
    State(state): State<AppState>,
    ApiJson(mut results): ApiJson<ScanResults>,
) -> Result<Json<ResultsAnswer>, ApiError> {
    let received_at = time::OffsetDateTime::now_utc();
    let received = std::time::Instant::now();
    validate_results(&results)?;
    // The digest is the worker's upload as sent; the `upload` step is the control plane's.
    let digest = worker::results_digest(&results)?;
    results.trail.steps.push(Step {
        step: "upload".to_owned(),
        started_at: received_at,
        millis: 0,
        figures: BTreeMap::from([
            ("findings".to_owned(), results.findings.len() as u64),
            ("fixed_in_pr".to_owned(), results.fixed_in_pr.len() as u64),
        ]),
    });
    let pool = state.db().pool();
    let Some(lease) = scan.lease.filter(|_| results.attempt == scan.attempt) else {
        // A token that is no longer live may only repeat the upload it already made.
        return match worker::recorded_results(pool, scan.scan_id, results.attempt, &digest).await? {
            Some(summary) => Ok(Json(summary.into())),
            None => Err(scan_token_refused()),
        };
    };
    let mut tx = pool.begin().await?;
    if let Some(upload) = results.trail.steps.last_mut() {
        // Validation and parsing so far; the ingest's own time is in the scan's events.
        upload.millis = u64::try_from(received.elapsed().as_millis()).unwrap_or(u64::MAX);
    }
    match worker::record_results(&mut tx, &lease, &results, &digest)
        .await
        .map_err(db_error)?
    {
        Recorded::Stored(summary) => {
            tx.commit().await?;
            tracing::debug!(
                attempt = summary.attempt,
                reported = summary.findings.reported,
                stored = summary.findings.stored,
                new = summary.findings.new,
                fixed = summary.findings.fixed,
                removed = summary.findings.removed,
                "scan results recorded"
            );
            Ok(Json(summary.into()))
        }
        // Rolled back on drop: nothing was written.
        Recorded::Repeated(summary) => Ok(Json(summary.into())),
        Recorded::NotStarted => Err(ApiError::conflict(
            "invalid_transition",
            "the scan is not running: report `running` before uploading results",
        )),
    }
}

/// Whether a string is a full git object id (SHA-1 or SHA-256, lowercase hex).
fn is_commit_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Refuses a path that is empty, too long or holds control characters.
fn check_path(field: &str, path: &str) -> Result<(), ApiError> {
    let n = path.chars().count();
    if n == 0 || n > MAX_PATH || path.chars().any(char::is_control) {
        return Err(ApiError::invalid_body(
            field,
            format!("must be 1-{MAX_PATH} characters without control characters"),
        ));
    }
    Ok(())
}

/// Checks what serde could not: shapes of shas and fingerprints, line ranges, lengths, and that
/// secrets findings (and only they) carry a redacted secret. The first refused field is named.
fn validate_results(r: &ScanResults) -> Result<(), ApiError> {
    if !is_commit_sha(&r.commit_sha) {
        return Err(ApiError::invalid_body(
            "commit_sha",
            "must be a full commit sha (40 or 64 lowercase hex characters)",
        ));
    }
    if r.merge_base_sha
        .as_deref()
        .is_some_and(|s| !is_commit_sha(s))
    {
        return Err(ApiError::invalid_body(
            "merge_base_sha",
            "must be a full commit sha (40 or 64 lowercase hex characters)",
        ));
    }
    for (i, p) in r.deleted_paths.iter().enumerate() {
        check_path(&format!("deleted_paths[{i}]"), p)?;
    }
    for (i, p) in r.unread_paths.iter().enumerate() {
        check_path(&format!("unread_paths[{i}]"), p)?;
    }
    validate_trail("trail", &r.trail)?;
    for (i, f) in r.findings.iter().enumerate() {
        validate_finding("findings", i, f)?;
    }
    for (i, f) in r.fixed_in_pr.iter().enumerate() {
        validate_finding("fixed_in_pr", i, f)?;
    }
    Ok(())
}

/// Most steps, skipped files and ignore rules one trail may hold.
const MAX_TRAIL_STEPS: usize = 100;
const MAX_TRAIL_SKIPPED: usize = 10_000;
const MAX_TRAIL_IGNORES: usize = 1_000;
const MAX_TRAIL_PACKS: usize = 200;

/// Checks a worker's trail: bounded lists, names and reasons of sane length.
fn validate_trail(at: &str, t: &ScanTrail) -> Result<(), ApiError> {
    let too_many = |field: &str, max: usize| {
        ApiError::invalid_body(
            format!("{at}.{field}"),
            format!("must hold at most {max} entries"),
        )
    };
    if t.steps.len() > MAX_TRAIL_STEPS {
        return Err(too_many("steps", MAX_TRAIL_STEPS));
    }
    if t.skipped_files.len() > MAX_TRAIL_SKIPPED {
        return Err(too_many("skipped_files", MAX_TRAIL_SKIPPED));
    }
    if t.ignores.len() > MAX_TRAIL_IGNORES {
        return Err(too_many("ignores", MAX_TRAIL_IGNORES));
    }
    if t.rule_packs.len() > MAX_TRAIL_PACKS {
        return Err(too_many("rule_packs", MAX_TRAIL_PACKS));
    }
    for (i, s) in t.steps.iter().enumerate() {
        crate::routes::check_len(&format!("{at}.steps[{i}].step"), &s.step, 1, 100)?;
        if s.figures.len() > 50 {
            return Err(too_many(&format!("steps[{i}].figures"), 50));
        }
        for k in s.figures.keys() {
            crate::routes::check_len(&format!("{at}.steps[{i}].figures"), k, 1, 100)?;
        }
    }
    if let Some(e) = &t.engine {
        crate::routes::check_len(&format!("{at}.engine"), e, 1, 200)?;
    }
    for (i, p) in t.rule_packs.iter().enumerate() {
        crate::routes::check_len(&format!("{at}.rule_packs[{i}].name"), &p.name, 1, 200)?;
        crate::routes::check_len(&format!("{at}.rule_packs[{i}].sha256"), &p.sha256, 1, 128)?;
    }
    for (i, f) in t.skipped_files.iter().enumerate() {
        check_path(&format!("{at}.skipped_files[{i}].path"), &f.path)?;
        crate::routes::check_len(
            &format!("{at}.skipped_files[{i}].reason"),
            &f.reason,
            1,
            1_000,
        )?;
    }
    for (i, g) in t.ignores.iter().enumerate() {
        crate::routes::check_len(&format!("{at}.ignores[{i}].pattern"), &g.pattern, 1, 1_000)?;
        check_path(&format!("{at}.ignores[{i}].source"), &g.source)?;
    }
    if let Some(sc) = &t.supply_chain {
        validate_supply_chain(&format!("{at}.supply_chain"), sc)?;
    }
    Ok(())
}

fn validate_supply_chain(
    at: &str,
    sc: &picket_core::protocol::SupplyChainTrail,
) -> Result<(), ApiError> {
    use crate::routes::check_len;
    use picket_core::protocol::MAX_TRAIL_ENTRIES;
    if sc.lockfiles.len() > MAX_TRAIL_LOCKFILES {
        return Err(ApiError::invalid_body(
            format!("{at}.lockfiles"),
            format!("must hold at most {MAX_TRAIL_LOCKFILES} entries"),
        ));
    }
    for (i, l) in sc.lockfiles.iter().enumerate() {
        let at = format!("{at}.lockfiles[{i}]");
        check_path(&format!("{at}.path"), &l.path)?;
        check_len(&format!("{at}.format"), &l.format, 1, 100)?;
        if let Some(e) = &l.error {
            check_len(&format!("{at}.error"), e, 1, 4_000)?;
        }
        for (name, list) in [("unresolved", &l.unresolved), ("unchecked", &l.unchecked)] {
            if list.len() > MAX_TRAIL_ENTRIES {
                return Err(ApiError::invalid_body(
                    format!("{at}.{name}"),
                    format!("must hold at most {MAX_TRAIL_ENTRIES} entries"),
                ));
            }
            for (j, e) in list.iter().enumerate() {
                check_len(&format!("{at}.{name}[{j}].text"), &e.text, 1, 1_000)?;
                check_len(&format!("{at}.{name}[{j}].reason"), &e.reason, 1, 1_000)?;
            }
        }
    }
    Ok(())
}

fn validate_finding(list: &str, i: usize, f: &ReportedFinding) -> Result<(), ApiError> {
    let field = |name: &str| format!("{list}[{i}].{name}");
    if f.fingerprint.as_str().parse::<Fingerprint>().is_err() {
        return Err(ApiError::invalid_body(
            field("fingerprint"),
            "must be 64 lowercase hex characters",
        ));
    }
    check_path(&field("path"), &f.path)?;
    if f.start_line < 1 || f.start_line > i32::MAX as u32 {
        return Err(ApiError::invalid_body(
            field("start_line"),
            "must be 1 or more",
        ));
    }
    if f.end_line < f.start_line || f.end_line > i32::MAX as u32 {
        return Err(ApiError::invalid_body(
            field("end_line"),
            "must be start_line or more",
        ));
    }
    // PostgreSQL text cannot hold NUL; other control characters (newlines) are fine here.
    if f.message.chars().count() > MAX_FINDING_MESSAGE || f.message.contains('\0') {
        return Err(ApiError::invalid_body(
            field("message"),
            format!("must be at most {MAX_FINDING_MESSAGE} characters without NUL"),
        ));
    }
    match (&f.secret, f.product) {
        (Some(s), Product::Secrets) => {
            crate::routes::check_len(&field("secret.redacted"), &s.redacted, 1, 200)?;
            if s.sha256.parse::<Fingerprint>().is_err() {
                return Err(ApiError::invalid_body(
                    field("secret.sha256"),
                    "must be 64 lowercase hex characters",
                ));
            }
        }
        (None, Product::Secrets) => {
            return Err(ApiError::invalid_body(
                field("secret"),
                "a secrets finding must carry its redacted form and hash",
            ))
        }
        (Some(_), _) => {
            return Err(ApiError::invalid_body(
                field("secret"),
                "only secrets findings carry a secret",
            ))
        }
        (None, _) => {}
    }
    if let Some(sup) = &f.suppressed {
        if sup.line < 1 || sup.line > f.start_line || sup.rules.len() > 100 {
            return Err(ApiError::invalid_body(
                field("suppressed"),
                "must name the finding's line or the one above it, and at most 100 rules",
            ));
        }
        for (j, r) in sup.rules.iter().enumerate() {
            crate::routes::check_len(&field(&format!("suppressed.rules[{j}]")), r, 1, 200)?;
        }
    }
    check_dependency(&field("dependency"), f)?;
    check_matched_lines(&field("matched_lines"), f)
}

/// A Supply Chain finding carries its dependency, and only it does; its lists are bounded and
/// its strings of sane length.
fn check_dependency(field: &str, f: &ReportedFinding) -> Result<(), ApiError> {
    use crate::routes::check_len;
    let d = match (&f.dependency, f.product) {
        (Some(d), Product::SupplyChain) => d,
        (None, Product::SupplyChain) => {
            return Err(ApiError::invalid_body(
                field,
                "a supply-chain finding must carry its dependency",
            ))
        }
        (Some(_), _) => {
            return Err(ApiError::invalid_body(
                field,
                "only supply-chain findings carry a dependency",
            ))
        }
        (None, _) => return Ok(()),
    };
    check_len(
        &format!("{field}.package"),
        &d.package,
        1,
        MAX_PACKAGE_NAME_CHARS,
    )?;
    let lists = [
        ("versions", &d.versions, 1, MAX_DEPENDENCY_VERSIONS),
        ("advisories", &d.advisories, 1, MAX_DEPENDENCY_LIST),
        ("aliases", &d.aliases, 0, MAX_DEPENDENCY_LIST),
        ("fixed", &d.fixed, 0, MAX_DEPENDENCY_LIST),
    ];
    for (name, list, min, max) in lists {
        if list.len() < min || list.len() > max {
            return Err(ApiError::invalid_body(
                format!("{field}.{name}"),
                format!("must hold {min}-{max} entries"),
            ));
        }
        for (j, v) in list.iter().enumerate() {
            check_len(
                &format!("{field}.{name}[{j}]"),
                v,
                1,
                MAX_DEPENDENCY_ENTRY_CHARS,
            )?;
        }
    }
    if let Some(src) = &d.severity_source {
        if !["cvss_v4", "cvss_v3", "cvss_v2", "database"].contains(&src.as_str()) {
            return Err(ApiError::invalid_body(
                format!("{field}.severity_source"),
                "must be cvss_v4, cvss_v3, cvss_v2 or database",
            ));
        }
    }
    if let Some(summary) = &d.summary {
        check_len(&format!("{field}.summary"), summary, 1, 500)?;
    }
    Ok(())
}

/// Matched lines: Code findings only, at most [`MAX_MATCHED_LINES`] of them, each at most
/// [`MAX_MATCHED_LINE_CHARS`] characters without line breaks or NUL.
fn check_matched_lines(field: &str, f: &ReportedFinding) -> Result<(), ApiError> {
    use picket_core::protocol::{MAX_MATCHED_LINES, MAX_MATCHED_LINE_CHARS};
    if f.matched_lines.is_empty() {
        return Ok(());
    }
    if f.product != Product::Code {
        return Err(ApiError::invalid_body(
            field,
            "only Code findings carry matched lines",
        ));
    }
    if f.matched_lines.len() > MAX_MATCHED_LINES {
        return Err(ApiError::invalid_body(
            field,
            format!("must hold at most {MAX_MATCHED_LINES} lines"),
        ));
    }
    for (j, line) in f.matched_lines.iter().enumerate() {
        if line.chars().count() > MAX_MATCHED_LINE_CHARS || line.contains(['\n', '\r', '\0']) {
            return Err(ApiError::invalid_body(
                format!("{field}[{j}]"),
                format!(
                    "must be at most {MAX_MATCHED_LINE_CHARS} characters without line breaks or NUL"
                ),
            ));
        }
    }
    Ok(())
}

/// What became of the failed attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailureAnswer {
    pub scan_id: Uuid,
    /// The attempt that failed.
    pub attempt: i32,
    /// `queued` (retried as `next_attempt`) or `failed`.
    #[schema(schema_with = crate::schema::scan_state)]
    pub state: ScanState,
    pub next_attempt: Option<i32>,
}

/// Report that the attempt failed, with a stable `code` (`^[a-z][a-z0-9_]{0,63}$`). A full scan
/// with an attempt left is queued again (after a 30 s backoff); otherwise the scan ends
/// `failed`. Messages longer than 4,000 characters are cut.
#[utoipa::path(post, path = "/api/v1/worker/scan/failure", tag = "worker",
    security(("scan_token" = [])),
    request_body = doc::ScanFailure,
    responses(
        (status = 200, body = FailureAnswer),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`lease_lost`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn report_failure(
    worker: Worker,
    State(state): State<AppState>,
    ApiJson(failure): ApiJson<ScanFailure>,
) -> Result<Json<FailureAnswer>, ApiError> {
    worker.check_attempt(failure.attempt)?;
    let code_ok = failure.code.len() <= 64
        && failure.code.starts_with(|c: char| c.is_ascii_lowercase())
        && failure
            .code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !code_ok {
        return Err(ApiError::invalid_body(
            "code",
            "must match ^[a-z][a-z0-9_]{0,63}$",
        ));
    }
    if let Some(step) = &failure.step {
        crate::routes::check_len("step", step, 1, 100)?;
    }
    validate_trail("trail", &failure.trail)?;
    let message = clean_message(&failure.message);
    let mut tx = state.db().pool().begin().await?;
    attempts::record_trail(
        &mut *tx,
        worker.scan.scan_id,
        failure.attempt,
        worker.scan.org_id,
        &failure.trail,
        failure.step.as_deref(),
    )
    .await?;
    let outcome = queue::fail_as(
        &mut *tx,
        &worker.lease,
        &failure.code,
        &message,
        RETRY_BACKOFF,
        WORKER_ACTOR,
    )
    .await
    .map_err(db_error)?;
    tx.commit().await?;
    tracing::debug!(code = %failure.code, step = failure.step.as_deref().unwrap_or(""), ?outcome, "worker reported a failure");
    let (state, next_attempt) = match outcome {
        FailOutcome::Retrying { next_attempt } => (ScanState::Queued, Some(next_attempt)),
        FailOutcome::Failed => (ScanState::Failed, None),
    };
    Ok(Json(FailureAnswer {
        scan_id: worker.scan.scan_id.0,
        attempt: failure.attempt,
        state,
        next_attempt,
    }))
}

/// At most [`MAX_FAILURE_MESSAGE`] characters, control characters other than newline and tab
/// replaced (PostgreSQL text cannot hold NUL).
fn clean_message(message: &str) -> String {
    message
        .chars()
        .take(MAX_FAILURE_MESSAGE)
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

/// OpenAPI schemas of the protocol types. The types themselves live in picket-core, which has
/// no utoipa; these mirrors exist only to describe them, and a test checks every mirror against
/// the serialized form of the real type, so the two cannot drift.
pub(crate) mod doc {
    use serde::Serialize;
    use std::collections::BTreeMap;
    use utoipa::openapi::schema::ArrayBuilder;
    use utoipa::ToSchema;
    use uuid::Uuid;

    fn products() -> utoipa::openapi::schema::Array {
        ArrayBuilder::new().items(crate::schema::product()).build()
    }

    /// Everything a worker needs to run one scan attempt. Safe to log.
    #[derive(Serialize, ToSchema)]
    #[schema(as = ScanSpec)]
    pub struct ScanSpec {
        pub scan_id: Uuid,
        pub attempt: i32,
        pub project_id: Uuid,
        #[schema(schema_with = crate::schema::scan_kind)]
        pub kind: String,
        /// The repository's full name, for logs and feedback.
        pub full_name: String,
        /// From the stored project, never from a webhook.
        pub clone_url: String,
        /// Branch of a full scan, or the PR head ref of a diff scan.
        pub git_ref: String,
        /// Exact commit to scan, when known.
        pub commit_sha: Option<String>,
        /// Target branch of a diff scan.
        pub base_ref: Option<String>,
        /// Target tip of a diff scan, when known.
        pub base_sha: Option<String>,
        /// Merge base of a diff scan's head and the target branch's tip as it is now, when the
        /// provider tells it (GitHub's compare API, asked when this spec is served, or given by
        /// whoever queued the scan); absent: the worker computes it from its clone.
        pub merge_base_sha: Option<String>,
        pub pr_number: Option<i32>,
        #[schema(schema_with = products)]
        pub products: Vec<String>,
        /// Effective rule modes; rules not listed are `monitor`.
        #[schema(schema_with = crate::schema::rule_modes)]
        pub policy: BTreeMap<String, String>,
        /// Full scans: the distinct paths of the branch's open findings; report those no longer
        /// in the tree as `deleted_paths`. Empty for diff scans.
        pub open_finding_paths: Vec<String>,
        /// The org's own rule packs, to load next to Picket's pack.
        pub rule_packs: Vec<RulePackSpec>,
        /// The project's path ignores (gitignore syntax, anchored at the repository root).
        pub path_ignores: Vec<String>,
        /// Whether `nosemgrep` comments suppress findings (the org's setting).
        pub inline_suppression: bool,
        /// Whether to send the matched lines of Code findings (the org's setting).
        pub store_matched_lines: bool,
    }

    /// One of the org's rule packs (YAML Semgrep rules, validated when uploaded).
    #[derive(Serialize, ToSchema)]
    #[schema(as = RulePackSpec)]
    pub struct RulePackSpec {
        pub name: String,
        /// SHA-256 (hex) of `content`.
        pub sha256: String,
        pub content: String,
    }

    /// An HTTPS clone credential for the scan's one repository. Never log it.
    #[derive(Serialize, ToSchema)]
    #[schema(as = CloneCredential)]
    pub struct CloneCredential {
        pub username: String,
        pub token: String,
    }

    /// A secret as it may be stored and shown.
    #[derive(Serialize, ToSchema)]
    #[schema(as = RedactedSecret)]
    pub struct RedactedSecret {
        /// e.g. `AKIA…MPLE`; 1-200 characters.
        pub redacted: String,
        /// SHA-256 of the value, 64 lowercase hex characters.
        pub sha256: String,
    }

    /// One finding as the worker reports it.
    #[derive(Serialize, ToSchema)]
    #[schema(as = ReportedFinding)]
    pub struct ReportedFinding {
        #[schema(schema_with = crate::schema::product)]
        pub product: String,
        pub rule_id: String,
        pub path: String,
        /// 1-based.
        pub start_line: u32,
        pub end_line: u32,
        #[schema(schema_with = crate::schema::severity)]
        pub severity: String,
        /// Without any secret value.
        pub message: String,
        /// Identity across scans and branches: 64 lowercase hex characters.
        pub fingerprint: String,
        /// Diff scans: not present at the merge base. Only these are stored for a diff scan.
        pub new_in_pr: bool,
        /// Secrets findings only, and required for them: the redacted form and SHA-256 of the
        /// value. The value itself is never sent.
        pub secret: Option<RedactedSecret>,
        /// Set when a `nosemgrep` comment covers the finding.
        pub suppressed: Option<InlineSuppression>,
        /// Code findings only, when the spec's `store_matched_lines` is on: the matched lines from
        /// `start_line` on, at most 5, each 0-400 characters without line breaks or NUL. Absent
        /// or empty when not sent; refused on any other product.
        #[schema(max_items = 5)]
        pub matched_lines: Option<Vec<String>>,
        /// Supply Chain findings only, and required for them: the vulnerable dependency.
        pub dependency: Option<VulnerableDependency>,
    }

    /// The vulnerable dependency of a Supply Chain finding: one package of one lockfile,
    /// affected by one vulnerability (a group of aliased advisories, keyed by the finding's
    /// `rule_id`).
    #[derive(Serialize, ToSchema)]
    #[schema(as = VulnerableDependency)]
    pub struct VulnerableDependency {
        #[schema(schema_with = crate::schema::ecosystem)]
        pub ecosystem: String,
        /// As the ecosystem normalises it.
        pub package: String,
        /// The affected versions installed, in the lockfile's order (1-100).
        #[schema(min_items = 1, max_items = 100)]
        pub versions: Vec<String>,
        /// The ids of the advisories that affect them, sorted (at least one).
        #[schema(min_items = 1)]
        pub advisories: Vec<String>,
        /// Every id of the vulnerability group, sorted.
        pub aliases: Vec<String>,
        /// Versions that fix it, in the ecosystem's order.
        pub fixed: Vec<String>,
        /// Declared by the project itself; absent where the lockfile does not say.
        pub direct: Option<bool>,
        /// Installed only for development; absent where the lockfile does not say.
        pub dev: Option<bool>,
        /// `cvss_v4`, `cvss_v3`, `cvss_v2` or `database`; absent when no advisory rates it.
        pub severity_source: Option<String>,
        /// The first affecting advisory's summary (at most 500 characters).
        pub summary: Option<String>,
    }

    /// What Supply Chain read in a scan.
    #[derive(Serialize, ToSchema)]
    #[schema(as = SupplyChainTrail)]
    pub struct SupplyChainTrail {
        /// Every lockfile, sorted by path; empty: the repository has none.
        pub lockfiles: Vec<LockfileRead>,
        /// Advisories the packages were checked against.
        pub advisories: u64,
        /// Ecosystems of the lockfiles of which no advisory is imported at all: their packages
        /// were checked against nothing.
        #[schema(schema_with = crate::schema::ecosystems)]
        pub empty_ecosystems: Vec<String>,
    }

    /// One lockfile as a scan read it.
    #[derive(Serialize, ToSchema)]
    #[schema(as = LockfileRead)]
    pub struct LockfileRead {
        pub path: String,
        /// e.g. `package-lock`, `poetry-lock`, `go-mod`.
        pub format: String,
        #[schema(schema_with = crate::schema::ecosystem)]
        pub ecosystem: String,
        /// Registry packages checked.
        pub packages: u64,
        /// Entries not from the registry (git, path, URL), not checked.
        pub not_registry: u64,
        /// Entries that pin no exact version (at most 100).
        #[schema(max_items = 100)]
        pub unresolved: Vec<TrailEntry>,
        /// Packages that could not be checked, with the reason (at most 100).
        #[schema(max_items = 100)]
        pub unchecked: Vec<TrailEntry>,
        /// Set when the lockfile could not be read: nothing of it was checked.
        pub error: Option<String>,
        /// Diff scans: the merge base's copy, listed only when it could not be read.
        pub merge_base: bool,
    }

    /// A lockfile entry that was not checked, and why.
    #[derive(Serialize, ToSchema)]
    #[schema(as = TrailEntry)]
    pub struct TrailEntry {
        pub line: Option<u32>,
        pub text: String,
        pub reason: String,
    }

    /// A `nosemgrep` comment that covers a finding.
    #[derive(Serialize, ToSchema)]
    #[schema(as = InlineSuppression)]
    pub struct InlineSuppression {
        /// 1-based line of the comment: the finding's first line or the one above.
        pub line: u32,
        /// The rule ids it names; empty for a bare `nosemgrep` (every rule on the line).
        pub rules: Vec<String>,
    }

    /// One step a worker ran, with its figures.
    #[derive(Serialize, ToSchema)]
    #[schema(as = Step)]
    pub struct Step {
        /// `clone`, `targets`, `materialize_base`, `engine`, `suppressions`, `identities`,
        /// `upload` (recorded by the control plane when it received the results).
        pub step: String,
        /// RFC 3339.
        pub started_at: String,
        /// Milliseconds.
        pub millis: u64,
        /// Counts by name, e.g. `bytes_received`, `files_scanned`, `rules_run`, `findings`.
        pub figures: BTreeMap<String, u64>,
    }

    /// A rule pack as one scan loaded it.
    #[derive(Serialize, ToSchema)]
    #[schema(as = RulePackUse)]
    pub struct RulePackUse {
        /// `picket` for Picket's own pack, else the org's pack name.
        pub name: String,
        /// SHA-256 (hex) of its rules.
        pub sha256: String,
        /// Rules loaded from it.
        pub rules: u64,
    }

    /// A file the engine could not scan, or scanned only in part.
    #[derive(Serialize, ToSchema)]
    #[schema(as = SkippedFile)]
    pub struct SkippedFile {
        /// Relative to the repository root.
        pub path: String,
        /// `unparsable`, `partly_parsed`, `too_large` or `engine_error`.
        #[schema(pattern = "^(unparsable|partly_parsed|too_large|engine_error)$")]
        pub kind: String,
        /// The engine's reason (quoted source text elided).
        pub reason: String,
    }

    /// An ignore rule that excluded files from a scan.
    #[derive(Serialize, ToSchema)]
    #[schema(as = IgnoreRuleUse)]
    pub struct IgnoreRuleUse {
        /// The pattern as written.
        pub pattern: String,
        /// `.semgrepignore` (or a nested one's path), `project` (the project's path ignores) or
        /// `default` (Semgrep's defaults, used without a root `.semgrepignore`).
        pub source: String,
        /// Files it excluded.
        pub files: u64,
    }

    /// What one attempt's worker did.
    #[derive(Serialize, ToSchema)]
    #[schema(as = ScanTrail)]
    pub struct ScanTrail {
        pub steps: Vec<Step>,
        /// e.g. `semgrep 1.185.0 (native)`.
        pub engine: Option<String>,
        pub rule_packs: Vec<RulePackUse>,
        pub skipped_files: Vec<SkippedFile>,
        pub ignores: Vec<IgnoreRuleUse>,
        /// Set when Supply Chain ran.
        pub supply_chain: Option<SupplyChainTrail>,
    }

    /// The results of one attempt.
    #[derive(Serialize, ToSchema)]
    #[schema(as = ScanResults)]
    pub struct ScanResults {
        /// The attempt these results are for; another attempt's upload is refused.
        pub attempt: i32,
        /// The commit actually scanned (full sha).
        pub commit_sha: String,
        /// Diff scans: the merge base compared against.
        pub merge_base_sha: Option<String>,
        /// Every rule that ran: an open finding of a rule not listed becomes `removed`.
        pub rules_run: Vec<String>,
        /// Of the spec's `open_finding_paths`, those no longer in the tree.
        pub deleted_paths: Vec<String>,
        /// Full scans: paths in the tree the scan could not read (a lockfile that does not
        /// parse); their open findings stay open. Default empty.
        pub unread_paths: Vec<String>,
        pub files_scanned: u64,
        pub findings: Vec<ReportedFinding>,
        /// Diff scans: findings at the merge base the head no longer has.
        pub fixed_in_pr: Vec<ReportedFinding>,
        pub trail: ScanTrail,
    }

    /// What a PR scan's worker plans its feedback from: `attempt`, and `input` (picket-core's
    /// `FeedbackInput`: `findings` (the new findings with their effective modes), `diff` (the
    /// PR diff's commentable lines by head path), `fixed_in_pr`, `draft_feedback`,
    /// `pr_is_draft`, `late`, `previous_commented`, and `existing`, left empty).
    #[derive(Serialize, ToSchema)]
    #[schema(as = FeedbackBegin)]
    pub struct FeedbackBegin {
        pub attempt: i32,
        #[schema(value_type = Object)]
        pub input: serde_json::Value,
    }

    /// Where and how the worker posts its feedback.
    #[derive(Serialize, ToSchema)]
    #[schema(as = FeedbackStart)]
    pub struct FeedbackStart {
        /// `github`.
        pub provider: String,
        /// The provider's API root.
        pub api_url: String,
        /// The repository's provider id, `owner/name` and (GitHub) App installation.
        pub repo_id: String,
        pub full_name: String,
        pub installation_id: Option<String>,
        /// The login Picket's comments carry (GitHub: `<app slug>[bot]`).
        pub bot_login: String,
        /// After the fail-open deadline: comments only.
        pub late: bool,
        /// The commented new findings (fingerprints) of the PR's previous scan with feedback.
        pub previous_commented: Option<Vec<String>>,
        /// The PR is a draft (as last heard).
        pub pr_is_draft: bool,
        /// What the org gives drafts: `full` or `check_only` (no new comment).
        #[schema(schema_with = crate::schema::draft_feedback)]
        pub draft_feedback: String,
    }

    /// A worker's advisory query: the packages of its scan's lockfiles, by ecosystem.
    #[derive(Serialize, ToSchema)]
    #[schema(as = AdvisoryQuery)]
    pub struct AdvisoryQuery {
        pub attempt: i32,
        /// Each ecosystem at most once; at most 100,000 names in all.
        pub packages: Vec<PackageNames>,
    }

    /// The package names of one ecosystem.
    #[derive(Serialize, ToSchema)]
    #[schema(as = PackageNames)]
    pub struct PackageNames {
        #[schema(schema_with = crate::schema::ecosystem)]
        pub ecosystem: String,
        /// 1-500 characters each.
        pub names: Vec<String>,
    }

    /// The advisories naming the query's packages.
    #[derive(Serialize, ToSchema)]
    #[schema(as = AdvisoryRecords)]
    pub struct AdvisoryRecords {
        /// OSV records (<https://ossf.github.io/osv-schema/>) as imported, sorted by id.
        #[schema(value_type = Vec<Object>)]
        pub records: Vec<serde_json::Value>,
        /// Ecosystems asked about of which the store holds no advisory at all.
        #[schema(schema_with = crate::schema::ecosystems)]
        pub empty_ecosystems: Vec<String>,
    }

    /// What the worker posted.
    #[derive(Serialize, ToSchema)]
    #[schema(as = FeedbackDone)]
    pub struct FeedbackDone {
        pub attempt: i32,
        pub comments_posted: u32,
        pub threads_resolved: u32,
        /// `created`, `updated`, `unchanged` or `none`.
        pub summary: String,
        pub api_calls: u64,
        /// The comments were planned for a quiet draft: no new comment (default `false`).
        pub quiet_draft: bool,
    }

    /// Log lines a worker sends while it runs, oldest first.
    #[derive(Serialize, ToSchema)]
    #[schema(as = LogBatch)]
    pub struct LogBatch {
        pub attempt: i32,
        #[schema(min_items = 1, max_items = 500)]
        pub lines: Vec<LogLine>,
    }

    /// One log line.
    #[derive(Serialize, ToSchema)]
    #[schema(as = LogLine)]
    pub struct LogLine {
        /// The worker's clock, RFC 3339.
        #[schema(schema_with = crate::schema::date_time)]
        pub at: String,
        #[schema(schema_with = crate::schema::log_level)]
        pub level: String,
        /// 1-2,000 characters.
        #[schema(min_length = 1, max_length = 2000)]
        pub message: String,
    }

    /// The worker's report that its attempt failed.
    #[derive(Serialize, ToSchema)]
    #[schema(as = ScanFailure)]
    pub struct ScanFailure {
        pub attempt: i32,
        /// Stable snake_case code, e.g. `clone_failed`.
        pub code: String,
        pub message: String,
        /// The step that failed.
        pub step: Option<String>,
        /// What ran until the failure.
        pub trail: ScanTrail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_core::protocol::{
        IgnoreRuleUse, InlineSuppression, LockfileRead, RedactedSecret, RulePackSpec, RulePackUse,
        SkipKind, SkippedFile, Step, SupplyChainTrail, TrailEntry, VulnerableDependency,
    };
    use picket_core::{ProjectId, RuleId, ScanId, ScanKind, Severity};
    use serde_json::Value;
    use std::collections::{BTreeMap, BTreeSet};

    /// The property names of a component schema of the OpenAPI document.
    fn properties(doc: &Value, name: &str) -> BTreeSet<String> {
        doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect()
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn documented_schemas_match_the_protocol_types() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        let rule: RuleId = "r".parse().unwrap();
        let spec = ScanSpec {
            scan_id: ScanId::new(),
            attempt: 1,
            project_id: ProjectId::new(),
            kind: ScanKind::Full,
            full_name: "a/b".into(),
            clone_url: "https://x/a/b.git".into(),
            git_ref: "main".into(),
            commit_sha: Some("c".into()),
            base_ref: Some("main".into()),
            base_sha: Some("b".into()),
            merge_base_sha: Some("m".into()),
            pr_number: Some(1),
            products: vec![Product::Code],
            policy: BTreeMap::new(),
            open_finding_paths: vec![],
            rule_packs: vec![RulePackSpec {
                name: "acme".into(),
                sha256: "0".repeat(64),
                content: "rules: []".into(),
            }],
            path_ignores: vec!["docs/".into()],
            inline_suppression: true,
            store_matched_lines: true,
        };
        let finding = ReportedFinding {
            product: Product::Secrets,
            rule_id: rule.clone(),
            path: "a".into(),
            start_line: 1,
            end_line: 1,
            severity: Severity::High,
            message: "m".into(),
            fingerprint: Fingerprint::compute(&rule, "a", "x", 0),
            new_in_pr: true,
            secret: Some(RedactedSecret {
                redacted: "A…B".into(),
                sha256: "0".repeat(64),
            }),
            suppressed: Some(InlineSuppression {
                line: 1,
                rules: vec![],
            }),
            matched_lines: Vec::new(),
            dependency: None,
        };
        let trail = ScanTrail {
            steps: vec![Step {
                step: "clone".into(),
                started_at: time::OffsetDateTime::UNIX_EPOCH,
                millis: 1,
                figures: BTreeMap::from([("bytes_received".into(), 1)]),
            }],
            engine: Some("semgrep".into()),
            rule_packs: vec![RulePackUse {
                name: "picket".into(),
                sha256: "0".repeat(64),
                rules: 1,
            }],
            skipped_files: vec![SkippedFile {
                path: "a".into(),
                kind: SkipKind::TooLarge,
                reason: "big".into(),
            }],
            ignores: vec![IgnoreRuleUse {
                pattern: "vendor/".into(),
                source: "default".into(),
                files: 1,
            }],
            supply_chain: Some(SupplyChainTrail {
                lockfiles: vec![LockfileRead {
                    path: "package-lock.json".into(),
                    format: "package-lock".into(),
                    ecosystem: picket_core::Ecosystem::Npm,
                    packages: 1,
                    not_registry: 0,
                    unresolved: vec![],
                    unchecked: vec![TrailEntry {
                        line: Some(3),
                        text: "x 1".into(),
                        reason: "r".into(),
                    }],
                    error: None,
                    merge_base: false,
                }],
                advisories: 1,
                empty_ecosystems: Vec::new(),
            }),
        };
        let dependency = VulnerableDependency {
            ecosystem: picket_core::Ecosystem::Npm,
            package: "lodash".into(),
            versions: vec!["4.17.20".into()],
            advisories: vec!["GHSA-35jh-r3h4-6jhm".into()],
            aliases: vec!["CVE-2021-23337".into()],
            fixed: vec!["4.17.21".into()],
            direct: Some(true),
            dev: None,
            severity_source: None,
            summary: None,
        };
        let mut finding = finding;
        finding.dependency = Some(dependency.clone());
        let sc = trail.supply_chain.clone().unwrap();
        let query = picket_core::protocol::AdvisoryQuery {
            attempt: 1,
            packages: vec![picket_core::protocol::PackageNames {
                ecosystem: picket_core::Ecosystem::Npm,
                names: vec!["lodash".into()],
            }],
        };
        let results = ScanResults {
            attempt: 1,
            commit_sha: "c".into(),
            merge_base_sha: Some("m".into()),
            rules_run: vec![rule],
            deleted_paths: vec![],
            unread_paths: Vec::new(),
            files_scanned: 1,
            findings: vec![finding.clone()],
            fixed_in_pr: vec![],
            trail: trail.clone(),
        };
        let credential = CloneCredential {
            username: "u".into(),
            token: "t".into(),
        };
        let failure = ScanFailure {
            attempt: 1,
            code: "c".into(),
            message: "m".into(),
            step: Some("clone".into()),
            trail: trail.clone(),
        };
        let begin = FeedbackBegin {
            attempt: 1,
            input: Default::default(),
        };
        let start = FeedbackStart {
            provider: picket_core::Provider::Github,
            api_url: "https://api.github.com".into(),
            repo_id: "1".into(),
            full_name: "a/b".into(),
            installation_id: Some("2".into()),
            bot_login: "picket[bot]".into(),
            late: false,
            previous_commented: Some(vec![]),
            pr_is_draft: true,
            draft_feedback: picket_core::feedback::DraftFeedback::CheckOnly,
        };
        let done = FeedbackDone::default();
        let cases: [(&str, Value); 22] = [
            (
                "VulnerableDependency",
                serde_json::to_value(&dependency).unwrap(),
            ),
            ("SupplyChainTrail", serde_json::to_value(&sc).unwrap()),
            (
                "LockfileRead",
                serde_json::to_value(&sc.lockfiles[0]).unwrap(),
            ),
            (
                "TrailEntry",
                serde_json::to_value(&sc.lockfiles[0].unchecked[0]).unwrap(),
            ),
            ("AdvisoryQuery", serde_json::to_value(&query).unwrap()),
            (
                "PackageNames",
                serde_json::to_value(&query.packages[0]).unwrap(),
            ),
            ("FeedbackBegin", serde_json::to_value(&begin).unwrap()),
            ("FeedbackStart", serde_json::to_value(&start).unwrap()),
            ("FeedbackDone", serde_json::to_value(&done).unwrap()),
            ("ScanSpec", serde_json::to_value(&spec).unwrap()),
            (
                "RulePackSpec",
                serde_json::to_value(&spec.rule_packs[0]).unwrap(),
            ),
            (
                "CloneCredential",
                serde_json::to_value(&credential).unwrap(),
            ),
            ("ReportedFinding", serde_json::to_value(&finding).unwrap()),
            (
                "RedactedSecret",
                serde_json::to_value(finding.secret.as_ref().unwrap()).unwrap(),
            ),
            ("Step", serde_json::to_value(&trail.steps[0]).unwrap()),
            ("ScanTrail", serde_json::to_value(&trail).unwrap()),
            (
                "RulePackUse",
                serde_json::to_value(&trail.rule_packs[0]).unwrap(),
            ),
            (
                "SkippedFile",
                serde_json::to_value(&trail.skipped_files[0]).unwrap(),
            ),
            (
                "IgnoreRuleUse",
                serde_json::to_value(&trail.ignores[0]).unwrap(),
            ),
            (
                "InlineSuppression",
                serde_json::to_value(finding.suppressed.as_ref().unwrap()).unwrap(),
            ),
            ("ScanResults", serde_json::to_value(&results).unwrap()),
            ("ScanFailure", serde_json::to_value(&failure).unwrap()),
        ];
        for (name, sample) in cases {
            assert_eq!(properties(&doc, name), keys(&sample), "{name}");
        }
    }

    #[test]
    fn failure_messages_are_cut_and_cleaned() {
        assert_eq!(clean_message("a\u{0}b\nc\td"), "a\u{fffd}b\nc\td");
        assert_eq!(clean_message(&"x".repeat(5_000)).chars().count(), 4_000);
    }

    #[test]
    fn commit_shas_are_full_lowercase_hex() {
        assert!(is_commit_sha(&"a".repeat(40)));
        assert!(is_commit_sha(&"0".repeat(64)));
        assert!(!is_commit_sha(&"A".repeat(40)));
        assert!(!is_commit_sha("abc"));
    }
}
