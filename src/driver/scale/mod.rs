//! Connections beyond one process: the plan of how many driver processes
//! and loopback source addresses N connections need ([`plan`]), the worker
//! processes that hold idle connections ([`holder`], started and stopped by
//! [`fleet`]), and the listen-drop counters read over the ramp
//! ([`netstat`]).

pub mod fleet;
pub mod holder;
pub mod netstat;
/// The plan is pure arithmetic over machine limits, kept in `results` so
/// the doctor (beside the driver) plans with the same code.
pub use crate::results::scale_plan as plan;
