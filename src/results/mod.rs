//! The results schema: what a `run` or `drive` produces and what every
//! exporter, chart and comparison reads. Plain serde structs, versioned by
//! [`SCHEMA_VERSION`], with the unit of every figure in its field name.
//! Documented field by field in `docs/results-schema.md` (a test keeps the two
//! in step).
//!
//! Measuring (the driver's orchestrator) fills these structs; exporters (the
//! report layer) only read them. Nothing here imports either.
//!
//! A failed repetition keeps its failure record but no measurement, and a
//! variant with any failed repetition has no summary: failed results are
//! never reported as numbers.

#![forbid(unsafe_code)]

pub mod aggregate;
pub mod buffers;
pub mod builder;
pub mod connection_memory;
pub mod cpu_profile;
pub mod doctor_report;
pub mod effects;
pub mod environment;
pub mod external;
pub mod figures;
pub mod instrument_cost;
pub mod latency_curve;
pub mod machine_limits;
pub mod measurement;
pub mod not_applicable;
pub mod other_load;
pub mod scale_plan;
pub mod spread;
pub mod summary;
pub mod thread_capacity;
pub mod uring_ops;
pub mod workload;
pub mod zerocopy;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metrics::cross_check::CrossCheck;
use crate::server::VariantName;
use crate::server::report::ServerReport;
use measurement::{CaseMeasurement, VerificationCounts};
use workload::Case;

pub use builder::ResultsBuilder;
pub use environment::Environment;
pub use summary::{DriverBottleneck, ServerSummary, Summary};

/// Bumped whenever a field is renamed, removed or changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsFile {
    pub schema_version: u32,
    pub run: RunInfo,
    pub environment: Environment,
    pub cases: Vec<CaseResult>,
    /// What this machine allows (`epoll-bench limits`, quick), measured at
    /// the start of the run; absent when skipped (`--no-limits`, `drive`)
    /// or in files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_limits: Option<machine_limits::MachineLimits>,
    /// What the instruments cost the server (`run --instrument-cost`);
    /// absent when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instrument_cost: Option<instrument_cost::InstrumentCost>,
    /// Where each server's CPU went in the cases `run --profile-cpu`
    /// named (perf samples of one extra window); absent when not asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_profiles: Vec<cpu_profile::CpuProfile>,
    /// (case, variant) pairs left out because the variant does not serve
    /// the case's protocol: not measured, not failed; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_applicable: Vec<not_applicable::NotApplicable>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// `epoll-bench run`: servers started by the tool.
    Run,
    /// `epoll-bench drive`: a server started elsewhere.
    Drive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Every planned measurement was attempted.
    Complete,
    /// Interrupted (Ctrl-C): only what finished is recorded.
    Incomplete,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    pub kind: RunKind,
    pub status: RunStatus,
    /// Why the run is incomplete.
    pub incomplete_reason: Option<String>,
    /// RFC 3339, UTC.
    pub started_at_utc: String,
    pub finished_at_utc: String,
    pub elapsed_seconds: f64,
    pub settings: RunSettings,
    /// Variant results with status `passed` / `failed`, over all cases.
    pub passed_count: u32,
    pub failed_count: u32,
}

/// `(passed, failed)` variant results over `cases`: what `RunInfo`'s
/// `passed_count` and `failed_count` hold.
pub fn status_counts(cases: &[CaseResult]) -> (u32, u32) {
    cases
        .iter()
        .flat_map(|c| &c.variants)
        .fold((0, 0), |(passed, failed), v| match v.status {
            Status::Passed => (passed + 1, failed),
            Status::Failed => (passed, failed + 1),
        })
}

/// How the run was asked to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    pub variants: Vec<VariantName>,
    /// Profile files, or `default suite`.
    pub profiles: Vec<String>,
    pub warmup_seconds: f64,
    pub duration_seconds: f64,
    pub drain_timeout_seconds: f64,
    pub repetitions_planned: u32,
    /// `--connections`: replaces every case's connection count.
    pub connections_override: Option<u32>,
    /// `--seed`: replaces every case's seed.
    pub seed_override: Option<u64>,
    pub quick: bool,
    /// `--threads` given to the server (`None`: the server's default).
    pub server_threads: Option<usize>,
    /// `run --buffers`: the buffer policy every server ran with (`None`:
    /// `drive`, whose server was started elsewhere, and files from before
    /// the policy existed, when every server had per-connection buffers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_buffers: Option<crate::server::BufferPolicy>,
    /// `--server-processes` given to the server (`None`: one process); the
    /// server's loops are processes × threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_processes: Option<usize>,
    /// Driver threads at most (a case never gets more than its connections).
    pub driver_threads_max: usize,
    /// Wall-clock budget the timing was derived from, when `--duration` was
    /// not given.
    pub time_budget_seconds: Option<f64>,
    /// `run --precision`: the 95% CI half-width, percent, every headline
    /// effect was to reach (timing repetitions were added until it did or
    /// the budget ran out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision_target_percent: Option<f64>,
    /// `drive`: the measured server.
    pub target: Option<String>,
    /// `drive`: its control interface.
    pub control: Option<String>,
}

/// One case (a profile, or one size of a sweep) across variants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseResult {
    pub profile: String,
    pub label: String,
    /// The case as driven (after `--connections` / `--seed` overrides).
    pub case: Case,
    pub variants: Vec<VariantResult>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantResult {
    pub variant: VariantName,
    /// `failed` when any repetition failed (or none finished).
    pub status: Status,
    pub repetitions_planned: u32,
    pub repetitions: Vec<Repetition>,
    /// Distinct reasons of the failed repetitions.
    pub failure_reasons: Vec<String>,
    /// Why server-side figures are missing (`drive` without `--control`, a
    /// server built without syscall counting).
    pub server_side_unavailable_reason: Option<String>,
    /// Aggregates over the repetitions; `None` when failed.
    pub summary: Option<Summary>,
    /// The command of an external server (`run --server NAME=COMMAND`),
    /// as given: marks the variant as measured from outside. Absent for
    /// built-in variants and `drive --target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_command: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repetition {
    /// 0-based.
    pub index: u32,
    pub status: Status,
    /// What the driver measured; `None` when failed.
    pub measurement: Option<CaseMeasurement>,
    pub failure: Option<FailureRecord>,
    /// What the server did inside the measured window (the difference of
    /// the two snapshots); `None` when unavailable or failed.
    pub server_window: Option<ServerReport>,
    pub server_memory: Option<ServerMemory>,
    /// The server's in-process syscall counts against the kernel's
    /// (`syscalls:sys_enter_*` tracepoints) over the same window; `None`
    /// when there was no window to check.
    pub kernel_cross_check: Option<CrossCheck>,
    /// The command that started the server (`run` only).
    pub server_command_line: Vec<String>,
    /// What this repetition was measured for: time figures, the kernel
    /// cross-check, or (results written before the two were separated)
    /// both at once.
    #[serde(default)]
    pub purpose: RepetitionPurpose,
    /// 0-based place of this measurement in its repetition's (shuffled)
    /// order of variants; `None` in results written before the order was
    /// shuffled.
    #[serde(default)]
    pub order_position: Option<u32>,
    /// An external server's window as the kernel counted it from outside;
    /// absent for built-in variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_window: Option<external::ExternalWindow>,
}

/// What one repetition was for. Kernel counters cost the server about
/// 0.35–0.4 µs per syscall, so a window that counts in the kernel is not
/// timed, and a timed one does not count in the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepetitionPurpose {
    /// The server counted in-process only: time figures (throughput,
    /// latency, CPU) and syscall counts.
    Timing,
    /// The server also counted in the kernel (`serve --kernel-counters`):
    /// the cross-check and syscall counts, no time figures.
    Counting,
    /// One window did both (results written before they were separated).
    #[default]
    TimingAndCounting,
    /// A timing window that lost too much CPU time to the hypervisor
    /// (steal) and was measured again: kept to be seen, never aggregated.
    DiscardedSteal,
}

impl RepetitionPurpose {
    /// Whether its time figures are reported.
    pub fn gives_time(self) -> bool {
        matches!(
            self,
            RepetitionPurpose::Timing | RepetitionPurpose::TimingAndCounting
        )
    }

    /// Whether its kernel cross-check is reported.
    pub fn gives_cross_check(self) -> bool {
        matches!(
            self,
            RepetitionPurpose::Counting | RepetitionPurpose::TimingAndCounting
        )
    }

    /// Whether aggregation and effects leave it out altogether.
    pub fn discarded(self) -> bool {
        self == RepetitionPurpose::DiscardedSteal
    }

    pub fn name(self) -> &'static str {
        match self {
            RepetitionPurpose::Timing => "timing",
            RepetitionPurpose::Counting => "counting",
            RepetitionPurpose::TimingAndCounting => "timing and counting",
            RepetitionPurpose::DiscardedSteal => "discarded for steal",
        }
    }
}

/// Why a repetition failed, with the counts that decided it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRecord {
    pub reasons: Vec<String>,
    /// The driver's verification counts, when the engine finished.
    pub verification: Option<VerificationCounts>,
    /// Server-side errors inside the window, when the server answered.
    pub server_protocol_errors: Option<u64>,
    pub server_connection_errors: Option<u64>,
    /// The failed window's steal, as `measurement.cpu_steal_percent` of a
    /// passed one.
    #[serde(default)]
    pub cpu_steal_percent: Option<f64>,
    /// The idle ramp of a scaled-out case whose window then failed: how
    /// many connections were held is an outcome of its own (a million
    /// connections held by a server that then failed to stop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out: Option<measurement::ScaleOutcome>,
}

impl Repetition {
    /// The idle ramp of this repetition, passed or failed.
    pub fn scale_out(&self) -> Option<&measurement::ScaleOutcome> {
        match (&self.measurement, &self.failure) {
            (Some(m), _) => m.scale_out.as_ref(),
            (None, Some(f)) => f.scale_out.as_ref(),
            (None, None) => None,
        }
    }

    /// Steal of this repetition's window, passed or failed.
    pub fn cpu_steal_percent(&self) -> Option<f64> {
        match (&self.measurement, &self.failure) {
            (Some(m), _) => m.cpu_steal_percent,
            (None, Some(f)) => f.cpu_steal_percent,
            (None, None) => None,
        }
    }
}

/// Server memory, from `/proc/<pid>/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerMemory {
    /// `VmRSS` right after the server was ready, before any connection.
    pub baseline_rss_bytes: u64,
    /// `VmHWM` (peak resident) at the end of the measured window.
    pub peak_rss_bytes: u64,
    /// Connections open at the peak: active plus idle.
    pub connections: u64,
    /// `(peak - baseline) / connections`.
    pub per_connection_bytes: f64,
    /// `idle_active` cases: memory per connection, whole (server and
    /// driver user space, kernel), over the connection ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whole: Option<connection_memory::ConnectionMemory>,
}

/// A figure over repetitions. The unit is in the name of the field holding
/// it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation over the mean, in percent (0 with fewer
    /// than two samples, or a zero mean).
    pub cv_percent: f64,
    pub samples: u32,
}

/// Coefficient of variation above which a figure is flagged as noisy.
pub const NOISY_CV_PERCENT: f64 = 5.0;

/// Driver CPU utilisation (median over repetitions) from which the driver
/// is taken as saturated: it could not have offered more load, so it, and
/// not only the server, may have limited the result. Idle gaps of a
/// saturated event loop (wake-ups, scheduler) keep it a little under 100%.
pub const DRIVER_SATURATED_PERCENT: f64 = 90.0;

impl Spread {
    pub fn is_noisy(&self) -> bool {
        self.cv_percent > NOISY_CV_PERCENT
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a results file: {message}")]
    Parse { path: String, message: String },
    #[error(
        "{path}: results schema version {found} is not supported (this build reads version {SCHEMA_VERSION})"
    )]
    Version { path: String, found: String },
    #[error("{path}: invalid results: {message}")]
    Invalid { path: String, message: String },
}

/// The results file a run writes.
pub const RESULTS_FILE_NAME: &str = "results.json";
/// The same, gzip-compressed: how committed runs (`results/reference`) are
/// kept small. Every reader takes either.
pub const COMPRESSED_RESULTS_FILE_NAME: &str = "results.json.gz";

/// The results file of a directory: `results.json`, or else
/// `results.json.gz` when only that exists.
pub fn results_file_in(dir: &Path) -> PathBuf {
    let plain = dir.join(RESULTS_FILE_NAME);
    let compressed = dir.join(COMPRESSED_RESULTS_FILE_NAME);
    if !plain.exists() && compressed.exists() {
        compressed
    } else {
        plain
    }
}

/// Whether `file` is a gzip-compressed results file (by its name).
pub fn is_compressed(file: &Path) -> bool {
    file.extension().is_some_and(|e| e == "gz")
}

/// The text of a results file, decompressed when its name ends in `.gz`.
fn read_results_text(file: &Path) -> std::io::Result<String> {
    if !is_compressed(file) {
        return std::fs::read_to_string(file);
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(file)?).read_to_string(&mut text)?;
    Ok(text)
}

impl ResultsFile {
    /// Reads and checks a `results.json` or `results.json.gz` (or the one
    /// inside a directory).
    pub fn load(path: &Path) -> Result<ResultsFile, ResultsError> {
        let file = if path.is_dir() {
            results_file_in(path)
        } else {
            path.to_path_buf()
        };
        let shown = file.display().to_string();
        let text = read_results_text(&file).map_err(|source| ResultsError::Io {
            path: shown.clone(),
            source,
        })?;
        ResultsFile::from_json(&text).map_err(|e| match e {
            ResultsError::Parse { message, .. } => ResultsError::Parse {
                path: shown.clone(),
                message,
            },
            ResultsError::Version { found, .. } => ResultsError::Version {
                path: shown.clone(),
                found,
            },
            ResultsError::Invalid { message, .. } => ResultsError::Invalid {
                path: shown.clone(),
                message,
            },
            other => other,
        })
    }

    /// Parses and checks results JSON: version first (so that a newer file
    /// gets a version error, not a field error), then every field strictly,
    /// then [`ResultsFile::validate`].
    pub fn from_json(text: &str) -> Result<ResultsFile, ResultsError> {
        let parse = |message: String| ResultsError::Parse {
            path: "<json>".into(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| parse(e.to_string()))?;
        match value.get("schema_version") {
            Some(v) if v.as_u64() == Some(SCHEMA_VERSION as u64) => {}
            Some(v) => {
                return Err(ResultsError::Version {
                    path: "<json>".into(),
                    found: v.to_string(),
                });
            }
            None => return Err(parse("no `schema_version` field".into())),
        }
        let results: ResultsFile =
            serde_json::from_value(value).map_err(|e| parse(e.to_string()))?;
        results
            .validate()
            .map_err(|message| ResultsError::Invalid {
                path: "<json>".into(),
                message,
            })?;
        Ok(results)
    }

    /// The rules serde cannot express: failed results carry no figures,
    /// passed ones carry them, counts add up.
    pub fn validate(&self) -> Result<(), String> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "schema_version is {}, expected {SCHEMA_VERSION}",
                self.schema_version
            ));
        }
        if self.run.status == RunStatus::Incomplete && self.run.incomplete_reason.is_none() {
            return Err("an incomplete run must say why (run.incomplete_reason)".into());
        }
        let (mut passed, mut failed) = (0u32, 0u32);
        for case in &self.cases {
            for v in &case.variants {
                let at = format!("case `{}`, variant `{}`", case.label, v.variant);
                match v.status {
                    Status::Passed => {
                        passed += 1;
                        if v.summary.is_none() {
                            return Err(format!("{at}: passed but has no summary"));
                        }
                        // A window discarded for steal may have failed:
                        // it was measured again.
                        if v.repetitions
                            .iter()
                            .any(|r| r.status == Status::Failed && !r.purpose.discarded())
                        {
                            return Err(format!("{at}: passed with a failed repetition"));
                        }
                        if v.repetitions.is_empty() {
                            return Err(format!("{at}: passed without repetitions"));
                        }
                    }
                    Status::Failed => {
                        failed += 1;
                        if v.summary.is_some() {
                            return Err(format!("{at}: failed but reports a summary"));
                        }
                        if v.failure_reasons.is_empty() {
                            return Err(format!("{at}: failed without a reason"));
                        }
                    }
                }
                if v.repetitions.len() > v.repetitions_planned as usize {
                    return Err(format!("{at}: more repetitions than planned"));
                }
                for r in &v.repetitions {
                    let ok = match r.status {
                        Status::Passed => r.measurement.is_some() && r.failure.is_none(),
                        Status::Failed => {
                            r.measurement.is_none()
                                && r.failure.as_ref().is_some_and(|f| !f.reasons.is_empty())
                        }
                    };
                    if !ok {
                        return Err(format!(
                            "{at}, repetition {}: a passed repetition has a measurement and no failure; a failed one a failure with reasons and no measurement",
                            r.index
                        ));
                    }
                }
            }
        }
        if (passed, failed) != (self.run.passed_count, self.run.failed_count) {
            return Err(format!(
                "run.passed_count/failed_count say {}/{}, the variants say {passed}/{failed}",
                self.run.passed_count, self.run.failed_count
            ));
        }
        Ok(())
    }

    /// Every variant result with the case it belongs to.
    pub fn variant_results(&self) -> impl Iterator<Item = (&CaseResult, &VariantResult)> {
        self.cases
            .iter()
            .flat_map(|c| c.variants.iter().map(move |v| (c, v)))
    }
}

/// Current time in UTC, RFC 3339 with seconds.
pub fn now_utc_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Results built in code for the tests (unit and integration) to share;
/// not part of the API.
#[doc(hidden)]
pub mod fixture;
#[cfg(test)]
mod schema_doc_test;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_round_trips_strictly() {
        let results = fixture::results();
        results.validate().unwrap();
        let json = serde_json::to_string_pretty(&results).unwrap();
        let back = ResultsFile::from_json(&json).unwrap();
        // Compared as text: a mismatch then shows the first differing line.
        let again = serde_json::to_string_pretty(&back).unwrap();
        for (a, b) in json.lines().zip(again.lines()) {
            assert_eq!(a, b);
        }
        assert!(back == results);
    }

    #[test]
    fn unknown_fields_and_other_versions_are_refused() {
        let results = fixture::results();
        let mut value = serde_json::to_value(&results).unwrap();
        value["run"]["surprise_seconds"] = 1.into();
        let err = ResultsFile::from_json(&value.to_string()).unwrap_err();
        assert!(err.to_string().contains("surprise_seconds"), "{err}");

        let mut value = serde_json::to_value(&results).unwrap();
        value["schema_version"] = 99.into();
        let err = ResultsFile::from_json(&value.to_string()).unwrap_err();
        assert!(matches!(err, ResultsError::Version { .. }), "{err}");
    }

    #[test]
    fn failed_variant_with_figures_is_invalid() {
        let mut results = fixture::results();
        let (ci, vi) = fixture::failed_position();
        let passed_summary = results.cases[0].variants[0].summary.clone();
        results.cases[ci].variants[vi].summary = passed_summary;
        let err = results.validate().unwrap_err();
        assert!(err.contains("failed but reports a summary"), "{err}");
    }

    #[test]
    fn failed_repetition_with_measurement_is_invalid() {
        let mut results = fixture::results();
        let (ci, vi) = fixture::failed_position();
        let m = results.cases[0].variants[0].repetitions[0]
            .measurement
            .clone();
        results.cases[ci].variants[vi].repetitions[0].measurement = m;
        assert!(results.validate().is_err());
    }
}
