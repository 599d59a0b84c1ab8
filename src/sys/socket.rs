//! TCP listener set-up and accepting.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::sys::socket::{self as nix_socket, AddressFamily, SockFlag, SockType, SockaddrStorage};

use super::Fd;
use super::counters::{SyscallKind, finish_nix};

/// Fails with `EADDRINUSE` when something already listens on `addr`, even a
/// socket with SO_REUSEPORT that [`listen_reuseport`] would silently join
/// (two servers sharing a port would each get part of the load).
pub fn ensure_port_free(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = new_stream_socket(addr)?;
    finish_nix(
        SyscallKind::Setsockopt,
        nix_socket::setsockopt(&probe.as_fd(), nix_socket::sockopt::ReuseAddr, &true),
    )?;
    finish_nix(
        SyscallKind::Bind,
        nix_socket::bind(probe.raw(), &SockaddrStorage::from(addr)),
    )
}

fn new_stream_socket(addr: SocketAddr) -> io::Result<Fd> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    Ok(finish_nix(
        SyscallKind::Socket,
        nix_socket::socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        ),
    )?
    .into())
}

/// A non-blocking listening socket with SO_REUSEADDR and SO_REUSEPORT, so
/// that each serving thread can bind its own listener to the same address.
pub fn listen_reuseport(addr: SocketAddr) -> io::Result<(Fd, SocketAddr)> {
    let fd = new_stream_socket(addr)?;
    finish_nix(
        SyscallKind::Setsockopt,
        nix_socket::setsockopt(&fd.as_fd(), nix_socket::sockopt::ReuseAddr, &true),
    )?;
    finish_nix(
        SyscallKind::Setsockopt,
        nix_socket::setsockopt(&fd.as_fd(), nix_socket::sockopt::ReusePort, &true),
    )?;
    let storage = SockaddrStorage::from(addr);
    finish_nix(SyscallKind::Bind, nix_socket::bind(fd.raw(), &storage))?;
    // -1 asks for the largest backlog the kernel allows (net.core.somaxconn).
    finish_nix(
        SyscallKind::Listen,
        nix_socket::listen(&fd.as_fd(), nix_socket::Backlog::MAXALLOWABLE),
    )?;
    let local = local_addr(fd.as_fd())?;
    Ok((fd, local))
}

pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    let storage: SockaddrStorage = finish_nix(
        SyscallKind::Getsockname,
        nix_socket::getsockname(fd.as_raw_fd()),
    )?;
    if let Some(v4) = storage.as_sockaddr_in() {
        return Ok(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    if let Some(v6) = storage.as_sockaddr_in6() {
        return Ok(SocketAddr::V6(SocketAddrV6::from(*v6)));
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "getsockname returned a non-IP address",
    ))
}

/// Accepts one pending connection as a non-blocking, close-on-exec socket.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<Fd> {
    // SAFETY: null address pointers tell accept4 not to report the peer.
    let raw = syscall!(
        Accept4,
        accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC
        )
    )?;
    Ok(Fd::from_new(raw as RawFd))
}

/// Accepts one pending connection as a blocking, close-on-exec socket,
/// waiting for one if none is pending (the thread-per-connection server's
/// acceptor, whose connection threads use plain blocking calls).
pub fn accept_blocking(listener: BorrowedFd<'_>) -> io::Result<Fd> {
    // SAFETY: null address pointers tell accept4 not to report the peer.
    let raw = syscall!(
        Accept4,
        accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC
        )
    )?;
    Ok(Fd::from_new(raw as RawFd))
}

/// `shutdown(2)`: how another thread wakes a thread blocked on `fd` (a
/// blocked `read` or `accept` returns once the receiving side is shut, a
/// blocked `write` once the sending side is).
pub fn shutdown(fd: BorrowedFd<'_>, how: std::net::Shutdown) -> io::Result<()> {
    let how = match how {
        std::net::Shutdown::Read => libc::SHUT_RD,
        std::net::Shutdown::Write => libc::SHUT_WR,
        std::net::Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: shutdown takes no pointers.
    syscall!(Shutdown, shutdown(fd.as_raw_fd(), how)).map(|_| ())
}

pub fn set_nodelay(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}

/// `SO_RCVBUF`: set before `connect` so the window the socket advertises
/// in its handshake already reflects it. Fails with `EINVAL` above
/// `i32::MAX`.
pub fn set_receive_buffer(fd: BorrowedFd<'_>, bytes: u32) -> io::Result<()> {
    let value = i32::try_from(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, value)
}

fn set_int_option(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: passes a pointer to an int and its exact size.
    syscall!(
        Setsockopt,
        setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t
        )
    )
    .map(|_| ())
}

/// Makes `fd` blocking: the machine-limits measurement moves bytes with one
/// thread per socket, where blocking calls are the cheapest loop.
pub fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument and no pointers.
    let flags = syscall!(Fcntl, fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
    let blocking = (flags as libc::c_int) & !libc::O_NONBLOCK;
    // SAFETY: F_SETFL takes an int argument and no pointers.
    syscall!(Fcntl, fcntl(fd.as_raw_fd(), libc::F_SETFL, blocking)).map(|_| ())
}
