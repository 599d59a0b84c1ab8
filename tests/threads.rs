//! `serve --threads N`: N independent loops, each with its own
//! SO_REUSEPORT listener, serving thread and counters.

mod support;

use epoll_bench::protocol::Protocol;
use support::{ServerProcess, connect, round_trip};

const CONNECTIONS: u32 = 32;

#[test]
fn connections_spread_over_independent_loops() {
    for variant in ["lt-rw", "et-splice"] {
        let server = ServerProcess::start(variant, Protocol::Frame, &["--threads", "2"]);
        let mut streams: Vec<_> = (0..CONNECTIONS).map(|_| connect(server.addr)).collect();
        for (i, stream) in streams.iter_mut().enumerate() {
            for seq in 0..3 {
                round_trip(stream, Protocol::Frame, seq, &[i as u8; 100], variant);
            }
        }
        let report = server.snapshot();
        assert_eq!(report.threads.len(), 2, "{variant}");
        assert_ne!(report.threads[0].tid, report.threads[1].tid, "{variant}");
        assert_eq!(
            report.total.counters.connections_accepted, CONNECTIONS as u64,
            "{variant}"
        );
        assert_eq!(
            report.total.counters.requests_parsed,
            3 * CONNECTIONS as u64
        );
        // The kernel hashes connections over the two listeners: with 32 of
        // them, one loop getting none has probability 2^-31.
        for thread in &report.threads {
            assert!(
                thread.counters.connections_accepted > 0,
                "{variant}: {thread:?}"
            );
            assert!(
                thread
                    .syscalls
                    .calls
                    .get(epoll_bench::sys::SyscallKind::Accept4)
                    > 0
            );
            assert_eq!(
                thread.counters.requests_parsed,
                3 * thread.counters.connections_accepted,
                "{variant}: each loop serves only its own connections"
            );
        }
        drop(streams);
        let final_report = server.terminate();
        assert_eq!(final_report.threads.len(), 2);
        assert_eq!(
            final_report.total.counters.connections_closed,
            CONNECTIONS as u64
        );
    }
}
