//! The load engine: drives one [`Case`] against a running server and
//! measures it ([`run_case`]).
//!
//! The calling thread coordinates; `config.driver_threads` worker threads
//! (each pinned to one of `config.driver_cpus` when given) own the
//! connections, round-robin, each with its own epoll, read buffer, latency
//! histogram and counters, so the hot path shares nothing. A case goes
//! through phases the coordinator announces: open every connection (a
//! refused or unreachable target is an error here), warm up, the measured
//! window (the observer is called at its exact boundaries while the
//! workers keep sending), then a drain in which no new request is sent and
//! outstanding ones get `config.drain_timeout` to come back. Every loop is
//! bounded in time: a server that stops answering shows up as unanswered
//! requests, one that closes or dies as unexpected closes.
//!
//! What counts, and how:
//! - closed-loop shapes (ping-pong, pipelined, bulk, churn, the active part
//!   of idle-active) measure latency from the moment a request is issued;
//! - open-loop shapes (constant rate, trace) issue each request at its
//!   intended time whether or not earlier ones were answered, and measure
//!   latency from that intended time (wrk2-style correction of coordinated
//!   omission): a stalled server inflates latency instead of hiding it;
//! - requests, payload bytes and latencies are counted for responses that
//!   arrive inside the window; driver CPU time and syscalls are taken per
//!   thread at the window's edges;
//! - every response header (`len`, `seq`) and payload byte is checked;
//!   failures are counted in [`VerificationCounts`], never panicked on.

mod connection;
mod latency;
mod plan;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::driver::measurement::{CasePhase, EngineConfig, Progress, WindowObserver};

use crate::driver::payload::PayloadSource;
use crate::driver::workload::TraceEvent;
use crate::metrics::cpu_steal::CpuTimes;
use crate::results::measurement::{CaseMeasurement, VerificationCounts};
use crate::results::workload::{Case, Shape};
use crate::sys::SyscallCounts;
use crate::sys::rusage::ThreadUsage;

use worker::{Phase, SetupFailure, Shared, ThreadOutcome, Worker, WorkerInit};

/// How often the coordinator looks at the workers and reports progress.
const TICK: Duration = Duration::from_millis(100);
/// Extra time, beyond the drain timeout, that workers get to report.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("case `{label}`: {reason}")]
    InvalidCase { label: String, reason: String },
    #[error(
        "{connections} connections need about {needed} file descriptors, but the hard \
         RLIMIT_NOFILE is {hard_limit}: raise it (ulimit -Hn, /etc/security/limits.conf) \
         or ask for fewer connections"
    )]
    FdLimit {
        connections: u64,
        needed: u64,
        hard_limit: u64,
    },
    #[error("cannot connect to {target}: opened {opened} of {requested} connections: {source}")]
    Connect {
        target: SocketAddr,
        opened: u64,
        requested: u64,
        #[source]
        source: io::Error,
    },
    #[error("cannot pin driver thread {thread} to CPU {cpu}: {source}")]
    Pin {
        thread: usize,
        cpu: usize,
        #[source]
        source: io::Error,
    },
    /// The trace file of a trace shape could not be read or parsed (the
    /// message names file, line and field).
    #[error(transparent)]
    Trace(#[from] crate::driver::trace::TraceError),
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("driver thread {thread} panicked")]
    WorkerPanicked { thread: usize },
}

/// Drives `case` against `config.target` and measures the window.
///
/// Trace shapes read their trace file here; callers that already hold the
/// events use [`run_case_with_trace`].
pub fn run_case(
    case: &Case,
    config: &EngineConfig,
    observer: &mut dyn WindowObserver,
) -> Result<CaseMeasurement, EngineError> {
    let events = match &case.shape {
        Shape::Trace { path, .. } => load_trace(path)?,
        _ => Vec::new(),
    };
    run_case_with_trace(case, &events, config, observer)
}

/// Like [`run_case`], with the events of a trace shape given (its `path` is
/// then only a label). Trace replay starts with the warm-up, each event at
/// `offset / speed` on its connection (trace connection ids are also the
/// payload streams); the case ends early once every event is answered.
pub fn run_case_with_trace(
    case: &Case,
    trace: &[TraceEvent],
    config: &EngineConfig,
    observer: &mut dyn WindowObserver,
) -> Result<CaseMeasurement, EngineError> {
    let plan = plan::plan(case, config.driver_threads, trace)?;
    plan::ensure_fd_capacity(plan.total_connections)?;
    let payload = PayloadSource::new(case.seed);
    let thread_count = plan.threads.len();
    let shared = Shared::new(thread_count).map_err(|source| EngineError::Io {
        context: "creating the driver threads' eventfds",
        source,
    })?;
    let (setup_sender, setup_receiver) = mpsc::channel::<(usize, Result<u64, SetupFailure>)>();

    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(thread_count);
        let mut spawn_error = None;
        for (index, slots) in plan.threads.into_iter().enumerate() {
            let init = WorkerInit {
                index,
                shared: &shared,
                target: config.target,
                cpu: config
                    .driver_cpus
                    .as_ref()
                    .filter(|cpus| !cpus.is_empty())
                    .map(|cpus| cpus[index % cpus.len()]),
                drain_timeout: config.drain_timeout,
                protocol: case.protocol,
                payload: &payload,
                sizes: &case.sizes,
                seed: case.seed,
                slots,
            };
            let sender = setup_sender.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("driver-{index}"))
                .spawn_scoped(scope, move || worker_main(init, sender));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(source) => {
                    spawn_error = Some(EngineError::Io {
                        context: "spawning a driver thread",
                        source,
                    });
                    break;
                }
            }
        }
        drop(setup_sender);
        let coordinated = match spawn_error {
            Some(error) => Err(error),
            None => coordinate(
                case,
                config,
                observer,
                &shared,
                thread_count,
                plan.total_connections,
                &setup_receiver,
            ),
        };
        // Whatever happened, no worker outlives the case.
        shared.enter(Phase::Stop);
        let mut outcomes = Vec::with_capacity(handles.len());
        let mut worker_error = None;
        for (thread, handle) in handles.into_iter().enumerate() {
            match handle.join() {
                Ok(Ok(Some(outcome))) => outcomes.push(outcome),
                Ok(Ok(None)) => {}
                Ok(Err(source)) => {
                    worker_error.get_or_insert(EngineError::Io {
                        context: "driver thread",
                        source,
                    });
                }
                Err(_) => {
                    worker_error.get_or_insert(EngineError::WorkerPanicked { thread });
                }
            }
        }
        // A panic explains any other failure; otherwise the coordinator's
        // error (e.g. refused connections) is the one worth reporting.
        if let Some(panicked @ EngineError::WorkerPanicked { .. }) = worker_error {
            return Err(panicked);
        }
        let window = coordinated?;
        if let Some(error) = worker_error {
            return Err(error);
        }
        Ok(merge(
            case,
            &plan.target_rate_per_second,
            thread_count,
            window,
            outcomes,
        ))
    })
}

/// The body of a driver thread: `None` when its setup failed (the error
/// went to the coordinator).
fn worker_main(
    init: WorkerInit<'_>,
    setup: mpsc::Sender<(usize, Result<u64, SetupFailure>)>,
) -> io::Result<Option<ThreadOutcome>> {
    let index = init.index;
    let mut worker = match Worker::new(init) {
        Ok(worker) => worker,
        Err(failure) => {
            let _ = setup.send((index, Err(failure)));
            return Ok(None);
        }
    };
    match worker.setup() {
        Ok(opened) => {
            let _ = setup.send((index, Ok(opened)));
        }
        Err(failure) => {
            let _ = setup.send((index, Err(failure)));
            return Ok(None);
        }
    }
    drop(setup);
    worker.run().map(Some)
}

/// What the coordinator learnt about the window.
struct Window {
    measured_seconds: f64,
    stopped_early: bool,
    cpu_steal_percent: Option<f64>,
}

fn coordinate(
    case: &Case,
    config: &EngineConfig,
    observer: &mut dyn WindowObserver,
    shared: &Shared,
    thread_count: usize,
    total_connections: u64,
    setup: &mpsc::Receiver<(usize, Result<u64, SetupFailure>)>,
) -> Result<Window, EngineError> {
    // Connections: every thread reports once, within its connect timeout.
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
    if let Some((thread, failure)) = first_failure {
        return Err(match failure {
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
        });
    }

    // Warm-up, then the measured window. The observer snapshots the server
    // first, then the window opens, so that both windows are shifted by the
    // same snapshot latency at both ends. Without warm-up the window opens
    // with the first request, so that nothing sent escapes it.
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
    shared
        .window_end_ns
        .store(shared.now_ns(), Ordering::Release);
    shared.enter(Phase::Drain);

    // Drain: workers count what is still unanswered when it ends.
    let drain_started = Instant::now();
    let drain_limit = config.drain_timeout + DRAIN_GRACE;
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
    let _ = case;
    // Through the drain: a stall there leaves requests unanswered.
    let cpu_steal_percent = steal_at_start
        .zip(CpuTimes::now())
        .and_then(|(start, end)| start.steal_percent_until(&end));
    Ok(Window {
        measured_seconds,
        stopped_early,
        cpu_steal_percent,
    })
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

fn merge(
    case: &Case,
    target_rate_per_second: &Option<f64>,
    thread_count: usize,
    window: Window,
    outcomes: Vec<ThreadOutcome>,
) -> CaseMeasurement {
    let mut histogram: Histogram<u64> = latency::new_histogram();
    let mut verification = VerificationCounts::default();
    let mut driver_usage = ThreadUsage::default();
    let mut driver_syscalls = SyscallCounts::default();
    let mut measurement = CaseMeasurement {
        measured_seconds: window.measured_seconds,
        cpu_steal_percent: window.cpu_steal_percent,
        driver_threads: thread_count,
        target_rate_per_second: *target_rate_per_second,
        ..CaseMeasurement::default()
    };
    let mut slots_lost = 0;
    for outcome in outcomes {
        // Both histograms share bounds, so adding cannot fail.
        let _ = histogram.add(&outcome.histogram);
        measurement.requests_completed += outcome.requests_completed;
        measurement.payload_bytes_completed += outcome.payload_bytes_completed;
        measurement.requests_issued += outcome.requests_issued;
        measurement.connections_opened += outcome.connections_opened;
        verification.payload_mismatches += outcome.verification.payload_mismatches;
        verification.header_mismatches += outcome.verification.header_mismatches;
        verification.unexpected_closes += outcome.verification.unexpected_closes;
        verification.connect_failures += outcome.verification.connect_failures;
        verification.unanswered_requests += outcome.verification.unanswered_requests;
        driver_usage.add(&outcome.usage);
        driver_syscalls.add(&outcome.syscalls);
        slots_lost += outcome.slots_lost;
    }
    measurement.latency = latency::summarize(&histogram);
    measurement.verification = verification;
    measurement.driver_usage = driver_usage;
    measurement.driver_syscalls = driver_syscalls;
    if window.stopped_early {
        measurement.stopped_early = Some(if slots_lost > 0 {
            format!("{slots_lost} active connection(s) lost: no connection left to drive")
        } else if matches!(case.shape, Shape::Trace { .. }) {
            "the trace was replayed completely".to_string()
        } else {
            "every connection finished".to_string()
        });
    }
    measurement
}

fn load_trace(path: &std::path::Path) -> Result<Vec<TraceEvent>, EngineError> {
    Ok(crate::driver::trace::read_trace(path)?)
}
