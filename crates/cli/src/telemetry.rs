//! Logging: `tracing` to stderr, human-readable or JSON lines.

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log filter in tracing's EnvFilter syntax. Default "info,sqlx=warn".
    #[arg(
        long,
        global = true,
        env = "PICKET_LOG",
        default_value = "info,sqlx=warn"
    )]
    pub log: String,
    /// Log line format: text or json. Default text.
    #[arg(long, global = true, env = "PICKET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Installs the global subscriber. An invalid filter falls back to "info" with a warning rather
/// than refusing to start.
pub fn init(args: &LogArgs) {
    let (filter, bad) = match EnvFilter::try_new(&args.log) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    if let Some(e) = bad {
        tracing::warn!(filter = %args.log, error = %e, "invalid PICKET_LOG; using \"info\"");
    }
}
