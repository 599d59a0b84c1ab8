//! `vmsplice`: requests are `readv()` into user memory as under `writev`
//! (the incoming copy stays); responses go out without an outgoing copy:
//! one `vmsplice()` hands the pages of every pending response header and
//! payload to the connection's pipe, one `splice()` moves them on into the
//! socket.
//!
//! **The page-reuse hazard.** vmsplice without `SPLICE_F_GIFT` puts
//! references to our pages into the pipe, not their bytes. Splicing the
//! pipe into a TCP socket (6.x kernels: `MSG_SPLICE_PAGES`) attaches the
//! same pages to the socket's buffers, and on loopback the receiver's
//! queue holds them until the client reads. So "the pipe has drained" does
//! not mean the kernel is done with the bytes: a buffer rewritten after the
//! splice returned changes what the client has not read yet.
//! `tests/vmsplice_hazard.rs` shows it on this kernel (a reused buffer
//! corrupts responses; fresh mappings do not). And nothing tells user space
//! when the last reference goes (no completion, unlike `MSG_ZEROCOPY`).
//!
//! **The scheme: never rewrite, unmap instead.** Request bytes and response
//! headers live in [`ChunkStream`]s: append-only, in chunks mapped fresh
//! with `mmap`. A byte is written once (by `readv`, or the header's
//! build) and never again; a chunk all of whose bytes have been handed to
//! the pipe (or were request headers, never sent) is `munmap`ped, which
//! drops only our reference: the kernel keeps each page alive, bytes
//! intact, for as long as a pipe or socket buffer holds it, and the next
//! chunk is new memory. Safe by construction, with no guess about when the
//! kernel lets go. The price is counted, not hidden: one `mmap` and one
//! `munmap` per chunk of request bytes (`buffer_size_bytes`, default
//! 64 KiB) and per page of response headers (512 headers), plus a page
//! fault per fresh page touched.
//!
//! **Bounds.** As the ring bounds `rw`: at most `buffer_size_bytes` of
//! request bytes are held (read, not yet in the pipe); headers pending are
//! bounded by the request headers held; the pipe by its size. So a
//! connection maps at most three request chunks (what is held spans two,
//! plus the space reserved for the next read) and a few header pages, and
//! the loop's watermarks apply to pending output as under every strategy.
//!
//! **Calls.** A response costs one `vmsplice` and one `splice` (more when
//! the pipe runs out of slots: each page piece takes one); vmsplice only
//! into an empty pipe, so a full pipe is never mistaken for a full socket.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, BorrowedFd};

use super::chunks::ChunkStream;
use super::segments::{Gather, QueuedHeader, Segment, SegmentQueue, readv_pieces};
use super::{ConnConfig, CopyStrategy, IoSliceScratch, ReadStep, WriteStep, write_outcome};
use crate::protocol::{Protocol, RESPONSE_HEADER_BYTES};
use crate::server::report::LoopCounters;
use crate::sys;
use crate::sys::pipe::Pipe;
use crate::sys::vmsplice::page_size_bytes;

/// A response header: a range of the header stream, handed to the pipe
/// like the payload.
struct HeaderRange {
    start: u64,
    end: u64,
}

impl QueuedHeader for HeaderRange {
    fn unsent_bytes(&self) -> usize {
        (self.end - self.start) as usize
    }

    fn advance(&mut self, n: usize) {
        self.start += n as u64;
    }
}

pub struct Vmspliced {
    requests: ChunkStream,
    headers: ChunkStream,
    /// The most request bytes held at once (read, not yet in the pipe).
    held_limit_bytes: u64,
    queue: SegmentQueue<HeaderRange>,
    pipe: Pipe,
    bytes_in_pipe: usize,
    /// Pieces one vmsplice may usefully hand over: one per pipe slot.
    pipe_slots: usize,
}

impl Vmspliced {
    /// The unsent pieces in order, one per contiguous run inside a chunk,
    /// up to `max`; returns the bytes gathered.
    fn gather<'a>(&'a self, list: &mut Vec<IoSlice<'a>>, max: usize) -> usize {
        self.queue.gather(list, max, Gather::All, |segment, at| {
            let (stream, start, end) = match *segment {
                Segment::Header {
                    header: HeaderRange { start, end },
                    ..
                } => (&self.headers, start, end),
                Segment::Payload { start, end } => (&self.requests, start, end),
            };
            stream.piece(start + at as u64, end)
        })
    }

    /// Retires `n` bytes just handed to the pipe from the front of the
    /// queue, releasing (and so unmapping, chunk by chunk) what is no
    /// longer needed. Header bytes count as sent here: past this point
    /// the pipe carries them like the payload.
    fn after_vmsplice(&mut self, n: usize, counters: &mut LoopCounters) {
        self.bytes_in_pipe += n;
        let (requests, headers) = (&mut self.requests, &mut self.headers);
        self.queue.retire(
            n,
            counters,
            |header| headers.release_to(header.end),
            |offset| requests.release_to(offset),
        );
    }
}

impl CopyStrategy for Vmspliced {
    const NAME: &'static str = "vmsplice";

    fn new(config: &ConnConfig) -> io::Result<Self> {
        let pipe = Pipe::with_capacity(config.pipe_size_bytes)?;
        let requests = ChunkStream::new(config.buffer_size_bytes);
        Ok(Vmspliced {
            held_limit_bytes: requests.chunk_bytes() as u64,
            requests,
            headers: ChunkStream::new(page_size_bytes()),
            queue: SegmentQueue::default(),
            pipe_slots: (pipe.capacity_bytes / page_size_bytes()).max(1),
            pipe,
            bytes_in_pipe: 0,
        })
    }

    fn read_once(
        &mut self,
        fd: BorrowedFd<'_>,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep> {
        let room = (self.held_limit_bytes - self.requests.held_bytes()) as usize;
        if room == 0 {
            return Ok(ReadStep::NoRoom);
        }
        self.requests.reserve(room)?;
        let (first, second) = self.requests.free_pieces(room);
        let mut targets = [IoSliceMut::new(first), IoSliceMut::new(second)];
        match readv_pieces(fd, &mut targets)? {
            Some(n) => {
                if config.protocol == Protocol::File {
                    unreachable!("the server refuses protocols its variant does not serve")
                }
                let headers = &mut self.headers;
                let header = |header: &[u8; RESPONSE_HEADER_BYTES]| {
                    let start = headers.filled();
                    headers.push(header)?;
                    Ok(HeaderRange {
                        start,
                        end: headers.filled(),
                    })
                };
                self.queue
                    .after_read((n, room), &mut self.requests, config, counters, header)
            }
            None => Ok(ReadStep::WouldBlock),
        }
    }

    fn write_once(
        &mut self,
        fd: BorrowedFd<'_>,
        scratch: &mut IoSliceScratch,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep> {
        if self.bytes_in_pipe > 0 {
            let asked = self.bytes_in_pipe;
            let result = sys::io::splice(self.pipe.read_end.as_fd(), fd, asked);
            let (n, step) = write_outcome(result, asked)?;
            self.bytes_in_pipe -= n;
            counters.bytes_out += n as u64;
            return Ok(step);
        }
        if self.queue.is_empty() {
            return Ok(WriteStep::Idle);
        }
        let mut list = scratch.take();
        self.gather(&mut list, self.pipe_slots.min(sys::io::IOV_MAX));
        let result = sys::vmsplice::vmsplice(self.pipe.write_end.as_fd(), &list);
        scratch.give_back(list);
        match result {
            // Part of the list is progress too (the pipe ran out of
            // slots): the splice out comes next, whatever the socket's
            // state, so this must not wait for EPOLLOUT.
            Ok(n) => {
                self.after_vmsplice(n, counters);
                Ok(WriteStep::Wrote)
            }
            Err(e) => Err(e),
        }
    }

    fn pending_out_bytes(&self) -> usize {
        self.queue.unsent_bytes() + self.bytes_in_pipe
    }

    fn inside_request(&self) -> bool {
        self.queue.inside_request()
    }
}
