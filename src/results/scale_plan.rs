//! How many processes and source addresses N connections need on this
//! machine, decided before any socket is opened.
//!
//! Two limits shape it. Every connection is a descriptor, and one process
//! holds at most its hard RLIMIT_NOFILE of them (the soft limit is raised to
//! the hard one; raising the hard one needs CAP_SYS_RESOURCE), so idle
//! connections beyond one process are held by worker processes. And every
//! connection from one source address to one server address:port takes one
//! ephemeral port (net.ipv4.ip_local_port_range), so connections are spread
//! over loopback sources 127.0.0.1, 127.0.0.2, ... The active set always
//! stays in the main process, where latency and verification are measured.

use std::fmt;
use std::net::Ipv4Addr;

/// File descriptors a driver or server process needs beside one per
/// connection (stdio, epoll and eventfd per thread, listener, pipes). Here,
/// below the driver and the doctor, so both plan with the same figure.
pub const FD_HEADROOM: u64 = 64;

/// Loopback sources used: 127.0.0.1 to 127.0.0.254. With the default port
/// range (28,232 ports) that is over seven million connections, far past
/// what memory allows.
pub const MAX_SOURCE_ADDRESSES: u64 = 254;
/// Worker processes one run may start: each costs a few MiB, and with a
/// hard limit as low as a few hundred descriptors the count would
/// otherwise grow without bound.
pub const MAX_WORKER_PROCESSES: u64 = 512;
/// The share of each source's port range a plan fills. `connect()` looks
/// for a free port from a hashed offset, stepping by two (it leaves odd
/// ports to `bind()`), so once about half the range is taken every connect
/// scans thousands of used ports: measured on this kernel from one source,
/// ~45,000 connects/s up to 12,000 ports, ~1,100/s at 15,000-18,000 of its
/// 28,232. Filling 40% keeps the ramp in the fast part; sources are cheap.
pub const PORT_FILL_PERCENT: u64 = 40;

/// Connections a plan opens from one source address, given the range's
/// size (`high - low + 1` of net.ipv4.ip_local_port_range).
pub fn ports_per_source(local_ports: u64) -> u64 {
    (local_ports.saturating_mul(PORT_FILL_PERCENT) / 100).max(1)
}

/// What the plan is computed from: the run's connections and the machine's
/// limits as read (or, in tests, as given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleInputs {
    /// Connections that send (ping-pong), held by the main process.
    pub active_connections: u64,
    /// Connections opened and held without traffic.
    pub idle_connections: u64,
    /// Hard RLIMIT_NOFILE of each driver process.
    pub nofile_hard: u64,
    /// `high - low + 1` of net.ipv4.ip_local_port_range.
    pub local_ports: u64,
    /// The server, when this tool starts it (unknown for a remote target).
    pub server: Option<ServerLimits>,
}

/// What one server process can hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    pub processes: u64,
    pub nofile_hard: u64,
    /// Descriptors per connection (3 for splice variants: socket and pipe).
    pub fds_per_connection: u64,
}

/// One worker process's share: connections from each of its sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerShare {
    pub sources: Vec<(Ipv4Addr, u64)>,
}

impl WorkerShare {
    pub fn connections(&self) -> u64 {
        self.sources.iter().map(|(_, n)| n).sum()
    }
}

/// The decided layout of a run's connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePlan {
    pub active_connections: u64,
    /// Idle connections the main process holds beside the active ones
    /// (all of them when they fit, none otherwise).
    pub idle_in_main: u64,
    /// Idle connections per worker process, in start order.
    pub workers: Vec<WorkerShare>,
    /// Connections one process may hold (hard limit minus headroom).
    pub per_process_connections: u64,
    /// Usable ports per source address.
    pub ports_per_source: u64,
    /// Distinct source addresses over all processes.
    pub source_addresses: u64,
    /// Why the server side cannot hold them all, when it cannot (a run may
    /// still attempt the count and report where it stopped).
    pub server_shortfall: Option<String>,
}

/// Why no layout fits: the limit, its value, and what would raise it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScaleRefusal {
    ActiveTooMany {
        active: u64,
        needed: u64,
        nofile_hard: u64,
    },
    TooManySources {
        connections: u64,
        ports_per_source: u64,
        needed: u64,
    },
    TooManyWorkers {
        idle: u64,
        per_process: u64,
        needed: u64,
    },
}

impl fmt::Display for ScaleRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaleRefusal::ActiveTooMany {
                active,
                needed,
                nofile_hard,
            } => write!(
                f,
                "{active} active connections stay in the driver's main process (where latency \
                 and every byte are checked) and need {needed} file descriptors (+{FD_HEADROOM} \
                 spare), above its hard RLIMIT_NOFILE of {nofile_hard}; at most {} active \
                 connections fit: use fewer active connections, or raise the hard limit \
                 (as root: `ulimit -Hn`, /etc/security/limits.conf)",
                nofile_hard.saturating_sub(FD_HEADROOM)
            ),
            ScaleRefusal::TooManySources {
                connections,
                ports_per_source,
                needed,
            } => write!(
                f,
                "{connections} connections at {ports_per_source} local ports per source \
                 address need {needed} loopback source addresses, above the \
                 {MAX_SOURCE_ADDRESSES} this driver uses (127.0.0.1-127.0.0.254): widen \
                 net.ipv4.ip_local_port_range (e.g. `sysctl -w \
                 net.ipv4.ip_local_port_range=\"1024 65535\"`)"
            ),
            ScaleRefusal::TooManyWorkers {
                idle,
                per_process,
                needed,
            } => write!(
                f,
                "{idle} idle connections at {per_process} per process (the hard RLIMIT_NOFILE \
                 less {FD_HEADROOM} spare) need {needed} worker processes, above the \
                 {MAX_WORKER_PROCESSES} a run may start: raise the hard RLIMIT_NOFILE (as \
                 root: `ulimit -Hn`, /etc/security/limits.conf; fs.nr_open bounds it)"
            ),
        }
    }
}

impl std::error::Error for ScaleRefusal {}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
pub fn parse_mem_available_bytes(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib << 10)
}

/// Memory a ramp leaves the rest of the machine: a worker stops opening
/// connections when `MemAvailable` falls below it, so that a million-
/// connection attempt ends with its count and reason instead of the OOM
/// killer choosing a victim (perhaps the server being measured).
pub const MEMORY_RESERVE_BYTES: u64 = 1 << 30;

/// `(low, high)` of net.ipv4.ip_local_port_range's text; `None` unless it
/// is two port numbers in order.
pub fn parse_port_range(text: &str) -> Option<(u64, u64)> {
    let bounds: Vec<u64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match bounds[..] {
        [low, high] if high >= low => Some((low, high)),
        _ => None,
    }
}

/// Source address number `index` (0-based): 127.0.0.1 + index.
pub fn source_address(index: u64) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, (1 + index) as u8)
}

/// Lays out `inputs`' connections, or says which limit refuses them.
pub fn plan(inputs: &ScaleInputs) -> Result<ScalePlan, ScaleRefusal> {
    let per_process = inputs.nofile_hard.saturating_sub(FD_HEADROOM);
    let active = inputs.active_connections;
    let idle = inputs.idle_connections;
    if active > per_process {
        return Err(ScaleRefusal::ActiveTooMany {
            active,
            needed: active + FD_HEADROOM,
            nofile_hard: inputs.nofile_hard,
        });
    }
    let total = active + idle;
    let ports_per_source = ports_per_source(inputs.local_ports);
    let source_addresses = total.div_ceil(ports_per_source).max(1);
    if source_addresses > MAX_SOURCE_ADDRESSES {
        return Err(ScaleRefusal::TooManySources {
            connections: total,
            ports_per_source,
            needed: source_addresses,
        });
    }
    let idle_in_main = if total <= per_process && source_addresses == 1 {
        idle
    } else {
        0
    };
    let in_workers = idle - idle_in_main;
    let worker_count = in_workers.div_ceil(per_process.max(1));
    if worker_count > MAX_WORKER_PROCESSES || (in_workers > 0 && per_process == 0) {
        return Err(ScaleRefusal::TooManyWorkers {
            idle: in_workers,
            per_process,
            needed: worker_count,
        });
    }
    Ok(ScalePlan {
        active_connections: active,
        idle_in_main,
        workers: shares(active, in_workers, per_process, ports_per_source),
        per_process_connections: per_process,
        ports_per_source,
        source_addresses,
        server_shortfall: inputs
            .server
            .as_ref()
            .and_then(|server| server_shortfall(server, total)),
    })
}

/// Idle connections `first..` of the run's numbering (the active ones,
/// unbound, take the first ports of 127.0.0.1) cut into workers of at most
/// `per_process`, each connection's source by its number.
fn shares(active: u64, idle: u64, per_process: u64, ports_per_source: u64) -> Vec<WorkerShare> {
    let mut workers = Vec::new();
    let mut next = active;
    let end = active + idle;
    while next < end {
        let worker_end = (next + per_process).min(end);
        let mut sources = Vec::new();
        while next < worker_end {
            let source = next / ports_per_source;
            let source_end = ((source + 1) * ports_per_source).min(worker_end);
            sources.push((source_address(source), source_end - next));
            next = source_end;
        }
        workers.push(WorkerShare { sources });
    }
    workers
}

/// The share of a multi-process server's capacity a plan fills: the
/// kernel spreads connections over `SO_REUSEPORT` listeners by a hash of
/// their addresses, not evenly, so one process would reach its limit (and
/// stop accepting) before the others if the plan filled them all.
pub const REUSEPORT_FILL_PERCENT: u64 = 90;

/// Connections `server` can be relied on to hold: every process's share of
/// the hard limit, less the spread margin when there are several.
fn server_capacity(server: &ServerLimits, processes: u64) -> u64 {
    let per_process =
        server.nofile_hard.saturating_sub(FD_HEADROOM) / server.fds_per_connection.max(1);
    let capacity = per_process * processes;
    if processes > 1 {
        capacity * REUSEPORT_FILL_PERCENT / 100
    } else {
        capacity
    }
}

/// The fewest server processes of `server`'s kind that hold `total`
/// connections under its descriptor limit, if any up to
/// [`MAX_WORKER_PROCESSES`] do.
pub fn server_processes_needed(server: &ServerLimits, total: u64) -> Option<u64> {
    (1..=MAX_WORKER_PROCESSES).find(|&p| server_capacity(server, p) >= total)
}

/// Why `server` cannot hold `total` connections, naming its limit and the
/// `--server-processes` count that would: `None` when it can.
pub fn server_shortfall(server: &ServerLimits, total: u64) -> Option<String> {
    let capacity = server_capacity(server, server.processes);
    (total > capacity).then(|| {
        let needed = server_processes_needed(server, total)
            .map(|p| format!("{p} server processes (`run --server-processes {p}`, SO_REUSEPORT) would hold them"))
            .unwrap_or_else(|| format!("not even {MAX_WORKER_PROCESSES} server processes would hold them"));
        format!(
            "{} server process(es) at {} file descriptors per connection hold at most {capacity} \
             connections under the hard RLIMIT_NOFILE of {} (less {FD_HEADROOM} spare{}); {total} \
             connections do not fit: {needed}",
            server.processes,
            server.fds_per_connection,
            server.nofile_hard,
            if server.processes > 1 {
                format!(", filled to {REUSEPORT_FILL_PERCENT}% as the kernel's spread is uneven")
            } else {
                String::new()
            },
        )
    })
}

impl ScalePlan {
    pub fn total_connections(&self) -> u64 {
        self.active_connections + self.idle_in_main + self.idle_in_workers()
    }

    pub fn idle_in_workers(&self) -> u64 {
        self.workers.iter().map(WorkerShare::connections).sum()
    }

    /// The plan in one line, said before the ramp starts.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "{} connections ({} active): main driver process holds {}, {} worker process(es) \
             hold {} idle at most {} each; {} source address(es) at {} ports each",
            self.total_connections(),
            self.active_connections,
            self.active_connections + self.idle_in_main,
            self.workers.len(),
            self.idle_in_workers(),
            self.per_process_connections,
            self.source_addresses,
            self.ports_per_source
        );
        if let Some(shortfall) = &self.server_shortfall {
            line.push_str("; server: ");
            line.push_str(shortfall);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(active: u64, idle: u64) -> ScaleInputs {
        ScaleInputs {
            active_connections: active,
            idle_connections: idle,
            nofile_hard: 20_000,
            local_ports: 28_232,
            server: None,
        }
    }

    #[test]
    fn connections_that_fit_one_process_stay_in_it() {
        let plan = plan(&inputs(16, 10_000)).unwrap();
        assert_eq!(plan.idle_in_main, 10_000);
        assert!(plan.workers.is_empty());
        assert_eq!(plan.source_addresses, 1);
    }

    #[test]
    fn a_hundred_thousand_need_five_workers_and_nine_sources() {
        let plan = plan(&inputs(1_000, 99_000)).unwrap();
        // 19,936 per process: 99,000 idle need five full workers and one more.
        assert_eq!(plan.per_process_connections, 19_936);
        assert_eq!(plan.workers.len(), 5);
        assert_eq!(
            plan.workers
                .iter()
                .map(WorkerShare::connections)
                .collect::<Vec<_>>(),
            vec![19_936, 19_936, 19_936, 19_936, 19_256]
        );
        // 40% of 28,232 ports per source: 100,000 connections need nine.
        assert_eq!(plan.ports_per_source, 11_292);
        assert_eq!(plan.source_addresses, 9);
        // The first worker continues 127.0.0.1 after the 1,000 active ports.
        assert_eq!(
            plan.workers[0].sources,
            vec![
                (Ipv4Addr::new(127, 0, 0, 1), 11_292 - 1_000),
                (Ipv4Addr::new(127, 0, 0, 2), 20_936 - 11_292)
            ]
        );
        let last = plan.workers.last().unwrap();
        assert_eq!(last.sources.last().unwrap().0, Ipv4Addr::new(127, 0, 0, 9));
        assert_eq!(plan.total_connections(), 100_000);
        assert!(plan.describe().starts_with(
            "100000 connections (1000 active): main driver process holds 1000, 5 worker \
             process(es) hold 99000 idle at most 19936 each; 9 source address(es)"
        ));
    }

    #[test]
    fn a_million_needs_fifty_one_workers_and_eighty_nine_sources() {
        let plan = plan(&inputs(1_000, 999_000)).unwrap();
        assert_eq!(plan.workers.len(), 51);
        assert_eq!(plan.source_addresses, 89);
        assert_eq!(plan.idle_in_workers(), 999_000);
    }

    #[test]
    fn a_lowered_limit_spreads_three_thousand_idle_over_workers() {
        let plan = plan(&ScaleInputs {
            nofile_hard: 1_064,
            ..inputs(8, 3_000)
        })
        .unwrap();
        assert_eq!(plan.workers.len(), 3);
        assert_eq!(plan.idle_in_workers(), 3_000);
    }

    #[test]
    fn refusals_name_the_limit_and_the_fix() {
        let active = plan(&ScaleInputs {
            nofile_hard: 1_000,
            ..inputs(2_000, 0)
        })
        .unwrap_err()
        .to_string();
        assert!(
            active.starts_with(
                "2000 active connections stay in the driver's main process (where latency and \
                 every byte are checked) and need 2064 file descriptors"
            ) && active.contains("hard RLIMIT_NOFILE of 1000; at most 936 active"),
            "{active}"
        );
        let sources = plan(&ScaleInputs {
            local_ports: 1_032,
            ..inputs(1_000, 999_000)
        })
        .unwrap_err()
        .to_string();
        assert!(
            sources.starts_with(
                "1000000 connections at 412 local ports per source address need 2428 loopback \
                 source addresses, above the 254"
            ) && sources.contains("ip_local_port_range"),
            "{sources}"
        );
        let workers = plan(&ScaleInputs {
            nofile_hard: 100,
            ..inputs(10, 999_000)
        })
        .unwrap_err()
        .to_string();
        assert!(
            workers.starts_with(
                "999000 idle connections at 36 per process (the hard RLIMIT_NOFILE less 64 \
                 spare) need 27750 worker processes, above the 512"
            ),
            "{workers}"
        );
    }

    #[test]
    fn the_server_side_says_what_lifts_its_limit() {
        let server = ServerLimits {
            processes: 1,
            nofile_hard: 20_000,
            fds_per_connection: 1,
        };
        let plan = plan(&ScaleInputs {
            server: Some(server.clone()),
            ..inputs(1_000, 99_000)
        })
        .unwrap();
        let shortfall = plan.server_shortfall.unwrap();
        assert!(
            shortfall.starts_with(
                "1 server process(es) at 1 file descriptors per connection hold at most 19936"
            ) && shortfall.contains(
                "100000 connections do not fit: 6 server processes (`run --server-processes 6`"
            ),
            "{shortfall}"
        );
        let six = ScaleInputs {
            server: Some(ServerLimits {
                processes: 6,
                ..server
            }),
            ..inputs(1_000, 99_000)
        };
        assert_eq!(super::plan(&six).unwrap().server_shortfall, None);
    }

    #[test]
    fn mem_available_is_read_in_bytes_or_not_at_all() {
        let meminfo = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(parse_mem_available_bytes(meminfo), Some(2048 << 10));
        assert_eq!(parse_mem_available_bytes("MemTotal: 5 kB\n"), None);
        assert_eq!(parse_mem_available_bytes("MemAvailable: lots\n"), None);
    }
}
