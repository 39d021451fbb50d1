//! `webhooks`: webhook ingest under wrk, for each provider. Picket's real route,
//! `POST /webhooks/{provider}/{connection}` of the real API router (in this process, on
//! 127.0.0.1), takes pull request deliveries that each push new code: GitHub `pull_request`
//! `synchronize` (signed `X-Hub-Signature-256`), GitLab `Merge Request Hook` `update` with
//! `oldrev` (the hook's `X-Gitlab-Token`), Bitbucket Cloud `pullrequest:updated` (signed
//! `X-Hub-Signature`) and Azure DevOps `git.pullrequest.updated` (Basic authentication). Each
//! is authenticated, then one transaction logs the delivery, queues the head's diff scan,
//! supersedes the PR's older scan and registers its check. The baseline, in the same run against
//! the same database server with a pool of the same size, is a bare axum handler doing one
//! `INSERT` of the body (one commit per request, into a column compressed as the delivery log's
//! is: lz4), driven by the same wrk settings and the same requests.
//!
//! Traffic: every delivery has its own delivery id (`X-GitHub-Delivery`, `Idempotency-Key`,
//! `X-Request-UUID`, or the body's `id` for Azure DevOps) and its own head SHA (full, 40 hex
//! digits: Bitbucket's receiver asks Bitbucket for the full SHA only when a head is
//! abbreviated, and the benchmark fails if the provider's test server receives any request while
//! wrk runs), spread round-robin over `projects × prs` pull requests, so each one queues a real
//! scan and supersedes the previous one of its PR. Bodies are GitHub's own `synchronize` example
//! (`@octokit/webhooks-examples`, about 23 KB) and, for the others, picket-vcs's fixtures written
//! from the providers' documentation (2.5–4 KB), with the repository, number and heads replaced.
//! wrk's Lua cannot compute an HMAC, so this module signs every body beforehand and writes the
//! body's parts and headers (`template`) and one line per delivery (`records`); `webhooks.lua`
//! rebuilds the same bytes and sends the signature made for them.
//!
//! Checks, failing the run: every answer 2xx and no socket error; every delivery Picket logged
//! queued a scan, one per distinct head; every PR has exactly one queued scan left (the others
//! superseded); the provider's test server received nothing during the runs.

use crate::forge::{azure_basic, fixture, Forge};
use crate::{bench_db, empty, start_api, with_bench_db, Provider};
use anyhow::{bail, ensure, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use picket_db::Db;
use picket_test_support::github::signature_256;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// GitHub's example payloads (npm `@octokit/webhooks-examples`, installed by
/// `make github-fixtures`).
const EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/github/node_modules/@octokit/webhooks-examples/api.github.com/index.json"
);
/// The wrk script that replays the signed deliveries.
const DRIVER: &str = include_str!("webhooks.lua");

/// The App installation every GitHub benchmark repository is reached through.
const INSTALLATION: u64 = 42_000_001;
/// The first benchmark repository's numeric id on GitHub and GitLab (the others follow).
const FIRST_REPO: u64 = 700_000_001;
/// Picket's default pool size (`DbConfig::new`); the baseline gets the same.
const POOL: u32 = 16;
/// Seconds of load before each measured run, not measured (pools filled, caches warm); at
/// most the run's own length.
const WARM_UP_SECS: u32 = 2;
/// Signed deliveries the baseline cycles through (it does not care whether they repeat).
const BARE_POOL: u64 = 2_000;
/// Time for requests in flight when wrk stopped to land.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// Fields of a record line, as the Lua script numbers them (1-based).
const F_ID: usize = 1;
const F_SIGNATURE: usize = 2;
const F_REPO: usize = 3;
const F_NUMBER: usize = 4;
const F_HEAD: usize = 5;
const F_BEFORE: usize = 6;

/// Markers in a body template: `(marker, field)`. A number's marker is a whole JSON string
/// (`"@@#N@@"`), replaced quotes and all; the others sit inside a string.
const MARKERS: [(&str, usize); 6] = [
    ("\"@@#R@@\"", F_REPO),
    ("\"@@#N@@\"", F_NUMBER),
    ("@@R@@", F_REPO),
    ("@@H@@", F_HEAD),
    ("@@B@@", F_BEFORE),
    ("@@D@@", F_ID),
];

/// A piece of a delivery's body: bytes as they are, or a field of the delivery's record.
#[derive(Debug)]
enum Part {
    Lit(String),
    Field(usize),
}

/// A request header: the same on every delivery, or a field of the delivery's record.
#[derive(Debug)]
enum Header {
    Fixed(&'static str, String),
    Field(&'static str, usize),
}

/// How one provider's deliveries look.
#[derive(Debug)]
struct Shape {
    /// The event, for the report.
    event: &'static str,
    parts: Vec<Part>,
    headers: Vec<Header>,
    /// The HMAC-SHA256 key each body is signed with (GitHub, Bitbucket).
    signing_key: Option<String>,
}

/// `provider`'s pull request delivery that pushes new code, with markers where the
/// delivery's own values go, and its headers; `secret` is what [`Forge::connect`] gave.
fn shape(provider: Provider, secret: &str) -> anyhow::Result<Shape> {
    let (repo, number, head, before, id) = ("@@R@@", "@@#N@@", "@@H@@", "@@B@@", "@@D@@");
    let (event, body, headers, signed) = match provider {
        Provider::Github => {
            let text = std::fs::read_to_string(EXAMPLES)
                .with_context(|| format!("{EXAMPLES} (run `make github-fixtures`)"))?;
            let doc: Value = serde_json::from_str(&text)?;
            let mut p = doc
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["name"] == "pull_request")
                .flat_map(|e| e["examples"].as_array().into_iter().flatten())
                .find(|x| x["action"] == "synchronize" && x.get("installation").is_some())
                .context("no pull_request synchronize example with an installation")?
                .clone();
            p["number"] = json!(number);
            p["pull_request"]["number"] = json!(number);
            p["pull_request"]["head"]["sha"] = json!(head);
            p["pull_request"]["base"]["ref"] = json!("main");
            for at in [
                "/pull_request/base/repo",
                "/pull_request/head/repo",
                "/repository",
            ] {
                p.pointer_mut(at).context(at)?["id"] = json!("@@#R@@");
            }
            p["installation"]["id"] = json!(INSTALLATION);
            p["before"] = json!(before);
            p["after"] = json!(head);
            let headers = vec![
                Header::Fixed("User-Agent", "GitHub-Hookshot/3c1a2f4".into()),
                Header::Fixed("X-GitHub-Event", "pull_request".into()),
                Header::Fixed("X-GitHub-Hook-ID", "7000001".into()),
                Header::Fixed("X-GitHub-Hook-Installation-Target-ID", "1".into()),
                Header::Fixed(
                    "X-GitHub-Hook-Installation-Target-Type",
                    "integration".into(),
                ),
                Header::Field("X-GitHub-Delivery", F_ID),
                Header::Field("X-Hub-Signature-256", F_SIGNATURE),
            ];
            ("`pull_request` `synchronize`", p, headers, true)
        }
        Provider::Gitlab => {
            let mut p = fixture("gitlab/merge_request_open.json")?;
            p["project"]["id"] = json!("@@#R@@");
            let mr = &mut p["object_attributes"];
            mr["action"] = json!("update");
            mr["iid"] = json!(number);
            mr["source_project_id"] = json!("@@#R@@");
            mr["target_project_id"] = json!("@@#R@@");
            mr["last_commit"]["id"] = json!(head);
            mr["oldrev"] = json!(before);
            let headers = vec![
                Header::Fixed("User-Agent", "GitLab/18.6.0".into()),
                Header::Fixed("X-Gitlab-Event", "Merge Request Hook".into()),
                Header::Fixed("X-Gitlab-Token", secret.to_owned()),
                Header::Field("Idempotency-Key", F_ID),
            ];
            (
                "`Merge Request Hook` `update` with `oldrev`",
                p,
                headers,
                false,
            )
        }
        Provider::Bitbucket => {
            let mut p = fixture("bitbucket/pullrequest_updated.json")?;
            p["repository"]["uuid"] = json!(repo);
            let pr = &mut p["pullrequest"];
            pr["id"] = json!(number);
            pr["source"]["commit"]["hash"] = json!(head);
            pr["source"]["repository"]["uuid"] = json!(repo);
            pr["destination"]["repository"]["uuid"] = json!(repo);
            let headers = vec![
                Header::Fixed("User-Agent", "Bitbucket-Webhooks/2.0".into()),
                Header::Fixed("X-Event-Key", "pullrequest:updated".into()),
                Header::Fixed("X-Attempt-Number", "1".into()),
                Header::Field("X-Request-UUID", F_ID),
                Header::Field("X-Hub-Signature", F_SIGNATURE),
            ];
            ("`pullrequest:updated`", p, headers, true)
        }
        Provider::Azure => {
            let mut p = fixture("azure/pullrequest_updated.json")?;
            p["id"] = json!(id);
            let pr = &mut p["resource"];
            pr["repository"]["id"] = json!(repo);
            pr["pullRequestId"] = json!(number);
            pr["lastMergeSourceCommit"]["commitId"] = json!(head);
            pr["commits"][0]["commitId"] = json!(head);
            let headers = vec![
                Header::Fixed("User-Agent", "VSServices/19.266.35912.2".into()),
                Header::Fixed("Authorization", azure_basic(secret)?),
            ];
            ("`git.pullrequest.updated`", p, headers, false)
        }
    };
    Ok(Shape {
        event,
        parts: cut(&body)?,
        headers,
        signing_key: signed.then(|| secret.to_owned()),
    })
}

/// `body`, compact as the providers send it, cut where its [`MARKERS`] are.
fn cut(body: &Value) -> anyhow::Result<Vec<Part>> {
    let mut rest = serde_json::to_string(body)?;
    let mut parts = Vec::new();
    while let Some((at, marker, field)) = MARKERS
        .iter()
        .filter_map(|(m, f)| rest.find(m).map(|at| (at, *m, *f)))
        .min_by_key(|(at, _, _)| *at)
    {
        parts.push(Part::Lit(rest[..at].to_owned()));
        parts.push(Part::Field(field));
        rest = rest[at + marker.len()..].to_owned();
    }
    parts.push(Part::Lit(rest));
    ensure!(
        parts
            .iter()
            .all(|p| !matches!(p, Part::Lit(s) if s.contains("@@"))),
        "a marker was left in the template"
    );
    Ok(parts)
}

/// Writes `shape` as `webhooks.lua` reads it: the headers, then the body's parts.
fn write_template(shape: &Shape, path: &Path) -> anyhow::Result<()> {
    let mut out = Vec::new();
    for h in &shape.headers {
        match h {
            Header::Fixed(name, value) => writeln!(out, "H {name} {value}")?,
            Header::Field(name, i) => writeln!(out, "F {name} {i}")?,
        }
    }
    for p in &shape.parts {
        match p {
            Part::Lit(s) => {
                writeln!(out, "L {}", s.len())?;
                out.extend_from_slice(s.as_bytes());
                out.push(b'\n');
            }
            Part::Field(i) => writeln!(out, "S {i}")?,
        }
    }
    std::fs::write(path, out)?;
    Ok(())
}

/// Benchmark repository `i`'s id as `provider` writes it: a number (GitHub, GitLab), a
/// `{uuid}` (Bitbucket), a GUID (Azure DevOps).
fn repo_id(provider: Provider, i: u32) -> String {
    let n = FIRST_REPO + u64::from(i);
    match provider {
        Provider::Github | Provider::Gitlab => n.to_string(),
        Provider::Bitbucket => format!("{{5d7c1e2a-9b3f-4c8e-a1d2-{n:012x}}}"),
        Provider::Azure => format!("7c4d2e91-3b6a-4f58-9e0d-{n:012x}"),
    }
}

/// The deliveries sent so far: heads are numbered across the whole benchmark, so no head and no
/// delivery id is ever sent twice.
struct Traffic {
    provider: Provider,
    shape: Shape,
    projects: u32,
    prs: u32,
    heads_made: u64,
    /// The last head sent per PR index: the next delivery's `before`.
    last_head: HashMap<u32, String>,
    /// The next PR index (round robin).
    next_pr: u32,
    body_bytes: usize,
}

impl Traffic {
    /// Writes `n` new signed deliveries to `path`, one line each.
    fn records(&mut self, n: u64, path: &Path) -> anyhow::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut body = Vec::with_capacity(32 * 1024);
        for _ in 0..n {
            let pr = self.next_pr;
            self.next_pr = (self.next_pr + 1) % (self.projects * self.prs);
            self.heads_made += 1;
            let head = format!("{:040x}", self.heads_made);
            let before = self
                .last_head
                .insert(pr, head.clone())
                .unwrap_or_else(|| "0".repeat(40));
            let repo = repo_id(self.provider, pr % self.projects);
            let number = (1 + pr / self.projects).to_string();
            let id = uuid::Uuid::new_v4().to_string();
            let fields = [id.as_str(), "", &repo, &number, &head, &before];
            body.clear();
            for p in &self.shape.parts {
                match p {
                    Part::Lit(s) => body.extend_from_slice(s.as_bytes()),
                    Part::Field(i) => body.extend_from_slice(fields[i - 1].as_bytes()),
                }
            }
            self.body_bytes = body.len();
            let signature = match &self.shape.signing_key {
                Some(key) => signature_256(key, &body),
                None => "-".to_owned(),
            };
            writeln!(out, "{id} {signature} {repo} {number} {head} {before}")?;
        }
        out.flush()?;
        Ok(())
    }
}

/// How wrk sends.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// Closed loop: each connection sends its next request as soon as the last is answered.
    Peak,
    /// At most this many requests/s in all, on a fixed schedule.
    Paced(f64),
}

/// One wrk run, from the script's `done` line.
#[derive(Debug, Default, Clone)]
struct WrkRun {
    rps: f64,
    sent: u64,
    ok: u64,
    bad: u64,
    wrapped: u64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    socket_errors: u64,
    /// Answers by status, e.g. `202:7812,503:3`.
    statuses: String,
    /// The first answer that was not 2xx, status and body.
    first_bad: Option<String>,
    /// CPU time per 2xx answer, ms: this process (the server under test) and PostgreSQL.
    cpu_app_ms: f64,
    cpu_pg_ms: f64,
}

impl WrkRun {
    fn parse(stdout: &str) -> anyhow::Result<WrkRun> {
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("picket-bench "))
            .with_context(|| format!("wrk printed no result line:\n{stdout}"))?;
        let kv: HashMap<&str, f64> = line
            .split_whitespace()
            .filter_map(|f| f.split_once('='))
            .filter_map(|(k, v)| v.parse().ok().map(|v| (k, v)))
            .collect();
        let get = |k: &str| {
            kv.get(k)
                .copied()
                .with_context(|| format!("no {k} in {line}"))
        };
        let ms = |k: &str| get(k).map(|us| us / 1000.0);
        Ok(WrkRun {
            rps: get("requests")? / (get("duration_us")? / 1e6),
            sent: get("sent")? as u64,
            ok: get("ok")? as u64,
            bad: get("bad")? as u64,
            wrapped: get("wrapped")? as u64,
            p50_ms: ms("p50_us")?,
            p90_ms: ms("p90_us")?,
            p99_ms: ms("p99_us")?,
            max_ms: ms("max_us")?,
            statuses: stdout
                .lines()
                .find_map(|l| l.strip_prefix("picket-bench-statuses "))
                .unwrap_or_default()
                .to_owned(),
            first_bad: stdout
                .lines()
                .find_map(|l| l.strip_prefix("picket-bench-first-bad "))
                .map(str::to_owned),
            cpu_app_ms: 0.0,
            cpu_pg_ms: 0.0,
            socket_errors: get("connect")? as u64
                + get("read")? as u64
                + get("write")? as u64
                + get("timeout")? as u64,
        })
    }

    /// Every request answered, 2xx, no socket error, and (`once`) no delivery sent twice.
    fn check(&self, label: &str, once: bool) -> anyhow::Result<()> {
        ensure!(
            self.bad == 0 && self.socket_errors == 0,
            "{label}: {} answers were not 2xx ({}; the first: {}) and {} socket errors \
             (connect, read, write, timeout)",
            self.bad,
            self.statuses,
            self.first_bad.as_deref().unwrap_or("-"),
            self.socket_errors
        );
        ensure!(self.ok > 0, "{label}: nothing was answered");
        if once && self.wrapped > 0 {
            bail!(
                "{label}: the signed deliveries ran out and were sent again; Picket outran the \
                 estimate made from the baseline (raise the margin in webhooks.rs)"
            );
        }
        Ok(())
    }
}

/// Files wrk reads.
struct Files {
    dir: tempfile::TempDir,
    script: PathBuf,
    template: PathBuf,
    records: usize,
}

impl Files {
    fn records(&mut self) -> PathBuf {
        self.records += 1;
        self.dir
            .path()
            .join(format!("records-{}.txt", self.records))
    }
}

/// Where and how wide wrk sends.
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    url: &'a str,
    threads: u32,
    connections: u32,
}

/// Runs wrk for `seconds` against `to` with `records`.
async fn wrk(
    files: &Files,
    records: &Path,
    to: Target<'_>,
    seconds: u32,
    load: Load,
    wrap: bool,
) -> anyhow::Result<WrkRun> {
    let (mode, rate) = match load {
        Load::Peak => ("peak", 0.0),
        Load::Paced(r) => ("paced", r),
    };
    let out = tokio::process::Command::new("wrk")
        .args(["-t", &to.threads.to_string()])
        .args(["-c", &to.connections.to_string()])
        .args(["-d", &format!("{seconds}s")])
        .args(["--timeout", "10s", "-s"])
        .arg(&files.script)
        .arg(to.url)
        .arg("--")
        .arg(records)
        .arg(&files.template)
        .arg(to.threads.to_string())
        .arg(mode)
        .arg(format!("{rate:.3}"))
        .arg(if wrap { "wrap" } else { "once" })
        .output()
        .await
        .context("running wrk (make bench-tools)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    WrkRun::parse(&stdout)
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat` (`utime` and
/// `stime`, in clock ticks of 1/100 s, Linux's `USER_HZ` on every architecture it ships).
fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at `state`, field 3.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds used so far by this process and by the PostgreSQL processes that serve the
/// benchmark's database: its backends (the pools of Picket and of the baseline: the one not
/// under test is idle) and the server's WAL writer, checkpointer and background writer.
async fn cpu_now(db: &Db) -> anyhow::Result<(f64, f64)> {
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE (datname = current_database() AND backend_type IN ('client backend', 'autovacuum worker'))
            OR backend_type IN ('walwriter', 'checkpointer', 'background writer')",
    )
    .fetch_all(db.pool())
    .await?;
    let pg = pids.iter().map(|p| cpu_secs(&p.to_string())).sum();
    Ok((cpu_secs("self"), pg))
}

/// A measured run: a checkpoint first (so that none falls into one runner's run and not the
/// other's), then wrk, with the CPU both sides used per answer.
async fn measured(
    db: &Db,
    files: &Files,
    records: &Path,
    to: Target<'_>,
    seconds: u32,
    load: Load,
    wrap: bool,
) -> anyhow::Result<WrkRun> {
    checkpoint(db).await?;
    let (app0, pg0) = cpu_now(db).await?;
    let mut run = wrk(files, records, to, seconds, load, wrap).await?;
    let (app1, pg1) = cpu_now(db).await?;
    let answers = run.ok.max(1) as f64;
    run.cpu_app_ms = (app1 - app0) * 1e3 / answers;
    run.cpu_pg_ms = (pg1 - pg0) * 1e3 / answers;
    Ok(run)
}

/// The baseline: one `INSERT` of the body per request, autocommitted.
async fn bare_insert(State(pool): State<PgPool>, headers: HeaderMap, body: Bytes) -> StatusCode {
    // The delivery's id where the provider sends one in a header (Azure DevOps: none).
    let delivery = ["x-github-delivery", "idempotency-key", "x-request-uuid"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok());
    let inserted =
        sqlx::query("INSERT INTO bench_bare_deliveries (delivery_id, body) VALUES ($1, $2)")
            .bind(delivery)
            .bind(body.as_ref())
            .execute(&pool)
            .await;
    match inserted {
        Ok(_) => StatusCode::ACCEPTED,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Starts the baseline on 127.0.0.1:0, its own pool of [`POOL`] connections to `url`; returns
/// its webhook URL (the path `provider`'s deliveries go to).
async fn start_bare(
    url: &str,
    provider: Provider,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let pool = PgPoolOptions::new()
        .max_connections(POOL)
        .connect(url)
        .await?;
    sqlx::query(
        "CREATE TABLE bench_bare_deliveries (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             delivery_id text,
             body bytea COMPRESSION lz4 NOT NULL)",
    )
    .execute(&pool)
    .await?;
    let router = axum::Router::new()
        .route(
            "/webhooks/{provider}/{connection}",
            axum::routing::post(bare_insert),
        )
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!(
        "http://{}/webhooks/{}/{}",
        listener.local_addr()?,
        provider.route(),
        uuid::Uuid::nil()
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((base, server))
}

/// What Picket's database holds after a run, for the checks.
#[derive(Debug, Default, Clone, Copy)]
struct Ledger {
    deliveries: i64,
    queued_outcomes: i64,
    scans: i64,
    heads: i64,
    superseded: i64,
}

async fn ledger(db: &Db, after_delivery: i64) -> anyhow::Result<Ledger> {
    let (deliveries, queued_outcomes, scans, heads): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE d.outcome = 'scan_queued'),
                count(s.id), count(DISTINCT s.commit_sha)
         FROM webhook_deliveries d LEFT JOIN scans s ON s.id = d.scan_id
         WHERE d.id > $1",
    )
    .bind(after_delivery)
    .fetch_one(db.pool())
    .await?;
    let superseded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scans WHERE error_code = 'superseded'")
            .fetch_one(db.pool())
            .await?;
    Ok(Ledger {
        deliveries,
        queued_outcomes,
        scans,
        heads,
        superseded,
    })
}

async fn last_delivery(db: &Db) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM webhook_deliveries")
            .fetch_one(db.pool())
            .await?,
    )
}

/// Every delivery Picket logged queued its own scan of its own head, none was refused, and each
/// PR is left with exactly one queued scan.
async fn check_ledger(db: &Db, label: &str, run: &WrkRun, l: &Ledger) -> anyhow::Result<()> {
    ensure!(
        l.deliveries == l.queued_outcomes && l.scans == l.deliveries && l.heads == l.scans,
        "{label}: {} deliveries logged, {} scan_queued, {} scans, {} distinct heads",
        l.deliveries,
        l.queued_outcomes,
        l.scans,
        l.heads
    );
    // Requests in flight when wrk stopped may or may not have been taken.
    ensure!(
        run.ok as i64 <= l.deliveries && l.deliveries <= run.sent as i64,
        "{label}: {} answered 2xx, {} sent, but {} deliveries logged",
        run.ok,
        run.sent,
        l.deliveries
    );
    let crowded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM scans WHERE trigger = 'pull_request' AND state = 'queued'
                               GROUP BY project_id, pr_number HAVING count(*) > 1) x",
    )
    .fetch_one(db.pool())
    .await?;
    ensure!(
        crowded == 0,
        "{label}: {crowded} PRs have more than one queued scan"
    );
    Ok(())
}

async fn checkpoint(db: &Db) -> anyhow::Result<()> {
    sqlx::query("CHECKPOINT").execute(db.pool()).await?;
    Ok(())
}

fn ms(v: f64) -> String {
    format!("{v:.2} ms")
}

/// Records for a run expected to answer about `rate` requests/s for `seconds`, with room.
fn enough(rate: f64, seconds: u32) -> u64 {
    (rate * f64::from(seconds) * 1.5) as u64 + 500
}

/// Runs the benchmark for `provider` on a database of its own on `admin_url`'s server and
/// prints its tables (Markdown): one wrk run per entry of `connections` for each runner,
/// `seconds` long, then both paced at half of Picket's peak. Fails when a check of the module
/// docs fails.
pub async fn webhooks_bench(
    admin_url: &str,
    provider: Provider,
    seconds: u32,
    connections: &[u32],
    projects: u32,
    prs: u32,
) -> anyhow::Result<()> {
    ensure!(!connections.is_empty(), "give at least one --connections");
    ensure!(projects >= 1 && prs >= 1, "at least one project and one PR");
    let label = format!("webhooks_{provider}");
    with_bench_db(admin_url, &label, |url| async move {
        let db = bench_db(&url, POOL).await?;
        let (api, token, server) = start_api(&db).await?;
        // For the connection's credentials only: the receiver must not call the provider.
        let forge = Forge::start(provider).await;
        let conn = forge.connect(&api, &token, "bench").await?;
        let http = reqwest::Client::new();
        let repos: Vec<Value> = (0..projects)
            .map(|i| {
                let id = repo_id(provider, i);
                json!({
                    "connection_id": conn.id, "provider_repo_id": id,
                    "full_name": format!("{}/repo-{i}", crate::forge::OWNER),
                    "clone_url": format!("https://git.example.test/acme/repo-{i}.git"),
                    "default_branch": "main",
                })
            })
            .collect();
        http.post(format!("{api}/api/v1/projects"))
            .bearer_auth(&token)
            .json(&json!({ "projects": repos }))
            .send()
            .await?
            .error_for_status()
            .context("adding the projects")?;
        if provider == Provider::Github {
            // The projects know their installation, as when the installation's own webhook
            // added them. Added through `POST /api/v1/projects` they do not, and the first
            // delivery of a project then records it, once: not the steady state measured here.
            sqlx::query("UPDATE projects SET provider_installation_id = $1 WHERE connection_id = $2::uuid")
                .bind(INSTALLATION.to_string())
                .bind(conn.id)
                .execute(db.pool())
                .await?;
        }
        let picket_url = format!("{api}{}", conn.hook_path);
        let (bare_url, bare) = start_bare(&url, provider).await?;
        let asked_before = forge.request_count();

        let dir = tempfile::tempdir()?;
        let mut files = Files {
            script: dir.path().join("webhooks.lua"),
            template: dir.path().join("template.txt"),
            dir,
            records: 0,
        };
        std::fs::write(&files.script, DRIVER)?;
        let shape = shape(provider, &conn.secret)?;
        write_template(&shape, &files.template)?;
        let event = shape.event;
        let mut traffic = Traffic {
            provider,
            shape,
            projects,
            prs,
            heads_made: 0,
            last_head: HashMap::new(),
            next_pr: 0,
            body_bytes: 0,
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;

        // The baseline cycles through one set of deliveries; Picket gets new ones every run, as
        // many as it could answer at 1.5 times the baseline's rate.
        let pool = files.records();
        traffic.records(BARE_POOL, &pool)?;
        let warm_up = WARM_UP_SECS.min(seconds);
        let mut rows = Vec::new();
        let mut checks = Vec::new();
        for &c in connections {
            let threads = cores.min(c);
            let bare_to = Target { url: &bare_url, threads, connections: c };
            let picket_to = Target { url: &picket_url, threads, connections: c };
            // Every row starts from the same state: no deliveries, no scans. (A project's scan
            // history slows Picket's supersede step: docs/benchmarks.md.)
            empty(&db, "webhook_deliveries, scans, bench_bare_deliveries").await?;
            wrk(&files, &pool, bare_to, warm_up, Load::Peak, true).await?;
            let bare_run = measured(&db, &files, &pool, bare_to, seconds, Load::Peak, true).await?;
            bare_run.check("baseline", false)?;

            let warm = files.records();
            traffic.records(enough(bare_run.rps, warm_up), &warm)?;
            wrk(&files, &warm, picket_to, warm_up, Load::Peak, false).await?;
            // Requests in flight when wrk stopped land before the next count.
            tokio::time::sleep(SETTLE).await;
            let records = files.records();
            traffic.records(enough(bare_run.rps, seconds), &records)?;
            let mark = last_delivery(&db).await?;
            let before = ledger(&db, i64::MAX).await?;
            let run = measured(&db, &files, &records, picket_to, seconds, Load::Peak, false).await?;
            let label = format!("Picket, {c} connections");
            run.check(&label, true)?;
            tokio::time::sleep(SETTLE).await;
            let after = ledger(&db, mark).await?;
            check_ledger(&db, &label, &run, &after).await?;
            checks.push((label, run.clone(), after, after.superseded - before.superseded));
            rows.push((c, threads, bare_run, run));
        }
        // Half of Picket's peak, paced, with the connection count of that peak.
        let (peak_c, peak_threads, peak_bare, peak) = rows
            .iter()
            .max_by(|a, b| a.3.rps.total_cmp(&b.3.rps))
            .cloned()
            .context("no run")?;
        let half = peak.rps / 2.0;
        let records = files.records();
        traffic.records(enough(half, seconds), &records)?;
        empty(&db, "webhook_deliveries, scans").await?;
        let mark = last_delivery(&db).await?;
        let before = ledger(&db, i64::MAX).await?;
        let (picket_to, bare_to) = (
            Target { url: &picket_url, threads: peak_threads, connections: peak_c },
            Target { url: &bare_url, threads: peak_threads, connections: peak_c },
        );
        let paced = measured(
            &db,
            &files,
            &records,
            picket_to,
            seconds,
            Load::Paced(half),
            false,
        )
        .await?;
        let label = format!("Picket, paced at {half:.0} requests/s");
        paced.check(&label, true)?;
        tokio::time::sleep(SETTLE).await;
        let after = ledger(&db, mark).await?;
        check_ledger(&db, &label, &paced, &after).await?;
        checks.push((label, paced.clone(), after, after.superseded - before.superseded));
        let bare_paced =
            measured(&db, &files, &pool, bare_to, seconds, Load::Paced(half), true).await?;
        bare_paced.check("baseline, paced", false)?;
        let history: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM scans GROUP BY project_id) x",
        )
        .fetch_one(db.pool())
        .await?;

        let mut out = String::new();
        let asked = forge.request_count() - asked_before;
        ensure!(
            asked == 0,
            "the receiver sent {asked} requests to {}'s test server during the runs",
            provider.title()
        );
        forge.check()?;
        writeln!(
            out,
            "### Webhook ingest, {}: {event} deliveries of {} bytes, {projects} projects × {prs} PRs, wrk {seconds} s per row\n",
            provider.title(),
            traffic.body_bytes
        )?;
        writeln!(out, "| connections | runner | requests/s | p50 | p99 | CPU per request: server process | CPU per request: PostgreSQL | ratio |")?;
        writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|")?;
        for (c, _, b, p) in &rows {
            for (name, r) in [("bare INSERT", b), ("Picket", p)] {
                writeln!(
                    out,
                    "| {c} | {name} | {:.0} | {} | {} | {} | {} | {:.2} |",
                    r.rps,
                    ms(r.p50_ms),
                    ms(r.p99_ms),
                    ms(r.cpu_app_ms),
                    ms(r.cpu_pg_ms),
                    r.rps / b.rps
                )?;
            }
        }
        let best_bare = rows
            .iter()
            .map(|r| r.2.rps)
            .fold(0.0, f64::max);
        writeln!(
            out,
            "\nPeak: Picket {:.0} req/s ({peak_c} connections), bare INSERT {best_bare:.0} req/s: **{:.2}×** (at {peak_c} connections: {:.2}×).\n",
            peak.rps,
            peak.rps / best_bare,
            peak.rps / peak_bare.rps
        )?;
        writeln!(out, "#### At half of Picket's peak ({half:.0} requests/s, paced in wrk's Lua, {peak_c} connections)\n")?;
        writeln!(out, "| runner | achieved req/s | p50 | p90 | p99 | max | CPU per request: server process | CPU per request: PostgreSQL |")?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for (name, r) in [("bare INSERT", &bare_paced), ("Picket", &paced)] {
            writeln!(
                out,
                "| {name} | {:.0} | {} | {} | {} | {} | {} | {} |",
                r.rps,
                ms(r.p50_ms),
                ms(r.p90_ms),
                ms(r.p99_ms),
                ms(r.max_ms),
                ms(r.cpu_app_ms),
                ms(r.cpu_pg_ms)
            )?;
        }
        writeln!(out, "\n#### What Picket did with them\n")?;
        writeln!(out, "| run | sent | answered 2xx | other answers, socket errors | deliveries logged | scans queued | distinct heads | scans superseded |")?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for (label, r, l, superseded) in &checks {
            writeln!(
                out,
                "| {label} | {} | {} | {}, {} | {} | {} | {} | {superseded} |",
                r.sent, r.ok, r.bad, r.socket_errors, l.deliveries, l.scans, l.heads
            )?;
        }
        writeln!(
            out,
            "\nEvery answer of every run was 2xx. Each row starts on emptied tables; at the end of the last run the busiest project had {history} scans.\n"
        )?;
        println!("{out}");
        server.abort();
        bare.abort();
        Ok(())
    })
    .await
}
