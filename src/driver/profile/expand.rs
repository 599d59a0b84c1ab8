//! A checked [`RawProfile`] expanded into [`Case`]s: name, protocol, seed,
//! one case per connection count × swept size, or one case for a trace.

use std::path::Path;

use toml::Spanned;

use crate::driver::input_error::InputError;
use crate::driver::profile::fields::Expander;
use crate::driver::profile::limits::{DEFAULT_SEED, MAX_ACTIVE_CONNECTIONS};
use crate::driver::profile::raw::{Counts, RawProfile};
use crate::driver::trace::{self, TraceError};
use crate::protocol::Protocol;
use crate::results::workload::{Case, Shape, SizeDistribution};

impl Expander<'_> {
    pub(super) fn expand(&self, raw: RawProfile) -> Result<Vec<Case>, InputError> {
        let name = self.name(&raw)?;
        let protocol = self.protocol(&raw.protocol)?;
        let seed = self.seed(&raw.seed)?;
        let shape = self.shape(&raw.shape)?;

        if let Shape::Trace { path, .. } = &shape {
            return self.trace_case(&raw, name, protocol, seed, shape.clone(), path);
        }

        let connection_counts = self.connection_counts(&raw.connections)?;
        let sizes_table = raw.sizes.as_ref().ok_or_else(|| {
            self.error(
                0..0,
                "sizes",
                "missing: add a [sizes] table (every shape but trace needs one)",
            )
        })?;
        let size_points = self.sizes(sizes_table)?;

        let largest_request = size_points
            .iter()
            .map(|(sizes, _)| sizes.max_bytes())
            .max()
            .unwrap_or(0);
        if let (Shape::Bulk { window_bytes }, Some(raw_window)) =
            (&shape, &raw.shape.get_ref().window_bytes)
            && *window_bytes < u64::from(largest_request)
        {
            return Err(self.error(
                raw_window.span(),
                "shape.window_bytes",
                format!(
                    "must be at least the largest request ({largest_request} bytes), got {window_bytes}"
                ),
            ));
        }

        let mut cases = Vec::new();
        for &connections in &connection_counts {
            for (sizes, sweep_size_bytes) in &size_points {
                let mut label_parts = vec![name.clone()];
                if connection_counts.len() > 1 {
                    label_parts.push(format!("{connections}conn"));
                }
                if let Some(bytes) = sweep_size_bytes {
                    label_parts.push(format!("{bytes}B"));
                }
                cases.push(Case {
                    profile: name.clone(),
                    label: label_parts.join("/"),
                    protocol,
                    connections,
                    shape: shape.clone(),
                    sizes: sizes.clone(),
                    seed,
                    sweep_size_bytes: *sweep_size_bytes,
                });
            }
        }
        Ok(cases)
    }

    fn protocol(&self, raw: &Option<Spanned<String>>) -> Result<Protocol, InputError> {
        let Some(protocol) = raw else {
            return Ok(Protocol::Frame);
        };
        match protocol.get_ref().as_str() {
            "frame" => Ok(Protocol::Frame),
            "echo" => Ok(Protocol::Echo),
            other => Err(self.error(
                protocol.span(),
                "protocol",
                format!("must be \"frame\" or \"echo\", got \"{other}\""),
            )),
        }
    }

    fn seed(&self, raw: &Option<Spanned<i64>>) -> Result<u64, InputError> {
        let Some(seed) = raw else {
            return Ok(DEFAULT_SEED);
        };
        u64::try_from(*seed.get_ref()).map_err(|_| {
            self.error(
                seed.span(),
                "seed",
                format!("must be non-negative, got {}", seed.get_ref()),
            )
        })
    }

    fn name(&self, raw: &RawProfile) -> Result<String, InputError> {
        let (name, span) = match &raw.name {
            Some(name) => (name.get_ref().clone(), name.span()),
            None => (
                self.file
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                0..0,
            ),
        };
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty() || name.len() > 64 || !name.chars().all(valid_char) {
            return Err(self.error(
                span,
                "name",
                format!(
                    "must be 1 to 64 characters from A-Z a-z 0-9 - _ . (it names result rows), got \"{name}\""
                ),
            ));
        }
        Ok(name)
    }

    fn connection_counts(&self, raw: &Option<Spanned<Counts>>) -> Result<Vec<u32>, InputError> {
        let Some(raw) = raw else {
            return Ok(vec![1]);
        };
        match raw.get_ref() {
            Counts::One(count) => Ok(vec![self.int_in(
                &Spanned::new(raw.span(), *count),
                "connections",
                1u32,
                MAX_ACTIVE_CONNECTIONS,
            )?]),
            Counts::Many(list) => self.distinct_list(
                list,
                raw.span(),
                "connections",
                "counts",
                MAX_ACTIVE_CONNECTIONS,
            ),
        }
    }

    /// A trace shape: connections and sizes come from the trace file, which
    /// is read and checked now so a bad trace fails before anything runs.
    fn trace_case(
        &self,
        raw: &RawProfile,
        name: String,
        protocol: Protocol,
        seed: u64,
        shape: Shape,
        path: &Path,
    ) -> Result<Vec<Case>, InputError> {
        let why = "with shape kind \"trace\": the trace file gives them";
        self.unused(&raw.connections, "connections", why)?;
        self.unused(&raw.sizes, "sizes", why)?;
        let path_span = raw
            .shape
            .get_ref()
            .path
            .as_ref()
            .map_or(0..0, Spanned::span);
        let events = trace::read_trace(path).map_err(|error| {
            let detail = match error {
                TraceError::Invalid(inner) => inner.to_string(),
                other => other.to_string(),
            };
            self.error(path_span.clone(), "shape.path", detail)
        })?;
        let summary = trace::summarize(&events);
        Ok(vec![Case {
            label: name.clone(),
            profile: name,
            protocol,
            connections: summary.connections,
            shape,
            sizes: SizeDistribution::FromTrace {
                mean_bytes: summary.mean_size_bytes,
                max_bytes: summary.max_size_bytes,
            },
            seed,
            sweep_size_bytes: None,
        }])
    }
}
