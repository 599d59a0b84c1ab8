//! Bar panels: stacked segments with min–max error bars on the total.

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::{RangedCoordf64, RangedCoordi32};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, OrMessage, error_bar, luminance};
use crate::report::charts::style::{
    LABEL_PX, SMALL_PX, format_tick, format_ticks, linear_ticks, text,
};

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

/// The coordinates of a bar panel: one segment per bar, linear y.
type BarCoord = Cartesian2d<SegmentedCoord<RangedCoordi32>, RangedCoordf64>;
type BarChart<'a, DB> = ChartContext<'a, DB, BarCoord>;

pub fn draw_bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &BarPanel,
) -> DrawResult {
    let mut chart = bar_axes(area, panel)?;
    for (i, bar) in panel.bars.iter().enumerate() {
        let top = draw_stack(area, &mut chart, i as i32, bar, panel.label_segments)?;
        draw_total(area, &chart, i as i32, bar, top)?;
    }
    Ok(())
}

/// Caption, axes and grid, with y up to 15% above the highest bar or
/// error bar.
fn bar_axes<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    panel: &BarPanel,
) -> DrawResult<BarChart<'a, DB>> {
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
        .y_labels(0)
        .y_label_formatter(&|_| String::new())
        .disable_y_mesh()
        .draw()
        .msg()?;
    // Our own ticks: plotters' labels of small values collide
    // (0.001, 0.001, 0.002), and [`format_ticks`] keeps them apart.
    let ticks = linear_ticks(0.0, y_hi, 6);
    let grid = RGBColor(215, 215, 215).stroke_width(1);
    let base = area.get_base_pixel();
    let tick_style = text(SMALL_PX).pos(Pos::new(HPos::Right, VPos::Center));
    for (y, label) in ticks.iter().zip(format_ticks(&ticks)) {
        let (left, py) = chart.backend_coord(&(SegmentValue::Exact(0), *y));
        let (right, _) = chart.backend_coord(&(SegmentValue::Last, *y));
        area.draw(&PathElement::new(
            vec![(left - base.0, py - base.1), (right - base.0, py - base.1)],
            grid,
        ))
        .msg()?;
        area.draw_text(&label, &tick_style, (left - base.0 - 6, py - base.1))
            .msg()?;
    }
    Ok(chart)
}

/// The segments of bar `i`, bottom-up, labelled inside when asked and
/// tall enough; returns the top of the stack.
fn draw_stack<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &mut BarChart<DB>,
    i: i32,
    bar: &Bar,
    label_segments: bool,
) -> DrawResult<f64> {
    let inner_style = text(SMALL_PX - 1.0).pos(Pos::new(HPos::Center, VPos::Center));
    let mut base = 0.0;
    for segment in &bar.segments {
        if segment.value <= 0.0 {
            continue;
        }
        let upper = base + segment.value;
        let corners = [
            (SegmentValue::Exact(i), base),
            (SegmentValue::Exact(i + 1), upper),
        ];
        for style in [segment.color.filled(), WHITE.stroke_width(1)] {
            let mut rect = Rectangle::new(corners.clone(), style);
            rect.set_margin(0, 0, 18, 18);
            chart.draw_series(std::iter::once(rect)).msg()?;
        }
        if label_segments {
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
    Ok(base)
}

/// The min–max error bar of bar `i`'s total and its median above the bar.
fn draw_total<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &BarChart<DB>,
    i: i32,
    bar: &Bar,
    stack_top: f64,
) -> DrawResult {
    let Some((lo, median, hi)) = bar.total_range else {
        return Ok(());
    };
    let b = area.get_base_pixel();
    if hi > lo {
        let (cx, y_lo) = chart.backend_coord(&(SegmentValue::CenterOf(i), lo));
        let (_, y_hi) = chart.backend_coord(&(SegmentValue::CenterOf(i), hi));
        error_bar(area, (cx - b.0, y_lo - b.1, y_hi - b.1), BLACK)?;
    }
    let label_style = text(SMALL_PX).pos(Pos::new(HPos::Center, VPos::Bottom));
    let (cx, cy) = chart.backend_coord(&(SegmentValue::CenterOf(i), hi.max(stack_top)));
    area.draw_text(&format_tick(median), &label_style, (cx - b.0, cy - b.1 - 3))
        .msg()?;
    Ok(())
}
