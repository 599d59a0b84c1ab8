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
use std::convert::Infallible;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::BorrowedFd;

use super::ring::Ring;
use super::segments::{CopiedHeader, Gather, Segment, SegmentQueue, readv_pieces};
use super::{ConnConfig, CopyStrategy, IoSliceScratch, ReadStep, WriteStep, write_outcome};
use crate::protocol::{REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES};
use crate::server::report::LoopCounters;
use crate::sys;

type HeaderBox = Box<[u8; RESPONSE_HEADER_BYTES]>;

/// A response header, copied into the socket by `writev`; its box is
/// reused for a later header.
type ZeroCopyHeader = CopiedHeader<HeaderBox>;

/// A send whose completion has not been reaped yet.
struct HeldSend {
    bytes: usize,
    /// Ring bytes before this offset may be reused once this send and every
    /// earlier one completed.
    release_to: u64,
    completed: bool,
}

/// The ring the requests are read into, and the sends that hold parts of
/// it.
struct HeldRing {
    /// Released up to `sent_release_to` only as completions arrive.
    bytes: Ring,
    /// In send-id order: `held[i]` has id `first_held_id + i`.
    held: VecDeque<HeldSend>,
    first_held_id: u32,
    held_bytes: usize,
    /// The ring offset the sends so far allow to be released.
    sent_release_to: u64,
}

pub struct ZeroCopy {
    ring: HeldRing,
    queue: SegmentQueue<ZeroCopyHeader>,
    spare_headers: Vec<HeaderBox>,
    /// epoll reported `EPOLLERR` while sends were held: reap one
    /// notification before the next send.
    completion_signalled: bool,
}

impl HeldRing {
    /// Releases ring bytes before `offset` that no send references: now if
    /// nothing is held, else with the last held send, since earlier bytes
    /// may belong to it.
    fn release_behind_held(&mut self, offset: u64) {
        self.sent_release_to = self.sent_release_to.max(offset);
        match self.held.back_mut() {
            Some(last) => last.release_to = last.release_to.max(offset),
            None => self.bytes.release_to(offset),
        }
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
            self.bytes.release_to(send.release_to);
        }
        Ok(())
    }
}

impl ZeroCopy {
    fn after_read(
        &mut self,
        read: (usize, usize),
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> ReadStep {
        let spare_headers = &mut self.spare_headers;
        let header = |header: &[u8; RESPONSE_HEADER_BYTES]| {
            let mut bytes = spare_headers.pop().unwrap_or_default();
            *bytes = *header;
            Ok::<_, Infallible>(CopiedHeader::new(bytes))
        };
        let Ok(step) = self
            .queue
            .after_read(read, &mut self.ring.bytes, config, counters, header);
        step
    }

    /// The unsent pieces of the run of headers (or of payloads) at the
    /// front of the queue, in order, up to `max`; returns the bytes
    /// gathered.
    fn gather<'a>(&'a self, list: &mut Vec<IoSlice<'a>>, max: usize) -> usize {
        let ring = &self.ring;
        self.queue
            .gather(list, max, Gather::FrontRun, |segment, at| match segment {
                Segment::Header { header, .. } => &header.unsent()[at..],
                Segment::Payload { start, end } => ring.bytes.pieces(start + at as u64, *end).0,
            })
    }

    /// Retires `n` response-header bytes just copied by `writev`.
    fn after_header_write(&mut self, n: usize, counters: &mut LoopCounters) {
        counters.bytes_out += n as u64;
        let (ring, spare_headers) = (&mut self.ring, &mut self.spare_headers);
        self.queue.retire(
            n,
            counters,
            |header| spare_headers.push(header.into_bytes()),
            |offset| ring.release_behind_held(offset),
        );
    }

    /// Moves `n` just-sent payload bytes from the unsent queue to a new
    /// held send.
    fn after_send(&mut self, n: usize, counters: &mut LoopCounters) {
        counters.bytes_out += n as u64;
        counters.zerocopy_sends += 1;
        let mut release_to = self.ring.sent_release_to;
        // The front run is payloads only (see `gather`): no header is sent.
        self.queue.retire(n, counters, drop, |offset| {
            release_to = release_to.max(offset)
        });
        self.ring.sent_release_to = release_to;
        self.ring.held_bytes += n;
        self.ring.held.push_back(HeldSend {
            bytes: n,
            release_to,
            completed: false,
        });
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
        self.ring.complete(completion, counters)?;
        Ok(WriteStep::Wrote)
    }
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
            ring: HeldRing {
                bytes: Ring::plain((2 * config.buffer_size_bytes).max(REQUEST_HEADER_BYTES)),
                held: VecDeque::new(),
                first_held_id: 0,
                held_bytes: 0,
                sent_release_to: 0,
            },
            queue: SegmentQueue::default(),
            spare_headers: Vec::new(),
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
        let (first, second) = self.ring.bytes.free_pieces();
        if first.is_empty() {
            return Ok(ReadStep::NoRoom);
        }
        let asked = first.len() + second.len();
        let mut targets = [IoSliceMut::new(first), IoSliceMut::new(second)];
        Ok(match readv_pieces(fd, &mut targets)? {
            Some(n) => self.after_read((n, asked), config, counters),
            None => ReadStep::WouldBlock,
        })
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
        if self.queue.unsent_bytes() == 0 {
            return Ok(WriteStep::Idle);
        }
        let mut list = scratch.take();
        let asked = self.gather(&mut list, sys::io::IOV_MAX);
        if matches!(self.queue.front(), Some(Segment::Header { .. })) {
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
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) && !self.ring.held.is_empty() => {
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
        if self.ring.held.is_empty() {
            return false;
        }
        self.completion_signalled = true;
        true
    }

    /// Unsent bytes plus bytes sent but still held for their completion.
    fn pending_out_bytes(&self) -> usize {
        self.queue.unsent_bytes() + self.ring.held_bytes
    }

    fn inside_request(&self) -> bool {
        self.queue.inside_request()
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
    use crate::protocol::Protocol;

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
        let (target, _) = conn.ring.bytes.free_pieces();
        target[..bytes.len()].copy_from_slice(bytes);
        let asked = target.len();
        let mut counters = LoopCounters::default();
        assert!(matches!(
            conn.after_read((bytes.len(), asked), config, &mut counters),
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
        assert_eq!(conn.ring.bytes.free_pieces().0.len(), 24);
        feed(&mut conn, &[8u8; 24], &config);
        assert!(
            conn.ring.bytes.free_pieces().0.is_empty(),
            "held bytes must not be reused"
        );
        conn.after_send(24, &mut counters);
        assert_eq!(counters.zerocopy_sends, 2);
        assert_eq!(conn.ring.held.len(), 2);
        // Completing the second alone frees nothing: space goes in order.
        let done = |first_id, last_id| sys::zerocopy::Completion {
            first_id,
            last_id,
            copied: true,
        };
        conn.ring.complete(done(1, 1), &mut counters).unwrap();
        assert!(conn.ring.bytes.free_pieces().0.is_empty());
        assert_eq!(conn.pending_out_bytes(), 64);
        conn.ring.complete(done(0, 0), &mut counters).unwrap();
        assert_eq!(conn.pending_out_bytes(), 0);
        assert_eq!(conn.ring.bytes.free_pieces().0.len(), 64, "all free again");
        assert_eq!(counters.zerocopy_completed_sends, 2);
        assert_eq!(counters.zerocopy_copied_sends, 2);
        // Ids nobody holds are an error, not a silent release.
        let err = conn.ring.complete(done(2, 2), &mut counters).unwrap_err();
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
        assert_eq!(
            conn.ring.bytes.released(),
            4,
            "nothing held: the request header is free"
        );
        conn.after_send(4, &mut counters);
        assert_eq!(conn.pending_out_bytes(), 4, "the payload is held");
        // The next request's header is answered by copy while the first
        // payload is held: its bytes wait for that send.
        feed(&mut conn, &frame(b""), &config);
        conn.after_header_write(8, &mut counters);
        assert_eq!(conn.ring.bytes.released(), 4);
        assert_eq!(counters.header_bytes_out, 16);
        let done = sys::zerocopy::Completion {
            first_id: 0,
            last_id: 0,
            copied: false,
        };
        conn.ring.complete(done, &mut counters).unwrap();
        assert_eq!(
            conn.ring.bytes.released(),
            12,
            "both requests free once the send completed"
        );
        assert_eq!(conn.pending_out_bytes(), 0);
        assert_eq!(counters.zerocopy_copied_sends, 0);
    }
}
