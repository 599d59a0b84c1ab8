//! Request sizes drawn from a [`SizeDistribution`] with a seeded RNG.
//!
//! The same distribution and seed always give the same sequence of sizes, so
//! two runs (or two variants) see exactly the same traffic. The RNG is
//! ChaCha8: its output is specified and portable, unlike `StdRng`, whose
//! algorithm may change between `rand` releases.

use rand::SeedableRng;
use rand::distr::{Bernoulli, Distribution, Uniform};
use rand_chacha::ChaCha8Rng;
use rand_distr::LogNormal;

use crate::protocol::DEFAULT_MAX_FRAME_BYTES;
use crate::results::workload::SizeDistribution;

/// Largest log-normal `sigma` accepted: beyond it nearly every draw is
/// clamped to 1 or to `max_bytes`, which is a bimodal distribution in
/// disguise and better written as one.
pub const MAX_LOG_NORMAL_SIGMA: f64 = 4.0;

/// Keeps the size stream independent of other streams derived from the same
/// user seed (payload bytes, trace arrivals).
const SIZE_STREAM: u64 = 0x5153_495a_4553; // "SIZES"

impl SizeDistribution {
    /// Checks the parameters against the default `--max-frame` (16 MiB).
    pub fn validate(&self) -> Result<(), String> {
        self.validate_with_max_frame(DEFAULT_MAX_FRAME_BYTES)
    }

    /// Checks that every size this distribution can produce lies in
    /// `1..=max_frame_bytes` and that its parameters make sense. The message
    /// names the offending parameter, e.g. `max_bytes: must be at least
    /// min_bytes (64)`.
    pub fn validate_with_max_frame(&self, max_frame_bytes: u32) -> Result<(), String> {
        let in_range = |field: &str, value: u32| {
            if value == 0 || value > max_frame_bytes {
                Err(format!(
                    "{field}: must be between 1 and {max_frame_bytes} bytes (the max frame), got {value}"
                ))
            } else {
                Ok(())
            }
        };
        match *self {
            SizeDistribution::Fixed { bytes } => in_range("bytes", bytes),
            SizeDistribution::Uniform {
                min_bytes,
                max_bytes,
            } => {
                in_range("min_bytes", min_bytes)?;
                in_range("max_bytes", max_bytes)?;
                if max_bytes < min_bytes {
                    return Err(format!(
                        "max_bytes: must be at least min_bytes ({min_bytes}), got {max_bytes}"
                    ));
                }
                Ok(())
            }
            SizeDistribution::LogNormal {
                median_bytes,
                sigma,
                max_bytes,
            } => {
                in_range("median_bytes", median_bytes)?;
                in_range("max_bytes", max_bytes)?;
                if max_bytes < median_bytes {
                    return Err(format!(
                        "max_bytes: must be at least median_bytes ({median_bytes}), got {max_bytes}"
                    ));
                }
                if !(sigma.is_finite() && (0.0..=MAX_LOG_NORMAL_SIGMA).contains(&sigma)) {
                    return Err(format!(
                        "sigma: must be between 0 and {MAX_LOG_NORMAL_SIGMA}, got {sigma}"
                    ));
                }
                Ok(())
            }
            SizeDistribution::Bimodal {
                small_bytes,
                large_bytes,
                large_fraction,
            } => {
                in_range("small_bytes", small_bytes)?;
                in_range("large_bytes", large_bytes)?;
                if !(large_fraction.is_finite() && (0.0..=1.0).contains(&large_fraction)) {
                    return Err(format!(
                        "large_fraction: must be between 0 and 1, got {large_fraction}"
                    ));
                }
                Ok(())
            }
            SizeDistribution::FromTrace {
                mean_bytes,
                max_bytes,
            } => {
                in_range("max_bytes", max_bytes)?;
                if !(mean_bytes.is_finite() && (1.0..=f64::from(max_bytes)).contains(&mean_bytes)) {
                    return Err(format!(
                        "mean_bytes: must be between 1 and max_bytes ({max_bytes}), got {mean_bytes}"
                    ));
                }
                Ok(())
            }
        }
    }

    /// Expected payload bytes per request. For the log-normal this is the
    /// mean after clamping to `[1, max_bytes]`, computed exactly, so it is
    /// what a long run actually sends.
    pub fn mean_bytes(&self) -> f64 {
        match *self {
            SizeDistribution::Fixed { bytes } => f64::from(bytes),
            SizeDistribution::Uniform {
                min_bytes,
                max_bytes,
            } => (f64::from(min_bytes) + f64::from(max_bytes)) / 2.0,
            SizeDistribution::LogNormal {
                median_bytes,
                sigma,
                max_bytes,
            } => clamped_log_normal_mean(f64::from(median_bytes), sigma, 1.0, f64::from(max_bytes)),
            SizeDistribution::Bimodal {
                small_bytes,
                large_bytes,
                large_fraction,
            } => {
                f64::from(small_bytes) * (1.0 - large_fraction)
                    + f64::from(large_bytes) * large_fraction
            }
            SizeDistribution::FromTrace { mean_bytes, .. } => mean_bytes,
        }
    }

    /// The largest size a draw can return (what buffers must hold).
    pub fn max_bytes(&self) -> u32 {
        match *self {
            SizeDistribution::Fixed { bytes } => bytes,
            SizeDistribution::Uniform { max_bytes, .. } => max_bytes,
            SizeDistribution::LogNormal { max_bytes, .. } => max_bytes,
            SizeDistribution::Bimodal {
                small_bytes,
                large_bytes,
                ..
            } => small_bytes.max(large_bytes),
            SizeDistribution::FromTrace { max_bytes, .. } => max_bytes,
        }
    }
}

/// Mean of `clamp(X, low, high)` for `X` log-normal with median `median`
/// and log-space standard deviation `sigma`:
/// `E = low·P(X<low) + high·P(X>high) + E[X; low≤X≤high]`, where the last
/// term is `exp(μ+σ²/2)·(Φ(b-σ) - Φ(a-σ))` with `a`, `b` the bounds as
/// z-scores.
fn clamped_log_normal_mean(median: f64, sigma: f64, low: f64, high: f64) -> f64 {
    if sigma == 0.0 {
        return median.clamp(low, high);
    }
    let mu = median.ln();
    let a = (low.ln() - mu) / sigma;
    let b = (high.ln() - mu) / sigma;
    let middle = (mu + sigma * sigma / 2.0).exp() * (normal_cdf(b - sigma) - normal_cdf(a - sigma));
    low * normal_cdf(a) + high * (1.0 - normal_cdf(b)) + middle
}

/// Standard normal CDF via `erfc`. `erfc` is the classic Chebyshev fit with
/// relative error below 1.2e-7, far finer than any use of a mean size
/// (`std` has no `erf` on stable).
fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * poly.exp();
    if x >= 0.0 { value } else { 2.0 - value }
}

/// Draws request sizes from a [`SizeDistribution`], deterministically.
#[derive(Clone, Debug)]
pub struct SizeSampler {
    draw: Draw,
    rng: ChaCha8Rng,
}

/// The distribution with its sampling tables built once, so a draw is a few
/// arithmetic operations.
#[derive(Clone, Debug)]
enum Draw {
    Fixed(u32),
    Uniform(Uniform<u32>),
    LogNormal {
        dist: LogNormal<f64>,
        max_bytes: u32,
    },
    Bimodal {
        small_bytes: u32,
        large_bytes: u32,
        large: Bernoulli,
    },
}

impl SizeSampler {
    /// A sampler for `dist` seeded with `seed`.
    ///
    /// Trace cases take their sizes from the trace's events; a sampler for
    /// [`SizeDistribution::FromTrace`] returns the trace's largest size, so
    /// code that sizes buffers from a sampler needs no special case.
    ///
    /// # Panics
    /// If `dist.validate()` fails: profiles and traces validate their
    /// distributions when they are parsed, so this is a programming error.
    pub fn new(dist: &SizeDistribution, seed: u64) -> SizeSampler {
        if let Err(message) = dist.validate_with_max_frame(u32::MAX) {
            panic!("invalid size distribution {dist:?}: {message}");
        }
        let draw = match *dist {
            SizeDistribution::Fixed { bytes } => Draw::Fixed(bytes),
            SizeDistribution::Uniform {
                min_bytes,
                max_bytes,
            } => Draw::Uniform(
                Uniform::new_inclusive(min_bytes, max_bytes).expect("validated: min <= max"),
            ),
            SizeDistribution::LogNormal {
                median_bytes,
                sigma,
                max_bytes,
            } => Draw::LogNormal {
                dist: LogNormal::new(f64::from(median_bytes).ln(), sigma)
                    .expect("validated: sigma finite and non-negative"),
                max_bytes,
            },
            SizeDistribution::Bimodal {
                small_bytes,
                large_bytes,
                large_fraction,
            } => Draw::Bimodal {
                small_bytes,
                large_bytes,
                large: Bernoulli::new(large_fraction).expect("validated: fraction in [0, 1]"),
            },
            SizeDistribution::FromTrace { max_bytes, .. } => Draw::Fixed(max_bytes),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(SIZE_STREAM);
        SizeSampler { draw, rng }
    }

    /// The next request size in payload bytes, in `1..=dist.max_bytes()`.
    pub fn next_size(&mut self) -> u32 {
        match &self.draw {
            Draw::Fixed(bytes) => *bytes,
            Draw::Uniform(uniform) => uniform.sample(&mut self.rng),
            Draw::LogNormal { dist, max_bytes } => {
                let bytes = dist.sample(&mut self.rng).round();
                // `as` saturates (and maps NaN to 0), then the clamp keeps the
                // result inside the documented range.
                (bytes as u32).clamp(1, *max_bytes)
            }
            Draw::Bimodal {
                small_bytes,
                large_bytes,
                large,
            } => {
                if large.sample(&mut self.rng) {
                    *large_bytes
                } else {
                    *small_bytes
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(dist: &SizeDistribution, seed: u64, count: usize) -> Vec<u32> {
        let mut sampler = SizeSampler::new(dist, seed);
        (0..count).map(|_| sampler.next_size()).collect()
    }

    fn sample_mean(dist: &SizeDistribution, count: usize) -> f64 {
        draws(dist, 7, count)
            .iter()
            .map(|&b| f64::from(b))
            .sum::<f64>()
            / count as f64
    }

    const LOG_NORMAL: SizeDistribution = SizeDistribution::LogNormal {
        median_bytes: 1024,
        sigma: 1.0,
        max_bytes: 65536,
    };

    #[test]
    fn same_seed_same_sizes_other_seed_other_sizes() {
        let dist = SizeDistribution::Uniform {
            min_bytes: 1,
            max_bytes: 1 << 20,
        };
        assert_eq!(draws(&dist, 42, 1000), draws(&dist, 42, 1000));
        assert_ne!(draws(&dist, 42, 1000), draws(&dist, 43, 1000));
    }

    #[test]
    fn draws_stay_in_range() {
        for dist in [
            SizeDistribution::Uniform {
                min_bytes: 10,
                max_bytes: 20,
            },
            LOG_NORMAL,
            SizeDistribution::Bimodal {
                small_bytes: 64,
                large_bytes: 4096,
                large_fraction: 0.1,
            },
        ] {
            let low = match dist {
                SizeDistribution::Uniform { min_bytes, .. } => min_bytes,
                SizeDistribution::Bimodal { small_bytes, .. } => small_bytes,
                _ => 1,
            };
            for size in draws(&dist, 3, 10_000) {
                assert!(
                    (low..=dist.max_bytes()).contains(&size),
                    "{size} from {dist:?}"
                );
            }
        }
    }

    #[test]
    fn fixed_always_returns_its_size() {
        let dist = SizeDistribution::Fixed { bytes: 64 };
        assert!(draws(&dist, 1, 100).iter().all(|&b| b == 64));
        assert_eq!(dist.mean_bytes(), 64.0);
    }

    #[test]
    fn sample_means_match_mean_bytes() {
        // 200k draws: the standard error of the log-normal mean is below
        // 0.5% of it here, so 3% is a loose bound that a wrong formula or a
        // wrong parameterisation (mean instead of median) still fails.
        for dist in [
            SizeDistribution::Uniform {
                min_bytes: 64,
                max_bytes: 4096,
            },
            LOG_NORMAL,
            SizeDistribution::Bimodal {
                small_bytes: 64,
                large_bytes: 65536,
                large_fraction: 0.05,
            },
        ] {
            let expected = dist.mean_bytes();
            let got = sample_mean(&dist, 200_000);
            assert!(
                (got - expected).abs() < 0.03 * expected,
                "{dist:?}: sample mean {got}, expected {expected}"
            );
        }
    }

    #[test]
    fn log_normal_median_is_the_median() {
        let mut sizes = draws(&LOG_NORMAL, 11, 100_001);
        sizes.sort_unstable();
        let median = f64::from(sizes[sizes.len() / 2]);
        assert!((median - 1024.0).abs() < 0.03 * 1024.0, "median {median}");
    }

    #[test]
    fn clamped_mean_accounts_for_the_clamp() {
        // Unclamped mean would be 1024·e^(σ²/2) ≈ 7568 for σ = 2; clamping
        // at 4096 must pull it well below the clamp.
        let dist = SizeDistribution::LogNormal {
            median_bytes: 1024,
            sigma: 2.0,
            max_bytes: 4096,
        };
        let mean = dist.mean_bytes();
        assert!(mean < 4096.0 && mean > 1024.0, "{mean}");
        let got = sample_mean(&dist, 200_000);
        assert!(
            (got - mean).abs() < 0.03 * mean,
            "sample {got}, formula {mean}"
        );
    }

    #[test]
    fn validate_names_the_bad_parameter() {
        let cases = [
            (SizeDistribution::Fixed { bytes: 0 }, "bytes:"),
            (
                SizeDistribution::Fixed {
                    bytes: DEFAULT_MAX_FRAME_BYTES + 1,
                },
                "bytes:",
            ),
            (
                SizeDistribution::Uniform {
                    min_bytes: 100,
                    max_bytes: 10,
                },
                "max_bytes: must be at least min_bytes",
            ),
            (
                SizeDistribution::LogNormal {
                    median_bytes: 100,
                    sigma: f64::NAN,
                    max_bytes: 1000,
                },
                "sigma:",
            ),
            (
                SizeDistribution::Bimodal {
                    small_bytes: 1,
                    large_bytes: 2,
                    large_fraction: 1.5,
                },
                "large_fraction:",
            ),
        ];
        for (dist, expected) in cases {
            let message = dist.validate().expect_err("must be rejected");
            assert!(message.starts_with(expected), "{message}");
        }
        assert_eq!(LOG_NORMAL.validate(), Ok(()));
    }

    #[test]
    fn max_bytes_is_the_largest_possible_draw() {
        let dist = SizeDistribution::Bimodal {
            small_bytes: 5000,
            large_bytes: 100,
            large_fraction: 0.5,
        };
        assert_eq!(dist.max_bytes(), 5000);
    }
}
