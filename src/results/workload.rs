//! What a case is: the workload description the driver replays and every
//! result records. Profile and trace parsing (`driver::profile`,
//! `driver::trace`) produce it; the load engine runs it.
//!
//! A profile file expands into one or more [`Case`]s (a size sweep gives
//! one case per size); the engine measures one case at a time against one
//! server variant.

use serde::{Deserialize, Serialize};

use crate::protocol::Protocol;

/// How request sizes are drawn. Sizes are payload bytes (the frame header
/// is not included). Draws come from a seeded RNG: same seed, same sizes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "snake_case")]
pub enum SizeDistribution {
    Fixed {
        bytes: u32,
    },
    Uniform {
        min_bytes: u32,
        max_bytes: u32,
    },
    /// Log-normal with the given median; `sigma` is the standard deviation
    /// of the underlying normal. Draws are clamped to `[1, max_bytes]`.
    LogNormal {
        median_bytes: u32,
        sigma: f64,
        max_bytes: u32,
    },
    /// `small_bytes` with probability `1 - large_fraction`, else `large_bytes`.
    Bimodal {
        small_bytes: u32,
        large_bytes: u32,
        large_fraction: f64,
    },
    /// Sizes come from the events of a trace ([`Shape::Trace`]); this only
    /// records their mean and largest, for reports and buffer sizing.
    FromTrace {
        mean_bytes: f64,
        max_bytes: u32,
    },
}

/// The traffic pattern of a case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum Shape {
    /// Closed loop: each connection sends one request and waits for its
    /// response before sending the next.
    PingPong,
    /// Closed loop with `depth` requests outstanding per connection.
    Pipelined { depth: u32 },
    /// Open loop: requests are sent at `rate_per_second` in total (spread
    /// evenly over connections) whether or not earlier ones were answered;
    /// latency is measured from the intended send time (wrk2-style
    /// coordinated-omission correction).
    ConstantRate { rate_per_second: f64 },
    /// Each connection streams requests back to back, keeping up to
    /// `window_bytes` of payload in flight.
    Bulk { window_bytes: u64 },
    /// Each connection connects, makes `requests_per_connection` ping-pong
    /// requests, closes, and starts over.
    Churn { requests_per_connection: u32 },
    /// `idle_connections` are opened and held without traffic beside the
    /// case's `connections` active ping-pong connections.
    IdleActive { idle_connections: u32 },
    /// Replays a trace file: each event is sent on its connection at its
    /// time offset divided by `speed`; latency from the intended time.
    Trace {
        path: std::path::PathBuf,
        speed: f64,
    },
}

/// One measurable unit: a shape, a size distribution, a protocol and a
/// connection count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Name of the profile it came from, e.g. `pingpong-64b-1conn`.
    pub profile: String,
    /// Unique within a run, e.g. `size-sweep/4096`.
    pub label: String,
    pub protocol: Protocol,
    /// Active connections.
    pub connections: u32,
    pub shape: Shape,
    pub sizes: SizeDistribution,
    /// Seed for sizes and payload bytes.
    pub seed: u64,
    /// Message size of this case when it is part of a size sweep (for charts
    /// of throughput against size).
    pub sweep_size_bytes: Option<u32>,
    /// How the driver's connections receive (slow consumers); absent from
    /// results files when every option is unset.
    #[serde(default, skip_serializing_if = "ClientReceive::is_unset")]
    pub client: ClientReceive,
}

/// How every driver connection of a case receives its responses. Unset,
/// the driver reads as fast as it can into the kernel's default buffer; set,
/// it plays a slow consumer whose backlog fills the server's send buffer,
/// so the server's writes block (`EAGAIN`) and a level-triggered loop must
/// re-arm `EPOLLOUT`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientReceive {
    /// `SO_RCVBUF` set on each socket before it connects (the kernel
    /// doubles it for its own bookkeeping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_buffer_bytes: Option<u32>,
    /// The most response bytes (headers included) each connection reads
    /// per second, enforced by a token bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_rate_bytes_per_second: Option<u64>,
}

impl ClientReceive {
    pub fn is_unset(&self) -> bool {
        *self == ClientReceive::default()
    }
}
