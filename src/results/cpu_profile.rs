//! Where a server's CPU went in one case (`run --profile-cpu`): one extra
//! window per server after the case's timing and counting repetitions,
//! sampled by `perf record` (software event `cpu-clock`), summed into
//! kernel and user-space shares and the user-space symbols with the most
//! samples. Nothing here enters the timing figures: the sampling costs the
//! server CPU, so the window is kept apart like the counting ones.

use serde::{Deserialize, Serialize};

use crate::metrics::perf_report::{PerfReport, Space};
use crate::server::VariantName;

/// User-space symbols kept per server.
pub const TOP_USER_SYMBOLS: usize = 15;

/// One server's profile in one case, or why there is none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuProfile {
    /// The case's label.
    pub case: String,
    pub server: VariantName,
    /// Started by its command (`run --server`), not a built-in variant.
    pub external: bool,
    /// The perf event sampled.
    pub event: String,
    pub frequency_hz: u32,
    /// The sampled window (the run's measured window).
    pub window_seconds: f64,
    /// `perf report`'s text, relative to the results directory.
    pub raw_report_path: Option<String>,
    /// Why there is no table (perf missing or refused, the window failed).
    pub unavailable_reason: Option<String>,
    pub table: Option<CpuProfileTable>,
}

/// Samples of one window, summed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuProfileTable {
    /// Samples in the server's threads over the window.
    pub samples_total: u64,
    pub samples_user: u64,
    pub samples_kernel: u64,
    pub user_share_percent: f64,
    pub kernel_share_percent: f64,
    /// Samples perf lost (could not keep up); the shares leave them out.
    pub samples_lost: u64,
    /// Requests the driver completed in the window.
    pub requests_completed: u64,
    pub samples_per_request: f64,
    /// `samples_per_request / frequency_hz`: the sampled estimate of the
    /// server's CPU per request (perf's own cost included).
    pub sampled_cpu_us_per_request: f64,
    /// At most [`TOP_USER_SYMBOLS`], most samples first.
    pub top_user_symbols: Vec<SymbolShare>,
}

/// One user-space symbol's self samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymbolShare {
    pub shared_object: String,
    pub symbol: String,
    pub samples: u64,
    /// Of all the window's samples (kernel included).
    pub share_percent: f64,
}

impl CpuProfileTable {
    /// The table of `report`, a window of `requests_completed` requests
    /// sampled at `frequency_hz`; `None` when nothing was sampled.
    pub fn from_report(
        report: &PerfReport,
        requests_completed: u64,
        frequency_hz: u32,
    ) -> Option<CpuProfileTable> {
        let total = report.samples_total();
        if total == 0 {
            return None;
        }
        let share = |samples: u64| samples as f64 * 100.0 / total as f64;
        let samples_user = report.samples_in(Space::User);
        let samples_kernel = report.samples_in(Space::Kernel);
        let samples_per_request = total as f64 / requests_completed.max(1) as f64;
        Some(CpuProfileTable {
            samples_total: total,
            samples_user,
            samples_kernel,
            user_share_percent: share(samples_user),
            kernel_share_percent: share(samples_kernel),
            samples_lost: report.lost_samples,
            requests_completed,
            samples_per_request,
            sampled_cpu_us_per_request: samples_per_request * 1e6 / f64::from(frequency_hz.max(1)),
            top_user_symbols: report
                .top(Space::User, TOP_USER_SYMBOLS)
                .into_iter()
                .map(|row| SymbolShare {
                    shared_object: row.shared_object.clone(),
                    symbol: row.symbol.clone(),
                    samples: row.samples,
                    share_percent: share(row.samples),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::perf_report::parse;

    #[test]
    fn shares_and_per_request_figures_come_from_the_sample_counts() {
        let text = "\
# Total Lost Samples: 2
# Samples: 10 of event 'cpu-clock'
    60.00%   6  [kernel.kallsyms]  [k] tcp_sendmsg
    30.00%   3  server             [.] parse_frame
    10.00%   1  libc.so.6          [.] memcpy
";
        let table = CpuProfileTable::from_report(&parse(text).unwrap(), 5, 5000).unwrap();
        assert_eq!(
            (
                table.samples_total,
                table.samples_user,
                table.samples_kernel
            ),
            (10, 4, 6)
        );
        assert_eq!(
            (table.user_share_percent, table.kernel_share_percent),
            (40.0, 60.0)
        );
        assert_eq!(table.samples_lost, 2);
        assert_eq!(table.samples_per_request, 2.0);
        // 2 samples of 1/5000 s each: 400 µs.
        assert_eq!(table.sampled_cpu_us_per_request, 400.0);
        let symbols: Vec<(&str, u64, f64)> = table
            .top_user_symbols
            .iter()
            .map(|s| (s.symbol.as_str(), s.samples, s.share_percent))
            .collect();
        assert_eq!(symbols, [("parse_frame", 3, 30.0), ("memcpy", 1, 10.0)]);
        assert_eq!(
            CpuProfileTable::from_report(&parse("#\n").unwrap(), 5, 5000),
            None
        );
    }
}
