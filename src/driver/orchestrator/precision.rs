//! How precisely a case's headline effects are known while it is being
//! measured (`run --precision`), the time budget extra repetition blocks
//! are drawn from, and which windows CPU steal spoiled.
//!
//! Precision is what [`crate::results::effects`] reports at report time,
//! computed from the repetitions measured so far, so the loop and the
//! report never disagree about it.

use crate::metrics::cpu_steal::STEAL_WARN_PERCENT;
use crate::results::aggregate::finish_variant;
use crate::results::effects::{case_effects, headline_precision};
use crate::results::workload::Case;
use crate::results::{CaseResult, Repetition, RepetitionPurpose};
use crate::server::VariantName;

/// A timing window that lost this share of all CPU time (the aggregate of
/// `/proc/stat`: the server's and the driver's CPUs together) to the
/// hypervisor is measured again. The same level from which summary.md
/// marks a window as stolen.
pub const STEAL_REPEAT_PERCENT: f64 = STEAL_WARN_PERCENT;
/// Steal repeats per case at most: on a host that steals all the time,
/// repeating cannot help, and the run must still end.
pub const MAX_STEAL_REPEATS_PER_CASE: u32 = 2;

/// `run --precision`: keep adding timing blocks until every headline
/// effect's 95% CI half-width is at most `target_percent`, within
/// `budget_seconds` for the whole plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrecisionGoal {
    pub target_percent: f64,
    pub budget_seconds: f64,
    /// Warm-up + window + start/stop overhead of one measurement: the
    /// least a measurement is charged against the budget, so that the
    /// budget holds even when the first blocks ran faster than planned.
    pub seconds_per_measurement: f64,
}

/// What a case's precision came to, for the progress line and the end of
/// the run.
#[derive(Clone, Debug, PartialEq)]
pub struct CasePrecision {
    pub case: String,
    /// Timing blocks measured (every variant once per block).
    pub timing_repetitions: u32,
    /// Widest headline half-width, percent, and its effect
    /// (`comparison figure`).
    pub widest: Option<(f64, String)>,
    /// Headline effects without an interval (too few paired repetitions,
    /// a failed variant, figures not measured).
    pub without_interval: Vec<String>,
    /// The target, when one was set.
    pub target_percent: Option<f64>,
    /// Timing windows measured again because of CPU steal.
    pub steal_repeats: u32,
}

impl CasePrecision {
    /// Of `case` from the repetitions measured so far.
    pub fn measure(
        case: &Case,
        variants: &[VariantName],
        per_variant: &[Vec<Repetition>],
        target_percent: Option<f64>,
    ) -> CasePrecision {
        let precision = headline_precision(&case_effects(&provisional_case(
            case,
            variants,
            per_variant,
        )));
        let name = |(comparison, figure): &(String, &str)| format!("{comparison} {figure}");
        CasePrecision {
            case: case.label.clone(),
            timing_repetitions: 0,
            widest: precision
                .widest_half_width_percent
                .zip(precision.widest.as_ref().map(name)),
            without_interval: precision.without_interval.iter().map(name).collect(),
            target_percent,
            steal_repeats: 0,
        }
    }

    /// Whether another block could narrow the widest interval towards the
    /// target (no target: never).
    pub fn wants_more(&self) -> bool {
        match (self.target_percent, &self.widest) {
            (Some(target), Some((widest, _))) => *widest > target,
            _ => false,
        }
    }

    /// `None` without a target; otherwise whether every headline effect
    /// has an interval no wider than it.
    pub fn reached(&self) -> Option<bool> {
        let target = self.target_percent?;
        Some(
            self.without_interval.is_empty()
                && self.widest.as_ref().is_some_and(|(w, _)| *w <= target),
        )
    }

    /// The effects that did not get to the target, for the end of the run.
    pub fn short_of_target(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .without_interval
            .iter()
            .map(|e| format!("{}: {e} (no interval)", self.case))
            .collect();
        if let (Some(target), Some((widest, effect))) = (self.target_percent, &self.widest)
            && *widest > target
        {
            out.push(format!("{}: {effect} ±{widest:.1}%", self.case));
        }
        out
    }

    /// `precision: widest headline ±X.X% (<effect>) after N repetitions —
    /// target ±T% reached|not reached`.
    pub fn line(&self) -> String {
        let mut line = match &self.widest {
            Some((widest, effect)) => format!(
                "precision: widest headline ±{widest:.1}% ({effect}) after {} repetitions",
                self.timing_repetitions
            ),
            None => format!(
                "precision: no headline effect has an interval after {} repetitions",
                self.timing_repetitions
            ),
        };
        if let (Some(target), Some(reached)) = (self.target_percent, self.reached()) {
            let word = if reached { "reached" } else { "not reached" };
            line.push_str(&format!(" — target ±{target}% {word}"));
        }
        if !self.without_interval.is_empty() {
            line.push_str(&format!(
                "; without an interval: {}",
                self.without_interval.join(", ")
            ));
        }
        if self.steal_repeats > 0 {
            line.push_str(&format!(
                "; {} window{} repeated for CPU steal ≥{STEAL_REPEAT_PERCENT:.0}%",
                self.steal_repeats,
                if self.steal_repeats == 1 { "" } else { "s" }
            ));
        }
        format!("{}: {line}", self.case)
    }
}

/// Whether `repetition`'s window lost enough to steal to be measured again.
pub fn stolen(repetition: &Repetition) -> bool {
    repetition.purpose == RepetitionPurpose::Timing
        && repetition
            .cpu_steal_percent()
            .is_some_and(|p| p >= STEAL_REPEAT_PERCENT)
}

/// The case as it stands, for its effects.
fn provisional_case(
    case: &Case,
    variants: &[VariantName],
    per_variant: &[Vec<Repetition>],
) -> CaseResult {
    CaseResult {
        profile: case.profile.clone(),
        label: case.label.clone(),
        case: case.clone(),
        variants: variants
            .iter()
            .zip(per_variant)
            .filter(|(_, reps)| !reps.is_empty())
            .map(|(v, reps)| finish_variant(v, reps.len() as u32, reps.clone(), None))
            .collect(),
    }
}

/// The time a plan with a goal may still spend, shared over its cases:
/// each case gets an equal share of what is left, so time a case did not
/// use passes on to the ones after it.
#[derive(Clone, Debug)]
pub struct Budget {
    pub left_seconds: f64,
}

impl Budget {
    /// The share of the next case when `cases_left` (≥ 1) remain.
    pub fn share(&self, cases_left: usize) -> f64 {
        self.left_seconds.max(0.0) / cases_left.max(1) as f64
    }
}

/// Whether a block costing `next_block_seconds` may start after
/// `charged_seconds` of a case's `share_seconds`, keeping
/// `reserved_seconds` (the counting repetitions still to come).
pub fn block_fits(
    charged_seconds: f64,
    next_block_seconds: f64,
    reserved_seconds: f64,
    share_seconds: f64,
) -> bool {
    charged_seconds + next_block_seconds + reserved_seconds <= share_seconds + 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn precision(widest: Option<f64>, without: &[&str], target: Option<f64>) -> CasePrecision {
        CasePrecision {
            case: "c".into(),
            timing_repetitions: 5,
            widest: widest.map(|w| (w, "et-rw vs lt-rw requests_per_second".into())),
            without_interval: without.iter().map(|s| s.to_string()).collect(),
            target_percent: target,
            steal_repeats: 0,
        }
    }

    #[test]
    fn reached_needs_every_headline_effect_within_the_target() {
        assert_eq!(precision(Some(2.0), &[], Some(3.0)).reached(), Some(true));
        assert_eq!(precision(Some(3.5), &[], Some(3.0)).reached(), Some(false));
        assert_eq!(
            precision(Some(2.0), &["x"], Some(3.0)).reached(),
            Some(false)
        );
        assert_eq!(precision(None, &[], Some(3.0)).reached(), Some(false));
        assert_eq!(precision(Some(2.0), &[], None).reached(), None);
        assert!(precision(Some(3.5), &[], Some(3.0)).wants_more());
        assert!(!precision(Some(2.5), &["x"], Some(3.0)).wants_more());
        assert!(!precision(Some(9.0), &[], None).wants_more());
    }

    #[test]
    fn the_line_says_width_effect_repetitions_and_target() {
        let line = precision(Some(3.46), &[], Some(3.0)).line();
        assert_eq!(
            line,
            "c: precision: widest headline ±3.5% (et-rw vs lt-rw requests_per_second) after 5 repetitions — target ±3% not reached"
        );
        let mut p = precision(Some(1.0), &[], None);
        p.steal_repeats = 2;
        assert!(!p.line().contains("target"), "{}", p.line());
        assert!(p.line().ends_with("2 windows repeated for CPU steal ≥5%"));
        assert_eq!(
            precision(Some(3.46), &["a b"], Some(3.0)).short_of_target(),
            [
                "c: a b (no interval)",
                "c: et-rw vs lt-rw requests_per_second ±3.5%"
            ]
        );
    }

    #[test]
    fn blocks_never_overrun_the_share_and_unused_time_passes_on() {
        assert!(block_fits(1.0, 1.0, 0.5, 2.5));
        assert!(!block_fits(1.0, 1.0, 0.6, 2.5));
        let budget = Budget { left_seconds: 90.0 };
        assert_eq!(budget.share(3), 30.0);
        // The first case used 10 of its 30: the other two share 80.
        let budget = Budget { left_seconds: 80.0 };
        assert_eq!(budget.share(2), 40.0);
        assert_eq!(Budget { left_seconds: -1.0 }.share(1), 0.0);
    }
}
