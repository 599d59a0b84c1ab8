//! `splice`: payload bytes go socket → pipe → socket with `splice(2)` and
//! never enter user space. Frame headers are read with exact-size `read()`s
//! (reading ahead would pull payload into user memory) and response
//! headers written with `write()`. Frames larger than the pipe simply take
//! several splices each way.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsFd;
use std::os::fd::BorrowedFd;

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

pub struct Spliced {
    pipe: Pipe,
    bytes_in_pipe: usize,
    out: VecDeque<Segment>,
    pending_out_bytes: usize,
    parser: FrameParser,
}

impl Spliced {
    fn push_piped(&mut self, n: usize) {
        self.bytes_in_pipe += n;
        self.pending_out_bytes += n;
        if let Some(Segment::Piped(last)) = self.out.back_mut() {
            *last += n;
        } else {
            self.out.push_back(Segment::Piped(n));
        }
    }

    fn read_header(
        &mut self,
        fd: BorrowedFd<'_>,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep> {
        let asked = self.parser.header_missing();
        let n = match sys::io::read(fd, self.parser.header_space()) {
            Ok(0) => return Ok(ReadStep::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStep::WouldBlock),
            Err(e) => return Err(e),
        };
        counters.bytes_in += n as u64;
        counters.header_bytes_in += n as u64;
        let request = match self.parser.header_filled(n, config.max_frame_bytes) {
            Err(_) => return Ok(ReadStep::ProtocolError),
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
        Ok(ReadStep::Data(ReadHint {
            short: n < asked,
            frame_boundary: !self.parser.inside_request(),
        }))
    }

    fn splice_in(
        &mut self,
        fd: BorrowedFd<'_>,
        limit: usize,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep> {
        let room = self.pipe.capacity_bytes - self.bytes_in_pipe;
        if room == 0 {
            return Ok(ReadStep::NoRoom);
        }
        let asked = room.min(limit);
        let n = match sys::io::splice(fd, self.pipe.write_end.as_fd(), asked) {
            Ok(0) => return Ok(ReadStep::Eof),
            Ok(n) => n,
            // EAGAIN means an empty socket or a pipe out of slots (each
            // spliced packet may take a whole page slot), and the call does
            // not say which. With bytes still in the pipe, drain it first.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.bytes_in_pipe > 0 => {
                return Ok(ReadStep::NoRoom);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStep::WouldBlock),
            Err(e) => return Err(e),
        };
        counters.bytes_in += n as u64;
        self.push_piped(n);
        let frame_boundary = match config.protocol {
            Protocol::Frame => {
                self.parser.take_payload(n as u64);
                !self.parser.inside_request()
            }
            Protocol::Echo => false,
        };
        Ok(ReadStep::Data(ReadHint {
            short: n < asked,
            frame_boundary,
        }))
    }
}

impl CopyStrategy for Spliced {
    const NAME: &'static str = "splice";

    fn new(config: &ConnConfig) -> io::Result<Self> {
        Ok(Spliced {
            pipe: Pipe::with_capacity(config.pipe_size_bytes)?,
            bytes_in_pipe: 0,
            out: VecDeque::new(),
            pending_out_bytes: 0,
            parser: FrameParser::default(),
        })
    }

    fn read_once(
        &mut self,
        fd: BorrowedFd<'_>,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep> {
        match config.protocol {
            Protocol::Echo => self.splice_in(fd, usize::MAX, config, counters),
            Protocol::Frame if self.parser.header_missing() > 0 => {
                self.read_header(fd, config, counters)
            }
            Protocol::Frame => {
                let limit = self.parser.payload_left() as usize;
                self.splice_in(fd, limit, config, counters)
            }
        }
    }

    fn write_once(
        &mut self,
        fd: BorrowedFd<'_>,
        _scratch: &mut IoSliceScratch,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep> {
        let Some(front) = self.out.front_mut() else {
            return Ok(WriteStep::Idle);
        };
        let (n, step) = match front {
            Segment::Header { bytes, written } => {
                let piece = &bytes[*written..];
                let (n, step) = write_outcome(sys::io::write(fd, piece), piece.len())?;
                *written += n;
                counters.header_bytes_out += n as u64;
                if *written == RESPONSE_HEADER_BYTES {
                    self.out.pop_front();
                }
                (n, step)
            }
            Segment::Piped(left) => {
                let asked = *left;
                let result = sys::io::splice(self.pipe.read_end.as_fd(), fd, asked);
                let (n, step) = write_outcome(result, asked)?;
                *left -= n;
                if *left == 0 {
                    self.out.pop_front();
                }
                self.bytes_in_pipe -= n;
                (n, step)
            }
        };
        self.pending_out_bytes -= n;
        counters.bytes_out += n as u64;
        Ok(step)
    }

    fn pending_out_bytes(&self) -> usize {
        self.pending_out_bytes
    }

    fn inside_request(&self) -> bool {
        self.parser.inside_request()
    }
}
