//! One connection's thread: write every pending response piece, then one
//! blocking `read`, until the peer closes, breaks the protocol, or the
//! server shuts down. The bytes go through the `rw` strategy's ring and
//! frame parser, so framing, limits and the calls per piece are the ones
//! the epoll and io_uring loops use.
//!
//! Memory stays bounded without watermarks: the thread reads only when its
//! output is fully written, so pending output never exceeds what one read
//! brought in (at most the buffer, plus the response headers of the frames
//! in it), and a client that does not read its responses blocks the
//! thread's `write`, which stops it reading: a blocking write is the
//! backpressure.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex};

use super::{Published, Publisher, Shared};
use crate::server::copy::rw::ReadWrite;
use crate::server::copy::{CopyStrategy, IoSliceScratch, ReadStep, WriteStep};
use crate::server::report::LoopCounters;
use crate::server::turn::CloseReason;
use crate::sys::Fd;

pub(super) fn serve(shared: Arc<Shared>, fd: Arc<Fd>, slot: Arc<Mutex<Published>>, key: u64) {
    let mut publisher = Publisher::new(&shared, slot);
    let mut counters = LoopCounters::default();
    let reason = serve_until_closed(&shared, fd.as_fd(), &mut publisher, &mut counters);
    reason.count(&mut counters);
    shared.finish_connection(key, fd, publisher, &counters);
}

fn serve_until_closed(
    shared: &Shared,
    fd: BorrowedFd<'_>,
    publisher: &mut Publisher,
    counters: &mut LoopCounters,
) -> CloseReason {
    let config = &shared.conn;
    let mut data = match ReadWrite::new(config) {
        Ok(data) => data,
        Err(_) => return CloseReason::ConnectionError,
    };
    let mut scratch = IoSliceScratch::default();
    let mut read_closed = false;
    // After shutdown began, a failed call is the controller cutting the
    // connection off, not the peer's doing.
    let failed = || {
        if shared.shutting_down() {
            CloseReason::Done
        } else {
            CloseReason::ConnectionError
        }
    };
    loop {
        if flush(&mut data, fd, &mut scratch, counters).is_err() {
            return failed();
        }
        // Shutting down: what was read is answered (flushed above), and
        // nothing more is read.
        if read_closed || shared.shutting_down() {
            return CloseReason::Done;
        }
        publisher.publish(shared, counters);
        match data.read_once(fd, config, counters) {
            // A blocking socket neither runs dry (EAGAIN) nor fills the
            // ring: the ring is empty after every flush.
            // Nor waits for a pooled buffer: tpc refuses `--buffers pooled`.
            Ok(
                ReadStep::Data(_) | ReadStep::WouldBlock | ReadStep::NoRoom | ReadStep::NoBuffer,
            ) => {}
            Ok(ReadStep::Eof) => {
                // The controller's `shutdown(SHUT_RD)` reads as EOF too.
                if data.inside_request() && !shared.shutting_down() {
                    return CloseReason::ProtocolError;
                }
                read_closed = true;
            }
            Ok(ReadStep::ProtocolError) => return CloseReason::ProtocolError,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return failed(),
        }
    }
}

/// Writes every pending piece, one blocking `write` each.
fn flush(
    data: &mut ReadWrite,
    fd: BorrowedFd<'_>,
    scratch: &mut IoSliceScratch,
    counters: &mut LoopCounters,
) -> io::Result<()> {
    loop {
        match data.write_once(fd, scratch, counters) {
            Ok(WriteStep::Idle) => return Ok(()),
            // A blocking write returns short only when a signal cut it:
            // the rest goes next.
            Ok(WriteStep::Wrote | WriteStep::Blocked) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
