//! `epoll-bench drive --target ADDR --profile FILE [--control ADDR]`:
//! measures a server that is already running (another terminal, another
//! host). With `--control` the server's counters are read through its
//! control interface at the window's edges; without it, or when it cannot
//! be reached, the results say that server-side figures are unavailable.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Args;

use crate::driver::orchestrator::{CaseEngine, Plan, RemoteServer, Target};
use crate::error::UsageError;
use crate::results::environment::{Pinning, usable_cpus};
use crate::results::{Environment, RunKind, RunSettings};
use crate::server::VariantName;

use super::session;

/// How long to wait for the target and the control interface to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Args)]
pub struct DriveArgs {
    /// The server to measure, IP:PORT or HOST:PORT.
    #[arg(long, value_name = "ADDR", required_unless_present = "servers")]
    pub target: Option<String>,
    /// Instead of --target: start a server outside this project for each
    /// measurement, as `run --server` does (NAME=COMMAND with `{addr}`,
    /// `{port}`, `{protocol}`; repeatable). Pinned as `run --pin auto`.
    #[arg(long = "server", value_name = "NAME=COMMAND", conflicts_with_all = ["target", "control", "name"])]
    pub servers: Vec<String>,
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
    let Some(target) = args.target.as_deref() else {
        return drive_external(args, engine);
    };
    let target = resolve("--target", target)?;
    let cases = session::load_cases(&args.profiles, args.measure.connections, args.measure.seed)?;
    let repetitions = args.measure.repetitions()?;
    let out = args
        .measure
        .out
        .clone()
        .unwrap_or_else(|| session::default_out_dir("-drive"));
    // Before connecting: measurements that could not be saved would be lost.
    super::output::check_dir("--out", &out)?;

    let remote = RemoteServer::connect(target, args.control.as_deref(), CONNECT_TIMEOUT);
    // The budget covers the counting repetition too, when the kernel can
    // count the server's syscalls through its control interface.
    let timing = session::plan_timing(
        cases.len() * (repetitions + remote.counting_repetitions()) as usize,
        args.measure.duration,
        args.measure.warmup,
        args.measure.quick,
        args.measure.budget(false),
    )?;
    // An unreachable target fails every measurement with the reason, and
    // the results say so like any other failed run.
    if let Some(reason) = remote.unreachable_reason() {
        eprintln!("error: {reason}; every measurement fails");
    }
    if let Some(note) = remote.control_note() {
        say!("{note}");
    }
    let name = args
        .name
        .clone()
        .map(|name| VariantName::from(name.as_str()))
        .or_else(|| remote.reported_variant().cloned())
        .unwrap_or_else(|| VariantName::External("unknown".into()));

    let usable = usable_cpus();
    let driver_threads_max = args
        .measure
        .driver_threads
        .unwrap_or_else(|| (usable.len() / 2).max(1));
    let settings = RunSettings {
        target: Some(target.to_string()),
        control: args.control.clone(),
        ..args.measure.settings(
            vec![name.clone()],
            args.profiles.clone(),
            &timing,
            repetitions,
            driver_threads_max,
        )
    };
    let plan = Plan {
        cases,
        variants: vec![name],
        repetitions,
        engine: session::engine_config(&timing, target, driver_threads_max, None),
        driver_threads_max,
        target: Target::Remote(Box::new(remote)),
        instrument_cost: None,
        precision: None,
        cpu_profile: None,
    };
    let environment = Environment::collect(Pinning {
        mode: "none".into(),
        server_cpus: None,
        driver_cpus: None,
        method: "drive: the server was started elsewhere".into(),
    });
    session::measure_and_write(
        RunKind::Drive,
        plan,
        settings,
        environment,
        None,
        &out,
        engine,
    )
}

/// `drive --server NAME=COMMAND...`: the external servers alone, each
/// started for every measurement and pinned as `run` pins its servers.
fn drive_external(args: DriveArgs, engine: &mut dyn CaseEngine) -> anyhow::Result<()> {
    use crate::driver::orchestrator::ServerTemplate;

    let external = super::run::parse_servers(&args.servers)?;
    let cases = session::load_cases(&args.profiles, args.measure.connections, args.measure.seed)?;
    let repetitions = args.measure.repetitions()?;
    let out = args
        .measure
        .out
        .clone()
        .unwrap_or_else(|| session::default_out_dir("-drive"));
    super::output::check_dir("--out", &out)?;
    let variants: Vec<VariantName> = external
        .iter()
        .map(|s| VariantName::External(s.name.clone()))
        .collect();
    let timing = session::plan_timing(
        cases.len() * variants.len() * (repetitions as usize + 1),
        args.measure.duration,
        args.measure.warmup,
        args.measure.quick,
        args.measure.budget(false),
    )?;
    let usable = usable_cpus();
    let cpus = super::run::plan_cpus("auto", &usable, 1)?;
    let driver_threads_max = args.measure.driver_threads.unwrap_or_else(|| {
        cpus.driver
            .as_ref()
            .map_or_else(|| (usable.len() / 2).max(1), |d| d.len())
    });
    let settings = args.measure.settings(
        variants.clone(),
        args.profiles.clone(),
        &timing,
        repetitions,
        driver_threads_max,
    );
    let pinning = Pinning {
        mode: "auto".into(),
        server_cpus: cpus.server.clone(),
        driver_cpus: cpus.driver.clone(),
        method: cpus.note.clone(),
    };
    let plan = Plan {
        cases,
        variants,
        repetitions,
        // Each started server's address replaces the target.
        engine: session::engine_config(
            &timing,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            driver_threads_max,
            cpus.driver,
        ),
        driver_threads_max,
        target: Target::Spawn(ServerTemplate {
            program: std::env::current_exe()?,
            leading_args: Vec::new(),
            threads: None,
            processes: None,
            cpus: cpus.server,
            extra_args: Vec::new(),
            ready_timeout: args.measure.ready_timeout(),
            external,
        }),
        instrument_cost: None,
        precision: None,
        cpu_profile: None,
    };
    session::measure_and_write(
        RunKind::Drive,
        plan,
        settings,
        Environment::collect(pinning),
        None,
        &out,
        engine,
    )
}
