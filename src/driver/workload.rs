//! What the driver replays from a trace file, one event at a time. The case
//! it belongs to is a results type, [`crate::results::workload::Case`].

use serde::{Deserialize, Serialize};

// Transitional: the case types used to live here. Kept so that code written
// against the old path still compiles while branches merge; import them from
// `crate::results::workload` instead.
pub use crate::results::workload::{Case, Shape, SizeDistribution};

/// One request of a trace: sent on `connection` at `offset_us` after the
/// start, with a payload of `size_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    pub connection: u32,
    pub offset_us: u64,
    pub size_bytes: u32,
}
