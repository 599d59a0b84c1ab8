//! What the measuring instruments cost the server: server CPU per request
//! at one fixed offered load with no instruments, with in-process syscall
//! counting, and with in-process counting plus the kernel's counters, in
//! interleaved rounds (`run --instrument-cost`). Timing windows carry only
//! the in-process counting, so its cost is what the time figures include;
//! the kernel counters run in counting windows only.

use serde::{Deserialize, Serialize};

use super::Spread;
use super::spread::spread;

/// The most in-process counting may add to the server's CPU per request
/// for time figures to be citable (issue 11), percent.
pub const TIMING_WINDOW_LIMIT_PERCENT: f64 = 1.0;

/// The `instrument_cost` block of a results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentCost {
    /// The variant whose server was measured.
    pub variant: String,
    /// Open loop (constant rate), fixed whatever the server's speed, so CPU
    /// per request compares servers without depending on the driver.
    pub offered_rate_per_second: f64,
    pub connections: u32,
    pub payload_bytes: u32,
    pub warmup_seconds: f64,
    pub window_seconds: f64,
    /// Rounds in which every setting ran once, in a shuffled order.
    pub rounds: u32,
    /// `serve --no-syscall-counting`.
    pub no_instruments: InstrumentSetting,
    /// `serve` (what timing windows run).
    pub syscall_counting: InstrumentSetting,
    /// `serve --kernel-counters` (what counting windows run).
    pub syscall_and_kernel_counting: InstrumentSetting,
    /// In-process counting against no instruments, per round, percent of
    /// server CPU per request.
    pub syscall_counting_cost_percent: Spread,
    /// Kernel counters on top of in-process counting, per round, percent.
    pub kernel_counters_cost_percent: Spread,
    /// The kernel counters' extra server CPU (medians) over the syscalls
    /// counted per request: what each counted call costs.
    pub kernel_counters_cost_us_per_syscall: f64,
    /// [`TIMING_WINDOW_LIMIT_PERCENT`].
    pub timing_window_limit_percent: f64,
    /// The median `syscall_counting_cost_percent` is at most the limit: the
    /// instrument left in timing windows stretches them by no more.
    pub timing_window_within_limit: bool,
}

/// One setting's figures over the rounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentSetting {
    pub server_cpu_us_per_request: Spread,
    /// Completed requests per second: near the offered rate when the
    /// server kept up.
    pub requests_per_second: Spread,
    /// In-process count; `None` without counting.
    pub syscalls_per_request_total: Option<Spread>,
}

/// What one window of one setting gave.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SettingWindow {
    pub server_cpu_us_per_request: f64,
    pub requests_per_second: f64,
    pub syscalls_per_request: Option<f64>,
}

/// One round: every setting once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Round {
    pub no_instruments: SettingWindow,
    pub syscall_counting: SettingWindow,
    pub syscall_and_kernel_counting: SettingWindow,
}

/// The load every round offered.
#[derive(Clone, Debug, PartialEq)]
pub struct FixedLoad {
    pub variant: String,
    pub offered_rate_per_second: f64,
    pub connections: u32,
    pub payload_bytes: u32,
    pub warmup_seconds: f64,
    pub window_seconds: f64,
}

fn setting(windows: &[SettingWindow]) -> InstrumentSetting {
    let syscalls: Option<Vec<f64>> = windows.iter().map(|w| w.syscalls_per_request).collect();
    InstrumentSetting {
        server_cpu_us_per_request: spread(
            &windows
                .iter()
                .map(|w| w.server_cpu_us_per_request)
                .collect::<Vec<_>>(),
        ),
        requests_per_second: spread(
            &windows
                .iter()
                .map(|w| w.requests_per_second)
                .collect::<Vec<_>>(),
        ),
        syscalls_per_request_total: syscalls.map(|s| spread(&s)),
    }
}

/// `(with - without) / without` in percent, 0 when `without` is 0.
fn percent_more(with: f64, without: f64) -> f64 {
    if without > 0.0 {
        (with - without) / without * 100.0
    } else {
        0.0
    }
}

impl InstrumentCost {
    /// The block from its rounds. Costs are paired per round (the settings
    /// of one round ran back to back), then the median taken, so slow drift
    /// of a shared machine cancels instead of landing on one setting.
    pub fn from_rounds(load: FixedLoad, rounds: &[Round]) -> InstrumentCost {
        let pick = |f: fn(&Round) -> SettingWindow| rounds.iter().map(f).collect::<Vec<_>>();
        let none = setting(&pick(|r| r.no_instruments));
        let counting = setting(&pick(|r| r.syscall_counting));
        let kernel = setting(&pick(|r| r.syscall_and_kernel_counting));
        let counting_cost = spread(
            &rounds
                .iter()
                .map(|r| {
                    percent_more(
                        r.syscall_counting.server_cpu_us_per_request,
                        r.no_instruments.server_cpu_us_per_request,
                    )
                })
                .collect::<Vec<_>>(),
        );
        let kernel_cost = spread(
            &rounds
                .iter()
                .map(|r| {
                    percent_more(
                        r.syscall_and_kernel_counting.server_cpu_us_per_request,
                        r.syscall_counting.server_cpu_us_per_request,
                    )
                })
                .collect::<Vec<_>>(),
        );
        let syscalls = counting
            .syscalls_per_request_total
            .map_or(0.0, |s| s.median);
        let kernel_extra_us =
            kernel.server_cpu_us_per_request.median - counting.server_cpu_us_per_request.median;
        InstrumentCost {
            variant: load.variant,
            offered_rate_per_second: load.offered_rate_per_second,
            connections: load.connections,
            payload_bytes: load.payload_bytes,
            warmup_seconds: load.warmup_seconds,
            window_seconds: load.window_seconds,
            rounds: rounds.len() as u32,
            no_instruments: none,
            syscall_counting: counting,
            syscall_and_kernel_counting: kernel,
            timing_window_limit_percent: TIMING_WINDOW_LIMIT_PERCENT,
            timing_window_within_limit: counting_cost.median <= TIMING_WINDOW_LIMIT_PERCENT,
            syscall_counting_cost_percent: counting_cost,
            kernel_counters_cost_percent: kernel_cost,
            kernel_counters_cost_us_per_syscall: if syscalls > 0.0 {
                kernel_extra_us / syscalls
            } else {
                0.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(cpu_us: f64, syscalls: Option<f64>) -> SettingWindow {
        SettingWindow {
            server_cpu_us_per_request: cpu_us,
            requests_per_second: 50_000.0,
            syscalls_per_request: syscalls,
        }
    }

    fn load() -> FixedLoad {
        FixedLoad {
            variant: "lt-writev".into(),
            offered_rate_per_second: 50_000.0,
            connections: 64,
            payload_bytes: 64,
            warmup_seconds: 0.5,
            window_seconds: 2.0,
        }
    }

    #[test]
    fn costs_are_paired_per_round_and_judged_against_the_limit() {
        // The machine slows down round by round; each round's settings keep
        // their ratios: counting +0.5%, kernel counters +12% on top.
        let rounds: Vec<Round> = [10.0, 11.0, 12.0]
            .iter()
            .map(|&base| Round {
                no_instruments: window(base, None),
                syscall_counting: window(base * 1.005, Some(4.0)),
                syscall_and_kernel_counting: window(base * 1.005 * 1.12, Some(4.0)),
            })
            .collect();
        let cost = InstrumentCost::from_rounds(load(), &rounds);
        assert_eq!(cost.rounds, 3);
        assert!((cost.syscall_counting_cost_percent.median - 0.5).abs() < 1e-9);
        // Paired: the drift (CV of each setting ~9%) is not in the cost.
        assert!(cost.syscall_counting_cost_percent.cv_percent < 1e-6);
        assert!(cost.no_instruments.server_cpu_us_per_request.cv_percent > 5.0);
        assert!((cost.kernel_counters_cost_percent.median - 12.0).abs() < 1e-9);
        assert!(cost.timing_window_within_limit);
        assert!(cost.no_instruments.syscalls_per_request_total.is_none());
        // Medians 11.055 and 12.3816 µs over 4 syscalls per request.
        let per_call = (11.0 * 1.005 * 1.12 - 11.0 * 1.005) / 4.0;
        assert!((cost.kernel_counters_cost_us_per_syscall - per_call).abs() < 1e-9);

        let costly: Vec<Round> = rounds
            .iter()
            .map(|r| Round {
                syscall_counting: window(
                    r.no_instruments.server_cpu_us_per_request * 1.03,
                    Some(4.0),
                ),
                ..*r
            })
            .collect();
        let cost = InstrumentCost::from_rounds(load(), &costly);
        assert!((cost.syscall_counting_cost_percent.median - 3.0).abs() < 1e-9);
        assert!(!cost.timing_window_within_limit);
    }
}
