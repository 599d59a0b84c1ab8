//! What a variant × case comes to: the summary over its passed
//! repetitions, the server's figures per request, and which side of the
//! load (driver or server) set the result.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::DRIVER_SATURATED_PERCENT;
use super::Spread;

/// Aggregates over the passed repetitions of one variant × case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub repetitions_used: u32,
    pub requests_per_second: Spread,
    pub payload_megabytes_per_second: Spread,
    pub p50_latency_us: Spread,
    pub p90_latency_us: Spread,
    pub p99_latency_us: Spread,
    pub p999_latency_us: Spread,
    pub max_latency_us: Spread,
    /// Driver threads' user + system CPU over driver-completed requests.
    pub driver_cpu_us_per_request: Spread,
    /// Server-side figures; `None` when unavailable.
    pub server: Option<ServerSummary>,
    /// `driver_cpu_us_per_request / server_cpu_us_per_request`.
    pub driver_to_server_cpu_ratio: Option<Spread>,
    /// Driver threads' CPU time over (window × driver threads), percent.
    /// Absent from results written before it was recorded; `epoll-bench
    /// report --recompute` derives it from the stored repetitions.
    #[serde(default)]
    pub driver_cpu_utilization_percent: Option<Spread>,
    /// The server's CPU time over (window × the CPUs it could use: one per
    /// serving thread, at most as many as its processes may run on),
    /// percent; `None` when server-side figures are unavailable.
    #[serde(default)]
    pub server_cpu_utilization_percent: Option<Spread>,
    /// CPU time the hypervisor took (steal) per window, percent of the
    /// machine's CPU time; `None` when not recorded in every repetition.
    #[serde(default)]
    pub cpu_steal_percent: Option<Spread>,
    /// The driver was saturated: median `driver_cpu_utilization_percent`
    /// at or above [`DRIVER_SATURATED_PERCENT`].
    pub driver_bottleneck_warning: bool,
    pub memory_per_connection_bytes: Option<Spread>,
    /// `idle_active` cases: the server's resident growth over the
    /// connection ramp per connection (`server_memory.whole`), so that
    /// `compare` can set one buffer policy or process layout against
    /// another; absent unless every repetition measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rss_per_connection_bytes: Option<Spread>,
    /// The same runs' kernel memory per connection: TCP buffer pages plus
    /// connection slab objects (machine-wide, both ends on loopback);
    /// absent unless every repetition read both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_memory_per_connection_bytes: Option<Spread>,
    /// Kernel-counted server syscalls (of the kinds counted in-process) per
    /// request, beside `server.syscalls_per_request_total`; for an external
    /// server, every syscall of all its threads. `None` when the kernel
    /// cross-check was unavailable in some repetition.
    pub kernel_syscalls_per_request_total: Option<Spread>,
    /// `true` when the kernel cross-check agreed in every repetition,
    /// `false` when it disagreed in any (the trust check failed), `None`
    /// when it could not run.
    pub kernel_cross_check_passed: Option<bool>,
    /// An external server's figures, counted by the kernel from outside;
    /// absent for built-in variants (whose figures are in `server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_server: Option<super::external::ExternalServerSummary>,
}

/// Server figures per request completed by the driver in the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSummary {
    pub syscalls_per_request_total: Spread,
    /// By syscall kind (the report name, e.g. `epoll_wait`); only kinds
    /// called at least once in some repetition.
    pub syscalls_per_request: BTreeMap<String, Spread>,
    pub eagain_per_request_total: Spread,
    /// By kind; only kinds that returned EAGAIN at least once.
    pub eagain_per_request: BTreeMap<String, Spread>,
    pub epoll_wait_calls_per_request: Spread,
    /// Events returned per `epoll_wait` call that returned.
    pub epoll_events_per_wakeup: Spread,
    pub payload_copy_bytes_in_per_request: Spread,
    pub payload_copy_bytes_out_per_request: Spread,
    /// In + out.
    pub payload_copy_bytes_per_request: Spread,
    pub server_cpu_us_per_request: Spread,
    pub server_cpu_user_us_per_request: Spread,
    pub server_cpu_system_us_per_request: Spread,
    /// Voluntary + involuntary.
    pub context_switches_per_request: Spread,
    pub voluntary_context_switches_per_request: Spread,
    pub involuntary_context_switches_per_request: Spread,
    /// io_uring operations per request (SQEs, CQEs by opcode); absent for
    /// epoll variants, which queue none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uring_ops: Option<super::uring_ops::UringOpsSummary>,
    /// `MSG_ZEROCOPY` sends, their completions and the share the kernel
    /// copied anyway; absent for variants that make no zerocopy sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zerocopy: Option<super::zerocopy::ZerocopySummary>,
    /// User buffers held and pool takes (`serve --buffers`); absent for
    /// variants without a ring buffer the policy applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffers: Option<super::buffers::BufferSummary>,
}

/// What a saturated driver means for one result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DriverBottleneck {
    /// The driver was saturated and the server was not: the driver limited
    /// the result.
    DriverOnly {
        driver_percent: f64,
        server_percent: f64,
    },
    /// Both sides were saturated (or the server's load is unknown): the
    /// result is what this pair reaches, a lower bound for the server.
    Both {
        driver_percent: f64,
        server_percent: Option<f64>,
    },
    /// Results written before utilisation was recorded: only the flag.
    Flagged,
}

impl DriverBottleneck {
    /// One sentence for reports.
    pub fn describe(&self) -> String {
        match self {
            DriverBottleneck::DriverOnly {
                driver_percent,
                server_percent,
            } => format!(
                "the driver was saturated (busy {driver_percent:.0}% of the window) while the server was busy {server_percent:.0}%: the driver, not the server, limited this result"
            ),
            DriverBottleneck::Both {
                driver_percent,
                server_percent: Some(server_percent),
            } => format!(
                "driver and server were both saturated (busy {driver_percent:.0}% and {server_percent:.0}% of the window): throughput is what this pair reaches, a lower bound for the server alone"
            ),
            DriverBottleneck::Both {
                driver_percent,
                server_percent: None,
            } => format!(
                "the driver was saturated (busy {driver_percent:.0}% of the window); the server's load is unknown, so the driver may have limited this result"
            ),
            DriverBottleneck::Flagged => {
                "the driver may have limited this result (recorded before driver utilisation was; `epoll-bench report --recompute` adds it)".to_string()
            }
        }
    }
}

impl Summary {
    /// Whether, and how, a saturated driver limited this result.
    pub fn driver_bottleneck(&self) -> Option<DriverBottleneck> {
        if !self.driver_bottleneck_warning {
            return None;
        }
        let Some(driver) = self.driver_cpu_utilization_percent else {
            return Some(DriverBottleneck::Flagged);
        };
        let server = self.server_cpu_utilization_percent.map(|s| s.median);
        Some(match server {
            Some(server) if server < DRIVER_SATURATED_PERCENT => DriverBottleneck::DriverOnly {
                driver_percent: driver.median,
                server_percent: server,
            },
            _ => DriverBottleneck::Both {
                driver_percent: driver.median,
                server_percent: server,
            },
        })
    }
}
