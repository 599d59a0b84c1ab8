//! The individual doctor checks. Each reads what it needs under the root
//! folder and turns it into one [`Finding`]; [`all`] lists them in report
//! order.

mod finding;
mod kernel_counters;
mod limits;
mod machine;
mod read;
mod scale;
mod threads;

use super::{DoctorArgs, Finding, ProcessFacts};
use kernel_counters::{kernel_counters_probe, perf_event_paranoid, tracefs};
use limits::{
    ip_local_port_range, pipe_max_size, rlimit_nofile, somaxconn, tcp_max_syn_backlog, tcp_tw_reuse,
};
use machine::{cpu_steal, cpufreq_governor, cpus, transparent_hugepages, virtualization};
use scale::{file_max, memory, nr_open, tcp_mem};
use threads::thread_per_connection;

pub(super) use scale::{ASSUMED_ACTIVE_CONNECTIONS, CAPACITY_CHECKS};

pub(super) use limits::limit_text;
pub(super) use read::effective_uid_from_status;

pub(super) fn all(args: &DoctorArgs, facts: &ProcessFacts) -> Vec<Finding> {
    let root = &args.root;
    let mut findings = vec![
        rlimit_nofile(args.connections, facts),
        nr_open(root, args.connections, facts),
        file_max(root, args.connections),
        somaxconn(root, args.connections),
        tcp_max_syn_backlog(root, args.connections),
        ip_local_port_range(root, args.connections),
        tcp_mem(root, args.connections),
        memory(root, args.connections),
        thread_per_connection(root, args.connections, facts),
        tcp_tw_reuse(root),
        pipe_max_size(root, args.pipe_size_bytes, facts),
        perf_event_paranoid(root, facts),
        tracefs(root),
    ];
    if let Some(probe) = &facts.kernel_counters_probe {
        findings.push(kernel_counters_probe(probe));
    }
    findings.extend([
        cpus(root, facts),
        cpufreq_governor(root),
        virtualization(root),
        cpu_steal(root, facts),
        transparent_hugepages(root),
    ]);
    findings
}
