//! A connection slot: one planned connection's socket, state and request
//! source, kept across reconnects (churn).

use crate::driver::engine::connection::Connection;
use crate::driver::engine::plan::Issue;
use crate::driver::sizes::SizeSampler;
use crate::sys::Fd;

use super::read_budget::ReadBudget;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SlotState {
    NotConnected,
    Connecting {
        started_ns: u64,
    },
    Open,
    /// Given up (failed, or finished its trace): never reopened.
    Retired,
}

pub(super) struct Slot {
    pub(super) issue: Issue,
    pub(super) conn: Connection,
    pub(super) sampler: Option<SizeSampler>,
    /// A size drawn but not yet issued (window-limited shapes look ahead).
    pub(super) peeked_size: Option<u32>,
    pub(super) state: SlotState,
    pub(super) socket: Option<Fd>,
    /// Bumped at every new socket: events carry it, so an event for a
    /// socket this slot already closed is recognised and ignored.
    pub(super) generation: u32,
    pub(super) write_blocked: bool,
    pub(super) requests_on_socket: u32,
    /// Open loop: index of the slot's next scheduled request.
    pub(super) next_scheduled: u64,
    /// Counted in `active_remaining` until it is lost or finishes its trace.
    pub(super) done: bool,
    /// Slow-consumer cases: how many response bytes it may read now.
    pub(super) read_budget: Option<ReadBudget>,
    /// Out of read budget with bytes left in the socket: an edge-triggered
    /// socket reports them no more, so a timer reads them.
    pub(super) read_parked: bool,
    /// The peer hung up while the slot was parked: read to the end.
    pub(super) peer_hung_up: bool,
}

impl Slot {
    pub(super) fn token(&self, index: usize) -> u64 {
        (u64::from(self.generation) << 32) | index as u64
    }
}

/// Seeds each slot's size stream from the case seed and the slot's id, so
/// that the sizes a connection sends do not depend on the thread count.
pub(super) fn slot_seed(seed: u64, payload_id: u32) -> u64 {
    let mut x = seed ^ (u64::from(payload_id).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    x = (x ^ (x >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 29)
}
