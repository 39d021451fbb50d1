//! `picket advisories`: Supply Chain's advisory data from the command line. `import` loads OSV
//! records from folders of JSON files or osv.dev's per-ecosystem `all.zip` exports
//! (picket-scheduler's `advisories` module does the work; the sync loop does the same from
//! URLs).

use crate::run::connect;
use crate::DatabaseArgs;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct AdvisoriesArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(subcommand)]
    pub command: AdvisoriesCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdvisoriesCommand {
    /// Import OSV records: each path a folder (every *.json below it) or a zip of them (such as
    /// osv.dev's <ecosystem>/all.zip). Importing the same records again writes nothing; a
    /// source with a record that is not valid OSV is refused whole, naming the record.
    Import {
        /// Folders or zip files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// Runs the subcommand; one line per source on stdout. The first source that fails stops the
/// command with its error (the sources before it stay imported).
pub async fn execute(args: AdvisoriesArgs) -> anyhow::Result<()> {
    let db = connect(&args.db.database_url, 2).await?;
    let mut out = std::io::stdout().lock();
    match args.command {
        AdvisoriesCommand::Import { paths } => {
            for path in paths {
                let r = picket_scheduler::advisories::import_path(&db, &path)
                    .await
                    .with_context(|| format!("importing {}", path.display()))?;
                writeln!(
                    out,
                    "{}: {} records: {} new, {} changed, {} unchanged{}",
                    r.source,
                    r.records,
                    r.written.inserted,
                    r.written.updated,
                    r.written.unchanged,
                    if r.other_ecosystems > 0 {
                        format!(
                            " ({} of ecosystems Picket does not match)",
                            r.other_ecosystems
                        )
                    } else {
                        String::new()
                    }
                )?;
            }
        }
    }
    Ok(())
}
