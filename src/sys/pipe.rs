//! Pipes for the splice copy strategy.

use std::io;

use super::Fd;

/// A non-blocking pipe: bytes spliced into `write_end` come out of `read_end`.
pub struct Pipe {
    pub read_end: Fd,
    pub write_end: Fd,
    /// The capacity the kernel actually granted, in bytes.
    pub capacity_bytes: usize,
}

impl Pipe {
    /// Creates a pipe and asks for `capacity_bytes` with F_SETPIPE_SZ. The
    /// kernel rounds up to a power-of-two number of pages and refuses sizes
    /// above `fs.pipe-max-size` for unprivileged users; the granted size is
    /// what F_SETPIPE_SZ returns.
    pub fn with_capacity(capacity_bytes: usize) -> io::Result<Pipe> {
        let mut ends = [0 as libc::c_int; 2];
        // SAFETY: `ends` has room for the two descriptors pipe2 writes.
        syscall!(
            Pipe2,
            pipe2(ends.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC)
        )?;
        let read_end = Fd::from_new(ends[0]);
        let write_end = Fd::from_new(ends[1]);
        let requested = capacity_bytes.min(i32::MAX as usize) as libc::c_int;
        // SAFETY: F_SETPIPE_SZ takes an int argument and no pointers.
        let granted = syscall!(Fcntl, fcntl(write_end.raw(), libc::F_SETPIPE_SZ, requested))?;
        Ok(Pipe {
            read_end,
            write_end,
            capacity_bytes: granted as usize,
        })
    }
}
