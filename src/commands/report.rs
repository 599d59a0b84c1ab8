//! `epoll-bench report RESULTS`: regenerates `summary.md` of a results
//! directory (or `results.json`) with the Markdown exporter, without
//! rerunning anything.

use std::path::PathBuf;

use clap::Args;

use crate::commands::results_input;
use crate::report::export::markdown::MarkdownExporter;
use crate::report::export::{Exporter, write_atomically};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results directory, or its results.json.
    pub results: PathBuf,
    /// Also print the summary on stdout.
    #[arg(long)]
    pub print: bool,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let loaded = results_input::load(&args.results)?;
    let exporter = MarkdownExporter;
    let bytes = exporter.render(&loaded.results)?;
    let path = loaded.dir.join(exporter.file_name());
    write_atomically(&path, &bytes)?;
    if args.print {
        print!("{}", String::from_utf8_lossy(&bytes));
    }
    eprintln!("wrote {}", path.display());
    Ok(())
}
