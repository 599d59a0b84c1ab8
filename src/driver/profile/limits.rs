//! Bounds on profile values, and the defaults of optional fields.

use crate::results::workload::{Case, Shape};
use crate::server::Variant;

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
pub use crate::results::scale_plan::FD_HEADROOM;

/// Why a server of `variant` cannot hold every connection of `case` under
/// the hard RLIMIT_NOFILE `hard_limit` (the profile check counted one
/// descriptor per connection; splice servers hold three).
pub fn server_descriptor_shortfall(
    case: &Case,
    variant: Variant,
    hard_limit: u64,
) -> Option<String> {
    let idle = match case.shape {
        Shape::IdleActive { idle_connections } => idle_connections,
        _ => 0,
    };
    let connections = u64::from(case.connections) + u64::from(idle);
    let per_connection = variant.copy.descriptors_per_connection();
    let needed = connections * per_connection + FD_HEADROOM;
    (needed > hard_limit).then(|| {
        format!(
            "not run: the {variant} server holds {per_connection} file descriptors per \
             connection, so {connections} connections need {needed} (with {FD_HEADROOM} spare), above this \
             machine's hard RLIMIT_NOFILE of {hard_limit}; at most {} connections fit",
            hard_limit.saturating_sub(FD_HEADROOM) / per_connection
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::workload::SizeDistribution;

    fn idle_case(idle_connections: u32) -> Case {
        Case {
            profile: "idle-scale".into(),
            label: format!("idle-scale/{idle_connections}idle"),
            protocol: crate::protocol::Protocol::Frame,
            connections: 16,
            shape: Shape::IdleActive { idle_connections },
            sizes: SizeDistribution::Fixed { bytes: 64 },
            seed: 1,
            sweep_size_bytes: None,
            client: Default::default(),
        }
    }

    #[test]
    fn splice_servers_need_three_descriptors_per_connection() {
        let splice: Variant = "lt-splice".parse().unwrap();
        let writev: Variant = "lt-writev".parse().unwrap();
        // 10,016 connections: one descriptor each fits 20,000, three do not.
        assert_eq!(
            server_descriptor_shortfall(&idle_case(10_000), writev, 20_000),
            None
        );
        let reason =
            server_descriptor_shortfall(&idle_case(10_000), splice, 20_000).expect("refused");
        assert!(
            reason.contains("3 file descriptors per connection")
                && reason.contains("10016 connections need 30112")
                && reason.contains("at most 6645 connections fit"),
            "{reason}"
        );
        assert_eq!(
            server_descriptor_shortfall(&idle_case(1_000), splice, 20_000),
            None
        );
        // io_uring's splice holds the same pipe per connection.
        let uring_splice: Variant = "uring-splice".parse().unwrap();
        let reason =
            server_descriptor_shortfall(&idle_case(10_000), uring_splice, 20_000).expect("refused");
        assert!(
            reason.contains("the uring-splice server holds 3 file descriptors per connection"),
            "{reason}"
        );
        let uring_writev: Variant = "uring-writev".parse().unwrap();
        assert_eq!(
            server_descriptor_shortfall(&idle_case(10_000), uring_writev, 20_000),
            None
        );
    }
}
