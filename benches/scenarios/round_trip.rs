//! Round-trip latency per variant × message size against a real server
//! process: one connection, ping-pong, wall time per request. Each sample's
//! window (time, latencies, server counters) is kept for the results set.

use criterion::{BenchmarkId, Criterion, Throughput};

use super::results_set::{self, Recorded};
use super::support::{BenchServer, MEASUREMENT, SAMPLES, SIZES_BYTES, WARM_UP, variants};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("round-trip");
    group
        .sample_size(SAMPLES)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT);
    for variant in variants() {
        let mut server = BenchServer::start(variant);
        for size in SIZES_BYTES {
            server.set_size(size);
            // Both directions carry the payload.
            group.throughput(Throughput::Bytes(2 * size as u64));
            let mut windows = Vec::new();
            group.bench_with_input(BenchmarkId::new(variant.name(), size), &size, |b, _| {
                b.iter_custom(|iters| {
                    let window = server.measured_window(iters);
                    let elapsed = window.elapsed;
                    windows.push(window);
                    elapsed
                })
            });
            results_set::record(Recorded {
                variant: variant.to_string(),
                size_bytes: size,
                server_command_line: server.process.command_line().to_vec(),
                windows,
            });
        }
        server.stop();
    }
    group.finish();
}

criterion::criterion_group! {
    name = round_trip;
    config = Criterion::default().nresamples(10_000).without_plots();
    targets = bench
}
