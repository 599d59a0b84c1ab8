//! The load engine against small servers written here (one std thread per
//! connection, loopback only): correct ones must pass verification with
//! consistent counts; misbehaving ones (corrupting, wrong `seq`, closing
//! early, silent, absent) must be caught and counted without hanging.
//! Bounds are on counts, never on wall time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use epoll_bench::driver::engine::{EngineError, run_case, run_case_with_trace};
use epoll_bench::driver::measurement::{EngineConfig, NoObserver, Progress, WindowObserver};
use epoll_bench::driver::workload::TraceEvent;
use epoll_bench::protocol::Protocol;
use epoll_bench::results::measurement::CaseMeasurement;
use epoll_bench::results::workload::{Case, Shape, SizeDistribution};

/// How a test server misbehaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    /// Flips one payload byte of response number `n` on every connection.
    FlipByteInResponse(u64),
    /// Sends `seq + 1` in response number `n`.
    WrongSeqInResponse(u64),
    /// Closes every connection after answering `n` requests.
    CloseAfter(u64),
    /// Reads requests and never answers.
    Silent,
}

struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
    acceptor: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start(protocol: Protocol, fault: Fault) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let answered = Arc::new(AtomicU64::new(0));
        let acceptor = {
            let (stop, accepted, answered) = (stop.clone(), accepted.clone(), answered.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            accepted.fetch_add(1, Ordering::AcqRel);
                            stream.set_nonblocking(false).unwrap();
                            stream.set_nodelay(true).unwrap();
                            // Bounded: a stuck read ends when the test stops.
                            stream
                                .set_read_timeout(Some(Duration::from_millis(200)))
                                .unwrap();
                            let (stop, answered) = (stop.clone(), answered.clone());
                            std::thread::spawn(move || {
                                serve(stream, protocol, fault, &stop, &answered)
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            })
        };
        TestServer {
            addr,
            stop,
            accepted,
            answered,
            acceptor: Some(acceptor),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Reads exactly `buf.len()` bytes, retrying read timeouts until `stop`.
/// False on EOF, error or stop.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> bool {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::Acquire) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

fn serve(
    mut stream: TcpStream,
    protocol: Protocol,
    fault: Fault,
    stop: &AtomicBool,
    answered: &AtomicU64,
) {
    let mut seq: u64 = 0;
    match protocol {
        Protocol::Frame => loop {
            let mut header = [0u8; 4];
            if !read_full(&mut stream, &mut header, stop) {
                return;
            }
            let len = u32::from_be_bytes(header);
            let mut response = Vec::with_capacity(8 + len as usize);
            let wire_seq = match fault {
                Fault::WrongSeqInResponse(n) if n == seq => seq as u32 + 1,
                _ => seq as u32,
            };
            response.extend_from_slice(&len.to_be_bytes());
            response.extend_from_slice(&wire_seq.to_be_bytes());
            response.resize(8 + len as usize, 0);
            if !read_full(&mut stream, &mut response[8..], stop) {
                return;
            }
            if let Fault::FlipByteInResponse(n) = fault
                && n == seq
                && len > 0
            {
                response[8 + len as usize / 2] ^= 0x20;
            }
            match fault {
                Fault::Silent => {}
                Fault::CloseAfter(n) if seq >= n => return,
                _ => {
                    if stream.write_all(&response).is_err() {
                        return;
                    }
                    answered.fetch_add(1, Ordering::AcqRel);
                }
            }
            seq += 1;
        },
        Protocol::Echo => {
            let mut buf = [0u8; 16 * 1024];
            let mut echoed: u64 = 0;
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if let Fault::FlipByteInResponse(byte) = fault
                            && (echoed..echoed + n as u64).contains(&byte)
                        {
                            buf[(byte - echoed) as usize] ^= 0x20;
                        }
                        if fault == Fault::Silent {
                            continue;
                        }
                        if stream.write_all(&buf[..n]).is_err() {
                            return;
                        }
                        echoed += n as u64;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        }
    }
}

fn case(protocol: Protocol, shape: Shape, connections: u32, sizes: SizeDistribution) -> Case {
    Case {
        profile: "engine-test".into(),
        label: format!("{shape:?}"),
        protocol,
        connections,
        shape,
        sizes,
        seed: 42,
        sweep_size_bytes: None,
    }
}

fn config(target: SocketAddr) -> EngineConfig {
    EngineConfig {
        target,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(300),
        driver_threads: 2,
        driver_cpus: None,
        drain_timeout: Duration::from_secs(2),
    }
}

fn fixed(bytes: u32) -> SizeDistribution {
    SizeDistribution::Fixed { bytes }
}

/// Records the order of observer calls.
#[derive(Default)]
struct Recorder {
    calls: Vec<&'static str>,
    progress_reports: u64,
}

impl WindowObserver for Recorder {
    fn window_started(&mut self) {
        self.calls.push("start");
    }
    fn window_ended(&mut self) {
        self.calls.push("end");
    }
    fn progress(&mut self, _progress: &Progress) {
        self.progress_reports += 1;
    }
}

fn assert_clean(m: &CaseMeasurement) {
    assert!(
        m.verification.passed(),
        "verification failed: {:?}",
        m.verification
    );
    assert!(m.requests_completed > 0, "nothing completed: {m:?}");
    assert_eq!(m.latency.samples, m.requests_completed);
    assert!(m.stopped_early.is_none(), "{:?}", m.stopped_early);
}

#[test]
fn frame_ping_pong_passes_and_counts_agree() {
    let server = TestServer::start(Protocol::Frame, Fault::None);
    let c = case(Protocol::Frame, Shape::PingPong, 8, fixed(64));
    let mut observer = Recorder::default();
    let m = run_case(&c, &config(server.addr), &mut observer).unwrap();
    assert_clean(&m);
    assert_eq!(observer.calls, ["start", "end"]);
    assert!(observer.progress_reports > 0);
    assert_eq!(m.payload_bytes_completed, 64 * m.requests_completed);
    // Closed loop: at most one request per connection straddles each edge.
    assert!(
        m.requests_issued.abs_diff(m.requests_completed) <= 8,
        "{m:?}"
    );
    assert!(m.requests_completed <= server.answered.load(Ordering::Acquire));
    assert_eq!(server.accepted.load(Ordering::Acquire), 8);
    assert_eq!(m.driver_threads, 2);
    assert!(m.driver_syscalls.calls.total() > 0);
}

#[test]
fn frame_pipelined_with_mixed_sizes_passes() {
    let server = TestServer::start(Protocol::Frame, Fault::None);
    let sizes = SizeDistribution::Uniform {
        min_bytes: 1,
        max_bytes: 200_000,
    };
    let c = case(Protocol::Frame, Shape::Pipelined { depth: 4 }, 3, sizes);
    let m = run_case(&c, &config(server.addr), &mut NoObserver).unwrap();
    assert_clean(&m);
    assert!(
        m.requests_issued.abs_diff(m.requests_completed) <= 3 * 4,
        "{m:?}"
    );
}

#[test]
fn echo_ping_pong_and_pipelined_pass() {
    let server = TestServer::start(Protocol::Echo, Fault::None);
    for shape in [Shape::PingPong, Shape::Pipelined { depth: 8 }] {
        let c = case(Protocol::Echo, shape, 4, fixed(300));
        let m = run_case(&c, &config(server.addr), &mut NoObserver).unwrap();
        assert_clean(&m);
        assert_eq!(m.payload_bytes_completed, 300 * m.requests_completed);
    }
}

#[test]
fn bulk_keeps_a_byte_window_and_passes() {
    let server = TestServer::start(Protocol::Echo, Fault::None);
    let c = case(
        Protocol::Echo,
        Shape::Bulk {
            window_bytes: 256 * 1024,
        },
        2,
        fixed(64 * 1024),
    );
    let m = run_case(&c, &config(server.addr), &mut NoObserver).unwrap();
    assert_clean(&m);
    // Four 64 KiB requests fit the window on each of 2 connections.
    assert!(
        m.requests_issued.abs_diff(m.requests_completed) <= 2 * 4,
        "{m:?}"
    );
}

#[test]
fn churn_reopens_connections_and_passes() {
    let server = TestServer::start(Protocol::Frame, Fault::None);
    let c = case(
        Protocol::Frame,
        Shape::Churn {
            requests_per_connection: 3,
        },
        2,
        fixed(32),
    );
    let m = run_case(&c, &config(server.addr), &mut NoObserver).unwrap();
    assert_clean(&m);
    assert!(m.connections_opened > 0);
    // Each connection answers 3 requests: opened and completed agree to
    // within the connections straddling the window's edges.
    assert!(
        m.requests_completed.abs_diff(3 * m.connections_opened) <= 2 * 3 * 2,
        "{m:?}"
    );
    assert!(server.accepted.load(Ordering::Acquire) > 2);
}

#[test]
fn idle_connections_are_opened_and_held() {
    let server = TestServer::start(Protocol::Frame, Fault::None);
    let c = case(
        Protocol::Frame,
        Shape::IdleActive {
            idle_connections: 100,
        },
        2,
        fixed(64),
    );
    let m = run_case(&c, &config(server.addr), &mut NoObserver).unwrap();
    assert_clean(&m);
    assert_eq!(server.accepted.load(Ordering::Acquire), 102);
}

#[test]
fn more_idle_connections_than_the_fd_limit_is_a_clear_error() {
    let (_, hard) = epoll_bench::sys::rlimit::nofile().unwrap();
    let c = case(
        Protocol::Frame,
        Shape::IdleActive {
            idle_connections: u32::try_from(hard).unwrap_or(u32::MAX - 10),
        },
        1,
        fixed(64),
    );
    // Nothing listens there: the limit is checked before connecting.
    let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let err = run_case(&c, &config(target), &mut NoObserver).unwrap_err();
    assert!(matches!(err, EngineError::FdLimit { .. }), "{err}");
    assert!(err.to_string().contains("RLIMIT_NOFILE"), "{err}");
}

#[test]
fn a_flipped_byte_is_detected() {
    for protocol in [Protocol::Frame, Protocol::Echo] {
        let server = TestServer::start(protocol, Fault::FlipByteInResponse(5));
        let c = case(protocol, Shape::PingPong, 2, fixed(100));
        let m = run_case(&c, &config(server.addr), &mut NoObserver).unwrap();
        assert!(
            m.verification.payload_mismatches > 0,
            "{protocol:?}: {:?}",
            m.verification
        );
        assert!(!m.verification.passed());
        assert_eq!(m.verification.header_mismatches, 0);
    }
}

#[test]
fn a_wrong_seq_is_detected() {
    let server = TestServer::start(Protocol::Frame, Fault::WrongSeqInResponse(3));
    let c = case(Protocol::Frame, Shape::Pipelined { depth: 2 }, 2, fixed(16));
    let m = run_case(&c, &config(server.addr), &mut NoObserver).unwrap();
    // Each connection is closed at its bad header: 2 mismatches, and the
    // case stops early with nothing left to drive.
    assert_eq!(m.verification.header_mismatches, 2, "{:?}", m.verification);
    assert!(m.stopped_early.is_some());
}

#[test]
fn a_server_closing_early_is_counted_without_hanging() {
    let server = TestServer::start(Protocol::Frame, Fault::CloseAfter(10));
    let c = case(Protocol::Frame, Shape::PingPong, 3, fixed(16));
    let mut cfg = config(server.addr);
    // Long enough that a hang would be obvious; the case must stop early.
    cfg.duration = Duration::from_secs(30);
    let m = run_case(&c, &cfg, &mut NoObserver).unwrap();
    assert_eq!(m.verification.unexpected_closes, 3, "{:?}", m.verification);
    assert!(m.stopped_early.as_deref().unwrap().contains("lost"));
    assert!(m.measured_seconds < 30.0);
}

#[test]
fn a_silent_server_leaves_unanswered_requests_after_the_drain_timeout() {
    let server = TestServer::start(Protocol::Frame, Fault::Silent);
    let c = case(Protocol::Frame, Shape::Pipelined { depth: 3 }, 2, fixed(16));
    let mut cfg = config(server.addr);
    cfg.drain_timeout = Duration::from_millis(200);
    let m = run_case(&c, &cfg, &mut NoObserver).unwrap();
    assert_eq!(m.verification.unanswered_requests, 2 * 3);
    assert_eq!(m.requests_completed, 0);
}

#[test]
fn driver_threads_can_be_pinned_and_a_bad_cpu_is_a_clear_error() {
    let server = TestServer::start(Protocol::Frame, Fault::None);
    let c = case(Protocol::Frame, Shape::PingPong, 4, fixed(64));
    let mut cfg = config(server.addr);
    cfg.driver_cpus = Some(vec![0]);
    let m = run_case(&c, &cfg, &mut NoObserver).unwrap();
    assert_clean(&m);
    assert!(m.driver_cpu_utilization() > 0.0);
    // Linux has reported steal in /proc/stat since 2.6.11.
    let steal = m.cpu_steal_percent.expect("steal recorded");
    assert!((0.0..=100.0).contains(&steal), "{steal}");
    cfg.driver_cpus = Some(vec![100_000]);
    let err = run_case(&c, &cfg, &mut NoObserver).unwrap_err();
    assert!(
        matches!(err, EngineError::Pin { cpu: 100_000, .. }),
        "{err}"
    );
}

#[test]
fn a_refused_target_is_a_connect_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let c = case(Protocol::Frame, Shape::PingPong, 4, fixed(64));
    let err = run_case(&c, &config(target), &mut NoObserver).unwrap_err();
    match &err {
        EngineError::Connect { requested, .. } => assert_eq!(*requested, 4),
        other => panic!("expected a connect error, got {other}"),
    }
    assert!(err.to_string().contains(&target.to_string()), "{err}");
}

#[test]
fn constant_rate_issues_about_the_intended_count() {
    let server = TestServer::start(Protocol::Frame, Fault::None);
    let rate = 2000.0;
    let c = case(
        Protocol::Frame,
        Shape::ConstantRate {
            rate_per_second: rate,
        },
        4,
        fixed(64),
    );
    let m = run_case(&c, &config(server.addr), &mut NoObserver).unwrap();
    assert!(m.verification.passed(), "{:?}", m.verification);
    assert_eq!(m.target_rate_per_second, Some(rate));
    // Intended send times are fixed, so the count in the window follows
    // from its length; allow for requests a late thread had not yet issued
    // when the window closed.
    let intended = rate * m.measured_seconds;
    let issued = m.requests_issued as f64;
    assert!(
        issued <= intended + 4.0 + 1.0,
        "issued {issued}, intended {intended}"
    );
    assert!(
        issued >= intended * 0.9 - 4.0,
        "issued {issued}, intended {intended}"
    );
}

#[test]
fn a_trace_replays_every_event_exactly_once() {
    let server = TestServer::start(Protocol::Frame, Fault::None);
    let events: Vec<TraceEvent> = (0..200u32)
        .map(|i| TraceEvent {
            connection: i % 5 + 10,
            offset_us: u64::from(i) * 500,
            size_bytes: 1 + i * 37 % 5000,
        })
        .collect();
    let mut c = case(
        Protocol::Frame,
        Shape::Trace {
            path: "in-memory".into(),
            speed: 2.0,
        },
        0,
        fixed(1),
    );
    c.label = "trace".into();
    let mut cfg = config(server.addr);
    cfg.warmup = Duration::ZERO;
    cfg.duration = Duration::from_secs(30);
    let m = run_case_with_trace(&c, &events, &cfg, &mut NoObserver).unwrap();
    assert!(m.verification.passed(), "{:?}", m.verification);
    assert_eq!(m.requests_issued, 200);
    assert_eq!(m.requests_completed, 200);
    let bytes: u64 = events.iter().map(|e| u64::from(e.size_bytes)).sum();
    assert_eq!(m.payload_bytes_completed, bytes);
    assert_eq!(server.accepted.load(Ordering::Acquire), 5);
    assert_eq!(
        m.stopped_early.as_deref(),
        Some("the trace was replayed completely")
    );
}

#[test]
fn same_seed_sends_the_same_bytes() {
    // Two runs against a server that records request payload bytes of its
    // first connection's first requests.
    fn first_requests(seed: u64) -> Vec<u8> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let recorder = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut seen = Vec::new();
            for seq in 0..3u32 {
                let mut header = [0u8; 4];
                stream.read_exact(&mut header).unwrap();
                let len = u32::from_be_bytes(header);
                let mut payload = vec![0u8; len as usize];
                stream.read_exact(&mut payload).unwrap();
                seen.extend_from_slice(&payload);
                let mut response = len.to_be_bytes().to_vec();
                response.extend_from_slice(&seq.to_be_bytes());
                response.extend_from_slice(&payload);
                stream.write_all(&response).unwrap();
            }
            // Returned, so the connection stays open (silent) until joined.
            (seen, stream)
        });
        let mut c = case(
            Protocol::Frame,
            Shape::PingPong,
            1,
            SizeDistribution::Uniform {
                min_bytes: 10,
                max_bytes: 1000,
            },
        );
        c.seed = seed;
        let mut cfg = config(addr);
        cfg.drain_timeout = Duration::from_millis(100);
        // The recorder stops answering after 3 requests: the 4th is unanswered.
        let m = run_case(&c, &cfg, &mut NoObserver).unwrap();
        assert_eq!(
            m.verification.unanswered_requests, 1,
            "{:?}",
            m.verification
        );
        recorder.join().unwrap().0
    }
    let a = first_requests(7);
    assert_eq!(a, first_requests(7));
    assert_ne!(a, first_requests(8));
}

// ----- against the real servers (`epoll-bench serve`) -----

/// A `serve` child process; stopped (and reaped) on drop.
struct RealServer {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    addr: SocketAddr,
}

impl RealServer {
    fn start(variant: &str, protocol: Protocol) -> RealServer {
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
    fn stop(mut self) -> epoll_bench::server::report::ServerReport {
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

trait KillOnTimeout {
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

fn short_config(target: SocketAddr) -> EngineConfig {
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
    for variant in epoll_bench::server::Variant::ALL.map(|v| v.name()) {
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

#[test]
fn a_trace_file_is_read_and_a_malformed_one_is_a_clear_error() {
    let server = TestServer::start(Protocol::Echo, Fault::None);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.trace");
    let events: Vec<TraceEvent> = (0..30u32)
        .map(|i| TraceEvent {
            connection: i % 3,
            offset_us: u64::from(i) * 1000,
            size_bytes: 100 + i,
        })
        .collect();
    epoll_bench::driver::trace::write_trace_file(&good, &events, "engine test").unwrap();
    let mut c = case(
        Protocol::Echo,
        Shape::Trace {
            path: good.clone(),
            speed: 4.0,
        },
        0,
        fixed(1),
    );
    let mut cfg = config(server.addr);
    cfg.warmup = Duration::ZERO;
    cfg.duration = Duration::from_secs(30);
    let m = run_case(&c, &cfg, &mut NoObserver).unwrap();
    assert!(m.verification.passed(), "{:?}", m.verification);
    assert_eq!(m.requests_completed, 30);

    let bad = dir.path().join("bad.trace");
    std::fs::write(&bad, "0 0 64\nnot a line\n").unwrap();
    c.shape = Shape::Trace {
        path: bad.clone(),
        speed: 1.0,
    };
    let err = run_case(&c, &cfg, &mut NoObserver).unwrap_err();
    assert!(matches!(err, EngineError::Trace(_)), "{err}");
    assert!(err.to_string().contains("bad.trace"), "{err}");
}
