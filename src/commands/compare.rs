//! `epoll-bench compare A B [--out FILE]`: B against A as a Markdown table
//! of ratios with a verdict per figure (rule: [`crate::report::compare`]).

use std::path::PathBuf;

use clap::Args;

use crate::commands::results_input;
use crate::report::compare::compare_markdown;
use crate::report::export::write_atomically;

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline: a results directory or results.json.
    pub a: PathBuf,
    /// The result set compared with it.
    pub b: PathBuf,
    /// Write the Markdown to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        super::output::check_file("--out", out)?;
    }
    let a = results_input::load(&args.a)?;
    let b = results_input::load(&args.b)?;
    let markdown = compare_markdown(
        &a.results,
        &a.file.display().to_string(),
        &b.results,
        &b.file.display().to_string(),
    );
    match args.out {
        Some(out) => {
            write_atomically(&out, markdown.as_bytes())?;
            eprintln!("wrote {}", out.display());
        }
        None => print!("{markdown}"),
    }
    Ok(())
}
