//! `latency-percentiles-*`: for a profile of single cases, latency against
//! percentile on a "nines" axis, one panel per case; for a size or
//! connections sweep, p50 and p99 latency against the swept value, one
//! panel each (nine panels of curves would hide what the sweep shows).

use super::{
    ChartKind, ProfileCases, RINGS_NOTE, case_caption, file_stem, lines_of, log2_axis,
    variant_legend,
};
use crate::report::charts::data::{self, Passed, Series};
use crate::report::charts::draw::{Line, LinePanel, YScale};
use crate::report::charts::style::{format_bytes, variant_order, variant_style};
use crate::report::charts::{Chart, ChartPlan, Panel};
use crate::results::{CaseResult, Spread, Summary};
use crate::server::VariantName;

pub struct LatencyPercentiles;

/// Why curves stop short of 100 %.
const CUT_NOTE: &str =
    "Curves end at percentile 1 − 10/N, N the fewest latency samples of a repetition.";

/// Percentiles that get a tick, as far as some curve reaches.
const TICK_PERCENTILES: [f64; 7] = [50.0, 90.0, 99.0, 99.9, 99.99, 99.999, 99.9999];

impl ChartKind for LatencyPercentiles {
    fn file_prefix(&self) -> &'static str {
        "latency-percentiles"
    }

    fn plan_profile(&self, input: &ProfileCases, plan: &mut ChartPlan) {
        if let Some(sweep) = data::sweep(input.cases) {
            let axis = SweptAxis {
                what: "message size",
                x_desc: "message size (bytes, log-2 scale)",
                label: format_bytes,
            };
            plan.charts.push(self.against(input, &sweep, &axis));
            return;
        }
        if let Some(sweep) = data::connections_sweep(input.cases) {
            let axis = SweptAxis {
                what: "connections",
                x_desc: "active connections (log-2 scale)",
                label: |n| format!("{n}"),
            };
            plan.charts.push(self.against(input, &sweep, &axis));
            return;
        }
        let mut names: Vec<VariantName> = Vec::new();
        let mut panels = Vec::new();
        for case in input.cases {
            let passed = data::passed(case);
            for p in &passed {
                if !names.contains(&p.variant.variant) {
                    names.push(p.variant.variant.clone());
                }
            }
            panels.push(Panel::Lines(panel(case, &passed)));
        }
        let names = variant_order(&names);
        plan.charts.push(Chart {
            file_stem: file_stem(self, input.profile),
            title: format!("Latency by percentile — profile {}", input.profile),
            legend: variant_legend(&names),
            footer: {
                let mut footer = input.footer.to_vec();
                footer.insert(1, CUT_NOTE.to_string());
                footer
            },
            columns: if panels.len() > 1 { 2 } else { 1 },
            panels,
            panel_width_px: 640,
            panel_height_px: 440,
        });
    }
}

/// What a sweep varies, for the axis of a latency-against chart.
struct SweptAxis {
    what: &'static str,
    x_desc: &'static str,
    label: fn(f64) -> String,
}

/// A summary's latency percentile.
type PickLatency = fn(&Summary) -> Spread;

/// The percentiles drawn against a swept value, one panel each.
const SWEPT_PERCENTILES: [(&str, PickLatency); 2] =
    [("p50", |s| s.p50_latency_us), ("p99", |s| s.p99_latency_us)];

impl LatencyPercentiles {
    /// p50 and p99 latency against the swept value, variants as lines.
    fn against(
        &self,
        input: &ProfileCases,
        sweep: &[(&CaseResult, f64)],
        axis: &SweptAxis,
    ) -> Chart {
        let values: Vec<f64> = sweep.iter().map(|(_, x)| *x).collect();
        let (x_range, x_ticks) = log2_axis(&values, axis.label);
        let mut names: Vec<VariantName> = Vec::new();
        let mut ringed = false;
        let panels = SWEPT_PERCENTILES
            .iter()
            .map(|(name, pick)| {
                let series: Vec<Series> = data::series_over(sweep, pick);
                for s in &series {
                    ringed |= !s.driver_bound_x.is_empty();
                    if !names.contains(&s.variant) {
                        names.push(s.variant.clone());
                    }
                }
                Panel::Lines(LinePanel {
                    caption: format!("{name} latency against {}", axis.what),
                    x_desc: axis.x_desc.into(),
                    y_desc: format!("{name} latency (µs, log scale)"),
                    x_range,
                    x_ticks: x_ticks.clone(),
                    lines: lines_of(&series, f64::log2),
                    marks: Vec::new(),
                    y_scale: YScale::Log,
                    reference_y: None,
                })
            })
            .collect();
        let mut footer = input.footer.to_vec();
        if ringed {
            footer.insert(1, RINGS_NOTE.to_string());
        }
        Chart {
            file_stem: file_stem(self, input.profile),
            title: format!(
                "Latency p50 and p99 against {} — profile {}",
                axis.what, input.profile
            ),
            legend: variant_legend(&variant_order(&names)),
            footer,
            columns: 2,
            panels,
            panel_width_px: 640,
            panel_height_px: 460,
        }
    }
}

/// One case's curves from the median up, with ticks as far as they reach.
fn panel(case: &CaseResult, passed: &[Passed]) -> LinePanel {
    // As far as the curves reach: they stop where their samples do.
    let mut x_hi: f64 = 1.0;
    let lines: Vec<Line> = passed
        .iter()
        .map(|p| {
            let points: Vec<(f64, f64, f64, f64)> = data::latency_curve(p)
                .into_iter()
                .filter(|(pct, ..)| *pct >= 50.0)
                .map(|(pct, m, lo, hi)| (data::nines(pct), m, lo, hi))
                .collect();
            for (x, ..) in &points {
                x_hi = x_hi.max(x.ceil());
            }
            Line {
                style: variant_style(&p.variant.variant, 0),
                points,
                ringed_x: Vec::new(),
            }
        })
        .collect();
    let x_ticks: Vec<(f64, String)> = TICK_PERCENTILES
        .into_iter()
        .map(|p: f64| (data::nines(p), format!("{p}%")))
        .filter(|(x, _)| *x <= x_hi + 1e-9)
        .collect();
    LinePanel {
        caption: case_caption(case),
        x_desc: "percentile (log scale of nines; 100 % drawn at the right edge)".into(),
        y_desc: "latency (µs)".into(),
        x_range: (data::nines(50.0) - 0.15, x_hi + 0.15),
        x_ticks,
        lines,
        marks: Vec::new(),
        y_scale: YScale::Log,
        reference_y: None,
    }
}
