//! Why a case could not be run (as opposed to what went wrong while it ran,
//! which is counted in the measurement).

use std::io;
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("case `{label}`: {reason}")]
    InvalidCase { label: String, reason: String },
    #[error(
        "{connections} connections need about {needed} file descriptors, but the hard \
         RLIMIT_NOFILE is {hard_limit}: raise it (ulimit -Hn, /etc/security/limits.conf) \
         or ask for fewer connections"
    )]
    FdLimit {
        connections: u64,
        needed: u64,
        hard_limit: u64,
    },
    #[error("cannot connect to {target}: opened {opened} of {requested} connections: {source}")]
    Connect {
        target: SocketAddr,
        opened: u64,
        requested: u64,
        #[source]
        source: io::Error,
    },
    #[error("cannot pin driver thread {thread} to CPU {cpu}: {source}")]
    Pin {
        thread: usize,
        cpu: usize,
        #[source]
        source: io::Error,
    },
    /// The trace file of a trace shape could not be read or parsed (the
    /// message names file, line and field).
    #[error(transparent)]
    Trace(#[from] crate::driver::trace::TraceError),
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    /// No layout of processes and source addresses holds the connections.
    #[error("cannot hold the connections: {0}")]
    Scale(#[from] crate::driver::scale::plan::ScaleRefusal),
    #[error("driver thread {thread} panicked")]
    WorkerPanicked { thread: usize },
}
