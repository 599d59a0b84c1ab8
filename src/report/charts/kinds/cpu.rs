//! `cpu-per-request-*`: server CPU µs and context switches per request,
//! one bar per variant, two panels per case; for a size sweep instead the
//! break-even chart: splice ÷ writev server CPU per request against size,
//! one line per trigger mode (two bar panels per size would run to dozens).

use super::{ChartKind, ProfileCases, case_caption, file_stem, lines_of, log2_axis};
use crate::report::charts::data::{self, Passed, Series};
use crate::report::charts::draw::{self, Bar, BarPanel, LegendKey, LinePanel, Segment, YScale};
use crate::report::charts::style::{format_bytes, variant_style};
use crate::report::charts::{Chart, ChartPlan, Panel};
use crate::results::CaseResult;
use crate::results::figures::{CONTEXT_SWITCHES_PER_REQUEST, Figure, SERVER_CPU_US_PER_REQUEST};

pub struct CpuPerRequest;

/// The figures charted, one panel each per case.
const FIGURES: [Figure; 2] = [SERVER_CPU_US_PER_REQUEST, CONTEXT_SWITCHES_PER_REQUEST];

impl ChartKind for CpuPerRequest {
    fn file_prefix(&self) -> &'static str {
        "cpu-per-request"
    }

    fn plan_profile(&self, input: &ProfileCases, plan: &mut ChartPlan) {
        if let Some(sweep) = data::sweep(input.cases) {
            match self.break_even(input, &sweep) {
                Some(chart) => plan.charts.push(chart),
                None => plan.notes.push(format!(
                    "profile `{}`: no break-even chart, no trigger mode with both splice and writev server figures",
                    input.profile
                )),
            }
            return;
        }
        let mut panels = Vec::new();
        let mut widest = 0;
        for case in input.cases {
            let passed: Vec<Passed> = data::passed(case)
                .into_iter()
                .filter(|p| p.summary.server.is_some())
                .collect();
            if passed.is_empty() {
                continue;
            }
            widest = widest.max(passed.len());
            for figure in &FIGURES {
                let text = figure.chart.expect("charted figures have chart text");
                panels.push(Panel::Bars(BarPanel {
                    caption: format!("{} — {}", case_caption(case), text.caption),
                    y_desc: text.axis.into(),
                    bars: bars(&passed, figure),
                    label_segments: false,
                }));
            }
        }
        if panels.is_empty() {
            plan.notes.push(format!(
                "profile `{}`: no CPU chart, no server-side figures",
                input.profile
            ));
            return;
        }
        plan.charts.push(Chart {
            file_stem: file_stem(self, input.profile),
            title: format!(
                "Server CPU and context switches per request — profile {}",
                input.profile
            ),
            legend: Vec::new(),
            footer: input.footer.to_vec(),
            columns: if widest <= 4 { 2 } else { 1 },
            panels,
            panel_width_px: draw::bar_panel_width(widest).max(640),
            panel_height_px: 380,
        });
    }
}

impl CpuPerRequest {
    /// Splice ÷ writev server CPU per request against size: where splice
    /// starts to pay by the figure that does not depend on the driver.
    fn break_even(&self, input: &ProfileCases, sweep: &[(&CaseResult, f64)]) -> Option<Chart> {
        let pairs = data::splice_writev_break_even(sweep);
        if pairs.is_empty() {
            return None;
        }
        let sizes: Vec<f64> = sweep.iter().map(|(_, s)| *s).collect();
        let (x_range, x_ticks) = log2_axis(&sizes, format_bytes);
        // A line per pair, in the splice variant's look (its trigger
        // mode's dash).
        let series: Vec<Series> = pairs
            .iter()
            .map(|b| Series {
                variant: b.splice_variant.clone(),
                points: b.ratios.clone(),
                driver_bound_x: Vec::new(),
            })
            .collect();
        let legend = pairs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                (
                    format!("{} ÷ {}", b.splice_variant, b.writev_variant),
                    LegendKey::Line(variant_style(&b.splice_variant, i)),
                )
            })
            .collect();
        let mut footer = input.footer.to_vec();
        footer.insert(
            1,
            "Ratio per repetition (splice and writev measured in the same repetition); line: median, band: min–max. Below 1: splice is cheaper.".to_string(),
        );
        Some(Chart {
            file_stem: file_stem(self, input.profile),
            title: format!(
                "Splice break-even by server CPU per request — profile {}",
                input.profile
            ),
            legend,
            footer,
            columns: 1,
            panels: vec![Panel::Lines(LinePanel {
                caption: "server CPU per request, splice ÷ writev (same trigger mode)".into(),
                x_desc: "message size (bytes, log-2 scale)".into(),
                y_desc: "splice ÷ writev server CPU per request".into(),
                x_range,
                x_ticks,
                lines: lines_of(&series, f64::log2),
                marks: Vec::new(),
                y_scale: YScale::Linear,
                reference_y: Some((1.0, "1 = break-even; below: splice cheaper".into())),
            })],
            panel_width_px: 900,
            panel_height_px: 480,
        })
    }
}

/// One bar per variant with server-side figures.
fn bars(passed: &[Passed], figure: &Figure) -> Vec<Bar> {
    passed
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let spread = (figure.pick)(p.summary)?;
            Some(Bar {
                category: p.variant.variant.to_string(),
                segments: vec![Segment {
                    label: String::new(),
                    value: spread.median,
                    color: variant_style(&p.variant.variant, i).color,
                }],
                total_range: Some((spread.min, spread.median, spread.max)),
            })
        })
        .collect()
}
