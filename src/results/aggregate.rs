//! From repetitions to reported figures: per-request ratios of one
//! repetition, then median, min, max and coefficient of variation over
//! repetitions. Pure functions, so they can be checked exactly on fixtures.

use std::collections::BTreeMap;

use crate::metrics::cross_check::{CrossCheck, CrossCheckReport};
use crate::results::external::ExternalServerSummary;
use crate::results::measurement::CaseMeasurement;
use crate::server::VariantName;
use crate::server::report::ServerReport;

use super::buffers::{BufferFigures, buffer_summary};
use super::connection_memory;
use super::uring_ops::{UringOpFigures, UringOpsSummary};
use super::zerocopy::{ZerocopyFigures, zerocopy_summary};

use super::{
    DRIVER_SATURATED_PERCENT, Repetition, ServerMemory, ServerSummary, Spread, Status, Summary,
    VariantResult,
};

pub use super::spread::spread;

/// The server figures of one repetition, per driver-completed request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerFigures {
    pub syscalls_per_request: BTreeMap<String, f64>,
    pub eagain_per_request: BTreeMap<String, f64>,
    pub syscalls_per_request_total: f64,
    pub eagain_per_request_total: f64,
    pub epoll_wait_calls_per_request: f64,
    pub epoll_events_per_wakeup: f64,
    pub payload_copy_bytes_in_per_request: f64,
    pub payload_copy_bytes_out_per_request: f64,
    pub server_cpu_user_us_per_request: f64,
    pub server_cpu_system_us_per_request: f64,
    pub voluntary_context_switches_per_request: f64,
    pub involuntary_context_switches_per_request: f64,
    /// `None` for a window without a ring (epoll).
    pub uring_ops: Option<UringOpFigures>,
    /// `None` for a window without zerocopy sends.
    pub zerocopy: Option<ZerocopyFigures>,
    /// `None` for a window without a ring buffer the policy applies to.
    pub buffers: Option<BufferFigures>,
}

impl ServerFigures {
    pub fn server_cpu_us_per_request(&self) -> f64 {
        self.server_cpu_user_us_per_request + self.server_cpu_system_us_per_request
    }
}

/// Server figures of one window over `requests` driver-completed requests.
pub fn server_figures(window: &ServerReport, requests: u64) -> ServerFigures {
    let per = |count: f64| count / requests.max(1) as f64;
    let total = &window.total;
    let mut out = ServerFigures::default();
    for (kind, calls) in total.syscalls.calls.iter() {
        if calls > 0 {
            out.syscalls_per_request
                .insert(kind.name().to_string(), per(calls as f64));
        }
    }
    for (kind, eagain) in total.syscalls.eagain.iter() {
        if eagain > 0 {
            out.eagain_per_request
                .insert(kind.name().to_string(), per(eagain as f64));
        }
    }
    out.syscalls_per_request_total = per(total.syscalls.calls.total() as f64);
    out.eagain_per_request_total = per(total.syscalls.eagain.total() as f64);
    out.epoll_wait_calls_per_request =
        per(total.syscalls.calls.get(crate::sys::SyscallKind::EpollWait) as f64);
    out.epoll_events_per_wakeup = if total.counters.epoll_wait_calls == 0 {
        0.0
    } else {
        total.counters.epoll_events_returned as f64 / total.counters.epoll_wait_calls as f64
    };
    // Summed per thread: each thread subtracts its own headers.
    let copy_in: u64 = window
        .threads
        .iter()
        .map(|t| t.payload_copy_bytes_in())
        .sum();
    let copy_out: u64 = window
        .threads
        .iter()
        .map(|t| t.payload_copy_bytes_out())
        .sum();
    out.payload_copy_bytes_in_per_request = per(copy_in as f64);
    out.payload_copy_bytes_out_per_request = per(copy_out as f64);
    out.server_cpu_user_us_per_request = per(total.usage.cpu_user_seconds * 1e6);
    out.server_cpu_system_us_per_request = per(total.usage.cpu_system_seconds * 1e6);
    out.voluntary_context_switches_per_request = per(total.usage.voluntary_context_switches as f64);
    out.involuntary_context_switches_per_request =
        per(total.usage.involuntary_context_switches as f64);
    out.uring_ops = total
        .uring_ops
        .map(|ops| UringOpFigures::of(&ops, requests));
    out.zerocopy = ZerocopyFigures::of(&total.counters, requests);
    out.buffers = BufferFigures::of(&total.counters, requests);
    out
}

/// Driver threads' CPU per completed request, µs.
pub fn driver_cpu_us_per_request(m: &CaseMeasurement) -> f64 {
    (m.driver_usage.cpu_user_seconds + m.driver_usage.cpu_system_seconds) * 1e6
        / m.requests_completed.max(1) as f64
}

/// How busy the server was over a window of `seconds`: its CPU time, percent
/// of the CPU time it could have used. That is one CPU per serving thread,
/// but no more CPUs than its processes may run on: six loops pinned to one
/// CPU that keep it 57% busy have 43% of a CPU left, not 88% of six (the
/// server's affinity is unknown in reports written before it was recorded;
/// those count one CPU per thread).
pub fn server_cpu_utilization_percent(window: &ServerReport, seconds: f64) -> f64 {
    let usage = &window.total.usage;
    let threads = window.threads.len().max(1);
    let cpus = window
        .cpus_allowed_count()
        .map_or(threads, |cpus| cpus.min(threads));
    (usage.cpu_user_seconds + usage.cpu_system_seconds) * 100.0
        / (seconds * cpus as f64).max(f64::MIN_POSITIVE)
}

/// Median etc. of `f` over repetitions.
fn over<T>(items: &[T], f: impl Fn(&T) -> f64) -> Spread {
    spread(&items.iter().map(f).collect::<Vec<_>>())
}

/// Spreads by kind; a kind missing from a repetition counts as 0 there.
fn by_kind(maps: &[&BTreeMap<String, f64>]) -> BTreeMap<String, Spread> {
    let kinds: std::collections::BTreeSet<&String> = maps.iter().flat_map(|m| m.keys()).collect();
    kinds
        .into_iter()
        .map(|kind| {
            let values: Vec<f64> = maps
                .iter()
                .map(|m| m.get(kind).copied().unwrap_or(0.0))
                .collect();
            (kind.clone(), spread(&values))
        })
        .collect()
}

/// io_uring operations over repetitions; `None` unless every repetition
/// has them (an epoll variant has none).
pub fn uring_ops_summary(repetitions: &[Option<&UringOpFigures>]) -> Option<UringOpsSummary> {
    let figures: Vec<&UringOpFigures> = repetitions.iter().copied().collect::<Option<_>>()?;
    if figures.is_empty() {
        return None;
    }
    let maps = |f: fn(&UringOpFigures) -> &BTreeMap<String, f64>| {
        by_kind(&figures.iter().map(|x| f(x)).collect::<Vec<_>>())
    };
    Some(UringOpsSummary {
        sqes_per_request_total: over(&figures, |f| f.sqes_per_request_total),
        cqes_per_request_total: over(&figures, |f| f.cqes_per_request_total),
        sqes_per_request: maps(|f| &f.sqes_per_request),
        cqes_per_request: maps(|f| &f.cqes_per_request),
        multishot_rearms_per_request: over(&figures, |f| f.multishot_rearms_per_request),
        buffer_ring_refills_per_request: over(&figures, |f| f.buffer_ring_refills_per_request),
    })
}

/// `counted`: figures of every repetition (syscall counts are exact with
/// or without kernel counters); `timed`: those of the timing repetitions
/// only, for what the kernel counters would have stretched.
fn server_summary(counted: &[ServerFigures], timed: &[ServerFigures]) -> ServerSummary {
    ServerSummary {
        syscalls_per_request_total: over(counted, |f| f.syscalls_per_request_total),
        syscalls_per_request: by_kind(
            &counted
                .iter()
                .map(|f| &f.syscalls_per_request)
                .collect::<Vec<_>>(),
        ),
        eagain_per_request_total: over(counted, |f| f.eagain_per_request_total),
        eagain_per_request: by_kind(
            &counted
                .iter()
                .map(|f| &f.eagain_per_request)
                .collect::<Vec<_>>(),
        ),
        epoll_wait_calls_per_request: over(counted, |f| f.epoll_wait_calls_per_request),
        epoll_events_per_wakeup: over(counted, |f| f.epoll_events_per_wakeup),
        payload_copy_bytes_in_per_request: over(counted, |f| f.payload_copy_bytes_in_per_request),
        payload_copy_bytes_out_per_request: over(counted, |f| f.payload_copy_bytes_out_per_request),
        payload_copy_bytes_per_request: over(counted, |f| {
            f.payload_copy_bytes_in_per_request + f.payload_copy_bytes_out_per_request
        }),
        server_cpu_us_per_request: over(timed, |f| f.server_cpu_us_per_request()),
        server_cpu_user_us_per_request: over(timed, |f| f.server_cpu_user_us_per_request),
        server_cpu_system_us_per_request: over(timed, |f| f.server_cpu_system_us_per_request),
        // Scheduling follows the server's speed, so the instrument moves it.
        context_switches_per_request: over(timed, |f| {
            f.voluntary_context_switches_per_request + f.involuntary_context_switches_per_request
        }),
        voluntary_context_switches_per_request: over(timed, |f| {
            f.voluntary_context_switches_per_request
        }),
        involuntary_context_switches_per_request: over(timed, |f| {
            f.involuntary_context_switches_per_request
        }),
        uring_ops: uring_ops_summary(
            &counted
                .iter()
                .map(|f| f.uring_ops.as_ref())
                .collect::<Vec<_>>(),
        ),
        zerocopy: zerocopy_summary(
            &counted
                .iter()
                .map(|f| f.zerocopy.as_ref())
                .collect::<Vec<_>>(),
        ),
        buffers: buffer_summary(
            &counted
                .iter()
                .map(|f| f.buffers.as_ref())
                .collect::<Vec<_>>(),
        ),
    }
}

/// Whether the kernel cross-check passed: `false` when it disagreed in any
/// repetition (even one not meant for it: a server started elsewhere with
/// `--kernel-counters` checks every window), `true` when every repetition
/// meant for it agreed, `None` when some could not be checked.
fn kernel_cross_check_passed(
    repetitions: &[Repetition],
    checked: Option<&[&CrossCheckReport]>,
) -> Option<bool> {
    let disagreed = repetitions
        .iter()
        .any(|r| r.kernel_cross_check.as_ref().and_then(|c| c.passed()) == Some(false));
    if disagreed {
        return Some(false);
    }
    checked.map(|reports| reports.iter().all(|k| k.agrees))
}

/// Aggregates passed repetitions; `None` if there are none, any failed, or
/// none was timed. Time figures (throughput, latency, CPU, utilisation,
/// steal) come from the repetitions that give them
/// ([`RepetitionPurpose::gives_time`](super::RepetitionPurpose::gives_time)),
/// syscall counts and memory from all, the kernel cross-check from those
/// meant for it.
///
/// Long on purpose (~120 lines): one pass that fills [`Summary`] field by
/// field, one figure per statement, in the order docs/results-schema.md
/// lists them; split, the figure list would scatter over helpers.
pub fn summarize(repetitions: &[Repetition]) -> Option<Summary> {
    let kept: Vec<Repetition>;
    let repetitions = if repetitions.iter().any(|r| r.purpose.discarded()) {
        kept = repetitions
            .iter()
            .filter(|r| !r.purpose.discarded())
            .cloned()
            .collect();
        &kept[..]
    } else {
        repetitions
    };
    if repetitions.is_empty() || repetitions.iter().any(|r| r.status != Status::Passed) {
        return None;
    }
    let measurements: Vec<&CaseMeasurement> = repetitions
        .iter()
        .map(|r| r.measurement.as_ref())
        .collect::<Option<_>>()?;
    let timed_index: Vec<usize> = (0..repetitions.len())
        .filter(|&i| repetitions[i].purpose.gives_time())
        .collect();
    if timed_index.is_empty() {
        return None;
    }
    let timed_measurements: Vec<&CaseMeasurement> =
        timed_index.iter().map(|&i| measurements[i]).collect();
    // Server-side figures only when every repetition has its window.
    let windows: Option<Vec<(&ServerReport, &CaseMeasurement)>> = repetitions
        .iter()
        .zip(&measurements)
        .map(|(r, m)| r.server_window.as_ref().map(|w| (w, *m)))
        .collect();
    let server: Option<Vec<ServerFigures>> = windows.as_ref().map(|windows| {
        windows
            .iter()
            .map(|(w, m)| server_figures(w, m.requests_completed))
            .collect()
    });
    let timed_server: Option<Vec<ServerFigures>> = server
        .as_ref()
        .map(|figures| timed_index.iter().map(|&i| figures[i].clone()).collect());
    let server_utilization: Option<Vec<f64>> = windows.as_ref().map(|windows| {
        timed_index
            .iter()
            .map(|&i| {
                let (w, m) = windows[i];
                server_cpu_utilization_percent(w, m.measured_seconds)
            })
            .collect()
    });
    let memory: Option<Vec<&ServerMemory>> = repetitions
        .iter()
        .map(|r| r.server_memory.as_ref())
        .collect();

    let meant_for_check: Vec<(&Repetition, &CaseMeasurement)> = repetitions
        .iter()
        .zip(&measurements)
        .filter(|(r, _)| r.purpose.gives_cross_check())
        .map(|(r, m)| (r, *m))
        .collect();
    let kernel_reports: Option<Vec<&CrossCheckReport>> = (!meant_for_check.is_empty())
        .then(|| {
            meant_for_check
                .iter()
                .map(|(r, _)| match &r.kernel_cross_check {
                    Some(CrossCheck::Checked(report)) => Some(report),
                    _ => None,
                })
                .collect()
        })
        .flatten();
    let kernel_syscalls = kernel_reports.as_ref().map(|reports| {
        let values: Vec<f64> = reports
            .iter()
            .zip(&meant_for_check)
            .map(|(k, (_, m))| {
                k.kernel_tracked_kinds_syscalls as f64 / m.requests_completed.max(1) as f64
            })
            .collect();
        spread(&values)
    });
    let kernel_passed = kernel_cross_check_passed(repetitions, kernel_reports.as_deref());
    let driver_cpu = over(&timed_measurements, |m| driver_cpu_us_per_request(m));
    let driver_utilization = over(&timed_measurements, |m| m.driver_cpu_utilization() * 100.0);
    let ratio = timed_server.as_ref().map(|figures| {
        let ratios: Vec<f64> = timed_measurements
            .iter()
            .zip(figures)
            .map(|(m, f)| {
                let server_cpu = f.server_cpu_us_per_request();
                if server_cpu > 0.0 {
                    driver_cpu_us_per_request(m) / server_cpu
                } else {
                    0.0
                }
            })
            .collect();
        spread(&ratios)
    });
    let external = super::external::external_values(repetitions, &measurements);
    // From outside, the kernel's count of every syscall stands where the
    // cross-check's would: a built-in server makes all its syscalls through
    // `src/sys` (its kinds are all it calls), while another server's are
    // its own (tokio's `recvfrom`/`sendto`, Go's `nanosleep`, `futex`), and
    // counting only our kinds would show it making none.
    let kernel_syscalls = kernel_syscalls.or_else(|| {
        let all = &external.as_ref()?.all_syscalls;
        (!all.is_empty()).then(|| spread(all))
    });
    let timed = &timed_measurements;
    Some(Summary {
        repetitions_used: timed.len() as u32,
        requests_per_second: over(timed, |m| m.requests_per_second()),
        payload_megabytes_per_second: over(timed, |m| m.payload_megabytes_per_second()),
        p50_latency_us: over(timed, |m| m.latency.p50_us),
        p90_latency_us: over(timed, |m| m.latency.p90_us),
        p99_latency_us: over(timed, |m| m.latency.p99_us),
        p999_latency_us: over(timed, |m| m.latency.p999_us),
        max_latency_us: over(timed, |m| m.latency.max_us),
        driver_cpu_us_per_request: driver_cpu,
        server: server
            .as_deref()
            .zip(timed_server.as_deref())
            .map(|(counted, timed)| server_summary(counted, timed)),
        driver_bottleneck_warning: driver_utilization.median >= DRIVER_SATURATED_PERCENT,
        driver_cpu_utilization_percent: Some(driver_utilization),
        server_cpu_utilization_percent: server_utilization.map(|u| spread(&u)),
        cpu_steal_percent: timed
            .iter()
            .map(|m| m.cpu_steal_percent)
            .collect::<Option<Vec<f64>>>()
            .map(|steal| spread(&steal)),
        driver_to_server_cpu_ratio: ratio,
        memory_per_connection_bytes: memory.map(|m| over(&m, |m| m.per_connection_bytes)),
        server_rss_per_connection_bytes: connection_memory::server_rss_spread(repetitions),
        kernel_memory_per_connection_bytes: connection_memory::kernel_spread(repetitions),
        kernel_syscalls_per_request_total: kernel_syscalls,
        kernel_cross_check_passed: kernel_passed,
        external_server: external.map(|e| ExternalServerSummary {
            server_cpu_us_per_request: spread(&e.cpu_us),
            context_switches_per_request: spread(&e.context_switches),
            all_syscalls_per_request_total: (!e.all_syscalls.is_empty())
                .then(|| spread(&e.all_syscalls)),
            syscalls_per_request: by_kind(&e.by_kind.iter().collect::<Vec<_>>()),
            eagain_per_request_total: e
                .eagain
                .as_ref()
                // A fold from +0.0: `sum` of no values is -0.0, printed as such.
                .map(|reps| {
                    spread(
                        &reps
                            .iter()
                            .map(|m| m.values().fold(0.0, |a, b| a + b))
                            .collect::<Vec<_>>(),
                    )
                }),
            eagain_per_request: e
                .eagain
                .as_ref()
                .map(|reps| by_kind(&reps.iter().collect::<Vec<_>>())),
        }),
    })
}

/// Builds a variant's result from its repetitions: failed if any failed or
/// none finished; a summary only when passed.
pub fn finish_variant(
    variant: &VariantName,
    repetitions_planned: u32,
    repetitions: Vec<Repetition>,
    server_side_unavailable_reason: Option<String>,
) -> VariantResult {
    let mut failure_reasons: Vec<String> = Vec::new();
    // A window discarded for steal was measured again: its failure is not
    // the variant's.
    for r in repetitions.iter().filter(|r| !r.purpose.discarded()) {
        for reason in r.failure.iter().flat_map(|f| &f.reasons) {
            if !failure_reasons.contains(reason) {
                failure_reasons.push(reason.clone());
            }
        }
    }
    if repetitions.is_empty() {
        failure_reasons.push("no repetition finished".to_string());
    } else if !repetitions.iter().any(|r| r.purpose.gives_time()) {
        failure_reasons.push("no timing repetition finished".to_string());
    }
    let summary = if failure_reasons.is_empty() {
        summarize(&repetitions)
    } else {
        None
    };
    VariantResult {
        variant: variant.clone(),
        status: if summary.is_some() {
            Status::Passed
        } else {
            Status::Failed
        },
        repetitions_planned,
        repetitions,
        failure_reasons,
        server_side_unavailable_reason,
        summary,
        external_command: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{RepetitionPurpose, fixture};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn spread_of_odd_and_even_counts() {
        let s = spread(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max, s.samples), (2.0, 1.0, 3.0, 3));
        // mean 2, sample sd 1 → 50 %.
        assert!(close(s.cv_percent, 50.0), "{}", s.cv_percent);
        let s = spread(&[10.0, 20.0, 30.0, 40.0]);
        assert_eq!(s.median, 25.0);
        // mean 25, sample variance (225+25+25+225)/3 → sd 12.9099...
        assert!(close(s.cv_percent, (500.0f64 / 3.0).sqrt() / 25.0 * 100.0));
        let s = spread(&[7.0]);
        assert_eq!((s.median, s.cv_percent), (7.0, 0.0));
        assert_eq!(spread(&[0.0, 0.0]).cv_percent, 0.0);
        assert_eq!(spread(&[]).samples, 0);
    }

    #[test]
    fn summary_over_fixture_repetitions_is_exact() {
        let results = fixture::results();
        let v = &results.cases[0].variants[0];
        let s = v.summary.as_ref().unwrap();
        // Fixture: 1000, 1100, 1200 requests in 1 s windows.
        assert_eq!(s.requests_per_second.median, 1100.0);
        assert_eq!(s.requests_per_second.min, 1000.0);
        assert_eq!(s.requests_per_second.max, 1200.0);
        assert!(close(
            s.requests_per_second.cv_percent,
            100.0 / 1100.0 * 100.0
        ));
        let server = s.server.as_ref().unwrap();
        // Fixture server: 1 read + 1 write + 1 epoll_wait per request.
        assert_eq!(server.syscalls_per_request["read"].median, 1.0);
        assert_eq!(server.syscalls_per_request_total.median, 3.0);
        assert_eq!(server.epoll_wait_calls_per_request.median, 1.0);
        assert_eq!(server.epoll_events_per_wakeup.median, 2.0);
        // 64 B payload each way, headers subtracted.
        assert_eq!(server.payload_copy_bytes_in_per_request.median, 64.0);
        assert_eq!(server.payload_copy_bytes_out_per_request.median, 64.0);
        // Server CPU: 10 µs/request; driver 4 µs/request → ratio 0.4.
        assert!(close(server.server_cpu_us_per_request.median, 10.0));
        assert!(close(s.driver_cpu_us_per_request.median, 4.0));
        assert!(close(s.driver_to_server_cpu_ratio.unwrap().median, 0.4));
        // 1100 requests × 4 µs in a 1 s window on 1 driver thread; the
        // server's one thread: 1100 × 10 µs.
        assert!(close(
            s.driver_cpu_utilization_percent.unwrap().median,
            0.44
        ));
        assert!(close(s.server_cpu_utilization_percent.unwrap().median, 1.1));
        assert!(!s.driver_bottleneck_warning);
        assert_eq!(s.memory_per_connection_bytes.unwrap().median, 65536.0);
    }

    #[test]
    fn a_failed_repetition_suppresses_all_figures() {
        let results = fixture::results();
        let v = &results.cases[0].variants[0];
        let mut reps = v.repetitions.clone();
        reps[1] = fixture::failed_repetition(1);
        let out = finish_variant(&"lt-rw".into(), 3, reps, None);
        assert_eq!(out.status, Status::Failed);
        assert!(out.summary.is_none());
        assert_eq!(out.failure_reasons, ["1 payload mismatch"]);
        assert!(out.repetitions[1].measurement.is_none());
    }

    /// Repetitions whose driver spent `busy_seconds` of CPU in its 1 s window.
    fn driver_busy(busy_seconds: f64) -> Summary {
        let results = fixture::results();
        let mut reps = results.cases[0].variants[0].repetitions.clone();
        for r in &mut reps {
            let m = r.measurement.as_mut().unwrap();
            m.driver_usage.cpu_user_seconds = busy_seconds * 0.25;
            m.driver_usage.cpu_system_seconds = busy_seconds * 0.75;
        }
        finish_variant(&"lt-rw".into(), 3, reps, None)
            .summary
            .unwrap()
    }

    #[test]
    fn a_saturated_driver_is_flagged_whatever_its_cost_ratio() {
        let saturated = driver_busy(0.95);
        assert!(close(
            saturated.driver_cpu_utilization_percent.unwrap().median,
            95.0
        ));
        assert!(saturated.driver_bottleneck_warning);
        let at_threshold = driver_busy(DRIVER_SATURATED_PERCENT / 100.0);
        assert!(at_threshold.driver_bottleneck_warning);
        // Costlier per request than the server (a latency-bound case), but
        // idle most of the window: not what limited the result.
        let busy_but_not_saturated = driver_busy(0.85);
        assert!(
            busy_but_not_saturated
                .driver_to_server_cpu_ratio
                .unwrap()
                .median
                > 1.0
        );
        assert!(!busy_but_not_saturated.driver_bottleneck_warning);
    }

    #[test]
    fn server_utilization_counts_every_serving_thread() {
        let results = fixture::results();
        let rep = &results.cases[0].variants[0].repetitions[0];
        let mut window = rep.server_window.clone().unwrap();
        let one = server_cpu_utilization_percent(&window, 1.0);
        window.threads.push(window.threads[0].clone());
        // Same CPU time over twice the threads: half as busy.
        assert!(close(
            server_cpu_utilization_percent(&window, 1.0),
            one / 2.0
        ));
        assert!(close(server_cpu_utilization_percent(&window, 0.5), one));
    }

    #[test]
    fn server_utilization_counts_no_more_cpus_than_the_server_may_use() {
        let results = fixture::results();
        let rep = &results.cases[0].variants[0].repetitions[0];
        let mut window = rep.server_window.clone().unwrap();
        let one_thread = server_cpu_utilization_percent(&window, 1.0);
        // Six single-thread processes, all pinned to CPU 1, with the same
        // CPU time: one CPU's worth of time to use, not six.
        let mut part = window.processes[0].clone();
        part.cpus_allowed = Some(vec![1]);
        window.processes = vec![part; 6];
        window.threads = vec![window.threads[0].clone(); 6];
        assert!(close(
            server_cpu_utilization_percent(&window, 1.0),
            one_thread
        ));
        // Spread over CPUs 0 and 1, the six can use two CPUs.
        window.processes[3].cpus_allowed = Some(vec![0]);
        assert!(close(
            server_cpu_utilization_percent(&window, 1.0),
            one_thread / 2.0
        ));
        // One process that did not say: one CPU per thread, as before.
        window.processes[5].cpus_allowed = None;
        assert!(close(
            server_cpu_utilization_percent(&window, 1.0),
            one_thread / 6.0
        ));
    }

    #[test]
    fn kernel_cross_check_is_summarised() {
        let results = fixture::results();
        // Fixture: repetition 0 checked and agreeing, the others unavailable.
        let s = results.cases[0].variants[0].summary.as_ref().unwrap();
        assert_eq!(s.kernel_cross_check_passed, None);
        assert!(s.kernel_syscalls_per_request_total.is_none());

        let mut reps = results.cases[0].variants[0].repetitions.clone();
        let checked = reps[0].kernel_cross_check.clone();
        for r in &mut reps {
            r.kernel_cross_check = checked.clone();
        }
        let s = finish_variant(&"lt-rw".into(), 3, reps.clone(), None)
            .summary
            .unwrap();
        assert_eq!(s.kernel_cross_check_passed, Some(true));
        // 3 calls per request in every repetition... over 1000 requests of
        // repetition 0's report: 3000 / n.
        assert_eq!(s.kernel_syscalls_per_request_total.unwrap().max, 3.0);

        if let Some(CrossCheck::Checked(report)) = &mut reps[2].kernel_cross_check {
            report.agrees = false;
        }
        let s = finish_variant(&"lt-rw".into(), 3, reps, None)
            .summary
            .unwrap();
        assert_eq!(s.kernel_cross_check_passed, Some(false));
    }

    /// The fixture's three repetitions (1000, 1100, 1200 requests) as two
    /// timing ones and a counting one; only the counting one checked in the
    /// kernel, agreeing or not.
    fn timing_timing_counting(counting_agrees: bool) -> Vec<Repetition> {
        let results = fixture::results();
        let mut reps = results.cases[0].variants[0].repetitions.clone();
        let checked = reps[0].kernel_cross_check.clone();
        for r in &mut reps[..2] {
            r.purpose = RepetitionPurpose::Timing;
            r.kernel_cross_check = None;
        }
        reps[2].purpose = RepetitionPurpose::Counting;
        reps[2].kernel_cross_check = checked;
        if let Some(CrossCheck::Checked(report)) = &mut reps[2].kernel_cross_check {
            report.agrees = counting_agrees;
        }
        // The counting window's server was slowed by its kernel counters:
        // three times the CPU per request, which no time figure may show.
        let window = reps[2].server_window.as_mut().unwrap();
        window.total.usage.cpu_user_seconds *= 3.0;
        window.total.usage.cpu_system_seconds *= 3.0;
        reps
    }

    #[test]
    fn time_figures_come_from_timing_repetitions_and_counts_from_all() {
        let reps = timing_timing_counting(true);
        let all = finish_variant(&"lt-rw".into(), 3, reps.clone(), None);
        assert_eq!(all.status, Status::Passed);
        let s = all.summary.unwrap();
        assert_eq!(s.repetitions_used, 2);
        // 1000 and 1100 req/s; the counting window's 1200 is left out.
        assert_eq!(s.requests_per_second.median, 1050.0);
        assert_eq!(s.requests_per_second.max, 1100.0);
        assert_eq!(s.requests_per_second.samples, 2);
        assert_eq!(s.p50_latency_us.max, 60.0);
        assert_eq!(s.driver_cpu_us_per_request.samples, 2);
        assert_eq!(s.driver_cpu_utilization_percent.unwrap().samples, 2);
        let server = s.server.as_ref().unwrap();
        assert!(close(server.server_cpu_us_per_request.max, 10.0));
        assert_eq!(server.server_cpu_us_per_request.samples, 2);
        assert_eq!(s.server_cpu_utilization_percent.unwrap().samples, 2);
        assert_eq!(s.driver_to_server_cpu_ratio.unwrap().samples, 2);
        assert_eq!(server.context_switches_per_request.samples, 2);
        // Syscall counts are exact in every window: all three count.
        assert_eq!(server.syscalls_per_request_total.samples, 3);
        assert_eq!(server.syscalls_per_request["read"].samples, 3);
        assert_eq!(server.payload_copy_bytes_per_request.samples, 3);
        // The cross-check from the counting repetition alone.
        assert_eq!(s.kernel_cross_check_passed, Some(true));
        assert_eq!(s.kernel_syscalls_per_request_total.unwrap().samples, 1);

        // Without the counting repetition, the time figures are the same.
        let timed_only = finish_variant(&"lt-rw".into(), 2, reps[..2].to_vec(), None)
            .summary
            .unwrap();
        assert_eq!(timed_only.requests_per_second, s.requests_per_second);
        assert_eq!(
            timed_only.server.unwrap().server_cpu_us_per_request,
            server.server_cpu_us_per_request
        );
        assert_eq!(timed_only.kernel_cross_check_passed, None);
    }

    #[test]
    fn a_disagreement_in_the_counting_repetition_fails_the_trust_check() {
        let s = finish_variant(&"lt-rw".into(), 3, timing_timing_counting(false), None)
            .summary
            .unwrap();
        assert_eq!(s.kernel_cross_check_passed, Some(false));
        // Also when the counting repetition agrees but a timing one (a
        // remote server with its own kernel counters) disagreed.
        let mut reps = timing_timing_counting(true);
        reps[0].kernel_cross_check = reps[2].kernel_cross_check.clone();
        if let Some(CrossCheck::Checked(report)) = &mut reps[0].kernel_cross_check {
            report.agrees = false;
        }
        let s = finish_variant(&"lt-rw".into(), 3, reps, None)
            .summary
            .unwrap();
        assert_eq!(s.kernel_cross_check_passed, Some(false));
    }

    #[test]
    fn only_a_counting_repetition_gives_no_figures() {
        let reps = timing_timing_counting(true)[2..].to_vec();
        let out = finish_variant(&"lt-rw".into(), 3, reps, None);
        assert_eq!(out.status, Status::Failed);
        assert!(out.summary.is_none());
        assert_eq!(out.failure_reasons, ["no timing repetition finished"]);
    }

    #[test]
    fn no_repetitions_means_failed() {
        let out = finish_variant(&"lt-rw".into(), 3, Vec::new(), None);
        assert_eq!(out.status, Status::Failed);
        assert_eq!(out.failure_reasons, ["no repetition finished"]);
    }
}
