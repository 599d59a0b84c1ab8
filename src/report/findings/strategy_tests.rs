//! The zerocopy, thread-per-connection and file-strategy findings on
//! fixture results: each path (holds, does not hold, not shown, not
//! measured) with the text a reader gets.

use super::tests::claim_starting;
use super::*;
use crate::protocol::Protocol;
use crate::results::VariantResult;
use crate::results::aggregate::finish_variant;
use crate::results::fixture;
use crate::server::report::{ReportKind, ServerReport};

/// A passed variant with one round per value of `cpu_us` (server CPU per
/// request in that round).
fn rounds(name: &str, cpu_us: &[f64]) -> VariantResult {
    let reps = cpu_us
        .iter()
        .enumerate()
        .map(|(i, cpu)| fixture::repetition_with_server_cpu(i as u32, 1000, *cpu))
        .collect();
    finish_variant(&name.into(), cpu_us.len() as u32, reps, None)
}

/// Five rounds at about `cpu_us`, 1% apart.
fn steady(name: &str, cpu_us: f64) -> VariantResult {
    let values: Vec<f64> = (0..5)
        .map(|i| cpu_us * (1.0 + 0.01 * f64::from(i)))
        .collect();
    rounds(name, &values)
}

fn case_of(
    label: &str,
    protocol: Protocol,
    bytes: u32,
    variants: Vec<VariantResult>,
) -> CaseResult {
    let mut case = fixture::case(label, bytes);
    case.protocol = protocol;
    CaseResult {
        profile: case.profile.clone(),
        label: case.label.clone(),
        case,
        variants,
    }
}

fn with_cases(cases: Vec<CaseResult>) -> ResultsFile {
    let mut results = fixture::results();
    results.cases = cases;
    results
}

/// Results of the one 64-connection ping-pong case with `variants`.
fn pingpong_64(variants: Vec<VariantResult>) -> ResultsFile {
    with_cases(vec![case_of(
        "pingpong-64b-64conn",
        Protocol::Frame,
        64,
        variants,
    )])
}

fn all_text(f: &Finding) -> String {
    format!("{}\n{}", f.claim, f.evidence.join("\n"))
}

/// `f` has verdict `holds` and its claim and evidence contain every part.
fn assert_says(f: &Finding, holds: Holds, parts: &[&str]) {
    assert_eq!(f.holds, holds, "{f:?}");
    let text = all_text(f);
    for part in parts {
        assert!(text.contains(part), "`{part}` not in:\n{text}");
    }
}

// --- thread per connection ---

const TPC_64: &str = "thread per connection (tpc-rw) costs more server CPU per request than the \
                      best epoll variant at 64 connections";

fn tpc_case(tpc: VariantResult) -> ResultsFile {
    pingpong_64(vec![
        steady("lt-rw", 10.0),
        steady("et-writev", 9.0),
        steady("lt-splice", 11.0),
        tpc,
    ])
}

#[test]
fn tpc_is_set_against_the_cheapest_epoll_variant_with_throughput_and_p99() {
    let f = claim_starting(&tpc_case(steady("tpc-rw", 12.6)), TPC_64);
    assert_says(
        &f,
        Holds::Yes,
        &[
            "`pingpong-64b-64conn`, tpc-rw against et-writev (best epoll",
            "server CPU µs per request 12.852 against 9.180, 1.400×",
            "requests/s ",
            "p99 latency µs ",
        ],
    );
    // The cases this run did not have are named, not dropped.
    let thousand = claim_starting(
        &tpc_case(steady("tpc-rw", 12.6)),
        "thread per connection (tpc-rw) costs more server CPU per request than the best epoll \
         variant at 1,000 connections",
    );
    assert_eq!(thousand.holds, Holds::NotMeasured);
    assert_eq!(
        thousand.evidence,
        vec!["no `pingpong-64b-1000conn` case in this run"]
    );
}

#[test]
fn a_cheaper_tpc_contradicts_the_claim_and_a_noisy_one_does_not_show_it() {
    let cheaper = claim_starting(&tpc_case(steady("tpc-rw", 7.2)), TPC_64);
    assert_eq!(cheaper.holds, Holds::No, "{cheaper:?}");
    assert!(all_text(&cheaper).contains("0.800×"), "{cheaper:?}");
    // Against et-writev's 9.00, 9.09, 9.18, 9.27, 9.36: rounds on both
    // sides of it.
    let noisy = rounds("tpc-rw", &[9.9, 8.2, 10.0, 8.4, 9.6]);
    let f = claim_starting(&tpc_case(noisy), TPC_64);
    assert_eq!(f.holds, Holds::NotShown, "{f:?}");
}

#[test]
fn a_failed_or_absent_tpc_is_not_measured_and_says_why() {
    let mut failed = steady("tpc-rw", 12.0);
    failed.status = crate::results::Status::Failed;
    failed.failure_reasons = vec!["1 payload mismatch".into()];
    let f = claim_starting(&tpc_case(failed), TPC_64);
    assert_eq!(f.holds, Holds::NotMeasured);
    assert_eq!(
        f.evidence,
        vec!["`pingpong-64b-64conn`: tpc-rw failed (1 payload mismatch)"]
    );
    let without = pingpong_64(vec![steady("lt-rw", 10.0)]);
    let f = claim_starting(&without, TPC_64);
    assert_eq!(f.holds, Holds::NotMeasured);
    assert_eq!(f.evidence, vec!["`pingpong-64b-64conn` did not run tpc-rw"]);
}

// --- MSG_ZEROCOPY ---

const COPIED: &str = "the kernel copies MSG_ZEROCOPY sends anyway on this machine";
const ZC_CPU: &str = "MSG_ZEROCOPY costs more server CPU per request than writev";

/// `fixture::zerocopy_variant` (10 µs per request, every send completed)
/// with `copied` of every 100 completed sends copied by the kernel.
fn zerocopy(copied_per_100: u64) -> VariantResult {
    let template = fixture::zerocopy_variant(1000);
    let reps = template
        .repetitions
        .iter()
        .map(|rep| {
            let mut rep = rep.clone();
            let window = rep.server_window.as_ref().unwrap();
            let mut thread = window.threads[0].clone();
            thread.counters.zerocopy_copied_sends = 10 * copied_per_100;
            rep.server_window = Some(ServerReport::new(
                ReportKind::Snapshot,
                "lt-zerocopy".into(),
                Protocol::Frame,
                vec![thread],
            ));
            rep
        })
        .collect();
    finish_variant(&"lt-zerocopy".into(), 3, reps, None)
}

fn zerocopy_case(zc: VariantResult, writev_cpu_us: f64) -> ResultsFile {
    pingpong_64(vec![steady("lt-writev", writev_cpu_us), zc])
}

#[test]
fn zerocopy_on_loopback_reports_every_send_copied_and_where_it_would_pay() {
    let results = zerocopy_case(zerocopy(100), 8.0);
    assert_says(
        &claim_starting(&results, COPIED),
        Holds::Yes,
        &[
            "`pingpong-64b-64conn`, lt-zerocopy: per request 1.00 zerocopy sends",
            "copied anyway: 100.0% of completed sends (min 100.0%, max 100.0%, 3 windows)",
            "pays only where the NIC sends",
        ],
    );
    // 10 µs per request against writev's 8.00, 8.08, 8.16 in the same rounds
    // (its median over its five: 8.16).
    assert_says(
        &claim_starting(&results, ZC_CPU),
        Holds::Yes,
        &["lt-zerocopy against lt-writev: server CPU µs per request 10.000 against 8.160"],
    );
}

#[test]
fn a_send_the_kernel_did_not_copy_contradicts_the_claim() {
    let results = zerocopy_case(zerocopy(40), 12.0);
    let f = claim_starting(&results, COPIED);
    assert_says(
        &f,
        Holds::No,
        &[
            "copied anyway: 40.0%",
            "the kernel sent 60.0% of completed sends without a copy",
        ],
    );
    assert!(!all_text(&f).contains("pays only where"), "{f:?}");
    // Cheaper than writev here: the CPU claim does not hold either.
    assert_eq!(claim_starting(&results, ZC_CPU).holds, Holds::No);
}

#[test]
fn zerocopy_without_a_zerocopy_variant_or_its_writev_is_not_measured() {
    let none = zerocopy_case(steady("lt-rw", 10.0), 8.0);
    for start in [COPIED, ZC_CPU] {
        let f = claim_starting(&none, start);
        assert_eq!(f.holds, Holds::NotMeasured, "{f:?}");
        assert_eq!(
            f.evidence,
            vec!["no case ran a zerocopy variant (lt-zerocopy, et-zerocopy)"]
        );
    }
    let alone = pingpong_64(vec![zerocopy(100)]);
    let f = claim_starting(&alone, ZC_CPU);
    assert_eq!(f.holds, Holds::NotMeasured);
    assert_eq!(
        f.evidence,
        vec!["`pingpong-64b-64conn`, lt-zerocopy: lt-writev did not run in this case"]
    );
}

// --- file strategies ---

const SPLICE_FILE: &str = "lt-splice costs less server CPU per request than lt-rw serving a file, from a break-even \
     response size on";

/// A file-protocol size sweep where lt-rw costs 10 µs per request at every
/// size and lt-splice what `splice_cpu_us` gives per size.
fn file_sweep(points: &[(u32, f64)]) -> ResultsFile {
    with_cases(
        points
            .iter()
            .map(|(bytes, splice_cpu_us)| {
                case_of(
                    &format!("file-sweep/{bytes}B"),
                    Protocol::File,
                    *bytes,
                    vec![steady("lt-rw", 10.0), steady("lt-splice", *splice_cpu_us)],
                )
            })
            .collect(),
    )
}

#[test]
fn the_file_break_even_is_the_smallest_size_cheaper_from_there_on() {
    let results = file_sweep(&[(1048576, 5.0), (4096, 12.0), (65536, 8.0)]);
    let f = claim_starting(&results, SPLICE_FILE);
    assert_eq!(f.claim, format!("{SPLICE_FILE}: from 64 KiB on"));
    assert_eq!(f.holds, Holds::Yes, "{f:?}");
    // Smallest size first, each with CPU and payload rate and intervals.
    assert!(
        f.evidence[0].starts_with(
            "4 KiB (`file-sweep/4096B`), lt-splice against lt-rw: server CPU µs per request \
             12.240 against 10.200, 1.200×"
        ),
        "{f:?}"
    );
    assert!(f.evidence[0].contains("; payload MB/s "), "{f:?}");
    assert!(f.evidence[2].starts_with("1 MiB"), "{f:?}");
}

#[test]
fn a_file_sweep_without_a_break_even_says_there_is_none() {
    // Cheaper at 64 KiB, but the largest size's rounds straddle rw's.
    let mut results = file_sweep(&[(4096, 12.0), (65536, 8.0), (1048576, 10.0)]);
    results.cases[2].variants[1] = rounds("lt-splice", &[10.9, 9.3, 10.8, 9.5, 10.2]);
    let f = claim_starting(&results, SPLICE_FILE);
    assert_eq!(f.claim, SPLICE_FILE);
    assert_eq!(f.holds, Holds::No, "{f:?}");
    assert_eq!(
        f.evidence.last().unwrap(),
        "no response size from which lt-splice costs less than lt-rw at it and every larger size"
    );
}

#[test]
fn file_findings_without_file_cases_or_a_baseline_are_not_measured() {
    let frame = zerocopy_case(steady("lt-rw", 10.0), 8.0);
    let f = claim_starting(&frame, "a file-serving strategy costs less");
    assert_eq!(f.holds, Holds::NotMeasured);
    assert_eq!(f.evidence, vec!["no case of the file protocol in this run"]);
    let no_rw = with_cases(vec![case_of(
        "file-sweep/4096B",
        Protocol::File,
        4096,
        vec![steady("lt-splice", 8.0)],
    )]);
    let f = claim_starting(&no_rw, SPLICE_FILE);
    assert_eq!(f.holds, Holds::NotMeasured);
    assert_eq!(
        f.evidence,
        vec!["4 KiB (`file-sweep/4096B`): lt-rw did not run in this case"]
    );
}
