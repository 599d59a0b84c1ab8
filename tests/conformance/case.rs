//! What a conformance case gets (the server and its labels) and what it
//! reports back (connections opened, errors the server must have counted).

use std::net::{Shutdown, SocketAddr, TcpStream};

use epoll_bench::protocol::Protocol;
use epoll_bench::server::Variant;

use crate::support::*;

/// What a case did, so the runner can check the server's counters.
pub(crate) struct Outcome {
    /// Connections the case opened (all closed by the time it returns).
    pub(crate) connections: u64,
    pub(crate) errors: ExpectedErrors,
}

pub(crate) enum ExpectedErrors {
    None,
    /// Exactly this many protocol errors, no connection errors.
    Protocol(u64),
    /// This many connections closed for an error of either kind (a reset
    /// may surface as a socket error or as EOF inside a frame).
    ProtocolOrConnection(u64),
}

impl Outcome {
    pub(crate) fn clean(connections: u64) -> Outcome {
        Outcome {
            connections,
            errors: ExpectedErrors::None,
        }
    }
}

pub(crate) struct Ctx<'a> {
    pub(crate) server: &'a ServerProcess,
    pub(crate) variant: Variant,
    pub(crate) protocol: Protocol,
    pub(crate) addr: SocketAddr,
    pub(crate) label: String,
}

impl Ctx<'_> {
    pub(crate) fn what(&self, detail: &str) -> String {
        format!("{}: {detail}", self.label)
    }
}

pub(crate) type Case = fn(&Ctx) -> Outcome;

/// Clean client close: half-close, then the server must answer with EOF.
pub(crate) fn close_cleanly(mut stream: TcpStream, what: &str) {
    stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
    expect_eof(&mut stream, what);
}
