//! A real server per variant and a one-connection frame client that
//! checks every byte and `seq` of every response.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use epoll_bench::driver::server_process::{ServerControl, ServerProcess, ServerSpec};
use epoll_bench::protocol::{
    Protocol, RESPONSE_HEADER_BYTES, parse_response_header, request_header,
};
use epoll_bench::server::Variant;
use epoll_bench::server::report::ServerReport;
use epoll_bench::sys::rusage::ThreadUsage;

/// Every variant that serves the frame protocol these benches speak, in
/// report order (file-only strategies are left out).
pub fn variants() -> Vec<Variant> {
    Variant::ALL
        .into_iter()
        .filter(|v| v.serves(Protocol::Frame))
        .collect()
}

/// Few sizes, so that the whole run stays short: small, page-sized, and
/// large enough for splice to matter.
pub const SIZES_BYTES: [u32; 3] = [64, 4096, 65536];

pub const WARM_UP: Duration = Duration::from_millis(300);
pub const MEASUREMENT: Duration = Duration::from_millis(900);
pub const SAMPLES: usize = 10;

/// The `epoll-bench` binary cargo built for this bench.
pub fn server_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_epoll-bench"))
}

/// Whether criterion runs in `--test` mode (each bench once) or lists.
pub fn quick_mode() -> bool {
    std::env::args().any(|a| a == "--test" || a == "--list")
}

/// A running server and one client connection to it.
pub struct BenchServer {
    pub variant: Variant,
    pub process: ServerProcess,
    stream: TcpStream,
    next_seq: u32,
    payload: Vec<u8>,
    received: Vec<u8>,
}

impl BenchServer {
    pub fn start(variant: Variant) -> BenchServer {
        let spec = ServerSpec::new(server_binary(), variant, Protocol::Frame);
        let process = ServerProcess::start(&spec)
            .unwrap_or_else(|e| panic!("starting the {variant} server: {e}"));
        let stream = TcpStream::connect(process.addr())
            .unwrap_or_else(|e| panic!("connecting to the {variant} server: {e}"));
        stream.set_nodelay(true).expect("TCP_NODELAY");
        // Bounded: a stuck server fails the bench instead of hanging it.
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        BenchServer {
            variant,
            process,
            stream,
            next_seq: 0,
            payload: Vec::new(),
            received: Vec::new(),
        }
    }

    /// Uses `size` byte payloads from now on (a seeded pattern, different
    /// per size so a stale response cannot pass the check).
    pub fn set_size(&mut self, size: u32) {
        self.payload = (0..size)
            .map(|i| (i.wrapping_mul(31) ^ size.rotate_left(7)) as u8)
            .collect();
        self.received = vec![0; size as usize];
    }

    /// One request and its verified response.
    pub fn round_trip(&mut self) {
        let header = request_header(self.payload.len() as u32);
        self.stream.write_all(&header).expect("send header");
        self.stream.write_all(&self.payload).expect("send payload");
        let mut response = [0u8; RESPONSE_HEADER_BYTES];
        self.stream
            .read_exact(&mut response)
            .expect("response header");
        let (len, seq) = parse_response_header(&response);
        assert_eq!(
            len as usize,
            self.payload.len(),
            "{}: response length",
            self.variant
        );
        assert_eq!(seq, self.next_seq, "{}: response seq", self.variant);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.stream
            .read_exact(&mut self.received)
            .expect("response payload");
        assert!(
            self.received == self.payload,
            "{}: payload mismatch",
            self.variant
        );
    }

    pub fn snapshot(&mut self) -> ServerReport {
        self.process
            .snapshot()
            .unwrap_or_else(|e| panic!("{} snapshot: {e}", self.variant))
    }

    /// `iters` round trips between two snapshots: wall time, each round
    /// trip's latency in µs, and the server's report over the window.
    pub fn measured_window(&mut self, iters: u64) -> Window {
        let start = self.snapshot();
        let usage_before = this_thread_usage();
        let mut latencies_us = Vec::with_capacity(iters as usize);
        let began = Instant::now();
        for _ in 0..iters {
            let sent = Instant::now();
            self.round_trip();
            latencies_us.push(sent.elapsed().as_secs_f64() * 1e6);
        }
        let elapsed = began.elapsed();
        let driver_usage = this_thread_usage().since(&usage_before);
        let end = self.snapshot();
        Window {
            iters,
            elapsed,
            latencies_us,
            server: end.since(&start),
            driver_usage,
        }
    }

    pub fn stop(self) {
        let variant = self.variant;
        drop(self.stream);
        if let Err(e) = self.process.stop() {
            panic!("stopping the {variant} server: {e}");
        }
    }
}

/// What one criterion sample measured.
#[derive(Clone, Debug)]
pub struct Window {
    pub iters: u64,
    pub elapsed: Duration,
    pub latencies_us: Vec<f64>,
    pub server: ServerReport,
    /// CPU and context switches of the client thread inside the window.
    pub driver_usage: ThreadUsage,
}

fn this_thread_usage() -> ThreadUsage {
    epoll_bench::sys::rusage::this_thread().expect("getrusage(RUSAGE_THREAD)")
}
