//! Careless input to the real binary: an output path that cannot be written
//! and out-of-range numbers are usage errors (exit code 2), found before
//! anything is measured, in one line naming the flag, the value and what
//! is accepted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_epoll-bench"))
}

/// The binary with `args`, run in `cwd` (where a default results
/// directory would appear).
fn epoll_bench(cwd: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit code 2 and exactly one line on stderr, which is returned.
fn usage_error(output: &Output, what: &str) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{what}: stdout {} stderr {stderr}",
        text(&output.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    stderr
}

/// A regular file: a path under it cannot be a directory.
fn plain_file(dir: &Path) -> PathBuf {
    let file = dir.join("plain-file");
    std::fs::write(&file, "not a directory").unwrap();
    file
}

fn reference_results() -> String {
    format!("{}/results/reference", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn run_refuses_an_out_it_cannot_create_before_measuring() {
    let cwd = tempfile::tempdir().unwrap();
    let under_file = plain_file(cwd.path()).join("x");
    for (out, reason) in [
        (PathBuf::from("/proc/nope/x"), "No such file or directory"),
        (under_file, "Not a directory"),
    ] {
        let out_text = out.to_str().unwrap();
        let output = epoll_bench(
            cwd.path(),
            &[
                "run",
                "--out",
                out_text,
                "--quick",
                "--variants",
                "lt-rw",
                "--profile",
                "pingpong-64b-1conn",
                "--pin",
                "none",
            ],
        );
        let stderr = usage_error(&output, out_text);
        assert!(
            stderr.contains(&format!("--out {out_text}")),
            "flag and path: {stderr}"
        );
        assert_eq!(
            stderr.matches(reason).count(),
            1,
            "OS reason once: {stderr}"
        );
        assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
        // Nothing was planned or measured, nothing written.
        let stdout = text(&output.stdout);
        for progress in ["plan:", "rep 1/1", "req/s", "results written"] {
            assert!(!stdout.contains(progress), "measured: {stdout}");
        }
        assert!(!out.exists());
        assert!(!cwd.path().join("results").exists());
    }
}

#[test]
fn every_writing_command_refuses_an_unwritable_out_before_working() {
    let cwd = tempfile::tempdir().unwrap();
    let file = plain_file(cwd.path());
    let under = |name: &str| file.join(name).to_str().unwrap().to_string();
    let reference = reference_results();
    let (drive_out, chart_out, compare_out, trace_out) = (
        under("drive"),
        under("charts"),
        under("compare.md"),
        under("t.trace"),
    );
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "drive",
            vec![
                "drive",
                "--target",
                // Nobody listens on port 1: were it tried, every
                // measurement would fail, after measuring.
                "127.0.0.1:1",
                "--profile",
                "pingpong-64b-1conn",
                "--quick",
                "--out",
                &drive_out,
            ],
            &drive_out,
        ),
        (
            "chart",
            vec!["chart", &reference, "--out", &chart_out],
            &chart_out,
        ),
        (
            "compare",
            vec!["compare", &reference, &reference, "--out", &compare_out],
            &compare_out,
        ),
        (
            "trace generate",
            vec![
                "trace",
                "generate",
                "--out",
                &trace_out,
                "--requests",
                "5",
                "--rate-per-second",
                "10",
            ],
            &trace_out,
        ),
    ];
    for (what, args, out) in cases {
        let output = epoll_bench(cwd.path(), &args);
        let stderr = usage_error(&output, what);
        assert!(
            stderr.contains(&format!("--out {out}"))
                && stderr.to_lowercase().contains("not a directory"),
            "{what}: {stderr}"
        );
        let stdout = text(&output.stdout);
        for work in ["rep 1/1", "cannot reach", "wrote", "|"] {
            assert!(!stdout.contains(work), "{what} worked: {stdout}");
        }
        assert!(!cwd.path().join("results").exists(), "{what}");
    }
}

#[test]
fn negative_and_out_of_range_numbers_name_the_flag_and_the_range() {
    let cwd = tempfile::tempdir().unwrap();
    let trace = ["trace", "generate", "--out", "t.trace"];
    let drive = [
        "drive",
        "--target",
        "127.0.0.1:1",
        "--profile",
        "pingpong-64b-1conn",
    ];
    let with = |base: &[&'static str], extra: &[&'static str]| [base, extra].concat();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            with(&trace, &["--requests", "5", "--rate-per-second", "-10"]),
            "--rate-per-second: -10 is not accepted: must be a number > 0",
        ),
        (
            with(
                &trace,
                &["--rate-per-second", "9", "--duration-seconds", "-2"],
            ),
            "--duration-seconds: -2 is not accepted: must be a number of seconds > 0 and ≤ 1000000",
        ),
        (
            with(&trace, &["--rate-per-second", "9", "--requests", "-5"]),
            "--requests: -5 is not accepted: must be a whole number from 1 to 10000000",
        ),
        (
            with(
                &trace,
                &[
                    "--rate-per-second",
                    "9",
                    "--requests",
                    "5",
                    "--connections",
                    "100001",
                ],
            ),
            "--connections: 100001 is not accepted: must be a whole number from 1 to 100000",
        ),
        (
            with(
                &trace,
                &["--rate-per-second", "9", "--requests", "5", "--seed", "-1"],
            ),
            "--seed: -1 is not accepted: must be a whole number ≥ 0",
        ),
        (
            vec!["run", "--repetitions", "-1"],
            "--repetitions: -1 is not accepted: must be a whole number ≥ 1",
        ),
        (
            vec!["run", "--duration", "-0.5"],
            "--duration: -0.5 is not accepted: must be a number of seconds ≥ 0.01",
        ),
        (
            vec!["run", "--warmup", "-1"],
            "--warmup: -1 is not accepted: must be a number of seconds ≥ 0",
        ),
        (
            vec!["run", "--precision", "0"],
            "--precision: 0 is not accepted: must be a number of percent > 0",
        ),
        (
            vec!["run", "--precision", "abc"],
            "--precision: abc is not accepted: must be a number of percent > 0",
        ),
        (
            vec!["run", "--precision", "150%"],
            "--precision: 150% is not accepted: must be a number of percent > 0 and ≤ 100",
        ),
        (
            vec!["run", "--threads", "-2"],
            "--threads: -2 is not accepted: must be a whole number ≥ 1",
        ),
        (
            with(&drive, &["--connections", "-3"]),
            "--connections: -3 is not accepted: must be a whole number ≥ 1",
        ),
        (
            with(&drive, &["--budget", "-5"]),
            "--budget: -5 is not accepted: must be a number of seconds > 0",
        ),
        (
            with(&drive, &["--driver-threads", "-1"]),
            "--driver-threads: -1 is not accepted: must be a whole number ≥ 1",
        ),
        (
            vec!["doctor", "--connections", "-1"],
            "--connections: -1 is not accepted: must be a whole number ≥ 0",
        ),
        (
            vec!["serve", "--variant", "lt-rw", "--buffer-size", "-1"],
            "--buffer-size",
        ),
        (
            vec!["serve", "--variant", "lt-rw", "--threads", "-1"],
            "--threads: -1 is not accepted: must be a whole number from 1 to 1024",
        ),
        (
            vec!["serve", "--variant", "lt-rw", "--max-events", "0"],
            "--max-events: 0 is not accepted: must be a whole number from 1 to 1048576",
        ),
    ];
    for (args, expected) in cases {
        let output = epoll_bench(cwd.path(), &args);
        let stderr = usage_error(&output, &args.join(" "));
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("unexpected argument"),
            "{args:?}: {stderr}"
        );
        assert!(
            output.stdout.is_empty(),
            "{args:?} printed {}",
            text(&output.stdout)
        );
    }
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "nothing may be written"
    );
}
