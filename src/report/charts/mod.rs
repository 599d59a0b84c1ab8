//! Charts drawn from a results file alone (they never measure), as SVG and
//! PNG, rendered in parallel:
//!
//! 1. `syscalls-per-request-*`: server syscalls per request stacked by kind,
//!    one bar per variant, one panel per case of the profile;
//! 2. `throughput-vs-size-*`: MB/s, req/s and server CPU per request
//!    against message size (log-2 axis) for size sweeps, with the splice
//!    crossovers marked (by MB/s, and by server CPU per request);
//! 3. `latency-percentiles-*`: latency against percentile on a "nines"
//!    axis, one panel per case;
//! 4. `throughput-vs-connections-*`: req/s and MB/s against connection
//!    count, for cases that differ only in their connection count;
//! 5. `cpu-per-request-*`: server CPU µs and context switches per request.
//!
//! Lines are medians over repetitions with min–max bands; a ring marks a
//! driver-bound point (the driver saturated, the server not); bars carry
//! min–max error bars. Failed variant results are never drawn (the footer
//! names them); a results file in which nothing passed is refused.
//!
//! Output is deterministic: text is measured without fonts
//! ([`style::FixedMetrics`]), everything is ordered by the results file or
//! by the server's variant order, and dates come from the results.

pub mod data;
pub mod draw;
pub mod style;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use rayon::prelude::*;

use crate::report::compare::Better;
use crate::report::export::write_atomically;
use crate::results::{CaseResult, ResultsFile, RunStatus, Spread, Summary};

use data::{Crossover, Series};
use draw::{
    Bar, BarPanel, DrawResult, LegendKey, Line, LinePanel, OrMessage, Segment, VerticalMark,
};
use style::{
    FixedMetrics, OKABE_ITO, OTHER_GREY, format_bytes, slug, variant_order, variant_style,
};

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("refusing to chart invalid results: {0}")]
    Invalid(String),
    #[error("nothing to chart: {0}")]
    NothingToChart(String),
    #[error("{0}")]
    Font(String),
    #[error("chart {chart}: {message}")]
    Draw { chart: String, message: String },
    #[error("cannot write {path}: {message}")]
    Io { path: String, message: String },
}

/// What [`render_charts_with_notes`] wrote, and what it left out and why.
#[derive(Clone, Debug, Default)]
pub struct ChartOutput {
    pub written: Vec<PathBuf>,
    pub notes: Vec<String>,
}

/// Renders every chart the results support into `out_dir` (created if
/// needed), each as `NAME.svg` and `NAME.png`. Returns the written paths,
/// sorted.
pub fn render_charts(results: &ResultsFile, out_dir: &Path) -> Result<Vec<PathBuf>, ChartError> {
    Ok(render_charts_with_notes(results, out_dir)?.written)
}

/// [`render_charts`], also returning notes on charts or cases left out.
pub fn render_charts_with_notes(
    results: &ResultsFile,
    out_dir: &Path,
) -> Result<ChartOutput, ChartError> {
    let plan = plan(results)?;
    style::load_png_font().map_err(ChartError::Font)?;
    let rendered: Vec<(PathBuf, Vec<u8>)> = plan
        .charts
        .par_iter()
        .map(|chart| {
            let svg = render_svg(chart)?;
            let png = render_png(chart)?;
            Ok([
                (
                    out_dir.join(format!("{}.svg", chart.file_stem)),
                    svg.into_bytes(),
                ),
                (out_dir.join(format!("{}.png", chart.file_stem)), png),
            ])
        })
        .collect::<Result<Vec<_>, ChartError>>()?
        .into_iter()
        .flatten()
        .collect();
    std::fs::create_dir_all(out_dir).map_err(|e| ChartError::Io {
        path: out_dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut written = Vec::new();
    for (path, bytes) in rendered {
        write_atomically(&path, &bytes).map_err(|e| ChartError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        written.push(path);
    }
    written.sort();
    Ok(ChartOutput {
        written,
        notes: plan.notes,
    })
}

/// The charts a results file supports, before drawing.
#[derive(Clone, Debug, Default)]
pub struct ChartPlan {
    pub charts: Vec<Chart>,
    /// Charts or cases left out, and why.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug)]
pub enum Panel {
    Lines(LinePanel),
    Bars(BarPanel),
}

/// One chart, ready to draw on any backend.
#[derive(Clone, Debug)]
pub struct Chart {
    /// File name without extension.
    pub file_stem: String,
    pub title: String,
    pub legend: Vec<(String, LegendKey)>,
    pub footer: Vec<String>,
    pub panels: Vec<Panel>,
    pub columns: usize,
    pub panel_width_px: u32,
    pub panel_height_px: u32,
}

impl Chart {
    /// `(width, height)` in pixels, for SVG and PNG alike.
    pub fn size_px(&self) -> (u32, u32) {
        let columns = self.columns.max(1);
        let rows = self.panels.len().div_ceil(columns).max(1);
        let width = self.panel_width_px * columns as u32;
        let legend_rows = draw::legend_rows(&self.legend, width);
        (
            width,
            draw::frame_height(legend_rows, self.footer.len()) + self.panel_height_px * rows as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let body = draw::frame(root, &self.title, &self.legend, &self.footer)?;
        let columns = self.columns.max(1);
        let rows = self.panels.len().div_ceil(columns).max(1);
        let areas = body.split_evenly((rows, columns));
        for (panel, area) in self.panels.iter().zip(&areas) {
            match panel {
                Panel::Lines(p) => draw::draw_line_panel(area, p)?,
                Panel::Bars(p) => draw::draw_bar_panel(area, p)?,
            }
        }
        root.present().msg()
    }
}

/// The chart as an SVG document. Needs no font.
pub fn render_svg(chart: &Chart) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let backend = FixedMetrics(SVGBackend::with_string(&mut svg, chart.size_px()));
        let root = backend.into_drawing_area();
        chart.draw(&root).map_err(|message| ChartError::Draw {
            chart: chart.file_stem.clone(),
            message,
        })?;
    }
    Ok(svg)
}

/// The chart as PNG bytes. Needs the font [`style::load_png_font`] loads.
pub fn render_png(chart: &Chart) -> Result<Vec<u8>, ChartError> {
    style::load_png_font().map_err(ChartError::Font)?;
    let (width, height) = chart.size_px();
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    let draw_error = |message: String| ChartError::Draw {
        chart: chart.file_stem.clone(),
        message,
    };
    {
        let backend = FixedMetrics(BitMapBackend::with_buffer(&mut pixels, (width, height)));
        let root = backend.into_drawing_area();
        chart.draw(&root).map_err(draw_error)?;
    }
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| draw_error(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| draw_error(e.to_string()))?;
    }
    Ok(png)
}

/// Decides which charts the results support. Refuses invalid results and
/// results in which no variant passed.
pub fn plan(results: &ResultsFile) -> Result<ChartPlan, ChartError> {
    results.validate().map_err(ChartError::Invalid)?;
    if results.run.passed_count == 0 {
        let all: Vec<&CaseResult> = results.cases.iter().collect();
        let reasons = data::failures(&all);
        return Err(ChartError::NothingToChart(if reasons.is_empty() {
            "the results hold no measured case".to_string()
        } else {
            format!(
                "every variant failed in this run, and failed results are never charted ({})",
                reasons.join("; ")
            )
        }));
    }
    let mut plan = ChartPlan::default();
    for case in &results.cases {
        if data::passed(case).is_empty() {
            plan.notes.push(format!(
                "case `{}` left out of every chart: no variant passed",
                case.label
            ));
        }
    }
    for (profile, cases) in data::by_profile(results) {
        let charted: Vec<&CaseResult> = cases
            .iter()
            .copied()
            .filter(|c| !data::passed(c).is_empty())
            .collect();
        if charted.is_empty() {
            continue;
        }
        let footer = footer(results, &cases);
        match syscalls_chart(&profile, &charted, &footer) {
            Some(chart) => plan.charts.push(chart),
            None => plan.notes.push(format!(
                "profile `{profile}`: no syscall chart, no server-side figures"
            )),
        }
        if let Some(sweep) = data::sweep(&charted) {
            plan.charts.push(size_chart(&profile, &sweep, &footer));
        }
        plan.charts.push(latency_chart(&profile, &charted, &footer));
        match cpu_chart(&profile, &charted, &footer) {
            Some(chart) => plan.charts.push(chart),
            None => plan.notes.push(format!(
                "profile `{profile}`: no CPU chart, no server-side figures"
            )),
        }
    }
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
        plan.charts.push(connections_chart(&group, &footer));
    }
    Ok(plan)
}

/// Kernel, CPU, date, build; how spreads are drawn; what failed.
fn footer(results: &ResultsFile, cases: &[&CaseResult]) -> Vec<String> {
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

fn variant_legend(names: &[String]) -> Vec<(String, LegendKey)> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), LegendKey::Line(variant_style(n, i))))
        .collect()
}

/// Most-called kinds in a profile get their own stack; the rest are
/// "other".
const MAX_KIND_STACKS: usize = 6;

fn syscalls_chart(profile: &str, cases: &[&CaseResult], footer: &[String]) -> Option<Chart> {
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
    totals.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let stacked: Vec<String> = totals
        .iter()
        .take(MAX_KIND_STACKS)
        .map(|(k, _)| k.clone())
        .collect();
    let has_other = totals.len() > MAX_KIND_STACKS;
    let color_of = |kind: &str| {
        stacked
            .iter()
            .position(|k| k == kind)
            .map_or(OTHER_GREY, |i| OKABE_ITO[i % OKABE_ITO.len()])
    };
    let mut panels = Vec::new();
    let mut widest = 0;
    for case in cases {
        let bars: Vec<Bar> = data::passed(case)
            .into_iter()
            .filter_map(|p| {
                let server = p.summary.server.as_ref()?;
                let mut segments: Vec<Segment> = stacked
                    .iter()
                    .map(|kind| Segment {
                        label: kind.clone(),
                        value: server
                            .syscalls_per_request
                            .get(kind)
                            .map_or(0.0, |s| s.median),
                        color: color_of(kind),
                    })
                    .collect();
                let other: f64 = server
                    .syscalls_per_request
                    .iter()
                    .filter(|(k, _)| !stacked.contains(k))
                    .map(|(_, s)| s.median)
                    .sum();
                if has_other {
                    segments.push(Segment {
                        label: "other".into(),
                        value: other,
                        color: OTHER_GREY,
                    });
                }
                let t = server.syscalls_per_request_total;
                Some(Bar {
                    category: p.variant.variant.clone(),
                    segments,
                    total_range: Some((t.min, t.median, t.max)),
                })
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        widest = widest.max(bars.len());
        panels.push(Panel::Bars(BarPanel {
            caption: case_caption(case),
            y_desc: "server syscalls per request (calls)".into(),
            bars,
            label_segments: true,
        }));
    }
    if panels.is_empty() {
        return None;
    }
    let mut legend: Vec<(String, LegendKey)> = stacked
        .iter()
        .map(|k| (k.clone(), LegendKey::Swatch(color_of(k))))
        .collect();
    if has_other {
        legend.push(("other".into(), LegendKey::Swatch(OTHER_GREY)));
    }
    Some(Chart {
        file_stem: format!("syscalls-per-request-{}", slug(profile)),
        title: format!("Server syscalls per request, by kind — profile {profile}"),
        legend,
        footer: footer.to_vec(),
        columns: if panels.len() > 1 && widest <= 4 {
            2
        } else {
            1
        },
        panels,
        panel_width_px: draw::bar_panel_width(widest).max(640),
        panel_height_px: 400,
    })
}

fn lines_of(series: &[Series], x: impl Fn(f64) -> f64) -> Vec<Line> {
    let names: Vec<String> = series.iter().map(|s| s.variant.clone()).collect();
    series
        .iter()
        .enumerate()
        .map(|(i, s)| Line {
            style: variant_style(&names[i], i),
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

/// Picks one figure out of a summary.
type FigurePick = fn(&Summary) -> Spread;

fn throughput_figures() -> [(&'static str, FigurePick); 2] {
    [
        ("payload throughput (MB/s)", |s: &Summary| {
            s.payload_megabytes_per_second
        }),
        ("requests per second (req/s)", |s: &Summary| {
            s.requests_per_second
        }),
    ]
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
                c.counterparts.join("/"),
                format_bytes(c.size_bytes)
            ),
            color: variant_style(&c.splice_variant, 0).color,
        })
        .collect()
}

/// Footer line for a chart whose lines may carry rings.
const RINGS_NOTE: &str = "Ringed points: the driver was saturated and the server was not, so the point measures the driver; read the server's CPU per request there.";

fn size_chart(profile: &str, sweep: &[(&CaseResult, f64)], footer: &[String]) -> Chart {
    let sizes: Vec<f64> = sweep.iter().map(|(_, s)| *s).collect();
    let (x_range, x_ticks) = log2_axis(&sizes, format_bytes);
    let mbps = data::series_over(sweep, |s| s.payload_megabytes_per_second);
    let throughput_crossovers = data::splice_crossovers(&mbps, Better::Higher);
    let throughput_marks = crossover_marks(&throughput_crossovers, "beats");
    // Server CPU per request does not depend on the driver keeping up: the
    // crossover to cite when throughput points are driver-bound.
    let cpu = data::series_of_available(sweep, |s| {
        s.server
            .as_ref()
            .map(|server| server.server_cpu_us_per_request)
    });
    let cpu_crossovers = data::splice_crossovers(&cpu, Better::Lower);
    let names: Vec<String> = mbps.iter().map(|s| s.variant.clone()).collect();
    let panel = |caption: &str, y_desc: &str, series: &[Series], marks: &[VerticalMark]| {
        Panel::Lines(LinePanel {
            caption: caption.into(),
            x_desc: "message size (bytes, log-2 scale)".into(),
            y_desc: y_desc.into(),
            x_range,
            x_ticks: x_ticks.clone(),
            lines: lines_of(series, f64::log2),
            marks: marks.to_vec(),
        })
    };
    let mut panels: Vec<Panel> = throughput_figures()
        .into_iter()
        .map(|(y_desc, figure)| {
            let caption = y_desc.split(" (").next().unwrap_or(y_desc);
            panel(
                caption,
                y_desc,
                &data::series_over(sweep, figure),
                &throughput_marks,
            )
        })
        .collect();
    if !cpu.is_empty() {
        // No rings here: this figure holds whether or not the driver kept up.
        let unringed: Vec<Series> = cpu
            .iter()
            .cloned()
            .map(|s| Series {
                driver_bound_x: Vec::new(),
                ..s
            })
            .collect();
        panels.push(panel(
            "server CPU per request",
            "server CPU per request (µs, user + system)",
            &unringed,
            &crossover_marks(&cpu_crossovers, "cheaper than"),
        ));
    }
    let mut footer = footer.to_vec();
    let splice_present = names.iter().any(|n| n.contains("splice"));
    if splice_present {
        let mut notes = vec![if throughput_crossovers.is_empty() {
            "Splice crossover by MB/s: none in the measured sizes.".to_string()
        } else {
            "Splice \"beats\": the smallest size from which the splice variant's median MB/s stays above its same-trigger rw and writev variants' at every larger size.".to_string()
        }];
        if !cpu.is_empty() {
            notes.push(if cpu_crossovers.is_empty() {
                "Splice crossover by server CPU per request: none in the measured sizes.".to_string()
            } else {
                "Splice \"cheaper than\": the same by median server CPU per request (lower is better), which does not depend on the driver keeping up.".to_string()
            });
        }
        for (i, note) in notes.into_iter().enumerate() {
            footer.insert(1 + i, note);
        }
    }
    if mbps.iter().any(|s| !s.driver_bound_x.is_empty()) {
        footer.insert(1, RINGS_NOTE.to_string());
    }
    Chart {
        file_stem: format!("throughput-vs-size-{}", slug(profile)),
        title: format!("Throughput and server CPU against message size — profile {profile}"),
        legend: variant_legend(&names),
        footer,
        columns: panels.len(),
        panels,
        panel_width_px: 600,
        panel_height_px: 460,
    }
}

fn latency_chart(profile: &str, cases: &[&CaseResult], footer: &[String]) -> Chart {
    let mut names: Vec<String> = Vec::new();
    let mut panels = Vec::new();
    for case in cases {
        let passed = data::passed(case);
        let mut x_hi: f64 = 3.0;
        let lines: Vec<Line> = passed
            .iter()
            .map(|p| {
                let name = p.variant.variant.clone();
                if !names.contains(&name) {
                    names.push(name.clone());
                }
                let points: Vec<(f64, f64, f64, f64)> = data::latency_curve(p)
                    .into_iter()
                    .filter(|(pct, ..)| *pct >= 50.0)
                    .map(|(pct, m, lo, hi)| (data::nines(pct), m, lo, hi))
                    .collect();
                for (x, ..) in &points {
                    x_hi = x_hi.max(x.ceil());
                }
                Line {
                    style: variant_style(&name, 0),
                    points,
                    ringed_x: Vec::new(),
                }
            })
            .collect();
        let x_ticks: Vec<(f64, String)> = [50.0, 90.0, 99.0, 99.9, 99.99, 99.999, 99.9999]
            .into_iter()
            .map(|p: f64| (data::nines(p), format!("{p}%")))
            .filter(|(x, _)| *x <= x_hi + 1e-9)
            .collect();
        panels.push(Panel::Lines(LinePanel {
            caption: case_caption(case),
            x_desc: "percentile (log scale of nines; 100 % drawn at the right edge)".into(),
            y_desc: "latency (µs)".into(),
            x_range: (data::nines(50.0) - 0.15, x_hi + 0.15),
            x_ticks,
            lines,
            marks: Vec::new(),
        }));
    }
    let names = variant_order(names.iter().map(String::as_str));
    Chart {
        file_stem: format!("latency-percentiles-{}", slug(profile)),
        title: format!("Latency by percentile — profile {profile}"),
        legend: variant_legend(&names),
        footer: footer.to_vec(),
        columns: if panels.len() > 1 { 2 } else { 1 },
        panels,
        panel_width_px: 640,
        panel_height_px: 440,
    }
}

fn connections_chart(group: &[(&CaseResult, f64)], footer: &[String]) -> Chart {
    let mut profiles: Vec<String> = Vec::new();
    for (case, _) in group {
        if !profiles.contains(&case.profile) {
            profiles.push(case.profile.clone());
        }
    }
    let counts: Vec<f64> = group.iter().map(|(_, n)| *n).collect();
    let (x_range, x_ticks) = log2_axis(&counts, |n| format!("{n}"));
    let series = data::series_over(group, |s| s.requests_per_second);
    let names: Vec<String> = series.iter().map(|s| s.variant.clone()).collect();
    let mut figures = throughput_figures();
    figures.reverse();
    let panels = figures
        .into_iter()
        .map(|(y_desc, figure)| {
            let series = data::series_over(group, figure);
            Panel::Lines(LinePanel {
                caption: y_desc.split(" (").next().unwrap_or(y_desc).to_string(),
                x_desc: "active connections (log-2 scale)".into(),
                y_desc: y_desc.into(),
                x_range,
                x_ticks: x_ticks.clone(),
                lines: lines_of(&series, f64::log2),
                marks: Vec::new(),
            })
        })
        .collect();
    let joined = profiles.join(", ");
    let mut footer = footer.to_vec();
    if series.iter().any(|s| !s.driver_bound_x.is_empty()) {
        footer.insert(1, RINGS_NOTE.to_string());
    }
    Chart {
        file_stem: format!("throughput-vs-connections-{}", slug(&profiles.join("-"))),
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

fn cpu_chart(profile: &str, cases: &[&CaseResult], footer: &[String]) -> Option<Chart> {
    let mut panels = Vec::new();
    let mut widest = 0;
    for case in cases {
        let passed: Vec<_> = data::passed(case)
            .into_iter()
            .filter(|p| p.summary.server.is_some())
            .collect();
        if passed.is_empty() {
            continue;
        }
        widest = widest.max(passed.len());
        type Pick = fn(&crate::results::ServerSummary) -> Spread;
        let figures: [(&str, &str, Pick); 2] = [
            (
                "server CPU per request",
                "server CPU per request (µs, user + system)",
                |s| s.server_cpu_us_per_request,
            ),
            (
                "context switches per request",
                "server context switches per request (count)",
                |s| s.context_switches_per_request,
            ),
        ];
        for (caption, y_desc, pick) in figures {
            let bars = passed
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let spread = pick(p.summary.server.as_ref().expect("filtered above"));
                    Bar {
                        category: p.variant.variant.clone(),
                        segments: vec![Segment {
                            label: String::new(),
                            value: spread.median,
                            color: variant_style(&p.variant.variant, i).color,
                        }],
                        total_range: Some((spread.min, spread.median, spread.max)),
                    }
                })
                .collect();
            panels.push(Panel::Bars(BarPanel {
                caption: format!("{} — {caption}", case_caption(case)),
                y_desc: y_desc.into(),
                bars,
                label_segments: false,
            }));
        }
    }
    if panels.is_empty() {
        return None;
    }
    Some(Chart {
        file_stem: format!("cpu-per-request-{}", slug(profile)),
        title: format!("Server CPU and context switches per request — profile {profile}"),
        legend: Vec::new(),
        footer: footer.to_vec(),
        columns: if widest <= 4 { 2 } else { 1 },
        panels,
        panel_width_px: draw::bar_panel_width(widest).max(640),
        panel_height_px: 380,
    })
}
