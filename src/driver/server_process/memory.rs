//! Resident memory of a server process, read from `/proc/<pid>/status`:
//! what a local server process costs, beside its counters.

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
}
