//! What results keep of a server measured from outside (an external
//! server: `run --server NAME=COMMAND`): the kernel's counts for the whole
//! process over each window, and their figures per request. Everything
//! that needs the server's own counters is unavailable for it and stays
//! absent (never zero): [`UNAVAILABLE_FROM_OUTSIDE`] names it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sys::SyscallKind;
use crate::sys::process_counters::ProcessCounts;

use super::measurement::CaseMeasurement;
use super::{Repetition, Spread};

/// The figures an external server cannot have, as reports state them.
pub const UNAVAILABLE_FROM_OUTSIDE: &str = "user-space syscall counts, EAGAIN returns, epoll wake-ups and events per wake-up, payload copies, loop counters, user/system CPU split, voluntary/involuntary switches and the in-process cross-check";

/// Why an external server's in-process figures are missing, for
/// `server_side_unavailable_reason`.
pub fn unavailable_reason(command: &str) -> String {
    format!(
        "external server `{command}`, measured from outside: its CPU, context switches and syscalls by kind are the kernel's counts over all its threads; {UNAVAILABLE_FROM_OUTSIDE} are unavailable"
    )
}

/// An external server's side of one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalWindow {
    /// The kernel's counts over the window (`task-clock`,
    /// `context-switches`, and in counting repetitions the syscalls by
    /// kind), inherited by every thread of the server; `None` when the
    /// kernel could not count it.
    pub counts: Option<ProcessCounts>,
    /// Why `counts` is missing.
    pub counters_unavailable_reason: Option<String>,
}

/// An external server's figures per request completed by the driver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalServerSummary {
    /// `task-clock` (user + system, all threads) over the timing
    /// repetitions.
    pub server_cpu_us_per_request: Spread,
    /// `context-switches` over the timing repetitions.
    pub context_switches_per_request: Spread,
    /// `raw_syscalls:sys_enter`: every syscall, over the counting
    /// repetitions; `None` without one.
    pub all_syscalls_per_request_total: Option<Spread>,
    /// By the kernel's syscall name, over the counting repetitions; only
    /// kinds called at least once in some repetition.
    pub syscalls_per_request: BTreeMap<String, Spread>,
}

/// The window counts of passed repetitions and their measurements.
fn counted<'a>(
    repetitions: &'a [Repetition],
    measurements: &'a [&'a CaseMeasurement],
) -> Option<Vec<(&'a Repetition, &'a ProcessCounts, f64)>> {
    repetitions
        .iter()
        .zip(measurements)
        .map(|(r, m)| {
            let counts = r.external_window.as_ref()?.counts.as_ref()?;
            Some((r, counts, m.requests_completed.max(1) as f64))
        })
        .collect()
}

/// Per-request values of an external server's repetitions, one entry per
/// repetition that gives them; `aggregate` turns them into spreads.
pub struct ExternalValues {
    /// µs of task clock per request, timing repetitions.
    pub cpu_us: Vec<f64>,
    pub context_switches: Vec<f64>,
    /// Every syscall, counting repetitions.
    pub all_syscalls: Vec<f64>,
    /// This project's kinds only (comparable with a built-in variant's
    /// kernel count), counting repetitions.
    pub tracked_syscalls: Vec<f64>,
    /// By kernel name, kinds called at least once.
    pub by_kind: Vec<BTreeMap<String, f64>>,
}

/// The values of `repetitions` (passed, with `measurements`); `None`
/// unless every one was counted from outside and one was timed.
pub fn external_values(
    repetitions: &[Repetition],
    measurements: &[&CaseMeasurement],
) -> Option<ExternalValues> {
    let counted = counted(repetitions, measurements)?;
    let mut values = ExternalValues {
        cpu_us: Vec::new(),
        context_switches: Vec::new(),
        all_syscalls: Vec::new(),
        tracked_syscalls: Vec::new(),
        by_kind: Vec::new(),
    };
    for (r, counts, requests) in &counted {
        if r.purpose.gives_time() {
            values
                .cpu_us
                .push(counts.task_clock_ns as f64 / 1e3 / requests);
            values
                .context_switches
                .push(counts.context_switches as f64 / requests);
        }
        if let Some(syscalls) = counts.syscalls.as_ref() {
            values.all_syscalls.push(syscalls.total as f64 / requests);
            let ours: u64 = SyscallKind::ALL
                .iter()
                .filter_map(|k| syscalls.by_kind.get(k.kernel_name()))
                .sum();
            values.tracked_syscalls.push(ours as f64 / requests);
            values.by_kind.push(
                syscalls
                    .by_kind
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(name, n)| (name.clone(), *n as f64 / requests))
                    .collect(),
            );
        }
    }
    (!values.cpu_us.is_empty()).then_some(values)
}

#[cfg(test)]
mod tests {
    use crate::results::figures::{
        CONTEXT_SWITCHES_PER_REQUEST, FIGURES, SERVER_CPU_US_PER_REQUEST,
    };
    use crate::results::fixture;

    #[test]
    fn kernel_counts_become_figures_and_the_rest_stays_unavailable() {
        let result = fixture::external_variant(1000);
        let summary = result.summary.as_ref().unwrap();
        let external = summary.external_server.as_ref().unwrap();
        assert_eq!(external.server_cpu_us_per_request.median, 2.0);
        // Only the timing repetition gives time figures.
        assert_eq!(external.server_cpu_us_per_request.samples, 1);
        assert_eq!(external.all_syscalls_per_request_total.unwrap().median, 3.0);
        assert_eq!(external.syscalls_per_request["futex"].median, 1.0);
        // Of the three kinds, `epoll_pwait` and `read` are ours: comparable
        // with a built-in variant's kernel count.
        assert_eq!(
            summary.kernel_syscalls_per_request_total.unwrap().median,
            2.0
        );
        assert_eq!(
            (SERVER_CPU_US_PER_REQUEST.pick)(summary).unwrap().median,
            2.0
        );
        assert_eq!(
            (CONTEXT_SWITCHES_PER_REQUEST.pick)(summary).unwrap().median,
            0.1
        );
        // In-process figures: unavailable, not zero.
        assert!(summary.server.is_none() && summary.kernel_cross_check_passed.is_none());
        for name in [
            "syscalls_per_request_total",
            "eagain_per_request_total",
            "epoll_wait_calls_per_request",
            "payload_copy_bytes_per_request",
            "server_cpu_user_us_per_request",
            "voluntary_context_switches_per_request",
        ] {
            let figure = FIGURES.iter().find(|f| f.name == name).unwrap();
            assert_eq!((figure.pick)(summary), None, "{name}");
        }
    }
}
