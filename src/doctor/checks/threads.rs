//! Whether N connections fit a thread-per-connection server's threads: the
//! same arithmetic a run applies before each tpc case
//! ([`crate::results::thread_capacity`]), for the server processes the
//! descriptor limit already needs. A WARN, not a FAIL: only the tpc
//! variants start a thread per connection.

use std::path::Path;

use super::finding::{finding, unreadable};
use crate::doctor::{Finding, ProcessFacts, Status};
use crate::results::scale_plan::{self, ServerLimits};
use crate::results::thread_capacity::machine::read_thread_limits;
use crate::results::thread_capacity::{
    MAX_SERVER_PROCESSES, ThreadDemand, ThreadLimits, thread_shortfalls,
};

pub(super) const CHECK: &str = "threads (thread-per-connection)";
const WHY: &str = "tpc-rw starts one thread per connection: each takes a pid below kernel.pid_max, a slot of kernel.threads-max and of the user's RLIMIT_NPROC, and 4 of its process's vm.max_map_count mappings; past any of them the server stops accepting, or aborts. The epoll and io_uring variants hold connections without threads";

pub(super) fn thread_per_connection(
    root: &Path,
    connections: u64,
    facts: &ProcessFacts,
) -> Finding {
    let limits = match read_thread_limits(root) {
        Ok(limits) => limits,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    // The processes a run needs for the descriptors anyway (at one per
    // connection, as tpc-rw holds).
    let processes = scale_plan::server_processes_needed(
        &ServerLimits {
            processes: 1,
            nofile_hard: facts.nofile_hard,
            fds_per_connection: 1,
        },
        connections,
    )
    .unwrap_or(MAX_SERVER_PROCESSES)
    .min(MAX_SERVER_PROCESSES);
    let demand = ThreadDemand {
        connections,
        processes,
        serving_threads: 1,
    };
    let shortfalls = thread_shortfalls(&demand, &limits);
    let observed = observed(&limits);
    let servers = format!(
        "{connections} connections in {processes} tpc-rw server process(es) (the descriptor limit's \
         count) need {} threads",
        demand.total_threads()
    );
    if shortfalls.is_empty() {
        finding(
            CHECK,
            Status::Ok,
            observed,
            format!("{servers}: they fit every thread limit"),
            WHY,
            None,
        )
    } else {
        let reasons: Vec<String> = shortfalls.iter().map(ToString::to_string).collect();
        let fixes: Vec<String> = shortfalls.iter().map(|s| s.fix()).collect();
        finding(
            CHECK,
            Status::Warn,
            observed,
            format!(
                "{servers}, and a tpc case is not run: {}",
                reasons.join("; ")
            ),
            WHY,
            Some(fixes.join("; ")),
        )
    }
}

fn observed(limits: &ThreadLimits) -> String {
    let nproc = match &limits.nproc {
        Some(nproc) => format!(
            "RLIMIT_NPROC {} ({} threads of this user)",
            super::limit_text(nproc.soft),
            nproc.user_threads_running
        ),
        None => {
            "RLIMIT_NPROC not enforced (root, or CAP_SYS_ADMIN or CAP_SYS_RESOURCE)".to_string()
        }
    };
    format!(
        "pid_max {}, threads-max {}, {} threads running, max_map_count {}, {nproc}",
        limits.pid_max, limits.threads_max, limits.threads_running, limits.max_map_count
    )
}
