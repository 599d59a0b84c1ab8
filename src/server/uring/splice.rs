//! `uring-splice`: the epoll splice strategy's connection state and
//! framing ([`SplicePath`]: pipe, frame parser, output queue), with each
//! call it asks for queued as one io_uring operation instead of made as a
//! syscall:
//!
//! - a frame's request header: `IORING_OP_RECV` of exactly the missing
//!   header bytes into the parser (reading ahead would pull payload into
//!   user memory), as the epoll strategy's exact-size `read()`;
//! - payload in: `IORING_OP_SPLICE` socket → pipe, behind a linked
//!   readability poll (`sys::uring::splice` says why);
//! - a response header: `IORING_OP_SEND`;
//! - payload out: `IORING_OP_SPLICE` pipe → socket.
//!
//! The loop reads only when no output is pending, so a splice in always
//! finds the pipe empty: the epoll strategy's "full pipe or empty
//! socket?" ambiguity never arises, and the pipe bounds what one read
//! brings in.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::copy::{UringCopy, no_room};
use crate::server::copy::splice::{NextRead, NextWrite, SplicePath};
use crate::server::copy::{ConnConfig, ReadStep};
use crate::server::report::LoopCounters;
use crate::sys::uring::{OpId, PushResult, Ring};

pub struct UringSpliced {
    path: SplicePath,
    config: ConnConfig,
    /// What the read in flight is, for its completion.
    reading: Option<NextRead>,
}

impl UringCopy for UringSpliced {
    const NAME: &'static str = "splice";

    fn new(config: &ConnConfig) -> io::Result<Self> {
        Ok(UringSpliced {
            path: SplicePath::new(config)?,
            config: config.clone(),
            reading: None,
        })
    }

    fn pending_out_bytes(&self) -> usize {
        self.path.pending_out_bytes()
    }

    fn inside_request(&self) -> bool {
        self.path.inside_request()
    }

    fn after_read(
        &mut self,
        n: usize,
        asked: usize,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> ReadStep {
        match self.reading.take() {
            Some(NextRead::Header(_)) => self.path.after_header_read(n, asked, config, counters),
            Some(NextRead::SpliceIn(_)) => self.path.after_splice_in(n, asked, config, counters),
            Some(NextRead::NoRoom) | None => {
                debug_assert!(false, "a read completed that was never queued");
                ReadStep::ProtocolError
            }
        }
    }

    fn after_write(&mut self, n: usize, counters: &mut LoopCounters) {
        self.path.after_write(n, counters);
    }

    fn push_read(
        ring: &mut Ring<Self>,
        fd: BorrowedFd<'_>,
        token: u64,
        mut data: Box<Self>,
    ) -> Result<(OpId, usize), (io::Error, Box<Self>)> {
        let next = data.path.next_read(&data.config);
        data.reading = Some(next);
        let (pushed, asked) = match next {
            NextRead::Header(asked) => (
                ring.push_recv(fd, token, data, |d| d.path.header_space()),
                asked,
            ),
            NextRead::SpliceIn(asked) => (
                ring.push_splice_from_socket(fd, token, data, asked, |d| {
                    d.path.pipe().write_end.as_fd()
                }),
                asked,
            ),
            NextRead::NoRoom => return Err((no_room(), data)),
        };
        Ok((pushed?, asked))
    }

    fn push_write(
        ring: &mut Ring<Self>,
        fd: BorrowedFd<'_>,
        token: u64,
        data: Box<Self>,
    ) -> PushResult<Self> {
        match data.path.next_write() {
            Some(NextWrite::Header(_)) => {
                ring.push_send(fd, token, data, |d| match d.path.next_write() {
                    Some(NextWrite::Header(piece)) => piece,
                    _ => unreachable!("checked above"),
                })
            }
            Some(NextWrite::SpliceOut(len)) => {
                ring.push_splice_to_socket(fd, token, data, len, |d| d.path.pipe().read_end.as_fd())
            }
            None => Err((io::Error::other("a write with nothing pending"), data)),
        }
    }
}
