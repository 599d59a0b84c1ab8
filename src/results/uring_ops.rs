//! io_uring operations per request, the second currency beside syscalls:
//! from a server window's counts (`sys::uring_ops`) to one repetition's
//! figures (spread over repetitions by `aggregate`). Epoll variants have
//! no ring and so no figures: absent, not zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sys::uring_ops::UringOpCounts;

use super::Spread;

/// io_uring operations per request completed by the driver in the window.
/// "Operations" are SQEs: what the server asked the kernel to do, whatever
/// number of `io_uring_enter` calls carried them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UringOpsSummary {
    /// SQEs submitted per request, all opcodes.
    pub sqes_per_request_total: Spread,
    /// CQEs reaped per request, all opcodes (more than SQEs under
    /// multishot, where one SQE completes many times).
    pub cqes_per_request_total: Spread,
    /// By opcode (e.g. `recv`, `send`, `poll_add`); only opcodes submitted
    /// at least once in some repetition.
    pub sqes_per_request: BTreeMap<String, Spread>,
    /// By opcode; only opcodes reaped at least once in some repetition.
    pub cqes_per_request: BTreeMap<String, Spread>,
    /// Multishot operations queued again after the kernel ended them.
    pub multishot_rearms_per_request: Spread,
    /// Buffers handed back to the provided-buffer ring.
    pub buffer_ring_refills_per_request: Spread,
}

/// One repetition's io_uring figures, per request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UringOpFigures {
    pub sqes_per_request: BTreeMap<String, f64>,
    pub cqes_per_request: BTreeMap<String, f64>,
    pub sqes_per_request_total: f64,
    pub cqes_per_request_total: f64,
    pub multishot_rearms_per_request: f64,
    pub buffer_ring_refills_per_request: f64,
}

impl UringOpFigures {
    /// The figures of `ops` counted over `requests` driver-completed
    /// requests.
    pub fn of(ops: &UringOpCounts, requests: u64) -> UringOpFigures {
        let per = |count: u64| count as f64 / requests.max(1) as f64;
        let by_op = |counts: &crate::sys::uring_ops::OpCounts| {
            counts
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(op, n)| (op.name().to_string(), per(n)))
                .collect()
        };
        UringOpFigures {
            sqes_per_request: by_op(&ops.sqes),
            cqes_per_request: by_op(&ops.cqes),
            sqes_per_request_total: per(ops.sqes.total()),
            cqes_per_request_total: per(ops.cqes.total()),
            multishot_rearms_per_request: per(ops.multishot_rearms),
            buffer_ring_refills_per_request: per(ops.buffer_ring_refills),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::uring_ops::UringOp;

    fn counts(recv: u64, send: u64) -> UringOpCounts {
        let mut ops = UringOpCounts::default();
        ops.sqes.0[UringOp::Recv as usize] = recv;
        ops.sqes.0[UringOp::Send as usize] = send;
        ops.cqes = ops.sqes;
        ops
    }

    #[test]
    fn figures_are_per_request_and_spread_over_repetitions() {
        let a = UringOpFigures::of(&counts(100, 200), 100);
        assert_eq!(a.sqes_per_request["recv"], 1.0);
        assert_eq!(a.sqes_per_request_total, 3.0);
        assert!(!a.sqes_per_request.contains_key("accept"));
        let b = UringOpFigures::of(&counts(0, 250), 100);
        let summary = summarize(&[Some(&a), Some(&b)]).unwrap();
        assert_eq!(summary.sqes_per_request_total.median, 2.75);
        // An opcode missing from one repetition counts as 0 there.
        assert_eq!(summary.sqes_per_request["recv"].min, 0.0);
        assert_eq!(summary.sqes_per_request["recv"].samples, 2);
        assert_eq!(summary.multishot_rearms_per_request.median, 0.0);
    }

    #[test]
    fn absent_in_any_repetition_means_absent() {
        let a = UringOpFigures::of(&counts(1, 2), 1);
        assert!(summarize(&[Some(&a), None]).is_none());
        assert!(summarize(&[]).is_none());
    }

    fn summarize(figures: &[Option<&UringOpFigures>]) -> Option<UringOpsSummary> {
        crate::results::aggregate::uring_ops_summary(figures)
    }
}
