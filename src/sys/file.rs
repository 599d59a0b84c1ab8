//! The served file of the file protocol: creating it, and the calls that
//! move its bytes (`pread64`, `sendfile`, `splice` from it at an offset,
//! and a read-only mapping with `mmap`/`munmap`).
//!
//! `pread64` copies file bytes into user memory and is tallied as a
//! user-space copy in; `sendfile` and `splice` move pages inside the kernel
//! and are not tallied. A write from the mapping is a plain write-family
//! call and is tallied there.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use super::Fd;

/// An unnamed temporary file in `$TMPDIR` (the tempfile crate opens it with
/// `O_TMPFILE` or unlinks it at once, so it disappears with its last
/// descriptor, even if the process is killed), `len` bytes long, filled by
/// `fill(offset, chunk)`.
pub fn create_filled(len: u64, fill: impl Fn(u64, &mut [u8])) -> io::Result<Fd> {
    const CHUNK_BYTES: usize = 1 << 20;
    let fd = Fd::from(std::os::fd::OwnedFd::from(tempfile::tempfile()?));
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let mut offset = 0u64;
    while offset < len {
        let n = (len - offset).min(CHUNK_BYTES as u64) as usize;
        fill(offset, &mut chunk[..n]);
        let mut written = 0;
        while written < n {
            written += pwrite(fd.as_fd(), &chunk[written..n], offset + written as u64)?;
        }
        offset += n as u64;
    }
    Ok(fd)
}

fn pwrite(fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
    let offset = file_offset(offset)?;
    // SAFETY: `buf` is readable for `buf.len()` bytes for the whole call.
    let n = syscall!(
        Pwrite64,
        pwrite64(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), offset)
    )?;
    Ok(n as usize)
}

fn file_offset(offset: u64) -> io::Result<libc::off64_t> {
    libc::off64_t::try_from(offset).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("file offset {offset} is beyond what the kernel takes"),
        )
    })
}

/// Reads up to `buf.len()` bytes of `file` at `offset` into `buf`, leaving
/// the file position alone (so every connection shares one descriptor).
pub fn pread(file: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let offset = file_offset(offset)?;
    // SAFETY: `buf` is writable for `buf.len()` bytes for the whole call.
    let n = syscall!(
        Pread64,
        pread64(file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), offset)
    )? as usize;
    super::counters::copied_in(n);
    Ok(n)
}

/// Sends up to `len` bytes of `file` from `offset` to the socket `to`
/// inside the kernel. The socket is non-blocking, so a full send buffer
/// gives a short count or `EAGAIN`; the file position is left alone.
pub fn sendfile(
    to: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: u64,
    len: usize,
) -> io::Result<usize> {
    let mut offset = file_offset(offset)?;
    // SAFETY: `offset` is a valid `off64_t` the kernel updates for the call;
    // no other pointer is passed.
    let n = syscall!(
        Sendfile,
        sendfile64(to.as_raw_fd(), file.as_raw_fd(), &mut offset, len)
    )?;
    Ok(n as usize)
}

/// Moves up to `len` bytes of `file` from `offset` into the pipe `to`
/// inside the kernel (page references, no copy), without blocking on the
/// pipe; the file position is left alone.
pub fn splice_from_file(
    file: BorrowedFd<'_>,
    offset: u64,
    to: BorrowedFd<'_>,
    len: usize,
) -> io::Result<usize> {
    let mut offset = file_offset(offset)?;
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: `offset` is a valid `loff_t` the kernel reads and updates for
    // the call (a regular file takes an explicit offset); the output offset
    // is null, as a pipe requires.
    let n = syscall!(
        Splice,
        splice(
            file.as_raw_fd(),
            &mut offset,
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            flags
        )
    )?;
    Ok(n as usize)
}

/// A whole file mapped read-only and shared, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only memory owned by this value alone; reading
// it from several threads at once is as sound as sharing a `&[u8]`.
unsafe impl Send for Mapping {}
// SAFETY: as above: nothing mutates the mapped bytes through this type.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `file` (`len > 0`). The file must not
    /// shrink while mapped (a read past its end would be `SIGBUS`): the
    /// served file is an unnamed temporary file nothing else can open, and
    /// it is never truncated or written after it is mapped.
    pub fn map(file: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map an empty file",
            ));
        }
        // SAFETY: a fresh mapping at an address the kernel picks (null
        // hint) touches no existing memory; `file` is open for the call.
        let ptr = syscall!(
            Mmap,
            mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0
            )
        )?;
        Ok(Mapping {
            ptr: ptr as *mut libc::c_void,
            len,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is a live PROT_READ mapping of `len` bytes until
        // `drop`, which needs `&mut self` and so cannot run while this
        // borrow lives; the file behind it is never shrunk (see `map`).
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, unmapped once;
        // no borrow of the bytes outlives `self`.
        let _ = syscall!(Munmap, munmap(self.ptr, self.len));
    }
}
