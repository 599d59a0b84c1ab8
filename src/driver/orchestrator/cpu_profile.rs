//! The profiling repetition (`run --profile-cpu CASE[,CASE..]`): after the
//! cases, one more window per server of each named case, with `perf
//! record` sampling the server's threads for exactly that window; `perf
//! report` of it becomes a [`CpuProfileTable`]. Apart from the timing and
//! counting repetitions, and never aggregated with them: sampling 5,000
//! times a second costs the server CPU.
//!
//! What is recorded, and why:
//! - `cpu-clock`, a software timer event: hardware cycle counters are
//!   often missing in VMs (they are on the reference machine), and a timer
//!   samples kernel and user time alike, so the shares are of CPU time.
//! - 4999 Hz: ~5,000 samples per busy second, enough for 1% shares over a
//!   few-second window; not 5000, so the sampling does not beat in step
//!   with millisecond timers.
//! - No call chains (`-g`): the table is self time per symbol, which needs
//!   none. `--call-graph dwarf` copies 8 KiB of stack per sample, which at
//!   this rate would cost the server and the 2-CPU machine far more than
//!   the sampling itself; `--call-graph fp` gives broken chains through
//!   Rust's std and tokio, built without frame pointers. Symbols need only
//!   the binaries' symbol tables: ours (`[profile.release] debug = 1`
//!   keeps line tables too), tokio's and Go's are not stripped.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::driver::measurement::{EngineConfig, WindowObserver};
use crate::driver::server_process::ServerProcess;
use crate::driver::server_process::external_process::{ExternalProcess, ExternalStart};
use crate::metrics::perf_report;
use crate::results::cpu_profile::{CpuProfile, CpuProfileTable};
use crate::results::workload::Case;
use crate::results::{RepetitionPurpose, Status};
use crate::server::VariantName;
use crate::sys::perf_record::{self, PerfRecording, RecordSettings};

use super::judge::{ServerSide, judge};
use super::measure::{CaseEngine, load};
use super::schedule::driver_threads_for;
use super::target::ServerTemplate;

pub const EVENT: &str = "cpu-clock";
pub const FREQUENCY_HZ: u32 = 4999;

/// Which cases get a profiling repetition, by label.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuProfileRequest {
    pub cases: Vec<String>,
}

/// One server's profile, with `perf report`'s text to keep beside the
/// results when perf ran.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfiledServer {
    pub profile: CpuProfile,
    pub raw_report: Option<String>,
}

/// The parts of a run's plan the profiling repetitions need.
pub struct ProfilePlan<'a> {
    pub request: &'a CpuProfileRequest,
    pub cases: &'a [Case],
    pub variants: &'a [VariantName],
    pub template: &'a ServerTemplate,
    pub config: &'a EngineConfig,
    pub driver_threads_max: usize,
}

/// Profiles every server of every requested case, in plan order; stops
/// (keeping what finished) when `interrupted` is raised. Never fails: a
/// server that could not be profiled has the reason instead of a table.
pub fn profile_cases(
    plan: &ProfilePlan,
    engine: &mut dyn CaseEngine,
    interrupted: &AtomicBool,
) -> Vec<ProfiledServer> {
    let template = plan.template;
    // Asked once: without perf every entry says so, and nothing runs.
    let perf_missing = perf_record::version().err();
    let mut profiled = Vec::new();
    for case in plan
        .cases
        .iter()
        .filter(|c| plan.request.cases.contains(&c.label))
    {
        let mut config = plan.config.clone();
        config.driver_threads = driver_threads_for(case, plan.driver_threads_max);
        for variant in plan.variants {
            if interrupted.load(Ordering::SeqCst) {
                return profiled;
            }
            let base = CpuProfile {
                case: case.label.clone(),
                server: variant.clone(),
                external: variant.builtin().is_none(),
                event: EVENT.into(),
                frequency_hz: FREQUENCY_HZ,
                window_seconds: config.duration.as_secs_f64(),
                raw_report_path: None,
                unavailable_reason: None,
                table: None,
            };
            let outcome = match &perf_missing {
                Some(reason) => Err((format!("perf cannot run here: {reason}"), None)),
                None => profile_one(case, variant, template, &config, engine),
            };
            profiled.push(match outcome {
                Ok((table, raw)) => ProfiledServer {
                    profile: CpuProfile {
                        table: Some(table),
                        ..base
                    },
                    raw_report: Some(raw),
                },
                Err((reason, raw)) => ProfiledServer {
                    profile: CpuProfile {
                        unavailable_reason: Some(reason),
                        ..base
                    },
                    raw_report: raw,
                },
            });
        }
    }
    profiled
}

/// Why a server has no table, and perf's report when it got that far.
type Unavailable = (String, Option<String>);

/// A running server of either kind, as far as profiling needs it.
enum Started {
    Builtin(ServerProcess),
    External(ExternalProcess),
}

impl Started {
    fn start(
        case: &Case,
        variant: &VariantName,
        template: &ServerTemplate,
    ) -> Result<Started, String> {
        let started = match variant.builtin() {
            // A timing repetition's server: in-process counting only.
            Some(builtin) => ServerProcess::start(&template.spec(
                builtin,
                case.protocol,
                RepetitionPurpose::Timing,
            ))
            .map(Started::Builtin),
            None => {
                let server = template
                    .external(variant)
                    .ok_or_else(|| format!("`{variant}` is not a server this tool can start"))?;
                ExternalProcess::start(&ExternalStart {
                    server,
                    protocol: case.protocol,
                    cpus: template.cpus.as_deref(),
                    count_syscalls: false,
                    ready_timeout: template.ready_timeout,
                })
                .map(Started::External)
            }
        };
        started.map_err(|e| format!("server did not start: {e}"))
    }

    fn pid(&self) -> u32 {
        match self {
            Started::Builtin(server) => server.pid(),
            Started::External(server) => server.pid(),
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        match self {
            Started::Builtin(server) => server.addr(),
            Started::External(server) => server.addr(),
        }
    }

    fn stop(self) -> Result<(), String> {
        match self {
            Started::Builtin(server) => server.stop().map(drop),
            Started::External(server) => server.stop(),
        }
        .map_err(|e| format!("server did not stop cleanly: {e}"))
    }
}

/// Switches perf's sampling on and off at the window's edges.
struct PerfWindow<'a> {
    recording: &'a mut PerfRecording,
    error: Option<String>,
}

impl WindowObserver for PerfWindow<'_> {
    fn window_started(&mut self) {
        if let Err(e) = self.recording.enable() {
            self.error.get_or_insert(e);
        }
    }

    fn window_ended(&mut self) {
        if let Err(e) = self.recording.disable() {
            self.error.get_or_insert(e);
        }
    }
}

/// One server's profiling window: started, perf attached during its
/// warm-up, sampled over the window, stopped, reported and parsed.
fn profile_one(
    case: &Case,
    variant: &VariantName,
    template: &ServerTemplate,
    config: &EngineConfig,
    engine: &mut dyn CaseEngine,
) -> Result<(CpuProfileTable, String), Unavailable> {
    let no_report = |reason: String| (reason, None);
    let server = Started::start(case, variant, template).map_err(no_report)?;
    let scratch = tempfile::tempdir()
        .map_err(|e| no_report(format!("cannot create a directory for perf's data: {e}")))?;
    let settings = RecordSettings {
        event: EVENT.into(),
        frequency_hz: FREQUENCY_HZ,
    };
    let recorded = record(&server, scratch.path(), &settings, case, config, engine);
    let stopped = server.stop();
    let (data, requests_completed) = recorded.map_err(no_report)?;
    stopped.map_err(no_report)?;
    let raw = perf_record::report(&data).map_err(no_report)?;
    let report = perf_report::parse(&raw).map_err(|e| (e.to_string(), Some(raw.clone())))?;
    match CpuProfileTable::from_report(&report, requests_completed, FREQUENCY_HZ) {
        Some(table) => Ok((table, raw)),
        None => Err(("perf recorded no samples in the window".into(), Some(raw))),
    }
}

/// Attaches perf to `server`, drives the case, stops perf: perf's data
/// file and the requests completed in the window.
fn record(
    server: &Started,
    scratch: &Path,
    settings: &RecordSettings,
    case: &Case,
    config: &EngineConfig,
    engine: &mut dyn CaseEngine,
) -> Result<(std::path::PathBuf, u64), String> {
    let mut recording = PerfRecording::attach(server.pid(), scratch, settings)?;
    let mut config = config.clone();
    config.target = server.addr();
    let mut window = PerfWindow {
        recording: &mut recording,
        error: None,
    };
    let result = load(engine, case, &config, &mut window, &mut |_| {});
    if let Some(e) = window.error {
        return Err(e);
    }
    let judged = judge(
        0,
        case,
        result,
        ServerSide::unavailable("profiling repetition"),
        Vec::new(),
    );
    let data = recording.finish()?;
    match (judged.status, judged.measurement) {
        (Status::Passed, Some(m)) => Ok((data, m.requests_completed)),
        _ => Err(format!(
            "the profiled window failed: {}",
            judged
                .failure
                .map(|f| f.reasons.join("; "))
                .unwrap_or_default()
        )),
    }
}
