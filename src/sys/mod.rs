//! The one choke point between epoll-bench's servers and the kernel.
//!
//! Every syscall a serving thread makes goes through [`syscall!`] (for calls
//! made with `libc`), [`counters::finish_nix`] (for calls made with `nix`)
//! or `counters::finish_io` (for calls the `io-uring` crate makes, in
//! [`uring`]), and so through [`counters`], where it is counted. All `unsafe` code of the
//! crate lives in this folder; each block says why it is sound.

#[cfg(not(target_os = "linux"))]
compile_error!("epoll-bench measures Linux's epoll and splice: it builds on Linux only.");

/// Calls `libc::$fn(args)`, counts it as `$kind`, and maps `-1` to the
/// thread's `errno` as an `io::Error`. Callers state why the arguments are
/// valid in a `SAFETY:` comment at the call site.
macro_rules! syscall {
    ($kind:ident, $fn:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe, clippy::macro_metavars_in_unsafe)]
        // SAFETY: the call site documents the validity of every argument.
        let ret = unsafe { libc::$fn($($arg),*) };
        $crate::sys::counters::finish($crate::sys::counters::SyscallKind::$kind, ret as i64)
    }};
}

pub mod client;
pub mod counters;
pub mod cpus;
pub mod epoll;
pub mod eventfd;
pub mod fd;
pub mod file;
pub mod io;
pub mod memory;
pub mod parent;
pub mod perf;
pub mod perf_record;
pub mod pipe;
pub mod process;
pub mod process_counters;
pub mod rlimit;
pub mod rusage;
pub mod signal;
pub mod socket;
pub mod thread;
pub mod uring;
pub mod uring_ops;
pub mod vmsplice;
pub mod zerocopy;

pub use counters::{KindCounts, SyscallCounts, SyscallKind};
pub use fd::Fd;
