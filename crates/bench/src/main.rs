//! `picket-bench`: measures the queue, bulk scan, the API read path, ingest, clones, scans,
//! dispatch, webhook ingest and PR feedback, and prints Markdown tables for
//! docs/benchmarks.md.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    picket_bench::run(picket_bench::Args::parse()).await
}
