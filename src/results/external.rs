//! What results keep of a server measured from outside (an external
//! server: `run --server NAME=COMMAND`): the kernel's counts for the whole
//! process over each window, and their figures per request. Everything
//! that needs the server's own counters is unavailable for it and stays
//! absent (never zero): [`UNAVAILABLE_FROM_OUTSIDE`] names it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sys::process_counters::ProcessCounts;

use super::measurement::CaseMeasurement;
use super::{Repetition, Spread};

/// The figures an external server cannot have, as reports state them.
pub const UNAVAILABLE_FROM_OUTSIDE: &str = "user-space syscall counts, epoll wake-ups and events per wake-up, payload copies, loop counters, user/system CPU split, voluntary/involuntary switches and the in-process cross-check";

/// Why an external server's in-process figures are missing, for
/// `server_side_unavailable_reason`.
pub fn unavailable_reason(command: &str) -> String {
    format!(
        "external server `{command}`, measured from outside: its CPU, context switches, syscalls by kind and EAGAIN returns by kind are the kernel's counts over all its threads; {UNAVAILABLE_FROM_OUTSIDE} are unavailable"
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
    /// Calls that returned `EAGAIN` (exit tracepoints filtered to
    /// `ret == -EAGAIN`), all counted kinds together, over the counting
    /// repetitions; `None` when the kernel could not count them in every
    /// counting repetition (unavailable, not zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eagain_per_request_total: Option<Spread>,
    /// By the kernel's syscall name, as a built-in variant's
    /// `server.eagain_per_request`: only kinds that returned `EAGAIN` at
    /// least once in some repetition; `None` as above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eagain_per_request: Option<BTreeMap<String, Spread>>,
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
    /// By kernel name, kinds called at least once.
    pub by_kind: Vec<BTreeMap<String, f64>>,
    /// `EAGAIN` returns by kernel name, kinds that returned it at least
    /// once, counting repetitions; `None` unless every counting repetition
    /// has them (and there is one).
    pub eagain: Option<Vec<BTreeMap<String, f64>>>,
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
        by_kind: Vec::new(),
        eagain: Some(Vec::new()),
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
            values.by_kind.push(
                syscalls
                    .by_kind
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(name, n)| (name.clone(), *n as f64 / requests))
                    .collect(),
            );
            values.eagain = match (values.eagain.take(), &syscalls.eagain_by_kind) {
                (Some(mut reps), Some(eagain)) => {
                    reps.push(
                        eagain
                            .iter()
                            .filter(|(_, n)| **n > 0)
                            .map(|(name, n)| (name.clone(), *n as f64 / requests))
                            .collect(),
                    );
                    Some(reps)
                }
                _ => None,
            };
        }
    }
    if values.by_kind.is_empty() {
        values.eagain = None;
    }
    (!values.cpu_us.is_empty()).then_some(values)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::results::figures::{
        CONTEXT_SWITCHES_PER_REQUEST, FIGURES, SERVER_CPU_US_PER_REQUEST,
    };
    use crate::results::fixture;

    #[test]
    fn eagain_counts_the_kernel_could_not_have_stay_absent() {
        let mut result = fixture::external_variant(1000);
        for r in &mut result.repetitions {
            let window = r.external_window.as_mut().unwrap();
            if let Some(syscalls) = window.counts.as_mut().unwrap().syscalls.as_mut() {
                syscalls.eagain_by_kind = None;
                syscalls.eagain_unavailable_reason = Some("refused".into());
            }
        }
        let summary = crate::results::aggregate::summarize(&result.repetitions).unwrap();
        let external = summary.external_server.unwrap();
        assert_eq!(external.eagain_per_request, None);
        assert_eq!(external.eagain_per_request_total, None);
        // The rest is still there.
        assert_eq!(external.syscalls_per_request["read"].median, 1.0);
    }

    #[test]
    fn a_server_with_no_eagain_returns_has_zero_not_unavailable() {
        let mut result = fixture::external_variant(1000);
        for r in &mut result.repetitions {
            let window = r.external_window.as_mut().unwrap();
            if let Some(syscalls) = window.counts.as_mut().unwrap().syscalls.as_mut() {
                syscalls.eagain_by_kind = Some(BTreeMap::from([("read".to_string(), 0)]));
            }
        }
        let summary = crate::results::aggregate::summarize(&result.repetitions).unwrap();
        let external = summary.external_server.unwrap();
        assert_eq!(external.eagain_per_request, Some(BTreeMap::new()));
        let total = external.eagain_per_request_total.unwrap().median;
        // +0.0: reports print -0.0 as "-0.000".
        assert!(total == 0.0 && total.is_sign_positive(), "{total}");
    }

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
        // EAGAIN returns counted by the kernel, only kinds that had some,
        // as a built-in variant's.
        let eagain = external.eagain_per_request.as_ref().unwrap();
        assert_eq!(eagain["read"].median, 0.5);
        assert!(!eagain.contains_key("writev"), "{eagain:?}");
        assert_eq!(external.eagain_per_request_total.unwrap().median, 0.5);
        let eagain_total = FIGURES
            .iter()
            .find(|f| f.name == "eagain_per_request_total")
            .unwrap();
        assert_eq!((eagain_total.pick)(summary).unwrap().median, 0.5);
        // Every syscall, ours (`epoll_pwait`, `read`) or not (`futex`).
        assert_eq!(
            summary.kernel_syscalls_per_request_total.unwrap().median,
            3.0
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
