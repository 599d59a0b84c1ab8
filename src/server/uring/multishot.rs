//! The `uring-multishot` loop: io_uring as its modern interface is meant
//! to be used. One armed operation serves many events:
//!
//! - the listener has one multishot accept (`IORING_ACCEPT_MULTISHOT`), a
//!   completion per connection, queued again only after a completion
//!   without `IORING_CQE_F_MORE` (an error, or accepting paused on fd
//!   exhaustion and resumed);
//! - each connection has one multishot receive into a registered ring of
//!   provided buffers: a completion per arrival names the buffer, whose
//!   bytes go into the connection's ring buffer and frame parser (the same
//!   `RingConn` as every rw/writev loop) or, while a send holds those, its
//!   stash; the buffer goes back to the kernel at once. `ENOBUFS` or any
//!   other final completion re-arms it;
//! - pending output goes out as one `IORING_OP_WRITEV` gathering every
//!   piece, as `uring-writev` does;
//! - every connection operation names a registered file: each accepted
//!   socket is put in the ring's file table (sparse, sized at set-up to the
//!   fd limit), in the slot of the same index as its connection's entry
//!   here, and receives, writes and the final `IORING_OP_CLOSE` name that
//!   slot, so the kernel skips the descriptor lookup and the file
//!   reference taken and dropped (`fdget`/`fdput`) per operation;
//! - the ring is set up in the serving thread with `SINGLE_ISSUER` and
//!   `DEFER_TASKRUN`: completion work runs inside this thread's
//!   `io_uring_enter` only.
//!
//! **Backpressure.** The kernel keeps delivering to an armed receive, so
//! the receive is cancelled once pending output plus the stash reaches the
//! high watermark, and armed again when it drained to the low one: a
//! client that never reads stops being read, as under epoll. A
//! connection's table entry stays until its receive's final completion,
//! and it is closed (socket dropped) only once nothing is in flight; the
//! entry (and its registered file slot) is reused only once the slot's
//! close is back.
//!
//! **Why accepted sockets are descriptors too.** A multishot accept could
//! put each socket straight into the file table (direct descriptors, no
//! fd at all), but then a connection would no longer count against
//! `RLIMIT_NOFILE` nor show in `/proc/<pid>/fd`, and the fd-exhaustion
//! rules every variant follows (conformance case 11 lowers the running
//! server's limit and counts its fds) would not hold. So the accept makes
//! an fd as before, the fd is registered in the slot (one
//! `io_uring_register` per connection), and the loop keeps the fd, for the
//! limit, until the connection closes.
//!
//! Everything else (settings, counters, the accept pause, snapshots, the
//! shutdown rule) is the plain io_uring loop's (`mod.rs`).

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::common;
use super::copy::{UringCopy, Vectored};
use super::multishot_conn::{MultishotConn, Next, Recv};
use crate::server::control::{LoopControl, Requests};
use crate::server::event_loop::{
    ACCEPT_RETRY, KernelCounters, LoopConfig, LoopResources, SHUTDOWN_FLUSH,
    TURNS_PER_CONTROL_CHECK, is_fd_exhaustion, token,
};
use crate::server::report::{LoopCounters, ThreadReport};
use crate::server::turn::CloseReason;
use crate::sys::uring::{
    Completion, FIXED_FILE_SLOTS_ENV, MAX_FIXED_FILES, Op, OpId, Ring, SQ_ENTRIES, Target, Uring,
};
use crate::sys::{self, Fd};

mod accept;

const LISTENER_TOKEN: u64 = u64::MAX;
const WAKER_TOKEN: u64 = u64::MAX - 1;
/// As in the plain loop: how long the final drain waits for cancelled
/// operations.
const CANCEL_DRAIN: Duration = Duration::from_millis(200);
/// Provided buffers per serving thread, and their size: 4 MiB, enough for
/// every connection of a turn to have data in flight.
pub const PROVIDED_BUFFERS: u16 = 256;
pub const PROVIDED_BUFFER_BYTES: u32 = 16 << 10;

/// A connection's entry; its index is also its registered file slot.
struct Slot {
    generation: u32,
    conn: Option<MultishotConn>,
}

pub struct MultishotLoop {
    config: LoopConfig,
    ring: Ring<Vectored>,
    listener: Option<Fd>,
    control: Arc<LoopControl>,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    open_connections: usize,
    completions: Vec<Completion<Vectored>>,
    counters: LoopCounters,
    accept_op: Option<OpId>,
    accept_armed_before: bool,
    waker_op: Option<OpId>,
    accept_paused_since: Option<Instant>,
    /// Connections accepted past the fd limit (see [`MultishotLoop::accepted`])
    /// or with every registered file slot taken, each served once a
    /// connection closes.
    parked: Vec<Fd>,
    shutdown_deadline: Option<Instant>,
    /// The final drain: nothing is armed again.
    draining: bool,
    tid: i32,
    uncounted: Option<std::fs::File>,
    kernel: KernelCounters,
}

/// Starts a serving thread and sets its ring up there (`SINGLE_ISSUER`
/// ties a ring to the thread that made it); a set-up failure is returned
/// here, so `Server::start` fails before anything is reported listening.
pub fn spawn(
    config: LoopConfig,
    resources: LoopResources,
) -> io::Result<JoinHandle<io::Result<ThreadReport>>> {
    let LoopResources {
        listener, control, ..
    } = resources;
    let (ready, set_up) = mpsc::sync_channel(1);
    let name = format!("serve-uring-multishot-{}", config.thread_index);
    let thread =
        std::thread::Builder::new().name(name).spawn(move || {
            match MultishotLoop::new(config, listener, control) {
                Ok(serving) => {
                    let _ = ready.send(Ok(()));
                    serving.run()
                }
                Err(e) => {
                    let failed = io::Error::new(e.kind(), "ring set-up failed");
                    let _ = ready.send(Err(e));
                    Err(failed)
                }
            }
        })?;
    match set_up.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(io::Error::other("serving thread died during ring set-up")),
    }
}

impl MultishotLoop {
    fn new(
        config: LoopConfig,
        listener: Fd,
        control: Arc<LoopControl>,
    ) -> io::Result<MultishotLoop> {
        let mut ring = Ring::new(Uring::new_single_issuer(SQ_ENTRIES)?);
        ring.setup_provided_buffers(PROVIDED_BUFFERS, PROVIDED_BUFFER_BYTES)?;
        ring.register_fixed_files(fixed_file_slots()?)?;
        Ok(MultishotLoop {
            config,
            ring,
            listener: Some(listener),
            control,
            slots: Vec::new(),
            free_slots: Vec::new(),
            open_connections: 0,
            completions: Vec::new(),
            counters: LoopCounters::default(),
            accept_op: None,
            accept_armed_before: false,
            waker_op: None,
            accept_paused_since: None,
            parked: Vec::new(),
            shutdown_deadline: None,
            draining: false,
            tid: 0,
            uncounted: None,
            kernel: None,
        })
    }

    /// Serves until asked to shut down; returns the thread's final counters.
    pub fn run(mut self) -> io::Result<ThreadReport> {
        self.tid = sys::thread::current_tid();
        if self.config.kernel_counters {
            self.kernel = Some(
                sys::perf::KernelSyscallCounters::attach(&[self.tid]).map_err(|e| e.to_string()),
            );
        }
        if self.config.debug_uncounted_read {
            self.uncounted = Some(std::fs::File::open("/dev/zero")?);
        }
        self.arm_accept();
        self.arm_waker()?;
        loop {
            self.turn(self.config.max_events.max(1))?;
            if let Some(since) = self.accept_paused_since
                && since.elapsed() >= ACCEPT_RETRY
            {
                self.resume_accepting();
            }
            if let Some(deadline) = self.shutdown_deadline
                && (self.open_connections == 0 || Instant::now() >= deadline)
            {
                self.close_all()?;
                return self.report();
            }
        }
    }

    /// One `io_uring_enter`, then every completion it brought (up to `max`).
    fn turn(&mut self, max: usize) -> io::Result<()> {
        let timeout = self.wait_timeout();
        self.ring.submit_and_wait(timeout)?;
        if let Some(file) = self.uncounted.as_mut() {
            std::io::Read::read(file, &mut [0u8; 1])?;
        }
        let mut completions = std::mem::take(&mut self.completions);
        self.ring.reap(max, &mut completions);
        for (i, completion) in completions.drain(..).enumerate() {
            self.complete(completion)?;
            if (i + 1) % TURNS_PER_CONTROL_CHECK == 0 && !self.draining {
                self.poll_control()?;
            }
        }
        self.completions = completions;
        Ok(())
    }

    fn wait_timeout(&self) -> Option<Duration> {
        common::turn_wait(self.shutdown_deadline, self.accept_paused_since)
    }

    fn report(&self) -> io::Result<ThreadReport> {
        common::thread_report(&self.config, self.tid, self.counters, &self.kernel)
    }

    fn poll_control(&mut self) -> io::Result<()> {
        if self.control.has_requests() {
            let requests = self.control.take_pending();
            self.answer(requests)?;
        }
        Ok(())
    }

    fn answer(&mut self, requests: Requests) -> io::Result<()> {
        if requests.snapshot {
            let report = self.report()?;
            self.control.answer_snapshot(report);
        }
        if requests.shutdown && self.shutdown_deadline.is_none() {
            self.begin_shutdown();
        }
        Ok(())
    }

    fn arm_waker(&mut self) -> io::Result<()> {
        let op = self
            .ring
            .push_poll_in(self.control.waker_fd(), WAKER_TOKEN)?;
        self.waker_op = Some(op);
        Ok(())
    }

    /// The slot index of a completion's token, if its connection is still
    /// the one that queued the operation.
    fn index_of(&self, token: u64) -> Option<u32> {
        let index = token as u32;
        let slot = self.slots.get(index as usize)?;
        (slot.generation == (token >> 32) as u32 && slot.conn.is_some()).then_some(index)
    }

    fn received(&mut self, completion: Completion<Vectored>) {
        let Some(index) = self.index_of(completion.token) else {
            // Never: a connection stays until its receive's final completion.
            debug_assert!(false, "a receive completion for a closed connection");
            if let (Some(id), Ok(n)) = (completion.buffer_id, completion.result) {
                self.ring.take_provided(id, n as usize, |_| ());
            }
            return;
        };
        let conn = self.slots[index as usize].conn.as_mut().expect("live");
        if !completion.more {
            conn.recv = Recv::Off;
        }
        let mut failed = None;
        match completion.result {
            Ok(0) => {
                conn.eof = true;
                conn.read_closed = true;
            }
            Ok(n) => {
                let id = completion
                    .buffer_id
                    .expect("a multishot receive's bytes come in a provided buffer");
                // Bytes after a shutdown or a decision to close are dropped.
                let keep = conn.closing.is_none() && !conn.read_closed;
                let (config, counters) = (&self.config.conn, &mut self.counters);
                let taken = self.ring.take_provided(id, n as usize, |bytes| {
                    if keep {
                        conn.take_input(bytes, config, counters)
                    } else {
                        Ok(())
                    }
                });
                sys::uring_ops::note_buffer_ring_refill();
                if taken.is_err() {
                    failed = Some(CloseReason::ProtocolError);
                }
            }
            // Out of provided buffers, or stopped: re-armed below if wanted.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::ECANCELED)) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => {}
            Err(_) => failed = Some(CloseReason::ConnectionError),
        }
        match failed {
            Some(reason) => self.close(index, reason),
            None => self.advance(index),
        }
    }

    fn sent(&mut self, completion: Completion<Vectored>) {
        let Some(index) = self.index_of(completion.token) else {
            debug_assert!(false, "a send completion for a closed connection");
            return;
        };
        let conn = self.slots[index as usize].conn.as_mut().expect("live");
        conn.send = None;
        let Some(mut data) = completion.owner else {
            debug_assert!(false, "a send carries the connection's data");
            return;
        };
        let outcome = match completion.result {
            _ if conn.closing.is_some() => Ok(()),
            // Nothing written of something pending: retrying would spin.
            Ok(0) if data.pending_out_bytes() > 0 => Err(CloseReason::ConnectionError),
            Ok(n) => {
                data.after_write(n as usize, &mut self.counters);
                Ok(())
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => Ok(()),
            Err(_) => Err(CloseReason::ConnectionError),
        };
        conn.data = Some(data);
        match outcome {
            Ok(()) => self.advance(index),
            Err(reason) => self.close(index, reason),
        }
    }

    /// Does what the connection's state asks next (see
    /// [`MultishotConn::next`]).
    fn advance(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let token = token(index, slot.generation);
        let conn = slot.conn.as_mut().expect("advance on a live connection");
        let next = conn.next(
            &self.config.conn,
            &self.config.watermarks,
            &mut self.counters,
        );
        match next {
            Next::Send => {
                let data = conn
                    .data
                    .take()
                    .expect("a send is decided with the data here");
                match Vectored::push_gather(&mut self.ring, Target::Fixed(index), token, data) {
                    Ok(op) => conn.send = Some(op),
                    Err((_, data)) => {
                        conn.data = Some(data);
                        return self.close(index, CloseReason::ConnectionError);
                    }
                }
                // Backpressure applies while the send is out, too.
                self.advance(index);
            }
            Next::ArmRecv => match self.ring.push_recv_multishot(Target::Fixed(index), token) {
                Ok(op) => {
                    conn.recv = Recv::Armed(op);
                    if conn.recv_armed_before {
                        sys::uring_ops::note_multishot_rearm();
                    }
                    conn.recv_armed_before = true;
                }
                Err(_) => self.close(index, CloseReason::ConnectionError),
            },
            Next::StopRecv => self.stop_recv(index),
            Next::Close(reason) | Next::Cancel(reason) => self.close(index, reason),
            Next::Wait => {}
        }
    }

    fn stop_recv(&mut self, index: u32) {
        let conn = self.slots[index as usize].conn.as_mut().expect("live");
        if let Recv::Armed(op) = conn.recv {
            conn.recv = Recv::Cancelling;
            // A failed cancel leaves the receive armed until it ends by
            // itself (EOF, an error); its final completion still comes.
            let _ = self.ring.cancel(op);
        }
    }

    /// Closes a connection now, or, with operations in flight, cancels
    /// them and closes when the last final completion is back.
    fn close(&mut self, index: u32, reason: CloseReason) {
        self.stop_recv(index);
        let slot = &mut self.slots[index as usize];
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        if conn.closing.is_none() {
            conn.closing = Some(reason);
            if let Some(op) = conn.send {
                let _ = self.ring.cancel(op);
            }
        }
        if !conn.idle() {
            return;
        }
        let reason = conn.closing.expect("set above");
        let conn = slot.conn.take().expect("checked above");
        slot.generation = slot.generation.wrapping_add(1);
        let close_token = token(index, slot.generation);
        self.open_connections -= 1;
        reason.count(&mut self.counters);
        // Dropping the connection closes its fd (counted) and frees its
        // data, which no operation holds any more; the socket itself
        // closes once its registered file slot is emptied too.
        drop(conn);
        match self.ring.push_close_fixed(index, close_token) {
            // The entry is free again when the close is back.
            Ok(_) => {}
            Err(_) => self.free_slot(index),
        }
        // The fd freed makes room for a connection parked past the limit.
        self.admit_parked();
        self.resume_accepting();
    }

    /// A registered file slot's close is back: its entry may be reused.
    fn slot_closed(&mut self, completion: Completion<Vectored>) {
        let index = completion.token as u32;
        debug_assert!(
            self.slots
                .get(index as usize)
                .is_some_and(|slot| slot.conn.is_none()),
            "a slot closed under a live connection"
        );
        if completion.result.is_ok() {
            self.free_slots.push(index);
        } else {
            // Never expected; emptied synchronously instead.
            self.free_slot(index);
        }
        self.admit_parked();
    }

    /// Empties slot `index` now and frees its entry; a slot the kernel
    /// will not empty is never reused (so never closes a newer socket).
    fn free_slot(&mut self, index: u32) {
        if self.ring.clear_fixed(index).is_ok() {
            self.free_slots.push(index);
        }
    }

    /// Serves connections parked past the fd limit or a full file table
    /// while a slot is free (the fd limit is checked when they were
    /// accepted: a parked connection holds its fd already).
    fn admit_parked(&mut self) {
        while !self.parked.is_empty()
            && (!self.free_slots.is_empty() || self.slots.len() < self.ring.fixed_slots() as usize)
        {
            let fd = self.parked.remove(0);
            self.register(fd);
        }
    }

    fn begin_shutdown(&mut self) {
        self.shutdown_deadline = Some(Instant::now() + SHUTDOWN_FLUSH);
        self.accept_paused_since = None;
        self.parked.clear();
        if let Some(op) = self.accept_op {
            let _ = self.ring.cancel(op);
        }
        // The accept in flight keeps the socket open until it is cancelled.
        self.listener = None;
        for index in 0..self.slots.len() as u32 {
            let Some(conn) = self.slots[index as usize].conn.as_mut() else {
                continue;
            };
            conn.read_closed = true;
            self.advance(index);
        }
    }

    /// Closes every connection, then waits (at most [`CANCEL_DRAIN`]) for
    /// every cancelled operation to come back, so that the report counts
    /// the closes and the memory is freed rather than leaked.
    fn close_all(&mut self) -> io::Result<()> {
        self.draining = true;
        for index in 0..self.slots.len() as u32 {
            if self.slots[index as usize].conn.is_some() {
                self.close(index, CloseReason::Done);
            }
        }
        for op in [self.accept_op, self.waker_op].into_iter().flatten() {
            let _ = self.ring.cancel(op);
        }
        let deadline = Instant::now() + CANCEL_DRAIN;
        while self.ring.in_flight() > 0 && Instant::now() < deadline {
            self.shutdown_deadline = Some(deadline);
            self.turn(usize::MAX)?;
        }
        Ok(())
    }
}

/// The registered file table's size: one slot per connection the fd limit
/// allows at set-up (one `prlimit64`), as many as the kernel takes (it
/// refuses a table larger than the soft `RLIMIT_NOFILE`), or fewer if the
/// test hook [`FIXED_FILE_SLOTS_ENV`] asks.
fn fixed_file_slots() -> io::Result<u32> {
    let (soft, _) = sys::rlimit::nofile()?;
    let mut slots = soft.clamp(1, u64::from(MAX_FIXED_FILES));
    if let Some(asked) = std::env::var_os(FIXED_FILE_SLOTS_ENV) {
        let asked: u64 = asked.to_str().and_then(|a| a.parse().ok()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{FIXED_FILE_SLOTS_ENV}={asked:?}: not a number of slots"),
            )
        })?;
        slots = slots.min(asked.max(1));
    }
    Ok(slots as u32)
}
