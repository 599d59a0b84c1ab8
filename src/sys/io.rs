//! The data-moving calls: read, readv, write, writev, splice.
//!
//! read- and write-family calls copy bytes across the user/kernel boundary
//! and are tallied as user-space copies; splice moves pages inside the
//! kernel and is not.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd};

/// The kernel's limit on iovecs per readv/writev call.
pub const IOV_MAX: usize = libc::UIO_MAXIOV as usize;

pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for `buf.len()` bytes for the whole call.
    let n = syscall!(
        Read,
        read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
    )? as usize;
    super::counters::copied_in(n);
    Ok(n)
}

pub fn readv(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(IOV_MAX) as i32;
    // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` on Unix (std
    // guarantees it), and each one points at writable memory borrowed for
    // the call.
    let n = syscall!(
        Readv,
        readv(fd.as_raw_fd(), bufs.as_mut_ptr().cast(), count)
    )? as usize;
    super::counters::copied_in(n);
    Ok(n)
}

pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is readable for `buf.len()` bytes for the whole call.
    let n = syscall!(Write, write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()))? as usize;
    super::counters::copied_out(n);
    Ok(n)
}

pub fn writev(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(IOV_MAX) as i32;
    // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix, and each one
    // points at readable memory borrowed for the call.
    let n = syscall!(Writev, writev(fd.as_raw_fd(), bufs.as_ptr().cast(), count))? as usize;
    super::counters::copied_out(n);
    Ok(n)
}

/// Moves up to `len` bytes from `from` to `to` inside the kernel, without
/// blocking on either end. One of the two must be a pipe.
pub fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: null offsets mean "use and advance the file position", which
    // pipes and sockets require; no other pointers are passed.
    let n = syscall!(
        Splice,
        splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            flags
        )
    )?;
    Ok(n as usize)
}
