//! The worker side of scale-out: `epoll-bench hold-idle` (hidden), started
//! by the driver's main process. It opens its share of idle connections,
//! says how many it holds, keeps them until its stdin closes, then closes
//! them and says so. It never sends a byte: idle connections only cost the
//! server a registered socket, which is what the idle shapes measure.
//!
//! Lines on stdout, the whole protocol with the main process:
//! `stopped <reason>` (only when it could not open its full share), then
//! `held <n>`, and after stdin closes, `closed <n>`.

use std::io::{self, BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::results::scale_plan as plan;
use crate::sys::Fd;

/// Options of the hidden `hold-idle` subcommand.
#[derive(clap::Args, Clone, Debug)]
pub struct HoldArgs {
    /// The server to connect to.
    #[arg(long, value_name = "ADDR")]
    pub target: SocketAddr,
    /// Connections to open from one source address, `IP=COUNT`; repeatable.
    #[arg(long = "source", value_name = "IP=COUNT", value_parser = parse_source)]
    pub sources: Vec<(Ipv4Addr, u64)>,
    /// How long one connect may take before the worker stops.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub connect_timeout_ms: u64,
    /// How long the whole ramp may take before the worker stops.
    #[arg(long, value_name = "S", default_value_t = 600)]
    pub ramp_timeout_s: u64,
}

fn parse_source(text: &str) -> Result<(Ipv4Addr, u64), String> {
    let (ip, count) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected IP=COUNT"))?;
    let ip = ip
        .parse()
        .map_err(|e| format!("`{text}`: source address `{ip}`: {e}"))?;
    let count = count
        .parse()
        .map_err(|e| format!("`{text}`: count `{count}`: {e}"))?;
    Ok((ip, count))
}

/// Connections opened between two reads of `/proc/meminfo`: at ~20 KiB a
/// connection (both ends, user and kernel) 1,024 of them are ~20 MiB, far
/// inside the reserve.
const MEMORY_CHECK_EVERY: usize = 1024;

/// Why the ramp must stop for memory, when `MemAvailable` is below the
/// reserve (nothing when meminfo cannot be read: the connect errors still
/// stop the ramp).
fn memory_stop(held: usize) -> Option<String> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available = plan::parse_mem_available_bytes(&meminfo)?;
    (available < plan::MEMORY_RESERVE_BYTES).then(|| {
        format!(
            "memory: MemAvailable fell to {} MiB, below the {} MiB a ramp leaves the machine (memory), \
             after {held} connection(s) in this worker",
            available >> 20,
            plan::MEMORY_RESERVE_BYTES >> 20
        )
    })
}

/// Why opening stopped short, in words a result can carry.
pub fn stop_reason(error: &io::Error, source: Ipv4Addr, held: u64) -> String {
    let what = match error.raw_os_error() {
        Some(libc::EMFILE) => "this driver process reached its RLIMIT_NOFILE (a limit)".to_string(),
        Some(libc::ENFILE) => "the system-wide fs.file-max was reached (a limit)".to_string(),
        Some(libc::EADDRNOTAVAIL) => format!(
            "no local port left for source {source} (net.ipv4.ip_local_port_range, a limit)"
        ),
        Some(libc::ENOMEM) | Some(libc::ENOBUFS) => "the kernel ran out of memory".to_string(),
        Some(libc::ECONNREFUSED) => "the server refused the connection".to_string(),
        _ if error.kind() == io::ErrorKind::TimedOut => "a connect timed out: the server stopped \
             accepting (its descriptor limit or a full accept queue)"
            .to_string(),
        _ => format!("connect from {source} failed: {error}"),
    };
    format!("{what}, after {held} connection(s) in this worker")
}

/// Runs the worker: opens, reports, holds until stdin closes, closes.
pub fn run(args: &HoldArgs) -> anyhow::Result<()> {
    crate::sys::rlimit::raise_nofile_to_hard()?;
    let timeout = Duration::from_millis(args.connect_timeout_ms.max(1));
    let deadline = Instant::now() + Duration::from_secs(args.ramp_timeout_s);
    let (held, stopped) = open(args, timeout, deadline);
    let mut out = io::stdout().lock();
    if let Some(reason) = stopped {
        writeln!(out, "stopped {reason}")?;
    }
    writeln!(out, "held {}", held.len())?;
    out.flush()?;
    drop(out);
    // Hold until the main process closes our stdin (or dies).
    let mut sink = String::new();
    while io::stdin().lock().read_line(&mut sink)? > 0 {
        sink.clear();
    }
    let count = held.len();
    drop(held);
    println!("closed {count}");
    Ok(())
}

fn open(args: &HoldArgs, timeout: Duration, deadline: Instant) -> (Vec<Fd>, Option<String>) {
    let total: u64 = args.sources.iter().map(|(_, n)| n).sum();
    let mut held = Vec::with_capacity(total as usize);
    for &(source, count) in &args.sources {
        for _ in 0..count {
            if Instant::now() >= deadline {
                let reason = format!(
                    "the ramp ran out of its {} s (time), after {} connection(s) in this worker",
                    args.ramp_timeout_s,
                    held.len()
                );
                return (held, Some(reason));
            }
            if held.len() % MEMORY_CHECK_EVERY == 0
                && let Some(reason) = memory_stop(held.len())
            {
                return (held, Some(reason));
            }
            match crate::sys::client::connect_from(source, args.target, timeout) {
                Ok(fd) => held.push(fd),
                Err(error) => {
                    let reason = stop_reason(&error, source, held.len() as u64);
                    return (held, Some(reason));
                }
            }
        }
    }
    (held, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_source("127.0.0.2=500").unwrap(),
            (Ipv4Addr::new(127, 0, 0, 2), 500)
        );
        assert!(parse_source("127.0.0.2").unwrap_err().contains("IP=COUNT"));
        assert!(
            parse_source("x=1")
                .unwrap_err()
                .contains("source address `x`")
        );
        assert!(
            parse_source("127.0.0.1=-1")
                .unwrap_err()
                .contains("count `-1`")
        );
    }

    #[test]
    fn stop_reasons_name_the_limit() {
        let source = Ipv4Addr::new(127, 0, 0, 3);
        let emfile = stop_reason(&io::Error::from_raw_os_error(libc::EMFILE), source, 7);
        assert_eq!(
            emfile,
            "this driver process reached its RLIMIT_NOFILE (a limit), after 7 connection(s) in \
             this worker"
        );
        let ports = stop_reason(
            &io::Error::from_raw_os_error(libc::EADDRNOTAVAIL),
            source,
            0,
        );
        assert!(
            ports.contains("no local port left for source 127.0.0.3"),
            "{ports}"
        );
        let timeout = stop_reason(&io::Error::from(io::ErrorKind::TimedOut), source, 0);
        assert!(timeout.contains("server stopped accepting"), "{timeout}");
    }
}
