//! `writev`: `readv()` into both free pieces of the ring, `writev()` of
//! every pending piece (headers, payloads, both ring halves, pipelined
//! responses) in one call, up to `IOV_MAX`.

use std::io;
use std::os::fd::BorrowedFd;

use super::ring::RingConn;
use super::segments::readv_pieces;
use super::{ConnConfig, CopyStrategy, IoSliceScratch, ReadStep, WriteStep, write_outcome};
use crate::server::report::LoopCounters;
use crate::sys;

pub struct Gathered(RingConn);

impl CopyStrategy for Gathered {
    const NAME: &'static str = "writev";

    fn new(config: &ConnConfig) -> io::Result<Self> {
        Ok(Gathered(RingConn::new(config)))
    }

    fn read_once(
        &mut self,
        fd: BorrowedFd<'_>,
        config: &ConnConfig,
        counters: &mut LoopCounters,
    ) -> io::Result<ReadStep> {
        let Some(mut targets) = self.0.readv_targets() else {
            return Ok(self.0.no_room_step());
        };
        let asked = targets[0].len() + targets[1].len();
        match readv_pieces(fd, &mut targets)? {
            Some(n) => Ok(self.0.after_read(n, asked, config, counters)),
            None => {
                self.0.read_found_nothing();
                Ok(ReadStep::WouldBlock)
            }
        }
    }

    fn write_once(
        &mut self,
        fd: BorrowedFd<'_>,
        scratch: &mut IoSliceScratch,
        counters: &mut LoopCounters,
    ) -> io::Result<WriteStep> {
        if self.0.pending_out_bytes() == 0 {
            return Ok(WriteStep::Idle);
        }
        let mut list = scratch.take();
        let asked = self.0.gather(&mut list, sys::io::IOV_MAX);
        let result = sys::io::writev(fd, &list);
        scratch.give_back(list);
        let (n, step) = write_outcome(result, asked)?;
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
