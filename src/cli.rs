//! The command line: argument types shared by the subcommands, and the thin
//! `main` pipeline (parse → run → exit code).

#![forbid(unsafe_code)]

use std::fmt::Display;
use std::ops::{Bound, RangeBounds};
use std::str::FromStr;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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
        Command::Chart(args) => commands::chart::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Compare(args) => commands::compare::run(args),
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

/// A type a numeric flag parses into with [`number`].
pub trait Number: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static {
    /// Whole numbers only (and then the type's limits are part of the rule).
    const WHOLE: bool;
    const LOWEST: Self;
    const HIGHEST: Self;
}

macro_rules! whole_number {
    ($($t:ty),*) => {$(
        impl Number for $t {
            const WHOLE: bool = true;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
        }
    )*};
}
whole_number!(u32, u64, usize);

impl Number for f64 {
    const WHOLE: bool = false;
    const LOWEST: Self = f64::MIN;
    const HIGHEST: Self = f64::MAX;
}

/// A numeric flag's value outside what it accepts (or not a number); the
/// text is the rule, e.g. `must be a number > 0`. The parse error shows it
/// after the flag and the value.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("must be {0}")]
pub struct OutOfRange(String);

/// The value parser of every numeric flag: accepts `T` within `range`
/// (`unit` names what is counted, e.g. `seconds`, or is empty), and
/// refuses anything else, negative numbers included, with the rule.
pub fn number<T: Number>(
    range: impl RangeBounds<T>,
    unit: &'static str,
) -> impl Fn(&str) -> Result<T, OutOfRange> + Clone + Send + Sync + 'static {
    let (low, high) = (range.start_bound().cloned(), range.end_bound().cloned());
    move |text: &str| {
        let refuse = || OutOfRange(describe_range(low, high, unit));
        let value: T = text.trim().parse().map_err(|_| refuse())?;
        // Written so that NaN fails every comparison; infinities fail the
        // type's limits.
        let above_low = match low {
            Bound::Included(min) => value >= min,
            Bound::Excluded(min) => value > min,
            Bound::Unbounded => value >= T::LOWEST,
        };
        let below_high = match high {
            Bound::Included(max) => value <= max,
            Bound::Excluded(max) => value < max,
            Bound::Unbounded => value <= T::HIGHEST,
        };
        if above_low && below_high {
            Ok(value)
        } else {
            Err(refuse())
        }
    }
}

fn describe_range<T: Number>(low: Bound<T>, high: Bound<T>, unit: &str) -> String {
    let what = match (T::WHOLE, unit) {
        (true, "") => "a whole number".to_string(),
        (true, unit) => format!("a whole number of {unit}"),
        (false, "") => "a number".to_string(),
        (false, unit) => format!("a number of {unit}"),
    };
    // A whole number's type limit is stated only below: the lowest is the
    // rule a negative value breaks, while `≤ 18446744073709551615` says
    // nothing a user needs.
    let low = match low {
        Bound::Unbounded if T::WHOLE => Bound::Included(T::LOWEST),
        bound => bound,
    };
    match (low, high) {
        (Bound::Included(min), Bound::Included(max)) if T::WHOLE => {
            format!("{what} from {min} to {max}")
        }
        (low, high) => describe_limits(what, low, high),
    }
}

fn describe_limits<T: Number>(what: String, low: Bound<T>, high: Bound<T>) -> String {
    let low = match low {
        Bound::Included(min) => Some(format!("≥ {min}")),
        Bound::Excluded(min) => Some(format!("> {min}")),
        Bound::Unbounded => None,
    };
    let high = match high {
        Bound::Included(max) => Some(format!("≤ {max}")),
        Bound::Excluded(max) => Some(format!("< {max}")),
        Bound::Unbounded => None,
    };
    match (low, high) {
        (Some(low), Some(high)) => format!("{what} {low} and {high}"),
        (Some(limit), None) | (None, Some(limit)) => format!("{what} {limit}"),
        (None, None) => what,
    }
}

/// Parses a byte count: `65536`, `64k`, `64KiB`, `16M`, `1MiB`, `1G`
/// (binary multiples).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!(
            "`{text}`: a byte count cannot be negative (e.g. 65536, 64KiB, 16MiB)"
        ));
    }
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
    fn negative_byte_counts_say_so() {
        assert!(
            parse_bytes("-1")
                .unwrap_err()
                .contains("cannot be negative")
        );
    }

    #[test]
    fn numbers_outside_their_range_get_the_rule() {
        let repetitions = number(1u32.., "");
        assert_eq!(repetitions("3"), Ok(3));
        for bad in ["0", "-1", "1.5", "x", "4294967296"] {
            assert_eq!(
                repetitions(bad).unwrap_err().to_string(),
                "must be a whole number ≥ 1",
                "{bad}"
            );
        }
        let rate = number((Bound::Excluded(0.0), Bound::Unbounded), "");
        assert_eq!(rate("2.5"), Ok(2.5));
        for bad in ["0", "-10", "NaN", "inf", "-inf"] {
            assert_eq!(
                rate(bad).unwrap_err().to_string(),
                "must be a number > 0",
                "{bad}"
            );
        }
        let seconds = number((Bound::Excluded(0.0), Bound::Included(1e6)), "seconds");
        assert_eq!(seconds("1000000"), Ok(1e6));
        assert_eq!(
            seconds("1000001").unwrap_err().to_string(),
            "must be a number of seconds > 0 and ≤ 1000000"
        );
        assert_eq!(number(0.01.., "seconds")("0.01"), Ok(0.01));
    }

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

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Ok(vec![0]));
        assert_eq!(parse_cpu_list("2,0-1"), Ok(vec![0, 1, 2]));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }
}
