//! One connection of the `uring-multishot` loop: where its bytes are and
//! what it may do next. The loop (`multishot.rs`) turns completions into
//! calls here and queues what these say.

use super::copy::{UringCopy, Vectored};
use crate::server::copy::{ConnConfig, ReadStep};
use crate::server::report::LoopCounters;
use crate::server::turn::{CloseReason, Watermarks};
use crate::sys::Fd;
use crate::sys::uring::OpId;

/// The connection's multishot receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Recv {
    /// Not armed: never armed yet, or its final completion came.
    Off,
    Armed(OpId),
    /// Cancelled, its final completion not yet reaped.
    Cancelling,
}

pub(super) struct MultishotConn {
    /// Operations name the connection's registered file slot instead;
    /// the fd is held so that the connection counts against the fd limit
    /// (`multishot.rs`'s module doc), and closed when this is dropped.
    _fd: Fd,
    /// The ring buffer, parser and output queue; `None` while a send is in
    /// flight, whose owner it is (see `sys::uring`).
    pub(super) data: Option<Box<Vectored>>,
    pub(super) send: Option<OpId>,
    pub(super) recv: Recv,
    /// A receive was armed once: arming again is a re-arm.
    pub(super) recv_armed_before: bool,
    /// Bytes received but not yet in the ring buffer: they came while a
    /// send held the data, or while the ring was full. Bounded: receiving
    /// stops once this plus pending output reaches the high watermark.
    pub(super) stash: Vec<u8>,
    /// Pending output as of the last time the data was here.
    pub(super) pending_out_bytes: usize,
    /// The peer closed its sending side.
    pub(super) eof: bool,
    /// EOF seen, or shutting down: never receive again.
    pub(super) read_closed: bool,
    /// Closing for this reason once nothing is in flight.
    pub(super) closing: Option<CloseReason>,
}

/// What the loop should do for a connection next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Queue a send of the pending output (the data goes with it).
    Send,
    /// Close now: nothing is in flight.
    Close(CloseReason),
    /// Cancel the operations in flight, then close when they are back.
    Cancel(CloseReason),
    /// Arm the multishot receive.
    ArmRecv,
    /// Stop the multishot receive (backpressure or shutdown).
    StopRecv,
    Wait,
}

impl MultishotConn {
    pub(super) fn new(fd: Fd, config: &ConnConfig) -> MultishotConn {
        MultishotConn {
            _fd: fd,
            data: Some(Box::new(Vectored::with_ring_buffer(config))),
            send: None,
            recv: Recv::Off,
            recv_armed_before: false,
            stash: Vec::new(),
            pending_out_bytes: 0,
            eof: false,
            read_closed: false,
            closing: None,
        }
    }

    /// Takes received bytes: straight into the ring buffer and parser when
    /// the data is here and nothing is stashed before them, the rest (or
    /// all) into the stash. An error is a protocol violation.
    pub(super) fn take_input(
        &mut self,
        bytes: &[u8],
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> Result<(), ()> {
        let used = match self.data.as_mut() {
            Some(data) if self.stash.is_empty() => feed(data, bytes, config, counters)?,
            _ => 0,
        };
        self.stash.extend_from_slice(&bytes[used..]);
        Ok(())
    }

    /// Whether nothing of this connection is with the kernel.
    pub(super) fn idle(&self) -> bool {
        self.send.is_none() && self.recv == Recv::Off
    }

    /// Feeds the stash into the ring buffer (data here) and decides the
    /// next step, by the rules every loop follows: output first; close
    /// once everything owed is sent after EOF or shutdown; receive while
    /// pending output (with the stash) stays below the high watermark,
    /// again once it drained to the low one.
    pub(super) fn next(
        &mut self,
        config: &ConnConfig,
        watermarks: &Watermarks,
        counters: &mut LoopCounters,
    ) -> Next {
        if let Some(reason) = self.closing {
            return if self.idle() {
                Next::Close(reason)
            } else {
                Next::Cancel(reason)
            };
        }
        if let Some(data) = self.data.as_mut() {
            if !self.stash.is_empty() {
                match feed(data, &self.stash, config, counters) {
                    Ok(used) => drop(self.stash.drain(..used)),
                    Err(()) => return Next::Cancel(CloseReason::ProtocolError),
                }
            }
            self.pending_out_bytes = data.pending_out_bytes();
            if self.eof && self.stash.is_empty() && data.inside_request() {
                return Next::Cancel(CloseReason::ProtocolError);
            }
            if self.pending_out_bytes > 0 {
                return Next::Send;
            }
            if self.read_closed && self.stash.is_empty() {
                return Next::Cancel(CloseReason::Done);
            }
        }
        let backlog = self.pending_out_bytes + self.stash.len();
        match self.recv {
            Recv::Armed(_) if self.read_closed || backlog >= watermarks.high_bytes => {
                Next::StopRecv
            }
            Recv::Off if !self.read_closed && backlog <= watermarks.low_bytes => Next::ArmRecv,
            _ => Next::Wait,
        }
    }
}

/// Copies `input` into the ring buffer's free space and parses it, as far
/// as there is room; returns the bytes taken.
fn feed(
    data: &mut Vectored,
    input: &[u8],
    config: &ConnConfig,
    counters: &mut LoopCounters,
) -> Result<usize, ()> {
    let mut used = 0;
    while used < input.len() {
        let Some(target) = data.read_target() else {
            break;
        };
        let asked = target.len();
        let n = asked.min(input.len() - used);
        target[..n].copy_from_slice(&input[used..used + n]);
        used += n;
        if data.after_read(n, asked, config, counters) == ReadStep::ProtocolError {
            return Err(());
        }
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;

    const BUFFER: usize = 64 << 10;

    fn echo_conn() -> (MultishotConn, ConnConfig, Watermarks) {
        let config = ConnConfig {
            protocol: Protocol::Echo,
            max_frame_bytes: 1 << 20,
            buffer_size_bytes: BUFFER,
            pipe_size_bytes: BUFFER,
            served_file: None,
        };
        let socket = std::os::fd::OwnedFd::from(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
        let conn = MultishotConn::new(Fd::from(socket), &config);
        let watermarks = Watermarks {
            high_bytes: BUFFER,
            low_bytes: BUFFER / 2,
        };
        (conn, config, watermarks)
    }

    #[test]
    fn bytes_wait_in_the_stash_while_a_send_holds_the_data_and_count_in_the_watermark() {
        let (mut conn, config, watermarks) = echo_conn();
        let mut counters = LoopCounters::default();
        assert_eq!(
            conn.next(&config, &watermarks, &mut counters),
            Next::ArmRecv
        );
        // Straight into the ring: output pending, so a send comes first.
        conn.take_input(&[1; 100], &config, &mut counters).unwrap();
        assert_eq!(conn.next(&config, &watermarks, &mut counters), Next::Send);
        // A send holds the data: what arrives now waits in the stash, and
        // above the low watermark no receive is armed again.
        let data = conn.data.take().unwrap();
        conn.take_input(&[2; 40 << 10], &config, &mut counters)
            .unwrap();
        assert_eq!(conn.stash.len(), 40 << 10);
        assert_eq!(conn.next(&config, &watermarks, &mut counters), Next::Wait);
        // Back with the data, the stash goes into the ring in order.
        conn.data = Some(data);
        assert_eq!(conn.next(&config, &watermarks, &mut counters), Next::Send);
        assert!(conn.stash.is_empty());
        assert_eq!(conn.pending_out_bytes, 100 + (40 << 10));
        assert_eq!(counters.bytes_in, 100 + (40 << 10));
        // More than the ring holds stays stashed until output drains.
        conn.take_input(&vec![3; BUFFER], &config, &mut counters)
            .unwrap();
        assert_eq!(conn.stash.len(), 100 + (40 << 10));
        conn.eof = true;
        conn.read_closed = true;
        assert_eq!(conn.next(&config, &watermarks, &mut counters), Next::Send);
    }
}
