//! `MSG_ZEROCOPY` sends and what the kernel did with them, from a server
//! window's counters (`LoopCounters::zerocopy_*`) to one repetition's
//! figures, spread over repetitions by `aggregate`. Variants that make no
//! zerocopy sends have no figures: absent, not zero.

use serde::{Deserialize, Serialize};

use crate::server::report::LoopCounters;

use super::Spread;
use super::spread::spread;

/// Zerocopy sends and their completions per request completed by the
/// driver in the window, and the share the kernel copied anyway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZerocopySummary {
    /// `sendmsg(MSG_ZEROCOPY)` calls that sent bytes.
    pub sends_per_request: Spread,
    /// Sends whose completion was reaped from the error queue in the
    /// window (a send near a window's edge completes in the next one).
    pub completed_sends_per_request: Spread,
    /// Completed sends the kernel reports it copied anyway
    /// (`SO_EE_CODE_ZEROCOPY_COPIED`).
    pub copied_sends_per_request: Spread,
    /// Copied over completed sends, percent: 100 on loopback, where the
    /// kernel always copies; over repetitions that completed any send.
    pub copied_by_kernel_percent: Spread,
}

/// One repetition's zerocopy figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZerocopyFigures {
    pub sends_per_request: f64,
    pub completed_sends_per_request: f64,
    pub copied_sends_per_request: f64,
    /// `None` when no send completed in the window.
    pub copied_by_kernel_percent: Option<f64>,
}

impl ZerocopyFigures {
    /// The figures of a window's `counters` over `requests` driver-completed
    /// requests; `None` when the window made no zerocopy send and reaped
    /// no completion (every other copy strategy).
    pub fn of(counters: &LoopCounters, requests: u64) -> Option<ZerocopyFigures> {
        if counters.zerocopy_sends == 0 && counters.zerocopy_completed_sends == 0 {
            return None;
        }
        let per = |count: u64| count as f64 / requests.max(1) as f64;
        let completed = counters.zerocopy_completed_sends;
        Some(ZerocopyFigures {
            sends_per_request: per(counters.zerocopy_sends),
            completed_sends_per_request: per(completed),
            copied_sends_per_request: per(counters.zerocopy_copied_sends),
            copied_by_kernel_percent: (completed > 0)
                .then(|| counters.zerocopy_copied_sends as f64 * 100.0 / completed as f64),
        })
    }
}

/// Zerocopy figures over repetitions; `None` unless every repetition has
/// them.
pub fn zerocopy_summary(repetitions: &[Option<&ZerocopyFigures>]) -> Option<ZerocopySummary> {
    let figures: Vec<&ZerocopyFigures> = repetitions.iter().copied().collect::<Option<_>>()?;
    if figures.is_empty() {
        return None;
    }
    let over =
        |f: fn(&ZerocopyFigures) -> f64| spread(&figures.iter().map(|x| f(x)).collect::<Vec<_>>());
    let copied: Vec<f64> = figures
        .iter()
        .filter_map(|f| f.copied_by_kernel_percent)
        .collect();
    Some(ZerocopySummary {
        sends_per_request: over(|f| f.sends_per_request),
        completed_sends_per_request: over(|f| f.completed_sends_per_request),
        copied_sends_per_request: over(|f| f.copied_sends_per_request),
        copied_by_kernel_percent: spread(&copied),
    })
}

impl ZerocopySummary {
    /// One line for summary.md: the share of zerocopy sends the kernel
    /// copied anyway, and what that share means.
    pub fn describe(&self) -> String {
        let share = &self.copied_by_kernel_percent;
        if share.samples == 0 {
            return format!(
                "MSG_ZEROCOPY: {:.2} sends/request, no completion reaped in any window",
                self.sends_per_request.median
            );
        }
        format!(
            "MSG_ZEROCOPY: {:.2} sends/request; share of zerocopy sends copied by the kernel {:.1}% (min {:.1}%, max {:.1}%, {} windows){}",
            self.sends_per_request.median,
            share.median,
            share.min,
            share.max,
            share.samples,
            if share.min >= 99.5 {
                ": the kernel copied every send after all, as it does on loopback and veth; the path saves the copy only on a real NIC"
            } else {
                ""
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(sends: u64, completed: u64, copied: u64) -> LoopCounters {
        LoopCounters {
            zerocopy_sends: sends,
            zerocopy_completed_sends: completed,
            zerocopy_copied_sends: copied,
            ..Default::default()
        }
    }

    #[test]
    fn absent_without_zerocopy_sends() {
        assert_eq!(ZerocopyFigures::of(&counters(0, 0, 0), 100), None);
        let one = ZerocopyFigures::of(&counters(200, 100, 100), 100).unwrap();
        assert_eq!(one.sends_per_request, 2.0);
        assert_eq!(one.copied_by_kernel_percent, Some(100.0));
        let none_done = ZerocopyFigures::of(&counters(5, 0, 0), 100).unwrap();
        assert_eq!(none_done.copied_by_kernel_percent, None);
        // A variant without zerocopy in some repetition: no summary.
        assert_eq!(zerocopy_summary(&[Some(&one), None]), None);
    }

    #[test]
    fn the_share_copied_is_over_completed_sends() {
        let all = ZerocopyFigures::of(&counters(100, 100, 100), 100).unwrap();
        let half = ZerocopyFigures::of(&counters(100, 80, 40), 100).unwrap();
        let s = zerocopy_summary(&[Some(&all), Some(&half)]).unwrap();
        assert_eq!(s.copied_by_kernel_percent.min, 50.0);
        assert_eq!(s.copied_by_kernel_percent.max, 100.0);
        assert!(!s.describe().contains("real NIC"), "{}", s.describe());
        let s = zerocopy_summary(&[Some(&all)]).unwrap();
        let line = s.describe();
        assert!(line.contains("copied by the kernel 100.0%"), "{line}");
        assert!(line.contains("real NIC"), "{line}");
    }
}
