//! Drawing pieces shared by every chart: the frame (title, legend strip,
//! footer), line panels with min–max bands, and bar panels with error bars.
//! Generic over the backend, so SVG and PNG come from the same code.

use plotters::coord::Shift;
use plotters::element::{DynElement, IntoDynElement};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{
    Dash, LABEL_PX, Marker, SMALL_PX, TITLE_PX, VariantStyle, estimate_text_px, format_tick, text,
};

pub type DrawResult<T = ()> = Result<T, String>;

/// Turns plotters' backend-typed errors into messages.
pub trait OrMessage<T> {
    fn msg(self) -> DrawResult<T>;
}

impl<T, E: std::fmt::Display> OrMessage<T> for Result<T, E> {
    fn msg(self) -> DrawResult<T> {
        self.map_err(|e| e.to_string())
    }
}

/// One legend entry.
#[derive(Clone, Debug)]
pub enum LegendKey {
    /// A line of a variant.
    Line(VariantStyle),
    /// A filled box (bar stacks).
    Swatch(RGBColor),
}

pub const TITLE_HEIGHT_PX: u32 = 40;
pub const LEGEND_ROW_PX: u32 = 22;
pub const FOOTER_LINE_PX: u32 = 17;
const LEGEND_SAMPLE_PX: i32 = 34;

/// Rows the legend strip needs at `width`.
pub fn legend_rows(entries: &[(String, LegendKey)], width: u32) -> u32 {
    if entries.is_empty() {
        return 0;
    }
    let mut rows = 1;
    let mut x = 20i32;
    for (label, _) in entries {
        let w = entry_width(label);
        if x + w > width as i32 - 20 && x > 20 {
            rows += 1;
            x = 20;
        }
        x += w;
    }
    rows
}

fn entry_width(label: &str) -> i32 {
    LEGEND_SAMPLE_PX + 6 + estimate_text_px(label, LABEL_PX).0 as i32 + 22
}

/// Height of the frame around the panels.
pub fn frame_height(legend_rows: u32, footer_lines: usize) -> u32 {
    TITLE_HEIGHT_PX + legend_rows * LEGEND_ROW_PX + 8 + footer_lines as u32 * FOOTER_LINE_PX + 10
}

/// Draws title, legend and footer; returns the area left for panels.
pub fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    legend: &[(String, LegendKey)],
    footer: &[String],
) -> DrawResult<DrawingArea<DB, Shift>> {
    root.fill(&WHITE).msg()?;
    let (width, height) = root.dim_in_pixel();
    let title_style = text(TITLE_PX).pos(Pos::new(HPos::Center, VPos::Top));
    root.draw_text(title, &title_style, (width as i32 / 2, 10))
        .msg()?;

    // Legend strip under the title.
    let rows = legend_rows(legend, width);
    let mut x = 20i32;
    let mut y = TITLE_HEIGHT_PX as i32;
    for (label, key) in legend {
        let w = entry_width(label);
        if x + w > width as i32 - 20 && x > 20 {
            x = 20;
            y += LEGEND_ROW_PX as i32;
        }
        let mid = y + LEGEND_ROW_PX as i32 / 2;
        match key {
            LegendKey::Line(style) => {
                for element in line_sample::<DB>((x, mid), *style) {
                    root.draw(&element).msg()?;
                }
            }
            LegendKey::Swatch(color) => {
                root.draw(&Rectangle::new(
                    [(x + 8, mid - 7), (x + 26, mid + 7)],
                    color.filled(),
                ))
                .msg()?;
                root.draw(&Rectangle::new(
                    [(x + 8, mid - 7), (x + 26, mid + 7)],
                    BLACK.stroke_width(1),
                ))
                .msg()?;
            }
        }
        let label_style = text(LABEL_PX).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw_text(label, &label_style, (x + LEGEND_SAMPLE_PX + 6, mid))
            .msg()?;
        x += w;
    }

    // Footer lines at the bottom.
    let footer_top = height as i32 - 6 - footer.len() as i32 * FOOTER_LINE_PX as i32;
    let footer_style = text(SMALL_PX)
        .color(&RGBColor(70, 70, 70))
        .pos(Pos::new(HPos::Left, VPos::Top));
    for (i, line) in footer.iter().enumerate() {
        root.draw_text(
            line,
            &footer_style,
            (12, footer_top + i as i32 * FOOTER_LINE_PX as i32),
        )
        .msg()?;
    }
    let top = TITLE_HEIGHT_PX + rows * LEGEND_ROW_PX + 8;
    let body_height = (footer_top as u32).saturating_sub(top + 4);
    Ok(root.clone().shrink((0, top), (width, body_height)))
}

/// A short stretch of a variant's line, with its marker, at pixel `at`.
fn line_sample<'a, DB: DrawingBackend + 'a>(
    (x, y): (i32, i32),
    style: VariantStyle,
) -> Vec<DynElement<'a, DB, (i32, i32)>> {
    let stroke = style.color.stroke_width(2);
    let segments: Vec<(i32, i32)> = match style.dash {
        Dash::Solid => vec![(0, LEGEND_SAMPLE_PX)],
        Dash::Dashed => vec![(0, 9), (13, 22), (26, LEGEND_SAMPLE_PX)],
        Dash::Dotted => (0..LEGEND_SAMPLE_PX / 5)
            .map(|i| (i * 5, i * 5 + 2))
            .collect(),
    };
    let mut out: Vec<DynElement<DB, (i32, i32)>> = segments
        .into_iter()
        .map(|(a, b)| PathElement::new(vec![(x + a, y), (x + b, y)], stroke).into_dyn())
        .collect();
    out.push(marker_element((x + LEGEND_SAMPLE_PX / 2, y), style));
    out
}

/// A variant's marker at pixel `at`.
fn marker_element<'a, DB: DrawingBackend + 'a>(
    at: (i32, i32),
    style: VariantStyle,
) -> DynElement<'a, DB, (i32, i32)> {
    let fill = style.color.filled();
    match style.marker {
        Marker::Circle => (EmptyElement::at(at) + Circle::new((0, 0), 4, fill)).into_dyn(),
        Marker::Triangle => {
            (EmptyElement::at(at) + TriangleMarker::new((0, 0), 6, fill)).into_dyn()
        }
        Marker::Square => {
            (EmptyElement::at(at) + Rectangle::new([(-4, -4), (4, 4)], fill)).into_dyn()
        }
        Marker::Cross => {
            (EmptyElement::at(at) + Cross::new((0, 0), 5, style.color.stroke_width(2))).into_dyn()
        }
    }
}

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

pub fn draw_line_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &LinePanel,
) -> DrawResult {
    let headroom = if panel.marks.is_empty() { 1.4 } else { 3.0 };
    let (y_lo, y_hi) = log_y_range(&panel.lines, headroom);
    let (x_lo, x_hi) = panel.x_range;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, text(LABEL_PX + 2.0))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x_lo..x_hi, (y_lo..y_hi).log_scale())
        .msg()?;
    let ticks = panel.x_ticks.clone();
    let tick_label = move |v: &f64| {
        ticks
            .iter()
            .find(|(x, _)| (x - v).abs() < 1e-6)
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
    };
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
    // y ticks at 1-2-5 steps: plotters' own log ticks crowd the top
    // decade and leave the bottom one bare.
    let y_tick_style = text(SMALL_PX).pos(Pos::new(HPos::Right, VPos::Center));
    for y in log_ticks(y_lo, y_hi) {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x_lo, y), (x_hi, y)],
                RGBColor(225, 225, 225).stroke_width(1),
            )))
            .msg()?;
        let (px, py) = chart.backend_coord(&(x_lo, y));
        let b = area.get_base_pixel();
        area.draw_text(&format_tick(y), &y_tick_style, (px - b.0 - 6, py - b.1))
            .msg()?;
    }
    // x ticks at our own positions (powers of two, nines), since plotters
    // would choose round numbers of the transformed value.
    let x_tick_style = text(SMALL_PX).pos(Pos::new(HPos::Center, VPos::Top));
    for (x, _) in &panel.x_ticks {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(*x, y_lo), (*x, y_hi)],
                RGBColor(225, 225, 225).stroke_width(1),
            )))
            .msg()?;
        let (px, py) = chart.backend_coord(&(*x, y_lo));
        area.draw_text(
            &tick_label(x),
            &x_tick_style,
            (
                px - area.get_base_pixel().0,
                py - area.get_base_pixel().1 + 6,
            ),
        )
        .msg()?;
    }

    for line in &panel.lines {
        let color = line.style.color;
        let banded = line.points.iter().any(|&(_, _, lo, hi)| hi > lo);
        if banded && line.points.len() >= 2 {
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
        } else if banded {
            // A single point: an error bar instead of a band.
            for &(x, _, lo, hi) in &line.points {
                let (px, p_lo) = chart.backend_coord(&(x, lo.max(y_lo)));
                let (_, p_hi) = chart.backend_coord(&(x, hi));
                let b = area.get_base_pixel();
                error_bar(area, (px - b.0, p_lo - b.1, p_hi - b.1), color)?;
            }
        }
        let median: Vec<(f64, f64)> = line.points.iter().map(|&(x, m, _, _)| (x, m)).collect();
        let stroke = color.stroke_width(2);
        match line.style.dash {
            Dash::Solid => {
                chart
                    .draw_series(LineSeries::new(median.clone(), stroke))
                    .msg()?;
            }
            Dash::Dashed => {
                chart
                    .draw_series(DashedLineSeries::new(median.clone(), 9, 5, stroke))
                    .msg()?;
            }
            Dash::Dotted => {
                chart
                    .draw_series(DashedLineSeries::new(median.clone(), 2, 4, stroke))
                    .msg()?;
            }
        }
        // One concrete element type per marker: boxed dynamic elements
        // would need a 'static backend.
        let fill = color.filled();
        match line.style.marker {
            Marker::Circle => chart
                .draw_series(
                    median
                        .iter()
                        .map(|p| EmptyElement::at(*p) + Circle::new((0, 0), 4, fill)),
                )
                .msg()
                .map(drop)?,
            Marker::Triangle => chart
                .draw_series(
                    median
                        .iter()
                        .map(|p| EmptyElement::at(*p) + TriangleMarker::new((0, 0), 6, fill)),
                )
                .msg()
                .map(drop)?,
            Marker::Square => chart
                .draw_series(
                    median
                        .iter()
                        .map(|p| EmptyElement::at(*p) + Rectangle::new([(-4, -4), (4, 4)], fill)),
                )
                .msg()
                .map(drop)?,
            Marker::Cross => {
                chart
                    .draw_series(median.iter().map(|p| {
                        EmptyElement::at(*p) + Cross::new((0, 0), 5, color.stroke_width(2))
                    }))
                    .msg()
                    .map(drop)?
            }
        }
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
    }

    let mark_style = text(SMALL_PX).pos(Pos::new(HPos::Left, VPos::Top));
    for (i, mark) in panel.marks.iter().enumerate() {
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

/// One bar segment.
#[derive(Clone, Debug)]
pub struct Segment {
    pub label: String,
    pub value: f64,
    pub color: RGBColor,
}

/// One bar: its segments bottom-up and the min–max of its total.
#[derive(Clone, Debug)]
pub struct Bar {
    pub category: String,
    pub segments: Vec<Segment>,
    /// `(min, median, max)` of the total over repetitions.
    pub total_range: Option<(f64, f64, f64)>,
}

#[derive(Clone, Debug)]
pub struct BarPanel {
    pub caption: String,
    pub y_desc: String,
    pub bars: Vec<Bar>,
    /// Write segment labels inside segments tall enough to hold them, so
    /// the stack reads without colour.
    pub label_segments: bool,
}

/// Pixel width a bar panel needs for `bars` categories.
pub fn bar_panel_width(bars: usize) -> u32 {
    (bars as u32 * 118 + 110).max(440)
}

pub fn draw_bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &BarPanel,
) -> DrawResult {
    let n = panel.bars.len().max(1) as i32;
    let top = panel
        .bars
        .iter()
        .map(|b| {
            let stacked: f64 = b.segments.iter().map(|s| s.value).sum();
            b.total_range.map_or(stacked, |(_, _, hi)| hi.max(stacked))
        })
        .fold(0.0f64, f64::max);
    let y_hi = if top > 0.0 { top * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, text(LABEL_PX + 2.0))
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..y_hi)
        .msg()?;
    let names: Vec<String> = panel.bars.iter().map(|b| b.category.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(&panel.y_desc)
        .axis_desc_style(text(LABEL_PX))
        .label_style(text(SMALL_PX))
        .x_labels(n as usize + 1)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_labels(6)
        .y_label_formatter(&|v| format_tick(*v))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .msg()?;

    let inner_style = text(SMALL_PX - 1.0).pos(Pos::new(HPos::Center, VPos::Center));
    for (i, bar) in panel.bars.iter().enumerate() {
        let i = i as i32;
        let mut base = 0.0;
        for segment in &bar.segments {
            if segment.value <= 0.0 {
                continue;
            }
            let upper = base + segment.value;
            let mut rect = Rectangle::new(
                [
                    (SegmentValue::Exact(i), base),
                    (SegmentValue::Exact(i + 1), upper),
                ],
                segment.color.filled(),
            );
            rect.set_margin(0, 0, 18, 18);
            chart.draw_series(std::iter::once(rect)).msg()?;
            let mut outline = Rectangle::new(
                [
                    (SegmentValue::Exact(i), base),
                    (SegmentValue::Exact(i + 1), upper),
                ],
                WHITE.stroke_width(1),
            );
            outline.set_margin(0, 0, 18, 18);
            chart.draw_series(std::iter::once(outline)).msg()?;
            if panel.label_segments {
                let (_, y0) = chart.backend_coord(&(SegmentValue::CenterOf(i), base));
                let (cx, y1) = chart.backend_coord(&(SegmentValue::CenterOf(i), upper));
                if y0 - y1 >= 15 {
                    let label = format!("{} {}", segment.label, format_tick(segment.value));
                    let color = if luminance(segment.color) < 0.45 {
                        WHITE
                    } else {
                        BLACK
                    };
                    let b = area.get_base_pixel();
                    area.draw_text(
                        &label,
                        &inner_style.color(&color),
                        (cx - b.0, (y0 + y1) / 2 - b.1),
                    )
                    .msg()?;
                }
            }
            base = upper;
        }
        if let Some((lo, median, hi)) = bar.total_range {
            if hi > lo {
                let (cx, y_lo) = chart.backend_coord(&(SegmentValue::CenterOf(i), lo));
                let (_, y_hi) = chart.backend_coord(&(SegmentValue::CenterOf(i), hi));
                let b = area.get_base_pixel();
                error_bar(area, (cx - b.0, y_lo - b.1, y_hi - b.1), BLACK)?;
            }
            let label_style = text(SMALL_PX).pos(Pos::new(HPos::Center, VPos::Bottom));
            let (cx, cy) = chart.backend_coord(&(SegmentValue::CenterOf(i), hi.max(base)));
            let b = area.get_base_pixel();
            area.draw_text(&format_tick(median), &label_style, (cx - b.0, cy - b.1 - 3))
                .msg()?;
        }
    }
    Ok(())
}

/// Relative luminance (0 dark … 1 light), to pick readable label colours.
pub fn luminance(c: RGBColor) -> f64 {
    (0.2126 * c.0 as f64 + 0.7152 * c.1 as f64 + 0.0722 * c.2 as f64) / 255.0
}

/// A vertical min–max bar with caps at pixel `(x, y_min, y_max)` of `area`.
fn error_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y_min, y_max): (i32, i32, i32),
    color: RGBColor,
) -> DrawResult {
    let stroke = color.stroke_width(2);
    area.draw(&PathElement::new(vec![(x, y_min), (x, y_max)], stroke))
        .msg()?;
    for y in [y_min, y_max] {
        area.draw(&PathElement::new(vec![(x - 7, y), (x + 7, y)], stroke))
            .msg()?;
    }
    Ok(())
}

/// Tick values for a log axis over `[lo, hi]`: 1-2-5 steps per decade,
/// thinned to powers of ten when too many, filled in when too few.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = |mantissas: &[f64]| -> Vec<f64> {
        let first = lo.log10().floor() as i32;
        let last = hi.log10().ceil() as i32;
        (first..=last)
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| *v >= lo && *v <= hi)
            .collect()
    };
    for mantissas in [
        &[1.0, 2.0, 5.0][..],
        &[1.0, 2.0, 3.0, 5.0, 7.0],
        &[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ] {
        let ticks = decades(mantissas);
        if ticks.len() >= 4 {
            return if ticks.len() > 9 {
                decades(&[1.0])
            } else {
                ticks
            };
        }
    }
    decades(&[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
}
