//! Trace replay: events given in memory or read from a trace file.

use std::sync::atomic::Ordering;
use std::time::Duration;

use epoll_bench::driver::engine::{EngineError, run_case, run_case_with_trace};
use epoll_bench::driver::measurement::NoObserver;
use epoll_bench::driver::workload::TraceEvent;
use epoll_bench::protocol::Protocol;
use epoll_bench::results::workload::Shape;

use crate::harness::*;
use crate::test_server::*;

#[test]
fn a_trace_replays_every_event_exactly_once() {
    let server = TestServer::start(Protocol::Frame, Fault::None);
    let events: Vec<TraceEvent> = (0..200u32)
        .map(|i| TraceEvent {
            connection: i % 5 + 10,
            offset_us: u64::from(i) * 500,
            size_bytes: 1 + i * 37 % 5000,
        })
        .collect();
    let mut c = case(
        Protocol::Frame,
        Shape::Trace {
            path: "in-memory".into(),
            speed: 2.0,
        },
        0,
        fixed(1),
    );
    c.label = "trace".into();
    let mut cfg = config(server.addr);
    cfg.warmup = Duration::ZERO;
    cfg.duration = Duration::from_secs(30);
    let m = run_case_with_trace(&c, &events, &cfg, &mut NoObserver).unwrap();
    assert!(m.verification.passed(), "{:?}", m.verification);
    assert_eq!(m.requests_issued, 200);
    assert_eq!(m.requests_completed, 200);
    let bytes: u64 = events.iter().map(|e| u64::from(e.size_bytes)).sum();
    assert_eq!(m.payload_bytes_completed, bytes);
    assert_eq!(server.accepted.load(Ordering::Acquire), 5);
    assert_eq!(
        m.stopped_early.as_deref(),
        Some("the trace was replayed completely")
    );
}

#[test]
fn a_trace_file_is_read_and_a_malformed_one_is_a_clear_error() {
    let server = TestServer::start(Protocol::Echo, Fault::None);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.trace");
    let events: Vec<TraceEvent> = (0..30u32)
        .map(|i| TraceEvent {
            connection: i % 3,
            offset_us: u64::from(i) * 1000,
            size_bytes: 100 + i,
        })
        .collect();
    epoll_bench::driver::trace::write_trace_file(&good, &events, "engine test").unwrap();
    let mut c = case(
        Protocol::Echo,
        Shape::Trace {
            path: good.clone(),
            speed: 4.0,
        },
        0,
        fixed(1),
    );
    let mut cfg = config(server.addr);
    cfg.warmup = Duration::ZERO;
    cfg.duration = Duration::from_secs(30);
    let m = run_case(&c, &cfg, &mut NoObserver).unwrap();
    assert!(m.verification.passed(), "{:?}", m.verification);
    assert_eq!(m.requests_completed, 30);

    let bad = dir.path().join("bad.trace");
    std::fs::write(&bad, "0 0 64\nnot a line\n").unwrap();
    c.shape = Shape::Trace {
        path: bad.clone(),
        speed: 1.0,
    };
    let err = run_case(&c, &cfg, &mut NoObserver).unwrap_err();
    assert!(matches!(err, EngineError::Trace(_)), "{err}");
    assert!(err.to_string().contains("bad.trace"), "{err}");
}
