//! The `[shape]` table into [`Shape`]s: the kind, the fields it uses, and
//! their ranges; one shape, or one per point of a sweep
//! (`rates_per_second`, a list of `idle_connections`).

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::driver::input_error::InputError;
use crate::driver::profile::fields::Expander;
use crate::driver::profile::limits::{
    MAX_IDLE_CONNECTIONS, MAX_PIPELINE_DEPTH, MAX_RATE_PER_SECOND, MAX_REQUESTS_PER_CONNECTION,
    MAX_TRACE_SPEED, MAX_WINDOW_BYTES,
};
use crate::driver::profile::raw::{Counts, RawShape};
use crate::results::workload::Shape;

/// One shape of a profile: the only one, or one point of a sweep.
pub(super) struct ShapePoint {
    pub(super) shape: Shape,
    /// The label part naming the swept value (`20000rps`, `1000idle`);
    /// `None` when the shape is not swept.
    pub(super) label: Option<String>,
    /// Idle-active shapes: the field and span of the idle count, where an
    /// error about the file descriptors it needs points.
    pub(super) idle_count_at: Option<(String, Range<usize>)>,
}

impl ShapePoint {
    fn only(shape: Shape) -> ShapePoint {
        ShapePoint {
            shape,
            label: None,
            idle_count_at: None,
        }
    }
}

impl Expander<'_> {
    /// The shapes of the `[shape]` table: one, or one per sweep point.
    pub(super) fn shapes(&self, raw: &Spanned<RawShape>) -> Result<Vec<ShapePoint>, InputError> {
        let table = raw.span();
        let shape = raw.get_ref();
        let kind = shape.kind.get_ref().as_str();
        match (kind, fields_used_by(kind)) {
            (swept @ ("constant_rate" | "idle_active"), Some(uses)) => {
                let why = format!("by shape kind \"{swept}\"");
                self.reject_unused("shape", &shape.given(), uses, &why)?;
                if swept == "constant_rate" {
                    self.rates(shape, &table)
                } else {
                    self.idle_counts(shape, &table)
                }
            }
            _ => Ok(vec![ShapePoint::only(self.shape(raw)?)]),
        }
    }

    /// `constant_rate`: `rate_per_second`, or a sweep `rates_per_second`
    /// (one case per rate), exactly one of the two.
    fn rates(&self, shape: &RawShape, table: &Range<usize>) -> Result<Vec<ShapePoint>, InputError> {
        let rate_case = |rate_per_second| Shape::ConstantRate { rate_per_second };
        match (&shape.rate_per_second, &shape.rates_per_second) {
            (Some(rate), None) => Ok(vec![ShapePoint::only(rate_case(self.positive_up_to(
                rate,
                "shape.rate_per_second",
                MAX_RATE_PER_SECOND,
            )?))]),
            (None, Some(list)) => {
                let field = "shape.rates_per_second";
                self.sweep_length(list.get_ref().len(), list.span(), field, "rates")?;
                let mut points: Vec<ShapePoint> = Vec::new();
                for (index, item) in list.get_ref().iter().enumerate() {
                    let item_field = format!("{field}[{index}]");
                    let rate = self.positive_up_to(item, &item_field, MAX_RATE_PER_SECOND)?;
                    if points.iter().any(|point| point.shape == rate_case(rate)) {
                        return Err(self.error(
                            item.span(),
                            &item_field,
                            format!("{rate} is listed twice"),
                        ));
                    }
                    points.push(ShapePoint {
                        shape: rate_case(rate),
                        label: Some(format!("{rate}rps")),
                        idle_count_at: None,
                    });
                }
                Ok(points)
            }
            (Some(_), Some(list)) => Err(self.error(
                list.span(),
                "shape.rates_per_second",
                "give either rate_per_second or rates_per_second, not both",
            )),
            (None, None) => Err(self.error(
                table.clone(),
                "shape.rate_per_second",
                "missing (required by shape kind \"constant_rate\"; or give rates_per_second)",
            )),
        }
    }

    /// `idle_active`: `idle_connections` is a count, or a list of counts
    /// (one case per count).
    fn idle_counts(
        &self,
        shape: &RawShape,
        table: &Range<usize>,
    ) -> Result<Vec<ShapePoint>, InputError> {
        let field = "shape.idle_connections";
        let raw = self.required(
            &shape.idle_connections,
            table,
            field,
            "required by shape kind \"idle_active\"",
        )?;
        let idle_case = |idle_connections| Shape::IdleActive { idle_connections };
        match raw.get_ref() {
            Counts::One(count) => {
                let count = Spanned::new(raw.span(), *count);
                Ok(vec![ShapePoint {
                    shape: idle_case(self.int_in(&count, field, 1u32, MAX_IDLE_CONNECTIONS)?),
                    label: None,
                    idle_count_at: Some((field.to_string(), raw.span())),
                }])
            }
            Counts::Many(list) => {
                let counts =
                    self.distinct_list(list, raw.span(), field, "counts", MAX_IDLE_CONNECTIONS)?;
                Ok(counts
                    .into_iter()
                    .zip(list)
                    .enumerate()
                    .map(|(index, (count, item))| ShapePoint {
                        shape: idle_case(count),
                        label: Some(format!("{count}idle")),
                        idle_count_at: Some((format!("{field}[{index}]"), item.span())),
                    })
                    .collect())
            }
        }
    }

    fn shape(&self, raw: &Spanned<RawShape>) -> Result<Shape, InputError> {
        let table = raw.span();
        let shape = raw.get_ref();
        let kind = shape.kind.get_ref().as_str();
        let why = format!("by shape kind \"{kind}\"");
        let Some(uses) = fields_used_by(kind) else {
            return Err(self.error(
                shape.kind.span(),
                "shape.kind",
                format!(
                    "unknown kind \"{kind}\": use ping_pong, pipelined, constant_rate, bulk, \
                     churn, idle_active or trace"
                ),
            ));
        };
        self.reject_unused("shape", &shape.given(), uses, &why)?;

        let why = format!("required {why}");
        Ok(match kind {
            "ping_pong" => Shape::PingPong,
            "pipelined" => Shape::Pipelined {
                depth: self.required_int_in(
                    &shape.depth,
                    &table,
                    "shape.depth",
                    &why,
                    1u32,
                    MAX_PIPELINE_DEPTH,
                )?,
            },
            "bulk" => Shape::Bulk {
                window_bytes: self.required_int_in(
                    &shape.window_bytes,
                    &table,
                    "shape.window_bytes",
                    &why,
                    1u64,
                    MAX_WINDOW_BYTES,
                )?,
            },
            "churn" => Shape::Churn {
                requests_per_connection: self.required_int_in(
                    &shape.requests_per_connection,
                    &table,
                    "shape.requests_per_connection",
                    &why,
                    1u32,
                    MAX_REQUESTS_PER_CONNECTION,
                )?,
            },
            "trace" => self.trace_shape(shape, &table, &why)?,
            _ => unreachable!("fields_used_by knows every kind; `shapes` takes the swept ones"),
        })
    }

    /// `shape.path` (relative to the profile's directory) and `shape.speed`.
    fn trace_shape(
        &self,
        shape: &RawShape,
        table: &Range<usize>,
        why: &str,
    ) -> Result<Shape, InputError> {
        let path = self.required(&shape.path, table, "shape.path", why)?;
        let speed = match &shape.speed {
            None => 1.0,
            Some(speed) => self.positive_up_to(speed, "shape.speed", MAX_TRACE_SPEED)?,
        };
        let relative = Path::new(path.get_ref());
        let resolved = match self.file.parent() {
            Some(directory) if relative.is_relative() => directory.join(relative),
            _ => relative.to_path_buf(),
        };
        Ok(Shape::Trace {
            path: resolved,
            speed,
        })
    }
}

/// The one or two fields shape `kind` uses (every other parameter must be
/// absent), or `None` for an unknown kind.
fn fields_used_by(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "ping_pong" => &[],
        "pipelined" => &["depth"],
        "constant_rate" => &["rate_per_second", "rates_per_second"],
        "bulk" => &["window_bytes"],
        "churn" => &["requests_per_connection"],
        "idle_active" => &["idle_connections"],
        "trace" => &["path", "speed"],
        _ => return None,
    })
}
