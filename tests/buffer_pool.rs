//! The buffer-policy axis (`serve --buffers`): what idle connections hold
//! under each policy, and that a pool at its bound makes connections wait
//! instead of growing.

#[path = "support/mod.rs"]
mod support;

use std::net::TcpStream;
use std::thread;

use epoll_bench::protocol::Protocol;
use epoll_bench::server::report::LoopCounters;

use support::*;

const IDLE_CONNECTIONS: usize = 1000;

/// Opens `IDLE_CONNECTIONS` connections, one round trip each (so every one
/// has needed a buffer), one connection at a time; returns the counters of
/// that stretch and of a later stretch in which all of them sat idle.
fn idle_connections(variant: &str, extra: &[&str]) -> (LoopCounters, LoopCounters) {
    epoll_bench::sys::rlimit::raise_nofile_to_hard().expect("raise RLIMIT_NOFILE");
    let server = ServerProcess::start(variant, Protocol::Frame, extra);
    server.snapshot();
    let mut streams: Vec<TcpStream> = Vec::with_capacity(IDLE_CONNECTIONS);
    for i in 0..IDLE_CONNECTIONS {
        let mut stream = connect(server.addr);
        let data = payload(i as u64, 100);
        round_trip(&mut stream, Protocol::Frame, 0, &data, &server.label);
        streams.push(stream);
    }
    let busy = server.snapshot().total.counters;
    let idle = server.snapshot().total.counters;
    drop(streams);
    server.terminate();
    (busy, idle)
}

fn pooled_idle_connections_hold_no_buffer(variant: &str) {
    let (busy, idle) = idle_connections(variant, &["--buffers", "pooled"]);
    // Every round trip took a buffer and gave it back before the next
    // connection sent anything.
    assert!(busy.pool_takes >= IDLE_CONNECTIONS as u64, "{busy:?}");
    assert_eq!(
        busy.pool_takes,
        busy.pool_hits + busy.pool_misses + busy.pool_waits,
        "{busy:?}"
    );
    assert_eq!(busy.buffers_in_use_peak, 1, "{busy:?}");
    assert_eq!(busy.buffers_allocated_peak, busy.pool_misses, "{busy:?}");
    assert_eq!(busy.pool_waits, 0, "{busy:?}");
    // Idle, the 1,000 connections hold nothing; the pool keeps its buffer.
    assert_eq!(idle.buffers_in_use_peak, 0, "{idle:?}");
    assert_eq!(idle.buffers_allocated_peak, 1, "{idle:?}");
}

fn per_connection_idle_connections_hold_a_buffer_each(variant: &str) {
    let (busy, idle) = idle_connections(variant, &[]);
    let n = IDLE_CONNECTIONS as u64;
    assert_eq!(
        (busy.buffers_allocated_peak, busy.buffers_in_use_peak),
        (n, n),
        "{busy:?}"
    );
    assert_eq!(busy.pool_takes, 0, "{busy:?}");
    assert_eq!(
        (idle.buffers_allocated_peak, idle.buffers_in_use_peak),
        (n, n),
        "{idle:?}"
    );
}

#[test]
fn lt_rw_pooled_idle_connections_hold_no_buffer() {
    pooled_idle_connections_hold_no_buffer("lt-rw");
}

#[test]
fn et_writev_pooled_idle_connections_hold_no_buffer() {
    pooled_idle_connections_hold_no_buffer("et-writev");
}

#[test]
fn lt_rw_per_connection_idle_connections_hold_a_buffer_each() {
    per_connection_idle_connections_hold_a_buffer_each("lt-rw");
}

/// Eight connections stream 1 MiB frames at once through a pool of one
/// 64 KiB buffer: every byte comes back, and the pool never grows past its
/// bound (the others waited for the one buffer).
#[test]
fn a_pool_at_its_bound_makes_connections_wait_not_grow() {
    const CONNECTIONS: usize = 8;
    const FRAME_BYTES: usize = 1 << 20;
    let server = ServerProcess::start(
        "et-rw",
        Protocol::Frame,
        &["--buffers", "pooled", "--pool-buffers", "1"],
    );
    let before = server.snapshot().total.counters;
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let addr = server.addr;
            let label = format!("{} connection {i}", server.label);
            thread::spawn(move || {
                let mut stream = connect(addr);
                let data = payload(0x9001 + i as u64, FRAME_BYTES);
                let request = encode_request(Protocol::Frame, &data);
                let expected = expected_response(Protocol::Frame, 0, &data);
                exchange(
                    &mut stream,
                    request,
                    &expected,
                    ExchangeOptions::default(),
                    &label,
                );
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    let delta = server.snapshot().total.counters.since(&before);
    assert_eq!(delta.buffers_allocated_peak, 1, "{delta:?}");
    assert_eq!(delta.buffers_in_use_peak, 1, "{delta:?}");
    assert!(delta.pool_misses <= 1, "{delta:?}");
    assert_eq!(delta.protocol_errors + delta.connection_errors, 0);
    server.terminate();
}
