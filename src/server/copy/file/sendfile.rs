//! `sendfile`: the header by `write()`, the payload by `sendfile(2)` from
//! the served file at the response's offset, so the payload never enters
//! user space (0 bytes copied; `sendfile` is not a tallied call). A full
//! send buffer gives a short count or `EAGAIN`, and the next call resumes
//! at the offset after the bytes that went.

use std::io;
use std::os::fd::BorrowedFd;

use super::{FileConn, FileSender, Response, file_only_strategy};
use crate::server::copy::{ConnConfig, WriteStep};
use crate::server::report::LoopCounters;
use crate::sys;

pub struct SendFile;

impl FileSender for SendFile {
    const HEADER_WITH_PAYLOAD: bool = false;

    fn new(_config: &ConnConfig) -> io::Result<SendFile> {
        Ok(SendFile)
    }

    fn send_payload(
        &mut self,
        conn: &mut FileConn,
        front: &Response,
        fd: BorrowedFd<'_>,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep> {
        let asked = front.payload_left() as usize;
        let result = sys::file::sendfile(fd, conn.file().fd(), front.next_offset(), asked);
        Ok(conn.sent(result, asked, counters)?.1)
    }
}

file_only_strategy!(
    /// The `sendfile` copy strategy (file protocol only).
    SentFile,
    "sendfile",
    SendFile
);
