//! `epoll-bench serve`: one variant until SIGINT/SIGTERM.
//!
//! stdout carries exactly: one `listening on IP:PORT` line, with `--control`
//! one `control on IP:PORT` line, one JSON line per `snapshot` command or bad
//! control line, and one final JSON line at exit. Commands arrive as lines
//! on stdin and, with `--control ADDR`, on a TCP control socket
//! ([`crate::protocol::control`]).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Args;

use crate::error::UsageError;
use crate::protocol::control::{self as control_protocol, Command, LineError, LineReader};
use crate::protocol::{DEFAULT_MAX_FRAME_BYTES, Protocol};
use crate::server::workers::Workers;
use crate::server::{self, Server, ServerConfig, ServerControl, ServerReport, Variant};
use crate::sys;
use crate::units::{parse_bytes, parse_cpu_list};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which server: lt-rw, lt-writev, lt-splice, et-rw, et-writev, et-splice,
    /// et-rw-shortread, et-writev-shortread, uring-rw, uring-writev,
    /// uring-splice.
    #[arg(long)]
    pub variant: String,
    #[arg(long, value_enum, default_value_t = Protocol::Frame)]
    pub protocol: Protocol,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Independent event loops, each with its own SO_REUSEPORT listener.
    #[arg(long, default_value_t = 1, value_parser = crate::units::number(1usize..=1024, ""))]
    pub threads: usize,
    /// Server processes, each with --threads loops and their own
    /// SO_REUSEPORT listeners on the same port (as nginx workers): this
    /// process starts the others and answers for all of them.
    #[arg(long, default_value_t = 1, value_parser = crate::units::number(1usize..=MAX_PROCESSES, ""))]
    pub processes: usize,
    /// Internal: this process is a worker started by `serve --processes`
    /// (joins the port, dies with its parent, exits when stdin ends).
    #[arg(long, hide = true)]
    pub worker: bool,
    /// Largest accepted frame payload (frame protocol).
    #[arg(long, default_value_t = DEFAULT_MAX_FRAME_BYTES as u64, value_parser = parse_bytes)]
    pub max_frame: u64,
    /// Per-connection ring buffer (rw, writev).
    #[arg(long, default_value_t = server::DEFAULT_BUFFER_SIZE_BYTES as u64, value_parser = parse_bytes)]
    pub buffer_size: u64,
    /// Per-connection pipe size requested with F_SETPIPE_SZ (splice).
    #[arg(long, default_value_t = server::DEFAULT_PIPE_SIZE_BYTES as u64, value_parser = parse_bytes)]
    pub pipe_size: u64,
    /// Where connections get their ring buffers: `per-connection` (each
    /// owns one from accept to close) or `pooled` (taken from the serving
    /// thread's pool while a connection holds bytes, given back when it has
    /// none; epoll rw and writev variants only).
    #[arg(long, value_enum, default_value_t = server::BufferPolicy::PerConnection)]
    pub buffers: server::BufferPolicy,
    /// With `--buffers pooled`: buffers (of --buffer-size) one serving
    /// thread's pool holds at most; at that bound a connection that needs
    /// one is not read until another connection gives one back.
    #[arg(long, default_value_t = server::DEFAULT_POOL_MAX_BUFFERS,
          value_parser = crate::units::number(1usize..=1 << 24, ""))]
    pub pool_buffers: usize,
    /// Most events one epoll_wait returns.
    #[arg(long, default_value_t = server::DEFAULT_MAX_EVENTS,
          value_parser = crate::units::number(1usize..=1 << 20, ""))]
    pub max_events: usize,
    /// Also serve the control commands on this TCP address.
    #[arg(long)]
    pub control: Option<String>,
    /// Pin the server's threads to these CPUs (e.g. 0 or 0-1).
    #[arg(long, value_parser = parse_cpu_list)]
    pub cpus: Option<CpuList>,
    /// Also count each serving thread's syscalls in the kernel (perf
    /// tracepoints; needs root or CAP_PERFMON) and report both counts.
    #[arg(long)]
    pub kernel_counters: bool,
    /// Do not count syscalls in-process (reports then carry no counts): to
    /// measure what the counting costs with the same binary.
    #[arg(long, conflicts_with = "kernel_counters")]
    pub no_syscall_counting: bool,
    /// Stop (as on SIGTERM) when stdin reaches EOF: for a parent process that
    /// drives the server through stdin, so the server cannot outlive it.
    #[arg(long)]
    pub exit_on_stdin_eof: bool,
    /// Test-only: one uncounted read per wake-up, for the cross-check tests.
    #[arg(long, hide = true)]
    pub debug_uncounted_read: bool,
}

/// One `--cpus` value holds the whole list. Spelled through an alias because
/// clap's derive treats a literal `Vec<_>` field as many values and then
/// panics when the parser returns a whole `Vec` for one value.
type CpuList = Vec<usize>;

/// Most server processes `--processes` accepts: beyond the ~20,000 fds one
/// process may hold, 64 of them cover a million connections.
pub const MAX_PROCESSES: usize = 64;

fn config_from(args: &ServeArgs) -> Result<ServerConfig, UsageError> {
    let variant: Variant = args
        .variant
        .parse()
        .map_err(|e: server::variant::UnknownVariant| UsageError(e.to_string()))?;
    let listen: SocketAddr = args.listen.parse().map_err(|_| {
        UsageError(format!(
            "--listen: `{}` is not an IP:PORT address",
            args.listen
        ))
    })?;
    let max_frame_bytes = u32::try_from(args.max_frame)
        .map_err(|_| UsageError(format!("--max-frame: {} exceeds 4 GiB - 1", args.max_frame)))?;
    let mut config = ServerConfig::new(variant);
    config.protocol = args.protocol;
    config.listen = listen;
    config.threads = args.threads;
    config.max_frame_bytes = max_frame_bytes;
    // Saturating: a size beyond usize fails the server's range check.
    config.buffer_size_bytes = usize::try_from(args.buffer_size).unwrap_or(usize::MAX);
    config.pipe_size_bytes = usize::try_from(args.pipe_size).unwrap_or(usize::MAX);
    config.max_events = args.max_events;
    config.buffers = args.buffers;
    config.pool_max_buffers = args.pool_buffers;
    config.debug_uncounted_read = args.debug_uncounted_read;
    config.kernel_counters = args.kernel_counters;
    config.join_port = args.worker;
    if args.worker && args.processes != 1 {
        return Err(UsageError(
            "--worker: a worker process is one process (--processes 1)".into(),
        ));
    }
    config.check().map_err(UsageError)?;
    Ok(config)
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = config_from(&args)?;
    if args.worker {
        // First, so that a parent that dies from here on takes this
        // process with it; stdin's end of file covers an earlier death.
        sys::parent::die_with_parent().context("cannot tie this worker to its parent")?;
    }
    // Before any serving thread exists: they all read the switch.
    sys::counters::set_counting(!args.no_syscall_counting);
    // Before any thread exists, so that all of them inherit the mask and
    // only the main thread's sigwait sees SIGINT/SIGTERM.
    sys::signal::block_shutdown_signals().context("cannot block SIGINT/SIGTERM")?;
    if let Some(cpus) = &args.cpus {
        sys::thread::pin_current_thread(cpus)
            .map_err(|e| UsageError(format!("--cpus {cpus:?}: {e}")))?;
    }
    // Many-connection profiles need more fds than the usual soft limit.
    let _ = sys::rlimit::raise_nofile_to_hard();

    let control_listener = match &args.control {
        Some(addr) => Some(
            TcpListener::bind(addr.as_str())
                .map_err(|e| UsageError(format!("--control {addr}: {e}")))?,
        ),
        None => None,
    };
    let listen = config.listen;
    let server = Server::start(config).map_err(|e| match e {
        server::ServerError::Listen { .. } | server::ServerError::Config(_) => {
            anyhow::Error::new(UsageError(e.to_string()))
        }
        other => anyhow::Error::new(other),
    })?;
    // Before saying it listens: a client told so reaches every process.
    let workers = start_workers(&args, server.local_addr())?;
    print_line(&format!("listening on {}", server.local_addr()))
        .with_context(|| format!("listening on {listen}, but stdout is gone"))?;
    if let Some(listener) = &control_listener {
        // `--control 127.0.0.1:0` picks a port: say which, or it is unusable.
        let addr = listener
            .local_addr()
            .context("reading the control address")?;
        print_line(&format!("control on {addr}")).context("stdout is gone")?;
    }

    let control = Control {
        own: server.control(),
        workers: workers.map(|w| Arc::new(Mutex::new(Some(w)))),
    };
    // A worker must not outlive its parent: end of stdin stops it.
    spawn_stdin_commands(control.clone(), args.exit_on_stdin_eof || args.worker);
    if let Some(listener) = control_listener {
        spawn_control_socket(listener, control.clone());
    }

    sys::signal::wait_for_shutdown().context("waiting for SIGINT/SIGTERM")?;
    // The workers flush and close while this process does the same.
    let stopping = std::thread::spawn(move || control.stop_workers());
    let own = server.shutdown()?;
    let worker_reports = stopping
        .join()
        .map_err(|_| anyhow::anyhow!("stopping the worker processes panicked"))??;
    let report = ServerReport::gather(own, worker_reports);
    print_line(&serde_json::to_string(&report)?)?;
    Ok(())
}

/// With `--processes P`, starts the P-1 other processes: this binary's
/// `serve` again, with the same settings, listening on the port this
/// process bound (so `--listen IP:0` means one port for all).
fn start_workers(args: &ServeArgs, bound: SocketAddr) -> anyhow::Result<Option<Workers>> {
    if args.processes <= 1 {
        return Ok(None);
    }
    let program = std::env::current_exe().context("cannot find this program to start workers")?;
    let commands = (1..args.processes)
        .map(|_| {
            let mut command = std::process::Command::new(&program);
            command.args(worker_args(args, bound));
            command
        })
        .collect();
    let workers = Workers::start(commands).context("starting the worker processes")?;
    Ok(Some(workers))
}

/// The `serve` command line of one worker of `args`.
fn worker_args(args: &ServeArgs, bound: SocketAddr) -> Vec<String> {
    let mut out: Vec<String> = [
        "serve",
        "--worker",
        "--variant",
        &args.variant,
        "--protocol",
        args.protocol.name(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let numbers = [
        ("--listen", bound.to_string()),
        ("--threads", args.threads.to_string()),
        ("--max-frame", args.max_frame.to_string()),
        ("--buffer-size", args.buffer_size.to_string()),
        ("--pipe-size", args.pipe_size.to_string()),
        ("--max-events", args.max_events.to_string()),
        ("--buffers", args.buffers.name().to_string()),
        ("--pool-buffers", args.pool_buffers.to_string()),
    ];
    for (flag, value) in numbers {
        out.extend([flag.to_string(), value]);
    }
    if let Some(cpus) = &args.cpus {
        let list: Vec<String> = cpus.iter().map(usize::to_string).collect();
        out.extend(["--cpus".to_string(), list.join(",")]);
    }
    let switches = [
        ("--kernel-counters", args.kernel_counters),
        ("--no-syscall-counting", args.no_syscall_counting),
        ("--debug-uncounted-read", args.debug_uncounted_read),
    ];
    out.extend(
        switches
            .iter()
            .filter(|(_, on)| *on)
            .map(|(flag, _)| flag.to_string()),
    );
    out
}

/// What answers the control protocol: this process's loops, and with
/// `--processes` its workers, gathered into one report.
#[derive(Clone)]
struct Control {
    own: ServerControl,
    /// `None` inside once stopped.
    workers: Option<Arc<Mutex<Option<Workers>>>>,
}

impl Control {
    fn snapshot(&self) -> Result<ServerReport, String> {
        let Some(workers) = &self.workers else {
            return self.own.snapshot().map_err(|e| e.to_string());
        };
        // One snapshot at a time across the control channels: a worker's
        // stdout carries one answer per request, in order.
        let mut workers = workers.lock().unwrap_or_else(|e| e.into_inner());
        let Some(workers) = workers.as_mut() else {
            return Err("the server is stopping".into());
        };
        let own = self.own.snapshot().map_err(|e| e.to_string())?;
        let theirs = workers.snapshot().map_err(|e| e.to_string())?;
        Ok(ServerReport::gather(own, theirs))
    }

    fn stop_workers(&self) -> anyhow::Result<Vec<ServerReport>> {
        let Some(workers) = &self.workers else {
            return Ok(Vec::new());
        };
        let taken = workers.lock().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(workers) => Ok(workers.stop().context("stopping the worker processes")?),
            None => Ok(Vec::new()),
        }
    }
}

fn print_line(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// Answers one control line; `None` for the lines that answer nothing
/// (blank, `stop`).
fn answer(line: Result<&[u8], LineError>, control: &Control) -> Option<String> {
    let command = match line.and_then(control_protocol::parse_line) {
        Ok(Some(command)) => command,
        Ok(None) => return None,
        Err(e) => return Some(control_protocol::error_reply(&e.to_string())),
    };
    match command {
        Command::Snapshot => Some(match control.snapshot() {
            Ok(report) => serde_json::to_string(&report).unwrap_or_else(|e| {
                control_protocol::error_reply(&format!("cannot encode snapshot: {e}"))
            }),
            Err(e) => control_protocol::error_reply(&e),
        }),
        Command::Stop => {
            let _ = sys::signal::request_shutdown();
            None
        }
    }
}

/// Answers control lines from `input` until it ends, fails, or `reply`
/// fails (the other side went away).
fn serve_control_lines(
    input: impl BufRead,
    control: &Control,
    mut reply: impl FnMut(&str) -> std::io::Result<()>,
) {
    let mut lines = LineReader::new(input);
    while let Ok(Some(line)) = lines.next_line() {
        if let Some(answer) = answer(line, control)
            && reply(&answer).is_err()
        {
            return;
        }
    }
}

fn spawn_stdin_commands(control: Control, exit_on_eof: bool) {
    std::thread::spawn(move || {
        serve_control_lines(std::io::stdin().lock(), &control, print_line);
        if exit_on_eof {
            let _ = sys::signal::request_shutdown();
        }
    });
}

/// Control connections served at once; more are answered with an error and
/// closed, so a flood of connections cannot exhaust the server's threads.
const MAX_CONTROL_CONNECTIONS: usize = 16;

fn spawn_control_socket(listener: TcpListener, control: Control) {
    std::thread::spawn(move || {
        let open = Arc::new(AtomicUsize::new(0));
        for mut stream in listener.incoming().flatten() {
            if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONTROL_CONNECTIONS {
                open.fetch_sub(1, Ordering::AcqRel);
                let refusal = control_protocol::error_reply(&format!(
                    "too many control connections (at most {MAX_CONTROL_CONNECTIONS})"
                ));
                let _ = writeln!(stream, "{refusal}");
                continue;
            }
            let control = control.clone();
            let open = Arc::clone(&open);
            std::thread::spawn(move || {
                serve_control_client(stream, &control);
                open.fetch_sub(1, Ordering::AcqRel);
            });
        }
    });
}

fn serve_control_client(stream: TcpStream, control: &Control) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    serve_control_lines(BufReader::new(stream), control, |answer| {
        writeln!(writer, "{answer}")
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn config(line: &[&str]) -> Result<ServerConfig, UsageError> {
        let argv = ["serve", "--variant", "lt-splice"].iter().chain(line);
        config_from(&Wrapper::try_parse_from(argv).unwrap().args)
    }

    #[test]
    fn kernel_counters_need_the_in_process_counts_they_check() {
        let argv = [
            "serve",
            "--variant",
            "lt-rw",
            "--kernel-counters",
            "--no-syscall-counting",
        ];
        let err = Wrapper::try_parse_from(argv).err().unwrap().to_string();
        assert!(err.contains("--no-syscall-counting"), "{err}");
        let argv = ["serve", "--variant", "lt-rw", "--no-syscall-counting"];
        assert!(
            Wrapper::try_parse_from(argv)
                .unwrap()
                .args
                .no_syscall_counting
        );
    }

    #[test]
    fn pooled_buffers_are_refused_where_there_is_no_ring_to_pool() {
        let pooled = |variant: &str| {
            let argv = ["serve", "--variant", variant, "--buffers", "pooled"];
            config_from(&Wrapper::try_parse_from(argv).unwrap().args)
        };
        assert_eq!(
            pooled("et-writev").unwrap().buffers,
            server::BufferPolicy::Pooled
        );
        assert_eq!(
            config(&[]).unwrap().buffers,
            server::BufferPolicy::PerConnection
        );
        let refused = pooled("lt-splice").unwrap_err().to_string();
        assert!(
            refused.starts_with("--buffers pooled: variant lt-splice cannot use pooled buffers:"),
            "{refused}"
        );
        assert!(pooled("tpc-rw").unwrap_err().to_string().contains("thread"));
    }

    #[test]
    fn workers_serve_with_every_setting_of_the_first_process() {
        let argv = [
            "serve",
            "--variant",
            "et-writev",
            "--protocol",
            "echo",
            "--processes",
            "3",
            "--threads",
            "2",
            "--max-frame",
            "1MiB",
            "--buffer-size",
            "16KiB",
            "--pipe-size",
            "8KiB",
            "--max-events",
            "64",
            "--buffers",
            "pooled",
            "--pool-buffers",
            "7",
            "--kernel-counters",
        ];
        let first = Wrapper::try_parse_from(argv).unwrap().args;
        let bound: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let worker_line = worker_args(&first, bound);
        let worker = Wrapper::try_parse_from(&worker_line).unwrap().args;
        let mut expected = config_from(&first).unwrap();
        expected.listen = bound;
        expected.join_port = true;
        assert_eq!(config_from(&worker).unwrap(), expected, "{worker_line:?}");
        assert_eq!(worker.processes, 1);
    }

    #[test]
    fn pipe_size_follows_the_servers_rule() {
        assert_eq!(
            config(&["--pipe-size", "4KiB"]).unwrap().pipe_size_bytes,
            4096
        );
        let refused = config(&["--pipe-size", "1KiB"]).unwrap_err().to_string();
        let mut server = ServerConfig::new("lt-splice".parse().unwrap());
        server.pipe_size_bytes = 1024;
        assert_eq!(Err(refused), server.check());
        let refused = config(&["--pipe-size", "2GiB"]).unwrap_err().to_string();
        assert_eq!(refused, "--pipe-size must be between 4 KiB and 1 GiB");
    }
}
