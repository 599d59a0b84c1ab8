//! Tying a worker process's life to its parent's: a `serve --processes P`
//! worker must not outlive the process the driver talks to, or a crashed
//! parent would leave servers holding the port and thousands of sockets.

use std::io;

/// Asks the kernel to SIGKILL this process when the thread that forked it
/// exits (`PR_SET_PDEATHSIG`). SIGKILL rather than SIGTERM: once the
/// parent is gone nobody reads the worker's report, so a graceful flush
/// would only delay the release of its sockets.
///
/// The parent may have died before this call, which the kernel does not
/// report; the caller closes that gap by also exiting when its stdin (a
/// pipe from the parent) reaches end of file.
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number as its one argument;
    // the rest are unused and passed as zero.
    syscall!(
        Prctl,
        prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong
        )
    )?;
    Ok(())
}
