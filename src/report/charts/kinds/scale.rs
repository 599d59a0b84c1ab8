//! `scale-*`: for a profile of `idle_active` cases differing in idle count
//! (issue 15's 10k/50k/100k connections), against the total connection
//! count N = active + idle:
//!
//! - `scale-memory-per-connection-*`: KiB per connection, one panel per
//!   part (server user space, kernel, driver user space), on axes from
//!   zero;
//! - `scale-p99-cpu-*`: the active set's p99 latency, and server CPU per
//!   request.
//!
//! One line per variant in its usual style (LT solid, ET dashed). A figure
//! some result lacks is left out with a chart note, never drawn as zero.

use super::{ChartKind, RINGS_NOTE, clip, file_stem, footer, lines_of, variant_legend};
use crate::report::charts::data::{self, Series};
use crate::report::charts::draw::{LinePanel, YScale};
use crate::report::charts::scale_data::{
    MemoryPart, count, memory_series, scale_cases, server_processes,
};
use crate::report::charts::{Chart, ChartPlan, Panel};
use crate::results::connection_memory::KERNEL_SCOPE;
use crate::results::figures::SERVER_CPU_US_PER_REQUEST;
use crate::results::{CaseResult, ResultsFile};
use crate::server::VariantName;

pub struct Scale;

/// What a scale chart needs besides its cases.
struct ScaleInput<'a> {
    profile: &'a str,
    /// `(case, N)` sorted by N.
    cases: &'a [(&'a CaseResult, f64)],
    footer: Vec<String>,
    /// `server buffers per-connection`, or that it was not recorded.
    buffers: String,
}

impl ChartKind for Scale {
    fn file_prefix(&self) -> &'static str {
        "scale"
    }

    /// Per profile, but here: the buffer policy is the run's.
    fn plan_across_profiles(&self, results: &ResultsFile, plan: &mut ChartPlan) {
        let buffers = match results.run.settings.server_buffers {
            Some(policy) => format!("server buffers {}", policy.name()),
            None => "server buffer policy not recorded".to_string(),
        };
        let mut any_idle_active = false;
        for (profile, cases) in data::by_profile(results) {
            let scale = scale_cases(&data::with_a_passed_variant(&cases));
            if scale.is_empty() {
                continue;
            }
            any_idle_active = true;
            if scale.len() < 2 {
                plan.notes.push(format!(
                    "no scale charts for profile `{profile}`: its passed idle_active cases have one total connection count (N = {}); memory, p99 and CPU against N need two",
                    count(scale[0].1)
                ));
                continue;
            }
            let input = ScaleInput {
                profile: &profile,
                cases: &scale,
                footer: footer(results, &cases),
                buffers: buffers.clone(),
            };
            if let Some(chart) = self.memory_chart(&input, &mut plan.notes) {
                plan.charts.push(chart);
            }
            plan.charts
                .push(self.p99_cpu_chart(&input, &mut plan.notes));
        }
        if !any_idle_active {
            plan.notes.push(
                "no scale charts (memory, p99 and CPU against total connections): no passed idle_active case"
                    .to_string(),
            );
        }
    }
}

/// The x axis of every scale panel: N on a log scale (10k to 100k is a
/// decade; linear would crowd the small counts), ticks at the measured N.
struct NAxis {
    range: (f64, f64),
    ticks: Vec<(f64, String)>,
    desc: String,
}

fn n_axis(cases: &[(&CaseResult, f64)]) -> NAxis {
    let ticks: Vec<(f64, String)> = cases.iter().map(|(_, n)| (n.log10(), count(*n))).collect();
    let lo = ticks.first().map_or(0.0, |t| t.0);
    let hi = ticks.last().map_or(1.0, |t| t.0);
    // Room for the outer tick labels ("100,000") inside the panel.
    let pad = ((hi - lo) * 0.08).max(0.05);
    NAxis {
        range: (lo - pad, hi + pad),
        ticks,
        desc: format!(
            "total connections N = {} active + idle (log scale)",
            active_connections(cases)
        ),
    }
}

fn active_connections(cases: &[(&CaseResult, f64)]) -> String {
    cases
        .first()
        .map_or_else(String::new, |(c, _)| count(f64::from(c.case.connections)))
}

fn names_of(series: &[&[Series]]) -> Vec<VariantName> {
    let names: Vec<&VariantName> = series
        .iter()
        .flat_map(|s| s.iter().map(|s| &s.variant))
        .collect();
    crate::report::charts::style::variant_order(names)
}

fn panel(caption: String, y_desc: &str, x: &NAxis, series: &[Series], y_scale: YScale) -> Panel {
    Panel::Lines(LinePanel {
        caption,
        x_desc: x.desc.clone(),
        y_desc: y_desc.into(),
        x_range: x.range,
        x_ticks: x.ticks.clone(),
        lines: lines_of(series, f64::log10),
        marks: Vec::new(),
        y_scale,
        reference_y: None,
    })
}

impl Scale {
    /// One panel per memory part that some variant has a reading of; none
    /// when no part has one (results written before whole-memory readings).
    fn memory_chart(&self, input: &ScaleInput, notes: &mut Vec<String>) -> Option<Chart> {
        let x = n_axis(input.cases);
        let mut parts: Vec<(MemoryPart, Vec<Series>)> = Vec::new();
        let mut left_out: Vec<String> = Vec::new();
        for part in MemoryPart::ALL {
            let (series, part_notes) = memory_series(input.cases, part);
            left_out.extend(part_notes);
            if series.is_empty() {
                notes.push(format!(
                    "scale memory chart of profile `{}`: no {} panel, no result has the figure",
                    input.profile,
                    part.name()
                ));
            } else {
                parts.push((part, series));
            }
        }
        if parts.is_empty() {
            notes.push(format!(
                "no scale-memory-per-connection chart for profile `{}`: no repetition recorded memory per connection (server_memory.whole)",
                input.profile
            ));
            return None;
        }
        let all: Vec<&[Series]> = parts.iter().map(|(_, s)| s.as_slice()).collect();
        let names = names_of(&all);
        let panels: Vec<Panel> = parts
            .iter()
            .map(|(part, series)| {
                panel(
                    part.name().to_string(),
                    "KiB per connection",
                    &x,
                    series,
                    YScale::LinearFromZero,
                )
            })
            .collect();
        let mut footer = input.footer.clone();
        let processes: Vec<String> = server_processes(input.cases)
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut lines = vec![
            "Memory: growth from before the first connection to the end of the measured window, over N; median and min–max over every passed repetition (timing and counting alike).".to_string(),
            format!(
                "Server RSS summed over its {} process(es). Kernel: socket buffer pages (sockstat TCP mem) + connection slab objects, {KERNEL_SCOPE}.",
                processes.join(" / ")
            ),
        ];
        for note in &left_out {
            notes.push(format!(
                "scale memory chart of profile `{}`: {note}",
                input.profile
            ));
            lines.push(clip(&format!("Not shown: {note}.")));
        }
        for (i, line) in lines.into_iter().enumerate() {
            footer.insert(1 + i, line);
        }
        Some(Chart {
            file_stem: file_stem(self, &format!("memory-per-connection-{}", input.profile)),
            title: format!(
                "Memory per connection against N — profile {} · {}",
                input.profile, input.buffers
            ),
            legend: variant_legend(&names),
            footer,
            columns: panels.len(),
            panels,
            panel_width_px: 520,
            panel_height_px: 440,
        })
    }

    /// p99 latency (ringed where driver-bound: there it measures the
    /// driver) and server CPU per request (not ringed: it holds whether or
    /// not the driver kept up).
    fn p99_cpu_chart(&self, input: &ScaleInput, notes: &mut Vec<String>) -> Chart {
        let x = n_axis(input.cases);
        let p99 = data::series_over(input.cases, |s| s.p99_latency_us);
        let cpu: Vec<Series> =
            data::series_of_available(input.cases, SERVER_CPU_US_PER_REQUEST.pick)
                .into_iter()
                .map(|s| Series {
                    driver_bound_x: Vec::new(),
                    ..s
                })
                .collect();
        let mut footer = input.footer.clone();
        let mut lines = Vec::new();
        for (case, n) in input.cases {
            for p in data::passed(case) {
                if (SERVER_CPU_US_PER_REQUEST.pick)(p.summary).is_none() {
                    let why = p
                        .variant
                        .server_side_unavailable_reason
                        .as_deref()
                        .unwrap_or("no server window");
                    let note = format!(
                        "server CPU per request of {} at N = {} not shown: {why}",
                        p.variant.variant,
                        count(*n)
                    );
                    notes.push(format!(
                        "scale p99/CPU chart of profile `{}`: {note}",
                        input.profile
                    ));
                    lines.push(clip(&format!("Not shown: {note}.")));
                }
            }
        }
        if p99.iter().any(|s| !s.driver_bound_x.is_empty()) {
            lines.insert(0, RINGS_NOTE.to_string());
        }
        for (i, line) in lines.into_iter().enumerate() {
            footer.insert(1 + i, line);
        }
        let mut panels = vec![panel(
            format!(
                "p99 latency of the {} active connections",
                active_connections(input.cases)
            ),
            "p99 latency (µs, log scale)",
            &x,
            &p99,
            YScale::Log,
        )];
        if !cpu.is_empty() {
            panels.push(panel(
                "server CPU per request".to_string(),
                "server CPU per request (µs)",
                &x,
                &cpu,
                YScale::LinearFromZero,
            ));
        }
        Chart {
            file_stem: file_stem(self, &format!("p99-cpu-{}", input.profile)),
            title: format!(
                "p99 latency and server CPU against N — profile {} · {}",
                input.profile, input.buffers
            ),
            legend: variant_legend(&names_of(&[&p99, &cpu])),
            footer,
            columns: panels.len(),
            panels,
            panel_width_px: 640,
            panel_height_px: 460,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::charts::{plan, render_charts_with_notes};
    use crate::results::fixture;

    fn scale_charts(results: &ResultsFile) -> (Vec<Chart>, Vec<String>) {
        let plan = plan(results).unwrap();
        let charts = plan
            .charts
            .into_iter()
            .filter(|c| c.file_stem.starts_with("scale-"))
            .collect();
        (charts, plan.notes)
    }

    #[test]
    fn a_scale_profile_gets_a_memory_and_a_p99_cpu_chart() {
        let (charts, notes) = scale_charts(&fixture::results_with_scale());
        let stems: Vec<&str> = charts.iter().map(|c| c.file_stem.as_str()).collect();
        assert_eq!(
            stems,
            [
                "scale-memory-per-connection-idle-scale",
                "scale-p99-cpu-idle-scale"
            ]
        );
        let memory = &charts[0];
        assert_eq!(memory.panels.len(), 3);
        assert!(
            memory.title.contains("server buffers pooled"),
            "{}",
            memory.title
        );
        let Panel::Lines(first) = &memory.panels[0] else {
            panic!("a line panel")
        };
        let ticks: Vec<&str> = first.x_ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(ticks, ["2,000", "6,000", "10,000"]);
        assert_eq!(
            first.x_desc,
            "total connections N = 1,000 active + idle (log scale)"
        );
        assert_eq!(first.y_scale, YScale::LinearFromZero);
        // The driver RSS left out at 10,000 is said, in the notes and the footer.
        let left_out = "driver user space (RSS) of et-writev at N = 10,000 not shown";
        assert!(notes.iter().any(|n| n.contains(left_out)), "{notes:?}");
        assert!(memory.footer.iter().any(|l| l.contains(left_out)));
    }

    #[test]
    fn p99_and_cpu_are_the_summaries_with_the_driver_bound_point_ringed() {
        let results = fixture::results_with_scale();
        let (charts, _) = scale_charts(&results);
        let chart = &charts[1];
        let [Panel::Lines(p99), Panel::Lines(cpu)] = chart.panels.as_slice() else {
            panic!("two line panels")
        };
        let lt: VariantName = "lt-writev".into();
        let et: VariantName = "et-writev".into();
        let ns = [2_000.0, 6_000.0, 10_000.0];
        // Lines follow the variant order: lt-writev, then et-writev.
        for (line, variant) in p99.lines.iter().zip([&lt, &et]) {
            let medians: Vec<f64> = line.points.iter().map(|p| p.1).collect();
            // Two repetitions: the median is their mean; p99 is 4 × p50.
            let expected: Vec<f64> = ns
                .iter()
                .map(|n| {
                    2.0 * (fixture::scale_p50_us(variant, *n, 0)
                        + fixture::scale_p50_us(variant, *n, 1))
                })
                .collect();
            assert_eq!(medians, expected, "{variant}");
        }
        assert!(p99.lines[0].ringed_x.is_empty());
        assert_eq!(p99.lines[1].ringed_x, vec![10_000f64.log10()]);
        assert!(cpu.lines.iter().all(|l| l.ringed_x.is_empty()));
        for (line, variant) in cpu.lines.iter().zip([&lt, &et]) {
            for ((x, median, _, _), n) in line.points.iter().zip(ns) {
                assert_eq!(*x, n.log10());
                let mean = (fixture::scale_cpu_us(variant, n, 0)
                    + fixture::scale_cpu_us(variant, n, 1))
                    / 2.0;
                assert!(
                    (median - mean).abs() < 1e-9,
                    "{variant} {n}: {median} vs {mean}"
                );
            }
        }
        assert!(chart.footer.iter().any(|l| l == RINGS_NOTE));
    }

    #[test]
    fn one_total_connection_count_is_not_a_scale_curve() {
        let mut results = fixture::results_with_scale();
        let drop: Vec<usize> = results
            .cases
            .iter()
            .enumerate()
            .filter(|(_, c)| c.profile == fixture::SCALE_PROFILE && !c.label.ends_with("/9000idle"))
            .map(|(i, _)| i)
            .collect();
        for i in drop.into_iter().rev() {
            results.cases.remove(i);
            results.run.passed_count -= 2;
        }
        let (charts, notes) = scale_charts(&results);
        assert!(charts.is_empty());
        assert!(
            notes.contains(&"no scale charts for profile `idle-scale`: its passed idle_active cases have one total connection count (N = 10,000); memory, p99 and CPU against N need two".to_string()),
            "{notes:?}"
        );
        let (charts, notes) = scale_charts(&fixture::results());
        assert!(charts.is_empty());
        assert!(notes.iter().any(|n| n.starts_with("no scale charts (")));
    }

    #[test]
    fn results_without_memory_readings_get_no_memory_chart() {
        let mut results = fixture::results_with_scale();
        for case in &mut results.cases {
            for v in &mut case.variants {
                for r in &mut v.repetitions {
                    if let Some(m) = r.server_memory.as_mut() {
                        m.whole = None;
                    }
                }
            }
        }
        let (charts, notes) = scale_charts(&results);
        let stems: Vec<&str> = charts.iter().map(|c| c.file_stem.as_str()).collect();
        assert_eq!(stems, ["scale-p99-cpu-idle-scale"]);
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("no scale-memory-per-connection chart"))
        );
    }

    #[test]
    fn both_charts_are_written_as_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let output = render_charts_with_notes(&fixture::results_with_scale(), dir.path()).unwrap();
        for stem in [
            "scale-memory-per-connection-idle-scale",
            "scale-p99-cpu-idle-scale",
        ] {
            for ext in ["svg", "png"] {
                let path = dir.path().join(format!("{stem}.{ext}"));
                assert!(output.written.contains(&path), "{}", path.display());
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    bytes.len() > 1000,
                    "{}: {} bytes",
                    path.display(),
                    bytes.len()
                );
            }
        }
        let png = std::fs::read(dir.path().join("scale-p99-cpu-idle-scale.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
