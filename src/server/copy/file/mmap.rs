//! `mmap`: the served file is mapped once, read-only, when the server
//! starts; a response is written straight from the mapping, so no payload
//! byte is copied into a user buffer.
//!
//! One `writev()` sends the header and the payload from the mapping
//! together: two `write()`s would cost a second syscall per response and,
//! with `TCP_NODELAY`, put the 8-byte header in a packet of its own.
//!
//! Copies: nothing is copied into user space (no read of the file at all);
//! the `writev` still makes the kernel copy the payload from the mapped
//! pages into socket buffers, exactly as `rw`'s `write` copies from its
//! buffer, so it is tallied as user-space bytes copied out (the
//! write-family rule in `sys::io`), and the header bytes among them are
//! subtracted like every strategy's headers.

use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;

use super::{FileConn, FileSender, Response, file_only_strategy};
use crate::server::copy::{ConnConfig, WriteStep};
use crate::server::report::LoopCounters;
use crate::sys;

pub struct FromMapping;

impl FileSender for FromMapping {
    const HEADER_WITH_PAYLOAD: bool = true;

    fn new(config: &ConnConfig) -> io::Result<FromMapping> {
        match config.served_file.as_deref().map(|file| file.mapped()) {
            Some(Some(_)) => Ok(FromMapping),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the mmap strategy needs the served file mapped, and the server mapped none",
            )),
        }
    }

    fn send_payload(
        &mut self,
        conn: &mut FileConn,
        front: &Response,
        fd: BorrowedFd<'_>,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep> {
        let mapped = conn.file().mapped().expect("checked in FromMapping::new");
        let start = front.next_offset() as usize;
        let payload = &mapped[start..start + front.payload_left() as usize];
        let header = front.unsent_header();
        let result = if header.is_empty() {
            sys::io::write(fd, payload)
        } else {
            sys::io::writev(fd, &[IoSlice::new(header), IoSlice::new(payload)])
        };
        let asked = header.len() + payload.len();
        Ok(conn.sent(result, asked, counters)?.1)
    }
}

file_only_strategy!(
    /// The `mmap` copy strategy (file protocol only).
    Mapped,
    "mmap",
    FromMapping
);
