//! A checked [`RawProfile`] expanded into [`Case`]s: name, protocol, seed,
//! one case per connection count × swept size × swept shape parameter
//! (rate or idle count), or one case for a trace; and whether each case's
//! connections fit this machine's file-descriptor limit.

use std::path::Path;

use toml::Spanned;

use crate::driver::input_error::InputError;
use crate::driver::profile::fields::Expander;
use crate::driver::profile::limits::{DEFAULT_SEED, FD_HEADROOM, MAX_ACTIVE_CONNECTIONS};
use crate::driver::profile::raw::{Counts, RawProfile};
use crate::driver::profile::shape::ShapePoint;
use crate::driver::scale::plan::{self as scale, ScaleInputs, ScaleRefusal};
use crate::driver::trace::{self, TraceError};
use crate::protocol::Protocol;
use crate::results::workload::{Case, ClientReceive, Shape, SizeDistribution};

/// What every case of a profile shares, whatever its shape.
struct CaseHead {
    name: String,
    protocol: Protocol,
    seed: u64,
    client: ClientReceive,
}

impl Expander<'_> {
    pub(super) fn expand(&self, raw: RawProfile) -> Result<Vec<Case>, InputError> {
        let name = self.name(&raw)?;
        let protocol = self.protocol(&raw.protocol)?;
        let seed = self.seed(&raw.seed)?;
        let client = self.client(&raw.client)?;
        let shape_points = self.shapes(&raw.shape)?;

        if let [
            ShapePoint {
                shape: shape @ Shape::Trace { path, .. },
                ..
            },
        ] = shape_points.as_slice()
        {
            let head = CaseHead {
                name,
                protocol,
                seed,
                client,
            };
            return self.trace_case(&raw, head, shape.clone(), path);
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
            (&shape_points[0].shape, &raw.shape.get_ref().window_bytes)
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
            for point in &shape_points {
                self.check_fd_limit(connections, point, &raw.connections)?;
                for (sizes, sweep_size_bytes) in &size_points {
                    let mut label_parts = vec![name.clone()];
                    if connection_counts.len() > 1 {
                        label_parts.push(format!("{connections}conn"));
                    }
                    label_parts.extend(point.label.clone());
                    if let Some(bytes) = sweep_size_bytes {
                        label_parts.push(format!("{bytes}B"));
                    }
                    cases.push(Case {
                        profile: name.clone(),
                        label: label_parts.join("/"),
                        protocol,
                        connections,
                        shape: point.shape.clone(),
                        sizes: sizes.clone(),
                        seed,
                        sweep_size_bytes: *sweep_size_bytes,
                        client,
                    });
                }
            }
        }
        Ok(cases)
    }

    /// Refuses, before anything runs, a case whose connections cannot all
    /// be open at once: the driver and the server are separate processes
    /// and each needs one descriptor per connection under the hard
    /// RLIMIT_NOFILE (the soft one is raised to it at run time). Idle
    /// connections are the exception on the driver's side: beyond one
    /// process they are held by driver worker processes, so only the active
    /// set must fit here; whether a server holds them all is checked per
    /// variant when the run is planned.
    fn check_fd_limit(
        &self,
        active: u32,
        point: &ShapePoint,
        raw_connections: &Option<Spanned<Counts>>,
    ) -> Result<(), InputError> {
        let Some(hard_limit) = self.nofile_hard_limit else {
            return Ok(());
        };
        let span = raw_connections.as_ref().map_or(0..0, Spanned::span);
        if let Shape::IdleActive { idle_connections } = point.shape {
            let inputs = ScaleInputs {
                active_connections: u64::from(active),
                idle_connections: u64::from(idle_connections),
                nofile_hard: hard_limit,
                // Ports are checked when the run starts, on the machine it
                // runs on; here only descriptors count.
                local_ports: u64::MAX,
                server: None,
            };
            return match scale::plan(&inputs) {
                Ok(_) => Ok(()),
                Err(refusal) => {
                    let (field, span) = match (&refusal, &point.idle_count_at) {
                        (ScaleRefusal::TooManyWorkers { .. }, Some((field, span))) => {
                            (field.clone(), span.clone())
                        }
                        _ => ("connections".to_string(), span),
                    };
                    Err(self.error(span, &field, refusal.to_string()))
                }
            };
        }
        let needed = u64::from(active) + FD_HEADROOM;
        if needed <= hard_limit {
            return Ok(());
        }
        Err(self.error(
            span,
            "connections",
            format!(
                "{active} connections need {needed} file descriptors in each of the driver and the \
                 server process (one per connection + {FD_HEADROOM} spare), above this \
                 machine's hard RLIMIT_NOFILE of {hard_limit}; at most {} connections fit \
                 (raise the hard limit, e.g. in /etc/security/limits.conf, to run more)",
                hard_limit.saturating_sub(FD_HEADROOM)
            ),
        ))
    }

    fn protocol(&self, raw: &Option<Spanned<String>>) -> Result<Protocol, InputError> {
        let Some(protocol) = raw else {
            return Ok(Protocol::Frame);
        };
        match protocol.get_ref().as_str() {
            "frame" => Ok(Protocol::Frame),
            "echo" => Ok(Protocol::Echo),
            "file" => Ok(Protocol::File),
            other => Err(self.error(
                protocol.span(),
                "protocol",
                format!("must be \"frame\", \"echo\" or \"file\", got \"{other}\""),
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
        head: CaseHead,
        shape: Shape,
        path: &Path,
    ) -> Result<Vec<Case>, InputError> {
        let CaseHead {
            name,
            protocol,
            seed,
            client,
        } = head;
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
            client,
        }])
    }
}
