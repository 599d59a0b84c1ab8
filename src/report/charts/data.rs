//! What the charts plot, taken from a results file: passed variant results
//! grouped by profile, size sweeps, connection-count series, and the splice
//! crossover. Pure functions over [`ResultsFile`], so the numbers a chart
//! shows can be checked without drawing it.

use std::collections::HashMap;

use crate::report::compare::Better;
use crate::results::{
    CaseResult, DriverBottleneck, ResultsFile, Spread, Status, Summary, VariantResult,
};
use crate::server::variant::{CopyMode, Variant, VariantName};

use super::style::variant_order;

/// A passed variant result and the case it belongs to.
#[derive(Clone, Copy, Debug)]
pub struct Passed<'a> {
    pub case: &'a CaseResult,
    pub variant: &'a VariantResult,
    pub summary: &'a Summary,
}

pub fn passed(case: &CaseResult) -> Vec<Passed<'_>> {
    let mut out: Vec<Passed> = case
        .variants
        .iter()
        .filter(|v| v.status == Status::Passed)
        .filter_map(|v| {
            v.summary.as_ref().map(|summary| Passed {
                case,
                variant: v,
                summary,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.variant.variant.report_order()).cmp(&b.variant.variant.report_order()));
    out
}

/// The cases that have a passed variant: the ones a chart can draw.
pub fn with_a_passed_variant<'a>(cases: &[&'a CaseResult]) -> Vec<&'a CaseResult> {
    cases
        .iter()
        .copied()
        .filter(|c| !passed(c).is_empty())
        .collect()
}

/// Cases by profile, profiles in order of first appearance, cases in file
/// order.
pub fn by_profile(results: &ResultsFile) -> Vec<(String, Vec<&CaseResult>)> {
    let mut out: Vec<(String, Vec<&CaseResult>)> = Vec::new();
    for case in &results.cases {
        match out.iter_mut().find(|(p, _)| *p == case.profile) {
            Some((_, cases)) => cases.push(case),
            None => out.push((case.profile.clone(), vec![case])),
        }
    }
    out
}

/// Failed variant results of the given cases, as `variant (case): reason`.
pub fn failures(cases: &[&CaseResult]) -> Vec<String> {
    let mut out = Vec::new();
    for case in cases {
        for v in &case.variants {
            if v.status == Status::Failed {
                out.push(format!(
                    "{} ({}): {}",
                    v.variant,
                    case.label,
                    v.failure_reasons.join("; ")
                ));
            }
        }
    }
    out
}

/// One line of a chart: a variant's median with min and max, at x values.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub variant: VariantName,
    /// `(x, spread)` sorted by x.
    pub points: Vec<(f64, Spread)>,
    /// The x values whose result was driver-bound (the driver saturated,
    /// the server not): what was measured there is the driver.
    pub driver_bound_x: Vec<f64>,
}

/// A figure against an x value over cases, one series per variant.
pub fn series_over(
    cases: &[(&CaseResult, f64)],
    figure: impl Fn(&Summary) -> Spread,
) -> Vec<Series> {
    series_of_available(cases, |s| Some(figure(s)))
}

/// [`series_over`] for a figure that some results lack (server figures
/// without a control interface): those points are left out, and variants
/// without any point have no series.
pub fn series_of_available(
    cases: &[(&CaseResult, f64)],
    figure: impl Fn(&Summary) -> Option<Spread>,
) -> Vec<Series> {
    let mut by_variant: HashMap<VariantName, Series> = HashMap::new();
    for (case, x) in cases {
        for p in passed(case) {
            let Some(value) = figure(p.summary) else {
                continue;
            };
            let series = by_variant
                .entry(p.variant.variant.clone())
                .or_insert_with(|| Series {
                    variant: p.variant.variant.clone(),
                    points: Vec::new(),
                    driver_bound_x: Vec::new(),
                });
            series.points.push((*x, value));
            if matches!(
                p.summary.driver_bottleneck(),
                Some(DriverBottleneck::DriverOnly { .. })
            ) {
                series.driver_bound_x.push(*x);
            }
        }
    }
    let order = variant_order(by_variant.keys());
    order
        .into_iter()
        .filter_map(|variant| by_variant.remove(&variant))
        .map(|mut series| {
            series.points.sort_by(|a, b| a.0.total_cmp(&b.0));
            series
        })
        .collect()
}

/// The sweep cases of a profile with their sizes, sorted by size, when
/// there are at least two sizes.
pub fn sweep<'a>(cases: &[&'a CaseResult]) -> Option<Vec<(&'a CaseResult, f64)>> {
    let mut out: Vec<(&CaseResult, f64)> = cases
        .iter()
        .filter_map(|c| c.case.sweep_size_bytes.map(|s| (*c, s as f64)))
        .collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    (out.len() >= 2).then_some(out)
}

/// Each series as a ratio to the best median, at the same x, among the
/// series `is_reference` picks (for MB/s: the fastest writev variant at
/// each size). Medians, minima and maxima are divided alike; x values where
/// no reference series was measured are left out.
pub fn relative_to_best(
    series: &[Series],
    is_reference: impl Fn(&VariantName) -> bool,
) -> Vec<Series> {
    let best_at = |x: f64| {
        series
            .iter()
            .filter(|s| is_reference(&s.variant))
            .filter_map(|s| s.points.iter().find(|(px, _)| *px == x))
            .map(|(_, sp)| sp.median)
            .filter(|m| *m > 0.0)
            .reduce(f64::max)
    };
    series
        .iter()
        .map(|s| Series {
            variant: s.variant.clone(),
            points: s
                .points
                .iter()
                .filter_map(|(x, sp)| {
                    let best = best_at(*x)?;
                    Some((
                        *x,
                        Spread {
                            median: sp.median / best,
                            min: sp.min / best,
                            max: sp.max / best,
                            ..*sp
                        },
                    ))
                })
                .collect(),
            driver_bound_x: s.driver_bound_x.clone(),
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// The cases of a profile that differ in connection count (not a size
/// sweep), sorted by count, when there are at least two counts: a
/// connections sweep.
pub fn connections_sweep<'a>(cases: &[&'a CaseResult]) -> Option<Vec<(&'a CaseResult, f64)>> {
    let mut out: Vec<(&CaseResult, f64)> = cases
        .iter()
        .filter(|c| c.case.sweep_size_bytes.is_none())
        .map(|c| (*c, c.case.connections as f64))
        .collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    out.dedup_by(|a, b| a.1 == b.1);
    (out.len() >= 2 && out.len() == cases.len()).then_some(out)
}

/// Where a splice variant starts to beat its read/write counterparts.
#[derive(Clone, Debug, PartialEq)]
pub struct Crossover {
    pub splice_variant: VariantName,
    /// The same-trigger rw/writev variants it was compared with.
    pub counterparts: Vec<VariantName>,
    /// The smallest measured size from which the splice variant's median
    /// is better than every counterpart's at that size and at every larger
    /// measured size.
    pub size_bytes: f64,
}

/// Splice crossovers over series against message size, `better` saying
/// which way the figure improves (MB/s: higher; server CPU per request:
/// lower). A splice variant without same-trigger counterparts, or that is
/// not ahead at the largest size, has none.
pub fn splice_crossovers(series: &[Series], better: Better) -> Vec<Crossover> {
    let ahead = |splice: f64, rival: f64| match better {
        Better::Higher => splice > rival,
        Better::Lower => splice < rival,
    };
    let parsed: Vec<(Variant, &Series)> = series
        .iter()
        .filter_map(|s| s.variant.builtin().map(|v| (v, s)))
        .collect();
    let mut out = Vec::new();
    for (splice, splice_series) in &parsed {
        if splice.copy != CopyMode::Splice {
            continue;
        }
        let counterparts: Vec<&(Variant, &Series)> = parsed
            .iter()
            .filter(|(v, _)| {
                v.backend == splice.backend
                    && v.copy != CopyMode::Splice
                    && !v.stops_on_short_read()
            })
            .collect();
        if counterparts.is_empty() {
            continue;
        }
        let mut crossover = None;
        // Walk sizes from the largest down while splice stays ahead.
        for (x, spread) in splice_series.points.iter().rev() {
            let rivals: Vec<f64> = counterparts
                .iter()
                .filter_map(|(_, s)| s.points.iter().find(|(px, _)| px == x))
                .map(|(_, s)| s.median)
                .collect();
            if rivals.is_empty() {
                continue;
            }
            if rivals.iter().all(|r| ahead(spread.median, *r)) {
                crossover = Some(*x);
            } else {
                break;
            }
        }
        if let Some(size_bytes) = crossover {
            out.push(Crossover {
                splice_variant: splice_series.variant.clone(),
                counterparts: counterparts
                    .iter()
                    .map(|(_, s)| s.variant.clone())
                    .collect(),
                size_bytes,
            });
        }
    }
    out
}

/// Groups of cases that differ only in connection count (same protocol,
/// shape and sizes), with at least two distinct counts: what a throughput
/// against connections chart can compare fairly.
pub fn connection_groups(results: &ResultsFile) -> Vec<Vec<(&CaseResult, f64)>> {
    let mut groups: Vec<(String, Vec<(&CaseResult, f64)>)> = Vec::new();
    for case in &results.cases {
        // A sweep's cases belong to the sweep's own chart.
        if passed(case).is_empty() || case.case.sweep_size_bytes.is_some() {
            continue;
        }
        let key =
            serde_json::json!([case.case.protocol, case.case.shape, case.case.sizes]).to_string();
        let entry = (case, case.case.connections as f64);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, cases)) => cases.push(entry),
            None => groups.push((key, vec![entry])),
        }
    }
    groups
        .into_iter()
        .map(|(_, mut cases)| {
            // Stable: of two cases with one count, the first in the file.
            cases.sort_by(|a, b| a.1.total_cmp(&b.1));
            cases.dedup_by(|a, b| a.1 == b.1);
            cases
        })
        .filter(|cases| cases.len() >= 2)
        .collect()
}

/// The highest percentile `samples` latency samples support: the one with
/// [`TAIL_SAMPLES_NEEDED`] samples above it, `100 × (1 − 10/N)`. Beyond it
/// a curve shows a handful of samples (257 samples reach 99.6 % with one),
/// not a tail. Never below the median, so a short repetition still shows it.
pub fn supported_percentile(samples: u64) -> f64 {
    let supported = 100.0 * (1.0 - TAIL_SAMPLES_NEEDED / samples.max(1) as f64);
    supported.max(50.0)
}

/// Samples above the highest percentile a curve is drawn to.
pub const TAIL_SAMPLES_NEEDED: f64 = 10.0;

/// A latency percentile curve: `(percentile, median µs, min µs, max µs)`
/// over repetitions, from the repetitions' HdrHistogram curves (or the
/// summary's percentiles when no curve was recorded), cut at the
/// [`supported_percentile`] of the repetition with the fewest samples.
pub fn latency_curve(p: &Passed) -> Vec<(f64, f64, f64, f64)> {
    let measured: Vec<_> = p
        .variant
        .repetitions
        .iter()
        .filter_map(|r| r.measurement.as_ref())
        .filter(|m| !m.latency.percentile_curve_us.is_empty())
        .collect();
    let curves: Vec<&Vec<(f64, f64)>> = measured
        .iter()
        .map(|m| &m.latency.percentile_curve_us)
        .collect();
    let cut = measured
        .iter()
        .map(|m| m.latency.samples)
        .min()
        .map_or(100.0, supported_percentile);
    if curves.is_empty() {
        let s = p.summary;
        return [
            (50.0, s.p50_latency_us),
            (90.0, s.p90_latency_us),
            (99.0, s.p99_latency_us),
            (99.9, s.p999_latency_us),
        ]
        .into_iter()
        .map(|(pct, sp)| (pct, sp.median, sp.min, sp.max))
        .collect();
    }
    // Percentiles present in every repetition's curve (curves share their
    // percentile steps; a shorter one only lacks the far tail).
    let mut out = Vec::new();
    for (pct, _) in curves[0].iter().filter(|(pct, _)| *pct <= cut + 1e-9) {
        let values: Vec<f64> = curves
            .iter()
            .filter_map(|c| {
                c.iter()
                    .find(|(q, _)| (q - pct).abs() < 1e-9)
                    .map(|(_, v)| *v)
            })
            .collect();
        if values.len() == curves.len() {
            let s = crate::results::aggregate::spread(&values);
            out.push((*pct, s.median, s.min, s.max));
        }
    }
    out
}

/// The "nines" transform of a percentile: 90 → 1, 99 → 2, 99.9 → 3.
/// 100 is capped at [`MAX_NINES`].
pub fn nines(percentile: f64) -> f64 {
    let rest = (1.0 - percentile / 100.0).max(10f64.powf(-MAX_NINES));
    (-rest.log10()).clamp(0.0, MAX_NINES)
}

/// Rightmost point of the nines axis (99.9999 %, and where 100 % is put).
pub const MAX_NINES: f64 = 6.0;

/// Server CPU µs per request of each passed repetition of a variant
/// result that has a server window, by repetition index.
pub fn server_cpu_by_repetition(variant: &VariantResult) -> Vec<(u32, f64)> {
    variant
        .repetitions
        .iter()
        .filter(|r| r.status == Status::Passed)
        .filter_map(|r| {
            let m = r.measurement.as_ref()?;
            let window = r.server_window.as_ref()?;
            let figures = crate::results::aggregate::server_figures(window, m.requests_completed);
            Some((r.index, figures.server_cpu_us_per_request()))
        })
        .collect()
}

/// Splice against writev by server CPU per request, for one trigger mode.
#[derive(Clone, Debug, PartialEq)]
pub struct BreakEven {
    pub splice_variant: VariantName,
    pub writev_variant: VariantName,
    /// `(size, spread of splice ÷ writev)` over repetitions paired by
    /// index (the two ran in the same repetition), sorted by size.
    pub ratios: Vec<(f64, Spread)>,
}

/// The splice ÷ writev server-CPU-per-request ratio against size, one per
/// trigger mode that has both a splice and a (draining) writev variant.
/// Below 1 splice is cheaper. Sizes where no repetition pairs are left out.
pub fn splice_writev_break_even(sweep: &[(&CaseResult, f64)]) -> Vec<BreakEven> {
    let mut out: Vec<BreakEven> = Vec::new();
    for (case, size) in sweep {
        let passed = passed(case);
        for splice in &passed {
            let Some(splice_v) = splice.variant.variant.builtin() else {
                continue;
            };
            if splice_v.copy != CopyMode::Splice {
                continue;
            }
            let writev = passed.iter().find(|p| {
                p.variant.variant.builtin().is_some_and(|v| {
                    v.backend == splice_v.backend
                        && v.copy == CopyMode::Writev
                        && !v.stops_on_short_read()
                })
            });
            let Some(writev) = writev else { continue };
            let writev_cpu = server_cpu_by_repetition(writev.variant);
            let ratios: Vec<f64> = server_cpu_by_repetition(splice.variant)
                .into_iter()
                .filter_map(|(i, s)| {
                    let (_, w) = writev_cpu.iter().find(|(j, _)| *j == i)?;
                    (*w > 0.0).then(|| s / w)
                })
                .collect();
            if ratios.is_empty() {
                continue;
            }
            let point = (*size, crate::results::aggregate::spread(&ratios));
            match out
                .iter_mut()
                .find(|b| b.splice_variant == splice.variant.variant)
            {
                Some(b) => b.ratios.push(point),
                None => out.push(BreakEven {
                    splice_variant: splice.variant.variant.clone(),
                    writev_variant: writev.variant.variant.clone(),
                    ratios: vec![point],
                }),
            }
        }
    }
    for b in &mut out {
        b.ratios.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out.sort_by(|a, b| {
        a.splice_variant
            .report_order()
            .cmp(&b.splice_variant.report_order())
    });
    out
}
