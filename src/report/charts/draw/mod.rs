//! Drawing pieces shared by every chart: the frame (title, legend strip,
//! footer) in [`frame`], line panels with min–max bands in [`lines`], and
//! bar panels with error bars in [`bars`]. Generic over the backend, so SVG
//! and PNG come from the same code.

mod bars;
mod effects;
mod frame;
mod lines;

use plotters::coord::Shift;
use plotters::prelude::*;

pub use bars::{Bar, BarPanel, Segment, bar_panel_width, draw_bar_panel};
pub use effects::{
    EffectPanel, EffectRow, draw_effect_panel, effect_panel_height, effect_text_widths,
};
pub use frame::{
    FOOTER_LINE_PX, LEGEND_ROW_PX, LegendKey, TITLE_HEIGHT_PX, frame, frame_height, legend_rows,
};
pub use lines::{Line, LinePanel, VerticalMark, YScale, draw_line_panel};

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

/// Relative luminance (0 dark … 1 light), to pick readable label colours.
pub fn luminance(c: RGBColor) -> f64 {
    (0.2126 * c.0 as f64 + 0.7152 * c.1 as f64 + 0.0722 * c.2 as f64) / 255.0
}

/// A vertical min–max bar with caps at pixel `(x, y_min, y_max)` of `area`.
pub(super) fn error_bar<DB: DrawingBackend>(
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
