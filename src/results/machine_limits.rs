//! What this machine allows, measured by the tool itself
//! (`epoll-bench limits`, and once at the start of every `run`): loopback
//! TCP bandwidth, memory copy bandwidth and the cost of the cheapest
//! kernel round trips. Results are read as a share of these figures, so no
//! throughput is compared with an outside tool's number.
//!
//! Every figure is a [`Spread`] over trials (`samples` counts them); its
//! unit is in the field's name.

use serde::{Deserialize, Serialize};

use super::Spread;

/// The machine-limits block (`machine_limits` in results.json).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineLimits {
    /// Measured with the short `--quick` plan (as `run` does).
    pub quick: bool,
    /// Wall-clock time of the whole measurement.
    pub elapsed_seconds: f64,
    /// Length of one loopback trial's measured window.
    pub loopback_trial_seconds: f64,
    /// Streams of the `_n_streams` figures (default: the usable CPUs).
    pub parallel_streams: u32,
    /// Size of each write (one way) and of each echoed message (both ways).
    pub loopback_message_bytes: u32,
    /// Bytes each echo stream keeps in flight (the driver's bulk window).
    pub loopback_window_bytes: u64,
    /// One stream, client writes and the server discards: bytes received
    /// per second.
    pub loopback_one_way_1_stream_bytes_per_second: Spread,
    /// [`Self::parallel_streams`] such streams at once, all together.
    pub loopback_one_way_n_streams_bytes_per_second: Spread,
    /// One stream through the driver's bulk engine against an echo server:
    /// payload bytes per second in each direction (the same bytes travel
    /// back).
    pub loopback_both_ways_1_stream_bytes_per_second: Spread,
    /// [`Self::parallel_streams`] echo streams, all together, each way.
    pub loopback_both_ways_n_streams_bytes_per_second: Spread,
    /// Size of each copied buffer.
    pub memcpy_buffer_bytes: u64,
    /// Bytes copied per second, one copy of the buffer per trial.
    pub memcpy_bytes_per_second: Spread,
    /// The syscall timed as the null syscall (through `src/sys`, so with
    /// the in-process counting every server syscall also pays).
    pub null_syscall: String,
    pub null_syscall_ns: Spread,
    /// `epoll_wait` with a zero timeout on an epoll set with nothing in it.
    pub empty_epoll_wait_ns: Spread,
    /// One thread's eventfd write until another thread is back from
    /// `epoll_wait` and has read it: half a ping-pong round trip.
    pub thread_wakeup_ns: Spread,
}

/// How a figure is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitUnit {
    BytesPerSecond,
    Nanoseconds,
}

/// One figure of [`MachineLimits`], for tables.
#[derive(Clone, Copy, Debug)]
pub struct LimitFigure<'a> {
    /// The JSON field.
    pub field: &'static str,
    /// What a reader sees.
    pub label: &'static str,
    pub unit: LimitUnit,
    pub spread: &'a Spread,
}

impl MachineLimits {
    /// Every figure, in the order tables show them.
    pub fn figures(&self) -> [LimitFigure<'_>; 8] {
        use LimitUnit::{BytesPerSecond, Nanoseconds};
        let figure = |field, label, unit, spread| LimitFigure {
            field,
            label,
            unit,
            spread,
        };
        [
            figure(
                "loopback_one_way_1_stream_bytes_per_second",
                "loopback TCP, one way, 1 stream",
                BytesPerSecond,
                &self.loopback_one_way_1_stream_bytes_per_second,
            ),
            figure(
                "loopback_one_way_n_streams_bytes_per_second",
                "loopback TCP, one way, N streams",
                BytesPerSecond,
                &self.loopback_one_way_n_streams_bytes_per_second,
            ),
            figure(
                "loopback_both_ways_1_stream_bytes_per_second",
                "loopback TCP echo, each way, 1 stream",
                BytesPerSecond,
                &self.loopback_both_ways_1_stream_bytes_per_second,
            ),
            figure(
                "loopback_both_ways_n_streams_bytes_per_second",
                "loopback TCP echo, each way, N streams",
                BytesPerSecond,
                &self.loopback_both_ways_n_streams_bytes_per_second,
            ),
            figure(
                "memcpy_bytes_per_second",
                "memcpy",
                BytesPerSecond,
                &self.memcpy_bytes_per_second,
            ),
            figure(
                "null_syscall_ns",
                "null syscall",
                Nanoseconds,
                &self.null_syscall_ns,
            ),
            figure(
                "empty_epoll_wait_ns",
                "empty epoll_wait (timeout 0)",
                Nanoseconds,
                &self.empty_epoll_wait_ns,
            ),
            figure(
                "thread_wakeup_ns",
                "thread-to-thread wake-up (eventfd)",
                Nanoseconds,
                &self.thread_wakeup_ns,
            ),
        ]
    }
}

impl LimitFigure<'_> {
    /// The label with what `limits` says: the stream count of the N-stream
    /// figures, the syscall timed as the null syscall.
    pub fn describe(&self, limits: &MachineLimits) -> String {
        let label = if self.label.ends_with("N streams") {
            format!("{} (N = {})", self.label, limits.parallel_streams)
        } else {
            self.label.to_string()
        };
        if self.field == "null_syscall_ns" {
            format!("{label} ({})", limits.null_syscall)
        } else {
            label
        }
    }
}

impl LimitUnit {
    /// `value` in this unit for a reader: bytes per second as GB/s
    /// (10^9 B/s, as `docs/results-schema.md` counts megabytes), times in ns.
    pub fn format(self, value: f64) -> String {
        match self {
            LimitUnit::BytesPerSecond => format!("{:.2} GB/s", value / 1e9),
            LimitUnit::Nanoseconds if value < 100.0 => format!("{value:.1} ns"),
            LimitUnit::Nanoseconds => format!("{value:.0} ns"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    #[test]
    fn round_trips_and_lists_every_figure_by_its_field_name() {
        let limits = fixture::machine_limits();
        let json = serde_json::to_value(&limits).unwrap();
        let back: MachineLimits = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, limits);
        let spread_fields: Vec<&str> = json
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.get("median").is_some())
            .map(|(k, _)| k.as_str())
            .collect();
        let listed: Vec<&str> = limits.figures().iter().map(|f| f.field).collect();
        let mut sorted = listed.clone();
        sorted.sort_unstable();
        let mut spread_sorted = spread_fields.clone();
        spread_sorted.sort_unstable();
        assert_eq!(sorted, spread_sorted);
        for figure in limits.figures() {
            assert_eq!(
                serde_json::to_value(figure.spread).unwrap(),
                json[figure.field],
                "{}",
                figure.field
            );
            let suffix = match figure.unit {
                LimitUnit::BytesPerSecond => "_bytes_per_second",
                LimitUnit::Nanoseconds => "_ns",
            };
            assert!(figure.field.ends_with(suffix), "{}", figure.field);
        }
    }

    #[test]
    fn descriptions_name_the_stream_count_and_the_null_syscall() {
        let limits = fixture::machine_limits();
        let described: Vec<String> = limits
            .figures()
            .iter()
            .map(|f| f.describe(&limits))
            .collect();
        assert!(described.contains(&"loopback TCP, one way, N streams (N = 2)".to_string()));
        assert!(described.contains(&"null syscall (gettid)".to_string()));
    }

    #[test]
    fn units_format_for_readers() {
        assert_eq!(LimitUnit::BytesPerSecond.format(2.456e9), "2.46 GB/s");
        assert_eq!(LimitUnit::Nanoseconds.format(45.04), "45.0 ns");
        assert_eq!(LimitUnit::Nanoseconds.format(2345.6), "2346 ns");
    }
}
