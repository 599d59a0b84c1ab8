//! What the scale charts plot: the `idle_active` cases of a profile that
//! differ in idle count, against their total connection count N (active
//! plus idle), and each variant's memory per connection from the
//! repetitions' whole-memory readings ([`ConnectionMemory`]). Pure
//! functions, so the numbers can be checked without drawing.

use std::collections::HashMap;

use crate::results::aggregate::spread;
use crate::results::connection_memory::ConnectionMemory;
use crate::results::workload::Shape;
use crate::results::{CaseResult, Status};
use crate::server::VariantName;

use super::data::{Series, passed};
use super::style::variant_order;

/// The `idle_active` cases among `cases` with their total connection count
/// N, sorted by N, one case per N (the first in file order). Only cases of
/// the first case's active count, protocol and sizes are taken: what else
/// differs would be read as an effect of N.
pub fn scale_cases<'a>(cases: &[&'a CaseResult]) -> Vec<(&'a CaseResult, f64)> {
    let idle_active: Vec<(&CaseResult, u32)> = cases
        .iter()
        .filter_map(|c| match c.case.shape {
            Shape::IdleActive { idle_connections } => Some((*c, idle_connections)),
            _ => None,
        })
        .collect();
    let Some((first, _)) = idle_active.first() else {
        return Vec::new();
    };
    let comparable = |c: &CaseResult| {
        c.case.connections == first.case.connections
            && c.case.protocol == first.case.protocol
            && c.case.sizes == first.case.sizes
    };
    let mut out: Vec<(&CaseResult, f64)> = idle_active
        .iter()
        .filter(|(c, _)| comparable(c))
        .map(|(c, idle)| (*c, f64::from(c.case.connections) + f64::from(*idle)))
        .collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

/// A part of the memory one connection costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryPart {
    /// The server's resident memory, summed over its processes.
    ServerUser,
    /// Socket buffer pages plus slab objects, machine-wide.
    Kernel,
    /// The driver's resident memory (its process and workers).
    DriverUser,
}

impl MemoryPart {
    pub const ALL: [MemoryPart; 3] = [
        MemoryPart::ServerUser,
        MemoryPart::Kernel,
        MemoryPart::DriverUser,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MemoryPart::ServerUser => "server user space (RSS)",
            MemoryPart::Kernel => "kernel (TCP buffers + slab)",
            MemoryPart::DriverUser => "driver user space (RSS)",
        }
    }

    /// The part in bytes per connection, or why it was not read.
    pub fn bytes(self, memory: &ConnectionMemory) -> Result<f64, String> {
        let or_reason = |value: Option<f64>, reason: &Option<String>| {
            value.ok_or_else(|| reason.clone().unwrap_or_else(|| "not recorded".into()))
        };
        match self {
            MemoryPart::ServerUser => Ok(memory.server_rss_per_connection_bytes),
            MemoryPart::Kernel => {
                let tcp = or_reason(
                    memory.kernel_tcp_mem_per_connection_bytes,
                    &memory.kernel_tcp_mem_unavailable_reason,
                )
                .map_err(|e| format!("TCP buffers: {e}"))?;
                let slab = or_reason(
                    memory.kernel_slab_per_connection_bytes,
                    &memory.kernel_slab_unavailable_reason,
                )
                .map_err(|e| format!("slab: {e}"))?;
                Ok(tcp + slab)
            }
            MemoryPart::DriverUser => or_reason(
                memory.driver_rss_per_connection_bytes,
                &memory.driver_rss_unavailable_reason,
            ),
        }
    }
}

/// Memory per connection of one part, in KiB, one series per variant,
/// over every passed repetition (timing and counting alike: the ramp is
/// the same) that read it; with a note for each point left out and why.
/// No rings: memory per connection does not depend on the driver keeping
/// up.
pub fn memory_series(cases: &[(&CaseResult, f64)], part: MemoryPart) -> (Vec<Series>, Vec<String>) {
    let mut by_variant: HashMap<VariantName, Series> = HashMap::new();
    let mut notes = Vec::new();
    for (case, n) in cases {
        for p in passed(case) {
            let readings: Vec<Result<f64, String>> = p
                .variant
                .repetitions
                .iter()
                .filter(|r| r.status == Status::Passed && !r.purpose.discarded())
                .filter_map(|r| r.server_memory.as_ref()?.whole.as_ref())
                .map(|m| part.bytes(m))
                .collect();
            let kib: Vec<f64> = readings
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .map(|bytes| bytes / 1024.0)
                .collect();
            if kib.is_empty() {
                let why = readings
                    .iter()
                    .find_map(|r| r.as_ref().err().cloned())
                    .unwrap_or_else(|| "no whole-memory reading was recorded".into());
                notes.push(format!(
                    "{} of {} at N = {} not shown: {why}",
                    part.name(),
                    p.variant.variant,
                    count(*n)
                ));
                continue;
            }
            by_variant
                .entry(p.variant.variant.clone())
                .or_insert_with(|| Series {
                    variant: p.variant.variant.clone(),
                    points: Vec::new(),
                    driver_bound_x: Vec::new(),
                })
                .points
                .push((*n, spread(&kib)));
        }
    }
    let series = variant_order(by_variant.keys())
        .into_iter()
        .filter_map(|v| by_variant.remove(&v))
        .map(|mut s| {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
            s
        })
        .collect();
    (series, notes)
}

/// Server processes whose memory was summed, over the cases' readings
/// (one value when every case ran the same server).
pub fn server_processes(cases: &[(&CaseResult, f64)]) -> Vec<usize> {
    let mut out: Vec<usize> = cases
        .iter()
        .flat_map(|(c, _)| passed(c))
        .flat_map(|p| &p.variant.repetitions)
        .filter_map(|r| Some(r.server_memory.as_ref()?.whole.as_ref()?.server_processes))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A connection count with thousands separators: `100,000`.
pub fn count(n: f64) -> String {
    crate::report::export::cells::number(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    fn scale_profile(results: &crate::results::ResultsFile) -> Vec<&CaseResult> {
        results
            .cases
            .iter()
            .filter(|c| c.profile == fixture::SCALE_PROFILE)
            .collect()
    }

    /// The fixture's scale cases ordered by N.
    fn ordered(results: &crate::results::ResultsFile) -> Vec<(&CaseResult, f64)> {
        scale_cases(&scale_profile(results))
    }

    #[test]
    fn cases_are_ordered_by_total_connections() {
        let results = fixture::results_with_scale();
        let ordered = ordered(&results);
        let n: Vec<f64> = ordered.iter().map(|(_, n)| *n).collect();
        // The fixture lists them out of order: 5,000 idle first.
        assert_eq!(n, vec![2_000.0, 6_000.0, 10_000.0]);
        assert!(ordered[0].0.label.ends_with("/1000idle"));
        // Cases of other shapes are not scale cases.
        let other: Vec<&CaseResult> = results
            .cases
            .iter()
            .filter(|c| c.profile != fixture::SCALE_PROFILE)
            .collect();
        assert!(scale_cases(&other).is_empty());
    }

    #[test]
    fn memory_series_hold_the_fixture_readings_in_kib() {
        let results = fixture::results_with_scale();
        let ordered = ordered(&results);
        let (server, notes) = memory_series(&ordered, MemoryPart::ServerUser);
        assert!(notes.is_empty(), "{notes:?}");
        let names: Vec<String> = server.iter().map(|s| s.variant.to_string()).collect();
        assert_eq!(names, ["lt-writev", "et-writev"]);
        for s in &server {
            for (n, sp) in &s.points {
                let expected: Vec<f64> = fixture::scale_memory_readings(&s.variant, *n)
                    .iter()
                    .map(|m| m.server_rss_per_connection_bytes / 1024.0)
                    .collect();
                assert_eq!(sp.median, spread(&expected).median, "{} {n}", s.variant);
                assert_eq!(sp.min, expected.iter().copied().fold(f64::MAX, f64::min));
                assert_eq!(sp.max, expected.iter().copied().fold(f64::MIN, f64::max));
                assert!(sp.max > sp.min, "two differing repetitions");
            }
            let xs: Vec<f64> = s.points.iter().map(|(n, _)| *n).collect();
            assert_eq!(xs, vec![2_000.0, 6_000.0, 10_000.0]);
            assert!(s.driver_bound_x.is_empty());
        }
        let (kernel, _) = memory_series(&ordered, MemoryPart::Kernel);
        let lt = &kernel[0];
        let reading = &fixture::scale_memory_readings(&lt.variant, 2_000.0)[0];
        let kernel_kib = (reading.kernel_tcp_mem_per_connection_bytes.unwrap()
            + reading.kernel_slab_per_connection_bytes.unwrap())
            / 1024.0;
        assert_eq!(lt.points[0].1.min, kernel_kib);
    }

    #[test]
    fn a_point_without_the_figure_is_left_out_with_its_reason() {
        let results = fixture::results_with_scale();
        let ordered = ordered(&results);
        let (driver, notes) = memory_series(&ordered, MemoryPart::DriverUser);
        let et = driver.iter().find(|s| s.variant == "et-writev");
        let xs: Vec<f64> = et.unwrap().points.iter().map(|(n, _)| *n).collect();
        assert_eq!(xs, vec![2_000.0, 6_000.0]);
        assert_eq!(
            notes,
            [format!(
                "driver user space (RSS) of et-writev at N = 10,000 not shown: {}",
                fixture::SCALE_DRIVER_UNAVAILABLE
            )]
        );
    }

    #[test]
    fn counts_read_with_separators() {
        assert_eq!(count(100_000.0), "100,000");
        assert_eq!(count(2_000.0), "2,000");
    }
}
