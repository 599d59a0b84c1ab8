//! The `[shape]` table into a [`Shape`]: the kind, the fields it uses, and
//! their ranges.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::driver::input_error::InputError;
use crate::driver::profile::fields::Expander;
use crate::driver::profile::limits::{
    MAX_IDLE_CONNECTIONS, MAX_PIPELINE_DEPTH, MAX_RATE_PER_SECOND, MAX_REQUESTS_PER_CONNECTION,
    MAX_TRACE_SPEED, MAX_WINDOW_BYTES,
};
use crate::driver::profile::raw::RawShape;
use crate::results::workload::Shape;

impl Expander<'_> {
    pub(super) fn shape(&self, raw: &Spanned<RawShape>) -> Result<Shape, InputError> {
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
            "constant_rate" => {
                let field = "shape.rate_per_second";
                let rate = self.required(&shape.rate_per_second, &table, field, &why)?;
                Shape::ConstantRate {
                    rate_per_second: self.positive_up_to(rate, field, MAX_RATE_PER_SECOND)?,
                }
            }
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
            "idle_active" => Shape::IdleActive {
                idle_connections: self.required_int_in(
                    &shape.idle_connections,
                    &table,
                    "shape.idle_connections",
                    &why,
                    1u32,
                    MAX_IDLE_CONNECTIONS,
                )?,
            },
            "trace" => self.trace_shape(shape, &table, &why)?,
            _ => unreachable!("fields_used_by knows every kind"),
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
        "constant_rate" => &["rate_per_second"],
        "bulk" => &["window_bytes"],
        "churn" => &["requests_per_connection"],
        "idle_active" => &["idle_connections"],
        "trace" => &["path", "speed"],
        _ => return None,
    })
}
