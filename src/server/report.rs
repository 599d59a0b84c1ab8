//! What a server reports about itself: per serving thread, and summed.
//! `serve` prints one [`ServerReport`] as a JSON line at exit, and another
//! for every `snapshot` control command.

use serde::{Deserialize, Serialize};

use crate::sys::SyscallCounts;
use crate::sys::memory::ProcessMemory;
use crate::sys::perf::KernelSyscallCounts;
use crate::sys::rusage::ThreadUsage;
use crate::sys::uring_ops::UringOpCounts;

/// Counters the event loop keeps itself (syscalls are counted in `sys`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopCounters {
    /// `epoll_wait` calls that returned at least one event or timed out.
    pub epoll_wait_calls: u64,
    /// Events returned by all `epoll_wait` calls.
    pub epoll_events_returned: u64,
    pub connections_accepted: u64,
    pub connections_closed: u64,
    /// Connections closed for a protocol violation: an oversized frame
    /// length, or EOF inside a frame.
    pub protocol_errors: u64,
    /// Connections closed because the socket reported an error (e.g. RST).
    pub connection_errors: u64,
    /// Times accepting was paused because the process ran out of fds.
    pub accept_pauses_emfile: u64,
    /// Frame protocol: requests whose header has been parsed.
    pub requests_parsed: u64,
    /// Bytes received from clients (whatever the copy strategy).
    pub bytes_in: u64,
    /// Bytes sent to clients (whatever the copy strategy).
    pub bytes_out: u64,
    /// Frame headers read into user space (4 per request) and written from
    /// it (8 per response); subtracted from the user-copy byte counts to
    /// give payload bytes copied.
    pub header_bytes_in: u64,
    pub header_bytes_out: u64,
    /// `zerocopy` strategy only (zero otherwise): `sendmsg(MSG_ZEROCOPY)`
    /// calls that sent bytes, and so took a send id.
    #[serde(default)]
    pub zerocopy_sends: u64,
    /// Send ids whose completion was reaped from the error queue.
    #[serde(default)]
    pub zerocopy_completed_sends: u64,
    /// Of those, sends the kernel reports it copied anyway
    /// (`SO_EE_CODE_ZEROCOPY_COPIED`): all of them on loopback.
    #[serde(default)]
    pub zerocopy_copied_sends: u64,
    /// User buffers (ring buffers) allocated at most at once since the
    /// thread's previous report: per connection, one per open connection;
    /// pooled, the pool's size (it never shrinks). Summed over threads, a
    /// sum of each thread's peak.
    #[serde(default)]
    pub buffers_allocated_peak: u64,
    /// Buffers held by connections at most at once since the previous
    /// report (pooled: taken and not yet given back).
    #[serde(default)]
    pub buffers_in_use_peak: u64,
    /// Pooled buffers only (zero per connection): attempts to take a buffer
    /// from the pool (= hits + misses + waits).
    #[serde(default)]
    pub pool_takes: u64,
    /// Takes served by a free buffer already in the pool.
    #[serde(default)]
    pub pool_hits: u64,
    /// Takes that allocated a new buffer (the pool grew).
    #[serde(default)]
    pub pool_misses: u64,
    /// Takes that found no free buffer at the pool's bound: the connection
    /// waited for one.
    #[serde(default)]
    pub pool_waits: u64,
}

impl LoopCounters {
    pub fn add(&mut self, o: &LoopCounters) {
        self.epoll_wait_calls += o.epoll_wait_calls;
        self.epoll_events_returned += o.epoll_events_returned;
        self.connections_accepted += o.connections_accepted;
        self.connections_closed += o.connections_closed;
        self.protocol_errors += o.protocol_errors;
        self.connection_errors += o.connection_errors;
        self.accept_pauses_emfile += o.accept_pauses_emfile;
        self.requests_parsed += o.requests_parsed;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.header_bytes_in += o.header_bytes_in;
        self.header_bytes_out += o.header_bytes_out;
        self.zerocopy_sends += o.zerocopy_sends;
        self.zerocopy_completed_sends += o.zerocopy_completed_sends;
        self.zerocopy_copied_sends += o.zerocopy_copied_sends;
        self.buffers_allocated_peak += o.buffers_allocated_peak;
        self.buffers_in_use_peak += o.buffers_in_use_peak;
        self.pool_takes += o.pool_takes;
        self.pool_hits += o.pool_hits;
        self.pool_misses += o.pool_misses;
        self.pool_waits += o.pool_waits;
    }

    pub fn since(&self, e: &LoopCounters) -> LoopCounters {
        LoopCounters {
            epoll_wait_calls: self.epoll_wait_calls - e.epoll_wait_calls,
            epoll_events_returned: self.epoll_events_returned - e.epoll_events_returned,
            connections_accepted: self.connections_accepted - e.connections_accepted,
            connections_closed: self.connections_closed - e.connections_closed,
            protocol_errors: self.protocol_errors - e.protocol_errors,
            connection_errors: self.connection_errors - e.connection_errors,
            accept_pauses_emfile: self.accept_pauses_emfile - e.accept_pauses_emfile,
            requests_parsed: self.requests_parsed - e.requests_parsed,
            bytes_in: self.bytes_in - e.bytes_in,
            bytes_out: self.bytes_out - e.bytes_out,
            header_bytes_in: self.header_bytes_in - e.header_bytes_in,
            header_bytes_out: self.header_bytes_out - e.header_bytes_out,
            zerocopy_sends: self.zerocopy_sends - e.zerocopy_sends,
            zerocopy_completed_sends: self.zerocopy_completed_sends - e.zerocopy_completed_sends,
            zerocopy_copied_sends: self.zerocopy_copied_sends - e.zerocopy_copied_sends,
            // Peaks are already since the previous report: a window is two
            // consecutive snapshots, so the later one's peak is the window's.
            buffers_allocated_peak: self.buffers_allocated_peak,
            buffers_in_use_peak: self.buffers_in_use_peak,
            pool_takes: self.pool_takes - e.pool_takes,
            pool_hits: self.pool_hits - e.pool_hits,
            pool_misses: self.pool_misses - e.pool_misses,
            pool_waits: self.pool_waits - e.pool_waits,
        }
    }
}

/// One serving thread at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadReport {
    /// Index of the serving thread (0-based).
    pub thread_index: usize,
    /// Kernel thread id, for attaching kernel-side counters.
    pub tid: i32,
    pub syscalls: SyscallCounts,
    pub counters: LoopCounters,
    pub usage: ThreadUsage,
    /// The kernel's own count of this thread's syscalls (perf tracepoints),
    /// read by the thread itself in the same instant as `syscalls`, so both
    /// cover exactly the same calls. Only with `serve --kernel-counters`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_syscalls: Option<KernelSyscallCounts>,
    /// Why `kernel_syscalls` is missing although it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_unavailable_reason: Option<String>,
    /// io_uring operations (SQEs, CQEs by opcode), counted with the
    /// syscalls; `None` for the epoll loop, which has no ring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uring_ops: Option<UringOpCounts>,
}

impl ThreadReport {
    /// Payload bytes copied from the kernel into user space: read-family
    /// bytes minus the frame headers among them. Zero for splice.
    pub fn payload_copy_bytes_in(&self) -> u64 {
        self.syscalls
            .user_copy_bytes_in
            .saturating_sub(self.counters.header_bytes_in)
    }

    pub fn payload_copy_bytes_out(&self) -> u64 {
        self.syscalls
            .user_copy_bytes_out
            .saturating_sub(self.counters.header_bytes_out)
    }

    /// The change from `earlier` (same thread) to `self`.
    pub fn since(&self, earlier: &ThreadReport) -> ThreadReport {
        ThreadReport {
            thread_index: self.thread_index,
            tid: self.tid,
            syscalls: self.syscalls.since(&earlier.syscalls),
            counters: self.counters.since(&earlier.counters),
            usage: self.usage.since(&earlier.usage),
            kernel_syscalls: match (&self.kernel_syscalls, &earlier.kernel_syscalls) {
                (Some(now), Some(then)) => Some(now.since(then)),
                _ => None,
            },
            kernel_unavailable_reason: self.kernel_unavailable_reason.clone(),
            uring_ops: match (&self.uring_ops, &earlier.uring_ops) {
                (Some(now), Some(then)) => Some(now.since(then)),
                _ => None,
            },
        }
    }
}

/// Why a report was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// Answer to a `snapshot` control command; the server keeps running.
    Snapshot,
    /// Printed once at exit.
    Final,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    pub report: ReportKind,
    pub variant: crate::server::VariantName,
    pub protocol: crate::protocol::Protocol,
    /// Whether this build counts syscalls (`count-syscalls` feature).
    pub syscall_counting: bool,
    /// Server process id.
    pub pid: u32,
    /// Sum over `threads`.
    pub total: ThreadReport,
    /// Every serving thread of every process, the processes one after the
    /// other in the order of `processes`; `thread_index` counts across them.
    pub threads: Vec<ThreadReport>,
    /// The server's processes: one, or P with `serve --processes P`, the
    /// first being the one that answers the control protocol.
    #[serde(default)]
    pub processes: Vec<ProcessPart>,
}

/// One process of a server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessPart {
    pub pid: u32,
    /// Its serving threads: the next `threads` entries of
    /// [`ServerReport::threads`].
    pub threads: usize,
    /// Its resident memory when the report was taken (read by the process
    /// itself; `None` where `/proc` could not be read).
    pub memory: Option<ProcessMemory>,
    /// The CPUs it may run on when the report was taken (its affinity, as
    /// pinning left it); `None` where `/proc` could not say, and in reports
    /// written before it was recorded.
    #[serde(default)]
    pub cpus_allowed: Option<Vec<usize>>,
}

impl ServerReport {
    pub fn new(
        report: ReportKind,
        variant: crate::server::VariantName,
        protocol: crate::protocol::Protocol,
        threads: Vec<ThreadReport>,
    ) -> ServerReport {
        let mut total = ThreadReport::default();
        let mut kernel = Some(KernelSyscallCounts::default());
        for t in &threads {
            total.syscalls.add(&t.syscalls);
            total.counters.add(&t.counters);
            total.usage.add(&t.usage);
            kernel = match (kernel, &t.kernel_syscalls) {
                (Some(mut sum), Some(k)) => {
                    sum.add(k);
                    Some(sum)
                }
                _ => None,
            };
            if let Some(ops) = &t.uring_ops {
                total
                    .uring_ops
                    .get_or_insert_with(Default::default)
                    .add(ops);
            }
            if total.kernel_unavailable_reason.is_none() {
                total.kernel_unavailable_reason = t.kernel_unavailable_reason.clone();
            }
        }
        total.kernel_syscalls = kernel.filter(|_| !threads.is_empty());
        total.tid = 0;
        total.thread_index = threads.len();
        let pid = std::process::id();
        ServerReport {
            report,
            variant,
            protocol,
            syscall_counting: crate::sys::counters::counting(),
            pid,
            total,
            processes: vec![ProcessPart {
                pid,
                threads: threads.len(),
                memory: None,
                cpus_allowed: None,
            }],
            threads,
        }
    }

    /// This process's report with its resident memory and the CPUs it may
    /// run on read now.
    pub fn with_own_memory_and_cpus(mut self) -> ServerReport {
        let memory = crate::sys::memory::read_process_memory(std::process::id()).ok();
        let cpus = crate::sys::cpus::own_allowed_cpus();
        for part in &mut self.processes {
            part.memory = memory;
            part.cpus_allowed = cpus.clone();
        }
        self
    }

    /// How many CPUs the server's processes may run on together (the
    /// union of their affinities): `None` unless every process said.
    pub fn cpus_allowed_count(&self) -> Option<usize> {
        let mut cpus = std::collections::BTreeSet::<usize>::new();
        for part in &self.processes {
            cpus.extend(part.cpus_allowed.as_ref()?);
        }
        (!cpus.is_empty()).then_some(cpus.len())
    }

    /// One report for a multi-process server: this process's `own` and
    /// its workers' reports, their threads renumbered one after the other
    /// so that every consumer sees one server with P × T threads.
    pub fn gather(own: ServerReport, workers: Vec<ServerReport>) -> ServerReport {
        let mut threads = own.threads;
        let mut processes = own.processes;
        let mut syscall_counting = own.syscall_counting;
        for worker in workers {
            syscall_counting &= worker.syscall_counting;
            threads.extend(worker.threads);
            processes.extend(worker.processes);
        }
        for (index, thread) in threads.iter_mut().enumerate() {
            thread.thread_index = index;
        }
        let mut out = ServerReport::new(own.report, own.variant, own.protocol, threads);
        out.pid = own.pid;
        out.syscall_counting = syscall_counting;
        out.processes = processes;
        out
    }

    /// Resident memory summed over the processes, when every one was read.
    pub fn memory(&self) -> Option<ProcessMemory> {
        let mut total = ProcessMemory::default();
        for part in &self.processes {
            total.add(part.memory.as_ref()?);
        }
        (!self.processes.is_empty()).then_some(total)
    }

    /// The change from `earlier` (same server) to `self`: what happened in a
    /// measured window between two snapshots.
    pub fn since(&self, earlier: &ServerReport) -> ServerReport {
        let threads = self
            .threads
            .iter()
            .zip(&earlier.threads)
            .map(|(now, then)| now.since(then))
            .collect();
        let mut out = ServerReport::new(self.report, self.variant.clone(), self.protocol, threads);
        out.pid = self.pid;
        out.processes = self.processes.clone();
        // The server's own switch, not that of the process computing this.
        out.syscall_counting = self.syscall_counting && earlier.syscall_counting;
        out
    }
}
