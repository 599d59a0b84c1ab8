//! How other threads talk to a serving thread without disturbing it: a
//! request flag plus an eventfd in the loop's epoll set. The loop answers a
//! snapshot itself, so its counters stay plain thread-locals and the
//! answer is a consistent cut.
//!
//! The eventfd wakes a loop blocked in `epoll_wait`; a busy loop would see
//! it only after its whole batch of ready connections, which under heavy
//! load takes seconds. So a request also raises an atomic flag that the
//! loop polls between connection turns ([`LoopControl::has_requests`]):
//! one relaxed load, no syscall, on the hot path.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::report::ThreadReport;
use crate::sys::eventfd::EventFd;

#[derive(Default)]
struct State {
    snapshots_requested: u64,
    snapshots_answered: u64,
    latest: Option<ThreadReport>,
    shutdown: bool,
}

pub struct LoopControl {
    waker: EventFd,
    /// Raised (under the lock) with every request, lowered (under the lock)
    /// when the loop takes them; read without the lock by the busy loop.
    pending: AtomicBool,
    state: Mutex<State>,
    answered: Condvar,
}

/// What the loop should do after a wake-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    pub snapshot: bool,
    pub shutdown: bool,
}

impl LoopControl {
    pub fn new() -> io::Result<LoopControl> {
        Ok(LoopControl {
            waker: EventFd::new()?,
            pending: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            answered: Condvar::new(),
        })
    }

    pub fn waker_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.waker.as_fd()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a panicking thread; the state is plain data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the loop for its counters and waits for the answer.
    pub fn snapshot(&self, timeout: Duration) -> io::Result<ThreadReport> {
        let wanted = {
            let mut state = self.lock();
            state.snapshots_requested += 1;
            self.pending.store(true, Ordering::Release);
            state.snapshots_requested
        };
        self.waker.wake()?;
        let state = self.lock();
        let (state, waited) = self
            .answered
            .wait_timeout_while(state, timeout, |s| s.snapshots_answered < wanted)
            .unwrap_or_else(|e| e.into_inner());
        if waited.timed_out() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "serving thread did not answer a snapshot request",
            ));
        }
        state
            .latest
            .clone()
            .ok_or_else(|| io::Error::other("serving thread answered without a report"))
    }

    /// Asks the loop to flush, close everything and return.
    pub fn request_shutdown(&self) -> io::Result<()> {
        {
            let mut state = self.lock();
            state.shutdown = true;
            self.pending.store(true, Ordering::Release);
        }
        self.waker.wake()
    }

    /// Whether a request waits that the loop has not taken yet. Cheap enough
    /// to call between any two connection turns.
    pub fn has_requests(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Called by the loop when the waker fired.
    pub fn take_requests(&self) -> io::Result<Requests> {
        self.waker.drain()?;
        Ok(self.take_pending())
    }

    /// Called by a busy loop that saw [`LoopControl::has_requests`]. The
    /// eventfd is left readable: the loop's next `epoll_wait` reports it
    /// and [`LoopControl::take_requests`] drains it, so a snapshot costs
    /// the same calls whichever way it was noticed.
    pub fn take_pending(&self) -> Requests {
        let state = self.lock();
        self.pending.store(false, Ordering::Release);
        Requests {
            snapshot: state.snapshots_requested > state.snapshots_answered,
            shutdown: state.shutdown,
        }
    }

    /// Called by the loop with its counters, answering every pending request.
    pub fn answer_snapshot(&self, report: ThreadReport) {
        let mut state = self.lock();
        state.snapshots_answered = state.snapshots_requested;
        state.latest = Some(report);
        self.answered.notify_all();
    }
}
