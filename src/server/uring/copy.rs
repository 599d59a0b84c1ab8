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
//! - `splice::UringSpliced` (`uring-splice`): the epoll splice strategy's
//!   state and framing (`copy::splice::SplicePath`), its calls queued as
//!   `IORING_OP_RECV`/`IORING_OP_SEND` for headers and
//!   `IORING_OP_SPLICE` for payload.

use std::io;
use std::os::fd::BorrowedFd;

use crate::server::copy::ring::RingConn;
use crate::server::copy::{ConnConfig, ReadStep};
use crate::server::report::LoopCounters;
use crate::sys;
use crate::sys::uring::{OpId, PushResult, Ring, Target};

/// One connection's data path under io_uring. The connection's data is
/// the owner of its one operation in flight (see `sys::uring`).
pub trait UringCopy: Sized + 'static {
    /// The copy part of the variant name, as the epoll analogue's.
    const NAME: &'static str;

    /// A new connection's data; fails where it needs descriptors (a
    /// pipe) and there are none.
    fn new(config: &ConnConfig) -> io::Result<Self>;

    /// Response bytes received or built but not yet written.
    fn pending_out_bytes(&self) -> usize;

    /// Whether part of a request has arrived (EOF now is a protocol error).
    fn inside_request(&self) -> bool;

    /// Accounts for the completion of the read [`UringCopy::push_read`]
    /// queued: `n` bytes of `asked` (0: EOF).
    fn after_read(
        &mut self,
        n: usize,
        asked: usize,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> ReadStep;

    /// Accounts for the completion of the write
    /// [`UringCopy::push_write`] queued: `n` bytes written.
    fn after_write(&mut self, n: usize, counters: &mut LoopCounters);

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
pub(super) fn no_room() -> io::Error {
    io::Error::other("no free buffer space with no output pending")
}

/// The accounting of a strategy that is a `RingConn`: its own.
macro_rules! ring_conn_accounting {
    () => {
        fn pending_out_bytes(&self) -> usize {
            self.0.pending_out_bytes()
        }

        fn inside_request(&self) -> bool {
            self.0.inside_request()
        }

        fn after_read(
            &mut self,
            n: usize,
            asked: usize,
            config: &ConnConfig,
            counters: &mut LoopCounters,
        ) -> ReadStep {
            self.0.after_read(n, asked, config, counters)
        }

        fn after_write(&mut self, n: usize, counters: &mut LoopCounters) {
            self.0.after_write(n, counters)
        }
    };
}

pub struct RecvSend(RingConn);

impl UringCopy for RecvSend {
    const NAME: &'static str = "rw";

    fn new(config: &ConnConfig) -> io::Result<Self> {
        Ok(RecvSend(RingConn::new(config)))
    }

    ring_conn_accounting!();

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

/// For `uring-multishot`, which receives into provided buffers and copies
/// the bytes into the ring buffer itself.
impl Vectored {
    /// A ring buffer needs no descriptor: cannot fail.
    pub(super) fn with_ring_buffer(config: &ConnConfig) -> Vectored {
        Vectored(RingConn::new(config))
    }

    /// The ring buffer's next free piece, if any; account for what was
    /// copied in with [`UringCopy::after_read`].
    pub(super) fn read_target(&mut self) -> Option<&mut [u8]> {
        self.0.read_target()
    }

    /// Queues one `IORING_OP_WRITEV` of pending output to `file`, a
    /// descriptor or a registered file's slot.
    pub(super) fn push_gather<'fd>(
        ring: &mut Ring<Self>,
        file: impl Into<Target<'fd>>,
        token: u64,
        data: Box<Self>,
    ) -> PushResult<Self> {
        ring.push_writev(file, token, data, |d, list| {
            d.0.gather(list, sys::io::IOV_MAX);
        })
    }
}

impl UringCopy for Vectored {
    const NAME: &'static str = "writev";

    fn new(config: &ConnConfig) -> io::Result<Self> {
        Ok(Vectored::with_ring_buffer(config))
    }

    ring_conn_accounting!();

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
        Self::push_gather(ring, fd, token, data)
    }
}
