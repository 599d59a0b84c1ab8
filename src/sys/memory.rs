//! Resident memory of a process, read from `/proc/<pid>/status`: what a
//! server (or driver) process costs, beside its counters. A multi-process
//! server (`serve --processes P`) is the parent and the workers it
//! started, so [`read_tree_memory`] sums a process and its children.

use std::io;

use serde::{Deserialize, Serialize};

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessMemory {
    /// `VmRSS`: resident now.
    pub rss_bytes: u64,
    /// `VmHWM`: the peak resident size since the process started.
    pub peak_rss_bytes: u64,
}

/// Reads `VmRSS` and `VmHWM` of process `pid`.
pub fn read_process_memory(pid: u32) -> io::Result<ProcessMemory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_process_memory(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status has no VmRSS/VmHWM lines"),
        )
    })
}

/// The memory of `pid` plus that of its direct children (a multi-process
/// server's workers), and how many processes that was. Children come from
/// `/proc/<pid>/task/<tid>/children` of every thread; one that exits
/// between listing and reading is skipped.
pub fn read_tree_memory(pid: u32) -> io::Result<(ProcessMemory, usize)> {
    let mut total = read_process_memory(pid)?;
    let mut processes = 1;
    for child in children_of(pid) {
        if let Ok(memory) = read_process_memory(child) {
            total.add(&memory);
            processes += 1;
        }
    }
    Ok((total, processes))
}

/// Direct children of `pid`; empty where the kernel does not list them.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children: Vec<u32> = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    children.sort_unstable();
    children.dedup();
    children
}

impl ProcessMemory {
    /// Sums two processes. The sum of peaks is an upper bound of the peak
    /// of the sum (the peaks may fall at different moments); over a ramp
    /// of idle connections, where memory only grows, the two agree.
    pub fn add(&mut self, other: &ProcessMemory) {
        self.rss_bytes += other.rss_bytes;
        self.peak_rss_bytes += other.peak_rss_bytes;
    }
}

/// The size of a memory page, the unit of `/proc/net/sockstat`'s `mem`.
pub fn page_size_bytes() -> u64 {
    // SAFETY: sysconf only reads a configuration value (glibc answers
    // _SC_PAGESIZE from the auxiliary vector, without a syscall).
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// Clock ticks per second, the unit of `/proc/stat`'s CPU times.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it takes no pointers.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

fn parse_process_memory(status: &str) -> Option<ProcessMemory> {
    let field_bytes = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let mut words = line[name.len()..].split_whitespace();
        let value: u64 = words.next()?.parse().ok()?;
        match words.next() {
            Some("kB") => Some(value * 1024),
            _ => None,
        }
    };
    Some(ProcessMemory {
        rss_bytes: field_bytes("VmRSS:")?,
        peak_rss_bytes: field_bytes("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_memory_parses_kib_fields() {
        let status = "Name:\tx\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(
            parse_process_memory(status),
            Some(ProcessMemory {
                rss_bytes: 1024 * 1024,
                peak_rss_bytes: 2048 * 1024
            })
        );
        assert_eq!(parse_process_memory("VmRSS:\t1 kB\n"), None);
        let own = read_process_memory(std::process::id()).unwrap();
        assert!(own.peak_rss_bytes >= own.rss_bytes && own.rss_bytes > 0);
    }

    #[test]
    fn a_tree_sums_the_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let listed = children_of(std::process::id()).contains(&child.id());
        let (tree, processes) = read_tree_memory(std::process::id()).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(listed, "the child is listed under this process");
        assert!(processes >= 2, "{processes}");
        assert!(tree.peak_rss_bytes >= tree.rss_bytes);
    }
}
