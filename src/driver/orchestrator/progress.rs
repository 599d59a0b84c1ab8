//! How the measurement loop tells its caller where it is: the step being
//! measured and a sink for progress (bars, log lines, or nothing).

use super::precision::CasePrecision;
use crate::driver::measurement::Progress;
use crate::results::workload::Case;
use crate::results::{Repetition, RepetitionPurpose};
use crate::server::VariantName;

/// Where one measurement sits in the plan.
#[derive(Clone, Copy, Debug)]
pub struct Step<'a> {
    /// 0-based position among all measurements.
    pub index: usize,
    pub total: usize,
    pub case: &'a Case,
    pub variant: &'a VariantName,
    /// 0-based, timing repetitions first.
    pub repetition: u32,
    /// Timing repetitions planned.
    pub repetitions: u32,
    pub purpose: RepetitionPurpose,
}

impl Step<'_> {
    /// `rep 2/3 (timing)`, or `counting` for the repetition that runs the
    /// kernel cross-check.
    pub fn repetition_label(&self) -> String {
        match self.purpose {
            RepetitionPurpose::Counting => "counting".to_string(),
            // Beyond the plan: added by `--precision`.
            purpose if self.repetition >= self.repetitions => format!(
                "rep {} ({}, for precision)",
                self.repetition + 1,
                purpose.name()
            ),
            purpose => format!(
                "rep {}/{} ({})",
                self.repetition + 1,
                self.repetitions,
                purpose.name()
            ),
        }
    }
}

/// Told about each measurement (progress bars, log lines).
pub trait ProgressSink {
    fn measurement_started(&mut self, step: &Step);
    /// The engine's live view of the running measurement (about 10 Hz).
    fn live(&mut self, _step: &Step, _progress: &Progress) {}
    fn measurement_finished(&mut self, step: &Step, repetition: &Repetition);
    /// A case is done: how precisely its headline effects are known.
    fn case_finished(&mut self, _precision: &CasePrecision) {}
}

/// A sink that says nothing.
pub struct Silent;

impl ProgressSink for Silent {
    fn measurement_started(&mut self, _: &Step) {}
    fn measurement_finished(&mut self, _: &Step, _: &Repetition) {}
}
