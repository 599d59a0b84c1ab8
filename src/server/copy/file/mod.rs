//! The file protocol's data path (`--protocol file`), shared by the copy
//! strategies that serve it: requests are read and parsed here, and the
//! responses they ask for wait in one queue; a [`FileSender`] only decides
//! how the front response's bytes reach the socket.
//!
//! - [`rw::PreadWrite`] (`rw`): `pread()` into the connection's buffer,
//!   `write()` from it: the bytes cross into user space and back.
//! - [`mmap::FromMapping`] (`mmap`): `writev()` of the header and the
//!   payload straight from the file's mapping: no copy into a buffer.
//! - [`sendfile::SendFile`] (`sendfile`): header by `write()`, payload by
//!   `sendfile(2)` at the response's offset.
//! - [`splice::FileToPipe`] (`splice`): header by `write()`, payload file →
//!   pipe → socket with `splice(2)`.
//!
//! Bounds: a read takes at most [`REQUEST_READ_BYTES`] of requests, and no
//! read is made while the queued responses' unsent bytes are at or above
//! the high watermark, so a pipeline of 16 MiB requests holds a few small
//! queue entries, never their bytes.

pub mod mmap;
pub mod rw;
pub mod sendfile;
pub mod splice;

use std::collections::VecDeque;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use super::{ConnConfig, ReadStep, WriteStep, write_outcome};
use crate::protocol::file::{FILE_REQUEST_BYTES, FileRequest};
use crate::protocol::{RESPONSE_HEADER_BYTES, response_header};
use crate::server::report::LoopCounters;
use crate::server::served_file::ServedFile;
use crate::server::trigger::ReadHint;
use crate::sys;

/// Request bytes one `read()` asks for: a few hundred pipelined requests.
pub const REQUEST_READ_BYTES: usize = 4096;

/// One response: its header, then `len_bytes` of the file at `offset_bytes`.
#[derive(Clone, Copy, Debug)]
pub struct Response {
    header: [u8; RESPONSE_HEADER_BYTES],
    offset_bytes: u64,
    len_bytes: u32,
    /// Header and payload bytes already on the socket.
    sent_bytes: u64,
}

impl Response {
    /// The part of the header not yet sent (empty once it is out).
    pub fn unsent_header(&self) -> &[u8] {
        &self.header[(self.sent_bytes as usize).min(RESPONSE_HEADER_BYTES)..]
    }

    /// Payload bytes not yet sent.
    pub fn payload_left(&self) -> u64 {
        let payload_sent = self.sent_bytes.saturating_sub(RESPONSE_HEADER_BYTES as u64);
        u64::from(self.len_bytes) - payload_sent
    }

    /// Where in the file the first unsent payload byte is.
    pub fn next_offset(&self) -> u64 {
        self.offset_bytes + u64::from(self.len_bytes) - self.payload_left()
    }
}

/// One connection's requests and the responses it owes.
pub struct FileConn {
    file: Arc<ServedFile>,
    requests: Box<[u8]>,
    partial: [u8; FILE_REQUEST_BYTES],
    partial_have: usize,
    next_seq: u32,
    out: VecDeque<Response>,
    pending_out_bytes: usize,
    /// No request is read while this many response bytes are pending.
    high_watermark_bytes: usize,
}

impl FileConn {
    pub fn new(config: &ConnConfig) -> io::Result<FileConn> {
        let file = config.served_file.clone().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the file protocol needs the served file, and the server made none",
            )
        })?;
        Ok(FileConn {
            file,
            requests: vec![0u8; REQUEST_READ_BYTES].into_boxed_slice(),
            partial: [0; FILE_REQUEST_BYTES],
            partial_have: 0,
            next_seq: 0,
            out: VecDeque::new(),
            pending_out_bytes: 0,
            high_watermark_bytes: config.buffer_size_bytes.max(config.pipe_size_bytes),
        })
    }

    pub fn file(&self) -> &ServedFile {
        &self.file
    }

    pub fn front(&self) -> Option<&Response> {
        self.out.front()
    }

    pub fn pending_out_bytes(&self) -> usize {
        self.pending_out_bytes
    }

    pub fn inside_request(&self) -> bool {
        self.partial_have > 0
    }

    /// One `read()` of requests, parsed into queued responses.
    pub fn read_once(
        &mut self,
        fd: BorrowedFd<'_>,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep> {
        if self.pending_out_bytes >= self.high_watermark_bytes {
            return Ok(ReadStep::NoRoom);
        }
        let asked = self.requests.len();
        let n = match sys::io::read(fd, &mut self.requests) {
            Ok(0) => return Ok(ReadStep::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStep::WouldBlock),
            Err(e) => return Err(e),
        };
        counters.bytes_in += n as u64;
        // Requests are all header: none of their bytes is payload copied.
        counters.header_bytes_in += n as u64;
        let mut taken = 0;
        while taken < n {
            let step = (FILE_REQUEST_BYTES - self.partial_have).min(n - taken);
            self.partial[self.partial_have..self.partial_have + step]
                .copy_from_slice(&self.requests[taken..taken + step]);
            self.partial_have += step;
            taken += step;
            if self.partial_have == FILE_REQUEST_BYTES {
                self.partial_have = 0;
                let request = FileRequest::decode(&self.partial);
                if request.check(config.max_frame_bytes).is_err() {
                    return Ok(ReadStep::ProtocolError);
                }
                self.queue(request, counters);
            }
        }
        Ok(ReadStep::Data(ReadHint {
            short: n < asked,
            frame_boundary: self.partial_have == 0,
        }))
    }

    fn queue(&mut self, request: FileRequest, counters: &mut LoopCounters) {
        counters.requests_parsed += 1;
        self.pending_out_bytes += RESPONSE_HEADER_BYTES + request.len_bytes as usize;
        self.out.push_back(Response {
            header: response_header(request.len_bytes, self.next_seq),
            offset_bytes: request.offset_bytes,
            len_bytes: request.len_bytes,
            sent_bytes: 0,
        });
        self.next_seq = self.next_seq.wrapping_add(1);
    }

    /// Accounts for a write-family call's `result`, `asked` bytes of the
    /// front response.
    pub fn sent(
        &mut self,
        result: io::Result<usize>,
        asked: usize,
        counters: &mut LoopCounters,
    ) -> io::Result<(usize, WriteStep)> {
        let (n, step) = write_outcome(result, asked)?;
        self.after_sent(n, counters);
        Ok((n, step))
    }

    /// Retires `n` bytes the front response just put on the socket (no
    /// sender sends past the front response).
    fn after_sent(&mut self, n: usize, counters: &mut LoopCounters) {
        let Some(front) = self.out.front_mut() else {
            debug_assert_eq!(n, 0, "sent with nothing pending");
            return;
        };
        let header_left = RESPONSE_HEADER_BYTES.saturating_sub(front.sent_bytes as usize);
        counters.header_bytes_out += n.min(header_left) as u64;
        counters.bytes_out += n as u64;
        front.sent_bytes += n as u64;
        self.pending_out_bytes -= n;
        if front.sent_bytes == RESPONSE_HEADER_BYTES as u64 + u64::from(front.len_bytes) {
            self.out.pop_front();
        }
    }
}

/// How a strategy sends the front response's payload. Every strategy sends
/// a response the same way: its header, then its body by the strategy's
/// own step ([`FilePath::write_once`]); the sender supplies that step.
pub trait FileSender: Sized {
    /// The body step sends the unsent header along with the first payload
    /// bytes (`rw`'s buffer, `mmap`'s `writev`), where the others write
    /// the header alone first.
    const HEADER_WITH_PAYLOAD: bool;

    fn new(config: &ConnConfig) -> io::Result<Self>;

    /// Exactly one syscall that moves the payload of `front` (the front
    /// response, with payload left) on: a write-family call, or the one
    /// that stages bytes for it, such as `pread` or a splice into the pipe.
    fn send_payload(
        &mut self,
        conn: &mut FileConn,
        front: &Response,
        fd: BorrowedFd<'_>,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep>;
}

/// A file-protocol connection: the shared request side and a sender.
pub struct FilePath<S> {
    conn: FileConn,
    sender: S,
}

impl<S: FileSender> FilePath<S> {
    pub fn new(config: &ConnConfig) -> io::Result<FilePath<S>> {
        Ok(FilePath {
            conn: FileConn::new(config)?,
            sender: S::new(config)?,
        })
    }

    pub fn read_once(
        &mut self,
        fd: BorrowedFd<'_>,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep> {
        self.conn.read_once(fd, config, counters)
    }

    /// One call for the front response: its header by one `write()` when
    /// it goes alone (a sender that does not carry it, or no payload),
    /// else the sender's payload step.
    pub fn write_once(
        &mut self,
        fd: BorrowedFd<'_>,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep> {
        let Some(&front) = self.conn.front() else {
            return Ok(WriteStep::Idle);
        };
        let header = front.unsent_header();
        if front.payload_left() == 0 || (!S::HEADER_WITH_PAYLOAD && !header.is_empty()) {
            let result = sys::io::write(fd, header);
            return Ok(self.conn.sent(result, header.len(), counters)?.1);
        }
        self.sender
            .send_payload(&mut self.conn, &front, fd, counters)
    }

    pub fn pending_out_bytes(&self) -> usize {
        self.conn.pending_out_bytes()
    }

    pub fn inside_request(&self) -> bool {
        self.conn.inside_request()
    }
}

/// The error for a staging read that found the served file shorter than
/// the range the request was checked against.
fn file_ended(offset: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the served file ended at offset {offset}, inside a checked range"),
    )
}

/// A copy strategy that serves the file protocol only (`mmap`,
/// `sendfile`): the type, and its [`super::CopyStrategy`] impl over a
/// [`FilePath`] with the given sender.
macro_rules! file_only_strategy {
    ($(#[$doc:meta])* $strategy:ident, $name:literal, $sender:ty) => {
        $(#[$doc])*
        pub struct $strategy($crate::server::copy::file::FilePath<$sender>);

        impl $crate::server::copy::CopyStrategy for $strategy {
            const NAME: &'static str = $name;

            fn new(config: &$crate::server::copy::ConnConfig) -> std::io::Result<Self> {
                $crate::server::copy::file::FilePath::new(config).map($strategy)
            }

            fn read_once(
                &mut self,
                fd: std::os::fd::BorrowedFd<'_>,
                config: &$crate::server::copy::ConnConfig,
                counters: &mut $crate::server::report::LoopCounters,
            ) -> std::io::Result<$crate::server::copy::ReadStep> {
                self.0.read_once(fd, config, counters)
            }

            fn write_once(
                &mut self,
                fd: std::os::fd::BorrowedFd<'_>,
                _scratch: &mut $crate::server::copy::IoSliceScratch,
                counters: &mut $crate::server::report::LoopCounters,
            ) -> std::io::Result<$crate::server::copy::WriteStep> {
                self.0.write_once(fd, counters)
            }

            fn pending_out_bytes(&self) -> usize {
                self.0.pending_out_bytes()
            }

            fn inside_request(&self) -> bool {
                self.0.inside_request()
            }
        }
    };
}
pub(crate) use file_only_strategy;
