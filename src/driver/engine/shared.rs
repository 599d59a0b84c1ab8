//! What the coordinating thread and the driver threads share: the phase of
//! the case, the window's edges, progress counters and each worker's
//! wake-up eventfd.

use std::io;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::sys::eventfd::EventFd;

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
