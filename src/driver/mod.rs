//! The driver: profiles, traces, load generation and verification.
pub mod measurement;
pub mod workload;
