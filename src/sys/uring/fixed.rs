//! Registered (fixed) files for the `uring-multishot` variant: a table of
//! files registered with the ring, so that an operation names a slot
//! (`IOSQE_FIXED_FILE`) and the kernel finds the file there, instead of
//! looking the descriptor up and taking and dropping a reference to the
//! file (`fdget`/`fdput`) for every operation.
//!
//! The table is registered sparse (`IORING_RSRC_REGISTER_SPARSE`, Linux
//! 5.19): every slot empty, sized once at set-up. A connection's socket is
//! put in a slot the caller picks by `IORING_REGISTER_FILES_UPDATE` (one
//! `io_uring_register`), and taken out with `IORING_OP_CLOSE` on the slot
//! (an operation, no syscall), after which the slot may be reused. Every
//! `io_uring_register` here goes through [`finish_io`], counted.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use io_uring::{opcode, types};

use super::{Op, OpId, Ring, SyscallKind, finish_io};

/// Test hook: register at most this many slots (instead of one per fd
/// the limit allows), so a test can fill the table with fds to spare and
/// see the loop wait for a slot as it waits for an fd.
pub const FIXED_FILE_SLOTS_ENV: &str = "EPOLL_BENCH_IO_URING_FIXED_FILE_SLOTS";

/// The kernel's cap on a registered file table (`IORING_MAX_FIXED_FILES`);
/// it also refuses a table larger than the process's `RLIMIT_NOFILE`.
pub const MAX_FIXED_FILES: u32 = 1 << 20;

impl<T> Ring<T> {
    /// Registers an empty table of `slots` files (one `io_uring_register`).
    pub fn register_fixed_files(&mut self, slots: u32) -> io::Result<()> {
        finish_io(
            SyscallKind::IoUringRegister,
            self.ring.submitter().register_files_sparse(slots),
        )?;
        self.fixed_slots = slots;
        Ok(())
    }

    /// The size of the registered file table (0: none registered).
    pub fn fixed_slots(&self) -> u32 {
        self.fixed_slots
    }

    /// Puts `fd`'s file in slot `slot` of the table (one
    /// `io_uring_register`). The table holds its own reference: the file
    /// stays open while it is there, whatever becomes of `fd`.
    pub fn install_fixed(&mut self, slot: u32, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.set_fixed(slot, fd.as_raw_fd())
    }

    /// Empties slot `slot` now (one `io_uring_register`): the fallback
    /// when [`Ring::push_close_fixed`] cannot be queued.
    pub fn clear_fixed(&mut self, slot: u32) -> io::Result<()> {
        self.set_fixed(slot, -1)
    }

    fn set_fixed(&mut self, slot: u32, fd: i32) -> io::Result<()> {
        if slot >= self.fixed_slots {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "registered file slot {slot} outside the table of {}",
                    self.fixed_slots
                ),
            ));
        }
        let updated = finish_io(
            SyscallKind::IoUringRegister,
            self.ring.submitter().register_files_update(slot, &[fd]),
        )?;
        match updated {
            1 => Ok(()),
            n => Err(io::Error::other(format!(
                "registered file slot {slot}: the kernel updated {n} slots, not 1"
            ))),
        }
    }

    /// Takes the file out of slot `slot` (`IORING_OP_CLOSE`), dropping the
    /// table's reference: once no descriptor refers to it either, the
    /// socket closes. The slot may be reused once the completion is back.
    pub fn push_close_fixed(&mut self, slot: u32, token: u64) -> io::Result<OpId> {
        let sqe = opcode::Close::new(types::Fixed(slot)).build();
        let (index, id) = self.allocate();
        self.queue(index, id, Op::Close, token, None, sqe)
            .map_err(|(e, _)| e)
    }
}
