//! Charts drawn from a results file alone (they never measure), as SVG and
//! PNG, rendered in parallel. One file per chart kind in [`kinds`], each a
//! [`ChartKind`] listed in [`CHART_KINDS`]:
//!
//! 1. `syscalls-per-request-*`: server syscalls per request stacked by kind,
//!    one bar per variant, one panel per case of the profile;
//! 2. `throughput-vs-size-*`: the throughput figures and server CPU per
//!    request against message size (log-2 axis) for size sweeps, with the
//!    splice crossovers marked (by MB/s, and by server CPU per request),
//!    and MB/s as a ratio to the best writev variant;
//! 3. `latency-percentiles-*`: latency against percentile on a "nines"
//!    axis, one panel per case, cut where the sample count stops
//!    supporting it; for size and connections sweeps, p50 and p99 against
//!    the swept value;
//! 4. `cpu-per-request-*`: server CPU µs and context switches per request;
//!    for a size sweep, the splice ÷ writev break-even chart;
//! 5. `throughput-vs-connections-*`: the throughput figures against
//!    connection count, for cases that differ only in their connection
//!    count;
//! 6. `effects-*`: per case, each comparison's ratio B/A with its 95%
//!    interval, one panel per figure ([`crate::results::effects`]);
//! 7. `scale-*`: for `idle_active` cases differing in idle count, memory
//!    per connection (server, kernel, driver), and the active set's p99
//!    latency and server CPU per request, against total connections N.
//!
//! Which figures are plotted, and their captions and axes, come from the
//! figure registry ([`crate::results::figures`]).
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
pub mod kinds;
pub mod scale_data;
pub mod style;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use rayon::prelude::*;

use crate::report::export::write_file_atomically;
use crate::results::{CaseResult, ResultsFile};

use draw::{BarPanel, DrawResult, LegendKey, LinePanel, OrMessage};
use style::FixedMetrics;

pub use kinds::{CHART_KINDS, ChartKind, ProfileCases};

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
    /// Shows the I/O error itself rather than returning it as its source:
    /// error chains would print it twice.
    #[error("cannot write {path}: {error}")]
    Io { path: String, error: std::io::Error },
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
    std::fs::create_dir_all(out_dir).map_err(|error| ChartError::Io {
        path: out_dir.display().to_string(),
        error,
    })?;
    let mut written = Vec::new();
    for (path, bytes) in rendered {
        write_file_atomically(&path, &bytes).map_err(|error| ChartError::Io {
            path: path.display().to_string(),
            error,
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
    Effects(draw::EffectPanel),
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
                Panel::Effects(p) => draw::draw_effect_panel(area, p)?,
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

/// Decides which charts the results support: every kind in
/// [`CHART_KINDS`] for each profile, then the kinds that span profiles.
/// Refuses invalid results and results in which no variant passed.
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
        let charted = data::with_a_passed_variant(&cases);
        if charted.is_empty() {
            continue;
        }
        let footer = kinds::footer(results, &cases);
        let input = ProfileCases {
            profile: &profile,
            cases: &charted,
            footer: &footer,
        };
        for kind in CHART_KINDS {
            kind.plan_profile(&input, &mut plan);
        }
    }
    for kind in CHART_KINDS {
        kind.plan_across_profiles(results, &mut plan);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    #[test]
    fn a_failed_write_names_the_file_and_the_reason_once() {
        let dir = tempfile::tempdir().unwrap();
        let stem = &plan(&fixture::results()).unwrap().charts[0].file_stem;
        // A directory where a chart goes: the rename over it fails.
        let blocked = dir.path().join(format!("{stem}.svg"));
        std::fs::create_dir_all(blocked.join("keep")).unwrap();
        let err = render_charts(&fixture::results(), dir.path()).unwrap_err();
        let reason = std::io::Error::from_raw_os_error(21).to_string();
        let expected = format!("cannot write {}: {reason}", blocked.display());
        assert_eq!(err.to_string(), expected);
        // As the command prints it: with the error's chain.
        assert_eq!(format!("{:#}", anyhow::Error::new(err)), expected);
    }
}
