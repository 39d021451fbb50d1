//! The demo project of `picket run`: a small sample application shipped in `demo/sample-app`
//! (with a few real Code, Supply Chain and Secrets findings), turned into a local git repository
//! under the data directory and added as a project of the default org on first start, with the
//! few real OSV advisories of `demo/advisories` imported so that Supply Chain finds something
//! without internet. Its initial scan goes through the queue like any other;
//! [`report_when_done`] prints its findings summary.

use anyhow::Context;
use picket_core::{OrgId, ProjectId, Provider, ScanState};
use picket_db::connections::{self, NewConnection};
use picket_db::crypto::CredentialCipher;
use picket_db::findings::{self, FindingFilter};
use picket_db::projects::{self, NewProject};
use picket_db::{scans, Db};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/sample-app");
/// Real OSV records of the sample's vulnerable dependency (urllib3 1.24.1).
const ADVISORIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/advisories");
const FULL_NAME: &str = "demo/sample-app";

/// The demo project's repository, under the data directory.
pub const REPO_DIR: &str = "demo-repo";

/// Creates the demo repository and project in `org` unless the project exists. Returns the
/// project when it was just added (its initial scan is queued).
pub async fn ensure(
    db: &Db,
    cipher: &CredentialCipher,
    org: OrgId,
    data_dir: &Path,
) -> anyhow::Result<Option<ProjectId>> {
    let repo =
        std::path::absolute(data_dir.join(REPO_DIR)).context("locating the data directory")?;
    let mut tx = db.pool().begin().await?;
    if projects::exists_by_name(&mut *tx, org, FULL_NAME).await? {
        return Ok(None);
    }
    // Before the project exists (so a failed import is tried again at the next start), and
    // before any scan can run (the scheduler starts after this). Idempotent.
    let imported = picket_scheduler::advisories::import_path(db, Path::new(ADVISORIES))
        .await
        .context("importing the demo's advisories")?;
    tracing::info!(records = imported.records, "demo advisories imported");
    create_repo(Path::new(SAMPLE), &repo).context("creating the demo git repository")?;
    let conn = connections::create(
        &mut *tx,
        cipher,
        &NewConnection {
            org_id: org,
            provider: Provider::Git,
            name: "demo".to_owned(),
            base_url: String::new(),
            credentials: None,
            follow_installations: false,
        },
    )
    .await
    .context("creating the demo connection")?;
    let added = projects::add_many(
        &mut tx,
        org,
        &[NewProject {
            connection_id: conn.id,
            provider_repo_id: "demo-sample-app".to_owned(),
            full_name: FULL_NAME.to_owned(),
            clone_url: format!("file://{}", repo.display()),
            default_branch: "main".to_owned(),
        }],
        None,
        time::OffsetDateTime::now_utc(),
    )
    .await?
    .map_err(|refused| anyhow::anyhow!("the demo project was refused: {refused:?}"))?;
    tx.commit().await?;
    Ok(added.first().map(|a| a.project.id))
}

/// A fresh repository at `dest` holding `src`'s files in one commit on `main`.
fn create_repo(src: &Path, dest: &Path) -> anyhow::Result<()> {
    if dest.exists() {
        std::fs::remove_dir_all(dest)?;
    }
    let repo = git2::Repository::init_opts(
        dest,
        git2::RepositoryInitOptions::new().initial_head("main"),
    )?;
    copy_dir(src, dest)?;
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let who = git2::Signature::now("Picket demo", "demo@picket.invalid")?;
    repo.commit(Some("HEAD"), &who, &who, "Sample application", &tree, &[])?;
    Ok(())
}

fn copy_dir(src: &Path, dest: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let to: PathBuf = dest.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&to)?;
            copy_dir(&entry.path(), &to)?;
        } else {
            std::fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

/// Waits for the project's latest scan to finish (up to `within`) and prints its findings.
pub async fn report_when_done(db: Db, org: OrgId, project: ProjectId, within: Duration) {
    let started = std::time::Instant::now();
    let scan = loop {
        match scans::list_for_project(db.pool(), org, project, &Default::default(), None, 1).await {
            Ok(list) => match list.into_iter().next() {
                Some(s) if s.state.is_terminal() => break s,
                _ => {}
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow the demo scan");
                return;
            }
        }
        if started.elapsed() > within {
            tracing::warn!("the demo scan has not finished after {within:?}; see GET /api/v1/projects/{project}/scans");
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let found = findings::list(
        db.pool(),
        org,
        project,
        &FindingFilter::default(),
        None,
        100,
    )
    .await
    .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\nDemo scan of {FULL_NAME}: {} in {:.1} s, {} findings",
        scan.state,
        started.elapsed().as_secs_f64(),
        found.len()
    );
    if scan.state != ScanState::Succeeded {
        let _ = writeln!(
            out,
            "  error: {} {}",
            scan.error_code.unwrap_or_default(),
            scan.error_message.unwrap_or_default()
        );
    }
    for f in &found {
        let _ = writeln!(
            out,
            "  {:<8} {:<9} {}:{}  {}",
            f.severity, f.product, f.path, f.start_line, f.rule_id
        );
    }
    let _ = writeln!(
        out,
        "  (GET /api/v1/projects/{project}/findings for the details)"
    );
    let _ = out.flush();
}
