//! The servers under test: one epoll event loop ([`event_loop`]), generic
//! over the trigger mode ([`trigger`]) and the copy strategy ([`copy`]), and
//! the io_uring loop ([`uring`]), chosen by a [`Variant`]. [`Server`] runs N
//! independent loops, each with its own `SO_REUSEPORT` listener, epoll set
//! or ring, and counters.

#![forbid(unsafe_code)]

pub mod control;
pub mod copy;
pub mod event_loop;
pub mod frame;
pub mod report;
pub mod served_file;
mod tpc;
pub mod trigger;
mod turn;
pub mod uring;
pub mod variant;
pub mod workers;

use std::io;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use report::{ReportKind, ServerReport, ThreadReport};
pub use variant::{Variant, VariantName};

use crate::protocol::{DEFAULT_MAX_FRAME_BYTES, Protocol};
use crate::sys::{self, epoll};
use control::LoopControl;
use copy::ConnConfig;
pub use copy::pool::{BufferPolicy, DEFAULT_POOL_MAX_BUFFERS};
use event_loop::{LISTENER_TOKEN, LoopConfig, LoopResources, WAKER_TOKEN, Watermarks};
use served_file::ServedFile;
use variant::CopyMode;

pub const DEFAULT_BUFFER_SIZE_BYTES: usize = 64 << 10;
pub const DEFAULT_PIPE_SIZE_BYTES: usize = 64 << 10;
pub const DEFAULT_MAX_EVENTS: usize = 1024;
/// Per-connection buffer sizes a server accepts (rw, writev).
pub const BUFFER_SIZE_BYTES: RangeInclusive<usize> = 64..=1 << 30;
/// Pipe sizes a server asks F_SETPIPE_SZ for (splice): at least a page.
pub const PIPE_SIZE_BYTES: RangeInclusive<usize> = 4096..=1 << 30;

#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub variant: Variant,
    pub protocol: Protocol,
    pub listen: SocketAddr,
    pub threads: usize,
    pub max_frame_bytes: u32,
    pub buffer_size_bytes: usize,
    pub pipe_size_bytes: usize,
    pub max_events: usize,
    /// `--buffers`: see [`copy::pool`].
    pub buffers: BufferPolicy,
    /// `--pool-buffers`: buffers one thread's pool holds at most.
    pub pool_max_buffers: usize,
    /// Test-only: see [`LoopConfig::debug_uncounted_read`].
    pub debug_uncounted_read: bool,
    /// See [`LoopConfig::kernel_counters`].
    pub kernel_counters: bool,
    /// A worker of `serve --processes P`: its listeners join the port the
    /// first process already listens on, instead of refusing a port in use.
    pub join_port: bool,
}

impl ServerConfig {
    pub fn new(variant: Variant) -> ServerConfig {
        ServerConfig {
            variant,
            protocol: Protocol::Frame,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            threads: 1,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            buffer_size_bytes: DEFAULT_BUFFER_SIZE_BYTES,
            pipe_size_bytes: DEFAULT_PIPE_SIZE_BYTES,
            max_events: DEFAULT_MAX_EVENTS,
            buffers: BufferPolicy::PerConnection,
            pool_max_buffers: DEFAULT_POOL_MAX_BUFFERS,
            debug_uncounted_read: false,
            kernel_counters: false,
            join_port: false,
        }
    }

    /// The one rule for sizes and counts a server accepts, applied by
    /// [`Server::start`] and by `serve` to its flags (as a usage error) before
    /// anything starts. The message names the flag that sets each field.
    pub fn check(&self) -> Result<(), String> {
        if self.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        if !BUFFER_SIZE_BYTES.contains(&self.buffer_size_bytes) {
            return Err("--buffer-size must be between 64 B and 1 GiB".into());
        }
        if !PIPE_SIZE_BYTES.contains(&self.pipe_size_bytes) {
            return Err("--pipe-size must be between 4 KiB and 1 GiB".into());
        }
        if self.max_events == 0 {
            return Err("--max-events must be at least 1".into());
        }
        if self.pool_max_buffers == 0 {
            return Err("--pool-buffers must be at least 1".into());
        }
        if self.buffers == BufferPolicy::Pooled
            && let Some(why) = pooled_buffers_refusal(self.variant)
        {
            return Err(format!(
                "--buffers pooled: variant {} cannot use pooled buffers: {why}",
                self.variant
            ));
        }
        if self.buffers == BufferPolicy::Pooled && self.protocol == Protocol::File {
            return Err(
                "--buffers pooled applies to the frame and echo protocols: the file \
                 protocol's rw reads the file into a buffer of its own per connection"
                    .into(),
            );
        }
        Ok(())
    }

    fn loop_config(
        &self,
        thread_index: usize,
        served_file: Option<&Arc<ServedFile>>,
    ) -> LoopConfig {
        LoopConfig {
            conn: ConnConfig {
                protocol: self.protocol,
                max_frame_bytes: self.max_frame_bytes,
                buffer_size_bytes: self.buffer_size_bytes,
                pipe_size_bytes: self.pipe_size_bytes,
                served_file: served_file.cloned(),
            },
            max_events: self.max_events,
            // Pending output is bounded by the buffer (rw/writev) or pipe
            // (splice) plus response headers; pausing at the buffer size
            // keeps headers of tiny pipelined frames bounded too. The file
            // protocol's request side stops reading at the same high mark
            // (`copy::file::FileConn`).
            watermarks: Watermarks {
                high_bytes: self.buffer_size_bytes.max(self.pipe_size_bytes),
                low_bytes: self.buffer_size_bytes.max(self.pipe_size_bytes) / 2,
            },
            buffers: self.buffers,
            pool_max_buffers: self.pool_max_buffers,
            thread_index,
            debug_uncounted_read: self.debug_uncounted_read,
            kernel_counters: self.kernel_counters,
        }
    }
}

/// Why `variant` cannot take its buffers from a pool, or `None` when it
/// can: the policy is the epoll loop's ring, which only rw and writev use.
pub fn pooled_buffers_refusal(variant: Variant) -> Option<&'static str> {
    use variant::{Backend, CopyMode};
    match (variant.backend, variant.copy) {
        (Backend::Epoll(_), CopyMode::ReadWrite | CopyMode::Writev) => None,
        (Backend::Epoll(_), CopyMode::Splice) => Some(
            "its bytes wait in a per-connection pipe, not in a user buffer, and a pipe cannot be \
             lent to another connection while it holds bytes",
        ),
        (Backend::Epoll(_), CopyMode::Vmsplice) => Some(
            "its request bytes go into fresh mappings that are unmapped once spliced and never \
             written again, so there is no buffer to lend out",
        ),
        (Backend::Epoll(_), CopyMode::Mmap | CopyMode::Sendfile) => Some(
            "it serves the file protocol only and holds no user buffer (the payload comes from \
             the served file)",
        ),
        (Backend::Epoll(_), CopyMode::Zerocopy) => Some(
            "its ring is held until the kernel's send completions arrive; pooling it is not \
             implemented yet",
        ),
        (Backend::Uring | Backend::UringMultishot, _) => Some(
            "io_uring reads into buffers the kernel holds while a read is in flight (multishot: \
             its own provided-buffer ring), which a per-thread pool taken before each read \
             cannot lend out",
        ),
        (Backend::ThreadPerConnection, _) => Some(
            "each connection's thread blocks in read() on its own buffer, so there is no idle \
             moment at which to return it",
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("cannot start serving thread {thread_index}: {source}")]
    Start {
        thread_index: usize,
        source: io::Error,
    },
    #[error("serving thread {thread_index} failed: {source}")]
    Thread {
        thread_index: usize,
        source: io::Error,
    },
    #[error("serving thread {thread_index} panicked")]
    Panicked { thread_index: usize },
    #[error("invalid server settings: {0}")]
    Config(String),
    #[error("cannot create the served file for --protocol file: {0}")]
    ServedFile(io::Error),
    #[error("variant {variant} is unavailable on this machine: {reason}")]
    Unavailable { variant: Variant, reason: String },
}

struct LoopHandle {
    control: Arc<LoopControl>,
    thread: JoinHandle<io::Result<ThreadReport>>,
}

/// A running server: its loops serve until [`Server::shutdown`].
pub struct Server {
    config: ServerConfig,
    local_addr: SocketAddr,
    loops: Vec<LoopHandle>,
}

/// How long a snapshot may take before the thread is declared stuck.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(5);

impl Server {
    /// Binds every listener and starts the serving threads. All set-up
    /// errors surface here, before anything is reported as listening.
    pub fn start(config: ServerConfig) -> Result<Server, ServerError> {
        config.check().map_err(ServerError::Config)?;
        if !config.variant.serves(config.protocol) {
            return Err(ServerError::Config(format!(
                "variant {} does not serve --protocol {}",
                config.variant,
                config.protocol.name()
            )));
        }
        if let Some(reason) = config.variant.unavailable_reason() {
            return Err(ServerError::Unavailable {
                variant: config.variant,
                reason,
            });
        }
        if !config.join_port {
            sys::socket::ensure_port_free(config.listen).map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
        }
        let mut local_addr = config.listen;
        let mut prepared = Vec::with_capacity(config.threads);
        for thread_index in 0..config.threads {
            // The first bind may pick a port; the others join it.
            let (listener, bound) =
                sys::socket::listen_reuseport(local_addr).map_err(|source| {
                    ServerError::Listen {
                        addr: local_addr,
                        source,
                    }
                })?;
            local_addr = bound;
            let start_error = |source| ServerError::Start {
                thread_index,
                source,
            };
            let epoll = epoll::Epoll::new().map_err(start_error)?;
            let control = Arc::new(LoopControl::new().map_err(start_error)?);
            epoll
                .add(listener.as_fd(), epoll::IN, LISTENER_TOKEN)
                .map_err(start_error)?;
            epoll
                .add(control.waker_fd(), epoll::IN, WAKER_TOKEN)
                .map_err(start_error)?;
            prepared.push((
                thread_index,
                LoopResources {
                    epoll,
                    listener,
                    control,
                },
            ));
        }
        // Made once and shared: every thread and connection reads the same
        // file (and mapping) at explicit offsets.
        let served_file = match config.protocol {
            Protocol::File => Some(Arc::new(
                ServedFile::create(config.variant.copy == CopyMode::Mmap)
                    .map_err(ServerError::ServedFile)?,
            )),
            Protocol::Frame | Protocol::Echo => None,
        };
        let mut loops = Vec::with_capacity(config.threads);
        for (thread_index, resources) in prepared {
            let control = Arc::clone(&resources.control);
            let loop_config = config.loop_config(thread_index, served_file.as_ref());
            let thread = config
                .variant
                .spawn(loop_config, resources)
                .map_err(|source| ServerError::Start {
                    thread_index,
                    source,
                })?;
            loops.push(LoopHandle { control, thread });
        }
        Ok(Server {
            config,
            local_addr,
            loops,
        })
    }

    /// A handle other threads can use to take snapshots while the server runs.
    pub fn control(&self) -> ServerControl {
        ServerControl {
            variant: self.config.variant,
            protocol: self.config.protocol,
            loops: self.loops.iter().map(|l| Arc::clone(&l.control)).collect(),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Every thread's counters now, without stopping anything.
    pub fn snapshot(&self) -> Result<ServerReport, ServerError> {
        self.control().snapshot()
    }

    /// Flushes pending responses, closes every connection, stops the loops
    /// and returns their final counters.
    pub fn shutdown(self) -> Result<ServerReport, ServerError> {
        for (thread_index, handle) in self.loops.iter().enumerate() {
            handle
                .control
                .request_shutdown()
                .map_err(|source| ServerError::Thread {
                    thread_index,
                    source,
                })?;
        }
        let mut threads = Vec::with_capacity(self.loops.len());
        for (thread_index, handle) in self.loops.into_iter().enumerate() {
            let report = handle
                .thread
                .join()
                .map_err(|_| ServerError::Panicked { thread_index })?
                .map_err(|source| ServerError::Thread {
                    thread_index,
                    source,
                })?;
            threads.push(report);
        }
        let config = self.config;
        Ok(ServerReport::new(
            ReportKind::Final,
            config.variant.into(),
            config.protocol,
            threads,
        )
        .with_own_memory_and_cpus())
    }
}

/// Snapshot access to a running server's loops, usable from any thread.
#[derive(Clone)]
pub struct ServerControl {
    variant: Variant,
    protocol: Protocol,
    loops: Vec<Arc<LoopControl>>,
}

impl ServerControl {
    /// Every thread's counters now, without stopping anything.
    pub fn snapshot(&self) -> Result<ServerReport, ServerError> {
        let mut threads = Vec::with_capacity(self.loops.len());
        for (thread_index, control) in self.loops.iter().enumerate() {
            let report =
                control
                    .snapshot(SNAPSHOT_TIMEOUT)
                    .map_err(|source| ServerError::Thread {
                        thread_index,
                        source,
                    })?;
            threads.push(report);
        }
        Ok(ServerReport::new(
            ReportKind::Snapshot,
            self.variant.into(),
            self.protocol,
            threads,
        )
        .with_own_memory_and_cpus())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_size_rule_for_the_server_and_serve() {
        let mut config = ServerConfig::new("lt-splice".parse().unwrap());
        assert_eq!(config.check(), Ok(()));
        config.pipe_size_bytes = 4095;
        let rule = "--pipe-size must be between 4 KiB and 1 GiB";
        assert_eq!(config.check(), Err(rule.to_string()));
        match Server::start(config.clone()) {
            Err(ServerError::Config(message)) => assert_eq!(message, rule),
            other => panic!("expected the pipe-size rule, got {:?}", other.err()),
        }
        config.pipe_size_bytes = (1 << 30) + 1;
        assert_eq!(config.check(), Err(rule.to_string()));
        config.pipe_size_bytes = 1 << 30;
        config.buffer_size_bytes = 63;
        assert_eq!(
            config.check(),
            Err("--buffer-size must be between 64 B and 1 GiB".to_string())
        );
    }
}
