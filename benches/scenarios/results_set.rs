//! After the criterion groups: turns the round-trip windows into a results
//! set in the schema `epoll-bench run` writes (`results/cargo-bench/`:
//! results.json, results.csv, summary.md, charts/), so `epoll-bench chart`
//! and `compare` work on `cargo bench` output too. Each variant × size
//! keeps criterion's last [`REPETITIONS`] samples as its repetitions.
//! Nothing is written in criterion's `--test` or `--list` modes.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use epoll_bench::protocol::Protocol;
use epoll_bench::report::charts::render_charts;
use epoll_bench::report::export::{default_exporters, export_all};
use epoll_bench::results::aggregate::finish_variant;
use epoll_bench::results::environment::Pinning;
use epoll_bench::results::latency_curve::{nearest_rank, percentile_curve};
use epoll_bench::results::measurement::{CaseMeasurement, LatencySummary, VerificationCounts};
use epoll_bench::results::workload::{Case, Shape, SizeDistribution};
use epoll_bench::results::{
    CaseResult, Environment, Repetition, ResultsFile, RunKind, RunSettings, Status, now_utc_rfc3339,
};

use super::support::{MEASUREMENT, WARM_UP, Window, quick_mode, variants};

/// Samples kept per variant × size.
pub const REPETITIONS: usize = 3;

pub const PROFILE: &str = "cargo-bench-round-trip";

/// The windows of one benchmark.
pub struct Recorded {
    pub variant: String,
    pub size_bytes: u32,
    pub server_command_line: Vec<String>,
    pub windows: Vec<Window>,
}

fn recorded() -> &'static Mutex<Vec<Recorded>> {
    static RECORDED: Mutex<Vec<Recorded>> = Mutex::new(Vec::new());
    &RECORDED
}

fn started() -> &'static (String, std::time::Instant) {
    static STARTED: OnceLock<(String, std::time::Instant)> = OnceLock::new();
    STARTED.get_or_init(|| (now_utc_rfc3339(), std::time::Instant::now()))
}

pub fn record(r: Recorded) {
    started();
    if !r.windows.is_empty() {
        recorded().lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }
}

fn latency(latencies_us: &[f64]) -> LatencySummary {
    let mut sorted = latencies_us.to_vec();
    sorted.sort_by(f64::total_cmp);
    let percentile = |p: f64| nearest_rank(&sorted, p);
    LatencySummary {
        samples: sorted.len() as u64,
        mean_us: sorted.iter().sum::<f64>() / sorted.len().max(1) as f64,
        p50_us: percentile(50.0),
        p90_us: percentile(90.0),
        p99_us: percentile(99.0),
        p999_us: percentile(99.9),
        max_us: sorted.last().copied().unwrap_or(0.0),
        percentile_curve_us: percentile_curve(percentile),
    }
}

fn repetition(
    index: usize,
    window: &Window,
    size_bytes: u32,
    command_line: &[String],
) -> Repetition {
    Repetition {
        index: index as u32,
        status: Status::Passed,
        measurement: Some(CaseMeasurement {
            measured_seconds: window.elapsed.as_secs_f64(),
            requests_completed: window.iters,
            payload_bytes_completed: window.iters * size_bytes as u64,
            latency: latency(&window.latencies_us),
            // Every response was checked by the client (a mismatch panics).
            verification: VerificationCounts::default(),
            driver_usage: window.driver_usage,
            driver_threads: 1,
            connections_opened: 0,
            target_rate_per_second: None,
            requests_issued: window.iters,
            driver_syscalls: Default::default(),
            stopped_early: None,
            cpu_steal_percent: None,
            machine_busy_cpu_seconds: None,
            scale_out: None,
        }),
        failure: None,
        server_window: Some(window.server.clone()),
        server_memory: None,
        kernel_cross_check: None,
        server_command_line: command_line.to_vec(),
        purpose: Default::default(),
        order_position: None,
        external_window: None,
    }
}

/// The results file of everything recorded.
pub fn build(recorded: &[Recorded], started_at_utc: String, elapsed_seconds: f64) -> ResultsFile {
    let mut sizes: Vec<u32> = recorded.iter().map(|r| r.size_bytes).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut cases = Vec::new();
    for size in sizes {
        let label = format!("{PROFILE}/{size}");
        let variants = recorded
            .iter()
            .filter(|r| r.size_bytes == size)
            .map(|r| {
                let kept = &r.windows[r.windows.len().saturating_sub(REPETITIONS)..];
                let repetitions = kept
                    .iter()
                    .enumerate()
                    .map(|(i, w)| repetition(i, w, size, &r.server_command_line))
                    .collect();
                finish_variant(
                    &r.variant.as_str().into(),
                    REPETITIONS as u32,
                    repetitions,
                    None,
                )
            })
            .collect();
        cases.push(CaseResult {
            profile: PROFILE.into(),
            label: label.clone(),
            case: Case {
                profile: PROFILE.into(),
                label,
                protocol: Protocol::Frame,
                connections: 1,
                shape: Shape::PingPong,
                sizes: SizeDistribution::Fixed { bytes: size },
                seed: 0,
                sweep_size_bytes: Some(size),
                client: Default::default(),
            },
            variants,
        });
    }
    let settings = RunSettings {
        variants: variants().into_iter().map(Into::into).collect(),
        profiles: vec!["cargo bench (round-trip scenario)".into()],
        warmup_seconds: WARM_UP.as_secs_f64(),
        duration_seconds: MEASUREMENT.as_secs_f64(),
        drain_timeout_seconds: 0.0,
        repetitions_planned: REPETITIONS as u32,
        connections_override: None,
        seed_override: None,
        quick: false,
        server_threads: None,
        // The bench's servers run with the default policy.
        server_buffers: Some(epoll_bench::server::BufferPolicy::PerConnection),
        server_processes: None,
        driver_threads_max: 1,
        time_budget_seconds: None,
        precision_target_percent: None,
        target: None,
        control: None,
    };
    let environment = Environment::collect(Pinning {
        mode: "none".into(),
        server_cpus: None,
        driver_cpus: None,
        method: "not pinned (cargo bench)".into(),
    });
    ResultsFile::builder(RunKind::Run, settings, environment)
        .started_at(started_at_utc)
        .elapsed_seconds(elapsed_seconds)
        .build(cases)
}

/// Where `cargo bench` writes its results set.
pub fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results/cargo-bench")
}

fn write() {
    if quick_mode() {
        return;
    }
    let recorded = recorded().lock().unwrap_or_else(|e| e.into_inner());
    if recorded.is_empty() {
        return;
    }
    let (started_at, began) = started().clone();
    let results = build(&recorded, started_at, began.elapsed().as_secs_f64());
    let dir = out_dir();
    match export_all(&dir, &results, &default_exporters()) {
        Ok(_) => println!("results set: {}", dir.display()),
        Err(e) => panic!("writing {}: {e}", dir.display()),
    }
    match render_charts(&results, &dir.join("charts")) {
        Ok(paths) => println!(
            "charts: {} files in {}",
            paths.len(),
            dir.join("charts").display()
        ),
        Err(e) => panic!("charting {}: {e}", dir.display()),
    }
}

/// The last "group" of `criterion_main!`.
pub fn results_set() {
    write();
}
