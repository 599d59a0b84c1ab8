//! The chart kinds: one file each, every one a [`ChartKind`], listed once
//! in [`CHART_KINDS`]. A kind decides from the results which charts it
//! draws (or notes why none) and builds them as data; drawing is
//! [`super::draw`]'s. Adding a chart kind is one file and one entry.

mod connections;
mod cpu;
mod effects;
mod latency;
mod scale;
mod size;
mod syscalls;

use crate::results::{CaseResult, ResultsFile, RunStatus};

use super::ChartPlan;
use super::data::{self, Series};
use super::draw::{LegendKey, Line};
use super::style::variant_style;
use crate::server::VariantName;

/// One profile's cases that have a passed variant, with the footer its
/// charts share.
pub struct ProfileCases<'a> {
    pub profile: &'a str,
    pub cases: &'a [&'a CaseResult],
    pub footer: &'a [String],
}

/// One kind of chart.
pub trait ChartKind {
    /// File names of this kind's charts start with this.
    fn file_prefix(&self) -> &'static str;

    /// Adds this kind's charts of one profile to `plan`, or a note why it
    /// has none.
    fn plan_profile(&self, _profile: &ProfileCases, _plan: &mut ChartPlan) {}

    /// Adds charts that span profiles, after every profile's charts.
    fn plan_across_profiles(&self, _results: &ResultsFile, _plan: &mut ChartPlan) {}
}

/// Every chart kind, in the order their charts are planned.
pub const CHART_KINDS: &[&dyn ChartKind] = &[
    &syscalls::SyscallsPerRequest,
    &size::ThroughputVsSize,
    &latency::LatencyPercentiles,
    &cpu::CpuPerRequest,
    &connections::ThroughputVsConnections,
    &effects::Effects,
    &scale::Scale,
];

/// `<prefix>-<slug>`: a chart's file name without extension.
fn file_stem(kind: &dyn ChartKind, name: &str) -> String {
    format!("{}-{}", kind.file_prefix(), super::style::slug(name))
}

/// Kernel, CPU, date, build; how spreads are drawn; what failed.
pub fn footer(results: &ResultsFile, cases: &[&CaseResult]) -> Vec<String> {
    let env = &results.environment;
    let date = results
        .run
        .started_at_utc
        .get(..10)
        .unwrap_or(&results.run.started_at_utc);
    let commit = env.git_commit.get(..7).unwrap_or(&env.git_commit);
    // Two short lines rather than one long one: the narrowest charts are
    // 640 px wide.
    let mut lines = vec![
        format!(
            "kernel {} · {} · {} logical CPUs",
            env.kernel_release, env.cpu_model, env.logical_cpus
        ),
        format!(
            "run {} · epoll-bench {} ({}, {} build)",
            date, env.epoll_bench_version, commit, env.build_profile
        ),
    ];
    let repetitions = cases
        .iter()
        .flat_map(|c| data::passed(c))
        .map(|p| p.summary.repetitions_used)
        .max()
        .unwrap_or(0);
    lines.push(format!(
        "Lines and bars: median over repetitions; bands and error bars: min–max over up to {repetitions} repetitions."
    ));
    let failures = data::failures(cases);
    if !failures.is_empty() {
        lines.push(clip(&format!("Not shown, failed: {}", failures.join("; "))));
    }
    if results.run.status == RunStatus::Incomplete {
        lines.push(clip(&format!(
            "Incomplete run: {}",
            results
                .run
                .incomplete_reason
                .as_deref()
                .unwrap_or("interrupted")
        )));
    }
    lines
}

fn clip(line: &str) -> String {
    const MAX_CHARS: usize = 150;
    if line.chars().count() <= MAX_CHARS {
        line.to_string()
    } else {
        let mut s: String = line.chars().take(MAX_CHARS - 1).collect();
        s.push('…');
        s
    }
}

fn case_caption(case: &CaseResult) -> String {
    let connections = case.case.connections;
    format!(
        "{} · {} connection{}",
        case.label,
        connections,
        if connections == 1 { "" } else { "s" }
    )
}

fn variant_legend(names: &[VariantName]) -> Vec<(String, LegendKey)> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), LegendKey::Line(variant_style(n, i))))
        .collect()
}

fn lines_of(series: &[Series], x: impl Fn(f64) -> f64) -> Vec<Line> {
    series
        .iter()
        .enumerate()
        .map(|(i, s)| Line {
            style: variant_style(&s.variant, i),
            points: s
                .points
                .iter()
                .map(|(px, sp)| (x(*px), sp.median, sp.min, sp.max))
                .collect(),
            ringed_x: s.driver_bound_x.iter().map(|px| x(*px)).collect(),
        })
        .collect()
}

/// x axis over powers of two: the measured values as ticks.
fn log2_axis(values: &[f64], label: impl Fn(f64) -> String) -> ((f64, f64), Vec<(f64, String)>) {
    let mut ticks: Vec<(f64, String)> = values.iter().map(|v| (v.log2(), label(*v))).collect();
    ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
    ticks.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-9);
    let lo = ticks.first().map_or(0.0, |t| t.0);
    let hi = ticks.last().map_or(1.0, |t| t.0);
    ((lo - 0.5, hi + 0.5), ticks)
}

/// Footer line for a chart whose lines may carry rings.
const RINGS_NOTE: &str = "Ringed points: the driver was saturated and the server was not, so the point measures the driver; read the server's CPU per request there.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    #[test]
    fn every_chart_belongs_to_one_registered_kind() {
        let prefixes: Vec<&str> = CHART_KINDS.iter().map(|k| k.file_prefix()).collect();
        let plan = super::super::plan(&fixture::results()).unwrap();
        assert!(!plan.charts.is_empty());
        for chart in &plan.charts {
            let owners = prefixes
                .iter()
                .filter(|p| chart.file_stem.starts_with(&format!("{p}-")))
                .count();
            assert_eq!(owners, 1, "{}", chart.file_stem);
        }
    }
}
