//! `sendfile`: the header by `write()`, the payload by `sendfile(2)` from
//! the served file at the response's offset, so the payload never enters
//! user space (0 bytes copied; `sendfile` is not a tallied call). A full
//! send buffer gives a short count or `EAGAIN`, and the next call resumes
//! at the offset after the bytes that went.

use std::io;
use std::os::fd::BorrowedFd;

use super::{FileConn, FileSender, file_only_strategy};
use crate::server::copy::{ConnConfig, WriteStep, write_outcome};
use crate::server::report::LoopCounters;
use crate::sys;

pub struct SendFile;

impl FileSender for SendFile {
    fn new(_config: &ConnConfig) -> io::Result<SendFile> {
        Ok(SendFile)
    }

    fn write_once(
        &mut self,
        conn: &mut FileConn,
        fd: BorrowedFd<'_>,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep> {
        let Some(front) = conn.front() else {
            return Ok(WriteStep::Idle);
        };
        if !front.unsent_header().is_empty() {
            return super::write_header(conn, fd, counters);
        }
        // A response leaves the queue once sent, so payload is left here.
        let asked = front.payload_left() as usize;
        let result = sys::file::sendfile(fd, conn.file().fd(), front.next_offset(), asked);
        let (n, step) = write_outcome(result, asked)?;
        conn.after_sent(n, counters);
        Ok(step)
    }
}

file_only_strategy!(
    /// The `sendfile` copy strategy (file protocol only).
    SentFile,
    "sendfile",
    SendFile
);
