//! `epoll-bench serve`: one variant until SIGINT/SIGTERM.
//!
//! stdout carries exactly: one `listening on IP:PORT` line, one JSON line
//! per `snapshot` command, and one final JSON line at exit. Commands arrive
//! as lines on stdin and, with `--control ADDR`, on a TCP control socket.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use anyhow::Context;
use clap::Args;

use crate::cli::{UsageError, parse_bytes, parse_cpu_list};
use crate::protocol::{DEFAULT_MAX_FRAME_BYTES, Protocol};
use crate::server::{self, Server, ServerConfig, ServerControl, Variant};
use crate::sys;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which server: lt-rw, lt-writev, lt-splice, et-rw, et-writev, et-splice,
    /// et-rw-shortread, et-writev-shortread.
    #[arg(long)]
    pub variant: String,
    #[arg(long, value_enum, default_value_t = Protocol::Frame)]
    pub protocol: Protocol,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Independent event loops, each with its own SO_REUSEPORT listener.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Largest accepted frame payload (frame protocol).
    #[arg(long, default_value_t = DEFAULT_MAX_FRAME_BYTES as u64, value_parser = parse_bytes)]
    pub max_frame: u64,
    /// Per-connection ring buffer (rw, writev).
    #[arg(long, default_value_t = server::DEFAULT_BUFFER_SIZE_BYTES as u64, value_parser = parse_bytes)]
    pub buffer_size: u64,
    /// Per-connection pipe size requested with F_SETPIPE_SZ (splice).
    #[arg(long, default_value_t = server::DEFAULT_PIPE_SIZE_BYTES as u64, value_parser = parse_bytes)]
    pub pipe_size: u64,
    /// Most events one epoll_wait returns.
    #[arg(long, default_value_t = server::DEFAULT_MAX_EVENTS)]
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
    if args.threads == 0 {
        return Err(UsageError("--threads must be at least 1".into()));
    }
    if args.buffer_size < 64 || args.buffer_size > 1 << 30 {
        return Err(UsageError(
            "--buffer-size must be between 64 B and 1 GiB".into(),
        ));
    }
    if args.pipe_size < 4096 || args.pipe_size > 1 << 30 {
        return Err(UsageError(
            "--pipe-size must be between 4 KiB and 1 GiB".into(),
        ));
    }
    if args.max_events == 0 {
        return Err(UsageError("--max-events must be at least 1".into()));
    }
    let mut config = ServerConfig::new(variant);
    config.protocol = args.protocol;
    config.listen = listen;
    config.threads = args.threads;
    config.max_frame_bytes = max_frame_bytes;
    config.buffer_size_bytes = args.buffer_size as usize;
    config.pipe_size_bytes = args.pipe_size as usize;
    config.max_events = args.max_events;
    config.debug_uncounted_read = args.debug_uncounted_read;
    config.kernel_counters = args.kernel_counters;
    Ok(config)
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = config_from(&args)?;
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
    print_line(&format!("listening on {}", server.local_addr()))
        .with_context(|| format!("listening on {listen}, but stdout is gone"))?;

    let control = server.control();
    spawn_stdin_commands(control.clone(), args.exit_on_stdin_eof);
    if let Some(listener) = control_listener {
        spawn_control_socket(listener, control);
    }

    sys::signal::wait_for_shutdown().context("waiting for SIGINT/SIGTERM")?;
    let report = server.shutdown()?;
    print_line(&serde_json::to_string(&report)?)?;
    Ok(())
}

fn print_line(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// Answers one control command; `None` for the commands that answer nothing.
fn answer(command: &str, control: &ServerControl) -> Option<String> {
    match command.trim() {
        "" => None,
        "snapshot" => Some(match control.snapshot() {
            Ok(report) => serde_json::to_string(&report)
                .unwrap_or_else(|e| format!(r#"{{"error":"cannot encode snapshot: {e}"}}"#)),
            Err(e) => serde_json::json!({ "error": e.to_string() }).to_string(),
        }),
        "stop" => {
            let _ = sys::signal::request_shutdown();
            None
        }
        other => Some(
            serde_json::json!({
                "error": format!("unknown command `{other}` (known: snapshot, stop)")
            })
            .to_string(),
        ),
    }
}

fn spawn_stdin_commands(control: ServerControl, exit_on_eof: bool) {
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if let Some(reply) = answer(&line, &control)
                && print_line(&reply).is_err()
            {
                break;
            }
        }
        if exit_on_eof {
            let _ = sys::signal::request_shutdown();
        }
    });
}

fn spawn_control_socket(listener: TcpListener, control: ServerControl) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let control = control.clone();
            std::thread::spawn(move || serve_control_client(stream, control));
        }
    });
}

fn serve_control_client(stream: TcpStream, control: ServerControl) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    // A control client is trusted, but a line without end must not grow
    // without bound.
    let mut reader = BufReader::new(std::io::Read::take(stream, 1 << 20));
    let mut line = String::new();
    while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
        if let Some(reply) = answer(&line, &control)
            && writeln!(writer, "{reply}").is_err()
        {
            return;
        }
        line.clear();
    }
}
