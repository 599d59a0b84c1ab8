//! The driver's side of a TCP connection: non-blocking connect and its
//! outcome.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

use nix::sys::socket::{self as nix_socket, AddressFamily, SockFlag, SockType, SockaddrStorage};

use super::Fd;
use super::counters::{SyscallKind, finish_nix};

/// Where a non-blocking connect stands right after the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectProgress {
    /// The handshake finished inside the call (common on loopback).
    Connected,
    /// The handshake is under way: the socket becomes writable when it ends;
    /// [`take_connect_result`] then says how.
    InProgress,
}

/// Opens a non-blocking, close-on-exec TCP socket with TCP_NODELAY (small
/// requests must leave at once, as the servers' responses do) and starts
/// connecting it to `addr`. `receive_buffer_bytes`, when given, becomes the
/// socket's `SO_RCVBUF` before the handshake.
pub fn connect_nonblocking(
    addr: SocketAddr,
    receive_buffer_bytes: Option<u32>,
) -> io::Result<(Fd, ConnectProgress)> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd: Fd = finish_nix(
        SyscallKind::Socket,
        nix_socket::socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        ),
    )?
    .into();
    super::socket::set_nodelay(fd.as_fd())?;
    if let Some(bytes) = receive_buffer_bytes {
        super::socket::set_receive_buffer(fd.as_fd(), bytes)?;
    }
    let storage = SockaddrStorage::from(addr);
    match finish_nix(
        SyscallKind::Connect,
        nix_socket::connect(fd.raw(), &storage),
    ) {
        Ok(()) => Ok((fd, ConnectProgress::Connected)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            Ok((fd, ConnectProgress::InProgress))
        }
        Err(e) => Err(e),
    }
}

/// How a connect that was [`ConnectProgress::InProgress`] ended, read once
/// the socket reports writable or an error: `Ok(())` when connected, else
/// the handshake's error (e.g. `ECONNREFUSED`).
pub fn take_connect_result(fd: &Fd) -> io::Result<()> {
    let code = finish_nix(
        SyscallKind::Getsockopt,
        nix_socket::getsockopt(&fd.as_fd(), nix_socket::sockopt::SocketError),
    )?;
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code))
    }
}

/// Opens a blocking, close-on-exec TCP socket bound to `source` (port left
/// to connect, with IP_BIND_ADDRESS_NO_PORT, so that each source address
/// gets the whole ephemeral range per target rather than per bind) and
/// connects it to `target`, giving up after `timeout` (SO_SNDTIMEO bounds
/// a blocking connect: a dropped SYN is otherwise retried for minutes).
/// For connections that are only held: no TCP_NODELAY, no buffer sizing.
pub fn connect_from(
    source: std::net::Ipv4Addr,
    target: SocketAddr,
    timeout: std::time::Duration,
) -> io::Result<Fd> {
    let fd: Fd = finish_nix(
        SyscallKind::Socket,
        nix_socket::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        ),
    )?
    .into();
    finish_nix(
        SyscallKind::Setsockopt,
        nix_socket::setsockopt(&fd.as_fd(), nix_socket::sockopt::IpBindAddressNoPort, &true),
    )?;
    let timeval = nix::sys::time::TimeVal::new(
        timeout.as_secs() as libc::time_t,
        timeout.subsec_micros() as libc::suseconds_t,
    );
    finish_nix(
        SyscallKind::Setsockopt,
        nix_socket::setsockopt(&fd.as_fd(), nix_socket::sockopt::SendTimeout, &timeval),
    )?;
    let local = SockaddrStorage::from(SocketAddr::from((source, 0)));
    finish_nix(SyscallKind::Bind, nix_socket::bind(fd.raw(), &local))?;
    let storage = SockaddrStorage::from(target);
    match finish_nix(
        SyscallKind::Connect,
        nix_socket::connect(fd.raw(), &storage),
    ) {
        Ok(()) => Ok(fd),
        // SO_SNDTIMEO expiring makes a blocking connect return EINPROGRESS.
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            Err(io::Error::from(io::ErrorKind::TimedOut))
        }
        Err(e) => Err(e),
    }
}
