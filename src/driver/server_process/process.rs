//! One `epoll-bench serve` child: what to start ([`ServerSpec`]), starting
//! it and waiting for its `listening on IP:PORT` line, asking it over its
//! stdin/stdout, stopping it, and its resident memory.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::protocol::Protocol;
use crate::protocol::control::Command as ControlCommand;
use crate::server::Variant;
use crate::server::report::{ReportKind, ServerReport};
use crate::server::workers::{WORKER_SNAPSHOT_TIMEOUT, WORKER_STOP_TIMEOUT};

use super::control_client::{SNAPSHOT_TIMEOUT, parse_report_line, send_command};
use super::{ServerControl, ServerError};
use crate::sys::memory::{ProcessMemory, read_tree_memory};

/// How long a server may take to print `listening on IP:PORT`.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take, after `stop`, to print its final report and
/// exit. With `--kernel-counters` and no other process holding the syscall
/// tracepoints, closing its perf events unregisters ~30 tracepoints, which
/// takes about a second on an idle machine and more on a busy one.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a server of `processes` processes may take to stop: its first
/// process waits up to [`WORKER_STOP_TIMEOUT`] for the others to close
/// their connections and report (at a million connections over 56
/// processes on two CPUs, closing takes longer than 5 s), then exits.
pub fn stop_timeout(processes: Option<usize>) -> Duration {
    match processes {
        Some(p) if p > 1 => WORKER_STOP_TIMEOUT + STOP_TIMEOUT,
        _ => STOP_TIMEOUT,
    }
}

/// How long a snapshot of a server of `processes` processes may take: its
/// first process gathers the others' (up to [`WORKER_SNAPSHOT_TIMEOUT`]).
pub fn snapshot_timeout(processes: Option<usize>) -> Duration {
    match processes {
        Some(p) if p > 1 => WORKER_SNAPSHOT_TIMEOUT + SNAPSHOT_TIMEOUT,
        _ => SNAPSHOT_TIMEOUT,
    }
}
/// Bytes of the server's stderr kept for error messages.
const STDERR_TAIL_BYTES: usize = 4096;

/// What to start: `PROGRAM serve --variant V --protocol P --listen ADDR
/// [--kernel-counters | --no-syscall-counting] [--threads N] [--processes P] [--cpus LIST]
/// EXTRA...`.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// The `epoll-bench` binary (normally [`std::env::current_exe`]).
    pub program: PathBuf,
    /// Arguments placed before `serve` (tests use it to run a script
    /// through an interpreter).
    pub leading_args: Vec<String>,
    pub variant: Variant,
    pub protocol: Protocol,
    pub listen: SocketAddr,
    pub threads: Option<usize>,
    /// `serve --processes P`: P processes of `threads` loops each.
    pub processes: Option<usize>,
    pub extra_args: Vec<String>,
    /// CPUs the whole server process may run on (`None`: unpinned).
    pub cpus: Option<Vec<usize>>,
    pub ready_timeout: Duration,
    /// `--kernel-counters`: the server also counts its syscalls in the
    /// kernel, for the cross-check; each counted call then costs it more.
    pub kernel_counters: bool,
    /// In-process syscall counting (off: `--no-syscall-counting`, to
    /// measure what counting costs).
    pub syscall_counting: bool,
}

impl ServerSpec {
    /// A spec for this very binary, listening on an ephemeral loopback port.
    pub fn for_current_exe(variant: Variant, protocol: Protocol) -> io::Result<ServerSpec> {
        Ok(ServerSpec::new(std::env::current_exe()?, variant, protocol))
    }

    pub fn new(program: PathBuf, variant: Variant, protocol: Protocol) -> ServerSpec {
        ServerSpec {
            program,
            leading_args: Vec::new(),
            variant,
            protocol,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            threads: None,
            processes: None,
            extra_args: Vec::new(),
            cpus: None,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            kernel_counters: true,
            syscall_counting: true,
        }
    }

    /// Arguments after the program, as the server receives them.
    pub fn server_args(&self) -> Vec<String> {
        let mut args = self.leading_args.clone();
        args.extend([
            "serve".to_string(),
            "--variant".to_string(),
            self.variant.to_string(),
            "--protocol".to_string(),
            self.protocol.name().to_string(),
            "--listen".to_string(),
            self.listen.to_string(),
        ]);
        if self.kernel_counters {
            // Each serving thread reads its own kernel counters with every
            // snapshot, so both counts cover the same calls (see
            // `SnapshotWindow`).
            args.push("--kernel-counters".to_string());
        }
        if !self.syscall_counting {
            args.push("--no-syscall-counting".to_string());
        }
        args.extend([
            // A driver that dies (even SIGKILLed) closes the pipe: the
            // server then stops instead of running on as an orphan.
            "--exit-on-stdin-eof".to_string(),
        ]);
        if let Some(threads) = self.threads {
            args.extend(["--threads".to_string(), threads.to_string()]);
        }
        if let Some(processes) = self.processes {
            args.extend(["--processes".to_string(), processes.to_string()]);
        }
        if let Some(cpus) = &self.cpus {
            args.extend(["--cpus".to_string(), cpu_list(cpus)]);
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// Formats CPU ids as a `--cpus` list, e.g. `0,2,3`.
pub fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A running `epoll-bench serve` child.
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout_lines: Receiver<String>,
    stderr_tail: Arc<Mutex<VecDeque<u8>>>,
    addr: SocketAddr,
    variant: Variant,
    command_line: Vec<String>,
    baseline_memory: Option<ProcessMemory>,
    exited: bool,
    stop_timeout: Duration,
    snapshot_timeout: Duration,
}

impl ServerProcess {
    /// Spawns the server and waits (bounded by `spec.ready_timeout`) for its
    /// `listening on IP:PORT` line.
    pub fn start(spec: &ServerSpec) -> Result<ServerProcess, ServerError> {
        let mut command_line = vec![spec.program.display().to_string()];
        command_line.extend(spec.server_args());

        let mut child = Command::new(&command_line[0])
            .args(&command_line[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ServerError::Spawn {
                program: command_line[0].clone(),
                source,
            })?;

        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let stdin = child.stdin.take();
        let (line_tx, stdout_lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("server-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line_tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|source| ServerError::Io {
                variant: spec.variant.to_string(),
                source,
            })?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        std::thread::Builder::new()
            .name("server-stderr".into())
            .spawn(move || keep_tail(stderr, &tail))
            .map_err(|source| ServerError::Io {
                variant: spec.variant.to_string(),
                source,
            })?;

        let mut server = ServerProcess {
            child,
            stdin,
            stdout_lines,
            stderr_tail,
            addr: spec.listen,
            variant: spec.variant,
            command_line,
            baseline_memory: None,
            exited: false,
            stop_timeout: stop_timeout(spec.processes),
            snapshot_timeout: snapshot_timeout(spec.processes),
        };
        server.addr = server.wait_ready(spec.ready_timeout)?;
        // The tree: with `--processes` the workers are this child's children.
        server.baseline_memory = read_tree_memory(server.pid()).ok().map(|(m, _)| m);
        Ok(server)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<SocketAddr, ServerError> {
        let line = match self.stdout_lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                return Err(ServerError::NotReady {
                    variant: self.variant.to_string(),
                    seconds: timeout.as_secs_f64(),
                    stderr: self.stderr_tail(),
                });
            }
            Err(RecvTimeoutError::Disconnected) => return Err(self.died()),
        };
        parse_listening_line(&line).ok_or_else(|| ServerError::BadListeningLine {
            variant: self.variant.to_string(),
            line,
            stderr: self.stderr_tail(),
        })
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The command that started the server.
    pub fn command_line(&self) -> &[String] {
        &self.command_line
    }

    /// Resident memory right after the server became ready (no connections).
    pub fn baseline_memory(&self) -> Option<ProcessMemory> {
        self.baseline_memory
    }

    fn stderr_tail(&self) -> String {
        // Give the stderr thread a moment to collect what a dying server
        // printed last; the tail is only used in error messages.
        std::thread::sleep(Duration::from_millis(20));
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&tail.iter().copied().collect::<Vec<u8>>()).into_owned()
    }

    /// The error for a server whose stdout closed or whose stdin broke.
    fn died(&mut self) -> ServerError {
        let status = self.wait_exit(Duration::from_millis(500));
        ServerError::Died {
            variant: self.variant.to_string(),
            status: describe_status(status),
            stderr: self.stderr_tail(),
        }
    }

    /// Waits up to `timeout` for the child to exit.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = wait_for_exit(&mut self.child, timeout);
        self.exited |= status.is_some();
        status
    }

    fn send_command(&mut self, command: ControlCommand) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "stdin already closed"))?;
        send_command(stdin, command)
    }

    /// Reads stdout lines until one JSON report of `kind` arrives.
    fn read_report(
        &mut self,
        kind: ReportKind,
        timeout: Duration,
    ) -> Result<ServerReport, ServerError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout_lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(report) = parse_report_line(&self.variant.to_string(), &line, kind)?
                    {
                        return Ok(report);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(ServerError::SnapshotTimeout {
                        variant: self.variant.to_string(),
                        seconds: timeout.as_secs_f64(),
                    });
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.died()),
            }
        }
    }

    /// Asks the server to stop (the `stop` control line, equivalent to
    /// SIGTERM), and returns its final report. A server that does not exit
    /// within its [`stop_timeout`] is killed and reported as an error.
    pub fn stop(mut self) -> Result<ServerReport, ServerError> {
        if self.send_command(ControlCommand::Stop).is_err() {
            return Err(self.died());
        }
        // Closing stdin also tells a server that watches for EOF to stop.
        self.stdin = None;
        let started = Instant::now();
        let report = self.read_report(ReportKind::Final, self.stop_timeout);
        let left = self.stop_timeout.saturating_sub(started.elapsed());
        let status = self.wait_exit(left.max(Duration::from_millis(100)));
        match (report, status) {
            (Ok(report), Some(status)) if status.success() => Ok(report),
            (Ok(_), Some(status)) => Err(ServerError::Died {
                variant: self.variant.to_string(),
                status: describe_status(Some(status)),
                stderr: self.stderr_tail(),
            }),
            (Err(err @ ServerError::Died { .. }), _) => Err(err),
            (_, None) => {
                self.kill();
                Err(ServerError::StopTimeout {
                    variant: self.variant.to_string(),
                    seconds: self.stop_timeout.as_secs_f64(),
                })
            }
            (Err(err), Some(_)) => Err(err),
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

impl ServerControl for ServerProcess {
    fn snapshot(&mut self) -> Result<ServerReport, ServerError> {
        if self.send_command(ControlCommand::Snapshot).is_err() {
            return Err(self.died());
        }
        self.read_report(ReportKind::Snapshot, self.snapshot_timeout)
    }

    fn memory(&self) -> Option<ProcessMemory> {
        read_tree_memory(self.pid()).ok().map(|(memory, _)| memory)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(super) fn keep_tail(mut stderr: impl Read, tail: &Mutex<VecDeque<u8>>) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stderr.read(&mut buf) {
        if n == 0 {
            break;
        }
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.extend(&buf[..n]);
        while tail.len() > STDERR_TAIL_BYTES {
            tail.pop_front();
        }
    }
}

pub(super) fn describe_status(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => s.to_string(),
        },
        None => "still running, not answering".to_string(),
    }
}

/// `listening on 127.0.0.1:4000` → the address.
pub fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    line.trim()
        .strip_prefix("listening on ")?
        .trim()
        .parse()
        .ok()
}

/// Waits up to `timeout` for `child` to exit; `None` if it has not (or
/// cannot be waited for).
pub(super) fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line_parses_v4_and_v6() {
        assert_eq!(
            parse_listening_line("listening on 127.0.0.1:4000\n"),
            Some("127.0.0.1:4000".parse().unwrap())
        );
        assert_eq!(
            parse_listening_line("listening on [::1]:80"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(parse_listening_line("listening at 127.0.0.1:4000"), None);
        assert_eq!(parse_listening_line("listening on nowhere"), None);
    }

    #[test]
    fn server_args_carry_variant_protocol_and_threads() {
        let mut spec = ServerSpec::new(
            "/bin/x".into(),
            "et-splice".parse::<Variant>().unwrap(),
            Protocol::Echo,
        );
        spec.threads = Some(2);
        spec.cpus = Some(vec![1, 3]);
        let args = spec.server_args();
        assert_eq!(
            args,
            [
                "serve",
                "--variant",
                "et-splice",
                "--protocol",
                "echo",
                "--listen",
                "127.0.0.1:0",
                "--kernel-counters",
                "--exit-on-stdin-eof",
                "--threads",
                "2",
                "--cpus",
                "1,3"
            ]
        );
        spec.kernel_counters = false;
        let args = spec.server_args();
        assert!(!args.iter().any(|a| a.contains("counters")), "{args:?}");
        assert!(!args.contains(&"--no-syscall-counting".to_string()));
        spec.syscall_counting = false;
        let args = spec.server_args();
        assert!(args.contains(&"--no-syscall-counting".to_string()));
    }

    #[test]
    fn several_processes_get_the_time_their_workers_are_given() {
        assert_eq!(stop_timeout(None), STOP_TIMEOUT);
        assert_eq!(stop_timeout(Some(1)), STOP_TIMEOUT);
        assert!(stop_timeout(Some(56)) > WORKER_STOP_TIMEOUT);
        assert_eq!(snapshot_timeout(None), SNAPSHOT_TIMEOUT);
        assert!(snapshot_timeout(Some(2)) > WORKER_SNAPSHOT_TIMEOUT);
    }
}
