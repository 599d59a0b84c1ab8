//! Every traffic shape against a correct server: verification passes and
//! the counts agree with what the shape promises.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::Duration;

use epoll_bench::driver::engine::run_case;
use epoll_bench::driver::measurement::NoObserver;
use epoll_bench::protocol::Protocol;
use epoll_bench::results::workload::{Shape, SizeDistribution};

use crate::harness::*;
use crate::test_server::*;

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
