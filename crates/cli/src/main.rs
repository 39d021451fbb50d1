//! The `picket` binary: parses its configuration and hands it to the library.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = picket_cli::Cli::parse();
    picket_cli::telemetry::init(&cli.log);
    match picket_cli::execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line: what failed and why.
            eprintln!("picket: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
