//! Traffic profiles: small TOML files that expand into [`Case`]s.
//!
//! The schema is documented in `docs/profiles.md`; in short:
//!
//! ```toml
//! name = "pingpong-64b"         # optional, defaults to the file name
//! description = "..."           # optional
//! protocol = "frame"            # frame (default) | echo | file
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
//!
//! [client]                      # optional: slow consumers
//! receive_buffer_bytes = 4096   # SO_RCVBUF before connect
//! read_rate_bytes_per_second = 16000000
//! ```
//!
//! `constant_rate` takes `rates_per_second = [...]` and `idle_active` a list
//! of `idle_connections`, one case per point, like `connections` lists.
//!
//! Every error names the file, line, column and field, e.g.
//! `profiles/x.toml:7:9: shape.depth: must be between 1 and 4096, got 0`.
//! Unknown fields are rejected, and so are fields that the chosen `kind` or
//! `distribution` does not use, so a typo never silently falls back to a
//! default.
//!
//! Built-in profiles live in `profiles/` at the repository root and are
//! embedded in the binary, so `run` works from any directory.

mod client;
mod deserialize;
mod expand;
mod fields;
mod limits;
pub use limits::{server_descriptor_shortfall, server_thread_shortfall};
mod raw;
mod shape;
mod sizes;

use std::path::{Path, PathBuf};

use crate::driver::input_error::InputError;
use crate::results::workload::Case;
use deserialize::deserialize;
use fields::Expander;

pub use limits::{
    DEFAULT_SEED, FD_HEADROOM, MAX_ACTIVE_CONNECTIONS, MAX_IDLE_CONNECTIONS, MAX_PIPELINE_DEPTH,
    MAX_RATE_PER_SECOND, MAX_READ_RATE_BYTES_PER_SECOND, MAX_RECEIVE_BUFFER_BYTES,
    MAX_REQUESTS_PER_CONNECTION, MAX_SWEEP_POINTS, MAX_TRACE_SPEED, MAX_WINDOW_BYTES,
    MIN_READ_RATE_BYTES_PER_SECOND, MIN_RECEIVE_BUFFER_BYTES,
};

/// Embeds `profiles/<name>.toml` for each name, as `(name, text)` pairs.
macro_rules! embed_profiles {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../profiles/", $name, ".toml")))),*]
    };
}

/// The built-in profiles, embedded so the binary needs no files at run time.
const BUILTIN_PROFILES: &[(&str, &str)] = embed_profiles![
    "pingpong-64b-1conn",
    "pingpong-64b-64conn",
    "pingpong-64b-1000conn",
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
    "fixed-load-25k-64conn",
    "backpressure-slow-reader",
    "load-latency-sweep",
    "idle-scale",
    "file-4k-1conn",
    "file-16m",
    "file-size-sweep",
    "idle-scale-1000-active",
    "c1m",
    "idle-scale-file-1000-active",
];

/// The built-in profiles `run` uses when no `--profile` is given: one case
/// each, cheap enough for every variant × 3 repetitions in two minutes.
/// The expensive ones (`size-sweep`, `connections-sweep`,
/// `load-latency-sweep`, `idle-scale`, `idle-scale-1000-active`, `c1m`,
/// `pingpong-64b-1000conn`, ...) are selected by name: thousands of
/// connects per window and variant, and further cases sharing the budget,
/// would shorten every default window. So are the
/// file-protocol ones (`file-4k-1conn`, `file-16m`, `file-size-sweep`):
/// only the file strategies serve them, and the default budget is already
/// spent on every variant's frame and echo cases.
pub const DEFAULT_SUITE: &[&str] = &[
    "pingpong-64b-1conn",
    "pingpong-64b-64conn",
    "pipelined-16-64b",
    "bulk-1mib",
    "constant-rate-10k",
    "echo-pingpong-1kib",
    "fixed-load-25k-64conn",
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

/// The cases of the built-in profile `name`, checked against this
/// machine's file-descriptor limit. Errors name the file as
/// `profiles/<name>.toml`.
pub fn load_builtin(name: &str) -> Result<Vec<Case>, ProfileError> {
    let (_, text) = BUILTIN_PROFILES
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .ok_or_else(|| ProfileError::Unknown {
            name: name.to_string(),
            builtins: builtin_names(),
        })?;
    parse_with_limit(
        text,
        &PathBuf::from(format!("profiles/{name}.toml")),
        machine_nofile_hard_limit(),
    )
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

/// Reads the profile file at `path` and expands it into cases, checked
/// against this machine's file-descriptor limit.
pub fn load_profile(path: &Path) -> Result<Vec<Case>, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse_with_limit(&text, path, machine_nofile_hard_limit())
}

/// Expands profile text into cases. `file` names the profile in errors,
/// gives the default `name` (its stem), and anchors a relative
/// `shape.path` (resolved against the file's directory). Checks the
/// profile alone: whether its connections fit a machine is for
/// [`parse_profile_within_fd_limit`] and the loaders.
pub fn parse_profile(text: &str, file: &Path) -> Result<Vec<Case>, ProfileError> {
    parse_with_limit(text, file, None)
}

/// Like [`parse_profile`], and refuses any case whose connections (active
/// and idle, one descriptor each, plus [`FD_HEADROOM`]) exceed
/// `nofile_hard_limit` in the driver or the server process, naming the
/// limit, so that such a run fails before it starts rather than mid-way.
pub fn parse_profile_within_fd_limit(
    text: &str,
    file: &Path,
    nofile_hard_limit: u64,
) -> Result<Vec<Case>, ProfileError> {
    parse_with_limit(text, file, Some(nofile_hard_limit))
}

fn parse_with_limit(
    text: &str,
    file: &Path,
    nofile_hard_limit: Option<u64>,
) -> Result<Vec<Case>, ProfileError> {
    let raw = deserialize(text, file)?;
    Ok(Expander {
        text,
        file,
        nofile_hard_limit,
    }
    .expand(raw)?)
}

/// This process's hard RLIMIT_NOFILE; `None` (no check) if unreadable. The
/// server is started by this process and inherits the same limit.
pub fn machine_nofile_hard_limit() -> Option<u64> {
    crate::sys::rlimit::nofile().ok().map(|(_, hard)| hard)
}
