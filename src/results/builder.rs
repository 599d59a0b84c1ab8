//! The one way to assemble a [`ResultsFile`]: settings, environment and the
//! finished cases in, the run block (status, counts, schema version) derived
//! from them, so no caller can write counts that disagree with its cases.

use super::machine_limits::MachineLimits;
use super::{
    CaseResult, Environment, ResultsFile, RunInfo, RunKind, RunSettings, RunStatus, SCHEMA_VERSION,
    now_utc_rfc3339, status_counts,
};

/// `run.incomplete_reason` of a run stopped by Ctrl-C or SIGTERM.
pub const INTERRUPTED_REASON: &str = "interrupted (SIGINT/SIGTERM)";

/// Builds a [`ResultsFile`]; see [`ResultsFile::builder`].
#[derive(Clone, Debug)]
pub struct ResultsBuilder {
    kind: RunKind,
    settings: RunSettings,
    environment: Environment,
    started_at_utc: Option<String>,
    finished_at_utc: Option<String>,
    elapsed_seconds: f64,
    incomplete_reason: Option<String>,
    machine_limits: Option<MachineLimits>,
}

impl ResultsFile {
    /// A results file of a `kind` run measured with `settings` on
    /// `environment`. Unless told otherwise it is complete, started and
    /// finished when [`ResultsBuilder::build`] is called.
    pub fn builder(
        kind: RunKind,
        settings: RunSettings,
        environment: Environment,
    ) -> ResultsBuilder {
        ResultsBuilder {
            kind,
            settings,
            environment,
            started_at_utc: None,
            finished_at_utc: None,
            elapsed_seconds: 0.0,
            incomplete_reason: None,
            machine_limits: None,
        }
    }
}

impl ResultsBuilder {
    /// When measuring began (RFC 3339, UTC).
    pub fn started_at(mut self, utc: impl Into<String>) -> ResultsBuilder {
        self.started_at_utc = Some(utc.into());
        self
    }

    /// When measuring ended (RFC 3339, UTC; default: when built) and how
    /// long it took.
    pub fn finished_at(mut self, utc: impl Into<String>, elapsed_seconds: f64) -> ResultsBuilder {
        self.finished_at_utc = Some(utc.into());
        self.elapsed_seconds = elapsed_seconds;
        self
    }

    /// How long measuring took, ending now.
    pub fn elapsed_seconds(mut self, seconds: f64) -> ResultsBuilder {
        self.elapsed_seconds = seconds;
        self
    }

    /// Marks the run incomplete because it was interrupted, when it was.
    pub fn interrupted(mut self, interrupted: bool) -> ResultsBuilder {
        self.incomplete_reason = interrupted.then(|| INTERRUPTED_REASON.to_string());
        self
    }

    /// Records what the machine allows, when it was measured.
    pub fn machine_limits(mut self, limits: Option<MachineLimits>) -> ResultsBuilder {
        self.machine_limits = limits;
        self
    }

    /// The file, with passed and failed counts taken from `cases`.
    pub fn build(self, cases: Vec<CaseResult>) -> ResultsFile {
        let (passed_count, failed_count) = status_counts(&cases);
        let finished_at_utc = self.finished_at_utc.unwrap_or_else(now_utc_rfc3339);
        ResultsFile {
            schema_version: SCHEMA_VERSION,
            run: RunInfo {
                kind: self.kind,
                status: match self.incomplete_reason {
                    Some(_) => RunStatus::Incomplete,
                    None => RunStatus::Complete,
                },
                incomplete_reason: self.incomplete_reason,
                started_at_utc: self
                    .started_at_utc
                    .unwrap_or_else(|| finished_at_utc.clone()),
                finished_at_utc,
                elapsed_seconds: self.elapsed_seconds,
                settings: self.settings,
                passed_count,
                failed_count,
            },
            environment: self.environment,
            cases,
            machine_limits: self.machine_limits,
            instrument_cost: None,
            cpu_profiles: Vec::new(),
            not_applicable: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    #[test]
    fn counts_and_status_come_from_the_cases_and_the_interrupt() {
        let built = fixture::results();
        assert_eq!((built.run.passed_count, built.run.failed_count), (2, 1));
        assert_eq!(built.run.status, RunStatus::Complete);
        assert_eq!(built.run.incomplete_reason, None);
        built.validate().unwrap();

        let interrupted = ResultsFile::builder(
            RunKind::Drive,
            built.run.settings.clone(),
            built.environment.clone(),
        )
        .started_at("2026-01-01T00:00:00Z")
        .elapsed_seconds(2.5)
        .interrupted(true)
        .build(built.cases[..1].to_vec());
        assert_eq!(interrupted.run.status, RunStatus::Incomplete);
        assert_eq!(
            interrupted.run.incomplete_reason.as_deref(),
            Some(INTERRUPTED_REASON)
        );
        assert_eq!(
            (interrupted.run.passed_count, interrupted.run.failed_count),
            (1, 1)
        );
        assert_eq!(interrupted.run.kind, RunKind::Drive);
        assert_eq!(interrupted.run.started_at_utc, "2026-01-01T00:00:00Z");
        assert!(interrupted.run.finished_at_utc.ends_with('Z'));
        assert_eq!(interrupted.run.elapsed_seconds, 2.5);
    }
}
