//! The percentile curve of `LatencySummary::percentile_curve_us`, defined
//! once for every producer of latency summaries (the load engine's
//! histograms, the bench harness's raw samples, the test fixtures).

/// The curve's percentiles: 0, 50, 75, 87.5, … (halving the distance to 100
/// at each step) up to 99.9999, then 100.
pub fn curve_percentiles() -> Vec<f64> {
    let mut out = vec![0.0];
    let mut remaining = 50.0;
    while 100.0 - remaining < 99.9999 {
        out.push(100.0 - remaining);
        remaining /= 2.0;
    }
    out.push(100.0);
    out
}

/// `(percentile, µs)` at every [`curve_percentiles`] point, from a
/// distribution given as its value at a percentile.
pub fn percentile_curve(value_at_percentile: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    curve_percentiles()
        .into_iter()
        .map(|p| (p, value_at_percentile(p)))
        .collect()
}

/// The value at percentile `p` of ascending `sorted` samples (nearest rank;
/// 0 and 100 are the smallest and largest); 0 when there are none.
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_halves_towards_100_and_ends_there() {
        let ps = curve_percentiles();
        assert_eq!(&ps[..4], [0.0, 50.0, 75.0, 87.5]);
        assert_eq!(*ps.last().unwrap(), 100.0);
        assert!(ps.windows(2).all(|w| w[0] < w[1]));
        let last_below_100 = ps[ps.len() - 2];
        assert!(last_below_100 > 99.9998 && last_below_100 < 99.9999);
        assert_eq!(ps.len(), 21);
    }

    #[test]
    fn nearest_rank_of_samples() {
        let sorted: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(nearest_rank(&sorted, 0.0), 1.0);
        assert_eq!(nearest_rank(&sorted, 50.0), 5.0);
        assert_eq!(nearest_rank(&sorted, 99.0), 10.0);
        assert_eq!(nearest_rank(&sorted, 100.0), 10.0);
        assert_eq!(nearest_rank(&[], 50.0), 0.0);
        let curve = percentile_curve(|p| nearest_rank(&sorted, p));
        assert_eq!(curve.first(), Some(&(0.0, 1.0)));
        assert_eq!(curve.last(), Some(&(100.0, 10.0)));
    }
}
