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

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, BorrowedFd};

use super::chunks::ChunkStream;
use super::{ConnConfig, CopyStrategy, IoSliceScratch, ReadStep, WriteStep, write_outcome};
use crate::protocol::{Protocol, RESPONSE_HEADER_BYTES};
use crate::server::frame::FrameParser;
use crate::server::report::LoopCounters;
use crate::server::trigger::ReadHint;
use crate::sys;
use crate::sys::pipe::Pipe;
use crate::sys::vmsplice::page_size_bytes;

/// Unsent output, in stream order: ranges of the header stream or of the
/// request stream.
enum Segment {
    Header {
        start: u64,
        end: u64,
        /// Once the header is in the pipe, the request bytes before this
        /// offset are no longer needed.
        release_to: u64,
    },
    Payload {
        start: u64,
        end: u64,
    },
}

/// Why parsing stopped a read.
enum ParseStop {
    Protocol,
    Io(io::Error),
}

pub struct Vmspliced {
    requests: ChunkStream,
    headers: ChunkStream,
    /// Request bytes before this have been through the parser.
    parsed: u64,
    /// The most request bytes held at once (read, not yet in the pipe).
    held_limit_bytes: u64,
    out: VecDeque<Segment>,
    unsent_bytes: usize,
    pipe: Pipe,
    bytes_in_pipe: usize,
    /// Pieces one vmsplice may usefully hand over: one per pipe slot.
    pipe_slots: usize,
    parser: FrameParser,
}

impl Vmspliced {
    fn after_read(
        &mut self,
        n: usize,
        asked: usize,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep> {
        if n == 0 {
            return Ok(ReadStep::Eof);
        }
        counters.bytes_in += n as u64;
        self.requests.advance(n);
        match self.parse(config, counters) {
            Ok(()) => {}
            Err(ParseStop::Protocol) => return Ok(ReadStep::ProtocolError),
            Err(ParseStop::Io(e)) => return Err(e),
        }
        Ok(ReadStep::Data(ReadHint {
            short: n < asked,
            frame_boundary: config.protocol == Protocol::Frame && !self.parser.inside_request(),
        }))
    }

    fn parse(&mut self, config: &ConnConfig, counters: &mut LoopCounters) -> Result<(), ParseStop> {
        let filled = self.requests.filled();
        while self.parsed < filled {
            match config.protocol {
                Protocol::Echo => {
                    self.push_payload(self.parsed, filled);
                    self.parsed = filled;
                    continue;
                }
                Protocol::Frame => {}
                Protocol::File => {
                    unreachable!("the server refuses protocols its variant does not serve")
                }
            }
            if self.parser.header_missing() > 0 {
                let piece = self.requests.piece(self.parsed, filled);
                let (taken, started) = self.parser.take_header(piece, config.max_frame_bytes);
                self.parsed += taken as u64;
                counters.header_bytes_in += taken as u64;
                match started {
                    Err(_) => return Err(ParseStop::Protocol),
                    Ok(None) => {}
                    Ok(Some(request)) => {
                        counters.requests_parsed += 1;
                        let start = self.headers.filled();
                        self.headers
                            .push(&request.response_header)
                            .map_err(ParseStop::Io)?;
                        self.unsent_bytes += RESPONSE_HEADER_BYTES;
                        self.out.push_back(Segment::Header {
                            start,
                            end: self.headers.filled(),
                            release_to: self.parsed,
                        });
                    }
                }
            } else {
                let n = self.parser.take_payload(filled - self.parsed) as u64;
                self.push_payload(self.parsed, self.parsed + n);
                self.parsed += n;
            }
        }
        Ok(())
    }

    fn push_payload(&mut self, start: u64, end: u64) {
        self.unsent_bytes += (end - start) as usize;
        if let Some(Segment::Payload { end: last_end, .. }) = self.out.back_mut()
            && *last_end == start
        {
            *last_end = end;
            return;
        }
        self.out.push_back(Segment::Payload { start, end });
    }

    /// The unsent pieces in order, one per contiguous run inside a chunk,
    /// up to `max`; returns the bytes gathered.
    fn gather<'a>(&'a self, list: &mut Vec<IoSlice<'a>>, max: usize) -> usize {
        let mut total = 0;
        for segment in &self.out {
            let (stream, mut start, end) = match *segment {
                Segment::Header { start, end, .. } => (&self.headers, start, end),
                Segment::Payload { start, end } => (&self.requests, start, end),
            };
            while start < end {
                if list.len() == max {
                    return total;
                }
                let piece = stream.piece(start, end);
                start += piece.len() as u64;
                total += piece.len();
                list.push(IoSlice::new(piece));
            }
        }
        total
    }

    /// Retires `n` bytes just handed to the pipe from the front of the
    /// queue, releasing (and so unmapping, chunk by chunk) what is no
    /// longer needed. Header bytes count as sent here: past this point
    /// the pipe carries them like the payload.
    fn after_vmsplice(&mut self, mut n: usize, counters: &mut LoopCounters) {
        self.unsent_bytes -= n;
        self.bytes_in_pipe += n;
        while n > 0 {
            let Some(front) = self.out.front_mut() else {
                break;
            };
            match front {
                Segment::Header {
                    start,
                    end,
                    release_to,
                } => {
                    let step = n.min((*end - *start) as usize);
                    *start += step as u64;
                    n -= step;
                    counters.header_bytes_out += step as u64;
                    if *start == *end {
                        let (header_end, release_to) = (*end, *release_to);
                        self.out.pop_front();
                        self.headers.release_to(header_end);
                        self.requests.release_to(release_to);
                    }
                }
                Segment::Payload { start, end } => {
                    let step = (n as u64).min(*end - *start);
                    *start += step;
                    n -= step as usize;
                    let (start, done) = (*start, *start == *end);
                    if done {
                        self.out.pop_front();
                    }
                    self.requests.release_to(start);
                }
            }
        }
        // A zero-length request's header is released with its response
        // header; once nothing is queued, everything parsed may go.
        if self.out.is_empty() {
            self.requests.release_to(self.parsed);
        }
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
            parsed: 0,
            out: VecDeque::new(),
            unsent_bytes: 0,
            pipe_slots: (pipe.capacity_bytes / page_size_bytes()).max(1),
            pipe,
            bytes_in_pipe: 0,
            parser: FrameParser::default(),
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
        let pieces = if second.is_empty() { 1 } else { 2 };
        let mut targets = [IoSliceMut::new(first), IoSliceMut::new(second)];
        match sys::io::readv(fd, &mut targets[..pieces]) {
            Ok(n) => self.after_read(n, room, config, counters),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadStep::WouldBlock),
            Err(e) => Err(e),
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
        if self.out.is_empty() {
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
        self.unsent_bytes + self.bytes_in_pipe
    }

    fn inside_request(&self) -> bool {
        self.parser.inside_request()
    }
}
