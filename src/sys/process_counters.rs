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
//! With the syscall group comes a third, the EAGAIN group: one counter per
//! kind of [`EAGAIN_COUNTED_SYSCALLS`] on `syscalls:sys_exit_<name>`,
//! filtered in the kernel to `ret == -EAGAIN`, so it counts the calls that
//! found nothing to read or no room to write, as built-in variants count
//! them in user space.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use perf_event_open_sys::bindings;
use serde::{Deserialize, Serialize};

use super::Fd;
use super::counters::SyscallKind;
use super::perf::{
    KernelCountsUnavailable, TRACEFS_EVENT_DIRS, classify_open_error, open_event,
    read_tracepoint_id, set_tracepoint_filter,
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

/// Syscalls whose `EAGAIN` returns are counted for an external server, by
/// the kernel's name: the read side (including `recv` and `recvmsg`, which
/// Go and tokio may use), the write side, and `accept4` (a listener
/// drained to `EAGAIN`).
pub const EAGAIN_COUNTED_SYSCALLS: &[&str] = &[
    "read", "readv", "recvfrom", "recvmsg", "write", "writev", "sendto", "sendmsg", "splice",
    "accept4",
];

/// The kernel filter that keeps only `EAGAIN` returns: a syscall's exit
/// tracepoint has the field `ret`, the negated errno on failure
/// (`EWOULDBLOCK` is the same number on Linux).
pub fn eagain_filter() -> String {
    format!("ret == -{}", libc::EAGAIN)
}

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
    /// Calls that returned `EAGAIN`, by the kernel's syscall name: every
    /// kind of [`EAGAIN_COUNTED_SYSCALLS`] this kernel has an exit
    /// tracepoint for, zero included. `None` when they could not be
    /// counted (the kernel refused the filter, or results written before
    /// they were): unavailable, never zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eagain_by_kind: Option<BTreeMap<String, u64>>,
    /// Why `eagain_by_kind` is missing, when the counters said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eagain_unavailable_reason: Option<String>,
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
                    eagain_by_kind: match (&late.eagain_by_kind, &early.eagain_by_kind) {
                        (Some(late), Some(early)) => Some(
                            late.iter()
                                .map(|(name, n)| {
                                    let before = early.get(name).copied().unwrap_or(0);
                                    (name.clone(), n.saturating_sub(before))
                                })
                                .collect(),
                        ),
                        _ => None,
                    },
                    eagain_unavailable_reason: late.eagain_unavailable_reason.clone(),
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

/// The syscall group and what its members count.
struct SyscallGroups {
    /// `raw_syscalls:sys_enter`, then one `sys_enter_<name>` per name.
    calls: Group,
    names: Vec<&'static str>,
    unavailable: Vec<String>,
    /// The EAGAIN group (one filtered `sys_exit_<name>` counter per name,
    /// the first leading), or why there is none.
    eagain: Result<(Group, Vec<&'static str>), String>,
}

/// Counters on one process (see the module comment). Dropping it closes
/// them.
pub struct ProcessCounters {
    usage: Group,
    syscalls: Option<SyscallGroups>,
}

/// Opens the EAGAIN group on `pid` (see the module comment). Any refusal
/// gives up on the whole group and says why: a counter left unfiltered
/// would count every return, and reading it as EAGAIN returns would be
/// wrong, so the figures are reported unavailable instead.
///
/// The counters count from their open, before the filter is set; `pid` is
/// held before `exec` (see [`super::process`]) and makes no syscall
/// meanwhile, and every window subtracts a later read anyway.
fn attach_eagain(events_dir: &Path, pid: i32) -> Result<(Group, Vec<&'static str>), String> {
    let filter = eagain_filter();
    let mut leader: Option<Fd> = None;
    let (mut members, mut names) = (Vec::new(), Vec::new());
    for &name in EAGAIN_COUNTED_SYSCALLS {
        let path = events_dir.join(format!("syscalls/sys_exit_{name}/id"));
        let Some(id) = read_tracepoint_id(&path).map_err(|e| e.to_string())? else {
            continue;
        };
        let tracepoint = format!("syscalls:sys_exit_{name}");
        let counter = open_event(
            bindings::PERF_TYPE_TRACEPOINT,
            id,
            pid,
            leader.as_ref(),
            true,
        )
        .map_err(|e| format!("perf_event_open on {tracepoint} failed: {e}"))?;
        set_tracepoint_filter(&counter, &filter).map_err(|e| {
            format!("the kernel refused the filter `{filter}` on {tracepoint}: {e}")
        })?;
        match leader {
            None => leader = Some(counter),
            Some(_) => members.push(counter),
        }
        names.push(name);
    }
    let leader = leader.ok_or_else(|| {
        format!(
            "the kernel has no exit tracepoint for any of {}",
            EAGAIN_COUNTED_SYSCALLS.join(", ")
        )
    })?;
    Ok((Group { leader, members }, names))
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
        let eagain = attach_eagain(events_dir, pid);
        Ok(ProcessCounters {
            usage,
            syscalls: Some(SyscallGroups {
                calls: Group { leader, members },
                names,
                unavailable,
                eagain,
            }),
        })
    }

    /// Current counts: one `read(2)` per group.
    pub fn read(&self) -> io::Result<ProcessCounts> {
        let usage = self.usage.read()?;
        let syscalls = match &self.syscalls {
            None => None,
            Some(groups) => {
                let values = groups.calls.read()?;
                let (eagain_by_kind, eagain_unavailable_reason) = match &groups.eagain {
                    Ok((group, names)) => {
                        let values = group.read()?;
                        let by_kind = names
                            .iter()
                            .zip(&values)
                            .map(|(name, n)| (name.to_string(), *n))
                            .collect();
                        (Some(by_kind), None)
                    }
                    Err(reason) => (None, Some(reason.clone())),
                };
                Some(ProcessSyscalls {
                    total: values[0],
                    by_kind: groups
                        .names
                        .iter()
                        .zip(&values[1..])
                        .map(|(name, n)| (name.to_string(), *n))
                        .collect(),
                    unavailable_kinds: groups.unavailable.clone(),
                    eagain_by_kind,
                    eagain_unavailable_reason,
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
    use std::os::fd::AsFd;

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

    /// What the EAGAIN child does, in [`eagain_child`]: reads and
    /// `recvfrom`s on an empty non-blocking socket, then successful reads,
    /// then writes until the socket is full (exactly one `EAGAIN` write).
    const EMPTY_READS: u64 = 7;
    const EMPTY_RECVFROMS: u64 = 5;
    const FULL_READS: u64 = 3;
    const CHILD_SWITCH: &str = "EPOLL_BENCH_EAGAIN_CHILD";

    /// Not a test of its own: the program `eagain_returns_are_counted_by_kind`
    /// runs (this test binary, re-executed with only this test), since
    /// the counters must watch a process from its start.
    #[test]
    #[ignore = "run as a child by eagain_returns_are_counted_by_kind"]
    fn eagain_child() {
        if std::env::var_os(CHILD_SWITCH).is_none() {
            return;
        }
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is writable for two ints for the duration of the call.
        let ret = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(ret, 0, "socketpair: {}", io::Error::last_os_error());
        let (ours, theirs) = (Fd::from_new(fds[0]), Fd::from_new(fds[1]));
        let mut buf = [0u8; 64];
        for _ in 0..EMPTY_READS {
            let err = crate::sys::io::read(ours.as_fd(), &mut buf).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
        }
        for _ in 0..EMPTY_RECVFROMS {
            // SAFETY: `buf` is writable for its length; no address is asked for.
            let ret = unsafe {
                libc::recvfrom(
                    ours.raw(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(ret, -1);
            assert_eq!(
                io::Error::last_os_error().raw_os_error(),
                Some(libc::EAGAIN)
            );
        }
        crate::sys::io::write(theirs.as_fd(), &[1; FULL_READS as usize]).unwrap();
        for _ in 0..FULL_READS {
            assert_eq!(
                crate::sys::io::read(ours.as_fd(), &mut buf[..1]).unwrap(),
                1
            );
        }
        let chunk = [0u8; 65536];
        while crate::sys::io::write(theirs.as_fd(), &chunk).is_ok() {}
    }

    #[test]
    fn eagain_returns_are_counted_by_kind() {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "sys::process_counters::tests::eagain_child",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CHILD_SWITCH, "1")
            .stdout(std::process::Stdio::null());
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
        let syscalls = counters.read().unwrap().since(&start).syscalls.unwrap();
        let eagain = syscalls
            .eagain_by_kind
            .clone()
            .unwrap_or_else(|| panic!("{:?}", syscalls.eagain_unavailable_reason));
        // Exactly the calls that found the socket empty or full; the
        // successful reads (and the test harness's own) are not counted.
        assert_eq!(eagain["read"], EMPTY_READS, "{eagain:?}");
        assert_eq!(eagain["recvfrom"], EMPTY_RECVFROMS, "{eagain:?}");
        assert_eq!(eagain["write"], 1, "{eagain:?}");
        assert_eq!(eagain["readv"], 0, "{eagain:?}");
        assert!(syscalls.by_kind["read"] >= EMPTY_READS + FULL_READS);
        assert!(syscalls.by_kind["write"] > 1);
        for name in EAGAIN_COUNTED_SYSCALLS {
            assert!(eagain.contains_key(*name), "{name} missing: {eagain:?}");
        }
    }

    #[test]
    fn a_window_keeps_eagain_counts_absent_unless_both_reads_have_them() {
        let with = |read: u64| ProcessSyscalls {
            eagain_by_kind: Some(BTreeMap::from([("read".to_string(), read)])),
            ..ProcessSyscalls::default()
        };
        let counts = |syscalls| ProcessCounts {
            syscalls: Some(syscalls),
            ..ProcessCounts::default()
        };
        let window = counts(with(10)).since(&counts(with(4)));
        assert_eq!(window.syscalls.unwrap().eagain_by_kind.unwrap()["read"], 6);
        let refused = ProcessSyscalls {
            eagain_unavailable_reason: Some("refused".to_string()),
            ..ProcessSyscalls::default()
        };
        let window = counts(refused.clone()).since(&counts(refused));
        let syscalls = window.syscalls.unwrap();
        assert_eq!(syscalls.eagain_by_kind, None);
        assert_eq!(
            syscalls.eagain_unavailable_reason.as_deref(),
            Some("refused")
        );
    }
}
