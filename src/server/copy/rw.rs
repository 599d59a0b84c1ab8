//! `rw`: one `read()` into the ring's next free piece, one `write()` per
//! contiguous pending piece. No gathering: a response costs a header write
//! and a payload write (two if the payload wraps around the ring).

use std::io;
use std::os::fd::BorrowedFd;

use super::ring::RingConn;
use super::{ConnConfig, CopyStrategy, IoSliceScratch, ReadStep, WriteStep, write_outcome};
use crate::server::report::LoopCounters;
use crate::sys;

pub struct ReadWrite(RingConn);

impl CopyStrategy for ReadWrite {
    const NAME: &'static str = "rw";

    fn new(config: &ConnConfig) -> io::Result<Self> {
        Ok(ReadWrite(RingConn::new(config)))
    }

    fn read_once(
        &mut self,
        fd: BorrowedFd<'_>,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep> {
        let Some(target) = self.0.read_target() else {
            return Ok(self.0.no_room_step());
        };
        let asked = target.len();
        match sys::io::read(fd, target) {
            Ok(n) => Ok(self.0.after_read(n, asked, config, counters)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.0.read_found_nothing();
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
        let Some(piece) = self.0.first_piece() else {
            return Ok(WriteStep::Idle);
        };
        let asked = piece.len();
        let (n, step) = write_outcome(sys::io::write(fd, piece), asked)?;
        self.0.after_write(n, counters);
        Ok(step)
    }

    fn pending_out_bytes(&self) -> usize {
        self.0.pending_out_bytes()
    }

    fn inside_request(&self) -> bool {
        self.0.inside_request()
    }
}
