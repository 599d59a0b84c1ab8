//! The driver: profiles, traces, load generation and verification.
pub mod measurement;
pub mod server_process;
pub mod workload;
