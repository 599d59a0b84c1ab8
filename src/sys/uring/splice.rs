//! `IORING_OP_SPLICE` for the `uring-splice` variant: payload moved
//! between a connection's socket and its pipe without entering user space,
//! and the probe for what that needs.
//!
//! **Why a splice from a socket waits behind a linked poll.** The kernel
//! never tries an io_uring splice inline: it always hands it to a worker
//! thread (io-wq), which then blocks in the socket until bytes arrive. A
//! splice queued on an idle connection would hold a kernel thread for as
//! long as the connection stays idle (a thousand idle connections, a
//! thousand threads). So the splice from a socket is queued behind an
//! `IORING_OP_POLL_ADD` for readability, linked (`IOSQE_IO_LINK`): the
//! kernel issues the splice only once the socket is readable, as the epoll
//! loop splices only after `epoll_wait` said so. The poll's completion is
//! skipped when it succeeds (`IOSQE_CQE_SKIP_SUCCESS`), so the pair posts
//! one completion, the splice's. The splice to a socket needs no poll: its
//! bytes are in the pipe already, and it waits only while the peer does
//! not read (backpressure, as a blocked `write` would).
//!
//! **Names.** The poll's `user_data` is the splice's with
//! [`LINK_HEAD_BIT`] set, and the [`OpId`] handed back carries that bit
//! too, so that [`Ring::cancel`] cancels the poll first (which fails the
//! linked splice) and then the splice (in case the poll had fired and a
//! worker is running it or about to). A poll whose completion was to be
//! skipped posts one when it fails, and then the kernel posts none for the
//! splice its failure cancels (`REQ_F_SKIP_LINK_CQES`): so the poll's
//! failed completion is reported as the splice's.
//!
//! No SQE here carries a pointer: the owner travels with the operation
//! only so that the pipe it holds stays open until the completion.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use io_uring::{opcode, squeue, types};

use super::uring_ops::{self, UringOp};
use super::{
    CANCEL_USER_DATA, InFlight, Op, OpId, PushResult, Ring, SyscallKind, Uring, finish_io, len_u32,
    probe,
};

/// Set in the `user_data` of a splice's linked poll (and in the splice's
/// [`OpId`]); never set in an entry index, which counts operations in
/// flight.
const LINK_HEAD_BIT: u64 = 1 << 31;

/// Test hook: a comma-separated list of io_uring capabilities (names as in
/// the probe's reasons, e.g. `IORING_OP_SPLICE`) to treat as missing, so a
/// test can see a kernel without them refuse `uring-splice`.
pub const LACKS_OVERRIDE_ENV: &str = "EPOLL_BENCH_IO_URING_LACKS";

/// Whether this kernel lets this process run `uring-splice`: everything
/// [`probe`] asks, plus `IORING_OP_SPLICE` and skipping a successful
/// poll's completion. The error is the reason. Makes two `io_uring_setup`
/// and two `io_uring_register` on the calling thread (counted there).
pub fn probe_splice() -> Result<(), String> {
    probe()?;
    let lacks = std::env::var(LACKS_OVERRIDE_ENV).unwrap_or_default();
    let uring = Uring::new(8).map_err(|e| format!("io_uring_setup failed: {e}"))?;
    let mut opcodes = io_uring::Probe::new();
    finish_io(
        SyscallKind::IoUringRegister,
        uring.ring.submitter().register_probe(&mut opcodes),
    )
    .map_err(|e| format!("cannot probe io_uring opcodes (io_uring_register: {e})"))?;
    let needs = [
        (
            opcodes.is_supported(opcode::Splice::CODE),
            "IORING_OP_SPLICE",
            "Linux 5.7",
        ),
        (
            uring.ring.params().is_feature_skip_cqe_on_success(),
            "IORING_FEAT_CQE_SKIP",
            "Linux 5.17",
        ),
    ];
    missing(&needs, &lacks)
}

/// The first of `needs` absent (or named in `lacks`), as a reason.
fn missing(needs: &[(bool, &str, &str)], lacks: &str) -> Result<(), String> {
    let pretend_missing = |name: &str| lacks.split(',').any(|l| l.trim() == name);
    match needs
        .iter()
        .find(|(present, name, _)| !present || pretend_missing(name))
    {
        Some((_, name, since)) => Err(format!(
            "this kernel's io_uring lacks {name} ({since}), which the splice strategy needs"
        )),
        None => Ok(()),
    }
}

/// The operation a completion reports on: a failed link head's stands for
/// its linked operation's (see the module doc).
pub(super) fn operation_of(user_data: u64) -> u64 {
    if user_data == CANCEL_USER_DATA {
        user_data
    } else {
        user_data & !LINK_HEAD_BIT
    }
}

/// For [`Ring::cancel`]: cancels `op`'s linked poll, if it has one, and
/// returns the id of the operation itself.
pub(super) fn cancel_link_head<T>(ring: &mut Ring<T>, op: OpId) -> io::Result<OpId> {
    if op.0 & LINK_HEAD_BIT == 0 {
        return Ok(op);
    }
    let sqe = opcode::AsyncCancel::new(op.0)
        .build()
        .user_data(CANCEL_USER_DATA);
    ring.push_sqe(&sqe)?;
    Ok(OpId(op.0 & !LINK_HEAD_BIT))
}

impl<T> Ring<T> {
    /// Splices up to `len` bytes from `socket` into the pipe end `pipe`
    /// picks from `owner`, once the socket is readable (a poll linked to
    /// the splice, see the module doc). The completion reports the bytes
    /// moved, 0 at EOF.
    pub fn push_splice_from_socket<F>(
        &mut self,
        socket: BorrowedFd<'_>,
        token: u64,
        owner: Box<T>,
        len: usize,
        pipe: F,
    ) -> PushResult<T>
    where
        F: FnOnce(&T) -> BorrowedFd<'_>,
    {
        let pipe_fd = pipe(&owner).as_raw_fd();
        let splice = opcode::Splice::new(
            types::Fd(socket.as_raw_fd()),
            -1,
            types::Fd(pipe_fd),
            -1,
            len_u32(len),
        )
        .flags(libc::SPLICE_F_MOVE)
        .build();
        let readable =
            opcode::PollAdd::new(types::Fd(socket.as_raw_fd()), libc::POLLIN as u32).build();
        let (index, id) = self.allocate();
        debug_assert!(
            id.0 & LINK_HEAD_BIT == 0,
            "entry index reached the link bit"
        );
        let head_id = id.0 | LINK_HEAD_BIT;
        let pair = [
            readable
                .user_data(head_id)
                .flags(squeue::Flags::IO_LINK | squeue::Flags::SKIP_SUCCESS),
            splice.user_data(id.0),
        ];
        if let Err(e) = self.push_pair(&pair) {
            self.free.push(index as u32);
            return Err((e, owner));
        }
        self.entries[index].in_flight = Some(InFlight {
            op: Op::Splice,
            // The pair posts one completion, the splice's (or the poll's
            // failure standing for it).
            counted_as: UringOp::Splice,
            token,
            owner: std::ptr::NonNull::new(Box::into_raw(owner)),
        });
        self.in_flight += 1;
        Ok(OpId(head_id))
    }

    /// Splices `len` bytes from the pipe end `pipe` picks from `owner` to
    /// `socket`. The completion reports the bytes moved.
    pub fn push_splice_to_socket<F>(
        &mut self,
        socket: BorrowedFd<'_>,
        token: u64,
        owner: Box<T>,
        len: usize,
        pipe: F,
    ) -> PushResult<T>
    where
        F: FnOnce(&T) -> BorrowedFd<'_>,
    {
        let pipe_fd = pipe(&owner).as_raw_fd();
        let sqe = opcode::Splice::new(
            types::Fd(pipe_fd),
            -1,
            types::Fd(socket.as_raw_fd()),
            -1,
            len_u32(len),
        )
        .flags(libc::SPLICE_F_MOVE)
        .build();
        let (index, id) = self.allocate();
        let raw = Box::into_raw(owner);
        super::owned(self.queue(index, id, Op::Splice, token, Some(raw), sqe))
    }

    /// Queues a linked pair whole or not at all: a link head queued alone
    /// would be linked to whatever comes next, or to nothing.
    fn push_pair(&mut self, pair: &[squeue::Entry; 2]) -> io::Result<()> {
        let free = {
            let queue = self.ring.submission();
            queue.capacity() - queue.len()
        };
        if free < pair.len() {
            // As in `push_sqe`: hand what is queued to the kernel now.
            finish_io(SyscallKind::IoUringEnter, self.ring.submitter().submit())?;
        }
        // SAFETY: neither entry carries a pointer (module doc); the fds
        // they name stay open until the completion (the pipe in the owner
        // the ring holds, the socket with the caller until then).
        unsafe { self.ring.submission().push_multiple(pair) }.map_err(|_| {
            io::Error::other("io_uring submission queue still full after submitting")
        })?;
        // Two SQEs, as `push_sqe` counts each: the poll and the splice.
        for sqe in pair {
            uring_ops::submitted(UringOp::of_sqe(sqe));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_capability_is_named_and_the_hook_can_hide_one() {
        let needs = [(true, "IORING_OP_SPLICE", "Linux 5.7")];
        assert_eq!(missing(&needs, ""), Ok(()));
        let hidden = missing(&needs, "IORING_FEAT_X, IORING_OP_SPLICE").unwrap_err();
        assert!(
            hidden.contains("lacks IORING_OP_SPLICE (Linux 5.7)"),
            "{hidden}"
        );
        let absent = missing(&[(false, "IORING_FEAT_CQE_SKIP", "Linux 5.17")], "").unwrap_err();
        assert!(absent.contains("IORING_FEAT_CQE_SKIP"), "{absent}");
    }

    #[test]
    fn a_failed_link_head_reports_for_its_operation() {
        let op = (7 << 32) | 3;
        assert_eq!(operation_of(op | LINK_HEAD_BIT), op);
        assert_eq!(operation_of(op), op);
        assert_eq!(operation_of(CANCEL_USER_DATA), CANCEL_USER_DATA);
    }
}
