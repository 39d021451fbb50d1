//! `pr_feedback`: a pull request from webhook to feedback, as `picket scheduler` and `picket api`
//! run it, with GitHub served by picket-test-support's `GitHubServer` (which records every
//! request and checks it against GitHub's OpenAPI description). Built like
//! tests/e2e/pr_feedback.rs: the real API with a provider registry (in this process), the real
//! scheduler (`picket_scheduler::run`, default intervals) starting this build's `picket worker`
//! as a plain process (`ProcessExecutor`, `PICKET_ALLOW_LOCAL_REPOS=true`, a `file://`
//! repository), the pinned Semgrep with Picket's pack, and a policy with one Block and one
//! Comment rule.
//!
//! The repository has a history of `--commits` commits over `--files` Python modules (a few of
//! them with findings on `main` that a PR must not be blamed for); the target branch moved on 3
//! commits after the PR branched. The PR's first head touches 20 files with 3 Block, 2 Comment
//! and 1 Monitor finding; the next pushes fix one finding and add another, add a file, change a
//! docstring, fix a finding. Each push is one signed webhook (`opened`, then `synchronize`),
//! and the next push waits until the previous scan's comments are posted and its check is
//! completed, so every GitHub request between two webhooks belongs to one PR scan.
//!
//! Phase instants, all relative to the moment the webhook was sent: the webhook's answer; the
//! GitHub requests as the test server received them (check created queued, moved in progress,
//! comments, completed); the scan's claim and `running` event from the database; the worker's
//! steps from its trail (clone, engine: their end); the worker's calls to the API (feedback
//! begin and done, results) from a layer around the API router. Database and trail instants
//! are wall-clock (one machine), the others monotonic; both are anchored when the webhook is
//! sent.

use crate::dispatch::picket_binary;
use crate::forge::{self, Call, CheckMove, Connected, Forge, ServerRepo, OWNER};
use crate::{bench_db, start_api_with, with_bench_db, Provider};
use anyhow::{bail, ensure, Context};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use picket_core::ProjectId;
use picket_db::connections::CredentialStore;
use picket_db::crypto::CredentialCipher;
use picket_db::projects::{self, NewProject};
use picket_db::Db;
use picket_scheduler::process::ProcessExecutor;
use picket_scheduler::{SchedulerConfig, WorkerCommand};
use picket_test_support::{bare_repo, file, git, run, Change, History};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

const BLOCK_RULE: &str = "picket.python.code-injection";
const COMMENT_RULE: &str = "picket.python.weak-hash";
/// Commits the target branch moved on after the PR branched.
const TARGET_MOVED: usize = 3;
/// Files the PR's first head touches.
const PR_FILES: usize = 20;
/// Longest one push may take to get its feedback.
const PUSH_TIMEOUT: Duration = Duration::from_secs(300);

/// One of the repository's modules at `version`: about 80 lines of ordinary Python.
fn module(i: usize, version: usize) -> String {
    let mut s = format!(
        "\"\"\"Module {i}: order handling helpers (revision {version}).\"\"\"\nimport json\nimport logging\n\nLOG = logging.getLogger(__name__)\nRETRIES = {}\n\n\nclass Handler{i}:\n    def __init__(self, store):\n        self.store = store\n\n    def load(self, key):\n        raw = self.store.get(key)\n        if raw is None:\n            return None\n        return json.loads(raw)\n\n    def save(self, key, value):\n        self.store.put(key, json.dumps(value, sort_keys=True))\n        LOG.info(\"saved %s\", key)\n",
        version % 7 + 1
    );
    for f in 0..8 {
        write!(
            s,
            "\n\ndef step_{f}(items, limit={}):\n    out = []\n    for item in items:\n        if len(out) >= limit:\n            break\n        if item.get(\"kind\") == \"k{f}\":\n            out.append(item[\"value\"] * {})\n    return out\n",
            10 + f,
            f + 1
        )
        .expect("write to a String");
    }
    // Findings that are on the target branch already: never new in a PR.
    match i {
        0 => s.push_str("\n\ndef legacy_digest(data):\n    import hashlib\n    return hashlib.md5(data).hexdigest()\n"),
        1 => s.push_str("\n\ndef legacy_eval(expr):\n    return eval(expr)\n"),
        _ => {}
    }
    s
}

/// What a PR head adds to an existing module.
fn with_addition(i: usize, base_version: usize, addition: &str) -> String {
    format!("{}{addition}", module(i, base_version))
}

const ADD_PLAIN: &str = "\n\ndef summarize(rows):\n    total = sum(r[\"amount\"] for r in rows)\n    return {\"count\": len(rows), \"total\": total}\n";
const ADD_EVAL: &str = "\n\ndef run_expr(expr):\n    return eval(expr)\n";
const ADD_EVAL_FIXED: &str = "\n\ndef run_expr(expr):\n    return int(expr)\n";
const ADD_MD5: &str =
    "\n\ndef digest(data):\n    import hashlib\n    return hashlib.md5(data).hexdigest()\n";
const ADD_MD5_FIXED: &str =
    "\n\ndef digest(data):\n    import hashlib\n    return hashlib.sha256(data).hexdigest()\n";
const ADD_SYSTEM: &str = "\n\ndef shell(cmd):\n    import os\n    os.system(\"ls \" + cmd)\n";

/// A new file of the PR, with `extra` at its end.
fn new_file(k: usize, note: &str, extra: &str) -> String {
    format!(
        "\"\"\"Feature {k}: {note}.\"\"\"\nimport json\n\n\ndef parse(text):\n    data = json.loads(text)\n    return [row for row in data if row.get(\"active\")]\n\n\ndef render(rows):\n    return \"\\n\".join(f\"{{r['id']}}: {{r['name']}}\" for r in rows)\n{extra}"
    )
}

/// The repository: history on `main`, then the PR's heads on `feature`. Returns the bare
/// repository, the merge base, the target's tip and the heads (one per push).
fn repository(
    root: &Path,
    commits: usize,
    files: usize,
    pushes: usize,
) -> anyhow::Result<(PathBuf, String, String, Vec<String>)> {
    ensure!(
        files > PR_FILES,
        "--files must be more than {PR_FILES} (the PR touches {PR_FILES})"
    );
    ensure!(commits > TARGET_MOVED + 1, "--commits too small");
    let mut h = History::default();
    // Every module once, then each commit rewrites two of them.
    let all: Vec<Change> = (0..files)
        .map(|i| file(&format!("src/app/mod_{i:03}.py"), module(i, 0)))
        .collect();
    let mut main = vec![h.commit("main", &[], &all)];
    let mut versions = vec![0usize; files];
    for c in 1..commits {
        let changes: Vec<Change> = [c * 7 % files, (c * 13 + 5) % files]
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|i| {
                versions[i] = c;
                file(&format!("src/app/mod_{i:03}.py"), module(i, c))
            })
            .collect();
        main.push(h.commit("main", &[*main.last().expect("a commit")], &changes));
    }
    let base_at = main.len() - 1 - TARGET_MOVED;
    // The module versions at the merge base, which the PR edits.
    let mut v_base = vec![0usize; files];
    for c in 1..=base_at {
        for i in [c * 7 % files, (c * 13 + 5) % files] {
            v_base[i] = c;
        }
    }
    let path = |i: usize| format!("src/app/mod_{i:03}.py");
    let new_path = |k: usize| format!("src/feature/new_{k}.py");
    // First head: 14 modules edited (modules 2..16: Block, Comment, Monitor in 3, 4, 5), 6 new
    // files (Block in new_0 and new_2, Comment in new_1).
    let mut first: Vec<Change> = (2..2 + PR_FILES - 6)
        .map(|i| {
            let add = match i {
                3 => ADD_EVAL,
                4 => ADD_MD5,
                5 => ADD_SYSTEM,
                _ => ADD_PLAIN,
            };
            file(&path(i), with_addition(i, v_base[i], add))
        })
        .collect();
    let extras = [
        ADD_EVAL,
        ADD_MD5,
        "\n\ndef load_all(texts):\n    return [eval(t) for t in texts]\n",
        "",
        "",
        "",
    ];
    for (k, extra) in extras.iter().enumerate() {
        first.push(file(&new_path(k), new_file(k, "reports", extra)));
    }
    let mut heads = vec![h.commit("feature", &[main[base_at]], &first)];
    for p in 1..pushes {
        let changes = match p {
            // Fixes the Block finding of module 3, adds a Comment one in new_3.
            1 => vec![
                file(&path(3), with_addition(3, v_base[3], ADD_EVAL_FIXED)),
                file(&new_path(3), new_file(3, "reports", ADD_MD5)),
            ],
            // A new file with a Block finding.
            2 => vec![file(
                &new_path(6),
                new_file(6, "imports", "\n\ndef load(text):\n    return eval(text)\n"),
            )],
            // Fixes the Comment finding of new_1.
            4 => vec![file(&new_path(1), new_file(1, "reports", ADD_MD5_FIXED))],
            // A docstring changes: nothing new.
            _ => vec![file(
                &new_path(4),
                new_file(4, &format!("reports, revision {p}"), ""),
            )],
        };
        heads.push(h.commit("feature", &[*heads.last().expect("a head")], &changes));
    }
    let repo = bare_repo(root, "app.git", true);
    let shas = h.import(&repo);
    let sha = |m: u32| shas.get(&m).cloned().context("an imported commit");
    Ok((
        repo,
        sha(main[base_at])?,
        sha(*main.last().expect("a commit"))?,
        heads.into_iter().map(sha).collect::<Result<_, _>>()?,
    ))
}

/// The RIGHT-side lines of each file in `base...head`'s diff (hunks with 3 lines of context,
/// as GitHub shows them): the lines a review comment may be on.
fn diff_lines(repo: &Path, base: &str, head: &str) -> BTreeMap<String, Vec<u64>> {
    let text = run(git(repo).args(["diff", "--unified=3", "--no-renames", base, head]));
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(p) = line.strip_prefix("+++ b/") {
            current = Some(p.to_owned());
        } else if let (Some(p), Some(hunk)) = (&current, line.strip_prefix("@@ ")) {
            // "@@ -a,b +c,d @@"
            let plus = hunk.split_whitespace().nth(1).unwrap_or("+0");
            let (start, count) = match plus.trim_start_matches('+').split_once(',') {
                Some((s, c)) => (s.parse().unwrap_or(0), c.parse().unwrap_or(0)),
                None => (plus.trim_start_matches('+').parse().unwrap_or(0), 1),
            };
            out.entry(p.clone())
                .or_default()
                .extend(start..start + count);
        }
    }
    out
}

/// One call the worker (or anyone) made to Picket's API.
#[derive(Debug, Clone)]
struct ApiCall {
    path: String,
    start: Instant,
}

#[derive(Debug, Clone, Default)]
struct ApiLog(Arc<Mutex<Vec<ApiCall>>>);

impl ApiLog {
    fn calls(&self) -> Vec<ApiCall> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn log_calls(State(log): State<ApiLog>, req: Request, next: Next) -> Response {
    let call = ApiCall {
        path: req.uri().path().to_owned(),
        start: Instant::now(),
    };
    let resp = next.run(req).await;
    log.0.lock().unwrap_or_else(|e| e.into_inner()).push(call);
    resp
}

/// One push's measurements: phase → ms after the webhook was sent; operation → calls.
#[derive(Debug, Default)]
struct Measured {
    phases: BTreeMap<&'static str, f64>,
    /// (operation, credential) → calls.
    calls: BTreeMap<(String, String), u64>,
    mints: u64,
    clone_bytes: u64,
    new_findings: i64,
    outcome: Value,
    /// The check's state when it was created, as the provider names it (GitHub `queued`, or
    /// `in_progress` when the worker was running by then; GitLab `pending`, ...).
    created_as: String,
    /// The completed check's conclusion or state (`failure`, `failed`, `FAILED`, ...).
    conclusion: String,
}

/// The phases, in the order they happen.
const PHASES: &[&str] = &[
    "webhook answered (202, scan queued)",
    "check created on the provider",
    "scan claimed by the scheduler",
    "worker's first call to the API",
    "scan running (worker reported)",
    "check shown running on the provider (created so, or moved)",
    "clone done (worker trail)",
    "engine done (worker trail)",
    "feedback begun (worker → API)",
    "last comment written on the provider",
    "feedback done (worker → API)",
    "results uploaded (worker → API)",
    "check completed on the provider",
];

/// Phases a push may go without: a check created or moved as running (Bitbucket and Azure
/// DevOps have no such state; GitHub and GitLab skip it when the scan was done before the
/// check loop looked), and comments (a push that changes nothing Picket shows writes none).
const OPTIONAL: &[&str] = &[PHASES[5], PHASES[9]];

/// The pull request's number (GitHub, Bitbucket, Azure DevOps) or iid (GitLab).
const PR: u64 = 7;

struct World {
    db: Db,
    forge: Forge,
    conn: Connected,
    repo: ServerRepo,
    hook: String,
    http: reqwest::Client,
    api_log: ApiLog,
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl World {
    /// Moves the PR to `head`, delivers its webhook and waits for the feedback; measures.
    async fn push(
        &self,
        git_dir: &Path,
        merge_base: &str,
        target: &str,
        head: &str,
        before: Option<&str>,
    ) -> anyhow::Result<Measured> {
        let diff = diff_lines(git_dir, merge_base, head);
        let push = forge::Push {
            git: git_dir,
            number: PR,
            head,
            before,
            merge_base,
            target,
            diff: &diff,
        };
        self.forge.push(&self.repo, &push)?;
        let (headers, body) = self.forge.delivery(&self.conn, &self.repo, &push)?;
        let mut req = self.http.post(&self.hook);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let (t0, wall0) = (Instant::now(), SystemTime::now());
        let resp = req.body(body).send().await?;
        let answered = t0.elapsed();
        let status = resp.status();
        let body: Value = resp.json().await?;
        ensure!(
            status.as_u16() == 202 && body["outcome"] == "scan_queued",
            "the webhook answered {status}: {body}"
        );
        let scan: uuid::Uuid = body["scan_id"].as_str().context("scan_id")?.parse()?;
        let since =
            |calls: Vec<Call>| -> Vec<Call> { calls.into_iter().filter(|c| c.at >= t0).collect() };

        // Wait for the comments and the completed check.
        loop {
            let (state, done): (String, bool) = sqlx::query_as(
                "SELECT s.state::text, c.comments_done_at IS NOT NULL
                 FROM scans s JOIN pr_checks c ON c.scan_id = s.id WHERE s.id = $1",
            )
            .bind(scan)
            .fetch_one(self.db.pool())
            .await?;
            let completed = since(self.forge.calls())
                .iter()
                .any(|c| matches!(c.check, Some((CheckMove::Completed, _))));
            if state == "succeeded" && done && completed {
                break;
            }
            if matches!(state.as_str(), "failed" | "cancelled" | "timed_out") {
                let why: (Option<String>, Option<String>) =
                    sqlx::query_as("SELECT error_code, error_message FROM scans WHERE id = $1")
                        .bind(scan)
                        .fetch_one(self.db.pool())
                        .await?;
                bail!("the PR scan of {head} ended {state}: {why:?}");
            }
            if t0.elapsed() > PUSH_TIMEOUT {
                bail!("no feedback for {head} after {PUSH_TIMEOUT:?} (scan {state}, comments done {done}, check completed {completed})");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Nothing more is due for this head; let stragglers land.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let ms_i = |t: Instant| t.saturating_duration_since(t0).as_secs_f64() * 1e3;
        let ms_wall = |epoch_s: f64| (epoch_s - epoch(wall0)) * 1e3;
        let mut m = Measured::default();
        let mut at = |phase: &'static str, ms: f64| {
            m.phases.insert(phase, ms);
        };
        at(PHASES[0], answered.as_secs_f64() * 1e3);

        let calls = since(self.forge.calls());
        let checks: Vec<(&Call, CheckMove, &str)> = calls
            .iter()
            .filter_map(|c| {
                c.check
                    .as_ref()
                    .map(|(moved, state)| (c, *moved, state.as_str()))
            })
            .collect();
        if let Some((c, moved, state)) = checks.first() {
            at(PHASES[1], ms_i(c.at));
            m.created_as = (*state).to_owned();
            if *moved == CheckMove::Running {
                at(PHASES[5], ms_i(c.at));
            }
        }
        if let Some((c, ..)) = checks
            .iter()
            .find(|(_, moved, _)| *moved == CheckMove::Running)
        {
            at(PHASES[5], ms_i(c.at));
        }
        if let Some((c, _, state)) = checks
            .iter()
            .find(|(_, moved, _)| *moved == CheckMove::Completed)
        {
            at(PHASES[12], ms_i(c.at));
            m.conclusion = (*state).to_owned();
        }
        if let Some(c) = calls.iter().rev().find(|c| c.writes_comment) {
            at(PHASES[9], ms_i(c.at));
        }
        for c in &calls {
            *m.calls
                .entry((c.operation.clone(), c.credential.clone()))
                .or_default() += 1;
            m.mints += u64::from(c.mints);
        }

        let api = self.api_log.calls();
        let api_at = |suffix: &str| {
            api.iter()
                .filter(|c| c.start >= t0 && c.path.ends_with(suffix))
                .map(|c| ms_i(c.start))
                .next()
        };
        if let Some(v) = api
            .iter()
            .find(|c| c.start >= t0 && c.path.starts_with("/api/v1/worker/"))
        {
            at(PHASES[3], ms_i(v.start));
        }
        for (phase, suffix) in [
            (PHASES[8], "/feedback/begin"),
            (PHASES[10], "/feedback/done"),
            (PHASES[11], "/scan/results"),
        ] {
            if let Some(v) = api_at(suffix) {
                at(phase, v);
            }
        }

        let (claimed, running): (Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT extract(epoch FROM s.claimed_at)::float8,
                    (SELECT extract(epoch FROM min(e.at))::float8 FROM scan_events e
                     WHERE e.scan_id = s.id AND e.to_state = 'running')
             FROM scans s WHERE s.id = $1",
        )
        .bind(scan)
        .fetch_one(self.db.pool())
        .await?;
        if let Some(c) = claimed {
            at(PHASES[2], ms_wall(c));
        }
        if let Some(r) = running {
            at(PHASES[4], ms_wall(r));
        }
        let steps: Vec<(String, f64, f64, Value)> = sqlx::query_as(
            "SELECT st->>'step', extract(epoch FROM (st->>'started_at')::timestamptz)::float8,
                    (st->>'millis')::float8, coalesce(st->'figures', '{}'::jsonb)
             FROM scan_attempts a, jsonb_array_elements(a.trail->'steps') st
             WHERE a.scan_id = $1",
        )
        .bind(scan)
        .fetch_all(self.db.pool())
        .await?;
        for (step, started, millis, figures) in &steps {
            let end = ms_wall(*started) + millis;
            match step.as_str() {
                "clone" => {
                    at(PHASES[6], end);
                    m.clone_bytes = figures["bytes_received"].as_u64().unwrap_or(0);
                }
                "engine" => at(PHASES[7], end),
                _ => {}
            }
        }
        let (new_findings, outcome): (i64, Option<Value>) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM scan_findings f WHERE f.scan_id = c.scan_id AND f.change = 'new'),
                    c.feedback_outcome
             FROM pr_checks c WHERE c.scan_id = $1",
        )
        .bind(scan)
        .fetch_one(self.db.pool())
        .await?;
        m.new_findings = new_findings;
        m.outcome = outcome.unwrap_or(Value::Null);
        Ok(m)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median, min and max of `v` (not empty).
fn spread(v: Vec<f64>) -> (f64, f64, f64) {
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    (median(v), lo, hi)
}

/// Runs the benchmark for `provider` on a database of its own on `admin_url`'s server and
/// prints its tables (Markdown): `pushes` PR scans of a repository of `commits` commits over
/// `files` modules. Fails when a push gets no feedback within 5 minutes, a scan fails, or the
/// provider's reference refuses a request Picket sent.
pub async fn pr_feedback_bench(
    admin_url: &str,
    provider: Provider,
    pushes: usize,
    commits: usize,
    files: usize,
) -> anyhow::Result<()> {
    ensure!(pushes >= 1, "at least one push");
    let exe = picket_binary()?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let semgrep = std::fs::canonicalize(manifest.join("../../.venv/bin/semgrep"))
        .context("the pinned semgrep (make semgrep)")?;
    let rules = std::fs::canonicalize(manifest.join("../worker/rules"))?;
    let root = tempfile::tempdir()?;
    let built = Instant::now();
    let (repo, merge_base, target, heads) = repository(root.path(), commits, files, pushes)?;
    let build_secs = built.elapsed().as_secs_f64();
    let clone_url = format!("file://{}", std::fs::canonicalize(&repo)?.display());

    let label = format!("pr_feedback_{provider}");
    with_bench_db(admin_url, &label, |url| async move {
        let db = bench_db(&url, 16).await?;
        let forge = Forge::start(provider).await;
        let server_repo = forge.add_repository(&clone_url);

        let cipher = Arc::new(CredentialCipher::from_hex(
            &CredentialCipher::generate_hex(),
        )?);
        let registry = || {
            Arc::new(picket_vcs::Registry::new(
                Arc::new(CredentialStore::new(db.pool().clone(), cipher.clone())),
                picket_vcs::github::api::ClientOptions::new(picket_vcs::github::DEFAULT_API_URL),
            ))
        };
        let api_log = ApiLog::default();
        let state =
            picket_api::AppState::new(db.clone(), cipher.clone()).with_providers(registry());
        let layer_log = api_log.clone();
        let (base, token, server) = start_api_with(&db, state, move |r| {
            r.layer(axum::middleware::from_fn_with_state(layer_log, log_calls))
        })
        .await?;
        let http = reqwest::Client::new();
        let conn = forge.connect(&base, &token, OWNER).await?;
        let org = picket_db::orgs::get_by_slug(db.pool(), "bench").await?;
        // A file:// project (its repository is on this machine), added as `picket run` adds one
        // (GitHub: attached to the App's installation as the installation webhook does).
        let mut tx = db.pool().begin().await?;
        let added = projects::add_many(
            &mut tx,
            org.id,
            &[NewProject {
                connection_id: conn.id.into(),
                provider_repo_id: server_repo.id.clone(),
                full_name: server_repo.full_name.clone(),
                clone_url: clone_url.clone(),
                default_branch: "main".into(),
            }],
            None,
            time::OffsetDateTime::now_utc(),
        )
        .await?
        .map_err(|e| anyhow::anyhow!("the project was refused: {e:?}"))?;
        tx.commit().await?;
        let project: ProjectId = added[0].project.id;
        if let Some(installation) = server_repo.installation {
            sqlx::query("UPDATE projects SET provider_installation_id = $2 WHERE id = $1")
                .bind(project.0)
                .bind(installation.to_string())
                .execute(db.pool())
                .await?;
        }
        http.put(format!("{base}/api/v1/policies/team"))
            .bearer_auth(&token)
            .json(&json!({"rules": {BLOCK_RULE: "block", COMMENT_RULE: "comment"}}))
            .send()
            .await?
            .error_for_status()
            .context("setting the policy")?;

        // The scheduler as `picket scheduler` runs it (default intervals), with this build's
        // worker as plain processes.
        let worker = WorkerCommand {
            program: exe.clone(),
            args: vec!["worker".into()],
            env: vec![
                ("PICKET_API_URL".into(), base.clone()),
                ("PICKET_SEMGREP".into(), semgrep.display().to_string()),
                ("PICKET_RULES_DIR".into(), rules.display().to_string()),
                ("PICKET_ALLOW_LOCAL_REPOS".into(), "true".into()),
                ("PICKET_LOG".into(), "warn".into()),
            ],
        };
        let mut cfg = SchedulerConfig::new("bench");
        cfg.providers = Some(registry());
        let stop = CancellationToken::new();
        let scheduler = tokio::spawn(picket_scheduler::run(
            db.clone(),
            ProcessExecutor::new(picket_db::installation::id(db.pool()).await?, worker),
            cfg,
            stop.clone(),
        ));

        // The project's initial full scan first: PR scans are measured on a quiet queue.
        let full_started = Instant::now();
        loop {
            let state: String =
                sqlx::query_scalar("SELECT state::text FROM scans WHERE kind = 'full'")
                    .fetch_one(db.pool())
                    .await?;
            match state.as_str() {
                "succeeded" => break,
                "queued" | "claimed" | "running" | "reporting" => {}
                other => bail!("the initial full scan ended {other}"),
            }
            ensure!(
                full_started.elapsed() < PUSH_TIMEOUT,
                "the initial full scan is still {state}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let full_secs = full_started.elapsed().as_secs_f64();

        let world = World {
            db: db.clone(),
            forge,
            hook: format!("{base}{}", conn.hook_path),
            conn,
            repo: server_repo,
            http,
            api_log,
        };
        let mut results = Vec::new();
        for (i, head) in heads.iter().enumerate() {
            let before = i.checked_sub(1).map(|p| heads[p].as_str());
            let measured = world
                .push(&repo, &merge_base, &target, head, before)
                .await
                .with_context(|| format!("{}, push {}", provider.title(), i + 1));
            results.push(measured?);
        }
        stop.cancel();
        scheduler.await?;
        server.abort();
        world.forge.check()?;
        let out = report(
            provider, &results, pushes, commits, files, build_secs, full_secs,
        )?;
        println!("{out}");
        // Every push is answered, scanned and its check completed.
        for phase in PHASES.iter().filter(|p| !OPTIONAL.contains(p)) {
            ensure!(
                results.iter().all(|p| p.phases.contains_key(phase)),
                "phase `{phase}` is missing from a push"
            );
        }
        Ok(())
    })
    .await
}

/// The benchmark's tables, in Markdown.
fn report(
    provider: Provider,
    results: &[Measured],
    pushes: usize,
    commits: usize,
    files: usize,
    build_secs: f64,
    full_secs: f64,
) -> anyhow::Result<String> {
    let name = provider.title();
    let mut out = String::new();
    writeln!(
        out,
        "### PR feedback, {name}: webhook → check → comments, {pushes} pushes to one PR\n"
    )?;
    writeln!(
        out,
        "Repository: {commits} commits over {files} Python modules (built in {build_secs:.1} s), the target {TARGET_MOVED} commits past the merge base; the PR's first head touches {PR_FILES} files. Initial full scan: {full_secs:.1} s.\n"
    )?;
    writeln!(
        out,
        "| push | new findings | comments posted | threads resolved | summary | check created as | check completed as | clone bytes |"
    )?;
    writeln!(out, "|---:|---:|---:|---:|---|---|---|---:|")?;
    for (i, p) in results.iter().enumerate() {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            i + 1,
            p.new_findings,
            p.outcome["comments_posted"],
            p.outcome["threads_resolved"],
            p.outcome["summary"].as_str().unwrap_or("?"),
            p.created_as,
            p.conclusion,
            p.clone_bytes
        )?;
    }
    writeln!(
        out,
        "\n#### Phases, {name}: ms after the webhook was sent (median of the pushes it happened in, min, max)\n"
    )?;
    writeln!(
        out,
        "| phase | pushes it happened in | median | min | max |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|")?;
    for phase in PHASES {
        let v: Vec<f64> = results
            .iter()
            .filter_map(|p| p.phases.get(phase).copied())
            .collect();
        if v.is_empty() {
            writeln!(out, "| {phase} | 0 of {pushes} | - | - | - |")?;
            continue;
        }
        let n = v.len();
        let (mid, lo, hi) = spread(v);
        writeln!(
            out,
            "| {phase} | {n} of {pushes} | {mid:.0} | {lo:.0} | {hi:.0} |"
        )?;
    }
    writeln!(
        out,
        "\n#### {name} API calls per PR scan, by operation (median of {pushes}, min, max)\n"
    )?;
    writeln!(out, "| operation | credential | median | min | max |")?;
    writeln!(out, "|---|---|---:|---:|---:|")?;
    let ops: BTreeSet<&(String, String)> = results.iter().flat_map(|p| p.calls.keys()).collect();
    for op in ops {
        let v: Vec<f64> = results
            .iter()
            .map(|p| p.calls.get(op).copied().unwrap_or(0) as f64)
            .collect();
        let (mid, lo, hi) = spread(v);
        writeln!(out, "| `{}` | {} | {mid} | {lo} | {hi} |", op.0, op.1)?;
    }
    let totals: Vec<f64> = results
        .iter()
        .map(|p| p.calls.values().sum::<u64>() as f64)
        .collect();
    let mints: Vec<f64> = results.iter().map(|p| p.mints as f64).collect();
    let worker_calls: Vec<f64> = results
        .iter()
        .map(|p| p.outcome["api_calls"].as_f64().unwrap_or(0.0))
        .collect();
    // Only GitHub mints tokens; the others' connections hold one.
    let minted = if provider == Provider::Github {
        format!(
            ", of which {} installation-token mints ({mints:?})",
            median(mints.clone())
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "\nPer PR scan: {} {name} API calls (median; {totals:?} by push){minted}; the worker counted {} calls for its feedback (median).\n",
        median(totals.clone()),
        median(worker_calls)
    )?;
    Ok(out)
}
