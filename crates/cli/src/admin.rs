//! `picket admin`: the operator's way in before any token exists, and the first-start bootstrap
//! of `picket run`.

use crate::run::connect;
use crate::DatabaseArgs;
use anyhow::Context;
use clap::{Args, Subcommand};
use picket_core::Role;
use picket_db::{orgs, tokens, Db, DbError};
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an org.
    CreateOrg {
        /// URL-safe handle: lowercase letters, digits and dashes, at most 63 characters.
        #[arg(long)]
        slug: String,
        /// Display name. Default: the slug.
        #[arg(long)]
        name: Option<String>,
    },
    /// Create an API token in an org and print it (it is shown only this once).
    CreateToken {
        /// The org's slug.
        #[arg(long)]
        org: String,
        /// What the token is for, e.g. "ci" or a person's name.
        #[arg(long)]
        name: String,
        /// admin (manage the org) or member (read and run scans).
        #[arg(long, default_value = "admin")]
        role: Role,
        /// Days until the token expires. Default: never.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke an API token by id.
    RevokeToken {
        /// The org's slug.
        #[arg(long)]
        org: String,
        /// The token's id (from GET /api/v1/tokens).
        #[arg(long)]
        id: picket_core::TokenId,
    },
}

pub async fn execute(args: AdminArgs) -> anyhow::Result<()> {
    let db = connect(&args.db.database_url, 2).await?;
    let mut out = std::io::stdout().lock();
    match args.command {
        AdminCommand::CreateOrg { slug, name } => {
            let org = orgs::create(db.pool(), &slug, name.as_deref().unwrap_or(&slug))
                .await
                .map_err(|e| explain(e, &format!("org {slug:?}")))?;
            writeln!(out, "created org {} ({})", org.slug, org.id)?;
        }
        AdminCommand::CreateToken {
            org,
            name,
            role,
            expires_in_days,
        } => {
            let org = find_org(&db, &org).await?;
            let expires_at = expires_in_days
                .map(|d| time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(d)));
            let (record, token) = tokens::create(db.pool(), org.id, &name, role, expires_at)
                .await
                .map_err(|e| explain(e, "token"))?;
            writeln!(
                out,
                "created {} token {} ({}) in org {}",
                record.role, record.name, record.id, org.slug
            )?;
            writeln!(out, "{}", token.expose_secret())?;
        }
        AdminCommand::RevokeToken { org, id } => {
            let org = find_org(&db, &org).await?;
            tokens::revoke(db.pool(), org.id, id)
                .await
                .map_err(|e| explain(e, &format!("token {id} in org {}", org.slug)))?;
            writeln!(out, "revoked token {id}")?;
        }
    }
    Ok(())
}

async fn find_org(db: &Db, slug: &str) -> anyhow::Result<orgs::OrgRecord> {
    orgs::get_by_slug(db.pool(), slug)
        .await
        .map_err(|e| explain(e, &format!("org {slug:?}")))
}

/// Turns data-layer errors into messages an operator can act on.
fn explain(e: DbError, what: &str) -> anyhow::Error {
    match e {
        DbError::NotFound => anyhow::anyhow!("{what} does not exist"),
        DbError::Conflict { .. } => anyhow::anyhow!("{what} already exists"),
        DbError::Invalid { constraint } => anyhow::anyhow!("{what} is not valid ({constraint})"),
        other => anyhow::Error::new(other).context(what.to_owned()),
    }
}

/// Slug of the org `picket run` creates on first start.
pub const DEFAULT_ORG: &str = "default";

/// On first start, creates the `default` org and an admin token, saves the token to
/// `token_file` (mode 0600, so the operator can find it again) and returns it. Later starts
/// return `None`.
/// How long the sign-in link `picket run` prints stays usable.
pub const SIGN_IN_LINK_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A one-time sign-in code for the admin token saved in `token_file`, or `None` when that file
/// is gone or its token no longer works (the UI then takes a token at its sign-in page).
pub async fn sign_in_link(db: &Db, token_file: &Path) -> anyhow::Result<Option<SecretString>> {
    let Ok(token) = std::fs::read_to_string(token_file) else {
        return Ok(None);
    };
    let Some(record) = tokens::authenticate(db.pool(), &tokens::hash(token.trim()))
        .await
        .context("looking up the admin token")?
    else {
        return Ok(None);
    };
    let code = picket_db::sessions::create_sign_in_link(db.pool(), record.id, SIGN_IN_LINK_TTL)
        .await
        .context("making a sign-in link")?;
    Ok(Some(code))
}

pub async fn bootstrap(db: &Db, token_file: &Path) -> anyhow::Result<Option<SecretString>> {
    use std::os::unix::fs::OpenOptionsExt;
    match orgs::get_by_slug(db.pool(), DEFAULT_ORG).await {
        Ok(_) => return Ok(None),
        Err(DbError::NotFound) => {}
        Err(e) => return Err(e).context("looking up the default org"),
    }
    let mut tx = db.pool().begin().await.context("bootstrap transaction")?;
    let org = orgs::create(&mut *tx, DEFAULT_ORG, "Default")
        .await
        .context("creating the default org")?;
    let (_, token) = tokens::create(&mut *tx, org.id, "bootstrap admin", Role::Admin, None)
        .await
        .context("creating the first admin token")?;
    // Write the file before committing: if it cannot be written, nothing is created and the
    // next start tries again, instead of leaving an org whose only token nobody saw.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(token_file)
        .with_context(|| format!("saving the admin token to {}", token_file.display()))?;
    f.write_all(token.expose_secret().as_bytes())?;
    f.sync_all()?;
    tx.commit().await.context("committing the bootstrap")?;
    tracing::info!(org = %org.id, "created the default org and its first admin token");
    Ok(Some(token))
}
