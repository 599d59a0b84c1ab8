//! Loopback TCP bandwidth. One way: writer threads against a sink that
//! reads and discards, the sink counting what arrives. Both ways: the load
//! engine's bulk shape (echo protocol, every byte verified) against an echo
//! server, so the figure is what the driver's own bulk path can move.
//!
//! The server side is one blocking thread per connection, the cheapest
//! loop that moves bytes; an acceptor thread hands out connections.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::driver::engine::run_case;
use crate::driver::measurement::{EngineConfig, NoObserver};
use crate::protocol::Protocol;
use crate::results::workload::{Case, Shape, SizeDistribution};
use crate::sys::client::{ConnectProgress, connect_nonblocking, take_connect_result};
use crate::sys::epoll::{self, Epoll};
use crate::sys::{Fd, io, socket};

use super::{LimitsError, LimitsPlan, io_error};

/// Bytes a server thread reads at once.
const READ_BUFFER_BYTES: usize = 256 << 10;
/// How often the acceptor looks at its stop flag.
const ACCEPT_POLL_MS: i32 = 20;
/// How long a connect may take on loopback before it counts as failed.
const CONNECT_TIMEOUT_MS: i32 = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Read and count.
    Discard,
    /// Write back every byte read.
    Echo,
}

/// A listener on 127.0.0.1 whose connections are served until their
/// client closes.
struct Server {
    addr: SocketAddr,
    /// Bytes the discarding threads received, all connections together.
    received_bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    acceptor: JoinHandle<std::io::Result<()>>,
}

impl Server {
    fn start(mode: Mode) -> Result<Server, LimitsError> {
        let (listener, addr) = socket::listen_reuseport(SocketAddr::from(([127, 0, 0, 1], 0)))
            .map_err(io_error("listening on 127.0.0.1"))?;
        let received_bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (received, stopping) = (received_bytes.clone(), stop.clone());
        let acceptor = std::thread::Builder::new()
            .name("limits-accept".into())
            .spawn(move || accept_loop(&listener, mode, &received, &stopping))
            .map_err(io_error("spawning the loopback acceptor"))?;
        Ok(Server {
            addr,
            received_bytes,
            stop,
            acceptor,
        })
    }

    fn received_bytes(&self) -> u64 {
        self.received_bytes.load(Ordering::Relaxed)
    }

    /// Stops accepting and waits for every connection's thread; call once
    /// every client has closed.
    fn finish(self) -> Result<(), LimitsError> {
        self.stop.store(true, Ordering::Release);
        match self.acceptor.join() {
            Ok(result) => result.map_err(io_error("accepting loopback connections")),
            Err(_) => Err(LimitsError::Implausible(
                "the loopback acceptor panicked".into(),
            )),
        }
    }
}

fn accept_loop(
    listener: &Fd,
    mode: Mode,
    received: &Arc<AtomicU64>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let poller = Epoll::new()?;
    poller.add(listener.as_fd(), epoll::IN, 0)?;
    let mut events = epoll::event_buffer(1);
    let mut served = Vec::new();
    let result = loop {
        if stop.load(Ordering::Acquire) {
            break Ok(());
        }
        if let Err(e) = poller.wait(&mut events, ACCEPT_POLL_MS) {
            break Err(e);
        }
        match accept_pending(listener, mode, received, &mut served) {
            Ok(()) => {}
            Err(e) => break Err(e),
        }
    };
    // Each thread ends when its client closes.
    for thread in served {
        let _ = thread.join();
    }
    result
}

fn accept_pending(
    listener: &Fd,
    mode: Mode,
    received: &Arc<AtomicU64>,
    served: &mut Vec<JoinHandle<()>>,
) -> std::io::Result<()> {
    loop {
        let connection = match socket::accept(listener.as_fd()) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        socket::set_blocking(connection.as_fd())?;
        let received = received.clone();
        served.push(
            std::thread::Builder::new()
                .name("limits-serve".into())
                .spawn(move || serve(&connection, mode, &received))?,
        );
    }
}

/// Serves one connection until its client closes (or resets it).
fn serve(connection: &Fd, mode: Mode, received: &AtomicU64) {
    let mut buffer = vec![0u8; READ_BUFFER_BYTES];
    loop {
        let n = match io::read(connection.as_fd(), &mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        match mode {
            Mode::Discard => {
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
            Mode::Echo => {
                if write_all(connection, &buffer[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn write_all(connection: &Fd, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let n = io::write(connection.as_fd(), bytes)?;
        bytes = &bytes[n..];
    }
    Ok(())
}

/// A blocking client socket connected to `addr`.
fn connect_blocking(addr: SocketAddr) -> std::io::Result<Fd> {
    let (fd, progress) = connect_nonblocking(addr, None)?;
    if progress == ConnectProgress::InProgress {
        let poller = Epoll::new()?;
        poller.add(fd.as_fd(), epoll::OUT, 0)?;
        let mut events = epoll::event_buffer(1);
        if poller.wait(&mut events, CONNECT_TIMEOUT_MS)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect to the loopback sink timed out",
            ));
        }
        take_connect_result(&fd)?;
    }
    socket::set_blocking(fd.as_fd())?;
    Ok(fd)
}

/// Writes `message_bytes` at a time to a connection to `addr` until `stop`.
fn write_until(addr: SocketAddr, message_bytes: usize, stop: &AtomicBool) -> std::io::Result<()> {
    let connection = connect_blocking(addr)?;
    let message: Vec<u8> = (0..message_bytes).map(|i| i as u8).collect();
    while !stop.load(Ordering::Relaxed) {
        io::write(connection.as_fd(), &message)?;
    }
    Ok(())
}

/// Bytes per second received by a discarding sink from `streams` writers,
/// one value per trial; the trials are consecutive windows of one run.
pub(super) fn one_way(
    streams: usize,
    plan: &LimitsPlan,
    message_bytes: usize,
) -> Result<Vec<f64>, LimitsError> {
    let sink = Server::start(Mode::Discard)?;
    let stop = AtomicBool::new(false);
    let (rates, writers) = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..streams)
            .map(|_| scope.spawn(|| write_until(sink.addr, message_bytes, &stop)))
            .collect();
        let rates = sample_windows(&sink, plan, &writers);
        stop.store(true, Ordering::Relaxed);
        let outcomes: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        (rates, outcomes)
    });
    for outcome in writers {
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(source)) => {
                return Err(LimitsError::Io {
                    context: "writing to the loopback sink",
                    source,
                });
            }
            Err(_) => {
                return Err(LimitsError::Implausible(
                    "a loopback writer thread panicked".into(),
                ));
            }
        }
    }
    sink.finish()?;
    Ok(rates)
}

/// After the warm-up, one rate per trial window; stops early (fewer
/// rates) once a writer has ended, since it failed.
fn sample_windows<T>(
    sink: &Server,
    plan: &LimitsPlan,
    writers: &[std::thread::ScopedJoinHandle<'_, T>],
) -> Vec<f64> {
    let writers_alive = || writers.iter().all(|w| !w.is_finished());
    std::thread::sleep(plan.loopback_warmup);
    let mut rates = Vec::with_capacity(plan.trials as usize);
    for _ in 0..plan.trials {
        if !writers_alive() {
            break;
        }
        let (bytes_before, started) = (sink.received_bytes(), Instant::now());
        std::thread::sleep(plan.loopback_window);
        let bytes = sink.received_bytes() - bytes_before;
        rates.push(bytes as f64 / started.elapsed().as_secs_f64());
    }
    rates
}

/// Payload bytes per second each way, through the load engine's bulk
/// shape against an echo server with `streams` connections (one driver
/// thread each); one engine run per trial.
pub(super) fn both_ways(
    streams: usize,
    plan: &LimitsPlan,
    message_bytes: u32,
    window_bytes: u64,
) -> Result<Vec<f64>, LimitsError> {
    let echo = Server::start(Mode::Echo)?;
    let case = Case {
        profile: "machine-limits".into(),
        label: format!("loopback-echo/{streams}-streams"),
        protocol: Protocol::Echo,
        connections: streams as u32,
        shape: Shape::Bulk { window_bytes },
        sizes: SizeDistribution::Fixed {
            bytes: message_bytes,
        },
        seed: 1,
        sweep_size_bytes: None,
        client: Default::default(),
    };
    let config = EngineConfig {
        target: echo.addr,
        warmup: plan.loopback_warmup,
        duration: plan.loopback_window,
        driver_threads: streams,
        driver_cpus: None,
        drain_timeout: Duration::from_secs(1),
    };
    let mut rates = Vec::with_capacity(plan.trials as usize);
    let mut failure = None;
    for _ in 0..plan.trials {
        let measured = match run_case(&case, &config, &mut NoObserver) {
            Ok(measured) => measured,
            Err(e) => {
                failure = Some(LimitsError::Engine(e));
                break;
            }
        };
        let v = &measured.verification;
        let broken = v.payload_mismatches + v.header_mismatches + v.unexpected_closes;
        if broken > 0 || v.connect_failures > 0 {
            failure = Some(LimitsError::Implausible(format!(
                "loopback echo: {} payload mismatches, {} header mismatches, {} unexpected closes, {} connect failures",
                v.payload_mismatches, v.header_mismatches, v.unexpected_closes, v.connect_failures
            )));
            break;
        }
        rates.push(measured.payload_bytes_completed as f64 / measured.measured_seconds);
    }
    // The engine closed every connection, so the echo threads have ended.
    echo.finish()?;
    match failure {
        Some(e) => Err(e),
        None => Ok(rates),
    }
}
