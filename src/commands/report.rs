//! `epoll-bench report RESULTS`: regenerates `summary.md` and
//! `findings.md` of a results directory (or `results.json`), without
//! rerunning anything. `--recompute` first derives every summary again from
//! the stored repetitions, so results written by an older build gain the
//! figures added since.

use std::path::PathBuf;

use clap::Args;

use crate::commands::results_input;
use crate::report::export::findings::FindingsExporter;
use crate::report::export::json::compress_results_file;
use crate::report::export::markdown::MarkdownExporter;
use crate::report::export::{Exporter, default_exporters, export_all, write_atomically};
use crate::results::{RESULTS_FILE_NAME, ResultsFile, aggregate, is_compressed};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results directory, or its results.json.
    pub results: PathBuf,
    /// Also print the summary on stdout.
    #[arg(long)]
    pub print: bool,
    /// First recompute every summary from the stored repetitions and
    /// rewrite results.json and results.csv too (measurements are kept as
    /// they are; only derived figures change). A results.json.gz is
    /// written back compressed.
    #[arg(long)]
    pub recompute: bool,
    /// Print the findings list as the README quotes it, and write nothing:
    /// `all` claims (findings.md's list) or only the `measured` ones (for
    /// runs of a few profiles, whose other claims are "not measured").
    #[arg(long, value_name = "WHICH")]
    pub findings_block: Option<FindingsBlock>,
}

/// Which claims `--findings-block` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FindingsBlock {
    All,
    Measured,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let mut loaded = results_input::load(&args.results)?;
    if let Some(which) = args.findings_block {
        let results = &loaded.results;
        print!(
            "{}",
            match which {
                FindingsBlock::All => crate::report::findings::findings_block(results),
                FindingsBlock::Measured =>
                    crate::report::findings::measured_findings_block(results),
            }
        );
        return Ok(());
    }
    // The files are rewritten where they were read.
    super::output::check_dir("RESULTS", &loaded.dir)?;
    if args.recompute {
        recompute(&mut loaded.results);
        let mut written = export_all(&loaded.dir, &loaded.results, &default_exporters())?;
        if is_compressed(&loaded.file) {
            let compressed = compress_results_file(&loaded.dir)?;
            written.retain(|path| !path.ends_with(RESULTS_FILE_NAME));
            written.push(compressed);
        }
        for path in written {
            eprintln!("wrote {}", path.display());
        }
        if args.print {
            print!(
                "{}",
                crate::report::export::markdown::summary_markdown(&loaded.results)
            );
        }
        return Ok(());
    }
    // Both are text rendered from results.json alone, so a newer build's
    // tables and findings apply to an older run.
    let exporters: [&dyn Exporter; 2] = [&MarkdownExporter, &FindingsExporter];
    for exporter in exporters {
        let bytes = exporter.render(&loaded.results)?;
        let path = loaded.dir.join(exporter.file_name());
        write_atomically(&path, &bytes)?;
        if args.print && exporter.file_name() == MarkdownExporter.file_name() {
            print!("{}", String::from_utf8_lossy(&bytes));
        }
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Derives every variant's status and summary again from its repetitions,
/// as a run would have with this build.
pub fn recompute(results: &mut ResultsFile) {
    for case in &mut results.cases {
        for variant in &mut case.variants {
            *variant = aggregate::finish_variant(
                &variant.variant,
                variant.repetitions_planned,
                std::mem::take(&mut variant.repetitions),
                variant.server_side_unavailable_reason.take(),
            );
        }
    }
    (results.run.passed_count, results.run.failed_count) =
        crate::results::status_counts(&results.cases);
}
