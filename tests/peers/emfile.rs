//! Case 11 for a peer: out of file descriptors while clients wait to be
//! accepted. Checked from outside: the served connections keep being
//! answered, the waiting ones get nothing, and the peer's CPU time over the
//! stall shows it retries calmly instead of spinning on a listener that
//! stays readable (the classic accept-loop bug); then everyone is served.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use epoll_bench::protocol::Protocol;

use crate::case::close_cleanly;
use crate::peer::{Peer, PeerProcess};
use crate::support::*;

const SERVED: usize = 4;
const WAITING: usize = 3;
const STALL: Duration = Duration::from_millis(600);
/// CPU the peer may use during [`STALL`]: a busy accept loop uses all of it.
const STALL_CPU_LIMIT: Duration = Duration::from_millis(200);
/// /proc counts CPU time in USER_HZ ticks, 100 per second in Linux's ABI.
const PROC_TICKS_PER_SECOND: u64 = 100;

pub(crate) fn emfile_on_accept(peer: Peer, protocol: Protocol) {
    let server = PeerProcess::start(peer, protocol, &[]);
    let label = format!("{} case 11 EMFILE", server.label);
    // A probe first: a runtime may open an fd of its own on its first
    // connection, which must not count against the limit set below.
    fresh_round_trip(server.addr, protocol, &label);
    let baseline = server.open_fds();
    // Both peers hold one fd per connection (no pipes).
    let limit = nofile_limit_leaving(&server.fd_numbers(), SERVED);
    epoll_bench::sys::rlimit::set_process_nofile_soft(server.pid, limit)
        .expect("lower the peer's RLIMIT_NOFILE");

    let mut served: Vec<TcpStream> = (0..SERVED).map(|_| connect(server.addr)).collect();
    for (i, stream) in served.iter_mut().enumerate() {
        let what = format!("{label}: served {i} before the stall");
        round_trip(stream, protocol, 0, &payload(111 + i as u64, 20), &what);
    }
    server.wait_for_fds(baseline + SERVED, &label);

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
    let cpu_before = server.cpu_ticks();
    thread::sleep(STALL);
    for (i, stream) in served.iter_mut().enumerate() {
        let what = format!("{label}: served {i} during the stall");
        round_trip(stream, protocol, 1, &payload(130 + i as u64, 20), &what);
    }
    let cpu =
        Duration::from_millis((server.cpu_ticks() - cpu_before) * 1000 / PROC_TICKS_PER_SECOND);
    assert!(
        cpu <= STALL_CPU_LIMIT,
        "{label}: {cpu:?} of CPU in {STALL:?} of EMFILE (limit {STALL_CPU_LIMIT:?}): busy accept loop"
    );
    for (i, stream) in waiting.iter_mut().enumerate() {
        stream.set_nonblocking(true).expect("non-blocking");
        match stream.read(&mut [0u8; 16]) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("{label}: waiting client {i} got {other:?} before being accepted"),
        }
        stream.set_nonblocking(false).expect("blocking");
    }

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
    server.terminate();
}
