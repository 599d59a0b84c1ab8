//! What the two io_uring loops (`mod.rs`'s one-shot loop and
//! `multishot.rs`) do alike outside their completions: how long a turn may
//! wait, and a serving thread's report.

use std::io;
use std::time::{Duration, Instant};

use crate::server::event_loop::{self, ACCEPT_RETRY, KernelCounters, LoopConfig};
use crate::server::report::{LoopCounters, ThreadReport};
use crate::sys;

/// How long a turn's `io_uring_enter` may wait for a completion: until the
/// shutdown deadline or the accept pause's next retry, whichever comes
/// first; `None` waits for a completion however long it takes.
pub fn turn_wait(
    shutdown_deadline: Option<Instant>,
    accept_paused_since: Option<Instant>,
) -> Option<Duration> {
    let mut wait: Option<Duration> = None;
    if let Some(deadline) = shutdown_deadline {
        wait = Some(deadline.saturating_duration_since(Instant::now()));
    }
    if let Some(since) = accept_paused_since {
        let left = ACCEPT_RETRY.saturating_sub(since.elapsed());
        wait = Some(wait.map_or(left, |w| w.min(left)));
    }
    // A zero timeout would return at once with nothing; round up so a
    // timer never fires early and spins.
    wait.map(|w| w.max(Duration::from_millis(1)))
}

/// The epoll loop's thread report, with the ring's operation counts.
pub fn thread_report(
    config: &LoopConfig,
    tid: i32,
    counters: LoopCounters,
    kernel: &KernelCounters,
) -> io::Result<ThreadReport> {
    let mut report = event_loop::thread_report(config, tid, counters, kernel)?;
    report.uring_ops = Some(sys::uring_ops::snapshot());
    Ok(report)
}
