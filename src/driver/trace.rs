//! Traces: recorded or synthetic request streams, one request a line.
//!
//! # Format (version 1)
//!
//! ```text
//! # epoll-bench trace v1: connection_id offset_us size_bytes
//! 0 0 64
//! 1 130 4096     # comments run to the end of the line
//! 0 250 64
//! ```
//!
//! - One request per line: `connection_id offset_us size_bytes`, three
//!   non-negative decimal integers separated by spaces or tabs.
//! - `connection_id` is in `0..MAX_TRACE_CONNECTIONS`. Replay opens
//!   `max(connection_id) + 1` connections; ids that never appear are opened
//!   and stay idle, so ids should be dense from 0.
//! - `offset_us` is the send time in microseconds after the start of the
//!   replay. Lines of one connection must have non-decreasing offsets (that
//!   is the order they are sent in); lines of different connections may be
//!   interleaved in any order, so per-connection logs can be concatenated.
//! - `size_bytes` is the request's payload size, `1..=16 MiB` (the default
//!   `--max-frame`).
//! - `#` starts a comment; blank lines are ignored.
//!
//! [`parse_trace`] returns the events sorted by `offset_us` (stable, so each
//! connection keeps its file order). [`generate`] makes seeded synthetic
//! traces; `epoll-bench trace generate` ([`run_trace_command`]) writes them.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::distr::{Distribution, Uniform};
use rand_chacha::ChaCha8Rng;
use rand_distr::Exp;

use crate::driver::input_error::InputError;
use crate::driver::sizes::SizeSampler;
use crate::driver::workload::TraceEvent;
use crate::protocol::DEFAULT_MAX_FRAME_BYTES;
use crate::results::workload::SizeDistribution;

/// Connection ids must be below this: replay opens one socket per id, and
/// far more than this cannot be held open against one server anyway.
pub const MAX_TRACE_CONNECTIONS: u32 = 100_000;

/// Upper bound on the requests `generate` makes (about 20 bytes a line, so
/// at most ~200 MB of trace file and 160 MB of events in memory).
pub const MAX_GENERATED_REQUESTS: u64 = 10_000_000;

/// First line of every trace this crate writes.
pub const TRACE_HEADER: &str = "# epoll-bench trace v1: connection_id offset_us size_bytes";

const FIELD_NAMES: [&str; 3] = ["connection_id", "offset_us", "size_bytes"];

/// Keeps arrival times independent of the sizes drawn from the same seed.
const ARRIVAL_STREAM: u64 = 0x4152_5249_5645; // "ARRIVE"

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{}: cannot read trace: {source}", file.display())]
    Read { file: PathBuf, source: io::Error },
    #[error("{}: cannot write trace: {source}", file.display())]
    Write { file: PathBuf, source: io::Error },
    /// A malformed line; names the file, line, column and field.
    #[error(transparent)]
    Invalid(#[from] InputError),
    /// Generation parameters that cannot make a trace (bad command-line
    /// input: the caller should exit with code 2).
    #[error("{0}")]
    InvalidSpec(String),
}

/// Reads and parses the trace file at `path`.
pub fn read_trace(path: &Path) -> Result<Vec<TraceEvent>, TraceError> {
    let text = std::fs::read_to_string(path).map_err(|source| TraceError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    Ok(parse_trace(&text, path)?)
}

/// Parses trace text; `file` is only used to name it in errors.
///
/// ~100 lines: one line-by-line pass whose every rejection names the file,
/// line and field; split, each piece would need the whole position state.
pub fn parse_trace(text: &str, file: &Path) -> Result<Vec<TraceEvent>, InputError> {
    let mut events = Vec::new();
    // Per connection: the last offset seen and the line it was on.
    let mut last_offset_us: HashMap<u32, (u64, usize)> = HashMap::new();
    let mut line_start = 0usize;
    for (line_index, raw_line) in text.split_inclusive('\n').enumerate() {
        let line_number = line_index + 1;
        let this_line_start = line_start;
        line_start += raw_line.len();
        let content = raw_line.split('#').next().unwrap_or("");
        let error_at = |column_byte: usize, field: &str, message: String| {
            InputError::at_offset(file, text, this_line_start + column_byte, field, message)
        };

        let mut fields = [0u64; 3];
        let mut field_count = 0;
        for (token_start, token) in tokens(content) {
            if field_count == FIELD_NAMES.len() {
                return Err(error_at(
                    token_start,
                    "line",
                    format!(
                        "unexpected fourth field `{token}`: a line is `{}`",
                        FIELD_NAMES.join(" ")
                    ),
                ));
            }
            let field = FIELD_NAMES[field_count];
            fields[field_count] = token.parse::<u64>().map_err(|_| {
                error_at(
                    token_start,
                    field,
                    format!("expected a non-negative integer, got `{token}`"),
                )
            })?;
            let value = fields[field_count];
            let range_error = match field_count {
                0 if value >= u64::from(MAX_TRACE_CONNECTIONS) => Some(format!(
                    "must be below {MAX_TRACE_CONNECTIONS}, got {value}"
                )),
                2 if value == 0 || value > u64::from(DEFAULT_MAX_FRAME_BYTES) => Some(format!(
                    "must be between 1 and {DEFAULT_MAX_FRAME_BYTES} bytes (the max frame), got {value}"
                )),
                _ => None,
            };
            if let Some(message) = range_error {
                return Err(error_at(token_start, field, message));
            }
            field_count += 1;
            if field_count == 2 {
                let connection = fields[0] as u32;
                let offset_us = fields[1];
                if let Some(&(previous_us, previous_line)) = last_offset_us.get(&connection)
                    && offset_us < previous_us
                {
                    return Err(error_at(
                        token_start,
                        field,
                        format!(
                            "{offset_us} is earlier than the previous request of connection \
                             {connection} ({previous_us} on line {previous_line}); offsets must \
                             not decrease within a connection"
                        ),
                    ));
                }
                last_offset_us.insert(connection, (offset_us, line_number));
            }
        }
        match field_count {
            0 => continue,
            3 => events.push(TraceEvent {
                // Both checked against their u32 bounds above.
                connection: fields[0] as u32,
                offset_us: fields[1],
                size_bytes: fields[2] as u32,
            }),
            missing_from => {
                let end = content.trim_end().len();
                return Err(error_at(
                    end,
                    FIELD_NAMES[missing_from],
                    format!("missing: a line is `{}`", FIELD_NAMES.join(" ")),
                ));
            }
        }
    }
    if events.is_empty() {
        return Err(InputError::at_offset(
            file,
            text,
            0,
            "trace",
            "contains no requests",
        ));
    }
    events.sort_by_key(|event| event.offset_us);
    Ok(events)
}

/// Whitespace-separated tokens of `line` with their byte offsets.
fn tokens(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.split([' ', '\t', '\r', '\n'])
        .filter(|token| !token.is_empty())
        .map(move |token| (token.as_ptr() as usize - line.as_ptr() as usize, token))
}

/// Writes `events` in trace format, after [`TRACE_HEADER`] and the lines of
/// `comment` (each prefixed with `# `).
pub fn write_trace(out: impl Write, events: &[TraceEvent], comment: &str) -> io::Result<()> {
    let mut out = BufWriter::new(out);
    writeln!(out, "{TRACE_HEADER}")?;
    for line in comment.lines() {
        writeln!(out, "# {line}")?;
    }
    for event in events {
        writeln!(
            out,
            "{} {} {}",
            event.connection, event.offset_us, event.size_bytes
        )?;
    }
    out.flush()
}

/// Writes a trace file atomically: a temporary file in the same directory,
/// renamed over `path` once complete, so a reader never sees half a trace.
pub fn write_trace_file(
    path: &Path,
    events: &[TraceEvent],
    comment: &str,
) -> Result<(), TraceError> {
    let write_error = |source| TraceError::Write {
        file: path.to_path_buf(),
        source,
    };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::NamedTempFile::new_in(directory).map_err(write_error)?;
    write_trace(temporary.as_file_mut(), events, comment).map_err(write_error)?;
    temporary.as_file().sync_all().map_err(write_error)?;
    temporary
        .persist(path)
        .map_err(|persist| write_error(persist.error))?;
    Ok(())
}

/// What a trace asks of a replay, for reports and for building its case.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSummary {
    pub requests: u64,
    /// `max(connection_id) + 1`: the connections a replay opens.
    pub connections: u32,
    /// Offset of the last request.
    pub span_us: u64,
    pub mean_size_bytes: f64,
    pub max_size_bytes: u32,
}

/// Summarises a non-empty trace.
pub fn summarize(events: &[TraceEvent]) -> TraceSummary {
    let total_bytes: u64 = events.iter().map(|e| u64::from(e.size_bytes)).sum();
    TraceSummary {
        requests: events.len() as u64,
        connections: events.iter().map(|e| e.connection + 1).max().unwrap_or(0),
        span_us: events.iter().map(|e| e.offset_us).max().unwrap_or(0),
        mean_size_bytes: total_bytes as f64 / events.len().max(1) as f64,
        max_size_bytes: events.iter().map(|e| e.size_bytes).max().unwrap_or(0),
    }
}

/// How requests arrive in a generated trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arrivals {
    /// Exponential gaps (a Poisson process), each request on a uniformly
    /// chosen connection: independent clients.
    Poisson,
    /// Evenly spaced requests, connections in round-robin order.
    Fixed,
}

/// When a generated trace ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TraceLength {
    Requests(u64),
    /// Every request with an offset below this many microseconds.
    DurationUs(u64),
}

/// Parameters of a synthetic trace. Same spec (seed included) → same trace.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateSpec {
    pub connections: u32,
    pub length: TraceLength,
    /// Requests per second over all connections.
    pub rate_per_second: f64,
    pub arrivals: Arrivals,
    pub sizes: SizeDistribution,
    pub seed: u64,
}

impl GenerateSpec {
    /// Checks the parameters; messages name the command-line flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.connections == 0 || self.connections > MAX_TRACE_CONNECTIONS {
            return Err(format!(
                "--connections: must be between 1 and {MAX_TRACE_CONNECTIONS}, got {}",
                self.connections
            ));
        }
        if !(self.rate_per_second.is_finite() && self.rate_per_second > 0.0) {
            return Err(format!(
                "--rate-per-second: must be a positive number, got {}",
                self.rate_per_second
            ));
        }
        let expected_requests = match self.length {
            TraceLength::Requests(count) => {
                if count == 0 {
                    return Err("--requests: must be at least 1".to_string());
                }
                count as f64
            }
            TraceLength::DurationUs(duration_us) => {
                if duration_us == 0 {
                    return Err("--duration-seconds: must be positive".to_string());
                }
                duration_us as f64 / 1e6 * self.rate_per_second
            }
        };
        if expected_requests > MAX_GENERATED_REQUESTS as f64 {
            return Err(format!(
                "the trace would hold about {expected_requests:.0} requests, more than the \
                 {MAX_GENERATED_REQUESTS} allowed: lower --requests, --duration-seconds or \
                 --rate-per-second"
            ));
        }
        if matches!(self.sizes, SizeDistribution::FromTrace { .. }) {
            return Err("--size: a generated trace needs a distribution to draw from".to_string());
        }
        self.sizes
            .validate()
            .map_err(|message| format!("--size: {message}"))
    }
}

/// Makes the trace `spec` describes.
///
/// # Panics
/// If `spec.validate()` fails.
pub fn generate(spec: &GenerateSpec) -> Vec<TraceEvent> {
    if let Err(message) = spec.validate() {
        panic!("invalid trace spec: {message}");
    }
    let mut sizes = SizeSampler::new(&spec.sizes, spec.seed);
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    rng.set_stream(ARRIVAL_STREAM);
    let rate_per_us = spec.rate_per_second / 1e6;
    let gap_us = Exp::new(rate_per_us).expect("validated: rate is positive and finite");
    let pick_connection =
        Uniform::new(0, spec.connections).expect("validated: at least one connection");

    let mut events = Vec::new();
    let mut time_us = 0.0f64;
    for index in 0u64.. {
        if let TraceLength::Requests(count) = spec.length
            && index == count
        {
            break;
        }
        let offset_us = time_us.round() as u64;
        if let TraceLength::DurationUs(duration_us) = spec.length
            && offset_us >= duration_us
        {
            break;
        }
        let connection = match spec.arrivals {
            Arrivals::Poisson => pick_connection.sample(&mut rng),
            // The remainder is below `connections`, a u32.
            Arrivals::Fixed => (index % u64::from(spec.connections)) as u32,
        };
        events.push(TraceEvent {
            connection,
            offset_us,
            size_bytes: sizes.next_size(),
        });
        time_us = match spec.arrivals {
            Arrivals::Poisson => time_us + gap_us.sample(&mut rng),
            // Multiplying instead of accumulating keeps long traces free of
            // rounding drift.
            Arrivals::Fixed => (index + 1) as f64 / rate_per_us,
        };
    }
    events
}

/// Parses a `--size` value: `fixed:BYTES`, `uniform:MIN:MAX`,
/// `log-normal:MEDIAN:SIGMA:MAX` or `bimodal:SMALL:LARGE:LARGE_FRACTION`.
pub fn parse_size_spec(spec: &str) -> Result<SizeDistribution, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bytes = |index: usize, name: &str| -> Result<u32, String> {
        parts[index]
            .parse::<u32>()
            .map_err(|_| format!("{name}: expected a byte count, got `{}`", parts[index]))
    };
    let number = |index: usize, name: &str| -> Result<f64, String> {
        parts[index]
            .parse::<f64>()
            .map_err(|_| format!("{name}: expected a number, got `{}`", parts[index]))
    };
    let expect_parts = |count: usize, form: &str| {
        if parts.len() == count {
            Ok(())
        } else {
            Err(format!("expected `{form}`, got `{spec}`"))
        }
    };
    let distribution = match parts[0] {
        "fixed" => {
            expect_parts(2, "fixed:BYTES")?;
            SizeDistribution::Fixed {
                bytes: bytes(1, "BYTES")?,
            }
        }
        "uniform" => {
            expect_parts(3, "uniform:MIN:MAX")?;
            SizeDistribution::Uniform {
                min_bytes: bytes(1, "MIN")?,
                max_bytes: bytes(2, "MAX")?,
            }
        }
        "log-normal" => {
            expect_parts(4, "log-normal:MEDIAN:SIGMA:MAX")?;
            SizeDistribution::LogNormal {
                median_bytes: bytes(1, "MEDIAN")?,
                sigma: number(2, "SIGMA")?,
                max_bytes: bytes(3, "MAX")?,
            }
        }
        "bimodal" => {
            expect_parts(4, "bimodal:SMALL:LARGE:LARGE_FRACTION")?;
            SizeDistribution::Bimodal {
                small_bytes: bytes(1, "SMALL")?,
                large_bytes: bytes(2, "LARGE")?,
                large_fraction: number(3, "LARGE_FRACTION")?,
            }
        }
        other => {
            return Err(format!(
                "unknown distribution `{other}`: use fixed:BYTES, uniform:MIN:MAX, \
                 log-normal:MEDIAN:SIGMA:MAX or bimodal:SMALL:LARGE:LARGE_FRACTION"
            ));
        }
    };
    distribution.validate()?;
    Ok(distribution)
}

/// `epoll-bench trace ...`
#[derive(Clone, Debug, clap::Args)]
pub struct TraceArgs {
    #[command(subcommand)]
    pub command: TraceCommand,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum TraceCommand {
    /// Write a seeded synthetic trace (same arguments → same file).
    Generate(GenerateArgs),
}

#[derive(Clone, Debug, clap::Args)]
pub struct GenerateArgs {
    /// Trace file to write (replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Connections the requests are spread over.
    #[arg(
        long,
        default_value_t = 16,
        value_parser = crate::units::number(1..=MAX_TRACE_CONNECTIONS, "")
    )]
    pub connections: u32,
    /// Number of requests to generate.
    #[arg(
        long,
        required_unless_present = "duration_seconds",
        conflicts_with = "duration_seconds",
        value_parser = crate::units::number(1..=MAX_GENERATED_REQUESTS, "")
    )]
    pub requests: Option<u64>,
    /// Generate every request that starts within this many seconds.
    #[arg(
        long,
        value_parser = crate::units::number((Excluded(0.0), Included(1e6)), "seconds")
    )]
    pub duration_seconds: Option<f64>,
    /// Requests per second over all connections.
    #[arg(long, value_parser = crate::units::number((Excluded(0.0), Unbounded), ""))]
    pub rate_per_second: f64,
    /// Arrival process.
    #[arg(long, value_enum, default_value_t = Arrivals::Poisson)]
    pub arrivals: Arrivals,
    /// Request sizes: fixed:BYTES, uniform:MIN:MAX, log-normal:MEDIAN:SIGMA:MAX
    /// (clamped to [1, MAX]) or bimodal:SMALL:LARGE:LARGE_FRACTION.
    #[arg(long, default_value = "fixed:64", value_parser = parse_size_spec)]
    pub size: SizeDistribution,
    /// Seed for sizes and arrivals.
    #[arg(long, default_value_t = 1, value_parser = crate::units::number(0u64.., ""))]
    pub seed: u64,
}

impl GenerateArgs {
    /// The spec these arguments describe, validated.
    pub fn spec(&self) -> Result<GenerateSpec, TraceError> {
        let length = match (self.requests, self.duration_seconds) {
            (Some(count), _) => TraceLength::Requests(count),
            (None, Some(seconds)) => {
                if !(seconds.is_finite() && seconds > 0.0 && seconds <= 1e6) {
                    return Err(TraceError::InvalidSpec(format!(
                        "--duration-seconds: must be between 0 and 1000000, got {seconds}"
                    )));
                }
                TraceLength::DurationUs((seconds * 1e6).round() as u64)
            }
            (None, None) => {
                return Err(TraceError::InvalidSpec(
                    "give --requests or --duration-seconds".to_string(),
                ));
            }
        };
        let spec = GenerateSpec {
            connections: self.connections,
            length,
            rate_per_second: self.rate_per_second,
            arrivals: self.arrivals,
            sizes: self.size.clone(),
            seed: self.seed,
        };
        spec.validate().map_err(TraceError::InvalidSpec)?;
        Ok(spec)
    }
}

/// Runs `epoll-bench trace ...`. Bad arguments come back as
/// [`TraceError::InvalidSpec`] inside the `anyhow::Error` (downcast it to
/// exit with code 2).
pub fn run_trace_command(args: &TraceArgs) -> anyhow::Result<()> {
    match &args.command {
        TraceCommand::Generate(generate_args) => {
            let spec = generate_args.spec()?;
            let events = generate(&spec);
            let comment = format!(
                "generated: connections={} length={:?} rate_per_second={} arrivals={:?} sizes={:?} seed={}",
                spec.connections,
                spec.length,
                spec.rate_per_second,
                spec.arrivals,
                spec.sizes,
                spec.seed
            );
            write_trace_file(&generate_args.out, &events, &comment)?;
            let summary = summarize(&events);
            println!(
                "wrote {} requests on {} connections over {:.3} s (mean {:.0} B, max {} B) to {}",
                summary.requests,
                summary.connections,
                summary.span_us as f64 / 1e6,
                summary.mean_size_bytes,
                summary.max_size_bytes,
                generate_args.out.display()
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<TraceEvent>, InputError> {
        parse_trace(text, Path::new("t.trace"))
    }

    #[test]
    fn parses_comments_blank_lines_and_sorts_by_offset() {
        let events = parse("# header\n\n1 200 10 # late\n0 100 20\n\t0  300\t30\n").unwrap();
        let offsets: Vec<u64> = events.iter().map(|e| e.offset_us).collect();
        assert_eq!(offsets, [100, 200, 300]);
        assert_eq!(
            events[1],
            TraceEvent {
                connection: 1,
                offset_us: 200,
                size_bytes: 10
            }
        );
    }

    #[test]
    fn errors_name_line_column_and_field() {
        let cases = [
            (
                "0 0 64\n0 x 64\n",
                "t.trace:2:3: offset_us: expected a non-negative integer, got `x`",
            ),
            ("0 0 0\n", "t.trace:1:5: size_bytes: must be between 1 and"),
            ("0 0\n", "t.trace:1:4: size_bytes: missing"),
            (
                "0 0 1 9\n",
                "t.trace:1:7: line: unexpected fourth field `9`",
            ),
            (
                "100000 0 1\n",
                "t.trace:1:1: connection_id: must be below 100000",
            ),
            (
                "3 50 1\n3 40 1\n",
                "t.trace:2:3: offset_us: 40 is earlier than the previous request of connection 3 (50 on line 1)",
            ),
            ("# nothing\n", "t.trace:1:1: trace: contains no requests"),
        ];
        for (text, expected) in cases {
            let message = parse(text).unwrap_err().to_string();
            assert!(message.starts_with(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn size_specs_parse_and_reject_nonsense() {
        assert_eq!(
            parse_size_spec("fixed:64"),
            Ok(SizeDistribution::Fixed { bytes: 64 })
        );
        assert_eq!(
            parse_size_spec("log-normal:512:1.5:65536"),
            Ok(SizeDistribution::LogNormal {
                median_bytes: 512,
                sigma: 1.5,
                max_bytes: 65536
            })
        );
        assert!(
            parse_size_spec("uniform:10")
                .unwrap_err()
                .contains("uniform:MIN:MAX")
        );
        assert!(
            parse_size_spec("uniform:10:5")
                .unwrap_err()
                .starts_with("max_bytes")
        );
        assert!(
            parse_size_spec("bimodal:1:2:x")
                .unwrap_err()
                .starts_with("LARGE_FRACTION")
        );
        assert!(
            parse_size_spec("zipf:1")
                .unwrap_err()
                .contains("unknown distribution")
        );
    }

    #[test]
    fn fixed_arrivals_are_evenly_spaced_round_robin() {
        let events = generate(&GenerateSpec {
            connections: 3,
            length: TraceLength::Requests(6),
            rate_per_second: 1000.0,
            arrivals: Arrivals::Fixed,
            sizes: SizeDistribution::Fixed { bytes: 8 },
            seed: 0,
        });
        let got: Vec<(u32, u64)> = events.iter().map(|e| (e.connection, e.offset_us)).collect();
        assert_eq!(
            got,
            [
                (0, 0),
                (1, 1000),
                (2, 2000),
                (0, 3000),
                (1, 4000),
                (2, 5000)
            ]
        );
    }

    #[test]
    fn duration_bounds_the_offsets() {
        let events = generate(&GenerateSpec {
            connections: 4,
            length: TraceLength::DurationUs(2_000_000),
            rate_per_second: 5000.0,
            arrivals: Arrivals::Poisson,
            sizes: SizeDistribution::Fixed { bytes: 8 },
            seed: 3,
        });
        assert!(events.iter().all(|e| e.offset_us < 2_000_000));
        // 10,000 expected; a Poisson count has standard deviation 100.
        assert!((9_500..=10_500).contains(&events.len()), "{}", events.len());
    }
}
