//! epoll-bench: equivalent TCP servers that differ only in epoll trigger mode
//! and copy strategy, and the tools that measure them.
//!
//! - [`sys`]: every syscall, and the only `unsafe` code, counted per thread.
//! - [`server`]: one event loop, generic over [`server::Trigger`] and
//!   [`server::CopyStrategy`], serving the `frame` and `echo` protocols.
//! - [`driver`]: profiles, load engine, server processes, orchestration.
//! - [`results`]: the versioned results schema and its aggregation.
//! - [`report`]: exporters (json, csv, markdown) that only read results.
//! - [`commands`]: the command-line subcommands.
//! - [`metrics`]: checks on the measurements (the kernel syscall cross-check).
//! - [`doctor`]: whether this machine can measure the variants, not its own limits.
//! - [`error`], [`units`], [`protocol`]: leaves every layer may use (exit
//!   codes, unit parsing, the wire and control protocols).
//!
//! Imports point down only: the layers are stated in `tests/layers.rs` and
//! explained in `docs/architecture.md`.

pub mod cli;
pub mod commands;
pub mod doctor;
pub mod driver;
pub mod error;
pub mod metrics;
pub mod protocol;
pub mod report;
pub mod results;
pub mod server;
pub mod sys;
pub mod units;
