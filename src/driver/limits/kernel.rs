//! The cheapest kernel round trips: a null syscall, an `epoll_wait` that
//! has nothing to wait for, and one thread waking another through an
//! eventfd, each timed over many calls per trial.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::sys::epoll::{self, Epoll};
use crate::sys::eventfd::EventFd;
use crate::sys::thread::current_tid;

use super::{LimitsError, io_error};

/// The syscall timed as the null syscall: no arguments, no work, and a
/// kind `src/sys` already counts.
pub(super) const NULL_SYSCALL: &str = "gettid";

/// Calls between two looks at the clock.
const BATCH: u64 = 256;
/// How long one side of the wake-up ping-pong waits before calling the
/// other side gone.
const WAKEUP_TIMEOUT_MS: i32 = 1000;
/// Round trips before the timed ones (threads scheduled, caches warm).
const WAKEUP_WARMUP_ROUND_TRIPS: u32 = 200;

/// Nanoseconds per `call`, over batches until `trial` has passed.
fn ns_per_call(
    trial: Duration,
    mut call: impl FnMut() -> std::io::Result<()>,
) -> std::io::Result<f64> {
    let started = Instant::now();
    let mut calls = 0u64;
    loop {
        for _ in 0..BATCH {
            call()?;
        }
        calls += BATCH;
        let elapsed = started.elapsed();
        if elapsed >= trial {
            return Ok(elapsed.as_nanos() as f64 / calls as f64);
        }
    }
}

pub(super) fn null_syscall_ns(trials: u32, trial: Duration) -> Result<Vec<f64>, LimitsError> {
    (0..trials)
        .map(|_| {
            ns_per_call(trial, || {
                black_box(current_tid());
                Ok(())
            })
            .map_err(io_error("timing the null syscall"))
        })
        .collect()
}

pub(super) fn empty_epoll_wait_ns(trials: u32, trial: Duration) -> Result<Vec<f64>, LimitsError> {
    let poller = Epoll::new().map_err(io_error("creating an empty epoll set"))?;
    let mut events = epoll::event_buffer(1);
    (0..trials)
        .map(|_| {
            ns_per_call(trial, || poller.wait(&mut events, 0).map(drop))
                .map_err(io_error("timing an empty epoll_wait"))
        })
        .collect()
}

/// An eventfd and the epoll set its owner waits on, as a serving thread
/// is woken.
struct Waiter {
    poller: Epoll,
    event: EventFd,
}

impl Waiter {
    fn new() -> std::io::Result<Waiter> {
        let poller = Epoll::new()?;
        let event = EventFd::new()?;
        poller.add(event.as_fd(), epoll::IN, 0)?;
        Ok(Waiter { poller, event })
    }

    /// Blocks until woken, then resets the eventfd.
    fn wait(&self, events: &mut [epoll::Event]) -> std::io::Result<()> {
        if self.poller.wait(events, WAKEUP_TIMEOUT_MS)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the other thread did not answer within 1 s",
            ));
        }
        self.event.drain()
    }
}

/// Half a ping-pong round trip between two threads, one value per trial.
pub(super) fn thread_wakeup_ns(trials: u32, trial: Duration) -> Result<Vec<f64>, LimitsError> {
    let ping = Waiter::new().map_err(io_error("creating the wake-up eventfds"))?;
    let pong = Waiter::new().map_err(io_error("creating the wake-up eventfds"))?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let partner = scope.spawn(|| -> std::io::Result<()> {
            let mut events = epoll::event_buffer(1);
            loop {
                ping.wait(&mut events)?;
                if stop.load(Ordering::Acquire) {
                    return Ok(());
                }
                pong.event.wake()?;
            }
        });
        let mut events = epoll::event_buffer(1);
        let mut round_trip = || {
            ping.event.wake()?;
            pong.wait(&mut events)
        };
        let measured = (|| {
            for _ in 0..WAKEUP_WARMUP_ROUND_TRIPS {
                round_trip()?;
            }
            (0..trials)
                .map(|_| ns_per_call(trial, &mut round_trip).map(|ns| ns / 2.0))
                .collect::<std::io::Result<Vec<f64>>>()
        })();
        stop.store(true, Ordering::Release);
        // Wakes the partner so that it sees `stop` (harmless if it is gone).
        let _ = ping.event.wake();
        let partner_result = partner
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the wake-up partner thread panicked")));
        let values = measured.map_err(io_error("timing thread wake-ups"))?;
        partner_result.map_err(io_error("answering wake-ups"))?;
        Ok(values)
    })
}
