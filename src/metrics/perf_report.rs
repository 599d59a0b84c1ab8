//! Reading `perf report --stdio --no-children --sort dso,sym
//! --show-nr-samples` text: one row per shared object and symbol with its
//! sample count, and whether the samples were taken in the kernel or in
//! user space. Everything that reads perf's text output is here, tested on
//! a captured report (`fixtures/perf-report-lt-writev.txt`).
//!
//! A row looks like
//! `     1.29%            23  epoll-bench        [.] epoll_bench::server::turn::drive`:
//! overhead, samples, shared object, a privilege marker (`[k]` kernel,
//! `[.]` user space; `[g]`, `[u]`, `[H]` for guests and hypervisors) and
//! the symbol, which may contain spaces (`<A as B>::f`). Shares are
//! recomputed from the sample counts, not read from the rounded overhead.

use std::fmt;

/// Where a sample was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    Kernel,
    User,
    /// A guest's or the hypervisor's (`[g]`, `[u]`, `[H]`).
    Other,
}

/// One row of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportRow {
    pub shared_object: String,
    pub symbol: String,
    pub space: Space,
    pub samples: u64,
}

/// A parsed report.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PerfReport {
    /// The sampled event (`# Samples: 1K of event 'cpu-clock'`).
    pub event: Option<String>,
    /// `# Total Lost Samples: N`: samples perf could not keep up with.
    pub lost_samples: u64,
    /// In the report's order (most samples first).
    pub rows: Vec<ReportRow>,
}

/// A line that is neither a comment, blank, nor a row.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub what: String,
    pub text: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "perf report line {}: {} in `{}`",
            self.line,
            self.what,
            self.text.trim()
        )
    }
}

impl std::error::Error for ParseError {}

const MARKERS: [(&str, Space); 5] = [
    (" [k] ", Space::Kernel),
    (" [.] ", Space::User),
    (" [g] ", Space::Other),
    (" [u] ", Space::Other),
    (" [H] ", Space::Other),
];

/// Parses a whole report.
pub fn parse(text: &str) -> Result<PerfReport, ParseError> {
    let mut report = PerfReport::default();
    for (index, line) in text.lines().enumerate() {
        let error = |what: &str| ParseError {
            line: index + 1,
            what: what.to_string(),
            text: line.to_string(),
        };
        let trimmed = line.trim();
        if let Some(comment) = trimmed.strip_prefix('#') {
            let comment = comment.trim();
            if let Some(lost) = comment.strip_prefix("Total Lost Samples:") {
                report.lost_samples = lost
                    .trim()
                    .parse()
                    .map_err(|_| error("a lost-sample count that is not a number"))?;
            } else if let Some(rest) = comment.strip_prefix("Samples:")
                && let Some((_, event)) = rest.split_once(" of event ")
            {
                report.event = Some(event.trim().trim_matches('\'').to_string());
            }
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        report.rows.push(parse_row(line).map_err(error)?);
    }
    Ok(report)
}

fn parse_row(line: &str) -> Result<ReportRow, &'static str> {
    let rest = line.trim_start();
    let (overhead, rest) = rest.split_once(char::is_whitespace).ok_or("no columns")?;
    overhead
        .strip_suffix('%')
        .and_then(|p| p.parse::<f64>().ok())
        .ok_or("no overhead percentage first")?;
    let rest = rest.trim_start();
    let (samples, rest) = rest
        .split_once(char::is_whitespace)
        .ok_or("no sample count")?;
    let samples: u64 = samples.parse().map_err(
        |_| "a sample count that is not a whole number (run perf report with --show-nr-samples)",
    )?;
    // The marker after the shared object: the first one, since a symbol
    // may contain anything after it.
    let rest = format!(" {}", rest.trim_start());
    let (at, marker, space) = MARKERS
        .iter()
        .filter_map(|(marker, space)| rest.find(marker).map(|at| (at, *marker, *space)))
        .min_by_key(|(at, _, _)| *at)
        .ok_or("no [k] or [.] marker before the symbol (sort by dso,sym)")?;
    let shared_object = rest[..at].trim();
    let symbol = rest[at + marker.len()..].trim();
    if shared_object.is_empty() || symbol.is_empty() {
        return Err("no shared object or no symbol");
    }
    Ok(ReportRow {
        shared_object: shared_object.to_string(),
        symbol: symbol.to_string(),
        space,
        samples,
    })
}

impl PerfReport {
    pub fn samples_total(&self) -> u64 {
        self.rows.iter().map(|r| r.samples).sum()
    }

    pub fn samples_in(&self, space: Space) -> u64 {
        self.rows
            .iter()
            .filter(|r| r.space == space)
            .map(|r| r.samples)
            .sum()
    }

    /// The `n` rows of `space` with the most samples, most first (ties in
    /// the report's order).
    pub fn top(&self, space: Space, n: usize) -> Vec<&ReportRow> {
        let mut rows: Vec<&ReportRow> = self.rows.iter().filter(|r| r.space == space).collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.samples));
        rows.truncate(n);
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `perf report` on `perf record -e cpu-clock -F 4999 -p PID` of an
    /// `lt-writev` server under 25,000 req/s × 64 connections × 64 B.
    const LT_WRITEV: &str = include_str!("fixtures/perf-report-lt-writev.txt");

    #[test]
    fn the_captured_report_parses_into_kernel_and_user_rows() {
        let report = parse(LT_WRITEV).unwrap();
        assert_eq!(report.event.as_deref(), Some("cpu-clock"));
        assert_eq!(report.lost_samples, 0);
        // The header says "1K": every row together.
        let total = report.samples_total();
        assert!((1000..2000).contains(&total), "{total}");
        let kernel = report.samples_in(Space::Kernel);
        let user = report.samples_in(Space::User);
        assert_eq!(kernel + user, total, "no guest or hypervisor samples here");
        assert!(
            kernel > 10 * user,
            "a small-frame server lives in the kernel: {kernel} vs {user}"
        );
        let first = &report.rows[0];
        assert_eq!(
            (
                first.shared_object.as_str(),
                first.symbol.as_str(),
                first.space,
                first.samples
            ),
            (
                "[kernel.kallsyms]",
                "_raw_spin_unlock_irqrestore",
                Space::Kernel,
                96
            )
        );
        let top = report.top(Space::User, 3);
        let named: Vec<(&str, &str, u64)> = top
            .iter()
            .map(|r| (r.shared_object.as_str(), r.symbol.as_str(), r.samples))
            .collect();
        assert_eq!(
            named,
            [
                (
                    "epoll-bench",
                    "epoll_bench::server::copy::ring::RingConn::after_read",
                    23
                ),
                (
                    "epoll-bench",
                    "epoll_bench::server::copy::ring::RingConn::gather",
                    16
                ),
                (
                    "epoll-bench",
                    "epoll_bench::server::event_loop::EventLoop<T,C>::run",
                    13
                ),
            ]
        );
    }

    #[test]
    fn a_symbol_with_spaces_and_brackets_is_kept_whole() {
        let report = parse(LT_WRITEV).unwrap();
        let write_once = report
            .rows
            .iter()
            .find(|r| r.symbol.ends_with("::write_once"))
            .unwrap();
        assert_eq!(
            write_once.symbol,
            "<epoll_bench::server::copy::writev::Gathered as epoll_bench::server::copy::CopyStrategy>::write_once"
        );
        assert_eq!(write_once.space, Space::User);
        let row = parse_row("     0.50%  7  [unknown]  [.] 0x00007f00 [k] odd name").unwrap();
        assert_eq!(
            (row.shared_object.as_str(), row.symbol.as_str(), row.space),
            ("[unknown]", "0x00007f00 [k] odd name", Space::User)
        );
    }

    #[test]
    fn lines_that_are_not_rows_are_errors_naming_the_line() {
        let without_counts = "# header\n\n    12.00%  [kernel.kallsyms]  [k] f\n";
        let err = parse(without_counts).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.what.contains("--show-nr-samples"), "{err}");
        let unsorted = "    12.00%     3  f\n";
        assert!(parse(unsorted).unwrap_err().what.contains("marker"));
        let empty = parse("# only comments\n#\n").unwrap();
        assert_eq!(empty.samples_total(), 0);
        assert!(empty.top(Space::User, 5).is_empty());
    }
}
