//! `throughput-vs-size-*`: the throughput figures and server CPU per
//! request against message size (log-2 axis) for size sweeps, with the
//! splice crossovers marked (by MB/s, and by server CPU per request), and
//! each variant's MB/s as a ratio to the best writev variant's at each size
//! on a linear axis, where gaps a log axis flattens can be read.

use super::{ChartKind, ProfileCases, RINGS_NOTE, file_stem, lines_of, log2_axis, variant_legend};
use crate::report::charts::data::{self, Crossover, Series};
use crate::report::charts::draw::{LinePanel, VerticalMark, YScale};
use crate::report::charts::style::{format_bytes, variant_style};
use crate::report::charts::{Chart, ChartPlan, Panel};
use crate::results::CaseResult;
use crate::results::figures::{
    self, Better, ChartText, Figure, Group, PAYLOAD_MEGABYTES_PER_SECOND, SERVER_CPU_US_PER_REQUEST,
};
use crate::server::VariantName;
use crate::server::variant::CopyMode;

pub struct ThroughputVsSize;

impl ChartKind for ThroughputVsSize {
    fn file_prefix(&self) -> &'static str {
        "throughput-vs-size"
    }

    /// Only sweeps (two sizes or more) get one.
    fn plan_profile(&self, input: &ProfileCases, plan: &mut ChartPlan) {
        if let Some(sweep) = data::sweep(input.cases) {
            plan.charts.push(self.chart(input, &sweep));
        }
    }
}

/// The throughput figures against size: payload MB/s first (the splice
/// crossover is read on it), then the other throughput figures.
fn throughput_figures() -> Vec<(&'static Figure, ChartText)> {
    let mut out: Vec<(&Figure, ChartText)> = figures::charted(Group::Throughput).collect();
    out.sort_by_key(|(f, _)| f.name != PAYLOAD_MEGABYTES_PER_SECOND.name);
    out
}

/// Dashed vertical marks at the splice crossovers, labelled with `verb`.
fn crossover_marks(crossovers: &[Crossover], verb: &str) -> Vec<VerticalMark> {
    crossovers
        .iter()
        .map(|c| VerticalMark {
            x: c.size_bytes.log2(),
            label: format!(
                "{} {verb} {} from {}",
                c.splice_variant,
                c.counterparts
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("/"),
                format_bytes(c.size_bytes)
            ),
            color: variant_style(&c.splice_variant, 0).color,
        })
        .collect()
}

impl ThroughputVsSize {
    /// ~100 lines: the four panels of one chart from the same series and
    /// crossovers, one block per panel.
    fn chart(&self, input: &ProfileCases, sweep: &[(&CaseResult, f64)]) -> Chart {
        let sizes: Vec<f64> = sweep.iter().map(|(_, s)| *s).collect();
        let (x_range, x_ticks) = log2_axis(&sizes, format_bytes);
        let panel = |text: ChartText, series: &[Series], marks: Vec<VerticalMark>| {
            Panel::Lines(LinePanel {
                caption: text.caption.into(),
                x_desc: "message size (bytes, log-2 scale)".into(),
                y_desc: text.axis.into(),
                x_range,
                x_ticks: x_ticks.clone(),
                lines: lines_of(series, f64::log2),
                marks,
                y_scale: YScale::Log,
                reference_y: None,
            })
        };
        let mbps = data::series_of_available(sweep, PAYLOAD_MEGABYTES_PER_SECOND.pick);
        let throughput_crossovers = data::splice_crossovers(&mbps, Better::Higher);
        let throughput_marks = crossover_marks(&throughput_crossovers, "beats");
        let mut panels: Vec<Panel> = throughput_figures()
            .into_iter()
            .map(|(figure, text)| {
                let series = data::series_of_available(sweep, figure.pick);
                panel(text, &series, throughput_marks.clone())
            })
            .collect();
        // On a log axis over three decades a 1.5× gap at 1 MiB is a hair:
        // the ratio to the best writev variant, on a linear axis, shows it.
        let is_writev = |v: &VariantName| v.builtin().is_some_and(|v| v.copy == CopyMode::Writev);
        let relative = data::relative_to_best(&mbps, is_writev);
        if !relative.is_empty() {
            panels.insert(
                1,
                Panel::Lines(LinePanel {
                    caption: "payload MB/s relative to the best writev variant".into(),
                    x_desc: "message size (bytes, log-2 scale)".into(),
                    y_desc: "MB/s ÷ best writev MB/s at that size".into(),
                    x_range,
                    x_ticks: x_ticks.clone(),
                    lines: lines_of(&relative, f64::log2),
                    marks: Vec::new(),
                    y_scale: YScale::Linear,
                    // Unlabelled: the axis says what 1 is, and a label
                    // would sit on the lines.
                    reference_y: Some((1.0, String::new())),
                }),
            );
        }
        // Server CPU per request does not depend on the driver keeping up:
        // the crossover to cite when throughput points are driver-bound.
        let cpu = data::series_of_available(sweep, SERVER_CPU_US_PER_REQUEST.pick);
        let cpu_crossovers = data::splice_crossovers(&cpu, Better::Lower);
        if let Some(text) = SERVER_CPU_US_PER_REQUEST.chart.filter(|_| !cpu.is_empty()) {
            // No rings here: this figure holds whether or not the driver
            // kept up.
            let unringed: Vec<Series> = cpu
                .iter()
                .cloned()
                .map(|s| Series {
                    driver_bound_x: Vec::new(),
                    ..s
                })
                .collect();
            let marks = crossover_marks(&cpu_crossovers, "cheaper than");
            panels.push(panel(text, &unringed, marks));
        }
        let names: Vec<VariantName> = mbps.iter().map(|s| s.variant.clone()).collect();
        let mut footer = input.footer.to_vec();
        if names
            .iter()
            .any(|n| n.builtin().is_some_and(|v| v.copy == CopyMode::Splice))
        {
            let notes = crossover_notes(
                throughput_crossovers.is_empty(),
                (!cpu.is_empty()).then_some(cpu_crossovers.is_empty()),
            );
            for (i, note) in notes.into_iter().enumerate() {
                footer.insert(1 + i, note);
            }
        }
        if mbps.iter().any(|s| !s.driver_bound_x.is_empty()) {
            footer.insert(1, RINGS_NOTE.to_string());
        }
        Chart {
            file_stem: file_stem(self, input.profile),
            title: format!(
                "Throughput and server CPU against message size — profile {}",
                input.profile
            ),
            legend: variant_legend(&names),
            footer,
            columns: 2,
            panels,
            panel_width_px: 600,
            panel_height_px: 460,
        }
    }
}

/// What the crossover marks mean, or that there are none: by MB/s, and by
/// server CPU per request when that was measured (`Some(none found)`).
fn crossover_notes(none_by_throughput: bool, none_by_cpu: Option<bool>) -> Vec<String> {
    let mut notes = vec![if none_by_throughput {
        "Splice crossover by MB/s: none in the measured sizes.".to_string()
    } else {
        "Splice \"beats\": the smallest size from which the splice variant's median MB/s stays above its same-trigger rw and writev variants' at every larger size.".to_string()
    }];
    if let Some(none_by_cpu) = none_by_cpu {
        notes.push(if none_by_cpu {
            "Splice crossover by server CPU per request: none in the measured sizes.".to_string()
        } else {
            "Splice \"cheaper than\": the same by median server CPU per request (lower is better), which does not depend on the driver keeping up.".to_string()
        });
    }
    notes
}
