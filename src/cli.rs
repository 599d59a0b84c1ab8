//! The command line: argument types shared by the subcommands, and the thin
//! `main` pipeline (parse → run → exit code).

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

use crate::commands;

#[derive(Debug, Parser)]
#[command(
    name = "epoll-bench",
    version,
    about = "Benchmark Linux network I/O: level- vs edge-triggered epoll, read/write vs writev vs splice"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure every variant against traffic profiles and write results.
    Run(commands::run::RunArgs),
    /// Measure a server that is already running.
    Drive(commands::drive::DriveArgs),
    /// Run one server variant until SIGINT/SIGTERM, then print its counters.
    Serve(commands::serve::ServeArgs),
    /// Check whether this machine measures the variants or its own limits.
    Doctor(crate::doctor::DoctorArgs),
    /// Draw every chart of a results directory (or results.json) into RESULTS/charts/.
    Chart(commands::chart::ChartArgs),
    /// Regenerate summary.md of a results directory from its results.json.
    Report(commands::report::ReportArgs),
    /// Compare two result sets: B/A ratios with a verdict per figure.
    Compare(commands::compare::CompareArgs),
    /// Make traces to replay (`trace generate`).
    Trace(crate::driver::trace::TraceArgs),
}

/// Exit code for bad usage: flags, addresses, input files.
pub const EXIT_USAGE: i32 = 2;
/// Exit code for a failure while running.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of a run stopped by SIGINT/SIGTERM after saving what finished,
/// the shell's 128 + SIGINT so scripts can tell it from a failure.
pub const EXIT_INTERRUPTED: i32 = 130;

/// An error that should end the program with [`EXIT_USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A measurement session stopped by the user: partial results were saved,
/// the program ends with [`EXIT_INTERRUPTED`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

/// Parses the command line, runs the command, and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return report_parse_error(e),
    };
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Drive(args) => commands::drive::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Chart(args) => commands::chart::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Trace(args) => crate::driver::trace::run_trace_command(&args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let code = if is_bad_input(&e) {
                EXIT_USAGE
            } else if e.chain().any(|cause| cause.is::<Interrupted>()) {
                EXIT_INTERRUPTED
            } else {
                EXIT_FAILURE
            };
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            code
        }
    }
}

/// Whether an error is the user's input (flags, files) rather than a
/// failure while running: those exit with [`EXIT_USAGE`].
fn is_bad_input(e: &anyhow::Error) -> bool {
    use crate::driver::trace::TraceError;
    e.chain().any(|cause| {
        cause.is::<UsageError>()
            || cause.is::<crate::driver::input_error::InputError>()
            || cause.is::<crate::driver::profile::ProfileError>()
            || matches!(
                cause.downcast_ref::<TraceError>(),
                Some(TraceError::Invalid(_) | TraceError::InvalidSpec(_) | TraceError::Read { .. })
            )
    })
}

/// Help and version go to stdout as clap renders them; real errors become
/// one line on stderr, since scripts read the first line only.
fn report_parse_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                EXIT_USAGE
            } else {
                0
            }
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            eprintln!("{} (see --help)", first.trim_end());
            EXIT_USAGE
        }
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses a byte count: `65536`, `64k`, `64KiB`, `16M`, `1MiB`, `1G`
/// (binary multiples).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a byte count (e.g. 65536, 64KiB, 16MiB)"))?;
    let multiplier: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{suffix}` (use KiB, MiB or GiB)"
            ));
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses a CPU list: `0`, `0,2`, `0-3`, `0-1,4`.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim) {
        let bad = || format!("`{text}` is not a CPU list (e.g. 0, 0-1, 0,2)");
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (usize, usize) =
                (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if a > b {
                return Err(bad());
            }
            cpus.extend(a..=b);
        } else {
            cpus.push(part.parse().map_err(|_| bad())?);
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("64k"), Ok(65536));
        assert_eq!(parse_bytes("16MiB"), Ok(16 << 20));
        assert!(
            parse_bytes("12parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(
            parse_bytes("lots")
                .unwrap_err()
                .contains("not a byte count")
        );
        assert!(
            parse_bytes("99999999999999G")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Ok(vec![0]));
        assert_eq!(parse_cpu_list("2,0-1"), Ok(vec![0, 1, 2]));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }
}
