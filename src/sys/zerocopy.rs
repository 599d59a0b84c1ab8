//! `MSG_ZEROCOPY` sends and their completions (Linux 4.14+, see the
//! kernel's `Documentation/networking/msg_zerocopy.rst`).
//!
//! A zerocopy `sendmsg` pins the pages of the user buffers instead of
//! copying them into the socket. The kernel numbers every successful
//! zerocopy send of a socket 0, 1, 2, … (a `u32` that wraps) and, once it
//! no longer needs the pages of some sends, queues one notification on the
//! socket's error queue naming the range of send ids it has finished with.
//! Until then those buffers must not be rewritten or freed. The
//! notification also says whether the kernel had to copy the data after
//! all (`SO_EE_CODE_ZEROCOPY_COPIED`): on loopback and veth it always does,
//! since the receiving socket would otherwise hold the sender's pages.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd};

/// `SO_ZEROCOPY` from `asm-generic/socket.h` (the `libc` crate lacks it).
const SO_ZEROCOPY: libc::c_int = 60;
/// `ee_origin` of a zerocopy completion (`linux/errqueue.h`).
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `ee_code` flag: the kernel copied the data instead of sending the pages.
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// Allows `MSG_ZEROCOPY` sends on `fd` (without it the flag is ignored).
pub fn enable(fd: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: passes a pointer to an int and its exact size.
    syscall!(
        Setsockopt,
        setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ZEROCOPY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t
        )
    )
    .map(|_| ())
}

/// One `sendmsg(MSG_ZEROCOPY)` of `bufs`. When it returns `Ok(n)` with
/// `n > 0`, the kernel gave it the socket's next send id and holds the
/// pages of those `n` bytes until that id's completion; a call that fails
/// (`EAGAIN` included) takes no id (`msg_zerocopy_put_abort` gives it
/// back). Not tallied as a user-space copy: the kernel pins the pages, and
/// whether it copies later is what the completion reports.
pub fn send(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(super::io::IOV_MAX);
    // SAFETY: msghdr is plain data; all-zero means no address and no
    // control data.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    // The kernel only reads through msg_iov for a send.
    header.msg_iov = bufs.as_ptr().cast_mut().cast();
    header.msg_iovlen = count as _;
    // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix, and each one
    // points at readable memory borrowed for the call; `header` lives for
    // the whole call.
    let n = syscall!(
        Sendmsg,
        sendmsg(
            fd.as_raw_fd(),
            &header,
            libc::MSG_ZEROCOPY | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL
        )
    )?;
    Ok(n as usize)
}

/// One notification: the kernel is done with sends `first_id..=last_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub first_id: u32,
    pub last_id: u32,
    /// The kernel copied these sends' bytes after all.
    pub copied: bool,
}

impl Completion {
    /// Send ids the notification covers (ranges may wrap past `u32::MAX`).
    pub fn sends(&self) -> u64 {
        u64::from(self.last_id.wrapping_sub(self.first_id)) + 1
    }
}

/// Room for one `sock_extended_err` control message (plus the offender
/// address the kernel appends for ICMP errors, never for zerocopy).
const CONTROL_BYTES: usize = 128;

/// `recvmsg(MSG_ERRQUEUE)`: takes one notification off the socket's error
/// queue. `EAGAIN` when the queue is empty. Anything on the queue other than
/// a zerocopy completion is an error naming what it was.
pub fn reap(fd: BorrowedFd<'_>) -> io::Result<Completion> {
    // u64 elements keep the buffer aligned for `cmsghdr`.
    let mut control = [0u64; CONTROL_BYTES / 8];
    // SAFETY: msghdr is plain data; all-zero means no address and no iovecs.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = CONTROL_BYTES as _;
    // SAFETY: `header` points at `control`, writable for `msg_controllen`
    // bytes, and at no data buffers; both live for the whole call.
    syscall!(
        Recvmsg,
        recvmsg(
            fd.as_raw_fd(),
            &mut header,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT
        )
    )?;
    if header.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(bad_notification("its control data was truncated"));
    }
    // SAFETY: `header` was filled in by the kernel; CMSG_FIRSTHDR only reads
    // msg_control and msg_controllen, which now describe the control data
    // it wrote into `control`.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&header) };
    if cmsg.is_null() {
        return Err(bad_notification("it carried no control message"));
    }
    // SAFETY: non-null, and CMSG_FIRSTHDR checked that a whole `cmsghdr`
    // lies inside `control`, which is aligned for it.
    let (level, kind, len) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len) };
    let expected = (level == libc::SOL_IP && kind == libc::IP_RECVERR)
        || (level == libc::SOL_IPV6 && kind == libc::IPV6_RECVERR);
    // SAFETY: CMSG_LEN only computes a length.
    let needed = unsafe { libc::CMSG_LEN(std::mem::size_of::<libc::sock_extended_err>() as u32) };
    if !expected || len < needed as usize {
        return Err(bad_notification(&format!(
            "control message level {level} type {kind} length {len} is not a socket error"
        )));
    }
    // SAFETY: the message is an IP(V6)_RECVERR one at least CMSG_LEN(size of
    // sock_extended_err) long, so its data holds one; read unaligned, since
    // CMSG_DATA only promises the alignment of `cmsghdr`'s size.
    let error: libc::sock_extended_err =
        unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
    if error.ee_origin != SO_EE_ORIGIN_ZEROCOPY || error.ee_errno != 0 {
        return Err(bad_notification(&format!(
            "origin {} errno {} is not a zerocopy completion",
            error.ee_origin, error.ee_errno
        )));
    }
    Ok(Completion {
        first_id: error.ee_info,
        last_id: error.ee_data,
        copied: error.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
    })
}

fn bad_notification(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("socket error queue: unexpected notification: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_counts_its_range_across_the_wrap() {
        let one = Completion {
            first_id: 7,
            last_id: 7,
            copied: true,
        };
        assert_eq!(one.sends(), 1);
        let wrapped = Completion {
            first_id: u32::MAX - 1,
            last_id: 1,
            copied: false,
        };
        assert_eq!(wrapped.sends(), 4);
    }
}
