use super::*;
use crate::results::CaseResult;
use crate::results::aggregate::finish_variant;
use crate::results::fixture;

/// Run-to-run drift shared by the variants of one round (they run
/// interleaved), up to ±4 %.
fn drift(i: u32) -> f64 {
    1.0 + 0.04 * (i as f64 * 1.7).sin()
}

/// Noise of one variant's own window, up to ±0.5 %.
fn own_noise(i: u32, variant: u32) -> f64 {
    1.0 + 0.005 * (i as f64 * 3.1 + variant as f64 * 0.9).sin()
}

/// `lt-rw` and `et-rw` over `repetitions` rounds, et-rw's server CPU per
/// request `effect` times lt-rw's.
fn case_with_effect(effect: f64, repetitions: u32) -> CaseResult {
    let variant = |name: &str, id: u32, factor: f64| {
        let reps = (0..repetitions)
            .map(|i| {
                fixture::repetition_with_server_cpu(
                    i,
                    1000,
                    10.0 * factor * drift(i) * own_noise(i, id),
                )
            })
            .collect();
        finish_variant(&name.into(), repetitions, reps, None)
    };
    CaseResult {
        profile: "synthetic".into(),
        label: "synthetic".into(),
        case: fixture::case("synthetic", 64),
        variants: vec![variant("lt-rw", 0, 1.0), variant("et-rw", 1, effect)],
    }
}

fn cpu_effect(effects: &[Effect]) -> &Effect {
    effects
        .iter()
        .find(|e| e.figure == "server_cpu_us_per_request" && e.comparison.name() == "et-rw / lt-rw")
        .expect("the ET vs LT server CPU effect")
}

#[test]
fn the_comparisons_come_from_the_axes() {
    let names: Vec<String> = comparisons(&Variant::ALL)
        .into_iter()
        .map(|(_, a, b)| format!("{b}/{a}"))
        .collect();
    assert_eq!(
        names,
        [
            "et-rw/lt-rw",
            "et-writev/lt-writev",
            "et-splice/lt-splice",
            "et-zerocopy/lt-zerocopy",
            "et-vmsplice/lt-vmsplice",
            "et-mmap/lt-mmap",
            "et-sendfile/lt-sendfile",
            "et-rw-shortread/et-rw",
            "et-writev-shortread/et-writev",
            "lt-writev/lt-rw",
            // The file-only strategies against rw's pread + write (file
            // cases only: a pair is compared where both ran).
            "lt-mmap/lt-rw",
            "lt-sendfile/lt-rw",
            "et-writev/et-rw",
            "et-mmap/et-rw",
            "et-sendfile/et-rw",
            "uring-writev/uring-rw",
            "lt-splice/lt-writev",
            "lt-zerocopy/lt-writev",
            "lt-vmsplice/lt-writev",
            "et-splice/et-writev",
            "et-zerocopy/et-writev",
            "et-vmsplice/et-writev",
            "uring-splice/uring-writev",
            "uring-rw/lt-rw",
            "uring-writev/lt-writev",
            "uring-splice/lt-splice",
            // Gathered writes, like uring-writev: its analogue is lt-writev.
            "uring-multishot/lt-writev",
        ]
    );
    // io_uring is compared with its LT analogue only, never with ET.
    let uring = ["et-rw", "uring-rw"].map(|n| n.parse::<Variant>().unwrap());
    assert!(comparisons(&uring).is_empty());
    // Only what the case ran is compared.
    let some = ["lt-rw", "et-rw", "et-splice"].map(|n| n.parse::<Variant>().unwrap());
    assert_eq!(comparisons(&some).len(), 1);
}

#[test]
fn a_five_percent_effect_is_found() {
    let effects = case_effects(&case_with_effect(1.05, 10));
    let effect = cpu_effect(&effects);
    let interval = effect.interval.expect("an interval");
    assert!(
        interval.ci_low > 1.0 && interval.ci_low <= 1.05 && interval.ci_high >= 1.05,
        "{interval:?}"
    );
    assert!((interval.ratio - 1.05).abs() < 0.005, "{interval:?}");
    assert_eq!(interval.change(), Change::Higher);
    assert_eq!(interval.repetitions, 10);
    assert!(
        effect
            .verdict
            .starts_with("ET costs 5.0% more server CPU per request than LT (95% CI "),
        "{}",
        effect.verdict
    );
    // The 4 % drift cancels in the pairs: the interval is much narrower
    // than the spread of either variant.
    assert!(interval.ci_half_width_percent < 1.0, "{interval:?}");
    // Every figure of every comparison the two variants allow.
    assert_eq!(effects.len(), 5);
}

#[test]
fn no_effect_is_not_a_verdict() {
    let effects = case_with_effect(1.0, 10);
    let effects = case_effects(&effects);
    let effect = cpu_effect(&effects);
    let interval = effect.interval.expect("an interval");
    assert!(
        interval.ci_low <= 1.0 && interval.ci_high >= 1.0,
        "{interval:?}"
    );
    assert_eq!(interval.change(), Change::NoDifference);
    let bound = percent(interval.largest_deviation_percent());
    assert_eq!(
        effect.verdict,
        format!("no difference larger than ±{bound}%")
    );
    // Identical counts: a ratio of exactly 1 with no width.
    let syscalls = effects
        .iter()
        .find(|e| e.figure == "syscalls_per_request_total")
        .unwrap();
    let interval = syscalls.interval.unwrap();
    assert_eq!(
        (interval.ci_low, interval.ratio, interval.ci_high),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(syscalls.verdict, "no difference larger than ±0.0%");
}

#[test]
fn pairing_narrows_the_interval() {
    let case = case_with_effect(1.05, 10);
    let values = |v: usize| -> Vec<f64> {
        RepetitionFigures::of(&case.variants[v])
            .values(registry_figure("server_cpu_us_per_request"))
            .into_values()
            .collect()
    };
    let paired = paired_interval(&values(0), &values(1)).unwrap();
    let unpaired = unpaired_interval(&values(0), &values(1)).unwrap();
    assert!(
        (paired.ratio - unpaired.ratio).abs() < 1e-12,
        "one estimator"
    );
    assert!(
        unpaired.ci_half_width_percent > 3.0 * paired.ci_half_width_percent,
        "{paired:?} {unpaired:?}"
    );
}

#[test]
fn a_failed_variant_gives_no_number() {
    let mut case = case_with_effect(1.05, 10);
    case.variants[1] = finish_variant(
        &"et-rw".into(),
        3,
        vec![fixture::failed_repetition(0)],
        None,
    );
    let effects = case_effects(&case);
    assert_eq!(effects.len(), 5);
    for effect in &effects {
        assert_eq!(effect.interval, None);
        assert_eq!(
            effect.verdict,
            "not enough data: `et-rw` failed (1 payload mismatch)"
        );
    }
    let json = serde_json::to_value(&effects[0]).unwrap();
    assert!(json.get("ratio").is_none(), "{json}");
}

#[test]
fn fewer_than_three_pairs_give_no_number() {
    let mut case = case_with_effect(1.5, 3);
    case.variants[1].repetitions.truncate(2);
    let effects = case_effects(&case);
    assert_eq!(cpu_effect(&effects).interval, None);
    assert_eq!(
        cpu_effect(&effects).verdict,
        "not enough data: 2 paired repetitions, at least 3 needed"
    );
    // Three pairs are enough.
    let effects = case_effects(&case_with_effect(1.5, 3));
    assert_eq!(
        cpu_effect(&effects).interval.unwrap().change(),
        Change::Higher
    );
    // Repetitions pair by index, not by position.
    let mut case = case_with_effect(1.5, 5);
    case.variants[0].repetitions.remove(0);
    case.variants[1].repetitions.remove(4);
    let effects = case_effects(&case);
    assert_eq!(cpu_effect(&effects).interval.unwrap().repetitions, 3);
}

#[test]
fn same_input_same_output() {
    let case = case_with_effect(1.02, 5);
    let first = serde_json::to_string(&case_effects(&case)).unwrap();
    let second = serde_json::to_string(&case_effects(&case)).unwrap();
    assert_eq!(first, second);
}

/// Textbook values, computed independently (Python's statistics module):
/// three pairs with ratios 1.1, 1.2, 1.3 give a geometric mean of 1.1972
/// and, with t(2) = 4.303, the interval 0.9728–1.4734.
#[test]
fn the_paired_interval_is_students_t_on_the_log_ratios() {
    let interval = paired_interval(&[1.0, 2.0, 4.0], &[1.1, 2.4, 5.2]).unwrap();
    let close = |got: f64, want: f64| (got - want).abs() < 5e-4;
    assert!(close(interval.ratio, 1.19722), "{interval:?}");
    assert!(close(interval.ci_low, 0.97281), "{interval:?}");
    assert!(close(interval.ci_high, 1.47339), "{interval:?}");
    assert_eq!(interval.repetitions, 3);
}

/// Welch: 4 against 3 repetitions, 4.96 degrees of freedom rounded down
/// to 4 (t = 2.776).
#[test]
fn the_unpaired_interval_is_welchs_t_on_the_logs() {
    let interval = unpaired_interval(&[10.0, 11.0, 12.0, 10.5], &[12.0, 12.5, 13.5]).unwrap();
    let close = |got: f64, want: f64| (got - want).abs() < 5e-4;
    assert!(close(interval.ratio, 1.16601), "{interval:?}");
    assert!(close(interval.ci_low, 1.00944), "{interval:?}");
    assert!(close(interval.ci_high, 1.34686), "{interval:?}");
}

#[test]
fn verdicts_say_the_direction_and_the_interval() {
    let comparison = Comparison::of(
        Axis::Backend,
        "lt-rw".parse::<Variant>().unwrap(),
        "et-rw".parse::<Variant>().unwrap(),
    );
    let at = |ratio, ci_low, ci_high| {
        Ok(RatioInterval {
            ratio,
            ci_low,
            ci_high,
            ci_half_width_percent: 0.0,
            repetitions: 3,
        })
    };
    let cpu = registry_figure("server_cpu_us_per_request");
    assert_eq!(
        verdict(&comparison, cpu, &at(1.041, 1.020, 1.063)),
        "ET costs 4.1% more server CPU per request than LT (95% CI 2.0–6.3%)"
    );
    assert_eq!(
        verdict(&comparison, cpu, &at(0.959, 0.937, 0.980)),
        "ET saves 4.1% of LT's server CPU per request (95% CI 2.0–6.3%)"
    );
    assert_eq!(
        verdict(&comparison, cpu, &at(1.01, 0.968, 1.02)),
        "no difference larger than ±3.2%"
    );
    assert_eq!(
        verdict(
            &comparison,
            registry_figure("requests_per_second"),
            &at(0.9, 0.85, 0.95)
        ),
        "ET serves 10.0% fewer requests per second than LT (95% CI 5.0–15.0%)"
    );
    assert_eq!(
        verdict(
            &comparison,
            registry_figure("p99_latency_us"),
            &at(1.5, 1.2, 2.5)
        ),
        "ET has 50.0% higher p99 latency than LT (95% CI 20.0–150%)"
    );
}

#[test]
fn bulk_cases_are_judged_by_payload_throughput() {
    let names = |shape: &Shape| effect_figures(shape).map(|(f, _)| f.name);
    assert!(names(&Shape::PingPong).contains(&"requests_per_second"));
    let bulk = names(&Shape::Bulk { window_bytes: 1 });
    assert!(bulk.contains(&"payload_megabytes_per_second"));
    assert!(!bulk.contains(&"requests_per_second"));
    for (figure, _) in effect_figures(&Shape::PingPong) {
        assert!(figure.better.is_some(), "{}", figure.name);
    }
}

#[test]
fn headline_precision_is_the_widest_headline_interval() {
    let mut case = case_with_effect(1.05, 10);
    case.variants.push(finish_variant(
        &"et-writev".into(),
        3,
        vec![fixture::failed_repetition(0)],
        None,
    ));
    let effects = case_effects(&case);
    let precision = headline_precision(&effects);
    let widest = effects
        .iter()
        .filter(|e| e.headline)
        .filter_map(|e| e.interval)
        .map(|i| i.ci_half_width_percent)
        .fold(0.0, f64::max);
    assert_eq!(precision.widest_half_width_percent, Some(widest));
    assert!(widest > 0.0);
    // et-writev failed: its comparison with et-rw has no headline interval.
    assert_eq!(
        precision.without_interval,
        [
            ("et-writev / et-rw".to_string(), "server_cpu_us_per_request"),
            ("et-writev / et-rw".to_string(), "requests_per_second"),
        ]
    );
}
