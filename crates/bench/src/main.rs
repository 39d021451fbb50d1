//! `picket-bench`: measures the queue, bulk scan, the API read path, ingest, clones, scans,
//! dispatch, webhook ingest, PR feedback and the advisory import and matching, and prints
//! Markdown tables for docs/benchmarks.md.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Picket's own warnings and errors (e.g. why a webhook was answered 503) on stderr; more
    // with PICKET_BENCH_LOG, e.g. `picket_api=debug`.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PICKET_BENCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    picket_bench::run(picket_bench::Args::parse()).await
}
