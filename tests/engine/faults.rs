//! Misbehaving servers (corrupting, wrong `seq`, closing early, silent):
//! caught and counted, never a hang.

use std::time::Duration;

use epoll_bench::driver::engine::run_case;
use epoll_bench::driver::measurement::NoObserver;
use epoll_bench::protocol::Protocol;
use epoll_bench::results::workload::Shape;

use crate::harness::*;
use crate::test_server::*;

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
