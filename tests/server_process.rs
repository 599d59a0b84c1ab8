//! `driver::server_process` against the real `epoll-bench serve` binary (and
//! a few shell scripts that misbehave on purpose). Loopback only; every wait
//! is bounded by the module's own timeouts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use epoll_bench::driver::measurement::WindowObserver;
use epoll_bench::driver::server_process::{
    RemoteControl, ServerControl, ServerError, ServerProcess, ServerSpec, SnapshotWindow,
};
use epoll_bench::protocol::{self, Protocol};
use epoll_bench::server::Variant;
use epoll_bench::server::report::ReportKind;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_epoll-bench"))
}

fn spec(variant: &str) -> ServerSpec {
    ServerSpec::new(binary(), variant.parse().unwrap(), Protocol::Frame)
}

/// A spec that runs `script` with `sh -c` instead of the server.
fn script(script: &str) -> ServerSpec {
    let mut spec = ServerSpec::new("/bin/sh".into(), Variant::ALL[0], Protocol::Frame);
    spec.leading_args = vec!["-c".into(), script.into(), "sh".into()];
    spec.ready_timeout = Duration::from_millis(500);
    spec
}

/// One frame request and its checked response.
fn ping(stream: &mut TcpStream, seq: u32, payload: &[u8]) {
    stream
        .write_all(&protocol::request_header(payload.len() as u32))
        .unwrap();
    stream.write_all(payload).unwrap();
    let mut header = [0u8; protocol::RESPONSE_HEADER_BYTES];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(
        protocol::parse_response_header(&header),
        (payload.len() as u32, seq)
    );
    let mut back = vec![0u8; payload.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, payload);
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

#[test]
fn window_snapshots_count_exactly_the_requests_inside_it() {
    let mut server = ServerProcess::start(&spec("lt-rw")).unwrap();
    assert!(server.addr().ip().is_loopback());
    assert!(server.baseline_memory().unwrap().rss_bytes > 0);
    let mut stream = connect(server.addr());
    ping(&mut stream, 0, b"before the window");

    let window = {
        let mut observer = SnapshotWindow::new(&mut server);
        observer.window_started();
        for seq in 1..=10 {
            ping(&mut stream, seq, &[seq as u8; 64]);
        }
        observer.window_ended();
        observer.finish().unwrap()
    };
    assert_eq!(window.start.report, ReportKind::Snapshot);
    assert_eq!(window.delta.variant, "lt-rw");
    assert_eq!(window.delta.total.counters.requests_parsed, 10);
    assert_eq!(window.delta.total.counters.protocol_errors, 0);
    assert!(window.memory_at_end.unwrap().peak_rss_bytes > 0);

    drop(stream);
    let last = server.stop().unwrap();
    assert_eq!(last.report, ReportKind::Final);
    assert_eq!(last.total.counters.requests_parsed, 11);
}

#[test]
fn pinned_server_starts_with_its_cpu_list() {
    let mut pinned = spec("et-writev");
    pinned.cpus = Some(vec![0]);
    let server = ServerProcess::start(&pinned).unwrap();
    assert!(
        server
            .command_line()
            .windows(2)
            .any(|w| w == ["--cpus", "0"])
    );
    server.stop().unwrap();
}

#[test]
fn a_server_refusing_its_arguments_is_a_clear_startup_error() {
    // Variants are typed by now, so a refused flag stands in for any
    // start-up error: the server's own message and exit code come back.
    let mut refused = spec("lt-rw");
    refused.extra_args = vec!["--max-frame".into(), "lots".into()];
    let err = match ServerProcess::start(&refused) {
        Err(e) => e,
        Ok(_) => panic!("a server with a bad --max-frame started"),
    };
    let text = err.to_string();
    assert!(matches!(err, ServerError::Died { .. }), "{text}");
    assert!(text.contains("exit code 2"), "{text}");
    assert!(text.contains("lots"), "{text}");
}

#[test]
fn a_server_killed_mid_run_is_reported_as_dead() {
    let mut server = ServerProcess::start(&spec("et-rw")).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-9", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let err = server.snapshot().unwrap_err();
    assert!(err.to_string().contains("killed by signal 9"), "{err}");
}

#[test]
fn drop_kills_the_child() {
    let server = ServerProcess::start(&spec("lt-splice")).unwrap();
    let pid = server.pid();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(server);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn silent_or_confused_servers_time_out_or_are_refused() {
    let err = match ServerProcess::start(&script("sleep 5")) {
        Err(e) => e,
        Ok(_) => panic!("a silent script counted as ready"),
    };
    assert!(matches!(err, ServerError::NotReady { .. }), "{err}");

    let err = match ServerProcess::start(&script("echo 'hello there' >&2; echo nonsense; sleep 5"))
    {
        Err(e) => e,
        Ok(_) => panic!("a confused script counted as ready"),
    };
    let text = err.to_string();
    assert!(
        matches!(err, ServerError::BadListeningLine { .. }),
        "{text}"
    );
    assert!(text.contains("`nonsense`"), "{text}");
}

#[test]
fn a_server_that_ignores_stop_is_killed() {
    // Ready, then deaf: stop must give up after its bound and kill it.
    let server =
        ServerProcess::start(&script("echo 'listening on 127.0.0.1:9'; exec sleep 30")).unwrap();
    let pid = server.pid();
    let err = server.stop().unwrap_err();
    assert!(
        matches!(
            err,
            ServerError::StopTimeout { .. } | ServerError::Died { .. }
        ),
        "{err}"
    );
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn remote_control_speaks_the_same_line_protocol_over_tcp() {
    let control_addr = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let mut with_control = spec("et-rw-shortread");
    with_control.extra_args = vec!["--control".into(), control_addr.to_string()];
    let server = ServerProcess::start(&with_control).unwrap();
    let mut remote =
        RemoteControl::connect(&control_addr.to_string(), Duration::from_secs(2)).unwrap();
    let mut stream = connect(server.addr());
    let before = remote.snapshot().unwrap();
    ping(&mut stream, 0, b"x");
    ping(&mut stream, 1, b"yz");
    let after = remote.snapshot().unwrap();
    assert_eq!(after.variant, "et-rw-shortread");
    assert_eq!(after.since(&before).total.counters.requests_parsed, 2);
    assert!(remote.memory().is_none());
    drop(stream);
    server.stop().unwrap();

    let refused = RemoteControl::connect(&control_addr.to_string(), Duration::from_secs(1));
    assert!(matches!(refused, Err(ServerError::Control { .. })));
}
