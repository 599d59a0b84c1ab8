//! Bounds on profile values, and the defaults of optional fields.

pub const MAX_ACTIVE_CONNECTIONS: u32 = 65_536;
pub const MAX_IDLE_CONNECTIONS: u32 = 1_000_000;
pub const MAX_PIPELINE_DEPTH: u32 = 4096;
pub const MAX_RATE_PER_SECOND: f64 = 10_000_000.0;
pub const MAX_WINDOW_BYTES: u64 = 1 << 30;
pub const MAX_REQUESTS_PER_CONNECTION: u32 = 1_000_000;
pub const MAX_TRACE_SPEED: f64 = 1000.0;
/// Longest list in `connections` or `sizes.sweep_bytes`.
pub const MAX_SWEEP_POINTS: usize = 64;
pub const DEFAULT_SEED: u64 = 1;
