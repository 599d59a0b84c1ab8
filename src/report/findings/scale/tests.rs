use super::*;
use crate::results::CaseResult;
use crate::results::aggregate::finish_variant;
use crate::results::effects::unpaired_interval;
use crate::results::fixture::{self, ScaleRepetition};

const IDLE_COUNTS: [u32; 3] = [9_000, 49_000, 99_000];
const ACTIVE: u32 = 1_000;
/// Server CPU per request of lt-writev at the fewest and the most
/// connections (linear in between), and et-writev's share more.
const LT_CPU_US: (f64, f64) = (10.0, 12.0);
const ET_SHARE: f64 = 1.2;

fn lt_cpu_at(i: usize) -> f64 {
    LT_CPU_US.0 + (LT_CPU_US.1 - LT_CPU_US.0) * i as f64 / 2.0
}

/// The curve: lt-writev and et-writev at 10k, 50k and 100k connections.
fn curve_cases() -> Vec<CaseResult> {
    IDLE_COUNTS
        .iter()
        .enumerate()
        .map(|(i, idle)| {
            let mut case = fixture::idle_active_case(ACTIVE, *idle);
            let cpu = lt_cpu_at(i);
            case.variants = vec![
                fixture::idle_active_variant("lt-writev", &case, cpu, 200.0 + 10.0 * i as f64),
                fixture::idle_active_variant("et-writev", &case, cpu * ET_SHARE, 210.0),
            ];
            case
        })
        .collect()
}

fn claim<'a>(findings: &'a [Finding], start: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.claim.starts_with(start))
        .unwrap_or_else(|| panic!("a claim starting `{start}` in {findings:#?}"))
}

fn kib(bytes: f64) -> String {
    format!("{:.2} KiB", bytes / 1024.0)
}

#[test]
fn a_run_without_idle_active_cases_at_scale_gets_no_scale_findings() {
    assert!(findings(&fixture::results()).is_empty());
    // The reference run's idle-scale cases predate memory whole and the
    // worker ramp: nothing at scale to state.
    let mut case = fixture::idle_active_case(16, 1000);
    let mut variant = fixture::idle_active_variant("lt-rw", &case, 10.0, 200.0);
    for r in &mut variant.repetitions {
        r.server_memory.as_mut().unwrap().whole = None;
        r.measurement.as_mut().unwrap().scale_out = None;
    }
    case.variants = vec![variant];
    assert!(findings(&fixture::results_with_cases(vec![case])).is_empty());
}

#[test]
fn memory_per_connection_is_stated_by_variant_and_count() {
    let results = fixture::results_with_cases(curve_cases());
    let all = findings(&results);
    let memory = claim(&all, "every passed idle-active result measured");
    assert_eq!(memory.holds, Holds::Yes, "{memory:?}");
    assert!(
        memory.claim.ends_with("kernel; pooled buffers)"),
        "{memory:?}"
    );
    assert_eq!(
        memory.evidence[0],
        "pooled buffers; server processes: 1 (kernel figures are machine-wide: both ends of \
         each loopback connection)"
    );
    let connections = 10_000.0;
    let server =
        (fixture::IDLE_RSS_BYTES * 9_000.0 + fixture::ACTIVE_RSS_BYTES * 1_000.0) / connections;
    let kernel = fixture::KERNEL_TCP_MEM_BYTES + fixture::KERNEL_SLAB_BYTES;
    assert_eq!(
        memory.evidence[1],
        format!(
            "`idle-scale-1000-active/9000idle` (10,000 connections: 1,000 active, 9,000 idle), \
             lt-writev: server user space {} (2 processes), driver user space {}, kernel {} \
             (TCP buffers {} + slab {}) per connection (median of 3 passed repetitions over \
             10,000 connections held)",
            kib(server),
            kib(fixture::DRIVER_RSS_BYTES),
            kib(kernel),
            kib(fixture::KERNEL_TCP_MEM_BYTES),
            kib(fixture::KERNEL_SLAB_BYTES)
        )
    );
}

#[test]
fn the_slope_over_idle_counts_gives_the_cost_per_idle_and_per_active_connection() {
    let results = fixture::results_with_cases(curve_cases());
    let all = findings(&results);
    let slope = claim(&all, "an idle connection costs the server less");
    assert_eq!(slope.holds, Holds::Yes, "{slope:?}");
    let total = |idle: f64| fixture::IDLE_RSS_BYTES * idle + fixture::ACTIVE_RSS_BYTES * 1000.0;
    let mib = |bytes: f64| format!("{:.1} MiB", bytes / (1024.0 * 1024.0));
    assert_eq!(
        slope.evidence[0],
        format!(
            "lt-writev, 1,000 active: server RSS growth {} at 9,000 idle and {} at 99,000 idle \
             (per connection × connections held): {:.2} KiB per idle connection (Δ total / Δ \
             idle), {:.2} KiB per active connection ((total − per idle × idle) / active)",
            mib(total(9_000.0)),
            mib(total(99_000.0)),
            fixture::IDLE_RSS_BYTES / 1024.0,
            fixture::ACTIVE_RSS_BYTES / 1024.0
        )
    );
    let pooled = claim(&all, "a pooled idle connection costs at most 4 KiB");
    assert_eq!(pooled.holds, Holds::Yes, "{pooled:?}");
    assert_eq!(
        pooled.evidence[1],
        format!(
            "et-writev, 1,000 active: {:.2} KiB per idle connection (slope from 9,000 to 99,000 \
             idle)",
            fixture::IDLE_RSS_BYTES / 1024.0
        )
    );
}

#[test]
fn without_pooled_buffers_or_a_second_idle_count_the_claims_are_not_measured() {
    let mut results = fixture::results_with_cases(vec![curve_cases().remove(2)]);
    results.run.settings.server_buffers = Some(BufferPolicy::PerConnection);
    let all = findings(&results);
    let pooled = claim(&all, "a pooled idle connection");
    assert_eq!(pooled.holds, Holds::NotMeasured, "{pooled:?}");
    assert_eq!(
        pooled.evidence,
        [
            "this run's servers did not pool their buffers (per-connection buffers); `run \
          --buffers pooled` measures it"
        ]
    );
    let slope = claim(&all, "an idle connection costs the server less");
    assert_eq!(slope.holds, Holds::NotMeasured, "{slope:?}");
    assert_eq!(
        slope.evidence,
        [
            "no variant measured memory at two idle counts with the same active count (idle \
          counts run: 99,000)"
        ]
    );
    let curve = claim(&all, "idle connections raise lt-writev's");
    assert_eq!(curve.holds, Holds::NotMeasured, "{curve:?}");
    assert_eq!(curve.evidence[0], "passed at 1 connection count: no curve");
}

#[test]
fn a_passed_result_without_memory_whole_is_named() {
    let mut cases = curve_cases();
    let lt = &mut cases[0].variants[0];
    for r in &mut lt.repetitions {
        r.server_memory.as_mut().unwrap().whole = None;
    }
    let results = fixture::results_with_cases(cases);
    let all = findings(&results);
    let memory = claim(&all, "every passed idle-active result measured");
    assert_eq!(memory.holds, Holds::No, "{memory:?}");
    assert!(
        memory.evidence.contains(
            &"`idle-scale-1000-active/9000idle` (10,000 connections: 1,000 active, 9,000 idle), \
          lt-writev: passed without memory per connection, whole"
                .to_string()
        )
    );
}

#[test]
fn the_curve_states_each_figure_from_fewest_to_most_connections() {
    let mut cases = curve_cases();
    // The driver was busy the whole window at 100k for lt-writev.
    let lt = &cases[2].variants[0];
    let mut reps = lt.repetitions.clone();
    for r in &mut reps {
        r.measurement
            .as_mut()
            .unwrap()
            .driver_usage
            .cpu_user_seconds = 0.99;
    }
    cases[2].variants[0] = finish_variant(&"lt-writev".into(), 3, reps, None);
    let results = fixture::results_with_cases(cases);
    let all = findings(&results);
    let curve = claim(&all, "idle connections raise lt-writev's server CPU");
    assert_eq!(
        curve.claim,
        "idle connections raise lt-writev's server CPU per active request (1,000 active, \
         10,000 to 100,000 connections)"
    );
    assert_eq!(curve.holds, Holds::Yes, "{curve:?}");
    // Medians are the middle repetition's (+1%); the interval is over all
    // three at each end.
    let cpu = |base: f64| [0.0, 0.01, 0.02].map(|step| base * (1.0 + step));
    let interval = unpaired_interval(&cpu(LT_CPU_US.0), &cpu(LT_CPU_US.1)).unwrap();
    assert_eq!(
        curve.evidence[0],
        format!(
            "server CPU µs per request: {:.3} at 10,000 → {:.3} at 50,000 → {:.3} at 100,000; \
             100,000 against 10,000: {}",
            lt_cpu_at(0) * 1.01,
            lt_cpu_at(1) * 1.01,
            lt_cpu_at(2) * 1.01,
            super::super::ratio_text(Some(&interval))
        )
    );
    // The fixture's server waits once per request for two events.
    assert!(
        curve.evidence[1]
            .starts_with("epoll_wait calls per request: 1.000 at 10,000 → 1.000 at 50,000"),
        "{curve:?}"
    );
    assert!(
        curve.evidence[2].starts_with("events per wake-up: 2.00 at 10,000"),
        "{curve:?}"
    );
    assert!(
        curve.evidence[3].starts_with(
            "p99 latency µs of the active set: 200 at 10,000 → 210 at 50,000 → 220 at 100,000"
        ),
        "{curve:?}"
    );
    assert!(
        curve.evidence[4].starts_with(
            "`idle-scale-1000-active/99000idle` (100,000 connections: 1,000 active, 99,000 \
             idle), lt-writev: driver-bound: the driver was saturated (busy 99% of the window)"
        ),
        "{curve:?}"
    );
}

#[test]
fn et_against_lt_is_paired_at_each_count() {
    let results = fixture::results_with_cases(curve_cases());
    let all = findings(&results);
    let et = claim(
        &all,
        "ET's drain costs more server CPU per request than LT with idle",
    );
    assert_eq!(
        et.claim,
        "ET's drain costs more server CPU per request than LT with idle connections held (writev)"
    );
    assert_eq!(et.holds, Holds::Yes, "{et:?}");
    assert_eq!(et.evidence.len(), 3);
    let expected_cpu = format!(
        "server CPU µs per request {:.3} against {:.3}, {ET_SHARE:.3}×",
        lt_cpu_at(0) * 1.01 * ET_SHARE,
        lt_cpu_at(0) * 1.01
    );
    assert!(
        et.evidence[0].starts_with(&format!(
            "`idle-scale-1000-active/9000idle` (10,000 connections: 1,000 active, 9,000 idle), \
             et-writev against lt-writev: {expected_cpu}"
        )),
        "{et:?}"
    );
    assert!(
        et.evidence[0].contains("; p99 latency µs 210 against 200, 1.050×"),
        "{et:?}"
    );
    // Without an LT/ET pair the claim is there, not measured.
    let mut cases = curve_cases();
    for c in &mut cases {
        c.variants.remove(1);
    }
    let all = findings(&fixture::results_with_cases(cases));
    let et = claim(
        &all,
        "ET's drain costs more server CPU per request than LT with idle",
    );
    assert_eq!(et.holds, Holds::NotMeasured, "{et:?}");
}

#[test]
fn a_short_million_connection_attempt_says_how_far_it_got_and_why() {
    let mut case = fixture::idle_active_case(ACTIVE, 999_000);
    let held = fixture::idle_active_repetition(ScaleRepetition {
        index: 0,
        requests: 1000,
        server_cpu_us: 10.0,
        p99_us: 300.0,
        active: u64::from(ACTIVE),
        idle_requested: 999_000,
        idle_held: 600_000,
    });
    case.variants = vec![finish_variant(
        &"et-writev".into(),
        2,
        vec![held, fixture::failed_repetition(1)],
        None,
    )];
    let mut cases = curve_cases();
    cases.push(case);
    let all = findings(&fixture::results_with_cases(cases));
    let attempt = claim(&all, "the 1,000,000-connection attempt");
    assert_eq!(
        attempt.claim,
        "the 1,000,000-connection attempt (`idle-scale-1000-active/999000idle`) held every \
         connection it asked for"
    );
    assert_eq!(attempt.holds, Holds::No, "{attempt:?}");
    let head = "`idle-scale-1000-active/999000idle` (1,000,000 connections: 1,000 active, \
                999,000 idle), et-writev, repetition";
    let memory = MemoryFigures::over(&[&fixture::whole_memory(1000, 601_000)])
        .unwrap()
        .text();
    assert_eq!(
        attempt.evidence,
        [
            format!(
                "{head} 0 (timing and counting): held 600,000 of 999,000 idle connections \
                 (+1,000 active) from 4 worker processes over 3 source addresses; ramp 300.0 s \
                 at 2000 connections/s; listen queue overflows 0, listen drops 0; stopped by: \
                 MemAvailable fell below 512 MiB; at 601,000 connections held: {memory}; \
                 measurement passed"
            ),
            format!(
                "{head} 1 (timing and counting): measurement failed (1 payload mismatch); no \
                 ramp figures recorded"
            ),
        ]
    );
    // The failed variant is named where its memory would be.
    let memory = claim(&all, "every passed idle-active result measured");
    assert!(
        memory
            .evidence
            .iter()
            .any(|l| l.ends_with("999,000 idle): et-writev failed (1 payload mismatch)")),
        "{memory:?}"
    );
}

#[test]
fn without_a_large_or_short_ramp_the_attempt_is_not_measured() {
    let all = findings(&fixture::results_with_cases(curve_cases()));
    let attempt = claim(&all, "every large or short connection ramp");
    assert_eq!(attempt.holds, Holds::NotMeasured, "{attempt:?}");
    assert_eq!(
        attempt.evidence,
        [
            "no idle-active case asked for 500,000 idle connections or more, and every ramp held \
          what it asked for"
        ]
    );
}

#[test]
fn a_cost_per_connection_that_grows_with_n_is_not_split_into_idle_and_active() {
    // A thread per connection: 14 KiB a connection at 10,000, 22 KiB at
    // 100,000, so the line through them has a negative active part.
    let (from, to) = (10_000.0 * 14.0 * 1024.0, 100_000.0 * 22.0 * 1024.0);
    let per_idle = (to - from) / 90_000.0;
    let slope = Slope {
        variant: "tpc-rw".into(),
        active: 1000,
        idle_from: 9000,
        idle_to: 99_000,
        total_from_bytes: from,
        total_to_bytes: to,
        per_idle_bytes: per_idle,
        per_active_bytes: (from - per_idle * 9000.0) / 1000.0,
    };
    let finding = idle_against_active(&[], &[slope]);
    assert_eq!(finding.holds, Holds::NotShown);
    assert!(
        finding.evidence[0].contains(
            "14.00 and 22.00 KiB per connection, so the cost per connection grows with N"
        ),
        "{:?}",
        finding.evidence
    );
}
