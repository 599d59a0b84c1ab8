//! Servers the driver measures: the lifecycle of one `epoll-bench serve`
//! child ([`process`]), the client half of the control line protocol spoken
//! to a server, over the child's stdin/stdout or over TCP to a server started
//! elsewhere with `--control ADDR` ([`control_client`]), and the measured
//! window built from two snapshots ([`window`]).
//!
//! Why it is shaped this way:
//! - The server's counters live in the server process; the driver never reads
//!   them directly, so driver and server counters cannot mix.
//! - Stdout is read by a helper thread that forwards lines over a channel, so
//!   that every wait (ready line, snapshot answer, final report) is bounded by
//!   a timeout instead of blocking forever on a hung server.
//! - Stopping uses the server's `stop` control line, which the server contract
//!   defines as equivalent to SIGTERM; this keeps signal syscalls out of code
//!   outside `src/sys`. If the server does not exit in time it is killed.
//!   `Drop` kills the child too, so no error path leaves a server running.
//! - CPU pinning is the server's own `--cpus LIST`: it pins its main thread
//!   before starting the serving threads, which inherit the mask.

use std::io;

use crate::protocol::control::Command;
use crate::server::report::ServerReport;

pub mod control_client;
pub mod external;
pub mod external_process;
pub mod process;
pub mod window;

pub use crate::sys::memory::{ProcessMemory, read_process_memory, read_tree_memory};
pub use control_client::{RemoteControl, SNAPSHOT_TIMEOUT};
pub use process::{
    DEFAULT_READY_TIMEOUT, STOP_TIMEOUT, ServerProcess, ServerSpec, cpu_list, parse_listening_line,
};
pub use window::{ServerWindow, SnapshotWindow, WindowError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot start server `{program}`: {source}")]
    Spawn { program: String, source: io::Error },
    #[error(
        "server {variant} did not print `listening on IP:PORT` within {seconds} s{stderr}",
        stderr = stderr_suffix(stderr)
    )]
    NotReady {
        variant: String,
        seconds: f64,
        stderr: String,
    },
    #[error(
        "server {variant} printed `{line}` where `listening on IP:PORT` was expected{stderr}",
        stderr = stderr_suffix(stderr)
    )]
    BadListeningLine {
        variant: String,
        line: String,
        stderr: String,
    },
    #[error("server {variant} died ({status}){stderr}", stderr = stderr_suffix(stderr))]
    Died {
        variant: String,
        status: String,
        stderr: String,
    },
    #[error(
        "server {variant} did not answer `{}` within {seconds} s",
        Command::Snapshot
    )]
    SnapshotTimeout { variant: String, seconds: f64 },
    #[error("server {variant} sent a line that is not a server report ({reason}): `{line}`")]
    BadReport {
        variant: String,
        line: String,
        reason: String,
    },
    #[error(
        "server {variant} did not exit within {seconds} s of `{}`; killed it",
        Command::Stop
    )]
    StopTimeout { variant: String, seconds: f64 },
    #[error("external server {name} exited before accepting connections ({status}){stderr}", stderr = stderr_suffix(stderr))]
    ExitedBeforeAccepting {
        name: String,
        status: String,
        stderr: String,
    },
    #[error(
        "external server {name} did not accept connections on {addr} (nor print `listening on IP:PORT`) within {seconds} s (--ready-timeout){stderr}",
        stderr = stderr_suffix(stderr)
    )]
    NeverAccepted {
        name: String,
        addr: String,
        seconds: f64,
        stderr: String,
    },
    #[error("external server {name} {how} ({status}){stderr}", stderr = stderr_suffix(stderr))]
    UncleanExit {
        name: String,
        how: String,
        status: String,
        stderr: String,
    },
    #[error("external server {name} did not exit within {seconds} s of SIGTERM; killed it")]
    TermTimeout { name: String, seconds: f64 },
    #[error("control interface {addr}: {source}")]
    Control { addr: String, source: io::Error },
    #[error("I/O with server {variant}: {source}")]
    Io { variant: String, source: io::Error },
}

fn stderr_suffix(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("; its stderr ends with: {trimmed}")
    }
}

/// A server that can be asked for its counters.
pub trait ServerControl {
    /// Sends `snapshot` and returns the server's answer.
    fn snapshot(&mut self) -> Result<ServerReport, ServerError>;
    /// The server's resident memory now, where it can be read (a local child).
    fn memory(&self) -> Option<ProcessMemory>;
}
