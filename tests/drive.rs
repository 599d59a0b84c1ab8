//! `epoll-bench drive` as a user runs it: the real binary against a server
//! started on its own (as in another terminal). Assertions are on statuses,
//! reasons and counts, never on time.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use epoll_bench::driver::server_process::{ServerProcess, ServerSpec};
use epoll_bench::protocol::Protocol;
use epoll_bench::results::{ResultsFile, RunKind, Status};
use epoll_bench::sys::SyscallKind;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_epoll-bench"))
}

/// A loopback port nobody listens on (bound, then released).
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `epoll-bench drive --quick --out OUT` plus `args`. Bounded: a quick
/// drive of one profile measures well under a second.
fn drive(out: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(["drive", "--quick", "--out", out.to_str().unwrap()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A `serve` child with its control interface on a free loopback port.
fn serve_with_control(variant: &str, protocol: Protocol) -> (ServerProcess, String) {
    let control = free_port();
    let mut spec = ServerSpec::new(binary(), variant.parse().unwrap(), protocol);
    spec.extra_args = vec!["--control".into(), control.to_string()];
    (ServerProcess::start(&spec).unwrap(), control.to_string())
}

/// `drive` of the one-connection ping-pong profile against `server`,
/// through `control` when given, into a fresh directory named `name`.
fn drive_pingpong(
    dir: &Path,
    name: &str,
    server: &ServerProcess,
    control: Option<&str>,
) -> (Output, PathBuf) {
    let out = dir.join(name);
    let target = server.addr().to_string();
    let mut args = vec!["--target", &target, "--profile", "pingpong-64b-1conn"];
    if let Some(control) = control {
        args.extend(["--control", control]);
    } else {
        args.extend(["--name", "mystery"]);
    }
    (drive(&out, &args), out)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn drive_with_control_measures_the_server_and_names_it() {
    let (server, control) = serve_with_control("lt-writev", Protocol::Frame);
    let dir = tempfile::tempdir().unwrap();
    let (output, out) = drive_pingpong(dir.path(), "with-control", &server, Some(&control));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let results = ResultsFile::load(&out.join("results.json")).unwrap();
    assert_eq!(results.run.kind, RunKind::Drive);
    assert_eq!(results.run.passed_count, 1);
    let variant = &results.cases[0].variants[0];
    assert_eq!(
        variant.variant, "lt-writev",
        "named by the control interface"
    );
    assert_eq!(variant.status, Status::Passed);
    let summary = variant.summary.as_ref().unwrap();
    assert!(summary.requests_per_second.median > 0.0);
    let server_side = summary.server.as_ref().expect("server-side figures");
    // writev answers a frame with one write-family call. Per request the
    // driver completed, the server's window and the driver's can differ by
    // a few milliseconds of requests when a snapshot is slow (a busy
    // machine); against the requests the server itself parsed in the same
    // window, only the one in flight at each edge can differ.
    let writev = server_side.syscalls_per_request["writev"].median;
    assert!((writev - 1.0).abs() < 0.05, "writev per request {writev}");
    for r in &variant.repetitions {
        let window = r.server_window.as_ref().expect("a server window");
        let calls = window.total.syscalls.calls.get(SyscallKind::Writev);
        let parsed = window.total.counters.requests_parsed;
        assert!(
            calls.abs_diff(parsed) <= 2,
            "writev {calls} for {parsed} parsed requests"
        );
    }
    assert!(!server_side.syscalls_per_request.contains_key("write"));
    // The server really served what the driver counted.
    let served = server.stop().unwrap().total.counters.requests_parsed;
    let completed: u64 = variant
        .repetitions
        .iter()
        .filter_map(|r| r.measurement.as_ref())
        .map(|m| m.requests_completed)
        .sum();
    assert!(
        served >= completed && completed > 0,
        "served {served}, completed {completed}"
    );
}

#[test]
fn drive_without_control_says_server_figures_are_unavailable() {
    let server = ServerProcess::start(&ServerSpec::new(
        binary(),
        "et-rw".parse().unwrap(),
        Protocol::Frame,
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (output, out) = drive_pingpong(dir.path(), "blind", &server, None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let results = ResultsFile::load(&out.join("results.json")).unwrap();
    let variant = &results.cases[0].variants[0];
    assert_eq!(variant.variant, "mystery");
    assert_eq!(variant.status, Status::Passed);
    assert!(variant.summary.as_ref().unwrap().server.is_none());
    assert_eq!(
        variant.server_side_unavailable_reason.as_deref(),
        Some("no --control interface given")
    );
    let summary_md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary_md.contains("server-side figures unavailable"));
    server.stop().unwrap();
}

#[test]
fn an_unreachable_target_fails_every_measurement_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("refused");
    let target = free_port().to_string();
    let output = drive(
        &out,
        &[
            "--target",
            &target,
            "--profile",
            "pingpong-64b-1conn",
            "--profile",
            "echo-pingpong-1kib",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("cannot reach the target {target}")),
        "{}",
        stderr(&output)
    );
    let results = ResultsFile::load(&out.join("results.json")).unwrap();
    assert_eq!((results.run.passed_count, results.run.failed_count), (0, 2));
    for case in &results.cases {
        let variant = &case.variants[0];
        assert_eq!(variant.status, Status::Failed);
        assert!(variant.summary.is_none(), "no figures from a failed run");
        assert!(
            variant.failure_reasons[0].starts_with(&format!("cannot reach the target {target}")),
            "{:?}",
            variant.failure_reasons
        );
    }
}

#[test]
fn a_server_speaking_the_other_protocol_fails_the_case_without_driving_it() {
    let (server, control) = serve_with_control("lt-rw", Protocol::Echo);
    let dir = tempfile::tempdir().unwrap();
    let (output, out) = drive_pingpong(dir.path(), "mismatch", &server, Some(&control));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let results = ResultsFile::load(&out.join("results.json")).unwrap();
    let variant = &results.cases[0].variants[0];
    assert_eq!(variant.status, Status::Failed);
    assert_eq!(
        variant.failure_reasons,
        ["the server speaks the echo protocol, case `pingpong-64b-1conn` needs frame"]
    );
    let report = server.stop().unwrap();
    assert_eq!(report.total.counters.requests_parsed, 0, "nothing was sent");
}

#[test]
fn a_malformed_profile_is_exit_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("bad.toml");
    std::fs::write(&profile, "name = \"bad\"\nconnections = \"many\"\n").unwrap();
    let out = dir.path().join("never");
    let output = drive(
        &out,
        &[
            "--target",
            "127.0.0.1:9",
            "--profile",
            profile.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("bad.toml"), "{message}");
    assert!(message.contains("connections"), "{message}");
    assert!(!out.exists(), "nothing may be written for bad input");
}
