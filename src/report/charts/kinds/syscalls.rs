//! `syscalls-per-request-*`: server syscalls per request stacked by kind,
//! one bar per variant, one panel per case of the profile. An io_uring
//! variant gets a second bar right beside its own: its io_uring operations
//! (SQEs) per request stacked by opcode, the second currency — one
//! `io_uring_enter` carries many operations, so "0.2 syscalls but 2.1
//! operations per request" shows as a short bar next to a tall one.

use super::{ChartKind, ProfileCases, case_caption, file_stem};
use crate::report::charts::data::{self, Passed};
use crate::report::charts::draw::{self, Bar, BarPanel, LegendKey, Segment};
use crate::report::charts::style::{OTHER_GREY, syscall_kind_color, uring_op_color};
use crate::report::charts::{Chart, ChartPlan, Panel};
use crate::results::CaseResult;
use crate::sys::uring_ops::UringOp;

pub struct SyscallsPerRequest;

/// Most-called kinds in a profile get their own stack; the rest are
/// "other".
const MAX_KIND_STACKS: usize = 6;

impl ChartKind for SyscallsPerRequest {
    fn file_prefix(&self) -> &'static str {
        "syscalls-per-request"
    }

    fn plan_profile(&self, input: &ProfileCases, plan: &mut ChartPlan) {
        match self.chart(input) {
            Some(chart) => plan.charts.push(chart),
            None => plan.notes.push(format!(
                "profile `{}`: no syscall chart, no server-side figures",
                input.profile
            )),
        }
    }
}

impl SyscallsPerRequest {
    fn chart(&self, input: &ProfileCases) -> Option<Chart> {
        let stacks = Stacks::of(input.cases)?;
        let mut panels = Vec::new();
        let mut widest = 0;
        for case in input.cases {
            let bars: Vec<Bar> = data::passed(case)
                .iter()
                .flat_map(|p| stacks.bar(p).into_iter().chain(stacks.operations_bar(p)))
                .collect();
            if bars.is_empty() {
                continue;
            }
            widest = widest.max(bars.len());
            panels.push(Panel::Bars(BarPanel {
                caption: case_caption(case),
                y_desc: if stacks.ops.is_empty() {
                    "server syscalls per request (calls)".into()
                } else {
                    "per request: server syscalls (calls), io_uring operations (SQEs)".into()
                },
                bars,
                label_segments: true,
            }));
        }
        if panels.is_empty() {
            return None;
        }
        Some(Chart {
            file_stem: file_stem(self, input.profile),
            title: if stacks.ops.is_empty() {
                format!(
                    "Server syscalls per request, by kind — profile {}",
                    input.profile
                )
            } else {
                format!(
                    "Server syscalls and io_uring operations per request — profile {}",
                    input.profile
                )
            },
            legend: stacks.legend(),
            footer: input.footer.to_vec(),
            columns: if panels.len() > 1 && widest <= 4 {
                2
            } else {
                1
            },
            panels,
            // Room for the longer title when operations are shown.
            panel_width_px: draw::bar_panel_width(widest).max(if stacks.ops.is_empty() {
                640
            } else {
                800
            }),
            panel_height_px: 400,
        })
    }
}

/// The kinds stacked in a profile's bars, most called first, and whether
/// the rest make an "other" stack; the io_uring opcodes of its operations
/// bars, in [`UringOp::ALL`] order (few: each gets its stack).
struct Stacks {
    kinds: Vec<String>,
    has_other: bool,
    ops: Vec<&'static str>,
}

/// The legend's name of an operation's stack.
fn op_label(op: &str) -> String {
    format!("{op} (io_uring op)")
}

impl Stacks {
    /// `None` when no case has server-side figures.
    fn of(cases: &[&CaseResult]) -> Option<Stacks> {
        let mut totals: Vec<(String, f64)> = Vec::new();
        for case in cases {
            for p in data::passed(case) {
                let Some(server) = &p.summary.server else {
                    continue;
                };
                for (kind, spread) in &server.syscalls_per_request {
                    match totals.iter_mut().find(|(k, _)| k == kind) {
                        Some((_, t)) => *t += spread.median,
                        None => totals.push((kind.clone(), spread.median)),
                    }
                }
            }
        }
        if totals.is_empty() {
            return None;
        }
        let submitted: Vec<&String> = cases
            .iter()
            .flat_map(|case| data::passed(case))
            .filter_map(|p| p.summary.server.as_ref()?.uring_ops.as_ref())
            .flat_map(|u| u.sqes_per_request.keys())
            .collect();
        let ops = UringOp::ALL
            .iter()
            .map(|op| op.name())
            .filter(|name| submitted.iter().any(|s| s.as_str() == *name))
            .collect();
        totals.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(Stacks {
            ops,
            kinds: totals
                .iter()
                .take(MAX_KIND_STACKS)
                .map(|(k, _)| k.clone())
                .collect(),
            has_other: totals.len() > MAX_KIND_STACKS,
        })
    }

    fn color_of(&self, kind: &str) -> plotters::style::RGBColor {
        // By name, not by rank in this profile: a kind keeps its colour
        // from chart to chart.
        if self.kinds.iter().any(|k| k == kind) {
            syscall_kind_color(kind)
        } else {
            OTHER_GREY
        }
    }

    /// A variant's bar; `None` without server-side figures.
    fn bar(&self, p: &Passed) -> Option<Bar> {
        let server = p.summary.server.as_ref()?;
        let mut segments: Vec<Segment> = self
            .kinds
            .iter()
            .map(|kind| Segment {
                label: kind.clone(),
                value: server
                    .syscalls_per_request
                    .get(kind)
                    .map_or(0.0, |s| s.median),
                color: self.color_of(kind),
            })
            .collect();
        if self.has_other {
            let other: f64 = server
                .syscalls_per_request
                .iter()
                .filter(|(k, _)| !self.kinds.contains(k))
                .map(|(_, s)| s.median)
                .sum();
            segments.push(Segment {
                label: "other".into(),
                value: other,
                color: OTHER_GREY,
            });
        }
        let t = server.syscalls_per_request_total;
        Some(Bar {
            category: p.variant.variant.to_string(),
            segments,
            total_range: Some((t.min, t.median, t.max)),
        })
    }

    /// An io_uring variant's operations bar, beside its syscalls bar;
    /// `None` for variants without operations (epoll).
    fn operations_bar(&self, p: &Passed) -> Option<Bar> {
        let ops = p.summary.server.as_ref()?.uring_ops.as_ref()?;
        let segments = self
            .ops
            .iter()
            .map(|op| Segment {
                label: op.to_string(),
                value: ops.sqes_per_request.get(*op).map_or(0.0, |s| s.median),
                color: uring_op_color(op),
            })
            .collect();
        let t = ops.sqes_per_request_total;
        Some(Bar {
            category: format!("{} ops", p.variant.variant),
            segments,
            total_range: Some((t.min, t.median, t.max)),
        })
    }

    fn legend(&self) -> Vec<(String, LegendKey)> {
        let mut legend: Vec<(String, LegendKey)> = self
            .kinds
            .iter()
            .map(|k| (k.clone(), LegendKey::Swatch(self.color_of(k))))
            .collect();
        if self.has_other {
            legend.push(("other".into(), LegendKey::Swatch(OTHER_GREY)));
        }
        legend.extend(
            self.ops
                .iter()
                .map(|op| (op_label(op), LegendKey::Swatch(uring_op_color(op)))),
        );
        legend
    }
}
