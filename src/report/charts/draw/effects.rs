//! Effect panels (a forest plot): one row per comparison, the ratio B/A as
//! a point with its confidence interval as whiskers, on a logarithmic x
//! axis with a line at 1 (no difference). Drawn in pixel coordinates: rows
//! are categories and ticks are chosen ratios, which plotters' meshes do
//! not express.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, OrMessage};
use crate::report::charts::style::{LABEL_PX, SMALL_PX, estimate_text_px, format_tick, text};

/// One comparison's row.
#[derive(Clone, Debug)]
pub struct EffectRow {
    /// Left of the row, e.g. `et-rw / lt-rw`.
    pub label: String,
    /// `(ratio, ci_low, ci_high)`; `None`: nothing to draw (not enough
    /// data), `note` says so.
    pub interval: Option<(f64, f64, f64)>,
    pub color: RGBColor,
    /// Right of the row, e.g. `+4.1% (+2.0 … +6.3)`.
    pub note: String,
}

#[derive(Clone, Debug)]
pub struct EffectPanel {
    pub caption: String,
    pub x_desc: String,
    pub rows: Vec<EffectRow>,
}

pub const EFFECT_ROW_PX: u32 = 30;
const CAPTION_AREA_PX: i32 = 34;
const X_AXIS_AREA_PX: i32 = 52;
const MARGIN_PX: i32 = 12;

/// Height of a panel with `rows` rows.
pub fn effect_panel_height(rows: usize) -> u32 {
    (CAPTION_AREA_PX + X_AXIS_AREA_PX) as u32 + EFFECT_ROW_PX * rows.max(1) as u32 + 8
}

/// Widths of the label column and the note column, pixels.
pub fn effect_text_widths(rows: &[EffectRow]) -> (i32, i32) {
    let widest = |f: &dyn Fn(&EffectRow) -> &str| {
        rows.iter()
            // The estimate runs a little short of the PNG font on long
            // labels: room to spare rather than clipped text.
            .map(|r| (estimate_text_px(f(r), SMALL_PX + 1.0).0 as f64 * 1.15).ceil() as i32)
            .max()
            .unwrap_or(0)
    };
    (widest(&|r| &r.label), widest(&|r| &r.note))
}

/// The x range in ln(ratio): every interval and 1, at least ±5 %, with
/// some room on both sides.
fn log_range(rows: &[EffectRow]) -> (f64, f64) {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for (_, low, high) in rows.iter().filter_map(|r| r.interval) {
        lo = lo.min(low.ln());
        hi = hi.max(high.ln());
    }
    let floor = 1.05f64.ln();
    lo = lo.min(-floor);
    hi = hi.max(floor);
    let pad = (hi - lo) * 0.08;
    (lo - pad, hi + pad)
}

/// Ratios worth a tick, nearest to 1 first on each side.
const TICK_RATIOS: [f64; 22] = [
    1.0, 1.02, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 0.98, 0.95, 0.9, 0.8, 0.67, 0.5,
    0.33, 0.2, 0.1, 0.05, 50.0,
];
const MIN_TICK_GAP_PX: i32 = 56;

/// Ticks inside the range, at least [`MIN_TICK_GAP_PX`] apart, 1 always.
fn ticks(to_px: &dyn Fn(f64) -> i32, (lo, hi): (f64, f64)) -> Vec<f64> {
    let mut kept: Vec<f64> = Vec::new();
    for r in TICK_RATIOS {
        if r.ln() < lo || r.ln() > hi {
            continue;
        }
        if kept
            .iter()
            .all(|k| (to_px(*k) - to_px(r)).abs() >= MIN_TICK_GAP_PX)
        {
            kept.push(r);
        }
    }
    kept.sort_by(f64::total_cmp);
    kept
}

/// Draws one figure's effects: axis, rows, whiskers and labels. ~90 lines
/// of plotters calls that share one coordinate mapping.
pub fn draw_effect_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &EffectPanel,
) -> DrawResult {
    let (width, _) = area.dim_in_pixel();
    let (label_w, note_w) = effect_text_widths(&panel.rows);
    let left = MARGIN_PX + label_w + 14;
    let right = width as i32 - MARGIN_PX - note_w - 14;
    let top = CAPTION_AREA_PX;
    let bottom = top + EFFECT_ROW_PX as i32 * panel.rows.len().max(1) as i32;
    let range = log_range(&panel.rows);
    let to_px = |ratio: f64| {
        left + ((ratio.ln() - range.0) / (range.1 - range.0) * (right - left) as f64).round() as i32
    };

    let caption = text(LABEL_PX + 2.0).pos(Pos::new(HPos::Center, VPos::Top));
    area.draw_text(&panel.caption, &caption, (width as i32 / 2, 8))
        .msg()?;

    // Banded rows, so the eye follows a row from label to note; drawn
    // first, under the grid.
    let row_y = |i: usize| top + EFFECT_ROW_PX as i32 * i as i32 + EFFECT_ROW_PX as i32 / 2;
    for i in (1..panel.rows.len()).step_by(2) {
        let y = row_y(i);
        area.draw(&Rectangle::new(
            [
                (MARGIN_PX, y - EFFECT_ROW_PX as i32 / 2),
                (width as i32 - MARGIN_PX, y + EFFECT_ROW_PX as i32 / 2),
            ],
            RGBColor(244, 244, 244).filled(),
        ))
        .msg()?;
    }

    // Grid and tick labels; the line at 1 darker than the rest.
    let grid = RGBColor(220, 220, 220);
    let tick_style = text(SMALL_PX).pos(Pos::new(HPos::Center, VPos::Top));
    for r in ticks(&to_px, range) {
        let x = to_px(r);
        let style = if r == 1.0 {
            BLACK.stroke_width(2)
        } else {
            grid.stroke_width(1)
        };
        area.draw(&PathElement::new(vec![(x, top - 4), (x, bottom)], style))
            .msg()?;
        area.draw_text(
            &format!("{}×", format_tick(r)),
            &tick_style,
            (x, bottom + 6),
        )
        .msg()?;
    }
    area.draw(&PathElement::new(
        vec![(left, bottom), (right, bottom)],
        BLACK.stroke_width(1),
    ))
    .msg()?;
    let desc = text(LABEL_PX).pos(Pos::new(HPos::Center, VPos::Top));
    area.draw_text(&panel.x_desc, &desc, ((left + right) / 2, bottom + 26))
        .msg()?;

    let label_style = text(SMALL_PX + 1.0).pos(Pos::new(HPos::Right, VPos::Center));
    let note_style = text(SMALL_PX + 1.0).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, row) in panel.rows.iter().enumerate() {
        let y = row_y(i);
        area.draw_text(&row.label, &label_style, (left - 14, y))
            .msg()?;
        area.draw_text(&row.note, &note_style.color(&row.color), (right + 14, y))
            .msg()?;
        let Some((ratio, low, high)) = row.interval else {
            continue;
        };
        let stroke = row.color.stroke_width(3);
        let (x_low, x_high) = (to_px(low), to_px(high));
        area.draw(&PathElement::new(vec![(x_low, y), (x_high, y)], stroke))
            .msg()?;
        for x in [x_low, x_high] {
            area.draw(&PathElement::new(vec![(x, y - 7), (x, y + 7)], stroke))
                .msg()?;
        }
        area.draw(&Circle::new((to_px(ratio), y), 6, row.color.filled()))
            .msg()?;
        area.draw(&Circle::new((to_px(ratio), y), 6, WHITE.stroke_width(1)))
            .msg()?;
    }
    Ok(())
}
