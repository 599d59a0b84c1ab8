//! One connection's state and its turn: read as the trigger allows, write
//! what is pending, apply the watermarks, all within a bounded number of
//! calls. The event loop decides when a connection gets a turn; this file
//! decides what a turn does.

use super::copy::{ConnConfig, CopyStrategy, IoSliceScratch, ReadStep, WriteStep};
use super::report::LoopCounters;
use super::trigger::Trigger;
use crate::sys::Fd;
use std::os::fd::AsFd;

/// Read/write rounds one connection may take per wake-up before others get
/// a turn (edge-triggered connections stay queued, since no new edge comes).
const MAX_ROUNDS_PER_TURN: u32 = 16;
/// Read and write calls one connection may make per turn. Rounds alone do
/// not bound a turn: one round of 64 KiB of pipelined 1 KiB frames is 128
/// `write`s under `rw`. A connection that uses them up is requeued behind
/// the others, so one stream cannot hold the thread.
pub(super) const MAX_IO_CALLS_PER_TURN: u32 = 64;

/// Backpressure: a connection whose pending output reaches `high_bytes` is
/// not read until it drains to `low_bytes`.
#[derive(Clone, Copy, Debug)]
pub struct Watermarks {
    pub high_bytes: usize,
    pub low_bytes: usize,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CloseReason {
    Done,
    ProtocolError,
    ConnectionError,
}

impl CloseReason {
    /// Counts a closed connection, by why it closed; both loops close
    /// through this.
    pub(super) fn count(self, counters: &mut LoopCounters) {
        counters.connections_closed += 1;
        match self {
            CloseReason::Done => {}
            CloseReason::ProtocolError => counters.protocol_errors += 1,
            CloseReason::ConnectionError => counters.connection_errors += 1,
        }
    }
}

pub(super) enum Turn {
    Keep,
    Requeue,
    Close(CloseReason),
}

pub(super) struct Conn<C> {
    pub(super) fd: Fd,
    pub(super) data: C,
    /// Bytes may be waiting (set by readiness, cleared when a read says the
    /// queue is empty).
    pub(super) readable: bool,
    /// The last write did not finish; wait for EPOLLOUT.
    pub(super) write_blocked: bool,
    /// EOF seen, or shutting down: never read again.
    pub(super) read_closed: bool,
    /// epoll reported EPOLLRDHUP/EPOLLHUP: the peer's FIN (or reset) is
    /// already queued, and an edge-triggered registration reports it once.
    pub(super) hung_up: bool,
    /// Pending output is above the high watermark (backpressure).
    pub(super) paused: bool,
    /// The last read found no buffer space.
    pub(super) no_room: bool,
    /// The last read found no pooled buffer to take (set by the turn; the
    /// loop then queues the connection for the next free buffer).
    pub(super) needs_buffer: bool,
    /// Queued for a pooled buffer: not read until one is given back.
    pub(super) waiting_for_buffer: bool,
    /// Currently registered interest (only level-triggered changes it).
    pub(super) interest: u32,
}

/// One turn of a connection: read as the trigger allows, write what is
/// pending, apply the watermarks. Returns what the loop should do with it.
///
/// ~95 lines: the hot path of every connection, kept in one monomorphised
/// function so the compiler sees the whole read/write/watermark loop; its
/// early returns are the turn's outcomes.
pub(super) fn drive<T: Trigger, C: CopyStrategy>(
    conn: &mut Conn<C>,
    conn_config: &ConnConfig,
    watermarks: Watermarks,
    counters: &mut LoopCounters,
    scratch: &mut IoSliceScratch,
    shutting_down: bool,
) -> Turn {
    let fd = conn.fd.as_fd();
    let mut calls_left = MAX_IO_CALLS_PER_TURN;
    for _ in 0..MAX_ROUNDS_PER_TURN {
        if conn.readable && !conn.read_closed && !conn.paused {
            while calls_left > 0 {
                calls_left -= 1;
                match conn.data.read_once(fd, conn_config, counters) {
                    Ok(ReadStep::Data(hint)) => {
                        // A short read proves the data queue empty, not that
                        // the EOF behind it was read; once the hang-up edge
                        // is consumed no other edge comes, so read to EOF.
                        let drain_to_eof = T::EDGE && conn.hung_up;
                        if !(drain_to_eof || T::keep_reading(hint)) {
                            conn.readable = false;
                            break;
                        }
                    }
                    Ok(ReadStep::WouldBlock) => {
                        conn.readable = false;
                        break;
                    }
                    Ok(ReadStep::NoRoom) => {
                        conn.no_room = true;
                        break;
                    }
                    Ok(ReadStep::NoBuffer) => {
                        conn.needs_buffer = true;
                        break;
                    }
                    Ok(ReadStep::Eof) => {
                        conn.read_closed = true;
                        if conn.data.inside_request() {
                            return Turn::Close(CloseReason::ProtocolError);
                        }
                        break;
                    }
                    Ok(ReadStep::ProtocolError) => return Turn::Close(CloseReason::ProtocolError),
                    Err(_) => return Turn::Close(CloseReason::ConnectionError),
                }
            }
        }

        let pending_before = conn.data.pending_out_bytes();
        let mut write_idle = false;
        while !conn.write_blocked && calls_left > 0 {
            calls_left -= 1;
            match conn.data.write_once(fd, scratch, counters) {
                Ok(WriteStep::Wrote) => {}
                Ok(WriteStep::Blocked) => conn.write_blocked = true,
                Ok(WriteStep::Idle) => {
                    write_idle = true;
                    break;
                }
                Err(_) => return Turn::Close(CloseReason::ConnectionError),
            }
        }
        let pending = conn.data.pending_out_bytes();
        let progressed = pending < pending_before;
        if progressed {
            conn.no_room = false;
        }
        // No room and nothing to write: the buffer is held until the kernel
        // is done with it (zerocopy), so reading waits as for a blocked write.
        if pending >= watermarks.high_bytes || (conn.no_room && (conn.write_blocked || write_idle))
        {
            conn.paused = true;
        } else if pending <= watermarks.low_bytes {
            conn.paused = false;
        }
        if conn.read_closed && pending == 0 {
            return Turn::Close(CloseReason::Done);
        }
        if shutting_down && conn.write_blocked {
            return Turn::Keep;
        }
        let more_to_read = conn.readable && !conn.read_closed && !conn.paused;
        if calls_left == 0 {
            // Out of calls with work left: no readiness event may come for
            // it (edge-triggered, or output that is not blocked), so the
            // loop comes back to this connection after the others.
            let more_to_write = !conn.write_blocked && !write_idle && pending > 0;
            return if more_to_read || more_to_write {
                Turn::Requeue
            } else {
                Turn::Keep
            };
        }
        // Another round only if writing made room for bytes still waiting.
        if !(progressed && more_to_read) {
            return Turn::Keep;
        }
    }
    Turn::Requeue
}
