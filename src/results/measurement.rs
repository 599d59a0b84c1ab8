//! What the load engine measures for one case against one server, over the
//! measured window only (after warm-up). The driver fills these; results
//! store them and reports read them.

use serde::{Deserialize, Serialize};

use crate::sys::SyscallCounts;
use crate::sys::rusage::ThreadUsage;

/// Latency of completed requests, from the (intended, for open-loop shapes)
/// send time of a request to the arrival of the last byte of its response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub samples: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// HdrHistogram-style percentile curve for charts: `(percentile, µs)`
    /// at percentiles 0, 50, 75, 87.5, ... up to 99.9999 and 100.
    pub percentile_curve_us: Vec<(f64, f64)>,
}

/// Everything the driver checks. Any non-zero count fails the measurement:
/// its throughput and latency must not be reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationCounts {
    /// Responses whose payload differed from what was sent.
    pub payload_mismatches: u64,
    /// Frame responses whose `seq` or `len` was not the expected one.
    pub header_mismatches: u64,
    /// Connections that ended before all their responses arrived.
    pub unexpected_closes: u64,
    /// Connection attempts that failed (refused, reset, timed out).
    pub connect_failures: u64,
    /// Requests still unanswered when the case ended and the drain period
    /// ran out.
    pub unanswered_requests: u64,
}

impl VerificationCounts {
    pub fn failures(&self) -> u64 {
        self.payload_mismatches
            + self.header_mismatches
            + self.unexpected_closes
            + self.connect_failures
            + self.unanswered_requests
    }

    pub fn passed(&self) -> bool {
        self.failures() == 0
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseMeasurement {
    /// Length of the measured window.
    pub measured_seconds: f64,
    /// Requests whose response arrived inside the window.
    pub requests_completed: u64,
    /// Payload bytes of those requests (one direction).
    pub payload_bytes_completed: u64,
    pub latency: LatencySummary,
    pub verification: VerificationCounts,
    /// CPU and context switches of all driver threads inside the window.
    pub driver_usage: ThreadUsage,
    pub driver_threads: usize,
    /// Connections opened inside the window (churn shapes).
    pub connections_opened: u64,
    /// Open-loop shapes: the rate asked for.
    pub target_rate_per_second: Option<f64>,
    /// Requests whose (intended, for open-loop shapes) send time fell inside
    /// the window: with `requests_completed`, shows whether an open-loop
    /// server kept up with the rate.
    #[serde(default)]
    pub requests_issued: u64,
    /// Syscalls of all driver threads inside the window (the driver's own
    /// cost; never mixed with the server's).
    #[serde(default)]
    pub driver_syscalls: SyscallCounts,
    /// Why the case ended before its planned window did (every active
    /// connection lost, or a trace fully replayed); `None` when it ran its
    /// full length.
    #[serde(default)]
    pub stopped_early: Option<String>,
    /// Share of the whole machine's CPU time the hypervisor took (steal)
    /// from the window's start to the end of its drain; `None` where
    /// `/proc/stat` has no steal count.
    #[serde(default)]
    pub cpu_steal_percent: Option<f64>,
    /// CPU seconds the whole machine (every CPU) spent running tasks over
    /// the window, from `/proc/stat`: with the server's and the driver's own
    /// CPU taken out, what other processes took (the `other_load` module).
    #[serde(default)]
    pub machine_busy_cpu_seconds: Option<f64>,
    /// Idle connections held by driver worker processes (more than one
    /// process's RLIMIT_NOFILE allows): how the ramp went; `None` when the
    /// main process held every connection.
    #[serde(default)]
    pub scale_out: Option<ScaleOutcome>,
}

/// The connection ramp of a scaled-out case: idle connections opened by
/// worker processes from several loopback sources, before warm-up.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScaleOutcome {
    /// Worker processes started (the main process holds the active set).
    pub worker_processes: u64,
    /// Loopback source addresses the connections came from.
    pub source_addresses: u64,
    /// Idle connections the plan asked the workers for.
    pub idle_connections_requested: u64,
    /// Idle connections the workers held when the window opened.
    pub idle_connections_held: u64,
    /// From starting the workers to the last one holding its share.
    pub ramp_seconds: f64,
    /// `idle_connections_held / ramp_seconds`: connects (accepts by the
    /// server) per second over the ramp.
    pub connection_setup_rate_per_second: f64,
    /// `/proc/net/netstat` deltas over the ramp (machine-wide): accept
    /// queue full, SYNs dropped by a listener, SYN queue full.
    pub listen_overflows_count: Option<u64>,
    pub listen_drops_count: Option<u64>,
    pub tcp_req_q_full_drops_count: Option<u64>,
    /// Why fewer than requested were held (a limit, memory, time); `None`
    /// when every idle connection was held.
    pub stopped_by: Option<String>,
}

impl CaseMeasurement {
    pub fn requests_per_second(&self) -> f64 {
        self.requests_completed as f64 / self.measured_seconds.max(f64::MIN_POSITIVE)
    }

    /// Driver CPU seconds per completed request.
    pub fn driver_cpu_seconds_per_request(&self) -> f64 {
        (self.driver_usage.cpu_user_seconds + self.driver_usage.cpu_system_seconds)
            / (self.requests_completed.max(1) as f64)
    }

    /// How busy the driver threads were over the window, from 0 (idle) to
    /// 1 (every driver thread on CPU the whole time). Near 1, the driver
    /// rather than the server may be what limits throughput.
    pub fn driver_cpu_utilization(&self) -> f64 {
        (self.driver_usage.cpu_user_seconds + self.driver_usage.cpu_system_seconds)
            / (self.measured_seconds * self.driver_threads.max(1) as f64).max(f64::MIN_POSITIVE)
    }

    pub fn payload_megabytes_per_second(&self) -> f64 {
        self.payload_bytes_completed as f64 / 1e6 / self.measured_seconds.max(f64::MIN_POSITIVE)
    }
}
