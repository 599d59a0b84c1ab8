use super::*;
use crate::report::findings::findings;
use crate::results::RepetitionPurpose;
use crate::results::aggregate::finish_variant;
use crate::results::fixture;

/// A built-in variant with five rounds at about `cpu_us` per request
/// (3 syscalls and 0.1 EAGAIN read per request, as the fixture's).
fn builtin(name: &str, requests: u64, cpu_us: f64) -> VariantResult {
    let reps = (0..5)
        .map(|i| {
            fixture::repetition_with_server_cpu(i, requests, cpu_us * (1.0 + 0.01 * f64::from(i)))
        })
        .collect();
    finish_variant(&name.into(), 5, reps, None)
}

/// An external server measured in `rounds` rounds, each a timing window
/// at about `cpu_us` per request and a counting window of 5 syscalls per
/// request (2 reads, of which 1 returned EAGAIN, 1 epoll_pwait, 1 futex, 1
/// writev); `eagain_counted: false` as when the kernel refused the filter.
fn external(
    name: &str,
    requests: u64,
    cpu_us: f64,
    rounds: u32,
    eagain_counted: bool,
) -> VariantResult {
    let template = fixture::external_variant(requests);
    let (timing, counting) = (&template.repetitions[0], &template.repetitions[1]);
    assert_eq!(timing.purpose, RepetitionPurpose::Timing);
    let mut reps = Vec::new();
    for i in 0..rounds {
        let mut t = timing.clone();
        t.index = i;
        let counts = t.external_window.as_mut().unwrap().counts.as_mut().unwrap();
        counts.task_clock_ns =
            (cpu_us * 1e3 * (1.0 + 0.01 * f64::from(i)) * requests as f64) as u64;
        let mut c = counting.clone();
        c.index = i;
        let syscalls = c
            .external_window
            .as_mut()
            .unwrap()
            .counts
            .as_mut()
            .unwrap()
            .syscalls
            .as_mut()
            .unwrap();
        syscalls.total = 5 * requests + u64::from(i);
        syscalls.by_kind = [
            ("read", 2 * requests),
            ("epoll_pwait", requests),
            ("futex", requests),
            ("writev", requests),
            ("write", 0),
        ]
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect();
        syscalls.eagain_by_kind = eagain_counted.then(|| {
            [("read".to_string(), requests), ("writev".to_string(), 0)]
                .into_iter()
                .collect()
        });
        syscalls.eagain_unavailable_reason = (!eagain_counted).then(|| "refused".to_string());
        reps.push(t);
        reps.push(c);
    }
    VariantResult {
        external_command: template.external_command.clone(),
        ..finish_variant(&name.into(), rounds, reps, None)
    }
}

fn case_with(label: &str, offered: Option<f64>, variants: Vec<VariantResult>) -> CaseResult {
    let mut case = fixture::case(label, 64);
    if let Some(rate_per_second) = offered {
        case.shape = Shape::ConstantRate { rate_per_second };
        case.connections = 64;
    }
    CaseResult {
        profile: case.profile.clone(),
        label: case.label.clone(),
        case,
        variants,
    }
}

/// The fixed-load case: lt-writev at 9.0 µs, et-writev at 10.0, `go` at
/// `go_cpu_us`, all completing the 25,000 req/s offered.
fn fixed_load(go_cpu_us: f64, rounds: u32, eagain_counted: bool) -> ResultsFile {
    let mut results = fixture::results();
    results.cases = vec![case_with(
        GOAL_CASE,
        Some(25_000.0),
        vec![
            builtin("lt-writev", 25_000, 9.0),
            builtin("et-writev", 25_000, 10.0),
            external("go", 25_000, go_cpu_us, rounds, eagain_counted),
        ],
    )];
    results
}

fn claim_starting(results: &ResultsFile, start: &str) -> Finding {
    findings(results)
        .into_iter()
        .find(|f| f.claim.starts_with(start))
        .unwrap_or_else(|| panic!("a claim starting `{start}`"))
}

const GOAL: &str = "the best built-in variant's server CPU per request at fixed-load-25k-64conn";

#[test]
fn a_run_without_an_external_server_says_nothing_about_one() {
    let mut results = fixed_load(12.0, 5, true);
    results.cases[0].variants.pop();
    assert!(super::findings(&results).is_empty());
    assert!(
        findings(&results)
            .iter()
            .all(|f| !f.claim.contains("best built-in"))
    );
}

#[test]
fn the_goal_holds_when_the_whole_interval_is_below_the_goal_ratio() {
    // 9.0 against 12.0 in every round (medians 9.18 and 12.24): 0.75×,
    // far below 0.95.
    let results = fixed_load(12.0, 5, true);
    let goal = claim_starting(&results, GOAL);
    assert_eq!(goal.claim, format!("{GOAL} is at most 0.95× go's"));
    assert_eq!(goal.holds, Holds::Yes, "{goal:?}");
    assert!(
        goal.evidence[0].starts_with(
            "`fixed-load-25k-64conn`, go against lt-writev (best built-in epoll): server CPU µs per request 12.240 against 9.180, lt-writev / go 0.750×"
        ),
        "{goal:?}"
    );
    let cpu = claim_starting(
        &results,
        "the best built-in epoll variant costs less server CPU",
    );
    assert_eq!(cpu.holds, Holds::Yes, "{cpu:?}");
}

#[test]
fn the_goal_is_not_shown_when_the_interval_straddles_the_goal_ratio_and_fails_above_it() {
    // 9.0 against 9.5: 0.947×, with an interval reaching above 0.95
    // (the two sides' round-to-round spreads differ).
    let mut results = fixed_load(9.5, 5, true);
    let go = &mut results.cases[0].variants[2];
    for r in go.repetitions.iter_mut().filter(|r| r.purpose.gives_time()) {
        let counts = r.external_window.as_mut().unwrap().counts.as_mut().unwrap();
        let wobble = if r.index % 2 == 0 { 1.04 } else { 0.97 };
        counts.task_clock_ns = (counts.task_clock_ns as f64 * wobble) as u64;
    }
    let goal = claim_starting(&results, GOAL);
    assert_eq!(goal.holds, Holds::NotShown, "{goal:?}");
    // 9.0 against 9.0: the built-in is not 5% cheaper, beyond doubt.
    let results = fixed_load(9.0, 5, true);
    let goal = claim_starting(&results, GOAL);
    assert_eq!(goal.holds, Holds::No, "{goal:?}");
}

#[test]
fn one_round_of_an_external_server_gives_no_verdict() {
    let results = fixed_load(12.0, 1, true);
    let goal = claim_starting(&results, GOAL);
    assert_eq!(goal.holds, Holds::NotMeasured, "{goal:?}");
    assert!(
        goal.evidence[0].contains("no interval (1 paired repetition, at least 3 needed)"),
        "{goal:?}"
    );
    let syscalls = claim_starting(
        &results,
        "the best built-in epoll variant makes fewer syscalls",
    );
    assert_eq!(syscalls.holds, Holds::NotMeasured, "{syscalls:?}");
}

#[test]
fn syscalls_by_kind_stand_beside_the_best_builtin_with_eagain_returns() {
    let results = fixed_load(12.0, 5, true);
    let syscalls = claim_starting(
        &results,
        "the best built-in epoll variant makes fewer syscalls",
    );
    assert_eq!(
        syscalls.claim,
        "the best built-in epoll variant makes fewer syscalls per request than go"
    );
    // 3 against about 5 per request, in every round.
    assert_eq!(syscalls.holds, Holds::Yes, "{syscalls:?}");
    let line = &syscalls.evidence[0];
    for part in [
        "per request, go against lt-writev: read 2.000 against 1.000",
        "epoll_pwait 1.000 against 1.000",
        "futex 1.000 against 0.000",
        "write 0.000 against 1.000; writev 1.000 against 0.000",
        "EAGAIN returns 1.000 against 0.100 (read 1.000 against 0.100)",
        "all syscalls 5.000 against 3.000",
        "syscalls per request 5.000 against 3.000, lt-writev / go 0.600×",
    ] {
        assert!(line.contains(part), "`{part}` missing from {line}");
    }
}

#[test]
fn eagain_returns_the_kernel_did_not_count_are_not_shown_as_zero() {
    let results = fixed_load(12.0, 5, false);
    let syscalls = claim_starting(
        &results,
        "the best built-in epoll variant makes fewer syscalls",
    );
    let line = &syscalls.evidence[0];
    assert!(
        line.contains(
            "EAGAIN returns not shown (the kernel did not count them for the external server)"
        ),
        "{line}"
    );
    assert!(!line.contains("EAGAIN returns 0"), "{line}");
}

#[test]
fn a_saturated_external_server_is_left_out_of_the_fixed_load_comparison() {
    let mut results = fixed_load(12.0, 5, true);
    results.cases[0].variants[2] = external("go", 20_000, 12.0, 5, true);
    let goal = claim_starting(&results, GOAL);
    assert_eq!(goal.holds, Holds::NotMeasured, "{goal:?}");
    assert!(
        goal.evidence[0].contains("left out, go completed 20000 of the 25000 req/s offered"),
        "{goal:?}"
    );
}

#[test]
fn each_external_server_gets_its_own_findings_in_every_case_it_ran() {
    let mut results = fixed_load(12.0, 5, true);
    results.cases.insert(
        0,
        case_with(
            PEER_CASES[0],
            None,
            vec![
                builtin("lt-writev", 1000, 9.0),
                external("tokio", 1000, 10.0, 5, true),
            ],
        ),
    );
    let claims: Vec<String> = super::findings(&results)
        .into_iter()
        .map(|f| f.claim)
        .collect();
    assert_eq!(claims.len(), 6, "{claims:?}");
    let tokio_goal = claim_starting(&results, &format!("{GOAL} is at most 0.95× tokio's"));
    assert_eq!(tokio_goal.holds, Holds::NotMeasured);
    assert_eq!(
        tokio_goal.evidence,
        ["no `fixed-load-25k-64conn` case with tokio"]
    );
    let tokio_cpu = claims
        .iter()
        .position(|c| c.ends_with("server CPU per request than tokio"));
    assert!(tokio_cpu.is_some(), "{claims:?}");
}

#[test]
fn the_goal_cites_the_perf_profiles_of_both_servers_when_the_run_has_them() {
    let mut results = fixed_load(9.0, 5, true);
    let goal = claim_starting(&results, GOAL);
    assert!(
        goal.evidence
            .iter()
            .any(|e| e.starts_with("no perf profile of `fixed-load-25k-64conn` in this run")),
        "{goal:?}"
    );

    // The captured lt-writev profile for the built-in, go refused.
    let mut profiles = fixture::cpu_profiles();
    for (profile, server) in profiles.iter_mut().zip(["lt-writev", "go"]) {
        profile.case = GOAL_CASE.into();
        profile.server = server.into();
    }
    results.cpu_profiles = profiles.clone();
    let goal = claim_starting(&results, GOAL);
    let table = profiles[0].table.as_ref().unwrap();
    let builtin = goal
        .evidence
        .iter()
        .find(|e| e.starts_with("perf profile of lt-writev at `fixed-load-25k-64conn`"))
        .unwrap_or_else(|| panic!("{goal:?}"));
    assert!(
        builtin.contains(&format!(
            "{:.1}% kernel, {:.1}% user space; top user-space symbols: `{}`",
            table.kernel_share_percent, table.user_share_percent, table.top_user_symbols[0].symbol
        )),
        "{builtin}"
    );
    assert!(
        goal.evidence.iter().any(|e| e.starts_with(
            "perf profile of go at `fixed-load-25k-64conn`: unavailable (`perf record` exited"
        )),
        "{goal:?}"
    );
    assert!(
        !goal
            .evidence
            .iter()
            .any(|e| e.starts_with("sampled user-space"))
    );

    // Both profiled: their user-space and kernel CPU per request side by side.
    let mut go = profiles[0].clone();
    go.server = "go".into();
    results.cpu_profiles = vec![profiles[0].clone(), go];
    let goal = claim_starting(&results, GOAL);
    let user = table.sampled_cpu_us_per_request * table.user_share_percent / 100.0;
    assert!(
        goal.evidence.iter().any(|e| e.starts_with(&format!(
            "sampled user-space CPU per request at `fixed-load-25k-64conn`: lt-writev {user:.2} µs against go {user:.2} µs"
        ))),
        "{goal:?}"
    );
}
