//! Shutdown signals, received synchronously by one thread.

use std::io;

use nix::sys::signal::{SigSet, Signal};

use super::counters::{SyscallKind, finish_nix};

fn shutdown_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set
}

/// Blocks SIGINT and SIGTERM in the calling thread and in every thread it
/// spawns afterwards, so that only [`wait_for_shutdown`] receives them.
pub fn block_shutdown_signals() -> io::Result<()> {
    finish_nix(SyscallKind::RtSigprocmask, shutdown_set().thread_block())
}

/// Waits until SIGINT or SIGTERM arrives; returns its name.
pub fn wait_for_shutdown() -> io::Result<&'static str> {
    // glibc's sigwait is rt_sigtimedwait without a timeout.
    let signal = finish_nix(SyscallKind::RtSigtimedwait, shutdown_set().wait())?;
    Ok(signal.as_str())
}

/// Sends SIGTERM to this process, so that [`wait_for_shutdown`] returns.
pub fn request_shutdown() -> io::Result<()> {
    finish_nix(
        SyscallKind::Kill,
        nix::sys::signal::kill(nix::unistd::Pid::this(), Signal::SIGTERM),
    )
}
