//! Errors that decide the exit code, and the exit codes themselves.
//!
//! A leaf module: every layer may return these, and it imports nothing from
//! the crate, so `commands`, `driver` or `results` never have to reach up
//! into `cli` for them.

#![forbid(unsafe_code)]

/// Exit code for bad usage: flags, addresses, input files.
pub const EXIT_USAGE: i32 = 2;
/// Exit code for a failure while running.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of a run stopped by SIGINT/SIGTERM after saving what finished,
/// the shell's 128 + SIGINT so scripts can tell it from a failure.
pub const EXIT_INTERRUPTED: i32 = 130;

/// An error that should end the program with [`EXIT_USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A measurement session stopped by the user: partial results were saved,
/// the program ends with [`EXIT_INTERRUPTED`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);
