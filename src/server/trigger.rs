//! The trigger axis: how a connection is registered with epoll and how much
//! the loop reads per readiness event. One function per decision, so the
//! difference between the modes is exactly what is written here.

use crate::sys::epoll;

/// What the last read-family call told the loop about the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadHint {
    /// The call returned fewer bytes than asked: the receive queue was empty
    /// at that moment.
    pub short: bool,
    /// The call completed a request exactly, so the loop cannot tell whether
    /// more bytes wait without another call.
    pub frame_boundary: bool,
}

pub trait Trigger: 'static {
    /// The variant-name prefix, e.g. `lt`.
    const NAME: &'static str;
    /// Whether epoll reports a ready connection until it is drained (level)
    /// or only when it becomes ready (edge).
    const EDGE: bool;

    /// Interest a new connection is registered with.
    fn initial_interest() -> u32;

    /// The interest a connection needs now, or `None` when this trigger
    /// never changes a registration after adding it.
    fn wanted_interest(want_read: bool, want_write: bool) -> Option<u32>;

    /// Whether to issue another read after one that moved bytes.
    fn keep_reading(hint: ReadHint) -> bool;
}

/// Level-triggered: interest follows what the connection needs, changed with
/// `EPOLL_CTL_MOD`; reads stop as soon as a read could have drained the
/// socket, because epoll will report it again if bytes remain.
pub struct Level;

impl Trigger for Level {
    const NAME: &'static str = "lt";
    const EDGE: bool = false;

    fn initial_interest() -> u32 {
        epoll::IN | epoll::RDHUP
    }

    fn wanted_interest(want_read: bool, want_write: bool) -> Option<u32> {
        let mut events = 0;
        if want_read {
            events |= epoll::IN | epoll::RDHUP;
        }
        if want_write {
            events |= epoll::OUT;
        }
        Some(events)
    }

    fn keep_reading(hint: ReadHint) -> bool {
        !hint.short && !hint.frame_boundary
    }
}

/// Edge-triggered: registered once for everything; since epoll reports a
/// connection only when new bytes arrive, the loop must read until EAGAIN
/// (or, with `SHORT_READ_STOP`, until a short read proves the queue empty).
pub struct Edge<const SHORT_READ_STOP: bool>;

impl<const SHORT_READ_STOP: bool> Trigger for Edge<SHORT_READ_STOP> {
    const NAME: &'static str = "et";
    const EDGE: bool = true;

    fn initial_interest() -> u32 {
        epoll::IN | epoll::OUT | epoll::RDHUP | epoll::ET
    }

    fn wanted_interest(_want_read: bool, _want_write: bool) -> Option<u32> {
        None
    }

    fn keep_reading(hint: ReadHint) -> bool {
        // A frame boundary proves nothing about the queue, and stopping there
        // would strand pipelined requests until the next edge.
        !(SHORT_READ_STOP && hint.short)
    }
}
