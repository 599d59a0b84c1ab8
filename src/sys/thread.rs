//! Thread identity, for attaching kernel-side counters to serving threads.

/// The kernel thread id of the calling thread.
pub fn current_tid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = syscall!(Gettid, gettid()).unwrap_or(0);
    tid as i32
}

/// Restricts the calling thread (and threads it spawns later) to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for &cpu in cpus {
        set.set(cpu).map_err(std::io::Error::from)?;
    }
    super::counters::finish_nix(
        super::counters::SyscallKind::SchedSetaffinity,
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set),
    )
}
