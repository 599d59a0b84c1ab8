//! One measurement: the engine's load against one server, with the
//! server's counters read at the window's edges when it can be asked.

use crate::driver::measurement::{EngineConfig, NoObserver, Progress, WindowObserver};
use crate::driver::server_process::external_process::{
    ExternalProcess, ExternalStart, ExternalWindow,
};
use crate::driver::server_process::{
    ServerControl, ServerProcess, ServerSpec, SnapshotWindow, WindowError,
};
use crate::metrics::cross_check::KernelWatch;
use crate::metrics::kernel_memory::MemoryProbe;
use crate::results::external::ExternalWindow as ExternalWindowRecord;
use crate::results::measurement::CaseMeasurement;
use crate::results::workload::Case;
use crate::results::{Repetition, Status};

use super::judge::{ServerSide, judge, memory_per_connection, not_measured};

/// Generates the load of one case against one server.
pub trait CaseEngine {
    fn run_case(
        &mut self,
        case: &Case,
        config: &EngineConfig,
        observer: &mut dyn WindowObserver,
    ) -> Result<CaseMeasurement, String>;
}

/// The real load engine, [`crate::driver::engine::run_case`].
pub struct LoadEngine;

impl CaseEngine for LoadEngine {
    fn run_case(
        &mut self,
        case: &Case,
        config: &EngineConfig,
        observer: &mut dyn WindowObserver,
    ) -> Result<CaseMeasurement, String> {
        crate::driver::engine::run_case(case, config, observer).map_err(|e| e.to_string())
    }
}

/// Forwards the window edges to `inner` and live progress to `on_progress`.
pub struct LiveObserver<'a> {
    pub inner: &'a mut dyn WindowObserver,
    pub on_progress: &'a mut dyn FnMut(&Progress),
}

impl WindowObserver for LiveObserver<'_> {
    fn window_started(&mut self) {
        self.inner.window_started();
    }

    fn window_ended(&mut self) {
        self.inner.window_ended();
    }

    fn progress(&mut self, progress: &Progress) {
        self.inner.progress(progress);
        (self.on_progress)(progress);
    }
}

/// Kernel syscall counters on the serving threads the server reports.
pub fn watch_threads_of(server: &mut dyn ServerControl) -> KernelWatch {
    match server.snapshot() {
        Ok(report) => {
            let tids: Vec<i32> = report.threads.iter().map(|t| t.tid).collect();
            KernelWatch::attach(&tids)
        }
        Err(e) => KernelWatch::unavailable(format!("no serving thread ids: {e}")),
    }
}

/// The engine's load, its window edges told to `window`; an engine error
/// comes back as the reason to record.
pub(super) fn load(
    engine: &mut dyn CaseEngine,
    case: &Case,
    config: &EngineConfig,
    window: &mut dyn WindowObserver,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<CaseMeasurement, String> {
    let mut observer = LiveObserver {
        inner: window,
        on_progress,
    };
    engine
        .run_case(case, config, &mut observer)
        .map_err(|e| format!("load engine: {e}"))
}

/// Measures one case against a server started from `spec` for it alone.
pub fn measure_spawned(
    spec: &ServerSpec,
    config: &EngineConfig,
    case: &Case,
    repetition: u32,
    engine: &mut dyn CaseEngine,
    on_progress: &mut dyn FnMut(&Progress),
) -> Repetition {
    let mut server = match ServerProcess::start(spec) {
        Ok(server) => server,
        Err(e) => {
            let reason = format!("server did not start: {e}");
            return not_measured(repetition, case, reason, Vec::new());
        }
    };
    let mut config = config.clone();
    config.target = server.addr();
    let command_line = server.command_line().to_vec();
    let baseline_memory = server.baseline_memory();
    let baseline_probe = Some(MemoryProbe::read());
    let (engine_result, window) = {
        // The server reads its own kernel counters (`--kernel-counters`).
        let mut window = SnapshotWindow::new(&mut server);
        let result = load(engine, case, &config, &mut window, on_progress);
        (result, window.finish())
    };
    let after_window_error = match server.stop() {
        Ok(_) => None,
        // Already reported through the window error.
        Err(_) if window.is_err() => None,
        Err(e) => Some(format!("server did not stop cleanly: {e}")),
    };
    let server_side = ServerSide {
        window,
        baseline_memory,
        baseline_probe,
        unavailable_reason: None,
        after_window_error,
    };
    judge(repetition, case, engine_result, server_side, command_line)
}

/// Measures one case against a server started elsewhere, through its
/// control interface when there is one (and its kernel counters when a
/// watch is given).
pub fn measure_remote(
    case: &Case,
    config: &EngineConfig,
    repetition: u32,
    engine: &mut dyn CaseEngine,
    control: Option<(&mut dyn ServerControl, Option<&KernelWatch>)>,
    on_progress: &mut dyn FnMut(&Progress),
) -> Repetition {
    let (result, server_side) = match control {
        Some((control, kernel)) => {
            let mut window = SnapshotWindow::new(control);
            if let Some(kernel) = kernel {
                window = window.with_kernel_watch(kernel);
            }
            let result = load(engine, case, config, &mut window, on_progress);
            (result, ServerSide::of_window(window.finish()))
        }
        None => {
            let result = load(engine, case, config, &mut NoObserver, on_progress);
            (result, ServerSide::unavailable("no control interface"))
        }
    };
    judge(repetition, case, result, server_side, Vec::new())
}

/// Measures one case against an external server started for it alone:
/// the kernel's counts of the whole process over the window, its memory,
/// and the driver's verification of every byte; it must exit cleanly on
/// SIGTERM afterwards.
pub fn measure_external(
    start: &ExternalStart,
    config: &EngineConfig,
    case: &Case,
    repetition: u32,
    engine: &mut dyn CaseEngine,
    on_progress: &mut dyn FnMut(&Progress),
) -> Repetition {
    let server = match ExternalProcess::start(start) {
        Ok(server) => server,
        Err(e) => {
            let reason = format!("server did not start: {e}");
            return not_measured(repetition, case, reason, Vec::new());
        }
    };
    let mut config = config.clone();
    config.target = server.addr();
    let command_line = server.command_line().to_vec();
    let baseline_memory = server.baseline_memory();
    let (engine_result, window) = {
        let mut window = ExternalWindow::new(&server);
        let result = load(engine, case, &config, &mut window, on_progress);
        (result, window.finish())
    };
    let after_window_error = server
        .stop()
        .err()
        .map(|e| format!("server did not stop cleanly: {e}"));
    // No control interface: not a failure, its own counters are just
    // not there to read.
    let server_side = ServerSide {
        window: Err(WindowError::NeverOpened),
        baseline_memory: None,
        baseline_probe: None,
        unavailable_reason: Some("external server".into()),
        after_window_error,
    };
    let mut measured = judge(repetition, case, engine_result, server_side, command_line);
    if measured.status == Status::Passed {
        measured.server_memory = memory_per_connection(case, baseline_memory, window.memory_at_end);
        let (counts, counters_unavailable_reason) = match window.counts {
            Ok(counts) => (Some(counts), None),
            Err(reason) => (None, Some(reason)),
        };
        measured.external_window = Some(ExternalWindowRecord {
            counts,
            counters_unavailable_reason,
        });
    }
    measured
}
