//! What every provider's pull request feedback test shares (`pr_feedback` for GitHub,
//! `gitlab_feedback`, `bitbucket_feedback`, `azure_feedback`): the sample application and its
//! findings, real git repositories, and a [`Rig`]: the API and the scheduler as `picket
//! scheduler` runs them, starting this build's `picket worker` as plain processes with the pinned
//! Semgrep and Picket's pack. Only the provider's test server and its webhook differ.

use picket_db::Db;
use picket_scheduler::pr_checks::PrCheckConfig;
use picket_scheduler::process::ProcessExecutor;
use picket_scheduler::{SchedulerConfig, WorkerCommand};
use picket_tests::{picket_binary, semgrep_binary, TestApp, RULES_DIR};
use serde_json::json;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub(crate) const BLOCK_RULE: &str = "picket.python.code-injection";
pub(crate) const COMMENT_RULE: &str = "picket.python.weak-hash";
/// Left at the default mode, Monitor: stored, never shown on the PR.
pub(crate) const MONITOR_RULE: &str = "picket.python.command-injection";

/// The first head: a Comment finding on line 6, a Block finding on line 10, a Monitor finding
/// on line 14.
pub(crate) const APP_V1: &str = "import hashlib\nimport os\n\n\ndef digest(data):\n    return hashlib.md5(data).hexdigest()\n\n\ndef run(expr):\n    return eval(expr)\n\n\ndef shell(cmd):\n    os.system(\"ls \" + cmd)\n";
/// The second head fixes the Block finding (line 10) and keeps the others where they were.
pub(crate) const APP_V2: &str = "import hashlib\nimport os\n\n\ndef digest(data):\n    return hashlib.md5(data).hexdigest()\n\n\ndef run(expr):\n    return int(expr)\n\n\ndef shell(cmd):\n    os.system(\"ls \" + cmd)\n";
/// ...and adds two new Block findings, on lines 2 and 6 of another file.
pub(crate) const MORE: &str =
    "def load(text):\n    return eval(text)\n\n\ndef load_all(texts):\n    return [eval(t) for t in texts]\n";

/// The rule whose id `body` (a comment Picket wrote) names.
pub(crate) fn rule_in(body: &str) -> &'static str {
    [BLOCK_RULE, COMMENT_RULE, MONITOR_RULE]
        .into_iter()
        .find(|r| body.contains(r))
        .unwrap_or_else(|| panic!("no known rule in {body}"))
}

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub(crate) fn commit(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (path, content) in files {
        std::fs::write(dir.join(path), content).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// Every line number of `text` (a new file's diff).
pub(crate) fn lines(text: &str) -> Vec<u64> {
    (1..=text.lines().count() as u64).collect()
}

/// Waits (up to 60 s) for `probe` to give something.
pub(crate) async fn until<T, F, Fut>(mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The API, a git repository `app` with one commit on `main`, and the scheduler.
pub(crate) struct Rig {
    pub app: TestApp,
    dir: tempfile::TempDir,
    name: &'static str,
    pub stop: CancellationToken,
    scheduler: Option<tokio::task::JoinHandle<()>>,
}

impl Rig {
    /// The API on `pool` and the repository; the scheduler (`name` is its holder name) is not
    /// started yet.
    pub async fn new(pool: PgPool, name: &'static str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("app");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        commit(&repo, &[("README.md", "# app\n")], "base");
        Rig {
            app: TestApp::start(pool).await,
            dir,
            name,
            stop: CancellationToken::new(),
            scheduler: None,
        }
    }

    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("app")
    }

    /// The repository's `file://` URL, which the worker may clone under
    /// `PICKET_ALLOW_LOCAL_REPOS`, as under `picket run`.
    pub fn clone_url(&self) -> String {
        reqwest::Url::from_file_path(self.repo())
            .unwrap()
            .to_string()
    }

    /// `BLOCK_RULE` in Block mode and `COMMENT_RULE` in Comment mode; the rest stays Monitor.
    pub async fn block_and_comment(&self) {
        self.app
            .admin()
            .put(
                "/api/v1/policies/team",
                json!({"rules": {BLOCK_RULE: "block", COMMENT_RULE: "comment"}}),
            )
            .await
            .expect(201);
    }

    /// The scheduler as `picket scheduler` runs it, with this build's worker as plain
    /// processes, fast loops, and no reconcile sweep (every scan here comes from a webhook).
    pub async fn start_scheduler(&mut self) {
        let installation = picket_db::installation::id(&self.app.pool).await.unwrap();
        let semgrep = std::fs::canonicalize(semgrep_binary()).unwrap();
        let worker = WorkerCommand {
            program: picket_binary(),
            args: vec!["worker".into()],
            env: vec![
                ("PICKET_API_URL".into(), self.app.base.clone()),
                ("PICKET_SEMGREP".into(), semgrep.display().to_string()),
                ("PICKET_RULES_DIR".into(), RULES_DIR.into()),
                ("PICKET_ALLOW_LOCAL_REPOS".into(), "true".into()),
            ],
        };
        let mut cfg = SchedulerConfig::new(self.name);
        cfg.slots = 2;
        cfg.poll = Duration::from_millis(100);
        cfg.providers = Some(self.registry());
        cfg.reconcile.every = Duration::ZERO;
        cfg.pr_checks = PrCheckConfig {
            idle: Duration::from_millis(100),
            recheck: Duration::from_millis(300),
            public_url: Some("https://picket.example".into()),
        };
        self.scheduler = Some(tokio::spawn(picket_scheduler::run(
            Db::from_pool(self.app.pool.clone()),
            ProcessExecutor::new(installation, worker),
            cfg,
            self.stop.clone(),
        )));
    }

    /// The provider registry the control plane uses, over the connections' stored credentials.
    pub fn registry(&self) -> Arc<picket_vcs::Registry> {
        Arc::new(picket_vcs::Registry::new(
            Arc::new(picket_db::connections::CredentialStore::new(
                self.app.pool.clone(),
                Arc::new(self.app.cipher()),
            )),
            picket_vcs::client::ClientOptions::new(picket_vcs::github::DEFAULT_API_URL),
        ))
    }

    /// Stops the scheduler (and its loops) and waits for it; [`Rig::start_scheduler`] starts
    /// it again.
    pub async fn stop_scheduler(&mut self) {
        self.stop.cancel();
        if let Some(s) = self.scheduler.take() {
            s.await.unwrap();
        }
        self.stop = CancellationToken::new();
    }

    /// Only the PR check loop, until [`Rig::stop_scheduler`].
    pub fn start_check_loop(&mut self) {
        assert!(self.scheduler.is_none(), "the scheduler runs its own");
        self.scheduler = Some(tokio::spawn(picket_scheduler::pr_checks::run(
            Db::from_pool(self.app.pool.clone()),
            self.registry(),
            PrCheckConfig::default(),
            self.stop.clone(),
        )));
    }

    /// A scan's state and error code, by head commit.
    pub async fn scan_of(&self, head: &str) -> (String, Option<String>) {
        sqlx::query_as("SELECT state::text, error_code FROM scans WHERE commit_sha = $1")
            .bind(head)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    /// Waits (up to 120 s) for the scan of `head` to be in `state`.
    pub async fn until_scan(&self, head: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.scan_of(head).await.0 != state {
            assert!(
                Instant::now() < deadline,
                "{head} never {state}: {}",
                self.diagnosis().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the full scan `picket` queues when a project is added, so that the next scan
    /// the scheduler starts is the PR's.
    pub async fn until_full_scan_done(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state::text FROM scans WHERE kind = 'full'")
                    .fetch_optional(&self.app.pool)
                    .await
                    .unwrap();
            if state.as_deref() == Some("succeeded") {
                return;
            }
            assert!(Instant::now() < deadline, "the full scan is {state:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The scans, PR checks and triage requests, for a failure message.
    pub async fn diagnosis(&self) -> String {
        let mut out = String::new();
        for (table, columns) in [
            (
                "scans",
                "kind, commit_sha, state, error_code, error_message",
            ),
            (
                "pr_checks",
                "shown, last_error, feedback_outcome, feedback IS NOT NULL AS begun",
            ),
            (
                "triage_requests",
                "comment_id, parent_comment_id, state, outcome, last_error",
            ),
        ] {
            let rows: String = sqlx::query_scalar(&format!(
                "SELECT coalesce(jsonb_pretty(jsonb_agg(t)), '[]') FROM (SELECT {columns} FROM {table}) t"
            ))
            .fetch_one(&self.app.pool)
            .await
            .unwrap();
            out.push_str(&format!("{table}: {rows}\n"));
        }
        out
    }

    /// The `posted_by` of the one PR check whose feedback has an outcome, waiting (up to 10 s)
    /// for the transaction that records it.
    pub async fn feedback_posted_by(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let row: Option<String> = sqlx::query_scalar(
                "SELECT feedback_outcome->>'posted_by' FROM pr_checks
                 WHERE feedback_outcome IS NOT NULL",
            )
            .fetch_optional(&self.app.pool)
            .await
            .unwrap();
            match row {
                Some(by) => return by,
                None if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                None => panic!("the feedback's outcome was never recorded"),
            }
        }
    }

    /// Makes every PR check's fail-open deadline due now, as if the org's time had passed.
    pub async fn pass_fail_open_deadline(&self) {
        sqlx::query("UPDATE pr_checks SET fail_open_at = now(), next_attempt_at = now()")
            .execute(&self.app.pool)
            .await
            .unwrap();
    }

    /// Stops the scheduler for good.
    pub async fn finish(mut self) {
        self.stop_scheduler().await;
    }
}

impl Rig {
    /// Adds the repository as a project of connection `conn` (by its API answer), as `picket
    /// run` adds one: a `file://` project, which the API refuses outside its sandbox directories.
    pub async fn add_project(
        &self,
        conn: &serde_json::Value,
        provider_repo_id: &str,
        name: &str,
    ) -> picket_core::ProjectId {
        let mut tx = self.app.pool.begin().await.unwrap();
        let added = picket_db::projects::add_many(
            &mut tx,
            self.app.org_id,
            &[picket_db::projects::NewProject {
                connection_id: picket_tests::id_of(conn)
                    .parse::<uuid::Uuid>()
                    .unwrap()
                    .into(),
                provider_repo_id: provider_repo_id.into(),
                full_name: name.into(),
                clone_url: self.clone_url(),
                default_branch: "main".into(),
            }],
            None,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap()
        .expect("the project is added");
        tx.commit().await.unwrap();
        added[0].project.id
    }
}

/// Makes `$world` (a struct with a `rig: Rig` field) stand for its rig, as [`PrWorld`] wants.
macro_rules! world_derefs_to_rig {
    ($world:ty) => {
        impl std::ops::Deref for $world {
            type Target = $crate::feedback::Rig;
            fn deref(&self) -> &$crate::feedback::Rig {
                &self.rig
            }
        }

        impl std::ops::DerefMut for $world {
            fn deref_mut(&mut self) -> &mut $crate::feedback::Rig {
                &mut self.rig
            }
        }
    };
}
pub(crate) use world_derefs_to_rig;

/// Picket's verdict on a head, as the provider shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not finished yet (queued, pending, in progress).
    Pending,
    Passed,
    Failed,
    /// Finished otherwise (cancelled, superseded: GitHub's `neutral`, GitLab's `canceled`).
    Other(String),
}

/// A head's check as the provider shows it: its verdict and every text it carries.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub verdict: Verdict,
    pub text: String,
}

/// One of Picket's threads on a line of the pull request.
#[derive(Debug, Clone)]
pub(crate) struct LineThread {
    /// The provider's id of the thread.
    pub id: String,
    pub path: String,
    pub line: Option<u64>,
    /// Its first comment's text.
    pub body: String,
    pub resolved: bool,
}

impl LineThread {
    pub fn rule(&self) -> &'static str {
        rule_in(&self.body)
    }
}

/// A pull request (merge request) on one provider, driven the way that provider drives Picket:
/// what a provider's feedback test implements so the scenarios below run on it unchanged.
/// The repository's branch `feature` holds the heads; every method that delivers a webhook
/// asserts the delivery's answer.
pub(crate) trait PrWorld: std::ops::DerefMut<Target = Rig> {
    /// Opens the pull request from `feature` at `head` into `main` (the provider's record, its
    /// refs, the lines of `files` as its diff) and delivers its "opened" event.
    async fn open(&self, delivery: &str, head: &str, files: &[(&str, &str)]);
    /// Moves the pull request to `head` and delivers the provider's push event.
    async fn push(&self, delivery: &str, head: &str, files: &[(&str, &str)]);
    /// Delivers an update that changes no commit (a title, a reviewer); answers its outcome
    /// code, which must be a 200.
    async fn edit_metadata(&self, delivery: &str) -> String;
    /// The check of `head` as the provider shows it now, if there is one.
    fn check(&self, head: &str) -> Option<Check>;
    /// Picket's threads on lines, oldest first.
    fn threads(&self) -> Vec<LineThread>;
    /// Picket's summary comments.
    fn summaries(&self) -> Vec<String>;
    /// A user with write access answers `thread` with `text` on the provider, and the provider
    /// delivers its comment event, which must queue a triage request.
    async fn reply(&self, delivery: &str, thread: &LineThread, text: &str);
    /// The comments of `thread` after the first and the user's reply: Picket's answers.
    fn answers(&self, thread: &LineThread) -> Vec<String>;
    /// Every request to the provider that broke its route table.
    fn violations(&self) -> Vec<String>;
    /// The requests the provider received, one line each, for failure messages.
    fn request_log(&self) -> Vec<String>;

    /// The finished check of `head`, waiting (up to 150 s) for it.
    async fn finished_check(&self, head: &str) -> Check {
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            match self.check(head) {
                Some(c) if c.verdict != Verdict::Pending => return c,
                seen => assert!(
                    Instant::now() < deadline,
                    "no finished check for {head}: {seen:?}\n{}\nrequests: {:#?}",
                    self.diagnosis().await,
                    self.request_log()
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Opened → a failing check, a thread per commented finding on its line, one summary; a push
/// that fixes one finding and adds two → one thread resolved, two added, none duplicated, the
/// summary edited in place; a metadata-only update → nothing queued; a reply → triaged and
/// answered in the thread.
pub(crate) async fn opened_pushed_and_triaged(w: &mut impl PrWorld) {
    let repo = w.repo();
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    let head1 = commit(&repo, &[("app.py", APP_V1)], "add app");
    w.open("d-open", &head1, &[("app.py", APP_V1)]).await;

    // A new Block finding fails the check; one thread per commented finding, on its line of the
    // new file; none for Monitor; one summary.
    assert_eq!(w.finished_check(&head1).await.verdict, Verdict::Failed);
    let first = w.threads();
    let placed: Vec<(&str, Option<u64>, &str)> = first
        .iter()
        .map(|t| (t.path.as_str(), t.line, t.rule()))
        .collect();
    assert_eq!(
        placed,
        [
            ("app.py", Some(10), BLOCK_RULE),
            ("app.py", Some(6), COMMENT_RULE)
        ]
    );
    let summaries = w.summaries();
    assert_eq!(summaries.len(), 1, "{summaries:#?}");
    let first_summary = summaries[0].clone();

    // A push fixes the Block finding and adds two in more.py.
    let head2 = commit(
        &repo,
        &[("app.py", APP_V2), ("more.py", MORE)],
        "fix run, add load",
    );
    w.push("d-push", &head2, &[("app.py", APP_V2), ("more.py", MORE)])
        .await;
    assert_eq!(w.finished_check(&head2).await.verdict, Verdict::Failed);
    let after = w.threads();
    assert_eq!(after.len(), 4, "two added, none duplicated: {after:#?}");
    let thread = |id: &str| after.iter().find(|t| t.id == id).unwrap();
    assert!(
        thread(&first[0].id).resolved,
        "the fixed finding's thread is resolved"
    );
    assert!(
        !thread(&first[1].id).resolved,
        "the remaining finding's thread stays open"
    );
    let added: Vec<(&str, Option<u64>, &str)> = after
        .iter()
        .filter(|t| t.id != first[0].id && t.id != first[1].id)
        .map(|t| (t.path.as_str(), t.line, t.rule()))
        .collect();
    assert_eq!(
        added,
        [
            ("more.py", Some(2), BLOCK_RULE),
            ("more.py", Some(6), BLOCK_RULE)
        ]
    );
    let summaries = w.summaries();
    assert_eq!(summaries.len(), 1, "the summary is edited in place");
    assert_ne!(summaries[0], first_summary);
    assert!(summaries[0].contains("3 new findings"), "{}", summaries[0]);

    // An update that moves no commit queues nothing.
    let scans = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM scans WHERE kind = 'diff'")
            .fetch_one(&w.app.pool)
            .await
            .unwrap()
    };
    let before = scans().await;
    let outcome = w.edit_metadata("d-edit").await;
    assert_eq!(scans().await, before, "{outcome} queued a scan");

    // A user with write access answers the Comment finding's thread with a triage command.
    let target = thread(&first[1].id).clone();
    w.reply("d-reply", &target, "/fp the input is a constant")
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        if let Some(a) = w.answers(&target).into_iter().next() {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no answer in the thread\n{}\nrequests: {:#?}",
            w.diagnosis().await,
            w.request_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(answer.to_lowercase().contains("false positive"), "{answer}");
    let (status, reason): (String, Option<String>) = sqlx::query_as(
        "SELECT status::text, triage_reason FROM findings WHERE rule_id = $1 AND path = 'app.py'",
    )
    .bind(COMMENT_RULE)
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(status, "ignored");
    assert!(reason.unwrap_or_default().contains("constant"));

    finish(w).await;
}

/// Two pushes before any scan ran: the first head's scan is superseded and never posts; the
/// second's findings are a Comment one (a thread, and the check passes) and a Monitor one
/// (never shown).
pub(crate) async fn a_superseded_scan_never_posts_and_comment_findings_pass(w: &mut impl PrWorld) {
    w.stop_scheduler().await;
    let repo = w.repo();
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    let head1 = commit(&repo, &[("app.py", APP_V1)], "add app");
    w.open("d-open", &head1, &[("app.py", APP_V1)]).await;
    let head2 = commit(&repo, &[("app.py", APP_V2)], "fix run");
    w.push("d-push", &head2, &[("app.py", APP_V2)]).await;
    assert_eq!(
        w.scan_of(&head1).await,
        ("cancelled".to_owned(), Some("superseded".to_owned()))
    );
    w.start_scheduler().await;
    let check = w.finished_check(&head2).await;
    assert_eq!(check.verdict, Verdict::Passed, "{check:#?}");
    let threads = until(|| async { Some(w.threads()).filter(|t| !t.is_empty()) }).await;
    // Give a worker for the superseded head time to have posted, had one been started.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let threads_now = w.threads();
    assert_eq!(threads_now.len(), threads.len());
    let placed: Vec<(&str, Option<u64>, &str)> = threads_now
        .iter()
        .map(|t| (t.path.as_str(), t.line, t.rule()))
        .collect();
    assert_eq!(placed, [("app.py", Some(6), COMMENT_RULE)]);
    assert_eq!(w.summaries().len(), 1);
    assert!(
        w.check(&head1).is_none_or(|c| c.verdict != Verdict::Failed),
        "{:?}",
        w.check(&head1)
    );
    finish(w).await;
}

/// No scan ran by the org's deadline: the check passes, saying why; the scan runs late and its
/// findings are commented, but the check stays as it was.
pub(crate) async fn past_the_deadline_the_check_passes_and_late_results_only_comment(
    w: &mut impl PrWorld,
) {
    w.stop_scheduler().await;
    let repo = w.repo();
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    let head = commit(&repo, &[("app.py", APP_V1)], "add app");
    w.open("d-open", &head, &[("app.py", APP_V1)]).await;
    w.pass_fail_open_deadline().await;
    w.start_check_loop();
    let check = w.finished_check(&head).await;
    assert_eq!(check.verdict, Verdict::Passed, "{check:#?}");
    assert!(check.text.contains("Picket did not finish"), "{check:#?}");
    w.stop_scheduler().await;

    w.start_scheduler().await;
    w.until_scan(&head, "succeeded").await;
    let threads = until(|| async { Some(w.threads()).filter(|t| t.len() >= 2) }).await;
    let mut placed: Vec<Option<u64>> = threads.iter().map(|t| t.line).collect();
    placed.sort();
    assert_eq!(placed, [Some(6), Some(10)]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = w.check(&head).unwrap();
    assert_eq!(after.verdict, Verdict::Passed, "{after:#?}");
    assert!(after.text.contains("Picket did not finish"), "{after:#?}");
    finish(w).await;
}

/// Stops the scheduler (no worker outlives the test) and checks every request the provider
/// received.
async fn finish(w: &mut impl PrWorld) {
    w.stop_scheduler().await;
    let violations = w.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

/// Real OSV records of urllib3 (and others) the worker's tests also use: PYSEC-2018-32 (fixed
/// 1.23), PYSEC-2019-132 (CVE-2019-11236, fixed 1.24.3), PYSEC-2020-148 (CVE-2020-26137, alias
/// GHSA-wqvq-5m8c-6g24, fixed 1.25.9); none rated.
const OSV_FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/worker/tests/worker/osv"
);

/// Supply Chain on a pull request: the advisories imported as `picket advisories import` does,
/// unrated vulnerabilities in Block mode and one advisory (named by an alias) in Comment mode.
/// A PR that adds `urllib3==1.24.1` fails the check and gets one thread per vulnerability on the
/// lockfile's line; a push that bumps it to 1.24.2, still affected by both, changes no finding
/// and duplicates no thread; a push to 1.26.5 resolves both threads and passes.
pub(crate) async fn a_vulnerable_dependency_is_commented_on_its_lockfile_line_and_blocks(
    w: &mut impl PrWorld,
) {
    let db = picket_db::Db::from_pool(w.app.pool.clone());
    let imported = picket_scheduler::advisories::import_path(&db, Path::new(OSV_FIXTURES))
        .await
        .unwrap();
    assert!(imported.records >= 3, "{imported:?}");
    w.app
        .admin()
        .put(
            "/api/v1/policies/supply-chain",
            json!({"rules": {"supply-chain:unrated": "block", "GHSA-wqvq-5m8c-6g24": "comment"}}),
        )
        .await
        .expect(201);
    let repo = w.repo();
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    let v1 = "requests==2.31.0\nurllib3==1.24.1\n";
    let head1 = commit(&repo, &[("requirements.txt", v1)], "pin urllib3");
    w.open("d-open", &head1, &[("requirements.txt", v1)]).await;
    let check = w.finished_check(&head1).await;
    assert_eq!(check.verdict, Verdict::Failed, "{check:#?}");
    let first = w.threads();
    let mut placed: Vec<(&str, Option<u64>, bool, bool)> = first
        .iter()
        .map(|t| {
            (
                t.path.as_str(),
                t.line,
                t.body.contains("CVE-2019-11236"),
                // Markdown-escaped, as every text from a scan is.
                t.body.contains(r"urllib3 1\.24\.1"),
            )
        })
        .collect();
    placed.sort();
    assert_eq!(
        placed,
        [
            ("requirements.txt", Some(2), false, true),
            ("requirements.txt", Some(2), true, true)
        ],
        "{first:#?}"
    );
    assert!(
        first.iter().any(|t| t.body.contains(r"Fixed in 1\.25\.9")),
        "the fixed version is named: {first:#?}"
    );
    // The advisory named by its alias is in Comment mode, over its severity's Block.
    let mode_of = |cve: &str| {
        let body = &first.iter().find(|t| t.body.contains(cve)).unwrap().body;
        ["Block", "Comment", "Monitor"]
            .into_iter()
            .find(|m| body.contains(&format!("Picket · {m}")))
            .unwrap_or_else(|| panic!("no mode in {body}"))
    };
    assert_eq!(mode_of("CVE-2019-11236"), "Block");
    assert_eq!(mode_of("CVE-2020-26137"), "Comment");
    let (status, dependency): (String, serde_json::Value) = sqlx::query_as(
        "SELECT status::text, dependency FROM findings WHERE rule_id = 'CVE-2019-11236'",
    )
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(status, "open");
    assert_eq!(dependency["package"], "urllib3");

    // Still affected by both: the same findings, no new thread.
    let v2 = "requests==2.31.0\nurllib3==1.24.2\n";
    let head2 = commit(&repo, &[("requirements.txt", v2)], "bump urllib3");
    w.push("d-push", &head2, &[("requirements.txt", v2)]).await;
    assert_eq!(w.finished_check(&head2).await.verdict, Verdict::Failed);
    let after = w.threads();
    assert_eq!(after.len(), 2, "{after:#?}");
    assert!(after.iter().all(|t| !t.resolved));

    // Out of the affected range: both threads resolved, the check passes.
    let v3 = "requests==2.31.0\nurllib3==1.26.5\n";
    let head3 = commit(&repo, &[("requirements.txt", v3)], "upgrade urllib3");
    w.push("d-push-2", &head3, &[("requirements.txt", v3)])
        .await;
    assert_eq!(w.finished_check(&head3).await.verdict, Verdict::Passed);
    let resolved = until(|| async {
        let t = w.threads();
        t.iter().all(|t| t.resolved).then_some(t)
    })
    .await;
    assert_eq!(resolved.len(), 2);
    finish(w).await;
}
