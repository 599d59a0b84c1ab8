//! Whether this machine lets a thread-per-connection server start one
//! thread per connection, decided before it starts: past any of these
//! limits a thread cannot be created, and the server stops accepting (or,
//! past the map count, aborts), so a case would measure the limit.
//!
//! Four limits count threads. System-wide, every thread takes a pid below
//! kernel.pid_max and a slot of kernel.threads-max. Per user,
//! RLIMIT_NPROC counts every thread of the user (the kernel exempts root of
//! the initial user namespace and holders of CAP_SYS_ADMIN or
//! CAP_SYS_RESOURCE). Per process, vm.max_map_count bounds the memory
//! mappings, and each thread holds [`MAPS_PER_THREAD`] of them.

pub mod machine;

use std::fmt;

use crate::results::scale_plan::REUSEPORT_FILL_PERCENT;

/// Mappings one connection thread adds, counted in /proc/PID/maps of a
/// tpc-rw server holding 2,000 idle connections (4.01 per thread): its
/// stack and guard page (glibc), and the signal stack and guard page Rust's
/// runtime maps for every thread to report stack overflows. Past the map
/// count the signal stack's mmap fails inside the new thread, and the
/// runtime aborts the whole process.
pub const MAPS_PER_THREAD: u64 = 4;
/// Mappings of a server process besides its connection threads: the
/// binary, libraries and heap (about 50 at start), and malloc's arenas as
/// threads multiply (two mappings each, up to eight per CPU).
pub const MAP_HEADROOM: u64 = 1024;
/// Pids the kernel never hands out again after wrapping (RESERVED_PIDS).
pub const RESERVED_PIDS: u64 = 300;
/// Threads other than the server's that start during a case: the driver's
/// threads and its idle-connection holders, and whatever else runs.
pub const OTHER_THREADS_HEADROOM: u64 = 512;
/// Most server processes a plan proposes (`serve --processes` accepts 64).
pub const MAX_SERVER_PROCESSES: u64 = 64;
/// The pid_max fix proposed: the kernel's ceiling on 64-bit machines.
pub const PID_MAX_LIMIT: u64 = 4_194_304;

/// This machine's thread limits, as read (or, in tests, as given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadLimits {
    /// kernel.pid_max.
    pub pid_max: u64,
    /// kernel.threads-max.
    pub threads_max: u64,
    /// Threads of the whole system now (/proc/loadavg).
    pub threads_running: u64,
    /// vm.max_map_count, per process.
    pub max_map_count: u64,
    /// RLIMIT_NPROC as it applies to the servers this process starts;
    /// `None` when the kernel does not enforce it for this user.
    pub nproc: Option<NprocLimit>,
}

/// RLIMIT_NPROC and what already counts against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NprocLimit {
    /// The soft limit, which thread creation checks (a child inherits it).
    pub soft: u64,
    pub hard: u64,
    /// Threads of this user now, over all its processes.
    pub user_threads_running: u64,
}

/// The threads a thread-per-connection server needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadDemand {
    /// Connections the server holds at once (active and idle).
    pub connections: u64,
    /// `serve --processes`.
    pub processes: u64,
    /// `serve --threads`: serving indexes per process.
    pub serving_threads: u64,
}

impl ThreadDemand {
    /// Threads of one process besides its connection threads: main, stdin
    /// and control threads, a controller and an acceptor per serving index,
    /// and in the first process a reader per worker.
    pub fn own_threads_per_process(&self) -> u64 {
        8 + 2 * self.serving_threads + self.processes
    }

    /// Every thread of every process of the server.
    pub fn total_threads(&self) -> u64 {
        self.connections + self.processes.max(1) * self.own_threads_per_process()
    }
}

/// One limit the server's threads do not fit in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThreadShortfall {
    /// kernel.pid_max: pids left for the server's threads.
    PidMax {
        pid_max: u64,
        free: u64,
        needed: u64,
    },
    ThreadsMax {
        threads_max: u64,
        free: u64,
        needed: u64,
    },
    Nproc {
        soft: u64,
        hard: u64,
        free: u64,
        needed: u64,
    },
    /// vm.max_map_count caps each process's threads.
    MapCount {
        max_map_count: u64,
        processes: u64,
        per_process_threads: u64,
        capacity: u64,
        connections: u64,
        /// The `--server-processes` count that would hold them, if any.
        processes_needed: Option<u64>,
        /// The vm.max_map_count at which `processes` would hold them.
        map_count_needed: u64,
    },
}

impl ThreadShortfall {
    /// What lifts this limit: the command, or the run flag.
    pub fn fix(&self) -> String {
        match self {
            ThreadShortfall::PidMax { .. } => {
                format!("`sysctl -w kernel.pid_max={PID_MAX_LIMIT}`")
            }
            ThreadShortfall::ThreadsMax {
                threads_max,
                free,
                needed,
            } => format!(
                "`sysctl -w kernel.threads-max={}`",
                threads_max.saturating_sub(*free) + needed
            ),
            ThreadShortfall::Nproc {
                soft, free, needed, ..
            } => format!(
                "raise it (`ulimit -u {}` in the shell that runs epoll-bench, within the hard \
                 limit; above it as root, /etc/security/limits.conf), or run as root, whom the \
                 kernel exempts",
                soft.saturating_sub(*free) + needed
            ),
            ThreadShortfall::MapCount {
                processes_needed,
                map_count_needed,
                ..
            } => {
                let processes = processes_needed
                    .map(|p| format!("`run --server-processes {p}`, or "))
                    .unwrap_or_default();
                format!("{processes}`sysctl -w vm.max_map_count={map_count_needed}`")
            }
        }
    }
}

impl fmt::Display for ThreadShortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadShortfall::PidMax {
                pid_max,
                free,
                needed,
            } => write!(
                f,
                "kernel.pid_max is {pid_max}: every thread takes a pid, and {free} are free \
                 (less {RESERVED_PIDS} reserved, the threads running and {OTHER_THREADS_HEADROOM} \
                 spare), but the server needs {needed} threads"
            ),
            ThreadShortfall::ThreadsMax {
                threads_max,
                free,
                needed,
            } => write!(
                f,
                "kernel.threads-max is {threads_max}: {free} threads are free (less the threads \
                 running and {OTHER_THREADS_HEADROOM} spare), but the server needs {needed}"
            ),
            ThreadShortfall::Nproc {
                soft,
                hard,
                free,
                needed,
            } => write!(
                f,
                "RLIMIT_NPROC is {soft} (hard {hard}) threads for this user, all its processes \
                 together: {free} are free (less {OTHER_THREADS_HEADROOM} spare), but the \
                 server needs {needed}"
            ),
            ThreadShortfall::MapCount {
                max_map_count,
                processes,
                per_process_threads,
                capacity,
                connections,
                ..
            } => write!(
                f,
                "vm.max_map_count is {max_map_count} mappings per process and each thread holds \
                 {MAPS_PER_THREAD} (stack, signal stack and their guard pages), so one server \
                 process starts at most {per_process_threads} connection threads (past that the \
                 runtime aborts the process); {processes} process(es) hold at most {capacity}{}, \
                 not {connections}",
                if *processes > 1 {
                    format!(
                        " (filled to {REUSEPORT_FILL_PERCENT}% as SO_REUSEPORT's spread is uneven)"
                    )
                } else {
                    String::new()
                }
            ),
        }?;
        write!(f, ": {}", self.fix())
    }
}

/// Connection threads one process can start under `max_map_count`.
pub fn per_process_threads(max_map_count: u64, demand: &ThreadDemand) -> u64 {
    (max_map_count.saturating_sub(MAP_HEADROOM) / MAPS_PER_THREAD)
        .saturating_sub(demand.own_threads_per_process())
}

/// Connections `processes` processes can be relied on to hold, each
/// starting at most `per_process` threads.
fn map_capacity(per_process: u64, processes: u64) -> u64 {
    let capacity = per_process * processes;
    if processes > 1 {
        capacity * REUSEPORT_FILL_PERCENT / 100
    } else {
        capacity
    }
}

/// Every limit `demand` does not fit in, in the order above; empty when
/// the server can start all its threads.
pub fn thread_shortfalls(demand: &ThreadDemand, limits: &ThreadLimits) -> Vec<ThreadShortfall> {
    let mut out = Vec::new();
    let needed = demand.total_threads();
    let busy = limits.threads_running + OTHER_THREADS_HEADROOM;
    let pids_free = limits
        .pid_max
        .saturating_sub(RESERVED_PIDS)
        .saturating_sub(busy);
    if needed > pids_free {
        out.push(ThreadShortfall::PidMax {
            pid_max: limits.pid_max,
            free: pids_free,
            needed,
        });
    }
    let threads_free = limits.threads_max.saturating_sub(busy);
    if needed > threads_free {
        out.push(ThreadShortfall::ThreadsMax {
            threads_max: limits.threads_max,
            free: threads_free,
            needed,
        });
    }
    if let Some(nproc) = &limits.nproc {
        let free = nproc
            .soft
            .saturating_sub(nproc.user_threads_running + OTHER_THREADS_HEADROOM);
        if needed > free {
            out.push(ThreadShortfall::Nproc {
                soft: nproc.soft,
                hard: nproc.hard,
                free,
                needed,
            });
        }
    }
    let processes = demand.processes.max(1);
    let per_process = per_process_threads(limits.max_map_count, demand);
    let capacity = map_capacity(per_process, processes);
    if demand.connections > capacity {
        let processes_needed = (processes..=MAX_SERVER_PROCESSES).find(|&p| {
            let with_p = ThreadDemand {
                processes: p,
                ..demand.clone()
            };
            map_capacity(per_process_threads(limits.max_map_count, &with_p), p)
                >= demand.connections
        });
        out.push(ThreadShortfall::MapCount {
            max_map_count: limits.max_map_count,
            processes,
            per_process_threads: per_process,
            capacity,
            connections: demand.connections,
            processes_needed,
            map_count_needed: map_count_for(demand),
        });
    }
    out
}

/// The vm.max_map_count at which `demand.processes` hold every connection
/// thread, rounded up to a multiple of 65,536.
fn map_count_for(demand: &ThreadDemand) -> u64 {
    let processes = demand.processes.max(1);
    let fill = if processes > 1 {
        REUSEPORT_FILL_PERCENT
    } else {
        100
    };
    let per_process = (demand.connections * 100).div_ceil(processes * fill);
    let maps = (per_process + demand.own_threads_per_process()) * MAPS_PER_THREAD + MAP_HEADROOM;
    maps.div_ceil(65_536) * 65_536
}

/// The shortfalls in one sentence, or `None` when there are none.
pub fn describe(shortfalls: &[ThreadShortfall]) -> Option<String> {
    (!shortfalls.is_empty()).then(|| {
        shortfalls
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

#[cfg(test)]
mod tests;
