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
use crate::results::scale_plan::{ServerLimits, server_shortfall};
use crate::results::thread_capacity::{self, ThreadDemand, ThreadLimits};
use crate::server::variant::Backend;

/// Why `processes` server processes of `variant` cannot hold every
/// connection of `case` under the hard RLIMIT_NOFILE `hard_limit` (the
/// profile check counted one descriptor per connection; splice servers hold
/// three), with the process count that would.
pub fn server_descriptor_shortfall(
    case: &Case,
    variant: Variant,
    hard_limit: u64,
    processes: u64,
) -> Option<String> {
    let connections = held_connections(case);
    let server = ServerLimits {
        processes: processes.max(1),
        nofile_hard: hard_limit,
        fds_per_connection: variant.copy.descriptors_per_connection(),
    };
    server_shortfall(&server, connections)
        .map(|why| format!("not run: the {variant} server: {why}"))
}

/// Connections a server holds at once in `case`: the active ones and,
/// beside them, the idle ones.
fn held_connections(case: &Case) -> u64 {
    let idle = match case.shape {
        Shape::IdleActive { idle_connections } => idle_connections,
        _ => 0,
    };
    u64::from(case.connections) + u64::from(idle)
}

/// Why `processes` server processes of `variant`, each with
/// `serving_threads` serving indexes, cannot start a thread for every
/// connection of `case` under `limits`: `None` for a variant that does not
/// start a thread per connection, or when they fit.
pub fn server_thread_shortfall(
    case: &Case,
    variant: Variant,
    processes: u64,
    serving_threads: u64,
    limits: &ThreadLimits,
) -> Option<String> {
    if variant.backend != Backend::ThreadPerConnection {
        return None;
    }
    let demand = ThreadDemand {
        connections: held_connections(case),
        processes: processes.max(1),
        serving_threads: serving_threads.max(1),
    };
    thread_capacity::describe(&thread_capacity::thread_shortfalls(&demand, limits)).map(|why| {
        format!(
            "not run: the {variant} server starts a thread per connection, {} threads in all: {why}",
            demand.total_threads()
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
            server_descriptor_shortfall(&idle_case(10_000), writev, 20_000, 1),
            None
        );
        let reason =
            server_descriptor_shortfall(&idle_case(10_000), splice, 20_000, 1).expect("refused");
        assert!(
            reason.contains("the lt-splice server: 1 server process(es) at 3 file descriptors per connection hold at most 6645")
                && reason.contains("10016 connections do not fit: 2 server processes (`run --server-processes 2`"),
            "{reason}"
        );
        assert_eq!(
            server_descriptor_shortfall(&idle_case(1_000), splice, 20_000, 1),
            None
        );
        // io_uring's splice holds the same pipe per connection.
        let uring_splice: Variant = "uring-splice".parse().unwrap();
        let reason = server_descriptor_shortfall(&idle_case(10_000), uring_splice, 20_000, 1)
            .expect("refused");
        assert!(
            reason.contains("the uring-splice server: 1 server process(es) at 3 file descriptors"),
            "{reason}"
        );
        let uring_writev: Variant = "uring-writev".parse().unwrap();
        assert_eq!(
            server_descriptor_shortfall(&idle_case(10_000), uring_writev, 20_000, 1),
            None
        );
    }

    #[test]
    fn server_processes_lift_the_descriptor_limit_with_a_margin() {
        let writev: Variant = "et-writev".parse().unwrap();
        // 100,000 connections: five processes' 99,680 descriptors would
        // not hold them, six hold them only at 90% filled.
        let reason =
            server_descriptor_shortfall(&idle_case(99_984), writev, 20_000, 5).expect("refused");
        assert!(
            reason.contains(
                "5 server process(es) at 1 file descriptors per connection hold at most 89712"
            ) && reason.contains("filled to 90%")
                && reason.contains("`run --server-processes 6`"),
            "{reason}"
        );
        assert_eq!(
            server_descriptor_shortfall(&idle_case(99_984), writev, 20_000, 6),
            None
        );
        let splice: Variant = "et-splice".parse().unwrap();
        let reason =
            server_descriptor_shortfall(&idle_case(99_984), splice, 20_000, 6).expect("refused");
        assert!(reason.contains("`run --server-processes 17`"), "{reason}");
    }

    #[test]
    fn only_thread_per_connection_servers_are_held_to_the_thread_limits() {
        let limits = ThreadLimits {
            pid_max: 32_768,
            threads_max: 192_724,
            threads_running: 128,
            max_map_count: 65_530,
            nproc: None,
        };
        let tpc: Variant = "tpc-rw".parse().unwrap();
        let writev: Variant = "et-writev".parse().unwrap();
        // 99,984 idle + 16 active: six processes hold the descriptors.
        let case = idle_case(99_984);
        assert_eq!(server_thread_shortfall(&case, writev, 6, 1, &limits), None);
        let reason = server_thread_shortfall(&case, tpc, 6, 1, &limits).expect("refused");
        assert!(
            reason.starts_with(
                "not run: the tpc-rw server starts a thread per connection, 100096 threads in \
                 all: kernel.pid_max is 32768"
            ) && reason.contains("`sysctl -w kernel.pid_max=4194304`")
                && reason.contains("`run --server-processes 7`"),
            "{reason}"
        );
        assert_eq!(
            server_thread_shortfall(&idle_case(9_984), tpc, 1, 1, &limits),
            None
        );
    }
}
