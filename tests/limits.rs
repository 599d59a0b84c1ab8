//! `epoll-bench limits` and the `machine_limits` block: the real binary on
//! loopback gives positive, finite figures with every trial counted (no
//! assertion compares speeds: which limit is higher depends on the
//! machine), bad flags are usage errors, `run` records the block unless
//! `--no-limits`, and files without it load and write as before.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use epoll_bench::results::ResultsFile;
use epoll_bench::results::machine_limits::{LimitUnit, MachineLimits};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_epoll-bench"))
}

fn epoll_bench(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Positive, finite, ordered figures over exactly `trials` trials.
fn assert_sane(limits: &MachineLimits, trials: u32) {
    for figure in limits.figures() {
        let s = figure.spread;
        for value in [s.median, s.min, s.max] {
            assert!(value.is_finite() && value > 0.0, "{}: {s:?}", figure.field);
        }
        assert!(
            s.min <= s.median && s.median <= s.max,
            "{}: {s:?}",
            figure.field
        );
        assert_eq!(s.samples, trials, "{}", figure.field);
        let suffix = match figure.unit {
            LimitUnit::BytesPerSecond => "_bytes_per_second",
            LimitUnit::Nanoseconds => "_ns",
        };
        assert!(figure.field.ends_with(suffix), "{}", figure.field);
    }
}

#[test]
fn quick_json_gives_positive_finite_figures_for_every_trial() {
    let output = epoll_bench(&["limits", "--quick", "--json", "--streams", "2"]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let limits: MachineLimits = serde_json::from_str(&stdout).unwrap();
    assert!(limits.quick);
    assert_eq!(limits.parallel_streams, 2);
    assert_eq!(limits.null_syscall, "gettid");
    assert_sane(&limits, 3);
    assert!(
        limits.elapsed_seconds > 0.0 && limits.elapsed_seconds < 30.0,
        "{}",
        limits.elapsed_seconds
    );
    // Progress goes to stderr, one step per figure, and never to stdout.
    for step in [
        "loopback one way, 1 stream",
        "loopback one way, 2 streams",
        "loopback echo, 1 stream",
        "loopback echo, 2 streams",
        "memcpy",
        "null syscall",
        "empty epoll_wait",
        "thread-to-thread wake-up",
    ] {
        assert!(
            stderr.contains(&format!("limits: measuring {step}")),
            "{step}: {stderr}"
        );
    }
}

#[test]
fn the_default_output_is_a_table_with_units() {
    let output = epoll_bench(&["limits", "--quick", "--streams", "1"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(serde_json::from_str::<serde_json::Value>(&stdout).is_err());
    let figure_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.ends_with(" GB/s") || l.ends_with(" ns"))
        .collect();
    assert_eq!(figure_lines.len(), 8, "{stdout}");
    assert!(
        stdout.contains("loopback TCP echo, each way, N streams (N = 1)"),
        "{stdout}"
    );
    assert!(stdout.contains("null syscall (gettid)"), "{stdout}");
}

#[test]
fn bad_flags_are_usage_errors_naming_the_flag() {
    for (args, needle) in [
        (
            &["limits", "--streams", "0"][..],
            "--streams: 0 is not accepted",
        ),
        (
            &["limits", "--streams", "-1"],
            "--streams: -1 is not accepted",
        ),
        (
            &["limits", "--streams", "many"],
            "--streams: many is not accepted",
        ),
        (&["limits", "--streams", "257"], "from 1 to 256"),
        (
            &["limits", "--seconds", "3"],
            "unexpected argument '--seconds'",
        ),
    ] {
        let output = epoll_bench(args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn run_records_the_block_and_summary_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let output = epoll_bench(&[
        "run",
        "--quick",
        "--variants",
        "lt-rw",
        "--profile",
        "pingpong-64b-1conn",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let results = ResultsFile::load(&out.join("results.json")).unwrap();
    let limits = results.machine_limits.as_ref().expect("machine_limits");
    assert!(limits.quick);
    assert_sane(limits, 3);
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert_eq!(summary.matches("## Machine limits").count(), 1, "{summary}");
    assert!(summary.contains("| memcpy |"), "{summary}");
}

#[test]
fn no_limits_skips_the_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let line = [
        "epoll-bench",
        "run",
        "--quick",
        "--out",
        out.to_str().unwrap(),
    ];
    let prepared = |extra: &[&str]| {
        let argv: Vec<&str> = line.iter().chain(extra).copied().collect();
        match epoll_bench::cli::parse_from(argv).unwrap().command {
            epoll_bench::cli::Command::Run(args) => {
                epoll_bench::commands::run::prepare(&args, binary()).unwrap()
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(prepared(&[]).measure_limits);
    assert!(!prepared(&["--no-limits"]).measure_limits);
}

#[test]
fn files_without_the_block_load_and_write_without_it() {
    // Results written before the block existed, as the fixture's are,
    // read back through a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.json");
    std::fs::write(
        &file,
        serde_json::to_string(&epoll_bench::results::fixture::results()).unwrap(),
    )
    .unwrap();
    let results = ResultsFile::load(&file).unwrap();
    assert_eq!(results.machine_limits, None);
    let written = serde_json::to_string(&results).unwrap();
    assert!(!written.contains("machine_limits"));
    assert!(
        !epoll_bench::report::export::markdown::summary_markdown(&results)
            .contains("Machine limits")
    );

    let with_block = ResultsFile {
        machine_limits: Some(epoll_bench::results::fixture::machine_limits()),
        ..epoll_bench::results::fixture::results()
    };
    let json = serde_json::to_string(&with_block).unwrap();
    assert_eq!(ResultsFile::from_json(&json).unwrap(), with_block);
    let summary = epoll_bench::report::export::markdown::summary_markdown(&with_block);
    for needle in [
        "## Machine limits",
        "| loopback TCP, one way, N streams (N = 2) | 5.00 GB/s | 4.50 GB/s – 5.50 GB/s |",
        "| null syscall (gettid) | 50.0 ns |",
    ] {
        assert!(summary.contains(needle), "{needle} not in\n{summary}");
    }
}
