//! The io_uring features of the `uring-multishot` variant: a ring set up
//! for one issuing thread with deferred task work, a ring of provided
//! buffers that multishot receives pick from, and the multishot accept and
//! receive operations themselves.
//!
//! **Provided buffers.** A multishot receive carries no buffer: each time
//! data arrives the kernel takes one from a registered buffer ring
//! (`IORING_REGISTER_PBUF_RING`), fills it and names it in the completion.
//! From then on the buffer is the loop's until it is put back, so
//! [`Ring::take_provided`] hands its bytes to a closure and puts it back
//! as the closure returns: no reference to a buffer outlives the time the
//! kernel leaves it alone. The memory (the entry ring and the buffers) is
//! reachable only through raw pointers, because the kernel may write any
//! buffer that is in the ring at any moment; it is freed only when no
//! operation is in flight (else leaked with the ring, like an operation's
//! owner, see the parent module).

use std::alloc::{self, Layout};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use super::{LACKS_OVERRIDE_ENV, Op, OpId, Ring, Target, Uring};
use crate::sys::counters::{SyscallKind, finish_io};

/// The buffer group every multishot receive of a ring picks from.
const BUFFER_GROUP: u16 = 0;
/// The kernel maps buffer rings by pages: the entry array must start on one.
const PAGE_BYTES: usize = 4096;

impl Uring {
    /// A ring for one thread that submits and reaps everything itself:
    /// `IORING_SETUP_SINGLE_ISSUER` (the kernel skips locking for other
    /// submitters) and `IORING_SETUP_DEFER_TASKRUN` (completion work runs
    /// only inside this thread's `io_uring_enter`, never interrupting it).
    /// Must be called on the thread that will use the ring. One
    /// `io_uring_setup`.
    pub fn new_single_issuer(sq_entries: u32) -> io::Result<Uring> {
        Self::build_single_issuer(sq_entries, true)
    }

    fn build_single_issuer(sq_entries: u32, defer_taskrun: bool) -> io::Result<Uring> {
        let mut builder = IoUring::<squeue::Entry, cqueue::Entry>::builder();
        builder
            .setup_cqsize(sq_entries * super::CQ_ENTRIES_PER_SQ_ENTRY)
            .setup_single_issuer();
        if defer_taskrun {
            builder.setup_defer_taskrun();
        }
        let ring = finish_io(SyscallKind::IoUringSetup, builder.build(sq_entries))?;
        Ok(Uring { ring })
    }
}

/// Whether this kernel has everything `uring-multishot` uses; the error is
/// the reason, ready for a report. First the plain backend's probe
/// ([`super::probe`]: io_uring allowed, its features and opcodes), then
/// each feature of this variant in the order of the kernels that brought
/// them. Multishot accept (5.19) and multishot receive (6.0) have no probe
/// of their own: a kernel that takes `DEFER_TASKRUN` (6.1) has both.
/// Registered files are probed all the same (a sparse table registered,
/// `IORING_OP_CLOSE` in the opcode list), so that a kernel built or
/// confined without them is named rather than failing at set-up. The
/// capabilities named in [`LACKS_OVERRIDE_ENV`] count as missing.
pub fn probe_multishot() -> Result<(), String> {
    super::probe()?;
    let lacks = std::env::var(LACKS_OVERRIDE_ENV).unwrap_or_default();
    let pretend_missing = |name: &str| lacks.split(',').any(|l| l.trim() == name);
    let refused = |what: &str, e: io::Error| format!("this kernel's io_uring lacks {what} ({e})");
    Uring::build_single_issuer(8, false)
        .map_err(|e| refused("IORING_SETUP_SINGLE_ISSUER (Linux 6.0)", e))?;
    let uring = Uring::new_single_issuer(8)
        .map_err(|e| refused("IORING_SETUP_DEFER_TASKRUN (Linux 6.1)", e))?;
    let mut ring: Ring<()> = Ring::new(uring);
    ring.setup_provided_buffers(8, 4096).map_err(|e| {
        refused(
            "provided-buffer rings (IORING_REGISTER_PBUF_RING, Linux 5.19)",
            e,
        )
    })?;
    let sparse = "IORING_RSRC_REGISTER_SPARSE";
    let registered = match pretend_missing(sparse) {
        true => Err(io::Error::other(format!("{LACKS_OVERRIDE_ENV} names it"))),
        false => ring.register_fixed_files(8),
    };
    registered.map_err(|e| {
        refused(
            &format!("{sparse} (sparse registered files, Linux 5.19)"),
            e,
        )
    })?;
    let mut opcodes = io_uring::Probe::new();
    finish_io(
        SyscallKind::IoUringRegister,
        ring.ring.submitter().register_probe(&mut opcodes),
    )
    .map_err(|e| format!("cannot probe io_uring opcodes (io_uring_register: {e})"))?;
    let close = "IORING_OP_CLOSE";
    if !opcodes.is_supported(opcode::Close::CODE) || pretend_missing(close) {
        return Err(format!(
            "this kernel's io_uring lacks {close} (closing a registered file, Linux 5.15)"
        ));
    }
    Ok(())
}

/// The registered ring of provided buffers: `count` entries (a power of
/// two) naming `count` buffers of `buffer_bytes` each.
pub(super) struct ProvidedBuffers {
    entries: NonNull<types::BufRingEntry>,
    entries_layout: Layout,
    buffers: NonNull<u8>,
    buffers_layout: Layout,
    buffer_bytes: u32,
    count: u16,
    /// Our copy of the ring's tail: entries before it are the kernel's.
    tail: u16,
}

impl ProvidedBuffers {
    fn new(count: u16, buffer_bytes: u32) -> io::Result<ProvidedBuffers> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
        if !count.is_power_of_two() || count > 1 << 15 || buffer_bytes == 0 {
            return Err(invalid(
                "provided buffers: a power-of-two count up to 32768",
            ));
        }
        let entries_layout = Layout::from_size_align(
            usize::from(count) * size_of::<types::BufRingEntry>(),
            PAGE_BYTES,
        )
        .map_err(|_| invalid("provided buffer ring too large"))?;
        let buffers_layout =
            Layout::from_size_align(usize::from(count) * buffer_bytes as usize, PAGE_BYTES)
                .map_err(|_| invalid("provided buffers too large"))?;
        // SAFETY: both layouts have a non-zero size (count and
        // buffer_bytes are at least 1); a null result is handled.
        let (entries, buffers) = unsafe {
            (
                alloc::alloc_zeroed(entries_layout),
                alloc::alloc_zeroed(buffers_layout),
            )
        };
        let (Some(entries), Some(buffers)) = (NonNull::new(entries), NonNull::new(buffers)) else {
            alloc::handle_alloc_error(entries_layout)
        };
        Ok(ProvidedBuffers {
            entries: entries.cast(),
            entries_layout,
            buffers,
            buffers_layout,
            buffer_bytes,
            count,
            tail: 0,
        })
    }

    /// Hands buffer `id` (back) to the kernel.
    fn put(&mut self, id: u16) {
        let index = usize::from(self.tail & (self.count - 1));
        // SAFETY: `index` is below `count`, the number of entries
        // allocated; the entry at the tail is not the kernel's until the
        // tail moves past it below.
        let entry = unsafe { &mut *self.entries.as_ptr().add(index) };
        let offset = usize::from(id) * self.buffer_bytes as usize;
        entry.set_addr(self.buffers.as_ptr() as u64 + offset as u64);
        entry.set_len(self.buffer_bytes);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field lies in the first entry, allocated, and
        // 2-byte aligned; the kernel reads it concurrently, hence the
        // atomic store, whose release orders the entry written above
        // before the kernel can see it.
        unsafe {
            let tail = types::BufRingEntry::tail(self.entries.as_ptr()) as *mut u16;
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for ProvidedBuffers {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the owning ring
        // drops this only when no operation can still use the buffers.
        unsafe {
            alloc::dealloc(self.entries.as_ptr().cast(), self.entries_layout);
            alloc::dealloc(self.buffers.as_ptr(), self.buffers_layout);
        }
    }
}

impl<T> Ring<T> {
    /// Registers a ring of `count` provided buffers of `buffer_bytes` each
    /// (one `io_uring_register`) and hands every buffer to the kernel.
    pub fn setup_provided_buffers(&mut self, count: u16, buffer_bytes: u32) -> io::Result<()> {
        let mut buffers = ProvidedBuffers::new(count, buffer_bytes)?;
        // SAFETY: the entry array stays allocated while registered: it is
        // kept in `self.buffers` and freed only after the ring is gone
        // or nothing is in flight (see `Drop for Ring`).
        let registered = unsafe {
            self.ring.submitter().register_buf_ring_with_flags(
                buffers.entries.as_ptr() as u64,
                count,
                BUFFER_GROUP,
                0,
            )
        };
        finish_io(SyscallKind::IoUringRegister, registered)?;
        for id in 0..count {
            buffers.put(id);
        }
        self.buffers = Some(buffers);
        Ok(())
    }

    /// Gives `use_bytes` the first `len` bytes of provided buffer `id`
    /// (named by a completion), then hands the buffer back to the kernel.
    pub fn take_provided<R>(
        &mut self,
        id: u16,
        len: usize,
        use_bytes: impl FnOnce(&[u8]) -> R,
    ) -> R {
        let buffers = self
            .buffers
            .as_mut()
            .expect("a completion names a provided buffer only after set-up");
        assert!(id < buffers.count && len <= buffers.buffer_bytes as usize);
        let offset = usize::from(id) * buffers.buffer_bytes as usize;
        // SAFETY: the completion that named buffer `id` took it out of the
        // kernel's ring, and it goes back only in `put` below, after the
        // borrow ends; `offset + len` lies within the allocation (checked).
        let bytes =
            unsafe { std::slice::from_raw_parts(buffers.buffers.as_ptr().add(offset), len) };
        let result = use_bytes(bytes);
        buffers.put(id);
        result
    }

    /// Accepts connections from `listener` until its completion without
    /// `IORING_CQE_F_MORE` (an error, or cancelled): one completion per
    /// connection, as blocking sockets (see [`Ring::push_accept`]).
    pub fn push_accept_multishot(
        &mut self,
        listener: BorrowedFd<'_>,
        token: u64,
    ) -> io::Result<OpId> {
        let sqe = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build();
        let (index, id) = self.allocate();
        self.queue(index, id, Op::Accept, token, None, sqe)
            .map_err(|(e, _)| e)
    }

    /// Receives from `fd` into provided buffers until its completion
    /// without `IORING_CQE_F_MORE`: EOF, an error, no buffer left
    /// (`ENOBUFS`), or cancelled. Each completion names its buffer.
    pub fn push_recv_multishot<'fd>(
        &mut self,
        file: impl Into<Target<'fd>>,
        token: u64,
    ) -> io::Result<OpId> {
        if self.buffers.is_none() {
            return Err(io::Error::other(
                "multishot receive without provided buffers",
            ));
        }
        let sqe = match file.into() {
            Target::Fd(fd) => opcode::RecvMulti::new(types::Fd(fd.as_raw_fd()), BUFFER_GROUP),
            Target::Fixed(slot) => opcode::RecvMulti::new(types::Fixed(slot), BUFFER_GROUP),
        }
        .build();
        let (index, id) = self.allocate();
        self.queue(index, id, Op::Recv, token, None, sqe)
            .map_err(|(e, _)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provided_buffers_go_back_in_ring_order() {
        let mut buffers = ProvidedBuffers::new(4, 16).unwrap();
        for id in [2, 0, 3, 1, 2] {
            buffers.put(id);
        }
        // SAFETY: test-only look at entries written by `put`.
        let entry = |i: usize| unsafe { &*buffers.entries.as_ptr().add(i) };
        assert_eq!(entry(0).bid(), 2, "the fifth put wrapped to entry 0");
        assert_eq!(entry(1).bid(), 0);
        assert_eq!(entry(3).len(), 16);
        assert_eq!(buffers.tail, 5);
        assert!(ProvidedBuffers::new(3, 16).is_err(), "not a power of two");
    }
}
