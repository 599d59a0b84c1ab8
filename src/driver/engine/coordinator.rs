//! The calling thread's side of a case: it waits for every worker's
//! connections, then moves the shared phase through warm-up, the measured
//! window and the drain, reporting progress and calling the observer at the
//! window's exact edges.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::driver::engine::error::EngineError;
use crate::driver::engine::shared::{Phase, Shared};
use crate::driver::engine::worker::{MAX_DRAIN, SetupFailure};
use crate::driver::measurement::{CasePhase, EngineConfig, Progress, WindowObserver};
use crate::metrics::cpu_steal::CpuTimes;

/// How often the coordinator looks at the workers and reports progress.
const TICK: Duration = Duration::from_millis(100);
/// Extra time, beyond the drain timeout, that workers get to report.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What the coordinator learnt about the window.
pub(super) struct Window {
    pub(super) measured_seconds: f64,
    pub(super) stopped_early: bool,
    pub(super) cpu_steal_percent: Option<f64>,
    /// The whole machine's busy CPU seconds over the window itself.
    pub(super) machine_busy_cpu_seconds: Option<f64>,
}

/// Runs the case on the calling thread while the workers drive it: waits
/// for every connection, runs `after_connect` (the idle ramp of driver
/// worker processes: after the active set, so a server that reaches its
/// limit during the ramp still serves the connections that are measured),
/// then warm-up, the measured window and the drain.
pub(super) fn coordinate(
    config: &EngineConfig,
    observer: &mut dyn WindowObserver,
    shared: &Shared,
    thread_count: usize,
    total_connections: u64,
    setup: &mpsc::Receiver<(usize, Result<u64, SetupFailure>)>,
    after_connect: &mut dyn FnMut() -> Result<(), EngineError>,
) -> Result<Window, EngineError> {
    await_connections(
        config,
        observer,
        shared,
        thread_count,
        total_connections,
        setup,
    )?;
    after_connect()?;
    let (mut window, steal_at_start) = warm_up_and_measure(config, observer, shared, thread_count);
    drain(config, observer, shared, thread_count);
    // Through the drain: a stall there leaves requests unanswered.
    window.cpu_steal_percent = steal_at_start
        .zip(CpuTimes::now())
        .and_then(|(start, end)| start.steal_percent_until(&end));
    Ok(window)
}

/// Connections: every thread reports once, within its connect timeout. The
/// first failure stops the others and becomes the case's error.
fn await_connections(
    config: &EngineConfig,
    observer: &mut dyn WindowObserver,
    shared: &Shared,
    thread_count: usize,
    total_connections: u64,
    setup: &mpsc::Receiver<(usize, Result<u64, SetupFailure>)>,
) -> Result<(), EngineError> {
    let connect_started = Instant::now();
    let mut opened = 0;
    let mut first_failure = None;
    let mut reported = 0;
    while reported < thread_count {
        match setup.recv_timeout(TICK) {
            Ok((thread, result)) => {
                reported += 1;
                match result {
                    Ok(count) => opened += count,
                    Err(SetupFailure::Connect {
                        opened: count,
                        error,
                    }) => {
                        opened += count;
                        first_failure
                            .get_or_insert((thread, SetupFailure::Connect { opened: 0, error }));
                    }
                    Err(other) => {
                        first_failure.get_or_insert((thread, other));
                    }
                }
                // Once one thread failed, the others need not finish.
                if first_failure.is_some() {
                    shared.enter(Phase::Stop);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                report(
                    observer,
                    shared,
                    CasePhase::Connecting,
                    connect_started,
                    Duration::ZERO,
                );
            }
            // A worker died without reporting (a panic): joining says so.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(EngineError::Io {
                    context: "driver thread exited while connecting",
                    source: io::Error::other("no setup report"),
                });
            }
        }
    }
    let Some((thread, failure)) = first_failure else {
        return Ok(());
    };
    Err(match failure {
        SetupFailure::Connect { error, .. } => EngineError::Connect {
            target: config.target,
            opened,
            requested: total_connections,
            source: error,
        },
        SetupFailure::Pin { cpu, error } => EngineError::Pin {
            thread,
            cpu,
            source: error,
        },
        SetupFailure::Io { context, error } => EngineError::Io {
            context,
            source: error,
        },
    })
}

/// Warm-up, then the measured window. The observer snapshots the server
/// first, then the window opens, so that both windows are shifted by the
/// same snapshot latency at both ends. Without warm-up the window opens
/// with the first request, so that nothing sent escapes it.
///
/// Returns the window (its CPU steal still unknown: it is measured through
/// the drain) and the CPU counters at its start.
fn warm_up_and_measure(
    config: &EngineConfig,
    observer: &mut dyn WindowObserver,
    shared: &Shared,
    thread_count: usize,
) -> (Window, Option<CpuTimes>) {
    let mut stopped_early = false;
    if !config.warmup.is_zero() {
        shared
            .send_start_ns
            .store(shared.now_ns(), Ordering::Release);
        shared.enter(Phase::WarmUp);
        stopped_early = !run_for(
            observer,
            shared,
            thread_count,
            CasePhase::WarmingUp,
            config.warmup,
        );
    }
    observer.window_started();
    let steal_at_start = CpuTimes::now();
    let window_started = Instant::now();
    let window_start_ns = shared.now_ns();
    if config.warmup.is_zero() {
        shared
            .send_start_ns
            .store(window_start_ns, Ordering::Release);
    }
    shared
        .window_start_ns
        .store(window_start_ns, Ordering::Release);
    shared.enter(Phase::Measure);
    if !stopped_early {
        stopped_early = !run_for(
            observer,
            shared,
            thread_count,
            CasePhase::Measuring,
            config.duration,
        );
    }
    observer.window_ended();
    let measured_seconds = window_started.elapsed().as_secs_f64();
    let machine_busy_cpu_seconds = steal_at_start
        .zip(CpuTimes::now())
        .and_then(|(start, end)| {
            start.busy_seconds_until(&end, crate::sys::memory::clock_ticks_per_second())
        });
    shared
        .window_end_ns
        .store(shared.now_ns(), Ordering::Release);
    let window = Window {
        measured_seconds,
        stopped_early,
        cpu_steal_percent: None,
        machine_busy_cpu_seconds,
    };
    (window, steal_at_start)
}

/// Drain: workers count what is still unanswered when it ends.
fn drain(
    config: &EngineConfig,
    observer: &mut dyn WindowObserver,
    shared: &Shared,
    thread_count: usize,
) {
    shared.enter(Phase::Drain);
    let drain_started = Instant::now();
    // Workers end their own drains (a stall, or MAX_DRAIN); this only
    // bounds a worker that stopped reporting.
    let drain_limit = MAX_DRAIN + DRAIN_GRACE;
    while shared.drained_threads.load(Ordering::Acquire) < thread_count
        && drain_started.elapsed() < drain_limit
    {
        std::thread::sleep(TICK.min(Duration::from_millis(5)));
        report(
            observer,
            shared,
            CasePhase::Draining,
            drain_started,
            config.drain_timeout,
        );
    }
}

/// Lets the workers run for `length`, reporting progress. Returns false
/// when every thread finished early (nothing left to send).
fn run_for(
    observer: &mut dyn WindowObserver,
    shared: &Shared,
    thread_count: usize,
    phase: CasePhase,
    length: Duration,
) -> bool {
    let started = Instant::now();
    loop {
        if shared.finished_threads.load(Ordering::Acquire) >= thread_count {
            return false;
        }
        let elapsed = started.elapsed();
        if elapsed >= length {
            return true;
        }
        std::thread::sleep((length - elapsed).min(TICK));
        report(observer, shared, phase, started, length);
    }
}

fn report(
    observer: &mut dyn WindowObserver,
    shared: &Shared,
    phase: CasePhase,
    started: Instant,
    planned: Duration,
) {
    let requests_completed_total = shared
        .completed
        .iter()
        .map(|c| c.0.load(Ordering::Relaxed))
        .sum();
    observer.progress(&Progress {
        phase,
        phase_elapsed_seconds: started.elapsed().as_secs_f64(),
        phase_planned_seconds: planned.as_secs_f64(),
        requests_completed_total,
    });
}
