//! The copy axis: how bytes get from a connection's socket back to it.
//!
//! Each strategy is a per-connection type implementing [`CopyStrategy`]; the
//! event loop is generic over it, so the strategies differ only in the
//! calls below and never in how the loop treats them.
//!
//! - [`rw::ReadWrite`]: `read()` into a ring buffer, one `write()` per
//!   contiguous piece (response header, payload piece).
//! - [`writev::Gathered`]: `readv()` into both free halves of the ring,
//!   `writev()` of every pending piece at once (up to `IOV_MAX`).
//! - [`splice::Spliced`]: payload goes socket → pipe → socket with
//!   `splice(2)` and never enters user space; headers use read/write.
//! - [`zerocopy::ZeroCopy`]: `read()` into a ring, one
//!   `sendmsg(MSG_ZEROCOPY)` of every pending piece; the ring space a send
//!   used is held until the kernel's completion arrives on the error queue.
//! - [`vmsplice::Vmspliced`]: `readv()` into fresh mappings, `vmsplice()`
//!   of every pending piece into a pipe, `splice()` on to the socket; a
//!   page handed over is never written again.
//! - [`file::mmap::Mapped`], [`file::sendfile::SentFile`]: the file
//!   protocol only, payload from the served file's mapping or by
//!   `sendfile(2)`. `rw` and `splice` serve the file protocol too (`pread`
//!   + `write`, file → pipe → socket); see [`file`].

pub mod chunks;
pub mod file;
pub mod pool;
pub mod ring;
pub mod rw;
pub mod segments;
pub mod splice;
pub mod vmsplice;
pub mod writev;
pub mod zerocopy;

use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use super::report::LoopCounters;
use super::served_file::ServedFile;
use super::trigger::ReadHint;
use crate::protocol::Protocol;

/// Per-connection settings, identical for every variant.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    pub protocol: Protocol,
    pub max_frame_bytes: u32,
    /// Ring buffer size for rw/writev.
    pub buffer_size_bytes: usize,
    /// Pipe size asked for with F_SETPIPE_SZ, for splice.
    pub pipe_size_bytes: usize,
    /// The file protocol's served file (`None` for frame and echo), made
    /// once by `Server::start` and shared by every connection.
    pub served_file: Option<Arc<ServedFile>>,
}

/// The outcome of one read-family call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStep {
    /// Bytes arrived.
    Data(ReadHint),
    /// The socket had nothing (EAGAIN).
    WouldBlock,
    /// The peer closed its sending side.
    Eof,
    /// No room to take more bytes until output drains. Nothing was read,
    /// or (splice) the call could not tell a full pipe from an empty socket.
    NoRoom,
    /// Pooled buffers: the connection holds no buffer and its thread's pool
    /// has none to give; nothing was read. The loop reads it again once a
    /// buffer is given back.
    NoBuffer,
    /// The request stream broke the protocol (an oversized frame).
    ProtocolError,
}

/// The outcome of one write-family call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStep {
    /// Everything asked for was written.
    Wrote,
    /// Part or none was written: the socket's send buffer is full.
    Blocked,
    /// Nothing was pending.
    Idle,
}

/// Scratch space for building iovec lists without allocating per call.
#[derive(Default)]
pub struct IoSliceScratch {
    storage: Vec<IoSlice<'static>>,
}

impl IoSliceScratch {
    /// An empty list that reuses the scratch allocation.
    pub fn take<'a>(&mut self) -> Vec<IoSlice<'a>> {
        let mut storage = std::mem::take(&mut self.storage);
        storage.clear();
        // Same layout, no elements: collecting in place keeps the allocation.
        storage.into_iter().map(|_| unreachable!()).collect()
    }

    pub fn give_back(&mut self, mut list: Vec<IoSlice<'_>>) {
        list.clear();
        self.storage = list.into_iter().map(|_| unreachable!()).collect();
    }
}

/// One connection's data path.
pub trait CopyStrategy: Sized + 'static {
    /// The variant-name part, e.g. `rw`.
    const NAME: &'static str;

    fn new(config: &ConnConfig) -> io::Result<Self>;

    /// Sets up the accepted socket for this strategy, before its first
    /// turn (zerocopy: `SO_ZEROCOPY`).
    fn attach(&mut self, _fd: BorrowedFd<'_>) -> io::Result<()> {
        Ok(())
    }

    /// epoll reported `EPOLLERR`. Returns whether the strategy expected it
    /// (zerocopy: completions arrive on the socket's error queue, which
    /// signals it) and will deal with it in its next
    /// [`CopyStrategy::write_once`]; otherwise the loop closes the
    /// connection.
    fn error_event(&mut self) -> bool {
        false
    }

    /// Issues exactly one read-family call (or none, for `NoRoom`).
    fn read_once(
        &mut self,
        fd: BorrowedFd<'_>,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep>;

    /// Issues exactly one write-family call (or none, for `Idle`).
    fn write_once(
        &mut self,
        fd: BorrowedFd<'_>,
        scratch: &mut IoSliceScratch,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep>;

    /// Response bytes received or built but not yet written.
    fn pending_out_bytes(&self) -> usize;

    /// Whether part of a request has arrived (EOF now is a protocol error).
    fn inside_request(&self) -> bool;
}

/// Maps a write result to a step; `EAGAIN` means the send buffer is full.
fn write_outcome(result: io::Result<usize>, asked: usize) -> io::Result<(usize, WriteStep)> {
    match result {
        Ok(n) if n == asked => Ok((n, WriteStep::Wrote)),
        Ok(n) => Ok((n, WriteStep::Blocked)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((0, WriteStep::Blocked)),
        Err(e) => Err(e),
    }
}
