//! An owned file descriptor whose `close` is counted.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

/// Like `OwnedFd`, but closing goes through the counting wrapper so that a
/// connection's `close` shows up in the syscall counts.
#[derive(Debug)]
pub struct Fd(RawFd);

impl Fd {
    /// Takes ownership of `raw`.
    ///
    /// Only the wrappers in `src/sys` create `Fd`s, each straight from the
    /// syscall that returned the descriptor, so nothing else owns it.
    pub(crate) fn from_new(raw: RawFd) -> Fd {
        debug_assert!(raw >= 0);
        Fd(raw)
    }

    pub fn raw(&self) -> RawFd {
        self.0
    }
}

impl From<OwnedFd> for Fd {
    fn from(owned: OwnedFd) -> Fd {
        Fd(owned.into_raw_fd())
    }
}

impl From<Fd> for OwnedFd {
    fn from(fd: Fd) -> OwnedFd {
        let raw = fd.0;
        std::mem::forget(fd);
        // SAFETY: `fd` owned `raw` exclusively and was forgotten above, so
        // ownership moves to the `OwnedFd` and it is closed exactly once.
        unsafe { OwnedFd::from_raw_fd(raw) }
    }
}

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl AsFd for Fd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `self.0` stays open for as long as `self` is borrowed.
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // Errors from close (e.g. EINTR after the fd is already released) leave
        // nothing to retry, as close(2) explains.
        let _: io::Result<i64> = syscall!(Close, close(self.0));
    }
}
