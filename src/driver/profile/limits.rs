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
/// `client.receive_buffer_bytes`: the kernel rounds anything lower up to
/// its own minimum, and caps anything higher at `net.core.rmem_max`.
pub const MIN_RECEIVE_BUFFER_BYTES: u32 = 1024;
pub const MAX_RECEIVE_BUFFER_BYTES: u32 = 1 << 30;
/// `client.read_rate_bytes_per_second`: below 1 kB/s a single 64 KiB
/// response would take over a minute, longer than any drain waits.
pub const MIN_READ_RATE_BYTES_PER_SECOND: u64 = 1000;
pub const MAX_READ_RATE_BYTES_PER_SECOND: u64 = 100_000_000_000;
/// File descriptors a driver or server process needs beside one per
/// connection (stdio, epoll and eventfd per thread, listener, pipes).
pub const FD_HEADROOM: u64 = 64;
