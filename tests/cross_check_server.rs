//! The trust check on real servers: for every variant, a ping-pong window
//! counted in-process (the server's snapshots) and in the kernel (perf
//! tracepoints on the serving threads, watched from this process) agree
//! within the tolerance, kind by kind.
//!
//! Needs perf tracepoint counters; where the kernel refuses them the test
//! prints why and passes, except under CI (`CI` set), which runs as root.
//!
//! Each variant is checked in the frame protocol if it serves it, and in
//! the file protocol (4 KiB responses) if it serves that, so the file
//! strategies' calls (`pread64`, `sendfile64`, splice from a file, writes
//! from a mapping) are checked against the kernel too.

mod support;

#[path = "support/file_client.rs"]
mod file_client;

use support::ServerProcess;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use epoll_bench::protocol::Protocol;

use epoll_bench::metrics::cross_check::{CrossCheck, KernelWatch};
use epoll_bench::sys::counters::COUNTING_ENABLED;

const REQUESTS: u64 = 2_000;
const PAYLOAD_BYTES: usize = 64;

/// One request per `seq`, each answered and checked before the next.
fn ping_pong(stream: &mut TcpStream, protocol: Protocol, seqs: std::ops::Range<u64>) {
    if protocol == Protocol::File {
        for seq in seqs {
            let offset = seq * 12_289;
            file_client::file_round_trip(stream, seq as u32, 4096, offset, "cross-check");
        }
        return;
    }
    let mut request = Vec::new();
    request.extend_from_slice(&(PAYLOAD_BYTES as u32).to_be_bytes());
    request.extend((0..PAYLOAD_BYTES).map(|i| (i * 3) as u8));
    let mut response = [0u8; 8 + PAYLOAD_BYTES];
    for seq in seqs {
        stream.write_all(&request).unwrap();
        stream.read_exact(&mut response).unwrap();
        assert_eq!(&response[4..8], &(seq as u32).to_be_bytes());
        assert_eq!(&response[8..], &request[4..]);
    }
}

/// The cross-check of one ping-pong window, or `None` (after saying why)
/// where the kernel refuses counters outside CI.
fn check_variant(variant: &str, protocol: Protocol) -> Option<CrossCheck> {
    if variant.starts_with("tpc-") {
        return check_threads_started_later(variant);
    }
    check_server(variant, protocol, &[])
}

/// Thread-per-connection starts a thread per connection while it runs,
/// and the watch above attaches to the threads a snapshot names (for
/// `tpc-` the controller only): it cannot follow threads started later.
/// So the kernel side is counted by the server itself
/// (`--kernel-counters`): every thread, connection threads included,
/// attaches counters to itself when it starts and reads them in the
/// same instant as its own counts. The window is the same ping-pong, and
/// the same assertions apply to it.
fn check_threads_started_later(variant: &str) -> Option<CrossCheck> {
    if !COUNTING_ENABLED {
        eprintln!("skipped: built without the count-syscalls feature");
        return None;
    }
    let server = ServerProcess::start(variant, Protocol::Frame, &["--kernel-counters"]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    ping_pong(&mut stream, Protocol::Frame, 0..1);
    let start = server.snapshot();
    if let Some(reason) = &start.total.kernel_unavailable_reason {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the kernel cross-check, but: {reason}"
        );
        eprintln!("skipped: kernel cross-check unavailable: {reason}");
        return None;
    }
    ping_pong(&mut stream, Protocol::Frame, 1..REQUESTS + 1);
    let window = server.snapshot().since(&start);
    let kernel = window
        .total
        .kernel_syscalls
        .as_ref()
        .expect("kernel counts");
    let check = CrossCheck::Checked(epoll_bench::metrics::cross_check::cross_check(
        &window.total.syscalls.calls,
        kernel,
    ));
    println!("{variant}: {check}");
    Some(check)
}

fn check_server(variant: &str, protocol: Protocol, extra_args: &[&str]) -> Option<CrossCheck> {
    if !COUNTING_ENABLED {
        eprintln!("skipped: built without the count-syscalls feature");
        return None;
    }
    let server = ServerProcess::start(variant, protocol, extra_args);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Warm-up: connection set-up stays outside the window.
    ping_pong(&mut stream, protocol, 0..1);
    let tids: Vec<i32> = server.snapshot().threads.iter().map(|t| t.tid).collect();
    let watch = KernelWatch::attach(&tids);
    if let Some(reason) = watch.unavailable_reason() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the kernel cross-check, but: {reason}"
        );
        eprintln!("skipped: kernel cross-check unavailable: {reason}");
        return None;
    }

    // As `run` does: the kernel window opens before the in-process one and
    // closes after it, so boundary calls can only raise the kernel count.
    let start = watch.start();
    let ours_start = server.snapshot();
    ping_pong(&mut stream, protocol, 1..REQUESTS + 1);
    let ours_end = server.snapshot();
    let ours = ours_end.since(&ours_start).total.syscalls.calls;
    let check = watch.finish(&start, &ours);
    println!("{variant}: {check}");
    Some(check)
}

/// One ping-pong window of `variant` in `protocol`, counted by both sides:
/// they must agree kind by kind.
fn check_window(variant: &str, protocol: Protocol) {
    let Some(check) = check_variant(variant, protocol) else {
        return;
    };
    let CrossCheck::Checked(report) = &check else {
        unreachable!()
    };
    assert!(report.agrees, "{variant}: {check}");
    // The window really was counted by both sides: a read per request, or
    // under io_uring (which reads with SQEs) an io_uring_enter per request.
    let per_request_kinds: &[&str] = if variant.starts_with("uring-") {
        &["io_uring_enter"]
    } else {
        &["read", "readv"]
    };
    let read_family: u64 = report
        .kinds
        .iter()
        .filter(|k| per_request_kinds.contains(&k.syscall.as_str()))
        .map(|k| k.kernel_calls.unwrap())
        .sum();
    assert!(read_family >= REQUESTS, "{variant}: {check}");
    // Thread-per-connection reads its own kernel counters at every
    // publish; those reads are taken out of both counts, leaving the one
    // read per request the server makes.
    if variant.starts_with("tpc-") {
        assert!(read_family <= REQUESTS + 4, "{variant}: {check}");
    }
    // The kernel window encloses the in-process one: the kernel may see
    // the opening snapshot's own calls (one per kind and boundary), never
    // fewer calls than the server counted.
    for kind in &report.kinds {
        let difference = kind.difference_calls.unwrap();
        assert!((0..=2).contains(&difference), "{variant}: {kind:?}");
    }
    // Syscalls of kinds the suite does not track stay near zero: under one
    // per hundred requests.
    assert!(
        report.unaccounted_syscalls < REQUESTS / 100,
        "{variant}: {check}"
    );
}

/// One test per variant, from the server's one list.
macro_rules! cross_check_tests {
    ($($test:ident => $variant:expr),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let variant: epoll_bench::server::Variant = $variant;
                let name = variant.name();
                if support::unavailable_here(&name) {
                    return;
                }
                for protocol in [Protocol::Frame, Protocol::File] {
                    if variant.serves(protocol) {
                        check_window(&name, protocol);
                    } else {
                        eprintln!("{name} does not serve --protocol {}", protocol.name());
                    }
                }
            }
        )*
    };
}

epoll_bench::for_each_variant!(cross_check_tests);

/// A server path that makes a syscall behind the wrapper's back (one
/// uncounted `read` per wake-up) must fail the trust check on `read`, by
/// about one call per request.
#[test]
fn an_uncounted_syscall_in_the_server_fails_the_check() {
    let Some(check) = check_server("lt-rw", Protocol::Frame, &["--debug-uncounted-read"]) else {
        return;
    };
    let CrossCheck::Checked(report) = &check else {
        unreachable!()
    };
    assert!(
        !report.agrees,
        "the uncounted reads went unnoticed: {check}"
    );
    let read = report.kinds.iter().find(|k| k.syscall == "read").unwrap();
    assert_eq!(read.agrees, Some(false), "{read:?}");
    let missed = read.difference_calls.unwrap();
    assert!(
        (REQUESTS as i64..=REQUESTS as i64 + 3).contains(&missed),
        "expected one missed read per request: {read:?}"
    );
    assert!(check.to_string().contains("read"), "{check}");
    for kind in report.kinds.iter().filter(|k| k.syscall != "read") {
        assert_ne!(
            kind.agrees,
            Some(false),
            "only read was uncounted: {kind:?}"
        );
    }
}

/// With `--kernel-counters` each serving thread reads its kernel counts in
/// the same instant as its own, so over any window the two agree exactly,
/// even while other connections keep it busy between the snapshots; an
/// uncounted read still shows.
#[test]
fn server_side_kernel_counts_agree_exactly() {
    use epoll_bench::metrics::cross_check::cross_check;
    for (extra, uncounted) in [
        (&["--kernel-counters"][..], false),
        (&["--kernel-counters", "--debug-uncounted-read"][..], true),
    ] {
        let server = ServerProcess::start("et-rw", Protocol::Frame, extra);
        let first = server.snapshot();
        if let Some(reason) = &first.total.kernel_unavailable_reason {
            assert!(std::env::var_os("CI").is_none(), "CI must run it: {reason}");
            eprintln!("skipped: {reason}");
            return;
        }
        let mut busy = TcpStream::connect(server.addr).unwrap();
        busy.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let start = server.snapshot();
        ping_pong(&mut busy, Protocol::Frame, 0..REQUESTS);
        let window = server.snapshot().since(&start);
        let kernel = window
            .total
            .kernel_syscalls
            .as_ref()
            .expect("kernel counts");
        let report = cross_check(&window.total.syscalls.calls, kernel);
        let read = report.kinds.iter().find(|k| k.syscall == "read").unwrap();
        if uncounted {
            assert!(
                read.difference_calls.unwrap() >= REQUESTS as i64,
                "{read:?}"
            );
            assert!(!report.agrees);
        } else {
            for kind in &report.kinds {
                assert_eq!(kind.difference_calls, Some(0), "{kind:?}");
            }
            assert!(report.agrees);
        }
    }
}
