//! A slow consumer's read allowance: a token bucket per connection, in
//! bytes. A connection that used up its allowance with bytes still waiting
//! is parked until the bucket is full again; the worker sleeps until then
//! instead of spinning, and the bytes left in the socket are what makes the
//! server's writes block.

/// How much the bucket holds, as time at the configured rate: reads come
/// in chunks of at most this much traffic, at most this often per
/// connection (100 wake-ups a second).
const BURST_NS: u64 = 10_000_000;

#[derive(Clone, Debug)]
pub(crate) struct ReadBudget {
    rate_bytes_per_second: u64,
    capacity_bytes: f64,
    tokens_bytes: f64,
    refilled_ns: u64,
}

impl ReadBudget {
    /// A full bucket at `now_ns`. `rate_bytes_per_second` must be at least
    /// 1 (the profile checks a far larger minimum).
    pub(crate) fn new(rate_bytes_per_second: u64, now_ns: u64) -> ReadBudget {
        let rate = rate_bytes_per_second.max(1);
        let capacity_bytes = (rate as f64 * BURST_NS as f64 / 1e9).max(1.0);
        ReadBudget {
            rate_bytes_per_second: rate,
            capacity_bytes,
            tokens_bytes: capacity_bytes,
            refilled_ns: now_ns,
        }
    }

    /// Whole bytes that may be read at `now_ns`.
    pub(crate) fn available(&mut self, now_ns: u64) -> usize {
        if now_ns > self.refilled_ns {
            let earned =
                (now_ns - self.refilled_ns) as f64 * self.rate_bytes_per_second as f64 / 1e9;
            self.tokens_bytes = (self.tokens_bytes + earned).min(self.capacity_bytes);
            self.refilled_ns = now_ns;
        }
        self.tokens_bytes as usize
    }

    /// Takes `bytes` just read (never more than [`Self::available`] gave).
    pub(crate) fn spend(&mut self, bytes: usize) {
        self.tokens_bytes = (self.tokens_bytes - bytes as f64).max(0.0);
    }

    /// When the bucket is full again (the time to wake a parked reader).
    pub(crate) fn full_at_ns(&self) -> u64 {
        let missing = (self.capacity_bytes - self.tokens_bytes).max(0.0);
        let wait_ns = (missing * 1e9 / self.rate_bytes_per_second as f64).ceil() as u64;
        self.refilled_ns + wait_ns.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn never_more_than_the_rate_plus_one_bucket() {
        let rate = 100_000;
        let mut budget = ReadBudget::new(rate, 0);
        assert_eq!(
            budget.available(0),
            1000,
            "a full bucket is 10 ms of traffic"
        );
        let mut read = 0u64;
        let mut now = 0;
        // A greedy reader that reads everything it may, every 0.7 ms.
        while now <= 2 * SECOND {
            let n = budget.available(now);
            budget.spend(n);
            read += n as u64;
            now += 700_000;
        }
        assert!(read <= 2 * rate + 1000, "{read}");
        assert!(read >= 2 * rate - 1000, "{read}");
    }

    #[test]
    fn an_empty_bucket_is_full_again_after_its_burst_time() {
        let mut budget = ReadBudget::new(1_000_000, 5 * SECOND);
        let all = budget.available(5 * SECOND);
        assert_eq!(all, 10_000);
        budget.spend(all);
        assert_eq!(budget.available(5 * SECOND), 0);
        let full_at = budget.full_at_ns();
        assert_eq!(full_at, 5 * SECOND + BURST_NS);
        assert_eq!(budget.available(full_at), 10_000);
        // Idle time does not accumulate beyond one bucket.
        assert_eq!(budget.available(60 * SECOND), 10_000);
    }
}
