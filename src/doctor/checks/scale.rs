//! What N connections need beyond one process: how many driver and server
//! processes the descriptor limit implies, the system-wide file and TCP
//! memory limits, and memory. The plan itself is the driver's
//! ([`crate::results::scale_plan`]), so the doctor and a run agree.

use std::path::Path;

use super::finding::{finding, unreadable};
use super::read::{read, read_number};
use crate::doctor::{Finding, ProcessFacts, Status};
use crate::results::scale_plan::{
    self as plan, ScaleInputs, ScalePlan, ScaleRefusal, ServerLimits,
};

/// The active set the doctor assumes of N connections: the idle-scale
/// profiles' 1,000 ping-pong connections (all of N when N is smaller).
pub const ASSUMED_ACTIVE_CONNECTIONS: u64 = 1_000;
/// Kernel memory of one loopback connection, an estimate until a run
/// measures it: two sockets (driver and server end), each a TCP socket,
/// socket inode, dentry and file slab object (about 3.5 KiB together), and
/// the server's epoll item.
pub const KERNEL_BYTES_PER_CONNECTION_ESTIMATE: u64 = 8 << 10;
/// User memory of one idle connection, an estimate: the server's
/// per-connection state before any buffer is touched, and the driver's.
pub const USER_BYTES_PER_CONNECTION_ESTIMATE: u64 = 12 << 10;
const PAGE_BYTES: u64 = 4096;

/// The checks whose FAIL means this machine cannot hold N connections.
pub const CAPACITY_CHECKS: [&str; 5] = [
    "RLIMIT_NOFILE",
    "net.ipv4.ip_local_port_range",
    "fs.file-max",
    "net.ipv4.tcp_mem",
    "memory",
];

/// `high - low + 1` of the port range, or why not.
pub(super) fn local_ports(root: &Path) -> Result<(u64, u64, u64), String> {
    let text = read(root, "proc/sys/net/ipv4/ip_local_port_range")?;
    plan::parse_port_range(&text)
        .map(|(low, high)| (low, high, high - low + 1))
        .ok_or_else(|| format!("ip_local_port_range holds `{text}`, not two port numbers"))
}

/// The driver's plan for `connections` under this process's descriptor
/// limit alone (ports are the port-range check's).
pub(super) fn plan_for(connections: u64, facts: &ProcessFacts) -> Result<ScalePlan, ScaleRefusal> {
    let active = connections.min(ASSUMED_ACTIVE_CONNECTIONS);
    plan::plan(&ScaleInputs {
        active_connections: active,
        idle_connections: connections - active,
        nofile_hard: facts.nofile_hard,
        local_ports: u64::MAX,
        server: Some(ServerLimits {
            processes: 1,
            nofile_hard: facts.nofile_hard,
            fds_per_connection: 1,
        }),
    })
}

pub(super) fn nr_open(root: &Path, connections: u64, facts: &ProcessFacts) -> Finding {
    const CHECK: &str = "fs.nr_open";
    const WHY: &str = "no process's RLIMIT_NOFILE may exceed it, even raised by root: it is the ceiling of connections one process can ever hold";
    let value = match read_number(root, "proc/sys/fs/nr_open") {
        Ok(v) => v.max(0) as u64,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let one_process = connections + crate::results::scale_plan::FD_HEADROOM;
    let message = if one_process <= value {
        format!(
            "root could let one process hold all {connections} connections ({one_process} fds); \
             without root the hard limit {} stays, and the driver spreads over processes",
            super::limit_text(facts.nofile_hard)
        )
    } else {
        format!(
            "{connections} connections ({one_process} fds) exceed what any one process may hold: \
             several driver and server processes are needed whatever the rlimits"
        )
    };
    finding(CHECK, Status::Ok, value.to_string(), message, WHY, None)
}

pub(super) fn file_max(root: &Path, connections: u64) -> Finding {
    const CHECK: &str = "fs.file-max";
    const WHY: &str = "open files of the whole system: on loopback each connection is a descriptor in the driver and another in the server (three in a splice server), all counted here";
    let value = match read_number(root, "proc/sys/fs/file-max") {
        Ok(v) => v.max(0) as u64,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let needed = 2 * connections + 4096;
    let splice = 4 * connections + 4096;
    let fix = Some(format!("sysctl -w fs.file-max={splice}"));
    if value < needed {
        finding(
            CHECK,
            Status::Fail,
            value.to_string(),
            format!(
                "{connections} connections need {needed} open files system-wide (both ends, with \
                 4096 spare), above {value}: connects fail with ENFILE"
            ),
            WHY,
            fix,
        )
    } else if value < splice {
        finding(
            CHECK,
            Status::Warn,
            value.to_string(),
            format!(
                "{value} open files hold {connections} connections at one fd per end, not with a \
                 splice server's pipes ({splice})"
            ),
            WHY,
            fix,
        )
    } else {
        finding(
            CHECK,
            Status::Ok,
            value.to_string(),
            format!("{value} open files: room for {connections} connections in every variant"),
            WHY,
            None,
        )
    }
}

pub(super) fn tcp_mem(root: &Path, connections: u64) -> Finding {
    const CHECK: &str = "net.ipv4.tcp_mem";
    const WHY: &str = "TCP buffer memory of the whole system, in pages (min, pressure, max): above pressure the kernel shrinks buffers, at max it drops data; an idle connection with empty queues holds none, one with data in flight at least a page per end";
    let text = match read(root, "proc/sys/net/ipv4/tcp_mem") {
        Ok(t) => t,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let values: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [_, pressure, max] = values[..] else {
        return unreadable(
            CHECK,
            format!("tcp_mem holds `{text}`, not three page counts"),
            WHY,
        );
    };
    let observed = format!("pressure {pressure}, max {max} pages");
    // The worst case: every connection holding a page at each end at once.
    let worst = 2 * connections;
    let mib = |pages: u64| (pages * PAGE_BYTES) >> 20;
    let fix = Some(format!(
        "sysctl -w net.ipv4.tcp_mem=\"{} {} {}\"",
        worst,
        worst * 4 / 3,
        worst * 2
    ));
    if worst <= pressure {
        finding(
            CHECK,
            Status::Ok,
            observed,
            format!(
                "even with data in flight on all {connections} connections ({worst} pages, {} MiB) \
                 the kernel stays below pressure ({} MiB)",
                mib(worst),
                mib(pressure)
            ),
            WHY,
            None,
        )
    } else {
        finding(
            CHECK,
            Status::Warn,
            observed,
            format!(
                "idle connections hold no buffer pages, but data in flight on all {connections} at \
                 once ({worst} pages, {} MiB) would pass pressure ({} MiB){}",
                mib(worst),
                mib(pressure),
                if worst > max {
                    " and max: the kernel would drop data"
                } else {
                    ""
                }
            ),
            WHY,
            fix,
        )
    }
}

/// `MemAvailable` of `proc/meminfo`, in bytes.
fn mem_available_bytes(root: &Path) -> Result<u64, String> {
    let text = read(root, "proc/meminfo")?;
    plan::parse_mem_available_bytes(&text)
        .ok_or_else(|| "proc/meminfo has no MemAvailable line".to_string())
}

pub(super) fn memory(root: &Path, connections: u64) -> Finding {
    const CHECK: &str = "memory";
    const WHY: &str = "every connection costs kernel memory (socket objects at both ends) and user memory (server and driver state) whether or not it is busy; past what is available the kernel reclaims, swaps or kills, and the run measures that";
    let available = match mem_available_bytes(root) {
        Ok(v) => v,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let per_connection = KERNEL_BYTES_PER_CONNECTION_ESTIMATE + USER_BYTES_PER_CONNECTION_ESTIMATE;
    let needed = connections * per_connection;
    let gib = |bytes: u64| bytes as f64 / (1u64 << 30) as f64;
    let observed = format!("{:.1} GiB available", gib(available));
    let estimate = format!(
        "{connections} connections at an estimated {} KiB each ({} KiB kernel, {} KiB user) need \
         {:.1} GiB",
        per_connection >> 10,
        KERNEL_BYTES_PER_CONNECTION_ESTIMATE >> 10,
        USER_BYTES_PER_CONNECTION_ESTIMATE >> 10,
        gib(needed)
    );
    let fits = available / per_connection;
    if needed > available {
        finding(
            CHECK,
            Status::Fail,
            observed,
            format!(
                "{estimate}, above the {:.1} GiB available: about {fits} fit",
                gib(available)
            ),
            WHY,
            Some("run fewer connections, or on a machine with more memory".to_string()),
        )
    } else if needed > available / 5 * 4 {
        finding(
            CHECK,
            Status::Warn,
            observed,
            format!(
                "{estimate}, over 80% of the {:.1} GiB available: about {fits} fit",
                gib(available)
            ),
            WHY,
            Some("run fewer connections, or stop what else uses memory".to_string()),
        )
    } else {
        finding(
            CHECK,
            Status::Ok,
            observed,
            format!("{estimate} of the {:.1} GiB available", gib(available)),
            WHY,
            None,
        )
    }
}
