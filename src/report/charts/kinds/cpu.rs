//! `cpu-per-request-*`: server CPU µs and context switches per request,
//! one bar per variant, two panels per case.

use super::{ChartKind, ProfileCases, case_caption, file_stem};
use crate::report::charts::data::{self, Passed};
use crate::report::charts::draw::{self, Bar, BarPanel, Segment};
use crate::report::charts::style::variant_style;
use crate::report::charts::{Chart, ChartPlan, Panel};
use crate::results::figures::{CONTEXT_SWITCHES_PER_REQUEST, Figure, SERVER_CPU_US_PER_REQUEST};

pub struct CpuPerRequest;

/// The figures charted, one panel each per case.
const FIGURES: [Figure; 2] = [SERVER_CPU_US_PER_REQUEST, CONTEXT_SWITCHES_PER_REQUEST];

impl ChartKind for CpuPerRequest {
    fn file_prefix(&self) -> &'static str {
        "cpu-per-request"
    }

    fn plan_profile(&self, input: &ProfileCases, plan: &mut ChartPlan) {
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
