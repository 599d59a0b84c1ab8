//! What connections cost the kernel, and the driver's own memory, read at
//! the two ends of a connection ramp: `/proc/net/sockstat` (the TCP
//! memory pages the kernel accounts to sockets' buffers) and
//! `/proc/slabinfo` (the object caches a socket, its inode, its file and
//! its epoll item come from). Both are machine-wide: on loopback they hold
//! both ends of every connection, the driver's socket and the server's.

use serde::{Deserialize, Serialize};

use crate::sys::memory::{ProcessMemory, read_tree_memory};

/// The slab caches behind one TCP connection in a socket-per-connection
/// server: the socket (`TCP`, `TCPv6`), its inode (`sock_inode_cache`),
/// its open file (`filp`) and name (`dentry`), its epoll registration
/// (`eventpoll_epi`, `eventpoll_pwq`). Whichever of them the kernel lists.
pub const CONNECTION_SLAB_CACHES: [&str; 7] = [
    "TCP",
    "TCPv6",
    "sock_inode_cache",
    "filp",
    "dentry",
    "eventpoll_epi",
    "eventpoll_pwq",
];

/// One slab cache at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlabReading {
    pub name: String,
    pub active_objects: u64,
    pub object_size_bytes: u64,
}

/// Memory readings at one end of a connection ramp; each source says why
/// it could not be read.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryProbe {
    /// The driver: this process and its children.
    pub driver: Result<ProcessMemory, String>,
    /// `TCP ... mem N` of `/proc/net/sockstat`, in pages.
    pub tcp_mem_pages: Result<u64, String>,
    pub slabs: Result<Vec<SlabReading>, String>,
}

impl MemoryProbe {
    pub fn read() -> MemoryProbe {
        MemoryProbe {
            driver: read_tree_memory(std::process::id())
                .map(|(memory, _)| memory)
                .map_err(|e| format!("/proc/self/status: {e}")),
            tcp_mem_pages: std::fs::read_to_string("/proc/net/sockstat")
                .map_err(|e| format!("/proc/net/sockstat: {e}"))
                .and_then(|text| parse_sockstat_tcp_mem_pages(&text)),
            slabs: std::fs::read_to_string("/proc/slabinfo")
                .map_err(|e| format!("/proc/slabinfo: {e}"))
                .and_then(|text| parse_slabinfo(&text, &CONNECTION_SLAB_CACHES)),
        }
    }
}

/// The `mem` field of the `TCP:` line.
pub fn parse_sockstat_tcp_mem_pages(text: &str) -> Result<u64, String> {
    let line = text
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .ok_or("/proc/net/sockstat has no `TCP:` line")?;
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|pair| pair[0] == "mem")
        .and_then(|pair| pair[1].parse().ok())
        .ok_or_else(|| format!("/proc/net/sockstat: no `mem N` in `{line}`"))
}

/// The caches named in `wanted` that `/proc/slabinfo` (version 2.x) lists:
/// `name active_objs num_objs objsize ...`.
pub fn parse_slabinfo(text: &str, wanted: &[&str]) -> Result<Vec<SlabReading>, String> {
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default();
    if !version.starts_with("slabinfo - version: 2.") {
        return Err(format!("/proc/slabinfo: unknown format `{version}`"));
    }
    let mut found = Vec::new();
    for line in lines.filter(|l| !l.starts_with('#')) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(&name) = words.first() else { continue };
        if !wanted.contains(&name) {
            continue;
        }
        let field = |i: usize| -> Result<u64, String> {
            words
                .get(i)
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| format!("/proc/slabinfo: cannot read line `{line}`"))
        };
        found.push(SlabReading {
            name: name.to_string(),
            active_objects: field(1)?,
            object_size_bytes: field(3)?,
        });
    }
    if found.is_empty() {
        return Err(format!(
            "/proc/slabinfo lists none of {} (merged into other caches?)",
            wanted.join(", ")
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockstat_gives_the_tcp_memory_pages() {
        let text =
            "sockets: used 15\nTCP: inuse 1 orphan 0 tw 2 alloc 1 mem 379\nUDP: inuse 0 mem 7\n";
        assert_eq!(parse_sockstat_tcp_mem_pages(text), Ok(379));
        let err = parse_sockstat_tcp_mem_pages("UDP: inuse 0 mem 7\n").unwrap_err();
        assert!(err.contains("no `TCP:` line"), "{err}");
        let err = parse_sockstat_tcp_mem_pages("TCP: inuse 1 mem\n").unwrap_err();
        assert!(err.contains("no `mem N`"), "{err}");
    }

    #[test]
    fn slabinfo_gives_the_connection_caches_it_lists() {
        let text = "slabinfo - version: 2.1\n\
            # name <active_objs> <num_objs> <objsize> ...\n\
            TCP 118 130 2368 13 8 : tunables 0 0 0 : slabdata 10 10 0\n\
            TCP_other 5 5 100 1 1 : tunables 0 0 0 : slabdata 1 1 0\n\
            filp 1397 1500 192 21 1 : tunables 0 0 0 : slabdata 70 70 0\n";
        let got = parse_slabinfo(text, &CONNECTION_SLAB_CACHES).unwrap();
        let names: Vec<&str> = got.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["TCP", "filp"]);
        assert_eq!(got[0].active_objects, 118);
        assert_eq!(got[0].object_size_bytes, 2368);
        let err = parse_slabinfo("slabinfo - version: 1.0\n", &["TCP"]).unwrap_err();
        assert!(err.contains("unknown format"), "{err}");
        let err = parse_slabinfo("slabinfo - version: 2.1\nTCP x\n", &["TCP"]).unwrap_err();
        assert!(err.contains("cannot read line"), "{err}");
    }
}
