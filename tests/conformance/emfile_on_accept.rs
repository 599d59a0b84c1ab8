//! Case 11: the server out of file descriptors while clients wait to be
//! accepted, on a server of its own.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use epoll_bench::protocol::Protocol;
use epoll_bench::server::report::ThreadReport;
use epoll_bench::sys::SyscallKind;

use crate::support::*;

use crate::case::*;

const SERVED: usize = 4;
const WAITING: usize = 3;
const STALL: Duration = Duration::from_millis(600);

/// Case 11, own server. The server's RLIMIT_NOFILE is lowered (prlimit)
/// so that exactly `SERVED` connections fit; `WAITING` more clients then
/// connect (the kernel completes their handshakes) and send a request.
/// While they wait: the served connections keep being answered, nothing is
/// answered to the waiting ones, `accept_pauses_emfile` > 0, and the
/// server's `epoll_wait` and `accept4` counts grow by a bounded amount (it
/// retries every 100 ms; the classic level-triggered accept spin would make
/// thousands of calls). Once the served connections close, the waiting
/// clients are accepted and answered. Same for echo, with echo messages.
pub(crate) fn emfile_on_accept(variant: &str, protocol: Protocol) {
    let server = ServerProcess::start(variant, protocol, &[]);
    let label = format!("{} case 11 EMFILE", server.label);
    let baseline = server.open_fds();

    let per_connection = fds_per_connection(&server, protocol, baseline, &label);

    // With splice the limit falls between a connection's socket and its
    // pipe: the next accept succeeds and only the pipe fails.
    let free = SERVED * per_connection + (per_connection - 1);
    let limit = nofile_limit_leaving(&server.fd_numbers(), free);
    epoll_bench::sys::rlimit::set_process_nofile_soft(server.pid, limit)
        .expect("lower the server's RLIMIT_NOFILE");

    let mut served: Vec<TcpStream> = (0..SERVED).map(|_| connect(server.addr)).collect();
    for (i, stream) in served.iter_mut().enumerate() {
        let what = format!("{label}: served {i} before the stall");
        round_trip(stream, protocol, 0, &payload(111 + i as u64, 20), &what);
    }
    server.wait_for_fds(baseline + SERVED * per_connection, &label);

    let before = server.snapshot();
    let waiting_payloads: Vec<Vec<u8>> =
        (0..WAITING).map(|i| payload(120 + i as u64, 30)).collect();
    let mut waiting: Vec<TcpStream> = waiting_payloads
        .iter()
        .map(|data| {
            let mut stream = connect(server.addr);
            stream
                .write_all(&encode_request(protocol, data))
                .expect("request from a waiting client");
            stream
        })
        .collect();
    // The stalled window starts once a pause is seen, so the snapshots
    // polled until then do not count against the bound below.
    let paused = server.wait_for_report(&format!("{label}: accept paused"), |r| {
        r.total.counters.accept_pauses_emfile > before.total.counters.accept_pauses_emfile
    });
    let stall_start = Instant::now();
    thread::sleep(STALL);
    for (i, stream) in served.iter_mut().enumerate() {
        let what = format!("{label}: served {i} during the stall");
        round_trip(stream, protocol, 1, &payload(130 + i as u64, 20), &what);
    }
    let during = server.snapshot();
    let stalled_ms = stall_start.elapsed().as_millis() as u64;
    assert_nothing_answered(&mut waiting, &label);
    let delta = during.since(&paused).total;
    assert_no_accept_spin(&delta, during.syscall_counting, stalled_ms, &label);

    // Free the fds: the waiting clients must now be accepted and served.
    for stream in served {
        close_cleanly(stream, &label);
    }
    for (i, (stream, data)) in waiting.iter_mut().zip(&waiting_payloads).enumerate() {
        let what = format!("{label}: waiting client {i} after fds freed up");
        read_expected(stream, &expected_response(protocol, 0, data), &what);
        round_trip(stream, protocol, 1, &payload(140 + i as u64, 20), &what);
    }
    for stream in waiting {
        close_cleanly(stream, &label);
    }
    server.wait_for_fds(baseline, &label);
    fresh_round_trip(server.addr, protocol, &label);
    server.wait_for_fds(baseline, &label);
    let report = server.terminate();
    let c = report.total.counters;
    assert_eq!(c.connections_accepted, (1 + SERVED + WAITING + 1) as u64);
    assert_eq!(c.protocol_errors + c.connection_errors, 0, "{label}: {c:?}");
}

/// What one connection costs the server in fds (3 with splice's pipe),
/// measured with a probe connection that is closed again.
fn fds_per_connection(
    server: &ServerProcess,
    protocol: Protocol,
    baseline: usize,
    label: &str,
) -> usize {
    let probe = connect(server.addr);
    let mut probe = probe;
    round_trip(&mut probe, protocol, 0, &payload(110, 10), label);
    let per_connection = server.open_fds() - baseline;
    assert!(per_connection >= 1, "{label}: a connection costs no fd?");
    close_cleanly(probe, label);
    server.wait_for_fds(baseline, label);
    per_connection
}

/// The waiting clients, not yet accepted, must have received nothing.
fn assert_nothing_answered(waiting: &mut [TcpStream], label: &str) {
    for (i, stream) in waiting.iter_mut().enumerate() {
        stream.set_nonblocking(true).expect("non-blocking");
        let mut buf = [0u8; 16];
        match stream.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("{label}: waiting client {i} got {other:?} before being accepted"),
        }
        stream.set_nonblocking(false).expect("blocking");
    }
}

/// During `stalled_ms` of EMFILE the server paused accepting and retried
/// about every 100 ms, instead of spinning on the pending connections.
fn assert_no_accept_spin(
    delta: &ThreadReport,
    syscall_counting: bool,
    stalled_ms: u64,
    label: &str,
) {
    let retries_possible = stalled_ms / 100 + 2;
    // Per retry: one timed-out wait and one accept4 (each retry pauses
    // again, so at least one pause falls in the window); plus a few
    // wake-ups for each served round trip and the snapshot.
    let wait_bound = 2 * retries_possible + 4 * SERVED as u64 + 20;
    assert!(
        delta.counters.accept_pauses_emfile >= 1,
        "{label}: {:?}",
        delta.counters
    );
    assert!(
        delta.counters.epoll_wait_calls <= wait_bound,
        "{label}: {} epoll_wait calls in {stalled_ms} ms of EMFILE (bound {wait_bound}): busy loop",
        delta.counters.epoll_wait_calls
    );
    if syscall_counting {
        // io_uring waits in io_uring_enter and accepts with SQEs: the same
        // bound holds for its enters (one timed-out wait and one enter
        // returning the failed accept per retry).
        let enters = delta.syscalls.calls.get(SyscallKind::IoUringEnter);
        assert!(
            enters <= wait_bound,
            "{label}: {enters} io_uring_enter calls in {stalled_ms} ms of EMFILE (bound {wait_bound}): busy loop"
        );
        let accepts = delta.syscalls.calls.get(SyscallKind::Accept4);
        assert!(
            accepts <= retries_possible + 5,
            "{label}: {accepts} accept4 calls in {stalled_ms} ms of EMFILE: busy loop"
        );
    }
}
