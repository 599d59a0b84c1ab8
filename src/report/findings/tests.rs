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

pub(super) fn claim_starting(results: &ResultsFile, start: &str) -> Finding {
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
    // One-way file serving is not bounded by the echo limit.
    let mut file_only = results.clone();
    for case in &mut file_only.cases {
        case.case.protocol = crate::protocol::Protocol::File;
    }
    assert_eq!(
        claim_starting(&file_only, "no result moves payload faster").holds,
        Holds::NotMeasured
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

/// The three io_uring cases, each with lt-rw at 10 µs, et-rw at 12 µs and
/// uring-rw at `uring_cpu_us` server CPU per request (5 repetitions; the
/// epoll variants make 3 syscalls per request, uring-rw 0.2 syscalls and
/// 2.1 operations).
fn uring_run(uring_cpu_us: [f64; 3]) -> ResultsFile {
    let mut results = fixture::results();
    results.cases = uring::URING_CASES
        .iter()
        .zip(uring_cpu_us)
        .map(|(label, cpu_us)| {
            let case = fixture::case(label, 64);
            let reps = (0..5)
                .map(|i| {
                    let spread = 1.0 + 0.01 * f64::from(i);
                    fixture::uring_repetition_with_server_cpu(i, 1000, cpu_us * spread)
                })
                .collect();
            CaseResult {
                profile: case.profile.clone(),
                label: case.label.clone(),
                case,
                variants: vec![
                    variant("lt-rw", 1000, 10.0),
                    variant("et-rw", 1000, 12.0),
                    finish_variant(&"uring-rw".into(), 5, reps, None),
                ],
            }
        })
        .collect();
    results
}

#[test]
fn io_uring_is_compared_with_the_best_epoll_variant_of_its_copy_strategy() {
    let results = uring_run([8.0, 9.0, 8.5]);
    let syscalls = claim_starting(
        &results,
        "io_uring makes fewer syscalls per request than the best epoll rw",
    );
    assert_eq!(syscalls.holds, Holds::Yes, "{syscalls:?}");
    assert_eq!(syscalls.evidence.len(), 3, "{syscalls:?}");
    let first = &syscalls.evidence[0];
    // lt-rw (10 µs) is the best epoll rw variant, not et-rw (12 µs).
    assert!(
        first.starts_with("`pingpong-64b-1conn`, uring-rw against lt-rw: "),
        "{first}"
    );
    assert!(
        first.contains("syscalls per request 0.200 against 3.000, 0.067×"),
        "{first}"
    );
    assert!(
        first
            .contains("operations (SQEs) per request against syscalls 2.100 against 3.000, 0.700×"),
        "{first}"
    );
    let cpu = claim_starting(
        &results,
        "io_uring costs less server CPU per request than the best epoll rw",
    );
    assert_eq!(cpu.holds, Holds::Yes, "{cpu:?}");
    assert!(
        cpu.evidence[0].contains("server CPU µs per request 8.160 against 10.200, 0.800×"),
        "{cpu:?}"
    );
    assert_eq!(
        cpu.evidence[3],
        "io_uring wins on server CPU in `pingpong-64b-1conn`, `pingpong-64b-64conn`, `pipelined-16-64b`"
    );
    // No io_uring writev or splice in the run: those findings say nothing.
    assert!(
        findings(&results)
            .iter()
            .all(|f| !f.claim.contains("epoll writev variant"))
    );
}

#[test]
fn where_io_uring_costs_more_the_finding_says_so_and_names_no_win() {
    let results = uring_run([12.0, 8.0, 10.2]);
    let cpu = claim_starting(
        &results,
        "io_uring costs less server CPU per request than the best epoll rw",
    );
    assert_eq!(cpu.holds, Holds::No, "{cpu:?}");
    assert_eq!(
        cpu.evidence[3],
        "io_uring wins on server CPU in `pingpong-64b-64conn`"
    );
    // The fixture's repetitions scale alike, so even 10.2 against 10 µs is
    // a 2% effect beyond doubt: a loss.
    assert!(cpu.evidence[2].contains("1.020×"), "{cpu:?}");
    assert_eq!(
        cpu.evidence[4],
        "epoll wins in `pingpong-64b-1conn`, `pipelined-16-64b`"
    );
}

#[test]
fn io_uring_findings_say_nothing_without_io_uring_variants() {
    let results = fixed_load(25_000, 25_000);
    assert!(
        findings(&results)
            .iter()
            .all(|f| !f.claim.starts_with("io_uring"))
    );
    // A failed io_uring variant is named, not hidden; no epoll variant to
    // compare with is named too.
    let mut results = uring_run([8.0, 8.0, 8.0]);
    results.cases[0].variants[2] = finish_variant(
        &"uring-rw".into(),
        5,
        vec![fixture::failed_repetition(0)],
        None,
    );
    // Only uring-rw left in the 64-connection case.
    results.cases[1].variants.drain(..2);
    let cpu = claim_starting(
        &results,
        "io_uring costs less server CPU per request than the best epoll rw",
    );
    assert_eq!(cpu.holds, Holds::NotShown, "{cpu:?}");
    assert!(
        cpu.evidence[0].contains("uring-rw failed (1 payload mismatch)"),
        "{cpu:?}"
    );
    assert_eq!(
        cpu.evidence[1],
        "`pingpong-64b-64conn`, uring-rw: no epoll rw variant passed to compare with"
    );
}

/// `uring-multishot` gathers its responses: it is compared with the best
/// epoll writev variant (lt-writev at 10 µs here, not lt-rw at 6 µs,
/// cheaper but another copy strategy), in findings of its own beside
/// `uring-writev`'s.
#[test]
fn uring_multishot_is_compared_with_the_best_epoll_writev_variant() {
    let mut results = fixture::results();
    results.cases = uring::URING_CASES
        .iter()
        .map(|label| {
            let case = fixture::case(label, 64);
            let uring = |name: &str, cpu_us: f64| {
                let reps = (0..5)
                    .map(|i| {
                        let spread = 1.0 + 0.01 * f64::from(i);
                        fixture::uring_repetition_with_server_cpu(i, 1000, cpu_us * spread)
                    })
                    .collect();
                finish_variant(&name.into(), 5, reps, None)
            };
            CaseResult {
                profile: case.profile.clone(),
                label: case.label.clone(),
                case,
                variants: vec![
                    variant("lt-rw", 1000, 6.0),
                    variant("lt-writev", 1000, 10.0),
                    variant("et-writev", 1000, 12.0),
                    uring("uring-writev", 11.0),
                    uring("uring-multishot", 8.0),
                ],
            }
        })
        .collect();
    let multishot = claim_starting(
        &results,
        "multishot io_uring costs less server CPU per request than the best epoll writev",
    );
    assert_eq!(multishot.holds, Holds::Yes, "{multishot:?}");
    assert!(
        multishot.evidence[0]
            .starts_with("`pingpong-64b-1conn`, uring-multishot against lt-writev: "),
        "{multishot:?}"
    );
    assert!(
        multishot.evidence[0].contains("server CPU µs per request 8.160 against 10.200, 0.800×"),
        "{multishot:?}"
    );
    assert_eq!(
        multishot.evidence[3],
        "multishot io_uring wins on server CPU in `pingpong-64b-1conn`, `pingpong-64b-64conn`, `pipelined-16-64b`"
    );
    let syscalls = claim_starting(
        &results,
        "multishot io_uring makes fewer syscalls per request than the best epoll writev",
    );
    assert_eq!(syscalls.evidence.len(), 3, "{syscalls:?}");
    assert!(
        syscalls.evidence[1].contains("uring-multishot against lt-writev"),
        "{syscalls:?}"
    );
    // uring-writev keeps its own findings, against the same epoll variant.
    let writev = claim_starting(
        &results,
        "io_uring costs less server CPU per request than the best epoll writev",
    );
    assert_eq!(writev.holds, Holds::No, "{writev:?}");
    assert!(
        writev.evidence[0].starts_with("`pingpong-64b-1conn`, uring-writev against lt-writev: "),
        "{writev:?}"
    );
    // Without uring-multishot in the run, no multishot finding.
    for case in &mut results.cases {
        case.variants.pop();
    }
    assert!(
        findings(&results)
            .iter()
            .all(|f| !f.claim.starts_with("multishot io_uring"))
    );
}

#[test]
fn the_measured_block_keeps_every_measured_claim_and_drops_only_the_rest() {
    let results = fixed_load(25_000, 25_000);
    let all = findings_block(&results);
    let measured = measured_findings_block(&results);
    assert!(all.contains(Holds::NotMeasured.label()), "{all}");
    assert!(!measured.contains(Holds::NotMeasured.label()), "{measured}");
    let kept: Vec<Finding> = findings(&results)
        .into_iter()
        .filter(|f| f.holds != Holds::NotMeasured)
        .collect();
    assert!(!kept.is_empty());
    for f in kept {
        assert!(
            measured.contains(&format!("- **{}**", f.claim)),
            "{measured}"
        );
    }
}
