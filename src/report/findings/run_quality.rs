//! Findings about the run itself rather than the variants: what the driver
//! costs and whether it limited a result, how much CPU the host stole, and
//! what the instruments cost the server. Each reads the results file only.

use crate::protocol::Protocol;
use crate::results::effects::{Change, RepetitionFigures, paired_interval};
use crate::results::figures::FIGURES;
use crate::results::instrument_cost::InstrumentCost;
use crate::results::other_load;
use crate::results::{CaseResult, DriverBottleneck, ResultsFile, Status};

use super::{Finding, Holds, holds_from, not_measured, ratio_text};

/// Closed-loop ping-pong cases, where driver and server do mirror-image
/// work per request.
const PING_PONG_CASES: [&str; 2] = ["pingpong-64b-1conn", "pingpong-64b-64conn"];
/// The driver is meant to cost at most this share of the server's CPU per
/// request.
const DRIVER_SHARE_TARGET: f64 = 0.5;
/// A window that lost this share of a CPU to the host is flagged.
const STEAL_FLAG_PERCENT: f64 = 5.0;

/// Results the driver limited: their throughput is the driver's, not the
/// server's.
pub(super) fn driver_limits(results: &ResultsFile) -> Finding {
    let mut driver_only = Vec::new();
    let mut both = 0;
    let mut total = 0;
    for case in &results.cases {
        for v in &case.variants {
            let Some(s) = v.summary.as_ref().filter(|_| v.status == Status::Passed) else {
                continue;
            };
            total += 1;
            match s.driver_bottleneck() {
                Some(DriverBottleneck::DriverOnly { .. }) => {
                    driver_only.push(format!("`{}` {}", case.label, v.variant))
                }
                Some(_) => both += 1,
                None => {}
            }
        }
    }
    let mut evidence = vec![format!(
        "{} of {total} results: driver saturated, server not (their req/s measure the driver); \
         {both} more: both saturated (lower bounds for the server)",
        driver_only.len()
    )];
    if !driver_only.is_empty() {
        evidence.push(format!("driver alone: {}", driver_only.join(", ")));
    }
    Finding {
        claim: "no throughput figure of this run is set by the driver alone".into(),
        holds: if driver_only.is_empty() {
            Holds::Yes
        } else {
            Holds::No
        },
        evidence,
    }
}

/// Driver CPU per request against the server's in closed-loop ping-pong:
/// the range over variants, and the lt-rw and lt-writev ratios by name.
pub(super) fn driver_cost(results: &ResultsFile) -> Finding {
    let claim = format!(
        "the driver costs at most {:.0}% of the server's CPU per request (ping-pong)",
        DRIVER_SHARE_TARGET * 100.0
    );
    let mut evidence = Vec::new();
    let mut within = true;
    for case in ping_pong_cases(results) {
        let ratios: Vec<(String, f64)> = case
            .variants
            .iter()
            .filter(|v| v.status == Status::Passed)
            .filter_map(|v| {
                let ratio = v.summary.as_ref()?.driver_to_server_cpu_ratio?.median;
                Some((v.variant.to_string(), ratio))
            })
            .collect();
        let Some(low) = ratios.iter().map(|(_, r)| *r).reduce(f64::min) else {
            continue;
        };
        let high = ratios.iter().map(|(_, r)| *r).fold(low, f64::max);
        within &= high <= DRIVER_SHARE_TARGET;
        let named: Vec<String> = ratios
            .iter()
            .filter(|(name, _)| name == "lt-rw" || name == "lt-writev")
            .map(|(name, ratio)| format!("{name} {ratio:.2}"))
            .collect();
        evidence.push(format!(
            "`{}`: driver/server CPU per request {low:.2}–{high:.2} over {} variants ({})",
            case.label,
            ratios.len(),
            named.join(", ")
        ));
    }
    if evidence.is_empty() {
        return not_measured(claim, "no passed ping-pong case with driver and server CPU");
    }
    Finding {
        claim,
        holds: if within { Holds::Yes } else { Holds::No },
        evidence,
    }
}

/// rw answers with two segments and the client acknowledges each pair at
/// once; writev's one segment lets the ACK ride on the next request. The
/// driver's CPU per request against the two, paired by round.
pub(super) fn ack_cost(results: &ResultsFile) -> Finding {
    let claim =
        "rw's two-segment responses cost the driver more CPU per request than writev's one \
                 (LT)"
            .to_string();
    let figure = FIGURES
        .iter()
        .find(|f| f.name == "driver_cpu_us_per_request")
        .expect("driver CPU is a figure");
    let mut evidence = Vec::new();
    let mut verdicts = Vec::new();
    for case in ping_pong_cases(results) {
        let per_round = |name: &str| {
            let v = case
                .variants
                .iter()
                .find(|v| v.variant == name && v.status == Status::Passed)?;
            Some(RepetitionFigures::of(v).values(figure))
        };
        let (Some(rw), Some(writev)) = (per_round("lt-rw"), per_round("lt-writev")) else {
            continue;
        };
        let (a, b): (Vec<f64>, Vec<f64>) = rw
            .iter()
            .filter_map(|(i, a)| Some((*a, *writev.get(i)?)))
            .unzip();
        let median = |values: &[f64]| {
            let mut sorted = values.to_vec();
            sorted.sort_by(f64::total_cmp);
            sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
        };
        let interval = paired_interval(&a, &b).ok();
        verdicts.push(interval.map(|i| i.change()));
        evidence.push(format!(
            "`{}`: driver CPU per request against lt-rw {:.2} µs, against lt-writev {:.2} µs; \
             lt-writev / lt-rw {}",
            case.label,
            median(&a),
            median(&b),
            ratio_text(interval.as_ref())
        ));
    }
    if verdicts.is_empty() {
        return not_measured(claim, "no ping-pong case with both lt-rw and lt-writev");
    }
    let holds = holds_from(&verdicts, Change::Lower);
    Finding {
        claim,
        holds,
        evidence,
    }
}

fn ping_pong_cases(results: &ResultsFile) -> impl Iterator<Item = &CaseResult> {
    PING_PONG_CASES
        .iter()
        .filter_map(|label| results.cases.iter().find(|c| c.label == *label))
}

/// CPU steal over every measured window of the run.
pub(super) fn steal(results: &ResultsFile) -> Finding {
    let claim = format!(
        "the host took less than {STEAL_FLAG_PERCENT:.0}% of a CPU (steal) in every window"
    );
    let steal: Vec<f64> = results
        .cases
        .iter()
        .flat_map(|c| &c.variants)
        .flat_map(|v| &v.repetitions)
        .filter_map(|r| r.measurement.as_ref()?.cpu_steal_percent)
        .collect();
    if steal.is_empty() {
        return not_measured(claim, "no window recorded its steal");
    }
    let flagged = steal.iter().filter(|s| **s >= STEAL_FLAG_PERCENT).count();
    let mut sorted = steal.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let max = sorted[sorted.len() - 1];
    Finding {
        claim,
        holds: if flagged == 0 { Holds::Yes } else { Holds::No },
        evidence: vec![format!(
            "{flagged} of {} windows at {STEAL_FLAG_PERCENT:.0}% or more (up to two per case \
             were measured again, the stolen ones kept aside); median {median:.2}%, largest \
             {max:.1}%",
            steal.len()
        )],
    }
}

/// Processes other than the server and the driver, over every timed
/// window of the run ([`other_load`]).
pub(super) fn other_load(results: &ResultsFile) -> Finding {
    let flag = other_load::OTHER_LOAD_FLAG_PERCENT;
    let claim =
        format!("other processes took less than {flag:.0}% of the machine's CPU in every window");
    let windows = other_load::windows(results);
    if windows.is_empty() {
        return not_measured(
            claim,
            "no window recorded the machine's busy CPU time (results written before it was)",
        );
    }
    let mut sorted: Vec<f64> = windows.iter().map(|w| w.2).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let (case, variant, max) = windows
        .iter()
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .expect("not empty");
    let flagged = sorted.iter().filter(|p| **p >= flag).count();
    Finding {
        claim,
        holds: if flagged == 0 { Holds::Yes } else { Holds::No },
        evidence: vec![format!(
            "{flagged} of {} timed windows at {flag:.0}% or more; median {median:.1}%, largest \
             {max:.1}% (`{case}` {variant}); the machine's busy CPU time less the server's and \
             the driver's own",
            sorted.len()
        )],
    }
}

/// How many of the largest payload rates to name.
const TOP_RATES: usize = 3;

/// The run's highest payload rates against this machine's measured
/// loopback echo limit (the same bytes travel both ways in an echo; each
/// direction carries the payload in the frame protocol too): a figure
/// above the limit means one of the two measurements is wrong. File
/// protocol cases are left out: their payload crosses loopback one way,
/// from page-cache pages the kernel may send without a copy, so the echo
/// limit does not bound them.
pub(super) fn loopback_share(results: &ResultsFile) -> Finding {
    let claim =
        "no result moves payload faster than this machine's loopback echo limit".to_string();
    let Some(limits) = results.machine_limits.as_ref() else {
        return not_measured(claim, "no machine limits in this run (`run --no-limits`)");
    };
    let mut rates: Vec<(f64, &CaseResult, String)> = results
        .cases
        .iter()
        .filter(|case| case.case.protocol != Protocol::File)
        .flat_map(|case| {
            case.variants
                .iter()
                .filter(|v| v.status == Status::Passed)
                .filter_map(move |v| {
                    let rate = v.summary.as_ref()?.payload_megabytes_per_second.median * 1e6;
                    Some((rate, case, v.variant.to_string()))
                })
        })
        .collect();
    if rates.is_empty() {
        return not_measured(claim, "no passed frame or echo result");
    }
    rates.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut above = false;
    let evidence = rates
        .iter()
        .take(TOP_RATES)
        .map(|(rate, case, variant)| {
            let (limit, streams) = if case.case.connections > 1 {
                (
                    &limits.loopback_both_ways_n_streams_bytes_per_second,
                    format!("{} streams", limits.parallel_streams),
                )
            } else {
                (
                    &limits.loopback_both_ways_1_stream_bytes_per_second,
                    "1 stream".to_string(),
                )
            };
            above |= *rate > limit.max;
            format!(
                "`{}` {variant}: {:.2} GB/s each way, {:.0}% of the loopback echo limit ({streams}, \
                 median {:.2} GB/s, best trial {:.2} GB/s)",
                case.label,
                rate / 1e9,
                rate / limit.median * 100.0,
                limit.median / 1e9,
                limit.max / 1e9
            )
        })
        .collect();
    Finding {
        claim,
        holds: if above { Holds::No } else { Holds::Yes },
        evidence,
    }
}

/// What in-process counting and the kernel counters cost the server, from
/// the run's `instrument_cost` block.
pub(super) fn instrument_cost(results: &ResultsFile) -> Finding {
    let Some(cost) = results.instrument_cost.as_ref() else {
        return not_measured(
            "in-process syscall counting costs the server less than 1% of its CPU per request"
                .into(),
            "no instrument cost in this run (`run --instrument-cost`)",
        );
    };
    let claim = format!(
        "in-process syscall counting costs the server less than {:.0}% of its CPU per request",
        cost.timing_window_limit_percent
    );
    let counting = &cost.syscall_counting_cost_percent;
    let holds = if counting.max <= cost.timing_window_limit_percent {
        Holds::Yes
    } else if counting.min > cost.timing_window_limit_percent {
        Holds::No
    } else {
        Holds::NotShown
    };
    Finding {
        claim,
        holds,
        evidence: instrument_evidence(cost),
    }
}

fn instrument_evidence(cost: &InstrumentCost) -> Vec<String> {
    let load = format!(
        "{} at {:.0} req/s × {} connections × {} B, open loop, {} interleaved rounds",
        cost.variant,
        cost.offered_rate_per_second,
        cost.connections,
        cost.payload_bytes,
        cost.rounds
    );
    let counting = &cost.syscall_counting_cost_percent;
    let kernel = &cost.kernel_counters_cost_percent;
    vec![
        load,
        format!(
            "server CPU per request with in-process counting against none: median {} (rounds \
             {} to {})",
            signed(counting.median),
            signed(counting.min),
            signed(counting.max)
        ),
        format!(
            "kernel counters on top: median {} (rounds {} to {}), {:.2} µs per counted syscall \
             (timing repetitions run without them)",
            signed(kernel.median),
            signed(kernel.min),
            signed(kernel.max),
            cost.kernel_counters_cost_us_per_syscall
        ),
    ]
}

fn signed(value_percent: f64) -> String {
    format!("{value_percent:+.1}%")
}
