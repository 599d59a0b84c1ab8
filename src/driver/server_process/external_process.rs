//! One run of an external server: started held before `exec` so that
//! kernel counters inherited by all its threads are attached first, pinned
//! like the built-in servers, ready when it prints `listening on ADDR` or
//! accepts a connection, measured from outside over the window (the
//! kernel's counts and `/proc` memory), stopped with SIGTERM.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::driver::measurement::WindowObserver;
use crate::protocol::Protocol;
use crate::sys::process::{pin_process, spawn_held, terminate};
use crate::sys::process_counters::{ProcessCounters, ProcessCounts};

use super::ServerError;
use super::external::ExternalServer;
use super::process::{
    STOP_TIMEOUT, describe_status, keep_tail, parse_listening_line, wait_for_exit,
};
use crate::sys::memory::{ProcessMemory, read_process_memory};

/// How to start an external server for one measurement.
pub struct ExternalStart<'a> {
    pub server: &'a ExternalServer,
    pub protocol: Protocol,
    pub cpus: Option<&'a [usize]>,
    /// Also count its syscalls by kind (a counting window).
    pub count_syscalls: bool,
    pub ready_timeout: Duration,
}

/// A running external server.
pub struct ExternalProcess {
    name: String,
    child: Child,
    addr: SocketAddr,
    command_line: Vec<String>,
    counters: Result<ProcessCounters, String>,
    stderr_tail: Arc<Mutex<VecDeque<u8>>>,
    baseline_memory: Option<ProcessMemory>,
    exited: bool,
    /// The server's stdout, drained by a helper thread for as long as it
    /// runs (a server printing after its first line must not block).
    stdout_lines: Receiver<String>,
}

/// A free loopback address for the server to listen on. Another process
/// can take the port between this check and the server's bind (the port
/// is only free, not reserved): [`ExternalProcess::start`] then tries
/// again on another port.
fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind(("127.0.0.1", 0))?.local_addr()
}

/// Starts of one measurement's server, each on a newly chosen port, before
/// "address already in use" is reported as the server's failure.
const PORT_ATTEMPTS: usize = 3;

/// Whether a server that exited before accepting said its port was taken
/// (Rust's and Go's wording both contain this, as does strerror's).
fn lost_port_race(error: &ServerError) -> bool {
    match error {
        ServerError::ExitedBeforeAccepting { stderr, .. } => stderr
            .to_ascii_lowercase()
            .contains("address already in use"),
        _ => false,
    }
}

impl ExternalProcess {
    pub fn start(start: &ExternalStart) -> Result<ExternalProcess, ServerError> {
        let mut attempt = 1;
        loop {
            match Self::start_once(start) {
                Err(error) if attempt < PORT_ATTEMPTS && lost_port_race(&error) => attempt += 1,
                outcome => return outcome,
            }
        }
    }

    fn start_once(start: &ExternalStart) -> Result<ExternalProcess, ServerError> {
        let name = start.server.name.clone();
        let io_error = |source| ServerError::Io {
            variant: name.clone(),
            source,
        };
        let addr = free_loopback_addr().map_err(io_error)?;
        let argv = start.server.argv(addr, start.protocol);
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .envs(start.server.env().iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawn_error = |source| ServerError::Spawn {
            program: argv[0].clone(),
            source,
        };
        let held = spawn_held(command).map_err(spawn_error)?;
        if let Some(cpus) = start.cpus
            && let Err(e) = pin_process(held.pid(), cpus)
        {
            held.abandon();
            return Err(io_error(e));
        }
        let counters = ProcessCounters::attach(held.pid(), start.count_syscalls)
            .map_err(|e| format!("the kernel cannot count the server: {e}"));
        let mut child = held.release().map_err(spawn_error)?;

        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (line_tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("external-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    // Nobody listens after the first line: keep draining.
                    let _ = line_tx.send(line);
                }
            })
            .map_err(io_error)?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        std::thread::Builder::new()
            .name("external-stderr".into())
            .spawn(move || keep_tail(stderr, &tail))
            .map_err(io_error)?;
        let mut command_line: Vec<String> = start
            .server
            .env()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        command_line.extend(argv);
        let mut server = ExternalProcess {
            name,
            child,
            addr,
            command_line,
            counters,
            stderr_tail,
            baseline_memory: None,
            exited: false,
            stdout_lines: lines,
        };
        server.addr = server.wait_ready(start.ready_timeout)?;
        server.baseline_memory = read_process_memory(server.child.id()).ok();
        Ok(server)
    }

    /// Ready when it says where it listens, or accepts where it was told.
    fn wait_ready(&mut self, timeout: Duration) -> Result<SocketAddr, ServerError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = true;
                return Err(ServerError::ExitedBeforeAccepting {
                    name: self.name.clone(),
                    status: describe_status(Some(status)),
                    stderr: self.stderr_tail(),
                });
            }
            match self.stdout_lines.recv_timeout(Duration::from_millis(20)) {
                Ok(line) => {
                    if let Some(said) = parse_listening_line(&line) {
                        // `0.0.0.0:P` or `[::]:P`: reachable on loopback.
                        let ip = if said.ip().is_unspecified() {
                            self.addr.ip()
                        } else {
                            said.ip()
                        };
                        return Ok(SocketAddr::new(ip, said.port()));
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(50)).is_ok() {
                return Ok(self.addr);
            }
            if Instant::now() >= deadline {
                return Err(ServerError::NeverAccepted {
                    name: self.name.clone(),
                    addr: self.addr.to_string(),
                    seconds: timeout.as_secs_f64(),
                    stderr: self.stderr_tail(),
                });
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command as run (placeholders filled, environment first).
    pub fn command_line(&self) -> &[String] {
        &self.command_line
    }

    pub fn baseline_memory(&self) -> Option<ProcessMemory> {
        self.baseline_memory
    }

    /// Why the kernel cannot count this server, if it cannot.
    pub fn counters_unavailable(&self) -> Option<&str> {
        self.counters.as_ref().err().map(String::as_str)
    }

    fn read_counts(&self) -> Result<ProcessCounts, String> {
        match &self.counters {
            Ok(counters) => counters
                .read()
                .map_err(|e| format!("cannot read the server's kernel counters: {e}")),
            Err(reason) => Err(reason.clone()),
        }
    }

    fn stderr_tail(&self) -> String {
        // Give the stderr thread a moment to collect a dying server's last
        // words; only error messages use it.
        std::thread::sleep(Duration::from_millis(20));
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&tail.iter().copied().collect::<Vec<u8>>()).into_owned()
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = wait_for_exit(&mut self.child, timeout);
        self.exited |= status.is_some();
        status
    }

    /// SIGTERM, then up to [`STOP_TIMEOUT`] for a clean exit (status 0).
    /// Anything else is an error; a server still running is killed.
    pub fn stop(mut self) -> Result<(), ServerError> {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exited = true;
            return Err(self.unclean(status, "had exited before SIGTERM"));
        }
        terminate(self.child.id()).map_err(|source| ServerError::Io {
            variant: self.name.clone(),
            source,
        })?;
        match self.wait_exit(STOP_TIMEOUT) {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(self.unclean(status, "exited uncleanly on SIGTERM")),
            None => {
                self.kill();
                Err(ServerError::TermTimeout {
                    name: self.name.clone(),
                    seconds: STOP_TIMEOUT.as_secs_f64(),
                })
            }
        }
    }

    fn unclean(&self, status: ExitStatus, how: &str) -> ServerError {
        ServerError::UncleanExit {
            name: self.name.clone(),
            how: how.to_string(),
            status: describe_status(Some(status)),
            stderr: self.stderr_tail(),
        }
    }

    fn kill(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.exited = true;
        }
    }
}

impl Drop for ExternalProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the kernel and `/proc` saw of an external server over the window.
pub struct ExternalWindowCounts {
    /// `end - start`, or why there is none.
    pub counts: Result<ProcessCounts, String>,
    pub memory_at_end: Option<ProcessMemory>,
}

/// Reads the server's counters at the window's edges.
pub struct ExternalWindow<'a> {
    server: &'a ExternalProcess,
    start: Option<Result<ProcessCounts, String>>,
    end: Option<Result<ProcessCounts, String>>,
    memory_at_end: Option<ProcessMemory>,
}

impl<'a> ExternalWindow<'a> {
    pub fn new(server: &'a ExternalProcess) -> ExternalWindow<'a> {
        ExternalWindow {
            server,
            start: None,
            end: None,
            memory_at_end: None,
        }
    }

    pub fn finish(self) -> ExternalWindowCounts {
        let counts = match (self.start, self.end) {
            (Some(Ok(start)), Some(Ok(end))) => Ok(end.since(&start)),
            (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e),
            _ => Err("the load engine never opened or closed the window".into()),
        };
        ExternalWindowCounts {
            counts,
            memory_at_end: self.memory_at_end,
        }
    }
}

impl WindowObserver for ExternalWindow<'_> {
    fn window_started(&mut self) {
        self.start = Some(self.server.read_counts());
    }

    fn window_ended(&mut self) {
        self.end = Some(self.server.read_counts());
        self.memory_at_end = read_process_memory(self.server.child.id()).ok();
    }
}
