//! The io_uring backend: its own loop, with the epoll loop's rules.
//!
//! Each loop turn is one `io_uring_enter` that submits every SQE queued
//! since the last turn and waits for at least one completion; the turn then
//! reaps up to `--max-events` completions and handles each, which queues
//! the connection's next operation for the next turn. The listener is
//! served by an `IORING_OP_ACCEPT` re-armed after each completion, the
//! control eventfd by a one-shot `IORING_OP_POLL_ADD` re-armed after each
//! wake-up.
//!
//! **One operation in flight per connection.** A connection's data (ring
//! buffer, parser, output queue; shared with the epoll strategies) is the
//! owner of its operation in flight (`sys::uring`), so the kernel and the
//! loop never touch it at the same time. Its next operation is a write
//! while output is pending, else a read: a response is sent in full before
//! the connection reads again. That is the epoll loop's watermark rule in
//! its strictest form: pending output never exceeds what one read brought
//! in (at most the buffer, below the high watermark), so memory per
//! connection keeps the same bound, whatever a client sends or refuses to
//! read.
//!
//! **Shared with the epoll loop:** settings ([`LoopConfig`]), the frame and
//! echo handling (`copy::ring::RingConn`, `copy::splice::SplicePath` and
//! the frame parser), parking a connection whose pipe cannot be made, the close
//! reasons and counters, the accept pause on fd exhaustion (100 ms, or
//! until a connection closes), snapshots and shutdown through
//! [`LoopControl`], and the shutdown rule: stop reading at once, flush what
//! is owed for at most 500 ms, close everything.

mod common;
pub mod copy;
pub mod multishot;
mod multishot_conn;
pub mod splice;

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::control::{LoopControl, Requests};
use super::copy::ReadStep;
use super::event_loop::{
    ACCEPT_RETRY, KernelCounters, LoopConfig, SHUTDOWN_FLUSH, TURNS_PER_CONTROL_CHECK,
    is_fd_exhaustion, token,
};
use super::report::{LoopCounters, ThreadReport};
use super::turn::CloseReason;
use crate::sys::uring::{Completion, Op, OpId, Ring, Uring};
use crate::sys::{self, Fd};
use copy::UringCopy;

const LISTENER_TOKEN: u64 = u64::MAX;
const WAKER_TOKEN: u64 = u64::MAX - 1;

/// How long the final drain waits for cancelled operations to come back
/// before leaving their memory to the ring's teardown (leaked, never
/// freed). Cancelling an operation waiting for readiness takes
/// microseconds; the bound keeps a shutdown within its 1 s (500 ms flush +
/// this).
const CANCEL_DRAIN: Duration = Duration::from_millis(200);

/// Where a connection's data is.
enum Data<C> {
    /// With the loop: no operation in flight.
    Here(Box<C>),
    /// With the kernel: a read of `asked` bytes in flight.
    Reading { op: OpId, asked: usize },
    /// With the kernel: a write in flight.
    Writing { op: OpId },
    /// Only while a completion is being handled.
    Moving,
}

struct Conn<C> {
    fd: Fd,
    data: Data<C>,
    /// EOF seen, or shutting down: never read again.
    read_closed: bool,
    /// Close as soon as the operation in flight comes back (it was
    /// cancelled), for this reason.
    closing: Option<CloseReason>,
}

struct Slot<C> {
    generation: u32,
    conn: Option<Conn<C>>,
}

pub struct UringLoop<C: UringCopy> {
    config: LoopConfig,
    ring: Ring<C>,
    listener: Option<Fd>,
    control: Arc<LoopControl>,
    slots: Vec<Slot<C>>,
    free_slots: Vec<u32>,
    open_connections: usize,
    completions: Vec<Completion<C>>,
    counters: LoopCounters,
    accept_op: Option<OpId>,
    waker_op: Option<OpId>,
    accept_paused_since: Option<Instant>,
    /// A connection accepted while its per-connection fds (splice's pipe)
    /// could not be created: registered first when accepting resumes, as
    /// the epoll loop does.
    parked: Option<Fd>,
    shutdown_deadline: Option<Instant>,
    tid: i32,
    uncounted: Option<std::fs::File>,
    kernel: KernelCounters,
}

impl<C: UringCopy> UringLoop<C> {
    /// `listener` and `control` as the epoll loop gets them (`Server::start`),
    /// `uring` set up for this thread.
    pub fn new(
        config: LoopConfig,
        uring: Uring,
        listener: Fd,
        control: Arc<LoopControl>,
    ) -> UringLoop<C> {
        UringLoop {
            config,
            ring: Ring::new(uring),
            listener: Some(listener),
            control,
            slots: Vec::new(),
            free_slots: Vec::new(),
            open_connections: 0,
            completions: Vec::new(),
            counters: LoopCounters::default(),
            accept_op: None,
            waker_op: None,
            accept_paused_since: None,
            parked: None,
            shutdown_deadline: None,
            tid: 0,
            uncounted: None,
            kernel: None,
        }
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
            self.turn()?;
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

    /// One `io_uring_enter`, then every completion it brought (up to
    /// `--max-events`).
    fn turn(&mut self) -> io::Result<()> {
        let timeout = self.wait_timeout();
        self.ring.submit_and_wait(timeout)?;
        if let Some(file) = self.uncounted.as_mut() {
            std::io::Read::read(file, &mut [0u8; 1])?;
        }
        let mut completions = std::mem::take(&mut self.completions);
        self.ring
            .reap(self.config.max_events.max(1), &mut completions);
        for (i, completion) in completions.drain(..).enumerate() {
            self.complete(completion)?;
            if (i + 1) % TURNS_PER_CONTROL_CHECK == 0 {
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

    fn arm_accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        match self.ring.push_accept(listener.as_fd(), LISTENER_TOKEN) {
            Ok(op) => self.accept_op = Some(op),
            // Retried as after fd exhaustion.
            Err(_) => self.pause_accepting(),
        }
    }

    fn complete(&mut self, completion: Completion<C>) -> io::Result<()> {
        match (completion.op, completion.token) {
            (Op::Accept, _) => self.accepted(completion),
            (Op::PollIn, _) => {
                self.waker_op = None;
                if completion.result.is_ok() {
                    // Drained before re-arming, or the poll would fire at once.
                    let requests = self.control.take_requests()?;
                    self.answer(requests)?;
                }
                if !matches!(&completion.result, Err(e) if e.raw_os_error() == Some(libc::ECANCELED))
                {
                    self.arm_waker()?;
                }
            }
            (_, token) => self.connection_done(token, completion),
        }
        Ok(())
    }

    fn accepted(&mut self, completion: Completion<C>) {
        self.accept_op = None;
        match (completion.accepted, completion.result) {
            (Some(fd), _) => {
                if self.register(fd) {
                    self.arm_accept();
                }
            }
            (None, Err(e)) if e.raw_os_error() == Some(libc::ECANCELED) => {}
            (None, Err(e)) if is_fd_exhaustion(&e) => self.pause_accepting(),
            // The peer gave up before we accepted, or a signal: next one.
            (None, Err(e))
                if matches!(
                    e.raw_os_error(),
                    Some(
                        libc::ECONNABORTED
                            | libc::EINTR
                            | libc::EPROTO
                            | libc::EPERM
                            | libc::EAGAIN
                    )
                ) =>
            {
                self.arm_accept()
            }
            (None, _) => self.pause_accepting(),
        }
    }

    /// Starts serving `fd`; false when out of descriptors for its data
    /// (then parked, accepting paused).
    fn register(&mut self, fd: Fd) -> bool {
        if self.shutdown_deadline.is_some() || sys::socket::set_nodelay(fd.as_fd()).is_err() {
            return true;
        }
        let data = match C::new(&self.config.conn) {
            Ok(data) => Box::new(data),
            Err(e) if is_fd_exhaustion(&e) => {
                self.parked = Some(fd);
                self.pause_accepting();
                return false;
            }
            Err(_) => return true,
        };
        let index = match self.free_slots.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[index as usize].conn = Some(Conn {
            fd,
            data: Data::Here(data),
            read_closed: false,
            closing: None,
        });
        self.open_connections += 1;
        self.counters.connections_accepted += 1;
        self.next_op(index);
        true
    }

    fn pause_accepting(&mut self) {
        if self.accept_paused_since.is_some() {
            return;
        }
        self.accept_paused_since = Some(Instant::now());
        self.counters.accept_pauses_emfile += 1;
    }

    fn resume_accepting(&mut self) {
        if self.accept_paused_since.take().is_none() {
            return;
        }
        let registered = match self.parked.take() {
            Some(fd) => self.register(fd),
            None => true,
        };
        if registered {
            self.arm_accept();
        }
    }

    /// The connection of a completion's token, if it is still the one that
    /// queued the operation.
    fn conn_mut(&mut self, token: u64) -> Option<(u32, &mut Conn<C>)> {
        let index = token as u32;
        let slot = self.slots.get_mut(index as usize)?;
        if slot.generation != (token >> 32) as u32 {
            return None;
        }
        slot.conn.as_mut().map(|conn| (index, conn))
    }

    fn connection_done(&mut self, token: u64, completion: Completion<C>) {
        let counters = &mut self.counters;
        let conn_config = &self.config.conn;
        let Some((index, conn)) = (match self.slots.get_mut(token as u32 as usize) {
            Some(slot) if slot.generation == (token >> 32) as u32 => {
                slot.conn.as_mut().map(|conn| (token as u32, conn))
            }
            _ => None,
        }) else {
            debug_assert!(false, "a completion for a closed connection");
            return;
        };
        let Some(mut data) = completion.owner else {
            debug_assert!(false, "connection operations carry their data");
            return;
        };
        let was = std::mem::replace(&mut conn.data, Data::Moving);
        let outcome = match (was, completion.result) {
            _ if conn.closing.is_some() => Err(conn.closing.expect("checked")),
            (Data::Reading { asked, .. }, Ok(n)) => {
                match data.after_read(n as usize, asked, conn_config, counters) {
                    ReadStep::Eof => {
                        conn.read_closed = true;
                        if data.inside_request() {
                            Err(CloseReason::ProtocolError)
                        } else {
                            Ok(())
                        }
                    }
                    ReadStep::ProtocolError => Err(CloseReason::ProtocolError),
                    ReadStep::Data(_)
                    | ReadStep::WouldBlock
                    | ReadStep::NoRoom
                    | ReadStep::NoBuffer => Ok(()),
                }
            }
            (Data::Writing { .. }, Ok(0)) if data.pending_out_bytes() > 0 => {
                // Nothing written of something pending: retrying would spin.
                Err(CloseReason::ConnectionError)
            }
            (Data::Writing { .. }, Ok(n)) => {
                data.after_write(n as usize, counters);
                Ok(())
            }
            // Cancelled by the shutdown: stop reading, flush what is owed.
            (Data::Reading { .. }, Err(e)) if e.raw_os_error() == Some(libc::ECANCELED) => {
                conn.read_closed = true;
                Ok(())
            }
            (_, Err(e)) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => Ok(()),
            (_, Err(_)) => Err(CloseReason::ConnectionError),
            (Data::Here(_) | Data::Moving, Ok(_)) => Err(CloseReason::ConnectionError),
        };
        conn.data = Data::Here(data);
        match outcome {
            Ok(()) => self.next_op(index),
            Err(reason) => self.close(index, reason),
        }
    }

    /// Queues a connection's next operation: a write while output is
    /// pending, else a read; or closes it once it is done.
    fn next_op(&mut self, index: u32) {
        let shutting_down = self.shutdown_deadline.is_some();
        let slot = &mut self.slots[index as usize];
        let token = token(index, slot.generation);
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        let Data::Here(data) = std::mem::replace(&mut conn.data, Data::Moving) else {
            unreachable!("next_op on a connection with an operation in flight")
        };
        let fd = conn.fd.as_fd();
        let pushed = if data.pending_out_bytes() > 0 {
            C::push_write(&mut self.ring, fd, token, data).map(|op| Data::Writing { op })
        } else if conn.read_closed || shutting_down {
            conn.data = Data::Here(data);
            self.close(index, CloseReason::Done);
            return;
        } else {
            C::push_read(&mut self.ring, fd, token, data)
                .map(|(op, asked)| Data::Reading { op, asked })
        };
        match pushed {
            Ok(in_flight) => conn.data = in_flight,
            Err((_, data)) => {
                conn.data = Data::Here(data);
                self.close(index, CloseReason::ConnectionError);
            }
        }
    }

    /// Closes a connection now, or, with an operation in flight, cancels it
    /// and closes when it comes back.
    fn close(&mut self, index: u32, reason: CloseReason) {
        let slot = &mut self.slots[index as usize];
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        match conn.data {
            Data::Reading { op, .. } | Data::Writing { op } => {
                if conn.closing.is_none() {
                    conn.closing = Some(reason);
                    // A failed cancel leaves the operation to finish by
                    // itself; the connection still closes when it does.
                    let _ = self.ring.cancel(op);
                }
                return;
            }
            Data::Here(_) | Data::Moving => {}
        }
        let conn = slot.conn.take().expect("checked above");
        slot.generation = slot.generation.wrapping_add(1);
        self.free_slots.push(index);
        self.open_connections -= 1;
        reason.count(&mut self.counters);
        // Dropping the connection closes its socket (counted) and frees
        // its data, which no operation holds any more.
        drop(conn);
        self.resume_accepting();
    }

    fn begin_shutdown(&mut self) {
        self.shutdown_deadline = Some(Instant::now() + SHUTDOWN_FLUSH);
        self.accept_paused_since = None;
        self.parked = None;
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
            match conn.data {
                Data::Reading { op, .. } => {
                    let _ = self.ring.cancel(op);
                }
                Data::Here(_) => self.next_op(index),
                Data::Writing { .. } | Data::Moving => {}
            }
        }
    }

    /// Closes every connection, then waits (at most [`CANCEL_DRAIN`]) for
    /// every cancelled operation to come back, so that the report counts
    /// the closes and the memory is freed rather than leaked.
    fn close_all(&mut self) -> io::Result<()> {
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
            let left = deadline.saturating_duration_since(Instant::now());
            self.ring
                .submit_and_wait(Some(left.max(Duration::from_millis(1))))?;
            let mut completions = std::mem::take(&mut self.completions);
            self.ring.reap(usize::MAX, &mut completions);
            for completion in completions.drain(..) {
                match completion.op {
                    Op::Accept => self.accept_op = None,
                    Op::PollIn => self.waker_op = None,
                    _ => {
                        if let Some((index, conn)) = self.conn_mut(completion.token) {
                            if let Some(data) = completion.owner {
                                conn.data = Data::Here(data);
                            }
                            let reason = conn.closing.unwrap_or(CloseReason::Done);
                            self.close(index, reason);
                        }
                    }
                }
            }
            self.completions = completions;
        }
        Ok(())
    }
}
