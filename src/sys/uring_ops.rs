//! Per-thread io_uring operation accounting: the second currency beside
//! syscalls. One `io_uring_enter` may carry many operations, so syscalls
//! per request can fall below 1 while the kernel still does the work of
//! every operation; these counts say how much.
//!
//! The io_uring ring (`Ring`, beside this file) reports every SQE it queues and every CQE
//! it reaps here, by opcode; a multishot variant also reports its re-arms
//! ([`note_multishot_rearm`]) and buffer-ring refills
//! ([`note_buffer_ring_refill`]). Same cells and the same on/off switch as
//! the syscall counters ([`counters::counting`]): built in with the
//! `count-syscalls` feature, switched off with `serve
//! --no-syscall-counting`.

use std::cell::Cell;

use io_uring::{opcode, squeue};
use serde::{Deserialize, Serialize};

use super::counters;

/// One kind of io_uring operation, by opcode; multishot accept and receive
/// apart from their one-shot forms (same opcode, a flag in `ioprio`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UringOp {
    Accept,
    AcceptMultishot,
    Recv,
    RecvMultishot,
    Send,
    Readv,
    Writev,
    Sendmsg,
    PollAdd,
    AsyncCancel,
    Splice,
    /// `IORING_OP_CLOSE`, of a registered file's slot.
    Close,
    /// Any opcode not listed above, so that totals stay complete.
    Other,
}

pub const OP_COUNT: usize = 13;

/// `IORING_ACCEPT_MULTISHOT` and `IORING_RECV_MULTISHOT`, in the SQE's
/// `ioprio` (the kernel's uapi; the values the `io-uring` crate sets).
const ACCEPT_MULTISHOT: u16 = 1 << 0;
const RECV_MULTISHOT: u16 = 1 << 1;

impl UringOp {
    pub const ALL: [UringOp; OP_COUNT] = [
        UringOp::Accept,
        UringOp::AcceptMultishot,
        UringOp::Recv,
        UringOp::RecvMultishot,
        UringOp::Send,
        UringOp::Readv,
        UringOp::Writev,
        UringOp::Sendmsg,
        UringOp::PollAdd,
        UringOp::AsyncCancel,
        UringOp::Splice,
        UringOp::Close,
        UringOp::Other,
    ];

    /// The name reports use: the opcode without `IORING_OP_`, lower case.
    pub fn name(self) -> &'static str {
        match self {
            UringOp::Accept => "accept",
            UringOp::AcceptMultishot => "accept_multishot",
            UringOp::Recv => "recv",
            UringOp::RecvMultishot => "recv_multishot",
            UringOp::Send => "send",
            UringOp::Readv => "readv",
            UringOp::Writev => "writev",
            UringOp::Sendmsg => "sendmsg",
            UringOp::PollAdd => "poll_add",
            UringOp::AsyncCancel => "async_cancel",
            UringOp::Splice => "splice",
            UringOp::Close => "close",
            UringOp::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<UringOp> {
        UringOp::ALL.into_iter().find(|op| op.name() == name)
    }

    /// What an SQE asks for, read off the entry itself, so that every
    /// operation queued through the ring is counted whatever builds it.
    pub fn of_sqe(sqe: &squeue::Entry) -> UringOp {
        let code = u8::try_from(sqe.get_opcode()).unwrap_or(u8::MAX);
        let multishot = |flag: u16| sqe_ioprio(sqe) & flag != 0;
        match code {
            opcode::Accept::CODE if multishot(ACCEPT_MULTISHOT) => UringOp::AcceptMultishot,
            opcode::Accept::CODE => UringOp::Accept,
            opcode::Recv::CODE if multishot(RECV_MULTISHOT) => UringOp::RecvMultishot,
            opcode::Recv::CODE => UringOp::Recv,
            opcode::Send::CODE => UringOp::Send,
            opcode::Readv::CODE => UringOp::Readv,
            opcode::Writev::CODE => UringOp::Writev,
            opcode::SendMsg::CODE => UringOp::Sendmsg,
            opcode::PollAdd::CODE => UringOp::PollAdd,
            opcode::AsyncCancel::CODE => UringOp::AsyncCancel,
            opcode::Splice::CODE => UringOp::Splice,
            opcode::Close::CODE => UringOp::Close,
            _ => UringOp::Other,
        }
    }
}

// `squeue::Entry` is `#[repr(C)]` around the kernel's 64-byte
// `io_uring_sqe`, whose `ioprio` is the `u16` at byte 2 (after `opcode`
// and `flags`): a fixed ABI. The crate has no getter for it.
const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);
const IOPRIO_OFFSET: usize = 2;

fn sqe_ioprio(sqe: &squeue::Entry) -> u16 {
    let base = (sqe as *const squeue::Entry).cast::<u8>();
    // SAFETY: the entry is 64 initialised bytes (the crate builds every
    // SQE from zeroed memory) laid out as the kernel's `io_uring_sqe`
    // (`repr(C)`, size asserted above), so bytes 2..4 are `ioprio`, inside
    // the borrowed entry; read unaligned, as a plain copy.
    unsafe { std::ptr::read_unaligned(base.add(IOPRIO_OFFSET).cast::<u16>()) }
}

/// Counts indexed by [`UringOp`], serialised as a map from the operation's
/// name to the count, zero counts left out (as `KindCounts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts(pub [u64; OP_COUNT]);

impl OpCounts {
    pub fn get(&self, op: UringOp) -> u64 {
        self.0[op as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    pub fn add(&mut self, other: &OpCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    pub fn since(&self, earlier: &OpCounts) -> OpCounts {
        let mut out = OpCounts::default();
        for (i, slot) in out.0.iter_mut().enumerate() {
            *slot = self.0[i].saturating_sub(earlier.0[i]);
        }
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = (UringOp, u64)> + '_ {
        UringOp::ALL.into_iter().map(|op| (op, self.get(op)))
    }
}

impl Serialize for OpCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let nonzero: Vec<(UringOp, u64)> = self.iter().filter(|(_, n)| *n != 0).collect();
        let mut map = serializer.serialize_map(Some(nonzero.len()))?;
        for (op, count) in nonzero {
            map.serialize_entry(op.name(), &count)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for OpCounts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, u64>::deserialize(deserializer)?;
        let mut out = OpCounts::default();
        for (name, count) in map {
            let op = UringOp::from_name(&name).ok_or_else(|| {
                serde::de::Error::custom(format!("unknown io_uring operation `{name}`"))
            })?;
            out.0[op as usize] = count;
        }
        Ok(out)
    }
}

/// What one thread's io_uring counters held at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UringOpCounts {
    /// SQEs queued for the kernel, by operation (each is submitted by the
    /// next `io_uring_enter`).
    pub sqes: OpCounts,
    /// CQEs reaped, by the operation they complete (a multishot operation
    /// completes many times).
    pub cqes: OpCounts,
    /// Multishot operations queued again after the kernel ended them.
    #[serde(default)]
    pub multishot_rearms: u64,
    /// Buffers given back to a provided-buffer ring.
    #[serde(default)]
    pub buffer_ring_refills: u64,
}

impl UringOpCounts {
    pub fn add(&mut self, other: &UringOpCounts) {
        self.sqes.add(&other.sqes);
        self.cqes.add(&other.cqes);
        self.multishot_rearms += other.multishot_rearms;
        self.buffer_ring_refills += other.buffer_ring_refills;
    }

    pub fn since(&self, earlier: &UringOpCounts) -> UringOpCounts {
        UringOpCounts {
            sqes: self.sqes.since(&earlier.sqes),
            cqes: self.cqes.since(&earlier.cqes),
            multishot_rearms: self
                .multishot_rearms
                .saturating_sub(earlier.multishot_rearms),
            buffer_ring_refills: self
                .buffer_ring_refills
                .saturating_sub(earlier.buffer_ring_refills),
        }
    }
}

struct ThreadOps {
    sqes: [Cell<u64>; OP_COUNT],
    cqes: [Cell<u64>; OP_COUNT],
    multishot_rearms: Cell<u64>,
    buffer_ring_refills: Cell<u64>,
}

thread_local! {
    static OPS: ThreadOps = const {
        ThreadOps {
            sqes: [const { Cell::new(0) }; OP_COUNT],
            cqes: [const { Cell::new(0) }; OP_COUNT],
            multishot_rearms: Cell::new(0),
            buffer_ring_refills: Cell::new(0),
        }
    };
}

#[inline(always)]
fn bump(cell: &Cell<u64>) {
    cell.set(cell.get().wrapping_add(1));
}

/// One SQE queued.
#[inline(always)]
pub(crate) fn submitted(op: UringOp) {
    if counters::counting() {
        OPS.with(|o| bump(&o.sqes[op as usize]));
    }
}

/// One CQE reaped.
#[inline(always)]
pub(crate) fn reaped(op: UringOp) {
    if counters::counting() {
        OPS.with(|o| bump(&o.cqes[op as usize]));
    }
}

/// A multishot operation queued again after its last completion (one
/// without `IORING_CQE_F_MORE`); its SQE is counted as usual too.
pub fn note_multishot_rearm() {
    if counters::counting() {
        OPS.with(|o| bump(&o.multishot_rearms));
    }
}

/// A buffer handed back to a provided-buffer ring.
pub fn note_buffer_ring_refill() {
    if counters::counting() {
        OPS.with(|o| bump(&o.buffer_ring_refills));
    }
}

/// The calling thread's io_uring counters right now.
pub fn snapshot() -> UringOpCounts {
    OPS.with(|o| {
        let mut out = UringOpCounts::default();
        for i in 0..OP_COUNT {
            out.sqes.0[i] = o.sqes[i].get();
            out.cqes.0[i] = o.cqes[i].get();
        }
        out.multishot_rearms = o.multishot_rearms.get();
        out.buffer_ring_refills = o.buffer_ring_refills.get();
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use io_uring::types;

    #[test]
    fn names_round_trip_and_are_unique() {
        for op in UringOp::ALL {
            assert_eq!(UringOp::from_name(op.name()), Some(op));
            assert_eq!(UringOp::ALL[op as usize], op);
        }
        let mut names: Vec<_> = UringOp::ALL.iter().map(|op| op.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), OP_COUNT);
    }

    #[test]
    fn sqes_are_classified_by_opcode_and_multishot_flag() {
        let fd = types::Fd(0);
        let null = std::ptr::null_mut::<u8>();
        let cases = [
            (
                opcode::Accept::new(fd, null.cast(), null.cast()).build(),
                UringOp::Accept,
            ),
            (
                opcode::AcceptMulti::new(fd).build(),
                UringOp::AcceptMultishot,
            ),
            (opcode::Recv::new(fd, null.cast(), 1).build(), UringOp::Recv),
            (
                opcode::RecvMulti::new(fd, 0).build(),
                UringOp::RecvMultishot,
            ),
            (opcode::Send::new(fd, null.cast(), 1).build(), UringOp::Send),
            (
                opcode::Readv::new(fd, null.cast(), 0).build(),
                UringOp::Readv,
            ),
            (
                opcode::Writev::new(fd, null.cast(), 0).build(),
                UringOp::Writev,
            ),
            (
                opcode::SendMsg::new(fd, null.cast()).build(),
                UringOp::Sendmsg,
            ),
            (opcode::PollAdd::new(fd, 1).build(), UringOp::PollAdd),
            (opcode::AsyncCancel::new(7).build(), UringOp::AsyncCancel),
            (
                opcode::Splice::new(fd, -1, fd, -1, 1).build(),
                UringOp::Splice,
            ),
            (opcode::Close::new(types::Fixed(3)).build(), UringOp::Close),
            (opcode::Nop::new().build(), UringOp::Other),
        ];
        for (sqe, want) in cases {
            assert_eq!(UringOp::of_sqe(&sqe), want, "{sqe:?}");
        }
    }

    #[test]
    fn op_counts_serialise_as_named_map_without_zeros() {
        let mut counts = UringOpCounts::default();
        counts.sqes.0[UringOp::Recv as usize] = 3;
        counts.cqes.0[UringOp::RecvMultishot as usize] = 5;
        counts.multishot_rearms = 1;
        let json = serde_json::to_value(counts).unwrap();
        assert_eq!(json["sqes"], serde_json::json!({"recv": 3}));
        assert_eq!(json["cqes"], serde_json::json!({"recv_multishot": 5}));
        let back: UringOpCounts = serde_json::from_value(json).unwrap();
        assert_eq!(back, counts);
        let bad: Result<OpCounts, _> = serde_json::from_str(r#"{"nosuchop": 1}"#);
        assert!(bad.unwrap_err().to_string().contains("nosuchop"));
    }

    #[cfg(feature = "count-syscalls")]
    #[test]
    fn counts_are_per_thread_and_windowed() {
        let before = snapshot();
        submitted(UringOp::Send);
        submitted(UringOp::Send);
        reaped(UringOp::Send);
        note_multishot_rearm();
        note_buffer_ring_refill();
        note_buffer_ring_refill();
        let delta = snapshot().since(&before);
        assert_eq!(delta.sqes.get(UringOp::Send), 2);
        assert_eq!(delta.sqes.total(), 2);
        assert_eq!(delta.cqes.get(UringOp::Send), 1);
        assert_eq!((delta.multishot_rearms, delta.buffer_ring_refills), (1, 2));
        let other = std::thread::spawn(snapshot).join().unwrap();
        assert_eq!(other, UringOpCounts::default());
    }
}
