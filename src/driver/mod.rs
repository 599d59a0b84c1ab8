//! The driver: profiles, traces, load generation and verification.
pub mod measurement;
pub mod payload;
pub mod sizes;
pub mod workload;
