//! The one summary of a figure over repetitions, used by every module
//! that spreads figures (kept apart from `aggregate` so that those modules
//! do not depend on it, nor it on them).

use super::Spread;

/// Median, min, max and CV of `values` (all zero for no values).
pub fn spread(values: &[f64]) -> Spread {
    if values.is_empty() {
        return Spread::default();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let cv_percent = if n < 2 || mean == 0.0 {
        0.0
    } else {
        let variance = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        variance.sqrt() / mean.abs() * 100.0
    };
    Spread {
        median,
        min: sorted[0],
        max: sorted[n - 1],
        cv_percent,
        samples: n as u32,
    }
}
