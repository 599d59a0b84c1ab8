//! What `run` and `drive` share: loading cases, timing, Ctrl-C, progress
//! display, the output directory, measuring a plan (the driver's one loop)
//! and finishing (export, summary, exit status).

use std::io::IsTerminal;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::driver::measurement::{CasePhase, EngineConfig, Progress};
use crate::driver::orchestrator::{CaseEngine, CasePrecision, Plan, ProgressSink, Step, run_plan};
use crate::driver::profile;
use crate::driver::server_process::DEFAULT_READY_TIMEOUT;
use crate::error::UsageError;
use crate::report::export::{self, markdown};
use crate::results::workload::Case;
use crate::results::{
    Environment, Repetition, ResultsFile, RunKind, RunSettings, Status, now_utc_rfc3339,
};
use crate::server::VariantName;

/// Estimated cost of one measurement beyond its warm-up and window: start
/// the server, attach kernel counters, connect, drain, stop. Measured at
/// 0.02–0.05 s on a 2-core machine; the rest is margin for many-connection
/// cases and a loaded machine. Used only to fit the default timing into the
/// time budget.
pub const OVERHEAD_PER_MEASUREMENT_SECONDS: f64 = 0.1;
/// Wall-clock budget of a plain `run`: the promise is three minutes for
/// every built-in variant over the default suite (15 variants at a 0.2 s
/// shortest window need about 150 s), the rest is slack for a slower
/// machine.
pub const DEFAULT_BUDGET_SECONDS: f64 = 150.0;
/// Wall-clock budget of `run --precision` when `--budget` is not given:
/// the whole run, extra repetitions included.
pub const DEFAULT_PRECISION_BUDGET_SECONDS: f64 = 300.0;
/// `--quick`: a smoke run, not a measurement.
pub const QUICK_WARMUP_SECONDS: f64 = 0.05;
pub const QUICK_DURATION_SECONDS: f64 = 0.25;
/// How long the engine waits, after the window, for responses in flight.
/// A healthy drain ends in milliseconds, as soon as the last one is in; the
/// wait only matters when the machine stalls (a VM's host can take whole
/// seconds of CPU), and then a late response must not pass for a lost one.
pub const DRAIN_TIMEOUT_SECONDS: f64 = 2.0;
const MIN_DURATION_SECONDS: f64 = 0.2;
const MAX_AUTO_DURATION_SECONDS: f64 = 10.0;
const MAX_AUTO_WARMUP_SECONDS: f64 = 2.0;

/// Warm-up and window of every measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    pub warmup_seconds: f64,
    pub duration_seconds: f64,
    /// The budget the timing was fitted to (`None` when given by flags).
    pub budget_seconds: Option<f64>,
    pub estimated_total_seconds: f64,
}

/// Fits warm-up and window into `budget` over `measurements` unless they
/// were given; warm-up defaults to a quarter of the window.
pub fn plan_timing(
    measurements: usize,
    duration: Option<f64>,
    warmup: Option<f64>,
    quick: bool,
    budget: f64,
) -> Result<Timing, UsageError> {
    let check = |name: &str, value: Option<f64>, min: f64| -> Result<(), UsageError> {
        match value {
            Some(v) if !v.is_finite() || v < min => Err(UsageError(format!(
                "--{name}: must be a number of seconds of at least {min}, got {v}"
            ))),
            _ => Ok(()),
        }
    };
    check("duration", duration, 0.01)?;
    check("warmup", warmup, 0.0)?;
    if !budget.is_finite() || budget <= 0.0 {
        return Err(UsageError(format!(
            "--budget: must be a positive number of seconds, got {budget}"
        )));
    }
    let n = measurements.max(1) as f64;
    let (duration_seconds, budget_seconds) = match (duration, quick) {
        (Some(d), _) => (d, None),
        (None, true) => (QUICK_DURATION_SECONDS, None),
        (None, false) => {
            let per = budget / n - OVERHEAD_PER_MEASUREMENT_SECONDS;
            // Window takes 4/5 of the per-measurement time, warm-up 1/5.
            (
                (per * 0.8).clamp(MIN_DURATION_SECONDS, MAX_AUTO_DURATION_SECONDS),
                Some(budget),
            )
        }
    };
    let warmup_seconds = match (warmup, quick) {
        (Some(w), _) => w,
        (None, true) => QUICK_WARMUP_SECONDS,
        (None, false) => (duration_seconds / 4.0).clamp(0.05, MAX_AUTO_WARMUP_SECONDS),
    };
    Ok(Timing {
        warmup_seconds,
        duration_seconds,
        budget_seconds,
        estimated_total_seconds: n
            * (warmup_seconds + duration_seconds + OVERHEAD_PER_MEASUREMENT_SECONDS),
    })
}

/// The cases of `--profile` arguments (files or built-in names), or the
/// default suite; with `--connections` / `--seed` applied. Errors are
/// [`UsageError`]s naming file, line and field.
pub fn load_cases(
    profiles: &[String],
    connections: Option<u32>,
    seed: Option<u64>,
) -> Result<Vec<Case>, UsageError> {
    let mut cases = if profiles.is_empty() {
        profile::default_suite()
    } else {
        let mut cases = Vec::new();
        for argument in profiles {
            cases
                .extend(profile::resolve_profile(argument).map_err(|e| UsageError(e.to_string()))?);
        }
        cases
    };
    if connections == Some(0) {
        return Err(UsageError("--connections: must be at least 1".into()));
    }
    for case in &mut cases {
        if let Some(c) = connections {
            case.connections = c;
        }
        if let Some(s) = seed {
            case.seed = s;
        }
    }
    let mut labels = std::collections::HashSet::new();
    for case in &cases {
        if !labels.insert(case.label.clone()) {
            return Err(UsageError(format!(
                "case `{}` is given twice (same profile twice?)",
                case.label
            )));
        }
    }
    Ok(cases)
}

/// Raised by SIGINT/SIGTERM once a handler is installed.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let raised = Arc::clone(&flag);
        let installed = ctrlc::set_handler(move || {
            if raised.swap(true, Ordering::SeqCst) {
                // Second Ctrl-C: the user means it.
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupted: finishing the current measurement, then saving what finished (Ctrl-C again to quit now)"
            );
        });
        if let Err(e) = installed {
            eprintln!("warning: Ctrl-C will not save partial results: {e}");
        }
        flag
    })
    .clone()
}

/// `results/<UTC timestamp>[-suffix]/`, not yet existing.
pub fn default_out_dir(suffix: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    let base = PathBuf::from("results").join(format!("{stamp}{suffix}"));
    let mut candidate = base.clone();
    let mut n = 2;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    candidate
}

/// Refuses an output path that cannot be a results directory, before any
/// measuring.
pub fn check_out_dir(dir: &Path) -> Result<(), UsageError> {
    if dir.exists() && !dir.is_dir() {
        return Err(UsageError(format!(
            "--out {}: exists and is not a directory",
            dir.display()
        )));
    }
    Ok(())
}

/// Progress bar on a terminal, one line per measurement otherwise.
pub struct ProgressDisplay {
    bar: Option<ProgressBar>,
    /// Last live sample: when, and responses so far.
    last_sample: Option<(std::time::Instant, u64)>,
    live_requests_per_second: f64,
}

impl ProgressDisplay {
    pub fn new(total: usize) -> ProgressDisplay {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} {msg} (eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        ProgressDisplay {
            bar,
            last_sample: None,
            live_requests_per_second: 0.0,
        }
    }

    /// Prints a line above the bar (or plainly).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => say!("{line}"),
        }
    }

    fn show(&self, step: &Step, requests_per_second: f64, phase: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{} · {} · {} · {phase} · {} req/s",
                step.variant,
                step.case.label,
                step.repetition_label(),
                markdown::number(requests_per_second)
            ));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One line about a finished measurement.
pub fn outcome_line(step: &Step, repetition: &Repetition) -> String {
    let what = format!(
        "[{:>3}/{}] {:<20} {:<24} {}",
        step.index + 1,
        step.total,
        step.variant,
        step.case.label,
        step.repetition_label()
    );
    match (&repetition.measurement, &repetition.failure) {
        (Some(m), _) => format!(
            "{what}: {} req/s, p99 {} µs",
            markdown::number(m.requests_per_second()),
            markdown::number(m.latency.p99_us)
        ),
        (None, Some(f)) => format!("{what}: FAILED: {}", f.reasons.join("; ")),
        (None, None) => format!("{what}: no result"),
    }
}

impl ProgressSink for ProgressDisplay {
    fn measurement_started(&mut self, step: &Step) {
        if let Some(bar) = &self.bar
            && bar.length() != Some(step.total as u64)
        {
            // `--precision` added a block, or steal a window.
            bar.set_length(step.total as u64);
        }
        self.last_sample = None;
        self.live_requests_per_second = 0.0;
        self.show(step, 0.0, "starting");
    }

    fn live(&mut self, step: &Step, progress: &Progress) {
        let now = std::time::Instant::now();
        if let Some((then, before)) = self.last_sample {
            let seconds = now.duration_since(then).as_secs_f64();
            if seconds > 0.0 {
                self.live_requests_per_second =
                    progress.requests_completed_total.saturating_sub(before) as f64 / seconds;
            }
        }
        self.last_sample = Some((now, progress.requests_completed_total));
        let phase = match progress.phase {
            CasePhase::Connecting => "connecting",
            CasePhase::WarmingUp => "warm-up",
            CasePhase::Measuring => "measuring",
            CasePhase::Draining => "draining",
        };
        self.show(step, self.live_requests_per_second, phase);
    }

    fn measurement_finished(&mut self, step: &Step, repetition: &Repetition) {
        let line = outcome_line(step, repetition);
        match &self.bar {
            Some(bar) => {
                if repetition.status == Status::Failed {
                    bar.println(&line);
                }
                bar.inc(1);
            }
            None => say!("{line}"),
        }
    }

    fn case_finished(&mut self, precision: &CasePrecision) {
        self.println(&precision.line());
    }
}

/// After the cases: the headline effects a precision target was not
/// reached for, or that every case reached it.
pub fn precision_verdict(cases: &[CasePrecision]) -> Option<String> {
    let target = cases.iter().find_map(|c| c.target_percent)?;
    let short: Vec<String> = cases
        .iter()
        .flat_map(CasePrecision::short_of_target)
        .collect();
    Some(if short.is_empty() {
        format!("precision: every headline effect reached ±{target}%")
    } else {
        format!(
            "precision: {} headline effect{} did not reach ±{target}%:\n  {}",
            short.len(),
            if short.len() == 1 { "" } else { "s" },
            short.join("\n  ")
        )
    })
}

/// One line for the driver-cost warnings instead of one per variant: on
/// loopback they fire together, for the same reason (README, "Driver cost").
/// One line when the hypervisor took a noticeable share of some windows.
fn warn_steal(results: &ResultsFile) {
    use crate::metrics::cpu_steal::STEAL_WARN_PERCENT;
    let steals: Vec<f64> = results
        .variant_results()
        .flat_map(|(_, v)| &v.repetitions)
        .filter_map(|r| r.cpu_steal_percent())
        .collect();
    let stolen: Vec<f64> = steals
        .iter()
        .copied()
        .filter(|s| *s >= STEAL_WARN_PERCENT)
        .collect();
    if let Some(worst) = stolen.iter().copied().reduce(f64::max) {
        say!(
            "warning: the hypervisor took {STEAL_WARN_PERCENT:.0}% or more of the CPU time (steal) in {} of {} windows, up to {worst:.0}%: those results carry the host's contention (marked in summary.md); rerun on a quieter machine",
            stolen.len(),
            steals.len()
        );
    }
}

fn warn_driver_cost(results: &ResultsFile) {
    use crate::results::DriverBottleneck;
    let mut saturated = 0;
    let mut driver_only = Vec::new();
    let mut measured = 0;
    for (case, variant) in results.variant_results() {
        let Some(s) = variant.summary.as_ref() else {
            continue;
        };
        measured += 1;
        match s.driver_bottleneck() {
            Some(DriverBottleneck::DriverOnly {
                driver_percent,
                server_percent,
            }) => {
                saturated += 1;
                driver_only.push(format!(
                    "{} / {}: driver {driver_percent:.0}%, server {server_percent:.0}%",
                    case.label, variant.variant
                ));
            }
            Some(_) => saturated += 1,
            None => {}
        }
    }
    if saturated == 0 {
        return;
    }
    let limited = if driver_only.is_empty() {
        "the server was saturated too in each".to_string()
    } else {
        let shown: Vec<&str> = driver_only.iter().take(3).map(String::as_str).collect();
        format!(
            "it alone limited {} of them ({}{})",
            driver_only.len(),
            shown.join("; "),
            if driver_only.len() > 3 { "; …" } else { "" }
        )
    };
    say!(
        "warning: the driver was saturated (busy ≥{:.0}% of the window) in {saturated} of {measured} results; \
         {limited} — see summary.md and the README's \"Driver cost\"",
        crate::results::DRIVER_SATURATED_PERCENT
    );
}

/// Measures `plan` with `engine` (progress on the terminal, Ctrl-C saving
/// what finished), then writes the results of a `kind` run to `out` as
/// [`finish`] does.
pub fn measure_and_write(
    kind: RunKind,
    mut plan: Plan,
    settings: RunSettings,
    environment: Environment,
    machine_limits: Option<crate::results::machine_limits::MachineLimits>,
    out: &Path,
    engine: &mut dyn CaseEngine,
) -> anyhow::Result<()> {
    let interrupted = interrupt_flag();
    let started_at_utc = now_utc_rfc3339();
    let clock = Instant::now();
    let mut display = ProgressDisplay::new(plan.measurement_count());
    let outcome = run_plan(&mut plan, engine, &mut display, &interrupted);
    display.finish();
    if let Some(verdict) = precision_verdict(&outcome.precision) {
        say!("{verdict}");
    }
    let mut results = ResultsFile::builder(kind, settings, environment)
        .started_at(started_at_utc)
        .elapsed_seconds(clock.elapsed().as_secs_f64())
        .interrupted(outcome.interrupted)
        .machine_limits(machine_limits)
        .build(outcome.cases);
    results.instrument_cost = match outcome.instrument_cost {
        Some(Err(reason)) => {
            eprintln!("warning: instrument cost not measured: {reason}");
            None
        }
        measured => measured.and_then(Result::ok),
    };
    results.cpu_profiles = super::cpu_profile_files::store_cpu_profiles(out, outcome.cpu_profiles);
    results.not_applicable = outcome.not_applicable;
    finish(&results, out)
}

/// Writes the results directory, prints the summary and warnings, and turns
/// failures and interruptions into an error (after saving).
pub fn finish(results: &ResultsFile, out: &Path) -> anyhow::Result<()> {
    let written = export::export_all(out, results, &export::default_exporters())?;
    say!("\n{}", markdown::summary_markdown(results));
    warn_driver_cost(results);
    warn_steal(results);
    let charts = if results.run.passed_count == 0 {
        // Failed results are never charted; nothing to draw now or later.
        Err(None)
    } else {
        crate::report::charts::render_charts_with_notes(results, &out.join("charts")).map_err(Some)
    };
    match charts {
        Ok(charts) => {
            for note in &charts.notes {
                eprintln!("chart note: {note}");
            }
            say!(
                "{} chart files written to {}/charts/",
                charts.written.len(),
                out.display()
            );
        }
        // Results are complete without charts; `epoll-bench chart` can
        // draw them later from the files alone.
        Err(None) => say!("no charts: no result passed"),
        Err(Some(e)) => eprintln!(
            "warning: charts not drawn ({e}); run `epoll-bench chart {}` later",
            out.display()
        ),
    }
    if results.environment.build_profile == "debug" {
        say!("warning: this is a debug build; measure with `cargo run --release`");
    }
    say!(
        "results written to {}/ ({})",
        out.display(),
        written
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(reason) = &results.run.incomplete_reason {
        return Err(crate::error::Interrupted(format!(
            "run incomplete ({reason}); partial results saved in {}",
            out.display()
        ))
        .into());
    }
    if results.run.failed_count > 0 {
        anyhow::bail!(
            "{} of {} results failed (see failure reasons in {}/summary.md)",
            results.run.failed_count,
            results.run.failed_count + results.run.passed_count,
            out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_timing_fits_the_budget() {
        // 6 cases × 8 variants × 3 repetitions.
        let t = plan_timing(144, None, None, false, DEFAULT_BUDGET_SECONDS).unwrap();
        assert!(t.estimated_total_seconds <= DEFAULT_BUDGET_SECONDS + 1e-9);
        assert!(t.duration_seconds >= MIN_DURATION_SECONDS);
        assert_eq!(t.warmup_seconds, t.duration_seconds / 4.0);
        assert_eq!(t.budget_seconds, Some(DEFAULT_BUDGET_SECONDS));
    }

    #[test]
    fn explicit_and_quick_timing() {
        let t = plan_timing(10, Some(2.0), None, false, 100.0).unwrap();
        assert_eq!((t.duration_seconds, t.warmup_seconds), (2.0, 0.5));
        assert_eq!(t.budget_seconds, None);
        let t = plan_timing(10, None, None, true, 100.0).unwrap();
        assert_eq!(
            (t.duration_seconds, t.warmup_seconds),
            (QUICK_DURATION_SECONDS, QUICK_WARMUP_SECONDS)
        );
        let t = plan_timing(10, Some(1.0), Some(0.0), false, 100.0).unwrap();
        assert_eq!(t.warmup_seconds, 0.0);
    }

    #[test]
    fn bad_timing_flags_name_the_flag() {
        let err = plan_timing(1, Some(-1.0), None, false, 100.0).unwrap_err();
        assert!(err.0.starts_with("--duration"), "{}", err.0);
        let err = plan_timing(1, None, Some(f64::NAN), false, 100.0).unwrap_err();
        assert!(err.0.starts_with("--warmup"), "{}", err.0);
    }

    #[test]
    fn cases_get_overrides_and_bad_profiles_name_the_file() {
        let cases = load_cases(&["pingpong-64b-1conn".into()], Some(3), Some(9)).unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!((cases[0].connections, cases[0].seed), (3, 9));
        assert!(!load_cases(&[], None, None).unwrap().is_empty());

        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            "connections = 1\n[shape]\nkind = \"pipelined\"\ndepth = 0\n",
        )
        .unwrap();
        let err = load_cases(&[bad.display().to_string()], None, None).unwrap_err();
        assert!(err.0.contains("bad.toml:4:"), "{}", err.0);
        assert!(err.0.contains("shape.depth"), "{}", err.0);

        let err = load_cases(&["pingpong-64b-1conn".into()], Some(0), None).unwrap_err();
        assert!(err.0.contains("--connections"));
        let twice = [
            "pingpong-64b-1conn".to_string(),
            "pingpong-64b-1conn".to_string(),
        ];
        assert!(
            load_cases(&twice, None, None)
                .unwrap_err()
                .0
                .contains("twice")
        );
    }

    #[test]
    fn default_out_dir_is_a_fresh_timestamped_path() {
        let dir = default_out_dir("");
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(dir.starts_with("results"));
        assert!(name.ends_with('Z') && !name.contains(':'), "{name}");
    }
}

impl MeasureArgs {
    /// `--ready-timeout`, or the default.
    pub fn ready_timeout(&self) -> Duration {
        self.ready_timeout
            .map_or(DEFAULT_READY_TIMEOUT, Duration::from_secs_f64)
    }

    /// `--budget` or its default: with a precision target, the whole run's.
    pub fn budget(&self, precision: bool) -> f64 {
        self.budget.unwrap_or(if precision {
            DEFAULT_PRECISION_BUDGET_SECONDS
        } else {
            DEFAULT_BUDGET_SECONDS
        })
    }

    /// `--repetitions` or its default (3, 1 with `--quick`), checked along
    /// with `--driver-threads`.
    pub fn repetitions(&self) -> Result<u32, UsageError> {
        let repetitions = self.repetitions.unwrap_or(if self.quick { 1 } else { 3 });
        if repetitions == 0 {
            return Err(UsageError("--repetitions: must be at least 1".into()));
        }
        if self.driver_threads == Some(0) {
            return Err(UsageError("--driver-threads: must be at least 1".into()));
        }
        Ok(repetitions)
    }

    /// The settings these options give, for a run of `variants` and
    /// `profiles`; no server threads, target or control address.
    pub fn settings(
        &self,
        variants: Vec<VariantName>,
        profiles: Vec<String>,
        timing: &Timing,
        repetitions: u32,
        driver_threads_max: usize,
    ) -> RunSettings {
        RunSettings {
            variants,
            profiles,
            warmup_seconds: timing.warmup_seconds,
            duration_seconds: timing.duration_seconds,
            drain_timeout_seconds: DRAIN_TIMEOUT_SECONDS,
            repetitions_planned: repetitions,
            connections_override: self.connections,
            seed_override: self.seed,
            quick: self.quick,
            server_threads: None,
            server_buffers: None,
            server_processes: None,
            driver_threads_max,
            time_budget_seconds: timing.budget_seconds,
            precision_target_percent: None,
            target: None,
            control: None,
        }
    }
}

/// The engine's timing and driver threads for every measurement against
/// `target`.
pub fn engine_config(
    timing: &Timing,
    target: std::net::SocketAddr,
    driver_threads_max: usize,
    driver_cpus: Option<Vec<usize>>,
) -> EngineConfig {
    EngineConfig {
        target,
        warmup: Duration::from_secs_f64(timing.warmup_seconds),
        duration: Duration::from_secs_f64(timing.duration_seconds),
        driver_threads: driver_threads_max,
        driver_cpus,
        drain_timeout: Duration::from_secs_f64(DRAIN_TIMEOUT_SECONDS),
    }
}

/// How long and how hard to measure: the options `run` and `drive` share.
#[derive(Debug, Clone, clap::Args)]
pub struct MeasureArgs {
    /// Measured window of each measurement (default: fitted to --budget).
    #[arg(long, value_name = "SECONDS", value_parser = crate::units::number(0.01.., "seconds"))]
    pub duration: Option<f64>,
    /// Warm-up before each window (default: a quarter of the window).
    #[arg(long, value_name = "SECONDS", value_parser = crate::units::number(0.0.., "seconds"))]
    pub warmup: Option<f64>,
    /// Repetitions of every variant × case (default 3; 1 with --quick).
    #[arg(long, value_name = "N", value_parser = crate::units::number(1u32.., ""))]
    pub repetitions: Option<u32>,
    /// Active connections of every case, replacing the profiles' counts.
    #[arg(long, value_name = "N", value_parser = crate::units::number(1u32.., ""))]
    pub connections: Option<u32>,
    /// Seed of every case's sizes and payload, replacing the profiles'.
    #[arg(long, value_parser = crate::units::number(0u64.., ""))]
    pub seed: Option<u64>,
    /// Results directory (default: results/<UTC timestamp>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Most driver threads (default: `run` uses the driver's CPUs, `drive`
    /// half the usable CPUs).
    #[arg(long, value_name = "N", value_parser = crate::units::number(1usize.., ""))]
    pub driver_threads: Option<usize>,
    /// A seconds-long smoke run (for CI): short windows, 1 repetition.
    #[arg(long)]
    pub quick: bool,
    /// Wall-clock budget in seconds. A plain run fits its default window
    /// and warm-up to it (default 150). With `run --precision` it bounds the
    /// whole run, extra repetitions included (default 300); the planned
    /// repetitions then get a third of it, at most 150 s.
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = crate::units::number((Bound::Excluded(0.0), Bound::Unbounded), "seconds")
    )]
    pub budget: Option<f64>,
    /// How long each server may take from its start until it listens (a
    /// `--server` runtime that warms up slowly needs more), in seconds
    /// (default 10).
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = crate::units::number((Bound::Excluded(0.0), Bound::Unbounded), "seconds")
    )]
    pub ready_timeout: Option<f64>,
}
