//! `splice` for the file protocol: the header by `write()`, the payload
//! file → pipe → socket with `splice(2)`, so it never enters user space
//! (0 bytes copied). The pipe holds bytes of the front response only, and
//! is filled only when empty, so the file offset of the next splice in is
//! always the response's first unsent byte.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::{FileConn, FileSender, Response};
use crate::server::copy::{ConnConfig, WriteStep};
use crate::server::report::LoopCounters;
use crate::sys;
use crate::sys::pipe::Pipe;

pub struct FileToPipe {
    pipe: Pipe,
    bytes_in_pipe: usize,
}

impl FileSender for FileToPipe {
    const HEADER_WITH_PAYLOAD: bool = false;

    fn new(config: &ConnConfig) -> io::Result<FileToPipe> {
        Ok(FileToPipe {
            pipe: Pipe::with_capacity(config.pipe_size_bytes)?,
            bytes_in_pipe: 0,
        })
    }

    fn send_payload(
        &mut self,
        conn: &mut FileConn,
        front: &Response,
        fd: BorrowedFd<'_>,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep> {
        if self.bytes_in_pipe > 0 {
            let asked = self.bytes_in_pipe;
            let result = sys::io::splice(self.pipe.read_end.as_fd(), fd, asked);
            let (n, step) = conn.sent(result, asked, counters)?;
            self.bytes_in_pipe -= n;
            return Ok(step);
        }
        let asked = (front.payload_left() as usize).min(self.pipe.capacity_bytes);
        let offset = front.next_offset();
        // The pipe is empty, so the call cannot find it full; a page-cache
        // file has its bytes at hand. EAGAIN here would be a kernel surprise
        // that no readiness event answers: an error, not a wait.
        let n = sys::file::splice_from_file(
            conn.file().fd(),
            offset,
            self.pipe.write_end.as_fd(),
            asked,
        )?;
        if n == 0 {
            return Err(super::file_ended(offset));
        }
        self.bytes_in_pipe = n;
        // Nothing reached the socket yet; the next call splices it out.
        Ok(WriteStep::Wrote)
    }
}
