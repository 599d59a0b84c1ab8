use super::*;
use crate::protocol::Protocol;
use crate::results::aggregate::finish_variant;
use crate::results::fixture;
use crate::results::{Repetition, VariantResult};
use crate::server::report::{ReportKind, ServerReport};

/// A passed 1 s repetition completing `requests` with `cpu_us` of server
/// CPU per request.
fn repetition(index: u32, requests: u64, cpu_us: f64) -> Repetition {
    let mut rep = fixture::passed_repetition(index, requests, 64, 50.0);
    let mut thread = fixture::server_window(requests, 64, 1, 1).threads[0].clone();
    thread.usage.cpu_user_seconds = cpu_us * 1e-6 * requests as f64;
    thread.usage.cpu_system_seconds = 0.0;
    rep.server_window = Some(ServerReport::new(
        ReportKind::Snapshot,
        "lt-rw".into(),
        Protocol::Frame,
        vec![thread],
    ));
    rep
}

fn variant(name: &str, requests: u64, cpu_us: f64) -> VariantResult {
    let reps = (0..5)
        .map(|i| repetition(i, requests, cpu_us * (1.0 + 0.01 * f64::from(i))))
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
