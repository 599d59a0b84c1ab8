//! eventfd: how other threads wake a serving thread's `epoll_wait`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, RawFd};

use super::Fd;

pub struct EventFd {
    fd: Fd,
}

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers.
        let raw = syscall!(Eventfd2, eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?;
        Ok(EventFd {
            fd: Fd::from_new(raw as RawFd),
        })
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Makes the descriptor readable. Called from non-serving threads, so it
    /// lands in their (unreported) counters, not the server's.
    pub fn wake(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one`, which outlives the call.
        match syscall!(Write, write(self.fd.raw(), (&one as *const u64).cast(), 8)) {
            Ok(_) => Ok(()),
            // The counter is saturated: the reader has a wake-up pending anyway.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Resets the descriptor to not readable.
    pub fn drain(&self) -> io::Result<()> {
        let mut value: u64 = 0;
        // SAFETY: reads at most 8 bytes into `value`, which outlives the call.
        match syscall!(
            Read,
            read(self.fd.raw(), (&mut value as *mut u64).cast(), 8)
        ) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}
