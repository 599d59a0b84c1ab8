//! The buffer policy (`serve --buffers`): where a connection's ring buffer
//! comes from.
//!
//! - `per-connection`: every connection allocates its buffer when accepted
//!   and frees it when closed, so an idle connection costs a whole buffer.
//! - `pooled`: a connection holds a buffer only while it has bytes to keep
//!   (read and not yet answered, or answered and not yet written). It takes
//!   one from its loop thread's pool just before a read and gives it back as
//!   soon as its ring is empty again, so an idle connection costs no user
//!   buffer. The pool grows on demand up to `max_buffers` and never shrinks
//!   (a buffer freed to the allocator would only be allocated again at the
//!   next burst); at that bound a connection that needs a buffer waits: it is
//!   not read until one is given back, so memory stays bounded whatever the
//!   number of connections.
//!
//! The pool is per loop thread and lives in a thread-local: each loop
//! thread owns its connections and their buffers, so taking and giving back
//! need no lock, and the copy strategies reach it without every
//! [`super::CopyStrategy`] call carrying it. A thread whose loop did not
//! [`install`] a pool (per-connection policy, io_uring, thread-per-connection,
//! unit tests) allocates per connection; either way the thread's buffer
//! figures are kept here and read into its report by the loop.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};

use crate::server::report::LoopCounters;

/// Where a connection's ring buffer comes from.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum BufferPolicy {
    /// Each connection owns its buffer from accept to close.
    #[default]
    PerConnection,
    /// Buffers are taken from the loop thread's pool while a connection has
    /// bytes to hold, and given back when it has none.
    Pooled,
}

impl BufferPolicy {
    /// The `--buffers` value.
    pub fn name(self) -> &'static str {
        match self {
            BufferPolicy::PerConnection => "per-connection",
            BufferPolicy::Pooled => "pooled",
        }
    }
}

/// Buffers one loop thread's pool holds at most, unless `serve
/// --pool-buffers` says otherwise: 64 MiB of the default 64 KiB buffers,
/// room for a thousand connections moving data at the same instant.
pub const DEFAULT_POOL_MAX_BUFFERS: usize = 1024;

struct Pool {
    buffer_bytes: usize,
    max_buffers: usize,
    free: Vec<Box<[u8]>>,
}

/// One thread's buffers: its pool (when pooled) and the figures reported
/// for both policies. Peaks are since the thread's previous report.
#[derive(Default)]
struct Buffers {
    pool: Option<Pool>,
    allocated: u64,
    allocated_peak: u64,
    in_use: u64,
    in_use_peak: u64,
    takes: u64,
    hits: u64,
    misses: u64,
    waits: u64,
}

impl Buffers {
    fn allocate(&mut self, bytes: usize) -> Box<[u8]> {
        self.allocated += 1;
        self.allocated_peak = self.allocated_peak.max(self.allocated);
        vec![0u8; bytes].into_boxed_slice()
    }

    fn start_using(&mut self) {
        self.in_use += 1;
        self.in_use_peak = self.in_use_peak.max(self.in_use);
    }
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// Makes this thread's connections take their buffers from a pool of at
/// most `max_buffers` buffers of `buffer_bytes` each (called by a loop
/// thread before it accepts anything).
pub fn install(buffer_bytes: usize, max_buffers: usize) {
    BUFFERS.with_borrow_mut(|b| {
        b.pool = Some(Pool {
            buffer_bytes,
            max_buffers: max_buffers.max(1),
            free: Vec::new(),
        })
    });
}

/// Whether this thread's connections take their buffers from a pool.
pub fn pooled() -> bool {
    BUFFERS.with_borrow(|b| b.pool.is_some())
}

/// A connection's own buffer (per-connection policy), counted as in use
/// until [`free_own`].
pub fn allocate_own(bytes: usize) -> Box<[u8]> {
    BUFFERS.with_borrow_mut(|b| {
        b.start_using();
        b.allocate(bytes)
    })
}

/// The end of a buffer from [`allocate_own`].
pub fn free_own(buffer: Box<[u8]>) {
    // Saturating: a ring dropped on another thread than the one that made
    // it must not wrap this thread's figures.
    BUFFERS.with_borrow_mut(|b| {
        b.in_use = b.in_use.saturating_sub(1);
        b.allocated = b.allocated.saturating_sub(1);
    });
    drop(buffer);
}

/// A buffer from the pool: a free one, a new one below the bound, or
/// `None` at the bound (the caller waits, see [`available`]).
pub fn take() -> Option<Box<[u8]>> {
    BUFFERS.with_borrow_mut(|b| {
        b.takes += 1;
        let pool = b.pool.as_mut().expect("take() needs an installed pool");
        let buffer = if let Some(buffer) = pool.free.pop() {
            b.hits += 1;
            buffer
        } else if b.allocated < pool.max_buffers as u64 {
            let bytes = pool.buffer_bytes;
            b.misses += 1;
            b.allocate(bytes)
        } else {
            b.waits += 1;
            return None;
        };
        b.start_using();
        Some(buffer)
    })
}

/// Returns a buffer from [`take`] to the pool.
pub fn give_back(buffer: Box<[u8]>) {
    BUFFERS.with_borrow_mut(|b| {
        b.in_use = b.in_use.saturating_sub(1);
        if let Some(pool) = b.pool.as_mut() {
            pool.free.push(buffer);
        }
    });
}

/// How many [`take`]s would succeed now: 0 without a pool.
pub fn available() -> usize {
    BUFFERS.with_borrow(|b| match &b.pool {
        Some(pool) => {
            pool.free.len() + (pool.max_buffers as u64).saturating_sub(b.allocated) as usize
        }
        None => 0,
    })
}

/// Writes this thread's buffer figures into `counters` and starts new
/// peaks from the current counts: a report's peaks cover the time since the
/// thread's previous report.
pub fn report_into(counters: &mut LoopCounters) {
    BUFFERS.with_borrow_mut(|b| {
        counters.buffers_allocated_peak = b.allocated_peak;
        counters.buffers_in_use_peak = b.in_use_peak;
        counters.pool_takes = b.takes;
        counters.pool_hits = b.hits;
        counters.pool_misses = b.misses;
        counters.pool_waits = b.waits;
        b.allocated_peak = b.allocated;
        b.in_use_peak = b.in_use;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> LoopCounters {
        let mut counters = LoopCounters::default();
        report_into(&mut counters);
        counters
    }

    #[test]
    fn per_connection_buffers_count_while_they_live() {
        // Each test runs on its own thread, so its figures are its own.
        let a = allocate_own(64);
        let b = allocate_own(64);
        free_own(a);
        let f = figures();
        assert_eq!((f.buffers_allocated_peak, f.buffers_in_use_peak), (2, 2));
        assert_eq!(f.pool_takes, 0);
        // A new peak starts from what is still held.
        assert_eq!(figures().buffers_in_use_peak, 1);
        free_own(b);
        // Held during this stretch, then no more.
        assert_eq!(figures().buffers_in_use_peak, 1);
        assert_eq!(figures().buffers_in_use_peak, 0);
    }

    #[test]
    fn the_pool_reuses_grows_to_its_bound_then_refuses() {
        install(64, 2);
        let first = take().unwrap();
        let second = take().unwrap();
        assert_eq!(available(), 0);
        assert!(take().is_none(), "at the bound a take waits");
        give_back(first);
        assert_eq!(available(), 1);
        let again = take().unwrap();
        assert_eq!(again.len(), 64);
        give_back(again);
        give_back(second);
        let f = figures();
        assert_eq!(
            (f.pool_takes, f.pool_hits, f.pool_misses, f.pool_waits),
            (4, 1, 2, 1)
        );
        assert_eq!((f.buffers_allocated_peak, f.buffers_in_use_peak), (2, 2));
        // The pool keeps its buffers; none is in use any more.
        let f = figures();
        assert_eq!((f.buffers_allocated_peak, f.buffers_in_use_peak), (2, 0));
    }
}
