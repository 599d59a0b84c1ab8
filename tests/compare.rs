//! `compare`: ratios and verdicts on fixture result sets, the rule in the
//! output, and the command's file handling.

mod common;

use epoll_bench::commands::compare::{CompareArgs, run};
use epoll_bench::report::compare::{Better, Verdict, compare, compare_markdown, verdict};
use epoll_bench::report::export::{default_exporters, export_all};
use epoll_bench::results::ResultsFile;
use epoll_bench::results::effects::unpaired_interval;
use epoll_bench::server::variant::Variant;

/// B: lt-rw 1.5× as fast, lt-writev half as fast, et-rw 1 % faster (inside
/// the ±3 % repetition spread).
fn b_results() -> epoll_bench::results::ResultsFile {
    common::results_scaled(|variant, _| match variant {
        "lt-rw" => 1.5,
        "lt-writev" => 0.5,
        "et-rw" => 1.01,
        _ => 1.0,
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Geometric mean of a variant's per-repetition p50 latency.
fn p50_geometric_mean(results: &ResultsFile, case: &str, variant: &str) -> f64 {
    let v = results
        .variant_results()
        .find(|(c, v)| c.label == case && v.variant == variant)
        .unwrap()
        .1;
    let logs: Vec<f64> = v
        .repetitions
        .iter()
        .map(|r| r.measurement.as_ref().unwrap().latency.p50_us.ln())
        .collect();
    (logs.iter().sum::<f64>() / logs.len() as f64).exp()
}

#[test]
fn ratios_and_verdicts_per_variant_case_and_figure() {
    let comparison = compare(&common::results(), &b_results());
    let row = |case: &str, variant: &str, figure: &str| {
        comparison
            .row(case, variant, figure)
            .unwrap_or_else(|| panic!("no row {case} {variant} {figure}"))
    };
    // lt-rw: 39,844 → 59,766 req/s on one connection.
    let r = row("pingpong-64b-1conn", "lt-rw", "req/s");
    assert_eq!((r.a.median, r.b.median), (39844.0, 59766.0));
    // B/A is the ratio of geometric means: 1.5 when every repetition
    // scaled by 1.5 (up to rounding the request counts).
    assert!((r.ratio().unwrap() - 1.5).abs() < 1e-4, "{r:?}");
    let interval = r.interval.as_ref().unwrap();
    assert!(interval.ci_low > 1.0 && interval.ci_low < 1.5 && interval.ci_high > 1.5);
    assert_eq!(r.verdict, Verdict::Better);
    let r = row("pingpong-64b-1conn", "lt-rw", "MB/s");
    assert!((r.ratio().unwrap() - 1.5).abs() < 1e-4, "{r:?}");
    // Latency went down: better, i.e. faster. p50 20 → 13 µs (medians).
    let r = row("pingpong-64b-1conn", "lt-rw", "p50 µs");
    assert_eq!((r.a.median, r.b.median), (20.0, 13.0));
    let expected = p50_geometric_mean(&b_results(), "pingpong-64b-1conn", "lt-rw")
        / p50_geometric_mean(&common::results(), "pingpong-64b-1conn", "lt-rw");
    assert!(close(r.ratio().unwrap(), expected), "{r:?} {expected}");
    assert_eq!(r.verdict, Verdict::Better);
    // Same syscalls and CPU per request: no change.
    assert_eq!(
        row("pingpong-64b-1conn", "lt-rw", "syscalls/request").verdict,
        Verdict::NoChange
    );
    assert!(close(
        row("pingpong-64b-1conn", "lt-rw", "syscalls/request")
            .ratio()
            .unwrap(),
        1.0
    ));
    assert_eq!(
        row("size-sweep/16384", "lt-rw", "CPU µs/request").verdict,
        Verdict::NoChange
    );
    // Half the rate: slower.
    let r = row("size-sweep/1024", "lt-writev", "req/s");
    assert_eq!(r.verdict, Verdict::Worse);
    assert!((r.ratio().unwrap() - 0.5).abs() < 1e-4);
    // 1 % inside a ±3 % spread: no change.
    let r = row("pingpong-64b-64conn", "et-rw", "req/s");
    assert!((r.ratio().unwrap() - 1.01).abs() < 1e-3);
    assert_eq!(r.verdict, Verdict::NoChange);
    let interval = r.interval.as_ref().unwrap();
    assert!(
        interval.ci_low < 1.0 && interval.ci_high > 1.01,
        "{interval:?}"
    );
    // The failed variant is listed, not compared.
    assert!(
        comparison
            .row("pingpong-64b-1conn", "et-writev-shortread", "req/s")
            .is_none()
    );
    assert!(
        comparison.not_compared.contains(
            &"`pingpong-64b-1conn` / `et-writev-shortread`: failed in A and in B".to_string()
        ),
        "{:?}",
        comparison.not_compared
    );
    // 6 headline figures for each passed pair: 2 ping-pong cases × every
    // variant, less the failed one, and 24 in the size sweep.
    let passed_pairs = 2 * Variant::ALL.len() - 1 + 24;
    assert_eq!(comparison.rows.len(), passed_pairs * 6);
}

#[test]
fn verdict_follows_the_interval_and_needs_enough_repetitions() {
    let a = [90.0, 100.0, 110.0];
    let higher = unpaired_interval(&a, &[150.0, 160.0, 170.0]);
    assert_eq!(verdict(&higher, Better::Higher), Verdict::Better);
    assert_eq!(verdict(&higher, Better::Lower), Verdict::Worse);
    let lower = unpaired_interval(&a, &[50.0, 55.0, 60.0]);
    assert_eq!(verdict(&lower, Better::Lower), Verdict::Better);
    assert_eq!(verdict(&lower, Better::Higher), Verdict::Worse);
    // Overlapping repetitions: the interval holds 1.
    let same = unpaired_interval(&a, &[95.0, 105.0, 100.0]);
    assert_eq!(verdict(&same, Better::Higher), Verdict::NoChange);
    let too_few = unpaired_interval(&a, &[200.0, 200.0]);
    assert_eq!(
        verdict(&too_few, Better::Higher),
        Verdict::TooFewRepetitions
    );
    assert_eq!(
        too_few.unwrap_err(),
        "2 repetitions of B, at least 3 needed"
    );
}

#[test]
fn markdown_explains_the_rule_and_shows_the_cells() {
    let md = compare_markdown(&common::results(), "before", &b_results(), "after");
    assert!(
        md.contains("A verdict is given only when the interval excludes 1"),
        "{md}"
    );
    assert!(md.contains("## pingpong-64b-1conn"));
    assert!(md.contains("| variant | figure | A | B | B/A | 95% CI | verdict |"));
    assert!(
        md.contains("| lt-rw | req/s | 39,844 [38,649–41,039] | 59,766 [57,973–61,559] | 1.500× | 1.388–1.622 | **faster** |"),
        "{md}"
    );
    assert!(md.contains("| lt-rw | syscalls/request | 4.00 [4.00–4.00] | 4.00 [4.00–4.00] | 1.000× | 1.000–1.000 | no difference larger than ±0.0% |"), "{md}");
    assert!(md.contains("| lt-writev | req/s |"));
    assert!(md.contains("**slower**"));
    assert!(md.contains("## Not compared"));
    assert!(md.contains("- A: `before`: run started 2026-02-03T04:05:06Z, kernel 6.1.0-fixture"));
}

#[test]
fn command_writes_the_table_and_names_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    export_all(&a, &common::results(), &default_exporters()).unwrap();
    export_all(&b, &b_results(), &default_exporters()).unwrap();
    let out = dir.path().join("compare.md");
    run(CompareArgs {
        a: a.clone(),
        b: b.join("results.json"),
        out: Some(out.clone()),
    })
    .unwrap();
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.contains("| 1.500× | "), "{md}");
    assert!(md.contains(" | **faster** |"), "{md}");

    let missing = dir.path().join("nowhere");
    let err = run(CompareArgs {
        a: a.clone(),
        b: missing.clone(),
        out: None,
    })
    .unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    let err = run(CompareArgs {
        a,
        b: garbage.clone(),
        out: None,
    })
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&garbage.display().to_string()),
        "{message}"
    );
    assert!(message.contains("not a results file"), "{message}");
}

/// An idle-active run against one whose server holds half the resident
/// memory per connection (as pooled buffers, or another process layout,
/// would): `compare` gives the memory ratios and verdicts.
#[test]
fn memory_per_connection_is_compared_in_idle_active_cases() {
    use epoll_bench::results::aggregate::finish_variant;
    use epoll_bench::results::fixture;
    let run = |server_share: f64| {
        let mut case = fixture::idle_active_case(1000, 9000);
        let a = fixture::idle_active_variant("lt-writev", &case, 10.0, 200.0);
        let mut reps = a.repetitions.clone();
        for r in &mut reps {
            let whole = r.server_memory.as_mut().unwrap().whole.as_mut().unwrap();
            whole.server_rss_per_connection_bytes *= server_share;
        }
        case.variants = vec![finish_variant(&"lt-writev".into(), 3, reps, None)];
        fixture::results_with_cases(vec![case])
    };
    let comparison = compare(&run(1.0), &run(0.5));
    let label = "idle-scale-1000-active/9000idle";
    let server = comparison
        .row(label, "lt-writev", "server RSS B/connection")
        .expect("a server memory row");
    assert!(close(server.ratio().unwrap(), 0.5), "{server:?}");
    assert_eq!(server.verdict, Verdict::Better);
    let kernel = comparison
        .row(label, "lt-writev", "kernel B/connection")
        .expect("a kernel memory row");
    let expected = fixture::KERNEL_TCP_MEM_BYTES + fixture::KERNEL_SLAB_BYTES;
    assert!(close(kernel.a.median, expected), "{kernel:?}");
    assert!(close(kernel.ratio().unwrap(), 1.0), "{kernel:?}");
    assert_eq!(kernel.verdict, Verdict::NoChange);
}
