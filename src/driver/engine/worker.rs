//! One driver thread: its connection slots, its epoll, its own latency
//! histogram and counters.
//!
//! Sockets are registered once, edge-triggered, for reading and writing
//! (`EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET`), so the driver never pays
//! `epoll_ctl` per request. A read shorter than the buffer means the socket
//! was drained (new data raises a new edge), so the driver does not pay
//! the extra `read` → `EAGAIN` per wake-up either; it reads to the end only
//! when the peer has hung up. All connections of the thread share one read
//! buffer: responses are verified where they land and nothing is kept.
//!
//! The coordinating thread moves the shared [`Phase`] forward and wakes
//! every worker through its eventfd; workers never block longer than
//! [`MAX_WAIT`] without looking at the phase.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::driver::payload::PayloadSource;
use crate::driver::sizes::SizeSampler;
use crate::protocol::Protocol;
use crate::results::measurement::VerificationCounts;
use crate::results::workload::SizeDistribution;
use crate::sys::client::{self, ConnectProgress};
use crate::sys::epoll::{self, Epoll, Event};
use crate::sys::eventfd::EventFd;
use crate::sys::rusage::ThreadUsage;
use crate::sys::{Fd, SyscallCounts, counters};

use super::connection::{Connection, Request, ResponseSink, Violation, WriteProgress};
use super::latency;
use super::plan::{Issue, SlotPlan};

/// How long a connect may take before it counts as failed. Long enough for
/// two SYN retransmissions (1 s, then 2 s) when a listen backlog overflows
/// while thousands of idle connections are opened.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connects in progress at once per thread, so that opening thousands of
/// idle connections does not overflow the server's listen backlog.
const MAX_CONNECTING: usize = 256;
/// Longest a worker blocks in `epoll_wait`; phase changes wake it sooner.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// Read buffer shared by the thread's connections: large enough that bulk
/// transfers take few reads, reused for every read.
const READ_BUFFER_BYTES: usize = 256 * 1024;
const EVENTS_PER_WAIT: usize = 1024;
const WAKE_TOKEN: u64 = u64::MAX;

/// Where the case stands; only the coordinator moves it, only forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(super) enum Phase {
    /// Opening connections.
    Setup = 0,
    /// Sending, before the window.
    WarmUp = 1,
    Measure = 2,
    /// No new requests; waiting for outstanding responses.
    Drain = 3,
    Stop = 4,
}

impl Phase {
    fn from_u8(value: u8) -> Phase {
        match value {
            0 => Phase::Setup,
            1 => Phase::WarmUp,
            2 => Phase::Measure,
            3 => Phase::Drain,
            _ => Phase::Stop,
        }
    }
}

/// A counter on its own cache line, so that threads publishing progress do
/// not slow each other down.
#[repr(align(128))]
#[derive(Default)]
pub(super) struct PaddedCounter(pub AtomicU64);

/// What the coordinator and the workers share.
pub(super) struct Shared {
    /// Timestamps are ns since this instant.
    pub base: Instant,
    phase: AtomicU8,
    /// When sending started (open-loop schedules count from here).
    pub send_start_ns: AtomicU64,
    pub window_start_ns: AtomicU64,
    pub window_end_ns: AtomicU64,
    /// Threads with nothing left to send: every active connection lost or,
    /// for traces, every event sent and answered.
    pub finished_threads: AtomicUsize,
    /// Threads done draining.
    pub drained_threads: AtomicUsize,
    /// Per thread: responses received so far, all phases.
    pub completed: Vec<PaddedCounter>,
    pub wakers: Vec<EventFd>,
}

impl Shared {
    pub fn new(threads: usize) -> io::Result<Shared> {
        Ok(Shared {
            base: Instant::now(),
            phase: AtomicU8::new(Phase::Setup as u8),
            send_start_ns: AtomicU64::new(0),
            window_start_ns: AtomicU64::new(u64::MAX),
            window_end_ns: AtomicU64::new(u64::MAX),
            finished_threads: AtomicUsize::new(0),
            drained_threads: AtomicUsize::new(0),
            completed: (0..threads).map(|_| PaddedCounter::default()).collect(),
            wakers: (0..threads)
                .map(|_| EventFd::new())
                .collect::<io::Result<_>>()?,
        })
    }

    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Moves to `phase` and wakes every worker to notice it.
    pub fn enter(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
        for waker in &self.wakers {
            // A failed wake only delays the worker until its MAX_WAIT.
            let _ = waker.wake();
        }
    }
}

/// Why a thread could not open its connections.
#[derive(Debug)]
pub(super) enum SetupFailure {
    Connect {
        opened: u64,
        error: io::Error,
    },
    Pin {
        cpu: usize,
        error: io::Error,
    },
    Io {
        context: &'static str,
        error: io::Error,
    },
}

/// A thread's results, merged by the coordinator.
pub(super) struct ThreadOutcome {
    pub histogram: Histogram<u64>,
    pub requests_completed: u64,
    pub payload_bytes_completed: u64,
    pub requests_issued: u64,
    pub connections_opened: u64,
    pub verification: VerificationCounts,
    pub usage: ThreadUsage,
    pub syscalls: SyscallCounts,
    /// Active slots given up because their connection failed.
    pub slots_lost: u64,
}

/// Counts and histogram of one thread; the response sink of its
/// connections.
struct Tally {
    histogram: Histogram<u64>,
    window_start_ns: u64,
    window_end_ns: u64,
    requests_completed: u64,
    payload_bytes_completed: u64,
    requests_issued: u64,
    completed_all_phases: u64,
    connections_opened: u64,
    verification: VerificationCounts,
}

impl Tally {
    #[inline]
    fn in_window(&self, t_ns: u64) -> bool {
        t_ns >= self.window_start_ns && t_ns < self.window_end_ns
    }
}

impl ResponseSink for Tally {
    #[inline]
    fn completed(&mut self, request: &Request, now_ns: u64) {
        self.completed_all_phases += 1;
        if self.in_window(now_ns) {
            self.requests_completed += 1;
            self.payload_bytes_completed += u64::from(request.size_bytes);
            latency::record_ns(
                &mut self.histogram,
                now_ns.saturating_sub(request.issued_ns),
            );
        }
    }

    fn payload_mismatch(&mut self) {
        self.verification.payload_mismatches += 1;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    NotConnected,
    Connecting {
        started_ns: u64,
    },
    Open,
    /// Given up (failed, or finished its trace): never reopened.
    Retired,
}

struct Slot {
    issue: Issue,
    conn: Connection,
    sampler: Option<SizeSampler>,
    /// A size drawn but not yet issued (window-limited shapes look ahead).
    peeked_size: Option<u32>,
    state: SlotState,
    socket: Option<Fd>,
    /// Bumped at every new socket: events carry it, so an event for a
    /// socket this slot already closed is recognised and ignored.
    generation: u32,
    write_blocked: bool,
    requests_on_socket: u32,
    /// Open loop: index of the slot's next scheduled request.
    next_scheduled: u64,
    /// Counted in `active_remaining` until it is lost or finishes its trace.
    done: bool,
}

impl Slot {
    fn token(&self, index: usize) -> u64 {
        (u64::from(self.generation) << 32) | index as u64
    }

    fn raw_fd(&self) -> Option<i32> {
        self.socket.as_ref().map(Fd::raw)
    }
}

pub(super) struct WorkerInit<'a> {
    pub index: usize,
    pub shared: &'a Shared,
    pub target: std::net::SocketAddr,
    pub cpu: Option<usize>,
    pub drain_timeout: Duration,
    pub protocol: Protocol,
    pub payload: &'a PayloadSource,
    pub sizes: &'a SizeDistribution,
    pub seed: u64,
    pub slots: Vec<SlotPlan>,
}

pub(super) struct Worker<'a> {
    index: usize,
    shared: &'a Shared,
    target: std::net::SocketAddr,
    drain_timeout: Duration,
    payload: &'a PayloadSource,
    epoll: Epoll,
    slots: Vec<Slot>,
    events: Vec<Event>,
    read_buffer: Vec<u8>,
    /// Open-loop slots by the due time of their next request.
    due: BinaryHeap<Reverse<(u64, usize)>>,
    tally: Tally,
    connecting: usize,
    active_remaining: usize,
    slots_lost: u64,
    issuing: bool,
    setup_error: Option<io::Error>,
}

/// Seeds each slot's size stream from the case seed and the slot's id, so
/// that the sizes a connection sends do not depend on the thread count.
fn slot_seed(seed: u64, payload_id: u32) -> u64 {
    let mut x = seed ^ (u64::from(payload_id).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    x = (x ^ (x >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 29)
}

impl<'a> Worker<'a> {
    /// Builds the thread's state and pins it; run on the worker thread.
    pub fn new(init: WorkerInit<'a>) -> Result<Worker<'a>, SetupFailure> {
        if let Some(cpu) = init.cpu {
            crate::sys::thread::pin_current_thread(&[cpu])
                .map_err(|error| SetupFailure::Pin { cpu, error })?;
        }
        let io_failure = |context| move |error| SetupFailure::Io { context, error };
        let epoll = Epoll::new().map_err(io_failure("creating the driver's epoll"))?;
        epoll
            .add(init.shared.wakers[init.index].raw(), epoll::IN, WAKE_TOKEN)
            .map_err(io_failure("registering the driver's wake-up eventfd"))?;
        let mut active_remaining = 0;
        let slots = init
            .slots
            .into_iter()
            .map(|plan| {
                let sampler = matches!(
                    plan.issue,
                    Issue::Depth(_) | Issue::Window(_) | Issue::Churn(_) | Issue::Rate { .. }
                )
                .then(|| SizeSampler::new(init.sizes, slot_seed(init.seed, plan.payload_id)));
                if plan.issue != Issue::Idle {
                    active_remaining += 1;
                }
                Slot {
                    conn: Connection::new(
                        plan.payload_id,
                        init.protocol,
                        plan.issue.expected_depth(),
                    ),
                    issue: plan.issue,
                    sampler,
                    peeked_size: None,
                    state: SlotState::NotConnected,
                    socket: None,
                    generation: 0,
                    write_blocked: false,
                    requests_on_socket: 0,
                    next_scheduled: 0,
                    done: false,
                }
            })
            .collect::<Vec<_>>();
        Ok(Worker {
            index: init.index,
            shared: init.shared,
            target: init.target,
            drain_timeout: init.drain_timeout,
            payload: init.payload,
            epoll,
            due: BinaryHeap::with_capacity(slots.len()),
            slots,
            events: epoll::event_buffer(EVENTS_PER_WAIT),
            read_buffer: vec![0u8; READ_BUFFER_BYTES],
            tally: Tally {
                histogram: latency::new_histogram(),
                window_start_ns: u64::MAX,
                window_end_ns: u64::MAX,
                requests_completed: 0,
                payload_bytes_completed: 0,
                requests_issued: 0,
                completed_all_phases: 0,
                connections_opened: 0,
                verification: VerificationCounts::default(),
            },
            connecting: 0,
            active_remaining,
            slots_lost: 0,
            issuing: false,
            setup_error: None,
        })
    }

    /// Opens every slot's connection, a bounded number at a time. Returns
    /// how many are open.
    pub fn setup(&mut self) -> Result<u64, SetupFailure> {
        let deadline = self.shared.now_ns() + CONNECT_TIMEOUT.as_nanos() as u64;
        let mut next = 0;
        loop {
            while next < self.slots.len() && self.connecting < MAX_CONNECTING {
                self.start_connect(next);
                next += 1;
                if self.setup_error.is_some() {
                    break;
                }
            }
            if let Some(error) = self.setup_error.take() {
                return Err(SetupFailure::Connect {
                    opened: self.open_count(),
                    error,
                });
            }
            if next == self.slots.len() && self.connecting == 0 {
                return Ok(self.open_count());
            }
            if self.shared.phase() == Phase::Stop {
                return Ok(self.open_count());
            }
            let now = self.shared.now_ns();
            if now >= deadline {
                self.expire_connects(now);
                continue;
            }
            let wait = Duration::from_nanos(deadline - now).min(MAX_WAIT);
            self.wait_and_dispatch(Some(wait))
                .map_err(|error| SetupFailure::Io {
                    context: "waiting for connections",
                    error,
                })?;
            let now = self.shared.now_ns();
            self.expire_connects(now);
        }
    }

    fn open_count(&self) -> u64 {
        self.slots
            .iter()
            .filter(|s| s.state == SlotState::Open)
            .count() as u64
    }

    /// Runs the phases the coordinator moves through, until `Stop`.
    pub fn run(mut self) -> io::Result<ThreadOutcome> {
        let mut started_sending = false;
        let mut window_start: Option<(ThreadUsage, SyscallCounts)> = None;
        let mut window_delta: Option<(ThreadUsage, SyscallCounts)> = None;
        let mut drain_deadline_ns: Option<u64> = None;
        let mut drained = false;
        let mut reported_finished = false;
        loop {
            let phase = self.shared.phase();
            self.tally.window_start_ns = self.shared.window_start_ns.load(Ordering::Acquire);
            self.tally.window_end_ns = self.shared.window_end_ns.load(Ordering::Acquire);
            if phase >= Phase::Measure && window_start.is_none() {
                window_start = Some((crate::sys::rusage::this_thread()?, counters::snapshot()));
            }
            if phase >= Phase::Drain
                && window_delta.is_none()
                && let Some((usage, syscalls)) = &window_start
            {
                let usage_now = crate::sys::rusage::this_thread()?;
                let syscalls_now = counters::snapshot();
                window_delta = Some((usage_now.since(usage), syscalls_now.since(syscalls)));
            }
            if phase == Phase::Stop {
                break;
            }
            self.issuing = matches!(phase, Phase::WarmUp | Phase::Measure);
            let now = self.shared.now_ns();
            if self.issuing {
                if !started_sending {
                    started_sending = true;
                    self.start_sending(now);
                }
                self.issue_due(now);
            }
            if phase == Phase::Drain && !drained {
                let deadline =
                    *drain_deadline_ns.get_or_insert(now + self.drain_timeout.as_nanos() as u64);
                let outstanding = self.outstanding_requests();
                if outstanding == 0 || now >= deadline {
                    self.tally.verification.unanswered_requests += outstanding;
                    drained = true;
                    self.shared.drained_threads.fetch_add(1, Ordering::AcqRel);
                }
            }
            if !reported_finished && self.active_remaining == 0 {
                reported_finished = true;
                self.shared.finished_threads.fetch_add(1, Ordering::AcqRel);
            }
            self.shared.completed[self.index]
                .0
                .store(self.tally.completed_all_phases, Ordering::Relaxed);

            let mut wake_at = now + MAX_WAIT.as_nanos() as u64;
            if self.issuing
                && let Some(Reverse((due, _))) = self.due.peek()
            {
                wake_at = wake_at.min(*due);
            }
            if let (Some(deadline), false) = (drain_deadline_ns, drained) {
                wake_at = wake_at.min(deadline);
            }
            self.wait_and_dispatch(Some(Duration::from_nanos(wake_at.saturating_sub(now))))?;
            if self.connecting > 0 {
                let now = self.shared.now_ns();
                self.expire_connects(now);
            }
        }
        let (usage, syscalls) = window_delta.unwrap_or_default();
        Ok(ThreadOutcome {
            histogram: self.tally.histogram,
            requests_completed: self.tally.requests_completed,
            payload_bytes_completed: self.tally.payload_bytes_completed,
            requests_issued: self.tally.requests_issued,
            connections_opened: self.tally.connections_opened,
            verification: self.tally.verification,
            usage,
            syscalls,
            slots_lost: self.slots_lost,
        })
    }

    fn outstanding_requests(&self) -> u64 {
        self.slots
            .iter()
            .filter(|s| s.state == SlotState::Open)
            .map(|s| s.conn.in_flight() as u64)
            .sum()
    }

    fn wait_and_dispatch(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let count = self.epoll.wait_precise(&mut self.events, timeout)?;
        for i in 0..count {
            let event = self.events[i];
            let (flags, token) = (event.events, event.u64);
            if token == WAKE_TOKEN {
                self.shared.wakers[self.index].drain()?;
                continue;
            }
            let index = (token & 0xffff_ffff) as usize;
            let Some(slot) = self.slots.get(index) else {
                continue;
            };
            if slot.token(index) != token {
                continue;
            }
            match slot.state {
                SlotState::Connecting { .. } => {
                    if flags & (epoll::OUT | epoll::ERR | epoll::HUP) != 0 {
                        self.finish_connect(index);
                    }
                }
                SlotState::Open => {
                    if flags & (epoll::IN | epoll::RDHUP | epoll::HUP | epoll::ERR) != 0 {
                        let to_the_end = flags & (epoll::RDHUP | epoll::HUP | epoll::ERR) != 0;
                        self.read_ready(index, to_the_end);
                    }
                    let slot = &mut self.slots[index];
                    if slot.state == SlotState::Open && flags & epoll::OUT != 0 {
                        slot.write_blocked = false;
                        self.flush(index);
                    }
                }
                SlotState::NotConnected | SlotState::Retired => {}
            }
        }
        Ok(())
    }

    // ----- connections -----

    fn start_connect(&mut self, index: usize) {
        let now = self.shared.now_ns();
        let slot = &mut self.slots[index];
        slot.generation = slot.generation.wrapping_add(1);
        slot.conn.reset_for_new_socket();
        slot.write_blocked = false;
        slot.requests_on_socket = 0;
        let (fd, progress) = match client::connect_nonblocking(self.target) {
            Ok(ok) => ok,
            Err(error) => return self.connect_failed(index, error),
        };
        let token = slot.token(index);
        if let Err(error) = self.epoll.add(
            fd.raw(),
            epoll::IN | epoll::OUT | epoll::RDHUP | epoll::ET,
            token,
        ) {
            return self.connect_failed(index, error);
        }
        slot.socket = Some(fd);
        slot.state = SlotState::Connecting { started_ns: now };
        self.connecting += 1;
        if progress == ConnectProgress::Connected {
            self.connected(index);
        }
    }

    fn finish_connect(&mut self, index: usize) {
        let result = match &self.slots[index].socket {
            Some(fd) => client::take_connect_result(fd),
            None => return,
        };
        match result {
            Ok(()) => self.connected(index),
            Err(error) => self.connect_failed(index, error),
        }
    }

    fn connected(&mut self, index: usize) {
        let now = self.shared.now_ns();
        self.connecting -= 1;
        self.slots[index].state = SlotState::Open;
        if self.tally.in_window(now) {
            self.tally.connections_opened += 1;
        }
        if self.issuing {
            self.top_up(index, now);
        }
    }

    fn connect_failed(&mut self, index: usize, error: io::Error) {
        if matches!(self.slots[index].state, SlotState::Connecting { .. }) {
            self.connecting -= 1;
        }
        if self.shared.phase() == Phase::Setup {
            self.setup_error.get_or_insert(error);
        } else {
            self.tally.verification.connect_failures += 1;
        }
        self.retire(index, true);
    }

    fn expire_connects(&mut self, now: u64) {
        let limit = CONNECT_TIMEOUT.as_nanos() as u64;
        for index in 0..self.slots.len() {
            if let SlotState::Connecting { started_ns } = self.slots[index].state
                && now.saturating_sub(started_ns) >= limit
            {
                self.connect_failed(index, io::Error::from(io::ErrorKind::TimedOut));
            }
        }
    }

    /// Closes the slot's socket for good. `lost`: because something failed.
    fn retire(&mut self, index: usize, lost: bool) {
        let slot = &mut self.slots[index];
        slot.state = SlotState::Retired;
        slot.socket = None;
        if lost && slot.issue != Issue::Idle {
            self.slots_lost += 1;
        }
        self.mark_done(index);
    }

    fn mark_done(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if !slot.done && slot.issue != Issue::Idle {
            slot.done = true;
            self.active_remaining -= 1;
        }
    }

    /// The peer closed or reset a connection the driver still wanted.
    fn closed_by_peer(&mut self, index: usize) {
        self.tally.verification.unexpected_closes += 1;
        self.retire(index, true);
    }

    fn violation(&mut self, index: usize, violation: Violation) {
        match (violation, self.slots[index].conn.protocol()) {
            (Violation::Header, _) | (Violation::UnsolicitedBytes, Protocol::Frame) => {
                self.tally.verification.header_mismatches += 1
            }
            (Violation::UnsolicitedBytes, Protocol::Echo) => {
                self.tally.verification.payload_mismatches += 1
            }
        }
        self.retire(index, true);
    }

    // ----- reading -----

    fn read_ready(&mut self, index: usize, to_the_end: bool) {
        let Some(fd) = self.slots[index].raw_fd() else {
            return;
        };
        loop {
            match crate::sys::io::read(fd, &mut self.read_buffer) {
                Ok(0) => return self.closed_by_peer(index),
                Ok(n) => {
                    let now = self.shared.now_ns();
                    let slot = &mut self.slots[index];
                    if let Err(violation) = slot.conn.on_response_bytes(
                        &self.read_buffer[..n],
                        self.payload,
                        now,
                        &mut self.tally,
                    ) {
                        return self.violation(index, violation);
                    }
                    if n < self.read_buffer.len() && !to_the_end {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.closed_by_peer(index),
            }
        }
        let now = self.shared.now_ns();
        self.after_responses(index, now);
    }

    fn after_responses(&mut self, index: usize, now: u64) {
        let slot = &self.slots[index];
        match slot.issue {
            Issue::Churn(per_connection)
                if slot.requests_on_socket >= per_connection && slot.conn.in_flight() == 0 =>
            {
                // Done with this connection: close it and open the next.
                let slot = &mut self.slots[index];
                slot.socket = None;
                slot.state = SlotState::NotConnected;
                if self.issuing {
                    self.start_connect(index);
                }
                return;
            }
            Issue::Trace(ref events)
                if slot.next_scheduled as usize >= events.len() && slot.conn.in_flight() == 0 =>
            {
                self.mark_done(index);
            }
            _ => {}
        }
        if self.issuing {
            self.top_up(index, now);
        } else {
            self.flush(index);
        }
    }

    // ----- issuing and writing -----

    /// Starts every open slot: closed-loop slots fill their window,
    /// open-loop slots join the schedule.
    fn start_sending(&mut self, now: u64) {
        let start = self.shared.send_start_ns.load(Ordering::Acquire);
        for index in 0..self.slots.len() {
            if self.slots[index].issue.is_open_loop() {
                if let Some(due) = self.scheduled_time(index, start) {
                    self.due.push(Reverse((due, index)));
                }
            } else if self.slots[index].state == SlotState::Open {
                self.top_up(index, now);
            }
        }
    }

    /// When the slot's next scheduled request is due (`None`: no more).
    fn scheduled_time(&self, index: usize, start_ns: u64) -> Option<u64> {
        let slot = &self.slots[index];
        let k = slot.next_scheduled;
        match &slot.issue {
            Issue::Rate {
                rank,
                stride,
                ns_per_request,
            } => Some(start_ns + ((k * stride + rank) as f64 * ns_per_request) as u64),
            Issue::Trace(events) => events.get(k as usize).map(|&(due, _)| start_ns + due),
            _ => None,
        }
    }

    /// Issues every open-loop request due by `now`, at its intended time.
    fn issue_due(&mut self, now: u64) {
        let start = self.shared.send_start_ns.load(Ordering::Acquire);
        while let Some(&Reverse((due, index))) = self.due.peek() {
            if due > now {
                break;
            }
            self.due.pop();
            let slot = &mut self.slots[index];
            if slot.state == SlotState::Retired {
                continue;
            }
            let size = match &slot.issue {
                Issue::Trace(events) => events[slot.next_scheduled as usize].1,
                _ => match slot.sampler.as_mut() {
                    Some(sampler) => sampler.next_size(),
                    None => continue,
                },
            };
            slot.next_scheduled += 1;
            if slot.state == SlotState::Open {
                slot.conn.issue(size, due);
                if self.tally.in_window(due) {
                    self.tally.requests_issued += 1;
                }
                self.flush(index);
            }
            if let Some(next) = self.scheduled_time(index, start) {
                self.due.push(Reverse((next, index)));
            } else if self.slots[index].conn.in_flight() == 0 {
                self.mark_done(index);
            }
        }
    }

    fn draw_size(slot: &mut Slot) -> u32 {
        match slot.peeked_size.take() {
            Some(size) => size,
            None => slot.sampler.as_mut().map_or(0, SizeSampler::next_size),
        }
    }

    /// Closed loop: issues requests until the slot's window is full, then
    /// writes them.
    fn top_up(&mut self, index: usize, now: u64) {
        let slot = &mut self.slots[index];
        if slot.state != SlotState::Open {
            return;
        }
        let mut issued = 0u64;
        match slot.issue {
            Issue::Depth(depth) => {
                while slot.conn.in_flight() < depth as usize {
                    let size = Self::draw_size(slot);
                    slot.conn.issue(size, now);
                    issued += 1;
                }
            }
            Issue::Window(window_bytes) => loop {
                let size = match slot.peeked_size {
                    Some(size) => size,
                    None => {
                        let size = Self::draw_size(slot);
                        slot.peeked_size = Some(size);
                        size
                    }
                };
                if slot.conn.in_flight() > 0
                    && slot.conn.in_flight_payload_bytes() + u64::from(size) > window_bytes
                {
                    break;
                }
                slot.peeked_size = None;
                slot.conn.issue(size, now);
                issued += 1;
            },
            Issue::Churn(per_connection) => {
                if slot.conn.in_flight() == 0 && slot.requests_on_socket < per_connection {
                    let size = Self::draw_size(slot);
                    slot.conn.issue(size, now);
                    slot.requests_on_socket += 1;
                    issued += 1;
                }
            }
            Issue::Rate { .. } | Issue::Trace(_) | Issue::Idle => {}
        }
        if issued > 0 && self.tally.in_window(now) {
            self.tally.requests_issued += issued;
        }
        self.flush(index);
    }

    fn flush(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if slot.write_blocked || !slot.conn.has_unwritten() {
            return;
        }
        let Some(fd) = slot.raw_fd() else {
            return;
        };
        match slot.conn.write_pending(fd, self.payload) {
            Ok(WriteProgress::AllWritten) => {}
            Ok(WriteProgress::Blocked) => slot.write_blocked = true,
            // EPIPE or ECONNRESET: the server went away.
            Err(_) => self.closed_by_peer(index),
        }
    }
}
