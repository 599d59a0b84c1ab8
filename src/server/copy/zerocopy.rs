//! `zerocopy`: requests are `readv()` into a ring buffer as under `writev`;
//! payloads go out straight from the ring, every pending piece in one
//! `sendmsg(MSG_ZEROCOPY)`, which pins the pages instead of copying them
//! into the socket (`sys::zerocopy`). Response headers are copied, with one
//! `writev()` of those at the front of the queue: the kernel charges a
//! zerocopy piece a whole page per page it touches, so an 8-byte header
//! would count as 4 KiB against the receiver's buffer, and against a small
//! one (conformance's slow reader) the receive window collapsed below a
//! segment and the transfer slowed to zero-window probes.
//!
//! **Held buffers.** A zerocopy send returns before the kernel is done with
//! the bytes: they may still be in flight, or waiting in the send queue for
//! an acknowledgement, read straight from our memory. If the ring space
//! were reused for the next request, the peer could receive the new bytes
//! instead of the old ones. So every send is recorded as a [`HeldSend`]
//! under its send id, and the ring space it used is released only when
//! the kernel's completion for that id has been reaped from the socket's
//! error queue (request bytes behind a held send, e.g. a request header
//! whose response header was copied, wait for that send too). Until then they
//! count as pending output, so the connection's pending-output bound (the
//! loop's watermarks, and the ring's own size) applies to them: a
//! connection whose buffers are all held stops reading until completions
//! free them, as one whose output is blocked does.
//!
//! **Completions and epoll.** A completion on the error queue makes epoll
//! report `EPOLLERR`, which it reports whatever the interest, and
//! level-triggered for as long as the queue is not empty. The loop hands
//! that event to [`CopyStrategy::error_event`]; the next
//! [`CopyStrategy::write_once`] reaps one notification with
//! `recvmsg(MSG_ERRQUEUE)`. One reap per event cannot spin: each takes one
//! notification off the queue, and when more remain the kernel reports the
//! socket again (`sock_dequeue_err_skb` re-signals the error), which gives
//! an edge-triggered registration its next edge too. An `EPOLLERR` with an
//! empty queue is a real socket error and closes the connection, as under
//! every other strategy.
//!
//! **Cost.** Each send pins and later unpins its pages and produces a
//! completion to reap, so small responses pay a per-send overhead that a
//! plain copy would not; it is not special-cased away (e.g. by copying
//! small sends), since measuring it is the point. And on loopback the
//! kernel copies anyway (`SO_EE_CODE_ZEROCOPY_COPIED` on every completion):
//! the receiving socket must not hold the sender's pages. The path can only
//! pay on a real NIC that sends straight from the pinned pages.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::BorrowedFd;

use super::{ConnConfig, CopyStrategy, IoSliceScratch, ReadStep, WriteStep, write_outcome};
use crate::protocol::{Protocol, REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES};
use crate::server::frame::FrameParser;
use crate::server::report::LoopCounters;
use crate::server::trigger::ReadHint;
use crate::sys;

type HeaderBox = Box<[u8; RESPONSE_HEADER_BYTES]>;

/// Unsent output, in stream order.
enum Segment {
    /// A response header, copied into the socket by `writev`.
    Header {
        bytes: HeaderBox,
        written: usize,
        /// Once the header is sent, the request bytes before this offset
        /// are no longer needed.
        release_to: u64,
    },
    Payload {
        start: u64,
        end: u64,
    },
}

/// A send whose completion has not been reaped yet.
struct HeldSend {
    bytes: usize,
    /// Ring bytes before this offset may be reused once this send and every
    /// earlier one completed.
    release_to: u64,
    completed: bool,
}

pub struct ZeroCopy {
    /// Positions are absolute stream offsets; `(offset - origin) %
    /// capacity` is where a byte lives in `ring`.
    ring: Box<[u8]>,
    /// Moved up to `filled` whenever nothing is held or pending, so the
    /// next read starts at the beginning of the ring.
    origin: u64,
    /// Everything before this was sent and its send completed.
    released: u64,
    filled: u64,
    parsed: u64,
    out: VecDeque<Segment>,
    unsent_bytes: usize,
    /// In send-id order: `held[i]` has id `first_held_id + i`.
    held: VecDeque<HeldSend>,
    first_held_id: u32,
    held_bytes: usize,
    /// The ring offset the sends so far allow to be released.
    sent_release_to: u64,
    spare_headers: Vec<HeaderBox>,
    parser: FrameParser,
    /// epoll reported `EPOLLERR` while sends were held: reap one
    /// notification before the next send.
    completion_signalled: bool,
}

impl ZeroCopy {
    fn capacity(&self) -> u64 {
        self.ring.len() as u64
    }

    /// The free space as two writable pieces, in stream order (the second
    /// empty unless the space wraps around the buffer's end).
    fn free_pieces(&mut self) -> (&mut [u8], &mut [u8]) {
        let free = (self.capacity() - (self.filled - self.released)) as usize;
        let at = ((self.filled - self.origin) % self.capacity()) as usize;
        let first = free.min(self.ring.len() - at);
        let (head, tail) = self.ring.split_at_mut(at);
        (&mut tail[..first], &mut head[..free - first])
    }

    /// The physical pieces of `[start, end)`, split at the buffer's end.
    fn pieces(&self, start: u64, end: u64) -> (&[u8], &[u8]) {
        pieces_of(&self.ring, self.origin, start, end)
    }

    fn after_read(
        &mut self,
        n: usize,
        asked: usize,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> ReadStep {
        if n == 0 {
            return ReadStep::Eof;
        }
        counters.bytes_in += n as u64;
        self.filled += n as u64;
        if self.parse(config, counters).is_err() {
            return ReadStep::ProtocolError;
        }
        ReadStep::Data(ReadHint {
            short: n < asked,
            frame_boundary: config.protocol == Protocol::Frame && !self.parser.inside_request(),
        })
    }

    fn parse(&mut self, config: &ConnConfig, counters: &mut LoopCounters) -> Result<(), ()> {
        while self.parsed < self.filled {
            if config.protocol == Protocol::Echo {
                self.push_payload(self.parsed, self.filled);
                self.parsed = self.filled;
                continue;
            }
            if self.parser.header_missing() > 0 {
                let (first, _) = pieces_of(&self.ring, self.origin, self.parsed, self.filled);
                let (taken, started) = self.parser.take_header(first, config.max_frame_bytes);
                self.parsed += taken as u64;
                counters.header_bytes_in += taken as u64;
                match started {
                    Err(_) => return Err(()),
                    Ok(None) => {}
                    Ok(Some(request)) => {
                        counters.requests_parsed += 1;
                        let mut bytes = self.spare_headers.pop().unwrap_or_default();
                        *bytes = request.response_header;
                        self.unsent_bytes += RESPONSE_HEADER_BYTES;
                        self.out.push_back(Segment::Header {
                            bytes,
                            written: 0,
                            release_to: self.parsed,
                        });
                    }
                }
            } else {
                let n = self.parser.take_payload(self.filled - self.parsed) as u64;
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

    /// The unsent pieces of the run of headers (or of payloads) at the
    /// front of the queue, in order, up to `max`; returns the bytes
    /// gathered.
    fn gather<'a>(&'a self, list: &mut Vec<IoSlice<'a>>, max: usize) -> usize {
        let headers = matches!(self.out.front(), Some(Segment::Header { .. }));
        let mut total = 0;
        for segment in &self.out {
            let (first, second): (&[u8], &[u8]) = match segment {
                Segment::Header { bytes, written, .. } if headers => (&bytes[*written..], &[]),
                Segment::Payload { start, end } if !headers => self.pieces(*start, *end),
                _ => return total,
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

    /// Retires `n` response-header bytes just copied by `writev`.
    fn after_header_write(&mut self, mut n: usize, counters: &mut LoopCounters) {
        counters.bytes_out += n as u64;
        self.unsent_bytes -= n;
        while n > 0 {
            let Some(Segment::Header {
                written,
                release_to,
                ..
            }) = self.out.front_mut()
            else {
                break;
            };
            let step = n.min(RESPONSE_HEADER_BYTES - *written);
            *written += step;
            n -= step;
            counters.header_bytes_out += step as u64;
            if *written == RESPONSE_HEADER_BYTES {
                let release_to = *release_to;
                if let Some(Segment::Header { bytes, .. }) = self.out.pop_front() {
                    self.spare_headers.push(bytes);
                }
                self.release_behind_held(release_to);
            }
        }
        // Zero-length responses leave their request header unreleased
        // until the response header is out; once nothing is unsent,
        // everything parsed may go.
        if self.out.is_empty() {
            self.release_behind_held(self.parsed);
        }
    }

    /// Releases ring bytes before `offset` that no send references: now if
    /// nothing is held, else with the last held send, since earlier bytes
    /// may belong to it.
    fn release_behind_held(&mut self, offset: u64) {
        self.sent_release_to = self.sent_release_to.max(offset);
        match self.held.back_mut() {
            Some(last) => last.release_to = last.release_to.max(offset),
            None => self.release_to(offset),
        }
    }

    /// Moves `n` just-sent payload bytes from the unsent queue to a new
    /// held send.
    fn after_send(&mut self, mut n: usize, counters: &mut LoopCounters) {
        counters.bytes_out += n as u64;
        counters.zerocopy_sends += 1;
        self.unsent_bytes -= n;
        let mut send = HeldSend {
            bytes: n,
            release_to: self.sent_release_to,
            completed: false,
        };
        while n > 0 {
            let Some(Segment::Payload { start, end }) = self.out.front_mut() else {
                break;
            };
            let step = (n as u64).min(*end - *start);
            *start += step;
            n -= step as usize;
            send.release_to = send.release_to.max(*start);
            if *start == *end {
                self.out.pop_front();
            }
        }
        if self.out.is_empty() {
            send.release_to = send.release_to.max(self.parsed);
        }
        self.sent_release_to = send.release_to;
        self.held_bytes += send.bytes;
        self.held.push_back(send);
    }

    /// Takes one notification off the error queue and releases what the
    /// completed sends held, oldest first.
    fn reap(&mut self, fd: BorrowedFd<'_>, counters: &mut LoopCounters) -> io::Result<WriteStep> {
        let completion = match sys::zerocopy::reap(fd) {
            Ok(completion) => completion,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::other(
                    "epoll reported an error and the error queue holds no completion: \
                     the socket itself failed",
                ));
            }
            Err(e) => return Err(e),
        };
        self.complete(completion, counters)?;
        Ok(WriteStep::Wrote)
    }

    /// Marks the sends of `completion` completed and frees what the oldest
    /// completed ones held.
    fn complete(
        &mut self,
        completion: sys::zerocopy::Completion,
        counters: &mut LoopCounters,
    ) -> io::Result<()> {
        let first = completion.first_id.wrapping_sub(self.first_held_id) as usize;
        let sends = completion.sends() as usize;
        if first >= self.held.len() || sends > self.held.len() - first {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "zerocopy completion for sends {}..={}, but only {} sends from id {} are held",
                    completion.first_id,
                    completion.last_id,
                    self.held.len(),
                    self.first_held_id
                ),
            ));
        }
        for send in self.held.range_mut(first..first + sends) {
            send.completed = true;
        }
        counters.zerocopy_completed_sends += sends as u64;
        if completion.copied {
            counters.zerocopy_copied_sends += sends as u64;
        }
        // Completions normally come in send order; one that overtakes an
        // earlier send waits for it, since ring space is freed in order.
        while self.held.front().is_some_and(|s| s.completed) {
            let send = self.held.pop_front().expect("checked above");
            self.first_held_id = self.first_held_id.wrapping_add(1);
            self.held_bytes -= send.bytes;
            self.release_to(send.release_to);
        }
        Ok(())
    }

    fn release_to(&mut self, offset: u64) {
        debug_assert!(offset <= self.filled);
        self.released = self.released.max(offset);
        if self.released == self.filled {
            self.origin = self.filled;
        }
    }
}

/// The pieces of stream range `[start, end)` in `ring`, split at its end.
fn pieces_of(ring: &[u8], origin: u64, start: u64, end: u64) -> (&[u8], &[u8]) {
    let at = ((start - origin) % ring.len() as u64) as usize;
    let len = (end - start) as usize;
    let first = len.min(ring.len() - at);
    (&ring[at..at + first], &ring[..len - first])
}

impl CopyStrategy for ZeroCopy {
    const NAME: &'static str = "zerocopy";

    /// The ring is twice the configured buffer. The watermarks (the
    /// buffer size) bound what is held and unsent, so half the ring stays
    /// free for reading while sends wait for their completions. With a
    /// ring the held sends could fill, a peer with a tiny receive buffer
    /// (conformance's slow reader) slowed to a few KB/s on loopback: the
    /// server stopped reading with the whole ring held, and its one
    /// outstanding send then went out at the pace of zero-window probes.
    fn new(config: &ConnConfig) -> io::Result<Self> {
        Ok(ZeroCopy {
            ring: vec![0u8; (2 * config.buffer_size_bytes).max(REQUEST_HEADER_BYTES)]
                .into_boxed_slice(),
            origin: 0,
            released: 0,
            filled: 0,
            parsed: 0,
            out: VecDeque::new(),
            unsent_bytes: 0,
            held: VecDeque::new(),
            first_held_id: 0,
            held_bytes: 0,
            sent_release_to: 0,
            spare_headers: Vec::new(),
            parser: FrameParser::default(),
            completion_signalled: false,
        })
    }

    fn attach(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        sys::zerocopy::enable(fd)
    }

    fn read_once(
        &mut self,
        fd: BorrowedFd<'_>,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep> {
        // Both free pieces at once: held sends keep the ring from emptying
        // between requests (the next request is read before the last
        // response's completion is reaped), so requests often straddle its
        // end, and one `readv` takes such a request in one call.
        let (first, second) = self.free_pieces();
        if first.is_empty() {
            return Ok(ReadStep::NoRoom);
        }
        let asked = first.len() + second.len();
        let pieces = if second.is_empty() { 1 } else { 2 };
        let mut targets = [IoSliceMut::new(first), IoSliceMut::new(second)];
        match sys::io::readv(fd, &mut targets[..pieces]) {
            Ok(n) => Ok(self.after_read(n, asked, config, counters)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadStep::WouldBlock),
            Err(e) => Err(e),
        }
    }

    /// One call: the reap of a signalled completion first (it may free
    /// the room the next read needs), else one `writev` of the headers at
    /// the front of the queue, else one zerocopy send of the payloads
    /// there.
    fn write_once(
        &mut self,
        fd: BorrowedFd<'_>,
        scratch: &mut IoSliceScratch,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep> {
        if std::mem::take(&mut self.completion_signalled) {
            return self.reap(fd, counters);
        }
        if self.unsent_bytes == 0 {
            return Ok(WriteStep::Idle);
        }
        let mut list = scratch.take();
        let asked = self.gather(&mut list, sys::io::IOV_MAX);
        if matches!(self.out.front(), Some(Segment::Header { .. })) {
            let result = sys::io::writev(fd, &list);
            scratch.give_back(list);
            let (n, step) = write_outcome(result, asked)?;
            self.after_header_write(n, counters);
            return Ok(step);
        }
        let result = sys::zerocopy::send(fd, &list);
        scratch.give_back(list);
        let result = match result {
            // The notifications of held sends use up the socket's option
            // memory (`optmem_max`); the next completion frees some. Nothing
            // more to do until then, and epoll reports that completion.
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) && !self.held.is_empty() => {
                return Ok(WriteStep::Idle);
            }
            other => other,
        };
        let (n, step) = write_outcome(result, asked)?;
        if n > 0 {
            self.after_send(n, counters);
        }
        Ok(step)
    }

    fn error_event(&mut self) -> bool {
        if self.held.is_empty() {
            return false;
        }
        self.completion_signalled = true;
        true
    }

    /// Unsent bytes plus bytes sent but still held for their completion.
    fn pending_out_bytes(&self) -> usize {
        self.unsent_bytes + self.held_bytes
    }

    fn inside_request(&self) -> bool {
        self.parser.inside_request()
    }
}

// Dropping a connection with sends still held frees memory the kernel may
// still send from. That is memory-safe (the kernel holds its own page
// references), and it only happens when the connection is closed for an
// error or at a forced shutdown, never on a clean close: a connection
// closes cleanly only once its pending output, held bytes included, is 0.

#[cfg(test)]
mod tests {
    use super::*;

    fn config(protocol: Protocol) -> ConnConfig {
        ConnConfig {
            protocol,
            max_frame_bytes: 1 << 20,
            // A ring of 64 bytes.
            buffer_size_bytes: 32,
            pipe_size_bytes: 4096,
            served_file: None,
        }
    }

    fn feed(conn: &mut ZeroCopy, bytes: &[u8], config: &ConnConfig) {
        let (target, _) = conn.free_pieces();
        target[..bytes.len()].copy_from_slice(bytes);
        let asked = target.len();
        let mut counters = LoopCounters::default();
        assert!(matches!(
            conn.after_read(bytes.len(), asked, config, &mut counters),
            ReadStep::Data(_)
        ));
    }

    #[test]
    fn sent_bytes_stay_held_until_their_completion() {
        let config = config(Protocol::Echo);
        let mut conn = ZeroCopy::new(&config).unwrap();
        let mut counters = LoopCounters::default();
        feed(&mut conn, &[7u8; 40], &config);
        conn.after_send(40, &mut counters);
        // Sent, but the ring space is not free: only 24 of 64 bytes left.
        assert_eq!(conn.pending_out_bytes(), 40);
        assert_eq!(conn.free_pieces().0.len(), 24);
        feed(&mut conn, &[8u8; 24], &config);
        assert!(
            conn.free_pieces().0.is_empty(),
            "held bytes must not be reused"
        );
        conn.after_send(24, &mut counters);
        assert_eq!(counters.zerocopy_sends, 2);
        assert_eq!(conn.held.len(), 2);
        // Completing the second alone frees nothing: space goes in order.
        let done = |first_id, last_id| sys::zerocopy::Completion {
            first_id,
            last_id,
            copied: true,
        };
        conn.complete(done(1, 1), &mut counters).unwrap();
        assert!(conn.free_pieces().0.is_empty());
        assert_eq!(conn.pending_out_bytes(), 64);
        conn.complete(done(0, 0), &mut counters).unwrap();
        assert_eq!(conn.pending_out_bytes(), 0);
        assert_eq!(conn.free_pieces().0.len(), 64, "all free again");
        assert_eq!(counters.zerocopy_completed_sends, 2);
        assert_eq!(counters.zerocopy_copied_sends, 2);
        // Ids nobody holds are an error, not a silent release.
        let err = conn.complete(done(2, 2), &mut counters).unwrap_err();
        assert!(err.to_string().contains("sends 2..=2"), "{err}");
    }

    #[test]
    fn request_bytes_behind_a_held_send_wait_for_it() {
        let config = config(Protocol::Frame);
        let mut conn = ZeroCopy::new(&config).unwrap();
        let mut counters = LoopCounters::default();
        let frame = |payload: &[u8]| {
            let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
            bytes.extend_from_slice(payload);
            bytes
        };
        feed(&mut conn, &frame(b"abcd"), &config);
        assert_eq!(conn.pending_out_bytes(), 12);
        // The header is copied in two writes; only then does the payload go.
        conn.after_header_write(5, &mut counters);
        conn.after_header_write(3, &mut counters);
        assert_eq!(
            conn.spare_headers.len(),
            1,
            "a copied header's box is reused"
        );
        assert_eq!(conn.released, 4, "nothing held: the request header is free");
        conn.after_send(4, &mut counters);
        assert_eq!(conn.pending_out_bytes(), 4, "the payload is held");
        // The next request's header is answered by copy while the first
        // payload is held: its bytes wait for that send.
        feed(&mut conn, &frame(b""), &config);
        conn.after_header_write(8, &mut counters);
        assert_eq!(conn.released, 4);
        assert_eq!(counters.header_bytes_out, 16);
        let done = sys::zerocopy::Completion {
            first_id: 0,
            last_id: 0,
            copied: false,
        };
        conn.complete(done, &mut counters).unwrap();
        assert_eq!(
            conn.released, 12,
            "both requests free once the send completed"
        );
        assert_eq!(conn.pending_out_bytes(), 0);
        assert_eq!(counters.zerocopy_copied_sends, 0);
    }
}
