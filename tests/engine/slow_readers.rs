//! Slow consumers (`[client]` in a profile): a rate-capped reader never
//! reads faster than its budget, still verifies every byte, sleeps rather
//! than spins while it waits, and its drain still ends; against the real
//! servers, the writes it makes block cost a level-triggered loop
//! `epoll_ctl` calls and an edge-triggered one none. Bounds are on counts
//! and bytes (a rate bound uses the window the engine measured).

use epoll_bench::driver::engine::run_case;
use epoll_bench::driver::measurement::NoObserver;
use epoll_bench::protocol::Protocol;
use epoll_bench::results::workload::{Case, ClientReceive, Shape};
use epoll_bench::sys::SyscallKind;
use epoll_bench::sys::counters::COUNTING_ENABLED;

use crate::harness::*;
use crate::real_servers::{RealServer, short_config};
use crate::test_server::*;

/// Connections of the real-server backpressure test.
const CONNECTIONS: u64 = 2;
/// The read budget holds 10 ms of traffic (`read_budget.rs`).
const BURST_SECONDS: f64 = 0.010;

fn slow_case(connections: u32, bytes: u32, client: ClientReceive) -> Case {
    Case {
        client,
        ..case(Protocol::Frame, Shape::PingPong, connections, fixed(bytes))
    }
}

#[test]
fn a_rate_capped_reader_reads_no_faster_than_its_budget_and_verifies_every_byte() {
    let server = TestServer::start(Protocol::Frame, Fault::None);
    let rate = 200_000;
    let bytes = 16_384;
    let connections = 2;
    let c = slow_case(
        connections,
        bytes,
        ClientReceive {
            receive_buffer_bytes: Some(4096),
            read_rate_bytes_per_second: Some(rate),
        },
    );
    let m = run_case(&c, &config(server.addr), &mut NoObserver).unwrap();
    // Clean: every byte verified, nothing unanswered after the drain.
    assert_clean(&m);
    // Each connection completes in the window at most what its budget
    // let in during it, plus a full bucket, plus the one response that
    // may have been partly read before the window opened.
    let per_connection_bound =
        rate as f64 * (m.measured_seconds + BURST_SECONDS) + f64::from(bytes);
    let bound = f64::from(connections) * per_connection_bound;
    assert!(
        (m.payload_bytes_completed as f64) <= bound,
        "{} payload bytes in {:.3} s, above the budget's {bound}",
        m.payload_bytes_completed,
        m.measured_seconds
    );
    if COUNTING_ENABLED {
        // Waiting for the budget sleeps: at most ~100 budget wake-ups per
        // connection-second plus the responses' own events, where a
        // spinning worker would call epoll_wait hundreds of thousands of
        // times a second.
        let waits = m.driver_syscalls.calls.get(SyscallKind::EpollWait) as f64;
        let per_second = waits / m.measured_seconds;
        assert!(
            per_second < 5_000.0,
            "{per_second} epoll_wait calls per second"
        );
    }
}

#[test]
fn a_small_receive_buffer_alone_still_passes_large_responses() {
    let server = TestServer::start(Protocol::Frame, Fault::None);
    let c = slow_case(
        3,
        300_000,
        ClientReceive {
            receive_buffer_bytes: Some(1024),
            read_rate_bytes_per_second: None,
        },
    );
    let m = run_case(&c, &config(server.addr), &mut NoObserver).unwrap();
    assert_clean(&m);
    assert_eq!(m.payload_bytes_completed, 300_000 * m.requests_completed);
}

/// Over a whole run of a slow-reader case, the server's `epoll_ctl` and
/// `writev` calls and the requests it parsed.
fn backpressure_against(variant: &str) -> (u64, u64, u64) {
    let server = RealServer::start(variant, Protocol::Frame);
    // As profiles/backpressure-slow-reader.toml, on fewer connections:
    // 4 MiB of responses in flight per connection is more than the
    // server's send buffer on loopback (~4 MB) and the client's take, so
    // the server's writes block.
    let c = Case {
        shape: Shape::Pipelined { depth: 16 },
        ..slow_case(
            CONNECTIONS as u32,
            256 * 1024,
            ClientReceive {
                receive_buffer_bytes: Some(4096),
                read_rate_bytes_per_second: Some(16_000_000),
            },
        )
    };
    let m = run_case(&c, &short_config(server.addr), &mut NoObserver).unwrap();
    assert_clean(&m);
    let report = server.stop();
    let calls = &report.total.syscalls.calls;
    let (ctl, writes, requests) = (
        calls.get(SyscallKind::EpollCtl),
        calls.get(SyscallKind::Writev),
        report.total.counters.requests_parsed,
    );
    println!("{variant}: {ctl} epoll_ctl, {writes} writev for {requests} requests");
    assert!(requests >= m.requests_completed, "{variant}");
    (ctl, writes, requests)
}

#[test]
fn under_slow_readers_lt_re_arms_epollout_and_et_does_not() {
    if !COUNTING_ENABLED {
        eprintln!("skipped: built without the count-syscalls feature, nothing counted");
        return;
    }
    let connections = CONNECTIONS;
    let (lt_ctl, lt_writes, lt_requests) = backpressure_against("lt-writev");
    let (et_ctl, et_writes, et_requests) = backpressure_against("et-writev");
    // 64 KiB responses into a 4 KiB receive buffer read at 2 MB/s: no
    // response leaves in one writev (a short write is a blocked socket),
    // under either trigger.
    assert!(lt_writes >= 2 * lt_requests, "lt: {lt_writes} writev calls");
    assert!(et_writes >= 2 * et_requests, "et: {et_writes} writev calls");
    // LT asks for EPOLLOUT with epoll_ctl when a write blocks, and drops
    // it once the backlog is out: calls beyond the one registration per
    // connection, repeatedly over the run.
    let lt_re_arms = lt_ctl.saturating_sub(connections);
    assert!(
        lt_re_arms >= 4.max(lt_requests / 10),
        "lt: {lt_ctl} epoll_ctl calls for {lt_requests} responses on {connections} connections"
    );
    // ET registered for both directions once: nothing per request.
    assert!(
        et_ctl <= 2 * connections,
        "et: {et_ctl} epoll_ctl calls for {et_requests} responses on {connections} connections"
    );
}
