//! When each measurement runs: the seeded shuffled order of the variants
//! in a repetition, and how many driver threads a case gets.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::results::workload::Case;

/// The order of `count` variants in `repetition` of `case`: a shuffle seeded
/// from the case's seed, its label and the repetition, so a run can be
/// repeated order and all, and no variant is always measured first or
/// last (drift and warm caches then average out instead of favouring one
/// position). An order equal to `previous` is shuffled again, so paired
/// repetitions never share it when there is more than one order.
pub fn variant_order(
    case: &Case,
    repetition: u32,
    count: usize,
    previous: Option<&[usize]>,
) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(order_seed(case, repetition));
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(&mut rng);
    while count > 1 && previous == Some(order.as_slice()) {
        order.shuffle(&mut rng);
    }
    order
}

/// The seed of one repetition's order: the case's seed, its label (cases
/// of one profile share a seed) and the repetition, mixed by FNV-1a, which
/// unlike `std`'s hasher is fixed by its definition.
fn order_seed(case: &Case, repetition: u32) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = case
        .seed
        .to_le_bytes()
        .into_iter()
        .chain(case.label.bytes())
        .chain(repetition.to_le_bytes());
    bytes.fold(FNV_OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    })
}

/// Driver threads for a case: at most one per active connection.
pub fn driver_threads_for(case: &Case, max: usize) -> usize {
    max.min(case.connections as usize).max(1)
}
