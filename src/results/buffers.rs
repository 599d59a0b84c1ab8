//! The buffer policy's figures (`serve --buffers`): user buffers a server
//! held and, when pooled, how its pool served takes, from a window's
//! counters (`LoopCounters::buffers_*`, `pool_*`) to one repetition's
//! figures, spread over repetitions by `aggregate`. Variants without a ring
//! buffer the policy applies to (splice's pipes, zerocopy's own ring,
//! io_uring's provided buffers) have no figures: absent, not zero.

use serde::{Deserialize, Serialize};

use crate::server::report::LoopCounters;

use super::Spread;
use super::spread::spread;

/// User buffers and pool takes over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferSummary {
    /// Ring buffers allocated at most at once in the window (per
    /// connection: one per open connection; pooled: the pool's size),
    /// summed over serving threads.
    pub buffers_allocated_peak: Spread,
    /// Buffers held by connections at most at once in the window.
    pub buffers_in_use_peak: Spread,
    /// Pooled only (0 per connection): takes from the pool, of which hits
    /// (a free pooled buffer), misses (a new allocation) and waits (none free
    /// at the pool's bound: the connection was not read until one freed).
    pub pool_takes_per_request: Spread,
    pub pool_hits_per_request: Spread,
    pub pool_misses_per_request: Spread,
    pub pool_waits_per_request: Spread,
    /// Hits over takes, percent, over repetitions that took any buffer.
    pub pool_hit_percent: Spread,
}

/// One repetition's buffer figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BufferFigures {
    pub buffers_allocated_peak: f64,
    pub buffers_in_use_peak: f64,
    pub pool_takes_per_request: f64,
    pub pool_hits_per_request: f64,
    pub pool_misses_per_request: f64,
    pub pool_waits_per_request: f64,
    /// `None` when nothing was taken from a pool.
    pub pool_hit_percent: Option<f64>,
}

impl BufferFigures {
    /// The figures of a window's `counters` over `requests` driver-completed
    /// requests; `None` when the server reported no ring buffer at all.
    pub fn of(counters: &LoopCounters, requests: u64) -> Option<BufferFigures> {
        if counters.buffers_allocated_peak == 0 && counters.pool_takes == 0 {
            return None;
        }
        let per = |count: u64| count as f64 / requests.max(1) as f64;
        let takes = counters.pool_takes;
        Some(BufferFigures {
            buffers_allocated_peak: counters.buffers_allocated_peak as f64,
            buffers_in_use_peak: counters.buffers_in_use_peak as f64,
            pool_takes_per_request: per(takes),
            pool_hits_per_request: per(counters.pool_hits),
            pool_misses_per_request: per(counters.pool_misses),
            pool_waits_per_request: per(counters.pool_waits),
            pool_hit_percent: (takes > 0).then(|| counters.pool_hits as f64 * 100.0 / takes as f64),
        })
    }
}

/// Buffer figures over repetitions; `None` unless every repetition has
/// them.
pub fn buffer_summary(repetitions: &[Option<&BufferFigures>]) -> Option<BufferSummary> {
    let figures: Vec<&BufferFigures> = repetitions.iter().copied().collect::<Option<_>>()?;
    if figures.is_empty() {
        return None;
    }
    let over =
        |f: fn(&BufferFigures) -> f64| spread(&figures.iter().map(|x| f(x)).collect::<Vec<_>>());
    let hits: Vec<f64> = figures.iter().filter_map(|f| f.pool_hit_percent).collect();
    Some(BufferSummary {
        buffers_allocated_peak: over(|f| f.buffers_allocated_peak),
        buffers_in_use_peak: over(|f| f.buffers_in_use_peak),
        pool_takes_per_request: over(|f| f.pool_takes_per_request),
        pool_hits_per_request: over(|f| f.pool_hits_per_request),
        pool_misses_per_request: over(|f| f.pool_misses_per_request),
        pool_waits_per_request: over(|f| f.pool_waits_per_request),
        pool_hit_percent: spread(&hits),
    })
}

impl BufferSummary {
    /// One line for summary.md (medians over repetitions).
    pub fn describe(&self) -> String {
        let held = format!(
            "user buffers: peak {:.0} allocated, peak {:.0} in use",
            self.buffers_allocated_peak.median, self.buffers_in_use_peak.median
        );
        if self.pool_hit_percent.samples == 0 {
            return held;
        }
        format!(
            "{held}; pool: {:.2} takes/request, {:.1}% hits, {:.3} misses/request, {:.3} waits/request",
            self.pool_takes_per_request.median,
            self.pool_hit_percent.median,
            self.pool_misses_per_request.median,
            self.pool_waits_per_request.median,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_without_a_ring_buffer() {
        assert_eq!(BufferFigures::of(&LoopCounters::default(), 10), None);
        let one = BufferFigures::default();
        assert_eq!(buffer_summary(&[Some(&one), None]), None);
    }

    #[test]
    fn per_connection_has_no_pool_figures_and_pooled_has_its_hit_rate() {
        let per_connection = LoopCounters {
            buffers_allocated_peak: 64,
            buffers_in_use_peak: 64,
            ..LoopCounters::default()
        };
        let f = BufferFigures::of(&per_connection, 1000).unwrap();
        assert_eq!(f.pool_hit_percent, None);
        let s = buffer_summary(&[Some(&f)]).unwrap();
        assert_eq!(
            s.describe(),
            "user buffers: peak 64 allocated, peak 64 in use"
        );
        let pooled = LoopCounters {
            buffers_allocated_peak: 4,
            buffers_in_use_peak: 3,
            pool_takes: 2000,
            pool_hits: 1500,
            pool_misses: 4,
            pool_waits: 496,
            ..LoopCounters::default()
        };
        let f = BufferFigures::of(&pooled, 1000).unwrap();
        assert_eq!(f.pool_hit_percent, Some(75.0));
        assert_eq!(f.pool_takes_per_request, 2.0);
        let s = buffer_summary(&[Some(&f)]).unwrap();
        assert_eq!(
            s.describe(),
            "user buffers: peak 4 allocated, peak 3 in use; pool: 2.00 takes/request, 75.0% hits, 0.004 misses/request, 0.496 waits/request"
        );
    }
}
