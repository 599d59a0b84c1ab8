//! Which variants an effect compares: the variant axes, and one step
//! along exactly one of them ([`comparisons`]).

use serde::Serialize;

use crate::server::variant::{Backend, CopyMode, ReadPolicy, TriggerMode, Variant};

/// The axis along which a comparison's two variants differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// Backend, e.g. the epoll trigger mode: ET against LT.
    Backend,
    /// Read policy: short-read stopping against draining.
    ReadPolicy,
    /// Copy strategy: writev against rw, splice and zerocopy against
    /// writev ([`CopyMode::compared_with`]).
    Copy,
    /// io_uring against its direct epoll analogue, the level-triggered loop
    /// with the same copy strategy (`uring-rw` against `lt-rw`).
    IoUring,
}

/// Position of each axis member in its declared order; a comparison goes
/// one step along it.
fn backend_rank(backend: Backend) -> usize {
    Backend::ALL
        .iter()
        .position(|b| *b == backend)
        .expect("every backend is in Backend::ALL")
}

fn copy_rank(copy: CopyMode) -> usize {
    CopyMode::ALL
        .iter()
        .position(|c| *c == copy)
        .expect("every copy mode is in CopyMode::ALL")
}

fn read_policy_rank(policy: ReadPolicy) -> usize {
    match policy {
        ReadPolicy::Backend => 0,
        ReadPolicy::StopOnShortRead => 1,
    }
}

/// How verdicts name a variant's member of `axis`, e.g. `ET`, `writev`.
pub(super) fn axis_label(axis: Axis, v: Variant) -> String {
    match axis {
        Axis::Backend => v.backend.name().to_uppercase(),
        Axis::IoUring => match v.backend {
            Backend::Uring | Backend::UringMultishot => "io_uring".to_string(),
            Backend::Epoll(trigger) => format!("{} epoll", trigger.name().to_uppercase()),
            Backend::ThreadPerConnection => "thread per connection".to_string(),
        },
        Axis::Copy => v.copy.name().to_string(),
        Axis::ReadPolicy => match v.read_policy {
            ReadPolicy::Backend => "draining".to_string(),
            ReadPolicy::StopOnShortRead => "short-read stopping".to_string(),
        },
    }
}

/// The axis along which `b` is one step after `a`, if they differ in that
/// axis only. Backend and copy comparisons are between variants with the
/// backend's own read policy: a refinement (short-read stopping) is
/// compared with what it refines, not across the other axes.
fn one_step(a: Variant, b: Variant) -> Option<Axis> {
    let differing = [
        (Axis::Backend, a.backend != b.backend),
        (Axis::ReadPolicy, a.read_policy != b.read_policy),
        (Axis::Copy, a.copy != b.copy),
    ];
    let mut axes = differing.iter().filter(|(_, d)| *d).map(|(axis, _)| *axis);
    let axis = axes.next()?;
    if axes.next().is_some() {
        return None;
    }
    // The thread-per-connection baseline is no step along the backend
    // axis: it is set against the epoll variants as a whole (issue 14),
    // not as the next member after io_uring.
    if axis == Axis::Backend
        && (a.backend == Backend::ThreadPerConnection || b.backend == Backend::ThreadPerConnection)
    {
        return None;
    }
    // io_uring is compared with its direct analogue only, the
    // level-triggered loop with the same copy strategy (and so, like
    // io_uring, the backend's own read policy).
    if axis == Axis::Backend && (a.backend.is_uring() || b.backend.is_uring()) {
        let analogue = a.backend == Backend::Epoll(TriggerMode::Level) && b.backend.is_uring();
        return analogue.then_some(Axis::IoUring);
    }
    let next = match axis {
        Axis::Backend => backend_rank(b.backend) == backend_rank(a.backend) + 1,
        Axis::ReadPolicy => read_policy_rank(b.read_policy) == read_policy_rank(a.read_policy) + 1,
        Axis::Copy => b.copy.compared_with() == Some(a.copy),
        Axis::IoUring => unreachable!("decided above"),
    };
    let own_policy = axis == Axis::ReadPolicy || a.read_policy == ReadPolicy::Backend;
    (next && own_policy).then_some(axis)
}

/// Which variant is compared with which: `(axis, A, B)`, the ratio being
/// B/A. Ordered by axis, then by the step along it, then by B's place in
/// [`Variant::ALL`].
pub fn comparisons(variants: &[Variant]) -> Vec<(Axis, Variant, Variant)> {
    let order = |v: &Variant| Variant::ALL.iter().position(|w| w == v);
    let step = |axis: Axis, a: &Variant| match axis {
        Axis::Backend => backend_rank(a.backend),
        Axis::ReadPolicy => read_policy_rank(a.read_policy),
        Axis::Copy => copy_rank(a.copy),
        Axis::IoUring => 0,
    };
    let mut out: Vec<(Axis, Variant, Variant)> = variants
        .iter()
        .flat_map(|a| variants.iter().map(move |b| (*a, *b)))
        .filter_map(|(a, b)| one_step(a, b).map(|axis| (axis, a, b)))
        .collect();
    out.sort_by_key(|(axis, a, b)| (*axis, step(*axis, a), order(b)));
    out
}
