//! The command line: the clap definition of the subcommands, and the thin
//! `main` pipeline (parse → run → exit code). Errors and exit codes live in
//! [`crate::error`], number and unit parsing in [`crate::units`].

#![forbid(unsafe_code)]

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::commands;
use crate::error::{EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, Interrupted, UsageError};
use crate::units::OutOfRange;

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
    /// Measure what this machine allows: loopback TCP and memory bandwidth, syscall and wake-up costs.
    Limits(commands::limits::LimitsArgs),
    /// Draw every chart of a results directory (or results.json) into RESULTS/charts/.
    Chart(commands::chart::ChartArgs),
    /// Regenerate summary.md and findings.md of a results directory from its results.json.
    Report(commands::report::ReportArgs),
    /// Compare two result sets: B/A ratios with a verdict per figure.
    Compare(commands::compare::CompareArgs),
    /// Make traces to replay (`trace generate`).
    Trace(crate::driver::trace::TraceArgs),
    /// A driver worker process: holds idle connections for the main driver
    /// process (started by it, never by hand).
    #[command(name = "hold-idle", hide = true)]
    HoldIdle(crate::driver::scale::holder::HoldArgs),
}

/// The command line as clap builds it from [`Cli`], with one change in
/// every subcommand: a value that looks like a negative number (`-10`) is
/// the value of its flag, not an unknown short flag `-1`, so the flag's own
/// parser can say what it accepts.
pub fn command() -> clap::Command {
    fn negative_values_are_values(command: clap::Command) -> clap::Command {
        command
            .mut_args(|arg| {
                if arg.get_action().takes_values() {
                    arg.allow_negative_numbers(true)
                } else {
                    arg
                }
            })
            .mut_subcommands(negative_values_are_values)
    }
    negative_values_are_values(Cli::command())
}

/// Parses `argv` (program name first) with [`command`].
pub fn parse_from<I, T>(argv: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command().try_get_matches_from(argv)?;
    Cli::from_arg_matches(&matches)
}

/// Parses the command line, runs the command, and returns the exit code.
pub fn main() -> i32 {
    let cli = match parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => return report_parse_error(e),
    };
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Drive(args) => commands::drive::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Limits(args) => commands::limits::run(args),
        Command::Chart(args) => commands::chart::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::HoldIdle(args) => crate::driver::scale::holder::run(&args),
        Command::Trace(args) => {
            let crate::driver::trace::TraceCommand::Generate(generate) = &args.command;
            commands::output::check_file("--out", &generate.out)
                .map_err(anyhow::Error::from)
                .and_then(|()| crate::driver::trace::run_trace_command(&args))
        }
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
            eprintln!("error: {}", error_line(&e));
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
        ErrorKind::ValueValidation if out_of_range(&e).is_some() => {
            use clap::error::{ContextKind, ContextValue};
            let context = |kind| match e.get(kind) {
                Some(ContextValue::String(text)) => text.as_str(),
                _ => "?",
            };
            // `--rate-per-second <RATE_PER_SECOND>`: the flag is enough.
            let flag = context(ContextKind::InvalidArg)
                .split(' ')
                .next()
                .unwrap_or_default();
            let value = context(ContextKind::InvalidValue);
            let rule = out_of_range(&e)
                .map(ToString::to_string)
                .unwrap_or_default();
            eprintln!("error: {flag}: {value} is not accepted: {rule} (see --help)");
            EXIT_USAGE
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

fn out_of_range(e: &clap::Error) -> Option<&OutOfRange> {
    std::error::Error::source(e).and_then(|source| source.downcast_ref::<OutOfRange>())
}

/// An error and its causes on one line. Most typed errors here end their
/// message with their source's (`cannot write X: {source}`) and also return
/// it as their source, so a cause whose text is already in the line is not
/// repeated; a bare `.context(..)` still gets its cause appended.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(text.as_str()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    one_line(&line)
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_values_reach_the_flag_parser_in_every_subcommand() {
        for line in [
            &["epoll-bench", "run", "--repetitions", "-1"][..],
            &["epoll-bench", "doctor", "--connections", "-1"],
            &[
                "epoll-bench",
                "trace",
                "generate",
                "--out",
                "t",
                "--requests",
                "5",
                "--rate-per-second",
                "-10",
            ],
        ] {
            let e = parse_from(line).err().unwrap();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{line:?}: {e}"
            );
            assert!(out_of_range(&e).is_some(), "{line:?}: {e}");
        }
        // Flags without values still parse as before.
        assert!(parse_from(["epoll-bench", "run", "--quick"]).is_ok());
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot write x: {source}")]
        struct Wrapping {
            source: std::io::Error,
        }
        let io = || std::io::Error::from_raw_os_error(2);
        let e = anyhow::Error::from(Wrapping { source: io() });
        let line = error_line(&e);
        assert_eq!(line.matches("os error 2").count(), 1, "{line}");
        // A plain context keeps its cause.
        let e = anyhow::Error::from(io()).context("reading y");
        assert!(
            error_line(&e).starts_with("reading y: No such file"),
            "{}",
            error_line(&e)
        );
    }
}
