//! Memory per connection, whole: over the ramp of an `idle_active` case
//! (before any connection, and at the end of the measured window with
//! every idle and active connection open), user space for the server (all
//! its processes) and for the driver, and the kernel's part (socket buffer
//! pages, slab objects). A source that cannot be read says why.

use serde::{Deserialize, Serialize};

use super::spread::spread;
use super::{Repetition, Spread, Status};
use crate::metrics::kernel_memory::MemoryProbe;
use crate::sys::memory::ProcessMemory;

/// What the kernel figures cover: they are read machine-wide.
pub const KERNEL_SCOPE: &str = "machine-wide, so on loopback both ends of each connection (the server's socket and the driver's)";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionMemory {
    /// Connections opened over the ramp (idle plus active).
    pub connections: u64,
    /// Server processes whose resident memory was summed.
    pub server_processes: usize,
    /// Server `VmRSS` (summed over its processes) at the window's end minus
    /// before the first connection, per connection.
    pub server_rss_per_connection_bytes: f64,
    /// The same for the driver (this process and its children).
    pub driver_rss_per_connection_bytes: Option<f64>,
    pub driver_rss_unavailable_reason: Option<String>,
    /// Growth of `/proc/net/sockstat`'s TCP `mem` pages, per connection.
    pub kernel_tcp_mem_per_connection_bytes: Option<f64>,
    pub kernel_tcp_mem_unavailable_reason: Option<String>,
    /// Growth of the connection slab caches (active objects × object
    /// size), summed, per connection.
    pub kernel_slab_per_connection_bytes: Option<f64>,
    pub kernel_slab_caches: Vec<SlabGrowth>,
    pub kernel_slab_unavailable_reason: Option<String>,
    /// What the kernel figures cover ([`KERNEL_SCOPE`]).
    pub kernel_scope: String,
}

/// One slab cache's growth over the ramp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlabGrowth {
    pub name: String,
    pub object_size_bytes: u64,
    /// Active objects at the end minus before (negative: the cache shrank,
    /// e.g. other activity on the machine freed objects).
    pub objects_delta: i64,
    pub per_connection_bytes: f64,
}

/// Readings at one end of the ramp.
pub struct RampEnd<'a> {
    pub server: ProcessMemory,
    pub probe: &'a MemoryProbe,
}

impl ConnectionMemory {
    pub fn over_ramp(
        connections: u64,
        server_processes: usize,
        before: RampEnd,
        after: RampEnd,
        page_size_bytes: u64,
    ) -> ConnectionMemory {
        let n = connections.max(1) as f64;
        let per = |before: u64, after: u64| (after as f64 - before as f64) / n;
        let both = |a: &Result<u64, String>, b: &Result<u64, String>| match (a, b) {
            (Ok(a), Ok(b)) => Ok((*a, *b)),
            (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        };
        let driver = match (&before.probe.driver, &after.probe.driver) {
            (Ok(a), Ok(b)) => Ok(per(a.rss_bytes, b.rss_bytes)),
            (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        };
        let tcp = both(&before.probe.tcp_mem_pages, &after.probe.tcp_mem_pages)
            .map(|(a, b)| per(a * page_size_bytes, b * page_size_bytes));
        let slabs = match (&before.probe.slabs, &after.probe.slabs) {
            (Ok(a), Ok(b)) => Ok(b
                .iter()
                .map(|end| {
                    let start = a
                        .iter()
                        .find(|s| s.name == end.name)
                        .map_or(0, |s| s.active_objects);
                    let objects_delta = end.active_objects as i64 - start as i64;
                    SlabGrowth {
                        name: end.name.clone(),
                        object_size_bytes: end.object_size_bytes,
                        objects_delta,
                        per_connection_bytes: (objects_delta * end.object_size_bytes as i64) as f64
                            / n,
                    }
                })
                .collect::<Vec<_>>()),
            (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        };
        let (driver_value, driver_reason) = split(driver);
        let (tcp_value, tcp_reason) = split(tcp);
        let (caches, slab_reason) = split(slabs);
        ConnectionMemory {
            connections,
            server_processes,
            server_rss_per_connection_bytes: per(before.server.rss_bytes, after.server.rss_bytes),
            driver_rss_per_connection_bytes: driver_value,
            driver_rss_unavailable_reason: driver_reason,
            kernel_tcp_mem_per_connection_bytes: tcp_value,
            kernel_tcp_mem_unavailable_reason: tcp_reason,
            kernel_slab_per_connection_bytes: caches
                .as_ref()
                .map(|c| c.iter().map(|s| s.per_connection_bytes).sum()),
            kernel_slab_caches: caches.unwrap_or_default(),
            kernel_slab_unavailable_reason: slab_reason,
            kernel_scope: KERNEL_SCOPE.to_string(),
        }
    }

    /// The `summary.md` line: every figure, or `unavailable: why`.
    pub fn summary_line(&self) -> String {
        let kib = |bytes: f64| format!("{:.2} KiB", bytes / 1024.0);
        let figure = |value: Option<f64>, reason: &Option<String>| match (value, reason) {
            (Some(v), _) => kib(v),
            (None, Some(why)) => format!("unavailable: {why}"),
            (None, None) => "unavailable".to_string(),
        };
        format!(
            "memory per connection over {} connections: server user space (RSS, {} process{}) {}; driver user space (RSS) {}; kernel TCP buffers (sockstat) {}; kernel slab objects {}{} ({})",
            self.connections,
            self.server_processes,
            if self.server_processes == 1 { "" } else { "es" },
            kib(self.server_rss_per_connection_bytes),
            figure(
                self.driver_rss_per_connection_bytes,
                &self.driver_rss_unavailable_reason
            ),
            figure(
                self.kernel_tcp_mem_per_connection_bytes,
                &self.kernel_tcp_mem_unavailable_reason
            ),
            figure(
                self.kernel_slab_per_connection_bytes,
                &self.kernel_slab_unavailable_reason
            ),
            slab_detail(&self.kernel_slab_caches),
            self.kernel_scope,
        )
    }
}

/// The whole memory per connection of the first passed repetition that
/// has one, with its index.
pub fn first_passed(repetitions: &[Repetition]) -> Option<(u32, &ConnectionMemory)> {
    repetitions
        .iter()
        .filter(|r| r.status == Status::Passed)
        .find_map(|r| Some((r.index, r.server_memory.as_ref()?.whole.as_ref()?)))
}

/// Memory whole of every repetition, when each has it.
fn wholes(repetitions: &[Repetition]) -> Option<Vec<&ConnectionMemory>> {
    repetitions
        .iter()
        .map(|r| r.server_memory.as_ref()?.whole.as_ref())
        .collect::<Option<Vec<_>>>()
        .filter(|w| !w.is_empty())
}

/// Server RSS per connection over `repetitions`, when each measured it.
pub fn server_rss_spread(repetitions: &[Repetition]) -> Option<Spread> {
    let values: Vec<f64> = wholes(repetitions)?
        .iter()
        .map(|m| m.server_rss_per_connection_bytes)
        .collect();
    Some(spread(&values))
}

/// Kernel TCP buffers plus slab per connection over `repetitions`, when
/// each read both.
pub fn kernel_spread(repetitions: &[Repetition]) -> Option<Spread> {
    let values: Option<Vec<f64>> = wholes(repetitions)?
        .iter()
        .map(|m| Some(m.kernel_tcp_mem_per_connection_bytes? + m.kernel_slab_per_connection_bytes?))
        .collect();
    Some(spread(&values?))
}

fn slab_detail(caches: &[SlabGrowth]) -> String {
    if caches.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = caches
        .iter()
        .map(|c| format!("{} {:.0} B", c.name, c.per_connection_bytes))
        .collect();
    format!(" [{}]", parts.join(", "))
}

fn split<T>(value: Result<T, String>) -> (Option<T>, Option<String>) {
    match value {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::kernel_memory::SlabReading;

    fn probe(driver_rss: u64, tcp_pages: u64, tcp_objects: u64) -> MemoryProbe {
        MemoryProbe {
            driver: Ok(ProcessMemory {
                rss_bytes: driver_rss,
                peak_rss_bytes: driver_rss,
            }),
            tcp_mem_pages: Ok(tcp_pages),
            slabs: Ok(vec![SlabReading {
                name: "TCP".into(),
                active_objects: tcp_objects,
                object_size_bytes: 2000,
            }]),
        }
    }

    fn server(rss: u64) -> ProcessMemory {
        ProcessMemory {
            rss_bytes: rss,
            peak_rss_bytes: rss,
        }
    }

    #[test]
    fn growth_over_the_ramp_is_shared_by_the_connections() {
        let (a, b) = (probe(1 << 20, 10, 100), probe(3 << 20, 110, 300));
        let m = ConnectionMemory::over_ramp(
            100,
            2,
            RampEnd {
                server: server(1 << 20),
                probe: &a,
            },
            RampEnd {
                server: server(2 << 20),
                probe: &b,
            },
            4096,
        );
        assert_eq!(m.server_rss_per_connection_bytes, 10485.76);
        assert_eq!(m.driver_rss_per_connection_bytes, Some(20971.52));
        assert_eq!(m.kernel_tcp_mem_per_connection_bytes, Some(4096.0));
        assert_eq!(m.kernel_slab_per_connection_bytes, Some(4000.0));
        assert_eq!(m.kernel_slab_caches[0].objects_delta, 200);
        let line = m.summary_line();
        assert!(
            line.contains("2 processes") && line.contains("TCP 4000 B"),
            "{line}"
        );
    }

    #[test]
    fn an_unreadable_source_says_why() {
        let a = probe(1 << 20, 10, 100);
        let mut b = probe(1 << 20, 10, 100);
        b.slabs = Err("/proc/slabinfo: Permission denied".into());
        let m = ConnectionMemory::over_ramp(
            10,
            1,
            RampEnd {
                server: server(0),
                probe: &a,
            },
            RampEnd {
                server: server(0),
                probe: &b,
            },
            4096,
        );
        assert_eq!(m.kernel_slab_per_connection_bytes, None);
        assert!(m.kernel_slab_caches.is_empty());
        let line = m.summary_line();
        assert!(
            line.contains("kernel slab objects unavailable: /proc/slabinfo: Permission denied"),
            "{line}"
        );
    }
}
