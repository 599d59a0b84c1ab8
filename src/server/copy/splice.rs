//! `splice`: payload bytes go socket → pipe → socket with `splice(2)` and
//! never enter user space. Frame headers are read with exact-size `read()`s
//! (reading ahead would pull payload into user memory) and response
//! headers written with `write()`. Frames larger than the pipe simply take
//! several splices each way.
//!
//! [`SplicePath`] is the connection's state and framing, whatever makes the
//! calls: it says what the next read or write is and accounts for what
//! one moved. [`Spliced`] makes those calls as syscalls for the epoll
//! loop; the io_uring backend queues the same calls as SQEs
//! (`uring::splice`).

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsFd;
use std::os::fd::BorrowedFd;

use super::file::{FilePath, splice::FileToPipe};
use super::{ConnConfig, CopyStrategy, IoSliceScratch, ReadStep, WriteStep, write_outcome};
use crate::protocol::{Protocol, RESPONSE_HEADER_BYTES};
use crate::server::frame::FrameParser;
use crate::server::report::LoopCounters;
use crate::server::trigger::ReadHint;
use crate::sys;
use crate::sys::pipe::Pipe;

enum Segment {
    Header {
        bytes: [u8; RESPONSE_HEADER_BYTES],
        written: usize,
    },
    /// This many bytes at the front of the pipe belong here.
    Piped(usize),
}

/// The next read a connection wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextRead {
    /// Read exactly this many request-header bytes into
    /// [`SplicePath::header_space`].
    Header(usize),
    /// Splice up to this many bytes from the socket into the pipe.
    SpliceIn(usize),
    /// The pipe is full: drain it first.
    NoRoom,
}

/// The next write a connection owes, front of its output queue first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextWrite<'a> {
    /// Write these response-header bytes.
    Header(&'a [u8]),
    /// Splice this many bytes from the pipe to the socket.
    SpliceOut(usize),
}

/// One connection's splice data path: its pipe, the frame parser and the
/// output queue of response headers and piped payload.
pub struct SplicePath {
    pipe: Pipe,
    bytes_in_pipe: usize,
    out: VecDeque<Segment>,
    pending_out_bytes: usize,
    parser: FrameParser,
}

impl SplicePath {
    pub fn new(config: &ConnConfig) -> io::Result<SplicePath> {
        Ok(SplicePath {
            pipe: Pipe::with_capacity(config.pipe_size_bytes)?,
            bytes_in_pipe: 0,
            out: VecDeque::new(),
            pending_out_bytes: 0,
            parser: FrameParser::default(),
        })
    }

    pub fn pipe(&self) -> &Pipe {
        &self.pipe
    }

    pub fn bytes_in_pipe(&self) -> usize {
        self.bytes_in_pipe
    }

    pub fn pending_out_bytes(&self) -> usize {
        self.pending_out_bytes
    }

    pub fn inside_request(&self) -> bool {
        self.parser.inside_request()
    }

    /// Echo splices whatever comes; a frame's header is read into user
    /// memory, its payload (at most what is left of it) spliced.
    pub fn next_read(&self, config: &ConnConfig) -> NextRead {
        let room = self.pipe.capacity_bytes - self.bytes_in_pipe;
        match config.protocol {
            Protocol::Frame if self.parser.header_missing() > 0 => {
                NextRead::Header(self.parser.header_missing())
            }
            _ if room == 0 => NextRead::NoRoom,
            Protocol::Echo => NextRead::SpliceIn(room),
            Protocol::Frame => NextRead::SpliceIn(room.min(self.parser.payload_left() as usize)),
            Protocol::File => unreachable!("the file protocol is served by file::splice"),
        }
    }

    /// Where [`NextRead::Header`]'s bytes go.
    pub fn header_space(&mut self) -> &mut [u8] {
        self.parser.header_space()
    }

    /// Accounts for `n` header bytes just read of `asked` (0: EOF).
    pub fn after_header_read(
        &mut self,
        n: usize,
        asked: usize,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> ReadStep {
        if n == 0 {
            return ReadStep::Eof;
        }
        counters.bytes_in += n as u64;
        counters.header_bytes_in += n as u64;
        let request = match self.parser.header_filled(n, config.max_frame_bytes) {
            Err(_) => return ReadStep::ProtocolError,
            Ok(request) => request,
        };
        if let Some(request) = request {
            counters.requests_parsed += 1;
            self.pending_out_bytes += RESPONSE_HEADER_BYTES;
            self.out.push_back(Segment::Header {
                bytes: request.response_header,
                written: 0,
            });
        }
        ReadStep::Data(ReadHint {
            short: n < asked,
            frame_boundary: !self.parser.inside_request(),
        })
    }

    /// Accounts for `n` bytes just spliced into the pipe of `asked` (0: EOF).
    pub fn after_splice_in(
        &mut self,
        n: usize,
        asked: usize,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> ReadStep {
        if n == 0 {
            return ReadStep::Eof;
        }
        counters.bytes_in += n as u64;
        self.bytes_in_pipe += n;
        self.pending_out_bytes += n;
        if let Some(Segment::Piped(last)) = self.out.back_mut() {
            *last += n;
        } else {
            self.out.push_back(Segment::Piped(n));
        }
        let frame_boundary = match config.protocol {
            Protocol::Frame => {
                self.parser.take_payload(n as u64);
                !self.parser.inside_request()
            }
            Protocol::Echo => false,
            Protocol::File => unreachable!("the file protocol is served by file::splice"),
        };
        ReadStep::Data(ReadHint {
            short: n < asked,
            frame_boundary,
        })
    }

    /// What the front of the output queue needs next, if anything.
    pub fn next_write(&self) -> Option<NextWrite<'_>> {
        Some(match self.out.front()? {
            Segment::Header { bytes, written } => NextWrite::Header(&bytes[*written..]),
            Segment::Piped(left) => NextWrite::SpliceOut(*left),
        })
    }

    /// Retires `n` bytes just written (or spliced out) by the call
    /// [`SplicePath::next_write`] asked for.
    pub fn after_write(&mut self, n: usize, counters: &mut LoopCounters) {
        let Some(front) = self.out.front_mut() else {
            debug_assert_eq!(n, 0, "written with nothing pending");
            return;
        };
        match front {
            Segment::Header { written, .. } => {
                *written += n;
                counters.header_bytes_out += n as u64;
                if *written == RESPONSE_HEADER_BYTES {
                    self.out.pop_front();
                }
            }
            Segment::Piped(left) => {
                *left -= n;
                if *left == 0 {
                    self.out.pop_front();
                }
                self.bytes_in_pipe -= n;
            }
        }
        self.pending_out_bytes -= n;
        counters.bytes_out += n as u64;
    }
}

/// The epoll loop's splice strategy: [`SplicePath`]'s calls as syscalls
/// for frame and echo; for the file protocol, file → pipe → socket
/// ([`file::splice`](super::file::splice)).
pub enum Spliced {
    Socket(SplicePath),
    File(FilePath<FileToPipe>),
}

fn read_header(
    path: &mut SplicePath,
    fd: BorrowedFd<'_>,
    asked: usize,
    config: &ConnConfig,
    counters: &mut LoopCounters,
) -> io::Result<ReadStep> {
    let n = match sys::io::read(fd, path.header_space()) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStep::WouldBlock),
        Err(e) => return Err(e),
    };
    Ok(path.after_header_read(n, asked, config, counters))
}

fn splice_in(
    path: &mut SplicePath,
    fd: BorrowedFd<'_>,
    asked: usize,
    config: &ConnConfig,
    counters: &mut LoopCounters,
) -> io::Result<ReadStep> {
    let n = match sys::io::splice(fd, path.pipe.write_end.as_fd(), asked) {
        Ok(n) => n,
        // EAGAIN means an empty socket or a pipe out of slots (each
        // spliced packet may take a whole page slot), and the call does
        // not say which. With bytes still in the pipe, drain it first.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && path.bytes_in_pipe > 0 => {
            return Ok(ReadStep::NoRoom);
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStep::WouldBlock),
        Err(e) => return Err(e),
    };
    Ok(path.after_splice_in(n, asked, config, counters))
}

impl CopyStrategy for Spliced {
    const NAME: &'static str = "splice";

    fn new(config: &ConnConfig) -> io::Result<Self> {
        match config.protocol {
            Protocol::File => FilePath::new(config).map(Spliced::File),
            Protocol::Frame | Protocol::Echo => SplicePath::new(config).map(Spliced::Socket),
        }
    }

    fn read_once(
        &mut self,
        fd: BorrowedFd<'_>,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep> {
        let path = match self {
            Spliced::Socket(path) => path,
            Spliced::File(file) => return file.read_once(fd, config, counters),
        };
        match path.next_read(config) {
            NextRead::Header(asked) => read_header(path, fd, asked, config, counters),
            NextRead::SpliceIn(asked) => splice_in(path, fd, asked, config, counters),
            NextRead::NoRoom => Ok(ReadStep::NoRoom),
        }
    }

    fn write_once(
        &mut self,
        fd: BorrowedFd<'_>,
        _scratch: &mut IoSliceScratch,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep> {
        let path = match self {
            Spliced::Socket(path) => path,
            Spliced::File(file) => return file.write_once(fd, counters),
        };
        let (result, asked) = match path.next_write() {
            None => return Ok(WriteStep::Idle),
            Some(NextWrite::Header(piece)) => (sys::io::write(fd, piece), piece.len()),
            Some(NextWrite::SpliceOut(asked)) => (
                sys::io::splice(path.pipe.read_end.as_fd(), fd, asked),
                asked,
            ),
        };
        let (n, step) = write_outcome(result, asked)?;
        path.after_write(n, counters);
        Ok(step)
    }

    fn pending_out_bytes(&self) -> usize {
        match self {
            Spliced::Socket(path) => path.pending_out_bytes(),
            Spliced::File(file) => file.pending_out_bytes(),
        }
    }

    fn inside_request(&self) -> bool {
        match self {
            Spliced::Socket(path) => path.inside_request(),
            Spliced::File(file) => file.inside_request(),
        }
    }
}
