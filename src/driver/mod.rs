//! The driver: profiles, traces, load generation and verification.

#![forbid(unsafe_code)]

pub mod engine;
pub mod input_error;
pub mod limits;
pub mod measurement;
pub mod orchestrator;
pub mod payload;
pub mod profile;
pub mod scale;
pub mod server_process;
pub mod sizes;
pub mod trace;
pub mod workload;
