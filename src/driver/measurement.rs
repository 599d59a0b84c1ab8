//! The contract between the load engine (`engine`) and whoever runs it
//! (the orchestrator, `drive`): how to drive a case, and the callbacks at the
//! window's boundaries and for live progress. What the engine measures is a
//! results type, [`crate::results::measurement::CaseMeasurement`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Called by the engine at the exact boundaries of the measured window, so
/// that the caller can snapshot the server's counters there.
pub trait WindowObserver {
    fn window_started(&mut self);
    fn window_ended(&mut self);
    /// Called about ten times a second while the case runs (for a live
    /// progress display). The default ignores it.
    fn progress(&mut self, _progress: &Progress) {}
}

/// Which part of a case is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CasePhase {
    Connecting,
    WarmingUp,
    Measuring,
    /// Waiting for the responses still outstanding after the window.
    Draining,
}

/// A live view of a running case, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub phase: CasePhase,
    /// Time spent in this phase so far, and its planned length (the drain
    /// timeout for `Draining`, zero for `Connecting`).
    pub phase_elapsed_seconds: f64,
    pub phase_planned_seconds: f64,
    /// Responses received since the case started, all phases together;
    /// successive differences give a live request rate.
    pub requests_completed_total: u64,
}

/// A [`WindowObserver`] that does nothing (e.g. no control interface).
pub struct NoObserver;

impl WindowObserver for NoObserver {
    fn window_started(&mut self) {}
    fn window_ended(&mut self) {}
}

/// How long and how hard to drive one case.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub target: std::net::SocketAddr,
    pub warmup: Duration,
    pub duration: Duration,
    /// Driver threads; connections are spread over them.
    pub driver_threads: usize,
    /// CPUs the driver threads may run on (`None`: no pinning).
    pub driver_cpus: Option<Vec<usize>>,
    /// How long to wait, after the window, for outstanding responses.
    pub drain_timeout: Duration,
}
