//! The thread-per-connection baseline (`tpc-rw`): one OS thread per
//! connection making plain blocking `read` and `write` calls, the model
//! epoll is usually compared against (and what goroutine-per-connection
//! code looks like to its author). It shares the framing and buffering of
//! the `rw` strategy ([`super::copy::rw::ReadWrite`]: the same ring, parser
//! and one `write` per pending piece), only on a blocking socket.
//!
//! Threads of one serving index:
//! - the controller (`serve-tpc-N`, the thread [`spawn`] returns) answers
//!   control requests, waiting on the control eventfd in the epoll set
//!   `Server::start` built, and runs the shutdown;
//! - the acceptor ([`acceptor`]) blocks in `accept4` and starts a thread
//!   per connection;
//! - connection threads ([`conn`]) read a request, write its response,
//!   read again.
//!
//! Counting: every thread counts its own syscalls in `sys`'s thread-locals,
//! as everywhere. A thread that may block (before each `read` or
//! `accept4`) first copies its counts into its [`Published`] slot, so a
//! snapshot can add up threads it cannot interrupt: a blocked thread's
//! published counts are exactly its counts. A connection thread that ends
//! adds its final counts to the finished total under the same lock that
//! removes it from the live set, so no count is lost or counted twice.
//!
//! CPU figures come from `getrusage(RUSAGE_THREAD)`, which only the thread
//! itself can call. Calling it before every read would add a syscall per
//! request to the baseline, so a thread refreshes them only when it passes
//! a publishing point after a snapshot was requested ([`Publisher`]); the
//! controller waits up to [`CATCH_UP`] for live connection threads to do
//! so. A busy thread passes one within a request. A thread that stays
//! blocked that long reports the CPU figures of the last snapshot it saw
//! (its syscall counts stay exact): the CPU it used between that snapshot
//! and going idle shows up only once it runs again or closes.
//!
//! Kernel counts (`--kernel-counters`): every thread attaches counters to
//! itself when it starts (so threads started after the server are
//! covered, which a watch attached from outside to the threads a snapshot
//! names cannot do) and reads them each time it publishes, just before
//! its own counts. Those reads of its own counters (one per request) are
//! the instrument, not the server: both counts include them (the kernel's
//! read sees its own entry), so the thread takes the same number, exactly
//! known, out of `read` in both before publishing. Counts then say what
//! the server does uncounted (1 read per request), and the cross-check
//! still compares every other call. Each connection holds one perf
//! counter per syscall kind open: at 40-odd kinds, 1,000 connections
//! would take 40,000 descriptors and starve `accept` under a 20,000 fd
//! limit, and attaching them (tens of `perf_event_open` calls, measured
//! at ~7 ms a thread here) would keep new connections waiting for
//! seconds. So counters are attached to at most
//! [`KERNEL_COUNTED_THREADS`] connection threads at once, within half the
//! soft RLIMIT_NOFILE ([`Shared::reserve_counter_fds`]); a thread past
//! that serves uncounted by the kernel, and a window with such a thread
//! has no kernel count, with the reason.

mod acceptor;
mod conn;

use std::collections::HashMap;
use std::io;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::control::LoopControl;
use super::copy::ConnConfig;
use super::event_loop::{
    self, KernelCounters, LISTENER_TOKEN, LoopConfig, LoopResources, SHUTDOWN_FLUSH,
};
use super::report::{LoopCounters, ThreadReport};
use crate::sys::perf::{KernelSyscallCounters, KernelSyscallCounts};
use crate::sys::rusage::ThreadUsage;
use crate::sys::{self, Fd, SyscallCounts, SyscallKind, epoll};

/// Stack of a connection thread. The default (2 MiB, or `ulimit -s`)
/// would reserve 2 GiB of address space for 1,000 connections; a
/// connection thread's frames are a few small structs (its buffer lives on
/// the heap), so 64 KiB (16 pages, of which the loop touches a few) leaves
/// ample room and keeps 10,000 connections within 640 MiB of stacks.
pub(super) const CONNECTION_STACK_BYTES: usize = 64 << 10;

/// Most connection threads with kernel counters attached at once: every
/// connection of the 1- and 64-connection cases, without making a
/// 1,000-connection start-up wait on attaching 1,000 counter sets.
const KERNEL_COUNTED_THREADS: usize = 64;

/// How long a snapshot waits for busy connection threads to refresh their
/// CPU figures (see the module doc).
const CATCH_UP: Duration = Duration::from_millis(20);
/// Once the flush deadline has passed, how long the shutdown waits for
/// connection threads woken by `shutdown(SHUT_RDWR)` to end.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// What one thread last published of its counters.
#[derive(Clone, Debug, Default)]
pub(super) struct Published {
    /// The snapshot generation the CPU figures were taken for.
    generation: u64,
    syscalls: SyscallCounts,
    counters: LoopCounters,
    usage: ThreadUsage,
    kernel: Option<KernelSyscallCounts>,
    kernel_unavailable_reason: Option<String>,
}

impl Published {
    /// An empty total; with kernel counters asked for, an empty kernel
    /// total too, so that the sum stays `Some` while every part has one.
    fn zero(kernel_counters: bool) -> Published {
        Published {
            kernel: kernel_counters.then(KernelSyscallCounts::default),
            ..Published::default()
        }
    }

    fn add(&mut self, other: &Published) {
        add_counts(
            &mut self.syscalls,
            &mut self.counters,
            &mut self.usage,
            other,
        );
        self.kernel = match (self.kernel.take(), &other.kernel) {
            (Some(mut sum), Some(k)) => {
                sum.add(k);
                Some(sum)
            }
            _ => None,
        };
        if self.kernel_unavailable_reason.is_none() {
            self.kernel_unavailable_reason = other.kernel_unavailable_reason.clone();
        }
    }

    fn add_to(&self, report: &mut ThreadReport) {
        add_counts(
            &mut report.syscalls,
            &mut report.counters,
            &mut report.usage,
            self,
        );
        report.kernel_syscalls = match (report.kernel_syscalls.take(), &self.kernel) {
            (Some(mut sum), Some(k)) => {
                sum.add(k);
                Some(sum)
            }
            _ => None,
        };
        if report.kernel_unavailable_reason.is_none() {
            report.kernel_unavailable_reason = self.kernel_unavailable_reason.clone();
        }
    }
}

fn add_counts(
    syscalls: &mut SyscallCounts,
    counters: &mut LoopCounters,
    usage: &mut ThreadUsage,
    other: &Published,
) {
    syscalls.add(&other.syscalls);
    counters.add(&other.counters);
    usage.add(&other.usage);
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panicking thread; the data is plain counts.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A thread's side of its [`Published`] slot.
pub(super) struct Publisher {
    slot: Arc<Mutex<Published>>,
    kernel: KernelCounters,
    usage: ThreadUsage,
    generation: u64,
    /// Reads of its own kernel counters so far (see the module docs).
    counter_reads: u64,
}

impl Publisher {
    /// Called on the publishing thread: attaches its kernel counters when
    /// asked for (a `gettid` and one `perf_event_open` per kind).
    fn new(shared: &Shared, slot: Arc<Mutex<Published>>) -> Publisher {
        let kernel = shared.kernel_counters.then(|| {
            shared.reserve_counter_fds()?;
            KernelSyscallCounters::attach(&[sys::thread::current_tid()]).map_err(|e| {
                shared.release_counter_fds();
                e.to_string()
            })
        });
        Publisher {
            slot,
            kernel,
            usage: ThreadUsage::default(),
            generation: shared.generation.load(Ordering::Acquire),
            counter_reads: 0,
        }
    }

    /// Before a call that may block: the counts so far, with fresh CPU
    /// figures (one `getrusage`) if a snapshot was requested since the
    /// last ones. Kernel counts, when attached, are read every time (one
    /// `read`), just before the in-process counts, so that both cover the
    /// same calls.
    fn publish(&mut self, shared: &Shared, counters: &LoopCounters) {
        let wanted = shared.generation.load(Ordering::Acquire);
        let refreshed = wanted != self.generation;
        if refreshed {
            self.refresh_usage(wanted);
        }
        self.store(counters);
        if refreshed && shared.snapshot_waiting.load(Ordering::Acquire) {
            shared.caught_up.notify_all();
        }
    }

    /// The thread's last counts, CPU figures included.
    fn finish(mut self, counters: &LoopCounters) -> Published {
        self.refresh_usage(self.generation);
        self.store(counters);
        lock(&self.slot).clone()
    }

    fn refresh_usage(&mut self, generation: u64) {
        if let Ok(usage) = sys::rusage::this_thread() {
            self.usage = usage;
        }
        self.generation = generation;
    }

    /// This thread's counts without its reads of its own kernel counters.
    fn uninstrumented(&self, mut syscalls: SyscallCounts) -> SyscallCounts {
        let read = &mut syscalls.calls.0[SyscallKind::Read as usize];
        *read = read.saturating_sub(self.counter_reads);
        syscalls
    }

    fn store(&mut self, counters: &LoopCounters) {
        let (kernel, kernel_unavailable_reason) = match &self.kernel {
            None => (None, None),
            Some(Err(reason)) => (None, Some(reason.clone())),
            Some(Ok(k)) => {
                // One `read` of one thread's group, counted in-process
                // whether or not it succeeds.
                self.counter_reads += 1;
                match k.read() {
                    Ok(mut counts) => {
                        let read = &mut counts.calls.0[SyscallKind::Read as usize];
                        *read = read.saturating_sub(self.counter_reads);
                        counts.total_syscalls =
                            counts.total_syscalls.saturating_sub(self.counter_reads);
                        (Some(counts), None)
                    }
                    Err(e) => (
                        None,
                        Some(format!("reading the kernel counters failed: {e}")),
                    ),
                }
            }
        };
        let published = Published {
            generation: self.generation,
            syscalls: self.uninstrumented(sys::counters::snapshot()),
            counters: *counters,
            usage: self.usage,
            kernel,
            kernel_unavailable_reason,
        };
        *lock(&self.slot) = published;
    }
}

/// A connection thread, as the controller sees it.
struct LiveConn {
    /// Shared with the thread, so that the descriptor stays open while the
    /// controller may `shutdown` it: it closes when the thread, having
    /// removed this entry, drops the last reference.
    fd: Arc<Fd>,
    published: Arc<Mutex<Published>>,
}

struct Table {
    live: HashMap<u64, LiveConn>,
    next_key: u64,
    /// Sum of the connection threads that have ended.
    finished: Published,
    /// Connection threads ended so far (wakes a paused acceptor).
    closed: u64,
}

/// What the threads of one serving index share.
pub(super) struct Shared {
    conn: ConnConfig,
    thread_index: usize,
    kernel_counters: bool,
    shutting_down: AtomicBool,
    /// Bumped by every snapshot request; see [`Publisher::publish`].
    generation: AtomicU64,
    snapshot_waiting: AtomicBool,
    caught_up: Condvar,
    table: Mutex<Table>,
    /// Signalled when a connection thread ends or shutdown begins.
    changed: Condvar,
    acceptor: Arc<Mutex<Published>>,
    /// Descriptors the connection threads' kernel counters hold, and the
    /// most they may (half the soft RLIMIT_NOFILE at start).
    counter_fds_in_use: AtomicUsize,
    counter_fds_budget: usize,
}

impl Shared {
    /// Takes one thread's worth of kernel-counter descriptors from the
    /// budget, or says why not; [`Shared::release_counter_fds`] gives it
    /// back when the thread's counters close.
    fn reserve_counter_fds(&self) -> Result<(), String> {
        let wanted = SyscallKind::ALL.len();
        let before = self.counter_fds_in_use.fetch_add(wanted, Ordering::AcqRel);
        if before + wanted > self.counter_fds_budget {
            self.counter_fds_in_use.fetch_sub(wanted, Ordering::AcqRel);
            return Err(format!(
                "kernel counters not attached to every connection thread: at most \
                 {KERNEL_COUNTED_THREADS} threads carry them at once, within half the fd \
                 limit ({} descriptors, {wanted} a thread)",
                self.counter_fds_budget
            ));
        }
        Ok(())
    }

    fn release_counter_fds(&self) {
        self.counter_fds_in_use
            .fetch_sub(SyscallKind::ALL.len(), Ordering::AcqRel);
    }

    fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        lock(&self.table)
    }

    /// Registers a connection; its thread removes it with
    /// [`Shared::finish_connection`].
    fn add_connection(&self, fd: Arc<Fd>, published: Arc<Mutex<Published>>) -> u64 {
        let mut table = self.table();
        let key = table.next_key;
        table.next_key += 1;
        table.live.insert(key, LiveConn { fd, published });
        key
    }

    /// Moves a connection thread's final counts from the live set to the
    /// finished total in one step, closing its socket in between (so the
    /// `close` is in the final counts).
    fn finish_connection(
        &self,
        key: u64,
        fd: Arc<Fd>,
        publisher: Publisher,
        counters: &LoopCounters,
    ) {
        let mut table = self.table();
        table.live.remove(&key);
        drop(fd);
        let counted = matches!(publisher.kernel, Some(Ok(_)));
        let last = publisher.finish(counters);
        if counted {
            self.release_counter_fds();
        }
        table.finished.add(&last);
        table.closed += 1;
        drop(table);
        self.changed.notify_all();
    }
}

/// Starts the controller of one serving index, which starts the acceptor.
pub fn spawn(
    config: LoopConfig,
    resources: LoopResources,
) -> io::Result<JoinHandle<io::Result<ThreadReport>>> {
    let LoopResources {
        epoll,
        listener,
        control,
    } = resources;
    let shared = Arc::new(Shared {
        conn: config.conn.clone(),
        thread_index: config.thread_index,
        kernel_counters: config.kernel_counters,
        shutting_down: AtomicBool::new(false),
        generation: AtomicU64::new(0),
        snapshot_waiting: AtomicBool::new(false),
        caught_up: Condvar::new(),
        table: Mutex::new(Table {
            live: HashMap::new(),
            next_key: 0,
            finished: Published::zero(config.kernel_counters),
            closed: 0,
        }),
        changed: Condvar::new(),
        acceptor: Arc::new(Mutex::new(Published::zero(config.kernel_counters))),
        counter_fds_in_use: AtomicUsize::new(0),
        counter_fds_budget: sys::rlimit::nofile().map_or(0, |(soft, _)| {
            // The acceptor carries counters too.
            (soft as usize / 2).min((KERNEL_COUNTED_THREADS + 1) * SyscallKind::ALL.len())
        }),
    });
    let name = format!("serve-tpc-{}", config.thread_index);
    let controller = Controller {
        config,
        shared,
        epoll,
        listener: Arc::new(listener),
        control,
        tid: 0,
        kernel: None,
    };
    std::thread::Builder::new()
        .name(name)
        .spawn(move || controller.run())
}

struct Controller {
    config: LoopConfig,
    shared: Arc<Shared>,
    epoll: epoll::Epoll,
    listener: Arc<Fd>,
    control: Arc<LoopControl>,
    tid: i32,
    kernel: KernelCounters,
}

impl Controller {
    fn run(mut self) -> io::Result<ThreadReport> {
        self.tid = sys::thread::current_tid();
        if self.config.kernel_counters {
            self.kernel =
                Some(KernelSyscallCounters::attach(&[self.tid]).map_err(|e| e.to_string()));
        }
        // The acceptor takes the connections: only the control eventfd
        // may wake this thread (interest 0 keeps the listener registered
        // but reports nothing).
        self.epoll
            .modify(self.listener.as_fd(), 0, LISTENER_TOKEN)?;
        // `Server::start` made the listener non-blocking for the loops.
        sys::socket::set_blocking(self.listener.as_fd())?;
        let acceptor = {
            let (shared, listener) = (Arc::clone(&self.shared), Arc::clone(&self.listener));
            std::thread::Builder::new()
                .name(format!("tpc-accept-{}", self.config.thread_index))
                .spawn(move || acceptor::run(shared, listener))?
        };
        let mut events = epoll::event_buffer(2);
        loop {
            self.epoll.wait(&mut events, -1)?;
            let requests = self.control.take_requests()?;
            if requests.snapshot {
                self.catch_up();
                let report = self.report()?;
                self.control.answer_snapshot(report);
            }
            if requests.shutdown {
                return self.shut_down(acceptor);
            }
        }
    }

    /// Asks every thread for fresh CPU figures and waits (up to
    /// [`CATCH_UP`]) for the live connection threads to give them.
    fn catch_up(&self) {
        let shared = &self.shared;
        let wanted = shared.generation.fetch_add(1, Ordering::AcqRel) + 1;
        shared.snapshot_waiting.store(true, Ordering::Release);
        let deadline = Instant::now() + CATCH_UP;
        let mut table = shared.table();
        loop {
            // The acceptor too: between an `accept4` and its next one it
            // has not published the connection it just took.
            let behind = lock(&shared.acceptor).generation < wanted
                || table
                    .live
                    .values()
                    .any(|c| lock(&c.published).generation < wanted);
            let now = Instant::now();
            if !behind || now >= deadline {
                break;
            }
            // A thread notifies without the lock, so a notification may
            // fall between the check and the wait: wait in short steps.
            let step = (deadline - now).min(Duration::from_millis(5));
            table = shared
                .caught_up
                .wait_timeout(table, step)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        shared.snapshot_waiting.store(false, Ordering::Release);
    }

    /// The controller's own report (its `getrusage` and counts, as the
    /// epoll loop's) plus the acceptor's and every connection thread's,
    /// live or ended, at one instant of the table.
    fn report(&self) -> io::Result<ThreadReport> {
        let table = self.shared.table();
        let mut report = event_loop::thread_report(
            &self.config,
            self.tid,
            LoopCounters::default(),
            &self.kernel,
        )?;
        lock(&self.shared.acceptor).add_to(&mut report);
        table.finished.add_to(&mut report);
        for conn in table.live.values() {
            lock(&conn.published).add_to(&mut report);
        }
        Ok(report)
    }

    /// Stops accepting and reading, lets connection threads flush what
    /// they owe for up to [`SHUTDOWN_FLUSH`] (as the epoll loop does),
    /// then cuts off the rest. Blocked calls are woken with `shutdown(2)`:
    /// `SHUT_RD` ends a blocked `accept4` or `read`, `SHUT_RDWR` also a
    /// blocked `write`.
    fn shut_down(self, acceptor: JoinHandle<()>) -> io::Result<ThreadReport> {
        let deadline = Instant::now() + SHUTDOWN_FLUSH;
        let shared = &self.shared;
        shared.shutting_down.store(true, Ordering::Release);
        let _ = sys::socket::shutdown(self.listener.as_fd(), Shutdown::Read);
        {
            // A paused acceptor waits on `changed`, under the table lock.
            let _table = shared.table();
            shared.changed.notify_all();
        }
        let _ = acceptor.join();
        self.shut_connections(Shutdown::Read);
        if !self.wait_for_connections(deadline) {
            self.shut_connections(Shutdown::Both);
            self.wait_for_connections(Instant::now() + CLOSE_WAIT);
        }
        self.report()
    }

    fn shut_connections(&self, how: Shutdown) {
        let table = self.shared.table();
        for conn in table.live.values() {
            // ENOTCONN when the peer has gone already: nothing to wake.
            let _ = sys::socket::shutdown(conn.fd.as_fd(), how);
        }
    }

    /// Whether every connection thread ended before `deadline`.
    fn wait_for_connections(&self, deadline: Instant) -> bool {
        let mut table = self.shared.table();
        loop {
            if table.live.is_empty() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            table = self
                .shared
                .changed
                .wait_timeout(table, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
