//! Limits a run at the requested size must fit in: file descriptors, listen
//! and SYN backlogs, local ports, TIME_WAIT reuse, and the pipe size the
//! splice variants ask for.

use std::path::Path;

use super::finding::{finding, unreadable};
use super::read::read_number;
use crate::doctor::{Finding, ProcessFacts, Status};
use crate::results::scale_plan::{FD_HEADROOM, MAX_SOURCE_ADDRESSES, ports_per_source};

/// A splice-variant connection can hold its socket and a pipe pair.
const SPLICE_FDS_PER_CONNECTION: u64 = 3;

/// Backlogs at or above this hold any burst the driver makes (and it is the
/// kernel's default `somaxconn` since 5.4).
const GOOD_BACKLOG: u64 = 4096;

/// Half-open connections worth holding. Smaller than [`GOOD_BACKLOG`]:
/// the handshake completes within microseconds on loopback and a LAN, so
/// only a large burst to a distant target fills this queue; 1024 is also
/// what the kernel picks by default on machines with a few GiB of memory.
const GOOD_SYN_BACKLOG: u64 = 1024;

pub(in crate::doctor) fn limit_text(limit: u64) -> String {
    if limit == u64::MAX || limit == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        limit.to_string()
    }
}

pub(super) fn rlimit_nofile(connections: u64, facts: &ProcessFacts) -> Finding {
    const CHECK: &str = "RLIMIT_NOFILE";
    const WHY: &str = "every connection is a file descriptor in the server and another in the driver (splice variants may add a pipe pair per connection); past the limit accept fails with EMFILE and the run measures the limit, not the variant";
    let (soft, hard) = (facts.nofile_soft, facts.nofile_hard);
    let observed = format!("soft {}, hard {}", limit_text(soft), limit_text(hard));
    let needed_plain = connections + FD_HEADROOM;
    let needed_splice = SPLICE_FDS_PER_CONNECTION * connections + FD_HEADROOM;
    let fix = Some(format!(
        "as root, in the shell that runs epoll-bench: `ulimit -n {needed_splice}` (to keep it: `echo '* - nofile {needed_splice}' >> /etc/security/limits.conf`; above fs.nr_open also `sysctl -w fs.nr_open={needed_splice}`)"
    ));
    if hard < needed_plain {
        match super::scale::plan_for(connections, facts) {
            Err(refusal) => finding(CHECK, Status::Fail, observed, refusal.to_string(), WHY, fix),
            Ok(plan) => finding(
                CHECK,
                Status::Warn,
                observed,
                format!(
                    "the hard limit {} holds {} connections per process: of {connections} \
                     ({} active, kept in the driver's main process) the driver holds the idle \
                     ones in {} worker process(es); {}",
                    limit_text(hard),
                    plan.per_process_connections,
                    plan.active_connections,
                    plan.workers.len(),
                    plan.server_shortfall
                        .as_deref()
                        .unwrap_or("one server process holds them")
                ),
                WHY,
                fix,
            ),
        }
    } else if hard < needed_splice {
        finding(
            CHECK,
            Status::Warn,
            observed,
            format!(
                "the hard limit {} holds {connections} connections at one fd each, but not if each also holds a splice pipe ({needed_splice} fds)",
                limit_text(hard)
            ),
            WHY,
            fix,
        )
    } else if soft < needed_splice {
        finding(
            CHECK,
            Status::Ok,
            observed,
            format!(
                "the soft limit {} is below the {needed_splice} fds {connections} connections may need, but epoll-bench raises it to the hard limit {} itself",
                limit_text(soft),
                limit_text(hard)
            ),
            WHY,
            None,
        )
    } else {
        finding(
            CHECK,
            Status::Ok,
            observed,
            format!("room for {connections} connections in every variant ({needed_splice} fds)"),
            WHY,
            None,
        )
    }
}

pub(super) fn somaxconn(root: &Path, connections: u64) -> Finding {
    const CHECK: &str = "net.core.somaxconn";
    const WHY: &str = "it caps the listen backlog: when the driver opens connections faster than the server accepts them, connections beyond it are dropped and retried after 1 s, which shows up as connect stalls and 1000 ms latency outliers";
    let value = match read_number(root, "proc/sys/net/core/somaxconn") {
        Ok(v) => v.max(0) as u64,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let target = connections.clamp(1, GOOD_BACKLOG);
    let fix = Some(format!("sysctl -w net.core.somaxconn={GOOD_BACKLOG}"));
    if value >= target {
        finding(
            CHECK,
            Status::Ok,
            value.to_string(),
            format!("a backlog of {value} holds a burst of {target} connects"),
            WHY,
            None,
        )
    } else if value < 128 {
        finding(
            CHECK,
            Status::Fail,
            value.to_string(),
            format!(
                "a backlog of {value} drops connects as soon as {connections} connections open together"
            ),
            WHY,
            fix,
        )
    } else {
        finding(
            CHECK,
            Status::Warn,
            value.to_string(),
            format!("a backlog of {value} may drop connects in a burst of {target}"),
            WHY,
            fix,
        )
    }
}

pub(super) fn tcp_max_syn_backlog(root: &Path, connections: u64) -> Finding {
    const CHECK: &str = "net.ipv4.tcp_max_syn_backlog";
    const WHY: &str = "half-open connections beyond it are answered with SYN cookies or dropped, so a connection burst (churn profile, 10,000 idle connections) measures SYN handling instead of the variant";
    let value = match read_number(root, "proc/sys/net/ipv4/tcp_max_syn_backlog") {
        Ok(v) => v.max(0) as u64,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let target = connections.clamp(1, GOOD_SYN_BACKLOG);
    if value >= target {
        finding(
            CHECK,
            Status::Ok,
            value.to_string(),
            format!("{value} half-open connections fit a burst of {target}"),
            WHY,
            None,
        )
    } else {
        finding(
            CHECK,
            Status::Warn,
            value.to_string(),
            format!("{value} half-open connections may not fit a burst of {target}"),
            WHY,
            Some(format!(
                "sysctl -w net.ipv4.tcp_max_syn_backlog={GOOD_SYN_BACKLOG}"
            )),
        )
    }
}

pub(super) fn ip_local_port_range(root: &Path, connections: u64) -> Finding {
    const CHECK: &str = "net.ipv4.ip_local_port_range";
    const WHY: &str = "each driver connection to one target address takes one local port; connections closed by churn keep theirs for 60 s in TIME_WAIT, so too few ports fail connects with EADDRNOTAVAIL";
    let (low, high, _) = match super::scale::local_ports(root) {
        Ok(range) => range,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let ports = high.saturating_sub(low) + 1;
    let observed = format!("{low}-{high} ({ports} ports)");
    let fix = "sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"".to_string();
    let per_source = ports_per_source(ports);
    let sources = connections.div_ceil(per_source);
    if sources > MAX_SOURCE_ADDRESSES {
        finding(
            CHECK,
            Status::Fail,
            observed,
            format!(
                "{ports} local ports cannot hold {connections} connections: at {per_source} per \
                 source address they need {sources} addresses, above the {MAX_SOURCE_ADDRESSES} \
                 (127.0.0.1-127.0.0.254) the driver uses"
            ),
            WHY,
            Some(fix),
        )
    } else if sources > 1 {
        finding(
            CHECK,
            Status::Warn,
            observed,
            format!(
                "{ports} local ports cannot hold {connections} connections from one source \
                 address: the driver spreads idle connections over {sources} source addresses \
                 (127.0.0.1-{}) at {per_source} each; shapes without idle connections use \
                 127.0.0.1 alone",
                crate::results::scale_plan::source_address(sources - 1)
            ),
            WHY,
            Some(fix),
        )
    } else {
        finding(
            CHECK,
            Status::Ok,
            observed,
            format!(
                "{ports} local ports: room for {connections} connections and churn (a source \
                 address is filled to {}% at most)",
                crate::results::scale_plan::PORT_FILL_PERCENT
            ),
            WHY,
            None,
        )
    }
}

pub(super) fn tcp_tw_reuse(root: &Path) -> Finding {
    const CHECK: &str = "net.ipv4.tcp_tw_reuse";
    const WHY: &str = "the connection-churn profile opens and closes connections continuously; without TIME_WAIT reuse the local ports run out and connects fail or stall";
    let fix = Some("sysctl -w net.ipv4.tcp_tw_reuse=1".to_string());
    match read_number(root, "proc/sys/net/ipv4/tcp_tw_reuse") {
        Err(reason) => unreadable(CHECK, reason, WHY),
        Ok(1) => finding(
            CHECK,
            Status::Ok,
            "1",
            "TIME_WAIT ports are reused for new connections",
            WHY,
            None,
        ),
        Ok(2) => finding(
            CHECK,
            Status::Ok,
            "2",
            "TIME_WAIT ports are reused on loopback only: enough for local runs (set 1 to drive a remote target)",
            WHY,
            None,
        ),
        Ok(0) => finding(
            CHECK,
            Status::Warn,
            "0",
            "TIME_WAIT ports are never reused: churn runs can exhaust local ports",
            WHY,
            fix,
        ),
        Ok(other) => finding(
            CHECK,
            Status::Warn,
            other.to_string(),
            format!("unknown value {other}"),
            WHY,
            fix,
        ),
    }
}

pub(super) fn pipe_max_size(root: &Path, pipe_size_bytes: u64, facts: &ProcessFacts) -> Finding {
    const CHECK: &str = "fs.pipe-max-size";
    const WHY: &str = "splice variants size their pipes with F_SETPIPE_SZ; above this limit an unprivileged server gets EPERM, and a smaller pipe means more splice calls per frame, which changes exactly what the splice variants measure";
    let value = match read_number(root, "proc/sys/fs/pipe-max-size") {
        Ok(v) => v.max(0) as u64,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let fix = Some(format!("sysctl -w fs.pipe-max-size={pipe_size_bytes}"));
    if value >= pipe_size_bytes {
        finding(
            CHECK,
            Status::Ok,
            value.to_string(),
            format!("{pipe_size_bytes}-byte pipes are allowed"),
            WHY,
            None,
        )
    } else if facts.effective_uid == Some(0) {
        finding(
            CHECK,
            Status::Warn,
            value.to_string(),
            format!(
                "{pipe_size_bytes}-byte pipes exceed the limit {value}: root may exceed it (CAP_SYS_RESOURCE), a server run by another user may not"
            ),
            WHY,
            fix,
        )
    } else {
        finding(
            CHECK,
            Status::Fail,
            value.to_string(),
            format!(
                "{pipe_size_bytes}-byte pipes exceed the limit {value}: F_SETPIPE_SZ fails with EPERM"
            ),
            WHY,
            fix,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_limits_read_as_unlimited() {
        assert_eq!(limit_text(u64::MAX), "unlimited");
        assert_eq!(limit_text(1024), "1024");
    }
}
