//! Helpers for the conformance suite: run the real `epoll-bench serve`
//! binary as a child process, watch it from the outside (/proc fd count and
//! RSS, `snapshot` reports), and talk to it as a client that verifies every
//! byte it gets back.
//!
//! Every wait here is bounded: a server bug must fail a test, never hang it.

// Each test binary uses a subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use epoll_bench::protocol::control::Command as ControlCommand;
use epoll_bench::protocol::{Protocol, RESPONSE_HEADER_BYTES, request_header, response_header};
use epoll_bench::server::{ReportKind, ServerReport};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Read/write timeout of every client socket: long enough for a loaded
/// machine, short enough that a stuck server fails the test.
pub const CLIENT_IO_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the server may take to print its `listening` line or answer a
/// snapshot.
const SERVER_ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to close its side once clients are gone.
const FD_SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
/// DESIGN §3 / serve contract: exit 0 with the final JSON line within 1 s.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(1);

/// Whether `variant` cannot run here (its backend's start-up probe, e.g.
/// io_uring disabled by the kernel): prints the reason, so that a skipped
/// test says why instead of silently passing.
pub fn unavailable_here(variant: &str) -> bool {
    let variant: epoll_bench::server::Variant = variant.parse().expect("a built-in variant");
    match variant.unavailable_reason() {
        Some(reason) => {
            eprintln!("skipped: {variant} is unavailable on this machine: {reason}");
            true
        }
        None => false,
    }
}

/// A running `epoll-bench serve` child process.
pub struct ServerProcess {
    child: Child,
    stdin: Mutex<ChildStdin>,
    lines: Mutex<Receiver<String>>,
    stderr: Arc<Mutex<String>>,
    pub addr: SocketAddr,
    pub pid: u32,
    /// `variant protocol`, for failure messages.
    pub label: String,
    reaped: bool,
}

impl ServerProcess {
    /// Starts `serve --variant V --protocol P` plus `extra` flags and waits
    /// (bounded) for its `listening on IP:PORT` line.
    pub fn start(variant: &str, protocol: Protocol, extra: &[&str]) -> ServerProcess {
        Self::start_with_env(variant, protocol, extra, &[])
    }

    /// [`ServerProcess::start`] with `env` set for the server (test hooks).
    pub fn start_with_env(
        variant: &str,
        protocol: Protocol,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_epoll-bench"))
            .args(["serve", "--variant", variant, "--protocol", protocol.name()])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot spawn epoll-bench serve");
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut child_stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = child_stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdin = child.stdin.take().expect("piped stdin");
        let label = format!("{variant} {}", protocol.name());
        let first = match lines.recv_timeout(SERVER_ANSWER_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{label}: no `listening on` line ({e}); stderr: {}",
                    stderr.lock().unwrap()
                );
            }
        };
        let addr: SocketAddr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{label}: unexpected first line `{first}`"));
        ServerProcess {
            child,
            stdin: Mutex::new(stdin),
            lines: Mutex::new(lines),
            stderr,
            addr,
            pid,
            label,
            reaped: false,
        }
    }

    fn next_line(&self, timeout: Duration, what: &str) -> String {
        match self.lines.lock().unwrap().recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!(
                "{}: no line from the server within {timeout:?} ({what}); stderr: {}",
                self.label,
                self.stderr()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "{}: server stdout closed ({what}); stderr: {}",
                self.label,
                self.stderr()
            ),
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The next line the server prints, waiting at most `timeout`.
    pub fn stdout_line(&self, timeout: Duration, what: &str) -> String {
        self.next_line(timeout, what)
    }

    /// Writes raw bytes to the server's stdin (its control channel).
    pub fn send_stdin(&self, bytes: &[u8]) {
        let mut stdin = self.stdin.lock().unwrap();
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: cannot write to stdin: {e}", self.label));
    }

    /// The server's counters now, through the stdin control channel.
    pub fn snapshot(&self) -> ServerReport {
        self.snapshot_within(SERVER_ANSWER_TIMEOUT)
    }

    /// [`ServerProcess::snapshot`], failing the test unless the answer
    /// arrives within `timeout`.
    pub fn snapshot_within(&self, timeout: Duration) -> ServerReport {
        self.send_stdin(ControlCommand::Snapshot.line().as_bytes());
        let line = self.next_line(timeout, "snapshot");
        let report: ServerReport = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: bad snapshot line `{}`: {e}", self.label, clip(&line)));
        assert_eq!(report.report, ReportKind::Snapshot, "{}", self.label);
        report
    }

    /// Snapshots until `done` holds, for at most [`FD_SETTLE_TIMEOUT`].
    pub fn wait_for_report(
        &self,
        what: &str,
        done: impl Fn(&ServerReport) -> bool,
    ) -> ServerReport {
        let deadline = Instant::now() + FD_SETTLE_TIMEOUT;
        loop {
            let report = self.snapshot();
            if done(&report) {
                return report;
            }
            assert!(
                Instant::now() < deadline,
                "{}: still waiting for {what}; last counters: {:?}",
                self.label,
                report.total.counters
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The fd numbers the server process has open.
    pub fn fd_numbers(&self) -> BTreeSet<u32> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .unwrap_or_else(|e| panic!("{}: cannot list /proc/{}/fd: {e}", self.label, self.pid))
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    pub fn open_fds(&self) -> usize {
        self.fd_numbers().len()
    }

    /// Polls until the server has exactly `expected` fds open.
    pub fn wait_for_fds(&self, expected: usize, what: &str) {
        let deadline = Instant::now() + FD_SETTLE_TIMEOUT;
        loop {
            let open = self.open_fds();
            if open == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} ({what}): server has {open} fds open, expected {expected}; counters: {:?}",
                self.label,
                self.snapshot().total.counters
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Resident memory of the server process.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("readable /proc/<pid>/status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line");
        kib * 1024
    }

    /// SIGTERM, then: exit status 0 and the final JSON report line, both
    /// within [`SHUTDOWN_DEADLINE`] of the signal.
    pub fn terminate(mut self) -> ServerReport {
        let sent = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM the server");
        let final_line = loop {
            let left = SHUTDOWN_DEADLINE.saturating_sub(sent.elapsed());
            let line = self.next_line(left, "final report after SIGTERM");
            // A snapshot answered just before the signal may still be queued.
            if line.contains(r#""report":"final""#) {
                break line;
            }
        };
        let status = self.wait_exit(sent + SHUTDOWN_DEADLINE);
        assert!(
            status.is_some_and(|s| s.success()),
            "{}: after SIGTERM: exit status {status:?} within {SHUTDOWN_DEADLINE:?}; stderr: {}",
            self.label,
            self.stderr()
        );
        let report: ServerReport = serde_json::from_str(&final_line).unwrap_or_else(|e| {
            panic!(
                "{}: bad final line `{}`: {e}",
                self.label,
                clip(&final_line)
            )
        });
        assert_eq!(report.report, ReportKind::Final);
        let c = &report.total.counters;
        assert_eq!(
            c.connections_accepted, c.connections_closed,
            "{}: every accepted connection is closed at exit",
            self.label
        );
        report
    }

    /// Polls for the child's exit until `deadline`.
    fn wait_exit(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.reaped = true;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The start of a long line, for failure messages.
fn clip(line: &str) -> &str {
    let mut end = line.len().min(300);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// A blocking client socket with TCP_NODELAY and read/write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    configure(&stream);
    stream
}

fn configure(stream: &TcpStream) {
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
        .set_read_timeout(Some(CLIENT_IO_TIMEOUT))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(CLIENT_IO_TIMEOUT))
        .expect("write timeout");
}

/// A client socket whose receive buffer is set to `rcvbuf_bytes` before
/// connecting, so the advertised window stays small from the start.
pub fn connect_with_rcvbuf(addr: SocketAddr, rcvbuf_bytes: usize) -> TcpStream {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, setsockopt, socket, sockopt,
    };
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).expect("socket");
    setsockopt(&fd, sockopt::RcvBuf, &rcvbuf_bytes).expect("SO_RCVBUF");
    let stream = TcpStream::from(fd);
    nix::sys::socket::connect(
        std::os::fd::AsRawFd::as_raw_fd(&stream),
        &SockaddrStorage::from(addr),
    )
    .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    configure(&stream);
    stream
}

/// Makes the next `close` send RST instead of FIN.
pub fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    nix::sys::socket::setsockopt(&stream.as_fd(), nix::sys::socket::sockopt::Linger, &linger)
        .expect("SO_LINGER 0");
}

/// Deterministic payload bytes.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// The bytes a client sends for one message.
pub fn encode_request(protocol: Protocol, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    if protocol == Protocol::Frame {
        out.extend_from_slice(&request_header(payload.len() as u32));
    }
    out.extend_from_slice(payload);
    out
}

/// The bytes the server must send back for message number `seq` on its
/// connection: header with `len` and `seq` then payload (frame), or the
/// payload itself (echo).
pub fn expected_response(protocol: Protocol, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + RESPONSE_HEADER_BYTES);
    if protocol == Protocol::Frame {
        out.extend_from_slice(&response_header(payload.len() as u32, seq));
    }
    out.extend_from_slice(payload);
    out
}

/// Panics with the first differing offset (never dumps megabytes).
pub fn assert_same_bytes(got: &[u8], expected: &[u8], offset: usize, what: &str) {
    if got == expected {
        return;
    }
    let at = got
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(expected.len()));
    let show = |b: &[u8]| format!("{:02x?}", &b[at..b.len().min(at + 16)]);
    panic!(
        "{what}: bytes differ at stream offset {} (got {} bytes, expected {}): got {} expected {}",
        offset + at,
        got.len(),
        expected.len(),
        show(got),
        show(expected)
    );
}

/// Reads exactly `expected.len()` bytes and checks them.
pub fn read_expected(stream: &mut TcpStream, expected: &[u8], what: &str) {
    let mut got = vec![0u8; expected.len()];
    let mut filled = 0;
    while filled < got.len() {
        match stream.read(&mut got[filled..]) {
            Ok(0) => panic!(
                "{what}: EOF after {filled} of {} expected bytes",
                expected.len()
            ),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "{what}: read failed after {filled} of {} bytes: {e}",
                expected.len()
            ),
        }
    }
    assert_same_bytes(&got, expected, 0, what);
}

/// Checks that the server closed the connection cleanly: the next read
/// returns EOF, not more bytes and not a reset.
pub fn expect_eof(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => panic!("{what}: expected EOF, got {n} more bytes"),
            // A read with a receive timeout is not restarted after the test
            // process is stopped and continued (a cgroup freeze, a debugger):
            // the kernel answers EINTR although nothing went wrong.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("{what}: expected EOF, got {e}"),
        }
    }
}

/// Reads until the server closes (EOF or reset), bounded by `limit` bytes;
/// returns everything read and whether the end was a reset.
pub fn read_until_closed(stream: &mut TcpStream, limit: usize, what: &str) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, false),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                assert!(got.len() <= limit, "{what}: more than {limit} bytes back");
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (got, true),
            Err(e) => panic!("{what}: expected the server to close, got {e}"),
        }
    }
}

/// One message and its checked response on an open connection.
pub fn round_trip(
    stream: &mut TcpStream,
    protocol: Protocol,
    seq: u32,
    payload: &[u8],
    what: &str,
) {
    stream
        .write_all(&encode_request(protocol, payload))
        .unwrap_or_else(|e| panic!("{what}: write failed: {e}"));
    read_expected(stream, &expected_response(protocol, seq, payload), what);
}

/// A new connection, one message of each of a few sizes, a clean close:
/// proves the server still serves correctly.
pub fn fresh_round_trip(addr: SocketAddr, protocol: Protocol, what: &str) {
    let mut stream = connect(addr);
    for (seq, len) in [1usize, 100, 3000].into_iter().enumerate() {
        let data = payload(0xf7e5 + seq as u64, len);
        round_trip(
            &mut stream,
            protocol,
            seq as u32,
            &data,
            &format!("{what}: fresh connection afterwards"),
        );
    }
    stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
    expect_eof(&mut stream, &format!("{what}: fresh connection close"));
}

/// How [`exchange`] runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExchangeOptions {
    /// Half-close after the last request byte, then expect EOF after the
    /// last response byte.
    pub half_close: bool,
    /// Do not read before the writer has finished (up to a bounded wait),
    /// so requests are pipelined ahead of every response.
    pub hold_reads: bool,
}

/// Writes `request` from a second thread while this one reads and checks
/// `expected`, so neither side can deadlock on full socket buffers.
pub fn exchange(
    stream: &mut TcpStream,
    request: Vec<u8>,
    expected: &[u8],
    options: ExchangeOptions,
    what: &str,
) {
    let mut writer = stream.try_clone().expect("clone socket");
    let (done_sender, done) = mpsc::channel::<()>();
    let label = what.to_string();
    let writing = thread::spawn(move || {
        writer
            .write_all(&request)
            .unwrap_or_else(|e| panic!("{label}: write failed: {e}"));
        if options.half_close {
            writer.shutdown(Shutdown::Write).expect("shutdown(Write)");
        }
        let _ = done_sender.send(());
    });
    if options.hold_reads {
        // Bounded: if the buffers cannot hold everything, reading must start.
        let _ = done.recv_timeout(Duration::from_secs(2));
    }
    let mut buf = vec![0u8; 256 << 10];
    let mut offset = 0;
    while offset < expected.len() {
        let want = buf.len().min(expected.len() - offset);
        let n = match stream.read(&mut buf[..want]) {
            Ok(0) => panic!(
                "{what}: EOF after {offset} of {} expected bytes",
                expected.len()
            ),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!(
                "{what}: read failed after {offset} of {} bytes: {e}",
                expected.len()
            ),
        };
        assert_same_bytes(&buf[..n], &expected[offset..offset + n], offset, what);
        offset += n;
    }
    writing.join().expect("writer thread");
    if options.half_close {
        expect_eof(stream, &format!("{what}: EOF after the last response"));
    }
}

/// The smallest RLIMIT_NOFILE under which exactly `free` more fds can be
/// opened by a process that has `open` fds.
pub fn nofile_limit_leaving(open: &BTreeSet<u32>, free: usize) -> u64 {
    let mut available = 0;
    let mut n: u32 = 0;
    loop {
        if !open.contains(&n) {
            if available == free {
                return n as u64;
            }
            available += 1;
        }
        n += 1;
    }
}

/// A small deterministic RNG for sizes and garbage.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}
