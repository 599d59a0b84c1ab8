//! What this machine allows, measured with the tool's own code paths
//! (`epoll-bench limits`, and once, quick, at the start of every `run`):
//! loopback TCP bandwidth with 1 and N streams, one way (a writer against
//! a discarding sink) and both ways (the load engine's bulk shape against
//! an echo server), memory copy bandwidth, and the cost of a null syscall,
//! an empty `epoll_wait` and a thread-to-thread wake-up.
//!
//! Every syscall goes through `src/sys`, as the servers' do, so the costs
//! include what the servers pay for the in-process counting. Each figure
//! is the [`Spread`] of several short trials, and the whole measurement is
//! bounded in time by its [`LimitsPlan`] (about 10 s, 2 s quick).

mod kernel;
mod loopback;
mod memcpy;

use std::io;
use std::time::{Duration, Instant};

use crate::driver::engine::EngineError;
use crate::results::Spread;
use crate::results::aggregate::spread;
use crate::results::machine_limits::{LimitUnit, MachineLimits};

/// Message size of the loopback figures: the `bulk-1mib` profile's frames.
pub const LOOPBACK_MESSAGE_BYTES: u32 = 1 << 20;
/// Bytes each echo stream keeps in flight: the `bulk-1mib` profile's window.
pub const LOOPBACK_WINDOW_BYTES: u64 = 4 << 20;
/// Large enough that caches do not hold it: main memory is measured.
pub const MEMCPY_BUFFER_BYTES: usize = 64 << 20;

/// How long and how often to measure.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitsPlan {
    pub quick: bool,
    /// Trials of every figure (the median and spread are over these).
    pub trials: u32,
    /// Streams of the `_n_streams` figures.
    pub parallel_streams: usize,
    /// Traffic before the first loopback window (slow start, page faults).
    pub loopback_warmup: Duration,
    /// One loopback trial's measured window.
    pub loopback_window: Duration,
    /// One trial of the null syscall and of the empty `epoll_wait`.
    pub call_trial: Duration,
    /// One trial of the wake-up ping-pong.
    pub wakeup_trial: Duration,
    pub memcpy_buffer_bytes: usize,
}

impl LimitsPlan {
    /// About 10 s in all.
    pub fn standard(parallel_streams: usize) -> LimitsPlan {
        LimitsPlan {
            quick: false,
            trials: 5,
            parallel_streams,
            loopback_warmup: Duration::from_millis(200),
            loopback_window: Duration::from_millis(300),
            call_trial: Duration::from_millis(50),
            wakeup_trial: Duration::from_millis(100),
            memcpy_buffer_bytes: MEMCPY_BUFFER_BYTES,
        }
    }

    /// About 2 s in all: what `run` records.
    pub fn quick(parallel_streams: usize) -> LimitsPlan {
        LimitsPlan {
            quick: true,
            trials: 3,
            parallel_streams,
            loopback_warmup: Duration::from_millis(40),
            loopback_window: Duration::from_millis(80),
            call_trial: Duration::from_millis(15),
            wakeup_trial: Duration::from_millis(30),
            memcpy_buffer_bytes: MEMCPY_BUFFER_BYTES,
        }
    }
}

/// The streams of the `_n_streams` figures when not asked: one per CPU
/// this process may use.
pub fn default_parallel_streams() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Why a limit could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("machine limits: {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("machine limits: loopback echo through the load engine: {0}")]
    Engine(#[from] EngineError),
    /// A measurement that ran but cannot be right (bytes corrupted, no
    /// bytes moved).
    #[error("machine limits: {0}")]
    Implausible(String),
}

pub(crate) fn io_error(context: &'static str) -> impl FnOnce(io::Error) -> LimitsError {
    move |source| LimitsError::Io { context, source }
}

/// Measures every limit of `plan`. `progress` is told what is measured
/// next, then the figure it got (for a terminal; `run` passes a no-op).
pub fn measure(
    plan: &LimitsPlan,
    progress: &mut dyn FnMut(&str),
) -> Result<MachineLimits, LimitsError> {
    let started = Instant::now();
    use LimitUnit::{BytesPerSecond as Rate, Nanoseconds as Time};
    let streams = plan.parallel_streams.max(1);
    let mut step = |label: &str,
                    unit: LimitUnit,
                    measure: &mut dyn FnMut() -> Result<Vec<f64>, LimitsError>| {
        progress(&format!("measuring {label} ..."));
        let values = measure()?;
        let figure = checked(label, &values, plan.trials)?;
        progress(&format!(
            "  {label}: median {} over {} trials ({} – {})",
            unit.format(figure.median),
            figure.samples,
            unit.format(figure.min),
            unit.format(figure.max)
        ));
        Ok::<Spread, LimitsError>(figure)
    };
    let one_way = |n: usize| move || loopback::one_way(n, plan, LOOPBACK_MESSAGE_BYTES as usize);
    let both_ways = |n: usize| {
        move || loopback::both_ways(n, plan, LOOPBACK_MESSAGE_BYTES, LOOPBACK_WINDOW_BYTES)
    };
    let n_streams = format!("{streams} streams");
    let loopback_one_way_1 = step("loopback one way, 1 stream", Rate, &mut one_way(1))?;
    let loopback_one_way_n = step(
        &format!("loopback one way, {n_streams}"),
        Rate,
        &mut one_way(streams),
    )?;
    let loopback_both_1 = step("loopback echo, 1 stream", Rate, &mut both_ways(1))?;
    let loopback_both_n = step(
        &format!("loopback echo, {n_streams}"),
        Rate,
        &mut both_ways(streams),
    )?;
    let memcpy = step("memcpy", Rate, &mut || {
        Ok(memcpy::bytes_per_second(
            plan.memcpy_buffer_bytes,
            plan.trials,
        ))
    })?;
    let null_syscall = step("null syscall (gettid)", Time, &mut || {
        kernel::null_syscall_ns(plan.trials, plan.call_trial)
    })?;
    let empty_epoll_wait = step("empty epoll_wait", Time, &mut || {
        kernel::empty_epoll_wait_ns(plan.trials, plan.call_trial)
    })?;
    let wakeup = step("thread-to-thread wake-up", Time, &mut || {
        kernel::thread_wakeup_ns(plan.trials, plan.wakeup_trial)
    })?;
    Ok(MachineLimits {
        quick: plan.quick,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        loopback_trial_seconds: plan.loopback_window.as_secs_f64(),
        parallel_streams: streams as u32,
        loopback_message_bytes: LOOPBACK_MESSAGE_BYTES,
        loopback_window_bytes: LOOPBACK_WINDOW_BYTES,
        loopback_one_way_1_stream_bytes_per_second: loopback_one_way_1,
        loopback_one_way_n_streams_bytes_per_second: loopback_one_way_n,
        loopback_both_ways_1_stream_bytes_per_second: loopback_both_1,
        loopback_both_ways_n_streams_bytes_per_second: loopback_both_n,
        memcpy_buffer_bytes: plan.memcpy_buffer_bytes as u64,
        memcpy_bytes_per_second: memcpy,
        null_syscall: kernel::NULL_SYSCALL.to_string(),
        null_syscall_ns: null_syscall,
        empty_epoll_wait_ns: empty_epoll_wait,
        thread_wakeup_ns: wakeup,
    })
}

/// The spread of `values`, refused unless every trial ran and gave a
/// positive, finite figure: a zero would be a stalled measurement, not a
/// limit.
fn checked(label: &str, values: &[f64], trials: u32) -> Result<Spread, LimitsError> {
    if values.len() != trials as usize {
        return Err(LimitsError::Implausible(format!(
            "{label}: {} of {trials} trials ran",
            values.len()
        )));
    }
    if let Some(bad) = values.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
        return Err(LimitsError::Implausible(format!(
            "{label}: a trial measured {bad}, not a positive figure"
        )));
    }
    Ok(spread(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trials_must_all_run_and_be_positive() {
        assert_eq!(checked("x", &[1.0, 3.0, 2.0], 3).unwrap().median, 2.0);
        for (values, needle) in [
            (&[1.0, 2.0][..], "2 of 3 trials"),
            (&[1.0, 0.0, 2.0], "measured 0"),
            (&[1.0, f64::NAN, 2.0], "measured NaN"),
            (&[1.0, f64::INFINITY, 2.0], "measured inf"),
        ] {
            let e = checked("x", values, 3).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn the_quick_plan_is_shorter() {
        let (quick, standard) = (LimitsPlan::quick(2), LimitsPlan::standard(2));
        assert!(quick.quick && !standard.quick);
        assert!(quick.trials >= 3 && quick.trials <= standard.trials);
        assert!(quick.loopback_window < standard.loopback_window);
    }
}
