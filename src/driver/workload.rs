//! What the driver replays from a trace file, one event at a time. The case
//! it belongs to is a results type, [`crate::results::workload::Case`].

use serde::{Deserialize, Serialize};

/// One request of a trace: sent on `connection` at `offset_us` after the
/// start, with a payload of `size_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    pub connection: u32,
    pub offset_us: u64,
    pub size_bytes: u32,
}
