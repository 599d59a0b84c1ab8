//! Listen-queue and SYN drops from `/proc/net/netstat` (the `TcpExt:`
//! header and value lines), read at both ends of a connection ramp.

/// The three counters that say a connection burst was dropped: the accept
/// queue was full (`ListenOverflows`), a SYN was dropped for any listen
/// reason (`ListenDrops`), or the SYN queue was full (`TCPReqQFullDrop`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenDrops {
    pub listen_overflows: u64,
    pub listen_drops: u64,
    pub req_queue_full_drops: u64,
}

impl ListenDrops {
    /// This machine's counters; `None` when the file is unreadable.
    pub fn now() -> Option<ListenDrops> {
        parse(&std::fs::read_to_string("/proc/net/netstat").ok()?)
    }

    /// What happened between `self` and `later`.
    pub fn until(&self, later: &ListenDrops) -> ListenDrops {
        ListenDrops {
            listen_overflows: later.listen_overflows.saturating_sub(self.listen_overflows),
            listen_drops: later.listen_drops.saturating_sub(self.listen_drops),
            req_queue_full_drops: later
                .req_queue_full_drops
                .saturating_sub(self.req_queue_full_drops),
        }
    }
}

/// The counters from the text of `/proc/net/netstat`; `None` without a
/// `TcpExt:` pair of lines. A counter the kernel lacks reads as 0.
pub fn parse(text: &str) -> Option<ListenDrops> {
    let mut lines = text.lines().filter(|line| line.starts_with("TcpExt:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().skip(1).collect();
    let values: Vec<u64> = lines
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let get = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| values.get(i).copied())
            .unwrap_or(0)
    };
    Some(ListenDrops {
        listen_overflows: get("ListenOverflows"),
        listen_drops: get("ListenDrops"),
        req_queue_full_drops: get("TCPReqQFullDrop"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_come_from_the_tcpext_lines_by_name() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPReqQFullDrop\n\
                    TcpExt: 1 20 25 3\n\
                    IpExt: InNoRoutes\nIpExt: 0\n";
        let counters = parse(text).unwrap();
        assert_eq!(
            counters,
            ListenDrops {
                listen_overflows: 20,
                listen_drops: 25,
                req_queue_full_drops: 3
            }
        );
        let later = ListenDrops {
            listen_overflows: 26,
            ..counters
        };
        assert_eq!(counters.until(&later).listen_overflows, 6);
        assert_eq!(counters.until(&later).listen_drops, 0);
        assert_eq!(parse("IpExt: a\nIpExt: 1\n"), None);
    }
}
