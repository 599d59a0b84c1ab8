//! Building cases and engine configs, an observer that records what it is
//! told, and the assertion that a run was clean.

use std::net::SocketAddr;
use std::time::Duration;

use epoll_bench::driver::measurement::{EngineConfig, Progress, WindowObserver};

use epoll_bench::protocol::Protocol;
use epoll_bench::results::measurement::CaseMeasurement;
use epoll_bench::results::workload::{Case, Shape, SizeDistribution};

pub(crate) fn case(
    protocol: Protocol,
    shape: Shape,
    connections: u32,
    sizes: SizeDistribution,
) -> Case {
    Case {
        profile: "engine-test".into(),
        label: format!("{shape:?}"),
        protocol,
        connections,
        shape,
        sizes,
        seed: 42,
        sweep_size_bytes: None,
        client: Default::default(),
    }
}

pub(crate) fn config(target: SocketAddr) -> EngineConfig {
    EngineConfig {
        target,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(300),
        driver_threads: 2,
        driver_cpus: None,
        drain_timeout: Duration::from_secs(2),
    }
}

pub(crate) fn fixed(bytes: u32) -> SizeDistribution {
    SizeDistribution::Fixed { bytes }
}

/// Records the order of observer calls.
#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) calls: Vec<&'static str>,
    pub(crate) progress_reports: u64,
}

impl WindowObserver for Recorder {
    fn window_started(&mut self) {
        self.calls.push("start");
    }
    fn window_ended(&mut self) {
        self.calls.push("end");
    }
    fn progress(&mut self, _progress: &Progress) {
        self.progress_reports += 1;
    }
}

pub(crate) fn assert_clean(m: &CaseMeasurement) {
    assert!(
        m.verification.passed(),
        "verification failed: {:?}",
        m.verification
    );
    assert!(m.requests_completed > 0, "nothing completed: {m:?}");
    assert_eq!(m.latency.samples, m.requests_completed);
    assert!(m.stopped_early.is_none(), "{:?}", m.stopped_early);
}
