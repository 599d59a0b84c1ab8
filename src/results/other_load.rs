//! Other load: what processes other than the measured server and the
//! driver ran on the machine during a window. On a shared machine (a
//! compiler, another benchmark) they take CPU and caches from both sides
//! and stretch latency, and neither steal nor the server's own CPU figures
//! show it. Computed from the machine's busy CPU time over the window
//! ([`CaseMeasurement::machine_busy_cpu_seconds`]) less the server's and
//! the driver threads' own CPU; interrupt time is in neither side
//! ([`crate::metrics::cpu_steal::CpuTimes::busy_ticks`]), so the figure
//! errs low, never flagging a quiet machine.

#![forbid(unsafe_code)]

use super::{Repetition, ResultsFile, measurement::CaseMeasurement};

/// From this share of the machine's CPU time taken by other processes, a
/// window's figures are flagged as measured beside competing load.
pub const OTHER_LOAD_FLAG_PERCENT: f64 = 10.0;

/// Percent of the machine's CPU time (`logical_cpus` × the window) that
/// went to processes other than the server and the driver's threads, at
/// least 0; `None` when the window's machine time or the server's CPU is
/// unknown.
pub fn other_load_percent(repetition: &Repetition, logical_cpus: usize) -> Option<f64> {
    let measurement = repetition.measurement.as_ref()?;
    let machine_busy = measurement.machine_busy_cpu_seconds?;
    let server = server_cpu_seconds(repetition)?;
    let capacity = measurement.measured_seconds * logical_cpus.max(1) as f64;
    (capacity > 0.0).then(|| {
        let other = machine_busy - server - driver_cpu_seconds(measurement);
        (other.max(0.0) * 100.0 / capacity).min(100.0)
    })
}

/// The server's CPU over the window: its own report, or the kernel's
/// task-clock of an external server.
fn server_cpu_seconds(repetition: &Repetition) -> Option<f64> {
    if let Some(window) = &repetition.server_window {
        let usage = &window.total.usage;
        return Some(usage.cpu_user_seconds + usage.cpu_system_seconds);
    }
    let counts = repetition.external_window.as_ref()?.counts.as_ref()?;
    Some(counts.task_clock_ns as f64 / 1e9)
}

fn driver_cpu_seconds(measurement: &CaseMeasurement) -> f64 {
    measurement.driver_usage.cpu_user_seconds + measurement.driver_usage.cpu_system_seconds
}

/// Every timed window's other load in a run, with its case and variant.
pub fn windows(results: &ResultsFile) -> Vec<(&str, String, f64)> {
    let cpus = results.environment.logical_cpus;
    results
        .cases
        .iter()
        .flat_map(|case| {
            case.variants.iter().flat_map(move |variant| {
                variant
                    .repetitions
                    .iter()
                    .filter(|r| r.purpose.gives_time() && !r.purpose.discarded())
                    .filter_map(move |r| {
                        let percent = other_load_percent(r, cpus)?;
                        Some((case.label.as_str(), variant.variant.to_string(), percent))
                    })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    #[test]
    fn other_load_is_the_machine_less_server_and_driver() {
        let mut repetition = fixture::passed_repetition(0, 1000, 64, 50.0);
        let m = repetition.measurement.as_mut().unwrap();
        m.measured_seconds = 2.0;
        m.driver_usage.cpu_user_seconds = 0.2;
        m.driver_usage.cpu_system_seconds = 0.3;
        let window = repetition.server_window.as_mut().unwrap();
        window.total.usage.cpu_user_seconds = 0.5;
        window.total.usage.cpu_system_seconds = 0.5;
        // Not recorded (an older results file): unknown, not zero.
        assert_eq!(other_load_percent(&repetition, 2), None);
        // 2.3 s busy of 4 CPU-seconds: 0.8 s beyond the server's 1 s and
        // the driver's 0.5 s is 20%.
        repetition
            .measurement
            .as_mut()
            .unwrap()
            .machine_busy_cpu_seconds = Some(2.3);
        let other = other_load_percent(&repetition, 2).unwrap();
        assert!((other - 20.0).abs() < 1e-9, "{other}");
        // Interrupt time charged to the server makes the difference
        // negative: a quiet machine reads 0, not less.
        repetition
            .measurement
            .as_mut()
            .unwrap()
            .machine_busy_cpu_seconds = Some(1.2);
        assert_eq!(other_load_percent(&repetition, 2), Some(0.0));
    }
}
