//! `uring-multishot`'s registered file table, full. The table has one
//! slot per fd the limit allows at start; the test hook
//! `EPOLL_BENCH_IO_URING_FIXED_FILE_SLOTS` makes it smaller, so that slots
//! run out while fds do not (as they would on a server whose hard limit is
//! raised while it runs). The connection past the last slot must wait as
//! one past the fd limit does (conformance case 11): accepting paused,
//! nothing answered, the served connections still served; once one closes
//! and its slot's close is back, the waiting one is served, and nothing is
//! counted as an error.

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use epoll_bench::protocol::Protocol;
use epoll_bench::sys::uring::FIXED_FILE_SLOTS_ENV;
use support::*;

const SLOTS: u64 = 4;

#[test]
fn a_connection_past_the_last_registered_slot_waits_like_one_past_the_fd_limit() {
    if unavailable_here("uring-multishot") {
        return;
    }
    let protocol = Protocol::Frame;
    let slots = SLOTS.to_string();
    let server = ServerProcess::start_with_env(
        "uring-multishot",
        protocol,
        &["--threads", "1"],
        &[(FIXED_FILE_SLOTS_ENV, &slots)],
    );
    let label = "uring-multishot, registered file table full";

    let mut served: Vec<TcpStream> = (0..SLOTS).map(|_| connect(server.addr)).collect();
    for (i, stream) in served.iter_mut().enumerate() {
        round_trip(stream, protocol, 0, &payload(i as u64, 20), label);
    }
    let before = server.snapshot();
    let waiting_payload = payload(99, 30);
    let mut waiting = connect(server.addr);
    waiting
        .write_all(&encode_request(protocol, &waiting_payload))
        .unwrap();
    server.wait_for_report(&format!("{label}: accept paused"), |r| {
        r.total.counters.accept_pauses_emfile > before.total.counters.accept_pauses_emfile
    });
    // Paused, not spinning: the retry every 100 ms finds no slot either.
    std::thread::sleep(Duration::from_millis(300));
    waiting.set_nonblocking(true).unwrap();
    match waiting.read(&mut [0u8; 16]) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        other => panic!("{label}: the waiting client got {other:?} before a slot was free"),
    }
    waiting.set_nonblocking(false).unwrap();
    for (i, stream) in served.iter_mut().enumerate() {
        round_trip(stream, protocol, 1, &payload(40 + i as u64, 20), label);
    }
    let during = server.snapshot();
    assert_eq!(
        during.total.counters.connections_accepted, SLOTS,
        "{label}: the waiting client is not served yet"
    );

    let mut first = served.remove(0);
    first.shutdown(Shutdown::Write).unwrap();
    expect_eof(&mut first, label);
    read_expected(
        &mut waiting,
        &expected_response(protocol, 0, &waiting_payload),
        &format!("{label}: the waiting client once a slot was free"),
    );
    round_trip(&mut waiting, protocol, 1, &payload(100, 20), label);
    for mut stream in served.into_iter().chain([waiting]) {
        stream.shutdown(Shutdown::Write).unwrap();
        expect_eof(&mut stream, label);
    }
    let report = server.terminate();
    let c = report.total.counters;
    assert_eq!(c.connections_accepted, SLOTS + 1, "{label}: {c:?}");
    assert_eq!(c.connections_closed, SLOTS + 1, "{label}: {c:?}");
    assert_eq!(c.protocol_errors + c.connection_errors, 0, "{label}: {c:?}");
}
