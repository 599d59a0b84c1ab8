//! Line panels: medians with min–max bands on a logarithmic y axis.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, OrMessage, error_bar, log_ticks};
use crate::report::charts::style::{
    Dash, LABEL_PX, Marker, SMALL_PX, VariantStyle, estimate_text_px, format_ticks, linear_ticks,
    text,
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

/// How a line panel's y axis is scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YScale {
    /// For figures spanning decades.
    Log,
    /// For ratios near 1, where equal distances should read as equal
    /// differences.
    Linear,
    /// Linear from zero: for amounts whose size matters, such as bytes per
    /// connection, where an axis cut to the data's range would make a few
    /// percent look like a doubling.
    LinearFromZero,
}

/// A panel of lines on a linear x axis (already transformed: log2 of a
/// size, nines of a percentile) and a logarithmic or linear y axis.
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
    pub y_scale: YScale,
    /// A horizontal line (a ratio of 1.0) in y values, with a label (none
    /// when empty).
    pub reference_y: Option<(f64, String)>,
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
    let scaled = match panel.y_scale {
        YScale::Log => {
            let range = log_y_range(&panel.lines, headroom);
            let ticks = log_ticks(range.0, range.1);
            let labels = format_ticks(&ticks);
            ScaledY {
                lines: panel.lines.clone(),
                range,
                ticks: ticks.into_iter().zip(labels).collect(),
                reference: panel.reference_y.clone(),
            }
        }
        YScale::Linear => linear_on_log(panel, false),
        YScale::LinearFromZero => linear_on_log(panel, true),
    };
    let y_range = scaled.range;
    let mut chart = line_axes(area, panel, y_range, &scaled.ticks)?;
    if let Some((y, label)) = &scaled.reference {
        draw_reference(area, &mut chart, panel.x_range, *y, label)?;
    }
    for line in &scaled.lines {
        draw_band(area, &mut chart, line, y_range.0)?;
        draw_median(&mut chart, line)?;
    }
    draw_marks(area, &mut chart, &panel.marks, y_range)
}

/// A panel's lines, y range, ticks and reference line in the coordinates
/// of the (logarithmic) drawing axis.
struct ScaledY {
    lines: Vec<Line>,
    range: (f64, f64),
    ticks: Vec<(f64, String)>,
    reference: Option<(f64, String)>,
}

/// A linear y axis drawn on the logarithmic one: every y becomes
/// `exp((y − base) / span)`, whose logarithm is linear in y, so one drawing
/// path serves both scales. Ticks keep their untransformed labels.
fn linear_on_log(panel: &LinePanel, from_zero: bool) -> ScaledY {
    let values: Vec<f64> = panel
        .lines
        .iter()
        .flat_map(|l| l.points.iter())
        .flat_map(|&(_, m, lo, hi)| [m, lo, hi])
        .chain(panel.reference_y.as_ref().map(|(y, _)| *y))
        .chain(from_zero.then_some(0.0))
        .filter(|v| v.is_finite())
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let span = (hi - lo).max(hi.abs() * 0.02).max(1e-9);
    let top_room = if panel.marks.is_empty() { 0.08 } else { 0.35 };
    // From zero the axis starts at zero itself, so nothing hangs below it.
    let bottom_room = if from_zero && lo >= 0.0 { 0.0 } else { 0.08 };
    let (y_lo, y_hi) = (lo - bottom_room * span, hi + top_room * span);
    let to_axis = |y: f64| ((y - lo) / span).exp();
    let ticks = linear_ticks(y_lo, y_hi, 6);
    let labels = format_ticks(&ticks);
    ScaledY {
        lines: panel
            .lines
            .iter()
            .map(|l| Line {
                points: l
                    .points
                    .iter()
                    .map(|&(x, m, a, b)| (x, to_axis(m), to_axis(a), to_axis(b)))
                    .collect(),
                ..l.clone()
            })
            .collect(),
        range: (to_axis(y_lo), to_axis(y_hi)),
        ticks: ticks.iter().map(|t| to_axis(*t)).zip(labels).collect(),
        reference: panel
            .reference_y
            .as_ref()
            .map(|(y, label)| (to_axis(*y), label.clone())),
    }
}

/// A solid dark horizontal line across the panel, labelled at its right
/// end above the line.
fn draw_reference<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &mut LineChart<DB>,
    (x_lo, x_hi): (f64, f64),
    y: f64,
    label: &str,
) -> DrawResult {
    let color = RGBColor(60, 60, 60);
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(x_lo, y), (x_hi, y)],
            color.stroke_width(2),
        )))
        .msg()?;
    if label.is_empty() {
        return Ok(());
    }
    let (px, py) = chart.backend_coord(&(x_hi, y));
    let base = area.get_base_pixel();
    let style = text(SMALL_PX)
        .color(&color)
        .pos(Pos::new(HPos::Right, VPos::Bottom));
    area.draw_text(label, &style, (px - base.0 - 4, py - base.1 - 3))
        .msg()
}

/// Caption, axis descriptions and our own ticks and grid lines.
fn line_axes<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    panel: &LinePanel,
    (y_lo, y_hi): (f64, f64),
    y_ticks: &[(f64, String)],
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
        .set_all_tick_mark_size(0)
        .draw()
        .msg()?;
    let grid = RGBColor(225, 225, 225).stroke_width(1);
    let base = area.get_base_pixel();
    // Our own y ticks (1-2-5 steps on a log axis): plotters' own log ticks
    // crowd the top decade and leave the bottom one bare.
    let y_tick_style = text(SMALL_PX).pos(Pos::new(HPos::Right, VPos::Center));
    for (y, label) in y_ticks {
        let y = *y;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x_lo, y), (x_hi, y)],
                grid,
            )))
            .msg()?;
        let (px, py) = chart.backend_coord(&(x_lo, y));
        area.draw_text(label, &y_tick_style, (px - base.0 - 6, py - base.1))
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
/// Labels go on white boxes drawn after every line, so no mark's line
/// strikes a label through.
fn draw_marks<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &mut LineChart<DB>,
    marks: &[VerticalMark],
    (y_lo, y_hi): (f64, f64),
) -> DrawResult {
    for mark in marks {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(mark.x, y_lo), (mark.x, y_hi)],
                6,
                4,
                mark.color.stroke_width(2),
            ))
            .msg()?;
    }
    let mark_style = text(SMALL_PX).pos(Pos::new(HPos::Left, VPos::Top));
    let base = area.get_base_pixel();
    let right_edge = area.dim_in_pixel().0 as i32;
    for (i, mark) in marks.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(mark.x, y_hi));
        // Right of the line, or left when the label would leave the panel.
        // The estimate is of an SVG viewer's font; a PNG's glyphs run
        // wider, and the box must hold either.
        let (label_w, label_h) = estimate_text_px(&mark.label, SMALL_PX);
        let (label_w, label_h) = (label_w as i32 * 11 / 10 + 4, label_h as i32);
        let x = px - base.0;
        let left = if x + 6 + label_w > right_edge - 8 {
            x - 6 - label_w
        } else {
            x + 6
        };
        let top = py - base.1 + 4 + i as i32 * (label_h + 6);
        let corners = [(left - 3, top - 2), (left + label_w + 3, top + label_h + 1)];
        area.draw(&Rectangle::new(corners, WHITE.filled())).msg()?;
        area.draw(&Rectangle::new(corners, mark.color.stroke_width(1)))
            .msg()?;
        area.draw_text(&mark.label, &mark_style.color(&mark.color), (left, top))
            .msg()?;
    }
    Ok(())
}
