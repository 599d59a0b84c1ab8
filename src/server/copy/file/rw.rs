//! `rw` for the file protocol: `pread()` the payload into the connection's
//! buffer, `write()` it to the socket: the "read + write through a user
//! buffer" baseline. The response header (8 bytes) is put in the buffer in
//! front of the first chunk, so a response that fits costs one `pread` and
//! one `write`, like `sendfile`'s header `write` and `sendfile`.
//!
//! Copies: every payload byte is copied into user space by `pread` and out
//! of it by `write`, and both are tallied (`sys::file::pread`,
//! `sys::io::write`).

use std::io;
use std::os::fd::BorrowedFd;

use super::{FileConn, FileSender, Response};
use crate::server::copy::{ConnConfig, WriteStep};
use crate::server::report::LoopCounters;
use crate::sys;

pub struct PreadWrite {
    buffer: Box<[u8]>,
    /// `buffer[start..end]` is read from the file but not yet written.
    start: usize,
    end: usize,
}

impl FileSender for PreadWrite {
    const HEADER_WITH_PAYLOAD: bool = true;

    fn new(config: &ConnConfig) -> io::Result<PreadWrite> {
        Ok(PreadWrite {
            // At least a header and one payload byte (sizes are checked
            // to be 64 B or more anyway).
            buffer: vec![0u8; config.buffer_size_bytes.max(64)].into_boxed_slice(),
            start: 0,
            end: 0,
        })
    }

    fn send_payload(
        &mut self,
        conn: &mut FileConn,
        front: &Response,
        fd: BorrowedFd<'_>,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep> {
        if self.start == self.end {
            let header = front.unsent_header();
            let at = header.len();
            self.buffer[..at].copy_from_slice(header);
            let room = ((self.buffer.len() - at) as u64).min(front.payload_left()) as usize;
            let offset = front.next_offset();
            let n = sys::file::pread(conn.file().fd(), &mut self.buffer[at..at + room], offset)?;
            if n == 0 {
                return Err(super::file_ended(offset));
            }
            self.start = 0;
            self.end = at + n;
            // Nothing reached the socket yet; the next call writes.
            return Ok(WriteStep::Wrote);
        }
        let piece = &self.buffer[self.start..self.end];
        let (n, step) = conn.sent(sys::io::write(fd, piece), piece.len(), counters)?;
        self.start += n;
        Ok(step)
    }
}
