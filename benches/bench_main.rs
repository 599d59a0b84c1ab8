//! `cargo bench`: the criterion groups, one scenario per file under
//! `scenarios/`. The last group writes the results set
//! (`results/cargo-bench/`) that `epoll-bench chart` renders.

mod scenarios;

criterion::criterion_main!(
    scenarios::round_trip::round_trip,
    scenarios::server_syscalls::server_syscalls,
    scenarios::results_set::results_set,
);
