//! The loop over a plan's cases: for each case its timing blocks (every
//! variant once per block, in the block's shuffled order), extra blocks
//! while `--precision` asks for them and the budget allows, windows
//! measured again for CPU steal, then the counting blocks.
//!
//! It measures through a [`Measurer`]: the plan's target and engine, or a
//! script in tests, so the stopping rules are tested on known numbers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::driver::measurement::{EngineConfig, Progress};
use crate::results::aggregate::finish_variant;
use crate::results::external;
use crate::results::not_applicable::NotApplicable;
use crate::results::workload::Case;
use crate::results::{CaseResult, Repetition, RepetitionPurpose, Status, VariantResult};
use crate::server::VariantName;

use super::judge::unavailable_reason;
use super::measure::CaseEngine;
use super::precision::{
    Budget, CasePrecision, MAX_STEAL_REPEATS_PER_CASE, PrecisionGoal, block_fits, stolen,
};
use super::progress::{ProgressSink, Step};
use super::schedule::{driver_threads_for, variant_order};
use super::target::Target;

/// Measures one step; what the loop needs to know of the target.
pub(super) trait Measurer {
    fn measure(
        &mut self,
        config: &EngineConfig,
        step: &Step,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Repetition;
    /// Counting blocks after the timing ones.
    fn counting_repetitions(&self) -> u32;
    /// Why server-side figures are missing from every measurement.
    fn unavailable_reason(&self) -> Option<&str>;
    /// Whether Ctrl-C reaches the server too.
    fn interrupt_reaches_server(&self) -> bool;
    /// The command of `variant` when it is an external server.
    fn external_command(&self, _variant: &VariantName) -> Option<String> {
        None
    }
    /// Why `variant` is left out of `case` (it does not serve its
    /// protocol), or `None` to measure it.
    fn not_applicable(&self, _variant: &VariantName, _case: &Case) -> Option<String> {
        None
    }
}

/// The plan's target, driven by its engine.
pub(super) struct TargetMeasurer<'a> {
    pub target: &'a mut Target,
    pub engine: &'a mut dyn CaseEngine,
}

impl Measurer for TargetMeasurer<'_> {
    fn measure(
        &mut self,
        config: &EngineConfig,
        step: &Step,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Repetition {
        self.target
            .measure(config, step, &mut *self.engine, on_progress)
    }

    fn counting_repetitions(&self) -> u32 {
        self.target.counting_repetitions()
    }

    fn unavailable_reason(&self) -> Option<&str> {
        self.target.unavailable_reason()
    }

    fn interrupt_reaches_server(&self) -> bool {
        self.target.interrupt_reaches_server()
    }

    fn external_command(&self, variant: &VariantName) -> Option<String> {
        self.target.external_command(variant)
    }

    fn not_applicable(&self, variant: &VariantName, case: &Case) -> Option<String> {
        self.target.not_applicable(variant, case)
    }
}

/// The parts of a plan the loop goes through.
pub(super) struct CasesPlan<'a> {
    pub cases: &'a [Case],
    pub variants: &'a [VariantName],
    pub repetitions: u32,
    pub config: &'a EngineConfig,
    pub driver_threads_max: usize,
    pub goal: Option<PrecisionGoal>,
    /// With a goal: what the cases may spend together.
    pub budget_seconds: Option<f64>,
}

/// Every case as measured.
pub(super) struct MeasuredCases {
    /// Cases with at least one variant measured.
    pub cases: Vec<CaseResult>,
    /// Each finished case's precision.
    pub precision: Vec<CasePrecision>,
    /// The interrupt stopped the loop.
    pub stopped: bool,
    /// (case, variant) pairs left out: the variant does not serve the
    /// case's protocol.
    pub not_applicable: Vec<NotApplicable>,
}

/// Measures every case of `plan`; `total` is the planned measurement count
/// (it grows with extra blocks and steal repeats).
pub(super) fn run_cases(
    plan: &CasesPlan,
    measurer: &mut dyn Measurer,
    progress: &mut dyn ProgressSink,
    interrupted: &AtomicBool,
    total: usize,
) -> MeasuredCases {
    let mut budget = plan
        .budget_seconds
        .map(|left_seconds| Budget { left_seconds });
    let mut run = Runner {
        variants: Vec::new(),
        repetitions: plan.repetitions,
        config: plan.config,
        driver_threads_max: plan.driver_threads_max,
        measurer,
        progress,
        interrupted,
        index: 0,
        total,
        goal: plan.goal,
    };
    let mut cases = Vec::new();
    let mut precision = Vec::new();
    let mut stopped = false;
    let mut not_applicable = Vec::new();
    for (i, case) in plan.cases.iter().enumerate() {
        run.variants.clear();
        for variant in plan.variants {
            match run.measurer.not_applicable(variant, case) {
                None => run.variants.push(variant.clone()),
                Some(reason) => not_applicable.push(NotApplicable {
                    case: case.label.clone(),
                    variant: variant.clone(),
                    reason,
                }),
            }
        }
        if run.variants.is_empty() {
            continue;
        }
        let share = budget.as_ref().map(|b| b.share(plan.cases.len() - i));
        let measured = run.case(case, share);
        if let Some(budget) = &mut budget {
            budget.left_seconds -= measured.charged_seconds;
        }
        cases.push(finish_case(case, &run, measured.per_variant));
        if measured.stopped {
            stopped = true;
            break;
        }
        run.progress.case_finished(&measured.precision);
        precision.push(measured.precision);
    }
    cases.retain(|c| !c.variants.is_empty());
    MeasuredCases {
        cases,
        precision,
        stopped,
        not_applicable,
    }
}

/// The loop's state: the plan's parts, and where it has got to.
struct Runner<'a> {
    /// The variants of the case being measured: the plan's, less those
    /// that do not serve its protocol.
    variants: Vec<VariantName>,
    repetitions: u32,
    config: &'a EngineConfig,
    driver_threads_max: usize,
    measurer: &'a mut dyn Measurer,
    progress: &'a mut dyn ProgressSink,
    interrupted: &'a AtomicBool,
    index: usize,
    total: usize,
    goal: Option<PrecisionGoal>,
}

/// One case as measured.
struct MeasuredCase {
    per_variant: Vec<Vec<Repetition>>,
    precision: CasePrecision,
    /// Time charged against the budget: per block, what it took or its
    /// planned cost, whichever is more.
    charged_seconds: f64,
    /// The interrupt stopped the run.
    stopped: bool,
}

/// Where a case's measuring has got to.
struct CaseState {
    per_variant: Vec<Vec<Repetition>>,
    previous_order: Option<Vec<usize>>,
    steal_repeats: u32,
}

impl Runner<'_> {
    /// Every repetition × variant of `case`. Repetition `i` of every
    /// variant is measured in one block, in that block's shuffled order;
    /// the planned timing blocks come first, then (with a goal, within the
    /// case's `share_seconds`) extra ones while the headline effects are
    /// not yet precise enough, then the counting blocks.
    fn case(&mut self, case: &Case, share_seconds: Option<f64>) -> MeasuredCase {
        let mut config = self.config.clone();
        config.driver_threads = driver_threads_for(case, self.driver_threads_max);
        let counting = self.measurer.counting_repetitions();
        let block_seconds =
            self.variants.len() as f64 * self.goal.map_or(0.0, |g| g.seconds_per_measurement);
        let mut state = CaseState {
            per_variant: vec![Vec::new(); self.variants.len()],
            previous_order: None,
            steal_repeats: 0,
        };
        let mut charged_seconds = 0.0;
        let mut blocks = 0;
        let stopped = loop {
            if blocks >= self.repetitions {
                let so_far = self.precision(case, &state, blocks);
                let mean_block = charged_seconds / f64::from(blocks.max(1));
                let fits = share_seconds.is_some_and(|share| {
                    block_fits(
                        charged_seconds,
                        mean_block.max(block_seconds),
                        f64::from(counting) * block_seconds,
                        share,
                    )
                });
                if !(so_far.wants_more() && fits) {
                    break false;
                }
                // The plan grew by a block.
                self.total += self.variants.len();
            }
            let started = Instant::now();
            if self.block(case, &config, blocks, RepetitionPurpose::Timing, &mut state) {
                break true;
            }
            charged_seconds += started.elapsed().as_secs_f64().max(block_seconds);
            blocks += 1;
        };
        if !stopped {
            for repetition in blocks..blocks + counting {
                let started = Instant::now();
                if self.block(
                    case,
                    &config,
                    repetition,
                    RepetitionPurpose::Counting,
                    &mut state,
                ) {
                    return self.measured(case, state, blocks, charged_seconds, true);
                }
                charged_seconds += started.elapsed().as_secs_f64().max(block_seconds);
            }
        }
        self.measured(case, state, blocks, charged_seconds, stopped)
    }

    fn precision(&self, case: &Case, state: &CaseState, blocks: u32) -> CasePrecision {
        CasePrecision {
            timing_repetitions: blocks,
            steal_repeats: state.steal_repeats,
            ..CasePrecision::measure(
                case,
                &self.variants,
                &state.per_variant,
                self.goal.map(|g| g.target_percent),
            )
        }
    }

    fn measured(
        &self,
        case: &Case,
        state: CaseState,
        blocks: u32,
        charged_seconds: f64,
        stopped: bool,
    ) -> MeasuredCase {
        MeasuredCase {
            precision: self.precision(case, &state, blocks),
            per_variant: state.per_variant,
            charged_seconds,
            stopped,
        }
    }

    /// Repetition `repetition` of every variant, in its shuffled order; a
    /// timing window stolen by the hypervisor is measured again (at most
    /// [`MAX_STEAL_REPEATS_PER_CASE`] per case), the stolen one kept as
    /// [`RepetitionPurpose::DiscardedSteal`]. True when the interrupt
    /// stopped it.
    fn block(
        &mut self,
        case: &Case,
        config: &EngineConfig,
        repetition: u32,
        purpose: RepetitionPurpose,
        state: &mut CaseState,
    ) -> bool {
        let order = variant_order(
            case,
            repetition,
            self.variants.len(),
            state.previous_order.as_deref(),
        );
        for (position, &v) in order.iter().enumerate() {
            let variant = &self.variants[v];
            loop {
                if self.interrupted.load(Ordering::SeqCst) {
                    return true;
                }
                let step = Step {
                    index: self.index,
                    total: self.total,
                    case,
                    variant,
                    repetition,
                    repetitions: self.repetitions,
                    purpose,
                };
                self.progress.measurement_started(&step);
                let progress = &mut *self.progress;
                let mut outcome = self
                    .measurer
                    .measure(config, &step, &mut |p| progress.live(&step, p));
                outcome.purpose = purpose;
                outcome.order_position = Some(position as u32);
                self.progress.measurement_finished(&step, &outcome);
                self.index += 1;
                let dropped = outcome.status == Status::Failed
                    && self.interrupted.load(Ordering::SeqCst)
                    && self.measurer.interrupt_reaches_server();
                if dropped {
                    break;
                }
                let repeat = stolen(&outcome) && state.steal_repeats < MAX_STEAL_REPEATS_PER_CASE;
                if repeat {
                    outcome.purpose = RepetitionPurpose::DiscardedSteal;
                    state.steal_repeats += 1;
                    self.total += 1;
                }
                state.per_variant[v].push(outcome);
                if !repeat {
                    break;
                }
            }
        }
        state.previous_order = Some(order);
        false
    }
}

fn finish_case(case: &Case, run: &Runner, per_variant: Vec<Vec<Repetition>>) -> CaseResult {
    let variants = run
        .variants
        .iter()
        .zip(per_variant)
        // A variant never reached (interrupted) is left out, not failed.
        .filter(|(_, reps)| !reps.is_empty())
        .map(|(variant, reps)| {
            let external_command = run.measurer.external_command(variant);
            let reason = run
                .measurer
                .unavailable_reason()
                .map(str::to_string)
                .or_else(|| {
                    external_command
                        .as_deref()
                        .map(external::unavailable_reason)
                })
                .or_else(|| unavailable_reason(&reps));
            // As the plan grew: extra blocks for precision and windows
            // measured again for steal are planned too, so fewer entries
            // still mean an interrupted run.
            let planned = run.repetitions.max(timing_blocks(&reps))
                + run.measurer.counting_repetitions()
                + reps.iter().filter(|r| r.purpose.discarded()).count() as u32;
            VariantResult {
                external_command,
                ..finish_variant(variant, planned, reps, reason)
            }
        })
        .collect();
    CaseResult {
        profile: case.profile.clone(),
        label: case.label.clone(),
        case: case.clone(),
        variants,
    }
}

/// Timing blocks a variant's repetitions went through (its highest
/// timing index + 1).
fn timing_blocks(repetitions: &[Repetition]) -> u32 {
    repetitions
        .iter()
        .filter(|r| r.purpose == RepetitionPurpose::Timing)
        .map(|r| r.index + 1)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::results::fixture;

    /// Measures nothing: `et-rw` moves `1.1 × (1 + noise)` times the
    /// requests of `lt-rw` in the same window (server CPU per request the
    /// same for both), where `noise` comes from the case and the block.
    struct Script {
        noise: fn(&str, u32) -> f64,
        /// Steal of successive windows (0.5% once they run out).
        steal_percent: Vec<f64>,
        /// Windows at these positions (0-based) fail, with their steal.
        failing: Vec<usize>,
        calls: usize,
        counting: u32,
    }

    impl Script {
        fn new(noise: fn(&str, u32) -> f64) -> Script {
            Script {
                noise,
                steal_percent: Vec::new(),
                failing: Vec::new(),
                calls: 0,
                counting: 1,
            }
        }
    }

    impl Measurer for Script {
        fn measure(
            &mut self,
            _: &EngineConfig,
            step: &Step,
            _: &mut dyn FnMut(&Progress),
        ) -> Repetition {
            let factor = match step.variant.to_string().as_str() {
                "et-rw" => 1.1 * (1.0 + (self.noise)(&step.case.label, step.repetition)),
                _ => 1.0,
            };
            let steal = self.steal_percent.get(self.calls).copied().unwrap_or(0.5);
            let failing = self.failing.contains(&self.calls);
            self.calls += 1;
            if failing {
                let mut rep = fixture::failed_repetition(step.repetition);
                rep.failure.as_mut().unwrap().cpu_steal_percent = Some(steal);
                return rep;
            }
            let n = (10_000.0 * factor).round() as u64;
            let mut rep = fixture::passed_repetition(step.repetition, n, 64, 100.0);
            rep.measurement.as_mut().unwrap().cpu_steal_percent = Some(steal);
            rep
        }

        fn counting_repetitions(&self) -> u32 {
            self.counting
        }

        fn unavailable_reason(&self) -> Option<&str> {
            None
        }

        fn interrupt_reaches_server(&self) -> bool {
            true
        }
    }

    /// Records what the loop says about each case.
    #[derive(Default)]
    struct Told(Vec<CasePrecision>);

    impl ProgressSink for Told {
        fn measurement_started(&mut self, _: &Step) {}
        fn measurement_finished(&mut self, _: &Step, _: &Repetition) {}
        fn case_finished(&mut self, precision: &CasePrecision) {
            self.0.push(precision.clone());
        }
    }

    fn config() -> EngineConfig {
        EngineConfig {
            target: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            warmup: Duration::ZERO,
            duration: Duration::from_millis(10),
            driver_threads: 1,
            driver_cpus: None,
            drain_timeout: Duration::from_millis(10),
        }
    }

    /// Two variants, 3 planned blocks; a block is charged 2 s (1 s per
    /// measurement) unless it takes longer.
    fn run(
        labels: &[&str],
        goal: Option<(f64, f64)>,
        script: &mut Script,
    ) -> (MeasuredCases, Vec<CasePrecision>) {
        let cases: Vec<Case> = labels.iter().map(|l| fixture::case(l, 64)).collect();
        let variants: Vec<VariantName> = vec!["lt-rw".into(), "et-rw".into()];
        let goal = goal.map(|(target_percent, budget_seconds)| PrecisionGoal {
            target_percent,
            budget_seconds,
            seconds_per_measurement: 1.0,
        });
        let config = config();
        let mut told = Told::default();
        let measured = run_cases(
            &CasesPlan {
                cases: &cases,
                variants: &variants,
                repetitions: 3,
                config: &config,
                driver_threads_max: 1,
                goal,
                budget_seconds: goal.map(|g| g.budget_seconds),
            },
            script,
            &mut told,
            &AtomicBool::new(false),
            cases.len() * 2 * 4,
        );
        (measured, told.0)
    }

    fn quiet(_: &str, _: u32) -> f64 {
        0.0
    }

    /// ±20% at first, shrinking with the square of the block.
    fn settling(_: &str, block: u32) -> f64 {
        let sign = if block.is_multiple_of(2) { 1.0 } else { -1.0 };
        sign * 0.2 / f64::from((block + 1) * (block + 1))
    }

    /// ±30% in every block.
    fn noisy(_: &str, block: u32) -> f64 {
        if block.is_multiple_of(2) { 0.3 } else { -0.3 }
    }

    fn quiet_then_noisy(label: &str, block: u32) -> f64 {
        if label == "quiet" {
            0.0
        } else {
            noisy(label, block)
        }
    }

    fn timing_blocks_of(case: &CaseResult) -> Vec<u32> {
        case.variants
            .iter()
            .map(|v| timing_blocks(&v.repetitions))
            .collect()
    }

    #[test]
    fn blocks_are_added_until_the_target_is_reached_and_no_further() {
        let mut script = Script::new(settling);
        let (measured, told) = run(&["pingpong-64b-1conn"], Some((5.0, 1000.0)), &mut script);
        let precision = &told[0];
        assert_eq!(precision.reached(), Some(true), "{}", precision.line());
        let blocks = precision.timing_repetitions;
        assert!(
            blocks > 3,
            "the planned blocks were already enough: {blocks}"
        );
        assert!(
            blocks < 40,
            "stopped by the budget, not the target: {blocks}"
        );
        let case = &measured.cases[0];
        assert_eq!(timing_blocks_of(case), [blocks, blocks]);
        assert!(
            precision.line().contains("target ±5% reached"),
            "{}",
            precision.line()
        );
        // One block fewer was not precise enough: the loop stopped at the
        // first block that got there.
        let fewer: Vec<Vec<Repetition>> = case
            .variants
            .iter()
            .map(|v| {
                v.repetitions
                    .iter()
                    .filter(|r| r.index + 1 < blocks)
                    .cloned()
                    .collect()
            })
            .collect();
        let variants: Vec<VariantName> = case.variants.iter().map(|v| v.variant.clone()).collect();
        let before = CasePrecision::measure(&case.case, &variants, &fewer, Some(5.0));
        assert!(before.wants_more(), "{}", before.line());
        // The counting block came after the timing ones, and the plan grew.
        for v in &case.variants {
            let last = v.repetitions.last().unwrap();
            assert_eq!(last.purpose, RepetitionPurpose::Counting);
            assert_eq!(last.index, blocks);
            assert_eq!(v.repetitions_planned, blocks + 1);
            assert_eq!(v.status, Status::Passed);
            assert_eq!(v.summary.as_ref().unwrap().repetitions_used, blocks);
        }
    }

    #[test]
    fn constant_noise_stops_at_the_budget_and_says_not_reached() {
        let mut script = Script::new(noisy);
        // 13 s: 3 planned blocks (6 s), the counting one kept aside (2 s),
        // then 2 extra blocks fit (10 s + 2 s), a third would not (14 s).
        let (measured, told) = run(&["pingpong-64b-1conn"], Some((3.0, 13.0)), &mut script);
        let precision = &told[0];
        assert_eq!(precision.timing_repetitions, 5);
        assert_eq!(precision.reached(), Some(false));
        assert!(
            precision.line().contains("target ±3% not reached"),
            "{}",
            precision.line()
        );
        assert!(
            precision.line().contains("requests_per_second"),
            "the widest is the noisy req/s effect: {}",
            precision.line()
        );
        assert_eq!(
            precision.short_of_target().len(),
            1,
            "{:?}",
            precision.short_of_target()
        );
        assert_eq!(timing_blocks_of(&measured.cases[0]), [5, 5]);
        assert_eq!(script.calls, 12, "5 timing blocks + 1 counting, 2 variants");
    }

    #[test]
    fn time_a_case_does_not_use_passes_on_to_the_next() {
        let mut script = Script::new(quiet_then_noisy);
        // 16 s for two cases: the quiet one needs its 3 blocks + counting
        // (8 s of its 8 s share), so the noisy one gets 8 s: nothing extra.
        let (_, told) = run(&["quiet", "noisy"], Some((3.0, 16.0)), &mut script);
        assert_eq!(told[0].reached(), Some(true), "{}", told[0].line());
        assert_eq!(told[1].timing_repetitions, 3);
        // 20 s: the quiet case leaves 2 s of its 10 s share, so the noisy
        // case has 12 s: two extra blocks (6 + 4 + 2 s counting), where
        // its own 10 s share would have allowed one.
        let mut script = Script::new(quiet_then_noisy);
        let (_, told) = run(&["quiet", "noisy"], Some((3.0, 20.0)), &mut script);
        assert_eq!(told[0].timing_repetitions, 3);
        assert_eq!(told[1].timing_repetitions, 5);
        assert_eq!(told[1].reached(), Some(false));
    }

    #[test]
    fn without_a_target_the_plan_is_kept_and_the_precision_still_said() {
        let mut script = Script::new(noisy);
        let (measured, told) = run(&["pingpong-64b-1conn"], None, &mut script);
        assert_eq!(told[0].timing_repetitions, 3);
        assert_eq!(told[0].reached(), None);
        let line = told[0].line();
        assert!(
            line.contains("widest headline ±") && !line.contains("target"),
            "{line}"
        );
        assert_eq!(timing_blocks_of(&measured.cases[0]), [3, 3]);
        assert_eq!(script.calls, 8);
    }

    #[test]
    fn stolen_windows_are_measured_again_at_most_twice_per_case_and_kept_aside() {
        let mut script = Script::new(quiet);
        // Every window stolen; the very first one also failed.
        script.steal_percent = vec![20.0; 100];
        script.failing = vec![0];
        let (measured, told) = run(&["quiet", "noisy"], None, &mut script);
        for (case, precision) in measured.cases.iter().zip(&told) {
            assert_eq!(precision.steal_repeats, 2, "{}", precision.line());
            assert!(
                precision
                    .line()
                    .ends_with("2 windows repeated for CPU steal ≥5%"),
                "{}",
                precision.line()
            );
            let discarded: Vec<&Repetition> = case
                .variants
                .iter()
                .flat_map(|v| &v.repetitions)
                .filter(|r| r.purpose == RepetitionPurpose::DiscardedSteal)
                .collect();
            assert_eq!(discarded.len(), 2);
            for v in &case.variants {
                // Each discarded window is followed by its repeat (stolen
                // again, or kept), same index and place in the block.
                for pair in v.repetitions.windows(2) {
                    if pair[0].purpose == RepetitionPurpose::DiscardedSteal {
                        assert_eq!(pair[1].index, pair[0].index);
                        assert_eq!(pair[1].order_position, pair[0].order_position);
                        assert_ne!(pair[1].purpose, RepetitionPurpose::Counting);
                    }
                }
                // The failed stolen window is not the variant's failure,
                // and no figure counts a discarded window.
                assert_eq!(v.status, Status::Passed, "{:?}", v.failure_reasons);
                assert_eq!(v.summary.as_ref().unwrap().repetitions_used, 3);
                let kept = v.repetitions.len() as u32;
                assert_eq!(v.repetitions_planned, kept);
            }
        }
        // 2 cases × (8 planned + 2 repeats); counting windows are not
        // repeated although stolen too.
        assert_eq!(script.calls, 20);
    }

    #[test]
    fn without_steal_nothing_is_repeated() {
        let mut script = Script::new(quiet);
        let (measured, told) = run(&["pingpong-64b-1conn"], None, &mut script);
        assert_eq!(told[0].steal_repeats, 0);
        assert!(!told[0].line().contains("steal"));
        assert!(
            measured.cases[0]
                .variants
                .iter()
                .flat_map(|v| &v.repetitions)
                .all(|r| !r.purpose.discarded())
        );
    }
}
