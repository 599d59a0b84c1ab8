//! The serde schema of a profile file: structure and types only. Values keep
//! their spans so the semantic checks can point at them.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub(super) name: Option<Spanned<String>>,
    #[allow(dead_code)] // Documentation for humans; accepted, not used.
    pub(super) description: Option<String>,
    pub(super) protocol: Option<Spanned<String>>,
    pub(super) connections: Option<Spanned<Counts>>,
    pub(super) seed: Option<Spanned<i64>>,
    pub(super) shape: Spanned<RawShape>,
    pub(super) sizes: Option<Spanned<RawSizes>>,
    pub(super) client: Option<Spanned<RawClient>>,
}

/// `[client]`: how the driver's connections receive (slow consumers).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    pub(super) receive_buffer_bytes: Option<Spanned<i64>>,
    pub(super) read_rate_bytes_per_second: Option<Spanned<i64>>,
}

/// Fields of every shape kind; which ones a kind uses is checked later, so
/// that a misplaced field gets a message naming the kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShape {
    pub(super) kind: Spanned<String>,
    pub(super) depth: Option<Spanned<i64>>,
    pub(super) rate_per_second: Option<Spanned<f64>>,
    pub(super) rates_per_second: Option<Spanned<Vec<Spanned<f64>>>>,
    pub(super) window_bytes: Option<Spanned<i64>>,
    pub(super) requests_per_connection: Option<Spanned<i64>>,
    pub(super) idle_connections: Option<Spanned<Counts>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) speed: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSizes {
    pub(super) distribution: Spanned<String>,
    pub(super) bytes: Option<Spanned<i64>>,
    pub(super) sweep_bytes: Option<Spanned<Vec<Spanned<i64>>>>,
    pub(super) min_bytes: Option<Spanned<i64>>,
    pub(super) max_bytes: Option<Spanned<i64>>,
    pub(super) median_bytes: Option<Spanned<i64>>,
    pub(super) sigma: Option<Spanned<f64>>,
    pub(super) small_bytes: Option<Spanned<i64>>,
    pub(super) large_bytes: Option<Spanned<i64>>,
    pub(super) large_fraction: Option<Spanned<f64>>,
}

/// `connections = 64` or `connections = [1, 16, 64]` (and the same for
/// `shape.idle_connections`).
pub(super) enum Counts {
    One(i64),
    Many(Vec<Spanned<i64>>),
}

impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountsVisitor;
        impl<'de> serde::de::Visitor<'de> for CountsVisitor {
            type Value = Counts;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer or a list of integers")
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Counts, E> {
                Ok(Counts::One(value))
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Counts, E> {
                Ok(Counts::One(i64::try_from(value).unwrap_or(i64::MAX)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Counts, A::Error> {
                let mut counts = Vec::new();
                while let Some(count) = seq.next_element::<Spanned<i64>>()? {
                    counts.push(count);
                }
                Ok(Counts::Many(counts))
            }
        }
        deserializer.deserialize_any(CountsVisitor)
    }
}

fn span_of<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
    value.as_ref().map(Spanned::span)
}

impl RawShape {
    /// The parameters present in the file (all but `kind`), with their spans.
    pub(super) fn given(&self) -> Vec<(&'static str, Range<usize>)> {
        [
            ("depth", span_of(&self.depth)),
            ("rate_per_second", span_of(&self.rate_per_second)),
            ("rates_per_second", span_of(&self.rates_per_second)),
            ("window_bytes", span_of(&self.window_bytes)),
            (
                "requests_per_connection",
                span_of(&self.requests_per_connection),
            ),
            ("idle_connections", span_of(&self.idle_connections)),
            ("path", span_of(&self.path)),
            ("speed", span_of(&self.speed)),
        ]
        .into_iter()
        .filter_map(|(field, span)| Some((field, span?)))
        .collect()
    }
}

impl RawSizes {
    /// The parameters present in the file (all but `distribution`), with
    /// their spans.
    pub(super) fn given(&self) -> Vec<(&'static str, Range<usize>)> {
        [
            ("bytes", span_of(&self.bytes)),
            ("sweep_bytes", span_of(&self.sweep_bytes)),
            ("min_bytes", span_of(&self.min_bytes)),
            ("max_bytes", span_of(&self.max_bytes)),
            ("median_bytes", span_of(&self.median_bytes)),
            ("sigma", span_of(&self.sigma)),
            ("small_bytes", span_of(&self.small_bytes)),
            ("large_bytes", span_of(&self.large_bytes)),
            ("large_fraction", span_of(&self.large_fraction)),
        ]
        .into_iter()
        .filter_map(|(field, span)| Some((field, span?)))
        .collect()
    }
}
