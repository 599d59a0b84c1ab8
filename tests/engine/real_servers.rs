//! The engine against the real servers (`epoll-bench serve`), every
//! variant.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use epoll_bench::driver::engine::run_case;
use epoll_bench::driver::measurement::{EngineConfig, NoObserver};
use epoll_bench::protocol::Protocol;
use epoll_bench::results::workload::{Shape, SizeDistribution};

use crate::harness::*;

/// A `serve` child process; stopped (and reaped) on drop.
pub(crate) struct RealServer {
    pub(crate) child: std::process::Child,
    pub(crate) stdin: Option<std::process::ChildStdin>,
    pub(crate) stdout: std::io::BufReader<std::process::ChildStdout>,
    pub(crate) addr: SocketAddr,
}

impl RealServer {
    pub(crate) fn start(variant: &str, protocol: Protocol) -> RealServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_epoll-bench"))
            .args(["serve", "--variant", variant, "--protocol", protocol.name()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        RealServer {
            stdin: child.stdin.take(),
            child,
            stdout,
            addr,
        }
    }

    /// Stops the server and returns its final report.
    pub(crate) fn stop(mut self) -> epoll_bench::server::report::ServerReport {
        use std::io::BufRead;
        writeln!(self.stdin.as_mut().unwrap(), "stop").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad final report {line:?}: {e}"))
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        // Bounded: the server exits within a second of `stop`; kill after 5.
        let _ = self.child.kill_on_timeout();
    }
}

pub(crate) trait KillOnTimeout {
    fn kill_on_timeout(&mut self) -> std::io::Result<()>;
}

impl KillOnTimeout for std::process::Child {
    fn kill_on_timeout(&mut self) -> std::io::Result<()> {
        drop(self.stdin.take());
        for _ in 0..500 {
            if self.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill()?;
        self.wait().map(|_| ())
    }
}

pub(crate) fn short_config(target: SocketAddr) -> EngineConfig {
    EngineConfig {
        warmup: Duration::from_millis(50),
        duration: Duration::from_millis(200),
        ..config(target)
    }
}

#[test]
fn every_real_variant_passes_frame_pipelined_with_mixed_sizes() {
    let sizes = SizeDistribution::Uniform {
        min_bytes: 1,
        max_bytes: 300_000,
    };
    for variant in epoll_bench::server::Variant::ALL {
        if !variant.serves(Protocol::Frame) {
            continue;
        }
        if let Some(reason) = variant.unavailable_reason() {
            eprintln!("skipped: {variant} is unavailable on this machine: {reason}");
            continue;
        }
        let variant = variant.name();
        let variant = variant.as_str();
        let server = RealServer::start(variant, Protocol::Frame);
        let c = case(
            Protocol::Frame,
            Shape::Pipelined { depth: 4 },
            4,
            sizes.clone(),
        );
        let m = run_case(&c, &short_config(server.addr), &mut NoObserver).unwrap();
        assert_clean(&m);
        assert!(
            m.requests_issued.abs_diff(m.requests_completed) <= 4 * 4,
            "{variant}: {m:?}"
        );
        let report = server.stop();
        assert_eq!(report.total.counters.protocol_errors, 0, "{variant}");
        // The server parsed every request the driver saw answered.
        assert!(
            report.total.counters.requests_parsed >= m.requests_completed,
            "{variant}"
        );
    }
}

#[test]
fn real_servers_pass_ping_pong_in_both_protocols() {
    for variant in ["lt-rw", "et-writev", "et-splice"] {
        for protocol in [Protocol::Frame, Protocol::Echo] {
            let server = RealServer::start(variant, protocol);
            let c = case(protocol, Shape::PingPong, 16, fixed(64));
            let m = run_case(&c, &short_config(server.addr), &mut NoObserver).unwrap();
            assert_clean(&m);
            assert!(
                m.requests_issued.abs_diff(m.requests_completed) <= 16,
                "{variant}: {m:?}"
            );
            let report = server.stop();
            assert_eq!(
                report.total.counters.connections_accepted, 16,
                "{variant} {protocol:?}"
            );
        }
    }
}

#[test]
fn real_server_churn_and_bulk_pass() {
    let server = RealServer::start("et-rw", Protocol::Frame);
    let churn = case(
        Protocol::Frame,
        Shape::Churn {
            requests_per_connection: 4,
        },
        4,
        fixed(128),
    );
    let m = run_case(&churn, &short_config(server.addr), &mut NoObserver).unwrap();
    assert_clean(&m);
    assert!(m.connections_opened > 0);
    let bulk = case(
        Protocol::Frame,
        Shape::Bulk {
            window_bytes: 4 << 20,
        },
        2,
        fixed(1 << 20),
    );
    let m = run_case(&bulk, &short_config(server.addr), &mut NoObserver).unwrap();
    assert_clean(&m);
    let report = server.stop();
    assert_eq!(report.total.counters.protocol_errors, 0);
}

#[test]
fn a_real_server_killed_mid_run_is_counted_without_hanging() {
    let mut server = RealServer::start("lt-rw", Protocol::Frame);
    let c = case(Protocol::Frame, Shape::Pipelined { depth: 2 }, 4, fixed(64));
    let mut cfg = config(server.addr);
    cfg.warmup = Duration::ZERO;
    cfg.duration = Duration::from_secs(30);
    let pid = server.child.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // SIGKILL: no orderly close; the kernel resets or closes the sockets.
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    });
    let m = run_case(&c, &cfg, &mut NoObserver).unwrap();
    killer.join().unwrap();
    assert!(!m.verification.passed());
    assert_eq!(m.verification.unexpected_closes, 4, "{:?}", m.verification);
    assert!(m.stopped_early.is_some());
    let _ = server.child.wait();
}
