//! The measuring pipeline end to end: real `epoll-bench serve` children,
//! the real load engine or a scripted one, results files that load back.
//! Assertions are on counts and ratios of counts, never on time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use epoll_bench::commands::run::{RunArgs, prepare, run_prepared};
use epoll_bench::driver::measurement::{EngineConfig, WindowObserver};
use epoll_bench::driver::orchestrator::{CaseEngine, Silent, Target, run_plan};
use epoll_bench::results::measurement::CaseMeasurement;
use epoll_bench::results::workload::Case;
use epoll_bench::results::{ResultsFile, RunStatus, Status, VariantResult};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_epoll-bench"))
}

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: RunArgs,
}

fn args(out: &Path, extra: &[&str]) -> RunArgs {
    let mut line = vec!["run", "--out", out.to_str().unwrap()];
    line.extend_from_slice(extra);
    Wrapper::try_parse_from(line).unwrap().args
}

fn variant<'a>(results: &'a ResultsFile, label: &str, name: &str) -> &'a VariantResult {
    results
        .cases
        .iter()
        .find(|c| c.label == label)
        .and_then(|c| c.variants.iter().find(|v| v.variant == name))
        .unwrap_or_else(|| panic!("no {name} in {label}"))
}

/// Median of a per-kind syscall figure (0 when the kind was never called).
fn per_request(v: &VariantResult, kind: &str) -> f64 {
    let server = v.summary.as_ref().unwrap().server.as_ref().unwrap();
    server
        .syscalls_per_request
        .get(kind)
        .map_or(0.0, |s| s.median)
}

#[test]
fn quick_run_of_every_variant_shows_what_must_hold() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("quick");
    let prepared = prepare(
        &args(
            &out,
            &[
                "--quick",
                "--profile",
                "pingpong-64b-1conn",
                "--pin",
                "none",
            ],
        ),
        binary(),
    )
    .unwrap();
    run_prepared(prepared, &mut epoll_bench::driver::orchestrator::LoadEngine).unwrap();

    let results = ResultsFile::load(&out).unwrap();
    assert_eq!(results.run.status, RunStatus::Complete);
    // Variants this kernel refuses (io_uring disabled) fail, with the
    // reason; every other one that serves the frame protocol passes, and
    // the file-only ones are left out of the plan as not applicable.
    let frame_servers = || {
        epoll_bench::server::Variant::ALL
            .iter()
            .filter(|v| v.serves(epoll_bench::protocol::Protocol::Frame))
    };
    let refused = frame_servers()
        .filter(|v| v.unavailable_reason().is_some())
        .count() as u32;
    let all = frame_servers().count() as u32;
    assert_eq!(
        results.not_applicable.len(),
        epoll_bench::server::Variant::ALL.len() - all as usize
    );
    assert_eq!(
        (results.run.passed_count, results.run.failed_count),
        (all - refused, refused)
    );
    for name in ["results.json", "results.csv", "summary.md"] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let label = "pingpong-64b-1conn";
    // The trust check: kernel and in-process counts agree wherever the
    // kernel could count.
    for v in &results.cases[0].variants {
        let summary = v.summary.as_ref().unwrap();
        match summary.kernel_cross_check_passed {
            Some(passed) => assert!(passed, "{}: kernel cross-check failed", v.variant),
            None => eprintln!(
                "{}: kernel cross-check not run: {:?}",
                v.variant, v.repetitions[0].kernel_cross_check
            ),
        }
    }
    let writes = |name: &str| {
        let v = variant(&results, label, name);
        per_request(v, "write") + per_request(v, "writev")
    };
    // Frame ping-pong: writev gathers header and payload into one call.
    assert!(writes("lt-writev") < writes("lt-rw"));
    assert!(writes("et-writev") < writes("et-rw"));
    // Splice never brings payload into user space.
    for name in ["lt-splice", "et-splice"] {
        let server = variant(&results, label, name)
            .summary
            .as_ref()
            .unwrap()
            .server
            .clone()
            .unwrap();
        assert_eq!(server.payload_copy_bytes_per_request.median, 0.0, "{name}");
    }
    // io_uring reads and writes with SQEs: no read or write syscalls, yet
    // the payload is copied through user space as by read and write, and
    // gathering saves a loop turn per request.
    if refused == 0 {
        for name in ["uring-rw", "uring-writev"] {
            let v = variant(&results, label, name);
            for kind in ["readv", "write", "writev", "epoll_wait"] {
                assert_eq!(per_request(v, kind), 0.0, "{name}: {kind}");
            }
            // Only the snapshots' eventfd reads, one per window boundary.
            assert!(per_request(v, "read") < 0.01, "{name}: read");
            let server = v.summary.as_ref().unwrap().server.clone().unwrap();
            // 64 B in and 64 B out per request, give or take what moves
            // between the driver's window and the server's snapshots.
            let copied = server.payload_copy_bytes_per_request.median;
            assert!((120.0..=136.0).contains(&copied), "{name}: {copied}");
        }
        let enters = |name: &str| per_request(variant(&results, label, name), "io_uring_enter");
        assert!(enters("uring-writev") < enters("uring-rw"));
        // io_uring's splice: no read, write or splice syscall, and no
        // payload through user space.
        let v = variant(&results, label, "uring-splice");
        for kind in ["readv", "write", "writev", "splice", "epoll_wait"] {
            assert_eq!(per_request(v, kind), 0.0, "uring-splice: {kind}");
        }
        assert!(per_request(v, "read") < 0.01, "uring-splice: read");
        let server = v.summary.as_ref().unwrap().server.clone().unwrap();
        assert_eq!(
            server.payload_copy_bytes_per_request.median, 0.0,
            "uring-splice"
        );
    }
    // ET drains to EAGAIN: about one more read per wakeup than LT, unless it
    // stops on a short read.
    let reads_per_wakeup = |name: &str| {
        let v = variant(&results, label, name);
        let server = v.summary.as_ref().unwrap().server.as_ref().unwrap();
        (per_request(v, "read") + per_request(v, "readv"))
            / server.epoll_wait_calls_per_request.median
    };
    let extra = reads_per_wakeup("et-rw") - reads_per_wakeup("lt-rw");
    assert!(
        (0.5..1.5).contains(&extra),
        "ET extra reads per wakeup: {extra}"
    );
    let extra = reads_per_wakeup("et-rw-shortread") - reads_per_wakeup("lt-rw");
    assert!(
        extra.abs() < 0.5,
        "short-read ET extra reads per wakeup: {extra}"
    );
}

/// An engine that makes no traffic: it opens and closes the window, and
/// reports a scripted measurement. It raises `interrupt` after `stop_after`
/// cases.
struct Scripted<'a> {
    runs: usize,
    corrupt_on_run: Option<usize>,
    stop_after: Option<(usize, &'a AtomicBool)>,
}

impl CaseEngine for Scripted<'_> {
    fn run_case(
        &mut self,
        _case: &Case,
        _config: &EngineConfig,
        observer: &mut dyn WindowObserver,
    ) -> Result<CaseMeasurement, String> {
        observer.window_started();
        observer.window_ended();
        self.runs += 1;
        if let Some((after, flag)) = self.stop_after
            && self.runs >= after
        {
            flag.store(true, Ordering::SeqCst);
        }
        let mut m = CaseMeasurement {
            measured_seconds: 1.0,
            requests_completed: 100,
            payload_bytes_completed: 6400,
            ..Default::default()
        };
        if self.corrupt_on_run == Some(self.runs) {
            m.verification.payload_mismatches = 1;
        }
        Ok(m)
    }
}

fn plan_for(out: &Path, extra: &[&str]) -> epoll_bench::driver::orchestrator::Plan {
    prepare(&args(out, extra), binary()).unwrap().plan
}

#[test]
fn one_corrupted_repetition_fails_its_variant_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = plan_for(
        dir.path(),
        &[
            "--variants",
            "lt-rw,et-rw",
            "--profile",
            "pingpong-64b-1conn",
            "--repetitions",
            "2",
            "--duration",
            "1",
            "--pin",
            "none",
        ],
    );
    // Order: rep 0 lt-rw, rep 0 et-rw, rep 1 lt-rw, rep 1 et-rw.
    let mut engine = Scripted {
        runs: 0,
        corrupt_on_run: Some(4),
        stop_after: None,
    };
    let outcome = run_plan(&mut plan, &mut engine, &mut Silent, &AtomicBool::new(false));
    assert!(!outcome.interrupted);
    let case = &outcome.cases[0];
    let lt = &case.variants[0];
    assert_eq!(lt.status, Status::Passed);
    assert_eq!(
        lt.summary.as_ref().unwrap().requests_per_second.median,
        100.0
    );
    let et = &case.variants[1];
    assert_eq!(et.status, Status::Failed);
    assert!(et.summary.is_none());
    assert_eq!(et.failure_reasons, ["1 payload mismatch"]);
    assert!(et.repetitions[1].measurement.is_none());
    assert!(et.repetitions[0].measurement.is_some());
}

#[test]
fn an_interrupted_run_keeps_what_finished_and_says_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = plan_for(
        dir.path(),
        &[
            "--variants",
            "lt-rw,lt-writev",
            "--profile",
            "pingpong-64b-1conn",
            "--profile",
            "pingpong-64b-64conn",
            "--repetitions",
            "2",
            "--pin",
            "none",
        ],
    );
    let flag = AtomicBool::new(false);
    let mut engine = Scripted {
        runs: 0,
        corrupt_on_run: None,
        stop_after: Some((3, &flag)),
    };
    let outcome = run_plan(&mut plan, &mut engine, &mut Silent, &flag);
    assert!(outcome.interrupted);
    assert_eq!(engine.runs, 3);
    assert_eq!(outcome.cases.len(), 1, "the second case never started");
    let variants = &outcome.cases[0].variants;
    assert_eq!(variants[0].repetitions.len(), 2);
    assert_eq!(variants[1].repetitions.len(), 1);
    // Two timing repetitions and the counting one.
    assert_eq!(variants[1].repetitions_planned, 3);
    assert_eq!(variants[1].summary.as_ref().unwrap().repetitions_used, 1);

    let results = ResultsFile::builder(
        epoll_bench::results::RunKind::Run,
        prepare(&args(dir.path(), &["--quick"]), binary())
            .unwrap()
            .settings,
        epoll_bench::results::Environment::collect(Default::default()),
    )
    .started_at("2026-01-01T00:00:00Z")
    .elapsed_seconds(1.0)
    .interrupted(true)
    .build(outcome.cases);
    results.validate().unwrap();
    assert_eq!(results.run.status, RunStatus::Incomplete);
    let out = dir.path().join("partial");
    epoll_bench::report::export::export_all(
        &out,
        &results,
        &epoll_bench::report::export::default_exporters(),
    )
    .unwrap();
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("**Incomplete run**"));
}

#[test]
fn a_server_that_cannot_start_fails_every_measurement_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = plan_for(
        dir.path(),
        &[
            "--variants",
            "lt-rw",
            "--profile",
            "pingpong-64b-1conn",
            "--repetitions",
            "1",
        ],
    );
    let Target::Spawn(template) = &mut plan.target else {
        panic!("`run` plans spawn their servers");
    };
    template.program = dir.path().join("no-such-binary");
    let mut engine = Scripted {
        runs: 0,
        corrupt_on_run: None,
        stop_after: None,
    };
    let outcome = run_plan(&mut plan, &mut engine, &mut Silent, &AtomicBool::new(false));
    assert_eq!(engine.runs, 0);
    let v = &outcome.cases[0].variants[0];
    assert_eq!(v.status, Status::Failed);
    assert!(
        v.failure_reasons[0].starts_with("server did not start: cannot start server"),
        "{:?}",
        v.failure_reasons
    );
}

/// The real binary, its stdout closed after the first measurement (as by
/// `run | head`) and then interrupted by SIGINT: partial results on disk,
/// marked incomplete, exit status 130.
#[test]
fn sigint_saves_partial_results_and_exits_130() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("interrupted");
    let mut child = Command::new(binary())
        .args([
            "run",
            "--variants",
            "lt-rw",
            "--profile",
            "pingpong-64b-1conn",
        ])
        .args([
            "--repetitions",
            "3",
            "--duration",
            "0.3",
            "--warmup",
            "0.05",
        ])
        .args(["--pin", "none", "--out", out.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    for line in (&mut stdout).lines() {
        let line = line.unwrap();
        let first_done = line.starts_with("[  1/4]");
        seen.push(line);
        if first_done {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.starts_with("[  1/4]")),
        "no progress line for the first measurement: {seen:?}"
    );
    drop(stdout);
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the interrupted run did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains("run incomplete"), "stderr: {stderr}");

    let results = ResultsFile::load(&out.join("results.json")).unwrap();
    assert_eq!(results.run.status, RunStatus::Incomplete);
    let kept: usize = results
        .cases
        .iter()
        .flat_map(|c| &c.variants)
        .map(|v| v.repetitions.len())
        .sum();
    assert!(
        (1..4).contains(&kept),
        "{kept} repetitions kept of 4 planned (3 timing, 1 counting)"
    );
}
