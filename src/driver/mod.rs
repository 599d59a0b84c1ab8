//! The driver: profiles, traces, load generation and verification.
pub mod workload;
