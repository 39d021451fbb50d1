//! `picket-bench`: measures the queue, bulk scan and the API read path, and prints Markdown
//! tables for docs/benchmarks.md.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    picket_bench::run(picket_bench::Args::parse()).await
}
