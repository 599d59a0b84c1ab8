//! Line panels: medians with min–max bands on a logarithmic y axis.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, OrMessage, error_bar, log_ticks};
use crate::report::charts::style::{
    Dash, LABEL_PX, Marker, SMALL_PX, VariantStyle, estimate_text_px, format_ticks, text,
};

/// One variant's line: `(x, median, min, max)` points sorted by x.
#[derive(Clone, Debug)]
pub struct Line {
    pub style: VariantStyle,
    pub points: Vec<(f64, f64, f64, f64)>,
    /// x values of points drawn with a ring: driver-bound results.
    pub ringed_x: Vec<f64>,
}

/// Radius of the ring around a driver-bound point: clear of every marker.
const RING_RADIUS_PX: i32 = 9;

/// A vertical annotation (the splice crossover).
#[derive(Clone, Debug)]
pub struct VerticalMark {
    pub x: f64,
    pub label: String,
    pub color: RGBColor,
}

/// A panel of lines on a linear x axis (already transformed: log2 of a
/// size, nines of a percentile) and a logarithmic y axis.
#[derive(Clone, Debug)]
pub struct LinePanel {
    pub caption: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x_range: (f64, f64),
    /// Tick positions on x, with their labels.
    pub x_ticks: Vec<(f64, String)>,
    pub lines: Vec<Line>,
    pub marks: Vec<VerticalMark>,
}

/// y range for a log axis covering every band, with some headroom.
fn log_y_range(lines: &[Line], headroom: f64) -> (f64, f64) {
    let values = lines
        .iter()
        .flat_map(|l| l.points.iter())
        .flat_map(|&(_, m, lo, hi)| [m, lo, hi])
        .filter(|v| v.is_finite() && *v > 0.0);
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.1, 10.0);
    }
    if hi / lo < 4.0 {
        let mid = (hi * lo).sqrt();
        lo = mid / 2.0;
        hi = mid * 2.0;
    }
    (lo / 1.3, hi * headroom)
}

/// The coordinates of a line panel: linear x, logarithmic y.
type LineCoord = Cartesian2d<RangedCoordf64, LogCoord<f64>>;
type LineChart<'a, DB> = ChartContext<'a, DB, LineCoord>;

pub fn draw_line_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &LinePanel,
) -> DrawResult {
    let headroom = if panel.marks.is_empty() { 1.4 } else { 3.0 };
    let y_range = log_y_range(&panel.lines, headroom);
    let mut chart = line_axes(area, panel, y_range)?;
    for line in &panel.lines {
        draw_band(area, &mut chart, line, y_range.0)?;
        draw_median(&mut chart, line)?;
    }
    draw_marks(area, &mut chart, &panel.marks, y_range)
}

/// Caption, axis descriptions and our own ticks and grid lines.
fn line_axes<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    panel: &LinePanel,
    (y_lo, y_hi): (f64, f64),
) -> DrawResult<LineChart<'a, DB>> {
    let (x_lo, x_hi) = panel.x_range;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, text(LABEL_PX + 2.0))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x_lo..x_hi, (y_lo..y_hi).log_scale())
        .msg()?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_desc)
        .y_desc(&panel.y_desc)
        .axis_desc_style(text(LABEL_PX))
        .label_style(text(SMALL_PX))
        .x_labels(0)
        .y_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|_| String::new())
        .disable_mesh()
        .draw()
        .msg()?;
    let grid = RGBColor(225, 225, 225).stroke_width(1);
    let base = area.get_base_pixel();
    // y ticks at 1-2-5 steps: plotters' own log ticks crowd the top
    // decade and leave the bottom one bare.
    let y_tick_style = text(SMALL_PX).pos(Pos::new(HPos::Right, VPos::Center));
    let y_ticks = log_ticks(y_lo, y_hi);
    for (&y, label) in y_ticks.iter().zip(format_ticks(&y_ticks)) {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x_lo, y), (x_hi, y)],
                grid,
            )))
            .msg()?;
        let (px, py) = chart.backend_coord(&(x_lo, y));
        area.draw_text(
            &label,
            &y_tick_style,
            (px - base.0 - 6, py - base.1),
        )
        .msg()?;
    }
    // x ticks at our own positions (powers of two, nines), since plotters
    // would choose round numbers of the transformed value.
    let x_tick_style = text(SMALL_PX).pos(Pos::new(HPos::Center, VPos::Top));
    for (x, label) in &panel.x_ticks {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(*x, y_lo), (*x, y_hi)],
                grid,
            )))
            .msg()?;
        let (px, py) = chart.backend_coord(&(*x, y_lo));
        area.draw_text(label, &x_tick_style, (px - base.0, py - base.1 + 6))
            .msg()?;
    }
    Ok(chart)
}

/// The min–max band of a line, or an error bar for a single point.
fn draw_band<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &mut LineChart<DB>,
    line: &Line,
    y_lo: f64,
) -> DrawResult {
    let color = line.style.color;
    let banded = line.points.iter().any(|&(_, _, lo, hi)| hi > lo);
    if !banded {
        return Ok(());
    }
    if line.points.len() >= 2 {
        let mut outline: Vec<(f64, f64)> =
            line.points.iter().map(|&(x, _, _, hi)| (x, hi)).collect();
        outline.extend(
            line.points
                .iter()
                .rev()
                .map(|&(x, _, lo, _)| (x, lo.max(y_lo))),
        );
        chart
            .draw_series(std::iter::once(Polygon::new(outline, color.mix(0.15))))
            .msg()?;
        return Ok(());
    }
    for &(x, _, lo, hi) in &line.points {
        let (px, p_lo) = chart.backend_coord(&(x, lo.max(y_lo)));
        let (_, p_hi) = chart.backend_coord(&(x, hi));
        let b = area.get_base_pixel();
        error_bar(area, (px - b.0, p_lo - b.1, p_hi - b.1), color)?;
    }
    Ok(())
}

/// The median line in the variant's dash, its markers, and rings around
/// driver-bound points.
fn draw_median<DB: DrawingBackend>(chart: &mut LineChart<DB>, line: &Line) -> DrawResult {
    let color = line.style.color;
    let median: Vec<(f64, f64)> = line.points.iter().map(|&(x, m, _, _)| (x, m)).collect();
    let stroke = color.stroke_width(2);
    match line.style.dash {
        Dash::Solid => chart
            .draw_series(LineSeries::new(median.clone(), stroke))
            .msg()
            .map(drop)?,
        Dash::Dashed => chart
            .draw_series(DashedLineSeries::new(median.clone(), 9, 5, stroke))
            .msg()
            .map(drop)?,
        Dash::Dotted => chart
            .draw_series(DashedLineSeries::new(median.clone(), 2, 4, stroke))
            .msg()
            .map(drop)?,
    }
    draw_markers(chart, &median, line.style)?;
    // Black rings read in greyscale and whatever the variant's colour.
    chart
        .draw_series(
            median
                .iter()
                .filter(|(x, _)| line.ringed_x.iter().any(|r| (r - x).abs() < 1e-9))
                .map(|p| {
                    EmptyElement::at(*p)
                        + Circle::new((0, 0), RING_RADIUS_PX, BLACK.stroke_width(1))
                }),
        )
        .msg()?;
    Ok(())
}

/// The variant's marker at every median point. One concrete element type
/// per marker: boxed dynamic elements would need a 'static backend.
fn draw_markers<DB: DrawingBackend>(
    chart: &mut LineChart<DB>,
    median: &[(f64, f64)],
    style: VariantStyle,
) -> DrawResult {
    let fill = style.color.filled();
    let at = |p: &(f64, f64)| EmptyElement::at(*p);
    match style.marker {
        Marker::Circle => chart
            .draw_series(median.iter().map(|p| at(p) + Circle::new((0, 0), 4, fill)))
            .msg()
            .map(drop),
        Marker::Triangle => chart
            .draw_series(
                median
                    .iter()
                    .map(|p| at(p) + TriangleMarker::new((0, 0), 6, fill)),
            )
            .msg()
            .map(drop),
        Marker::Square => chart
            .draw_series(
                median
                    .iter()
                    .map(|p| at(p) + Rectangle::new([(-4, -4), (4, 4)], fill)),
            )
            .msg()
            .map(drop),
        Marker::Cross => chart
            .draw_series(
                median
                    .iter()
                    .map(|p| at(p) + Cross::new((0, 0), 5, style.color.stroke_width(2))),
            )
            .msg()
            .map(drop),
    }
}

/// Dashed vertical marks with their labels, stacked down from the top.
fn draw_marks<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &mut LineChart<DB>,
    marks: &[VerticalMark],
    (y_lo, y_hi): (f64, f64),
) -> DrawResult {
    let mark_style = text(SMALL_PX).pos(Pos::new(HPos::Left, VPos::Top));
    for (i, mark) in marks.iter().enumerate() {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(mark.x, y_lo), (mark.x, y_hi)],
                6,
                4,
                mark.color.stroke_width(2),
            ))
            .msg()?;
        let (px, py) = chart.backend_coord(&(mark.x, y_hi));
        let base = area.get_base_pixel();
        // Labels go right of the line, or left when they would leave the
        // panel.
        let (label_w, _) = estimate_text_px(&mark.label, SMALL_PX);
        let right_edge = area.dim_in_pixel().0 as i32;
        let x = px - base.0;
        let (anchor, x) = if x + 4 + label_w as i32 > right_edge - 8 {
            (HPos::Right, x - 4)
        } else {
            (HPos::Left, x + 4)
        };
        area.draw_text(
            &mark.label,
            &mark_style
                .pos(Pos::new(anchor, VPos::Top))
                .color(&mark.color),
            (x, py - base.1 + 4 + i as i32 * 16),
        )
        .msg()?;
    }
    Ok(())
}
