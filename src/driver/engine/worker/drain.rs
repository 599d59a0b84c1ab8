//! When a worker's drain ends. A deep pipeline (hundreds of connections ×
//! hundreds of requests in flight) takes seconds to come back at a slow
//! variant's rate while answers keep arriving, so a fixed deadline would
//! call late answers lost. The drain ends when every request is answered,
//! when no answer came for the stall timeout, or at [`MAX_DRAIN`] in all.

use std::time::Duration;

/// The longest any drain lasts, answers arriving or not.
pub const MAX_DRAIN: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
pub(super) struct DrainWatch {
    stall_timeout_ns: u64,
    hard_deadline_ns: u64,
    fewest_outstanding: u64,
    stall_deadline_ns: u64,
}

impl DrainWatch {
    pub(super) fn start(now_ns: u64, outstanding: u64, stall_timeout: Duration) -> DrainWatch {
        let stall_timeout_ns = stall_timeout.as_nanos() as u64;
        DrainWatch {
            stall_timeout_ns,
            hard_deadline_ns: now_ns + MAX_DRAIN.as_nanos() as u64,
            fewest_outstanding: outstanding,
            stall_deadline_ns: now_ns + stall_timeout_ns,
        }
    }

    /// Whether the drain is over with `outstanding` requests unanswered now.
    pub(super) fn over(&mut self, now_ns: u64, outstanding: u64) -> bool {
        if outstanding < self.fewest_outstanding {
            self.fewest_outstanding = outstanding;
            self.stall_deadline_ns = now_ns + self.stall_timeout_ns;
        }
        outstanding == 0 || now_ns >= self.deadline_ns()
    }

    /// When [`DrainWatch::over`] may next turn true without an answer.
    pub(super) fn deadline_ns(&self) -> u64 {
        self.stall_deadline_ns.min(self.hard_deadline_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn answers_keep_the_drain_going_and_silence_ends_it() {
        let mut watch = DrainWatch::start(0, 100, Duration::from_secs(2));
        assert!(!watch.over(SECOND, 100));
        // Answers arrive every 1.5 s: past the first 2 s, still draining.
        assert!(!watch.over(SECOND + SECOND / 2, 60));
        assert!(!watch.over(3 * SECOND, 30));
        // Then silence for 2 s after the last answer.
        assert!(!watch.over(4 * SECOND + SECOND / 2, 30));
        assert!(watch.over(5 * SECOND, 30));
    }

    #[test]
    fn everything_answered_ends_it_at_once_and_the_cap_ends_it_anyway() {
        let mut watch = DrainWatch::start(0, 5, Duration::from_secs(2));
        assert!(watch.over(1, 0));
        let cap = MAX_DRAIN.as_nanos() as u64;
        let mut watch = DrainWatch::start(0, u64::MAX, Duration::from_secs(2));
        let mut now = 0;
        let mut outstanding = u64::MAX;
        while now < cap - SECOND {
            assert!(!watch.over(now, outstanding));
            now += SECOND;
            outstanding -= 1;
        }
        assert!(
            watch.over(cap, outstanding - 1),
            "answers still coming, but the cap"
        );
        assert_eq!(watch.deadline_ns(), cap);
    }
}
