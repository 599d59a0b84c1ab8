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
mod coordinator;
mod error;
mod latency;
mod plan;
mod scale_out;
mod shared;
mod worker;

use std::io;
use std::sync::mpsc;
use std::thread::ScopedJoinHandle;

use hdrhistogram::Histogram;

use crate::driver::measurement::{EngineConfig, WindowObserver};
use crate::driver::payload::PayloadSource;
use crate::driver::workload::TraceEvent;
use crate::results::measurement::{CaseMeasurement, VerificationCounts};
use crate::results::workload::{Case, Shape};
use crate::sys::SyscallCounts;
use crate::sys::rusage::ThreadUsage;

pub use error::EngineError;

use coordinator::{Window, coordinate};
use plan::SlotPlan;
use shared::{Phase, Shared};
use worker::{SetupFailure, ThreadOutcome, Worker, WorkerInit};

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
    // Idle connections beyond this process go to worker processes first;
    // the engine then drives the active set (and any idle ones it keeps).
    let Some(split) = scale_out::split(case, config.target)? else {
        return run_in_process(case, trace, config, observer, &mut || Ok(()));
    };
    let mut ramped = None;
    let mut ramp = || {
        ramped = Some(split.ramp()?);
        Ok(())
    };
    let measured = run_in_process(&split.engine_case, trace, config, observer, &mut ramp);
    // On an error the fleet is dropped, which also closes the workers.
    let mut measurement = measured?;
    if let Some((fleet, outcome)) = ramped {
        fleet.close().map_err(|source| EngineError::Io {
            context: "closing the driver worker processes",
            source,
        })?;
        measurement.scale_out = Some(outcome);
    }
    Ok(measurement)
}

/// The connections of `case` in this process's threads; `after_connect`
/// runs once they are all open, before warm-up.
fn run_in_process(
    case: &Case,
    trace: &[TraceEvent],
    config: &EngineConfig,
    observer: &mut dyn WindowObserver,
    after_connect: &mut dyn FnMut() -> Result<(), EngineError>,
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
            let init = worker_init(index, slots, case, config, &shared, &payload);
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
                config,
                observer,
                &shared,
                thread_count,
                plan.total_connections,
                &setup_receiver,
                after_connect,
            ),
        };
        // Whatever happened, no worker outlives the case.
        shared.enter(Phase::Stop);
        let (outcomes, worker_error) = join_workers(handles);
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

/// What driver thread `index` starts from: its slots, the case's traffic
/// and, when `config.driver_cpus` is given, its CPU (round-robin).
fn worker_init<'a>(
    index: usize,
    slots: Vec<SlotPlan>,
    case: &'a Case,
    config: &EngineConfig,
    shared: &'a Shared,
    payload: &'a PayloadSource,
) -> WorkerInit<'a> {
    WorkerInit {
        index,
        shared,
        target: config.target,
        cpu: config
            .driver_cpus
            .as_ref()
            .filter(|cpus| !cpus.is_empty())
            .map(|cpus| cpus[index % cpus.len()]),
        drain_timeout: config.drain_timeout,
        protocol: case.protocol,
        payload,
        sizes: &case.sizes,
        seed: case.seed,
        client: case.client,
        slots,
    }
}

/// Waits for every driver thread: the outcomes of those that ran, and the
/// first error in thread order (an I/O error or a panic).
fn join_workers(
    handles: Vec<ScopedJoinHandle<'_, io::Result<Option<ThreadOutcome>>>>,
) -> (Vec<ThreadOutcome>, Option<EngineError>) {
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
    (outcomes, worker_error)
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
        machine_busy_cpu_seconds: window.machine_busy_cpu_seconds,
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
