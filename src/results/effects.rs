//! Effects: what a reviewer cites. For every case, the comparisons the suite
//! exists for (ET against LT, short-read stopping against draining, writev
//! against rw, splice against writev, io_uring against LT epoll) as a ratio B/A with a 95% confidence
//! interval, for the figures in [`effect_figures`].
//!
//! The comparisons come from the variant axes ([`comparisons`]), not from a
//! list of names: two variants are compared when they differ in exactly one
//! axis, by one step along it. A new variant gets its comparisons without
//! an edit here.
//!
//! The estimator is the ratio of geometric means over repetitions,
//! `exp(mean(ln B) − mean(ln A))`. Why the geometric mean rather than the
//! ratio of arithmetic means: run-to-run drift on a shared machine
//! (frequency, steal, cache state) scales a repetition's figures, so it is
//! multiplicative and cancels in the log of a paired ratio; the estimate is
//! symmetric (A/B is exactly the inverse of B/A, so "ET costs 4% more" and
//! "LT saves 4%" come from one number); and for paired repetitions it *is*
//! the geometric mean of the per-repetition ratios, so one estimator serves
//! both [`paired_interval`] (effects within a run: repetition `i` of A with
//! repetition `i` of B, measured interleaved) and [`unpaired_interval`]
//! (`compare A B`: two runs, nothing to pair).
//!
//! The interval is Student's t on the logs: for paired repetitions the
//! one-sample t interval of the mean per-pair log-ratio, for `compare`
//! Welch's interval of the difference of mean logs; exponentiated, it is an
//! interval of the ratio. Why t and not a bootstrap: runs have few
//! repetitions, and a percentile bootstrap over 3 pairs can be no wider
//! than the range of the 3 ratios it resamples, which covers the true ratio
//! far less often than 95%; t's quantile (4.30 at 3 pairs, 2.26 at 10)
//! charges the small sample what it costs, so a narrow interval has to be
//! earned with repetitions (`run --precision`). [`MIN_REPETITIONS`] is the
//! floor below which no number is given at all. The intervals are exact
//! arithmetic on the stored figures: the same results give the same
//! intervals everywhere.
//!
//! Failed variant results never produce a number: their effects say "not
//! enough data" and why.

use std::collections::BTreeMap;

use serde::Serialize;

use super::aggregate::summarize;
use super::figures::{Better, FIGURES, Figure};
use super::workload::Shape;
use super::{CaseResult, ResultsFile, Status, Summary, VariantResult};
use crate::server::variant::Variant;

/// Repetitions (pairs, or per side when unpaired) below which an effect is
/// "not enough data".
pub const MIN_REPETITIONS: usize = 3;
/// Coverage of the intervals.
pub const CONFIDENCE_PERCENT: f64 = 95.0;

use axes::axis_label;
pub use axes::{Axis, comparisons};

/// Two variants of one case, compared as B/A.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub axis: Axis,
    /// A, e.g. `lt-rw`.
    pub baseline_variant: String,
    /// B, e.g. `et-rw`.
    pub variant: String,
    /// How verdicts name A and B on the axis, e.g. `LT` and `ET`.
    pub baseline_label: String,
    pub variant_label: String,
}

impl Comparison {
    fn of(axis: Axis, a: Variant, b: Variant) -> Comparison {
        Comparison {
            axis,
            baseline_variant: a.name(),
            variant: b.name(),
            baseline_label: axis_label(axis, a),
            variant_label: axis_label(axis, b),
        }
    }

    /// `B / A`, e.g. `et-rw / lt-rw`.
    pub fn name(&self) -> String {
        format!("{} / {}", self.variant, self.baseline_variant)
    }
}

/// A ratio B/A with its 95% interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RatioInterval {
    /// B over A: the ratio of geometric means over repetitions.
    pub ratio: f64,
    /// Lower bound of the [`CONFIDENCE_PERCENT`] interval of the ratio.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Half the interval's width relative to the ratio, percent: the
    /// precision of the effect.
    pub ci_half_width_percent: f64,
    /// Repetitions behind the interval: pairs, or the smaller side when
    /// unpaired.
    pub repetitions: u32,
}

/// What an interval says about B against A.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The interval lies above 1.
    Higher,
    /// The interval lies below 1.
    Lower,
    /// The interval contains 1.
    NoDifference,
}

impl RatioInterval {
    pub fn change(&self) -> Change {
        if self.ci_low > 1.0 {
            Change::Higher
        } else if self.ci_high < 1.0 {
            Change::Lower
        } else {
            Change::NoDifference
        }
    }

    /// The largest deviation of the interval's bounds from 1, percent: no
    /// difference larger than this is compatible with the data.
    pub fn largest_deviation_percent(&self) -> f64 {
        (self.ci_low - 1.0).abs().max((self.ci_high - 1.0).abs()) * 100.0
    }

    /// Whether B is better than A beyond the interval (`None`: no
    /// difference).
    pub fn b_is_better(&self, better: Better) -> Option<bool> {
        match (self.change(), better) {
            (Change::NoDifference, _) => None,
            (Change::Higher, Better::Higher) | (Change::Lower, Better::Lower) => Some(true),
            _ => Some(false),
        }
    }
}

/// Why there is no interval.
pub type NotEnoughData = String;

fn checked_logs(values: &[f64], side: &str) -> Result<Vec<f64>, NotEnoughData> {
    if values.len() < MIN_REPETITIONS {
        return Err(format!(
            "{} repetition{} of {side}, at least {MIN_REPETITIONS} needed",
            values.len(),
            if values.len() == 1 { "" } else { "s" }
        ));
    }
    values
        .iter()
        .map(|v| {
            if v.is_finite() && *v > 0.0 {
                Ok(v.ln())
            } else {
                Err(format!("{side} has a repetition at {v}: no ratio"))
            }
        })
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample variance (n − 1 in the denominator).
fn variance(values: &[f64]) -> f64 {
    let m = mean(values);
    values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64
}

/// Two-sided 97.5% quantiles of Student's t for 1..=30 degrees of freedom.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// Student's t quantile for a 95% two-sided interval. Fractional degrees
/// of freedom (Welch) round down, which widens the interval; above 30 the
/// Cornish–Fisher expansion around the normal quantile is within 0.001.
fn t_quantile_95(degrees_of_freedom: f64) -> f64 {
    // The epsilon keeps an exact integer computed as 3.9999… at 4.
    let df = (degrees_of_freedom + 1e-9).floor().max(1.0);
    if df <= 30.0 {
        return T_975[df as usize - 1];
    }
    let z: f64 = 1.959_964;
    z + (z.powi(3) + z) / (4.0 * df)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * df * df)
}

/// The ratio interval from a log-ratio estimate and its standard error.
fn interval(log_estimate: f64, standard_error: f64, df: f64, repetitions: usize) -> RatioInterval {
    let half = t_quantile_95(df) * standard_error;
    let ratio = log_estimate.exp();
    let (ci_low, ci_high) = ((log_estimate - half).exp(), (log_estimate + half).exp());
    RatioInterval {
        ratio,
        ci_low,
        ci_high,
        ci_half_width_percent: (ci_high - ci_low) / 2.0 / ratio * 100.0,
        repetitions: repetitions as u32,
    }
}

/// B/A over paired repetitions (`a[i]` and `b[i]` measured in the same
/// round): the geometric mean of the per-pair ratios, and Student's t
/// interval of the mean per-pair log-ratio.
pub fn paired_interval(a: &[f64], b: &[f64]) -> Result<RatioInterval, NotEnoughData> {
    assert_eq!(a.len(), b.len(), "paired values come in pairs");
    let log_a = checked_logs(a, "A")?;
    let log_b = checked_logs(b, "B")?;
    let log_ratios: Vec<f64> = log_b.iter().zip(&log_a).map(|(b, a)| b - a).collect();
    let n = log_ratios.len() as f64;
    let standard_error = (variance(&log_ratios) / n).sqrt();
    Ok(interval(
        mean(&log_ratios),
        standard_error,
        n - 1.0,
        log_ratios.len(),
    ))
}

/// B/A over two independent sets of repetitions: the ratio of geometric
/// means, with Welch's t interval of the difference of mean logs.
pub fn unpaired_interval(a: &[f64], b: &[f64]) -> Result<RatioInterval, NotEnoughData> {
    let log_a = checked_logs(a, "A")?;
    let log_b = checked_logs(b, "B")?;
    let (na, nb) = (log_a.len() as f64, log_b.len() as f64);
    let (va, vb) = (variance(&log_a) / na, variance(&log_b) / nb);
    let standard_error = (va + vb).sqrt();
    // Welch–Satterthwaite; two exact sides (no spread at all) leave no
    // uncertainty to weigh, so any df gives the same zero-width interval.
    let df = if va + vb > 0.0 {
        (va + vb).powi(2) / (va * va / (na - 1.0) + vb * vb / (nb - 1.0))
    } else {
        na.min(nb) - 1.0
    };
    Ok(interval(
        mean(&log_b) - mean(&log_a),
        standard_error,
        df,
        log_a.len().min(log_b.len()),
    ))
}

/// The figures effects are given for, in the order reports show them:
/// `(registry name, headline)`. Headline effects are the ones a precision
/// target applies to. Bulk cases are judged by payload throughput instead
/// of requests per second.
pub fn effect_figures(shape: &Shape) -> [(&'static Figure, bool); 5] {
    let throughput = match shape {
        Shape::Bulk { .. } => "payload_megabytes_per_second",
        _ => "requests_per_second",
    };
    [
        (registry_figure("server_cpu_us_per_request"), true),
        (registry_figure(throughput), true),
        (registry_figure("p50_latency_us"), false),
        (registry_figure("p99_latency_us"), false),
        (registry_figure("syscalls_per_request_total"), false),
    ]
}

fn registry_figure(name: &str) -> &'static Figure {
    FIGURES
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("figure `{name}` is not in the registry"))
}

/// One figure's effect in one comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Effect {
    pub comparison: Comparison,
    /// Registry name of the figure, e.g. `server_cpu_us_per_request`.
    pub figure: &'static str,
    /// A headline effect: what a precision target applies to.
    pub headline: bool,
    /// `None`: not enough data ([`Effect::verdict`] says why).
    #[serde(flatten)]
    pub interval: Option<RatioInterval>,
    /// The sentence to cite.
    pub verdict: String,
}

/// Per-repetition figures of one variant result: its passed repetitions
/// by index, each summarised alone.
pub struct RepetitionFigures {
    by_index: BTreeMap<u32, Summary>,
}

impl RepetitionFigures {
    pub fn of(v: &VariantResult) -> RepetitionFigures {
        RepetitionFigures {
            by_index: v
                .repetitions
                .iter()
                .filter(|r| r.status == Status::Passed)
                .filter_map(|r| Some((r.index, summarize(std::slice::from_ref(r))?)))
                .collect(),
        }
    }

    /// `figure` in each passed repetition that has it, by index.
    pub fn values(&self, figure: &Figure) -> BTreeMap<u32, f64> {
        self.by_index
            .iter()
            .filter_map(|(i, s)| Some((*i, (figure.pick)(s)?.median)))
            .collect()
    }
}

fn failure(v: &VariantResult) -> Option<String> {
    // Validation guarantees a failed result has reasons.
    (v.status == Status::Failed)
        .then(|| format!("`{}` failed ({})", v.variant, v.failure_reasons.join("; ")))
}

/// The paired interval of `figure` between two variant results.
fn paired_effect(
    (a, a_figures): (&VariantResult, &RepetitionFigures),
    (b, b_figures): (&VariantResult, &RepetitionFigures),
    figure: &Figure,
) -> Result<RatioInterval, NotEnoughData> {
    if let Some(reason) = failure(a).or_else(|| failure(b)) {
        return Err(reason);
    }
    let a_values = a_figures.values(figure);
    let b_values = b_figures.values(figure);
    for (v, values) in [(a, &a_values), (b, &b_values)] {
        if values.is_empty() {
            return Err(format!("`{}` has no {} figures", v.variant, figure.name));
        }
    }
    paired_by_round(&a_values, &b_values)
}

/// The paired interval of B/A over the repetitions (by index) both sides
/// have a figure in.
pub fn paired_by_round(
    a: &BTreeMap<u32, f64>,
    b: &BTreeMap<u32, f64>,
) -> Result<RatioInterval, NotEnoughData> {
    let (pa, pb): (Vec<f64>, Vec<f64>) = a
        .iter()
        .filter_map(|(i, va)| Some((*va, *b.get(i)?)))
        .unzip();
    if pa.len() < MIN_REPETITIONS {
        return Err(format!(
            "{} paired repetition{}, at least {MIN_REPETITIONS} needed",
            pa.len(),
            if pa.len() == 1 { "" } else { "s" }
        ));
    }
    paired_interval(&pa, &pb)
}

/// Every effect of one case, in [`comparisons`] order, each with the
/// figures of [`effect_figures`]. Variants the case did not run have no
/// comparisons; variants that failed have effects without numbers.
pub fn case_effects(case: &CaseResult) -> Vec<Effect> {
    let present: Vec<(Variant, &VariantResult)> = case
        .variants
        .iter()
        // External servers (`drive --name`) have no axes: no comparisons.
        .filter_map(|v| Some((v.variant.builtin()?, v)))
        .collect();
    let variants: Vec<Variant> = present.iter().map(|(v, _)| *v).collect();
    let figures: Vec<RepetitionFigures> = present
        .iter()
        .map(|(_, v)| RepetitionFigures::of(v))
        .collect();
    let find = |variant: Variant| {
        let i = variants
            .iter()
            .position(|v| *v == variant)
            .expect("present");
        (present[i].1, &figures[i])
    };
    let mut out = Vec::new();
    for (axis, a, b) in comparisons(&variants) {
        let comparison = Comparison::of(axis, a, b);
        for (figure, headline) in effect_figures(&case.case.shape) {
            let interval = paired_effect(find(a), find(b), figure);
            out.push(Effect {
                verdict: verdict(&comparison, figure, &interval),
                comparison: comparison.clone(),
                figure: figure.name,
                headline,
                interval: interval.ok(),
            });
        }
    }
    out
}

/// The effects of one case.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseEffects {
    /// The case label, e.g. `pingpong-64b-64conn`.
    pub case: String,
    pub effects: Vec<Effect>,
}

/// Every case's effects, in the results' case order.
pub fn effects(results: &ResultsFile) -> Vec<CaseEffects> {
    results
        .cases
        .iter()
        .map(|case| CaseEffects {
            case: case.label.clone(),
            effects: case_effects(case),
        })
        .collect()
}

/// Formats a percentage as verdicts write it.
pub fn percent(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// How a verdict words an increase and a decrease of a figure:
/// `(verb, more, less, what)` reads "B costs 4.1% more server CPU per
/// request than A".
fn wording(figure: &Figure) -> (&'static str, &'static str, &'static str, &'static str) {
    match figure.name {
        "server_cpu_us_per_request" => ("costs", "more", "less", "server CPU per request"),
        "syscalls_per_request_total" => ("makes", "more", "fewer", "syscalls per request"),
        "requests_per_second" => ("serves", "more", "fewer", "requests per second"),
        "payload_megabytes_per_second" => ("moves", "more", "less", "payload per second"),
        "p50_latency_us" => ("has", "higher", "lower", "p50 latency"),
        "p99_latency_us" => ("has", "higher", "lower", "p99 latency"),
        _ => ("has", "higher", "lower", figure.name),
    }
}

/// How verdicts and charts name a figure, e.g. `server CPU per request`.
pub fn figure_phrase(figure: &Figure) -> &'static str {
    wording(figure).3
}

/// The sentence for one effect: a direction only when the interval
/// excludes 1, otherwise the largest difference the data leaves open.
pub fn verdict(
    comparison: &Comparison,
    figure: &Figure,
    interval: &Result<RatioInterval, NotEnoughData>,
) -> String {
    let interval = match interval {
        Ok(interval) => interval,
        Err(reason) => return format!("not enough data: {reason}"),
    };
    let (verb, more, less, what) = wording(figure);
    let (b, a) = (&comparison.variant_label, &comparison.baseline_label);
    // The change and its interval in the change's direction, percent.
    let (word, change, low, high) = match interval.change() {
        Change::NoDifference => {
            return format!(
                "no difference larger than ±{}%",
                percent(interval.largest_deviation_percent())
            );
        }
        Change::Higher => (
            more,
            interval.ratio - 1.0,
            interval.ci_low - 1.0,
            interval.ci_high - 1.0,
        ),
        Change::Lower => (
            less,
            1.0 - interval.ratio,
            1.0 - interval.ci_high,
            1.0 - interval.ci_low,
        ),
    };
    let ci = format!(
        "({CONFIDENCE_PERCENT:.0}% CI {}–{}%)",
        percent(low * 100.0),
        percent(high * 100.0)
    );
    let change = percent(change * 100.0);
    if figure.name == "server_cpu_us_per_request" && interval.change() == Change::Lower {
        // "ET saves 4.1% of LT's server CPU per request" reads better than
        // "costs 4.1% less".
        return format!("{b} saves {change}% of {a}'s {what} {ci}");
    }
    format!("{b} {verb} {change}% {word} {what} than {a} {ci}")
}

mod axes;
mod precision;
pub use precision::{HeadlinePrecision, headline_precision};

#[cfg(test)]
mod tests;
