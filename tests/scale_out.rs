//! Driver scale-out as a user meets it on a machine with a small
//! descriptor limit: this test process lowers its own hard RLIMIT_NOFILE
//! (after starting the server, which keeps the machine's), so the `drive`
//! it starts must hold 3,000 idle connections in several worker processes
//! while the active set is measured and verified in the main one. Kept
//! cheap: 3,000 loopback connections, one quick window.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use epoll_bench::driver::server_process::{ServerProcess, ServerSpec};
use epoll_bench::protocol::Protocol;
use epoll_bench::results::{ResultsFile, Status};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_epoll-bench"))
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

const PROFILE: &str = "name = \"scaled\"\nconnections = 8\nseed = 3\n\
    [shape]\nkind = \"idle_active\"\nidle_connections = 3000\n\
    [sizes]\ndistribution = \"fixed\"\nbytes = 64\n";

#[test]
fn idle_connections_beyond_one_process_are_held_by_worker_processes() {
    // The server keeps this machine's limit: it must hold all 3,008.
    let control = free_port();
    let mut spec = ServerSpec::new(binary(), "lt-writev".parse().unwrap(), Protocol::Frame);
    spec.extra_args = vec!["--control".into(), control.to_string()];
    let server = ServerProcess::start(&spec).unwrap();
    // From here on this process, and the driver it starts, hold at most
    // 1,064 descriptors: 1,000 connections a process.
    epoll_bench::sys::rlimit::lower_nofile(1064).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("scaled.toml");
    std::fs::write(&profile, PROFILE).unwrap();
    let out = dir.path().join("out");
    let output = Command::new(binary())
        .args(["drive", "--quick", "--out", out.to_str().unwrap()])
        .args(["--target", &server.addr().to_string()])
        .args(["--control", &control.to_string()])
        .args(["--profile", profile.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "3008 connections (8 active): main driver process holds 8, 3 worker process(es) \
             hold 3000 idle at most 1000 each; 1 source address(es)"
        ),
        "{stderr}"
    );

    let results = ResultsFile::load(&out.join("results.json")).unwrap();
    let variant = &results.cases[0].variants[0];
    assert_eq!(variant.status, Status::Passed, "{variant:#?}");
    let measured: Vec<_> = variant
        .repetitions
        .iter()
        .filter_map(|r| r.measurement.as_ref())
        .collect();
    assert!(!measured.is_empty());
    for m in measured {
        // Every active byte verified: a passed repetition has no failure.
        assert!(m.verification.passed(), "{:?}", m.verification);
        assert!(m.requests_completed > 0);
        let scale = m
            .scale_out
            .as_ref()
            .expect("worker processes held the idle set");
        assert_eq!(scale.worker_processes, 3);
        assert_eq!(scale.source_addresses, 1);
        assert_eq!(scale.idle_connections_requested, 3000);
        assert_eq!(scale.idle_connections_held, 3000);
        assert_eq!(scale.stopped_by, None);
        assert!(scale.connection_setup_rate_per_second > 0.0);
        assert!(scale.listen_overflows_count.is_some());
    }
    // The server saw every connection, active and idle, and lost none.
    let report = server.stop().unwrap();
    assert!(
        report.total.counters.connections_accepted >= 3008,
        "{:?}",
        report.total.counters
    );
}

#[test]
fn a_worker_that_cannot_connect_says_why_and_what_it_holds() {
    let output = Command::new(binary())
        .args(["hold-idle", "--target", &free_port().to_string()])
        .args(["--source", "127.0.0.1=5", "--connect-timeout-ms", "2000"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout,
        "stopped the server refused the connection, after 0 connection(s) in this worker\n\
         held 0\nclosed 0\n"
    );
}
