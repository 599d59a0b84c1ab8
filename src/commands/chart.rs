//! `epoll-bench chart RESULTS`: draws every chart of a results directory (or
//! `results.json`) into `RESULTS/charts/`, from the results alone.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::commands::results_input;
use crate::report::charts;

#[derive(Debug, Args)]
pub struct ChartArgs {
    /// A results directory, or its results.json.
    pub results: PathBuf,
    /// Where to write the charts (default: charts/ beside results.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: ChartArgs) -> anyhow::Result<()> {
    let loaded = results_input::load(&args.results)?;
    let out = args.out.unwrap_or_else(|| loaded.dir.join("charts"));
    super::output::check_dir("--out", &out)?;
    let output = charts::render_charts_with_notes(&loaded.results, &out)
        .with_context(|| format!("charting {}", loaded.file.display()))?;
    for note in &output.notes {
        eprintln!("note: {note}");
    }
    println!(
        "wrote {} chart files ({} charts, SVG and PNG) to {}",
        output.written.len(),
        output.written.len() / 2,
        out.display()
    );
    Ok(())
}
