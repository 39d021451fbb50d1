//! Logging: `tracing` to stderr, readable text lines or JSON lines, one format for every process
//! of a command (the workers a local scheduler starts are given the same).
//!
//! `picket run` reads like a product by default: one line when a scan starts and one when it
//! ends (the [`SCANS`] target: project, kind, outcome, duration, findings), and warnings and
//! errors; everything else (requests, startup details) is at `info`/`debug` for `PICKET_LOG` to
//! turn on. The other commands log at `info` by default, for operators.

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

/// The target of the scan start and end lines.
pub const SCANS: &str = "picket::scans";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log filter in tracing's EnvFilter syntax. Default "warn,picket::scans=info" for `run`
    /// (scan start and end lines, warnings, errors), "info,sqlx=warn" for the others.
    #[arg(long, global = true, env = "PICKET_LOG")]
    pub log: Option<String>,
    /// Log line format of every process, workers included: text or json. Default text.
    #[arg(long, global = true, env = "PICKET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// The filter in force: the configured one, else the command's default.
    pub fn filter(&self, command: &crate::Command) -> String {
        self.log.clone().unwrap_or_else(|| {
            match command {
                crate::Command::Run(_) => "warn,picket::scans=info",
                _ => "info,sqlx=warn",
            }
            .to_owned()
        })
    }

    /// The environment a local worker gets so that it logs like its scheduler.
    pub fn worker_env(&self, command: &crate::Command) -> Vec<(String, String)> {
        vec![
            ("PICKET_LOG".to_owned(), self.filter(command)),
            (
                "PICKET_LOG_FORMAT".to_owned(),
                self.log_format.as_str().to_owned(),
            ),
        ]
    }
}

/// Installs the global subscriber. An invalid filter falls back to "info" with a warning rather
/// than refusing to start. Text lines are coloured only on a terminal. For `picket worker`, also
/// the scan log's layer (its own filter: Picket's events at `info` and up), and returns its
/// other end for the worker to ship.
pub fn init(args: &LogArgs, command: &crate::Command) -> Option<picket_worker::scanlog::ScanLog> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let wanted = args.filter(command);
    let (filter, bad) = match EnvFilter::try_new(&wanted) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    let (layer, log) = match command {
        crate::Command::Worker(_) => {
            let (layer, log) = picket_worker::scanlog::channel();
            (Some(layer), Some(log))
        }
        _ => (None, None),
    };
    // Each layer has its own filter: the terminal's filter applies to the terminal only, and
    // the scan log takes Picket's events at `info` and up whatever it is.
    use tracing_subscriber::Layer;
    let scan_log = layer.map(|l| l.with_filter(tracing_subscriber::filter::LevelFilter::INFO));
    let registry = tracing_subscriber::registry().with(scan_log);
    match args.log_format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_target(false)
                    .with_filter(filter),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .init(),
    }
    if let Some(e) = bad {
        tracing::warn!(filter = %wanted, error = %e, "invalid PICKET_LOG; using \"info\"");
    }
    log
}
