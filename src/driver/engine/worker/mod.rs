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

mod connect;
mod drain;
mod read_budget;
mod receive;
mod send;
mod slot;
mod tally;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::driver::payload::PayloadSource;
use crate::driver::sizes::SizeSampler;
use crate::protocol::Protocol;
use crate::results::measurement::VerificationCounts;
use crate::results::workload::{ClientReceive, SizeDistribution};
use crate::sys::epoll::{self, Epoll, Event};
use crate::sys::rusage::ThreadUsage;
use crate::sys::{SyscallCounts, counters};
use drain::DrainWatch;
pub use drain::MAX_DRAIN;
use read_budget::ReadBudget;

use super::connection::Connection;
use super::plan::{Issue, SlotPlan};
use super::shared::{Phase, Shared};
use slot::{Slot, SlotState, slot_seed};
use tally::Tally;

/// How long a connect may take before it counts as failed. Long enough for
/// two SYN retransmissions (1 s, then 2 s) when a listen backlog overflows
/// while thousands of idle connections are opened.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
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
    pub client: ClientReceive,
    pub slots: Vec<SlotPlan>,
}

pub(super) struct Worker<'a> {
    index: usize,
    shared: &'a Shared,
    target: std::net::SocketAddr,
    drain_timeout: Duration,
    payload: &'a PayloadSource,
    /// `SO_RCVBUF` for every new socket (slow-consumer cases).
    receive_buffer_bytes: Option<u32>,
    epoll: Epoll,
    slots: Vec<Slot>,
    events: Vec<Event>,
    read_buffer: Vec<u8>,
    /// Open-loop slots by the due time of their next request.
    due: BinaryHeap<Reverse<(u64, usize)>>,
    /// Rate-limited slots parked with bytes unread, by the time their read
    /// budget is full again, with the socket generation they were parked
    /// on.
    parked_readers: BinaryHeap<Reverse<(u64, usize, u32)>>,
    tally: Tally,
    connecting: usize,
    active_remaining: usize,
    slots_lost: u64,
    issuing: bool,
    setup_error: Option<io::Error>,
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
            .add(
                init.shared.wakers[init.index].as_fd(),
                epoll::IN,
                WAKE_TOKEN,
            )
            .map_err(io_failure("registering the driver's wake-up eventfd"))?;
        let mut active_remaining = 0;
        let now = init.shared.now_ns();
        let read_rate = init.client.read_rate_bytes_per_second;
        let slots = init
            .slots
            .into_iter()
            .map(|plan| {
                let sampler = matches!(
                    plan.issue,
                    Issue::Depth(_) | Issue::Window(_) | Issue::Churn(_) | Issue::Rate { .. }
                )
                .then(|| SizeSampler::new(init.sizes, slot_seed(init.seed, plan.payload_id)));
                let read_budget = match (&plan.issue, read_rate) {
                    (Issue::Idle, _) | (_, None) => None,
                    (_, Some(rate)) => Some(ReadBudget::new(rate, now)),
                };
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
                    read_budget,
                    read_parked: false,
                    peer_hung_up: false,
                }
            })
            .collect::<Vec<_>>();
        Ok(Worker {
            index: init.index,
            shared: init.shared,
            target: init.target,
            drain_timeout: init.drain_timeout,
            payload: init.payload,
            receive_buffer_bytes: init.client.receive_buffer_bytes,
            epoll,
            due: BinaryHeap::with_capacity(slots.len()),
            parked_readers: BinaryHeap::new(),
            slots,
            events: epoll::event_buffer(EVENTS_PER_WAIT),
            read_buffer: vec![0u8; READ_BUFFER_BYTES],
            tally: Tally::new(),
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
        let mut drain_watch: Option<DrainWatch> = None;
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
                let outstanding = self.outstanding_requests();
                let watch = drain_watch
                    .get_or_insert_with(|| DrainWatch::start(now, outstanding, self.drain_timeout));
                if watch.over(now, outstanding) {
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
            if let (Some(watch), false) = (&drain_watch, drained) {
                wake_at = wake_at.min(watch.deadline_ns());
            }
            if let Some(Reverse((full_at, _, _))) = self.parked_readers.peek() {
                wake_at = wake_at.min(*full_at);
            }
            self.wait_and_dispatch(Some(Duration::from_nanos(wake_at.saturating_sub(now))))?;
            if !self.parked_readers.is_empty() {
                let now = self.shared.now_ns();
                self.wake_parked_readers(now);
            }
            if self.connecting > 0 {
                let now = self.shared.now_ns();
                self.expire_connects(now);
            }
        }
        let (usage, syscalls) = window_delta.unwrap_or_default();
        Ok(self.into_outcome(usage, syscalls))
    }

    /// The thread's results, with its CPU time and syscalls in the window.
    fn into_outcome(self, usage: ThreadUsage, syscalls: SyscallCounts) -> ThreadOutcome {
        ThreadOutcome {
            histogram: self.tally.histogram,
            requests_completed: self.tally.requests_completed,
            payload_bytes_completed: self.tally.payload_bytes_completed,
            requests_issued: self.tally.requests_issued,
            connections_opened: self.tally.connections_opened,
            verification: self.tally.verification,
            usage,
            syscalls,
            slots_lost: self.slots_lost,
        }
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
                        if slot.read_parked {
                            // Its wake-up reads the new bytes too; remember
                            // a hang-up, whose edge does not come again.
                            self.slots[index].peer_hung_up |= to_the_end;
                        } else {
                            self.read_ready(index, to_the_end);
                        }
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
}
