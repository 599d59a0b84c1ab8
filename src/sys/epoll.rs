//! epoll: create, register, wait.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use super::Fd;

pub use libc::epoll_event as Event;

pub const IN: u32 = libc::EPOLLIN as u32;
pub const OUT: u32 = libc::EPOLLOUT as u32;
pub const RDHUP: u32 = libc::EPOLLRDHUP as u32;
pub const HUP: u32 = libc::EPOLLHUP as u32;
pub const ERR: u32 = libc::EPOLLERR as u32;
pub const ET: u32 = libc::EPOLLET as u32;

pub struct Epoll {
    fd: Fd,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers.
        let raw = syscall!(EpollCreate1, epoll_create1(libc::EPOLL_CLOEXEC))?;
        Ok(Epoll {
            fd: Fd::from_new(raw as RawFd),
        })
    }

    pub fn add(&self, fd: BorrowedFd<'_>, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    pub fn modify(&self, fd: BorrowedFd<'_>, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    fn ctl(&self, op: i32, fd: BorrowedFd<'_>, events: u32, token: u64) -> io::Result<()> {
        let mut event = Event { events, u64: token };
        // SAFETY: `event` is a valid epoll_event that outlives the call.
        syscall!(
            EpollCtl,
            epoll_ctl(self.fd.raw(), op, fd.as_raw_fd(), &mut event)
        )
        .map(|_| ())
    }

    /// Waits for events, filling `events` from the start; returns how many.
    /// `timeout_ms` of -1 waits forever. An interrupted wait returns 0.
    pub fn wait(&self, events: &mut [Event], timeout_ms: i32) -> io::Result<usize> {
        let capacity = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: `events` is writable for `capacity` entries; a null sigmask
        // makes epoll_pwait behave exactly like epoll_wait.
        let ret = syscall!(
            EpollWait,
            epoll_pwait(
                self.fd.raw(),
                events.as_mut_ptr(),
                capacity,
                timeout_ms,
                std::ptr::null()
            )
        );
        match ret {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Like [`Epoll::wait`] with a nanosecond-resolution timeout (`None`
    /// waits forever), so an open-loop driver can wake at a request's
    /// intended send time instead of up to a millisecond late. Uses
    /// `epoll_pwait2` (Linux 5.11+) and falls back to rounding the timeout
    /// up to whole milliseconds where the kernel lacks it.
    pub fn wait_precise(
        &self,
        events: &mut [Event],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let capacity = events.len().min(i32::MAX as usize) as i32;
        let spec = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let spec_ptr = spec
            .as_ref()
            .map_or(std::ptr::null(), |s| s as *const libc::timespec);
        // SAFETY: `events` is writable for `capacity` entries, `spec_ptr` is
        // null or points at `spec`, which outlives the call; a null sigmask
        // leaves the signal mask alone.
        let ret = syscall!(
            EpollPwait2,
            epoll_pwait2(
                self.fd.raw(),
                events.as_mut_ptr(),
                capacity,
                spec_ptr,
                std::ptr::null()
            )
        );
        match ret {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                let timeout_ms = match timeout {
                    None => -1,
                    Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
                };
                self.wait(events, timeout_ms)
            }
            Err(e) => Err(e),
        }
    }
}

/// An all-zero event array for [`Epoll::wait`].
pub fn event_buffer(len: usize) -> Vec<Event> {
    vec![Event { events: 0, u64: 0 }; len]
}
