//! The `picket` binary: parses its configuration and hands it to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before the runtime's threads exist: parsing reads secrets from files and then removes
    // them from the environment.
    let cli = picket_cli::parse();
    let scan_log = picket_cli::telemetry::init(&cli.log, &cli.command);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("picket: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(picket_cli::execute(cli, scan_log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line: what failed and why.
            eprintln!("picket: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
