//! The control interface under load and under hostile input: a snapshot and
//! a SIGTERM are answered promptly however busy the serving thread is, a
//! bad control line gets `{"error": ...}` and the reader goes on, limits are
//! per line, and an ephemeral control port is reported.
//!
//! The load is the real driver (`epoll-bench drive`) streaming pipelined
//! frames at the server from many connections, the shape that used to make
//! one pass over the ready list take seconds. Every load run is bounded in
//! time and killed when the test ends.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use epoll_bench::protocol::Protocol;
use epoll_bench::protocol::control::MAX_LINE_BYTES;
use epoll_bench::server::{ServerReport, Variant};
use support::ServerProcess;

/// How long a snapshot may take under load. The loop's own bound is a few
/// milliseconds of work; the rest is slack for a loaded 2-CPU machine.
const SNAPSHOT_UNDER_LOAD: Duration = Duration::from_secs(1);
/// How long the load runs before the server is asked anything.
const LOAD_SETTLE: Duration = Duration::from_millis(1500);

/// `epoll-bench drive` streaming at a server; killed on drop.
struct Load {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Load {
    /// 400 connections, each keeping 128 requests of 1 KiB in flight: far
    /// more ready connections with far more queued work than one pass of
    /// the loop used to get through within a second.
    fn start(addr: SocketAddr, protocol: Protocol) -> Load {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("stream.toml");
        std::fs::write(
            &profile,
            format!(
                "name = \"control-under-load\"\nprotocol = \"{}\"\nconnections = 400\nseed = 9\n\
                 [shape]\nkind = \"pipelined\"\ndepth = 128\n\
                 [sizes]\ndistribution = \"fixed\"\nbytes = 1024\n",
                protocol.name()
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_epoll-bench"))
            .args(["drive", "--target", &addr.to_string(), "--profile"])
            .arg(&profile)
            .args(["--duration", "8", "--warmup", "0", "--repetitions", "1"])
            .arg("--out")
            .arg(dir.path().join("out"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot spawn epoll-bench drive");
        Load { child, _dir: dir }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bytes the server has received and sent, whatever it moves them with
/// (syscalls, or io_uring operations). Both directions: with one operation
/// in flight per connection, an io_uring server sends a whole batch of
/// responses before it reads again, so on a busy machine a 200 ms gap may
/// see only sends.
fn requests_served(report: &ServerReport) -> u64 {
    report.total.counters.bytes_in + report.total.counters.bytes_out
}

/// Snapshot, then SIGTERM, both while the driver streams at full speed.
fn answers_promptly_under_load(variant: Variant, protocol: Protocol) {
    let server = ServerProcess::start(&variant.name(), protocol, &[]);
    let _load = Load::start(server.addr, protocol);
    thread::sleep(LOAD_SETTLE);
    let asked = Instant::now();
    let first = server.snapshot_within(SNAPSHOT_UNDER_LOAD);
    let first_took = asked.elapsed();
    thread::sleep(Duration::from_millis(200));
    let second = server.snapshot_within(SNAPSHOT_UNDER_LOAD);
    let reads_between = requests_served(&second) - requests_served(&first);
    assert!(
        reads_between > 0,
        "{variant} {}: the server read nothing while loaded: the test is not loading it",
        protocol.name()
    );
    assert!(
        second.total.counters.connections_accepted >= 100,
        "{variant} {}: only {} connections accepted",
        protocol.name(),
        second.total.counters.connections_accepted
    );
    println!(
        "{variant} {}: snapshot answered in {first_took:?} under load",
        protocol.name()
    );
    // Exit 0 with the final report within the contract's 1 s.
    server.terminate();
}

/// One test walks every variant and protocol in turn: two loaded servers
/// at once on a 2-CPU machine would measure each other, not the bound.
#[test]
fn snapshot_and_sigterm_are_prompt_under_streaming_load() {
    for variant in Variant::ALL {
        if support::unavailable_here(&variant.name()) {
            continue;
        }
        for protocol in [Protocol::Frame, Protocol::Echo] {
            if !variant.serves(protocol) {
                continue;
            }
            answers_promptly_under_load(variant, protocol);
        }
    }
}

fn error_of(line: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line: `{line}`: {e}"));
    value["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no `error` field in `{line}`"))
        .to_string()
}

const ANSWER: Duration = Duration::from_secs(10);

#[test]
fn stdin_reader_survives_bytes_that_are_not_utf8() {
    // --exit-on-stdin-eof: a reader that died would also stop the server.
    let server = ServerProcess::start("lt-rw", Protocol::Frame, &["--exit-on-stdin-eof"]);
    server.send_stdin(b"snap\xffshot\n");
    let error = error_of(&server.stdout_line(ANSWER, "answer to a non-UTF-8 line"));
    assert!(error.contains("not UTF-8"), "{error}");
    server.send_stdin(b"\xc3\x28\xa0\xa1 more garbage\n");
    let error = error_of(&server.stdout_line(ANSWER, "answer to a second bad line"));
    assert!(error.contains("not UTF-8"), "{error}");
    server.snapshot();
    support::fresh_round_trip(server.addr, Protocol::Frame, "after bad control lines");
    server.terminate();
}

#[test]
fn stdin_reader_caps_each_line_not_the_stream() {
    let server = ServerProcess::start("et-writev", Protocol::Frame, &[]);
    let mut long_line = vec![b'x'; MAX_LINE_BYTES * 10];
    long_line.push(b'\n');
    server.send_stdin(&long_line);
    let error = error_of(&server.stdout_line(ANSWER, "answer to an over-long line"));
    assert!(error.contains("longer than"), "{error}");
    server.snapshot();
    server.terminate();
}

/// A control connection on `--control 127.0.0.1:0`, whose port the server
/// reports on its second stdout line.
fn control_connection(server: &ServerProcess) -> (BufReader<TcpStream>, TcpStream) {
    let line = server.stdout_line(ANSWER, "`control on IP:PORT` line");
    let addr: SocketAddr = line
        .strip_prefix("control on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("expected `control on IP:PORT`, got `{line}`"));
    assert_ne!(addr.port(), 0, "the real port, not the requested 0");
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(ANSWER)).unwrap();
    let writer = stream.try_clone().unwrap();
    (BufReader::new(stream), writer)
}

fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    let n = reader.read_line(&mut line).expect("a control answer");
    assert!(n > 0, "the server closed the control connection");
    line
}

fn assert_snapshot(line: &str) {
    let report: ServerReport =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a report: `{line}`: {e}"));
    assert_eq!(report.report, epoll_bench::server::ReportKind::Snapshot);
}

#[test]
fn ephemeral_control_port_is_reported_and_answers() {
    let server = ServerProcess::start("lt-writev", Protocol::Echo, &["--control", "127.0.0.1:0"]);
    let (mut reader, mut writer) = control_connection(&server);
    writer.write_all(b"snapshot\n").unwrap();
    assert_snapshot(&read_line(&mut reader));
    server.terminate();
}

#[test]
fn control_socket_survives_bad_bytes_and_long_sessions() {
    let server = ServerProcess::start("et-rw", Protocol::Frame, &["--control", "127.0.0.1:0"]);
    let (mut reader, mut writer) = control_connection(&server);

    writer.write_all(b"\xff\xfe\xfd\n").unwrap();
    let error = error_of(&read_line(&mut reader));
    assert!(error.contains("not UTF-8"), "{error}");
    writer.write_all(b"snapshot\n").unwrap();
    assert_snapshot(&read_line(&mut reader));

    // Over 2 MiB of blank lines (answered with nothing) on one connection,
    // as a driver holding the connection for a whole run sends over time:
    // the limit is per line, so the next command is still answered.
    let blank_line = [b" ".repeat(1000), b"\n".to_vec()].concat();
    for _ in 0..2_200 {
        writer.write_all(&blank_line).unwrap();
    }
    writer.write_all(b"reboot\n").unwrap();
    let error = error_of(&read_line(&mut reader));
    assert!(error.contains("unknown command `reboot`"), "{error}");
    writer.write_all(b"snapshot\n").unwrap();
    assert_snapshot(&read_line(&mut reader));

    let mut long_line = vec![b'y'; MAX_LINE_BYTES + 1];
    long_line.push(b'\n');
    writer.write_all(&long_line).unwrap();
    let error = error_of(&read_line(&mut reader));
    assert!(error.contains("longer than"), "{error}");
    writer.write_all(b"snapshot\n").unwrap();
    assert_snapshot(&read_line(&mut reader));
    server.terminate();
}
