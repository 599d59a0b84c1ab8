//! The frame around a chart's panels: title, legend strip and footer.

use plotters::coord::Shift;
use plotters::element::{DynElement, IntoDynElement};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, OrMessage};
use crate::report::charts::style::{
    Dash, LABEL_PX, Marker, SMALL_PX, TITLE_PX, VariantStyle, estimate_text_px, text,
};

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
