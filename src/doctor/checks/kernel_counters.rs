//! What the kernel-side syscall cross-check needs: perf events it may open,
//! tracefs with the syscall tracepoints, and a live attach.

use std::path::{Path, PathBuf};

use super::finding::finding;
use super::read::read_number;
use crate::doctor::{Finding, ProcessFacts, Status};
use crate::sys::counters::SyscallKind;

pub(super) fn perf_event_paranoid(root: &Path, facts: &ProcessFacts) -> Finding {
    const CHECK: &str = "kernel.perf_event_paranoid";
    const WHY: &str = "the kernel-side syscall cross-check opens perf counters on syscall tracepoints; the kernel allows that to root (or CAP_PERFMON) or to anyone when this is -1, and without it the in-process counts go unchecked";
    let value = match read_number(root, "proc/sys/kernel/perf_event_paranoid") {
        Ok(v) => v,
        Err(reason) => {
            return finding(
                CHECK,
                Status::Warn,
                "absent",
                format!("{reason}: this kernel has no perf events, so no kernel cross-check"),
                WHY,
                Some("use a kernel built with CONFIG_PERF_EVENTS=y".to_string()),
            );
        }
    };
    if facts.effective_uid == Some(0) {
        finding(
            CHECK,
            Status::Ok,
            value.to_string(),
            format!("{value}, but running as root: tracepoint counters are allowed"),
            WHY,
            None,
        )
    } else if value <= -1 {
        finding(
            CHECK,
            Status::Ok,
            value.to_string(),
            format!("{value}: any user may open tracepoint counters"),
            WHY,
            None,
        )
    } else {
        finding(
            CHECK,
            Status::Warn,
            value.to_string(),
            format!(
                "{value} and not root: tracepoint counters are refused, the kernel cross-check will be unavailable"
            ),
            WHY,
            Some(
                "run epoll-bench as root, or `sysctl -w kernel.perf_event_paranoid=-1`".to_string(),
            ),
        )
    }
}

/// The tracefs check is two functions; both name it and say why.
const TRACEFS_CHECK: &str = "tracefs";
const TRACEFS_WHY: &str = "the kernel cross-check finds the syscall tracepoints (syscalls:sys_enter_*, raw_syscalls:sys_enter) by their ids in tracefs";

pub(super) fn tracefs(root: &Path) -> Finding {
    let mount_fix = Some("mount -t tracefs nodev /sys/kernel/tracing".to_string());
    let candidates = [
        "sys/kernel/tracing/events",
        "sys/kernel/debug/tracing/events",
    ];
    let Some(events) = candidates.iter().map(|c| root.join(c)).find(|p| p.is_dir()) else {
        return finding(
            TRACEFS_CHECK,
            Status::Warn,
            "not mounted",
            "tracefs is not mounted: the kernel cross-check will be unavailable",
            TRACEFS_WHY,
            mount_fix,
        );
    };
    let shown = |p: &Path| PathBuf::from("/").join(p.strip_prefix(root).unwrap_or(p));
    let observed = format!("{}", shown(&events).display());
    let total = events.join("raw_syscalls/sys_enter/id");
    match std::fs::read_to_string(&total) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return finding(
                TRACEFS_CHECK,
                Status::Warn,
                observed,
                "tracefs has no raw_syscalls:sys_enter tracepoint: the kernel lacks syscall tracepoints",
                TRACEFS_WHY,
                Some("use a kernel built with CONFIG_FTRACE_SYSCALLS=y".to_string()),
            );
        }
        Err(e) => {
            return finding(
                TRACEFS_CHECK,
                Status::Warn,
                observed,
                format!(
                    "cannot read {}: {e}: tracepoint ids are readable by root only",
                    shown(&total).display()
                ),
                TRACEFS_WHY,
                Some("run epoll-bench as root".to_string()),
            );
        }
    }
    syscall_tracepoints(&events, observed)
}

/// Whether tracefs under `events` has a tracepoint for every syscall kind
/// the suite counts.
fn syscall_tracepoints(events: &Path, observed: String) -> Finding {
    let missing: Vec<&str> = SyscallKind::ALL
        .iter()
        .map(|k| k.kernel_name())
        .filter(|name| {
            !events
                .join(format!("syscalls/sys_enter_{name}/id"))
                .exists()
        })
        .collect();
    if missing.is_empty() {
        finding(
            TRACEFS_CHECK,
            Status::Ok,
            observed,
            format!(
                "raw_syscalls:sys_enter and all {} syscall tracepoints the suite counts are present",
                SyscallKind::ALL.len()
            ),
            TRACEFS_WHY,
            None,
        )
    } else {
        finding(
            TRACEFS_CHECK,
            Status::Warn,
            observed,
            format!(
                "no tracepoint for {}: those kinds are not cross-checked",
                missing.join(", ")
            ),
            TRACEFS_WHY,
            Some(
                "use a kernel built with CONFIG_FTRACE_SYSCALLS=y for this architecture"
                    .to_string(),
            ),
        )
    }
}

pub(super) fn kernel_counters_probe(probe: &Result<(), String>) -> Finding {
    const CHECK: &str = "kernel syscall counters";
    const WHY: &str =
        "a live attempt to attach the cross-check's counters to this thread: what `run` will get";
    match probe {
        Ok(()) => finding(
            CHECK,
            Status::Ok,
            "attached",
            "perf tracepoint counters attach: the kernel cross-check will run",
            WHY,
            None,
        ),
        // The reason already ends with the command that fixes it.
        Err(reason) => finding(
            CHECK,
            Status::Warn,
            "refused",
            format!("kernel cross-check unavailable: {reason}"),
            WHY,
            None,
        ),
    }
}
