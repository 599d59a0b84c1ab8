//! Traffic profiles: small TOML files that expand into [`Case`]s.
//!
//! The schema is documented in `docs/profiles.md`; in short:
//!
//! ```toml
//! name = "pingpong-64b"         # optional, defaults to the file name
//! description = "..."           # optional
//! protocol = "frame"            # frame (default) | echo
//! connections = 64              # or a list, [1, 16, 64]: one case per count
//! seed = 1                      # optional, default 1
//!
//! [shape]
//! kind = "pipelined"            # ping_pong | pipelined | constant_rate | bulk
//! depth = 16                    #   | churn | idle_active | trace
//!
//! [sizes]
//! distribution = "fixed"        # fixed | uniform | log_normal | bimodal
//! bytes = 64                    # or sweep_bytes = [64, 256, ...]: one case per size
//! ```
//!
//! Every error names the file, line, column and field, e.g.
//! `profiles/x.toml:7:9: shape.depth: must be between 1 and 4096, got 0`.
//! Unknown fields are rejected, and so are fields that the chosen `kind` or
//! `distribution` does not use, so a typo never silently falls back to a
//! default.
//!
//! Built-in profiles live in `profiles/` at the repository root and are
//! embedded in the binary, so `run` works from any directory.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::driver::input_error::InputError;
use crate::driver::trace::{self, TraceError};
use crate::protocol::{DEFAULT_MAX_FRAME_BYTES, Protocol};
use crate::results::workload::{Case, Shape, SizeDistribution};

pub const MAX_ACTIVE_CONNECTIONS: u32 = 65_536;
pub const MAX_IDLE_CONNECTIONS: u32 = 1_000_000;
pub const MAX_PIPELINE_DEPTH: u32 = 4096;
pub const MAX_RATE_PER_SECOND: f64 = 10_000_000.0;
pub const MAX_WINDOW_BYTES: u64 = 1 << 30;
pub const MAX_REQUESTS_PER_CONNECTION: u32 = 1_000_000;
pub const MAX_TRACE_SPEED: f64 = 1000.0;
/// Longest list in `connections` or `sizes.sweep_bytes`.
pub const MAX_SWEEP_POINTS: usize = 64;
pub const DEFAULT_SEED: u64 = 1;

/// Embeds `profiles/<name>.toml` for each name, as `(name, text)` pairs.
macro_rules! embed_profiles {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../profiles/", $name, ".toml")))),*]
    };
}

/// The built-in profiles, embedded so the binary needs no files at run time.
const BUILTIN_PROFILES: &[(&str, &str)] = embed_profiles![
    "pingpong-64b-1conn",
    "pingpong-64b-64conn",
    "pipelined-16-64b",
    "bulk-1mib",
    "constant-rate-10k",
    "echo-pingpong-1kib",
    "size-sweep",
    "connections-sweep",
    "churn-100req",
    "idle-10k-active-16",
    "mixed-lognormal",
    "echo-bimodal-pipelined",
];

/// The built-in profiles `run` uses when no `--profile` is given: one case
/// each, cheap enough for every variant × 3 repetitions in two minutes.
/// The expensive ones (`size-sweep`, `connections-sweep`,
/// `idle-10k-active-16`, ...) are selected by name.
pub const DEFAULT_SUITE: &[&str] = &[
    "pingpong-64b-1conn",
    "pingpong-64b-64conn",
    "pipelined-16-64b",
    "bulk-1mib",
    "constant-rate-10k",
    "echo-pingpong-1kib",
];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{}: cannot read profile: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// Bad content; names the file, line, column and field.
    #[error(transparent)]
    Invalid(#[from] InputError),
    #[error("no profile file or built-in profile named `{name}` (built-ins: {builtins})")]
    Unknown { name: String, builtins: String },
}

/// `(name, TOML text)` of every built-in profile.
pub fn builtin_profiles() -> Vec<(&'static str, &'static str)> {
    BUILTIN_PROFILES.to_vec()
}

/// The cases of the built-in profile `name`. Errors name the file as
/// `profiles/<name>.toml`.
pub fn load_builtin(name: &str) -> Result<Vec<Case>, ProfileError> {
    let (_, text) = BUILTIN_PROFILES
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .ok_or_else(|| ProfileError::Unknown {
            name: name.to_string(),
            builtins: builtin_names(),
        })?;
    parse_profile(text, &PathBuf::from(format!("profiles/{name}.toml")))
}

/// The cases of the default suite ([`DEFAULT_SUITE`]), in order.
pub fn default_suite() -> Vec<Case> {
    DEFAULT_SUITE
        .iter()
        .flat_map(|name| {
            // The tests parse every built-in, so this cannot fail at run time.
            load_builtin(name).unwrap_or_else(|error| panic!("built-in profile {name}: {error}"))
        })
        .collect()
}

/// What a user passed to `--profile`: a path to a profile file, or the name
/// of a built-in profile. An existing file wins over a built-in name.
pub fn resolve_profile(argument: &str) -> Result<Vec<Case>, ProfileError> {
    let path = Path::new(argument);
    if path.exists() {
        return load_profile(path);
    }
    let looks_like_a_path = argument.contains('/') || argument.ends_with(".toml");
    if !looks_like_a_path && BUILTIN_PROFILES.iter().any(|(name, _)| *name == argument) {
        return load_builtin(argument);
    }
    if looks_like_a_path {
        // Let the read error say what is wrong with the path.
        return load_profile(path);
    }
    Err(ProfileError::Unknown {
        name: argument.to_string(),
        builtins: builtin_names(),
    })
}

fn builtin_names() -> String {
    BUILTIN_PROFILES
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the profile file at `path` and expands it into cases.
pub fn load_profile(path: &Path) -> Result<Vec<Case>, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse_profile(&text, path)
}

/// Expands profile text into cases. `file` names the profile in errors,
/// gives the default `name` (its stem), and anchors a relative
/// `shape.path` (resolved against the file's directory).
pub fn parse_profile(text: &str, file: &Path) -> Result<Vec<Case>, ProfileError> {
    let raw = deserialize(text, file)?;
    Ok(Expander { text, file }.expand(raw)?)
}

// ---------------------------------------------------------------------------
// Deserialisation: structure and types only. Values keep their spans so the
// semantic checks below can point at them.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Option<Spanned<String>>,
    #[allow(dead_code)] // Documentation for humans; accepted, not used.
    description: Option<String>,
    protocol: Option<Spanned<String>>,
    connections: Option<Spanned<Counts>>,
    seed: Option<Spanned<i64>>,
    shape: Spanned<RawShape>,
    sizes: Option<Spanned<RawSizes>>,
}

/// Fields of every shape kind; which ones a kind uses is checked later, so
/// that a misplaced field gets a message naming the kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShape {
    kind: Spanned<String>,
    depth: Option<Spanned<i64>>,
    rate_per_second: Option<Spanned<f64>>,
    window_bytes: Option<Spanned<i64>>,
    requests_per_connection: Option<Spanned<i64>>,
    idle_connections: Option<Spanned<i64>>,
    path: Option<Spanned<String>>,
    speed: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSizes {
    distribution: Spanned<String>,
    bytes: Option<Spanned<i64>>,
    sweep_bytes: Option<Spanned<Vec<Spanned<i64>>>>,
    min_bytes: Option<Spanned<i64>>,
    max_bytes: Option<Spanned<i64>>,
    median_bytes: Option<Spanned<i64>>,
    sigma: Option<Spanned<f64>>,
    small_bytes: Option<Spanned<i64>>,
    large_bytes: Option<Spanned<i64>>,
    large_fraction: Option<Spanned<f64>>,
}

/// `connections = 64` or `connections = [1, 16, 64]`.
enum Counts {
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
    fn given(&self) -> Vec<(&'static str, Range<usize>)> {
        [
            ("depth", span_of(&self.depth)),
            ("rate_per_second", span_of(&self.rate_per_second)),
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
    fn given(&self) -> Vec<(&'static str, Range<usize>)> {
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

fn deserialize(text: &str, file: &Path) -> Result<RawProfile, InputError> {
    // Parse the document first: a syntax error gets its own message, and the
    // spanned tree maps later type errors back to the field they are in.
    let document = match DeTable::parse(text) {
        Ok(document) => document,
        Err(error) => {
            let offset = error.span().map_or(0, |span| span.start);
            return Err(InputError::at_offset(
                file,
                text,
                offset,
                "syntax",
                error.message().trim_end(),
            ));
        }
    };
    toml::from_str::<RawProfile>(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        // serde names Rust types; a profile author thinks in TOML ones.
        let message = error
            .message()
            .trim_end()
            .replace("expected i64", "expected an integer")
            .replace("expected f64", "expected a number");
        let field = match missing_field_name(&message) {
            // A missing field's span is the table it is missing from.
            Some(missing) => match table_path_with_span(document.get_ref(), &span, "") {
                Some(table) => format!("{table}.{missing}"),
                None => missing.to_string(),
            },
            None => {
                field_at(document.get_ref(), &span, "").unwrap_or_else(|| "profile".to_string())
            }
        };
        InputError::at_offset(file, text, span.start, field, message)
    })
}

/// `x` from serde's "missing field `x`".
fn missing_field_name(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

fn join_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Dotted path of the innermost key whose key or value covers `span`.
/// Tables are always searched: a `[table]` section's value span is only its
/// header, not the keys below it.
fn field_at(table: &DeTable<'_>, span: &Range<usize>, prefix: &str) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let path = join_path(prefix, key.get_ref());
        if covers(&key.span(), span) {
            return Some(path);
        }
        if let Some(inner) = value_field_at(value.get_ref(), span, &path) {
            return Some(inner);
        }
        covers(&value.span(), span).then_some(path)
    })
}

fn value_field_at(value: &DeValue<'_>, span: &Range<usize>, path: &str) -> Option<String> {
    match value {
        DeValue::Table(table) => field_at(table, span, path),
        DeValue::Array(array) => array.iter().enumerate().find_map(|(index, element)| {
            let element_path = format!("{path}[{index}]");
            value_field_at(element.get_ref(), span, &element_path)
                .or_else(|| covers(&element.span(), span).then_some(element_path))
        }),
        _ => None,
    }
}

/// Dotted path of the table whose span is exactly `span`.
fn table_path_with_span(table: &DeTable<'_>, span: &Range<usize>, prefix: &str) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let DeValue::Table(inner) = value.get_ref() else {
            return None;
        };
        let path = join_path(prefix, key.get_ref());
        if value.span() == *span {
            Some(path)
        } else {
            table_path_with_span(inner, span, &path)
        }
    })
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end.max(outer.start + 1)
}

// ---------------------------------------------------------------------------
// Semantic checks and expansion into cases.

struct Expander<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Expander<'_> {
    fn error(&self, span: Range<usize>, field: &str, message: impl Into<String>) -> InputError {
        InputError::at_offset(self.file, self.text, span.start, field, message)
    }

    /// An integer field in `low..=high`.
    fn int_in<T>(&self, value: &Spanned<i64>, field: &str, low: T, high: T) -> Result<T, InputError>
    where
        T: TryFrom<i64> + Into<u64> + Copy + std::fmt::Display,
    {
        let got = *value.get_ref();
        match T::try_from(got) {
            Ok(converted) if converted.into() >= low.into() && converted.into() <= high.into() => {
                Ok(converted)
            }
            _ => Err(self.error(
                value.span(),
                field,
                format!("must be between {low} and {high}, got {got}"),
            )),
        }
    }

    /// A float field in `(0, high]`.
    fn positive_up_to(
        &self,
        value: &Spanned<f64>,
        field: &str,
        high: f64,
    ) -> Result<f64, InputError> {
        let got = *value.get_ref();
        if got.is_finite() && got > 0.0 && got <= high {
            Ok(got)
        } else {
            Err(self.error(
                value.span(),
                field,
                format!("must be greater than 0 and at most {high}, got {got}"),
            ))
        }
    }

    fn required<'v, T>(
        &self,
        value: &'v Option<Spanned<T>>,
        table_span: &Range<usize>,
        field: &str,
        why: &str,
    ) -> Result<&'v Spanned<T>, InputError> {
        value
            .as_ref()
            .ok_or_else(|| self.error(table_span.clone(), field, format!("missing ({why})")))
    }

    /// Rejects a field the chosen kind or distribution does not use.
    fn unused<T>(
        &self,
        value: &Option<Spanned<T>>,
        field: &str,
        why: &str,
    ) -> Result<(), InputError> {
        match value {
            Some(value) => Err(self.error(value.span(), field, format!("not used {why}"))),
            None => Ok(()),
        }
    }

    /// Rejects every given parameter of table `table_name` not in `uses`.
    fn reject_unused(
        &self,
        table_name: &str,
        given: &[(&'static str, Range<usize>)],
        uses: &[&str],
        why: &str,
    ) -> Result<(), InputError> {
        match given.iter().find(|(field, _)| !uses.contains(field)) {
            Some((field, span)) => Err(self.error(
                span.clone(),
                &format!("{table_name}.{field}"),
                format!("not used {why}"),
            )),
            None => Ok(()),
        }
    }

    fn expand(&self, raw: RawProfile) -> Result<Vec<Case>, InputError> {
        let name = self.name(&raw)?;
        let protocol = match &raw.protocol {
            None => Protocol::Frame,
            Some(protocol) => match protocol.get_ref().as_str() {
                "frame" => Protocol::Frame,
                "echo" => Protocol::Echo,
                other => {
                    return Err(self.error(
                        protocol.span(),
                        "protocol",
                        format!("must be \"frame\" or \"echo\", got \"{other}\""),
                    ));
                }
            },
        };
        let seed = match &raw.seed {
            None => DEFAULT_SEED,
            Some(seed) => u64::try_from(*seed.get_ref()).map_err(|_| {
                self.error(
                    seed.span(),
                    "seed",
                    format!("must be non-negative, got {}", seed.get_ref()),
                )
            })?,
        };
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

    /// A list of 1 to [`MAX_SWEEP_POINTS`] distinct integers in
    /// `1..=high` (a sweep), each error naming `field[index]`.
    fn distinct_list(
        &self,
        list: &[Spanned<i64>],
        span: Range<usize>,
        field: &str,
        items: &str,
        high: u32,
    ) -> Result<Vec<u32>, InputError> {
        if list.is_empty() || list.len() > MAX_SWEEP_POINTS {
            return Err(self.error(
                span,
                field,
                format!(
                    "must list 1 to {MAX_SWEEP_POINTS} {items}, got {}",
                    list.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        let mut values = Vec::new();
        for (index, item) in list.iter().enumerate() {
            let item_field = format!("{field}[{index}]");
            let value = self.int_in(item, &item_field, 1u32, high)?;
            if !seen.insert(value) {
                return Err(self.error(
                    item.span(),
                    &item_field,
                    format!("{value} is listed twice"),
                ));
            }
            values.push(value);
        }
        Ok(values)
    }

    fn shape(&self, raw: &Spanned<RawShape>) -> Result<Shape, InputError> {
        let table = raw.span();
        let shape = raw.get_ref();
        let kind = shape.kind.get_ref().as_str();
        let why = format!("by shape kind \"{kind}\"");
        // Each kind names the one or two fields it uses; every other
        // parameter must be absent.
        let uses: &[&str] = match kind {
            "ping_pong" => &[],
            "pipelined" => &["depth"],
            "constant_rate" => &["rate_per_second"],
            "bulk" => &["window_bytes"],
            "churn" => &["requests_per_connection"],
            "idle_active" => &["idle_connections"],
            "trace" => &["path", "speed"],
            other => {
                return Err(self.error(
                    shape.kind.span(),
                    "shape.kind",
                    format!(
                        "unknown kind \"{other}\": use ping_pong, pipelined, constant_rate, bulk, \
                         churn, idle_active or trace"
                    ),
                ));
            }
        };
        self.reject_unused("shape", &shape.given(), uses, &why)?;

        let why = format!("required {why}");
        Ok(match kind {
            "ping_pong" => Shape::PingPong,
            "pipelined" => {
                let depth = self.required(&shape.depth, &table, "shape.depth", &why)?;
                Shape::Pipelined {
                    depth: self.int_in(depth, "shape.depth", 1u32, MAX_PIPELINE_DEPTH)?,
                }
            }
            "constant_rate" => {
                let rate = self.required(
                    &shape.rate_per_second,
                    &table,
                    "shape.rate_per_second",
                    &why,
                )?;
                Shape::ConstantRate {
                    rate_per_second: self.positive_up_to(
                        rate,
                        "shape.rate_per_second",
                        MAX_RATE_PER_SECOND,
                    )?,
                }
            }
            "bulk" => {
                let window =
                    self.required(&shape.window_bytes, &table, "shape.window_bytes", &why)?;
                Shape::Bulk {
                    window_bytes: self.int_in(
                        window,
                        "shape.window_bytes",
                        1u64,
                        MAX_WINDOW_BYTES,
                    )?,
                }
            }
            "churn" => {
                let requests = self.required(
                    &shape.requests_per_connection,
                    &table,
                    "shape.requests_per_connection",
                    &why,
                )?;
                Shape::Churn {
                    requests_per_connection: self.int_in(
                        requests,
                        "shape.requests_per_connection",
                        1u32,
                        MAX_REQUESTS_PER_CONNECTION,
                    )?,
                }
            }
            "idle_active" => {
                let idle = self.required(
                    &shape.idle_connections,
                    &table,
                    "shape.idle_connections",
                    &why,
                )?;
                Shape::IdleActive {
                    idle_connections: self.int_in(
                        idle,
                        "shape.idle_connections",
                        1u32,
                        MAX_IDLE_CONNECTIONS,
                    )?,
                }
            }
            "trace" => {
                let path = self.required(&shape.path, &table, "shape.path", &why)?;
                let speed = match &shape.speed {
                    None => 1.0,
                    Some(speed) => self.positive_up_to(speed, "shape.speed", MAX_TRACE_SPEED)?,
                };
                let relative = Path::new(path.get_ref());
                let resolved = match self.file.parent() {
                    Some(directory) if relative.is_relative() => directory.join(relative),
                    _ => relative.to_path_buf(),
                };
                Shape::Trace {
                    path: resolved,
                    speed,
                }
            }
            _ => unreachable!("every kind was matched above"),
        })
    }

    /// The size distribution(s): one, or one `Fixed` per `sweep_bytes`
    /// entry (with the swept size, for charts).
    fn sizes(
        &self,
        raw: &Spanned<RawSizes>,
    ) -> Result<Vec<(SizeDistribution, Option<u32>)>, InputError> {
        let table = raw.span();
        let sizes = raw.get_ref();
        let distribution = sizes.distribution.get_ref().as_str();
        let why = format!("by distribution \"{distribution}\"");
        let max_frame = DEFAULT_MAX_FRAME_BYTES;
        let bytes_field =
            |value: &Spanned<i64>, field: &str| self.int_in(value, field, 1u32, max_frame);

        let single = |distribution: SizeDistribution| vec![(distribution, None)];
        let uses: &[&str] = match distribution {
            "fixed" => &["bytes", "sweep_bytes"],
            "uniform" => &["min_bytes", "max_bytes"],
            "log_normal" => &["median_bytes", "sigma", "max_bytes"],
            "bimodal" => &["small_bytes", "large_bytes", "large_fraction"],
            other => {
                return Err(self.error(
                    sizes.distribution.span(),
                    "sizes.distribution",
                    format!(
                        "unknown distribution \"{other}\": use fixed, uniform, log_normal or bimodal"
                    ),
                ));
            }
        };
        self.reject_unused("sizes", &sizes.given(), uses, &why)?;
        let required = format!("required {why}");
        let need = |value, field| self.required(value, &table, field, &required);
        let distribution = match distribution {
            "fixed" => {
                return match (&sizes.bytes, &sizes.sweep_bytes) {
                    (Some(bytes), None) => Ok(single(SizeDistribution::Fixed {
                        bytes: bytes_field(bytes, "sizes.bytes")?,
                    })),
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
                };
            }
            "uniform" => SizeDistribution::Uniform {
                min_bytes: bytes_field(
                    need(&sizes.min_bytes, "sizes.min_bytes")?,
                    "sizes.min_bytes",
                )?,
                max_bytes: bytes_field(
                    need(&sizes.max_bytes, "sizes.max_bytes")?,
                    "sizes.max_bytes",
                )?,
            },
            "log_normal" => SizeDistribution::LogNormal {
                median_bytes: bytes_field(
                    need(&sizes.median_bytes, "sizes.median_bytes")?,
                    "sizes.median_bytes",
                )?,
                sigma: *self
                    .required(&sizes.sigma, &table, "sizes.sigma", &required)?
                    .get_ref(),
                max_bytes: bytes_field(
                    need(&sizes.max_bytes, "sizes.max_bytes")?,
                    "sizes.max_bytes",
                )?,
            },
            _ => SizeDistribution::Bimodal {
                small_bytes: bytes_field(
                    need(&sizes.small_bytes, "sizes.small_bytes")?,
                    "sizes.small_bytes",
                )?,
                large_bytes: bytes_field(
                    need(&sizes.large_bytes, "sizes.large_bytes")?,
                    "sizes.large_bytes",
                )?,
                large_fraction: *self
                    .required(
                        &sizes.large_fraction,
                        &table,
                        "sizes.large_fraction",
                        &required,
                    )?
                    .get_ref(),
            },
        };
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
        Ok(single(distribution))
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
