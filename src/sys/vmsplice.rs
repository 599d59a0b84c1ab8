//! `vmsplice(2)` and the anonymous mappings the vmsplice copy strategy
//! feeds it from.
//!
//! vmsplice without `SPLICE_F_GIFT` puts references to the caller's pages
//! into the pipe, not a copy of their bytes; splicing the pipe on into a
//! TCP socket hands the same pages to the socket's buffers, and on loopback
//! to the receiver's queue, until the peer reads them. So bytes handed to
//! [`vmsplice`] must never be written again, whatever the pipe's state
//! (`server::copy::vmsplice` explains the scheme that guarantees it).
//! [`Mapping`] is the memory that makes this cheap to honour: it is mapped
//! fresh and never reused, and unmapping it ([`Drop`]) only drops the
//! process's reference, so the kernel keeps every page still in a pipe or
//! a socket alive, with the bytes they had.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

/// A private anonymous read-write mapping, unmapped on drop. Its pages
/// are zero until written.
pub struct Mapping {
    start: NonNull<u8>,
    len_bytes: usize,
}

// SAFETY: the mapping is plain memory owned by this value alone; moving
// the owner to another thread moves all access with it.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `len_bytes` (a multiple of the page size, not zero) with one
    /// counted `mmap`.
    pub fn new(len_bytes: usize) -> io::Result<Mapping> {
        if len_bytes == 0 || !len_bytes.is_multiple_of(page_size_bytes()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "mapping of {len_bytes} bytes: not a positive multiple of the {}-byte page",
                    page_size_bytes()
                ),
            ));
        }
        // SAFETY: a null hint and no file: the kernel picks a fresh range of
        // `len_bytes` that overlaps nothing the process uses.
        let addr = syscall!(
            Mmap,
            mmap(
                std::ptr::null_mut(),
                len_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0
            )
        )?;
        let start = NonNull::new(addr as usize as *mut u8)
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Mapping { start, len_bytes })
    }

    pub fn len_bytes(&self) -> usize {
        self.len_bytes
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the range is mapped readable for as long as `self` lives,
        // and shared borrows of `self` exclude `bytes_mut`.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len_bytes) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the range is mapped writable for as long as `self` lives,
        // and `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len_bytes) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the range `new` mapped, unmapped once; no borrow
        // of it outlives `self`. Pages the kernel still references (in a
        // pipe or a socket buffer) stay alive until it drops them.
        let _ = syscall!(Munmap, munmap(self.start.as_ptr().cast(), self.len_bytes));
    }
}

/// The kernel's page size (no syscall: glibc has it from the auxiliary
/// vector).
pub fn page_size_bytes() -> usize {
    // SAFETY: sysconf takes no pointers.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// Hands the pages behind `bufs` to the pipe `pipe_write` (no copy, no
/// `SPLICE_F_GIFT`); returns how many bytes the pipe took, which may be
/// fewer than asked when it runs out of slots. The caller must never write
/// those bytes again (see the module doc): that is a rule of correctness,
/// not of memory safety, and the caller's scheme keeps it.
pub fn vmsplice(pipe_write: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(super::io::IOV_MAX);
    // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix, and each
    // one points at memory borrowed readable for the call; vmsplice only
    // reads it (and takes page references, which outlive the borrow
    // safely: the kernel never writes through them).
    let n = syscall!(
        Vmsplice,
        vmsplice(
            pipe_write.as_raw_fd(),
            bufs.as_ptr().cast(),
            count,
            libc::SPLICE_F_NONBLOCK
        )
    )?;
    Ok(n as usize)
}
