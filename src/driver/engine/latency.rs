//! Latency histograms: one per driver thread, merged at the end, summarised
//! into a [`LatencySummary`].

use hdrhistogram::Histogram;

use crate::results::latency_curve::percentile_curve;
use crate::results::measurement::LatencySummary;

/// Largest latency recorded exactly: one hour. Longer ones are clamped
/// (a request that late has long been counted as unanswered anyway).
const HIGHEST_TRACKABLE_US: u64 = 3_600_000_000;
/// HdrHistogram precision: 3 significant figures (0.1% relative error).
const SIGNIFICANT_FIGURES: u8 = 3;

/// A histogram of latencies in µs.
pub(super) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_TRACKABLE_US, SIGNIFICANT_FIGURES)
        .expect("constant bounds are valid")
}

/// Records a latency given in ns, rounded to the nearest µs.
#[inline]
pub(super) fn record_ns(histogram: &mut Histogram<u64>, latency_ns: u64) {
    histogram.saturating_record(latency_ns.saturating_add(500) / 1000);
}

pub(super) fn summarize(histogram: &Histogram<u64>) -> LatencySummary {
    if histogram.is_empty() {
        return LatencySummary::default();
    }
    let at = |percentile: f64| histogram.value_at_quantile(percentile / 100.0) as f64;
    LatencySummary {
        samples: histogram.len(),
        mean_us: histogram.mean(),
        p50_us: at(50.0),
        p90_us: at(90.0),
        p99_us: at(99.0),
        p999_us: at(99.9),
        max_us: histogram.max() as f64,
        percentile_curve_us: percentile_curve(|p| {
            if p >= 100.0 {
                histogram.max() as f64
            } else {
                at(p)
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let mut histogram = new_histogram();
        for us in 1..=1000u64 {
            record_ns(&mut histogram, us * 1000);
        }
        let summary = summarize(&histogram);
        assert_eq!(summary.samples, 1000);
        assert_eq!(summary.p50_us, 500.0);
        assert_eq!(summary.p90_us, 900.0);
        assert_eq!(summary.p99_us, 990.0);
        assert_eq!(summary.max_us, 1000.0);
        assert!((summary.mean_us - 500.5).abs() < 1.0);
        let curve = &summary.percentile_curve_us;
        assert_eq!(curve.first().unwrap().0, 0.0);
        assert_eq!(*curve.last().unwrap(), (100.0, 1000.0));
        assert!(
            curve
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        );
        assert!(curve.iter().any(|&(p, _)| p > 99.9999 - 1e-3 && p < 100.0));
    }

    #[test]
    fn empty_histogram_gives_empty_summary() {
        assert_eq!(summarize(&new_histogram()), LatencySummary::default());
    }
}
