//! `run --profile-cpu`: a real `perf record` of a real `lt-writev` server
//! on loopback, in a seconds-long run. Skipped, saying why, where perf is
//! not installed or may not sample (perf_event_paranoid, no permission).

use std::path::PathBuf;

use clap::Parser;
use epoll_bench::commands::run::{RunArgs, prepare, run_prepared};
use epoll_bench::metrics::perf_report;
use epoll_bench::results::{ResultsFile, RunStatus};
use epoll_bench::sys::perf_record;

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: RunArgs,
}

#[test]
fn a_profiled_lt_writev_window_has_user_and_kernel_samples_and_stays_out_of_the_timing() {
    if let Err(reason) = perf_record::version() {
        eprintln!("skipped: perf is not available here: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("profiled");
    let line = [
        "run",
        "--out",
        out.to_str().unwrap(),
        "--quick",
        "--no-limits",
        "--variants",
        "lt-writev",
        "--profile",
        "pingpong-64b-1conn",
        "--profile-cpu",
        "pingpong-64b-1conn",
    ];
    let args = Wrapper::try_parse_from(line).unwrap().args;
    let prepared = prepare(&args, PathBuf::from(env!("CARGO_BIN_EXE_epoll-bench"))).unwrap();
    let started = std::time::Instant::now();
    run_prepared(prepared, &mut epoll_bench::driver::orchestrator::LoadEngine).unwrap();
    assert!(
        started.elapsed().as_secs() < 60,
        "a quick run with one profile took {:?}",
        started.elapsed()
    );

    let results = ResultsFile::load(&out).unwrap();
    assert_eq!(results.run.status, RunStatus::Complete);
    assert_eq!(results.cpu_profiles.len(), 1, "{:?}", results.cpu_profiles);
    let profile = &results.cpu_profiles[0];
    assert_eq!(
        (profile.case.as_str(), profile.server.to_string().as_str()),
        ("pingpong-64b-1conn", "lt-writev")
    );
    assert!(!profile.external);
    let Some(table) = &profile.table else {
        let reason = profile.unavailable_reason.clone().unwrap_or_default();
        if reason.contains("paranoid") || reason.contains("ermission") {
            eprintln!("skipped: perf may not sample here: {reason}");
            return;
        }
        panic!("no profile: {reason}");
    };
    assert!(table.samples_user > 0, "{table:?}");
    assert!(table.samples_kernel > 0, "{table:?}");
    assert_eq!(
        table.samples_user + table.samples_kernel,
        table.samples_total
    );
    assert!((table.user_share_percent + table.kernel_share_percent - 100.0).abs() < 1e-9);
    assert!(table.requests_completed > 0);
    assert!(table.samples_per_request > 0.0);
    // Our own binary's symbols resolve (not bare addresses).
    assert!(
        table
            .top_user_symbols
            .iter()
            .any(|s| s.shared_object == "epoll-bench" && s.symbol.contains("epoll_bench::")),
        "{:#?}",
        table.top_user_symbols
    );
    // The raw report is kept and is what the table was made from.
    let raw_path = out.join(profile.raw_report_path.as_deref().unwrap());
    let raw = std::fs::read_to_string(&raw_path).unwrap();
    let report = perf_report::parse(&raw).unwrap();
    assert_eq!(report.samples_total(), table.samples_total);

    // The profiling window is not a repetition: one timing and one
    // counting repetition, as planned.
    let variant = &results.cases[0].variants[0];
    assert_eq!(variant.repetitions.len(), 2);
    assert_eq!(variant.repetitions_planned, 2);

    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("## Where the server CPU goes (perf, cpu-clock samples)"),
        "{summary}"
    );
}
