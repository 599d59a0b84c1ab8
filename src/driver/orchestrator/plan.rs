//! What a run measures and in which order, and the loop that goes through
//! it: plan, measure (against the plan's target), judge, collect.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::driver::measurement::EngineConfig;
use crate::metrics::cross_check::KernelWatch;
use crate::results::CaseResult;
use crate::results::not_applicable::NotApplicable;
use crate::results::workload::Case;
use crate::server::VariantName;

use crate::results::instrument_cost::InstrumentCost;

use super::cpu_profile::{CpuProfileRequest, ProfilePlan, ProfiledServer, profile_cases};
use super::instrument_cost::{InstrumentCostRequest, measure_instrument_cost};
use super::measure::CaseEngine;
use super::precision::{CasePrecision, PrecisionGoal};
use super::progress::ProgressSink;
use super::runner::{CasesPlan, TargetMeasurer, run_cases};
pub use super::schedule::{driver_threads_for, variant_order};
use super::target::Target;

pub struct Plan {
    pub cases: Vec<Case>,
    /// Variant names as results record them (`drive`: the one remote
    /// server's name).
    pub variants: Vec<VariantName>,
    /// Timing repetitions (`--repetitions`); the target adds its counting
    /// ones ([`Target::counting_repetitions`]).
    pub repetitions: u32,
    /// Timing and driver pinning; `driver_threads` is set per case, and
    /// `target` per measurement when the target spawns its servers.
    pub engine: EngineConfig,
    /// A case never gets more driver threads than connections.
    pub driver_threads_max: usize,
    pub target: Target,
    /// Also measure what the instruments cost, after the cases (a spawned
    /// target only).
    pub instrument_cost: Option<InstrumentCostRequest>,
    /// `run --precision`: timing blocks beyond `repetitions` until the
    /// headline effects are this precise, within the goal's budget.
    pub precision: Option<PrecisionGoal>,
    /// `run --profile-cpu`: a perf-sampled window per server of these
    /// cases, after everything else (a spawned target only).
    pub cpu_profile: Option<CpuProfileRequest>,
}

impl Plan {
    /// Measurements planned: each case's variants that serve its protocol
    /// (the others are left out, not measured) × repetitions.
    pub fn measurement_count(&self) -> usize {
        let pairs: usize = self
            .cases
            .iter()
            .map(|case| {
                self.variants
                    .iter()
                    .filter(|v| self.target.not_applicable(v, case).is_none())
                    .count()
            })
            .sum();
        pairs * self.repetitions_per_variant() as usize
    }

    /// Timing plus counting repetitions of every variant × case.
    pub fn repetitions_per_variant(&self) -> u32 {
        self.repetitions + self.target.counting_repetitions()
    }
}

pub struct Outcome {
    pub cases: Vec<CaseResult>,
    /// Stopped early by the interrupt flag (or, when the interrupt reaches
    /// the server, raised at all: see [`Target::interrupt_reaches_server`]).
    pub interrupted: bool,
    /// The instrument cost, when asked for and the run was not
    /// interrupted: the block, or why it could not be measured.
    pub instrument_cost: Option<Result<InstrumentCost, String>>,
    /// Each finished case's precision, in case order.
    pub precision: Vec<CasePrecision>,
    /// The profiling repetitions, when asked for.
    pub cpu_profiles: Vec<ProfiledServer>,
    /// (case, variant) pairs left out: the variant does not serve the
    /// case's protocol (neither measured nor failed).
    pub not_applicable: Vec<NotApplicable>,
}

/// Runs the whole plan against its target. Checks `interrupted` before each
/// measurement. A measurement that fails after the flag was raised is
/// dropped when the interrupt reached the server too (a spawned child: the
/// failure is the interrupt's, not the variant's), and kept otherwise; one
/// that passed is always kept.
pub fn run_plan(
    plan: &mut Plan,
    engine: &mut dyn CaseEngine,
    progress: &mut dyn ProgressSink,
    interrupted: &AtomicBool,
) -> Outcome {
    // Closing the last perf event on a tracepoint unregisters it, which
    // costs about a second per server for the ~27 tracepoints; one watch
    // held on this thread for the whole run keeps them registered, so each
    // server's watch attaches and detaches cheaply.
    let _keep_tracepoints_registered = (plan.target.counting_repetitions() > 0)
        .then(|| KernelWatch::attach(&[crate::sys::thread::current_tid()]));
    let total = plan.measurement_count();
    let Plan {
        cases,
        variants,
        repetitions,
        engine: config,
        driver_threads_max,
        target,
        instrument_cost,
        precision: goal,
        cpu_profile,
    } = plan;
    // The instrument cost comes after the cases: its time is not theirs.
    let instrument_cost_seconds = instrument_cost.as_ref().map_or(0.0, |request| {
        3.0 * request.rounds as f64 * goal.map_or(0.0, |g| g.seconds_per_measurement)
    });
    let mut measurer = TargetMeasurer { target, engine };
    let measured = run_cases(
        &CasesPlan {
            cases,
            variants,
            repetitions: *repetitions,
            config,
            driver_threads_max: *driver_threads_max,
            goal: *goal,
            budget_seconds: goal.map(|g| g.budget_seconds - instrument_cost_seconds),
        },
        &mut measurer,
        progress,
        interrupted,
        total,
    );
    if measured.stopped {
        return Outcome {
            cases: measured.cases,
            interrupted: true,
            instrument_cost: None,
            precision: measured.precision,
            cpu_profiles: Vec::new(),
            not_applicable: measured.not_applicable,
        };
    }
    let TargetMeasurer { target, engine } = measurer;
    let interrupted_flag = interrupted;
    let interrupted = interrupted.load(Ordering::SeqCst) && target.interrupt_reaches_server();
    let instrument_cost =
        match (instrument_cost.as_ref(), &*target) {
            (Some(request), Target::Spawn(template)) if !interrupted => Some(
                measure_instrument_cost(request, template, config, *driver_threads_max, engine),
            ),
            (Some(_), Target::Remote(_)) => Some(Err(
                "measured only with servers the run starts itself".to_string(),
            )),
            _ => None,
        };
    // Last: the sampling's cost stays out of every other window.
    let cpu_profiles = match (cpu_profile.as_ref(), &*target) {
        (Some(request), Target::Spawn(template)) if !interrupted => profile_cases(
            &ProfilePlan {
                request,
                cases,
                variants,
                template,
                config,
                driver_threads_max: *driver_threads_max,
            },
            engine,
            interrupted_flag,
        ),
        _ => Vec::new(),
    };
    // An interrupt during the profiling leaves the measured cases whole;
    // the run is still marked incomplete.
    let interrupted = interrupted
        || (interrupted_flag.load(Ordering::SeqCst) && target.interrupt_reaches_server());
    Outcome {
        cases: measured.cases,
        interrupted,
        instrument_cost,
        precision: measured.precision,
        cpu_profiles,
        not_applicable: measured.not_applicable,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::driver::measurement::WindowObserver;
    use crate::driver::orchestrator::{RemoteServer, ServerTemplate, Silent, Step};
    use crate::results::fixture;
    use crate::results::measurement::CaseMeasurement;
    use crate::results::{Repetition, RepetitionPurpose, Status};
    use crate::server::Variant;

    /// Never called: every measurement here fails before any load.
    struct NoLoad;

    impl CaseEngine for NoLoad {
        fn run_case(
            &mut self,
            _: &Case,
            _: &EngineConfig,
            _: &mut dyn WindowObserver,
        ) -> Result<CaseMeasurement, String> {
            panic!("no measurement here reaches the engine")
        }
    }

    /// Raises the interrupt as the first measurement starts, as Ctrl-C in
    /// the middle of it would.
    struct InterruptDuringFirst<'a>(&'a AtomicBool);

    impl ProgressSink for InterruptDuringFirst<'_> {
        fn measurement_started(&mut self, _: &Step) {
            self.0.store(true, Ordering::SeqCst);
        }
        fn measurement_finished(&mut self, _: &Step, _: &Repetition) {}
    }

    fn plan(target: Target) -> Plan {
        Plan {
            cases: vec![fixture::case("pingpong-64b-1conn", 64)],
            variants: vec!["lt-rw".into()],
            repetitions: 2,
            engine: EngineConfig {
                target: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                warmup: Duration::ZERO,
                duration: Duration::from_millis(10),
                driver_threads: 1,
                driver_cpus: None,
                drain_timeout: Duration::from_millis(10),
            },
            driver_threads_max: 1,
            target,
            instrument_cost: None,
            precision: None,
            cpu_profile: None,
        }
    }

    fn interrupted_during_first(mut plan: Plan) -> Outcome {
        let flag = AtomicBool::new(false);
        run_plan(
            &mut plan,
            &mut NoLoad,
            &mut InterruptDuringFirst(&flag),
            &flag,
        )
    }

    fn missing_server() -> Target {
        Target::Spawn(ServerTemplate {
            program: "/nonexistent/epoll-bench".into(),
            leading_args: Vec::new(),
            threads: None,
            processes: None,
            cpus: None,
            extra_args: Vec::new(),
            ready_timeout: Duration::from_millis(100),
            external: Vec::new(),
        })
    }

    #[test]
    fn variant_orders_are_seeded_permutations_that_change_every_repetition() {
        let case = fixture::case("pingpong-64b-64conn", 64);
        let mut previous: Option<Vec<usize>> = None;
        let mut orders = Vec::new();
        for repetition in 0..6 {
            let order = variant_order(&case, repetition, 8, previous.as_deref());
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..8).collect::<Vec<_>>(), "not a permutation");
            if let Some(previous) = &previous {
                assert_ne!(
                    &order, previous,
                    "repetition {repetition} repeats the order"
                );
            }
            // Same seed, same case, same repetition: the same order.
            assert_eq!(
                order,
                variant_order(&case, repetition, 8, previous.as_deref())
            );
            orders.push(order.clone());
            previous = Some(order);
        }
        // Shuffled, not rotated or kept: some variant is not first in
        // some repetition, and the first places are not all one variant.
        assert!(orders.iter().any(|o| o != &(0..8).collect::<Vec<_>>()));
        assert!(orders.iter().any(|o| o[0] != orders[0][0]));
        // Another seed or another case gives other orders.
        let mut reseeded = case.clone();
        reseeded.seed += 1;
        let other_label = fixture::case("pingpong-64b-1conn", 64);
        let first = |c: &Case| variant_order(c, 0, 8, None);
        assert!(first(&reseeded) != orders[0] || first(&other_label) != orders[0]);
        // Two variants: the two orders alternate.
        let two: Vec<Vec<usize>> = (0..4)
            .scan(None::<Vec<usize>>, |prev, r| {
                let order = variant_order(&case, r, 2, prev.as_deref());
                *prev = Some(order.clone());
                Some(order)
            })
            .collect();
        assert!(two.windows(2).all(|w| w[0] != w[1]), "{two:?}");
        assert_eq!(variant_order(&case, 0, 1, None), [0]);
        assert!(variant_order(&case, 0, 0, None).is_empty());
    }

    #[test]
    fn repetitions_carry_their_purpose_and_place_in_the_shuffled_block() {
        let mut plan = plan(missing_server());
        plan.variants = vec!["lt-rw".into(), "et-rw".into(), "lt-writev".into()];
        assert_eq!(plan.repetitions_per_variant(), 3);
        assert_eq!(plan.measurement_count(), 9);
        let flag = AtomicBool::new(false);
        let outcome = run_plan(&mut plan, &mut NoLoad, &mut Silent, &flag);
        let case = &plan.cases[0];
        let variants = &outcome.cases[0].variants;
        let mut previous = None;
        for repetition in 0..3u32 {
            let order = variant_order(case, repetition, 3, previous.as_deref());
            for (position, &v) in order.iter().enumerate() {
                let rep = &variants[v].repetitions[repetition as usize];
                assert_eq!(rep.index, repetition);
                assert_eq!(rep.order_position, Some(position as u32));
                let expected = if repetition < 2 {
                    RepetitionPurpose::Timing
                } else {
                    RepetitionPurpose::Counting
                };
                assert_eq!(rep.purpose, expected);
            }
            previous = Some(order);
        }
        for v in variants {
            assert_eq!(v.repetitions_planned, 3);
            assert_eq!(v.status, Status::Failed);
        }
    }

    #[test]
    fn variants_that_do_not_serve_a_case_are_left_out_of_it_not_failed() {
        let mut plan = plan(missing_server());
        let file_case = Case {
            protocol: crate::protocol::Protocol::File,
            ..fixture::case("file-4k-1conn", 4096)
        };
        plan.cases.push(file_case);
        plan.variants = vec!["lt-rw".into(), "tokio".into()];
        // External servers never serve the file protocol; lt-rw does when
        // its copy strategy reads a file.
        let lt_rw_serves = "lt-rw"
            .parse::<Variant>()
            .unwrap()
            .serves(crate::protocol::Protocol::File);
        assert_eq!(
            plan.measurement_count(),
            (2 + usize::from(lt_rw_serves)) * 3
        );
        let flag = AtomicBool::new(false);
        let outcome = run_plan(&mut plan, &mut NoLoad, &mut Silent, &flag);
        let labels: Vec<&str> = outcome.cases.iter().map(|c| c.label.as_str()).collect();
        let mut expected = vec!["pingpong-64b-1conn"];
        if lt_rw_serves {
            expected.push("file-4k-1conn");
        }
        assert_eq!(labels, expected);
        let left_out: Vec<(&str, String, &str)> = outcome
            .not_applicable
            .iter()
            .map(|n| (n.case.as_str(), n.variant.to_string(), n.reason.as_str()))
            .collect();
        let mut expected = vec![(
            "file-4k-1conn",
            "tokio".to_string(),
            "tokio does not serve the file protocol",
        )];
        if !lt_rw_serves {
            expected.insert(
                0,
                (
                    "file-4k-1conn",
                    "lt-rw".to_string(),
                    "lt-rw does not serve the file protocol",
                ),
            );
        }
        assert_eq!(left_out, expected);
    }

    #[test]
    fn a_failure_under_an_interrupt_that_reached_the_server_is_dropped() {
        let outcome = interrupted_during_first(plan(missing_server()));
        assert!(outcome.interrupted);
        assert!(outcome.cases.is_empty(), "the failed repetition was kept");
    }

    #[test]
    fn a_remote_failure_under_an_interrupt_is_kept() {
        // A port nothing listens on any more: connecting is refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let remote = RemoteServer::connect(closed, None, Duration::from_millis(200));
        assert!(remote.unreachable_reason().is_some());
        let outcome = interrupted_during_first(plan(Target::Remote(Box::new(remote))));
        assert!(outcome.interrupted);
        let variant = &outcome.cases[0].variants[0];
        assert_eq!(variant.repetitions.len(), 1, "one measured, then stopped");
        assert_eq!(variant.status, Status::Failed);
        assert!(
            variant.failure_reasons[0].starts_with("cannot reach the target"),
            "{:?}",
            variant.failure_reasons
        );
        assert_eq!(
            variant.server_side_unavailable_reason.as_deref(),
            Some("no --control interface given")
        );
    }
}
