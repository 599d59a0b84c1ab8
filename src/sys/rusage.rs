//! Per-thread CPU time and context switches.

use std::io;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadUsage {
    pub cpu_user_seconds: f64,
    pub cpu_system_seconds: f64,
    pub voluntary_context_switches: u64,
    pub involuntary_context_switches: u64,
}

impl ThreadUsage {
    pub fn add(&mut self, other: &ThreadUsage) {
        self.cpu_user_seconds += other.cpu_user_seconds;
        self.cpu_system_seconds += other.cpu_system_seconds;
        self.voluntary_context_switches += other.voluntary_context_switches;
        self.involuntary_context_switches += other.involuntary_context_switches;
    }

    pub fn since(&self, earlier: &ThreadUsage) -> ThreadUsage {
        ThreadUsage {
            cpu_user_seconds: (self.cpu_user_seconds - earlier.cpu_user_seconds).max(0.0),
            cpu_system_seconds: (self.cpu_system_seconds - earlier.cpu_system_seconds).max(0.0),
            voluntary_context_switches: self
                .voluntary_context_switches
                .saturating_sub(earlier.voluntary_context_switches),
            involuntary_context_switches: self
                .involuntary_context_switches
                .saturating_sub(earlier.involuntary_context_switches),
        }
    }
}

/// `getrusage(RUSAGE_THREAD)` for the calling thread.
pub fn this_thread() -> io::Result<ThreadUsage> {
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is writable and outlives the call.
    syscall!(Getrusage, getrusage(libc::RUSAGE_THREAD, &mut usage))?;
    let seconds = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Ok(ThreadUsage {
        cpu_user_seconds: seconds(usage.ru_utime),
        cpu_system_seconds: seconds(usage.ru_stime),
        voluntary_context_switches: usage.ru_nvcsw as u64,
        involuntary_context_switches: usage.ru_nivcsw as u64,
    })
}
