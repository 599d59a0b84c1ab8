use super::*;
use crate::results::VariantResult;
use crate::results::aggregate::finish_variant;
use crate::results::fixture;

fn variant(name: &str, requests: u64, cpu_us: f64) -> VariantResult {
    let reps = (0..5)
        .map(|i| {
            fixture::repetition_with_server_cpu(i, requests, cpu_us * (1.0 + 0.01 * f64::from(i)))
        })
        .collect();
    finish_variant(&name.into(), 5, reps, None)
}

/// The fixed-load case with lt-rw completing `lt_requests` and et-rw
/// `et_requests` per second of 25,000 offered; et-rw costs 20% more.
fn fixed_load(lt_requests: u64, et_requests: u64) -> ResultsFile {
    let mut case = fixture::case(KEY_PROFILES[2], 64);
    case.shape = Shape::ConstantRate {
        rate_per_second: 25_000.0,
    };
    case.connections = 64;
    let mut results = fixture::results();
    results.cases = vec![CaseResult {
        profile: case.profile.clone(),
        label: case.label.clone(),
        case,
        variants: vec![
            variant("lt-rw", lt_requests, 10.0),
            variant("et-rw", et_requests, 12.0),
        ],
    }];
    results
}

fn et_cpu_claim(results: &ResultsFile) -> Finding {
    findings(results)
        .into_iter()
        .find(|f| f.claim == "ET's drain costs more server CPU per request than LT (rw)")
        .expect("the rw ET-vs-LT CPU claim")
}

#[test]
fn a_fixed_load_effect_holds_when_both_servers_complete_the_offered_rate() {
    let claim = et_cpu_claim(&fixed_load(25_000, 24_900));
    assert_eq!(claim.holds, Holds::Yes, "{claim:?}");
    assert!(claim.evidence[0].contains("20.0% more"), "{claim:?}");
}

#[test]
fn a_saturated_server_is_left_out_of_a_fixed_load_comparison() {
    let claim = et_cpu_claim(&fixed_load(25_000, 20_000));
    assert_eq!(claim.holds, Holds::NotMeasured, "{claim:?}");
    assert!(
        claim.evidence[0].contains("left out, et-rw completed 20000 of the 25000 req/s offered"),
        "{claim:?}"
    );
}

fn claim_starting(results: &ResultsFile, start: &str) -> Finding {
    findings(results)
        .into_iter()
        .find(|f| f.claim.starts_with(start))
        .unwrap_or_else(|| panic!("a claim starting `{start}`"))
}

#[test]
fn steal_counts_the_windows_at_or_above_five_percent() {
    let mut results = fixed_load(25_000, 25_000);
    let quiet = claim_starting(&results, "the host took less than 5%");
    assert_eq!(quiet.holds, Holds::Yes, "{quiet:?}");
    assert!(
        quiet.evidence[0].starts_with("0 of 10 windows"),
        "{quiet:?}"
    );
    let window = results.cases[0].variants[1].repetitions[3]
        .measurement
        .as_mut()
        .unwrap();
    window.cpu_steal_percent = Some(12.5);
    let stolen = claim_starting(&results, "the host took less than 5%");
    assert_eq!(stolen.holds, Holds::No, "{stolen:?}");
    assert!(
        stolen.evidence[0].starts_with("1 of 10 windows") && stolen.evidence[0].contains("12.5%"),
        "{stolen:?}"
    );
}

#[test]
fn a_payload_rate_above_the_loopback_limit_is_called_out() {
    // 25,000 requests of 64 B a second: 1.6 MB/s, far below the fixture's
    // 3 GB/s echo limit.
    let mut results = fixed_load(25_000, 25_000);
    results.machine_limits = Some(fixture::machine_limits());
    let within = claim_starting(&results, "no result moves payload faster");
    assert_eq!(within.holds, Holds::Yes, "{within:?}");
    assert!(within.evidence[0].contains("0% of the loopback echo limit (2 streams"));
    let mut limits = fixture::machine_limits();
    limits.loopback_both_ways_n_streams_bytes_per_second.median = 1e6;
    limits.loopback_both_ways_n_streams_bytes_per_second.max = 1.1e6;
    results.machine_limits = Some(limits);
    let above = claim_starting(&results, "no result moves payload faster");
    assert_eq!(above.holds, Holds::No, "{above:?}");
    assert!(
        above.evidence[0].contains("160% of the loopback echo limit"),
        "{above:?}"
    );
    results.machine_limits = None;
    assert_eq!(
        claim_starting(&results, "no result moves payload faster").holds,
        Holds::NotMeasured
    );
}

#[test]
fn instrument_cost_holds_only_when_every_round_is_within_the_limit() {
    let mut results = fixed_load(25_000, 25_000);
    let mut cost = fixture::instrument_cost();
    cost.syscall_counting_cost_percent.min = 0.2;
    cost.syscall_counting_cost_percent.median = 0.5;
    cost.syscall_counting_cost_percent.max = 0.9;
    results.instrument_cost = Some(cost.clone());
    let start = "in-process syscall counting costs the server less than 1%";
    assert_eq!(claim_starting(&results, start).holds, Holds::Yes);
    cost.syscall_counting_cost_percent.max = 3.0;
    results.instrument_cost = Some(cost.clone());
    assert_eq!(claim_starting(&results, start).holds, Holds::NotShown);
    cost.syscall_counting_cost_percent.min = 1.5;
    results.instrument_cost = Some(cost);
    let over = claim_starting(&results, start);
    assert_eq!(over.holds, Holds::No);
    assert!(
        over.evidence[1].contains("rounds +1.5% to +3.0%"),
        "{over:?}"
    );
    results.instrument_cost = None;
    assert_eq!(claim_starting(&results, start).holds, Holds::NotMeasured);
}

#[test]
fn the_driver_cost_claim_gives_the_ratio_range_of_the_ping_pong_cases() {
    let mut results = fixed_load(25_000, 25_000);
    results.cases[0].label = "pingpong-64b-64conn".into();
    let claim = claim_starting(&results, "the driver costs at most 50%");
    // The fixture's driver spends 4 µs per request against the server's
    // 10-12 µs: a ratio of about 0.3-0.4.
    assert_eq!(claim.holds, Holds::Yes, "{claim:?}");
    assert!(
        claim.evidence[0].starts_with("`pingpong-64b-64conn`: driver/server CPU per request 0.3"),
        "{claim:?}"
    );
    assert!(
        claim.evidence[0].contains("over 2 variants (lt-rw 0."),
        "{claim:?}"
    );
}
