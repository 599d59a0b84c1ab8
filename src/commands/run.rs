//! `epoll-bench run`: the main job. Every selected variant × case ×
//! repetition against a fresh `epoll-bench serve` child, then
//! `results/<UTC timestamp>/` with results.json, results.csv and summary.md,
//! and the summary table on stdout.
//!
//! Bad input (flags, profiles) is found before anything runs or is written.
//! Ctrl-C finishes the current measurement and saves what finished, marked
//! incomplete.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::driver::orchestrator::applicable;
use crate::driver::orchestrator::instrument_cost::{
    FIXED_LOAD_RATE_PER_SECOND, MIN_ROUNDS, PREFERRED_VARIANT,
};
use crate::driver::orchestrator::{
    CaseEngine, CpuProfileRequest, InstrumentCostRequest, Plan, PrecisionGoal, ServerTemplate,
    Target, open_connections,
};
use crate::driver::server_process::external::{ExternalServer, check_unique};
use crate::error::UsageError;
use crate::results::environment::{Pinning, usable_cpus};
use crate::results::{Environment, RunKind, RunSettings};
use crate::server::variant::{Variant, VariantName};
use crate::server::{BufferPolicy, pooled_buffers_refusal};

use super::session;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Variants to measure, comma-separated (default: every built-in
    /// variant; one the kernel cannot run is recorded as failed, with why).
    #[arg(long, value_delimiter = ',', value_name = "V,V,...")]
    pub variants: Vec<String>,
    /// A profile file or built-in profile name; repeatable (default: the
    /// default suite).
    #[arg(long = "profile", value_name = "FILE|NAME")]
    pub profiles: Vec<String>,
    /// CPU pinning: `auto` (server and driver on disjoint CPUs when there
    /// are two or more), `none`, or `SERVER_CPUS[/DRIVER_CPUS]` such as
    /// `1/0` or `2-3/0-1` (driver: the other usable CPUs when omitted).
    #[arg(long, default_value = "auto", value_name = "auto|none|CPUS")]
    pub pin: String,
    /// Serving threads of each server (default: the server's default).
    #[arg(long, value_name = "N", value_parser = crate::units::number(1usize.., ""))]
    pub threads: Option<usize>,
    /// Where each server's connections get their ring buffers
    /// (`serve --buffers`): `per-connection` or `pooled` (epoll rw and
    /// writev variants only; the others are refused before anything runs).
    #[arg(long, value_enum, default_value_t = BufferPolicy::PerConnection)]
    pub buffers: BufferPolicy,
    /// Processes of each server (`serve --processes`), each with --threads
    /// loops: to hold more connections than one process's fd limit, or to
    /// compare P processes with P threads (default: one process).
    #[arg(long, value_name = "P",
          value_parser = crate::units::number(1usize..=crate::commands::serve::MAX_PROCESSES, ""))]
    pub server_processes: Option<usize>,
    /// Do not measure the machine's limits (`epoll-bench limits --quick`,
    /// about 2 s) before the first case.
    #[arg(long)]
    pub no_limits: bool,
    /// Also measure what the instruments cost the server (recorded in
    /// results.json and summary.md): lt-writev (or the first variant) at
    /// 25,000 req/s × 64 connections × 64 B, open loop, with no
    /// instruments, in-process counting, and kernel counters too, in
    /// interleaved rounds (as many as --repetitions, at least 3).
    #[arg(long)]
    pub instrument_cost: bool,
    /// Add timing repetitions (after --repetitions, at least 3) until the
    /// 95% CI half-width of every headline effect (server CPU per request,
    /// req/s or MB/s) is at most PCT percent, e.g. `3%` or `3`. --budget
    /// (default 300 s) then bounds the whole run; effects that did not get
    /// there are listed at the end.
    #[arg(long, value_name = "PCT", value_parser = precision_percent)]
    pub precision: Option<f64>,
    /// Also measure a server outside this project, started by COMMAND for
    /// each measurement, pinned like the variants and stopped with
    /// SIGTERM; `{addr}`, `{port}` and `{protocol}` are filled in. No
    /// shell: COMMAND is split into words, leading VAR=VALUE words set its
    /// environment. Repeatable; NAME is its name in the results.
    #[arg(long = "server", value_name = "NAME=COMMAND")]
    pub servers: Vec<String>,
    /// Where each server's CPU goes in these cases (a case label, or a
    /// profile name for all its cases; comma-separated): after all other
    /// repetitions, one more window per server with `perf record -e
    /// cpu-clock` sampling its threads, reported as kernel vs user-space
    /// shares and the top user-space symbols (results.json, summary.md,
    /// profiles/CASE/SERVER.txt). Never part of the timing figures;
    /// without perf or its permission, each profile says why.
    #[arg(long = "profile-cpu", value_delimiter = ',', value_name = "CASE,...")]
    pub profile_cpu: Vec<String>,
    #[command(flatten)]
    pub measure: super::session::MeasureArgs,
}

/// `--precision`: a percentage, with or without `%`, above 0 and at most
/// 100 (a wider interval says nothing).
pub fn precision_percent(text: &str) -> Result<f64, crate::units::OutOfRange> {
    use std::ops::Bound;
    let number = text.trim().strip_suffix('%').unwrap_or(text);
    crate::units::number((Bound::Excluded(0.0), Bound::Included(100.0)), "percent")(number)
}

/// Where server and driver run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuPlan {
    pub server: Option<Vec<usize>>,
    pub driver: Option<Vec<usize>>,
    pub note: String,
}

/// Resolves `--pin` against the CPUs this process may use.
pub fn plan_cpus(
    pin: &str,
    usable: &[usize],
    server_threads: usize,
) -> Result<CpuPlan, UsageError> {
    let unpinned = |note: &str| CpuPlan {
        server: None,
        driver: None,
        note: note.to_string(),
    };
    match pin.trim() {
        "none" => Ok(unpinned("not pinned (--pin none)")),
        "auto" => {
            if usable.len() < 2 {
                return Ok(unpinned("not pinned: fewer than two usable CPUs"));
            }
            // The server gets as many CPUs as it has threads, the driver at
            // least half of them.
            let server_count = server_threads.clamp(1, usable.len() / 2);
            let split = usable.len() - server_count;
            Ok(CpuPlan {
                server: Some(usable[split..].to_vec()),
                driver: Some(usable[..split].to_vec()),
                note: "serve --cpus, driver threads pinned".into(),
            })
        }
        list => {
            let (server_text, driver_text) = match list.split_once('/') {
                Some((s, d)) => (s, Some(d)),
                None => (list, None),
            };
            let parse = |text: &str| {
                crate::units::parse_cpu_list(text).map_err(|e| UsageError(format!("--pin: {e}")))
            };
            let server = parse(server_text)?;
            let driver = match driver_text {
                Some(text) => parse(text)?,
                None => usable
                    .iter()
                    .copied()
                    .filter(|c| !server.contains(c))
                    .collect(),
            };
            for cpu in server.iter().chain(&driver) {
                if !usable.contains(cpu) {
                    return Err(UsageError(format!(
                        "--pin {list}: CPU {cpu} is not usable here (usable: {usable:?})"
                    )));
                }
            }
            if driver.is_empty() {
                return Err(UsageError(format!(
                    "--pin {list}: no CPU left for the driver"
                )));
            }
            if let Some(shared) = server.iter().find(|c| driver.contains(c)) {
                return Err(UsageError(format!(
                    "--pin {list}: CPU {shared} is given to both server and driver; they must be disjoint"
                )));
            }
            Ok(CpuPlan {
                server: Some(server),
                driver: Some(driver),
                note: "serve --cpus, driver threads pinned".into(),
            })
        }
    }
}

/// Checks `--variants` against the server's variants (all when empty).
pub fn select_variants(asked: &[String]) -> Result<Vec<VariantName>, UsageError> {
    if asked.is_empty() {
        return Ok(Variant::ALL.map(VariantName::from).to_vec());
    }
    let mut selected = Vec::new();
    for name in asked.iter().map(|n| n.trim()) {
        let variant = VariantName::from(
            name.parse::<Variant>()
                .map_err(|e| UsageError(format!("--variants: {e}")))?,
        );
        if !selected.contains(&variant) {
            selected.push(variant);
        }
    }
    Ok(selected)
}

/// `--buffers pooled` needs every selected variant to pool its buffers:
/// one that cannot is refused up front, with why (external servers keep
/// their own buffers and are not asked).
fn check_buffer_policy(policy: BufferPolicy, variants: &[Variant]) -> Result<(), UsageError> {
    if policy != BufferPolicy::Pooled {
        return Ok(());
    }
    let refused: Vec<String> = variants
        .iter()
        .filter_map(|v| pooled_buffers_refusal(*v).map(|why| format!("{v} ({why})")))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let pooling: Vec<String> = Variant::ALL
        .iter()
        .filter(|v| pooled_buffers_refusal(**v).is_none())
        .map(|v| v.to_string())
        .collect();
    Err(UsageError(format!(
        "--buffers pooled: these variants cannot use pooled buffers: {}; choose among {} with --variants",
        refused.join("; "),
        pooling.join(", ")
    )))
}

/// The `serve` flags of a buffer policy: none for the server's default.
fn buffer_args(policy: BufferPolicy) -> Vec<String> {
    match policy {
        BufferPolicy::PerConnection => Vec::new(),
        BufferPolicy::Pooled => vec!["--buffers".into(), policy.name().into()],
    }
}

/// Checks `--server NAME=COMMAND` values: names, commands, no name twice.
pub fn parse_servers(given: &[String]) -> Result<Vec<ExternalServer>, UsageError> {
    let servers = given
        .iter()
        .map(|text| ExternalServer::parse(text))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|servers| check_unique(&servers).map(|()| servers))
        .map_err(|e| UsageError(format!("--server: {e}")))?;
    Ok(servers)
}

/// Checks `--profile-cpu` names against the run's cases: each is a case
/// label or a profile name (all its cases).
pub fn select_profiled_cases(
    asked: &[String],
    cases: &[crate::results::workload::Case],
) -> Result<Option<CpuProfileRequest>, UsageError> {
    if asked.is_empty() {
        return Ok(None);
    }
    let mut labels: Vec<String> = Vec::new();
    for name in asked.iter().map(|n| n.trim()) {
        let matching: Vec<&str> = cases
            .iter()
            .filter(|c| c.label == name || c.profile == name)
            .map(|c| c.label.as_str())
            .collect();
        if matching.is_empty() {
            let known: Vec<&str> = cases.iter().map(|c| c.label.as_str()).collect();
            return Err(UsageError(format!(
                "--profile-cpu: no case or profile `{name}` in this run (its cases: {})",
                known.join(", ")
            )));
        }
        for label in matching {
            if !labels.iter().any(|l| l == label) {
                labels.push(label.to_string());
            }
        }
    }
    Ok(Some(CpuProfileRequest { cases: labels }))
}

/// Everything `run` needs, checked; building it writes nothing.
pub struct Prepared {
    pub plan: Plan,
    pub settings: RunSettings,
    pub pinning: Pinning,
    pub out: PathBuf,
    pub estimated_total_seconds: f64,
    /// Measure the machine's limits first (not `--no-limits`).
    pub measure_limits: bool,
}

/// Checks the arguments and builds the plan. Every error is a
/// [`UsageError`] (exit code 2) and nothing has been written.
///
/// ~100 lines: every flag is checked here, in one place and before
/// anything runs, so a bad one is refused without a half-done run.
pub fn prepare(args: &RunArgs, server_program: PathBuf) -> Result<Prepared, UsageError> {
    let mut variants = select_variants(&args.variants)?;
    let external = parse_servers(&args.servers)?;
    variants.extend(
        external
            .iter()
            .map(|s| VariantName::External(s.name.clone())),
    );
    let cases = session::load_cases(&args.profiles, args.measure.connections, args.measure.seed)?;
    // Named variants (and --server peers) that serve none of the cases
    // would be planned for nothing; the default list may, since it is
    // every variant whatever the profiles.
    let named: Vec<VariantName> = variants
        .iter()
        .filter(|v| !args.variants.is_empty() || v.builtin().is_none())
        .cloned()
        .collect();
    applicable::serving_none(&cases, &named).map_err(UsageError)?;
    let precision = args.precision;
    // Effects need at least this many paired repetitions for an interval.
    let repetitions = match precision {
        Some(_) => args
            .measure
            .repetitions()?
            .max(crate::results::effects::MIN_REPETITIONS as u32),
        None => args.measure.repetitions()?,
    };
    let budget = args.measure.budget(precision.is_some());
    if args.threads == Some(0) {
        return Err(UsageError("--threads: must be at least 1".into()));
    }
    let cpu_profile = select_profiled_cases(&args.profile_cpu, &cases)?;
    let built_in: Vec<Variant> = variants.iter().filter_map(VariantName::builtin).collect();
    check_buffer_policy(args.buffers, &built_in)?;
    let instrument_cost = args.instrument_cost.then(|| InstrumentCostRequest {
        variant: built_in
            .iter()
            .copied()
            .find(|v| v.name() == PREFERRED_VARIANT)
            .unwrap_or(built_in[0]),
        rounds: repetitions.max(MIN_ROUNDS),
    });
    // One counting repetition (kernel counters on) after the timing ones;
    // three windows per instrument-cost round; one per profiled server.
    let measurements = applicable::applicable_pairs(&cases, &variants) * (repetitions as usize + 1)
        + instrument_cost
            .as_ref()
            .map_or(0, |r| 3 * r.rounds as usize)
        + cpu_profile
            .as_ref()
            .map_or(0, |r| r.cases.len() * variants.len());
    // With a precision target the planned repetitions get a third of the
    // budget (at most a plain run's), the rest is for extra blocks.
    let planned_budget = match precision {
        Some(_) => (budget / 3.0).min(session::DEFAULT_BUDGET_SECONDS),
        None => budget,
    };
    let timing = session::plan_timing(
        measurements,
        args.measure.duration,
        args.measure.warmup,
        args.measure.quick,
        planned_budget,
    )?;
    let usable = usable_cpus();
    // Every loop of every process wants its CPU, as threads would.
    let server_loops = args.threads.unwrap_or(1) * args.server_processes.unwrap_or(1);
    let cpus = plan_cpus(&args.pin, &usable, server_loops)?;
    let out = args
        .measure
        .out
        .clone()
        .unwrap_or_else(|| session::default_out_dir(""));
    session::check_out_dir(&out)?;
    let driver_threads_max = args.measure.driver_threads.unwrap_or_else(|| {
        cpus.driver
            .as_ref()
            .map_or_else(|| (usable.len() / 2).max(1), |d| d.len())
    });
    let profiles = if args.profiles.is_empty() {
        vec!["default suite".into()]
    } else {
        args.profiles.clone()
    };
    let settings = RunSettings {
        server_threads: args.threads,
        server_buffers: Some(args.buffers),
        server_processes: args.server_processes,
        precision_target_percent: precision,
        ..args.measure.settings(
            variants.clone(),
            profiles,
            &timing,
            repetitions,
            driver_threads_max,
        )
    };
    let pinning = Pinning {
        mode: args.pin.clone(),
        server_cpus: cpus.server.clone(),
        driver_cpus: cpus.driver.clone(),
        method: cpus.note.clone(),
    };
    let plan = Plan {
        cases,
        variants,
        repetitions,
        // Each spawned server's address replaces the target.
        engine: session::engine_config(
            &timing,
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            driver_threads_max,
            cpus.driver,
        ),
        driver_threads_max,
        target: Target::Spawn(ServerTemplate {
            program: server_program,
            leading_args: Vec::new(),
            threads: args.threads,
            processes: args.server_processes,
            cpus: cpus.server,
            extra_args: buffer_args(args.buffers),
            ready_timeout: args.measure.ready_timeout(),
            external,
        }),
        instrument_cost,
        cpu_profile,
        precision: precision.map(|target_percent| PrecisionGoal {
            target_percent,
            budget_seconds: budget,
            seconds_per_measurement: timing.warmup_seconds
                + timing.duration_seconds
                + session::OVERHEAD_PER_MEASUREMENT_SECONDS,
        }),
    };
    Ok(Prepared {
        plan,
        settings,
        pinning,
        out,
        estimated_total_seconds: timing.estimated_total_seconds,
        measure_limits: !args.no_limits,
    })
}

/// `epoll-bench run`.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let program = std::env::current_exe().context("cannot locate the epoll-bench binary")?;
    let prepared = prepare(&args, program)?;
    run_prepared(prepared, &mut crate::driver::orchestrator::LoadEngine)
}

/// Measures a prepared plan with `engine` and writes the results. Whether
/// the results directory can be created and written to is checked first:
/// measurements that could not be saved would be lost.
pub fn run_prepared(prepared: Prepared, engine: &mut dyn CaseEngine) -> anyhow::Result<()> {
    let Prepared {
        plan,
        settings,
        pinning,
        out,
        estimated_total_seconds,
        measure_limits,
    } = prepared;
    super::output::check_dir("--out", &out)?;
    match crate::sys::rlimit::raise_nofile_to_hard() {
        Ok(limit) => say!("open-file limit raised to {limit} for many-connection cases"),
        Err(e) => say!("warning: cannot raise the open-file limit: {e}"),
    }
    let mut environment = Environment::collect(pinning);
    environment.doctor = check_machine(&plan);
    say!(
        "plan: {} cases × {} variants × ({} timing + {} counting repetitions) = {} measurements; warm-up {:.2} s + window {:.2} s each; about {:.0} s",
        plan.cases.len(),
        plan.variants.len(),
        plan.repetitions,
        plan.target.counting_repetitions(),
        plan.measurement_count(),
        settings.warmup_seconds,
        settings.duration_seconds,
        estimated_total_seconds
    );
    let pairs = plan.cases.len() * plan.variants.len();
    let measured_pairs = plan.measurement_count() / plan.repetitions_per_variant().max(1) as usize;
    if measured_pairs < pairs {
        say!(
            "not applicable: {} of {pairs} (case, variant) pairs are left out (the variant does not serve the case's protocol; listed in summary.md)",
            pairs - measured_pairs
        );
    }
    if let Some(goal) = &plan.precision {
        say!(
            "precision: more timing repetitions per case until every headline effect is within ±{}%, the whole run within {:.0} s (--budget)",
            goal.target_percent,
            goal.budget_seconds
        );
    }
    if let Some(request) = &plan.instrument_cost {
        say!(
            "then the instrument cost: {} at {} req/s, {} rounds × 3 servers",
            request.variant,
            crate::report::export::markdown::number(FIXED_LOAD_RATE_PER_SECOND),
            request.rounds
        );
    }
    if let Some(request) = &plan.cpu_profile {
        say!(
            "then CPU profiles (perf record -e cpu-clock, one more window per server) of {}",
            request.cases.join(", ")
        );
    }
    say!(
        "pinning: {}",
        match (
            &environment.pinning.server_cpus,
            &environment.pinning.driver_cpus
        ) {
            (Some(s), Some(d)) => format!("server CPUs {s:?}, driver CPUs {d:?}"),
            _ => environment.pinning.method.clone(),
        }
    );
    let machine_limits = measure_limits.then(measure_machine_limits).flatten();
    session::measure_and_write(
        RunKind::Run,
        plan,
        settings,
        environment,
        machine_limits,
        &out,
        engine,
    )
}

/// `epoll-bench limits --quick`, before any server starts, for the results'
/// `machine_limits` block; a failure is a warning, not a failed run.
fn measure_machine_limits() -> Option<crate::results::machine_limits::MachineLimits> {
    use crate::driver::limits::{self, LimitsPlan};
    let plan = LimitsPlan::quick(limits::default_parallel_streams());
    match limits::measure(&plan, &mut |_| {}) {
        Ok(measured) => {
            say!(
                "machine limits: loopback {:.2} GB/s one way (1 stream), memcpy {:.2} GB/s, null syscall {:.0} ns (recorded in the results; --no-limits skips)",
                measured.loopback_one_way_1_stream_bytes_per_second.median / 1e9,
                measured.memcpy_bytes_per_second.median / 1e9,
                measured.null_syscall_ns.median
            );
            Some(measured)
        }
        Err(e) => {
            say!("warning: cannot measure the machine's limits: {e}");
            None
        }
    }
}

/// Runs the doctor for the largest case of the plan, prints its verdict
/// (and every non-OK finding) and returns it for the environment block.
fn check_machine(plan: &Plan) -> Option<crate::doctor::DoctorReport> {
    use crate::doctor::{DoctorArgs, Status};
    let connections = plan.cases.iter().map(open_connections).max().unwrap_or(1);
    let args = DoctorArgs {
        connections,
        ..DoctorArgs::default()
    };
    match crate::doctor::run(&args) {
        Ok(report) => {
            say!(
                "doctor: {} OK, {} WARN, {} FAIL for {connections} connections (recorded in the results)",
                report.ok_count,
                report.warn_count,
                report.fail_count
            );
            for finding in report.findings.iter().filter(|f| f.status != Status::Ok) {
                say!(
                    "  {:?} {}: {}",
                    finding.status,
                    finding.check,
                    finding.message
                );
            }
            Some(report)
        }
        Err(e) => {
            say!("warning: doctor could not check this machine: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: RunArgs,
    }

    fn args(line: &[&str]) -> RunArgs {
        Wrapper::try_parse_from(std::iter::once("run").chain(line.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn auto_pinning_splits_two_cpus() {
        let plan = plan_cpus("auto", &[0, 1], 1).unwrap();
        assert_eq!(plan.server, Some(vec![1]));
        assert_eq!(plan.driver, Some(vec![0]));
        let plan = plan_cpus("auto", &[0, 1, 2, 3, 4, 5, 6, 7], 2).unwrap();
        assert_eq!(plan.server, Some(vec![6, 7]));
        assert_eq!(plan.driver, Some(vec![0, 1, 2, 3, 4, 5]));
        assert_eq!(plan_cpus("auto", &[0], 1).unwrap().server, None);
        assert_eq!(plan_cpus("none", &[0, 1], 1).unwrap().driver, None);
    }

    #[test]
    fn explicit_pinning_is_checked() {
        let plan = plan_cpus("1", &[0, 1, 2], 1).unwrap();
        assert_eq!(
            (plan.server, plan.driver),
            (Some(vec![1]), Some(vec![0, 2]))
        );
        let plan = plan_cpus("2-3/0", &[0, 1, 2, 3], 1).unwrap();
        assert_eq!(
            (plan.server, plan.driver),
            (Some(vec![2, 3]), Some(vec![0]))
        );
        assert!(
            plan_cpus("1/1", &[0, 1], 1)
                .unwrap_err()
                .0
                .contains("disjoint")
        );
        assert!(plan_cpus("7", &[0, 1], 1).unwrap_err().0.contains("CPU 7"));
        assert!(
            plan_cpus("0-1", &[0, 1], 1)
                .unwrap_err()
                .0
                .contains("driver")
        );
        assert!(
            plan_cpus("x", &[0, 1], 1)
                .unwrap_err()
                .0
                .starts_with("--pin")
        );
    }

    #[test]
    fn variants_default_to_all_and_unknown_ones_are_refused() {
        assert_eq!(select_variants(&[]).unwrap().len(), Variant::ALL.len());
        assert_eq!(
            select_variants(&["et-rw".into(), "lt-rw".into(), "et-rw".into()]).unwrap(),
            ["et-rw", "lt-rw"]
        );
        let err = select_variants(&["et-rx".into()]).unwrap_err();
        assert!(
            err.0.contains("`et-rx`") && err.0.contains("lt-writev"),
            "{}",
            err.0
        );
    }

    #[test]
    fn prepare_builds_the_default_plan_within_budget() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let a = args(&["--out", out.to_str().unwrap()]);
        let p = prepare(&a, "/bin/true".into()).unwrap();
        assert_eq!(p.plan.variants.len(), Variant::ALL.len());
        assert_eq!(p.plan.repetitions, 3);
        assert!(
            p.estimated_total_seconds <= 180.0,
            "{}",
            p.estimated_total_seconds
        );
        assert!(!out.exists(), "preparing must not write anything");
    }

    #[test]
    fn quick_means_one_short_repetition() {
        let p = prepare(
            &args(&["--quick", "--variants", "lt-rw"]),
            "/bin/true".into(),
        )
        .unwrap();
        assert_eq!(p.plan.repetitions, 1);
        assert_eq!(p.settings.duration_seconds, session::QUICK_DURATION_SECONDS);
        assert!(p.settings.quick);
    }

    #[test]
    fn pooled_buffers_reach_every_server_and_the_results_or_are_refused() {
        let p = prepare(
            &args(&[
                "--quick",
                "--variants",
                "lt-rw,et-writev",
                "--buffers",
                "pooled",
            ]),
            "/bin/true".into(),
        )
        .unwrap();
        assert_eq!(p.settings.server_buffers, Some(BufferPolicy::Pooled));
        let crate::driver::orchestrator::Target::Spawn(template) = &p.plan.target else {
            panic!("run spawns its servers");
        };
        assert_eq!(template.extra_args, ["--buffers", "pooled"]);
        let refused = prepare(
            &args(&[
                "--quick",
                "--variants",
                "lt-rw,lt-splice",
                "--buffers",
                "pooled",
            ]),
            "/bin/true".into(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            refused.starts_with(
                "--buffers pooled: these variants cannot use pooled buffers: lt-splice ("
            ),
            "{refused}"
        );
        assert!(
            refused.contains("choose among lt-rw, lt-writev,"),
            "{refused}"
        );
        let p = prepare(
            &args(&["--quick", "--variants", "lt-splice"]),
            "/bin/true".into(),
        )
        .unwrap();
        assert_eq!(p.settings.server_buffers, Some(BufferPolicy::PerConnection));
    }

    #[test]
    fn profile_cpu_takes_case_labels_or_profile_names_and_refuses_others() {
        use crate::results::fixture::case;
        let cases = [
            case("pingpong-64b-1conn", 64),
            case("size-sweep/64", 64),
            case("size-sweep/4096", 4096),
        ];
        assert_eq!(select_profiled_cases(&[], &cases).unwrap(), None);
        let asked = ["size-sweep/4096", "pingpong-64b-1conn", "size-sweep"].map(String::from);
        assert_eq!(
            select_profiled_cases(&asked, &cases)
                .unwrap()
                .unwrap()
                .cases,
            ["size-sweep/4096", "pingpong-64b-1conn", "size-sweep/64"]
        );
        let err = select_profiled_cases(&["pingpong".into()], &cases).unwrap_err();
        assert!(
            err.0
                .starts_with("--profile-cpu: no case or profile `pingpong`")
                && err.0.contains("size-sweep/4096"),
            "{}",
            err.0
        );
        let p = prepare(
            &args(&[
                "--profile-cpu",
                "pingpong-64b-1conn",
                "--profile",
                "pingpong-64b-1conn",
            ]),
            "/bin/true".into(),
        )
        .unwrap();
        assert_eq!(p.plan.cpu_profile.unwrap().cases, ["pingpong-64b-1conn"]);
        assert!(prepare(&args(&["--profile-cpu", "nope"]), "/bin/true".into()).is_err());
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let bad = [
            vec!["--repetitions", "0"],
            vec!["--variants", "nope"],
            vec!["--duration", "0"],
            vec!["--pin", "9/9"],
            vec!["--profile", "does/not/exist.toml"],
            vec!["--threads", "0"],
        ];
        for line in bad {
            // Out-of-range numbers are refused by their flag's parser,
            // everything else by `prepare`.
            let parsed =
                Wrapper::try_parse_from(std::iter::once("run").chain(line.iter().copied()));
            match parsed {
                Ok(parsed) => {
                    let err = prepare(&parsed.args, "/bin/true".into());
                    assert!(err.is_err(), "{line:?} was accepted");
                }
                Err(e) => assert!(e.to_string().contains(line[0]), "{line:?}: {e}"),
            }
        }
        let err = prepare(
            &args(&["--profile", "does/not/exist.toml"]),
            "/bin/true".into(),
        )
        .err()
        .unwrap();
        assert!(err.0.contains("does/not/exist.toml"), "{}", err.0);
    }
}
