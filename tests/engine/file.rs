//! The file protocol against the test server: 12-byte requests for ranges
//! inside the served file, every response byte checked against the file's
//! bytes at the requested range, and each kind of wrong answer caught.

use std::collections::HashSet;

use epoll_bench::driver::engine::run_case;
use epoll_bench::driver::measurement::NoObserver;
use epoll_bench::protocol::Protocol;
use epoll_bench::protocol::file::SERVED_FILE_BYTES;
use epoll_bench::results::measurement::CaseMeasurement;
use epoll_bench::results::workload::{Shape, SizeDistribution};

use crate::harness::*;
use crate::test_server::*;

fn run(fault: Fault, shape: Shape, connections: u32, sizes: SizeDistribution) -> CaseMeasurement {
    let server = TestServer::start(Protocol::File, fault);
    let c = case(Protocol::File, shape, connections, sizes);
    run_case(&c, &config(server.addr), &mut NoObserver).unwrap()
}

#[test]
fn file_ping_pong_verifies_every_response_byte_and_asks_for_ranges_inside_the_file() {
    let server = TestServer::start(Protocol::File, Fault::None);
    let c = case(Protocol::File, Shape::PingPong, 4, fixed(10_000));
    let m = run_case(&c, &config(server.addr), &mut NoObserver).unwrap();
    assert_clean(&m);
    // Payload MB/s counts response bodies: requests carry none.
    assert_eq!(m.payload_bytes_completed, 10_000 * m.requests_completed);
    let requests = server.file_requests.lock().unwrap().clone();
    // The server keeps the first KEPT_FILE_REQUESTS it received.
    assert!(
        requests.len() as u64 >= m.requests_completed.min(KEPT_FILE_REQUESTS as u64),
        "{} requests kept, {} completed",
        requests.len(),
        m.requests_completed
    );
    for request in &requests {
        assert_eq!(request.len_bytes, 10_000);
        assert_eq!(request.offset_bytes % 4096, 0, "{request:?}");
        assert!(request.offset_bytes + 10_000 <= SERVED_FILE_BYTES);
    }
    // Spread over the file's 8,190 possible pages, so a server answering
    // from a fixed or stale range fails: 500 draws repeat ~15 of them.
    let first: HashSet<u64> = requests.iter().take(500).map(|r| r.offset_bytes).collect();
    assert!(
        first.len() * 10 > requests.len().min(500) * 9,
        "{} distinct offsets in {} requests",
        first.len(),
        requests.len().min(500)
    );
}

#[test]
fn file_responses_of_every_shape_verify() {
    let mixed = SizeDistribution::Uniform {
        min_bytes: 1,
        max_bytes: 300_000,
    };
    for (shape, sizes) in [
        (Shape::Pipelined { depth: 4 }, mixed.clone()),
        (
            Shape::Bulk {
                window_bytes: 1 << 20,
            },
            fixed(256 * 1024),
        ),
        (
            Shape::ConstantRate {
                rate_per_second: 1000.0,
            },
            mixed,
        ),
        (
            Shape::Churn {
                requests_per_connection: 3,
            },
            fixed(4096),
        ),
    ] {
        let m = run(Fault::None, shape.clone(), 2, sizes);
        assert!(m.verification.passed(), "{shape:?}: {:?}", m.verification);
        assert!(m.requests_completed > 0, "{shape:?}: {m:?}");
    }
}

#[test]
fn a_large_file_response_split_over_many_reads_verifies() {
    let m = run(Fault::None, Shape::PingPong, 1, fixed(16 << 20));
    assert_clean(&m);
    assert_eq!(m.payload_bytes_completed, (16 << 20) * m.requests_completed);
}

#[test]
fn a_flipped_byte_in_a_file_response_is_a_payload_mismatch() {
    let m = run(
        Fault::FlipByteInResponse(3),
        Shape::PingPong,
        2,
        fixed(5000),
    );
    // One bad response on each connection, counted once each; the
    // stream goes on.
    assert_eq!(m.verification.payload_mismatches, 2, "{:?}", m.verification);
    assert_eq!(m.verification.header_mismatches, 0);
    assert!(m.requests_completed > 4);
}

#[test]
fn a_wrong_seq_in_a_file_response_is_a_header_mismatch() {
    let m = run(
        Fault::WrongSeqInResponse(2),
        Shape::Pipelined { depth: 2 },
        2,
        fixed(64),
    );
    // Each connection is closed at its bad header.
    assert_eq!(m.verification.header_mismatches, 2, "{:?}", m.verification);
    assert_eq!(m.verification.payload_mismatches, 0);
    assert!(m.stopped_early.is_some());
}

#[test]
fn the_right_length_from_the_wrong_offset_is_a_payload_mismatch() {
    let m = run(
        Fault::WrongOffsetInResponse(4),
        Shape::PingPong,
        2,
        fixed(4096),
    );
    assert_eq!(m.verification.payload_mismatches, 2, "{:?}", m.verification);
    assert_eq!(m.verification.header_mismatches, 0);
}
