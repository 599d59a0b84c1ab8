//! `rw`: one `read()` into the ring's next free piece, one `write()` per
//! contiguous pending piece. No gathering: a response costs a header write
//! and a payload write (two if the payload wraps around the ring). For the
//! file protocol, `pread()` from the file into the connection's buffer and
//! `write()` from it ([`file::rw`](super::file::rw)).

use std::io;
use std::os::fd::BorrowedFd;

use super::file::{FilePath, rw::PreadWrite};
use super::ring::RingConn;
use super::{ConnConfig, CopyStrategy, IoSliceScratch, ReadStep, WriteStep, write_outcome};
use crate::protocol::Protocol;
use crate::server::report::LoopCounters;
use crate::sys;

pub enum ReadWrite {
    /// Frame and echo: the bytes read are the bytes written back.
    Ring(RingConn),
    File(FilePath<PreadWrite>),
}

impl CopyStrategy for ReadWrite {
    const NAME: &'static str = "rw";

    fn new(config: &ConnConfig) -> io::Result<Self> {
        Ok(match config.protocol {
            Protocol::File => ReadWrite::File(FilePath::new(config)?),
            Protocol::Frame | Protocol::Echo => ReadWrite::Ring(RingConn::new(config)),
        })
    }

    fn read_once(
        &mut self,
        fd: BorrowedFd<'_>,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep> {
        let ring = match self {
            ReadWrite::Ring(ring) => ring,
            ReadWrite::File(file) => return file.read_once(fd, config, counters),
        };
        let Some(target) = ring.read_target() else {
            return Ok(ring.no_room_step());
        };
        let asked = target.len();
        match sys::io::read(fd, target) {
            Ok(n) => Ok(ring.after_read(n, asked, config, counters)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ring.read_found_nothing();
                Ok(ReadStep::WouldBlock)
            }
            Err(e) => Err(e),
        }
    }

    fn write_once(
        &mut self,
        fd: BorrowedFd<'_>,
        _scratch: &mut IoSliceScratch,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep> {
        let ring = match self {
            ReadWrite::Ring(ring) => ring,
            ReadWrite::File(file) => return file.write_once(fd, counters),
        };
        let Some(piece) = ring.first_piece() else {
            return Ok(WriteStep::Idle);
        };
        let asked = piece.len();
        let (n, step) = write_outcome(sys::io::write(fd, piece), asked)?;
        ring.after_write(n, counters);
        Ok(step)
    }

    fn pending_out_bytes(&self) -> usize {
        match self {
            ReadWrite::Ring(ring) => ring.pending_out_bytes(),
            ReadWrite::File(file) => file.pending_out_bytes(),
        }
    }

    fn inside_request(&self) -> bool {
        match self {
            ReadWrite::Ring(ring) => ring.inside_request(),
            ReadWrite::File(file) => file.inside_request(),
        }
    }
}
