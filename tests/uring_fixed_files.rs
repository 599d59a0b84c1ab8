//! `uring-multishot`'s registered file table, full: the table is sized to
//! the soft `RLIMIT_NOFILE` the server starts with, so a server started
//! under a small limit and given a larger one afterwards has more fds
//! than slots. The connection past the last slot must wait as one past
//! the fd limit does (conformance case 11): accepting paused, nothing
//! answered, the served connections still served; once one closes and its
//! slot's close is back, the waiting one is served, and nothing is
//! counted as an error.

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use epoll_bench::protocol::Protocol;
use epoll_bench::sys::rlimit;
use support::*;

/// The server's soft fd limit at start, hence its table's slots.
const SLOTS: u64 = 24;
/// Its limit once started: fds are no longer what runs out.
const RAISED: u64 = 512;

#[test]
fn a_connection_past_the_last_registered_slot_waits_like_one_past_the_fd_limit() {
    if unavailable_here("uring-multishot") {
        return;
    }
    let protocol = Protocol::Frame;
    // The child inherits this process's limit; only this test runs here.
    let (soft, _) = rlimit::nofile().unwrap();
    set_own_soft_limit(SLOTS);
    let server = ServerProcess::start("uring-multishot", protocol, &["--threads", "1"]);
    set_own_soft_limit(soft);
    rlimit::set_process_nofile_soft(server.pid, RAISED).expect("raise the server's limit");
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
    std::thread::sleep(Duration::from_millis(200));
    waiting.set_nonblocking(true).unwrap();
    match waiting.read(&mut [0u8; 16]) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        other => panic!("{label}: the waiting client got {other:?} before a slot was free"),
    }
    waiting.set_nonblocking(false).unwrap();
    for (i, stream) in served.iter_mut().enumerate() {
        round_trip(stream, protocol, 1, &payload(40 + i as u64, 20), label);
    }

    let first = served.remove(0);
    first.shutdown(Shutdown::Write).unwrap();
    expect_eof(&mut { first }, label);
    read_expected(
        &mut waiting,
        &expected_response(protocol, 0, &waiting_payload),
        &format!("{label}: the waiting client once a slot was free"),
    );
    round_trip(&mut waiting, protocol, 1, &payload(100, 20), label);
    for stream in served.into_iter().chain([waiting]) {
        stream.shutdown(Shutdown::Write).unwrap();
        expect_eof(&mut { stream }, label);
    }
    let report = server.terminate();
    let c = report.total.counters;
    assert_eq!(c.connections_accepted, SLOTS + 1, "{label}: {c:?}");
    assert_eq!(c.protocol_errors + c.connection_errors, 0, "{label}: {c:?}");
}

fn set_own_soft_limit(soft: u64) {
    rlimit::set_process_nofile_soft(std::process::id(), soft).expect("set this process's limit");
}
