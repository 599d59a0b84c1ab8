//! What `conformance/framing.rs` needs from its `crate::case`, for a peer:
//! its cases talk to the server only over the wire (address, protocol), so
//! they run here unchanged. The outcome they report is what
//! `epoll-bench serve`'s counters are checked against; a peer has no
//! counters, so the runner checks its fds instead and ignores the rest.

use std::net::{Shutdown, SocketAddr, TcpStream};

use epoll_bench::protocol::Protocol;

use crate::support::expect_eof;

/// Kept field for field with the conformance suite's `Outcome`, which
/// framing.rs builds.
#[allow(dead_code)]
pub(crate) struct Outcome {
    pub(crate) connections: u64,
    pub(crate) errors: ExpectedErrors,
}

#[allow(dead_code)]
pub(crate) enum ExpectedErrors {
    None,
    Protocol(u64),
}

impl Outcome {
    pub(crate) fn clean(connections: u64) -> Outcome {
        Outcome {
            connections,
            errors: ExpectedErrors::None,
        }
    }
}

pub(crate) struct Ctx {
    pub(crate) protocol: Protocol,
    pub(crate) addr: SocketAddr,
    pub(crate) label: String,
}

impl Ctx {
    pub(crate) fn what(&self, detail: &str) -> String {
        format!("{}: {detail}", self.label)
    }
}

/// Clean client close: half-close, then the peer must answer with EOF.
pub(crate) fn close_cleanly(mut stream: TcpStream, what: &str) {
    stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
    expect_eof(&mut stream, what);
}
