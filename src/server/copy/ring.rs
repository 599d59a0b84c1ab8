//! The ring buffer and output queue shared by the `rw` and `writev`
//! strategies. Payload bytes are written back straight from the ring where
//! they were read, so neither strategy copies a payload inside user space;
//! response headers are small segments queued between payload pieces.
//!
//! The ring's buffer follows the thread's buffer policy ([`super::pool`]):
//! owned from accept to close, or taken from the pool just before a read and
//! given back whenever the ring is empty.

use std::convert::Infallible;
use std::io::{IoSlice, IoSliceMut};

use super::segments::{CopiedHeader, Gather, RequestBytes, Segment, SegmentQueue};
use crate::protocol::{REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES};
use crate::server::copy::{ConnConfig, ReadStep, pool};
use crate::server::report::LoopCounters;

/// Positions are absolute stream offsets; `(offset - origin) % capacity`
/// is where a byte lives in `bytes`.
pub struct Ring {
    /// Empty while a pooled ring holds no buffer.
    bytes: Box<[u8]>,
    /// The buffer comes from the thread's pool (see [`pool`]).
    pooled: bool,
    /// A per-connection buffer counted in the pool's figures (not a
    /// [`Ring::plain`] one).
    counted: bool,
    /// Moved up to `filled` whenever the ring empties, so that the next read
    /// starts at the beginning of the buffer: a ping-pong stream then never
    /// splits a message at the buffer's end.
    origin: u64,
    /// Everything before this has been written back (or was a request
    /// header) and may be overwritten.
    released: u64,
    /// Everything before this has been read from the socket.
    filled: u64,
}

/// A response header, kept inline and copied out by `write`/`writev`.
type RingHeader = CopiedHeader<[u8; RESPONSE_HEADER_BYTES]>;

/// A connection's buffered data path: ring + parser + output queue.
pub struct RingConn {
    ring: Ring,
    queue: SegmentQueue<RingHeader>,
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
            counted: !pooled,
            origin: 0,
            released: 0,
            filled: 0,
        }
    }

    /// A ring over a buffer of its own of `capacity` bytes, outside the
    /// buffer policy and its figures (zerocopy's, whose sends hold ring
    /// space until their completions).
    pub(super) fn plain(capacity: usize) -> Ring {
        Ring {
            bytes: vec![0u8; capacity].into_boxed_slice(),
            pooled: false,
            counted: false,
            origin: 0,
            released: 0,
            filled: 0,
        }
    }

    /// Everything before this may be overwritten.
    #[cfg(test)]
    pub(super) fn released(&self) -> u64 {
        self.released
    }

    fn capacity(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn free(&self) -> u64 {
        self.capacity() - (self.filled - self.released)
    }

    /// The physical pieces of `[start, end)`: at most two, split at the end
    /// of the buffer.
    pub(super) fn pieces(&self, start: u64, end: u64) -> (&[u8], &[u8]) {
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
    pub(super) fn free_pieces(&mut self) -> (&mut [u8], &mut [u8]) {
        let free = self.free() as usize;
        let at = ((self.filled - self.origin) % self.capacity()) as usize;
        let first = free.min(self.bytes.len() - at);
        let (head, tail) = self.bytes.split_at_mut(at);
        let second = free - first;
        (&mut tail[..first], &mut head[..second])
    }

    pub(super) fn release_to(&mut self, offset: u64) {
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

impl RequestBytes for Ring {
    fn filled(&self) -> u64 {
        self.filled
    }

    fn advance(&mut self, n: usize) {
        self.filled += n as u64;
    }

    fn first_piece(&self, start: u64, end: u64) -> &[u8] {
        self.pieces(start, end).0
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.bytes);
        match (self.pooled, bytes.is_empty()) {
            (_, true) => {}
            (true, false) => pool::give_back(bytes),
            (false, false) if self.counted => pool::free_own(bytes),
            (false, false) => {}
        }
    }
}

impl RingConn {
    pub fn new(config: &ConnConfig) -> RingConn {
        RingConn {
            ring: Ring::new(config.buffer_size_bytes),
            queue: SegmentQueue::default(),
        }
    }

    pub fn pending_out_bytes(&self) -> usize {
        self.queue.unsent_bytes()
    }

    pub fn inside_request(&self) -> bool {
        self.queue.inside_request()
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
        }
        let header =
            |header: &[u8; RESPONSE_HEADER_BYTES]| Ok::<_, Infallible>(CopiedHeader::new(*header));
        let Ok(step) = self
            .queue
            .after_read((n, asked), &mut self.ring, config, counters, header);
        // A request header split across reads is kept by the parser, so with
        // no output queued nothing in the ring is needed: a pooled ring can
        // go back (per-connection rings keep their layout, which the
        // accounting tests derive call counts from).
        if matches!(step, ReadStep::Data(_)) && self.ring.pooled && self.queue.is_empty() {
            self.ring.release_to(self.queue.parsed());
        }
        step
    }

    /// The first contiguous piece of pending output (one `write()`).
    pub fn first_piece(&self) -> Option<&[u8]> {
        Some(piece_at(&self.ring, self.queue.front()?, 0))
    }

    /// Every pending piece in order, up to `max` (one `writev()`); returns
    /// the bytes gathered.
    pub fn gather<'a>(&'a self, list: &mut Vec<IoSlice<'a>>, max: usize) -> usize {
        self.queue.gather(list, max, Gather::All, |segment, at| {
            piece_at(&self.ring, segment, at)
        })
    }

    /// Retires `n` written bytes from the front of the output queue.
    pub fn after_write(&mut self, n: usize, counters: &mut LoopCounters) {
        counters.bytes_out += n as u64;
        let ring = &mut self.ring;
        self.queue
            .retire(n, counters, drop, |offset| ring.release_to(offset));
    }
}

/// The contiguous piece of `segment` from `at` bytes into its unsent part.
fn piece_at<'a>(ring: &'a Ring, segment: &'a Segment<RingHeader>, at: usize) -> &'a [u8] {
    match segment {
        Segment::Header { header, .. } => &header.unsent()[at..],
        Segment::Payload { start, end } => ring.pieces(start + at as u64, *end).0,
    }
}
