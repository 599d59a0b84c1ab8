//! A small, fully populated results file with round numbers, for tests of
//! aggregation, validation, the schema docs and the exporters.
//!
//! Case `pingpong-64b-1conn`: `lt-rw` passed (3 repetitions of 1 s with
//! 1000, 1100, 1200 requests; per request the server makes 1 read, 1 write,
//! 1 epoll_wait, 0.1 EAGAIN reads, copies 64 B each way, uses 10 µs CPU;
//! the driver 4 µs), `et-rw` failed (a payload mismatch).
//! Case `size-sweep/4096`: `et-splice` passed, noisy (CV > 5 %).

use crate::metrics::cross_check::CrossCheck;
use crate::protocol::Protocol;
use crate::results::measurement::{CaseMeasurement, LatencySummary, VerificationCounts};
use crate::results::workload::{Case, Shape, SizeDistribution};
use crate::server::BufferPolicy;
use crate::server::report::{LoopCounters, ReportKind, ServerReport, ThreadReport};
use crate::sys::SyscallKind;
use crate::sys::rusage::ThreadUsage;
use crate::sys::uring_ops::UringOp;

use super::aggregate::finish_variant;
use super::environment::{Pinning, Rlimits, Sysctls};
use super::instrument_cost::{FixedLoad, InstrumentCost, Round, SettingWindow};
mod idle_active;
mod scale;
mod variants;
pub use idle_active::*;
pub use scale::*;
pub use variants::*;

use super::{
    CaseResult, Environment, FailureRecord, Repetition, RepetitionPurpose, ResultsFile, RunKind,
    RunSettings, ServerMemory, Status,
};

pub fn case(label: &str, bytes: u32) -> Case {
    Case {
        profile: label.split('/').next().unwrap().to_string(),
        label: label.to_string(),
        protocol: Protocol::Frame,
        connections: 1,
        shape: Shape::PingPong,
        sizes: SizeDistribution::Fixed { bytes },
        seed: 1,
        sweep_size_bytes: label.contains('/').then_some(bytes),
        client: Default::default(),
    }
}

/// A server window with `n` requests of `payload` bytes, per request:
/// `reads` reads, `writes` writes, 1 epoll_wait returning 2 events.
pub fn server_window(n: u64, payload: u64, reads: u64, writes: u64) -> ServerReport {
    let mut thread = ThreadReport {
        thread_index: 0,
        tid: 4242,
        ..Default::default()
    };
    let calls = &mut thread.syscalls.calls.0;
    calls[SyscallKind::Read as usize] = reads * n;
    calls[SyscallKind::Write as usize] = writes * n;
    calls[SyscallKind::EpollWait as usize] = n;
    thread.syscalls.eagain.0[SyscallKind::Read as usize] = n / 10;
    thread.syscalls.user_copy_bytes_in = (payload + 4) * n;
    thread.syscalls.user_copy_bytes_out = (payload + 8) * n;
    thread.counters = LoopCounters {
        epoll_wait_calls: n,
        epoll_events_returned: 2 * n,
        requests_parsed: n,
        bytes_in: (payload + 4) * n,
        bytes_out: (payload + 8) * n,
        header_bytes_in: 4 * n,
        header_bytes_out: 8 * n,
        ..Default::default()
    };
    thread.usage = ThreadUsage {
        cpu_user_seconds: 6e-6 * n as f64,
        cpu_system_seconds: 4e-6 * n as f64,
        voluntary_context_switches: n / 2,
        involuntary_context_switches: n / 100,
    };
    let mut report = ServerReport::new(
        ReportKind::Snapshot,
        "lt-rw".into(),
        Protocol::Frame,
        vec![thread],
    );
    report.pid = 4242;
    report
}

pub fn measurement(n: u64, payload: u64, p50_us: f64) -> CaseMeasurement {
    CaseMeasurement {
        measured_seconds: 1.0,
        requests_completed: n,
        payload_bytes_completed: payload * n,
        latency: LatencySummary {
            samples: n,
            mean_us: p50_us,
            p50_us,
            p90_us: p50_us * 2.0,
            p99_us: p50_us * 4.0,
            p999_us: p50_us * 8.0,
            max_us: p50_us * 16.0,
            percentile_curve_us: vec![(0.0, p50_us / 2.0), (50.0, p50_us), (100.0, p50_us * 16.0)],
        },
        verification: VerificationCounts::default(),
        driver_usage: ThreadUsage {
            cpu_user_seconds: 3e-6 * n as f64,
            cpu_system_seconds: 1e-6 * n as f64,
            voluntary_context_switches: n,
            involuntary_context_switches: 0,
        },
        driver_threads: 1,
        connections_opened: 0,
        target_rate_per_second: None,
        requests_issued: n,
        driver_syscalls: {
            let mut counts = crate::sys::SyscallCounts::default();
            counts.calls.0[SyscallKind::Read as usize] = n;
            counts.calls.0[SyscallKind::Write as usize] = n;
            counts
        },
        stopped_early: None,
        cpu_steal_percent: Some(0.5),
        machine_busy_cpu_seconds: None,
        scale_out: Some(crate::results::measurement::ScaleOutcome {
            worker_processes: 2,
            source_addresses: 1,
            idle_connections_requested: 2000,
            idle_connections_held: 2000,
            ramp_seconds: 0.5,
            connection_setup_rate_per_second: 4000.0,
            listen_overflows_count: Some(0),
            listen_drops_count: Some(0),
            tcp_req_q_full_drops_count: Some(0),
            stopped_by: None,
        }),
    }
}

pub fn passed_repetition(index: u32, n: u64, payload: u64, p50_us: f64) -> Repetition {
    let window = server_window(n, payload, 1, 1);
    let kernel = crate::sys::perf::KernelSyscallCounts {
        calls: window.total.syscalls.calls,
        total_syscalls: window.total.syscalls.calls.total() + 3,
        ..Default::default()
    };
    let kernel_cross_check = if index == 0 {
        CrossCheck::of_window::<String>(&window.total.syscalls.calls, Ok(&kernel))
    } else {
        CrossCheck::unavailable("fixture: perf_event_paranoid is 3")
    };
    Repetition {
        index,
        status: Status::Passed,
        measurement: Some(measurement(n, payload, p50_us)),
        failure: None,
        server_window: Some(window),
        kernel_cross_check: Some(kernel_cross_check),
        server_memory: Some(ServerMemory {
            baseline_rss_bytes: 1 << 20,
            peak_rss_bytes: (1 << 20) + 65536,
            connections: 1,
            per_connection_bytes: 65536.0,
            whole: None,
        }),
        server_command_line: vec![
            "epoll-bench".into(),
            "serve".into(),
            "--variant".into(),
            "lt-rw".into(),
        ],
        purpose: RepetitionPurpose::TimingAndCounting,
        order_position: Some(0),
        external_window: None,
    }
}

/// A passed repetition of `requests` requests (1 s window) whose server
/// spent `cpu_us` of CPU per request, 60% user and 40% system; the rest as
/// [`passed_repetition`].
pub fn repetition_with_server_cpu(index: u32, requests: u64, cpu_us: f64) -> Repetition {
    let mut rep = passed_repetition(index, requests, 64, 50.0);
    let mut thread = server_window(requests, 64, 1, 1).threads[0].clone();
    thread.usage.cpu_user_seconds = cpu_us * 0.6e-6 * requests as f64;
    thread.usage.cpu_system_seconds = cpu_us * 0.4e-6 * requests as f64;
    rep.server_window = Some(ServerReport::new(
        ReportKind::Snapshot,
        "lt-rw".into(),
        Protocol::Frame,
        vec![thread],
    ));
    rep
}

pub fn failed_repetition(index: u32) -> Repetition {
    Repetition {
        index,
        status: Status::Failed,
        measurement: None,
        failure: Some(FailureRecord {
            reasons: vec!["1 payload mismatch".into()],
            verification: Some(VerificationCounts {
                payload_mismatches: 1,
                ..Default::default()
            }),
            server_protocol_errors: Some(0),
            server_connection_errors: Some(0),
            cpu_steal_percent: None,
            scale_out: None,
        }),
        server_window: None,
        server_memory: None,
        kernel_cross_check: None,
        server_command_line: vec!["epoll-bench".into(), "serve".into()],
        purpose: RepetitionPurpose::TimingAndCounting,
        order_position: Some(0),
        external_window: None,
    }
}

/// An external server's passed result: a timing and a counting
/// repetition of `n` requests, counted by the kernel from outside
/// (2 µs of task clock, 3 syscalls of which 2 of our kinds per request).
pub fn external_variant(n: u64) -> super::VariantResult {
    use crate::sys::process_counters::{ProcessCounts, ProcessSyscalls};
    let repetition = |index, purpose, syscalls| {
        let mut rep = passed_repetition(index, n, 64, 50.0);
        rep.server_window = None;
        rep.kernel_cross_check = None;
        rep.purpose = purpose;
        rep.server_command_line = vec!["./peer".into(), "--addr".into(), "127.0.0.1:4000".into()];
        rep.external_window = Some(super::external::ExternalWindow {
            counts: Some(ProcessCounts {
                task_clock_ns: 2_000 * n,
                context_switches: n / 10,
                syscalls,
            }),
            counters_unavailable_reason: None,
        });
        rep
    };
    let syscalls = ProcessSyscalls {
        total: 3 * n,
        by_kind: [
            ("epoll_pwait".to_string(), n),
            ("futex".to_string(), n),
            ("read".to_string(), n),
        ]
        .into_iter()
        .collect(),
        unavailable_kinds: Vec::new(),
        // Half the reads found the socket empty.
        eagain_by_kind: Some(
            [("read".to_string(), n / 2), ("writev".to_string(), 0)]
                .into_iter()
                .collect(),
        ),
        eagain_unavailable_reason: None,
    };
    let repetitions = vec![
        repetition(0, RepetitionPurpose::Timing, None),
        repetition(0, RepetitionPurpose::Counting, Some(syscalls)),
    ];
    let command = "./peer --addr {addr}";
    super::VariantResult {
        external_command: Some(command.into()),
        ..super::aggregate::finish_variant(
            &crate::server::VariantName::External("ext-fixture".into()),
            2,
            repetitions,
            Some(super::external::unavailable_reason(command)),
        )
    }
}

/// Where the failed variant sits: `(case index, variant index)`.
pub fn failed_position() -> (usize, usize) {
    (0, 1)
}

pub fn environment() -> Environment {
    Environment {
        kernel_release: "6.1.0-test".into(),
        kernel_version: "#1 SMP".into(),
        architecture: "x86_64".into(),
        cpu_model: "Test CPU @ 1GHz".into(),
        logical_cpus: 2,
        usable_cpus: vec![0, 1],
        pinning: Pinning {
            mode: "auto".into(),
            server_cpus: Some(vec![1]),
            driver_cpus: Some(vec![0]),
            method: "taskset".into(),
        },
        sysctls: Sysctls {
            somaxconn_connections: Some(4096),
            tcp_max_syn_backlog_connections: Some(512),
            tcp_rmem_bytes: Some(vec![4096, 131072, 6291456]),
            tcp_wmem_bytes: Some(vec![4096, 16384, 4194304]),
            ip_local_port_range_ports: Some(vec![32768, 60999]),
            pipe_max_size_bytes: Some(1048576),
        },
        rlimits: Rlimits {
            open_files_soft: Some(1024),
            open_files_hard: Some(1048576),
        },
        git_commit: "0123456789abcdef0123456789abcdef01234567".into(),
        git_dirty: Some(false),
        command_line: vec!["epoll-bench".into(), "run".into()],
        epoll_bench_version: "0.1.0".into(),
        build_profile: "release".into(),
        syscall_counting: true,
        doctor: Some(crate::results::doctor_report::DoctorReport {
            connections: 64,
            pipe_size_bytes: 1 << 20,
            root: "/".into(),
            ok_count: 0,
            warn_count: 1,
            fail_count: 0,
            findings: vec![crate::results::doctor_report::Finding {
                check: "net.core.somaxconn".into(),
                status: crate::results::doctor_report::Status::Warn,
                observed: "128".into(),
                message: "a backlog of 128 may drop a burst of 64 connects".into(),
                why: "it caps the listen backlog".into(),
                fix: Some("sysctl -w net.core.somaxconn=4096".into()),
            }],
        }),
    }
}

pub fn results() -> ResultsFile {
    let lt_rw = finish_variant(
        &"lt-rw".into(),
        3,
        vec![
            passed_repetition(0, 1000, 64, 50.0),
            passed_repetition(1, 1100, 64, 60.0),
            passed_repetition(2, 1200, 64, 70.0),
        ],
        None,
    );
    let et_rw = finish_variant(
        &"et-rw".into(),
        3,
        vec![failed_repetition(0)],
        Some("fixture: no reason".into()),
    );
    let et_splice = finish_variant(
        &"et-splice".into(),
        3,
        vec![
            passed_repetition(0, 100, 4096, 100.0),
            passed_repetition(1, 200, 4096, 100.0),
            passed_repetition(2, 300, 4096, 100.0),
        ],
        None,
    );
    let settings = RunSettings {
        variants: vec!["lt-rw".into(), "et-rw".into(), "et-splice".into()],
        profiles: vec!["default suite".into()],
        warmup_seconds: 0.5,
        duration_seconds: 1.0,
        drain_timeout_seconds: 1.0,
        repetitions_planned: 3,
        connections_override: Some(1),
        seed_override: Some(1),
        quick: false,
        server_threads: Some(1),
        server_buffers: Some(BufferPolicy::Pooled),
        server_processes: None,
        driver_threads_max: 1,
        time_budget_seconds: Some(110.0),
        precision_target_percent: Some(3.0),
        target: Some("127.0.0.1:4000".into()),
        control: Some("127.0.0.1:4001".into()),
    };
    let results = ResultsFile::builder(RunKind::Run, settings, environment())
        .started_at("2026-01-01T00:00:00Z")
        .finished_at("2026-01-01T00:01:00Z", 60.0)
        .build(vec![
            CaseResult {
                profile: "pingpong-64b-1conn".into(),
                label: "pingpong-64b-1conn".into(),
                case: case("pingpong-64b-1conn", 64),
                variants: vec![lt_rw, et_rw],
            },
            CaseResult {
                profile: "size-sweep".into(),
                label: "size-sweep/4096".into(),
                case: case("size-sweep/4096", 4096),
                variants: vec![et_splice],
            },
        ]);
    ResultsFile {
        instrument_cost: Some(instrument_cost()),
        ..results
    }
}

/// An instrument-cost block: counting +0.5%, kernel counters +12% on top.
pub fn instrument_cost() -> InstrumentCost {
    let window = |cpu_us: f64, syscalls: Option<f64>| SettingWindow {
        server_cpu_us_per_request: cpu_us,
        requests_per_second: 50_000.0,
        syscalls_per_request: syscalls,
    };
    let rounds: Vec<Round> = [10.0, 10.2, 10.1]
        .iter()
        .map(|&base| Round {
            no_instruments: window(base, None),
            syscall_counting: window(base * 1.005, Some(4.0)),
            syscall_and_kernel_counting: window(base * 1.005 * 1.12, Some(4.0)),
        })
        .collect();
    let load = FixedLoad {
        variant: "lt-writev".into(),
        offered_rate_per_second: 50_000.0,
        connections: 64,
        payload_bytes: 64,
        warmup_seconds: 0.5,
        window_seconds: 2.0,
    };
    InstrumentCost::from_rounds(load, &rounds)
}

/// A machine-limits block with round numbers (results from before the
/// block existed, like [`results`], have none).
pub fn machine_limits() -> super::machine_limits::MachineLimits {
    let spread = |median: f64| super::Spread {
        median,
        min: median * 0.9,
        max: median * 1.1,
        cv_percent: 5.0,
        samples: 3,
    };
    super::machine_limits::MachineLimits {
        quick: true,
        elapsed_seconds: 2.0,
        loopback_trial_seconds: 0.1,
        parallel_streams: 2,
        loopback_message_bytes: 1 << 20,
        loopback_window_bytes: 4 << 20,
        loopback_one_way_1_stream_bytes_per_second: spread(3e9),
        loopback_one_way_n_streams_bytes_per_second: spread(5e9),
        loopback_both_ways_1_stream_bytes_per_second: spread(2e9),
        loopback_both_ways_n_streams_bytes_per_second: spread(3e9),
        memcpy_buffer_bytes: 64 << 20,
        memcpy_bytes_per_second: spread(1e10),
        null_syscall: "gettid".into(),
        null_syscall_ns: spread(50.0),
        empty_epoll_wait_ns: spread(100.0),
        thread_wakeup_ns: spread(5000.0),
    }
}

/// Two profiles of `pingpong-64b-1conn`: `lt-rw`'s table from the captured
/// `perf report` (`src/metrics/fixtures/`) as if over 10,000 requests,
/// and an external `tokio` whose profile perf refused.
pub fn cpu_profiles() -> Vec<super::cpu_profile::CpuProfile> {
    use super::cpu_profile::{CpuProfile, CpuProfileTable};
    let report = crate::metrics::perf_report::parse(include_str!(
        "../metrics/fixtures/perf-report-lt-writev.txt"
    ))
    .expect("the captured report parses");
    let profile = |server: &str, external: bool| CpuProfile {
        case: "pingpong-64b-1conn".into(),
        server: server.into(),
        external,
        event: "cpu-clock".into(),
        frequency_hz: 4999,
        window_seconds: 1.0,
        raw_report_path: None,
        unavailable_reason: None,
        table: None,
    };
    vec![
        CpuProfile {
            raw_report_path: Some("profiles/pingpong-64b-1conn/lt-rw.txt".into()),
            table: CpuProfileTable::from_report(&report, 10_000, 4999),
            ..profile("lt-rw", false)
        },
        CpuProfile {
            unavailable_reason: Some(
                "`perf record` exited with exit status: 255: No permission to enable cpu-clock event."
                    .into(),
            ),
            ..profile("tokio", true)
        },
    ]
}
