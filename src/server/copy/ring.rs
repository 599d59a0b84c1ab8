//! The ring buffer and output queue shared by the `rw` and `writev`
//! strategies. Payload bytes are written back straight from the ring where
//! they were read, so neither strategy copies a payload inside user space;
//! response headers are small segments queued between payload pieces.
//!
//! The ring's buffer follows the thread's buffer policy ([`super::pool`]):
//! owned from accept to close, or taken from the pool just before a read and
//! given back whenever the ring is empty.

use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};

use crate::protocol::{Protocol, REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES};
use crate::server::copy::{ConnConfig, ReadStep, pool};
use crate::server::frame::FrameParser;
use crate::server::report::LoopCounters;
use crate::server::trigger::ReadHint;

/// Positions are absolute stream offsets; `(offset - origin) % capacity`
/// is where a byte lives in `bytes`.
pub struct Ring {
    /// Empty while a pooled ring holds no buffer.
    bytes: Box<[u8]>,
    /// The buffer comes from the thread's pool (see [`pool`]).
    pooled: bool,
    /// Moved up to `filled` whenever the ring empties, so that the next read
    /// starts at the beginning of the buffer: a ping-pong stream then never
    /// splits a message at the buffer's end.
    origin: u64,
    /// Everything before this has been written back (or was a request
    /// header) and may be overwritten.
    released: u64,
    /// Everything before this has been read from the socket.
    filled: u64,
    /// Everything before this has been through the protocol parser.
    parsed: u64,
}

enum Segment {
    Header {
        bytes: [u8; RESPONSE_HEADER_BYTES],
        written: usize,
        /// Written in full, the request header bytes before this offset are
        /// no longer needed.
        release_to: u64,
    },
    Payload {
        start: u64,
        end: u64,
    },
}

/// A connection's buffered data path: ring + parser + output queue.
pub struct RingConn {
    ring: Ring,
    out: VecDeque<Segment>,
    pending_out_bytes: usize,
    parser: FrameParser,
}

impl Ring {
    fn new(capacity: usize) -> Ring {
        let pooled = pool::pooled();
        Ring {
            bytes: if pooled {
                Box::default()
            } else {
                pool::allocate_own(capacity.max(REQUEST_HEADER_BYTES))
            },
            pooled,
            origin: 0,
            released: 0,
            filled: 0,
            parsed: 0,
        }
    }

    fn capacity(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn free(&self) -> u64 {
        self.capacity() - (self.filled - self.released)
    }

    /// The physical pieces of `[start, end)`: at most two, split at the end
    /// of the buffer.
    fn pieces(&self, start: u64, end: u64) -> (&[u8], &[u8]) {
        if start == end {
            // Also when a pooled ring holds no buffer to take the modulo of.
            return (&[], &[]);
        }
        let at = ((start - self.origin) % self.capacity()) as usize;
        let len = (end - start) as usize;
        let first = len.min(self.bytes.len() - at);
        (&self.bytes[at..at + first], &self.bytes[..len - first])
    }

    /// The free space as two writable pieces, in stream order.
    fn free_pieces(&mut self) -> (&mut [u8], &mut [u8]) {
        let free = self.free() as usize;
        let at = ((self.filled - self.origin) % self.capacity()) as usize;
        let first = free.min(self.bytes.len() - at);
        let (head, tail) = self.bytes.split_at_mut(at);
        let second = free - first;
        (&mut tail[..first], &mut head[..second])
    }

    fn release_to(&mut self, offset: u64) {
        debug_assert!(offset <= self.filled);
        self.released = self.released.max(offset);
        if self.released == self.filled {
            self.origin = self.filled;
            if self.pooled && !self.bytes.is_empty() {
                pool::give_back(std::mem::take(&mut self.bytes));
            }
        }
    }

    /// Makes sure a pooled ring holds a buffer before a read; `false` when
    /// the pool has none to give (the connection waits).
    fn claim(&mut self) -> bool {
        if self.bytes.is_empty() {
            match pool::take() {
                Some(buffer) => self.bytes = buffer,
                None => return false,
            }
        }
        true
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.bytes);
        match (self.pooled, bytes.is_empty()) {
            (_, true) => {}
            (true, false) => pool::give_back(bytes),
            (false, false) => pool::free_own(bytes),
        }
    }
}

impl RingConn {
    pub fn new(config: &ConnConfig) -> RingConn {
        RingConn {
            ring: Ring::new(config.buffer_size_bytes),
            out: VecDeque::new(),
            pending_out_bytes: 0,
            parser: FrameParser::default(),
        }
    }

    pub fn pending_out_bytes(&self) -> usize {
        self.pending_out_bytes
    }

    pub fn inside_request(&self) -> bool {
        self.parser.inside_request()
    }

    /// The single free piece a plain `read()` fills, or `None` when full or
    /// waiting for a pooled buffer ([`RingConn::no_room_step`] says which).
    pub fn read_target(&mut self) -> Option<&mut [u8]> {
        if !self.ring.claim() {
            return None;
        }
        let (first, _) = self.ring.free_pieces();
        if first.is_empty() { None } else { Some(first) }
    }

    /// Both free pieces, for `readv()`; `None` as for
    /// [`RingConn::read_target`].
    pub fn readv_targets(&mut self) -> Option<[IoSliceMut<'_>; 2]> {
        if !self.ring.claim() {
            return None;
        }
        let (first, second) = self.ring.free_pieces();
        if first.is_empty() {
            None
        } else {
            Some([IoSliceMut::new(first), IoSliceMut::new(second)])
        }
    }

    /// Why no read target was given: the ring is full, or it waits for a
    /// pooled buffer.
    pub fn no_room_step(&self) -> ReadStep {
        if self.ring.bytes.is_empty() {
            ReadStep::NoBuffer
        } else {
            ReadStep::NoRoom
        }
    }

    /// A read found nothing (`EAGAIN`, or EOF): an empty ring gives its
    /// pooled buffer back at once.
    pub fn read_found_nothing(&mut self) {
        self.ring.release_to(self.ring.released);
    }

    /// Accounts for `n` bytes just read into the free space of `asked`
    /// bytes, parses them and queues what must be written back.
    pub fn after_read(
        &mut self,
        n: usize,
        asked: usize,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> ReadStep {
        if n == 0 {
            self.read_found_nothing();
            return ReadStep::Eof;
        }
        counters.bytes_in += n as u64;
        self.ring.filled += n as u64;
        if self.parse(config, counters).is_err() {
            return ReadStep::ProtocolError;
        }
        // A request header split across reads is kept by the parser, so with
        // no output queued nothing in the ring is needed: a pooled ring can
        // go back (per-connection rings keep their layout, which the
        // accounting tests derive call counts from).
        if self.ring.pooled && self.out.is_empty() {
            self.ring.release_to(self.ring.parsed);
        }
        ReadStep::Data(ReadHint {
            short: n < asked,
            frame_boundary: config.protocol == Protocol::Frame && !self.parser.inside_request(),
        })
    }

    fn parse(&mut self, config: &ConnConfig, counters: &mut LoopCounters) -> Result<(), ()> {
        while self.ring.parsed < self.ring.filled {
            let available = self.ring.filled - self.ring.parsed;
            if config.protocol == Protocol::Echo {
                self.push_payload(self.ring.parsed, self.ring.filled);
                self.ring.parsed = self.ring.filled;
                continue;
            }
            if self.parser.header_missing() > 0 {
                let (first, _) = self.ring.pieces(self.ring.parsed, self.ring.filled);
                let (taken, started) = self.parser.take_header(first, config.max_frame_bytes);
                self.ring.parsed += taken as u64;
                counters.header_bytes_in += taken as u64;
                match started {
                    Err(_) => return Err(()),
                    Ok(None) => {}
                    Ok(Some(request)) => {
                        counters.requests_parsed += 1;
                        self.pending_out_bytes += RESPONSE_HEADER_BYTES;
                        self.out.push_back(Segment::Header {
                            bytes: request.response_header,
                            written: 0,
                            release_to: self.ring.parsed,
                        });
                    }
                }
            } else {
                let n = self.parser.take_payload(available) as u64;
                self.push_payload(self.ring.parsed, self.ring.parsed + n);
                self.ring.parsed += n;
            }
        }
        Ok(())
    }

    fn push_payload(&mut self, start: u64, end: u64) {
        self.pending_out_bytes += (end - start) as usize;
        if let Some(Segment::Payload { end: last_end, .. }) = self.out.back_mut()
            && *last_end == start
        {
            *last_end = end;
            return;
        }
        self.out.push_back(Segment::Payload { start, end });
    }

    /// The first contiguous piece of pending output (one `write()`).
    pub fn first_piece(&self) -> Option<&[u8]> {
        match self.out.front()? {
            Segment::Header { bytes, written, .. } => Some(&bytes[*written..]),
            Segment::Payload { start, end } => Some(self.ring.pieces(*start, *end).0),
        }
    }

    /// Every pending piece in order, up to `max` (one `writev()`); returns
    /// the bytes gathered.
    pub fn gather<'a>(&'a self, list: &mut Vec<IoSlice<'a>>, max: usize) -> usize {
        let mut total = 0;
        for segment in &self.out {
            let (first, second): (&[u8], &[u8]) = match segment {
                Segment::Header { bytes, written, .. } => (&bytes[*written..], &[]),
                Segment::Payload { start, end } => self.ring.pieces(*start, *end),
            };
            for piece in [first, second] {
                if piece.is_empty() {
                    continue;
                }
                if list.len() == max {
                    return total;
                }
                total += piece.len();
                list.push(IoSlice::new(piece));
            }
        }
        total
    }

    /// Retires `n` written bytes from the front of the output queue.
    pub fn after_write(&mut self, mut n: usize, counters: &mut LoopCounters) {
        counters.bytes_out += n as u64;
        self.pending_out_bytes -= n;
        while n > 0 {
            let Some(front) = self.out.front_mut() else {
                break;
            };
            match front {
                Segment::Header {
                    written,
                    release_to,
                    ..
                } => {
                    let step = n.min(RESPONSE_HEADER_BYTES - *written);
                    *written += step;
                    n -= step;
                    counters.header_bytes_out += step as u64;
                    if *written == RESPONSE_HEADER_BYTES {
                        let release_to = *release_to;
                        self.out.pop_front();
                        self.ring.release_to(release_to);
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
                    self.ring.release_to(start);
                }
            }
        }
        // Zero-length responses leave their request header in the ring
        // until the response header is out; once all output is gone,
        // everything parsed may go.
        if self.out.is_empty() {
            self.ring.release_to(self.ring.parsed);
        }
    }
}
