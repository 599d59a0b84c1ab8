//! A results file shaped like a real default-suite run, with made-up round
//! figures, for tests of charts, reports and comparison (and, through
//! `examples/fixture_results.rs`, of the notebook).
//!
//! Profiles:
//! - `pingpong-64b-1conn` and `pingpong-64b-64conn`: the same ping-pong 64 B
//!   case on 1 and 64 connections (a connections series); on 1 connection
//!   `et-writev-shortread` failed (a payload mismatch).
//! - `size-sweep`: 64 B, 1 KiB, 16 KiB, 256 KiB; splice variants are slower
//!   than rw/writev below 16 KiB and faster from 16 KiB on.
//!
//! Every variant has 3 repetitions whose request counts are 0.97, 1.00 and
//! 1.03 times its nominal rate over 1 s windows.
#![allow(dead_code)]

use std::collections::BTreeMap;

use epoll_bench::protocol::Protocol;
use epoll_bench::results::aggregate::finish_variant;
use epoll_bench::results::environment::Sysctls;
use epoll_bench::results::fixture;
use epoll_bench::results::latency_curve::percentile_curve;
use epoll_bench::results::measurement::{CaseMeasurement, LatencySummary};
use epoll_bench::results::workload::{Case, Shape, SizeDistribution};
use epoll_bench::results::{
    CaseResult, Environment, Repetition, ResultsFile, RunKind, RunSettings, Status, VariantResult,
};
use epoll_bench::server::Variant;
use epoll_bench::server::report::{LoopCounters, ReportKind, ServerReport, ThreadReport};
use epoll_bench::sys::SyscallKind;
use epoll_bench::sys::rusage::ThreadUsage;

/// Every variant's name, from the server's one list.
pub fn variant_names() -> Vec<String> {
    Variant::ALL.iter().map(Variant::name).collect()
}

pub const SWEEP_SIZES: [u32; 4] = [64, 1024, 16384, 262144];

/// Repetition factors on the nominal request rate.
pub const REPETITION_FACTORS: [f64; 3] = [0.97, 1.0, 1.03];

pub fn case(profile: &str, label: &str, bytes: u32, connections: u32, sweep: bool) -> Case {
    Case {
        profile: profile.to_string(),
        label: label.to_string(),
        protocol: Protocol::Frame,
        connections,
        shape: Shape::PingPong,
        sizes: SizeDistribution::Fixed { bytes },
        seed: 7,
        sweep_size_bytes: sweep.then_some(bytes),
        client: Default::default(),
    }
}

/// Nominal requests per second of `variant` at `bytes` on `connections`.
pub fn nominal_rate(variant: &str, bytes: u32, connections: u32) -> f64 {
    let base = 40_000.0 / (1.0 + bytes as f64 / 16384.0);
    let parallel = if connections > 1 { 2.5 } else { 1.0 };
    let copy = if variant.contains("splice") {
        if bytes >= 16384 { 1.4 } else { 0.7 }
    } else if variant.contains("writev") {
        1.05
    } else {
        1.0
    };
    let trigger = if variant.starts_with("et") { 1.02 } else { 1.0 };
    (base * parallel * copy * trigger).round()
}

/// Server syscalls per request of `variant`, by kind.
pub fn syscalls_per_request(variant: &str) -> Vec<(SyscallKind, f64)> {
    let mut out = vec![(SyscallKind::EpollWait, 1.0)];
    let edge = variant.starts_with("et");
    let shortread = variant.ends_with("shortread");
    let reads = if edge && !shortread { 2.0 } else { 1.0 };
    if variant.contains("splice") {
        out.push((SyscallKind::Read, reads));
        out.push((SyscallKind::Splice, 2.0));
    } else if variant.contains("writev") {
        out.push((SyscallKind::Read, reads));
        out.push((SyscallKind::Writev, 1.0));
    } else {
        out.push((SyscallKind::Read, reads));
        out.push((SyscallKind::Write, 2.0));
    }
    if edge {
        out.push((SyscallKind::EpollCtl, 0.5));
    }
    out
}

/// Server CPU µs per request of `variant` (user 60 %, system 40 %).
pub fn server_cpu_us(variant: &str, bytes: u32) -> f64 {
    let base = 8.0 + bytes as f64 / 4096.0;
    if variant.contains("splice") && bytes >= 16384 {
        base * 0.6
    } else {
        base
    }
}

fn server_window(variant: &str, n: u64, bytes: u32) -> ServerReport {
    let mut thread = ThreadReport {
        thread_index: 0,
        tid: 4242,
        ..Default::default()
    };
    for (kind, per) in syscalls_per_request(variant) {
        thread.syscalls.calls.0[kind as usize] = (per * n as f64).round() as u64;
    }
    if variant.starts_with("et") && !variant.ends_with("shortread") {
        thread.syscalls.eagain.0[SyscallKind::Read as usize] = n;
    }
    let payload = bytes as u64;
    let copies = !variant.contains("splice");
    thread.syscalls.user_copy_bytes_in = (if copies { payload } else { 0 } + 4) * n;
    thread.syscalls.user_copy_bytes_out = (if copies { payload } else { 0 } + 8) * n;
    thread.counters = LoopCounters {
        epoll_wait_calls: n,
        epoll_events_returned: n,
        requests_parsed: n,
        bytes_in: (payload + 4) * n,
        bytes_out: (payload + 8) * n,
        header_bytes_in: 4 * n,
        header_bytes_out: 8 * n,
        ..Default::default()
    };
    let cpu = server_cpu_us(variant, bytes) * 1e-6 * n as f64;
    thread.usage = ThreadUsage {
        cpu_user_seconds: cpu * 0.6,
        cpu_system_seconds: cpu * 0.4,
        voluntary_context_switches: n / 2,
        involuntary_context_switches: n / 100,
    };
    let mut report = ServerReport::new(
        ReportKind::Snapshot,
        variant.into(),
        Protocol::Frame,
        vec![thread],
    );
    report.pid = 4242;
    report.syscall_counting = true;
    report
}

fn measurement(n: u64, bytes: u32, p50_us: f64) -> CaseMeasurement {
    let curve = percentile_curve(|p| {
        let tail = 1.0 / (1.0 - p / 100.0).max(1e-6);
        (p50_us * (0.5 + 0.5 * tail.powf(0.25))).round()
    });
    // The unit fixture's window and counts; this shape's latency curve and
    // driver cost.
    CaseMeasurement {
        latency: LatencySummary {
            samples: n,
            mean_us: p50_us,
            p50_us,
            p90_us: p50_us * 1.5,
            p99_us: p50_us * 3.0,
            p999_us: p50_us * 6.0,
            max_us: p50_us * 20.0,
            percentile_curve_us: curve,
        },
        driver_usage: ThreadUsage {
            cpu_user_seconds: 2e-6 * n as f64,
            cpu_system_seconds: 1e-6 * n as f64,
            voluntary_context_switches: n,
            involuntary_context_switches: 0,
        },
        driver_syscalls: Default::default(),
        cpu_steal_percent: Some(1.0),
        ..fixture::measurement(n, bytes as u64, p50_us)
    }
}

/// A passed variant at `rate` nominal req/s.
pub fn passed_variant(variant: &str, bytes: u32, rate: f64) -> VariantResult {
    let repetitions = REPETITION_FACTORS
        .iter()
        .enumerate()
        .map(|(i, factor)| {
            let n = (rate * factor).round() as u64;
            let p50_us = (1e6 / rate * 0.8 * (2.0 - factor)).round();
            Repetition {
                index: i as u32,
                status: Status::Passed,
                measurement: Some(measurement(n, bytes, p50_us)),
                failure: None,
                server_window: Some(server_window(variant, n, bytes)),
                server_memory: None,
                kernel_cross_check: None,
                server_command_line: vec![
                    "epoll-bench".into(),
                    "serve".into(),
                    "--variant".into(),
                    variant.into(),
                ],
                purpose: Default::default(),
                order_position: None,
                external_window: None,
            }
        })
        .collect();
    finish_variant(&variant.into(), 3, repetitions, None)
}

pub fn failed_variant(variant: &str) -> VariantResult {
    finish_variant(
        &variant.into(),
        3,
        vec![fixture::failed_repetition(0)],
        None,
    )
}

/// The unit tests' environment, with the names these tests look for.
pub fn environment() -> Environment {
    Environment {
        kernel_release: "6.1.0-fixture".into(),
        cpu_model: "Fixture CPU @ 2.0GHz".into(),
        sysctls: Sysctls::default(),
        git_commit: "fedcba9876543210fedcba9876543210fedcba98".into(),
        doctor: None,
        ..fixture::environment()
    }
}

/// The fixture with each variant's nominal rate multiplied by
/// `scale(variant, case label)`.
pub fn results_scaled(scale: impl Fn(&str, &str) -> f64) -> ResultsFile {
    let mut cases = Vec::new();
    for (profile, connections) in [("pingpong-64b-1conn", 1), ("pingpong-64b-64conn", 64)] {
        let variants = variant_names()
            .iter()
            .map(|v| {
                if profile == "pingpong-64b-1conn" && v == "et-writev-shortread" {
                    failed_variant(v)
                } else {
                    passed_variant(v, 64, nominal_rate(v, 64, connections) * scale(v, profile))
                }
            })
            .collect();
        cases.push(CaseResult {
            profile: profile.into(),
            label: profile.into(),
            case: case(profile, profile, 64, connections, false),
            variants,
        });
    }
    for bytes in SWEEP_SIZES {
        let label = format!("size-sweep/{bytes}");
        let variants = [
            "lt-rw",
            "lt-writev",
            "lt-splice",
            "et-rw",
            "et-writev",
            "et-splice",
        ]
        .iter()
        .map(|v| passed_variant(v, bytes, nominal_rate(v, bytes, 1) * scale(v, &label)))
        .collect();
        cases.push(CaseResult {
            profile: "size-sweep".into(),
            label: label.clone(),
            case: case("size-sweep", &label, bytes, 1, true),
            variants,
        });
    }
    let settings = RunSettings {
        variants: Variant::ALL.map(Into::into).to_vec(),
        profiles: vec!["default suite".into()],
        warmup_seconds: 0.5,
        duration_seconds: 1.0,
        drain_timeout_seconds: 1.0,
        repetitions_planned: 3,
        connections_override: None,
        seed_override: None,
        quick: false,
        server_threads: Some(1),
        server_buffers: None,
        server_processes: None,
        driver_threads_max: 1,
        time_budget_seconds: None,
        precision_target_percent: None,
        target: None,
        control: None,
    };
    ResultsFile::builder(RunKind::Run, settings, environment())
        .started_at("2026-02-03T04:05:06Z")
        .finished_at("2026-02-03T04:06:46Z", 100.0)
        .build(cases)
}

pub fn results() -> ResultsFile {
    results_scaled(|_, _| 1.0)
}

/// A run in which every variant failed.
pub fn failed_run() -> ResultsFile {
    let mut results = results();
    for case in &mut results.cases {
        for v in &mut case.variants {
            *v = failed_variant(&v.variant.to_string());
        }
    }
    results.run.failed_count = results.cases.iter().map(|c| c.variants.len() as u32).sum();
    results.run.passed_count = 0;
    results
}

/// Median per-kind syscalls of a passed variant (for assertions).
pub fn kinds_of(results: &ResultsFile, label: &str, variant: &str) -> BTreeMap<String, f64> {
    let case = results.cases.iter().find(|c| c.label == label).unwrap();
    let v = case.variants.iter().find(|v| v.variant == variant).unwrap();
    v.summary
        .as_ref()
        .unwrap()
        .server
        .as_ref()
        .unwrap()
        .syscalls_per_request
        .iter()
        .map(|(k, s)| (k.clone(), s.median))
        .collect()
}
