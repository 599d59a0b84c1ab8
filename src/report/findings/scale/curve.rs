//! How each variant's cost follows the connection count at one active
//! count: server CPU per request, `epoll_wait` calls per request, events
//! per wake-up and the active set's p99, from the fewest connections to the
//! most, with the ratio of the most against the fewest (different cases:
//! unpaired interval over repetitions); results the driver limited are
//! named. Then LT against ET at each count, for variants that differ only
//! by trigger mode (same case: paired by round).

use crate::results::effects::{Change, RepetitionFigures, unpaired_interval};
use crate::results::{Summary, VariantResult};
use crate::server::variant::{Backend, CopyMode, TriggerMode, Variant};

use super::super::pairing::{Paired, failed, figure, passed_summary};
use super::super::{Finding, Holds, SERVER_CPU, holds_from, ratio_text};
use super::{ScaleCase, thousands_u64};

/// The figures of the curve: registry name, how evidence names it, and
/// decimals.
const CURVE_FIGURES: [(&str, &str, usize); 4] = [
    (SERVER_CPU, "server CPU µs per request", 3),
    (
        "epoll_wait_calls_per_request",
        "epoll_wait calls per request",
        3,
    ),
    ("epoll_events_per_wakeup", "events per wake-up", 2),
    ("p99_latency_us", "p99 latency µs of the active set", 0),
];

pub(super) fn findings(cases: &[ScaleCase]) -> Vec<Finding> {
    let mut out: Vec<Finding> = groups(cases)
        .into_iter()
        .map(|(name, active, points)| curve(&name, active, &points))
        .collect();
    out.extend(lt_against_et(cases));
    out
}

/// One variant's results at one active count, by connection count.
type Points<'a> = Vec<(&'a ScaleCase<'a>, &'a VariantResult)>;

fn groups<'a>(cases: &'a [ScaleCase<'a>]) -> Vec<(String, u32, Points<'a>)> {
    let mut out: Vec<(String, u32, Points<'a>)> = Vec::new();
    for c in cases {
        for result in &c.case.variants {
            let name = result.variant.to_string();
            match out
                .iter_mut()
                .find(|(v, a, _)| *v == name && *a == c.active)
            {
                Some((_, _, points)) => points.push((c, result)),
                None => out.push((name, c.active, vec![(c, result)])),
            }
        }
    }
    for (_, _, points) in &mut out {
        points.sort_by_key(|(c, _)| c.connections());
    }
    out
}

fn curve(name: &str, active: u32, points: &[(&ScaleCase, &VariantResult)]) -> Finding {
    let passed: Vec<(&ScaleCase, &VariantResult, &Summary)> = points
        .iter()
        .filter_map(|(c, r)| Some((*c, *r, passed_summary(r)?)))
        .collect();
    let mut evidence = Vec::new();
    let mut change = None;
    let span = match (passed.first(), passed.last()) {
        (Some(few), Some(many)) if few.0.connections() < many.0.connections() => {
            Some((*few, *many))
        }
        _ => None,
    };
    let claim = format!(
        "idle connections raise {name}'s server CPU per active request ({} active{})",
        thousands_u64(u64::from(active)),
        span.map_or(String::new(), |(few, many)| format!(
            ", {} to {} connections",
            thousands_u64(few.0.connections()),
            thousands_u64(many.0.connections())
        ))
    );
    for (registry_name, what, digits) in CURVE_FIGURES {
        let f = figure(registry_name);
        let series: Vec<String> = passed
            .iter()
            .map(|(c, _, s)| {
                let value = (f.pick)(s).map_or("not measured".to_string(), |v| {
                    format!("{:.digits$}", v.median)
                });
                format!("{value} at {}", thousands_u64(c.connections()))
            })
            .collect();
        let mut line = format!("{what}: {}", series.join(" → "));
        if let Some((few, many)) = span {
            let values = |r: &VariantResult| -> Vec<f64> {
                RepetitionFigures::of(r).values(f).into_values().collect()
            };
            let interval = unpaired_interval(&values(few.1), &values(many.1));
            let ratio = match &interval {
                Ok(i) => ratio_text(Some(i)),
                Err(why) => format!("no interval ({why})"),
            };
            line.push_str(&format!(
                "; {} against {}: {ratio}",
                thousands_u64(many.0.connections()),
                thousands_u64(few.0.connections())
            ));
            if registry_name == SERVER_CPU {
                change = Some(interval.ok().map(|i| i.change()));
            }
        }
        evidence.push(line);
    }
    for (c, result, summary) in &passed {
        if let Some(bottleneck) = summary.driver_bottleneck() {
            evidence.push(format!(
                "{}, {}: driver-bound: {}",
                c.heading(),
                result.variant,
                bottleneck.describe()
            ));
        }
    }
    for (c, result) in points {
        if let Some(why) = failed(result) {
            evidence.push(format!("{}: {why}", c.heading()));
        }
    }
    let holds = match change {
        Some(change) => holds_from(&[change], Change::Higher),
        None => {
            evidence.insert(
                0,
                format!(
                    "passed at {} connection count{}: no curve",
                    passed.len(),
                    if passed.len() == 1 { "" } else { "s" }
                ),
            );
            Holds::NotMeasured
        }
    };
    Finding {
        claim,
        holds,
        evidence,
    }
}

/// `(LT result, ET result)` of every case where an LT variant and the ET
/// variant that differs from it only by trigger mode both ran, by copy.
fn lt_against_et(cases: &[ScaleCase]) -> Vec<Finding> {
    let mut by_copy: Vec<(CopyMode, Vec<String>, Vec<Option<Change>>)> = Vec::new();
    for c in cases {
        for lt_result in &c.case.variants {
            let Some(lt) = lt_result.variant.builtin() else {
                continue;
            };
            if lt.backend != Backend::Epoll(TriggerMode::Level) {
                continue;
            }
            let et = Variant {
                backend: Backend::Epoll(TriggerMode::Edge),
                ..lt
            };
            let Some(et_result) = c
                .case
                .variants
                .iter()
                .find(|r| r.variant.builtin() == Some(et))
            else {
                continue;
            };
            let at = by_copy.iter().position(|(copy, _, _)| *copy == lt.copy);
            let (_, evidence, changes) = match at {
                Some(i) => &mut by_copy[i],
                None => {
                    by_copy.push((lt.copy, Vec::new(), Vec::new()));
                    by_copy.last_mut().expect("just pushed")
                }
            };
            let head = format!("{}, {et} against {lt}", c.heading());
            if let Some(why) = failed(lt_result).or_else(|| failed(et_result)) {
                evidence.push(format!("{head}: {why}"));
                continue;
            }
            let cpu = Paired::of(lt_result, et_result, SERVER_CPU);
            let p99 = Paired::of(lt_result, et_result, "p99_latency_us");
            changes.push(cpu.interval().map(|i| i.change()));
            evidence.push(format!(
                "{head}: {}; {}",
                cpu.text("server CPU µs per request", 3),
                p99.text("p99 latency µs", 0)
            ));
        }
    }
    if by_copy.is_empty() {
        return vec![Finding {
            claim: "ET's drain costs more server CPU per request than LT with idle connections \
                    held"
                .to_string(),
            holds: Holds::NotMeasured,
            evidence: vec![
                "no idle-active case ran an LT variant and the ET variant that differs from it \
                 only by trigger mode"
                    .to_string(),
            ],
        }];
    }
    by_copy
        .into_iter()
        .map(|(copy, evidence, changes)| Finding {
            claim: format!(
                "ET's drain costs more server CPU per request than LT with idle connections \
                 held ({})",
                copy.name()
            ),
            holds: holds_from(&changes, Change::Higher),
            evidence,
        })
        .collect()
}
