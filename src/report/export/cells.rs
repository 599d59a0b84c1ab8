//! How `summary.md` and the console write a figure: a number with the
//! precision its size deserves, and a median with its spread.

use crate::results::Spread;

/// Marks a figure whose CV exceeds
/// [`NOISY_CV_PERCENT`](crate::results::NOISY_CV_PERCENT).
pub const NOISY_MARK: &str = "⚠";

/// Formats a number with a precision that suits its size: thousands
/// separators above 1000, three significant digits below.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    if magnitude >= 1000.0 {
        let rounded = value.round() as i128;
        let digits = rounded.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if rounded < 0 {
            out.insert(0, '-');
        }
        out
    } else if magnitude >= 100.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// `median ±cv%`, with [`NOISY_MARK`] when noisy.
pub fn spread_cell(spread: &Spread) -> String {
    let mut cell = format!("{} ±{:.1}%", number(spread.median), spread.cv_percent);
    if spread.is_noisy() {
        cell.push(' ');
        cell.push_str(NOISY_MARK);
    }
    cell
}

pub fn optional_cell(spread: Option<&Spread>) -> String {
    spread.map_or_else(|| "n/a".to_string(), spread_cell)
}
