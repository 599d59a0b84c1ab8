//! `throughput-vs-connections-*`: the throughput figures against
//! connection count, for cases that differ only in their connection count
//! (across profiles).

use super::{ChartKind, RINGS_NOTE, file_stem, footer, lines_of, log2_axis, variant_legend};
use crate::report::charts::data::{self, Series};
use crate::report::charts::draw::{LinePanel, YScale};
use crate::report::charts::{Chart, ChartPlan, Panel};
use crate::results::figures::{self, Group};
use crate::results::{CaseResult, ResultsFile};
use crate::server::VariantName;

pub struct ThroughputVsConnections;

impl ChartKind for ThroughputVsConnections {
    fn file_prefix(&self) -> &'static str {
        "throughput-vs-connections"
    }

    fn plan_across_profiles(&self, results: &ResultsFile, plan: &mut ChartPlan) {
        let groups = data::connection_groups(results);
        if groups.is_empty() {
            plan.notes.push(
                "no throughput-vs-connections chart: no two passed cases differ only in connection count"
                    .to_string(),
            );
        }
        for group in groups {
            let cases: Vec<&CaseResult> = group.iter().map(|(c, _)| *c).collect();
            let footer = footer(results, &cases);
            plan.charts.push(self.chart(&group, footer));
        }
    }
}

impl ThroughputVsConnections {
    fn chart(&self, group: &[(&CaseResult, f64)], mut footer: Vec<String>) -> Chart {
        let mut profiles: Vec<String> = Vec::new();
        for (case, _) in group {
            if !profiles.contains(&case.profile) {
                profiles.push(case.profile.clone());
            }
        }
        let counts: Vec<f64> = group.iter().map(|(_, n)| *n).collect();
        let (x_range, x_ticks) = log2_axis(&counts, |n| format!("{n}"));
        let charted: Vec<(Vec<Series>, _)> = figures::charted(Group::Throughput)
            .map(|(figure, text)| (data::series_of_available(group, figure.pick), text))
            .collect();
        let panels = charted
            .iter()
            .map(|(series, text)| {
                Panel::Lines(LinePanel {
                    caption: text.caption.to_string(),
                    x_desc: "active connections (log-2 scale)".into(),
                    y_desc: text.axis.into(),
                    x_range,
                    x_ticks: x_ticks.clone(),
                    lines: lines_of(series, f64::log2),
                    marks: Vec::new(),
                    y_scale: YScale::Log,
                    reference_y: None,
                })
            })
            .collect();
        // Every throughput figure has the same variants and rings.
        let first: &[Series] = charted.first().map_or(&[], |(s, _)| s);
        let names: Vec<VariantName> = first.iter().map(|s| s.variant.clone()).collect();
        if first.iter().any(|s| !s.driver_bound_x.is_empty()) {
            footer.insert(1, RINGS_NOTE.to_string());
        }
        let joined = profiles.join(", ");
        Chart {
            file_stem: file_stem(self, &profiles.join("-")),
            title: format!(
                "Throughput against connections — profile{} {joined}",
                if profiles.len() > 1 { "s" } else { "" }
            ),
            legend: variant_legend(&names),
            footer,
            panels,
            columns: 2,
            panel_width_px: 640,
            panel_height_px: 460,
        }
    }
}
