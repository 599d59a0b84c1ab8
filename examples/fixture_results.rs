//! Writes the test fixture results (tests/common) as a results directory:
//! `cargo run --example fixture_results -- DIR`. Used to try the notebook
//! and the chart/report commands without running a benchmark.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("usage: fixture_results DIR"))?;
    let results = common::results();
    let written = epoll_bench::report::export::export_all(
        &dir,
        &results,
        &epoll_bench::report::export::default_exporters(),
    )?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}
