//! Kernel counters on a whole process that is not ours (an external
//! server): its CPU time (`task-clock`, nanosecond accounting rather than
//! 10 ms ticks), its context switches, and optionally its syscalls by
//! kind. Every counter is opened with `inherit` on a process held before
//! `exec` (see [`super::process`]), so the threads and children it creates
//! are counted and summed into each read.
//!
//! Two perf groups: the usage group (task-clock leading context-switches),
//! cheap enough for timed windows, and the syscall group (as in
//! [`super::perf`]: `raw_syscalls:sys_enter` leading one
//! `syscalls:sys_enter_<name>` counter per kind), which costs every
//! syscall the program makes and so is attached for counting windows only.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use perf_event_open_sys::bindings;
use serde::{Deserialize, Serialize};

use super::Fd;
use super::counters::SyscallKind;
use super::perf::{
    KernelCountsUnavailable, TRACEFS_EVENT_DIRS, classify_open_error, open_event,
    read_tracepoint_id,
};

/// Syscalls that servers outside this project make and ours do not, by
/// the kernel's name: the Go runtime's and tokio's waits and wake-ups,
/// socket calls other than read/write, memory management, timers.
pub const OTHER_KERNEL_SYSCALLS: &[&str] = &[
    "epoll_wait",
    "futex",
    "nanosleep",
    "clock_nanosleep",
    "sched_yield",
    "recvfrom",
    "sendto",
    "recvmsg",
    "sendmsg",
    "poll",
    "ppoll",
    "mmap",
    "munmap",
    "madvise",
    "mprotect",
    "getpid",
    "tgkill",
    "rt_sigreturn",
    "sigaltstack",
    "clone",
    "clone3",
];

/// Every syscall counted by kind for an external server: this project's
/// kinds (by their kernel name) then [`OTHER_KERNEL_SYSCALLS`].
pub fn counted_kernel_syscalls() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    let ours = SyscallKind::ALL.iter().map(|k| k.kernel_name());
    for name in ours.chain(OTHER_KERNEL_SYSCALLS.iter().copied()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Cumulative counts of one process and everything it created since the
/// counters were attached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessCounts {
    /// `task-clock`: CPU time on any CPU, user and system, nanoseconds.
    pub task_clock_ns: u64,
    /// `context-switches`: voluntary and involuntary together.
    pub context_switches: u64,
    /// Syscalls, when the syscall group is attached.
    pub syscalls: Option<ProcessSyscalls>,
}

/// Syscalls of a process, counted by the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSyscalls {
    /// `raw_syscalls:sys_enter`: every syscall of any kind.
    pub total: u64,
    /// By the kernel's syscall name; every counted kind, zero included.
    pub by_kind: BTreeMap<String, u64>,
    /// Kernel names of counted kinds this kernel has no tracepoint for.
    pub unavailable_kinds: Vec<String>,
}

impl ProcessCounts {
    /// `self - earlier`, for a window between two reads.
    pub fn since(&self, earlier: &ProcessCounts) -> ProcessCounts {
        ProcessCounts {
            task_clock_ns: self.task_clock_ns.saturating_sub(earlier.task_clock_ns),
            context_switches: self
                .context_switches
                .saturating_sub(earlier.context_switches),
            syscalls: match (&self.syscalls, &earlier.syscalls) {
                (Some(late), Some(early)) => Some(ProcessSyscalls {
                    total: late.total.saturating_sub(early.total),
                    by_kind: late
                        .by_kind
                        .iter()
                        .map(|(name, n)| {
                            let before = early.by_kind.get(name).copied().unwrap_or(0);
                            (name.clone(), n.saturating_sub(before))
                        })
                        .collect(),
                    unavailable_kinds: late.unavailable_kinds.clone(),
                }),
                _ => None,
            },
        }
    }
}

/// One perf group: a leader and its members, read in one `read(2)`.
struct Group {
    leader: Fd,
    members: Vec<Fd>,
}

impl Group {
    /// Every value of the group, leader first.
    fn read(&self) -> io::Result<Vec<u64>> {
        let values = 1 + self.members.len();
        let mut buf = vec![0u8; 8 * (1 + values)];
        // SAFETY: `buf` is writable for `buf.len()` bytes for the call.
        let n = syscall!(
            Read,
            read(self.leader.raw(), buf.as_mut_ptr().cast(), buf.len())
        )? as usize;
        let words: Vec<u64> = buf
            .chunks_exact(8)
            .map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")))
            .collect();
        if n != buf.len() || words[0] != values as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("perf group returned {n} bytes, expected {} values", values),
            ));
        }
        Ok(words[1..].to_vec())
    }
}

/// Counters on one process (see the module comment). Dropping it closes
/// them.
pub struct ProcessCounters {
    usage: Group,
    syscalls: Option<(Group, Vec<&'static str>, Vec<String>)>,
}

impl ProcessCounters {
    /// Attaches the usage group to process `pid`, and the syscall group
    /// when `count_syscalls`. Attach before the process creates threads:
    /// only those created afterwards are followed.
    pub fn attach(pid: u32, count_syscalls: bool) -> Result<Self, KernelCountsUnavailable> {
        let pid = pid as i32;
        let open = |type_, config, group: Option<&Fd>, name: &str| {
            open_event(type_, config, pid, group, true)
                .map_err(|e| classify_open_error(e, name, pid, &[]))
        };
        let clock = open(
            bindings::PERF_TYPE_SOFTWARE,
            u64::from(bindings::PERF_COUNT_SW_TASK_CLOCK),
            None,
            "task-clock",
        )?;
        let switches = open(
            bindings::PERF_TYPE_SOFTWARE,
            u64::from(bindings::PERF_COUNT_SW_CONTEXT_SWITCHES),
            Some(&clock),
            "context-switches",
        )?;
        let usage = Group {
            leader: clock,
            members: vec![switches],
        };
        if !count_syscalls {
            return Ok(ProcessCounters {
                usage,
                syscalls: None,
            });
        }
        let events_dir = TRACEFS_EVENT_DIRS
            .iter()
            .map(Path::new)
            .find(|dir| dir.is_dir())
            .ok_or_else(|| KernelCountsUnavailable::TracefsNotMounted {
                looked_in: TRACEFS_EVENT_DIRS.iter().map(Into::into).collect(),
            })?;
        let total_id = read_tracepoint_id(&events_dir.join("raw_syscalls/sys_enter/id"))?
            .ok_or_else(|| KernelCountsUnavailable::NoSyscallTracepoints {
                path: events_dir.join("raw_syscalls/sys_enter"),
            })?;
        let leader = open(
            bindings::PERF_TYPE_TRACEPOINT,
            total_id,
            None,
            "raw_syscalls:sys_enter",
        )?;
        let (mut members, mut names, mut unavailable) = (Vec::new(), Vec::new(), Vec::new());
        for name in counted_kernel_syscalls() {
            let path = events_dir.join(format!("syscalls/sys_enter_{name}/id"));
            match read_tracepoint_id(&path)? {
                Some(id) => {
                    let tracepoint = format!("syscalls:sys_enter_{name}");
                    members.push(open(
                        bindings::PERF_TYPE_TRACEPOINT,
                        id,
                        Some(&leader),
                        &tracepoint,
                    )?);
                    names.push(name);
                }
                None => unavailable.push(name.to_string()),
            }
        }
        Ok(ProcessCounters {
            usage,
            syscalls: Some((Group { leader, members }, names, unavailable)),
        })
    }

    /// Current counts: one `read(2)` per group.
    pub fn read(&self) -> io::Result<ProcessCounts> {
        let usage = self.usage.read()?;
        let syscalls = match &self.syscalls {
            None => None,
            Some((group, names, unavailable)) => {
                let values = group.read()?;
                Some(ProcessSyscalls {
                    total: values[0],
                    by_kind: names
                        .iter()
                        .zip(&values[1..])
                        .map(|(name, n)| (name.to_string(), *n))
                        .collect(),
                    unavailable_kinds: unavailable.clone(),
                })
            }
        };
        Ok(ProcessCounts {
            task_clock_ns: usage[0],
            context_switches: usage[1],
            syscalls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::process::spawn_held;

    #[test]
    fn counted_kinds_are_unique_and_include_ours_by_their_kernel_name() {
        let names = counted_kernel_syscalls();
        for (i, name) in names.iter().enumerate() {
            assert!(!names[..i].contains(name), "{name} twice");
        }
        assert!(names.contains(&"epoll_pwait") && names.contains(&"futex"));
    }

    #[test]
    fn threads_a_held_child_creates_are_counted() {
        // A shell that starts four more shells, each making syscalls: the
        // counters on the first follow all of them.
        let mut command = std::process::Command::new("/bin/sh");
        command.args([
            "-c",
            "for i in 1 2 3 4; do /bin/sh -c 'echo x' >/dev/null; done",
        ]);
        let held = spawn_held(command).unwrap();
        let counters = match ProcessCounters::attach(held.pid(), true) {
            Ok(counters) => counters,
            Err(_) => {
                held.abandon();
                return; // No perf here; tests/kernel_counts.rs says why.
            }
        };
        let start = counters.read().unwrap();
        let mut child = held.release().unwrap();
        assert!(child.wait().unwrap().success());
        let counts = counters.read().unwrap().since(&start);
        let syscalls = counts.syscalls.unwrap();
        // Five execs (the shell and its four children), all seen.
        assert!(syscalls.by_kind["write"] >= 4, "{syscalls:?}");
        assert!(syscalls.total > syscalls.by_kind["write"]);
        assert!(counts.task_clock_ns > 0);
    }
}
