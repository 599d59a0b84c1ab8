//! `epoll-bench limits`: what this machine allows (loopback TCP bandwidth,
//! memory copy bandwidth, the cheapest kernel round trips), measured by
//! the tool, so throughput can be read as a share of it.

use std::fmt::Write as _;

use clap::Args;

use crate::driver::limits::{self, LimitsPlan};
use crate::results::machine_limits::MachineLimits;

#[derive(Debug, Clone, Args)]
pub struct LimitsArgs {
    /// Print the figures as JSON (the `machine_limits` block of results.json).
    #[arg(long)]
    pub json: bool,
    /// About 2 s instead of about 10 s: fewer, shorter trials (what `run`
    /// records).
    #[arg(long)]
    pub quick: bool,
    /// Streams of the N-stream loopback figures (default: the usable CPUs).
    #[arg(long, value_name = "N", value_parser = crate::units::number(1usize..=256, "streams"))]
    pub streams: Option<usize>,
}

/// `epoll-bench limits`: progress on stderr, the figures on stdout.
pub fn run(args: LimitsArgs) -> anyhow::Result<()> {
    let streams = args
        .streams
        .unwrap_or_else(limits::default_parallel_streams);
    let plan = if args.quick {
        LimitsPlan::quick(streams)
    } else {
        LimitsPlan::standard(streams)
    };
    let measured = limits::measure(&plan, &mut |line| eprintln!("limits: {line}"))?;
    if args.json {
        say!("{}", serde_json::to_string_pretty(&measured)?);
    } else {
        say!("{}", render_table(&measured));
    }
    Ok(())
}

/// The figures as an aligned table: median, then min–max over the trials.
pub fn render_table(limits: &MachineLimits) -> String {
    let rows: Vec<[String; 3]> = limits
        .figures()
        .iter()
        .map(|f| {
            let label = f.describe(limits);
            [
                label,
                f.unit.format(f.spread.median),
                format!(
                    "{} – {}",
                    f.unit.format(f.spread.min),
                    f.unit.format(f.spread.max)
                ),
            ]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1) = (width(0).max("limit".len()), width(1).max("median".len()));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<w0$}  {:>w1$}  min – max over {} trials",
        "limit",
        "median",
        limits
            .figures()
            .first()
            .map_or(0, |figure| figure.spread.samples)
    );
    for [label, median, range] in rows {
        let _ = writeln!(out, "{label:<w0$}  {median:>w1$}  {range}");
    }
    let _ = write!(
        out,
        "(loopback: {} B messages, echo window {} B; memcpy buffer {} B; {:.1} s{})",
        limits.loopback_message_bytes,
        limits.loopback_window_bytes,
        limits.memcpy_buffer_bytes,
        limits.elapsed_seconds,
        if limits.quick { ", quick" } else { "" }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_figure_with_its_unit() {
        let table = render_table(&crate::results::fixture::machine_limits());
        for needle in [
            "loopback TCP, one way, 1 stream",
            "loopback TCP echo, each way, N streams (N = 2)",
            "3.00 GB/s",
            "null syscall (gettid)",
            "50.0 ns",
            "min – max over 3 trials",
            "quick",
        ] {
            assert!(table.contains(needle), "{needle} not in\n{table}");
        }
        assert_eq!(table.lines().count(), 10, "{table}");
    }
}
