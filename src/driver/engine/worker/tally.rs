//! A driver thread's counts and latency histogram, and the response sink its
//! connections report to.

use hdrhistogram::Histogram;

use crate::driver::engine::connection::{Request, ResponseSink};
use crate::driver::engine::latency;
use crate::results::measurement::VerificationCounts;

/// Counts and histogram of one thread; the response sink of its
/// connections.
pub(super) struct Tally {
    pub(super) histogram: Histogram<u64>,
    pub(super) window_start_ns: u64,
    pub(super) window_end_ns: u64,
    pub(super) requests_completed: u64,
    pub(super) payload_bytes_completed: u64,
    pub(super) requests_issued: u64,
    pub(super) completed_all_phases: u64,
    pub(super) connections_opened: u64,
    pub(super) verification: VerificationCounts,
}

impl Tally {
    /// Empty counts; the window's edges are unknown until the coordinator
    /// sets them.
    pub(super) fn new() -> Tally {
        Tally {
            histogram: latency::new_histogram(),
            window_start_ns: u64::MAX,
            window_end_ns: u64::MAX,
            requests_completed: 0,
            payload_bytes_completed: 0,
            requests_issued: 0,
            completed_all_phases: 0,
            connections_opened: 0,
            verification: VerificationCounts::default(),
        }
    }

    #[inline]
    pub(super) fn in_window(&self, t_ns: u64) -> bool {
        t_ns >= self.window_start_ns && t_ns < self.window_end_ns
    }
}

impl ResponseSink for Tally {
    #[inline]
    fn completed(&mut self, request: &Request, now_ns: u64) {
        self.completed_all_phases += 1;
        if self.in_window(now_ns) {
            self.requests_completed += 1;
            self.payload_bytes_completed += u64::from(request.size_bytes);
            latency::record_ns(
                &mut self.histogram,
                now_ns.saturating_sub(request.issued_ns),
            );
        }
    }

    fn payload_mismatch(&mut self) {
        self.verification.payload_mismatches += 1;
    }
}
