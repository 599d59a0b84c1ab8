//! Server syscalls per round trip, per variant × message size, measured
//! with a criterion [`Measurement`] whose value is the server's syscall
//! count delta between two `snapshot`s: criterion's statistics (outliers,
//! confidence intervals, change detection) then apply to syscall counts.

use std::sync::{Arc, Mutex, OnceLock};

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput};

use super::support::{BenchServer, MEASUREMENT, SAMPLES, SIZES_BYTES, WARM_UP, variants};

/// Server syscalls (all serving threads, all kinds) over a measured
/// routine. The server is attached by the bench before measuring.
#[derive(Clone, Default)]
pub struct ServerSyscalls {
    server: Arc<Mutex<Option<BenchServer>>>,
}

impl ServerSyscalls {
    fn total(&self) -> u64 {
        let mut guard = self.server.lock().unwrap_or_else(|e| e.into_inner());
        let server = guard
            .as_mut()
            .expect("a server is attached while measuring");
        server.snapshot().total.syscalls.calls.total()
    }

    fn with_server<T>(&self, f: impl FnOnce(&mut BenchServer) -> T) -> T {
        let mut guard = self.server.lock().unwrap_or_else(|e| e.into_inner());
        f(guard.as_mut().expect("a server is attached"))
    }
}

impl Measurement for ServerSyscalls {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        self.total()
    }
    fn end(&self, start: u64) -> u64 {
        self.total().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &SyscallFormatter
    }
}

struct SyscallFormatter;

impl ValueFormatter for SyscallFormatter {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "syscalls"
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        // Payload bytes moved per server syscall.
        let per_iteration = match throughput {
            Throughput::Bytes(b) | Throughput::BytesDecimal(b) => *b as f64,
            Throughput::Elements(e) | Throughput::ElementsAndBytes { elements: e, .. } => *e as f64,
            Throughput::Bits(b) => *b as f64 / 8.0,
        };
        for v in values.iter_mut() {
            *v = if *v > 0.0 { per_iteration / *v } else { 0.0 };
        }
        "bytes/syscall"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "syscalls"
    }
}

fn measurement() -> &'static ServerSyscalls {
    static SHARED: OnceLock<ServerSyscalls> = OnceLock::new();
    SHARED.get_or_init(ServerSyscalls::default)
}

pub fn config() -> Criterion<ServerSyscalls> {
    Criterion::default()
        .with_measurement(measurement().clone())
        .sample_size(SAMPLES)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .nresamples(10_000)
        .without_plots()
}

fn bench(c: &mut Criterion<ServerSyscalls>) {
    let shared = measurement();
    let mut group = c.benchmark_group("server-syscalls");
    for variant in variants() {
        *shared.server.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(BenchServer::start(variant));
        for size in [SIZES_BYTES[0], SIZES_BYTES[SIZES_BYTES.len() - 1]] {
            shared.with_server(|s| s.set_size(size));
            group.throughput(Throughput::Bytes(2 * size as u64));
            group.bench_with_input(BenchmarkId::new(variant.name(), size), &size, |b, _| {
                b.iter(|| shared.with_server(|s| s.round_trip()))
            });
        }
        let server = shared
            .server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(server) = server {
            server.stop();
        }
    }
    group.finish();
}

criterion::criterion_group! {
    name = server_syscalls;
    config = config();
    targets = bench
}
