//! The copy axis of the io_uring backend: the same ring buffer, frame
//! parser and output queue as the epoll strategies (`copy::ring`), with
//! each read or write queued as one SQE instead of made as a syscall.
//!
//! - [`RecvSend`] (`uring-rw`): `IORING_OP_RECV` into the ring's next free
//!   piece, one `IORING_OP_SEND` per contiguous pending piece (response
//!   header, payload), as `rw` makes one `write()` per piece.
//! - [`Vectored`] (`uring-writev`): `IORING_OP_READV` into both free pieces,
//!   `IORING_OP_WRITEV` gathering every pending piece (up to `IOV_MAX`), as
//!   `writev` does.

use std::io;
use std::os::fd::BorrowedFd;

use crate::server::copy::ConnConfig;
use crate::server::copy::ring::RingConn;
use crate::sys;
use crate::sys::uring::{OpId, PushResult, Ring};

/// One connection's data path under io_uring. The connection's data is
/// the owner of its one operation in flight (see `sys::uring`).
pub trait UringCopy: Sized + 'static {
    /// The copy part of the variant name, as the epoll analogue's.
    const NAME: &'static str;

    fn new(config: &ConnConfig) -> Self;

    fn conn(&self) -> &RingConn;

    fn conn_mut(&mut self) -> &mut RingConn;

    /// Queues one read into the ring's free space. Returns the operation
    /// and the bytes asked for.
    fn push_read(
        ring: &mut Ring<Self>,
        fd: BorrowedFd<'_>,
        token: u64,
        data: Box<Self>,
    ) -> Result<(OpId, usize), (io::Error, Box<Self>)>;

    /// Queues one write of pending output.
    fn push_write(
        ring: &mut Ring<Self>,
        fd: BorrowedFd<'_>,
        token: u64,
        data: Box<Self>,
    ) -> PushResult<Self>;
}

/// Nothing to read into: the caller reads only with no output pending, so
/// this means a buffer too small for the protocol.
fn no_room() -> io::Error {
    io::Error::other("no free buffer space with no output pending")
}

pub struct RecvSend(RingConn);

impl UringCopy for RecvSend {
    const NAME: &'static str = "rw";

    fn new(config: &ConnConfig) -> Self {
        RecvSend(RingConn::new(config))
    }

    fn conn(&self) -> &RingConn {
        &self.0
    }

    fn conn_mut(&mut self) -> &mut RingConn {
        &mut self.0
    }

    fn push_read(
        ring: &mut Ring<Self>,
        fd: BorrowedFd<'_>,
        token: u64,
        mut data: Box<Self>,
    ) -> Result<(OpId, usize), (io::Error, Box<Self>)> {
        let Some(asked) = data.0.read_target().map(|target| target.len()) else {
            return Err((no_room(), data));
        };
        let op = ring.push_recv(fd, token, data, |d| {
            d.0.read_target().expect("room checked above")
        })?;
        Ok((op, asked))
    }

    fn push_write(
        ring: &mut Ring<Self>,
        fd: BorrowedFd<'_>,
        token: u64,
        data: Box<Self>,
    ) -> PushResult<Self> {
        ring.push_send(fd, token, data, |d| d.0.first_piece().unwrap_or(&[]))
    }
}

pub struct Vectored(RingConn);

impl UringCopy for Vectored {
    const NAME: &'static str = "writev";

    fn new(config: &ConnConfig) -> Self {
        Vectored(RingConn::new(config))
    }

    fn conn(&self) -> &RingConn {
        &self.0
    }

    fn conn_mut(&mut self) -> &mut RingConn {
        &mut self.0
    }

    fn push_read(
        ring: &mut Ring<Self>,
        fd: BorrowedFd<'_>,
        token: u64,
        mut data: Box<Self>,
    ) -> Result<(OpId, usize), (io::Error, Box<Self>)> {
        let Some(asked) = data
            .0
            .readv_targets()
            .map(|[first, second]| first.len() + second.len())
        else {
            return Err((no_room(), data));
        };
        let op = ring.push_readv(fd, token, data, |d| {
            d.0.readv_targets().expect("room checked above")
        })?;
        Ok((op, asked))
    }

    fn push_write(
        ring: &mut Ring<Self>,
        fd: BorrowedFd<'_>,
        token: u64,
        data: Box<Self>,
    ) -> PushResult<Self> {
        ring.push_writev(fd, token, data, |d, list| {
            d.0.gather(list, sys::io::IOV_MAX);
        })
    }
}
