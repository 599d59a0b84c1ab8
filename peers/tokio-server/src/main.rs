//! `tokio-server`: a reference peer for epoll-bench (peers/README.md).
//! It serves the same two wire protocols as `epoll-bench serve`, written
//! the way a tokio service usually is, so that its syscalls and CPU per
//! request can be measured beside the built-in variants.

mod conn;
mod frame;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

/// Default `--max-frame`, the built-in servers' default (16 MiB).
const DEFAULT_MAX_FRAME_BYTES: u32 = 16 << 20;
/// Pause after a failed accept (EMFILE and the like): retrying at once
/// would spin on a listener that stays readable.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Protocol {
    /// `len: u32 BE` + payload, answered by `len`, `seq: u32 BE`, payload.
    Frame,
    /// Every byte written back in order.
    Echo,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Runtime {
    CurrentThread,
    MultiThread,
}

/// A tokio TCP server for the frame and echo protocols of epoll-bench.
#[derive(Debug, Parser)]
#[command(name = "tokio-server")]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed first).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    #[arg(long, value_enum, default_value_t = Protocol::Frame)]
    protocol: Protocol,
    #[arg(long, value_enum, default_value_t = Runtime::CurrentThread)]
    runtime: Runtime,
    /// Worker threads of the multi-thread runtime (default: one per CPU).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Largest frame payload in bytes; a larger `len` closes the connection.
    #[arg(long, default_value_t = DEFAULT_MAX_FRAME_BYTES)]
    max_frame: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let mut builder = match (args.runtime, args.threads) {
        (Runtime::CurrentThread, Some(_)) => {
            return Err("--threads applies to --runtime multi-thread only".into());
        }
        (Runtime::CurrentThread, None) => tokio::runtime::Builder::new_current_thread(),
        (Runtime::MultiThread, threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = threads {
                builder.worker_threads(n.into());
            }
            builder
        }
    };
    let runtime = builder
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    let served = runtime.block_on(serve(args));
    // Connections still open are dropped (closed) here; a task stuck in
    // nothing but I/O cannot hold the exit up past this bound.
    runtime.shutdown_timeout(Duration::from_millis(100));
    served
}

/// Listens, prints `listening on ADDR`, serves until SIGTERM or SIGINT.
async fn serve(args: &Args) -> Result<(), String> {
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot watch SIGINT: {e}"))?;
    let listener = TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    println!("listening on {local}");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
        () = accept_loop(listener, args.protocol, args.max_frame) => {}
    }
    Ok(())
}

async fn accept_loop(listener: TcpListener, protocol: Protocol, max_frame_bytes: u32) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(serve_connection(stream, peer, protocol, max_frame_bytes));
            }
            Err(e) => {
                eprintln!("tokio-server: accept failed, retrying shortly: {e}");
                tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    protocol: Protocol,
    max_frame_bytes: u32,
) {
    // Responses are written whole per batch: Nagle would only delay them.
    if let Err(e) = stream.set_nodelay(true) {
        eprintln!("tokio-server: {peer}: cannot set TCP_NODELAY: {e}");
    }
    let served = match protocol {
        Protocol::Frame => conn::serve_frames(stream, max_frame_bytes).await,
        Protocol::Echo => conn::serve_echo(stream).await,
    };
    if let Err(e) = served {
        eprintln!("tokio-server: {peer}: closed: {e}");
    }
}
