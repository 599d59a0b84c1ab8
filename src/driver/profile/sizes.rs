//! The `[sizes]` table into request size distributions: one, or one per
//! `sweep_bytes` entry.

use std::ops::Range;

use toml::Spanned;

use crate::driver::input_error::InputError;
use crate::driver::profile::fields::Expander;
use crate::driver::profile::raw::RawSizes;
use crate::protocol::DEFAULT_MAX_FRAME_BYTES;
use crate::results::workload::SizeDistribution;

impl Expander<'_> {
    /// The size distribution(s): one, or one `Fixed` per `sweep_bytes`
    /// entry (with the swept size, for charts).
    pub(super) fn sizes(
        &self,
        raw: &Spanned<RawSizes>,
    ) -> Result<Vec<(SizeDistribution, Option<u32>)>, InputError> {
        let table = raw.span();
        let sizes = raw.get_ref();
        let distribution = sizes.distribution.get_ref().as_str();
        let why = format!("by distribution \"{distribution}\"");
        let Some(uses) = fields_used_by(distribution) else {
            return Err(self.error(
                sizes.distribution.span(),
                "sizes.distribution",
                format!(
                    "unknown distribution \"{distribution}\": use fixed, uniform, log_normal or bimodal"
                ),
            ));
        };
        self.reject_unused("sizes", &sizes.given(), uses, &why)?;
        if distribution == "fixed" {
            return self.fixed_sizes(sizes, table, &why);
        }
        let required = format!("required {why}");
        let distribution = self.drawn_sizes(distribution, sizes, &table, &required)?;
        // Cross-field rules (max ≥ min, sigma and fraction ranges) live in
        // `validate`, whose messages start with the field's name.
        if let Err(message) = distribution.validate() {
            let (field, detail) = message.split_once(": ").unwrap_or(("", &message));
            let span = sizes
                .given()
                .into_iter()
                .find(|(given, _)| *given == field)
                .map_or(table, |(_, span)| span);
            return Err(self.error(span, &format!("sizes.{field}"), detail));
        }
        Ok(vec![(distribution, None)])
    }

    /// `fixed`: one size (`bytes`) or a sweep (`sweep_bytes`), exactly one
    /// of the two.
    fn fixed_sizes(
        &self,
        sizes: &RawSizes,
        table: Range<usize>,
        why: &str,
    ) -> Result<Vec<(SizeDistribution, Option<u32>)>, InputError> {
        let max_frame = DEFAULT_MAX_FRAME_BYTES;
        match (&sizes.bytes, &sizes.sweep_bytes) {
            (Some(bytes), None) => Ok(vec![(
                SizeDistribution::Fixed {
                    bytes: self.int_in(bytes, "sizes.bytes", 1u32, max_frame)?,
                },
                None,
            )]),
            (None, Some(sweep)) => self.sweep(sweep, max_frame),
            (Some(_), Some(sweep)) => Err(self.error(
                sweep.span(),
                "sizes.sweep_bytes",
                "give either bytes or sweep_bytes, not both",
            )),
            (None, None) => Err(self.error(
                table,
                "sizes.bytes",
                format!("missing (required {why}; or give sweep_bytes)"),
            )),
        }
    }

    /// `uniform`, `log_normal` or `bimodal`: every field is required, and
    /// every size is a valid frame length.
    fn drawn_sizes(
        &self,
        distribution: &str,
        sizes: &RawSizes,
        table: &Range<usize>,
        required: &str,
    ) -> Result<SizeDistribution, InputError> {
        let size = |value: &Option<Spanned<i64>>, field: &str| {
            self.required_int_in(value, table, field, required, 1u32, DEFAULT_MAX_FRAME_BYTES)
        };
        Ok(match distribution {
            "uniform" => SizeDistribution::Uniform {
                min_bytes: size(&sizes.min_bytes, "sizes.min_bytes")?,
                max_bytes: size(&sizes.max_bytes, "sizes.max_bytes")?,
            },
            "log_normal" => SizeDistribution::LogNormal {
                median_bytes: size(&sizes.median_bytes, "sizes.median_bytes")?,
                sigma: *self
                    .required(&sizes.sigma, table, "sizes.sigma", required)?
                    .get_ref(),
                max_bytes: size(&sizes.max_bytes, "sizes.max_bytes")?,
            },
            _ => SizeDistribution::Bimodal {
                small_bytes: size(&sizes.small_bytes, "sizes.small_bytes")?,
                large_bytes: size(&sizes.large_bytes, "sizes.large_bytes")?,
                large_fraction: *self
                    .required(
                        &sizes.large_fraction,
                        table,
                        "sizes.large_fraction",
                        required,
                    )?
                    .get_ref(),
            },
        })
    }

    fn sweep(
        &self,
        sweep: &Spanned<Vec<Spanned<i64>>>,
        max_frame: u32,
    ) -> Result<Vec<(SizeDistribution, Option<u32>)>, InputError> {
        let sizes = self.distinct_list(
            sweep.get_ref(),
            sweep.span(),
            "sizes.sweep_bytes",
            "sizes",
            max_frame,
        )?;
        Ok(sizes
            .into_iter()
            .map(|bytes| (SizeDistribution::Fixed { bytes }, Some(bytes)))
            .collect())
    }
}

/// The fields `distribution` uses (every other parameter must be absent),
/// or `None` for an unknown distribution.
fn fields_used_by(distribution: &str) -> Option<&'static [&'static str]> {
    Some(match distribution {
        "fixed" => &["bytes", "sweep_bytes"],
        "uniform" => &["min_bytes", "max_bytes"],
        "log_normal" => &["median_bytes", "sigma", "max_bytes"],
        "bimodal" => &["small_bytes", "large_bytes", "large_fraction"],
        _ => return None,
    })
}
