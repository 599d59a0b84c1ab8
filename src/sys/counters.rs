//! Per-thread syscall accounting.
//!
//! Every wrapper in `src/sys` reports here, so this is the single place where
//! syscalls are counted. Counters are plain thread-local cells: a serving
//! thread only ever touches its own, so the hot path pays no atomic or lock.
//! Another thread reads them only through a [`SyscallCounts`] snapshot that
//! the owning thread hands over (see `server::control`).

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

/// One kind of syscall the servers make. [`SyscallKind::name`] is what
/// reports show; [`SyscallKind::kernel_name`] is the kernel's own name
/// (`syscalls:sys_enter_<name>`), so in-process and kernel counts line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SyscallKind {
    EpollWait,
    EpollCtl,
    EpollCreate1,
    // The io_uring backend's calls (`sys::uring`): ring set-up, the one
    // submit-and-wait per loop turn, and probing the kernel's opcodes.
    IoUringSetup,
    IoUringEnter,
    IoUringRegister,
    Read,
    Readv,
    Write,
    Writev,
    Splice,
    /// The vmsplice strategy's calls (`sys::vmsplice`): user pages into
    /// the pipe, and the fresh mappings it takes them from.
    Vmsplice,
    /// The file protocol's served file (`sys::file`): reading it into a
    /// buffer, filling it at start-up, sending it, and mapping it.
    Pread64,
    Pwrite64,
    Sendfile,
    Mmap,
    Munmap,
    /// `MSG_ZEROCOPY` sends, and the reaping of their completions from the
    /// socket's error queue (`sys::zerocopy`).
    Sendmsg,
    Recvmsg,
    Accept4,
    Close,
    Shutdown,
    Pipe2,
    Fcntl,
    Socket,
    Setsockopt,
    Bind,
    Listen,
    Getsockname,
    Getrusage,
    Eventfd2,
    Prlimit64,
    Gettid,
    SchedSetaffinity,
    /// Opening kernel-side counters (`sys::perf`); never on a serving path.
    PerfEventOpen,
    // The driver's calls (never made by a serving thread).
    Connect,
    Getsockopt,
    EpollPwait2,
    // Shutdown signals (`sys::signal`), made by a server's main thread
    // only, never by a serving thread.
    RtSigprocmask,
    RtSigtimedwait,
    Kill,
    /// `PR_SET_PDEATHSIG` in a worker process of `serve --processes`, once
    /// at start (`sys::parent`).
    Prctl,
}

pub const KIND_COUNT: usize = 42;

impl SyscallKind {
    pub const ALL: [SyscallKind; KIND_COUNT] = [
        SyscallKind::EpollWait,
        SyscallKind::EpollCtl,
        SyscallKind::EpollCreate1,
        SyscallKind::IoUringSetup,
        SyscallKind::IoUringEnter,
        SyscallKind::IoUringRegister,
        SyscallKind::Read,
        SyscallKind::Readv,
        SyscallKind::Write,
        SyscallKind::Writev,
        SyscallKind::Splice,
        SyscallKind::Vmsplice,
        SyscallKind::Pread64,
        SyscallKind::Pwrite64,
        SyscallKind::Sendfile,
        SyscallKind::Mmap,
        SyscallKind::Munmap,
        SyscallKind::Sendmsg,
        SyscallKind::Recvmsg,
        SyscallKind::Accept4,
        SyscallKind::Close,
        SyscallKind::Shutdown,
        SyscallKind::Pipe2,
        SyscallKind::Fcntl,
        SyscallKind::Socket,
        SyscallKind::Setsockopt,
        SyscallKind::Bind,
        SyscallKind::Listen,
        SyscallKind::Getsockname,
        SyscallKind::Getrusage,
        SyscallKind::Eventfd2,
        SyscallKind::Prlimit64,
        SyscallKind::Gettid,
        SyscallKind::SchedSetaffinity,
        SyscallKind::PerfEventOpen,
        SyscallKind::Connect,
        SyscallKind::Getsockopt,
        SyscallKind::EpollPwait2,
        SyscallKind::RtSigprocmask,
        SyscallKind::RtSigtimedwait,
        SyscallKind::Kill,
        SyscallKind::Prctl,
    ];

    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            SyscallKind::EpollWait => "epoll_wait",
            SyscallKind::EpollCtl => "epoll_ctl",
            SyscallKind::EpollCreate1 => "epoll_create1",
            SyscallKind::IoUringSetup => "io_uring_setup",
            SyscallKind::IoUringEnter => "io_uring_enter",
            SyscallKind::IoUringRegister => "io_uring_register",
            SyscallKind::Read => "read",
            SyscallKind::Readv => "readv",
            SyscallKind::Write => "write",
            SyscallKind::Writev => "writev",
            SyscallKind::Splice => "splice",
            SyscallKind::Vmsplice => "vmsplice",
            SyscallKind::Pread64 => "pread64",
            SyscallKind::Pwrite64 => "pwrite64",
            SyscallKind::Sendfile => "sendfile",
            SyscallKind::Mmap => "mmap",
            SyscallKind::Munmap => "munmap",
            SyscallKind::Sendmsg => "sendmsg",
            SyscallKind::Recvmsg => "recvmsg",
            SyscallKind::Accept4 => "accept4",
            SyscallKind::Close => "close",
            SyscallKind::Shutdown => "shutdown",
            SyscallKind::Pipe2 => "pipe2",
            SyscallKind::Fcntl => "fcntl",
            SyscallKind::Socket => "socket",
            SyscallKind::Setsockopt => "setsockopt",
            SyscallKind::Bind => "bind",
            SyscallKind::Listen => "listen",
            SyscallKind::Getsockname => "getsockname",
            SyscallKind::Getrusage => "getrusage",
            SyscallKind::Eventfd2 => "eventfd2",
            SyscallKind::Prlimit64 => "prlimit64",
            SyscallKind::Gettid => "gettid",
            SyscallKind::SchedSetaffinity => "sched_setaffinity",
            SyscallKind::PerfEventOpen => "perf_event_open",
            SyscallKind::Connect => "connect",
            SyscallKind::Getsockopt => "getsockopt",
            SyscallKind::EpollPwait2 => "epoll_pwait2",
            SyscallKind::RtSigprocmask => "rt_sigprocmask",
            SyscallKind::RtSigtimedwait => "rt_sigtimedwait",
            SyscallKind::Kill => "kill",
            SyscallKind::Prctl => "prctl",
        }
    }

    /// The syscall the kernel sees. `epoll_wait` is issued as `epoll_pwait`
    /// with no signal mask (see `sys::epoll`) because aarch64 has no plain
    /// `epoll_wait`; the two behave identically here. libc's `sendfile64`
    /// is the kernel's `sendfile64` (64-bit offsets; `sendfile` is its
    /// 32-bit-offset sibling).
    pub fn kernel_name(self) -> &'static str {
        match self {
            SyscallKind::EpollWait => "epoll_pwait",
            SyscallKind::Sendfile => "sendfile64",
            other => other.name(),
        }
    }

    pub fn from_name(name: &str) -> Option<SyscallKind> {
        SyscallKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Calls that move bytes between a socket and user memory (or a pipe).
    pub fn is_read_family(self) -> bool {
        matches!(self, SyscallKind::Read | SyscallKind::Readv)
    }

    pub fn is_write_family(self) -> bool {
        matches!(self, SyscallKind::Write | SyscallKind::Writev)
    }
}

/// Counts indexed by [`SyscallKind`], serialised as a map from the kernel's
/// syscall name to the count, in a fixed order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindCounts(pub [u64; KIND_COUNT]);

// By hand: the standard library derives `Default` for arrays of up to 32.
impl Default for KindCounts {
    fn default() -> KindCounts {
        KindCounts([0; KIND_COUNT])
    }
}

impl KindCounts {
    pub fn get(&self, kind: SyscallKind) -> u64 {
        self.0[kind as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    pub fn add(&mut self, other: &KindCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// `self - earlier`, for a measured window between two snapshots.
    pub fn since(&self, earlier: &KindCounts) -> KindCounts {
        let mut out = KindCounts::default();
        for (i, slot) in out.0.iter_mut().enumerate() {
            *slot = self.0[i].saturating_sub(earlier.0[i]);
        }
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = (SyscallKind, u64)> + '_ {
        SyscallKind::ALL.into_iter().map(|k| (k, self.get(k)))
    }
}

/// A map from kind name to count, zero counts left out: most kinds are
/// zero in most windows, and a missing kind reads back as zero.
impl Serialize for KindCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let nonzero: Vec<(SyscallKind, u64)> =
            self.iter().filter(|(_, count)| *count != 0).collect();
        let mut map = serializer.serialize_map(Some(nonzero.len()))?;
        for (kind, count) in nonzero {
            map.serialize_entry(kind.name(), &count)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for KindCounts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, u64>::deserialize(deserializer)?;
        let mut out = KindCounts::default();
        for (name, count) in map {
            let kind = SyscallKind::from_name(&name).ok_or_else(|| {
                serde::de::Error::custom(format!("unknown syscall kind `{name}`"))
            })?;
            out.0[kind as usize] = count;
        }
        Ok(out)
    }
}

/// What one thread's counters held at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallCounts {
    /// Calls issued, by kind (successful or not).
    pub calls: KindCounts,
    /// Calls that returned `EAGAIN`, by kind.
    pub eagain: KindCounts,
    /// Bytes copied from the kernel into user memory by read-family calls.
    pub user_copy_bytes_in: u64,
    /// Bytes copied from user memory into the kernel by write-family calls.
    pub user_copy_bytes_out: u64,
}

impl SyscallCounts {
    pub fn add(&mut self, other: &SyscallCounts) {
        self.calls.add(&other.calls);
        self.eagain.add(&other.eagain);
        self.user_copy_bytes_in += other.user_copy_bytes_in;
        self.user_copy_bytes_out += other.user_copy_bytes_out;
    }

    pub fn since(&self, earlier: &SyscallCounts) -> SyscallCounts {
        SyscallCounts {
            calls: self.calls.since(&earlier.calls),
            eagain: self.eagain.since(&earlier.eagain),
            user_copy_bytes_in: self
                .user_copy_bytes_in
                .saturating_sub(earlier.user_copy_bytes_in),
            user_copy_bytes_out: self
                .user_copy_bytes_out
                .saturating_sub(earlier.user_copy_bytes_out),
        }
    }
}

struct ThreadCounters {
    calls: [Cell<u64>; KIND_COUNT],
    eagain: [Cell<u64>; KIND_COUNT],
    user_copy_bytes_in: Cell<u64>,
    user_copy_bytes_out: Cell<u64>,
}

thread_local! {
    static COUNTERS: ThreadCounters = const {
        ThreadCounters {
            calls: [const { Cell::new(0) }; KIND_COUNT],
            eagain: [const { Cell::new(0) }; KIND_COUNT],
            user_copy_bytes_in: Cell::new(0),
            user_copy_bytes_out: Cell::new(0),
        }
    };
}

/// Whether this build counts syscalls (the `count-syscalls` feature).
pub const COUNTING_ENABLED: bool = cfg!(feature = "count-syscalls");

/// The run-time switch (`serve --no-syscall-counting`), so that one binary
/// can measure what counting costs. Set once, before any serving thread
/// starts, and only read afterwards: a relaxed load of a static that never
/// changes is a plain load from a cache line every core keeps shared, and
/// the branch on it is always predicted, next to a syscall of ~100 ns or
/// more.
static COUNTING_SWITCHED_ON: AtomicBool = AtomicBool::new(true);

/// Turns in-process counting on or off for every thread of the process.
/// Meant for start-up: a window that spans a change counts part of its
/// calls.
pub fn set_counting(on: bool) {
    COUNTING_SWITCHED_ON.store(on, Ordering::Relaxed);
}

/// Whether syscalls are being counted: built in and switched on.
#[inline(always)]
pub fn counting() -> bool {
    COUNTING_ENABLED && COUNTING_SWITCHED_ON.load(Ordering::Relaxed)
}

#[inline(always)]
fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get().wrapping_add(by));
}

/// Records one finished call and turns its raw return value into a result.
/// Every syscall wrapper ends here.
#[inline(always)]
pub(crate) fn finish(kind: SyscallKind, ret: i64) -> io::Result<i64> {
    if ret < 0 {
        let err = io::Error::last_os_error();
        if counting() {
            let would_block = err.raw_os_error() == Some(libc::EAGAIN);
            COUNTERS.with(|c| {
                bump(&c.calls[kind as usize], 1);
                if would_block {
                    bump(&c.eagain[kind as usize], 1);
                }
            });
        }
        Err(err)
    } else {
        if counting() {
            COUNTERS.with(|c| bump(&c.calls[kind as usize], 1));
        }
        Ok(ret)
    }
}

/// Records a call the `io-uring` crate made (`sys::uring`): the crate
/// issues the raw syscall itself and hands back its result, exactly one
/// call per crate function used there.
pub(crate) fn finish_io<T>(kind: SyscallKind, result: io::Result<T>) -> io::Result<T> {
    if counting() {
        COUNTERS.with(|c| {
            bump(&c.calls[kind as usize], 1);
            if matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EAGAIN)) {
                bump(&c.eagain[kind as usize], 1);
            }
        });
    }
    result
}

/// Records a call made through `nix` rather than `libc`.
pub(crate) fn finish_nix<T>(kind: SyscallKind, result: nix::Result<T>) -> io::Result<T> {
    if counting() {
        COUNTERS.with(|c| {
            bump(&c.calls[kind as usize], 1);
            if matches!(result, Err(nix::errno::Errno::EAGAIN)) {
                bump(&c.eagain[kind as usize], 1);
            }
        });
    }
    result.map_err(io::Error::from)
}

#[inline(always)]
pub(crate) fn copied_in(bytes: usize) {
    if counting() {
        COUNTERS.with(|c| bump(&c.user_copy_bytes_in, bytes as u64));
    }
}

#[inline(always)]
pub(crate) fn copied_out(bytes: usize) {
    if counting() {
        COUNTERS.with(|c| bump(&c.user_copy_bytes_out, bytes as u64));
    }
}

/// The calling thread's counters right now.
pub fn snapshot() -> SyscallCounts {
    COUNTERS.with(|c| {
        let mut out = SyscallCounts::default();
        for i in 0..KIND_COUNT {
            out.calls.0[i] = c.calls[i].get();
            out.eagain.0[i] = c.eagain[i].get();
        }
        out.user_copy_bytes_in = c.user_copy_bytes_in.get();
        out.user_copy_bytes_out = c.user_copy_bytes_out.get();
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<_> = SyscallKind::ALL.iter().map(|k| k.name()).collect();
        for kind in SyscallKind::ALL {
            assert_eq!(SyscallKind::from_name(kind.name()), Some(kind));
            assert_eq!(SyscallKind::ALL[kind as usize], kind);
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KIND_COUNT);
    }

    #[test]
    fn kind_counts_serialise_as_named_map_without_zeros() {
        let mut counts = KindCounts::default();
        counts.0[SyscallKind::Splice as usize] = 7;
        let json = serde_json::to_value(counts).unwrap();
        assert_eq!(json["splice"], 7);
        // Zero counts are left out, and read back as zero.
        assert_eq!(json.as_object().unwrap().len(), 1, "{json}");
        let back: KindCounts = serde_json::from_value(json).unwrap();
        assert_eq!(back, counts);
        let bad: Result<KindCounts, _> = serde_json::from_str(r#"{"nosuchcall": 1}"#);
        assert!(bad.unwrap_err().to_string().contains("nosuchcall"));
    }

    #[cfg(feature = "count-syscalls")]
    #[test]
    fn finish_counts_calls_and_eagain_per_thread() {
        let before = snapshot();
        let _ = finish(SyscallKind::Read, 5);
        nix::errno::Errno::EAGAIN.set();
        let _ = finish(SyscallKind::Read, -1);
        let delta = snapshot().since(&before);
        assert_eq!(delta.calls.get(SyscallKind::Read), 2);
        assert_eq!(delta.eagain.get(SyscallKind::Read), 1);
        let other = std::thread::spawn(snapshot).join().unwrap();
        assert_eq!(other.calls.total(), 0);
    }
}
