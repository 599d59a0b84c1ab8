//! `epoll-bench drive --target ADDR --profile FILE [--control ADDR]`:
//! measures a server that is already running (another terminal, another
//! host). With `--control` the server's counters are read through its
//! control interface at the window's edges; without it, or when it cannot
//! be reached, the results say that server-side figures are unavailable.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use clap::Args;

use crate::driver::measurement::EngineConfig;
use crate::driver::orchestrator::{
    CaseEngine, ProgressSink, Step, driver_threads_for, finish_remote_case, measure_remote,
    watch_threads_of,
};
use crate::driver::server_process::{RemoteControl, ServerControl};
use crate::error::UsageError;
use crate::metrics::cross_check::KernelWatch;
use crate::results::environment::{Pinning, usable_cpus};
use crate::results::{
    Environment, FailureRecord, Repetition, RunKind, RunSettings, Status, now_utc_rfc3339,
};

use super::run::assemble;
use super::session::{self, ProgressDisplay};

/// How long to wait for the target and the control interface to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Args)]
pub struct DriveArgs {
    /// The server to measure, IP:PORT or HOST:PORT.
    #[arg(long, value_name = "ADDR")]
    pub target: String,
    /// A profile file or built-in profile name; repeatable.
    #[arg(long = "profile", value_name = "FILE|NAME", required = true)]
    pub profiles: Vec<String>,
    /// The server's control interface (`serve --control ADDR`).
    #[arg(long, value_name = "ADDR")]
    pub control: Option<String>,
    /// Name of the measured server in results (default: the variant it
    /// reports through --control, else `unknown`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub measure: super::session::MeasureArgs,
}

fn resolve(flag: &str, addr: &str) -> Result<SocketAddr, UsageError> {
    addr.to_socket_addrs()
        .map_err(|e| UsageError(format!("{flag} {addr}: {e}")))?
        .next()
        .ok_or_else(|| UsageError(format!("{flag} {addr}: resolves to no address")))
}

/// `epoll-bench drive`.
pub fn run(args: DriveArgs) -> anyhow::Result<()> {
    drive_with(args, &mut crate::driver::orchestrator::LoadEngine)
}

/// `drive` with a given engine (tests use a scripted one).
pub fn drive_with(args: DriveArgs, engine: &mut dyn CaseEngine) -> anyhow::Result<()> {
    let target = resolve("--target", &args.target)?;
    let cases = session::load_cases(&args.profiles, args.measure.connections, args.measure.seed)?;
    let repetitions = args
        .measure
        .repetitions
        .unwrap_or(if args.measure.quick { 1 } else { 3 });
    if repetitions == 0 {
        return Err(UsageError("--repetitions: must be at least 1".into()).into());
    }
    if args.measure.driver_threads == Some(0) {
        return Err(UsageError("--driver-threads: must be at least 1".into()).into());
    }
    let timing = session::plan_timing(
        cases.len() * repetitions as usize,
        args.measure.duration,
        args.measure.warmup,
        args.measure.quick,
        args.measure.budget,
    )?;
    let out = args
        .measure
        .out
        .clone()
        .unwrap_or_else(|| session::default_out_dir("-drive"));
    // Before connecting: measurements that could not be saved would be lost.
    super::output::check_dir("--out", &out)?;

    // An unreachable target fails every measurement with the reason, and
    // the results say so like any other failed run.
    let unreachable = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT)
        .err()
        .map(|e| format!("cannot reach the target {target}: {e}"));
    if let Some(reason) = &unreachable {
        eprintln!("error: {reason}; every measurement fails");
    }
    let mut unavailable = None;
    let mut control = match &args.control {
        Some(addr) => match RemoteControl::connect(addr, CONNECT_TIMEOUT) {
            Ok(control) => Some(control),
            Err(e) => {
                say!("warning: {e}; server-side figures unavailable");
                unavailable = Some(format!("control interface unreachable: {e}"));
                None
            }
        },
        None => {
            say!("no --control: server-side figures unavailable");
            unavailable = Some("no --control interface given".into());
            None
        }
    };
    let first = match control.as_mut().map(|c| c.snapshot()).transpose() {
        Ok(report) => report,
        Err(e) => {
            say!("warning: {e}; server-side figures unavailable");
            unavailable = Some(format!("control interface does not answer: {e}"));
            control = None;
            None
        }
    };
    // Kernel counters attach to thread ids, which only mean this server on
    // this host.
    let kernel = match (&mut control, target.ip().is_loopback()) {
        (Some(control), true) => watch_threads_of(control),
        (Some(_), false) => KernelWatch::unavailable("the server runs on another host"),
        (None, _) => KernelWatch::unavailable("no control interface"),
    };
    let name = args
        .name
        .clone()
        .or_else(|| first.as_ref().map(|r| r.variant.clone()))
        .unwrap_or_else(|| "unknown".into());

    let usable = usable_cpus();
    let driver_threads_max = args
        .measure
        .driver_threads
        .unwrap_or_else(|| (usable.len() / 2).max(1));
    let config = EngineConfig {
        target,
        warmup: Duration::from_secs_f64(timing.warmup_seconds),
        duration: Duration::from_secs_f64(timing.duration_seconds),
        driver_threads: driver_threads_max,
        driver_cpus: None,
        drain_timeout: Duration::from_secs_f64(session::DRAIN_TIMEOUT_SECONDS),
    };
    let settings = RunSettings {
        variants: vec![name.clone()],
        profiles: args.profiles.clone(),
        warmup_seconds: timing.warmup_seconds,
        duration_seconds: timing.duration_seconds,
        drain_timeout_seconds: session::DRAIN_TIMEOUT_SECONDS,
        repetitions_planned: repetitions,
        connections_override: args.measure.connections,
        seed_override: args.measure.seed,
        quick: args.measure.quick,
        server_threads: None,
        driver_threads_max,
        time_budget_seconds: timing.budget_seconds,
        target: Some(target.to_string()),
        control: args.control.clone(),
    };
    let environment = Environment::collect(Pinning {
        mode: "none".into(),
        server_cpus: None,
        driver_cpus: None,
        method: "drive: the server was started elsewhere".into(),
    });

    let interrupted = session::interrupt_flag();
    let started_at_utc = now_utc_rfc3339();
    let clock = Instant::now();
    let total = cases.len() * repetitions as usize;
    let mut display = ProgressDisplay::new(total);
    let mut results = Vec::new();
    let mut index = 0;
    let mut stopped = false;
    'cases: for case in &cases {
        let mut reps = Vec::new();
        for repetition in 0..repetitions {
            if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
                stopped = true;
                if !reps.is_empty() {
                    results.push(finish_remote_case(
                        case,
                        &name,
                        repetitions,
                        reps,
                        unavailable.clone(),
                    ));
                }
                break 'cases;
            }
            let step = Step {
                index,
                total,
                case,
                variant: &name,
                repetition,
                repetitions,
            };
            display.measurement_started(&step);
            let mut case_config = config.clone();
            case_config.driver_threads = driver_threads_for(case, driver_threads_max);
            let mismatch = first
                .as_ref()
                .filter(|r| r.protocol != case.protocol)
                .map(|report| {
                    format!(
                        "the server speaks the {} protocol, case `{}` needs {}",
                        report.protocol.name(),
                        case.label,
                        case.protocol.name()
                    )
                });
            let rep = match unreachable.clone().or(mismatch) {
                Some(reason) => not_driven(repetition, reason),
                None => measure_remote(
                    case,
                    &case_config,
                    repetition,
                    engine,
                    control
                        .as_mut()
                        .map(|c| (c as &mut dyn ServerControl, &kernel)),
                    &mut |p| display.live(&step, p),
                ),
            };
            display.measurement_finished(&step, &rep);
            index += 1;
            reps.push(rep);
        }
        results.push(finish_remote_case(
            case,
            &name,
            repetitions,
            reps,
            unavailable.clone(),
        ));
    }
    display.finish();
    let results = assemble(
        RunKind::Drive,
        settings,
        environment,
        results,
        stopped,
        started_at_utc,
        clock.elapsed().as_secs_f64(),
    );
    session::finish(&results, &out)
}

/// A repetition that could not be driven (the target is unreachable, or
/// the server speaks the other protocol): failed, with the reason.
fn not_driven(index: u32, reason: String) -> Repetition {
    Repetition {
        index,
        status: Status::Failed,
        measurement: None,
        failure: Some(FailureRecord {
            reasons: vec![reason],
            verification: None,
            server_protocol_errors: None,
            server_connection_errors: None,
            cpu_steal_percent: None,
        }),
        server_window: None,
        server_memory: None,
        kernel_cross_check: None,
        server_command_line: Vec::new(),
    }
}
