//! Open-file limits: the server raises its own, tests lower a server's.

use std::io;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use super::counters::{SyscallKind, finish_nix};

// glibc issues getrlimit and setrlimit as prlimit64 on the calling process,
// so they are counted as that kind, as the kernel's tracepoints see them.

/// `(soft, hard)` RLIMIT_NOFILE of this process.
pub fn nofile() -> io::Result<(u64, u64)> {
    finish_nix(SyscallKind::Prlimit64, getrlimit(Resource::RLIMIT_NOFILE))
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns the
/// new soft limit.
pub fn raise_nofile_to_hard() -> io::Result<u64> {
    let (soft, hard) = nofile()?;
    if soft < hard {
        finish_nix(
            SyscallKind::Prlimit64,
            setrlimit(Resource::RLIMIT_NOFILE, hard, hard),
        )?;
    }
    Ok(hard)
}

/// Lowers this process's RLIMIT_NOFILE, soft and hard, to `limit` (no
/// more than either is now); children inherit it. Lowering the hard limit
/// cannot be undone without CAP_SYS_RESOURCE: tests use it in a process of
/// their own to stand for a machine with a small limit.
pub fn lower_nofile(limit: u64) -> io::Result<()> {
    let (soft, hard) = nofile()?;
    finish_nix(
        SyscallKind::Prlimit64,
        setrlimit(Resource::RLIMIT_NOFILE, limit.min(soft), limit.min(hard)),
    )
}

/// Sets the soft RLIMIT_NOFILE of another process (`prlimit(2)`), keeping
/// its hard limit. Used to provoke EMFILE in a running server.
pub fn set_process_nofile_soft(pid: u32, soft: u64) -> io::Result<()> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a null new-limit pointer only reads the limit into `old`.
    syscall!(
        Prlimit64,
        prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            std::ptr::null(),
            &mut old
        )
    )?;
    let new = libc::rlimit {
        rlim_cur: soft.min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    // SAFETY: `new` is a valid rlimit that outlives the call.
    syscall!(
        Prlimit64,
        prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &new,
            std::ptr::null_mut()
        )
    )?;
    Ok(())
}
