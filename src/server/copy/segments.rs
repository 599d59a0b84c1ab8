//! The output queue of the strategies that answer from the bytes they read
//! (`rw` and `writev` through the ring, `zerocopy`, `vmsplice`).
//! Request bytes are appended to a stream addressed by absolute offset and
//! never move, so they are parsed where they were read and a payload goes
//! back as a range of that stream, from where it was read; response headers
//! are queued between the ranges. The strategies differ only in where the
//! stream's bytes live (a ring, fresh mappings) and in how a response header
//! is kept (the queue's parameter `H`), so parsing, gathering and retiring
//! are written once here.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::BorrowedFd;

use super::{ConnConfig, ReadStep};
use crate::protocol::{Protocol, RESPONSE_HEADER_BYTES};
use crate::server::frame::FrameParser;
use crate::server::report::LoopCounters;
use crate::server::trigger::ReadHint;
use crate::sys;

/// Where a strategy keeps the request stream: append-only bytes addressed
/// by absolute stream offset.
pub trait RequestBytes {
    /// Everything before this has been read from the socket.
    fn filled(&self) -> u64;
    /// Accounts for `n` bytes just read into the free space.
    fn advance(&mut self, n: usize);
    /// The first contiguous piece of `[start, end)`.
    fn first_piece(&self, start: u64, end: u64) -> &[u8];
}

/// A queued response header: how much of it is still to be sent.
pub trait QueuedHeader {
    fn unsent_bytes(&self) -> usize;
    /// Counts `n` more of its bytes as sent.
    fn advance(&mut self, n: usize);
}

/// A response header kept in user memory and copied into the socket;
/// `B` is how its bytes are held (inline, or a reused box).
pub struct CopiedHeader<B> {
    bytes: B,
    written: usize,
}

impl<B: Borrow<[u8; RESPONSE_HEADER_BYTES]>> CopiedHeader<B> {
    pub fn new(bytes: B) -> CopiedHeader<B> {
        CopiedHeader { bytes, written: 0 }
    }

    pub fn unsent(&self) -> &[u8] {
        &self.bytes.borrow()[self.written..]
    }

    pub fn into_bytes(self) -> B {
        self.bytes
    }
}

impl<B> QueuedHeader for CopiedHeader<B> {
    fn unsent_bytes(&self) -> usize {
        RESPONSE_HEADER_BYTES - self.written
    }

    fn advance(&mut self, n: usize) {
        self.written += n;
    }
}

/// Unsent output, in stream order.
pub enum Segment<H> {
    Header {
        header: H,
        /// Once the header is sent, the request bytes before this offset
        /// are no longer needed.
        release_to: u64,
    },
    /// A range of the request stream.
    Payload { start: u64, end: u64 },
}

/// Why parsing stopped: the request stream broke the protocol, or keeping
/// a response header failed (`E`: vmsplice's header page could not be
/// mapped).
enum ParseStop<E> {
    Protocol,
    Failed(E),
}

/// What [`SegmentQueue::gather`] takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Gather {
    /// Every queued piece.
    All,
    /// The run of headers, or of payloads, at the front of the queue.
    FrontRun,
}

pub struct SegmentQueue<H> {
    out: VecDeque<Segment<H>>,
    unsent_bytes: usize,
    /// Request bytes before this have been through the parser.
    parsed: u64,
    parser: FrameParser,
}

impl<H> Default for SegmentQueue<H> {
    fn default() -> SegmentQueue<H> {
        SegmentQueue {
            out: VecDeque::new(),
            unsent_bytes: 0,
            parsed: 0,
            parser: FrameParser::default(),
        }
    }
}

impl<H: QueuedHeader> SegmentQueue<H> {
    /// Bytes queued and not yet sent.
    pub fn unsent_bytes(&self) -> usize {
        self.unsent_bytes
    }

    pub fn parsed(&self) -> u64 {
        self.parsed
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    pub fn front(&self) -> Option<&Segment<H>> {
        self.out.front()
    }

    pub fn inside_request(&self) -> bool {
        self.parser.inside_request()
    }

    /// Accounts for a read of `n` of `asked` bytes into `bytes`, parses
    /// them and queues the responses; `keep_header` as for
    /// [`SegmentQueue::parse`].
    pub fn after_read<E>(
        &mut self,
        (n, asked): (usize, usize),
        bytes: &mut impl RequestBytes,
        config: &ConnConfig,
        counters: &mut LoopCounters,
        keep_header: impl FnMut(&[u8; RESPONSE_HEADER_BYTES]) -> Result<H, E>,
    ) -> Result<ReadStep, E> {
        if n == 0 {
            return Ok(ReadStep::Eof);
        }
        counters.bytes_in += n as u64;
        bytes.advance(n);
        let bytes = &*bytes;
        let parsed = self.parse(
            bytes.filled(),
            config,
            counters,
            |start, end| bytes.first_piece(start, end),
            keep_header,
        );
        match parsed {
            Ok(()) => Ok(ReadStep::Data(ReadHint {
                short: n < asked,
                frame_boundary: config.protocol == Protocol::Frame && !self.parser.inside_request(),
            })),
            Err(ParseStop::Protocol) => Ok(ReadStep::ProtocolError),
            Err(ParseStop::Failed(e)) => Err(e),
        }
    }

    /// Parses the request stream up to `filled` and queues the responses.
    /// `first_piece(start, end)` is the first contiguous piece of that
    /// range where the stream keeps it; `keep_header` stores a response
    /// header the way the strategy sends it.
    fn parse<'s, E>(
        &mut self,
        filled: u64,
        config: &ConnConfig,
        counters: &mut LoopCounters,
        first_piece: impl Fn(u64, u64) -> &'s [u8],
        mut keep_header: impl FnMut(&[u8; RESPONSE_HEADER_BYTES]) -> Result<H, E>,
    ) -> Result<(), ParseStop<E>> {
        while self.parsed < filled {
            if config.protocol == Protocol::Echo {
                self.push_payload(self.parsed, filled);
                self.parsed = filled;
                continue;
            }
            if self.parser.header_missing() > 0 {
                let piece = first_piece(self.parsed, filled);
                let (taken, started) = self.parser.take_header(piece, config.max_frame_bytes);
                self.parsed += taken as u64;
                counters.header_bytes_in += taken as u64;
                match started {
                    Err(_) => return Err(ParseStop::Protocol),
                    Ok(None) => {}
                    Ok(Some(request)) => {
                        counters.requests_parsed += 1;
                        let header =
                            keep_header(&request.response_header).map_err(ParseStop::Failed)?;
                        self.unsent_bytes += RESPONSE_HEADER_BYTES;
                        self.out.push_back(Segment::Header {
                            header,
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

    /// The unsent pieces in order, up to `max`; returns the bytes gathered.
    /// `piece_at(segment, at)` is the contiguous piece of `segment` from
    /// `at` bytes into what it has unsent (empty past its end).
    pub fn gather<'a>(
        &'a self,
        list: &mut Vec<IoSlice<'a>>,
        max: usize,
        run: Gather,
        piece_at: impl Fn(&'a Segment<H>, usize) -> &'a [u8],
    ) -> usize {
        let headers_first = matches!(self.out.front(), Some(Segment::Header { .. }));
        let mut total = 0;
        for segment in &self.out {
            let header = matches!(segment, Segment::Header { .. });
            if run == Gather::FrontRun && header != headers_first {
                return total;
            }
            let mut at = 0;
            loop {
                let piece = piece_at(segment, at);
                if piece.is_empty() {
                    break;
                }
                if list.len() == max {
                    return total;
                }
                at += piece.len();
                total += piece.len();
                list.push(IoSlice::new(piece));
            }
        }
        total
    }

    /// Retires `n` bytes just sent from the front of the queue: hands each
    /// header sent in full to `header_sent`, and tells `release` each
    /// stream offset before which the request bytes are no longer needed.
    pub fn retire(
        &mut self,
        mut n: usize,
        counters: &mut LoopCounters,
        mut header_sent: impl FnMut(H),
        mut release: impl FnMut(u64),
    ) {
        self.unsent_bytes -= n;
        while n > 0 {
            let Some(front) = self.out.front_mut() else {
                break;
            };
            match front {
                Segment::Header { header, release_to } => {
                    let step = n.min(header.unsent_bytes());
                    header.advance(step);
                    n -= step;
                    counters.header_bytes_out += step as u64;
                    if header.unsent_bytes() == 0 {
                        let release_to = *release_to;
                        if let Some(Segment::Header { header, .. }) = self.out.pop_front() {
                            header_sent(header);
                        }
                        release(release_to);
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
                    release(start);
                }
            }
        }
        // A zero-length response leaves its request header unreleased
        // until the response header is out; once nothing is queued,
        // everything parsed may go.
        if self.out.is_empty() {
            release(self.parsed);
        }
    }
}

/// One `readv()` into the free space of a stream, given as two pieces in
/// stream order (the second left out when empty); `None` when the socket
/// had nothing (EAGAIN).
pub fn readv_pieces(
    fd: BorrowedFd<'_>,
    targets: &mut [IoSliceMut<'_>; 2],
) -> io::Result<Option<usize>> {
    let pieces = if targets[1].is_empty() { 1 } else { 2 };
    match sys::io::readv(fd, &mut targets[..pieces]) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}
