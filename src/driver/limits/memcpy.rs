//! Memory copy bandwidth: one copy of a buffer too large for any cache per
//! trial, so main memory is what is measured.

use std::hint::black_box;
use std::time::Instant;

/// Bytes copied per second, one value per trial.
pub(super) fn bytes_per_second(buffer_bytes: usize, trials: u32) -> Vec<f64> {
    let source = vec![0x5au8; buffer_bytes];
    let mut destination = vec![0u8; buffer_bytes];
    // The first copy faults the destination's pages in; it is not timed.
    destination.copy_from_slice(&source);
    (0..trials)
        .map(|_| {
            let started = Instant::now();
            destination.copy_from_slice(black_box(&source));
            black_box(&destination);
            buffer_bytes as f64 / started.elapsed().as_secs_f64()
        })
        .collect()
}
