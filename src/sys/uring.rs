//! io_uring for the `uring` backend: probing the kernel, setting a ring up,
//! queueing operations and reaping their completions.
//!
//! **Counting.** The `io-uring` crate issues the raw syscalls itself; each
//! crate function used here makes exactly one (`io_uring_setup` in
//! `Builder::build`, `io_uring_enter` in `submit`/`submit_and_wait`/
//! `submit_with_args`, `io_uring_register` in `register_probe`,
//! `register_buf_ring_with_flags`, `register_files_sparse` and
//! `register_files_update`), and its
//! result goes through [`counters::finish_io`] as it returns, so these
//! calls are counted like every other. Set-up also maps the rings (`mmap`,
//! twice) and dropping a ring unmaps and closes them: kinds the suite does
//! not track, made once at start and once at exit, outside any window.
//! Operations are counted too, in [`uring_ops`]: every SQE as it is queued
//! (`Ring::push_sqe`, `push_pair` for a linked pair), every CQE as it is
//! reaped, by opcode.
//!
//! **Buffer lifetimes, the reason this file exists.** An SQE carries raw
//! pointers that the kernel dereferences at any moment until the
//! operation's completion (CQE) is reaped, long after the call that queued
//! it returned. [`Ring`] makes that safe by ownership: the memory an
//! operation reads or writes belongs to an *owner* (`Box<T>`, the
//! connection's data) that the caller hands over with the operation. The
//! ring keeps it as a raw pointer in its table of operations in flight,
//! where nothing else can reach it, and hands the same box back only with
//! the operation's completion, when the kernel is done with it. So while
//! the kernel may touch the memory, no Rust reference to it exists and it
//! cannot be freed or moved (a box's heap contents never move, and the
//! owner's own heap buffers are only reachable through it). The iovec
//! lists of vectored operations live in the table entry, which is left
//! untouched until the completion too. The borrowed slices the caller
//! picks come from closures typed `for<'a> FnOnce(&'a mut T) -> &'a mut
//! [u8]` (and the like), so they can only point into the owner (or into
//! `'static` memory). If a ring is dropped with operations still in
//! flight, their owners and iovec lists are leaked, never freed. Nothing
//! here blocks or counts behind the caller's back.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::ptr::NonNull;
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use super::Fd;
use super::counters::{self, SyscallKind, finish_io};
use super::uring_ops::{self, UringOp};

mod fixed;
pub use fixed::{FIXED_FILE_SLOTS_ENV, MAX_FIXED_FILES};

mod multishot;
pub use multishot::probe_multishot;

mod splice;
pub use splice::{LACKS_OVERRIDE_ENV, probe_splice};

mod probe;
pub use probe::{DISABLED_FILE_OVERRIDE_ENV, IO_URING_DISABLED_SYSCTL, probe};

/// Submission queue entries per ring; the completion queue has
/// [`CQ_ENTRIES_PER_SQ_ENTRY`] times as many. More connections than this
/// with an operation in flight is fine: completions beyond the queue are
/// kept by the kernel (`IORING_FEAT_NODROP`, required by the probe).
pub const SQ_ENTRIES: u32 = 1024;
const CQ_ENTRIES_PER_SQ_ENTRY: u32 = 4;

/// A ring just set up: made on any thread, then turned into a [`Ring`] by
/// the thread that uses it.
pub struct Uring {
    ring: IoUring,
}

impl Uring {
    /// One `io_uring_setup` (plus the crate's `mmap`s, see the module doc).
    pub fn new(sq_entries: u32) -> io::Result<Uring> {
        let ring = finish_io(
            SyscallKind::IoUringSetup,
            IoUring::<squeue::Entry, cqueue::Entry>::builder()
                .setup_cqsize(sq_entries * CQ_ENTRIES_PER_SQ_ENTRY)
                .build(sq_entries),
        )?;
        Ok(Uring { ring })
    }
}

/// What an operation was, as its completion reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Accept,
    Recv,
    Send,
    Readv,
    Writev,
    PollIn,
    /// `IORING_OP_SPLICE`, between a socket and a pipe (`splice.rs`).
    Splice,
    /// `IORING_OP_CLOSE` of a registered file's slot (`fixed.rs`).
    Close,
}

/// The file an operation works on: a descriptor, or a slot of the ring's
/// registered file table (`fixed.rs`), which the kernel looks up without
/// taking and dropping a reference to the file per operation.
#[derive(Clone, Copy, Debug)]
pub enum Target<'fd> {
    Fd(BorrowedFd<'fd>),
    Fixed(u32),
}

impl<'fd> From<BorrowedFd<'fd>> for Target<'fd> {
    fn from(fd: BorrowedFd<'fd>) -> Target<'fd> {
        Target::Fd(fd)
    }
}

/// Names one operation in flight, to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpId(u64);

/// A reaped completion.
pub struct Completion<T> {
    pub op: Op,
    /// What the caller passed when queueing the operation.
    pub token: u64,
    /// The kernel's result: bytes moved, or the error (`ECANCELED` after
    /// [`Ring::cancel`]).
    pub result: io::Result<u32>,
    /// The owner handed over with the operation, back to the caller.
    pub owner: Option<Box<T>>,
    /// The connection an [`Op::Accept`] accepted (blocking, close-on-exec).
    pub accepted: Option<Fd>,
    /// `IORING_CQE_F_MORE`: a multishot operation goes on (its entry stays).
    pub more: bool,
    /// The provided buffer holding a multishot receive's bytes.
    pub buffer_id: Option<u16>,
}

/// An operation queued for the kernel.
pub type PushResult<T> = Result<OpId, (io::Error, Box<T>)>;

/// `user_data` of cancel requests: their completions are not reported.
const CANCEL_USER_DATA: u64 = u64::MAX;

struct InFlight<T> {
    op: Op,
    /// What its completions are counted as: what its SQE was counted as.
    counted_as: UringOp,
    token: u64,
    owner: Option<NonNull<T>>,
}

struct Entry<T> {
    generation: u32,
    in_flight: Option<InFlight<T>>,
    /// Kept per entry so that a vectored operation's list stays put until
    /// its completion; reused (capacity and all) by later operations.
    iovecs: Vec<libc::iovec>,
}

/// A ring in use by one serving thread, owning the memory of every
/// operation in flight (see the module doc). `T` is the owner type.
pub struct Ring<T> {
    ring: IoUring,
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    in_flight: usize,
    /// Collected before converting to iovecs; kept empty between uses.
    slices: Vec<IoSlice<'static>>,
    buffers: Option<multishot::ProvidedBuffers>,
    /// Slots of the registered file table (`fixed.rs`); 0 without one.
    fixed_slots: u32,
}

impl<T> Ring<T> {
    pub fn new(uring: Uring) -> Ring<T> {
        Ring {
            ring: uring.ring,
            entries: Vec::new(),
            free: Vec::new(),
            in_flight: 0,
            slices: Vec::new(),
            buffers: None,
            fixed_slots: 0,
        }
    }

    /// Operations queued or in flight whose completion is not reaped yet
    /// (cancel requests not included).
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Submits everything queued and waits for at least one completion, or
    /// until `timeout` passes (`None`: no limit): one `io_uring_enter`.
    /// A timeout or a signal returns normally: the caller reaps what there is.
    pub fn submit_and_wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let submitter = self.ring.submitter();
        let result = match timeout {
            None => submitter.submit_and_wait(1),
            Some(timeout) => {
                let timespec = types::Timespec::from(timeout);
                let args = types::SubmitArgs::new().timespec(&timespec);
                submitter.submit_with_args(1, &args)
            }
        };
        match finish_io(SyscallKind::IoUringEnter, result) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Moves up to `max` completions into `out`, giving owners back.
    pub fn reap(&mut self, max: usize, out: &mut Vec<Completion<T>>) {
        for cqe in self.ring.completion().take(max) {
            // A failed link head's completion is its operation's: the
            // kernel posts none for what the failure cancels (`splice.rs`).
            let user_data = splice::operation_of(cqe.user_data());
            if user_data == CANCEL_USER_DATA {
                uring_ops::reaped(UringOp::AsyncCancel);
                continue;
            }
            let index = user_data as u32 as usize;
            let generation = (user_data >> 32) as u32;
            let Some(entry) = self.entries.get_mut(index) else {
                debug_assert!(false, "completion for unknown entry {index}");
                continue;
            };
            if entry.generation != generation {
                // Only a cancelled link member may report after its head.
                debug_assert!(
                    cqe.result() == -libc::ECANCELED,
                    "completion for a finished operation"
                );
                continue;
            }
            let more = cqueue::more(cqe.flags());
            let done = match (&entry.in_flight, more) {
                // A multishot operation (never with an owner) goes on: its
                // entry stays until its final completion.
                (Some(going), true) => InFlight {
                    owner: None,
                    ..*going
                },
                _ => {
                    let Some(done) = entry.in_flight.take() else {
                        continue;
                    };
                    entry.generation = entry.generation.wrapping_add(1);
                    entry.iovecs.clear();
                    self.free.push(index as u32);
                    self.in_flight -= 1;
                    done
                }
            };
            uring_ops::reaped(done.counted_as);
            let raw = cqe.result();
            let result = if raw < 0 {
                Err(io::Error::from_raw_os_error(-raw))
            } else {
                Ok(raw as u32)
            };
            // The kernel copied these bytes between the socket and the
            // owner's memory, as read and write would have.
            if let Ok(n) = result {
                match done.op {
                    Op::Recv | Op::Readv => counters::copied_in(n as usize),
                    Op::Send | Op::Writev => counters::copied_out(n as usize),
                    Op::Accept | Op::PollIn | Op::Splice | Op::Close => {}
                }
            }
            let accepted = match (done.op, &result) {
                (Op::Accept, Ok(fd)) => Some(Fd::from_new(*fd as RawFd)),
                _ => None,
            };
            // SAFETY: the pointer came from `Box::into_raw` when the
            // operation was queued, and this completion ends the kernel's
            // use of the memory (module doc); the entry no longer holds it,
            // so the box is rebuilt exactly once.
            let owner = done.owner.map(|raw| unsafe { Box::from_raw(raw.as_ptr()) });
            out.push(Completion {
                op: done.op,
                token: done.token,
                result,
                owner,
                accepted,
                more,
                buffer_id: cqueue::buffer_select(cqe.flags()),
            });
        }
    }

    /// Accepts one connection from `listener`, as a blocking socket (so
    /// every opcode waits for readiness in the kernel rather than failing
    /// with `EAGAIN`).
    pub fn push_accept(&mut self, listener: BorrowedFd<'_>, token: u64) -> io::Result<OpId> {
        let sqe = opcode::Accept::new(
            types::Fd(listener.as_raw_fd()),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
        .flags(libc::SOCK_CLOEXEC)
        .build();
        let (index, id) = self.allocate();
        self.queue(index, id, Op::Accept, token, None, sqe)
            .map_err(|(e, _)| e)
    }

    /// One-shot readiness for reading (the control eventfd).
    pub fn push_poll_in(&mut self, fd: BorrowedFd<'_>, token: u64) -> io::Result<OpId> {
        let sqe = opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), libc::POLLIN as u32).build();
        let (index, id) = self.allocate();
        self.queue(index, id, Op::PollIn, token, None, sqe)
            .map_err(|(e, _)| e)
    }

    /// Receives into the slice `target` picks from `owner`.
    pub fn push_recv<F>(
        &mut self,
        fd: BorrowedFd<'_>,
        token: u64,
        owner: Box<T>,
        target: F,
    ) -> PushResult<T>
    where
        F: FnOnce(&mut T) -> &mut [u8],
    {
        let raw = Box::into_raw(owner);
        // SAFETY: `raw` comes from `Box::into_raw` just above and is
        // reachable from nowhere else; the borrow ends with the closure.
        let buf = target(unsafe { &mut *raw });
        let sqe = opcode::Recv::new(
            types::Fd(fd.as_raw_fd()),
            buf.as_mut_ptr(),
            len_u32(buf.len()),
        )
        .build();
        let (index, id) = self.allocate();
        owned(self.queue(index, id, Op::Recv, token, Some(raw), sqe))
    }

    /// Sends the slice `source` picks from `owner`.
    pub fn push_send<F>(
        &mut self,
        fd: BorrowedFd<'_>,
        token: u64,
        owner: Box<T>,
        source: F,
    ) -> PushResult<T>
    where
        F: FnOnce(&T) -> &[u8],
    {
        let raw = Box::into_raw(owner);
        // SAFETY: as in `push_recv`.
        let buf = source(unsafe { &*raw });
        let sqe =
            opcode::Send::new(types::Fd(fd.as_raw_fd()), buf.as_ptr(), len_u32(buf.len())).build();
        let (index, id) = self.allocate();
        owned(self.queue(index, id, Op::Send, token, Some(raw), sqe))
    }

    /// Reads into the slices `targets` picks from `owner` (empty ones
    /// skipped), like `readv`.
    pub fn push_readv<F>(
        &mut self,
        fd: BorrowedFd<'_>,
        token: u64,
        owner: Box<T>,
        targets: F,
    ) -> PushResult<T>
    where
        F: for<'a> FnOnce(&'a mut T) -> [IoSliceMut<'a>; 2],
    {
        let raw = Box::into_raw(owner);
        let (index, id) = self.allocate();
        let iovecs = &mut self.entries[index].iovecs;
        // SAFETY: as in `push_recv`.
        for mut slice in targets(unsafe { &mut *raw }) {
            if !slice.is_empty() {
                iovecs.push(libc::iovec {
                    iov_base: slice.as_mut_ptr().cast(),
                    iov_len: slice.len(),
                });
            }
        }
        let sqe = opcode::Readv::new(
            types::Fd(fd.as_raw_fd()),
            iovecs.as_ptr(),
            iovecs.len() as u32,
        )
        .build();
        owned(self.queue(index, id, Op::Readv, token, Some(raw), sqe))
    }

    /// Writes the slices `sources` gathers from `owner`, like `writev`.
    pub fn push_writev<'fd, F>(
        &mut self,
        file: impl Into<Target<'fd>>,
        token: u64,
        owner: Box<T>,
        sources: F,
    ) -> PushResult<T>
    where
        F: for<'a> FnOnce(&'a T, &mut Vec<IoSlice<'a>>),
    {
        let raw = Box::into_raw(owner);
        let (index, id) = self.allocate();
        let mut slices = recycle(std::mem::take(&mut self.slices));
        // SAFETY: as in `push_recv`.
        sources(unsafe { &*raw }, &mut slices);
        let iovecs = &mut self.entries[index].iovecs;
        iovecs.extend(slices.iter().map(|slice| libc::iovec {
            iov_base: slice.as_ptr() as *mut libc::c_void,
            iov_len: slice.len(),
        }));
        self.slices = recycle(slices);
        let (list, count) = (iovecs.as_ptr(), iovecs.len() as u32);
        let sqe = match file.into() {
            Target::Fd(fd) => opcode::Writev::new(types::Fd(fd.as_raw_fd()), list, count).build(),
            Target::Fixed(slot) => opcode::Writev::new(types::Fixed(slot), list, count).build(),
        };
        owned(self.queue(index, id, Op::Writev, token, Some(raw), sqe))
    }

    /// Asks the kernel to end `op` early; its completion then reports
    /// `ECANCELED` (or its result, if it finished first).
    pub fn cancel(&mut self, op: OpId) -> io::Result<()> {
        let op = splice::cancel_link_head(self, op)?;
        let sqe = opcode::AsyncCancel::new(op.0)
            .build()
            .user_data(CANCEL_USER_DATA);
        self.push_sqe(&sqe)
    }

    fn allocate(&mut self) -> (usize, OpId) {
        let index = match self.free.pop() {
            Some(index) => index as usize,
            None => {
                self.entries.push(Entry {
                    generation: 0,
                    in_flight: None,
                    iovecs: Vec::new(),
                });
                self.entries.len() - 1
            }
        };
        let generation = self.entries[index].generation as u64;
        (index, OpId((generation << 32) | index as u64))
    }

    /// Queues `sqe` as entry `index`'s operation; on failure frees the
    /// entry and gives the owner back.
    fn queue(
        &mut self,
        index: usize,
        id: OpId,
        op: Op,
        token: u64,
        owner: Option<*mut T>,
        sqe: squeue::Entry,
    ) -> Result<OpId, (io::Error, Option<Box<T>>)> {
        let counted_as = UringOp::of_sqe(&sqe);
        match self.push_sqe(&sqe.user_data(id.0)) {
            Ok(()) => {
                self.entries[index].in_flight = Some(InFlight {
                    op,
                    counted_as,
                    token,
                    owner: owner.and_then(NonNull::new),
                });
                self.in_flight += 1;
                Ok(id)
            }
            Err(e) => {
                self.entries[index].iovecs.clear();
                self.free.push(index as u32);
                // SAFETY: the kernel never saw the entry, so `raw` (from
                // `Box::into_raw` in the caller) is ours again, once.
                Err((e, owner.map(|raw| unsafe { Box::from_raw(raw) })))
            }
        }
    }

    fn push_sqe(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        if self.ring.submission().is_full() {
            // More operations in one loop turn than the queue holds: hand
            // them to the kernel now (an extra `io_uring_enter`).
            finish_io(SyscallKind::IoUringEnter, self.ring.submitter().submit())?;
        }
        // SAFETY: every pointer in an SQE queued here stays valid until its
        // completion is reaped (module doc): it points into an owner held
        // in `entries`, into that entry's iovec list, or at nothing (accept
        // without an address, poll, cancel).
        unsafe { self.ring.submission().push(sqe) }.map_err(|_| {
            io::Error::other("io_uring submission queue still full after submitting")
        })?;
        uring_ops::submitted(UringOp::of_sqe(sqe));
        Ok(())
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // The kernel may still use the memory of operations in flight
        // until the ring's own teardown cancels them: leak it instead.
        for entry in &mut self.entries {
            if entry.in_flight.take().is_some() {
                std::mem::forget(std::mem::take(&mut entry.iovecs));
            }
        }
        if self.in_flight > 0 {
            std::mem::forget(self.buffers.take());
        }
    }
}

/// The owner back with the error, for operations queued with one.
fn owned<T>(result: Result<OpId, (io::Error, Option<Box<T>>)>) -> PushResult<T> {
    result.map_err(|(e, owner)| (e, owner.expect("queued with an owner")))
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// An empty list with the allocation of `list`, for slices of another
/// lifetime.
fn recycle<'a, 'b>(mut list: Vec<IoSlice<'a>>) -> Vec<IoSlice<'b>> {
    list.clear();
    // Same layout, no elements: collecting in place keeps the allocation.
    list.into_iter().map(|_| unreachable!()).collect()
}
