//! Kernel-side syscall counts, to cross-check the in-process ones.
//!
//! The in-process counters only see calls that pass through `src/sys`; a
//! call made by std, a dependency or a forgotten path is invisible to them.
//! The kernel sees every call, so for each watched thread we open one perf
//! counter per [`SyscallKind`] on the tracepoint `syscalls:sys_enter_<name>`
//! and one on `raw_syscalls:sys_enter` (every syscall, whatever its kind).
//!
//! Counters are attached per thread (`pid = tid`, `cpu = -1`), so they can
//! watch the serving threads of another process, such as a server started
//! by `run`. Each thread's counters form one perf group led by the
//! `raw_syscalls` counter and read with `PERF_FORMAT_GROUP`: one `read(2)`
//! per thread returns every kind at the same instant, which keeps reading
//! at the start and end of a window cheap and consistent.
//!
//! Why `perf-event-open-sys` and not `perf-event2`: the crate provides the
//! kernel's `perf_event_attr` layout and constants (generated from the
//! kernel headers for each architecture; the `libc` crate has none of
//! them), while the call itself stays ours, so it goes through `syscall!`
//! and is counted like every other call. `perf-event2` would issue the call
//! and the counter reads itself, outside the choke point.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use perf_event_open_sys::bindings;
use serde::{Deserialize, Serialize};

use super::Fd;
use super::counters::{KindCounts, SyscallKind};
#[cfg(test)]
use super::thread::current_tid;

/// Where tracefs is mounted on current kernels, and where older systems
/// expose it (through debugfs).
pub const TRACEFS_EVENT_DIRS: [&str; 2] = [
    "/sys/kernel/tracing/events",
    "/sys/kernel/debug/tracing/events",
];

/// Why kernel-side counts cannot be had. `Display` gives the reason and
/// the command that fixes it, ready for a report.
#[derive(Debug, thiserror::Error)]
pub enum KernelCountsUnavailable {
    #[error(
        "tracefs is not mounted (looked for {}); mount it as root: `mount -t tracefs nodev /sys/kernel/tracing`",
        looked_in.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and ")
    )]
    TracefsNotMounted { looked_in: Vec<PathBuf> },

    #[error(
        "the kernel has no syscall tracepoints ({} is missing): it was built without CONFIG_FTRACE_SYSCALLS; use a kernel built with it",
        path.display()
    )]
    NoSyscallTracepoints { path: PathBuf },

    #[error(
        "cannot read tracepoint id {}: {source}; tracefs is readable by root only by default: run as root",
        path.display()
    )]
    TracefsNotReadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "the kernel refused tracepoint counters ({source}; kernel.perf_event_paranoid = {paranoid}); run as root (or with CAP_PERFMON), or allow it: `sysctl -w kernel.perf_event_paranoid=-1`"
    )]
    NotPermitted {
        paranoid: String,
        #[source]
        source: io::Error,
    },

    #[error(
        "this kernel has no perf events (perf_event_open: {source}); it needs CONFIG_PERF_EVENTS, and a container must allow perf_event_open in its seccomp profile"
    )]
    PerfEventsUnsupported {
        #[source]
        source: io::Error,
    },

    #[error("thread {tid} does not exist (it exited, or the id is wrong)")]
    ThreadNotFound { tid: i32 },

    #[error(
        "out of file descriptors opening kernel counters ({needed} per thread); raise the limit: `ulimit -n $(ulimit -Hn)`"
    )]
    TooManyOpenFiles { needed: usize },

    #[error("perf_event_open on tracepoint {tracepoint} for thread {tid} failed: {source}")]
    Open {
        tracepoint: String,
        tid: i32,
        #[source]
        source: io::Error,
    },
}

/// Kernel syscall counts of the watched threads, summed over them. Counts
/// are cumulative since attach; use [`KernelSyscallCounts::since`] for a
/// window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelSyscallCounts {
    /// `syscalls:sys_enter_<kernel name>` hits, by kind. Zero for the kinds
    /// in `unavailable_kinds`.
    pub calls: KindCounts,
    /// `raw_syscalls:sys_enter` hits: every syscall, of any kind.
    pub total_syscalls: u64,
    /// Report names of kinds whose tracepoint this kernel lacks; their
    /// counts above mean nothing.
    pub unavailable_kinds: Vec<String>,
}

impl KernelSyscallCounts {
    pub fn is_available(&self, kind: SyscallKind) -> bool {
        !self.unavailable_kinds.iter().any(|k| k == kind.name())
    }

    /// Adds another thread's counts.
    pub fn add(&mut self, other: &KernelSyscallCounts) {
        self.calls.add(&other.calls);
        self.total_syscalls += other.total_syscalls;
        for kind in &other.unavailable_kinds {
            if !self.unavailable_kinds.contains(kind) {
                self.unavailable_kinds.push(kind.clone());
            }
        }
    }

    /// `self - earlier`, for a measured window between two reads.
    pub fn since(&self, earlier: &KernelSyscallCounts) -> KernelSyscallCounts {
        KernelSyscallCounts {
            calls: self.calls.since(&earlier.calls),
            total_syscalls: self.total_syscalls.saturating_sub(earlier.total_syscalls),
            unavailable_kinds: self.unavailable_kinds.clone(),
        }
    }
}

/// The counters of one watched thread: a perf group whose leader counts
/// every syscall and whose members count one kind each.
struct ThreadCounters {
    tid: i32,
    leader: Fd,
    members: Vec<Fd>,
}

/// Kernel counters attached to a set of threads (possibly of another
/// process). Dropping it closes the counters.
pub struct KernelSyscallCounters {
    threads: Vec<ThreadCounters>,
    /// Kinds counted, in the order of each group's members.
    kinds: Vec<SyscallKind>,
    /// Kinds whose tracepoint is missing, with the path looked for.
    unavailable: Vec<(SyscallKind, PathBuf)>,
}

impl fmt::Debug for KernelSyscallCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelSyscallCounters")
            .field("tids", &self.tids())
            .field("kinds", &self.kinds)
            .field("unavailable", &self.unavailable)
            .finish()
    }
}

impl KernelSyscallCounters {
    /// Attaches counters to each thread in `tids`, using the first mounted
    /// tracefs of [`TRACEFS_EVENT_DIRS`]. Counting starts at once.
    pub fn attach(tids: &[i32]) -> Result<Self, KernelCountsUnavailable> {
        let events_dir = TRACEFS_EVENT_DIRS
            .iter()
            .map(Path::new)
            .find(|dir| dir.is_dir())
            .ok_or_else(|| KernelCountsUnavailable::TracefsNotMounted {
                looked_in: TRACEFS_EVENT_DIRS.iter().map(PathBuf::from).collect(),
            })?;
        Self::attach_with_events_dir(tids, events_dir)
    }

    /// Like [`attach`](Self::attach), with tracepoint ids taken from
    /// `events_dir` (a tracefs `events` folder, or a copy of part of one,
    /// which is how tests simulate a kernel lacking some tracepoints).
    pub fn attach_with_events_dir(
        tids: &[i32],
        events_dir: &Path,
    ) -> Result<Self, KernelCountsUnavailable> {
        let syscalls_dir = events_dir.join("syscalls");
        if !syscalls_dir.is_dir() {
            return Err(KernelCountsUnavailable::NoSyscallTracepoints { path: syscalls_dir });
        }
        let total_id = read_tracepoint_id(&events_dir.join("raw_syscalls/sys_enter/id"))?
            .ok_or_else(|| KernelCountsUnavailable::NoSyscallTracepoints {
                path: events_dir.join("raw_syscalls/sys_enter"),
            })?;

        let mut kinds = Vec::new();
        let mut kind_ids = Vec::new();
        let mut unavailable = Vec::new();
        for kind in SyscallKind::ALL {
            let path = syscalls_dir.join(format!("sys_enter_{}/id", kind.kernel_name()));
            match read_tracepoint_id(&path)? {
                Some(id) => {
                    kinds.push(kind);
                    kind_ids.push(id);
                }
                None => unavailable.push((kind, path)),
            }
        }

        let mut threads = Vec::with_capacity(tids.len());
        for &tid in tids {
            let leader = open_counter(total_id, tid, None)
                .map_err(|e| classify_open_error(e, "raw_syscalls:sys_enter", tid, &kinds))?;
            let mut members = Vec::with_capacity(kinds.len());
            for (&kind, &id) in kinds.iter().zip(&kind_ids) {
                let tracepoint = format!("syscalls:sys_enter_{}", kind.kernel_name());
                let member = open_counter(id, tid, Some(&leader))
                    .map_err(|e| classify_open_error(e, &tracepoint, tid, &kinds))?;
                members.push(member);
            }
            threads.push(ThreadCounters {
                tid,
                leader,
                members,
            });
        }
        Ok(KernelSyscallCounters {
            threads,
            kinds,
            unavailable,
        })
    }

    pub fn tids(&self) -> Vec<i32> {
        self.threads.iter().map(|t| t.tid).collect()
    }

    /// Kinds this kernel has no tracepoint for, each with the reason.
    pub fn unavailable_kinds(&self) -> Vec<(SyscallKind, String)> {
        self.unavailable
            .iter()
            .map(|(kind, path)| {
                (
                    *kind,
                    format!("tracepoint {} does not exist", path.display()),
                )
            })
            .collect()
    }

    /// Current counts, summed over the watched threads: one `read(2)` per
    /// thread. A thread that has exited keeps its final counts.
    pub fn read(&self) -> io::Result<KernelSyscallCounts> {
        let mut out = KernelSyscallCounts {
            unavailable_kinds: self
                .unavailable
                .iter()
                .map(|(k, _)| k.name().to_string())
                .collect(),
            ..KernelSyscallCounts::default()
        };
        // PERF_FORMAT_GROUP layout: u64 nr, then nr u64 values, leader first
        // and members in the order they joined the group.
        let values = 1 + self.kinds.len();
        let mut buf = vec![0u8; 8 * (1 + values)];
        for thread in &self.threads {
            debug_assert_eq!(thread.members.len(), self.kinds.len());
            // Counted as a `read`, but not as a payload copy: these bytes are
            // the counters, not data a server moves.
            // SAFETY: `buf` is writable for `buf.len()` bytes for the call.
            let n = syscall!(
                Read,
                read(thread.leader.raw(), buf.as_mut_ptr().cast(), buf.len())
            )? as usize;
            let word = |i: usize| {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&buf[8 * i..8 * i + 8]);
                u64::from_ne_bytes(bytes)
            };
            if n != buf.len() || word(0) != values as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "perf group of thread {} returned {n} bytes ({} values), expected {} values",
                        thread.tid,
                        if n >= 8 { word(0) } else { 0 },
                        values
                    ),
                ));
            }
            out.total_syscalls += word(1);
            for (i, kind) in self.kinds.iter().enumerate() {
                out.calls.0[*kind as usize] += word(2 + i);
            }
        }
        Ok(out)
    }
}

/// The numeric id of a tracepoint, or `None` when the kernel lacks it.
pub(super) fn read_tracepoint_id(path: &Path) -> Result<Option<u64>, KernelCountsUnavailable> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse::<u64>().map(Some).map_err(|e| {
            KernelCountsUnavailable::TracefsNotReadable {
                path: path.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            }
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KernelCountsUnavailable::TracefsNotReadable {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Opens one counting (not sampling) counter on tracepoint `id` for
/// thread `tid` on any CPU, enabled at once, in `group`'s group if given.
/// Threads the watched thread creates later are not followed.
fn open_counter(id: u64, tid: i32, group: Option<&Fd>) -> io::Result<Fd> {
    open_event(bindings::PERF_TYPE_TRACEPOINT, id, tid, group, false)
}

/// Opens one counting counter of event `type_`/`config` on task `pid` on
/// any CPU, enabled at once and read with `PERF_FORMAT_GROUP`, in `group`'s
/// group if given; with `inherit`, the threads and children the task
/// creates after this call are counted too (and summed into every read).
pub(super) fn open_event(
    type_: u32,
    config: u64,
    pid: i32,
    group: Option<&Fd>,
    inherit: bool,
) -> io::Result<Fd> {
    let mut attr = bindings::perf_event_attr {
        type_,
        // The full struct, zero past the fields we set: the kernel accepts
        // a larger size than it knows as long as the extra bytes are zero.
        size: std::mem::size_of::<bindings::perf_event_attr>() as u32,
        config,
        read_format: u64::from(bindings::PERF_FORMAT_GROUP),
        ..Default::default()
    };
    // Tracepoints fire in kernel context, and a task's clock runs in the
    // kernel too: excluding the kernel would count nothing or too little.
    attr.set_exclude_kernel(0);
    attr.set_inherit(u64::from(inherit));
    attr.set_disabled(0);
    let group_fd = group.map_or(-1, |leader| leader.raw());
    // SAFETY: `attr` is a fully initialised perf_event_attr whose `size`
    // matches its type, and lives across the call; the other arguments are
    // plain integers. A counting event only counts, it changes nothing in
    // the watched task.
    let raw = syscall!(
        PerfEventOpen,
        syscall(
            libc::SYS_perf_event_open,
            &mut attr as *mut bindings::perf_event_attr,
            pid as libc::pid_t,
            -1 as libc::c_int,
            group_fd as libc::c_int,
            libc::c_ulong::from(bindings::PERF_FLAG_FD_CLOEXEC)
        )
    )?;
    Ok(Fd::from_new(raw as i32))
}

/// Sets a tracepoint counter's filter (`PERF_EVENT_IOC_SET_FILTER`), in
/// the kernel's ftrace filter syntax over the event's fields, e.g.
/// `ret == -11`: from then on the counter counts only the hits that match.
/// Counters a task's threads inherit use the filter of the counter they
/// were inherited from, so one call covers them all. An `Err` means the
/// kernel refused it (a field it does not know, a syntax it does not
/// accept, or no filter support): the counter is then unfiltered and must
/// not be read as filtered.
pub(super) fn set_tracepoint_filter(counter: &Fd, filter: &str) -> io::Result<()> {
    let filter = std::ffi::CString::new(filter).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("tracepoint filter `{filter}` contains a NUL byte"),
        )
    })?;
    // Not through `syscall!`: there is no `ioctl` kind, and adding one
    // would add a column to every report and a kernel counter to every
    // watched thread for a call the measuring process makes once per
    // counter, never on a serving path.
    // SAFETY: `counter` is an open perf event fd; the kernel reads the
    // NUL-terminated string at `filter.as_ptr()`, which lives across the
    // call, and writes nothing into our memory.
    let ret = unsafe {
        libc::ioctl(
            counter.raw(),
            bindings::SET_FILTER as _,
            filter.as_ptr() as *mut libc::c_char,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub(super) fn classify_open_error(
    source: io::Error,
    tracepoint: &str,
    tid: i32,
    kinds: &[SyscallKind],
) -> KernelCountsUnavailable {
    match source.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => KernelCountsUnavailable::NotPermitted {
            paranoid: std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".to_string()),
            source,
        },
        Some(libc::ENOSYS) => KernelCountsUnavailable::PerfEventsUnsupported { source },
        Some(libc::ESRCH) => KernelCountsUnavailable::ThreadNotFound { tid },
        Some(libc::EMFILE) | Some(libc::ENFILE) => KernelCountsUnavailable::TooManyOpenFiles {
            needed: 1 + kinds.len(),
        },
        _ => KernelCountsUnavailable::Open {
            tracepoint: tracepoint.to_string(),
            tid,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_subtracts_and_keeps_unavailable_kinds() {
        let mut early = KernelSyscallCounts::default();
        early.calls.0[SyscallKind::Read as usize] = 10;
        early.total_syscalls = 20;
        let mut late = early.clone();
        late.calls.0[SyscallKind::Read as usize] = 15;
        late.total_syscalls = 31;
        late.unavailable_kinds = vec!["splice".to_string()];
        let window = late.since(&early);
        assert_eq!(window.calls.get(SyscallKind::Read), 5);
        assert_eq!(window.total_syscalls, 11);
        assert!(!window.is_available(SyscallKind::Splice));
        assert!(window.is_available(SyscallKind::Read));
    }

    #[test]
    fn missing_tracefs_is_reported_with_the_mount_command() {
        let dir = tempfile::tempdir().unwrap();
        let err = KernelSyscallCounters::attach_with_events_dir(&[current_tid()], dir.path())
            .unwrap_err();
        assert!(matches!(
            err,
            KernelCountsUnavailable::NoSyscallTracepoints { .. }
        ));
        assert!(err.to_string().contains("CONFIG_FTRACE_SYSCALLS"), "{err}");
        let not_mounted = KernelCountsUnavailable::TracefsNotMounted {
            looked_in: TRACEFS_EVENT_DIRS.iter().map(PathBuf::from).collect(),
        };
        assert!(
            not_mounted
                .to_string()
                .contains("mount -t tracefs nodev /sys/kernel/tracing")
        );
    }

    #[test]
    fn refusals_are_classified_with_their_fix() {
        let kinds = SyscallKind::ALL;
        let refused =
            |errno| classify_open_error(io::Error::from_raw_os_error(errno), "tp", 7, &kinds);
        for errno in [libc::EACCES, libc::EPERM] {
            let err = refused(errno);
            assert!(matches!(err, KernelCountsUnavailable::NotPermitted { .. }));
            let text = err.to_string();
            assert!(text.contains("kernel.perf_event_paranoid = "), "{text}");
            assert!(
                text.contains("sysctl -w kernel.perf_event_paranoid=-1"),
                "{text}"
            );
        }
        assert!(matches!(
            refused(libc::ENOSYS),
            KernelCountsUnavailable::PerfEventsUnsupported { .. }
        ));
        assert_eq!(
            refused(libc::ESRCH).to_string(),
            "thread 7 does not exist (it exited, or the id is wrong)"
        );
        let emfile = refused(libc::EMFILE).to_string();
        assert!(
            emfile.contains(&format!("({} per thread)", kinds.len() + 1)),
            "{emfile}"
        );
        let other = refused(libc::EINVAL).to_string();
        assert!(
            other.starts_with("perf_event_open on tracepoint tp for thread 7 failed"),
            "{other}"
        );
    }

    #[test]
    fn a_thread_that_does_not_exist_is_named() {
        if KernelSyscallCounters::attach(&[current_tid()]).is_err() {
            return; // No perf here; tests/kernel_counts.rs says why.
        }
        // Thread ids are below pid_max (at most 2^22), so this one is free.
        let err = KernelSyscallCounters::attach(&[i32::MAX - 1]).unwrap_err();
        assert!(
            matches!(err, KernelCountsUnavailable::ThreadNotFound { .. }),
            "{err}"
        );
    }

    #[test]
    fn malformed_tracepoint_id_is_an_error_not_a_missing_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        std::fs::write(&path, "not a number\n").unwrap();
        let result = read_tracepoint_id(&path);
        let missing = read_tracepoint_id(&dir.path().join("absent"));
        assert!(matches!(
            result,
            Err(KernelCountsUnavailable::TracefsNotReadable { .. })
        ));
        assert!(matches!(missing, Ok(None)));
    }
}
