//! The one event loop every variant runs, generic over the trigger mode and
//! the copy strategy. Everything not decided by those two traits (accept
//! policy, watermarks, error handling, shutdown) is written once, here.

use std::collections::VecDeque;
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::control::{LoopControl, Requests};
use super::copy::pool::{self, BufferPolicy};
use super::copy::{ConnConfig, CopyStrategy, IoSliceScratch};
use super::report::{LoopCounters, ThreadReport};
use super::trigger::Trigger;
pub use super::turn::Watermarks;
use super::turn::{CloseReason, Conn, Turn, drive};
use crate::sys::{self, Fd, epoll, epoll::Epoll};

/// Epoll tokens of the listener and the control waker (registered by `Server::start`): a
/// connection's [`token`] has its slot index, far below `u32::MAX - 1`, in the low half.
pub(crate) const LISTENER_TOKEN: u64 = u64::MAX;
pub(crate) const WAKER_TOKEN: u64 = u64::MAX - 1;

/// How long accepting stays paused after the process ran out of fds, when
/// no connection closes first.
pub(super) const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// How long a shutdown waits for pending responses to drain.
pub(super) const SHUTDOWN_FLUSH: Duration = Duration::from_millis(500);
/// Connection turns between two looks at the control flag. A turn is at
/// most [`super::turn::MAX_IO_CALLS_PER_TURN`] calls, so a snapshot or shutdown waits for
/// at most this many × that many calls (about 2,000, a few ms) however many
/// connections are ready; a pass shorter than this answers at its next
/// `epoll_wait`, as when idle.
pub(super) const TURNS_PER_CONTROL_CHECK: usize = 32;

/// Settings of one serving thread; identical across variants.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    pub conn: ConnConfig,
    pub max_events: usize,
    pub watermarks: Watermarks,
    /// Where rings get their buffers ([`pool`]); pooled buffers are
    /// [`ConnConfig::buffer_size_bytes`] each, at most `pool_max_buffers`
    /// per thread.
    pub buffers: BufferPolicy,
    pub pool_max_buffers: usize,
    pub thread_index: usize,
    /// Test-only: after every wake-up, make one `read` that bypasses the
    /// counting wrapper, so tests can prove the kernel cross-check catches
    /// syscalls the in-process count misses.
    pub debug_uncounted_read: bool,
    /// Count this thread's syscalls in the kernel too (perf tracepoints),
    /// read with every report for the cross-check.
    pub kernel_counters: bool,
}

/// Everything a serving thread owns, handed to it by `Server::start`.
pub struct LoopResources {
    pub epoll: Epoll,
    pub listener: Fd,
    pub control: Arc<LoopControl>,
}

struct Slot<C> {
    generation: u32,
    conn: Option<Conn<C>>,
}

pub struct EventLoop<T: Trigger, C: CopyStrategy> {
    config: LoopConfig,
    epoll: Epoll,
    listener: Option<Fd>,
    control: Arc<LoopControl>,
    slots: Vec<Slot<C>>,
    free_slots: Vec<u32>,
    open_connections: usize,
    events: Vec<epoll::Event>,
    requeued: Vec<u64>,
    requeue_spare: Vec<u64>,
    /// Connections waiting for a pooled buffer, first come first served.
    buffer_waiters: VecDeque<u64>,
    scratch: IoSliceScratch,
    counters: LoopCounters,
    accept_paused_since: Option<Instant>,
    /// A connection accepted while its per-connection fds (splice's pipe)
    /// could not be created: registered first when accepting resumes,
    /// rather than closed unserved.
    parked: Option<Fd>,
    shutdown_deadline: Option<Instant>,
    tid: i32,
    uncounted: Option<std::fs::File>,
    kernel: KernelCounters,
    _trigger: PhantomData<T>,
}

/// A serving thread's kernel counters: `None` when not asked for, the
/// reason when they could not be attached.
pub(super) type KernelCounters = Option<Result<sys::perf::KernelSyscallCounters, String>>;

/// The calling serving thread's report now (every backend's loop answers
/// snapshots and ends with this).
pub(super) fn thread_report(
    config: &LoopConfig,
    tid: i32,
    counters: LoopCounters,
    kernel: &KernelCounters,
) -> io::Result<ThreadReport> {
    let usage = sys::rusage::this_thread()?;
    // Kernel counts first, in-process counts last: the kernel counts the
    // read of its own counters on entry, and so does the wrapper, so
    // both sides cover exactly the same calls.
    let (kernel_syscalls, kernel_unavailable_reason) = match kernel {
        None => (None, None),
        Some(Err(reason)) => (None, Some(reason.clone())),
        Some(Ok(counters)) => match counters.read() {
            Ok(counts) => (Some(counts), None),
            Err(e) => (
                None,
                Some(format!("reading the kernel counters failed: {e}")),
            ),
        },
    };
    Ok(ThreadReport {
        thread_index: config.thread_index,
        tid,
        syscalls: sys::counters::snapshot(),
        counters,
        usage,
        kernel_syscalls,
        kernel_unavailable_reason,
        uring_ops: None,
    })
}

pub(super) fn token(index: u32, generation: u32) -> u64 {
    ((generation as u64) << 32) | index as u64
}

pub(super) fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl<T: Trigger, C: CopyStrategy> EventLoop<T, C> {
    pub fn new(config: LoopConfig, resources: LoopResources) -> EventLoop<T, C> {
        EventLoop {
            events: epoll::event_buffer(config.max_events.max(1)),
            config,
            epoll: resources.epoll,
            listener: Some(resources.listener),
            control: resources.control,
            slots: Vec::new(),
            free_slots: Vec::new(),
            open_connections: 0,
            requeued: Vec::new(),
            requeue_spare: Vec::new(),
            buffer_waiters: VecDeque::new(),
            scratch: IoSliceScratch::default(),
            counters: LoopCounters::default(),
            accept_paused_since: None,
            parked: None,
            shutdown_deadline: None,
            tid: 0,
            uncounted: None,
            kernel: None,
            _trigger: PhantomData,
        }
    }

    /// Serves until asked to shut down; returns the thread's final counters.
    pub fn run(mut self) -> io::Result<ThreadReport> {
        self.tid = sys::thread::current_tid();
        if self.config.buffers == BufferPolicy::Pooled {
            let bytes = self.config.conn.buffer_size_bytes;
            pool::install(bytes, self.config.pool_max_buffers);
        }
        if self.config.kernel_counters {
            self.kernel = Some(
                sys::perf::KernelSyscallCounters::attach(&[self.tid]).map_err(|e| e.to_string()),
            );
        }
        if self.config.debug_uncounted_read {
            self.uncounted = Some(std::fs::File::open("/dev/zero")?);
        }
        loop {
            let timeout_ms = self.wait_timeout_ms();
            let ready = self.epoll.wait(&mut self.events, timeout_ms)?;
            if let Some(file) = self.uncounted.as_mut() {
                std::io::Read::read(file, &mut [0u8; 1])?;
            }
            self.counters.epoll_wait_calls += 1;
            self.counters.epoll_events_returned += ready as u64;
            for i in 0..ready {
                let event = self.events[i];
                match event.u64 {
                    LISTENER_TOKEN => self.accept_all(),
                    WAKER_TOKEN => {
                        let requests = self.control.take_requests()?;
                        self.answer(requests)?;
                    }
                    token => self.connection_event(token, event.events),
                }
                if (i + 1) % TURNS_PER_CONTROL_CHECK == 0 {
                    self.poll_control()?;
                }
            }
            self.run_requeued()?;
            self.wake_buffer_waiters();
            if let Some(since) = self.accept_paused_since
                && since.elapsed() >= ACCEPT_RETRY
            {
                self.resume_accepting();
            }
            if let Some(deadline) = self.shutdown_deadline
                && (self.open_connections == 0 || Instant::now() >= deadline)
            {
                self.close_all();
                return self.report();
            }
        }
    }

    fn wait_timeout_ms(&self) -> i32 {
        if !self.requeued.is_empty() {
            return 0;
        }
        let mut wait: Option<Duration> = None;
        if let Some(deadline) = self.shutdown_deadline {
            wait = Some(deadline.saturating_duration_since(Instant::now()));
        }
        if let Some(since) = self.accept_paused_since {
            let left = ACCEPT_RETRY.saturating_sub(since.elapsed());
            wait = Some(wait.map_or(left, |w| w.min(left)));
        }
        match wait {
            // Round up so a timeout never fires early and spins.
            Some(w) => (w.as_micros().div_ceil(1000) as i32).max(1),
            None => -1,
        }
    }

    fn report(&self) -> io::Result<ThreadReport> {
        let mut counters = self.counters;
        pool::report_into(&mut counters);
        thread_report(&self.config, self.tid, counters, &self.kernel)
    }

    /// Answers control requests raised while this thread was busy, without
    /// waiting for the eventfd's turn in the ready list.
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

    fn accept_all(&mut self) {
        loop {
            let accepted = match (self.parked.take(), &self.listener) {
                (Some(fd), _) => Ok(fd),
                (None, Some(listener)) => sys::socket::accept(listener.as_fd()),
                (None, None) => return,
            };
            match accepted {
                Ok(fd) => {
                    if let Err(e) = self.register(fd) {
                        if is_fd_exhaustion(&e) {
                            self.pause_accepting();
                        }
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if is_fd_exhaustion(&e) => {
                    // Level-triggered listeners would report the same pending
                    // connection forever: stop listening until an fd frees up.
                    self.pause_accepting();
                    return;
                }
                // The peer gave up before we accepted, or a signal: next one.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM)
                    ) => {}
                Err(_) => {
                    self.pause_accepting();
                    return;
                }
            }
        }
    }

    fn register(&mut self, fd: Fd) -> io::Result<()> {
        sys::socket::set_nodelay(fd.as_fd())?;
        let data = match C::new(&self.config.conn).and_then(|mut data| {
            data.attach(fd.as_fd())?;
            Ok(data)
        }) {
            Ok(data) => data,
            Err(e) => {
                if is_fd_exhaustion(&e) {
                    self.parked = Some(fd);
                }
                return Err(e);
            }
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
        let slot = &mut self.slots[index as usize];
        let interest = T::initial_interest();
        if let Err(e) = self
            .epoll
            .add(fd.as_fd(), interest, token(index, slot.generation))
        {
            self.free_slots.push(index);
            return Err(e);
        }
        slot.conn = Some(Conn {
            fd,
            data,
            readable: false,
            write_blocked: false,
            read_closed: false,
            hung_up: false,
            paused: false,
            no_room: false,
            needs_buffer: false,
            waiting_for_buffer: false,
            interest,
        });
        self.open_connections += 1;
        self.counters.connections_accepted += 1;
        Ok(())
    }

    fn pause_accepting(&mut self) {
        if self.accept_paused_since.is_some() {
            return;
        }
        if let Some(listener) = &self.listener {
            // Interest 0 keeps the registration but reports nothing.
            let _ = self.epoll.modify(listener.as_fd(), 0, LISTENER_TOKEN);
        }
        self.accept_paused_since = Some(Instant::now());
        self.counters.accept_pauses_emfile += 1;
    }

    fn resume_accepting(&mut self) {
        if self.accept_paused_since.take().is_none() {
            return;
        }
        if let Some(listener) = &self.listener {
            let _ = self
                .epoll
                .modify(listener.as_fd(), epoll::IN, LISTENER_TOKEN);
            self.accept_all();
        }
    }

    fn connection_event(&mut self, token: u64, events: u32) {
        let index = token as u32;
        let generation = (token >> 32) as u32;
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        if slot.generation != generation || slot.conn.is_none() {
            return;
        }
        let conn = self.slots[index as usize]
            .conn
            .as_mut()
            .expect("checked above");
        if events & epoll::ERR != 0 {
            if !conn.data.error_event() {
                self.close(index, CloseReason::ConnectionError);
                return;
            }
            // The strategy deals with it in its next write call, which a
            // blocked write would otherwise hold back while level-triggered
            // epoll kept reporting the error.
            conn.write_blocked = false;
        }
        if events & (epoll::IN | epoll::RDHUP | epoll::HUP) != 0 {
            conn.readable = true;
        }
        if events & (epoll::RDHUP | epoll::HUP) != 0 {
            conn.hung_up = true;
        }
        // After a hang-up a write fails at once, which is how the loop learns
        // the connection is dead instead of waiting for EPOLLOUT forever.
        if events & (epoll::OUT | epoll::HUP) != 0 {
            conn.write_blocked = false;
        }
        self.take_turn(index, token);
    }

    fn take_turn(&mut self, index: u32, token: u64) {
        let Some(conn) = self.slots[index as usize].conn.as_mut() else {
            return;
        };
        let turn = drive::<T, C>(
            conn,
            &self.config.conn,
            self.config.watermarks,
            &mut self.counters,
            &mut self.scratch,
            self.shutdown_deadline.is_some(),
        );
        match turn {
            Turn::Keep => {}
            Turn::Requeue => self.requeued.push(token),
            Turn::Close(reason) => {
                self.close(index, reason);
                return;
            }
        }
        let conn = self.slots[index as usize]
            .conn
            .as_mut()
            .expect("kept above");
        if std::mem::take(&mut conn.needs_buffer) && !conn.waiting_for_buffer {
            conn.waiting_for_buffer = true;
            self.buffer_waiters.push_back(token);
        }
        let wants_read = !conn.read_closed && !conn.paused && !conn.waiting_for_buffer;
        if let Some(wanted) = T::wanted_interest(wants_read, conn.write_blocked)
            && wanted != conn.interest
        {
            match self.epoll.modify(conn.fd.as_fd(), wanted, token) {
                Ok(()) => conn.interest = wanted,
                Err(_) => self.close(index, CloseReason::ConnectionError),
            }
        }
    }

    fn run_requeued(&mut self) -> io::Result<()> {
        if self.requeued.is_empty() {
            return Ok(());
        }
        // Swapped with a spare so that requeueing allocates nothing per pass.
        let mut batch = std::mem::take(&mut self.requeue_spare);
        std::mem::swap(&mut batch, &mut self.requeued);
        for (turn, token) in batch.drain(..).enumerate() {
            let index = token as u32;
            let current = self
                .slots
                .get(index as usize)
                .is_some_and(|s| s.generation == (token >> 32) as u32 && s.conn.is_some());
            if current {
                self.take_turn(index, token);
            }
            if (turn + 1) % TURNS_PER_CONTROL_CHECK == 0 {
                self.poll_control()?;
            }
        }
        self.requeue_spare = batch;
        Ok(())
    }

    /// Gives connections waiting for a pooled buffer a turn, as many as the
    /// pool can serve now (a stale token costs nothing).
    fn wake_buffer_waiters(&mut self) {
        if self.buffer_waiters.is_empty() {
            return;
        }
        let mut available = pool::available();
        while available > 0
            && let Some(token) = self.buffer_waiters.pop_front()
        {
            let slot = &mut self.slots[token as u32 as usize];
            if slot.generation != (token >> 32) as u32 {
                continue;
            }
            if let Some(conn) = slot.conn.as_mut() {
                conn.waiting_for_buffer = false;
                self.requeued.push(token);
                available -= 1;
            }
        }
    }

    fn close(&mut self, index: u32, reason: CloseReason) {
        let slot = &mut self.slots[index as usize];
        let Some(conn) = slot.conn.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free_slots.push(index);
        self.open_connections -= 1;
        reason.count(&mut self.counters);
        // Closing also removes the socket from the epoll set.
        drop(conn);
        self.resume_accepting();
    }

    fn begin_shutdown(&mut self) {
        self.shutdown_deadline = Some(Instant::now() + SHUTDOWN_FLUSH);
        self.accept_paused_since = None;
        self.listener = None;
        self.parked = None;
        for index in 0..self.slots.len() as u32 {
            let slot = &mut self.slots[index as usize];
            let generation = slot.generation;
            if let Some(conn) = slot.conn.as_mut() {
                conn.read_closed = true;
                self.take_turn(index, token(index, generation));
            }
        }
    }

    fn close_all(&mut self) {
        for index in 0..self.slots.len() as u32 {
            if self.slots[index as usize].conn.is_some() {
                self.close(index, CloseReason::Done);
            }
        }
    }
}
